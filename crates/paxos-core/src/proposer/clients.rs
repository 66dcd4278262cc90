//! Clients: proposals, retries, redirects and log reads.

use paxos_proto::{
    json_str_len, ClientError, ClientErrorKind, ClientId, ClientPropose, ClientRedirect, Command, LogRead, LogReply,
    Message, Node, NodeId, Value, MAX_VALUE_BYTES,
};

use super::{Clients, Phase, Proposer};
use crate::{Ignored, Learner, MAX_BATCH_BYTES};

/// Bytes a log entry takes in a reply beside its value: the slot and the JSON framing.
pub const LOG_ENTRY_OVERHEAD_BYTES: usize = 32;

/// Bytes a no-op entry's absent value takes in a reply (`null`).
const NOOP_VALUE_BYTES: usize = 4;

impl Clients {
    /// Puts a client's value that lost its slot back at the front of the
    /// queue, unless it was applied meanwhile (no-ops need no slot of their own).
    pub(super) fn requeue(&mut self, learner: &Learner, value: Value) {
        if let Value::Command(c) = value {
            if !learner.is_applied(&c) {
                self.queue.push_front(c);
            }
        }
    }
}

impl Proposer {
    /// A client's proposal: refused, answered from its session, redirected, or queued.
    pub(super) fn on_client_propose(&mut self, client: ClientId, m: ClientPropose) -> Result<(), Ignored> {
        let seq = m.seq;
        if m.value.len() > MAX_VALUE_BYTES {
            let err = ClientError { seq, kind: ClientErrorKind::TooLarge };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        }
        if self.learner.session(client).is_some_and(|s| s.seq >= seq) {
            self.answer_applied(client, seq);
            return Ok(());
        }
        let expect_to_lead =
            !matches!(self.phase, Phase::Follower) || self.election.rightful_leader(self.now) == self.cfg.id;
        if !expect_to_lead {
            let leader = self.leader();
            self.redirect(client, seq, leader);
            return Ok(());
        }
        if self.clients.proposed.get(&client).is_some_and(|s| *s >= seq) {
            self.clients.waiting.insert(client, seq); // a retry of a request already on its way
            return Ok(());
        }
        if self.clients.queue.len() >= self.cfg.max_queue {
            let err = ClientError { seq, kind: ClientErrorKind::Busy };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        }
        self.clients.proposed.insert(client, seq);
        self.clients.waiting.insert(client, seq);
        self.clients.queue.push_back(Command { client, seq, data: m.value });
        Ok(())
    }

    pub(super) fn redirect(&mut self, client: ClientId, seq: u64, leader: Option<NodeId>) {
        let msg = Message::ClientRedirect(ClientRedirect { seq, leader });
        self.ready.send(Node::Client(client), msg);
    }

    /// A page of the decided log, as much as fits one datagram.
    pub(super) fn on_log_read(&mut self, client: ClientId, m: LogRead) -> Result<(), Ignored> {
        let mut bytes = 0;
        let entries = self
            .learner
            .entries(m.from)
            .take(m.limit as usize)
            .take_while(|e| {
                bytes += LOG_ENTRY_OVERHEAD_BYTES + e.value.as_deref().map_or(NOOP_VALUE_BYTES, json_str_len);
                bytes <= MAX_BATCH_BYTES
            })
            .collect();
        let reply = LogReply { req: m.req, entries, decided: self.learner.decided() };
        self.ready.send(Node::Client(client), Message::LogReply(reply));
        Ok(())
    }
}
