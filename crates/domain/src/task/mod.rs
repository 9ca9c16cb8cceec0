//! The tasks aggregate: a task and its value objects (title, description,
//! status, priority), patches, and the keyset-paginated query; its port in
//! [`port`], its use cases in [`use_cases`].

pub mod port;
pub mod use_cases;

use std::cmp::Ordering;

use time::{OffsetDateTime, UtcOffset};

use crate::audit::Value;
use crate::error::ValidationErrors;
use crate::project::ProjectId;
use crate::text::{self, TextError};
use crate::user::UserId;

uuid_id! {
    /// A task's id (UUIDv7: time-ordered, so it doubles as a tie-breaker in
    /// keyset pagination).
    TaskId
}

/// A task's title: at most 200 characters as sent, no control characters,
/// not blank; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::line(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's description: at most 10 000 characters, no control characters
/// but line breaks (`\n`, `\r`) and tabs; kept exactly as written (it may
/// be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_LEN: usize = 10_000;

    pub fn parse(raw: String) -> Result<Self, TextError> {
        text::block(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    Todo,
    InProgress,
    Done,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Todo, Status::InProgress, Status::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Todo => "todo",
            Status::InProgress => "in_progress",
            Status::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Ordered by urgency: `Low < Medium < High < Urgent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// 0 (low) to 3 (urgent): the order stores sort by.
    pub fn rank(self) -> i16 {
        self as i16
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    /// The project it is in; every task is in exactly one.
    pub project_id: ProjectId,
    /// Who created it.
    pub created_by: UserId,
    /// A member of the task's project (any role), or nobody.
    pub assignee_id: Option<UserId>,
    pub title: Title,
    pub description: Option<Description>,
    pub status: Status,
    pub priority: Priority,
    pub due_date: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Set when the status becomes `Done`, cleared when it leaves `Done`.
    pub completed_at: Option<OffsetDateTime>,
    /// 1 on creation, +1 on every change.
    pub version: i64,
}

/// What a client sends to create a task; unvalidated.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    /// `None`: the caller's Inbox.
    pub project_id: Option<ProjectId>,
    pub assignee_id: Option<UserId>,
    pub title: String,
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<OffsetDateTime>,
}

/// A partial change: `None` leaves a field alone, `Some(None)` clears a
/// nullable one. A full replacement (PUT) sets every field but
/// `project_id`, which it leaves alone when omitted.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    /// Moves the task to another project.
    pub project_id: Option<ProjectId>,
    pub assignee_id: Option<Option<UserId>>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<OffsetDateTime>>,
}

impl Task {
    /// A new task in `project`, created by `creator`, validated (whether
    /// the assignee may be one is the use case's to check).
    pub fn create(
        project: ProjectId,
        creator: UserId,
        input: NewTask,
        now: OffsetDateTime,
    ) -> Result<Task, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = errors.check("title", Title::parse(&input.title));
        let description = input
            .description
            .map(|d| errors.check("description", Description::parse(d)))
            .unwrap_or_default();
        let due_date = input
            .due_date
            .map(|d| errors.check("dueDate", due_date(d)))
            .unwrap_or_default();
        let status = input.status.unwrap_or_default();
        let title = match title {
            Some(title) if errors.is_empty() => title,
            _ => return Err(errors),
        };
        Ok(Task {
            id: TaskId::generate(),
            project_id: project,
            created_by: creator,
            assignee_id: input.assignee_id,
            title,
            description,
            status,
            priority: input.priority.unwrap_or_default(),
            due_date,
            created_at: now,
            updated_at: now,
            completed_at: (status == Status::Done).then_some(now),
            version: 1,
        })
    }

    /// Applies `patch`; returns whether anything changed. Version,
    /// `updatedAt` and `completedAt` move only when something did.
    pub fn apply(
        &mut self,
        patch: TaskPatch,
        now: OffsetDateTime,
    ) -> Result<bool, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = patch
            .title
            .and_then(|t| errors.check("title", Title::parse(&t)));
        let description = patch
            .description
            .map(|d| d.and_then(|d| errors.check("description", Description::parse(d))));
        let due_date = patch
            .due_date
            .map(|d| d.and_then(|d| errors.check("dueDate", due_date(d))));
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut next = self.clone();
        if let Some(project) = patch.project_id {
            next.project_id = project;
        }
        if let Some(assignee) = patch.assignee_id {
            next.assignee_id = assignee;
        }
        if let Some(title) = title {
            next.title = title;
        }
        if let Some(description) = description {
            next.description = description;
        }
        if let Some(status) = patch.status {
            next.status = status;
        }
        if let Some(priority) = patch.priority {
            next.priority = priority;
        }
        if let Some(due_date) = due_date {
            next.due_date = due_date;
        }
        if next == *self {
            return Ok(false);
        }
        match (self.status, next.status) {
            (Status::Done, Status::Done) => {}
            (_, Status::Done) => next.completed_at = Some(now),
            _ => next.completed_at = None,
        }
        next.updated_at = now;
        next.version += 1;
        *self = next;
        Ok(true)
    }

    /// The fields an audit entry records, by their API names.
    pub fn audited_fields(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("projectId", Value::id(self.project_id)),
            ("assigneeId", Value::optional(self.assignee_id, Value::id)),
            ("title", Value::text(self.title.as_str())),
            (
                "description",
                Value::optional(self.description.as_ref(), |d| Value::text(d.as_str())),
            ),
            ("status", Value::text(self.status.as_str())),
            ("priority", Value::text(self.priority.as_str())),
            ("dueDate", Value::optional(self.due_date, Value::time)),
        ]
    }

    /// This task's value for `key`, as a keyset cursor records it.
    pub fn cursor_key(&self, key: SortKey) -> CursorKey {
        match key {
            SortKey::CreatedAt => CursorKey::Time(self.created_at),
            SortKey::UpdatedAt => CursorKey::Time(self.updated_at),
            SortKey::DueDate => CursorKey::OptionalTime(self.due_date),
            SortKey::Priority => CursorKey::Priority(self.priority),
        }
    }

    /// Where this task stands in `sort` relative to `cursor`: `Greater`
    /// means it comes after the cursor's row.
    pub fn cmp_to_cursor(&self, sort: TaskSort, cursor: &Cursor) -> Ordering {
        let ordering = compare_keys(&self.cursor_key(sort.key), &cursor.key)
            .then_with(|| self.id.cmp(&cursor.id));
        if sort.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// Orders two tasks as `sort` lists them.
    pub fn cmp_by(&self, other: &Task, sort: TaskSort) -> Ordering {
        self.cmp_to_cursor(sort, &other.cursor(sort))
    }

    pub fn cursor(&self, sort: TaskSort) -> Cursor {
        Cursor {
            sort,
            key: self.cursor_key(sort.key),
            id: self.id,
        }
    }
}

/// Ascending order of sort keys. A missing due date sorts after every date
/// (and so first when descending), as PostgreSQL's default `NULLS LAST`
/// for ascending indexes does.
fn compare_keys(a: &CursorKey, b: &CursorKey) -> Ordering {
    match (a, b) {
        (CursorKey::Time(a), CursorKey::Time(b)) => a.cmp(b),
        (CursorKey::Priority(a), CursorKey::Priority(b)) => a.cmp(b),
        (CursorKey::OptionalTime(a), CursorKey::OptionalTime(b)) => match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
        // A cursor's key always matches its sort key (checked when parsed).
        _ => Ordering::Equal,
    }
}

/// A due date as the domain keeps it: in UTC (whatever offset it was given
/// with: the same instant, rendered alike by every store) and to the
/// microsecond. The instant must fall in the years 0000–9999 in UTC, the
/// range RFC 3339 can write.
pub fn due_date(t: OffsetDateTime) -> Result<OffsetDateTime, &'static str> {
    const OUT_OF_RANGE: &str =
        "must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";
    let utc = t.checked_to_offset(UtcOffset::UTC).ok_or(OUT_OF_RANGE)?;
    if (0..=9999).contains(&utc.year()) {
        Ok(truncate_to_micros(utc))
    } else {
        Err(OUT_OF_RANGE)
    }
}

/// Stores keep timestamps to the microsecond; so does the domain, so a value
/// reads back exactly as it was written.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    DueDate,
    Priority,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::DueDate,
        SortKey::Priority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "createdAt",
            SortKey::UpdatedAt => "updatedAt",
            SortKey::DueDate => "dueDate",
            SortKey::Priority => "priority",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskSort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for TaskSort {
    /// Newest first.
    fn default() -> Self {
        Self {
            key: SortKey::CreatedAt,
            descending: true,
        }
    }
}

impl TaskSort {
    /// `createdAt`, `-createdAt`, `dueDate`, … (a leading `-` for descending).
    pub fn parse(raw: &str) -> Option<Self> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let key = SortKey::ALL.into_iter().find(|k| k.as_str() == name)?;
        Some(Self { key, descending })
    }

    pub fn as_string(self) -> String {
        let sign = if self.descending { "-" } else { "" };
        format!("{sign}{}", self.key.as_str())
    }
}

/// The sort-key value of the last row a page showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKey {
    Time(OffsetDateTime),
    OptionalTime(Option<OffsetDateTime>),
    Priority(Priority),
}

/// A keyset-pagination position: the next page starts after the row with
/// this sort-key value and id, in this sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub sort: TaskSort,
    pub key: CursorKey,
    pub id: TaskId,
}

impl Cursor {
    /// Whether `key` is of the kind `sort` orders by.
    pub fn key_matches(sort: SortKey, key: &CursorKey) -> bool {
        matches!(
            (sort, key),
            (SortKey::CreatedAt | SortKey::UpdatedAt, CursorKey::Time(_))
                | (SortKey::DueDate, CursorKey::OptionalTime(_))
                | (SortKey::Priority, CursorKey::Priority(_))
        )
    }
}

/// A page of the caller's tasks: in every project they are a member of,
/// or in one.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    /// Only this project's tasks.
    pub project_id: Option<ProjectId>,
    /// Only tasks assigned to this user.
    pub assignee_id: Option<UserId>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_before: Option<OffsetDateTime>,
    pub due_after: Option<OffsetDateTime>,
    pub sort: TaskSort,
    /// 1–100.
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Default for TaskQuery {
    /// Every task, newest first, 20 a page.
    fn default() -> Self {
        Self {
            project_id: None,
            assignee_id: None,
            status: None,
            priority: None,
            due_before: None,
            due_after: None,
            sort: TaskSort::default(),
            limit: Self::DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl TaskQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Whether `task` passes the filters (not the cursor).
    pub fn matches(&self, task: &Task) -> bool {
        self.project_id.is_none_or(|p| task.project_id == p)
            && self.assignee_id.is_none_or(|a| task.assignee_id == Some(a))
            && self.status.is_none_or(|s| task.status == s)
            && self.priority.is_none_or(|p| task.priority == p)
            && self
                .due_before
                .is_none_or(|t| task.due_date.is_some_and(|d| d < t))
            && self
                .due_after
                .is_none_or(|t| task.due_date.is_some_and(|d| d > t))
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !(1..=Self::MAX_LIMIT).contains(&self.limit) {
            errors.add("limit", "must be between 1 and 100");
        }
        if let Some(cursor) = &self.after
            && (cursor.sort != self.sort || !Cursor::key_matches(self.sort.key, &cursor.key))
        {
            errors.add("cursor", "belongs to a different sort order");
        }
        errors.into_result(|| ())
    }
}

/// One page of results with the position to continue from (for tasks, a
/// [`Cursor`]; for other lists, the last row's sort key).
#[derive(Debug, Clone)]
pub struct Page<T, C = Cursor> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page from up to `limit + 1` rows (the extra one says there is a
    /// next page), continuing after the last shown row's `key`.
    pub fn from_rows(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Self {
        let limit = limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sort_parses_every_documented_value() {
        for raw in [
            "createdAt",
            "-createdAt",
            "dueDate",
            "-dueDate",
            "priority",
            "-priority",
            "updatedAt",
            "-updatedAt",
        ] {
            let sort = TaskSort::parse(raw).expect(raw);
            assert_eq!(sort.as_string(), raw);
        }
        assert_eq!(TaskSort::parse("title"), None);
        assert_eq!(TaskSort::parse("--createdAt"), None);
    }

    #[test]
    fn truncation_keeps_microseconds() {
        let t = datetime!(2026-01-02 03:04:05.123456789 UTC);
        assert_eq!(
            truncate_to_micros(t),
            datetime!(2026-01-02 03:04:05.123456 UTC)
        );
    }

    #[test]
    fn titles_reject_every_control_character() {
        for c in [
            '\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            assert_eq!(
                Title::parse(&format!("a{c}b")),
                Err(TextError::Control),
                "{c:?}"
            );
            assert!(Title::parse(&format!("ab{c}")).is_err(), "trailing {c:?}");
        }
        // Not controls: format characters, non-BMP, combining marks.
        for ok in ["a\u{200b}b", "🦀", "e\u{301}", "\u{a0}x\u{3000}"] {
            assert!(Title::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn title_length_counts_characters_as_sent() {
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert_eq!(Title::parse(&"é".repeat(201)), Err(TextError::TooLong(200)));
        // Surrounding spaces count: the limit is on what was sent.
        assert!(Title::parse(&format!(" {} ", "x".repeat(199))).is_err());
        assert_eq!(
            Title::parse(&format!(" {} ", "x".repeat(198)))
                .expect("valid")
                .as_str(),
            "x".repeat(198)
        );
    }

    #[test]
    fn blank_titles_are_rejected_after_trimming() {
        for blank in ["", " ", "\u{a0}\u{2003}\u{3000}"] {
            assert_eq!(Title::parse(blank), Err(TextError::Blank), "{blank:?}");
        }
        assert_eq!(Title::parse("  a  ").expect("valid").as_str(), "a");
    }

    #[test]
    fn descriptions_allow_tabs_and_line_breaks_only() {
        let kept = "line 1\r\n\tline 2\n";
        assert_eq!(
            Description::parse(kept.into()).expect("valid").as_str(),
            kept
        );
        assert!(Description::parse(String::new()).is_ok());
        assert!(Description::parse("  ".into()).is_ok(), "kept as written");
        for c in ['\0', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}', '\u{85}'] {
            assert!(
                Description::parse(format!("a{c}b")).is_err(),
                "{c:?} must be rejected"
            );
        }
        assert!(Description::parse("🦀".repeat(10_000)).is_ok());
        assert!(Description::parse("x".repeat(10_001)).is_err());
    }

    #[test]
    fn due_dates_are_kept_in_utc() {
        let due = due_date(datetime!(2026-12-01 17:00:00.123456789 +14:00)).expect("valid");
        assert_eq!(due, datetime!(2026-12-01 03:00:00.123456 UTC));
        assert_eq!(due.offset(), UtcOffset::UTC);
        // The same instant as given.
        assert_eq!(due, datetime!(2026-12-01 17:00:00.123456 +14:00));
    }

    #[test]
    fn due_dates_outside_rfc_3339_years_are_rejected() {
        assert!(due_date(datetime!(9999-12-31 23:59:59 UTC)).is_ok());
        assert!(due_date(datetime!(0000-01-01 00:00 UTC)).is_ok());
        assert!(due_date(datetime!(9999-12-31 23:00 -02:00)).is_err());
        assert!(due_date(datetime!(0000-01-01 00:00 +01:00)).is_err());
    }

    #[test]
    fn tasks_take_due_dates_in_utc() {
        let owner = UserId(uuid::Uuid::nil());
        let now = datetime!(2026-01-01 0:00 UTC);
        let mut task = Task::create(
            ProjectId(uuid::Uuid::nil()),
            owner,
            NewTask {
                title: "t".into(),
                due_date: Some(datetime!(2026-12-01 17:00 +14:00)),
                ..NewTask::default()
            },
            now,
        )
        .expect("valid");
        assert_eq!(task.due_date.map(|d| d.offset()), Some(UtcOffset::UTC));
        task.apply(
            TaskPatch {
                due_date: Some(Some(datetime!(2026-12-01 00:00 -05:00))),
                ..TaskPatch::default()
            },
            now,
        )
        .expect("valid");
        assert_eq!(task.due_date, Some(datetime!(2026-12-01 05:00 UTC)));
        assert_eq!(task.due_date.map(|d| d.offset()), Some(UtcOffset::UTC));
        let invalid = task.apply(
            TaskPatch {
                title: Some("a\u{0}b".into()),
                due_date: Some(Some(datetime!(9999-12-31 23:00 -02:00))),
                ..TaskPatch::default()
            },
            now,
        );
        let errors = invalid.expect_err("invalid");
        assert!(errors.fields().contains_key("title"), "{errors:?}");
        assert!(errors.fields().contains_key("dueDate"), "{errors:?}");
    }

    #[test]
    fn missing_due_dates_sort_last_ascending() {
        let some = CursorKey::OptionalTime(Some(datetime!(2026-01-01 0:00 UTC)));
        let none = CursorKey::OptionalTime(None);
        assert_eq!(compare_keys(&some, &none), Ordering::Less);
    }
}
