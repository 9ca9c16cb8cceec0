//! Every kind of failure leaves as the error envelope with the request id.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    PASSWORD, Reply, TestApp, assert_envelope_error, assert_ok_envelope, random_uuid, send,
};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let session = app.signup("malformed@example.com").await;
    for body in [
        r#"{"title": "#,
        r#"{"title": "x",}"#,
        "not json",
        "",
        r#"{"title": "x"} trailing"#,
    ] {
        let request = app
            .authed(Method::POST, "/api/v1/tasks", &session.access)
            .header("content-type", "application/json")
            .body(body);
        assert_envelope_error(send(request).await, 400, "MALFORMED_REQUEST").await;
    }
    // On public endpoints too.
    let request = app
        .request(Method::POST, "/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("{");
    assert_envelope_error(send(request).await, 400, "MALFORMED_REQUEST").await;
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_400() {
    let app = TestApp::spawn().await;
    let session = app.signup("badid@example.com").await;
    for id in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        let path = format!("/api/v1/tasks/{id}");
        assert_envelope_error(
            app.get(&path, &session.access).await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        assert_envelope_error(
            app.put(
                &path,
                &session.access,
                &json!({"title": "x", "status": "todo", "priority": "low"}),
            )
            .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        assert_envelope_error(
            app.patch(&path, &session.access, &json!({"title": "x"}))
                .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        assert_envelope_error(
            app.delete(&path, &session.access).await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
    }
    // Authentication comes first.
    assert_envelope_error(
        app.get_public("/api/v1/tasks/not-a-uuid").await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_are_404_with_the_envelope() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/api/v1/nope"),
        (Method::GET, "/api/v2/tasks"),
        (Method::POST, "/api/v1/tasks/extra/segments"),
        (Method::DELETE, "/api/v1/users"),
        (Method::GET, "/api/v1/tasks/"),
    ] {
        let reply = assert_envelope_error(
            send(app.request(method.clone(), path)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(
            reply.error()["message"],
            "No such route.",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_method_the_route_lacks_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let session = app.signup("methods@example.com").await;
    let task_path = format!("/api/v1/tasks/{}", random_uuid());
    for (method, path, allow) in [
        (Method::DELETE, "/api/v1/users/me", "GET, HEAD"),
        (Method::POST, "/api/v1/users/me", "GET, HEAD"),
        (Method::PUT, "/api/v1/tasks", "GET, HEAD, POST"),
        (Method::DELETE, "/api/v1/tasks", "GET, HEAD, POST"),
        (
            Method::POST,
            task_path.as_str(),
            "GET, HEAD, PUT, PATCH, DELETE",
        ),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::GET, "/api/v1/auth/logout", "POST"),
        (Method::POST, "/health", "GET, HEAD"),
        (Method::PUT, "/ready", "GET, HEAD"),
    ] {
        // With and without credentials: the method is checked first.
        for token in [None, Some(session.access.as_str())] {
            let mut request = app.request(method.clone(), path);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let reply = assert_envelope_error(send(request).await, 405, "METHOD_NOT_ALLOWED").await;
            let mut got: Vec<&str> = reply
                .header("allow")
                .unwrap_or_else(|| panic!("no Allow on {method} {path}: {reply:?}"))
                .split(',')
                .map(str::trim)
                .collect();
            let mut expected: Vec<&str> = allow.split(", ").collect();
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(got, expected, "Allow of {method} {path}");
        }
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let session = app.signup("large@example.com").await;
    let big = json!({"title": "big", "description": "x".repeat(70 * 1024)});
    assert_envelope_error(
        app.post("/api/v1/tasks", &session.access, &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // Just over the limit, and with a body too large for the public
    // endpoints.
    let body = format!(r#"{{"title": "{}"}}"#, "y".repeat(64 * 1024));
    assert!(body.len() > 64 * 1024);
    let request = app
        .authed(Method::POST, "/api/v1/tasks", &session.access)
        .header("content-type", "application/json")
        .body(body);
    assert_envelope_error(send(request).await, 413, "PAYLOAD_TOO_LARGE").await;
    let login = json!({"email": "large@example.com", "password": "p".repeat(70 * 1024)});
    assert_envelope_error(
        app.post_public("/api/v1/auth/login", &login).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // Nothing was created, and the server still answers.
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", &session.access).await, 200).await;
    assert_eq!(listed.data(), &json!([]));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let session = app.signup("media@example.com").await;
    let json_text = r#"{"title": "typed"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("text/json-ish"),
        None,
    ] {
        let mut request = app
            .authed(Method::POST, "/api/v1/tasks", &session.access)
            .body(json_text);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        assert_envelope_error(send(request).await, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    }
    let request = app
        .request(Method::POST, "/api/v1/auth/register")
        .header("content-type", "text/plain")
        .body(format!(
            r#"{{"email": "x@example.com", "password": "{PASSWORD}", "name": "X"}}"#
        ));
    assert_envelope_error(send(request).await, 415, "UNSUPPORTED_MEDIA_TYPE").await;

    // JSON with parameters or a +json suffix is JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let request = app
            .authed(Method::POST, "/api/v1/tasks", &session.access)
            .header("content-type", content_type)
            .body(json_text);
        assert_ok_envelope(send(request).await, 201).await;
    }
}

#[tokio::test]
async fn conflicts_and_validation_failures_have_the_envelope() {
    let app = TestApp::spawn().await;
    assert_ok_envelope(app.register("c@example.com", PASSWORD, "C").await, 201).await;
    let conflict = assert_envelope_error(
        app.register("c@example.com", PASSWORD, "C").await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(conflict.error()["details"], json!({}));
    let invalid = assert_envelope_error(
        app.register("c2@example.com", "short", "C").await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    let details = invalid.details();
    assert_eq!(details.keys().collect::<Vec<_>>(), ["password"]);
    assert!(details["password"].iter().all(|m| !m.is_empty()));
}

/// RFC 9110: HEAD wherever GET is served, with GET's status and headers and
/// no body; HEAD where there is no GET is 405 with `Allow`.
#[tokio::test]
async fn head_answers_wherever_get_does() {
    let app = TestApp::spawn().await;
    let session = app.signup("head@example.com").await;
    let task = app
        .create_task(&session.access, &serde_json::json!({"title": "Headed"}))
        .await;
    let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let missing_path = format!("/api/v1/tasks/{}", random_uuid());
    for (path, token, status) in [
        ("/health", None, 200),
        ("/ready", None, 200),
        ("/api-docs/openapi.json", None, 200),
        ("/api/v1/users/me", Some(&session.access), 200),
        ("/api/v1/users/me", None, 401),
        ("/api/v1/tasks?limit=5", Some(&session.access), 200),
        ("/api/v1/tasks?limit=0", Some(&session.access), 400),
        (task_path.as_str(), Some(&session.access), 200),
        (missing_path.as_str(), Some(&session.access), 404),
    ] {
        let request = |method: Method| {
            let request = app.request(method, path);
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        let get = crate::helpers::Reply::read(send(request(Method::GET)).await).await;
        let head = crate::helpers::Reply::read(send(request(Method::HEAD)).await).await;
        assert_eq!(get.status.as_u16(), status, "GET {path}: {get:?}");
        assert_eq!(head.status, get.status, "HEAD {path}: {head:?}");
        assert!(head.text.is_empty(), "HEAD {path} has a body: {head:?}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
        head.request_id();
    }
    // No GET, no HEAD.
    let head =
        crate::helpers::Reply::read(send(app.request(Method::HEAD, "/api/v1/auth/login")).await)
            .await;
    assert_eq!(head.status.as_u16(), 405, "{head:?}");
    assert_eq!(head.header("allow"), Some("POST"));
    assert!(head.text.is_empty(), "{head:?}");
}

/// A body is a JSON object: an array of the fields in order (which serde
/// would read as the struct) is 422, not a task titled by its first item.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_422() {
    let app = TestApp::spawn().await;
    let session = app.signup("arrays@example.com").await;
    let token = &session.access;
    let task = app
        .create_task(token, &serde_json::json!({"title": "Kept"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let arrays = [
        serde_json::json!([]),
        serde_json::json!(["From an array"]),
        serde_json::json!(["Again", null, "todo", "low", null]),
        serde_json::json!("a string"),
        serde_json::json!(42),
    ];
    for body in &arrays {
        for (method, target) in [
            (Method::POST, "/api/v1/tasks"),
            (Method::PUT, path.as_str()),
            (Method::PATCH, path.as_str()),
        ] {
            let reply = assert_envelope_error(
                send(app.authed(method.clone(), target, token).json(body)).await,
                422,
                "VALIDATION_FAILED",
            )
            .await;
            reply.assert_detail("body");
        }
        for target in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
        ] {
            let reply = assert_envelope_error(
                app.post_public(target, body).await,
                422,
                "VALIDATION_FAILED",
            )
            .await;
            reply.assert_detail("body");
        }
    }
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", token).await, 200).await;
    assert_eq!(listed.data(), &serde_json::json!([task]));
}

/// Every served route with an id in its path: a non-UUID in any of its ids
/// is 400, before anything else about the request is looked at.
#[tokio::test]
async fn every_path_id_that_is_not_a_uuid_is_400() {
    let app = TestApp::spawn().await;
    let session = app.signup("badids@example.com").await;
    let routes = api_http::served_routes::<server::MemoryPorts>();
    let with_ids: Vec<_> = routes
        .iter()
        .filter(|(_, path)| path.contains('{'))
        .collect();
    assert!(with_ids.len() >= 10, "{with_ids:?}");
    for (method, path) in with_ids {
        for parameter in ["{id}", "{userId}"] {
            if !path.contains(parameter) {
                continue;
            }
            let concrete = path
                .replace(parameter, "not-a-uuid")
                .replace("{id}", &random_uuid())
                .replace("{userId}", &random_uuid());
            let method = Method::from_bytes(method.as_str().as_bytes()).expect("a method");
            let mut request = app.authed(method.clone(), &concrete, &session.access);
            if ["POST", "PUT", "PATCH"].contains(&method.as_str()) {
                request = request.json(&json!({}));
            }
            let reply = Reply::read(send(request).await).await;
            if method.as_str() == "HEAD" {
                assert_eq!(reply.status.as_u16(), 400, "{method} {concrete}");
            } else {
                reply.assert_error(400, "MALFORMED_REQUEST");
            }
        }
    }
}
