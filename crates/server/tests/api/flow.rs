//! A user's whole journey through the API.

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Reply, TestApp, assert_envelope_error, assert_no_content, assert_ok_envelope,
};

#[tokio::test]
async fn register_login_task_crud_refresh_logout() {
    let app = TestApp::spawn().await;

    // Register and log in.
    let registered = assert_ok_envelope(
        app.register("flow@example.com", PASSWORD, "Flow User")
            .await,
        201,
    )
    .await;
    let user_id = registered.data()["id"].as_str().expect("an id").to_owned();
    let session = app.login_ok("flow@example.com", PASSWORD).await;
    assert_eq!(session.user_id, user_id);
    let token = session.access.clone();

    let me = assert_ok_envelope(app.get("/api/v1/users/me", &token).await, 200).await;
    for field in ["id", "email", "name", "role", "createdAt"] {
        assert_eq!(me.data()[field], registered.data()[field], "{field}");
    }
    let inbox_id = me.data()["inboxId"].clone();
    assert!(inbox_id.is_string(), "the caller's Inbox");
    assert_eq!(me.data()["role"], "user");

    // Create: 201 with a Location that serves the same task.
    let response = app
        .post(
            "/api/v1/tasks",
            &token,
            &json!({
                "title": "Write the report",
                "description": "Quarterly numbers",
                "priority": "high",
                "dueDate": "2030-01-02T03:04:05Z",
            }),
        )
        .await;
    let created = assert_ok_envelope(response, 201).await;
    let task = created.data().clone();
    let id = task["id"].as_str().expect("an id").to_owned();
    let location = created.header("location").expect("a Location header");
    assert_eq!(location, format!("/api/v1/tasks/{id}"));
    assert_eq!(task["title"], "Write the report");
    assert_eq!(task["description"], "Quarterly numbers");
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["dueDate"], "2030-01-02T03:04:05Z");
    assert_eq!(
        task["projectId"], inbox_id,
        "a task without projectId is in the Inbox"
    );
    assert_eq!(task["createdBy"], json!(user_id));
    assert_eq!(task["ownerId"], json!(user_id));
    assert_eq!(task["assigneeId"], Value::Null);
    assert_eq!(task["version"], 1);
    assert_eq!(task["completedAt"], Value::Null);
    assert_eq!(task["createdAt"], task["updatedAt"]);

    // Get (through the Location header).
    let fetched = assert_ok_envelope(app.get(location, &token).await, 200).await;
    assert_eq!(fetched.data(), &task);

    // List.
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", &token).await, 200).await;
    assert_eq!(listed.data(), &json!([task.clone()]));
    assert_eq!(
        listed.body["meta"]["pagination"],
        json!({"limit": 20, "nextCursor": null, "hasMore": false})
    );

    // Replace every editable field.
    let path = format!("/api/v1/tasks/{id}");
    let replaced = assert_ok_envelope(
        app.put(
            &path,
            &token,
            &json!({
                "title": "Write the annual report",
                "description": "All the numbers",
                "status": "in_progress",
                "priority": "low",
                "dueDate": "2031-05-06T07:08:09Z",
            }),
        )
        .await,
        200,
    )
    .await;
    let replaced = replaced.data().clone();
    assert_eq!(replaced["id"], json!(id));
    assert_eq!(replaced["title"], "Write the annual report");
    assert_eq!(replaced["description"], "All the numbers");
    assert_eq!(replaced["status"], "in_progress");
    assert_eq!(replaced["priority"], "low");
    assert_eq!(replaced["dueDate"], "2031-05-06T07:08:09Z");
    assert_eq!(replaced["completedAt"], Value::Null);
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["createdAt"], task["createdAt"]);
    assert_ne!(replaced["updatedAt"], task["updatedAt"]);

    // Patch: only the fields given change; `dueDate: null` clears it.
    let patched = assert_ok_envelope(
        app.patch(
            &path,
            &token,
            &json!({"priority": "urgent", "dueDate": null}),
        )
        .await,
        200,
    )
    .await;
    let patched = patched.data().clone();
    assert_eq!(patched["priority"], "urgent");
    assert_eq!(patched["dueDate"], Value::Null);
    assert_eq!(patched["version"], 3);
    for unchanged in [
        "id",
        "title",
        "description",
        "status",
        "projectId",
        "assigneeId",
        "createdBy",
        "ownerId",
        "createdAt",
    ] {
        assert_eq!(patched[unchanged], replaced[unchanged], "{unchanged}");
    }
    let fetched = assert_ok_envelope(app.get(&path, &token).await, 200).await;
    assert_eq!(fetched.data(), &patched);

    // Delete, then it is gone.
    assert_no_content(app.delete(&path, &token).await).await;
    assert_envelope_error(app.delete(&path, &token).await, 404, "NOT_FOUND").await;
    assert_envelope_error(app.get(&path, &token).await, 404, "NOT_FOUND").await;
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", &token).await, 200).await;
    assert_eq!(listed.data(), &json!([]));

    // Refresh: a new pair; the old refresh token stops working.
    let refreshed = assert_ok_envelope(app.refresh(&session.refresh).await, 200).await;
    let new_access = token_of(&refreshed, "accessToken");
    let new_refresh = token_of(&refreshed, "refreshToken");
    assert_eq!(refreshed.data()["tokenType"], "Bearer");
    assert_eq!(refreshed.data()["user"]["id"], json!(user_id));
    assert_ne!(new_refresh, session.refresh);
    assert_envelope_error(app.refresh(&session.refresh).await, 401, "UNAUTHENTICATED").await;
    assert_ok_envelope(app.get("/api/v1/users/me", &new_access).await, 200).await;
    let again = assert_ok_envelope(app.refresh(&new_refresh).await, 200).await;
    let latest_access = token_of(&again, "accessToken");
    let latest_refresh = token_of(&again, "refreshToken");
    assert_envelope_error(app.refresh(&new_refresh).await, 401, "UNAUTHENTICATED").await;

    // Logout ends the session at once: its access and refresh tokens die.
    assert_no_content(
        crate::helpers::send(app.authed(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            &latest_access,
        ))
        .await,
    )
    .await;
    assert_envelope_error(
        app.get("/api/v1/users/me", &latest_access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_envelope_error(
        app.get("/api/v1/tasks", &latest_access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_envelope_error(app.refresh(&latest_refresh).await, 401, "UNAUTHENTICATED").await;
    // Every access token of that session, not only the latest.
    assert_envelope_error(
        app.get("/api/v1/users/me", &token).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;

    // A new login opens a new session.
    let fresh = app.login_ok("flow@example.com", PASSWORD).await;
    assert_ok_envelope(app.get("/api/v1/users/me", &fresh.access).await, 200).await;
}

fn token_of(reply: &Reply, field: &str) -> String {
    reply.data()[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {reply:?}"))
        .to_owned()
}
