//! Redis implementations of TaskFlow's [`domain::SessionStore`] and
//! [`domain::IdempotencyStore`] ports: each a bb8 pool of `bb8_redis`
//! connections, its atomic steps in Lua (session rotation and revocation;
//! claiming, completing and releasing an idempotency key). And the
//! announcement bus ([`Announcer`], [`listen`]): instances telling each
//! other over pub/sub that a project's log has grown or sessions have
//! ended.
//!
//! Every key lives under a configurable prefix (the server uses
//! `"taskflow:"`), so one Redis can serve several deployments or test runs.
//! Logs and errors name sessions by id, never by refresh-token hash.

mod bus;
mod error;
mod idempotency;
mod pool;
mod sessions;

pub use bus::{Announcement, Announcer, Listener, listen};
pub use idempotency::RedisIdempotencyStore;
pub use sessions::RedisSessionStore;
