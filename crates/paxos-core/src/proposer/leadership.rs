//! Who leads: the start-up probe, election steps, heartbeats, and fencing by
//! higher ballots.

use std::collections::{BTreeMap, BTreeSet};

use paxos_proto::{
    Ballot, ClientId, Heartbeat, Member, Message, Nack, NackReason, Node, NodeId, Prepare, Probe, ProbeReply, Slot,
    TimeoutNow, TransferReply, TransferRequest, Written,
};
use tracing::{debug, error, info, warn};

use super::{AcceptorInfo, Kept, Phase, Proposer};
use crate::Ignored;

impl Proposer {
    /// One step of the election, on every tick.
    pub(super) fn step_election(&mut self) {
        let rightful = self.rightful_leader();
        match self.phase {
            Phase::Follower if self.should_lead() => {
                if self.may_campaign() {
                    if self.prevoted() {
                        self.short_of_quorum = None;
                        self.start_phase1();
                    } else {
                        self.send_prevote();
                        self.explain_no_campaign();
                    }
                }
            }
            Phase::Follower => {
                // We held client values expecting to lead; another proposer leads.
                if !self.clients.queue.is_empty() || !self.clients.waiting.is_empty() {
                    self.hand_over_clients();
                }
            }
            // A candidate makes room for a live proposer of a higher id, but
            // not for one that lacks more than a window of what we decided:
            // that one does not campaign before it has caught up
            // (`far_behind`), and nobody would lead meanwhile (a proposer
            // just added, with an empty log). A candidate whose decided log
            // cannot be read makes room for the peer that should lead in its
            // place whatever it lacks (that one does not wait to catch up
            // from us) and however its campaign started.
            Phase::Candidate(_)
                if (rightful != self.cfg.id
                    && ((self.kept.is_none() && !self.behind_us(rightful)) || self.damaged))
                    || !self.is_member() =>
            {
                info!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, leader = rightful.0, "a live proposer outranks us; stepping down");
                self.step_down();
            }
            // A leader that no longer hears a quorum of acceptors steps down
            // (check quorum): others defer to a live leader, so one cut off
            // from the acceptors must make room. A new leader first gets an
            // election timeout to be heard: the promises that elected it may
            // be older than that (a campaign through a long partition).
            Phase::Leader(ref p2)
                if self.now.since(p2.since) >= self.cfg.election_timeout_ticks && !self.hears_quorum() =>
            {
                info!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, "no quorum of acceptors heard within an election timeout; stepping down");
                self.step_down();
                self.campaign_after = self.now + self.cfg.election_timeout_ticks;
            }
            // A leader whose decided log cannot be read hands leadership to
            // the live peer that should lead in its place (see `step_aside`).
            Phase::Leader(_) if self.damaged && rightful != self.cfg.id => self.step_aside(rightful),
            // Otherwise a leader keeps leading until a higher ballot fences it.
            Phase::Candidate(_) | Phase::Leader(_) => {}
        }
    }

    /// The seed's rule, made stable: with no live leader, the live member
    /// with the highest id should lead; a live leader is not preempted by a
    /// proposer that comes back and hears it (leadership moves on purpose
    /// with a transfer).
    pub(super) fn should_lead(&self) -> bool {
        self.is_member() && self.rightful_leader() == self.cfg.id && self.live_leader().is_none()
    }

    /// The proposer that should lead as seen from here: the live one with
    /// the highest id among those whose decided log can be read (none said
    /// a read of it failed), or among all when none can. A leader must
    /// serve its log: peers and acceptors that are behind catch up from it,
    /// and while it leads, the slots it alone learned are recovered from
    /// nowhere else (a new leader recovers them from the acceptors' votes).
    pub(super) fn rightful_leader(&self) -> NodeId {
        self.election.rightful_leader_among(self.now, |p| {
            if p == self.cfg.id {
                !self.damaged
            } else {
                self.peers.get(&p).is_none_or(|info| !info.damaged)
            }
        })
    }

    /// A leader whose decided log cannot be read (see [`Proposer::damaged`])
    /// hands leadership to `to`, the live peer that should lead in its
    /// place, as a transfer does (`TimeoutNow`): `to` campaigns at once, and
    /// this proposer does not campaign while `to` lives. Sent again each
    /// election timeout until `to`'s ballot fences us (`to` may not be able
    /// to campaign yet: it has not probed the acceptors, say).
    fn step_aside(&mut self, to: NodeId) {
        if self.stepped_aside.is_some_and(|t| self.now.since(t) < self.cfg.election_timeout_ticks) {
            return;
        }
        self.stepped_aside = Some(self.now);
        info!(node = %Node::Proposer(self.cfg.id), to = %Node::Proposer(to), "our decided log cannot be read: handing leadership over");
        self.ready.send(Node::Proposer(to), Message::TimeoutNow(TimeoutNow { ballot: self.ballot }));
    }

    /// True when nothing but the pre-vote keeps this follower, the rightful
    /// leader, from campaigning.
    fn may_campaign(&self) -> bool {
        self.election.may_campaign(self.now)
            && self.now >= self.campaign_after
            && self.probed()
            && self.max_round < self.round_ceiling
            && !self.far_behind()
    }

    /// Pre-vote: true when a quorum of the acceptors in force answered a
    /// probe of this round or the last without naming another leader.
    ///
    /// An acceptor names the proposer of the ballot it promised while that
    /// one's lease lasts: it had live word that it leads (a new vote in its
    /// accept, or its probe as leader echoing the acceptor's challenge)
    /// within two heartbeats. Without the pre-vote, a
    /// proposer cut off until a heal, which heard no leader meanwhile,
    /// campaigns as the highest live id it knows before the leader's next
    /// heartbeat reaches it, and its ballot fences a live leader: a healed
    /// partition moved leadership. A leader that died or stepped down
    /// stops renewing its lease, so it delays a campaign by at most two
    /// heartbeats (and one round trip), less than the election timeout a
    /// follower waits before it campaigns. A transfer (`TimeoutNow`) skips it.
    pub(super) fn prevoted(&self) -> bool {
        if self.defects.no_prevote {
            return true;
        }
        let fresh = |info: &super::AcceptorInfo| {
            !info.joining
                && info
                    .named
                    .is_some_and(|(leader, round)| self.fresh(round) && leader.is_none_or(|l| l == self.cfg.id))
        };
        let config = &self.learner.epoch().config;
        let free = config.acceptors.iter().filter(|m| self.acceptors.get(&m.id).is_some_and(fresh)).count();
        free >= self.quorum()
    }

    /// Says why this proposer, which should lead, does not campaign, when
    /// the pre-vote fails because fewer acceptors than a quorum answer at
    /// all: once they have been too few for an election timeout, and again
    /// when their count changes. Before the first configuration is decided
    /// a quorum is larger than a majority (see [`crate::quorum`]), so a new
    /// cluster with a majority of its acceptors up, but not that many, does
    /// not start; this is the line that tells the operator so.
    fn explain_no_campaign(&mut self) {
        let config = &self.learner.epoch().config;
        let heard = |a: &super::AcceptorInfo| a.named.is_some_and(|(_, round)| self.fresh(round));
        let answering = config.acceptors.iter().filter(|m| self.acceptors.get(&m.id).is_some_and(heard)).count();
        let (n, epoch, quorum) = (config.acceptors.len(), config.epoch, self.quorum());
        if answering >= quorum {
            self.short_of_quorum = None;
            return;
        }
        let (since, said) = *self.short_of_quorum.get_or_insert((self.now, None));
        if self.now.since(since) < self.cfg.election_timeout_ticks || said == Some(answering) {
            return;
        }
        self.short_of_quorum = Some((since, Some(answering)));
        let node = Node::Proposer(self.cfg.id);
        if epoch == 0 {
            warn!(
                %node, answering, quorum, acceptors = n,
                "cannot campaign: until the cluster's first configuration is decided, a quorum is one more than a \
                 majority of the file's acceptors (so that an acceptor losing its disk before it pins their \
                 incarnations cannot break agreement); start more of them"
            );
        } else {
            warn!(%node, answering, quorum, acceptors = n, epoch, "cannot campaign: fewer acceptors than a quorum answer");
        }
    }

    /// Asks the acceptors who leads, once per probe round, for the pre-vote.
    fn send_prevote(&mut self) {
        if self.prevote_round == Some(self.probe_round) {
            return;
        }
        self.prevote_round = Some(self.probe_round);
        self.prevotes += 1;
        debug!(node = %Node::Proposer(self.cfg.id), round = self.probe_round, "pre-vote: asking the acceptors who leads");
        for a in self.acceptor_ids() {
            let probe = self.probe_for(a);
            self.ready.send(Node::Acceptor(a), Message::Probe(probe));
        }
    }

    /// A probe of the current round for acceptor `a`. A leader's says that
    /// it leads, and echoes `a`'s last challenge: that renews its lease there.
    pub(super) fn probe_for(&self, a: NodeId) -> Probe {
        let leading = matches!(self.phase, Phase::Leader(_));
        let echo = if leading { self.acceptors.get(&a).map_or(0, |i| i.challenge) } else { 0 };
        Probe { nonce: self.probe_nonce(), decided: self.learner.decided(), leading, echo, wrote: self.wrote(a) }
    }

    /// True when a quorum of the acceptors in force answered within an election timeout.
    fn hears_quorum(&self) -> bool {
        self.acceptor_ids().into_iter().filter(|a| self.heard_lately(*a)).count() >= self.quorum()
    }

    /// Another proposer that leads and was heard from within the election timeout.
    pub(super) fn live_leader(&self) -> Option<NodeId> {
        self.leader_hint
            .map(|(p, _)| p)
            .filter(|p| *p != self.cfg.id && self.peers.contains_key(p) && self.election.alive(*p, self.now))
    }

    /// True while we lack decided slots that others have: a live peer learned
    /// much more than we have, or the log decided a configuration we have not
    /// learned (a ballot of a later epoch was seen within an election
    /// timeout). We catch up before we campaign rather than re-propose what
    /// others know, and a ballot must be of the epoch in force. The later
    /// epoch holds us back only while it is heard of: every node that
    /// learned it may have lost its disk since (its stop sign then is only
    /// accepted, and a campaign recovers it), and a hostile member may name
    /// an epoch nobody decided.
    pub(super) fn far_behind(&self) -> bool {
        if self.max_epoch > self.learner.epoch_number()
            && self.now.since(self.later_epoch_seen) < self.cfg.election_timeout_ticks
        {
            return true;
        }
        let decided = self.learner.decided().0;
        let window = self.cfg.window as u64;
        // A peer that cannot read its log is no reason to wait: we would
        // wait for ever if it alone learned those slots (then a campaign
        // recovers them from the acceptors' votes).
        self.peers
            .iter()
            .any(|(p, info)| !info.damaged && info.decided.0 > decided + window && self.election.alive(*p, self.now))
    }

    /// True when live peer `p` lacks more than a window of the slots we
    /// decided: to it, we are what [`Proposer::far_behind`] holds back for.
    fn behind_us(&self, p: NodeId) -> bool {
        let window = self.cfg.window as u64;
        self.peers.get(&p).is_some_and(|info| self.learner.decided().0 > info.decided.0 + window)
    }

    /// Ballots must be unique even if this proposer lost its data dir (only a
    /// majority of acceptors is trusted to keep theirs). So before its first
    /// campaign a proposer asks the acceptors what they promised and waits for
    /// a majority of the configuration it campaigns in: a previous start's
    /// phase 1 in that epoch reached a quorum of it, so one of them names its
    /// round, and we campaign above it.
    ///
    /// Only an acceptor that still is the incarnation the configuration pins
    /// counts: one that lost its state since forgot what it promised (it
    /// cannot vote either until it is pinned again). And the answers are
    /// weighed against the configuration in force when we campaign, not when
    /// they came: a proposer that lost its data dir starts from the cluster
    /// file's configuration and may learn the one in force only later.
    pub(super) fn probed(&self) -> bool {
        let Some(answered) = &self.probe else { return true };
        let config = &self.learner.epoch().config;
        let counted = config.acceptors.iter().filter(|m| counts(m, answered)).count();
        counted >= crate::majority(config.acceptors.len())
    }

    /// Asks the acceptors that have not answered the start-up probe as
    /// [`Proposer::probed`] counts, until it counts enough.
    pub(super) fn send_probe(&mut self) {
        if self.probed() {
            return;
        }
        let Some(answered) = &self.probe else { return };
        let missing: Vec<NodeId> =
            self.learner.epoch().config.acceptors.iter().filter(|m| !counts(m, answered)).map(|m| m.id).collect();
        for a in missing {
            let probe = self.probe_for(a);
            self.ready.send(Node::Acceptor(a), Message::Probe(probe));
        }
    }

    pub(super) fn on_probe_reply(&mut self, a: NodeId, m: ProbeReply) -> Result<(), Ignored> {
        if !self.acceptors.contains_key(&a) {
            return Err(Ignored("proposer: a probe reply of an acceptor that is no member"));
        }
        self.see_ballot(m.promised);
        self.see_epoch(m.epoch);
        self.heard_written(a, m.written);
        self.heard_digest(Node::Acceptor(a), m.digest);
        // Every probe round has its own nonce: an answer to an earlier
        // start's probe, or a late answer of an acceptor's earlier
        // incarnation, must not tell us what it is now.
        let round = m.nonce.wrapping_sub(self.cfg.incarnation);
        if round > self.probe_round {
            return Ok(()); // an answer to an earlier start's probe
        }
        // Promises only grow while an acceptor keeps its disk, and it sent
        // ours only once it was durable: an answer to a round sent after ours
        // arrived that reports a lower promise, as the same incarnation,
        // comes from a disk that lost writes it had synced (its tail zeroed,
        // or its data dir rolled back to an older copy). It votes on with
        // what it forgot, and may break agreement: nothing here can make it
        // rebuild, so say it loudly, once (README, Known limits).
        let forgot =
            self.acceptors.get(&a).and_then(|i| i.promised_us).filter(|(ballot, incarnation, at)| {
                round > *at && m.incarnation == *incarnation && m.promised < *ballot
            });
        if let Some((ballot, ..)) = forgot {
            if let Some(info) = self.acceptors.get_mut(&a) {
                info.promised_us = None;
            }
            self.acceptor_writes_lost += 1;
            error!(
                node = %Node::Proposer(self.cfg.id), acceptor = %Node::Acceptor(a), %ballot, promised = %m.promised,
                "an acceptor answers with a promise below the one it made us, as the same incarnation: its disk \
                 lost writes it had synced, and it may break agreement; stop it, move its data dir away and \
                 start it again (it then rebuilds from its peers)"
            );
        }
        let fresh = self.fresh(round);
        let Some(info) = self.acceptors.get_mut(&a) else {
            return Err(Ignored("proposer: a probe reply of an acceptor that is no member"));
        };
        // A late answer to an earlier round does not replace a later one's:
        // it may tell of the acceptor before it lost its disk. Nor does one
        // to the same round (a probe the network duplicated), unless it
        // says the acceptor cannot vote: of two such answers, the one made
        // after a loss is the one to keep, and it says so.
        let latest = info.incarnation.is_none_or(|(_, seen)| round > seen || (round == seen && m.joining));
        if fresh && latest {
            info.incarnation = Some((m.incarnation, round));
            info.decided = m.decided;
            info.joining = m.joining;
            info.named = Some((m.leader, round));
            info.challenge = m.challenge;
            if m.clock_ms > 0 {
                info.clock = Some((m.clock_ms, round));
            }
            self.refresh_stamp_bound();
        }
        self.probe_answered(a, m.incarnation);
        self.confirm_reads(a, round, m.promised);
        // An acceptor promised a higher ballot: our accepts would be refused
        // there, as a nack would say. An idle leader sends no accept, and
        // would otherwise lead on a superseded ballot (its followers and
        // clients sent to it) until a client's value came; promises only
        // grow, so even a late answer of this start says so truly.
        if m.promised > self.ballot {
            self.fenced(m.promised, "an acceptor answered a probe with a higher promise");
        }
        // The answer that completes a pre-vote starts the campaign now, not at the next tick.
        if matches!(self.phase, Phase::Follower) && self.should_lead() && self.may_campaign() && self.prevoted() {
            self.start_phase1();
        }
        Ok(())
    }

    /// Acceptor `a` answered (a probe, a prepare, an accept), or a peer
    /// said it had, saying it had written `written`. Whatever it answers,
    /// that much was durable: keep the most each start of it said, to send
    /// back ([`Proposer::wrote`]). An answer of its new start must not
    /// replace what its earlier one said: that is what the new start is
    /// checked against (an acceptor answers accepts long before our next
    /// probe). When every place is taken, a start of another incarnation
    /// than the one its last probe answer named gives way first, then the
    /// start of the fewest operations; a claim of another incarnation than
    /// that one (a late answer from before it lost its disk) takes only a
    /// free place.
    pub(super) fn heard_written(&mut self, a: NodeId, written: Option<Written>) {
        let (Some(w), Some(info)) = (written, self.acceptors.get_mut(&a)) else { return };
        let current = info.incarnation.map(|(i, _)| i);
        let kept = &mut info.written;
        if let Some(k) = kept.iter_mut().flatten().find(|k| k.incarnation == w.incarnation && k.start == w.start) {
            k.ops = k.ops.max(w.ops);
            return;
        }
        if let Some(free) = kept.iter().position(Option::is_none) {
            kept[free] = Some(w);
            return;
        }
        if current.is_some_and(|i| i != w.incarnation) {
            return;
        }
        let weakest = |k: &Option<Written>| k.map(|k| (Some(k.incarnation) == current, k.ops));
        let place = (0..kept.len()).min_by_key(|i| weakest(&kept[*i])).unwrap_or(0);
        let stronger = kept[place].is_some_and(|k| Some(k.incarnation) == current && k.ops > w.ops);
        if !stronger {
            kept[place] = Some(w);
        }
    }

    /// What acceptor `a` said it had written, for our probes and prepares
    /// to it: an acceptor that finds it holds less than an earlier start of
    /// it said, as the same incarnation, lost writes it had synced, and rebuilds.
    pub(super) fn wrote(&self, a: NodeId) -> Vec<Written> {
        AcceptorInfo::wrote_by(&self.acceptors, a)
    }

    /// True when an answer to probe round `round` is fresh: the round went
    /// out at the last heartbeat or the one before, or since.
    pub(super) fn fresh(&self, round: u64) -> bool {
        round >= self.fresh_from
    }

    /// The nonce of the current probe round.
    pub(super) fn probe_nonce(&self) -> u64 {
        self.cfg.incarnation.wrapping_add(self.probe_round)
    }

    /// Acceptor `a`, as `incarnation`, answered this start's probe.
    pub(super) fn probe_answered(&mut self, a: NodeId, incarnation: u64) {
        let was = self.probed();
        let Some(answered) = self.probe.as_mut() else { return };
        answered.insert(a, incarnation);
        if !was && self.probed() {
            debug!(node = %Node::Proposer(self.cfg.id), round = self.max_round, "probe done");
        }
    }

    /// Back to follower. Values in flight stay queued if we expect to lead again
    /// soon (preempted while still the rightful leader); otherwise their clients
    /// are sent to the leader.
    pub(super) fn step_down(&mut self) {
        assert!(!matches!(self.phase, Phase::Follower), "only a candidate or a leader steps down");
        self.kept = None;
        let proposed = match std::mem::replace(&mut self.phase, Phase::Follower) {
            Phase::Leader(p2) => p2.into_values(),
            Phase::Candidate(_) | Phase::Follower => Vec::new(),
        };
        self.leader_hint = self.leader_hint.filter(|(p, _)| *p != self.cfg.id);
        self.abandon_reads();
        if self.should_lead() {
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
        self.clients.clear();
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
                    let epoch = self.learner.epoch().clone();
                    let prepare = Prepare {
                        ballot: self.ballot,
                        from: self.learner.decided().max(epoch.start),
                        epoch: Some(epoch),
                        wrote: self.wrote(a),
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
        info!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, seen = %seen, why, "stepping down");
        self.step_down();
        self.campaign_after = self.campaign_after.max(self.now + self.cfg.heartbeat_ticks);
    }

    /// Heartbeats to the peers; a leader also probes every acceptor (and
    /// every node it is adding): their answers say who lost its state, who
    /// caught up, and tell laggards how far the log is decided.
    pub(super) fn send_heartbeats(&mut self) {
        // Heartbeats are the clock of how old a report is, leading or not.
        self.fresh_from = self.heartbeat_round;
        self.probe_round += 1;
        self.heartbeat_round = self.probe_round;
        let leading = matches!(self.phase, Phase::Leader(_));
        self.heartbeat_peers();
        // A proposer that lacks decided slots probes too: the answers say which
        // acceptors hold them (every proposer may have lost its disk).
        if leading || self.far_behind() {
            self.probe_all();
        }
    }

    /// A probe round that leaves after this moment: only answers to it (or
    /// to later rounds) tell what the acceptors were since. Returns it.
    ///
    /// One round serves every caller of one step: its probes wait in the
    /// `Ready` until the runtime takes it, after every input of the step,
    /// so they leave after each of them arrived. A stream of reads costs a
    /// round per batch of datagrams, not one per read.
    pub(super) fn probe_now(&mut self) -> u64 {
        if let Some(round) = self.step_round {
            return round;
        }
        self.probe_round += 1;
        self.probe_all();
        self.probe_round
    }

    /// The current probe round to every acceptor in force and every one being added.
    fn probe_all(&mut self) {
        let targets: BTreeSet<NodeId> = self.acceptor_ids().into_iter().chain(self.joining.ids()).collect();
        for a in targets {
            let probe = self.probe_for(a);
            self.ready.send(Node::Acceptor(a), Message::Probe(probe));
        }
        self.step_round = Some(self.probe_round);
    }

    /// A heartbeat to every peer: our ballot, whether we lead, and how far we learned.
    ///
    /// A new leader sends one at once too, not at its next heartbeat tick: a
    /// deposed leader (one that handed leadership over, say) otherwise sees no
    /// live leader and, as the highest live id, campaigns a heartbeat after it
    /// was fenced, taking leadership back; and followers send their clients
    /// here a heartbeat sooner.
    pub(super) fn heartbeat_peers(&mut self) {
        let hb = Heartbeat {
            ballot: self.ballot,
            leader: matches!(self.phase, Phase::Leader(_)),
            decided: self.learner.decided(),
            known: self.learner.known(),
            damaged: self.damaged,
            written: self.acceptors.iter().flat_map(|(a, i)| i.strongest().map(|w| (*a, w))).collect(),
            digest: self.learner.state().point,
        };
        for p in self.peers.keys() {
            self.ready.send(Node::Proposer(*p), Message::Heartbeat(hb.clone()));
        }
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, m: Heartbeat) -> Result<(), Ignored> {
        for (a, w) in &m.written {
            self.heard_written(*a, Some(*w));
        }
        self.heard_digest(Node::Proposer(from), m.digest);
        if m.damaged {
            // Its ballot's round still counts (ours go above it), but not its
            // epoch: a later epoch holds a campaign back until we learned it
            // (`far_behind`), and a peer that cannot read its log may be the
            // only one that did. A campaign recovers it from the votes.
            self.max_round = self.max_round.max(m.ballot.round);
        } else {
            self.see_ballot(m.ballot);
        }
        if m.leader {
            // The leader's commit index, when no accept carried it (idle).
            self.learner.learn_committed(m.ballot, m.decided);
        }
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
        peer.damaged = m.damaged;
        if m.leader && self.leader_hint.is_none_or(|(_, b)| m.ballot >= b) {
            self.leader_hint = Some((from, m.ballot));
        } else if !m.leader && self.leader_hint.is_some_and(|(p, _)| p == from) {
            // It stepped down, or this heartbeat is one it sent before it led,
            // delayed or reordered (its ballot cannot tell: a candidate says
            // "not leading" under the ballot it then leads with, a restarted
            // proposer under a lower one). Either way we wait two heartbeats
            // before we may campaign, so that a leader that still leads says
            // so first: its next heartbeat, and room for that one's delay.
            self.leader_hint = None;
            self.campaign_after = self.campaign_after.max(self.now + 2 * self.cfg.heartbeat_ticks);
        }
        // Any higher ballot fences us, not only a leader's: a peer that used it
        // may have got acceptors to promise it. Otherwise a leader that was cut
        // off (or failed) and comes back idle keeps a stale ballot forever, and
        // with no client traffic nothing would tell it: slots decided
        // meanwhile would stay unlearned. But not a damaged peer's ballot of
        // an epoch we have not learned: it hands leadership to us, and our
        // campaign, in the epoch we know, is how we recover from the votes
        // the configuration that started its epoch (which only it may have
        // learned); fenced by it, we would step down at each of its
        // heartbeats, for ever. The acceptors still refuse our ballot if
        // they promised its.
        if !m.damaged || m.ballot.epoch <= self.learner.epoch_number() {
            self.fenced(m.ballot, "a peer used a higher ballot");
        }
        Ok(())
    }
}

impl Proposer {
    /// An operator asks the leader to hand leadership to proposer `to`: it
    /// tells `to` to campaign at once (`TimeoutNow`); `to`'s higher ballot
    /// then fences us, and we do not take leadership back while it leads.
    pub(super) fn on_transfer_request(&mut self, client: ClientId, m: TransferRequest) -> Result<(), Ignored> {
        let reply = |leader: Option<NodeId>, error: Option<String>| {
            Message::TransferReply(TransferReply { req: m.req, leader, error })
        };
        let msg = if !matches!(self.phase, Phase::Leader(_)) {
            reply(self.leader(), Some(NOT_THE_LEADER.into()))
        } else if m.to == self.cfg.id {
            reply(Some(self.cfg.id), None)
        } else if !self.peers.contains_key(&m.to) {
            reply(Some(self.cfg.id), Some(format!("proposer {} is not a member", m.to)))
        } else if !self.election.alive(m.to, self.now) {
            reply(Some(self.cfg.id), Some(format!("proposer {} has not been heard from lately", m.to)))
        } else if self.peers.get(&m.to).is_some_and(|p| p.damaged) {
            let why = format!("proposer {} cannot read its decided log (a damaged segment): repair it first", m.to);
            reply(Some(self.cfg.id), Some(why))
        } else {
            info!(node = %Node::Proposer(self.cfg.id), to = %Node::Proposer(m.to), "handing leadership over");
            let now = TimeoutNow { ballot: self.ballot };
            self.ready.send(Node::Proposer(m.to), Message::TimeoutNow(now));
            reply(Some(m.to), None)
        };
        self.ready.send(Node::Client(client), msg);
        Ok(())
    }

    /// The leader hands leadership to us: campaign now, whatever the election says.
    pub(super) fn on_timeout_now(&mut self, from: NodeId, m: TimeoutNow) -> Result<(), Ignored> {
        self.see_ballot(m.ballot);
        // A leader deposed a moment ago may not have heard of it yet (leadership
        // was just handed to the sender): the sender's higher ballot says so.
        self.fenced(m.ballot, "a peer leading with a higher ballot hands leadership over");
        if !matches!(self.phase, Phase::Follower) || !self.is_member() || !self.peers.contains_key(&from) {
            return Ok(());
        }
        if !self.probed() || self.far_behind() || self.max_round >= self.round_ceiling {
            return Err(Ignored("proposer: asked to lead before it may campaign"));
        }
        if self.rightful_leader() != self.cfg.id && self.damaged {
            return Err(Ignored("proposer: asked to lead with a decided log it cannot read"));
        }
        // Only the leader we know, or a later one, hands leadership over: an
        // older hand-over is a replay (or very late), and would skip the
        // pre-vote to preempt a live leader.
        if self.leader_hint.is_some_and(|(_, b)| m.ballot < b) {
            return Err(Ignored("proposer: a hand-over older than the leader we know"));
        }
        info!(node = %Node::Proposer(self.cfg.id), from = %Node::Proposer(from), "leadership handed over to us: campaigning");
        self.leader_hint = None;
        self.start_phase1();
        // A campaign handed over to us goes on although a higher id is alive.
        self.kept = Some(Kept::HandedOver);
        Ok(())
    }
}

/// What a proposer that does not lead answers a transfer request with.
pub const NOT_THE_LEADER: &str = "not the leader";

/// True when member `m` answered the start-up probe (`answered`) as the
/// incarnation the configuration pins, or any when it pins none (epoch 0).
fn counts(m: &Member, answered: &BTreeMap<NodeId, u64>) -> bool {
    answered.get(&m.id).is_some_and(|inc| m.incarnation.is_none_or(|pin| pin == *inc))
}
