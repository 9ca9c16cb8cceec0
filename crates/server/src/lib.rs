//! TaskFlow's composition root: reads the configuration, picks the adapters,
//! builds the HTTP server and runs it until a shutdown signal.

pub mod bus;
pub mod config;
pub mod db;
pub mod telemetry;
pub mod users;

use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use adapters_auth::{Argon2Hasher, HashLimits, JwtTokens};
use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore, MemoryStore};
use adapters_postgres::{PgOptions, PgStore};
use adapters_redis::{RedisIdempotencyStore, RedisSessionStore};
use domain::{
    IdempotencyStore, PortError, Ports, SessionStore, Settings, Store, SystemClock, TaskFlow,
};

pub use bus::Bus;
pub use config::{AppEnv, Config, ConfigError, LogFormat};

/// The issuer every access token names (`iss`).
pub const TOKEN_ISSUER: &str = "taskflow";

/// The adapters of one server: a store, a session store and an idempotency
/// store; passwords, tokens and time are always argon2, JWT and the system
/// clock.
#[derive(Debug)]
pub struct Adapters<S, SS, I>(PhantomData<Named<S, SS, I>>);

/// What [`Adapters`] names without holding (`fn`: it is `Send` and `Sync`
/// whatever they are).
type Named<S, SS, I> = fn() -> (S, SS, I);

impl<S: Store, SS: SessionStore, I: IdempotencyStore> Ports for Adapters<S, SS, I> {
    type Store = S;
    type Sessions = SS;
    type Idempotency = I;
    type Hasher = Argon2Hasher;
    type Tokens = JwtTokens;
    type Clock = SystemClock;
    type Bus = Bus;
}

/// The zero-setup server: everything in memory.
pub type MemoryPorts = Adapters<MemoryStore, MemorySessionStore, MemoryIdempotencyStore>;
/// The production server: PostgreSQL and Redis.
pub type ServicePorts = Adapters<PgStore, RedisSessionStore, RedisIdempotencyStore>;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("{var}: {what} did not answer after {attempts} attempts")]
    Unreachable {
        var: &'static str,
        what: &'static str,
        attempts: u32,
        #[source]
        source: PortError,
    },
    #[error("DATABASE_URL: migrations failed")]
    Migrations(#[source] PortError),
    #[error("REDIS_URL: cannot set up the session or idempotency store")]
    Redis(#[source] PortError),
    #[error("cannot set up the password hasher: {0}")]
    Hasher(String),
    #[error("ADMIN_EMAILS: cannot promote {email}")]
    Promote {
        email: String,
        #[source]
        source: domain::AdminError,
    },
}

/// How long start-up waits for a store: attempts and the pause after each.
const STARTUP_ATTEMPTS: u32 = 6;
const STARTUP_PAUSE: Duration = Duration::from_millis(750);

/// A bound, not yet running server.
pub struct Application {
    addr: SocketAddr,
    server: Server,
    /// Hears the other instances' announcements while the server runs.
    _listener: Option<adapters_redis::Listener>,
    streams: LiveStreams,
}

/// Closes the server's live streams (WebSocket 1001, SSE ended), which
/// would otherwise hold up a graceful shutdown until its timeout.
#[derive(Clone)]
pub struct LiveStreams(std::sync::Arc<dyn Fn() + Send + Sync>);

impl LiveStreams {
    pub fn close_all(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for LiveStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveStreams")
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the stores the configuration names (waiting a bounded time
    /// for each), applies pending migrations, binds the listener (port 0
    /// picks a free one) and builds the server.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        Self::build_with_hasher(config, production_hasher(config).await?).await
    }

    /// As [`Application::build`], with another password hasher (tests use
    /// cheap argon2 parameters).
    pub async fn build_with_hasher(
        config: &Config,
        hasher: Argon2Hasher,
    ) -> Result<Self, StartupError> {
        if config.jwt_secret_is_default {
            tracing::warn!(
                "no JWT_SECRET: using the development secret; set JWT_SECRET outside development"
            );
        }
        match (&config.database_url, &config.redis_url) {
            (Some(database_url), Some(redis_url)) => {
                let store = connect_database(database_url.expose(), config).await?;
                let sessions = connect_redis(redis_url.expose(), config).await?;
                let idempotency = RedisIdempotencyStore::connect(
                    redis_url.expose(),
                    config.redis_key_prefix.clone(),
                    16,
                )
                .map_err(StartupError::Redis)?;
                let remote = Some(redis_url.expose());
                serve::<ServicePorts>(store, sessions, idempotency, hasher, remote, config).await
            }
            (None, None) => {
                tracing::warn!(
                    "no DATABASE_URL nor REDIS_URL: everything is kept in memory; data and sessions end with the process and are not shared between instances"
                );
                serve::<MemoryPorts>(
                    MemoryStore::new(),
                    MemorySessionStore::default(),
                    MemoryIdempotencyStore::default(),
                    hasher,
                    None,
                    config,
                )
                .await
            }
            // One of each would be a third adapter set to compile, test and
            // support, for a deployment that is neither zero-setup nor real.
            (Some(_), None) => Err(ConfigError::new(
                "REDIS_URL",
                "is required with DATABASE_URL (set both, or neither for the in-memory server)",
            )
            .into()),
            (None, Some(_)) => Err(ConfigError::new(
                "DATABASE_URL",
                "is required with REDIS_URL (set both, or neither for the in-memory server)",
            )
            .into()),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops the server: `graceful` lets in-flight requests finish (up to
    /// the shutdown timeout).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What closes the live streams when the server stops.
    pub fn live_streams(&self) -> LiveStreams {
        self.streams.clone()
    }

    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.server.await
    }
}

/// The PostgreSQL store, once the database answers and is migrated.
pub async fn connect_database(url: &str, config: &Config) -> Result<PgStore, StartupError> {
    let options = PgOptions {
        pool_size: config.database_pool_size,
        ..PgOptions::default()
    };
    let store = PgStore::new(url, &options);
    wait_for("DATABASE_URL", "PostgreSQL", || store.ping()).await?;
    let applied = adapters_postgres::run_migrations(url)
        .await
        .map_err(StartupError::Migrations)?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(migrations = ?applied, "applied database migrations");
    }
    Ok(store)
}

async fn connect_redis(url: &str, config: &Config) -> Result<RedisSessionStore, StartupError> {
    let sessions = RedisSessionStore::connect(url, config.redis_key_prefix.clone(), 16)
        .map_err(StartupError::Redis)?;
    wait_for("REDIS_URL", "Redis", || sessions.ping()).await?;
    Ok(sessions)
}

/// Pings until the store answers, a bounded number of times.
async fn wait_for<F, Fut>(
    var: &'static str,
    what: &'static str,
    ping: F,
) -> Result<(), StartupError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), PortError>>,
{
    let mut attempt = 1;
    loop {
        match ping().await {
            Ok(()) => return Ok(()),
            Err(source) if attempt >= STARTUP_ATTEMPTS => {
                return Err(StartupError::Unreachable {
                    var,
                    what,
                    attempts: attempt,
                    source,
                });
            }
            Err(e) => {
                tracing::warn!(attempt, "{what} does not answer yet: {e}");
                tokio::time::sleep(STARTUP_PAUSE).await;
                attempt += 1;
            }
        }
    }
}

/// Makes the registered users of `ADMIN_EMAILS` system admins (the others
/// become admins when they register).
async fn promote_admins<P: Ports>(app: &TaskFlow<P>, config: &Config) -> Result<(), StartupError> {
    for email in &config.admin_emails {
        match app.promote(email.as_str()).await {
            Ok(_) => tracing::info!(email = email.as_str(), "ADMIN_EMAILS: a system admin"),
            Err(domain::AdminError::NotFound) => tracing::info!(
                email = email.as_str(),
                "ADMIN_EMAILS: not registered yet; a system admin once registered"
            ),
            Err(source) => {
                return Err(StartupError::Promote {
                    email: email.as_str().to_owned(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// How often an instance prunes events older than the retention. Every
/// instance does; a prune is an idempotent delete, so they may overlap.
const EVENT_PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Prunes the event log now and then, for as long as the runtime runs. A
/// failure is logged and retried at the next tick.
async fn prune_events_periodically<P: Ports>(app: TaskFlow<P>) {
    let mut ticks = tokio::time::interval(EVENT_PRUNE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match app.prune_events().await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned events older than EVENT_RETENTION"),
            Err(e) => tracing::warn!("pruning events failed: {}", domain::error::describe(&e)),
        }
    }
}

/// The hashing limits the configuration asks for.
pub fn hash_limits(config: &Config) -> HashLimits {
    let mut limits = match config.password_hash_concurrency {
        Some(n) => HashLimits::new(n),
        None => HashLimits::per_core(),
    };
    limits.queue_timeout = config.password_hash_queue_timeout;
    limits
}

/// The OWASP-parameter hasher with the configured limits; building it
/// hashes once (its dummy hash), so it is built off the async threads.
pub async fn production_hasher(config: &Config) -> Result<Argon2Hasher, StartupError> {
    let limits = hash_limits(config);
    tokio::task::spawn_blocking(move || Argon2Hasher::with_limits(limits))
        .await
        .map_err(|e| StartupError::Hasher(e.to_string()))?
        .map_err(|e| StartupError::Hasher(domain::error::describe(&e)))
}

/// The use cases on the given stores, with the configuration's tokens and
/// session lifetime.
pub fn taskflow<P: ServerPorts>(
    store: P::Store,
    sessions: P::Sessions,
    idempotency: P::Idempotency,
    hasher: Argon2Hasher,
    bus: Bus,
    config: &Config,
) -> TaskFlow<P> {
    let tokens = JwtTokens::new(
        config.jwt_secret.expose().as_bytes(),
        TOKEN_ISSUER,
        config.access_token_ttl,
    );
    let settings = Settings {
        refresh_token_ttl: time::Duration::try_from(config.refresh_token_ttl)
            .unwrap_or(time::Duration::days(30)),
        admin_emails: config.admin_emails.clone(),
        event_retention: time::Duration::try_from(config.event_retention)
            .unwrap_or(time::Duration::days(30)),
    };
    TaskFlow::new(
        store,
        sessions,
        idempotency,
        hasher,
        tokens,
        SystemClock,
        bus,
        settings,
    )
}

/// The ports a server runs on: argon2, JWT, the system clock and the
/// server's bus; the stores vary.
pub trait ServerPorts:
    Ports<Hasher = Argon2Hasher, Tokens = JwtTokens, Clock = SystemClock, Bus = Bus>
{
}

impl<P> ServerPorts for P where
    P: Ports<Hasher = Argon2Hasher, Tokens = JwtTokens, Clock = SystemClock, Bus = Bus>
{
}

/// `redis_url`: where the instances announce their changes to each other
/// (none for the in-memory server, the only instance of its data).
async fn serve<P: ServerPorts>(
    store: P::Store,
    sessions: P::Sessions,
    idempotency: P::Idempotency,
    hasher: Argon2Hasher,
    redis_url: Option<&str>,
    config: &Config,
) -> Result<Application, StartupError> {
    let (inbox, signals) = api_http::live::Hub::<P>::inbox();
    let (bus, announcements) = match redis_url {
        None => (Bus::new(inbox, None), None),
        Some(url) => {
            let prefix = &config.redis_key_prefix;
            let announcer =
                adapters_redis::Announcer::start(url, prefix).map_err(StartupError::Redis)?;
            let hears = inbox.clone();
            let listener = adapters_redis::listen(
                url,
                prefix,
                move |announcement| hears.send(bus::signal(announcement)),
                |up| {
                    if up {
                        tracing::info!("listening to the other instances' announcements");
                    } else {
                        tracing::warn!(
                            "lost the announcements channel: live streams follow the log by polling until it is back"
                        );
                    }
                },
            )
            .map_err(StartupError::Redis)?;
            (Bus::new(inbox, Some(announcer)), Some(listener))
        }
    };
    let app = taskflow::<P>(store, sessions, idempotency, hasher, bus, config);
    let hub = api_http::live::Hub::<P>::start(
        app.clone(),
        api_http::live::Frames,
        config.live.clone(),
        signals,
    );
    promote_admins(&app, config).await?;
    tokio::spawn(prune_events_periodically(app.clone()));
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    let app = web::Data::new(app);
    let streams = {
        let hub = hub.clone();
        LiveStreams(std::sync::Arc::new(move || hub.close_all()))
    };
    let hub = web::Data::new(hub);
    let body_timeout = api_http::extract::BodyTimeout(config.request_body_timeout);
    let origins = web::Data::new(config.cors_origins.clone());
    let server = HttpServer::new(move || {
        App::new()
            // The last `wrap` is the outermost: the request context sees
            // (and renders) what CORS answers, preflights included.
            .wrap(api_http::cors::middleware(&origins))
            .wrap(from_fn(api_http::request_context))
            .app_data(origins.clone())
            .app_data(body_timeout)
            .configure(api_http::configure(app.clone(), hub.clone()))
    })
    // Signals are handled in `main`, which logs them and stops gracefully.
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    .listen(listener)
    .map_err(|source| StartupError::Bind { addr, source })?
    .run();
    Ok(Application {
        addr,
        server,
        _listener: announcements,
        streams,
    })
}
