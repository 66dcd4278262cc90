//! The durable store of the daemons: the core's [`Store`] on top of [`Wal`].
//!
//! # Choice
//!
//! Each node keeps one append-only, checksummed log ([`crate::wal`]) in its
//! data dir: `acceptor.wal` or `proposer.wal`. A role's [`Ready`] carries a
//! batch of operations ([`AcceptorOp`], [`ProposerOp`]); a [`FileStore`]
//! appends the whole batch with one `write` and makes it durable with one
//! `fdatasync`, and a restart folds the operations back into the state with
//! the core's own [`Fold::apply`], so the file store recovers exactly what
//! the simulator's [`paxos_core::MemStore`] would. An
//! append-only log turns the acceptor's hot path (promise, accept) into a
//! sequential write with one sync per batch of datagrams, which is what makes
//! group commit cheap; a key-value engine would add write amplification and a
//! dependency for no gain at this size.
//!
//! [`Ready`]: paxos_core::Ready
//!
//! # Records
//!
//! A batch is written as one or more WAL records:
//!
//! ```text
//! record  := batch:u64le flags:u8 ops:json-array
//! flags   := 1 on the last record of the batch, 0 on the others
//! ```
//!
//! Almost every batch fits one record ([`MAX_RECORD_BYTES`] is 1 MiB); a larger
//! one is split. On load, operations count only once their batch's last record
//! is read, so that `apply` stays atomic even when a crash leaves a prefix of a
//! split batch intact on disk: such a batch was never synced, so nothing that
//! depended on it was ever sent, and it is skipped wherever it lies. Batch
//! numbers only grow, so a skipped prefix can never be mistaken for part of a
//! later batch.
//!
//! # Compaction
//!
//! A state whose log shrinks ([`Compaction::COMPACTS`]: the acceptor forgets
//! slots below each `Trim`, but its log would keep them) is kept folded in
//! memory beside the log. After an apply, once the log has grown by more than
//! the live state (and by at least [`DEFAULT_COMPACT_MIN_BYTES`]) since the
//! last check, the store estimates the size of the live state and, if the log
//! is more than twice that, rewrites it from [`Compaction::snapshot_ops`] with
//! [`Wal::rewrite`] (write a temporary file, sync, rename over the log, sync
//! the directory). The checks cost O(live state) and happen only after that
//! much was appended, so compaction costs O(1) amortized per byte written.
//!
//! The proposer's log is its decided log, which it serves to clients, so it is
//! all live and never compacted; its `Round` records are one per campaign.
//! Its store keeps no second copy of it in memory: the state read at open is
//! handed out by the first `load`, and a later `load` reads the file again.

use std::path::{Path, PathBuf};

use paxos_core::{AcceptorOp, AcceptorState, Fold, ProposerOp, ProposerState, StorageError, Store, StoreStats};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{info, warn};

use crate::wal::{Fault, Wal, WalError, MAX_RECORD_BYTES};

/// The acceptor's log file inside its data dir.
pub const ACCEPTOR_WAL: &str = "acceptor.wal";

/// The proposer's log file inside its data dir.
pub const PROPOSER_WAL: &str = "proposer.wal";

/// The log must have grown by at least this much before compaction is considered.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 4 << 20;

/// Bytes of the batch header in front of each record's operations.
const BATCH_HEADER_BYTES: usize = 9;

/// How a state's log is kept short: what a [`FileStore`] needs beyond [`Fold`].
pub trait Compaction: Fold {
    /// The log file's name inside a node's data dir.
    const FILE: &'static str;
    /// Whether the log is ever rewritten shorter. A store of such a state
    /// keeps the state folded in memory, to rewrite from; any other store
    /// keeps nothing but counters.
    const COMPACTS: bool;
    /// Operations that rebuild this state from nothing.
    fn snapshot_ops(&self) -> Vec<Self::Op>;
    /// An estimate of the bytes the live state takes in the log.
    fn live_bytes(&self) -> u64;
}

impl Compaction for AcceptorState {
    const FILE: &'static str = ACCEPTOR_WAL;
    const COMPACTS: bool = true;

    fn snapshot_ops(&self) -> Vec<AcceptorOp> {
        AcceptorState::snapshot_ops(self)
    }

    fn live_bytes(&self) -> u64 {
        let entries: usize = self.accepted.values().map(|(_, v)| v.wire_len() + 96).sum();
        (entries + 256) as u64
    }
}

impl Compaction for ProposerState {
    const FILE: &'static str = PROPOSER_WAL;
    const COMPACTS: bool = false;

    fn snapshot_ops(&self) -> Vec<ProposerOp> {
        let learned = self.log.iter().enumerate();
        let learns =
            learned.map(|(i, value)| ProposerOp::Learn { slot: paxos_proto::Slot(i as u64), value: value.clone() });
        std::iter::once(ProposerOp::Round(self.round)).chain(learns).collect()
    }

    fn live_bytes(&self) -> u64 {
        self.log.iter().map(|v| v.wire_len() as u64 + 32).sum::<u64>() + 32
    }
}

fn storage_error(e: WalError) -> StorageError {
    match e {
        WalError::Corrupt { .. } | WalError::BadHeader { .. } => StorageError::Corrupt(e.to_string()),
        _ => StorageError::Io(e.to_string()),
    }
}

/// A [`Wal`] of batches of serialized operations.
#[derive(Debug)]
struct BatchLog {
    wal: Wal,
    /// The number the next batch gets: above every batch ever seen in the log.
    next_batch: u64,
}

/// What [`BatchLog::open`] read.
struct Replay<Op> {
    /// Complete batches, in order.
    batches: Vec<Vec<Op>>,
}

impl BatchLog {
    fn open<Op: DeserializeOwned>(path: &Path, fsync: bool) -> Result<(BatchLog, Replay<Op>), StorageError> {
        let (wal, records) = Wal::open(path, fsync).map_err(storage_error)?;
        let mut batches = Vec::new();
        let mut partial: Option<(u64, Vec<Op>)> = None;
        let mut max_batch = 0;
        for (index, record) in records.iter().enumerate() {
            let corrupt = |what: String| {
                StorageError::Corrupt(format!(
                    "{}: record {index} (of {}) is intact but {what}; refusing to start",
                    path.display(),
                    records.len()
                ))
            };
            let Some((head, body)) = record.split_first_chunk::<BATCH_HEADER_BYTES>() else {
                return Err(corrupt(format!("has only {} bytes, less than a batch header", record.len())));
            };
            let batch = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
            let last = match head[8] {
                0 => false,
                1 => true,
                other => return Err(corrupt(format!("has unknown batch flags {other:#04x}"))),
            };
            let ops: Vec<Op> =
                serde_json::from_slice(body).map_err(|e| corrupt(format!("does not hold operations: {e}")))?;
            let continues = partial.as_ref().is_some_and(|(b, _)| *b == batch);
            if batch <= max_batch && !continues {
                return Err(corrupt(format!("has batch number {batch}, not above the previous {max_batch}")));
            }
            max_batch = batch;
            let ops = match partial.take() {
                Some((b, mut earlier)) if b == batch => {
                    earlier.extend(ops);
                    earlier
                }
                Some((b, earlier)) => {
                    // A crash cut batch `b` short; it was never synced, so nothing depends on it.
                    warn!(path = %path.display(), batch = b, ops = earlier.len(), "skipping the prefix of a batch that a crash cut short");
                    ops
                }
                None => ops,
            };
            if last {
                batches.push(ops);
            } else {
                partial = Some((batch, ops));
            }
        }
        if let Some((b, earlier)) = partial {
            warn!(path = %path.display(), batch = b, ops = earlier.len(), "skipping the prefix of a batch that a crash cut short");
        }
        Ok((BatchLog { wal, next_batch: max_batch + 1 }, Replay { batches }))
    }

    /// Serializes `ops` as the records of batch `batch`.
    fn records<Op: Serialize>(batch: u64, ops: &[Op]) -> Result<Vec<Vec<u8>>, StorageError> {
        let limit = MAX_RECORD_BYTES;
        let mut records = Vec::new();
        let mut current = Self::start_record(batch);
        let mut op_bytes = Vec::new();
        for op in ops {
            op_bytes.clear();
            serde_json::to_writer(&mut op_bytes, op).map_err(|e| StorageError::Io(format!("encode: {e}")))?;
            // Room for a separator and the closing bracket.
            if current.len() > BATCH_HEADER_BYTES + 1 && current.len() + op_bytes.len() + 2 > limit {
                current.push(b']');
                records.push(std::mem::replace(&mut current, Self::start_record(batch)));
            }
            if current.len() > BATCH_HEADER_BYTES + 1 {
                current.push(b',');
            }
            current.extend_from_slice(&op_bytes);
            if current.len() + 1 > limit {
                return Err(StorageError::Io(format!(
                    "an operation of {} bytes does not fit a record",
                    op_bytes.len()
                )));
            }
        }
        current.push(b']');
        records.push(current);
        if let Some(last) = records.last_mut() {
            last[8] = 1;
        }
        Ok(records)
    }

    fn start_record(batch: u64) -> Vec<u8> {
        let mut r = Vec::with_capacity(256);
        r.extend_from_slice(&batch.to_le_bytes());
        r.push(0);
        r.push(b'[');
        r
    }

    /// Appends `ops` as one batch and syncs: one `write`, one `fdatasync`.
    fn append<Op: Serialize>(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        let records = Self::records(self.next_batch, ops)?;
        self.next_batch += 1;
        self.wal.append(&records).map_err(storage_error)?;
        self.wal.sync().map_err(storage_error)
    }

    /// Replaces the whole log by one batch of `ops`.
    fn rewrite<Op: Serialize>(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        let records = Self::records(self.next_batch, ops)?;
        self.next_batch += 1;
        self.wal.rewrite(&records).map_err(storage_error)
    }
}

/// A role's durable state in one log file of its data dir.
#[derive(Debug)]
pub struct FileStore<S: Compaction> {
    log: BatchLog,
    path: PathBuf,
    fsync: bool,
    /// The state every applied operation folds into: kept while it compacts
    /// (to rewrite from), else only until the first `load` hands it out.
    state: Option<S>,
    /// The growth of the log below which compaction is not considered.
    compact_min_bytes: u64,
    /// The log length at which compaction is considered next.
    next_check: u64,
    compactions: u64,
}

impl<S> FileStore<S>
where
    S: Compaction,
    S::Op: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the store of `S` in the data dir `dir`.
    ///
    /// With `fsync` false nothing is synced: for benchmarks only.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and the byte offset when the
    /// log is damaged before its last intact record (or is not a log of this
    /// format, or holds an operation that cannot follow the ones before it);
    /// [`StorageError::Io`] when it cannot be created or read.
    pub fn open(dir: &Path, fsync: bool) -> Result<FileStore<S>, StorageError> {
        FileStore::open_file(&dir.join(S::FILE), fsync)
    }

    /// Opens (or creates) the store in the log file `path`.
    ///
    /// # Errors
    /// As for [`FileStore::open`].
    pub fn open_file(path: &Path, fsync: bool) -> Result<FileStore<S>, StorageError> {
        let (log, state) = Self::replay(path, fsync)?;
        Ok(FileStore {
            log,
            path: path.to_owned(),
            fsync,
            state: Some(state),
            compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES,
            next_check: 0,
            compactions: 0,
        })
    }

    fn replay(path: &Path, fsync: bool) -> Result<(BatchLog, S), StorageError> {
        let (log, replay) = BatchLog::open::<S::Op>(path, fsync)?;
        let mut state = S::default();
        for op in replay.batches.iter().flatten() {
            state.check(op).map_err(|problem| {
                StorageError::Corrupt(format!("{}: {problem}; refusing to start", path.display()))
            })?;
            state.apply(op);
        }
        Ok((log, state))
    }

    /// Sets the growth of the log below which compaction is not considered
    /// (tests use a small one to see compaction happen).
    pub fn with_compact_min_bytes(mut self, bytes: u64) -> FileStore<S> {
        self.compact_min_bytes = bytes;
        self
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next append or sync of the log fail; for the failing-store tests.
    pub fn inject_fault(&mut self, fault: Fault) {
        self.log.wal.inject_fault(fault);
    }

    /// Rewrites the log from the live state now, whatever its size.
    ///
    /// # Errors
    /// When the rewrite fails; the log on disk is then the old or the new one.
    ///
    /// # Panics
    /// For a state that does not compact (it keeps no state to rewrite from).
    pub fn compact(&mut self) -> Result<(), StorageError> {
        let state = self.state.as_ref().filter(|_| S::COMPACTS).expect("only a compacting store rewrites its log");
        let before = self.log.wal.len_bytes();
        self.log.rewrite(&state.snapshot_ops())?;
        self.compactions += 1;
        info!(
            path = %self.path.display(),
            before_bytes = before,
            after_bytes = self.log.wal.len_bytes(),
            "compacted the log"
        );
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), StorageError> {
        let len = self.log.wal.len_bytes();
        if len < self.next_check {
            return Ok(());
        }
        let Some(live) = self.state.as_ref().map(Compaction::live_bytes) else { return Ok(()) };
        if len > 2 * live && len >= self.compact_min_bytes {
            self.compact()?;
        }
        self.next_check = self.log.wal.len_bytes() + live.max(self.compact_min_bytes);
        Ok(())
    }
}

impl<S> Store for FileStore<S>
where
    S: Compaction,
    S::Op: Serialize + DeserializeOwned,
{
    type State = S;

    fn load(&mut self) -> Result<S, StorageError> {
        if S::COMPACTS {
            return Ok(self.state.clone().expect("a compacting store keeps its state"));
        }
        if let Some(state) = self.state.take() {
            return Ok(state);
        }
        // Everything appended was synced (or the store is poisoned and this
        // node about to stop), so reading the file again sees exactly it.
        Self::replay(&self.path, self.fsync).map(|(_, state)| state)
    }

    fn apply(&mut self, ops: &[S::Op]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.log.append(ops)?;
        if let Some(state) = self.state.as_mut() {
            for op in ops {
                // Our own role made these: one that cannot follow is a bug, not damage.
                assert_eq!(state.check(op), Ok(()), "a role persists only operations that follow its state");
                state.apply(op);
            }
        }
        self.maybe_compact()
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            fsyncs: self.log.wal.syncs(),
            writes: self.log.wal.writes(),
            compactions: self.compactions,
            bytes: self.log.wal.len_bytes(),
        }
    }
}
