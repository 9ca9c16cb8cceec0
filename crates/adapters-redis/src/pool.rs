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
use std::time::Instant;

use bb8::{ErrorSink, ManageConnection};
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult, ScriptInvocation};

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
        tracing::debug!(error = %error, "session store: connecting to Redis failed");
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<RedisError>> {
        Box::new(*self)
    }
}
