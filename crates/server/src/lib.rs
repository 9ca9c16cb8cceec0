//! TaskFlow's composition root: reads the configuration, picks the adapters,
//! builds the HTTP server and runs it until a shutdown signal.

pub mod config;
pub mod telemetry;

use std::io;
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use adapters_auth::{Argon2Hasher, JwtTokens};
use adapters_memory::{MemorySessionStore, MemoryStore};
use domain::{Ports, Settings, SystemClock, TaskFlow};

pub use config::{AppEnv, Config, ConfigError, LogFormat};

/// The issuer every access token names (`iss`).
pub const TOKEN_ISSUER: &str = "taskflow";

/// The adapters of the zero-setup server: everything in memory.
#[derive(Debug)]
pub struct MemoryPorts;

impl Ports for MemoryPorts {
    type Store = MemoryStore;
    type Sessions = MemorySessionStore;
    type Hasher = Argon2Hasher;
    type Tokens = JwtTokens;
    type Clock = SystemClock;
}

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
    #[error("cannot set up the password hasher: {0}")]
    Hasher(#[source] domain::PortError),
}

/// A bound, not yet running server.
pub struct Application {
    addr: SocketAddr,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds the server
    /// on the adapters the configuration selects.
    pub fn build(config: &Config) -> Result<Self, StartupError> {
        Self::build_with_hasher(config, Argon2Hasher::new())
    }

    /// As [`Application::build`], with another password hasher (tests use
    /// cheap argon2 parameters).
    pub fn build_with_hasher(config: &Config, hasher: Argon2Hasher) -> Result<Self, StartupError> {
        if config.database_url.is_some() {
            return Err(ConfigError {
                var: "DATABASE_URL",
                message: "this build has only the in-memory store; unset DATABASE_URL to use it"
                    .to_owned(),
            }
            .into());
        }
        tracing::warn!(
            "no DATABASE_URL: using the in-memory store; data will not persist across restarts"
        );
        if config.jwt_secret_is_default {
            tracing::warn!(
                "no JWT_SECRET: using the development secret; set JWT_SECRET outside development"
            );
        }
        let tokens = JwtTokens::new(
            config.jwt_secret.expose().as_bytes(),
            TOKEN_ISSUER,
            config.access_token_ttl,
        );
        let settings = Settings {
            refresh_token_ttl: time::Duration::try_from(config.refresh_token_ttl)
                .unwrap_or(time::Duration::days(30)),
        };
        let app = TaskFlow::<MemoryPorts>::new(
            MemoryStore::new(),
            MemorySessionStore::default(),
            hasher,
            tokens,
            SystemClock,
            settings,
        );
        serve(app, config)
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

    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.server.await
    }
}

fn serve<P: Ports>(app: TaskFlow<P>, config: &Config) -> Result<Application, StartupError> {
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    let app = web::Data::new(app);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(api_http::request_context))
            .configure(api_http::configure(app.clone()))
    })
    // Signals are handled in `main`, which logs them and stops gracefully.
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    .listen(listener)
    .map_err(|source| StartupError::Bind { addr, source })?
    .run();
    Ok(Application { addr, server })
}
