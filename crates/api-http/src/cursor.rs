//! Opaque keyset cursors for the lists other than tasks (projects, members,
//! audit entries, users): base64url of `v1|<list>|<key parts…>`, the last
//! part taking the rest (it may contain `|`). A cursor of another list is
//! refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AuditId, ProjectId, UserId, ValidationErrors};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::envelope::Pagination;
use crate::error::ApiError;

/// The default page size of every list.
pub const DEFAULT_LIMIT: u32 = 20;

fn encode(list: &str, parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{list}|{}", parts.join("|")))
}

fn decode(list: &str, raw: &str, parts: usize) -> Option<Vec<String>> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text
        .strip_prefix("v1|")?
        .strip_prefix(list)?
        .strip_prefix('|')?;
    let split: Vec<String> = rest.splitn(parts, '|').map(str::to_owned).collect();
    (split.len() == parts).then_some(split)
}

fn time(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339).ok()
}

fn time_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A list's position: how to write it in a cursor and read it back.
pub trait Position: Sized {
    const LIST: &'static str;
    fn encode(&self) -> String;
    fn decode(raw: &str) -> Option<Self>;
}

impl Position for (String, ProjectId) {
    const LIST: &'static str = "projects";
    fn encode(&self) -> String {
        encode(Self::LIST, &[&self.1.to_string(), &self.0])
    }
    fn decode(raw: &str) -> Option<Self> {
        let parts = decode(Self::LIST, raw, 2)?;
        Some((
            parts[1].clone(),
            ProjectId(Uuid::parse_str(&parts[0]).ok()?),
        ))
    }
}

impl Position for (OffsetDateTime, UserId) {
    const LIST: &'static str = "members";
    fn encode(&self) -> String {
        encode(Self::LIST, &[&time_text(self.0), &self.1.to_string()])
    }
    fn decode(raw: &str) -> Option<Self> {
        let parts = decode(Self::LIST, raw, 2)?;
        Some((time(&parts[0])?, UserId(Uuid::parse_str(&parts[1]).ok()?)))
    }
}

impl Position for (OffsetDateTime, AuditId) {
    const LIST: &'static str = "audit";
    fn encode(&self) -> String {
        encode(Self::LIST, &[&time_text(self.0), &self.1.to_string()])
    }
    fn decode(raw: &str) -> Option<Self> {
        let parts = decode(Self::LIST, raw, 2)?;
        Some((time(&parts[0])?, AuditId(Uuid::parse_str(&parts[1]).ok()?)))
    }
}

/// A position in a project's event log: the last seq seen.
impl Position for i64 {
    const LIST: &'static str = "events";
    fn encode(&self) -> String {
        encode(Self::LIST, &[&self.to_string()])
    }
    fn decode(raw: &str) -> Option<Self> {
        let parts = decode(Self::LIST, raw, 1)?;
        parts[0].parse().ok().filter(|seq: &i64| *seq >= 0)
    }
}

impl Position for UserId {
    const LIST: &'static str = "users";
    fn encode(&self) -> String {
        encode(Self::LIST, &[&self.to_string()])
    }
    fn decode(raw: &str) -> Option<Self> {
        let parts = decode(Self::LIST, raw, 1)?;
        Some(UserId(Uuid::parse_str(&parts[0]).ok()?))
    }
}

/// `limit` and `cursor`, as every list takes them. Bad values are 400
/// `MALFORMED_REQUEST` naming the parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–100 (default 20).
    #[param(schema_with = crate::dto::schemas::limit)]
    pub limit: Option<String>,
    /// `meta.pagination.nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size and the position to start after; errors recorded in
    /// `errors`.
    pub fn parse<C: Position>(self, errors: &mut ValidationErrors) -> (u32, Option<C>) {
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(raw) => errors
                .check(
                    "limit",
                    raw.parse::<u32>()
                        .ok()
                        .filter(|l| (1..=domain::MAX_PAGE).contains(l))
                        .ok_or("must be an integer from 1 to 100"),
                )
                .unwrap_or(DEFAULT_LIMIT),
        };
        let after = self.cursor.and_then(|raw| {
            errors.check(
                "cursor",
                C::decode(&raw).ok_or("is not a cursor of this listing"),
            )
        });
        (limit, after)
    }
}

/// 400 with every bad parameter, or nothing.
pub fn check(errors: ValidationErrors) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        let mut error = ApiError::malformed("Invalid query parameters.");
        error.details = errors.fields().clone();
        Err(error)
    }
}

/// The pagination block of a page that continues at `next`.
pub fn pagination<C: Position>(limit: u32, next: Option<&C>) -> Pagination {
    Pagination {
        limit,
        next_cursor: next.map(Position::encode),
        has_more: next.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_stay_in_their_list() {
        let project = ("a|b c".to_owned(), ProjectId::generate());
        assert_eq!(
            <(String, ProjectId)>::decode(&project.encode()),
            Some(project.clone())
        );
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(1_795_000_000_123_456_000).expect("in range");
        let member = (at, UserId::generate());
        assert_eq!(
            <(OffsetDateTime, UserId)>::decode(&member.encode()),
            Some(member)
        );
        let entry = (at, AuditId::generate());
        assert_eq!(
            <(OffsetDateTime, AuditId)>::decode(&entry.encode()),
            Some(entry)
        );
        // A members cursor is not an audit cursor.
        assert_eq!(<(OffsetDateTime, AuditId)>::decode(&member.encode()), None);
        let user = UserId::generate();
        assert_eq!(UserId::decode(&user.encode()), Some(user));
        assert_eq!(UserId::decode("not base64!"), None);
    }
}
