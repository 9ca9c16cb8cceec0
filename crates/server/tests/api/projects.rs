//! Projects, members, the archived state, assignees and moving tasks, as
//! the behaviour table states them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{
    Reply, Session, TestApp, assert_envelope_error, assert_no_content, assert_ok_envelope, id_of,
    random_uuid, sorted_keys,
};

fn project_path(id: &str) -> String {
    format!("/api/v1/projects/{id}")
}

fn task_path(id: &str) -> String {
    format!("/api/v1/tasks/{id}")
}

fn member_path(project: &str, user: &str) -> String {
    format!("/api/v1/projects/{project}/members/{user}")
}

/// Every member of `project` as user id → role.
async fn roles(app: &TestApp, token: &str, project: &str) -> BTreeMap<String, String> {
    app.pages(token, &format!("/api/v1/projects/{project}/members"), 100)
        .await
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().expect("a user id").to_owned(),
                m["role"].as_str().expect("a role").to_owned(),
            )
        })
        .collect()
}

async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    assert_ok_envelope(app.get(path, token).await, 200)
        .await
        .data()
        .clone()
}

async fn patch_ok(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    assert_ok_envelope(app.patch(path, token, &body).await, 200)
        .await
        .data()
        .clone()
}

async fn not_found(response: reqwest::Response) -> Reply {
    assert_envelope_error(response, 404, "NOT_FOUND").await
}

async fn forbidden(response: reqwest::Response) -> Reply {
    assert_envelope_error(response, 403, "FORBIDDEN").await
}

async fn conflict(response: reqwest::Response) -> Reply {
    assert_envelope_error(response, 409, "CONFLICT").await
}

async fn invalid(response: reqwest::Response, field: &str) -> Reply {
    let reply = assert_envelope_error(response, 422, "VALIDATION_FAILED").await;
    reply.assert_detail(field);
    reply
}

/// A shared project of `owner`'s with `others` in it, each with a role.
async fn shared(app: &TestApp, owner: &Session, name: &str, others: &[(&Session, &str)]) -> String {
    let project = id_of(&app.create_project(&owner.access, name).await);
    for (session, role) in others {
        app.add_member(&owner.access, &project, &session.user_id, role)
            .await;
    }
    project
}

// ---- create, get, list ----

#[tokio::test]
async fn creating_a_project_makes_the_caller_its_owner() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let created = assert_ok_envelope(
        app.post(
            "/api/v1/projects",
            &ada.access,
            &json!({"name": "  Launch  ", "description": "Q4\n- ship"}),
        )
        .await,
        201,
    )
    .await;
    let project = created.data().clone();
    let id = id_of(&project);
    assert_eq!(created.header("location"), Some(project_path(&id).as_str()));
    assert_eq!(
        sorted_keys(&project),
        [
            "archived",
            "createdAt",
            "description",
            "id",
            "name",
            "ownerId",
            "personal",
            "role",
            "updatedAt",
            "version"
        ]
    );
    assert_eq!(project["name"], "Launch", "trimmed");
    assert_eq!(project["description"], "Q4\n- ship");
    assert_eq!(project["role"], "owner");
    assert_eq!(project["ownerId"], json!(ada.user_id));
    assert_eq!(project["archived"], false);
    assert_eq!(project["personal"], false);
    assert_eq!(project["version"], 1);
    assert_eq!(project["createdAt"], project["updatedAt"]);
    assert_eq!(get_ok(&app, &project_path(&id), &ada.access).await, project);
    let members = app
        .pages(&ada.access, &format!("/api/v1/projects/{id}/members"), 100)
        .await;
    assert_eq!(members.len(), 1);
    assert_eq!(
        sorted_keys(&members[0]),
        ["email", "joinedAt", "name", "role", "userId"]
    );
    assert_eq!(members[0]["userId"], json!(ada.user_id));
    assert_eq!(members[0]["email"], "ada@example.com");
    assert_eq!(members[0]["role"], "owner");

    // Without a description it is null.
    let bare = app.create_project(&ada.access, "Bare").await;
    assert_eq!(bare["description"], Value::Null);

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (
            json!({"name": "ok", "description": "d".repeat(2_001)}),
            "description",
        ),
        (json!({"name": "ok", "archived": true}), "archived"),
        (json!({"name": "ok", "ownerId": ada.user_id}), "ownerId"),
        (json!({"name": 5}), "name"),
    ] {
        invalid(
            app.post("/api/v1/projects", &ada.access, &body).await,
            field,
        )
        .await;
    }
    // 100 characters is the limit, not more.
    app.create_project(&ada.access, &"é".repeat(100)).await;
}

#[tokio::test]
async fn the_inbox_is_personal_and_cannot_be_shared_archived_transferred_or_deleted() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let inbox = app.inbox_id(&ada.access).await;
    let path = project_path(&inbox);
    let project = get_ok(&app, &path, &ada.access).await;
    assert_eq!(project["name"], "Inbox");
    assert_eq!(project["personal"], true);
    assert_eq!(project["role"], "owner");
    assert_eq!(project["ownerId"], json!(ada.user_id));
    // Each user has their own.
    assert_ne!(app.inbox_id(&bob.access).await, inbox);

    for role in ["viewer", "member", "admin"] {
        conflict(
            app.post(
                &format!("{path}/members"),
                &ada.access,
                &json!({"userId": bob.user_id, "role": role}),
            )
            .await,
        )
        .await;
    }
    conflict(
        app.post(
            &format!("{path}/members"),
            &ada.access,
            &json!({"email": "bob@example.com", "role": "viewer"}),
        )
        .await,
    )
    .await;
    conflict(
        app.patch(&path, &ada.access, &json!({"archived": true}))
            .await,
    )
    .await;
    conflict(app.delete(&path, &ada.access).await).await;
    conflict(
        app.post(
            &format!("{path}/transfer"),
            &ada.access,
            &json!({"userId": bob.user_id}),
        )
        .await,
    )
    .await;
    conflict(
        app.delete(&member_path(&inbox, &ada.user_id), &ada.access)
            .await,
    )
    .await;
    // Still Ada's alone, unarchived, and where her tasks go.
    let after = get_ok(&app, &path, &ada.access).await;
    assert_eq!(after["archived"], false);
    assert_eq!(after["version"], 1);
    assert_eq!(roles(&app, &ada.access, &inbox).await.len(), 1);
    let task = app.create_task(&ada.access, &json!({"title": "t"})).await;
    assert_eq!(task["projectId"], json!(inbox));
    // Bob's view of it: none.
    not_found(app.get(&path, &bob.access).await).await;
}

#[tokio::test]
async fn the_list_has_only_the_callers_projects_by_name_then_id_across_pages() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let mut mine = Vec::new();
    for name in ["beta", "Alpha", "gamma", "alpha", "Beta", "delta", "ALPHA"] {
        mine.push(app.create_project(&ada.access, name).await);
    }
    // Bob's own project is not Ada's; the one he shares with her is, with
    // her role in it.
    app.create_project(&bob.access, "Bob's secret").await;
    let shared_with_ada = shared(&app, &bob, "Bob and Ada", &[(&ada, "viewer")]).await;
    let inbox = app.inbox_id(&ada.access).await;

    let listed = app.pages(&ada.access, "/api/v1/projects", 100).await;
    let mut expected: Vec<(String, String)> = listed
        .iter()
        .map(|p| (p["name"].as_str().expect("a name").to_lowercase(), id_of(p)))
        .collect();
    expected.sort();
    let got: Vec<(String, String)> = listed
        .iter()
        .map(|p| (p["name"].as_str().expect("a name").to_lowercase(), id_of(p)))
        .collect();
    assert_eq!(got, expected, "by name ignoring case, then id");
    let names: Vec<&str> = listed
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(!names.contains(&"Bob's secret"));
    let with_bob = listed
        .iter()
        .find(|p| id_of(p) == shared_with_ada)
        .expect("the shared project is listed");
    assert_eq!(with_bob["role"], "viewer");
    assert!(listed.iter().any(|p| id_of(p) == inbox));
    assert!(
        listed
            .iter()
            .filter(|p| id_of(p) != shared_with_ada)
            .all(|p| p["role"] == "owner")
    );
    for project in &mine {
        assert!(listed.contains(project), "{project}");
    }

    // Every page size gives the same order, each project once.
    for limit in [1, 2, 4] {
        let paged = app.pages(&ada.access, "/api/v1/projects", limit).await;
        assert_eq!(paged, listed, "limit {limit}");
    }
    let first =
        assert_ok_envelope(app.get("/api/v1/projects?limit=3", &ada.access).await, 200).await;
    assert_eq!(first.data().as_array().map(Vec::len), Some(3));
    assert_eq!(first.body["meta"]["pagination"]["hasMore"], true);
    assert_eq!(first.body["meta"]["pagination"]["limit"], 3);

    // `archived`: active ones by default, archived ones on request.
    let archived_id = id_of(&mine[0]);
    patch_ok(
        &app,
        &project_path(&archived_id),
        &ada.access,
        json!({"archived": true}),
    )
    .await;
    let active = app.pages(&ada.access, "/api/v1/projects", 100).await;
    assert_eq!(active.len(), 8);
    assert!(active.iter().all(|p| id_of(p) != archived_id));
    assert_eq!(
        app.pages(&ada.access, "/api/v1/projects?archived=false", 100)
            .await,
        active
    );
    let archived = app
        .pages(&ada.access, "/api/v1/projects?archived=true", 100)
        .await;
    assert_eq!(archived.len(), 1);
    assert_eq!(id_of(&archived[0]), archived_id);
    assert_eq!(archived[0]["archived"], true);

    for query in [
        "archived=yes",
        "archived=1",
        "limit=0",
        "limit=101",
        "cursor=nonsense",
    ] {
        let reply = assert_envelope_error(
            app.get(&format!("/api/v1/projects?{query}"), &ada.access)
                .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        reply.assert_detail(query.split('=').next().expect("a name"));
    }
    // A cursor of another list is refused too.
    let members_page = assert_ok_envelope(
        app.get(
            &format!("/api/v1/projects/{shared_with_ada}/members?limit=1"),
            &ada.access,
        )
        .await,
        200,
    )
    .await;
    let members_cursor = members_page.body["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("two members: a next page")
        .to_owned();
    let reply = assert_envelope_error(
        app.get(
            &format!("/api/v1/projects?cursor={members_cursor}"),
            &ada.access,
        )
        .await,
        400,
        "MALFORMED_REQUEST",
    )
    .await;
    reply.assert_detail("cursor");
}

// ---- patch ----

#[tokio::test]
async fn admins_rename_and_redescribe_a_project() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let admin = app.signup("admin@example.com").await;
    let project = shared(&app, &owner, "Old", &[(&admin, "admin")]).await;
    let path = project_path(&project);
    let before = get_ok(&app, &path, &owner.access).await;

    let renamed = patch_ok(&app, &path, &admin.access, json!({"name": " New "})).await;
    assert_eq!(renamed["name"], "New");
    assert_eq!(renamed["version"], 2);
    assert_eq!(renamed["role"], "admin", "the caller's role");
    assert_ne!(renamed["updatedAt"], before["updatedAt"]);
    assert_eq!(renamed["createdAt"], before["createdAt"]);

    let described = patch_ok(&app, &path, &admin.access, json!({"description": "Why"})).await;
    assert_eq!(described["description"], "Why");
    assert_eq!(described["name"], "New");
    assert_eq!(described["version"], 3);
    let cleared = patch_ok(&app, &path, &admin.access, json!({"description": null})).await;
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["version"], 4);

    // Nothing to change: nothing changes, not even the version.
    let same = patch_ok(&app, &path, &admin.access, json!({})).await;
    assert_eq!(same, cleared);
    let same = patch_ok(&app, &path, &admin.access, json!({"name": "New"})).await;
    assert_eq!(same["version"], 4);

    for (body, field) in [
        (json!({"name": null}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"description": "d".repeat(2_001)}), "description"),
        (json!({"archived": null}), "archived"),
        (json!({"archived": "yes"}), "archived"),
        (json!({"personal": true}), "personal"),
        (json!({"version": 9}), "version"),
    ] {
        invalid(app.patch(&path, &owner.access, &body).await, field).await;
    }
    let after = get_ok(&app, &path, &owner.access).await;
    assert_eq!(after["version"], 4, "no invalid patch changed it");
}

// ---- archived ----

#[tokio::test]
async fn an_archived_project_is_read_only_until_its_owner_unarchives_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let admin = app.signup("admin@example.com").await;
    let member = app.signup("member@example.com").await;
    let viewer = app.signup("viewer@example.com").await;
    let outsider = app.signup("outsider@example.com").await;
    let newcomer = app.signup("newcomer@example.com").await;
    let project = shared(
        &app,
        &owner,
        "Archive me",
        &[(&admin, "admin"), (&member, "member"), (&viewer, "viewer")],
    )
    .await;
    let path = project_path(&project);
    let task = id_of(
        &app.create_task(
            &member.access,
            &json!({"title": "Inside", "projectId": project}),
        )
        .await,
    );
    let outside = id_of(
        &app.create_task(&member.access, &json!({"title": "In the Inbox"}))
            .await,
    );
    let member_inbox = app.inbox_id(&member.access).await;

    // Only the owner archives (admins 403).
    forbidden(
        app.patch(&path, &admin.access, &json!({"archived": true}))
            .await,
    )
    .await;
    let archived = patch_ok(&app, &path, &owner.access, json!({"archived": true})).await;
    assert_eq!(archived["archived"], true);
    assert_eq!(archived["version"], 2);

    let m = &member.access;
    let t = task_path(&task);
    // Tasks: create, change, assign, move in, move out, delete.
    conflict(
        app.post(
            "/api/v1/tasks",
            m,
            &json!({"title": "New", "projectId": project}),
        )
        .await,
    )
    .await;
    conflict(app.patch(&t, m, &json!({"title": "Changed"})).await).await;
    conflict(
        app.put(
            &t,
            m,
            &json!({"title": "Changed", "status": "done", "priority": "low"}),
        )
        .await,
    )
    .await;
    conflict(
        app.patch(&t, m, &json!({"assigneeId": member.user_id}))
            .await,
    )
    .await;
    conflict(app.patch(&t, m, &json!({"projectId": member_inbox})).await).await;
    conflict(
        app.patch(&task_path(&outside), m, &json!({"projectId": project}))
            .await,
    )
    .await;
    conflict(app.delete(&t, m).await).await;
    // The project: rename, describe; members: add, change a role.
    conflict(
        app.patch(&path, &admin.access, &json!({"name": "Renamed"}))
            .await,
    )
    .await;
    conflict(
        app.patch(&path, &owner.access, &json!({"description": "Why"}))
            .await,
    )
    .await;
    conflict(
        app.post(
            &format!("{path}/members"),
            &admin.access,
            &json!({"userId": newcomer.user_id, "role": "viewer"}),
        )
        .await,
    )
    .await;
    conflict(
        app.patch(
            &member_path(&project, &viewer.user_id),
            &admin.access,
            &json!({"role": "member"}),
        )
        .await,
    )
    .await;

    // Authorization comes first: a viewer is refused, an outsider told
    // nothing exists.
    forbidden(app.patch(&t, &viewer.access, &json!({"title": "x"})).await).await;
    forbidden(
        app.patch(&path, &member.access, &json!({"name": "x"}))
            .await,
    )
    .await;
    not_found(
        app.patch(&t, &outsider.access, &json!({"title": "x"}))
            .await,
    )
    .await;
    not_found(
        app.patch(&path, &outsider.access, &json!({"archived": false}))
            .await,
    )
    .await;

    // Reading still works, and nothing above changed anything.
    let still = get_ok(&app, &path, &viewer.access).await;
    assert_eq!(still["version"], 2);
    assert_eq!(still["name"], "Archive me");
    let read = get_ok(&app, &t, &viewer.access).await;
    assert_eq!(read["title"], "Inside");
    assert_eq!(read["version"], 1);
    assert_eq!(
        get_ok(&app, &task_path(&outside), m).await["projectId"],
        json!(member_inbox)
    );
    assert_eq!(roles(&app, &viewer.access, &project).await.len(), 4);
    let listed = app
        .list_all(&viewer.access, &format!("projectId={project}"), 100)
        .await;
    assert_eq!(listed.len(), 1);

    // Members can still leave.
    assert_no_content(
        app.delete(&member_path(&project, &viewer.user_id), &viewer.access)
            .await,
    )
    .await;
    not_found(app.get(&path, &viewer.access).await).await;

    // The owner unarchives (and may rename in the same request); then it
    // takes changes again.
    let unarchived = patch_ok(
        &app,
        &path,
        &owner.access,
        json!({"archived": false, "name": "Back"}),
    )
    .await;
    assert_eq!(unarchived["archived"], false);
    assert_eq!(unarchived["name"], "Back");
    let changed = patch_ok(&app, &t, m, json!({"title": "Changed"})).await;
    assert_eq!(changed["version"], 2);
}

#[tokio::test]
async fn the_owner_can_delete_an_archived_project() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let project = id_of(&app.create_project(&owner.access, "Old").await);
    let task = id_of(
        &app.create_task(
            &owner.access,
            &json!({"title": "Old task", "projectId": project}),
        )
        .await,
    );
    patch_ok(
        &app,
        &project_path(&project),
        &owner.access,
        json!({"archived": true}),
    )
    .await;
    assert_no_content(app.delete(&project_path(&project), &owner.access).await).await;
    not_found(app.get(&task_path(&task), &owner.access).await).await;
}

// ---- delete ----

#[tokio::test]
async fn deleting_a_project_deletes_its_tasks() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let member = app.signup("member@example.com").await;
    let project = shared(&app, &owner, "Doomed", &[(&member, "member")]).await;
    let mut tasks = Vec::new();
    for title in ["one", "two", "three"] {
        tasks.push(id_of(
            &app.create_task(
                &member.access,
                &json!({"title": title, "projectId": project, "assigneeId": member.user_id}),
            )
            .await,
        ));
    }
    let kept = id_of(
        &app.create_task(&member.access, &json!({"title": "in the Inbox"}))
            .await,
    );
    // A member may not (403); the owner may.
    forbidden(app.delete(&project_path(&project), &member.access).await).await;
    assert_no_content(app.delete(&project_path(&project), &owner.access).await).await;

    for session in [&owner, &member] {
        not_found(app.get(&project_path(&project), &session.access).await).await;
        for task in &tasks {
            not_found(app.get(&task_path(task), &session.access).await).await;
        }
        not_found(
            app.get(
                &format!("/api/v1/tasks?projectId={project}"),
                &session.access,
            )
            .await,
        )
        .await;
        let projects = app.pages(&session.access, "/api/v1/projects", 100).await;
        assert!(projects.iter().all(|p| id_of(p) != project));
    }
    let listed = app.list_all(&member.access, "", 100).await;
    assert_eq!(listed.iter().map(id_of).collect::<Vec<_>>(), [kept]);
    let assigned = app.list_all(&member.access, "assigneeId=me", 100).await;
    assert!(assigned.is_empty(), "{assigned:?}");
    // Deleting it again: it is gone.
    not_found(app.delete(&project_path(&project), &owner.access).await).await;
}

// ---- transfer ----

#[tokio::test]
async fn transferring_makes_a_member_the_owner_and_the_owner_an_admin() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let heir = app.signup("heir@example.com").await;
    let stranger = app.signup("stranger@example.com").await;
    let project = shared(&app, &owner, "Handed over", &[(&heir, "viewer")]).await;
    let path = project_path(&project);
    let transfer = format!("{path}/transfer");

    // Only to a member: a stranger or a made-up id is 422 naming userId.
    for user in [stranger.user_id.clone(), random_uuid()] {
        invalid(
            app.post(&transfer, &owner.access, &json!({"userId": user}))
                .await,
            "userId",
        )
        .await;
    }
    assert_envelope_error(
        app.post(&transfer, &owner.access, &json!({})).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    invalid(
        app.post(&transfer, &owner.access, &json!({"userId": "heir"}))
            .await,
        "userId",
    )
    .await;
    assert_eq!(
        get_ok(&app, &path, &owner.access).await["ownerId"],
        json!(owner.user_id)
    );

    let moved = assert_ok_envelope(
        app.post(&transfer, &owner.access, &json!({"userId": heir.user_id}))
            .await,
        200,
    )
    .await;
    assert_eq!(moved.data()["ownerId"], json!(heir.user_id));
    assert_eq!(moved.data()["role"], "admin", "the caller is now an admin");
    assert_eq!(moved.data()["version"], 2);
    assert_eq!(get_ok(&app, &path, &heir.access).await["role"], "owner");
    let members = roles(&app, &heir.access, &project).await;
    assert_eq!(members[&heir.user_id], "owner");
    assert_eq!(members[&owner.user_id], "admin");
    assert_eq!(
        members.values().filter(|r| *r == "owner").count(),
        1,
        "exactly one owner"
    );

    // The new owner owns it: the old one may no longer delete or transfer
    // it, and may now leave.
    forbidden(app.delete(&path, &owner.access).await).await;
    forbidden(
        app.post(&transfer, &owner.access, &json!({"userId": owner.user_id}))
            .await,
    )
    .await;
    assert_no_content(
        app.delete(&member_path(&project, &owner.user_id), &owner.access)
            .await,
    )
    .await;
    assert_no_content(app.delete(&path, &heir.access).await).await;
}

// ---- members ----

#[tokio::test]
async fn members_are_added_by_email_or_by_id_with_a_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let admin = app.signup("admin@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let carol = app.signup("carol@example.com").await;
    let project = shared(&app, &owner, "Team", &[(&admin, "admin")]).await;
    let members = format!("/api/v1/projects/{project}/members");

    // By e-mail, however it is written; an admin may add.
    let added = assert_ok_envelope(
        app.post(
            &members,
            &admin.access,
            &json!({"email": " Bob@Example.COM ", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    let bob_member = added.data().clone();
    assert_eq!(bob_member["userId"], json!(bob.user_id));
    assert_eq!(bob_member["email"], "bob@example.com");
    assert_eq!(bob_member["name"], "Test User");
    assert_eq!(bob_member["role"], "member");
    assert!(bob_member["joinedAt"].is_string());
    // By id.
    let carol_member = app
        .add_member(&admin.access, &project, &carol.user_id, "viewer")
        .await;
    assert_eq!(carol_member["email"], "carol@example.com");
    assert_eq!(carol_member["role"], "viewer");
    // Bob sees it now, with his role.
    assert_eq!(
        get_ok(&app, &project_path(&project), &bob.access).await["role"],
        "member"
    );

    // Unknown users: 422 naming the field.
    for (body, field) in [
        (
            json!({"email": "nobody@example.com", "role": "viewer"}),
            "email",
        ),
        (
            json!({"email": "not an address", "role": "viewer"}),
            "email",
        ),
        (json!({"userId": random_uuid(), "role": "viewer"}), "userId"),
    ] {
        invalid(app.post(&members, &admin.access, &body).await, field).await;
    }
    // Roles: admin, member or viewer, nothing else.
    let newcomer = app.signup("newcomer@example.com").await;
    for role in [
        json!("owner"),
        json!("Admin"),
        json!("superuser"),
        json!(null),
        json!(1),
    ] {
        invalid(
            app.post(
                &members,
                &owner.access,
                &json!({"userId": newcomer.user_id, "role": role}),
            )
            .await,
            "role",
        )
        .await;
    }
    // Exactly one of email and userId, and a role.
    for body in [
        json!({"userId": newcomer.user_id}),
        json!({"role": "viewer"}),
        json!({"email": "newcomer@example.com", "userId": newcomer.user_id, "role": "viewer"}),
    ] {
        assert_envelope_error(
            app.post(&members, &owner.access, &body).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }
    // Already a member, in any role (the owner too): 409.
    for (user, role) in [
        (&bob.user_id, "viewer"),
        (&carol.user_id, "viewer"),
        (&owner.user_id, "admin"),
    ] {
        conflict(
            app.post(
                &members,
                &admin.access,
                &json!({"userId": user, "role": role}),
            )
            .await,
        )
        .await;
    }
    conflict(
        app.post(
            &members,
            &admin.access,
            &json!({"email": "BOB@example.com", "role": "admin"}),
        )
        .await,
    )
    .await;

    // The list, in join order, across pages.
    let listed = app.pages(&owner.access, &members, 100).await;
    let ids: Vec<String> = listed
        .iter()
        .map(|m| m["userId"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            owner.user_id.clone(),
            admin.user_id.clone(),
            bob.user_id.clone(),
            carol.user_id.clone()
        ]
    );
    assert_eq!(listed[2], bob_member, "as added");
    for limit in [1, 3] {
        assert_eq!(app.pages(&carol.access, &members, limit).await, listed);
    }
}

#[tokio::test]
async fn roles_change_below_the_owner_only() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let admin = app.signup("admin@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let project = shared(
        &app,
        &owner,
        "Roles",
        &[(&admin, "admin"), (&bob, "viewer")],
    )
    .await;
    let bob_path = member_path(&project, &bob.user_id);
    let owner_path = member_path(&project, &owner.user_id);

    let changed = patch_ok(&app, &bob_path, &admin.access, json!({"role": "member"})).await;
    assert_eq!(changed["role"], "member");
    assert_eq!(changed["userId"], json!(bob.user_id));
    assert_eq!(
        get_ok(&app, &project_path(&project), &bob.access).await["role"],
        "member"
    );
    let promoted = patch_ok(&app, &bob_path, &owner.access, json!({"role": "admin"})).await;
    assert_eq!(promoted["role"], "admin");
    // The same role again changes nothing.
    let again = patch_ok(&app, &bob_path, &owner.access, json!({"role": "admin"})).await;
    assert_eq!(again, promoted);

    // Nobody is made owner this way, and no role but the three exists.
    for role in [json!("owner"), json!("boss"), json!(null)] {
        invalid(
            app.patch(&bob_path, &owner.access, &json!({"role": role}))
                .await,
            "role",
        )
        .await;
    }
    // The owner's own role changes only by transfer: 409 for the owner,
    // 403 for an admin (who may not touch the owner at all).
    conflict(
        app.patch(&owner_path, &owner.access, &json!({"role": "admin"}))
            .await,
    )
    .await;
    forbidden(
        app.patch(&owner_path, &admin.access, &json!({"role": "viewer"}))
            .await,
    )
    .await;
    forbidden(app.delete(&owner_path, &admin.access).await).await;
    // A user who is not a member has no membership to change.
    let stranger = app.signup("stranger@example.com").await;
    for path in [
        member_path(&project, &stranger.user_id),
        member_path(&project, &random_uuid()),
    ] {
        not_found(
            app.patch(&path, &owner.access, &json!({"role": "viewer"}))
                .await,
        )
        .await;
        not_found(app.delete(&path, &owner.access).await).await;
    }
    let members = roles(&app, &owner.access, &project).await;
    assert_eq!(members[&owner.user_id], "owner");
    assert_eq!(members[&admin.user_id], "admin");
    assert_eq!(members[&bob.user_id], "admin");
    assert_eq!(members.len(), 3);

    // An admin removes another admin (below owner).
    assert_no_content(app.delete(&bob_path, &admin.access).await).await;
    not_found(app.get(&project_path(&project), &bob.access).await).await;
}

#[tokio::test]
async fn anyone_but_the_owner_can_leave() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let others = [
        (app.signup("admin@example.com").await, "admin"),
        (app.signup("member@example.com").await, "member"),
        (app.signup("viewer@example.com").await, "viewer"),
    ];
    let with: Vec<(&Session, &str)> = others.iter().map(|(s, r)| (s, *r)).collect();
    let project = shared(&app, &owner, "Leave", &with).await;
    conflict(
        app.delete(&member_path(&project, &owner.user_id), &owner.access)
            .await,
    )
    .await;
    for (session, _) in &others {
        assert_no_content(
            app.delete(&member_path(&project, &session.user_id), &session.access)
                .await,
        )
        .await;
        not_found(app.get(&project_path(&project), &session.access).await).await;
        // Leaving again: no longer a member.
        not_found(
            app.delete(&member_path(&project, &session.user_id), &session.access)
                .await,
        )
        .await;
    }
    let members = roles(&app, &owner.access, &project).await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[&owner.user_id], "owner");
}

// ---- assignees ----

#[tokio::test]
async fn removing_a_member_unassigns_their_tasks_in_that_project_only() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let here = shared(&app, &owner, "Here", &[(&bob, "member")]).await;
    let there = shared(&app, &owner, "There", &[(&bob, "viewer")]).await;
    let assigned = |project: &str, title: &str| json!({"title": title, "projectId": project, "assigneeId": bob.user_id});
    let here_tasks = [
        id_of(&app.create_task(&owner.access, &assigned(&here, "h1")).await),
        id_of(&app.create_task(&owner.access, &assigned(&here, "h2")).await),
    ];
    let unassigned = id_of(
        &app.create_task(&owner.access, &json!({"title": "h3", "projectId": here}))
            .await,
    );
    let there_task = id_of(
        &app.create_task(&owner.access, &assigned(&there, "t1"))
            .await,
    );
    assert_eq!(
        app.list_all(&bob.access, "assigneeId=me", 100).await.len(),
        3
    );

    assert_no_content(
        app.delete(&member_path(&here, &bob.user_id), &owner.access)
            .await,
    )
    .await;
    for task in &here_tasks {
        let task = get_ok(&app, &task_path(task), &owner.access).await;
        assert_eq!(task["assigneeId"], Value::Null, "{task}");
        assert_eq!(task["version"], 2, "{task}");
    }
    assert_eq!(
        get_ok(&app, &task_path(&unassigned), &owner.access).await["version"],
        1
    );
    let kept = get_ok(&app, &task_path(&there_task), &owner.access).await;
    assert_eq!(kept["assigneeId"], json!(bob.user_id));
    assert_eq!(kept["version"], 1);
    let mine = app.list_all(&bob.access, "assigneeId=me", 100).await;
    assert_eq!(mine.iter().map(id_of).collect::<Vec<_>>(), [there_task]);
}

#[tokio::test]
async fn an_assignee_must_be_a_member_of_the_tasks_project() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let viewer = app.signup("viewer@example.com").await;
    let stranger = app.signup("stranger@example.com").await;
    let project = shared(&app, &owner, "Assign", &[(&viewer, "viewer")]).await;

    // Any role may be assigned, the viewer too.
    let task = app
        .create_task(
            &owner.access,
            &json!({"title": "t", "projectId": project, "assigneeId": viewer.user_id}),
        )
        .await;
    assert_eq!(task["assigneeId"], json!(viewer.user_id));
    assert_eq!(task["createdBy"], json!(owner.user_id));
    let path = task_path(&id_of(&task));
    let to_owner = patch_ok(
        &app,
        &path,
        &owner.access,
        json!({"assigneeId": owner.user_id}),
    )
    .await;
    assert_eq!(to_owner["assigneeId"], json!(owner.user_id));

    // Not a member (a user elsewhere, or nobody): 422 naming assigneeId.
    for user in [stranger.user_id.clone(), random_uuid()] {
        invalid(
            app.post(
                "/api/v1/tasks",
                &owner.access,
                &json!({"title": "t", "projectId": project, "assigneeId": user}),
            )
            .await,
            "assigneeId",
        )
        .await;
        invalid(
            app.patch(&path, &owner.access, &json!({"assigneeId": user}))
                .await,
            "assigneeId",
        )
        .await;
        invalid(
            app.put(
                &path,
                &owner.access,
                &json!({"title": "t", "status": "todo", "priority": "low", "assigneeId": user}),
            )
            .await,
            "assigneeId",
        )
        .await;
    }
    // The stranger's own Inbox is no place for the owner's assignee either.
    invalid(
        app.post(
            "/api/v1/tasks",
            &owner.access,
            &json!({"title": "t", "assigneeId": viewer.user_id}),
        )
        .await,
        "assigneeId",
    )
    .await;
    assert_eq!(
        get_ok(&app, &path, &owner.access).await["assigneeId"],
        json!(owner.user_id)
    );

    // `null` clears it; so does a PUT that leaves it out, which also
    // leaves the task in its project.
    let cleared = patch_ok(&app, &path, &owner.access, json!({"assigneeId": null})).await;
    assert_eq!(cleared["assigneeId"], Value::Null);
    patch_ok(
        &app,
        &path,
        &owner.access,
        json!({"assigneeId": viewer.user_id}),
    )
    .await;
    let replaced = assert_ok_envelope(
        app.put(
            &path,
            &owner.access,
            &json!({"title": "t2", "status": "todo", "priority": "low"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replaced.data()["assigneeId"], Value::Null);
    assert_eq!(replaced.data()["projectId"], json!(project));
    assert_eq!(replaced.data()["title"], "t2");
}

// ---- moving tasks ----

#[tokio::test]
async fn moving_a_task_needs_member_or_higher_in_both_projects() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let carol = app.signup("carol@example.com").await;
    let source = shared(
        &app,
        &owner,
        "Source",
        &[(&bob, "member"), (&carol, "member")],
    )
    .await;
    let viewed = shared(&app, &owner, "Viewed", &[(&bob, "viewer")]).await;
    let target = shared(&app, &owner, "Target", &[(&bob, "admin")]).await;
    let elsewhere = id_of(&app.create_project(&owner.access, "Elsewhere").await);

    // Carol is assigned; she is no member of the target.
    let task = app
        .create_task(
            &bob.access,
            &json!({"title": "Move me", "projectId": source, "assigneeId": carol.user_id}),
        )
        .await;
    let path = task_path(&id_of(&task));

    // Into a project where Bob only views: 403; where he is nobody: 404.
    forbidden(
        app.patch(&path, &bob.access, &json!({"projectId": viewed}))
            .await,
    )
    .await;
    not_found(
        app.patch(&path, &bob.access, &json!({"projectId": elsewhere}))
            .await,
    )
    .await;
    not_found(
        app.patch(&path, &bob.access, &json!({"projectId": random_uuid()}))
            .await,
    )
    .await;
    let unmoved = get_ok(&app, &path, &bob.access).await;
    assert_eq!(unmoved["projectId"], json!(source));
    assert_eq!(unmoved["version"], 1);

    // Member in the source, admin in the target: it moves, and Carol, no
    // member there, is unassigned.
    let moved = patch_ok(&app, &path, &bob.access, json!({"projectId": target})).await;
    assert_eq!(moved["projectId"], json!(target));
    assert_eq!(moved["assigneeId"], Value::Null);
    assert_eq!(moved["version"], 2);
    not_found(app.get(&path, &carol.access).await).await;
    let in_target = app
        .list_all(&bob.access, &format!("projectId={target}"), 100)
        .await;
    assert_eq!(
        in_target.iter().map(id_of).collect::<Vec<_>>(),
        [id_of(&task)]
    );
    assert!(
        app.list_all(&bob.access, &format!("projectId={source}"), 100)
            .await
            .is_empty()
    );

    // An assignee who is a member of the target stays assigned.
    patch_ok(&app, &path, &bob.access, json!({"assigneeId": bob.user_id})).await;
    let back = patch_ok(&app, &path, &bob.access, json!({"projectId": source})).await;
    assert_eq!(back["projectId"], json!(source));
    assert_eq!(back["assigneeId"], json!(bob.user_id));
    // Moving and assigning at once checks the assignee in the target.
    invalid(
        app.patch(
            &path,
            &bob.access,
            &json!({"projectId": target, "assigneeId": carol.user_id}),
        )
        .await,
        "assigneeId",
    )
    .await;

    // Out of a project where Bob only views: 403.
    let viewed_task = app
        .create_task(
            &owner.access,
            &json!({"title": "Viewed", "projectId": viewed}),
        )
        .await;
    forbidden(
        app.patch(
            &task_path(&id_of(&viewed_task)),
            &bob.access,
            &json!({"projectId": target}),
        )
        .await,
    )
    .await;
    // PUT moves too; without projectId it leaves the task where it is.
    let put = assert_ok_envelope(
        app.put(
            &path,
            &bob.access,
            &json!({"title": "Put", "status": "todo", "priority": "low", "projectId": target}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(put.data()["projectId"], json!(target));
}

// ---- GET /tasks filters ----

#[tokio::test]
async fn tasks_are_listed_across_projects_and_filtered_by_project_and_assignee() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let project = shared(&app, &bob, "Shared", &[(&ada, "member")]).await;
    let bobs_only = id_of(&app.create_project(&bob.access, "Bob's").await);
    let inbox = app.inbox_id(&ada.access).await;

    let create = |token: &str, body: Value| {
        let token = token.to_owned();
        let app = &app;
        async move { id_of(&app.create_task(&token, &body).await) }
    };
    let in_inbox = create(&ada.access, json!({"title": "inbox", "status": "done"})).await;
    let mine_here = create(
        &ada.access,
        json!({"title": "mine", "projectId": project, "assigneeId": ada.user_id}),
    )
    .await;
    let bobs_here = create(
        &bob.access,
        json!({"title": "bob's", "projectId": project, "assigneeId": bob.user_id}),
    )
    .await;
    let nobodys_here = create(
        &bob.access,
        json!({"title": "nobody's", "projectId": project}),
    )
    .await;
    create(
        &bob.access,
        json!({"title": "hidden", "projectId": bobs_only}),
    )
    .await;

    let ids = |tasks: Vec<Value>| {
        let mut ids: Vec<String> = tasks.iter().map(id_of).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // Across every project of the caller's, not others'.
    assert_eq!(
        ids(app.list_all(&ada.access, "", 2).await),
        sorted(vec![
            in_inbox.clone(),
            mine_here.clone(),
            bobs_here.clone(),
            nobodys_here.clone()
        ])
    );
    // One project.
    assert_eq!(
        ids(app
            .list_all(&ada.access, &format!("projectId={project}"), 2)
            .await),
        sorted(vec![
            mine_here.clone(),
            bobs_here.clone(),
            nobodys_here.clone()
        ])
    );
    assert_eq!(
        ids(app
            .list_all(&ada.access, &format!("projectId={inbox}"), 2)
            .await),
        vec![in_inbox.clone()]
    );
    // Assignee: `me` or an id.
    assert_eq!(
        ids(app.list_all(&ada.access, "assigneeId=me", 2).await),
        vec![mine_here.clone()]
    );
    assert_eq!(
        ids(app
            .list_all(&ada.access, &format!("assigneeId={}", bob.user_id), 2)
            .await),
        vec![bobs_here.clone()]
    );
    assert_eq!(
        ids(app
            .list_all(&ada.access, &format!("assigneeId={}", ada.user_id), 2)
            .await),
        vec![mine_here.clone()]
    );
    // Combined with each other and with the existing filters and sorts.
    assert_eq!(
        ids(app
            .list_all(
                &ada.access,
                &format!("projectId={project}&assigneeId=me&status=todo&sort=-priority"),
                1,
            )
            .await),
        vec![mine_here.clone()]
    );
    assert!(
        app.list_all(&ada.access, &format!("projectId={inbox}&assigneeId=me"), 5)
            .await
            .is_empty()
    );
    assert_eq!(
        ids(app.list_all(&ada.access, "status=done", 5).await),
        vec![in_inbox.clone()]
    );

    // A project the caller is not in: 404, as for none at all.
    for project in [bobs_only.clone(), random_uuid()] {
        not_found(
            app.get(&format!("/api/v1/tasks?projectId={project}"), &ada.access)
                .await,
        )
        .await;
    }
    for (query, parameter) in [
        ("projectId=inbox", "projectId"),
        ("assigneeId=you", "assigneeId"),
        ("assigneeId=ME", "assigneeId"),
    ] {
        let reply = assert_envelope_error(
            app.get(&format!("/api/v1/tasks?{query}"), &ada.access)
                .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        reply.assert_detail(parameter);
    }
}
