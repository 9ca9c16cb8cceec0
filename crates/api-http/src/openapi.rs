//! The OpenAPI document: every route, every schema, the error envelope on
//! every 4xx/5xx, the bearer scheme and the error-code catalogue.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::dto::admin::{AdminUserResponse, PatchUserRequest, SystemRole};
use crate::dto::audit::{AuditEntryResponse, FieldChange};
use crate::dto::events::{EventEntity, EventResponse};
use crate::dto::projects::{
    AddMemberRequest, AssignableRole, CreateProjectRequest, MemberResponse, PatchMemberRequest,
    PatchProjectRequest, ProjectData, ProjectResponse, Role, TransferRequest,
};
use crate::dto::{
    CreateTaskRequest, LoginRequest, MeResponse, PatchTaskRequest, RefreshRequest, RegisterRequest,
    ReplaceTaskRequest, TaskPriority, TaskResponse, TaskStatus, TokenResponse, UserResponse,
};
use crate::envelope::{ErrorBody, ErrorEnvelope, Meta, Pagination};
use crate::error::ErrorCode;
use crate::handlers::{admin, auth, ops, projects, tasks};
use crate::{demo, live};

const DESCRIPTION: &str = r#"The TaskFlow REST API.

Every JSON response is an envelope: `{"success": true, "data": …, "error": null, "meta": {"requestId": "…"}}`,
or on failure `{"success": false, "data": null, "error": {"code": "…", "message": "…", "details": {…}}, "meta": {"requestId": "…"}}`.
Lists add `meta.pagination = {"limit", "nextCursor", "hasMore"}` (keyset pagination; pass `nextCursor` back as `cursor`).

Every `GET` operation also answers `HEAD` (RFC 9110): the same status and headers, no body.

Every response carries `X-Request-Id`: yours when it is 1–64 characters of `[A-Za-z0-9._-]`, otherwise a new one.

Authenticate with `Authorization: Bearer <accessToken>` from `POST /api/v1/auth/login`.

## Projects and roles

Every task is in a project; every user has a personal project, the Inbox (`GET /api/v1/users/me` gives its id), where `POST /api/v1/tasks` puts a task without a `projectId`.
A project's members have roles: `owner` > `admin` > `member` > `viewer`. Viewers read the project, its members, tasks and activity; members also create, change and delete tasks; admins also edit the project and manage members below owner; the owner also archives, deletes and transfers it.
Anything in or about a project the caller is not a member of is 404, exactly as if it did not exist; a role too low is 403. An archived project is read-only (409) until its owner unarchives it.
Every change is recorded in the project's activity (`GET /api/v1/projects/{id}/activity`) and the task's history (`GET /api/v1/tasks/{id}/history`), with the request's `X-Request-Id`.

## Staying in sync

Every change of a project's content appends events to the project's log, numbered by `seq` (1, 2, 3, … per project, in commit order, without gaps), in the same transaction as the change.
Load the state (`GET /api/v1/tasks?projectId=…` carries `meta.headSeq`, the log's head as of the page), then follow `GET /api/v1/projects/{id}/events?since=<headSeq>`: nothing is missed and nothing comes twice.
Send `X-Client-Mutation-Id` (1–64 of `[A-Za-z0-9._-]`) with a change to find it echoed as `clientMutationId` in its events.
Task and project responses carry `ETag: "<version>"`. Send it back as `If-Match` with PUT, PATCH or DELETE so a change made meanwhile by someone else is not overwritten (412 `PRECONDITION_FAILED` instead), and as `If-None-Match` with GET for a 304 when nothing changed.
Events are kept for `EVENT_RETENTION` (30 days by default); asking for older ones is 410 `RESYNC_REQUIRED`: reload the state.

## Live updates

Rather than polling the log, follow it live, over a WebSocket (`GET /api/v1/ws`) or Server-Sent Events (`GET /api/v1/projects/{id}/events/stream`). Every member, viewers included, may follow a project; events arrive within milliseconds of the commit on whichever instance made it, strictly in `seq` order, none twice; a stream that resumes with `since` (or `Last-Event-ID`) misses nothing.

WebSocket messages are JSON text. The client sends `{"type":"subscribe","projectId":"…","since":N}` (`since` optional: live from now), `{"type":"unsubscribe","projectId":"…"}` and `{"type":"ping"}` (and, without a bearer token on the upgrade, first `{"type":"auth","token":"…"}`). The server sends `{"type":"subscribed","projectId","headSeq"}` (first: the log's head at subscribe time; then the events after `since` up to there, then live ones), `{"type":"event","event":{…}}` (the event as `GET /api/v1/projects/{id}/events` renders it), `{"type":"unsubscribed","projectId","reason"}` (`client`, `removed` when the caller stops being a member, `deleted`), `{"type":"resync","projectId","headSeq"}` (`since` is older than the retention: reload the state; events after `headSeq` follow), `{"type":"error","code","message","projectId"}` (the envelope's codes: a project the caller is not a member of is `NOT_FOUND`; after an error about a project, the socket does not follow it, even if it did before) and `{"type":"pong"}`.
The server pings every 20 s and closes a peer silent for 60 s. Messages over 64 KiB close the socket (1009); at most 100 subscriptions per connection and 20 connections per user on an instance. Close codes: 4401 (not authenticated in time, logout, disabled account, ended session), 4008 (the client fell 1 000 events behind: reconnect with `since`, nothing is lost), 1011 (the server could not read the log: reconnect with `since`), 1013 (too many connections).

## Retrying creates

`POST /api/v1/tasks`, `POST /api/v1/projects` and `POST /api/v1/projects/{id}/members` take an `Idempotency-Key` header (1–255 visible ASCII characters, e.g. a UUID; anything else is 400 `MALFORMED_REQUEST`).
A key is the caller's own and belongs to the method and path it was sent with. A retry with the same key and the same body (whitespace and key order aside) within 24 hours gets the first response again: its status, `Location`, `ETag` and `data`, with its own `meta.requestId` and `Idempotent-Replayed: true`; nothing is changed twice and no second event is appended.
The same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. A retry sent while the first request is still running waits for it (up to 10 s, then 409 `CONFLICT` with `Retry-After`: retry). Only successes are kept: after a failure (4xx or 5xx) the key can be used again.

## Error codes

| code | status | when |
|---|---|---|
| `MALFORMED_REQUEST` | 400 | body is not JSON; bad query parameter or path value |
| `REQUEST_TIMEOUT` | 408 | the body did not arrive in time (15 s by default); the connection is closed |
| `UNAUTHENTICATED` | 401 | missing, invalid or expired token; ended session; bad refresh token |
| `INVALID_CREDENTIALS` | 401 | wrong e-mail or password |
| `FORBIDDEN` | 403 | authenticated but not allowed: a role too low in the project, not a system admin, a disabled account at login |
| `NOT_FOUND` | 404 | no such resource (also one in a project the caller is not a member of) or route |
| `METHOD_NOT_ALLOWED` | 405 | the route exists, the method does not (see `Allow`) |
| `CONFLICT` | 409 | at odds with the current state: e-mail already registered, already a member, an archived project, an Inbox rule, the owner leaving; a request with the same `Idempotency-Key` still in progress after 10 s (retry) |
| `RESYNC_REQUIRED` | 410 | the events after `since` are no longer kept (older than the retention): reload the project's state, then follow from its `headSeq` |
| `PRECONDITION_FAILED` | 412 | `If-Match` names a version the task or project has moved past; nothing changed; `details.currentVersion` is its version now |
| `PAYLOAD_TOO_LARGE` | 413 | body over 64 KiB |
| `UNSUPPORTED_MEDIA_TYPE` | 415 | body is not `application/json` |
| `VALIDATION_FAILED` | 422 | well-formed but invalid; `details` maps each field to its messages; unknown fields are rejected |
| `IDEMPOTENCY_KEY_REUSED` | 422 | the `Idempotency-Key` was used on this route with another body (within 24 hours) |
| `RATE_LIMITED` | 429 | too many requests |
| `INTERNAL` | 500 | a bug; nothing internal is disclosed, quote the request id |
| `SERVICE_UNAVAILABLE` | 503 | a store does not answer, or the server is shedding load (too many logins or registrations at once: then `Retry-After` says how many seconds to wait); retry later |
"#;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "TaskFlow API", description = DESCRIPTION),
    paths(
        ops::health,
        ops::ready,
        ops::openapi_json,
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::me,
        tasks::list_tasks,
        tasks::create_task,
        tasks::get_task,
        tasks::replace_task,
        tasks::patch_task,
        tasks::delete_task,
        tasks::task_history,
        projects::list_projects,
        projects::create_project,
        projects::get_project,
        projects::patch_project,
        projects::delete_project,
        projects::transfer_project,
        projects::list_members,
        projects::add_member,
        projects::patch_member,
        projects::delete_member,
        projects::activity,
        projects::events,
        live::event_stream,
        live::socket,
        admin::list_users,
        admin::patch_user,
        demo::page,
        demo::script,
        demo::style,
    ),
    components(schemas(
        ErrorEnvelope, ErrorBody, ErrorCode, Meta, Pagination,
        RegisterRequest, LoginRequest, RefreshRequest, UserResponse, MeResponse, TokenResponse,
        CreateTaskRequest, ReplaceTaskRequest, PatchTaskRequest, TaskResponse, TaskStatus, TaskPriority,
        ProjectResponse, CreateProjectRequest, PatchProjectRequest, TransferRequest, Role, AssignableRole,
        AddMemberRequest, PatchMemberRequest, MemberResponse, AuditEntryResponse, FieldChange,
        AdminUserResponse, PatchUserRequest, SystemRole, ProjectData, EventResponse, EventEntity,
    )),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "auth", description = "Registration, login, token refresh, logout"),
        (name = "users", description = "Accounts"),
        (name = "tasks", description = "Tasks in the caller's projects"),
        (name = "projects", description = "Projects, their members (with roles) and their activity"),
        (name = "admin", description = "User administration, for system admins"),
        (name = "live", description = "A project's events as they happen: WebSocket and Server-Sent Events"),
        (name = "operations", description = "Health, readiness and this document"),
        (name = "demo", description = "A demo page in the browser, served from the binary: the reference client of the live protocol"),
    )
)]
pub struct ApiDoc;

/// The document served at `/api-docs/openapi.json`.
pub fn document() -> Document {
    ApiDoc::openapi()
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Responses every operation can give whatever it does: malformed or
/// oversized requests, wrong methods, failures of a store or of the server.
/// Each is the error envelope.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut Document) {
        let common: [(&str, &str); 3] = [
            (
                "405",
                "Method not allowed on this path (`METHOD_NOT_ALLOWED`)",
            ),
            ("500", "Internal error (`INTERNAL`)"),
            (
                "503",
                "A store is unavailable, or the server is shedding load (`SERVICE_UNAVAILABLE`)",
            ),
        ];
        let with_body: [(&str, &str); 4] = [
            ("400", "Malformed JSON (`MALFORMED_REQUEST`)"),
            (
                "408",
                "The body did not arrive in time (`REQUEST_TIMEOUT`); the connection is closed",
            ),
            ("413", "Body too large (`PAYLOAD_TOO_LARGE`)"),
            ("415", "Body is not JSON (`UNSUPPORTED_MEDIA_TYPE`)"),
        ];
        for path in openapi.paths.paths.values_mut() {
            for operation in path_operations(path) {
                let takes_body = operation.request_body.is_some();
                let extra = common.iter().chain(with_body.iter().filter(|_| takes_body));
                for (status, description) in extra {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| error_response(status, description));
                }
            }
        }
    }
}

fn path_operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn error_response(status: &str, description: &str) -> RefOr<Response> {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, Type};
    let mut response = ResponseBuilder::new().description(description);
    if status == "503" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
                ))
                .description(Some(
                    "Seconds to wait before retrying, when the server sheds load",
                ))
                .build(),
        );
    }
    RefOr::T(
        response
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build(),
    )
}
