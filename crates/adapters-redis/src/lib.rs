//! Redis implementation of TaskFlow's [`domain::SessionStore`] port: a bb8
//! pool of `bb8_redis` connections, atomic rotation and revocation in Lua.
//!
//! Every key lives under a configurable prefix (the server uses
//! `"taskflow:"`), so one Redis can serve several deployments or test runs.
//! Logs and errors name sessions by id, never by refresh-token hash.

mod error;
mod pool;
mod sessions;

pub use sessions::RedisSessionStore;
