//! The OpenAPI document describes exactly the API the server serves.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, random_uuid, send};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];

async fn document(app: &TestApp) -> Value {
    let reply = Reply::read(app.get_public("/api-docs/openapi.json").await).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    reply.request_id();
    assert!(reply.body.is_object(), "not JSON: {}", reply.text);
    reply.body
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

fn served() -> BTreeSet<(String, String)> {
    api_http::served_routes::<server::MemoryPorts>()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_lowercase(), path))
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_json() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc["info"]["title"], "TaskFlow API");
    // It is the document the crate builds.
    let built = serde_json::to_value(api_http::openapi::document()).expect("serialises");
    assert_eq!(doc, built);
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    // HEAD is served wherever GET is (RFC 9110) and, as usual, implied
    // rather than documented: it must not be documented on its own.
    assert!(
        documented.iter().all(|(method, _)| method != "head"),
        "HEAD is documented: {documented:?}"
    );
    let heads: Vec<(String, String)> = documented
        .iter()
        .filter(|(method, _)| method == "get")
        .map(|(_, path)| ("head".to_owned(), path.clone()))
        .collect();
    documented.extend(heads);
    let served = served();
    assert!(!served.is_empty());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
    );
    // The ones this suite relies on, spelt as the document spells them.
    for (method, path) in [
        ("get", "/health"),
        ("get", "/ready"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/users/me"),
        ("get", "/api/v1/tasks"),
        ("post", "/api/v1/tasks"),
        ("get", "/api/v1/tasks/{id}"),
        ("put", "/api/v1/tasks/{id}"),
        ("patch", "/api/v1/tasks/{id}"),
        ("delete", "/api/v1/tasks/{id}"),
        ("get", "/api/v1/tasks/{id}/history"),
        ("get", "/api/v1/projects"),
        ("post", "/api/v1/projects"),
        ("get", "/api/v1/projects/{id}"),
        ("patch", "/api/v1/projects/{id}"),
        ("delete", "/api/v1/projects/{id}"),
        ("post", "/api/v1/projects/{id}/transfer"),
        ("get", "/api/v1/projects/{id}/members"),
        ("post", "/api/v1/projects/{id}/members"),
        ("patch", "/api/v1/projects/{id}/members/{userId}"),
        ("delete", "/api/v1/projects/{id}/members/{userId}"),
        ("get", "/api/v1/projects/{id}/activity"),
        ("get", "/api/v1/admin/users"),
        ("patch", "/api/v1/admin/users/{id}"),
    ] {
        assert!(
            served.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn every_error_response_is_the_error_envelope() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["ErrorEnvelope"].is_object(),
        "no ErrorEnvelope schema"
    );
    let envelope_ref = json!("#/components/schemas/ErrorEnvelope");
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        let mut errors = 0;
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            errors += 1;
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], envelope_ref,
                "{method} {path} {status}: {response}"
            );
        }
        // At least 405, 500 and 503 everywhere.
        for status in ["405", "500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path} lacks {status}"
            );
        }
        assert!(errors >= 3);
        // Operations that take a body document 400, 413, 415 and 422.
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn protected_operations_declare_bearer_security() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    for (method, path, operation) in operations(&doc) {
        let protected = path.starts_with("/api/v1/tasks")
            || path.starts_with("/api/v1/projects")
            || path.starts_with("/api/v1/admin")
            || path == "/api/v1/users/me"
            || path == "/api/v1/auth/logout";
        let security = &operation["security"];
        if protected {
            assert_eq!(security, &json!([{"bearer": []}]), "{method} {path}");
            assert!(
                operation["responses"].get("401").is_some(),
                "{method} {path} lacks 401"
            );
        } else {
            assert!(
                security.is_null() || security == &json!([]),
                "{method} {path} should be public: {security}"
            );
        }
    }
}

#[tokio::test]
async fn every_served_route_answers() {
    let app = TestApp::spawn().await;
    let session = app.signup("routes@example.com").await;
    let mut routes: Vec<(String, String)> = served().into_iter().collect();
    // Logging out last keeps the token alive for the others.
    routes.sort_by_key(|(_, path)| path == "/api/v1/auth/logout");
    for (method, path) in routes {
        let concrete = path
            .replace("{id}", &random_uuid())
            .replace("{userId}", &random_uuid());
        assert!(!concrete.contains('{'), "{path} has another parameter");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = app.authed(method.clone(), &concrete, &session.access);
        if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            request = request.json(&json!({}));
        }
        let reply = Reply::read(send(request).await).await;
        let status = reply.status.as_u16();
        assert_ne!(status, 405, "{method} {path}: {reply:?}");
        assert!(
            !(status == 404 && reply.error()["message"] == "No such route."),
            "{method} {path} is not routed: {reply:?}"
        );
        assert!(status < 500, "{method} {path}: {reply:?}");
        reply.request_id();
    }
}

/// The constraints the server enforces are in the document, with the
/// domain's own numbers (the patterns are checked against the domain's
/// parsers in api-http's unit tests).
#[tokio::test]
async fn the_document_states_the_rules_the_server_enforces() {
    use api_http::dto::schemas;
    use domain::task::Description;
    use domain::{Email, PlainPassword, TaskQuery, TaskSort, Title, UserName};

    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas_of = &doc["components"]["schemas"];
    let property = |schema: &str, field: &str| schemas_of[schema]["properties"][field].clone();
    let required = |schema: &str| -> BTreeSet<String> {
        schemas_of[schema]["required"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| f.as_str().expect("a name").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    for schema in [
        "CreateTaskRequest",
        "ReplaceTaskRequest",
        "PatchTaskRequest",
    ] {
        let title = property(schema, "title");
        assert_eq!(title["type"], "string", "{schema}.title: {title}");
        assert_eq!(title["minLength"], 1, "{schema}.title");
        assert_eq!(title["maxLength"], Title::MAX_LEN, "{schema}.title");
        assert_eq!(
            title["pattern"],
            schemas::NOT_BLANK_NO_CONTROLS,
            "{schema}.title"
        );
        let description = property(schema, "description");
        assert_eq!(description["type"], json!(["string", "null"]), "{schema}");
        assert_eq!(description["maxLength"], Description::MAX_LEN, "{schema}");
        assert_eq!(description["pattern"], schemas::DESCRIPTION, "{schema}");
        let due = property(schema, "dueDate");
        assert_eq!(due["type"], json!(["string", "null"]), "{schema}");
        assert_eq!(due["format"], "date-time", "{schema}");
        assert_eq!(
            schemas_of[schema]["additionalProperties"], false,
            "{schema}"
        );
    }
    // PATCH: everything optional; null only where it clears.
    assert!(required("PatchTaskRequest").is_empty());
    assert_eq!(
        property("PatchTaskRequest", "status"),
        json!({"$ref": "#/components/schemas/TaskStatus"})
    );
    assert_eq!(
        property("PatchTaskRequest", "priority"),
        json!({"$ref": "#/components/schemas/TaskPriority"})
    );
    assert_eq!(
        required("ReplaceTaskRequest"),
        ["title", "status", "priority"].map(str::to_owned).into()
    );

    let email = property("RegisterRequest", "email");
    assert_eq!(email["maxLength"], Email::MAX_LEN);
    assert_eq!(email["pattern"], schemas::EMAIL);
    let password = property("RegisterRequest", "password");
    assert_eq!(password["minLength"], PlainPassword::MIN_LEN);
    assert_eq!(password["maxLength"], PlainPassword::MAX_LEN);
    assert_eq!(password["pattern"], schemas::NO_CONTROLS);
    let name = property("RegisterRequest", "name");
    assert_eq!(name["minLength"], 1);
    assert_eq!(name["maxLength"], UserName::MAX_LEN);
    assert_eq!(name["pattern"], schemas::NOT_BLANK_NO_CONTROLS);
    assert_eq!(
        property("LoginRequest", "email")["maxLength"],
        api_http::dto::LOGIN_EMAIL_MAX_LEN
    );
    assert_eq!(
        property("LoginRequest", "password")["maxLength"],
        api_http::dto::LOGIN_PASSWORD_MAX_LEN
    );
    let refresh = property("RefreshRequest", "refreshToken");
    assert_eq!(refresh["minLength"], 1);
    assert_eq!(refresh["maxLength"], api_http::dto::REFRESH_TOKEN_MAX_LEN);

    // Projects: the domain's limits, and the roles a member can be given.
    use domain::project::{ProjectDescription, ProjectName, ProjectRole};
    for schema in ["CreateProjectRequest", "PatchProjectRequest"] {
        let name = property(schema, "name");
        assert_eq!(name["minLength"], 1, "{schema}.name: {name}");
        assert_eq!(name["maxLength"], ProjectName::MAX_LEN, "{schema}.name");
        let description = property(schema, "description");
        assert_eq!(
            description["maxLength"],
            ProjectDescription::MAX_LEN,
            "{schema}.description: {description}"
        );
        assert_eq!(
            schemas_of[schema]["additionalProperties"], false,
            "{schema}"
        );
    }
    let roles: Vec<&str> = ProjectRole::ALL.iter().rev().map(|r| r.as_str()).collect();
    assert_eq!(schemas_of["Role"]["enum"], json!(roles));
    assert_eq!(schemas_of["AssignableRole"]["enum"], json!(roles[1..]));
    assert_eq!(
        required("AddMemberRequest"),
        ["role"].map(str::to_owned).into()
    );

    // Responses: nullable fields are always present.
    let task_required = required("TaskResponse");
    for field in ["description", "dueDate", "completedAt", "title", "version"] {
        assert!(task_required.contains(field), "TaskResponse.{field}");
    }

    assert_eq!(property("HealthStatus", "status")["enum"], json!(["ok"]));
    assert_eq!(property("Readiness", "status")["enum"], json!(["ready"]));
    assert_eq!(
        property("Readiness", "checks")["additionalProperties"]["enum"],
        json!(["up", "down"])
    );
    assert_eq!(
        property("UserResponse", "role")["enum"],
        json!(["user", "admin"])
    );

    // The list's query parameters.
    let parameters = doc["paths"]["/api/v1/tasks"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .clone();
    let parameter = |name: &str| {
        parameters
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .clone()
    };
    for p in &parameters {
        assert_eq!(p["in"], "query", "{p}");
        assert_eq!(p["required"], false, "{p}");
    }
    let limit = parameter("limit")["schema"].clone();
    assert_eq!(limit["type"], "integer", "{limit}");
    assert_eq!(limit["minimum"], 1);
    assert_eq!(limit["maximum"], TaskQuery::MAX_LIMIT);
    let sorts: Vec<String> = serde_json::from_value(parameter("sort")["schema"]["enum"].clone())
        .expect("sort is an enum");
    assert_eq!(sorts.len(), 8);
    for sort in &sorts {
        assert!(TaskSort::parse(sort).is_some(), "{sort}");
    }
    assert!(sorts.contains(&TaskSort::default().as_string()));
    for date in ["dueBefore", "dueAfter"] {
        assert_eq!(parameter(date)["schema"]["format"], "date-time", "{date}");
        assert!(
            parameter(date)["description"].is_string()
                || parameter(date)["schema"]["description"].is_string()
        );
    }
    assert_eq!(
        parameter("status")["schema"],
        json!({"$ref": "#/components/schemas/TaskStatus"})
    );
    assert_eq!(
        schemas_of["TaskStatus"]["enum"],
        json!(["todo", "in_progress", "done"])
    );
    assert_eq!(
        schemas_of["TaskPriority"]["enum"],
        json!(["low", "medium", "high", "urgent"])
    );
}

/// The envelopes' schemas say what is always sent: `data` and `error` are
/// required (one of them `null`), `nextCursor` is required and nullable,
/// `meta.pagination` is left out rather than `null`, a page's `limit` is in
/// the range `GET /tasks` accepts.
#[tokio::test]
async fn the_envelopes_schemas_match_what_is_sent() {
    use domain::TaskQuery;
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let required = |schema: &Value| -> BTreeSet<String> {
        schema["required"]
            .as_array()
            .expect("a required list")
            .iter()
            .map(|v| v.as_str().expect("a name").to_owned())
            .collect()
    };
    for name in ["success", "data", "error", "meta"] {
        assert!(required(&schemas["ErrorEnvelope"]).contains(name), "{name}");
    }
    let pagination = &schemas["Pagination"];
    assert!(required(pagination).contains("nextCursor"));
    assert_eq!(
        pagination["properties"]["nextCursor"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(pagination["properties"]["limit"]["minimum"], 1);
    assert_eq!(
        pagination["properties"]["limit"]["maximum"],
        TaskQuery::MAX_LIMIT
    );
    let meta = &schemas["Meta"];
    assert!(!required(meta).contains("pagination"));
    assert_eq!(
        meta["properties"]["pagination"]["$ref"], "#/components/schemas/Pagination",
        "not nullable: left out when absent"
    );
    let envelopes: Vec<&String> = schemas
        .as_object()
        .expect("schemas")
        .keys()
        .filter(|k| k.starts_with("Envelope"))
        .collect();
    assert!(!envelopes.is_empty());
    for name in envelopes {
        assert!(required(&schemas[name]).contains("error"), "{name}");
    }
}
