//! User administration on the wire.

use domain::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{UserResponse, not_null, present};

/// A system role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SystemRole {
    User,
    Admin,
}

impl From<SystemRole> for domain::Role {
    fn from(role: SystemRole) -> Self {
        match role {
            SystemRole::User => domain::Role::User,
            SystemRole::Admin => domain::Role::Admin,
        }
    }
}

/// A user as system admins see them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUserResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

impl From<&User> for AdminUserResponse {
    fn from(u: &User) -> Self {
        Self {
            user: UserResponse::from(u),
            disabled: u.disabled,
        }
    }
}

/// Only the fields present change. Admins cannot disable or demote
/// themselves.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchUserRequest {
    /// `true` disables the account and ends its sessions at once.
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    pub disabled: Option<Option<bool>>,
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = SystemRole, required = false)]
    pub role: Option<Option<SystemRole>>,
}
