//! The auth context: sessions, access and refresh tokens, the
//! authenticated caller; its ports (session store, password hasher, access
//! tokens) in [`ports`], its use cases in [`use_cases`].

pub mod ports;
pub mod use_cases;

use std::fmt;

use time::OffsetDateTime;

use crate::user::{Role, UserId};

uuid_id! {
    /// A login session: what an access token's `sid` and a refresh token point at.
    SessionId
}

/// A refresh token as handed to the client. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The one-way hash of a refresh token: all a session store ever keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

/// A live session as the session store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub role: Role,
    pub refresh_hash: TokenHash,
    pub expires_at: OffsetDateTime,
}

/// What a valid access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
}

/// A signed access token and its lifetime in seconds.
#[derive(Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The authenticated caller of a request: a live session of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    /// The request it made, recorded in the audit entries of its changes.
    pub request_id: Option<crate::audit::RequestId>,
    /// The client's id for the change it asks for (`X-Client-Mutation-Id`),
    /// echoed in the change's events.
    pub client_mutation_id: Option<crate::event::ClientMutationId>,
}
