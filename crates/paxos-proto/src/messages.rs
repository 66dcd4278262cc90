//! Every message of the protocol, one struct each, behind [`Message`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Ballot, ClientId, Config, Digest, Node, NodeId, Slot, Value};

/// One datagram: who sends what to whom, in which cluster and protocol version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version; see [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// Name of the cluster; a node drops datagrams of any other.
    pub cluster: String,
    /// The sender.
    pub from: Node,
    /// The receiver.
    pub to: Node,
    /// The message itself.
    pub msg: Message,
}

/// Every message a node can send or receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Proposer to acceptor: phase 1a.
    Prepare(Prepare),
    /// Acceptor to proposer: phase 1b.
    Promise(Promise),
    /// Acceptor to proposer: a refused prepare or accept.
    Nack(Nack),
    /// Proposer to acceptor, once per start: which ballot have you promised?
    Probe(Probe),
    /// Acceptor to proposer: the ballot it promised.
    ProbeReply(ProbeReply),
    /// Proposer to acceptor (phase 2a), and a copy to peer proposers so they learn the values.
    Accept(Accept),
    /// Acceptor to every proposer: phase 2b.
    Accepted(Accepted),
    /// Proposer to proposer: liveness, leadership and learning progress.
    Heartbeat(Heartbeat),
    /// Proposer to proposer: send me your decided entries from this slot on.
    CatchUp(CatchUp),
    /// Proposer to proposer: decided entries, in order.
    CatchUpReply(CatchUpReply),
    /// Proposer to proposer: a page of the state your log built (the clients'
    /// sessions), as frozen for this request's nonce.
    StateRequest(StateRequest),
    /// Proposer to proposer: a page of that frozen state.
    StateReply(StateReply),
    /// Client to proposer: append a value.
    ClientPropose(ClientPropose),
    /// Proposer to client: the value is decided at this slot.
    ClientReply(ClientReply),
    /// Proposer to client: I am not the leader; ask that one.
    ClientRedirect(ClientRedirect),
    /// Proposer to client: the request is refused.
    ClientError(ClientError),
    /// Client to proposer: read the decided log.
    LogRead(LogRead),
    /// Proposer to client: a page of the decided log.
    LogReply(LogReply),
    /// Client to any node: report your state.
    StatusRequest(StatusRequest),
    /// Node to client: its state.
    StatusReply(StatusReply),
    /// Node to client: ask again with this cookie (the sender's address is not validated yet).
    Cookie(Cookie),
    /// Client to proposer: list, add or remove members.
    MemberRequest(MemberRequest),
    /// Proposer to client: the configuration after the change, or why not.
    MemberReply(MemberReply),
    /// Client to proposer: append these entries, exactly, from this slot (restore from a backup).
    RestoreRequest(RestoreRequest),
    /// Proposer to client: the log now ends here.
    RestoreReply(RestoreReply),
    /// Client to leader: hand leadership to another proposer.
    TransferRequest(TransferRequest),
    /// Proposer to client: the transfer is done, or why not.
    TransferReply(TransferReply),
    /// Leader to proposer: campaign now, without waiting (a leadership transfer).
    TimeoutNow(TimeoutNow),
}

impl Message {
    /// A client request whose answer may be larger than itself: its request
    /// number and cookie, which an unsigned client must present before it
    /// gets that answer (docs/PROTOCOL.md, Cookies). `None` for every other
    /// message (a proposal's answers are about its own size).
    pub fn proof(&self) -> Option<(u64, Option<&str>)> {
        match self {
            Message::StatusRequest(r) => Some((r.req, r.cookie.as_deref())),
            Message::LogRead(r) => Some((r.req, r.cookie.as_deref())),
            Message::MemberRequest(r) => Some((r.req, r.cookie.as_deref())),
            Message::RestoreRequest(r) => Some((r.req, r.cookie.as_deref())),
            Message::TransferRequest(r) => Some((r.req, r.cookie.as_deref())),
            _ => None,
        }
    }

    /// The cookie field of a request [`Message::proof`] names.
    pub fn cookie_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            Message::StatusRequest(r) => Some(&mut r.cookie),
            Message::LogRead(r) => Some(&mut r.cookie),
            Message::MemberRequest(r) => Some(&mut r.cookie),
            Message::RestoreRequest(r) => Some(&mut r.cookie),
            Message::TransferRequest(r) => Some(&mut r.cookie),
            _ => None,
        }
    }

    /// A short name for logs and drop counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare(_) => "prepare",
            Message::Promise(_) => "promise",
            Message::Nack(_) => "nack",
            Message::Probe(_) => "probe",
            Message::ProbeReply(_) => "probe_reply",
            Message::Accept(_) => "accept",
            Message::Accepted(_) => "accepted",
            Message::Heartbeat(_) => "heartbeat",
            Message::CatchUp(_) => "catch_up",
            Message::CatchUpReply(_) => "catch_up_reply",
            Message::StateRequest(_) => "state_request",
            Message::StateReply(_) => "state_reply",
            Message::ClientPropose(_) => "client_propose",
            Message::ClientReply(_) => "client_reply",
            Message::ClientRedirect(_) => "client_redirect",
            Message::ClientError(_) => "client_error",
            Message::LogRead(_) => "log_read",
            Message::LogReply(_) => "log_reply",
            Message::StatusRequest(_) => "status_request",
            Message::StatusReply(_) => "status_reply",
            Message::Cookie(_) => "cookie",
            Message::MemberRequest(_) => "member_request",
            Message::MemberReply(_) => "member_reply",
            Message::RestoreRequest(_) => "restore_request",
            Message::RestoreReply(_) => "restore_reply",
            Message::TransferRequest(_) => "transfer_request",
            Message::TransferReply(_) => "transfer_reply",
            Message::TimeoutNow(_) => "timeout_now",
        }
    }
}

/// Phase 1a for every slot from `from` on (Multi-Paxos runs it once per leadership).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare {
    /// The ballot the proposer asks the acceptor to promise.
    pub ballot: Ballot,
    /// The first slot the promise covers; also where the reply's page starts.
    pub from: Slot,
    /// The configuration of the ballot's epoch and where that epoch starts
    /// in the log (from epoch 1 on): an acceptor learns from it whether it
    /// is a member, with which incarnation, and which slots are the epoch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    /// What the acceptor's answers said it had written, as in
    /// [`Probe::wrote`]: checked before the acceptor promises.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrote: Vec<Written>,
}

/// A configuration epoch: its members, and its first slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Epoch {
    /// The first slot of the epoch: one past the stop sign that decided its configuration.
    pub start: Slot,
    /// The configuration (its `epoch` is the epoch's number).
    pub config: Config,
}

/// Phase 1b: a promise for `ballot`, with one page of what the acceptor accepted.
///
/// A promise may not fit in one datagram, so it is paged: `entries` holds every
/// accepted slot in `[from, to)`; `done` says nothing was accepted at or above
/// `to`. The proposer asks for the next page by preparing again, with the same
/// ballot, from `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// The ballot promised.
    pub ballot: Ballot,
    /// The first slot of this page.
    pub from: Slot,
    /// One past the last slot this page covers.
    pub to: Slot,
    /// True when the acceptor accepted nothing at or above `to`.
    pub done: bool,
    /// Every slot below this one is decided, and the acceptor holds its value
    /// in its decided log (which a proposer can catch up from).
    pub decided: Slot,
    /// The acceptor's incarnation (see [`crate::Member`]).
    #[serde(default)]
    pub incarnation: u64,
    /// For each slot in `[from, to)` that the acceptor accepted: the highest ballot it accepted there and the value.
    pub entries: Vec<PromiseEntry>,
    /// How much the acceptor had written (see [`Written`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
}

/// One accepted slot reported in a promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromiseEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot under which the value was accepted.
    pub ballot: Ballot,
    /// The value accepted.
    pub value: Value,
}

/// A refusal of a prepare or an accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The ballot that was refused.
    pub ballot: Ballot,
    /// The highest ballot the acceptor has promised.
    pub promised: Ballot,
    /// Why: a higher promise, or an epoch the acceptor knows nothing of yet.
    #[serde(default, skip_serializing_if = "NackReason::is_promised")]
    pub reason: NackReason,
}

/// Why an acceptor refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NackReason {
    /// It promised a higher ballot.
    #[default]
    Promised,
    /// The ballot's epoch is one it has not joined: send it the epoch's prepare.
    UnknownEpoch,
    /// It is no voting member of the ballot's epoch (another incarnation, or not a member).
    NotMember,
}

impl NackReason {
    fn is_promised(&self) -> bool {
        *self == NackReason::Promised
    }
}

/// Asked by a proposer when it starts, before it may campaign.
///
/// A proposer that lost its data dir does not know which rounds it used; a
/// majority of acceptors does (its earlier phase 1 reached a majority), so it
/// asks them and campaigns above the highest round they name. The nonce tells
/// this start's answers from late answers to an earlier start's probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Chosen anew at every start of the proposer; echoed in the reply.
    pub nonce: u64,
    /// The sender's decided prefix: an acceptor that is rebuilding its
    /// decided log copies up to there from the sender.
    #[serde(default)]
    pub decided: Slot,
    /// True when the sender leads: with `echo`, it starts or renews the
    /// sender's lease at an acceptor whose highest promise is the sender's
    /// ballot, which then names it to proposers that think of campaigning.
    #[serde(default, skip_serializing_if = "is_false")]
    pub leading: bool,
    /// A leader's probe echoes the `challenge` of the acceptor's last answer
    /// (0: none): only an echo of its current one renews the lease, so a
    /// replayed probe, which echoes a spent one, renews nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub echo: u64,
    /// What the acceptor's answers to the sender (or to a peer of the
    /// sender) said it had written, the most of each of its latest starts
    /// (at most [`MAX_WRITTEN`]). An acceptor that finds it holds less than
    /// an earlier start said, as the same incarnation, lost writes it had
    /// synced: it stops voting as that incarnation and rebuilds (see [`Written`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrote: Vec<Written>,
}

/// The most claims of what an acceptor wrote that a proposer keeps and sends
/// back per acceptor (one per start of it; those of the fewest operations go first).
pub const MAX_WRITTEN: usize = 4;

/// How much an acceptor had written when it answered: a proposer keeps the
/// most it heard of each start and sends it back in its probes.
///
/// `ops` counts every operation the acceptor's store ever made durable
/// (it only grows, across restarts too), `start` names the acceptor's
/// current start (drawn anew at each). A claim from an earlier start whose
/// count is above what the acceptor found on disk when it started again
/// means that its disk lost writes it had synced and answered about (a
/// zeroed tail, a data dir rolled back to an older copy): it votes no more
/// with what it forgot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The acceptor's incarnation.
    pub incarnation: u64,
    /// The acceptor's start that answered.
    pub start: u64,
    /// Operations durable when it answered.
    pub ops: u64,
}

/// The answer to a probe. Changes nothing at the acceptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// The probe's nonce.
    pub nonce: u64,
    /// The highest ballot the acceptor promised.
    pub promised: Ballot,
    /// Every slot below this one is decided and in the acceptor's decided log.
    #[serde(default)]
    pub decided: Slot,
    /// The acceptor's incarnation.
    #[serde(default)]
    pub incarnation: u64,
    /// The latest epoch the acceptor joined.
    #[serde(default)]
    pub epoch: u32,
    /// True while it cannot vote: it lost its state, or is not (yet) a member
    /// with its incarnation, and waits to be let in.
    #[serde(default)]
    pub joining: bool,
    /// The proposer of the ballot the acceptor promised, while its lease
    /// lasts (renewed by a new vote in its accept, or by its leading probe
    /// that echoed the current `challenge`): a proposer campaigns only once
    /// a quorum names no other (pre-vote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
    /// A number the acceptor draws anew each time a leader's probe renews
    /// its lease (0: none); that leader's next probe echoes it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub challenge: u64,
    /// The acceptor's wall clock when it answered, in Unix ms (0: not set):
    /// a leader stamps client commands no later than the acceptors' clocks
    /// allow, so that one proposer's clock running ahead cannot age every
    /// client's session at once (see `Proposer::stamp`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_ms: u64,
    /// How much the acceptor had written (absent from acceptors of an
    /// earlier release): the proposer sends it back (see [`Probe::wrote`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
    /// The digest of the acceptor's decided log at its latest digest point
    /// (absent while it does not know it): the proposer compares it with
    /// its own (see [`Digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// Phase 2a for one or many slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The leader's ballot.
    pub ballot: Ballot,
    /// The values proposed, one per slot.
    pub entries: Vec<AcceptEntry>,
    /// Every slot below this one is decided (the leader's decided prefix):
    /// an acceptor moves what it accepted there under this ballot into its
    /// decided log, and fetches the rest.
    #[serde(default)]
    pub commit: Slot,
}

/// One slot of an accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptEntry {
    /// The slot.
    pub slot: Slot,
    /// The value proposed for it.
    pub value: Value,
}

/// Phase 2b: the acceptor accepted these slots under `ballot` (and has them on disk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The ballot accepted.
    pub ballot: Ballot,
    /// The slots accepted.
    pub slots: Vec<Slot>,
    /// How much the acceptor had written (see [`Written`]): the leader's
    /// probes send back the count of its latest vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
}

/// Sent by every proposer to every other proposer on each heartbeat tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The highest ballot the sender knows of (its own while it leads).
    pub ballot: Ballot,
    /// True while the sender holds leadership (phase 1 done with `ballot`).
    pub leader: bool,
    /// The sender's first undecided slot: it has learned every slot below.
    pub decided: Slot,
    /// The highest slot the sender knows to be decided, plus one (may be above `decided` while it has holes).
    pub known: Slot,
    /// True once a read of the sender's decided log failed (a damaged
    /// segment, or an I/O error), until a pass over its whole decided log
    /// reads it cleanly: it cannot serve what it holds there, so it should
    /// not lead while a peer that can is alive. Absent means false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub damaged: bool,
    /// For each acceptor, the two claims of what it wrote that say the most
    /// of those the sender keeps (see [`Written`]): a peer that campaigns
    /// after the sender is gone sends them back, so an acceptor whose disk
    /// lost writes finds out even when only the old leader heard its last
    /// answers (if the leader lived a heartbeat after them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<(NodeId, Written)>,
    /// The digest of the sender's decided log at its latest digest point
    /// (absent while it does not know it): the receiver compares it with its own (see [`Digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// A learner (a proposer, or an acceptor filling its decided log) asks a
/// proposer or an acceptor for the decided entries it lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// The first slot wanted.
    pub from: Slot,
    /// At most this many entries.
    pub limit: u32,
    /// A number the asker drew at random, echoed in the reply: only a reply
    /// that carries it may restart the asker's log later (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Decided entries `from`, `from + 1`, ... in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUpReply {
    /// The slot of the first entry.
    pub from: Slot,
    /// The decided values, consecutive from `from`.
    pub entries: Vec<Value>,
    /// The sender's first undecided slot.
    pub decided: Slot,
    /// When `from` is where the sender's log starts (retention deleted the
    /// slots below), the configuration epoch in force at `from`, if it
    /// started at or before `from`: a node that restarts its log there
    /// cannot read that configuration from the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    /// The nonce of the request answered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
}

/// A proposer whose log restarts later (retention deleted the slots it
/// lacks) asks a peer for the state its log built at the peer's decided
/// prefix, a page at a time: the sessions of clients after `after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRequest {
    /// Drawn from the asker's secret seed; the same for every page of one copy.
    pub nonce: u64,
    /// The last client of the previous page; none for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ClientId>,
}

/// One client's session: its last applied request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The client.
    pub client: ClientId,
    /// The request number.
    pub seq: u64,
    /// The slot where it was applied.
    pub slot: Slot,
    /// Its stamp, in milliseconds.
    pub at: u64,
}

/// A page of the state a proposer's log built at `at`, frozen when the first
/// page was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReply {
    /// The request's nonce.
    pub nonce: u64,
    /// The state is that of the log's slots below this one.
    pub at: Slot,
    /// The configuration epoch in force at `at`, if the log decided one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    /// The log's clock at `at`.
    pub clock: u64,
    /// Sessions, in the order of client ids, after the request's `after`.
    pub sessions: Vec<SessionEntry>,
    /// More pages follow.
    pub more: bool,
}

/// A client asks to append a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPropose {
    /// The client's request number; a retry reuses it. A client has one request in flight at a time.
    pub seq: u64,
    /// The value: UTF-8, at most [`crate::MAX_VALUE_BYTES`]; shared, as it
    /// becomes a [`crate::Command`]'s data.
    #[serde(with = "crate::types::shared_str")]
    pub value: std::sync::Arc<str>,
}

/// The request is decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReply {
    /// The request number answered.
    pub seq: u64,
    /// The slot the value holds, for good.
    pub slot: Slot,
}

/// The receiver is not the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRedirect {
    /// The request number answered.
    pub seq: u64,
    /// The leader as far as the receiver knows, if it knows one.
    pub leader: Option<NodeId>,
}

/// A change of membership, or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberOp {
    /// The current configuration.
    List,
    /// A new member; an acceptor votes once it started and caught up.
    Add {
        /// `acceptor` or `proposer`.
        role: MemberRole,
        /// Its id within its role.
        id: NodeId,
        /// Where it listens.
        addr: String,
    },
    /// A member leaves.
    Remove {
        /// `acceptor` or `proposer`.
        role: MemberRole,
        /// Its id within its role.
        id: NodeId,
    },
}

impl MemberOp {
    /// The member an addition or removal is about.
    pub fn target(&self) -> Option<(MemberRole, NodeId)> {
        match self {
            MemberOp::List => None,
            MemberOp::Add { role, id, .. } | MemberOp::Remove { role, id } => Some((*role, *id)),
        }
    }

    /// True when `config` already has what this asks for: the member, at
    /// that address (an acceptor pinned to an incarnation, as a leader adds
    /// one), or no such member.
    pub fn satisfied_by(&self, config: &Config) -> bool {
        match self {
            MemberOp::List => true,
            MemberOp::Add { role: MemberRole::Acceptor, id, addr } => {
                config.acceptors.iter().any(|m| m.id == *id && m.addr == *addr && m.incarnation.is_some())
            }
            MemberOp::Add { role: MemberRole::Proposer, id, addr } => {
                config.proposers.iter().any(|m| m.id == *id && m.addr == *addr)
            }
            MemberOp::Remove { role, id } => !config.members(*role).iter().any(|m| m.id == *id),
        }
    }
}

/// The two roles of members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// A proposer.
    Proposer,
    /// An acceptor.
    Acceptor,
}

impl MemberRole {
    /// `acceptor` or `proposer`, as on the wire.
    pub fn name(self) -> &'static str {
        match self {
            MemberRole::Acceptor => "acceptor",
            MemberRole::Proposer => "proposer",
        }
    }
}

/// Client to proposer: membership (answered by the leader; others redirect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRequest {
    /// Echoed in the reply.
    pub req: u64,
    /// What to do.
    pub op: MemberOp,
    /// When the client stops waiting, in Unix ms of its clock: a leader
    /// never starts the change after this, and answers why it gave it up
    /// (at the earliest [`MAX_CLOCK_SKEW_MS`] later, by its clock).
    /// Without it, the change waits at the leader until it can be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The epoch of the configuration the client saw (a `List` answer's):
    /// the change is made only from that configuration. A leader whose
    /// configuration in force is of a later epoch, and does not already do
    /// what the request asks, refuses it with that configuration (the reply
    /// has both `error` and `config`), so that a late copy of an old request
    /// (duplicated or delayed by the network) never makes a change again
    /// after a later one undid it. Without it, the change is made from
    /// whatever configuration is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The cookie a node gave this client's address (see [`Cookie`]): an
    /// unsigned client proves its address with it before the answer, which
    /// is larger than the request, is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// How far apart the proposers' wall clocks may be for a member request's
/// deadline to mean what it says: a leader answers "given up" only after a
/// value it proposed this long past the deadline (by its clock) is decided,
/// so that a leader whose clock is behind by at most this much cannot
/// still get the change decided afterwards.
pub const MAX_CLOCK_SKEW_MS: u64 = 500;

/// Proposer to client: the configuration in force once the change is
/// decided, or why it was refused; or, from a proposer that does not lead,
/// the leader to ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReply {
    /// The request answered.
    pub req: u64,
    /// The configuration in force (after the change); with `error`, the
    /// one in force that the request's `epoch` is older than: nothing was
    /// made, ask again from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
    /// Why the change was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not the leader: ask this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
}

/// Client to leader: append `entries` at `from`, `from + 1`, ... exactly as
/// given (a value, or `None` for a no-op): how a backup is restored into an
/// empty cluster. Accepted only where the log ends at `from`; answered once
/// they are decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// Echoed in the reply.
    pub req: u64,
    /// The slot of the first entry.
    pub from: Slot,
    /// The entries.
    pub entries: Vec<Option<String>>,
    /// The cookie a node gave this client's address (see [`Cookie`]): an
    /// unsigned client proves its address with it before the answer, which
    /// may be larger than the request, is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// Proposer to client: where the log ends now, or why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReply {
    /// The request answered.
    pub req: u64,
    /// One past the last slot of the log.
    pub end: Slot,
    /// Why the entries were not appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not the leader: ask this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
}

/// Client to leader: hand leadership to proposer `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Echoed in the reply.
    pub req: u64,
    /// The proposer that should lead.
    pub to: NodeId,
    /// The cookie a node gave this client's address (see [`Cookie`]): an
    /// unsigned client proves its address with it before the answer, which
    /// may be larger than the request, is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// Proposer to client: who leads after the transfer, or why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReply {
    /// The request answered.
    pub req: u64,
    /// The leader as far as the sender knows.
    pub leader: Option<NodeId>,
    /// Why the transfer was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Leader to proposer: campaign at once; the leader steps down for you.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// The sender's ballot: the campaign goes above it.
    pub ballot: Ballot,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientErrorKind {
    /// The value is larger than [`crate::MAX_VALUE_BYTES`].
    TooLarge,
    /// A later request of the same client was already decided; this one never will be.
    Stale,
    /// The leader has too many requests queued; retry later.
    Busy,
}

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientError {
    /// The request number answered.
    pub seq: u64,
    /// Why.
    pub kind: ClientErrorKind,
}

/// Read the decided log of the receiving proposer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRead {
    /// Echoed in the reply so the client can match it.
    pub req: u64,
    /// The first slot wanted.
    pub from: Slot,
    /// At most this many entries (the reply also stops at the datagram limit).
    pub limit: u32,
    /// Linearizable: the leader confirms its leadership with a majority of
    /// acceptors first and answers with every entry decided before the read
    /// arrived (others redirect); false reads the receiver's own copy.
    #[serde(default)]
    pub linearizable: bool,
    /// The cookie this node gave the client's address, if it has one (see [`Cookie`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// One decided slot as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The slot.
    pub slot: Slot,
    /// The client's value; `None` for a no-op filler (or a retry that landed twice and counts once).
    pub value: Option<String>,
}

/// A page of the decided log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReply {
    /// The request answered.
    pub req: u64,
    /// Decided entries in slot order, without gaps, from the requested slot.
    pub entries: Vec<LogEntry>,
    /// The first slot the sender has not learned.
    pub decided: Slot,
    /// The first slot the sender still holds: retention deleted every one below.
    #[serde(default)]
    pub start: Slot,
    /// A linearizable read that this proposer cannot answer: the leader to ask, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
    /// True when the entries answer a linearizable read.
    #[serde(default)]
    pub linearizable: bool,
}

/// Ask a node for its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    /// Echoed in the reply.
    pub req: u64,
    /// The cookie this node gave the client's address, if it has one (see [`Cookie`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// The answer to a request whose answer would be larger than the request,
/// from an address the node has not validated (address validation, as DNS
/// cookies and QUIC do): the client sends the request again with this
/// cookie, which proves it receives at that address. A reply to an address
/// nobody proved is never larger than its request, so a forged source
/// address cannot turn a node into an amplifier. Clients that sign their
/// requests with a client key need no cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cookie {
    /// The request answered.
    pub req: u64,
    /// Put this in the request's `cookie` and send it again; valid for about two minutes.
    pub cookie: String,
}

/// A node's state, for operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// The request answered.
    pub req: u64,
    /// `leader`, `candidate`, `follower` or `acceptor`.
    pub role: String,
    /// True while the node is failed by SIGUSR1.
    pub failed: bool,
    /// The leader as far as this node knows.
    pub leader: Option<NodeId>,
    /// A proposer's current ballot; an acceptor's promised ballot.
    pub ballot: Ballot,
    /// The first slot the node does not know decided (the end of its decided prefix).
    pub decided: Slot,
    /// Peers heard from within the election timeout.
    pub peers_heard: Vec<Node>,
    /// Counters: datagrams dropped by reason, fsyncs, values decided...
    pub counters: BTreeMap<String, u64>,
    /// `up`, `rebuilding` (an acceptor that lost its state, copying the
    /// decided log), `joining` (waiting to be let in as a member); the
    /// runtime reports `failed` itself.
    #[serde(default)]
    pub state: String,
    /// The configuration epoch the node is in.
    #[serde(default)]
    pub epoch: u32,
    /// The release the node runs (`0.1.0`); the runtime fills it in.
    #[serde(default)]
    pub version: String,
    /// The git commit it was built from; the runtime fills it in.
    #[serde(default)]
    pub commit: String,
}
