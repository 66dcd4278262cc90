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

use std::collections::{BTreeMap, HashMap, VecDeque};

use paxos_proto::{
    Accept, AcceptEntry, Accepted, Ballot, CatchUp, CatchUpReply, ClientError, ClientErrorKind, ClientId,
    ClientPropose, ClientRedirect, ClientReply, Command, Heartbeat, LogRead, LogReply, Message, Nack, Node, NodeId,
    Prepare, Probe, ProbeReply, Promise, Slot, StatusReply, Trim, Value, MAX_VALUE_BYTES,
};
use tracing::{debug, info};

use crate::election::Election;
use crate::{majority, Defects, Ignored, Learner, ProposerOp, ProposerState, Ready, MAX_BATCH_BYTES};

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

/// What a proposer is doing.
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

/// One acceptor's answer to phase 1 so far.
#[derive(Clone, Copy, Debug)]
struct Page {
    /// The first slot of the page we expect next.
    next: Slot,
    /// The acceptor reported everything it accepted.
    done: bool,
}

#[derive(Debug)]
struct Phase1 {
    /// The first slot covered.
    start: Slot,
    /// Per acceptor index.
    pages: Vec<Page>,
    /// Per slot, the highest-ballot accepted value reported so far.
    adopted: BTreeMap<Slot, (Ballot, Value)>,
    /// The highest trim point reported: slots below are decided and forgotten by that acceptor.
    trimmed: Slot,
    /// When the prepares were last sent.
    sent: u64,
}

#[derive(Debug)]
struct InFlight {
    value: Value,
    /// When the accept was last sent.
    sent: u64,
}

#[derive(Debug)]
struct Phase2 {
    /// The next free slot.
    next: Slot,
    /// Slots proposed under our ballot and not yet applied.
    inflight: BTreeMap<Slot, InFlight>,
    /// Client values wait until the log is learned up to here (slots trimmed
    /// by acceptors must come from peers before we can deduplicate against them).
    serve_from: Slot,
    /// Slots phase 1 left to re-propose (adopted values and no-op fillers), in
    /// slot order; they enter the window before any client value.
    recovery: VecDeque<(Slot, Value)>,
}

/// What a proposer knows of a peer proposer.
#[derive(Clone, Copy, Debug, Default)]
struct PeerInfo {
    decided: Slot,
}

/// A Multi-Paxos proposer, learner and client front end.
#[derive(Debug)]
pub struct Proposer {
    cfg: ProposerConfig,
    quorum: usize,
    now: u64,
    election: Election,
    learner: Learner,
    role: Leadership,
    /// Our ballot while candidate or leader; the last one we used otherwise.
    ballot: Ballot,
    /// The highest round seen anywhere or used; a new ballot goes above it.
    max_round: u64,
    phase1: Option<Phase1>,
    phase2: Option<Phase2>,
    /// Client commands waiting for a slot.
    queue: VecDeque<Command>,
    /// Per client, the highest sequence number queued or in flight here.
    proposed: HashMap<ClientId, u64>,
    /// Per client, the request it waits on us for.
    waiting: BTreeMap<ClientId, u64>,
    peers: BTreeMap<NodeId, PeerInfo>,
    /// The proposer that last claimed leadership by heartbeat, with its ballot.
    leader_hint: Option<(NodeId, Ballot)>,
    /// Per acceptor index, the tick it was last heard from.
    acceptor_heard: Vec<Option<u64>>,
    /// No campaign before this tick (back-off after being preempted).
    campaign_after: u64,
    /// No catch-up request before this tick.
    catch_up_after: u64,
    /// Until a majority of acceptors answered the start-up probe: the ones that did (a bit per index).
    probe: Option<u64>,
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
        let election = Election::new(cfg.id, cfg.election_timeout_ticks, 0);
        let peers = cfg.proposers.iter().filter(|p| **p != cfg.id).map(|p| (*p, PeerInfo::default())).collect();
        let acceptor_heard = vec![None; cfg.acceptors.len()];
        Proposer {
            quorum,
            now: 0,
            election,
            learner: Learner::new(quorum, state.log),
            role: Leadership::Follower,
            ballot: Ballot::new(state.round, cfg.id),
            max_round: state.round,
            phase1: None,
            phase2: None,
            queue: VecDeque::new(),
            proposed: HashMap::new(),
            waiting: BTreeMap::new(),
            peers,
            leader_hint: None,
            acceptor_heard,
            campaign_after: 0,
            catch_up_after: 0,
            probe: Some(0),
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
        self.role
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
        if self.role != Leadership::Follower {
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
                .filter(|(_, t)| t.is_some_and(|t| self.now.saturating_sub(t) < self.cfg.election_timeout_ticks))
                .map(|(a, _)| Node::Acceptor(*a)),
        );
        StatusReply {
            req: 0,
            role: self.role.name().into(),
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
                    Message::CatchUpReply(m) => self.on_catch_up_reply(m),
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
        self.now += 1;
        if self.now.is_multiple_of(self.cfg.heartbeat_ticks) {
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

    fn acceptor_index(&self, a: NodeId) -> Option<usize> {
        self.cfg.acceptors.iter().position(|x| *x == a)
    }

    fn see_round(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
    }

    // ---- election -------------------------------------------------------

    fn step_election(&mut self) {
        let rightful = self.election.rightful_leader(self.now);
        match self.role {
            Leadership::Follower if rightful == self.cfg.id => {
                if self.election.may_campaign(self.now)
                    && self.now >= self.campaign_after
                    && self.probe.is_none()
                    && !self.far_behind()
                {
                    self.start_phase1();
                }
            }
            Leadership::Follower => {
                // We held client values expecting to lead; a better proposer showed up.
                if !self.queue.is_empty() || !self.waiting.is_empty() {
                    self.hand_over_clients();
                }
            }
            Leadership::Candidate if rightful != self.cfg.id => {
                info!(node = %self.cfg.id, ballot = %self.ballot, leader = %rightful, "a live proposer outranks us; stepping down");
                self.step_down();
            }
            // A leader keeps leading until a higher ballot fences it: a better
            // proposer that just came back takes over by campaigning, so the
            // cluster is never without a leader while it waits to be allowed to.
            Leadership::Candidate | Leadership::Leader => {}
        }
    }

    /// True while a live peer has learned much more than we have: we catch up
    /// from it before we campaign rather than re-propose what it knows.
    fn far_behind(&self) -> bool {
        let decided = self.learner.decided().0;
        let window = self.cfg.window as u64;
        self.peers.iter().any(|(p, info)| info.decided.0 > decided + window && self.election.alive(*p, self.now))
    }

    /// Ballots must be unique even if this proposer lost its data dir (only a
    /// majority of acceptors is trusted to keep theirs). So before its first
    /// campaign a proposer asks the acceptors what they promised and waits for
    /// a majority: a previous start's phase 1 reached a majority, so one of
    /// them names its round, and we campaign above it.
    fn send_probe(&mut self) {
        let Some(answered) = self.probe else { return };
        let probe = Probe { nonce: self.cfg.incarnation };
        for (i, a) in self.cfg.acceptors.iter().enumerate() {
            if answered & (1 << i) == 0 {
                self.ready.send(Node::Acceptor(*a), Message::Probe(probe.clone()));
            }
        }
    }

    fn on_probe_reply(&mut self, idx: usize, m: ProbeReply) -> Result<(), Ignored> {
        self.see_round(m.promised);
        if m.nonce != self.cfg.incarnation {
            return Ok(()); // an answer to an earlier start's probe
        }
        let Some(answered) = self.probe.as_mut() else { return Ok(()) };
        *answered |= 1 << idx;
        if answered.count_ones() as usize >= self.quorum {
            debug!(node = %self.cfg.id, round = self.max_round, "probe done");
            self.probe = None;
        }
        Ok(())
    }

    /// Phase 1a with a fresh ballot, persisted before any prepare leaves.
    fn start_phase1(&mut self) {
        // Rounds arrive bounded by MAX_COUNTER (the codec refuses more), so this cannot overflow.
        let round = self.max_round.checked_add(1).expect("rounds stay far below u64::MAX");
        self.max_round = round;
        self.ready.persist.push(ProposerOp::Round(round));
        self.ballot = Ballot::new(round, self.cfg.id);
        let start = self.learner.decided();
        let pages = vec![Page { next: start, done: false }; self.cfg.acceptors.len()];
        self.phase1 = Some(Phase1 { start, pages, adopted: BTreeMap::new(), trimmed: Slot(0), sent: self.now });
        self.phase2 = None;
        self.role = Leadership::Candidate;
        info!(node = %self.cfg.id, ballot = %self.ballot, slot = %start, "campaigning");
        for a in self.cfg.acceptors.clone() {
            self.ready.send(Node::Acceptor(a), Message::Prepare(Prepare { ballot: self.ballot, from: start }));
        }
    }

    /// Back to follower. Values in flight stay queued if we expect to lead again
    /// soon (preempted while still the rightful leader); otherwise their clients
    /// are sent to the leader.
    fn step_down(&mut self) {
        self.role = Leadership::Follower;
        self.leader_hint = self.leader_hint.filter(|(p, _)| *p != self.cfg.id);
        self.phase1 = None;
        let proposed: Vec<Value> = match self.phase2.take() {
            Some(p2) => {
                p2.inflight.into_values().map(|f| f.value).chain(p2.recovery.into_iter().map(|(_, v)| v)).collect()
            }
            None => Vec::new(),
        };
        if self.election.rightful_leader(self.now) == self.cfg.id {
            // In slot order, ahead of values that never had a slot.
            for value in proposed.into_iter().rev() {
                requeue(&self.learner, &mut self.queue, value);
            }
        } else {
            self.hand_over_clients();
        }
    }

    /// Sends every waiting client to the leader and forgets their requests.
    fn hand_over_clients(&mut self) {
        let leader = self.leader();
        for (client, seq) in std::mem::take(&mut self.waiting) {
            self.redirect(client, seq, leader);
        }
        self.queue.clear();
        self.proposed.clear();
    }

    fn on_nack(&mut self, m: Nack) -> Result<(), Ignored> {
        self.see_round(m.promised);
        if m.ballot == self.ballot && m.promised > self.ballot {
            self.fenced(m.promised, "an acceptor promised a higher ballot");
        }
        Ok(())
    }

    /// Ballots fence leadership: a candidate or leader that sees a higher
    /// ballot at work steps down, and waits a heartbeat before it may campaign
    /// again so that the other proposer's heartbeats can arrive first.
    fn fenced(&mut self, seen: Ballot, why: &'static str) {
        if self.role == Leadership::Follower || seen <= self.ballot {
            return;
        }
        info!(node = %self.cfg.id, ballot = %self.ballot, seen = %seen, why, "stepping down");
        self.step_down();
        self.campaign_after = self.now + self.cfg.heartbeat_ticks;
    }

    fn send_heartbeats(&mut self) {
        let hb = Heartbeat {
            ballot: self.ballot,
            leader: self.role == Leadership::Leader,
            decided: self.learner.decided(),
            known: self.learner.known(),
        };
        for p in self.peers.keys().copied().collect::<Vec<_>>() {
            self.ready.send(Node::Proposer(p), Message::Heartbeat(hb.clone()));
        }
        if self.role == Leadership::Leader {
            // Every proposer learned everything below the lowest decided point:
            // acceptors may forget it (the seed's garbage collection).
            let below = self.peers.values().map(|p| p.decided).chain([self.learner.decided()]).min();
            if let Some(below) = below.filter(|b| b.0 > 0) {
                for a in self.cfg.acceptors.clone() {
                    self.ready.send(Node::Acceptor(a), Message::Trim(Trim { below }));
                }
            }
        }
    }

    fn on_heartbeat(&mut self, from: NodeId, m: Heartbeat) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        let peer = self.peers.get_mut(&from).expect("checked member");
        peer.decided = peer.decided.max(m.decided);
        if m.leader && self.leader_hint.is_none_or(|(_, b)| m.ballot >= b) {
            self.leader_hint = Some((from, m.ballot));
        }
        // Any higher ballot fences us, not only a leader's: a peer that used it
        // may have got acceptors to promise it. Otherwise a leader that was cut
        // off (or failed) and comes back idle keeps a stale ballot forever, and
        // with no client traffic nothing would tell it: slots decided
        // meanwhile would stay unlearned.
        self.fenced(m.ballot, "a peer used a higher ballot");
        Ok(())
    }

    // ---- phase 1 --------------------------------------------------------

    fn on_promise(&mut self, idx: usize, m: Promise) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        if self.role != Leadership::Candidate || m.ballot != self.ballot {
            return Ok(());
        }
        let quorum = self.quorum;
        let last_wins = self.defects.adopt_from_last_promise;
        let p1 = self.phase1.as_mut().expect("a candidate has a phase 1");
        let page = &mut p1.pages[idx];
        if page.done || m.from != page.next {
            return Ok(()); // a duplicate or an old page
        }
        page.next = m.to;
        page.done = m.done;
        p1.trimmed = p1.trimmed.max(m.trimmed_below);
        if last_wins && m.from == p1.start {
            // Seed defect 2: only the promise that completes the quorum counts.
            p1.adopted.clear();
        }
        for e in m.entries {
            match p1.adopted.get(&e.slot) {
                Some((b, _)) if *b >= e.ballot && !last_wins => {}
                _ => {
                    p1.adopted.insert(e.slot, (e.ballot, e.value));
                }
            }
        }
        if !m.done {
            let prepare = Prepare { ballot: m.ballot, from: m.to };
            let to = Node::Acceptor(self.cfg.acceptors[idx]);
            self.ready.send(to, Message::Prepare(prepare));
            return Ok(());
        }
        if p1.pages.iter().filter(|p| p.done).count() >= quorum {
            self.become_leader();
        }
        Ok(())
    }

    /// Phase 1 is done: re-propose every adopted value, fill holes with no-ops.
    fn become_leader(&mut self) {
        let p1 = self.phase1.take().expect("a candidate has a phase 1");
        // Slots below an acceptor's trim point were learned by every proposer
        // and forgotten by that acceptor: we learn them from peers, never propose there.
        let first = p1.start.max(p1.trimmed);
        let next = p1.adopted.keys().next_back().map_or(first, |s| s.next()).max(self.learner.known()).max(first);
        let mut recovery = VecDeque::new();
        for slot in (first.0..next.0).map(Slot) {
            if self.learner.value(slot).is_some() {
                continue; // decided already: nothing left to choose
            }
            let value = p1.adopted.get(&slot).map_or(Value::Noop, |(_, v)| v.clone());
            if let Value::Command(c) = &value {
                let seq = self.proposed.entry(c.client).or_default();
                *seq = (*seq).max(c.seq);
            }
            recovery.push_back((slot, value));
        }
        // A queued command that phase 1 found accepted somewhere is already re-proposed.
        let adopted: std::collections::HashSet<(ClientId, u64)> = recovery
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Command(c) => Some((c.client, c.seq)),
                Value::Noop => None,
            })
            .collect();
        let learner = &self.learner;
        self.queue.retain(|c| !adopted.contains(&(c.client, c.seq)) && !learner.is_applied(c));
        info!(node = %self.cfg.id, ballot = %self.ballot, slot = %first, recovered = recovery.len(), "leading");
        self.role = Leadership::Leader;
        self.leader_hint = Some((self.cfg.id, self.ballot));
        self.phase2 = Some(Phase2 { next, inflight: BTreeMap::new(), serve_from: first, recovery });
        self.propose_queued();
    }

    // ---- phase 2 --------------------------------------------------------

    /// Fills the window: first the slots phase 1 left to re-propose, then
    /// queued client values in new slots; sends them in as few datagrams as fit.
    fn propose_queued(&mut self) {
        let Some(p2) = self.phase2.as_mut() else { return };
        let mut entries = Vec::new();
        while p2.inflight.len() < self.cfg.window {
            let (slot, value) = if let Some((slot, value)) = p2.recovery.pop_front() {
                if self.learner.value(slot).is_some() {
                    // Learned from a peer meanwhile, maybe with another value
                    // from a higher ballot: a client's value then needs a new slot.
                    requeue(&self.learner, &mut self.queue, value);
                    continue;
                }
                (slot, value)
            } else {
                if self.learner.decided() < p2.serve_from {
                    break;
                }
                let Some(cmd) = self.queue.pop_front() else { break };
                if self.learner.is_applied(&cmd) {
                    continue;
                }
                // Slots learned from peers while we led are taken: a leader with a
                // stale ballot must not wait on a slot that is already decided.
                let slot = p2.next.max(self.learner.known());
                p2.next = slot.next();
                (slot, Value::Command(cmd))
            };
            debug_assert!(!p2.inflight.contains_key(&slot), "one ballot proposes one value per slot");
            self.learner.observe_proposal(slot, self.ballot, value.clone());
            p2.inflight.insert(slot, InFlight { value: value.clone(), sent: self.now });
            entries.push(AcceptEntry { slot, value });
        }
        self.send_accepts(entries, true);
    }

    /// Sends `entries` to every acceptor (and a copy to peer proposers, which learn from it),
    /// as few datagrams as fit.
    ///
    /// Accepts leave early (`Ready::early`): they rest on no write of this
    /// proposer but its round, and that was durable before the prepares of
    /// this ballot left, i.e. before any promise made the ballot usable.
    fn send_accepts(&mut self, entries: Vec<AcceptEntry>, copy_to_peers: bool) {
        let targets: Vec<Node> = self
            .cfg
            .acceptors
            .iter()
            .map(|a| Node::Acceptor(*a))
            .chain(self.peers.keys().filter(|_| copy_to_peers).map(|p| Node::Proposer(*p)))
            .collect();
        for chunk in pack(entries) {
            let accept = Accept { ballot: self.ballot, entries: chunk };
            for to in &targets {
                self.ready.send_early(*to, Message::Accept(accept.clone()));
            }
        }
    }

    fn on_accepted(&mut self, idx: usize, m: Accepted) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        self.fenced(m.ballot, "an acceptor accepted a higher ballot");
        for slot in m.slots {
            self.learner.observe_accepted(idx, m.ballot, slot);
        }
        Ok(())
    }

    fn on_accept_copy(&mut self, m: Accept) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        self.fenced(m.ballot, "a peer proposes with a higher ballot");
        for e in m.entries {
            self.learner.observe_proposal(e.slot, m.ballot, e.value);
        }
        Ok(())
    }

    /// Resends prepares and accepts that are still unanswered.
    fn retransmit(&mut self) {
        let now = self.now;
        let every = self.cfg.retransmit_ticks;
        if now % every == 1 % every {
            self.send_probe();
        }
        if let Some(p1) = self.phase1.as_mut() {
            if now >= p1.sent + every {
                p1.sent = now;
                let ballot = self.ballot;
                for (a, page) in self.cfg.acceptors.iter().zip(&p1.pages) {
                    if !page.done {
                        let prepare = Prepare { ballot, from: page.next };
                        self.ready.send(Node::Acceptor(*a), Message::Prepare(prepare));
                    }
                }
            }
        }
        let Some(p2) = self.phase2.as_mut() else { return };
        let mut per_acceptor: Vec<Vec<AcceptEntry>> = vec![Vec::new(); self.cfg.acceptors.len()];
        for (slot, f) in p2.inflight.iter_mut() {
            if now < f.sent + every || self.learner.value(*slot).is_some() {
                continue;
            }
            f.sent = now;
            let votes = self.learner.votes(*slot, self.ballot);
            for (i, list) in per_acceptor.iter_mut().enumerate() {
                if votes & (1 << i) == 0 {
                    list.push(AcceptEntry { slot: *slot, value: f.value.clone() });
                }
            }
        }
        for (i, entries) in per_acceptor.into_iter().enumerate() {
            let to = Node::Acceptor(self.cfg.acceptors[i]);
            for chunk in pack(entries) {
                self.ready.send_early(to, Message::Accept(Accept { ballot: self.ballot, entries: chunk }));
            }
        }
    }

    // ---- learning -------------------------------------------------------

    /// Persists what the learner applied and answers the clients waiting for it.
    fn after_learning(&mut self) {
        for a in self.learner.take_applied() {
            if let Some(f) = self.phase2.as_mut().and_then(|p2| p2.inflight.remove(&a.slot)) {
                // Another ballot chose something else here (we led with a stale
                // ballot): our value still needs a slot.
                requeue(&self.learner, &mut self.queue, f.value);
            }
            if let Value::Command(c) = &a.value {
                if self.proposed.get(&c.client).is_some_and(|s| *s <= c.seq) {
                    self.proposed.remove(&c.client);
                }
                if self.waiting.get(&c.client) == Some(&c.seq) {
                    self.waiting.remove(&c.client);
                    self.answer_applied(c.client, c.seq);
                }
            }
            self.ready.persist.push(ProposerOp::Learn { slot: a.slot, value: a.value });
        }
    }

    /// Answers a request whose client already has a request applied. The
    /// answer rests on decided values only (durable at a majority of
    /// acceptors), not on this proposer's own log, so it need not wait for it.
    fn answer_applied(&mut self, client: ClientId, seq: u64) {
        let session = self.learner.session(client).expect("an applied command has a session");
        let msg = if session.seq == seq {
            Message::ClientReply(ClientReply { seq, slot: session.slot })
        } else {
            Message::ClientError(ClientError { seq, kind: ClientErrorKind::Stale })
        };
        self.ready.send_early(Node::Client(client), msg);
    }

    /// Asks a peer for decided slots we lack.
    fn catch_up(&mut self) {
        if self.now < self.catch_up_after {
            return;
        }
        let decided = self.learner.decided();
        let ahead = self
            .peers
            .iter()
            .filter(|(p, info)| info.decided > decided && self.election.alive(**p, self.now))
            .max_by_key(|(_, info)| info.decided)
            .map(|(p, _)| *p);
        let target = ahead.or_else(|| {
            // A hole below a decided slot that outlives a retransmission is worth asking about.
            let holed = self.learner.known() > decided && self.role == Leadership::Follower;
            holed.then(|| self.leader()).flatten().filter(|p| *p != self.cfg.id)
        });
        if let Some(p) = target {
            self.catch_up_after = self.now + self.cfg.retransmit_ticks;
            debug!(node = %self.cfg.id, to = %p, slot = %decided, "catching up");
            self.ready.send(Node::Proposer(p), Message::CatchUp(CatchUp { from: decided, limit: 1024 }));
        }
    }

    fn on_catch_up(&mut self, from: NodeId, m: CatchUp) -> Result<(), Ignored> {
        let log = self.learner.log();
        let start = (m.from.0 as usize).min(log.len());
        let mut bytes = 0;
        let entries: Vec<Value> = log[start..]
            .iter()
            .take(m.limit as usize)
            .take_while(|v| {
                bytes += v.wire_len();
                bytes <= MAX_BATCH_BYTES
            })
            .cloned()
            .collect();
        let reply = CatchUpReply { from: Slot(start as u64), entries, decided: self.learner.decided() };
        self.ready.send(Node::Proposer(from), Message::CatchUpReply(reply));
        Ok(())
    }

    fn on_catch_up_reply(&mut self, m: CatchUpReply) -> Result<(), Ignored> {
        let mut result = Ok(());
        for (i, value) in m.entries.into_iter().enumerate() {
            let slot = Slot(m.from.0 + i as u64);
            if let Err(e) = self.learner.learn(slot, value) {
                result = Err(e);
            }
        }
        if result.is_ok() && self.learner.decided() < m.decided {
            // More to fetch: ask again at once rather than at the next tick.
            self.catch_up_after = self.now;
        }
        result
    }

    // ---- clients --------------------------------------------------------

    fn on_client_propose(&mut self, client: ClientId, m: ClientPropose) -> Result<(), Ignored> {
        let seq = m.seq;
        if m.value.len() > MAX_VALUE_BYTES {
            let err = ClientError { seq, kind: ClientErrorKind::TooLarge };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        }
        if self.learner.session(client).is_some_and(|s| s.seq >= seq) {
            self.answer_applied(client, seq);
            return Ok(());
        }
        let expect_to_lead =
            self.role != Leadership::Follower || self.election.rightful_leader(self.now) == self.cfg.id;
        if !expect_to_lead {
            let leader = self.leader();
            self.redirect(client, seq, leader);
            return Ok(());
        }
        if self.proposed.get(&client).is_some_and(|s| *s >= seq) {
            self.waiting.insert(client, seq); // a retry of a request already on its way
            return Ok(());
        }
        if self.queue.len() >= self.cfg.max_queue {
            let err = ClientError { seq, kind: ClientErrorKind::Busy };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        }
        self.proposed.insert(client, seq);
        self.waiting.insert(client, seq);
        self.queue.push_back(Command { client, seq, data: m.value });
        Ok(())
    }

    fn redirect(&mut self, client: ClientId, seq: u64, leader: Option<NodeId>) {
        let msg = Message::ClientRedirect(ClientRedirect { seq, leader });
        self.ready.send(Node::Client(client), msg);
    }

    fn on_log_read(&mut self, client: ClientId, m: LogRead) -> Result<(), Ignored> {
        let mut bytes = 0;
        let entries = self
            .learner
            .entries(m.from)
            .take(m.limit as usize)
            .take_while(|e| {
                bytes += 32 + e.value.as_deref().map_or(4, paxos_proto::json_str_len);
                bytes <= MAX_BATCH_BYTES
            })
            .collect();
        let reply = LogReply { req: m.req, entries, decided: self.learner.decided() };
        self.ready.send(Node::Client(client), Message::LogReply(reply));
        Ok(())
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

/// Puts a client's value that lost its slot back at the front of the queue,
/// unless it was applied meanwhile (no-ops need no slot of their own).
fn requeue(learner: &Learner, queue: &mut VecDeque<Command>, value: Value) {
    if let Value::Command(c) = value {
        if !learner.is_applied(&c) {
            queue.push_front(c);
        }
    }
}

/// Splits entries into groups that fit one datagram each.
fn pack(entries: Vec<AcceptEntry>) -> Vec<Vec<AcceptEntry>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let len = e.value.wire_len() + 48; // slot and framing at their widest
        if !chunk.is_empty() && bytes + len > MAX_BATCH_BYTES {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += len;
        chunk.push(e);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests;
