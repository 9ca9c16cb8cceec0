//! Projects, members and activity. Every decision is the domain's (the
//! policy, the project's state); these handlers only translate.

use actix_web::{Either, HttpResponse, web};
use domain::{
    AuditQuery, EventQuery, MemberQuery, MemberRef, NewMember, NewProject, Ports, ProjectId,
    ProjectPatch, ProjectQuery, TaskFlow, UserId, ValidationErrors,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::cursor::{self, PageParams};
use crate::dto::audit::AuditEntryResponse;
use crate::dto::events::EventResponse;
use crate::dto::projects::{
    AddMemberRequest, CreateProjectRequest, MemberResponse, PatchMemberRequest,
    PatchProjectRequest, ProjectResponse, TransferRequest,
};
use crate::envelope::not_modified;
use crate::envelope::{Envelope, ErrorEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{Body, Caller, IfNoneMatch, Precondition};
use crate::idempotency::Idempotent;

type App<P> = web::Data<TaskFlow<P>>;

/// `GET /projects`'s own parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListProjectsParams {
    /// `true`: only archived projects; `false` (default): only active ones.
    #[param(value_type = Option<bool>)]
    pub archived: Option<String>,
}

/// The caller's projects, by name (ignoring case), then id.
#[utoipa::path(
    get, path = "/api/v1/projects", tag = "projects",
    security(("bearer" = [])),
    params(ListProjectsParams, PageParams),
    responses(
        (status = 200, description = "A page of the caller's projects", body = Envelope<Vec<ProjectResponse>>),
        (status = 400, description = "Bad query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
    )
)]
pub async fn list_projects<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    params: web::Query<ListProjectsParams>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<ProjectResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let archived = match params.into_inner().archived.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.add("archived", "must be true or false");
            false
        }
    };
    let (limit, after) = page.into_inner().parse(&mut errors);
    cursor::check(errors)?;
    let query = ProjectQuery {
        archived,
        after,
        limit,
    };
    let page = app.projects(caller.principal, query).await?;
    let items = page.items.iter().map(ProjectResponse::from).collect();
    Ok(Reply::page(
        items,
        cursor::pagination(limit, page.next.as_ref()),
    ))
}

/// Create a project; the caller is its owner.
#[utoipa::path(
    post, path = "/api/v1/projects", tag = "projects",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "1-255 visible ASCII characters naming this create: a retry with the same key and body within 24 h gets the first response (`Idempotent-Replayed: true`) without a second change")),
    request_body = CreateProjectRequest,
    responses(
        (status = 201, description = "The new project; `Location` is its URL", body = Envelope<ProjectResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"), ("Location" = String, description = "URL of the new project"), ("Idempotent-Replayed" = String, description = "`true` when this is the first response to the same `Idempotency-Key` again"))),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 409, description = "A request with the same `Idempotency-Key` is still in progress after 10 s: retry (`CONFLICT`, `Retry-After`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`); the `Idempotency-Key` used with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorEnvelope),
    )
)]
pub async fn create_project<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    once: Idempotent<P>,
    Body(body): Body<CreateProjectRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewProject {
        name: body.name,
        description: body.description,
    };
    let principal = caller.principal;
    once.run(principal.user_id, async move {
        let view = app.create_project(principal, input).await?;
        let location = format!("/api/v1/projects/{}", view.project.id);
        Ok(Reply::created(ProjectResponse::from(&view), Some(location)).etag(view.project.version))
    })
    .await
}

/// A project the caller is a member of (any role).
#[utoipa::path(
    get, path = "/api/v1/projects/{id}", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), ("If-None-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: 304 when it is still the current version")),
    responses(
        (status = 304, description = "Unchanged since the version in `If-None-Match`", headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 200, description = "The project with the caller's role", body = Envelope<ProjectResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn get_project<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    if_none_match: IfNoneMatch,
) -> Result<Either<HttpResponse, Reply<ProjectResponse>>, ApiError> {
    let view = app.project(caller.principal, ProjectId(*id)).await?;
    let version = view.project.version;
    if if_none_match.names(version) {
        return Ok(Either::Left(not_modified(version)));
    }
    Ok(Either::Right(
        Reply::new(ProjectResponse::from(&view)).etag(version),
    ))
}

/// Rename, redescribe (admin and up), archive or unarchive (owner).
#[utoipa::path(
    patch, path = "/api/v1/projects/{id}", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: change only that version (else 412); `*` or absent: any")),
    request_body = PatchProjectRequest,
    responses(
        (status = 412, description = "`If-Match` names a version it has moved past; nothing changed (`PRECONDITION_FAILED`, `details.currentVersion`)", body = ErrorEnvelope),
        (status = 200, description = "The project after the change", body = Envelope<ProjectResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "The caller's role does not allow it (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "Archived (unarchive first), or archiving the Inbox (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn patch_project<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Precondition(if_match): Precondition,
    Body(body): Body<PatchProjectRequest>,
) -> Result<Reply<ProjectResponse>, ApiError> {
    let patch = ProjectPatch {
        name: body.name.flatten(),
        description: body.description,
        archived: body.archived.flatten(),
    };
    let view = app
        .update_project_if(caller.principal, ProjectId(*id), patch, &if_match)
        .await?;
    Ok(Reply::new(ProjectResponse::from(&view)).etag(view.project.version))
}

/// Delete a project and its tasks (owner only; not the Inbox).
#[utoipa::path(
    delete, path = "/api/v1/projects/{id}", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from an `ETag`: change only that version (else 412); `*` or absent: any")),
    responses(
        (status = 412, description = "`If-Match` names a version it has moved past; nothing changed (`PRECONDITION_FAILED`, `details.currentVersion`)", body = ErrorEnvelope),
        (status = 204, description = "Deleted, with its tasks"),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Only the owner may (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The Inbox cannot be deleted (`CONFLICT`)", body = ErrorEnvelope),
    )
)]
pub async fn delete_project<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Precondition(if_match): Precondition,
) -> Result<HttpResponse, ApiError> {
    app.delete_project_if(caller.principal, ProjectId(*id), &if_match)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make another member the owner; the caller becomes an admin.
#[utoipa::path(
    post, path = "/api/v1/projects/{id}/transfer", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "The project after the transfer", body = Envelope<ProjectResponse>,
            headers(("ETag" = String, description = "`\"<version>\"`: the version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Only the owner may (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The Inbox, or an archived project (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "`userId` is not a member (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn transfer_project<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Body(body): Body<TransferRequest>,
) -> Result<Reply<ProjectResponse>, ApiError> {
    let view = app
        .transfer_project(caller.principal, ProjectId(*id), UserId(body.user_id))
        .await?;
    Ok(Reply::new(ProjectResponse::from(&view)).etag(view.project.version))
}

/// The project's members, in the order they joined.
#[utoipa::path(
    get, path = "/api/v1/projects/{id}/members", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), PageParams),
    responses(
        (status = 200, description = "A page of members", body = Envelope<Vec<MemberResponse>>),
        (status = 400, description = "Bad id or query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn list_members<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<MemberResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = page.into_inner().parse(&mut errors);
    cursor::check(errors)?;
    let page = app
        .members(
            caller.principal,
            ProjectId(*id),
            MemberQuery { after, limit },
        )
        .await?;
    let items = page.items.iter().map(MemberResponse::from).collect();
    Ok(Reply::page(
        items,
        cursor::pagination(limit, page.next.as_ref()),
    ))
}

/// Add a user (by e-mail or id) as admin, member or viewer.
#[utoipa::path(
    post, path = "/api/v1/projects/{id}/members", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "1-255 visible ASCII characters naming this create: a retry with the same key and body within 24 h gets the first response (`Idempotent-Replayed: true`) without a second change")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "The new member", body = Envelope<MemberResponse>,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first response to the same `Idempotency-Key` again"))),
        (status = 400, description = "The id is not a UUID, malformed JSON, or a malformed `Idempotency-Key` (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Admins and the owner only (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "Already a member; the Inbox; an archived project; a request with the same `Idempotency-Key` still in progress after 10 s, retry (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Unknown user, or a bad role (`VALIDATION_FAILED`); the `Idempotency-Key` used with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorEnvelope),
    )
)]
pub async fn add_member<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    once: Idempotent<P>,
    Body(body): Body<AddMemberRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = match (body.email, body.user_id) {
        (Some(email), _) => MemberRef::Email(email),
        (None, Some(id)) => MemberRef::Id(UserId(id)),
        // The body's validation requires one of them.
        (None, None) => return Err(ApiError::malformed("Give email or userId.")),
    };
    let input = NewMember {
        user,
        role: body.role.into(),
    };
    let principal = caller.principal;
    once.run(principal.user_id, async move {
        let member = app.add_member(principal, ProjectId(*id), input).await?;
        // No `Location`: a membership has no URL of its own to GET (the
        // members list has it).
        Ok(Reply::created(MemberResponse::from(&member), None))
    })
    .await
}

/// Change a member's role (admin and up; not the owner's).
#[utoipa::path(
    patch, path = "/api/v1/projects/{id}/members/{userId}", tag = "projects",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("userId" = Uuid, Path, description = "The member's user id"),
    ),
    request_body = PatchMemberRequest,
    responses(
        (status = 200, description = "The member after the change", body = Envelope<MemberResponse>),
        (status = 400, description = "An id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Admins and the owner only; an admin cannot change the owner (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project or member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The owner's own role (transfer instead); an archived project (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "A bad role (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn patch_member<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    path: web::Path<(Uuid, Uuid)>,
    Body(body): Body<PatchMemberRequest>,
) -> Result<Reply<MemberResponse>, ApiError> {
    let (project, user) = path.into_inner();
    let member = app
        .change_member_role(
            caller.principal,
            ProjectId(project),
            UserId(user),
            body.role.into(),
        )
        .await?;
    Ok(Reply::new(MemberResponse::from(&member)))
}

/// Remove a member (admin and up), or leave (the caller's own id).
#[utoipa::path(
    delete, path = "/api/v1/projects/{id}/members/{userId}", tag = "projects",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("userId" = Uuid, Path, description = "The member's user id (the caller's own: leave)"),
    ),
    responses(
        (status = 204, description = "Removed; their tasks in the project are unassigned"),
        (status = 400, description = "An id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Admins and the owner only; nobody removes the owner (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such project or member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "The owner leaving (transfer first); an archived project (`CONFLICT`)", body = ErrorEnvelope),
    )
)]
pub async fn delete_member<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project, user) = path.into_inner();
    app.remove_member(caller.principal, ProjectId(project), UserId(user))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The project's audit trail, newest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{id}/activity", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), PageParams),
    responses(
        (status = 200, description = "A page of audit entries", body = Envelope<Vec<AuditEntryResponse>>),
        (status = 400, description = "Bad id or query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
    )
)]
pub async fn activity<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<AuditEntryResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = page.into_inner().parse(&mut errors);
    cursor::check(errors)?;
    let page = app
        .project_activity(
            caller.principal,
            ProjectId(*id),
            AuditQuery { after, limit },
        )
        .await?;
    let items = page.items.iter().map(AuditEntryResponse::from).collect();
    Ok(Reply::page(
        items,
        cursor::pagination(limit, page.next.as_ref()),
    ))
}

/// `GET /projects/{id}/events`' own parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// The last `seq` the client has (default 0: from the start); a
    /// `cursor` wins over it.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub since: Option<String>,
}

/// Delta sync: the project's events after `since`, oldest first, and
/// `meta.headSeq`. Any member may read them. 410 `RESYNC_REQUIRED` when
/// events after `since` were pruned (older than the retention).
#[utoipa::path(
    get, path = "/api/v1/projects/{id}/events", tag = "projects",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Project id"), EventsParams, PageParams),
    responses(
        (status = 200, description = "A page of events in `seq` order; `meta.headSeq` is the log's head", body = Envelope<Vec<EventResponse>>),
        (status = 400, description = "Bad id or query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 404, description = "No such project, or the caller is not a member (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 410, description = "Events after `since` are no longer kept: reload the state (`RESYNC_REQUIRED`)", body = ErrorEnvelope),
        (status = 422, description = "`since` is after the log's head (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn events<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    params: web::Query<EventsParams>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<EventResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let since = params.into_inner().since.and_then(|raw| {
        errors.check(
            "since",
            raw.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("must be an integer, 0 or more"),
        )
    });
    let (limit, after) = page.into_inner().parse::<i64>(&mut errors);
    cursor::check(errors)?;
    let query = EventQuery {
        after: after.or(since).unwrap_or(0),
        limit,
    };
    let page = app
        .project_events(caller.principal, ProjectId(*id), query)
        .await?;
    let items = page.items.iter().map(EventResponse::from).collect();
    Ok(Reply::page(items, cursor::pagination(limit, page.next.as_ref())).head_seq(Some(page.head)))
}
