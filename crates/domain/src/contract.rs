//! Behaviour every adapter of a port must show, written once and run
//! against each adapter (memory, PostgreSQL, Redis), so the zero-setup
//! store cannot drift from the real ones.
//!
//! Each check is an async function taking a fresh adapter handle. An adapter
//! crate instantiates them all with [`store_contract!`] (given a future of
//! `(store, guard)`, the guard kept alive for the test) or
//! [`session_store_contract!`] (given a future of the session store) or
//! [`idempotency_store_contract!`] (likewise), one
//! `#[tokio::test]` each. Checks create their own users (random e-mails),
//! projects and tasks, and look only at those, so they may share one
//! database.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditAction, AuditEntry, AuditId, AuditQuery, Changes, EntityType, RequestId};
use crate::auth::{Session, SessionId, TokenHash};
use crate::ports::{
    Audit, InsertUserError, Projects, SessionStore, Store, Tasks, Transaction, Users,
};
use crate::project::{Member, Project, ProjectId, ProjectRole};
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
            update_and_delete,
            list_filters, list_orders_match_the_domain_in_every_sort, keyset_pages_cover_everything_once,
            a_member_lists_the_tasks_of_their_projects_only, the_project_filter_narrows_the_list,
            the_assignee_filter_narrows_the_list, a_moved_task_changes_listings,
            assigned_tasks_for_update_are_the_users_tasks_in_the_project_in_id_order,
            committed_transaction_is_visible, dropped_transaction_leaves_no_trace,
            transaction_reads_its_own_writes, concurrent_transactions_do_not_lose_updates, ping_answers,
            project_round_trip, memberships, projects_of_a_user_by_name_with_their_roles,
            members_in_join_order_with_email_and_name, inbox_of_a_user,
            a_dropped_transaction_leaves_no_project,
            deleting_a_project_deletes_its_tasks_and_memberships_not_its_audit_entries,
            update_user_changes_name_role_and_disabled_only, user_changes_commit_with_their_transaction,
            users_are_listed_by_id_in_keyset_pages, the_user_search_matches_email_or_name_ignoring_case,
            the_user_search_takes_wildcards_literally,
            audit_entries_round_trip_with_every_value, audit_lists_are_newest_first_ties_by_id,
            audit_keyset_pages_cover_everything_once, activity_is_the_projects_and_history_the_entitys,
            audit_entries_commit_with_their_transaction,
            events_are_numbered_from_one_in_each_project, events_round_trip_with_every_type_and_field,
            events_are_read_in_pages_after_a_seq,
            a_dropped_transaction_appends_nothing_and_gives_its_numbers_back,
            concurrent_appenders_number_the_log_without_gaps, log_bounds_follow_the_head,
            heads_are_each_existing_projects_last_seq, appending_to_a_missing_project_fails, events_outlive_their_project,
            pruning_removes_older_events_of_every_project);
        $crate::store_contract!(@paused $make;
            task_for_update_waits_for_the_transaction_holding_the_row,
            assigned_tasks_for_update_locks_them,
            user_for_update_waits_for_the_transaction_holding_the_row,
            reads_outside_a_transaction_neither_wait_nor_see_uncommitted_writes,
            a_plain_read_in_a_transaction_takes_no_lock,
            appended_events_are_seen_by_others_only_at_commit, a_snapshot_reads_committed_data);
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
            revoke_all_ends_every_session_of_the_user_only,
            a_session_created_after_revoke_all_is_active, ping_answers);
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

/// The idempotency-store checks; `$make` gives a fresh store. The checks
/// of leases and retention wait for them to lapse (a few hundred ms).
#[macro_export]
macro_rules! idempotency_store_contract {
    ($make:expr) => {
        $crate::idempotency_store_contract!(@tests $make;
            a_key_is_claimed_once_and_its_body_is_checked, a_completed_key_replays_its_response,
            a_released_key_can_be_claimed_again, release_and_complete_need_the_lease,
            keys_are_scoped_to_the_user_the_operation_and_the_key,
            concurrent_claims_acquire_once, responses_round_trip_byte_for_byte);
        $crate::idempotency_store_contract!(@paused $make;
            a_lapsed_lease_is_taken_over, a_lapsed_lease_with_no_taker_still_completes,
            a_completed_response_expires_after_its_retention);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::contract::idempotency::$name(store).await;
            }
        )*
    };
    (@paused $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                let pause: $crate::contract::Pause = |d| Box::pin(tokio::time::sleep(d));
                $crate::contract::idempotency::$name(store, pause).await;
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
        disabled: false,
    }
}

async fn stored_user<S: Store>(store: &S) -> User {
    let user = new_user();
    let mut conn = store.connection().await.expect("connection");
    conn.insert_user(&user).await.expect("insert user");
    user
}

fn member(project: &Project, user: UserId, role: ProjectRole, at: OffsetDateTime) -> Member {
    Member {
        project_id: project.id,
        user_id: user,
        role,
        joined_at: at,
    }
}

/// A project of `owner`'s, stored with the owner's membership.
async fn stored_project_of<S: Store>(store: &S, owner: UserId, name: &str) -> Project {
    let project = Project::create(owner, name, Some("About".into()), now()).expect("valid");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_project(&project).await.expect("insert");
    tx.insert_member(&member(&project, owner, ProjectRole::Owner, now()))
        .await
        .expect("insert owner");
    tx.commit().await.expect("commit");
    project
}

/// A project owned by a new user, stored with its owner's membership:
/// what a task needs.
async fn stored_project<S: Store>(store: &S, name: &str) -> (Project, UserId) {
    let owner = stored_user(store).await.id;
    (stored_project_of(store, owner, name).await, owner)
}

/// Makes `user` a member of `project`.
async fn join<S: Store>(store: &S, project: &Project, user: UserId, role: ProjectRole) {
    let mut conn = store.connection().await.expect("connection");
    conn.insert_member(&member(project, user, role, now()))
        .await
        .expect("join");
}

fn task_at(project: ProjectId, creator: UserId, title: &str, at: OffsetDateTime) -> Task {
    Task::create(
        project,
        creator,
        NewTask {
            title: title.into(),
            ..NewTask::default()
        },
        at,
    )
    .expect("valid task")
}

/// A task in `project` assigned to `assignee`, stored.
async fn stored_task_in<S: Store>(
    store: &S,
    project: &Project,
    assignee: Option<UserId>,
    title: &str,
) -> Task {
    let mut task = task_at(project.id, project.owner_id, title, now());
    task.assignee_id = assignee;
    let mut conn = store.connection().await.expect("connection");
    conn.insert_task(&task).await.expect("insert task");
    task
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

/// The ids of `tasks` matching `query`, in its order: what a store must
/// list.
fn expected_ids<'a>(tasks: impl IntoIterator<Item = &'a Task>, query: &TaskQuery) -> Vec<TaskId> {
    let mut expected: Vec<&Task> = tasks.into_iter().filter(|t| query.matches(t)).collect();
    expected.sort_by(|a, b| a.cmp_by(b, query.sort));
    expected.iter().map(|t| t.id).collect()
}

async fn listed_ids<S: Store>(store: &S, member: UserId, query: &TaskQuery) -> Vec<TaskId> {
    let mut conn = store.connection().await.expect("connection");
    conn.list_tasks(member, query)
        .await
        .expect("list")
        .iter()
        .map(|t| t.id)
        .collect()
}

/// Twelve tasks in `project` with ties in every sort key, some without a
/// due date, half assigned to the project's owner.
async fn varied_tasks<S: Store>(store: &S, project: &Project) -> Vec<Task> {
    let base = now();
    let mut conn = store.connection().await.expect("connection");
    let mut tasks = Vec::new();
    for i in 0..12_i64 {
        let created = base + Duration::seconds(i / 3);
        let mut task = task_at(project.id, project.owner_id, &format!("Task {i}"), created);
        task.priority = Priority::ALL[(i % 4) as usize];
        task.status = Status::ALL[(i % 3) as usize];
        task.completed_at = (task.status == Status::Done).then_some(created);
        task.due_date = (i % 4 != 0).then(|| base + Duration::days(i % 3));
        task.updated_at = created + Duration::seconds(i % 2);
        task.assignee_id = (i % 2 == 0).then_some(project.owner_id);
        conn.insert_task(&task).await.expect("insert task");
        tasks.push(task);
    }
    tasks
}

/// How long a check lets a wrongly waiting (or wrongly not waiting)
/// adapter show itself.
const WHILE: std::time::Duration = std::time::Duration::from_millis(200);
/// How long a check lets a call that must not wait take at most.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `second`, which must wait for a row lock the transaction `first`
/// resolves to holds, beside `first`, which (after a pause) makes its
/// writes and yields its transaction; this commits it and checks that
/// `second` finished only after that. Returns `second`'s output.
async fn second_waits_for_first<T, X: Transaction>(
    pause: Pause,
    second: impl Future<Output = T>,
    first: impl Future<Output = X>,
) -> T {
    let order = std::sync::Mutex::new(Vec::new());
    let second = async {
        let output = second.await;
        order.lock().expect("order").push("second locked");
        output
    };
    let first = async {
        pause(WHILE).await;
        let tx = first.await;
        // Noted before the commit: once it lands, the second may go on
        // before this future is polled again.
        order.lock().expect("order").push("first committed");
        tx.commit().await.expect("commit");
    };
    let (output, ()) = join_two(second, first).await;
    assert_eq!(
        *order.lock().expect("order"),
        ["first committed", "second locked"],
        "the second waited for the first"
    );
    output
}

/// Adds a keyset page's rows (`limit + 1` at most) but the extra one to
/// `seen`; answers whether there are more.
fn take_page<T>(seen: &mut Vec<T>, rows: Vec<T>, limit: u32) -> bool {
    assert!(rows.len() <= limit as usize + 1, "at most limit + 1 rows");
    let more = rows.len() > limit as usize;
    seen.extend(rows.into_iter().take(limit as usize));
    more
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

pub mod store {
    pub use super::audit::*;
    pub use super::events::*;
    pub use super::projects::*;
    pub use super::users::*;
    use super::*;

    pub async fn user_round_trip<S: Store>(store: S) {
        let user = stored_user(&store).await;
        let disabled = User {
            email: new_user().email,
            id: UserId::generate(),
            role: Role::Admin,
            disabled: true,
            ..user.clone()
        };
        let mut conn = store.connection().await.expect("connection");
        conn.insert_user(&disabled).await.expect("insert");
        assert_eq!(
            conn.user_by_email(&user.email).await.expect("read"),
            Some(user.clone())
        );
        assert_eq!(conn.user_by_id(user.id).await.expect("read"), Some(user));
        assert_eq!(
            conn.user_by_id(disabled.id).await.expect("read"),
            Some(disabled)
        );
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
        let nobody = UserId::generate();
        assert_eq!(conn.user_by_id(nobody).await.expect("read"), None);
        assert_eq!(conn.user_for_update(nobody).await.expect("read"), None);
        let ghost = User {
            id: nobody,
            email,
            ..new_user()
        };
        assert!(!conn.update_user(&ghost).await.expect("update"));
        assert_eq!(conn.task(TaskId::generate()).await.expect("read"), None);
        assert_eq!(
            conn.task_for_update(TaskId::generate())
                .await
                .expect("read"),
            None
        );
        assert!(!conn.delete_task(TaskId::generate()).await.expect("delete"));
        assert!(
            conn.list_tasks(nobody, &TaskQuery::default())
                .await
                .expect("list")
                .is_empty()
        );
        // A user in no project sees no task.
        let loner = stored_user(&store).await.id;
        assert!(
            conn.list_tasks(loner, &TaskQuery::default())
                .await
                .expect("list")
                .is_empty()
        );
        assert!(
            conn.assigned_tasks_for_update(ProjectId::generate(), loner)
                .await
                .expect("list")
                .is_empty()
        );
        let page = AuditQuery {
            after: None,
            limit: 10,
        };
        assert!(
            conn.activity(ProjectId::generate(), &page)
                .await
                .expect("activity")
                .is_empty()
        );
        assert!(
            conn.history(EntityType::Task, uuid::Uuid::now_v7(), &page)
                .await
                .expect("history")
                .is_empty()
        );
    }

    pub async fn task_round_trip<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Round trip").await;
        let assignee = stored_user(&store).await.id;
        join(&store, &project, assignee, ProjectRole::Member).await;
        let mut task = task_at(project.id, owner, "Round trip", now());
        task.description =
            Some(crate::task::Description::parse("δ ünïcode 🦀".into()).expect("valid"));
        task.due_date = Some(now() + Duration::days(3));
        task.status = Status::Done;
        task.completed_at = Some(task.created_at);
        task.priority = Priority::Urgent;
        task.assignee_id = Some(assignee);
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        assert_eq!(conn.task(task.id).await.expect("read"), Some(task.clone()));
        let unassigned = Task {
            assignee_id: None,
            ..task_at(project.id, assignee, "Nobody's", now())
        };
        conn.insert_task(&unassigned).await.expect("insert");
        assert_eq!(
            conn.task(unassigned.id).await.expect("read"),
            Some(unassigned)
        );
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
        let project = stored_project_of(&store, user.id, "Texts").await;

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
                project.id,
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
            let read = conn.task(task.id).await.expect("read").expect("stored");
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
        let (project, owner) = stored_project(&store, "Due").await;
        let given = OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(14, 0, 0).expect("a valid offset"));
        let task = Task::create(
            project.id,
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
        let read = conn.task(task.id).await.expect("read").expect("stored");
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

    pub async fn update_and_delete<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Edits").await;
        let assignee = stored_user(&store).await.id;
        join(&store, &project, assignee, ProjectRole::Viewer).await;
        let mut task = task_at(project.id, owner, "Before", now());
        let mut conn = store.connection().await.expect("connection");
        conn.insert_task(&task).await.expect("insert");
        let patch = TaskPatch {
            title: Some("After".into()),
            status: Some(Status::Done),
            due_date: Some(Some(now() + Duration::hours(5))),
            assignee_id: Some(Some(assignee)),
            ..TaskPatch::default()
        };
        assert!(
            task.apply(patch, now() + Duration::seconds(1))
                .expect("valid")
        );
        assert!(conn.update_task(&task).await.expect("update"));
        assert_eq!(conn.task(task.id).await.expect("read"), Some(task.clone()));
        let unassign = TaskPatch {
            assignee_id: Some(None),
            ..TaskPatch::default()
        };
        assert!(task.apply(unassign, now()).expect("valid"));
        assert!(conn.update_task(&task).await.expect("update"));
        assert_eq!(conn.task(task.id).await.expect("read"), Some(task.clone()));
        assert!(conn.delete_task(task.id).await.expect("delete"));
        assert!(!conn.delete_task(task.id).await.expect("delete again"));
        assert!(!conn.update_task(&task).await.expect("update deleted"));
        assert_eq!(conn.task(task.id).await.expect("read"), None);
    }

    pub async fn list_filters<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Filters").await;
        let tasks = varied_tasks(&store, &project).await;
        let pivot = tasks[1].due_date.expect("task 1 has a due date");
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
                priority: Some(Priority::Medium),
                due_after: Some(pivot - Duration::days(10)),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                assignee_id: Some(owner),
                status: Some(Status::InProgress),
                ..query(TaskSort::default(), 100)
            },
            TaskQuery {
                project_id: Some(project.id),
                priority: Some(Priority::Urgent),
                ..query(TaskSort::default(), 100)
            },
        ];
        for q in queries {
            let expected = expected_ids(&tasks, &q);
            assert!(!expected.is_empty(), "a filter that keeps some: {q:?}");
            assert!(
                expected.len() < tasks.len(),
                "a filter that drops some: {q:?}"
            );
            assert_eq!(listed_ids(&store, owner, &q).await, expected, "{q:?}");
        }
    }

    pub async fn list_orders_match_the_domain_in_every_sort<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Orders").await;
        let mut tasks = varied_tasks(&store, &project).await;
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
        let (project, owner) = stored_project(&store, "Pages").await;
        let mut tasks = varied_tasks(&store, &project).await;
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

    /// A member sees the tasks of every project they are a member of (in
    /// any role, whoever created them), and no other; leaving a project
    /// takes its tasks out of their list.
    pub async fn a_member_lists_the_tasks_of_their_projects_only<S: Store>(store: S) {
        let ada = stored_user(&store).await.id;
        let own = stored_project_of(&store, ada, "Ada's").await;
        let (shared, bob) = stored_project(&store, "Bob's").await;
        join(&store, &shared, ada, ProjectRole::Viewer).await;
        let (foreign, carol) = stored_project(&store, "Carol's").await;
        let mut in_own = Vec::new();
        let mut in_shared = Vec::new();
        for i in 0..2 {
            in_own.push(stored_task_in(&store, &own, None, &format!("Own {i}")).await);
            in_shared
                .push(stored_task_in(&store, &shared, Some(bob), &format!("Shared {i}")).await);
        }
        let in_foreign = vec![stored_task_in(&store, &foreign, None, "Foreign").await];
        let all = TaskQuery::default();
        assert_eq!(
            listed_ids(&store, ada, &all).await,
            expected_ids(in_own.iter().chain(&in_shared), &all)
        );
        assert_eq!(
            listed_ids(&store, bob, &all).await,
            expected_ids(&in_shared, &all)
        );
        assert_eq!(
            listed_ids(&store, carol, &all).await,
            expected_ids(&in_foreign, &all)
        );
        let mut conn = store.connection().await.expect("connection");
        assert!(conn.delete_member(shared.id, ada).await.expect("leave"));
        assert_eq!(
            listed_ids(&store, ada, &all).await,
            expected_ids(&in_own, &all),
            "a project left is not listed"
        );
        assert_eq!(
            listed_ids(&store, bob, &all).await,
            expected_ids(&in_shared, &all)
        );
    }

    /// `query.project_id` lists one of the member's projects; another's
    /// project lists nothing, even when it has tasks.
    pub async fn the_project_filter_narrows_the_list<S: Store>(store: S) {
        let ada = stored_user(&store).await.id;
        let first = stored_project_of(&store, ada, "First").await;
        let second = stored_project_of(&store, ada, "Second").await;
        let (foreign, _) = stored_project(&store, "Foreign").await;
        let mut tasks = Vec::new();
        for project in [&first, &second, &first, &second] {
            tasks.push(stored_task_in(&store, project, None, "Task").await);
        }
        stored_task_in(&store, &foreign, None, "Not Ada's").await;
        for project in [&first, &second] {
            let q = TaskQuery {
                project_id: Some(project.id),
                ..TaskQuery::default()
            };
            let expected = expected_ids(&tasks, &q);
            assert_eq!(expected.len(), 2);
            assert_eq!(listed_ids(&store, ada, &q).await, expected);
        }
        let q = TaskQuery {
            project_id: Some(foreign.id),
            ..TaskQuery::default()
        };
        assert!(listed_ids(&store, ada, &q).await.is_empty());
    }

    /// `query.assignee_id` keeps the tasks assigned to that user, in the
    /// member's projects only, alone or with the project filter.
    pub async fn the_assignee_filter_narrows_the_list<S: Store>(store: S) {
        let (project, ada) = stored_project(&store, "Assigned").await;
        let bob = stored_user(&store).await.id;
        join(&store, &project, bob, ProjectRole::Member).await;
        let adas_other = stored_project_of(&store, ada, "Ada's other").await;
        let tasks = vec![
            stored_task_in(&store, &project, Some(ada), "Ada's").await,
            stored_task_in(&store, &project, Some(bob), "Bob's").await,
            stored_task_in(&store, &project, None, "Nobody's").await,
            stored_task_in(&store, &project, Some(ada), "Ada's too").await,
            stored_task_in(&store, &adas_other, Some(ada), "Ada's elsewhere").await,
        ];
        let assigned = |user: UserId, project: Option<ProjectId>| TaskQuery {
            assignee_id: Some(user),
            project_id: project,
            ..TaskQuery::default()
        };
        let q = assigned(ada, None);
        assert_eq!(listed_ids(&store, ada, &q).await.len(), 3);
        assert_eq!(listed_ids(&store, ada, &q).await, expected_ids(&tasks, &q));
        // Bob is not in Ada's other project: he sees two of her three.
        assert_eq!(
            listed_ids(&store, bob, &q).await,
            expected_ids(&tasks[..4], &q)
        );
        let q = assigned(bob, None);
        assert_eq!(listed_ids(&store, ada, &q).await, vec![tasks[1].id]);
        let q = assigned(ada, Some(adas_other.id));
        assert_eq!(listed_ids(&store, ada, &q).await, vec![tasks[4].id]);
        let q = assigned(bob, Some(adas_other.id));
        assert!(listed_ids(&store, ada, &q).await.is_empty());
    }

    /// Updating a task with another project id moves it: it leaves the
    /// first project's listings and joins the other's.
    pub async fn a_moved_task_changes_listings<S: Store>(store: S) {
        let (from, ada) = stored_project(&store, "From").await;
        let (to, bob) = stored_project(&store, "To").await;
        let carol = stored_user(&store).await.id;
        join(&store, &from, carol, ProjectRole::Member).await;
        join(&store, &to, carol, ProjectRole::Member).await;
        let mut task = stored_task_in(&store, &from, None, "Moving").await;
        let all = TaskQuery::default();
        let only = |project: &Project| TaskQuery {
            project_id: Some(project.id),
            ..TaskQuery::default()
        };
        assert_eq!(listed_ids(&store, ada, &all).await, vec![task.id]);
        assert!(listed_ids(&store, bob, &all).await.is_empty());
        let patch = TaskPatch {
            project_id: Some(to.id),
            ..TaskPatch::default()
        };
        assert!(task.apply(patch, now()).expect("valid"));
        let mut conn = store.connection().await.expect("connection");
        let nowhere = Task {
            project_id: ProjectId::generate(),
            ..task.clone()
        };
        assert!(
            conn.update_task(&nowhere).await.is_err(),
            "a task moves only into a project that is there"
        );
        assert_eq!(
            conn.task(task.id)
                .await
                .expect("read")
                .map(|t| t.project_id),
            Some(from.id)
        );
        assert!(conn.update_task(&task).await.expect("move"));
        assert_eq!(conn.task(task.id).await.expect("read"), Some(task.clone()));
        assert!(listed_ids(&store, ada, &all).await.is_empty());
        assert_eq!(listed_ids(&store, bob, &all).await, vec![task.id]);
        assert!(listed_ids(&store, carol, &only(&from)).await.is_empty());
        assert_eq!(listed_ids(&store, carol, &only(&to)).await, vec![task.id]);
        assert_eq!(
            conn.list_tasks(bob, &all).await.expect("list"),
            vec![task],
            "read back whole"
        );
    }

    /// The tasks of one project assigned to one user, in id order, as this
    /// transaction sees them.
    pub async fn assigned_tasks_for_update_are_the_users_tasks_in_the_project_in_id_order<
        S: Store,
    >(
        store: S,
    ) {
        let (project, owner) = stored_project(&store, "Assigned").await;
        let ada = stored_user(&store).await.id;
        let bob = stored_user(&store).await.id;
        join(&store, &project, ada, ProjectRole::Member).await;
        join(&store, &project, bob, ProjectRole::Member).await;
        let elsewhere = stored_project_of(&store, ada, "Elsewhere").await;
        // Inserted newest id first: the order must come from the store.
        let mut adas: Vec<Task> = (0..3)
            .map(|i| {
                let mut task = task_at(project.id, owner, &format!("Ada {i}"), now());
                task.assignee_id = Some(ada);
                task
            })
            .collect();
        let mut conn = store.connection().await.expect("connection");
        for task in adas.iter().rev() {
            conn.insert_task(task).await.expect("insert");
        }
        let bobs = stored_task_in(&store, &project, Some(bob), "Bob's").await;
        let nobodys = stored_task_in(&store, &project, None, "Nobody's").await;
        stored_task_in(&store, &elsewhere, Some(ada), "Ada's elsewhere").await;
        adas.sort_by_key(|t| t.id);

        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.assigned_tasks_for_update(project.id, ada)
                .await
                .expect("lock"),
            adas
        );
        assert_eq!(
            tx.assigned_tasks_for_update(project.id, bob)
                .await
                .expect("lock"),
            vec![bobs]
        );
        assert!(
            tx.assigned_tasks_for_update(project.id, owner)
                .await
                .expect("lock")
                .is_empty()
        );
        // The transaction's own assignment counts.
        let mut now_adas = nobodys;
        let patch = TaskPatch {
            assignee_id: Some(Some(ada)),
            ..TaskPatch::default()
        };
        assert!(now_adas.apply(patch, now()).expect("valid"));
        assert!(tx.update_task(&now_adas).await.expect("assign"));
        adas.push(now_adas);
        adas.sort_by_key(|t| t.id);
        assert_eq!(
            tx.assigned_tasks_for_update(project.id, ada)
                .await
                .expect("lock"),
            adas
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            conn.assigned_tasks_for_update(project.id, ada)
                .await
                .expect("lock"),
            adas,
            "outside a transaction too"
        );
    }

    pub async fn committed_transaction_is_visible<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Committed").await;
        let task = task_at(project.id, owner, "Committed", now());
        let mut tx = store.begin().await.expect("begin");
        tx.insert_task(&task).await.expect("insert");
        tx.commit().await.expect("commit");
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.task(task.id).await.expect("read"), Some(task));
    }

    pub async fn dropped_transaction_leaves_no_trace<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Dropped").await;
        let mut kept = stored_task_in(&store, &project, None, "Kept").await;
        let original = kept.clone();
        let gone = stored_task_in(&store, &project, None, "Not gone").await;
        let added = task_at(project.id, owner, "Added", now());
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
            assert!(tx.delete_task(gone.id).await.expect("delete"));
            // Dropped here without commit.
        }
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.task(added.id).await.expect("read"), None);
        assert_eq!(conn.user_by_id(user.id).await.expect("read"), None);
        assert_eq!(conn.task(original.id).await.expect("read"), Some(original));
        assert_eq!(conn.task(gone.id).await.expect("read"), Some(gone));
    }

    pub async fn transaction_reads_its_own_writes<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Own writes").await;
        let task = task_at(project.id, owner, "Own write", now());
        let mut tx = store.begin().await.expect("begin");
        tx.insert_task(&task).await.expect("insert");
        assert_eq!(tx.task(task.id).await.expect("read"), Some(task.clone()));
        let listed = tx
            .list_tasks(owner, &TaskQuery::default())
            .await
            .expect("list");
        assert_eq!(listed, vec![task.clone()]);
        assert!(tx.delete_task(task.id).await.expect("delete"));
        assert_eq!(tx.task(task.id).await.expect("read"), None);
        assert!(
            tx.list_tasks(owner, &TaskQuery::default())
                .await
                .expect("list")
                .is_empty()
        );
        tx.commit().await.expect("commit");
    }

    /// Read-modify-write in transactions: `task_for_update` locks the row,
    /// so concurrent writers queue instead of overwriting each other.
    pub async fn concurrent_transactions_do_not_lose_updates<S: Store>(store: S) {
        const WRITERS: usize = 8;
        let (project, _) = stored_project(&store, "Contended").await;
        let task = stored_task_in(&store, &project, None, "Contended").await;
        let writers = (0..WRITERS).map(|i| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.expect("begin");
                let mut current = tx
                    .task_for_update(task.id)
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
            .task(task.id)
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

    async fn stored_task<S: Store>(store: &S, title: &str) -> Task {
        let (project, _) = stored_project(store, title).await;
        stored_task_in(store, &project, None, title).await
    }

    /// Locks the task in a transaction of its own, which then commits.
    async fn lock_task_alone<S: Store>(store: &S, id: TaskId) -> Task {
        let mut tx = store.begin().await.expect("begin");
        let seen = tx.task_for_update(id).await.expect("read").expect("exists");
        tx.commit().await.expect("commit");
        seen
    }

    /// Retitles `task` through `tx`, and hands the transaction back.
    async fn retitle_in<X: Tasks>(mut tx: X, task: &Task, title: &str) -> X {
        assert!(
            tx.update_task(&retitled(task, title))
                .await
                .expect("update")
        );
        tx
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
            .task_for_update(task.id)
            .await
            .expect("read")
            .expect("exists");
        let second = lock_task_alone(&store, task.id);
        let first_writes = retitle_in(first, &locked, "First");
        let seen = second_waits_for_first(pause, second, first_writes).await;
        assert_eq!(seen.title.as_str(), "First", "and saw its change");
    }

    /// `assigned_tasks_for_update` locks every task it returns, as
    /// `task_for_update` does.
    pub async fn assigned_tasks_for_update_locks_them<S: Store>(store: S, pause: Pause) {
        let (project, owner) = stored_project(&store, "Locked").await;
        let first_task = stored_task_in(&store, &project, Some(owner), "One").await;
        let last_task = stored_task_in(&store, &project, Some(owner), "Two").await;
        let mut first = store.begin().await.expect("begin");
        let locked = first
            .assigned_tasks_for_update(project.id, owner)
            .await
            .expect("lock");
        let mut expected = vec![first_task, last_task];
        expected.sort_by_key(|t| t.id);
        assert_eq!(locked, expected);
        let second = lock_task_alone(&store, expected[1].id);
        let first_writes = retitle_in(first, &locked[1], "Changed");
        let seen = second_waits_for_first(pause, second, first_writes).await;
        assert_eq!(seen.title.as_str(), "Changed");
    }

    /// A second `user_for_update` returns only once the transaction that
    /// locked the user has ended, and sees its change.
    pub async fn user_for_update_waits_for_the_transaction_holding_the_row<S: Store>(
        store: S,
        pause: Pause,
    ) {
        let user = stored_user(&store).await;
        let mut first = store.begin().await.expect("begin");
        let mut locked = first
            .user_for_update(user.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(locked, user);
        let second = async {
            let mut second = store.begin().await.expect("begin");
            let seen = second
                .user_for_update(user.id)
                .await
                .expect("read")
                .expect("exists");
            second.commit().await.expect("commit");
            seen
        };
        let first_writes = async move {
            locked.disabled = true;
            assert!(first.update_user(&locked).await.expect("update"));
            first
        };
        let seen = second_waits_for_first(pause, second, first_writes).await;
        assert!(seen.disabled, "and saw its change");
    }

    /// While a transaction holds a changed row, a connection reads the row
    /// (alone and in a list) as last committed, at once; after the commit,
    /// it reads the change.
    pub async fn reads_outside_a_transaction_neither_wait_nor_see_uncommitted_writes<S: Store>(
        store: S,
        pause: Pause,
    ) {
        let task = stored_task(&store, "Before").await;
        let member = task.created_by;
        let mut tx = store.begin().await.expect("begin");
        let locked = tx
            .task_for_update(task.id)
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
                let one = conn.task(task.id).await.expect("read");
                let all = conn
                    .list_tasks(member, &TaskQuery::default())
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
        let read = conn.task(task.id).await.expect("read");
        assert_eq!(read, Some(changed), "committed is seen");
    }

    /// `task` in a transaction does not lock: another transaction can lock
    /// the row meanwhile.
    pub async fn a_plain_read_in_a_transaction_takes_no_lock<S: Store>(store: S, pause: Pause) {
        let task = stored_task(&store, "Read").await;
        let mut reader = store.begin().await.expect("begin");
        let read = reader.task(task.id).await.expect("read");
        assert_eq!(read, Some(task.clone()));
        let mut writer = store.begin().await.expect("begin");
        let locked = within(pause, PATIENCE, "locking a row another only read", async {
            writer.task_for_update(task.id).await
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
    use crate::ports::{InsertMemberError, MemberDetails, MemberQuery, ProjectQuery};

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

    /// Members by join time, then user id, each with the user's e-mail and
    /// current name.
    pub async fn members_in_join_order_with_email_and_name<S: Store>(store: S) {
        let (project, owner) = stored_project(&store, "Crowd").await;
        let mut conn = store.connection().await.expect("connection");
        let owner_user = conn.user_by_id(owner).await.expect("read").expect("owner");
        let details = |member: Member, user: &User| MemberDetails {
            member,
            email: user.email.clone(),
            name: user.name.clone(),
        };
        let owner_member = conn
            .member(project.id, owner)
            .await
            .expect("read")
            .expect("owner");
        let mut expected = vec![details(owner_member, &owner_user)];
        let start = now();
        for i in 0..4 {
            let mut user = new_user();
            user.name = UserName::parse(&format!("Member {i}")).expect("valid");
            conn.insert_user(&user).await.expect("insert user");
            // Two pairs joining at the same instant: ties go by user id.
            let joined = member(
                &project,
                user.id,
                ProjectRole::Member,
                start + Duration::seconds(i / 2),
            );
            conn.insert_member(&joined).await.expect("join");
            expected.push(details(joined, &user));
        }
        expected.sort_by_key(|d| (d.member.joined_at, d.member.user_id));
        let all = MemberQuery {
            after: None,
            limit: 100,
        };
        assert_eq!(
            conn.members(project.id, &all).await.expect("list"),
            expected
        );
        let page = MemberQuery {
            after: Some((expected[1].member.joined_at, expected[1].member.user_id)),
            limit: 2,
        };
        let rows = conn.members(project.id, &page).await.expect("list");
        assert_eq!(rows, expected[2..5], "limit + 1 rows after the cursor");
        // A renamed member is listed under the new name.
        let mut renamed = conn
            .user_by_id(expected[2].member.user_id)
            .await
            .expect("read")
            .expect("user");
        renamed.name = UserName::parse("Renamed").expect("valid");
        assert!(conn.update_user(&renamed).await.expect("rename"));
        expected[2].name = renamed.name;
        assert_eq!(
            conn.members(project.id, &all).await.expect("list"),
            expected
        );
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

    /// Deleting a project deletes its tasks and memberships, nothing of
    /// other projects, and none of its audit entries; no task can be put
    /// in it afterwards.
    pub async fn deleting_a_project_deletes_its_tasks_and_memberships_not_its_audit_entries<
        S: Store,
    >(
        store: S,
    ) {
        let (doomed, owner) = stored_project(&store, "Doomed").await;
        let kept = stored_project_of(&store, owner, "Kept").await;
        let ada = stored_user(&store).await.id;
        join(&store, &doomed, ada, ProjectRole::Member).await;
        join(&store, &kept, ada, ProjectRole::Member).await;
        let doomed_tasks = [
            stored_task_in(&store, &doomed, Some(ada), "Doomed 1").await,
            stored_task_in(&store, &doomed, None, "Doomed 2").await,
        ];
        let kept_task = stored_task_in(&store, &kept, Some(ada), "Kept").await;
        let at = now();
        let project_entry =
            super::audit::entry(owner, EntityType::Project, doomed.id.0, Some(doomed.id), at);
        let task_entry = super::audit::entry(
            owner,
            EntityType::Task,
            doomed_tasks[0].id.0,
            Some(doomed.id),
            at + Duration::seconds(1),
        );
        let mut conn = store.connection().await.expect("connection");
        conn.record(&[project_entry.clone(), task_entry.clone()])
            .await
            .expect("record");

        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.project_for_update(doomed.id)
                .await
                .expect("lock")
                .is_some()
        );
        assert!(tx.delete_project(doomed.id).await.expect("delete"));
        tx.commit().await.expect("commit");

        for task in &doomed_tasks {
            assert_eq!(conn.task(task.id).await.expect("read"), None);
        }
        assert_eq!(conn.member(doomed.id, owner).await.expect("read"), None);
        assert_eq!(conn.member(doomed.id, ada).await.expect("read"), None);
        let all = MemberQuery {
            after: None,
            limit: 10,
        };
        assert!(
            conn.members(doomed.id, &all)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            conn.task(kept_task.id).await.expect("read"),
            Some(kept_task.clone())
        );
        assert!(conn.member(kept.id, ada).await.expect("read").is_some());
        for user in [owner, ada] {
            assert_eq!(
                listed_ids(&store, user, &TaskQuery::default()).await,
                vec![kept_task.id]
            );
        }
        assert!(
            conn.assigned_tasks_for_update(doomed.id, ada)
                .await
                .expect("lock")
                .is_empty()
        );
        let page = AuditQuery {
            after: None,
            limit: 10,
        };
        assert_eq!(
            conn.activity(doomed.id, &page).await.expect("activity"),
            vec![task_entry.clone(), project_entry],
            "the audit entries stay"
        );
        assert_eq!(
            conn.history(EntityType::Task, doomed_tasks[0].id.0, &page)
                .await
                .expect("history"),
            vec![task_entry]
        );
        let orphan = task_at(doomed.id, owner, "Orphan", now());
        assert!(
            conn.insert_task(&orphan).await.is_err(),
            "a task needs its project"
        );
        assert_eq!(conn.task(orphan.id).await.expect("read"), None);
    }
}

pub mod users {
    use super::*;
    use crate::ports::UserQuery;

    /// `update_user` stores the name, the role and the disabled flag, and
    /// nothing else of the user; false for a user that is not there.
    pub async fn update_user_changes_name_role_and_disabled_only<S: Store>(store: S) {
        let user = stored_user(&store).await;
        let other = stored_user(&store).await;
        let mut conn = store.connection().await.expect("connection");
        let changed = User {
            name: UserName::parse("Renamed").expect("valid"),
            role: Role::Admin,
            disabled: true,
            // Not the update's to change:
            email: new_user().email,
            password_hash: PasswordHash::new("$argon2id$other".into()),
            created_at: user.created_at + Duration::days(1),
            ..user.clone()
        };
        assert!(conn.update_user(&changed).await.expect("update"));
        let expected = User {
            name: changed.name.clone(),
            role: Role::Admin,
            disabled: true,
            ..user.clone()
        };
        assert_eq!(
            conn.user_by_id(user.id).await.expect("read"),
            Some(expected.clone())
        );
        assert_eq!(
            conn.user_by_email(&user.email).await.expect("read"),
            Some(expected.clone())
        );
        assert_eq!(
            conn.user_by_email(&changed.email).await.expect("read"),
            None
        );
        assert_eq!(
            conn.user_by_id(other.id).await.expect("read"),
            Some(other),
            "other users are untouched"
        );
        let enabled = User {
            disabled: false,
            role: Role::User,
            ..expected
        };
        assert!(conn.update_user(&enabled).await.expect("update"));
        assert_eq!(
            conn.user_for_update(user.id).await.expect("read"),
            Some(enabled)
        );
        let ghost = User {
            id: UserId::generate(),
            ..new_user()
        };
        assert!(!conn.update_user(&ghost).await.expect("update"));
        assert_eq!(conn.user_by_id(ghost.id).await.expect("read"), None);
    }

    /// A user changed in a transaction: seen by it at once, by others at
    /// commit; nothing of it when the transaction is dropped.
    pub async fn user_changes_commit_with_their_transaction<S: Store>(store: S) {
        let user = stored_user(&store).await;
        let mut conn = store.connection().await.expect("connection");
        let disabled = User {
            disabled: true,
            ..user.clone()
        };
        {
            let mut tx = store.begin().await.expect("begin");
            let locked = tx.user_for_update(user.id).await.expect("read");
            assert_eq!(locked, Some(user.clone()));
            assert!(tx.update_user(&disabled).await.expect("update"));
            assert_eq!(
                tx.user_by_id(user.id).await.expect("read"),
                Some(disabled.clone())
            );
            // Dropped without commit.
        }
        assert_eq!(
            conn.user_by_id(user.id).await.expect("read"),
            Some(user.clone())
        );
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.update_user(&disabled).await.expect("update"));
        assert_eq!(
            tx.user_by_email(&user.email).await.expect("read"),
            Some(disabled.clone())
        );
        assert_eq!(
            conn.user_by_id(user.id).await.expect("read"),
            Some(user.clone()),
            "uncommitted is unseen"
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            conn.user_by_id(user.id).await.expect("read"),
            Some(disabled)
        );
        // A user inserted and changed in one transaction.
        let fresh = new_user();
        let mut tx = store.begin().await.expect("begin");
        tx.insert_user(&fresh).await.expect("insert");
        let promoted = User {
            role: Role::Admin,
            ..fresh.clone()
        };
        assert_eq!(
            tx.user_for_update(fresh.id).await.expect("read"),
            Some(fresh.clone())
        );
        assert!(tx.update_user(&promoted).await.expect("update"));
        assert_eq!(
            tx.user_by_id(fresh.id).await.expect("read"),
            Some(promoted.clone())
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            conn.user_by_id(fresh.id).await.expect("read"),
            Some(promoted)
        );
    }

    /// A word no other check's users contain.
    fn token() -> String {
        format!("tok{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
    }

    /// Stores users with these names (and e-mails: the given local part,
    /// or a random one), in id order.
    async fn stored_users<S: Store>(store: &S, users: &[(&str, Option<&str>)]) -> Vec<User> {
        let mut conn = store.connection().await.expect("connection");
        let mut stored = Vec::new();
        for (name, local) in users {
            let mut user = new_user();
            user.name = UserName::parse(name).expect("valid name");
            if let Some(local) = local {
                user.email = Email::parse(&format!("{local}@{}.example.com", user.id.0.simple()))
                    .expect("valid e-mail");
            }
            conn.insert_user(&user).await.expect("insert user");
            stored.push(user);
        }
        stored.sort_by_key(|u| u.id);
        stored
    }

    async fn search<S: Store>(store: &S, q: &str) -> Vec<User> {
        let mut conn = store.connection().await.expect("connection");
        let query = UserQuery {
            q: Some(q.to_owned()),
            after: None,
            limit: 100,
        };
        conn.list_users(&query).await.expect("list")
    }

    pub async fn users_are_listed_by_id_in_keyset_pages<S: Store>(store: S) {
        let tok = token();
        let names: Vec<String> = (0..5).map(|i| format!("User {i} {tok}")).collect();
        let spec: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
        let users = stored_users(&store, &spec).await;
        let mut conn = store.connection().await.expect("connection");
        // Without q: every user, by id, from just before ours on.
        let before_ours = UserId(uuid::Uuid::from_u128(users[0].id.0.as_u128() - 1));
        let rows = conn
            .list_users(&UserQuery {
                q: None,
                after: Some(before_ours),
                limit: 100,
            })
            .await
            .expect("list");
        assert!(rows.len() <= 101, "at most limit + 1 rows");
        assert_eq!(rows.first(), Some(&users[0]));
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "by id");
        let ours: Vec<&User> = rows.iter().filter(|u| users.contains(u)).collect();
        assert_eq!(ours, users.iter().collect::<Vec<_>>());
        // With q, in pages of two: limit + 1 rows, after the cursor.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let rows = conn
                .list_users(&UserQuery {
                    q: Some(tok.clone()),
                    after,
                    limit: 2,
                })
                .await
                .expect("list");
            assert!(rows.len() <= 3, "at most limit + 1 rows");
            let more = rows.len() > 2;
            seen.extend(rows.into_iter().take(2));
            after = seen.last().map(|u| u.id);
            if !more {
                break;
            }
        }
        assert_eq!(seen, users);
        let last = conn
            .list_users(&UserQuery {
                q: Some(tok),
                after: Some(users[4].id),
                limit: 2,
            })
            .await
            .expect("list");
        assert!(last.is_empty());
    }

    /// `q` matches the e-mail or the name, anywhere in it, ignoring case.
    pub async fn the_user_search_matches_email_or_name_ignoring_case<S: Store>(store: S) {
        let tok = token();
        let upper = tok.to_uppercase();
        let in_email = format!("x.{tok}.y");
        let in_name = format!("Grace {upper} Hopper");
        let at_start = format!("{tok}Ada");
        let users = stored_users(
            &store,
            &[
                ("Email match", Some(&in_email)),
                (&in_name, None),
                (&at_start, None),
                ("No match", None),
            ],
        )
        .await;
        let matching: Vec<User> = users
            .iter()
            .filter(|u| u.name.as_str() != "No match")
            .cloned()
            .collect();
        assert_eq!(matching.len(), 3);
        assert_eq!(search(&store, &tok).await, matching);
        assert_eq!(search(&store, &upper).await, matching);
        let mixed = format!("{}{}", &upper[..3], &tok[3..]);
        assert_eq!(search(&store, &mixed).await, matching);
        let email_only = format!(".{upper}.");
        assert_eq!(
            search(&store, &email_only).await,
            vec![users_named(&users, "Email match")]
        );
        let name_only = format!("{tok} hopper");
        assert_eq!(
            search(&store, &name_only).await,
            vec![users_named(&users, &in_name)]
        );
    }

    fn users_named(users: &[User], name: &str) -> User {
        users
            .iter()
            .find(|u| u.name.as_str() == name)
            .cloned()
            .expect("a user of that name")
    }

    /// `%`, `_` and `\` in `q` are plain characters, not patterns.
    pub async fn the_user_search_takes_wildcards_literally<S: Store>(store: S) {
        let tok = token();
        let names = [
            format!("Rate 100% {tok}"),
            format!("Rate 100x {tok}"),
            format!("snake_{tok}"),
            format!("snakeX{tok}"),
            format!("back\\{tok}"),
            format!("back{tok}"),
        ];
        let spec: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
        let users = stored_users(&store, &spec).await;
        for (q, name) in [
            (format!("0% {tok}"), &names[0]),
            (format!("e_{tok}"), &names[2]),
            (format!("k\\{tok}"), &names[4]),
        ] {
            assert_eq!(
                search(&store, &q).await,
                vec![users_named(&users, name)],
                "{q:?}"
            );
        }
        assert!(search(&store, &format!("%{tok}%_")).await.is_empty());
        assert_eq!(search(&store, &tok).await.len(), names.len());
    }
}

pub mod audit {
    use super::*;
    use crate::audit::{Change, Value};

    /// An entry about `entity_type`'s `entity_id` in `project`, at `at`.
    pub(super) fn entry(
        actor: UserId,
        entity_type: EntityType,
        entity_id: uuid::Uuid,
        project: Option<ProjectId>,
        at: OffsetDateTime,
    ) -> AuditEntry {
        let action = match entity_type {
            EntityType::Project => AuditAction::ProjectUpdated,
            EntityType::Member => AuditAction::MemberRoleChanged,
            EntityType::Task => AuditAction::TaskUpdated,
            EntityType::User => AuditAction::UserDisabled,
        };
        AuditEntry {
            id: AuditId::generate(),
            at,
            actor_id: actor,
            action,
            entity_type,
            entity_id,
            project_id: project,
            changes: Changes::one("title", Value::text("before"), Value::text("after")),
            request_id: RequestId::parse("req-contract"),
        }
    }

    fn page(after: Option<&AuditEntry>, limit: u32) -> AuditQuery {
        AuditQuery {
            after: after.map(|e| (e.at, e.id)),
            limit,
        }
    }

    /// Newest first: `at` descending, then id descending.
    fn newest_first(entries: &mut [AuditEntry]) {
        entries.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    }

    /// Nine entries about one task of `project`: three instants, three
    /// entries at each, their ids in no particular relation to their times.
    fn tied_entries(actor: UserId, project: ProjectId, task: TaskId) -> Vec<AuditEntry> {
        let base = now();
        let mut entries: Vec<AuditEntry> = (0..9)
            .map(|i| {
                entry(
                    actor,
                    EntityType::Task,
                    task.0,
                    Some(project),
                    base - Duration::seconds(i % 3),
                )
            })
            .collect();
        // Recorded in neither id nor time order.
        entries.rotate_left(4);
        entries.swap(0, 7);
        entries
    }

    /// Every field of an entry reads back as recorded, every kind of
    /// value in its changes among them.
    pub async fn audit_entries_round_trip_with_every_value<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Audited").await;
        let task = TaskId::generate();
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Text(String::new()),
            Value::text("null"),
            Value::text("true"),
            Value::text("42"),
            Value::text("\"quoted\" \\ back\tslash\r\nline 🦀 é"),
            Value::text(" {\"not\": [\"json\"]} "),
        ];
        let mut changes = Changes::default();
        for (i, value) in values.iter().enumerate() {
            let next = values[(i + 1) % values.len()].clone();
            changes.0.insert(
                format!("field{i:02}"),
                Change {
                    from: value.clone(),
                    to: next,
                },
            );
        }
        let mut full = entry(actor, EntityType::Task, task.0, Some(project.id), now());
        full.action = AuditAction::TaskCreated;
        full.changes = changes;
        full.request_id = RequestId::parse(&"r".repeat(RequestId::MAX_LEN));
        // A user's entry: no project, no request, no changes.
        let mut bare = entry(actor, EntityType::User, actor.0, None, now());
        bare.request_id = None;
        bare.changes = Changes::default();
        let mut conn = store.connection().await.expect("connection");
        conn.record(&[full.clone(), bare.clone()])
            .await
            .expect("record");
        assert_eq!(
            conn.history(EntityType::Task, task.0, &page(None, 10))
                .await
                .expect("history"),
            vec![full.clone()]
        );
        assert_eq!(
            conn.activity(project.id, &page(None, 10))
                .await
                .expect("activity"),
            vec![full]
        );
        assert_eq!(
            conn.history(EntityType::User, actor.0, &page(None, 10))
                .await
                .expect("history"),
            vec![bare]
        );
        // Every action, recorded and read back: the users' (in no project)
        // in the user's history, the others in the project's activity.
        let (trail, _) = stored_project(&store, "Every action").await;
        let user = stored_user(&store).await.id;
        let (mut of_user, mut in_project): (Vec<AuditEntry>, Vec<AuditEntry>) = AuditAction::ALL
            .into_iter()
            .map(|action| {
                let entity_type = action.entity_type();
                let (entity, project) = match entity_type {
                    EntityType::User => (user.0, None),
                    _ => (uuid::Uuid::now_v7(), Some(trail.id)),
                };
                AuditEntry {
                    action,
                    ..entry(actor, entity_type, entity, project, now())
                }
            })
            .partition(|e| e.entity_type == EntityType::User);
        conn.record(&of_user).await.expect("record");
        conn.record(&in_project).await.expect("record");
        newest_first(&mut of_user);
        newest_first(&mut in_project);
        assert_eq!(
            conn.activity(trail.id, &page(None, 100))
                .await
                .expect("activity"),
            in_project
        );
        assert_eq!(
            conn.history(EntityType::User, user.0, &page(None, 100))
                .await
                .expect("history"),
            of_user
        );
    }

    pub async fn audit_lists_are_newest_first_ties_by_id<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Order").await;
        let task = TaskId::generate();
        let mut entries = tied_entries(actor, project.id, task);
        let mut conn = store.connection().await.expect("connection");
        // One entry a call and all in one: the order is the store's.
        conn.record(&entries[..3]).await.expect("record");
        for entry in &entries[3..] {
            conn.record(std::slice::from_ref(entry))
                .await
                .expect("record");
        }
        newest_first(&mut entries);
        assert_eq!(
            conn.activity(project.id, &page(None, 100))
                .await
                .expect("activity"),
            entries
        );
        assert_eq!(
            conn.history(EntityType::Task, task.0, &page(None, 100))
                .await
                .expect("history"),
            entries
        );
        // limit + 1 rows, strictly after the cursor, also inside a tie.
        let rows = conn
            .activity(project.id, &page(Some(&entries[1]), 3))
            .await
            .expect("activity");
        assert_eq!(rows, entries[2..6]);
    }

    pub async fn audit_keyset_pages_cover_everything_once<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Pages").await;
        let task = TaskId::generate();
        let mut entries = tied_entries(actor, project.id, task);
        let mut conn = store.connection().await.expect("connection");
        conn.record(&entries).await.expect("record");
        newest_first(&mut entries);
        for limit in [1, 2, 4] {
            for history in [false, true] {
                let mut seen: Vec<AuditEntry> = Vec::new();
                loop {
                    let q = page(seen.last(), limit);
                    let rows = if history {
                        conn.history(EntityType::Task, task.0, &q).await
                    } else {
                        conn.activity(project.id, &q).await
                    }
                    .expect("list");
                    if !take_page(&mut seen, rows, limit) {
                        break;
                    }
                }
                assert_eq!(seen, entries, "limit {limit}, history {history}");
            }
        }
    }

    /// `activity` lists the entries of one project (about any entity in
    /// it); `history` those of one entity, told apart by type too.
    pub async fn activity_is_the_projects_and_history_the_entitys<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Mine").await;
        let (other, _) = stored_project(&store, "Other").await;
        let task = TaskId::generate().0;
        let at = now();
        let on_project = entry(
            actor,
            EntityType::Project,
            project.id.0,
            Some(project.id),
            at,
        );
        let on_task = entry(actor, EntityType::Task, task, Some(project.id), at);
        // The member entity's id is the user's; the user's entry is not
        // the member's.
        let on_member = entry(actor, EntityType::Member, actor.0, Some(project.id), at);
        let on_user = entry(actor, EntityType::User, actor.0, None, at);
        let on_other = entry(actor, EntityType::Task, task, Some(other.id), at);
        let mut conn = store.connection().await.expect("connection");
        conn.record(&[
            on_project.clone(),
            on_task.clone(),
            on_member.clone(),
            on_user.clone(),
            on_other.clone(),
        ])
        .await
        .expect("record");
        let mut mine = vec![on_project.clone(), on_task.clone(), on_member.clone()];
        newest_first(&mut mine);
        let all = page(None, 100);
        assert_eq!(
            conn.activity(project.id, &all).await.expect("activity"),
            mine
        );
        assert_eq!(
            conn.activity(other.id, &all).await.expect("activity"),
            vec![on_other.clone()]
        );
        let mut tasks = vec![on_task, on_other];
        newest_first(&mut tasks);
        assert_eq!(
            conn.history(EntityType::Task, task, &all)
                .await
                .expect("history"),
            tasks,
            "an entity's history follows it across projects"
        );
        assert_eq!(
            conn.history(EntityType::Member, actor.0, &all)
                .await
                .expect("history"),
            vec![on_member]
        );
        assert_eq!(
            conn.history(EntityType::User, actor.0, &all)
                .await
                .expect("history"),
            vec![on_user]
        );
        assert_eq!(
            conn.history(EntityType::Project, project.id.0, &all)
                .await
                .expect("history"),
            vec![on_project]
        );
        assert!(
            conn.history(EntityType::Task, project.id.0, &all)
                .await
                .expect("history")
                .is_empty()
        );
    }

    /// Entries recorded in a transaction are seen by it, by others only
    /// once it commits, and never when it is dropped.
    pub async fn audit_entries_commit_with_their_transaction<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Transactional").await;
        let all = page(None, 100);
        let project_entry = || {
            entry(
                actor,
                EntityType::Project,
                project.id.0,
                Some(project.id),
                now(),
            )
        };
        let dropped = project_entry();
        {
            let mut tx = store.begin().await.expect("begin");
            tx.record(std::slice::from_ref(&dropped))
                .await
                .expect("record");
            assert_eq!(
                tx.activity(project.id, &all).await.expect("activity"),
                vec![dropped.clone()]
            );
            // Dropped without commit.
        }
        let mut conn = store.connection().await.expect("connection");
        assert!(
            conn.activity(project.id, &all)
                .await
                .expect("activity")
                .is_empty()
        );
        assert!(
            conn.history(EntityType::Project, project.id.0, &all)
                .await
                .expect("history")
                .is_empty()
        );
        let committed = project_entry();
        let mut tx = store.begin().await.expect("begin");
        tx.record(std::slice::from_ref(&committed))
            .await
            .expect("record");
        assert!(
            conn.activity(project.id, &all)
                .await
                .expect("activity")
                .is_empty(),
            "uncommitted is unseen"
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            conn.activity(project.id, &all).await.expect("activity"),
            vec![committed.clone()]
        );
        assert_eq!(
            conn.history(EntityType::Project, project.id.0, &all)
                .await
                .expect("history"),
            vec![committed]
        );
    }
}

pub mod events {
    use super::*;
    use crate::event::{Event, EventData, EventQuery, EventType, LogBounds, NewEvent};
    use crate::ports::{Events, MemberDetails};

    /// An event about `entity` by `actor` at `at`, with no data, changes
    /// or ids: what numbering and pruning look at.
    pub fn event_at(actor: UserId, entity: uuid::Uuid, at: OffsetDateTime) -> NewEvent {
        NewEvent {
            kind: EventType::TaskUpdated,
            entity_id: entity,
            actor_id: actor,
            at,
            data: None,
            changes: Vec::new(),
            request_id: None,
            client_mutation_id: None,
        }
    }

    /// `n` events by `actor`, now, each about an entity of its own.
    fn fresh_events(actor: UserId, n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|_| event_at(actor, uuid::Uuid::now_v7(), now()))
            .collect()
    }

    /// `events` as `project`'s log must hold them, numbered from `first`.
    fn numbered(project: ProjectId, first: i64, events: &[NewEvent]) -> Vec<Event> {
        (first..)
            .zip(events)
            .map(|(seq, event)| Event {
                project_id: project,
                seq,
                event: event.clone(),
            })
            .collect()
    }

    fn seqs(events: &[Event]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    fn after(after: i64, limit: u32) -> EventQuery {
        EventQuery { after, limit }
    }

    /// Every event of `project` the handle sees, in one page.
    async fn log_of<H: Events>(handle: &mut H, project: ProjectId) -> Vec<Event> {
        let all = handle
            .events(project, &after(0, 1000))
            .await
            .expect("events");
        assert!(all.len() <= 1000, "one page holds the check's events");
        all
    }

    async fn bounds<H: Events>(handle: &mut H, project: ProjectId) -> Option<LogBounds> {
        handle.log_bounds(project).await.expect("log bounds")
    }

    fn bounds_at(head: i64, oldest: Option<i64>) -> Option<LogBounds> {
        Some(LogBounds { head, oldest })
    }

    /// Appends `events` to `project`'s log as a change does: in a
    /// transaction that first locks the project, then commits. Answers
    /// them numbered.
    async fn appended<S: Store>(store: &S, project: ProjectId, events: &[NewEvent]) -> Vec<Event> {
        let mut tx = store.begin().await.expect("begin");
        let locked = tx.project_for_update(project).await.expect("lock");
        assert!(locked.is_some(), "the project is there");
        let numbered = tx.append(project, events).await.expect("append");
        tx.commit().await.expect("commit");
        numbered
    }

    /// Each project's log is numbered 1, 2, 3, … on its own, across
    /// appends; `append` answers the events numbered, and `events` reads
    /// back the same.
    pub async fn events_are_numbered_from_one_in_each_project<S: Store>(store: S) {
        let (first, actor) = stored_project(&store, "First log").await;
        let second = stored_project_of(&store, actor, "Second log").await;
        let (one, two, three) = (
            fresh_events(actor, 2),
            fresh_events(actor, 1),
            fresh_events(actor, 3),
        );
        let mut expected = numbered(first.id, 1, &one);
        assert_eq!(appended(&store, first.id, &one).await, expected);
        let in_second = numbered(second.id, 1, &two);
        assert_eq!(
            appended(&store, second.id, &two).await,
            in_second,
            "another project's log starts at 1 too"
        );
        let more = numbered(first.id, 3, &three);
        assert_eq!(appended(&store, first.id, &three).await, more);
        expected.extend(more);
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(log_of(&mut conn, first.id).await, expected);
        assert_eq!(log_of(&mut conn, second.id).await, in_second);
        // Several appends in one transaction continue one another.
        let mut tx = store.begin().await.expect("begin");
        tx.project_for_update(second.id).await.expect("lock");
        let (four, five) = (fresh_events(actor, 1), fresh_events(actor, 2));
        let numbered_four = tx.append(second.id, &four).await.expect("append");
        let numbered_five = tx.append(second.id, &five).await.expect("append");
        tx.commit().await.expect("commit");
        assert_eq!(seqs(&numbered_four), [2]);
        assert_eq!(seqs(&numbered_five), [3, 4]);
        assert_eq!(seqs(&log_of(&mut conn, second.id).await), [1, 2, 3, 4]);
    }

    /// Every field of an event reads back as appended: every type, every
    /// kind of data (a task, a project, a member, none), its changes, its
    /// request and client mutation ids.
    pub async fn events_round_trip_with_every_type_and_field<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Round trip").await;
        let ada = stored_user(&store).await;
        let at = now();
        let mut task = task_at(project.id, actor, "Zoë \"quoted\" \\ 🦀 é", at);
        task.description = Some(
            Description::parse("Line one\nline two\t{\"not\": [\"json\"]}".into()).expect("valid"),
        );
        task.assignee_id = Some(ada.id);
        task.status = Status::Done;
        task.priority = Priority::ALL[Priority::ALL.len() - 1];
        task.due_date = Some(at + Duration::days(3));
        task.completed_at = Some(at + Duration::microseconds(1));
        task.updated_at = at + Duration::seconds(1);
        task.version = 7;
        let bare_task = task_at(project.id, actor, "Bare", at);
        let mut described = project.clone();
        described.archived = true;
        described.version = 3;
        described.updated_at = at;
        let inbox = Project::inbox(actor, at);
        let member_details = MemberDetails {
            member: member(&project, ada.id, ProjectRole::Viewer, at),
            email: ada.email.clone(),
            name: ada.name.clone(),
        };
        let datas = [
            Some(EventData::Task(task.clone())),
            Some(EventData::Task(bare_task)),
            Some(EventData::Project(described)),
            Some(EventData::Project(inbox)),
            Some(EventData::Member(member_details)),
            None,
        ];
        let changes = [
            Vec::new(),
            vec!["title".to_owned()],
            vec![
                "assigneeId".to_owned(),
                "completedAt".to_owned(),
                "dueDate".to_owned(),
                "status".to_owned(),
            ],
        ];
        let request_ids = [
            None,
            RequestId::parse(&"r".repeat(RequestId::MAX_LEN)),
            RequestId::parse("req-1.A_z"),
        ];
        let client_mutation_ids = [
            RequestId::parse("m"),
            None,
            RequestId::parse(&"M-9._".repeat(RequestId::MAX_LEN / 5)),
        ];
        let events: Vec<NewEvent> = EventType::ALL
            .into_iter()
            .enumerate()
            .map(|(i, kind)| NewEvent {
                kind,
                entity_id: uuid::Uuid::now_v7(),
                actor_id: if i % 2 == 0 { actor } else { ada.id },
                at: at + Duration::microseconds(i as i64),
                data: datas[i % datas.len()].clone(),
                changes: changes[i % changes.len()].clone(),
                request_id: request_ids[i % request_ids.len()],
                client_mutation_id: client_mutation_ids[i % client_mutation_ids.len()],
            })
            .chain(datas.iter().cloned().map(|data| NewEvent {
                data,
                ..event_at(actor, task.id.0, at)
            }))
            .collect();
        let expected = numbered(project.id, 1, &events);
        assert_eq!(appended(&store, project.id, &events).await, expected);
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(log_of(&mut conn, project.id).await, expected);
    }

    /// `events` answers the events after `after`, in seq order, `limit + 1`
    /// at most; pages of any size cover the log once.
    pub async fn events_are_read_in_pages_after_a_seq<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Paged log").await;
        let events = fresh_events(actor, 7);
        let expected = numbered(project.id, 1, &events);
        // One event an append and all the rest in one: the order is the
        // log's.
        appended(&store, project.id, &events[..1]).await;
        appended(&store, project.id, &events[1..]).await;
        let mut conn = store.connection().await.expect("connection");
        for (a, l, want) in [
            (0, 2, &expected[0..3]),
            (2, 2, &expected[2..5]),
            (5, 1, &expected[5..7]),
            (6, 5, &expected[6..7]),
            (7, 5, &expected[7..7]),
            (100, 5, &expected[7..7]),
        ] {
            let rows = conn.events(project.id, &after(a, l)).await.expect("events");
            assert_eq!(rows, want, "after {a}, limit {l}");
        }
        for limit in [1, 2, 3, 10] {
            let mut seen: Vec<Event> = Vec::new();
            loop {
                let from = seen.last().map_or(0, |e| e.seq);
                let rows = conn
                    .events(project.id, &after(from, limit))
                    .await
                    .expect("events");
                if !take_page(&mut seen, rows, limit) {
                    break;
                }
            }
            assert_eq!(seen, expected, "limit {limit}");
        }
        assert!(
            conn.events(ProjectId::generate(), &after(0, 10))
                .await
                .expect("events")
                .is_empty(),
            "no project, no events"
        );
    }

    /// A transaction sees the events it appended; dropped uncommitted, it
    /// leaves none, and the next append takes the numbers it had taken.
    pub async fn a_dropped_transaction_appends_nothing_and_gives_its_numbers_back<S: Store>(
        store: S,
    ) {
        let (project, actor) = stored_project(&store, "Rolled back").await;
        let kept = appended(&store, project.id, &fresh_events(actor, 1)).await;
        let dropped = fresh_events(actor, 2);
        {
            let mut tx = store.begin().await.expect("begin");
            tx.project_for_update(project.id).await.expect("lock");
            let taken = tx.append(project.id, &dropped).await.expect("append");
            assert_eq!(taken, numbered(project.id, 2, &dropped));
            let mut seen = kept.clone();
            seen.extend(taken);
            assert_eq!(log_of(&mut tx, project.id).await, seen, "its own events");
            assert_eq!(bounds(&mut tx, project.id).await, bounds_at(3, Some(1)));
            // Dropped without commit.
        }
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(log_of(&mut conn, project.id).await, kept);
        assert_eq!(bounds(&mut conn, project.id).await, bounds_at(1, Some(1)));
        let next = fresh_events(actor, 2);
        assert_eq!(
            appended(&store, project.id, &next).await,
            numbered(project.id, 2, &next),
            "the numbers given back are taken again"
        );
        let mut expected = kept;
        expected.extend(numbered(project.id, 2, &next));
        assert_eq!(log_of(&mut conn, project.id).await, expected);
    }

    /// Transactions appending to one project at once, each after locking
    /// it, number its log 1..N without a gap or a repeat, each one's events
    /// together, and read back as they were answered.
    pub async fn concurrent_appenders_number_the_log_without_gaps<S: Store>(store: S) {
        const WRITERS: usize = 8;
        const EACH: usize = 3;
        let (project, actor) = stored_project(&store, "Busy log").await;
        let id = project.id;
        let writers = (0..WRITERS).map(|_| {
            let store = store.clone();
            async move {
                let events = fresh_events(actor, EACH);
                let mut tx = store.begin().await.expect("begin");
                tx.project_for_update(id).await.expect("lock");
                let numbered = tx.append(id, &events).await.expect("append");
                tx.commit().await.expect("commit");
                numbered
            }
        });
        let answered = join_all(writers.collect()).await;
        for events in &answered {
            let first = events[0].seq;
            let together: Vec<i64> = (first..).take(EACH).collect();
            assert_eq!(seqs(events), together, "one transaction's events together");
        }
        let mut all: Vec<Event> = answered.into_iter().flatten().collect();
        all.sort_by_key(|e| e.seq);
        let total = (WRITERS * EACH) as i64;
        assert_eq!(seqs(&all), (1..=total).collect::<Vec<_>>());
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(log_of(&mut conn, project.id).await, all);
        assert_eq!(
            bounds(&mut conn, project.id).await,
            bounds_at(total, Some(1))
        );
    }

    /// While a transaction that appended is open, a connection reads the
    /// log (events and bounds) as last committed, at once; after the
    /// commit, it reads the new events.
    pub async fn appended_events_are_seen_by_others_only_at_commit<S: Store>(
        store: S,
        pause: Pause,
    ) {
        let (project, actor) = stored_project(&store, "Open log").await;
        let committed = appended(&store, project.id, &fresh_events(actor, 1)).await;
        let mut tx = store.begin().await.expect("begin");
        tx.project_for_update(project.id).await.expect("lock");
        let pending = tx
            .append(project.id, &fresh_events(actor, 2))
            .await
            .expect("append");
        let mut conn = store.connection().await.expect("connection");
        let read = within(pause, PATIENCE, "reading the log beside an append", async {
            (
                log_of(&mut conn, project.id).await,
                bounds(&mut conn, project.id).await,
            )
        })
        .await;
        assert_eq!(
            read,
            (committed.clone(), bounds_at(1, Some(1))),
            "uncommitted is unseen"
        );
        tx.commit().await.expect("commit");
        let mut all = committed;
        all.extend(pending);
        assert_eq!(
            log_of(&mut conn, project.id).await,
            all,
            "committed is seen"
        );
        assert_eq!(bounds(&mut conn, project.id).await, bounds_at(3, Some(1)));
    }

    /// `log_bounds`: `None` for no project; the head 0 and no oldest
    /// before any event; then the last seq given and the first kept, as
    /// the handle sees them (a transaction's own appends included).
    pub async fn log_bounds_follow_the_head<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Bounded").await;
        let (other, _) = stored_project(&store, "Other").await;
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(bounds(&mut conn, ProjectId::generate()).await, None);
        assert_eq!(bounds(&mut conn, project.id).await, bounds_at(0, None));
        appended(&store, project.id, &fresh_events(actor, 3)).await;
        assert_eq!(bounds(&mut conn, project.id).await, bounds_at(3, Some(1)));
        assert_eq!(
            bounds(&mut conn, other.id).await,
            bounds_at(0, None),
            "another project's log is its own"
        );
        let mut tx = store.begin().await.expect("begin");
        tx.project_for_update(other.id).await.expect("lock");
        tx.append(other.id, &fresh_events(actor, 2))
            .await
            .expect("append");
        assert_eq!(bounds(&mut tx, other.id).await, bounds_at(2, Some(1)));
        tx.commit().await.expect("commit");
        assert_eq!(bounds(&mut conn, other.id).await, bounds_at(2, Some(1)));
        // A project created in a transaction has a log there at once.
        let fresh = Project::create(actor, "Fresh", None, now()).expect("valid");
        let mut tx = store.begin().await.expect("begin");
        tx.insert_project(&fresh).await.expect("insert");
        assert_eq!(bounds(&mut tx, fresh.id).await, bounds_at(0, None));
        let first = fresh_events(actor, 1);
        assert_eq!(
            tx.append(fresh.id, &first).await.expect("append"),
            numbered(fresh.id, 1, &first)
        );
        assert_eq!(bounds(&mut conn, fresh.id).await, None, "not yet committed");
        tx.commit().await.expect("commit");
        assert_eq!(bounds(&mut conn, fresh.id).await, bounds_at(1, Some(1)));
    }

    /// `heads`: each asked-for project that exists with its last seq (0
    /// before any event), in any order; missing ones left out; nothing
    /// for nothing.
    pub async fn heads_are_each_existing_projects_last_seq<S: Store>(store: S) {
        let (busy, actor) = stored_project(&store, "Busy").await;
        let quiet = stored_project_of(&store, actor, "Quiet").await;
        appended(&store, busy.id, &fresh_events(actor, 3)).await;
        let mut conn = store.connection().await.expect("connection");
        let missing = ProjectId::generate();
        let mut heads = conn
            .heads(&[quiet.id, missing, busy.id])
            .await
            .expect("heads");
        heads.sort_by_key(|(_, head)| *head);
        assert_eq!(heads, [(quiet.id, 0), (busy.id, 3)]);
        assert_eq!(conn.heads(&[]).await.expect("heads"), []);
        assert_eq!(conn.heads(&[missing]).await.expect("heads"), []);
    }

    /// Appending to a project that is not there fails, and logs nothing.
    pub async fn appending_to_a_missing_project_fails<S: Store>(store: S) {
        let actor = stored_user(&store).await.id;
        let nowhere = ProjectId::generate();
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.append(nowhere, &fresh_events(actor, 1)).await.is_err());
        drop(tx);
        let mut conn = store.connection().await.expect("connection");
        assert!(log_of(&mut conn, nowhere).await.is_empty());
        assert_eq!(bounds(&mut conn, nowhere).await, None);
    }

    /// A project's events stay when it is deleted (its `project.deleted`
    /// appended first, in the same transaction), readable until pruned;
    /// its log has no bounds any more, and takes no more events.
    pub async fn events_outlive_their_project<S: Store>(store: S) {
        let (project, actor) = stored_project(&store, "Doomed log").await;
        let (kept, _) = stored_project(&store, "Kept log").await;
        let mut expected = appended(&store, project.id, &fresh_events(actor, 2)).await;
        let kept_log = appended(&store, kept.id, &fresh_events(actor, 1)).await;
        let deleted = NewEvent {
            kind: EventType::ProjectDeleted,
            ..event_at(actor, project.id.0, now())
        };
        let mut tx = store.begin().await.expect("begin");
        tx.project_for_update(project.id).await.expect("lock");
        let last = tx
            .append(project.id, std::slice::from_ref(&deleted))
            .await
            .expect("append");
        assert_eq!(last, numbered(project.id, 3, &[deleted]));
        assert!(tx.delete_project(project.id).await.expect("delete"));
        assert_eq!(bounds(&mut tx, project.id).await, None);
        tx.commit().await.expect("commit");
        expected.extend(last);
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.project(project.id).await.expect("read"), None);
        assert_eq!(log_of(&mut conn, project.id).await, expected);
        assert_eq!(
            conn.events(project.id, &after(1, 5)).await.expect("events"),
            expected[1..]
        );
        assert_eq!(bounds(&mut conn, project.id).await, None);
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.append(project.id, &fresh_events(actor, 1))
                .await
                .is_err(),
            "a deleted project's log takes no more events"
        );
        drop(tx);
        assert_eq!(log_of(&mut conn, project.id).await, expected);
        assert_eq!(log_of(&mut conn, kept.id).await, kept_log);
    }

    /// `prune_events` removes the events older than its limit (not those
    /// at it) of every project, answers how many, and leaves the heads:
    /// the oldest kept moves up, numbering goes on. The only check that
    /// logs events this old, so its counts are its own on a shared
    /// database.
    pub async fn pruning_removes_older_events_of_every_project<S: Store>(store: S) {
        let (first, actor) = stored_project(&store, "Pruned").await;
        let second = stored_project_of(&store, actor, "Pruned too").await;
        let long_ago = OffsetDateTime::UNIX_EPOCH + Duration::days(365 * 20);
        let day = |n: i64| long_ago + Duration::days(n);
        let mut conn = store.connection().await.expect("connection");
        // What an interrupted earlier run may have left.
        conn.prune_events(day(100)).await.expect("prune");
        let event = |n| event_at(actor, uuid::Uuid::now_v7(), day(n));
        // In time order: where an instance's clock lags another's, pruning
        // by time could keep a seq and remove the next, which the port
        // does not settle yet.
        let first_events = [
            event(1),
            event(2),
            event(3),
            event_at(actor, uuid::Uuid::now_v7(), now()),
        ];
        let second_events = [event(1), event(5)];
        let first_log = appended(&store, first.id, &first_events).await;
        let second_log = appended(&store, second.id, &second_events).await;
        assert_eq!(
            conn.prune_events(day(1)).await.expect("prune"),
            0,
            "none older"
        );
        assert_eq!(
            conn.prune_events(day(2)).await.expect("prune"),
            2,
            "day 1's in both projects"
        );
        assert_eq!(log_of(&mut conn, first.id).await, first_log[1..]);
        assert_eq!(log_of(&mut conn, second.id).await, second_log[1..]);
        assert_eq!(
            bounds(&mut conn, first.id).await,
            bounds_at(4, Some(2)),
            "the oldest moves up, the head stays"
        );
        assert_eq!(bounds(&mut conn, second.id).await, bounds_at(2, Some(2)));
        assert_eq!(conn.prune_events(day(4)).await.expect("prune"), 2);
        assert_eq!(log_of(&mut conn, first.id).await, first_log[3..]);
        assert_eq!(bounds(&mut conn, first.id).await, bounds_at(4, Some(4)));
        assert_eq!(conn.prune_events(day(100)).await.expect("prune"), 1);
        assert!(log_of(&mut conn, second.id).await.is_empty());
        assert_eq!(
            bounds(&mut conn, second.id).await,
            bounds_at(2, None),
            "the head stays when every event is pruned"
        );
        assert_eq!(conn.prune_events(day(100)).await.expect("prune"), 0);
        let next = fresh_events(actor, 1);
        assert_eq!(
            appended(&store, second.id, &next).await,
            numbered(second.id, 3, &next),
            "numbering goes on after the head"
        );
        assert_eq!(bounds(&mut conn, second.id).await, bounds_at(3, Some(3)));
        assert_eq!(log_of(&mut conn, first.id).await, first_log[3..]);
    }

    /// A snapshot reads what was committed, at once, beside a transaction
    /// that holds the project and has changed it; it takes no lock and
    /// writes nothing. A later snapshot reads the later commit.
    pub async fn a_snapshot_reads_committed_data<S: Store>(store: S, pause: Pause) {
        let (project, owner) = stored_project(&store, "Snapshot").await;
        let task = stored_task_in(&store, &project, None, "Before").await;
        let log = appended(&store, project.id, &fresh_events(owner, 2)).await;
        let mut writer = store.begin().await.expect("begin");
        writer.project_for_update(project.id).await.expect("lock");
        let changed = retitled(&task, "After");
        assert!(writer.update_task(&changed).await.expect("update"));
        let pending = writer
            .append(project.id, &fresh_events(owner, 1))
            .await
            .expect("append");
        let only_project = TaskQuery {
            project_id: Some(project.id),
            ..TaskQuery::default()
        };
        let mut snapshot = store.snapshot().await.expect("snapshot");
        let read = within(pause, PATIENCE, "a snapshot beside a writer", async {
            (
                bounds(&mut snapshot, project.id).await,
                log_of(&mut snapshot, project.id).await,
                snapshot
                    .list_tasks(owner, &only_project)
                    .await
                    .expect("list"),
                snapshot.task(task.id).await.expect("read"),
                snapshot.project(project.id).await.expect("read"),
            )
        })
        .await;
        assert_eq!(
            read,
            (
                bounds_at(2, Some(1)),
                log.clone(),
                vec![task.clone()],
                Some(task.clone()),
                Some(project.clone()),
            )
        );
        snapshot.commit().await.expect("end the snapshot");
        writer.commit().await.expect("commit");
        let mut snapshot = store.snapshot().await.expect("snapshot");
        let mut all = log;
        all.extend(pending);
        assert_eq!(
            bounds(&mut snapshot, project.id).await,
            bounds_at(3, Some(1))
        );
        assert_eq!(log_of(&mut snapshot, project.id).await, all);
        assert_eq!(
            snapshot
                .list_tasks(owner, &only_project)
                .await
                .expect("list"),
            vec![changed.clone()]
        );
        // Reading only: a write is refused.
        assert!(
            snapshot
                .update_task(&retitled(&changed, "Written"))
                .await
                .is_err(),
            "a snapshot does not write"
        );
        drop(snapshot);
        let mut conn = store.connection().await.expect("connection");
        assert_eq!(conn.task(task.id).await.expect("read"), Some(changed));
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

    /// `revoke_all` ends every session of the user, rotated ones too:
    /// none is active, no refresh token of theirs rotates; another user's
    /// session lives on. Revoking a user without sessions, or twice, is
    /// fine.
    pub async fn revoke_all_ends_every_session_of_the_user_only<S: SessionStore>(sessions: S) {
        let first = session(Duration::hours(1));
        let user = first.user_id;
        let longest = Session {
            user_id: user,
            role: Role::Admin,
            ..session(Duration::days(30))
        };
        let rotated = Session {
            user_id: user,
            ..session(Duration::minutes(5))
        };
        let bystander = session(Duration::hours(1));
        for s in [&first, &longest, &rotated, &bystander] {
            sessions.create(s).await.expect("create");
        }
        let current = hash("current");
        let extended = sessions
            .rotate(&rotated.refresh_hash, &current, now() + Duration::days(60))
            .await
            .expect("rotate");
        assert!(extended.is_some());
        sessions.revoke_all(user).await.expect("revoke all");
        for s in [&first, &longest, &rotated] {
            assert_eq!(sessions.active(s.id).await.expect("active"), None);
        }
        for token in [&first.refresh_hash, &longest.refresh_hash, &current] {
            let again = sessions
                .rotate(token, &hash("after"), now() + Duration::hours(1))
                .await
                .expect("rotate");
            assert_eq!(again, None, "a revoked session's refresh token is dead");
        }
        assert_eq!(
            sessions.active(bystander.id).await.expect("active"),
            Some((bystander.user_id, bystander.role)),
            "another user's session lives on"
        );
        let rotated = sessions
            .rotate(
                &bystander.refresh_hash,
                &hash("new"),
                now() + Duration::hours(1),
            )
            .await
            .expect("rotate");
        assert!(rotated.is_some());
        sessions
            .revoke_all(user)
            .await
            .expect("revoking twice is fine");
        sessions
            .revoke_all(UserId::generate())
            .await
            .expect("a user without sessions");
    }

    /// After `revoke_all`, a new session of the user (a login once the
    /// account is enabled again) works, and a later `revoke_all` ends it.
    pub async fn a_session_created_after_revoke_all_is_active<S: SessionStore>(sessions: S) {
        let before = session(Duration::hours(1));
        sessions.create(&before).await.expect("create");
        sessions
            .revoke_all(before.user_id)
            .await
            .expect("revoke all");
        let after = Session {
            user_id: before.user_id,
            ..session(Duration::hours(1))
        };
        sessions.create(&after).await.expect("create");
        assert_eq!(
            sessions.active(after.id).await.expect("active"),
            Some((after.user_id, after.role))
        );
        assert_eq!(sessions.active(before.id).await.expect("active"), None);
        let next = hash("next");
        let rotated = sessions
            .rotate(&after.refresh_hash, &next, now() + Duration::hours(1))
            .await
            .expect("rotate");
        assert!(rotated.is_some());
        // A revoked session and an expired one among them change nothing.
        let expired = Session {
            user_id: before.user_id,
            ..session(Duration::seconds(-1))
        };
        sessions.create(&expired).await.expect("create");
        let revoked = Session {
            user_id: before.user_id,
            ..session(Duration::hours(1))
        };
        sessions.create(&revoked).await.expect("create");
        sessions.revoke(revoked.id).await.expect("revoke");
        sessions
            .revoke_all(before.user_id)
            .await
            .expect("revoke all");
        assert_eq!(sessions.active(after.id).await.expect("active"), None);
        let again = sessions
            .rotate(&next, &hash("later"), now() + Duration::hours(1))
            .await
            .expect("rotate");
        assert_eq!(again, None);
    }

    pub async fn ping_answers<S: SessionStore>(sessions: S) {
        sessions.ping().await.expect("ping");
    }
}

pub mod idempotency {
    use std::time::Duration;

    use super::*;
    use crate::idempotency::{Claim, Fingerprint, IdempotencyKey, IdempotencyStore, LeaseToken};

    /// What a request holds a key for: far longer than any check takes.
    const LEASE: Duration = Duration::from_secs(60);
    const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
    /// A lease or retention that lapses during a check, and a pause that
    /// outlasts it (Redis expires keys to the millisecond, lazily on
    /// access).
    const SHORT: Duration = Duration::from_millis(200);
    const PAST_SHORT: Duration = Duration::from_millis(500);

    fn new_key() -> IdempotencyKey {
        IdempotencyKey {
            user: UserId::generate(),
            operation: "POST /api/v1/tasks".to_owned(),
            key: format!("key-{}", uuid::Uuid::now_v7().simple()),
        }
    }

    fn fingerprint(label: &str) -> Fingerprint {
        Fingerprint(format!("{label}-fingerprint"))
    }

    async fn acquire<I: IdempotencyStore>(
        store: &I,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> LeaseToken {
        match store.claim(key, fingerprint, lease).await.expect("claim") {
            Claim::Acquired(token) => token,
            other => panic!("expected to acquire {key:?}, got {other:?}"),
        }
    }

    async fn claim<I: IdempotencyStore>(
        store: &I,
        key: &IdempotencyKey,
        fp: &Fingerprint,
    ) -> Claim {
        store.claim(key, fp, LEASE).await.expect("claim")
    }

    /// The first claim acquires the key; while it is held, the same body
    /// is in flight and another body a mismatch.
    pub async fn a_key_is_claimed_once_and_its_body_is_checked<I: IdempotencyStore>(store: I) {
        let key = new_key();
        acquire(&store, &key, &fingerprint("a"), LEASE).await;
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::InFlight
        );
        assert_eq!(
            claim(&store, &key, &fingerprint("b")).await,
            Claim::Mismatch
        );
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::InFlight
        );
    }

    /// A completed key answers its response to the same body, a mismatch
    /// to another, as long as it is kept; completing it again with the
    /// same lease (a repeated call) keeps the latest.
    pub async fn a_completed_key_replays_its_response<I: IdempotencyStore>(store: I) {
        let key = new_key();
        let token = acquire(&store, &key, &fingerprint("a"), LEASE).await;
        let stored = store
            .complete(
                &key,
                &fingerprint("a"),
                &token,
                b"first response",
                RETENTION,
            )
            .await
            .expect("complete");
        assert!(stored, "the holder completes its key");
        for _ in 0..2 {
            assert_eq!(
                claim(&store, &key, &fingerprint("a")).await,
                Claim::Completed(b"first response".to_vec())
            );
        }
        assert_eq!(
            claim(&store, &key, &fingerprint("b")).await,
            Claim::Mismatch
        );
        store
            .release(&key, &token)
            .await
            .expect("releasing a completed key");
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::Completed(b"first response".to_vec()),
            "a completed key is not released"
        );
    }

    /// A released key is forgotten: the next claim acquires it, whatever
    /// its body, with a lease of its own.
    pub async fn a_released_key_can_be_claimed_again<I: IdempotencyStore>(store: I) {
        let key = new_key();
        let first = acquire(&store, &key, &fingerprint("a"), LEASE).await;
        store.release(&key, &first).await.expect("release");
        let second = acquire(&store, &key, &fingerprint("b"), LEASE).await;
        assert_ne!(first, second, "every claim has its own lease");
        assert_eq!(
            claim(&store, &key, &fingerprint("b")).await,
            Claim::InFlight
        );
        store.release(&key, &second).await.expect("release");
        store
            .release(&key, &second)
            .await
            .expect("releasing twice is fine");
        store
            .release(&new_key(), &LeaseToken::generate())
            .await
            .expect("releasing an unknown key is fine");
    }

    /// Only the holder's lease releases or completes a held key.
    pub async fn release_and_complete_need_the_lease<I: IdempotencyStore>(store: I) {
        let key = new_key();
        acquire(&store, &key, &fingerprint("a"), LEASE).await;
        assert_powerless(&store, &key, &fingerprint("a"), &LeaseToken::generate()).await;
    }

    /// `token`, not the lease of the request holding `key` for
    /// `fingerprint`, neither releases nor completes it.
    async fn assert_powerless<I: IdempotencyStore>(
        store: &I,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        token: &LeaseToken,
    ) {
        store.release(key, token).await.expect("release");
        assert_eq!(
            claim(store, key, fingerprint).await,
            Claim::InFlight,
            "another lease does not release the key"
        );
        let stored = store
            .complete(key, fingerprint, token, b"stolen", RETENTION)
            .await
            .expect("complete");
        assert!(!stored, "another lease does not complete the key");
        assert_eq!(claim(store, key, fingerprint).await, Claim::InFlight);
    }

    /// One key string under another user or another operation is another
    /// key.
    pub async fn keys_are_scoped_to_the_user_the_operation_and_the_key<I: IdempotencyStore>(
        store: I,
    ) {
        let key = new_key();
        let token = acquire(&store, &key, &fingerprint("a"), LEASE).await;
        store
            .complete(&key, &fingerprint("a"), &token, b"done", RETENTION)
            .await
            .expect("complete");
        let other_user = IdempotencyKey {
            user: UserId::generate(),
            ..key.clone()
        };
        let other_operation = IdempotencyKey {
            operation: "POST /api/v1/projects".to_owned(),
            ..key.clone()
        };
        let other_key = IdempotencyKey {
            key: format!("{}-2", key.key),
            ..key.clone()
        };
        for other in [&other_user, &other_operation, &other_key] {
            acquire(&store, other, &fingerprint("b"), LEASE).await;
        }
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::Completed(b"done".to_vec())
        );
    }

    /// Claims of one key at once: exactly one acquires it, the others see
    /// it in flight.
    pub async fn concurrent_claims_acquire_once<I: IdempotencyStore>(store: I) {
        let key = new_key();
        let claims = (0..8).map(|_| {
            let store = store.clone();
            let key = key.clone();
            async move { claim(&store, &key, &fingerprint("a")).await }
        });
        let claims = join_all(claims.collect()).await;
        let acquired = claims
            .iter()
            .filter(|c| matches!(c, Claim::Acquired(_)))
            .count();
        assert_eq!(acquired, 1, "{claims:?}");
        assert!(
            claims
                .iter()
                .all(|c| matches!(c, Claim::Acquired(_) | Claim::InFlight)),
            "{claims:?}"
        );
    }

    /// A response is kept as given: every byte value, 64 KiB of them.
    pub async fn responses_round_trip_byte_for_byte<I: IdempotencyStore>(store: I) {
        let response: Vec<u8> = (0..64 * 1024).map(|i| (i % 256) as u8).collect();
        let key = new_key();
        let token = acquire(&store, &key, &fingerprint("a"), LEASE).await;
        store
            .complete(&key, &fingerprint("a"), &token, &response, RETENTION)
            .await
            .expect("complete");
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::Completed(response)
        );
        let empty = new_key();
        let token = acquire(&store, &empty, &fingerprint("a"), LEASE).await;
        store
            .complete(&empty, &fingerprint("a"), &token, b"", RETENTION)
            .await
            .expect("complete");
        assert_eq!(
            claim(&store, &empty, &fingerprint("a")).await,
            Claim::Completed(Vec::new()),
            "an empty response is a response"
        );
    }

    /// A holder that died holds the key only until its lease lapses: then
    /// the next claim takes it over, with any body, and the old lease
    /// neither releases nor completes it any more.
    pub async fn a_lapsed_lease_is_taken_over<I: IdempotencyStore>(store: I, pause: Pause) {
        let key = new_key();
        let old = acquire(&store, &key, &fingerprint("a"), SHORT).await;
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::InFlight
        );
        pause(PAST_SHORT).await;
        let new = acquire(&store, &key, &fingerprint("b"), LEASE).await;
        assert_powerless(&store, &key, &fingerprint("b"), &old).await;
        let stored = store
            .complete(&key, &fingerprint("b"), &new, b"new", RETENTION)
            .await
            .expect("complete");
        assert!(stored);
        assert_eq!(
            claim(&store, &key, &fingerprint("b")).await,
            Claim::Completed(b"new".to_vec())
        );
    }

    /// A request that outlived its lease, with nobody taking over, still
    /// keeps its response: its change was made.
    pub async fn a_lapsed_lease_with_no_taker_still_completes<I: IdempotencyStore>(
        store: I,
        pause: Pause,
    ) {
        let key = new_key();
        let token = acquire(&store, &key, &fingerprint("a"), SHORT).await;
        pause(PAST_SHORT).await;
        let stored = store
            .complete(&key, &fingerprint("a"), &token, b"slow", RETENTION)
            .await
            .expect("complete");
        assert!(stored);
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::Completed(b"slow".to_vec())
        );
        assert_eq!(
            claim(&store, &key, &fingerprint("b")).await,
            Claim::Mismatch
        );
    }

    /// A response is kept for its retention, then forgotten: the key is
    /// free again.
    pub async fn a_completed_response_expires_after_its_retention<I: IdempotencyStore>(
        store: I,
        pause: Pause,
    ) {
        let key = new_key();
        let token = acquire(&store, &key, &fingerprint("a"), LEASE).await;
        store
            .complete(&key, &fingerprint("a"), &token, b"done", SHORT)
            .await
            .expect("complete");
        assert_eq!(
            claim(&store, &key, &fingerprint("a")).await,
            Claim::Completed(b"done".to_vec())
        );
        pause(PAST_SHORT).await;
        acquire(&store, &key, &fingerprint("b"), LEASE).await;
    }
}
