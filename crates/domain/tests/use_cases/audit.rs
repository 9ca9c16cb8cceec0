//! The audit trail: one entry per change, in the change's transaction, with
//! what changed; none for a refused change.

use domain::{
    AuditAction, AuditQuery, Change, EntityType, ProjectRole, RequestId, TaskError, TaskPatch,
    Value,
};

use crate::harness::{activity, add, create, project, signed_in, task_in, taskflow, together};

fn change(from: Value, to: Value) -> Change {
    Change { from, to }
}

#[tokio::test]
async fn task_changes_are_recorded_with_before_and_after() {
    let (flow, clock) = taskflow();
    let mut ada = signed_in(&flow, "ada@example.com").await;
    ada.request_id = RequestId::parse("req-create");
    let launch = project(&flow, ada, "Launch").await;
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;
    clock.tick();
    ada.request_id = RequestId::parse("req-edit");
    flow.update_task(
        ada,
        task.id,
        TaskPatch {
            title: Some("Plan it".into()),
            status: Some(domain::Status::Done),
            ..TaskPatch::default()
        },
    )
    .await
    .expect("updated");
    // A change that changes nothing records nothing.
    flow.update_task(
        ada,
        task.id,
        TaskPatch {
            title: Some("Plan it".into()),
            ..TaskPatch::default()
        },
    )
    .await
    .expect("no-op");
    ada.request_id = None;
    flow.delete_task(ada, task.id).await.expect("deleted");

    let entries = activity(&flow, ada, &launch).await;
    let actions: Vec<_> = entries.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::TaskDeleted,
            AuditAction::TaskUpdated,
            AuditAction::TaskCreated,
            AuditAction::MemberAdded,
            AuditAction::ProjectCreated,
        ]
    );
    let (deleted, updated, created) = (&entries[0], &entries[1], &entries[2]);
    for entry in [deleted, updated, created] {
        assert_eq!(entry.entity_type, EntityType::Task);
        assert_eq!(entry.entity_id, task.id.0);
        assert_eq!(entry.project_id, Some(launch.id));
        assert_eq!(entry.actor_id, ada.user_id);
    }
    assert_eq!(
        created.request_id.map(|r| r.to_string()).as_deref(),
        Some("req-create")
    );
    assert_eq!(
        updated.request_id.map(|r| r.to_string()).as_deref(),
        Some("req-edit")
    );
    assert_eq!(deleted.request_id, None);
    // Creation: every from is null; nulls that stay null are no change.
    assert_eq!(
        created.changes.0["title"],
        change(Value::Null, Value::text("Plan"))
    );
    assert_eq!(
        created.changes.0["status"],
        change(Value::Null, Value::text("todo"))
    );
    assert!(!created.changes.0.contains_key("dueDate"));
    assert!(created.changes.0.values().all(|c| c.from == Value::Null));
    // Update: exactly the changed fields.
    assert_eq!(updated.changes.0.len(), 2, "{:?}", updated.changes);
    assert_eq!(
        updated.changes.0["title"],
        change(Value::text("Plan"), Value::text("Plan it"))
    );
    assert_eq!(
        updated.changes.0["status"],
        change(Value::text("todo"), Value::text("done"))
    );
    // Deletion: every to is null.
    assert!(deleted.changes.0.values().all(|c| c.to == Value::Null));
    assert_eq!(deleted.changes.0["title"].from, Value::text("Plan it"));

    // The history of a deleted task is gone with it; the activity keeps it.
    let history = flow
        .task_history(
            ada,
            task.id,
            AuditQuery {
                after: None,
                limit: 10,
            },
        )
        .await;
    assert!(matches!(history, Err(TaskError::NotFound)), "{history:?}");
}

#[tokio::test]
async fn a_refused_change_records_nothing() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let vic = signed_in(&flow, "vic@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    add(&flow, ada, &launch, vic.user_id, ProjectRole::Viewer).await;
    let task = create(&flow, ada, task_in(&launch, "Plan")).await;
    let before = activity(&flow, ada, &launch).await;
    let patch = TaskPatch {
        title: Some("Vic's".into()),
        ..TaskPatch::default()
    };
    assert!(flow.update_task(vic, task.id, patch).await.is_err());
    let invalid = TaskPatch {
        title: Some(String::new()),
        ..TaskPatch::default()
    };
    assert!(flow.update_task(ada, task.id, invalid).await.is_err());
    assert!(flow.delete_task(vic, task.id).await.is_err());
    assert!(flow.create_task(vic, task_in(&launch, "No")).await.is_err());
    assert_eq!(activity(&flow, ada, &launch).await, before);
}

#[tokio::test]
async fn concurrent_changes_give_consecutive_versions_and_one_entry_each() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    let task = create(&flow, ada, task_in(&launch, "Hot")).await;
    let writers = (0..10)
        .map(|i| {
            let flow = flow.clone();
            async move {
                flow.update_task(
                    ada,
                    task.id,
                    TaskPatch {
                        title: Some(format!("Edit {i}")),
                        ..TaskPatch::default()
                    },
                )
                .await
                .expect("updated")
                .version
            }
        })
        .collect();
    let mut versions = together(writers).await;
    versions.sort_unstable();
    assert_eq!(versions, (2..=11).collect::<Vec<i64>>());
    let history = flow
        .task_history(
            ada,
            task.id,
            AuditQuery {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("history");
    let updates = history
        .items
        .iter()
        .filter(|e| e.action == AuditAction::TaskUpdated)
        .count();
    assert_eq!(updates, 10);
    // Each entry's `from` is the previous entry's `to`: no lost update.
    let mut titles: Vec<_> = history
        .items
        .iter()
        .rev()
        .filter_map(|e| e.changes.0.get("title").cloned())
        .collect();
    let first = titles.remove(0);
    let mut last = first.to;
    for change in titles {
        assert_eq!(change.from, last);
        last = change.to;
    }
}

#[tokio::test]
async fn activity_pages_cover_every_entry_once_newest_first() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let launch = project(&flow, ada, "Launch").await;
    for i in 0..7 {
        clock.tick();
        create(&flow, ada, task_in(&launch, &format!("Task {i}"))).await;
    }
    let all = activity(&flow, ada, &launch).await;
    assert_eq!(all.len(), 9);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = flow
            .project_activity(ada, launch.id, AuditQuery { after, limit: 2 })
            .await
            .expect("page");
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert!(
        all.windows(2)
            .all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id))
    );
}
