//! What a role hands to its runtime: writes, then messages.

use paxos_proto::{Message, Node};

use crate::ReadRequest;

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The receiver.
    pub to: Node,
    /// The message.
    pub msg: Message,
}

/// The outputs a role accumulated since the last `take_ready()`.
///
/// The contract: every op in `persist` is durable before any message in
/// `messages` leaves, and `Ready`s are executed strictly in the order they were
/// taken (a message may rest on the writes of an earlier `Ready`: a repeated
/// `Accepted`, an equal-ballot promise, a reply from a client session). A
/// runtime that cannot make `persist` durable must stop without sending `messages`.
///
/// `early` holds messages that rest on no write of this node that is not
/// already durable: they may leave before `persist` is durable, and before the
/// writes of earlier `Ready`s are (a runtime may persist in the background
/// while it goes on). Two kinds are:
/// - a reply to a client whose value is decided: the value is already on the
///   disks of a majority of acceptors, so the leader need not wait for its own copy;
/// - a leader's `Accept`: it rests only on the round of its ballot, which was
///   durable before the prepares of that ballot left (they are `messages`),
///   hence before any promise let the ballot propose.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready<Op> {
    /// Messages that may leave before `persist` is durable.
    pub early: Vec<Outgoing>,
    /// Storage operations, in order; apply them atomically.
    pub persist: Vec<Op>,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<Outgoing>,
    /// Reads of the decided log, to run once `persist` is durable; each
    /// page goes back to the role with [`crate::Role::on_read`] (or its
    /// failure with [`crate::Role::on_read_failed`]).
    pub reads: Vec<ReadRequest>,
}

impl<Op> Default for Ready<Op> {
    fn default() -> Self {
        Ready { early: Vec::new(), persist: Vec::new(), messages: Vec::new(), reads: Vec::new() }
    }
}

impl<Op> Ready<Op> {
    /// True when there is nothing to write and nothing to send.
    pub fn is_empty(&self) -> bool {
        self.early.is_empty() && self.persist.is_empty() && self.messages.is_empty() && self.reads.is_empty()
    }

    pub(crate) fn send(&mut self, to: Node, msg: Message) {
        self.messages.push(Outgoing { to, msg });
    }

    /// Sends `msg` without waiting for this `Ready`'s writes (see `early`).
    pub(crate) fn send_early(&mut self, to: Node, msg: Message) {
        self.early.push(Outgoing { to, msg });
    }
}

/// Why a role ignored an input; the runtime counts these by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ignored(pub &'static str);

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
