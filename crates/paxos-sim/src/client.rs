//! A simulated client: proposes its values one at a time, retries with the same
//! request id, follows redirects, and records what it was told. As
//! docs/PROTOCOL.md asks of every client, it retries one request for at most
//! half the session lifetime, then gives it up (its outcome unknown) and goes on.

use paxos_proto::{ClientErrorKind, ClientId, ClientPropose, Message, Node, NodeId, Slot};

/// One request as the client saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The client's sequence number.
    pub seq: u64,
    /// The value.
    pub value: String,
    /// Tick of the first send.
    pub started: Option<u64>,
    /// Tick of the acknowledgement and the slot it named.
    pub acked: Option<(u64, Slot)>,
    /// Given up unanswered: the client went on to its next request.
    pub abandoned: bool,
}

/// A client of the simulated cluster.
#[derive(Debug)]
pub struct SimClient {
    /// Its id.
    pub id: ClientId,
    /// Its requests, in order; one is in flight at a time.
    pub requests: Vec<Request>,
    /// Index of the request in flight.
    pub current: usize,
    /// The proposer it sends to.
    target: NodeId,
    /// Tick of the last send of the current request.
    last_sent: Option<u64>,
    /// Ticks to wait before a retry.
    timeout: u64,
    /// Ticks after its first send when a request is given up.
    give_up: u64,
    /// The next send follows a redirect (keep the target it named) or a
    /// `busy` answer (ask the same proposer again): not a silence.
    redirected: bool,
    /// The proposer whose redirect named the target: if the target is
    /// silent, the next one after it is tried (as `Link::after_silence`).
    named_by: Option<NodeId>,
    /// `busy` answers to the current request in a row, for the back-off.
    busy_in_row: u32,
    /// After a `busy` answer: when to ask again (instead of a timeout after the last send).
    resend_at: Option<u64>,
    /// Things a correct cluster never tells a client.
    pub complaints: Vec<String>,
    /// Requests acknowledged with two slots: `(seq, first, second)`. Only a
    /// request that landed again after its session expired may be.
    pub double_acks: Vec<(u64, Slot, Slot)>,
}

impl SimClient {
    /// A client that will propose `values`, starting with `target`.
    /// Each request is given up `give_up` ticks after its first send.
    pub fn new(id: ClientId, values: Vec<String>, target: NodeId, timeout: u64, give_up: u64) -> Self {
        let requests = values
            .into_iter()
            .enumerate()
            .map(|(i, value)| Request { seq: i as u64 + 1, value, started: None, acked: None, abandoned: false })
            .collect();
        SimClient {
            id,
            requests,
            current: 0,
            target,
            last_sent: None,
            timeout,
            give_up,
            redirected: false,
            named_by: None,
            busy_in_row: 0,
            resend_at: None,
            complaints: Vec::new(),
            double_acks: Vec::new(),
        }
    }

    /// True once every request is acknowledged.
    pub fn done(&self) -> bool {
        self.current >= self.requests.len()
    }

    /// The request in flight and since when it waits, if any.
    pub fn pending(&self) -> Option<&Request> {
        self.requests.get(self.current)
    }

    /// True if some request was given up unanswered.
    pub fn gave_up(&self) -> bool {
        self.requests.iter().any(|r| r.abandoned)
    }

    /// Sends (or resends) the current request when due, or gives it up (if `may_give_up`).
    pub fn tick(&mut self, now: u64, proposers: &[NodeId], may_give_up: bool, out: &mut Vec<(Node, Message)>) {
        let Some(req) = self.requests.get_mut(self.current) else { return };
        if may_give_up && req.started.is_some_and(|s| now >= s + self.give_up) {
            req.abandoned = true;
            self.current += 1;
            self.last_sent = None;
            self.busy_in_row = 0;
            self.resend_at = None;
            return;
        }
        let due = match self.resend_at {
            Some(at) => now >= at,
            None => self.last_sent.is_none_or(|t| now >= t + self.timeout),
        };
        if !due {
            return;
        }
        if self.last_sent.is_some() && !std::mem::take(&mut self.redirected) {
            // No answer: maybe that proposer is down. Try the next one, after
            // the proposer that named it if it followed a redirect (else two
            // proposers could send it back and forth past the leader).
            let next = |after: NodeId| {
                let i = proposers.iter().position(|p| *p == after).unwrap_or(0);
                proposers[(i + 1) % proposers.len()]
            };
            let silent = self.target;
            self.target = match self.named_by.take().map(next) {
                Some(p) if p != silent => p,
                _ => next(silent),
            };
        }
        req.started.get_or_insert(now);
        self.last_sent = Some(now);
        self.resend_at = None;
        let msg = Message::ClientPropose(ClientPropose { seq: req.seq, value: req.value.as_str().into() });
        out.push((Node::Proposer(self.target), msg));
    }

    /// Handles an answer.
    pub fn handle(&mut self, now: u64, from: Node, msg: Message) {
        let current_seq = self.pending().map(|r| r.seq);
        match msg {
            Message::ClientReply(r) => {
                let Some(req) = self.requests.iter_mut().find(|q| q.seq == r.seq) else {
                    self.complaints.push(format!("client {:?} got a reply for unknown seq {}", self.id, r.seq));
                    return;
                };
                match req.acked {
                    // Late duplicates of an answer must name the same slot.
                    Some((_, slot)) if slot != r.slot => self.double_acks.push((r.seq, slot, r.slot)),
                    Some(_) => {}
                    None if Some(r.seq) == current_seq => {
                        req.acked = Some((now, r.slot));
                        self.current += 1;
                        self.last_sent = None;
                        self.named_by = None;
                        self.busy_in_row = 0;
                        self.resend_at = None;
                    }
                    // Decided after all: the acknowledgement still binds the cluster.
                    None if req.abandoned => req.acked = Some((now, r.slot)),
                    None => self.complaints.push(format!("client {:?} got a reply for unsent seq {}", self.id, r.seq)),
                }
            }
            Message::ClientRedirect(r) if Some(r.seq) == current_seq => {
                if let Some(leader) = r.leader {
                    self.target = leader;
                    self.redirected = true;
                    self.named_by = match from {
                        Node::Proposer(p) if p != leader => Some(p),
                        _ => None,
                    };
                    // Retry at the next tick rather than wait a whole timeout
                    // (a redirect in the first ticks waited one: the tick
                    // of the last send was moved back, to no earlier than 0).
                    self.resend_at = Some(now + 1);
                }
            }
            Message::ClientError(e) if Some(e.seq) == current_seq => match e.kind {
                // Alive but not ready (its queue is full, or it does not know
                // the acceptors' clocks yet): ask it again after a back-off,
                // as our client library does (`paxos_client::backoff`: 10,
                // 20, 40, 80, then 160 ms), never later than a timeout.
                ClientErrorKind::Busy => {
                    if let Node::Proposer(p) = from {
                        self.target = p;
                        self.redirected = true;
                        let backoff = (1u64 << self.busy_in_row.min(4)).min(self.timeout);
                        self.busy_in_row += 1;
                        self.resend_at = Some(now + backoff);
                    }
                }
                kind => self.complaints.push(format!("client {:?} seq {} refused: {kind:?}", self.id, e.seq)),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::{ClientError, ClientErrorKind, ClientId, Message, Node, NodeId};

    use super::SimClient;

    /// The ticks at which `c` sends, and to whom, from tick `from` to `to`.
    fn sends(c: &mut SimClient, from: u64, to: u64) -> Vec<(u64, Node)> {
        let proposers = [NodeId(1), NodeId(2), NodeId(3)];
        let mut sent = Vec::new();
        for now in from..to {
            let mut out = Vec::new();
            c.tick(now, &proposers, false, &mut out);
            sent.extend(out.into_iter().map(|(to, _)| (now, to)));
        }
        sent
    }

    /// A `busy` answer says the proposer is alive but not ready: the client asks it again after a
    /// back-off that doubles (1, 2, 4 ticks: 10, 20, 40 ms, as the client library), rather than
    /// waiting a whole timeout and taking it for down. (Before, a busy answer counted as silence: in
    /// simulator seed 411309201 with `--lose-proposer --lose-acceptor --damage-log 0.5` the only
    /// proposer that could lead answered `busy` in its first probe round, and the client spent two
    /// timeouts on a lost proposer and a removed one before it asked again.)
    #[test]
    fn a_busy_proposer_is_asked_again_soon() {
        let mut c = SimClient::new(ClientId(7), vec!["a".into()], NodeId(1), 30, 1000);
        let p1 = Node::Proposer(NodeId(1));
        assert_eq!(sends(&mut c, 0, 1), [(0, p1)]);
        let busy = || Message::ClientError(ClientError { seq: 1, kind: ClientErrorKind::Busy });
        c.handle(0, p1, busy());
        assert_eq!(sends(&mut c, 1, 5), [(1, p1)]);
        c.handle(5, p1, busy());
        assert_eq!(sends(&mut c, 5, 12), [(7, p1)]);
        c.handle(12, p1, busy());
        assert_eq!(sends(&mut c, 12, 20), [(16, p1)]);
        // Silent after that: a timeout later, the next proposer.
        assert_eq!(sends(&mut c, 20, 60), [(46, Node::Proposer(NodeId(2)))]);
    }
}
