//! What the learner applied, and catch-up between proposers.

use paxos_proto::{
    CatchUp, CatchUpReply, ClientError, ClientErrorKind, ClientId, ClientReply, Message, Node, NodeId, Slot, Value,
};
use tracing::debug;

use super::{Phase, Proposer, CATCH_UP_LIMIT};
use crate::{Ignored, ProposerOp, MAX_BATCH_BYTES};

impl Proposer {
    /// Persists what the learner applied and answers the clients waiting for it.
    pub(super) fn after_learning(&mut self) {
        for a in self.learner.take_applied() {
            let lost = match &mut self.phase {
                Phase::Leader(p2) => p2.applied(a.slot),
                Phase::Follower | Phase::Candidate(_) => None,
            };
            if let Some(value) = lost {
                // Another ballot chose something else here (we led with a stale
                // ballot): our value still needs a slot.
                self.clients.requeue(&self.learner, value);
            }
            if let Value::Command(c) = &a.value {
                if self.clients.proposed.get(&c.client).is_some_and(|s| *s <= c.seq) {
                    self.clients.proposed.remove(&c.client);
                }
                if self.clients.waiting.get(&c.client) == Some(&c.seq) {
                    self.clients.waiting.remove(&c.client);
                    self.answer_applied(c.client, c.seq);
                }
            }
            self.ready.persist.push(ProposerOp::Learn { slot: a.slot, value: a.value });
        }
    }

    /// Answers a request whose client already has a request applied. The
    /// answer rests on decided values only (durable at a majority of
    /// acceptors), not on this proposer's own log, so it need not wait for it.
    pub(super) fn answer_applied(&mut self, client: ClientId, seq: u64) {
        let session = self.learner.session(client).expect("an applied command has a session");
        let msg = if session.seq == seq {
            Message::ClientReply(ClientReply { seq, slot: session.slot })
        } else {
            Message::ClientError(ClientError { seq, kind: ClientErrorKind::Stale })
        };
        self.ready.send_early(Node::Client(client), msg);
    }

    /// Asks a peer for decided slots we lack.
    pub(super) fn catch_up(&mut self) {
        if self.now < self.catch_up_after {
            return;
        }
        let decided = self.learner.decided();
        let ahead = self
            .peers
            .iter()
            .filter(|(p, info)| info.decided > decided && self.election.alive(**p, self.now))
            .max_by_key(|(_, info)| info.decided)
            .map(|(p, _)| *p);
        let target = ahead.or_else(|| {
            // A hole below a decided slot that outlives a retransmission is worth asking about.
            let holed = self.learner.known() > decided && matches!(self.phase, Phase::Follower);
            holed.then(|| self.leader()).flatten().filter(|p| *p != self.cfg.id)
        });
        if let Some(p) = target {
            self.catch_up_after = self.now + self.cfg.retransmit_ticks;
            debug!(node = %self.cfg.id, to = %p, slot = %decided, "catching up");
            let request = CatchUp { from: decided, limit: CATCH_UP_LIMIT };
            self.ready.send(Node::Proposer(p), Message::CatchUp(request));
        }
    }

    /// A peer asks for decided entries: as many as fit one datagram, from its slot on.
    pub(super) fn on_catch_up(&mut self, from: NodeId, m: CatchUp) -> Result<(), Ignored> {
        let log = self.learner.log();
        let start = (m.from.0 as usize).min(log.len());
        let mut bytes = 0;
        let entries: Vec<Value> = log[start..]
            .iter()
            .take(m.limit as usize)
            .take_while(|v| {
                bytes += v.wire_len();
                bytes <= MAX_BATCH_BYTES
            })
            .cloned()
            .collect();
        let reply = CatchUpReply { from: Slot(start as u64), entries, decided: self.learner.decided() };
        self.ready.send(Node::Proposer(from), Message::CatchUpReply(reply));
        Ok(())
    }

    /// Decided entries from a peer: learned in order; asks for the rest at once.
    pub(super) fn on_catch_up_reply(&mut self, from: NodeId, m: CatchUpReply) -> Result<(), Ignored> {
        // What the peer says of itself in its answer is the latest word on its progress.
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.decided = m.decided.min(peer.decided);
        }
        let mut result = Ok(());
        for (i, value) in m.entries.into_iter().enumerate() {
            let slot = Slot(m.from.0 + i as u64);
            if let Err(e) = self.learner.learn(slot, value) {
                result = Err(e);
            }
        }
        if result.is_ok() && self.learner.decided() < m.decided {
            // More to fetch: ask again at once rather than at the next tick.
            self.catch_up_after = self.now;
        }
        result
    }
}
