//! PostgreSQL adapter of TaskFlow's store port: diesel + diesel-async over a
//! bb8 pool, migrations embedded from the top-level `migrations/`.
//!
//! Schema and row types stay private: the rest of the workspace sees only
//! domain types. Every failure becomes a `PortError`: unreachable database,
//! exhausted pool or statement timeout `Unavailable`, the rest `Unexpected`.

mod audit;
mod error;
mod event;
#[cfg(test)]
mod explain;
mod migrate;
mod project;
mod rows;
mod schema;
mod store;
mod task;
#[cfg(feature = "testing")]
pub mod testing;
mod user;

pub use migrate::{MIGRATIONS, reset, run_migrations};
pub use store::{PgHandle, PgOptions, PgStore};
