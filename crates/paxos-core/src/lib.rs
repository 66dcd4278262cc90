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
mod digest;
mod election;
mod learner;
mod proposer;
mod ready;
mod restart;
mod role;
mod scrub;
mod storage;
mod tick;

pub use acceptor::{Acceptor, AcceptorConfig, Membership};
pub use defects::Defects;
pub use digest::{Digests, Divergence, DIGEST_NODES, DIGEST_POINTS};
pub use learner::{quorum, Applied, Learner};
pub use proposer::{
    Leadership, Proposer, ProposerConfig, DEFAULT_SESSION_LIFETIME_MS, NOT_THE_LEADER, QUEUE_AGE_DIVISOR,
    REBUILD_SLACK_SLOTS, STAMP_SLACK_MS,
};
pub use ready::{Ignored, Outgoing, Ready};
pub use role::{Role, View};
pub use scrub::{SCRUB_AGAIN_TICKS, SCRUB_EVERY_TICKS, SCRUB_PAGE_ENTRIES, SCRUB_RETRY_DOUBLINGS, SCRUB_RETRY_TICKS};
pub use storage::{
    AcceptorOp, AcceptorState, Fold, LogOp, LogPage, LogState, MemLog, MemStore, ProposerOp, ProposerState,
    ReadRequest, Session, StorageError, Store, StoreStats, Stored,
};
pub use tick::Tick;

/// A hash map keyed at random per process, as std's, with a faster hasher
/// (aHash): for the maps that client ids and addresses key on the hot path.
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// The byte budget for the entries of one datagram, leaving room for the envelope.
pub const MAX_BATCH_BYTES: usize = paxos_proto::MAX_BODY_BYTES - 1024;

/// Rounds above this at 2026-01-01 are refused (see [`round_ceiling`]).
pub const ROUND_CEILING_BASE: u64 = 1 << 40;

/// How much the round ceiling rises per second of wall-clock time.
pub const ROUND_CEILING_PER_SEC: u64 = 1 << 24;

/// The moment the ceiling starts to rise from its base: 2026-01-01T00:00:00Z, in Unix seconds.
pub const ROUND_CEILING_EPOCH_SECS: u64 = 1_767_225_600;

/// How far ahead of our own clock another node's clock may run: a round
/// under the ceiling of `now + CLOCK_SKEW_SECS` is believed.
pub const CLOCK_SKEW_SECS: u64 = 3_600;

/// The highest ballot round any node accepts at wall-clock time `unix_secs`:
/// 2^40, plus 2^24 a second since 2026-01-01 (about 2^49 in 2026). Honest
/// proposers step rounds by one per election and never come near it; a
/// hostile member cannot push rounds beyond it with any message, and the
/// ceiling rises so slowly that rounds stay thousands of times below the
/// codec's [`paxos_proto::MAX_COUNTER`] for millennia. (A bound relative to
/// each node's own knowledge would not do: a member that pumps one
/// acceptor's promise by a full step leaves every honest round beyond the
/// others' step, and the cluster stuck.)
pub fn round_ceiling(unix_secs: u64) -> u64 {
    let secs = unix_secs.saturating_sub(ROUND_CEILING_EPOCH_SECS);
    ROUND_CEILING_BASE.saturating_add(secs.saturating_mul(ROUND_CEILING_PER_SEC)).min(paxos_proto::MAX_COUNTER / 2)
}

/// The most an acceptor's frontier (its highest accepted slot, or its
/// decided prefix) may move in one message: an accept entry further ahead is
/// refused, a claim of decided slots further ahead is believed only that
/// far. Honest leaders stay within a window (thousands) of the decided
/// slots; a hostile member cannot push the slots close to
/// [`paxos_proto::MAX_COUNTER`], nor make a new leader fill more than this
/// many holes per message it sent.
pub const MAX_SLOT_STEP: u64 = 1 << 16;

/// Retention is applied when a node learns a slot that is a multiple of this
/// (or of `retain_slots`, when that is smaller), not at every slot.
pub const RETAIN_EVERY_SLOTS: u64 = 1024;

/// Retention (`[log] retain_slots`, 0: keep everything): having learned
/// `slot`, the slot below which the log may now be deleted, if this slot is
/// one where retention is applied. Proposers and acceptors share the rule.
pub fn retention_point(slot: paxos_proto::Slot, retain_slots: u64) -> Option<paxos_proto::Slot> {
    let every = RETAIN_EVERY_SLOTS.min(retain_slots);
    (retain_slots > 0 && slot.0.is_multiple_of(every)).then(|| paxos_proto::Slot(slot.0.saturating_sub(retain_slots)))
}

/// The number of acceptors that makes a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}
