//! The session-store contract, run against Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`). Without a Redis these tests fail, naming the
//! URL tried.

mod common;

mod sessions {
    domain::session_store_contract!(crate::common::store());
}
