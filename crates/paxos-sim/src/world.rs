//! The simulated world: nodes running the real core, their disks, a faulty
//! network, clients, and a clock, all driven by one seed.
//!
//! One tick of the world: inject or heal faults; deliver every datagram that
//! is due (ties broken by a random key, so equal delays reorder too); tick every
//! node and client; then take each node's `Ready`, send its early messages,
//! and queue its writes and messages as one pending batch. A batch becomes
//! durable in the node's in-memory disk up to `persist_lag` ticks later (in
//! order: the daemons fsync in the background while their loop goes on), and
//! only then are its messages put on the network, where each may be lost,
//! duplicated or delayed. A crash discards the node's volatile state and its
//! pending batches' messages; with probability `crash_before_persist` it also
//! discards the writes of a random suffix of its pending batches, as a power
//! cut before fsync would, and the rest reach the disk unannounced.

use std::collections::{BTreeMap, VecDeque};

use paxos_core::{
    Acceptor, AcceptorOp, AcceptorState, MemStore, Outgoing, Proposer, ProposerConfig, ProposerOp, ProposerState, Store,
};
use paxos_proto::auth::{admit, Policy, Signer};
use paxos_proto::{Ballot, ClientId, Command, Envelope, Message, Node, NodeId, Slot, Value, PROTOCOL_VERSION};

use crate::adversary::{self, Adversary, Knowledge};
use crate::client::SimClient;
use crate::params::Params;
use crate::rng::Rng;
use crate::Violation;

/// A datagram on its way.
#[derive(Debug)]
struct Datagram {
    from: Node,
    to: Node,
    msg: Message,
    /// Who signed it: members sign with the peer key, clients and the forger do not.
    signer: Signer,
}

/// Who must sign what in the simulated cluster: `[auth]` with a peer key, no client keys.
const POLICY: Policy = Policy { peers: true, clients: false };

/// The writes of one `Ready`, of either role.
#[derive(Debug)]
enum Writes {
    Proposer(Vec<ProposerOp>),
    Acceptor(Vec<AcceptorOp>),
}

/// One `Ready` whose writes are not durable yet.
#[derive(Debug)]
struct Pending {
    writes: Writes,
    /// Sent once the writes are durable.
    messages: Vec<Outgoing>,
    /// The tick at which the writes become durable.
    due: u64,
}

/// Counts of what happened in a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams sent by nodes and clients.
    pub sent: u64,
    /// Datagrams delivered.
    pub delivered: u64,
    /// Datagrams lost (by chance, partition, failed or down receivers).
    pub lost: u64,
    /// Crashes (each followed by a restart from the node's disk).
    pub crashes: u64,
    /// Batches of writes that crashes lost before they were durable.
    pub crashes_before_persist: u64,
    /// Times a node was failed.
    pub failures: u64,
    /// Partitions.
    pub partitions: u64,
    /// Inputs a role refused (counted, never applied).
    pub ignored: u64,
    /// Requests acknowledged to clients.
    pub acked: u64,
    /// Datagrams the adversary sent.
    pub adversary_sent: u64,
    /// Datagrams refused by the rule of admission (no valid MAC for a member's name).
    pub unauthenticated: u64,
}

/// The world of one run.
pub struct World {
    pub(crate) params: Params,
    pub(crate) now: u64,
    fault_rng: Rng,
    net_rng: Rng,
    proposer_ids: Vec<NodeId>,
    acceptor_ids: Vec<NodeId>,
    pub(crate) proposers: Vec<Option<Proposer>>,
    pub(crate) proposer_disks: Vec<MemStore<ProposerState>>,
    acceptors: Vec<Option<Acceptor>>,
    acceptor_disks: Vec<MemStore<AcceptorState>>,
    pub(crate) clients: Vec<SimClient>,
    /// Per node (proposers, then acceptors): down until this tick.
    down_until: Vec<Option<u64>>,
    /// Per node: failed until this tick (`u64::MAX` for the whole run).
    failed_until: Vec<Option<u64>>,
    /// Per node: crash at the end of this tick.
    crash_now: Vec<bool>,
    /// Per endpoint (nodes, then clients): its side of the partition, whether it
    /// cuts one direction only (from side `true` to side `false`), and when it heals.
    partition: Option<(Vec<bool>, bool, u64)>,
    /// Per proposer: probability that its clock skips a tick.
    tick_skip: Vec<f64>,
    network: BTreeMap<(u64, u64), Datagram>,
    /// Messages to put on the network at the end of this tick.
    pending_sends: Vec<(Node, Node, Message)>,
    /// Per node: its batches whose writes are not durable yet, oldest first.
    unsynced: Vec<VecDeque<Pending>>,
    /// Every value any learner ever applied, per slot: what agreement is checked against.
    pub(crate) chosen: BTreeMap<Slot, Value>,
    /// Every accept any acceptor made durable, ever: per (slot, ballot) the value and
    /// the acceptors (a bit each). Independent of what learners concluded.
    pub(crate) accept_history: BTreeMap<(Slot, Ballot), (Value, u64)>,
    /// Per proposer, how much of its log was checked against `chosen`.
    checked: Vec<usize>,
    /// The tick at which the network healed.
    pub(crate) healed_at: u64,
    pub(crate) violations: Vec<Violation>,
    /// A digest of every delivery: the same seed gives the same digest.
    pub(crate) trace: u64,
    /// Print every delivery.
    verbose: bool,
    pub(crate) stats: Stats,
    /// The highest ballot and slot that went over the network: what the adversary knows.
    seen_ballot: Ballot,
    seen_slot: Slot,
    /// The proposals the adversary made as a client (validity counts them as proposed).
    pub(crate) adversary_proposals: Vec<Command>,
    adversary_seq: u64,
}

const FNV_PRIME: u64 = 0x100_0000_01b3;

/// The simulated wall clock at tick 0, in Unix seconds (mid-2026); a tick is 10 ms.
const SIM_EPOCH_SECS: u64 = paxos_core::ROUND_CEILING_EPOCH_SECS + 15_000_000;

impl World {
    /// Builds the world `params` describe.
    pub fn new(params: Params, verbose: bool) -> World {
        let mut rng = Rng::new(params.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let fault_rng = rng.fork();
        let net_rng = rng.fork();
        let mut client_rng = rng.fork();
        let proposer_ids: Vec<NodeId> = (1..=params.proposers as u32).map(NodeId).collect();
        let acceptor_ids: Vec<NodeId> = (1..=params.acceptors as u32).map(NodeId).collect();
        let n = params.proposers + params.acceptors;
        let clients = (0..params.clients)
            .map(|c| {
                let values = (0..params.values_per_client)
                    .map(|i| {
                        // Some values repeat on purpose: equal data under different request ids are different requests.
                        if client_rng.chance(params.big_values) {
                            // Up to 8 KiB, with characters JSON must escape.
                            let len = client_rng.range(1, 8 * 1024 - 16) as usize;
                            let mut v = format!("c{c}-v{i}:");
                            while v.len() < len {
                                v.push(['x', '"', '\n', 'é', '\u{1}'][client_rng.index(5)]);
                            }
                            while v.len() > 8 * 1024 {
                                v.pop();
                            }
                            v
                        } else if client_rng.chance(0.1) {
                            "same".to_string()
                        } else {
                            format!("c{c}-v{i}")
                        }
                    })
                    .collect();
                let target = proposer_ids[client_rng.index(proposer_ids.len())];
                SimClient::new(ClientId(1000 + c as u64), values, target, params.client_timeout)
            })
            .collect();
        let tick_skip = (0..params.proposers).map(|_| client_rng.unit() * params.clock_skew).collect();
        let mut failed_until = vec![None; n];
        for a in &params.failed_acceptors {
            failed_until[params.proposers + a] = Some(u64::MAX);
        }
        let mut world = World {
            now: 0,
            fault_rng,
            net_rng,
            proposers: (0..params.proposers).map(|_| None).collect(),
            proposer_disks: vec![MemStore::<ProposerState>::default(); params.proposers],
            acceptors: (0..params.acceptors).map(|_| None).collect(),
            acceptor_disks: vec![MemStore::<AcceptorState>::default(); params.acceptors],
            proposer_ids,
            acceptor_ids,
            clients,
            down_until: vec![None; n],
            failed_until,
            crash_now: vec![false; n],
            partition: None,
            tick_skip,
            network: BTreeMap::new(),
            pending_sends: Vec::new(),
            unsynced: (0..n).map(|_| VecDeque::new()).collect(),
            chosen: BTreeMap::new(),
            accept_history: BTreeMap::new(),
            checked: vec![0; params.proposers],
            healed_at: params.fault_ticks,
            violations: Vec::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            verbose,
            stats: Stats::default(),
            seen_ballot: Ballot::ZERO,
            seen_slot: Slot(0),
            adversary_proposals: Vec::new(),
            adversary_seq: 0,
            params,
        };
        for i in 0..world.params.proposers {
            world.start_proposer(i);
        }
        for i in 0..world.params.acceptors {
            world.start_acceptor(i);
        }
        world
    }

    fn start_proposer(&mut self, i: usize) {
        let mut cfg = ProposerConfig::new(self.proposer_ids[i], self.proposer_ids.clone(), self.acceptor_ids.clone());
        cfg.window = self.params.window;
        // A new start, a new nonce for its probe (the daemons draw it at random).
        cfg.incarnation = self.fault_rng.next_u64();
        let state = self.proposer_disks[i].load().expect("the in-memory disk loads");
        let mut p = Proposer::new(cfg, state);
        if let Some(d) = self.params.defect {
            p = p.with_defects(d.proposer());
        }
        self.checked[i] = self.checked[i].min(p.learner().log().len());
        self.proposers[i] = Some(p);
    }

    fn start_acceptor(&mut self, i: usize) {
        let state = self.acceptor_disks[i].load().expect("the in-memory disk loads");
        let mut a = Acceptor::new(self.acceptor_ids[i], self.proposer_ids.clone(), state);
        if let Some(d) = self.params.defect {
            a = a.with_defects(d.acceptor());
        }
        self.acceptors[i] = Some(a);
    }

    /// Index of a node or client among the endpoints.
    fn endpoint(&self, node: Node) -> Option<usize> {
        let (p, a) = (self.params.proposers, self.params.acceptors);
        match node {
            Node::Proposer(id) => (id.0 as usize).checked_sub(1).filter(|i| *i < p),
            Node::Acceptor(id) => (id.0 as usize).checked_sub(1).filter(|i| *i < a).map(|i| p + i),
            Node::Client(id) => {
                (id.0 as usize).checked_sub(1000).filter(|i| *i < self.clients.len()).map(|i| p + a + i)
            }
        }
    }

    fn nodes(&self) -> usize {
        self.params.proposers + self.params.acceptors
    }

    fn is_up(&self, i: usize) -> bool {
        i >= self.nodes() || self.down_until[i].is_none()
    }

    fn is_failed(&self, i: usize) -> bool {
        i < self.nodes() && self.failed_until[i].is_some()
    }

    /// True if the partition stops datagrams from `a` to `b`.
    fn cut(&self, a: usize, b: usize) -> bool {
        self.partition.as_ref().is_some_and(|(side, one_way, _)| side[a] != side[b] && (!one_way || side[a]))
    }

    /// True while faults may happen.
    pub fn faulty(&self) -> bool {
        self.now < self.params.fault_ticks
    }

    /// Runs one tick.
    pub fn step(&mut self) {
        self.now += 1;
        if self.faulty() {
            self.inject_faults();
            self.attack();
        } else if self.now == self.params.fault_ticks {
            self.heal();
        }
        self.wake();
        let unix_secs = SIM_EPOCH_SECS + self.now / 100;
        for p in self.proposers.iter_mut().flatten() {
            p.set_clock(unix_secs);
        }
        for a in self.acceptors.iter_mut().flatten() {
            a.set_clock(unix_secs);
        }
        self.deliver();
        for (i, p) in self.proposers.iter_mut().enumerate() {
            // Clocks drift: a proposer sometimes misses a tick.
            if let Some(p) = p {
                if !self.fault_rng.chance(self.tick_skip[i]) {
                    p.tick();
                }
            }
        }
        let mut out = Vec::new();
        let proposer_ids = self.proposer_ids.clone();
        for (c, client) in self.clients.iter_mut().enumerate() {
            client.tick(self.now, &proposer_ids, &mut out);
            for (to, msg) in out.drain(..) {
                let from = Node::Client(ClientId(1000 + c as u64));
                self.pending_sends.push((from, to, msg));
            }
        }
        self.flush();
        self.check_agreement();
    }

    /// Draws this tick's faults.
    fn inject_faults(&mut self) {
        let n = self.nodes();
        let now = self.now;
        if self.fault_rng.chance(self.params.crash_rate) {
            let i = self.fault_rng.index(n);
            if self.is_up(i) {
                self.crash_now[i] = true;
            }
        }
        if self.fault_rng.chance(self.params.fail_rate) {
            let i = self.fault_rng.index(n);
            if self.failed_until[i].is_none() {
                self.failed_until[i] = Some(now + self.fault_rng.range(10, 200));
                self.stats.failures += 1;
            }
        }
        if self.partition.is_none() && self.fault_rng.chance(self.params.partition_rate) {
            let endpoints = n + self.clients.len();
            let side = (0..endpoints).map(|_| self.fault_rng.chance(0.5)).collect();
            let one_way = self.fault_rng.chance(self.params.one_way);
            let until = now + self.fault_rng.range(10, 300);
            self.partition = Some((side, one_way, until));
            self.stats.partitions += 1;
        }
        if self.partition.as_ref().is_some_and(|(_, _, until)| now >= *until) {
            self.partition = None;
        }
    }

    /// The adversary's move of this tick, if it has one.
    fn attack(&mut self) {
        let Some(who) = self.params.adversary else { return };
        if !self.fault_rng.chance(self.params.adversary_rate) {
            return;
        }
        let k = Knowledge {
            proposers: &self.proposer_ids,
            acceptors: &self.acceptor_ids,
            ballot: self.seen_ballot,
            slot: self.seen_slot,
        };
        let (forged, signer) = match who {
            Adversary::Forger => {
                let (forged, proposal) = adversary::forge(&mut self.fault_rng, &k, &mut self.adversary_seq);
                self.adversary_proposals.extend(proposal);
                (forged, Signer::Unsigned)
            }
            Adversary::Insider => (adversary::extreme(&mut self.fault_rng, &k), Signer::Peer),
        };
        self.stats.adversary_sent += 1;
        // The adversary sits beside every node: no partition or loss between.
        let at = (self.now + self.net_rng.range(1, self.params.max_delay), self.net_rng.next_u64());
        self.network.insert(at, Datagram { from: forged.from, to: forged.to, msg: forged.msg, signer });
    }

    /// The faults stop: every node comes back, the network is whole and reliable.
    fn heal(&mut self) {
        self.partition = None;
        for i in 0..self.nodes() {
            if self.down_until[i].is_some() {
                self.down_until[i] = Some(self.now);
            }
            if self.failed_until[i].is_some_and(|t| t != u64::MAX) {
                self.failed_until[i] = Some(self.now);
            }
        }
    }

    /// Restarts crashed nodes and recovers failed ones whose time is up.
    fn wake(&mut self) {
        for i in 0..self.nodes() {
            if self.down_until[i].is_some_and(|t| self.now >= t) {
                self.down_until[i] = None;
                if i < self.params.proposers {
                    self.start_proposer(i);
                } else {
                    self.start_acceptor(i - self.params.proposers);
                }
            }
            if self.failed_until[i].is_some_and(|t| self.now >= t) {
                self.failed_until[i] = None;
            }
        }
    }

    fn deliver(&mut self) {
        let later = self.network.split_off(&(self.now + 1, 0));
        let due = std::mem::replace(&mut self.network, later);
        for (_, d) in due {
            let Some(to) = self.endpoint(d.to) else {
                unreachable!("the simulator only addresses its own endpoints");
            };
            // The adversary may claim any name; its datagrams come from no endpoint of ours.
            let cut = self.endpoint(d.from).is_some_and(|from| self.cut(from, to));
            if !self.is_up(to) || self.is_failed(to) || cut {
                self.stats.lost += 1;
                continue;
            }
            // The one rule every receiver applies: a member's name needs a peer key's MAC.
            if admit(d.from, d.signer, POLICY).is_err() {
                self.stats.unauthenticated += 1;
                continue;
            }
            let from = self.endpoint(d.from).unwrap_or(usize::MAX);
            self.stats.delivered += 1;
            self.trace = (self.trace ^ (self.now << 32 ^ (from as u64) << 16 ^ to as u64)).wrapping_mul(FNV_PRIME);
            self.trace = (self.trace ^ d.msg.kind().len() as u64).wrapping_mul(FNV_PRIME);
            if self.verbose {
                println!("{:>6} {} -> {}: {:?}", self.now, d.from, d.to, d.msg);
            }
            let result = match d.to {
                Node::Proposer(_) => self.proposers[to].as_mut().expect("up").handle(d.from, d.msg),
                Node::Acceptor(_) => {
                    let a = to - self.params.proposers;
                    self.acceptors[a].as_mut().expect("up").handle(d.from, d.msg)
                }
                Node::Client(_) => {
                    let c = to - self.nodes();
                    self.clients[c].handle(self.now, d.msg);
                    Ok(())
                }
            };
            if result.is_err() {
                self.stats.ignored += 1;
            }
        }
    }

    /// Sends every node's early messages and queues its writes; makes the
    /// writes that are due durable and sends what waited on them; crashes the
    /// nodes due to crash.
    fn flush(&mut self) {
        for i in 0..self.nodes() {
            let crash = std::mem::take(&mut self.crash_now[i]);
            let (from, early, writes, messages) = if i < self.params.proposers {
                let Some(p) = self.proposers[i].as_mut() else { continue };
                let ready = p.take_ready();
                (Node::Proposer(p.id()), ready.early, Writes::Proposer(ready.persist), ready.messages)
            } else {
                let Some(a) = self.acceptors[i - self.params.proposers].as_mut() else { continue };
                let ready = a.take_ready();
                (Node::Acceptor(a.id()), ready.early, Writes::Acceptor(ready.persist), ready.messages)
            };
            // Early messages leave before the writes are durable, so even a
            // crash that loses those writes does not hold them back.
            if !self.is_failed(i) {
                self.pending_sends.extend(early.into_iter().map(|m| (from, m.to, m.msg)));
            }
            let lag = if self.params.persist_lag > 0 { self.fault_rng.range(0, self.params.persist_lag) } else { 0 };
            let after = self.unsynced[i].back().map_or(0, |b| b.due);
            self.unsynced[i].push_back(Pending { writes, messages, due: (self.now + lag).max(after) });
            // A power cut loses the writes of a suffix of the batches in flight.
            let pending = self.unsynced[i].len();
            let keep = if crash && self.fault_rng.chance(self.params.crash_before_persist) {
                self.fault_rng.index(pending)
            } else {
                pending
            };
            let mut done = 0;
            while done < keep && self.unsynced[i][done].due <= self.now {
                done += 1;
            }
            for (k, batch) in std::mem::take(&mut self.unsynced[i]).into_iter().enumerate() {
                if k >= keep {
                    self.stats.crashes_before_persist += 1;
                    continue;
                }
                if k >= done && !crash {
                    self.unsynced[i].push_back(batch);
                    continue;
                }
                self.make_durable(i, batch.writes);
                // A crash comes after what was due: those messages left; the rest never will.
                if k < done && !self.is_failed(i) {
                    self.pending_sends.extend(batch.messages.into_iter().map(|m| (from, m.to, m.msg)));
                }
            }
            if crash {
                self.stats.crashes += 1;
                if i < self.params.proposers {
                    self.proposers[i] = None;
                    // The highest-id proposer may lose its data dir with the crash.
                    if i + 1 == self.params.proposers && self.fault_rng.chance(self.params.wipe_proposer) {
                        self.proposer_disks[i] = MemStore::<ProposerState>::default();
                        self.checked[i] = 0;
                    }
                } else {
                    self.acceptors[i - self.params.proposers] = None;
                }
                self.down_until[i] = Some(self.now + self.fault_rng.range(1, 100));
            }
        }
        for (from, to, msg) in std::mem::take(&mut self.pending_sends) {
            self.send(from, to, msg);
        }
    }

    /// Applies one batch of writes of node `i` to its disk, recording every
    /// accept in the history that agreement is checked against.
    fn make_durable(&mut self, i: usize, writes: Writes) {
        match writes {
            Writes::Proposer(ops) => self.proposer_disks[i].apply(&ops).expect("in-memory disk"),
            Writes::Acceptor(ops) => {
                let a = i - self.params.proposers;
                self.acceptor_disks[a].apply(&ops).expect("in-memory disk");
                for op in &ops {
                    if let AcceptorOp::Accept { slot, ballot, value } = op {
                        let (v, votes) = self.accept_history.entry((*slot, *ballot)).or_insert((value.clone(), 0));
                        *votes |= 1 << a;
                        if v != value {
                            self.violations.push(Violation {
                                invariant: "one value per ballot",
                                detail: format!(
                                    "tick {}: acceptor {} accepted {value:?} at slot {slot} under {ballot}, \
                                     another acceptor {v:?}",
                                    self.now,
                                    a + 1
                                ),
                            });
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, from: Node, to: Node, msg: Message) {
        self.stats.sent += 1;
        let (Some(f), Some(t)) = (self.endpoint(from), self.endpoint(to)) else {
            // A node may name a client or peer that is not part of this world (a forged address):
            // the datagram goes nowhere.
            self.stats.lost += 1;
            return;
        };
        let faulty = self.faulty();
        if self.cut(f, t) || (faulty && self.net_rng.chance(self.params.drop)) {
            self.stats.lost += 1;
            return;
        }
        if self.params.codec_check {
            self.check_codec(from, to, &msg);
        }
        let max_delay = if !faulty {
            self.params.max_delay.min(2)
        } else if self.net_rng.chance(self.params.long_delay) {
            300
        } else {
            self.params.max_delay
        };
        self.observe(&msg);
        let signer = if matches!(from, Node::Client(_)) { Signer::Unsigned } else { Signer::Peer };
        if faulty && self.net_rng.chance(self.params.duplicate) {
            let at = (self.now + self.net_rng.range(1, max_delay), self.net_rng.next_u64());
            self.network.insert(at, Datagram { from, to, msg: msg.clone(), signer });
        }
        let at = (self.now + self.net_rng.range(1, max_delay), self.net_rng.next_u64());
        self.network.insert(at, Datagram { from, to, msg, signer });
    }

    /// What the adversary learns from watching the network: the highest ballot and slot.
    fn observe(&mut self, msg: &Message) {
        let (ballot, slot) = match msg {
            Message::Accept(m) => (Some(m.ballot), m.entries.iter().map(|e| e.slot).max()),
            Message::Accepted(m) => (Some(m.ballot), m.slots.iter().copied().max()),
            Message::Prepare(m) => (Some(m.ballot), None),
            Message::Heartbeat(m) => (Some(m.ballot), Some(m.known)),
            _ => (None, None),
        };
        self.seen_ballot = self.seen_ballot.max(ballot.unwrap_or(Ballot::ZERO));
        self.seen_slot = self.seen_slot.max(slot.unwrap_or(Slot(0)));
    }

    /// Every datagram the roles produce must encode within the limit and decode to itself.
    fn check_codec(&mut self, from: Node, to: Node, msg: &Message) {
        let env = Envelope { version: PROTOCOL_VERSION, cluster: "sim".into(), from, to, msg: msg.clone() };
        let mut buf = Vec::new();
        let ok = paxos_proto::encode(&env, &mut buf).is_ok() && paxos_proto::decode(&buf).as_ref() == Ok(&env);
        if !ok {
            let detail = format!("{} -> {}: a {} of {} bytes does not round-trip", from, to, msg.kind(), buf.len());
            self.violations.push(Violation { invariant: "codec", detail });
        }
    }

    /// Agreement, checked after every tick: every slot any learner applied holds one value.
    fn check_agreement(&mut self) {
        for (i, p) in self.proposers.iter().enumerate() {
            let Some(p) = p else { continue };
            let log = p.learner().log();
            for (s, value) in log.iter().enumerate().skip(self.checked[i]) {
                let slot = Slot(s as u64);
                match self.chosen.get(&slot) {
                    None => {
                        self.chosen.insert(slot, value.clone());
                    }
                    Some(v) if v == value => {}
                    Some(v) => self.violations.push(Violation {
                        invariant: "agreement",
                        detail: format!(
                            "tick {}: proposer {} applied {:?} at slot {}, another learner applied {:?}",
                            self.now,
                            p.id(),
                            value,
                            slot,
                            v
                        ),
                    }),
                }
            }
            self.checked[i] = log.len();
        }
    }

    /// True when every node is up, every client is done and every proposer learned the same log,
    /// which holds every acknowledged value.
    pub fn settled(&self) -> bool {
        if self.faulty() || !self.clients.iter().all(|c| c.done()) {
            return false;
        }
        let logs: Vec<&[Value]> =
            self.proposers.iter().map(|p| p.as_ref().map_or(&[][..], |p| p.learner().log())).collect();
        // Every acknowledged value is learned, not merely decided: a leader
        // answers before its own copy is durable, and may crash right after.
        let acked_end = self
            .clients
            .iter()
            .flat_map(|c| &c.requests)
            .filter_map(|r| r.acked)
            .map(|(_, s)| s.0 + 1)
            .max()
            .unwrap_or(0);
        self.proposers.iter().all(|p| p.is_some())
            && logs.windows(2).all(|w| w[0] == w[1])
            && logs.iter().all(|l| l.len() as u64 >= acked_end)
    }

    /// The acceptors' durable states, for the final checks.
    pub(crate) fn acceptor_states(&self) -> impl Iterator<Item = &paxos_core::AcceptorState> {
        self.acceptor_disks.iter().map(|d| &d.state)
    }
}
