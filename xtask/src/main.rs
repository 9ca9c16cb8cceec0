//! `cargo xtask`: TaskFlow's project chores (see `cargo xtask help`).
//!
//! Std-only on purpose: it has to build fast on a fresh CI machine, before
//! anything else does.

mod tidy;

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const HELP: &str = "\
cargo xtask: TaskFlow's project chores

USAGE:
    cargo xtask <COMMAND>

COMMANDS:
    test    The project's one test command, as CI runs it. Stops at the first
            failing step:
              1. fmt      cargo fmt --all -- --check
              2. clippy   cargo clippy --workspace --all-targets --locked -- -D warnings
              3. tidy     the layering checks below
              4. tests    cargo test --workspace --doc --locked, then
                          cargo nextest run --workspace --locked --no-fail-fast
                          (--profile ci when $CI is set);
                          or cargo test --workspace --locked if cargo-nextest
                          is not installed
    tidy    Only the layering checks: `domain`'s normal dependency tree holds
            no web, database, runtime, serialization or crypto crate, and
            `api-http` depends on no adapter crate.
    help    Print this message.
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
    /// A step ran and failed.
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
}

#[derive(Debug)]
struct Step {
    name: &'static str,
    action: Action,
}

impl Step {
    fn cargo(name: &'static str, args: &[&'static str]) -> Step {
        Step {
            name,
            action: Action::Cargo(args.to_vec()),
        }
    }

    fn tidy() -> Step {
        Step {
            name: "tidy",
            action: Action::Tidy,
        }
    }

    fn describe(&self) -> String {
        match &self.action {
            Action::Cargo(args) => format!("cargo {}", args.join(" ")),
            Action::Tidy => "layering checks on `cargo tree`".to_owned(),
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
        } else {
            eprintln!("xtask: cargo-nextest is not installed; running the tests with `cargo test`");
            steps.push(Step::cargo("tests", &["test", "--workspace", "--locked"]));
        }
        self.run_steps(&steps)
    }

    fn run_steps(&self, steps: &[Step]) -> Result<(), Failure> {
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            eprintln!(
                "\n==> [{}/{total}] {}: {}",
                index + 1,
                step.name,
                step.describe()
            );
            self.run_step(step)?;
        }
        let names: Vec<&str> = steps.iter().map(|step| step.name).collect();
        eprintln!("\nxtask: ok ({})", names.join(", "));
        Ok(())
    }

    fn run_step(&self, step: &Step) -> Result<(), Failure> {
        let fail = |detail: String| Failure::Step {
            name: step.name,
            detail,
        };
        match &step.action {
            Action::Cargo(args) => {
                let shown = step.describe();
                let status = self
                    .command(args)
                    .status()
                    .map_err(|error| fail(format!("could not run `{shown}`: {error}")))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(fail(format!("`{shown}` exited with {status}")))
                }
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

/// Is this a CI run? CI systems set `CI` (usually to `true`).
fn on_ci() -> bool {
    env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}
