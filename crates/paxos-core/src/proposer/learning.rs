//! What the learner applied, and catch-up from proposers and acceptors.

use paxos_proto::{
    CatchUp, CatchUpReply, ClientError, ClientErrorKind, ClientId, ClientReply, Digest, Message, Node, Slot, Value,
};
use tracing::{debug, error, info, warn};

use super::NONCE_SALT;
use super::{Kept, Phase, Proposer, ReadFor, CATCH_UP_LIMIT, CATCH_UP_SWITCH_AFTER};
use crate::restart::{catch_up_reply, nonce};
use crate::{Ignored, LogPage, ProposerOp, MAX_BATCH_BYTES};

impl Proposer {
    /// Persists what the learner applied, answers the clients waiting for
    /// it, and follows a new configuration.
    pub(super) fn after_learning(&mut self) {
        let mut conflict = false;
        let mut applied = std::mem::take(&mut self.applied);
        self.learner.swap_applied(&mut applied);
        self.ready.persist.reserve(applied.len());
        for a in applied.drain(..) {
            let ours = match &mut self.phase {
                Phase::Leader(p2) => p2.applied(a.slot),
                Phase::Follower | Phase::Candidate(_) => None,
            };
            if let Some(value) = ours {
                // A higher ballot chose something else here: we lead with a
                // stale ballot, and must not say that this slot is decided
                // with our value (acceptors move what they accepted from us
                // below our commit into their decided logs). Our client's
                // value still needs a slot.
                if value != a.value {
                    conflict = true;
                    self.clients.requeue(&self.learner, value);
                }
            }
            if let Value::Command(c) = &a.value {
                if self.clients.proposed.get(&c.client).is_some_and(|a| a.seq <= c.seq) {
                    self.clients.proposed.remove(&c.client);
                }
                if self.clients.waiting.get(&c.client) == Some(&c.seq) {
                    self.clients.waiting.remove(&c.client);
                    if a.duplicate {
                        self.answer_applied(c.client, c.seq);
                    } else {
                        // Answered with the slot itself: a command stamped long ago
                        // may have a session that is already expired by the log's clock.
                        let reply = ClientReply { seq: c.seq, slot: a.slot };
                        self.ready.send_early(Node::Client(c.client), Message::ClientReply(reply));
                    }
                }
            }
            let slot = a.slot;
            self.ready.persist.push(ProposerOp::Learn { slot, value: a.value, duplicate: a.duplicate });
            if let Some(below) = crate::retention_point(slot, self.cfg.retain_slots) {
                if below > self.learner.state().start {
                    self.learner.retain(below);
                    self.ready.persist.push(ProposerOp::Retain(below));
                }
            }
        }
        self.applied = applied;
        self.report_divergences();
        if conflict && matches!(self.phase, Phase::Leader(_)) {
            warn!(node = %Node::Proposer(self.cfg.id), ballot = %self.ballot, "a slot we proposed was decided with another value; stepping down");
            self.step_down();
            self.campaign_after = self.now + self.cfg.heartbeat_ticks;
        }
        if self.learner.epoch_number() != self.known_epoch {
            self.new_epoch();
        }
        self.answer_restore();
    }

    /// `from` claims its decided log's digest: compared with ours ([`crate::digest`]).
    pub(super) fn heard_digest(&mut self, from: Node, claim: Option<Digest>) {
        if let Some(claim) = claim {
            self.learner.digests_mut().heard(from, claim);
            self.report_divergences();
        }
    }

    /// One ERROR line per node newly found to hold a log that differs from
    /// ours, and one INFO line per such node whose log agrees with ours again.
    fn report_divergences(&mut self) {
        for (peer, d) in self.learner.digests_mut().take_found() {
            error!(
                node = %Node::Proposer(self.cfg.id), %peer, slot = d.slot.0, ours = %format_args!("{:016x}", d.ours),
                theirs = %format_args!("{:016x}", d.theirs),
                "the decided log of a peer differs from ours at or before this slot (their digest is not ours): \
                 agreement is broken there (a bug, or a fault of memory or disk that no checksum caught); \
                 compare the logs (paxosctl log --node), keep the nodes of the majority's digest, and move the \
                 others' data dirs away"
            );
        }
        for (peer, slot) in self.learner.digests_mut().take_agreed() {
            info!(
                node = %Node::Proposer(self.cfg.id), %peer, slot = slot.0,
                "the decided log of a peer that differed from ours agrees with ours again up to this slot (one \
                 of the two was replaced)"
            );
        }
    }

    /// The log decided a new configuration: follow it.
    fn new_epoch(&mut self) {
        self.known_epoch = self.learner.epoch_number();
        let epoch = self.learner.epoch();
        info!(node = %Node::Proposer(self.cfg.id), epoch = epoch.config.epoch, start = epoch.start.0, member = self.is_member(), "a new configuration is in force");
        self.config_changed();
        match self.phase {
            Phase::Leader(_) if self.is_member() => {
                // The stop sign is decided: lead on in the next epoch, from its
                // first slot, without making room for a higher id meanwhile.
                self.start_phase1();
                self.kept = Some(Kept::NextEpoch);
            }
            Phase::Leader(_) | Phase::Candidate(_) => self.step_down(),
            Phase::Follower => {}
        }
        self.answer_members();
    }

    /// Answers a request whose client already has a request applied. The
    /// answer rests on decided values only (durable at a quorum of
    /// acceptors), not on this proposer's own log, so it need not wait for it.
    pub(super) fn answer_applied(&mut self, client: ClientId, seq: u64) {
        let Some(session) = self.learner.session(client) else {
            return; // expired meanwhile: the client's retry lands again
        };
        let msg = if session.seq == seq {
            Message::ClientReply(ClientReply { seq, slot: session.slot })
        } else {
            Message::ClientError(ClientError { seq, kind: ClientErrorKind::Stale })
        };
        self.ready.send_early(Node::Client(client), msg);
    }

    /// `node` said it decided every slot below `decided`: somewhere to catch up from.
    pub(super) fn heard_ahead(&mut self, node: Node, decided: Slot) {
        if decided <= self.learner.decided() {
            // Not ahead (any more): it may have lost its disk since it said it was.
            if self.ahead.is_some_and(|(n, _)| n == node) {
                self.ahead = None;
            }
            return;
        }
        if self.ahead.is_none_or(|(n, d)| n == node || decided > d) {
            self.ahead = Some((node, decided));
        }
    }

    /// Asks a peer (or an acceptor) for decided slots we lack: a live peer
    /// proposer ahead of us, else the node that said it is furthest ahead,
    /// else another live peer ahead, else an acceptor ahead, else the leader
    /// about a hole; one asked
    /// [`CATCH_UP_SWITCH_AFTER`] times in a row from the same slot in vain
    /// is passed for the next of them, round all of them.
    pub(super) fn catch_up(&mut self) {
        if self.now < self.catch_up_after || self.copying() {
            return;
        }
        let decided = self.learner.decided();
        if self.ahead.is_some_and(|(_, d)| d <= decided) {
            self.ahead = None;
        }
        // Every live peer ahead, the furthest first (of equals, the highest
        // id), so that one that leaves us unanswered (unable to read its
        // log: a damaged segment) gives way to the next one.
        let mut peers: Vec<(Slot, paxos_proto::NodeId)> = self
            .peers
            .iter()
            .filter(|(p, info)| info.decided > decided && self.election.alive(**p, self.now))
            .map(|(p, info)| (info.decided, *p))
            .collect();
        peers.sort_unstable_by(|x, y| y.cmp(x));
        let mut peers = peers.into_iter().map(|(_, p)| Some(Node::Proposer(p)));
        let peer = peers.next().flatten();
        let holed = || {
            // A hole below a decided slot that outlives a retransmission is
            // worth asking the leader about (if it is not behind us itself).
            let holed = self.learner.known() > decided && matches!(self.phase, Phase::Follower);
            let leader = holed.then(|| self.leader()).flatten().filter(|p| *p != self.cfg.id);
            leader.filter(|p| self.peers.get(p).is_none_or(|info| info.decided > decided)).map(Node::Proposer)
        };
        // Every acceptor ahead, the furthest first (of equals, the highest id),
        // so that one that stopped answering (gone, or its disk damaged)
        // gives way to the next one ahead, not to itself.
        let mut acceptors: Vec<(Slot, paxos_proto::NodeId)> = self
            .acceptors
            .iter()
            .filter(|(_, info)| info.decided > decided)
            .map(|(a, info)| (info.decided, *a))
            .collect();
        acceptors.sort_unstable_by(|x, y| y.cmp(x));
        let acceptors = acceptors.into_iter().map(|(_, a)| Some(Node::Acceptor(a)));
        let candidates: Vec<Option<Node>> =
            [peer, self.ahead.map(|(n, _)| n)].into_iter().chain(peers).chain(acceptors).chain([holed()]).collect();
        // The same node asked from the same slot this many times in a row
        // without an answer may be gone, or have moved where we cannot hear
        // it (removed and added again elsewhere while we were away), or be
        // unable to read its log: it is passed, and the next candidate not
        // passed yet is asked, until every one was; then from the first again.
        if self.passed.0 != decided {
            self.passed = (decided, Vec::new());
        }
        if let Some((n, d, _)) = self.asked {
            let unanswered = self.asked_times >= CATCH_UP_SWITCH_AFTER && d == decided;
            if unanswered && !self.defects.catch_up_never_switches && !self.passed.1.contains(&n) {
                self.passed.1.push(n);
            }
        }
        let mut ahead_of_us = candidates.iter().flatten();
        let mut target = ahead_of_us.clone().find(|n| !self.passed.1.contains(n)).copied();
        if target.is_none() {
            self.passed.1.clear();
            target = ahead_of_us.next().copied();
        }
        if let Some(to) = target {
            self.catch_up_after = self.now + self.cfg.retransmit_ticks;
            debug!(node = %Node::Proposer(self.cfg.id), to = %to, slot = decided.0, "catching up");
            // A request asked again (same node, same slot) keeps its nonce, so that a late answer still counts.
            let nonce = match self.asked {
                Some((n, d, nonce)) if n == to && d == decided => {
                    self.asked_times += 1;
                    nonce
                }
                _ => {
                    self.asked_times = 1;
                    self.requests += 1;
                    nonce(self.cfg.incarnation ^ NONCE_SALT, self.requests)
                }
            };
            let request = CatchUp { from: decided, limit: CATCH_UP_LIMIT, nonce };
            self.asked = Some((to, decided, nonce));
            self.ready.send(to, Message::CatchUp(request));
        }
    }

    /// A peer (or an acceptor rebuilding its log) asks for decided entries:
    /// as many as fit one datagram, from the cache or read from the store.
    pub(super) fn on_catch_up(&mut self, from: Node, m: CatchUp) -> Result<(), Ignored> {
        let decided = self.learner.decided();
        let start = m.from.min(decided);
        if start >= self.learner.cache_start() {
            let mut bytes = 0;
            let entries: Vec<Value> = self
                .learner
                .cached(start)
                .take(m.limit.min(CATCH_UP_LIMIT) as usize)
                .take_while(|(v, _)| {
                    bytes += v.wire_len();
                    bytes <= MAX_BATCH_BYTES
                })
                .map(|(v, _)| v.clone())
                .collect();
            let reply = CatchUpReply { from: start, entries, decided, epoch: None, nonce: m.nonce };
            self.ready.send(from, Message::CatchUpReply(reply));
            return Ok(());
        }
        self.read(start, m.limit, ReadFor::Peer(from, m.nonce, start))
    }

    /// A page read from the store for a catch-up.
    pub(super) fn reply_catch_up(&mut self, to: Node, nonce: u64, page: LogPage) {
        let entries = page.entries.into_iter().map(|e| e.value).collect();
        let (start, epoch) = (self.learner.state().start, self.learner.state().epoch.as_ref());
        let reply = catch_up_reply(nonce, page.from, entries, self.learner.decided(), start, epoch);
        self.ready.send(to, Message::CatchUpReply(reply));
    }

    /// Decided entries from a peer: learned in order; asks for the rest at once.
    pub(super) fn on_catch_up_reply(&mut self, from: Node, m: CatchUpReply) -> Result<(), Ignored> {
        // What the peer says of itself in its answer is the latest word on its progress.
        if let Node::Proposer(p) = from {
            if let Some(peer) = self.peers.get_mut(&p) {
                peer.decided = m.decided.min(peer.decided);
            }
        }
        if let Node::Acceptor(a) = from {
            if let Some(info) = self.acceptors.get_mut(&a) {
                info.decided = m.decided;
            }
        }
        let decided = self.learner.decided();
        if self.asked.is_some_and(|(n, _, _)| n == from) {
            // It answers: no reason to ask another (see `catch_up`).
            self.asked_times = 0;
        }
        // Only the answer to our last request, echoing its nonce, restarts the log (see `restart`).
        let asked = m.nonce != 0 && self.asked == Some((from, decided, m.nonce));
        let retained = self.cfg.retain_slots > 0;
        // (No entries: its log starts at its decided prefix, nothing decided since it restarted.)
        let holds = !m.entries.is_empty() || m.from == m.decided;
        if m.from > decided && holds && m.from <= m.decided && asked && retained {
            // Its log starts later: retention deleted what lies between (the
            // cluster retains, and the node we asked says so).
            // The log restarts there, with a peer's state (see `state`).
            self.restart_later(from, m.from, m.epoch);
            return Ok(());
        }
        let mut result = Ok(());
        for (i, value) in m.entries.into_iter().enumerate() {
            let slot = Slot(m.from.0 + i as u64);
            if let Err(e) = self.learner.learn(slot, value) {
                result = Err(e);
            }
        }
        self.heard_ahead(from, m.decided);
        if result.is_ok() && self.learner.decided() < m.decided {
            // More to fetch: ask again at once rather than at the next tick.
            self.catch_up_after = self.now;
        }
        result
    }
}
