//! The projects context's use cases: projects, their members and their
//! activity. Each asks the policy ([`authorize`]) before anything else,
//! then checks the project's state (archived, personal); each change is
//! written with its audit entries in one transaction.

use time::OffsetDateTime;

use crate::app::TaskFlow;
use crate::audit::{Actor, AuditAction};
use crate::auth::Principal;
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::journal::Journal;
use crate::ports::{
    Clock, EventBus, InsertMemberError, MemberDetails, MemberQuery, Ports, ProjectQuery, Projects,
    Store, Tasks, Transaction, Users,
};
use crate::project::policy::{Action, Denied, authorize};
use crate::project::{Member, Project, ProjectDescription, ProjectId, ProjectName, ProjectRole};
use crate::task::{Page, TaskPatch};
use crate::user::{Email, UserId};
use crate::version::IfMatch;

/// The most rows one page of any list holds.
pub const MAX_PAGE: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("No such project.")]
    NotFound,
    #[error("No such member of this project.")]
    MemberNotFound,
    #[error("Your role in this project does not allow this.")]
    Forbidden,
    #[error("{0}")]
    Conflict(&'static str),
    #[error(
        "The project has changed since the version given in If-Match: it is at version {current}."
    )]
    PreconditionFailed { current: i64 },
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for ProjectError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::NotFound | Self::MemberNotFound => ErrorKind::NotFound,
            Self::Forbidden => ErrorKind::Forbidden,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::PreconditionFailed { current } => ErrorKind::PreconditionFailed {
                current_version: *current,
            },
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

impl From<Denied> for ProjectError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => Self::NotFound,
            Denied::Forbidden => Self::Forbidden,
        }
    }
}

pub(crate) const ARCHIVED: &str =
    "The project is archived and read-only: its owner must unarchive it first.";
const INBOX_SHARED: &str = "The Inbox is personal: it cannot be shared.";
const INBOX_ARCHIVED: &str = "The Inbox cannot be archived.";
const INBOX_TRANSFERRED: &str = "The Inbox cannot be transferred.";
const INBOX_DELETED: &str = "The Inbox cannot be deleted.";
const OWNER_LEAVES: &str = "The owner cannot leave the project: transfer ownership first.";
const OWNER_ROLE: &str = "The owner's role changes only by transferring ownership.";
const ALREADY_MEMBER: &str = "That user is already a member of the project.";

/// A project as its caller sees it: with their role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectView {
    pub project: Project,
    pub role: ProjectRole,
}

/// What a client sends to create a project; unvalidated.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub description: Option<String>,
}

/// A partial change of a project: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub archived: Option<bool>,
}

/// Who to add: by e-mail address or by id.
#[derive(Debug, Clone)]
pub enum MemberRef {
    Email(String),
    Id(UserId),
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub user: MemberRef,
    pub role: ProjectRole,
}

/// The page size of a list, checked: 1–[`MAX_PAGE`].
pub(crate) fn check_limit(limit: u32) -> Result<(), ValidationErrors> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

/// Only admin, member and viewer are given; ownership moves by transfer.
fn assignable(role: ProjectRole) -> Result<ProjectRole, ProjectError> {
    if role == ProjectRole::Owner {
        Err(ProjectError::Invalid(ValidationErrors::single(
            "role",
            "must be admin, member or viewer (ownership moves by transfer)",
        )))
    } else {
        Ok(role)
    }
}

/// The caller's role in `project`, or `None` when they are not a member.
pub(crate) async fn role_in<C: Projects>(
    conn: &mut C,
    project: ProjectId,
    user: UserId,
) -> Result<Option<ProjectRole>, PortError> {
    Ok(conn.member(project, user).await?.map(|m| m.role))
}

/// The project, locked until the transaction ends, and the caller's role,
/// if the policy lets them take `action` (a missing project and a
/// non-member alike: [`Denied::NotFound`]). Locking the project row orders
/// every change in the project: its members, its state, its tasks.
pub(crate) async fn lock_authorized<C: Projects>(
    tx: &mut C,
    id: ProjectId,
    user: UserId,
    action: Action,
) -> Result<Result<(Project, ProjectRole), Denied>, PortError> {
    // A non-member is turned away before taking the lock: they may not
    // hold up the project's writers (nor time them).
    if role_in(tx, id, user).await?.is_none() {
        return Ok(Err(Denied::NotFound));
    }
    let Some(project) = tx.project_for_update(id).await? else {
        return Ok(Err(Denied::NotFound));
    };
    // Again under the lock: the membership may have changed meanwhile.
    let role = role_in(tx, id, user).await?;
    Ok(authorize(role, action).map(|()| (project, role.unwrap_or(ProjectRole::Viewer))))
}

/// As [`lock_authorized`], without locking: for reads.
pub(crate) async fn read_authorized<C: Projects>(
    conn: &mut C,
    id: ProjectId,
    user: UserId,
    action: Action,
) -> Result<Result<(Project, ProjectRole), Denied>, PortError> {
    let role = role_in(conn, id, user).await?;
    if let Err(denied) = authorize(role, action) {
        return Ok(Err(denied));
    }
    Ok(match (conn.project(id).await?, role) {
        (Some(project), Some(role)) => Ok((project, role)),
        _ => Err(Denied::NotFound),
    })
}

impl<P: Ports> TaskFlow<P> {
    /// The caller as the audit trail records them, stamped now. A use case
    /// that locks takes it once its locks are held, so changes are timed
    /// in the order they are applied (and `updatedAt` grows with
    /// `version`).
    pub(crate) fn actor(&self, principal: &Principal) -> Actor {
        Actor {
            user_id: principal.user_id,
            request_id: principal.request_id,
            client_mutation_id: principal.client_mutation_id,
            at: self.clock.now(),
        }
    }

    /// A new shared project; the caller is its owner.
    pub async fn create_project(
        &self,
        principal: Principal,
        input: NewProject,
    ) -> Result<ProjectView, ProjectError> {
        let actor = self.actor(&principal);
        let project = Project::create(actor.user_id, &input.name, input.description, actor.at)
            .map_err(ProjectError::Invalid)?;
        let owner = Member {
            project_id: project.id,
            user_id: actor.user_id,
            role: ProjectRole::Owner,
            joined_at: actor.at,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_project(&project).await?;
        insert_new_member(&mut tx, &owner).await?;
        // `project.created` is the project's event 1, its owner's arrival 2.
        let mut journal = Journal::new(actor);
        journal.project_created(&project);
        journal.member_added(&member_details(&mut tx, owner).await?);
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
        Ok(ProjectView {
            project,
            role: ProjectRole::Owner,
        })
    }

    /// One page of the caller's projects, by name (ignoring case), then id.
    pub async fn projects(
        &self,
        principal: Principal,
        query: ProjectQuery,
    ) -> Result<Page<ProjectView, (String, ProjectId)>, ProjectError> {
        check_limit(query.limit).map_err(ProjectError::Invalid)?;
        let rows = self
            .store
            .connection()
            .await?
            .projects_of(principal.user_id, &query)
            .await?;
        let page = Page::from_rows(rows, query.limit, |(p, _)| (p.sort_key(), p.id));
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|(project, role)| ProjectView { project, role })
                .collect(),
            next: page.next,
        })
    }

    pub async fn project(
        &self,
        principal: Principal,
        id: ProjectId,
    ) -> Result<ProjectView, ProjectError> {
        let mut conn = self.store.connection().await?;
        let (project, role) =
            read_authorized(&mut conn, id, principal.user_id, Action::ViewProject).await??;
        Ok(ProjectView { project, role })
    }

    /// Renames, redescribes, archives or unarchives. Name and description
    /// need [`Action::EditProject`], `archived` [`Action::ArchiveProject`];
    /// an archived project takes no other change until unarchived.
    pub async fn update_project(
        &self,
        principal: Principal,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<ProjectView, ProjectError> {
        self.update_project_if(principal, id, patch, &IfMatch::Any)
            .await
    }

    /// As [`TaskFlow::update_project`], only if the project is at a version
    /// `if_match` allows (else `PreconditionFailed`, and nothing changes).
    pub async fn update_project_if(
        &self,
        principal: Principal,
        id: ProjectId,
        patch: ProjectPatch,
        if_match: &IfMatch,
    ) -> Result<ProjectView, ProjectError> {
        let edits = patch.name.is_some() || patch.description.is_some();
        let mut tx = self.store.begin().await?;
        let (mut project, role) =
            lock_authorized(&mut tx, id, principal.user_id, Action::ViewProject).await??;
        let actor = self.actor(&principal);
        // An empty patch asks for the least of the two.
        if edits || patch.archived.is_none() {
            authorize(Some(role), Action::EditProject)?;
        }
        if patch.archived.is_some() {
            authorize(Some(role), Action::ArchiveProject)?;
        }
        // A malformed change is refused as such, whatever the version.
        validate_edit(&patch)?;
        check_version(&project, if_match)?;
        if project.personal && patch.archived == Some(true) {
            return Err(ProjectError::Conflict(INBOX_ARCHIVED));
        }
        let mut journal = Journal::new(actor);
        // Unarchiving first: an owner may unarchive and rename at once.
        if patch.archived == Some(false) {
            archive_change(&mut journal, &mut project, false);
        }
        if edits {
            if project.archived {
                return Err(ProjectError::Conflict(ARCHIVED));
            }
            let before = project.clone();
            if project
                .edit(patch.name.as_deref(), patch.description, actor.at)
                .map_err(ProjectError::Invalid)?
            {
                journal.project_updated(AuditAction::ProjectUpdated, &before, &project);
            }
        }
        if patch.archived == Some(true) {
            archive_change(&mut journal, &mut project, true);
        }
        let events = if journal.is_empty() {
            Vec::new()
        } else {
            self.save_project(&mut tx, &project).await?;
            journal.write(&mut tx).await?
        };
        tx.commit().await?;
        self.bus.committed(events);
        Ok(ProjectView { project, role })
    }

    /// Deletes the project with its tasks and memberships; its audit
    /// entries stay.
    pub async fn delete_project(
        &self,
        principal: Principal,
        id: ProjectId,
    ) -> Result<(), ProjectError> {
        self.delete_project_if(principal, id, &IfMatch::Any).await
    }

    /// As [`TaskFlow::delete_project`], only if the project is at a version
    /// `if_match` allows.
    pub async fn delete_project_if(
        &self,
        principal: Principal,
        id: ProjectId,
        if_match: &IfMatch,
    ) -> Result<(), ProjectError> {
        let mut tx = self.store.begin().await?;
        let (project, _) =
            lock_authorized(&mut tx, id, principal.user_id, Action::DeleteProject).await??;
        let actor = self.actor(&principal);
        check_version(&project, if_match)?;
        if project.personal {
            return Err(ProjectError::Conflict(INBOX_DELETED));
        }
        // Written first: the log numbers the project's last event from its
        // row, which the deletion takes away (the events stay).
        let mut journal = Journal::new(actor);
        journal.project_deleted(&project);
        let events = journal.write(&mut tx).await?;
        if !tx.delete_project(id).await? {
            return Err(ProjectError::NotFound);
        }
        tx.commit().await?;
        self.bus.committed(events);
        Ok(())
    }

    /// Makes another member the owner; the old owner becomes an admin.
    pub async fn transfer_project(
        &self,
        principal: Principal,
        id: ProjectId,
        to: UserId,
    ) -> Result<ProjectView, ProjectError> {
        let mut tx = self.store.begin().await?;
        let (mut project, _) =
            lock_authorized(&mut tx, id, principal.user_id, Action::TransferProject).await??;
        let actor = self.actor(&principal);
        if project.personal {
            return Err(ProjectError::Conflict(INBOX_TRANSFERRED));
        }
        if project.archived {
            return Err(ProjectError::Conflict(ARCHIVED));
        }
        let Some(heir) = tx.member(id, to).await? else {
            return Err(ProjectError::Invalid(ValidationErrors::single(
                "userId",
                "must be a member of the project",
            )));
        };
        if heir.user_id == actor.user_id {
            return Err(ProjectError::Invalid(ValidationErrors::single(
                "userId",
                "is already the owner",
            )));
        }
        let Some(old_owner) = tx.member(id, project.owner_id).await? else {
            return Err(PortError::unexpected("database", "a project without its owner").into());
        };
        let before = project.clone();
        project.set_owner(to, actor.at);
        let mut journal = Journal::new(actor);
        // The old owner steps down first: a project never has two owners.
        for (mut member, role) in [(old_owner, ProjectRole::Admin), (heir, ProjectRole::Owner)] {
            if !tx.update_member_role(id, member.user_id, role).await? {
                return Err(
                    PortError::unexpected("database", "a member vanished under lock").into(),
                );
            }
            let from = member.role;
            member.role = role;
            journal.member_role_changed(from, &member_details(&mut tx, member).await?);
        }
        self.save_project(&mut tx, &project).await?;
        journal.project_updated(AuditAction::ProjectTransferred, &before, &project);
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
        Ok(ProjectView {
            project,
            role: ProjectRole::Admin,
        })
    }

    /// One page of the project's members, in join order.
    pub async fn members(
        &self,
        principal: Principal,
        id: ProjectId,
        query: MemberQuery,
    ) -> Result<Page<MemberDetails, (OffsetDateTime, UserId)>, ProjectError> {
        check_limit(query.limit).map_err(ProjectError::Invalid)?;
        let mut conn = self.store.connection().await?;
        read_authorized(&mut conn, id, principal.user_id, Action::ViewMembers).await??;
        let rows = conn.members(id, &query).await?;
        Ok(Page::from_rows(rows, query.limit, |m| {
            (m.member.joined_at, m.member.user_id)
        }))
    }

    pub async fn add_member(
        &self,
        principal: Principal,
        id: ProjectId,
        input: NewMember,
    ) -> Result<MemberDetails, ProjectError> {
        let role = assignable(input.role)?;
        let mut tx = self.store.begin().await?;
        let (project, _) =
            lock_authorized(&mut tx, id, principal.user_id, Action::AddMember).await??;
        let actor = self.actor(&principal);
        if project.personal {
            return Err(ProjectError::Conflict(INBOX_SHARED));
        }
        if project.archived {
            return Err(ProjectError::Conflict(ARCHIVED));
        }
        let user = match &input.user {
            MemberRef::Email(raw) => {
                let unknown = || {
                    ProjectError::Invalid(ValidationErrors::single(
                        "email",
                        "no user has this e-mail address",
                    ))
                };
                let email = Email::parse(raw).map_err(|e| {
                    ProjectError::Invalid(ValidationErrors::single("email", e.to_string()))
                })?;
                tx.user_by_email(&email).await?.ok_or_else(unknown)?
            }
            MemberRef::Id(user) => tx.user_by_id(*user).await?.ok_or_else(|| {
                ProjectError::Invalid(ValidationErrors::single("userId", "no user has this id"))
            })?,
        };
        let member = Member {
            project_id: id,
            user_id: user.id,
            role,
            joined_at: actor.at,
        };
        match tx.insert_member(&member).await {
            Err(InsertMemberError::AlreadyMember) => {
                return Err(ProjectError::Conflict(ALREADY_MEMBER));
            }
            Err(InsertMemberError::Port(e)) => return Err(e.into()),
            Ok(()) => {}
        }
        let details = MemberDetails {
            member,
            email: user.email,
            name: user.name,
        };
        let mut journal = Journal::new(actor);
        journal.member_added(&details);
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
        Ok(details)
    }

    /// Changes a member's role (below owner). The owner's own role changes
    /// only by transfer (409); an admin may not touch the owner (403).
    pub async fn change_member_role(
        &self,
        principal: Principal,
        id: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> Result<MemberDetails, ProjectError> {
        let role = assignable(role)?;
        let mut tx = self.store.begin().await?;
        let (project, caller_role) =
            lock_authorized(&mut tx, id, principal.user_id, Action::ChangeMemberRole).await??;
        let actor = self.actor(&principal);
        let mut member = tx
            .member(id, user)
            .await?
            .ok_or(ProjectError::MemberNotFound)?;
        if member.role == ProjectRole::Owner {
            return Err(if caller_role == ProjectRole::Owner {
                ProjectError::Conflict(OWNER_ROLE)
            } else {
                ProjectError::Forbidden
            });
        }
        if project.archived {
            return Err(ProjectError::Conflict(ARCHIVED));
        }
        let from = member.role;
        member.role = role;
        let details = member_details(&mut tx, member).await?;
        let mut events = Vec::new();
        if from != role {
            tx.update_member_role(id, user, role).await?;
            let mut journal = Journal::new(actor);
            journal.member_role_changed(from, &details);
            events = journal.write(&mut tx).await?;
        }
        tx.commit().await?;
        self.bus.committed(events);
        Ok(details)
    }

    /// Removes a member (admin and up, below owner), or the caller leaves
    /// (any role but owner). Their tasks in the project are unassigned.
    pub async fn remove_member(
        &self,
        principal: Principal,
        id: ProjectId,
        user: UserId,
    ) -> Result<(), ProjectError> {
        let leaving = user == principal.user_id;
        let action = if leaving {
            Action::LeaveProject
        } else {
            Action::RemoveMember
        };
        let mut tx = self.store.begin().await?;
        let (project, _) = lock_authorized(&mut tx, id, principal.user_id, action).await??;
        let actor = self.actor(&principal);
        let member = tx
            .member(id, user)
            .await?
            .ok_or(ProjectError::MemberNotFound)?;
        if member.role == ProjectRole::Owner {
            return Err(if leaving {
                ProjectError::Conflict(OWNER_LEAVES)
            } else {
                ProjectError::Forbidden
            });
        }
        if project.archived && !leaving {
            return Err(ProjectError::Conflict(ARCHIVED));
        }
        let mut journal = Journal::new(actor);
        for mut task in tx.assigned_tasks_for_update(id, user).await? {
            let before = task.clone();
            let patch = TaskPatch {
                assignee_id: Some(None),
                ..TaskPatch::default()
            };
            if task.apply(patch, actor.at).map_err(ProjectError::Invalid)? {
                tx.update_task(&task).await?;
                journal.task_updated(&before, &task);
            }
        }
        tx.delete_member(id, user).await?;
        journal.member_removed(&member, leaving);
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
        Ok(())
    }

    async fn save_project(
        &self,
        tx: &mut <P::Store as Store>::Transaction,
        project: &Project,
    ) -> Result<(), ProjectError> {
        if tx.update_project(project).await? {
            Ok(())
        } else {
            Err(ProjectError::NotFound)
        }
    }
}

/// Inserts a member who cannot already be one (a new project's owner).
pub(crate) async fn insert_new_member<C: Projects>(
    tx: &mut C,
    member: &Member,
) -> Result<(), PortError> {
    tx.insert_member(member).await.map_err(|e| match e {
        InsertMemberError::Port(e) => e,
        InsertMemberError::AlreadyMember => {
            PortError::unexpected("database", "a new project already had its owner")
        }
    })
}

async fn member_details<C: Users>(
    conn: &mut C,
    member: Member,
) -> Result<MemberDetails, PortError> {
    let user = conn
        .user_by_id(member.user_id)
        .await?
        .ok_or_else(|| PortError::unexpected("database", "a member without a user"))?;
    Ok(MemberDetails {
        member,
        email: user.email,
        name: user.name,
    })
}

/// The name and description a patch sets, checked alone.
fn validate_edit(patch: &ProjectPatch) -> Result<(), ProjectError> {
    let mut errors = ValidationErrors::new();
    if let Some(name) = &patch.name {
        errors.check("name", ProjectName::parse(name));
    }
    if let Some(Some(description)) = &patch.description {
        errors.check(
            "description",
            ProjectDescription::parse(description.clone()),
        );
    }
    errors.into_result(|| ()).map_err(ProjectError::Invalid)
}

/// `PreconditionFailed` when `project` is not at a version `if_match`
/// allows.
fn check_version(project: &Project, if_match: &IfMatch) -> Result<(), ProjectError> {
    if if_match.allows(project.version) {
        Ok(())
    } else {
        Err(ProjectError::PreconditionFailed {
            current: project.version,
        })
    }
}

fn archive_change(journal: &mut Journal, project: &mut Project, archived: bool) {
    let before = project.clone();
    if project.set_archived(archived, journal.actor().at) {
        let action = if archived {
            AuditAction::ProjectArchived
        } else {
            AuditAction::ProjectUnarchived
        };
        journal.project_updated(action, &before, project);
    }
}
