//! Who leads: the start-up probe, election steps, heartbeats, and fencing by
//! higher ballots.

use std::collections::BTreeSet;

use paxos_proto::{Ballot, Heartbeat, Message, Nack, NackReason, Node, NodeId, Prepare, Probe, ProbeReply, Slot};
use tracing::{debug, info};

use super::{Phase, Proposer};
use crate::Ignored;

impl Proposer {
    /// One step of the election, on every tick.
    pub(super) fn step_election(&mut self) {
        let rightful = self.election.rightful_leader(self.now);
        match self.phase {
            Phase::Follower if rightful == self.cfg.id => {
                if self.is_member()
                    && self.election.may_campaign(self.now)
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
            Phase::Candidate(_) if rightful != self.cfg.id || !self.is_member() => {
                info!(node = %self.cfg.id, ballot = %self.ballot, leader = %rightful, "a live proposer outranks us; stepping down");
                self.step_down();
            }
            // A leader keeps leading until a higher ballot fences it: a better
            // proposer that just came back takes over by campaigning, so the
            // cluster is never without a leader while it waits to be allowed to.
            Phase::Candidate(_) | Phase::Leader(_) => {}
        }
    }

    /// True while we lack decided slots that others have: a live peer learned
    /// much more than we have, or the log decided a configuration we have not
    /// learned (a ballot of a later epoch was seen). We catch up before we
    /// campaign rather than re-propose what others know, and a ballot must be
    /// of the epoch in force.
    pub(super) fn far_behind(&self) -> bool {
        if self.max_epoch > self.learner.epoch_number() {
            return true;
        }
        let decided = self.learner.decided().0;
        let window = self.cfg.window as u64;
        self.peers.iter().any(|(p, info)| info.decided.0 > decided + window && self.election.alive(*p, self.now))
    }

    /// Ballots must be unique even if this proposer lost its data dir (only a
    /// majority of acceptors is trusted to keep theirs). So before its first
    /// campaign a proposer asks the acceptors what they promised and waits for
    /// a majority: a previous start's phase 1 reached a quorum, so one of
    /// them names its round, and we campaign above it.
    pub(super) fn send_probe(&mut self) {
        let Some(answered) = &self.probe else { return };
        let probe = Probe { nonce: self.probe_nonce(), decided: self.learner.decided() };
        let missing: Vec<NodeId> = self.acceptor_ids().into_iter().filter(|a| !answered.contains(a)).collect();
        for a in missing {
            self.ready.send(Node::Acceptor(a), Message::Probe(probe.clone()));
        }
    }

    pub(super) fn on_probe_reply(&mut self, a: NodeId, m: ProbeReply) -> Result<(), Ignored> {
        if !self.acceptors.contains_key(&a) {
            return Err(Ignored("proposer: a probe reply of an acceptor that is no member"));
        }
        self.see_ballot(m.promised);
        self.see_epoch(m.epoch);
        // Every probe round has its own nonce: an answer to an earlier
        // start's probe, or a late answer of an acceptor's earlier
        // incarnation, must not tell us what it is now.
        let round = m.nonce.wrapping_sub(self.cfg.incarnation);
        if round > self.probe_round {
            return Ok(()); // an answer to an earlier start's probe
        }
        let Some(info) = self.acceptors.get_mut(&a) else {
            return Err(Ignored("proposer: a probe reply of an acceptor that is no member"));
        };
        if round + 1 >= self.probe_round {
            info.incarnation = Some((m.incarnation, round));
            info.decided = m.decided;
            info.joining = m.joining;
        }
        self.probe_answered(a);
        Ok(())
    }

    /// The nonce of the current probe round.
    fn probe_nonce(&self) -> u64 {
        self.cfg.incarnation.wrapping_add(self.probe_round)
    }

    /// Acceptor `a` answered this start's probe (or promised our ballot).
    pub(super) fn probe_answered(&mut self, a: NodeId) {
        let members: BTreeSet<NodeId> = self.acceptor_ids().into_iter().collect();
        let Some(answered) = self.probe.as_mut() else { return };
        answered.insert(a);
        if answered.intersection(&members).count() >= crate::majority(members.len()) {
            debug!(node = %self.cfg.id, round = self.max_round, "probe done");
            self.probe = None;
        }
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
        if self.election.rightful_leader(self.now) == self.cfg.id && self.is_member() {
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

    pub(super) fn on_nack(&mut self, a: NodeId, m: Nack) -> Result<(), Ignored> {
        self.see_ballot(m.promised);
        match m.reason {
            NackReason::Promised => {
                if m.ballot == self.ballot && m.promised > self.ballot {
                    self.fenced(m.promised, "an acceptor promised a higher ballot");
                }
            }
            NackReason::UnknownEpoch => {
                // An acceptor that missed our phase 1 (or the epoch's start): tell it of the epoch.
                if m.ballot == self.ballot && !matches!(self.phase, Phase::Follower) {
                    let epoch = self.learner.epoch();
                    let prepare = Prepare {
                        ballot: self.ballot,
                        from: self.learner.decided().max(epoch.start),
                        epoch: Some(epoch),
                    };
                    self.ready.send(Node::Acceptor(a), Message::Prepare(prepare));
                }
            }
            NackReason::NotMember => {
                if let Some(info) = self.acceptors.get_mut(&a) {
                    info.joining = true;
                }
            }
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

    /// Heartbeats to the peers; a leader also probes every acceptor (and
    /// every node it is adding): their answers say who lost its state, who
    /// caught up, and tell laggards how far the log is decided.
    pub(super) fn send_heartbeats(&mut self) {
        // Probe rounds count heartbeats, leading or not: how old a report is.
        self.probe_round += 1;
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
        // A proposer that lacks decided slots probes too: the answers say which
        // acceptors hold them (every proposer may have lost its disk).
        if leading || self.far_behind() {
            let probe = Probe { nonce: self.probe_nonce(), decided: self.learner.decided() };
            let targets: BTreeSet<NodeId> = self.acceptor_ids().into_iter().chain(self.joining.ids()).collect();
            for a in targets {
                self.ready.send(Node::Acceptor(a), Message::Probe(probe.clone()));
            }
        }
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, m: Heartbeat) -> Result<(), Ignored> {
        self.see_ballot(m.ballot);
        // A peer's progress is what it said last (an honest peer's only
        // grows), believed only as far as anyone could make it from what we
        // know: a hostile claim is bounded, and the peer's next word replaces it.
        let plausible = Slot(self.learner.known().0.saturating_add(crate::MAX_SLOT_STEP));
        let decided = m.decided.min(plausible);
        self.heard_ahead(Node::Proposer(from), decided);
        let Some(peer) = self.peers.get_mut(&from) else {
            // Not a member of the configuration we know: only a hint of where to catch up from.
            return Ok(());
        };
        peer.decided = decided;
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
