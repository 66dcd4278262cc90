//! The node loop: the single owner of one role, its store and its socket.
//!
//! ```text
//!   select! ─┬─ shutdown / SIGTERM ─────────────► stop (after the batch in hand)
//!            ├─ SIGUSR1 / SIGUSR2 ──────────────► failed = true / false
//!            ├─ tick interval ──► role.tick()
//!            ├─ chaos timer ────► send the delayed / held datagrams now due
//!            ├─ resolver ───────► address book
//!            └─ socket readable ► drain up to MAX_BATCH_DATAGRAMS datagrams:
//!                                 decode, check cluster / receiver / sender,
//!                                 role.handle() each
//!   then, once per wake-up:  ready = role.take_ready()
//!                            store.apply(ready.persist)   one write + one fsync
//!                            send ready.messages          only now: durable
//! ```
//!
//! # Group commit
//!
//! The loop feeds every datagram that is queued in the socket to the role
//! before it takes one [`Ready`], persists its operations
//! with one append and one `fdatasync`, and only then sends its messages.
//! While that fsync runs the loop is blocked, and the datagrams that arrive
//! meanwhile wait in the kernel's receive buffer (sized by
//! [`crate::transport::SOCKET_BUFFER_BYTES`]); the next wake-up drains them
//! all, so one fsync covers everything that arrived during the previous one
//! and throughput is not bounded by one value per fsync.
//!
//! # Failure modes
//!
//! A storage error is fatal: [`run`] returns it without sending anything that
//! depends on the failed write, and the binary exits non-zero. Anything a
//! peer sends is dropped, counted and logged (rate-limited) when it does not
//! decode, names another cluster or receiver, comes from an address that is
//! not the member it claims to be, or is refused by the role.
//!
//! While *failed* (SIGUSR1) the node drops every datagram and sends nothing,
//! except that it still answers `StatusRequest`, so that an operator can see
//! that it is failed. Its core still ticks, and what a tick persists (a
//! proposer's new round) is still made durable; only the messages are dropped.
//!
//! # Chaos
//!
//! With a `[chaos]` section (or `PAXOS_CHAOS__*`) that injects anything, every
//! outgoing datagram passes through [`crate::chaos::Chaos`] after it is encoded:
//! it may be dropped, sent twice, delayed or held back behind a later one. The
//! node warns about it at start-up, listing the settings, and counts it in its
//! status (`chaos.*`). Persist-before-send is unaffected: a datagram reaches
//! the chaos only once what it depends on is durable, and chaos only ever sends
//! it later or not at all.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use paxos_core::{
    Acceptor, AcceptorOp, AcceptorStore, Ignored, Proposer, ProposerConfig, ProposerOp, ProposerStore, Ready,
    StorageError,
};
use paxos_proto::{
    decode, encode, Ballot, DecodeError, Envelope, Message, Node, NodeId, StatusReply, MAX_DATAGRAM_BYTES,
    PROTOCOL_VERSION,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::chaos::{self, Chaos, Datagram};
use crate::config::{ClusterConfig, NodeSettings};
use crate::counters::{self, Counters};
use crate::store::{StoreStats, StoreStatsSource};
use crate::transport::{AddressBook, ClientAddrs, MAX_CLIENTS};

/// The most datagrams fed to the role before one `Ready` is taken and persisted.
pub const MAX_BATCH_DATAGRAMS: usize = 1024;

/// Ticks a proposer waits for an answer before it sends a prepare or accept again, at least.
pub const MIN_RETRANSMIT_TICKS: u64 = 3;

/// A command to the loop from outside: the signals, or a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop after the batch in hand is persisted (SIGTERM, SIGINT).
    Shutdown,
    /// Ignore every datagram and send nothing (SIGUSR1).
    Fail,
    /// Back to normal (SIGUSR2).
    Recover,
}

/// Why [`run`] stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not make a batch durable; nothing depending on it was sent.
    #[error("storage failed, stopping without sending what depends on it: {0}")]
    Storage(#[from] StorageError),
    /// The socket failed in a way that is not about one datagram.
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
}

/// What an operator sees change: logged at `info` by the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// `leader`, `candidate` or `follower`.
    pub role: &'static str,
    /// The leader as far as the node knows.
    pub leader: Option<NodeId>,
    /// The node's ballot.
    pub ballot: Ballot,
}

/// A role of paxos-core together with its store, as the loop drives it.
pub trait Replica {
    /// The storage operation of the role.
    type Op;
    /// This node.
    fn me(&self) -> Node;
    /// Feeds one message to the core.
    ///
    /// # Errors
    /// [`Ignored`] when the core refused it.
    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored>;
    /// Advances the core's clock by one tick.
    fn tick(&mut self);
    /// The core's outputs since the last call.
    fn take_ready(&mut self) -> Ready<Self::Op>;
    /// Makes `ops` durable (atomically).
    ///
    /// # Errors
    /// When they could not be made durable.
    fn persist(&mut self, ops: &[Self::Op]) -> Result<(), StorageError>;
    /// The core's status (the loop adds `req`, `failed` and counters).
    fn status(&self) -> StatusReply;
    /// Role, leader and ballot, for change logging; `None` when the core logs them itself.
    fn view(&self) -> Option<View>;
    /// What the store did.
    fn store_stats(&self) -> StoreStats;
}

/// An acceptor with its store.
#[derive(Debug)]
pub struct AcceptorNode<S> {
    core: Acceptor,
    store: S,
}

impl<S: AcceptorStore + StoreStatsSource> AcceptorNode<S> {
    /// Loads the state from `store` and starts acceptor `id` of a cluster with `proposers`.
    ///
    /// # Errors
    /// When the store cannot load.
    pub fn new(id: NodeId, proposers: Vec<NodeId>, mut store: S) -> Result<AcceptorNode<S>, StorageError> {
        let state = store.load()?;
        Ok(AcceptorNode { core: Acceptor::new(id, proposers, state), store })
    }

    /// The core.
    pub fn core(&self) -> &Acceptor {
        &self.core
    }
}

impl<S: AcceptorStore + StoreStatsSource> Replica for AcceptorNode<S> {
    type Op = AcceptorOp;

    fn me(&self) -> Node {
        Node::Acceptor(self.core.id())
    }

    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        self.core.handle(from, msg)
    }

    fn tick(&mut self) {}

    fn take_ready(&mut self) -> Ready<AcceptorOp> {
        self.core.take_ready()
    }

    fn persist(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError> {
        self.store.apply(ops)
    }

    fn status(&self) -> StatusReply {
        self.core.status()
    }

    fn view(&self) -> Option<View> {
        None // the core logs every new promise
    }

    fn store_stats(&self) -> StoreStats {
        self.store.stats()
    }
}

/// A proposer with its store.
#[derive(Debug)]
pub struct ProposerNode<S> {
    core: Proposer,
    store: S,
}

impl<S: ProposerStore + StoreStatsSource> ProposerNode<S> {
    /// Loads the state from `store` and starts the proposer `cfg` describes.
    ///
    /// # Errors
    /// When the store cannot load.
    pub fn new(cfg: ProposerConfig, mut store: S) -> Result<ProposerNode<S>, StorageError> {
        let state = store.load()?;
        Ok(ProposerNode { core: Proposer::new(cfg, state), store })
    }

    /// The core.
    pub fn core(&self) -> &Proposer {
        &self.core
    }
}

impl<S: ProposerStore + StoreStatsSource> Replica for ProposerNode<S> {
    type Op = ProposerOp;

    fn me(&self) -> Node {
        Node::Proposer(self.core.id())
    }

    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        self.core.handle(from, msg)
    }

    fn tick(&mut self) {
        self.core.tick();
    }

    fn take_ready(&mut self) -> Ready<ProposerOp> {
        self.core.take_ready()
    }

    fn persist(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError> {
        self.store.apply(ops)
    }

    fn status(&self) -> StatusReply {
        self.core.status()
    }

    fn view(&self) -> Option<View> {
        Some(View { role: self.core.role().name(), leader: self.core.leader(), ballot: self.core.ballot() })
    }

    fn store_stats(&self) -> StoreStats {
        self.store.stats()
    }
}

/// The proposer configuration for member `id` of `cluster` with `settings`:
/// the millisecond timings of the cluster file turned into ticks.
pub fn proposer_config(cluster: &ClusterConfig, id: u32, settings: &NodeSettings) -> ProposerConfig {
    let tick_ms = settings.tick_ms.max(1);
    let mut cfg = ProposerConfig::new(
        NodeId(id),
        cluster.proposers.iter().map(|m| NodeId(m.id)).collect(),
        cluster.acceptors.iter().map(|m| NodeId(m.id)).collect(),
    );
    cfg.heartbeat_ticks = (settings.heartbeat_ms / tick_ms).max(1);
    cfg.election_timeout_ticks = (settings.election_timeout_ms / tick_ms).max(2 * cfg.heartbeat_ticks + 1);
    cfg.retransmit_ticks = (cfg.heartbeat_ticks / 2).max(MIN_RETRANSMIT_TICKS);
    // Each start probes the acceptors with a nonce of its own (see Proposer's probe).
    cfg.incarnation = crate::client::random_u64();
    cfg
}

/// Runs `replica` on `socket` until `shutdown` completes, [`Control::Shutdown`]
/// arrives, or a storage error stops it. `cluster` names the cluster and its
/// members; `settings` gives the tick and the election timeout.
///
/// # Errors
/// [`RunError::Storage`] when a batch could not be made durable (the caller
/// must exit non-zero: nothing that depends on it was sent);
/// [`RunError::Socket`] when the socket's own address cannot be read.
pub async fn run<R: Replica>(
    replica: R,
    socket: UdpSocket,
    cluster: &ClusterConfig,
    settings: &NodeSettings,
    control: mpsc::UnboundedReceiver<Control>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let local = socket.local_addr()?;
    let me = replica.me();
    let chaos = Chaos::new(&cluster.chaos, chaos::node_index(cluster, me));
    if let Some(chaos) = &chaos {
        let s = chaos.settings();
        warn!(
            node = %me,
            drop = s.drop,
            duplicate = s.duplicate,
            delay_ms = s.delay_ms,
            reorder = s.reorder,
            seed = s.seed,
            node_seed = chaos.node_seed(),
            "CHAOS ON: this node drops, duplicates, delays and reorders its own outgoing datagrams \
             ([chaos] / PAXOS_CHAOS__*), for failure testing only"
        );
    }
    let (book, resolved) = AddressBook::new(cluster, local);
    let mut node = Loop {
        view: replica.view(),
        replica,
        socket,
        book,
        clients: ClientAddrs::new(MAX_CLIENTS),
        counters: Counters::new(me),
        cluster: cluster.cluster.clone(),
        me,
        failed: false,
        recv_buf: vec![0; MAX_DATAGRAM_BYTES + 1],
        send_buf: Vec::with_capacity(MAX_DATAGRAM_BYTES),
        status_requests: Vec::new(),
        heard: HashMap::new(),
        election_timeout: Duration::from_millis(settings.election_timeout_ms),
        chaos,
    };
    let tick = Duration::from_millis(settings.tick_ms.max(1));
    node.run(tick, control, resolved, shutdown).await
}

/// The state of the loop beyond the role.
struct Loop<R> {
    replica: R,
    socket: UdpSocket,
    book: AddressBook,
    clients: ClientAddrs,
    counters: Counters,
    cluster: String,
    me: Node,
    failed: bool,
    /// One byte more than the largest datagram, so that a larger one shows as too large.
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
    /// Status requests of this batch, answered once the batch is durable: (address, sender, req).
    status_requests: Vec<(SocketAddr, Node, u64)>,
    /// When each member was last heard from (shown in an acceptor's status).
    heard: HashMap<Node, Instant>,
    election_timeout: Duration,
    view: Option<View>,
    /// The fault injector of the outgoing datagrams, when `[chaos]` is on.
    chaos: Option<Chaos>,
}

impl<R: Replica> Loop<R> {
    async fn run(
        &mut self,
        tick_every: Duration,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut resolved: mpsc::UnboundedReceiver<crate::transport::Resolved>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RunError> {
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        let mut control_open = true;
        loop {
            let chaos_wakeup = self.chaos.as_ref().and_then(Chaos::next_wakeup);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                c = control.recv(), if control_open => match c {
                    Some(Control::Shutdown) => break,
                    Some(Control::Fail) => self.set_failed(true),
                    Some(Control::Recover) => self.set_failed(false),
                    None => control_open = false,
                },
                _ = tick.tick() => {
                    self.replica.tick();
                    self.book.refresh(Instant::now());
                }
                () = sleep_until(chaos_wakeup), if chaos_wakeup.is_some() => self.send_chaos_due().await,
                Some(r) = resolved.recv() => self.book.resolved(r),
                ready = self.socket.readable() => {
                    ready?;
                    self.drain();
                }
            }
            // A storage error ends the loop here; the caller logs it and exits non-zero.
            self.flush().await?;
        }
        // Nothing is half-done here: every batch was persisted and sent before
        // the loop looked at the shutdown branch again.
        info!(node = %self.me, counters = ?self.status().counters, "stopped");
        Ok(())
    }

    fn set_failed(&mut self, failed: bool) {
        if self.failed == failed {
            return;
        }
        self.failed = failed;
        if let (true, Some(chaos)) = (failed, &mut self.chaos) {
            // A failed node sends nothing, not even what the chaos held back.
            chaos.discard();
        }
        if failed {
            info!(node = %self.me, "failed by signal: ignoring every datagram and sending nothing until SIGUSR2");
        } else {
            info!(node = %self.me, "recovered by signal: back to normal");
        }
    }

    /// Feeds every queued datagram (up to the batch limit) to the role.
    fn drain(&mut self) {
        for _ in 0..MAX_BATCH_DATAGRAMS {
            match self.socket.try_recv_from(&mut self.recv_buf) {
                Ok((len, src)) => self.on_datagram(len, src),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // E.g. an ICMP error reported on the socket: about one datagram, not the socket.
                    self.counters.incr(counters::RECV_ERRORS);
                    if let Some(suppressed) = self.counters.may_warn(counters::RECV_ERRORS, Instant::now()) {
                        warn!(node = %self.me, error = %e, suppressed, "receive failed");
                    }
                }
            }
        }
        self.counters.incr(counters::BATCHES);
    }

    fn on_datagram(&mut self, len: usize, src: SocketAddr) {
        self.counters.incr(counters::DATAGRAMS_IN);
        let env = match decode(&self.recv_buf[..len]) {
            Ok(env) => env,
            Err(e) => {
                self.counters.drop_datagram(decode_kind(&e), src, e);
                return;
            }
        };
        if env.cluster != self.cluster {
            let why = format!("cluster {:?} is not {:?}", truncate(&env.cluster, 64), self.cluster);
            self.counters.drop_datagram("dropped.cluster", src, why);
            return;
        }
        if env.to != self.me {
            self.counters.drop_datagram("dropped.receiver", src, format!("addressed to {}, not to us", env.to));
            return;
        }
        match env.from {
            Node::Client(id) => self.clients.seen(id, src),
            member => {
                if !self.book.verify(member, src) {
                    let why = if self.book.is_member(member) {
                        format!("claims to be {member} but comes from another address")
                    } else {
                        format!("claims to be {member}, which is not a member")
                    };
                    self.counters.drop_datagram("dropped.sender", src, why);
                    return;
                }
            }
        }
        if let Message::StatusRequest(r) = &env.msg {
            self.status_requests.push((src, env.from, r.req));
            return;
        }
        if self.failed {
            self.counters.incr("dropped.failed");
            return;
        }
        if !matches!(env.from, Node::Client(_)) {
            self.heard.insert(env.from, Instant::now());
        }
        let kind = env.msg.kind();
        debug!(node = %self.me, from = %env.from, kind, "received");
        if let Err(Ignored(reason)) = self.replica.handle(env.from, env.msg) {
            self.counters.drop_datagram("dropped.ignored", src, format_args!("{kind} from {}: {reason}", env.from));
        }
    }

    /// Sends the role's early messages, persists its writes, then sends its
    /// messages and the status replies.
    async fn flush(&mut self) -> Result<(), RunError> {
        let ready = self.replica.take_ready();
        if self.failed {
            self.counters.add("suppressed.failed", ready.early.len() as u64);
        } else {
            for out in ready.early {
                self.send(out.to, out.msg).await;
            }
        }
        if !ready.persist.is_empty() {
            self.replica.persist(&ready.persist)?;
        }
        if self.failed {
            self.counters.add("suppressed.failed", ready.messages.len() as u64);
        } else {
            for out in ready.messages {
                self.send(out.to, out.msg).await;
            }
        }
        if !self.status_requests.is_empty() {
            let base = self.status();
            for (addr, to, req) in std::mem::take(&mut self.status_requests) {
                let reply = StatusReply { req, ..base.clone() };
                self.send_to(addr, to, Message::StatusReply(reply)).await;
            }
        }
        let view = self.replica.view();
        if view != self.view {
            if let Some(v) = &view {
                let leader = v.leader.map_or_else(|| "none".to_owned(), |l| l.to_string());
                info!(node = %self.me, role = v.role, leader = %leader, ballot = %v.ballot, "leadership or ballot changed");
            }
            self.view = view;
        }
        Ok(())
    }

    fn status(&self) -> StatusReply {
        let mut s = self.replica.status();
        s.failed = self.failed;
        if matches!(self.me, Node::Acceptor(_)) && s.peers_heard.is_empty() {
            let now = Instant::now();
            let mut heard: Vec<Node> = self
                .heard
                .iter()
                .filter(|(_, t)| now.duration_since(**t) < self.election_timeout)
                .map(|(n, _)| *n)
                .collect();
            heard.sort();
            s.peers_heard = heard;
        }
        let mut c = self.counters.snapshot();
        let st = self.replica.store_stats();
        c.insert("fsyncs".into(), st.fsyncs);
        c.insert("wal.writes".into(), st.writes);
        c.insert("wal.bytes".into(), st.bytes);
        c.insert("compactions".into(), st.compactions);
        if matches!(self.me, Node::Proposer(_)) {
            c.insert("values.decided".into(), s.decided.0);
        }
        if let Some(chaos) = &self.chaos {
            c.extend(chaos.stats().counters());
        }
        s.counters = c;
        s
    }

    async fn send(&mut self, to: Node, msg: Message) {
        let addr = match to {
            Node::Client(id) => self.clients.get(id),
            member => self.book.addr_of(member),
        };
        let Some(addr) = addr else {
            self.counters.incr(counters::UNROUTABLE);
            if let Some(suppressed) = self.counters.may_warn(counters::UNROUTABLE, Instant::now()) {
                warn!(node = %self.me, to = %to, kind = msg.kind(), suppressed, "no address to send to yet; dropped");
            }
            return;
        };
        self.send_to(addr, to, msg).await;
    }

    async fn send_to(&mut self, addr: SocketAddr, to: Node, msg: Message) {
        let kind = msg.kind();
        let env = Envelope { version: PROTOCOL_VERSION, cluster: self.cluster.clone(), from: self.me, to, msg };
        if let Err(e) = encode(&env, &mut self.send_buf) {
            // The core packs every message to fit; this is a bug of ours, not the peer's.
            self.counters.incr(counters::ENCODE_ERRORS);
            error!(node = %self.me, to = %to, kind, error = %e, "cannot encode an outgoing message; dropped");
            return;
        }
        let Some(chaos) = &mut self.chaos else {
            let bytes = std::mem::take(&mut self.send_buf);
            self.transmit(addr, to, &bytes).await;
            self.send_buf = bytes;
            return;
        };
        let out = chaos.submit(Instant::now(), Datagram { addr, to, bytes: self.send_buf.clone() });
        for d in out {
            self.transmit(d.addr, d.to, &d.bytes).await;
        }
    }

    /// Sends what the chaos delayed or held back and is now due.
    async fn send_chaos_due(&mut self) {
        let Some(chaos) = &mut self.chaos else { return };
        let due = chaos.due(Instant::now());
        for d in due {
            self.transmit(d.addr, d.to, &d.bytes).await;
        }
    }

    /// Puts one encoded datagram on the wire.
    async fn transmit(&mut self, addr: SocketAddr, to: Node, bytes: &[u8]) {
        match self.socket.send_to(bytes, addr).await {
            Ok(_) => self.counters.incr(counters::DATAGRAMS_OUT),
            Err(e) => {
                self.counters.incr(counters::SEND_ERRORS);
                if !matches!(to, Node::Client(_)) {
                    self.book.send_failed(to);
                }
                if let Some(suppressed) = self.counters.may_warn(counters::SEND_ERRORS, Instant::now()) {
                    warn!(node = %self.me, to = %to, addr = %addr, error = %e, suppressed, "send failed");
                }
            }
        }
    }
}

/// Completes at `at`, or never when there is no `at` (a disabled `select!` branch).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The drop counter of a decode error.
fn decode_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::TooLarge { .. } => "dropped.too_large",
        DecodeError::Malformed(_) => "dropped.malformed",
        DecodeError::Version { .. } => "dropped.version",
        DecodeError::Invalid(_) => "dropped.invalid",
    }
}

/// At most `max` bytes of `s`, cut at a character boundary (for logging untrusted text).
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
