//! A simulated operator: asks for one membership change at a time
//! (`paxosctl member add|remove`): lists the members first and asks for the
//! change from that epoch, retries with the same request id, follows
//! redirects to the leader, asks again (a new request) from the newer
//! configuration a leader refuses it with when that is the very next epoch
//! (at most [`MEMBER_ATTEMPTS`] times, as `paxos_client::Client::member_from`
//! does), and records what was decided. Or, as an operator of its own
//! beside those of membership, asks the leader to hand leadership to
//! another proposer (`paxosctl leader transfer`), following redirects to the
//! leader as well.

use paxos_core::NOT_THE_LEADER;
use paxos_proto::{Config, MemberOp, MemberRequest, MemberRole, Message, Node, NodeId, TransferRequest};

/// The first operator's client id. The membership operators' ids follow in order, then the
/// transferring operator's (901 with one membership operator, 902 with two).
pub const ADMIN_CLIENT: u64 = 900;

/// How many times a change is asked for at most (`paxos_client::client::MEMBER_ATTEMPTS`).
pub const MEMBER_ATTEMPTS: u32 = 5;

/// How many times a transfer request is sent at most before the operator gives up on it.
pub const TRANSFER_SENDS: u32 = 5;

/// A leadership transfer under way.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    req: u64,
    to: NodeId,
    sends: u32,
}

/// The change under way.
#[derive(Clone, Debug)]
struct Change {
    /// The request being sent: the list first, then the change.
    req: u64,
    op: MemberOp,
    /// The epoch the change is asked from; `None` while listing.
    epoch: Option<u32>,
    /// How many times the change was asked for.
    attempts: u32,
    /// The operator's command this is (its `paxosctl` run), numbered from 0.
    command: u64,
    started: u64,
    /// When the operator stops waiting (Unix ms), if it says.
    deadline_ms: Option<u64>,
}

/// An operator of the simulated cluster.
#[derive(Debug)]
pub struct Admin {
    /// Its client id.
    pub client: u64,
    /// Asks again from any newer configuration a stale refusal carries (the
    /// defect `reask-any-epoch`), not only from the very next one.
    reask_any: bool,
    commands: u64,
    change: Option<Change>,
    transfer: Option<Transfer>,
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
    /// Every change asked for: the command, the change and the epoch it was asked from.
    pub asked: Vec<(u64, MemberOp, u32)>,
    /// Changes a leader refused because another configuration came into force first (each asked again).
    pub stale: u64,
    /// Changes refused that had a deadline: the change, the deadline, the
    /// request id and the tick it was first asked for. None may start after its deadline.
    pub given_up: Vec<(MemberOp, u64, u64, u64)>,
    /// Leadership transfers asked for: the proposer named, and the answer
    /// (the leader it names, the error), or neither after [`TRANSFER_SENDS`] sends.
    pub transfers: Vec<(NodeId, Option<NodeId>, Option<String>)>,
}

impl Admin {
    /// Operator `client` that first asks `target`; with `reask_any`, the defect of that name.
    pub fn new(client: u64, target: NodeId, timeout: u64, reask_any: bool) -> Admin {
        Admin {
            client,
            reask_any,
            commands: 0,
            change: None,
            transfer: None,
            target,
            last_sent: None,
            redirected: false,
            timeout,
            next_req: 1,
            done: Vec::new(),
            refused: Vec::new(),
            asked: Vec::new(),
            stale: 0,
            given_up: Vec::new(),
            transfers: Vec::new(),
        }
    }

    /// How many commands (changes) it started.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// True while a change or a leadership transfer is under way.
    pub fn busy(&self) -> bool {
        self.change.is_some() || self.transfer.is_some()
    }

    /// Starts asking the leader to hand leadership to proposer `to`.
    pub fn start_transfer(&mut self, to: NodeId) {
        assert!(!self.busy(), "one command at a time");
        self.transfer = Some(Transfer { req: self.next_req, to, sends: 0 });
        self.next_req += 1;
        self.last_sent = None;
    }

    /// True when request `req` is older than the one being sent (or none is): a late copy.
    pub fn is_late_copy(&self, req: u64) -> bool {
        self.change.as_ref().is_none_or(|c| req < c.req)
    }

    /// The change under way, if any.
    pub fn pending(&self) -> Option<&MemberOp> {
        self.change.as_ref().map(|c| &c.op)
    }

    /// Starts asking for `op`, to be started by `deadline_ms` (Unix ms) if given.
    pub fn start(&mut self, op: MemberOp, now: u64, deadline_ms: Option<u64>) {
        assert!(!self.busy(), "one change at a time");
        let command = self.commands;
        self.commands += 1;
        let change = Change { req: self.next_req, op, epoch: None, attempts: 0, command, started: now, deadline_ms };
        self.change = Some(change);
        self.next_req += 1;
        self.last_sent = None;
    }

    /// Goes on with the change under way as a new request from `epoch`, sent at the next tick.
    fn ask_from(&mut self, epoch: u32) {
        let Some(change) = self.change.as_mut() else { return };
        change.req = self.next_req;
        change.epoch = Some(epoch);
        change.attempts += 1;
        self.next_req += 1;
        self.last_sent = None;
        self.asked.push((change.command, change.op.clone(), epoch));
    }

    /// Sends (or resends) the request when due.
    pub fn tick(&mut self, now: u64, proposers: &[NodeId], out: &mut Vec<(Node, Message)>) {
        if !self.busy() || self.last_sent.is_some_and(|t| now < t + self.timeout) {
            return;
        }
        if self.last_sent.is_some() && !std::mem::take(&mut self.redirected) && !proposers.is_empty() {
            let i = proposers.iter().position(|p| *p == self.target).unwrap_or(0);
            self.target = proposers[(i + 1) % proposers.len()];
        }
        self.last_sent = Some(now);
        if let Some(t) = &mut self.transfer {
            if t.sends == TRANSFER_SENDS {
                self.transfers.push((t.to, None, None));
                self.transfer = None;
                return;
            }
            t.sends += 1;
            out.push((
                Node::Proposer(self.target),
                Message::TransferRequest(TransferRequest { req: t.req, to: t.to, cookie: None }),
            ));
            return;
        }
        let Some(change) = &self.change else { return };
        let msg = Message::MemberRequest(match change.epoch {
            None => MemberRequest { req: change.req, op: MemberOp::List, deadline_ms: None, epoch: None, cookie: None },
            epoch => MemberRequest {
                req: change.req,
                op: change.op.clone(),
                deadline_ms: change.deadline_ms,
                epoch,
                cookie: None,
            },
        });
        out.push((Node::Proposer(self.target), msg));
    }

    /// Handles an answer.
    pub fn handle(&mut self, now: u64, msg: Message) {
        if let Message::TransferReply(r) = msg {
            let Some(t) = self.transfer.filter(|t| t.req == r.req) else { return };
            if r.error.as_deref() == Some(NOT_THE_LEADER) {
                if let Some(leader) = r.leader {
                    self.redirect(now, leader);
                }
                return;
            }
            self.transfers.push((t.to, r.leader, r.error));
            self.transfer = None;
            return;
        }
        let Message::MemberReply(r) = msg else { return };
        let Some(change) = self.change.as_ref().filter(|c| c.req == r.req) else { return };
        let Some(epoch) = change.epoch else {
            if let Some(listed) = r.config {
                self.ask_from(listed.epoch);
            }
            return;
        };
        if let Some(now) = r.config.as_ref().filter(|c| r.error.is_some() && c.epoch > epoch) {
            // Another configuration came first. The very next one is not
            // this change, so it was not made; from further on, one of them
            // may have made it and a later one undone it: not asked again.
            self.stale += 1;
            let next = now.epoch == epoch + 1 && !change.op.satisfied_by(now);
            // As when it chose the change: an operator removes an acceptor
            // only from more than three (another removal came first: from
            // three, this one would leave two, where one rebuild stops the log).
            let too_few =
                matches!(change.op, MemberOp::Remove { role: MemberRole::Acceptor, .. }) && now.acceptors.len() <= 3;
            if (next || self.reask_any) && !too_few && change.attempts < MEMBER_ATTEMPTS {
                self.ask_from(now.epoch);
            } else {
                self.refused.push((change.op.clone(), r.error.unwrap_or_default()));
                self.change = None;
            }
            return;
        }
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
            self.redirect(now, leader);
        }
    }

    /// Sends the request under way to `leader` at the next tick.
    fn redirect(&mut self, now: u64, leader: NodeId) {
        self.target = leader;
        self.redirected = true;
        self.last_sent = Some((now + 1).saturating_sub(self.timeout));
    }
}
