// TaskFlow's demo page, and the reference client of its live protocol
// (the OpenAPI document's description, "Staying in sync" and "Live
// updates"):
//
// 1. Load the state: GET /api/v1/tasks?projectId=… page by page; the first
//    page's meta.headSeq is where the log stood when the loading began.
// 2. Open the WebSocket at /api/v1/ws, authenticate with the first message
//    (a browser cannot set headers on it), subscribe with since = that seq.
// 3. Apply each event whose seq is the last applied + 1; ignore older ones
//    (a replay), and on a gap subscribe again from the last applied.
// 4. On `resync` (events that old are no longer kept) load the state again
//    and subscribe from its head.
// 5. When the socket closes, reconnect after an exponential back-off with
//    jitter (0.5 s doubling to 30 s), subscribing from the last applied seq:
//    nothing is missed, nothing applied twice. On close 4401 renew the
//    access token first (or ask to log in again).
//
// Tokens live in this tab's memory only (no storage): a reload logs out.
// Plain JavaScript, no dependencies, no build step; served with a strict
// Content-Security-Policy, so nothing here is inline in the page.
'use strict';

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the API

/** The credentials, in memory only. */
const session = {
  access: null,
  refresh: null,
  expiresAt: 0,
  user: null,
  renewing: null, // the refresh in flight, so that concurrent 401s share it
  renewTimer: 0,
};

/** The session is over: the user must log in again. */
class SessionEnded extends Error {}

/** A request the API refused (or could not serve). */
class ApiFailure extends Error {
  constructor(reply) {
    super(reply.error?.message || `The server answered ${reply.status}.`);
    this.reply = reply;
  }
}

function keepTokens(tokens) {
  session.access = tokens.accessToken;
  session.refresh = tokens.refreshToken;
  session.expiresAt = Date.now() + tokens.expiresIn * 1000;
  session.user = tokens.user;
  clearTimeout(session.renewTimer);
  // Renew ahead of expiry, so that requests and reconnects rarely meet a 401
  // (they renew on one too).
  session.renewTimer = setTimeout(() => renew().catch(() => {}), tokens.expiresIn * 800);
}

/** POST /api/v1/auth/refresh, once however many callers ask at once. */
function renew() {
  if (!session.renewing) {
    const refreshToken = session.refresh;
    session.renewing = (async () => {
      if (!refreshToken) throw new SessionEnded('Not logged in.');
      const reply = await call('POST', '/api/v1/auth/refresh', {
        body: { refreshToken },
        auth: false,
      });
      if (reply.status === 401) throw new SessionEnded('Your session has ended: log in again.');
      if (!reply.ok) throw new ApiFailure(reply);
      if (session.refresh === refreshToken) keepTokens(reply.data);
    })().finally(() => {
      session.renewing = null;
    });
  }
  return session.renewing;
}

/**
 * One request: JSON in, the envelope's parts out. With `auth`, a 401 renews
 * the access token and tries once more.
 */
async function call(method, path, { body, headers = {}, auth = true, retry = true } = {}) {
  const sent = { Accept: 'application/json', ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (auth) sent.Authorization = `Bearer ${session.access}`;
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (response.status === 401 && auth && retry && session.refresh) {
    await renew();
    return call(method, path, { body, headers, auth, retry: false });
  }
  const text = await response.text();
  let envelope = null;
  try {
    envelope = text ? JSON.parse(text) : null;
  } catch {
    envelope = null;
  }
  return {
    status: response.status,
    ok: response.ok,
    data: envelope?.data,
    meta: envelope?.meta ?? {},
    error: envelope?.error,
  };
}

/** Every item of a list, following meta.pagination.nextCursor; `head` is
 * the first page's meta.headSeq. */
async function listAll(path, params = {}) {
  const items = [];
  let head = null;
  let cursor = null;
  do {
    const query = new URLSearchParams({ ...params, limit: '100' });
    if (cursor) query.set('cursor', cursor);
    const reply = await call('GET', `${path}?${query}`);
    if (!reply.ok) throw new ApiFailure(reply);
    items.push(...reply.data);
    head ??= reply.meta.headSeq ?? null;
    cursor = reply.meta.pagination?.nextCursor ?? null;
  } while (cursor);
  return { items, head };
}

/** X-Client-Mutation-Id for a change of ours: its events carry it back. */
const mine = new Set();
function mutationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const id = `demo-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  mine.add(id);
  return id;
}

// ------------------------------------------------------------ the project

/** What the page shows. */
const view = {
  projects: new Map(),
  projectId: null,
  project: null,
  tasks: new Map(),
  rows: new Map(), // task id -> its <li>
  gone: new Set(), // deleted here before the event said so
  members: new Map(),
  lastSeq: 0, // the seq of the last event applied (or the head loaded)
  loading: false, // events wait (are dropped, then replayed) meanwhile
  ticket: 0, // which project load is current
};

async function loadProjects(select) {
  const { items } = await listAll('/api/v1/projects');
  view.projects = new Map(items.map((p) => [p.id, p]));
  const picker = $('project');
  picker.replaceChildren(new Option('Choose a project…', ''));
  for (const p of items) {
    const label = p.personal ? `${p.name} (personal)` : p.name;
    picker.append(new Option(label, p.id));
  }
  const keep = select ?? view.projectId;
  picker.value = keep && view.projects.has(keep) ? keep : '';
  if (picker.value !== (view.projectId ?? '')) await pickProject(picker.value);
}

async function pickProject(id) {
  if (view.projectId && view.projectId !== id) {
    sendMessage({ type: 'unsubscribe', projectId: view.projectId });
  }
  view.projectId = id || null;
  view.project = view.projects.get(id) ?? null;
  view.ticket += 1;
  clearBoard();
  $('board').hidden = !view.projectId;
  if (!view.projectId) return;
  if (!(await loadBoard())) return;
  if (live.ws) subscribe();
  else connect();
}

/** The project's tasks, members and state, and the log's head for them. */
async function loadBoard() {
  const ticket = view.ticket;
  const id = view.projectId;
  view.loading = true;
  try {
    const [tasks, members, project] = await Promise.all([
      listAll('/api/v1/tasks', { projectId: id }),
      listAll(`/api/v1/projects/${id}/members`),
      call('GET', `/api/v1/projects/${id}`),
    ]);
    if (ticket !== view.ticket) return false;
    if (!project.ok) throw new ApiFailure(project);
    view.project = project.data;
    view.lastSeq = tasks.head ?? 0;
    clearBoard();
    for (const task of tasks.items) upsertTask(task, null);
    view.members = new Map(members.items.map((m) => [m.userId, m]));
    renderProject();
    renderMembers();
    return true;
  } catch (error) {
    if (ticket !== view.ticket) return false;
    if (error.reply?.status === 404) projectLost('It is gone, or you are no longer a member.');
    else report(error);
    return false;
  } finally {
    if (ticket === view.ticket) view.loading = false;
  }
}

function clearBoard() {
  view.tasks.clear();
  view.rows.clear();
  view.gone.clear();
  view.members.clear();
  $('tasks').replaceChildren();
  renderProject();
  renderMembers();
  renderEmpty();
}

function projectLost(why) {
  const name = view.project?.name ?? 'This project';
  view.projects.delete(view.projectId);
  const option = [...$('project').options].find((o) => o.value === view.projectId);
  option?.remove();
  $('project').value = '';
  pickProject('');
  say(`${name}: ${why}`);
}

// --------------------------------------------------------------- events

/** One event of the current project, in seq order. */
function onEvent(event) {
  if (event.projectId !== view.projectId || view.loading) return;
  if (event.seq <= view.lastSeq) return; // already applied: a replay
  if (event.seq !== view.lastSeq + 1) {
    // A gap: ask for what follows the last applied (once until answered).
    if (live.pending !== view.projectId) subscribe();
    return;
  }
  view.lastSeq = event.seq;
  const ours = event.clientMutationId && mine.has(event.clientMutationId);
  const data = event.data;
  switch (event.type) {
    case 'task.created':
    case 'task.updated':
      if (data.projectId === view.projectId) upsertTask(data, ours ? 'mine' : 'theirs');
      else removeTask(event.entityId); // moved to another project
      break;
    case 'task.deleted':
      removeTask(event.entityId);
      break;
    case 'project.created':
    case 'project.updated':
    case 'project.archived':
    case 'project.unarchived':
      view.project = { ...view.project, ...data };
      view.projects.set(view.projectId, view.project);
      renderProject();
      break;
    case 'member.added':
    case 'member.updated':
      view.members.set(data.userId, data);
      if (data.userId === session.user?.id && view.project) view.project.role = data.role;
      renderMembers();
      break;
    case 'member.removed':
      view.members.delete(event.entityId);
      renderMembers();
      break;
    default:
      break; // project.deleted: `unsubscribed` follows
  }
}

function upsertTask(task, flash) {
  if (view.gone.has(task.id)) return;
  const known = view.tasks.get(task.id);
  if (known && known.version > task.version) return; // a newer one is shown
  view.tasks.set(task.id, task);
  let row = view.rows.get(task.id);
  if (!row) {
    row = newRow(task.id);
    view.rows.set(task.id, row);
    const list = $('tasks');
    const after = [...view.tasks.values()]
      .filter((t) => t.id !== task.id && view.rows.has(t.id) && before(task, t))
      .sort((a, b) => (before(a, b) ? -1 : 1))[0];
    list.insertBefore(row, after ? view.rows.get(after.id) : null);
  }
  renderRow(task.id);
  if (flash) {
    row.classList.remove('flash-mine', 'flash-theirs');
    void row.offsetWidth; // restart the animation
    row.classList.add(`flash-${flash}`);
  }
  renderEmpty();
}

function renderRow(id) {
  const task = view.tasks.get(id);
  const row = view.rows.get(id);
  if (!task || !row) return;
  row.dataset.status = task.status;
  row.dataset.version = String(task.version);
  row.querySelector('.done').checked = task.status === 'done';
  row.querySelector('.title').textContent = task.title;
}

/** The list's order: oldest first. */
function before(a, b) {
  return a.createdAt === b.createdAt ? a.id < b.id : a.createdAt < b.createdAt;
}

function removeTask(id) {
  view.tasks.delete(id);
  view.rows.get(id)?.remove();
  view.rows.delete(id);
  renderEmpty();
}

// ------------------------------------------------------------ the socket

const live = {
  ws: null,
  attempt: 0, // reconnects since the last successful subscribe
  retryTimer: 0,
  retryAt: 0,
  pending: null, // the project a subscribe was sent for, until `subscribed`
  authFailures: 0,
  heard: 0,
};

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** The server pings every 20 s; a socket silent this long is dead. */
const SILENCE_MS = 45_000;

async function connect() {
  clearTimeout(live.retryTimer);
  live.retryTimer = 0;
  if (live.ws || !session.access || !view.projectId) return;
  setStatus('connecting', 'Connecting…');
  if (session.expiresAt - Date.now() < 15_000) {
    try {
      await renew();
    } catch (error) {
      if (error instanceof SessionEnded) return signOut(error.message);
    }
  }
  if (live.ws || !session.access) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
  live.ws = ws;
  live.heard = Date.now();
  ws.addEventListener('open', () => {
    if (live.ws !== ws) return;
    ws.send(JSON.stringify({ type: 'auth', token: session.access }));
    subscribe();
  });
  ws.addEventListener('message', (message) => {
    if (live.ws !== ws) return;
    live.heard = Date.now();
    let parsed;
    try {
      parsed = JSON.parse(message.data);
    } catch {
      return;
    }
    onMessage(parsed);
  });
  ws.addEventListener('close', (close) => {
    if (live.ws === ws) onClose(close);
  });
}

function sendMessage(message) {
  if (live.ws?.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify(message));
}

/** Follow the current project from the last applied seq. */
function subscribe() {
  if (live.ws?.readyState !== WebSocket.OPEN || !view.projectId || view.loading) return;
  live.pending = view.projectId;
  sendMessage({ type: 'subscribe', projectId: view.projectId, since: view.lastSeq });
}

function onMessage(message) {
  const current = message.projectId === view.projectId;
  switch (message.type) {
    case 'subscribed':
      if (!current) return;
      live.pending = null;
      live.attempt = 0;
      live.authFailures = 0;
      setStatus('live', 'Live');
      break;
    case 'event':
      onEvent(message.event);
      break;
    case 'resync':
      if (current) resync();
      break;
    case 'unsubscribed':
      if (current && message.reason !== 'client') {
        projectLost(message.reason === 'deleted' ? 'It was deleted.' : 'You were removed from it.');
      }
      break;
    case 'error':
      if (current && message.code === 'NOT_FOUND') projectLost('It is gone, or you are no longer a member.');
      else if (current || !message.projectId) {
        if (message.code !== 'UNAUTHENTICATED') say(message.message);
      }
      break;
    default:
      break; // pong
  }
}

/** The events after `since` are no longer kept: load the state again. */
async function resync() {
  setStatus('resyncing', 'Reloading…');
  const ticket = ++view.ticket;
  if ((await loadBoard()) && ticket === view.ticket) subscribe();
}

function onClose(close) {
  live.ws = null;
  live.pending = null;
  if (!session.access) return setStatus('offline', 'Offline');
  if (close.code === 4401) {
    // Not (or no longer) authenticated: renew the token, then reconnect.
    live.authFailures += 1;
    if (live.authFailures > 2) return signOut('Your session has ended: log in again.');
    setStatus('connecting', 'Renewing the session…');
    renew().then(connect, (error) => {
      if (error instanceof SessionEnded) signOut(error.message);
      else reconnectLater();
    });
    return;
  }
  reconnectLater();
}

/** Exponential back-off with jitter: half the step, plus up to the other half. */
function reconnectLater() {
  const step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** live.attempt);
  const delay = step / 2 + (Math.random() * step) / 2;
  live.attempt += 1;
  live.retryAt = Date.now() + delay;
  clearTimeout(live.retryTimer);
  live.retryTimer = setTimeout(connect, delay);
  showRetry();
}

function showRetry() {
  if (!live.retryTimer) return;
  const seconds = Math.max(0, (live.retryAt - Date.now()) / 1000);
  setStatus('reconnecting', `Disconnected: retrying in ${seconds.toFixed(0)} s`);
}

function disconnect() {
  clearTimeout(live.retryTimer);
  live.retryTimer = 0;
  const ws = live.ws;
  live.ws = null;
  live.pending = null;
  ws?.close(1000, 'bye');
  setStatus('offline', 'Offline');
}

// Back online: try now rather than at the end of the back-off.
window.addEventListener('online', () => {
  if (live.retryTimer) {
    live.attempt = 0;
    connect();
  }
});

// Keep the status current; ping a quiet socket, drop a silent one.
setInterval(() => {
  showRetry();
  if (live.ws?.readyState !== WebSocket.OPEN) return;
  const silent = Date.now() - live.heard;
  if (silent > SILENCE_MS) live.ws.close(4000, 'silent');
  else if (silent > SILENCE_MS / 3) sendMessage({ type: 'ping' });
}, 1000);

// -------------------------------------------------------------- changes

async function createTask(title) {
  const reply = await call('POST', '/api/v1/tasks', {
    body: { title, projectId: view.projectId },
    headers: { 'X-Client-Mutation-Id': mutationId() },
  });
  if (!reply.ok) throw new ApiFailure(reply);
  upsertTask(reply.data, null);
}

/** PATCH or DELETE against the version shown; 412 shows the current one. */
async function change(id, method, body) {
  const task = view.tasks.get(id);
  if (!task) return;
  const reply = await call(method, `/api/v1/tasks/${id}`, {
    body,
    headers: { 'If-Match': `"${task.version}"`, 'X-Client-Mutation-Id': mutationId() },
  });
  if (reply.status === 412) {
    say(`“${task.title}” was changed meanwhile: here it is as it is now. Try again.`);
    return reload(id);
  }
  if (reply.status === 404) return removeTask(id);
  if (!reply.ok) throw new ApiFailure(reply);
  if (method === 'DELETE') {
    view.gone.add(id);
    removeTask(id);
  } else {
    upsertTask(reply.data, null);
  }
}

async function reload(id) {
  const reply = await call('GET', `/api/v1/tasks/${id}`);
  if (reply.status === 404) return removeTask(id);
  if (!reply.ok) throw new ApiFailure(reply);
  upsertTask(reply.data, null);
}

function newRow(id) {
  const row = $('task-row').content.firstElementChild.cloneNode(true);
  row.dataset.taskId = id;
  row.querySelector('.done').addEventListener('change', (e) => {
    const status = e.target.checked ? 'done' : 'todo';
    // Shown at once; put back as the server has it if the change fails.
    guard(change(id, 'PATCH', { status }).finally(() => renderRow(id)));
  });
  row.querySelector('.delete').addEventListener('click', () => guard(change(id, 'DELETE')));
  row.querySelector('.rename').addEventListener('click', () => startRename(id, row));
  return row;
}

function startRename(id, row) {
  if (row.querySelector('.rename-form')) return;
  const form = $('rename-form').content.firstElementChild.cloneNode(true);
  const input = form.querySelector('input');
  input.value = view.tasks.get(id)?.title ?? '';
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const title = input.value.trim();
    form.remove();
    if (title && title !== view.tasks.get(id)?.title) guard(change(id, 'PATCH', { title }));
  });
  form.querySelector('.cancel').addEventListener('click', () => form.remove());
  row.append(form);
  input.focus();
  input.select();
}

// ------------------------------------------------------------ rendering

function setStatus(state, text) {
  const status = $('status');
  status.dataset.state = state;
  status.textContent = text;
}

function say(text) {
  const message = $('message');
  message.textContent = text;
  message.hidden = !text;
}

function report(error) {
  if (error instanceof SessionEnded) return signOut(error.message);
  say(error instanceof ApiFailure ? error.message : `Something went wrong: ${error.message}`);
  if (!(error instanceof ApiFailure)) console.error(error);
}

/** Runs an action of the user's, reporting what fails. */
function guard(promise) {
  say('');
  promise.catch(report);
}

function renderProject() {
  const p = view.project;
  $('project-name').textContent = p ? `${p.name}${p.archived ? ' (archived)' : ''}` : '';
  const option = [...$('project').options].find((o) => o.value === view.projectId);
  if (option && p) option.textContent = p.personal ? `${p.name} (personal)` : p.name;
}

function renderMembers() {
  const list = $('members');
  list.replaceChildren(
    ...[...view.members.values()].map((m) => {
      const item = document.createElement('li');
      item.textContent = `${m.name} <${m.email}>, ${m.role}`;
      return item;
    }),
  );
  $('member-count').textContent = String(view.members.size);
}

function renderEmpty() {
  $('no-tasks').hidden = view.tasks.size > 0 || !view.projectId;
}

// ----------------------------------------------------------- signing in

let registering = false;

function setMode(register) {
  registering = register;
  $('auth-title').textContent = register ? 'Register' : 'Log in';
  $('auth-submit').textContent = register ? 'Register and log in' : 'Log in';
  $('auth-mode').textContent = register ? 'Have an account? Log in' : 'New here? Register';
  $('auth-name-field').hidden = !register;
  $('auth-name').required = register;
  $('auth-password').autocomplete = register ? 'new-password' : 'current-password';
}

async function signIn(form) {
  const fields = form.elements;
  const email = fields.email.value.trim();
  const password = fields.password.value;
  if (registering) {
    const name = fields.name.value.trim();
    const created = await call('POST', '/api/v1/auth/register', {
      body: { email, password, name },
      auth: false,
    });
    if (!created.ok) throw new ApiFailure(created);
  }
  const reply = await call('POST', '/api/v1/auth/login', { body: { email, password }, auth: false });
  if (!reply.ok) throw new ApiFailure(reply);
  keepTokens(reply.data);
  form.reset();
  setMode(false);
  $('whoami').textContent = session.user.name;
  $('auth').hidden = true;
  $('app').hidden = false;
  await loadProjects();
}

function signOut(why) {
  clearTimeout(session.renewTimer);
  Object.assign(session, { access: null, refresh: null, expiresAt: 0, user: null });
  disconnect();
  view.projectId = null;
  view.project = null;
  view.ticket += 1;
  clearBoard();
  $('project').replaceChildren();
  $('app').hidden = true;
  $('board').hidden = true;
  $('auth').hidden = false;
  say(why ?? '');
}

document.addEventListener('DOMContentLoaded', () => {
  $('auth-mode').addEventListener('click', () => setMode(!registering));
  $('auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guard(signIn(e.target));
  });
  $('logout').addEventListener('click', () => {
    const access = session.access;
    signOut('Logged out.');
    fetch('/api/v1/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${access}` } }).catch(
      () => {},
    );
  });
  $('project').addEventListener('change', (e) => guard(pickProject(e.target.value)));
  $('projects-reload').addEventListener('click', () => guard(loadProjects()));
  $('new-project').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = e.target.elements.name;
    guard(
      (async () => {
        const reply = await call('POST', '/api/v1/projects', { body: { name: input.value.trim() } });
        if (!reply.ok) throw new ApiFailure(reply);
        input.value = '';
        await loadProjects(reply.data.id);
      })(),
    );
  });
  $('new-task').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = e.target.elements.title;
    const title = input.value.trim();
    if (!title) return;
    input.value = '';
    guard(createTask(title));
  });
  $('add-member').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = e.target.elements.email;
    guard(
      (async () => {
        const reply = await call('POST', `/api/v1/projects/${view.projectId}/members`, {
          body: { email: input.value.trim(), role: 'member' },
          headers: { 'X-Client-Mutation-Id': mutationId() },
        });
        if (!reply.ok) throw new ApiFailure(reply);
        input.value = '';
      })(),
    );
  });
  setMode(false);
});
