//! The JSON shapes clients send and receive. Separate from domain types:
//! a change to an entity does not change the wire format by accident.
//! Requests reject unknown fields and are validated with garde, whose
//! custom rules call the domain's own parsers so both agree.

use domain::{Priority, Status, Task, User};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

// ---- shared enums ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
}

impl From<TaskStatus> for Status {
    fn from(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Todo => Status::Todo,
            TaskStatus::InProgress => Status::InProgress,
            TaskStatus::Done => Status::Done,
        }
    }
}

impl From<Status> for TaskStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Todo => TaskStatus::Todo,
            Status::InProgress => TaskStatus::InProgress,
            Status::Done => TaskStatus::Done,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    Low,
    Medium,
    High,
    Urgent,
}

impl From<TaskPriority> for Priority {
    fn from(p: TaskPriority) -> Self {
        match p {
            TaskPriority::Low => Priority::Low,
            TaskPriority::Medium => Priority::Medium,
            TaskPriority::High => Priority::High,
            TaskPriority::Urgent => Priority::Urgent,
        }
    }
}

impl From<Priority> for TaskPriority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => TaskPriority::Low,
            Priority::Medium => TaskPriority::Medium,
            Priority::High => TaskPriority::High,
            Priority::Urgent => TaskPriority::Urgent,
        }
    }
}

// ---- users and auth ----

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// Stored trimmed and lower-cased; must be unique.
    #[garde(custom(valid_email))]
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8–128 characters.
    #[garde(length(chars, min = 8, max = 128))]
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    pub password: String,
    /// 1–100 characters after trimming.
    #[garde(custom(valid_name))]
    #[schema(example = "Ada Lovelace")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    #[garde(length(max = 320))]
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[garde(length(chars, max = 1024))]
    #[schema(example = "correct horse battery")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    #[garde(length(min = 1, max = 512))]
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `user` or `admin`.
    #[schema(example = "user")]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserResponse {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.as_str().to_owned(),
            name: u.name.as_str().to_owned(),
            role: u.role.as_str().to_owned(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: String,
    /// Single use: every refresh returns a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    pub user: UserResponse,
}

// ---- tasks ----

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: TaskPriority,
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_date: Option<OffsetDateTime>,
    pub owner_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Set when the status becomes `done`, cleared when it leaves `done`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// 1 on creation, +1 on every change.
    #[schema(example = 1)]
    pub version: i64,
}

impl From<&Task> for TaskResponse {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id.0,
            title: t.title.as_str().to_owned(),
            description: t.description.as_ref().map(|d| d.as_str().to_owned()),
            status: t.status.into(),
            priority: t.priority.into(),
            due_date: t.due_date,
            owner_id: t.owner_id.0,
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
            version: t.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1–200 characters after trimming.
    #[garde(custom(valid_title))]
    #[schema(example = "Write the quarterly report")]
    pub title: String,
    /// At most 10 000 characters.
    #[garde(length(chars, max = 10_000))]
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to `todo`.
    #[garde(skip)]
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Defaults to `medium`.
    #[garde(skip)]
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    /// RFC 3339.
    #[garde(skip)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub due_date: Option<OffsetDateTime>,
}

/// A full replacement: omitted nullable fields become `null`.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceTaskRequest {
    #[garde(custom(valid_title))]
    pub title: String,
    #[garde(length(chars, max = 10_000))]
    #[serde(default)]
    pub description: Option<String>,
    #[garde(skip)]
    pub status: TaskStatus,
    #[garde(skip)]
    pub priority: TaskPriority,
    #[garde(skip)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub due_date: Option<OffsetDateTime>,
}

/// Only the fields present change; `null` clears `description` and `dueDate`.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchTaskRequest {
    #[garde(custom(present_title))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[garde(inner(inner(length(chars, max = 10_000))))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<TaskStatus>)]
    pub status: Option<Option<TaskStatus>>,
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<TaskPriority>)]
    pub priority: Option<Option<TaskPriority>>,
    #[garde(skip)]
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<OffsetDateTime>)]
    pub due_date: Option<Option<OffsetDateTime>>,
}

/// A field that is present (`Some`), possibly `null` (`Some(None)`); with
/// `#[serde(default)]` an absent field stays `None`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn present_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

// ---- garde rules that defer to the domain ----

fn valid_email(value: &str, _: &()) -> garde::Result {
    domain::Email::parse(value)
        .map(drop)
        .map_err(|e| garde::Error::new(e.to_string()))
}

fn valid_name(value: &str, _: &()) -> garde::Result {
    domain::UserName::parse(value)
        .map(drop)
        .map_err(|e| garde::Error::new(e.to_string()))
}

fn valid_title(value: &str, _: &()) -> garde::Result {
    domain::Title::parse(value)
        .map(drop)
        .map_err(garde::Error::new)
}

fn present_title(value: &Option<Option<String>>, ctx: &()) -> garde::Result {
    match value {
        None => Ok(()),
        Some(None) => Err(garde::Error::new("must not be null")),
        Some(Some(title)) => valid_title(title, ctx),
    }
}

fn not_null<T>(value: &Option<Option<T>>, _: &()) -> garde::Result {
    match value {
        Some(None) => Err(garde::Error::new("must not be null")),
        _ => Ok(()),
    }
}
