//! The admin context: system administrators list users, disable and
//! re-enable them, and change their system role. A system admin sees no
//! project content without membership: these use cases are all they get.
//! Operators make the first admin (`promote`, or `ADMIN_EMAILS`).

use crate::app::TaskFlow;
use crate::audit::AuditAction;
use crate::auth::Principal;
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::journal::Journal;
use crate::ports::{EventBus, Ports, SessionStore, Store, Transaction, UserQuery, Users};
use crate::project::use_cases::check_limit;
use crate::task::Page;
use crate::text;
use crate::user::{Email, Role, User, UserId};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Only system administrators may do this.")]
    Forbidden,
    #[error("No such user.")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for AdminError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::Forbidden => ErrorKind::Forbidden,
            Self::NotFound => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

const SELF_DISABLE: &str = "Administrators cannot disable themselves.";
const SELF_DEMOTE: &str = "Administrators cannot demote themselves.";

/// What a system admin may change about a user.
#[derive(Debug, Clone, Default)]
pub struct UserAdminPatch {
    pub disabled: Option<bool>,
    pub role: Option<Role>,
}

/// The longest `q` a user search takes.
pub const MAX_QUERY_LEN: usize = 100;

impl<P: Ports> TaskFlow<P> {
    /// The caller's account, if it is a system admin now (the stored role
    /// decides, not the one in the token, which may be older).
    async fn admin<C: Users>(conn: &mut C, principal: &Principal) -> Result<User, AdminError> {
        match conn.user_by_id(principal.user_id).await? {
            Some(user) if user.role == Role::Admin && !user.disabled => Ok(user),
            _ => Err(AdminError::Forbidden),
        }
    }

    /// One page of users in registration order, optionally only those whose
    /// e-mail or name contains `query.q` (ignoring case).
    pub async fn admin_users(
        &self,
        principal: Principal,
        query: UserQuery,
    ) -> Result<Page<User, UserId>, AdminError> {
        let mut conn = self.store.connection().await?;
        Self::admin(&mut conn, &principal).await?;
        let mut errors = ValidationErrors::new();
        if let Err(e) = check_limit(query.limit) {
            errors = e;
        }
        if query
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_LEN)
        {
            errors.add("q", format!("must be at most {MAX_QUERY_LEN} characters"));
        }
        if query.q.as_ref().is_some_and(|q| text::has_control(q, &[])) {
            errors.add("q", text::CONTROL_MESSAGE);
        }
        if !errors.is_empty() {
            return Err(AdminError::Invalid(errors));
        }
        let rows = conn.list_users(&query).await?;
        Ok(Page::from_rows(rows, query.limit, |u| u.id))
    }

    /// Disables or re-enables a user, or changes their system role. A
    /// disabled user's sessions end at once. Admins cannot disable or
    /// demote themselves (409).
    pub async fn administer_user(
        &self,
        principal: Principal,
        id: UserId,
        patch: UserAdminPatch,
    ) -> Result<User, AdminError> {
        let mut tx = self.store.begin().await?;
        // Both rows locked, in id order: two admins demoting or disabling
        // each other at once cannot both succeed (the second sees the
        // first's change).
        let (first, second) = if principal.user_id <= id {
            (principal.user_id, id)
        } else {
            (id, principal.user_id)
        };
        let first_row = tx.user_for_update(first).await?;
        let second_row = if second == first {
            first_row.clone()
        } else {
            tx.user_for_update(second).await?
        };
        let (caller, target) = if first == principal.user_id {
            (first_row, second_row)
        } else {
            (second_row, first_row)
        };
        let admin = match caller {
            Some(user) if user.role == Role::Admin && !user.disabled => user,
            _ => return Err(AdminError::Forbidden),
        };
        let mut user = target.ok_or(AdminError::NotFound)?;
        let actor = self.actor(&principal);
        if user.id == admin.id {
            if patch.disabled == Some(true) {
                return Err(AdminError::Conflict(SELF_DISABLE));
            }
            if patch.role == Some(Role::User) {
                return Err(AdminError::Conflict(SELF_DEMOTE));
            }
        }
        let before = user.clone();
        let mut journal = Journal::new(actor);
        if let Some(role) = patch.role
            && role != user.role
        {
            let prior = user.clone();
            user.role = role;
            journal.user_changed(AuditAction::UserRoleChanged, &prior, &user);
        }
        if let Some(disabled) = patch.disabled
            && disabled != user.disabled
        {
            let prior = user.clone();
            user.disabled = disabled;
            let action = if disabled {
                AuditAction::UserDisabled
            } else {
                AuditAction::UserEnabled
            };
            journal.user_changed(action, &prior, &user);
        }
        if journal.is_empty() {
            tx.commit().await?;
            return Ok(user);
        }
        if !tx.update_user(&user).await? {
            return Err(AdminError::NotFound);
        }
        journal.write(&mut tx).await?;
        let disabling = user.disabled && !before.disabled;
        if disabling {
            // Before the commit: if the session store cannot end them, the
            // user stays enabled and the admin retries.
            self.sessions.revoke_all(user.id).await?;
        }
        tx.commit().await?;
        if disabling {
            // And after it: a login that read the user before the commit
            // may have opened a session since (login checks again after
            // opening one, which covers logins that end later).
            self.sessions.revoke_all(user.id).await?;
            self.bus.sessions_ended(user.id, None);
        }
        Ok(user)
    }

    /// Makes the user with `email` a system admin (an operator's act, not
    /// an API call: `taskflow users promote`, `ADMIN_EMAILS`). Returns the
    /// user, or `NotFound`.
    pub async fn promote(&self, email: &str) -> Result<User, AdminError> {
        let email = Email::parse(email)
            .map_err(|e| AdminError::Invalid(ValidationErrors::single("email", e.to_string())))?;
        let mut tx = self.store.begin().await?;
        let Some(found) = tx.user_by_email(&email).await? else {
            return Err(AdminError::NotFound);
        };
        let mut user = tx
            .user_for_update(found.id)
            .await?
            .ok_or(AdminError::NotFound)?;
        if user.role != Role::Admin {
            user.role = Role::Admin;
            tx.update_user(&user).await?;
        }
        tx.commit().await?;
        Ok(user)
    }
}
