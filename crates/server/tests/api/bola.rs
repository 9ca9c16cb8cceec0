//! Broken object-level authorization: every route that takes an id, given
//! the ids of a project the caller is not a member of (the project, its
//! tasks, its members, its activity), answers exactly as for an id that
//! does not exist, and leaks nothing of it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, Session, TestApp, assert_ok_envelope, id_of, random_uuid, send};

/// What must not tell "not yours" from "not there": the status and the
/// whole error (code, message, details), not the request id.
fn comparable(reply: &Reply) -> (u16, Value) {
    (reply.status.as_u16(), reply.error().clone())
}

/// Alice's project with Bob in it, a task and some activity; Mallory, who
/// has a project and a task of her own.
struct Scene {
    app: TestApp,
    alice: Session,
    bob: Session,
    mallory: Session,
    project: String,
    task: String,
    mallorys_project: String,
    mallorys_task: String,
}

/// Words of Alice's project that no answer to Mallory may contain.
const SECRETS: [&str; 4] = [
    "Secret plans",
    "classified",
    "Hidden task",
    "bob@example.com",
];

async fn scene() -> Scene {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let mallory = app.signup("mallory@example.com").await;
    let project = assert_ok_envelope(
        app.post(
            "/api/v1/projects",
            &alice.access,
            &json!({"name": "Secret plans", "description": "classified"}),
        )
        .await,
        201,
    )
    .await;
    let project = id_of(project.data());
    app.add_member(&alice.access, &project, &bob.user_id, "member")
        .await;
    let task = id_of(
        &app.create_task(
            &alice.access,
            &json!({"title": "Hidden task", "projectId": project, "assigneeId": bob.user_id}),
        )
        .await,
    );
    let mallorys_project = id_of(&app.create_project(&mallory.access, "Mallory's").await);
    let mallorys_task = id_of(
        &app.create_task(
            &mallory.access,
            &json!({"title": "Mine", "projectId": mallorys_project}),
        )
        .await,
    );
    Scene {
        app,
        alice,
        bob,
        mallory,
        project,
        task,
        mallorys_project,
        mallorys_task,
    }
}

async fn request(
    app: &TestApp,
    token: &str,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.authed(method.clone(), path, token);
    if let Some(body) = body {
        request = request.json(body);
    }
    Reply::read(send(request).await).await
}

/// `method theirs` and `method missing` (the same route with made-up ids)
/// answer alike, with `status`, and neither says anything of Alice's.
async fn alike(
    scene: &Scene,
    method: Method,
    theirs: &str,
    missing: &str,
    body: Option<Value>,
    status: u16,
) {
    compare(
        scene,
        &method,
        (theirs, body.as_ref()),
        (missing, body.as_ref()),
        status,
    )
    .await;
}

/// As [`alike`], for one path and two bodies: one naming Alice's ids, one
/// made-up ids.
async fn alike_bodies(
    scene: &Scene,
    method: Method,
    path: &str,
    theirs: Value,
    missing: Value,
    status: u16,
) {
    compare(
        scene,
        &method,
        (path, Some(&theirs)),
        (path, Some(&missing)),
        status,
    )
    .await;
}

async fn compare(
    scene: &Scene,
    method: &Method,
    (theirs, theirs_body): (&str, Option<&Value>),
    (missing, missing_body): (&str, Option<&Value>),
    status: u16,
) {
    let token = &scene.mallory.access;
    let for_theirs = request(&scene.app, token, method, theirs, theirs_body).await;
    let for_missing = request(&scene.app, token, method, missing, missing_body).await;
    let what = format!("{method} {theirs} {theirs_body:?}");
    assert_eq!(for_theirs.status.as_u16(), status, "{what}: {for_theirs:?}");
    if status >= 400 {
        let code = if status == 404 {
            "NOT_FOUND"
        } else {
            "VALIDATION_FAILED"
        };
        for_theirs.assert_error(status, code);
    } else {
        assert_eq!(for_theirs.data(), for_missing.data(), "{what}");
    }
    assert_eq!(
        comparable(&for_theirs),
        comparable(&for_missing),
        "{what} vs {missing} {missing_body:?}"
    );
    for secret in SECRETS {
        assert!(
            !for_theirs.text.contains(secret),
            "{what} leaks {secret:?}: {}",
            for_theirs.text
        );
    }
}

#[tokio::test]
async fn another_projects_ids_are_not_found_on_every_route() {
    let s = scene().await;
    let random = random_uuid;
    let p = format!("/api/v1/projects/{}", s.project);
    let p_missing = format!("/api/v1/projects/{}", random());
    let t = format!("/api/v1/tasks/{}", s.task);
    let t_missing = format!("/api/v1/tasks/{}", random());
    let bob = &s.bob.user_id;
    let me = &s.mallory.user_id;

    // The project and everything under it.
    alike(&s, Method::GET, &p, &p_missing, None, 404).await;
    for body in [
        json!({"name": "Mine now"}),
        json!({"description": "defaced"}),
        json!({"archived": true}),
        json!({}),
    ] {
        alike(&s, Method::PATCH, &p, &p_missing, Some(body), 404).await;
    }
    alike(&s, Method::DELETE, &p, &p_missing, None, 404).await;
    alike(
        &s,
        Method::POST,
        &format!("{p}/transfer"),
        &format!("{p_missing}/transfer"),
        Some(json!({"userId": me})),
        404,
    )
    .await;
    alike(
        &s,
        Method::GET,
        &format!("{p}/members"),
        &format!("{p_missing}/members"),
        None,
        404,
    )
    .await;
    for body in [
        json!({"userId": me, "role": "admin"}),
        json!({"email": "mallory@example.com", "role": "viewer"}),
    ] {
        alike(
            &s,
            Method::POST,
            &format!("{p}/members"),
            &format!("{p_missing}/members"),
            Some(body),
            404,
        )
        .await;
    }
    // Bob's membership, Mallory "leaving", and the owner's.
    for user in [bob, me, &s.alice.user_id] {
        let theirs = format!("{p}/members/{user}");
        let missing = format!("{p_missing}/members/{}", random());
        alike(
            &s,
            Method::PATCH,
            &theirs,
            &missing,
            Some(json!({"role": "viewer"})),
            404,
        )
        .await;
        alike(&s, Method::DELETE, &theirs, &missing, None, 404).await;
    }
    alike(
        &s,
        Method::GET,
        &format!("{p}/activity"),
        &format!("{p_missing}/activity"),
        None,
        404,
    )
    .await;

    // The task.
    alike(&s, Method::GET, &t, &t_missing, None, 404).await;
    alike(
        &s,
        Method::PUT,
        &t,
        &t_missing,
        Some(json!({"title": "Mine", "status": "done", "priority": "low"})),
        404,
    )
    .await;
    for body in [
        json!({"title": "Mine"}),
        json!({"assigneeId": me}),
        json!({"projectId": s.mallorys_project}),
        json!({}),
    ] {
        alike(&s, Method::PATCH, &t, &t_missing, Some(body), 404).await;
    }
    alike(&s, Method::DELETE, &t, &t_missing, None, 404).await;
    alike(
        &s,
        Method::GET,
        &format!("{t}/history"),
        &format!("{t_missing}/history"),
        None,
        404,
    )
    .await;

    // Alice's project named in a query or a body.
    alike(
        &s,
        Method::GET,
        &format!("/api/v1/tasks?projectId={}", s.project),
        &format!("/api/v1/tasks?projectId={}", random()),
        None,
        404,
    )
    .await;
    alike_bodies(
        &s,
        Method::POST,
        "/api/v1/tasks",
        json!({"title": "Planted", "projectId": s.project}),
        json!({"title": "Planted", "projectId": random()}),
        404,
    )
    .await;
    // Moving her own task into Alice's project, by PATCH and by PUT.
    let own = format!("/api/v1/tasks/{}", s.mallorys_task);
    alike_bodies(
        &s,
        Method::PATCH,
        &own,
        json!({"projectId": s.project}),
        json!({"projectId": random()}),
        404,
    )
    .await;
    let put = |project: &str| json!({"title": "Mine", "status": "todo", "priority": "low", "projectId": project});
    alike_bodies(&s, Method::PUT, &own, put(&s.project), put(&random()), 404).await;

    // The ids of Alice's activity entries are nobody's tasks or projects.
    let entries = s.app.activity(&s.alice.access, &s.project).await;
    assert!(!entries.is_empty());
    for entry in &entries {
        let id = id_of(entry);
        alike(
            &s,
            Method::GET,
            &format!("/api/v1/tasks/{id}"),
            &t_missing,
            None,
            404,
        )
        .await;
        alike(
            &s,
            Method::GET,
            &format!("/api/v1/projects/{id}/activity"),
            &format!("{p_missing}/activity"),
            None,
            404,
        )
        .await;
    }

    // Nothing of Alice's changed.
    let project = assert_ok_envelope(s.app.get(&p, &s.alice.access).await, 200).await;
    assert_eq!(project.data()["name"], "Secret plans");
    assert_eq!(project.data()["version"], 1);
    let task = assert_ok_envelope(s.app.get(&t, &s.alice.access).await, 200).await;
    assert_eq!(task.data()["title"], "Hidden task");
    assert_eq!(task.data()["version"], 1);
    let members = s
        .app
        .pages(&s.alice.access, &format!("{p}/members"), 100)
        .await;
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(
        s.app.activity(&s.alice.access, &s.project).await,
        entries,
        "no entry for any refused request"
    );
}

/// Users who are members of another project (Bob, Alice) are, to Mallory's
/// own project, just like users that do not exist; her lists show nothing
/// of theirs.
#[tokio::test]
async fn another_projects_members_are_unknown_in_the_callers_project() {
    let s = scene().await;
    let m = format!("/api/v1/projects/{}", s.mallorys_project);
    let bob = &s.bob.user_id;
    // Bob is no member of Mallory's project: his membership is not there.
    alike(
        &s,
        Method::PATCH,
        &format!("{m}/members/{bob}"),
        &format!("{m}/members/{}", random_uuid()),
        Some(json!({"role": "viewer"})),
        404,
    )
    .await;
    alike(
        &s,
        Method::DELETE,
        &format!("{m}/members/{bob}"),
        &format!("{m}/members/{}", random_uuid()),
        None,
        404,
    )
    .await;
    // Nor can she give her project or her tasks to him: he is as unknown
    // as a made-up id.
    let own = format!("/api/v1/tasks/{}", s.mallorys_task);
    alike_bodies(
        &s,
        Method::PATCH,
        &own,
        json!({"assigneeId": bob}),
        json!({"assigneeId": random_uuid()}),
        422,
    )
    .await;
    alike_bodies(
        &s,
        Method::POST,
        "/api/v1/tasks",
        json!({"title": "For Bob", "projectId": s.mallorys_project, "assigneeId": bob}),
        json!({"title": "For Bob", "projectId": s.mallorys_project, "assigneeId": random_uuid()}),
        422,
    )
    .await;
    alike_bodies(
        &s,
        Method::POST,
        &format!("{m}/transfer"),
        json!({"userId": bob}),
        json!({"userId": random_uuid()}),
        422,
    )
    .await;

    // Filtering by Bob's id finds nothing: not Alice's task assigned to him.
    for query in [
        format!("assigneeId={bob}"),
        format!("assigneeId={}", random_uuid()),
    ] {
        let listed = assert_ok_envelope(
            s.app
                .get(&format!("/api/v1/tasks?{query}"), &s.mallory.access)
                .await,
            200,
        )
        .await;
        assert_eq!(listed.data(), &json!([]), "{query}");
    }
    // Her lists hold only her own.
    let listed = s.app.list_all(&s.mallory.access, "", 100).await;
    assert_eq!(
        listed.iter().map(id_of).collect::<Vec<_>>(),
        vec![s.mallorys_task.clone()]
    );
    let projects = s
        .app
        .pages(&s.mallory.access, "/api/v1/projects", 100)
        .await;
    let names: Vec<&str> = projects
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["Inbox", "Mallory's"]);
}

/// A member who leaves or is removed is, from then on, a stranger: the
/// project, its task, members and activity are 404 as for a random id.
#[tokio::test]
async fn a_removed_member_loses_every_id_at_once() {
    let s = scene().await;
    let p = format!("/api/v1/projects/{}", s.project);
    let t = format!("/api/v1/tasks/{}", s.task);
    // Bob sees it while a member.
    for path in [
        p.clone(),
        t.clone(),
        format!("{p}/members"),
        format!("{p}/activity"),
        format!("{t}/history"),
    ] {
        assert_ok_envelope(s.app.get(&path, &s.bob.access).await, 200).await;
    }
    let removed = s
        .app
        .delete(&format!("{p}/members/{}", s.bob.user_id), &s.alice.access)
        .await;
    assert_eq!(removed.status().as_u16(), 204);
    let missing_p = format!("/api/v1/projects/{}", random_uuid());
    let missing_t = format!("/api/v1/tasks/{}", random_uuid());
    for (theirs, missing) in [
        (p.clone(), missing_p.clone()),
        (format!("{p}/members"), format!("{missing_p}/members")),
        (format!("{p}/activity"), format!("{missing_p}/activity")),
        (t.clone(), missing_t.clone()),
        (format!("{t}/history"), format!("{missing_t}/history")),
    ] {
        let for_theirs = request(&s.app, &s.bob.access, &Method::GET, &theirs, None).await;
        let for_missing = request(&s.app, &s.bob.access, &Method::GET, &missing, None).await;
        for_theirs.assert_error(404, "NOT_FOUND");
        assert_eq!(
            comparable(&for_theirs),
            comparable(&for_missing),
            "{theirs}"
        );
    }
    let listed = s.app.list_all(&s.bob.access, "", 100).await;
    assert!(listed.is_empty(), "{listed:?}");
}
