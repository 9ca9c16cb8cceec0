//! The tasks aggregate on PostgreSQL. A list page is one index range scan
//! for one project, and one bounded range per project across a member's
//! projects, whatever the sort (see the migrations, [`TaskList`] and the
//! EXPLAIN test below).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, SmallInt, Text, Timestamptz, Untyped, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use domain::{
    CursorKey, PortError, ProjectId, SortKey, Task, TaskId, TaskQuery, TaskSort, Tasks, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

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

    async fn task(&mut self, id: TaskId) -> Result<Option<Task>, PortError> {
        let row = tasks::table
            .find(id.0)
            .select(TaskRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn task_for_update(&mut self, id: TaskId) -> Result<Option<Task>, PortError> {
        // Locked until the transaction ends: concurrent read-modify-write
        // cycles queue instead of losing updates.
        let row = tasks::table
            .find(id.0)
            .select(TaskRow::as_select())
            .for_update()
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn update_task(&mut self, task: &Task) -> Result<bool, PortError> {
        // Every column but the id, the project included (a move). The
        // database refuses an assignee who is not a member of the task's
        // (new) project: tasks_assignee_is_member.
        let updated = diesel::update(tasks::table.find(task.id.0))
            .set(TaskRow::from(task))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn delete_task(&mut self, id: TaskId) -> Result<bool, PortError> {
        let deleted = diesel::delete(tasks::table.find(id.0))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(deleted > 0)
    }

    async fn assigned_tasks_for_update(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Vec<Task>, PortError> {
        // One range of tasks_project_assignee; locked in id order, so two
        // transactions locking overlapping sets queue instead of deadlocking.
        let rows: Vec<TaskRow> = tasks::table
            .filter(tasks::project_id.eq(project.0))
            .filter(tasks::assignee_id.eq(user.0))
            .select(TaskRow::as_select())
            .order(tasks::id)
            .for_update()
            .load(self.conn())
            .await
            .map_err(from_diesel)?;
        rows.into_iter().map(Task::try_from).collect()
    }

    async fn list_tasks(
        &mut self,
        member: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
        let rows: Vec<TaskRow> = TaskList::new(member, query)
            .load(self.conn())
            .await
            .map_err(from_diesel)?;
        rows.into_iter().map(Task::try_from).collect()
    }
}

/// A page of tasks as SQL: `limit + 1` tasks matching a [`TaskQuery`] in
/// the projects a user is a member of, in the query's order, after its
/// cursor. Written by hand (diesel's DSL has no LATERAL); every value is a
/// bind parameter, the SQL text only ever comes from the constants and
/// column names below.
///
/// In one project (`project_id` set):
///
/// ```sql
/// SELECT tasks.* FROM tasks
/// WHERE tasks.project_id = $p
///   AND EXISTS (SELECT 1 FROM project_members m
///               WHERE m.project_id = $p AND m.user_id = $member)
///   [AND filters] [AND (key, tasks.id) > ($key, $id)]
/// ORDER BY key, tasks.id LIMIT $n
/// ```
///
/// planned as (ascending shown; descending scans backward):
///
/// ```text
/// Limit
///   InitPlan 1 (returns $0)
///     ->  Index Only Scan using project_members_pkey on project_members m
///   ->  Result  (One-Time Filter: $0)
///         ->  Index Scan using tasks_project_<key> on tasks
///               Index Cond: (project_id = $p) [AND (ROW(key, id) > ROW(…))]
/// ```
///
/// The membership is checked once; a non-member reads nothing.
///
/// Across the user's projects:
///
/// ```sql
/// SELECT t.* FROM project_members m
/// CROSS JOIN LATERAL (
///     SELECT tasks.* FROM tasks
///     WHERE tasks.project_id = m.project_id [AND filters] [AND cursor]
///     ORDER BY key, tasks.id LIMIT $n) t
/// WHERE m.user_id = $member
/// ORDER BY t.key, t.id LIMIT $n
/// ```
///
/// planned as
///
/// ```text
/// Limit
///   ->  Sort  (t.key, t.id)
///         ->  Nested Loop
///               ->  Index Only Scan using project_members_by_user on project_members m
///               ->  Limit
///                     ->  Index Scan using tasks_project_<key> on tasks
///                           Index Cond: (project_id = m.project_id) [AND cursor]
/// ```
///
/// Each project contributes one index range of at most `$n` rows, so a page
/// reads at most projects × (limit + 1) rows and sorts them, however many
/// tasks the projects hold. (A merge of the per-project ranges would read
/// fewer, but PostgreSQL has no Merge Append over a LATERAL join.)
#[derive(Debug)]
struct TaskList {
    member: Uuid,
    project: Option<Uuid>,
    assignee: Option<Uuid>,
    status: Option<&'static str>,
    priority: Option<i16>,
    due_before: Option<OffsetDateTime>,
    due_after: Option<OffsetDateTime>,
    sort: TaskSort,
    after: Option<(CursorValue, Uuid)>,
    /// `limit + 1`.
    rows: i64,
}

/// A cursor's sort-key value as it is bound.
#[derive(Debug)]
enum CursorValue {
    Time(OffsetDateTime),
    Rank(i16),
    /// A missing due date: the key's value is `'infinity'`, written as a
    /// literal (no `OffsetDateTime` holds it).
    Infinity,
}

/// The due-date sort key: tasks without a due date sort after every date,
/// as one totally ordered value (indexed by `tasks_project_due_date`). The
/// expression must match the index's for the index to serve it.
fn due_key(table: &str) -> String {
    format!("COALESCE({table}.due_date, 'infinity'::timestamptz)")
}

impl TaskList {
    fn new(member: UserId, query: &TaskQuery) -> Self {
        Self {
            member: member.0,
            project: query.project_id.map(|p| p.0),
            assignee: query.assignee_id.map(|a| a.0),
            status: query.status.map(|s| s.as_str()),
            priority: query.priority.map(|p| p.rank()),
            due_before: query.due_before,
            due_after: query.due_after,
            sort: query.sort,
            after: query.after.as_ref().map(|cursor| {
                let value = match cursor.key {
                    CursorKey::Time(t) | CursorKey::OptionalTime(Some(t)) => CursorValue::Time(t),
                    CursorKey::OptionalTime(None) => CursorValue::Infinity,
                    CursorKey::Priority(p) => CursorValue::Rank(p.rank()),
                };
                (value, cursor.id.0)
            }),
            rows: i64::from(query.limit) + 1,
        }
    }

    /// The sort key of `table`'s rows (`tasks`, or the lateral `t`).
    fn key(&self, table: &str) -> String {
        match self.sort.key {
            SortKey::CreatedAt => format!("{table}.created_at"),
            SortKey::UpdatedAt => format!("{table}.updated_at"),
            SortKey::DueDate => due_key(table),
            SortKey::Priority => format!("{table}.priority"),
        }
    }

    /// ` ORDER BY key, id LIMIT $n` over `table`'s rows.
    fn order_and_limit<'b>(
        &'b self,
        table: &str,
        out: &mut AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        let direction = if self.sort.descending { "DESC" } else { "ASC" };
        let key = self.key(table);
        out.push_sql(&format!(
            " ORDER BY {key} {direction}, {table}.id {direction} LIMIT "
        ));
        out.push_bind_param::<BigInt, _>(&self.rows)
    }

    /// ` AND …` for each filter and the cursor, on `tasks`.
    fn filters<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if let Some(assignee) = &self.assignee {
            out.push_sql(" AND tasks.assignee_id = ");
            out.push_bind_param::<SqlUuid, _>(assignee)?;
        }
        if let Some(status) = &self.status {
            out.push_sql(" AND tasks.status = ");
            out.push_bind_param::<Text, _>(status)?;
        }
        if let Some(priority) = &self.priority {
            out.push_sql(" AND tasks.priority = ");
            out.push_bind_param::<SmallInt, _>(priority)?;
        }
        if let Some(before) = &self.due_before {
            out.push_sql(" AND tasks.due_date < ");
            out.push_bind_param::<Timestamptz, _>(before)?;
        }
        if let Some(after) = &self.due_after {
            out.push_sql(" AND tasks.due_date > ");
            out.push_bind_param::<Timestamptz, _>(after)?;
        }
        if let Some((value, id)) = &self.after {
            // A row-value comparison: an index range bound, not a filter.
            let comparison = if self.sort.descending { "<" } else { ">" };
            out.push_sql(&format!(
                " AND ({}, tasks.id) {comparison} (",
                self.key("tasks")
            ));
            match value {
                CursorValue::Time(t) => out.push_bind_param::<Timestamptz, _>(t)?,
                CursorValue::Rank(rank) => out.push_bind_param::<SmallInt, _>(rank)?,
                CursorValue::Infinity => out.push_sql("'infinity'::timestamptz"),
            }
            out.push_sql(", ");
            out.push_bind_param::<SqlUuid, _>(id)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl QueryFragment<Pg> for TaskList {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match &self.project {
            Some(project) => {
                out.push_sql("SELECT tasks.* FROM tasks WHERE tasks.project_id = ");
                out.push_bind_param::<SqlUuid, _>(project)?;
                out.push_sql(" AND EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = ");
                out.push_bind_param::<SqlUuid, _>(project)?;
                out.push_sql(" AND m.user_id = ");
                out.push_bind_param::<SqlUuid, _>(&self.member)?;
                out.push_sql(")");
                self.filters(&mut out)?;
                self.order_and_limit("tasks", &mut out)
            }
            None => {
                out.push_sql(
                    "SELECT t.* FROM project_members m CROSS JOIN LATERAL \
                     (SELECT tasks.* FROM tasks WHERE tasks.project_id = m.project_id",
                );
                self.filters(&mut out)?;
                self.order_and_limit("tasks", &mut out)?;
                out.push_sql(") t WHERE m.user_id = ");
                out.push_bind_param::<SqlUuid, _>(&self.member)?;
                self.order_and_limit("t", &mut out)
            }
        }
    }
}

impl QueryId for TaskList {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows are read by column name into [`TaskRow`].
impl Query for TaskList {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    //! The query plans of every list shape, in one project and across a
    //! member's projects, on tables too large for a sequential scan to be
    //! cheap.

    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use domain::{Cursor, Priority, Status};

    use super::*;
    use crate::explain::explain;
    use crate::testing::TestDatabase;

    /// Each sort order's index, by migration name.
    fn index_of(key: SortKey) -> &'static str {
        match key {
            SortKey::CreatedAt => "tasks_project_created_at",
            SortKey::UpdatedAt => "tasks_project_updated_at",
            SortKey::DueDate => "tasks_project_due_date",
            SortKey::Priority => "tasks_project_priority",
        }
    }

    /// 2 001 users (`…-8000-<n>`), each with an Inbox (`…-9000-<n>`); user 0
    /// is also a member of 19 projects of user 1's (`…-a000-<n>`). 30 000
    /// tasks: 1 000 in each of user 0's 20 projects, the rest over 100 other
    /// Inboxes; varied in every sort key, a fifth without a due date, a
    /// third of user 0's assigned to them.
    const SEED: &str = "
        CREATE FUNCTION pg_temp.id(kind text, n int) RETURNS uuid
            LANGUAGE sql IMMUTABLE
            AS $$ SELECT ('00000000-0000-7000-' || kind || '-' || lpad(n::text, 12, '0'))::uuid $$;
        INSERT INTO users (id, email, name, role, password_hash, created_at)
          SELECT pg_temp.id('8000', u), 'user' || u || '@example.com', 'User', 'user', 'x', now()
          FROM generate_series(0, 2000) u;
        INSERT INTO projects (id, name, name_key, archived, personal, owner_id,
                              created_at, updated_at, version)
          SELECT pg_temp.id('9000', u), 'Inbox', 'inbox', false, true, pg_temp.id('8000', u),
                 now(), now(), 1
          FROM generate_series(0, 2000) u
          UNION ALL
          SELECT pg_temp.id('a000', s), 'Shared ' || s, 'shared ' || s, false, false,
                 pg_temp.id('8000', 1), now(), now(), 1
          FROM generate_series(1, 19) s;
        INSERT INTO project_members (project_id, user_id, role, joined_at)
          SELECT pg_temp.id('9000', u), pg_temp.id('8000', u), 'owner', now()
          FROM generate_series(0, 2000) u
          UNION ALL
          SELECT pg_temp.id('a000', s), pg_temp.id('8000', 1), 'owner', now()
          FROM generate_series(1, 19) s
          UNION ALL
          SELECT pg_temp.id('a000', s), pg_temp.id('8000', 0), 'member', now()
          FROM generate_series(1, 19) s;
        INSERT INTO tasks (id, project_id, created_by, assignee_id, title, status, priority,
                           due_date, created_at, updated_at, completed_at, version)
          SELECT gen_random_uuid(),
                 CASE WHEN t > 20000 THEN pg_temp.id('9000', t % 100 + 1)
                      WHEN t % 20 = 0 THEN pg_temp.id('9000', 0)
                      ELSE pg_temp.id('a000', t % 20) END,
                 CASE WHEN t > 20000 THEN pg_temp.id('8000', t % 100 + 1)
                      ELSE pg_temp.id('8000', 0) END,
                 CASE WHEN t <= 20000 AND t % 3 = 0 THEN pg_temp.id('8000', 0) END,
                 'Task ' || t, 'todo', t % 4,
                 CASE WHEN t % 5 = 0 THEN NULL ELSE now() + (t % 997) * interval '1 hour' END,
                 now() - t * interval '1 minute', now() - (t % 13) * interval '1 minute',
                 NULL, 1
          FROM generate_series(1, 30000) t;
        ANALYZE users, projects, project_members, tasks;";

    fn id(kind: &str, n: u32) -> Uuid {
        Uuid::parse_str(&format!("00000000-0000-7000-{kind}-{n:012}")).expect("uuid")
    }

    /// A first page in `sort`, and pages after a cursor for each kind of
    /// key value the sort has.
    fn pages(first: TaskQuery, now: OffsetDateTime) -> Vec<TaskQuery> {
        let keys = match first.sort.key {
            SortKey::CreatedAt | SortKey::UpdatedAt => vec![CursorKey::Time(now)],
            SortKey::DueDate => vec![
                CursorKey::OptionalTime(Some(now)),
                CursorKey::OptionalTime(None),
            ],
            SortKey::Priority => vec![CursorKey::Priority(Priority::High)],
        };
        let mut pages = vec![first.clone()];
        pages.extend(keys.into_iter().map(|key| TaskQuery {
            after: Some(Cursor {
                sort: first.sort,
                key,
                id: TaskId::generate(),
            }),
            ..first.clone()
        }));
        pages
    }

    /// The indentation of a plan line: a child is indented deeper than its
    /// parent.
    fn depth(line: &str) -> usize {
        line.len() - line.trim_start().len()
    }

    /// The sort's own index delivers one project's rows in order: no table
    /// scan, no sort, the cursor bounds the range, and the membership is
    /// checked once (an InitPlan, not per row).
    fn assert_one_range(sort: TaskSort, page: &TaskQuery, plan: &str) {
        let key = sort.key;
        assert!(
            plan.contains(index_of(key)),
            "{sort:?} uses its index:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{sort:?}:\n{plan}");
        assert!(!plan.contains("Sort"), "{sort:?} needs no sort:\n{plan}");
        assert!(
            plan.contains("InitPlan") && plan.contains("project_members"),
            "{sort:?}: the membership is checked once:\n{plan}"
        );
        let cond = index_cond(plan, index_of(key));
        assert!(
            cond.contains("project_id = '"),
            "{sort:?}: one project's range:\n{plan}"
        );
        if page.after.is_some() {
            assert!(
                cond.contains("ROW("),
                "{sort:?}: the cursor is an index bound:\n{plan}"
            );
        }
    }

    /// The Index Cond of the scan using `index`.
    fn index_cond<'p>(plan: &'p str, index: &str) -> &'p str {
        plan.lines()
            .skip_while(|l| !l.contains(index))
            .find(|l| l.contains("Index Cond"))
            .unwrap_or_default()
    }

    /// Per project, a Limit over one range of the sort's index, under a
    /// nested loop over the member's projects; no table scan of tasks.
    fn assert_range_per_project(sort: TaskSort, page: &TaskQuery, plan: &str) {
        let lines: Vec<&str> = plan.lines().collect();
        let at = |needle: &str, from: usize| {
            (from..lines.len())
                .find(|&i| lines[i].contains(needle))
                .unwrap_or_else(|| panic!("{sort:?}: no {needle:?} after line {from}:\n{plan}"))
        };
        let looped = at("Nested Loop", 0);
        let limit = at("Limit", looped);
        let scan = at(index_of(sort.key), limit);
        assert!(
            depth(lines[looped]) < depth(lines[limit]) && depth(lines[limit]) < depth(lines[scan]),
            "{sort:?}: a per-project Limit over the index under the loop:\n{plan}"
        );
        let cond = index_cond(plan, index_of(sort.key));
        assert!(
            cond.contains("project_id = m.project_id"),
            "{sort:?}: one project's range a loop:\n{plan}"
        );
        if page.after.is_some() {
            assert!(
                cond.contains("ROW("),
                "{sort:?}: the cursor bounds each range:\n{plan}"
            );
        }
        assert!(!plan.contains("Seq Scan on tasks"), "{sort:?}:\n{plan}");
    }

    #[tokio::test]
    async fn every_list_query_is_bounded_by_index_ranges_on_a_large_table() {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        conn.batch_execute(SEED).await.expect("seed");
        let member = UserId(id("8000", 0));
        let shared = ProjectId(id("a000", 1));
        let now = OffsetDateTime::now_utc();
        for key in SortKey::ALL {
            for descending in [false, true] {
                let sort = TaskSort { key, descending };
                let across = TaskQuery {
                    sort,
                    ..TaskQuery::default()
                };
                let one = TaskQuery {
                    project_id: Some(shared),
                    ..across.clone()
                };
                for page in pages(one.clone(), now) {
                    let plan = explain(&mut conn, TaskList::new(member, &page)).await;
                    assert_one_range(sort, &page, &plan);
                }
                for page in pages(across.clone(), now) {
                    let plan = explain(&mut conn, TaskList::new(member, &page)).await;
                    assert_range_per_project(sort, &page, &plan);
                }
                // Filters narrow the ranges; they never turn them into a
                // table scan.
                for first in [one, across] {
                    let filtered = TaskQuery {
                        assignee_id: Some(member),
                        status: Some(Status::Todo),
                        priority: Some(Priority::Low),
                        due_before: Some(now + time::Duration::days(3)),
                        due_after: Some(now),
                        ..first
                    };
                    let plan = explain(&mut conn, TaskList::new(member, &filtered)).await;
                    assert!(
                        !plan.contains("Seq Scan on tasks"),
                        "filtered {sort:?}:\n{plan}"
                    );
                }
            }
        }
    }
}
