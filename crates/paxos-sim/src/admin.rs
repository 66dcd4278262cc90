//! A simulated operator: asks for one membership change at a time
//! (`paxosctl member add|remove`), retries with the same request id, follows
//! redirects to the leader, and records what was decided.

use paxos_proto::{Config, MemberOp, MemberRequest, Message, Node, NodeId};

/// The operator's client id.
pub const ADMIN_CLIENT: u64 = 900;

/// The change under way.
#[derive(Clone, Debug)]
struct Change {
    req: u64,
    op: MemberOp,
    started: u64,
    /// When the operator stops waiting (Unix ms), if it says.
    deadline_ms: Option<u64>,
}

/// The operator of the simulated cluster.
#[derive(Debug)]
pub struct Admin {
    change: Option<Change>,
    target: NodeId,
    last_sent: Option<u64>,
    /// The next send follows a redirect: keep the target it named.
    redirected: bool,
    timeout: u64,
    next_req: u64,
    /// Changes done: the request, when it started and ended, and the configuration it was answered with.
    pub done: Vec<(MemberOp, u64, u64, Option<Config>)>,
    /// Changes refused, with the reason.
    pub refused: Vec<(MemberOp, String)>,
    /// Changes refused that had a deadline: the change, the deadline, the
    /// request id and the tick it was first asked for. None may start after its deadline.
    pub given_up: Vec<(MemberOp, u64, u64, u64)>,
}

impl Admin {
    /// An operator that first asks `target`.
    pub fn new(target: NodeId, timeout: u64) -> Admin {
        Admin {
            change: None,
            target,
            last_sent: None,
            redirected: false,
            timeout,
            next_req: 1,
            done: Vec::new(),
            refused: Vec::new(),
            given_up: Vec::new(),
        }
    }

    /// True while a change is under way.
    pub fn busy(&self) -> bool {
        self.change.is_some()
    }

    /// The change under way, if any.
    pub fn pending(&self) -> Option<&MemberOp> {
        self.change.as_ref().map(|c| &c.op)
    }

    /// Starts asking for `op`, to be started by `deadline_ms` (Unix ms) if given.
    pub fn start(&mut self, op: MemberOp, now: u64, deadline_ms: Option<u64>) {
        assert!(!self.busy(), "one change at a time");
        self.change = Some(Change { req: self.next_req, op, started: now, deadline_ms });
        self.next_req += 1;
        self.last_sent = None;
    }

    /// Sends (or resends) the request when due.
    pub fn tick(&mut self, now: u64, proposers: &[NodeId], out: &mut Vec<(Node, Message)>) {
        let Some(change) = &self.change else { return };
        if self.last_sent.is_some_and(|t| now < t + self.timeout) {
            return;
        }
        if self.last_sent.is_some() && !std::mem::take(&mut self.redirected) && !proposers.is_empty() {
            let i = proposers.iter().position(|p| *p == self.target).unwrap_or(0);
            self.target = proposers[(i + 1) % proposers.len()];
        }
        self.last_sent = Some(now);
        let msg = Message::MemberRequest(MemberRequest {
            req: change.req,
            op: change.op.clone(),
            deadline_ms: change.deadline_ms,
        });
        out.push((Node::Proposer(self.target), msg));
    }

    /// Handles an answer.
    pub fn handle(&mut self, now: u64, msg: Message) {
        let Message::MemberReply(r) = msg else { return };
        let Some(change) = self.change.as_ref().filter(|c| c.req == r.req) else { return };
        if let Some(error) = r.error {
            if let Some(deadline) = change.deadline_ms {
                self.given_up.push((change.op.clone(), deadline, change.req, change.started));
            }
            self.refused.push((change.op.clone(), error));
            self.change = None;
        } else if r.config.is_some() {
            self.done.push((change.op.clone(), change.started, now, r.config));
            self.change = None;
        } else if let Some(leader) = r.leader {
            self.target = leader;
            self.redirected = true;
            self.last_sent = Some((now + 1).saturating_sub(self.timeout));
        }
    }
}
