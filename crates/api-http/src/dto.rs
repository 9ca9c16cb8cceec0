//! The JSON shapes clients send and receive. Separate from domain types:
//! a change to an entity does not change the wire format by accident.
//! Requests reject unknown fields and are validated with garde, whose
//! custom rules call the domain's own parsers so both agree.

pub mod admin;
pub mod audit;
pub mod events;
pub mod projects;

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
    #[schema(schema_with = schemas::email)]
    pub email: String,
    #[garde(custom(valid_password))]
    #[schema(schema_with = schemas::password)]
    pub password: String,
    #[garde(custom(valid_name))]
    #[schema(schema_with = schemas::name)]
    pub name: String,
}

/// Login takes whatever was typed: an e-mail or password that could never
/// have been registered is simply wrong credentials (401), and the password
/// policy may have changed since registration. Only the sizes are bounded.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    #[garde(length(chars, max = LOGIN_EMAIL_MAX_LEN))]
    #[schema(schema_with = schemas::login_email)]
    pub email: String,
    #[garde(length(chars, max = LOGIN_PASSWORD_MAX_LEN))]
    #[schema(schema_with = schemas::login_password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    #[garde(length(chars, min = 1, max = REFRESH_TOKEN_MAX_LEN))]
    #[schema(schema_with = schemas::refresh_token)]
    pub refresh_token: String,
}

/// The longest e-mail a login accepts (longer ones are 422).
pub const LOGIN_EMAIL_MAX_LEN: usize = 320;
/// The longest password a login accepts (longer ones are 422).
pub const LOGIN_PASSWORD_MAX_LEN: usize = 1024;
/// The longest refresh token accepted (issued ones are 43 characters).
pub const REFRESH_TOKEN_MAX_LEN: usize = 512;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `user` or `admin`.
    #[schema(schema_with = schemas::role)]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The caller's own account: the user and their Inbox.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    /// The caller's personal project (where `POST /tasks` will put a task
    /// without a `projectId`).
    pub inbox_id: Uuid,
}

impl From<&domain::Me> for MeResponse {
    fn from(me: &domain::Me) -> Self {
        Self {
            user: UserResponse::from(&me.user),
            inbox_id: me.inbox_id.0,
        }
    }
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
    #[schema(schema_with = schemas::token_type)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900, minimum = 1)]
    pub expires_in: u64,
    pub user: UserResponse,
}

// ---- tasks ----

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    pub id: Uuid,
    pub title: String,
    /// `null` when there is none.
    #[schema(required = true)]
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: TaskPriority,
    /// In UTC (`Z`), to the microsecond; `null` when there is none.
    #[schema(required = true)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_date: Option<OffsetDateTime>,
    /// The project the task is in.
    pub project_id: Uuid,
    /// A member of the task's project; `null` when nobody is assigned.
    #[schema(required = true)]
    pub assignee_id: Option<Uuid>,
    /// Who created the task.
    pub created_by: Uuid,
    /// The same as `createdBy`, kept for clients written before projects.
    #[schema(deprecated)]
    pub owner_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Set when the status becomes `done`, cleared when it leaves `done`.
    #[schema(required = true)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// 1 on creation, +1 on every change.
    #[schema(example = 1, minimum = 1)]
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
            project_id: t.project_id.0,
            assignee_id: t.assignee_id.map(|a| a.0),
            created_by: t.created_by.0,
            owner_id: t.created_by.0,
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
    /// The project to create it in (the caller must be a member or
    /// higher); omitted: the caller's Inbox.
    #[garde(skip)]
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// A member of the project (any role); omitted or `null`: nobody.
    #[garde(skip)]
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    #[garde(custom(valid_title))]
    #[schema(schema_with = schemas::title)]
    pub title: String,
    #[garde(custom(optional_description))]
    #[serde(default)]
    #[schema(schema_with = schemas::nullable_description)]
    pub description: Option<String>,
    /// Defaults to `todo`.
    #[garde(skip)]
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Defaults to `medium`.
    #[garde(skip)]
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    #[garde(skip)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(schema_with = schemas::nullable_due_date)]
    pub due_date: Option<OffsetDateTime>,
}

/// A full replacement: omitted nullable fields become `null` (an omitted
/// `assigneeId` unassigns); an omitted `projectId` leaves the task where it
/// is.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceTaskRequest {
    /// Moves the task (member or higher in both projects).
    #[garde(skip)]
    #[serde(default)]
    pub project_id: Option<Uuid>,
    #[garde(skip)]
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    #[garde(custom(valid_title))]
    #[schema(schema_with = schemas::title)]
    pub title: String,
    #[garde(custom(optional_description))]
    #[serde(default)]
    #[schema(schema_with = schemas::nullable_description)]
    pub description: Option<String>,
    #[garde(skip)]
    pub status: TaskStatus,
    #[garde(skip)]
    pub priority: TaskPriority,
    #[garde(skip)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(schema_with = schemas::nullable_due_date)]
    pub due_date: Option<OffsetDateTime>,
}

/// Only the fields present change; `null` clears `assigneeId`,
/// `description` and `dueDate`, and is refused for the others.
#[derive(Debug, Deserialize, ToSchema, garde::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchTaskRequest {
    /// Moves the task to another project: member or higher in both; an
    /// assignee who is not a member there is unassigned.
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Uuid, required = false)]
    pub project_id: Option<Option<Uuid>>,
    /// A member of the task's project; `null` unassigns.
    #[garde(skip)]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, required = false)]
    pub assignee_id: Option<Option<Uuid>>,
    #[garde(custom(present_title))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::title)]
    pub title: Option<Option<String>>,
    #[garde(custom(present_description))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::nullable_description)]
    pub description: Option<Option<String>>,
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskStatus, required = false)]
    pub status: Option<Option<TaskStatus>>,
    #[garde(custom(not_null))]
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskPriority, required = false)]
    pub priority: Option<Option<TaskPriority>>,
    #[garde(skip)]
    #[serde(default, deserialize_with = "present_time")]
    #[schema(schema_with = schemas::nullable_due_date)]
    pub due_date: Option<Option<OffsetDateTime>>,
}

/// A field that is present (`Some`), possibly `null` (`Some(None)`); with
/// `#[serde(default)]` an absent field stays `None`.
pub(crate) fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
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

pub(crate) fn valid_email(value: &str, _: &()) -> garde::Result {
    domain::Email::parse(value)
        .map(drop)
        .map_err(|e| garde::Error::new(e.to_string()))
}

fn valid_name(value: &str, _: &()) -> garde::Result {
    domain::UserName::parse(value)
        .map(drop)
        .map_err(|e| garde::Error::new(e.to_string()))
}

fn valid_password(value: &str, _: &()) -> garde::Result {
    domain::PlainPassword::new(value.to_owned())
        .map(drop)
        .map_err(|e| garde::Error::new(e.to_string()))
}

pub(crate) fn optional_description(value: &Option<String>, _: &()) -> garde::Result {
    match value {
        None => Ok(()),
        Some(description) => domain::Description::parse(description.clone())
            .map(drop)
            .map_err(garde::Error::new),
    }
}

pub(crate) fn present_description(value: &Option<Option<String>>, ctx: &()) -> garde::Result {
    optional_description(&value.clone().flatten(), ctx)
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

pub(crate) fn not_null<T>(value: &Option<Option<T>>, _: &()) -> garde::Result {
    match value {
        Some(None) => Err(garde::Error::new("must not be null")),
        _ => Ok(()),
    }
}

/// The schemas of the constrained fields, built from the domain's own
/// limits, so that the document states exactly what the server enforces.
///
/// The patterns are ECMA-262 (as JSON Schema asks) in the subset that
/// Python's `re` and Rust's `regex` read alike; `Cc` is the control
/// characters the domain rejects (`char::is_control`), and the whitespace
/// is what `str::trim` removes (`char::is_whitespace`) less the controls.
pub mod schemas {
    use domain::task::Description;
    use domain::{
        AuditAction, Email, EntityType, PlainPassword, ProjectDescription, ProjectName, Role,
        SortKey, TaskQuery, Title, UserName,
    };
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat, SchemaType, Type};
    use utoipa::openapi::{Object, ObjectBuilder};

    /// No control character at all.
    pub const NO_CONTROLS: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
    /// No control character, and at least one character that is neither a
    /// control nor whitespace (not blank after trimming).
    pub const NOT_BLANK_NO_CONTROLS: &str = concat!(
        r"^[^\x00-\x1F\x7F-\x9F]*",
        r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
        r"[^\x00-\x1F\x7F-\x9F]*$"
    );
    /// No control character but tab, line feed and carriage return.
    pub const DESCRIPTION: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";
    /// Optional surrounding whitespace; a local part of 1–64 characters and
    /// at least two dot-separated domain labels, without `@`, whitespace or
    /// controls.
    pub const EMAIL: &str = concat!(
        r"^[ \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
        r"[^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]{1,64}",
        r"@[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+",
        r"(?:\.[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+)+",
        r"[ \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    );

    fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    fn nullable(builder: ObjectBuilder) -> Object {
        builder
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .build()
    }

    /// A one-line text (`domain::text::line`) of at most `max` characters.
    fn line(max: usize, example: &str) -> Object {
        string(&format!(
            "1–{max} characters as sent, no control characters, not blank; stored trimmed."
        ))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK_NO_CONTROLS))
        .examples([example])
        .build()
    }

    pub fn title() -> Object {
        line(Title::MAX_LEN, "Write the quarterly report")
    }

    pub fn nullable_description() -> Object {
        text_block(Description::MAX_LEN)
    }

    /// A text block (`domain::text::block`) of at most `max` characters, or
    /// `null`.
    fn text_block(max: usize) -> Object {
        nullable(
            string(&format!(
                "At most {max} characters, no control characters but tabs and line breaks; \
                 kept as written. `null`: none."
            ))
            .max_length(Some(max))
            .pattern(Some(DESCRIPTION)),
        )
    }

    pub fn project_name() -> Object {
        line(ProjectName::MAX_LEN, "Launch")
    }

    pub fn nullable_project_description() -> Object {
        text_block(ProjectDescription::MAX_LEN)
    }

    /// A field's value in an audit entry, as the API shows the field.
    pub fn field_value() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Boolean,
                Type::Integer,
                Type::Null,
            ]))
            .description(Some(
                "The field's value as the API shows it (ids and times as strings); `null` \
                 before a creation and after a deletion.",
            ))
            .build()
    }

    pub fn event_type() -> Object {
        string("What happened.")
            .enum_values(Some(domain::EventType::ALL.map(domain::EventType::as_str)))
            .build()
    }

    pub fn audit_action() -> Object {
        string("What was done.")
            .enum_values(Some(AuditAction::ALL.map(AuditAction::as_str)))
            .build()
    }

    pub fn entity_type() -> Object {
        string("What kind of thing changed.")
            .enum_values(Some(EntityType::ALL.map(EntityType::as_str)))
            .build()
    }

    pub fn nullable_due_date() -> Object {
        nullable(
            string(
                "RFC 3339 date-time with any offset; kept as the same instant in UTC \
                 (years 0000–9999 in UTC) to the microsecond. `null`: none.",
            )
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
    }

    pub fn email() -> Object {
        string(&format!(
            "An e-mail address, at most {} characters as sent (local part at most {}), \
             no control characters; stored trimmed and lower-cased; must be unique.",
            Email::MAX_LEN,
            Email::MAX_LOCAL_LEN
        ))
        .min_length(Some(3))
        .max_length(Some(Email::MAX_LEN))
        .pattern(Some(EMAIL))
        .examples(["ada@example.com"])
        .build()
    }

    pub fn password() -> Object {
        string(&format!(
            "{}–{} characters, no control characters; kept exactly as typed.",
            PlainPassword::MIN_LEN,
            PlainPassword::MAX_LEN
        ))
        .min_length(Some(PlainPassword::MIN_LEN))
        .max_length(Some(PlainPassword::MAX_LEN))
        .pattern(Some(NO_CONTROLS))
        .examples(["correct horse battery"])
        .build()
    }

    pub fn name() -> Object {
        line(UserName::MAX_LEN, "Ada Lovelace")
    }

    pub fn login_email() -> Object {
        string("The e-mail address registered (any text: a wrong one is 401).")
            .max_length(Some(super::LOGIN_EMAIL_MAX_LEN))
            .examples(["ada@example.com"])
            .build()
    }

    pub fn login_password() -> Object {
        string("The password (any text: a wrong one is 401).")
            .max_length(Some(super::LOGIN_PASSWORD_MAX_LEN))
            .examples(["correct horse battery"])
            .build()
    }

    pub fn refresh_token() -> Object {
        string("The refresh token of the last login or refresh.")
            .min_length(Some(1))
            .max_length(Some(super::REFRESH_TOKEN_MAX_LEN))
            .build()
    }

    pub fn role() -> Object {
        string("The account's role.")
            .enum_values(Some(Role::ALL.map(Role::as_str)))
            .build()
    }

    pub fn token_type() -> Object {
        string("Always `Bearer`.")
            .enum_values(Some(["Bearer"]))
            .build()
    }

    /// `GET /tasks?sort=`: every key, ascending or (with `-`) descending.
    pub fn sort() -> Object {
        let values = SortKey::ALL
            .into_iter()
            .flat_map(|key| [key.as_str().to_owned(), format!("-{}", key.as_str())]);
        string(
            "Sort order (default `-createdAt`). A leading `-` sorts descending; \
             tasks without a due date come last ascending.",
        )
        .enum_values(Some(values))
        .build()
    }

    /// `GET /tasks?limit=`.
    pub fn limit() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some(format!(
                "Page size, 1–{} (default {}).",
                TaskQuery::MAX_LIMIT,
                TaskQuery::DEFAULT_LIMIT
            )))
            .minimum(Some(1))
            .maximum(Some(TaskQuery::MAX_LIMIT))
            .build()
    }

    /// `GET /tasks?assigneeId=`.
    pub fn assignee_filter() -> Object {
        string("A user id (UUID), or `me` for the caller.")
            .pattern(Some(
                r"^(?:me|[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12})$",
            ))
            .examples(["me"])
            .build()
    }

    /// `GET /tasks?dueBefore=`.
    pub fn due_before() -> Object {
        date_time("Only tasks due strictly before this instant (RFC 3339).")
    }

    /// `GET /tasks?dueAfter=`.
    pub fn due_after() -> Object {
        date_time("Only tasks due strictly after this instant (RFC 3339).")
    }

    fn date_time(description: &str) -> Object {
        string(description)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use domain::task::Description;
    use domain::{Email, PlainPassword, Title, UserName};
    use regex::Regex;

    use super::schemas;

    /// Characters where the rules have edges: every control, every
    /// whitespace character, the characters the e-mail syntax uses, and some
    /// that look special but are ordinary (format characters, a BOM,
    /// non-BMP, combining marks, `İ` whose lower case is longer).
    fn edge_characters() -> Vec<char> {
        let mut chars: Vec<char> = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control() || c.is_whitespace())
            .collect();
        chars.extend([
            'a',
            'Z',
            '0',
            '@',
            '.',
            '-',
            '+',
            '_',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{301}',
            '\u{130}',
            '\u{3a3}',
            'é',
            '名',
            '🦀',
            '\u{10ffff}',
            '\u{e000}',
        ]);
        chars
    }

    fn samples(around: &[&str]) -> Vec<String> {
        let mut samples = Vec::new();
        for c in edge_characters() {
            for template in around {
                samples.push(template.replace('#', &c.to_string()));
            }
        }
        samples
    }

    /// What a JSON Schema validator decides: the pattern and the lengths
    /// (in characters).
    fn schema_accepts(pattern: &str, min: usize, max: usize, value: &str) -> bool {
        let regex = Regex::new(pattern).expect("the pattern compiles");
        let len = value.chars().count();
        regex.is_match(value) && (min..=max).contains(&len)
    }

    fn assert_agree(
        name: &str,
        schema: impl Fn(&str) -> bool,
        domain: impl Fn(&str) -> bool,
        values: &[String],
    ) {
        for value in values {
            assert_eq!(
                schema(value),
                domain(value),
                "{name}: the document and the domain disagree on {value:?}"
            );
        }
    }

    #[test]
    fn title_and_name_patterns_state_the_domain_rules() {
        let mut values = samples(&["#", "a#", "#a", "a#b", "##", " # "]);
        values.extend(["", " ", "a", "  a  "].map(String::from));
        values.push("x".repeat(Title::MAX_LEN));
        values.push("x".repeat(Title::MAX_LEN + 1));
        values.push(format!(" {} ", "🦀".repeat(Title::MAX_LEN - 2)));
        values.push(format!(" {} ", "🦀".repeat(Title::MAX_LEN - 1)));
        values.push("x".repeat(UserName::MAX_LEN + 1));
        assert_agree(
            "title",
            |v| schema_accepts(schemas::NOT_BLANK_NO_CONTROLS, 1, Title::MAX_LEN, v),
            |v| Title::parse(v).is_ok(),
            &values,
        );
        assert_agree(
            "name",
            |v| schema_accepts(schemas::NOT_BLANK_NO_CONTROLS, 1, UserName::MAX_LEN, v),
            |v| UserName::parse(v).is_ok(),
            &values,
        );
    }

    #[test]
    fn description_and_password_patterns_state_the_domain_rules() {
        let mut values = samples(&["#", "password#", "#password", "pass#word"]);
        values.extend(["", "   ", "\r\n\t"].map(String::from));
        values.push("🦀".repeat(Description::MAX_LEN));
        values.push("🦀".repeat(Description::MAX_LEN + 1));
        values.push("p".repeat(PlainPassword::MAX_LEN));
        values.push("p".repeat(PlainPassword::MAX_LEN + 1));
        values.push("p".repeat(PlainPassword::MIN_LEN - 1));
        assert_agree(
            "description",
            |v| schema_accepts(schemas::DESCRIPTION, 0, Description::MAX_LEN, v),
            |v| Description::parse(v.to_owned()).is_ok(),
            &values,
        );
        assert_agree(
            "password",
            |v| {
                schema_accepts(
                    schemas::NO_CONTROLS,
                    PlainPassword::MIN_LEN,
                    PlainPassword::MAX_LEN,
                    v,
                )
            },
            |v| PlainPassword::new(v.to_owned()).is_ok(),
            &values,
        );
    }

    #[test]
    fn email_pattern_states_the_domain_rule() {
        let mut values = samples(&[
            "#ada@example.com",
            "ada@example.com#",
            "a#a@example.com",
            "ada@ex#ample.com",
            "ada@example.#",
            "ada@#.com",
            "#@example.com",
            "##a@b.co##",
        ]);
        values.extend(
            [
                "", "a", "@", "a@b", "a@b.", "a@.b", "a@b..c", "@b.c", "a@@b.c", "a@b@c.d",
                "a.b@c.d", ".a@b.c", "a.@b.c", "a@b.c.d", "a@-b.c", "A@B.CO", "a b@c.d",
            ]
            .map(String::from),
        );
        let domain = format!("{}.com", "d".repeat(Email::MAX_LEN - 64 - 1 - 4));
        values.push(format!("{}@{domain}", "l".repeat(64)));
        values.push(format!("{}@{domain}x", "l".repeat(64)));
        values.push(format!(" {}@{domain}", "l".repeat(64)));
        values.push(format!("{}@example.com", "é".repeat(Email::MAX_LOCAL_LEN)));
        values.push(format!(
            "{}@example.com",
            "é".repeat(Email::MAX_LOCAL_LEN + 1)
        ));
        assert_agree(
            "email",
            |v| schema_accepts(schemas::EMAIL, 3, Email::MAX_LEN, v),
            |v| Email::parse(v).is_ok(),
            &values,
        );
    }
}
