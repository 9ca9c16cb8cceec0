//! TaskFlow as a service on PostgreSQL and Redis: several instances behave
//! as one, a crash loses nothing acknowledged, and store outages give 503s
//! that heal by themselves.
//!
//! Needs the services `cargo xtask test` provides (`DATABASE_URL`,
//! `REDIS_URL`); fails naming them when they do not answer.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use adapters_auth::Argon2Hasher;
use adapters_postgres::testing::TestDatabase;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use server::{Application, Config};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[path = "support/ws.rs"]
mod ws;

const JWT_SECRET: &str = "cluster-tests-jwt-secret-0123456789-abcdefghij";
const PASSWORD: &str = "correct horse battery";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn prefix() -> String {
    format!("taskflow-test:{}:", uuid::Uuid::now_v7().simple())
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// An in-process server on the given stores.
async fn spawn(database_url: &str, redis_url: &str, redis_prefix: &str) -> String {
    spawn_with(database_url, redis_url, redis_prefix, &[]).await
}

/// As [`spawn`], with more (or overriding) settings.
async fn spawn_with(
    database_url: &str,
    redis_url: &str,
    redis_prefix: &str,
    more: &[(&str, &str)],
) -> String {
    let vars = [
        ("PORT", "0"),
        ("JWT_SECRET", JWT_SECRET),
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("REDIS_KEY_PREFIX", redis_prefix),
        ("SHUTDOWN_TIMEOUT", "1"),
    ];
    let config = Config::from_lookup(|name| {
        more.iter()
            .chain(vars.iter())
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("valid test configuration");
    let hasher = Argon2Hasher::with_params(8, 1, 1).expect("cheap argon2");
    let app = Application::build_with_hasher(&config, hasher)
        .await
        .expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.expect("a JSON envelope");
    (status, body)
}

/// Registers and logs in; returns the access token.
async fn sign_up(client: &Client, base: &str, email: &str) -> String {
    let (status, _) = json_of(
        client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "name": "Cluster"}))
            .send()
            .await
            .expect("register"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    log_in(client, base, email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_tasks_and_sessions() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let a = spawn(&db.url, &redis_url(), &prefix).await;
    let b = spawn(&db.url, &redis_url(), &prefix).await;
    let client = client();

    let token = sign_up(&client, &a, "two@example.com").await;
    let (status, created) = json_of(
        client
            .post(format!("{a}/api/v1/tasks"))
            .bearer_auth(&token)
            .json(&json!({"title": "Made on A", "priority": "high"}))
            .send()
            .await
            .expect("create"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().expect("id");

    let (status, read) = json_of(
        client
            .get(format!("{b}/api/v1/tasks/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("read on B"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "B reads what A wrote with A's token"
    );
    assert_eq!(read["data"], created["data"]);

    let status = client
        .post(format!("{b}/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout on B")
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = json_of(
        client
            .get(format!("{a}/api/v1/tasks/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("read on A"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "A refuses at once: {body}"
    );
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
}

/// The `taskflow` binary on the given stores; its port from its log.
struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary(database_url: &str, redis_prefix: &str) -> Process {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskflow"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .env("JWT_SECRET", JWT_SECRET)
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", redis_prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start taskflow");
    let stdout = child.stdout.take().expect("piped");
    // Read the log on a thread of its own (draining it for the server's
    // whole life, so it never blocks on a full pipe) until the address.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let json: Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(addr) = json["fields"]["addr"].as_str() {
                let _ = tx.send(format!("http://{addr}"));
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server logs its address within 60 s");
    Process { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_acknowledged_task() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let first = start_binary(&db.url, &prefix);
    let client = client();
    let token = sign_up(&client, &first.base, "crash@example.com").await;

    // Writers create tasks as fast as they can; the server is killed with
    // SIGKILL while they are at it.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = JoinSet::new();
    for writer in 0..4 {
        let (client, token, base) = (client.clone(), token.clone(), first.base.clone());
        let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
        writers.spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 500 {
                n += 1;
                let priority = ["low", "medium", "high", "urgent"][n % 4];
                let body = json!({
                    "title": format!("Writer {writer} task {n}"),
                    "description": "x".repeat(n % 50),
                    "priority": priority,
                    "dueDate": "2027-01-02T03:04:05.123456Z",
                });
                let sent = client
                    .post(format!("{base}/api/v1/tasks"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                // Only a complete 201 with its body counts as acknowledged.
                if let Ok(response) = sent
                    && response.status() == StatusCode::CREATED
                    && let Ok(envelope) = response.json::<Value>().await
                {
                    acknowledged
                        .lock()
                        .expect("lock")
                        .push(envelope["data"].clone());
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().expect("lock").len() < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first = first;
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reap");
    stop.store(true, Ordering::Relaxed);
    while writers.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 40,
        "the burst was under way when the server died"
    );

    let second = start_binary(&db.url, &prefix);
    for task in &acknowledged {
        let id = task["id"].as_str().expect("id");
        let (status, read) = json_of(
            client
                .get(format!("{}/api/v1/tasks/{id}", second.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("read after restart"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "acknowledged task {id} survived");
        assert_eq!(&read["data"], task, "with its fields intact");
    }
}

/// A TCP proxy the test can cut and restore, standing in for a network
/// between the server and a store.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let (flag, set) = (Arc::clone(&up), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                set.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            up,
            connections,
        }
    }

    /// Every connection through the proxy drops; new ones are refused.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The parts of `scheme://[userinfo@]authority[/rest]`.
fn split_url(url: &str) -> (&str, &str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => (userinfo, rest),
        None => ("", rest),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    (scheme, userinfo, &rest[..end], &rest[end..])
}

/// `host:port` of a URL such as `postgres://user@host:port/db`.
fn host_port(url: &str, default_port: u16) -> String {
    let (_, _, authority, _) = split_url(url);
    if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, proxy: &Proxy) -> String {
    let (scheme, userinfo, _, rest) = split_url(url);
    let at = if userinfo.is_empty() { "" } else { "@" };
    format!("{scheme}://{userinfo}{at}127.0.0.1:{}{rest}", proxy.port)
}

/// Retries `probe` until it returns true, for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outages_are_503_and_heal_without_a_restart() {
    let db = TestDatabase::create().await;
    let pg_proxy = Proxy::start(host_port(&db.url, 5432)).await;
    let redis_proxy = Proxy::start(host_port(&redis_url(), 6379)).await;
    let base = spawn(
        &through(&db.url, &pg_proxy),
        &through(&redis_url(), &redis_proxy),
        &prefix(),
    )
    .await;
    let client = client();
    let token = sign_up(&client, &base, "outage@example.com").await;
    let list = || {
        client
            .get(format!("{base}/api/v1/tasks"))
            .bearer_auth(&token)
            .send()
    };
    let ready = || client.get(format!("{base}/ready")).send();
    assert_eq!(list().await.expect("list").status(), StatusCode::OK);

    for (proxy, dependency) in [(&pg_proxy, "database"), (&redis_proxy, "sessionStore")] {
        proxy.cut().await;
        let (status, body) = json_of(list().await.expect("list during the outage")).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{dependency}: {body}"
        );
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(body["meta"]["requestId"].is_string());
        let (status, body) = json_of(ready().await.expect("ready")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let details = body["error"]["details"].as_object().expect("details");
        assert_eq!(
            details.keys().collect::<Vec<_>>(),
            [dependency],
            "/ready names {dependency}, and only it: {body}"
        );
        assert_eq!(
            client
                .get(format!("{base}/health"))
                .send()
                .await
                .expect("health")
                .status(),
            StatusCode::OK,
            "liveness does not depend on the stores"
        );

        proxy.restore();
        let healed = eventually(Duration::from_secs(20), || async {
            list().await.is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(healed, "requests succeed again once {dependency} is back");
        assert_eq!(ready().await.expect("ready").status(), StatusCode::OK);
    }
}

#[test]
fn host_port_reads_urls() {
    assert_eq!(
        host_port("postgres://postgres@127.0.0.1:5432/db", 5432),
        "127.0.0.1:5432"
    );
    assert_eq!(
        host_port("postgres://u:p@db/x?sslmode=disable", 5432),
        "db:5432"
    );
    assert_eq!(host_port("redis://127.0.0.1:6379", 6379), "127.0.0.1:6379");
    assert_eq!(host_port("redis://cache", 6379), "cache:6379");
}

/// Logs in (the account exists); returns the access token.
async fn log_in(client: &Client, base: &str, email: &str) -> String {
    let (status, body) = json_of(
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn new_project(client: &Client, base: &str, token: &str) -> String {
    let (status, body) = json_of(
        client
            .post(format!("{base}/api/v1/projects"))
            .bearer_auth(token)
            .json(&json!({"name": "Live across instances"}))
            .send()
            .await
            .expect("project"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("id").to_owned()
}

async fn new_task(client: &Client, base: &str, token: &str, project: &str, title: &str) {
    let response = client
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth(token)
        .json(&json!({"title": title, "projectId": project}))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn subscribed(base: &str, token: &str, project: &str, since: Option<i64>) -> ws::Socket {
    let mut socket = ws::connect(base, Some(token)).await.expect("upgrade");
    let mut m = json!({"type": "subscribe", "projectId": project});
    if let Some(since) = since {
        m["since"] = json!(since);
    }
    ws::send(&mut socket, m).await;
    let answer = ws::message(&mut socket).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    socket
}

/// With polling off, only the other instance's announcement over Redis
/// can bring a change made there: it reaches a socket and an SSE stream
/// on this instance, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_reaches_sockets_and_streams_on_the_other() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let no_polling = [("LIVE_POLL_INTERVAL", "1h")];
    let a = spawn_with(&db.url, &redis_url(), &prefix, &no_polling).await;
    let b = spawn_with(&db.url, &redis_url(), &prefix, &no_polling).await;
    let client = client();
    let token = sign_up(&client, &a, "live@example.com").await;
    let project = new_project(&client, &a, &token).await;
    let mut socket = subscribed(&b, &token, &project, None).await;
    let mut stream = client
        .get(format!("{b}/api/v1/projects/{project}/events/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    // The stream is live once its first comment arrives.
    let opened = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await;
    assert!(matches!(opened, Ok(Ok(Some(_)))), "the stream opens");
    for title in ["first", "second", "third"] {
        new_task(&client, &a, &token, &project, title).await;
    }
    let got = ws::events(&mut socket, 3).await;
    let expected: Vec<(i64, String)> = (3..=5).map(|s| (s, "task.created".to_owned())).collect();
    assert_eq!(got, expected);
    let mut text = String::new();
    while text.lines().filter(|l| l.starts_with("id: ")).count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .expect("not ended");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["3", "4", "5"]);
}

/// 1 000 changes from 8 clients, half through each instance, while four
/// sockets (two on each) follow the project: each socket's stream is
/// exactly the log's 1..N, no gap, no duplicate, in order; the log is
/// gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_through_both_instances_reach_every_socket_exactly_once_in_order() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let a = spawn(&db.url, &redis_url(), &prefix).await;
    let b = spawn(&db.url, &redis_url(), &prefix).await;
    let client = client();
    let token = sign_up(&client, &a, "busy@example.com").await;
    let project = new_project(&client, &a, &token).await;
    let mut sockets = Vec::new();
    for (i, base) in [&a, &b, &a, &b].into_iter().enumerate() {
        // Two follow from the start, two from now.
        let since = (i < 2).then_some(0);
        sockets.push(subscribed(base, &token, &project, since).await);
    }
    const CLIENTS: usize = 8;
    const EACH: usize = 125;
    let mut writers = JoinSet::new();
    for c in 0..CLIENTS {
        let base = if c % 2 == 0 { a.clone() } else { b.clone() };
        let (client, token, project) = (client.clone(), token.clone(), project.clone());
        writers.spawn(async move {
            for i in 0..EACH {
                new_task(&client, &base, &token, &project, &format!("c{c} t{i}")).await;
            }
        });
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut socket)| {
            tokio::spawn(async move {
                let n = CLIENTS * EACH + if i < 2 { 2 } else { 0 };
                let got: Vec<i64> = ws::events(&mut socket, n)
                    .await
                    .into_iter()
                    .map(|(seq, _)| seq)
                    .collect();
                (i, got)
            })
        })
        .collect();
    writers.join_all().await;
    let head = (CLIENTS * EACH + 2) as i64;
    for reader in readers {
        let (i, got) = reader.await.expect("reader");
        let first = if i < 2 { 1 } else { 3 };
        assert_eq!(got, (first..=head).collect::<Vec<_>>(), "socket {i}");
    }
    let (status, page) = json_of(
        client
            .get(format!(
                "{a}/api/v1/projects/{project}/events?since={}&limit=100",
                head - 100
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("events"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["meta"]["headSeq"], head, "the log is gapless to N");
}

/// An instance that never hears another's announcements (here: they use
/// different channels, as after a lost publish or a crash between commit
/// and announcement) still delivers the other's changes, from the log,
/// within its poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_whose_announcement_is_lost_still_arrive_from_the_log() {
    let db = TestDatabase::create().await;
    let a = spawn(&db.url, &redis_url(), &prefix()).await;
    let b = spawn_with(
        &db.url,
        &redis_url(),
        &prefix(),
        &[("LIVE_POLL_INTERVAL", "200ms")],
    )
    .await;
    let client = client();
    let on_a = sign_up(&client, &a, "deaf@example.com").await;
    let on_b = log_in(&client, &b, "deaf@example.com").await;
    let project = new_project(&client, &a, &on_a).await;
    let mut socket = subscribed(&b, &on_b, &project, None).await;
    new_task(&client, &a, &on_a, &project, "unannounced").await;
    let got = ws::events(&mut socket, 1).await;
    assert_eq!(got, [(3, "task.created".to_owned())]);
}

/// A `redis-server` of the test's own on a free port, without persistence,
/// killed when dropped: for tests that break Redis connections, which on
/// the shared Redis would disturb other tests.
struct TempRedis {
    port: u16,
    child: Child,
}

impl TempRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): this test starts a Redis of its own")
            });
        let redis = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.command(&["PING"]).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server does not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one command; answers the first line of the reply.
    async fn command(&self, args: &[&str]) -> std::io::Result<String> {
        send_command(self.port, args).await
    }
}

/// One command to the Redis on `port`, in RESP; the reply's first line.
async fn send_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).await?;
    let mut reply = vec![0; 256];
    let n = stream.read(&mut reply).await?;
    Ok(String::from_utf8_lossy(&reply[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned())
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The instances' pub/sub connections are killed again and again while
/// changes flow (announcements are lost, listeners reconnect): a socket on
/// the other instance still gets exactly every event, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_pubsub_connections_loses_no_event() {
    let db = TestDatabase::create().await;
    let redis = TempRedis::start().await;
    let prefix = prefix();
    let poll = [("LIVE_POLL_INTERVAL", "250ms")];
    let a = spawn_with(&db.url, &redis.url(), &prefix, &poll).await;
    let b = spawn_with(&db.url, &redis.url(), &prefix, &poll).await;
    let client = client();
    let token = sign_up(&client, &a, "chaos@example.com").await;
    let project = new_project(&client, &a, &token).await;
    let mut socket = subscribed(&b, &token, &project, None).await;
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let port = redis.port;
        tokio::spawn(async move {
            let mut kills = 0;
            while !stop.load(Ordering::SeqCst) {
                let reply = send_command(port, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
                if reply.is_ok_and(|r| r.trim_start_matches(':') != "0") {
                    kills += 1;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            kills
        })
    };
    const CHANGES: i64 = 200;
    for i in 0..CHANGES {
        new_task(&client, &a, &token, &project, &format!("t{i}")).await;
    }
    let got: Vec<i64> = ws::events(&mut socket, CHANGES as usize)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    stop.store(true, Ordering::SeqCst);
    let kills = killer.await.expect("killer");
    assert!(kills > 0, "pub/sub connections were killed");
    assert_eq!(got, (3..3 + CHANGES).collect::<Vec<_>>());
}

/// An instance SIGKILLed in the middle of a burst of changes (some
/// committed and never announced, some perhaps committed and never
/// acknowledged): a socket on another instance still gets every event the
/// log holds, exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_by_a_killed_instance_reach_subscribers_elsewhere() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let doomed = start_binary(&db.url, &prefix);
    let survivor = spawn_with(
        &db.url,
        &redis_url(),
        &prefix,
        &[("LIVE_POLL_INTERVAL", "250ms")],
    )
    .await;
    let client = client();
    let token = sign_up(&client, &doomed.base, "killed@example.com").await;
    let project = new_project(&client, &doomed.base, &token).await;
    let mut socket = subscribed(&survivor, &token, &project, None).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = JoinSet::new();
    for writer in 0..4 {
        let (client, token, base) = (client.clone(), token.clone(), doomed.base.clone());
        let (project, stop) = (project.clone(), Arc::clone(&stop));
        writers.spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 500 {
                n += 1;
                let _ = client
                    .post(format!("{base}/api/v1/tasks"))
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("w{writer} {n}"), "projectId": project}))
                    .send()
                    .await;
            }
        });
    }
    // Kill it mid-burst: once the log has some of it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while head_of(&client, &survivor, &token, &project).await < 20 {
        assert!(Instant::now() < deadline, "the burst got under way");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut doomed = doomed;
    doomed.child.kill().expect("SIGKILL");
    doomed.child.wait().expect("reap");
    stop.store(true, Ordering::Relaxed);
    while writers.join_next().await.is_some() {}
    let head = head_of(&client, &survivor, &token, &project).await;
    let got: Vec<i64> = ws::events(&mut socket, (head - 2) as usize)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(got, (3..=head).collect::<Vec<_>>());
}

/// The project's log head, as `base` reads it.
async fn head_of(client: &Client, base: &str, token: &str, project: &str) -> i64 {
    let (status, page) = json_of(
        client
            .get(format!(
                "{base}/api/v1/projects/{project}/events?since=0&limit=1"
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("head"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["meta"]["headSeq"].as_i64().expect("head")
}

/// A client's connection is cut mid-stream while changes keep coming; it
/// reconnects, to the other instance, with `since` = the last seq it got:
/// it continues exactly, nothing missed, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_mid_stream_continues_exactly_from_since_on_the_other_instance() {
    let db = TestDatabase::create().await;
    let prefix = prefix();
    let a = spawn(&db.url, &redis_url(), &prefix).await;
    let b = spawn(&db.url, &redis_url(), &prefix).await;
    let client = client();
    let token = sign_up(&client, &a, "cut@example.com").await;
    let project = new_project(&client, &a, &token).await;
    let writer = {
        let (client, a, token, project) =
            (client.clone(), a.clone(), token.clone(), project.clone());
        tokio::spawn(async move {
            for i in 0..300 {
                new_task(&client, &a, &token, &project, &format!("t{i}")).await;
            }
        })
    };
    let mut first = subscribed(&a, &token, &project, Some(0)).await;
    let before: Vec<i64> = ws::events(&mut first, 50)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    drop(first);
    let last = *before.last().expect("some events");
    let mut second = subscribed(&b, &token, &project, Some(last)).await;
    writer.await.expect("writer");
    let after: Vec<i64> = ws::events(&mut second, (302 - last) as usize)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    let all: Vec<i64> = before.into_iter().chain(after).collect();
    assert_eq!(all, (1..=302).collect::<Vec<_>>());
}
