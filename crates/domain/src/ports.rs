//! The ports: what the use cases need from the outside world.
//!
//! Every port is a trait whose futures are `Send`, so use cases run on a
//! multi-threaded runtime; adapters implement them with plain `async fn`.

use std::future::Future;

use time::OffsetDateTime;

use crate::auth::{AccessClaims, IssuedAccessToken, RefreshToken, Session, SessionId, TokenHash};
use crate::error::PortError;
use crate::task::{Task, TaskId, TaskQuery};
use crate::user::{Email, PasswordHash, PlainPassword, Role, User, UserId};

/// The persistent store: one port per aggregate ([`Users`], [`Tasks`]),
/// reached through a handle.
///
/// `connection` gives a handle whose every call commits on its own;
/// `begin` gives a [`Transaction`], the unit of work: its writes become
/// visible to others together at `commit`, and vanish if it is dropped
/// uncommitted. A use case that writes does all its writes through one
/// transaction, so a change and what records it commit together or not at
/// all. Reading through a connection while a transaction is open elsewhere
/// never waits and sees only committed data.
pub trait Store: Clone + Send + Sync + 'static {
    type Connection: Users + Tasks;
    type Transaction: Users + Tasks + Transaction;

    fn connection(&self) -> impl Future<Output = Result<Self::Connection, PortError>> + Send;
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, PortError>> + Send;
    /// Answers when the store can serve requests.
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait Transaction: Send {
    fn commit(self) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Insertion of a user whose e-mail is already registered.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("e-mail address already registered")]
    EmailTaken,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The users aggregate.
pub trait Users: Send {
    fn insert_user(
        &mut self,
        user: &User,
    ) -> impl Future<Output = Result<(), InsertUserError>> + Send;
    fn user_by_email(
        &mut self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    fn user_by_id(
        &mut self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
}

/// The tasks aggregate.
///
/// Methods always take the owner: a task is only ever reached through its
/// owner, so another user's task is indistinguishable from a missing one.
/// Locking is explicit: only [`Tasks::task_for_update`] locks, and writes
/// wait for a row another transaction has locked.
pub trait Tasks: Send {
    fn insert_task(&mut self, task: &Task) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The task as committed (or as this transaction left it); never waits.
    fn task(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// The task, locked against other writers until this transaction ends
    /// (waiting for one that holds it). Outside a transaction the lock ends
    /// with the call, so read-modify-write cycles belong in a transaction.
    fn task_for_update(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// Stores `task` over the row with its id and owner; false when there is none.
    fn update_task(&mut self, task: &Task) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// False when there was no such task.
    fn delete_task(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Up to `query.limit + 1` tasks of `owner` matching `query`, in its
    /// order, starting after `query.after` (the extra row tells whether
    /// there is a next page).
    fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Vec<Task>, PortError>> + Send;
}

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

pub trait Clock: Clone + Send + Sync + 'static {
    /// Now, to the microsecond.
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        crate::task::truncate_to_micros(OffsetDateTime::now_utc())
    }
}

/// The adapters one [`crate::TaskFlow`] runs on, named once by the
/// composition root.
pub trait Ports: Send + Sync + 'static {
    type Store: Store;
    type Sessions: SessionStore;
    type Hasher: PasswordHasher;
    type Tokens: AccessTokens;
    type Clock: Clock;
}
