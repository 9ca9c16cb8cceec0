//! The audit trail over HTTP: an entry for every change, with who, what,
//! before and after, and the request that made it; none for a refused
//! change; a project's activity and a task's history, newest first.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{
    Reply, Session, TestApp, assert_envelope_error, assert_ok_envelope, fresh_request_id, id_of,
    random_uuid, sorted_keys,
};

/// Sends a change with a request id of its own; returns the reply and
/// the id.
async fn act(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &Session,
    body: Option<Value>,
) -> (Reply, String) {
    let request_id = fresh_request_id("audit");
    let reply = app
        .send_as(method, path, &session.access, body.as_ref(), &request_id)
        .await;
    assert_eq!(reply.request_id(), request_id, "the id is echoed");
    (reply, request_id)
}

/// As [`act`], for a change that must succeed with `status`; returns the
/// request id.
async fn act_ok(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &Session,
    body: Option<Value>,
    status: u16,
) -> String {
    let (reply, request_id) = act(app, method, path, session, body).await;
    if status == 204 {
        assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    } else {
        reply.assert_ok(status);
    }
    request_id
}

/// The entries a request made, in the order the list shows them.
fn made_by<'a>(entries: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["requestId"] == json!(request_id))
        .collect()
}

/// The one entry of `action` a request made.
#[track_caller]
fn only<'a>(entries: &'a [Value], request_id: &str, action: &str) -> &'a Value {
    let found: Vec<&Value> = made_by(entries, request_id)
        .into_iter()
        .filter(|e| e["action"] == json!(action))
        .collect();
    assert_eq!(found.len(), 1, "one {action} by {request_id}: {entries:#?}");
    found[0]
}

/// What an entry must say.
struct Expected<'a> {
    action: &'a str,
    entity_type: &'a str,
    entity_id: &'a str,
    project_id: &'a str,
    actor: &'a Session,
    changes: Value,
}

#[track_caller]
fn assert_entry(entry: &Value, expected: Expected<'_>) {
    assert_eq!(
        sorted_keys(entry),
        [
            "action",
            "actorId",
            "at",
            "changes",
            "entityId",
            "entityType",
            "id",
            "projectId",
            "requestId"
        ],
        "{entry}"
    );
    assert_eq!(entry["action"], json!(expected.action), "{entry}");
    assert_eq!(entry["entityType"], json!(expected.entity_type), "{entry}");
    assert_eq!(entry["entityId"], json!(expected.entity_id), "{entry}");
    assert_eq!(entry["projectId"], json!(expected.project_id), "{entry}");
    assert_eq!(entry["actorId"], json!(expected.actor.user_id), "{entry}");
    assert_eq!(
        entry["changes"], expected.changes,
        "{}: {entry}",
        expected.action
    );
    assert!(entry["at"].is_string(), "{entry}");
}

#[track_caller]
fn at(entry: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(entry["at"].as_str().expect("a time"), &Rfc3339).expect("RFC 3339")
}

fn change(from: impl Into<Value>, to: impl Into<Value>) -> Value {
    json!({"from": from.into(), "to": to.into()})
}

#[tokio::test]
async fn every_project_and_membership_change_is_recorded() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let carol = app.signup("carol@example.com").await;
    let dave = app.signup("dave@example.com").await;

    let (created, create_id) = act(
        &app,
        Method::POST,
        "/api/v1/projects",
        &owner,
        Some(json!({"name": "Audited", "description": "Why"})),
    )
    .await;
    created.assert_ok(201);
    let project = id_of(created.data());
    let path = format!("/api/v1/projects/{project}");
    let members = format!("{path}/members");

    let rename_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"name": "Renamed", "description": null})),
        200,
    )
    .await;
    let archive_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"archived": true})),
        200,
    )
    .await;
    let unarchive_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"archived": false, "name": "Back"})),
        200,
    )
    .await;
    let mut added = BTreeMap::new();
    for (who, role) in [(&bob, "viewer"), (&carol, "member"), (&dave, "member")] {
        let id = act_ok(
            &app,
            Method::POST,
            &members,
            &owner,
            Some(json!({"userId": who.user_id, "role": role})),
            201,
        )
        .await;
        added.insert(who.user_id.clone(), id);
    }
    let role_id = act_ok(
        &app,
        Method::PATCH,
        &format!("{members}/{}", bob.user_id),
        &owner,
        Some(json!({"role": "admin"})),
        200,
    )
    .await;
    let leave_id = act_ok(
        &app,
        Method::DELETE,
        &format!("{members}/{}", carol.user_id),
        &carol,
        None,
        204,
    )
    .await;
    let transfer_id = act_ok(
        &app,
        Method::POST,
        &format!("{path}/transfer"),
        &owner,
        Some(json!({"userId": bob.user_id})),
        200,
    )
    .await;
    let remove_id = act_ok(
        &app,
        Method::DELETE,
        &format!("{members}/{}", dave.user_id),
        &bob,
        None,
        204,
    )
    .await;

    let entries = app.activity(&bob.access, &project).await;
    let p = project.as_str();
    assert_entry(
        only(&entries, &create_id, "project.created"),
        Expected {
            action: "project.created",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({
                "name": change(Value::Null, "Audited"),
                "description": change(Value::Null, "Why"),
                "archived": change(Value::Null, false),
                "ownerId": change(Value::Null, owner.user_id.as_str()),
            }),
        },
    );
    assert_entry(
        only(&entries, &create_id, "member.added"),
        Expected {
            action: "member.added",
            entity_type: "member",
            entity_id: &owner.user_id,
            project_id: p,
            actor: &owner,
            changes: json!({"role": change(Value::Null, "owner")}),
        },
    );
    assert_eq!(made_by(&entries, &create_id).len(), 2);
    assert_entry(
        only(&entries, &rename_id, "project.updated"),
        Expected {
            action: "project.updated",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({
                "name": change("Audited", "Renamed"),
                "description": change("Why", Value::Null),
            }),
        },
    );
    assert_entry(
        only(&entries, &archive_id, "project.archived"),
        Expected {
            action: "project.archived",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({"archived": change(false, true)}),
        },
    );
    assert_eq!(made_by(&entries, &archive_id).len(), 1);
    // Unarchiving and renaming at once: two entries of one request.
    assert_entry(
        only(&entries, &unarchive_id, "project.unarchived"),
        Expected {
            action: "project.unarchived",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({"archived": change(true, false)}),
        },
    );
    assert_entry(
        only(&entries, &unarchive_id, "project.updated"),
        Expected {
            action: "project.updated",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({"name": change("Renamed", "Back")}),
        },
    );
    for (who, role) in [(&bob, "viewer"), (&carol, "member"), (&dave, "member")] {
        assert_entry(
            only(&entries, &added[&who.user_id], "member.added"),
            Expected {
                action: "member.added",
                entity_type: "member",
                entity_id: &who.user_id,
                project_id: p,
                actor: &owner,
                changes: json!({"role": change(Value::Null, role)}),
            },
        );
    }
    assert_entry(
        only(&entries, &role_id, "member.role_changed"),
        Expected {
            action: "member.role_changed",
            entity_type: "member",
            entity_id: &bob.user_id,
            project_id: p,
            actor: &owner,
            changes: json!({"role": change("viewer", "admin")}),
        },
    );
    assert_entry(
        only(&entries, &leave_id, "member.left"),
        Expected {
            action: "member.left",
            entity_type: "member",
            entity_id: &carol.user_id,
            project_id: p,
            actor: &carol,
            changes: json!({"role": change("member", Value::Null)}),
        },
    );
    // A transfer: the project's owner, and both members' roles.
    assert_entry(
        only(&entries, &transfer_id, "project.transferred"),
        Expected {
            action: "project.transferred",
            entity_type: "project",
            entity_id: p,
            project_id: p,
            actor: &owner,
            changes: json!({"ownerId": change(owner.user_id.as_str(), bob.user_id.as_str())}),
        },
    );
    let role_changes: BTreeMap<String, Value> = made_by(&entries, &transfer_id)
        .into_iter()
        .filter(|e| e["action"] == "member.role_changed")
        .map(|e| {
            assert_eq!(e["actorId"], json!(owner.user_id));
            assert_eq!(e["projectId"], json!(project));
            assert_eq!(e["entityType"], "member");
            (
                e["entityId"].as_str().expect("an id").to_owned(),
                e["changes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        role_changes,
        BTreeMap::from([
            (
                owner.user_id.clone(),
                json!({"role": change("owner", "admin")})
            ),
            (
                bob.user_id.clone(),
                json!({"role": change("admin", "owner")})
            ),
        ])
    );
    assert_eq!(made_by(&entries, &transfer_id).len(), 3);
    assert_entry(
        only(&entries, &remove_id, "member.removed"),
        Expected {
            action: "member.removed",
            entity_type: "member",
            entity_id: &dave.user_id,
            project_id: p,
            actor: &bob,
            changes: json!({"role": change("member", Value::Null)}),
        },
    );
    // Nothing else: 2 + 1 + 1 + 2 + 3 + 1 + 1 + 3 + 1.
    assert_eq!(entries.len(), 15, "{entries:#?}");
}

#[tokio::test]
async fn every_task_change_is_recorded_with_its_before_and_after() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let project = id_of(&app.create_project(&owner.access, "Tasks").await);
    let target = id_of(&app.create_project(&owner.access, "Target").await);
    app.add_member(&owner.access, &project, &bob.user_id, "member")
        .await;

    let (created, create_id) = act(
        &app,
        Method::POST,
        "/api/v1/tasks",
        &bob,
        Some(json!({
            "title": "Audited",
            "description": "All of it",
            "status": "in_progress",
            "priority": "high",
            "dueDate": "2030-01-02T03:04:05Z",
            "projectId": project,
            "assigneeId": bob.user_id,
        })),
    )
    .await;
    created.assert_ok(201);
    let task = id_of(created.data());
    let path = format!("/api/v1/tasks/{task}");

    let patch_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"title": "Patched", "status": "done"})),
        200,
    )
    .await;
    // A change to nothing records nothing.
    let noop_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"title": "Patched", "status": "done"})),
        200,
    )
    .await;
    // A PUT that leaves out the nullable fields clears them.
    let put_id = act_ok(
        &app,
        Method::PUT,
        &path,
        &owner,
        Some(json!({"title": "Put", "status": "done", "priority": "high"})),
        200,
    )
    .await;
    // A move is an update of projectId.
    let move_id = act_ok(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"projectId": target})),
        200,
    )
    .await;

    let history = app.history(&owner.access, &task).await;
    let t = task.as_str();
    assert_entry(
        only(&history, &create_id, "task.created"),
        Expected {
            action: "task.created",
            entity_type: "task",
            entity_id: t,
            project_id: &project,
            actor: &bob,
            changes: json!({
                "projectId": change(Value::Null, project.as_str()),
                "assigneeId": change(Value::Null, bob.user_id.as_str()),
                "title": change(Value::Null, "Audited"),
                "description": change(Value::Null, "All of it"),
                "status": change(Value::Null, "in_progress"),
                "priority": change(Value::Null, "high"),
                "dueDate": change(Value::Null, "2030-01-02T03:04:05Z"),
            }),
        },
    );
    assert_entry(
        only(&history, &patch_id, "task.updated"),
        Expected {
            action: "task.updated",
            entity_type: "task",
            entity_id: t,
            project_id: &project,
            actor: &bob,
            changes: json!({
                "title": change("Audited", "Patched"),
                "status": change("in_progress", "done"),
            }),
        },
    );
    assert!(made_by(&history, &noop_id).is_empty(), "{history:#?}");
    assert_entry(
        only(&history, &put_id, "task.updated"),
        Expected {
            action: "task.updated",
            entity_type: "task",
            entity_id: t,
            project_id: &project,
            actor: &owner,
            changes: json!({
                "title": change("Patched", "Put"),
                "description": change("All of it", Value::Null),
                "dueDate": change("2030-01-02T03:04:05Z", Value::Null),
                "assigneeId": change(bob.user_id.as_str(), Value::Null),
            }),
        },
    );
    let moved = only(&history, &move_id, "task.updated");
    assert_eq!(
        moved["changes"],
        json!({"projectId": change(project.as_str(), target.as_str())})
    );
    assert_eq!(moved["actorId"], json!(owner.user_id));
    // The move is in the activity of the project it went to.
    let target_activity = app.activity(&owner.access, &target).await;
    assert_eq!(only(&target_activity, &move_id, "task.updated"), moved);
    assert_eq!(history.len(), 4, "{history:#?}");

    // Deleting: every field to null; then the history is gone, the entries
    // stay in the activity.
    let delete_id = act_ok(&app, Method::DELETE, &path, &owner, None, 204).await;
    assert_entry(
        only(
            &app.activity(&owner.access, &target).await,
            &delete_id,
            "task.deleted",
        ),
        Expected {
            action: "task.deleted",
            entity_type: "task",
            entity_id: t,
            project_id: &target,
            actor: &owner,
            changes: json!({
                "projectId": change(target.as_str(), Value::Null),
                "title": change("Put", Value::Null),
                "status": change("done", Value::Null),
                "priority": change("high", Value::Null),
            }),
        },
    );
    assert_envelope_error(
        app.get(&format!("{path}/history"), &owner.access).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let kept = app.activity(&owner.access, &project).await;
    for id in [&create_id, &patch_id, &put_id] {
        assert_eq!(
            made_by(&kept, id).len(),
            1,
            "{id} stays in the activity: {kept:#?}"
        );
    }
}

#[tokio::test]
async fn an_entry_carries_the_servers_request_id_when_the_client_sends_none() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let created = assert_ok_envelope(
        app.post("/api/v1/tasks", &owner.access, &json!({"title": "t"}))
            .await,
        201,
    )
    .await;
    let history = app.history(&owner.access, &id_of(created.data())).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["requestId"], json!(created.request_id()));
    assert_eq!(history[0]["action"], "task.created");
    assert_eq!(
        history[0]["projectId"],
        json!(app.inbox_id(&owner.access).await)
    );
}

#[tokio::test]
async fn a_refused_change_leaves_no_entry() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let viewer = app.signup("viewer@example.com").await;
    let member = app.signup("member@example.com").await;
    let outsider = app.signup("outsider@example.com").await;
    let project = id_of(&app.create_project(&owner.access, "Guarded").await);
    let archived = id_of(&app.create_project(&owner.access, "Frozen").await);
    for p in [&project, &archived] {
        app.add_member(&owner.access, p, &viewer.user_id, "viewer")
            .await;
        app.add_member(&owner.access, p, &member.user_id, "member")
            .await;
    }
    let task = id_of(
        &app.create_task(
            &owner.access,
            &json!({"title": "Guarded", "projectId": project}),
        )
        .await,
    );
    let frozen_task = id_of(
        &app.create_task(
            &owner.access,
            &json!({"title": "Frozen", "projectId": archived}),
        )
        .await,
    );
    assert_ok_envelope(
        app.patch(
            &format!("/api/v1/projects/{archived}"),
            &owner.access,
            &json!({"archived": true}),
        )
        .await,
        200,
    )
    .await;
    let inbox = app.inbox_id(&owner.access).await;
    let mut before = BTreeMap::new();
    for p in [&project, &archived, &inbox] {
        before.insert(p.clone(), app.activity(&owner.access, p).await);
    }

    let p = format!("/api/v1/projects/{project}");
    let t = format!("/api/v1/tasks/{task}");
    let ft = format!("/api/v1/tasks/{frozen_task}");
    let refused: Vec<(Method, String, &Session, Option<Value>, u16)> = vec![
        // 403: a role too low.
        (
            Method::PATCH,
            t.clone(),
            &viewer,
            Some(json!({"title": "x"})),
            403,
        ),
        (Method::DELETE, t.clone(), &viewer, None, 403),
        (
            Method::POST,
            "/api/v1/tasks".into(),
            &viewer,
            Some(json!({"title": "x", "projectId": project})),
            403,
        ),
        (
            Method::PATCH,
            p.clone(),
            &member,
            Some(json!({"name": "x"})),
            403,
        ),
        (Method::DELETE, p.clone(), &member, None, 403),
        (
            Method::POST,
            format!("{p}/members"),
            &member,
            Some(json!({"userId": outsider.user_id, "role": "viewer"})),
            403,
        ),
        (
            Method::DELETE,
            format!("{p}/members/{}", viewer.user_id),
            &member,
            None,
            403,
        ),
        // 404: not a member.
        (
            Method::PATCH,
            t.clone(),
            &outsider,
            Some(json!({"title": "x"})),
            404,
        ),
        (Method::DELETE, t.clone(), &outsider, None, 404),
        (
            Method::PATCH,
            p.clone(),
            &outsider,
            Some(json!({"name": "x"})),
            404,
        ),
        (
            Method::POST,
            format!("{p}/transfer"),
            &outsider,
            Some(json!({"userId": outsider.user_id})),
            404,
        ),
        // 409: archived, the Inbox, the owner leaving.
        (
            Method::PATCH,
            ft.clone(),
            &member,
            Some(json!({"title": "x"})),
            409,
        ),
        (Method::DELETE, ft.clone(), &member, None, 409),
        (
            Method::POST,
            "/api/v1/tasks".into(),
            &member,
            Some(json!({"title": "x", "projectId": archived})),
            409,
        ),
        (
            Method::PATCH,
            t.clone(),
            &member,
            Some(json!({"projectId": archived})),
            409,
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{inbox}"),
            &owner,
            None,
            409,
        ),
        (
            Method::DELETE,
            format!("{p}/members/{}", owner.user_id),
            &owner,
            None,
            409,
        ),
        (
            Method::POST,
            format!("{p}/members"),
            &owner,
            Some(json!({"userId": viewer.user_id, "role": "admin"})),
            409,
        ),
        // 422: invalid fields.
        (
            Method::PATCH,
            t.clone(),
            &member,
            Some(json!({"title": ""})),
            422,
        ),
        (
            Method::PATCH,
            t.clone(),
            &member,
            Some(json!({"title": "ok", "assigneeId": outsider.user_id})),
            422,
        ),
        (
            Method::POST,
            "/api/v1/tasks".into(),
            &member,
            Some(json!({"title": "x", "projectId": project, "assigneeId": random_uuid()})),
            422,
        ),
        (
            Method::PATCH,
            p.clone(),
            &owner,
            Some(json!({"name": " "})),
            422,
        ),
        (
            Method::POST,
            format!("{p}/members"),
            &owner,
            Some(json!({"email": "nobody@example.com", "role": "viewer"})),
            422,
        ),
        (
            Method::POST,
            format!("{p}/transfer"),
            &owner,
            Some(json!({"userId": outsider.user_id})),
            422,
        ),
    ];
    let mut ids = BTreeSet::new();
    for (method, path, session, body, status) in refused {
        let (reply, id) = act(&app, method.clone(), &path, session, body.clone()).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path} {body:?}: {reply:?}"
        );
        ids.insert(id);
    }
    for (p, entries) in &before {
        let after = app.activity(&owner.access, p).await;
        assert_eq!(&after, entries, "project {p} has new entries");
        assert!(
            after
                .iter()
                .all(|e| !ids.contains(e["requestId"].as_str().unwrap_or_default()))
        );
    }
    let history = app.history(&owner.access, &task).await;
    assert_eq!(history.len(), 1, "{history:#?}");
}

/// Ten PATCHes of one task at once: each sees its own version, each leaves
/// exactly one entry, and the entries chain: each change starts from what
/// the one before it left.
#[tokio::test]
async fn concurrent_patches_give_consecutive_versions_and_one_entry_each() {
    const WRITERS: usize = 10;
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let task = app
        .create_task(&owner.access, &json!({"title": "Title start"}))
        .await;
    let task_id = id_of(&task);
    let path = format!("/api/v1/tasks/{task_id}");
    let done = app
        .concurrent_title_patches(&path, &owner.access, WRITERS)
        .await;
    let request_ids: BTreeSet<String> = done.iter().map(|(id, _)| id.clone()).collect();
    let mut versions: Vec<i64> = done
        .iter()
        .map(|(_, task)| task["version"].as_i64().expect("a version"))
        .collect();
    versions.sort_unstable();
    let expected: Vec<i64> = (2..=11).collect();
    assert_eq!(versions, expected, "consecutive versions");

    let history = app.history(&owner.access, &task_id).await;
    let updates: Vec<&Value> = history
        .iter()
        .filter(|e| e["action"] == "task.updated")
        .collect();
    assert_eq!(updates.len(), WRITERS, "{history:#?}");
    assert_eq!(history.len(), WRITERS + 1);
    let seen: BTreeSet<String> = updates
        .iter()
        .map(|e| e["requestId"].as_str().expect("a request id").to_owned())
        .collect();
    assert_eq!(seen, request_ids, "exactly one entry per request");
    // Follow the chain from the first title: every change is there once.
    let next: BTreeMap<&str, &str> = updates
        .iter()
        .map(|e| {
            let title = &e["changes"]["title"];
            (
                title["from"].as_str().expect("from"),
                title["to"].as_str().expect("to"),
            )
        })
        .collect();
    assert_eq!(next.len(), WRITERS, "no two changes started from one title");
    let mut title = "Title start";
    for _ in 0..WRITERS {
        title = next
            .get(title)
            .unwrap_or_else(|| panic!("the chain breaks at {title}: {next:?}"));
    }
    let last = assert_ok_envelope(app.get(&path, &owner.access).await, 200).await;
    assert_eq!(
        last.data()["title"],
        json!(title),
        "the last change is the task"
    );
    assert_eq!(last.data()["version"], 11);
}

/// The history, newest first, lists the changes in the reverse of the
/// order they were made, even when they were made at once; and a task's
/// `updatedAt` never goes back as its version goes up. (The time of a
/// change must be taken when the change is made, under the task's lock,
/// not when its request began.)
#[tokio::test]
async fn concurrent_changes_are_timed_in_the_order_they_were_made() {
    const WRITERS: usize = 10;
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let task_id = id_of(
        &app.create_task(&owner.access, &json!({"title": "Title start"}))
            .await,
    );
    let path = format!("/api/v1/tasks/{task_id}");
    let mut answered: Vec<(i64, OffsetDateTime)> = app
        .concurrent_title_patches(&path, &owner.access, WRITERS)
        .await
        .into_iter()
        .map(|(_, task)| {
            let updated = task["updatedAt"].as_str().expect("updatedAt");
            (
                task["version"].as_i64().expect("a version"),
                OffsetDateTime::parse(updated, &Rfc3339).expect("RFC 3339"),
            )
        })
        .collect();
    answered.sort();
    let history = app.history(&owner.access, &task_id).await;
    // Newest first: each entry's `from` is the `to` of the one after it.
    let chain_breaks: Vec<String> = history
        .windows(2)
        .filter(|pair| pair[0]["changes"]["title"]["from"] != pair[1]["changes"]["title"]["to"])
        .map(|pair| {
            format!(
                "{} at {} listed before {} at {}",
                pair[0]["changes"]["title"],
                pair[0]["at"],
                pair[1]["changes"]["title"],
                pair[1]["at"]
            )
        })
        .collect();
    let time_goes_back: Vec<String> = answered
        .windows(2)
        .filter(|pair| pair[1].1 < pair[0].1)
        .map(|pair| {
            format!(
                "version {} at {}, version {} at {}",
                pair[0].0, pair[0].1, pair[1].0, pair[1].1
            )
        })
        .collect();
    assert!(
        chain_breaks.is_empty() && time_goes_back.is_empty(),
        "the history is out of the order the changes were made in: {chain_breaks:#?}\n\
         updatedAt goes back as the version goes up: {time_goes_back:#?}"
    );
    assert_eq!(
        history[0]["changes"]["title"]["to"],
        assert_ok_envelope(app.get(&path, &owner.access).await, 200)
            .await
            .data()["title"]
    );
}

#[tokio::test]
async fn activity_and_history_are_newest_first_and_paginate() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let project = id_of(&app.create_project(&owner.access, "Paged").await);
    let task = id_of(
        &app.create_task(&owner.access, &json!({"title": "0", "projectId": project}))
            .await,
    );
    let path = format!("/api/v1/tasks/{task}");
    let mut request_ids = Vec::new();
    for i in 1..=6 {
        let id = act_ok(
            &app,
            Method::PATCH,
            &path,
            &owner,
            Some(json!({"title": i.to_string()})),
            200,
        )
        .await;
        request_ids.push(id);
    }
    let history = app.history(&owner.access, &task).await;
    assert_eq!(history.len(), 7);
    // Newest first: the last change leads, the creation closes.
    let titles: Vec<&str> = history
        .iter()
        .map(|e| e["changes"]["title"]["to"].as_str().expect("a title"))
        .collect();
    assert_eq!(titles, ["6", "5", "4", "3", "2", "1", "0"]);
    let ats: Vec<OffsetDateTime> = history.iter().map(at).collect();
    for pair in ats.windows(2) {
        assert!(pair[0] >= pair[1], "newest first: {ats:?}");
    }
    for limit in [1, 2, 3] {
        assert_eq!(
            app.pages(&owner.access, &format!("{path}/history"), limit)
                .await,
            history,
            "history, limit {limit}"
        );
    }
    let activity = app.activity(&owner.access, &project).await;
    // project.created, member.added, task.created and six updates.
    assert_eq!(activity.len(), 9, "{activity:#?}");
    assert_eq!(&activity[..7], &history[..]);
    let first_two: BTreeSet<&str> = activity[7..]
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect();
    assert_eq!(
        first_two,
        BTreeSet::from(["project.created", "member.added"])
    );
    for limit in [1, 4] {
        assert_eq!(
            app.pages(
                &owner.access,
                &format!("/api/v1/projects/{project}/activity"),
                limit,
            )
            .await,
            activity,
            "activity, limit {limit}"
        );
    }
    let first = assert_ok_envelope(
        app.get(&format!("{path}/history?limit=2"), &owner.access)
            .await,
        200,
    )
    .await;
    assert_eq!(first.body["meta"]["pagination"]["hasMore"], true);
    assert_eq!(first.body["meta"]["pagination"]["limit"], 2);
    for base in [
        format!("{path}/history"),
        format!("/api/v1/projects/{project}/activity"),
    ] {
        for (query, parameter) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("cursor=bogus", "cursor"),
        ] {
            let reply = assert_envelope_error(
                app.get(&format!("{base}?{query}"), &owner.access).await,
                400,
                "MALFORMED_REQUEST",
            )
            .await;
            reply.assert_detail(parameter);
        }
    }
}

#[tokio::test]
async fn removing_a_member_records_the_unassignments_with_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let project = id_of(&app.create_project(&owner.access, "Unassign").await);
    app.add_member(&owner.access, &project, &bob.user_id, "member")
        .await;
    let task = id_of(
        &app.create_task(
            &owner.access,
            &json!({"title": "Bob's", "projectId": project, "assigneeId": bob.user_id}),
        )
        .await,
    );
    let id = act_ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/projects/{project}/members/{}", bob.user_id),
        &owner,
        None,
        204,
    )
    .await;
    let activity = app.activity(&owner.access, &project).await;
    assert_eq!(made_by(&activity, &id).len(), 2, "{activity:#?}");
    only(&activity, &id, "member.removed");
    assert_entry(
        only(&activity, &id, "task.updated"),
        Expected {
            action: "task.updated",
            entity_type: "task",
            entity_id: &task,
            project_id: &project,
            actor: &owner,
            changes: json!({"assigneeId": change(bob.user_id.as_str(), Value::Null)}),
        },
    );
}
