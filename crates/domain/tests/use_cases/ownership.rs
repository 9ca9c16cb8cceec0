//! A task is reachable only through a project its caller is a member of:
//! another user's Inbox task looks exactly like a missing one.

use domain::{Priority, TaskError, TaskId, TaskPatch};

use crate::harness::{create, list_all, new_task, query, signed_in, stored, taskflow};

#[tokio::test]
async fn another_users_task_is_not_found() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let task = create(&flow, ada, new_task("Ada's")).await;
    let bobs = create(&flow, bob, new_task("Bob's")).await;

    let result = flow.task(bob, task.id).await;
    assert!(matches!(result, Err(TaskError::NotFound)), "{result:?}");

    let result = flow
        .update_task(
            bob,
            task.id,
            TaskPatch {
                priority: Some(Priority::Urgent),
                ..TaskPatch::default()
            },
        )
        .await;
    assert!(matches!(result, Err(TaskError::NotFound)), "{result:?}");

    let result = flow.delete_task(bob, task.id).await;
    assert!(matches!(result, Err(TaskError::NotFound)), "{result:?}");

    let bobs_list = list_all(&flow, bob, query(100)).await;
    assert_eq!(bobs_list, [bobs]);
    let adas_list = list_all(&flow, ada, query(100)).await;
    assert_eq!(
        adas_list,
        std::slice::from_ref(&task),
        "Bob's attempts changed nothing"
    );
    assert_eq!(stored(&flow, ada, &task).await, task);
}

#[tokio::test]
async fn an_invalid_patch_on_another_users_task_is_not_found() {
    // NotFound must not leak that the id exists through a validation error.
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let task = create(&flow, ada, new_task("Ada's")).await;
    let result = flow
        .update_task(
            bob,
            task.id,
            TaskPatch {
                title: Some(String::new()),
                ..TaskPatch::default()
            },
        )
        .await;
    assert!(matches!(result, Err(TaskError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn unknown_id_is_not_found() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    create(&flow, ada, new_task("Exists")).await;
    let missing = TaskId::generate();
    assert!(matches!(
        flow.task(ada, missing).await,
        Err(TaskError::NotFound)
    ));
    assert!(matches!(
        flow.update_task(ada, missing, TaskPatch::default()).await,
        Err(TaskError::NotFound)
    ));
    assert!(matches!(
        flow.delete_task(ada, missing).await,
        Err(TaskError::NotFound)
    ));
}

#[tokio::test]
async fn delete_removes_the_task_once() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, ada, new_task("Doomed")).await;
    let other = create(&flow, ada, new_task("Survivor")).await;

    flow.delete_task(ada, task.id).await.expect("first delete");
    let again = flow.delete_task(ada, task.id).await;
    assert!(matches!(again, Err(TaskError::NotFound)), "{again:?}");
    assert!(matches!(
        flow.task(ada, task.id).await,
        Err(TaskError::NotFound)
    ));
    assert!(matches!(
        flow.update_task(
            ada,
            task.id,
            TaskPatch {
                title: Some("Back?".to_owned()),
                ..TaskPatch::default()
            }
        )
        .await,
        Err(TaskError::NotFound)
    ));
    assert_eq!(list_all(&flow, ada, query(100)).await, [other]);
}
