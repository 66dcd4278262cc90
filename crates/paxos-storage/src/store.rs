//! The durable store of the daemons: the core's [`Store`] on segments of [`Wal`]s.
//!
//! # Layout
//!
//! ```text
//! <data dir>/log/0000000001.wal   segments: batches of operations, oldest first
//! <data dir>/log/0000000001.idx   a sealed segment's sparse index of decided slots
//! <data dir>/log/0000000002.wal   ...the last segment is the one appended to
//! <data dir>/checkpoint           the folded state and the log position it covers
//! <data dir>/checkpoint.prev      the one before
//! <data dir>/LOCK                 empty; flock'ed while a store has the dir open
//! <data dir>/OWNER                the node whose state this is (FileStore::claim)
//! ```
//!
//! # Writes
//!
//! A role's [`Ready`](paxos_core::Ready) carries a batch of operations; the
//! store appends the whole batch to the last segment with one `write` and
//! makes it durable with one `fdatasync` (group commit), exactly as the
//! single-file log before it did. The records are those of [`encode_batch`]:
//! the operations that carry values in binary ([`crate::ops`]), read back
//! alongside the JSON records of the releases before. A segment is sealed
//! once it holds [`SEGMENT_BYTES`]:
//! its index is written beside it and the next batch opens a new segment.
//! Batches never span segments.
//!
//! # Restart in constant time
//!
//! Folding every operation ever written would take time (and memory) that
//! grows with the log. So every [`CHECKPOINT_BYTES`] of appends the store
//! writes its folded state (small: ballots, the configuration, votes not yet
//! decided, client sessions; never the decided log) with the log position it
//! covers, as a checksummed, versioned file replaced atomically (written
//! beside, synced, renamed, the directory synced), keeping the previous one.
//! A restart reads the checkpoint and folds only the operations after its
//! position. A checkpoint that is missing or damaged is reported, and the
//! previous one is used; without either, every segment is folded from the
//! first (which must then still be there).
//!
//! The state is the store's own fold of every batch, unless the role gives
//! its own with each batch ([`Store::apply_folded`]; an acceptor does, as
//! it folds each operation when it makes it): then the store folds nothing
//! and checkpoints the state it is given.
//!
//! # The decided log on disk
//!
//! The decided values are the `Learn` operations in the segments
//! ([`paxos_core::Fold::log_op`]); nothing else holds them, so memory does not
//! grow with the log. Each segment's index is sparse: the first decided slot
//! of a batch every [`MARK_BYTES`] of the segment, with its byte offset. A
//! read ([`Store::read`]) finds the segment and the mark at or below the
//! slot, then reads records from there. A sealed segment's index is a small
//! file of its own; one that is missing or damaged is rebuilt by reading
//! the segment (and reported).
//!
//! # Retention
//!
//! A `Retain` operation lets the store delete every slot below a point. It
//! deletes whole sealed segments whose decided slots all lie below it, and
//! only those the previous checkpoint no longer needs. Reads below the first
//! slot still held say where the log now starts.
//!
//! # Damage
//!
//! The last segment is opened with [`Wal::open_at`]: a torn tail (a write a
//! crash interrupted) is cut, damage in the middle refuses to start. Sealed
//! segments are read strictly: any damage where a record must be refuses to
//! start (or fails the read), and so do a segment missing between others
//! (retention deletes from the first on only; a release before it also
//! deleted segments of votes alone between kept ones, which open: below the
//! checkpoint, with the decided slots on either side following each
//! other), a decided log that jumps past a
//! slot at or after its start, and a segment whose records end before the
//! last slot its index holds (zeros over synced records). A roll or a
//! checkpoint fails when the log folder is gone (the data dir deleted under
//! the running node), rather than creating it again over a log that lost
//! its segments. The batch format drops a batch whose last record is
//! missing, as before.
//!
//! Not detected: a tail of synced records lost whole (zeroed, or the data
//! dir replaced by an older copy of itself) reads as a shorter log, and a
//! damaged last record as a torn write; a node then holds less than it
//! acknowledged, which only its peers could tell.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use paxos_core::{Fold, LogOp, LogPage, StorageError, Store, StoreStats, Stored};
use paxos_proto::Slot;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::ops::{BinaryOp, Reader};
use crate::wal::{read_records, Fault, Wal, WalError, HEADER_BYTES, MAX_RECORD_BYTES};

/// The folder of the segments inside a node's data dir.
pub const LOG_DIR: &str = "log";

/// The checkpoint inside a node's data dir.
pub const CHECKPOINT: &str = "checkpoint";

/// The checkpoint before it.
pub const CHECKPOINT_PREV: &str = "checkpoint.prev";

/// The file a store locks (`flock`, exclusive) for as long as it is open, so
/// that a second process on the same data dir is refused, not let corrupt it.
pub const LOCK: &str = "LOCK";

/// The file that names the node a data dir belongs to ([`FileStore::claim`]).
pub const OWNER: &str = "OWNER";

/// The first bytes of the [`OWNER`] file.
const OWNER_MAGIC: &[u8; 8] = b"PAXOWN01";

/// The logs of the release before segments, which this one does not read.
const LEGACY_LOGS: [&str; 2] = ["acceptor.wal", "proposer.wal"];

/// A segment is sealed once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// A checkpoint is written after this many bytes of appends.
pub const CHECKPOINT_BYTES: u64 = 8 << 20;

/// The sparse index marks a batch every this many bytes of a segment.
pub const MARK_BYTES: u64 = 256 << 10;

/// The version of the checkpoint and index files this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first bytes of a checkpoint file.
const CHECKPOINT_MAGIC: &[u8; 8] = b"PAXCKP01";

/// Bytes of the batch header in front of each record's operations.
const BATCH_HEADER_BYTES: usize = 9;

/// A batch header's flag: the batch's last record.
const LAST: u8 = 1;

/// A batch header's flag: the operations are in binary ([`crate::ops`]), not a JSON array.
const BINARY: u8 = 2;

/// Bytes read from a segment at a time by a read of the decided log.
const READ_CHUNK_BYTES: usize = 256 << 10;

/// A state a [`FileStore`] can keep: foldable, and serializable for checkpoints.
pub trait Durable: Fold + Serialize + DeserializeOwned
where
    Self::Op: Serialize + DeserializeOwned + BinaryOp,
{
    /// The role, for messages.
    const ROLE: &'static str;
}

impl Durable for paxos_core::AcceptorState {
    const ROLE: &'static str = "acceptor";
}

impl Durable for paxos_core::ProposerState {
    const ROLE: &'static str = "proposer";
}

fn storage_error(e: WalError) -> StorageError {
    match e {
        WalError::Corrupt { .. } | WalError::Damaged { .. } | WalError::BadHeader { .. } => {
            StorageError::Corrupt(e.to_string())
        }
        _ => StorageError::Io(e.to_string()),
    }
}

fn io_error<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |e| StorageError::Io(format!("{}: {what}: {e}", path.display()))
}

/// Serializes `ops` as the records of batch `batch`:
///
/// ```text
/// record  := batch:u64le flags:u8 ops
/// flags   := LAST (1) on the last record of the batch | BINARY (2) when `ops` is binary
/// ops     := json-array of operations       (without BINARY: the releases before it)
///          | binary operations              (with BINARY: see crate::ops)
/// ```
///
/// This release writes every record with BINARY and reads both forms, so a
/// store written before it opens as it was. A release before it refuses a
/// BINARY record ("unknown batch flags") rather than misread it.
///
/// Almost every batch fits one record ([`MAX_RECORD_BYTES`] is 1 MiB); a
/// larger one is split. On load, operations count only once their batch's
/// last record is read, so that a batch stays atomic even when a crash leaves
/// a prefix of it intact on disk: such a batch was never synced, so nothing
/// that depended on it was ever sent.
///
/// # Errors
/// When an operation cannot be encoded or does not fit a record.
pub fn encode_batch<Op: BinaryOp>(batch: u64, ops: &[Op]) -> Result<Vec<Vec<u8>>, StorageError> {
    let start = |batch: u64| {
        let mut r = Vec::with_capacity(256);
        r.extend_from_slice(&batch.to_le_bytes());
        r.push(BINARY);
        r
    };
    let mut records = Vec::new();
    let mut current = start(batch);
    for (i, op) in ops.iter().enumerate() {
        let at = current.len();
        op.encode(&mut current).map_err(|e| StorageError::Io(format!("encode: {e}")))?;
        if i == 0 {
            // A batch's operations are mostly alike (accepts or learns of
            // similar values): room for as many as the first, at once.
            current.reserve(((current.len() - at) * (ops.len() - 1)).min(MAX_RECORD_BYTES));
        }
        if current.len() > MAX_RECORD_BYTES {
            if at == BATCH_HEADER_BYTES {
                return Err(StorageError::Io(format!(
                    "an operation of {} bytes does not fit a record",
                    current.len() - at
                )));
            }
            // The operation goes first into a record of its own.
            let mut next = start(batch);
            next.extend_from_slice(&current[at..]);
            current.truncate(at);
            records.push(std::mem::replace(&mut current, next));
            if current.len() > MAX_RECORD_BYTES {
                return Err(StorageError::Io(format!(
                    "an operation of {} bytes does not fit a record",
                    current.len() - BATCH_HEADER_BYTES
                )));
            }
        }
    }
    records.push(current);
    if let Some(last) = records.last_mut() {
        last[8] |= LAST;
    }
    Ok(records)
}

/// The operations of one record's body, in the form its flags name.
fn decode_ops<Op: BinaryOp + DeserializeOwned>(binary: bool, body: &[u8]) -> Result<Vec<Op>, String> {
    if !binary {
        return serde_json::from_slice(body).map_err(|e| e.to_string());
    }
    let mut input = Reader::new(body);
    let mut ops = Vec::new();
    while !input.is_empty() {
        ops.push(Op::decode(&mut input)?);
    }
    Ok(ops)
}

/// Turns records back into whole batches, dropping a batch whose last record never came.
struct Batches<Op> {
    path: PathBuf,
    partial: Option<(u64, u64, Vec<Op>)>,
    max_batch: u64,
}

impl<Op: BinaryOp + DeserializeOwned> Batches<Op> {
    fn new(path: &Path) -> Self {
        Batches { path: path.to_owned(), partial: None, max_batch: 0 }
    }

    /// Takes one record at `offset`; returns a batch (with the offset of its
    /// first record and its number) once its last record is in.
    fn push(&mut self, offset: u64, record: &[u8]) -> Result<Option<(u64, u64, Vec<Op>)>, StorageError> {
        let corrupt = |what: String| {
            StorageError::Corrupt(format!(
                "{}: the record at byte {offset} is intact but {what}; refusing to use it",
                self.path.display()
            ))
        };
        let Some((head, body)) = record.split_first_chunk::<BATCH_HEADER_BYTES>() else {
            return Err(corrupt(format!("has only {} bytes, less than a batch header", record.len())));
        };
        let batch = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
        let flags = head[8];
        if flags & !(LAST | BINARY) != 0 {
            return Err(corrupt(format!("has unknown batch flags {flags:#04x}")));
        }
        let last = flags & LAST != 0;
        let ops: Vec<Op> =
            decode_ops(flags & BINARY != 0, body).map_err(|e| corrupt(format!("does not hold operations: {e}")))?;
        let continues = self.partial.as_ref().is_some_and(|(b, _, _)| *b == batch);
        if batch <= self.max_batch && !continues {
            return Err(corrupt(format!("has batch number {batch}, not above the previous {}", self.max_batch)));
        }
        self.max_batch = batch;
        let (first, ops) = match self.partial.take() {
            Some((b, first, mut earlier)) if b == batch => {
                earlier.extend(ops);
                (first, earlier)
            }
            Some((b, _, earlier)) => {
                warn!(path = %self.path.display(), batch = b, ops = earlier.len(), "skipping the prefix of a batch that a crash cut short");
                (offset, ops)
            }
            None => (offset, ops),
        };
        if last {
            Ok(Some((first, batch, ops)))
        } else {
            self.partial = Some((batch, first, ops));
            Ok(None)
        }
    }

    fn finish(&mut self) {
        if let Some((b, _, earlier)) = self.partial.take() {
            warn!(path = %self.path.display(), batch = b, ops = earlier.len(), "skipping the prefix of a batch that a crash cut short");
        }
    }
}

/// Where the decided slots of one segment are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SegmentIndex {
    /// The first and last slot learned in the segment.
    first: Option<Slot>,
    last: Option<Slot>,
    /// The first slot learned by a batch, and that batch's offset: every [`MARK_BYTES`] or so.
    marks: Vec<(Slot, u64)>,
}

impl SegmentIndex {
    /// A batch at `offset` learned `slots` (in order).
    fn note(&mut self, offset: u64, first: Slot, last: Slot) {
        if self.marks.last().is_none_or(|(_, at)| offset >= at + MARK_BYTES) {
            self.marks.push((first, offset));
        }
        self.first.get_or_insert(first);
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
    }

    /// The offset to start reading at for `slot`.
    fn seek(&self, slot: Slot) -> u64 {
        let i = self.marks.partition_point(|(s, _)| *s <= slot);
        if i == 0 {
            HEADER_BYTES as u64
        } else {
            self.marks[i - 1].1
        }
    }
}

/// The index file of a sealed segment: a CRC-32 of the JSON, then the JSON.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    index: SegmentIndex,
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    index: SegmentIndex,
    bytes: u64,
}

/// What a checkpoint holds.
#[derive(Serialize, Deserialize)]
struct Checkpoint<S> {
    version: u32,
    /// The folded state, as of the position below.
    state: S,
    /// Every batch before this segment and offset is in `state`.
    seq: u64,
    offset: u64,
    /// The next batch number.
    next_batch: u64,
    /// The first slot the decided log still holds.
    start: Slot,
}

/// A role's durable state and decided log in the segments of its data dir.
#[derive(Debug)]
pub struct FileStore<S>
where
    S: Durable,
    S::Op: Serialize + DeserializeOwned + BinaryOp,
{
    dir: PathBuf,
    log_dir: PathBuf,
    fsync: bool,
    /// [`LOCK`], locked while the store is open (closing it unlocks).
    _lock: fs::File,
    /// The folded state, as of the last batch; unless the role keeps it
    /// (`handed`), which then gives it with every batch ([`Store::apply_folded`]).
    state: S,
    /// The role keeps the state: `state` stays as it was opened, and is not used again.
    handed: bool,
    /// Sealed segments, oldest first.
    sealed: Vec<Segment>,
    /// The segment appended to.
    active: Segment,
    wal: Wal,
    next_batch: u64,
    /// The first slot the decided log holds.
    start: Slot,
    /// Bytes appended since the last checkpoint.
    since_checkpoint: u64,
    /// The segment the previous checkpoint starts in: no segment from it on may be deleted.
    keep_from: u64,
    /// The segment the current checkpoint starts in.
    checkpoint_seq: u64,
    segment_bytes: u64,
    checkpoint_bytes: u64,
    checkpoints: u64,
    fsyncs: u64,
    writes: u64,
    /// Bytes of segments folded when the store was opened.
    replayed: u64,
}

impl<S> FileStore<S>
where
    S: Durable,
    S::Op: Serialize + DeserializeOwned + BinaryOp,
{
    /// Opens (or creates) the store in the data dir `dir`.
    ///
    /// With `fsync` false nothing is synced: for benchmarks only.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and what is wrong when a
    /// segment is damaged before its last intact record (or holds an
    /// operation that cannot follow the ones before it), or the log cannot be
    /// folded (checkpoints lost and first segments deleted);
    /// [`StorageError::Io`] when the files cannot be created or read.
    pub fn open(dir: &Path, fsync: bool) -> Result<FileStore<S>, StorageError> {
        FileStore::open_with(dir, fsync, SEGMENT_BYTES, CHECKPOINT_BYTES)
    }

    /// As [`FileStore::open`], with the segment and checkpoint sizes given (tests use small ones).
    ///
    /// # Errors
    /// As for [`FileStore::open`].
    pub fn open_with(
        dir: &Path,
        fsync: bool,
        segment_bytes: u64,
        checkpoint_bytes: u64,
    ) -> Result<FileStore<S>, StorageError> {
        for legacy in LEGACY_LOGS {
            let path = dir.join(legacy);
            if path.exists() {
                return Err(StorageError::Corrupt(format!(
                    "{}: a log of an earlier release, which this one cannot read; move {} away and start \
                     the node again on an empty data dir: it copies the log from its peers",
                    path.display(),
                    dir.display()
                )));
            }
        }
        let log_dir = dir.join(LOG_DIR);
        fs::create_dir_all(&log_dir).map_err(io_error(&log_dir, "create"))?;
        let lock = lock_dir(dir)?;
        let mut seqs = segment_numbers(&log_dir)?;
        seqs.sort_unstable();
        let gaps: Vec<(u64, u64)> = seqs.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).collect();
        let checkpoint = Self::read_checkpoints(dir, !seqs.is_empty());
        let (mut state, from_seq, from_offset, mut next_batch, mut start, keep_from) = match checkpoint {
            Some((c, keep_from)) => (c.state, c.seq, c.offset, c.next_batch, c.start, keep_from),
            None => {
                if let Some(first) = seqs.first().filter(|s| **s != 1) {
                    return Err(StorageError::Corrupt(format!(
                        "{}: no readable checkpoint, and the log starts at segment {first} (retention deleted the \
                         ones before): this node's state cannot be rebuilt from its own disk; move {} away and \
                         start it again on an empty data dir",
                        dir.display(),
                        dir.display()
                    )));
                }
                (S::default(), 1, 0, 1, Slot(0), 1)
            }
        };
        if seqs.is_empty() {
            seqs.push(from_seq.max(1));
        }
        let last_seq = *seqs.last().expect("one segment at least");
        let mut replayed = 0;
        let mut sealed = Vec::new();
        let mut active = None;
        for seq in seqs {
            let path = segment_path(&log_dir, seq);
            if seq == last_seq {
                let (wal, records) = Wal::open_at(&path, fsync).map_err(storage_error)?;
                let mut index = SegmentIndex::default();
                let replay = seq >= from_seq;
                let retained = Self::fold_records(
                    &path,
                    &records,
                    &mut index,
                    replay.then_some((&mut state, from_offset, seq == from_seq)),
                    &mut next_batch,
                )?;
                start = start.max(retained);
                let bytes = wal.len_bytes();
                if seq < from_seq || (seq == from_seq && bytes < from_offset) {
                    // The checkpoint was written only once the batches it
                    // covers were synced: a log that ends before it lost
                    // synced writes (a zeroed tail, a rolled-back copy).
                    // Appending here would put new batches below the
                    // checkpoint, where the next start skips them.
                    return Err(StorageError::Corrupt(format!(
                        "{}: the log ends at byte {bytes} of segment {seq}, before the checkpoint (segment \
                         {from_seq}, byte {from_offset}): the disk lost writes it had synced; refusing to start: \
                         move {} away and start the node again on an empty data dir (it rebuilds from its peers)",
                        path.display(),
                        dir.display()
                    )));
                }
                if replay {
                    replayed += bytes - if seq == from_seq { from_offset.min(bytes) } else { 0 };
                }
                active = Some((Segment { seq, path, index, bytes }, wal));
            } else if seq >= from_seq {
                let records = read_records(&path, 0, usize::MAX).map_err(storage_error)?;
                let mut index = SegmentIndex::default();
                let retained = Self::fold_records(
                    &path,
                    &records,
                    &mut index,
                    Some((&mut state, from_offset, seq == from_seq)),
                    &mut next_batch,
                )?;
                start = start.max(retained);
                let bytes = records.last().map_or(HEADER_BYTES as u64, |(at, r)| at + 8 + r.len() as u64);
                replayed += bytes - if seq == from_seq { from_offset.min(bytes) } else { 0 };
                Self::write_index(&path, &index);
                sealed.push(Segment { seq, path, index, bytes });
            } else {
                let index = match Self::read_index(&path) {
                    Some(index) => index,
                    None => {
                        warn!(path = %path.display(), "the index of a segment is missing or damaged; rebuilding it from the segment");
                        let records = read_records(&path, 0, usize::MAX).map_err(storage_error)?;
                        let mut index = SegmentIndex::default();
                        Self::fold_records(&path, &records, &mut index, None, &mut next_batch)?;
                        Self::write_index(&path, &index);
                        index
                    }
                };
                let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                sealed.push(Segment { seq, path, index, bytes });
            }
        }
        let (active, wal) = active.expect("the last segment is opened");
        Self::check_gaps(&log_dir, dir, &gaps, from_seq, &sealed, &active)?;
        let start = sealed.iter().chain([&active]).find_map(|s| s.index.first).map_or(start, |first| first.max(start));
        let mut store = FileStore {
            dir: dir.to_owned(),
            log_dir,
            fsync,
            _lock: lock,
            state,
            handed: false,
            sealed,
            active,
            wal,
            next_batch,
            start,
            since_checkpoint: 0,
            keep_from,
            checkpoint_seq: from_seq,
            segment_bytes,
            checkpoint_bytes,
            checkpoints: 0,
            fsyncs: 0,
            writes: 0,
            replayed,
        };
        store.start = store.start.max(store.retained_start());
        Ok(store)
    }

    /// Segments missing between others (`gaps`, the numbers on either side)
    /// are damage, unless a release before this one's retention deleted them:
    /// it also deleted a segment that held no decided slot between kept
    /// ones. Such a gap lies below the checkpoint (`from_seq`: nothing to
    /// fold from it) and the decided slots on either side follow each other.
    fn check_gaps(
        log_dir: &Path,
        dir: &Path,
        gaps: &[(u64, u64)],
        from_seq: u64,
        sealed: &[Segment],
        active: &Segment,
    ) -> Result<(), StorageError> {
        let segments: Vec<&Segment> = sealed.iter().chain([active]).collect();
        for &(before, after) in gaps {
            let last_before = segments.iter().rev().filter(|s| s.seq <= before).find_map(|s| s.index.last);
            let first_after = segments.iter().filter(|s| s.seq >= after).find_map(|s| s.index.first);
            let follows = match (last_before, first_after) {
                (Some(last), Some(first)) => first == last.next(),
                (_, None) => true,
                (None, Some(_)) => false,
            };
            if after > from_seq || !follows {
                return Err(StorageError::Corrupt(format!(
                    "{}: segment {} is missing between {before} and {after} (deleted or lost); move {} away and \
                     start the node again on an empty data dir: it copies the log from its peers",
                    log_dir.display(),
                    before + 1,
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// Folds (if asked) and indexes the batches of one segment's records.
    /// `replay` is the state, the checkpoint's offset, and whether that
    /// offset is in this segment (else every batch is folded).
    fn fold_records(
        path: &Path,
        records: &[(u64, Vec<u8>)],
        index: &mut SegmentIndex,
        mut replay: Option<(&mut S, u64, bool)>,
        next_batch: &mut u64,
    ) -> Result<Slot, StorageError> {
        let mut retained = Slot(0);
        let mut batches = Batches::<S::Op>::new(path);
        for (offset, record) in records {
            let Some((first, number, ops)) = batches.push(*offset, record)? else { continue };
            *next_batch = (*next_batch).max(number + 1);
            let learned: Vec<Slot> = ops
                .iter()
                .filter_map(|op| match S::log_op(op) {
                    LogOp::Learn { slot, .. } => Some(slot),
                    _ => None,
                })
                .collect();
            if let (Some(a), Some(b)) = (learned.first(), learned.last()) {
                index.note(first, *a, *b);
            }
            if let Some((state, from, here)) = replay.as_mut() {
                if *here && first < *from {
                    continue;
                }
                for op in &ops {
                    state.check(op).map_err(|problem| {
                        StorageError::Corrupt(format!("{}: byte {first}: {problem}; refusing to start", path.display()))
                    })?;
                    state.apply(op);
                    if let LogOp::Retain(below) = S::log_op(op) {
                        retained = retained.max(below);
                    }
                }
            }
        }
        batches.finish();
        Ok(retained)
    }

    /// The newest readable checkpoint, and the segment from which no segment may
    /// be deleted (where the older checkpoint starts).
    fn read_checkpoints(dir: &Path, have_segments: bool) -> Option<(Checkpoint<S>, u64)> {
        let current = Self::read_checkpoint(&dir.join(CHECKPOINT));
        let previous = Self::read_checkpoint(&dir.join(CHECKPOINT_PREV));
        match (current, previous) {
            (Ok(c), Ok(p)) => {
                let keep = p.seq.min(c.seq);
                Some((c, keep))
            }
            (Ok(c), Err(_)) => {
                let keep = c.seq;
                Some((c, keep))
            }
            (Err(e), Ok(p)) => {
                warn!(error = %e, "the checkpoint is unreadable; using the one before it and folding the log since");
                let keep = p.seq;
                Some((p, keep))
            }
            (Err(a), Err(b)) => {
                if have_segments && (dir.join(CHECKPOINT).exists() || dir.join(CHECKPOINT_PREV).exists()) {
                    warn!(checkpoint = %a, previous = %b, "no checkpoint is readable; folding the whole log");
                }
                None
            }
        }
    }

    fn read_checkpoint(path: &Path) -> Result<Checkpoint<S>, String> {
        let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let body = checked_body(&bytes, CHECKPOINT_MAGIC).ok_or_else(|| format!("{}: damaged", path.display()))?;
        let c: Checkpoint<S> =
            serde_json::from_slice(body).map_err(|e| format!("{}: not a checkpoint: {e}", path.display()))?;
        if c.version != FORMAT_VERSION {
            return Err(format!("{}: version {}, this build reads {FORMAT_VERSION}", path.display(), c.version));
        }
        Ok(c)
    }

    fn read_index(segment: &Path) -> Option<SegmentIndex> {
        let bytes = fs::read(segment.with_extension("idx")).ok()?;
        let body = checked_body(&bytes, b"PAXIDX01")?;
        let file: IndexFile = serde_json::from_slice(body).ok()?;
        (file.version == FORMAT_VERSION).then_some(file.index)
    }

    /// Writes a sealed segment's index; losing it costs a rebuild, so it is not synced.
    fn write_index(segment: &Path, index: &SegmentIndex) {
        let file = IndexFile { version: FORMAT_VERSION, index: index.clone() };
        let body = serde_json::to_vec(&file).expect("an index encodes");
        if let Err(e) = write_atomically(&segment.with_extension("idx"), &checked_file(b"PAXIDX01", &body), false) {
            warn!(path = %segment.display(), error = %e, "could not write a segment's index; it will be rebuilt");
        }
    }

    /// The first slot the sealed and active segments still hold.
    fn retained_start(&self) -> Slot {
        self.sealed.iter().chain([&self.active]).find_map(|s| s.index.first).unwrap_or(self.start)
    }

    /// Makes the next append or sync fail; for the failing-store tests.
    pub fn inject_fault(&mut self, fault: Fault) {
        self.wal.inject_fault(fault);
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Claims the data dir for `owner` (the node that runs on it, e.g.
    /// `acceptor-3`): the first time, records it in
    /// [`OWNER`] (checksummed, replaced atomically); after that, returns
    /// the owner recorded when it is another, so that a data dir copied
    /// from another node is not run as this one.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when [`OWNER`] is damaged, [`StorageError::Io`] when it cannot be read or written.
    pub fn claim(&self, owner: &str) -> Result<Option<String>, StorageError> {
        let path = self.dir.join(OWNER);
        match fs::read(&path) {
            Ok(bytes) => {
                let recorded = checked_body(&bytes, OWNER_MAGIC)
                    .and_then(|body| std::str::from_utf8(body).ok())
                    .ok_or_else(|| StorageError::Corrupt(format!("{}: damaged", path.display())))?;
                Ok((recorded != owner).then(|| recorded.to_owned()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomically(&path, &checked_file(OWNER_MAGIC, owner.as_bytes()), self.fsync)
                    .map_err(io_error(&path, "write"))?;
                Ok(None)
            }
            Err(e) => Err(io_error(&path, "read")(e)),
        }
    }

    /// The segment files, oldest first; the last is appended to.
    pub fn segments(&self) -> Vec<PathBuf> {
        self.sealed.iter().chain([&self.active]).map(|s| s.path.clone()).collect()
    }

    /// Bytes of segments folded when the store was opened: what a restart cost.
    pub fn replayed_bytes(&self) -> u64 {
        self.replayed
    }

    /// Writes a checkpoint of the state now (tests; the store writes them by itself).
    ///
    /// # Errors
    /// When it cannot be written; the previous checkpoints then still stand.
    pub fn checkpoint(&mut self) -> Result<(), StorageError> {
        assert!(!self.handed, "a store whose role keeps the state checkpoints the state it is given");
        let body = self.checkpoint_body(&self.state)?;
        self.install_checkpoint(&body)
    }

    /// The checkpoint of `state`, as of the end of the log now.
    fn checkpoint_body(&self, state: &S) -> Result<Vec<u8>, StorageError> {
        let checkpoint = Checkpoint {
            version: FORMAT_VERSION,
            state,
            seq: self.active.seq,
            offset: self.wal.len_bytes(),
            next_batch: self.next_batch,
            start: self.start,
        };
        serde_json::to_vec(&checkpoint).map_err(|e| StorageError::Io(format!("encode checkpoint: {e}")))
    }

    /// Writes a checkpoint made by [`FileStore::checkpoint_body`] over the
    /// current one, which becomes the previous one.
    fn install_checkpoint(&mut self, body: &[u8]) -> Result<(), StorageError> {
        self.check_dir()?;
        let current = self.dir.join(CHECKPOINT);
        let previous = self.dir.join(CHECKPOINT_PREV);
        if current.exists() {
            fs::rename(&current, &previous).map_err(io_error(&current, "rename"))?;
        }
        write_atomically(&current, &checked_file(CHECKPOINT_MAGIC, body), self.fsync)
            .map_err(io_error(&current, "write"))?;
        // The previous checkpoint is now the fallback: keep what it needs.
        self.keep_from = self.checkpoint_seq;
        self.checkpoint_seq = self.active.seq;
        self.checkpoints += 1;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Appends one batch and syncs it; then folds it into `state`, unless
    /// the role gave its own fold of it (`folded`), and checkpoints when due.
    fn append(&mut self, ops: &[S::Op], folded: Option<&S>) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        let records = encode_batch(self.next_batch, ops)?;
        let size: u64 = records.iter().map(|r| r.len() as u64 + 8).sum();
        if self.wal.len_bytes() + size > self.segment_bytes && self.wal.len_bytes() > HEADER_BYTES as u64 {
            self.roll()?;
        }
        let offset = self.wal.len_bytes();
        self.next_batch += 1;
        self.wal.append(&records).map_err(storage_error)?;
        self.writes += 1;
        let syncs = self.wal.syncs();
        self.wal.sync().map_err(storage_error)?;
        self.fsyncs += self.wal.syncs() - syncs;
        let mut learned: Option<(Slot, Slot)> = None;
        let mut retained = false;
        for op in ops {
            if folded.is_none() {
                // Our own role made these: one that cannot follow is a bug, not damage.
                assert_eq!(self.state.check(op), Ok(()), "a role persists only operations that follow its state");
                self.state.apply(op);
            }
            match S::log_op(op) {
                LogOp::Learn { slot, .. } => learned = Some(learned.map_or((slot, slot), |(a, _)| (a, slot))),
                LogOp::Retain(below) => {
                    self.start = self.start.max(below);
                    retained = true;
                }
                LogOp::Other => {}
            }
        }
        if let Some((a, b)) = learned {
            self.active.index.note(offset, a, b);
        }
        self.active.bytes = self.wal.len_bytes();
        self.since_checkpoint += size;
        if self.since_checkpoint >= self.checkpoint_bytes {
            let body = self.checkpoint_body(folded.unwrap_or(&self.state))?;
            self.install_checkpoint(&body)?;
        }
        if retained {
            self.delete_retained();
        }
        Ok(())
    }

    /// Fails when the log's folder is no longer there: the data dir was
    /// deleted (or replaced) under the running node. Creating it again would
    /// write a checkpoint over a log that lost its segments, which a restart
    /// would then take for an intact store; failing instead stops the node,
    /// and a restart finds the data dir empty and rebuilds from its peers.
    fn check_dir(&self) -> Result<(), StorageError> {
        match fs::metadata(&self.log_dir) {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(StorageError::Io(format!(
                "{}: the data dir's log folder is gone (deleted or replaced while the node ran); stopping: \
                 started again, the node finds its data dir empty and rebuilds from its peers",
                self.log_dir.display()
            ))),
        }
    }

    /// Seals the active segment and opens the next.
    fn roll(&mut self) -> Result<(), StorageError> {
        self.check_dir()?;
        let seq = self.active.seq + 1;
        let path = segment_path(&self.log_dir, seq);
        let (wal, _) = Wal::open_at(&path, self.fsync).map_err(storage_error)?;
        Self::write_index(&self.active.path, &self.active.index);
        let old = std::mem::replace(&mut self.active, Segment { seq, path, index: SegmentIndex::default(), bytes: 0 });
        self.wal = wal;
        info!(segment = %old.path.display(), bytes = old.bytes, "sealed a segment of the log");
        self.sealed.push(old);
        Ok(())
    }

    /// Deletes the sealed segments retention no longer needs.
    ///
    /// Only from the first on, up to the first one kept: a segment in the
    /// middle that holds no decided slot (promises and votes while nothing
    /// was decided) stays, so that the segments on disk are always a run
    /// without gaps, as opening them requires.
    fn delete_retained(&mut self) {
        let (start, keep_from) = (self.start, self.keep_from);
        let mut kept = Vec::with_capacity(self.sealed.len());
        for segment in std::mem::take(&mut self.sealed) {
            let below = segment.index.last.is_none_or(|last| last < start);
            if kept.is_empty() && below && segment.seq < keep_from && start > Slot(0) {
                let _ = fs::remove_file(segment.path.with_extension("idx"));
                match fs::remove_file(&segment.path) {
                    Ok(()) => info!(segment = %segment.path.display(), below = start.0, "deleted a segment: retention"),
                    Err(e) => {
                        warn!(segment = %segment.path.display(), error = %e, "could not delete a segment");
                        kept.push(segment);
                    }
                }
            } else {
                kept.push(segment);
            }
        }
        self.sealed = kept;
    }

    /// Reads pages of the decided log from `from`.
    fn read_log(&self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        let start = self.start;
        let from = from.max(start);
        let mut page = LogPage { start, from, entries: Vec::new() };
        let segments: Vec<&Segment> = self.sealed.iter().chain([&self.active]).collect();
        let Some(first) = segments.iter().position(|s| s.index.last.is_some_and(|l| l >= from)) else {
            return Ok(page);
        };
        let mut next = from;
        let mut bytes = 0;
        for segment in &segments[first..] {
            let mut offset = segment.index.seek(next);
            let mut batches = Batches::<S::Op>::new(&segment.path);
            loop {
                let records = read_records(&segment.path, offset, READ_CHUNK_BYTES).map_err(storage_error)?;
                let Some((at, last)) = records.last() else { break };
                offset = at + 8 + last.len() as u64;
                for (at, record) in &records {
                    let Some((_, _, ops)) = batches.push(*at, record)? else { continue };
                    for op in &ops {
                        if let LogOp::Learn { slot, value, duplicate } = S::log_op(op) {
                            if slot > next {
                                // Every slot from the log's start on is held: retention and
                                // a restart of the log move `start` past what they remove.
                                return Err(StorageError::Corrupt(format!(
                                    "{}: the decided log jumps from slot {} to slot {} (a segment is damaged or \
                                     missing); move {} away and start the node again on an empty data dir: it \
                                     copies the log from its peers",
                                    segment.path.display(),
                                    next.0,
                                    slot.0,
                                    self.dir.display()
                                )));
                            }
                            if slot == next {
                                let len = value.wire_len();
                                if !page.entries.is_empty() && bytes + len > max_bytes {
                                    return Ok(page);
                                }
                                page.entries.push(Stored { value: value.clone(), duplicate });
                                bytes += len;
                                next = next.next();
                                if page.entries.len() >= limit {
                                    return Ok(page);
                                }
                            }
                        }
                    }
                }
            }
            if let Some(last) = segment.index.last.filter(|last| next <= *last) {
                // Its records end (zeros, or the end of the file) before the last slot its index holds.
                return Err(StorageError::Corrupt(format!(
                    "{}: the records end before slot {} (the segment holds slots up to {}): the segment is \
                     damaged; move {} away and start the node again on an empty data dir: it copies the log from \
                     its peers",
                    segment.path.display(),
                    next.0,
                    last.0,
                    self.dir.display()
                )));
            }
        }
        Ok(page)
    }
}

impl<S> Store for FileStore<S>
where
    S: Durable,
    S::Op: Serialize + DeserializeOwned + BinaryOp,
{
    type State = S;

    fn load(&mut self) -> Result<S, StorageError> {
        assert!(!self.handed, "a store is loaded before its role keeps the state");
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[S::Op]) -> Result<(), StorageError> {
        assert!(!self.handed, "a store whose role keeps the state is given it with every batch");
        self.append(ops, None)
    }

    fn apply_folded(&mut self, ops: &[S::Op], folded: &S) -> Result<(), StorageError> {
        self.handed = true;
        self.append(ops, Some(folded))
    }

    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        self.read_log(from, limit, max_bytes)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            fsyncs: self.fsyncs,
            writes: self.writes,
            compactions: self.checkpoints,
            bytes: self.sealed.iter().map(|s| s.bytes).sum::<u64>() + self.wal.len_bytes(),
        }
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:010}.wal"))
}

/// Locks `dir`'s [`LOCK`] file for this store: refused, with one line, while
/// another store (another process, or this one) has the data dir open.
fn lock_dir(dir: &Path) -> Result<fs::File, StorageError> {
    let path = dir.join(LOCK);
    let file =
        fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_error(&path, "open"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StorageError::Io(format!(
            "{}: another process has this data dir open (is this node already running?): two nodes on one data \
             dir would corrupt it; stop the other, or give this one a data dir of its own",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path, "lock")(e)),
    }
}

/// The numbers of the segment files in `dir`.
fn segment_numbers(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir, "list"))? {
        let entry = entry.map_err(io_error(dir, "list"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name.strip_suffix(".wal").and_then(|n| n.parse::<u64>().ok()) {
            seqs.push(seq);
        }
    }
    Ok(seqs)
}

/// `magic`, the CRC-32 of `body`, then `body`.
fn checked_file(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(magic);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a file made by [`checked_file`], if intact.
fn checked_body<'a>(bytes: &'a [u8], magic: &[u8; 8]) -> Option<&'a [u8]> {
    let rest = bytes.strip_prefix(magic.as_slice())?;
    let (crc, body) = rest.split_first_chunk::<4>()?;
    (crc32fast::hash(body) == u32::from_le_bytes(*crc)).then_some(body)
}

/// Writes `bytes` to a file beside `path`, syncs it (with `fsync`), renames
/// it over `path` and syncs the directory: a crash leaves the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let temp = path.with_extension("tmp");
    {
        let file = fs::File::create(&temp)?;
        io::Write::write_all(&mut &file, bytes)?;
        if fsync {
            file.sync_data()?;
        }
    }
    fs::rename(&temp, path)?;
    if fsync {
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}
