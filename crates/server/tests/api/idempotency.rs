//! `Idempotency-Key` on the creates: a retry with the key gets the first
//! response again and changes nothing; another body is refused; failures
//! are not kept; keys belong to their user and route; retries racing the
//! first request wait for its response.

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::{Reply, Session, TestApp, assert_ok_envelope, fresh_request_id, id_of, send};

/// `POST path` as `token` with `Idempotency-Key: key` and `body` sent as it
/// is (JSON text).
async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: &str) -> Reply {
    let request = app
        .authed(Method::POST, path, token)
        .header("Idempotency-Key", key)
        .header("X-Request-Id", fresh_request_id("idem"))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    Reply::read(send(request).await).await
}

/// How many of the project's events are of type `kind`.
async fn events_of(app: &TestApp, token: &str, project: &str, kind: &str) -> usize {
    let path = format!("/api/v1/projects/{project}/events?since=0");
    let events = app.pages(token, &path, 100).await;
    events.iter().filter(|e| e["type"] == kind).count()
}

/// The ids of the project's tasks.
async fn task_ids(app: &TestApp, token: &str, project: &str) -> Vec<String> {
    app.list_all(token, &format!("projectId={project}"), 100)
        .await
        .iter()
        .map(id_of)
        .collect()
}

/// A server, Ada, and a project of hers.
async fn ada_with_a_project() -> (TestApp, Session, String) {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Launch").await);
    (app, ada, project)
}

fn key() -> String {
    fresh_request_id("key")
}

/// Asserts `retry` is `first` again (status, `Location`, `ETag`, data)
/// under its own request id, marked as replayed.
#[track_caller]
fn assert_replay_of(retry: &Reply, first: &Reply) {
    assert_eq!(retry.status, first.status, "{retry:?}");
    retry.assert_ok(first.status.as_u16());
    assert_eq!(retry.data(), first.data(), "the first response's data");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("etag"), first.header("etag"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_ne!(
        retry.request_id(),
        first.request_id(),
        "meta.requestId is the retry's own"
    );
}

#[tokio::test]
async fn a_retry_with_the_key_gets_the_first_response_and_changes_nothing() {
    let (app, ada, project) = ada_with_a_project().await;
    let key = key();
    let body = format!(r#"{{"projectId":"{project}","title":"Plan","priority":"high"}}"#);
    let first = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &body).await;
    first.assert_ok(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let task = id_of(first.data());
    assert_eq!(
        first.header("location"),
        Some(format!("/api/v1/tasks/{task}").as_str())
    );
    // The same body, spaced and ordered otherwise.
    let same = format!(
        "{{ \"priority\": \"high\",\n  \"title\": \"Plan\", \"projectId\": \"{project}\" }}"
    );
    for retry_body in [&body, &same] {
        let retry = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, retry_body).await;
        assert_replay_of(&retry, &first);
    }
    assert_eq!(task_ids(&app, &ada.access, &project).await, [task.as_str()]);
    assert_eq!(
        events_of(&app, &ada.access, &project, "task.created").await,
        1,
        "one change, one event"
    );
    // The first response, even after the task changed.
    let path = format!("/api/v1/tasks/{task}");
    assert_ok_envelope(
        app.patch(&path, &ada.access, &json!({"title": "Renamed"}))
            .await,
        200,
    )
    .await;
    let retry = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &body).await;
    assert_replay_of(&retry, &first);
}

#[tokio::test]
async fn the_key_with_another_body_is_refused() {
    let (app, ada, project) = ada_with_a_project().await;
    let key = key();
    let body = |title: &str| format!(r#"{{"projectId":"{project}","title":"{title}"}}"#);
    let first = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &body("Plan")).await;
    first.assert_ok(201);
    for other in [body("Plan it"), r#"{"title":"Plan"}"#.to_owned()] {
        let reply = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &other).await;
        reply.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    }
    assert_eq!(task_ids(&app, &ada.access, &project).await.len(), 1);
    assert_eq!(
        events_of(&app, &ada.access, &project, "task.created").await,
        1
    );
}

#[tokio::test]
async fn a_failed_request_is_not_kept_and_its_key_can_be_retried() {
    let (app, ada, project) = ada_with_a_project().await;
    let key = key();
    // Invalid, then in a project that is not hers: each fails, nothing is
    // kept, and the key is free again, for any body.
    let invalid = format!(r#"{{"projectId":"{project}","title":""}}"#);
    let reply = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &invalid).await;
    reply.assert_error(422, "VALIDATION_FAILED");
    let elsewhere = format!(
        r#"{{"projectId":"{}","title":"Plan"}}"#,
        crate::helpers::random_uuid()
    );
    for _ in 0..2 {
        let reply = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &elsewhere).await;
        reply.assert_error(404, "NOT_FOUND");
    }
    let fixed = format!(r#"{{"projectId":"{project}","title":"Plan"}}"#);
    let reply = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &fixed).await;
    reply.assert_ok(201);
    assert_eq!(reply.header("idempotent-replayed"), None, "a first success");
    let again = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, &fixed).await;
    assert_replay_of(&again, &reply);
    assert_eq!(task_ids(&app, &ada.access, &project).await.len(), 1);
}

#[tokio::test]
async fn keys_belong_to_their_user_and_route() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let key = key();
    let body = r#"{"title":"Plan"}"#;
    let ada_task = post_with_key(&app, "/api/v1/tasks", &ada.access, &key, body).await;
    ada_task.assert_ok(201);
    let bob_task = post_with_key(&app, "/api/v1/tasks", &bob.access, &key, body).await;
    bob_task.assert_ok(201);
    assert_eq!(bob_task.header("idempotent-replayed"), None);
    assert_ne!(id_of(ada_task.data()), id_of(bob_task.data()));
    // The same key on other routes: creates of their own.
    let body = r#"{"name":"Plan"}"#;
    let project = post_with_key(&app, "/api/v1/projects", &ada.access, &key, body).await;
    project.assert_ok(201);
    assert_eq!(project.header("idempotent-replayed"), None);
    let other = id_of(&app.create_project(&ada.access, "Other").await);
    let member = format!(r#"{{"userId":"{}","role":"member"}}"#, bob.user_id);
    for project in [id_of(project.data()), other] {
        let path = format!("/api/v1/projects/{project}/members");
        let reply = post_with_key(&app, &path, &ada.access, &key, &member).await;
        reply.assert_ok(201);
        assert_eq!(reply.header("idempotent-replayed"), None);
    }
}

#[tokio::test]
async fn projects_and_members_are_created_once_per_key() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let key = key();
    let body = r#"{"name":"Launch","description":"Q3"}"#;
    let first = post_with_key(&app, "/api/v1/projects", &ada.access, &key, body).await;
    first.assert_ok(201);
    let retry = post_with_key(&app, "/api/v1/projects", &ada.access, &key, body).await;
    assert_replay_of(&retry, &first);
    let projects = app.pages(&ada.access, "/api/v1/projects", 100).await;
    assert_eq!(
        projects.iter().filter(|p| p["name"] == "Launch").count(),
        1,
        "{projects:?}"
    );
    let project = id_of(first.data());
    let path = format!("/api/v1/projects/{project}/members");
    let member = r#"{"email":"bob@example.com","role":"viewer"}"#;
    let added = post_with_key(&app, &path, &ada.access, &key, member).await;
    added.assert_ok(201);
    assert_eq!(added.data()["userId"], json!(bob.user_id));
    // Without the key, adding Bob again is 409; with it, the first answer.
    let retry = post_with_key(&app, &path, &ada.access, &key, member).await;
    assert_replay_of(&retry, &added);
    assert_eq!(
        events_of(&app, &ada.access, &project, "member.added").await,
        2,
        "the owner's membership and Bob's"
    );
}

#[tokio::test]
async fn concurrent_retries_make_one_task_and_one_event() {
    let (app, ada, project) = ada_with_a_project().await;
    let key = key();
    let body = format!(r#"{{"projectId":"{project}","title":"Plan"}}"#);
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = app
            .authed(Method::POST, "/api/v1/tasks", &ada.access)
            .header("Idempotency-Key", &key)
            .header("Content-Type", "application/json")
            .body(body.clone());
        running.spawn(async move { Reply::read(send(request).await).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = running.join_next().await {
        replies.push(reply.expect("a request finished"));
    }
    for reply in &replies {
        reply.assert_ok(201);
        assert_eq!(reply.data(), replies[0].data(), "one response for all");
        assert_eq!(reply.header("location"), replies[0].header("location"));
    }
    let replayed = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, replies.len() - 1, "all but the first are replays");
    let ids: Vec<&Value> = replies.iter().map(|r| &r.data()["id"]).collect();
    assert_eq!(
        task_ids(&app, &ada.access, &project).await,
        [ids[0].as_str().expect("an id").to_owned()]
    );
    assert_eq!(
        events_of(&app, &ada.access, &project, "task.created").await,
        1
    );
}

#[tokio::test]
async fn a_malformed_key_is_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let inbox = app.inbox_id(&ada.access).await;
    let too_long = "k".repeat(256);
    let bad: Vec<HeaderValue> = [
        &b""[..],
        b"two words",
        "clé".as_bytes(),
        too_long.as_bytes(),
    ]
    .into_iter()
    .map(|v| HeaderValue::from_bytes(v).expect("a header value"))
    .collect();
    for value in bad {
        let request = app
            .authed(Method::POST, "/api/v1/tasks", &ada.access)
            .header("Idempotency-Key", value.clone())
            .json(&json!({"title": "Plan"}));
        let reply = Reply::read(send(request).await).await;
        reply.assert_error(400, "MALFORMED_REQUEST");
        reply.assert_detail("Idempotency-Key");
    }
    let twice = app
        .authed(Method::POST, "/api/v1/tasks", &ada.access)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({"title": "Plan"}));
    Reply::read(send(twice).await)
        .await
        .assert_error(400, "MALFORMED_REQUEST");
    assert!(task_ids(&app, &ada.access, &inbox).await.is_empty());
    // The longest key, and every visible ASCII character, are fine.
    let longest = "k".repeat(255);
    let visible: String = ('!'..='~').collect();
    for key in [longest, visible] {
        let reply =
            post_with_key(&app, "/api/v1/tasks", &ada.access, &key, r#"{"title":"A"}"#).await;
        reply.assert_ok(201);
    }
}
