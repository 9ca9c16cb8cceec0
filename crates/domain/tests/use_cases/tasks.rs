//! Creating and changing tasks.

use domain::{NewTask, Priority, Status, Task, TaskError, TaskPatch};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::{Flow, create, fields, inbox, new_task, signed_in, stored, taskflow};

fn invalid_create(result: Result<Task, TaskError>) -> Vec<String> {
    match result {
        Err(TaskError::Invalid(errors)) => fields(&errors).into_iter().map(str::to_owned).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn invalid_update(result: Result<Task, TaskError>) -> Vec<String> {
    match result {
        Err(TaskError::Invalid(errors)) => fields(&errors).into_iter().map(str::to_owned).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn patch(flow: &Flow, principal: domain::Principal, task: &Task, patch: TaskPatch) -> Task {
    let updated = flow
        .update_task(principal, task.id, patch)
        .await
        .expect("update succeeds");
    assert_eq!(
        stored(flow, principal, task).await,
        updated,
        "returned == stored"
    );
    updated
}

// ---- create ----

#[tokio::test]
async fn create_applies_defaults() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let now = clock.tick();
    let task = create(&flow, principal, new_task("Write tests")).await;
    assert_eq!(task.created_by, principal.user_id);
    assert_eq!(task.project_id, inbox(&flow, principal.user_id).await.id);
    assert_eq!(task.assignee_id, None);
    assert_eq!(task.title.as_str(), "Write tests");
    assert_eq!(task.description, None);
    assert_eq!(task.status, Status::Todo);
    assert_eq!(task.priority, Priority::Medium);
    assert_eq!(task.due_date, None);
    assert_eq!(task.version, 1);
    assert_eq!(task.created_at, now);
    assert_eq!(task.updated_at, now);
    assert_eq!(task.completed_at, None);
    assert_eq!(stored(&flow, principal, &task).await, task);
}

#[tokio::test]
async fn create_keeps_given_fields_and_trims_the_title() {
    let (flow, _clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let due = datetime!(2030-05-06 07:08:09.123456 UTC);
    let task = create(
        &flow,
        principal,
        NewTask {
            project_id: None,
            assignee_id: None,
            title: "  Write tests \u{3000}".to_owned(),
            description: Some("  kept as written  ".to_owned()),
            status: Some(Status::InProgress),
            priority: Some(Priority::Urgent),
            due_date: Some(due),
        },
    )
    .await;
    assert_eq!(task.title.as_str(), "Write tests");
    assert_eq!(
        task.description.as_ref().map(|d| d.as_str()),
        Some("  kept as written  ")
    );
    assert_eq!(task.status, Status::InProgress);
    assert_eq!(task.priority, Priority::Urgent);
    assert_eq!(task.due_date, Some(due));
    assert_eq!(task.completed_at, None);
    assert_eq!(stored(&flow, principal, &task).await, task);
}

#[tokio::test]
async fn timestamps_are_kept_to_the_microsecond() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    clock.set(datetime!(2031-01-02 03:04:05.987654321 UTC));
    let mut input = new_task("Precise");
    input.due_date = Some(datetime!(2031-02-03 04:05:06.123456789 UTC));
    let task = create(&flow, principal, input).await;
    assert_eq!(task.created_at, datetime!(2031-01-02 03:04:05.987654 UTC));
    assert_eq!(
        task.due_date,
        Some(datetime!(2031-02-03 04:05:06.123456 UTC))
    );

    clock.tick();
    let updated = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            due_date: Some(Some(datetime!(2031-03-04 05:06:07.000000999 UTC))),
            ..TaskPatch::default()
        },
    )
    .await;
    assert_eq!(updated.due_date, Some(datetime!(2031-03-04 05:06:07 UTC)));
    assert_eq!(
        updated.updated_at,
        datetime!(2031-01-02 03:04:06.987654 UTC)
    );
}

#[tokio::test]
async fn create_as_done_sets_completed_at() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let now = clock.tick();
    let mut input = new_task("Already done");
    input.status = Some(Status::Done);
    let task = create(&flow, principal, input).await;
    assert_eq!(task.status, Status::Done);
    assert_eq!(task.completed_at, Some(now));
}

#[tokio::test]
async fn invalid_title_is_rejected() {
    let (flow, _clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    for title in [
        String::new(),
        "   ".to_owned(),
        "x".repeat(201),
        "é".repeat(201),
        // The limit counts the title as sent, surrounding blanks included.
        format!(" {} ", "é".repeat(199)),
        "a\u{0}b".to_owned(),
        "tab\tinside".to_owned(),
        "trailing newline\n".to_owned(),
    ] {
        let result = flow.create_task(principal, new_task(&title)).await;
        assert_eq!(
            invalid_create(result),
            ["title"],
            "{} chars",
            title.chars().count()
        );
    }
    // 200 characters (not bytes).
    let at_limit = format!(" {} ", "é".repeat(198));
    create(&flow, principal, new_task(&at_limit)).await;
    let page = flow
        .list_tasks(principal, crate::harness::query(100))
        .await
        .expect("list")
        .page;
    assert_eq!(page.items.len(), 1, "only the valid task was stored");
}

#[tokio::test]
async fn too_long_description_is_rejected() {
    let (flow, _clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let mut input = new_task("Fine");
    input.description = Some("d".repeat(10_001));
    let result = flow.create_task(principal, input.clone()).await;
    assert_eq!(invalid_create(result), ["description"]);

    input.title = " ".to_owned();
    let result = flow.create_task(principal, input.clone()).await;
    assert_eq!(invalid_create(result), ["description", "title"]);

    input.title = "Fine".to_owned();
    input.description = Some("d".repeat(10_000));
    create(&flow, principal, input).await;
}

// ---- update ----

#[tokio::test]
async fn patch_changes_only_the_given_fields() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(
        &flow,
        principal,
        NewTask {
            project_id: None,
            assignee_id: None,
            title: "Original".to_owned(),
            description: Some("Notes".to_owned()),
            status: Some(Status::InProgress),
            priority: Some(Priority::Low),
            due_date: Some(datetime!(2030-01-01 0:00 UTC)),
        },
    )
    .await;
    let now = clock.tick();
    let updated = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            priority: Some(Priority::High),
            ..TaskPatch::default()
        },
    )
    .await;
    let expected = Task {
        priority: Priority::High,
        version: 2,
        updated_at: now,
        ..task.clone()
    };
    assert_eq!(updated, expected);

    let now = clock.tick();
    let updated = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("  Renamed ".to_owned()),
            ..TaskPatch::default()
        },
    )
    .await;
    assert_eq!(updated.title.as_str(), "Renamed");
    assert_eq!(
        updated,
        Task {
            title: updated.title.clone(),
            version: 3,
            updated_at: now,
            ..expected
        }
    );
    assert_eq!(updated.created_at, task.created_at);
}

#[tokio::test]
async fn some_none_clears_nullable_fields() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(
        &flow,
        principal,
        NewTask {
            project_id: None,
            assignee_id: None,
            title: "Clear me".to_owned(),
            description: Some("Notes".to_owned()),
            due_date: Some(datetime!(2030-01-01 0:00 UTC)),
            ..NewTask::default()
        },
    )
    .await;
    clock.tick();
    let updated = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            due_date: Some(None),
            ..TaskPatch::default()
        },
    )
    .await;
    assert_eq!(updated.due_date, None);
    assert!(updated.description.is_some(), "description untouched");
    assert_eq!(updated.version, 2);

    clock.tick();
    let updated = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            description: Some(None),
            ..TaskPatch::default()
        },
    )
    .await;
    assert_eq!(updated.description, None);
    assert_eq!(updated.version, 3);
}

#[tokio::test]
async fn every_change_bumps_the_version_once_and_sets_updated_at() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, principal, new_task("Versioned")).await;
    let patches = [
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("Two".to_owned()),
            ..TaskPatch::default()
        },
        TaskPatch {
            project_id: None,
            assignee_id: None,
            description: Some(Some("three".to_owned())),
            ..TaskPatch::default()
        },
        TaskPatch {
            project_id: None,
            assignee_id: None,
            status: Some(Status::InProgress),
            ..TaskPatch::default()
        },
        TaskPatch {
            project_id: None,
            assignee_id: None,
            priority: Some(Priority::Urgent),
            ..TaskPatch::default()
        },
        TaskPatch {
            project_id: None,
            assignee_id: None,
            due_date: Some(Some(datetime!(2030-01-01 0:00 UTC))),
            ..TaskPatch::default()
        },
        // Several fields at once still count as one change.
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("Six".to_owned()),
            priority: Some(Priority::Low),
            status: Some(Status::Done),
            ..TaskPatch::default()
        },
    ];
    let mut previous = task;
    for (i, p) in patches.into_iter().enumerate() {
        let now = clock.tick();
        let updated = patch(&flow, principal, &previous, p).await;
        assert_eq!(updated.version, previous.version + 1, "patch {i}");
        assert_eq!(updated.version, i64::try_from(i).expect("small") + 2);
        assert_eq!(updated.updated_at, now, "patch {i}");
        assert!(updated.updated_at > previous.updated_at);
        assert_eq!(updated.created_at, previous.created_at);
        previous = updated;
    }
}

#[tokio::test]
async fn a_patch_that_changes_nothing_leaves_version_and_updated_at() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let due = datetime!(2030-01-01 0:00 UTC);
    let task = create(
        &flow,
        principal,
        NewTask {
            project_id: None,
            assignee_id: None,
            title: "Same".to_owned(),
            description: Some("Notes".to_owned()),
            status: Some(Status::Done),
            priority: Some(Priority::High),
            due_date: Some(due),
        },
    )
    .await;
    for p in [
        TaskPatch::default(),
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("  Same  ".to_owned()),
            description: Some(Some("Notes".to_owned())),
            status: Some(Status::Done),
            priority: Some(Priority::High),
            due_date: Some(Some(due)),
        },
    ] {
        clock.tick();
        let unchanged = patch(&flow, principal, &task, p).await;
        assert_eq!(unchanged, task);
    }
}

#[tokio::test]
async fn completed_at_follows_the_done_status() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, principal, new_task("Lifecycle")).await;
    let set_status = |status| TaskPatch {
        status: Some(status),
        ..TaskPatch::default()
    };

    let done_at = clock.tick();
    let done = patch(&flow, principal, &task, set_status(Status::Done)).await;
    assert_eq!(done.completed_at, Some(done_at));

    // done → done (with another change) keeps the completion time.
    clock.tick();
    let renamed = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("Renamed".to_owned()),
            status: Some(Status::Done),
            ..TaskPatch::default()
        },
    )
    .await;
    assert_eq!(renamed.completed_at, Some(done_at));
    assert_eq!(renamed.version, done.version + 1);

    // done → done alone is no change at all.
    clock.tick();
    let same = patch(&flow, principal, &task, set_status(Status::Done)).await;
    assert_eq!(same, renamed);

    // Leaving done clears it, whichever way.
    clock.tick();
    let reopened = patch(&flow, principal, &task, set_status(Status::InProgress)).await;
    assert_eq!(reopened.completed_at, None);

    let done_again_at = clock.tick();
    let done_again = patch(&flow, principal, &task, set_status(Status::Done)).await;
    assert_eq!(done_again.completed_at, Some(done_again_at));

    clock.tick();
    let todo = patch(&flow, principal, &task, set_status(Status::Todo)).await;
    assert_eq!(todo.completed_at, None);

    // Non-done changes never set it.
    clock.tick();
    let progress = patch(&flow, principal, &task, set_status(Status::InProgress)).await;
    assert_eq!(progress.completed_at, None);
}

#[tokio::test]
async fn full_replacement_replaces_every_field() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(
        &flow,
        principal,
        NewTask {
            project_id: None,
            assignee_id: None,
            title: "Old".to_owned(),
            description: Some("Old notes".to_owned()),
            status: Some(Status::Todo),
            priority: Some(Priority::Low),
            due_date: Some(datetime!(2030-01-01 0:00 UTC)),
        },
    )
    .await;
    let now = clock.tick();
    let due = datetime!(2031-06-07 08:09:10 UTC);
    let replaced = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("New".to_owned()),
            description: Some(Some("New notes".to_owned())),
            status: Some(Status::Done),
            priority: Some(Priority::Urgent),
            due_date: Some(Some(due)),
        },
    )
    .await;
    assert_eq!(replaced.id, task.id);
    assert_eq!(replaced.created_by, task.created_by);
    assert_eq!(replaced.project_id, task.project_id);
    assert_eq!(replaced.title.as_str(), "New");
    assert_eq!(
        replaced.description.as_ref().map(|d| d.as_str()),
        Some("New notes")
    );
    assert_eq!(replaced.status, Status::Done);
    assert_eq!(replaced.priority, Priority::Urgent);
    assert_eq!(replaced.due_date, Some(due));
    assert_eq!(replaced.created_at, task.created_at);
    assert_eq!(replaced.updated_at, now);
    assert_eq!(replaced.completed_at, Some(now));
    assert_eq!(replaced.version, 2);

    // Replacing with nulls clears the nullable fields.
    let now = clock.tick();
    let cleared = patch(
        &flow,
        principal,
        &task,
        TaskPatch {
            project_id: None,
            assignee_id: None,
            title: Some("Newer".to_owned()),
            description: Some(None),
            status: Some(Status::Todo),
            priority: Some(Priority::Medium),
            due_date: Some(None),
        },
    )
    .await;
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.due_date, None);
    assert_eq!(cleared.completed_at, None);
    assert_eq!(cleared.updated_at, now);
    assert_eq!(cleared.version, 3);
}

#[tokio::test]
async fn an_invalid_patch_changes_nothing() {
    let (flow, clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, principal, new_task("Keep me")).await;
    clock.tick();
    let cases: [(TaskPatch, &[&str]); 4] = [
        (
            TaskPatch {
                project_id: None,
                assignee_id: None,
                title: Some("   ".to_owned()),
                priority: Some(Priority::Urgent),
                ..TaskPatch::default()
            },
            &["title"],
        ),
        (
            TaskPatch {
                project_id: None,
                assignee_id: None,
                title: Some("t".repeat(201)),
                status: Some(Status::Done),
                ..TaskPatch::default()
            },
            &["title"],
        ),
        (
            TaskPatch {
                project_id: None,
                assignee_id: None,
                description: Some(Some("d".repeat(10_001))),
                due_date: Some(Some(OffsetDateTime::UNIX_EPOCH)),
                ..TaskPatch::default()
            },
            &["description"],
        ),
        (
            TaskPatch {
                project_id: None,
                assignee_id: None,
                title: Some(String::new()),
                description: Some(Some("d".repeat(10_001))),
                ..TaskPatch::default()
            },
            &["description", "title"],
        ),
    ];
    for (p, expected) in cases {
        let result = flow.update_task(principal, task.id, p).await;
        assert_eq!(invalid_update(result), expected);
        assert_eq!(stored(&flow, principal, &task).await, task);
    }
}
