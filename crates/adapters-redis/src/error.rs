//! Redis and pool failures as [`PortError`]s.

use std::fmt;
use std::time::Duration;

use domain::PortError;
use redis::{ErrorKind, RedisError, ServerErrorKind};

pub(crate) const WHAT: &str = "session store";

/// `Unavailable` for what retrying later may cure (no connection, I/O
/// failure, timeout, a server still loading or failing over); `Unexpected`
/// for the rest (script errors, wrong types, unparsable replies). `what`
/// names the store.
pub(crate) fn from_redis(what: &'static str, error: RedisError) -> PortError {
    let transient = error.is_io_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if transient {
        PortError::unavailable(what, error)
    } else {
        PortError::unexpected(what, error)
    }
}

pub(crate) fn from_pool(
    what: &'static str,
    error: bb8::RunError<RedisError>,
    waited: Duration,
    last: Option<RedisError>,
) -> PortError {
    match error {
        bb8::RunError::User(e) => from_redis(what, e),
        bb8::RunError::TimedOut => PortError::unavailable(what, NoConnection { waited, last }),
    }
}

/// The pool had no connection to give within its timeout.
#[derive(Debug)]
pub(crate) struct NoConnection {
    waited: Duration,
    /// Why the last attempt to connect failed, if it did: the source.
    last: Option<RedisError>,
}

impl fmt::Display for NoConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no Redis connection within {:?}", self.waited)
    }
}

impl std::error::Error for NoConnection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Data in Redis that this adapter did not write as it is.
#[derive(Debug)]
pub(crate) struct Corrupt(pub(crate) String);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt session data in Redis: {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

pub(crate) fn corrupt(what: impl Into<String>) -> PortError {
    PortError::unexpected(WHAT, Corrupt(what.into()))
}
