use std::time::Duration;

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, SmallInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use domain::ports::InsertUserError;
use domain::{
    Cursor, CursorKey, Email, PortError, SortKey, Store, Task, TaskId, TaskQuery, Tasks,
    Transaction, User, UserId, Users,
};

use crate::error::{self, from_diesel, from_pool};
use crate::rows::{TaskRow, UserRow};
use crate::schema::{tasks, users};

diesel::define_sql_function! {
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

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

/// Users and tasks in PostgreSQL, through a bb8 pool of diesel-async
/// connections.
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
    fn conn(&mut self) -> &mut AsyncPgConnection {
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

impl Users for PgHandle {
    async fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        diesel::insert_into(users::table)
            .values(UserRow::from(user))
            .execute(self.conn())
            .await
            .map(drop)
            .map_err(|e| {
                if error::is_unique_violation(&e, "users_email_key") {
                    InsertUserError::EmailTaken
                } else {
                    InsertUserError::Port(from_diesel(e))
                }
            })
    }

    async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>, PortError> {
        let row = users::table
            // The unique index is on lower(email): look up through it.
            .filter(lower(users::email).eq(email.as_str()))
            .select(UserRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        let row = users::table
            .find(id.0)
            .select(UserRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }
}

impl Tasks for PgHandle {
    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        diesel::insert_into(tasks::table)
            .values(TaskRow::from(task))
            .execute(self.conn())
            .await
            .map(drop)
            .map_err(from_diesel)
    }

    async fn task(&mut self, owner: UserId, id: TaskId) -> Result<Option<Task>, PortError> {
        let row = tasks::table
            .filter(tasks::id.eq(id.0))
            .filter(tasks::owner_id.eq(owner.0))
            .select(TaskRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn task_for_update(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> Result<Option<Task>, PortError> {
        // Locked until the transaction ends: concurrent read-modify-write
        // cycles queue instead of losing updates.
        let row = tasks::table
            .filter(tasks::id.eq(id.0))
            .filter(tasks::owner_id.eq(owner.0))
            .select(TaskRow::as_select())
            .for_update()
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn update_task(&mut self, task: &Task) -> Result<bool, PortError> {
        let updated = diesel::update(tasks::table)
            .filter(tasks::id.eq(task.id.0))
            .filter(tasks::owner_id.eq(task.owner_id.0))
            .set(TaskRow::from(task))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn delete_task(&mut self, owner: UserId, id: TaskId) -> Result<bool, PortError> {
        let deleted = diesel::delete(tasks::table)
            .filter(tasks::id.eq(id.0))
            .filter(tasks::owner_id.eq(owner.0))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(deleted > 0)
    }

    async fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
        let rows: Vec<TaskRow> = list_query(owner, query)
            .load(self.conn())
            .await
            .map_err(from_diesel)?;
        rows.into_iter().map(Task::try_from).collect()
    }
}

type ListQuery =
    tasks::BoxedQuery<'static, Pg, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<TaskRow, Pg>>>;

/// `limit + 1` tasks of `owner` matching `query`, in its order, after its
/// cursor: one index range scan whatever the sort (see the migrations).
fn list_query(owner: UserId, query: &TaskQuery) -> ListQuery {
    let mut q = tasks::table
        .filter(tasks::owner_id.eq(owner.0))
        .select(TaskRow::as_select())
        .into_boxed::<Pg>();
    if let Some(status) = query.status {
        q = q.filter(tasks::status.eq(status.as_str()));
    }
    if let Some(priority) = query.priority {
        q = q.filter(tasks::priority.eq(priority.rank()));
    }
    if let Some(before) = query.due_before {
        q = q.filter(tasks::due_date.lt(before));
    }
    if let Some(after) = query.due_after {
        q = q.filter(tasks::due_date.gt(after));
    }
    if let Some(cursor) = &query.after {
        q = q.filter(after_cursor(cursor));
    }
    let desc = query.sort.descending;
    q = match query.sort.key {
        SortKey::CreatedAt if desc => q.order((tasks::created_at.desc(), tasks::id.desc())),
        SortKey::CreatedAt => q.order((tasks::created_at.asc(), tasks::id.asc())),
        SortKey::UpdatedAt if desc => q.order((tasks::updated_at.desc(), tasks::id.desc())),
        SortKey::UpdatedAt => q.order((tasks::updated_at.asc(), tasks::id.asc())),
        SortKey::DueDate if desc => q.order((due_key().desc(), tasks::id.desc())),
        SortKey::DueDate => q.order((due_key().asc(), tasks::id.asc())),
        SortKey::Priority if desc => q.order((tasks::priority.desc(), tasks::id.desc())),
        SortKey::Priority => q.order((tasks::priority.asc(), tasks::id.asc())),
    };
    q.limit(i64::from(query.limit) + 1)
}
/// One row, if there is one, as a domain value.
fn decode<R, T: TryFrom<R, Error = PortError>>(
    row: QueryResult<R>,
) -> Result<Option<T>, PortError> {
    row.optional()
        .map_err(from_diesel)?
        .map(T::try_from)
        .transpose()
}

/// The due-date sort key: tasks without a due date sort after every date,
/// as one totally ordered value (indexed by `tasks_owner_due_date`).
const DUE_KEY: &str = "COALESCE(due_date, 'infinity'::timestamptz)";

fn due_key() -> diesel::expression::SqlLiteral<Timestamptz> {
    sql::<Timestamptz>(DUE_KEY)
}

/// Rows after `cursor` in its sort order, as row-value comparisons an index
/// range scan can serve. Missing due dates sort last ascending, first
/// descending.
fn after_cursor(cursor: &Cursor) -> Box<dyn BoxableExpression<tasks::table, Pg, SqlType = Bool>> {
    let id = cursor.id.0;
    let cmp = if cursor.sort.descending { "<" } else { ">" };
    let predicate: Box<dyn BoxableExpression<tasks::table, Pg, SqlType = Bool>> = match cursor.key {
        CursorKey::Time(t) => {
            let column = if cursor.sort.key == SortKey::UpdatedAt {
                "updated_at"
            } else {
                "created_at"
            };
            Box::new(
                sql::<Bool>(&format!("({column}, id) {cmp} ("))
                    .bind::<Timestamptz, _>(t)
                    .sql(", ")
                    .bind::<SqlUuid, _>(id)
                    .sql(")"),
            )
        }
        CursorKey::Priority(p) => Box::new(
            sql::<Bool>(&format!("(priority, id) {cmp} ("))
                .bind::<SmallInt, _>(p.rank())
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        CursorKey::OptionalTime(Some(d)) => Box::new(
            sql::<Bool>(&format!("({DUE_KEY}, id) {cmp} ("))
                .bind::<Timestamptz, _>(d)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        CursorKey::OptionalTime(None) => Box::new(
            sql::<Bool>(&format!("({DUE_KEY}, id) {cmp} ('infinity'::timestamptz, "))
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
    };
    predicate
}

#[cfg(test)]
mod tests {
    //! The query plans of every list shape on a table too large for a
    //! sequential scan to be cheap, and the per-connection settings.

    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::Text;
    use domain::{Priority, Status, TaskSort};
    use time::OffsetDateTime;

    use super::*;
    use crate::testing::TestDatabase;

    /// `EXPLAIN <query>`, with the query's own binds.
    struct Explain<Q>(Q);

    impl<Q> QueryId for Explain<Q> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl<Q> Query for Explain<Q> {
        type SqlType = Text;
    }

    impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("EXPLAIN ");
            self.0.walk_ast(out.reborrow())
        }
    }

    /// Each sort order's index, by migration name.
    fn index_of(key: SortKey) -> &'static str {
        match key {
            SortKey::CreatedAt => "tasks_owner_created_at",
            SortKey::UpdatedAt => "tasks_owner_updated_at",
            SortKey::DueDate => "tasks_owner_due_date",
            SortKey::Priority => "tasks_owner_priority",
        }
    }

    #[tokio::test]
    async fn every_list_query_is_an_index_scan_on_a_large_table() {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        // 30 000 tasks: 20 000 of one user (the one queried), the rest spread
        // over 100 others; varied in every sort key, a fifth without a due date.
        conn.batch_execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
               SELECT ('00000000-0000-7000-8000-' || lpad(u::text, 12, '0'))::uuid,
                      'user' || u || '@example.com', 'User', 'user', 'x', now()
               FROM generate_series(0, 100) u;
             INSERT INTO tasks (id, owner_id, title, status, priority, due_date,
                                created_at, updated_at, completed_at, version)
               SELECT gen_random_uuid(),
                      ('00000000-0000-7000-8000-' ||
                        lpad((CASE WHEN t <= 20000 THEN 0 ELSE t % 100 + 1 END)::text, 12, '0'))::uuid,
                      'Task ' || t, 'todo', t % 4,
                      CASE WHEN t % 5 = 0 THEN NULL ELSE now() + (t % 997) * interval '1 hour' END,
                      now() - t * interval '1 minute', now() - (t % 13) * interval '1 minute',
                      NULL, 1
               FROM generate_series(1, 30000) t;
             ANALYZE tasks;",
        )
        .await
        .expect("seed");
        let owner =
            UserId(uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000000").expect("uuid"));
        let now = OffsetDateTime::now_utc();
        for key in SortKey::ALL {
            for descending in [false, true] {
                let sort = TaskSort { key, descending };
                let first_page = TaskQuery {
                    sort,
                    ..TaskQuery::default()
                };
                let keys = match key {
                    SortKey::CreatedAt | SortKey::UpdatedAt => vec![CursorKey::Time(now)],
                    SortKey::DueDate => vec![
                        CursorKey::OptionalTime(Some(now)),
                        CursorKey::OptionalTime(None),
                    ],
                    SortKey::Priority => vec![CursorKey::Priority(Priority::High)],
                };
                let mut pages = vec![first_page.clone()];
                pages.extend(keys.into_iter().map(|key| TaskQuery {
                    after: Some(Cursor {
                        sort,
                        key,
                        id: TaskId::generate(),
                    }),
                    ..first_page.clone()
                }));
                for page in &pages {
                    let plan = explain(&mut conn, owner, page).await;
                    // The sort's own index delivers the rows in order: no
                    // table scan, no sort, and the cursor bounds the range.
                    assert!(
                        plan.contains(index_of(key)),
                        "{sort:?} uses its index:\n{plan}"
                    );
                    assert!(!plan.contains("Seq Scan"), "{sort:?}:\n{plan}");
                    assert!(!plan.contains("Sort"), "{sort:?} needs no sort:\n{plan}");
                    if page.after.is_some() {
                        let bound = plan
                            .lines()
                            .find(|l| l.contains("Index Cond"))
                            .is_some_and(|l| l.contains("ROW("));
                        assert!(bound, "{sort:?}: the cursor is an index bound:\n{plan}");
                    }
                }
                let filtered = TaskQuery {
                    status: Some(Status::Todo),
                    priority: Some(Priority::Low),
                    due_before: Some(now + time::Duration::days(3)),
                    due_after: Some(now),
                    ..first_page
                };
                let plan = explain(&mut conn, owner, &filtered).await;
                assert!(!plan.contains("Seq Scan"), "filtered {sort:?}:\n{plan}");
            }
        }
    }

    async fn explain(conn: &mut AsyncPgConnection, owner: UserId, query: &TaskQuery) -> String {
        let plan: Vec<String> = Explain(list_query(owner, query))
            .load(conn)
            .await
            .expect("explain");
        plan.join("\n")
    }

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
        let task = "INSERT INTO tasks (id, owner_id, title, status, priority, created_at, updated_at, completed_at, version)
                    VALUES (gen_random_uuid(), '00000000-0000-7000-8000-000000000001'";
        for (case, values) in [
            (
                "unknown status",
                "'T', 'blocked', 1, now(), now(), NULL, 1)",
            ),
            ("unknown priority", "'T', 'todo', 7, now(), now(), NULL, 1)"),
            ("blank title", "'', 'todo', 1, now(), now(), NULL, 1)"),
            (
                "done without completedAt",
                "'T', 'done', 1, now(), now(), NULL, 1)",
            ),
            (
                "completedAt while not done",
                "'T', 'todo', 1, now(), now(), now(), 1)",
            ),
            ("version 0", "'T', 'todo', 1, now(), now(), NULL, 0)"),
            ("missing title", "NULL, 'todo', 1, now(), now(), NULL, 1)"),
        ] {
            let refused = conn.batch_execute(&format!("{task}, {values}")).await;
            assert!(refused.is_err(), "{case} is refused");
        }
        let orphan = conn
            .batch_execute(
                "INSERT INTO tasks (id, owner_id, title, status, priority, created_at, updated_at, version)
                 VALUES (gen_random_uuid(), gen_random_uuid(), 'T', 'todo', 1, now(), now(), 1)",
            )
            .await;
        assert!(orphan.is_err(), "a task needs an existing owner");
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
