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

    /// Migration versions as diesel writes them (`2026-11-22-000003_…`
    /// without its dashes and name).
    const PROJECTS: &str = "20261122000003";
    const TASKS_IN_PROJECTS: &str = "20261122000004";
    const AUDIT: &str = "20261122000005";
    const EVENT_LOG: &str = "20261122000006";

    type Conn = AsyncConnectionWrapper<AsyncPgConnection>;

    /// Reverts migrations, newest first, up to and including `version`.
    fn revert_through(conn: &mut Conn, version: &str) {
        loop {
            let reverted = conn.revert_last_migration(MIGRATIONS).expect("revert");
            if reverted.to_string() == version {
                return;
            }
        }
    }

    /// Applies the next pending migration, which must be `version`.
    fn apply(conn: &mut Conn, version: &str) {
        let applied = conn.run_next_migration(MIGRATIONS).expect("migrate");
        assert_eq!(applied.to_string(), version);
    }

    fn execute(conn: &mut Conn, sql: &str) {
        diesel::sql_query(sql)
            .execute(conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut Conn, sql: &str) -> i64 {
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
            revert_through(&mut conn, PROJECTS);
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
            revert_through(&mut conn, PROJECTS);
            let tables = "SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'project%'";
            assert_eq!(count(&mut conn, tables), 0, "reverted");
            conn.run_pending_migrations(MIGRATIONS)
                .expect("apply again");
            assert_eq!(count(&mut conn, inboxes), 2);
        })
        .await
        .expect("the blocking test");
    }

    /// A task, by its user's e-mail address and its title.
    #[derive(QueryableByName, Debug, PartialEq, Eq)]
    struct Placed {
        #[diesel(sql_type = Text)]
        email: String,
        #[diesel(sql_type = Text)]
        title: String,
    }

    /// Tasks of `sql`'s users by e-mail address and title, sorted.
    fn placed(conn: &mut Conn, sql: &str) -> Vec<Placed> {
        diesel::sql_query(format!("{sql} ORDER BY 1, 2"))
            .load(conn)
            .expect("query")
    }

    /// Migration 4 moves every task into its owner's Inbox, created by its
    /// owner and unassigned, making the Inbox of a user who registered
    /// after migration 3 without one; reverted, each task belongs to its
    /// creator again; and it applies again.
    #[tokio::test]
    async fn tasks_from_before_projects_move_into_their_owners_inbox_and_the_migration_reverts() {
        let db = TestDatabase::create().await;
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = connect(&url).expect("connect");
            revert_through(&mut conn, PROJECTS);
            // Ada registered before projects (migration 3 makes her Inbox),
            // Bob after, by an instance that made none.
            let user = |email: &str| {
                format!(
                    "INSERT INTO users (id, email, name, role, password_hash, created_at) \
                     VALUES (gen_random_uuid(), '{email}', 'Old', 'user', 'x', now())"
                )
            };
            let task = |email: &str, title: &str| {
                format!(
                    "INSERT INTO tasks (id, owner_id, title, status, priority, created_at, \
                                        updated_at, version) \
                     SELECT gen_random_uuid(), id, '{title}', 'todo', 1, now(), now(), 1 \
                     FROM users WHERE email = '{email}'"
                )
            };
            execute(&mut conn, &user("ada@example.com"));
            execute(&mut conn, &task("ada@example.com", "a1"));
            execute(&mut conn, &task("ada@example.com", "a2"));
            apply(&mut conn, PROJECTS);
            execute(&mut conn, &user("bob@example.com"));
            execute(&mut conn, &task("bob@example.com", "b1"));
            execute(&mut conn, &task("ada@example.com", "a3"));
            apply(&mut conn, TASKS_IN_PROJECTS);
            let expected = |pairs: &[(&str, &str)]| {
                pairs
                    .iter()
                    .map(|(email, title)| Placed {
                        email: (*email).to_owned(),
                        title: (*title).to_owned(),
                    })
                    .collect::<Vec<_>>()
            };
            let all = expected(&[
                ("ada@example.com", "a1"),
                ("ada@example.com", "a2"),
                ("ada@example.com", "a3"),
                ("bob@example.com", "b1"),
            ]);
            let in_inboxes = "SELECT u.email, t.title FROM tasks t \
                 JOIN users u ON u.id = t.created_by \
                 JOIN projects p ON p.id = t.project_id AND p.owner_id = u.id AND p.personal \
                 JOIN project_members m ON m.project_id = p.id AND m.user_id = u.id \
                     AND m.role = 'owner' \
                 WHERE t.assignee_id IS NULL";
            assert_eq!(
                placed(&mut conn, in_inboxes),
                all,
                "in their creators' Inboxes"
            );
            let inboxes = "SELECT count(*) AS n FROM projects WHERE personal";
            assert_eq!(count(&mut conn, inboxes), 2, "one Inbox each");
            revert_through(&mut conn, TASKS_IN_PROJECTS);
            let owned = "SELECT u.email, t.title FROM tasks t JOIN users u ON u.id = t.owner_id";
            assert_eq!(
                placed(&mut conn, owned),
                all,
                "owned by their creators again"
            );
            let columns = "SELECT count(*) AS n FROM information_schema.columns \
                 WHERE table_name = 'tasks' \
                   AND column_name IN ('project_id', 'created_by', 'assignee_id')";
            assert_eq!(count(&mut conn, columns), 0, "reverted");
            let indexes =
                "SELECT count(*) AS n FROM pg_indexes WHERE indexname LIKE 'tasks_owner_%'";
            assert_eq!(count(&mut conn, indexes), 4, "the owner indexes are back");
            conn.run_pending_migrations(MIGRATIONS)
                .expect("apply again");
            assert_eq!(placed(&mut conn, in_inboxes), all);
            assert_eq!(count(&mut conn, inboxes), 2, "no second Inbox");
        })
        .await
        .expect("the blocking test");
    }

    /// Migration 5 leaves existing users enabled and adds the audit trail;
    /// it reverts and applies again.
    #[tokio::test]
    async fn users_from_before_the_audit_trail_are_enabled_and_the_migration_reverts() {
        let db = TestDatabase::create().await;
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = connect(&url).expect("connect");
            revert_through(&mut conn, AUDIT);
            execute(
                &mut conn,
                "INSERT INTO users (id, email, name, role, password_hash, created_at) \
                 VALUES (gen_random_uuid(), 'old@example.com', 'Old', 'user', 'x', now())",
            );
            apply(&mut conn, AUDIT);
            let enabled = "SELECT count(*) AS n FROM users WHERE NOT disabled";
            assert_eq!(count(&mut conn, enabled), 1);
            let entry = "INSERT INTO audit_entries \
                 (id, at, actor_id, action, entity_type, entity_id, project_id, changes) \
                 SELECT gen_random_uuid(), now(), id, 'user.disabled', 'user', id, NULL, \
                        '{\"disabled\": {\"from\": false, \"to\": true}}' \
                 FROM users";
            execute(&mut conn, entry);
            revert_through(&mut conn, AUDIT);
            let gone = "SELECT count(*) AS n FROM information_schema.columns \
                 WHERE (table_name = 'users' AND column_name = 'disabled') \
                    OR table_name = 'audit_entries'";
            assert_eq!(count(&mut conn, gone), 0, "reverted");
            conn.run_pending_migrations(MIGRATIONS)
                .expect("apply again");
            assert_eq!(count(&mut conn, enabled), 1);
            execute(&mut conn, entry);
        })
        .await
        .expect("the blocking test");
    }

    /// Migration 6 starts existing projects' logs empty and adds the event
    /// log; it reverts and applies again.
    #[tokio::test]
    async fn projects_from_before_the_event_log_start_empty_and_the_migration_reverts() {
        let db = TestDatabase::create().await;
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = connect(&url).expect("connect");
            revert_through(&mut conn, EVENT_LOG);
            // A user from before, with the Inbox registration gave them.
            execute(
                &mut conn,
                "INSERT INTO users (id, email, name, role, password_hash, created_at) \
                 VALUES (gen_random_uuid(), 'old@example.com', 'Old', 'user', 'x', now())",
            );
            execute(
                &mut conn,
                "INSERT INTO projects (id, name, name_key, archived, personal, owner_id, \
                                       created_at, updated_at, version) \
                 SELECT gen_random_uuid(), 'Inbox', 'inbox', false, true, id, now(), now(), 1 \
                 FROM users",
            );
            apply(&mut conn, EVENT_LOG);
            let empty = "SELECT count(*) AS n FROM projects WHERE event_seq = 0";
            assert_eq!(count(&mut conn, empty), 1, "an empty log");
            let numbered = "UPDATE projects SET event_seq = event_seq + 1";
            let event = "INSERT INTO events (project_id, seq, type, entity_id, actor_id, at, data, \
                                     changes, request_id, client_mutation_id) \
                 SELECT p.id, p.event_seq, 'project.deleted', p.id, p.owner_id, now(), NULL, \
                        '{}', 'req-1', NULL \
                 FROM projects p";
            execute(&mut conn, numbered);
            execute(&mut conn, event);
            revert_through(&mut conn, EVENT_LOG);
            let gone = "SELECT count(*) AS n FROM information_schema.columns \
                 WHERE (table_name = 'projects' AND column_name = 'event_seq') \
                    OR table_name = 'events'";
            assert_eq!(count(&mut conn, gone), 0, "reverted");
            conn.run_pending_migrations(MIGRATIONS)
                .expect("apply again");
            assert_eq!(count(&mut conn, empty), 1);
            execute(&mut conn, numbered);
            execute(&mut conn, event);
            let logged = "SELECT count(*) AS n FROM events e \
                 JOIN projects p ON p.id = e.project_id AND p.event_seq = e.seq";
            assert_eq!(count(&mut conn, logged), 1);
        })
        .await
        .expect("the blocking test");
    }
}
