//! `cargo xtask bench <SCENARIO>`: benchmarks of the release build against
//! real PostgreSQL and Redis, on this machine. Not part of `cargo xtask
//! test`: they take minutes and their numbers depend on the machine.
//!
//! xtask (std only) builds the release binaries, finds or starts the
//! services, gives each run a fresh database and Redis prefix, starts the
//! instances as child processes and runs the load generator
//! (`crates/loadgen`, tokio) against them; the load generator measures and
//! writes each run's JSON, then the scenario's report
//! (`target/bench/<scenario>.json`) and a table.
//!
//! A scenario is a module here with a `run(&Bench, args)`; what they share
//! (building, databases, instances, the load generator) is [`Bench`].

mod realtime;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::schemathesis::Paths;
use crate::services::{self, Services};
use crate::{Failure, Workspace};

pub const HELP: &str = "\
cargo xtask bench: benchmarks of the release build on PostgreSQL and Redis

USAGE:
    cargo xtask bench <SCENARIO> [FLAGS]

SCENARIOS:
    realtime [--subscribers N] [--rate R] [--duration S] [--instances 1|2]
             [--ramp N] [--client-threads N]
        WebSocket subscribers of one project and a writer changing its tasks
        at R changes/s: fan-out latency (commit to receipt) p50/p99/max, the
        time until the last subscriber has each event, deliveries/s
        sustained, server memory per idle connection, peak RSS, CPU, and
        missing/duplicate/out-of-order events. Without flags, two runs:
          single  10 000 subscribers on one instance, 50 changes/s, 30 s
                  (targets: p99 < 100 ms, < 20 KiB per idle connection)
          cross   1 000 subscribers on instance B, writes through A,
                  50 changes/s, 30 s (target: p99 < 20 ms)
        --instances keeps the run with that many instances; the other flags
        override the runs' settings. --ramp: connections opened per second
        (500); --client-threads: the load generator's threads (1).
        Report: target/bench/realtime.json (each run: target/bench/realtime-<run>.json,
        server logs: target/bench/<run>-<instance>.log).

Services are found or started as for `cargo xtask test` (see SERVICES in
`cargo xtask help`). The load generator shares the machine with the
servers, PostgreSQL and Redis: the report says how busy each was.
";

/// What the scenarios share: where things are, the services, the binaries.
#[derive(Debug)]
pub struct Bench {
    root: PathBuf,
    target: PathBuf,
    services: Services,
}

/// `cargo xtask bench ARGS...`.
pub fn run(ws: &Workspace, args: &[&str]) -> Result<(), Failure> {
    let fail = |detail: String| Failure::Step {
        name: "bench",
        detail,
    };
    match args {
        [] | ["help" | "-h" | "--help"] => {
            print!("{HELP}");
            Ok(())
        }
        ["realtime", flags @ ..] => {
            let runs = realtime::runs(flags).map_err(|e| fail(format!("{e}\n\n{HELP}")))?;
            let binaries = [("server", "taskflow"), ("loadgen", "loadgen")];
            let bench = Bench::prepare(ws, &binaries).map_err(fail)?;
            realtime::run(&bench, &runs).map_err(fail)
        }
        [other, ..] => Err(fail(format!("unknown scenario `{other}`\n\n{HELP}"))),
    }
}

impl Bench {
    /// Builds `binaries` (package, binary; release) and finds or starts
    /// the services.
    fn prepare(ws: &Workspace, binaries: &[(&str, &str)]) -> Result<Bench, String> {
        let mut build = vec!["build", "--release", "--locked"];
        for (package, binary) in binaries {
            build.extend(["-p", package, "--bin", binary]);
        }
        eprintln!("xtask: cargo {}", build.join(" "));
        let status = ws
            .command(&build)
            .status()
            .map_err(|e| format!("could not run cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("`cargo {}` exited with {status}", build.join(" ")));
        }
        let paths = Paths::new(&ws.root);
        Ok(Bench {
            root: ws.root.clone(),
            target: paths.target,
            services: services::ensure_services()?,
        })
    }

    /// `target/bench/`, made if missing.
    fn out_dir(&self) -> Result<PathBuf, String> {
        let dir = self.target.join("bench");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    fn binary(&self, name: &str) -> PathBuf {
        self.target.join("release").join(name)
    }

    /// A database of its own for one run, dropped with it.
    fn database(&self) -> Result<Database<'_>, String> {
        let name = services::unique_name("taskflow_bench").replace('-', "_");
        let url = self.services.ensure_database(&name)?;
        Ok(Database {
            services: &self.services,
            name,
            url,
        })
    }

    /// Starts an instance of the server on `database` and a Redis prefix,
    /// with `env` on top, its log in `log`, allowed `open_files` files.
    fn start_instance(
        &self,
        database: &Database<'_>,
        redis_prefix: &str,
        env: &[(String, String)],
        log: &Path,
        open_files: usize,
    ) -> Result<Instance, String> {
        let port = free_port_not(&[])?;
        let log_file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let server = self.binary("taskflow");
        let mut command = with_open_files(open_files, &server);
        command
            .arg("serve")
            .current_dir(&self.root)
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("APP_ENV", "development")
            .env("LOG_LEVEL", "warn")
            .env("LOG_FORMAT", "pretty")
            .env("JWT_SECRET", "benchmark-jwt-secret-0123456789-abcdefghijkl")
            .env("ACCESS_TOKEN_TTL", "1h")
            .env("REFRESH_TOKEN_TTL", "2h")
            .env("DATABASE_URL", &database.url)
            .env("REDIS_URL", &self.services.redis_url)
            .env("REDIS_KEY_PREFIX", redis_prefix)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", server.display()))?;
        Ok(Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        })
    }

    /// The load generator with `args`, to its end; its output goes to the
    /// terminal.
    fn loadgen(&self, args: &[String], open_files: usize) -> Result<(), String> {
        let program = self.binary("loadgen");
        let status = with_open_files(open_files, &program)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("could not run {}: {e}", program.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("loadgen {} exited with {status}", args.join(" ")))
        }
    }
}

/// `program`, run by `sh` after raising the open-files limit to
/// `open_files` (as far as the hard limit allows, unless privileged): each
/// socket is a file, for the server and the load generator alike.
fn with_open_files(open_files: usize, program: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; shift; exec "$@""#)
        .arg("sh")
        .arg(open_files.to_string())
        .arg(program);
    command
}

/// A free port on 127.0.0.1 other than `taken`.
fn free_port_not(taken: &[u16]) -> Result<u16, String> {
    for _ in 0..20 {
        let port = services::free_port()?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err("no free port found".to_owned())
}

/// A run's database, dropped when this is.
#[derive(Debug)]
struct Database<'a> {
    services: &'a Services,
    name: String,
    url: String,
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.services.drop_database(&self.name) {
            eprintln!("xtask: warning: {e}");
        }
    }
}

/// A running server, stopped when dropped.
#[derive(Debug)]
struct Instance {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Instance {
    /// `URL@PID`, as the load generator takes it.
    fn address(&self) -> String {
        format!("{}@{}", self.base, self.child.id())
    }

    /// Still running? Else why not, with the end of its log.
    fn check(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the server at {} exited ({status}); its log ({}):\n{}",
                self.base,
                self.log.display(),
                services::tail(&self.log, 20)
            )),
            Err(e) => Err(format!("cannot wait for the server at {}: {e}", self.base)),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
