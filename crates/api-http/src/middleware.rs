//! The request-id middleware: one id per request, one log line per request,
//! and every error response rendered as the error envelope.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::{Instrument, field};

use crate::error::{ApiError, ErrorCode};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id when it is 1–64 characters of `[A-Za-z0-9._-]`,
    /// otherwise a new one.
    fn from_request(req: &ServiceRequest) -> Self {
        let theirs = req
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v));
        Self(theirs.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned))
    }
}

pub fn is_valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Assigns the request id, runs the request inside a span that carries it
/// (so every log line of the request names it), logs one summary line, sets
/// `X-Request-Id`, and renders any error response as the error envelope.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = RequestId::from_request(&req);
    req.extensions_mut().insert(request_id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        method = %req.method(),
        route = field::Empty,
        user_id = field::Empty,
    );
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "<unmatched>".to_owned());
    span.record("route", route.as_str());

    let response = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        // An error raised by a later middleware (our own services always
        // answer): render it here, so it too has the envelope and the id.
        Err(error) => {
            let status = error.as_response_error().status_code();
            let api = error
                .as_error::<ApiError>()
                .cloned()
                .unwrap_or_else(|| ApiError::code(ErrorCode::for_status(status)));
            let mut rendered = api.render(status, &request_id.0);
            if let Ok(value) = HeaderValue::from_str(&request_id.0) {
                rendered.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            let status = status.as_u16();
            span.in_scope(|| match status {
                500.. => tracing::error!(status, error = %error, "request failed"),
                _ => tracing::warn!(status, error = %error, "request failed"),
            });
            return Err(actix_web::error::InternalError::from_response(api, rendered).into());
        }
    };
    let mut response = render_error(response, &request_id.0);
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    // A client's mistake (4xx) is not the server's; an unavailable store or
    // shed load (503) is worth a warning; only other 5xx are errors.
    match status {
        503 => tracing::warn!(status, latency_ms, "request finished"),
        500.. => tracing::error!(status, latency_ms, "request finished"),
        _ => tracing::info!(status, latency_ms, "request finished"),
    }
    Ok(response)
}

/// Every 4xx/5xx leaves as the error envelope with this request's id:
/// our own [`ApiError`]s keep their code and details, anything actix or a
/// middleware produced gets the code of its status.
fn render_error(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let api = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .cloned()
        .unwrap_or_else(|| ApiError::code(ErrorCode::for_status(status)));
    let mut rendered = api.render(status, request_id);
    // What tells the client what to do next survives the re-rendering.
    if let Some(allow) = res.headers().get(header::ALLOW) {
        rendered.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if res.response().head().connection_type() == ConnectionType::Close {
        rendered
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    res.into_response(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(is_valid_request_id("abc-DEF_1.2"));
        assert!(is_valid_request_id(&"a".repeat(64)));
        assert!(!is_valid_request_id(&"a".repeat(65)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("a b"));
        assert!(!is_valid_request_id("a/b"));
    }
}
