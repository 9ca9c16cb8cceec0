//! Audit entries on the wire.

use std::collections::BTreeMap;

use domain::{AuditEntry, Value};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryResponse {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who made the change.
    pub actor_id: Uuid,
    #[schema(schema_with = super::schemas::audit_action)]
    pub action: &'static str,
    #[schema(schema_with = super::schemas::entity_type)]
    pub entity_type: &'static str,
    /// The task's, project's or user's id; for a member, their user id.
    pub entity_id: Uuid,
    /// `null` for entries about users.
    #[schema(required = true)]
    pub project_id: Option<Uuid>,
    /// Each changed field with its value before and after, as the API shows
    /// it: on creation every `from` is `null`, on deletion every `to`.
    pub changes: BTreeMap<String, FieldChange>,
    /// The `X-Request-Id` of the request that made the change.
    #[schema(required = true)]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldChange {
    #[schema(schema_with = super::schemas::field_value, required = true)]
    pub from: serde_json::Value,
    #[schema(schema_with = super::schemas::field_value, required = true)]
    pub to: serde_json::Value,
}

fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Text(t) => t.clone().into(),
    }
}

impl From<&AuditEntry> for AuditEntryResponse {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.0,
            at: e.at,
            actor_id: e.actor_id.0,
            action: e.action.as_str(),
            entity_type: e.entity_type.as_str(),
            entity_id: e.entity_id,
            project_id: e.project_id.map(|p| p.0),
            changes: e
                .changes
                .0
                .iter()
                .map(|(field, change)| {
                    (
                        field.clone(),
                        FieldChange {
                            from: json(&change.from),
                            to: json(&change.to),
                        },
                    )
                })
                .collect(),
            request_id: e.request_id.map(|r| r.as_str().to_owned()),
        }
    }
}
