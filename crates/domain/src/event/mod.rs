//! The per-project event log: every change of a project's content appends
//! one event per changed entity, in the change's transaction, numbered by
//! `seq` (per project, from 1, gapless in commit order: the store allocates
//! it under the project's row lock, which every change takes first). Clients
//! catch up from the log by `seq`; live delivery only makes that fast. Its
//! port in [`port`], its use cases in [`use_cases`].

pub mod bus;
pub mod port;
pub mod use_cases;

use time::OffsetDateTime;

use crate::audit::RequestId;
use crate::project::port::MemberDetails;
use crate::project::{Project, ProjectId};
use crate::task::Task;
use crate::user::UserId;

/// What happened to which kind of entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    ProjectCreated,
    ProjectUpdated,
    ProjectArchived,
    ProjectUnarchived,
    ProjectDeleted,
    MemberAdded,
    MemberUpdated,
    MemberRemoved,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::TaskCreated,
        EventType::TaskUpdated,
        EventType::TaskDeleted,
        EventType::ProjectCreated,
        EventType::ProjectUpdated,
        EventType::ProjectArchived,
        EventType::ProjectUnarchived,
        EventType::ProjectDeleted,
        EventType::MemberAdded,
        EventType::MemberUpdated,
        EventType::MemberRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TaskCreated => "task.created",
            EventType::TaskUpdated => "task.updated",
            EventType::TaskDeleted => "task.deleted",
            EventType::ProjectCreated => "project.created",
            EventType::ProjectUpdated => "project.updated",
            EventType::ProjectArchived => "project.archived",
            EventType::ProjectUnarchived => "project.unarchived",
            EventType::ProjectDeleted => "project.deleted",
            EventType::MemberAdded => "member.added",
            EventType::MemberUpdated => "member.updated",
            EventType::MemberRemoved => "member.removed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// An id a client gives its own change (`X-Client-Mutation-Id`), echoed in
/// the change's events so it can recognise them: the same rule as request
/// ids (1–64 of `[A-Za-z0-9._-]`).
pub type ClientMutationId = RequestId;

/// The entity's state after the change, as the API renders it (`None` in
/// an event: a deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    Task(Task),
    /// Without the caller-specific role.
    Project(Project),
    Member(MemberDetails),
}

/// An event before the log numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventType,
    /// The task's or project's id; a member's user id.
    pub entity_id: uuid::Uuid,
    pub actor_id: UserId,
    pub at: OffsetDateTime,
    pub data: Option<EventData>,
    /// For updates: the fields whose values changed (API names), not
    /// counting `version` and `updatedAt`.
    pub changes: Vec<String>,
    pub request_id: Option<RequestId>,
    pub client_mutation_id: Option<ClientMutationId>,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub project_id: ProjectId,
    /// 1, 2, 3, … per project, in commit order, without gaps.
    pub seq: i64,
    pub event: NewEvent,
}

/// Events of one project after `after` (a seq), in seq order, `limit + 1`
/// at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    pub after: i64,
    pub limit: u32,
}

/// Where a project's log stands: its head (the last seq given, 0 before
/// any) and the oldest seq still kept (`None` when none is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    pub head: i64,
    pub oldest: Option<i64>,
}

impl LogBounds {
    /// Whether every event after `since` is still in the log: retention
    /// has pruned none of them.
    pub fn covers(&self, since: i64) -> bool {
        since >= self.head || self.oldest.is_some_and(|oldest| oldest <= since + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn a_log_covers_what_retention_kept() {
        let log = LogBounds {
            head: 10,
            oldest: Some(4),
        };
        assert!(log.covers(3) && log.covers(9) && log.covers(10));
        assert!(!log.covers(2), "event 3 was pruned");
        let pruned = LogBounds {
            head: 10,
            oldest: None,
        };
        assert!(pruned.covers(10) && !pruned.covers(9));
        let empty = LogBounds {
            head: 0,
            oldest: None,
        };
        assert!(empty.covers(0));
    }
}
