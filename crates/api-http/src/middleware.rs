//! The request-id middleware: one id per request, one log line per request,
//! and every error response rendered as the error envelope.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_core::Stream;
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

/// The domain's rule ([`domain::RequestId`]): its audit entries record the id.
pub fn is_valid_request_id(id: &str) -> bool {
    domain::RequestId::parse(id).is_some()
}

/// Assigns the request id, runs the request inside a span that carries it
/// (so every log line of the request names it), logs one summary line, sets
/// `X-Request-Id`, and renders any error response as the error envelope.
pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let held = hold_chunked_body(&mut req);
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
                503 => tracing::warn!(status, error = %error, "request failed"),
                500.. => tracing::error!(status, error = %error, "request failed"),
                _ => tracing::warn!(status, error = %error, "request failed"),
            });
            return Err(actix_web::error::InternalError::from_response(api, rendered).into());
        }
    };
    let mut response = render_error(response, &request_id.0);
    if let Some(held) = held {
        response = response.map_body(|_, body| BoxBody::new(HeldUntilSent { body, _held: held }));
    }
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

/// A chunked request body, shared between the handler (which reads it as
/// usual) and the response (which keeps it until it is sent).
type HeldBody = Rc<RefCell<Payload>>;

/// actix-http closes a connection whose request body was not read to its
/// end only when the body has a length; a chunked one it drains after the
/// response, however slowly it arrives, once nothing holds the body any
/// more. So a client could keep a connection by dribbling a chunked body
/// past the [`crate::extract::BodyTimeout`]. Holding the body until the
/// response has been sent makes actix-http close the connection instead.
/// A body read to its end is unaffected.
fn hold_chunked_body(req: &mut ServiceRequest) -> Option<HeldBody> {
    if !req.chunked().unwrap_or(false) {
        return None;
    }
    let held = Rc::new(RefCell::new(req.take_payload()));
    req.set_payload(Payload::Stream {
        payload: Box::pin(SharedBody(Rc::clone(&held))),
    });
    Some(held)
}

/// The handler's side of a [`HeldBody`].
struct SharedBody(HeldBody);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// A response body that keeps the request's [`HeldBody`] alive until it
/// has been sent.
struct HeldUntilSent {
    body: BoxBody,
    _held: HeldBody,
}

impl MessageBody for HeldUntilSent {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Every 4xx/5xx leaves as the error envelope with this request's id:
/// our own [`ApiError`]s keep their code and details, anything actix or a
/// middleware produced gets the code of its status.
fn render_error(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let error = res.response().error();
    let api = error
        .and_then(|e| e.as_error::<ApiError>())
        .cloned()
        .or_else(|| {
            // A refused preflight: say why, or CORS is hard to debug.
            let refused = error?.as_error::<actix_cors::CorsError>()?;
            let message = format!("CORS preflight refused: {refused}.");
            Some(ApiError::new(ErrorCode::for_status(status), message))
        })
        .unwrap_or_else(|| ApiError::code(ErrorCode::for_status(status)));
    let mut rendered = api.render(status, request_id);
    // What tells the client what to do next survives the re-rendering, and
    // so do the CORS headers (without them a page could not read the error).
    for (name, value) in res.headers() {
        if name == header::ALLOW
            || name == header::VARY
            || name.as_str().starts_with("access-control-")
        {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
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
