use std::time::Duration;

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, SmallInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use domain::ports::InsertUserError;
use domain::{
    Cursor, CursorKey, Email, PortError, Repository, SortKey, Store, Task, TaskId, TaskQuery,
    Transaction, User, UserId,
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
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.custom_setup = Box::new(move |url| {
            let setup_sql = setup_sql.clone();
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(&setup_sql)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
        let manager = Manager::new_with_config(url, config);
        let pool = bb8::Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(options.connection_timeout)
            .test_on_check_out(true)
            // A failed connect answers the request at once (503) with its
            // real cause, instead of retrying until the checkout times out.
            .retry_connection(false)
            .build_unchecked(manager);
        Self { pool }
    }

    async fn checkout(&self) -> Result<Pooled, PortError> {
        self.pool.get_owned().await.map_err(from_pool)
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

impl Repository for PgHandle {
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
        users::table
            // The unique index is on lower(email): look up through it.
            .filter(lower(users::email).eq(email.as_str()))
            .select(UserRow::as_select())
            .first(self.conn())
            .await
            .optional()
            .map_err(from_diesel)?
            .map(User::try_from)
            .transpose()
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        users::table
            .find(id.0)
            .select(UserRow::as_select())
            .first(self.conn())
            .await
            .optional()
            .map_err(from_diesel)?
            .map(User::try_from)
            .transpose()
    }

    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        diesel::insert_into(tasks::table)
            .values(TaskRow::from(task))
            .execute(self.conn())
            .await
            .map(drop)
            .map_err(from_diesel)
    }

    async fn task(&mut self, owner: UserId, id: TaskId) -> Result<Option<Task>, PortError> {
        let query = tasks::table
            .filter(tasks::id.eq(id.0))
            .filter(tasks::owner_id.eq(owner.0))
            .select(TaskRow::as_select());
        let row = if self.in_transaction {
            // Locked until the transaction ends: concurrent read-modify-write
            // cycles queue instead of losing updates.
            query.for_update().first(self.conn()).await
        } else {
            query.first(self.conn()).await
        };
        row.optional()
            .map_err(from_diesel)?
            .map(Task::try_from)
            .transpose()
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
        SortKey::DueDate if desc => {
            q.order((tasks::due_date.desc().nulls_first(), tasks::id.desc()))
        }
        SortKey::DueDate => q.order((tasks::due_date.asc().nulls_last(), tasks::id.asc())),
        SortKey::Priority if desc => q.order((tasks::priority.desc(), tasks::id.desc())),
        SortKey::Priority => q.order((tasks::priority.asc(), tasks::id.asc())),
    };
    q.limit(i64::from(query.limit) + 1)
}
/// Rows after `cursor` in its sort order, as row-value comparisons an index
/// range scan can serve. Missing due dates sort last ascending, first
/// descending.
fn after_cursor(cursor: &Cursor) -> Box<dyn BoxableExpression<tasks::table, Pg, SqlType = Bool>> {
    let id = cursor.id.0;
    let (cmp, desc) = if cursor.sort.descending {
        ("<", true)
    } else {
        (">", false)
    };
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
        CursorKey::OptionalTime(Some(d)) if !desc => Box::new(
            sql::<Bool>("((due_date, id) > (")
                .bind::<Timestamptz, _>(d)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(") OR due_date IS NULL)"),
        ),
        CursorKey::OptionalTime(Some(d)) => Box::new(
            sql::<Bool>("(due_date, id) < (")
                .bind::<Timestamptz, _>(d)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        CursorKey::OptionalTime(None) if !desc => Box::new(
            sql::<Bool>("(due_date IS NULL AND id > ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        CursorKey::OptionalTime(None) => Box::new(
            sql::<Bool>("((due_date IS NULL AND id < ")
                .bind::<SqlUuid, _>(id)
                .sql(") OR due_date IS NOT NULL)"),
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

    #[tokio::test]
    async fn every_list_query_is_an_index_scan_on_a_large_table() {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        // 200 users with 100 tasks each, varied in every sort key.
        conn.batch_execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
               SELECT ('00000000-0000-7000-8000-' || lpad(u::text, 12, '0'))::uuid,
                      'user' || u || '@example.com', 'User', 'user', 'x', now()
               FROM generate_series(1, 200) u;
             INSERT INTO tasks (id, owner_id, title, status, priority, due_date,
                                created_at, updated_at, completed_at, version)
               SELECT gen_random_uuid(),
                      ('00000000-0000-7000-8000-' || lpad((1 + t % 200)::text, 12, '0'))::uuid,
                      'Task ' || t, 'todo', t % 4,
                      CASE WHEN t % 5 = 0 THEN NULL ELSE now() + (t % 97) * interval '1 hour' END,
                      now() - t * interval '1 minute', now() - (t % 13) * interval '1 minute',
                      NULL, 1
               FROM generate_series(1, 20000) t;
             ANALYZE tasks;",
        )
        .await
        .expect("seed");
        let owner =
            UserId(uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000007").expect("uuid"));
        let now = OffsetDateTime::now_utc();
        let mut shapes = Vec::new();
        for key in SortKey::ALL {
            for descending in [false, true] {
                let sort = TaskSort { key, descending };
                let base = TaskQuery {
                    sort,
                    ..TaskQuery::default()
                };
                let cursor = |key| Cursor {
                    sort,
                    key,
                    id: TaskId::generate(),
                };
                let keys = match key {
                    SortKey::CreatedAt | SortKey::UpdatedAt => vec![CursorKey::Time(now)],
                    SortKey::DueDate => vec![
                        CursorKey::OptionalTime(Some(now)),
                        CursorKey::OptionalTime(None),
                    ],
                    SortKey::Priority => vec![CursorKey::Priority(Priority::High)],
                };
                shapes.push(base.clone());
                shapes.push(TaskQuery {
                    status: Some(Status::Todo),
                    priority: Some(Priority::Low),
                    due_before: Some(now),
                    due_after: Some(now - time::Duration::days(1)),
                    ..base.clone()
                });
                for k in keys {
                    shapes.push(TaskQuery {
                        after: Some(cursor(k)),
                        ..base.clone()
                    });
                }
            }
        }
        for shape in shapes {
            let plan: Vec<String> = Explain(list_query(owner, &shape))
                .load(&mut conn)
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(!plan.contains("Seq Scan"), "{:?}:\n{plan}", shape.sort);
            assert!(plan.contains("Index"), "{:?}:\n{plan}", shape.sort);
        }
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
