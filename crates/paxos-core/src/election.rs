//! Leader election among proposers: the live proposer with the highest id leads.
//!
//! This is the seed's rule, made safe by ballots: election only decides who
//! *tries* to lead. Two proposers that both believe they lead (a partition, a
//! late heartbeat) fight with ballots, and acceptors let at most one of them
//! get anything chosen per ballot, so safety never depends on the election.

use std::collections::BTreeMap;

use paxos_proto::NodeId;

/// Who has been heard from, and so who should lead.
#[derive(Debug)]
pub(crate) struct Election {
    id: NodeId,
    timeout_ticks: u64,
    /// The tick at which each peer proposer was last heard from.
    last_heard: BTreeMap<NodeId, u64>,
    /// Ticks since start; a proposer waits one timeout before it claims
    /// leadership so that it first hears the peers that outrank it (the seed
    /// starts every proposer as primary).
    started: u64,
}

impl Election {
    pub(crate) fn new(id: NodeId, timeout_ticks: u64, now: u64) -> Self {
        Election { id, timeout_ticks, last_heard: BTreeMap::new(), started: now }
    }

    /// A message from `peer` arrived at tick `now`.
    pub(crate) fn heard(&mut self, peer: NodeId, now: u64) {
        if peer != self.id {
            self.last_heard.insert(peer, now);
        }
    }

    /// True if `peer` was heard from within the election timeout.
    pub(crate) fn alive(&self, peer: NodeId, now: u64) -> bool {
        peer == self.id || self.last_heard.get(&peer).is_some_and(|t| now.saturating_sub(*t) < self.timeout_ticks)
    }

    /// The proposer that should lead as seen from here: the highest live id.
    pub(crate) fn rightful_leader(&self, now: u64) -> NodeId {
        self.last_heard
            .keys()
            .copied()
            .filter(|p| self.alive(*p, now))
            .chain(std::iter::once(self.id))
            .max()
            .expect("the chain holds our own id")
    }

    /// True once this proposer has waited long enough to hear its betters.
    pub(crate) fn may_campaign(&self, now: u64) -> bool {
        now >= self.started + self.timeout_ticks
    }

    /// Peers heard within the timeout.
    pub(crate) fn live_peers(&self, now: u64) -> impl Iterator<Item = NodeId> + '_ {
        self.last_heard.keys().copied().filter(move |p| self.alive(*p, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's rule: the live proposer with the highest id leads.
    #[test]
    fn highest_live_id_leads() {
        let mut e = Election::new(NodeId(2), 10, 0);
        assert_eq!(e.rightful_leader(0), NodeId(2));
        e.heard(NodeId(3), 5);
        assert_eq!(e.rightful_leader(5), NodeId(3));
        e.heard(NodeId(1), 6);
        assert_eq!(e.rightful_leader(14), NodeId(3));
        // Proposer 3 falls silent for a whole timeout: 2 leads again.
        assert_eq!(e.rightful_leader(15), NodeId(2));
    }

    /// No proposer claims leadership before one election timeout has passed.
    #[test]
    fn waits_one_timeout_before_campaigning() {
        let e = Election::new(NodeId(1), 10, 3);
        assert!(!e.may_campaign(12));
        assert!(e.may_campaign(13));
    }
}
