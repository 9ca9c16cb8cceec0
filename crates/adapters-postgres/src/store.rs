use std::time::Duration;

use diesel::prelude::*;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use domain::{PortError, Store, Transaction};

use crate::error::{from_diesel, from_pool};

type Manager = AsyncDieselConnectionManager<AsyncPgConnection>;
type Pool = bb8::Pool<Manager>;
type Pooled = bb8::PooledConnection<'static, Manager>;

/// How the pool connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub pool_size: u32,
    /// How long a request waits for a free connection before it is 503.
    pub connection_timeout: Duration,
    /// `statement_timeout` of every connection.
    pub statement_timeout: Duration,
    /// `application_name` of every connection (shows in `pg_stat_activity`).
    pub application_name: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            connection_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            application_name: "taskflow".to_owned(),
        }
    }
}

/// Users, projects, tasks and the audit trail in PostgreSQL, through a bb8
/// pool of diesel-async connections.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Why the last connection attempt failed, if it did: bb8 reports only
    /// "timed out" to the waiting request.
    last_error: LastError,
}

type LastError = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// Keeps (and logs) why connecting failed; cleared by the next success.
#[derive(Debug, Clone)]
struct ConnectErrors(LastError);

impl bb8::ErrorSink<PoolError> for ConnectErrors {
    fn sink(&self, error: PoolError) {
        tracing::warn!("cannot connect to PostgreSQL: {error}");
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl PgStore {
    /// A pool for `url`. Connects lazily: a database that is down now makes
    /// requests fail with `Unavailable` until it is back, then they succeed
    /// again without a restart.
    pub fn new(url: &str, options: &PgOptions) -> Self {
        let setup_sql = format!(
            "SET statement_timeout = {}; SET application_name = '{}'",
            options.statement_timeout.as_millis(),
            options.application_name.replace('\'', "''"),
        );
        let connect_timeout = options.connection_timeout;
        let last_error = LastError::default();
        let connected = std::sync::Arc::clone(&last_error);
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.custom_setup = Box::new(move |url| {
            let setup_sql = setup_sql.clone();
            let url = url.to_owned();
            let connected = std::sync::Arc::clone(&connected);
            Box::pin(async move {
                // A host that drops packets would otherwise hold a pool slot
                // for minutes.
                let mut conn =
                    tokio::time::timeout(connect_timeout, AsyncPgConnection::establish(&url))
                        .await
                        .map_err(|_| {
                            diesel::ConnectionError::BadConnection(format!(
                                "no connection within {connect_timeout:?}"
                            ))
                        })??;
                conn.batch_execute(&setup_sql)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                *connected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                Ok(conn)
            })
        });
        let manager = Manager::new_with_config(url, config);
        let pool = bb8::Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(options.connection_timeout)
            .test_on_check_out(true)
            .error_sink(Box::new(ConnectErrors(std::sync::Arc::clone(&last_error))))
            .build_unchecked(manager);
        Self { pool, last_error }
    }

    async fn checkout(&self) -> Result<Pooled, PortError> {
        self.pool.get_owned().await.map_err(|e| {
            let cause = self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            from_pool(e, cause)
        })
    }
}

impl Store for PgStore {
    type Connection = PgHandle;
    type Transaction = PgHandle;

    async fn connection(&self) -> Result<PgHandle, PortError> {
        Ok(PgHandle {
            conn: Some(self.checkout().await?),
            in_transaction: false,
        })
    }

    async fn begin(&self) -> Result<PgHandle, PortError> {
        let mut conn = self.checkout().await?;
        AnsiTransactionManager::begin_transaction(&mut *conn)
            .await
            .map_err(from_diesel)?;
        Ok(PgHandle {
            conn: Some(conn),
            in_transaction: true,
        })
    }

    async fn snapshot(&self) -> Result<PgHandle, PortError> {
        // As `begin`, through the transaction manager, so a handle dropped
        // uncommitted rolls back alike; its reads all see one snapshot.
        let mut conn = self.checkout().await?;
        AnsiTransactionManager::begin_transaction_sql(
            &mut *conn,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .await
        .map_err(from_diesel)?;
        Ok(PgHandle {
            conn: Some(conn),
            in_transaction: true,
        })
    }

    async fn ping(&self) -> Result<(), PortError> {
        let mut conn = self.checkout().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(from_diesel)
    }
}

/// A pooled connection, in a transaction or not.
///
/// A transaction still open when its handle is dropped is rolled back, and
/// the connection goes back to the pool. (Should the rollback fail, the pool
/// discards the connection, and PostgreSQL rolls back when it closes.)
pub struct PgHandle {
    /// Always `Some` until the handle is dropped.
    conn: Option<Pooled>,
    in_transaction: bool,
}

impl PgHandle {
    pub(crate) fn conn(&mut self) -> &mut AsyncPgConnection {
        self.conn
            .as_deref_mut()
            .expect("a live handle holds its connection")
    }
}

impl Drop for PgHandle {
    fn drop(&mut self) {
        if !self.in_transaction {
            return;
        }
        let (Some(mut conn), Ok(runtime)) =
            (self.conn.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = AnsiTransactionManager::rollback_transaction(&mut *conn).await {
                tracing::warn!("rolling back an abandoned transaction failed: {e}");
            }
        });
    }
}

impl std::fmt::Debug for PgHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgHandle")
            .field("in_transaction", &self.in_transaction)
            .finish_non_exhaustive()
    }
}

impl Transaction for PgHandle {
    async fn commit(mut self) -> Result<(), PortError> {
        if self.in_transaction {
            AnsiTransactionManager::commit_transaction(self.conn())
                .await
                .map_err(from_diesel)?;
            self.in_transaction = false;
        }
        Ok(())
    }
}

/// One row, if there is one, as a domain value.
pub(crate) fn decode<R, T: TryFrom<R, Error = PortError>>(
    row: QueryResult<R>,
) -> Result<Option<T>, PortError> {
    row.optional()
        .map_err(from_diesel)?
        .map(T::try_from)
        .transpose()
}

#[cfg(test)]
mod tests {
    //! Transactions, the database's own rules, the per-connection settings.

    use diesel::sql_types::Text;
    use domain::ports::InsertUserError;
    use domain::{Email, Projects, User, Users};

    use super::*;
    use crate::testing::TestDatabase;

    #[tokio::test]
    async fn abandoned_transactions_give_their_connection_back_rolled_back() {
        let db = TestDatabase::create().await;
        let options = PgOptions {
            pool_size: 1,
            ..PgOptions::default()
        };
        let store = PgStore::new(&db.url, &options);
        async fn backend_pid(handle: &mut PgHandle) -> QueryResult<i32> {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
                "pg_backend_pid()",
            ))
            .get_result::<i32>(handle.conn())
            .await
        }
        let mut first = store.begin().await.expect("begin");
        let pid = backend_pid(&mut first).await.expect("pid");
        let user = domain::contract::new_user();
        first
            .insert_user(&user)
            .await
            .expect("insert in the abandoned transaction");
        drop(first);
        for _ in 0..5 {
            let mut tx = store.begin().await.expect("the one connection comes back");
            assert_eq!(
                backend_pid(&mut tx).await.expect("pid"),
                pid,
                "reused, not reopened"
            );
            let in_tx: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "now() = statement_timestamp()",
            ))
            .get_result(tx.conn())
            .await
            .expect("query");
            assert!(!in_tx, "a fresh transaction, not the abandoned one");
        }
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(
            conn.user_by_id(user.id).await.expect("read"),
            None,
            "rolled back"
        );
    }

    /// A snapshot reads what was committed when it began, refuses to
    /// write, and, dropped uncommitted, gives its connection back clean:
    /// the next transaction on it is an ordinary one.
    #[tokio::test]
    async fn snapshots_read_one_instant_only_and_leave_no_trace() {
        let db = TestDatabase::create().await;
        // One connection, which the snapshot and the transactions after it
        // share; another store writes meanwhile.
        let options = PgOptions {
            pool_size: 1,
            ..PgOptions::default()
        };
        let store = PgStore::new(&db.url, &options);
        let writer = PgStore::new(&db.url, &PgOptions::default());
        async fn setting(handle: &mut PgHandle, name: &str) -> String {
            diesel::select(diesel::dsl::sql::<Text>(&format!(
                "current_setting('{name}')"
            )))
            .get_result(handle.conn())
            .await
            .expect("a setting")
        }
        let first = domain::contract::new_user();
        let mut conn = writer.connection().await.expect("connection");
        conn.insert_user(&first).await.expect("insert");
        let mut snapshot = store.snapshot().await.expect("snapshot");
        assert_eq!(
            setting(&mut snapshot, "transaction_isolation").await,
            "repeatable read"
        );
        assert_eq!(setting(&mut snapshot, "transaction_read_only").await, "on");
        assert!(snapshot.user_by_id(first.id).await.expect("read").is_some());
        let second = domain::contract::new_user();
        conn.insert_user(&second)
            .await
            .expect("a write committed since");
        assert_eq!(
            snapshot.user_by_id(second.id).await.expect("read"),
            None,
            "not in the snapshot"
        );
        drop(conn);
        let refused = snapshot.insert_user(&domain::contract::new_user()).await;
        assert!(refused.is_err(), "read only");
        drop(snapshot);
        for _ in 0..4 {
            let mut tx = store.begin().await.expect("begin");
            assert_eq!(
                setting(&mut tx, "transaction_isolation").await,
                "read committed"
            );
            assert_eq!(setting(&mut tx, "transaction_read_only").await, "off");
            assert!(tx.user_by_id(second.id).await.expect("read").is_some());
        }
        let snapshot = store.snapshot().await.expect("snapshot");
        snapshot
            .commit()
            .await
            .expect("a snapshot commits, writing nothing");
    }

    #[tokio::test]
    async fn the_database_enforces_the_domains_rules() {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        conn.batch_execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
             VALUES ('00000000-0000-7000-8000-000000000001', 'Ada@Example.COM', 'Ada', 'user', 'x', now())",
        )
        .await
        .expect("a row written by hand");
        let store = PgStore::new(&db.url, &PgOptions::default());
        let mut handle = store.connection().await.expect("connection");
        let twin = User {
            email: Email::parse("ada@example.com").expect("valid"),
            ..domain::contract::new_user()
        };
        assert!(
            matches!(
                handle.insert_user(&twin).await,
                Err(InsertUserError::EmailTaken)
            ),
            "e-mails are unique whatever their case"
        );
        assert!(
            handle
                .user_by_email(&twin.email)
                .await
                .expect("read")
                .is_some()
        );
        // Ada's Inbox; Bob is in no project.
        conn.batch_execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
             VALUES ('00000000-0000-7000-8000-000000000002', 'bob@example.com', 'Bob', 'user', 'x', now());
             INSERT INTO projects (id, name, name_key, archived, personal, owner_id, created_at, updated_at, version)
             VALUES ('00000000-0000-7000-9000-000000000001', 'Inbox', 'inbox', false, true,
                     '00000000-0000-7000-8000-000000000001', now(), now(), 1);
             INSERT INTO project_members (project_id, user_id, role, joined_at)
             VALUES ('00000000-0000-7000-9000-000000000001', '00000000-0000-7000-8000-000000000001', 'owner', now())",
        )
        .await
        .expect("a project written by hand");
        let task =
            "INSERT INTO tasks (id, project_id, created_by, assignee_id, title, status, priority,
                                       created_at, updated_at, completed_at, version)
                    VALUES (gen_random_uuid(), ";
        let inbox = "'00000000-0000-7000-9000-000000000001'";
        let ada = "'00000000-0000-7000-8000-000000000001'";
        let bob = "'00000000-0000-7000-8000-000000000002'";
        let valid = "'T', 'todo', 1, now(), now(), NULL, 1)";
        for (case, values) in [
            (
                "unknown status",
                format!("{inbox}, {ada}, NULL, 'T', 'blocked', 1, now(), now(), NULL, 1)"),
            ),
            (
                "unknown priority",
                format!("{inbox}, {ada}, NULL, 'T', 'todo', 7, now(), now(), NULL, 1)"),
            ),
            (
                "blank title",
                format!("{inbox}, {ada}, NULL, '', 'todo', 1, now(), now(), NULL, 1)"),
            ),
            (
                "done without completedAt",
                format!("{inbox}, {ada}, NULL, 'T', 'done', 1, now(), now(), NULL, 1)"),
            ),
            (
                "completedAt while not done",
                format!("{inbox}, {ada}, NULL, 'T', 'todo', 1, now(), now(), now(), 1)"),
            ),
            (
                "version 0",
                format!("{inbox}, {ada}, NULL, 'T', 'todo', 1, now(), now(), NULL, 0)"),
            ),
            (
                "missing title",
                format!("{inbox}, {ada}, NULL, NULL, 'todo', 1, now(), now(), NULL, 1)"),
            ),
            ("no project", format!("NULL, {ada}, NULL, {valid}")),
            (
                "an unknown project",
                format!("gen_random_uuid(), {ada}, NULL, {valid}"),
            ),
            ("no creator", format!("{inbox}, NULL, NULL, {valid}")),
            (
                "an unknown creator",
                format!("{inbox}, gen_random_uuid(), NULL, {valid}"),
            ),
            (
                "an assignee who is no member",
                format!("{inbox}, {ada}, {bob}, {valid}"),
            ),
        ] {
            let refused = conn.batch_execute(&format!("{task}{values}")).await;
            assert!(refused.is_err(), "{case} is refused");
        }
        conn.batch_execute(&format!("{task}{inbox}, {bob}, {ada}, {valid}"))
            .await
            .expect("a member assigned; the creator need not be a member");
        let leaving = conn
            .batch_execute(&format!(
                "DELETE FROM project_members WHERE project_id = {inbox} AND user_id = {ada}"
            ))
            .await;
        assert!(leaving.is_err(), "a member with assigned tasks stays");
    }

    /// Deleting a project deletes its tasks (assigned ones included) and its
    /// memberships in one statement, despite the assignee's foreign key to
    /// the memberships; its audit entries stay.
    #[tokio::test]
    async fn a_deleted_projects_tasks_and_members_go_its_audit_trail_stays() {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        conn.batch_execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
             VALUES ('00000000-0000-7000-8000-000000000001', 'ada@example.com', 'Ada', 'user', 'x', now()),
                    ('00000000-0000-7000-8000-000000000002', 'bob@example.com', 'Bob', 'user', 'x', now());
             INSERT INTO projects (id, name, name_key, archived, personal, owner_id, created_at, updated_at, version)
             VALUES ('00000000-0000-7000-9000-000000000001', 'Shared', 'shared', false, false,
                     '00000000-0000-7000-8000-000000000001', now(), now(), 1),
                    ('00000000-0000-7000-9000-000000000002', 'Kept', 'kept', false, false,
                     '00000000-0000-7000-8000-000000000001', now(), now(), 1);
             INSERT INTO project_members (project_id, user_id, role, joined_at)
             SELECT p, u, CASE WHEN u = '00000000-0000-7000-8000-000000000001' THEN 'owner' ELSE 'member' END, now()
             FROM unnest(ARRAY['00000000-0000-7000-9000-000000000001', '00000000-0000-7000-9000-000000000002']::uuid[]) p,
                  unnest(ARRAY['00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002']::uuid[]) u;
             INSERT INTO tasks (id, project_id, created_by, assignee_id, title, status, priority,
                                created_at, updated_at, version)
             SELECT gen_random_uuid(), p, '00000000-0000-7000-8000-000000000001', a, 'T', 'todo', 1, now(), now(), 1
             FROM unnest(ARRAY['00000000-0000-7000-9000-000000000001', '00000000-0000-7000-9000-000000000002']::uuid[]) p,
                  unnest(ARRAY['00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002', NULL]::uuid[]) a;
             INSERT INTO audit_entries (id, at, actor_id, action, entity_type, entity_id, project_id, changes)
             VALUES (gen_random_uuid(), now(), '00000000-0000-7000-8000-000000000001', 'project.created',
                     'project', '00000000-0000-7000-9000-000000000001', '00000000-0000-7000-9000-000000000001', '{}')",
        )
        .await
        .expect("two projects with members and assigned tasks");
        let store = PgStore::new(&db.url, &PgOptions::default());
        let mut handle = store.connection().await.expect("connection");
        let shared = domain::ProjectId(
            uuid::Uuid::parse_str("00000000-0000-7000-9000-000000000001").expect("uuid"),
        );
        assert!(handle.delete_project(shared).await.expect("delete"));
        #[derive(diesel::QueryableByName)]
        struct Left {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            tasks: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            members: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            entries: i64,
        }
        let left: Left = diesel::sql_query(
            "SELECT (SELECT count(*) FROM tasks WHERE project_id = $1) AS tasks,
                    (SELECT count(*) FROM project_members WHERE project_id = $1) AS members,
                    (SELECT count(*) FROM audit_entries WHERE project_id = $1) AS entries",
        )
        .bind::<diesel::sql_types::Uuid, _>(shared.0)
        .get_result(&mut conn)
        .await
        .expect("count");
        assert_eq!((left.tasks, left.members, left.entries), (0, 0, 1));
        let kept: Left = diesel::sql_query(
            "SELECT (SELECT count(*) FROM tasks) AS tasks,
                    (SELECT count(*) FROM project_members) AS members,
                    (SELECT count(*) FROM audit_entries) AS entries",
        )
        .get_result(&mut conn)
        .await
        .expect("count");
        assert_eq!(
            (kept.tasks, kept.members, kept.entries),
            (3, 2, 1),
            "the other project's"
        );
    }

    #[tokio::test]
    async fn connections_carry_their_settings() {
        let db = TestDatabase::create().await;
        let options = PgOptions {
            statement_timeout: std::time::Duration::from_millis(1500),
            application_name: "taskflow-settings-test".into(),
            ..PgOptions::default()
        };
        let store = PgStore::new(&db.url, &options);
        let mut handle = store.connection().await.expect("connection");
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = Text)]
            value: String,
        }
        let show = |name: &str| format!("SELECT current_setting('{name}') AS value");
        let timeout: Setting = diesel::sql_query(show("statement_timeout"))
            .get_result(handle.conn())
            .await
            .expect("statement_timeout");
        assert_eq!(timeout.value, "1500ms");
        let name: Setting = diesel::sql_query(show("application_name"))
            .get_result(handle.conn())
            .await
            .expect("application_name");
        assert_eq!(name.value, "taskflow-settings-test");
        let slow = diesel::sql_query("SELECT pg_sleep(3)")
            .execute(handle.conn())
            .await;
        let error = from_diesel(slow.expect_err("the statement timeout cancels it"));
        assert!(matches!(error, PortError::Unavailable { .. }), "{error:?}");
    }
}
