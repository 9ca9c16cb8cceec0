//! The announcement bus: after a change commits, its instance tells every
//! instance (itself included) over Redis pub/sub, so their subscribers hear
//! of it within milliseconds.
//!
//! Announcing is at most once. A lost announcement costs only latency: each
//! instance also polls the logs' heads and reads the log by `seq`. So the
//! publisher never blocks its caller nor retries. It drops announcements
//! when Redis is unreachable or its queue is full, and says so in a warning
//! at most once per few seconds. The listener resubscribes after every
//! failure. What it missed meanwhile is found by polling.
//!
//! # Wire format
//!
//! One message per announcement on the channel `{prefix}announcements`.
//! Its payload is UTF-8 text of fields separated by single spaces, and the
//! first field is the format's version, `1`:
//!
//! - `1 h <project id> <seq>`: [`Announcement::Head`]. `seq` is decimal,
//!   digits only (a head is never negative).
//! - `1 s <user id> <session id>`: [`Announcement::SessionsEnded`] for one
//!   session. `1 s <user id> -` is for all the user's sessions.
//!
//! Ids are hyphenated lowercase UUIDs (36 characters), e.g.
//! `1 h 0190a6f2-8a4e-7c31-9a7b-3f1e2d4c5b6a 42`.
//!
//! How it grows: a reader ignores fields after the ones it knows, and skips
//! (logging at debug) a kind it does not know. So a new kind, or a field
//! appended to a kind, needs no new version, and instances of two releases
//! can share a Redis during a rolling deploy. A change that older readers
//! would misread (fields reordered, a meaning changed) takes a new version,
//! which readers of another version skip with a warning.
//!
//! Pub/sub channels ignore the database number in the URL: the prefix is
//! what keeps deployments (or test runs) sharing a Redis apart.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use domain::{PortError, ProjectId, SessionId, UserId};
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Client, Msg, RedisError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

/// What [`PortError`]s from here name.
const WHAT: &str = "announcement bus";
/// The first field of every payload.
const VERSION: &str = "1";
/// Announcements waiting to be published. Beyond this they are dropped, so
/// a Redis outage cannot grow memory.
const QUEUE: usize = 10_000;
/// At most this many queued announcements go in one pipeline.
const BATCH: usize = 512;
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a pipeline of `PUBLISH`es, or a `SUBSCRIBE`, may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait before the first attempt to reconnect. It doubles after each
/// failure, up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the listener PINGs through its subscription. A connection cut
/// silently (no FIN, no RST) is replaced within about `PING_EVERY +
/// PING_TIMEOUT`.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A repeated warning is logged at most once per this long.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// `project`'s event log has reached `seq` (its events up to there are committed).
    Head { project: ProjectId, seq: i64 },
    /// `user`'s session ended (logout), or all their sessions (`None`: the account was disabled).
    SessionsEnded {
        user: UserId,
        session: Option<SessionId>,
    },
}

impl Announcement {
    /// The payload: see the module's documentation.
    fn encode(&self) -> String {
        match self {
            Self::Head { project, seq } => format!("{VERSION} h {project} {seq}"),
            Self::SessionsEnded {
                user,
                session: Some(session),
            } => format!("{VERSION} s {user} {session}"),
            Self::SessionsEnded {
                user,
                session: None,
            } => format!("{VERSION} s {user} -"),
        }
    }

    /// The announcement in `payload`. `Ok(None)` is a well-formed payload of
    /// a kind this version does not know.
    fn decode(payload: &[u8]) -> Result<Option<Self>, Malformed> {
        let text = std::str::from_utf8(payload).map_err(|_| Malformed("not UTF-8"))?;
        let mut fields = text.split(' ');
        if fields.next() != Some(VERSION) {
            return Err(Malformed("not version 1"));
        }
        let announcement = match fields.next() {
            None | Some("") => return Err(Malformed("no kind")),
            Some("h") => Self::Head {
                project: ProjectId(id(fields.next())?),
                seq: seq(fields.next())?,
            },
            Some("s") => Self::SessionsEnded {
                user: UserId(id(fields.next())?),
                session: match fields.next() {
                    Some("-") => None,
                    field => Some(SessionId(id(field)?)),
                },
            },
            Some(_) => return Ok(None),
        };
        Ok(Some(announcement))
    }
}

/// A hyphenated UUID, as `Uuid`'s `Display` writes it.
fn id(field: Option<&str>) -> Result<Uuid, Malformed> {
    match field {
        Some(text) if text.len() == 36 => Uuid::try_parse(text).map_err(|_| Malformed("bad id")),
        _ => Err(Malformed("bad id")),
    }
}

fn seq(field: Option<&str>) -> Result<i64, Malformed> {
    match field {
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().map_err(|_| Malformed("seq out of range"))
        }
        _ => Err(Malformed("bad seq")),
    }
}

/// Why a payload is not an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Malformed(&'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The start of a payload, for a log line: enough to recognise it, never
/// a flood.
fn excerpt(payload: &[u8]) -> String {
    const MOST: usize = 120;
    let shown = String::from_utf8_lossy(&payload[..payload.len().min(MOST)]);
    if payload.len() > MOST {
        format!("{shown}…")
    } else {
        shown.into_owned()
    }
}

/// Lets a repeated warning through at most once per [`WARN_EVERY`],
/// counting the occurrences it held back.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    /// Counts `n` more occurrences. Returns how many there were since the
    /// last warning let through (these included) when this one may be
    /// logged.
    fn hit(&mut self, n: u64) -> Option<u64> {
        self.hit_at(n, Instant::now())
    }

    fn hit_at(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.count += n;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }

    /// Starts afresh. Returns the occurrences not yet reported.
    fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.count)
    }
}

fn channel(prefix: &str) -> String {
    format!("{prefix}announcements")
}

/// The runtime to spawn on: an error, not a panic, outside one.
fn runtime(caller: &'static str) -> Result<tokio::runtime::Handle, PortError> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        PortError::unexpected(
            WHAT,
            format!("{caller} must be called within a Tokio runtime"),
        )
    })
}

/// Checks the URL. Never logged nor printed: it may hold a password (nor is
/// the `Client`, whose `Debug` shows it).
fn client(url: &str) -> Result<Client, PortError> {
    Client::open(url).map_err(|e| PortError::unexpected(WHAT, e))
}

/// Why a connection failed or was given up.
#[derive(Debug)]
enum Failure {
    Redis(RedisError),
    TimedOut(&'static str, Duration),
    /// The server closed the connection (or it broke): the stream ended.
    Closed,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(e) => e.fmt(f),
            Self::TimedOut(what, after) => write!(f, "{what} timed out after {after:?}"),
            Self::Closed => f.write_str("the connection was closed"),
        }
    }
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Self {
        Self::Redis(e)
    }
}

/// Runs `future` for at most `limit`.
async fn within<T>(
    what: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failure::TimedOut(what, limit)),
    }
}

/// Publishes announcements on the channel `{prefix}announcements`. Cheap to clone; never blocks the caller.
///
/// One task per `Announcer` (clones share it) publishes what
/// [`announce`](Self::announce) queues, in order, over one connection of
/// its own. It stops once every clone is dropped and the queue is empty.
#[derive(Clone, Debug)]
pub struct Announcer {
    queue: mpsc::Sender<Announcement>,
    shared: Arc<AnnouncerShared>,
}

#[derive(Debug)]
struct AnnouncerShared {
    channel: String,
    /// Announcements dropped because the queue was full.
    overflow: Mutex<Throttle>,
}

impl Announcer {
    /// Spawns the publishing task on the current tokio runtime (an error, not a panic, outside one, like RedisSessionStore::connect does). It owns one connection, opened lazily and reopened after a failure.
    ///
    /// Also fails on a malformed URL. Succeeds while Redis is down.
    pub fn start(url: &str, prefix: &str) -> Result<Self, PortError> {
        let runtime = runtime("Announcer::start")?;
        let client = client(url)?;
        let channel = channel(prefix);
        let (queue, receiver) = mpsc::channel(QUEUE);
        runtime.spawn(publish(client, channel.clone(), receiver));
        Ok(Self {
            queue,
            shared: Arc::new(AnnouncerShared {
                channel,
                overflow: Mutex::default(),
            }),
        })
    }

    /// Queues the announcements; the task publishes them (several queued ones in one pipeline). At most once: when Redis cannot be reached they are dropped, with a warning logged at most once per few seconds (not per message), and the queue is bounded (e.g. 10 000; beyond it, drop and warn) so a Redis outage cannot grow memory.
    pub fn announce(&self, announcements: Vec<Announcement>) {
        let mut dropped = 0;
        for announcement in announcements {
            match self.queue.try_send(announcement) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Only when the runtime is shutting down.
                    tracing::debug!("announcements: the publishing task has stopped");
                    return;
                }
            }
        }
        if dropped > 0 {
            let mut overflow = self
                .shared
                .overflow
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(dropped) = overflow.hit(dropped) {
                tracing::warn!(
                    channel = %self.shared.channel,
                    dropped,
                    "announcements: the queue is full ({QUEUE}); dropped announcements \
                     (counted since the last such warning)"
                );
            }
        }
    }
}

/// The publishing task: takes what is queued, up to [`BATCH`] at a time,
/// and publishes it in one pipeline. When a connection it has just dialed
/// fails (or cannot be dialed), it drops what comes until the back-off has
/// passed, then dials again.
async fn publish(client: Client, channel: String, mut queue: mpsc::Receiver<Announcement>) {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut connection: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let mut retry_at: Option<Instant> = None;
    // Announcements dropped because Redis failed, and the last failure.
    let mut failures = Throttle::default();
    let mut last_failure = String::new();
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let count = batch.len() as u64;
        let outcome = match &mut connection {
            Some(open) => Outcome::of(send(open, &channel, &batch).await, false),
            None if retry_at.is_some_and(|at| Instant::now() < at) => Outcome::BackingOff,
            None => match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(opened) => Outcome::of(
                    send(connection.insert(opened), &channel, &batch).await,
                    true,
                ),
                Err(error) => Outcome::Failed {
                    error,
                    dialed: true,
                },
            },
        };
        batch.clear();
        match outcome {
            Outcome::Sent => {
                backoff = MIN_BACKOFF;
                retry_at = None;
                let dropped = failures.reset();
                if dropped > 0 {
                    tracing::info!(
                        %channel,
                        dropped,
                        "announcements: publishing again (dropped since the last warning)"
                    );
                }
            }
            Outcome::BackingOff | Outcome::Failed { .. } => {
                if let Outcome::Failed { error, dialed } = outcome {
                    last_failure = error.to_string();
                    // The connection cannot be trusted after a failure.
                    connection = None;
                    // One that served before may just have died while idle
                    // (Redis restarted): the next batch dials at once. One
                    // dialed for this batch failing means Redis is failing.
                    if dialed {
                        retry_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
                if let Some(dropped) = failures.hit(count) {
                    tracing::warn!(
                        %channel,
                        dropped,
                        error = %last_failure,
                        "announcements: cannot publish to Redis; dropped announcements \
                         (counted since the last such warning)"
                    );
                }
            }
        }
    }
}

/// What became of a batch.
enum Outcome {
    Sent,
    /// Not sent: a recent failure's back-off has not passed.
    BackingOff,
    /// `dialed`: on a connection opened for this batch (or while opening
    /// it).
    Failed {
        error: RedisError,
        dialed: bool,
    },
}

impl Outcome {
    fn of(result: Result<(), RedisError>, dialed: bool) -> Self {
        match result {
            Ok(()) => Self::Sent,
            Err(error) => Self::Failed { error, dialed },
        }
    }
}

/// One pipeline of `PUBLISH`es, in order.
async fn send(
    connection: &mut MultiplexedConnection,
    channel: &str,
    batch: &[Announcement],
) -> Result<(), RedisError> {
    let mut pipe = redis::pipe();
    for announcement in batch {
        pipe.cmd("PUBLISH")
            .arg(channel)
            .arg(announcement.encode())
            .ignore();
    }
    pipe.query_async::<()>(connection).await
}

/// Listens on `{prefix}announcements` over one dedicated pub/sub connection until the returned Listener is dropped (then its task stops and the connection closes). Reconnects with back-off (e.g. 100 ms doubling to 5 s) whenever the connection fails, and PINGs through the pub/sub connection every few seconds (e.g. 5 s, with a timeout) so a silently cut connection is noticed and replaced. `on` receives every announcement decoded (this instance's own included); malformed payloads are logged and skipped, never a panic. `status(true)` is called each time the subscription is (re)established, `status(false)` each time it is lost.
///
/// Both callbacks run on the listener's task, one call at a time and in
/// the order of the messages: they should be quick (hand the announcement
/// to a channel, say), and must not block nor panic. Dropping the
/// `Listener` calls neither.
///
/// Fails on a malformed URL or outside a Tokio runtime. Succeeds while
/// Redis is down (and keeps trying).
pub fn listen(
    url: &str,
    prefix: &str,
    on: impl Fn(Announcement) + Send + Sync + 'static,
    status: impl Fn(bool) + Send + Sync + 'static,
) -> Result<Listener, PortError> {
    let runtime = runtime("listen")?;
    let client = client(url)?;
    let channel = channel(prefix);
    let connected = Arc::new(AtomicBool::new(false));
    let task = runtime.spawn(subscription(
        client,
        channel.clone(),
        connected.clone(),
        on,
        status,
    ));
    Ok(Listener {
        channel,
        connected,
        task,
    })
}

/// A running subscription, ended by dropping it.
#[derive(Debug)]
pub struct Listener {
    #[expect(dead_code, reason = "shown by Debug")]
    channel: String,
    connected: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Whether the subscription is established right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting drops the task's `PubSubStream`, which aborts the redis
        // crate's driver task and so closes the connection.
        self.task.abort();
    }
}

/// The listener's task: subscribe, receive until the connection fails,
/// wait, subscribe again, forever.
async fn subscription(
    client: Client,
    channel: String,
    connected: Arc<AtomicBool>,
    on: impl Fn(Announcement),
    status: impl Fn(bool),
) {
    let mut backoff = MIN_BACKOFF;
    let mut failures = Throttle::default();
    let mut malformed = Throttle::default();
    loop {
        match subscribe(&client, &channel).await {
            Ok((sink, stream)) => {
                let since = Instant::now();
                failures.reset();
                connected.store(true, Ordering::Release);
                tracing::info!(%channel, "announcements: subscribed");
                status(true);
                let failure = receive(sink, stream, &on, &mut malformed).await;
                connected.store(false, Ordering::Release);
                tracing::warn!(%channel, error = %failure, "announcements: subscription lost; resubscribing");
                status(false);
                // A subscription that lasted is a new start; one lost at
                // once (Redis refusing us, say) keeps backing off.
                if since.elapsed() >= MAX_BACKOFF {
                    backoff = MIN_BACKOFF;
                }
            }
            Err(failure) => {
                if let Some(attempts) = failures.hit(1) {
                    tracing::warn!(
                        %channel,
                        error = %failure,
                        attempts,
                        "announcements: cannot subscribe; retrying with back-off"
                    );
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A new pub/sub connection, subscribed to `channel`.
async fn subscribe(client: &Client, channel: &str) -> Result<(PubSubSink, PubSubStream), Failure> {
    let pubsub = within("connecting", CONNECT_TIMEOUT, client.get_async_pubsub()).await?;
    let (mut sink, stream) = pubsub.split();
    within("SUBSCRIBE", RESPONSE_TIMEOUT, sink.subscribe(channel)).await?;
    Ok((sink, stream))
}

/// Hands every message to `on` until the connection fails, PINGing
/// through it every [`PING_EVERY`] so a silent cut is noticed too.
async fn receive(
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    on: &impl Fn(Announcement),
    malformed: &mut Throttle,
) -> Failure {
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => deliver(&message, on, malformed),
                // The redis crate's driver ended: the connection is gone.
                None => return Failure::Closed,
            },
            _ = pings.tick() => {
                // Subscribed, Redis answers `["pong", ""]`, not `PONG`.
                if let Err(failure) =
                    within("PING", PING_TIMEOUT, sink.ping::<redis::Value>()).await
                {
                    return failure;
                }
            }
        }
    }
}

fn deliver(message: &Msg, on: &impl Fn(Announcement), malformed: &mut Throttle) {
    let payload = message.get_payload_bytes();
    match Announcement::decode(payload) {
        Ok(Some(announcement)) => on(announcement),
        Ok(None) => tracing::debug!(
            payload = %excerpt(payload),
            "announcements: skipped a kind this version does not know"
        ),
        Err(why) => {
            if let Some(skipped) = malformed.hit(1) {
                tracing::warn!(
                    channel = message.get_channel_name(),
                    payload = %excerpt(payload),
                    %why,
                    skipped,
                    "announcements: skipped a malformed payload \
                     (counted since the last such warning)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(text: &str) -> Uuid {
        Uuid::try_parse(text).expect("a UUID")
    }

    const A: &str = "0190a6f2-8a4e-7c31-9a7b-3f1e2d4c5b6a";
    const B: &str = "0190a6f2-8a4e-7c31-9a7b-3f1e2d4c5b6b";

    #[test]
    fn the_wire_format_is_as_documented() {
        let head = Announcement::Head {
            project: ProjectId(uuid(A)),
            seq: 42,
        };
        assert_eq!(head.encode(), format!("1 h {A} 42"));
        let one = Announcement::SessionsEnded {
            user: UserId(uuid(A)),
            session: Some(SessionId(uuid(B))),
        };
        assert_eq!(one.encode(), format!("1 s {A} {B}"));
        let all = Announcement::SessionsEnded {
            user: UserId(uuid(A)),
            session: None,
        };
        assert_eq!(all.encode(), format!("1 s {A} -"));
    }

    #[test]
    fn announcements_round_trip() {
        let announcements = [
            Announcement::Head {
                project: ProjectId::generate(),
                seq: 0,
            },
            Announcement::Head {
                project: ProjectId::generate(),
                seq: 1,
            },
            Announcement::Head {
                project: ProjectId::generate(),
                seq: i64::MAX,
            },
            Announcement::SessionsEnded {
                user: UserId::generate(),
                session: Some(SessionId::generate()),
            },
            Announcement::SessionsEnded {
                user: UserId::generate(),
                session: None,
            },
        ];
        for announcement in announcements {
            let payload = announcement.encode();
            assert_eq!(
                Announcement::decode(payload.as_bytes()),
                Ok(Some(announcement)),
                "{payload}"
            );
        }
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let long = "x".repeat(10_000);
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b" ".to_vec(),
            b"1".to_vec(),
            b"1 ".to_vec(),
            b"2 h".to_vec(),
            format!("2 h {A} 1").into_bytes(),
            format!("h {A} 1").into_bytes(),
            format!(" 1 h {A} 1").into_bytes(),
            format!("1 h {A}").into_bytes(),
            format!("1 h {A} ").into_bytes(),
            format!("1 h  {A} 1").into_bytes(),
            format!("1 h {A} -1").into_bytes(),
            format!("1 h {A} +1").into_bytes(),
            format!("1 h {A} 1.5").into_bytes(),
            format!("1 h {A} 9223372036854775808").into_bytes(),
            format!("1 h {A} {long}").into_bytes(),
            b"1 h not-a-uuid 1".to_vec(),
            format!("1 h {} 1", A.replace('-', "")).into_bytes(),
            format!("1 h {{{A}}} 1").into_bytes(),
            format!("1 h {} 1", &A[..35]).into_bytes(),
            format!("1 h {}g 1", &A[..35]).into_bytes(),
            b"1 s".to_vec(),
            format!("1 s {A}").into_bytes(),
            format!("1 s {A} ").into_bytes(),
            format!("1 s {A} nope").into_bytes(),
            format!("1 s - {B}").into_bytes(),
            [b"1 h ".as_slice(), &[0xff, 0xfe], b" 1"].concat(),
            format!("1\th {A} 1").into_bytes(),
        ];
        for payload in cases {
            let decoded = Announcement::decode(&payload);
            assert!(
                decoded.is_err(),
                "{:?} decoded as {decoded:?}",
                excerpt(&payload)
            );
        }
    }

    #[test]
    fn the_format_can_grow() {
        // A field appended to a known kind is ignored...
        assert_eq!(
            Announcement::decode(format!("1 h {A} 7 more fields").as_bytes()),
            Ok(Some(Announcement::Head {
                project: ProjectId(uuid(A)),
                seq: 7
            }))
        );
        assert_eq!(
            Announcement::decode(format!("1 s {A} - reason").as_bytes()),
            Ok(Some(Announcement::SessionsEnded {
                user: UserId(uuid(A)),
                session: None
            }))
        );
        // ...and a kind this version does not know is skipped, not an error.
        assert_eq!(Announcement::decode(b"1 x anything at all"), Ok(None));
        assert_eq!(Announcement::decode(b"1 project-renamed"), Ok(None));
    }

    #[test]
    fn an_excerpt_is_short() {
        assert_eq!(excerpt(b"1 h"), "1 h");
        let long = excerpt("é".repeat(1000).as_bytes());
        assert!(long.chars().count() <= 121, "{long}");
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_throttle_lets_one_warning_through_per_period_and_counts_the_rest() {
        let start = Instant::now();
        let mut throttle = Throttle::default();
        assert_eq!(throttle.hit_at(3, start), Some(3));
        assert_eq!(throttle.hit_at(1, start + WARN_EVERY / 2), None);
        assert_eq!(throttle.hit_at(2, start + WARN_EVERY / 2), None);
        assert_eq!(throttle.hit_at(1, start + WARN_EVERY), Some(4));
        assert_eq!(throttle.hit_at(5, start + WARN_EVERY), None);
        assert_eq!(throttle.reset(), 5);
        assert_eq!(throttle.hit_at(1, start + WARN_EVERY), Some(1));
    }

    #[test]
    fn construction_outside_a_runtime_is_an_error() {
        let url = "redis://127.0.0.1:6379";
        assert!(Announcer::start(url, "p:").is_err());
        assert!(listen(url, "p:", |_| {}, |_| {}).is_err());
    }

    #[test]
    fn a_bad_url_is_an_error_that_does_not_show_the_password() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            for url in [
                "not a url",
                "postgres://user:hunter2@localhost/db",
                "redis://user:hunter2@localhost:notaport",
            ] {
                let error = Announcer::start(url, "p:").expect_err(url);
                let shown = format!("{} {error:?}", domain::error::describe(&error));
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(listen(url, "p:", |_| {}, |_| {}).is_err(), "{url}");
            }
        });
    }
}
