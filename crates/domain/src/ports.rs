//! The ports: what the use cases need from the outside world. Each
//! aggregate's port lives with it (`user::port`, `task::port`,
//! `auth::ports`) and is re-exported here; this module holds what they
//! share: the [`Store`] and its unit of work, the clock, and [`Ports`], the
//! set of adapters one [`crate::TaskFlow`] runs on.
//!
//! Every port is a trait whose futures are `Send`, so use cases run on a
//! multi-threaded runtime; adapters implement them with plain `async fn`.

use std::future::Future;

use time::OffsetDateTime;

pub use crate::audit::port::Audit;
pub use crate::auth::ports::{AccessTokens, PasswordHasher, SessionStore};
use crate::error::PortError;
pub use crate::event::bus::EventBus;
pub use crate::event::port::Events;
pub use crate::project::port::{
    InsertMemberError, MemberDetails, MemberQuery, ProjectQuery, Projects,
};
pub use crate::task::port::Tasks;
pub use crate::user::port::{InsertUserError, UserQuery, Users};

/// The persistent store: one port per aggregate ([`Users`], [`Projects`],
/// [`Tasks`], [`Audit`], [`Events`]), reached through a handle.
///
/// `connection` gives a handle whose every call commits on its own;
/// `begin` gives a [`Transaction`], the unit of work: its writes become
/// visible to others together at `commit`, and vanish if it is dropped
/// uncommitted. A use case that writes does all its writes through one
/// transaction, so a change and what records it commit together or not at
/// all. Reading through a connection while a transaction is open elsewhere
/// never waits and sees only committed data.
pub trait Store: Clone + Send + Sync + 'static {
    type Connection: Users + Projects + Tasks + Audit + Events;
    type Transaction: Users + Projects + Tasks + Audit + Events + Transaction;

    fn connection(&self) -> impl Future<Output = Result<Self::Connection, PortError>> + Send;
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, PortError>> + Send;
    /// A transaction for reading only, whose reads all see the data as
    /// committed when it began (PostgreSQL: `REPEATABLE READ READ ONLY`),
    /// so a page and the log head that goes with it agree. An adapter
    /// without snapshots may give a plain transaction: use cases read the
    /// log head before what it numbers, which stays safe (the state read
    /// is then at least as new as the head).
    fn snapshot(&self) -> impl Future<Output = Result<Self::Transaction, PortError>> + Send;
    /// Answers when the store can serve requests.
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait Transaction: Send {
    fn commit(self) -> impl Future<Output = Result<(), PortError>> + Send;
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
    type Idempotency: crate::idempotency::IdempotencyStore;
    type Hasher: PasswordHasher;
    type Tokens: AccessTokens;
    type Clock: Clock;
    type Bus: EventBus;
}
