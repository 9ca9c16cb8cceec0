//! In-memory adapters for every storage port of `domain`: the zero-setup
//! default store of a development server and the harness the domain's
//! tests run on. Nothing survives a restart.
//!
//! [`MemoryStore`] behaves as PostgreSQL does where a use case can tell: a
//! transaction stages its writes and applies them at commit (others never
//! see them before, audit entries and events included), the `_for_update`
//! reads and writes lock their rows until the transaction ends, reads never
//! wait. A project's event log is numbered under the project's row lock,
//! so in commit order; a snapshot is a transaction that refuses to lock or
//! write, reading what is committed at each read.
//! One [`MemoryHandle`] type implements every port, as a connection or as
//! a transaction. [`MemorySessionStore`] and [`MemoryIdempotencyStore`]
//! expire their entries by an injected clock.

mod idempotency;
mod sessions;
mod store;

pub use idempotency::MemoryIdempotencyStore;
pub use sessions::MemorySessionStore;
pub use store::{MemoryHandle, MemoryStore};
