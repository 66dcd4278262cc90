//! Phase 2: a leader's window of slots in flight, what it sends for them,
//! the votes and copies that arrive, and retransmission.

use std::collections::{BTreeMap, VecDeque};

use paxos_proto::{Accept, AcceptEntry, Accepted, Ballot, ClientId, Config, Message, Node, NodeId, Slot, Value};
use tracing::info;

use super::{Clients, Phase, Proposer, QUEUE_AGE_DIVISOR};
use crate::{Ignored, Learner, ProposerOp, Ready, Tick, MAX_BATCH_BYTES};

/// Bytes an accept entry takes on the wire beside its value: the slot and the
/// JSON framing at their widest.
pub const ACCEPT_ENTRY_OVERHEAD_BYTES: usize = 48;

/// The window of a leader re-proposing what phase 1 left, at least.
pub const RECOVERY_WINDOW: usize = 4096;

/// A slot proposed under our ballot and not applied yet.
#[derive(Debug)]
struct InFlight {
    value: Value,
    /// When the accept was last sent.
    sent: Tick,
}

/// The slots phase 1 left to re-propose, in slot order: the adopted values,
/// and a no-op for every other slot up to the highest one any acceptor
/// reported. Holes are made on demand, so a far slot costs no memory.
#[derive(Debug)]
pub(super) struct Recovery {
    /// The next slot to re-propose.
    next: Slot,
    /// One past the last.
    end: Slot,
    /// The values phase 1 adopted, by slot; every other slot is a hole.
    adopted: BTreeMap<Slot, Value>,
}

impl Recovery {
    pub(super) fn new(first: Slot, end: Slot, adopted: BTreeMap<Slot, Value>) -> Recovery {
        assert!(first <= end, "recovery runs forward");
        assert!(adopted.keys().all(|s| *s >= first && *s < end), "every adopted slot is in the recovered range");
        Recovery { next: first, end, adopted }
    }

    /// Slots left to re-propose.
    pub(super) fn len(&self) -> u64 {
        self.end.0 - self.next.0
    }

    fn pop_front(&mut self) -> Option<(Slot, Value)> {
        if self.next >= self.end {
            return None;
        }
        let slot = self.next;
        self.next = slot.next();
        Some((slot, self.adopted.remove(&slot).unwrap_or(Value::Noop)))
    }

    /// What is left, in slot order.
    fn into_values(self) -> impl Iterator<Item = Value> {
        let Recovery { next, end, mut adopted } = self;
        (next.0..end.0).map(move |s| adopted.remove(&Slot(s)).unwrap_or(Value::Noop))
    }
}

/// A value a leader proposed after an operator's deadline, to fence off
/// the stop signs of leaders of lower ballots ([`Phase2::fenced`]).
#[derive(Debug)]
struct Fence {
    /// Its slot.
    slot: Slot,
    /// The leader's clock (Unix ms) when it was proposed.
    at_ms: u64,
    /// The acceptors that accepted it at this phase's ballot.
    votes: Vec<NodeId>,
}

/// A leader's phase 2.
#[derive(Debug)]
pub(super) struct Phase2 {
    /// The next free slot.
    next: Slot,
    /// Slots proposed under our ballot and not yet applied.
    inflight: BTreeMap<Slot, InFlight>,
    /// The bytes of their values.
    inflight_bytes: usize,
    /// Client values wait until the log is learned up to here (slots that
    /// acceptors hold only as decided must be learned before we can
    /// deduplicate against them).
    serve_from: Slot,
    /// Slots phase 1 left to re-propose; they enter the window before any client value.
    recovery: Recovery,
    /// The stop sign of this epoch, once proposed (or recovered): nothing goes after it.
    stop: Option<Slot>,
    /// A configuration to propose as soon as the window drained, and the
    /// deadline (Unix ms) of the operator's request behind it, if any: not
    /// proposed after that. (Boxed: rare, and the leader's phase stays small.)
    change: Option<Box<(Config, Option<u64>)>>,
    /// The first value this phase proposed anew after a fence was asked
    /// for: see [`Phase2::fenced`]. (Boxed: rare.)
    fence: Option<Box<Fence>>,
    /// A fence is asked for: the next value proposed anew (a client's, or a
    /// no-op when none comes) becomes it (see `Proposer::answer_members`).
    pub(super) fence_wanted: bool,
    /// The configuration asked for, until this phase ends.
    pub(super) changing_to: Option<Config>,
    /// When this phase began.
    pub(super) since: Tick,
    /// Entries of a restore, for the next slots, before any client value.
    pub(super) restoring: VecDeque<Value>,
    /// The operator waiting for a restore: client, request, and the slot the log must reach.
    pub(super) restore_waiter: Option<(ClientId, u64, Slot)>,
}

impl Phase2 {
    pub(super) fn new(next: Slot, serve_from: Slot, recovery: Recovery, stop: Option<Slot>, since: Tick) -> Phase2 {
        Phase2 {
            next,
            inflight: BTreeMap::new(),
            inflight_bytes: 0,
            serve_from,
            recovery,
            stop,
            change: None,
            fence: None,
            fence_wanted: false,
            changing_to: None,
            since,
            restoring: VecDeque::new(),
            restore_waiter: None,
        }
    }

    /// Every value proposed and not applied, then every value still to
    /// re-propose, in slot order: what a leader that steps down holds.
    pub(super) fn into_values(self) -> Vec<Value> {
        self.inflight.into_values().map(|f| f.value).chain(self.recovery.into_values()).collect()
    }

    /// The value in flight at `slot`, no longer in flight: it was applied.
    pub(super) fn applied(&mut self, slot: Slot) -> Option<Value> {
        let f = self.inflight.remove(&slot)?;
        self.inflight_bytes -= f.value.wire_len();
        Some(f.value)
    }

    /// True while a configuration change is asked for or under way: the
    /// leader takes no other.
    pub(super) fn changing(&self) -> bool {
        self.change.is_some() || self.stop.is_some()
    }

    /// True once every slot phase 1 left is re-proposed.
    pub(super) fn recovered(&self) -> bool {
        self.recovery.len() == 0
    }

    /// True while nothing is in flight.
    pub(super) fn idle(&self) -> bool {
        self.inflight.is_empty() && self.recovery.len() == 0
    }

    /// Asks for `config` to be proposed once the window drained, unless
    /// that happens after `deadline_ms` (an operator's request).
    pub(super) fn change_to(&mut self, config: Config, deadline_ms: Option<u64>) {
        assert!(!self.changing(), "one configuration change at a time");
        self.changing_to = Some(config.clone());
        self.change = Some(Box::new((config, deadline_ms)));
    }

    /// True once no leader of a lower ballot can get a stop sign proposed
    /// by a deadline chosen any more (in epoch 0 no operator's change is
    /// ever proposed). That takes a fence: a value this phase proposed anew
    /// after `from_ms` by our clock (the deadline, plus how far behind ours
    /// another leader's clock may be), at slot `k`, accepted by a quorum
    /// (`quorum`) at this phase's ballot, with the log decided up to it.
    ///
    /// `k` was not chosen before we proposed there: not at a lower ballot
    /// (phase 1 would have shown it, and `k` is past what it showed), nor
    /// at a higher one (that quorum and ours would share an acceptor, which
    /// accepts no lower ballot after a higher). So `k` was not decided
    /// before the other leader's clock passed the deadline, and a stop
    /// sign, which goes out only once every slot below it is decided, went
    /// out by then only at or below `k`: decided by now, so the change was
    /// made, or never will be.
    pub(super) fn fenced(&self, learner: &Learner, quorum: usize, from_ms: u64) -> bool {
        learner.epoch_number() == 0
            || self
                .fence
                .as_ref()
                .is_some_and(|f| f.at_ms > from_ms && f.votes.len() >= quorum && learner.decided() > f.slot)
    }

    /// True while a fence for `from_ms` may still do (proposed after it,
    /// and not decided without our quorum): no other is needed.
    pub(super) fn fence_after(&self, learner: &Learner, quorum: usize, from_ms: u64) -> bool {
        self.fence
            .as_ref()
            .is_some_and(|f| f.at_ms > from_ms && (learner.decided() <= f.slot || f.votes.len() >= quorum))
    }

    /// Acceptor `a` accepted `slots` at this phase's ballot: a vote for the fence, if among them.
    pub(super) fn fence_vote(&mut self, a: NodeId, slots: &[Slot]) {
        if let Some(f) = self.fence.as_mut() {
            if slots.contains(&f.slot) && !f.votes.contains(&a) {
                f.votes.push(a);
            }
        }
    }

    /// The next slot for a client value: `next`, or past it every slot known
    /// decided (learned from peers while we led: a leader with a stale ballot
    /// must not wait on a slot that is already decided). Never past a slot
    /// not known decided: a hole below the highest slot the learner knows of
    /// (a stale ballot's, or one a forged message made) is ours to fill, or
    /// the log could never be applied past it.
    fn free_slot(&self, learner: &Learner) -> Slot {
        let mut slot = self.next.max(learner.decided());
        while learner.is_decided(slot) {
            slot = slot.next();
        }
        slot
    }

    /// Fills the window: first the slots phase 1 left to re-propose, then
    /// a configuration change once everything before it is decided, or
    /// queued client values in new slots. Returns the entries to send.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        window: usize,
        max_bytes: usize,
        ballot: Ballot,
        now: Tick,
        now_ms: u64,
        learner: &mut Learner,
        clients: &mut Clients,
    ) -> Vec<AcceptEntry> {
        // Re-proposing what phase 1 left (mostly no-ops for holes) may use a
        // wider window than client values: a hostile member can leave up to
        // MAX_SLOT_STEP holes, and filling them must not take forever.
        let window = if self.recovery.len() > 0 { window.max(RECOVERY_WINDOW) } else { window };
        let room = window.saturating_sub(self.inflight.len());
        let wanted = (self.recovery.len() as usize).saturating_add(clients.queued()).saturating_add(1);
        let mut entries = Vec::with_capacity(room.min(wanted));
        while self.inflight.len() < window && (self.inflight_bytes < max_bytes || self.inflight.is_empty()) {
            let (slot, value) = if let Some((slot, value)) = self.recovery.pop_front() {
                if learner.is_decided(slot) {
                    // Learned from a peer meanwhile, maybe with another value
                    // from a higher ballot: a client's value then needs a new slot.
                    clients.requeue(learner, value);
                    continue;
                }
                (slot, value)
            } else if self.stop.is_some() {
                break; // nothing after a stop sign
            } else if self.change.is_some() {
                if self.change.as_ref().is_some_and(|c| c.1.is_some_and(|d| now_ms > d)) {
                    // Its request's deadline passed while the window drained:
                    // never proposed (the request is given up on the next tick).
                    info!(ballot = %ballot, "a configuration change not proposed by its deadline is dropped");
                    (self.change, self.changing_to) = (None, None);
                    continue;
                }
                // Drain: the stop sign goes alone, after every slot before it is decided.
                let slot = self.next.max(learner.known());
                if !self.inflight.is_empty() || learner.decided() < slot {
                    break;
                }
                let (config, _) = *self.change.take().expect("checked above");
                info!(ballot = %ballot, slot = slot.0, epoch = config.epoch, "proposing a configuration");
                self.next = slot.next();
                self.stop = Some(slot);
                (slot, Value::Config(config))
            } else if let Some(value) = self.restoring.pop_front() {
                // A restore's entries go to the very next slots, nothing in between.
                let slot = self.next.max(learner.known());
                self.next = slot.next();
                (slot, value)
            } else if self.restore_waiter.is_some() {
                break; // no client value until the restore is decided
            } else {
                if learner.decided() < self.serve_from || learner.epoch_number() == 0 {
                    // Not yet: the slots below must be learned first, and no client
                    // value goes into epoch 0 (its acceptors are not pinned yet).
                    break;
                }
                let value = match clients.pop_front() {
                    Some(cmd) if learner.is_applied(&cmd) => continue,
                    Some(cmd) => {
                        let max_age = learner.state().session_lifetime().map(|life| life / QUEUE_AGE_DIVISOR);
                        if max_age.is_some_and(|age| now_ms.saturating_sub(clients.heard_ms(&cmd)) > age) {
                            clients.drop_stale(&cmd);
                            continue;
                        }
                        Value::Command(cmd)
                    }
                    None if self.fence_wanted => {
                        info!(ballot = %ballot, "a no-op to fence off the stop signs of leaders before us");
                        Value::Noop
                    }
                    None => break,
                };
                let slot = self.free_slot(learner);
                self.next = slot.next();
                if std::mem::take(&mut self.fence_wanted) {
                    self.fence = Some(Box::new(Fence { slot, at_ms: now_ms, votes: Vec::new() }));
                }
                (slot, value)
            };
            assert!(!self.inflight.contains_key(&slot), "one ballot proposes one value per slot");
            learner.observe_proposal(slot, ballot, value.clone());
            self.inflight_bytes += value.wire_len();
            self.inflight.insert(slot, InFlight { value: value.clone(), sent: now });
            entries.push(AcceptEntry { slot, value });
        }
        entries
    }

    /// Sends the accepts of slots unanswered for `every` ticks again, to the
    /// acceptors that have not voted for them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn retransmit(
        &mut self,
        now: Tick,
        every: u64,
        ballot: Ballot,
        commit: Slot,
        acceptors: &[NodeId],
        learner: &Learner,
        ready: &mut Ready<ProposerOp>,
    ) {
        let mut per_acceptor: Vec<Vec<AcceptEntry>> = vec![Vec::new(); acceptors.len()];
        for (slot, f) in self.inflight.iter_mut() {
            if now < f.sent + every || learner.is_decided(*slot) {
                continue;
            }
            f.sent = now;
            let votes = learner.votes(*slot, ballot);
            for (a, list) in acceptors.iter().zip(per_acceptor.iter_mut()) {
                if !votes.contains(a) {
                    list.push(AcceptEntry { slot: *slot, value: f.value.clone() });
                }
            }
        }
        for (a, entries) in acceptors.iter().zip(per_acceptor) {
            for chunk in pack(entries) {
                ready.send_early(Node::Acceptor(*a), Message::Accept(Accept { ballot, entries: chunk, commit }));
            }
        }
    }
}

impl Proposer {
    /// Fills the window of a leader and sends what entered it, in as few
    /// datagrams as fit; nothing for a follower or a candidate.
    pub(super) fn propose_queued(&mut self) {
        let Phase::Leader(p2) = &mut self.phase else { return };
        let (window, max_bytes) = (self.cfg.window, self.cfg.max_inflight_bytes);
        let entries =
            p2.fill(window, max_bytes, self.ballot, self.now, self.clock_ms, &mut self.learner, &mut self.clients);
        self.send_accepts(entries);
    }

    /// Sends `entries` to the acceptors heard lately (all of them while fewer
    /// than a quorum were, see [`Proposer::accept_targets`]) and a copy to
    /// every peer proposer (which learns from it), as few datagrams as fit.
    ///
    /// Accepts leave early (`Ready::early`): they rest on no write of this
    /// proposer but its round, and that was durable before the prepares of
    /// this ballot left, i.e. before any promise made the ballot usable.
    fn send_accepts(&mut self, entries: Vec<AcceptEntry>) {
        if entries.is_empty() {
            return;
        }
        let acceptors = self.accept_targets().into_iter().map(Node::Acceptor);
        let targets: Vec<Node> = acceptors.chain(self.peers.keys().map(|p| Node::Proposer(*p))).collect();
        let commit = self.learner.decided();
        for chunk in pack(entries) {
            let accept = Accept { ballot: self.ballot, entries: chunk, commit };
            for to in &targets {
                self.ready.send_early(*to, Message::Accept(accept.clone()));
            }
        }
    }

    /// Phase 2b: an acceptor's votes.
    pub(super) fn on_accepted(&mut self, a: NodeId, m: Accepted) -> Result<(), Ignored> {
        self.see_ballot(m.ballot);
        self.heard_written(a, m.written);
        self.fenced(m.ballot, "an acceptor accepted a higher ballot");
        if let Phase::Leader(p2) = &mut self.phase {
            // Only while a fence is out (rarely): votes of members, at our ballot.
            if p2.fence.is_some()
                && m.ballot == self.ballot
                && self.learner.epoch().config.acceptors.iter().any(|x| x.id == a)
            {
                p2.fence_vote(a, &m.slots);
            }
        }
        for slot in m.slots {
            self.learner.observe_accepted(a, m.ballot, slot);
        }
        Ok(())
    }

    /// A peer leader's accept: the values its ballot proposes, and how far
    /// its log is decided, for our learner. Acceptors answer only the leader,
    /// so a follower learns from the leader's commit index, as acceptors do.
    ///
    /// Only a leader sends accepts, under its own ballot (`handle` checked
    /// that the ballot is the sender's): the sender leads, as a heartbeat
    /// saying so would tell, and by the same rule. Without that, a leader it
    /// fences knew of no live leader and, the rightful one, campaigned again
    /// a heartbeat later whenever the new leader's first heartbeat was late:
    /// a leadership transfer taken back under load.
    pub(super) fn on_accept_copy(&mut self, from: NodeId, m: Accept) -> Result<(), Ignored> {
        self.see_ballot(m.ballot);
        if self.peers.contains_key(&from) && self.leader_hint.is_none_or(|(_, b)| m.ballot >= b) {
            self.leader_hint = Some((from, m.ballot));
        }
        self.fenced(m.ballot, "a peer proposes with a higher ballot");
        for e in m.entries {
            self.learner.observe_proposal(e.slot, m.ballot, e.value);
        }
        self.learner.learn_committed(m.ballot, m.commit);
        Ok(())
    }
}

/// Splits entries into groups that fit one datagram each.
fn pack(entries: Vec<AcceptEntry>) -> Vec<Vec<AcceptEntry>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let len = e.value.wire_len() + ACCEPT_ENTRY_OVERHEAD_BYTES;
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
