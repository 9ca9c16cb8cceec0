//! `cargo xtask`: TaskFlow's project chores (see `cargo xtask help`).
//!
//! Std-only on purpose: it has to build fast on a fresh CI machine, before
//! anything else does.

mod bench;
mod deny;
mod e2e;
mod schemathesis;
mod services;
mod tidy;

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use services::Services;

/// The database `dev` and `db` use.
const DEV_DATABASE: &str = "taskflow_dev";

/// What `db` runs: `cargo run -p server -- db <SUBCOMMAND>`.
const DB_SUBCOMMANDS: &[&str] = &["migrate", "reset", "seed"];

const HELP: &str = "\
cargo xtask: TaskFlow's project chores

USAGE:
    cargo xtask <COMMAND>

COMMANDS:
    test    The project's one test command, as CI runs it. Stops at the first
            failing step:
              1. fmt        cargo fmt --all -- --check
              2. clippy     cargo clippy --workspace --all-targets --locked -- -D warnings
              3. tidy       the layering checks below
              4. deny       cargo deny --locked check bans licenses sources
                            (installs cargo-deny first when it is missing)
              5. services   PostgreSQL and Redis for the tests (see SERVICES)
              6. doctests   cargo test --workspace --doc --locked
              7. tests      cargo nextest run --workspace --locked --no-fail-fast
                            (--profile ci when $CI is set), with DATABASE_URL
                            and REDIS_URL from step 5: the API tests run on
                            PostgreSQL and Redis
              8. api-on-memory
                            the API tests again on the in-memory adapters
                            (TASKFLOW_API_BACKEND=memory)
              9. e2e        the demo page in headless Chromium (see E2E)
             10. schemathesis
                            the served OpenAPI document against the server,
                            on the in-memory adapters and on PostgreSQL and
                            Redis (see SCHEMATHESIS)
            Without cargo-nextest, 6 and 7 are one `cargo test --workspace`.
    e2e     Only step 9.
    schemathesis
            Only step 10 (with the services it needs).
    dev [ARGS...]
            Run the server (cargo run -p server -- ARGS...) against PostgreSQL
            (database `taskflow_dev`, created with psql when missing) and
            Redis. Ctrl-C stops the server, then any throwaway servers.
    db migrate|reset|seed
            cargo run -p server -- db <migrate|reset|seed> against the
            database `taskflow_dev` (created with psql when missing).
    bench <SCENARIO> [FLAGS]
            Benchmarks of the release build on PostgreSQL and Redis (not part
            of `test`): `cargo xtask bench help` lists the scenarios
            (realtime: WebSocket fan-out latency, throughput and memory).
    tidy    Only the layering checks: `domain`'s normal dependency tree holds
            no web, database, runtime, serialization or crypto crate, and
            `api-http` depends on no adapter crate.
    help    Print this message.

SCHEMATHESIS:
    Installs schemathesis (pinned) into target/schemathesis-venv when missing
    (needs python3 with its venv module, and PyPI), builds the server (debug),
    and runs it twice on a free port: in memory, and on PostgreSQL (a fresh
    database, dropped afterwards) and Redis (a key prefix of its own). Each
    time it registers a user, then runs
      schemathesis --config-file xtask/schemathesis.toml run <URL of the
        served document> --checks all --phases examples,coverage,fuzzing,
        stateful --max-examples 200 --seed <seed>
    (seed 1, or $TASKFLOW_SCHEMATHESIS_SEED). Any finding fails the step.
    Reports and server logs are in target/schemathesis/.

E2E:
    Needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium;
    $TASKFLOW_CHROMIUM names another) and Node.js 20+ with npm; a missing one
    fails the step, naming what to install. Runs `npm ci` in e2e/ when
    e2e/node_modules is missing or older than e2e/package-lock.json (it
    pins playwright-core, which downloads no browser), builds the server
    (debug), runs it in memory on a free port, and runs
      node --test-reporter=spec e2e/demo.test.mjs <URL of the server>
    The server's log is target/e2e/server.log.

SERVICES:
    Each of PostgreSQL and Redis comes from the first of:
      1. DATABASE_URL / REDIS_URL, when set and their host:port answers;
      2. postgres://postgres@127.0.0.1:5432/postgres (when it lets `postgres`
         in without a password) / redis://127.0.0.1:6379 (when it answers);
      3. a throwaway server from the system's binaries (initdb, pg_ctl and
         postgres on $PATH or in /usr/lib/postgresql/*/bin, highest version;
         redis-server) on a free port, its files in a fresh directory under
         target/services/ (under /tmp for PostgreSQL when run as root, which
         runs it as `nobody`), stopped and removed when xtask ends.
    The commands get the chosen URLs as DATABASE_URL (a role that may CREATE
    DATABASE, on the maintenance database) and REDIS_URL; `dev` and `db` get
    DATABASE_URL pointing at `taskflow_dev` instead.
    TASKFLOW_THROWAWAY_SERVICES=1 skips 1 and 2.
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let outcome = match args.as_slice() {
        [] | ["help" | "-h" | "--help"] => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        ["test"] => Workspace::locate().and_then(|ws| ws.test()),
        ["tidy"] => Workspace::locate().and_then(|ws| ws.run_steps(&[Step::tidy()])),
        ["e2e"] => Workspace::locate().and_then(|ws| ws.run_steps(&[Step::e2e()])),
        ["schemathesis"] => Workspace::locate()
            .and_then(|ws| ws.run_steps(&[Step::services(), Step::schemathesis()])),
        ["bench", bench_args @ ..] => {
            Workspace::locate().and_then(|ws| bench::run(&ws, bench_args))
        }
        ["dev", server_args @ ..] => Workspace::locate().and_then(|ws| ws.dev(server_args)),
        ["db", subcommand] if DB_SUBCOMMANDS.contains(subcommand) => {
            Workspace::locate().and_then(|ws| ws.db(subcommand))
        }
        ["db", ..] => {
            eprintln!(
                "xtask: usage: cargo xtask db <{}>",
                DB_SUBCOMMANDS.join("|")
            );
            return ExitCode::from(2);
        }
        // Not in the help: starts the services, prints their URLs and waits
        // for Enter (or SECONDS, 3600 by default), to look at them by hand.
        ["services"] => hold_services(3600),
        ["services", seconds] if seconds.parse::<u64>().is_ok() => {
            hold_services(seconds.parse().unwrap_or(3600))
        }
        _ => {
            eprintln!("xtask: unknown command `{}`\n", args.join(" "));
            eprint!("{HELP}");
            return ExitCode::from(2);
        }
    };

    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("\nxtask: FAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command stopped.
#[derive(Debug)]
enum Failure {
    /// A step (or command) ran and failed.
    Step { name: &'static str, detail: String },
    /// The xtask could not get going.
    Setup(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Step { name, detail } => write!(f, "step `{name}` failed: {detail}"),
            Failure::Setup(detail) => f.write_str(detail),
        }
    }
}

/// What a step does.
#[derive(Debug)]
enum Action {
    /// `cargo <args>`, output streaming to the terminal.
    Cargo(Vec<&'static str>),
    /// The layering checks.
    Tidy,
    /// Find or start PostgreSQL and Redis; the later steps get their URLs.
    Services,
    /// schemathesis against the server, on both adapter sets.
    Schemathesis,
    /// The demo page in headless Chromium.
    E2e,
}

#[derive(Debug)]
struct Step {
    name: &'static str,
    action: Action,
    /// Extra environment for a cargo step.
    env: &'static [(&'static str, &'static str)],
}

impl Step {
    fn cargo(name: &'static str, args: &[&'static str]) -> Step {
        Step {
            name,
            action: Action::Cargo(args.to_vec()),
            env: &[],
        }
    }

    fn with_env(self, env: &'static [(&'static str, &'static str)]) -> Step {
        Step { env, ..self }
    }

    fn tidy() -> Step {
        Step {
            name: "tidy",
            action: Action::Tidy,
            env: &[],
        }
    }

    fn services() -> Step {
        Step {
            name: "services",
            action: Action::Services,
            env: &[],
        }
    }

    fn schemathesis() -> Step {
        Step {
            name: "schemathesis",
            action: Action::Schemathesis,
            env: &[],
        }
    }

    fn e2e() -> Step {
        Step {
            name: "e2e",
            action: Action::E2e,
            env: &[],
        }
    }

    fn describe(&self) -> String {
        match &self.action {
            Action::Cargo(args) => {
                let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
                format!("{env}cargo {}", args.join(" "))
            }
            Action::Tidy => "layering checks on `cargo tree`".to_owned(),
            Action::Services => "PostgreSQL and Redis for the tests".to_owned(),
            Action::E2e => "the demo page in headless Chromium (e2e/demo.test.mjs)".to_owned(),
            Action::Schemathesis => format!(
                "schemathesis {} against the server, in memory and on PostgreSQL + Redis",
                schemathesis::VERSION
            ),
        }
    }
}

/// A layering rule: no package in `package`'s normal dependency tree may be
/// one that `find` reports.
#[derive(Debug)]
struct TreeRule {
    package: &'static str,
    rule: &'static str,
    find: fn(&str) -> Vec<String>,
}

const TREE_RULES: &[TreeRule] = &[
    TreeRule {
        package: "domain",
        rule: "`domain` must stay free of web, database, async-runtime, serialization \
               and crypto crates; those belong in adapters, behind the domain's ports",
        find: tidy::banned_in,
    },
    TreeRule {
        package: "api-http",
        rule: "`api-http` must never depend on an adapter crate; the server crate \
               wires adapters in",
        find: tidy::adapters_in,
    },
];

/// `cargo tree` arguments (before any `-i`) for `package`'s normal
/// dependencies, on every target platform, without touching Cargo.lock.
fn tree_args(package: &str) -> Vec<&str> {
    vec![
        "tree", "-p", package, "-e", "normal", "--target", "all", "--locked",
    ]
}

#[derive(Debug)]
struct Workspace {
    cargo: OsString,
    root: PathBuf,
}

/// Selects the in-memory adapters for the API tests.
const MEMORY_BACKEND: &[(&str, &str)] = &[("TASKFLOW_API_BACKEND", "memory")];

impl Workspace {
    fn locate() -> Result<Workspace, Failure> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().ok_or_else(|| {
            Failure::Setup(format!(
                "cannot find the workspace root: {} has no parent",
                manifest_dir.display()
            ))
        })?;
        Ok(Workspace {
            cargo: env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            root: root.to_path_buf(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.cargo);
        command.args(args).current_dir(&self.root);
        command
    }

    fn has_nextest(&self) -> bool {
        self.command(&["nextest", "--version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn test(&self) -> Result<(), Failure> {
        let mut steps = vec![
            Step::cargo("fmt", &["fmt", "--all", "--", "--check"]),
            Step::cargo(
                "clippy",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            Step::tidy(),
            deny::step(self)?,
            // Only the tests need them: fmt, clippy and tidy don't wait.
            Step::services(),
        ];
        if self.has_nextest() {
            let mut nextest = vec![
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ];
            if on_ci() {
                nextest.extend(["--profile", "ci"]);
            }
            // nextest does not run doctests. They go first so that the
            // suite's own summary is the last thing a reader (or CI) sees.
            steps.push(Step::cargo(
                "doctests",
                &["test", "--workspace", "--doc", "--locked"],
            ));
            steps.push(Step::cargo("tests", &nextest));
            // The API suite again, on the in-memory adapters: the zero-setup
            // server must behave exactly as the real one.
            let mut api = nextest.clone();
            api.retain(|a| *a != "--workspace");
            api.extend(["-p", "server", "--test", "api"]);
            steps.push(Step::cargo("api-on-memory", &api).with_env(MEMORY_BACKEND));
            steps.push(Step::e2e());
            steps.push(Step::schemathesis());
        } else {
            eprintln!("xtask: cargo-nextest is not installed; running the tests with `cargo test`");
            steps.push(Step::cargo("tests", &["test", "--workspace", "--locked"]));
            steps.push(
                Step::cargo(
                    "api-on-memory",
                    &["test", "--locked", "-p", "server", "--test", "api"],
                )
                .with_env(MEMORY_BACKEND),
            );
            steps.push(Step::e2e());
            steps.push(Step::schemathesis());
        }
        self.run_steps(&steps)
    }

    fn run_steps(&self, steps: &[Step]) -> Result<(), Failure> {
        let total = steps.len();
        // Started by a `services` step, used by the steps after it, stopped
        // (throwaway servers) when this returns, failing or not.
        let mut services = None;
        for (index, step) in steps.iter().enumerate() {
            eprintln!(
                "\n==> [{}/{total}] {}: {}",
                index + 1,
                step.name,
                step.describe()
            );
            self.run_step(step, &mut services)?;
        }
        let names: Vec<&str> = steps.iter().map(|step| step.name).collect();
        eprintln!("\nxtask: ok ({})", names.join(", "));
        Ok(())
    }

    fn run_step(&self, step: &Step, services: &mut Option<Services>) -> Result<(), Failure> {
        let fail = |detail: String| Failure::Step {
            name: step.name,
            detail,
        };
        match &step.action {
            Action::Cargo(args) => {
                let mut command = self.command(args);
                if let Some(services) = services {
                    services.apply(&mut command);
                }
                command.envs(step.env.iter().copied());
                run_child(step.name, &step.describe(), &mut command, services.as_mut())
            }
            Action::Services => {
                *services = Some(services::ensure_services().map_err(fail)?);
                Ok(())
            }
            Action::Schemathesis => {
                let Some(services) = services.as_ref() else {
                    return Err(fail(
                        "no services: the `services` step must come first".into(),
                    ));
                };
                self.schemathesis(services).map_err(fail)
            }
            Action::E2e => {
                self.build_server().map_err(fail)?;
                let paths = schemathesis::Paths::new(&self.root);
                e2e::run(&self.root, &paths).map_err(fail)
            }
            Action::Tidy => {
                let mut broken = Vec::new();
                for rule in TREE_RULES {
                    if !self.check_tree(rule).map_err(fail)? {
                        broken.push(rule.package);
                    }
                }
                if broken.is_empty() {
                    Ok(())
                } else {
                    Err(fail(format!(
                        "layering violated in the dependency tree of: {}",
                        broken.join(", ")
                    )))
                }
            }
        }
    }

    /// Installs schemathesis when missing, builds the server, and runs
    /// schemathesis against it on each adapter set, both even when the
    /// first fails.
    fn schemathesis(&self, services: &Services) -> Result<(), String> {
        let paths = schemathesis::Paths::new(&self.root);
        let program = schemathesis::ensure_installed(&paths)?;
        self.build_server()?;
        let mut failed = Vec::new();
        for backend in [
            schemathesis::Backend::Memory,
            schemathesis::Backend::Services,
        ] {
            if let Err(error) = schemathesis::run(&paths, &program, backend, services) {
                eprintln!("\nxtask: {error}");
                failed.push(error.lines().next().unwrap_or_default().to_owned());
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// The server's debug binary, `target/debug/taskflow`.
    fn build_server(&self) -> Result<(), String> {
        let build = ["build", "--locked", "-p", "server", "--bin", "taskflow"];
        eprintln!("xtask: cargo {}", build.join(" "));
        let status = self
            .command(&build)
            .status()
            .map_err(|error| format!("could not run cargo build: {error}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`cargo {}` exited with {status}", build.join(" ")))
        }
    }

    /// `cargo run -p server -- <server_args>` against the services, with
    /// `DATABASE_URL` pointing at [`DEV_DATABASE`].
    fn dev(&self, server_args: &[&str]) -> Result<(), Failure> {
        let mut args = vec!["run", "-p", "server", "--"];
        args.extend(server_args);
        self.run_on_dev_database("dev", &args)
    }

    /// `cargo run -p server -- db <subcommand>` against [`DEV_DATABASE`].
    fn db(&self, subcommand: &str) -> Result<(), Failure> {
        self.run_on_dev_database("db", &["run", "-p", "server", "--", "db", subcommand])
    }

    fn run_on_dev_database(&self, name: &'static str, args: &[&str]) -> Result<(), Failure> {
        let mut services = services::ensure_services().map_err(Failure::Setup)?;
        let database_url = services
            .ensure_database(DEV_DATABASE)
            .map_err(Failure::Setup)?;
        let mut command = self.command(args);
        services.apply(&mut command);
        command.env("DATABASE_URL", &database_url);
        let shown = format!("cargo {}", args.join(" "));
        eprintln!("\n==> {name}: {shown} (DATABASE_URL: database `{DEV_DATABASE}`)");
        run_child(name, &shown, &mut command, Some(&mut services))
        // `services` drops here: throwaway servers stop after the server.
    }

    /// Checks one rule, printing what broke it and how. `Ok(false)` when the
    /// rule is broken, `Err` when the check itself could not be made.
    fn check_tree(&self, rule: &TreeRule) -> Result<bool, String> {
        let mut args = tree_args(rule.package);
        args.extend(["--prefix", "none", "--format", "{p}"]);
        let shown = format!("cargo {}", args.join(" "));
        let output = self
            .command(&args)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|error| format!("could not run `{shown}`: {error}"))?;
        if !output.status.success() {
            return Err(format!("`{shown}` exited with {}", output.status));
        }
        let tree = String::from_utf8_lossy(&output.stdout);

        // Guard against a change in cargo's output format turning the check
        // into a silent no-op: the first package listed must be the root.
        let packages = tidy::packages(&tree);
        match packages.first() {
            Some(root) if root.name == rule.package => {}
            _ => {
                return Err(format!(
                    "unexpected output from `{shown}` (expected `{} v...` first):\n{tree}",
                    rule.package
                ));
            }
        }

        let offenders = (rule.find)(&tree);
        if offenders.is_empty() {
            eprintln!(
                "tidy: {}: ok ({} crates in its normal dependency tree)",
                rule.package,
                packages.len()
            );
            return Ok(true);
        }

        eprintln!(
            "tidy: {}: FORBIDDEN crate(s) in its normal dependency tree: {}",
            rule.package,
            offenders.join(", ")
        );
        eprintln!("tidy: {}", rule.rule);
        for offender in &offenders {
            let mut inverted = tree_args(rule.package);
            inverted.extend(["-i", offender.as_str()]);
            eprintln!(
                "\ntidy: how `{offender}` gets into `{}` (cargo {}):",
                rule.package,
                inverted.join(" ")
            );
            // Best effort: the hint above is printed whether or not this runs.
            // Onto stderr, in order with the rest of the report.
            let _ = self.command(&inverted).stdout(io::stderr()).status();
        }
        Ok(false)
    }
}

/// Runs `command` to its end. With throwaway `services`, they are told to
/// let it finish should xtask be killed first: a Ctrl-C at the terminal
/// reaches xtask and `command` alike.
fn run_child(
    name: &'static str,
    shown: &str,
    command: &mut Command,
    services: Option<&mut Services>,
) -> Result<(), Failure> {
    let fail = |detail: String| Failure::Step { name, detail };
    let mut child = command
        .spawn()
        .map_err(|error| fail(format!("could not run `{shown}`: {error}")))?;
    if let Some(services) = services {
        services.watch_child(child.id());
    }
    let status = child
        .wait()
        .map_err(|error| fail(format!("could not wait for `{shown}`: {error}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("`{shown}` exited with {status}")))
    }
}

/// `cargo xtask services [SECONDS]`: the services, their URLs on stdout as
/// `NAME=value` lines, until Enter or `seconds` have passed.
fn hold_services(seconds: u64) -> Result<(), Failure> {
    let services = services::ensure_services().map_err(Failure::Setup)?;
    println!("DATABASE_URL={}", services.database_url);
    println!("REDIS_URL={}", services.redis_url);
    eprintln!("xtask: press Enter to stop (or wait {seconds} s)");
    let (entered, wait) = mpsc::channel();
    // Kept, so that the wait does not end when the reader gives up.
    let _keep = entered.clone();
    thread::spawn(move || {
        let mut line = String::new();
        // At end-of-file (no terminal) only the timeout ends the wait.
        if io::stdin().read_line(&mut line).is_ok_and(|read| read > 0) {
            let _ = entered.send(());
        }
    });
    let _ = wait.recv_timeout(Duration::from_secs(seconds));
    eprintln!("xtask: stopping the services");
    drop(services);
    Ok(())
}

/// Is this a CI run? CI systems set `CI` (usually to `true`).
fn on_ci() -> bool {
    env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}
