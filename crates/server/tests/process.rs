//! The `taskflow` binary as an operator runs it: configuration errors,
//! start-up, and graceful shutdown on SIGTERM/SIGINT.

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

#[expect(
    clippy::zombie_processes,
    reason = "the child moves into `Running`, whose Drop kills and waits for it"
)]
fn start() -> Running {
    let mut child = taskflow(&[
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info"),
        ("SHUTDOWN_TIMEOUT", "10"),
    ])
    .spawn()
    .expect("start taskflow");
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
