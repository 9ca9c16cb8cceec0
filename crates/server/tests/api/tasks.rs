//! The task rules as the API enforces them, and concurrent changes.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_envelope_error, assert_ok_envelope, sorted_keys};

#[tokio::test]
async fn a_new_task_gets_the_defaults() {
    let app = TestApp::spawn().await;
    let session = app.signup("defaults@example.com").await;
    let task = app
        .create_task(&session.access, &json!({"title": "  Just a title  "}))
        .await;
    assert_eq!(task["title"], "Just a title", "the title is trimmed");
    assert_eq!(task["description"], Value::Null);
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["dueDate"], Value::Null);
    assert_eq!(task["completedAt"], Value::Null);
    assert_eq!(task["version"], 1);
    // A single user works in their Inbox; `ownerId` stays as an alias of
    // `createdBy`.
    assert_eq!(
        task["projectId"],
        json!(app.inbox_id(&session.access).await)
    );
    assert_eq!(task["assigneeId"], Value::Null);
    assert_eq!(task["createdBy"], json!(session.user_id));
    assert_eq!(task["ownerId"], json!(session.user_id));
    assert_eq!(
        sorted_keys(&task),
        [
            "assigneeId",
            "completedAt",
            "createdAt",
            "createdBy",
            "description",
            "dueDate",
            "id",
            "ownerId",
            "priority",
            "projectId",
            "status",
            "title",
            "updatedAt",
            "version"
        ]
    );
}

#[tokio::test]
async fn done_sets_completed_at_and_leaving_done_clears_it() {
    let app = TestApp::spawn().await;
    let session = app.signup("done@example.com").await;
    let token = &session.access;

    let born_done = app
        .create_task(token, &json!({"title": "Done already", "status": "done"}))
        .await;
    assert!(born_done["completedAt"].is_string(), "{born_done}");
    assert_eq!(born_done["completedAt"], born_done["createdAt"]);

    let task = app.create_task(token, &json!({"title": "Do it"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let patch = |body: Value| {
        let path = path.clone();
        let app = &app;
        async move {
            assert_ok_envelope(app.patch(&path, token, &body).await, 200)
                .await
                .data()
                .clone()
        }
    };

    let started = patch(json!({"status": "in_progress"})).await;
    assert_eq!(started["completedAt"], Value::Null);

    let done = patch(json!({"status": "done"})).await;
    let completed_at = done["completedAt"].clone();
    assert!(completed_at.is_string(), "{done}");
    assert_eq!(completed_at, done["updatedAt"]);

    // Other changes while done keep the completion time.
    let renamed = patch(json!({"title": "Did it"})).await;
    assert_eq!(renamed["completedAt"], completed_at);
    assert_eq!(renamed["status"], "done");

    // Saying `done` again changes nothing, not even the version.
    let same = patch(json!({"status": "done"})).await;
    assert_eq!(same, renamed);

    let reopened = patch(json!({"status": "todo"})).await;
    assert_eq!(reopened["completedAt"], Value::Null);
    assert_eq!(reopened["version"], 5);

    // A replacement into `done` sets it too, one out of `done` clears it.
    let replaced = assert_ok_envelope(
        app.put(
            &path,
            token,
            &json!({"title": "Again", "status": "done", "priority": "low"}),
        )
        .await,
        200,
    )
    .await;
    assert!(replaced.data()["completedAt"].is_string());
    let replaced = assert_ok_envelope(
        app.put(
            &path,
            token,
            &json!({"title": "Again", "status": "in_progress", "priority": "low"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replaced.data()["completedAt"], Value::Null);
}

#[tokio::test]
async fn an_empty_patch_changes_nothing() {
    let app = TestApp::spawn().await;
    let session = app.signup("noop@example.com").await;
    let task = app
        .create_task(
            &session.access,
            &json!({"title": "Stay", "description": "as is"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let reply = assert_ok_envelope(app.patch(&path, &session.access, &json!({})).await, 200).await;
    assert_eq!(reply.data(), &task);
    // `description: null` clears the description.
    let reply = assert_ok_envelope(
        app.patch(&path, &session.access, &json!({"description": null}))
            .await,
        200,
    )
    .await;
    assert_eq!(reply.data()["description"], Value::Null);
    assert_eq!(reply.data()["version"], 2);
    // A replacement that omits the nullable fields clears them.
    let with_everything = assert_ok_envelope(
        app.patch(
            &path,
            &session.access,
            &json!({"description": "back", "dueDate": "2030-01-01T00:00:00Z"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(with_everything.data()["dueDate"], "2030-01-01T00:00:00Z");
    let replaced = assert_ok_envelope(
        app.put(
            &path,
            &session.access,
            &json!({"title": "Stay", "status": "todo", "priority": "medium"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replaced.data()["description"], Value::Null);
    assert_eq!(replaced.data()["dueDate"], Value::Null);
}

/// Every backend renders a due date alike: the instant given, in UTC, with
/// `Z` (not the offset it was given with).
#[tokio::test]
async fn due_dates_keep_their_instant_and_read_back_in_utc() {
    let app = TestApp::spawn().await;
    let session = app.signup("due@example.com").await;
    let token = &session.access;
    let task = app
        .create_task(
            token,
            &json!({"title": "Offset", "dueDate": "2026-12-01T17:00:00+14:00"}),
        )
        .await;
    assert_eq!(task["dueDate"], "2026-12-01T03:00:00Z");
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let read = assert_ok_envelope(app.get(&path, token).await, 200).await;
    assert_eq!(read.data()["dueDate"], "2026-12-01T03:00:00Z");
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", token).await, 200).await;
    assert_eq!(listed.data()[0]["dueDate"], "2026-12-01T03:00:00Z");

    for (given, expected) in [
        (
            "2030-06-01T12:00:00.123456+02:00",
            "2030-06-01T10:00:00.123456Z",
        ),
        ("2030-06-01T00:30:00-05:30", "2030-06-01T06:00:00Z"),
    ] {
        let patched = assert_ok_envelope(
            app.patch(&path, token, &json!({"dueDate": given})).await,
            200,
        )
        .await;
        assert_eq!(patched.data()["dueDate"], expected, "PATCH {given}");
        let replaced = assert_ok_envelope(
            app.put(
                &path,
                token,
                &json!({"title": "Offset", "status": "todo", "priority": "low", "dueDate": given}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(replaced.data()["dueDate"], expected, "PUT {given}");
    }
    // An instant RFC 3339 cannot write in UTC is refused, not a 500.
    let reply = assert_envelope_error(
        app.patch(
            &path,
            token,
            &json!({"dueDate": "9999-12-31T23:00:00-02:00"}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("dueDate");
}

#[tokio::test]
async fn invalid_task_fields_are_422_with_the_field_named() {
    let app = TestApp::spawn().await;
    let session = app.signup("rules@example.com").await;
    let token = &session.access;
    let task = app.create_task(token, &json!({"title": "Valid"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));

    let long_title = "t".repeat(201);
    let long_description = "d".repeat(10_001);
    let invalid_creations: Vec<(Value, &str)> = vec![
        (json!({"title": ""}), "title"),
        (json!({"title": "   \t "}), "title"),
        (json!({"title": long_title}), "title"),
        (
            json!({"title": "ok", "description": long_description}),
            "description",
        ),
        (json!({"title": "ok", "colour": "red"}), "colour"),
        (json!({"title": "ok", "status": "finished"}), "status"),
        (json!({"title": "ok", "status": "DONE"}), "status"),
        (json!({"title": "ok", "priority": "critical"}), "priority"),
        // Well-formed JSON of the wrong type for an enum is a shape error too.
        (json!({"title": "ok", "status": 1}), "status"),
        (json!({"title": "ok", "priority": true}), "priority"),
        (json!({"title": "ok", "priority": ["low"]}), "priority"),
        (json!({"title": "ok", "dueDate": 20300101}), "dueDate"),
        (json!({"title": "ok", "dueDate": "tomorrow"}), "dueDate"),
        (json!({"title": "ok", "dueDate": "2030-01-01"}), "dueDate"),
        (json!({"title": 5}), "title"),
        (json!({"title": null}), "title"),
        (json!({"title": "ok", "version": 7}), "version"),
        (
            json!({"title": "ok", "ownerId": session.user_id}),
            "ownerId",
        ),
        (
            json!({"title": "ok", "createdBy": session.user_id}),
            "createdBy",
        ),
        (json!({"title": "ok", "projectId": "inbox"}), "projectId"),
        (json!({"title": "ok", "assigneeId": 7}), "assigneeId"),
        // An assignee must be a member of the task's project.
        (
            json!({"title": "ok", "assigneeId": crate::helpers::random_uuid()}),
            "assigneeId",
        ),
    ];
    for (body, field) in &invalid_creations {
        let reply = assert_envelope_error(
            app.post("/api/v1/tasks", token, body).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        assert!(
            reply.details().contains_key(*field),
            "POST {body}: expected details.{field}: {reply:?}"
        );
    }
    // A missing title.
    assert_envelope_error(
        app.post("/api/v1/tasks", token, &json!({"priority": "low"}))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    let invalid_patches: Vec<(Value, &str)> = vec![
        (json!({"title": null}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"description": "d".repeat(10_001)}), "description"),
        (json!({"status": null}), "status"),
        (json!({"status": "blocked"}), "status"),
        (json!({"priority": null}), "priority"),
        (json!({"priority": 3}), "priority"),
        (json!({"dueDate": "next week"}), "dueDate"),
        (json!({"id": "00000000-0000-0000-0000-000000000000"}), "id"),
        (json!({"completedAt": null}), "completedAt"),
        (json!({"createdBy": session.user_id}), "createdBy"),
        (json!({"projectId": "elsewhere"}), "projectId"),
        (json!({"projectId": null}), "projectId"),
        (
            json!({"assigneeId": crate::helpers::random_uuid()}),
            "assigneeId",
        ),
    ];
    for (body, field) in &invalid_patches {
        let reply = assert_envelope_error(
            app.patch(&path, token, body).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        assert!(
            reply.details().contains_key(*field),
            "PATCH {body}: expected details.{field}: {reply:?}"
        );
    }

    let invalid_replacements: Vec<(Value, &str)> = vec![
        (
            json!({"title": "", "status": "todo", "priority": "low"}),
            "title",
        ),
        (
            json!({"title": "ok", "status": "nope", "priority": "low"}),
            "status",
        ),
        (
            json!({"title": "ok", "status": "todo", "priority": "low", "dueDate": "x"}),
            "dueDate",
        ),
        (
            json!({"title": "ok", "status": "todo", "priority": "low", "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in &invalid_replacements {
        let reply =
            assert_envelope_error(app.put(&path, token, body).await, 422, "VALIDATION_FAILED")
                .await;
        assert!(
            reply.details().contains_key(*field),
            "PUT {body}: expected details.{field}: {reply:?}"
        );
    }
    // A replacement must give status and priority.
    assert_envelope_error(
        app.put(&path, token, &json!({"title": "only a title"}))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    // Nothing changed.
    let after = assert_ok_envelope(app.get(&path, token).await, 200).await;
    assert_eq!(after.data(), &task);
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", token).await, 200).await;
    assert_eq!(listed.data(), &json!([task]));
}

#[tokio::test]
async fn the_limits_count_characters_not_bytes() {
    let app = TestApp::spawn().await;
    let session = app.signup("limits@example.com").await;
    let token = &session.access;
    // 200 four-byte characters is a valid title; 10 000 a valid description
    // (40 000 bytes, under the 64 KiB body limit).
    let title = "𝄞".repeat(200);
    let description = "𝄞".repeat(10_000);
    let task = app
        .create_task(token, &json!({"title": title, "description": description}))
        .await;
    assert_eq!(task["title"], json!(title));
    assert_eq!(task["description"], json!(description));

    let reply = assert_envelope_error(
        app.post(
            "/api/v1/tasks",
            token,
            &json!({"title": "ok", "description": "𝄞".repeat(10_001)}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("description");
    let reply = assert_envelope_error(
        app.post("/api/v1/tasks", token, &json!({"title": "é".repeat(201)}))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("title");
}

#[tokio::test]
async fn concurrent_patches_each_bump_the_version_once() {
    const WRITERS: usize = 20;
    let app = TestApp::spawn().await;
    let session = app.signup("concurrent@example.com").await;
    let task = app
        .create_task(&session.access, &json!({"title": "Contended"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));

    let mut versions: Vec<i64> = app
        .concurrent_title_patches(&path, &session.access, WRITERS)
        .await
        .into_iter()
        .map(|(_, task)| task["version"].as_i64().expect("a version"))
        .collect();
    versions.sort_unstable();
    let expected: Vec<i64> = (2..=21).collect();
    assert_eq!(versions, expected, "every change saw its own version");

    let after = assert_ok_envelope(app.get(&path, &session.access).await, 200).await;
    assert_eq!(after.data()["version"], 21);
    let title = after.data()["title"].as_str().expect("a title");
    assert!(title.starts_with("Title "), "{title}");
}
