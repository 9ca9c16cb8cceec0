//! Text fields: control characters are 422 with the field named (never a
//! 500, never stored), on every backend; accepted text reads back exactly.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_envelope_error, assert_ok_envelope};

/// NUL (PostgreSQL cannot store it in `text`), escape, DEL, a C1 control.
const CONTROLS: [&str; 4] = ["\u{0}", "\u{1b}", "\u{7f}", "\u{85}"];

async fn assert_rejected(reply: reqwest::Response, field: &str, what: &str) {
    let reply = assert_envelope_error(reply, 422, "VALIDATION_FAILED").await;
    let details = reply.details();
    let messages = details
        .get(field)
        .unwrap_or_else(|| panic!("{what}: expected details.{field}: {reply:?}"));
    assert!(
        messages.iter().any(|m| m.contains("control characters")),
        "{what}: {messages:?}"
    );
}

#[tokio::test]
async fn control_characters_in_task_text_are_422_with_the_field_named() {
    let app = TestApp::spawn().await;
    let session = app.signup("controls@example.com").await;
    let token = &session.access;
    let task = app.create_task(token, &json!({"title": "Valid"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));

    let mut controls: Vec<&str> = CONTROLS.to_vec();
    // In a title, tabs and line breaks are controls too.
    let title_controls = ["\t", "\n", "\r"];
    for control in controls.iter().chain(&title_controls) {
        let title = format!("a{control}b");
        let what = format!("title with {control:?}");
        assert_rejected(
            app.post("/api/v1/tasks", token, &json!({"title": title}))
                .await,
            "title",
            &format!("POST {what}"),
        )
        .await;
        assert_rejected(
            app.put(
                &path,
                token,
                &json!({"title": title, "status": "todo", "priority": "low"}),
            )
            .await,
            "title",
            &format!("PUT {what}"),
        )
        .await;
        assert_rejected(
            app.patch(&path, token, &json!({"title": title})).await,
            "title",
            &format!("PATCH {what}"),
        )
        .await;
    }
    // A vertical tab is no line break.
    controls.push("\u{b}");
    for control in &controls {
        let description = format!("first line{control}second");
        let what = format!("description with {control:?}");
        assert_rejected(
            app.post(
                "/api/v1/tasks",
                token,
                &json!({"title": "ok", "description": description}),
            )
            .await,
            "description",
            &format!("POST {what}"),
        )
        .await;
        assert_rejected(
            app.put(
                &path,
                token,
                &json!({"title": "ok", "description": description, "status": "todo", "priority": "low"}),
            )
            .await,
            "description",
            &format!("PUT {what}"),
        )
        .await;
        assert_rejected(
            app.patch(&path, token, &json!({"description": description}))
                .await,
            "description",
            &format!("PATCH {what}"),
        )
        .await;
    }

    // Nothing was stored or changed.
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", token).await, 200).await;
    assert_eq!(listed.data(), &json!([task]));
}

#[tokio::test]
async fn control_characters_in_a_name_are_422_with_the_field_named() {
    let app = TestApp::spawn().await;
    for (i, control) in CONTROLS.iter().chain(&["\t", "\n"]).enumerate() {
        let email = format!("name{i}@example.com");
        assert_rejected(
            app.register(&email, PASSWORD, &format!("Ada{control}Lovelace"))
                .await,
            "name",
            &format!("name with {control:?}"),
        )
        .await;
        assert_envelope_error(
            app.login(&email, PASSWORD).await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    // In the e-mail address and the password too.
    assert_rejected(
        app.register("a\u{0}b@example.com", PASSWORD, "Ada").await,
        "email",
        "email with NUL",
    )
    .await;
    assert_rejected(
        app.register("pw@example.com", "password\u{0}", "Ada").await,
        "password",
        "password with NUL",
    )
    .await;
}

#[tokio::test]
async fn a_login_with_control_characters_is_just_wrong_credentials() {
    let app = TestApp::spawn().await;
    app.signup("login-controls@example.com").await;
    for (email, password) in [
        ("login-controls@example.com", "correct\u{0}horse"),
        ("login-controls\u{0}@example.com", PASSWORD),
    ] {
        assert_envelope_error(app.login(email, password).await, 401, "INVALID_CREDENTIALS").await;
    }
}

#[tokio::test]
async fn accepted_text_reads_back_exactly() {
    let app = TestApp::spawn().await;
    let name = format!("Zoë e\u{301} 🦀{}", "名".repeat(92));
    assert_eq!(name.chars().count(), 100);
    let registered = assert_ok_envelope(
        app.register("exact-text@example.com", PASSWORD, &name)
            .await,
        201,
    )
    .await;
    assert_eq!(registered.data()["name"], json!(name));
    let session = app.login_ok("exact-text@example.com", PASSWORD).await;
    let token = &session.access;
    let title = "𝄞".repeat(200);
    let description = format!("line 1\r\n\tline 2\n{}", "🦀".repeat(9_984));
    assert_eq!(description.chars().count(), 10_000);
    let task = app
        .create_task(token, &json!({"title": title, "description": description}))
        .await;
    assert_eq!(task["title"], json!(title));
    assert_eq!(task["description"], json!(description));
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("an id"));
    let read = assert_ok_envelope(app.get(&path, token).await, 200).await;
    assert_eq!(read.data(), &task);
    let me = assert_ok_envelope(app.get("/api/v1/users/me", token).await, 200).await;
    assert_eq!(me.data()["name"], Value::String(name));
}
