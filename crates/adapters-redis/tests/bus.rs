//! The announcement bus end to end: on the Redis at `REDIS_URL` (under a
//! prefix of each test's own) where sharing it is harmless, and on a
//! throwaway `redis-server` of the test's own where the test kills
//! connections, stops Redis, or counts clients.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use adapters_redis::{Announcement, Announcer, Listener, listen};
use common::{describe, raw, redis_url, unique_prefix};
use domain::{ProjectId, SessionId, UserId};
use redis::aio::MultiplexedConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// How long anything that should happen may take: generous, since tests run
/// in parallel on a small machine. Waits poll, so a pass is quick.
const PATIENCE: Duration = Duration::from_secs(20);

fn head(project: ProjectId, seq: i64) -> Announcement {
    Announcement::Head { project, seq }
}

/// A listener and what it heard.
struct Heard {
    listener: Listener,
    announcements: mpsc::UnboundedReceiver<Announcement>,
    statuses: mpsc::UnboundedReceiver<bool>,
}

fn listener(url: &str, prefix: &str) -> Heard {
    let (heard, announcements) = mpsc::unbounded_channel();
    let (status, statuses) = mpsc::unbounded_channel();
    let listener = listen(
        url,
        prefix,
        move |a| {
            let _ = heard.send(a);
        },
        move |up| {
            let _ = status.send(up);
        },
    )
    .expect("listen");
    Heard {
        listener,
        announcements,
        statuses,
    }
}

impl Heard {
    /// The next status reported, which must be `expected`.
    async fn status(&mut self, expected: bool) {
        let status = timeout(PATIENCE, self.statuses.recv())
            .await
            .unwrap_or_else(|_| panic!("no status({expected}) within {PATIENCE:?}"))
            .expect("the listener's task is running");
        assert_eq!(status, expected, "status reported");
        assert_eq!(self.listener.is_connected(), expected, "is_connected");
    }

    /// Waits for the first subscription.
    async fn subscribed(mut self) -> Self {
        self.status(true).await;
        self
    }

    async fn next(&mut self) -> Announcement {
        timeout(PATIENCE, self.announcements.recv())
            .await
            .unwrap_or_else(|_| panic!("no announcement within {PATIENCE:?}"))
            .expect("the listener's task is running")
    }

    async fn expect(&mut self, expected: &[Announcement]) {
        for (i, announcement) in expected.iter().enumerate() {
            assert_eq!(&self.next().await, announcement, "announcement {i}");
        }
    }

    /// Nothing more arrives for a while, nor any status change.
    async fn quiet(&mut self, period: Duration) {
        if let Ok(announcement) = timeout(period, self.announcements.recv()).await {
            panic!("heard {announcement:?}");
        }
        assert!(self.statuses.try_recv().is_err(), "no status change");
    }
}

/// Announcing reaches `heard` again (after an outage): announces heads of
/// `project` (one every 100 ms, counting from `seq`) until one is heard,
/// then checks that a batch arrives whole and in order.
async fn announcing_resumes(
    announcer: &Announcer,
    heard: &mut Heard,
    project: ProjectId,
    mut seq: i64,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        announcer.announce(vec![head(project, seq)]);
        seq += 1;
        if let Ok(got) = timeout(Duration::from_millis(100), heard.announcements.recv()).await {
            let got = got.expect("the listener's task is running");
            assert!(
                matches!(got, Announcement::Head { project: p, seq: s } if p == project && s < seq),
                "{got:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing heard within {PATIENCE:?}"
        );
    }
    // Drop what the loop announced after the one heard first.
    sleep(Duration::from_millis(300)).await;
    while heard.announcements.try_recv().is_ok() {}
    let sent: Vec<_> = (seq..seq + 20).map(|s| head(project, s)).collect();
    announcer.announce(sent.clone());
    heard.expect(&sent).await;
}

/// Fails, naming `REDIS_URL`, when the shared Redis does not answer.
async fn shared_redis() -> (String, MultiplexedConnection) {
    let mut conn = raw().await;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("no Redis at REDIS_URL ({}): {}", redis_url(), describe(&e)));
    (redis_url(), conn)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// A `redis-server` of the test's own on a free port, without persistence,
/// killed when dropped.
struct TempRedis {
    port: u16,
    child: Option<Child>,
}

impl TempRedis {
    async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Self {
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): these tests start a Redis of their own")
            });
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.try_connect().await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("redis-server on port {} does not answer: {e}", self.port)
                }
                Err(_) => sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn try_connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(conn)
    }

    async fn connect(&self) -> MultiplexedConnection {
        self.try_connect().await.expect("connect to redis-server")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many clients of `kind` (`pubsub`, `normal`) Redis has.
async fn clients(conn: &mut MultiplexedConnection, kind: &str) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg(kind)
        .query_async(conn)
        .await
        .expect("CLIENT LIST");
    list.lines().filter(|line| !line.is_empty()).count()
}

/// Waits until Redis has `expected` clients of `kind`.
async fn await_clients(conn: &mut MultiplexedConnection, kind: &str, expected: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count = clients(conn, kind).await;
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} {kind} clients, not {expected}, after {PATIENCE:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_listener_hears_its_prefix_and_no_other() {
    let (url, _conn) = shared_redis().await;
    let prefix = unique_prefix();
    let mut ours = listener(&url, &prefix).subscribed().await;
    let mut theirs = listener(&url, &unique_prefix()).subscribed().await;

    let announcer = Announcer::start(&url, &prefix).expect("start");
    let sent = vec![
        head(ProjectId::generate(), 1),
        Announcement::SessionsEnded {
            user: UserId::generate(),
            session: Some(SessionId::generate()),
        },
        Announcement::SessionsEnded {
            user: UserId::generate(),
            session: None,
        },
    ];
    announcer.announce(sent.clone());
    ours.expect(&sent).await;
    ours.quiet(Duration::from_millis(300)).await;
    theirs.quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn every_listener_hears_every_announcement_its_own_included() {
    let (url, _conn) = shared_redis().await;
    let prefix = unique_prefix();
    let mut first = listener(&url, &prefix).subscribed().await;
    let mut second = listener(&url, &prefix).subscribed().await;

    // Two instances' announcers, each also heard by its own listener.
    let one = Announcer::start(&url, &prefix).expect("start");
    let other = Announcer::start(&url, &prefix).expect("start");
    let project = ProjectId::generate();
    one.announce(vec![head(project, 1)]);
    first.expect(&[head(project, 1)]).await;
    second.expect(&[head(project, 1)]).await;
    other.announce(vec![head(project, 2)]);
    first.expect(&[head(project, 2)]).await;
    second.expect(&[head(project, 2)]).await;
    first.quiet(Duration::from_millis(200)).await;
    second.quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn one_announcers_announcements_arrive_in_order() {
    let (url, _conn) = shared_redis().await;
    let prefix = unique_prefix();
    let mut heard = listener(&url, &prefix).subscribed().await;
    let announcer = Announcer::start(&url, &prefix).expect("start");
    let clone = announcer.clone();

    let project = ProjectId::generate();
    let mut sent = Vec::new();
    let mut seq = 0;
    // Batches of every size, one at a time and beyond one pipeline, from
    // the announcer and its clone.
    for (i, size) in [1, 7, 1, 600, 3, 1, 1, 1200, 2, 50].into_iter().enumerate() {
        let batch: Vec<_> = (0..size)
            .map(|_| {
                seq += 1;
                head(project, seq)
            })
            .collect();
        sent.extend(batch.clone());
        if i % 2 == 0 {
            announcer.announce(batch);
        } else {
            clone.announce(batch);
        }
    }
    heard.expect(&sent).await;
    heard.quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn malformed_payloads_are_skipped_and_listening_goes_on() {
    let (url, mut conn) = shared_redis().await;
    let prefix = unique_prefix();
    let mut heard = listener(&url, &prefix).subscribed().await;
    let channel = format!("{prefix}announcements");
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"hello".to_vec(),
        b"2 h 0190a6f2-8a4e-7c31-9a7b-3f1e2d4c5b6a 1".to_vec(),
        b"1 h 0190a6f2-8a4e-7c31-9a7b-3f1e2d4c5b6a -1".to_vec(),
        b"1 s not-a-user -".to_vec(),
        vec![0xff, 0x00, 0xfe],
        vec![b'x'; 100_000],
        // Well-formed, of a kind a later version may add: skipped too.
        b"1 z something new".to_vec(),
    ];
    for payload in &garbage {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload.as_slice())
            .query_async(&mut conn)
            .await
            .expect("PUBLISH");
    }
    let announcer = Announcer::start(&url, &prefix).expect("start");
    let project = ProjectId::generate();
    announcer.announce(vec![head(project, 1)]);
    heard.expect(&[head(project, 1)]).await;
    heard.quiet(Duration::from_millis(200)).await;
    assert!(heard.listener.is_connected());
}

#[tokio::test]
async fn a_listener_resubscribes_when_its_connection_is_killed() {
    let redis = TempRedis::start().await;
    let mut conn = redis.connect().await;
    let mut heard = listener(&redis.url(), "p:").subscribed().await;
    let announcer = Announcer::start(&redis.url(), "p:").expect("start");
    let project = ProjectId::generate();
    announcer.announce(vec![head(project, 1)]);
    heard.expect(&[head(project, 1)]).await;

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1, "the listener's one connection");
    heard.status(false).await;
    heard.status(true).await;
    announcer.announce(vec![head(project, 2)]);
    heard.expect(&[head(project, 2)]).await;
    assert_eq!(clients(&mut conn, "pubsub").await, 1);
}

#[tokio::test]
async fn a_listener_and_an_announcer_carry_on_after_redis_restarts() {
    let mut redis = TempRedis::start().await;
    let mut heard = listener(&redis.url(), "p:").subscribed().await;
    let announcer = Announcer::start(&redis.url(), "p:").expect("start");
    let project = ProjectId::generate();
    announcer.announce(vec![head(project, 1)]);
    heard.expect(&[head(project, 1)]).await;

    redis.stop();
    heard.status(false).await;
    // Down for long enough that the listener backs off a few times, and
    // the announcer drops what it is given meanwhile.
    for seq in 2..10 {
        announcer.announce(vec![head(project, seq)]);
        sleep(Duration::from_millis(100)).await;
    }
    assert!(!heard.listener.is_connected());
    redis.restart().await;
    heard.status(true).await;
    // What was announced while Redis was down is lost (at most once); what
    // is announced now arrives, in order, once the announcer has
    // reconnected.
    announcing_resumes(&announcer, &mut heard, project, 100).await;
}

/// A TCP proxy that can freeze the connections it carries: they stay
/// open, but nothing passes any more, as when a network path dies without
/// a FIN or RST. Connections opened after a freeze pass normally.
fn freezing_proxy(
    listener: TcpListener,
    upstream: SocketAddr,
) -> (JoinHandle<()>, watch::Sender<u64>) {
    let (freeze, generation) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut generation = generation.clone();
            let mine = *generation.borrow();
            connections.spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = async { drop(generation.wait_for(|g| *g > mine).await) } => {
                        // Hold both sockets open, silently.
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (task, freeze)
}

#[tokio::test]
async fn a_silently_cut_connection_is_noticed_by_the_ping_and_replaced() {
    let redis = TempRedis::start().await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", redis.port)
        .parse()
        .expect("address");
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let through = format!("redis://{}", front.local_addr().expect("address"));
    let (proxy, freeze) = freezing_proxy(front, upstream);

    let mut heard = listener(&through, "p:").subscribed().await;
    let announcer = Announcer::start(&redis.url(), "p:").expect("start");
    let project = ProjectId::generate();
    announcer.announce(vec![head(project, 1)]);
    heard.expect(&[head(project, 1)]).await;

    let cut = Instant::now();
    freeze.send_modify(|g| *g += 1);
    // Nothing tells the listener but its PING going unanswered: every 5 s,
    // 3 s to answer.
    heard.status(false).await;
    let noticed = cut.elapsed();
    assert!(
        noticed <= Duration::from_secs(12),
        "noticed after {noticed:?}"
    );
    heard.status(true).await;
    announcer.announce(vec![head(project, 2)]);
    heard.expect(&[head(project, 2)]).await;
    proxy.abort();
}

#[tokio::test]
async fn announcing_while_redis_is_unreachable_neither_blocks_nor_fails_and_resumes_when_it_is_back()
 {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let announcer = Announcer::start(&url, "p:").expect("start while Redis is down");
    let mut heard = listener(&url, "p:");
    let project = ProjectId::generate();

    // More than the queue holds, in one call and in many: each returns at
    // once, the excess dropped.
    let started = Instant::now();
    announcer.announce((0..25_000).map(|seq| head(project, seq)).collect());
    for seq in 0..1_000 {
        announcer.announce(vec![head(project, seq)]);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "announce took {took:?}");
    sleep(Duration::from_millis(500)).await;
    assert!(!heard.listener.is_connected());
    assert!(heard.statuses.try_recv().is_err(), "never subscribed yet");

    let redis = TempRedis::start_on(port).await;
    heard.status(true).await;
    announcing_resumes(&announcer, &mut heard, project, 100_000).await;
    drop(redis);
}

#[tokio::test]
async fn dropping_a_listener_closes_its_connection_and_stops_its_task() {
    let redis = TempRedis::start().await;
    let mut conn = redis.connect().await;
    let token = Arc::new(());
    let (on_token, status_token) = (token.clone(), token.clone());
    let (up, mut ups) = mpsc::unbounded_channel();
    let listener = listen(
        &redis.url(),
        "p:",
        move |_| {
            let _ = &on_token;
        },
        move |status| {
            let _ = &status_token;
            let _ = up.send(status);
        },
    )
    .expect("listen");
    let subscribed = timeout(PATIENCE, ups.recv())
        .await
        .expect("subscribed in time");
    assert_eq!(subscribed, Some(true));
    assert!(listener.is_connected());
    assert_eq!(clients(&mut conn, "pubsub").await, 1);

    drop(listener);
    await_clients(&mut conn, "pubsub", 0).await;
    // The task, and with it the callbacks, are gone.
    let deadline = Instant::now() + PATIENCE;
    while Arc::strong_count(&token) > 1 {
        assert!(Instant::now() < deadline, "the callbacks are still held");
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ups.recv().await, None, "no status(false) on drop");

    // Likewise an announcer's task and connection end with its last clone.
    let announcer = Announcer::start(&redis.url(), "p:").expect("start");
    let mut heard = listener_on(&redis).await;
    announcer
        .clone()
        .announce(vec![head(ProjectId::generate(), 1)]);
    heard.next().await;
    // Ours, and the announcer's.
    assert_eq!(clients(&mut conn, "normal").await, 2);
    drop(announcer);
    await_clients(&mut conn, "normal", 1).await;
}

async fn listener_on(redis: &TempRedis) -> Heard {
    listener(&redis.url(), "p:").subscribed().await
}
