//! The one place where failures become HTTP: error codes, statuses and the
//! error envelope.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, ErrorKind, PortError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::{ErrorBody, ErrorEnvelope, Meta};

/// The catalogue of error codes a client can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    MalformedRequest,
    RequestTimeout,
    Unauthenticated,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    ResyncRequired,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    IdempotencyKeyReused,
    RateLimited,
    Internal,
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::ResyncRequired => StatusCode::GONE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code for a response that some other part of the stack (actix
    /// itself, a middleware) produced with only a status.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            410 => Self::ResyncRequired,
            412 => Self::PreconditionFailed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            503 => Self::ServiceUnavailable,
            400..=499 => Self::MalformedRequest,
            _ => Self::Internal,
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            Self::MalformedRequest => "The request could not be understood.",
            Self::RequestTimeout => "The request took too long to arrive.",
            Self::Unauthenticated => "Authentication is required.",
            Self::InvalidCredentials => "Invalid e-mail or password.",
            Self::Forbidden => "You are not allowed to do this.",
            Self::NotFound => "No such resource.",
            Self::MethodNotAllowed => "This method is not allowed on this resource.",
            Self::Conflict => "The request conflicts with the current state.",
            Self::ResyncRequired => "What you asked to continue from is no longer kept: reload.",
            Self::PreconditionFailed => "The resource has changed since the version you hold.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => {
                "The request body must be JSON (Content-Type: application/json)."
            }
            Self::ValidationFailed => "The request is invalid.",
            Self::IdempotencyKeyReused => {
                "This Idempotency-Key was used with another request body."
            }
            Self::RateLimited => "Too many requests.",
            Self::Internal => "An internal error occurred.",
            Self::ServiceUnavailable => "The service is temporarily unavailable.",
        }
    }
}

/// An error as the API reports it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: BTreeMap<String, Vec<String>>,
    /// Seconds for the `Retry-After` header, when the client should retry.
    pub retry_after: Option<u64>,
    /// Close the connection after this response.
    pub close: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: BTreeMap::new(),
            retry_after: None,
            close: false,
        }
    }

    pub fn code(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }

    pub fn validation(errors: &ValidationErrors) -> Self {
        Self {
            code: ErrorCode::ValidationFailed,
            message: ErrorCode::ValidationFailed.default_message().to_owned(),
            details: errors.fields().clone(),
            retry_after: None,
            close: false,
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedRequest, message)
    }

    /// The body did not arrive within `timeout`. The connection is closed
    /// with the response: the rest of the body is still on its way.
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        Self {
            close: true,
            ..Self::new(
                ErrorCode::RequestTimeout,
                format!(
                    "The request body did not arrive within {} s.",
                    timeout.as_secs_f64()
                ),
            )
        }
    }

    /// A failed dependency: logged here with its cause chain, reported to
    /// the client without internals.
    pub fn port(error: &PortError) -> Self {
        let line = domain::error::describe(error);
        match error {
            PortError::Unavailable { what, .. } => {
                tracing::warn!(dependency = what, "{line}");
                Self::code(ErrorCode::ServiceUnavailable)
            }
            // Load shedding, by design: the request summary line records
            // the 503; one more line per shed request would only add noise
            // under exactly the load that causes it.
            PortError::Overloaded { what, retry_after } => {
                tracing::debug!(dependency = what, "{line}");
                // Whole seconds, rounded up: retrying early only meets the
                // same refusal.
                let seconds =
                    (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1);
                Self {
                    retry_after: Some(seconds),
                    ..Self::new(
                        ErrorCode::ServiceUnavailable,
                        format!("The server is busy; retry after {seconds} s."),
                    )
                }
            }
            PortError::Unexpected { what, .. } => {
                tracing::error!(dependency = what, "{line}");
                Self::code(ErrorCode::Internal)
            }
        }
    }

    /// The response for this error: `status`, the envelope with
    /// `request_id`, `Retry-After` when set, and `Connection: close` when
    /// the connection must end.
    pub fn render(&self, status: StatusCode, request_id: &str) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        if self.close {
            response.force_close();
        }
        response.json(self.envelope(request_id))
    }

    /// The error envelope for this error.
    pub fn envelope(&self, request_id: &str) -> ErrorEnvelope {
        ErrorEnvelope {
            success: false,
            data: None,
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
            meta: Meta {
                request_id: request_id.to_owned(),
                pagination: None,
                head_seq: None,
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    /// The envelope without a request id: the request-id middleware renders
    /// every error response again with it.
    fn error_response(&self) -> HttpResponse {
        self.render(self.status_code(), "")
    }
}

/// Every use case's error, by its kind: the one mapping from the domain's
/// failures to HTTP. The message is the error's own (written for people),
/// except for port failures, whose details stay in the logs.
impl<E: DomainError> From<E> for ApiError {
    fn from(e: E) -> Self {
        let code = match e.kind() {
            ErrorKind::Invalid(errors) => return Self::validation(errors),
            ErrorKind::Port(port) => return Self::port(port),
            ErrorKind::Unauthenticated => ErrorCode::Unauthenticated,
            ErrorKind::InvalidCredentials => ErrorCode::InvalidCredentials,
            ErrorKind::Forbidden => ErrorCode::Forbidden,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::Conflict => ErrorCode::Conflict,
            ErrorKind::ResyncRequired => ErrorCode::ResyncRequired,
            ErrorKind::PreconditionFailed { current_version } => {
                let mut error = Self::new(ErrorCode::PreconditionFailed, e.to_string());
                error.details.insert(
                    "currentVersion".to_owned(),
                    vec![current_version.to_string()],
                );
                return error;
            }
        };
        Self::new(code, e.to_string())
    }
}

impl ApiError {
    /// A body that breaks a DTO's garde rules: 422 with each field (in the
    /// camelCase clients use) and its messages.
    pub fn from_report(report: garde::Report) -> Self {
        let mut errors = ValidationErrors::new();
        for (path, error) in report.iter() {
            let field = camel_case(&path.to_string());
            let field = if field.is_empty() { "body" } else { &field };
            errors.add(field, error.message());
        }
        Self::validation(&errors)
    }
}

/// `due_date` → `dueDate`: garde reports Rust field names, clients see
/// camelCase ones.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_become_camel_case() {
        assert_eq!(camel_case("due_date"), "dueDate");
        assert_eq!(camel_case("title"), "title");
    }

    /// A use-case error of every kind.
    #[derive(Debug, thiserror::Error)]
    enum Sample {
        #[error("invalid")]
        Invalid(ValidationErrors),
        #[error("Who are you?")]
        Unauthenticated,
        #[error("Wrong password.")]
        InvalidCredentials,
        #[error("Not yours.")]
        Forbidden,
        #[error("No such thing.")]
        NotFound,
        #[error("Already there.")]
        Conflict,
        #[error("Reload.")]
        ResyncRequired,
        #[error("secret internals")]
        Port(PortError),
    }

    impl DomainError for Sample {
        fn kind(&self) -> ErrorKind<'_> {
            match self {
                Self::Invalid(errors) => ErrorKind::Invalid(errors),
                Self::Unauthenticated => ErrorKind::Unauthenticated,
                Self::InvalidCredentials => ErrorKind::InvalidCredentials,
                Self::Forbidden => ErrorKind::Forbidden,
                Self::NotFound => ErrorKind::NotFound,
                Self::Conflict => ErrorKind::Conflict,
                Self::ResyncRequired => ErrorKind::ResyncRequired,
                Self::Port(e) => ErrorKind::Port(e),
            }
        }
    }

    #[test]
    fn every_kind_maps_to_its_code_with_the_errors_own_message() {
        for (error, code, message) in [
            (
                Sample::Unauthenticated,
                ErrorCode::Unauthenticated,
                "Who are you?",
            ),
            (
                Sample::InvalidCredentials,
                ErrorCode::InvalidCredentials,
                "Wrong password.",
            ),
            (Sample::Forbidden, ErrorCode::Forbidden, "Not yours."),
            (Sample::NotFound, ErrorCode::NotFound, "No such thing."),
            (Sample::Conflict, ErrorCode::Conflict, "Already there."),
            (Sample::ResyncRequired, ErrorCode::ResyncRequired, "Reload."),
        ] {
            let api = ApiError::from(error);
            assert_eq!((api.code, api.message.as_str()), (code, message));
        }
        let api = ApiError::from(Sample::Invalid(ValidationErrors::single(
            "title", "too long",
        )));
        assert_eq!(api.code, ErrorCode::ValidationFailed);
        assert_eq!(api.details["title"], ["too long"]);
    }

    #[test]
    fn port_failures_disclose_nothing() {
        let unavailable = PortError::unavailable("database", "connection refused at 10.0.0.5");
        let api = ApiError::from(Sample::Port(unavailable));
        assert_eq!(api.code, ErrorCode::ServiceUnavailable);
        assert!(!api.message.contains("10.0.0.5") && !api.message.contains("secret"));
        let overloaded =
            PortError::overloaded("password hasher", std::time::Duration::from_millis(1500));
        let api = ApiError::from(overloaded);
        assert_eq!(api.code, ErrorCode::ServiceUnavailable);
        assert_eq!(api.retry_after, Some(2), "rounded up");
        let unexpected = PortError::unexpected("database", "syntax error at or near SELECT");
        let api = ApiError::from(unexpected);
        assert_eq!(api.code, ErrorCode::Internal);
        assert!(!api.message.contains("SELECT"));
    }

    /// Codes that share their status with another are left out: a bare
    /// 401 is `UNAUTHENTICATED`, a bare 422 `VALIDATION_FAILED`.
    #[test]
    fn every_code_maps_back_from_its_status() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::RequestTimeout,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::ResyncRequired,
            ErrorCode::PreconditionFailed,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::ValidationFailed,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
            ErrorCode::ServiceUnavailable,
        ] {
            assert_eq!(ErrorCode::for_status(code.status()), code);
        }
    }
}
