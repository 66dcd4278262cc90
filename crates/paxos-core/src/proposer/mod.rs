//! The proposer: Multi-Paxos leader or follower, learner, and the clients' entry point.
//!
//! A proposer that the election names leader runs phase 1 once, for every
//! slot from its first undecided one, with a ballot of the current
//! configuration epoch whose round it persisted first. From the promises of a
//! quorum it adopts, per slot, the value of the highest ballot; it fills the
//! slots below the highest one seen with no-ops, and re-proposes all of
//! them. Then it runs phase 2 only: client values get consecutive slots, up
//! to `window` of them in flight, packed many per datagram, retransmitted on
//! tick until a quorum accepted them. A nack or a heartbeat with a higher
//! ballot ends its leadership.
//!
//! Membership changes go through the log as stop signs (Stoppable Paxos,
//! Lamport, Malkhi and Zhou, 2008; Vertical Paxos's idea of a configuration
//! per ballot epoch): the leader drains its window, proposes the new
//! [`paxos_proto::Config`] alone in the next slot, and once it is decided runs
//! phase 1 in the next epoch, from the next slot, with the new acceptors. See
//! `membership` for when a leader changes the configuration by itself.
//!
//! The role is one of three [`Phase`]s, each owning its state: a follower
//! has none of its own, a candidate its phase 1 ([`phase1::Phase1`]), a
//! leader its phase 2 ([`phase2::Phase2`]). The handlers live in one module
//! per concern:
//!
//! | module       | handles                                                          |
//! |--------------|------------------------------------------------------------------|
//! | `leadership` | the start-up probe, election steps, heartbeats, nacks, fencing   |
//! | `phase1`     | campaigning: prepares, promises, becoming leader                 |
//! | `phase2`     | proposing: the window of accepts, votes, retransmission          |
//! | `membership` | acceptors' incarnations, configuration changes, member requests  |
//! | `learning`   | what the learner applied, catch-up from proposers and acceptors  |
//! | `clients`    | proposals, retries, log reads                                    |
//!
//! Each handler first filters remote input (ignores what does not apply),
//! then asserts the proposer's own state, then acts.

mod clients;
mod leadership;
mod learning;
mod membership;
mod phase1;
mod phase2;
mod state;

/// Mixed into a proposer's incarnation to seed its catch-up nonces (its probe nonces use the incarnation itself).
const NONCE_SALT: u64 = 0x6361_7463_6875_7021;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use paxos_proto::{Ballot, ClientId, Command, Config, Member, Message, Node, NodeId, Slot, StatusReply};
use tracing::{info, warn};

use crate::election::Election;
use crate::scrub::Scrub;
use crate::{
    round_ceiling, Applied, Defects, FastMap, Ignored, Learner, LogPage, ProposerOp, ProposerState, Ready, Tick,
    CLOCK_SKEW_SECS,
};

use membership::{Joining, Waiting};
use phase1::Phase1;
use phase2::Phase2;

pub use leadership::NOT_THE_LEADER;
pub use membership::REBUILD_SLACK_SLOTS;

/// The most decided entries one catch-up request asks a peer for.
pub const CATCH_UP_LIMIT: u32 = 1024;

/// A catch-up request asked of the same node from the same slot this many
/// times in a row without an answer goes to the next node ahead of us once.
pub const CATCH_UP_SWITCH_AFTER: u32 = 3;

/// How far past the acceptors' clocks a command may be stamped (see
/// `Proposer::stamp`): two skews, as their clocks may differ from a right
/// one by one and their answers are up to two heartbeats old.
pub const STAMP_SLACK_MS: u64 = 2 * paxos_proto::MAX_CLOCK_SKEW_MS;

/// The session lifetime of a cluster whose file names none: an hour.
pub const DEFAULT_SESSION_LIFETIME_MS: u64 = 3_600_000;

/// A client's request waits in a proposer's queue for at most this part of the
/// session lifetime after a copy of it last arrived; then it is dropped
/// (counted as `requests_stale`), and the client's next retry, if any, queues
/// it again.
///
/// Why: every landing of a request is then proposed no later than this after
/// some copy of it arrived. A client sends copies for at most half the
/// lifetime (docs/PROTOCOL.md), so every landing falls within less than the
/// lifetime of the first one (whose stamp opened the session), and the
/// session still answers for it: it lands once.
/// Without the bound, a proposer that queued a request while cut off could
/// propose it an hour later, after the session expired, and it would land twice.
pub const QUEUE_AGE_DIVISOR: u64 = 4;

/// Reads of the decided log a proposer serves at once; more requests are dropped (clients retry).
const MAX_PENDING_READS: usize = 256;

/// How a proposer is set up. Times count ticks of the caller's clock.
#[derive(Clone, Debug)]
pub struct ProposerConfig {
    /// This proposer.
    pub id: NodeId,
    /// The cluster file's configuration (epoch 0): the initial members.
    pub genesis: Config,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: u64,
    /// Ticks without a heartbeat after which a peer counts as down.
    pub election_timeout_ticks: u64,
    /// Ticks after which an unanswered prepare or accept is sent again.
    pub retransmit_ticks: u64,
    /// Slots in flight at once.
    pub window: usize,
    /// Client values waiting for a slot; above this, clients are told to retry.
    pub max_queue: usize,
    /// Bytes of client values waiting for a slot, at most (then clients are told to retry).
    pub max_queue_bytes: usize,
    /// Bytes of values in flight, at most (besides `window`): memory stays
    /// bounded whatever the values' sizes.
    pub max_inflight_bytes: usize,
    /// A number that differs between starts of this proposer (the runtime draws
    /// it at random): it tells this start's probe answers from late ones.
    pub incarnation: u64,
    /// Keep the newest this many decided slots; 0 keeps everything.
    pub retain_slots: u64,
    /// Milliseconds per tick of the caller's clock (how far a bound on
    /// stamps moves on while no fresh answers renew it).
    pub tick_ms: u64,
}

impl ProposerConfig {
    /// Defaults for a 10 ms tick: heartbeat 100 ms, election timeout 500 ms,
    /// retransmit 30 ms; a genesis configuration of these ids, without addresses.
    pub fn new(id: NodeId, proposers: Vec<NodeId>, acceptors: Vec<NodeId>) -> Self {
        let member = |id: NodeId| Member { id, addr: String::new(), incarnation: None };
        let genesis = Config {
            epoch: 0,
            acceptors: acceptors.into_iter().map(member).collect(),
            proposers: proposers.into_iter().map(member).collect(),
            session_lifetime_ms: DEFAULT_SESSION_LIFETIME_MS,
        };
        ProposerConfig::with_genesis(id, genesis)
    }

    /// Defaults for a 10 ms tick, with this genesis configuration.
    pub fn with_genesis(id: NodeId, genesis: Config) -> Self {
        ProposerConfig {
            id,
            genesis,
            heartbeat_ticks: 10,
            election_timeout_ticks: 50,
            retransmit_ticks: 3,
            window: 4096,
            max_queue: 65_536,
            max_queue_bytes: 16 << 20,
            max_inflight_bytes: 8 << 20,
            incarnation: 0,
            retain_slots: 0,
            tick_ms: 10,
        }
    }
}

/// Why a candidate goes on campaigning although a live proposer of a higher
/// id would lead by the election's rule: leadership is being kept, not won.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kept {
    /// The leader handed leadership over to us (a transfer).
    HandedOver,
    /// We led the epoch before and lead on into the one its stop sign
    /// started: a live leader is not preempted at a configuration change.
    NextEpoch,
}

/// What a proposer is doing, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Another proposer leads (or none is known); clients are redirected.
    Follower,
    /// Running phase 1.
    Candidate,
    /// Phase 1 done: proposing in phase 2.
    Leader,
}

impl Leadership {
    /// The name operators see.
    pub fn name(self) -> &'static str {
        match self {
            Leadership::Follower => "follower",
            Leadership::Candidate => "candidate",
            Leadership::Leader => "leader",
        }
    }
}

/// What a proposer is doing, with the state only that phase has.
#[derive(Debug)]
enum Phase {
    /// Another proposer leads, or none is known.
    Follower,
    /// Running phase 1 with `Proposer::ballot`.
    Candidate(Phase1),
    /// Phase 1 done with `Proposer::ballot`: proposing in phase 2.
    Leader(Phase2),
}

impl Phase {
    fn leadership(&self) -> Leadership {
        match self {
            Phase::Follower => Leadership::Follower,
            Phase::Candidate(_) => Leadership::Candidate,
            Phase::Leader(_) => Leadership::Leader,
        }
    }
}

/// What a proposer knows of a peer proposer.
#[derive(Clone, Copy, Debug, Default)]
struct PeerInfo {
    decided: Slot,
    /// It said a read of its decided log failed (see [`Proposer::damaged`]).
    damaged: bool,
}

/// What a proposer knows of an acceptor, from its probe replies and promises.
#[derive(Clone, Copy, Debug, Default)]
struct AcceptorInfo {
    /// When it last answered.
    heard: Option<Tick>,
    /// Its incarnation, as it last reported it, and the probe round of that report.
    incarnation: Option<(u64, u64)>,
    /// Its decided prefix, as it last reported it.
    decided: Slot,
    /// It said it may not vote (it waits to be let in).
    joining: bool,
    /// The leader its last probe answer named (none: no lease), and that
    /// answer's probe round: what the pre-vote counts.
    named: Option<(Option<NodeId>, u64)>,
    /// The challenge of its last answer, which our next probe as leader echoes.
    challenge: u64,
    /// Its wall clock in its last answer that carried one (Unix ms), and that answer's probe round.
    clock: Option<(u64, u64)>,
    /// The ballot it promised us (our current one), as which incarnation,
    /// and the probe round last sent when the promise arrived: any answer
    /// to a later round must report a promise at least that high.
    promised_us: Option<(Ballot, u64, u64)>,
    /// The most its answers said it had written, per start of it (its
    /// latest [`paxos_proto::MAX_WRITTEN`]): our probes send them back.
    written: [Option<paxos_proto::Written>; paxos_proto::MAX_WRITTEN],
}

impl AcceptorInfo {
    /// What it said it had written, to send back (see [`Proposer::heard_written`]).
    fn wrote(&self) -> Vec<paxos_proto::Written> {
        self.written.iter().flatten().copied().collect()
    }

    /// What acceptor `a` of `acceptors` said it had written (none if it is unknown): a free
    /// function, so that it borrows the map alone while the phase is borrowed too.
    fn wrote_by(acceptors: &BTreeMap<NodeId, AcceptorInfo>, a: NodeId) -> Vec<paxos_proto::Written> {
        acceptors.get(&a).map(AcceptorInfo::wrote).unwrap_or_default()
    }

    /// The two of them that say the most, of its incarnation as it last
    /// answered first, for our heartbeats: a peer that campaigns after us
    /// sends them back (all of them for every acceptor would take a
    /// heartbeat past one packet).
    fn strongest(&self) -> impl Iterator<Item = paxos_proto::Written> {
        let current = self.incarnation.map(|(i, _)| i);
        let mut all = self.wrote();
        all.sort_unstable_by_key(|w| std::cmp::Reverse((Some(w.incarnation) == current, w.ops)));
        all.into_iter().take(2)
    }
}

/// Client commands this proposer holds for a slot, and who waits for what.
#[derive(Debug, Default)]
struct Clients {
    /// Client commands waiting for a slot.
    queue: VecDeque<Command>,
    /// The bytes of their data.
    queue_bytes: usize,
    /// Per client, the highest request queued or in flight here.
    proposed: FastMap<ClientId, Asked>,
    /// Per client, the request it waits on us for.
    waiting: BTreeMap<ClientId, u64>,
    /// Requests dropped from the queue for their age ([`QUEUE_AGE_DIVISOR`]).
    stale: u64,
}

/// A client's request queued or in flight here.
#[derive(Clone, Copy, Debug, Default)]
struct Asked {
    /// Its sequence number.
    seq: u64,
    /// When a copy of it last arrived, by our clock in milliseconds: a queued
    /// request is dropped once that is more than the session lifetime /
    /// [`QUEUE_AGE_DIVISOR`] ago.
    heard_ms: u64,
}

/// Who a read of the decided log is for.
#[derive(Clone, Debug)]
enum ReadFor {
    /// A client's `LogRead`.
    Client { client: ClientId, req: u64, limit: u32, linearizable: bool },
    /// A peer's (or an acceptor's) `CatchUp`: who, its nonce, the first slot read.
    Peer(Node, u64, Slot),
    /// A page of our own pass over the log ([`crate::scrub`]).
    Scrub,
}

/// A Multi-Paxos proposer, learner and client front end.
#[derive(Debug)]
pub struct Proposer {
    cfg: ProposerConfig,
    now: Tick,
    /// The wall clock, in milliseconds since the Unix epoch (0 until set): stamps commands.
    clock_ms: u64,
    election: Election,
    learner: Learner,
    /// What the learner applied, being handled; its room is kept ([`Learner::swap_applied`]).
    applied: Vec<Applied>,
    phase: Phase,
    /// Our ballot while candidate or leader; the last one we used otherwise.
    ballot: Ballot,
    /// The highest round seen anywhere or used; a new ballot goes above it.
    max_round: u64,
    /// The highest configuration epoch seen in any ballot or report: above
    /// the learner's, we are behind and catch up before we campaign.
    max_epoch: u32,
    /// When a ballot or report last named an epoch above the learner's. The
    /// wait to catch up ends an election timeout after it: the nodes that
    /// decided that epoch may all have lost their disks (then only a
    /// campaign recovers its configuration), or a hostile member named it.
    later_epoch_seen: Tick,
    clients: Clients,
    peers: BTreeMap<NodeId, PeerInfo>,
    /// The proposer that last claimed leadership by heartbeat, with its ballot.
    leader_hint: Option<(NodeId, Ballot)>,
    acceptors: BTreeMap<NodeId, AcceptorInfo>,
    /// The acceptors in force that a leader sends only retransmissions and
    /// probes to (see [`Proposer::accept_targets`]), as last logged.
    unheard: BTreeSet<NodeId>,
    /// No campaign before this tick (back-off after being preempted).
    campaign_after: Tick,
    /// No catch-up request before this tick.
    catch_up_after: Tick,
    /// Until this start's first campaign: the acceptors that answered its
    /// start-up probe, with the incarnation each answered as (see
    /// [`Proposer::probed`]).
    probe: Option<BTreeMap<NodeId, u64>>,
    /// A leader probes every acceptor each heartbeat: the round, part of each
    /// probe's nonce. Linearizable reads and member requests start rounds of
    /// their own between heartbeats.
    probe_round: u64,
    /// The round the last heartbeat started, and the one the heartbeat before
    /// it started: answers to rounds from the latter on are fresh (see
    /// [`Proposer::fresh`]), however many rounds started in between. Counted
    /// in rounds instead, a stream of reads would make every answer stale.
    heartbeat_round: u64,
    fresh_from: u64,
    /// The probe round sent to every acceptor in this step (since the last
    /// `take_ready`), if one was: [`Proposer::probe_now`] reuses it.
    step_round: Option<u64>,
    /// The probe round of the last pre-vote sent (one per round), and how many were sent.
    prevote_round: Option<u64>,
    prevotes: u64,
    /// Acceptors seen to have lost writes they had synced (a promise gone
    /// backwards as the same incarnation): see [`Proposer::on_probe_reply`].
    acceptor_writes_lost: u64,
    /// Since when, as the rightful leader, this proposer has heard fewer
    /// acceptors than a quorum, and how many it last said it hears (see
    /// [`Proposer::explain_no_campaign`]).
    short_of_quorum: Option<(Tick, Option<usize>)>,
    /// True while this proposer's clock runs so far ahead of the acceptors'
    /// that commands are stamped with theirs (see [`Proposer::stamp`]).
    stamps_bounded: bool,
    /// The latest a command could be stamped when last worked out from fresh
    /// answers, and the tick then (see [`Proposer::refresh_stamp_bound`]).
    stamp_ref: Option<(u64, Tick)>,
    /// A quorum answered, too few with a clock to bound stamps (acceptors of
    /// an earlier release): commands are stamped by this proposer's clock alone.
    clockless: bool,
    /// No round above this by our own clock; no limit until the clock is set.
    round_ceiling: u64,
    /// How far above `round_ceiling` others' rounds may go (their clocks may run ahead).
    round_slack: u64,
    /// Nodes being added: probed until they caught up, then let in.
    joining: Joining,
    /// Operators' member requests waiting for their change.
    member_ops: Vec<Waiting>,
    /// The last answer this leader gave each operator's client about a
    /// change (at most [`membership::MAX_ANSWERED_CLIENTS`]): a late copy of
    /// an answered request gets the same answer, an older one none.
    member_answers: BTreeMap<ClientId, paxos_proto::MemberReply>,
    /// Linearizable reads waiting for a quorum to confirm our leadership.
    confirming: Vec<clients::Confirming>,
    /// Why our campaign goes on although a live proposer of a higher id
    /// would lead by the election's rule (`None`: it does not).
    kept: Option<Kept>,
    /// The configuration epoch we last followed (see `learning::new_epoch`).
    known_epoch: u32,
    /// Somewhere to catch up from: a node that said it decided more than we have.
    ahead: Option<(Node, Slot)>,
    /// The last catch-up request: whom we asked, from which slot.
    asked: Option<(Node, Slot, u64)>,
    /// How many times in a row that request went out unanswered (see `learning::catch_up`).
    asked_times: u32,
    /// The nodes that left a catch-up from this slot unanswered
    /// [`CATCH_UP_SWITCH_AFTER`] times in a row, passed until every
    /// candidate was (see `learning::catch_up`).
    passed: (Slot, Vec<Node>),
    /// Catch-up requests and copies of a peer's state started (the counter of their nonces).
    requests: u64,
    /// Per client, how many times a proposer the configuration removed sent
    /// it to a member (see `clients::member_to_ask`); cleared when full.
    members_named: HashMap<ClientId, u64>,
    /// A peer's state being copied, to restart our log later (retention).
    copying: Option<crate::restart::Copy>,
    /// Our state, frozen for a peer that copies it.
    frozen: Vec<crate::restart::Frozen>,
    /// Reads of the decided log in flight.
    reads: HashMap<u64, ReadFor>,
    /// A read of our decided log failed (a damaged segment, or an I/O error
    /// that may pass): peers and acceptors behind cannot catch up from us,
    /// so we do not lead while a live peer whose log can be read would (see
    /// `leadership::step_aside`). Until a later pass reads the whole log
    /// while no read fails ([`crate::scrub`]): damage stays until the
    /// operator moves the data dir away, and so does the mark.
    damaged: bool,
    /// When, leading with a damaged log, we last handed leadership over.
    stepped_aside: Option<Tick>,
    /// Our passes over the decided log, after start and again each
    /// [`crate::SCRUB_AGAIN_TICKS`]: they find damage before a client or a
    /// peer reads through it.
    scrub: Scrub,
    next_read: u64,
    ready: Ready<ProposerOp>,
    defects: Defects,
}

impl Proposer {
    /// A proposer with state recovered from its store.
    ///
    /// # Panics
    /// If the genesis configuration has no acceptor or more than 64.
    pub fn new(cfg: ProposerConfig, state: ProposerState) -> Self {
        assert!(!cfg.genesis.acceptors.is_empty() && cfg.genesis.acceptors.len() <= 64, "1 to 64 acceptors");
        assert!(cfg.retransmit_ticks > 0 && cfg.heartbeat_ticks > 0 && cfg.window > 0);
        let election = Election::new(cfg.id, cfg.election_timeout_ticks, Tick::ZERO);
        let learner = Learner::new(cfg.genesis.clone(), state.log);
        let scrub = Scrub::new(learner.state().start, learner.decided());
        let mut proposer = Proposer {
            now: Tick::ZERO,
            clock_ms: 0,
            election,
            max_epoch: learner.epoch_number(),
            later_epoch_seen: Tick::ZERO,
            learner,
            applied: Vec::new(),
            phase: Phase::Follower,
            ballot: Ballot::new(state.round, cfg.id),
            max_round: state.round,
            clients: Clients::default(),
            peers: BTreeMap::new(),
            leader_hint: None,
            acceptors: BTreeMap::new(),
            unheard: BTreeSet::new(),
            campaign_after: Tick::ZERO,
            catch_up_after: Tick::ZERO,
            probe: Some(BTreeMap::new()),
            probe_round: 0,
            heartbeat_round: 0,
            fresh_from: 0,
            step_round: None,
            prevote_round: None,
            prevotes: 0,
            acceptor_writes_lost: 0,
            short_of_quorum: None,
            stamps_bounded: false,
            stamp_ref: None,
            clockless: false,
            round_ceiling: u64::MAX,
            round_slack: 0,
            joining: Joining::default(),
            member_ops: Vec::new(),
            member_answers: BTreeMap::new(),
            confirming: Vec::new(),
            kept: None,
            known_epoch: 0,
            ahead: None,
            asked: None,
            asked_times: 0,
            passed: (Slot(0), Vec::new()),
            requests: 0,
            members_named: HashMap::new(),
            copying: None,
            frozen: Vec::new(),
            reads: HashMap::new(),
            next_read: 0,
            damaged: false,
            stepped_aside: None,
            scrub,
            ready: Ready::default(),
            defects: Defects::default(),
            cfg,
        };
        proposer.known_epoch = proposer.learner.epoch_number();
        proposer.config_changed();
        proposer
    }

    /// The same proposer with its pass over the decided log already over,
    /// and no next one: for tests that count every read.
    #[cfg(test)]
    pub(crate) fn scrubbed(mut self) -> Self {
        self.scrub.stop();
        self
    }

    /// The same proposer with `ticks` from the end of a pass over its decided
    /// log to the next ([`crate::SCRUB_AGAIN_TICKS`] unless set; 0: none).
    pub fn with_scrub_again_after(mut self, ticks: u64) -> Self {
        self.scrub.again_after(ticks);
        self
    }

    /// The same proposer with `ticks` from a failed read of its decided log
    /// to the pass that reads it again ([`crate::SCRUB_RETRY_TICKS`] unless
    /// set; 0: none), doubling while passes keep failing.
    pub fn with_scrub_retry_after(mut self, ticks: u64) -> Self {
        self.scrub.retry_after(ticks);
        self
    }

    /// The same proposer with passes over its decided log that ask for at
    /// most `entries` a page ([`crate::SCRUB_PAGE_ENTRIES`] unless set): the
    /// simulator's logs are short, and its passes must page too.
    pub fn with_scrub_page_entries(mut self, entries: usize) -> Self {
        self.scrub.set_page_entries(entries);
        self
    }

    /// A read of our decided log failed, and no pass read all of it
    /// cleanly since (see the field).
    pub fn damaged(&self) -> bool {
        self.damaged
    }

    /// The same proposer with deliberate bugs, for the simulator's self-test.
    pub fn with_defects(mut self, defects: Defects) -> Self {
        self.defects = defects;
        self.learner.set_defects(&defects);
        self
    }

    /// This proposer's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// Its current role.
    pub fn role(&self) -> Leadership {
        self.phase.leadership()
    }

    /// Its current (or last) ballot.
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// Its learner: the decided prefix, sessions, configuration.
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// The configuration in force (the latest the log decided, or the cluster file's).
    pub fn config(&self) -> Config {
        self.learner.epoch().config.clone()
    }

    /// The configuration this proposer, as leader, is changing to (asked for or proposed), if any.
    pub fn changing_to(&self) -> Option<&Config> {
        match &self.phase {
            Phase::Leader(p2) => p2.changing_to.as_ref(),
            _ => None,
        }
    }

    /// True while this proposer is a member of the configuration in force.
    pub fn is_member(&self) -> bool {
        self.learner.epoch().config.proposers.iter().any(|p| p.id == self.cfg.id)
    }

    /// The proposer known to lead now: this one once its phase 1 is done,
    /// or a live peer whose last heartbeat said it leads. [`Proposer::leader`]
    /// also names a candidate or the proposer that should lead, where clients
    /// are sent; this is what monitoring asks (`/health`, `paxos_leader_id`).
    pub fn leading(&self) -> Option<NodeId> {
        match self.phase {
            Phase::Leader(_) => Some(self.cfg.id),
            Phase::Follower => match self.leader_hint {
                Some((p, _)) if p != self.cfg.id && self.election.alive(p, self.now) => Some(p),
                _ => None,
            },
            _ => None,
        }
    }

    /// The leader as far as this proposer knows.
    pub fn leader(&self) -> Option<NodeId> {
        if !matches!(self.phase, Phase::Follower) {
            return Some(self.cfg.id);
        }
        self.leading().or_else(|| {
            let rightful = self.rightful_leader();
            (rightful != self.cfg.id).then_some(rightful)
        })
    }

    /// A status report (the runtime fills in `req`, `failed` and counters).
    pub fn status(&self) -> StatusReply {
        let mut peers_heard: Vec<Node> = self.election.live_peers(self.now).map(Node::Proposer).collect();
        peers_heard.extend(self.acceptors.keys().filter(|a| self.heard_lately(**a)).map(|a| Node::Acceptor(*a)));
        let mut counters = BTreeMap::new();
        counters.insert("sessions".to_owned(), self.learner.state().sessions.len() as u64);
        counters.insert("sessions_evicted".to_owned(), self.learner.state().evicted);
        counters.insert("requests_stale".to_owned(), self.clients.stale);
        counters.insert("prevotes".to_owned(), self.prevotes);
        counters.insert("acceptor_writes_lost".to_owned(), self.acceptor_writes_lost);
        counters.insert("log_digests_compared".to_owned(), self.learner.digests().compared());
        // Not a count: the nodes whose log is known to differ from ours.
        counters.insert("log_diverged".to_owned(), self.learner.digests().diverged().len() as u64);
        StatusReply {
            req: 0,
            role: self.role().name().into(),
            failed: false,
            leader: self.leader(),
            ballot: self.ballot,
            decided: self.learner.decided(),
            peers_heard,
            counters,
            state: if self.is_member() { "up" } else { "joining" }.into(),
            epoch: self.learner.epoch_number(),
            version: String::new(),
            commit: String::new(),
        }
    }

    /// Handles one message.
    ///
    /// # Errors
    /// [`Ignored`] when the message is not for a proposer, or its sender may
    /// not send it; the state is then unchanged.
    pub fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        if self.round_too_far(&msg) && !self.defects.unbounded {
            return Err(Ignored("proposer: a round too far above any known"));
        }
        let result = match from {
            Node::Acceptor(a) => {
                let alive = !(self.defects.votes_only_alive && matches!(msg, Message::ProbeReply(_)));
                let result = match msg {
                    Message::Promise(m) => self.on_promise(a, m),
                    Message::Nack(m) => self.on_nack(a, m),
                    Message::ProbeReply(m) => self.on_probe_reply(a, m),
                    Message::Accepted(m) => self.on_accepted(a, m),
                    Message::CatchUp(m) => self.on_catch_up(from, m),
                    Message::CatchUpReply(m) => self.on_catch_up_reply(from, m),
                    Message::StateRequest(m) => self.on_state_request(from, m),
                    Message::StateReply(m) => self.on_state_reply(from, m),
                    _ => Err(Ignored("proposer: not a message an acceptor sends")),
                };
                // Only a message we accept from a known acceptor is a sign of life.
                if result.is_ok() && alive {
                    if let Some(info) = self.acceptors.get_mut(&a) {
                        info.heard = Some(self.now);
                    }
                }
                result
            }
            Node::Proposer(p) => {
                if p == self.cfg.id {
                    return Err(Ignored("proposer: a message from ourselves"));
                }
                let ballot_ok = match &msg {
                    Message::Heartbeat(m) => m.ballot.proposer == p,
                    Message::Accept(m) => m.ballot.proposer == p,
                    Message::TimeoutNow(m) => m.ballot.proposer == p,
                    Message::CatchUp(_)
                    | Message::CatchUpReply(_)
                    | Message::StateRequest(_)
                    | Message::StateReply(_) => true,
                    _ => return Err(Ignored("proposer: not a message a proposer sends")),
                };
                if !ballot_ok {
                    return Err(Ignored("proposer: a ballot of another proposer"));
                }
                // Only a well-formed message of a member is a sign of life, and
                // it counts before it is handled: a heartbeat of a better
                // proposer must find it alive when deciding whom to hand clients to.
                if self.peers.contains_key(&p) {
                    self.election.heard(p, self.now);
                }
                match msg {
                    Message::Heartbeat(m) => self.on_heartbeat(p, m),
                    Message::Accept(m) => self.on_accept_copy(p, m),
                    Message::CatchUp(m) => self.on_catch_up(from, m),
                    Message::CatchUpReply(m) => self.on_catch_up_reply(from, m),
                    Message::TimeoutNow(m) => self.on_timeout_now(p, m),
                    Message::StateRequest(m) => self.on_state_request(from, m),
                    Message::StateReply(m) => self.on_state_reply(from, m),
                    _ => unreachable!("filtered above"),
                }
            }
            Node::Client(c) => match msg {
                Message::ClientPropose(m) => self.on_client_propose(c, m),
                Message::LogRead(m) => self.on_log_read(c, m),
                Message::MemberRequest(m) => self.on_member_request(c, m),
                Message::RestoreRequest(m) => self.on_restore(c, m),
                Message::TransferRequest(m) => self.on_transfer_request(c, m),
                _ => Err(Ignored("proposer: not a message a client sends")),
            },
        };
        self.after_learning();
        result
    }

    /// Advances the clock by one tick: heartbeats, election, retransmission, catch-up.
    pub fn tick(&mut self) {
        self.now = self.now.next();
        if self.now.every(self.cfg.heartbeat_ticks) {
            self.send_heartbeats();
            // Answers older than two heartbeats no longer count.
            self.refresh_stamp_bound();
        }
        self.step_election();
        self.note_unheard();
        self.retransmit();
        self.copy_state();
        self.catch_up();
        self.reconfigure();
        self.scrub();
        self.after_learning();
    }

    /// The next page of the pass over our decided log, if one is due.
    fn scrub(&mut self) {
        if self.defects.no_scrub {
            return;
        }
        let log = (!self.defects.scrub_once).then(|| (self.learner.state().start, self.learner.decided()));
        if let Some(from) = self.scrub.due(self.now, log) {
            let limit = u32::try_from(self.scrub.page_entries()).unwrap_or(u32::MAX);
            if self.read(from, limit, ReadFor::Scrub).is_err() {
                self.scrub.not_asked();
            }
        }
    }

    /// Takes what was produced since the last call, first packing queued client
    /// values into accepts (so that values that arrived together share datagrams).
    pub fn take_ready(&mut self) -> Ready<ProposerOp> {
        self.propose_queued();
        self.step_round = None;
        std::mem::take(&mut self.ready)
    }

    /// The wall clock, in Unix milliseconds, for the round ceiling, the
    /// stamps of commands and operators' deadlines. It never goes back while
    /// this proposer runs (a clock stepped back stands still until it
    /// catches up): a deadline once passed stays passed, which the fence of
    /// a change given up relies on (`Phase2::fenced`).
    pub fn set_clock(&mut self, unix_ms: u64) {
        let unix_ms = unix_ms.max(self.clock_ms);
        let unix_secs = unix_ms / 1000;
        self.round_ceiling = round_ceiling(unix_secs);
        self.round_slack = round_ceiling(unix_secs.saturating_add(CLOCK_SKEW_SECS)) - self.round_ceiling;
        self.clock_ms = unix_ms;
    }

    /// The wall clock as this proposer last set it (see [`Proposer::set_clock`]).
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// The members of the configuration in force, and nodes being added.
    pub fn members(&self) -> Vec<(Node, String)> {
        let mut members = crate::role::addresses(&self.learner.epoch().config);
        members.extend(self.joining.addresses());
        members
    }

    /// The acceptors of the configuration in force.
    fn acceptor_ids(&self) -> Vec<NodeId> {
        self.learner.epoch().config.acceptors.iter().map(|m| m.id).collect()
    }

    /// True when acceptor `a` answered within an election timeout.
    fn heard_lately(&self, a: NodeId) -> bool {
        self.acceptors
            .get(&a)
            .and_then(|i| i.heard)
            .is_some_and(|t| self.now.since(t) < self.cfg.election_timeout_ticks)
    }

    /// The acceptors a leader's accepts go to when they are first sent: those
    /// heard within an election timeout, or every acceptor in force while
    /// fewer than a quorum were. The others still get the retransmissions of
    /// slots left undecided and the probe of every heartbeat, and one that
    /// answers is sent to again; meanwhile a dead acceptor costs the leader
    /// no datagram, MAC or copy per batch.
    fn accept_targets(&self) -> Vec<NodeId> {
        let all = self.acceptor_ids();
        let heard: Vec<NodeId> = all.iter().copied().filter(|a| self.heard_lately(*a)).collect();
        if heard.len() >= self.quorum() {
            heard
        } else {
            all
        }
    }

    /// Logs the acceptors that a leader stops sending new accepts to, or starts again.
    fn note_unheard(&mut self) {
        let leading = matches!(self.phase, Phase::Leader(_));
        let in_force = self.acceptor_ids();
        let unheard: BTreeSet<NodeId> = if leading {
            let targets = self.accept_targets();
            in_force.iter().copied().filter(|a| !targets.contains(a)).collect()
        } else {
            BTreeSet::new()
        };
        if unheard == self.unheard {
            return;
        }
        let me = Node::Proposer(self.cfg.id);
        for a in unheard.difference(&self.unheard) {
            info!(node = %me, acceptor = a.0, "acceptor not heard within an election timeout; it gets only retransmissions and probes");
        }
        for a in self.unheard.difference(&unheard).filter(|a| leading && in_force.contains(a)) {
            info!(node = %me, acceptor = a.0, "acceptor heard again; accepts go to it again");
        }
        self.unheard = unheard;
    }

    /// The quorum of the configuration in force, as this proposer counts it.
    pub fn quorum(&self) -> usize {
        let epoch = self.learner.epoch();
        let n = epoch.config.acceptors.len();
        if self.defects.minority_quorum {
            (n / 2).max(1)
        } else {
            crate::quorum(epoch.config.epoch, n)
        }
    }

    /// The configuration in force changed (or the proposer started): peers,
    /// the election, what we know of acceptors follow it.
    fn config_changed(&mut self) {
        let config = self.config();
        let proposers: BTreeSet<NodeId> = config.proposers.iter().map(|p| p.id).filter(|p| *p != self.cfg.id).collect();
        self.peers.retain(|p, _| proposers.contains(p));
        for p in &proposers {
            self.peers.entry(*p).or_default();
        }
        self.election.retain(|p| proposers.contains(&p));
        for a in &config.acceptors {
            self.acceptors.entry(a.id).or_default();
        }
        let keep: BTreeSet<NodeId> = config.acceptors.iter().map(|m| m.id).chain(self.joining.ids()).collect();
        self.acceptors.retain(|a, _| keep.contains(a));
        self.max_epoch = self.max_epoch.max(config.epoch);
    }

    /// True when `msg` names a ballot whose round is above the ceiling of
    /// the clock ([`round_ceiling`], with room for other clocks to run
    /// ahead): a broken or hostile sender, whose message must not move our
    /// rounds at all.
    fn round_too_far(&self, msg: &Message) -> bool {
        let ceiling = self.round_ceiling.saturating_add(self.round_slack);
        let far = |b: &Ballot| b.round > ceiling;
        match msg {
            Message::Promise(m) => far(&m.ballot),
            Message::Nack(m) => far(&m.ballot) || far(&m.promised),
            Message::ProbeReply(m) => far(&m.promised),
            Message::Accepted(m) => far(&m.ballot),
            Message::Heartbeat(m) => far(&m.ballot),
            Message::Accept(m) => far(&m.ballot),
            Message::TimeoutNow(m) => far(&m.ballot),
            _ => false,
        }
    }

    /// A ballot seen anywhere: new ballots go above its round, and its epoch
    /// tells us whether the log decided configurations we have not learned.
    fn see_ballot(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
        self.see_epoch(ballot.epoch);
    }

    fn see_epoch(&mut self, epoch: u32) {
        // A hostile member's epoch only makes us catch up before campaigning; bound it anyway.
        let ours = self.learner.epoch_number();
        if epoch > ours && epoch <= ours.saturating_add(1 << 16) {
            self.max_epoch = self.max_epoch.max(epoch);
            self.later_epoch_seen = self.now;
        }
    }

    /// Resends what is still unanswered: the start-up probe, prepares, accepts.
    fn retransmit(&mut self) {
        let (now, every) = (self.now, self.cfg.retransmit_ticks);
        if now.0 % every == 1 % every {
            self.send_probe();
        }
        let ballot = self.ballot;
        let acceptors = self.acceptor_ids();
        let commit = self.learner.decided();
        match &mut self.phase {
            Phase::Follower => {}
            Phase::Candidate(p1) => {
                let known = &self.acceptors;
                p1.retransmit(now, every, ballot, |a| AcceptorInfo::wrote_by(known, a), &mut self.ready)
            }
            Phase::Leader(p2) => p2.retransmit(now, every, ballot, commit, &acceptors, &self.learner, &mut self.ready),
        }
    }

    /// Asks the runtime for a page of the decided log, for `purpose`.
    fn read(&mut self, from: Slot, limit: u32, purpose: ReadFor) -> Result<(), Ignored> {
        if self.reads.len() >= MAX_PENDING_READS {
            return Err(Ignored("proposer: too many reads in flight"));
        }
        let id = self.next_read;
        self.next_read += 1;
        self.reads.insert(id, purpose);
        let limit = limit.min(CATCH_UP_LIMIT) as usize;
        self.ready.reads.push(crate::ReadRequest { id, from, limit, max_bytes: crate::MAX_BATCH_BYTES });
        Ok(())
    }

    /// A page of the decided log that was read for someone.
    pub fn on_read(&mut self, id: u64, page: LogPage) {
        if self.defects.any_read_clears {
            self.damaged = false;
        }
        match self.reads.remove(&id) {
            Some(ReadFor::Client { client, req, limit, linearizable }) => {
                self.reply_log(client, req, limit, linearizable, page);
            }
            Some(ReadFor::Peer(to, nonce, _)) => self.reply_catch_up(to, nonce, page),
            Some(ReadFor::Scrub) => {
                let ended = self.scrub.on_page(&self.defects.scrub_page(page));
                let (me, sticks) = (Node::Proposer(self.cfg.id), self.defects.damage_sticks);
                crate::scrub::after_page(me, ended, &mut self.damaged, sticks, "we serve our log and may lead again");
            }
            None => {}
        }
    }

    /// A read for someone failed: no answer. A peer asks another node after
    /// its retries; a client's read times out (it may ask another proposer).
    /// Our decided log is damaged from now on (see [`Proposer::damaged`]):
    /// we do not lead while a peer that can serve its log would, until a
    /// later pass reads all of it cleanly.
    pub fn on_read_failed(&mut self, id: u64) {
        if !self.damaged && !self.defects.damaged_leads {
            self.damaged = true;
            warn!(
                node = %Node::Proposer(self.cfg.id),
                "a read of our decided log failed: we do not lead while a live peer whose log can be read would"
            );
        }
        let read = self.reads.remove(&id);
        if matches!(read, Some(ReadFor::Scrub)) {
            self.scrub.on_failed();
        } else {
            self.scrub.on_other_failed(self.now);
        }
        if let Some(ReadFor::Peer(to, nonce, from)) = read {
            if self.defects.failed_read_as_end {
                let start = self.learner.state().start;
                self.reply_catch_up(to, nonce, LogPage { start, from, entries: Vec::new() });
            }
        }
    }
}

impl crate::Role for Proposer {
    type State = ProposerState;

    fn me(&self) -> Node {
        Node::Proposer(self.cfg.id)
    }

    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        Proposer::handle(self, from, msg)
    }

    fn tick(&mut self) {
        Proposer::tick(self);
    }

    fn set_clock(&mut self, unix_ms: u64) {
        Proposer::set_clock(self, unix_ms);
    }

    fn take_ready(&mut self) -> Ready<ProposerOp> {
        Proposer::take_ready(self)
    }

    fn on_read(&mut self, id: u64, page: LogPage) {
        Proposer::on_read(self, id, page);
    }

    fn on_read_failed(&mut self, id: u64) {
        Proposer::on_read_failed(self, id);
    }

    fn damaged(&self) -> bool {
        Proposer::damaged(self)
    }

    fn divergence(&self) -> Option<String> {
        let diverged = self.learner.digests().diverged();
        let (node, d) = diverged.iter().next()?;
        let more = match diverged.len() {
            1 => String::new(),
            n => format!(" (and {} more nodes)", n - 1),
        };
        Some(format!(
            "the decided log of {node}{more} differs from ours at or before slot {} (digest {:016x}, ours {:016x})",
            d.slot.0, d.theirs, d.ours
        ))
    }

    fn status(&self) -> StatusReply {
        Proposer::status(self)
    }

    fn view(&self) -> Option<crate::View> {
        Some(crate::View { role: self.role().name(), leader: self.leader(), ballot: self.ballot })
    }

    fn leading(&self) -> Option<NodeId> {
        Proposer::leading(self)
    }

    fn members(&self) -> Vec<(Node, String)> {
        Proposer::members(self)
    }
}

#[cfg(test)]
mod tests;
