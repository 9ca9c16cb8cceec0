//! The event log on PostgreSQL (see migration 6): `events`, keyed by
//! `(project_id, seq)`, numbered from the counter `projects.event_seq`
//! under the project's row lock; an event's data is jsonb in a shape of
//! this adapter's own ([`stored`]).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use domain::{
    Event, EventQuery, EventType, Events, LogBounds, NewEvent, PortError, ProjectId, RequestId,
    UserId,
};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{WHAT, from_diesel};
use crate::rows::corrupt;
use crate::schema::{events, projects};
use crate::store::PgHandle;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
struct EventRow {
    project_id: Uuid,
    seq: i64,
    kind: String,
    entity_id: Uuid,
    actor_id: Uuid,
    at: OffsetDateTime,
    data: Option<Json>,
    changes: Vec<String>,
    request_id: Option<String>,
    client_mutation_id: Option<String>,
}

impl EventRow {
    fn new(project: ProjectId, seq: i64, e: &NewEvent) -> Result<Self, PortError> {
        Ok(Self {
            project_id: project.0,
            seq,
            kind: e.kind.as_str().to_owned(),
            entity_id: e.entity_id,
            actor_id: e.actor_id.0,
            at: e.at,
            data: e.data.as_ref().map(stored::encode).transpose()?,
            changes: e.changes.clone(),
            request_id: e.request_id.map(|r| r.as_str().to_owned()),
            client_mutation_id: e.client_mutation_id.map(|r| r.as_str().to_owned()),
        })
    }
}

fn request_id(what: &str, raw: Option<String>) -> Result<Option<RequestId>, PortError> {
    raw.map(|r| RequestId::parse(&r).ok_or_else(|| corrupt(what, r)))
        .transpose()
}

impl TryFrom<EventRow> for Event {
    type Error = PortError;

    fn try_from(row: EventRow) -> Result<Self, PortError> {
        Ok(Event {
            project_id: ProjectId(row.project_id),
            seq: row.seq,
            event: NewEvent {
                kind: EventType::parse(&row.kind)
                    .ok_or_else(|| corrupt("event type", &row.kind))?,
                entity_id: row.entity_id,
                actor_id: UserId(row.actor_id),
                at: row.at,
                data: row.data.map(stored::decode).transpose()?,
                changes: row.changes,
                request_id: request_id("request id", row.request_id)?,
                client_mutation_id: request_id("client mutation id", row.client_mutation_id)?,
            },
        })
    }
}

/// Events are inserted this many at a time: well under PostgreSQL's
/// 65 535 bind parameters per statement (ten a row).
const INSERT_CHUNK: usize = 1000;

/// Retention deletes at most this many events a statement, each statement
/// its own transaction (on a connection): no run holds many row locks or
/// one long transaction, whatever it has to prune.
const PRUNE_CHUNK: usize = 1000;

type Page =
    events::BoxedQuery<'static, Pg, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<EventRow, Pg>>>;

/// `seq > after ORDER BY seq LIMIT limit + 1`: one range of the primary
/// key, read in order.
fn events_query(project: ProjectId, query: &EventQuery) -> Page {
    events::table
        .filter(events::project_id.eq(project.0))
        .filter(events::seq.gt(query.after))
        .order(events::seq)
        .limit(i64::from(query.limit) + 1)
        .select(EventRow::as_select())
        .into_boxed()
}

type Bounds = projects::BoxedQuery<'static, Pg, (BigInt, Nullable<BigInt>)>;

/// The project's counter and its oldest kept seq: a primary-key lookup of
/// each (`min(seq)` reads the first entry of the project's range).
fn bounds_query(project: ProjectId) -> Bounds {
    projects::table
        .find(project.0)
        .select((
            projects::event_seq,
            diesel::dsl::sql::<Nullable<BigInt>>(
                "(SELECT min(seq) FROM events WHERE events.project_id = projects.id)",
            ),
        ))
        .into_boxed()
}

/// Retention reads the events older than its cutoff this many at a time,
/// in `events_by_at` order, for the projects to prune.
const EXPIRED_WINDOW: i64 = 10_000;

/// An expired event's place in `events_by_at`.
type Expired = (OffsetDateTime, Uuid);

type Window = events::BoxedQuery<'static, Pg, (Timestamptz, SqlUuid)>;

/// The next [`EXPIRED_WINDOW`] events older than `before` after `after`,
/// oldest first, as `(at, project_id)`: one range of `events_by_at` read
/// alone (an index-only scan), bounded by the row-value cursor.
fn expired_query(before: OffsetDateTime, after: Option<Expired>) -> Window {
    let mut q = events::table
        .filter(events::at.lt(before))
        .select((events::at, events::project_id))
        .order((events::at, events::project_id))
        .limit(EXPIRED_WINDOW)
        .into_boxed();
    if let Some((at, project)) = after {
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(events.at, events.project_id) > (")
                .bind::<Timestamptz, _>(at)
                .sql(", ")
                .bind::<SqlUuid, _>(project)
                .sql(")"),
        );
    }
    q
}

/// Deletes the oldest of `project`'s events, up to [`PRUNE_CHUNK`], up to
/// (not including) its first event not older than `before`: what remains
/// of a log is always the run of its newest events, whatever order the
/// events' times are in. (`at` follows `seq` only roughly: a change reads
/// the clock before it waits for the project's lock, and instances' clocks
/// differ. Deleting every old event would leave a hole where a newer one
/// precedes an older one, and a client following the log from before the
/// hole would miss what was in it.)
fn prune_chunk_query(
    project: Uuid,
    before: OffsetDateTime,
) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    // The head: the project's oldest events, one range of the primary key;
    // the cut: its first event to keep, if it is among them.
    diesel::sql_query(
        "WITH head AS (
             SELECT seq, at FROM events WHERE project_id = $1 ORDER BY seq LIMIT $3
         )
         DELETE FROM events
         WHERE project_id = $1
           AND seq <= (SELECT max(seq) FROM head)
           AND seq < coalesce((SELECT min(seq) FROM head WHERE at >= $2), 9223372036854775807)",
    )
    .into_boxed()
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(PRUNE_CHUNK as i64)
}

impl Events for PgHandle {
    async fn append(
        &mut self,
        project: ProjectId,
        events: &[NewEvent],
    ) -> Result<Vec<Event>, PortError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(events.len()).map_err(|e| PortError::unexpected(WHAT, e))?;
        // The caller holds the project's row lock (were it not, this
        // update would take it): no other change numbers events of this
        // project until this one commits or rolls back, so numbers are
        // given in commit order, and a rollback gives them back.
        let head: Option<i64> = diesel::update(projects::table.find(project.0))
            .set(projects::event_seq.eq(projects::event_seq + count))
            .returning(projects::event_seq)
            .get_result(self.conn())
            .await
            .optional()
            .map_err(from_diesel)?;
        let Some(head) = head else {
            return Err(PortError::unexpected(
                WHAT,
                format!("no project {} to append events to", project.0),
            ));
        };
        let first = head - count + 1;
        let rows: Vec<EventRow> = (first..)
            .zip(events)
            .map(|(seq, e)| EventRow::new(project, seq, e))
            .collect::<Result<_, _>>()?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            diesel::insert_into(events::table)
                .values(chunk)
                .execute(self.conn())
                .await
                .map_err(from_diesel)?;
        }
        Ok((first..)
            .zip(events)
            .map(|(seq, e)| Event {
                project_id: project,
                seq,
                event: e.clone(),
            })
            .collect())
    }

    async fn events(
        &mut self,
        project: ProjectId,
        query: &EventQuery,
    ) -> Result<Vec<Event>, PortError> {
        let rows: Vec<EventRow> = events_query(project, query)
            .load(self.conn())
            .await
            .map_err(from_diesel)?;
        rows.into_iter().map(Event::try_from).collect()
    }

    async fn log_bounds(&mut self, project: ProjectId) -> Result<Option<LogBounds>, PortError> {
        // One statement, so one snapshot: the head and the oldest agree.
        let bounds: Option<(i64, Option<i64>)> = bounds_query(project)
            .first(self.conn())
            .await
            .optional()
            .map_err(from_diesel)?;
        Ok(bounds.map(|(head, oldest)| LogBounds { head, oldest }))
    }

    async fn heads(&mut self, projects: &[ProjectId]) -> Result<Vec<(ProjectId, i64)>, PortError> {
        let ids: Vec<Uuid> = projects.iter().map(|p| p.0).collect();
        let heads: Vec<(Uuid, i64)> = projects::table
            .filter(projects::id.eq_any(ids))
            .select((projects::id, projects::event_seq))
            .load(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(heads
            .into_iter()
            .map(|(id, head)| (ProjectId(id), head))
            .collect())
    }

    async fn prune_events(&mut self, before: OffsetDateTime) -> Result<u64, PortError> {
        // One pass over the expired events in time order, a window at a
        // time; the projects in a window are pruned before the next is
        // read, each a chunk a statement along its primary key up to its
        // first event to keep. Events tied with the cursor are skipped:
        // their project was just pruned. Instances pruning at once delete
        // each event once (a row another deleted is skipped once its
        // deletion commits) and count what they deleted; one that finds a
        // project's head gone to another moves on.
        let mut pruned = 0u64;
        let mut cursor = None;
        loop {
            let window: Vec<Expired> = expired_query(before, cursor)
                .load(self.conn())
                .await
                .map_err(from_diesel)?;
            let mut projects: Vec<Uuid> = window.iter().map(|(_, project)| *project).collect();
            projects.sort_unstable();
            projects.dedup();
            for project in projects {
                loop {
                    let deleted = prune_chunk_query(project, before)
                        .execute(self.conn())
                        .await
                        .map_err(from_diesel)?;
                    pruned += deleted as u64;
                    if deleted < PRUNE_CHUNK {
                        break;
                    }
                }
            }
            if window.len() < EXPIRED_WINDOW as usize {
                break;
            }
            cursor = window.last().copied();
        }
        Ok(pruned)
    }
}

/// The adapter's own shape of an event's data, version 1:
/// `{"v": 1, "task": {...}}`, `{"v": 1, "project": {...}}` or
/// `{"v": 1, "member": {...}}`, every field of the domain value present
/// (`null` when it has none), times in RFC 3339 in UTC to the microsecond,
/// enumerations by their domain names. Not the API's rendering, which is the
/// HTTP layer's: this one changes only with a migration that rewrites
/// stored data (or a decoder that reads both versions).
mod stored {
    use domain::ports::MemberDetails;
    use domain::task::Description;
    use domain::{
        Email, EventData, Member, PortError, Priority, Project, ProjectDescription, ProjectId,
        ProjectName, ProjectRole, Status, Task, TaskId, Title, UserId, UserName,
    };
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value as Json};
    use time::{OffsetDateTime, UtcOffset};
    use uuid::Uuid;

    use crate::error::WHAT;
    use crate::rows::corrupt;

    const VERSION: u64 = 1;
    const TASK: &str = "task";
    const PROJECT: &str = "project";
    const MEMBER: &str = "member";

    fn utc(at: OffsetDateTime) -> OffsetDateTime {
        at.to_offset(UtcOffset::UTC)
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TaskV1 {
        id: Uuid,
        project_id: Uuid,
        created_by: Uuid,
        assignee_id: Option<Uuid>,
        title: String,
        description: Option<String>,
        status: String,
        priority: String,
        #[serde(with = "time::serde::rfc3339::option")]
        due_date: Option<OffsetDateTime>,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        updated_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option")]
        completed_at: Option<OffsetDateTime>,
        version: i64,
    }

    impl From<&Task> for TaskV1 {
        fn from(t: &Task) -> Self {
            Self {
                id: t.id.0,
                project_id: t.project_id.0,
                created_by: t.created_by.0,
                assignee_id: t.assignee_id.map(|a| a.0),
                title: t.title.as_str().to_owned(),
                description: t.description.as_ref().map(|d| d.as_str().to_owned()),
                status: t.status.as_str().to_owned(),
                priority: t.priority.as_str().to_owned(),
                due_date: t.due_date.map(utc),
                created_at: utc(t.created_at),
                updated_at: utc(t.updated_at),
                completed_at: t.completed_at.map(utc),
                version: t.version,
            }
        }
    }

    impl TryFrom<TaskV1> for Task {
        type Error = PortError;

        fn try_from(t: TaskV1) -> Result<Self, PortError> {
            Ok(Task {
                id: TaskId(t.id),
                project_id: ProjectId(t.project_id),
                created_by: UserId(t.created_by),
                assignee_id: t.assignee_id.map(UserId),
                title: Title::parse(&t.title).map_err(|e| corrupt("event's task title", e))?,
                description: t
                    .description
                    .map(Description::parse)
                    .transpose()
                    .map_err(|e| corrupt("event's task description", e))?,
                status: Status::parse(&t.status)
                    .ok_or_else(|| corrupt("event's task status", &t.status))?,
                priority: Priority::parse(&t.priority)
                    .ok_or_else(|| corrupt("event's task priority", &t.priority))?,
                due_date: t.due_date,
                created_at: t.created_at,
                updated_at: t.updated_at,
                completed_at: t.completed_at,
                version: t.version,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ProjectV1 {
        id: Uuid,
        name: String,
        description: Option<String>,
        archived: bool,
        personal: bool,
        owner_id: Uuid,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        updated_at: OffsetDateTime,
        version: i64,
    }

    impl From<&Project> for ProjectV1 {
        fn from(p: &Project) -> Self {
            Self {
                id: p.id.0,
                name: p.name.as_str().to_owned(),
                description: p.description.as_ref().map(|d| d.as_str().to_owned()),
                archived: p.archived,
                personal: p.personal,
                owner_id: p.owner_id.0,
                created_at: utc(p.created_at),
                updated_at: utc(p.updated_at),
                version: p.version,
            }
        }
    }

    impl TryFrom<ProjectV1> for Project {
        type Error = PortError;

        fn try_from(p: ProjectV1) -> Result<Self, PortError> {
            Ok(Project {
                id: ProjectId(p.id),
                name: ProjectName::parse(&p.name)
                    .map_err(|e| corrupt("event's project name", e))?,
                description: p
                    .description
                    .map(ProjectDescription::parse)
                    .transpose()
                    .map_err(|e| corrupt("event's project description", e))?,
                archived: p.archived,
                personal: p.personal,
                owner_id: UserId(p.owner_id),
                created_at: p.created_at,
                updated_at: p.updated_at,
                version: p.version,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MemberV1 {
        project_id: Uuid,
        user_id: Uuid,
        role: String,
        #[serde(with = "time::serde::rfc3339")]
        joined_at: OffsetDateTime,
        email: String,
        name: String,
    }

    impl From<&MemberDetails> for MemberV1 {
        fn from(m: &MemberDetails) -> Self {
            Self {
                project_id: m.member.project_id.0,
                user_id: m.member.user_id.0,
                role: m.member.role.as_str().to_owned(),
                joined_at: utc(m.member.joined_at),
                email: m.email.as_str().to_owned(),
                name: m.name.as_str().to_owned(),
            }
        }
    }

    impl TryFrom<MemberV1> for MemberDetails {
        type Error = PortError;

        fn try_from(m: MemberV1) -> Result<Self, PortError> {
            Ok(MemberDetails {
                member: Member {
                    project_id: ProjectId(m.project_id),
                    user_id: UserId(m.user_id),
                    role: ProjectRole::parse(&m.role)
                        .ok_or_else(|| corrupt("event's member role", &m.role))?,
                    joined_at: m.joined_at,
                },
                email: Email::parse(&m.email).map_err(|e| corrupt("event's member e-mail", e))?,
                name: UserName::parse(&m.name).map_err(|e| corrupt("event's member name", e))?,
            })
        }
    }

    fn unencodable(e: serde_json::Error) -> PortError {
        PortError::unexpected(WHAT, format!("cannot store an event's data: {e}"))
    }

    pub(super) fn encode(data: &EventData) -> Result<Json, PortError> {
        let (key, body) = match data {
            EventData::Task(t) => (TASK, serde_json::to_value(TaskV1::from(t))),
            EventData::Project(p) => (PROJECT, serde_json::to_value(ProjectV1::from(p))),
            EventData::Member(m) => (MEMBER, serde_json::to_value(MemberV1::from(m))),
        };
        let body = body.map_err(unencodable)?;
        Ok(Json::Object(Map::from_iter([
            ("v".to_owned(), Json::from(VERSION)),
            (key.to_owned(), body),
        ])))
    }

    pub(super) fn decode(json: Json) -> Result<EventData, PortError> {
        let Json::Object(mut fields) = json else {
            return Err(corrupt("event data", json));
        };
        let version = fields.remove("v");
        if version.as_ref().and_then(Json::as_u64) != Some(VERSION) || fields.len() != 1 {
            return Err(corrupt("event data", Json::Object(fields)));
        }
        let Some((key, body)) = fields.into_iter().next() else {
            return Err(corrupt("event data", "no entity"));
        };
        fn body_of<T: for<'de> Deserialize<'de>>(key: &str, body: Json) -> Result<T, PortError> {
            serde_json::from_value(body).map_err(|e| corrupt("event data", format!("{key}: {e}")))
        }
        match key.as_str() {
            TASK => Ok(EventData::Task(body_of::<TaskV1>(&key, body)?.try_into()?)),
            PROJECT => Ok(EventData::Project(
                body_of::<ProjectV1>(&key, body)?.try_into()?,
            )),
            MEMBER => Ok(EventData::Member(
                body_of::<MemberV1>(&key, body)?.try_into()?,
            )),
            other => Err(corrupt(
                "event data",
                format!("an unknown entity {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    //! What the database refuses of the log, the stored shape of events'
    //! data, retention, and the plans of the log's reads.

    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use domain::ports::MemberDetails;
    use domain::{
        Email, EventData, Member, Priority, Project, ProjectName, ProjectRole, Status, Store, Task,
        TaskId, Title, UserName,
    };
    use serde_json::json;
    use time::{Duration, UtcOffset};

    use super::*;
    use crate::explain::explain;
    use crate::store::{PgOptions, PgStore};
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
             VALUES ({ACTOR}, 'ada@example.com', 'Ada', 'user', 'x', now())"
        ))
        .await
        .expect("a user");
        (db, conn)
    }

    fn uuid(raw: &str) -> Uuid {
        Uuid::parse_str(raw.trim_matches('\'')).expect("uuid")
    }

    #[tokio::test]
    async fn the_database_enforces_the_logs_rules() {
        let (_db, mut conn) = with_actor().await;
        let insert = "INSERT INTO events
                      (project_id, seq, type, entity_id, actor_id, at, data, changes,
                       request_id, client_mutation_id)
                      VALUES (";
        let task = r#"'{"v": 1, "task": {}}'"#;
        for (case, values) in [
            (
                "seq 0",
                format!(
                    "{PROJECT}, 0, 'task.created', gen_random_uuid(), {ACTOR}, now(), {task}, '{{}}', NULL, NULL)"
                ),
            ),
            (
                "an unknown type",
                format!(
                    "{PROJECT}, 1, 'task.moved', gen_random_uuid(), {ACTOR}, now(), {task}, '{{}}', NULL, NULL)"
                ),
            ),
            (
                "data that is no object",
                format!(
                    r#"{PROJECT}, 1, 'task.created', gen_random_uuid(), {ACTOR}, now(), '["task"]', '{{}}', NULL, NULL)"#
                ),
            ),
            (
                "a changed field that is NULL",
                format!(
                    "{PROJECT}, 1, 'task.updated', gen_random_uuid(), {ACTOR}, now(), {task}, ARRAY['title', NULL], NULL, NULL)"
                ),
            ),
            (
                "a request id with a space",
                format!(
                    "{PROJECT}, 1, 'task.created', gen_random_uuid(), {ACTOR}, now(), {task}, '{{}}', 'a b', NULL)"
                ),
            ),
            (
                "a client mutation id too long",
                format!(
                    "{PROJECT}, 1, 'task.created', gen_random_uuid(), {ACTOR}, now(), {task}, '{{}}', NULL, repeat('m', 65))"
                ),
            ),
            (
                "an unknown actor",
                format!(
                    "{PROJECT}, 1, 'task.created', gen_random_uuid(), gen_random_uuid(), now(), {task}, '{{}}', NULL, NULL)"
                ),
            ),
        ] {
            let refused = conn.batch_execute(&format!("{insert}{values}")).await;
            assert!(refused.is_err(), "{case} is refused");
        }
        conn.batch_execute(&format!(
            "{insert}{PROJECT}, 2, 'task.created', gen_random_uuid(), {ACTOR}, now(), {task}, '{{}}', 'r', 'm')"
        ))
        .await
        .expect("each case above but for its one fault");
        // A project that no longer exists (or never did) is no obstacle:
        // events outlive their project.
        let deleted = format!(
            "{insert}{PROJECT}, 1, 'project.deleted', {PROJECT}, {ACTOR}, now(), NULL, '{{}}', 'req-1', 'm-1')"
        );
        conn.batch_execute(&deleted)
            .await
            .expect("the last event of a deleted project");
        assert!(
            conn.batch_execute(&deleted).await.is_err(),
            "one event a seq"
        );
    }

    fn at(unix_micros: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_micros) * 1000).expect("a time")
    }

    /// The stored shape is version 1 as documented, field for field: data
    /// written by an older build keeps reading back.
    #[test]
    fn event_data_is_stored_in_version_1_of_its_shape() {
        let ids =
            |n: u8| Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0000 | u128::from(n));
        let plus2 = UtcOffset::from_hms(2, 0, 0).expect("offset");
        let task = Task {
            id: TaskId(ids(1)),
            project_id: ProjectId(ids(2)),
            created_by: UserId(ids(3)),
            assignee_id: Some(UserId(ids(4))),
            title: Title::parse("Write \"the\" log 🦀").expect("title"),
            description: Some(
                domain::task::Description::parse("Line\nline".into()).expect("description"),
            ),
            status: Status::Done,
            priority: Priority::Urgent,
            due_date: Some(at(1_800_000_000_000_001).to_offset(plus2)),
            created_at: at(1_790_000_000_123_456),
            updated_at: at(1_790_000_001_000_000),
            completed_at: Some(at(1_790_000_001_000_000)),
            version: 3,
        };
        let task_json = json!({"v": 1, "task": {
            "id": "00000000-0000-7000-8000-000000000001",
            "project_id": "00000000-0000-7000-8000-000000000002",
            "created_by": "00000000-0000-7000-8000-000000000003",
            "assignee_id": "00000000-0000-7000-8000-000000000004",
            "title": "Write \"the\" log 🦀",
            "description": "Line\nline",
            "status": "done",
            "priority": "urgent",
            "due_date": "2027-01-15T08:00:00.000001Z",
            "created_at": "2026-09-21T14:13:20.123456Z",
            "updated_at": "2026-09-21T14:13:21Z",
            "completed_at": "2026-09-21T14:13:21Z",
            "version": 3,
        }});
        let bare_task = Task {
            assignee_id: None,
            description: None,
            status: Status::Todo,
            priority: Priority::Low,
            due_date: None,
            completed_at: None,
            ..task.clone()
        };
        let mut bare_task_json = task_json.clone();
        for (field, value) in [
            ("assignee_id", json!(null)),
            ("description", json!(null)),
            ("status", json!("todo")),
            ("priority", json!("low")),
            ("due_date", json!(null)),
            ("completed_at", json!(null)),
        ] {
            bare_task_json["task"][field] = value;
        }
        let project = Project {
            id: ProjectId(ids(2)),
            name: ProjectName::parse("Log").expect("name"),
            description: None,
            archived: true,
            personal: false,
            owner_id: UserId(ids(3)),
            created_at: at(1_790_000_000_000_000),
            updated_at: at(1_790_000_000_000_010),
            version: 2,
        };
        let project_json = json!({"v": 1, "project": {
            "id": "00000000-0000-7000-8000-000000000002",
            "name": "Log",
            "description": null,
            "archived": true,
            "personal": false,
            "owner_id": "00000000-0000-7000-8000-000000000003",
            "created_at": "2026-09-21T14:13:20Z",
            "updated_at": "2026-09-21T14:13:20.00001Z",
            "version": 2,
        }});
        let member = MemberDetails {
            member: Member {
                project_id: ProjectId(ids(2)),
                user_id: UserId(ids(4)),
                role: ProjectRole::Viewer,
                joined_at: at(1_790_000_000_000_000),
            },
            email: Email::parse("Bob@Example.com").expect("e-mail"),
            name: UserName::parse("Bob").expect("name"),
        };
        let member_json = json!({"v": 1, "member": {
            "project_id": "00000000-0000-7000-8000-000000000002",
            "user_id": "00000000-0000-7000-8000-000000000004",
            "role": "viewer",
            "joined_at": "2026-09-21T14:13:20Z",
            "email": member.email.as_str(),
            "name": "Bob",
        }});
        for (data, stored) in [
            (EventData::Task(task), task_json),
            (EventData::Task(bare_task), bare_task_json),
            (EventData::Project(project), project_json),
            (EventData::Member(member), member_json),
        ] {
            assert_eq!(stored::encode(&data).expect("encode"), stored);
            assert_eq!(stored::decode(stored).expect("decode"), data);
        }
        for corrupt in [
            json!({"task": {}}),
            json!({"v": 2, "project": {}}),
            json!({"v": 1}),
            json!({"v": 1, "comment": {}}),
            json!({"v": 1, "task": {}, "project": {}}),
            json!({"v": 1, "member": {"role": "viewer"}}),
        ] {
            assert!(stored::decode(corrupt.clone()).is_err(), "{corrupt}");
        }
    }

    /// Events at `at` (minutes ago) appended to `PROJECT`-like project
    /// `project`, numbered on from its counter (written by hand: retention
    /// needs events with times in every order).
    async fn seed(conn: &mut AsyncPgConnection, project: Uuid, minutes_ago: &[i64]) {
        let ago: Vec<String> = minutes_ago.iter().map(ToString::to_string).collect();
        conn.batch_execute(&format!(
            "INSERT INTO projects (id, name, name_key, archived, personal, owner_id, created_at,
                                   updated_at, version)
             VALUES ('{project}', 'P', 'p', false, false, {ACTOR}, now(), now(), 1)
             ON CONFLICT DO NOTHING;
             WITH counter AS (
                 UPDATE projects SET event_seq = event_seq + {n} WHERE id = '{project}'
                 RETURNING event_seq - {n} AS head
             )
             INSERT INTO events (project_id, seq, type, entity_id, actor_id, at, data, changes)
             SELECT '{project}', head + i, 'task.deleted', gen_random_uuid(), {ACTOR},
                    now() - ago * interval '1 minute', NULL, '{{}}'
             FROM counter, unnest(ARRAY[{ago}]::bigint[]) WITH ORDINALITY AS a(ago, i)",
            n = minutes_ago.len(),
            ago = ago.join(","),
        ))
        .await
        .expect("seed");
    }

    async fn kept(handle: &mut PgHandle, project: Uuid) -> (Option<LogBounds>, Vec<i64>) {
        let project = ProjectId(project);
        let bounds = handle.log_bounds(project).await.expect("bounds");
        let seqs = handle
            .events(
                project,
                &EventQuery {
                    after: 0,
                    limit: 10_000,
                },
            )
            .await
            .expect("events")
            .iter()
            .map(|e| e.seq)
            .collect();
        (bounds, seqs)
    }

    /// Retention removes each project's oldest events up to its first one
    /// to keep: an older event after a newer one waits for it, so what
    /// remains is always the log's newest run, without a hole; a log longer
    /// than a chunk, or than a window, is pruned whole; a deleted project's
    /// events go too.
    #[tokio::test]
    async fn retention_prunes_each_logs_oldest_run() {
        let (db, mut conn) = with_actor().await;
        let (jumbled, long, deleted) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        // An hour is the cutoff: seq 4 is old, but seq 3 is not.
        seed(&mut conn, jumbled, &[90, 120, 30, 61, 10]).await;
        // Longer than a window of expired events and many chunks, its
        // times ticking every thousand events.
        let n = EXPIRED_WINDOW * 2 + 5;
        let many: Vec<i64> = (0..n).map(|i| 100 + (n - i) / 1000).collect();
        seed(&mut conn, long, &many).await;
        seed(&mut conn, long, &[5]).await;
        seed(&mut conn, deleted, &[70, 65]).await;
        conn.batch_execute(&format!("DELETE FROM projects WHERE id = '{deleted}'"))
            .await
            .expect("delete a project");
        let store = PgStore::new(&db.url, &PgOptions::default());
        let mut handle = store.connection().await.expect("connection");
        let before = OffsetDateTime::now_utc() - Duration::hours(1);
        let pruned = handle.prune_events(before).await.expect("prune");
        assert_eq!(pruned, 2 + many.len() as u64 + 2);
        let head = |head, oldest| Some(LogBounds { head, oldest });
        assert_eq!(
            kept(&mut handle, jumbled).await,
            (head(5, Some(3)), vec![3, 4, 5])
        );
        let last = many.len() as i64 + 1;
        assert_eq!(
            kept(&mut handle, long).await,
            (head(last, Some(last)), vec![last])
        );
        assert_eq!(kept(&mut handle, deleted).await, (None, vec![]));
        assert_eq!(
            handle.prune_events(before).await.expect("prune"),
            0,
            "nothing left to prune"
        );
        // Once its newer predecessor is old enough, seq 4 goes too.
        let later = OffsetDateTime::now_utc() - Duration::minutes(20);
        assert_eq!(handle.prune_events(later).await.expect("prune"), 2);
        assert_eq!(
            kept(&mut handle, jumbled).await,
            (head(5, Some(5)), vec![5])
        );
    }

    /// Several instances pruning at once delete each event once between
    /// them, and leave every log without a hole.
    #[tokio::test]
    async fn concurrent_prunings_delete_each_event_once() {
        let (db, mut conn) = with_actor().await;
        let projects: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let mut ages: Vec<i64> = vec![100; PRUNE_CHUNK + PRUNE_CHUNK / 2];
        ages.extend([30, 90, 10]);
        for project in &projects {
            seed(&mut conn, *project, &ages).await;
        }
        let store = PgStore::new(&db.url, &PgOptions::default());
        let before = OffsetDateTime::now_utc() - Duration::hours(1);
        let prune = |store: PgStore| async move {
            let mut handle = store.connection().await.expect("connection");
            handle.prune_events(before).await.expect("prune")
        };
        let counts =
            domain::contract::join_all((0..3).map(|_| prune(store.clone())).collect()).await;
        let old = PRUNE_CHUNK + PRUNE_CHUNK / 2;
        assert_eq!(counts.iter().sum::<u64>(), (old * projects.len()) as u64);
        let mut handle = store.connection().await.expect("connection");
        let head = ages.len() as i64;
        for project in projects {
            let first = old as i64 + 1;
            assert_eq!(
                kept(&mut handle, project).await,
                (
                    Some(LogBounds {
                        head,
                        oldest: Some(first)
                    }),
                    (first..=head).collect()
                )
            );
        }
    }

    #[tokio::test]
    async fn appending_to_no_project_fails_and_leaves_nothing() {
        let (db, _conn) = with_actor().await;
        let store = PgStore::new(&db.url, &PgOptions::default());
        let mut tx = store.begin().await.expect("begin");
        let project = ProjectId(uuid(PROJECT));
        let event = domain::contract::store::event_at(
            UserId(uuid(ACTOR)),
            project.0,
            OffsetDateTime::now_utc(),
        );
        let appended = tx.append(project, &[event]).await;
        assert!(
            matches!(appended, Err(PortError::Unexpected { .. })),
            "{appended:?}"
        );
        drop(tx);
        let mut handle = store.connection().await.expect("connection");
        assert_eq!(kept(&mut handle, project.0).await, (None, vec![]));
    }

    /// A page of the log, first or after a seq, is one range of the primary
    /// key read in order; retention finds its projects in `events_by_at`
    /// alone and prunes each along the primary key.
    #[tokio::test]
    async fn the_logs_reads_and_retention_are_index_ranges_on_a_large_log() {
        let (_db, mut conn) = with_actor().await;
        // 100 000 events in 100 projects, a minute apart, the oldest
        // first; 1 000 old enough to prune.
        conn.batch_execute(&format!(
            "INSERT INTO events (project_id, seq, type, entity_id, actor_id, at, data, changes)
             SELECT ('00000000-0000-7000-9000-' || lpad(p::text, 12, '0'))::uuid, s,
                    'task.deleted', gen_random_uuid(), {ACTOR},
                    now() - (1000 - s) * interval '1 minute', NULL, '{{}}'
             FROM generate_series(1, 100) p, generate_series(1, 1000) s"
        ))
        .await
        .expect("seed");
        // Index-only scans need the visibility map.
        conn.batch_execute("VACUUM ANALYZE events")
            .await
            .expect("vacuum");
        let project = ProjectId(uuid(PROJECT));
        let plan = explain(&mut conn, bounds_query(project)).await;
        assert!(plan.contains("Index Scan using projects_pkey"), "{plan}");
        assert!(plan.contains("Index Only Scan using events_pkey"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        for after in [0, 500] {
            let query = EventQuery { after, limit: 50 };
            let plan = explain(&mut conn, events_query(project, &query)).await;
            assert!(plan.contains("Index Scan using events_pkey"), "{plan}");
            assert!(!plan.contains("Seq Scan"), "{plan}");
            assert!(!plan.contains("Sort"), "read in order:\n{plan}");
            let bound = plan
                .lines()
                .find(|l| l.contains("Index Cond"))
                .is_some_and(|l| l.contains("seq >"));
            assert!(bound, "the seq is an index bound:\n{plan}");
        }
        let before = OffsetDateTime::now_utc() - Duration::minutes(990);
        let cursor = (before - Duration::minutes(5), uuid(PROJECT));
        for after in [None, Some(cursor)] {
            let plan = explain(&mut conn, expired_query(before, after)).await;
            assert!(
                plan.contains("Index Only Scan using events_by_at"),
                "{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{plan}");
            assert!(!plan.contains("Sort"), "read in order:\n{plan}");
            if after.is_some() {
                let bound = plan
                    .lines()
                    .find(|l| l.contains("Index Cond"))
                    .is_some_and(|l| l.contains("ROW("));
                assert!(bound, "the cursor is an index bound:\n{plan}");
            }
        }
        let plan = explain(&mut conn, prune_chunk_query(project.0, before)).await;
        assert!(plan.contains("events_pkey"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
