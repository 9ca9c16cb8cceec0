//! The success envelope and the schemas the OpenAPI document shows for both
//! envelopes.

use std::collections::BTreeMap;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Responder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ErrorCode;
use crate::middleware::RequestId;

/// `{"success": true, "data": …, "error": null, "meta": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// Always `true` here.
    pub success: bool,
    pub data: T,
    /// Always `null` here.
    #[schema(value_type = Option<ErrorBody>, required = true)]
    pub error: Option<()>,
    pub meta: Meta,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The request's id, also in the `X-Request-Id` response header and in
    /// every log line of the request.
    pub request_id: String,
    /// Present on lists only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Pagination, required = false)]
    pub pagination: Option<Pagination>,
    /// On a project's events and on a project's task list: the last `seq`
    /// of the project's event log as of the response (follow the log from
    /// there to stay in sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, required = false, minimum = 0)]
    pub head_seq: Option<i64>,
}

/// Keyset pagination: pass `nextCursor` as `cursor` to get the next page.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// The page size asked for (or the default), 1–100.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: u32,
    /// Opaque; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// `{"success": false, "data": null, "error": {…}, "meta": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// Always `null`.
    #[schema(value_type = Option<Object>, required = true)]
    pub data: Option<()>,
    pub error: ErrorBody,
    pub meta: Meta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people; may change. Program against `code`.
    pub message: String,
    /// For `VALIDATION_FAILED`: each invalid field and its messages.
    pub details: BTreeMap<String, Vec<String>>,
}

/// A successful JSON response, wrapped in the envelope when it is sent.
#[derive(Debug)]
pub struct Reply<T> {
    status: StatusCode,
    data: T,
    pagination: Option<Pagination>,
    head_seq: Option<i64>,
    location: Option<String>,
    etag: Option<i64>,
}

impl<T: Serialize> Reply<T> {
    pub fn new(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
            pagination: None,
            head_seq: None,
            location: None,
            etag: None,
        }
    }

    /// 201, with a `Location` header when the resource has its own URL.
    pub fn created(data: T, location: Option<String>) -> Self {
        Self {
            status: StatusCode::CREATED,
            data,
            pagination: None,
            head_seq: None,
            location,
            etag: None,
        }
    }

    pub fn page(data: T, pagination: Pagination) -> Self {
        Self {
            pagination: Some(pagination),
            ..Self::new(data)
        }
    }

    /// With `ETag: "<version>"`.
    pub fn etag(self, version: i64) -> Self {
        Self {
            etag: Some(version),
            ..self
        }
    }

    /// With `meta.headSeq`.
    pub fn head_seq(self, head_seq: Option<i64>) -> Self {
        Self { head_seq, ..self }
    }
}

impl<T: Serialize> Responder for Reply<T> {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let envelope = Envelope {
            success: true,
            data: self.data,
            error: None,
            meta: Meta {
                request_id,
                pagination: self.pagination,
                head_seq: self.head_seq,
            },
        };
        let mut response = HttpResponse::build(self.status).json(envelope);
        if let Some(location) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        if let Some(etag) = self.etag.and_then(|v| HeaderValue::try_from(etag(v)).ok()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response
    }
}

/// What a create's response is made of (status, `Location`, `ETag`,
/// `data`), as an idempotency key keeps it; the envelope's `meta` is each
/// response's own, so it is not kept.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeptReply {
    status: u16,
    location: Option<String>,
    etag: Option<i64>,
    data: serde_json::Value,
}

impl<T: Serialize> Reply<T> {
    /// Whether this is a success (2xx).
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// This reply, to keep and answer again later.
    pub(crate) fn to_kept(&self) -> Result<KeptReply, serde_json::Error> {
        Ok(KeptReply {
            status: self.status.as_u16(),
            location: self.location.clone(),
            etag: self.etag,
            data: serde_json::to_value(&self.data)?,
        })
    }
}

impl KeptReply {
    /// The reply again, to be sent with the request's own `meta`; `None`
    /// for a status that is not one.
    pub(crate) fn into_reply(self) -> Option<Reply<serde_json::Value>> {
        Some(Reply {
            status: StatusCode::from_u16(self.status).ok()?,
            data: self.data,
            pagination: None,
            head_seq: None,
            location: self.location,
            etag: self.etag,
        })
    }
}

/// A version as an entity tag: `"7"` (strong).
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A 304 for a GET whose `If-None-Match` names the current version.
pub fn not_modified(version: i64) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag(version)))
        .finish()
}
