//! Process and file-system plumbing for the throwaway servers: finding
//! programs, running them as an unprivileged user, free ports, and the
//! watchdog that stops the servers when xtask dies without cleaning up.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The directories of a `PATH`-style value, in order.
pub fn path_dirs(path: Option<&OsStr>) -> Vec<PathBuf> {
    path.map(|path| env::split_paths(path).collect())
        .unwrap_or_default()
}

/// The first executable `name` in `dirs`.
pub fn find_program(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

/// `name` in `$PATH`, then in the usual system directories (a non-login
/// root shell may lack the `sbin` ones).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let mut dirs = path_dirs(env::var_os("PATH").as_deref());
    dirs.extend(
        ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    find_program(name, &dirs)
}

#[cfg(unix)]
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
pub fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// Makes `command` lead a process group of its own, so that a Ctrl-C at the
/// terminal (which signals the terminal's foreground group: xtask and its
/// cargo children) does not reach the servers before xtask has stopped them.
pub fn own_process_group(command: &mut Command) -> &mut Command {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    command
}

/// A port on 127.0.0.1 that nothing listens on right now: the kernel picks
/// it. `avoid` lists ports handed out already in this run.
pub fn free_port(avoid: &[u16]) -> Result<u16, String> {
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|error| format!("cannot find a free port on 127.0.0.1: {error}"))?;
        let port = listener
            .local_addr()
            .map_err(|error| format!("cannot find a free port on 127.0.0.1: {error}"))?
            .port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err("cannot find a free port on 127.0.0.1".to_owned())
}

/// A name no earlier run used: `<prefix>-<pid>-<nanoseconds>`.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// `word` quoted for `sh`.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&byte))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command line for `sh`.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Is this process root? (`id -u`: std has no getuid.)
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success() && output.stdout.trim_ascii() == b"0")
}

/// Who runs PostgreSQL's programs. It refuses to run as root, so root runs
/// them as an unprivileged user.
#[derive(Debug, Clone)]
pub enum RunAs {
    /// As this process.
    Me,
    /// As `user` (uid, gid), switched to with `switch`.
    User {
        user: String,
        uid: u32,
        gid: u32,
        switch: Switch,
    },
}

/// How root becomes another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// util-linux's `runuser -u USER -- PROGRAM ARGS...`.
    Runuser(PathBuf),
    /// `su -s /bin/sh USER -c 'PROGRAM ARGS...'`.
    Su(PathBuf),
}

/// The unprivileged user root runs PostgreSQL as.
pub const UNPRIVILEGED_USER: &str = "nobody";

impl RunAs {
    /// `Me`, or when root, [`UNPRIVILEGED_USER`] by `runuser` or `su`.
    pub fn for_postgres() -> Result<RunAs, String> {
        if !running_as_root() {
            return Ok(RunAs::Me);
        }
        let user = UNPRIVILEGED_USER;
        let switch = if let Some(runuser) = find_on_path("runuser") {
            Switch::Runuser(runuser)
        } else if let Some(su) = find_on_path("su") {
            Switch::Su(su)
        } else {
            return Err(format!(
                "PostgreSQL refuses to run as root, and neither `runuser` (util-linux) nor `su` \
                 is there to run it as `{user}`"
            ));
        };
        let id = |flag: &str| -> Result<u32, String> {
            let output = Command::new("id")
                .args([flag, user])
                .output()
                .map_err(|error| format!("could not run `id {flag} {user}`: {error}"))?;
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .map_err(|_| {
                    format!(
                        "PostgreSQL refuses to run as root and there is no user `{user}` to run \
                         it as (`id {flag} {user}`: {})",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )
                })
        };
        Ok(RunAs::User {
            user: user.to_owned(),
            uid: id("-u")?,
            gid: id("-g")?,
            switch,
        })
    }

    /// `program args...` as this user, as words (the first is the program).
    pub fn words(&self, program: &Path, args: &[String]) -> Vec<String> {
        let mut inner = vec![program.to_string_lossy().into_owned()];
        inner.extend(args.iter().cloned());
        match self {
            RunAs::Me => inner,
            RunAs::User {
                user,
                switch: Switch::Runuser(runuser),
                ..
            } => {
                let mut words = vec![
                    runuser.to_string_lossy().into_owned(),
                    "-u".to_owned(),
                    user.clone(),
                    "--".to_owned(),
                ];
                words.extend(inner);
                words
            }
            RunAs::User {
                user,
                switch: Switch::Su(su),
                ..
            } => vec![
                su.to_string_lossy().into_owned(),
                "-s".to_owned(),
                "/bin/sh".to_owned(),
                user.clone(),
                "-c".to_owned(),
                shell_line(&inner),
            ],
        }
    }

    /// `program args...` as this user, to run from `cwd` (somewhere the user
    /// may enter).
    pub fn command(&self, program: &Path, args: &[String], cwd: &Path) -> Command {
        let words = self.words(program, args);
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]).current_dir(cwd);
        command
    }

    /// Hands `path` to this user (a no-op for `Me`).
    pub fn give(&self, path: &Path) -> Result<(), String> {
        match self {
            RunAs::Me => Ok(()),
            RunAs::User { user, uid, gid, .. } => chown(path, *uid, *gid)
                .map_err(|error| format!("cannot hand {} to `{user}`: {error}", path.display())),
        }
    }
}

#[cfg(unix)]
fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

#[cfg(not(unix))]
fn chown(_path: &Path, _uid: u32, _gid: u32) -> std::io::Result<()> {
    Err(std::io::Error::other("chown needs Unix"))
}

/// Creates `path` (not there before) readable by its owner only.
pub fn create_private_dir(path: &Path) -> Result<(), String> {
    fs::create_dir(path).map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|error| format!("cannot chmod {}: {error}", path.display()))?;
    }
    Ok(())
}

/// The last `lines` lines of the file at `path`, indented, for an error
/// message.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let shown: Vec<String> = all[start..]
                .iter()
                .map(|line| format!("    {line}"))
                .collect();
            if shown.is_empty() {
                format!("  {} is empty", path.display())
            } else {
                format!("  last lines of {}:\n{}", path.display(), shown.join("\n"))
            }
        }
        Err(error) => format!("  (cannot read {}: {error})", path.display()),
    }
}

/// Stops a server if xtask dies without doing it itself: when xtask is
/// killed, or interrupted by Ctrl-C (std has no signal handling, and the
/// workspace forbids the `unsafe` a handler would take).
///
/// A `sh` in its own process group (so the terminal's Ctrl-C doesn't reach
/// it) reads its stdin, a pipe from xtask. The kernel closes that pipe
/// whenever xtask ends; std's pipes are close-on-exec, so no other child
/// holds it open. On `disarm` it exits quietly; on end-of-file it waits for
/// the child xtask was waiting on, if any (`child PID`: the dev server,
/// which gets the Ctrl-C too and shuts down gracefully), then runs the stop
/// script, in which `$server` is the last `server PID` it was told (empty if
/// none). It is started before the server, so that no moment of the start
/// goes unwatched.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// How long the watchdog lets a watched child finish, in tenths of a second.
const CHILD_GRACE_TENTHS: u32 = 400;

/// The watchdog's script around `stop`.
pub fn watchdog_script(stop: &str) -> String {
    format!(
        "trap '' INT HUP
child=
server=
while read -r word arg; do
    case \"$word\" in
        disarm) exit 0 ;;
        child) child=\"$arg\" ;;
        server) server=\"$arg\" ;;
    esac
done
# Alive: there, and not a zombie waiting for init to reap it.
alive() {{
    kill -0 \"$1\" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' \"/proc/$1/status\" 2>/dev/null
}}
if [ -n \"$child\" ]; then
    n=0
    while alive \"$child\" && [ \"$n\" -lt {CHILD_GRACE_TENTHS} ]; do
        sleep 0.1
        n=$((n + 1))
    done
fi
{stop}
"
    )
}

impl Watchdog {
    /// Starts a watchdog that runs the `sh` commands `stop` unless disarmed.
    pub fn spawn(stop: &str) -> Result<Watchdog, String> {
        let mut command = Command::new("sh");
        command
            .args(["-c", &watchdog_script(stop)])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = own_process_group(&mut command)
            .spawn()
            .map_err(|error| format!("could not start the services' watchdog (sh): {error}"))?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// Tells the watchdog to let `pid` finish before it stops the server.
    pub fn watch_child(&mut self, pid: u32) {
        self.tell("child", pid);
    }

    /// Tells the watchdog the server's pid: `$server` in the stop script.
    pub fn server_started(&mut self, pid: u32) {
        self.tell("server", pid);
    }

    /// What happens when xtask dies: the pipe closes. Waits for the stop
    /// script to finish.
    #[cfg(test)]
    pub fn orphan(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    fn tell(&mut self, word: &str, pid: u32) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{word} {pid}");
        }
    }
}

impl Drop for Watchdog {
    /// Disarms it: xtask stops the server itself.
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "disarm");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("/usr/lib/postgresql/15/bin/pg_ctl"),
            "/usr/lib/postgresql/15/bin/pg_ctl"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;rm"), "'$HOME;rm'");
        assert_eq!(
            shell_line(&["kill", "-TERM", "--", "-42"]),
            "kill -TERM -- -42"
        );
    }

    #[test]
    fn run_as_words() {
        let program = Path::new("/pg/bin/pg_ctl");
        let args = [
            "start".to_owned(),
            "-o".to_owned(),
            "-p 5 -k '/a b'".to_owned(),
        ];
        assert_eq!(
            RunAs::Me.words(program, &args),
            ["/pg/bin/pg_ctl", "start", "-o", "-p 5 -k '/a b'"]
        );
        let runuser = RunAs::User {
            user: "nobody".to_owned(),
            uid: 65534,
            gid: 65534,
            switch: Switch::Runuser("/usr/sbin/runuser".into()),
        };
        assert_eq!(
            runuser.words(program, &args),
            [
                "/usr/sbin/runuser",
                "-u",
                "nobody",
                "--",
                "/pg/bin/pg_ctl",
                "start",
                "-o",
                "-p 5 -k '/a b'"
            ]
        );
        let su = RunAs::User {
            user: "nobody".to_owned(),
            uid: 65534,
            gid: 65534,
            switch: Switch::Su("/bin/su".into()),
        };
        assert_eq!(
            su.words(program, &args),
            [
                "/bin/su",
                "-s",
                "/bin/sh",
                "nobody",
                "-c",
                r"/pg/bin/pg_ctl start -o '-p 5 -k '\''/a b'\'''"
            ]
        );
    }

    #[test]
    fn path_dirs_keep_their_order() {
        assert_eq!(
            path_dirs(Some(OsStr::new("/a:/b/c::/d"))),
            [PathBuf::from("/a"), "/b/c".into(), "".into(), "/d".into()]
        );
        assert!(path_dirs(None).is_empty());
    }

    #[test]
    fn free_ports_differ() {
        let first = free_port(&[]).expect("a port");
        let second = free_port(&[first]).expect("another port");
        assert_ne!(first, second);
        assert_ne!(first, 0);
    }

    #[test]
    fn a_disarmed_watchdog_does_nothing_and_an_orphaned_one_stops() {
        let dir = env::temp_dir().join(unique_name("xtask-watchdog-test"));
        fs::create_dir(&dir).expect("temp dir");
        let marker = dir.join("stopped");
        let stop = shell_line(&["touch", &marker.to_string_lossy()]);

        drop(Watchdog::spawn(&stop).expect("spawns"));
        assert!(!marker.exists(), "a disarmed watchdog ran its stop script");

        // What happens when xtask dies: its end of the pipe closes.
        let mut orphaned = Watchdog::spawn(&stop).expect("spawns");
        drop(orphaned.stdin.take());
        let status = orphaned.child.wait().expect("waits");
        assert!(status.success());
        assert!(
            marker.exists(),
            "an orphaned watchdog did not run its stop script"
        );
        fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn an_orphaned_watchdog_lets_the_watched_child_finish_first() {
        let dir = env::temp_dir().join(unique_name("xtask-watchdog-child-test"));
        fs::create_dir(&dir).expect("temp dir");
        let marker = dir.join("stopped");
        let stop = shell_line(&["touch", &marker.to_string_lossy()]);

        let mut server = Command::new("sleep").arg("1").spawn().expect("spawns");
        let mut watchdog = Watchdog::spawn(&stop).expect("spawns");
        watchdog.watch_child(server.id());
        drop(watchdog.stdin.take());
        thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists(), "the watchdog did not wait for the child");
        // `server` ends but stays a zombie (unreaped) meanwhile, as the dev
        // server does when xtask, its parent, has died: that counts as ended.
        watchdog.child.wait().expect("waits");
        assert!(marker.exists(), "the watchdog never ran its stop script");
        server.wait().expect("waits");
        fs::remove_dir_all(&dir).expect("cleans up");
    }
}
