//! The auth context's ports: where sessions live, password hashing,
//! access tokens.

use std::future::Future;

use time::OffsetDateTime;

use crate::auth::{AccessClaims, IssuedAccessToken, RefreshToken, Session, SessionId, TokenHash};
use crate::error::PortError;
use crate::user::{PasswordHash, PlainPassword, Role, UserId};

/// Where sessions live: shared by every instance, checked on every
/// authenticated request.
pub trait SessionStore: Clone + Send + Sync + 'static {
    fn create(&self, session: &Session) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The session's user and role if it is alive: one round trip.
    fn active(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<Option<(UserId, Role)>, PortError>> + Send;
    /// Atomically swaps the refresh token `old` for `new` and extends the
    /// session to `expires_at`. Returns the session, or `None` when `old`
    /// is unknown, already used, or expired: a refresh token is redeemed
    /// once, even by concurrent callers.
    fn rotate(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Session>, PortError>> + Send;
    /// Ends the session: its access and refresh tokens stop working.
    fn revoke(&self, id: SessionId) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Ends every session of `user` (a disabled account).
    fn revoke_all(&self, user: UserId) -> impl Future<Output = Result<(), PortError>> + Send;
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Slow, salted password hashing, run off the request threads.
pub trait PasswordHasher: Clone + Send + Sync + 'static {
    fn hash(
        &self,
        password: PlainPassword,
    ) -> impl Future<Output = Result<PasswordHash, PortError>> + Send;
    /// Whether `password` matches `hash`. With no hash (unknown user) it
    /// does the same work against a dummy hash and answers false, so both
    /// cases take about the same time.
    fn verify(
        &self,
        password: PlainPassword,
        hash: Option<PasswordHash>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Access tokens (signed, short-lived) and refresh-token secrets.
pub trait AccessTokens: Clone + Send + Sync + 'static {
    fn issue(
        &self,
        claims: AccessClaims,
        now: OffsetDateTime,
    ) -> Result<IssuedAccessToken, PortError>;
    /// The claims of a token that is well-formed, correctly signed, issued
    /// by us and not expired; `None` otherwise.
    fn verify(&self, token: &str) -> Option<AccessClaims>;
    /// A fresh random refresh token and its hash.
    fn new_refresh_token(&self) -> Result<(RefreshToken, TokenHash), PortError>;
    fn hash_refresh_token(&self, token: &RefreshToken) -> TokenHash;
}
