use std::collections::BTreeMap;
use std::fmt;

/// The error type adapters wrap their own failures in.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A port failed for a reason that is not part of the domain's vocabulary.
///
/// The variants matter to callers: `Unavailable` is a dependency that
/// cannot be reached right now (retry later, HTTP 503), `Overloaded` is one
/// that is up but at capacity and shed the request (retry after
/// `retry_after`, HTTP 503 with `Retry-After`), `Unexpected` is a bug or
/// corrupt state (HTTP 500). `what` names the dependency ("database",
/// "session store", "password hasher") for logs and readiness reports.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("{what} is at capacity; retry after {retry_after:?}")]
    Overloaded {
        what: &'static str,
        retry_after: std::time::Duration,
    },
    #[error("unexpected failure in {what}")]
    Unexpected {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

impl PortError {
    pub fn unavailable(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            what,
            source: source.into(),
        }
    }

    pub fn unexpected(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unexpected {
            what,
            source: source.into(),
        }
    }

    pub fn overloaded(what: &'static str, retry_after: std::time::Duration) -> Self {
        Self::Overloaded { what, retry_after }
    }

    /// The dependency that failed.
    pub fn what(&self) -> &'static str {
        match self {
            Self::Unavailable { what, .. }
            | Self::Overloaded { what, .. }
            | Self::Unexpected { what, .. } => what,
        }
    }
}

/// What kind of failure a domain error is: all the HTTP layer needs to
/// map any use case's error (one mapping per kind, not one per enum). The
/// error's `Display` is its message for people; a [`PortError`]'s is for
/// logs only.
#[derive(Debug, Clone, Copy)]
pub enum ErrorKind<'a> {
    /// The input breaks a rule: each field with its messages.
    Invalid(&'a ValidationErrors),
    /// No valid credentials: a token missing, invalid or expired, or its
    /// session ended.
    Unauthenticated,
    /// An e-mail and password that match no account.
    InvalidCredentials,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// No such thing, or not one the caller may know of.
    NotFound,
    /// At odds with the current state (e.g. an e-mail already registered).
    Conflict,
    /// What the client asks to continue from is no longer kept: it must
    /// reload (an event log pruned past its position).
    ResyncRequired,
    /// The change was made against a version the entity has moved past;
    /// it is at `current_version` now.
    PreconditionFailed { current_version: i64 },
    /// A port failed: unavailable, overloaded or unexpected.
    Port(&'a PortError),
}

/// Every error a use case returns says what kind it is.
pub trait DomainError: std::error::Error {
    fn kind(&self) -> ErrorKind<'_>;
}

impl DomainError for PortError {
    fn kind(&self) -> ErrorKind<'_> {
        ErrorKind::Port(self)
    }
}

/// `error` and every cause under it, as one line: `a: b: c`.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// Field-level validation failures: each field maps to its messages.
///
/// Field names are the ones clients use (camelCase), so the HTTP layer can
/// pass them through unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    fields: BTreeMap<String, Vec<String>>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// Records the error of `result` under `field` and returns its value.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(field, e.to_string())).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.fields
    }

    /// `Ok(value)` when nothing was recorded, else `Err(self)`.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, messages) in &self.fields {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field}: {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
