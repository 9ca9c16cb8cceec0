//! The projects aggregate's port: projects and their members.

use std::future::Future;

use crate::error::PortError;
use crate::project::{Member, Project, ProjectId, ProjectRole};
use crate::user::{Email, UserId, UserName};

/// Adding a member who is one already.
#[derive(Debug, thiserror::Error)]
pub enum InsertMemberError {
    #[error("already a member of the project")]
    AlreadyMember,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// A page of a user's projects: sorted by [`Project::sort_key`], then id;
/// after `after` (the last row of the previous page), `limit + 1` rows at
/// most (the extra one tells whether there is a next page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectQuery {
    pub archived: bool,
    pub after: Option<(String, ProjectId)>,
    pub limit: u32,
}

/// A page of a project's members: by join time, then user id; after
/// `after`, `limit + 1` rows at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberQuery {
    pub after: Option<(time::OffsetDateTime, UserId)>,
    pub limit: u32,
}

/// A member with the user's e-mail address and name, as member lists show
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDetails {
    pub member: Member,
    pub email: Email,
    pub name: UserName,
}

/// Projects and memberships. Deleting a project deletes its memberships
/// and its tasks (not its audit entries).
/// Locking is explicit, as for tasks: only `project_for_update` locks, and
/// writes wait for a row another transaction has locked.
pub trait Projects: Send {
    fn insert_project(
        &mut self,
        project: &Project,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn project(
        &mut self,
        id: ProjectId,
    ) -> impl Future<Output = Result<Option<Project>, PortError>> + Send;
    /// The project, locked against other writers until this transaction
    /// ends (waiting for one that holds it).
    fn project_for_update(
        &mut self,
        id: ProjectId,
    ) -> impl Future<Output = Result<Option<Project>, PortError>> + Send;
    /// Stores `project` over the row with its id; false when there is none.
    fn update_project(
        &mut self,
        project: &Project,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// False when there was no such project.
    fn delete_project(
        &mut self,
        id: ProjectId,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    fn insert_member(
        &mut self,
        member: &Member,
    ) -> impl Future<Output = Result<(), InsertMemberError>> + Send;
    fn member(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> impl Future<Output = Result<Option<Member>, PortError>> + Send;
    /// Changes the member's role; false when there is no such member.
    fn update_member_role(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// False when there was no such member.
    fn delete_member(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn members(
        &mut self,
        project: ProjectId,
        query: &MemberQuery,
    ) -> impl Future<Output = Result<Vec<MemberDetails>, PortError>> + Send;
    /// The projects `user` is a member of, with the user's role in each.
    fn projects_of(
        &mut self,
        user: UserId,
        query: &ProjectQuery,
    ) -> impl Future<Output = Result<Vec<(Project, ProjectRole)>, PortError>> + Send;
    /// The user's personal project.
    fn inbox_of(
        &mut self,
        user: UserId,
    ) -> impl Future<Output = Result<Option<Project>, PortError>> + Send;
}
