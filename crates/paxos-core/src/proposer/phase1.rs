//! Phase 1: campaigning with a fresh ballot of the epoch in force,
//! collecting promises page by page, and becoming leader with what they report.

use std::collections::{BTreeMap, HashSet};

use paxos_proto::{Ballot, Epoch, Message, Node, NodeId, Prepare, Promise, Slot, Value, Written};
use tracing::info;

use super::phase2::{Phase2, Recovery};
use super::{AcceptorInfo, Kept, Phase, Proposer};
use crate::{Ignored, ProposerOp, Ready, Tick};

/// One acceptor's answer to phase 1 so far.
#[derive(Clone, Copy, Debug)]
struct Page {
    /// The first slot of the page we expect next.
    next: Slot,
    /// The acceptor reported everything it accepted.
    done: bool,
}

/// A candidate's phase 1.
#[derive(Debug)]
pub(super) struct Phase1 {
    /// The first slot covered.
    start: Slot,
    /// The epoch campaigned in (sent with every prepare of an epoch after 0).
    epoch: Option<Epoch>,
    /// Per acceptor of the epoch.
    pages: BTreeMap<NodeId, Page>,
    /// Per slot, the highest-ballot accepted value reported so far.
    adopted: BTreeMap<Slot, (Ballot, Value)>,
    /// The highest decided prefix reported: those slots are in that acceptor's decided log.
    decided: Slot,
    /// When the prepares were last sent.
    sent: Tick,
}

impl Phase1 {
    /// Sends the prepare again to every acceptor whose promise is not complete,
    /// once `every` ticks passed since the last send.
    /// `wrote`: what each acceptor last said it had written (see [`Proposer::wrote`]).
    pub(super) fn retransmit(
        &mut self,
        now: Tick,
        every: u64,
        ballot: Ballot,
        wrote: impl Fn(NodeId) -> Vec<Written>,
        ready: &mut Ready<ProposerOp>,
    ) {
        if now < self.sent + every {
            return;
        }
        self.sent = now;
        for (a, page) in &self.pages {
            if !page.done {
                let prepare = Prepare { ballot, from: page.next, epoch: self.epoch.clone(), wrote: wrote(*a) };
                ready.send(Node::Acceptor(*a), Message::Prepare(prepare));
            }
        }
    }
}

impl Proposer {
    /// Phase 1a with a fresh ballot of the epoch in force, persisted before any prepare leaves.
    pub(super) fn start_phase1(&mut self) {
        assert!(!matches!(self.phase, Phase::Candidate(_)), "a candidate does not campaign again");
        // Rounds arrive bounded by MAX_COUNTER (the codec refuses more), so this cannot overflow.
        let round = self.max_round.checked_add(1).expect("rounds stay far below u64::MAX");
        self.max_round = round;
        self.ready.persist.push(ProposerOp::Round(round));
        // From now on our own log keeps our rounds: the start-up probe is done with.
        assert!(self.probed(), "no campaign before the start-up probe counts a majority");
        self.probe = None;
        let epoch = self.learner.epoch().clone();
        self.ballot = Ballot::in_epoch(epoch.config.epoch, round, self.cfg.id);
        let start = self.learner.decided();
        assert!(start >= epoch.start, "the decided prefix reaches the epoch in force");
        let pages = epoch.config.acceptors.iter().map(|m| (m.id, Page { next: start, done: false })).collect();
        let epoch = (epoch.config.epoch > 0).then_some(epoch);
        info!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, slot = start.0, "campaigning");
        for a in self.acceptor_ids() {
            let prepare = Prepare { ballot: self.ballot, from: start, epoch: epoch.clone(), wrote: self.wrote(a) };
            self.ready.send(Node::Acceptor(a), Message::Prepare(prepare));
        }
        let p1 = Phase1 { start, epoch, pages, adopted: BTreeMap::new(), decided: Slot(0), sent: self.now };
        if let Phase::Leader(p2) = std::mem::replace(&mut self.phase, Phase::Candidate(p1)) {
            // A leader moving to the next epoch: what it held goes back to the queue.
            for value in p2.into_values().into_iter().rev() {
                self.clients.requeue(&self.learner, value);
            }
        }
    }

    /// Phase 1b arrives: adopt, per slot, the highest-ballot value reported;
    /// ask for the next page; lead once a quorum reported everything.
    pub(super) fn on_promise(&mut self, a: NodeId, m: Promise) -> Result<(), Ignored> {
        self.see_ballot(m.ballot);
        self.heard_written(a, m.written);
        // A promise may be late, from an earlier incarnation of the acceptor:
        // only probe rounds say what it holds now (see `membership`).
        self.heard_ahead(Node::Acceptor(a), m.decided);
        if m.ballot == self.ballot {
            let round = self.probe_round;
            if let Some(info) = self.acceptors.get_mut(&a) {
                info.promised_us = Some((m.ballot, m.incarnation, round));
            }
        }
        let Phase::Candidate(p1) = &mut self.phase else { return Ok(()) };
        if m.ballot != self.ballot {
            return Ok(());
        }
        let Some(page) = p1.pages.get_mut(&a) else {
            return Err(Ignored("proposer: a promise of an acceptor that is no member of the epoch"));
        };
        if page.done || m.from != page.next {
            return Ok(()); // a duplicate or an old page
        }
        page.next = m.to;
        page.done = m.done;
        p1.decided = p1.decided.max(m.decided);
        let last_wins = self.defects.adopt_from_last_promise;
        if last_wins && m.from == p1.start {
            // Seed defect 2: only the promise that completes the quorum counts.
            p1.adopted.clear();
        }
        for e in m.entries {
            if e.ballot.epoch != self.ballot.epoch && !last_wins {
                continue; // an older epoch's vote in this epoch's slots: void
            }
            match p1.adopted.get(&e.slot) {
                Some((b, _)) if *b >= e.ballot && !last_wins => {}
                _ => {
                    p1.adopted.insert(e.slot, (e.ballot, e.value));
                }
            }
        }
        if !m.done {
            let wrote = AcceptorInfo::wrote_by(&self.acceptors, a);
            let prepare = Prepare { ballot: m.ballot, from: m.to, epoch: p1.epoch.clone(), wrote };
            self.ready.send(Node::Acceptor(a), Message::Prepare(prepare));
            return Ok(());
        }
        let done = p1.pages.values().filter(|p| p.done).count();
        let needed =
            if self.defects.handed_over_one_promise && self.kept == Some(Kept::HandedOver) { 1 } else { self.quorum() };
        if done >= needed {
            self.become_leader();
        }
        Ok(())
    }

    /// Phase 1 is done: re-propose every adopted value, fill holes with no-ops.
    fn become_leader(&mut self) {
        let Phase::Candidate(p1) = std::mem::replace(&mut self.phase, Phase::Follower) else {
            unreachable!("only a candidate becomes leader");
        };
        // Slots below an acceptor's decided prefix are decided and in its
        // decided log: we learn them (from it or a peer), never propose there.
        let first = p1.start.max(p1.decided);
        let adopted = stop_at_stop_sign(p1.adopted);
        let stop = adopted.iter().find(|(_, (_, v))| matches!(v, Value::Config(_))).map(|(s, _)| *s);
        let stop = stop.filter(|s| *s >= first);
        let mut next = adopted.keys().next_back().map_or(first, |s| s.next()).max(self.learner.known()).max(first);
        if let Some(stop) = stop {
            // Nothing after a stop sign belongs to this epoch.
            next = next.min(stop.next());
        }
        // Decided slots have nothing left to choose; every other slot up to
        // `next` is re-proposed, with its adopted value or a no-op, as the
        // window makes room (so a far slot costs no memory up front).
        let adopted: BTreeMap<Slot, Value> = adopted
            .into_iter()
            .filter(|(slot, _)| *slot >= first && !self.learner.is_decided(*slot))
            .map(|(slot, (_, value))| (slot, value))
            .collect();
        // A stop sign re-proposed is a change under way, as one this leader asked for.
        let changing_to = stop.and_then(|s| match adopted.get(&s) {
            Some(Value::Config(c)) => Some(c.clone()),
            _ => None,
        });
        let mut requests = HashSet::new();
        for value in adopted.values() {
            if let Value::Command(c) = value {
                let asked = self.clients.proposed.entry(c.client).or_default();
                asked.seq = asked.seq.max(c.seq);
                requests.insert((c.client, c.seq));
            }
        }
        // A queued command that phase 1 found accepted somewhere is already re-proposed.
        let learner = &self.learner;
        self.clients.retain(|c| !requests.contains(&(c.client, c.seq)) && !learner.is_applied(c));
        let recovery = Recovery::new(first, next, adopted);
        info!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, slot = first.0, recovered = recovery.len(), "leading");
        self.leader_hint = Some((self.cfg.id, self.ballot));
        self.kept = None;
        let mut p2 = Phase2::new(next, first, recovery, stop, self.now);
        p2.changing_to = changing_to;
        self.phase = Phase::Leader(p2);
        // Say so now rather than at the next heartbeat tick (see `heartbeat_peers`).
        self.heartbeat_peers();
        self.propose_queued();
    }
}

/// Stoppable Paxos's rule for what phase 1 found beyond a stop sign (a
/// configuration): if some slot after it holds a value of a higher ballot
/// than the stop sign's, the stop sign was never chosen (the leader of that
/// higher ballot would have found and re-proposed it, and proposed nothing
/// after it), so it becomes a no-op; otherwise nothing after it can have been
/// chosen in this epoch, and what follows it is dropped: those slots belong to the next epoch.
fn stop_at_stop_sign(mut adopted: BTreeMap<Slot, (Ballot, Value)>) -> BTreeMap<Slot, (Ballot, Value)> {
    let mut from = Slot(0);
    loop {
        let Some((slot, ballot)) =
            adopted.range(from..).find(|(_, (_, v))| matches!(v, Value::Config(_))).map(|(s, (b, _))| (*s, *b))
        else {
            return adopted;
        };
        let higher_after = adopted.range(slot.next()..).any(|(_, (b, _))| *b > ballot);
        if higher_after {
            adopted.insert(slot, (ballot, Value::Noop));
            from = slot.next();
        } else {
            adopted.split_off(&slot.next());
            return adopted;
        }
    }
}
