//! Extractors that say what they mean: a JSON body that is parsed and
//! validated or rejected in the envelope, and the authenticated caller.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use domain::{IfMatch, Ports, Principal, TaskFlow};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};
use crate::middleware::RequestId;

/// The largest JSON body accepted (a 10 000-character description in
/// four-byte characters fits).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request body may take to arrive once the handler asks for
/// it (right after the request head): without a bound, a client sending a
/// byte every few seconds holds its connection and a worker's attention
/// indefinitely. Register it as app data; [`BodyTimeout::DEFAULT`] applies
/// when none is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Duration);

impl BodyTimeout {
    pub const DEFAULT: BodyTimeout = BodyTimeout(Duration::from_secs(15));
}

/// A JSON request body, deserialised and validated.
///
/// Not JSON: 415. Over [`BODY_LIMIT`]: 413. Slower than [`BodyTimeout`]:
/// 408, and the connection is closed. Not well-formed JSON: 400.
/// Well-formed but of the wrong shape (unknown field, wrong type, missing
/// field) or breaking a rule: 422 with the offending field in `details`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> FromRequest for Body<T>
where
    T: DeserializeOwned + garde::Validate<Context = ()> + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = match req.mime_type() {
            Ok(Some(mime)) => {
                mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
            }
            _ => false,
        };
        let bytes = web::Bytes::from_request(req, payload);
        let req = req.clone();
        let BodyTimeout(timeout) = req
            .app_data::<BodyTimeout>()
            .copied()
            .unwrap_or(BodyTimeout::DEFAULT);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::code(ErrorCode::UnsupportedMediaType));
            }
            let bytes = actix_web::rt::time::timeout(timeout, bytes).await;
            let bytes = bytes.map_err(|_elapsed| ApiError::body_timeout(timeout))?;
            let bytes = bytes.map_err(|e| {
                if e.as_response_error().status_code() == ErrorCode::PayloadTooLarge.status() {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("The request body must be at most {BODY_LIMIT} bytes."),
                    )
                } else {
                    ApiError::malformed("The request body could not be read.")
                }
            })?;
            // The body as sent, for an idempotency key's fingerprint.
            req.extensions_mut().insert(RawBody(bytes.clone()));
            let value = parse_json::<T>(&bytes)?;
            value.validate().map_err(ApiError::from_report)?;
            Ok(Body(value))
        })
    }
}

/// The bytes of a request body read by [`Body`], left in the request's
/// extensions.
#[derive(Debug, Clone)]
pub struct RawBody(pub web::Bytes);

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Well-formedness first, as a whole (trailing characters included): a
    // typed parse straight from the bytes neither checks the end of the
    // input nor tells every shape error from a syntax error (a number where
    // an enum is expected is reported as "expected value", a syntax error).
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed(format!("The request body is not valid JSON: {e}")))?;
    // Every request body is a JSON object; serde's derive would also read
    // a struct from an array of its fields in order (`["x"]` as a task
    // titled "x").
    if !value.is_object() {
        return Err(ApiError::validation(&domain::ValidationErrors::single(
            "body",
            "must be a JSON object",
        )));
    }
    // Well-formed: whatever fails now is the shape, with the field's path.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." { "body".to_owned() } else { path };
        let mut errors = domain::ValidationErrors::new();
        errors.add(&field, describe_data_error(&inner));
        ApiError::validation(&errors)
    })
}

/// serde_json's message without its position suffix.
fn describe_data_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

/// The authenticated caller: a valid bearer access token whose session is
/// still alive. A missing, malformed, expired or revoked token is 401.
#[derive(Debug)]
pub struct Caller<P> {
    pub principal: Principal,
    _ports: PhantomData<fn() -> P>,
}

impl<P: Ports> FromRequest for Caller<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let app = req.app_data::<web::Data<TaskFlow<P>>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let app = app.ok_or_else(|| ApiError::code(ErrorCode::Internal))?;
            let token = token.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "A bearer access token is required (Authorization: Bearer <token>).",
                )
            })?;
            let mut principal = app.authenticate(&token).await?;
            principal.request_id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| domain::RequestId::parse(&id.0));
            principal.client_mutation_id = client_mutation_id(&req)?;
            tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
            req.extensions_mut().insert(principal);
            Ok(Caller {
                principal,
                _ports: PhantomData,
            })
        })
    }
}

/// The header a client names its change with, echoed in the change's
/// events.
pub const CLIENT_MUTATION_ID_HEADER: &str = "x-client-mutation-id";

/// `X-Client-Mutation-Id`, when sent: 1–64 of `[A-Za-z0-9._-]`, else 400.
fn client_mutation_id(req: &HttpRequest) -> Result<Option<domain::ClientMutationId>, ApiError> {
    let Some(value) = req.headers().get(CLIENT_MUTATION_ID_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(domain::RequestId::parse)
        .map(Some)
        .ok_or_else(|| {
            let mut error = ApiError::malformed("Invalid X-Client-Mutation-Id header.");
            error.details.insert(
                "X-Client-Mutation-Id".to_owned(),
                vec!["must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".to_owned()],
            );
            error
        })
}

pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Rejections of actix's own extractors (query strings and path segments)
/// in the envelope, as 400 `MALFORMED_REQUEST`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| ApiError::malformed(format!("Invalid query string: {err}")).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| ApiError::malformed(format!("Invalid path: {err}")).into())
}

pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BODY_LIMIT)
}

/// One entity tag of an `If-Match` or `If-None-Match` list: its opaque
/// value, and whether it is weak (`W/"…"`).
fn entity_tags(value: &str) -> Vec<(bool, &str)> {
    value
        .split(',')
        .filter_map(|tag| {
            let tag = tag.trim();
            let (weak, tag) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let opaque = tag.strip_prefix('"')?.strip_suffix('"')?;
            Some((weak, opaque))
        })
        .collect()
}

/// `If-Match` (RFC 9110): the versions a PUT, PATCH or DELETE may apply to.
/// Absent or `*`: any. It compares strongly, so a weak tag, or one this API
/// never gave, matches nothing (412 if it is all there is).
#[derive(Debug, Clone, Default)]
pub struct Precondition(pub IfMatch);

impl FromRequest for Precondition {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Vec<&str> = req
            .headers()
            .get_all(header::IF_MATCH)
            .filter_map(|v| v.to_str().ok())
            .collect();
        let if_match = if values.is_empty() || values.iter().any(|v| v.trim() == "*") {
            IfMatch::Any
        } else {
            IfMatch::Versions(
                values
                    .iter()
                    .flat_map(|v| entity_tags(v))
                    .filter(|(weak, _)| !weak)
                    .filter_map(|(_, opaque)| opaque.parse().ok())
                    .collect(),
            )
        };
        std::future::ready(Ok(Precondition(if_match)))
    }
}

/// `If-None-Match` on a GET (RFC 9110): when it names the current version
/// (weakly: `W/"7"` names 7 too) or is `*`, the answer is 304.
#[derive(Debug, Clone, Default)]
pub struct IfNoneMatch(Vec<String>);

impl IfNoneMatch {
    pub fn names(&self, version: i64) -> bool {
        let version = version.to_string();
        self.0.iter().any(|tag| tag == "*" || *tag == version)
    }
}

impl FromRequest for IfNoneMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut tags = Vec::new();
        for value in req
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .filter_map(|v| v.to_str().ok())
        {
            if value.trim() == "*" {
                tags.push("*".to_owned());
            }
            tags.extend(entity_tags(value).into_iter().map(|(_, o)| o.to_owned()));
        }
        std::future::ready(Ok(IfNoneMatch(tags)))
    }
}

#[cfg(test)]
mod precondition_tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn if_match(values: &[&str]) -> IfMatch {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((header::IF_MATCH, *value));
        }
        let (req, mut payload) = req.to_http_parts();
        futures_ready(Precondition::from_request(&req, &mut payload)).0
    }

    fn futures_ready<T>(ready: std::future::Ready<Result<T, ApiError>>) -> T {
        ready.into_inner().expect("parsed")
    }

    #[test]
    fn if_match_takes_strong_versions_only() {
        assert_eq!(if_match(&[]), IfMatch::Any);
        assert_eq!(if_match(&["*"]), IfMatch::Any);
        assert_eq!(if_match(&["\"3\", \"4\""]), IfMatch::Versions(vec![3, 4]));
        assert_eq!(if_match(&["\"3\"", "\"5\""]), IfMatch::Versions(vec![3, 5]));
        assert_eq!(if_match(&["W/\"3\""]), IfMatch::Versions(vec![]));
        assert_eq!(if_match(&["3", "\"x\""]), IfMatch::Versions(vec![]));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let req = TestRequest::default()
            .append_header((header::IF_NONE_MATCH, "W/\"7\", \"9\""))
            .to_http_request();
        let tags = futures_ready(IfNoneMatch::from_request(&req, &mut Payload::None));
        assert!(tags.names(7) && tags.names(9) && !tags.names(8));
        let any = TestRequest::default()
            .append_header((header::IF_NONE_MATCH, "*"))
            .to_http_request();
        assert!(futures_ready(IfNoneMatch::from_request(&any, &mut Payload::None)).names(1));
    }
}
