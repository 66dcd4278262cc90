//! The node's HTTP side (SPEC.md, "Observability"): `GET /metrics` in the
//! Prometheus text format, `GET /health`, `GET /ready` and `GET /live` for probes.
//!
//! ```text
//!   node loop ── every PUBLISH_INTERVAL, in its tick ──► watch<Snapshot> ─┐
//!     (Loop::status(): role, ballot, decided, counters)                  │ read when asked
//!   persist (Timed store) ── each durable write ──► fsync histogram ─────┤ (atomics)
//!                                                                        ▼
//!                                         HTTP thread: its own runtime, axum, renders
//! ```
//!
//! Scraping costs the node nothing it waits for: the loop hands over a
//! snapshot of the status it already computes for `paxosctl status` at most
//! every [`PUBLISH_INTERVAL`] (a `watch` send, which never blocks on a
//! reader), the fsync histogram is a set of atomic counters, and the server
//! runs on a thread and a tokio runtime of its own, so a slow or hostile HTTP
//! client never takes the loop's thread. The daemons run one node per process:
//! [`start`] installs this process's publisher before the node starts, and
//! [`crate::runtime::run`] takes it up with [`Publisher::installed`] (a loop
//! run without [`start`], as in the in-process tests, publishes nothing).
//!
//! `/health` is 200 `ok`, or 503 with a one-line reason while the node is
//! failed (SIGUSR1), an acceptor is not a voting member (`rebuilding`,
//! `joining`), a read of its decided log failed (a damaged segment), a
//! proposer knows no leader or found that a peer's decided log differs
//! from its own (their digests, `paxos_core::digest`), the node has not
//! reported yet, or its loop has not reported for [`STALE_AFTER`]. `/ready`
//! is 200 once the node serves: on top of `/health` (but a divergence of
//! logs, as the wrong log may be the peer's), a proposer must be a member. `/live` is
//! 503 only when the loop is stuck: what a restart can cure (a liveness
//! probe on `/health` would restart every proposer while too few acceptors
//! are up, which no restart cures).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use paxos_client::config::Role;
use paxos_core::{Fold, LogPage, StorageError, Store, StoreStats};
use paxos_proto::{NodeId, Slot, StatusReply};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::{debug, error};

use crate::counters::{MESSAGES_IN, MESSAGES_OUT};

/// The loop hands over its status at most this often.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// A node whose loop has not reported for this long is unhealthy (stuck).
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// How often a store wrapped by [`Timed`] asks where its log starts (retention).
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The upper bounds of the buckets of `paxos_fsync_duration_seconds`: 50 µs to
/// 5 s, about three per decade (an NVMe fdatasync to a disk in trouble).
pub const FSYNC_BUCKETS_SECONDS: [f64; 16] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The drop reasons a node counts (`dropped.<reason>`), shown as zero until
/// the first one, so that `rate()` sees the first drop too.
pub const DROP_REASONS: [&str; 15] = [
    "malformed",
    "too_large",
    "version",
    "invalid",
    "cluster",
    "receiver",
    "sender",
    "auth",
    "flood",
    "rate",
    "amplification",
    "bundle",
    "ignored",
    "failed",
    "unroutable",
];

/// The node states of `paxos_node_state`.
pub const STATES: [&str; 4] = ["up", "failed", "rebuilding", "joining"];

/// This process's publisher, once [`start`] ran.
static INSTALLED: OnceLock<Arc<Shared>> = OnceLock::new();

/// What the loop last published.
#[derive(Debug)]
struct Snapshot {
    /// The node's status, as `paxosctl status` gets it.
    status: StatusReply,
    /// When it was taken.
    at: Instant,
    /// Changes of the leader seen so far (see [`Publisher`]).
    leader_changes: u64,
    /// A proposer's leader known to lead now ([`paxos_core::Role::leading`]):
    /// itself in phase 2, or a live peer that said it leads. Not `status.leader`,
    /// which also names a candidate, where clients are sent.
    leading: Option<NodeId>,
    /// Why a read of the node's decided log failed, if one did.
    damaged: Option<String>,
    /// Why the node's decided log is known to differ from a peer's, if it is.
    diverged: Option<String>,
}

/// What the loop, the store and the HTTP thread share.
#[derive(Debug)]
struct Shared {
    role: Role,
    id: u32,
    snapshot: watch::Sender<Option<Arc<Snapshot>>>,
    fsync: DurationHistogram,
    /// From a client's request reaching this proposer to its reply leaving.
    commit: DurationHistogram,
    /// The first slot of the decided log still stored; set by [`Timed`].
    retention_start: AtomicU64,
}

/// Binds nothing itself: serves `listener` (bound by the caller, so that a
/// port in use is its start-up error) on a thread of its own, for node `id`
/// of `role`, and installs the publisher that [`crate::runtime::run`] takes up.
///
/// # Errors
/// When the thread cannot be started or the listener cannot be made
/// non-blocking, or when HTTP was started before in this process.
pub fn start(listener: std::net::TcpListener, role: Role, id: u32) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        role,
        id,
        snapshot: watch::Sender::new(None),
        fsync: DurationHistogram::new(),
        commit: DurationHistogram::new(),
        retention_start: AtomicU64::new(0),
    });
    if INSTALLED.set(Arc::clone(&shared)).is_err() {
        return Err(std::io::Error::other("HTTP is already served by this process"));
    }
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Metrics(Arc::clone(&shared))));
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/live", get(live))
        .with_state(Arc::new(Server { shared, registry }));
    std::thread::Builder::new().name("http".into()).spawn(move || {
        let served = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                debug!(addr = %local, "serving HTTP: /metrics, /health, /ready, /live");
                axum::serve(listener, app).await
            })
        });
        // The node goes on without it; its probes then fail, which is what tells.
        if let Err(e) = served {
            error!(addr = %local, error = %e, "the HTTP server stopped; /metrics, /health, /ready and /live are gone");
        }
    })?;
    Ok(())
}

/// The loop's end: hands its status to the HTTP side at most every
/// [`PUBLISH_INTERVAL`]. Inert when this process serves no HTTP.
///
/// It also counts changes of the leader between snapshots: a proposer's known
/// leader, an acceptor's promised ballot's proposer. Each new leader counts,
/// the first one included (as etcd's `leader_changes_seen_total`); a change
/// and back within one interval is not seen.
#[derive(Debug, Default)]
pub struct Publisher {
    shared: Option<Arc<Shared>>,
    last: Cell<Option<Instant>>,
    leader: Cell<Option<NodeId>>,
    leader_changes: Cell<u64>,
    /// Why the node's decided log could not be read ([`Publisher::set_damaged`]).
    damaged: Option<String>,
    /// Why the node's decided log differs from a peer's ([`Publisher::set_diverged`]).
    diverged: Option<String>,
}

impl Publisher {
    /// This process's publisher ([`start`]), or an inert one.
    pub fn installed() -> Publisher {
        Publisher { shared: INSTALLED.get().cloned(), ..Publisher::default() }
    }

    /// Wraps `store` so that its writes are timed into `paxos_fsync_duration_seconds`
    /// (only when HTTP is served; otherwise it only forwards).
    pub fn timed<S: Store>(&self, store: S) -> Timed<S> {
        Timed::new(store, self.shared.clone())
    }

    /// True when HTTP is served (what is only measured for it can be skipped otherwise).
    pub fn serving(&self) -> bool {
        self.shared.is_some()
    }

    /// One client request answered `took` after it reached this proposer
    /// (`paxos_commit_latency_seconds`).
    pub fn observe_commit(&self, took: Duration) {
        if let Some(shared) = &self.shared {
            shared.commit.observe(took);
        }
    }

    /// The node's decided log is damaged (the last failed read failed for
    /// `why`) until an operator moves its data dir away, or a later pass
    /// reads it all (`None`: the error passed): `/health` and `/ready` say
    /// so from the next snapshot on.
    pub fn set_damaged(&mut self, why: Option<String>) {
        self.damaged = why;
    }

    /// The node's decided log differs from a peer's (the role compared
    /// their digests, [`paxos_core::Role::divergence`]; `None` once every
    /// such peer's claim matched again): `/health` says so from the next
    /// snapshot on.
    pub fn set_diverged(&mut self, why: Option<String>) {
        self.diverged = why;
    }

    /// Whether `/health` says the decided log is damaged.
    pub fn damaged(&self) -> bool {
        self.damaged.is_some()
    }

    /// Publishes `status()` when HTTP is served and the last snapshot is
    /// [`PUBLISH_INTERVAL`] old. Never waits: a `watch` send.
    pub fn publish_due(&self, leading: Option<NodeId>, status: impl FnOnce() -> StatusReply) {
        let Some(shared) = &self.shared else { return };
        let now = Instant::now();
        if self.last.get().is_some_and(|last| now.duration_since(last) < PUBLISH_INTERVAL) {
            return;
        }
        self.last.set(Some(now));
        let status = status();
        let leader = match shared.role {
            Role::Proposer => leading,
            Role::Acceptor => Some(status.ballot.proposer).filter(|p| p.0 != 0),
        };
        if leader.is_some() && leader != self.leader.get() {
            self.leader.set(leader);
            self.leader_changes.set(self.leader_changes.get() + 1);
        }
        let snapshot = Snapshot {
            status,
            at: now,
            leader_changes: self.leader_changes.get(),
            leading,
            damaged: self.damaged.clone(),
            diverged: self.diverged.clone(),
        };
        shared.snapshot.send_replace(Some(Arc::new(snapshot)));
    }
}

/// A store whose durable writes are timed into `paxos_fsync_duration_seconds`,
/// and which notes where its decided log starts (`paxos_retention_start`)
/// after a write, at most every [`RETENTION_CHECK_INTERVAL`]. It runs where
/// the store runs: in an acceptor's loop, on a proposer's persist thread.
#[derive(Debug)]
pub struct Timed<S> {
    inner: S,
    shared: Option<Arc<Shared>>,
    checked: Option<Instant>,
}

impl<S: Store> Timed<S> {
    fn new(inner: S, shared: Option<Arc<Shared>>) -> Timed<S> {
        let mut timed = Timed { inner, shared, checked: None };
        timed.note_start(Instant::now());
        timed
    }

    /// Runs one write of the inner store, timed unless there is nothing to time.
    fn time_write(
        &mut self,
        empty: bool,
        write: impl FnOnce(&mut S) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if self.shared.is_none() || empty {
            return write(&mut self.inner);
        }
        let started = Instant::now();
        write(&mut self.inner)?;
        let done = Instant::now();
        if let Some(shared) = &self.shared {
            shared.fsync.observe(done.duration_since(started));
        }
        self.note_start(done);
        Ok(())
    }

    /// Where the decided log starts: a page read from beyond every slot
    /// carries it without reading any entry.
    fn note_start(&mut self, now: Instant) {
        let Some(shared) = &self.shared else { return };
        if self.checked.is_some_and(|at| now.duration_since(at) < RETENTION_CHECK_INTERVAL) {
            return;
        }
        self.checked = Some(now);
        if let Ok(page) = self.inner.read(Slot(u64::MAX), 1, 0) {
            shared.retention_start.store(page.start.0, Ordering::Relaxed);
        }
    }
}

impl<S: Store> Store for Timed<S> {
    type State = S::State;

    fn load(&mut self) -> Result<S::State, StorageError> {
        self.inner.load()
    }

    fn apply(&mut self, ops: &[<S::State as Fold>::Op]) -> Result<(), StorageError> {
        self.time_write(ops.is_empty(), |inner| inner.apply(ops))
    }

    fn apply_folded(&mut self, ops: &[<S::State as Fold>::Op], folded: &S::State) -> Result<(), StorageError> {
        self.time_write(ops.is_empty(), |inner| inner.apply_folded(ops, folded))
    }

    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        self.inner.read(from, limit, max_bytes)
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

/// A histogram of durations in atomic counters: the writer (the persist path)
/// never waits for a reader (a scrape), unlike a histogram behind a lock.
#[derive(Debug)]
struct DurationHistogram {
    /// One count per bucket of [`FSYNC_BUCKETS_SECONDS`], then the overflow (+Inf).
    buckets: [AtomicU64; FSYNC_BUCKETS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    fn new() -> DurationHistogram {
        DurationHistogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = FSYNC_BUCKETS_SECONDS.iter().position(|le| secs <= *le).unwrap_or(FSYNC_BUCKETS_SECONDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with their upper bounds).
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let bounds = FSYNC_BUCKETS_SECONDS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> =
            bounds.zip(&self.buckets).map(|(le, n)| (le, n.load(Ordering::Relaxed))).collect();
        // The count is the buckets' sum, so that it always agrees with the +Inf bucket.
        let count = buckets.iter().map(|(_, n)| n).sum();
        (self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9, count, buckets)
    }
}

/// The HTTP handlers' state.
struct Server {
    shared: Arc<Shared>,
    registry: Registry,
}

async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let mut body = String::with_capacity(8 << 10);
    match prometheus_text::encode(&mut body, &server.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n").into_response(),
    }
}

async fn health(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.shared.snapshot.borrow().clone();
    probe_response(health_of(server.shared.role, snapshot.as_deref(), Instant::now()))
}

async fn ready(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.shared.snapshot.borrow().clone();
    probe_response(ready_of(server.shared.role, snapshot.as_deref(), Instant::now()))
}

async fn live(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.shared.snapshot.borrow().clone();
    probe_response(live_of(snapshot.as_deref(), Instant::now()))
}

fn probe_response(verdict: Result<(), String>) -> Response {
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match verdict {
        Ok(()) => (StatusCode::OK, plain, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, plain, format!("{reason}\n")).into_response(),
    }
}

/// `/live`: `Ok` unless the node loop is stuck (it reported once, and not for
/// [`STALE_AFTER`]); a node still starting (opening a long log) is alive.
fn live_of(snapshot: Option<&Snapshot>, now: Instant) -> Result<(), String> {
    match snapshot.map(|s| now.saturating_duration_since(s.at)) {
        Some(age) if age > STALE_AFTER => Err(format!("stuck: the node loop has not reported for {} s", age.as_secs())),
        _ => Ok(()),
    }
}

/// `/health`: why the node is not healthy, in one line, or `Ok`.
fn health_of(role: Role, snapshot: Option<&Snapshot>, now: Instant) -> Result<(), String> {
    serving_of(role, snapshot, now)?;
    match snapshot.and_then(|s| s.diverged.as_ref()) {
        Some(why) => Err(format!("diverged log: {why}")),
        None => Ok(()),
    }
}

/// What `/health` checks but a divergence of logs, which is no reason to
/// stop sending a node requests (`/ready`): the peer's log may be the wrong one.
fn serving_of(role: Role, snapshot: Option<&Snapshot>, now: Instant) -> Result<(), String> {
    let Some(snapshot) = snapshot else {
        return Err("starting: the node has not reported its state yet".to_owned());
    };
    let age = now.saturating_duration_since(snapshot.at);
    if age > STALE_AFTER {
        return Err(format!("stuck: the node loop has not reported for {} s", age.as_secs()));
    }
    let s = &snapshot.status;
    if s.failed {
        return Err("failed: ignoring every datagram until SIGUSR2 (SIGUSR1)".to_owned());
    }
    if let Some(why) = &snapshot.damaged {
        return Err(format!("damaged log: it still votes and learns, but cannot serve a read of it: {why}"));
    }
    match (role, s.state.as_str()) {
        (Role::Acceptor, "rebuilding") => {
            Err("rebuilding: copying the decided log from its peers; it votes again once done".to_owned())
        }
        (Role::Acceptor, "joining") => {
            Err("joining: not a member of the decided configuration yet (paxosctl member add)".to_owned())
        }
        (Role::Acceptor, state) if state != "up" => Err(format!("{state}: not a voting member")),
        (Role::Proposer, _) if snapshot.leading.is_none() && s.role == "candidate" => {
            Err("no leader known: campaigning, no majority of acceptors has promised this proposer's ballot yet"
                .to_owned())
        }
        (Role::Proposer, _) if snapshot.leading.is_none() => Err("no leader known".to_owned()),
        _ => Ok(()),
    }
}

/// `/ready`: healthy, and for a proposer, a member of the decided configuration.
fn ready_of(role: Role, snapshot: Option<&Snapshot>, now: Instant) -> Result<(), String> {
    serving_of(role, snapshot, now)?;
    match snapshot.map(|s| s.status.state.as_str()) {
        Some("up") => Ok(()),
        Some("joining") => Err("joining: not a member of the decided configuration yet (paxosctl member add)".into()),
        Some(state) => Err(format!("{state}: not serving")),
        None => Err("starting".to_owned()),
    }
}

/// Renders the metrics from the last snapshot, at each scrape.
#[derive(Debug)]
struct Metrics(Arc<Shared>);

impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let shared = &self.0;
        let id = shared.id.to_string();
        let info = [
            ("role", shared.role.as_str()),
            ("id", id.as_str()),
            ("version", crate::daemon::VERSION),
            ("commit", crate::daemon::COMMIT),
        ];
        let help = "The node: its role, id, version and the git commit it was built from (always 1).";
        e.encode_descriptor("paxos_node", help, None, MetricType::Info)?.encode_info(&info)?;
        // Before the first snapshot, the node's own figures are not made up.
        let snapshot = shared.snapshot.borrow().clone();
        if let Some(snapshot) = &snapshot {
            encode_status(&mut e, snapshot)?;
        }

        let help = "The first slot of the decided log this node still stores: slots below were deleted by retention.";
        gauge(&mut e, "paxos_retention_start", help, shared.retention_start.load(Ordering::Relaxed))?;
        let (sum, count, buckets) = shared.fsync.read();
        let help = "Time of one durable write of the node's store (append and fdatasync), in seconds.";
        e.encode_descriptor("paxos_fsync_duration_seconds", help, None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        if shared.role == Role::Proposer {
            let (sum, count, buckets) = shared.commit.read();
            let help = "Time from a client's request reaching this proposer to its reply leaving, in seconds: \
                        what a client sees, without the network to the cluster.";
            e.encode_descriptor("paxos_commit_latency_seconds", help, None, MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        if let Some(snapshot) = &snapshot {
            encode_counters(&mut e, &snapshot.status.counters)?;
            let help = "Seconds since the node loop last reported its state (it reports every 0.1 s).";
            gauge(&mut e, "paxos_status_age_seconds", help, snapshot.at.elapsed().as_secs_f64())?;
        }
        Ok(())
    }
}

/// The node's state, role and log position from its status reply.
fn encode_status(e: &mut DescriptorEncoder, snapshot: &Snapshot) -> std::fmt::Result {
    let s = &snapshot.status;
    let state = if s.failed { "failed" } else { s.state.as_str() };
    let help = "The node's state: up, failed (SIGUSR1), rebuilding (an acceptor copying its log) or joining (not yet a member).";
    let mut m = e.encode_descriptor("paxos_node_state", help, None, MetricType::Gauge)?;
    for name in STATES.iter().copied().chain((!STATES.contains(&state)).then_some(state)) {
        ConstGauge::new(u64::from(name == state)).encode(m.encode_family(&[("state", name)])?)?;
    }
    let help = "1 while this node is the leader (a proposer in phase 2), else 0.";
    gauge(e, "paxos_is_leader", help, u64::from(s.role == "leader"))?;
    let help = "The proposer this proposer knows to lead now: itself in phase 2, or a live peer that said it leads \
                (its id; 0: none known, e.g. while a candidate campaigns). Acceptors: 0.";
    gauge(e, "paxos_leader_id", help, snapshot.leading.map_or(0, |l| l.0))?;
    let help =
        "Leaders seen (a proposer's known leader; an acceptor's promised ballot's proposer), the first included.";
    counter(e, "paxos_leader_changes", help, snapshot.leader_changes)?;
    let help = "The round of the node's ballot (a proposer's own; an acceptor's promised).";
    gauge(e, "paxos_ballot_round", help, s.ballot.round)?;
    gauge(e, "paxos_epoch", "The configuration epoch the node is in.", s.epoch)?;
    let help = "The first slot not known to be decided here: the length of the node's decided log.";
    gauge(e, "paxos_decided_index", help, s.decided.0)?;
    if let Some(decided) = s.counters.get("values.decided") {
        let help = "Values decided in the log (proposers): the decided log's length, no-op fillers included.";
        counter(e, "paxos_values_decided", help, *decided)?;
    }
    let help = "Peers heard from within the election timeout.";
    gauge(e, "paxos_peers_heard", help, s.peers_heard.len() as u64)
}

/// The status reply's counters: the well-known ones by name, the rest as
/// `paxos_node_events_total{name}`, so that a counter added later is not lost.
fn encode_counters(e: &mut DescriptorEncoder, counters: &BTreeMap<String, u64>) -> std::fmt::Result {
    let help = "Datagrams dropped, by reason (malformed, auth, sender, ...; failed: while failed by SIGUSR1).";
    let mut m = e.encode_descriptor("paxos_datagrams_dropped", help, None, MetricType::Counter)?;
    let mut reasons: BTreeMap<&str, u64> = DROP_REASONS.iter().map(|r| (*r, 0)).collect();
    reasons.extend(counters.iter().filter_map(|(k, v)| Some((k.strip_prefix("dropped.")?, *v))));
    for (reason, n) in &reasons {
        ConstCounter::new(*n).encode(m.encode_family(&[("reason", *reason)])?)?;
    }
    let get = |name: &str| counters.get(name).copied().unwrap_or(0);
    let named: [(&str, &str, &str); 7] = [
        ("datagrams.in", "paxos_datagrams_in", "Datagrams received, whether taken or dropped."),
        ("datagrams.out", "paxos_datagrams_out", "Datagrams sent."),
        ("send_errors", "paxos_send_errors", "Sends the operating system refused."),
        ("recv_errors", "paxos_recv_errors", "Receives the operating system failed."),
        (
            "batches",
            "paxos_batches",
            "Wake-ups of the node loop that drained the socket (each ends in at most one write).",
        ),
        ("fsyncs", "paxos_fsyncs", "fdatasync calls of the node's store."),
        ("wal.writes", "paxos_store_writes", "Batches written by the node's store."),
    ];
    for (key, name, help) in named {
        counter(e, name, help, get(key))?;
    }
    let help = "Checkpoints of the node's store.";
    counter(e, "paxos_store_compactions", help, get("compactions"))?;
    gauge(e, "paxos_store_bytes", "The size of what the node's store holds, in bytes.", get("wal.bytes"))?;
    let help = "1 while a read of the node's decided log failed and no pass over all of it read it cleanly since.";
    gauge(e, "paxos_log_damaged", help, get("log_damaged"))?;
    let help =
        "Nodes whose decided log a comparison of digests showed to differ from this proposer's (0 on acceptors).";
    gauge(e, "paxos_log_diverged", help, get("log_diverged"))?;
    let help = "Digests of peers' decided logs compared with this proposer's own at the same slot.";
    counter(e, "paxos_log_digests_compared", help, get("log_digests_compared"))?;
    if let Some(sessions) = counters.get("sessions") {
        gauge(e, "paxos_sessions", "Client sessions remembered (proposers).", *sessions)?;
    }
    if let Some(evicted) = counters.get("sessions_evicted") {
        let help = "Client sessions forgotten after their lifetime (proposers).";
        counter(e, "paxos_sessions_evicted", help, *evicted)?;
    }

    let chaos: Vec<(&str, u64)> = counters.iter().filter_map(|(k, v)| Some((k.strip_prefix("chaos.")?, *v))).collect();
    if !chaos.is_empty() {
        let help =
            "Outgoing datagrams the [chaos] fault injector dropped, duplicated, delayed, reordered or discarded.";
        let mut m = e.encode_descriptor("paxos_chaos", help, None, MetricType::Counter)?;
        for (action, n) in chaos {
            ConstCounter::new(n).encode(m.encode_family(&[("action", action)])?)?;
        }
    }

    let messages: Vec<(&str, &str, u64)> = counters
        .iter()
        .filter_map(|(k, v)| {
            let (direction, kind) = match (k.strip_prefix(MESSAGES_IN), k.strip_prefix(MESSAGES_OUT)) {
                (Some(kind), _) => ("in", kind),
                (_, Some(kind)) => ("out", kind),
                _ => return None,
            };
            Some((direction, kind, *v))
        })
        .collect();
    if !messages.is_empty() {
        let help = "Messages received (and handed to the role) and sent, by direction and kind.";
        let mut m = e.encode_descriptor("paxos_messages", help, None, MetricType::Counter)?;
        for (direction, kind, n) in messages {
            ConstCounter::new(n).encode(m.encode_family(&[("direction", direction), ("kind", kind)])?)?;
        }
    }

    let known = |k: &str| {
        named.iter().any(|(key, _, _)| *key == k)
            || [
                "values.decided",
                "compactions",
                "wal.bytes",
                "log_damaged",
                "log_diverged",
                "log_digests_compared",
                "sessions",
                "sessions_evicted",
            ]
            .contains(&k)
            || k.starts_with("dropped.")
            || k.starts_with("chaos.")
            || k.starts_with(MESSAGES_IN)
            || k.starts_with(MESSAGES_OUT)
    };
    let rest: Vec<(&String, &u64)> = counters.iter().filter(|(k, _)| !known(k)).collect();
    if !rest.is_empty() {
        let help = "Other events the node counts, by the name its status reply gives them.";
        let mut m = e.encode_descriptor("paxos_node_events", help, None, MetricType::Counter)?;
        for (name, n) in rest {
            ConstCounter::new(*n).encode(m.encode_family(&[("name", name.as_str())])?)?;
        }
    }
    Ok(())
}

fn gauge<V>(e: &mut DescriptorEncoder, name: &str, help: &str, v: V) -> std::fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// The metrics text of `registry`, for tests.
#[cfg(test)]
fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_text::encode(&mut out, registry).expect("encode");
    out
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use paxos_proto::Ballot;

    fn shared(role: Role) -> Arc<Shared> {
        Arc::new(Shared {
            role,
            id: 2,
            snapshot: watch::Sender::new(None),
            fsync: DurationHistogram::new(),
            commit: DurationHistogram::new(),
            retention_start: AtomicU64::new(0),
        })
    }

    fn status(state: &str, leader: Option<u32>, failed: bool) -> StatusReply {
        StatusReply {
            req: 0,
            role: if leader == Some(2) { "leader" } else { "follower" }.into(),
            failed,
            leader: leader.map(NodeId),
            ballot: Ballot::new(7, NodeId(2)),
            decided: Slot(42),
            peers_heard: Vec::new(),
            counters: [("dropped.malformed".to_owned(), 3), ("cookies.sent".to_owned(), 1)].into_iter().collect(),
            state: state.into(),
            epoch: 1,
            version: String::new(),
            commit: String::new(),
        }
    }

    /// A snapshot whose proposer knows the leader its status names to lead.
    fn snap(status: StatusReply, at: Instant) -> Snapshot {
        let leading = status.leader;
        Snapshot { status, at, leader_changes: 1, leading, damaged: None, diverged: None }
    }

    /// Each reason `/health` and `/ready` give, and that they agree otherwise.
    #[test]
    fn health_and_ready_say_why_not() {
        let now = Instant::now();
        let p = Role::Proposer;
        let a = Role::Acceptor;
        assert!(health_of(p, None, now).unwrap_err().starts_with("starting"));
        assert_eq!(health_of(p, Some(&snap(status("up", Some(1), false), now)), now), Ok(()));
        assert_eq!(ready_of(p, Some(&snap(status("up", Some(1), false), now)), now), Ok(()));
        assert_eq!(health_of(p, Some(&snap(status("up", None, false), now)), now), Err("no leader known".into()));
        // A candidate names itself where clients go, but no majority has made it leader: nothing can be decided.
        let mut candidate = status("up", Some(1), false);
        candidate.role = "candidate".into();
        let campaigning = Snapshot {
            status: candidate.clone(),
            at: now,
            leader_changes: 1,
            leading: None,
            damaged: None,
            diverged: None,
        };
        assert!(health_of(p, Some(&campaigning), now).unwrap_err().starts_with("no leader known: campaigning"));
        assert!(ready_of(p, Some(&campaigning), now).unwrap_err().starts_with("no leader known: campaigning"));
        // A follower whose rightful leader is such a candidate names it too, and knows no leader either.
        let following = Snapshot {
            status: status("up", Some(1), false),
            at: now,
            leader_changes: 1,
            leading: None,
            damaged: None,
            diverged: None,
        };
        assert_eq!(health_of(p, Some(&following), now), Err("no leader known".into()));
        assert!(health_of(p, Some(&snap(status("up", Some(1), true), now)), now).unwrap_err().starts_with("failed"));
        // A proposer waiting to be added is alive (it knows the leader) but does not serve.
        assert_eq!(health_of(p, Some(&snap(status("joining", Some(1), false), now)), now), Ok(()));
        assert!(ready_of(p, Some(&snap(status("joining", Some(1), false), now)), now)
            .unwrap_err()
            .starts_with("joining"));
        // Acceptors know no leader; they are healthy while voting members.
        assert_eq!(health_of(a, Some(&snap(status("up", None, false), now)), now), Ok(()));
        assert_eq!(ready_of(a, Some(&snap(status("up", None, false), now)), now), Ok(()));
        for state in ["rebuilding", "joining"] {
            let s = snap(status(state, None, false), now);
            assert!(health_of(a, Some(&s), now).unwrap_err().starts_with(state));
            assert!(ready_of(a, Some(&s), now).unwrap_err().starts_with(state));
        }
        // A damaged log: unhealthy and not ready, whatever else holds (a read of it fails), but alive.
        for role in [p, a] {
            let damaged =
                Snapshot { damaged: Some("segment 7: damaged".into()), ..snap(status("up", Some(1), false), now) };
            assert!(health_of(role, Some(&damaged), now).unwrap_err().starts_with("damaged log"));
            assert!(health_of(role, Some(&damaged), now).unwrap_err().ends_with("segment 7: damaged"));
            assert!(ready_of(role, Some(&damaged), now).unwrap_err().starts_with("damaged log"));
            assert_eq!(live_of(Some(&damaged), now), Ok(()));
        }
        // A log that differs from a peer's: unhealthy, but ready (it may be
        // the peer's log that is wrong, and this one serves what it holds) and alive.
        let why = "the decided log of acceptor-3 differs from ours at or before slot 128";
        let diverged = Snapshot { diverged: Some(why.into()), ..snap(status("up", Some(1), false), now) };
        assert_eq!(health_of(p, Some(&diverged), now), Err(format!("diverged log: {why}")));
        assert_eq!(ready_of(p, Some(&diverged), now), Ok(()));
        assert_eq!(live_of(Some(&diverged), now), Ok(()));
        let old = snap(status("up", None, false), now);
        let later = now + STALE_AFTER + Duration::from_secs(1);
        assert!(health_of(a, Some(&old), later).unwrap_err().starts_with("stuck"), "a loop that stopped reporting");
        // Alive unless stuck: starting, failed, campaigning or knowing no leader are no reason to restart.
        assert_eq!(live_of(None, now), Ok(()));
        for s in [&following, &campaigning, &snap(status("up", Some(1), true), now)] {
            assert_eq!(live_of(Some(s), now), Ok(()));
        }
        assert!(live_of(Some(&old), later).unwrap_err().starts_with("stuck"));
    }

    /// The histogram's buckets are cumulative in the text, its count is the
    /// number of observations and its sum their total.
    #[test]
    fn fsync_histogram_renders_cumulative_buckets() {
        let shared = shared(Role::Acceptor);
        shared.fsync.observe(Duration::from_micros(30));
        shared.fsync.observe(Duration::from_millis(3));
        shared.fsync.observe(Duration::from_secs(9));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Metrics(Arc::clone(&shared))));
        let text = render(&registry);
        assert!(text.contains("# TYPE paxos_fsync_duration_seconds histogram\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_bucket{le=\"5e-05\"} 1\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_bucket{le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_bucket{le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_count 3\n"), "{text}");
        assert!(text.contains("paxos_fsync_duration_seconds_sum 9.00303"), "{text}");
        // No snapshot yet: the node's own metrics are not made up.
        assert!(text.contains("paxos_node_info{role=\"acceptor\",id=\"2\",version=\""), "{text}");
        assert!(!text.contains("paxos_decided_index"), "{text}");
    }

    /// A snapshot renders as the named metrics, every known drop reason
    /// (zero until counted) and the other counters by name.
    #[test]
    fn snapshot_renders_named_metrics() {
        let shared = shared(Role::Proposer);
        let publisher = Publisher { shared: Some(Arc::clone(&shared)), ..Publisher::default() };
        publisher.publish_due(Some(NodeId(2)), || status("up", Some(2), false));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Metrics(Arc::clone(&shared))));
        let text = render(&registry);
        for line in [
            "paxos_decided_index 42\n",
            "paxos_is_leader 1\n",
            "paxos_leader_id 2\n",
            "paxos_leader_changes_total 1\n",
            "paxos_ballot_round 7\n",
            "paxos_epoch 1\n",
            "paxos_node_state{state=\"up\"} 1\n",
            "paxos_node_state{state=\"failed\"} 0\n",
            "paxos_datagrams_dropped_total{reason=\"malformed\"} 3\n",
            "paxos_datagrams_dropped_total{reason=\"auth\"} 0\n",
            "paxos_datagrams_in_total 0\n",
            "paxos_node_events_total{name=\"cookies.sent\"} 1\n",
            "# TYPE paxos_datagrams_dropped_total counter\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // Within the interval nothing is published; a new leader counts once published.
        publisher.publish_due(None, || panic!("published within PUBLISH_INTERVAL"));
        publisher.last.set(Some(Instant::now() - PUBLISH_INTERVAL));
        publisher.publish_due(Some(NodeId(1)), || status("up", Some(1), true));
        let text = render(&registry);
        assert!(text.contains("paxos_leader_changes_total 2\n"), "{text}");
        assert!(text.contains("paxos_node_state{state=\"failed\"} 1\n"), "{text}");
    }

    /// Every line of the text is a comment or `name{labels} value`.
    #[test]
    fn text_format_lines_are_well_formed() {
        let shared = shared(Role::Acceptor);
        let publisher = Publisher { shared: Some(Arc::clone(&shared)), ..Publisher::default() };
        publisher.publish_due(None, || status("rebuilding", None, false));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Metrics(shared)));
        let text = render(&registry);
        let mut seen = String::new();
        for line in text.lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            value.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {line}"));
            let name = name.split('{').next().unwrap_or_default();
            assert!(
                name.starts_with("paxos_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
            writeln!(seen, "{name}").unwrap();
        }
        assert!(seen.contains("paxos_node_state"), "{text}");
    }
}
