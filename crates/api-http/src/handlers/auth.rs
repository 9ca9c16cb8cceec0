use actix_web::{HttpResponse, web};
use domain::{LoginOutcome, Ports, RefreshToken, RegisterInput, TaskFlow};

use crate::dto::{
    LoginRequest, MeResponse, RefreshRequest, RegisterRequest, TokenResponse, UserResponse,
};
use crate::envelope::{Envelope, ErrorEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{Body, Caller};

type App<P> = web::Data<TaskFlow<P>>;

fn tokens(outcome: LoginOutcome) -> TokenResponse {
    TokenResponse {
        access_token: outcome.access.token,
        refresh_token: outcome.refresh.expose().to_owned(),
        token_type: "Bearer",
        expires_in: outcome.access.expires_in,
        user: UserResponse::from(&outcome.user),
    }
}

/// Create an account.
#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = Envelope<UserResponse>),
        (status = 409, description = "E-mail already registered (`CONFLICT`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn register<P: Ports>(
    app: App<P>,
    Body(body): Body<RegisterRequest>,
) -> Result<Reply<UserResponse>, ApiError> {
    let user = app
        .register(RegisterInput {
            email: body.email,
            password: body.password,
            name: body.name,
        })
        .await?;
    Ok(Reply::created(UserResponse::from(&user), None))
}

/// Exchange e-mail and password for an access and a refresh token.
///
/// An unknown e-mail and a wrong password give the same answer in about the
/// same time.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session", body = Envelope<TokenResponse>),
        (status = 401, description = "Wrong e-mail or password (`INVALID_CREDENTIALS`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn login<P: Ports>(
    app: App<P>,
    Body(body): Body<LoginRequest>,
) -> Result<Reply<TokenResponse>, ApiError> {
    let outcome = app.login(&body.email, body.password).await?;
    Ok(Reply::new(tokens(outcome)))
}

/// Redeem a refresh token for a new pair. The presented token stops working.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = Envelope<TokenResponse>),
        (status = 401, description = "Invalid, expired or already used refresh token (`UNAUTHENTICATED`)", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (`VALIDATION_FAILED`)", body = ErrorEnvelope),
    )
)]
pub async fn refresh<P: Ports>(
    app: App<P>,
    Body(body): Body<RefreshRequest>,
) -> Result<Reply<TokenResponse>, ApiError> {
    let outcome = app.refresh(RefreshToken::new(body.refresh_token)).await?;
    Ok(Reply::new(tokens(outcome)))
}

/// End the caller's session: its access and refresh tokens stop working at once.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
    )
)]
pub async fn logout<P: Ports>(app: App<P>, caller: Caller<P>) -> Result<HttpResponse, ApiError> {
    app.logout(caller.principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's own account.
#[utoipa::path(
    get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller, with the id of their Inbox", body = Envelope<MeResponse>),
        (status = 401, description = "Not authenticated (`UNAUTHENTICATED`)", body = ErrorEnvelope),
    )
)]
pub async fn me<P: Ports>(app: App<P>, caller: Caller<P>) -> Result<Reply<MeResponse>, ApiError> {
    let me = app.me(caller.principal).await?;
    Ok(Reply::new(MeResponse::from(&me)))
}
