//! The hub and its connections over the in-memory store: every stream gets
//! each followed project's events exactly once, in seq order, whatever the
//! announcements do (late, out of order, lost).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use adapters_auth::{Argon2Hasher, JwtTokens};
use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore, MemoryStore};
use domain::{
    Event, EventBus, EventType, MemberRef, NewMember, NewProject, NewTask, Ports, Principal,
    Project, ProjectRole, RegisterInput, SessionId, Settings, SystemClock, TaskFlow, UserId,
};
use live::{CloseReason, Connection, Hub, HubSettings, Inbox, Next, Render, Signal};
use live::{SubscribeError, UnsubscribeReason};

#[derive(Debug)]
struct TestPorts;

impl Ports for TestPorts {
    type Store = MemoryStore;
    type Sessions = MemorySessionStore;
    type Idempotency = MemoryIdempotencyStore;
    type Hasher = Argon2Hasher;
    type Tokens = JwtTokens;
    type Clock = SystemClock;
    type Bus = TestBus;
}

/// Forwards announcements to the hub, unless told to lose them, or to
/// hold them back and deliver them reversed.
#[derive(Debug, Clone, Default)]
struct TestBus {
    inbox: Arc<OnceLock<Inbox>>,
    lose: Arc<AtomicBool>,
    held: Arc<std::sync::Mutex<Option<Vec<Event>>>>,
}

impl EventBus for TestBus {
    fn committed(&self, events: Vec<Event>) {
        if self.lose.load(Ordering::SeqCst) {
            return;
        }
        if let Some(held) = self.held.lock().expect("lock").as_mut() {
            held.extend(events);
            return;
        }
        if let Some(inbox) = self.inbox.get() {
            inbox.send(Signal::Committed(events));
        }
    }

    fn sessions_ended(&self, user: UserId, session: Option<SessionId>) {
        if let Some(inbox) = self.inbox.get() {
            inbox.send(Signal::SessionsEnded { user, session });
        }
    }
}

impl TestBus {
    fn hold(&self) {
        *self.held.lock().expect("lock") = Some(Vec::new());
    }

    /// Sends what was held, each event on its own and in reverse order.
    fn release_reversed(&self) {
        let held = self.held.lock().expect("lock").take().unwrap_or_default();
        for event in held.into_iter().rev() {
            self.inbox
                .get()
                .expect("inbox")
                .send(Signal::Committed(vec![event]));
        }
    }
}

/// Frames are the events' (seq, type): what order checks need.
#[derive(Debug, Clone, Copy)]
struct Seqs;

impl Render for Seqs {
    type Frame = (i64, EventType);
    fn render(&self, event: &Event) -> Self::Frame {
        (event.seq, event.event.kind)
    }
}

type Flow = TaskFlow<TestPorts>;

struct World {
    flow: Flow,
    hub: Hub<TestPorts, Seqs>,
    bus: TestBus,
}

fn world(settings: HubSettings) -> World {
    let bus = TestBus::default();
    let flow = TaskFlow::new(
        MemoryStore::new(),
        MemorySessionStore::default(),
        MemoryIdempotencyStore::default(),
        Argon2Hasher::with_params(8, 1, 1).expect("argon2 parameters"),
        JwtTokens::new(
            b"a test secret of at least 32 bytes!!",
            "test",
            Duration::from_secs(900),
        ),
        SystemClock,
        bus.clone(),
        Settings::default(),
    );
    let (inbox, signals) = Hub::<TestPorts, Seqs>::inbox();
    bus.inbox.set(inbox).expect("set once");
    let hub = Hub::start(flow.clone(), Seqs, settings, signals);
    World { flow, hub, bus }
}

fn fast() -> HubSettings {
    HubSettings {
        poll_interval: Duration::from_millis(50),
        ..HubSettings::default()
    }
}

impl World {
    async fn user(&self, email: &str) -> Principal {
        let input = RegisterInput {
            email: email.to_owned(),
            password: "correct horse battery staple".to_owned(),
            name: email.to_owned(),
        };
        self.flow.register(input).await.expect("register");
        let outcome = self
            .flow
            .login(email, "correct horse battery staple".to_owned())
            .await
            .expect("login");
        self.flow
            .authenticate(&outcome.access.token)
            .await
            .expect("authenticate")
    }

    async fn project(&self, owner: Principal) -> Project {
        let input = NewProject {
            name: "Live".to_owned(),
            description: None,
        };
        self.flow
            .create_project(owner, input)
            .await
            .expect("project")
            .project
    }

    async fn task(&self, by: Principal, project: &Project, title: &str) {
        let input = NewTask {
            title: title.to_owned(),
            project_id: Some(project.id),
            ..NewTask::default()
        };
        self.flow.create_task(by, input).await.expect("task");
    }

    async fn add(&self, by: Principal, project: &Project, user: UserId) {
        let member = NewMember {
            user: MemberRef::Id(user),
            role: ProjectRole::Member,
        };
        self.flow
            .add_member(by, project.id, member)
            .await
            .expect("member");
    }
}

/// The next `n` events' seqs (failing after a bound instead of hanging).
async fn seqs(conn: &mut Connection<TestPorts, Seqs>, n: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        match next(conn).await {
            Next::Event { seq, .. } => seqs.push(seq),
            other => panic!("an event, got {other:?} after {seqs:?}"),
        }
    }
    seqs
}

async fn next(conn: &mut Connection<TestPorts, Seqs>) -> Next<(i64, EventType)> {
    tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .expect("something within 10 s")
}

/// Nothing more comes within a short while.
async fn quiet(conn: &mut Connection<TestPorts, Seqs>) {
    let more = tokio::time::timeout(Duration::from_millis(300), conn.next()).await;
    assert!(more.is_err(), "nothing more, got {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_later_events_in_order_and_no_earlier_ones() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    w.task(ada, &project, "before").await;
    let mut conn = w.hub.connect(ada).expect("connect");
    let head = conn.subscribe(project.id, None).await.expect("subscribe");
    assert_eq!(head, 3, "created, owner added, one task");
    for i in 0..5 {
        w.task(ada, &project, &format!("after {i}")).await;
    }
    assert_eq!(seqs(&mut conn, 5).await, [4, 5, 6, 7, 8]);
    quiet(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_replays_the_log_then_follows_without_a_seam() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    for i in 0..300 {
        w.task(ada, &project, &format!("old {i}")).await;
    }
    // Writers keep going while the subscriber replays.
    let writer = {
        let w_flow = w.flow.clone();
        let project = project.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let input = NewTask {
                    title: format!("new {i}"),
                    project_id: Some(project.id),
                    ..NewTask::default()
                };
                w_flow.create_task(ada, input).await.expect("task");
            }
        })
    };
    let mut conn = w.hub.connect(ada).expect("connect");
    conn.subscribe(project.id, Some(0))
        .await
        .expect("subscribe");
    // Read while the writer goes on: the replay (several pages) and the
    // live events interleave.
    let got = seqs(&mut conn, 502).await;
    writer.await.expect("writer");
    assert_eq!(got, (1..=502).collect::<Vec<_>>());
    quiet(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_announced_out_of_order_are_delivered_in_order() {
    let w = world(HubSettings {
        poll_interval: Duration::from_secs(3600),
        ..HubSettings::default()
    });
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    let mut conn = w.hub.connect(ada).expect("connect");
    conn.subscribe(project.id, None).await.expect("subscribe");
    w.bus.hold();
    for i in 0..10 {
        w.task(ada, &project, &format!("t{i}")).await;
    }
    w.bus.release_reversed();
    assert_eq!(seqs(&mut conn, 10).await, (3..=12).collect::<Vec<_>>());
    quiet(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_announcement_is_healed_from_the_log() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    let mut conn = w.hub.connect(ada).expect("connect");
    conn.subscribe(project.id, None).await.expect("subscribe");
    w.bus.lose.store(true, Ordering::SeqCst);
    w.task(ada, &project, "never announced").await;
    w.bus.lose.store(false, Ordering::SeqCst);
    // Nothing else happens: only the hub's poll can find it.
    assert_eq!(seqs(&mut conn, 1).await, [3]);
    w.task(ada, &project, "announced").await;
    assert_eq!(seqs(&mut conn, 1).await, [4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_and_writers_each_see_the_whole_log_once() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let bob = w.user("bob@example.com").await;
    let project = w.project(ada).await;
    w.add(ada, &project, bob.user_id).await;
    let mut streams = Vec::new();
    for i in 0..6 {
        let who = if i % 2 == 0 { ada } else { bob };
        let mut conn = w.hub.connect(who).expect("connect");
        conn.subscribe(project.id, Some(0))
            .await
            .expect("subscribe");
        streams.push(conn);
    }
    let mut writers = Vec::new();
    for who in [ada, bob, ada, bob] {
        let flow = w.flow.clone();
        let project = project.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                let input = NewTask {
                    title: format!("t{i}"),
                    project_id: Some(project.id),
                    ..NewTask::default()
                };
                flow.create_task(who, input).await.expect("task");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    for conn in &mut streams {
        assert_eq!(seqs(conn, 203).await, (1..=203).collect::<Vec<_>>());
        quiet(conn).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_at_once_and_others_go_on() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let bob = w.user("bob@example.com").await;
    let project = w.project(ada).await;
    w.add(ada, &project, bob.user_id).await;
    let mut ada_conn = w.hub.connect(ada).expect("connect");
    let mut bob_conn = w.hub.connect(bob).expect("connect");
    ada_conn
        .subscribe(project.id, None)
        .await
        .expect("subscribe");
    bob_conn
        .subscribe(project.id, None)
        .await
        .expect("subscribe");
    w.flow
        .remove_member(ada, project.id, bob.user_id)
        .await
        .expect("remove");
    assert_eq!(seqs(&mut bob_conn, 1).await, [4], "the removal itself");
    assert_eq!(
        next(&mut bob_conn).await,
        Next::Unsubscribed {
            project: project.id,
            reason: UnsubscribeReason::Removed
        }
    );
    w.task(ada, &project, "after").await;
    assert_eq!(seqs(&mut ada_conn, 2).await, [4, 5]);
    quiet(&mut bob_conn).await;
    assert!(matches!(
        bob_conn.subscribe(project.id, None).await,
        Err(SubscribeError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_subscribe() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let eve = w.user("eve@example.com").await;
    let project = w.project(ada).await;
    let mut conn = w.hub.connect(eve).expect("connect");
    assert!(matches!(
        conn.subscribe(project.id, None).await,
        Err(SubscribeError::NotFound)
    ));
    assert!(matches!(
        conn.subscribe(domain::ProjectId::generate(), None).await,
        Err(SubscribeError::NotFound)
    ));
    assert_eq!(w.hub.load(), (1, 0), "no feed left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stream_is_closed_and_others_are_not_slowed() {
    let w = world(HubSettings { queue: 5, ..fast() });
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    let mut slow = w.hub.connect(ada).expect("connect");
    let mut brisk = w.hub.connect(ada).expect("connect");
    slow.subscribe(project.id, None).await.expect("subscribe");
    brisk.subscribe(project.id, None).await.expect("subscribe");
    for i in 0..20 {
        w.task(ada, &project, &format!("t{i}")).await;
        assert_eq!(seqs(&mut brisk, 1).await, [3 + i]);
    }
    assert_eq!(next(&mut slow).await, Next::Closed(CloseReason::TooSlow));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_sessions_streams_only() {
    // Only the announcement can close it in time: the session check runs
    // once, as the stream joins, then not for an hour.
    let w = world(HubSettings {
        session_check_interval: Duration::from_secs(3600),
        ..fast()
    });
    let ada = w.user("ada@example.com").await;
    let ada_elsewhere = w.user_again("ada@example.com").await;
    let project = w.project(ada).await;
    let mut here = w.hub.connect(ada).expect("connect");
    let mut there = w.hub.connect(ada_elsewhere).expect("connect");
    here.subscribe(project.id, None).await.expect("subscribe");
    there.subscribe(project.id, None).await.expect("subscribe");
    quiet(&mut here).await;
    quiet(&mut there).await;
    w.flow.logout(ada).await.expect("logout");
    assert_eq!(
        next(&mut here).await,
        Next::Closed(CloseReason::SessionEnded)
    );
    w.task(ada_elsewhere, &project, "still here").await;
    assert_eq!(seqs(&mut there, 1).await, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ended_unannounced_is_found_by_the_check() {
    let w = world(HubSettings {
        session_check_interval: Duration::from_millis(100),
        ..fast()
    });
    let ada = w.user("ada@example.com").await;
    let mut conn = w.hub.connect(ada).expect("connect");
    // Revoked behind the bus's back (as an expiry would be).
    use domain::SessionStore as _;
    w.flow
        .sessions()
        .revoke(ada.session_id)
        .await
        .expect("revoke");
    assert_eq!(
        next(&mut conn).await,
        Next::Closed(CloseReason::SessionEnded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_user_are_limited() {
    let w = world(HubSettings {
        max_connections_per_user: 2,
        ..fast()
    });
    let ada = w.user("ada@example.com").await;
    let first = w.hub.connect(ada).expect("first");
    let _second = w.hub.connect(ada).expect("second");
    assert!(w.hub.connect(ada).is_err(), "a third is refused");
    drop(first);
    assert!(w.hub.connect(ada).is_ok(), "a closed one frees its place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_project_unsubscribes_its_streams() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    let mut conn = w.hub.connect(ada).expect("connect");
    conn.subscribe(project.id, None).await.expect("subscribe");
    w.flow
        .delete_project(ada, project.id)
        .await
        .expect("delete");
    assert_eq!(seqs(&mut conn, 1).await, [3]);
    assert_eq!(
        next(&mut conn).await,
        Next::Unsubscribed {
            project: project.id,
            reason: UnsubscribeReason::Deleted
        }
    );
    assert_eq!(w.hub.load(), (1, 0));
}

impl World {
    /// Another session of a registered user.
    async fn user_again(&self, email: &str) -> Principal {
        let outcome = self
            .flow
            .login(email, "correct horse battery staple".to_owned())
            .await
            .expect("login");
        self.flow
            .authenticate(&outcome.access.token)
            .await
            .expect("authenticate")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_older_than_retention_gets_a_resync_then_live_events() {
    use domain::{Events as _, Store as _};
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let project = w.project(ada).await;
    w.task(ada, &project, "pruned").await;
    let pruned = w
        .flow
        .store()
        .connection()
        .await
        .expect("connection")
        .prune_events(time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .await
        .expect("prune");
    assert!(pruned >= 3);
    let mut conn = w.hub.connect(ada).expect("connect");
    let head = conn
        .subscribe(project.id, Some(0))
        .await
        .expect("subscribe");
    assert_eq!(head, 3);
    assert_eq!(
        next(&mut conn).await,
        Next::Resync {
            project: project.id,
            head: 3
        }
    );
    w.task(ada, &project, "after").await;
    assert_eq!(seqs(&mut conn, 1).await, [4]);
    quiet(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_per_connection_are_limited() {
    let w = world(HubSettings {
        max_subscriptions: 2,
        ..fast()
    });
    let ada = w.user("ada@example.com").await;
    let mut conn = w.hub.connect(ada).expect("connect");
    let mut projects = Vec::new();
    for _ in 0..3 {
        projects.push(w.project(ada).await);
    }
    conn.subscribe(projects[0].id, None).await.expect("first");
    conn.subscribe(projects[1].id, None).await.expect("second");
    assert!(matches!(
        conn.subscribe(projects[2].id, None).await,
        Err(SubscribeError::TooMany(2))
    ));
    conn.subscribe(projects[1].id, None)
        .await
        .expect("subscribing again to one it follows is no third");
    assert!(conn.unsubscribe(projects[0].id));
    conn.subscribe(projects[2].id, None)
        .await
        .expect("a freed place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_whose_last_follower_was_removed_is_dropped() {
    let w = world(fast());
    let ada = w.user("ada@example.com").await;
    let bob = w.user("bob@example.com").await;
    let project = w.project(ada).await;
    w.add(ada, &project, bob.user_id).await;
    let mut conn = w.hub.connect(bob).expect("connect");
    conn.subscribe(project.id, None).await.expect("subscribe");
    assert_eq!(w.hub.load(), (1, 1));
    w.flow
        .remove_member(ada, project.id, bob.user_id)
        .await
        .expect("remove");
    assert_eq!(seqs(&mut conn, 1).await, [4]);
    assert!(matches!(next(&mut conn).await, Next::Unsubscribed { .. }));
    assert_eq!(w.hub.load(), (1, 0), "nobody follows the project here");
}
