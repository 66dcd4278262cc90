//! Phase 2: a leader's window of slots in flight, what it sends for them,
//! the votes and copies that arrive, and retransmission.

use std::collections::BTreeMap;

use paxos_proto::{Accept, AcceptEntry, Accepted, Ballot, Message, Node, NodeId, Slot, Value};

use super::{Clients, Phase, Proposer};
use crate::{Ignored, Learner, ProposerOp, Ready, Tick, MAX_BATCH_BYTES};

/// Bytes an accept entry takes on the wire beside its value: the slot and the
/// JSON framing at their widest.
pub const ACCEPT_ENTRY_OVERHEAD_BYTES: usize = 48;

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

/// A leader's phase 2.
#[derive(Debug)]
pub(super) struct Phase2 {
    /// The next free slot.
    next: Slot,
    /// Slots proposed under our ballot and not yet applied.
    inflight: BTreeMap<Slot, InFlight>,
    /// Client values wait until the log is learned up to here (slots trimmed
    /// by acceptors must come from peers before we can deduplicate against them).
    serve_from: Slot,
    /// Slots phase 1 left to re-propose; they enter the window before any client value.
    recovery: Recovery,
}

impl Phase2 {
    pub(super) fn new(next: Slot, serve_from: Slot, recovery: Recovery) -> Phase2 {
        Phase2 { next, inflight: BTreeMap::new(), serve_from, recovery }
    }

    /// Every value proposed and not applied, then every value still to
    /// re-propose, in slot order: what a leader that steps down holds.
    pub(super) fn into_values(self) -> Vec<Value> {
        self.inflight.into_values().map(|f| f.value).chain(self.recovery.into_values()).collect()
    }

    /// The value in flight at `slot`, no longer in flight: it was applied.
    pub(super) fn applied(&mut self, slot: Slot) -> Option<Value> {
        self.inflight.remove(&slot).map(|f| f.value)
    }

    /// Fills the window: first the slots phase 1 left to re-propose, then
    /// queued client values in new slots. Returns the entries to send.
    fn fill(
        &mut self,
        window: usize,
        ballot: Ballot,
        now: Tick,
        learner: &mut Learner,
        clients: &mut Clients,
    ) -> Vec<AcceptEntry> {
        let mut entries = Vec::new();
        while self.inflight.len() < window {
            let (slot, value) = if let Some((slot, value)) = self.recovery.pop_front() {
                if learner.value(slot).is_some() {
                    // Learned from a peer meanwhile, maybe with another value
                    // from a higher ballot: a client's value then needs a new slot.
                    clients.requeue(learner, value);
                    continue;
                }
                (slot, value)
            } else {
                if learner.decided() < self.serve_from {
                    break;
                }
                let Some(cmd) = clients.queue.pop_front() else { break };
                if learner.is_applied(&cmd) {
                    continue;
                }
                // Slots learned from peers while we led are taken: a leader with a
                // stale ballot must not wait on a slot that is already decided.
                let slot = self.next.max(learner.known());
                self.next = slot.next();
                (slot, Value::Command(cmd))
            };
            assert!(!self.inflight.contains_key(&slot), "one ballot proposes one value per slot");
            learner.observe_proposal(slot, ballot, value.clone());
            self.inflight.insert(slot, InFlight { value: value.clone(), sent: now });
            entries.push(AcceptEntry { slot, value });
        }
        entries
    }

    /// Sends the accepts of slots unanswered for `every` ticks again, to the
    /// acceptors that have not voted for them.
    pub(super) fn retransmit(
        &mut self,
        now: Tick,
        every: u64,
        ballot: Ballot,
        acceptors: &[NodeId],
        learner: &Learner,
        ready: &mut Ready<ProposerOp>,
    ) {
        let mut per_acceptor: Vec<Vec<AcceptEntry>> = vec![Vec::new(); acceptors.len()];
        for (slot, f) in self.inflight.iter_mut() {
            if now < f.sent + every || learner.value(*slot).is_some() {
                continue;
            }
            f.sent = now;
            let votes = learner.votes(*slot, ballot);
            for (i, list) in per_acceptor.iter_mut().enumerate() {
                if votes & (1 << i) == 0 {
                    list.push(AcceptEntry { slot: *slot, value: f.value.clone() });
                }
            }
        }
        for (a, entries) in acceptors.iter().zip(per_acceptor) {
            for chunk in pack(entries) {
                ready.send_early(Node::Acceptor(*a), Message::Accept(Accept { ballot, entries: chunk }));
            }
        }
    }
}

impl Proposer {
    /// Fills the window of a leader and sends what entered it, in as few
    /// datagrams as fit; nothing for a follower or a candidate.
    pub(super) fn propose_queued(&mut self) {
        let Phase::Leader(p2) = &mut self.phase else { return };
        let entries = p2.fill(self.cfg.window, self.ballot, self.now, &mut self.learner, &mut self.clients);
        self.send_accepts(entries);
    }

    /// Sends `entries` to every acceptor and a copy to every peer proposer
    /// (which learns from it), as few datagrams as fit.
    ///
    /// Accepts leave early (`Ready::early`): they rest on no write of this
    /// proposer but its round, and that was durable before the prepares of
    /// this ballot left, i.e. before any promise made the ballot usable.
    fn send_accepts(&mut self, entries: Vec<AcceptEntry>) {
        let acceptors = self.cfg.acceptors.iter().map(|a| Node::Acceptor(*a));
        let targets: Vec<Node> = acceptors.chain(self.peers.keys().map(|p| Node::Proposer(*p))).collect();
        for chunk in pack(entries) {
            let accept = Accept { ballot: self.ballot, entries: chunk };
            for to in &targets {
                self.ready.send_early(*to, Message::Accept(accept.clone()));
            }
        }
    }

    /// Phase 2b: an acceptor's votes.
    pub(super) fn on_accepted(&mut self, idx: usize, m: Accepted) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        self.fenced(m.ballot, "an acceptor accepted a higher ballot");
        for slot in m.slots {
            self.learner.observe_accepted(idx, m.ballot, slot);
        }
        Ok(())
    }

    /// A peer leader's accept: the values its ballot proposes, for our learner.
    pub(super) fn on_accept_copy(&mut self, m: Accept) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        self.fenced(m.ballot, "a peer proposes with a higher ballot");
        for e in m.entries {
            self.learner.observe_proposal(e.slot, m.ballot, e.value);
        }
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
