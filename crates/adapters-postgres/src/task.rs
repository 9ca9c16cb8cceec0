//! The tasks aggregate on PostgreSQL: one index range scan per list page
//! whatever the sort (see the migrations and the EXPLAIN test below).

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, SmallInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use domain::{Cursor, CursorKey, PortError, SortKey, Task, TaskId, TaskQuery, Tasks, UserId};

use crate::error::from_diesel;
use crate::rows::TaskRow;
use crate::schema::tasks;
use crate::store::{PgHandle, decode};

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
    //! sequential scan to be cheap.

    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
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
}
