use actix_web::{Either, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{
    AuditQuery, Cursor, CursorKey, NewTask, Ports, Priority, ProjectId, Status, TaskFlow, TaskId,
    TaskPatch, TaskQuery, TaskSort, UserId, ValidationErrors,
};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::cursor::{self, PageParams};
use crate::dto::audit::AuditEntryResponse;
use crate::dto::{
    CreateTaskRequest, PatchTaskRequest, ReplaceTaskRequest, TaskPriority, TaskResponse,
    TaskStatus, schemas,
};
use crate::envelope::not_modified;
use crate::envelope::{Envelope, ErrorEnvelope, Pagination, Reply};
use crate::error::ApiError;
use crate::extract::{Body, Caller, IfNoneMatch, Precondition};
use crate::idempotency::Idempotent;

type App<P> = web::Data<TaskFlow<P>>;

/// Query parameters of `GET /tasks`. Bad values are 400 `MALFORMED_REQUEST`
/// with the parameter in `details`. Each is parsed here from text (not by
/// serde), so that the error names the parameter; the document states the
/// types and ranges that parsing enforces.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListTasksParams {
    /// Only the tasks of this project (one the caller is a member of; any
    /// other is 404). Without it, tasks across all the caller's projects.
    #[param(value_type = Option<Uuid>)]
    pub project_id: Option<String>,
    /// Only tasks assigned to this user: a user id, or `me`.
    #[param(schema_with = schemas::assignee_filter)]
    pub assignee_id: Option<String>,
    /// Only tasks with this status.
    #[param(value_type = Option<TaskStatus>)]
    pub status: Option<String>,
    /// Only tasks with this priority.
    #[param(value_type = Option<TaskPriority>)]
    pub priority: Option<String>,
    /// Only tasks due strictly before this instant (RFC 3339).
    #[param(schema_with = schemas::due_before)]
    pub due_before: Option<String>,
    /// Only tasks due strictly after this instant (RFC 3339).
    #[param(schema_with = schemas::due_after)]
    pub due_after: Option<String>,
    /// The order: `createdAt`, `-createdAt` (default), `dueDate`,
    /// `-dueDate`, `priority`, `-priority`, `updatedAt`, `-updatedAt`. A
    /// leading `-` sorts descending; tasks without a due date come last
    /// ascending.
    #[param(schema_with = schemas::sort)]
    pub sort: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(schema_with = schemas::limit)]
    pub limit: Option<String>,
    /// `meta.pagination.nextCursor` of the previous page, with the same
    /// `sort`.
    pub cursor: Option<String>,
}

impl ListTasksParams {
    fn into_query(self, me: UserId) -> Result<TaskQuery, ApiError> {
        let mut errors = ValidationErrors::new();
        let project_id = self.project_id.and_then(|raw| {
            errors.check(
                "projectId",
                Uuid::parse_str(&raw)
                    .map(ProjectId)
                    .map_err(|_| "must be a UUID"),
            )
        });
        let assignee_id = self.assignee_id.and_then(|raw| {
            let parsed = if raw == "me" {
                Ok(me)
            } else {
                Uuid::parse_str(&raw)
                    .map(UserId)
                    .map_err(|_| "must be a UUID or `me`")
            };
            errors.check("assigneeId", parsed)
        });
        let status = self.status.and_then(|raw| {
            errors.check(
                "status",
                Status::parse(&raw).ok_or("must be one of todo, in_progress, done"),
            )
        });
        let priority = self.priority.and_then(|raw| {
            errors.check(
                "priority",
                Priority::parse(&raw).ok_or("must be one of low, medium, high, urgent"),
            )
        });
        let due_before = parse_time(&mut errors, "dueBefore", self.due_before);
        let due_after = parse_time(&mut errors, "dueAfter", self.due_after);
        let sort = match self.sort {
            None => TaskSort::default(),
            Some(raw) => errors
                .check(
                    "sort",
                    TaskSort::parse(&raw).ok_or(
                        "must be one of createdAt, -createdAt, dueDate, -dueDate, priority, -priority, updatedAt, -updatedAt",
                    ),
                )
                .unwrap_or_default(),
        };
        let limit = match self.limit {
            None => TaskQuery::DEFAULT_LIMIT,
            Some(raw) => errors
                .check(
                    "limit",
                    raw.parse::<u32>()
                        .ok()
                        .filter(|l| (1..=TaskQuery::MAX_LIMIT).contains(l))
                        .ok_or("must be an integer from 1 to 100"),
                )
                .unwrap_or(TaskQuery::DEFAULT_LIMIT),
        };
        let after = self.cursor.and_then(|raw| {
            errors.check(
                "cursor",
                decode_cursor(&raw)
                    .filter(|c| c.sort == sort)
                    .ok_or("is not a cursor of this listing (keep the same sort)"),
            )
        });
        if !errors.is_empty() {
            let mut error = ApiError::malformed("Invalid query parameters.");
            error.details = errors.fields().clone();
            return Err(error);
        }
        Ok(TaskQuery {
            project_id,
            assignee_id,
            status,
            priority,
            due_before,
            due_after,
            sort,
            limit,
            after,
        })
    }
}

fn parse_time(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<String>,
) -> Option<OffsetDateTime> {
    let parsed =
        OffsetDateTime::parse(&raw?, &Rfc3339).map_err(|_| "must be an RFC 3339 date-time");
    errors.check(field, parsed)
}

/// Cursors are opaque to clients: base64url of `v1|sort|key|id`.
pub fn encode_cursor(cursor: &Cursor) -> String {
    let key = match cursor.key {
        CursorKey::Time(t) | CursorKey::OptionalTime(Some(t)) => {
            t.format(&Rfc3339).unwrap_or_default()
        }
        CursorKey::OptionalTime(None) => "null".to_owned(),
        CursorKey::Priority(p) => p.as_str().to_owned(),
    };
    let raw = format!("v1|{}|{key}|{}", cursor.sort.as_string(), cursor.id);
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(encoded: &str) -> Option<Cursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    let mut parts = raw.split('|');
    let (Some("v1"), Some(sort), Some(key), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let sort = TaskSort::parse(sort)?;
    let time = |raw: &str| OffsetDateTime::parse(raw, &Rfc3339).ok();
    let key = match sort.key {
        domain::SortKey::CreatedAt | domain::SortKey::UpdatedAt => CursorKey::Time(time(key)?),
        domain::SortKey::DueDate if key == "null" => CursorKey::OptionalTime(None),
        domain::SortKey::DueDate => CursorKey::OptionalTime(Some(time(key)?)),
        domain::SortKey::Priority => CursorKey::Priority(Priority::parse(key)?),
    };
    let id = TaskId(Uuid::parse_str(id).ok()?);
    Some(Cursor { sort, key, id })
}

/// Tasks across the caller's projects (or in one), one page at a time.
#[utoipa::path(
    get, path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    params(ListTasksParams),
    responses(
        (status = 200, description = "A page of tasks; `meta.pagination` tells how to get the next; with `projectId`, `meta.headSeq` is the project's event-log head as of the page", body = Envelope<Vec<TaskResponse>>),
        (status = 400, description = "Bad query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "`projectId` is not a project of the caller (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn list_tasks<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    params: web::Query<ListTasksParams>,
) -> Result<Reply<Vec<TaskResponse>>, ApiError> {
    let query = params.into_inner().into_query(caller.principal.user_id)?;
    let limit = query.limit;
    let list = app.list_tasks(caller.principal, query).await?;
    let page = list.page;
    let items = page.items.iter().map(TaskResponse::from).collect();
    let pagination = Pagination {
        limit,
        next_cursor: page.next.as_ref().map(encode_cursor),
        has_more: page.next.is_some(),
    };
    Ok(Reply::page(items, pagination).head_seq(list.head_seq))
}

/// Create a task in a project (member and up), or in the caller's Inbox.
#[utoipa::path(
    post, path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "1-255 visible ASCII characters naming this create: a retry with the same key and body within 24 h gets the first response (`Idempotent-Replayed: true`) without a second change")),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "The new task; `Location` is its URL", body = Envelope<TaskResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"), ("Location" = String, description = "URL of the new task"), ("Idempotent-Replayed" = String, description = "`true` when this is the first response to the same `Idempotency-Key` again"))),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "A viewer of the project (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "`projectId` is not a project of the caller (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The project is archived; a request with the same `Idempotency-Key` still in progress after 10 s, retry (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields, or an assignee who is not a member (`VALIDATION_FAILED`); the `Idempotency-Key` used with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorEnvelope),
    )
)]
pub async fn create_task<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    once: Idempotent<P>,
    Body(body): Body<CreateTaskRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewTask {
        project_id: body.project_id.map(ProjectId),
        assignee_id: body.assignee_id.map(UserId),
        title: body.title,
        description: body.description,
        status: body.status.map(Into::into),
        priority: body.priority.map(Into::into),
        due_date: body.due_date,
    };
    let principal = caller.principal;
    once.run(principal.user_id, async move {
        let task = app.create_task(principal, input).await?;
        let location = format!("/api/v1/tasks/{}", task.id);
        Ok(Reply::created(TaskResponse::from(&task), Some(location)).etag(task.version))
    })
    .await
}

/// A task in one of the caller's projects. A task in any other project is
/// 404, as is a missing one.
#[utoipa::path(
    get, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id"), ("If-None-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: 304 when it is still the current version")),
    responses(
        (status = 304, description = "Unchanged since the version in `If-None-Match`", headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 200, description = "The task", body = Envelope<TaskResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such task in the caller's projects (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn get_task<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    if_none_match: IfNoneMatch,
) -> Result<Either<HttpResponse, Reply<TaskResponse>>, ApiError> {
    let task = app.task(caller.principal, TaskId(*id)).await?;
    if if_none_match.names(task.version) {
        return Ok(Either::Left(not_modified(task.version)));
    }
    Ok(Either::Right(
        Reply::new(TaskResponse::from(&task)).etag(task.version),
    ))
}

/// Replace every editable field of a task.
#[utoipa::path(
    put, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: change only that version (else 412); `*` or absent: any")),
    request_body = ReplaceTaskRequest,
    responses(
        (status = 412, description = "`If-Match` names a version it has moved past; nothing changed (`PRECONDITION_FAILED`, `details.currentVersion`)", body = ErrorEnvelope),
        (status = 200, description = "The task after the change", body = Envelope<TaskResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "A viewer of the project (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such task in the caller's projects, or a target `projectId` that is not one (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The task's project, or the target, is archived (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields, or an assignee who is not a member (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn replace_task<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Precondition(if_match): Precondition,
    Body(body): Body<ReplaceTaskRequest>,
) -> Result<Reply<TaskResponse>, ApiError> {
    let patch = TaskPatch {
        project_id: body.project_id.map(ProjectId),
        assignee_id: Some(body.assignee_id.map(UserId)),
        title: Some(body.title),
        description: Some(body.description),
        status: Some(body.status.into()),
        priority: Some(body.priority.into()),
        due_date: Some(body.due_date),
    };
    let task = app
        .update_task_if(caller.principal, TaskId(*id), patch, &if_match)
        .await?;
    Ok(Reply::new(TaskResponse::from(&task)).etag(task.version))
}

/// Change only the fields given; `null` clears `description` or `dueDate`.
#[utoipa::path(
    patch, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: change only that version (else 412); `*` or absent: any")),
    request_body = PatchTaskRequest,
    responses(
        (status = 412, description = "`If-Match` names a version it has moved past; nothing changed (`PRECONDITION_FAILED`, `details.currentVersion`)", body = ErrorEnvelope),
        (status = 200, description = "The task after the change", body = Envelope<TaskResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "A viewer of the project (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such task in the caller's projects, or a target `projectId` that is not one (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The task's project, or the target, is archived (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields, or an assignee who is not a member (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn patch_task<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Precondition(if_match): Precondition,
    Body(body): Body<PatchTaskRequest>,
) -> Result<Reply<TaskResponse>, ApiError> {
    let patch = TaskPatch {
        project_id: body.project_id.flatten().map(ProjectId),
        assignee_id: body.assignee_id.map(|a| a.map(UserId)),
        title: body.title.flatten(),
        description: body.description,
        status: body.status.flatten().map(Into::into),
        priority: body.priority.flatten().map(Into::into),
        due_date: body.due_date,
    };
    let task = app
        .update_task_if(caller.principal, TaskId(*id), patch, &if_match)
        .await?;
    Ok(Reply::new(TaskResponse::from(&task)).etag(task.version))
}

/// Delete a task. Deleting it again is 404.
#[utoipa::path(
    delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: change only that version (else 412); `*` or absent: any")),
    responses(
        (status = 412, description = "`If-Match` names a version it has moved past; nothing changed (`PRECONDITION_FAILED`, `details.currentVersion`)", body = ErrorEnvelope),
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "A viewer of the project (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such task in the caller's projects (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The task's project is archived (`CONFLICT`)", body = ErrorEnvelope),
    )
)]
pub async fn delete_task<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Precondition(if_match): Precondition,
) -> Result<HttpResponse, ApiError> {
    app.delete_task_if(caller.principal, TaskId(*id), &if_match)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The task's audit trail, newest first (404 once the task is deleted:
/// its entries stay in its project's activity).
#[utoipa::path(
    get, path = "/api/v1/tasks/{id}/history", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id"), PageParams),
    responses(
        (status = 200, description = "A page of audit entries", body = Envelope<Vec<AuditEntryResponse>>),
        (status = 400, description = "Bad id or query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such task in the caller's projects (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn task_history<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<AuditEntryResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = page.into_inner().parse(&mut errors);
    cursor::check(errors)?;
    let page = app
        .task_history(caller.principal, TaskId(*id), AuditQuery { after, limit })
        .await?;
    let items = page.items.iter().map(AuditEntryResponse::from).collect();
    Ok(Reply::page(
        items,
        cursor::pagination(limit, page.next.as_ref()),
    ))
}
