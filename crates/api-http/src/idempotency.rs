//! `Idempotency-Key` on the creates (`POST` of tasks, projects, members): a
//! retry with the same key and body gets the first response again, without
//! a second change.
//!
//! A key is scoped to the caller and the request's method and path, and
//! kept in the [`IdempotencyStore`] (shared by every instance) with the
//! body's fingerprint: SHA-256 of the body in a canonical form (JSON with
//! sorted keys and no white space, so neither changes it). A request with a
//! key claims it for [`LEASE`], then
//!
//! - runs, and keeps a 2xx response (status, `Location`, `ETag`, `data`)
//!   for [`RETENTION`]; any other outcome releases the key, so the request
//!   can be retried with it;
//! - or finds it completed with the same body: the kept response, with the
//!   retry's own `meta.requestId` and `Idempotent-Replayed: true`;
//! - or finds it held by the same body (a retry racing the first request):
//!   polls until it is completed or released, for at most [`WAIT`], then
//!   409 `CONFLICT` with `Retry-After`;
//! - or finds it used with another body: 422 `IDEMPOTENCY_KEY_REUSED`.
//!
//! A request that dies between its claim and its end (the process is
//! killed) holds the key until the lease lapses; the next retry then takes
//! it over. A request that outlives its lease may be taken over while it
//! runs, and so run twice: the lease is far longer than a create takes.

use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, Responder, web};
use domain::{Claim, Fingerprint, IdempotencyKey, IdempotencyStore, Ports, TaskFlow, UserId};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::envelope::{KeptReply, Reply};
use crate::error::{ApiError, ErrorCode};
use crate::extract::RawBody;

/// The request header naming a create.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The response header of a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_LENGTH: usize = 255;
/// How long a completed request's response is kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a request holds its key while it runs (longer than any create
/// takes: statements time out after 5 s, lock waits too).
pub const LEASE: Duration = Duration::from_secs(30);
/// How long a retry waits for the request in flight with its key.
pub const WAIT: Duration = Duration::from_secs(10);
/// The first pause between two looks at a key in flight, and the longest.
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(250);

/// The optional `Idempotency-Key` of a create, and what it takes to honour
/// it. Extracting it never fails; [`Idempotent::run`] checks the header.
#[derive(Debug)]
pub struct Idempotent<P> {
    req: HttpRequest,
    _ports: PhantomData<fn() -> P>,
}

impl<P: Ports> FromRequest for Idempotent<P> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self {
            req: req.clone(),
            _ports: PhantomData,
        }))
    }
}

impl<P: Ports> Idempotent<P> {
    /// The response of `create` (a future not yet started), made at most
    /// once per key when the request carries one; `user` is the caller.
    /// Without a key, `create` simply runs.
    pub async fn run<T: Serialize>(
        self,
        user: UserId,
        create: impl Future<Output = Result<Reply<T>, ApiError>>,
    ) -> Result<HttpResponse, ApiError> {
        let Some(key) = header_key(&self.req)? else {
            return Ok(create.await?.respond_to(&self.req));
        };
        let app = self
            .req
            .app_data::<web::Data<TaskFlow<P>>>()
            .cloned()
            .ok_or_else(|| ApiError::code(ErrorCode::Internal))?;
        let store = app.idempotency();
        let key = IdempotencyKey {
            user,
            operation: format!("{} {}", self.req.method(), self.req.path()),
            key,
        };
        let raw = self.req.extensions().get::<RawBody>().cloned();
        let fingerprint = fingerprint(raw.as_ref().map_or(&[][..], |b| &b.0[..]));
        let token = match wait_for_claim(store, &key, &fingerprint).await? {
            Held::Ours(token) => token,
            Held::Done(kept) => return replay(&self.req, &kept),
        };
        let outcome = create.await;
        let kept = match &outcome {
            Ok(reply) if reply.is_success() => reply.to_kept().ok(),
            _ => None,
        };
        match kept.and_then(|kept| serde_json::to_vec(&kept).ok()) {
            Some(bytes) => {
                match store
                    .complete(&key, &fingerprint, &token, &bytes, RETENTION)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        "an idempotent request outlived its lease and was taken over; its change may have been made twice"
                    ),
                    // The change is made: answer it. A retry after the
                    // lease may make it again.
                    Err(e) => tracing::warn!(
                        "could not keep the response of an idempotent request: {}",
                        domain::error::describe(&e)
                    ),
                }
            }
            None => {
                if let Err(e) = store.release(&key, &token).await {
                    // The key stays held until its lease lapses.
                    tracing::warn!(
                        "could not release an idempotency key: {}",
                        domain::error::describe(&e)
                    );
                }
            }
        }
        Ok(outcome?.respond_to(&self.req))
    }
}

enum Held {
    Ours(domain::LeaseToken),
    Done(Vec<u8>),
}

/// Claims `key`, waiting while a request with the same body holds it.
async fn wait_for_claim<S: IdempotencyStore>(
    store: &S,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
) -> Result<Held, ApiError> {
    let deadline = Instant::now() + WAIT;
    let mut pause = FIRST_POLL;
    loop {
        match store.claim(key, fingerprint, LEASE).await? {
            Claim::Acquired(token) => return Ok(Held::Ours(token)),
            Claim::Completed(kept) => return Ok(Held::Done(kept)),
            Claim::Mismatch => return Err(ApiError::code(ErrorCode::IdempotencyKeyReused)),
            Claim::InFlight if Instant::now() + pause > deadline => {
                return Err(ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        ErrorCode::Conflict,
                        "A request with this Idempotency-Key is still in progress; retry it later.",
                    )
                });
            }
            Claim::InFlight => {
                actix_web::rt::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_POLL);
            }
        }
    }
}

/// The kept response again, with this request's own `meta`.
fn replay(req: &HttpRequest, kept: &[u8]) -> Result<HttpResponse, ApiError> {
    let reply = serde_json::from_slice::<KeptReply>(kept)
        .ok()
        .and_then(KeptReply::into_reply)
        .ok_or_else(|| {
            tracing::error!("a kept idempotent response does not parse");
            ApiError::code(ErrorCode::Internal)
        })?;
    let mut response = reply.respond_to(req);
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
    Ok(response)
}

/// The request's `Idempotency-Key`, if it sent one: 1–255 visible ASCII
/// characters (`!` to `~`), once; anything else is 400.
fn header_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let valid = values.next().is_none()
        && (1..=MAX_KEY_LENGTH).contains(&value.len())
        && value.as_bytes().iter().all(|b| b.is_ascii_graphic());
    if !valid {
        let mut error = ApiError::malformed("Invalid Idempotency-Key header.");
        error.details.insert(
            "Idempotency-Key".to_owned(),
            vec![format!(
                "must be sent once, 1-{MAX_KEY_LENGTH} visible ASCII characters ('!' to '~')"
            )],
        );
        return Err(error);
    }
    Ok(value.to_str().ok().map(str::to_owned))
}

/// SHA-256 of the body in canonical form (hex): parsed JSON written again
/// with its object keys sorted and no white space; a body that is not JSON
/// as it is.
pub fn fingerprint(body: &[u8]) -> Fingerprint {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .map(|value| {
            let mut out = Vec::with_capacity(body.len());
            canonical_json(&value, &mut out);
            out
        });
    let digest = Sha256::digest(canonical.as_deref().unwrap_or(body));
    Fingerprint(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// `value` with every object's keys in order, whatever order serde_json's
/// map keeps (it keeps insertion order with its `preserve_order` feature).
fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(&Value::String(key.clone()), out);
                out.push(b':');
                canonical_json(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

fn write_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_fingerprint_ignores_white_space_and_key_order() {
        let a = fingerprint(br#"{"title":"Plan","tags":{"b":1,"a":[1,2]}}"#);
        let b = fingerprint(b"{ \"tags\" : {\"a\": [1, 2], \"b\": 1},\n \"title\": \"Plan\" }");
        assert_eq!(a, b);
        assert_eq!(a.0.len(), 64);
        assert_ne!(
            a,
            fingerprint(br#"{"title":"Plan ","tags":{"b":1,"a":[1,2]}}"#)
        );
        assert_ne!(
            a,
            fingerprint(br#"{"title":"Plan","tags":{"b":1,"a":[2,1]}}"#)
        );
        assert_ne!(fingerprint(b"{}"), fingerprint(b""));
        assert_eq!(fingerprint(b"not json"), fingerprint(b"not json"));
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not  json"));
    }

    fn key_of(values: &[&[u8]]) -> Result<Option<String>, ApiError> {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((
                IDEMPOTENCY_KEY_HEADER,
                HeaderValue::from_bytes(value).expect("a header value"),
            ));
        }
        header_key(&req.to_http_request())
    }

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters_sent_once() {
        assert_eq!(key_of(&[]).expect("no key"), None);
        let longest = "k".repeat(MAX_KEY_LENGTH);
        for good in [&b"a"[..], b"!~", b"3f2c-\"quoted\"/{}", longest.as_bytes()] {
            assert_eq!(
                key_of(&[good])
                    .expect("valid")
                    .as_deref()
                    .map(str::as_bytes),
                Some(good)
            );
        }
        let too_long = "k".repeat(MAX_KEY_LENGTH + 1);
        for bad in [
            &b""[..],
            b"a b",
            b"a\tb",
            "é".as_bytes(),
            &[0x80],
            too_long.as_bytes(),
        ] {
            let error = key_of(&[bad]).expect_err("invalid");
            assert_eq!(error.code, ErrorCode::MalformedRequest);
            assert!(error.details.contains_key("Idempotency-Key"));
        }
        assert!(key_of(&[b"a", b"a"]).is_err(), "sent twice");
    }

    /// The creates declare the header, with a pattern and length that say
    /// what `header_key` accepts, byte for byte.
    #[test]
    fn the_document_states_the_header_on_every_create() {
        let document = serde_json::to_value(crate::openapi::document()).expect("the document");
        for (path, method) in [
            ("/api/v1/tasks", "post"),
            ("/api/v1/projects", "post"),
            ("/api/v1/projects/{id}/members", "post"),
        ] {
            let parameters = document["paths"][path][method]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let header = parameters
                .iter()
                .find(|p| p["name"] == "Idempotency-Key")
                .unwrap_or_else(|| panic!("{method} {path} declares no Idempotency-Key"));
            assert_eq!(header["in"], "header");
            assert_eq!(header["required"], false);
            let schema = &header["schema"];
            assert_eq!(schema["minLength"], 1);
            assert_eq!(schema["maxLength"], MAX_KEY_LENGTH);
            let pattern = regex::Regex::new(schema["pattern"].as_str().expect("a pattern"))
                .expect("the pattern compiles");
            for byte in 0x20..=0x7e_u8 {
                let text = char::from(byte).to_string();
                assert_eq!(
                    pattern.is_match(&text),
                    key_of(&[&[byte]]).is_ok(),
                    "{byte:#x} in {method} {path}"
                );
            }
        }
    }
}
