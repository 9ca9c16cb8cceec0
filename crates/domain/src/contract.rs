//! Behaviour every adapter of a port must show, written once and run
//! against each adapter (memory, PostgreSQL, Redis), so the zero-setup
//! store cannot drift from the real ones.
//!
//! Each check is an async function taking a fresh adapter handle. An adapter
//! crate instantiates them all with [`store_contract!`] (given a future of
//! `(store, guard)`, the guard kept alive for the test) or
//! [`session_store_contract!`] (given a future of the session store), one
//! `#[tokio::test]` each. Checks create their
//! own users with random e-mails, so they may share one database.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use time::{Duration, OffsetDateTime};

use crate::auth::{Session, SessionId, TokenHash};
use crate::ports::{InsertUserError, SessionStore, Store, Tasks, Transaction, Users};
use crate::task::{
    Cursor, Description, NewTask, Priority, SortKey, Status, Task, TaskId, TaskPatch, TaskQuery,
    TaskSort, Title, truncate_to_micros,
};
use crate::user::{Email, PasswordHash, Role, User, UserId, UserName};

/// Names of the store checks, for the macro.
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@tests $make;
            user_round_trip, duplicate_email_is_refused, missing_rows_are_none,
            task_round_trip, accepted_text_round_trips_exactly, due_dates_read_back_in_utc,
            tasks_are_reached_only_through_their_owner, update_and_delete,
            list_filters, list_orders_match_the_domain_in_every_sort, keyset_pages_cover_everything_once,
            committed_transaction_is_visible, dropped_transaction_leaves_no_trace,
            transaction_reads_its_own_writes, concurrent_transactions_do_not_lose_updates, ping_answers,
            project_round_trip, memberships, projects_of_a_user_by_name_with_their_roles,
            members_in_join_order, inbox_of_a_user, a_dropped_transaction_leaves_no_project);
        $crate::store_contract!(@paused $make;
            task_for_update_waits_for_the_transaction_holding_the_row,
            reads_outside_a_transaction_neither_wait_nor_see_uncommitted_writes,
            a_plain_read_in_a_transaction_takes_no_lock);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                // The adapter, and whatever must outlive it (a test database).
                let (store, _keep) = $make.await;
                $crate::contract::store::$name(store).await;
            }
        )*
    };
    // Checks of what waits for what: they get a way to pause (the domain
    // knows no runtime).
    (@paused $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _keep) = $make.await;
                let pause: $crate::contract::Pause = |d| Box::pin(tokio::time::sleep(d));
                $crate::contract::store::$name(store, pause).await;
            }
        )*
    };
}

/// Sleeps for a while, on the adapter's runtime.
pub type Pause = fn(std::time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// `future`'s output, or a panic naming `what` if it takes longer than
/// `limit`: for checks that something does not wait (a hang would
/// otherwise only end with the test runner's patience).
pub async fn within<F: Future>(
    pause: Pause,
    limit: std::time::Duration,
    what: &str,
    future: F,
) -> F::Output {
    let mut future = Box::pin(future);
    let mut timer = pause(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if timer.as_mut().poll(cx).is_ready() {
            panic!("{what}: still waiting after {limit:?}");
        }
        Poll::Pending
    })
    .await
}

#[macro_export]
macro_rules! session_store_contract {
    ($make:expr) => {
        $crate::session_store_contract!(@tests $make;
            created_session_is_active, unknown_session_is_not_active, revoked_session_is_gone,
            rotation_swaps_the_refresh_token, concurrent_rotations_redeem_once,
            expired_session_is_gone, rotation_extends_the_session, sessions_are_independent,
            ping_answers);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let sessions = $make.await;
                $crate::contract::sessions::$name(sessions).await;
            }
        )*
    };
}

/// Polls every future to completion, concurrently, on the caller's task.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Both futures' outputs, polled concurrently on the caller's task.
pub async fn join_two<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none()
            && let Poll::Ready(value) = a.as_mut().poll(cx)
        {
            out_a = Some(value);
        }
        if out_b.is_none()
            && let Poll::Ready(value) = b.as_mut().poll(cx)
        {
            out_b = Some(value);
        }
        match (out_a.take(), out_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (out_a, out_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

/// A user with a random e-mail, not yet stored.
pub fn new_user() -> User {
    let id = UserId::generate();
    User {
        id,
        email: Email::parse(&format!("contract-{}@example.com", id.0.simple()))
            .expect("valid e-mail"),
        name: UserName::parse("Contract User").expect("valid name"),
        role: Role::User,
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        created_at: now(),
    }
}

async fn stored_user<S: Store>(store: &S) -> User {
    let user = new_user();
    let mut conn = store.connection().await.expect("connection");
    conn.insert_user(&user).await.expect("insert user");
    user
}

fn task_at(owner: UserId, title: &str, at: OffsetDateTime) -> Task {
    Task::create(
        owner,
        NewTask {
            title: title.into(),
            ..NewTask::default()
        },
        at,
    )
    .expect("valid task")
}

fn query(sort: TaskSort, limit: u32) -> TaskQuery {
    TaskQuery {
        sort,
        limit,
        ..TaskQuery::default()
    }
}

fn all_sorts() -> Vec<TaskSort> {
    SortKey::ALL
        .into_iter()
        .flat_map(|key| [false, true].map(|descending| TaskSort { key, descending }))
        .collect()
}

/// Twelve tasks with ties in every sort key and some without a due date.
async fn varied_tasks<S: Store>(store: &S, owner: UserId) -> Vec<Task> {
    let base = now();
    let mut conn = store.connection().await.expect("connection");
    let mut tasks = Vec::new();
    for i in 0..12_i64 {
        let created = base + Duration::seconds(i / 3);
        let mut task = task_at(owner, &format!("Task {i}"), created);
        task.priority = Priority::ALL[(i % 4) as usize];
        task.status = Status::ALL[(i % 3) as usize];
        task.completed_at = (task.status == Status::Done).then_some(created);
        task.due_date = (i % 4 != 0).then(|| base + Duration::days(i % 3));
        task.updated_at = created + Duration::seconds(i % 2);
        conn.insert_task(&task).await.expect("insert task");
        tasks.push(task);
    }
    tasks
}

pub mod store {
    pub use super::projects::*;
    use super::*;

    pub async fn user_round_trip<S: Store>(store: S) {
        let user = stored_user(&store).await;
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(
            conn.user_by_email(&user.email).await.expect("read"),
            Some(user.clone())
        );
        assert_eq!(conn.user_by_id(user.id).await.expect("read"), Some(user));
    }

    pub async fn duplicate_email_is_refused<S: Store>(store: S) {
        let user = stored_user(&store).await;
        let twin = User {
            id: UserId::generate(),
            ..user.clone()
        };
        let mut conn = store.connection().await.expect("connection");
        assert!(matches!(
            conn.insert_user(&twin).await,
            Err(InsertUserError::EmailTaken)
        ));
        assert_eq!(conn.user_by_id(twin.id).await.expect("read"), None);
    }

    pub async fn missing_rows_are_none<S: Store>(store: S) {
        let mut conn = store.connection().await.expect("connection");
        let email = new_user().email;
        assert_eq!(conn.user_by_email(&email).await.expect("read"), None);
        assert_eq!(
            conn.user_by_id(UserId::generate()).await.expect("read"),
            None
        );
        let owner = UserId::generate();
        assert_eq!(
            conn.task(owner, TaskId::generate()).await.expect("read"),
            None
        );
        assert!(
            conn.list_tasks(owner, &TaskQuery::default())
                .await
                .expect("list")
                .is_empty()
        );
    }

    pub async fn task_round_trip<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let mut task = task_at(owner, "Round trip", now());
        task.description =
            Some(crate::task::Description::parse("δ ünïcode 🦀".into()).expect("valid"));
        task.due_date = Some(now() + Duration::days(3));
        task.status = Status::Done;
        task.completed_at = Some(task.created_at);
        task.priority = Priority::Urgent;
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        assert_eq!(conn.task(owner, task.id).await.expect("read"), Some(task));
    }

    /// Whatever text the domain accepts reads back byte for byte: tabs and
    /// line breaks in descriptions, characters outside the BMP, combining
    /// marks, format characters, and the maximum lengths in multi-byte
    /// characters.
    pub async fn accepted_text_round_trips_exactly<S: Store>(store: S) {
        let mut user = new_user();
        let name = format!("Zoë e\u{301} 🦀 \u{200d}{}", "名".repeat(UserName::MAX_LEN));
        let name = name.chars().take(UserName::MAX_LEN).collect::<String>();
        assert_eq!(name.chars().count(), UserName::MAX_LEN);
        user.name = UserName::parse(&name).expect("a valid name");
        let local = "ü".repeat(Email::MAX_LOCAL_LEN);
        user.email = Email::parse(&format!("{local}@{}.example.com", user.id.0.simple()))
            .expect("a valid e-mail");
        let mut conn = store.connection().await.expect("connection");
        conn.insert_user(&user).await.expect("insert user");
        let read = conn
            .user_by_id(user.id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(read.name.as_str().as_bytes(), name.as_bytes());
        assert_eq!(
            read.email.as_str().as_bytes(),
            user.email.as_str().as_bytes()
        );

        let titles = [
            "𝄞".repeat(Title::MAX_LEN),
            format!(
                "a\u{301}\u{302} \u{feff}\u{200b} \u{202e}rtl\u{202c} {}",
                "x".repeat(150)
            ),
            "名".repeat(Title::MAX_LEN),
        ];
        let descriptions = [
            "line 1\nline 2\r\n\tindented\r".to_owned(),
            "🦀".repeat(Description::MAX_LEN),
            format!(
                "e\u{301}\u{20dd} \u{1f3f3}\u{fe0f}\u{200d}\u{1f308}  {}",
                "\t".repeat(10)
            ),
            String::new(),
            "   ".to_owned(),
        ];
        for (i, description) in descriptions.iter().enumerate() {
            let title = &titles[i % titles.len()];
            let task = Task::create(
                user.id,
                NewTask {
                    title: title.clone(),
                    description: Some(description.clone()),
                    ..NewTask::default()
                },
                now(),
            )
            .expect("the domain accepts this text");
            conn.insert_task(&task).await.expect("insert");
            let read = conn
                .task(user.id, task.id)
                .await
                .expect("read")
                .expect("stored");
            assert_eq!(read.title.as_str().as_bytes(), title.as_bytes());
            assert_eq!(
                read.description.as_ref().map(|d| d.as_str().as_bytes()),
                Some(description.as_bytes())
            );
            assert_eq!(read, task);
        }
    }

    /// A due date given with an offset reads back as the same instant, in
    /// UTC, from every store.
    pub async fn due_dates_read_back_in_utc<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let given = OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(14, 0, 0).expect("a valid offset"));
        let task = Task::create(
            owner,
            NewTask {
                title: "Due".into(),
                due_date: Some(given),
                ..NewTask::default()
            },
            now(),
        )
        .expect("valid");
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        let read = conn
            .task(owner, task.id)
            .await
            .expect("read")
            .expect("stored");
        let due = read.due_date.expect("a due date");
        assert_eq!(due, truncate_to_micros(given), "the same instant");
        assert_eq!(due.offset(), time::UtcOffset::UTC, "in UTC");
        let listed = conn
            .list_tasks(owner, &TaskQuery::default())
            .await
            .expect("list");
        assert_eq!(
            listed
                .iter()
                .map(|t| t.due_date.map(|d| d.offset()))
                .collect::<Vec<_>>(),
            [Some(time::UtcOffset::UTC)]
        );
    }

    pub async fn tasks_are_reached_only_through_their_owner<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let other = stored_user(&store).await.id;
        let task = task_at(owner, "Mine", now());
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        assert_eq!(conn.task(other, task.id).await.expect("read"), None);
        let mut stolen = task.clone();
        stolen.owner_id = other;
        stolen.title = crate::task::Title::parse("Stolen").expect("valid");
        assert!(!conn.update_task(&stolen).await.expect("update"));
        assert!(!conn.delete_task(other, task.id).await.expect("delete"));
        assert!(
            conn.list_tasks(other, &TaskQuery::default())
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(conn.task(owner, task.id).await.expect("read"), Some(task));
    }

    pub async fn update_and_delete<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let mut task = task_at(owner, "Before", now());
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        let patch = TaskPatch {
            title: Some("After".into()),
            status: Some(Status::Done),
            due_date: Some(Some(now() + Duration::hours(5))),
            ..TaskPatch::default()
        };
        assert!(
            task.apply(patch, now() + Duration::seconds(1))
                .expect("valid")
        );
        assert!(conn.update_task(&task).await.expect("update"));
        assert_eq!(
            conn.task(owner, task.id).await.expect("read"),
            Some(task.clone())
        );
        assert!(conn.delete_task(owner, task.id).await.expect("delete"));
        assert!(
            !conn
                .delete_task(owner, task.id)
                .await
                .expect("delete again")
        );
        assert!(!conn.update_task(&task).await.expect("update deleted"));
        assert_eq!(conn.task(owner, task.id).await.expect("read"), None);
    }

    pub async fn list_filters<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let tasks = varied_tasks(&store, owner).await;
        let mut conn = store.connection().await.expect("connection");
        let pivot = tasks[5].due_date.expect("task 5 has a due date");
        let queries = [
            TaskQuery {
                status: Some(Status::Done),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                priority: Some(Priority::High),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                due_before: Some(pivot),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                due_after: Some(pivot),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                status: Some(Status::Todo),
                priority: Some(Priority::Low),
                due_after: Some(pivot - Duration::days(10)),
                ..query(TaskSort::default(), 100)
            },
        ];
        for q in queries {
            let got: Vec<TaskId> = conn
                .list_tasks(owner, &q)
                .await
                .expect("list")
                .iter()
                .map(|t| t.id)
                .collect();
            let mut expected: Vec<&Task> = tasks.iter().filter(|t| q.matches(t)).collect();
            expected.sort_by(|a, b| a.cmp_by(b, q.sort));
            let expected: Vec<TaskId> = expected.iter().map(|t| t.id).collect();
            assert_eq!(got, expected, "{q:?}");
        }
    }

    pub async fn list_orders_match_the_domain_in_every_sort<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let mut tasks = varied_tasks(&store, owner).await;
        let mut conn = store.connection().await.expect("connection");
        for sort in all_sorts() {
            tasks.sort_by(|a, b| a.cmp_by(b, sort));
            let got = conn
                .list_tasks(owner, &query(sort, 100))
                .await
                .expect("list");
            assert_eq!(
                got.iter().map(|t| t.id).collect::<Vec<_>>(),
                tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
                "{sort:?}"
            );
            assert_eq!(got, tasks, "rows read back whole, {sort:?}");
        }
    }

    pub async fn keyset_pages_cover_everything_once<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let mut tasks = varied_tasks(&store, owner).await;
        let mut conn = store.connection().await.expect("connection");
        for sort in all_sorts() {
            tasks.sort_by(|a, b| a.cmp_by(b, sort));
            let mut seen = Vec::new();
            let mut after: Option<Cursor> = None;
            loop {
                let q = TaskQuery {
                    after,
                    ..query(sort, 5)
                };
                let mut page = conn.list_tasks(owner, &q).await.expect("list");
                assert!(page.len() <= 6, "at most limit + 1 rows");
                let more = page.len() > 5;
                page.truncate(5);
                after = page.last().map(|t| t.cursor(sort));
                seen.extend(page.into_iter().map(|t| t.id));
                if !more {
                    break;
                }
            }
            assert_eq!(
                seen,
                tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
                "{sort:?}"
            );
        }
    }

    pub async fn committed_transaction_is_visible<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let task = task_at(owner, "Committed", now());
        let mut tx = store.begin().await.expect("begin");
        tx.insert_task(&task).await.expect("insert");
        tx.commit().await.expect("commit");
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.task(owner, task.id).await.expect("read"), Some(task));
    }

    pub async fn dropped_transaction_leaves_no_trace<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let mut kept = task_at(owner, "Kept", now());
        store
            .connection()
            .await
            .expect("connection")
            .insert_task(&kept)
            .await
            .expect("insert");
        let original = kept.clone();
        let added = task_at(owner, "Added", now());
        let user = new_user();
        {
            let mut tx = store.begin().await.expect("begin");
            tx.insert_task(&added).await.expect("insert");
            tx.insert_user(&user).await.expect("insert user");
            kept.apply(
                TaskPatch {
                    title: Some("Changed".into()),
                    ..TaskPatch::default()
                },
                now(),
            )
            .expect("valid");
            assert!(tx.update_task(&kept).await.expect("update"));
            // Dropped here without commit.
        }
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.task(owner, added.id).await.expect("read"), None);
        assert_eq!(conn.user_by_id(user.id).await.expect("read"), None);
        assert_eq!(
            conn.task(owner, original.id).await.expect("read"),
            Some(original)
        );
    }

    pub async fn transaction_reads_its_own_writes<S: Store>(store: S) {
        let owner = stored_user(&store).await.id;
        let task = task_at(owner, "Own write", now());
        let mut tx = store.begin().await.expect("begin");
        tx.insert_task(&task).await.expect("insert");
        assert_eq!(
            tx.task(owner, task.id).await.expect("read"),
            Some(task.clone())
        );
        let listed = tx
            .list_tasks(owner, &TaskQuery::default())
            .await
            .expect("list");
        assert_eq!(listed, vec![task]);
        tx.commit().await.expect("commit");
    }

    /// Read-modify-write in transactions: `task_for_update` locks the row,
    /// so concurrent writers queue instead of overwriting each other.
    pub async fn concurrent_transactions_do_not_lose_updates<S: Store>(store: S) {
        const WRITERS: usize = 8;
        let owner = stored_user(&store).await.id;
        let task = task_at(owner, "Contended", now());
        store
            .connection()
            .await
            .expect("connection")
            .insert_task(&task)
            .await
            .expect("insert");
        let writers = (0..WRITERS).map(|i| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.expect("begin");
                let mut current = tx
                    .task_for_update(owner, task.id)
                    .await
                    .expect("read")
                    .expect("exists");
                let patch = TaskPatch {
                    title: Some(format!("Writer {i}")),
                    ..TaskPatch::default()
                };
                current.apply(patch, now()).expect("valid");
                assert!(tx.update_task(&current).await.expect("update"));
                tx.commit().await.expect("commit");
            }
        });
        join_all(writers.collect()).await;
        let last = store
            .connection()
            .await
            .expect("connection")
            .task(owner, task.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            last.version,
            1 + WRITERS as i64,
            "every change counted once"
        );
    }

    pub async fn ping_answers<S: Store>(store: S) {
        store.ping().await.expect("ping");
    }

    /// How long a check lets a wrongly waiting (or wrongly not waiting)
    /// adapter show itself.
    const WHILE: std::time::Duration = std::time::Duration::from_millis(200);
    /// How long a check lets a call that must not wait take at most.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    async fn stored_task<S: Store>(store: &S, title: &str) -> Task {
        let owner = stored_user(store).await.id;
        let task = task_at(owner, title, now());
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        task
    }

    fn retitled(task: &Task, title: &str) -> Task {
        let mut changed = task.clone();
        let patch = TaskPatch {
            title: Some(title.to_owned()),
            ..TaskPatch::default()
        };
        assert!(changed.apply(patch, now()).expect("valid"));
        changed
    }

    /// A second writer's `task_for_update` returns only once the first
    /// writer's transaction has ended, and then sees its change.
    pub async fn task_for_update_waits_for_the_transaction_holding_the_row<S: Store>(
        store: S,
        pause: Pause,
    ) {
        let task = stored_task(&store, "Contended").await;
        let mut first = store.begin().await.expect("begin");
        let locked = first
            .task_for_update(task.owner_id, task.id)
            .await
            .expect("read")
            .expect("exists");
        let order = std::sync::Mutex::new(Vec::new());
        let second = async {
            let mut second = store.begin().await.expect("begin");
            let seen = second
                .task_for_update(task.owner_id, task.id)
                .await
                .expect("read")
                .expect("exists");
            order.lock().expect("order").push("second locked");
            second.commit().await.expect("commit");
            seen
        };
        let first_writes = async {
            pause(WHILE).await;
            let changed = retitled(&locked, "First");
            assert!(first.update_task(&changed).await.expect("update"));
            order.lock().expect("order").push("first committed");
            first.commit().await.expect("commit");
        };
        let (seen, ()) = join_two(second, first_writes).await;
        assert_eq!(
            *order.lock().expect("order"),
            ["first committed", "second locked"],
            "the second writer waited for the first"
        );
        assert_eq!(seen.title.as_str(), "First", "and saw its change");
    }

    /// While a transaction holds a changed row, a connection reads the row
    /// (alone and in a list) as last committed, at once; after the commit,
    /// it reads the change.
    pub async fn reads_outside_a_transaction_neither_wait_nor_see_uncommitted_writes<S: Store>(
        store: S,
        pause: Pause,
    ) {
        let task = stored_task(&store, "Before").await;
        let mut tx = store.begin().await.expect("begin");
        let locked = tx
            .task_for_update(task.owner_id, task.id)
            .await
            .expect("read")
            .expect("exists");
        let changed = retitled(&locked, "After");
        assert!(tx.update_task(&changed).await.expect("update"));
        let mut conn = store.connection().await.expect("connection");
        let read = within(
            pause,
            PATIENCE,
            "a read beside an open transaction",
            async {
                let one = conn.task(task.owner_id, task.id).await.expect("read");
                let all = conn
                    .list_tasks(task.owner_id, &TaskQuery::default())
                    .await
                    .expect("list");
                (one, all)
            },
        )
        .await;
        assert_eq!(
            read,
            (Some(task.clone()), vec![task.clone()]),
            "uncommitted is unseen"
        );
        tx.commit().await.expect("commit");
        let read = conn.task(task.owner_id, task.id).await.expect("read");
        assert_eq!(read, Some(changed), "committed is seen");
    }

    /// `task` in a transaction does not lock: another transaction can lock
    /// the row meanwhile.
    pub async fn a_plain_read_in_a_transaction_takes_no_lock<S: Store>(store: S, pause: Pause) {
        let task = stored_task(&store, "Read").await;
        let mut reader = store.begin().await.expect("begin");
        let read = reader.task(task.owner_id, task.id).await.expect("read");
        assert_eq!(read, Some(task.clone()));
        let mut writer = store.begin().await.expect("begin");
        let locked = within(pause, PATIENCE, "locking a row another only read", async {
            writer.task_for_update(task.owner_id, task.id).await
        })
        .await
        .expect("read");
        assert_eq!(locked, Some(task));
        writer.commit().await.expect("commit");
        reader.commit().await.expect("commit");
    }
}

pub mod projects {
    use super::*;
    use crate::ports::{InsertMemberError, MemberQuery, ProjectQuery, Projects};
    use crate::project::{Member, Project, ProjectRole};

    fn member(project: &Project, user: UserId, role: ProjectRole, at: OffsetDateTime) -> Member {
        Member {
            project_id: project.id,
            user_id: user,
            role,
            joined_at: at,
        }
    }

    /// A project owned by a new user, stored with its owner's membership.
    async fn stored_project<S: Store>(store: &S, name: &str) -> (Project, UserId) {
        let owner = stored_user(store).await.id;
        let project = Project::create(owner, name, Some("About".into()), now()).expect("valid");
        let mut tx = store.begin().await.expect("begin");
        tx.insert_project(&project).await.expect("insert");
        tx.insert_member(&member(&project, owner, ProjectRole::Owner, now()))
            .await
            .expect("insert owner");
        tx.commit().await.expect("commit");
        (project, owner)
    }

    pub async fn project_round_trip<S: Store>(store: S) {
        let (mut project, owner) = stored_project(&store, "Launch").await;
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(
            conn.project(project.id).await.expect("read"),
            Some(project.clone())
        );
        project.archived = true;
        project.version += 1;
        assert!(conn.update_project(&project).await.expect("update"));
        let mut tx = store.begin().await.expect("begin");
        let locked = tx.project_for_update(project.id).await.expect("read");
        assert_eq!(locked, Some(project.clone()));
        assert!(tx.delete_project(project.id).await.expect("delete"));
        tx.commit().await.expect("commit");
        assert_eq!(conn.project(project.id).await.expect("read"), None);
        assert_eq!(
            conn.member(project.id, owner).await.expect("read"),
            None,
            "memberships go with their project"
        );
        assert!(!conn.update_project(&project).await.expect("update"));
        assert!(!conn.delete_project(project.id).await.expect("delete"));
    }

    pub async fn memberships<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Team").await;
        let ada = stored_user(&store).await.id;
        let mut conn = store.connection().await.expect("connection");
        let joined = member(&project, ada, ProjectRole::Viewer, now());
        conn.insert_member(&joined).await.expect("insert");
        assert!(matches!(
            conn.insert_member(&joined).await,
            Err(InsertMemberError::AlreadyMember)
        ));
        assert_eq!(
            conn.member(project.id, ada).await.expect("read"),
            Some(joined.clone())
        );
        assert!(
            conn.update_member_role(project.id, ada, ProjectRole::Admin)
                .await
                .expect("update")
        );
        let read = conn
            .member(project.id, ada)
            .await
            .expect("read")
            .expect("member");
        assert_eq!(read.role, ProjectRole::Admin);
        assert!(conn.delete_member(project.id, ada).await.expect("delete"));
        assert_eq!(conn.member(project.id, ada).await.expect("read"), None);
        assert!(!conn.delete_member(project.id, ada).await.expect("delete"));
        assert!(
            !conn
                .update_member_role(project.id, ada, ProjectRole::Member)
                .await
                .expect("update")
        );
        let stranger = UserId::generate();
        assert_eq!(conn.member(project.id, stranger).await.expect("read"), None);
        // A refused insertion leaves the transaction usable.
        let bob = stored_user(&store).await.id;
        let mut tx = store.begin().await.expect("begin");
        let twice = member(&project, bob, ProjectRole::Member, now());
        tx.insert_member(&twice).await.expect("insert");
        assert!(matches!(
            tx.insert_member(&twice).await,
            Err(InsertMemberError::AlreadyMember)
        ));
        assert_eq!(tx.member(project.id, bob).await.expect("read"), Some(twice));
        tx.commit().await.expect("commit");
        let owner_row = conn
            .member(project.id, owner)
            .await
            .expect("read")
            .expect("owner");
        assert_eq!(owner_row.role, ProjectRole::Owner);
    }

    pub async fn projects_of_a_user_by_name_with_their_roles<S: Store>(store: S) {
        let ada = stored_user(&store).await.id;
        let mut conn = store.connection().await.expect("connection");
        let mut expected = Vec::new();
        for (name, role, archived) in [
            ("beta", ProjectRole::Member, false),
            ("Alpha", ProjectRole::Owner, false),
            ("alpha 2", ProjectRole::Viewer, false),
            ("ALPHA", ProjectRole::Admin, false),
            // Ordered by code point whatever the database's collation:
            // space, hyphen, letter.
            ("a c", ProjectRole::Member, false),
            ("a-c", ProjectRole::Member, false),
            ("ab", ProjectRole::Member, false),
            ("Zed", ProjectRole::Owner, true),
        ] {
            let mut project = Project::create(ada, name, None, now()).expect("valid");
            project.archived = archived;
            conn.insert_project(&project).await.expect("insert");
            conn.insert_member(&member(&project, ada, role, now()))
                .await
                .expect("join");
            if !archived {
                expected.push((project, role));
            }
        }
        // Someone else's project is not listed.
        stored_project(&store, "aardvark").await;
        expected.sort_by_key(|(p, _)| (p.sort_key(), p.id));
        let all = ProjectQuery {
            archived: false,
            after: None,
            limit: 100,
        };
        assert_eq!(conn.projects_of(ada, &all).await.expect("list"), expected);
        let names: Vec<String> = expected.iter().map(|(p, _)| p.sort_key()).collect();
        assert_eq!(names[..3], ["a c", "a-c", "ab"]);
        assert_eq!(names[3..5], ["alpha", "alpha"]);
        // Keyset pages of one cover every project once, in order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = ProjectQuery {
                archived: false,
                after: after.clone(),
                limit: 1,
            };
            let rows = conn.projects_of(ada, &page).await.expect("list");
            let (project, role) = rows.first().cloned().expect("a row");
            after = Some((project.sort_key(), project.id));
            seen.push((project, role));
            if rows.len() == 1 {
                break;
            }
        }
        assert_eq!(seen, expected);
        let archived = ProjectQuery {
            archived: true,
            ..all
        };
        let listed = conn.projects_of(ada, &archived).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0.name.as_str(), "Zed");
    }

    pub async fn members_in_join_order<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Crowd").await;
        let mut conn = store.connection().await.expect("connection");
        let start = now();
        let mut expected = vec![
            conn.member(project.id, owner)
                .await
                .expect("read")
                .expect("owner"),
        ];
        for i in 0..4 {
            let user = stored_user(&store).await.id;
            let joined = member(
                &project,
                user,
                ProjectRole::Member,
                start + Duration::seconds(i),
            );
            conn.insert_member(&joined).await.expect("join");
            expected.push(joined);
        }
        expected.sort_by_key(|m| (m.joined_at, m.user_id));
        let all = MemberQuery {
            after: None,
            limit: 100,
        };
        assert_eq!(
            conn.members(project.id, &all).await.expect("list"),
            expected
        );
        let page = MemberQuery {
            after: Some((expected[1].joined_at, expected[1].user_id)),
            limit: 2,
        };
        let rows = conn.members(project.id, &page).await.expect("list");
        assert_eq!(rows, expected[2..5], "limit + 1 rows after the cursor");
    }

    pub async fn inbox_of_a_user<S: Store>(store: S) {
        let ada = stored_user(&store).await.id;
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.inbox_of(ada).await.expect("read"), None);
        // A project of ada's own that is not her Inbox.
        let other = Project::create(ada, "Side", None, now()).expect("valid");
        conn.insert_project(&other).await.expect("insert");
        assert_eq!(conn.inbox_of(ada).await.expect("read"), None);
        let inbox = Project::inbox(ada, now());
        conn.insert_project(&inbox).await.expect("insert");
        stored_project(&store, "Not an inbox").await;
        assert_eq!(conn.inbox_of(ada).await.expect("read"), Some(inbox));
    }

    pub async fn a_dropped_transaction_leaves_no_project<S: Store>(store: S) {
        let ada = stored_user(&store).await.id;
        let project = Project::create(ada, "Never", None, now()).expect("valid");
        {
            let mut tx = store.begin().await.expect("begin");
            tx.insert_project(&project).await.expect("insert");
            tx.insert_member(&member(&project, ada, ProjectRole::Owner, now()))
                .await
                .expect("join");
            assert_eq!(
                tx.project(project.id).await.expect("read"),
                Some(project.clone())
            );
        }
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.project(project.id).await.expect("read"), None);
        assert_eq!(conn.member(project.id, ada).await.expect("read"), None);
        let mine = ProjectQuery {
            archived: false,
            after: None,
            limit: 10,
        };
        assert!(conn.projects_of(ada, &mine).await.expect("list").is_empty());
    }
}

pub mod sessions {
    use super::*;

    fn hash(label: &str) -> TokenHash {
        TokenHash(format!("{label}-{}", uuid::Uuid::now_v7().simple()))
    }

    fn session(expires_in: Duration) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            role: Role::User,
            refresh_hash: hash("refresh"),
            expires_at: now() + expires_in,
        }
    }

    pub async fn created_session_is_active<S: SessionStore>(sessions: S) {
        let s = Session {
            role: Role::Admin,
            ..session(Duration::hours(1))
        };
        sessions.create(&s).await.expect("create");
        assert_eq!(
            sessions.active(s.id).await.expect("active"),
            Some((s.user_id, Role::Admin))
        );
    }

    pub async fn unknown_session_is_not_active<S: SessionStore>(sessions: S) {
        assert_eq!(
            sessions
                .active(SessionId::generate())
                .await
                .expect("active"),
            None
        );
        let rotated = sessions
            .rotate(&hash("unknown"), &hash("new"), now() + Duration::hours(1))
            .await;
        assert_eq!(rotated.expect("rotate"), None);
    }

    pub async fn revoked_session_is_gone<S: SessionStore>(sessions: S) {
        let s = session(Duration::hours(1));
        sessions.create(&s).await.expect("create");
        sessions.revoke(s.id).await.expect("revoke");
        assert_eq!(sessions.active(s.id).await.expect("active"), None);
        let rotated = sessions
            .rotate(&s.refresh_hash, &hash("new"), now() + Duration::hours(1))
            .await;
        assert_eq!(
            rotated.expect("rotate"),
            None,
            "a revoked session's refresh token is dead"
        );
        sessions.revoke(s.id).await.expect("revoking twice is fine");
    }

    pub async fn rotation_swaps_the_refresh_token<S: SessionStore>(sessions: S) {
        let s = session(Duration::hours(1));
        sessions.create(&s).await.expect("create");
        let new = hash("new");
        let expires_at = now() + Duration::hours(2);
        let rotated = sessions
            .rotate(&s.refresh_hash, &new, expires_at)
            .await
            .expect("rotate");
        let rotated = rotated.expect("the current token rotates");
        assert_eq!(rotated.id, s.id);
        assert_eq!(rotated.user_id, s.user_id);
        assert_eq!(rotated.refresh_hash, new);
        assert_eq!(rotated.expires_at, expires_at);
        let again = sessions
            .rotate(&s.refresh_hash, &hash("newer"), expires_at)
            .await
            .expect("rotate");
        assert_eq!(again, None, "the old token is spent");
        let next = sessions
            .rotate(&new, &hash("newest"), expires_at)
            .await
            .expect("rotate");
        assert!(next.is_some(), "the new token works once");
        assert_eq!(
            sessions.active(s.id).await.expect("active"),
            Some((s.user_id, s.role))
        );
    }

    pub async fn concurrent_rotations_redeem_once<S: SessionStore>(sessions: S) {
        let s = session(Duration::hours(1));
        sessions.create(&s).await.expect("create");
        let attempts = (0..8).map(|i| {
            let sessions = sessions.clone();
            let old = s.refresh_hash.clone();
            async move {
                sessions
                    .rotate(
                        &old,
                        &hash(&format!("racer{i}")),
                        now() + Duration::hours(1),
                    )
                    .await
                    .expect("rotate")
            }
        });
        let winners = join_all(attempts.collect())
            .await
            .into_iter()
            .flatten()
            .count();
        assert_eq!(winners, 1);
    }

    pub async fn expired_session_is_gone<S: SessionStore>(sessions: S) {
        let s = session(Duration::seconds(-1));
        sessions.create(&s).await.expect("create");
        assert_eq!(sessions.active(s.id).await.expect("active"), None);
        let rotated = sessions
            .rotate(&s.refresh_hash, &hash("new"), now() + Duration::hours(1))
            .await;
        assert_eq!(rotated.expect("rotate"), None);
    }

    pub async fn rotation_extends_the_session<S: SessionStore>(sessions: S) {
        let s = session(Duration::seconds(30));
        sessions.create(&s).await.expect("create");
        let expires_at = now() + Duration::days(30);
        let rotated = sessions
            .rotate(&s.refresh_hash, &hash("new"), expires_at)
            .await
            .expect("rotate");
        assert_eq!(rotated.map(|r| r.expires_at), Some(expires_at));
        assert!(sessions.active(s.id).await.expect("active").is_some());
    }

    pub async fn sessions_are_independent<S: SessionStore>(sessions: S) {
        let a = session(Duration::hours(1));
        let b = Session {
            user_id: a.user_id,
            ..session(Duration::hours(1))
        };
        sessions.create(&a).await.expect("create");
        sessions.create(&b).await.expect("create");
        sessions.revoke(a.id).await.expect("revoke");
        assert_eq!(
            sessions.active(b.id).await.expect("active"),
            Some((b.user_id, b.role))
        );
        let rotated = sessions
            .rotate(&b.refresh_hash, &hash("new"), now() + Duration::hours(1))
            .await;
        assert!(rotated.expect("rotate").is_some());
    }

    pub async fn ping_answers<S: SessionStore>(sessions: S) {
        sessions.ping().await.expect("ping");
    }
}
