//! Listing: sort orders, filters, keyset pagination, query validation.

use std::cmp::Ordering;
use std::collections::HashSet;

use domain::{
    NewTask, Principal, Priority, SortKey, Status, Task, TaskError, TaskId, TaskPatch, TaskQuery,
    TaskSort,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::harness::{
    Flow, TestClock, create, fields, list_all, new_task, query, signed_in, stored, taskflow,
};

fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

fn sorted(key: SortKey, descending: bool) -> TaskSort {
    TaskSort { key, descending }
}

/// Urgency, written out rather than taken from the domain's `Ord`.
fn urgency(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// The order the API promises, computed independently: by the key (missing
/// due dates after every date), ties by id; descending is the exact reverse.
fn expected_order(tasks: &[Task], sort: TaskSort) -> Vec<TaskId> {
    let mut tasks = tasks.to_vec();
    tasks.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
            SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            SortKey::DueDate => match (a.due_date, b.due_date) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            SortKey::Priority => urgency(a.priority).cmp(&urgency(b.priority)),
        };
        let ordering = by_key.then(a.id.cmp(&b.id));
        if sort.descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    ids(&tasks)
}

/// Walks every page of `query`, checking each page's size and cursor.
async fn walk(flow: &Flow, principal: Principal, mut query: TaskQuery) -> Vec<Vec<Task>> {
    let mut pages = Vec::new();
    loop {
        let page = flow
            .list_tasks(principal, query.clone())
            .await
            .expect("page")
            .page;
        assert!(page.items.len() <= query.limit as usize);
        let next = page.next;
        match next {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    query.limit as usize,
                    "only the last page is short"
                );
                let last = page
                    .items
                    .last()
                    .expect("a page with a next cursor has items");
                assert_eq!(
                    cursor.id, last.id,
                    "the cursor points at the page's last row"
                );
                assert_eq!(cursor.sort, query.sort);
            }
            None => assert!(
                !page.items.is_empty() || pages.is_empty(),
                "no empty trailing page"
            ),
        }
        pages.push(page.items);
        match next {
            Some(cursor) => query.after = Some(cursor),
            None => return pages,
        }
        assert!(pages.len() < 1000, "pagination does not end");
    }
}

/// Twelve tasks with ties in every key, missing due dates, and an update
/// order that differs from the creation order.
async fn varied_tasks(flow: &Flow, clock: &TestClock, principal: Principal) -> Vec<Task> {
    let base = datetime!(2030-01-01 0:00 UTC);
    let specs: [(Priority, Option<i64>, bool); 12] = [
        (Priority::High, Some(3), true),
        (Priority::Low, None, true),
        (Priority::Urgent, Some(1), false), // same createdAt as the previous
        (Priority::Medium, Some(3), true),
        (Priority::Low, Some(2), false),
        (Priority::High, None, false),
        (Priority::Medium, Some(5), true),
        (Priority::Urgent, None, true),
        (Priority::Low, Some(1), true),
        (Priority::Medium, Some(2), false),
        (Priority::High, Some(4), true),
        (Priority::Medium, None, false),
    ];
    let mut created = Vec::new();
    for (i, (priority, due_days, tick)) in specs.into_iter().enumerate() {
        if tick {
            clock.tick();
        }
        created.push(
            create(
                flow,
                principal,
                NewTask {
                    title: format!("Task {i}"),
                    priority: Some(priority),
                    due_date: due_days.map(|d| base + Duration::days(d)),
                    ..NewTask::default()
                },
            )
            .await,
        );
    }
    // Touch some tasks, oldest last; two in the same instant.
    for (i, index) in [9, 2, 6, 0, 4].into_iter().enumerate() {
        if i != 3 {
            clock.tick();
        }
        flow.update_task(
            principal,
            created[index].id,
            TaskPatch {
                description: Some(Some(format!("touched {i}"))),
                ..TaskPatch::default()
            },
        )
        .await
        .expect("update");
    }
    let mut tasks = Vec::new();
    for task in &created {
        tasks.push(stored(flow, principal, task).await);
    }
    tasks
}

#[tokio::test]
async fn default_sort_is_newest_first() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let mut created = Vec::new();
    for i in 0..5 {
        clock.tick();
        created.push(create(&flow, ada, new_task(&format!("Task {i}"))).await);
    }
    let page = flow.list_tasks(ada, query(20)).await.expect("list").page;
    created.reverse();
    assert_eq!(page.items, created);
    assert!(page.next.is_none());
    assert_eq!(TaskQuery::default().sort, sorted(SortKey::CreatedAt, true));
}

#[tokio::test]
async fn every_sort_key_orders_both_ways_with_consistent_ties() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let tasks = varied_tasks(&flow, &clock, ada).await;

    for key in SortKey::ALL {
        let ascending = list_all(
            &flow,
            ada,
            TaskQuery {
                sort: sorted(key, false),
                ..query(100)
            },
        )
        .await;
        let descending = list_all(
            &flow,
            ada,
            TaskQuery {
                sort: sorted(key, true),
                ..query(100)
            },
        )
        .await;
        assert_eq!(
            ids(&ascending),
            expected_order(&tasks, sorted(key, false)),
            "{key:?} ascending"
        );
        assert_eq!(
            ids(&descending),
            expected_order(&tasks, sorted(key, true)),
            "{key:?} descending"
        );
        let mut reversed = ids(&ascending);
        reversed.reverse();
        assert_eq!(
            ids(&descending),
            reversed,
            "{key:?}: descending is the exact reverse"
        );
        assert_eq!(ascending.len(), tasks.len());
    }

    // Spot checks that do not rely on the oracle.
    let by_due = list_all(
        &flow,
        ada,
        TaskQuery {
            sort: sorted(SortKey::DueDate, false),
            ..query(100)
        },
    )
    .await;
    assert!(by_due[..8].iter().all(|t| t.due_date.is_some()));
    assert!(
        by_due[8..].iter().all(|t| t.due_date.is_none()),
        "missing due dates last ascending"
    );
    let by_due = list_all(
        &flow,
        ada,
        TaskQuery {
            sort: sorted(SortKey::DueDate, true),
            ..query(100)
        },
    )
    .await;
    assert!(
        by_due[..4].iter().all(|t| t.due_date.is_none()),
        "missing due dates first descending"
    );
    let by_priority = list_all(
        &flow,
        ada,
        TaskQuery {
            sort: sorted(SortKey::Priority, false),
            ..query(100)
        },
    )
    .await;
    let priorities: Vec<Priority> = by_priority.iter().map(|t| t.priority).collect();
    assert_eq!(
        priorities,
        [
            [Priority::Low; 3].as_slice(),
            &[Priority::Medium; 4],
            &[Priority::High; 3],
            &[Priority::Urgent; 2]
        ]
        .concat()
    );
    let by_updated = list_all(
        &flow,
        ada,
        TaskQuery {
            sort: sorted(SortKey::UpdatedAt, true),
            ..query(100)
        },
    )
    .await;
    assert_eq!(by_updated[0].id, tasks[4].id, "last touched comes first");
}

#[tokio::test]
async fn paging_through_every_sort_matches_the_single_page() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    varied_tasks(&flow, &clock, ada).await;
    for key in SortKey::ALL {
        for descending in [false, true] {
            let sort = sorted(key, descending);
            let whole = list_all(&flow, ada, TaskQuery { sort, ..query(100) }).await;
            for limit in [1, 3, 5] {
                let pages = walk(
                    &flow,
                    ada,
                    TaskQuery {
                        sort,
                        ..query(limit)
                    },
                )
                .await;
                let walked: Vec<Task> = pages.concat();
                assert_eq!(ids(&walked), ids(&whole), "{sort:?} limit {limit}");
            }
        }
    }
}

#[tokio::test]
async fn keyset_pages_yield_every_task_once_in_order() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let mut created = Vec::new();
    for i in 0..25 {
        if i % 3 != 0 {
            clock.tick(); // and some createdAt ties
        }
        created.push(create(&flow, ada, new_task(&format!("Task {i}"))).await);
    }
    let pages = walk(&flow, ada, query(7)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7, 7, 4]);
    let walked: Vec<Task> = pages.concat();
    let unique: HashSet<TaskId> = walked.iter().map(|t| t.id).collect();
    assert_eq!(unique.len(), 25, "no task twice");
    assert_eq!(unique, created.iter().map(|t| t.id).collect(), "every task");
    assert_eq!(
        ids(&walked),
        expected_order(&created, TaskSort::default()),
        "newest first"
    );
}

#[tokio::test]
async fn an_exactly_full_last_page_has_no_next() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    for i in 0..14 {
        clock.tick();
        create(&flow, ada, new_task(&format!("Task {i}"))).await;
    }
    let pages = walk(&flow, ada, query(7)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7]);

    let empty = signed_in(&flow, "bob@example.com").await;
    let page = flow.list_tasks(empty, query(7)).await.expect("list").page;
    assert!(page.items.is_empty());
    assert!(page.next.is_none());
}

#[tokio::test]
async fn pages_are_stable_while_new_tasks_arrive() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    for i in 0..6 {
        clock.tick();
        create(&flow, ada, new_task(&format!("Task {i}"))).await;
    }
    let first = flow.list_tasks(ada, query(3)).await.expect("page 1").page;
    clock.tick();
    let newest = create(&flow, ada, new_task("Newest")).await;
    let second = flow
        .list_tasks(
            ada,
            TaskQuery {
                after: first.next,
                ..query(3)
            },
        )
        .await
        .expect("page 2")
        .page;
    let seen: HashSet<TaskId> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|t| t.id)
        .collect();
    assert_eq!(seen.len(), 6);
    assert!(!seen.contains(&newest.id));
    assert!(second.next.is_none());
}

async fn filtered(flow: &Flow, principal: Principal, query: TaskQuery) -> Vec<String> {
    let mut titles: Vec<String> = list_all(flow, principal, query)
        .await
        .into_iter()
        .map(|t| t.title.as_str().to_owned())
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn filters_select_by_status_priority_and_due_date() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let d1 = datetime!(2030-01-01 0:00 UTC);
    let d2 = datetime!(2030-01-02 0:00 UTC);
    let d3 = datetime!(2030-01-03 0:00 UTC);
    let specs: [(&str, Status, Priority, Option<OffsetDateTime>); 5] = [
        ("a", Status::Todo, Priority::Low, Some(d1)),
        ("b", Status::InProgress, Priority::High, Some(d2)),
        ("c", Status::Done, Priority::High, Some(d3)),
        ("d", Status::Todo, Priority::Urgent, None),
        ("e", Status::Todo, Priority::Low, Some(d2)),
    ];
    for (title, status, priority, due_date) in specs {
        create(
            &flow,
            ada,
            NewTask {
                title: title.to_owned(),
                status: Some(status),
                priority: Some(priority),
                due_date,
                ..NewTask::default()
            },
        )
        .await;
    }
    let q = |f: fn(&mut TaskQuery)| {
        let mut q = query(100);
        f(&mut q);
        q
    };
    assert_eq!(
        filtered(&flow, ada, query(100)).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        filtered(&flow, ada, q(|q| q.status = Some(Status::Todo))).await,
        ["a", "d", "e"]
    );
    assert_eq!(
        filtered(&flow, ada, q(|q| q.status = Some(Status::Done))).await,
        ["c"]
    );
    assert_eq!(
        filtered(&flow, ada, q(|q| q.priority = Some(Priority::High))).await,
        ["b", "c"]
    );
    assert!(
        filtered(&flow, ada, q(|q| q.priority = Some(Priority::Medium)))
            .await
            .is_empty()
    );
    // Strict bounds; tasks without a due date never match a due filter.
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| q.due_before = Some(datetime!(2030-01-02 0:00 UTC)))
        )
        .await,
        ["a"]
    );
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| q.due_after = Some(datetime!(2030-01-02 0:00 UTC)))
        )
        .await,
        ["c"]
    );
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| {
                q.due_after = Some(datetime!(2030-01-01 0:00 UTC));
                q.due_before = Some(datetime!(2030-01-03 0:00 UTC));
            })
        )
        .await,
        ["b", "e"]
    );
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| q.due_after = Some(datetime!(2000-01-01 0:00 UTC)))
        )
        .await,
        ["a", "b", "c", "e"]
    );
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| {
                q.status = Some(Status::Todo);
                q.priority = Some(Priority::Low);
            })
        )
        .await,
        ["a", "e"]
    );
    assert_eq!(
        filtered(
            &flow,
            ada,
            q(|q| {
                q.status = Some(Status::Todo);
                q.due_before = Some(datetime!(2030-01-02 0:00:00.000001 UTC));
            })
        )
        .await,
        ["a", "e"]
    );
}

#[tokio::test]
async fn filters_and_pagination_combine() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let mut high = Vec::new();
    for i in 0..10 {
        clock.tick();
        let priority = if i % 2 == 0 {
            Priority::High
        } else {
            Priority::Low
        };
        let task = create(
            &flow,
            ada,
            NewTask {
                title: format!("Task {i}"),
                priority: Some(priority),
                ..NewTask::default()
            },
        )
        .await;
        if priority == Priority::High {
            high.push(task);
        }
    }
    let pages = walk(
        &flow,
        ada,
        TaskQuery {
            priority: Some(Priority::High),
            ..query(2)
        },
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    high.reverse();
    assert_eq!(ids(&pages.concat()), ids(&high));
}

fn invalid_list(result: Result<domain::TaskList, TaskError>) -> Vec<String> {
    match result {
        Err(TaskError::Invalid(errors)) => fields(&errors).into_iter().map(str::to_owned).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn limit_must_be_between_1_and_100() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    for i in 0..3 {
        create(&flow, ada, new_task(&format!("Task {i}"))).await;
    }
    for limit in [0, 101, u32::MAX] {
        assert_eq!(
            invalid_list(flow.list_tasks(ada, query(limit)).await),
            ["limit"],
            "{limit}"
        );
    }
    let page = flow
        .list_tasks(ada, TaskQuery::default())
        .await
        .expect("the default limit is valid")
        .page;
    assert_eq!(TaskQuery::default().limit, TaskQuery::DEFAULT_LIMIT);
    assert_eq!(page.items.len(), 3);
    let page = flow.list_tasks(ada, query(1)).await.expect("limit 1").page;
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_some());
    let page = flow
        .list_tasks(ada, query(100))
        .await
        .expect("limit 100")
        .page;
    assert_eq!(page.items.len(), 3);
}

#[tokio::test]
async fn a_cursor_from_another_sort_is_invalid() {
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    for i in 0..3 {
        clock.tick();
        create(
            &flow,
            ada,
            NewTask {
                title: format!("Task {i}"),
                due_date: Some(datetime!(2030-01-01 0:00 UTC)),
                ..NewTask::default()
            },
        )
        .await;
    }
    let page = flow.list_tasks(ada, query(1)).await.expect("page").page;
    let cursor = page.next.expect("more pages");
    for other in [
        sorted(SortKey::CreatedAt, false),
        sorted(SortKey::UpdatedAt, true),
        sorted(SortKey::DueDate, true),
        sorted(SortKey::Priority, true),
    ] {
        let result = flow
            .list_tasks(
                ada,
                TaskQuery {
                    sort: other,
                    after: Some(cursor),
                    ..query(1)
                },
            )
            .await;
        assert_eq!(invalid_list(result), ["cursor"], "{other:?}");
    }
    // Both problems at once are both reported.
    let result = flow
        .list_tasks(
            ada,
            TaskQuery {
                sort: sorted(SortKey::Priority, false),
                after: Some(cursor),
                ..query(0)
            },
        )
        .await;
    assert_eq!(invalid_list(result), ["cursor", "limit"]);
    // A cursor whose key does not fit its own sort is refused too.
    let forged = domain::Cursor {
        sort: sorted(SortKey::DueDate, false),
        ..cursor
    };
    let result = flow
        .list_tasks(
            ada,
            TaskQuery {
                sort: sorted(SortKey::DueDate, false),
                after: Some(forged),
                ..query(1)
            },
        )
        .await;
    assert_eq!(invalid_list(result), ["cursor"]);
    // The same sort accepts it.
    flow.list_tasks(
        ada,
        TaskQuery {
            after: Some(cursor),
            ..query(1)
        },
    )
    .await
    .expect("matching cursor");
}
