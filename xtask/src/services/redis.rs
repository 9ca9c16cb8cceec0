//! A throwaway `redis-server`, a child of xtask.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::probe;
use super::sys::{self, Watchdog};
use super::url::Endpoint;

/// How long the server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long it gets to exit on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `redis-server` on `$PATH` or in the usual places.
pub fn find_server() -> Option<PathBuf> {
    sys::find_on_path("redis-server")
}

/// A server of its own, started for this run and gone after it.
#[derive(Debug)]
pub struct Throwaway {
    pub port: u16,
    child: Child,
    /// Holds `data/` and `redis.log`; removed on drop.
    root: PathBuf,
    /// Declared last: dropped (disarmed) after `drop` has stopped the server.
    watchdog: Option<Watchdog>,
}

/// The server's arguments: no persistence at all.
pub fn server_args(port: u16, data_dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &data_dir.to_string_lossy(),
        "--daemonize",
        "no",
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Throwaway {
    /// Starts `redis-server` on 127.0.0.1:`port`, in its own process group,
    /// with its files in a fresh directory under `services_dir`.
    pub fn start(program: &Path, services_dir: &Path, port: u16) -> Result<Throwaway, String> {
        fs::create_dir_all(services_dir)
            .map_err(|error| format!("cannot create {}: {error}", services_dir.display()))?;
        let root = services_dir.join(sys::unique_name("redis"));
        sys::create_private_dir(&root)?;
        // Watched from here on: should xtask die, the watchdog stops the
        // server (once told its pid) and removes `root`.
        let mut watchdog = Watchdog::spawn(&stop_script(&root)).inspect_err(|_| {
            let _ = fs::remove_dir_all(&root);
        })?;
        let data = root.join("data");
        let log = root.join("redis.log");
        let spawned = fs::create_dir(&data)
            .and_then(|()| File::create(&log))
            .and_then(|out| Ok((out.try_clone()?, out)))
            .and_then(|(out, err)| {
                let mut command = Command::new(program);
                command
                    .args(server_args(port, &data))
                    .current_dir(&root)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err);
                sys::own_process_group(&mut command).spawn()
            });
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = fs::remove_dir_all(&root);
                return Err(format!("could not start {}: {error}", program.display()));
            }
        };
        watchdog.server_started(child.id());
        let mut server = Throwaway {
            port,
            child,
            root,
            watchdog: Some(watchdog),
        };
        server.wait_until_ready(&log)?;
        Ok(server)
    }

    fn wait_until_ready(&mut self, log: &Path) -> Result<(), String> {
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server exited at start ({status}):\n{}",
                    sys::tail(log, 30)
                ));
            }
            match probe::redis_answers(&endpoint) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the throwaway redis-server did not answer within {} s: {error}\n{}",
                        START_TIMEOUT.as_secs(),
                        sys::tail(log, 30)
                    ));
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Should xtask die first, the watchdog lets `pid` end before stopping
    /// the server.
    pub fn watch_child(&mut self, pid: u32) {
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.watch_child(pid);
        }
    }
}

impl Drop for Throwaway {
    /// SIGTERM to its process group, SIGKILL after [`STOP_TIMEOUT`]; then
    /// the files go.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("xtask: warning: redis-server ignored SIGTERM; killing it");
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!(
                "xtask: warning: cannot remove {}: {error}",
                self.root.display()
            );
        }
    }
}

/// The watchdog's way of doing what `drop` does: SIGTERM to process group
/// `$server` (when the watchdog was told it), SIGKILL after [`STOP_TIMEOUT`]
/// or once its leader is a zombie; then `root` goes.
fn stop_script(root: &Path) -> String {
    // dash's `kill` takes no `--`; a negative number is a process group.
    format!(
        "if [ -n \"$server\" ]; then
    kill -TERM -\"$server\" 2>/dev/null
    n=0
    while kill -0 -\"$server\" 2>/dev/null && [ \"$n\" -lt {tenths} ] &&
        ! grep -q '^State:[[:space:]]*Z' \"/proc/$server/status\" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL -\"$server\" 2>/dev/null
fi
rm -rf {root}
",
        tenths = STOP_TIMEOUT.as_millis() / 100,
        root = sys::shell_quote(&root.to_string_lossy()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_nothing_on_disk() {
        let args = server_args(6399, Path::new("/t/data"));
        let pairs: Vec<(&str, &str)> = args
            .chunks(2)
            .map(|pair| (pair[0].as_str(), pair[1].as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("--port", "6399"),
                ("--bind", "127.0.0.1"),
                ("--save", ""),
                ("--appendonly", "no"),
                ("--dir", "/t/data"),
                ("--daemonize", "no"),
            ]
        );
    }

    #[test]
    fn the_stop_script_stops_the_group_and_removes_the_files() {
        let root = std::env::temp_dir().join(sys::unique_name("xtask-redis-stop-test"));
        fs::create_dir(&root).expect("temp dir");
        // A group whose leader has gone, leaving an orphan in it, as the
        // watchdog finds a redis-server whose xtask died.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 60 >/dev/null 2>&1 & echo $$ $!"]);
        let output = sys::own_process_group(&mut command).output().expect("runs");
        let ids = String::from_utf8_lossy(&output.stdout);
        let ids: Vec<u32> = ids
            .split_whitespace()
            .map(|id| id.parse().expect("a pid"))
            .collect();
        let (group, sleeper) = (ids[0], ids[1]);
        // Running: there and not a zombie (which it is once killed, until
        // init reaps it).
        let alive = || {
            fs::read_to_string(format!("/proc/{sleeper}/status")).is_ok_and(|status| {
                !status
                    .lines()
                    .any(|line| line.starts_with("State:") && line.contains('Z'))
            })
        };
        assert!(alive());
        let mut watchdog = Watchdog::spawn(&stop_script(&root)).expect("spawns");
        watchdog.server_started(group);
        watchdog.orphan(); // as if xtask had died
        assert!(!alive(), "the process group was not stopped");
        assert!(!root.exists(), "{} was not removed", root.display());
    }

    #[test]
    fn a_watchdog_told_no_server_removes_the_files() {
        let root = std::env::temp_dir().join(sys::unique_name("xtask-redis-stop-test"));
        fs::create_dir(&root).expect("temp dir");
        Watchdog::spawn(&stop_script(&root))
            .expect("spawns")
            .orphan();
        assert!(!root.exists(), "{} was not removed", root.display());
    }
}
