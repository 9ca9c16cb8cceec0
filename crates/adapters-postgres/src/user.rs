//! The users aggregate on PostgreSQL.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain::ports::InsertUserError;
use domain::{Email, PortError, User, UserId, Users};

use crate::error::{self, from_diesel};
use crate::rows::UserRow;
use crate::schema::users;
use crate::store::{PgHandle, decode};

diesel::define_sql_function! {
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

impl Users for PgHandle {
    async fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        diesel::insert_into(users::table)
            .values(UserRow::from(user))
            .execute(self.conn())
            .await
            .map(drop)
            .map_err(|e| {
                if error::is_unique_violation(&e, "users_email_key") {
                    InsertUserError::EmailTaken
                } else {
                    InsertUserError::Port(from_diesel(e))
                }
            })
    }

    async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>, PortError> {
        let row = users::table
            // The unique index is on lower(email): look up through it.
            .filter(lower(users::email).eq(email.as_str()))
            .select(UserRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        let row = users::table
            .find(id.0)
            .select(UserRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }
}
