//! What a change records besides itself: its audit entries (who changed
//! what, from and to) and its events (the entity's new state, numbered in
//! its project's log). A use case notes each changed entity in a
//! [`Journal`] and writes it through the change's transaction, so the
//! change, its entries and its events commit together or not at all.

use crate::audit::{Actor, AuditAction, AuditEntry, Changes, Value};
use crate::error::PortError;
use crate::event::{Event, EventData, EventType, NewEvent};
use crate::ports::{Audit, Events};
use crate::project::port::MemberDetails;
use crate::project::{Member, Project, ProjectId, ProjectRole};
use crate::task::Task;
use crate::user::User;

#[derive(Debug)]
pub(crate) struct Journal {
    actor: Actor,
    entries: Vec<AuditEntry>,
    events: Vec<(ProjectId, NewEvent)>,
}

impl Journal {
    pub(crate) fn new(actor: Actor) -> Self {
        Self {
            actor,
            entries: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn actor(&self) -> &Actor {
        &self.actor
    }

    fn entry(
        &mut self,
        action: AuditAction,
        id: uuid::Uuid,
        project: Option<ProjectId>,
        changes: Changes,
    ) {
        let entry = self.actor.entry(action, id, project, changes);
        self.entries.push(entry);
    }

    fn event(
        &mut self,
        project: ProjectId,
        kind: EventType,
        entity_id: uuid::Uuid,
        data: Option<EventData>,
        changes: Vec<String>,
    ) {
        self.events.push((
            project,
            NewEvent {
                kind,
                entity_id,
                actor_id: self.actor.user_id,
                at: self.actor.at,
                data,
                changes,
                request_id: self.actor.request_id,
                client_mutation_id: self.actor.client_mutation_id,
            },
        ));
    }

    pub(crate) fn task_created(&mut self, task: &Task) {
        let changes = Changes::between(None, Some(task.audited_fields()));
        self.entry(
            AuditAction::TaskCreated,
            task.id.0,
            Some(task.project_id),
            changes,
        );
        self.task_arrived(task);
    }

    fn task_arrived(&mut self, task: &Task) {
        let data = Some(EventData::Task(task.clone()));
        self.event(
            task.project_id,
            EventType::TaskCreated,
            task.id.0,
            data,
            Vec::new(),
        );
    }

    /// A change of `before` into `after`; a move (another project) is
    /// audited as an update of `projectId` in the project it moved to, and
    /// logged as a deletion in the one it left and a creation in the other.
    pub(crate) fn task_updated(&mut self, before: &Task, after: &Task) {
        let changes = Changes::between(Some(before.audited_fields()), Some(after.audited_fields()));
        let mut fields: Vec<String> = changes.0.keys().cloned().collect();
        if before.completed_at != after.completed_at {
            fields.push("completedAt".to_owned());
            fields.sort();
        }
        self.entry(
            AuditAction::TaskUpdated,
            after.id.0,
            Some(after.project_id),
            changes,
        );
        if before.project_id == after.project_id {
            let data = Some(EventData::Task(after.clone()));
            self.event(
                after.project_id,
                EventType::TaskUpdated,
                after.id.0,
                data,
                fields,
            );
        } else {
            self.event(
                before.project_id,
                EventType::TaskDeleted,
                before.id.0,
                None,
                Vec::new(),
            );
            self.task_arrived(after);
        }
    }

    pub(crate) fn task_deleted(&mut self, task: &Task) {
        let changes = Changes::between(Some(task.audited_fields()), None);
        self.entry(
            AuditAction::TaskDeleted,
            task.id.0,
            Some(task.project_id),
            changes,
        );
        self.event(
            task.project_id,
            EventType::TaskDeleted,
            task.id.0,
            None,
            Vec::new(),
        );
    }

    pub(crate) fn project_created(&mut self, project: &Project) {
        let changes = Changes::between(None, Some(project.audited_fields()));
        self.entry(
            AuditAction::ProjectCreated,
            project.id.0,
            Some(project.id),
            changes,
        );
        let data = Some(EventData::Project(project.clone()));
        self.event(
            project.id,
            EventType::ProjectCreated,
            project.id.0,
            data,
            Vec::new(),
        );
    }

    /// A rename, a new description, archiving or unarchiving, or a new
    /// owner: `action` says which, as the audit trail names it.
    pub(crate) fn project_updated(
        &mut self,
        action: AuditAction,
        before: &Project,
        after: &Project,
    ) {
        let changes = Changes::between(Some(before.audited_fields()), Some(after.audited_fields()));
        let fields = changes.0.keys().cloned().collect();
        self.entry(action, after.id.0, Some(after.id), changes);
        let kind = match action {
            AuditAction::ProjectArchived => EventType::ProjectArchived,
            AuditAction::ProjectUnarchived => EventType::ProjectUnarchived,
            _ => EventType::ProjectUpdated,
        };
        let data = Some(EventData::Project(after.clone()));
        self.event(after.id, kind, after.id.0, data, fields);
    }

    pub(crate) fn project_deleted(&mut self, project: &Project) {
        let changes = Changes::between(Some(project.audited_fields()), None);
        self.entry(
            AuditAction::ProjectDeleted,
            project.id.0,
            Some(project.id),
            changes,
        );
        self.event(
            project.id,
            EventType::ProjectDeleted,
            project.id.0,
            None,
            Vec::new(),
        );
    }

    pub(crate) fn member_added(&mut self, member: &MemberDetails) {
        let m = &member.member;
        let changes = Changes::one("role", Value::Null, Value::text(m.role.as_str()));
        self.entry(
            AuditAction::MemberAdded,
            m.user_id.0,
            Some(m.project_id),
            changes,
        );
        let data = Some(EventData::Member(member.clone()));
        self.event(
            m.project_id,
            EventType::MemberAdded,
            m.user_id.0,
            data,
            Vec::new(),
        );
    }

    pub(crate) fn member_role_changed(&mut self, from: ProjectRole, member: &MemberDetails) {
        let m = &member.member;
        let changes = Changes::one(
            "role",
            Value::text(from.as_str()),
            Value::text(m.role.as_str()),
        );
        self.entry(
            AuditAction::MemberRoleChanged,
            m.user_id.0,
            Some(m.project_id),
            changes,
        );
        let data = Some(EventData::Member(member.clone()));
        let fields = vec!["role".to_owned()];
        self.event(
            m.project_id,
            EventType::MemberUpdated,
            m.user_id.0,
            data,
            fields,
        );
    }

    /// A member removed by someone else, or who left (`left`).
    pub(crate) fn member_removed(&mut self, member: &Member, left: bool) {
        let action = if left {
            AuditAction::MemberLeft
        } else {
            AuditAction::MemberRemoved
        };
        let changes = Changes::one("role", Value::text(member.role.as_str()), Value::Null);
        self.entry(action, member.user_id.0, Some(member.project_id), changes);
        let (project, user) = (member.project_id, member.user_id.0);
        self.event(project, EventType::MemberRemoved, user, None, Vec::new());
    }

    /// A user's role or status: audited only (users belong to no
    /// project's log).
    pub(crate) fn user_changed(&mut self, action: AuditAction, before: &User, after: &User) {
        let changes = Changes::between(Some(before.audited_fields()), Some(after.audited_fields()));
        self.entry(action, after.id.0, None, changes);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.events.is_empty()
    }

    /// Records the entries and appends the events (each project's in the
    /// order noted) through `tx`; answers the events as numbered.
    pub(crate) async fn write<T: Audit + Events>(
        self,
        tx: &mut T,
    ) -> Result<Vec<Event>, PortError> {
        if !self.entries.is_empty() {
            tx.record(&self.entries).await?;
        }
        let mut projects: Vec<ProjectId> = Vec::new();
        for (project, _) in &self.events {
            if !projects.contains(project) {
                projects.push(*project);
            }
        }
        let mut appended = Vec::with_capacity(self.events.len());
        for project in projects {
            let events: Vec<NewEvent> = self
                .events
                .iter()
                .filter(|(p, _)| *p == project)
                .map(|(_, e)| e.clone())
                .collect();
            appended.extend(tx.append(project, &events).await?);
        }
        Ok(appended)
    }
}
