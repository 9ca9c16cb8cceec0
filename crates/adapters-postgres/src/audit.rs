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
