//! Projects shared with roles: the policy in every use case, the archived
//! and Inbox rules, transfers, leaving, assignees and moves.

use domain::{
    AuditAction, MemberQuery, MemberRef, NewMember, NewProject, ProjectError, ProjectPatch,
    ProjectQuery, ProjectRole, TaskError, TaskPatch, TaskQuery,
};

use crate::harness::{
    Flow, activity, add, create, inbox, new_task, project, signed_in, stored, task_in, taskflow,
};

fn archive(archived: bool) -> ProjectPatch {
    ProjectPatch {
        archived: Some(archived),
        ..ProjectPatch::default()
    }
}

fn rename(name: &str) -> ProjectPatch {
    ProjectPatch {
        name: Some(name.to_owned()),
        ..ProjectPatch::default()
    }
}

fn assign(user: Option<domain::UserId>) -> TaskPatch {
    TaskPatch {
        assignee_id: Some(user),
        ..TaskPatch::default()
    }
}

fn move_to(project: &domain::Project) -> TaskPatch {
    TaskPatch {
        project_id: Some(project.id),
        ..TaskPatch::default()
    }
}

async fn members(
    flow: &Flow,
    by: domain::Principal,
    project: &domain::Project,
) -> Vec<(String, ProjectRole)> {
    let page = flow
        .members(
            by,
            project.id,
            MemberQuery {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("members");
    page.items
        .into_iter()
        .map(|m| (m.email.as_str().to_owned(), m.member.role))
        .collect()
}

#[tokio::test]
async fn the_creator_owns_a_new_project_and_sees_it_listed() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let view = flow
        .create_project(
            ada,
            NewProject {
                name: " Launch ".into(),
                description: Some("Q4".into()),
            },
        )
        .await
        .expect("created");
    assert_eq!(view.role, ProjectRole::Owner);
    assert_eq!(view.project.name.as_str(), "Launch");
    assert_eq!(view.project.version, 1);
    let page = flow
        .projects(
            ada,
            ProjectQuery {
                archived: false,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("listed");
    let names: Vec<_> = page.items.iter().map(|v| v.project.name.as_str()).collect();
    assert_eq!(names, ["Inbox", "Launch"]);
    let invalid = flow
        .create_project(
            ada,
            NewProject {
                name: "  ".into(),
                description: None,
            },
        )
        .await;
    assert!(
        matches!(invalid, Err(ProjectError::Invalid(_))),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn a_non_member_finds_nothing_and_a_viewer_only_reads() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let vic = signed_in(&flow, "vic@example.com").await;
    let eve = signed_in(&flow, "eve@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, vic.user_id, ProjectRole::Viewer).await;
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;

    // Eve is no member: the project and its task do not exist for her.
    assert!(matches!(
        flow.project(eve, launch.id).await,
        Err(ProjectError::NotFound)
    ));
    assert!(matches!(
        flow.task(eve, task.id).await,
        Err(TaskError::NotFound)
    ));
    let created = flow.create_task(eve, task_in(&launch, "Sneak")).await;
    assert!(
        matches!(created, Err(TaskError::ProjectNotFound)),
        "{created:?}"
    );
    let listed = flow
        .list_tasks(
            eve,
            TaskQuery {
                project_id: Some(launch.id),
                ..TaskQuery::default()
            },
        )
        .await;
    assert!(
        matches!(listed, Err(TaskError::ProjectNotFound)),
        "{listed:?}"
    );
    // Naming a target project does not make the task visible: the same
    // answer as for a task that does not exist, whichever project is named.
    let eves = inbox(&flow, eve.user_id).await;
    for target in [&eves, &launch] {
        let moved = flow.update_task(eve, task.id, move_to(target)).await;
        assert!(matches!(moved, Err(TaskError::NotFound)), "{moved:?}");
    }

    // Vic reads but may not write.
    assert_eq!(
        flow.project(vic, launch.id).await.expect("visible").role,
        ProjectRole::Viewer
    );
    assert_eq!(stored(&flow, vic, &task).await, task);
    let created = flow.create_task(vic, task_in(&launch, "Mine")).await;
    assert!(matches!(created, Err(TaskError::Forbidden)), "{created:?}");
    let changed = flow
        .update_task(vic, task.id, assign(Some(vic.user_id)))
        .await;
    assert!(matches!(changed, Err(TaskError::Forbidden)), "{changed:?}");
    let deleted = flow.delete_task(vic, task.id).await;
    assert!(matches!(deleted, Err(TaskError::Forbidden)), "{deleted:?}");
    let renamed = flow.update_project(vic, launch.id, rename("Mine")).await;
    assert!(
        matches!(renamed, Err(ProjectError::Forbidden)),
        "{renamed:?}"
    );
    assert_eq!(stored(&flow, ada, &task).await, task, "nothing changed");
}

#[tokio::test]
async fn an_archived_project_is_read_only_until_unarchived() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let max = signed_in(&flow, "max@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, max.user_id, ProjectRole::Member).await;
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;
    let elsewhere = create(&flow, ada, new_task("In the Inbox")).await;
    let admin_only = flow.update_project(max, launch.id, archive(true)).await;
    assert!(
        matches!(admin_only, Err(ProjectError::Forbidden)),
        "{admin_only:?}"
    );
    let archived = flow
        .update_project(ada, launch.id, archive(true))
        .await
        .expect("archived");
    assert!(archived.project.archived);
    assert_eq!(archived.project.version, 2);

    fn conflict<T>(r: &Result<T, TaskError>) -> bool {
        matches!(r, Err(TaskError::Conflict(_)))
    }
    assert!(conflict(
        &flow.create_task(ada, task_in(&launch, "New")).await
    ));
    assert!(conflict(
        &flow
            .update_task(ada, task.id, assign(Some(max.user_id)))
            .await
    ));
    assert!(conflict(&flow.delete_task(ada, task.id).await));
    let inbox = inbox(&flow, ada.user_id).await;
    assert!(
        conflict(&flow.update_task(ada, task.id, move_to(&inbox)).await),
        "moving out"
    );
    assert!(
        conflict(&flow.update_task(ada, elsewhere.id, move_to(&launch)).await),
        "moving in"
    );
    let renamed = flow.update_project(ada, launch.id, rename("Later")).await;
    assert!(
        matches!(renamed, Err(ProjectError::Conflict(_))),
        "{renamed:?}"
    );
    let eve = signed_in(&flow, "eve@example.com").await;
    let added = flow
        .add_member(
            ada,
            launch.id,
            NewMember {
                user: MemberRef::Id(eve.user_id),
                role: ProjectRole::Viewer,
            },
        )
        .await;
    assert!(matches!(added, Err(ProjectError::Conflict(_))), "{added:?}");
    let role = flow
        .change_member_role(ada, launch.id, max.user_id, ProjectRole::Viewer)
        .await;
    assert!(matches!(role, Err(ProjectError::Conflict(_))), "{role:?}");
    // Authorization comes first: a non-member still gets 404, not 409.
    let hidden = flow.create_task(eve, task_in(&launch, "New")).await;
    assert!(
        matches!(hidden, Err(TaskError::ProjectNotFound)),
        "{hidden:?}"
    );
    // Reads work, and members may still leave.
    assert_eq!(stored(&flow, max, &task).await, task);
    flow.remove_member(max, launch.id, max.user_id)
        .await
        .expect("left");

    // The owner unarchives (and may rename in the same change).
    let back = flow
        .update_project(
            ada,
            launch.id,
            ProjectPatch {
                name: Some("Relaunch".into()),
                archived: Some(false),
                ..ProjectPatch::default()
            },
        )
        .await
        .expect("unarchived");
    assert!(!back.project.archived);
    assert_eq!(back.project.name.as_str(), "Relaunch");
    create(&flow, ada, task_in(&launch, "Writable again")).await;
}

#[tokio::test]
async fn the_inbox_is_never_shared_archived_transferred_or_deleted() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let inbox = inbox(&flow, ada.user_id).await;
    fn conflict<T>(r: Result<T, ProjectError>) -> bool {
        matches!(r, Err(ProjectError::Conflict(_)))
    }
    assert!(conflict(
        flow.add_member(
            ada,
            inbox.id,
            NewMember {
                user: MemberRef::Id(bob.user_id),
                role: ProjectRole::Viewer,
            },
        )
        .await
    ));
    assert!(conflict(
        flow.update_project(ada, inbox.id, archive(true)).await
    ));
    assert!(conflict(
        flow.transfer_project(ada, inbox.id, bob.user_id).await
    ));
    assert!(conflict(flow.delete_project(ada, inbox.id).await));
    // Bob is told nothing about Ada's Inbox.
    assert!(matches!(
        flow.delete_project(bob, inbox.id).await,
        Err(ProjectError::NotFound)
    ));
}

#[tokio::test]
async fn a_transfer_makes_the_old_owner_an_admin() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let eve = signed_in(&flow, "eve@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, bob.user_id, ProjectRole::Member).await;
    let stranger = flow.transfer_project(ada, launch.id, eve.user_id).await;
    match stranger {
        Err(ProjectError::Invalid(errors)) => assert!(errors.fields().contains_key("userId")),
        other => panic!("expected 422 on userId, got {other:?}"),
    }
    let view = flow
        .transfer_project(ada, launch.id, bob.user_id)
        .await
        .expect("transferred");
    assert_eq!(view.role, ProjectRole::Admin);
    assert_eq!(view.project.owner_id, bob.user_id);
    assert_eq!(
        members(&flow, bob, &launch).await,
        [
            ("ada@example.com".to_owned(), ProjectRole::Admin),
            ("bob@example.com".to_owned(), ProjectRole::Owner),
        ]
    );
    // Ada may no longer delete it; Bob may.
    assert!(matches!(
        flow.delete_project(ada, launch.id).await,
        Err(ProjectError::Forbidden)
    ));
    let actions: Vec<_> = activity(&flow, bob, &launch)
        .await
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions[..3],
        [
            AuditAction::ProjectTransferred,
            AuditAction::MemberRoleChanged,
            AuditAction::MemberRoleChanged,
        ],
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_owner_stays_until_a_transfer() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, bob.user_id, ProjectRole::Admin).await;
    let own_role = flow
        .change_member_role(ada, launch.id, ada.user_id, ProjectRole::Admin)
        .await;
    assert!(
        matches!(own_role, Err(ProjectError::Conflict(_))),
        "{own_role:?}"
    );
    let leave = flow.remove_member(ada, launch.id, ada.user_id).await;
    assert!(matches!(leave, Err(ProjectError::Conflict(_))), "{leave:?}");
    // An admin may not touch the owner.
    let demote = flow
        .change_member_role(bob, launch.id, ada.user_id, ProjectRole::Viewer)
        .await;
    assert!(matches!(demote, Err(ProjectError::Forbidden)), "{demote:?}");
    let remove = flow.remove_member(bob, launch.id, ada.user_id).await;
    assert!(matches!(remove, Err(ProjectError::Forbidden)), "{remove:?}");
    // Giving ownership by role change is refused.
    let crown = flow
        .change_member_role(ada, launch.id, bob.user_id, ProjectRole::Owner)
        .await;
    assert!(matches!(crown, Err(ProjectError::Invalid(_))), "{crown:?}");
    // Adding someone twice is a conflict.
    let twice = flow
        .add_member(
            ada,
            launch.id,
            NewMember {
                user: MemberRef::Email("BOB@example.com".into()),
                role: ProjectRole::Viewer,
            },
        )
        .await;
    assert!(matches!(twice, Err(ProjectError::Conflict(_))), "{twice:?}");
    let unknown = flow
        .add_member(
            ada,
            launch.id,
            NewMember {
                user: MemberRef::Email("nobody@example.com".into()),
                role: ProjectRole::Viewer,
            },
        )
        .await;
    match unknown {
        Err(ProjectError::Invalid(errors)) => assert!(errors.fields().contains_key("email")),
        other => panic!("expected 422 on email, got {other:?}"),
    }
}

#[tokio::test]
async fn assignees_are_members_and_leaving_unassigns() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let max = signed_in(&flow, "max@example.com").await;
    let eve = signed_in(&flow, "eve@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, max.user_id, ProjectRole::Viewer).await;
    let stranger = flow
        .create_task(
            ada,
            domain::NewTask {
                assignee_id: Some(eve.user_id),
                ..task_in(&launch, "For Eve?")
            },
        )
        .await;
    match stranger {
        Err(TaskError::Invalid(errors)) => assert!(errors.fields().contains_key("assigneeId")),
        other => panic!("expected 422 on assigneeId, got {other:?}"),
    }
    // A viewer may be assigned.
    let task = create(
        &flow,
        ada,
        domain::NewTask {
            assignee_id: Some(max.user_id),
            ..task_in(&launch, "For Max")
        },
    )
    .await;
    let other = create(&flow, ada, task_in(&launch, "Nobody's")).await;
    clock.tick();
    flow.remove_member(ada, launch.id, max.user_id)
        .await
        .expect("removed");
    let after = stored(&flow, ada, &task).await;
    assert_eq!(after.assignee_id, None);
    assert_eq!(after.version, task.version + 1);
    assert_eq!(stored(&flow, ada, &other).await, other, "others untouched");
    let entries = activity(&flow, ada, &launch).await;
    assert_eq!(entries[0].action, AuditAction::MemberRemoved);
    assert_eq!(entries[1].action, AuditAction::TaskUpdated);
    assert_eq!(entries[1].entity_id, task.id.0);
    assert!(matches!(
        flow.task(max, task.id).await,
        Err(TaskError::NotFound)
    ));
}

#[tokio::test]
async fn moving_a_task_needs_member_in_both_and_drops_a_foreign_assignee() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let max = signed_in(&flow, "max@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let ops = project(&flow, ada, "Ops").await;
    add(&flow, ada, &launch, max.user_id, ProjectRole::Member).await;
    add(&flow, ada, &ops, max.user_id, ProjectRole::Viewer).await;
    let task = create(
        &flow,
        ada,
        domain::NewTask {
            assignee_id: Some(max.user_id),
            ..task_in(&launch, "Move me")
        },
    )
    .await;
    // Max is only a viewer of Ops.
    let refused = flow.update_task(max, task.id, move_to(&ops)).await;
    assert!(matches!(refused, Err(TaskError::Forbidden)), "{refused:?}");
    // Not a member of Ada's Inbox at all.
    let inbox = inbox(&flow, ada.user_id).await;
    let hidden = flow.update_task(max, task.id, move_to(&inbox)).await;
    assert!(
        matches!(hidden, Err(TaskError::ProjectNotFound)),
        "{hidden:?}"
    );
    // Ada moves it to her Inbox: Max is no member there, so unassigned.
    let moved = flow
        .update_task(ada, task.id, move_to(&inbox))
        .await
        .expect("moved");
    assert_eq!((moved.project_id, moved.assignee_id), (inbox.id, None));
    assert_eq!(moved.version, task.version + 1);
    assert!(matches!(
        flow.task(max, task.id).await,
        Err(TaskError::NotFound)
    ));
    let history = flow
        .task_history(
            ada,
            task.id,
            domain::AuditQuery {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    let changes = &history.items[0].changes.0;
    assert!(
        changes.contains_key("projectId") && changes.contains_key("assigneeId"),
        "{changes:?}"
    );
}

#[tokio::test]
async fn deleting_a_project_deletes_its_tasks_and_keeps_its_trail() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let task = create(&flow, ada, task_in(&launch, "Gone with it")).await;
    flow.delete_project(ada, launch.id).await.expect("deleted");
    assert!(matches!(
        flow.task(ada, task.id).await,
        Err(TaskError::NotFound)
    ));
    assert!(matches!(
        flow.project(ada, launch.id).await,
        Err(ProjectError::NotFound)
    ));
    let mut conn = domain::Store::connection(flow.store())
        .await
        .expect("connection");
    let kept = domain::Audit::activity(
        &mut conn,
        launch.id,
        &domain::AuditQuery {
            after: None,
            limit: 10,
        },
    )
    .await
    .expect("read");
    assert_eq!(kept[0].action, AuditAction::ProjectDeleted);
    assert!(kept.iter().any(|e| e.action == AuditAction::TaskCreated));
}
