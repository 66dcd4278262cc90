//! What the roles persist, as operations folded into a state, and the store traits.
//!
//! A role emits operations in its [`crate::Ready`]; a store makes them durable
//! and, on restart, gives back the state they fold into. The fold itself
//! ([`AcceptorState::apply`], [`ProposerState::apply`]) lives here so that every
//! store, in memory or on disk, recovers exactly the same state.

use std::collections::BTreeMap;

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
#[derive(Debug, Error)]
pub enum StorageError {
    /// The medium failed (disk full, I/O error...).
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// What is stored is not what was written.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

/// The durable state of an acceptor.
pub trait AcceptorStore {
    /// The state every op applied so far folds into.
    ///
    /// # Errors
    /// When the stored state cannot be read or is corrupt.
    fn load(&mut self) -> Result<AcceptorState, StorageError>;
    /// Applies `ops` atomically; returns once they are durable.
    ///
    /// # Errors
    /// When they could not be made durable; then none of them may be visible after a restart
    /// unless all of them are.
    fn apply(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError>;
}

/// The durable state of a proposer.
pub trait ProposerStore {
    /// The state every op applied so far folds into.
    ///
    /// # Errors
    /// When the stored state cannot be read or is corrupt.
    fn load(&mut self) -> Result<ProposerState, StorageError>;
    /// Applies `ops` atomically; returns once they are durable.
    ///
    /// # Errors
    /// When they could not be made durable.
    fn apply(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError>;
}

/// An acceptor store in memory: for tests and the simulator, where it plays the disk.
#[derive(Clone, Debug, Default)]
pub struct MemAcceptorStore {
    /// The durable state.
    pub state: AcceptorState,
}

impl AcceptorStore for MemAcceptorStore {
    fn load(&mut self) -> Result<AcceptorState, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError> {
        for op in ops {
            self.state.apply(op);
        }
        Ok(())
    }
}

/// A proposer store in memory: for tests and the simulator.
#[derive(Clone, Debug, Default)]
pub struct MemProposerStore {
    /// The durable state.
    pub state: ProposerState,
}

impl ProposerStore for MemProposerStore {
    fn load(&mut self) -> Result<ProposerState, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError> {
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
        let mut a = MemAcceptorStore::default();
        a.apply(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]).unwrap();
        assert_eq!(a.load().unwrap(), fold(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]));

        let mut p = MemProposerStore::default();
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
