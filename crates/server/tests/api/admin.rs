//! System administrators: made by `ADMIN_EMAILS`, they list users and
//! disable, re-enable, promote or demote them, and see no project content
//! without membership.

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Reply, Session, TestApp, assert_envelope_error, assert_ok_envelope, id_of,
    random_uuid, sorted_keys,
};

/// A server whose `ADMIN_EMAILS` names root (written as an operator might).
async fn spawn() -> TestApp {
    TestApp::spawn_with(&[("ADMIN_EMAILS", " Root@Example.com ,ops@example.org")]).await
}

fn user_path(id: &str) -> String {
    format!("/api/v1/admin/users/{id}")
}

async fn administer(app: &TestApp, admin: &Session, id: &str, body: Value) -> Reply {
    Reply::read(app.patch(&user_path(id), &admin.access, &body).await).await
}

async fn list(app: &TestApp, admin: &Session, query: &str) -> Vec<Value> {
    let path = if query.is_empty() {
        "/api/v1/admin/users".to_owned()
    } else {
        format!("/api/v1/admin/users?{query}")
    };
    app.pages(&admin.access, &path, 100).await
}

fn emails(users: &[Value]) -> Vec<&str> {
    users
        .iter()
        .map(|u| u["email"].as_str().expect("an email"))
        .collect()
}

#[tokio::test]
async fn admin_emails_make_system_admins_and_only_they_administer() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    let alice = app.signup("alice@example.com").await;
    assert_eq!(app.me(&root.access).await["role"], "admin");
    assert_eq!(app.me(&alice.access).await["role"], "user");

    assert_envelope_error(
        app.get("/api/v1/admin/users", &alice.access).await,
        403,
        "FORBIDDEN",
    )
    .await;
    for body in [json!({"disabled": true}), json!({"role": "admin"})] {
        for target in [&root.user_id, &alice.user_id] {
            let reply = administer(&app, &alice, target, body.clone()).await;
            reply.assert_error(403, "FORBIDDEN");
        }
    }
    assert_eq!(app.me(&alice.access).await["role"], "user");
    app.login_ok("root@example.com", PASSWORD).await;
    // Without a token: 401, as everywhere.
    let reply = Reply::read(app.get_public("/api/v1/admin/users").await).await;
    reply.assert_error(401, "UNAUTHENTICATED");

    let users = list(&app, &root, "").await;
    assert_eq!(emails(&users), ["root@example.com", "alice@example.com"]);
    assert_eq!(
        sorted_keys(&users[1]),
        ["createdAt", "disabled", "email", "id", "name", "role"]
    );
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[1]["role"], "user");
    assert_eq!(users[1]["disabled"], false);
    assert_eq!(users[1]["id"], json!(alice.user_id));
}

#[tokio::test]
async fn admins_search_users_by_email_or_name_and_page_through_them() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    for (email, name) in [
        ("ada@example.com", "Ada Lovelace"),
        ("bob@work.org", "Bob Builder"),
        ("carol@example.com", "Carol"),
        ("dave@elsewhere.net", "Dave ADAMS"),
        ("erin@work.org", "Erin"),
    ] {
        assert_ok_envelope(app.register(email, PASSWORD, name).await, 201).await;
    }
    let all = list(&app, &root, "").await;
    assert_eq!(
        emails(&all),
        [
            "root@example.com",
            "ada@example.com",
            "bob@work.org",
            "carol@example.com",
            "dave@elsewhere.net",
            "erin@work.org"
        ],
        "registration order"
    );
    for limit in [1, 2, 4] {
        assert_eq!(
            app.pages(&root.access, "/api/v1/admin/users", limit).await,
            all,
            "limit {limit}"
        );
    }
    for (q, expected) in [
        ("ada", vec!["ada@example.com", "dave@elsewhere.net"]),
        ("ADA", vec!["ada@example.com", "dave@elsewhere.net"]),
        ("Work.ORG", vec!["bob@work.org", "erin@work.org"]),
        ("builder", vec!["bob@work.org"]),
        (
            "example.com",
            vec!["root@example.com", "ada@example.com", "carol@example.com"],
        ),
        ("nobody", vec![]),
    ] {
        let found = list(
            &app,
            &root,
            &format!("q={}", crate::helpers::encode_query_value(q)),
        )
        .await;
        assert_eq!(emails(&found), expected, "q={q}");
    }
    // `q` is text, not a pattern: `_`, `%` and `\` match only themselves.
    assert_ok_envelope(
        app.register("under_score@example.com", PASSWORD, "100% sure \\o/")
            .await,
        201,
    )
    .await;
    for q in ["_", "%", "\\", "100%", "d_r"] {
        let found = list(
            &app,
            &root,
            &format!("q={}", crate::helpers::encode_query_value(q)),
        )
        .await;
        let expected: Vec<&str> = if q == "d_r" {
            vec![]
        } else {
            vec!["under_score@example.com"]
        };
        assert_eq!(emails(&found), expected, "q={q}");
    }
    // Pages of a search hold only matches.
    let paged = app
        .pages(&root.access, "/api/v1/admin/users?q=example.com", 1)
        .await;
    assert_eq!(
        emails(&paged),
        [
            "root@example.com",
            "ada@example.com",
            "carol@example.com",
            "under_score@example.com"
        ]
    );
    let reply = assert_envelope_error(
        app.get(
            &format!("/api/v1/admin/users?q={}", "q".repeat(101)),
            &root.access,
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("q");
    for (query, parameter) in [("limit=0", "limit"), ("cursor=bogus", "cursor")] {
        let reply = assert_envelope_error(
            app.get(&format!("/api/v1/admin/users?{query}"), &root.access)
                .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        reply.assert_detail(parameter);
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once_and_refuses_their_login() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let second = app.login_ok("bob@example.com", PASSWORD).await;
    let task = app
        .create_task(&bob.access, &json!({"title": "Bob's"}))
        .await;
    assert_ok_envelope(app.get("/api/v1/users/me", &bob.access).await, 200).await;

    let disabled = administer(&app, &root, &bob.user_id, json!({"disabled": true})).await;
    disabled.assert_ok(200);
    assert_eq!(disabled.data()["disabled"], true);
    assert_eq!(disabled.data()["id"], json!(bob.user_id));
    assert_eq!(disabled.data()["role"], "user");

    // Every session ends at once: access tokens and refresh tokens.
    for session in [&bob, &second] {
        for path in ["/api/v1/users/me", "/api/v1/tasks"] {
            assert_envelope_error(app.get(path, &session.access).await, 401, "UNAUTHENTICATED")
                .await;
        }
        assert_envelope_error(app.refresh(&session.refresh).await, 401, "UNAUTHENTICATED").await;
    }
    // A new login is refused: 403, not "wrong password".
    assert_envelope_error(
        app.login("bob@example.com", PASSWORD).await,
        403,
        "FORBIDDEN",
    )
    .await;
    // A wrong password still says only that.
    assert_envelope_error(
        app.login("bob@example.com", "not the password").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let listed = list(&app, &root, "q=bob").await;
    assert_eq!(listed[0]["disabled"], true);

    // Disabling again changes nothing.
    let again = administer(&app, &root, &bob.user_id, json!({"disabled": true})).await;
    again.assert_ok(200);

    // Re-enabled: Bob logs in again and finds his task; the old sessions
    // stay ended.
    let enabled = administer(&app, &root, &bob.user_id, json!({"disabled": false})).await;
    enabled.assert_ok(200);
    assert_eq!(enabled.data()["disabled"], false);
    let back = app.login_ok("bob@example.com", PASSWORD).await;
    let fetched = assert_ok_envelope(
        app.get(&format!("/api/v1/tasks/{}", id_of(&task)), &back.access)
            .await,
        200,
    )
    .await;
    assert_eq!(fetched.data(), &task);
    assert_envelope_error(
        app.get("/api/v1/users/me", &bob.access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_eq!(list(&app, &root, "q=bob").await[0]["disabled"], false);
}

#[tokio::test]
async fn admins_promote_and_demote_and_the_stored_role_decides() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let promoted = administer(&app, &root, &bob.user_id, json!({"role": "admin"})).await;
    promoted.assert_ok(200);
    assert_eq!(promoted.data()["role"], "admin");
    // Bob's token from before works as an admin's at once.
    assert_ok_envelope(app.get("/api/v1/admin/users", &bob.access).await, 200).await;
    assert_eq!(app.me(&bob.access).await["role"], "admin");
    // An admin may demote another admin; then the old token is a user's.
    let demoted = administer(&app, &root, &bob.user_id, json!({"role": "user"})).await;
    demoted.assert_ok(200);
    assert_eq!(demoted.data()["role"], "user");
    assert_envelope_error(
        app.get("/api/v1/admin/users", &bob.access).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(app.me(&bob.access).await["role"], "user");
    // Both at once.
    let both = administer(
        &app,
        &root,
        &bob.user_id,
        json!({"role": "admin", "disabled": true}),
    )
    .await;
    both.assert_ok(200);
    assert_eq!(both.data()["role"], "admin");
    assert_eq!(both.data()["disabled"], true);
    assert_envelope_error(
        app.get("/api/v1/admin/users", &bob.access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn an_admin_cannot_disable_or_demote_themself() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    for body in [
        json!({"disabled": true}),
        json!({"role": "user"}),
        json!({"role": "user", "disabled": false}),
    ] {
        let reply = administer(&app, &root, &root.user_id, body).await;
        reply.assert_error(409, "CONFLICT");
    }
    // Still an admin, still in.
    assert_ok_envelope(app.get("/api/v1/admin/users", &root.access).await, 200).await;
    assert_eq!(app.me(&root.access).await["role"], "admin");
    // What changes nothing is fine.
    for body in [
        json!({"role": "admin"}),
        json!({"disabled": false}),
        json!({}),
    ] {
        let reply = administer(&app, &root, &root.user_id, body).await;
        reply.assert_ok(200);
        assert_eq!(reply.data()["role"], "admin");
        assert_eq!(reply.data()["disabled"], false);
    }

    // An unknown user, and bodies that are not a change.
    let reply = administer(&app, &root, &random_uuid(), json!({"disabled": true})).await;
    reply.assert_error(404, "NOT_FOUND");
    let alice = app.signup("alice@example.com").await;
    for (body, field) in [
        (json!({"role": "root"}), "role"),
        (json!({"role": null}), "role"),
        (json!({"disabled": null}), "disabled"),
        (json!({"disabled": "yes"}), "disabled"),
        (json!({"email": "x@example.com"}), "email"),
    ] {
        let reply = administer(&app, &root, &alice.user_id, body).await;
        reply.assert_error(422, "VALIDATION_FAILED");
        reply.assert_detail(field);
    }
    assert_eq!(app.me(&alice.access).await["role"], "user");
}

#[tokio::test]
async fn a_system_admin_sees_no_project_content_without_membership() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    let alice = app.signup("alice@example.com").await;
    let project = id_of(&app.create_project(&alice.access, "Alice's plans").await);
    let task = id_of(
        &app.create_task(
            &alice.access,
            &json!({"title": "Alice's task", "projectId": project}),
        )
        .await,
    );
    let inbox_task = id_of(
        &app.create_task(&alice.access, &json!({"title": "Alice's inbox task"}))
            .await,
    );
    let alices_inbox = app.inbox_id(&alice.access).await;
    let missing = random_uuid();
    for (theirs, random) in [
        (
            format!("/api/v1/projects/{project}"),
            format!("/api/v1/projects/{missing}"),
        ),
        (
            format!("/api/v1/projects/{alices_inbox}"),
            format!("/api/v1/projects/{missing}"),
        ),
        (
            format!("/api/v1/projects/{project}/members"),
            format!("/api/v1/projects/{missing}/members"),
        ),
        (
            format!("/api/v1/projects/{project}/activity"),
            format!("/api/v1/projects/{missing}/activity"),
        ),
        (
            format!("/api/v1/tasks/{task}"),
            format!("/api/v1/tasks/{missing}"),
        ),
        (
            format!("/api/v1/tasks/{inbox_task}"),
            format!("/api/v1/tasks/{missing}"),
        ),
        (
            format!("/api/v1/tasks/{task}/history"),
            format!("/api/v1/tasks/{missing}/history"),
        ),
        (
            format!("/api/v1/tasks?projectId={project}"),
            format!("/api/v1/tasks?projectId={missing}"),
        ),
    ] {
        let for_theirs =
            assert_envelope_error(app.get(&theirs, &root.access).await, 404, "NOT_FOUND").await;
        let for_random =
            assert_envelope_error(app.get(&random, &root.access).await, 404, "NOT_FOUND").await;
        assert_eq!(for_theirs.error(), for_random.error(), "{theirs}");
        assert!(
            !for_theirs.text.contains("Alice's"),
            "{theirs}: {}",
            for_theirs.text
        );
    }
    // Nor may the admin change it.
    assert_envelope_error(
        app.patch(
            &format!("/api/v1/tasks/{task}"),
            &root.access,
            &json!({"title": "Root was here"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope_error(
        app.delete(&format!("/api/v1/projects/{project}"), &root.access)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope_error(
        app.post(
            &format!("/api/v1/projects/{project}/members"),
            &root.access,
            &json!({"userId": root.user_id, "role": "admin"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    // The admin's lists hold only their own.
    assert!(app.list_all(&root.access, "", 100).await.is_empty());
    let projects = app.pages(&root.access, "/api/v1/projects", 100).await;
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["name"], "Inbox");
    // Alice's things are as she left them.
    let still = assert_ok_envelope(
        app.get(&format!("/api/v1/tasks/{task}"), &alice.access)
            .await,
        200,
    )
    .await;
    assert_eq!(still.data()["title"], "Alice's task");
    assert_eq!(
        app.pages(
            &alice.access,
            &format!("/api/v1/projects/{project}/members"),
            100
        )
        .await
        .len(),
        1
    );
}

#[tokio::test]
async fn a_search_with_control_characters_is_refused_not_a_server_error() {
    let app = spawn().await;
    let root = app.signup("root@example.com").await;
    for q in ["a%00b", "%C2%85", "%1B"] {
        let reply = assert_envelope_error(
            app.get(&format!("/api/v1/admin/users?q={q}"), &root.access)
                .await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        reply.assert_detail("q");
    }
}
