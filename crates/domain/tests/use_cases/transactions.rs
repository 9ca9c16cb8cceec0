//! The in-memory store's transactions, and update_task's use of them.

use std::collections::HashSet;

use domain::{
    Clock, Email, Principal, RegisterError, Role, Store, Task, TaskPatch, Tasks, Transaction, User,
    UserId, UserName, Users,
};

use crate::harness::{
    Flow, PASSWORD, create, inbox, new_task, registration, signed_in, stored, taskflow, together,
};

async fn task_for(flow: &Flow, owner: Principal, now: time::OffsetDateTime, title: &str) -> Task {
    let project = inbox(flow, owner.user_id).await.id;
    Task::create(project, owner.user_id, new_task(title), now).expect("valid task")
}

async fn read(flow: &Flow, task: &Task) -> Option<Task> {
    flow.store()
        .connection()
        .await
        .expect("connection")
        .task(task.id)
        .await
        .expect("read")
}

#[tokio::test]
async fn a_dropped_transaction_leaves_no_trace() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let task = task_for(&flow, ada, clock.now(), "Never").await;
    {
        let mut tx = flow.store().begin().await.expect("begin");
        tx.insert_task(&task).await.expect("insert");
        // A transaction reads its own writes.
        let inside = tx.task(task.id).await.expect("read");
        assert_eq!(inside.as_ref(), Some(&task));
    }
    assert_eq!(read(&flow, &task).await, None);
    assert!(matches!(
        flow.task(ada, task.id).await,
        Err(domain::TaskError::NotFound)
    ));
}

#[tokio::test]
async fn a_dropped_transaction_undoes_updates_and_deletes() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let kept = create(&flow, ada, new_task("Kept")).await;
    let changed = create(&flow, ada, new_task("Changed")).await;
    {
        let mut tx = flow.store().begin().await.expect("begin");
        let mut edited = changed.clone();
        edited
            .apply(
                TaskPatch {
                    title: Some("Edited".to_owned()),
                    ..TaskPatch::default()
                },
                clock.tick(),
            )
            .expect("valid patch");
        assert!(tx.update_task(&edited).await.expect("update"));
        assert!(tx.delete_task(kept.id).await.expect("delete"));
        // Several writes to one row, undone in reverse order.
        edited.priority = domain::Priority::Urgent;
        assert!(tx.update_task(&edited).await.expect("update again"));
        drop(tx);
    }
    assert_eq!(read(&flow, &kept).await, Some(kept));
    assert_eq!(read(&flow, &changed).await, Some(changed));
}

#[tokio::test]
async fn a_dropped_transaction_undoes_a_user_insert() {
    let (flow, clock) = taskflow();
    let email = Email::parse("ghost@example.com").expect("valid");
    let ghost = User {
        id: UserId::generate(),
        email: email.clone(),
        name: UserName::parse("Ghost").expect("valid"),
        role: Role::User,
        password_hash: domain::PasswordHash::new("$argon2id$not-a-real-hash".to_owned()),
        created_at: clock.now(),
        disabled: false,
    };
    {
        let mut tx = flow.store().begin().await.expect("begin");
        tx.insert_user(&ghost).await.expect("insert");
    }
    let mut conn = flow.store().connection().await.expect("connection");
    assert_eq!(conn.user_by_email(&email).await.expect("read"), None);
    assert_eq!(conn.user_by_id(ghost.id).await.expect("read"), None);
    // The address is free again.
    let result = flow
        .register(registration("ghost@example.com", PASSWORD, "Ghost"))
        .await;
    assert!(
        !matches!(result, Err(RegisterError::EmailTaken)),
        "{result:?}"
    );
    result.expect("registers");
}

#[tokio::test]
async fn a_committed_transaction_is_visible() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let first = task_for(&flow, ada, clock.tick(), "First").await;
    let second = task_for(&flow, ada, clock.tick(), "Second").await;
    let mut tx = flow.store().begin().await.expect("begin");
    tx.insert_task(&first).await.expect("insert");
    tx.insert_task(&second).await.expect("insert");
    tx.commit().await.expect("commit");

    assert_eq!(read(&flow, &first).await, Some(first.clone()));
    assert_eq!(stored(&flow, ada, &second).await, second);
}

/// `writers` callers each retitle one fresh task at the same time; when
/// `queue_behind_lock` a transaction holds the task's row lock until they
/// have all reached it, so they contend in the worst order. Checks that no update is
/// lost: every caller sees its own version, and the last is 1 + writers.
async fn contend(flow: &Flow, owner: Principal, writers: i64, queue_behind_lock: bool) {
    let task = create(flow, owner, new_task("Contended")).await;
    let updates = (0..writers)
        .map(|i| {
            let flow = flow.clone();
            async move {
                let patch = TaskPatch {
                    title: Some(format!("Title {i}")),
                    ..TaskPatch::default()
                };
                flow.update_task(owner, task.id, patch).await
            }
        })
        .collect();
    let results = if queue_behind_lock {
        let mut blocker = flow.store().begin().await.expect("begin");
        blocker
            .task_for_update(task.id)
            .await
            .expect("lock")
            .expect("exists");
        let release = async move {
            for _ in 0..10_000 {
                tokio::task::yield_now().await;
            }
            drop(blocker);
        };
        tokio::join!(together(updates), release).0
    } else {
        together(updates).await
    };
    let mut versions = HashSet::new();
    for result in results {
        let updated = result.expect("update succeeds");
        assert!(
            versions.insert(updated.version),
            "version {} seen twice",
            updated.version
        );
    }
    let expected: HashSet<i64> = (2..=writers + 1).collect();
    assert_eq!(versions, expected, "each writer saw its own version");
    let last = stored(flow, owner, &task).await;
    assert_eq!(last.version, 1 + writers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_lose_nothing() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    for _ in 0..5 {
        contend(&flow, ada, 20, false).await;
        contend(&flow, ada, 20, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_different_fields_all_land() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, ada, new_task("Fields")).await;
    let due = time::macros::datetime!(2030-01-01 0:00 UTC);
    let patches = [
        TaskPatch {
            title: Some("New title".to_owned()),
            ..TaskPatch::default()
        },
        TaskPatch {
            description: Some(Some("New description".to_owned())),
            ..TaskPatch::default()
        },
        TaskPatch {
            status: Some(domain::Status::InProgress),
            ..TaskPatch::default()
        },
        TaskPatch {
            priority: Some(domain::Priority::Urgent),
            ..TaskPatch::default()
        },
        TaskPatch {
            due_date: Some(Some(due)),
            ..TaskPatch::default()
        },
    ];
    let count = i64::try_from(patches.len()).expect("small");
    let writers = patches
        .into_iter()
        .map(|patch| {
            let flow = flow.clone();
            async move { flow.update_task(ada, task.id, patch).await }
        })
        .collect();
    for result in together(writers).await {
        result.expect("update succeeds");
    }
    let last = stored(&flow, ada, &task).await;
    assert_eq!(last.version, 1 + count);
    assert_eq!(last.title.as_str(), "New title");
    assert_eq!(
        last.description.as_ref().map(|d| d.as_str()),
        Some("New description")
    );
    assert_eq!(last.status, domain::Status::InProgress);
    assert_eq!(last.priority, domain::Priority::Urgent);
    assert_eq!(last.due_date, Some(due));
}
