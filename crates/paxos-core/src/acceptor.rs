//! The acceptor: promises, accepts, and remembers both on disk before it answers.

use paxos_proto::{
    Accept, Accepted, Ballot, Message, Nack, Node, NodeId, Prepare, ProbeReply, Promise, PromiseEntry, Slot,
    StatusReply, Trim,
};
use tracing::{debug, info};

use crate::{
    round_ceiling, AcceptorOp, AcceptorState, Defects, Ignored, Ready, CLOCK_SKEW_SECS, MAX_BATCH_BYTES, MAX_SLOT_STEP,
};

/// Bytes a promise entry takes on the wire beside its value: the slot, the
/// ballot and the JSON framing at their widest.
pub const PROMISE_ENTRY_OVERHEAD_BYTES: usize = 100;

/// An acceptor of Multi-Paxos.
///
/// It promises only ballots at least as high as any it promised (an equal one
/// is a retransmission and gets the same answer); it accepts only ballots not
/// lower than its promise; its promise reports every slot it accepted at or
/// above the requested one with the highest ballot accepted there. Every
/// change of state is a [`AcceptorOp`] in the same [`Ready`] as the answer, so
/// the answer leaves only once the change is on disk.
#[derive(Debug)]
pub struct Acceptor {
    id: NodeId,
    proposers: Vec<NodeId>,
    state: AcceptorState,
    ready: Ready<AcceptorOp>,
    defects: Defects,
    /// Rounds above this are refused; no limit until the clock is set.
    round_ceiling: u64,
}

impl Acceptor {
    /// An acceptor with state recovered from its store.
    pub fn new(id: NodeId, proposers: Vec<NodeId>, state: AcceptorState) -> Self {
        let round_ceiling = u64::MAX;
        Acceptor { id, proposers, state, ready: Ready::default(), defects: Defects::default(), round_ceiling }
    }

    /// The same acceptor with deliberate bugs, for the simulator's self-test.
    pub fn with_defects(mut self, defects: Defects) -> Self {
        self.defects = defects;
        self
    }

    /// This acceptor's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The state as the acceptor sees it (durable once the last `Ready` was persisted).
    pub fn state(&self) -> &AcceptorState {
        &self.state
    }

    /// Handles one message.
    ///
    /// # Errors
    /// [`Ignored`] when the message is not for an acceptor or its sender may not send it;
    /// the state is then unchanged and nothing is sent.
    pub fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        let Node::Proposer(proposer) = from else {
            return Err(Ignored("acceptor: sender is not a proposer"));
        };
        if !self.proposers.contains(&proposer) {
            // A stranger's prepare could raise our promise past every real proposer.
            return Err(Ignored("acceptor: unknown proposer"));
        }
        match msg {
            Message::Prepare(m) => self.on_prepare(proposer, m),
            Message::Accept(m) => self.on_accept(proposer, m),
            Message::Trim(m) => self.on_trim(m),
            Message::Probe(m) => {
                // Promised ballots are durable once their Ready was persisted, and
                // Readys run in order, so this answer rests on disk.
                let reply = ProbeReply { nonce: m.nonce, promised: self.state.promised };
                self.ready.send(Node::Proposer(proposer), Message::ProbeReply(reply));
                Ok(())
            }
            _ => Err(Ignored("acceptor: not an acceptor message")),
        }
    }

    /// Takes what was produced since the last call.
    pub fn take_ready(&mut self) -> Ready<AcceptorOp> {
        std::mem::take(&mut self.ready)
    }

    /// A status report (the runtime fills in `req`, `failed` and counters).
    pub fn status(&self) -> StatusReply {
        StatusReply {
            req: 0,
            role: "acceptor".into(),
            failed: false,
            leader: None,
            ballot: self.state.promised,
            decided: self.state.accepted.keys().next_back().map_or(self.state.trimmed_below, |s| s.next()),
            peers_heard: Vec::new(),
            counters: Default::default(),
        }
    }

    /// Phase 1b. A ballot only its owner may use: a proposer preparing
    /// someone else's ballot is forging and is ignored.
    fn on_prepare(&mut self, from: NodeId, m: Prepare) -> Result<(), Ignored> {
        if m.ballot.proposer != from {
            return Err(Ignored("acceptor: prepare with another proposer's ballot"));
        }
        self.check_round(m.ballot)?;
        if m.ballot < self.state.promised {
            self.nack(from, m.ballot);
            return Ok(());
        }
        self.promise(m.ballot);
        let promise = self.promise_page(m.ballot, m.from);
        self.ready.send(Node::Proposer(from), Message::Promise(promise));
        Ok(())
    }

    /// Phase 2b: accept every entry unless a higher ballot was promised.
    fn on_accept(&mut self, from: NodeId, m: Accept) -> Result<(), Ignored> {
        if m.ballot.proposer != from {
            return Err(Ignored("acceptor: accept with another proposer's ballot"));
        }
        self.check_round(m.ballot)?;
        let limit = self.frontier().0.saturating_add(MAX_SLOT_STEP);
        if m.entries.iter().any(|e| e.slot.0 >= limit) && !self.defects.unbounded {
            return Err(Ignored("acceptor: accept of a slot too far ahead of everything it knows"));
        }
        if m.ballot < self.state.promised && !self.defects.accept_ignores_promise {
            self.nack(from, m.ballot);
            return Ok(());
        }
        if m.ballot > self.state.promised {
            self.promise(m.ballot);
        }
        let mut slots = Vec::with_capacity(m.entries.len());
        for e in m.entries {
            if e.slot < self.state.trimmed_below {
                // Decided and learned by every proposer: nothing to vote on any more.
                continue;
            }
            match self.state.accepted.get(&e.slot) {
                Some((b, v)) if *b == m.ballot => {
                    // A retransmission. One ballot proposes one value per slot;
                    // a different value here is a forgery, and voting for it
                    // would let two values reach a quorum under one ballot.
                    if *v != e.value {
                        continue;
                    }
                }
                Some((b, _)) if *b > m.ballot && !self.defects.accept_ignores_promise => {
                    // Unreachable with the promise check above (accepted ballots
                    // never exceed the promise); kept as a second line of defence.
                    continue;
                }
                _ => {
                    let op = AcceptorOp::Accept { slot: e.slot, ballot: m.ballot, value: e.value };
                    self.state.apply(&op);
                    self.ready.persist.push(op);
                }
            }
            slots.push(e.slot);
        }
        if !self.defects.accept_ignores_promise {
            debug_assert!(
                slots.iter().all(|s| self.state.accepted[s].0 <= self.state.promised),
                "an acceptor never holds an accepted ballot above its promise"
            );
        }
        if slots.is_empty() {
            return Ok(());
        }
        debug!(node = %self.id, ballot = %m.ballot, slots = slots.len(), "accepted");
        let accepted = Accepted { ballot: m.ballot, slots };
        for p in &self.proposers {
            self.ready.send(Node::Proposer(*p), Message::Accepted(accepted.clone()));
        }
        Ok(())
    }

    /// Every proposer learned the slots below `below`: forget them.
    fn on_trim(&mut self, m: Trim) -> Result<(), Ignored> {
        // A trim moves the frontier at most MAX_SLOT_STEP at once (a lagging
        // acceptor catches up over a few heartbeats).
        let below = Slot(m.below.0.min(self.frontier().0.saturating_add(MAX_SLOT_STEP)));
        if below <= self.state.trimmed_below {
            return Ok(());
        }
        let op = AcceptorOp::Trim(below);
        self.state.apply(&op);
        self.ready.persist.push(op);
        Ok(())
    }

    /// Refuses a ballot whose round is above the ceiling of the clock (see [`round_ceiling`]).
    fn check_round(&self, ballot: Ballot) -> Result<(), Ignored> {
        if ballot.round > self.round_ceiling && !self.defects.unbounded {
            return Err(Ignored("acceptor: a round above the ceiling of the clock"));
        }
        Ok(())
    }

    /// The wall clock, in Unix seconds, for the round ceiling.
    pub fn set_clock(&mut self, unix_secs: u64) {
        self.round_ceiling = round_ceiling(unix_secs.saturating_add(CLOCK_SKEW_SECS));
    }

    /// One past the highest slot this acceptor knows of: accepted, or trimmed below.
    fn frontier(&self) -> Slot {
        let accepted = self.state.accepted.keys().next_back().map_or(Slot(0), |s| s.next());
        accepted.max(self.state.trimmed_below)
    }

    fn promise(&mut self, ballot: Ballot) {
        if ballot > self.state.promised {
            info!(node = %self.id, ballot = %ballot, "promised");
            let op = AcceptorOp::Promise(ballot);
            self.state.apply(&op);
            self.ready.persist.push(op);
        }
        assert!(self.state.promised >= ballot, "promise never goes down");
    }

    fn nack(&mut self, to: NodeId, ballot: Ballot) {
        debug!(node = %self.id, ballot = %ballot, promised = %self.state.promised, "nack");
        let nack = Nack { ballot, promised: self.state.promised };
        self.ready.send(Node::Proposer(to), Message::Nack(nack));
    }

    /// The page of a promise that starts at `from` and fits one datagram.
    fn promise_page(&self, ballot: Ballot, from: Slot) -> Promise {
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut to = from;
        let mut done = true;
        for (slot, (b, value)) in self.state.accepted.range(from..) {
            let len = value.wire_len() + PROMISE_ENTRY_OVERHEAD_BYTES;
            if !entries.is_empty() && bytes + len > MAX_BATCH_BYTES {
                done = false;
                break;
            }
            bytes += len;
            entries.push(PromiseEntry { slot: *slot, ballot: *b, value: value.clone() });
            to = slot.next();
        }
        Promise { ballot, from, to, done, trimmed_below: self.state.trimmed_below, entries }
    }
}

impl crate::Role for Acceptor {
    type State = AcceptorState;

    fn me(&self) -> Node {
        Node::Acceptor(self.id)
    }

    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        Acceptor::handle(self, from, msg)
    }

    /// An acceptor only answers: it has no timers.
    fn tick(&mut self) {}

    fn set_clock(&mut self, unix_secs: u64) {
        Acceptor::set_clock(self, unix_secs);
    }

    fn take_ready(&mut self) -> Ready<AcceptorOp> {
        Acceptor::take_ready(self)
    }

    fn status(&self) -> StatusReply {
        Acceptor::status(self)
    }

    /// The acceptor logs every new promise itself.
    fn view(&self) -> Option<crate::View> {
        None
    }
}

#[cfg(test)]
mod tests;
