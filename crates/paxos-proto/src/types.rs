//! Ids, ballots and values: the vocabulary every message is made of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of a proposer or an acceptor, as written in the cluster file.
///
/// Proposers and acceptors number themselves independently: proposer 1 and
/// acceptor 1 are different nodes, told apart by [`Node`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

/// A position in the replicated log (the seed's "instance").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slot(pub u64);

/// The id a client chose for itself; with a sequence number it names a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);

/// A proposal number: totally ordered by round first, then by proposer id.
///
/// The derived `Ord` compares fields in declaration order, so it agrees with
/// `Eq` by construction. Two proposers never share a ballot because the
/// proposer id is part of it, and one proposer never reuses a round because it
/// persists the round before it uses it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The round; a proposer that needs a new ballot picks one above every round it has seen.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub proposer: NodeId,
}

impl Ballot {
    /// The ballot below every real one; acceptors start promised to it.
    pub const ZERO: Ballot = Ballot { round: 0, proposer: NodeId(0) };

    /// A ballot of `proposer` in `round`.
    pub fn new(round: u64, proposer: NodeId) -> Self {
        Ballot { round, proposer }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.proposer.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Slot {
    /// The next slot.
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }
}

/// Who sends or receives a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A proposer of the cluster file (also a learner).
    Proposer(NodeId),
    /// An acceptor of the cluster file.
    Acceptor(NodeId),
    /// A client, not a member: known only by the id it chose.
    Client(ClientId),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Proposer(id) => write!(f, "proposer-{id}"),
            Node::Acceptor(id) => write!(f, "acceptor-{id}"),
            Node::Client(id) => write!(f, "client-{:x}", id.0),
        }
    }
}

/// A client's value together with the request id that makes retries idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    /// The client that proposed it.
    pub client: ClientId,
    /// The client's sequence number for this request; retries reuse it.
    pub seq: u64,
    /// The value itself: UTF-8, at most [`crate::MAX_VALUE_BYTES`].
    pub data: String,
}

/// What a slot of the log holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A filler that a new leader puts into a hole so that later slots can be applied.
    Noop,
    /// A client's value.
    Command(Command),
}

impl Value {
    /// Bytes this value takes in a JSON datagram, close enough to pack datagrams by.
    pub fn wire_len(&self) -> usize {
        match self {
            Value::Noop => 6,
            Value::Command(c) => 78 + crate::json_str_len(&c.data),
        }
    }
}
