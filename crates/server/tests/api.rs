//! TaskFlow's HTTP API, end to end: every test starts its own server on a
//! free port (PostgreSQL and Redis, or the in-memory adapters with
//! `TASKFLOW_API_BACKEND=memory`; cheap password hashing) and talks to it over
//! real HTTP with reqwest.
//!
//! Set `TEST_LOG` (to `1` or to a `tracing` filter such as `debug`) to see
//! the servers' logs on stderr.
//!
//! The modules live in `tests/api/` (a crate root's `mod` would look for
//! them next to this file, hence the `#[path]`s).

#[path = "api/helpers.rs"]
mod helpers;

#[path = "api/admin.rs"]
mod admin;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/bola.rs"]
mod bola;
#[path = "api/cors.rs"]
mod cors;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/events.rs"]
mod events;
#[path = "api/flow.rs"]
mod flow;
#[path = "api/idempotency.rs"]
mod idempotency;
#[path = "api/live.rs"]
mod live;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/ops.rs"]
mod ops;
#[path = "api/ownership.rs"]
mod ownership;
#[path = "api/policy_matrix.rs"]
mod policy_matrix;
#[path = "api/projects.rs"]
mod projects;
#[path = "api/request_id.rs"]
mod request_id;
#[path = "api/tasks.rs"]
mod tasks;
#[path = "api/tasks_list.rs"]
mod tasks_list;
#[path = "api/text.rs"]
mod text;
#[path = "api/versions.rs"]
mod versions;
#[path = "support/ws.rs"]
mod ws;
