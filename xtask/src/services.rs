//! PostgreSQL and Redis for the tests and for `cargo xtask dev`.
//!
//! Each service, on its own, comes from the first of:
//!
//! 1. `DATABASE_URL` / `REDIS_URL`, when set and their host:port accepts a
//!    TCP connection;
//! 2. the local defaults, `postgres://postgres@127.0.0.1:5432/postgres`
//!    (when it lets `postgres` in without a password) and
//!    `redis://127.0.0.1:6379` (when it answers PING);
//! 3. a throwaway server started from the system's binaries on a free port,
//!    its files in a fresh directory, stopped and removed when xtask ends.
//!
//! `TASKFLOW_THROWAWAY_SERVICES=1` skips 1 and 2.

mod postgres;
mod probe;
mod redis;
mod sys;
mod url;

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use url::Endpoint;

/// Set to `1` to always start throwaway servers.
pub const THROWAWAY_VAR: &str = "TASKFLOW_THROWAWAY_SERVICES";

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

const POSTGRES_PORT: u16 = 5432;
const REDIS_PORT: u16 = 6379;

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
        }
    }

    fn var(self) -> &'static str {
        match self {
            Service::Postgres => "DATABASE_URL",
            Service::Redis => "REDIS_URL",
        }
    }

    fn default_url(self) -> &'static str {
        match self {
            Service::Postgres => DEFAULT_DATABASE_URL,
            Service::Redis => DEFAULT_REDIS_URL,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Service::Postgres => POSTGRES_PORT,
            Service::Redis => REDIS_PORT,
        }
    }
}

/// The error when a service can be neither reached nor started: `tried`
/// says what was tried, one item each.
pub fn missing_binaries_message(service: Service, tried: &[String]) -> String {
    let mut message = match service {
        Service::Postgres => "PostgreSQL is not reachable and its server binaries are not \
                              installed: apt-get install postgresql (Debian) or set DATABASE_URL"
            .to_owned(),
        Service::Redis => "Redis is not reachable and redis-server is not installed: \
                           apt-get install redis-server (Debian) or set REDIS_URL"
            .to_owned(),
    };
    for attempt in tried {
        message.push_str("\n  tried: ");
        message.push_str(attempt);
    }
    message.push_str(match service {
        Service::Postgres => {
            "\n  looked for initdb, pg_ctl and postgres (all three in one directory) in $PATH \
             and /usr/lib/postgresql/*/bin"
        }
        Service::Redis => "\n  looked for redis-server in $PATH, /usr/bin and /usr/sbin",
    });
    message
}

/// Where a service came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `DATABASE_URL` / `REDIS_URL`.
    Env,
    /// The local default.
    Local,
    /// A throwaway server of this run.
    Throwaway,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Env => "from the environment",
            Source::Local => "local",
            Source::Throwaway => "throwaway",
        })
    }
}

/// The services in use. Throwaway servers among them stop when this is
/// dropped.
#[derive(Debug)]
pub struct Services {
    /// A role that may `CREATE DATABASE`, on a maintenance database.
    pub database_url: String,
    pub redis_url: String,
    postgres_source: Source,
    redis_source: Source,
    postgres: Option<postgres::Throwaway>,
    redis: Option<redis::Throwaway>,
}

/// Is the switch `var` on?
fn switched_on(var: &str) -> bool {
    env::var(var).is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false" | "no"))
}

/// Where throwaway servers keep their files: `target/services/`.
fn services_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("services")
}

/// Finds or starts PostgreSQL and Redis (see the module's documentation),
/// and says on stderr which are used.
pub fn ensure_services() -> Result<Services, String> {
    let throwaway_only = switched_on(THROWAWAY_VAR);
    let dir = services_dir();
    let mut taken_ports = Vec::new();

    let (database_url, postgres_source, postgres) =
        match existing(Service::Postgres, throwaway_only) {
            Ok((url, source)) => (url, source, None),
            Err(tried) => {
                let Some(bin_dir) = postgres::find_server_dir() else {
                    return Err(missing_binaries_message(Service::Postgres, &tried));
                };
                let port = sys::free_port(&taken_ports)?;
                taken_ports.push(port);
                eprintln!(
                    "xtask: no PostgreSQL to use ({}); starting a throwaway one ({}) on \
                     127.0.0.1:{port}",
                    tried.join("; "),
                    bin_dir.display()
                );
                let server = postgres::Throwaway::start(&bin_dir, &dir, port)?;
                let url = format!(
                    "postgres://{user}@127.0.0.1:{port}/{user}",
                    user = postgres::SUPERUSER
                );
                (url, Source::Throwaway, Some(server))
            }
        };

    let (redis_url, redis_source, redis) = match existing(Service::Redis, throwaway_only) {
        Ok((url, source)) => (url, source, None),
        Err(tried) => {
            let Some(program) = redis::find_server() else {
                return Err(missing_binaries_message(Service::Redis, &tried));
            };
            let port = sys::free_port(&taken_ports)?;
            eprintln!(
                "xtask: no Redis to use ({}); starting a throwaway one ({}) on 127.0.0.1:{port}",
                tried.join("; "),
                program.display()
            );
            let server = redis::Throwaway::start(&program, &dir, port)?;
            (
                format!("redis://127.0.0.1:{port}"),
                Source::Throwaway,
                Some(server),
            )
        }
    };

    let services = Services {
        database_url,
        redis_url,
        postgres_source,
        redis_source,
        postgres,
        redis,
    };
    eprintln!("xtask: services: {}", services.summary());
    Ok(services)
}

/// A running server to use, from the environment or the local default, or
/// what was tried.
fn existing(service: Service, throwaway_only: bool) -> Result<(String, Source), Vec<String>> {
    if throwaway_only {
        return Err(vec![format!(
            "{THROWAWAY_VAR} is set: not looking at {} or 127.0.0.1:{}",
            service.var(),
            service.default_port()
        )]);
    }
    let mut tried = Vec::new();
    if let Some(url) = env::var(service.var())
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        let checked = url::endpoint(&url, service.default_port())
            .and_then(|endpoint| probe::connect(&endpoint).map(drop));
        match checked {
            Ok(()) => return Ok((url, Source::Env)),
            Err(error) => {
                let attempt = format!("{}={}: {error}", service.var(), url::redact(&url));
                eprintln!("xtask: warning: {attempt}; looking elsewhere");
                tried.push(attempt);
            }
        }
    }
    let local = Endpoint {
        host: "127.0.0.1".into(),
        port: service.default_port(),
    };
    let checked = match service {
        Service::Postgres => {
            probe::postgres_lets_in(&local, postgres::SUPERUSER, postgres::SUPERUSER)
        }
        Service::Redis => probe::redis_answers(&local),
    };
    match checked {
        Ok(()) => Ok((service.default_url().to_owned(), Source::Local)),
        Err(error) => {
            tried.push(format!("{}: {error}", service.default_url()));
            Err(tried)
        }
    }
}

impl Services {
    /// One line: which services, from where (no passwords).
    pub fn summary(&self) -> String {
        let describe = |service: Service, url: &str, source: Source| {
            format!("{} {} ({source})", service.name(), url::redact(url))
        };
        format!(
            "{}; {}",
            describe(Service::Postgres, &self.database_url, self.postgres_source),
            describe(Service::Redis, &self.redis_url, self.redis_source)
        )
    }

    /// Hands the services to `command`: `DATABASE_URL`, `REDIS_URL`.
    pub fn apply(&self, command: &mut Command) {
        command
            .env(Service::Postgres.var(), &self.database_url)
            .env(Service::Redis.var(), &self.redis_url);
    }

    /// Should xtask die with `pid` still running (Ctrl-C reaches both), the
    /// throwaway servers wait for `pid` to end before they stop.
    pub fn watch_child(&mut self, pid: u32) {
        if let Some(server) = &mut self.postgres {
            server.watch_child(pid);
        }
        if let Some(server) = &mut self.redis {
            server.watch_child(pid);
        }
    }

    /// Creates database `name` on the PostgreSQL server unless it exists,
    /// with `psql`; returns its URL.
    pub fn ensure_database(&self, name: &str) -> Result<String, String> {
        let url = url::with_database(&self.database_url, name)?;
        let fail = |error: String| {
            format!(
                "cannot create the database `{name}` on {}: {error}",
                url::redact(&self.database_url)
            )
        };
        let exists = self
            .psql(&format!(
                "SELECT 1 FROM pg_database WHERE datname = '{name}'"
            ))
            .map_err(fail)?;
        if exists != "1" {
            match self.psql(&format!("CREATE DATABASE \"{name}\"")) {
                Ok(_) => eprintln!("xtask: created the database `{name}`"),
                // Someone else was quicker.
                Err(error) if error.contains("already exists") => {}
                Err(error) => return Err(fail(error)),
            }
        }
        Ok(url)
    }

    /// Drops database `name` (and the connections still on it), with `psql`.
    pub fn drop_database(&self, name: &str) -> Result<(), String> {
        self.psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map(drop)
            .map_err(|error| {
                format!(
                    "cannot drop the database `{name}` on {}: {error}",
                    url::redact(&self.database_url)
                )
            })
    }

    /// Runs one SQL command on the maintenance database with `psql`; its
    /// output, or its error.
    fn psql(&self, sql: &str) -> Result<String, String> {
        let bin_dir = self
            .postgres
            .as_ref()
            .map(|server| server.bin_dir.as_path());
        let Some(psql) = postgres::find_psql(bin_dir) else {
            return Err(
                "psql is not installed (apt-get install postgresql-client on Debian); \
                        or create the database yourself"
                    .to_owned(),
            );
        };
        let output = Command::new(&psql)
            .args([self.database_url.as_str(), "-X", "-q", "-t", "-A"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("could not run {}: {error}", psql.display()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }
}

/// `name` in `$PATH` or the usual system directories.
pub fn find_program_on_path(name: &str) -> Option<PathBuf> {
    sys::find_on_path(name)
}

/// A name no earlier run used: `<prefix>-<pid>-<nanoseconds>`.
pub fn unique_name(prefix: &str) -> String {
    sys::unique_name(prefix)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    sys::free_port(&[])
}

/// The last `lines` lines of a file, for an error message.
pub fn tail(path: &Path, lines: usize) -> String {
    sys::tail(path, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_postgres_message() {
        let message = missing_binaries_message(
            Service::Postgres,
            &["postgres://postgres@127.0.0.1:5432/postgres: connection refused".to_owned()],
        );
        assert_eq!(
            message.lines().next(),
            Some(
                "PostgreSQL is not reachable and its server binaries are not installed: \
                 apt-get install postgresql (Debian) or set DATABASE_URL"
            )
        );
        assert!(message.contains(
            "\n  tried: postgres://postgres@127.0.0.1:5432/postgres: connection refused\n"
        ));
        assert!(message.contains("/usr/lib/postgresql/*/bin"));
    }

    #[test]
    fn missing_redis_message() {
        let message = missing_binaries_message(Service::Redis, &[]);
        assert_eq!(
            message.lines().next(),
            Some(
                "Redis is not reachable and redis-server is not installed: \
                 apt-get install redis-server (Debian) or set REDIS_URL"
            )
        );
        assert_eq!(message.lines().count(), 2);
    }

    #[test]
    fn defaults_agree_with_the_ports() {
        for service in [Service::Postgres, Service::Redis] {
            let endpoint = url::endpoint(service.default_url(), 1).expect("the default URL parses");
            assert_eq!(endpoint.host, "127.0.0.1");
            assert_eq!(endpoint.port, service.default_port());
        }
    }

    #[test]
    fn summary_hides_passwords() {
        let services = Services {
            database_url: "postgres://app:hunter2@db:5432/postgres".to_owned(),
            redis_url: "redis://:hunter2@cache:6379/0".to_owned(),
            postgres_source: Source::Env,
            redis_source: Source::Local,
            postgres: None,
            redis: None,
        };
        assert_eq!(
            services.summary(),
            "PostgreSQL postgres://app:***@db:5432/postgres (from the environment); \
             Redis redis://:***@cache:6379/0 (local)"
        );
    }
}
