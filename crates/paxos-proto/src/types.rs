//! Ids, ballots and values: the vocabulary every message is made of.

use std::fmt;
use std::sync::Arc;

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

/// A proposal number: totally ordered by configuration epoch first, then by
/// round, then by proposer id.
///
/// The derived `Ord` compares fields in declaration order, so it agrees with
/// `Eq` by construction. Two proposers never share a ballot because the
/// proposer id is part of it, and one proposer never reuses a round because it
/// persists the round before it uses it. Every ballot of a configuration
/// epoch is above every ballot of the epochs before it ([`Config`]): once an
/// acceptor promised a ballot of a new epoch, nothing of an older one can be
/// chosen with its vote. The epoch is left out of the JSON while it is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The configuration epoch the ballot belongs to (0: the cluster file's, before the first change).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
    /// The round; a proposer that needs a new ballot picks one above every round it has seen.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub proposer: NodeId,
}

fn is_zero(epoch: &u32) -> bool {
    *epoch == 0
}

impl Ballot {
    /// The ballot below every real one; acceptors start promised to it.
    pub const ZERO: Ballot = Ballot { epoch: 0, round: 0, proposer: NodeId(0) };

    /// A ballot of `proposer` in `round` of epoch 0.
    pub fn new(round: u64, proposer: NodeId) -> Self {
        Ballot { epoch: 0, round, proposer }
    }

    /// A ballot of `proposer` in `round` of configuration `epoch`.
    pub fn in_epoch(epoch: u32, round: u64, proposer: NodeId) -> Self {
        Ballot { epoch, round, proposer }
    }
}

impl fmt::Display for Ballot {
    /// `round.proposer`, and `epoch:round.proposer` from epoch 1 on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch == 0 {
            write!(f, "{}.{}", self.round, self.proposer.0)
        } else {
            write!(f, "{}:{}.{}", self.epoch, self.round, self.proposer.0)
        }
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
    /// The value itself: UTF-8, at most [`crate::MAX_VALUE_BYTES`]. Shared:
    /// a value travels in several copies (the leader's window, its learner
    /// and cache, the accepts; an acceptor's vote and its store's), and each
    /// costs a count, not an allocation.
    #[serde(with = "shared_str")]
    pub data: Arc<str>,
    /// When the leader first gave it a slot, in milliseconds since the Unix
    /// epoch by the leader's clock: the log's own clock, by which every
    /// learner expires idle client sessions alike.
    #[serde(default)]
    pub at: u64,
}

impl Command {
    /// A command of `client`'s request `seq` carrying `data`, not stamped yet.
    pub fn new(client: ClientId, seq: u64, data: impl Into<Arc<str>>) -> Command {
        Command { client, seq, data: data.into(), at: 0 }
    }
}

/// Serde for shared strings ([`Command::data`], a client's value): written
/// as a string, read with one allocation, straight from the datagram's bytes
/// when the string holds no escapes.
pub mod shared_str {
    use std::fmt;
    use std::sync::Arc;

    use serde::{de, Deserializer, Serializer};

    /// Writes `s` as a string.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(s: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(s)
    }

    /// Reads a string into a new shared one.
    ///
    /// # Errors
    /// When the input is not a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
        struct Shared;
        impl de::Visitor<'_> for Shared {
            type Value = Arc<str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Arc<str>, E> {
                Ok(Arc::from(s))
            }
        }
        deserializer.deserialize_str(Shared)
    }
}

/// A member of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Its id within its role.
    pub id: NodeId,
    /// Where it listens: `host:port`.
    pub addr: String,
    /// An acceptor's incarnation: the random number its data dir was made
    /// with. Only that incarnation may vote; one that lost its disk comes
    /// back with another and must be let in again. `None`: not known yet
    /// (the cluster file's members before the first change, and members
    /// added that have not started); never set for a proposer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

/// The members of one configuration epoch: decided in the log as a stop
/// sign (the last slot of the epoch before), in force from the next slot on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// The epoch this configuration governs; the cluster file's is 0.
    pub epoch: u32,
    /// The acceptors: a majority of them (of all, pinned or not) decides.
    pub acceptors: Vec<Member>,
    /// The proposers.
    pub proposers: Vec<Member>,
    /// How long a client's session lasts without a request applied, by the
    /// log's clock (milliseconds): part of the configuration, so that every
    /// learner expires sessions alike.
    pub session_lifetime_ms: u64,
}

/// What a slot of the log holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A filler that a new leader puts into a hole so that later slots can be applied.
    Noop,
    /// A client's value.
    Command(Command),
    /// A new configuration: the last slot of its epoch's predecessor.
    Config(Config),
}

impl Value {
    /// Bytes this value takes in a JSON datagram, close enough to pack datagrams by.
    pub fn wire_len(&self) -> usize {
        match self {
            Value::Noop => 6,
            Value::Command(c) => 110 + crate::json_str_len(&c.data),
            Value::Config(c) => c.wire_len(),
        }
    }
}

impl Config {
    /// The members of `role`.
    pub fn members(&self, role: crate::MemberRole) -> &[Member] {
        match role {
            crate::MemberRole::Acceptor => &self.acceptors,
            crate::MemberRole::Proposer => &self.proposers,
        }
    }

    /// Bytes this configuration takes in a JSON datagram, close enough to pack datagrams by.
    pub fn wire_len(&self) -> usize {
        let member = |m: &Member| 80 + crate::json_str_len(&m.addr);
        120 + self.acceptors.iter().chain(&self.proposers).map(member).sum::<usize>()
    }
}
