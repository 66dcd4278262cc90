//! Phase 1: campaigning with a fresh ballot, collecting promises page by
//! page, and becoming leader with what they report.

use std::collections::{BTreeMap, HashSet};

use paxos_proto::{Ballot, Message, Node, NodeId, Prepare, Promise, Slot, Value};
use tracing::info;

use super::phase2::{Phase2, Recovery};
use super::{Phase, Proposer};
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
    /// Per acceptor index.
    pages: Vec<Page>,
    /// Per slot, the highest-ballot accepted value reported so far.
    adopted: BTreeMap<Slot, (Ballot, Value)>,
    /// The highest trim point reported: slots below are decided and forgotten by that acceptor.
    trimmed: Slot,
    /// When the prepares were last sent.
    sent: Tick,
}

impl Phase1 {
    /// Sends the prepare again to every acceptor whose promise is not complete,
    /// once `every` ticks passed since the last send.
    pub(super) fn retransmit(
        &mut self,
        now: Tick,
        every: u64,
        ballot: Ballot,
        acceptors: &[NodeId],
        ready: &mut Ready<ProposerOp>,
    ) {
        if now < self.sent + every {
            return;
        }
        self.sent = now;
        for (a, page) in acceptors.iter().zip(&self.pages) {
            if !page.done {
                ready.send(Node::Acceptor(*a), Message::Prepare(Prepare { ballot, from: page.next }));
            }
        }
    }
}

impl Proposer {
    /// Phase 1a with a fresh ballot, persisted before any prepare leaves.
    pub(super) fn start_phase1(&mut self) {
        assert!(matches!(self.phase, Phase::Follower), "only a follower campaigns");
        // Rounds arrive bounded by MAX_COUNTER (the codec refuses more), so this cannot overflow.
        let round = self.max_round.checked_add(1).expect("rounds stay far below u64::MAX");
        self.max_round = round;
        self.ready.persist.push(ProposerOp::Round(round));
        self.ballot = Ballot::new(round, self.cfg.id);
        let start = self.learner.decided();
        let pages = vec![Page { next: start, done: false }; self.cfg.acceptors.len()];
        self.phase =
            Phase::Candidate(Phase1 { start, pages, adopted: BTreeMap::new(), trimmed: Slot(0), sent: self.now });
        info!(node = %self.cfg.id, ballot = %self.ballot, slot = %start, "campaigning");
        for a in &self.cfg.acceptors {
            self.ready.send(Node::Acceptor(*a), Message::Prepare(Prepare { ballot: self.ballot, from: start }));
        }
    }

    /// Phase 1b arrives: adopt, per slot, the highest-ballot value reported;
    /// ask for the next page; lead once a majority reported everything.
    pub(super) fn on_promise(&mut self, idx: usize, m: Promise) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        let Phase::Candidate(p1) = &mut self.phase else { return Ok(()) };
        if m.ballot != self.ballot {
            return Ok(());
        }
        let page = &mut p1.pages[idx];
        if page.done || m.from != page.next {
            return Ok(()); // a duplicate or an old page
        }
        page.next = m.to;
        page.done = m.done;
        p1.trimmed = p1.trimmed.max(m.trimmed_below);
        let last_wins = self.defects.adopt_from_last_promise;
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
            self.ready.send(Node::Acceptor(self.cfg.acceptors[idx]), Message::Prepare(prepare));
            return Ok(());
        }
        if p1.pages.iter().filter(|p| p.done).count() >= self.quorum {
            self.become_leader();
        }
        Ok(())
    }

    /// Phase 1 is done: re-propose every adopted value, fill holes with no-ops.
    fn become_leader(&mut self) {
        let Phase::Candidate(p1) = std::mem::replace(&mut self.phase, Phase::Follower) else {
            unreachable!("only a candidate becomes leader");
        };
        // Slots below an acceptor's trim point were learned by every proposer
        // and forgotten by that acceptor: we learn them from peers, never propose there.
        let first = p1.start.max(p1.trimmed);
        let next = p1.adopted.keys().next_back().map_or(first, |s| s.next()).max(self.learner.known()).max(first);
        // Decided slots have nothing left to choose; every other slot up to
        // `next` is re-proposed, with its adopted value or a no-op, as the
        // window makes room (so a far slot costs no memory up front).
        let adopted: BTreeMap<Slot, Value> = p1
            .adopted
            .into_iter()
            .filter(|(slot, _)| *slot >= first && self.learner.value(*slot).is_none())
            .map(|(slot, (_, value))| (slot, value))
            .collect();
        let mut requests = HashSet::new();
        for value in adopted.values() {
            if let Value::Command(c) = value {
                let seq = self.clients.proposed.entry(c.client).or_default();
                *seq = (*seq).max(c.seq);
                requests.insert((c.client, c.seq));
            }
        }
        // A queued command that phase 1 found accepted somewhere is already re-proposed.
        let learner = &self.learner;
        self.clients.queue.retain(|c| !requests.contains(&(c.client, c.seq)) && !learner.is_applied(c));
        let recovery = Recovery::new(first, next, adopted);
        info!(node = %self.cfg.id, ballot = %self.ballot, slot = %first, recovered = recovery.len(), "leading");
        self.leader_hint = Some((self.cfg.id, self.ballot));
        self.phase = Phase::Leader(Phase2::new(next, first, recovery));
        self.propose_queued();
    }
}
