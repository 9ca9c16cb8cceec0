//! The `deny` step: cargo-deny's offline checks against `deny.toml`
//! (licenses, banned and duplicate crates, crates.io as the only source).
//!
//! The advisories check is left out: it fetches the RustSec database, and
//! CI has no network. Run `cargo deny check advisories` where there is one.
//!
//! A missing cargo-deny is installed (a pinned version, from crates.io) so
//! that `cargo xtask test` works on a fresh machine with nothing installed
//! by hand.

use std::process::Stdio;

use super::{Failure, Step, Workspace};

/// `cargo <ARGS>`.
const ARGS: &[&str] = &["deny", "--locked", "check", "bans", "licenses", "sources"];

/// The cargo-deny this project is checked with, installed when missing.
const VERSION: &str = "0.20.2";

/// `cargo <INSTALL>`: builds cargo-deny from crates.io (a few minutes).
const INSTALL: &[&str] = &["install", "cargo-deny", "--version", VERSION, "--locked"];

/// The `deny` step, or why it cannot run. Checked while the steps are
/// listed, so cargo-deny is installed (once, saying so) before the long
/// steps, and a failed install stops `cargo xtask test` before them too.
pub(crate) fn step(workspace: &Workspace) -> Result<Step, Failure> {
    if !installed(workspace) {
        eprintln!(
            "xtask: cargo-deny is missing; installing it: cargo {}",
            INSTALL.join(" ")
        );
        let installed_now = workspace
            .command(INSTALL)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed_now || !installed(workspace) {
            return Err(Failure::Setup(format!(
                "cargo-deny is not installed and `cargo {}` failed",
                INSTALL.join(" ")
            )));
        }
    }
    Ok(Step::cargo("deny", ARGS))
}

fn installed(workspace: &Workspace) -> bool {
    workspace
        .command(&["deny", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_offline_checks_only() {
        assert_eq!(ARGS[0], "deny");
        assert!(ARGS.ends_with(&["check", "bans", "licenses", "sources"]));
        assert!(!ARGS.contains(&"advisories"));
    }

    #[test]
    fn installs_a_pinned_version_locked() {
        assert_eq!(INSTALL[..2], ["install", "cargo-deny"]);
        assert!(INSTALL.windows(2).any(|w| w == ["--version", VERSION]));
        assert!(INSTALL.contains(&"--locked"));
    }

    #[test]
    fn when_it_cannot_be_installed_it_says_what_failed() {
        let workspace = Workspace {
            cargo: "/nonexistent/cargo".into(),
            root: std::env::temp_dir(),
        };
        match step(&workspace) {
            Err(Failure::Setup(message)) => assert_eq!(
                message,
                format!(
                    "cargo-deny is not installed and `cargo install cargo-deny --version {VERSION} --locked` failed"
                )
            ),
            other => panic!("expected a setup failure, got {other:?}"),
        }
    }
}
