//! Just enough URL handling for `postgres://` and `redis://` URLs: where to
//! connect, how to show one without its password, and how to point one at
//! another database.
//!
//! Shape: `scheme://[user[:password]@]host[:port][,host2...][/path][?query][#fragment]`.

use std::fmt;

/// A TCP host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A name or an address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The parts of a URL, as slices of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    /// Up to and including `://`.
    scheme: &'a str,
    /// `user[:password]`, without the `@`; `None` without an `@`.
    userinfo: Option<&'a str>,
    /// `host[:port]`, possibly several separated by commas (libpq).
    hosts: &'a str,
    /// From the `/`, `?` or `#` after the hosts on (may be empty).
    rest: &'a str,
}

fn split(url: &str) -> Result<Parts<'_>, String> {
    let Some(scheme_end) = url.find("://") else {
        return Err(format!("`{}` is not a URL (no `://`)", withhold(url)));
    };
    let (scheme, after) = url.split_at(scheme_end + 3);
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    // A password may hold an unescaped `@`: the host follows the last one.
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    Ok(Parts {
        scheme,
        userinfo,
        hosts,
        rest,
    })
}

/// Where `url` says to connect: its (first) host and its port, or
/// `default_port` when it names none.
pub fn endpoint(url: &str, default_port: u16) -> Result<Endpoint, String> {
    let parts = split(url)?;
    let first = parts.hosts.split(',').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = first.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("`{}`: unclosed `[` in the host", redact(url)));
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(format!("`{}`: junk after `]` in the host", redact(url))),
            },
        };
        (host, port)
    } else {
        match first.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (first, None),
        }
    };
    if host.is_empty() || host.starts_with('/') || host.to_ascii_lowercase().starts_with("%2f") {
        return Err(format!(
            "`{}` names no TCP host (a Unix socket?); only host:port URLs can be checked",
            redact(url)
        ));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port
            .parse()
            .map_err(|_| format!("`{}`: `{port}` is not a port number", redact(url)))?,
    };
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

/// `url` fit to print: a password in it becomes `***`. Something that is not
/// a URL comes back as it is, unless it has an `@` in it (it might hold a
/// password), in which case it is withheld whole.
pub fn redact(url: &str) -> String {
    let Ok(parts) = split(url) else {
        return withhold(url);
    };
    match parts.userinfo {
        Some(userinfo) => {
            let user = match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                None => userinfo.to_owned(),
            };
            format!("{}{user}@{}{}", parts.scheme, parts.hosts, parts.rest)
        }
        None => url.to_owned(),
    }
}

/// Something that is not a URL, fit to print.
fn withhold(text: &str) -> String {
    if text.contains('@') {
        "<withheld>".to_owned()
    } else {
        text.to_owned()
    }
}

/// `url` with its path (the database name, for PostgreSQL) replaced by
/// `/database`, keeping any `?query` and `#fragment`.
pub fn with_database(url: &str, database: &str) -> Result<String, String> {
    let parts = split(url)?;
    let tail_start = parts.rest.find(['?', '#']).unwrap_or(parts.rest.len());
    let tail = &parts.rest[tail_start..];
    let userinfo = match parts.userinfo {
        Some(userinfo) => format!("{userinfo}@"),
        None => String::new(),
    };
    Ok(format!(
        "{}{userinfo}{}/{database}{tail}",
        parts.scheme, parts.hosts
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str, default_port: u16) -> Result<(String, u16), String> {
        endpoint(url, default_port).map(|e| (e.host, e.port))
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            ep("postgres://postgres@127.0.0.1:5432/postgres", 1),
            Ok(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            ep("redis://127.0.0.1:6380/0", 6379),
            Ok(("127.0.0.1".into(), 6380))
        );
    }

    #[test]
    fn default_ports() {
        assert_eq!(
            ep("postgres://db.internal/app", 5432),
            Ok(("db.internal".into(), 5432))
        );
        assert_eq!(ep("redis://cache", 6379), Ok(("cache".into(), 6379)));
        assert_eq!(ep("redis://cache:", 6379), Ok(("cache".into(), 6379)));
        assert_eq!(
            ep("rediss://cache?timeout=1", 6379),
            Ok(("cache".into(), 6379))
        );
    }

    #[test]
    fn credentials_are_not_the_host() {
        assert_eq!(
            ep("postgresql://user:se:cr@t@db:6000/x?sslmode=disable", 5432),
            Ok(("db".into(), 6000))
        );
        assert_eq!(
            ep("redis://:password@localhost:7000", 6379),
            Ok(("localhost".into(), 7000))
        );
    }

    #[test]
    fn ipv6() {
        assert_eq!(
            ep("postgres://u@[::1]:5433/db", 5432),
            Ok(("::1".into(), 5433))
        );
        assert_eq!(ep("redis://[::1]", 6379), Ok(("::1".into(), 6379)));
        let endpoint = endpoint("redis://[::1]", 6379).expect("parses");
        assert_eq!(endpoint.to_string(), "[::1]:6379");
        assert!(ep("redis://[::1", 6379).is_err());
        assert!(ep("redis://[::1]x", 6379).is_err());
    }

    #[test]
    fn first_of_several_hosts() {
        assert_eq!(
            ep("postgres://a:5433,b:5434/db", 5432),
            Ok(("a".into(), 5433))
        );
    }

    #[test]
    fn rejects_what_cannot_be_checked() {
        assert!(ep("127.0.0.1:5432", 5432).is_err());
        assert!(ep("postgres:///taskflow", 5432).is_err());
        assert!(ep("postgres://%2Fvar%2Frun%2Fpostgresql/db", 5432).is_err());
        assert!(ep("postgres://db:port/x", 5432).is_err());
        assert!(ep("postgres://db:70000/x", 5432).is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/taskflow?sslmode=require"),
            "postgres://app:***@db:5432/taskflow?sslmode=require"
        );
        assert_eq!(
            redact("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("user:pw@host"), "<withheld>");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[test]
    fn error_messages_never_show_the_password() {
        let error = ep("postgres://u:hunter2@db:port/x", 5432).expect_err("bad port");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn points_at_another_database() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "taskflow_dev"
            ),
            Ok("postgres://postgres@127.0.0.1:5432/taskflow_dev".to_owned())
        );
        assert_eq!(
            with_database("postgres://u:p@db?sslmode=disable", "taskflow_dev"),
            Ok("postgres://u:p@db/taskflow_dev?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://db:5432/postgres#x", "t"),
            Ok("postgres://db:5432/t#x".to_owned())
        );
        assert!(with_database("not a url", "t").is_err());
    }
}
