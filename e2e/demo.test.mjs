// The demo page (/demo) in headless Chromium, as two members of one
// project in two browser contexts: what one does appears in the other's
// page live, and a page whose connection drops catches up after it
// reconnects (subscribing with `since`).
//
// Usage: node --test-reporter=spec e2e/demo.test.mjs BASE_URL
// (`cargo xtask e2e` starts a server, installs playwright-core with
// `npm ci` and runs this). Chromium is Debian's, /usr/bin/chromium, or
// $TASKFLOW_CHROMIUM; nothing downloads a browser.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

const BASE_URL = (process.argv[2] ?? process.env.BASE_URL ?? '').replace(/\/$/, '');
const CHROMIUM = process.env.TASKFLOW_CHROMIUM || '/usr/bin/chromium';
/** How long anything may take to show in a page. */
const TIMEOUT = 10_000;
const PASSWORD = 'demo password 1';

if (!/^https?:\/\//.test(BASE_URL)) {
  console.error('usage: node e2e/demo.test.mjs BASE_URL (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}

/** A call to the API from here, as the test's own setup. */
async function api(method, path, { token, body, envelope = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  const parsed = text ? JSON.parse(text) : null;
  return envelope ? parsed : parsed?.data;
}

async function signup(name, email) {
  await api('POST', '/api/v1/auth/register', { body: { email, password: PASSWORD, name } });
  const tokens = await api('POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } });
  return { name, email, token: tokens.accessToken, id: tokens.user.id };
}

/** Everything the pages said, printed when a test fails. */
const transcript = [];
function note(line) {
  transcript.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
}

let browser;
const pages = {};
const unique = `${Date.now().toString(36)}-${process.pid}`;
let ada;
let grace;
let projectName;
let projectId;

/** Runs a test's body; on failure prints what the pages logged. */
function step(name, body) {
  test(name, async () => {
    try {
      await body();
    } catch (error) {
      console.error(`\n--- what the pages said (${name}) ---\n${transcript.join('\n')}\n---`);
      for (const [who, page] of Object.entries(pages)) {
        const status = await page
          .getByTestId('connection-status')
          .textContent({ timeout: 1000 })
          .catch(() => '?');
        const tasks = await page
          .getByTestId('task')
          .evaluateAll((rows) => rows.map((r) => `${r.textContent.trim()} [${r.dataset.status}]`))
          .catch(() => []);
        console.error(`${who}: status "${status}", tasks ${JSON.stringify(tasks)}`);
      }
      throw error;
    }
  });
}

/**
 * Ada's sockets go through Playwright's WebSocket routing, so the test can
 * drop them as a server or a network would, and refuse new ones a while.
 */
const adaSockets = { current: null, refusing: false, refused: 0, subscribes: [] };

async function routeSockets(context) {
  await context.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    if (adaSockets.refusing) {
      adaSockets.refused += 1;
      ws.close({ code: 1013, reason: 'try again later' });
      return;
    }
    const server = ws.connectToServer();
    // Passed on as they are; the subscriptions noted (not the token).
    ws.onMessage((message) => {
      const parsed = JSON.parse(message);
      if (parsed.type === 'subscribe') adaSockets.subscribes.push(parsed);
      server.send(message);
    });
    adaSockets.current = ws;
  });
}

async function openPage(who, user) {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  if (who === 'ada') await routeSockets(context);
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => note(`[${who}] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => note(`[${who}] page error: ${e.stack ?? e}`));
  page.on('websocket', (ws) => {
    note(`[${who}] websocket opened`);
    ws.on('close', () => note(`[${who}] websocket closed`));
  });
  pages[who] = page;
  const response = await page.goto(`${BASE_URL}/demo`);
  assert.equal(response.status(), 200);
  await page.getByTestId('auth-email').fill(user.email);
  await page.getByTestId('auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('whoami').filter({ hasText: user.name }).waitFor();
  await page.getByTestId('project-select').selectOption({ label: projectName });
  await page.getByTestId('project-name').filter({ hasText: projectName }).waitFor();
  await live(page);
  return page;
}

/** Waits until the page says it is live. */
function live(page) {
  return page.locator('[data-testid="connection-status"][data-state="live"]').waitFor();
}

/** The row of the task with this title. */
function row(page, title, status) {
  const selector = status ? `[data-testid="task"][data-status="${status}"]` : '[data-testid="task"]';
  return page.locator(selector).filter({ has: page.getByTestId('task-title').getByText(title, { exact: true }) });
}

async function addTask(page, title) {
  await page.getByTestId('task-new-title').fill(title);
  await page.getByTestId('task-create').click();
}

describe('the demo page, two members in two browsers', () => {
  before(async () => {
    ada = await signup('Ada', `ada-${unique}@example.com`);
    grace = await signup('Grace', `grace-${unique}@example.com`);
    projectName = `Launch ${unique}`;
    const project = await api('POST', '/api/v1/projects', {
      token: ada.token,
      body: { name: projectName },
    });
    projectId = project.id;
    await api('POST', `/api/v1/projects/${project.id}/members`, {
      token: ada.token,
      body: { email: grace.email, role: 'member' },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // As root on a closed network: no sandbox, nothing in the background.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    note(`chromium ${browser.version()}`);
    await openPage('ada', ada);
    await openPage('grace', grace);
  });

  after(async () => {
    await browser?.close();
  });

  step('a task Ada creates in her page appears in Grace’s', async () => {
    await addTask(pages.ada, 'Write the report');
    await row(pages.ada, 'Write the report', 'todo').waitFor();
    await row(pages.grace, 'Write the report', 'todo').waitFor();
  });

  step('Grace marks it done and Ada sees it done', async () => {
    await row(pages.grace, 'Write the report').getByTestId('task-done').check();
    await row(pages.ada, 'Write the report', 'done').waitFor();
    assert.equal(await row(pages.ada, 'Write the report').getByTestId('task-done').isChecked(), true);
  });

  step('a rename and a delete in one page show in the other', async () => {
    await row(pages.ada, 'Write the report').getByTestId('task-rename').click();
    await pages.ada.getByTestId('task-rename-input').fill('Write the final report');
    await pages.ada.getByTestId('task-rename-save').click();
    await row(pages.grace, 'Write the final report', 'done').waitFor();
    await row(pages.grace, 'Write the final report').getByTestId('task-delete').click();
    await row(pages.ada, 'Write the final report').waitFor({ state: 'detached' });
    await row(pages.grace, 'Write the final report').waitFor({ state: 'detached' });
  });

  step('Ada’s page catches up after its connection drops', async () => {
    // Ada's page has applied every event so far.
    const { meta } = await api('GET', `/api/v1/tasks?projectId=${projectId}`, {
      token: ada.token,
      envelope: true,
    });
    const seen = meta.headSeq;
    // The connection drops, and the next attempts are refused: the page
    // backs off and retries meanwhile.
    const subscribed = adaSockets.subscribes.length;
    adaSockets.refusing = true;
    adaSockets.current.close({ code: 1001, reason: 'going away' });
    await pages.ada.locator('[data-testid="connection-status"][data-state="reconnecting"]').waitFor();
    await addTask(pages.grace, 'Made while Ada was away');
    await row(pages.grace, 'Made while Ada was away').waitFor();
    await addTask(pages.grace, 'And another');
    await row(pages.grace, 'And another').waitFor();
    const deadline = Date.now() + TIMEOUT;
    while (adaSockets.refused < 2 && Date.now() < deadline) await pages.ada.waitForTimeout(100);
    assert.ok(adaSockets.refused >= 2, `the page retried ${adaSockets.refused} times`);
    // Then a socket is let through: the page subscribes from the last seq
    // it applied and gets what it missed.
    adaSockets.refusing = false;
    await live(pages.ada);
    await row(pages.ada, 'Made while Ada was away', 'todo').waitFor();
    await row(pages.ada, 'And another', 'todo').waitFor();
    assert.deepEqual(adaSockets.subscribes.slice(subscribed), [
      { type: 'subscribe', projectId, since: seen },
    ]);
    // And it is live again.
    await addTask(pages.grace, 'After the reconnect');
    await row(pages.ada, 'After the reconnect', 'todo').waitFor();
  });

  step('a socket closed with 4401 renews the token, then reconnects', async () => {
    const renewed = pages.ada.waitForResponse(
      (r) => r.url().endsWith('/api/v1/auth/refresh') && r.status() === 200,
    );
    adaSockets.current.close({ code: 4401, reason: 'unauthenticated' });
    await renewed;
    await live(pages.ada);
    await addTask(pages.grace, 'After the renewal');
    await row(pages.ada, 'After the renewal').waitFor();
  });

  step('logging out closes the socket and shows the login form', async () => {
    await pages.grace.getByTestId('logout').click();
    await pages.grace.getByTestId('auth-form').waitFor();
    await pages.grace.locator('[data-testid="connection-status"][data-state="offline"]').waitFor();
    await addTask(pages.ada, 'Nobody is watching');
    await row(pages.ada, 'Nobody is watching').waitFor();
    assert.equal(await pages.grace.getByTestId('task').count(), 0);
  });

  step('the page fits 360 px and logged no error nor policy violation', async () => {
    for (const page of Object.values(pages)) {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `the page is ${width} px wide`);
    }
    const bad = transcript.filter(
      (line) => line.includes('page error') || /Content.Security.Policy/i.test(line),
    );
    assert.deepEqual(bad, []);
  });
});
