//! The audit trail: who changed what, when, and from which request. Every
//! use case that changes a project, a membership, a task or a user's status
//! records its entries through the same transaction as the change, so a
//! change and its entry commit together or not at all. Entries are never
//! changed or removed through the API (a deleted task's entries stay
//! readable in its project's activity). Its port in [`port`], its use
//! cases in [`use_cases`].

pub mod port;
pub mod use_cases;

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::project::ProjectId;
use crate::user::UserId;

uuid_id! {
    /// An audit entry's id (UUIDv7).
    AuditId
}

/// The id of the request that made a change, as the HTTP layer names it:
/// 1–64 ASCII letters, digits, `.`, `_` or `-`. Kept inline, so a
/// [`crate::Principal`] that carries it stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    len: u8,
    bytes: [u8; RequestId::MAX_LEN],
}

impl RequestId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return None;
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..raw.len()].copy_from_slice(raw.as_bytes());
        Some(Self {
            len: raw.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({:?})", self.as_str())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    ProjectCreated,
    ProjectUpdated,
    ProjectArchived,
    ProjectUnarchived,
    ProjectDeleted,
    ProjectTransferred,
    MemberAdded,
    MemberRoleChanged,
    MemberRemoved,
    MemberLeft,
    TaskCreated,
    /// Moving a task is an update of its `projectId`.
    TaskUpdated,
    TaskDeleted,
    UserDisabled,
    UserEnabled,
    /// A system role change (`user` ↔ `admin`).
    UserRoleChanged,
}

impl AuditAction {
    pub const ALL: [AuditAction; 16] = [
        AuditAction::ProjectCreated,
        AuditAction::ProjectUpdated,
        AuditAction::ProjectArchived,
        AuditAction::ProjectUnarchived,
        AuditAction::ProjectDeleted,
        AuditAction::ProjectTransferred,
        AuditAction::MemberAdded,
        AuditAction::MemberRoleChanged,
        AuditAction::MemberRemoved,
        AuditAction::MemberLeft,
        AuditAction::TaskCreated,
        AuditAction::TaskUpdated,
        AuditAction::TaskDeleted,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::UserRoleChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ProjectCreated => "project.created",
            AuditAction::ProjectUpdated => "project.updated",
            AuditAction::ProjectArchived => "project.archived",
            AuditAction::ProjectUnarchived => "project.unarchived",
            AuditAction::ProjectDeleted => "project.deleted",
            AuditAction::ProjectTransferred => "project.transferred",
            AuditAction::MemberAdded => "member.added",
            AuditAction::MemberRoleChanged => "member.role_changed",
            AuditAction::MemberRemoved => "member.removed",
            AuditAction::MemberLeft => "member.left",
            AuditAction::TaskCreated => "task.created",
            AuditAction::TaskUpdated => "task.updated",
            AuditAction::TaskDeleted => "task.deleted",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::UserEnabled => "user.enabled",
            AuditAction::UserRoleChanged => "user.role_changed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// The kind of entity the action is about.
    pub fn entity_type(self) -> EntityType {
        use AuditAction::*;
        match self {
            ProjectCreated | ProjectUpdated | ProjectArchived | ProjectUnarchived
            | ProjectDeleted | ProjectTransferred => EntityType::Project,
            MemberAdded | MemberRoleChanged | MemberRemoved | MemberLeft => EntityType::Member,
            TaskCreated | TaskUpdated | TaskDeleted => EntityType::Task,
            UserDisabled | UserEnabled | UserRoleChanged => EntityType::User,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    Project,
    /// A membership; its entity id is the member's user id.
    Member,
    Task,
    User,
}

impl EntityType {
    pub const ALL: [EntityType; 4] = [
        EntityType::Project,
        EntityType::Member,
        EntityType::Task,
        EntityType::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Project => "project",
            EntityType::Member => "member",
            EntityType::Task => "task",
            EntityType::User => "user",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == raw)
    }
}

/// A field's value as an entry records it: what the API shows for it
/// (ids and times as their strings), so the trail reads like the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Self {
        Value::Text(s.into())
    }

    pub fn id(id: impl std::fmt::Display) -> Self {
        Value::Text(id.to_string())
    }

    /// RFC 3339, as the API renders times.
    pub fn time(t: OffsetDateTime) -> Self {
        t.format(&Rfc3339).map_or(Value::Null, Value::Text)
    }

    pub fn optional<T>(value: Option<T>, f: impl FnOnce(T) -> Value) -> Self {
        value.map_or(Value::Null, f)
    }
}

/// One field's change: `from` is null on creation, `to` on deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from: Value,
    pub to: Value,
}

/// Changed fields by their API name (camelCase).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes(pub BTreeMap<String, Change>);

impl Changes {
    /// The fields whose values differ between `before` and `after` (each a
    /// list of `(field, value)` in the same field order; a missing side is
    /// all nulls: a creation or a deletion).
    pub fn between(before: Option<Vec<(&str, Value)>>, after: Option<Vec<(&str, Value)>>) -> Self {
        let (before, after) = match (before, after) {
            (Some(b), Some(a)) => (b, a),
            (Some(b), None) => {
                let a = b.iter().map(|(f, _)| (*f, Value::Null)).collect();
                (b, a)
            }
            (None, Some(a)) => {
                let b = a.iter().map(|(f, _)| (*f, Value::Null)).collect();
                (b, a)
            }
            (None, None) => return Self::default(),
        };
        Self(
            before
                .into_iter()
                .zip(after)
                .filter(|((_, from), (_, to))| from != to)
                .map(|((field, from), (_, to))| (field.to_owned(), Change { from, to }))
                .collect(),
        )
    }

    pub fn one(field: &str, from: Value, to: Value) -> Self {
        Self(BTreeMap::from([(field.to_owned(), Change { from, to })]))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: OffsetDateTime,
    pub actor_id: UserId,
    pub action: AuditAction,
    pub entity_type: EntityType,
    /// A task's, project's or user's id; a member's user id.
    pub entity_id: uuid::Uuid,
    /// The project the entity is in; `None` for users.
    pub project_id: Option<ProjectId>,
    pub changes: Changes,
    pub request_id: Option<RequestId>,
}

/// Who is acting, when, and in which request: what every entry of one use
/// case shares.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: UserId,
    pub request_id: Option<RequestId>,
    /// The client's own id for the change (its events echo it).
    pub client_mutation_id: Option<RequestId>,
    pub at: OffsetDateTime,
}

impl Actor {
    pub fn entry(
        &self,
        action: AuditAction,
        entity_id: uuid::Uuid,
        project_id: Option<ProjectId>,
        changes: Changes,
    ) -> AuditEntry {
        AuditEntry {
            id: AuditId::generate(),
            at: self.at,
            actor_id: self.user_id,
            action,
            entity_type: action.entity_type(),
            entity_id,
            project_id,
            changes,
            request_id: self.request_id,
        }
    }
}

/// A page of entries, newest first: by `at` descending, then id
/// descending; after `after` (the last entry of the previous page),
/// `limit + 1` entries at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub after: Option<(OffsetDateTime, AuditId)>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_entity_types_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        for entity in EntityType::ALL {
            assert_eq!(EntityType::parse(entity.as_str()), Some(entity));
        }
        assert_eq!(AuditAction::MemberLeft.entity_type(), EntityType::Member);
    }

    #[test]
    fn changes_keep_only_differing_fields() {
        let before = vec![("title", Value::text("a")), ("status", Value::text("todo"))];
        let after = vec![("title", Value::text("b")), ("status", Value::text("todo"))];
        let changes = Changes::between(Some(before.clone()), Some(after));
        assert_eq!(
            changes,
            Changes::one("title", Value::text("a"), Value::text("b"))
        );
        let deleted = Changes::between(Some(before), None);
        assert_eq!(deleted.0.len(), 2);
        assert!(deleted.0.values().all(|c| c.to == Value::Null));
        let created = Changes::between(
            None,
            Some(vec![("title", Value::text("a")), ("dueDate", Value::Null)]),
        );
        // A null that stays null is no change.
        assert_eq!(
            created,
            Changes::one("title", Value::Null, Value::text("a"))
        );
    }

    #[test]
    fn request_ids_are_checked() {
        assert_eq!(
            RequestId::parse("req-1.a_B")
                .map(|r| r.to_string())
                .as_deref(),
            Some("req-1.a_B")
        );
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse(&"x".repeat(65)).is_none());
        assert!(RequestId::parse(&"x".repeat(64)).is_some());
        assert!(RequestId::parse("a b").is_none());
        assert!(RequestId::parse("é").is_none());
    }
}
