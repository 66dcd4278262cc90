//! Comparing decided logs between nodes, by their digests.
//!
//! Every learner keeps a digest chain of its decided log in its
//! [`crate::LogState`] (folded slot by slot, see [`paxos_proto::Digest`]) and
//! claims it at every [`DIGEST_EVERY`]th slot: proposers in their
//! heartbeats, acceptors in their probe answers. A proposer keeps its own
//! recent points ([`Digests`]) and compares each claim with its own at the
//! same slot: at once if it passed that slot, else once it gets there. Two
//! chains that differ at a slot mean that the two logs diverged at or
//! before it, which Paxos forbids: a bug, or a fault of memory or disk that
//! no checksum caught (a checksum vouches only for what was written).
//! Nothing is repaired: the proposer says so, once per node
//! ([`Digests::take_found`]), and its runtime reports it until a later claim
//! of that node matches ours again (its log was replaced: moved away and
//! copied from its peers; [`Digests::take_agreed`]).

use std::collections::{BTreeMap, VecDeque};

use paxos_proto::{Digest, Node, Slot, DIGEST_EVERY};

/// Our own points a proposer keeps, to compare the claims of nodes behind
/// us: 1,024 points of [`DIGEST_EVERY`] slots, 8,192 slots back (a claim
/// is at most a heartbeat old, and its sender's log within a few rounds of ours).
pub const DIGEST_POINTS: usize = 1024;

/// Nodes whose claims a proposer keeps at once (claims of nodes ahead of us
/// that wait until we get there, and nodes found to differ): far more than
/// any cluster's members, so that a forging key holder cannot grow them.
pub const DIGEST_NODES: usize = 64;

/// A node's log differs from ours: both chains at the first point compared where they differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The chains cover the slots below this one.
    pub slot: Slot,
    /// Our chain there.
    pub ours: u64,
    /// Theirs.
    pub theirs: u64,
}

/// A proposer's own recent points, the claims that wait for it, and the nodes found to differ.
#[derive(Debug, Default)]
pub struct Digests {
    /// Our points, oldest first, at increasing slots.
    points: VecDeque<Digest>,
    /// Per node, the earliest claim at a slot we had not passed when it came.
    waiting: BTreeMap<Node, Digest>,
    /// The nodes whose log differs from ours, from the first claim that showed it.
    diverged: BTreeMap<Node, Divergence>,
    /// Divergences found since the last [`Digests::take_found`].
    found: Vec<(Node, Divergence)>,
    /// Nodes found to differ whose later claim matched ours, since the last [`Digests::take_agreed`].
    agreed: Vec<(Node, Slot)>,
    /// Claims compared with one of our points.
    compared: u64,
}

impl Digests {
    /// Our log passed a point: keep it, and compare the claims that waited for it.
    pub fn passed(&mut self, ours: Digest) {
        if self.points.back().is_some_and(|p| p.slot >= ours.slot) {
            return;
        }
        if self.points.len() == DIGEST_POINTS {
            self.points.pop_front();
        }
        self.points.push_back(ours);
        let due: Vec<Node> = self.waiting.iter().filter(|(_, c)| c.slot <= ours.slot).map(|(n, _)| *n).collect();
        for node in due {
            let claim = self.waiting.remove(&node).expect("listed above");
            self.compare(node, claim);
        }
    }

    /// `from` claims its log's digest: compared now if we passed its slot,
    /// else when we do (only its earliest such claim waits, so that a node
    /// always ahead of us is still compared).
    ///
    /// A claim further ahead of our latest point than any honest node's log
    /// can be ([`crate::MAX_SLOT_STEP`]) is ignored, so that a key holder
    /// cannot hold the places of claims that wait with claims we never reach.
    pub fn heard(&mut self, from: Node, claim: Digest) {
        if claim.slot.0 == 0 || !claim.slot.0.is_multiple_of(DIGEST_EVERY) {
            return;
        }
        let latest = self.points.back().map_or(0, |p| p.slot.0);
        if claim.slot.0 <= latest {
            self.compare(from, claim);
        } else if claim.slot.0 - latest <= crate::MAX_SLOT_STEP
            && !self.waiting.contains_key(&from)
            && self.waiting.len() < DIGEST_NODES
        {
            self.waiting.insert(from, claim);
        }
    }

    fn compare(&mut self, node: Node, claim: Digest) {
        let Ok(i) = self.points.binary_search_by_key(&claim.slot, |p| p.slot) else {
            return; // too far back, or a point we did not pass with a known chain
        };
        self.compared += 1;
        let ours = self.points[i].chain;
        if ours == claim.chain {
            // Equal chains: the logs agree up to there, so a node found to
            // differ before has had its log replaced since (or ours was).
            if self.diverged.remove(&node).is_some() {
                self.agreed.push((node, claim.slot));
            }
        } else if !self.diverged.contains_key(&node) && self.diverged.len() < DIGEST_NODES {
            let d = Divergence { slot: claim.slot, ours, theirs: claim.chain };
            self.diverged.insert(node, d);
            self.found.push((node, d));
        }
    }

    /// Divergences found since the last call, each node once.
    pub fn take_found(&mut self) -> Vec<(Node, Divergence)> {
        std::mem::take(&mut self.found)
    }

    /// Nodes found to differ whose later claim matched ours, and where, since the last call.
    pub fn take_agreed(&mut self) -> Vec<(Node, Slot)> {
        std::mem::take(&mut self.agreed)
    }

    /// Every node found to differ from us, and where.
    pub fn diverged(&self) -> &BTreeMap<Node, Divergence> {
        &self.diverged
    }

    /// Claims compared with one of our points so far.
    pub fn compared(&self) -> u64 {
        self.compared
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::NodeId;

    use super::*;

    fn at(slot: u64, chain: u64) -> Digest {
        Digest { slot: Slot(slot), chain }
    }

    const A: Node = Node::Acceptor(NodeId(3));
    const P: Node = Node::Proposer(NodeId(2));

    #[test]
    fn a_claim_behind_us_is_compared_at_once() {
        let mut d = Digests::default();
        d.passed(at(64, 1));
        d.passed(at(128, 2));
        d.heard(A, at(64, 1));
        assert!(d.take_found().is_empty());
        assert_eq!(d.compared(), 1);
        d.heard(P, at(64, 9));
        assert_eq!(d.take_found(), vec![(P, Divergence { slot: Slot(64), ours: 1, theirs: 9 })]);
        // Once per node: its later claims differ too, and say nothing new.
        d.heard(P, at(128, 10));
        assert!(d.take_found().is_empty());
        assert_eq!(d.diverged().len(), 1);
        // Its log replaced (moved away, copied from its peers): a claim that matches ours clears it.
        d.heard(P, at(128, 2));
        assert_eq!(d.take_agreed(), vec![(P, Slot(128))]);
        assert!(d.diverged().is_empty());
    }

    #[test]
    fn a_claim_ahead_of_us_waits_until_we_get_there() {
        let mut d = Digests::default();
        d.passed(at(64, 1));
        d.heard(P, at(192, 7));
        // Its next claim, further still, does not push the first back.
        d.heard(P, at(256, 8));
        d.passed(at(128, 2));
        assert_eq!(d.compared(), 0);
        d.passed(at(192, 3));
        assert_eq!(d.take_found(), vec![(P, Divergence { slot: Slot(192), ours: 3, theirs: 7 })]);
    }

    #[test]
    fn a_claim_we_cannot_match_is_not_a_divergence() {
        let mut d = Digests::default();
        for i in 1..=(DIGEST_POINTS as u64 + 10) {
            d.passed(at(i * DIGEST_EVERY, i));
        }
        // Too far back: forgotten. Between points, or at 0: no claim of an honest node.
        d.heard(A, at(DIGEST_EVERY, 99));
        d.heard(A, at(DIGEST_EVERY * 20 + 1, 99));
        d.heard(A, at(0, 99));
        // Further ahead than any honest log can be: not kept to wait.
        let mut ahead = Digests::default();
        ahead.passed(at(64, 1));
        ahead.heard(P, at(64 + crate::MAX_SLOT_STEP + DIGEST_EVERY, 99));
        assert!(ahead.waiting.is_empty());
        // A point we skipped (our chain was unknown there) is not compared.
        let mut gap = Digests::default();
        gap.passed(at(64, 1));
        gap.passed(at(256, 4));
        gap.heard(P, at(128, 99));
        assert!(d.take_found().is_empty() && gap.take_found().is_empty());
        assert_eq!(d.compared() + gap.compared(), 0);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let mut d = Digests::default();
        for i in 0..10 * DIGEST_NODES as u32 {
            d.heard(Node::Acceptor(NodeId(i)), at(64, u64::from(i)));
        }
        assert_eq!(d.waiting.len(), DIGEST_NODES);
        d.passed(at(64, 12345));
        assert_eq!(d.diverged().len(), DIGEST_NODES);
        for i in 1..=(3 * DIGEST_POINTS as u64) {
            d.passed(at(64 + i * DIGEST_EVERY, i));
        }
        assert_eq!(d.points.len(), DIGEST_POINTS);
    }
}
