//! Configuration, from the environment only. Every variable has a default
//! in development; an invalid value stops start-up with one line naming it.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind_addr: IpAddr,
    pub app_env: AppEnv,
    /// A `tracing` filter directive, e.g. `info` or `debug,actix_server=warn`.
    pub log_level: String,
    pub log_format: LogFormat,
    pub jwt_secret: Secret,
    /// True when no `JWT_SECRET` was given and the development default is used.
    pub jwt_secret_is_default: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub shutdown_timeout: Duration,
    /// PostgreSQL; the in-memory store when absent (development only).
    pub database_url: Option<Secret>,
    pub database_pool_size: u32,
    /// Redis for sessions; the in-memory session store when absent
    /// (development only).
    pub redis_url: Option<Secret>,
    pub redis_key_prefix: String,
    /// Password hashes computed at once; `None` for one per core.
    pub password_hash_concurrency: Option<NonZeroUsize>,
    /// How long a login or registration waits for a hashing slot before
    /// it is answered 503.
    pub password_hash_queue_timeout: Duration,
    /// How long a request body may take to arrive, once its head has.
    pub request_body_timeout: Duration,
    /// Accounts that are system admins (`ADMIN_EMAILS`, comma-separated).
    pub admin_emails: Vec<domain::Email>,
    /// How long a project's events are kept before they are pruned.
    pub event_retention: Duration,
    /// Live delivery's limits and timings (`LIVE_*`, `WS_*`).
    pub live: live::HubSettings,
    /// The browser origins allowed to use the API (`CORS_ORIGINS`,
    /// comma-separated): CORS for REST and the WebSocket `Origin` check.
    pub cors_origins: api_http::cors::Origins,
}

/// Every environment variable the server reads (the Docker files are
/// checked against this list).
pub const VARIABLES: &[&str] = &[
    "PORT",
    "BIND_ADDR",
    "APP_ENV",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "JWT_SECRET",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SHUTDOWN_TIMEOUT",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "PASSWORD_HASH_CONCURRENCY",
    "PASSWORD_HASH_QUEUE_TIMEOUT",
    "REQUEST_BODY_TIMEOUT",
    "ADMIN_EMAILS",
    "EVENT_RETENTION",
    "LIVE_QUEUE",
    "LIVE_MAX_SUBSCRIPTIONS",
    "LIVE_MAX_CONNECTIONS_PER_USER",
    "LIVE_POLL_INTERVAL",
    "LIVE_SESSION_CHECK_INTERVAL",
    "WS_PING_INTERVAL",
    "WS_IDLE_TIMEOUT",
    "WS_AUTH_TIMEOUT",
    "WS_MAX_MESSAGE_BYTES",
    "CORS_ORIGINS",
];

/// A configuration problem, as one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// The development JWT secret; refused in production.
pub const DEV_JWT_SECRET: &str = "taskflow-development-secret-do-not-use-in-production";
pub const MIN_JWT_SECRET_LEN: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let app_env = match var("APP_ENV").as_deref().map(str::trim) {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    format!("{other:?} is not one of development, production"),
                ));
            }
        };
        let production = app_env == AppEnv::Production;
        let port = match var("PORT") {
            None => 3000,
            Some(raw) => raw.trim().parse::<u16>().map_err(|_| {
                ConfigError::new("PORT", format!("{raw:?} is not a port number (0–65535)"))
            })?,
        };
        let bind_addr = match var("BIND_ADDR") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(raw) => raw.trim().parse().map_err(|_| {
                ConfigError::new("BIND_ADDR", format!("{raw:?} is not an IP address"))
            })?,
        };
        let log_level = var("LOG_LEVEL")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| if production { "info" } else { "debug" }.to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_level).map_err(|e| {
            ConfigError::new(
                "LOG_LEVEL",
                format!("{log_level:?} is not a log filter: {e}"),
            )
        })?;
        let log_format = match var("LOG_FORMAT").as_deref().map(str::trim) {
            None if production => LogFormat::Json,
            None => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("{other:?} is not one of json, pretty"),
                ));
            }
        };
        let (jwt_secret, jwt_secret_is_default) = match var("JWT_SECRET") {
            Some(secret) if secret.len() >= MIN_JWT_SECRET_LEN => (Secret::new(secret), false),
            Some(_) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_LEN} bytes"),
                ));
            }
            None if production => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!(
                        "is required in production (at least {MIN_JWT_SECRET_LEN} random bytes)"
                    ),
                ));
            }
            None => (Secret::new(DEV_JWT_SECRET), true),
        };
        let duration = |name: &'static str, default: Duration| match var(name) {
            None => Ok(default),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                ConfigError::new(
                    name,
                    format!(
                        "{raw:?} is not a duration (seconds, or a number with ms, s, m, h or d)"
                    ),
                )
            }),
        };
        let access_token_ttl = duration("ACCESS_TOKEN_TTL", Duration::from_secs(900))?;
        let refresh_token_ttl = duration("REFRESH_TOKEN_TTL", Duration::from_secs(30 * 86_400))?;
        let shutdown_timeout = duration("SHUTDOWN_TIMEOUT", Duration::from_secs(30))?;
        // Tokens count whole seconds.
        if access_token_ttl.as_secs() == 0 {
            return Err(ConfigError::new(
                "ACCESS_TOKEN_TTL",
                "must be at least 1 second",
            ));
        }
        if refresh_token_ttl <= access_token_ttl {
            return Err(ConfigError::new(
                "REFRESH_TOKEN_TTL",
                "must be longer than ACCESS_TOKEN_TTL",
            ));
        }
        let database_url = var("DATABASE_URL").map(Secret::new);
        let redis_url = var("REDIS_URL").map(Secret::new);
        if production && database_url.is_none() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "is required in production",
            ));
        }
        if production && redis_url.is_none() {
            return Err(ConfigError::new("REDIS_URL", "is required in production"));
        }
        let database_pool_size = match var("DATABASE_POOL_SIZE") {
            None => 10,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        "DATABASE_POOL_SIZE",
                        format!("{raw:?} is not a number from 1 to 1000"),
                    )
                })?,
        };
        let redis_key_prefix = var("REDIS_KEY_PREFIX").unwrap_or_else(|| "taskflow:".to_owned());
        let password_hash_concurrency = match var("PASSWORD_HASH_CONCURRENCY") {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<NonZeroUsize>()
                    .ok()
                    .filter(|n| n.get() <= 256)
                    .ok_or_else(|| {
                        ConfigError::new(
                            "PASSWORD_HASH_CONCURRENCY",
                            format!("{raw:?} is not a number from 1 to 256"),
                        )
                    })?,
            ),
        };
        let password_hash_queue_timeout =
            duration("PASSWORD_HASH_QUEUE_TIMEOUT", Duration::from_secs(5))?;
        let request_body_timeout = duration("REQUEST_BODY_TIMEOUT", Duration::from_secs(15))?;
        if request_body_timeout.is_zero() {
            return Err(ConfigError::new(
                "REQUEST_BODY_TIMEOUT",
                "must be more than 0",
            ));
        }
        let event_retention = duration("EVENT_RETENTION", Duration::from_secs(30 * 86_400))?;
        if event_retention < Duration::from_secs(60) {
            return Err(ConfigError::new(
                "EVENT_RETENTION",
                "must be at least a minute",
            ));
        }
        let count = |name: &'static str, default: usize, max: usize| match var(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(name, format!("{raw:?} is not a number from 1 to {max}"))
                }),
        };
        let positive = |name: &'static str, default: Duration| {
            let value = duration(name, default)?;
            if value.is_zero() {
                return Err(ConfigError::new(name, "must be more than 0"));
            }
            Ok(value)
        };
        let defaults = live::HubSettings::default();
        let live = live::HubSettings {
            queue: count("LIVE_QUEUE", defaults.queue, 1_000_000)?,
            max_subscriptions: count(
                "LIVE_MAX_SUBSCRIPTIONS",
                defaults.max_subscriptions,
                100_000,
            )?,
            max_connections_per_user: count(
                "LIVE_MAX_CONNECTIONS_PER_USER",
                defaults.max_connections_per_user,
                100_000,
            )?,
            poll_interval: positive("LIVE_POLL_INTERVAL", defaults.poll_interval)?,
            session_check_interval: positive(
                "LIVE_SESSION_CHECK_INTERVAL",
                defaults.session_check_interval,
            )?,
            ping_interval: positive("WS_PING_INTERVAL", defaults.ping_interval)?,
            idle_timeout: positive("WS_IDLE_TIMEOUT", defaults.idle_timeout)?,
            auth_timeout: positive("WS_AUTH_TIMEOUT", defaults.auth_timeout)?,
            max_message_bytes: count(
                "WS_MAX_MESSAGE_BYTES",
                defaults.max_message_bytes,
                16 * 1024 * 1024,
            )?,
        };
        let admin_emails = var("ADMIN_EMAILS")
            .unwrap_or_default()
            .split(',')
            .filter(|raw| !raw.trim().is_empty())
            .map(|raw| {
                domain::Email::parse(raw)
                    .map_err(|e| ConfigError::new("ADMIN_EMAILS", format!("{:?}: {e}", raw.trim())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins =
            api_http::cors::Origins::parse_list(&var("CORS_ORIGINS").unwrap_or_default())
                .map_err(|e| ConfigError::new("CORS_ORIGINS", e.to_string()))?;
        Ok(Self {
            port,
            bind_addr,
            app_env,
            log_level,
            log_format,
            jwt_secret,
            jwt_secret_is_default,
            access_token_ttl,
            refresh_token_ttl,
            shutdown_timeout,
            database_url,
            database_pool_size,
            redis_url,
            redis_key_prefix,
            password_hash_concurrency,
            password_hash_queue_timeout,
            request_body_timeout,
            admin_emails,
            event_retention,
            live,
            cors_origins,
        })
    }
}

/// `900`, `900s`, `250ms`, `15m`, `12h`, `30d`.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_suit_development() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.port, 3000);
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1");
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert!(c.jwt_secret_is_default);
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
        assert!(c.database_url.is_none());
        assert_eq!(c.password_hash_concurrency, None);
        assert_eq!(c.password_hash_queue_timeout, Duration::from_secs(5));
        assert_eq!(c.request_body_timeout, Duration::from_secs(15));
    }

    #[test]
    fn production_defaults_to_json_and_info() {
        let secret = "x".repeat(32);
        let c = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", &secret),
            ("DATABASE_URL", "postgres://db/taskflow"),
            ("REDIS_URL", "redis://cache"),
        ])
        .expect("valid");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_level, "info");
        assert!(!c.jwt_secret_is_default);
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret() {
        let e = config(&[("APP_ENV", "production")]).expect_err("missing secret");
        assert_eq!(e.var, "JWT_SECRET");
        let e = config(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).expect_err("short");
        assert_eq!(e.var, "JWT_SECRET");
    }

    #[test]
    fn production_requires_both_stores() {
        let secret = "x".repeat(32);
        let e = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret)])
            .expect_err("no DATABASE_URL");
        assert_eq!(e.var, "DATABASE_URL");
        let e = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", &secret),
            ("DATABASE_URL", "postgres://db/taskflow"),
        ])
        .expect_err("no REDIS_URL");
        assert_eq!(e.var, "REDIS_URL");
    }

    #[test]
    fn every_variable_read_is_listed() {
        // Calls that rustfmt wrapped read as if on one line.
        let mut source = String::new();
        for c in include_str!("config.rs").chars() {
            if !(c.is_whitespace() && source.ends_with('(')) {
                source.push(c);
            }
        }
        let listed: std::collections::BTreeSet<&str> = VARIABLES.iter().copied().collect();
        let mut read = 0;
        for reader in ["var(\"", " duration(\"", " count(\"", " positive(\""] {
            for (i, _) in source.match_indices(reader) {
                let name: String = source[i + reader.len()..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                assert!(
                    listed.contains(name.as_str()),
                    "{name} is read but not in VARIABLES"
                );
                read += 1;
            }
        }
        assert!(read >= VARIABLES.len(), "every listed variable is read");
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (var, value) in [
            ("PORT", "70000"),
            ("PORT", "abc"),
            ("BIND_ADDR", "localhost:1"),
            ("APP_ENV", "staging"),
            ("LOG_FORMAT", "xml"),
            ("LOG_LEVEL", "[[["),
            ("ACCESS_TOKEN_TTL", "soon"),
            ("ACCESS_TOKEN_TTL", "0"),
            ("REFRESH_TOKEN_TTL", "10"),
            ("SHUTDOWN_TIMEOUT", "5 minutes"),
            ("DATABASE_POOL_SIZE", "0"),
            ("PASSWORD_HASH_CONCURRENCY", "0"),
            ("PASSWORD_HASH_CONCURRENCY", "many"),
            ("PASSWORD_HASH_QUEUE_TIMEOUT", "soon"),
            ("REQUEST_BODY_TIMEOUT", "0"),
            ("ADMIN_EMAILS", "ops@example.com,not-an-address"),
            ("EVENT_RETENTION", "30s"),
            ("EVENT_RETENTION", "forever"),
            ("CORS_ORIGINS", "*"),
            ("CORS_ORIGINS", "https://app.example.com,app.example.com"),
            ("CORS_ORIGINS", "https://app.example.com/"),
        ] {
            let e = config(&[(var, value)]).expect_err(value);
            assert_eq!(e.var, var, "{value}");
            assert!(e.to_string().contains(var));
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("900"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration("5w"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = config(&[("JWT_SECRET", &"s3cr3t".repeat(8))]).expect("valid");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn admin_emails_are_a_normalised_list() {
        let c = config(&[("ADMIN_EMAILS", " Ops@Example.com, ,root@example.org ")]).expect("valid");
        let emails: Vec<&str> = c.admin_emails.iter().map(|e| e.as_str()).collect();
        assert_eq!(emails, ["ops@example.com", "root@example.org"]);
        assert!(config(&[]).expect("valid").admin_emails.is_empty());
    }

    #[test]
    fn cors_origins_are_a_normalised_list_and_unset_by_default() {
        let c = config(&[(
            "CORS_ORIGINS",
            " https://App.example.com:443, ,http://localhost:5173 ",
        )])
        .expect("valid");
        let origins: Vec<String> = c
            .cors_origins
            .listed()
            .expect("set")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        assert_eq!(config(&[]).expect("valid").cors_origins.listed(), None);
        assert_eq!(
            config(&[("CORS_ORIGINS", " ")])
                .expect("valid")
                .cors_origins
                .listed(),
            None
        );
    }

    #[test]
    fn a_cors_wildcard_is_refused_with_a_reason() {
        let e = config(&[("CORS_ORIGINS", "*")]).expect_err("wildcard");
        assert_eq!(e.var, "CORS_ORIGINS");
        assert!(e.to_string().contains("wildcard"), "{e}");
    }
}
