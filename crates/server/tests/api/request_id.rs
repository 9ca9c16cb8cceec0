//! `X-Request-Id`: the client's when valid, a fresh one otherwise, on every
//! response and in the envelope's `meta.requestId`.

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::json;

use crate::helpers::{
    Reply, TestApp, assert_envelope_error, assert_ok_envelope, is_valid_request_id, send,
};

#[tokio::test]
async fn a_valid_client_id_is_echoed() {
    let app = TestApp::spawn().await;
    let session = app.signup("rid@example.com").await;
    let longest = "a".repeat(64);
    for id in ["abc-123_x.y", "A", longest.as_str()] {
        // Success.
        let request = app
            .request(Method::GET, "/health")
            .header("x-request-id", id);
        let reply = assert_ok_envelope(send(request).await, 200).await;
        assert_eq!(reply.request_id(), id);
        assert_eq!(reply.body["meta"]["requestId"], id);

        // An error of a handler.
        let request = app
            .request(Method::GET, "/api/v1/users/me")
            .header("x-request-id", id);
        let reply = assert_envelope_error(send(request).await, 401, "UNAUTHENTICATED").await;
        assert_eq!(reply.request_id(), id);

        // An unknown route.
        let request = app
            .request(Method::GET, "/no/such/route")
            .header("x-request-id", id);
        let reply = assert_envelope_error(send(request).await, 404, "NOT_FOUND").await;
        assert_eq!(reply.request_id(), id);

        // A method not allowed.
        let request = app
            .request(Method::DELETE, "/health")
            .header("x-request-id", id);
        let reply = assert_envelope_error(send(request).await, 405, "METHOD_NOT_ALLOWED").await;
        assert_eq!(reply.request_id(), id);

        // A rejected path value.
        let request = app
            .authed(Method::DELETE, "/api/v1/tasks/not-a-uuid", &session.access)
            .header("x-request-id", id);
        let reply = assert_envelope_error(send(request).await, 400, "MALFORMED_REQUEST").await;
        assert_eq!(reply.request_id(), id);
    }

    // A created resource and a 204 carry it too.
    let request = app
        .authed(Method::POST, "/api/v1/tasks", &session.access)
        .header("x-request-id", "create-1")
        .json(&json!({"title": "with an id"}));
    let created = assert_ok_envelope(send(request).await, 201).await;
    assert_eq!(created.request_id(), "create-1");
    let path = format!(
        "/api/v1/tasks/{}",
        created.data()["id"].as_str().expect("an id")
    );
    let request = app
        .authed(Method::DELETE, &path, &session.access)
        .header("x-request-id", "delete-1");
    let deleted = Reply::read(send(request).await).await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_eq!(deleted.request_id(), "delete-1");
}

#[tokio::test]
async fn an_invalid_client_id_is_replaced() {
    let app = TestApp::spawn().await;
    let too_long = "a".repeat(65);
    for bad in [
        too_long.as_str(),
        "has space",
        "a/b",
        "semi;colon",
        "ünïcode",
        "",
    ] {
        for path in ["/health", "/api/v1/users/me", "/nowhere"] {
            let value = HeaderValue::from_bytes(bad.as_bytes()).expect("a header value");
            let request = app.request(Method::GET, path).header("x-request-id", value);
            let reply = Reply::read(send(request).await).await;
            let id = reply.request_id();
            assert_ne!(id, bad, "{path}: {bad:?} was kept");
            assert!(is_valid_request_id(id), "{path}: fresh id {id:?}");
            assert_eq!(reply.body["meta"]["requestId"], id, "{path}");
        }
    }
}

#[tokio::test]
async fn requests_without_an_id_get_distinct_fresh_ones() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::BTreeSet::new();
    for path in [
        "/health",
        "/health",
        "/ready",
        "/api/v1/users/me",
        "/nowhere",
        "/nowhere",
    ] {
        let reply = Reply::read(app.get_public(path).await).await;
        let id = reply.request_id().to_owned();
        assert!(is_valid_request_id(&id), "{id:?}");
        assert_eq!(reply.body["meta"]["requestId"], json!(id), "{path}");
        assert!(seen.insert(id.clone()), "{id} given twice");
    }
    // Non-JSON responses carry one too.
    let docs = Reply::read(app.get_public("/docs/").await).await;
    assert!(is_valid_request_id(docs.request_id()));
    let redirect = Reply::read(app.get_public("/docs").await).await;
    assert!(is_valid_request_id(redirect.request_id()));
}
