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
