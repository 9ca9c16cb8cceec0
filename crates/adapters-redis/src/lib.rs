//! Redis implementation of TaskFlow's [`domain::SessionStore`] port: a bb8
//! pool of `bb8_redis` connections, atomic rotation and revocation in Lua.
//! And the announcement bus ([`Announcer`], [`listen`]): instances telling
//! each other over pub/sub that a project's log has grown or sessions have
//! ended.
//!
//! Every key lives under a configurable prefix (the server uses
//! `"taskflow:"`), so one Redis can serve several deployments or test runs.
//! Logs and errors name sessions by id, never by refresh-token hash.

mod bus;
mod error;
mod pool;
mod sessions;

pub use bus::{Announcement, Announcer, Listener, listen};
pub use sessions::RedisSessionStore;
