//! Who leads: the start-up probe, election steps, heartbeats, and fencing by
//! higher ballots.

use paxos_proto::{Ballot, Heartbeat, Message, Nack, Node, NodeId, Probe, ProbeReply, Trim};
use tracing::{debug, info};

use super::{Phase, Proposer};
use crate::Ignored;

impl Proposer {
    /// One step of the election, on every tick.
    pub(super) fn step_election(&mut self) {
        let rightful = self.election.rightful_leader(self.now);
        match self.phase {
            Phase::Follower if rightful == self.cfg.id => {
                if self.election.may_campaign(self.now)
                    && self.now >= self.campaign_after
                    && self.probe.is_none()
                    && self.max_round < self.round_ceiling
                    && !self.far_behind()
                {
                    self.start_phase1();
                }
            }
            Phase::Follower => {
                // We held client values expecting to lead; a better proposer showed up.
                if !self.clients.queue.is_empty() || !self.clients.waiting.is_empty() {
                    self.hand_over_clients();
                }
            }
            Phase::Candidate(_) if rightful != self.cfg.id => {
                info!(node = %self.cfg.id, ballot = %self.ballot, leader = %rightful, "a live proposer outranks us; stepping down");
                self.step_down();
            }
            // A leader keeps leading until a higher ballot fences it: a better
            // proposer that just came back takes over by campaigning, so the
            // cluster is never without a leader while it waits to be allowed to.
            Phase::Candidate(_) | Phase::Leader(_) => {}
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
    pub(super) fn send_probe(&mut self) {
        let Some(answered) = self.probe else { return };
        let probe = Probe { nonce: self.cfg.incarnation };
        for (i, a) in self.cfg.acceptors.iter().enumerate() {
            if answered & (1 << i) == 0 {
                self.ready.send(Node::Acceptor(*a), Message::Probe(probe.clone()));
            }
        }
    }

    pub(super) fn on_probe_reply(&mut self, idx: usize, m: ProbeReply) -> Result<(), Ignored> {
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

    /// Back to follower. Values in flight stay queued if we expect to lead again
    /// soon (preempted while still the rightful leader); otherwise their clients
    /// are sent to the leader.
    pub(super) fn step_down(&mut self) {
        assert!(!matches!(self.phase, Phase::Follower), "only a candidate or a leader steps down");
        let proposed = match std::mem::replace(&mut self.phase, Phase::Follower) {
            Phase::Leader(p2) => p2.into_values(),
            Phase::Candidate(_) | Phase::Follower => Vec::new(),
        };
        self.leader_hint = self.leader_hint.filter(|(p, _)| *p != self.cfg.id);
        if self.election.rightful_leader(self.now) == self.cfg.id {
            // In slot order, ahead of values that never had a slot.
            for value in proposed.into_iter().rev() {
                self.clients.requeue(&self.learner, value);
            }
        } else {
            self.hand_over_clients();
        }
    }

    /// Sends every waiting client to the leader and forgets their requests.
    pub(super) fn hand_over_clients(&mut self) {
        let leader = self.leader();
        for (client, seq) in std::mem::take(&mut self.clients.waiting) {
            self.redirect(client, seq, leader);
        }
        self.clients.queue.clear();
        self.clients.proposed.clear();
    }

    pub(super) fn on_nack(&mut self, m: Nack) -> Result<(), Ignored> {
        self.see_round(m.promised);
        if m.ballot == self.ballot && m.promised > self.ballot {
            self.fenced(m.promised, "an acceptor promised a higher ballot");
        }
        Ok(())
    }

    /// Ballots fence leadership: a candidate or leader that sees a higher
    /// ballot at work steps down, and waits a heartbeat before it may campaign
    /// again so that the other proposer's heartbeats can arrive first.
    pub(super) fn fenced(&mut self, seen: Ballot, why: &'static str) {
        if matches!(self.phase, Phase::Follower) || seen <= self.ballot {
            return;
        }
        info!(node = %self.cfg.id, ballot = %self.ballot, seen = %seen, why, "stepping down");
        self.step_down();
        self.campaign_after = self.now + self.cfg.heartbeat_ticks;
    }

    pub(super) fn send_heartbeats(&mut self) {
        let leading = matches!(self.phase, Phase::Leader(_));
        let hb = Heartbeat {
            ballot: self.ballot,
            leader: leading,
            decided: self.learner.decided(),
            known: self.learner.known(),
        };
        for p in self.peers.keys() {
            self.ready.send(Node::Proposer(*p), Message::Heartbeat(hb.clone()));
        }
        if leading {
            // Every proposer learned everything below the lowest decided point:
            // acceptors may forget it (the seed's garbage collection).
            let below = self.peers.values().map(|p| p.decided).chain([self.learner.decided()]).min();
            if let Some(below) = below.filter(|b| b.0 > 0) {
                for a in &self.cfg.acceptors {
                    self.ready.send(Node::Acceptor(*a), Message::Trim(Trim { below }));
                }
            }
        }
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, m: Heartbeat) -> Result<(), Ignored> {
        self.see_round(m.ballot);
        // A peer's progress is what it said last (an honest peer's only
        // grows), believed only as far as anyone could make it from what we
        // know: a hostile claim is bounded, and the peer's next word replaces it.
        let plausible = paxos_proto::Slot(self.learner.known().0.saturating_add(crate::MAX_SLOT_STEP));
        let peer = self.peers.get_mut(&from).expect("checked member");
        peer.decided = m.decided.min(plausible);
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
}
