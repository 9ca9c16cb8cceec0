//! PostgreSQL's binaries, and a throwaway cluster started from them.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::probe;
use super::sys::{self, RunAs, Watchdog};
use super::url::Endpoint;

/// What a throwaway cluster needs, all from one directory (one version).
pub const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Where Debian's packages put each major version: `<root>/<version>/bin`.
pub const LIB_ROOT: &str = "/usr/lib/postgresql";

/// The role the throwaway cluster is made with, and the maintenance
/// database it has.
pub const SUPERUSER: &str = "postgres";

/// How long the cluster may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where to look for PostgreSQL's programs, best first: `$PATH`'s
/// directories (the user's choice), then `lib_root/<version>/bin`, highest
/// version first.
pub fn candidate_dirs(path: Option<&OsStr>, lib_root: &Path) -> Vec<PathBuf> {
    let mut dirs = sys::path_dirs(path);
    let versions = fs::read_dir(lib_root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    dirs.extend(
        by_version_descending(versions)
            .into_iter()
            .map(|version| lib_root.join(version).join("bin")),
    );
    dirs
}

/// The names that are versions (`15`, `9.6`), highest first.
pub fn by_version_descending(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u32>, String)> = names
        .into_iter()
        .filter_map(|name| {
            let key: Option<Vec<u32>> = name.split('.').map(|part| part.parse().ok()).collect();
            key.map(|key| (key, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

/// The first of `dirs` holding all of [`SERVER_PROGRAMS`].
pub fn server_dir(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .find(|dir| {
            SERVER_PROGRAMS
                .iter()
                .all(|program| sys::is_executable(&dir.join(program)))
        })
        .cloned()
}

/// The directory of this machine's PostgreSQL server programs.
pub fn find_server_dir() -> Option<PathBuf> {
    server_dir(&candidate_dirs(
        env::var_os("PATH").as_deref(),
        Path::new(LIB_ROOT),
    ))
}

/// `psql`: beside the server programs when there are some, else wherever
/// the server programs would be looked for, then the usual places.
pub fn find_psql(server_dir: Option<&Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = server_dir.map(Path::to_path_buf).into_iter().collect();
    dirs.extend(candidate_dirs(
        env::var_os("PATH").as_deref(),
        Path::new(LIB_ROOT),
    ));
    sys::find_program("psql", &dirs).or_else(|| sys::find_on_path("psql"))
}

/// A cluster of its own, started for this run and gone after it.
#[derive(Debug)]
pub struct Throwaway {
    /// The directory with the server programs.
    pub bin_dir: PathBuf,
    pub port: u16,
    /// Holds `data/`, `socket/` and `postgres.log`; removed on drop.
    root: PathBuf,
    run_as: RunAs,
    /// Declared last: dropped (disarmed) after `drop` has stopped the server.
    watchdog: Option<Watchdog>,
}

impl Throwaway {
    /// `initdb`s a cluster and starts it on 127.0.0.1:`port`. Its files go
    /// in a fresh directory under `services_dir`, or, when xtask runs as
    /// root, in a fresh one under the temporary directory, owned by the
    /// unprivileged user that runs the server (who may not be able to reach
    /// into `target/`).
    pub fn start(bin_dir: &Path, services_dir: &Path, port: u16) -> Result<Throwaway, String> {
        let run_as = RunAs::for_postgres()?;
        let root = match run_as {
            RunAs::Me => {
                fs::create_dir_all(services_dir).map_err(|error| {
                    format!("cannot create {}: {error}", services_dir.display())
                })?;
                services_dir.join(sys::unique_name("postgres"))
            }
            RunAs::User { .. } => env::temp_dir().join(sys::unique_name("taskflow-postgres")),
        };
        sys::create_private_dir(&root)?;
        // From here on, dropping `server` stops whatever got started and
        // removes `root`; should xtask die instead, the watchdog does.
        let mut server = Throwaway {
            bin_dir: bin_dir.to_path_buf(),
            port,
            root,
            run_as,
            watchdog: None,
        };
        server.watchdog = Some(Watchdog::spawn(&server.stop_script())?);
        server.run_as.give(&server.root)?;
        server.initdb()?;
        server.pg_ctl_start()?;
        server.wait_until_ready()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn program(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn path_arg(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    fn initdb(&self) -> Result<(), String> {
        // C.UTF-8, like Debian's own clusters, where the system has it.
        let locale = if Path::new("/usr/lib/locale/C.utf8").exists() {
            "--locale=C.UTF-8"
        } else {
            "--no-locale"
        };
        let args: Vec<String> = vec![
            "-D".into(),
            Self::path_arg(&self.data()),
            "-U".into(),
            SUPERUSER.into(),
            "--auth=trust".into(),
            "-E".into(),
            "UTF8".into(),
            locale.into(),
            // Throwaway: no need to wait for the files to reach the disk.
            "--no-sync".into(),
        ];
        let program = self.program("initdb");
        let output = self
            .run_as
            .command(&program, &args, &self.root)
            .output()
            .map_err(|error| format!("could not run {}: {error}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed ({}):\n{}{}",
                sys::shell_line(&self.run_as.words(&program, &args)),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The server's options, as one string for `pg_ctl -o` (which hands it
    /// to `sh`).
    fn server_options(&self) -> String {
        let socket_dir = self.root.join("socket");
        // A Unix socket's path may not exceed 107 bytes; on a deep work tree
        // go without one (the tests connect over TCP anyway).
        let socket = format!("{}/.s.PGSQL.{}", socket_dir.display(), self.port);
        let socket_dir = if socket.len() <= 100 && fs::create_dir(&socket_dir).is_ok() {
            let _ = self.run_as.give(&socket_dir);
            Self::path_arg(&socket_dir)
        } else {
            String::new()
        };
        sys::shell_line(&[
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-k",
            &socket_dir,
            // A throwaway test cluster: crash safety is worth nothing here,
            // and skipping the flushes makes every commit cheaper.
            "-c",
            "fsync=off",
        ])
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let args: Vec<String> = vec![
            "start".into(),
            "-w".into(),
            "-t".into(),
            START_TIMEOUT.as_secs().to_string(),
            "-D".into(),
            Self::path_arg(&self.data()),
            "-l".into(),
            Self::path_arg(&self.log()),
            "-o".into(),
            self.server_options(),
        ];
        let program = self.program("pg_ctl");
        let mut command = self.run_as.command(&program, &args, &self.root);
        let output = sys::own_process_group(&mut command)
            .output()
            .map_err(|error| format!("could not run {}: {error}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "PostgreSQL did not start: `{}` failed ({}):\n{}{}{}",
                sys::shell_line(&self.run_as.words(&program, &args)),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                sys::tail(&self.log(), 30)
            ))
        }
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match probe::postgres_lets_in(&endpoint, SUPERUSER, SUPERUSER) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the throwaway PostgreSQL did not accept connections within {} s: \
                         {error}\n{}",
                        START_TIMEOUT.as_secs(),
                        sys::tail(&self.log(), 30)
                    ));
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn pg_ctl_stop_args(&self) -> Vec<String> {
        vec![
            "stop".into(),
            "-D".into(),
            Self::path_arg(&self.data()),
            "-m".into(),
            "fast".into(),
            "-w".into(),
            "-t".into(),
            "30".into(),
        ]
    }

    /// Should xtask die first, the watchdog lets `pid` end before stopping
    /// the server.
    pub fn watch_child(&mut self, pid: u32) {
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.watch_child(pid);
        }
    }

    /// The watchdog's way of doing what `drop` does. It may run while
    /// `pg_ctl start` is still at work (Ctrl-C during the start): a server
    /// not yet stoppable gets a second try.
    fn stop_script(&self) -> String {
        let pid_file = Self::path_arg(&self.data().join("postmaster.pid"));
        format!(
            "stop() {{ {stop} >/dev/null 2>&1; }}
[ -e {pid_file} ] || sleep 2
stop || {{ sleep 2; stop; }} ||
    {{ pid=$(head -n 1 {pid_file} 2>/dev/null) && [ -n \"$pid\" ] && kill -KILL \"$pid\"; }}
rm -rf {root}
",
            stop = sys::shell_line(
                &self
                    .run_as
                    .words(&self.program("pg_ctl"), &self.pg_ctl_stop_args())
            ),
            pid_file = sys::shell_quote(&pid_file),
            root = sys::shell_quote(&Self::path_arg(&self.root)),
        )
    }
}

impl Drop for Throwaway {
    /// `pg_ctl stop -m fast` (disconnects clients, no waiting for them);
    /// failing that, SIGKILL to the postmaster. Then the files go.
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let stopped = self
                .run_as
                .command(
                    &self.program("pg_ctl"),
                    &self.pg_ctl_stop_args(),
                    &self.root,
                )
                .output()
                .is_ok_and(|output| output.status.success());
            if !stopped {
                eprintln!("xtask: warning: `pg_ctl stop` failed; killing the throwaway PostgreSQL");
                let pid = fs::read_to_string(data.join("postmaster.pid"))
                    .ok()
                    .and_then(|text| text.lines().next().map(str::to_owned));
                if let Some(pid) = pid {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", pid.trim()])
                        .status();
                }
            }
        }
        if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!(
                "xtask: warning: cannot remove {}: {error}",
                self.root.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_version_first() {
        let names = ["9.6", "15", "16", "10", "common", "13.2", "9.10"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            by_version_descending(names),
            ["16", "15", "13.2", "10", "9.10", "9.6"]
        );
    }

    /// A fake installation under the temporary directory.
    struct Fake(PathBuf);

    impl Fake {
        fn new() -> Fake {
            let root = env::temp_dir().join(sys::unique_name("xtask-pg-discovery-test"));
            fs::create_dir(&root).expect("temp dir");
            Fake(root)
        }

        fn install(&self, dir: &str, programs: &[&str]) -> PathBuf {
            let dir = self.0.join(dir);
            fs::create_dir_all(&dir).expect("dir");
            for program in programs {
                let path = dir.join(program);
                fs::write(&path, "#!/bin/sh\n").expect("program");
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
                }
            }
            dir
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn path_first_then_versions_highest_first() {
        let fake = Fake::new();
        let lib = fake.0.join("lib");
        let v9 = fake.install("lib/9.6/bin", &SERVER_PROGRAMS);
        let v15 = fake.install("lib/15/bin", &SERVER_PROGRAMS);
        let v16 = fake.install("lib/16/bin", &SERVER_PROGRAMS);
        fake.install("lib/common/bin", &SERVER_PROGRAMS);
        let on_path = fake.install("bin", &SERVER_PROGRAMS);
        let empty = fake.install("empty", &[]);

        let path = env::join_paths([&empty, &on_path]).expect("joins");
        assert_eq!(
            candidate_dirs(Some(&path), &lib),
            [empty.clone(), on_path.clone(), v16.clone(), v15, v9]
        );
        assert_eq!(
            server_dir(&candidate_dirs(Some(&path), &lib)),
            Some(on_path)
        );
        let path = env::join_paths([&empty]).expect("joins");
        assert_eq!(server_dir(&candidate_dirs(Some(&path), &lib)), Some(v16));
        assert_eq!(
            server_dir(&candidate_dirs(None, &fake.0.join("none"))),
            None
        );
    }

    #[test]
    fn all_three_programs_from_one_directory() {
        let fake = Fake::new();
        // Debian puts a psql wrapper on PATH but never the server programs.
        let partial = fake.install("usr-bin", &["psql", "pg_ctl"]);
        let v15 = fake.install("lib/15/bin", &SERVER_PROGRAMS);
        let no_initdb = fake.install("lib/16/bin", &["pg_ctl", "postgres"]);
        let dirs = [partial, no_initdb, v15.clone()];
        assert_eq!(server_dir(&dirs), Some(v15));
    }
}
