//! The users aggregate's port.

use std::future::Future;

use crate::error::PortError;
use crate::user::{Email, User, UserId};

/// Insertion of a user whose e-mail is already registered.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("e-mail address already registered")]
    EmailTaken,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// A page of users for system admins: by id (registration order), after
/// `after`, `limit + 1` rows at most; with `q`, only users whose e-mail or
/// name contains it, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    pub q: Option<String>,
    pub after: Option<UserId>,
    pub limit: u32,
}

/// The users aggregate.
pub trait Users: Send {
    fn insert_user(
        &mut self,
        user: &User,
    ) -> impl Future<Output = Result<(), InsertUserError>> + Send;
    fn user_by_email(
        &mut self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    fn user_by_id(
        &mut self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    /// The user, locked against other writers until this transaction ends.
    fn user_for_update(
        &mut self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    /// Stores `user`'s name, role and disabled flag over the row with its
    /// id; false when there is none.
    fn update_user(&mut self, user: &User) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn list_users(
        &mut self,
        query: &UserQuery,
    ) -> impl Future<Output = Result<Vec<User>, PortError>> + Send;
}
