//! The `e2e` step: the demo page (`/demo`) in headless Chromium, driven by
//! playwright-core from Node (`e2e/demo.test.mjs`): two members in two
//! browser contexts see each other's changes live, and a page whose socket
//! drops catches up after its reconnect.
//!
//! The browser is Debian's (`/usr/bin/chromium`, or `$TASKFLOW_CHROMIUM`);
//! nothing downloads one. A missing browser, Node.js or npm fails the step
//! with what to install: it is never skipped. playwright-core, pinned by
//! `e2e/package-lock.json`, is installed with `npm ci` into
//! `e2e/node_modules` when that is missing or older than the lock file.

use std::env;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use crate::schemathesis::{self, Server};
use crate::services;

/// Debian's Chromium (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_VAR: &str = "TASKFLOW_CHROMIUM";

/// playwright-core's own minimum.
const NODE_MAJOR: u32 = 20;

/// Runs the browser test against a fresh in-memory server.
pub fn run(root: &Path, paths: &schemathesis::Paths) -> Result<(), String> {
    let chromium = env::var_os(CHROMIUM_VAR)
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    if !chromium.is_file() {
        return Err(format!(
            "the browser test needs Chromium at {}, which is missing: \
             apt-get install chromium (Debian), or set {CHROMIUM_VAR}",
            chromium.display()
        ));
    }
    let node = services::find_program_on_path("node").ok_or(
        "the browser test needs Node.js (node), which is not installed: \
         apt-get install nodejs npm (Debian)",
    )?;
    let npm = services::find_program_on_path("npm").ok_or(
        "the browser test needs npm, which is not installed: apt-get install npm (Debian)",
    )?;
    check_node_version(&node)?;
    let dir = root.join("e2e");
    install(&npm, &dir)?;

    let work_dir = paths.target.join("e2e");
    fs::create_dir_all(&work_dir)
        .map_err(|error| format!("cannot create {}: {error}", work_dir.display()))?;
    let port = services::free_port()?;
    let log_path = work_dir.join("server.log");
    let log = File::create(&log_path)
        .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|error| format!("cannot open {}: {error}", log_path.display()))?;
    let binary = paths.target.join("debug").join("taskflow");
    let child = Command::new(&binary)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("CORS_ORIGINS")
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("APP_ENV", "development")
        .env("LOG_LEVEL", "warn")
        .env("LOG_FORMAT", "pretty")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|error| format!("could not start {}: {error}", binary.display()))?;
    let mut server = Server::new(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    server
        .wait_until_healthy(addr)
        .map_err(|error| format!("{error}\n{}", services::tail(&log_path, 20)))?;

    let url = format!("http://{addr}");
    eprintln!(
        "xtask: node e2e/demo.test.mjs {url} (Chromium {}; server log {})",
        chromium.display(),
        log_path.display()
    );
    let started = Instant::now();
    let status = Command::new(&node)
        .args(["--test-reporter=spec", "demo.test.mjs", &url])
        .env(CHROMIUM_VAR, &chromium)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("could not run {}: {error}", node.display()))?;
    eprintln!(
        "xtask: the browser test took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(server);
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the browser test failed ({status}; its report is above)\n{}",
            services::tail(&log_path, 30)
        ))
    }
}

fn check_node_version(node: &Path) -> Result<(), String> {
    let output = Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run {}: {error}", node.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match node_major(&version) {
        Some(major) if major >= NODE_MAJOR => Ok(()),
        _ => Err(format!(
            "the browser test needs Node.js {NODE_MAJOR} or newer (for playwright-core); \
             {} is {version:?}",
            node.display()
        )),
    }
}

/// `v20.11.1` → 20.
fn node_major(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// `npm ci` unless `node_modules` is as the lock file says: npm writes
/// `node_modules/.package-lock.json` on every install, so one older than
/// `package-lock.json` (or none) means the lock file changed since.
fn install(npm: &Path, dir: &Path) -> Result<(), String> {
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join(".package-lock.json");
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock_time = modified(&lock)
        .ok_or_else(|| format!("{} is missing: it pins playwright-core", lock.display()))?;
    if modified(&installed).is_some_and(|time: SystemTime| time >= lock_time) {
        return Ok(());
    }
    eprintln!(
        "xtask: npm ci in {} (playwright-core, pinned)",
        dir.display()
    );
    let status = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        // playwright-core downloads nothing; this makes sure of it.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("could not run {}: {error}", npm.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm ci` in {} failed ({status}); it needs the npm registry",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_parse() {
        assert_eq!(node_major("v20.20.2"), Some(20));
        assert_eq!(node_major("v18.19.0"), Some(18));
        assert_eq!(node_major("20.1.0"), None);
        assert_eq!(node_major(""), None);
    }

    #[test]
    fn the_lock_file_pins_playwright_core_and_records_no_download_address() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("root");
        let lock = fs::read_to_string(root.join("e2e").join("package-lock.json"))
            .expect("e2e/package-lock.json");
        assert!(lock.contains("\"node_modules/playwright-core\""), "{lock}");
        assert!(!lock.contains("\"resolved\""), "{lock}");
    }
}
