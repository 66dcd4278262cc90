//! The proposer: Multi-Paxos leader or follower, learner, and the clients' entry point.
//!
//! A proposer that the election names leader runs phase 1 once, for every
//! slot from its first undecided one, with a ballot whose round it persisted
//! first. From the promises of a majority it adopts, per slot, the value of the
//! highest ballot; it fills the slots below the highest one seen with no-ops,
//! and re-proposes all of them. Then it runs phase 2 only: client values get
//! consecutive slots, up to `window` of them in flight, packed many per
//! datagram, retransmitted on tick until a majority accepted them. A nack or a
//! heartbeat with a higher ballot ends its leadership.
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
//! | `learning`   | what the learner applied, catch-up between proposers             |
//! | `clients`    | proposals, retries, log reads                                    |
//!
//! Each handler first filters remote input (ignores what does not apply),
//! then asserts the proposer's own state, then acts.

mod clients;
mod leadership;
mod learning;
mod phase1;
mod phase2;

use std::collections::{BTreeMap, HashMap, VecDeque};

use paxos_proto::{Ballot, ClientId, Command, Message, Node, NodeId, StatusReply};

use crate::election::Election;
use crate::{
    majority, round_ceiling, Defects, Ignored, Learner, ProposerOp, ProposerState, Ready, Tick, CLOCK_SKEW_SECS,
};

use phase1::Phase1;
use phase2::Phase2;

/// The most decided entries one catch-up request asks a peer for.
pub const CATCH_UP_LIMIT: u32 = 1024;

/// How a proposer is set up. Times count ticks of the caller's clock.
#[derive(Clone, Debug)]
pub struct ProposerConfig {
    /// This proposer.
    pub id: NodeId,
    /// Every proposer of the cluster, this one included.
    pub proposers: Vec<NodeId>,
    /// Every acceptor of the cluster (at most 64).
    pub acceptors: Vec<NodeId>,
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
    /// A number that differs between starts of this proposer (the runtime draws
    /// it at random): it tells this start's probe answers from late ones.
    pub incarnation: u64,
}

impl ProposerConfig {
    /// Defaults for a 10 ms tick: heartbeat 100 ms, election timeout 500 ms, retransmit 30 ms.
    pub fn new(id: NodeId, proposers: Vec<NodeId>, acceptors: Vec<NodeId>) -> Self {
        ProposerConfig {
            id,
            proposers,
            acceptors,
            heartbeat_ticks: 10,
            election_timeout_ticks: 50,
            retransmit_ticks: 3,
            window: 4096,
            max_queue: 65_536,
            incarnation: 0,
        }
    }
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
    decided: paxos_proto::Slot,
}

/// Client commands this proposer holds for a slot, and who waits for what.
#[derive(Debug, Default)]
struct Clients {
    /// Client commands waiting for a slot.
    queue: VecDeque<Command>,
    /// Per client, the highest sequence number queued or in flight here.
    proposed: HashMap<ClientId, u64>,
    /// Per client, the request it waits on us for.
    waiting: BTreeMap<ClientId, u64>,
}

/// A Multi-Paxos proposer, learner and client front end.
#[derive(Debug)]
pub struct Proposer {
    cfg: ProposerConfig,
    quorum: usize,
    now: Tick,
    election: Election,
    learner: Learner,
    phase: Phase,
    /// Our ballot while candidate or leader; the last one we used otherwise.
    ballot: Ballot,
    /// The highest round seen anywhere or used; a new ballot goes above it.
    max_round: u64,
    clients: Clients,
    peers: BTreeMap<NodeId, PeerInfo>,
    /// The proposer that last claimed leadership by heartbeat, with its ballot.
    leader_hint: Option<(NodeId, Ballot)>,
    /// Per acceptor index, when it was last heard from.
    acceptor_heard: Vec<Option<Tick>>,
    /// No campaign before this tick (back-off after being preempted).
    campaign_after: Tick,
    /// No catch-up request before this tick.
    catch_up_after: Tick,
    /// Until a majority of acceptors answered the start-up probe: the ones that did (a bit per index).
    probe: Option<u64>,
    /// No round above this by our own clock; no limit until the clock is set.
    round_ceiling: u64,
    /// How far above `round_ceiling` others' rounds may go (their clocks may run ahead).
    round_slack: u64,
    ready: Ready<ProposerOp>,
    defects: Defects,
}

impl Proposer {
    /// A proposer with state recovered from its store.
    ///
    /// # Panics
    /// If the configuration does not name this proposer, or has no acceptor or more than 64.
    pub fn new(cfg: ProposerConfig, state: ProposerState) -> Self {
        assert!(cfg.proposers.contains(&cfg.id), "the proposer list names this proposer");
        assert!(!cfg.acceptors.is_empty() && cfg.acceptors.len() <= 64, "1 to 64 acceptors");
        assert!(cfg.retransmit_ticks > 0 && cfg.heartbeat_ticks > 0 && cfg.window > 0);
        let quorum = majority(cfg.acceptors.len());
        let election = Election::new(cfg.id, cfg.election_timeout_ticks, Tick::ZERO);
        let peers = cfg.proposers.iter().filter(|p| **p != cfg.id).map(|p| (*p, PeerInfo::default())).collect();
        let acceptor_heard = vec![None; cfg.acceptors.len()];
        Proposer {
            quorum,
            now: Tick::ZERO,
            election,
            learner: Learner::new(quorum, state.log),
            phase: Phase::Follower,
            ballot: Ballot::new(state.round, cfg.id),
            max_round: state.round,
            clients: Clients::default(),
            peers,
            leader_hint: None,
            acceptor_heard,
            campaign_after: Tick::ZERO,
            catch_up_after: Tick::ZERO,
            probe: Some(0),
            round_ceiling: u64::MAX,
            round_slack: 0,
            ready: Ready::default(),
            defects: Defects::default(),
            cfg,
        }
    }

    /// The same proposer with deliberate bugs, for the simulator's self-test.
    pub fn with_defects(mut self, defects: Defects) -> Self {
        self.defects = defects;
        if defects.minority_quorum {
            self.quorum = (self.cfg.acceptors.len() / 2).max(1);
            self.learner = Learner::new(self.quorum, self.learner.log().to_vec());
        }
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

    /// Its learner: the decided log.
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// The leader as far as this proposer knows.
    pub fn leader(&self) -> Option<NodeId> {
        if !matches!(self.phase, Phase::Follower) {
            return Some(self.cfg.id);
        }
        match self.leader_hint {
            Some((p, _)) if p != self.cfg.id && self.election.alive(p, self.now) => Some(p),
            _ => {
                let rightful = self.election.rightful_leader(self.now);
                (rightful != self.cfg.id).then_some(rightful)
            }
        }
    }

    /// A status report (the runtime fills in `req`, `failed` and counters).
    pub fn status(&self) -> StatusReply {
        let mut peers_heard: Vec<Node> = self.election.live_peers(self.now).map(Node::Proposer).collect();
        peers_heard.extend(
            self.cfg
                .acceptors
                .iter()
                .zip(&self.acceptor_heard)
                .filter(|(_, t)| t.is_some_and(|t| self.now.since(t) < self.cfg.election_timeout_ticks))
                .map(|(a, _)| Node::Acceptor(*a)),
        );
        StatusReply {
            req: 0,
            role: self.role().name().into(),
            failed: false,
            leader: self.leader(),
            ballot: self.ballot,
            decided: self.learner.decided(),
            peers_heard,
            counters: Default::default(),
        }
    }

    /// Handles one message.
    ///
    /// # Errors
    /// [`Ignored`] when the message is not for a proposer, or its sender is no
    /// member of the role it claims; the state is then unchanged.
    pub fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        if self.round_too_far(&msg) && !self.defects.unbounded {
            return Err(Ignored("proposer: a round too far above any known"));
        }
        let result = match from {
            Node::Acceptor(a) => {
                let idx = self.acceptor_index(a).ok_or(Ignored("proposer: unknown acceptor"))?;
                let result = match msg {
                    Message::Promise(m) => self.on_promise(idx, m),
                    Message::Nack(m) => self.on_nack(m),
                    Message::ProbeReply(m) => self.on_probe_reply(idx, m),
                    Message::Accepted(m) => self.on_accepted(idx, m),
                    _ => Err(Ignored("proposer: not a message an acceptor sends")),
                };
                // Only a message we accept is a sign of life.
                if result.is_ok() {
                    self.acceptor_heard[idx] = Some(self.now);
                }
                result
            }
            Node::Proposer(p) => {
                if p == self.cfg.id || !self.peers.contains_key(&p) {
                    return Err(Ignored("proposer: unknown proposer"));
                }
                // Only a well-formed message is a sign of life, and it counts
                // before it is handled: a heartbeat of a better proposer must
                // find it alive when deciding whom to hand clients to.
                let ballot_ok = match &msg {
                    Message::Heartbeat(m) => m.ballot.proposer == p,
                    Message::Accept(m) => m.ballot.proposer == p,
                    Message::CatchUp(_) | Message::CatchUpReply(_) => true,
                    _ => return Err(Ignored("proposer: not a message a proposer sends")),
                };
                if !ballot_ok {
                    return Err(Ignored("proposer: a ballot of another proposer"));
                }
                self.election.heard(p, self.now);
                match msg {
                    Message::Heartbeat(m) => self.on_heartbeat(p, m),
                    Message::Accept(m) => self.on_accept_copy(m),
                    Message::CatchUp(m) => self.on_catch_up(p, m),
                    Message::CatchUpReply(m) => self.on_catch_up_reply(p, m),
                    _ => unreachable!("filtered above"),
                }
            }
            Node::Client(c) => match msg {
                Message::ClientPropose(m) => self.on_client_propose(c, m),
                Message::LogRead(m) => self.on_log_read(c, m),
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
        }
        self.step_election();
        self.retransmit();
        self.catch_up();
        self.after_learning();
    }

    /// Takes what was produced since the last call, first packing queued client
    /// values into accepts (so that values that arrived together share datagrams).
    pub fn take_ready(&mut self) -> Ready<ProposerOp> {
        self.propose_queued();
        std::mem::take(&mut self.ready)
    }

    /// The wall clock, in Unix seconds, for the round ceiling.
    pub fn set_clock(&mut self, unix_secs: u64) {
        self.round_ceiling = round_ceiling(unix_secs);
        self.round_slack = round_ceiling(unix_secs.saturating_add(CLOCK_SKEW_SECS)) - self.round_ceiling;
    }

    fn acceptor_index(&self, a: NodeId) -> Option<usize> {
        self.cfg.acceptors.iter().position(|x| *x == a)
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
            _ => false,
        }
    }

    fn see_round(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
    }

    /// Resends what is still unanswered: the start-up probe, prepares, accepts.
    fn retransmit(&mut self) {
        let (now, every) = (self.now, self.cfg.retransmit_ticks);
        if now.0 % every == 1 % every {
            self.send_probe();
        }
        let (ballot, acceptors) = (self.ballot, &self.cfg.acceptors);
        match &mut self.phase {
            Phase::Follower => {}
            Phase::Candidate(p1) => p1.retransmit(now, every, ballot, acceptors, &mut self.ready),
            Phase::Leader(p2) => p2.retransmit(now, every, ballot, acceptors, &self.learner, &mut self.ready),
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

    fn set_clock(&mut self, unix_secs: u64) {
        Proposer::set_clock(self, unix_secs);
    }

    fn take_ready(&mut self) -> Ready<ProposerOp> {
        Proposer::take_ready(self)
    }

    fn status(&self) -> StatusReply {
        Proposer::status(self)
    }

    fn view(&self) -> Option<crate::View> {
        Some(crate::View { role: self.role().name(), leader: self.leader(), ballot: self.ballot })
    }
}

#[cfg(test)]
mod tests;
