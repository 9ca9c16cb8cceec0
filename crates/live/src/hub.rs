//! The hub: which streams follow which projects, and each project's feed
//! (the last seq dispatched, and what is known to exist past it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use domain::{
    Event, EventQuery, EventType, Events, Ports, Principal, ProjectId, SessionId, Store, TaskFlow,
    UserId,
};
use tokio::sync::mpsc;

use crate::connection::{CloseReason, Connection, Next, Shared, UnsubscribeReason};

/// Turns an event into what streams send (JSON, framed): once per event
/// per instance, however many streams follow its project.
pub trait Render: Send + Sync + 'static {
    type Frame: Clone + Send + Sync + 'static;
    fn render(&self, event: &Event) -> Self::Frame;
}

/// What tells a hub that something happened.
#[derive(Debug, Clone)]
pub enum Signal {
    /// This instance committed these events (each project's in seq order).
    Committed(Vec<Event>),
    /// `project`'s log has reached `seq` (another instance's announcement,
    /// or this one's echoed back).
    Head { project: ProjectId, seq: i64 },
    /// A user's session ended (`None`: all of them).
    SessionsEnded {
        user: UserId,
        session: Option<SessionId>,
    },
}

/// Where signals for a hub go: cheap to clone, never blocks; signals sent
/// after the hub is gone are dropped.
#[derive(Debug, Clone)]
pub struct Inbox(mpsc::UnboundedSender<Signal>);

impl Inbox {
    pub fn send(&self, signal: Signal) {
        // Only fails once the hub has stopped: nobody is listening.
        let _ = self.0.send(signal);
    }
}

/// Limits and timings of live delivery.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Deliveries queued for one stream; a stream that falls this far
    /// behind is closed (it resumes with `since` and loses nothing).
    pub queue: usize,
    /// Projects one stream may follow.
    pub max_subscriptions: usize,
    /// Streams one user may have open on this instance.
    pub max_connections_per_user: usize,
    /// How often the hub reads the log heads of the projects it follows,
    /// which bounds how late an event whose announcement was lost arrives.
    pub poll_interval: Duration,
    /// How often a stream checks that its session is still alive (logout
    /// and disabling also close streams at once, through announcements).
    pub session_check_interval: Duration,
    /// WebSocket: how often the server pings.
    pub ping_interval: Duration,
    /// WebSocket: a peer silent this long is closed.
    pub idle_timeout: Duration,
    /// WebSocket: how long a connection without a bearer token has to
    /// send its `auth` message.
    pub auth_timeout: Duration,
    /// The largest client message taken (WebSocket).
    pub max_message_bytes: usize,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            queue: 1000,
            max_subscriptions: 100,
            max_connections_per_user: 20,
            poll_interval: Duration::from_secs(1),
            session_check_interval: Duration::from_secs(30),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Too many live connections: at most {0} per user.")]
    TooManyConnections(usize),
}

/// Events read from the log per round when catching up.
const FETCH_PAGE: u32 = 500;

/// A stash of events committed here but ahead of the feed's head is kept
/// up to this size; past it the log fills in.
const STASH_LIMIT: usize = 10_000;

/// This instance's hub. Cheap to clone.
pub struct Hub<P: Ports, R: Render> {
    pub(crate) inner: Arc<Inner<P, R>>,
}

impl<P: Ports, R: Render> Clone for Hub<P, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Ports, R: Render> std::fmt::Debug for Hub<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<P: Ports, R: Render> {
    pub(crate) app: TaskFlow<P>,
    pub(crate) render: R,
    pub(crate) settings: HubSettings,
    state: Mutex<State<R::Frame>>,
    next_id: AtomicU64,
    polling: AtomicBool,
}

struct State<F> {
    feeds: HashMap<ProjectId, Feed>,
    conns: HashMap<u64, Conn<F>>,
}

struct Conn<F> {
    user: UserId,
    session: SessionId,
    shared: Arc<Shared<F>>,
}

/// One followed project.
#[derive(Default)]
struct Feed {
    /// The last seq dispatched; `None` until the first subscriber has read
    /// the log's head.
    head: Option<i64>,
    /// The highest seq known to exist.
    wanted: i64,
    /// Whether a catch-up from the log is running.
    fetching: bool,
    /// Events committed here that are ahead of `head`.
    stash: BTreeMap<i64, Event>,
    /// Subscribed streams and their users.
    subs: HashMap<u64, UserId>,
}

impl Feed {
    /// Marks a catch-up as running; answers whether the caller is to start
    /// it (none was running).
    fn claim_fetch(&mut self) -> bool {
        !std::mem::replace(&mut self.fetching, true)
    }
}

impl<P: Ports, R: Render> Hub<P, R> {
    /// A hub over `app`, and where its signals go. The inbox is what the
    /// event bus of `app` must feed, so it is made first:
    /// [`Hub::inbox`], then the `TaskFlow`, then this. Spawns the hub's
    /// task on the current tokio runtime; it stops when the last clone of
    /// the hub is dropped.
    pub fn start(
        app: TaskFlow<P>,
        render: R,
        settings: HubSettings,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) -> Self {
        let poll_interval = settings.poll_interval;
        let inner = Arc::new(Inner {
            app,
            render,
            settings,
            state: Mutex::new(State {
                feeds: HashMap::new(),
                conns: HashMap::new(),
            }),
            next_id: AtomicU64::new(1),
            polling: AtomicBool::new(false),
        });
        tokio::spawn(run(Arc::downgrade(&inner), signals, poll_interval));
        Self { inner }
    }

    /// A new inbox and the receiving end [`Hub::start`] takes.
    pub fn inbox() -> (Inbox, mpsc::UnboundedReceiver<Signal>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Inbox(tx), rx)
    }

    pub fn app(&self) -> &TaskFlow<P> {
        &self.inner.app
    }

    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Opens a stream for `principal` (whose token the caller has checked),
    /// within the per-user limit.
    pub fn connect(&self, principal: Principal) -> Result<Connection<P, R>, ConnectError> {
        let inner = &self.inner;
        let (shared, rx) = Shared::new(inner.settings.queue);
        let mut state = inner.lock();
        let open = state
            .conns
            .values()
            .filter(|c| c.user == principal.user_id)
            .count();
        let max = inner.settings.max_connections_per_user;
        if open >= max {
            return Err(ConnectError::TooManyConnections(max));
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        state.conns.insert(
            id,
            Conn {
                user: principal.user_id,
                session: principal.session_id,
                shared: shared.clone(),
            },
        );
        drop(state);
        Ok(Connection::new(self.clone(), id, principal, shared, rx))
    }

    /// Closes every stream (the instance is stopping), so none holds up a
    /// graceful shutdown.
    pub fn close_all(&self) {
        let state = self.inner.lock();
        for conn in state.conns.values() {
            conn.shared.close(CloseReason::ShuttingDown);
        }
    }

    /// How many streams are open, and how many projects are followed.
    pub fn load(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.conns.len(), state.feeds.len())
    }
}

async fn run<P: Ports, R: Render>(
    hub: Weak<Inner<P, R>>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    poll_interval: Duration,
) {
    let mut ticks = tokio::time::interval(poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            signal = signals.recv() => {
                let (Some(signal), Some(hub)) = (signal, hub.upgrade()) else { return };
                hub.on_signal(signal);
            }
            _ = ticks.tick() => {
                let Some(hub) = hub.upgrade() else { return };
                if !hub.polling.swap(true, Ordering::AcqRel) {
                    tokio::spawn(async move {
                        hub.poll().await;
                        hub.polling.store(false, Ordering::Release);
                    });
                }
            }
        }
    }
}

impl<P: Ports, R: Render> Inner<P, R> {
    fn lock(&self) -> MutexGuard<'_, State<R::Frame>> {
        // A panic while holding the lock leaves the maps consistent enough
        // (each change is a few inserts and removes): keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_signal(self: Arc<Self>, signal: Signal) {
        match signal {
            Signal::Committed(events) => {
                let mut fetch = Vec::new();
                let mut state = self.lock();
                for event in events {
                    let project = event.project_id;
                    if state.feeds.contains_key(&project) && self.offer(&mut state, event) {
                        fetch.push(project);
                    }
                }
                drop(state);
                fetch.dedup();
                for project in fetch {
                    self.clone().fetch(project);
                }
            }
            Signal::Head { project, seq } => {
                if self.heard(project, seq) {
                    self.fetch(project);
                }
            }
            Signal::SessionsEnded { user, session } => {
                let state = self.lock();
                for conn in state.conns.values() {
                    if conn.user == user && session.is_none_or(|s| s == conn.session) {
                        conn.shared.close(CloseReason::SessionEnded);
                    }
                }
            }
        }
    }

    /// `project`'s log has reached `seq`: answers whether to catch up.
    fn heard(&self, project: ProjectId, seq: i64) -> bool {
        let mut state = self.lock();
        let Some(feed) = state.feeds.get_mut(&project) else {
            return false;
        };
        feed.wanted = feed.wanted.max(seq);
        feed.head.is_some_and(|head| seq > head) && feed.claim_fetch()
    }

    /// An event committed here: dispatched at once when it is the next,
    /// else kept until the ones before it are in; answers whether to
    /// catch up from the log.
    fn offer(&self, state: &mut State<R::Frame>, event: Event) -> bool {
        let project = event.project_id;
        let Some(feed) = state.feeds.get_mut(&project) else {
            return false;
        };
        feed.wanted = feed.wanted.max(event.seq);
        match feed.head {
            Some(head) if event.seq == head + 1 => {
                self.dispatch(state, event);
                self.drain_stash(state, project);
                false
            }
            Some(head) if event.seq <= head => false,
            _ => {
                if feed.stash.len() < STASH_LIMIT {
                    feed.stash.insert(event.seq, event);
                }
                feed.head.is_some() && feed.claim_fetch()
            }
        }
    }

    /// Dispatches the stashed events that now follow the head.
    fn drain_stash(&self, state: &mut State<R::Frame>, project: ProjectId) {
        loop {
            let Some(feed) = state.feeds.get_mut(&project) else {
                return;
            };
            let Some(head) = feed.head else { return };
            feed.stash = feed.stash.split_off(&(head + 1));
            let Some(event) = feed.stash.remove(&(head + 1)) else {
                return;
            };
            self.dispatch(state, event);
        }
    }

    /// Sends the feed's next event to every stream that follows it, then
    /// applies what it means for them: a removed member's streams and a
    /// deleted project's stop following it.
    fn dispatch(&self, state: &mut State<R::Frame>, event: Event) {
        let project = event.project_id;
        let State { feeds, conns } = state;
        let Some(feed) = feeds.get_mut(&project) else {
            return;
        };
        feed.head = Some(event.seq);
        if feed.subs.is_empty() {
            return;
        }
        let frame = self.render.render(&event);
        feed.subs.retain(|id, _| {
            conns.get(id).is_some_and(|conn| {
                conn.shared.deliver(Next::Event {
                    project,
                    seq: event.seq,
                    frame: frame.clone(),
                })
            })
        });
        let ended = match event.event.kind {
            EventType::MemberRemoved => Some(UnsubscribeReason::Removed),
            EventType::ProjectDeleted => Some(UnsubscribeReason::Deleted),
            _ => None,
        };
        if let Some(reason) = ended {
            let removed = UserId(event.event.entity_id);
            feed.subs.retain(|id, user| {
                let stays = reason == UnsubscribeReason::Removed && *user != removed;
                if !stays && let Some(conn) = conns.get(id) {
                    conn.shared.deliver(Next::Unsubscribed { project, reason });
                }
                stays
            });
        }
        // A feed nobody follows any more (all removed, deleted, or gone) is
        // dropped: it would be polled and caught up for nobody.
        if feed.subs.is_empty() {
            feeds.remove(&project);
        }
    }

    /// Catches `project`'s feed up from the log, in a task of its own; the
    /// caller has set the feed's `fetching`.
    fn fetch(self: Arc<Self>, project: ProjectId) {
        tokio::spawn(async move { self.catch_up(project, false).await });
    }

    /// Reads the log after the feed's head and dispatches, until it has
    /// what it knows exists (or the log has nothing more). `gone`: the
    /// project is no longer there; whoever still follows it afterwards is
    /// told it was deleted.
    async fn catch_up(&self, project: ProjectId, gone: bool) {
        loop {
            let after = {
                let mut state = self.lock();
                let Some(feed) = state.feeds.get_mut(&project) else {
                    return;
                };
                let Some(head) = feed.head else {
                    feed.fetching = false;
                    return;
                };
                head
            };
            let query = EventQuery {
                after,
                limit: FETCH_PAGE,
            };
            let read = async {
                let mut conn = self.app.store().connection().await?;
                conn.events(project, &query).await
            }
            .await;
            let mut state = self.lock();
            if !state.feeds.contains_key(&project) {
                return;
            }
            let events = match read {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(
                        project = %project.0,
                        "catching up from the event log failed (the next poll retries): {}",
                        domain::error::describe(&e)
                    );
                    if let Some(feed) = state.feeds.get_mut(&project) {
                        feed.fetching = false;
                    }
                    return;
                }
            };
            let more = events.len() > FETCH_PAGE as usize;
            for event in events.into_iter().take(FETCH_PAGE as usize) {
                let Some(head) = state.feeds.get(&project).and_then(|f| f.head) else {
                    return;
                };
                if event.seq <= head {
                    continue;
                }
                if event.seq > head + 1 {
                    // Retention pruned what the feed had not dispatched yet
                    // (only when it fell a retention behind): its streams
                    // must reload.
                    self.resync(&mut state, project, event.seq - 1);
                }
                self.dispatch(&mut state, event);
            }
            self.drain_stash(&mut state, project);
            let Some(feed) = state.feeds.get_mut(&project) else {
                return;
            };
            // Another round while something is known to be missing and the
            // head moved since this one began (by this read or by commits
            // offered meanwhile, whose successors may have been heard while
            // this ran); a round that moved nothing ends it (the poll
            // retries).
            let behind = feed.head.is_some_and(|head| head < feed.wanted);
            let moved = feed.head.is_some_and(|head| head > after);
            if !(more || (behind && moved)) {
                feed.fetching = false;
                if gone {
                    self.forget(&mut state, project, UnsubscribeReason::Deleted);
                }
                return;
            }
        }
    }

    /// The feed skips to `head`: every stream following it is told to
    /// reload.
    fn resync(&self, state: &mut State<R::Frame>, project: ProjectId, head: i64) {
        let State { feeds, conns } = state;
        let Some(feed) = feeds.get_mut(&project) else {
            return;
        };
        feed.head = Some(head);
        feed.subs.retain(|id, _| {
            conns
                .get(id)
                .is_some_and(|conn| conn.shared.deliver(Next::Resync { project, head }))
        });
        if feed.subs.is_empty() {
            feeds.remove(&project);
        }
    }

    /// Stops following `project`, telling its streams why.
    fn forget(&self, state: &mut State<R::Frame>, project: ProjectId, reason: UnsubscribeReason) {
        let Some(feed) = state.feeds.remove(&project) else {
            return;
        };
        for id in feed.subs.keys() {
            if let Some(conn) = state.conns.get(id) {
                conn.shared.deliver(Next::Unsubscribed { project, reason });
            }
        }
    }

    /// Reads the heads of every followed project: what an announcement
    /// missed is caught up; a project that is gone is caught up (to its
    /// `project.deleted`) and then forgotten.
    async fn poll(self: &Arc<Self>) {
        let followed: Vec<ProjectId> = {
            let state = self.lock();
            state
                .feeds
                .iter()
                .filter(|(_, feed)| feed.head.is_some())
                .map(|(id, _)| *id)
                .collect()
        };
        for chunk in followed.chunks(1000) {
            let read = async {
                let mut conn = self.app.store().connection().await?;
                conn.heads(chunk).await
            }
            .await;
            let heads = match read {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(
                        "reading the event log heads failed (retried at the next poll): {}",
                        domain::error::describe(&e)
                    );
                    return;
                }
            };
            let heads: HashMap<ProjectId, i64> = heads.into_iter().collect();
            for &project in chunk {
                match heads.get(&project) {
                    Some(&seq) => {
                        if self.heard(project, seq) {
                            self.clone().fetch(project);
                        }
                    }
                    None => {
                        let start = {
                            let mut state = self.lock();
                            state
                                .feeds
                                .get_mut(&project)
                                .is_some_and(|f| f.claim_fetch())
                        };
                        if start {
                            let hub = self.clone();
                            tokio::spawn(async move { hub.catch_up(project, true).await });
                        }
                    }
                }
            }
        }
    }

    // The connection's side.

    /// Registers stream `id` on `project`'s feed (made if new), before it
    /// reads the log, so nothing committed meanwhile passes it by.
    pub(crate) fn follow(&self, id: u64, user: UserId, project: ProjectId) {
        let mut state = self.lock();
        state
            .feeds
            .entry(project)
            .or_default()
            .subs
            .insert(id, user);
    }

    /// The stream has read the log's head (`head`): the feed starts there
    /// if it had not started. Answers the feed's head (what the stream
    /// must replay up to from the log; later events come live), or `None`
    /// if the stream no longer follows the project.
    pub(crate) fn followed_from(
        self: &Arc<Self>,
        id: u64,
        project: ProjectId,
        head: i64,
    ) -> Option<i64> {
        let mut state = self.lock();
        let feed = state.feeds.get_mut(&project)?;
        if !feed.subs.contains_key(&id) {
            return None;
        }
        let start = feed.head.is_none();
        let feed_head = *feed.head.get_or_insert(head);
        feed.stash = feed.stash.split_off(&(feed_head + 1));
        let behind = feed.wanted > feed_head || !feed.stash.is_empty();
        let fetch = start && behind && feed.claim_fetch();
        drop(state);
        if fetch {
            self.clone().fetch(project);
        }
        Some(feed_head)
    }

    /// Stream `id` stops following `project`; a feed nobody follows is
    /// dropped.
    pub(crate) fn unfollow(&self, id: u64, project: ProjectId) {
        let mut state = self.lock();
        if let Some(feed) = state.feeds.get_mut(&project) {
            feed.subs.remove(&id);
            if feed.subs.is_empty() {
                state.feeds.remove(&project);
            }
        }
    }

    /// Stream `id` is closed.
    pub(crate) fn disconnect(&self, id: u64, projects: impl Iterator<Item = ProjectId>) {
        let mut state = self.lock();
        state.conns.remove(&id);
        for project in projects {
            if let Some(feed) = state.feeds.get_mut(&project) {
                feed.subs.remove(&id);
                if feed.subs.is_empty() {
                    state.feeds.remove(&project);
                }
            }
        }
    }
}
