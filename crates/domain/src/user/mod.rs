//! The users aggregate: a user and its value objects (e-mail, name,
//! password, role); its port in [`port`].

pub mod port;

use std::fmt;

use time::OffsetDateTime;

use crate::text::{self, TextError};

uuid_id! {
    /// A user's id (UUIDv7: time-ordered).
    UserId
}

/// A normalised e-mail address: trimmed, lower-cased, `local@domain`.
///
/// The rules, on the address as sent: at most 254 characters, no control
/// characters; after trimming whitespace, one `@` between a local part of
/// 1–64 characters and a domain of at least two dot-separated labels, and
/// no whitespace. Lower-casing is character by character and keeps the
/// length (a character whose lower case is longer, `İ`, is kept as it is),
/// so the stored address is never longer than the one sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("{}", text::CONTROL_MESSAGE)]
    Control,
    #[error("must be an e-mail address like name@example.com")]
    Malformed,
}

impl Email {
    pub const MAX_LEN: usize = 254;
    pub const MAX_LOCAL_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if text::length(raw) > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if text::has_control(raw, &[]) {
            return Err(EmailError::Control);
        }
        let email = raw.trim();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError::Malformed)?;
        let well_formed = !local.is_empty()
            && text::length(local) <= Self::MAX_LOCAL_LEN
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(char::is_whitespace);
        if well_formed {
            Ok(Self(lower_case_keeping_length(email)))
        } else {
            Err(EmailError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Each character's lower case where that is one character; the character
/// itself otherwise.
fn lower_case_keeping_length(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(single), None) => single,
                _ => c,
            }
        })
        .collect()
}

/// A display name: at most 100 characters as sent, no control characters,
/// not blank; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::line(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as the user typed it. Its `Debug` never shows it.
#[derive(Clone)]
pub struct PlainPassword(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least 8 characters")]
    TooShort,
    #[error("must be at most 128 characters")]
    TooLong,
    #[error("{}", text::CONTROL_MESSAGE)]
    Control,
}

impl PlainPassword {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    /// A password that satisfies the registration policy: 8–128
    /// characters, no control characters (they cannot be typed reliably at
    /// a login prompt). Kept exactly as typed, spaces included.
    pub fn new(raw: String) -> Result<Self, PasswordError> {
        let len = text::length(&raw);
        if len < Self::MIN_LEN {
            Err(PasswordError::TooShort)
        } else if len > Self::MAX_LEN {
            Err(PasswordError::TooLong)
        } else if text::has_control(&raw, &[]) {
            Err(PasswordError::Control)
        } else {
            Ok(Self(raw))
        }
    }

    /// A password presented at login: not checked against the policy (the
    /// policy may have changed since the user registered).
    pub fn presented(raw: String) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainPassword(<redacted>)")
    }
}

/// A password hash in PHC string format, as produced by a [`crate::PasswordHasher`].
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::User, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: UserName,
    /// The system role: admins manage users (not project content).
    pub role: Role,
    pub password_hash: PasswordHash,
    pub created_at: OffsetDateTime,
    /// A disabled user cannot log in; disabling ends their sessions.
    pub disabled: bool,
}

impl User {
    /// The fields an audit entry of a user records.
    pub fn audited_fields(&self) -> Vec<(&'static str, crate::audit::Value)> {
        vec![
            ("role", crate::audit::Value::text(self.role.as_str())),
            ("disabled", crate::audit::Value::Bool(self.disabled)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        assert!(PlainPassword::new("ééééééé".into()).is_err());
        assert!(PlainPassword::new("éééééééé".into()).is_ok());
        assert!(PlainPassword::new("x".repeat(129)).is_err());
        assert!(PlainPassword::new("x".repeat(128)).is_ok());
    }

    #[test]
    fn text_fields_reject_control_characters() {
        for c in ['\0', '\t', '\n', '\r', '\u{7f}', '\u{85}'] {
            assert_eq!(
                UserName::parse(&format!("Ada{c}L")),
                Err(TextError::Control),
                "{c:?}"
            );
            assert_eq!(
                UserName::parse(&format!("Ada{c}")),
                Err(TextError::Control),
                "trailing {c:?}"
            );
            assert_eq!(
                Email::parse(&format!("ada{c}@example.com")),
                Err(EmailError::Control),
                "{c:?}"
            );
            assert_eq!(
                Email::parse(&format!("ada@example.com{c}")),
                Err(EmailError::Control),
                "trailing {c:?}"
            );
            assert_eq!(
                PlainPassword::new(format!("password{c}")).map(drop),
                Err(PasswordError::Control),
                "{c:?}"
            );
        }
        // Spaces are not controls: passwords keep them.
        assert_eq!(
            PlainPassword::new(" pass word ".into())
                .expect("valid")
                .expose(),
            " pass word "
        );
    }

    #[test]
    fn name_length_counts_characters_as_sent() {
        assert!(UserName::parse(&"ü".repeat(100)).is_ok());
        assert_eq!(
            UserName::parse(&"ü".repeat(101)),
            Err(TextError::TooLong(100))
        );
        assert_eq!(
            UserName::parse(&format!(" {} ", "x".repeat(99))),
            Err(TextError::TooLong(100))
        );
        assert_eq!(UserName::parse("\u{3000} "), Err(TextError::Blank));
    }

    #[test]
    fn email_lengths_count_characters_as_sent() {
        let domain = format!("{}.com", "d".repeat(254 - 64 - 1 - 4));
        let longest = format!("{}@{domain}", "l".repeat(64));
        assert_eq!(longest.chars().count(), 254);
        assert!(Email::parse(&longest).is_ok());
        assert_eq!(
            Email::parse(&format!(" {longest}")),
            Err(EmailError::TooLong)
        );
        assert_eq!(
            Email::parse(&format!("{}@example.com", "é".repeat(65))),
            Err(EmailError::Malformed)
        );
        assert!(Email::parse(&format!("{}@example.com", "é".repeat(64))).is_ok());
    }

    #[test]
    fn email_lower_casing_keeps_the_length() {
        assert_eq!(
            Email::parse("ÀÉ@Example.COM").expect("valid").as_str(),
            "àé@example.com"
        );
        // `İ` lower-cases to two characters: it is kept.
        let email = Email::parse("İ@example.com").expect("valid");
        assert_eq!(email.as_str(), "İ@example.com");
    }

    #[test]
    fn secrets_do_not_print() {
        let pw = PlainPassword::presented("hunter22".into());
        assert!(!format!("{pw:?}").contains("hunter22"));
        let hash = PasswordHash::new("$argon2id$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
