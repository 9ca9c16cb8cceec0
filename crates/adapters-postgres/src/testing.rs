//! Throwaway databases for tests: a template database migrated once, cloned
//! cheaply for each test (`CREATE DATABASE … TEMPLATE`), dropped when the
//! test's [`TestDatabase`] goes away.
//!
//! The server is named by `DATABASE_URL` (any database on it; the role must
//! be allowed to create databases), by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. `cargo xtask test` sets it.
//! When it does not answer, tests fail with a message naming it.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::migrate::run_migrations;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TEMPLATE: &str = "taskflow_test_template";
const PREFIX: &str = "taskflow_test_";
/// Test databases older than this were left behind by a crashed run.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
/// Serialises template maintenance and cloning across test processes.
const TEMPLATE_LOCK: i64 = 0x5466_5465_6d70_6c74;

/// The server tests use.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A migrated database of its own, dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    server: String,
}

impl TestDatabase {
    /// Clones the migrated template into a new database. Panics, naming
    /// `DATABASE_URL`, when the server cannot be reached.
    pub async fn create() -> Self {
        let server = server_url();
        let mut admin = AsyncPgConnection::establish(&server)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at DATABASE_URL={server} ({e}). \
                 Start PostgreSQL or point DATABASE_URL at one; `cargo xtask test` does both."
                )
            });
        exec(
            &mut admin,
            &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"),
        )
        .await;
        let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}')"
        )))
        .get_result(&mut admin)
        .await
        .expect("query pg_database");
        if !exists {
            exec(&mut admin, &format!("CREATE DATABASE {TEMPLATE}")).await;
        }
        run_migrations(&with_database(&server, TEMPLATE))
            .await
            .expect("migrate the template database");
        drop_stale(&mut admin).await;
        let name = format!("{PREFIX}{}", uuid::Uuid::now_v7().simple());
        exec(
            &mut admin,
            &format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"),
        )
        .await;
        exec(
            &mut admin,
            &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"),
        )
        .await;
        Self {
            url: with_database(&server, &name),
            name,
            server,
        }
    }
}

/// Drops databases that crashed test runs left behind: their names carry a
/// UUIDv7, hence their creation time.
async fn drop_stale(admin: &mut AsyncPgConnection) {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let names: Vec<Name> = diesel::sql_query(format!(
        "SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%' AND datname <> '{TEMPLATE}'"
    ))
    .load(admin)
    .await
    .unwrap_or_default();
    let now = std::time::SystemTime::now();
    for Name { datname } in names {
        let created = uuid::Uuid::parse_str(datname.trim_start_matches(PREFIX))
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
            });
        let stale =
            created.is_some_and(|c| now.duration_since(c).is_ok_and(|age| age > STALE_AFTER));
        if stale {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
                .execute(admin)
                .await;
        }
    }
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we could borrow: use a thread
        // with a runtime of its own, and wait for it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&server).await.ok()?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("note: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
