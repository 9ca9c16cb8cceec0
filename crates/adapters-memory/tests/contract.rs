//! The port contracts, run against the in-memory adapters.

mod store {
    domain::store_contract!(async { (adapters_memory::MemoryStore::new(), ()) });
}

mod sessions {
    domain::session_store_contract!(async { adapters_memory::MemorySessionStore::default() });
}

mod idempotency {
    domain::idempotency_store_contract!(async {
        adapters_memory::MemoryIdempotencyStore::default()
    });
}
