//! TaskFlow's HTTP layer: actix-web handlers over the use cases of
//! [`domain::TaskFlow`], JSON DTOs (serde + garde + utoipa), the envelope,
//! the request-id middleware, the OpenAPI document and Swagger UI.
//!
//! It depends on `domain` only, never on an adapter: the server picks the
//! adapters and hands a `TaskFlow<P>` to [`configure`].

pub mod cors;
pub mod cursor;
pub mod demo;
pub mod dto;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod idempotency;
pub mod live;
pub mod middleware;
pub mod openapi;

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route, web};
use domain::{Ports, TaskFlow};

pub use error::{ApiError, ErrorCode};
pub use middleware::{REQUEST_ID_HEADER, RequestId, request_context};
pub use openapi::ApiDoc;

use handlers::{admin, auth, ops, projects, tasks};

/// Registers every route, the extractor configuration and the fallbacks.
/// Wrap the `App` in [`request_context`] (outermost) so every response gets
/// its request id and every error the envelope.
pub fn configure<P: Ports>(
    app: web::Data<TaskFlow<P>>,
    hub: web::Data<live::Hub<P>>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(app)
            .app_data(hub)
            .app_data(extract::query_config())
            .app_data(extract::path_config())
            .app_data(extract::payload_config())
            .app_data(web::Data::new(openapi::document()));
        register_routes::<P>(&mut Routes::new(Some(cfg)));
        let to_swagger_ui = || async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        };
        cfg.service(
            web::resource("/docs")
                .route(web::get().to(to_swagger_ui))
                .route(web::head().to(to_swagger_ui)),
        )
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json")),
        )
        .default_service(web::to(not_found));
    }
}

/// Every API route the server serves (method and path template), read off
/// the same registration [`configure`] uses: each GET with its HEAD. The
/// Swagger UI pages under `/docs` are not API routes and are not listed.
pub fn served_routes<P: Ports>() -> Vec<(Method, String)> {
    let mut routes = Routes::new(None);
    register_routes::<P>(&mut routes);
    routes.seen
}

fn register_routes<P: Ports>(r: &mut Routes<'_>) {
    r.resource("/health", get(ops::health));
    r.resource("/ready", get(ops::ready::<P>));
    r.resource("/api-docs/openapi.json", get(ops::openapi_json));
    r.resource(
        "/api/v1/auth/register",
        vec![(Method::POST, web::post().to(auth::register::<P>))],
    );
    r.resource(
        "/api/v1/auth/login",
        vec![(Method::POST, web::post().to(auth::login::<P>))],
    );
    r.resource(
        "/api/v1/auth/refresh",
        vec![(Method::POST, web::post().to(auth::refresh::<P>))],
    );
    r.resource(
        "/api/v1/auth/logout",
        vec![(Method::POST, web::post().to(auth::logout::<P>))],
    );
    r.resource("/api/v1/users/me", get(auth::me::<P>));
    let mut tasks = get(tasks::list_tasks::<P>);
    tasks.push((Method::POST, web::post().to(tasks::create_task::<P>)));
    r.resource("/api/v1/tasks", tasks);
    let mut task = get(tasks::get_task::<P>);
    task.extend([
        (Method::PUT, web::put().to(tasks::replace_task::<P>)),
        (Method::PATCH, web::patch().to(tasks::patch_task::<P>)),
        (Method::DELETE, web::delete().to(tasks::delete_task::<P>)),
    ]);
    r.resource("/api/v1/tasks/{id}", task);
    r.resource("/api/v1/tasks/{id}/history", get(tasks::task_history::<P>));
    let mut list = get(projects::list_projects::<P>);
    list.push((Method::POST, web::post().to(projects::create_project::<P>)));
    r.resource("/api/v1/projects", list);
    let mut project = get(projects::get_project::<P>);
    project.extend([
        (Method::PATCH, web::patch().to(projects::patch_project::<P>)),
        (
            Method::DELETE,
            web::delete().to(projects::delete_project::<P>),
        ),
    ]);
    r.resource("/api/v1/projects/{id}", project);
    r.resource(
        "/api/v1/projects/{id}/transfer",
        vec![(
            Method::POST,
            web::post().to(projects::transfer_project::<P>),
        )],
    );
    let mut members = get(projects::list_members::<P>);
    members.push((Method::POST, web::post().to(projects::add_member::<P>)));
    r.resource("/api/v1/projects/{id}/members", members);
    r.resource(
        "/api/v1/projects/{id}/members/{userId}",
        vec![
            (Method::PATCH, web::patch().to(projects::patch_member::<P>)),
            (
                Method::DELETE,
                web::delete().to(projects::delete_member::<P>),
            ),
        ],
    );
    r.resource(
        "/api/v1/projects/{id}/activity",
        get(projects::activity::<P>),
    );
    r.resource("/api/v1/projects/{id}/events", get(projects::events::<P>));
    r.resource(
        "/api/v1/projects/{id}/events/stream",
        get(live::event_stream::<P>),
    );
    r.resource("/api/v1/ws", get(live::socket::<P>));
    r.resource("/api/v1/admin/users", get(admin::list_users::<P>));
    r.resource(
        "/api/v1/admin/users/{id}",
        vec![(Method::PATCH, web::patch().to(admin::patch_user::<P>))],
    );
    r.resource("/demo", get(demo::page));
    r.resource("/demo/app.js", get(demo::script));
    r.resource("/demo/app.css", get(demo::style));
}

/// A GET route and its HEAD twin (RFC 9110: HEAD wherever GET is served):
/// the same handler, so the same status and headers; actix sends no body
/// in answer to HEAD.
fn get<F, Args>(handler: F) -> Vec<(Method, Route)>
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    vec![
        (Method::GET, web::get().to(handler.clone())),
        (Method::HEAD, web::head().to(handler)),
    ]
}

/// Registers resources and remembers what it registered.
struct Routes<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    seen: Vec<(Method, String)>,
}

impl<'a> Routes<'a> {
    fn new(cfg: Option<&'a mut web::ServiceConfig>) -> Self {
        Self {
            cfg,
            seen: Vec::new(),
        }
    }

    /// A path with its method routes; any other method is 405 with `Allow`.
    fn resource(&mut self, path: &str, routes: Vec<(Method, Route)>) {
        let allow = routes
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        self.seen
            .extend(routes.iter().map(|(m, _)| (m.clone(), path.to_owned())));
        let Some(cfg) = self.cfg.as_deref_mut() else {
            return;
        };
        let mut resource = web::resource(path);
        for (_, route) in routes {
            resource = resource.route(route);
        }
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header(("Allow", allow))
                    .finish()
            }
        })));
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "No such route."))
}
