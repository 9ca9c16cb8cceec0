//! The whole (role × action) matrix over HTTP, generated from the policy
//! table: every route that acts on or in a project names the policy
//! actions it needs, and the status each caller must get is what
//! [`authorize`] says of those actions (2xx when allowed, 403 `FORBIDDEN`
//! for a member whose role is too low, 404 `NOT_FOUND` for anyone who is
//! not a member). Nothing here copies the table by hand: change `POLICY`
//! and these expectations change with it.
//!
//! One test (one server) per kind of caller; every case gets a fresh
//! project, so no case sees another's effects.

use std::collections::BTreeSet;

use domain::project::ProjectRole;
use domain::project::policy::{Action, Denied, authorize};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, Session, TestApp, id_of, send};

/// Who calls: a member of the project with a role, a member of another
/// project of the same owner, or a user with no tie to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Role(ProjectRole),
    OtherProjectMember,
    NonMember,
}

impl Caller {
    /// The caller's role in the project under test (`None`: not a member).
    fn role(self) -> Option<ProjectRole> {
        match self {
            Caller::Role(role) => Some(role),
            Caller::OtherProjectMember | Caller::NonMember => None,
        }
    }
}

/// Every route (with the body that picks its action) the matrix calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    GetProject,
    RenameProject,
    RedescribeProject,
    ArchiveProject,
    UnarchiveProject,
    RenameAndUnarchiveProject,
    DeleteProject,
    TransferProject,
    ListMembers,
    AddMember,
    ChangeMemberRole,
    RemoveMember,
    LeaveProject,
    ProjectActivity,
    CreateTask,
    ListProjectTasks,
    GetTask,
    ReplaceTask,
    PatchTask,
    AssignTask,
    MoveTaskIn,
    MoveTaskOut,
    DeleteTask,
    TaskHistory,
}

impl Route {
    const ALL: [Route; 24] = [
        Route::GetProject,
        Route::RenameProject,
        Route::RedescribeProject,
        Route::ArchiveProject,
        Route::UnarchiveProject,
        Route::RenameAndUnarchiveProject,
        Route::DeleteProject,
        Route::TransferProject,
        Route::ListMembers,
        Route::AddMember,
        Route::ChangeMemberRole,
        Route::RemoveMember,
        Route::LeaveProject,
        Route::ProjectActivity,
        Route::CreateTask,
        Route::ListProjectTasks,
        Route::GetTask,
        Route::ReplaceTask,
        Route::PatchTask,
        Route::AssignTask,
        Route::MoveTaskIn,
        Route::MoveTaskOut,
        Route::DeleteTask,
        Route::TaskHistory,
    ];

    /// The policy actions the route needs in the project under test.
    /// (Moving a task also needs a right in the caller's Inbox, which they
    /// own: it decides nothing here.)
    fn actions(self) -> &'static [Action] {
        match self {
            Route::GetProject => &[Action::ViewProject],
            Route::RenameProject | Route::RedescribeProject => &[Action::EditProject],
            Route::ArchiveProject | Route::UnarchiveProject => &[Action::ArchiveProject],
            Route::RenameAndUnarchiveProject => &[Action::EditProject, Action::ArchiveProject],
            Route::DeleteProject => &[Action::DeleteProject],
            Route::TransferProject => &[Action::TransferProject],
            Route::ListMembers => &[Action::ViewMembers],
            Route::AddMember => &[Action::AddMember],
            Route::ChangeMemberRole => &[Action::ChangeMemberRole],
            Route::RemoveMember => &[Action::RemoveMember],
            Route::LeaveProject => &[Action::LeaveProject],
            Route::ProjectActivity | Route::TaskHistory => &[Action::ViewActivity],
            Route::CreateTask | Route::MoveTaskIn => &[Action::CreateTask],
            Route::ListProjectTasks | Route::GetTask => &[Action::ViewTasks],
            Route::ReplaceTask | Route::PatchTask | Route::AssignTask | Route::MoveTaskOut => {
                &[Action::EditTask]
            }
            Route::DeleteTask => &[Action::DeleteTask],
        }
    }

    /// The status of the route when it is allowed.
    fn success(self) -> u16 {
        match self {
            Route::DeleteProject
            | Route::RemoveMember
            | Route::LeaveProject
            | Route::DeleteTask => 204,
            Route::AddMember | Route::CreateTask => 201,
            _ => 200,
        }
    }

    fn reads_only(self) -> bool {
        matches!(
            self,
            Route::GetProject
                | Route::ListMembers
                | Route::ProjectActivity
                | Route::ListProjectTasks
                | Route::GetTask
                | Route::TaskHistory
        )
    }
}

/// What a caller must get: the policy's verdict on every action the route
/// needs (a non-member hears of nothing; then a role too low), then the
/// project's own rules that the policy does not hold.
fn expected(caller: Caller, route: Route) -> (u16, Option<&'static str>) {
    let verdicts: Vec<Result<(), Denied>> = route
        .actions()
        .iter()
        .map(|action| authorize(caller.role(), *action))
        .collect();
    if verdicts.contains(&Err(Denied::NotFound)) {
        return (404, Some("NOT_FOUND"));
    }
    if verdicts.contains(&Err(Denied::Forbidden)) {
        return (403, Some("FORBIDDEN"));
    }
    // The policy lets anyone leave; the owner must transfer first.
    if route == Route::LeaveProject && caller.role() == Some(ProjectRole::Owner) {
        return (409, Some("CONFLICT"));
    }
    (route.success(), None)
}

/// The users of one server: the project's owner, a member of each other
/// role, a viewer to act on (`target`), someone to add (`newcomer`), a
/// member of another project of the owner, and a stranger.
struct Cast {
    owner: Session,
    admin: Session,
    member: Session,
    viewer: Session,
    target: Session,
    newcomer: Session,
    other: Session,
    stranger: Session,
}

impl Cast {
    async fn sign_up(app: &TestApp) -> Self {
        let cast = Cast {
            owner: app.signup("owner@example.com").await,
            admin: app.signup("admin@example.com").await,
            member: app.signup("member@example.com").await,
            viewer: app.signup("viewer@example.com").await,
            target: app.signup("target@example.com").await,
            newcomer: app.signup("newcomer@example.com").await,
            other: app.signup("other@example.com").await,
            stranger: app.signup("stranger@example.com").await,
        };
        // The owner's other project, where `other` is an admin.
        let elsewhere = app.create_project(&cast.owner.access, "Elsewhere").await;
        app.add_member(
            &cast.owner.access,
            &id_of(&elsewhere),
            &cast.other.user_id,
            "admin",
        )
        .await;
        cast
    }

    fn caller(&self, caller: Caller) -> &Session {
        match caller {
            Caller::Role(ProjectRole::Owner) => &self.owner,
            Caller::Role(ProjectRole::Admin) => &self.admin,
            Caller::Role(ProjectRole::Member) => &self.member,
            Caller::Role(ProjectRole::Viewer) => &self.viewer,
            Caller::OtherProjectMember => &self.other,
            Caller::NonMember => &self.stranger,
        }
    }
}

/// A fresh project with every role in it and a task.
struct Fixture {
    project: String,
    task: String,
}

async fn fixture(app: &TestApp, cast: &Cast) -> Fixture {
    let owner = &cast.owner.access;
    let project = id_of(&app.create_project(owner, "Matrix").await);
    for (session, role) in [
        (&cast.admin, "admin"),
        (&cast.member, "member"),
        (&cast.viewer, "viewer"),
        (&cast.target, "viewer"),
    ] {
        app.add_member(owner, &project, &session.user_id, role)
            .await;
    }
    let task = id_of(
        &app.create_task(
            owner,
            &json!({"title": "In the project", "projectId": project}),
        )
        .await,
    );
    Fixture { project, task }
}

/// Sends one route as `caller`.
async fn call(
    app: &TestApp,
    route: Route,
    cast: &Cast,
    caller: &Session,
    inbox: &str,
    f: &Fixture,
) -> Reply {
    let project = format!("/api/v1/projects/{}", f.project);
    let task = format!("/api/v1/tasks/{}", f.task);
    let members = format!("{project}/members");
    let (method, path, body) = match route {
        Route::GetProject => (Method::GET, project, None),
        Route::RenameProject => (Method::PATCH, project, Some(json!({"name": "Renamed"}))),
        Route::RedescribeProject => (
            Method::PATCH,
            project,
            Some(json!({"description": "Described"})),
        ),
        Route::ArchiveProject => (Method::PATCH, project, Some(json!({"archived": true}))),
        Route::UnarchiveProject => (Method::PATCH, project, Some(json!({"archived": false}))),
        Route::RenameAndUnarchiveProject => (
            Method::PATCH,
            project,
            Some(json!({"name": "Renamed", "archived": false})),
        ),
        Route::DeleteProject => (Method::DELETE, project, None),
        Route::TransferProject => (
            Method::POST,
            format!("{project}/transfer"),
            Some(json!({"userId": cast.target.user_id})),
        ),
        Route::ListMembers => (Method::GET, members, None),
        Route::AddMember => (
            Method::POST,
            members,
            Some(json!({"userId": cast.newcomer.user_id, "role": "viewer"})),
        ),
        Route::ChangeMemberRole => (
            Method::PATCH,
            format!("{members}/{}", cast.target.user_id),
            Some(json!({"role": "member"})),
        ),
        Route::RemoveMember => (
            Method::DELETE,
            format!("{members}/{}", cast.target.user_id),
            None,
        ),
        Route::LeaveProject => (
            Method::DELETE,
            format!("{members}/{}", caller.user_id),
            None,
        ),
        Route::ProjectActivity => (Method::GET, format!("{project}/activity"), None),
        Route::CreateTask => (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            Some(json!({"title": "New", "projectId": f.project})),
        ),
        Route::ListProjectTasks => (
            Method::GET,
            format!("/api/v1/tasks?projectId={}", f.project),
            None,
        ),
        Route::GetTask => (Method::GET, task, None),
        Route::ReplaceTask => (
            Method::PUT,
            task,
            Some(json!({"title": "Replaced", "status": "done", "priority": "high"})),
        ),
        Route::PatchTask => (Method::PATCH, task, Some(json!({"title": "Patched"}))),
        Route::AssignTask => (
            Method::PATCH,
            task,
            Some(json!({"assigneeId": cast.target.user_id})),
        ),
        Route::MoveTaskIn => {
            // The caller's own task, from their Inbox into the project.
            let own = app
                .create_task(&caller.access, &json!({"title": "Mine"}))
                .await;
            (
                Method::PATCH,
                format!("/api/v1/tasks/{}", id_of(&own)),
                Some(json!({"projectId": f.project})),
            )
        }
        Route::MoveTaskOut => (Method::PATCH, task, Some(json!({"projectId": inbox}))),
        Route::DeleteTask => (Method::DELETE, task, None),
        Route::TaskHistory => (Method::GET, format!("{task}/history"), None),
    };
    let mut request = app.authed(method, &path, &caller.access);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::read(send(request).await).await
}

/// How many entries the project's activity has, as its owner sees it.
async fn activity_len(app: &TestApp, cast: &Cast, f: &Fixture) -> usize {
    app.activity(&cast.owner.access, &f.project).await.len()
}

/// Runs every route as `caller`, each on a fresh project, and reports
/// every combination whose answer is not what the policy says.
async fn run(caller_kind: Caller) {
    let app = TestApp::spawn().await;
    let cast = Cast::sign_up(&app).await;
    let caller = cast.caller(caller_kind);
    let inbox = app.inbox_id(&caller.access).await;
    let mut failures = Vec::new();
    for route in Route::ALL {
        let f = fixture(&app, &cast).await;
        if route == Route::UnarchiveProject {
            let archive = app
                .patch(
                    &format!("/api/v1/projects/{}", f.project),
                    &cast.owner.access,
                    &json!({"archived": true}),
                )
                .await;
            assert_eq!(archive.status().as_u16(), 200, "archiving the fixture");
        }
        let before = activity_len(&app, &cast, &f).await;
        let reply = call(&app, route, &cast, caller, &inbox, &f).await;
        let (status, code) = expected(caller_kind, route);
        let got_code = reply.error()["code"].as_str();
        let shape_ok = match code {
            Some(code) => got_code == Some(code) && reply.body["success"] == json!(false),
            None if status == 204 => reply.text.is_empty(),
            None => reply.body["success"] == json!(true),
        };
        if reply.status.as_u16() != status || !shape_ok {
            failures.push(format!(
                "{caller_kind:?} {route:?} (needs {:?}): expected {status} {code:?}, got {} {}",
                route.actions(),
                reply.status,
                reply.text
            ));
            continue;
        }
        if code.is_some() && !route.reads_only() {
            // A refused change leaves nothing behind, not even an entry.
            let after = activity_len(&app, &cast, &f).await;
            if after != before {
                failures.push(format!(
                    "{caller_kind:?} {route:?}: refused, yet the activity grew from {before} to {after}"
                ));
            }
        }
        if route == Route::GetProject
            && let Some(role) = caller_kind.role()
            && reply.data()["role"] != json!(role.as_str())
        {
            failures.push(format!(
                "{caller_kind:?} GetProject: role {} in {}",
                reply.data()["role"],
                reply.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} combinations differ from the policy:\n{}",
        failures.len(),
        Route::ALL.len(),
        failures.join("\n")
    );
}

macro_rules! matrix {
    ($($name:ident => $caller:expr,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run($caller).await;
            }
        )*
    };
}

matrix! {
    as_the_owner => Caller::Role(ProjectRole::Owner),
    as_an_admin => Caller::Role(ProjectRole::Admin),
    as_a_member => Caller::Role(ProjectRole::Member),
    as_a_viewer => Caller::Role(ProjectRole::Viewer),
    as_a_member_of_another_project => Caller::OtherProjectMember,
    as_a_non_member => Caller::NonMember,
}

/// The matrix reaches every action of the policy, and the tests above
/// cover every role.
#[test]
fn every_action_and_every_role_is_in_the_matrix() {
    let reached: BTreeSet<String> = Route::ALL
        .iter()
        .flat_map(|route| route.actions())
        .map(|action| format!("{action:?}"))
        .collect();
    let all: BTreeSet<String> = Action::ALL.iter().map(|a| format!("{a:?}")).collect();
    assert_eq!(reached, all, "routes for every action");
    // Each role answers differently for at least one route, so the matrix
    // tells the roles apart.
    let rows: BTreeSet<Vec<u16>> = ProjectRole::ALL
        .iter()
        .map(|role| {
            Route::ALL
                .iter()
                .map(|route| expected(Caller::Role(*role), *route).0)
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), ProjectRole::ALL.len());
    assert!(
        Route::ALL
            .iter()
            .all(|route| expected(Caller::NonMember, *route).0 == 404)
    );
}
