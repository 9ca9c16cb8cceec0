//! A user sees and changes only their own tasks; someone else's task looks
//! exactly like one that does not exist.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_envelope_error, assert_ok_envelope, random_uuid};

/// The parts of an error reply that must not tell "not yours" from "not
/// there": status, code, message and details (not the request id).
fn comparable(reply: &Reply) -> (u16, Value) {
    (reply.status.as_u16(), reply.error().clone())
}

#[tokio::test]
async fn another_users_task_is_not_found_for_every_method() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let task = app
        .create_task(
            &alice.access,
            &json!({"title": "Alice's", "description": "private", "dueDate": "2030-01-01T00:00:00Z"}),
        )
        .await;
    let bobs_own = app
        .create_task(&bob.access, &json!({"title": "Bob's"}))
        .await;
    let theirs = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let missing = format!("/api/v1/tasks/{}", random_uuid());

    let replace = json!({"title": "Bob was here", "status": "done", "priority": "urgent"});
    let patch = json!({"title": "Bob was here"});
    for path in [&theirs, &missing] {
        let get = assert_envelope_error(app.get(path, &bob.access).await, 404, "NOT_FOUND").await;
        let put =
            assert_envelope_error(app.put(path, &bob.access, &replace).await, 404, "NOT_FOUND")
                .await;
        let patched =
            assert_envelope_error(app.patch(path, &bob.access, &patch).await, 404, "NOT_FOUND")
                .await;
        let deleted =
            assert_envelope_error(app.delete(path, &bob.access).await, 404, "NOT_FOUND").await;
        for reply in [&get, &put, &patched, &deleted] {
            assert!(
                !reply.text.contains("Alice") && !reply.text.contains("private"),
                "{reply:?}"
            );
            assert_eq!(comparable(reply), comparable(&get));
        }
    }
    // Same answers for Alice's task as for a random id.
    let for_theirs =
        assert_envelope_error(app.get(&theirs, &bob.access).await, 404, "NOT_FOUND").await;
    let for_missing =
        assert_envelope_error(app.get(&missing, &bob.access).await, 404, "NOT_FOUND").await;
    assert_eq!(comparable(&for_theirs), comparable(&for_missing));

    // Bob's list has only Bob's task, whatever the filters.
    for query in [
        "",
        "?status=todo",
        "?sort=priority&limit=100",
        "?dueBefore=2031-01-01T00:00:00Z",
    ] {
        let listed = assert_ok_envelope(
            app.get(&format!("/api/v1/tasks{query}"), &bob.access).await,
            200,
        )
        .await;
        let expected = if query.contains("dueBefore") {
            json!([])
        } else {
            json!([bobs_own.clone()])
        };
        assert_eq!(listed.data(), &expected, "{query}");
    }

    // Alice's task is untouched.
    let after = assert_ok_envelope(app.get(&theirs, &alice.access).await, 200).await;
    assert_eq!(after.data(), &task);
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", &alice.access).await, 200).await;
    assert_eq!(listed.data(), &json!([task]));
    // And Alice cannot reach Bob's.
    let bobs_path = format!("/api/v1/tasks/{}", bobs_own["id"].as_str().expect("an id"));
    assert_envelope_error(app.get(&bobs_path, &alice.access).await, 404, "NOT_FOUND").await;
}
