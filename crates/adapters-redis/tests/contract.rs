//! The session-store and idempotency-store contracts, run against Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`). Without a Redis these tests fail, naming the
//! URL tried.

mod common;

mod sessions {
    domain::session_store_contract!(crate::common::store());
}

mod idempotency {
    domain::idempotency_store_contract!(crate::common::idempotency_store());
}
