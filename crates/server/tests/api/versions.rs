//! Lost-update protection: `ETag` on tasks and projects, `If-Match` on
//! their changes (412 and nothing changed when stale), `If-None-Match` on
//! reads (304).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, TestApp, assert_ok_envelope, id_of, send};

async fn with_header(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    header: (&str, &str),
    body: Option<serde_json::Value>,
) -> Reply {
    let mut request = app.authed(method, path, token).header(header.0, header.1);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::read(send(request).await).await
}

#[tokio::test]
async fn a_stale_if_match_changes_nothing_and_says_the_current_version() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let created = Reply::read(
        send(
            app.authed(Method::POST, "/api/v1/tasks", &ada.access)
                .json(&json!({"title": "Plan"})),
        )
        .await,
    )
    .await;
    created.assert_ok(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let path = format!("/api/v1/tasks/{}", id_of(created.data()));
    // Someone else changes it first, without a precondition.
    let other = assert_ok_envelope(
        app.patch(&path, &ada.access, &json!({"title": "Theirs"}))
            .await,
        200,
    )
    .await;
    assert_eq!(other.header("etag"), Some("\"2\""));
    for (method, body) in [
        (Method::PATCH, Some(json!({"title": "Mine"}))),
        (
            Method::PUT,
            Some(json!({"title": "Mine", "status": "todo", "priority": "low"})),
        ),
        (Method::DELETE, None),
    ] {
        let stale = with_header(
            &app,
            method.clone(),
            &path,
            &ada.access,
            ("If-Match", "\"1\""),
            body,
        )
        .await;
        stale.assert_error(412, "PRECONDITION_FAILED");
        assert_eq!(stale.details()["currentVersion"], ["2"], "{method}");
    }
    let now = assert_ok_envelope(app.get(&path, &ada.access).await, 200).await;
    assert_eq!(now.data()["title"], "Theirs", "nothing changed");
    // The current version, a list naming it, or `*` go through.
    let mut version = 2;
    for tag in ["\"{v}\"", "\"99\", \"{v}\"", "*"] {
        let tag = tag.replace("{v}", &version.to_string());
        let done = with_header(
            &app,
            Method::PATCH,
            &path,
            &ada.access,
            ("If-Match", &tag),
            Some(json!({"title": format!("Mine {tag}")})),
        )
        .await;
        done.assert_ok(200);
        version += 1;
        assert_eq!(done.data()["version"], version, "{tag}");
        assert_eq!(done.header("etag"), Some(format!("\"{version}\"").as_str()));
    }
    // A weak tag never matches a change.
    let weak = with_header(
        &app,
        Method::DELETE,
        &path,
        &ada.access,
        ("If-Match", "W/\"5\""),
        None,
    )
    .await;
    weak.assert_error(412, "PRECONDITION_FAILED");
}

#[tokio::test]
async fn if_none_match_answers_304_while_nothing_changed() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let task = app
        .create_task(&ada.access, &json!({"title": "Plan"}))
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let unchanged = with_header(
        &app,
        Method::GET,
        &path,
        &ada.access,
        ("If-None-Match", "\"1\""),
        None,
    )
    .await;
    assert_eq!(unchanged.status, 304);
    assert_eq!(unchanged.header("etag"), Some("\"1\""));
    assert!(unchanged.text.is_empty());
    app.patch(&path, &ada.access, &json!({"title": "Changed"}))
        .await;
    let changed = with_header(
        &app,
        Method::GET,
        &path,
        &ada.access,
        ("If-None-Match", "\"1\""),
        None,
    )
    .await;
    changed.assert_ok(200);
    assert_eq!(changed.header("etag"), Some("\"2\""));
    // Another project's task stays 404 whatever the header says.
    let eve = app.signup("eve@example.com").await;
    let hidden = with_header(
        &app,
        Method::GET,
        &path,
        &eve.access,
        ("If-None-Match", "*"),
        None,
    )
    .await;
    hidden.assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn concurrent_changes_with_one_version_let_exactly_one_through() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let task = app.create_task(&ada.access, &json!({"title": "Hot"})).await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    let mut running = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = app
            .authed(Method::PATCH, &path, &ada.access)
            .header("If-Match", "\"1\"")
            .json(&json!({"title": format!("Edit {i}")}));
        running.spawn(async move { Reply::read(send(request).await).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = running.join_next().await {
        replies.push(reply.expect("a writer finished"));
    }
    let won = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies.iter().filter(|r| r.status == 412).count();
    assert_eq!((won, refused), (1, 7), "{replies:?}");
    let now = assert_ok_envelope(app.get(&path, &ada.access).await, 200).await;
    assert_eq!(now.data()["version"], 2);
}

#[tokio::test]
async fn projects_carry_etags_and_honour_if_match() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project = app.create_project(&ada.access, "Launch").await;
    let path = format!("/api/v1/projects/{}", id_of(&project));
    let read = assert_ok_envelope(app.get(&path, &ada.access).await, 200).await;
    assert_eq!(read.header("etag"), Some("\"1\""));
    let renamed = with_header(
        &app,
        Method::PATCH,
        &path,
        &ada.access,
        ("If-Match", "\"1\""),
        Some(json!({"name": "Relaunch"})),
    )
    .await;
    renamed.assert_ok(200);
    assert_eq!(renamed.header("etag"), Some("\"2\""));
    let stale = with_header(
        &app,
        Method::DELETE,
        &path,
        &ada.access,
        ("If-Match", "\"1\""),
        None,
    )
    .await;
    stale.assert_error(412, "PRECONDITION_FAILED");
    assert_eq!(stale.details()["currentVersion"], ["2"]);
    let unchanged = with_header(
        &app,
        Method::GET,
        &path,
        &ada.access,
        ("If-None-Match", "\"2\""),
        None,
    )
    .await;
    assert_eq!(unchanged.status, 304);
    let deleted = with_header(
        &app,
        Method::DELETE,
        &path,
        &ada.access,
        ("If-Match", "\"2\""),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn a_malformed_change_is_refused_as_such_whatever_the_version() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let task = app
        .create_task(&ada.access, &json!({"title": "Plan"}))
        .await;
    let project = app.create_project(&ada.access, "Launch").await;
    for (path, body) in [
        (
            format!("/api/v1/tasks/{}", id_of(&task)),
            json!({"title": "a\u{0}b"}),
        ),
        (
            format!("/api/v1/projects/{}", id_of(&project)),
            json!({"name": "a\u{0}b"}),
        ),
    ] {
        let reply = with_header(
            &app,
            Method::PATCH,
            &path,
            &ada.access,
            ("If-Match", "\"9\""),
            Some(body),
        )
        .await;
        reply.assert_error(422, "VALIDATION_FAILED");
    }
}
