//! The `taskflow` binary as an operator runs it: configuration errors,
//! start-up, graceful shutdown on SIGTERM/SIGINT, and how it holds up
//! against abusive clients (login floods, slow bodies, garbage requests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_taskflow");

fn taskflow(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn an_invalid_variable_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("PORT", "not-a-port"),
        ("LOG_FORMAT", "xml"),
        ("APP_ENV", "staging"),
    ] {
        let out = taskflow(&[(var, value)]).output().expect("run taskflow");
        assert!(!out.status.success(), "{var}={value} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
        assert!(lines[0].contains(var), "{stderr}");
    }
}

#[test]
fn production_refuses_a_short_jwt_secret() {
    let out = taskflow(&[("APP_ENV", "production"), ("JWT_SECRET", "too-short")])
        .output()
        .expect("run taskflow");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}

#[test]
fn production_needs_both_stores_and_says_which_is_missing() {
    let secret = "p".repeat(32);
    let out = taskflow(&[("APP_ENV", "production"), ("JWT_SECRET", &secret)])
        .output()
        .expect("run taskflow");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn one_store_without_the_other_is_refused_naming_the_missing_one() {
    for (given, value, missing) in [
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/taskflow",
            "REDIS_URL",
        ),
        ("REDIS_URL", "redis://127.0.0.1:1", "DATABASE_URL"),
    ] {
        let out = taskflow(&[("LOG_LEVEL", "off"), (given, value)])
            .output()
            .expect("run taskflow");
        assert!(!out.status.success(), "{given} alone");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(missing), "{given} alone: {stderr}");
    }
}

#[test]
fn an_unreachable_database_fails_start_up_after_a_bounded_wait() {
    let secret = "p".repeat(32);
    let started = Instant::now();
    let out = taskflow(&[
        ("APP_ENV", "production"),
        ("LOG_LEVEL", "off"),
        ("JWT_SECRET", &secret),
        // Nothing listens on port 1.
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/taskflow"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ])
    .output()
    .expect("run taskflow");
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("DATABASE_URL"), "{stderr}");
    assert!(
        lines[0].contains("did not answer") && lines[0].contains("error connecting"),
        "with its cause: {stderr}"
    );
}

/// A running server and the lines it has logged so far.
struct Running {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Running {
    start_with(&[])
}

/// The server in memory, logging JSON at `info`, with `extra` variables.
#[expect(
    clippy::zombie_processes,
    reason = "the child moves into `Running`, whose Drop kills and waits for it"
)]
fn start_with(extra: &[(&str, &str)]) -> Running {
    let mut envs = vec![
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info"),
        ("SHUTDOWN_TIMEOUT", "10"),
    ];
    envs.extend_from_slice(extra);
    let mut child = taskflow(&envs).spawn().expect("start taskflow");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server logs its address within 30 s");
        let json: serde_json::Value = serde_json::from_str(&line).expect("log lines are JSON");
        if let Some(addr) = json["fields"]["addr"].as_str() {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            return Running {
                child,
                port: port.expect("addr has a port"),
                lines,
            };
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_zero() {
    let mut server = start();
    // A request whose body is still arriving when the signal comes.
    let body = r#"{"email":"nobody@example.com","password":"irrelevant"}"#;
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    write!(
        conn,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("send the first part");
    std::thread::sleep(Duration::from_millis(300));

    signal(&server.child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "a stopping server accepts no new connections"
    );

    conn.write_all(&body.as_bytes()[10..])
        .expect("send the rest");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .expect("read the response");
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "the request in flight is answered: {response}"
    );

    let status = wait_for_exit(&mut server.child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    let logged: Vec<String> = server.lines.try_iter().collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("shutting down") && l.contains("SIGTERM")),
        "the shutdown is logged: {logged:?}"
    );
}

#[test]
fn sigint_stops_an_idle_server_with_exit_zero() {
    let mut server = start();
    signal(&server.child, "INT");
    let status = wait_for_exit(&mut server.child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What `/proc` says of the server process: `VmHWM` (peak resident
    /// memory) or `VmRSS`, in KiB.
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status (Linux)");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status:\n{status}"))
    }

    /// The lines logged from now on, parsed, up to the first that `last`
    /// accepts (waiting up to 30 s for it).
    fn logged_until(&self, last: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut logged = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the awaited line was not logged: {logged:?}"));
            let line: serde_json::Value = serde_json::from_str(&line).expect("log lines are JSON");
            let done = last(&line);
            logged.push(line);
            if done {
                return logged;
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// POSTs `body` and returns the status, the `Retry-After` header and the
/// envelope.
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    let envelope = response.json().await.expect("an envelope");
    (status, retry_after, envelope)
}

/// Issue 6: 2 000 failed logins drove a server to 16 GB (a thread and
/// 19 MiB of argon2 memory per login, never given back). Hashing is now a
/// bounded number of jobs in reused memory, so a flood of logins (no
/// account needed) costs time, not memory, and the rest of the API stays
/// up.
#[test]
fn a_login_flood_stays_within_bounded_memory_and_other_requests_are_served() {
    const LOGINS: usize = 300;
    const CONCURRENCY: usize = 50;
    const BOUND_KIB: u64 = 256 * 1024;
    // Two slots, as on the 2-core machine this bound was set for: the
    // bound is about memory per slot, not about the host's core count.
    let server = start_with(&[
        ("LOG_LEVEL", "warn,taskflow=info"),
        ("PASSWORD_HASH_CONCURRENCY", "2"),
    ]);
    runtime().block_on(async {
        let client = client();
        // An account with a task, to read while the flood runs.
        let credentials = serde_json::json!({
            "email": "flood@example.com", "password": "correct horse battery", "name": "Flood"
        });
        let (status, _, _) = post_json(
            &client,
            &server.url("/api/v1/auth/register"),
            None,
            credentials,
        )
        .await;
        assert_eq!(status, 201);
        let login =
            serde_json::json!({"email": "flood@example.com", "password": "correct horse battery"});
        let (status, _, session) =
            post_json(&client, &server.url("/api/v1/auth/login"), None, login).await;
        assert_eq!(status, 200, "{session}");
        let token = session["data"]["accessToken"]
            .as_str()
            .expect("a token")
            .to_owned();
        let task = serde_json::json!({"title": "Read me during the flood"});
        let (status, _, task) =
            post_json(&client, &server.url("/api/v1/tasks"), Some(&token), task).await;
        assert_eq!(status, 201, "{task}");
        let task_url = server.url(&format!(
            "/api/v1/tasks/{}",
            task["data"]["id"].as_str().expect("id")
        ));
        let before_kib = server.memory_kib("VmRSS");

        // The flood: unknown and malformed e-mails alike run the dummy hash.
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let flooders: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (client, next, url) = (
                    client.clone(),
                    next.clone(),
                    server.url("/api/v1/auth/login"),
                );
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < LOGINS {
                        let body = serde_json::json!({"email": "not-an-email", "password": "x"});
                        let (status, retry_after, envelope) =
                            post_json(&client, &url, None, body).await;
                        seen.push((status, retry_after, envelope));
                    }
                    seen
                })
            })
            .collect();
        // Meanwhile, an authenticated read is served.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read = client
            .get(&task_url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(
            read.status().as_u16(),
            200,
            "a read during the flood is served"
        );

        let mut refused = 0;
        for flooder in flooders {
            for (status, retry_after, envelope) in flooder.await.expect("join") {
                match status {
                    401 => assert_eq!(envelope["error"]["code"], "INVALID_CREDENTIALS"),
                    // Load shedding is allowed; it must say when to retry.
                    503 => {
                        assert_eq!(envelope["error"]["code"], "SERVICE_UNAVAILABLE");
                        assert!(retry_after.is_some(), "503 without Retry-After: {envelope}");
                        refused += 1;
                    }
                    other => panic!("unexpected {other}: {envelope}"),
                }
            }
        }
        let peak_kib = server.memory_kib("VmHWM");
        eprintln!(
            "{LOGINS} failed logins at concurrency {CONCURRENCY}: RSS {before_kib} KiB before, \
             peak {peak_kib} KiB; {refused} shed with 503"
        );
        assert!(
            peak_kib < BOUND_KIB,
            "peak RSS {peak_kib} KiB is over {BOUND_KIB} KiB"
        );
        assert!(refused < LOGINS, "the server did some hashing");
    });
}

#[test]
fn logins_beyond_the_hashing_queue_get_503_with_retry_after() {
    let server = start_with(&[
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_HASH_QUEUE_TIMEOUT", "1ms"),
    ]);
    runtime().block_on(async {
        let client = client();
        let logins: Vec<_> = (0..20)
            .map(|_| {
                let (client, url) = (client.clone(), server.url("/api/v1/auth/login"));
                tokio::spawn(async move {
                    let body =
                        serde_json::json!({"email": "nobody@example.com", "password": "guess"});
                    post_json(&client, &url, None, body).await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for login in logins {
            let (status, retry_after, envelope) = login.await.expect("join");
            if status == 503 {
                assert_eq!(
                    envelope["error"]["code"], "SERVICE_UNAVAILABLE",
                    "{envelope}"
                );
                assert_eq!(retry_after.as_deref(), Some("1"), "{envelope}");
                assert!(envelope["meta"]["requestId"].is_string(), "{envelope}");
            } else {
                assert_eq!(status, 401, "{envelope}");
            }
            statuses.push(status);
        }
        assert!(
            statuses.contains(&503),
            "one slot, twenty logins: some are shed: {statuses:?}"
        );
        assert!(
            statuses.contains(&401),
            "and some are answered: {statuses:?}"
        );
    });
}

/// Reads from `conn` until the peer closes it (or resets it: a server
/// that closes while unread bytes are still arriving does), failing after
/// 30 s.
fn read_until_closed(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    let mut response = Vec::new();
    let mut chunk = [0; 8192];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server does not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn a_body_that_arrives_too_slowly_is_answered_408_and_the_connection_closed() {
    let server = start_with(&[("REQUEST_BODY_TIMEOUT", "1s")]);
    // Keep-alive both times; the body stalls after its first bytes. With a
    // length actix would close the connection anyway (the rest of the body
    // is unread); a chunked body it would drain and keep: we close both.
    for framing in ["Content-Length: 100", "Transfer-Encoding: chunked"] {
        let first_bytes = if framing.starts_with("Content-Length") {
            "{\"email\":"
        } else {
            "9\r\n{\"email\":\r\n"
        };
        let mut conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        write!(
            conn,
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{framing}\r\n\r\n{first_bytes}"
        )
        .expect("send the head and a little of the body");
        let response = read_until_closed(&mut conn);
        assert!(
            response.starts_with("HTTP/1.1 408"),
            "{framing}: {response}"
        );
        assert!(
            response.contains("\"REQUEST_TIMEOUT\""),
            "{framing}: {response}"
        );
        assert!(
            response.to_ascii_lowercase().contains("connection: close"),
            "{framing}: {response}"
        );
    }
}

#[test]
fn malformed_requests_are_not_logged_as_server_errors() {
    let server = start_with(&[("LOG_LEVEL", "debug")]);
    for garbage in [
        "GARBAGE\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n".to_owned(),
        format!(
            "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
            // Over actix's 128 KiB limit on a request head.
            "a".repeat(140_000)
        ),
    ] {
        let mut conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        conn.write_all(garbage.as_bytes()).expect("send");
        let response = read_until_closed(&mut conn);
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 4"),
            "{response}"
        );
    }
    // The logs have caught up once a later request is logged.
    let health = std::net::TcpStream::connect(("127.0.0.1", server.port));
    let mut health = health.expect("connect");
    health
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    assert!(read_until_closed(&mut health).starts_with("HTTP/1.1 200"));
    let logged = server.logged_until(|line| {
        line["fields"]["message"] == "request finished" && line["span"]["route"] == "/health"
    });
    let errors: Vec<_> = logged.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged as errors: {errors:?}"
    );
    let warnings: Vec<_> = logged
        .iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "taskflow::http")
        .collect();
    assert!(
        !warnings.is_empty(),
        "the connection errors are still logged, as warnings: {logged:?}"
    );
    for warning in warnings {
        let message = warning["fields"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("aaaa") && !message.contains("GARBAGE"),
            "no payload: {message}"
        );
    }
}

/// `taskflow users promote EMAIL`: a registered user becomes a system
/// admin; an unknown address fails naming it; production wants `--yes`.
#[test]
fn users_promote_makes_a_registered_user_a_system_admin() {
    use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore};
    use adapters_postgres::PgStore;
    use domain::{Role, Store, Users};

    let runtime = runtime();
    let database = runtime.block_on(adapters_postgres::testing::TestDatabase::create());
    let secret = "p".repeat(32);
    let promote = |email: &str, extra: &[(&str, &str)]| {
        let mut envs = vec![
            ("LOG_LEVEL", "off"),
            ("DATABASE_URL", database.url.as_str()),
            ("PASSWORD_HASH_CONCURRENCY", "1"),
        ];
        envs.extend_from_slice(extra);
        let mut cmd = taskflow(&envs);
        cmd.args(["users", "promote", email]);
        cmd
    };

    let out = promote("ada@example.com", &[])
        .output()
        .expect("run taskflow");
    assert!(!out.status.success(), "nobody is registered yet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no user has the address ada@example.com"),
        "{stderr}"
    );

    let config = server::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database.url.clone()),
        "PASSWORD_HASH_CONCURRENCY" => Some("1".to_owned()),
        _ => None,
    })
    .expect("config");
    let user = runtime.block_on(async {
        let store: PgStore = server::connect_database(&database.url, &config)
            .await
            .expect("database");
        let hasher = adapters_auth::Argon2Hasher::with_params(8, 1, 1).expect("params");
        let app = server::taskflow::<
            server::Adapters<PgStore, MemorySessionStore, MemoryIdempotencyStore>,
        >(
            store,
            MemorySessionStore::default(),
            MemoryIdempotencyStore::default(),
            hasher,
            server::Bus::default(),
            &config,
        );
        app.register(domain::RegisterInput {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            name: "Ada".into(),
        })
        .await
        .expect("registered")
    });
    assert_eq!(user.role, Role::User);

    let production = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", secret.as_str()),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ];
    let out = promote("ada@example.com", &production)
        .output()
        .expect("run taskflow");
    assert!(!out.status.success(), "production without --yes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--yes"), "{stderr}");

    let mut cmd = promote("ADA@example.com", &production);
    cmd.arg("--yes");
    let out = cmd.output().expect("run taskflow");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ada@example.com is a system admin"),
        "{stdout}"
    );
    let role = runtime.block_on(async {
        let store = PgStore::new(&database.url, &adapters_postgres::PgOptions::default());
        let mut conn = store.connection().await.expect("connection");
        conn.user_by_id(user.id)
            .await
            .expect("read")
            .expect("the user")
            .role
    });
    assert_eq!(role, Role::Admin);
}

/// Open WebSockets do not hold up a graceful stop: SIGTERM closes them
/// with 1001 (clients reconnect elsewhere with `since`) and the server
/// exits well before its shutdown timeout.
#[test]
fn sigterm_closes_open_sockets_with_1001_and_exits_promptly() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut server = start_with(&[("SHUTDOWN_TIMEOUT", "30")]);
    let base = format!("http://127.0.0.1:{}", server.port);
    let rt = runtime();
    let mut socket = rt.block_on(async {
        let client = client();
        let account = serde_json::json!({
            "email": "stop@example.com", "password": "correct horse battery", "name": "Stop"
        });
        let (status, _, _) = post_json(
            &client,
            &format!("{base}/api/v1/auth/register"),
            None,
            account.clone(),
        )
        .await;
        assert_eq!(status, 201);
        let credentials = serde_json::json!({
            "email": "stop@example.com", "password": "correct horse battery"
        });
        let (status, _, login) = post_json(
            &client,
            &format!("{base}/api/v1/auth/login"),
            None,
            credentials,
        )
        .await;
        assert_eq!(status, 200);
        let token = login["data"]["accessToken"].as_str().expect("token");
        let mut request = format!("ws://127.0.0.1:{}/api/v1/ws", server.port)
            .into_client_request()
            .expect("request");
        let bearer = format!("Bearer {token}").parse().expect("header");
        request.headers_mut().insert("Authorization", bearer);
        tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade")
            .0
    });
    let stopping = Instant::now();
    signal(&server.child, "TERM");
    let code = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                other => panic!("a close frame, got {other:?}"),
            }
        }
    });
    assert_eq!(code, Some(1001));
    let status = wait_for_exit(&mut server.child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "well before the 30 s timeout"
    );
}
