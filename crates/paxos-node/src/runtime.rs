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
//!                            send ready.early             answers that need no write of ours
//!                            persist ready.persist        one write + one fsync (maybe in the background)
//!                            send ready.messages          once that batch is durable
//! ```
//!
//! # Bundles
//!
//! Each of the two sends above queues its messages per destination address
//! and puts them on the wire at the end of the step as [`Bundle`]s: all the
//! messages of one step for one address share a datagram as long as it fits,
//! so a leader answers the 64 clients of one `paxosctl bench` socket with
//! one `sendto`, and a message for several receivers (an `Accept` for every
//! acceptor) is serialized once ([`encode_message`], then
//! [`encode_with_body`] per receiver). Received datagrams may be bundles
//! too; each envelope of one is checked as if it had come alone.
//!
//! # Group commit
//!
//! The loop feeds every datagram that is queued in the socket to the role
//! before it takes one [`Ready`], persists its operations
//! with one append and one `fdatasync`, and only then sends its messages.
//! Where the fsync runs depends on the role ([`background_persist`],
//! [`paxos_storage::persist`]):
//!
//! - an acceptor fsyncs in the loop: while it does, the datagrams that arrive
//!   wait in the kernel's receive buffer (sized by
//!   [`crate::transport::SOCKET_BUFFER_BYTES`]) and the next wake-up drains
//!   them all, so one fsync covers everything that arrived during the
//!   previous one;
//! - a proposer fsyncs on a thread of its own and its loop goes on: the next
//!   clients' values are proposed and the next decisions answered (all
//!   `early`) while its log is synced. Each `Ready`'s `messages` wait, in
//!   order, until its batch is durable; batches that queue up meanwhile share
//!   one fsync.
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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use paxos_client::client::unix_ms;
use paxos_client::config::{ClusterConfig, NodeSettings};
use paxos_core::{FastMap, Ignored, Outgoing, ProposerConfig, Role, StorageError, Store, View};
use paxos_proto::auth::Signer;
use paxos_proto::{
    decode_bundle, encode_envelope_head, encode_message, Bundle, ClientId, DecodeError, EncodeError, Envelope, Message,
    Node, NodeId, StatusReply, MAX_BODY_BYTES, MAX_DATAGRAM_BYTES,
};
use paxos_storage::persist::{BatchSeq, Completion, Pages, Persist};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::chaos::{self, Chaos, Datagram};
use crate::counters::{self, Counters};
use crate::guard::{Guard, Verdict};
use crate::transport::{AddressBook, ClientAddrs, MAX_CLIENTS};

/// The most datagrams fed to the role before one `Ready` is taken and persisted.
pub const MAX_BATCH_DATAGRAMS: usize = 1024;

/// A proposer syncs its log at most this often (see [`paxos_storage::persist`]).
pub const PROPOSER_MIN_SYNC_INTERVAL: Duration = Duration::from_millis(2);

/// Ticks a proposer waits for an answer before it sends a prepare or accept again, at least.
pub const MIN_RETRANSMIT_TICKS: u64 = 3;

/// Client requests timed at once for `paxos_commit_latency_seconds`, at most;
/// beyond, the timings start over (requests redirected or abandoned leave none behind for long).
pub const MAX_TIMED_REQUESTS: usize = 1 << 16;

/// The address book takes in the role's members (a new configuration, a node being added) this often.
pub const MEMBERS_EVERY_TICKS: u64 = 10;

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
    Storage(StorageError),
    /// The persist thread could not be started.
    #[error("cannot start the persist thread: {0}")]
    Thread(std::io::Error),
    /// The socket failed in a way that is not about one datagram.
    #[error("socket: {0}")]
    Socket(std::io::Error),
    /// A key file of `[auth]` cannot be read.
    #[error("{0}")]
    Keys(paxos_client::config::ConfigError),
}

// Each variant's message already holds its cause: no `#[from]` (which would
// make it the error's source too, and `{:#}` would print it twice).
impl From<StorageError> for RunError {
    fn from(e: StorageError) -> Self {
        RunError::Storage(e)
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Socket(e)
    }
}

impl From<paxos_client::config::ConfigError> for RunError {
    fn from(e: paxos_client::config::ConfigError) -> Self {
        RunError::Keys(e)
    }
}

/// Whether the node `me` persists on a thread of its own and goes on
/// meanwhile (a proposer: its answers to clients and its accepts rest on no
/// write of its own that is not durable yet), or fsyncs in its loop (an
/// acceptor: it has nothing to send before its writes are durable, and saves
/// two thread switches per batch).
pub fn background_persist(me: Node) -> bool {
    matches!(me, Node::Proposer(_))
}

/// The proposer configuration for member `id` of `cluster` with `settings`:
/// the millisecond timings of the cluster file turned into ticks.
pub fn proposer_config(cluster: &ClusterConfig, id: u32, settings: &NodeSettings) -> ProposerConfig {
    let tick_ms = settings.tick_ms.max(1);
    let mut cfg = ProposerConfig::with_genesis(NodeId(id), cluster.genesis());
    cfg.retain_slots = cluster.log.retain_slots;
    cfg.heartbeat_ticks = heartbeat_ticks(settings);
    cfg.election_timeout_ticks = (settings.election_timeout_ms / tick_ms).max(2 * cfg.heartbeat_ticks + 1);
    cfg.retransmit_ticks = (cfg.heartbeat_ticks / 2).max(MIN_RETRANSMIT_TICKS);
    cfg.tick_ms = tick_ms;
    // Each start probes the acceptors with a nonce of its own (see Proposer's probe).
    cfg.incarnation = paxos_client::client::random_u64();
    cfg
}

/// An acceptor's lease in ticks ([`paxos_core::AcceptorConfig::lease_ticks`]):
/// two of the cluster's heartbeats, as the proposers count them.
pub fn lease_ticks(settings: &NodeSettings) -> u64 {
    2 * heartbeat_ticks(settings)
}

/// Ticks from the end of a pass over the decided log to the next
/// ([`paxos_core::SCRUB_AGAIN_TICKS`]): a day, whatever the tick.
pub fn scrub_again_ticks(settings: &NodeSettings) -> u64 {
    (24 * 3600 * 1000 / settings.tick_ms.max(1)).max(1)
}

/// Ticks from a failed read of the decided log to the pass that reads it
/// again ([`paxos_core::SCRUB_RETRY_TICKS`]): 10 s, whatever the tick.
pub fn scrub_retry_ticks(settings: &NodeSettings) -> u64 {
    (10 * 1000 / settings.tick_ms.max(1)).max(1)
}

fn heartbeat_ticks(settings: &NodeSettings) -> u64 {
    (settings.heartbeat_ms / settings.tick_ms.max(1)).max(1)
}

/// Runs `role` with `store` on `socket` until `shutdown` completes,
/// [`Control::Shutdown`] arrives, or a storage error stops it. The role was
/// built from `store.load()`; `cluster` names the cluster and its members;
/// `settings` gives the tick and the election timeout.
///
/// # Errors
/// [`RunError::Storage`] when a batch could not be made durable (the caller
/// must exit non-zero: nothing that depends on it was sent);
/// [`RunError::Socket`] when the socket's own address cannot be read.
pub async fn run<R: Role, S: Store<State = R::State>>(
    role: R,
    store: S,
    socket: UdpSocket,
    cluster: &ClusterConfig,
    settings: &NodeSettings,
    control: mpsc::UnboundedReceiver<Control>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let local = socket.local_addr()?;
    let me = role.me();
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
    let guard = Guard::new(cluster)?;
    if !guard.auth_on() {
        warn!(
            node = %me,
            "AUTH OFF: no [auth] in the cluster file, so any host that can reach this port and forge a member's \
             address can break every guarantee; set [auth] peer_key_file (paxosctl keygen makes a key)"
        );
    }
    for (path, mode) in cluster.exposed_key_files() {
        warn!(
            node = %me,
            file = %path.display(),
            mode = %format_args!("{mode:o}"),
            "a key file any user may read: whoever reads it can sign as a member; chmod 600 (or 640) it"
        );
    }
    let (book, resolved) = AddressBook::new(cluster, local);
    let (done_tx, completions) = mpsc::unbounded_channel();
    // GET /metrics, /health, /ready: writes timed, status published (inert without HTTP).
    let http = crate::http::Publisher::installed();
    let store = http.timed(store);
    let persist = if background_persist(me) {
        let done = move |c: Completion| done_tx.send(c).is_ok();
        Persist::background(store, &me.to_string(), PROPOSER_MIN_SYNC_INTERVAL, done).map_err(RunError::Thread)?
    } else {
        Persist::inline(store)
    };
    let mut role = role;
    role.set_clock(unix_ms());
    let mut node = Loop {
        persist,
        completions,
        waiting: VecDeque::new(),
        view: role.view(),
        role,
        socket,
        book,
        clients: ClientAddrs::new(MAX_CLIENTS),
        counters: Counters::new(me),
        cluster: cluster.cluster.clone(),
        me,
        failed: false,
        recv_buf: vec![0; MAX_DATAGRAM_BYTES + 1],
        send_buf: Vec::with_capacity(MAX_DATAGRAM_BYTES),
        body: Vec::new(),
        body_of: None,
        outbox: Vec::new(),
        outbox_index: FastMap::default(),
        spare: Vec::new(),
        datagram: Vec::with_capacity(MAX_DATAGRAM_BYTES),
        status_requests: Vec::new(),
        cookies: Vec::new(),
        heard: HashMap::new(),
        election_timeout: Duration::from_millis(settings.election_timeout_ms),
        chaos,
        guard,
        ticks: 0,
        missed: None,
        http,
        arrivals: FastMap::default(),
        damage_seen: Vec::new(),
    };
    let tick = Duration::from_millis(settings.tick_ms.max(1));
    node.run(tick, control, resolved, shutdown).await
}

/// Messages that wait until batch `seq` is durable.
struct Waiting {
    seq: BatchSeq,
    messages: Vec<Outgoing>,
    /// Status requests of that wake-up: (address, sender, req).
    status_requests: Vec<(SocketAddr, Node, u64)>,
}

/// The state of the loop beyond the role.
struct Loop<R: Role, S: Store<State = R::State>> {
    role: R,
    persist: Persist<S>,
    /// What the persist thread reports, in order.
    completions: mpsc::UnboundedReceiver<Completion>,
    /// What waits on batches not yet durable, oldest first.
    waiting: VecDeque<Waiting>,
    socket: UdpSocket,
    book: AddressBook,
    clients: ClientAddrs,
    counters: Counters,
    cluster: String,
    me: Node,
    failed: bool,
    /// One byte more than the largest datagram, so that a larger one shows as too large.
    recv_buf: Vec<u8>,
    /// The head of the envelope being queued (`encode_envelope_head`): it
    /// goes into its bundle with `body` behind it, without a copy between.
    send_buf: Vec<u8>,
    /// The encoding of `body_of`, the last message queued: reused while the
    /// same message goes to further receivers.
    body: Vec<u8>,
    body_of: Option<Message>,
    /// The datagrams of this step, one bundle per address (with the node of
    /// its first envelope, for send-failure reports), sent by `send_outbox`.
    outbox: Vec<(SocketAddr, Node, Bundle)>,
    outbox_index: FastMap<SocketAddr, usize>,
    /// Emptied bundles kept for reuse, so that no step allocates them anew.
    spare: Vec<Bundle>,
    /// A finished bundle on its way to the wire, signed in place.
    datagram: Vec<u8>,
    /// Status requests of this batch, answered once the batch is durable: (address, sender, req).
    status_requests: Vec<(SocketAddr, Node, u64)>,
    /// Cookies for requests that must prove their address first: (address,
    /// client, the cookie message). Sent at once, even while failed, as
    /// status answers are (a failed node is still asked for its status).
    cookies: Vec<(SocketAddr, Node, Message)>,
    /// When each member was last heard from (shown in an acceptor's status).
    heard: HashMap<Node, Instant>,
    election_timeout: Duration,
    view: Option<View>,
    /// The fault injector of the outgoing datagrams, when `[chaos]` is on.
    chaos: Option<Chaos>,
    /// The keys, cookies and limits of what comes in; the signing of what goes out.
    guard: Guard,
    /// Ticks since the start.
    ticks: u64,
    /// The last send to a member the address book did not know, and its
    /// tick: the book takes in the role's members at most once per tick for
    /// each such member.
    missed: Option<(u64, Node)>,
    /// Hands the status to the HTTP side now and then; never waits for it.
    http: crate::http::Publisher,
    /// When HTTP is served: when each client request in hand first reached us.
    arrivals: FastMap<(ClientId, u64), Instant>,
    /// The causes of failed reads logged so far (at most [`DAMAGE_CAUSES_LOGGED`]).
    damage_seen: Vec<String>,
}

/// How many distinct causes of failed reads a node logs, each once.
const DAMAGE_CAUSES_LOGGED: usize = 16;

impl<R: Role, S: Store<State = R::State>> Loop<R, S> {
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
                    self.role.set_clock(unix_ms());
                    self.role.tick();
                    self.ticks += 1;
                    if self.ticks % MEMBERS_EVERY_TICKS == 1 {
                        self.take_members();
                    }
                    self.book.refresh(Instant::now());
                    self.http.set_diverged(self.role.divergence());
                    self.http.publish_due(self.role.leading(), || self.status());
                }
                () = sleep_until(chaos_wakeup), if chaos_wakeup.is_some() => self.send_chaos_due().await,
                Some(r) = resolved.recv() => self.book.resolved(r),
                Some(c) = self.completions.recv(), if self.persist.durable() < self.persist.submitted() => {
                    // A storage error ends the loop here; the caller logs it and exits non-zero.
                    let (durable, pages) = self.persist.completed(c)?;
                    self.read_done(pages);
                    self.release(durable).await;
                }
                ready = self.socket.readable() => {
                    ready?;
                    self.drain();
                }
            }
            self.flush().await?;
        }
        // Finish what is in hand: every batch taken is made durable (a failure
        // of the last one still fails the run) and what waited on it is sent.
        while self.persist.durable() < self.persist.submitted() {
            let Some(c) = self.completions.recv().await else {
                return Err(StorageError::Io("the persist thread stopped".into()).into());
            };
            let (durable, pages) = self.persist.completed(c)?;
            self.read_done(pages);
            self.release(durable).await;
        }
        info!(node = %self.me, counters = ?self.status().counters, "stopped");
        Ok(())
    }

    /// The address book takes in the role's members: the configuration in
    /// force and the nodes being added. Every [`MEMBERS_EVERY_TICKS`] ticks,
    /// and at once when the role sends to a member the book does not know
    /// yet (once per tick at most for each such member, whenever the last
    /// take was): a leader probes an acceptor being added as soon as an
    /// operator asks for it, maybe in the tick of a periodic take.
    fn take_members(&mut self) {
        for (node, addr) in self.role.members() {
            self.set_member(node, &addr);
        }
    }

    /// Takes where the configuration the log decided puts `node`, and warns
    /// once when the cluster file put it elsewhere: a cluster's file names its
    /// first configuration only, so a file rewritten with other addresses
    /// over an existing data dir would otherwise fail silently (nobody hears
    /// a node that listens where the log does not say).
    fn set_member(&mut self, node: Node, addr: &str) {
        if node != self.me {
            if let Some(file) = self.book.set_member(node, addr) {
                warn!(
                    node = %self.me, peer = %node, file_addr = %file, log_addr = %addr,
                    "the cluster file gives this member another address than the configuration the log decided; \
                     sending to the log's (keep the file up to date, or move the member: paxosctl member remove, then add)"
                );
            }
        } else if let Some(file) = self.book.file_addr_unless(node, addr) {
            warn!(
                node = %self.me, file_addr = %file, log_addr = %addr,
                "this node's address in the configuration the log decided is not the cluster file's: its peers send \
                 to the log's (start it there, e.g. with --listen, or move it: paxosctl member remove, then add)"
            );
        }
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
        self.guard.new_batch();
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
        let (body, signer) = match self.guard.check(&self.recv_buf[..len], src, Instant::now()) {
            Verdict::Take(body, signer) => (body, signer),
            Verdict::Drop(kind, why) => {
                self.counters.drop_datagram(kind, src, why);
                return;
            }
        };
        let envs = match decode_bundle(body) {
            Ok(envs) => envs,
            Err(e) => {
                self.counters.drop_datagram(decode_kind(&e), src, e);
                return;
            }
        };
        // A bundle of requests whose answers may be larger than themselves
        // (reads, member, restore and transfer requests) must not multiply
        // answers, cookies included: one of them per datagram.
        let mut reads = 0;
        for env in envs {
            if env.msg.proof().is_some() {
                reads += 1;
                if reads > 1 {
                    let why = "a second read (or member, restore or transfer request) in one datagram";
                    self.counters.drop_datagram("dropped.bundle", src, why);
                    continue;
                }
            }
            self.on_envelope(env, src, signer, len);
        }
    }

    /// One envelope of a datagram, checked as if it had come alone.
    fn on_envelope(&mut self, env: paxos_proto::Envelope, src: SocketAddr, signer: Signer, datagram_len: usize) {
        if env.cluster != self.cluster {
            let why = format!("cluster {:?} is not {:?}", truncate(&env.cluster, 64), self.cluster);
            self.counters.drop_datagram("dropped.cluster", src, why);
            return;
        }
        if env.to != self.me {
            self.counters.drop_datagram("dropped.receiver", src, format!("addressed to {}, not to us", env.to));
            return;
        }
        if let Err(why) = self.guard.admit(env.from, &env.msg, signer) {
            self.counters.drop_datagram("dropped.auth", src, format_args!("{}: {why}", env.from));
            return;
        }
        match env.from {
            Node::Client(id) => {
                if let Some(cookie) = self.guard.cookie_for(id, src, signer, &env.msg) {
                    // Its answer would be larger than it: the address must prove itself
                    // first, with a cookie no longer than the request (which clients pad).
                    let reply = Envelope {
                        version: paxos_proto::PROTOCOL_VERSION,
                        cluster: self.cluster.clone(),
                        from: self.me,
                        to: env.from,
                        msg: cookie,
                    };
                    let mut bytes = Vec::new();
                    if paxos_proto::encode(&reply, &mut bytes).is_err() || bytes.len() > datagram_len {
                        let why = "a request without a cookie, too short for the cookie it would get (pad it)";
                        self.counters.drop_datagram("dropped.amplification", src, why);
                        return;
                    }
                    self.counters.incr("cookies.sent");
                    self.cookies.push((src, env.from, reply.msg));
                    return;
                }
                self.clients.seen(id, src);
            }
            member => {
                if !self.book.is_member(member) && self.guard.auth_on() && signer == Signer::Peer {
                    // Signed with the peer key: a member added after what we know.
                    self.book.learn(member, src);
                }
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
        self.counters.message_in(kind);
        if let (Node::Client(client), Message::ClientPropose(p)) = (env.from, &env.msg) {
            if self.http.serving() {
                if self.arrivals.len() >= MAX_TIMED_REQUESTS {
                    self.arrivals.clear();
                }
                self.arrivals.entry((client, p.seq)).or_insert_with(Instant::now);
            }
        }
        debug!(node = %self.me, from = %env.from, kind, "received");
        if let Err(Ignored(reason)) = self.role.handle(env.from, env.msg) {
            self.counters.drop_datagram("dropped.ignored", src, format_args!("{kind} from {}: {reason}", env.from));
        }
    }

    /// Sends the role's early messages, persists its writes, then sends its
    /// messages and the status replies once those writes (and every earlier
    /// batch) are durable: now, or when the persist thread says so.
    async fn flush(&mut self) -> Result<(), RunError> {
        if !self.cookies.is_empty() {
            for (addr, to, msg) in std::mem::take(&mut self.cookies) {
                self.send_to(addr, to, msg).await;
            }
            self.send_outbox().await;
        }
        let ready = self.role.take_ready();
        if self.failed {
            self.counters.add("suppressed.failed", ready.early.len() as u64);
        } else if !ready.early.is_empty() {
            for out in ready.early {
                self.send(out.to, out.msg).await;
            }
            self.send_outbox().await;
        }
        let seq = if ready.persist.is_empty() && ready.reads.is_empty() {
            self.persist.submitted()
        } else {
            let (seq, pages) = self.persist.submit(ready.persist, ready.reads, self.role.folded())?;
            self.read_done(pages);
            seq
        };
        let status_requests = std::mem::take(&mut self.status_requests);
        // A node failed now never sends these, even if it recovers before they are durable.
        let messages = if self.failed {
            self.counters.add("suppressed.failed", ready.messages.len() as u64);
            Vec::new()
        } else {
            ready.messages
        };
        if !messages.is_empty() || !status_requests.is_empty() {
            let waiting = Waiting { seq, messages, status_requests };
            if self.waiting.is_empty() && seq <= self.persist.durable() {
                self.deliver(waiting).await;
            } else {
                self.waiting.push_back(waiting);
            }
        }
        let view = self.role.view();
        if view != self.view {
            if let Some(v) = &view {
                // No leader known: the field is absent (it is a number when present).
                let leader = v.leader.map(|l| l.0);
                info!(node = %self.me, role = v.role, leader, ballot = %v.ballot, "leadership or ballot changed");
            }
            self.view = view;
        }
        Ok(())
    }

    /// Hands the pages of the decided log that were read to the role (what
    /// it answers with leaves with the next `Ready`).
    ///
    /// A read that failed (a damaged segment, an I/O error) is answered with
    /// nothing, so that whoever asked goes to another node; the node goes on
    /// voting and leading (its state and the log's tail are intact, or the
    /// open or a write would have failed), says why in `/health`, counts
    /// `log_read_failed`, and logs an error once per distinct cause (of the
    /// first [`DAMAGE_CAUSES_LOGGED`]). Stopping
    /// instead made a node stop at each read of the damage, restart
    /// cleanly, and stop again. Once a later pass of the role reads the
    /// whole log while no read fails (the error passed: too many open files,
    /// a disk that timed out once), `/health` is clear again and
    /// `log_read_recovered` counts it (the role logs it).
    fn read_done(&mut self, pages: Pages) {
        for (id, page) in pages {
            match page {
                Ok(page) => self.role.on_read(id, page),
                Err(e) => {
                    self.role.on_read_failed(id);
                    self.counters.add("log_read_failed", 1);
                    let cause = e.to_string();
                    if !self.damage_seen.contains(&cause) && self.damage_seen.len() < DAMAGE_CAUSES_LOGGED {
                        self.damage_seen.push(cause.clone());
                        error!(
                            node = %self.me,
                            error = %cause,
                            "a read of the decided log failed: not answered, and the node goes on; to repair it, stop \
                             it, move its data dir away and start it again (it copies the log from its peers)"
                        );
                    }
                    self.http.set_damaged(Some(cause));
                }
            }
        }
        if self.http.damaged() && !self.role.damaged() {
            self.http.set_damaged(None);
            self.counters.add("log_read_recovered", 1);
            // A cause that comes back is logged again.
            self.damage_seen.clear();
        }
    }

    /// Sends what waited on the batches up to `durable`, in order.
    async fn release(&mut self, durable: BatchSeq) {
        while self.waiting.front().is_some_and(|w| w.seq <= durable) {
            let waiting = self.waiting.pop_front().expect("a waiting batch");
            self.deliver(waiting).await;
        }
    }

    /// Sends messages whose writes are durable, and the status replies.
    async fn deliver(&mut self, waiting: Waiting) {
        if self.failed {
            self.counters.add("suppressed.failed", waiting.messages.len() as u64);
        } else {
            for out in waiting.messages {
                self.send(out.to, out.msg).await;
            }
        }
        if !waiting.status_requests.is_empty() {
            let base = self.status();
            for (addr, to, req) in waiting.status_requests {
                let reply = StatusReply { req, ..base.clone() };
                self.send_to(addr, to, Message::StatusReply(reply)).await;
            }
        }
        self.send_outbox().await;
    }

    fn status(&self) -> StatusReply {
        let mut s = self.role.status();
        s.failed = self.failed;
        s.version = paxos_version::VERSION.to_owned();
        s.commit = paxos_version::COMMIT.to_owned();
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
        // The role's own counters (sessions, evictions, stale requests), then the runtime's.
        let mut c = std::mem::take(&mut s.counters);
        c.extend(self.counters.snapshot());
        let st = self.persist.stats();
        c.insert("fsyncs".into(), st.fsyncs);
        c.insert("wal.writes".into(), st.writes);
        c.insert("wal.bytes".into(), st.bytes);
        c.insert("compactions".into(), st.compactions);
        // Not a count: 1 while a read of the decided log failed and no pass read it all since.
        c.insert("log_damaged".into(), u64::from(self.role.damaged()));
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
        if let (Node::Client(client), false) = (to, self.arrivals.is_empty()) {
            self.answered(client, &msg);
        }
        let addr = match to {
            Node::Client(id) => self.clients.get(id),
            // A member the book does not know yet: take the role's members in, then look again.
            member => match self.book.addr_of(member) {
                None if !self.book.is_member(member) && self.missed != Some((self.ticks, member)) => {
                    self.missed = Some((self.ticks, member));
                    self.take_members();
                    self.book.addr_of(member)
                }
                addr => addr,
            },
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

    /// A client's request is answered (decided, redirected or refused): the
    /// time since it reached us goes into `paxos_commit_latency_seconds` if it
    /// was decided.
    fn answered(&mut self, client: ClientId, msg: &Message) {
        let (seq, decided) = match msg {
            Message::ClientReply(r) => (r.seq, true),
            Message::ClientRedirect(r) => (r.seq, false),
            Message::ClientError(e) => (e.seq, false),
            _ => return,
        };
        if let Some(arrived) = self.arrivals.remove(&(client, seq)) {
            if decided {
                self.http.observe_commit(arrived.elapsed());
            }
        }
    }

    /// Queues `msg` for `to` at `addr`, in the bundle of that address; sends
    /// the bundle first when the envelope does not fit in it any more.
    async fn send_to(&mut self, addr: SocketAddr, to: Node, msg: Message) {
        let kind = msg.kind();
        if self.body_of.as_ref() != Some(&msg) {
            encode_message(&msg, &mut self.body);
            self.body_of = Some(msg);
        }
        encode_envelope_head(&self.cluster, self.me, to, &mut self.send_buf);
        let len = self.send_buf.len() + self.body.len() + 1;
        if len > MAX_BODY_BYTES {
            // The core packs every message to fit; this is a bug of ours, not the peer's.
            self.counters.incr(counters::ENCODE_ERRORS);
            let e = EncodeError::TooLarge { len };
            error!(node = %self.me, to = %to, kind, error = %e, "cannot encode an outgoing message; dropped");
            return;
        }
        let i = match self.outbox_index.get(&addr) {
            Some(&i) => i,
            None => {
                let bundle = self.spare.pop().unwrap_or_default();
                self.outbox.push((addr, to, bundle));
                self.outbox_index.insert(addr, self.outbox.len() - 1);
                self.outbox.len() - 1
            }
        };
        if !self.outbox[i].2.fits_len(len) {
            let mut datagram = std::mem::take(&mut self.datagram);
            self.outbox[i].2.finish(&mut datagram);
            let first = self.outbox[i].1;
            self.send_datagram(addr, first, &mut datagram).await;
            self.datagram = datagram;
        }
        self.outbox[i].2.push_parts(&[&self.send_buf, &self.body, b"}"]);
        self.counters.message_out(kind);
    }

    /// Sends every bundle queued by [`Loop::send_to`] since the last call.
    async fn send_outbox(&mut self) {
        let mut outbox = std::mem::take(&mut self.outbox);
        let mut datagram = std::mem::take(&mut self.datagram);
        for (addr, to, mut bundle) in outbox.drain(..) {
            bundle.finish(&mut datagram);
            self.send_datagram(addr, to, &mut datagram).await;
            self.spare.push(bundle);
        }
        self.outbox = outbox;
        self.datagram = datagram;
        self.outbox_index.clear();
    }

    /// Signs one datagram for `to` (in place: the trailer is appended) and
    /// puts it on the wire, through the chaos when it is on.
    async fn send_datagram(&mut self, addr: SocketAddr, to: Node, datagram: &mut Vec<u8>) {
        self.guard.seal(to, datagram);
        let Some(chaos) = &mut self.chaos else {
            self.transmit(addr, to, datagram).await;
            return;
        };
        let out = chaos.submit(Instant::now(), Datagram { addr, to, bytes: datagram.clone() });
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
