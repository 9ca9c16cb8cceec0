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
}
