//! The audit trail on PostgreSQL: append-only `audit_entries`, read newest
//! first through one index range per page (see migration 5).

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use domain::{
    Audit, AuditAction, AuditEntry, AuditId, AuditQuery, Change, Changes, EntityType, PortError,
    ProjectId, RequestId, UserId, Value,
};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::from_diesel;
use crate::rows::corrupt;
use crate::schema::audit_entries;
use crate::store::PgHandle;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_entries, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    id: Uuid,
    at: OffsetDateTime,
    actor_id: Uuid,
    action: String,
    entity_type: String,
    entity_id: Uuid,
    project_id: Option<Uuid>,
    changes: Json,
    request_id: Option<String>,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.0,
            at: e.at,
            actor_id: e.actor_id.0,
            action: e.action.as_str().to_owned(),
            entity_type: e.entity_type.as_str().to_owned(),
            entity_id: e.entity_id,
            project_id: e.project_id.map(|p| p.0),
            changes: changes_to_json(&e.changes),
            request_id: e.request_id.map(|r| r.as_str().to_owned()),
        }
    }
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = PortError;

    fn try_from(row: AuditRow) -> Result<Self, PortError> {
        Ok(AuditEntry {
            id: AuditId(row.id),
            at: row.at,
            actor_id: UserId(row.actor_id),
            action: AuditAction::parse(&row.action)
                .ok_or_else(|| corrupt("audit action", &row.action))?,
            entity_type: EntityType::parse(&row.entity_type)
                .ok_or_else(|| corrupt("audit entity type", &row.entity_type))?,
            entity_id: row.entity_id,
            project_id: row.project_id.map(ProjectId),
            changes: changes_from_json(row.changes)?,
            request_id: row
                .request_id
                .map(|r| RequestId::parse(&r).ok_or_else(|| corrupt("request id", r)))
                .transpose()?,
        })
    }
}

/// `{"field": {"from": <value>, "to": <value>}}`.
fn changes_to_json(changes: &Changes) -> Json {
    let fields = changes
        .0
        .iter()
        .map(|(field, change)| {
            let change = Map::from_iter([
                ("from".to_owned(), value_to_json(&change.from)),
                ("to".to_owned(), value_to_json(&change.to)),
            ]);
            (field.clone(), Json::Object(change))
        })
        .collect();
    Json::Object(fields)
}

fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Text(s) => Json::String(s.clone()),
    }
}

fn changes_from_json(json: Json) -> Result<Changes, PortError> {
    let Json::Object(fields) = json else {
        return Err(corrupt("audit changes", json));
    };
    fields
        .into_iter()
        .map(|(field, change)| {
            let Json::Object(mut change) = change else {
                return Err(corrupt("audit change", change));
            };
            let mut side = |name: &str| {
                change
                    .remove(name)
                    .ok_or_else(|| corrupt("audit change", format!("{field} has no {name:?}")))
                    .and_then(value_from_json)
            };
            let change = Change {
                from: side("from")?,
                to: side("to")?,
            };
            Ok((field, change))
        })
        .collect::<Result<_, _>>()
        .map(Changes)
}

fn value_from_json(json: Json) -> Result<Value, PortError> {
    match json {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(b)),
        Json::String(s) => Ok(Value::Text(s)),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| corrupt("audit value", n)),
        other @ (Json::Array(_) | Json::Object(_)) => Err(corrupt("audit value", other)),
    }
}

/// Entries are inserted this many at a time: well under PostgreSQL's
/// 65 535 bind parameters per statement (nine a row).
const INSERT_CHUNK: usize = 1000;

type Page = audit_entries::BoxedQuery<
    'static,
    Pg,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<AuditRow, Pg>>,
>;

/// Newest first, after the query's cursor, `limit + 1` rows. The cursor is
/// a row-value comparison, so with the equality filters before it the page
/// is one range of `audit_entries_activity` or `audit_entries_history`.
fn newest_first(q: Page, query: &AuditQuery) -> Page {
    let mut q = q
        .order((audit_entries::at.desc(), audit_entries::id.desc()))
        .limit(i64::from(query.limit) + 1);
    if let Some((at, id)) = query.after {
        q = q.filter(
            sql::<Bool>("(audit_entries.at, audit_entries.id) < (")
                .bind::<Timestamptz, _>(at)
                .sql(", ")
                .bind::<SqlUuid, _>(id.0)
                .sql(")"),
        );
    }
    q
}

fn activity_query(project: ProjectId, query: &AuditQuery) -> Page {
    let q = audit_entries::table
        .filter(audit_entries::project_id.eq(project.0))
        .select(AuditRow::as_select())
        .into_boxed();
    newest_first(q, query)
}

fn history_query(entity_type: EntityType, entity_id: Uuid, query: &AuditQuery) -> Page {
    let q = audit_entries::table
        .filter(audit_entries::entity_id.eq(entity_id))
        .filter(audit_entries::entity_type.eq(entity_type.as_str()))
        .select(AuditRow::as_select())
        .into_boxed();
    newest_first(q, query)
}

impl PgHandle {
    async fn load_entries(&mut self, q: Page) -> Result<Vec<AuditEntry>, PortError> {
        let rows: Vec<AuditRow> = q.load(self.conn()).await.map_err(from_diesel)?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}

impl Audit for PgHandle {
    async fn record(&mut self, entries: &[AuditEntry]) -> Result<(), PortError> {
        for chunk in entries.chunks(INSERT_CHUNK) {
            let rows: Vec<AuditRow> = chunk.iter().map(AuditRow::from).collect();
            diesel::insert_into(audit_entries::table)
                .values(rows)
                .execute(self.conn())
                .await
                .map_err(from_diesel)?;
        }
        Ok(())
    }

    async fn activity(
        &mut self,
        project: ProjectId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, PortError> {
        self.load_entries(activity_query(project, query)).await
    }

    async fn history(
        &mut self,
        entity_type: EntityType,
        entity_id: Uuid,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, PortError> {
        self.load_entries(history_query(entity_type, entity_id, query))
            .await
    }
}

#[cfg(test)]
mod tests {
    //! What the database refuses of the trail, and the plans of its pages.

    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    use super::*;
    use crate::explain::explain;
    use crate::testing::TestDatabase;

    const ACTOR: &str = "'00000000-0000-7000-8000-000000000001'";
    const PROJECT: &str = "'00000000-0000-7000-9000-000000000001'";

    async fn with_actor() -> (TestDatabase, AsyncPgConnection) {
        let db = TestDatabase::create().await;
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        conn.batch_execute(&format!(
            "INSERT INTO users (id, email, name, role, password_hash, created_at)
             VALUES ({ACTOR}, 'ada@example.com', 'Ada', 'admin', 'x', now())"
        ))
        .await
        .expect("a user");
        (db, conn)
    }

    #[tokio::test]
    async fn the_database_enforces_the_trails_rules() {
        let (_db, mut conn) = with_actor().await;
        let insert = "INSERT INTO audit_entries
                      (id, at, actor_id, action, entity_type, entity_id, project_id, changes, request_id)
                      VALUES (gen_random_uuid(), now(), ";
        let changes = r#"'{"title": {"from": null, "to": "T"}}'"#;
        for (case, values) in [
            (
                "an unknown action",
                format!(
                    "{ACTOR}, 'task.moved', 'task', gen_random_uuid(), {PROJECT}, {changes}, NULL)"
                ),
            ),
            (
                "an unknown entity type",
                format!(
                    "{ACTOR}, 'task.created', 'comment', gen_random_uuid(), {PROJECT}, {changes}, NULL)"
                ),
            ),
            (
                "an action about another kind of entity",
                format!(
                    "{ACTOR}, 'task.created', 'project', gen_random_uuid(), {PROJECT}, {changes}, NULL)"
                ),
            ),
            (
                "a task's entry in no project",
                format!(
                    "{ACTOR}, 'task.created', 'task', gen_random_uuid(), NULL, {changes}, NULL)"
                ),
            ),
            (
                "changes that are not an object",
                format!(
                    "{ACTOR}, 'task.created', 'task', gen_random_uuid(), {PROJECT}, '[]', NULL)"
                ),
            ),
            (
                "a request id with a space",
                format!(
                    "{ACTOR}, 'task.created', 'task', gen_random_uuid(), {PROJECT}, {changes}, 'a b')"
                ),
            ),
            (
                "an unknown actor",
                format!(
                    "gen_random_uuid(), 'task.created', 'task', gen_random_uuid(), {PROJECT}, {changes}, NULL)"
                ),
            ),
        ] {
            let refused = conn.batch_execute(&format!("{insert}{values}")).await;
            assert!(refused.is_err(), "{case} is refused");
        }
        // A project that no longer exists (or never did) is no obstacle:
        // entries outlive what they are about.
        conn.batch_execute(&format!(
            "{insert}{ACTOR}, 'task.deleted', 'task', gen_random_uuid(), {PROJECT}, {changes}, 'req-1')"
        ))
        .await
        .expect("an entry about a deleted task");
    }

    /// Both pages, first and after a cursor, are one range of their index
    /// read in order: no table scan, no sort.
    #[tokio::test]
    async fn every_audit_page_is_one_index_range_on_a_large_trail() {
        let (_db, mut conn) = with_actor().await;
        // 50 000 entries about 500 tasks in 50 projects, 1 000 about the
        // actor.
        conn.batch_execute(&format!(
            "INSERT INTO audit_entries
               (id, at, actor_id, action, entity_type, entity_id, project_id, changes)
             SELECT gen_random_uuid(), now() - (e % 1000) * interval '1 minute', {ACTOR},
                    'task.updated', 'task',
                    ('00000000-0000-7000-a000-' || lpad((e % 500)::text, 12, '0'))::uuid,
                    ('00000000-0000-7000-9000-' || lpad((e % 50)::text, 12, '0'))::uuid, '{{}}'
             FROM generate_series(1, 50000) e;
             INSERT INTO audit_entries
               (id, at, actor_id, action, entity_type, entity_id, project_id, changes)
             SELECT gen_random_uuid(), now(), {ACTOR}, 'user.disabled', 'user', {ACTOR}, NULL, '{{}}'
             FROM generate_series(1, 1000);
             ANALYZE audit_entries;"
        ))
        .await
        .expect("seed");
        let project =
            ProjectId(Uuid::parse_str("00000000-0000-7000-9000-000000000001").expect("uuid"));
        let task = Uuid::parse_str("00000000-0000-7000-a000-000000000001").expect("uuid");
        let user = Uuid::parse_str(ACTOR.trim_matches('\'')).expect("uuid");
        let first = AuditQuery {
            after: None,
            limit: 20,
        };
        let next = AuditQuery {
            after: Some((OffsetDateTime::now_utc(), AuditId::generate())),
            ..first.clone()
        };
        for query in [first, next] {
            for (index, plan) in [
                (
                    "audit_entries_activity",
                    explain(&mut conn, activity_query(project, &query)).await,
                ),
                (
                    "audit_entries_history",
                    explain(&mut conn, history_query(EntityType::Task, task, &query)).await,
                ),
                (
                    "audit_entries_history",
                    explain(&mut conn, history_query(EntityType::User, user, &query)).await,
                ),
            ] {
                assert!(plan.contains(index), "{index}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{plan}");
                assert!(!plan.contains("Sort"), "read in order:\n{plan}");
                if query.after.is_some() {
                    let bound = plan
                        .lines()
                        .find(|l| l.contains("Index Cond"))
                        .is_some_and(|l| l.contains("ROW("));
                    assert!(bound, "the cursor is an index bound:\n{plan}");
                }
            }
        }
    }
}
