//! Events of a project's log on the wire: the entity's new state as the
//! REST API renders it.

use domain::{Event, EventData, EventType};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::TaskResponse;
use super::projects::{MemberResponse, ProjectData};

/// One event of a project's log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    pub project_id: Uuid,
    /// 1, 2, 3, … per project, in commit order, without gaps.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[serde(rename = "type")]
    #[schema(schema_with = super::schemas::event_type)]
    pub kind: &'static str,
    /// The task's or project's id; for a member, their user id.
    pub entity_id: Uuid,
    pub actor_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The entity after the change (a task, a project without the
    /// caller's role, or a member); `null` for a deletion.
    #[schema(required = true)]
    pub data: Option<EventEntity>,
    /// For updates: the fields whose values changed (not `version` nor
    /// `updatedAt`); empty otherwise.
    pub changes: Vec<String>,
    /// The `X-Request-Id` of the request that made the change.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// The request's `X-Client-Mutation-Id`, when it sent one.
    #[schema(required = true)]
    pub client_mutation_id: Option<String>,
}

/// The entity an event is about.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventEntity {
    Task(TaskResponse),
    Project(ProjectData),
    Member(MemberResponse),
}

fn name(kind: EventType) -> &'static str {
    kind.as_str()
}

impl From<&Event> for EventResponse {
    fn from(e: &Event) -> Self {
        let n = &e.event;
        Self {
            project_id: e.project_id.0,
            seq: e.seq,
            kind: name(n.kind),
            entity_id: n.entity_id,
            actor_id: n.actor_id.0,
            at: n.at,
            data: n.data.as_ref().map(|data| match data {
                EventData::Task(task) => EventEntity::Task(TaskResponse::from(task)),
                EventData::Project(project) => EventEntity::Project(ProjectData::from(project)),
                EventData::Member(member) => EventEntity::Member(MemberResponse::from(member)),
            }),
            changes: n.changes.clone(),
            request_id: n.request_id.map(|r| r.as_str().to_owned()),
            client_mutation_id: n.client_mutation_id.map(|r| r.as_str().to_owned()),
        }
    }
}
