//! The users aggregate on PostgreSQL.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain::ports::{InsertUserError, UserQuery};
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

    async fn user_for_update(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        let row = users::table
            .find(id.0)
            .select(UserRow::as_select())
            .for_update()
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn update_user(&mut self, user: &User) -> Result<bool, PortError> {
        // Only what an admin changes: the e-mail address, password hash and
        // registration time are not the port's to rewrite.
        let updated = diesel::update(users::table.find(user.id.0))
            .set((
                users::name.eq(user.name.as_str()),
                users::role.eq(user.role.as_str()),
                users::disabled.eq(user.disabled),
            ))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn list_users(&mut self, query: &UserQuery) -> Result<Vec<User>, PortError> {
        // The primary key in order, from the cursor on: a search reads rows
        // until it has a page of matches (no index serves a substring).
        let mut q = users::table
            .select(UserRow::as_select())
            .order(users::id)
            .limit(i64::from(query.limit) + 1)
            .into_boxed();
        if let Some(after) = query.after {
            q = q.filter(users::id.gt(after.0));
        }
        if let Some(text) = &query.q {
            // ILIKE compares lower-cased text (by the database's ctype); the
            // search text is matched literally, wildcards and all.
            let pattern = format!("%{}%", escape_like(text));
            q = q.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::name.ilike(pattern)),
            );
        }
        let rows: Vec<UserRow> = q.load(self.conn()).await.map_err(from_diesel)?;
        rows.into_iter().map(User::try_from).collect()
    }
}

/// `text` as a LIKE pattern that matches only itself: the wildcards `%`
/// and `_`, and the escape character `\` (LIKE's default), escaped.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(escape_like("plain"), "plain");
        assert_eq!(escape_like(""), "");
    }
}
