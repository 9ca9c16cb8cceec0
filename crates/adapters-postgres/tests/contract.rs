//! The port contract, run against PostgreSQL: each test on a database of
//! its own, cloned from the migrated template.

use adapters_postgres::testing::TestDatabase;
use adapters_postgres::{PgOptions, PgStore};

/// The store and the database it lives in, dropped when the test ends.
async fn store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::create().await;
    (PgStore::new(&db.url, &PgOptions::default()), db)
}

domain::store_contract!(store());
