//! The durable stores of the daemons: the core's storage traits on top of [`Wal`].
//!
//! # Choice
//!
//! Each node keeps one append-only, checksummed log ([`crate::wal`]) in its
//! data dir: `acceptor.wal` or `proposer.wal`. A role's [`Ready`] carries a
//! batch of operations ([`AcceptorOp`], [`ProposerOp`]); the store appends the
//! whole batch with one `write` and makes it durable with one `fdatasync`, and
//! a restart folds the operations back into the state with the core's own
//! [`AcceptorState::apply`] / [`ProposerState::apply`], so every store
//! recovers exactly what the in-memory stores of the simulator would. An
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
//! The acceptor forgets slots below each `Trim`, but its log would keep them.
//! After an apply, once the log has grown by more than the live state (and by
//! at least [`DEFAULT_COMPACT_MIN_BYTES`]) since the last check, the store
//! estimates the size of the live state and, if the log is more than twice
//! that, rewrites it from [`AcceptorState::snapshot_ops`] with
//! [`Wal::rewrite`] (write a temporary file, sync, rename over the log, sync
//! the directory). The checks cost O(live state) and happen only after that
//! much was appended, so compaction costs O(1) amortized per byte written.
//!
//! The proposer's log is its decided log, which it serves to clients, so it is
//! all live and never compacted; its `Round` records are one per campaign.

use std::path::{Path, PathBuf};

use paxos_core::{
    AcceptorOp, AcceptorState, AcceptorStore, MemAcceptorStore, MemProposerStore, ProposerOp, ProposerState,
    ProposerStore, StorageError,
};
use paxos_proto::Slot;
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

/// What a store did since it was opened, for status counters and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `fdatasync` calls of the log.
    pub fsyncs: u64,
    /// Batches written (appends and rewrites).
    pub writes: u64,
    /// Compactions (acceptor only).
    pub compactions: u64,
    /// The logical size of the log in bytes ([`Wal::len_bytes`]): its header
    /// and records, not the zeros preallocated after them in the file.
    pub bytes: u64,
}

/// A store that can report [`StoreStats`]; the runtime puts them in its status.
pub trait StoreStatsSource {
    /// What the store did so far.
    fn stats(&self) -> StoreStats;
}

impl StoreStatsSource for MemAcceptorStore {
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

impl StoreStatsSource for MemProposerStore {
    fn stats(&self) -> StoreStats {
        StoreStats::default()
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

/// An acceptor's durable state in `<data dir>/acceptor.wal`.
#[derive(Debug)]
pub struct FileAcceptorStore {
    log: BatchLog,
    /// The state the log folds into, kept for compaction and `load`.
    state: AcceptorState,
    compact_min_bytes: u64,
    /// The log length at which compaction is considered next.
    next_check: u64,
    compactions: u64,
}

impl FileAcceptorStore {
    /// Opens (or creates) the acceptor store in the data dir `dir`.
    ///
    /// With `fsync` false nothing is synced: for benchmarks only.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and the byte offset when the
    /// log is damaged before its last intact record (or is not a log of this
    /// format); [`StorageError::Io`] when it cannot be created or read.
    pub fn open(dir: &Path, fsync: bool) -> Result<FileAcceptorStore, StorageError> {
        FileAcceptorStore::open_file(&dir.join(ACCEPTOR_WAL), fsync)
    }

    /// Opens (or creates) the acceptor store in the log file `path`.
    ///
    /// # Errors
    /// As for [`FileAcceptorStore::open`].
    pub fn open_file(path: &Path, fsync: bool) -> Result<FileAcceptorStore, StorageError> {
        let (log, replay) = BatchLog::open::<AcceptorOp>(path, fsync)?;
        let mut state = AcceptorState::default();
        for op in replay.batches.iter().flatten() {
            state.apply(op);
        }
        Ok(FileAcceptorStore {
            log,
            state,
            compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES,
            next_check: 0,
            compactions: 0,
        })
    }

    /// Sets the growth of the log below which compaction is not considered
    /// (tests use a small one to see compaction happen).
    pub fn with_compact_min_bytes(mut self, bytes: u64) -> FileAcceptorStore {
        self.compact_min_bytes = bytes;
        self
    }

    /// The state every applied operation folds into.
    pub fn state(&self) -> &AcceptorState {
        &self.state
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        self.log.wal.path()
    }

    /// Makes the next append or sync of the log fail; for the failing-store tests.
    pub fn inject_fault(&mut self, fault: Fault) {
        self.log.wal.inject_fault(fault);
    }

    /// Rewrites the log from the live state now, whatever its size.
    ///
    /// # Errors
    /// When the rewrite fails; the log on disk is then the old or the new one.
    pub fn compact(&mut self) -> Result<(), StorageError> {
        let before = self.log.wal.len_bytes();
        self.log.rewrite(&self.state.snapshot_ops())?;
        self.compactions += 1;
        info!(
            path = %self.path().display(),
            before_bytes = before,
            after_bytes = self.log.wal.len_bytes(),
            trimmed_below = %self.state.trimmed_below,
            accepted = self.state.accepted.len(),
            "compacted the acceptor log"
        );
        Ok(())
    }

    /// An estimate of the bytes the live state takes in the log.
    fn live_bytes(&self) -> u64 {
        let entries: usize = self.state.accepted.values().map(|(_, v)| v.wire_len() + 96).sum();
        (entries + 256) as u64
    }

    fn maybe_compact(&mut self) -> Result<(), StorageError> {
        let len = self.log.wal.len_bytes();
        if len < self.next_check {
            return Ok(());
        }
        let live = self.live_bytes();
        if len > 2 * live && len >= self.compact_min_bytes {
            self.compact()?;
        }
        self.next_check = self.log.wal.len_bytes() + live.max(self.compact_min_bytes);
        Ok(())
    }
}

impl AcceptorStore for FileAcceptorStore {
    fn load(&mut self) -> Result<AcceptorState, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.log.append(ops)?;
        for op in ops {
            self.state.apply(op);
        }
        self.maybe_compact()
    }
}

impl StoreStatsSource for FileAcceptorStore {
    fn stats(&self) -> StoreStats {
        StoreStats {
            fsyncs: self.log.wal.syncs(),
            writes: self.log.wal.writes(),
            compactions: self.compactions,
            bytes: self.log.wal.len_bytes(),
        }
    }
}

/// A proposer's durable state in `<data dir>/proposer.wal`: its ballot rounds
/// and its decided log.
#[derive(Debug)]
pub struct FileProposerStore {
    log: BatchLog,
    path: PathBuf,
    fsync: bool,
    /// The highest round persisted.
    round: u64,
    /// The length of the decided log persisted.
    log_len: u64,
    /// The state read at open, handed out by the first `load` (later loads
    /// read the file again rather than keep a second copy of the log in memory).
    recovered: Option<ProposerState>,
}

impl FileProposerStore {
    /// Opens (or creates) the proposer store in the data dir `dir`.
    ///
    /// # Errors
    /// As for [`FileAcceptorStore::open`], and [`StorageError::Corrupt`] when
    /// the decided log in the file has a gap.
    pub fn open(dir: &Path, fsync: bool) -> Result<FileProposerStore, StorageError> {
        FileProposerStore::open_file(&dir.join(PROPOSER_WAL), fsync)
    }

    /// Opens (or creates) the proposer store in the log file `path`.
    ///
    /// # Errors
    /// As for [`FileProposerStore::open`].
    pub fn open_file(path: &Path, fsync: bool) -> Result<FileProposerStore, StorageError> {
        let (log, state) = Self::replay(path, fsync)?;
        Ok(FileProposerStore {
            log,
            path: path.to_owned(),
            fsync,
            round: state.round,
            log_len: state.log.len() as u64,
            recovered: Some(state),
        })
    }

    fn replay(path: &Path, fsync: bool) -> Result<(BatchLog, ProposerState), StorageError> {
        let (log, replay) = BatchLog::open::<ProposerOp>(path, fsync)?;
        let mut state = ProposerState::default();
        for op in replay.batches.into_iter().flatten() {
            if let ProposerOp::Learn { slot, .. } = &op {
                if slot.0 != state.log.len() as u64 {
                    return Err(StorageError::Corrupt(format!(
                        "{}: learns slot {slot} after {} slots; the decided log has a gap; refusing to start",
                        path.display(),
                        state.log.len()
                    )));
                }
            }
            state.apply(&op);
        }
        Ok((log, state))
    }

    /// The highest round persisted.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The first slot not in the persisted decided log.
    pub fn decided(&self) -> Slot {
        Slot(self.log_len)
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next append or sync of the log fail; for the failing-store tests.
    pub fn inject_fault(&mut self, fault: Fault) {
        self.log.wal.inject_fault(fault);
    }
}

impl ProposerStore for FileProposerStore {
    fn load(&mut self) -> Result<ProposerState, StorageError> {
        if let Some(state) = self.recovered.take() {
            return Ok(state);
        }
        // Everything appended was synced (or the store is poisoned and this
        // node about to stop), so reading the file again sees exactly it.
        Self::replay(&self.path, self.fsync).map(|(_, state)| state)
    }

    fn apply(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut next = self.log_len;
        for op in ops {
            if let ProposerOp::Learn { slot, .. } = op {
                assert_eq!(slot.0, next, "a proposer persists its decided log in order, without gaps");
                next += 1;
            }
        }
        self.log.append(ops)?;
        self.log_len = next;
        for op in ops {
            if let ProposerOp::Round(r) = op {
                self.round = self.round.max(*r);
            }
        }
        if let Some(state) = self.recovered.as_mut() {
            // Not loaded yet: keep the cached state current.
            for op in ops {
                state.apply(op);
            }
        }
        Ok(())
    }
}

impl StoreStatsSource for FileProposerStore {
    fn stats(&self) -> StoreStats {
        StoreStats {
            fsyncs: self.log.wal.syncs(),
            writes: self.log.wal.writes(),
            compactions: 0,
            bytes: self.log.wal.len_bytes(),
        }
    }
}
