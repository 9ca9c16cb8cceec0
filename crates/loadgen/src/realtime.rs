//! The `realtime` scenario: N WebSocket subscribers of one project on one
//! or more instances, a writer changing the project's tasks at a fixed
//! rate through one instance, and what it takes for each change to reach
//! every subscriber.
//!
//! Latency is receipt time minus the event's `at`, the change's timestamp
//! taken inside its transaction before the commit: an upper bound of
//! commit-to-receipt (same machine, same clock).
//!
//! The subscribers parse only what they need of each event (`seq`, `at`)
//! and share one histogram per shard, so that the client takes as little
//! of the machine as it can: it competes with the servers for the cores.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::api;
use crate::histogram::{Histogram, Summary};
use crate::procfs;

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// What the run is called in the report.
    pub label: String,
    /// The instances' base URLs (`http://127.0.0.1:PORT`) and process ids.
    pub instances: Vec<(String, Option<u32>)>,
    /// The instance writes go to (index into `instances`).
    pub write_to: usize,
    /// The instances subscribers connect to, round-robin.
    pub subscribe_to: Vec<usize>,
    pub subscribers: usize,
    /// Changes per second.
    pub rate: f64,
    pub duration: Duration,
    /// Connections opened per second while ramping up.
    pub ramp: usize,
    /// How long to wait after the last change for the last deliveries.
    pub drain: Duration,
    /// Threads of the client's runtime (it competes with the servers).
    pub client_threads: usize,
    /// Tasks the writer changes in turn.
    pub tasks: usize,
    /// Targets to judge the run by: fan-out p99 and memory per connection.
    pub target_p99_ms: Option<f64>,
    pub target_kib_per_connection: Option<f64>,
    /// Where the result goes (JSON).
    pub out: PathBuf,
}

/// What a run measured (serialised as the report's JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub scenario: String,
    pub label: String,
    /// Instances running; subscribers on `subscriberInstances` of them.
    pub instances: usize,
    pub subscriber_instances: usize,
    /// Writes went to an instance no subscriber is on.
    pub cross_instance: bool,
    pub subscribers: usize,
    pub connected: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub client_threads: usize,
    /// Commit (the event's `at`) to receipt, per delivery.
    pub fanout_ms: Summary,
    /// Per event: commit to the moment the last subscriber had it.
    pub last_subscriber_ms: Summary,
    /// The writer's request round trips.
    pub write_ms: Summary,
    pub changes: Changes,
    pub deliveries: Deliveries,
    pub errors: Errors,
    pub memory: Memory,
    pub cpu: Cpu,
    pub ramp: Ramp,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Changes the writer made (answered 200).
    pub ok: u64,
    pub failed: u64,
    /// Ticks skipped because too many requests were in flight.
    pub skipped: u64,
    /// `ok` over the writing time.
    pub per_second: f64,
    /// Events in the log from the first change to the last.
    pub events: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deliveries {
    /// Events × subscribers connected.
    pub expected: u64,
    pub received: u64,
    /// `received` over the time from the first change to the last receipt:
    /// the fan-out throughput sustained.
    pub per_second: f64,
    /// Whether every subscriber had every event within the drain time.
    pub complete: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Errors {
    pub connect_failed: u64,
    /// Events a subscriber never got (or skipped).
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Sockets the server closed (or that broke), by close code (0: none).
    pub closed: u64,
    pub close_codes: BTreeMap<u16, u64>,
    /// Events not every subscriber got (their last-subscriber time is not
    /// counted).
    pub incomplete_events: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect_failed + self.missing + self.duplicates + self.out_of_order + self.closed
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Resident memory of the subscribers' instances before they connect.
    pub rss_before_kib: u64,
    /// …and with every subscriber connected, subscribed and idle.
    pub rss_idle_kib: u64,
    pub kib_per_idle_connection: f64,
    /// The largest resident memory of any instance over the run (VmHWM).
    pub peak_rss_kib: u64,
    pub loadgen_peak_rss_kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub cpus: usize,
    /// From the first change to the end of the drain.
    pub window_s: f64,
    /// CPU seconds of all instances in the window, and as a share of one
    /// core (100 = one core busy).
    pub server_s: f64,
    pub server_pct: f64,
    pub loadgen_s: f64,
    pub loadgen_pct: f64,
    /// PostgreSQL's and Redis's processes (all of them on the machine).
    pub services_s: f64,
    pub services_pct: f64,
    /// What the machine was busy with besides the instances, the load
    /// generator and the services (the kernel's network processing in
    /// softirq context, other work on the machine), 100 = one core.
    pub other_pct: f64,
    /// The whole machine's busy share (100 = all cores busy): the servers,
    /// the client, PostgreSQL, Redis and anything else.
    pub machine_busy_pct: f64,
    /// The subscribers' instances' CPU time per connection opened and
    /// subscribed, during the ramp.
    pub connect_cpu_us: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ramp {
    pub seconds: f64,
    pub per_second: f64,
}

/// A target of the issue, and whether the run met it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub what: String,
    pub limit: f64,
    pub value: f64,
    pub met: bool,
}

/// What the subscribers share.
struct Shared {
    /// Fan-out latencies, sharded by subscriber to keep locks uncontended.
    latency: Vec<Mutex<Histogram>>,
    received: AtomicU64,
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
    skipped: AtomicU64,
    close_codes: Mutex<BTreeMap<u16, u64>>,
    /// Per subscriber: the last seq it got (`i64::MIN` until subscribed).
    last: Vec<AtomicI64>,
    /// Per subscriber: still open.
    open: Vec<AtomicBool>,
    subscribed: AtomicUsize,
    failed: AtomicUsize,
    /// Per event (seq − base − 1): its `at`, the latest receipt (Unix ns),
    /// how many subscribers got it.
    base: i64,
    event_at: Vec<AtomicU64>,
    event_last: Vec<AtomicU64>,
    event_receipts: Vec<AtomicU32>,
    /// The last receipt of anything, Unix ns.
    last_receipt: AtomicU64,
}

const SHARDS: usize = 16;

/// The services' process names, for their share of the CPU.
const SERVICES: &[&str] = &["postgres", "redis-server"];

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `seq` and `at` (Unix ns) of an event message, found without parsing the
/// rest: `{"type":"event","event":{"projectId":…,"seq":N,…,"at":"…",…}}`.
fn seq_and_at(text: &str) -> Option<(i64, u64)> {
    let rest = text.strip_prefix(r#"{"type":"event","event":{"#)?;
    let seq_at = rest.find(r#""seq":"#)? + 6;
    let digits = &rest[seq_at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let seq = digits[..end].parse().ok()?;
    let at_start = rest.find(r#""at":""#)? + 6;
    let at = &rest[at_start..];
    let at = &at[..at.find('"')?];
    let at = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    Some((seq, u64::try_from(at.unix_timestamp_nanos()).ok()?))
}

impl Shared {
    fn on_event(&self, id: usize, last: &mut i64, seq: i64, at: u64, now: u64) {
        if seq == *last + 1 {
        } else if seq > *last + 1 {
            self.skipped
                .fetch_add((seq - *last - 1) as u64, Ordering::Relaxed);
        } else if seq == *last {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        if seq > *last {
            *last = seq;
            self.last[id].store(seq, Ordering::Relaxed);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_receipt.fetch_max(now, Ordering::Relaxed);
        let micros = now.saturating_sub(at) / 1000;
        if let Ok(mut histogram) = self.latency[id % SHARDS].lock() {
            histogram.record(micros);
        }
        let index = seq - self.base - 1;
        if let Ok(index) = usize::try_from(index)
            && index < self.event_at.len()
        {
            self.event_at[index].store(at, Ordering::Relaxed);
            self.event_last[index].fetch_max(now, Ordering::Relaxed);
            self.event_receipts[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn closed(&self, id: usize, code: u16) {
        self.open[id].store(false, Ordering::Relaxed);
        if let Ok(mut codes) = self.close_codes.lock() {
            *codes.entry(code).or_default() += 1;
        }
    }
}

/// One subscriber: connects, subscribes, then records every event until
/// the socket closes (or the run aborts its task).
async fn subscriber(
    id: usize,
    url: String,
    token: Arc<str>,
    project: Arc<str>,
    shared: Arc<Shared>,
) {
    let fail = || {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    };
    let Ok(mut request) = url.as_str().into_client_request() else {
        return fail();
    };
    let Ok(bearer) = format!("Bearer {token}").parse() else {
        return fail();
    };
    request.headers_mut().insert("Authorization", bearer);
    // Small buffers: thousands of sockets, each getting small messages.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let connected = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await;
    let Ok(Ok((mut socket, _))) = connected else {
        return fail();
    };
    let subscribe = format!(r#"{{"type":"subscribe","projectId":"{project}"}}"#);
    if socket.send(Message::Text(subscribe.into())).await.is_err() {
        return fail();
    }
    let mut last = loop {
        let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(30), socket.next()).await
        else {
            return fail();
        };
        if let Message::Text(text) = message {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            match (value["type"].as_str(), value["headSeq"].as_i64()) {
                (Some("subscribed"), Some(head)) => break head,
                (Some("error"), _) => return fail(),
                _ => {}
            }
        }
    };
    shared.last[id].store(last, Ordering::Relaxed);
    shared.open[id].store(true, Ordering::Relaxed);
    shared.subscribed.fetch_add(1, Ordering::Relaxed);
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Text(text)) => {
                let now = unix_nanos();
                if let Some((seq, at)) = seq_and_at(&text) {
                    shared.on_event(id, &mut last, seq, at, now);
                }
            }
            Ok(Message::Close(frame)) => {
                return shared.closed(id, frame.map_or(0, |f| f.code.into()));
            }
            Ok(_) => {}
            Err(_) => return shared.closed(id, 0),
        }
    }
    shared.closed(id, 0);
}

/// Sums `read` over the processes, or `None` if any is unknown.
fn sum_over(pids: &[u32], read: impl Fn(u32) -> Option<u64>) -> Option<u64> {
    pids.iter().map(|&pid| read(pid)).sum()
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|&pid| procfs::cpu_seconds(pid))
        .sum()
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// Runs the scenario on its own runtime and writes the result.
pub fn run(options: &Options) -> Result<RunResult, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the client's runtime: {e}"))?;
    let result = runtime.block_on(measure(options))?;
    // Subscriber tasks still running are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let json = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&options.out, json).map_err(|e| format!("{}: {e}", options.out.display()))?;
    Ok(result)
}

async fn measure(options: &Options) -> Result<RunResult, String> {
    let client = api::client();
    for (base, pid) in &options.instances {
        api::wait_healthy(&client, base, *pid, Duration::from_secs(60)).await?;
    }
    let write_base = &options
        .instances
        .get(options.write_to)
        .ok_or("--write-to names no instance")?
        .0;
    let subscribe_bases: Vec<String> = options
        .subscribe_to
        .iter()
        .map(|&i| {
            options
                .instances
                .get(i)
                .map(|(base, _)| format!("{}/api/v1/ws", base.replace("http://", "ws://")))
                .ok_or_else(|| format!("--subscribe-to {i} names no instance"))
        })
        .collect::<Result<_, _>>()?;
    let all_pids: Vec<u32> = options.instances.iter().filter_map(|(_, p)| *p).collect();
    let sub_pids: Vec<u32> = {
        let mut pids: Vec<u32> = options
            .subscribe_to
            .iter()
            .filter_map(|&i| options.instances.get(i).and_then(|(_, p)| *p))
            .collect();
        pids.dedup();
        pids
    };

    // Setup: a user, a project, the tasks the writer changes.
    let stamp = unix_nanos();
    let token = api::sign_up(&client, write_base, &format!("bench-{stamp}@example.com")).await?;
    let project = api::create_project(&client, write_base, &token, "Realtime benchmark").await?;
    let mut tasks = Vec::new();
    for n in 0..options.tasks.max(1) {
        tasks.push(
            api::create_task(&client, write_base, &token, &project, &format!("Task {n}")).await?,
        );
    }
    let base = api::head_seq(&client, write_base, &token, &project).await?;

    let events_planned = (options.rate * options.duration.as_secs_f64()).ceil() as usize;
    let capacity = events_planned * 2 + 1000;
    let n = options.subscribers;
    let shared = Arc::new(Shared {
        latency: (0..SHARDS)
            .map(|_| Mutex::new(Histogram::default()))
            .collect(),
        received: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        close_codes: Mutex::new(BTreeMap::new()),
        last: (0..n).map(|_| AtomicI64::new(i64::MIN)).collect(),
        open: (0..n).map(|_| AtomicBool::new(false)).collect(),
        subscribed: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        base,
        event_at: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        event_last: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        event_receipts: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
        last_receipt: AtomicU64::new(0),
    });

    // Memory before: the server warmed up by the setup, no sockets yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = sum_over(&sub_pids, procfs::rss_kib).unwrap_or(0);
    let cpu_before_ramp = cpu_of(&sub_pids);

    // Ramp: `ramp` connections a second, spread over the instances.
    eprintln!(
        "loadgen: {}: opening {n} subscribers at {}/s",
        options.label, options.ramp
    );
    let token: Arc<str> = token.into();
    let project_id: Arc<str> = project.clone().into();
    let ramp_started = Instant::now();
    let mut sockets = tokio::task::JoinSet::new();
    let mut ticks =
        tokio::time::interval(Duration::from_secs_f64(1.0 / options.ramp.max(1) as f64));
    for id in 0..n {
        ticks.tick().await;
        let url = subscribe_bases[id % subscribe_bases.len()].clone();
        sockets.spawn(subscriber(
            id,
            url,
            token.clone(),
            project_id.clone(),
            shared.clone(),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared.subscribed.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ramp_seconds = ramp_started.elapsed().as_secs_f64();
    let connected = shared.subscribed.load(Ordering::Relaxed);
    let connect_failed = n - connected;
    let connect_cpu = cpu_of(&sub_pids) - cpu_before_ramp;
    eprintln!(
        "loadgen: {}: {connected} subscribed in {ramp_seconds:.1} s ({connect_failed} failed)",
        options.label
    );

    // Memory with every socket idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = sum_over(&sub_pids, procfs::rss_kib).unwrap_or(0);

    // The writer: `rate` changes a second, open loop, through one instance.
    eprintln!(
        "loadgen: {}: writing {} changes/s for {} s",
        options.label,
        options.rate,
        options.duration.as_secs()
    );
    let me = std::process::id();
    let cpu_start = (
        cpu_of(&all_pids),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::cpu_seconds_of_named(SERVICES),
    );
    let machine_start = procfs::machine_ticks();
    let window_start = Instant::now();
    let write_started = unix_nanos();
    let written = write(&client, write_base, &token, &tasks, options).await;
    let write_seconds = window_start.elapsed().as_secs_f64();
    let head = api::head_seq(&client, write_base, &token, &project).await?;

    // Drain: until every open subscriber has the head, or time is up.
    let deadline = Instant::now() + options.drain;
    let all_there = |shared: &Shared| {
        shared.last.iter().zip(&shared.open).all(|(last, open)| {
            !open.load(Ordering::Relaxed) || last.load(Ordering::Relaxed) >= head
        })
    };
    while !all_there(&shared) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let complete = all_there(&shared);
    let window = window_start.elapsed().as_secs_f64();
    let cpu_end = (
        cpu_of(&all_pids),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::cpu_seconds_of_named(SERVICES),
    );
    let machine_busy_pct = match (machine_start, procfs::machine_ticks()) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            100.0 * (busy1 - busy0) as f64 / (total1 - total0) as f64
        }
        _ => 0.0,
    };
    let peak_rss = all_pids
        .iter()
        .filter_map(|&pid| procfs::peak_rss_kib(pid))
        .max()
        .unwrap_or(0);
    sockets.abort_all();

    // What the subscribers saw.
    let events = head - base;
    let mut latency = Histogram::default();
    for shard in &shared.latency {
        if let Ok(shard) = shard.lock() {
            latency.merge(&shard);
        }
    }
    let mut missing = shared.skipped.load(Ordering::Relaxed);
    for last in &shared.last {
        let last = last.load(Ordering::Relaxed);
        if last != i64::MIN && last < head {
            missing += (head - last) as u64;
        }
    }
    let mut last_subscriber = Histogram::default();
    let mut incomplete_events = 0;
    for index in 0..usize::try_from(events).unwrap_or(0).min(capacity) {
        let receipts = shared.event_receipts[index].load(Ordering::Relaxed) as usize;
        if receipts >= connected && connected > 0 {
            let at = shared.event_at[index].load(Ordering::Relaxed);
            let last = shared.event_last[index].load(Ordering::Relaxed);
            last_subscriber.record(last.saturating_sub(at) / 1000);
        } else {
            incomplete_events += 1;
        }
    }
    let received = shared.received.load(Ordering::Relaxed);
    let last_receipt = shared.last_receipt.load(Ordering::Relaxed);
    let delivery_seconds = (last_receipt.saturating_sub(write_started)) as f64 / 1e9;
    let close_codes = shared
        .close_codes
        .lock()
        .map(|codes| codes.clone())
        .unwrap_or_default();
    let errors = Errors {
        connect_failed: connect_failed as u64,
        missing,
        duplicates: shared.duplicates.load(Ordering::Relaxed),
        out_of_order: shared.out_of_order.load(Ordering::Relaxed),
        closed: close_codes.values().sum(),
        close_codes,
        incomplete_events,
    };
    let kib_per_idle_connection = if connected == 0 {
        0.0
    } else {
        rss_idle.saturating_sub(rss_before) as f64 / connected as f64
    };
    let server_s = cpu_end.0 - cpu_start.0;
    let loadgen_s = cpu_end.1 - cpu_start.1;
    let services_s = cpu_end.2 - cpu_start.2;
    let cores = procfs::cpus() as f64;
    let other_pct =
        machine_busy_pct * cores - 100.0 * (server_s + loadgen_s + services_s) / window.max(1e-9);
    let fanout_ms = latency.summary();
    let mut targets = Vec::new();
    if let Some(limit) = options.target_p99_ms {
        targets.push(Target {
            what: "fan-out p99 (ms)".to_owned(),
            limit,
            value: fanout_ms.p99,
            // Met only at the rate asked for, every change accepted.
            met: fanout_ms.p99 < limit
                && errors.total() == 0
                && complete
                && written.failed == 0
                && written.ok as f64
                    >= 0.95 * options.rate * write_seconds.min(options.duration.as_secs_f64()),
        });
    }
    if let Some(limit) = options.target_kib_per_connection {
        targets.push(Target {
            what: "server KiB per idle connection".to_owned(),
            limit,
            value: round(kib_per_idle_connection, 1),
            met: kib_per_idle_connection < limit && connected == n,
        });
    }
    Ok(RunResult {
        scenario: "realtime".to_owned(),
        label: options.label.clone(),
        instances: options.instances.len(),
        subscriber_instances: sub_pids.len().max(1),
        cross_instance: !options.subscribe_to.contains(&options.write_to),
        subscribers: n,
        connected,
        rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        client_threads: options.client_threads,
        fanout_ms,
        last_subscriber_ms: last_subscriber.summary(),
        write_ms: written.latency.summary(),
        changes: Changes {
            ok: written.ok,
            failed: written.failed,
            skipped: written.skipped,
            per_second: round(written.ok as f64 / write_seconds.max(1e-9), 1),
            events,
        },
        deliveries: Deliveries {
            expected: events.max(0) as u64 * connected as u64,
            received,
            per_second: round(received as f64 / delivery_seconds.max(1e-9), 0),
            complete,
        },
        errors,
        memory: Memory {
            rss_before_kib: rss_before,
            rss_idle_kib: rss_idle,
            kib_per_idle_connection: round(kib_per_idle_connection, 1),
            peak_rss_kib: peak_rss,
            loadgen_peak_rss_kib: procfs::peak_rss_kib(me).unwrap_or(0),
        },
        cpu: Cpu {
            cpus: procfs::cpus(),
            window_s: round(window, 2),
            server_s: round(server_s, 2),
            server_pct: round(100.0 * server_s / window.max(1e-9), 1),
            loadgen_s: round(loadgen_s, 2),
            loadgen_pct: round(100.0 * loadgen_s / window.max(1e-9), 1),
            services_s: round(services_s, 2),
            services_pct: round(100.0 * services_s / window.max(1e-9), 1),
            other_pct: round(other_pct.max(0.0), 1),
            machine_busy_pct: round(machine_busy_pct, 1),
            connect_cpu_us: if connected == 0 {
                0.0
            } else {
                round(connect_cpu * 1e6 / connected as f64, 0)
            },
        },
        ramp: Ramp {
            seconds: round(ramp_seconds, 2),
            per_second: round(connected as f64 / ramp_seconds.max(1e-9), 0),
        },
        targets,
    })
}

struct Written {
    ok: u64,
    failed: u64,
    skipped: u64,
    latency: Histogram,
}

/// Changes the tasks in turn, `rate` a second for `duration`, each in a
/// request of its own (at most 64 in flight: a tick with none free is
/// skipped and counted).
async fn write(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    tasks: &[String],
    options: &Options,
) -> Written {
    const IN_FLIGHT: u32 = 64;
    let total = (options.rate * options.duration.as_secs_f64()).round() as u64;
    let permits = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    let latency = Arc::new(Mutex::new(Histogram::default()));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut skipped = 0;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate.max(0.001)));
    let token = format!("Bearer {token}");
    for n in 0..total {
        ticks.tick().await;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let request = client
            .patch(format!(
                "{base}/api/v1/tasks/{}",
                tasks[n as usize % tasks.len()]
            ))
            .header("Authorization", &token)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"title":"Change {n}"}}"#));
        let (latency, ok, failed) = (latency.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = request.send().await;
            let success = match answer {
                Ok(response) => {
                    let status = response.status();
                    // Read the body, so the connection goes back to the pool.
                    let _ = response.bytes().await;
                    status.is_success()
                }
                Err(_) => false,
            };
            if success {
                ok.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut latency) = latency.lock() {
                    latency.record(started.elapsed().as_micros() as u64);
                }
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    // Every request answered.
    let _ = permits.acquire_many(IN_FLIGHT).await;
    let latency = latency.lock().map(|h| h.clone()).unwrap_or_default();
    Written {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        skipped,
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_seq_and_at() {
        let text = r#"{"type":"event","event":{"projectId":"0199","seq":42,"type":"task.updated","entityId":"x","actorId":"y","at":"2026-01-02T03:04:05.123456Z","data":{"createdAt":"2025-01-01T00:00:00Z","title":"\"at\":\"no\""}}}"#;
        let (seq, at) = seq_and_at(text).expect("an event");
        assert_eq!(seq, 42);
        assert_eq!(at, 1_767_323_045_123_456_000);
        assert_eq!(seq_and_at(r#"{"type":"pong"}"#), None);
    }
}
