//! Delta sync over HTTP: a project's event log after `since`, in `seq`
//! order, with `meta.headSeq`; the head with a project's task list; the
//! client's mutation id echoed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, assert_envelope_error, assert_ok_envelope, id_of, random_uuid, send,
};

/// Every event of the project after `since` (every page), and the head.
async fn events(app: &TestApp, token: &str, project: &str, since: i64) -> (Vec<Value>, i64) {
    let path = format!("/api/v1/projects/{project}/events?since={since}");
    let reply = assert_ok_envelope(app.get(&path, token).await, 200).await;
    let head = reply.body["meta"]["headSeq"]
        .as_i64()
        .expect("meta.headSeq");
    let all = app.pages(token, &path, 2).await;
    (all, head)
}

fn seqs_and_types(events: &[Value]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().expect("a seq"),
                e["type"].as_str().expect("a type").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_projects_events_follow_its_changes_in_order_with_their_state() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project = app.create_project(&ada.access, "Launch").await;
    let project_id = id_of(&project);
    let reply = Reply::read(
        send(
            app.authed(Method::POST, "/api/v1/tasks", &ada.access)
                .header("X-Client-Mutation-Id", "ui-42")
                .header("X-Request-Id", "req-events-1")
                .json(&json!({"projectId": project_id, "title": "Plan"})),
        )
        .await,
    )
    .await;
    reply.assert_ok(201);
    let task = reply.data().clone();
    let task_path = format!("/api/v1/tasks/{}", id_of(&task));
    let done = assert_ok_envelope(
        app.patch(&task_path, &ada.access, &json!({"status": "done"}))
            .await,
        200,
    )
    .await;
    let done = done.data().clone();
    let (all, head) = events(&app, &ada.access, &project_id, 0).await;
    assert_eq!(head, 4);
    assert_eq!(
        seqs_and_types(&all),
        [
            (1, "project.created".to_owned()),
            (2, "member.added".to_owned()),
            (3, "task.created".to_owned()),
            (4, "task.updated".to_owned()),
        ]
    );
    // The project's data is the project without the caller's role.
    let mut without_role = project.clone();
    without_role
        .as_object_mut()
        .expect("an object")
        .remove("role");
    assert_eq!(all[0]["data"], without_role);
    assert_eq!(all[1]["data"]["email"], "ada@example.com");
    assert_eq!(all[1]["entityId"], Value::String(ada.user_id.clone()));
    // A task's data is the task as the task routes render it.
    assert_eq!(all[2]["data"], task);
    assert_eq!(all[2]["clientMutationId"], "ui-42");
    assert_eq!(all[2]["requestId"], "req-events-1");
    assert_eq!(all[2]["actorId"], Value::String(ada.user_id.clone()));
    assert_eq!(all[3]["data"], done);
    assert_eq!(all[3]["changes"], json!(["completedAt", "status"]));
    assert_eq!(all[3]["clientMutationId"], Value::Null);
    for event in &all {
        assert_eq!(event["projectId"], Value::String(project_id.clone()));
    }

    // From the middle: only what came after.
    let (later, head) = events(&app, &ada.access, &project_id, 2).await;
    assert_eq!((later.len(), head), (2, 4));
    assert_eq!(later[0]["seq"], 3);
}

#[tokio::test]
async fn a_projects_task_list_tells_where_its_log_stands() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project_id = id_of(&app.create_project(&ada.access, "Launch").await);
    app.create_task(
        &ada.access,
        &json!({"projectId": project_id, "title": "One"}),
    )
    .await;
    let path = format!("/api/v1/tasks?projectId={project_id}");
    let listed = assert_ok_envelope(app.get(&path, &ada.access).await, 200).await;
    assert_eq!(listed.body["meta"]["headSeq"], 3);
    // Following the log from there misses nothing that comes next.
    app.create_task(
        &ada.access,
        &json!({"projectId": project_id, "title": "Two"}),
    )
    .await;
    let (next, _) = events(&app, &ada.access, &project_id, 3).await;
    assert_eq!(seqs_and_types(&next), [(4, "task.created".to_owned())]);
    assert_eq!(next[0]["data"]["title"], "Two");
    // Across projects there is no single log.
    let across = assert_ok_envelope(app.get("/api/v1/tasks", &ada.access).await, 200).await;
    assert!(across.body["meta"].get("headSeq").is_none(), "{across:?}");
}

#[tokio::test]
async fn only_members_read_a_log_and_only_from_where_it_is() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let eve = app.signup("eve@example.com").await;
    let vic = app.signup("vic@example.com").await;
    let project_id = id_of(&app.create_project(&ada.access, "Launch").await);
    app.add_member(&ada.access, &project_id, &vic.user_id, "viewer")
        .await;
    let path = |query: &str| format!("/api/v1/projects/{project_id}/events{query}");
    let (seen, head) = events(&app, &vic.access, &project_id, 0).await;
    assert_eq!((seen.len(), head), (3, 3), "viewers read the log");
    let hidden =
        assert_envelope_error(app.get(&path(""), &eve.access).await, 404, "NOT_FOUND").await;
    let missing = assert_envelope_error(
        app.get(
            &format!("/api/v1/projects/{}/events", random_uuid()),
            &eve.access,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(hidden.error(), missing.error());
    for bad in ["?since=-1", "?since=two", "?cursor=nonsense"] {
        assert_envelope_error(
            app.get(&path(bad), &ada.access).await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
    }
    let ahead = assert_envelope_error(
        app.get(&path("?since=4"), &ada.access).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    ahead.assert_detail("since");
}

#[tokio::test]
async fn a_malformed_client_mutation_id_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let reply = Reply::read(
        send(
            app.authed(Method::POST, "/api/v1/tasks", &ada.access)
                .header("X-Client-Mutation-Id", "not valid!")
                .json(&json!({"title": "Plan"})),
        )
        .await,
    )
    .await;
    reply.assert_error(400, "MALFORMED_REQUEST");
    assert!(app.list_all(&ada.access, "", 100).await.is_empty());
}
