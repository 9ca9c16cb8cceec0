use actix_web::{HttpResponse, web};
use domain::{Ports, TaskFlow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::{Envelope, ErrorEnvelope, Reply};
use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// Always `ok`.
    #[schema(schema_with = ok)]
    pub status: &'static str,
}

/// Liveness: the process serves requests. Touches no store.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Envelope<HealthStatus>))
)]
pub async fn health() -> Reply<HealthStatus> {
    Reply::new(HealthStatus { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` (every dependency answers; otherwise the answer is 503).
    #[schema(schema_with = ready_status)]
    pub status: &'static str,
    /// Each dependency and `up` or `down`.
    #[schema(schema_with = checks)]
    pub checks: std::collections::BTreeMap<&'static str, &'static str>,
}

fn constant(value: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([value]))
        .build()
}

fn ok() -> utoipa::openapi::Object {
    constant("ok")
}

fn ready_status() -> utoipa::openapi::Object {
    constant("ready")
}

fn checks() -> utoipa::openapi::Object {
    let state = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["up", "down"]));
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .description(Some("Each dependency and `up` or `down`."))
        .additional_properties(Some(state))
        .build()
}

/// Readiness: every store answers. 503 names the ones that do not.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Every store answers", body = Envelope<Readiness>),
        (status = 503, description = "A store does not answer (`SERVICE_UNAVAILABLE`); `details` names it", body = ErrorEnvelope),
    )
)]
pub async fn ready<P: Ports>(app: web::Data<TaskFlow<P>>) -> Result<Reply<Readiness>, ApiError> {
    let health = app.health().await;
    let mut checks = std::collections::BTreeMap::new();
    let mut error = ApiError::code(ErrorCode::ServiceUnavailable);
    for (name, result) in &health.checks {
        match result {
            Ok(()) => {
                checks.insert(*name, "up");
            }
            Err(e) => {
                tracing::warn!(dependency = name, error = %e, "readiness check failed");
                checks.insert(*name, "down");
                error
                    .details
                    .insert((*name).to_owned(), vec![format!("{name} does not answer")]);
            }
        }
    }
    if health.is_ready() {
        Ok(Reply::new(Readiness {
            status: "ready",
            checks,
        }))
    } else {
        error.message = format!(
            "Not ready: {} unavailable.",
            error.details.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        Err(error)
    }
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get, path = "/api-docs/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}
