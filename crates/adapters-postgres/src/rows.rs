//! Row structs and their translation to and from domain types. A row that
//! does not translate (a value the domain does not know) is an unexpected
//! error, never a panic.

use diesel::prelude::*;
use domain::{
    Email, PasswordHash, PortError, Priority, ProjectId, Role, Status, Task, TaskId, Title, User,
    UserId, UserName,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::schema::{tasks, users};

/// No `Debug`: it holds the password hash.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    pub disabled: bool,
}

/// `QueryableByName` too: the task lists are written in SQL (see `task.rs`).
#[derive(Debug, Queryable, QueryableByName, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub(crate) struct TaskRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub created_by: Uuid,
    pub assignee_id: Option<Uuid>,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub priority: i16,
    pub due_date: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub version: i64,
}

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> PortError {
    PortError::unexpected("database", format!("stored {what} is not valid: {value}"))
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.as_str().to_owned(),
            name: u.name.as_str().to_owned(),
            role: u.role.as_str().to_owned(),
            password_hash: u.password_hash.as_str().to_owned(),
            created_at: u.created_at,
            disabled: u.disabled,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = PortError;

    fn try_from(row: UserRow) -> Result<Self, PortError> {
        Ok(User {
            id: UserId(row.id),
            email: Email::parse(&row.email).map_err(|e| corrupt("e-mail", e))?,
            name: UserName::parse(&row.name).map_err(|e| corrupt("name", e))?,
            role: Role::parse(&row.role).ok_or_else(|| corrupt("role", &row.role))?,
            password_hash: PasswordHash::new(row.password_hash),
            created_at: row.created_at,
            disabled: row.disabled,
        })
    }
}

impl From<&Task> for TaskRow {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id.0,
            project_id: t.project_id.0,
            created_by: t.created_by.0,
            assignee_id: t.assignee_id.map(|a| a.0),
            title: t.title.as_str().to_owned(),
            description: t.description.as_ref().map(|d| d.as_str().to_owned()),
            status: t.status.as_str().to_owned(),
            priority: t.priority.rank(),
            due_date: t.due_date,
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
            version: t.version,
        }
    }
}

impl TryFrom<TaskRow> for Task {
    type Error = PortError;

    fn try_from(row: TaskRow) -> Result<Self, PortError> {
        let description = row
            .description
            .map(domain::task::Description::parse)
            .transpose()
            .map_err(|e| corrupt("description", e))?;
        Ok(Task {
            id: TaskId(row.id),
            project_id: ProjectId(row.project_id),
            created_by: UserId(row.created_by),
            assignee_id: row.assignee_id.map(UserId),
            title: Title::parse(&row.title).map_err(|e| corrupt("title", e))?,
            description,
            status: Status::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
            priority: priority_from_rank(row.priority)?,
            due_date: row.due_date,
            created_at: row.created_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
            version: row.version,
        })
    }
}

pub(crate) fn priority_from_rank(rank: i16) -> Result<Priority, PortError> {
    Priority::ALL
        .into_iter()
        .find(|p| p.rank() == rank)
        .ok_or_else(|| corrupt("priority", rank))
}
