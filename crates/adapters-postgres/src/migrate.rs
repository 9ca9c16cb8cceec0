//! The migrations in the top-level `migrations/`, embedded in the binary and
//! applied under a PostgreSQL advisory lock, so instances starting together
//! take turns instead of racing.

use diesel::prelude::*;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::PortError;

use crate::error::{WHAT, from_diesel};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The advisory-lock key migrations run under ("TaskFlow" in ASCII).
const MIGRATION_LOCK: i64 = 0x5461_736b_466c_6f77;

/// Applies every pending migration to the database at `url`; returns the
/// versions applied. Safe to call from several processes at once.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, PortError> {
    let url = url.to_owned();
    // diesel's migration harness is synchronous: run it on the blocking pool.
    tokio::task::spawn_blocking(move || migrate_blocking(&url))
        .await
        .map_err(|e| PortError::unexpected(WHAT, e))?
}

/// `url` with a connect timeout unless it names one: start-up must not hang
/// on a host that drops packets.
fn bounded(url: &str) -> String {
    if url.contains("connect_timeout") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=10")
    } else {
        format!("{url}?connect_timeout=10")
    }
}

fn connect(url: &str) -> Result<AsyncConnectionWrapper<AsyncPgConnection>, PortError> {
    AsyncConnectionWrapper::<AsyncPgConnection>::establish(&bounded(url))
        .map_err(|e| PortError::unavailable(WHAT, e))
}

fn migrate_blocking(url: &str) -> Result<Vec<String>, PortError> {
    let mut conn = connect(url)?;
    // Another instance migrating holds the lock; waiting for it is bounded
    // (lock_timeout covers advisory locks and the migrations' own locks).
    diesel::sql_query("SET lock_timeout = '60s'")
        .execute(&mut conn)
        .map_err(from_diesel)?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .map_err(from_diesel)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| PortError::unexpected(WHAT, e));
    // Released by disconnecting too; unlock explicitly to hand over at once.
    let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .map_err(from_diesel);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

/// Drops every table of ours and applies the migrations again: for
/// `taskflow db reset` on development databases.
pub async fn reset(url: &str) -> Result<Vec<String>, PortError> {
    let owned = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = connect(&owned)?;
        conn.revert_all_migrations(MIGRATIONS)
            .map_err(|e| PortError::unexpected(WHAT, e))?;
        Ok::<_, PortError>(())
    })
    .await
    .map_err(|e| PortError::unexpected(WHAT, e))??;
    run_migrations(url).await
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};

    use super::*;
    use crate::testing::TestDatabase;

    /// The version of the migration that introduced projects, as diesel
    /// writes it (`2026-11-22-000003_…` without its dashes and name).
    const PROJECTS: &str = "20261122000003";

    /// Reverts migrations, newest first, up to and including the projects
    /// migration.
    fn revert_through_projects(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) {
        loop {
            let reverted = conn.revert_last_migration(MIGRATIONS).expect("revert");
            if reverted.to_string() == PROJECTS {
                return;
            }
        }
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>, sql: &str) -> i64 {
        diesel::sql_query(sql)
            .get_result::<Count>(conn)
            .expect("count")
            .n
    }

    /// The projects migration gives every user who registered before it an
    /// Inbox they own, and it can be reverted and applied again.
    #[tokio::test]
    async fn users_from_before_projects_get_an_inbox_and_the_migration_reverts() {
        let db = TestDatabase::create().await;
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = connect(&url).expect("connect");
            revert_through_projects(&mut conn);
            for email in ["old1@example.com", "old2@example.com"] {
                diesel::sql_query(
                    "INSERT INTO users (id, email, name, role, password_hash, created_at) \
                     VALUES (gen_random_uuid(), $1, 'Old', 'user', 'x', now())",
                )
                .bind::<Text, _>(email)
                .execute(&mut conn)
                .expect("insert a user");
            }
            conn.run_pending_migrations(MIGRATIONS).expect("migrate");
            let inboxes = "SELECT count(*) AS n FROM users u \
                 JOIN projects p ON p.owner_id = u.id AND p.personal AND p.name = 'Inbox' \
                 JOIN project_members m ON m.project_id = p.id AND m.user_id = u.id \
                     AND m.role = 'owner'";
            assert_eq!(count(&mut conn, inboxes), 2, "each user owns one Inbox");
            assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM projects"), 2);
            revert_through_projects(&mut conn);
            let tables = "SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'project%'";
            assert_eq!(count(&mut conn, tables), 0, "reverted");
            conn.run_pending_migrations(MIGRATIONS)
                .expect("apply again");
            assert_eq!(count(&mut conn, inboxes), 2);
        })
        .await
        .expect("the blocking test");
    }
}
