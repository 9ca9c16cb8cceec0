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
            conn: self.checkout().await?,
            in_transaction: false,
        })
    }

    async fn begin(&self) -> Result<PgHandle, PortError> {
        let mut conn = self.checkout().await?;
        AnsiTransactionManager::begin_transaction(&mut *conn)
            .await
            .map_err(from_diesel)?;
        Ok(PgHandle {
            conn,
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
/// A transaction still open when its handle is dropped is rolled back: the
/// pool discards a connection with an open transaction, and PostgreSQL
/// rolls back when the connection closes.
pub struct PgHandle {
    conn: Pooled,
    in_transaction: bool,
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
            AnsiTransactionManager::commit_transaction(&mut *self.conn)
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
            .execute(&mut *self.conn)
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
            .first(&mut *self.conn)
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
            .first(&mut *self.conn)
            .await
            .optional()
            .map_err(from_diesel)?
            .map(User::try_from)
            .transpose()
    }

    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        diesel::insert_into(tasks::table)
            .values(TaskRow::from(task))
            .execute(&mut *self.conn)
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
            query.for_update().first(&mut *self.conn).await
        } else {
            query.first(&mut *self.conn).await
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
            .execute(&mut *self.conn)
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn delete_task(&mut self, owner: UserId, id: TaskId) -> Result<bool, PortError> {
        let deleted = diesel::delete(tasks::table)
            .filter(tasks::id.eq(id.0))
            .filter(tasks::owner_id.eq(owner.0))
            .execute(&mut *self.conn)
            .await
            .map_err(from_diesel)?;
        Ok(deleted > 0)
    }

    async fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
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
        let rows: Vec<TaskRow> = q
            .limit(i64::from(query.limit) + 1)
            .load(&mut *self.conn)
            .await
            .map_err(from_diesel)?;
        rows.into_iter().map(Task::try_from).collect()
    }
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
