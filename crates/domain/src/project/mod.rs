//! The projects aggregate: a project, its members with their roles, and the
//! one authorization policy every use case consults ([`policy`]).
//!
//! Its port in [`port`], its use cases in [`use_cases`]; registration makes
//! every user's Inbox.

pub mod policy;
pub mod port;
pub mod use_cases;

use time::OffsetDateTime;

use crate::audit::Value;
use crate::error::ValidationErrors;
use crate::text::{self, TextError};
use crate::user::UserId;

uuid_id! {
    /// A project's id (UUIDv7: time-ordered).
    ProjectId
}

/// 1–100 characters as sent, not blank, no control characters; stored
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::line(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 2 000 characters; line breaks and tabs allowed, other control
/// characters not; kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDescription(String);

impl ProjectDescription {
    pub const MAX_LEN: usize = 2_000;

    pub fn parse(raw: String) -> Result<Self, TextError> {
        text::block(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member's role in a project, ordered by what it may do:
/// `Viewer < Member < Admin < Owner`. Each project has exactly one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectRole {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl ProjectRole {
    pub const ALL: [ProjectRole; 4] = [
        ProjectRole::Viewer,
        ProjectRole::Member,
        ProjectRole::Admin,
        ProjectRole::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Member => "member",
            ProjectRole::Admin => "admin",
            ProjectRole::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// The name of every user's personal project.
pub const INBOX_NAME: &str = "Inbox";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: ProjectName,
    pub description: Option<ProjectDescription>,
    /// Read-only while archived.
    pub archived: bool,
    /// The owner's Inbox: never shared, archived, transferred or deleted.
    pub personal: bool,
    pub owner_id: UserId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// 1 on creation, +1 on every change.
    pub version: i64,
}

impl Project {
    /// A new shared project owned by `owner`, validated.
    pub fn create(
        owner: UserId,
        name: &str,
        description: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Project, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = errors.check("name", ProjectName::parse(name));
        let description = description
            .map(|d| errors.check("description", ProjectDescription::parse(d)))
            .unwrap_or_default();
        match name {
            Some(name) if errors.is_empty() => Ok(Project {
                id: ProjectId::generate(),
                name,
                description,
                archived: false,
                personal: false,
                owner_id: owner,
                created_at: now,
                updated_at: now,
                version: 1,
            }),
            _ => Err(errors),
        }
    }

    /// The key projects are listed by: the name, case-insensitively (the
    /// domain computes it, so every store sorts alike).
    pub fn sort_key(&self) -> String {
        self.name.as_str().to_lowercase()
    }

    /// Renames it or changes its description; returns whether anything
    /// changed (then the version and `updatedAt` move).
    pub fn edit(
        &mut self,
        name: Option<&str>,
        description: Option<Option<String>>,
        now: OffsetDateTime,
    ) -> Result<bool, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = name.and_then(|n| errors.check("name", ProjectName::parse(n)));
        let description = description
            .map(|d| d.and_then(|d| errors.check("description", ProjectDescription::parse(d))));
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut next = self.clone();
        if let Some(name) = name {
            next.name = name;
        }
        if let Some(description) = description {
            next.description = description;
        }
        Ok(self.replace_if_changed(next, now))
    }

    /// Archives or unarchives it; returns whether that changed anything.
    pub fn set_archived(&mut self, archived: bool, now: OffsetDateTime) -> bool {
        let next = Project {
            archived,
            ..self.clone()
        };
        self.replace_if_changed(next, now)
    }

    /// Makes `owner` its owner.
    pub fn set_owner(&mut self, owner: UserId, now: OffsetDateTime) -> bool {
        let next = Project {
            owner_id: owner,
            ..self.clone()
        };
        self.replace_if_changed(next, now)
    }

    fn replace_if_changed(&mut self, mut next: Project, now: OffsetDateTime) -> bool {
        if next == *self {
            return false;
        }
        next.updated_at = now;
        next.version += 1;
        *self = next;
        true
    }

    /// The fields an audit entry of a project records, by their API names.
    pub fn audited_fields(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("name", Value::text(self.name.as_str())),
            (
                "description",
                Value::optional(self.description.as_ref(), |d| Value::text(d.as_str())),
            ),
            ("archived", Value::Bool(self.archived)),
            ("ownerId", Value::id(self.owner_id)),
        ]
    }

    /// `owner`'s personal project, made at registration.
    pub fn inbox(owner: UserId, now: OffsetDateTime) -> Project {
        Project {
            id: ProjectId::generate(),
            name: ProjectName(INBOX_NAME.to_owned()),
            description: None,
            archived: false,
            personal: true,
            owner_id: owner,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

/// A user's membership of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: ProjectRole,
    pub joined_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn names_follow_the_text_rules() {
        assert_eq!(
            ProjectName::parse("  Launch  ").expect("valid").as_str(),
            "Launch"
        );
        assert!(ProjectName::parse(&"x".repeat(100)).is_ok());
        assert!(ProjectName::parse(&"x".repeat(101)).is_err());
        assert_eq!(ProjectName::parse("   "), Err(TextError::Blank));
        assert_eq!(ProjectName::parse("a\u{0}b"), Err(TextError::Control));
        assert_eq!(ProjectName::parse("a\nb"), Err(TextError::Control));
    }

    #[test]
    fn descriptions_keep_line_breaks_and_refuse_other_controls() {
        let kept = ProjectDescription::parse("Goals:\n\t- ship\r\n".into()).expect("valid");
        assert_eq!(kept.as_str(), "Goals:\n\t- ship\r\n");
        assert!(ProjectDescription::parse("a\u{7}b".into()).is_err());
        assert!(ProjectDescription::parse("é".repeat(2_000)).is_ok());
        assert!(ProjectDescription::parse("é".repeat(2_001)).is_err());
    }

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        use ProjectRole::*;
        assert!(Viewer < Member && Member < Admin && Admin < Owner);
        for role in ProjectRole::ALL {
            assert_eq!(ProjectRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(ProjectRole::parse("Owner"), None);
    }

    #[test]
    fn a_new_project_is_shared_unarchived_at_version_1() {
        let owner = UserId::generate();
        let project = Project::create(owner, "Launch", Some("Q4".into()), NOW).expect("valid");
        assert_eq!(project.owner_id, owner);
        assert!(!project.personal && !project.archived);
        assert_eq!((project.version, project.created_at), (1, NOW));
        let errors = Project::create(owner, " ", Some("\u{0}".into()), NOW).expect_err("invalid");
        assert!(errors.fields().contains_key("name"));
        assert!(errors.fields().contains_key("description"));
    }

    #[test]
    fn an_inbox_is_personal() {
        let inbox = Project::inbox(UserId::generate(), NOW);
        assert!(inbox.personal);
        assert_eq!(inbox.name.as_str(), INBOX_NAME);
    }
}
