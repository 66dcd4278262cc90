//! The Paxos roles as pure state machines.
//!
//! Nothing here does I/O, reads a clock or draws an unseeded random number.
//! A role takes inputs ([`Acceptor::handle`], [`Proposer::handle`],
//! [`Proposer::tick`]) and accumulates outputs that the caller collects with
//! `take_ready()`: a [`Ready`] holds the storage operations to make durable and
//! the messages to send *after* they are durable. The daemons execute a `Ready`
//! against a socket and a disk; the simulator executes it against a simulated
//! network and an in-memory disk. Both therefore run exactly this code.
//!
//! ```text
//!   datagrams, ticks ──> role.handle()/tick() ──> role.take_ready()
//!                                                   │
//!                         persist (fsync) <─────────┤ 1. ops
//!                         send            <─────────┘ 2. messages, once 1. is durable
//! ```
//!
//! A runtime may feed many inputs before it takes one `Ready`; that is group
//! commit: one fsync covers every write of the batch.
#![deny(missing_docs)]

mod acceptor;
mod defects;
mod election;
mod learner;
mod proposer;
mod ready;
mod role;
mod storage;
mod tick;

pub use acceptor::Acceptor;
pub use defects::Defects;
pub use learner::{Applied, Learner};
pub use proposer::{Leadership, Proposer, ProposerConfig};
pub use ready::{Ignored, Outgoing, Ready};
pub use role::{Role, View};
pub use storage::{
    AcceptorOp, AcceptorState, Fold, MemStore, ProposerOp, ProposerState, StorageError, Store, StoreStats,
};
pub use tick::Tick;

/// The byte budget for the entries of one datagram, leaving room for the envelope.
pub const MAX_BATCH_BYTES: usize = paxos_proto::MAX_DATAGRAM_BYTES - 1024;

/// The number of acceptors that makes a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}
