//! The `deny` step: cargo-deny's offline checks against `deny.toml`
//! (licenses, banned and duplicate crates, crates.io as the only source).
//!
//! The advisories check is left out: it fetches the RustSec database, and
//! CI has no network. Run `cargo deny check advisories` where there is one.

use std::process::Stdio;

use super::{Failure, Step, Workspace};

/// `cargo <ARGS>`.
const ARGS: &[&str] = &["deny", "--locked", "check", "bans", "licenses", "sources"];

const NOT_INSTALLED: &str = "cargo-deny is not installed: cargo install cargo-deny --locked";

/// The `deny` step, or why it cannot run. Checked while the steps are listed,
/// so a missing cargo-deny stops `cargo xtask test` before the long steps
/// rather than after them.
pub(crate) fn step(workspace: &Workspace) -> Result<Step, Failure> {
    if installed(workspace) {
        Ok(Step::cargo("deny", ARGS))
    } else {
        Err(Failure::Setup(NOT_INSTALLED.to_owned()))
    }
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
    fn without_cargo_deny_it_says_how_to_install_it() {
        let workspace = Workspace {
            cargo: "/nonexistent/cargo".into(),
            root: std::env::temp_dir(),
        };
        match step(&workspace) {
            Err(Failure::Setup(message)) => assert_eq!(
                message,
                "cargo-deny is not installed: cargo install cargo-deny --locked"
            ),
            other => panic!("expected a setup failure, got {other:?}"),
        }
    }
}
