//! The connection pool: bb8 over `bb8_redis::RedisConnectionManager`, with
//! broken connections evicted as soon as a command on them fails.
//!
//! `RedisConnectionManager::has_broken` always answers false, and a
//! `MultiplexedConnection` whose socket died stays dead (it never
//! reconnects), so bb8 would only notice through `is_valid`, i.e. a PING on
//! every checkout (`test_on_check_out`, on by default): a second round trip
//! on every request. Instead each pooled connection carries a flag, set when
//! a command on it fails with an I/O error (refused, reset, timed out…) or
//! another error after which the connection cannot be trusted; `has_broken`
//! reads it, so bb8 drops the connection when it comes back to the pool and
//! the next checkout dials a fresh one.
//!
//! A connection that died while idle (Redis restarted between two requests)
//! fails its next command at once, without sending it; [`Conn::is_stale`]
//! tells the store so it can retry idempotent requests on another one.
//! Every idle connection may be dead then, not only those that served.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bb8::{ErrorSink, ManageConnection, Pool};
use bb8_redis::RedisConnectionManager;
use domain::PortError;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult, ScriptInvocation};

use crate::error::{from_pool, from_redis};

/// How long a request waits for a pooled connection (dialing included)
/// before the store counts as unavailable.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool of connections to one Redis, for the store named `what` (in its
/// errors and logs). Cloning is cheap: clones share the pool.
#[derive(Clone)]
pub(crate) struct Client {
    pool: Pool<Manager>,
    last_error: LastError,
    what: &'static str,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Client")
            .field("max_size", &self.pool.config().max_size)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

impl Client {
    /// A lazy pool on the Redis at `url`: see `RedisSessionStore::connect`.
    pub(crate) fn connect(
        url: &str,
        pool_size: u32,
        what: &'static str,
    ) -> Result<Self, PortError> {
        if pool_size == 0 {
            return Err(PortError::unexpected(
                what,
                "the Redis pool size must be at least 1",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(PortError::unexpected(
                what,
                "a Redis store must be connected within a Tokio runtime",
            ));
        }
        let manager =
            RedisConnectionManager::new(url).map_err(|e| PortError::unexpected(what, e))?;
        let last_error = LastError::default();
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(CONNECTION_TIMEOUT)
            // Broken connections are dropped by `Manager::has_broken`
            // instead: see above.
            .test_on_check_out(false)
            .error_sink(Box::new(LogErrors))
            .build_unchecked(Manager::new(manager, last_error.clone()));
        Ok(Self {
            pool,
            last_error,
            what,
        })
    }

    /// Sends one request on a pooled connection. An idempotent request that
    /// meets a connection which died while idle is sent again on another
    /// (bb8 drops the dead one), up to once per connection the pool can
    /// hold, so requests succeed at once when Redis is back. A request that
    /// must not run twice is sent with [`Retry::Never`].
    pub(crate) async fn request<T: FromRedisValue>(
        &self,
        request: Request<'_>,
        retry: Retry,
    ) -> Result<T, PortError> {
        let mut retries_left = match retry {
            Retry::IfStale => self.pool.config().max_size,
            Retry::Never => 0,
        };
        let since = Instant::now();
        loop {
            let mut conn = self.pool.get().await.map_err(|e| {
                from_pool(
                    self.what,
                    e,
                    CONNECTION_TIMEOUT,
                    last_error(&self.last_error),
                )
            })?;
            let result = match request {
                Request::Command(cmd) => conn.query(cmd).await,
                Request::Script(invocation) => conn.invoke(invocation).await,
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if retries_left > 0 && conn.is_stale(&e, since) => {
                    retries_left -= 1;
                    tracing::debug!(error = %e, "{}: stale Redis connection, retrying", self.what);
                }
                Err(e) => return Err(from_redis(self.what, e)),
            }
        }
    }

    /// PING, expecting PONG.
    pub(crate) async fn ping(&self) -> Result<(), PortError> {
        let pong: String = self
            .request(Request::Command(&redis::cmd("PING")), Retry::IfStale)
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(PortError::unexpected(
                self.what,
                "Redis answered PING oddly",
            ))
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    Command(&'a Cmd),
    Script(&'a ScriptInvocation<'a>),
}

#[derive(Clone, Copy)]
pub(crate) enum Retry {
    IfStale,
    Never,
}

/// The last failure to open a connection, cleared by the next success: the
/// cause reported when the pool times out waiting for a connection.
pub(crate) type LastError = Arc<Mutex<Option<RedisError>>>;

pub(crate) fn last_error(last: &LastError) -> Option<RedisError> {
    last.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn set_last_error(last: &LastError, error: Option<RedisError>) {
    *last.lock().unwrap_or_else(PoisonError::into_inner) = error;
}

pub(crate) struct Manager {
    inner: RedisConnectionManager,
    last_error: LastError,
}

impl Manager {
    pub(crate) fn new(inner: RedisConnectionManager, last_error: LastError) -> Self {
        Self { inner, last_error }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection info may hold a password.
        f.write_str("Manager { .. }")
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        match self.inner.connect().await {
            Ok(redis) => {
                set_last_error(&self.last_error, None);
                Ok(Conn {
                    redis,
                    broken: false,
                    opened: Instant::now(),
                })
            }
            Err(e) => {
                set_last_error(&self.last_error, Some(e.clone()));
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        let result = self.inner.is_valid(&mut conn.redis).await;
        conn.check(result)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

/// A pooled connection: run commands through it so failures are noticed.
pub(crate) struct Conn {
    redis: MultiplexedConnection,
    /// A command failed in a way that leaves the connection unusable.
    broken: bool,
    opened: Instant,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        let result = cmd.query_async(&mut self.redis).await;
        self.check(result)
    }

    pub(crate) async fn invoke<T: FromRedisValue>(
        &mut self,
        invocation: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        let result = invocation.invoke_async(&mut self.redis).await;
        self.check(result)
    }

    /// Whether `error`, just returned by this connection, says it was lost
    /// while it waited in the pool, i.e. was opened before the request
    /// (`since`) began: then the request was most likely never sent, and
    /// another connection is the cure. A connection dialed for the request
    /// that fails so means Redis is failing now.
    pub(crate) fn is_stale(&self, error: &RedisError, since: Instant) -> bool {
        self.opened < since && error.is_connection_dropped()
    }

    fn check<T>(&mut self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && (e.is_io_error() || e.is_unrecoverable_error())
        {
            self.broken = true;
        }
        result
    }
}

/// Failures to (re)connect, which bb8 hands here instead of to a caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogErrors;

impl ErrorSink<RedisError> for LogErrors {
    fn sink(&self, error: RedisError) {
        // Debug, not warn: during an outage every request tries to dial, and
        // each failing request is reported by its caller anyway.
        tracing::debug!(error = %error, "connecting to Redis failed");
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<RedisError>> {
        Box::new(*self)
    }
}
