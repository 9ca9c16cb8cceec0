//! The per-project event log: one event per changed entity, in the
//! change's transaction, numbered 1, 2, 3, … without gaps; delta sync from
//! any point the log still covers.

use domain::{
    EventData, EventQuery, EventType, EventsError, IfMatch, ProjectPatch, ProjectRole, RequestId,
    TaskPatch, TaskQuery,
};
use time::Duration;

use crate::harness::{Flow, add, create, inbox, project, signed_in, task_in, taskflow, together};

/// Every event of the project after `since`, as (seq, type).
async fn log(
    flow: &Flow,
    by: domain::Principal,
    project: &domain::Project,
    since: i64,
) -> Vec<domain::Event> {
    let page = flow
        .project_events(
            by,
            project.id,
            EventQuery {
                after: since,
                limit: 100,
            },
        )
        .await
        .expect("events");
    assert!(page.next.is_none(), "harness reads at most 100 events");
    assert_eq!(page.head, page.items.last().map_or(since, |e| e.seq));
    page.items
}

fn kinds(events: &[domain::Event]) -> Vec<(i64, EventType)> {
    events.iter().map(|e| (e.seq, e.event.kind)).collect()
}

#[tokio::test]
async fn a_new_project_starts_its_log_with_itself_and_its_owner() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let events = log(&flow, ada, &launch, 0).await;
    assert_eq!(
        kinds(&events),
        [(1, EventType::ProjectCreated), (2, EventType::MemberAdded)]
    );
    assert_eq!(
        events[0].event.data,
        Some(EventData::Project(launch.clone()))
    );
    match &events[1].event.data {
        Some(EventData::Member(m)) => {
            assert_eq!(m.member.user_id, ada.user_id);
            assert_eq!(m.member.role, ProjectRole::Owner);
            assert_eq!(m.email.as_str(), "ada@example.com");
        }
        other => panic!("a member's data, got {other:?}"),
    }
    assert_eq!(events[1].event.entity_id, ada.user_id.0);
}

#[tokio::test]
async fn task_changes_are_logged_with_their_new_state_and_changed_fields() {
    let (flow, _clock) = taskflow();
    let mut ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    ada.request_id = RequestId::parse("req-1");
    ada.client_mutation_id = RequestId::parse("mine-1");
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;
    ada.client_mutation_id = None;
    let done = flow
        .update_task(
            ada,
            task.id,
            TaskPatch {
                status: Some(domain::Status::Done),
                ..TaskPatch::default()
            },
        )
        .await
        .expect("updated");
    // Nothing changes: nothing is logged.
    flow.update_task(
        ada,
        task.id,
        TaskPatch {
            status: Some(domain::Status::Done),
            ..TaskPatch::default()
        },
    )
    .await
    .expect("no-op");
    flow.delete_task(ada, task.id).await.expect("deleted");
    let events = log(&flow, ada, &launch, 2).await;
    assert_eq!(
        kinds(&events),
        [
            (3, EventType::TaskCreated),
            (4, EventType::TaskUpdated),
            (5, EventType::TaskDeleted),
        ]
    );
    let (created, updated, deleted) = (&events[0].event, &events[1].event, &events[2].event);
    assert_eq!(created.data, Some(EventData::Task(task.clone())));
    assert_eq!(
        created.client_mutation_id.map(|c| c.to_string()).as_deref(),
        Some("mine-1")
    );
    assert_eq!(
        created.request_id.map(|c| c.to_string()).as_deref(),
        Some("req-1")
    );
    assert!(created.changes.is_empty());
    assert_eq!(updated.data, Some(EventData::Task(done)));
    assert_eq!(updated.changes, ["completedAt", "status"]);
    assert_eq!(updated.client_mutation_id, None);
    assert_eq!(
        (deleted.data.as_ref(), deleted.entity_id),
        (None, task.id.0)
    );
}

#[tokio::test]
async fn a_move_leaves_one_log_and_enters_the_other() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let ops = project(&flow, ada, "Ops").await;
    let task = create(&flow, ada, task_in(&launch, "Travel")).await;
    let moved = flow
        .update_task(
            ada,
            task.id,
            TaskPatch {
                project_id: Some(ops.id),
                ..TaskPatch::default()
            },
        )
        .await
        .expect("moved");
    let left = log(&flow, ada, &launch, 3).await;
    assert_eq!(kinds(&left), [(4, EventType::TaskDeleted)]);
    assert_eq!(left[0].event.entity_id, task.id.0);
    let entered = log(&flow, ada, &ops, 2).await;
    assert_eq!(kinds(&entered), [(3, EventType::TaskCreated)]);
    assert_eq!(entered[0].event.data, Some(EventData::Task(moved)));
}

#[tokio::test]
async fn project_and_member_changes_are_logged() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, bob.user_id, ProjectRole::Member).await;
    let assigned = create(
        &flow,
        ada,
        domain::NewTask {
            assignee_id: Some(bob.user_id),
            ..task_in(&launch, "For Bob")
        },
    )
    .await;
    flow.update_project(
        ada,
        launch.id,
        ProjectPatch {
            name: Some("Relaunch".into()),
            ..ProjectPatch::default()
        },
    )
    .await
    .expect("renamed");
    flow.change_member_role(ada, launch.id, bob.user_id, ProjectRole::Admin)
        .await
        .expect("promoted");
    flow.transfer_project(ada, launch.id, bob.user_id)
        .await
        .expect("transferred");
    flow.remove_member(ada, launch.id, ada.user_id)
        .await
        .expect("left");
    let archive = ProjectPatch {
        archived: Some(true),
        ..ProjectPatch::default()
    };
    flow.update_project(bob, launch.id, archive)
        .await
        .expect("archived");
    let events = log(&flow, bob, &launch, 2).await;
    assert_eq!(
        kinds(&events),
        [
            (3, EventType::MemberAdded),
            (4, EventType::TaskCreated),
            (5, EventType::ProjectUpdated),
            (6, EventType::MemberUpdated),
            (7, EventType::MemberUpdated),
            (8, EventType::MemberUpdated),
            (9, EventType::ProjectUpdated),
            (10, EventType::MemberRemoved),
            (11, EventType::ProjectArchived),
        ]
    );
    assert_eq!(events[2].event.changes, ["name"]);
    assert_eq!(events[3].event.changes, ["role"]);
    assert_eq!(events[6].event.changes, ["ownerId"]);
    assert_eq!(events[7].event.entity_id, ada.user_id.0);
    assert_eq!(events[7].event.data, None);
    assert_eq!(events[8].event.changes, ["archived"]);
    assert_eq!(
        assigned.assignee_id,
        Some(bob.user_id),
        "Bob stays assigned"
    );
}

#[tokio::test]
async fn removing_a_member_logs_their_unassigned_tasks_first() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, bob.user_id, ProjectRole::Member).await;
    let task = create(
        &flow,
        ada,
        domain::NewTask {
            assignee_id: Some(bob.user_id),
            ..task_in(&launch, "For Bob")
        },
    )
    .await;
    flow.remove_member(ada, launch.id, bob.user_id)
        .await
        .expect("removed");
    let events = log(&flow, ada, &launch, 4).await;
    assert_eq!(
        kinds(&events),
        [(5, EventType::TaskUpdated), (6, EventType::MemberRemoved)]
    );
    assert_eq!(events[0].event.entity_id, task.id.0);
    assert_eq!(events[0].event.changes, ["assigneeId"]);
}

#[tokio::test]
async fn refused_changes_take_no_number_and_concurrent_ones_no_gap() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let vic = signed_in(&flow, "vic@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, vic.user_id, ProjectRole::Viewer).await;
    assert!(flow.create_task(vic, task_in(&launch, "No")).await.is_err());
    let writers = (0..20)
        .map(|i| {
            let flow = flow.clone();
            let launch = launch.clone();
            async move {
                flow.create_task(ada, task_in(&launch, &format!("T{i}")))
                    .await
            }
        })
        .collect();
    for created in together(writers).await {
        created.expect("created");
    }
    let events = log(&flow, ada, &launch, 0).await;
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=23).collect::<Vec<_>>());
}

#[tokio::test]
async fn delta_sync_pages_from_any_point_and_resyncs_past_retention() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let eve = signed_in(&flow, "eve@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    for i in 0..5 {
        create(&flow, ada, task_in(&launch, &format!("T{i}"))).await;
    }
    // Pages of 3 from seq 1: 2..4, 5..7.
    let first = flow
        .project_events(ada, launch.id, EventQuery { after: 1, limit: 3 })
        .await
        .expect("page");
    assert_eq!((first.items.len(), first.next, first.head), (3, Some(4), 7));
    let second = flow
        .project_events(ada, launch.id, EventQuery { after: 4, limit: 3 })
        .await
        .expect("page");
    assert_eq!(
        second.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [5, 6, 7]
    );
    assert_eq!(second.next, None);
    // At the head: nothing, and where to continue from.
    let idle = flow
        .project_events(ada, launch.id, EventQuery { after: 7, limit: 3 })
        .await
        .expect("page");
    assert!(idle.items.is_empty() && idle.head == 7);
    let ahead = flow
        .project_events(ada, launch.id, EventQuery { after: 8, limit: 3 })
        .await;
    assert!(matches!(ahead, Err(EventsError::Invalid(_))), "{ahead:?}");
    let stranger = flow
        .project_events(eve, launch.id, EventQuery { after: 0, limit: 3 })
        .await;
    assert!(
        matches!(stranger, Err(EventsError::NotFound)),
        "{stranger:?}"
    );

    // Past the retention, the first events go; asking for them is a resync.
    clock.advance(Duration::days(31));
    create(&flow, ada, task_in(&launch, "Fresh")).await;
    // Launch's first seven, and the two Inboxes' two each.
    assert_eq!(flow.prune_events().await.expect("pruned"), 11);
    let gone = flow
        .project_events(ada, launch.id, EventQuery { after: 0, limit: 3 })
        .await;
    assert!(
        matches!(gone, Err(EventsError::ResyncRequired { since: 0, head: 8 })),
        "{gone:?}"
    );
    let kept = flow
        .project_events(ada, launch.id, EventQuery { after: 7, limit: 3 })
        .await
        .expect("covered");
    assert_eq!(kept.items.iter().map(|e| e.seq).collect::<Vec<_>>(), [8]);
}

#[tokio::test]
async fn a_projects_task_list_carries_its_log_head() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    create(&flow, ada, task_in(&launch, "One")).await;
    let list = flow
        .list_tasks(
            ada,
            TaskQuery {
                project_id: Some(launch.id),
                ..TaskQuery::default()
            },
        )
        .await
        .expect("listed");
    assert_eq!((list.page.items.len(), list.head_seq), (1, Some(3)));
    let across = flow
        .list_tasks(ada, TaskQuery::default())
        .await
        .expect("listed");
    assert_eq!(across.head_seq, None, "no single log across projects");
    let inbox = inbox(&flow, ada.user_id).await;
    let own = flow
        .list_tasks(
            ada,
            TaskQuery {
                project_id: Some(inbox.id),
                ..TaskQuery::default()
            },
        )
        .await
        .expect("listed");
    assert_eq!(own.head_seq, Some(2), "the Inbox's creation and its owner");
}

#[tokio::test]
async fn a_stale_precondition_changes_nothing_and_records_nothing() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;
    let rename = |title: &str| TaskPatch {
        title: Some(title.to_owned()),
        ..TaskPatch::default()
    };
    flow.update_task(ada, task.id, rename("Theirs"))
        .await
        .expect("updated");
    let before = log(&flow, ada, &launch, 0).await;
    let stale = IfMatch::Versions(vec![1]);
    let refused = flow
        .update_task_if(ada, task.id, rename("Mine"), &stale)
        .await;
    assert!(
        matches!(
            refused,
            Err(domain::TaskError::PreconditionFailed { current: 2 })
        ),
        "{refused:?}"
    );
    let refused = flow.delete_task_if(ada, task.id, &stale).await;
    assert!(matches!(
        refused,
        Err(domain::TaskError::PreconditionFailed { current: 2 })
    ));
    let refused = flow
        .update_project_if(
            ada,
            launch.id,
            ProjectPatch {
                name: Some("Mine".into()),
                ..ProjectPatch::default()
            },
            &IfMatch::Versions(vec![7]),
        )
        .await;
    assert!(matches!(
        refused,
        Err(domain::ProjectError::PreconditionFailed { current: 1 })
    ));
    assert_eq!(log(&flow, ada, &launch, 0).await, before, "no event");
    let current = IfMatch::Versions(vec![2]);
    let mine = flow
        .update_task_if(ada, task.id, rename("Mine"), &current)
        .await
        .expect("current version");
    assert_eq!(mine.version, 3);
}

/// After each commit the use case announces exactly the events it logged,
/// numbered, so live subscribers hear of them at once; a change that
/// changed nothing, or failed, announces nothing.
#[tokio::test]
async fn every_commit_announces_the_events_it_logged() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let task = create(&flow, ada, task_in(&launch, "Write")).await;
    let patch = TaskPatch {
        title: Some("Write it".to_owned()),
        ..TaskPatch::default()
    };
    flow.update_task(ada, task.id, patch.clone())
        .await
        .expect("update");
    flow.update_task(ada, task.id, patch)
        .await
        .expect("a no-op update");
    let stale = flow
        .delete_task_if(ada, task.id, &IfMatch::Versions(vec![1]))
        .await;
    assert!(stale.is_err(), "a stale delete changes nothing");
    let logged = log(&flow, ada, &launch, 0).await;
    let announced: Vec<_> = flow
        .bus()
        .take_events()
        .into_iter()
        .filter(|e| e.project_id == launch.id)
        .collect();
    assert_eq!(announced, logged);
    assert_eq!(
        kinds(&announced)[2..],
        [(3, EventType::TaskCreated), (4, EventType::TaskUpdated)]
    );
}

/// Logout announces the session's end; disabling a user, all of theirs.
#[tokio::test]
async fn ended_sessions_are_announced() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    flow.logout(ada).await.expect("logout");
    assert_eq!(
        flow.bus().take_sessions(),
        [(ada.user_id, Some(ada.session_id))]
    );
}
