//! The domain test harness: [`TaskFlow`] on the in-memory store and session
//! store, the real credential adapters (with cheap argon2 parameters) and a
//! clock the tests move by hand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use adapters_auth::{Argon2Hasher, JwtTokens};
use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore, MemoryStore};
use domain::task::truncate_to_micros;
use domain::{
    AuditEntry, AuditQuery, Clock, LoginOutcome, MemberRef, NewMember, NewProject, NewTask, Ports,
    Principal, Project, ProjectRole, Projects, RegisterInput, Settings, Store, Task, TaskFlow,
    TaskQuery, User, UserId, ValidationErrors,
};
use time::{Duration, OffsetDateTime};

/// The password every harness user registers with.
pub const PASSWORD: &str = "correct horse battery staple";

/// The key the harness signs access tokens with.
pub const SECRET: &[u8] = b"domain harness test secret, 32+ bytes long";

/// The access tokens' lifetime.
pub const ACCESS_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A clock that only moves when told to; every clone shows the same time.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    /// Starts at the real current time, so access tokens (whose expiry the
    /// token adapter checks against the system clock) are valid.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(truncate_to_micros(
            OffsetDateTime::now_utc(),
        ))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, t: OffsetDateTime) {
        *self.lock() = t;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    /// Moves one second on and answers the new time.
    pub fn tick(&self) -> OffsetDateTime {
        self.advance(Duration::seconds(1));
        self.now()
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_micros(*self.lock())
    }
}

#[derive(Debug)]
pub struct TestPorts;

impl Ports for TestPorts {
    type Store = MemoryStore;
    type Sessions = MemorySessionStore<TestClock>;
    type Idempotency = MemoryIdempotencyStore<TestClock>;
    type Hasher = Argon2Hasher;
    type Tokens = JwtTokens;
    type Clock = TestClock;
    type Bus = Announced;
}

/// What the use cases announced: committed events, in order, and ended
/// sessions.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    events: Arc<Mutex<Vec<domain::Event>>>,
    sessions: Arc<Mutex<Vec<EndedSessions>>>,
}

/// A user, and their session that ended (`None`: all of them).
pub type EndedSessions = (domain::UserId, Option<domain::SessionId>);

impl Announced {
    /// The events announced so far, taken.
    pub fn take_events(&self) -> Vec<domain::Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn take_sessions(&self) -> Vec<EndedSessions> {
        std::mem::take(&mut *self.sessions.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl domain::EventBus for Announced {
    fn committed(&self, events: Vec<domain::Event>) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(events);
    }

    fn sessions_ended(&self, user: domain::UserId, session: Option<domain::SessionId>) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((user, session));
    }
}

pub type Flow = TaskFlow<TestPorts>;

pub fn settings() -> Settings {
    Settings::default()
}

pub fn tokens(secret: &[u8]) -> JwtTokens {
    JwtTokens::new(secret, "taskflow-test", ACCESS_TTL)
}

/// A fresh, empty TaskFlow and the clock it runs on.
pub fn taskflow() -> (Flow, TestClock) {
    taskflow_with(settings())
}

pub fn taskflow_with(settings: Settings) -> (Flow, TestClock) {
    let clock = TestClock::new();
    let flow = TaskFlow::new(
        MemoryStore::new(),
        MemorySessionStore::new(clock.clone()),
        MemoryIdempotencyStore::new(clock.clone()),
        Argon2Hasher::with_params(8, 1, 1).expect("valid argon2 parameters"),
        tokens(SECRET),
        clock.clone(),
        Announced::default(),
        settings,
    );
    (flow, clock)
}

/// A new shared project owned by `owner`.
pub async fn project(flow: &Flow, owner: Principal, name: &str) -> Project {
    flow.create_project(
        owner,
        NewProject {
            name: name.to_owned(),
            description: None,
        },
    )
    .await
    .expect("project is created")
    .project
}

/// Adds `user` to `project` with `role`, as `by`.
pub async fn add(flow: &Flow, by: Principal, project: &Project, user: UserId, role: ProjectRole) {
    flow.add_member(
        by,
        project.id,
        NewMember {
            user: MemberRef::Id(user),
            role,
        },
    )
    .await
    .expect("member is added");
}

/// A new task in `project`.
pub fn task_in(project: &Project, title: &str) -> NewTask {
    NewTask {
        project_id: Some(project.id),
        ..new_task(title)
    }
}

/// Every audit entry of `project`, newest first.
pub async fn activity(flow: &Flow, by: Principal, project: &Project) -> Vec<AuditEntry> {
    let page = flow
        .project_activity(
            by,
            project.id,
            AuditQuery {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("activity");
    assert!(page.next.is_none(), "harness reads at most 100 entries");
    page.items
}

pub fn registration(email: &str, password: &str, name: &str) -> RegisterInput {
    RegisterInput {
        email: email.to_owned(),
        password: password.to_owned(),
        name: name.to_owned(),
    }
}

/// Registers `email` with [`PASSWORD`].
pub async fn register(flow: &Flow, email: &str) -> User {
    flow.register(registration(email, PASSWORD, "Test User"))
        .await
        .expect("registration succeeds")
}

pub async fn login(flow: &Flow, email: &str) -> LoginOutcome {
    flow.login(email, PASSWORD.to_owned())
        .await
        .expect("login succeeds")
}

pub async fn authenticate(flow: &Flow, outcome: &LoginOutcome) -> Principal {
    flow.authenticate(&outcome.access.token)
        .await
        .expect("a fresh access token authenticates")
}

/// Registers `email`, logs in and answers the caller behind the access token.
pub async fn signed_in(flow: &Flow, email: &str) -> Principal {
    register(flow, email).await;
    let outcome = login(flow, email).await;
    authenticate(flow, &outcome).await
}

/// The user's Inbox, as the store holds it.
pub async fn inbox(flow: &Flow, user: UserId) -> Project {
    let mut conn = flow.store().connection().await.expect("connection");
    conn.inbox_of(user).await.expect("read").expect("an Inbox")
}

pub fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.to_owned(),
        ..NewTask::default()
    }
}

pub async fn create(flow: &Flow, principal: Principal, input: NewTask) -> Task {
    flow.create_task(principal, input)
        .await
        .expect("task is created")
}

/// The stored state of a task.
pub async fn stored(flow: &Flow, principal: Principal, task: &Task) -> Task {
    flow.task(principal, task.id).await.expect("task exists")
}

pub fn query(limit: u32) -> TaskQuery {
    TaskQuery {
        limit,
        ..TaskQuery::default()
    }
}

/// Every task of `principal` in `query`'s order, in one page.
pub async fn list_all(flow: &Flow, principal: Principal, mut query: TaskQuery) -> Vec<Task> {
    query.limit = TaskQuery::MAX_LIMIT;
    query.after = None;
    let page = flow
        .list_tasks(principal, query)
        .await
        .expect("listing succeeds")
        .page;
    assert!(page.next.is_none(), "harness lists at most 100 tasks");
    page.items
}

/// The fields a validation failure names.
pub fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.fields().keys().map(String::as_str).collect()
}

/// Runs `futures` on the runtime's worker threads, released together from a
/// gate so that they overlap as much as possible; answers their outputs in
/// the order given.
pub async fn together<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let gate = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = futures
        .into_iter()
        .map(|future| {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                while !gate.load(Ordering::Acquire) {
                    tokio::task::yield_now().await;
                }
                future.await
            })
        })
        .collect();
    gate.store(true, Ordering::Release);
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("spawned task completes"));
    }
    outputs
}
