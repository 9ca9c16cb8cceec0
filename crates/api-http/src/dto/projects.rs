//! Projects and their members on the wire. The domain validates names,
//! descriptions and roles (its errors name the fields); these types only
//! shape the JSON and state the rules in the document.

use domain::{MemberDetails, Project, ProjectRole, ProjectView};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{not_null, present};

/// A member's role in a project: `owner` > `admin` > `member` > `viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

/// The roles a member can be given: ownership moves only by transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignableRole {
    Admin,
    Member,
    Viewer,
}

impl From<ProjectRole> for Role {
    fn from(role: ProjectRole) -> Self {
        match role {
            ProjectRole::Owner => Role::Owner,
            ProjectRole::Admin => Role::Admin,
            ProjectRole::Member => Role::Member,
            ProjectRole::Viewer => Role::Viewer,
        }
    }
}

impl From<AssignableRole> for ProjectRole {
    fn from(role: AssignableRole) -> Self {
        match role {
            AssignableRole::Admin => ProjectRole::Admin,
            AssignableRole::Member => ProjectRole::Member,
            AssignableRole::Viewer => ProjectRole::Viewer,
        }
    }
}

/// A project as everyone sees it (the event log carries this).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectData {
    pub id: Uuid,
    pub name: String,
    /// `null` when there is none.
    #[schema(required = true)]
    pub description: Option<String>,
    /// An archived project is read-only until its owner unarchives it.
    pub archived: bool,
    /// The owner's Inbox: never shared, archived, transferred or deleted.
    pub personal: bool,
    pub owner_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// 1 on creation, +1 on every change.
    #[schema(example = 1, minimum = 1)]
    pub version: i64,
}

impl From<&Project> for ProjectData {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.0,
            name: p.name.as_str().to_owned(),
            description: p.description.as_ref().map(|d| d.as_str().to_owned()),
            archived: p.archived,
            personal: p.personal,
            owner_id: p.owner_id.0,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

/// A project as its caller sees it: with their role in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectResponse {
    #[serde(flatten)]
    pub project: ProjectData,
    /// The caller's role in the project.
    pub role: Role,
}

impl From<&ProjectView> for ProjectResponse {
    fn from(view: &ProjectView) -> Self {
        Self {
            project: ProjectData::from(&view.project),
            role: view.role.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProjectRequest {
    #[garde(skip)]
    #[schema(schema_with = super::schemas::project_name)]
    pub name: String,
    #[garde(skip)]
    #[serde(default)]
    #[schema(schema_with = super::schemas::nullable_project_description)]
    pub description: Option<String>,
}

/// Only the fields present change. `name` and `description` need admin or
/// owner, `archived` the owner.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchProjectRequest {
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::schemas::project_name)]
    pub name: Option<Option<String>>,
    /// `null` clears it.
    #[garde(skip)]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::schemas::nullable_project_description)]
    pub description: Option<Option<String>>,
    /// Archive (`true`) or unarchive (`false`).
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    pub archived: Option<Option<bool>>,
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferRequest {
    /// A member of the project, who becomes its owner; the caller becomes
    /// an admin.
    #[garde(skip)]
    pub user_id: Uuid,
}

/// Exactly one of `email` and `userId`, and the role.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(allow_unvalidated)]
pub struct AddMemberRequest {
    /// The address the user registered with.
    #[serde(default)]
    #[garde(custom(one_of_email_or_id(&self.user_id)))]
    pub email: Option<String>,
    #[serde(default)]
    pub user_id: Option<Uuid>,
    pub role: AssignableRole,
}

fn one_of_email_or_id(
    user_id: &Option<Uuid>,
) -> impl FnOnce(&Option<String>, &()) -> garde::Result + '_ {
    move |email, _| match (email, user_id) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        (Some(_), Some(_)) => Err(garde::Error::new("give either email or userId, not both")),
        (None, None) => Err(garde::Error::new("give email or userId")),
    }
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchMemberRequest {
    #[garde(skip)]
    pub role: AssignableRole,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberResponse {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

impl From<&MemberDetails> for MemberResponse {
    fn from(m: &MemberDetails) -> Self {
        Self {
            user_id: m.member.user_id.0,
            email: m.email.as_str().to_owned(),
            name: m.name.as_str().to_owned(),
            role: m.member.role.into(),
            joined_at: m.member.joined_at,
        }
    }
}
