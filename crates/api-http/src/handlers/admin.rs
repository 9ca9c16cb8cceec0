//! User administration, for system admins only (others get 403).

use actix_web::web;
use domain::{Ports, TaskFlow, UserAdminPatch, UserId, UserQuery, ValidationErrors};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::cursor::{self, PageParams};
use crate::dto::admin::{AdminUserResponse, PatchUserRequest};
use crate::envelope::{Envelope, ErrorEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{Body, Caller};

type App<P> = web::Data<TaskFlow<P>>;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListUsersParams {
    /// Only users whose e-mail address or name contains this text,
    /// ignoring case (at most 100 characters, no control characters).
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub q: Option<String>,
}

/// Every user, in registration order.
#[utoipa::path(
    get, path = "/api/v1/admin/users", tag = "admin",
    security(("bearer" = [])),
    params(ListUsersParams, PageParams),
    responses(
        (status = 200, description = "A page of users", body = Envelope<Vec<AdminUserResponse>>),
        (status = 400, description = "Bad query parameter (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Not a system admin (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 422, description = "`q` too long or with control characters (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn list_users<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    params: web::Query<ListUsersParams>,
    page: web::Query<PageParams>,
) -> Result<Reply<Vec<AdminUserResponse>>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = page.into_inner().parse(&mut errors);
    cursor::check(errors)?;
    let q = params.into_inner().q.filter(|q| !q.is_empty());
    let page = app
        .admin_users(caller.principal, UserQuery { q, after, limit })
        .await?;
    let items = page.items.iter().map(AdminUserResponse::from).collect();
    Ok(Reply::page(
        items,
        cursor::pagination(limit, page.next.as_ref()),
    ))
}

/// Disable or re-enable a user, or change their system role. Disabling
/// ends the user's sessions at once.
#[utoipa::path(
    patch, path = "/api/v1/admin/users/{id}", tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, description = "The user after the change", body = Envelope<AdminUserResponse>),
        (status = 400, description = "The id is not a UUID (`MALFORMED_REQUEST`)", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 403, description = "Not a system admin (`FORBIDDEN`)", body = ErrorEnvelope),
        (status = 404, description = "No such user (`NOT_FOUND`)", body = ErrorEnvelope),
        (status = 409, description = "Disabling or demoting oneself (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn patch_user<P: Ports>(
    app: App<P>,
    caller: Caller<P>,
    id: web::Path<Uuid>,
    Body(body): Body<PatchUserRequest>,
) -> Result<Reply<AdminUserResponse>, ApiError> {
    let patch = UserAdminPatch {
        disabled: body.disabled.flatten(),
        role: body.role.flatten().map(Into::into),
    };
    let user = app
        .administer_user(caller.principal, UserId(*id), patch)
        .await?;
    Ok(Reply::new(AdminUserResponse::from(&user)))
}
