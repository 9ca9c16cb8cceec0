//! The `schemathesis` step: the served OpenAPI document against the server
//! that serves it, with schemathesis (all checks; the examples, coverage,
//! fuzzing and stateful phases), once on the in-memory adapters and once on
//! PostgreSQL and Redis. Any finding fails the step.
//!
//! schemathesis is a Python program: it is installed, pinned, into a
//! virtual environment under `target/` when that is missing. A missing
//! `python3` or `venv` module fails the step with what to install.
//!
//! Each run gets a server of its own (the debug binary, on a free port) and
//! a user registered for it; schemathesis logs in as that user through the
//! API itself (`[auth.dynamic.openapi.bearer]` in `schemathesis.toml`) and
//! logs in again whenever a request is answered 401. So when a test case
//! calls `POST /auth/logout` (the stateful phase does), the session it ends
//! is replaced at the next request instead of failing every later one.

use std::env;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::services::{self, Services};

/// The schemathesis release the step installs and runs.
pub const VERSION: &str = "4.32.5";

/// Test cases per operation and phase (fuzzing, stateful): enough to find
/// what the document and the server disagree on, few enough that a run
/// takes a minute or two.
pub const MAX_EXAMPLES: &str = "200";

/// The seed unless `TASKFLOW_SCHEMATHESIS_SEED` gives another: the step is
/// a gate, so it runs the same cases every time (set the variable to explore).
const DEFAULT_SEED: &str = "1";
const SEED_VAR: &str = "TASKFLOW_SCHEMATHESIS_SEED";

/// The password of the user each run registers (the policy's rules hold).
const PASSWORD: &str = "schemathesis password 1";

/// How long a server may take to answer `/health`.
const STARTUP: Duration = Duration::from_secs(60);

/// Which adapters a run's server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Services,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Services => "postgres+redis",
        }
    }
}

/// Where the step keeps its files.
#[derive(Debug)]
pub struct Paths {
    /// The workspace root.
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Paths {
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        Paths {
            root: root.to_path_buf(),
            target,
        }
    }

    pub fn venv(&self) -> PathBuf {
        self.target.join("schemathesis-venv")
    }

    fn program(&self) -> PathBuf {
        self.venv().join("bin").join("schemathesis")
    }

    /// Reports, server logs and schemathesis's own files.
    fn work_dir(&self) -> PathBuf {
        self.target.join("schemathesis")
    }

    fn config(&self) -> PathBuf {
        self.root.join("xtask").join("schemathesis.toml")
    }

    fn server(&self) -> PathBuf {
        self.target.join("debug").join("taskflow")
    }
}

/// The pinned schemathesis, installed into [`Paths::venv`] unless it is
/// there already. Returns the program to run.
pub fn ensure_installed(paths: &Paths) -> Result<PathBuf, String> {
    let program = paths.program();
    if installed_version(&program).is_some_and(|version| version.contains(VERSION)) {
        return Ok(program);
    }
    let venv = paths.venv();
    let python = services::find_program_on_path("python3").ok_or_else(|| {
        "schemathesis needs python3, which is not installed: \
         apt-get install python3 python3-venv (Debian)"
            .to_owned()
    })?;
    eprintln!(
        "xtask: installing schemathesis {VERSION} into {}",
        venv.display()
    );
    let created = Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run {}: {error}", python.display()))?;
    if !created.status.success() {
        return Err(format!(
            "`{} -m venv` failed: the venv module is missing \
             (apt-get install python3-venv on Debian):\n{}",
            python.display(),
            String::from_utf8_lossy(&created.stderr).trim()
        ));
    }
    let pip = venv.join("bin").join("pip");
    let status = Command::new(&pip)
        .args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            &format!("schemathesis=={VERSION}"),
        ])
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("could not run {}: {error}", pip.display()))?;
    if !status.success() {
        return Err(format!(
            "`pip install schemathesis=={VERSION}` into {} failed ({status}); \
             it needs PyPI (or a configured index)",
            venv.display()
        ));
    }
    match installed_version(&program) {
        Some(version) if version.contains(VERSION) => Ok(program),
        other => Err(format!(
            "{} does not report schemathesis {VERSION} after the install: {other:?}",
            program.display()
        )),
    }
}

fn installed_version(program: &Path) -> Option<String> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// One run: a server on `backend`, a user, schemathesis against it.
pub fn run(
    paths: &Paths,
    program: &Path,
    backend: Backend,
    services: &Services,
) -> Result<(), String> {
    let work_dir = paths.work_dir();
    fs::create_dir_all(&work_dir)
        .map_err(|error| format!("cannot create {}: {error}", work_dir.display()))?;
    let unique = services::unique_name("schemathesis").replace('-', "_");
    let mut server_env: Vec<(String, String)> = vec![
        ("BIND_ADDR".into(), "127.0.0.1".into()),
        ("APP_ENV".into(), "development".into()),
        ("LOG_LEVEL".into(), "warn".into()),
        ("LOG_FORMAT".into(), "pretty".into()),
        (
            "JWT_SECRET".into(),
            "schemathesis-jwt-secret-0123456789-abcdefghij".into(),
        ),
        // Sessions (and their Redis keys) outlive the run by an hour at most.
        ("REFRESH_TOKEN_TTL".into(), "1h".into()),
    ];
    let database = match backend {
        Backend::Memory => None,
        Backend::Services => {
            let url = services.ensure_database(&unique)?;
            server_env.push(("DATABASE_URL".into(), url));
            server_env.push(("REDIS_URL".into(), services.redis_url.clone()));
            server_env.push(("REDIS_KEY_PREFIX".into(), format!("{unique}:")));
            Some(unique.clone())
        }
    };
    let outcome = run_against_server(paths, program, backend, &server_env, &work_dir);
    if let Some(database) = database
        && let Err(error) = services.drop_database(&database)
    {
        eprintln!("xtask: warning: {error}");
    }
    outcome
}

fn run_against_server(
    paths: &Paths,
    program: &Path,
    backend: Backend,
    server_env: &[(String, String)],
    work_dir: &Path,
) -> Result<(), String> {
    let port = services::free_port()?;
    let log_path = work_dir.join(format!("server-{}.log", backend.name().replace('+', "-")));
    let log = File::create(&log_path)
        .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|error| format!("cannot open {}: {error}", log_path.display()))?;
    let email = format!(
        "schemathesis-{}@example.com",
        services::unique_name("user").replace('-', ".")
    );
    let server = paths.server();
    let child = Command::new(&server)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .envs(server_env.iter().map(|(k, v)| (k, v)))
        .env("PORT", port.to_string())
        // A system admin, so the admin routes are exercised, not just
        // refused.
        .env("ADMIN_EMAILS", &email)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|error| format!("could not start {}: {error}", server.display()))?;
    let mut server = Server::new(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    server
        .wait_until_healthy(addr)
        .map_err(|error| format!("{error}\n{}", services::tail(&log_path, 20)))?;

    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}","name":"Schemathesis"}}"#);
    let (status, text) = http(addr, "POST", "/api/v1/auth/register", Some(&body))?;
    if status != 201 {
        return Err(format!(
            "registering the schemathesis user answered {status}: {text}"
        ));
    }

    let seed = env::var(SEED_VAR).unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let url = format!("http://{addr}/api-docs/openapi.json");
    let config = paths.config();
    let mut command = Command::new(program);
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        // Live streams (the WebSocket, SSE) never end on their own; their
        // tests are in crates/server/tests (live.rs, cluster.rs).
        .args(["--exclude-tag", "live"])
        .arg("--report-dir")
        .arg(work_dir.join(format!("report-{}", backend.name().replace('+', "-"))))
        .env("TASKFLOW_SCHEMATHESIS_EMAIL", &email)
        .env("TASKFLOW_SCHEMATHESIS_PASSWORD", PASSWORD)
        // Its example database and caches stay under target/.
        .current_dir(work_dir)
        .stdin(Stdio::null());
    eprintln!(
        "xtask: schemathesis on {} ({url}, seed {seed}; server log {}): {}",
        backend.name(),
        log_path.display(),
        shown(&command)
    );
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|error| format!("could not run {}: {error}", program.display()))?;
    eprintln!(
        "xtask: schemathesis on {} took {:.0} s",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    let still_running = server.child.try_wait().ok().flatten().is_none();
    drop(server);
    if !still_running {
        return Err(format!(
            "the server on {} died during the run\n{}",
            backend.name(),
            services::tail(&log_path, 30)
        ));
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis found problems on {} (its report is above; seed {seed})\n{}",
            backend.name(),
            services::tail(&log_path, 30)
        ))
    }
}

fn shown(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

/// The server of one run, stopped when dropped.
pub(crate) struct Server {
    child: Child,
}

impl Server {
    pub(crate) fn new(child: Child) -> Server {
        Server { child }
    }

    pub(crate) fn wait_until_healthy(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Err(format!("the server exited at start-up ({status})"));
            }
            match http(addr, "GET", "/health", None) {
                Ok((200, _)) => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(200));
                }
                Ok((status, text)) => {
                    return Err(format!("the server's /health answered {status}: {text}"));
                }
                Err(error) => {
                    return Err(format!(
                        "the server did not answer within {} s: {error}",
                        STARTUP.as_secs()
                    ));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 exchange (std only): the status and the body text.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<(u16, String), String> {
    let fail = |error: std::io::Error| format!("{method} {path} on {addr}: {error}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{method} {path} on {addr}: not an HTTP response: {text}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_a_4x_release() {
        assert!(VERSION.starts_with("4."), "{VERSION}");
    }

    #[test]
    fn the_config_file_exists_and_uses_the_credentials_xtask_sets() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("root");
        let config = fs::read_to_string(Paths::new(root).config()).expect("schemathesis.toml");
        assert!(
            config.contains("${TASKFLOW_SCHEMATHESIS_EMAIL}"),
            "{config}"
        );
        assert!(
            config.contains("${TASKFLOW_SCHEMATHESIS_PASSWORD}"),
            "{config}"
        );
        assert!(config.contains("/api/v1/auth/login"), "{config}");
    }

    #[test]
    fn the_password_satisfies_the_policy() {
        let len = PASSWORD.chars().count();
        assert!((8..=128).contains(&len));
        assert!(!PASSWORD.chars().any(char::is_control));
        assert!(!PASSWORD.contains(['"', '\\']), "it is put into JSON as is");
    }
}
