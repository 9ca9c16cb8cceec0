//! One client stream: its subscriptions, each replayed from the log and
//! then followed live, and what it is to send next.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use domain::{
    EventQuery, EventsError, PortError, Ports, Principal, ProjectId, SessionStore, ValidationErrors,
};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Interval, MissedTickBehavior};

use crate::hub::{Hub, Render};

/// Events read from the log per round of a replay.
const REPLAY_PAGE: u32 = domain::MAX_PAGE;

/// Why a stream is closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Logout, a disabled account, or an expired session (WebSocket 4401).
    SessionEnded,
    /// It fell a whole queue behind (WebSocket 4008); it resumes with
    /// `since` and loses nothing.
    TooSlow,
    /// The event log could not be read (WebSocket 1011); it resumes with
    /// `since`.
    Unavailable,
    /// The instance is stopping (WebSocket 1001); the client reconnects,
    /// to another instance, with `since`.
    ShuttingDown,
}

/// Why a stream stopped following a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeReason {
    /// The client asked.
    Client,
    /// The user is no longer a member.
    Removed,
    /// The project was deleted.
    Deleted,
}

impl UnsubscribeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Removed => "removed",
            Self::Deleted => "deleted",
        }
    }
}

/// What a stream sends next (and what the hub hands it: all but
/// `Closed`, which comes through [`Shared::close`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<F> {
    /// An event of `project`, rendered.
    Event {
        project: ProjectId,
        seq: i64,
        frame: F,
    },
    Unsubscribed {
        project: ProjectId,
        reason: UnsubscribeReason,
    },
    /// Events of `project` before `head` are no longer kept: the client
    /// reloads its state; events after `head` follow.
    Resync { project: ProjectId, head: i64 },
    /// The stream ends.
    Closed(CloseReason),
}

impl<F> Next<F> {
    /// The project it is about.
    pub fn project(&self) -> Option<ProjectId> {
        match self {
            Self::Event { project, .. }
            | Self::Unsubscribed { project, .. }
            | Self::Resync { project, .. } => Some(*project),
            Self::Closed(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// Not a member, or no such project: the same answer, as over REST.
    #[error("No such project.")]
    NotFound,
    #[error("Too many subscriptions: at most {0} per connection.")]
    TooMany(usize),
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl domain::DomainError for SubscribeError {
    fn kind(&self) -> domain::ErrorKind<'_> {
        match self {
            Self::NotFound => domain::ErrorKind::NotFound,
            Self::TooMany(_) => domain::ErrorKind::Conflict,
            Self::Invalid(errors) => domain::ErrorKind::Invalid(errors),
            Self::Port(e) => domain::ErrorKind::Port(e),
        }
    }
}

/// The part of a stream the hub holds: its queue, and how it is closed.
pub(crate) struct Shared<F> {
    tx: mpsc::Sender<Next<F>>,
    closed: OnceLock<CloseReason>,
    notify: Notify,
}

impl<F> Shared<F> {
    pub(crate) fn new(queue: usize) -> (Arc<Self>, mpsc::Receiver<Next<F>>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let shared = Arc::new(Self {
            tx,
            closed: OnceLock::new(),
            notify: Notify::new(),
        });
        (shared, rx)
    }

    /// Queues `delivery`; a stream whose queue is full is closed as too
    /// slow. Answers whether the stream still takes deliveries.
    pub(crate) fn deliver(&self, delivery: Next<F>) -> bool {
        if self.closed.get().is_some() {
            return false;
        }
        match self.tx.try_send(delivery) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseReason::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(crate) fn close(&self, reason: CloseReason) {
        if self.closed.set(reason).is_ok() {
            self.notify.notify_one();
        }
    }
}

/// Takes a subscription that has not answered yet out of the hub when
/// dropped.
struct Unfollow<'a, P: Ports, R: Render> {
    hub: &'a Hub<P, R>,
    id: u64,
    project: ProjectId,
}

impl<P: Ports, R: Render> Drop for Unfollow<'_, P, R> {
    fn drop(&mut self) {
        self.hub.inner.unfollow(self.id, self.project);
    }
}

/// Where a stream stands with one project.
enum Sub<F> {
    /// Reading the log after `after` up to `until`; live deliveries past
    /// `until` wait in `held`.
    Replaying {
        after: i64,
        until: i64,
        held: VecDeque<Next<F>>,
    },
    /// Delivered everything up to `last`.
    Live { last: i64 },
}

/// One client stream (a WebSocket or an SSE response) of one user. Its
/// subscriptions end, and it leaves the hub, when it is dropped.
pub struct Connection<P: Ports, R: Render> {
    hub: Hub<P, R>,
    id: u64,
    principal: Principal,
    shared: Arc<Shared<R::Frame>>,
    rx: mpsc::Receiver<Next<R::Frame>>,
    subs: HashMap<ProjectId, Sub<R::Frame>>,
    ready: VecDeque<Next<R::Frame>>,
    session_check: Interval,
}

impl<P: Ports, R: Render> std::fmt::Debug for Connection<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("user", &self.principal.user_id)
            .field("projects", &self.subs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<P: Ports, R: Render> Drop for Connection<P, R> {
    fn drop(&mut self) {
        self.hub
            .inner
            .disconnect(self.id, self.subs.keys().copied());
    }
}

impl<P: Ports, R: Render> Connection<P, R> {
    pub(crate) fn new(
        hub: Hub<P, R>,
        id: u64,
        principal: Principal,
        shared: Arc<Shared<R::Frame>>,
        rx: mpsc::Receiver<Next<R::Frame>>,
    ) -> Self {
        // The first check is at once: a session that ended before this
        // stream joined the hub (so before it could hear of it) is found.
        let every = hub.inner.settings.session_check_interval;
        let mut session_check = tokio::time::interval(every);
        session_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            hub,
            id,
            principal,
            shared,
            rx,
            subs: HashMap::new(),
            ready: VecDeque::new(),
            session_check,
        }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The projects this stream follows.
    pub fn projects(&self) -> impl Iterator<Item = &ProjectId> {
        self.subs.keys()
    }

    /// Follows `project`: answers the log's head now (what `subscribed`
    /// reports). [`Connection::next`] then gives the events after `since`
    /// up to the head from the log, then the later ones live; without
    /// `since`, only those after the head. A `since` older than retention
    /// gives a [`Next::Resync`] first, then the events after the head.
    /// Following a project already followed starts over from `since`.
    pub async fn subscribe(
        &mut self,
        project: ProjectId,
        since: Option<i64>,
    ) -> Result<i64, SubscribeError> {
        if since.is_some_and(|s| s < 0) {
            return Err(SubscribeError::Invalid(ValidationErrors::single(
                "since",
                "must be 0 or more",
            )));
        }
        self.unsubscribe(project);
        // What the hub queued for an earlier subscription to this project
        // (its events, an `unsubscribed`) must not reach this one.
        while let Ok(delivery) = self.rx.try_recv() {
            self.take(delivery);
        }
        let max = self.hub.inner.settings.max_subscriptions;
        if self.subs.len() >= max {
            return Err(SubscribeError::TooMany(max));
        }
        let inner = &self.hub.inner;
        inner.follow(self.id, self.principal.user_id, project);
        // Dropped before it answers (the client went away), this
        // subscription leaves the hub too.
        let registration = Unfollow {
            hub: &self.hub,
            id: self.id,
            project,
        };
        let head = match inner.app.log_head(self.principal, project).await {
            Ok(head) => head,
            Err(e) => {
                return Err(match e {
                    EventsError::NotFound | EventsError::ResyncRequired { .. } => {
                        SubscribeError::NotFound
                    }
                    EventsError::Invalid(errors) => SubscribeError::Invalid(errors),
                    EventsError::Port(e) => SubscribeError::Port(e),
                });
            }
        };
        if let Some(since) = since
            && since > head
        {
            return Err(SubscribeError::Invalid(ValidationErrors::single(
                "since",
                format!("is after the log's head ({head})"),
            )));
        }
        let Some(feed_head) = inner.followed_from(self.id, project, head) else {
            // Removed (or deleted) between our reading and now.
            return Err(SubscribeError::NotFound);
        };
        std::mem::forget(registration);
        let until = head.max(feed_head);
        let after = since.unwrap_or(head);
        let sub = if after >= until {
            Sub::Live { last: until }
        } else {
            Sub::Replaying {
                after,
                until,
                held: VecDeque::new(),
            }
        };
        self.subs.insert(project, sub);
        Ok(head)
    }

    /// Stops following `project`; answers whether it was followed.
    pub fn unsubscribe(&mut self, project: ProjectId) -> bool {
        if self.subs.remove(&project).is_none() {
            return false;
        }
        self.ready.retain(|next| next.project() != Some(project));
        self.hub.inner.unfollow(self.id, project);
        true
    }

    /// What to send next: each followed project's events in seq order,
    /// none twice, none skipped. Cancel-safe: dropped before it answers,
    /// it loses nothing.
    pub async fn next(&mut self) -> Next<R::Frame> {
        loop {
            if let Some(reason) = self.shared.closed.get() {
                return Next::Closed(*reason);
            }
            while let Ok(delivery) = self.rx.try_recv() {
                self.take(delivery);
            }
            if let Some(next) = self.ready.pop_front() {
                return next;
            }
            if let Some(project) = self.replaying() {
                self.replay(project).await;
                continue;
            }
            tokio::select! {
                delivery = self.rx.recv() => match delivery {
                    Some(delivery) => self.take(delivery),
                    // The hub is gone: the instance is stopping.
                    None => return Next::Closed(CloseReason::Unavailable),
                },
                () = self.shared.notify.notified() => {}
                _ = self.session_check.tick() => self.check_session(),
            }
        }
    }

    /// Checks the session in a task of its own (so no client message
    /// cancels it); a session that ended closes the stream.
    fn check_session(&self) {
        let sessions = self.hub.inner.app.sessions().clone();
        let (session, user) = (self.principal.session_id, self.principal.user_id);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match sessions.active(session).await {
                Ok(Some((owner, _))) if owner == user => {}
                Ok(_) => shared.close(CloseReason::SessionEnded),
                // The session store is down: keep the stream (its requests
                // would fail, not be refused) and check again later.
                Err(_) => {}
            }
        });
    }

    fn replaying(&self) -> Option<ProjectId> {
        self.subs
            .iter()
            .find(|(_, sub)| matches!(sub, Sub::Replaying { .. }))
            .map(|(id, _)| *id)
    }

    /// One page of `project`'s replay.
    async fn replay(&mut self, project: ProjectId) {
        let Some(Sub::Replaying { after, until, .. }) = self.subs.get(&project) else {
            return;
        };
        let (after, until) = (*after, *until);
        // A page never overflows the queue by itself.
        let limit =
            REPLAY_PAGE.min(u32::try_from(self.hub.inner.settings.queue).unwrap_or(u32::MAX));
        let query = EventQuery { after, limit };
        let inner = &self.hub.inner;
        let page = inner
            .app
            .project_events(self.principal, project, query)
            .await;
        // Read in full: now the state may change.
        let Some(Sub::Replaying { after, .. }) = self.subs.get_mut(&project) else {
            return;
        };
        match page {
            Ok(page) => {
                let mut last = *after;
                for event in page.items.iter().take_while(|e| e.seq <= until) {
                    self.ready.push_back(Next::Event {
                        project,
                        seq: event.seq,
                        frame: inner.render.render(event),
                    });
                    last = event.seq;
                }
                // The log may stop short of `until` only if the project was
                // deleted meanwhile (its `project.deleted` comes live).
                let done = last >= until || page.next.is_none();
                *after = last;
                if done {
                    self.go_live(project, until);
                }
            }
            Err(EventsError::ResyncRequired { head, .. }) => {
                // What follows the resync is what comes after its head (at
                // least `until`: the log's head now): held events up to
                // there are dropped, the client reloads them.
                let head = head.max(until);
                self.ready.push_back(Next::Resync { project, head });
                self.go_live(project, head);
            }
            Err(EventsError::NotFound) => {
                // No longer a member, or the project is gone: say which if
                // the hub already did.
                let reason = match self.subs.remove(&project) {
                    Some(Sub::Replaying { held, .. }) => held.iter().find_map(|d| match d {
                        Next::Unsubscribed { reason, .. } => Some(*reason),
                        _ => None,
                    }),
                    _ => None,
                };
                self.hub.inner.unfollow(self.id, project);
                self.ready.push_back(Next::Unsubscribed {
                    project,
                    reason: reason.unwrap_or(UnsubscribeReason::Removed),
                });
            }
            Err(EventsError::Invalid(_) | EventsError::Port(_)) => {
                self.shared.close(CloseReason::Unavailable);
            }
        }
    }

    /// The replay reached `until`: what was held comes next.
    fn go_live(&mut self, project: ProjectId, until: i64) {
        let Some(Sub::Replaying { held, .. }) =
            self.subs.insert(project, Sub::Live { last: until })
        else {
            return;
        };
        for delivery in held {
            self.take(delivery);
        }
    }

    /// Takes a delivery from the hub: ready to send, held behind a replay,
    /// dropped as already sent, or (after a gap) a reason to read the log.
    fn take(&mut self, delivery: Next<R::Frame>) {
        let Some(project) = delivery.project() else {
            return;
        };
        let queue = self.hub.inner.settings.queue;
        let Some(sub) = self.subs.get_mut(&project) else {
            return;
        };
        match sub {
            Sub::Replaying { until, held, .. } => {
                let keep = match &delivery {
                    Next::Event { seq, .. } => *seq > *until,
                    _ => true,
                };
                if keep {
                    held.push_back(delivery);
                    if held.len() > queue {
                        self.shared.close(CloseReason::TooSlow);
                    }
                }
            }
            Sub::Live { last } => match delivery {
                Next::Event { seq, frame, .. } => {
                    if seq == *last + 1 {
                        *last = seq;
                        self.ready.push_back(Next::Event {
                            project,
                            seq,
                            frame,
                        });
                    } else if seq > *last + 1 {
                        // Something before it is missing: read it from the
                        // log, then this.
                        let after = *last;
                        let mut held = VecDeque::new();
                        held.push_back(Next::Event {
                            project,
                            seq,
                            frame,
                        });
                        *sub = Sub::Replaying {
                            after,
                            until: seq - 1,
                            held,
                        };
                    }
                }
                Next::Unsubscribed { reason, .. } => {
                    self.subs.remove(&project);
                    self.ready.push_back(Next::Unsubscribed { project, reason });
                }
                Next::Resync { head, .. } => {
                    *last = (*last).max(head);
                    self.ready.push_back(Next::Resync { project, head });
                }
                Next::Closed(_) => {}
            },
        }
        if self.ready.len() > queue {
            self.shared.close(CloseReason::TooSlow);
        }
    }
}
