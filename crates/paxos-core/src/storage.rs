//! What the roles persist, as operations folded into a state, and the one store abstraction.
//!
//! A role emits operations in its [`crate::Ready`]; a store makes them durable
//! and, on restart, gives back the state they fold into. The fold itself
//! ([`AcceptorState::apply`], [`ProposerState::apply`]) lives here so that every
//! store, in memory or on disk, recovers exactly the same state.

use std::collections::BTreeMap;
use std::fmt;

use paxos_proto::{Ballot, Slot, Value};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One durable change of an acceptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptorOp {
    /// The acceptor promised this ballot (higher than any before).
    Promise(Ballot),
    /// The acceptor accepted `value` at `slot` under `ballot`.
    Accept {
        /// The slot.
        slot: Slot,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: Value,
    },
    /// Every slot below this one is learned by every proposer and forgotten here.
    Trim(Slot),
}

/// Everything an acceptor must remember across a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorState {
    /// The highest ballot promised.
    pub promised: Ballot,
    /// Per slot, the highest ballot accepted there and its value.
    pub accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// Slots below this one were trimmed.
    pub trimmed_below: Slot,
}

impl AcceptorState {
    /// Folds one operation into the state.
    pub fn apply(&mut self, op: &AcceptorOp) {
        match op {
            AcceptorOp::Promise(b) => self.promised = self.promised.max(*b),
            AcceptorOp::Accept { slot, ballot, value } => {
                if *slot >= self.trimmed_below {
                    self.accepted.insert(*slot, (*ballot, value.clone()));
                }
            }
            AcceptorOp::Trim(below) => {
                if *below > self.trimmed_below {
                    self.trimmed_below = *below;
                    self.accepted = self.accepted.split_off(below);
                }
            }
        }
    }

    /// Operations that rebuild this state from nothing: what a compacting store rewrites.
    pub fn snapshot_ops(&self) -> Vec<AcceptorOp> {
        let mut ops = Vec::with_capacity(self.accepted.len() + 2);
        ops.push(AcceptorOp::Trim(self.trimmed_below));
        ops.push(AcceptorOp::Promise(self.promised));
        ops.extend(self.accepted.iter().map(|(slot, (ballot, value))| AcceptorOp::Accept {
            slot: *slot,
            ballot: *ballot,
            value: value.clone(),
        }));
        ops
    }
}

/// One durable change of a proposer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposerOp {
    /// The proposer may use rounds up to this one; it never uses a round twice.
    Round(u64),
    /// The proposer learned that `value` is decided at `slot` (the next slot of its log).
    Learn {
        /// The slot; always the current length of the log.
        slot: Slot,
        /// The decided value.
        value: Value,
    },
}

/// Everything a proposer must remember across a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerState {
    /// The highest round this proposer has used (or reserved).
    pub round: u64,
    /// The decided log, from slot 0, without gaps.
    pub log: Vec<Value>,
}

impl ProposerState {
    /// Folds one operation into the state.
    ///
    /// # Panics
    /// If a `Learn` is not for the next slot of the log: the proposer only ever
    /// learns in order, so anything else is a corrupt store or a bug.
    pub fn apply(&mut self, op: &ProposerOp) {
        match op {
            ProposerOp::Round(r) => self.round = self.round.max(*r),
            ProposerOp::Learn { slot, value } => {
                assert_eq!(slot.0, self.log.len() as u64, "a proposer learns its log in order");
                self.log.push(value.clone());
            }
        }
    }
}

/// Why a store failed. A storage error is fatal to the node.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The medium failed (disk full, I/O error...).
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// What is stored is not what was written.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

/// A state that a sequence of operations folds into: what a role persists.
///
/// Every store recovers its state by folding the operations it made durable,
/// in order, with [`Fold::apply`], so that a store in memory and a store on
/// disk recover exactly the same state from the same operations.
pub trait Fold: Clone + Default + Send + 'static {
    /// One durable change.
    type Op: Clone + fmt::Debug + Send + 'static;
    /// Folds one operation into the state.
    fn apply(&mut self, op: &Self::Op);

    /// Whether `op` can follow this state at all; a store that reads back an
    /// operation that cannot is corrupt. Everything can, unless a state says otherwise.
    ///
    /// # Errors
    /// What is wrong with `op`, in words.
    fn check(&self, op: &Self::Op) -> Result<(), String> {
        let _ = op;
        Ok(())
    }
}

impl Fold for AcceptorState {
    type Op = AcceptorOp;

    fn apply(&mut self, op: &AcceptorOp) {
        AcceptorState::apply(self, op);
    }
}

impl Fold for ProposerState {
    type Op = ProposerOp;

    fn apply(&mut self, op: &ProposerOp) {
        ProposerState::apply(self, op);
    }

    /// A proposer learns its log in order: a `Learn` of any other slot than the next one.
    fn check(&self, op: &ProposerOp) -> Result<(), String> {
        match op {
            ProposerOp::Learn { slot, .. } if slot.0 != self.log.len() as u64 => {
                Err(format!("learns slot {slot} after {} slots; the decided log has a gap", self.log.len()))
            }
            _ => Ok(()),
        }
    }
}

/// What a store did since it was opened, for status counters and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `fdatasync` calls.
    pub fsyncs: u64,
    /// Batches written (appends and rewrites).
    pub writes: u64,
    /// Compactions.
    pub compactions: u64,
    /// The logical size of what is stored, in bytes.
    pub bytes: u64,
}

/// The durable state of a role: one abstraction for every role and every medium.
///
/// A store keeps a [`Fold`] state. [`Store::apply`] makes a batch of operations
/// durable atomically; [`Store::load`] gives back the state that every batch
/// applied so far folds into (after a restart: every batch that `apply`
/// returned `Ok` for, and no part of any other).
pub trait Store: Send + 'static {
    /// The state the store's operations fold into.
    type State: Fold;

    /// The state every op applied so far folds into.
    ///
    /// # Errors
    /// When the stored state cannot be read or is corrupt.
    fn load(&mut self) -> Result<Self::State, StorageError>;

    /// Applies `ops` atomically; returns once they are durable.
    ///
    /// # Errors
    /// When they could not be made durable; then none of them may be visible
    /// after a restart unless all of them are.
    fn apply(&mut self, ops: &[<Self::State as Fold>::Op]) -> Result<(), StorageError>;

    /// What the store did so far.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

/// A store in memory: for tests and the simulator, where it plays the disk.
#[derive(Clone, Debug, Default)]
pub struct MemStore<S> {
    /// The durable state.
    pub state: S,
}

impl<S: Fold> MemStore<S> {
    /// A store that already holds `state`.
    pub fn new(state: S) -> MemStore<S> {
        MemStore { state }
    }
}

impl<S: Fold> Store for MemStore<S> {
    type State = S;

    fn load(&mut self) -> Result<S, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[S::Op]) -> Result<(), StorageError> {
        for op in ops {
            self.state.apply(op);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The fold every store recovers through: each test applies operations to a
    //! state and checks what a restarted role would see.

    use paxos_proto::{ClientId, Command, NodeId};

    use super::*;

    fn b(round: u64, proposer: u32) -> Ballot {
        Ballot::new(round, NodeId(proposer))
    }

    fn cmd(seq: u64) -> Value {
        Value::Command(Command { client: ClientId(1), seq, data: format!("v{seq}") })
    }

    fn accept(slot: u64, ballot: Ballot, value: Value) -> AcceptorOp {
        AcceptorOp::Accept { slot: Slot(slot), ballot, value }
    }

    fn fold(ops: &[AcceptorOp]) -> AcceptorState {
        let mut s = AcceptorState::default();
        for op in ops {
            s.apply(op);
        }
        s
    }

    /// P1a on disk: a recovered promise is the highest ever written, whatever the order of the records.
    #[test]
    fn recovered_promise_never_goes_down() {
        let s = fold(&[AcceptorOp::Promise(b(3, 1)), AcceptorOp::Promise(b(2, 2)), AcceptorOp::Promise(b(3, 2))]);
        assert_eq!(s.promised, b(3, 2));
    }

    /// Phase 2b on disk: a later vote at a slot replaces the earlier one (the acceptor reports the last).
    #[test]
    fn later_accept_replaces_earlier_at_a_slot() {
        let s = fold(&[accept(4, b(1, 1), cmd(1)), accept(4, b(2, 2), cmd(2))]);
        assert_eq!(s.accepted[&Slot(4)], (b(2, 2), cmd(2)));
    }

    /// Garbage collection on disk: a trim drops every vote below it, never moves back, and keeps
    /// later records for trimmed slots out.
    #[test]
    fn trim_drops_below_and_is_monotonic() {
        let s = fold(&[
            accept(1, b(1, 1), cmd(1)),
            accept(5, b(1, 1), cmd(2)),
            AcceptorOp::Trim(Slot(3)),
            AcceptorOp::Trim(Slot(2)),
            accept(2, b(1, 1), cmd(3)),
        ]);
        assert_eq!(s.trimmed_below, Slot(3));
        assert_eq!(s.accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(5)]);
    }

    /// Compaction: the snapshot of a state folds back into exactly that state.
    #[test]
    fn snapshot_ops_rebuild_the_state() {
        let s = fold(&[
            AcceptorOp::Promise(b(7, 2)),
            accept(2, b(1, 1), Value::Noop),
            accept(9, b(7, 2), cmd(4)),
            AcceptorOp::Trim(Slot(2)),
        ]);
        assert_eq!(fold(&s.snapshot_ops()), s);
        assert_eq!(fold(&AcceptorState::default().snapshot_ops()), AcceptorState::default());
    }

    /// The in-memory stores recover what was applied to them.
    #[test]
    fn memory_stores_load_what_was_applied() {
        let mut a = MemStore::<AcceptorState>::default();
        a.apply(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]).unwrap();
        assert_eq!(a.load().unwrap(), fold(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]));

        let mut p = MemStore::<ProposerState>::default();
        p.apply(&[ProposerOp::Round(4), ProposerOp::Learn { slot: Slot(0), value: Value::Noop }]).unwrap();
        p.apply(&[ProposerOp::Round(2), ProposerOp::Learn { slot: Slot(1), value: cmd(1) }]).unwrap();
        assert_eq!(p.load().unwrap(), ProposerState { round: 4, log: vec![Value::Noop, cmd(1)] });
    }

    /// Ballots are never reused: the recovered round is the highest reserved.
    #[test]
    fn recovered_round_is_the_highest() {
        let mut s = ProposerState::default();
        for r in [3, 9, 5] {
            s.apply(&ProposerOp::Round(r));
        }
        assert_eq!(s.round, 9);
    }

    /// A proposer learns its log in order: a record for any other slot is a corrupt store.
    #[test]
    #[should_panic(expected = "a proposer learns its log in order")]
    fn learn_out_of_order_is_refused() {
        let mut s = ProposerState::default();
        s.apply(&ProposerOp::Learn { slot: Slot(1), value: Value::Noop });
    }
}
