//! CORS (`CORS_ORIGINS`): a listed origin gets its own origin back with
//! credentials, on answers and preflights alike; any other origin gets no
//! `Access-Control-Allow-Origin`; requests without `Origin` and servers
//! without the list behave as if CORS did not exist.

use reqwest::{Method, RequestBuilder};

use crate::helpers::{Reply, TestApp, assert_envelope_error, assert_ok_envelope, send};

const APP: &str = "https://app.example.com";
const DEV: &str = "http://localhost:5173";
const ELSEWHERE: &str = "https://evil.example";

async fn with_origins() -> TestApp {
    TestApp::spawn_with(&[("CORS_ORIGINS", &format!("{APP}, {DEV}"))]).await
}

/// A browser's preflight for a PATCH with credentials and a version check.
fn preflight(app: &TestApp, path: &str, origin: &str) -> RequestBuilder {
    app.request(Method::OPTIONS, path)
        .header("origin", origin)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization, content-type, if-match, idempotency-key, x-request-id",
        )
}

fn list(reply: &Reply, name: &str) -> Vec<String> {
    reply
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

#[track_caller]
fn assert_allowed(reply: &Reply, origin: &str) {
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(origin),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true"),
        "{reply:?}"
    );
    assert!(
        list(reply, "vary").contains(&"origin".to_owned()),
        "{reply:?}"
    );
}

#[track_caller]
fn assert_no_cors(reply: &Reply) {
    let cors: Vec<_> = reply
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "CORS headers {cors:?}: {reply:?}");
}

#[tokio::test]
async fn a_listed_origin_may_read_answers_and_errors() {
    let app = with_origins().await;
    for origin in [APP, DEV] {
        let request = app.request(Method::GET, "/health").header("origin", origin);
        let reply = assert_ok_envelope(send(request).await, 200).await;
        assert_allowed(&reply, origin);
        let exposed = list(&reply, "access-control-expose-headers");
        for header in [
            "etag",
            "location",
            "x-request-id",
            "retry-after",
            "idempotent-replayed",
            "ratelimit",
            "ratelimit-policy",
        ] {
            assert!(exposed.contains(&header.to_owned()), "{header}: {reply:?}");
        }
    }
    // An error keeps its envelope, and the page may read it.
    let request = app
        .request(Method::GET, "/api/v1/users/me")
        .header("origin", APP);
    let reply = assert_envelope_error(send(request).await, 401, "UNAUTHENTICATED").await;
    assert_allowed(&reply, APP);
    let request = app.request(Method::DELETE, "/health").header("origin", APP);
    let reply = assert_envelope_error(send(request).await, 405, "METHOD_NOT_ALLOWED").await;
    assert_allowed(&reply, APP);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{reply:?}");
}

#[tokio::test]
async fn a_listed_origin_passes_the_preflight() {
    let app = with_origins().await;
    let reply = Reply::read(send(preflight(&app, "/api/v1/tasks/some-id", APP)).await).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert_allowed(&reply, APP);
    // The request context is outside CORS: preflights have an id too.
    reply.request_id();
    let methods = list(&reply, "access-control-allow-methods");
    for method in ["get", "head", "post", "put", "patch", "delete"] {
        assert!(methods.contains(&method.to_owned()), "{method}: {reply:?}");
    }
    let headers = list(&reply, "access-control-allow-headers");
    for header in [
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "x-client-mutation-id",
        "x-request-id",
        "last-event-id",
        "x-csrf-token",
    ] {
        assert!(headers.contains(&header.to_owned()), "{header}: {reply:?}");
    }
    assert_eq!(
        reply.header("access-control-max-age"),
        Some("600"),
        "{reply:?}"
    );

    // A header the API does not take is refused, in the envelope.
    let request = app
        .request(Method::OPTIONS, "/api/v1/tasks")
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-unheard-of");
    let reply = assert_envelope_error(send(request).await, 400, "MALFORMED_REQUEST").await;
    assert!(
        reply.error()["message"]
            .as_str()
            .is_some_and(|m| m.contains("CORS")),
        "{reply:?}"
    );
}

#[tokio::test]
async fn another_origin_gets_no_allow_origin() {
    let app = with_origins().await;
    // Served (CORS is enforced by the browser), but not readable by the page.
    let request = app
        .request(Method::GET, "/health")
        .header("origin", ELSEWHERE);
    let reply = assert_ok_envelope(send(request).await, 200).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    // The preflight fails, in the envelope; never a 500.
    let response = send(preflight(&app, "/api/v1/tasks", ELSEWHERE)).await;
    let reply = assert_envelope_error(response, 400, "MALFORMED_REQUEST").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    // Origins compare whole: another port is another origin.
    let request = app
        .request(Method::GET, "/health")
        .header("origin", "http://localhost:5174");
    let reply = assert_ok_envelope(send(request).await, 200).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
}

#[tokio::test]
async fn without_origin_nothing_changes() {
    let app = with_origins().await;
    let reply = assert_ok_envelope(send(app.request(Method::GET, "/health")).await, 200).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    // A plain OPTIONS is a method the resource lacks, as before.
    let reply = assert_envelope_error(
        send(app.request(Method::OPTIONS, "/health")).await,
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;
    assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{reply:?}");
}

#[tokio::test]
async fn without_the_list_no_origin_gets_cors_headers() {
    let app = TestApp::spawn().await;
    for origin in [APP, ELSEWHERE] {
        let request = app.request(Method::GET, "/health").header("origin", origin);
        let reply = assert_ok_envelope(send(request).await, 200).await;
        assert_no_cors(&reply);
        // A preflight is an OPTIONS like any other: 405 with Allow.
        let response = send(preflight(&app, "/health", origin)).await;
        let reply = assert_envelope_error(response, 405, "METHOD_NOT_ALLOWED").await;
        assert_no_cors(&reply);
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{reply:?}");
    }
}
