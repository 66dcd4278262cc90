//! Leader election among proposers: the live proposer with the highest id leads.
//!
//! This is the seed's rule, made safe by ballots: election only decides who
//! *tries* to lead. Two proposers that both believe they lead (a partition, a
//! late heartbeat) fight with ballots, and acceptors let at most one of them
//! get anything chosen per ballot, so safety never depends on the election.

use std::collections::BTreeMap;

use paxos_proto::NodeId;

use crate::Tick;

/// Who has been heard from, and so who should lead.
#[derive(Debug)]
pub(crate) struct Election {
    id: NodeId,
    timeout_ticks: u64,
    /// When each peer proposer was last heard from.
    last_heard: BTreeMap<NodeId, Tick>,
    /// When this proposer started; it waits one timeout before it claims
    /// leadership so that it first hears the peers that outrank it (the seed
    /// starts every proposer as primary).
    started: Tick,
}

impl Election {
    pub(crate) fn new(id: NodeId, timeout_ticks: u64, now: Tick) -> Self {
        Election { id, timeout_ticks, last_heard: BTreeMap::new(), started: now }
    }

    /// A message from `peer` arrived at tick `now`.
    pub(crate) fn heard(&mut self, peer: NodeId, now: Tick) {
        if peer != self.id {
            self.last_heard.insert(peer, now);
        }
    }

    /// Forgets every peer but those `keep` says to (the members of a new configuration).
    pub(crate) fn retain(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.last_heard.retain(|p, _| keep(*p));
    }

    /// True if `peer` was heard from within the election timeout.
    pub(crate) fn alive(&self, peer: NodeId, now: Tick) -> bool {
        peer == self.id || self.last_heard.get(&peer).is_some_and(|t| now.since(*t) < self.timeout_ticks)
    }

    /// The proposer that should lead as seen from here: the highest live id.
    pub(crate) fn rightful_leader(&self, now: Tick) -> NodeId {
        self.last_heard
            .keys()
            .copied()
            .filter(|p| self.alive(*p, now))
            .chain(std::iter::once(self.id))
            .max()
            .expect("the chain holds our own id")
    }

    /// The highest live id that `eligible` takes (ourselves included), or
    /// [`Election::rightful_leader`] when it takes none: the rule among the
    /// proposers fit to lead, falling back to all of them.
    pub(crate) fn rightful_leader_among(&self, now: Tick, eligible: impl Fn(NodeId) -> bool) -> NodeId {
        self.last_heard
            .keys()
            .copied()
            .filter(|p| self.alive(*p, now))
            .chain(std::iter::once(self.id))
            .filter(|p| eligible(*p))
            .max()
            .unwrap_or_else(|| self.rightful_leader(now))
    }

    /// True once this proposer has waited long enough to hear its betters.
    pub(crate) fn may_campaign(&self, now: Tick) -> bool {
        now >= self.started + self.timeout_ticks
    }

    /// Peers heard within the timeout.
    pub(crate) fn live_peers(&self, now: Tick) -> impl Iterator<Item = NodeId> + '_ {
        self.last_heard.keys().copied().filter(move |p| self.alive(*p, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's rule: the live proposer with the highest id leads.
    #[test]
    fn highest_live_id_leads() {
        let mut e = Election::new(NodeId(2), 10, Tick(0));
        assert_eq!(e.rightful_leader(Tick(0)), NodeId(2));
        e.heard(NodeId(3), Tick(5));
        assert_eq!(e.rightful_leader(Tick(5)), NodeId(3));
        e.heard(NodeId(1), Tick(6));
        assert_eq!(e.rightful_leader(Tick(14)), NodeId(3));
        // Proposer 3 falls silent for a whole timeout: 2 leads again.
        assert_eq!(e.rightful_leader(Tick(15)), NodeId(2));
    }

    /// Among the eligible, the highest live id leads; with none eligible, the rule of all.
    #[test]
    fn the_highest_live_eligible_id_leads() {
        let mut e = Election::new(NodeId(2), 10, Tick(0));
        e.heard(NodeId(3), Tick(5));
        e.heard(NodeId(1), Tick(5));
        assert_eq!(e.rightful_leader_among(Tick(5), |p| p != NodeId(3)), NodeId(2));
        assert_eq!(e.rightful_leader_among(Tick(5), |p| p == NodeId(1)), NodeId(1));
        assert_eq!(e.rightful_leader_among(Tick(5), |_| false), NodeId(3));
        // An eligible proposer that fell silent does not count.
        assert_eq!(e.rightful_leader_among(Tick(15), |p| p == NodeId(1)), NodeId(2));
    }

    /// No proposer claims leadership before one election timeout has passed.
    #[test]
    fn waits_one_timeout_before_campaigning() {
        let e = Election::new(NodeId(1), 10, Tick(3));
        assert!(!e.may_campaign(Tick(12)));
        assert!(e.may_campaign(Tick(13)));
    }
}
