//! In-memory adapters for every storage port of `domain`: the zero-setup
//! default store of a development server and the harness the domain's
//! tests run on. Nothing survives a restart.
//!
//! [`MemoryStore`] serialises transactions: a transaction holds the store's
//! lock from `begin` until it commits or is dropped, and a dropped one
//! undoes its writes. Single calls on a connection lock only for the call.

mod sessions;
mod store;

pub use sessions::MemorySessionStore;
pub use store::{MemoryConnection, MemoryStore, MemoryTransaction};
