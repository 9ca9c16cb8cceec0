//! Database failures in the domain's terms: a lost or refused connection,
//! an exhausted pool or a statement timeout is `Unavailable` (503, retry);
//! anything else is `Unexpected` (500).

use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::pooled_connection::PoolError;
use domain::PortError;

pub(crate) const WHAT: &str = "database";

pub(crate) fn from_diesel(error: Error) -> PortError {
    if is_unavailable(&error) {
        PortError::unavailable(WHAT, error)
    } else {
        PortError::unexpected(WHAT, error)
    }
}

fn is_unavailable(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
        | Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            // 57014 query_canceled (statement_timeout), 57P01..03 shutdown
            // and cannot-connect-now, 53300 too many connections.
            message.contains("statement timeout")
                || message.contains("terminating connection")
                || message.contains("the database system is")
                || message.contains("too many clients")
                || message.contains("connection closed")
        }
        _ => false,
    }
}

/// `cause`: why connecting last failed, when it did.
pub(crate) fn from_pool(error: bb8::RunError<PoolError>, cause: Option<String>) -> PortError {
    match error {
        bb8::RunError::TimedOut => PortError::unavailable(
            WHAT,
            match cause {
                Some(cause) => format!("no connection: {cause}"),
                None => "timed out waiting for a free connection".to_owned(),
            },
        ),
        bb8::RunError::User(PoolError::ConnectionError(e)) => PortError::unavailable(WHAT, e),
        bb8::RunError::User(PoolError::QueryError(e)) => from_diesel(e),
    }
}

/// Whether a unique violation comes from the given constraint or index.
pub(crate) fn is_unique_violation(error: &Error, constraint: &str) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(constraint)
    )
}
