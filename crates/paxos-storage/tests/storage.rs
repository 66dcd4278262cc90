//! The storage conformance suite ([`paxos_storage::suite`]) run against every
//! store, in memory and on disk, and shown to bite on a deliberately broken
//! one; then the crash and failure checks that only a store with a disk can
//! take: torn tails, injected write and sync failures, a corrupt middle,
//! segments, checkpoints (lost or damaged), indexes rebuilt, retention.
//!
//! The oracle is the core's own fold ([`Fold::apply`]): whatever a store does,
//! loading must give the state that the operations it acknowledged fold into.

use std::fs;
use std::path::{Path, PathBuf};

use paxos_core::{AcceptorOp, AcceptorState, ProposerOp, ProposerState, StorageError, Store};
use paxos_proto::{Ballot, ClientId, Command, NodeId, Slot, Value};
use paxos_storage::suite::{self, acceptor_history, fold_log, proposer_history, BrokenHarness, Harness, MemHarness};
use paxos_storage::wal::{Fault, Wal, HEADER_BYTES, RECORD_HEADER_BYTES};
use paxos_storage::{Durable, FileStore, CHECKPOINT, CHECKPOINT_PREV};

type FileAcceptorStore = FileStore<AcceptorState>;
type FileProposerStore = FileStore<ProposerState>;

// ---- fixtures ---------------------------------------------------------------

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command::new(ClientId(client), seq, data))
}

fn ballot(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

fn accept(slot: u64, b: Ballot, value: Value) -> AcceptorOp {
    AcceptorOp::Accept { slot: Slot(slot), ballot: b, value }
}

fn fold_acceptor<'a>(batches: impl IntoIterator<Item = &'a Vec<AcceptorOp>>) -> AcceptorState {
    suite::fold(batches)
}

fn fold_proposer<'a>(batches: impl IntoIterator<Item = &'a Vec<ProposerOp>>) -> ProposerState {
    suite::fold(batches)
}

// ---- the suite on every store --------------------------------------------------

/// A file store in a temporary data dir; a restart drops it and opens the dir again.
struct FileHarness<S> {
    dir: tempfile::TempDir,
    _state: std::marker::PhantomData<S>,
}

impl<S> FileHarness<S> {
    fn new() -> FileHarness<S> {
        FileHarness { dir: tempfile::tempdir().expect("tempdir"), _state: std::marker::PhantomData }
    }
}

impl<S> Harness for FileHarness<S>
where
    S: Durable + PartialEq + std::fmt::Debug,
    S::Op: serde::Serialize + serde::de::DeserializeOwned + paxos_storage::ops::BinaryOp,
{
    type State = S;
    type Store = FileStore<S>;

    fn open(&mut self) -> FileStore<S> {
        FileStore::open(self.dir.path(), true).expect("open the store")
    }

    fn fail_next_apply(&mut self, store: &mut FileStore<S>, bytes: usize) -> bool {
        store.inject_fault(Fault::Write { written: bytes });
        true
    }
}

#[test]
fn the_memory_store_passes_the_suite() {
    suite::run_both(MemHarness::<AcceptorState>::default, MemHarness::<ProposerState>::default).unwrap();
}

#[test]
fn the_file_store_passes_the_suite() {
    suite::run_both(FileHarness::<AcceptorState>::new, FileHarness::<ProposerState>::new).unwrap();
}

/// The suite bites: a store that leaves half a failed batch applied fails it.
#[test]
fn a_store_without_atomic_batches_fails_the_suite() {
    let acceptor = suite::run(BrokenHarness::<AcceptorState>::default, &acceptor_history(), 4096);
    let err = acceptor.expect_err("the broken store must fail the suite");
    assert!(err.starts_with("failed_apply_is_all_or_nothing") && err.contains("part of the batch"), "{err}");
    let proposer = suite::run(BrokenHarness::<ProposerState>::default, &proposer_history(), 4096);
    assert!(proposer.is_err(), "the broken store must fail the suite for the proposer state too");
}

// ---- what only a disk can do ---------------------------------------------------

/// The first segment of a store's log (with the default segment size, every test's whole log).
fn acceptor_wal(dir: &Path) -> PathBuf {
    dir.join("log").join("0000000001.wal")
}

/// The byte offsets at which the records of a log file start, and its
/// logical end, after which the file holds only its preallocated zeros.
fn record_starts(path: &Path) -> Vec<usize> {
    let bytes = fs::read(path).expect("read log");
    let mut at = HEADER_BYTES;
    let mut starts = Vec::new();
    // No record header is all zero: that is where the zero tail begins.
    while at + RECORD_HEADER_BYTES <= bytes.len() && bytes[at..at + RECORD_HEADER_BYTES] != [0; RECORD_HEADER_BYTES] {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += RECORD_HEADER_BYTES + len;
    }
    assert!(at <= bytes.len() && bytes[at..].iter().all(|&b| b == 0), "the log is whole, then zeros");
    starts.push(at);
    starts
}

/// A batch too large for one record (values of 8 KiB), so the store splits it.
fn big_batch(first_slot: u64) -> Vec<AcceptorOp> {
    let b = ballot(5, 1);
    (0..200).map(|i| accept(first_slot + i, b, cmd(42, i + 1, &"x".repeat(8 * 1024)))).collect()
}

/// Many small segments and checkpoints: a restart folds only what came
/// after the last checkpoint (constant time), loads the same state, and
/// reads the same decided log from every segment.
#[test]
fn restart_folds_only_the_tail_after_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileProposerStore::open_with(dir, true, 64 * 1024, 32 * 1024).expect("open");
    let mut store = open(dir.path());
    let mut history = vec![vec![ProposerOp::Round(7)]];
    for batch in 0..200u64 {
        history.push(
            (0..10)
                .map(|i| ProposerOp::Learn {
                    slot: Slot(batch * 10 + i),
                    value: cmd(batch, i + 1, &"x".repeat(200)),
                    duplicate: false,
                })
                .collect(),
        );
    }
    for batch in &history {
        store.apply(batch).expect("apply");
    }
    assert!(store.segments().len() > 5, "rolled over segments: {}", store.segments().len());
    assert!(store.stats().compactions > 5, "wrote checkpoints");
    let total = store.stats().bytes;
    drop(store);
    let mut store = open(dir.path());
    assert!(store.replayed_bytes() < 64 * 1024 + 32 * 1024, "folded {} of {total} bytes", store.replayed_bytes());
    assert_eq!(store.load().expect("load"), fold_proposer(&history));
    let want = fold_log::<ProposerState>(&history);
    for from in [0, 5, 999, 1500, 1999, 2000] {
        let page = store.read(Slot(from), 3000, usize::MAX).expect("read");
        assert_eq!(page.entries, want.read(Slot(from), 3000, usize::MAX).entries, "read from {from}");
    }
}

/// A damaged checkpoint falls back to the previous one, and without either,
/// to folding every segment: the same state each time.
#[test]
fn damaged_checkpoints_fall_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileAcceptorStore::open_with(dir, true, 64 * 1024, 16 * 1024).expect("open");
    let mut store = open(dir.path());
    let history = acceptor_history();
    for batch in &history {
        store.apply(batch).expect("apply");
    }
    assert!(store.stats().compactions >= 2, "two checkpoints at least");
    drop(store);
    let expected = fold_acceptor(&history);
    let damage = |name: &str| {
        let path = dir.path().join(name);
        let mut bytes = fs::read(&path).expect("read checkpoint");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        fs::write(&path, bytes).expect("write");
    };
    damage(CHECKPOINT);
    let mut store = open(dir.path());
    assert_eq!(store.load().expect("load"), expected, "from the previous checkpoint");
    drop(store);
    damage(CHECKPOINT_PREV);
    let mut store = open(dir.path());
    assert_eq!(store.load().expect("load"), expected, "from the whole log");
    assert!(store.replayed_bytes() >= store.stats().bytes - HEADER_BYTES as u64 * store.segments().len() as u64 - 64);
}

/// A log that ends before its checkpoint's position lost writes the disk had
/// synced (the checkpoint is written only after the batches it covers): a
/// zeroed tail, or a log rolled back under a newer checkpoint. The store
/// refuses to start, saying so, rather than append below the checkpoint,
/// where the next start would skip what it wrote. Before, it started, and
/// the batches of that start were lost at the next.
#[test]
fn a_log_that_ends_before_its_checkpoint_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileAcceptorStore::open_with(dir, true, 1 << 30, 16 * 1024);
    let mut store = open(dir.path()).expect("open");
    for batch in &acceptor_history() {
        store.apply(batch).expect("apply");
    }
    assert!(store.stats().compactions >= 1, "a checkpoint at least");
    drop(store);
    let path = acceptor_wal(dir.path());
    let mut bytes = fs::read(&path).expect("read");
    let second = record_starts(&path)[1];
    bytes[second..].fill(0);
    fs::write(&path, bytes).expect("write");
    let error = open(dir.path()).expect_err("refuses to start").to_string();
    assert!(error.contains("before the checkpoint") && error.contains("lost writes it had synced"), "{error}");
}

/// A store given the role's own fold with every batch (an acceptor's, which
/// folds its operations as it makes them) folds nothing itself and
/// checkpoints that state: a restart loads what the operations fold into,
/// from the last checkpoint and the tail after it.
#[test]
fn a_store_given_the_roles_fold_checkpoints_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileAcceptorStore::open_with(dir, true, 64 * 1024, 16 * 1024).expect("open");
    let mut store = open(dir.path());
    let mut state = store.load().expect("load");
    let history = acceptor_history();
    for batch in &history {
        for op in batch {
            state.apply(op);
        }
        store.apply_folded(batch, &state).expect("apply");
    }
    assert!(store.stats().compactions >= 2, "two checkpoints at least");
    let total = store.stats().bytes;
    drop(store);
    let mut store = open(dir.path());
    assert!(store.replayed_bytes() < total / 2, "folded {} of {total} bytes", store.replayed_bytes());
    let loaded = store.load().expect("load");
    assert_eq!(loaded, fold_acceptor(&history));
    // Every operation made durable counts once, across the checkpoint and the tail after it: an
    // acceptor's answers say how much it wrote, and a restart must find exactly that much.
    assert_eq!(loaded.ops, history.iter().map(|b| b.len() as u64).sum::<u64>());
}

/// What such a store checkpoints is the state it is given, not a fold of
/// its own: a state marked before the batch that fills a checkpoint comes
/// back, mark and all, from that checkpoint.
#[test]
fn a_store_given_the_roles_fold_checkpoints_the_state_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileAcceptorStore::open_with(dir, true, 64 * 1024, 1 << 30).expect("open");
    let mut store = open(dir.path());
    let history = acceptor_history();
    let mut state = store.load().expect("load");
    for batch in &history {
        for op in batch {
            state.apply(op);
        }
        store.apply_folded(batch, &state).expect("apply");
    }
    drop(store);
    // A checkpoint is due with the next batch, whose given state carries a mark.
    let open_small = |dir: &Path| FileAcceptorStore::open_with(dir, true, 64 * 1024, 1).expect("open");
    let mut store = open_small(dir.path());
    let batch = vec![AcceptorOp::Promise(ballot(1_000, 1))];
    state.apply(&batch[0]);
    let mut marked = state.clone();
    marked.start = Slot(123_456);
    store.apply_folded(&batch, &marked).expect("apply");
    drop(store);
    let mut store = open_small(dir.path());
    assert_eq!(store.load().expect("load"), marked, "the checkpoint holds the state given");
}

/// Once given the role's fold, a store must be given it with every batch:
/// its own state is stale from then on.
#[test]
#[should_panic(expected = "given it with every batch")]
fn a_store_given_the_roles_fold_refuses_a_batch_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileAcceptorStore::open(dir.path(), true).expect("open");
    let mut state = store.load().expect("load");
    let batch = vec![AcceptorOp::Promise(ballot(1, 1))];
    state.apply(&batch[0]);
    store.apply_folded(&batch, &state).expect("apply");
    let _ = store.apply(&[AcceptorOp::Promise(ballot(2, 1))]);
}

/// A lost index is rebuilt from its segment, and reads are the same.
#[test]
fn lost_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &Path| FileProposerStore::open_with(dir, true, 12 * 1024, 1 << 30).expect("open");
    let mut store = open(dir.path());
    let history = proposer_history();
    for batch in &history {
        store.apply(batch).expect("apply");
    }
    let segments = store.segments();
    assert!(segments.len() > 2, "{segments:?}");
    drop(store);
    for segment in &segments[..segments.len() - 1] {
        let index = segment.with_extension("idx");
        assert!(index.exists(), "{} has an index", segment.display());
        fs::remove_file(&index).expect("remove");
    }
    fs::write(segments[0].with_extension("idx"), b"PAXIDX01garbage").expect("damage");
    let mut store = open(dir.path());
    let want = fold_log::<ProposerState>(&history);
    let page = store.read(Slot(0), 10_000, usize::MAX).expect("read");
    let expected = want.read(Slot(0), 10_000, usize::MAX);
    assert_eq!((page.from, page.entries.len()), (expected.from, expected.entries.len()));
    assert!(page.entries == expected.entries, "the same entries");
    assert!(segments[1].with_extension("idx").exists(), "rebuilt and written again");
}

/// A proposer learns a value of 300 bytes at `slot`.
fn learn_300(slot: u64) -> ProposerOp {
    ProposerOp::Learn { slot: Slot(slot), value: cmd(1, slot + 1, &"r".repeat(300)), duplicate: false }
}

/// A proposer's store in `dir` of 16 KiB segments and 8 KiB checkpoints,
/// holding slots 0..1000 of the decided log in batches of ten.
fn store_of_1000_slots(dir: &Path) -> FileProposerStore {
    let mut store = FileProposerStore::open_with(dir, true, 16 * 1024, 8 * 1024).expect("open");
    for batch in 0..100u64 {
        store.apply(&(batch * 10..batch * 10 + 10).map(learn_300).collect::<Vec<_>>()).expect("apply");
    }
    store
}

/// [`store_of_1000_slots`], closed: its data dir and segments.
fn sealed_segments() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_of_1000_slots(dir.path());
    let segments = store.segments();
    assert!(segments.len() > 6, "{segments:?}");
    (dir, segments)
}

fn reopen(dir: &Path) -> Result<FileProposerStore, StorageError> {
    FileProposerStore::open_with(dir, true, 16 * 1024, 8 * 1024)
}

/// A sealed segment lost between others (no retention deletes one there):
/// the store refuses to open, naming it. Before, it opened and a read
/// returned the log up to the hole as if it ended there (a short backup, a
/// `log` that left out acknowledged values, catch-up pages that stalled a
/// restarted proposer).
#[test]
fn a_missing_segment_refuses_to_open() {
    let (dir, segments) = sealed_segments();
    fs::remove_file(&segments[2]).expect("remove");
    let _ = fs::remove_file(segments[2].with_extension("idx"));
    let err = reopen(dir.path()).expect_err("refused");
    assert!(matches!(&err, StorageError::Corrupt(m) if m.contains("segment 3 is missing")), "{err}");
}

/// Zeros over a record of a sealed segment (a lost write, a zeroed range):
/// a read through it fails, naming the segment, rather than ending the log
/// there; the slots before it still read.
#[test]
fn zeros_in_a_sealed_segment_fail_the_read_through_them() {
    let (dir, segments) = sealed_segments();
    let damaged = &segments[2];
    let mut bytes = fs::read(damaged).expect("read");
    let at = record_starts(damaged)[1];
    bytes[at..at + RECORD_HEADER_BYTES].fill(0);
    fs::write(damaged, &bytes).expect("write");
    let mut store = reopen(dir.path()).expect("opens: sealed segments are read when asked");
    let before = store.read(Slot(0), 10, usize::MAX).expect("read before the damage");
    assert_eq!(before.entries.len(), 10);
    let err = store.read(Slot(0), 10_000, usize::MAX).expect_err("a read through the damage");
    let name = damaged.file_name().expect("a name").to_string_lossy().into_owned();
    assert!(matches!(&err, StorageError::Corrupt(m) if m.contains(&name)), "{err}");
    // The segments after it gone as well (the next one, the active one, with no records): the
    // log now ends before the checkpoint, which covers those segments, so the disk lost synced
    // writes and the store refuses to start (it used to open, and fail the read to the end).
    drop(store);
    for later in &segments[4..] {
        fs::remove_file(later).expect("remove");
        let _ = fs::remove_file(later.with_extension("idx"));
    }
    fs::write(&segments[3], &bytes[..HEADER_BYTES]).expect("an empty segment: its header alone");
    let _ = fs::remove_file(segments[3].with_extension("idx"));
    let err = reopen(dir.path()).expect_err("refuses to start");
    assert!(matches!(&err, StorageError::Corrupt(m) if m.contains("before the checkpoint")), "{err}");
}

/// The data dir deleted under a running store: the next segment or
/// checkpoint fails, naming the log folder, instead of creating the data
/// dir again and writing a checkpoint over a log that lost its segments
/// (which a restart took for an intact store).
#[test]
fn a_data_dir_deleted_under_the_store_stops_it() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("proposer-1");
    let mut store = FileProposerStore::open_with(&dir, true, 16 * 1024, 8 * 1024).expect("open");
    store.apply(&(0..10).map(learn_300).collect::<Vec<_>>()).expect("apply");
    fs::remove_dir_all(&dir).expect("delete the data dir");
    let err = (1..100u64)
        .find_map(|batch| store.apply(&(batch * 10..batch * 10 + 10).map(learn_300).collect::<Vec<_>>()).err())
        .expect("a later batch fails");
    assert!(matches!(&err, StorageError::Io(m) if m.contains("log folder is gone")), "{err}");
    assert!(!dir.exists(), "the data dir is not made again");
}

/// Retention deletes whole segments below the point (never one a checkpoint
/// needs), and a read below says where the log starts now.
#[test]
fn retention_deletes_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_of_1000_slots(dir.path());
    let before = store.segments().len();
    store.apply(&[ProposerOp::Retain(Slot(800))]).expect("retain");
    store.apply(&[learn_300(1000)]).expect("apply");
    let after = store.segments().len();
    assert!(after < before / 2, "deleted segments: {before} -> {after}");
    let page = store.read(Slot(0), 10, usize::MAX).expect("read below");
    assert!(page.start > Slot(0) && page.start <= Slot(800), "the log starts at {}", page.start);
    assert_eq!(page.from, page.start);
    let at = store.read(Slot(800), 1, usize::MAX).expect("read at the point");
    assert_eq!(at.entries.len(), 1, "the retained slots are all there");
    drop(store);
    let mut store = FileProposerStore::open_with(dir.path(), true, 16 * 1024, 8 * 1024).expect("reopen");
    assert_eq!(store.load().expect("load").log.decided, Slot(1001));
    assert!(store.read(Slot(0), 1, usize::MAX).expect("read").start > Slot(0));
}

/// Retention deletes segments from the first on only: a segment in the
/// middle that holds no decided slot (votes while nothing was decided)
/// stays, so the store opens again. Before, it was deleted while the one
/// before it was kept, and the store then refused to open (a segment
/// missing between others), found by a review of b0dfad9.
#[test]
fn retention_never_deletes_a_segment_between_kept_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || FileAcceptorStore::open_with(dir.path(), true, 16 * 1024, 8 * 1024);
    let mut store = open().expect("open");
    let value = |slot: u64| cmd(1, slot + 1, &"r".repeat(300));
    let learn = |slot: u64| AcceptorOp::Learn { slot: Slot(slot), value: value(slot) };
    store.apply(&[AcceptorOp::Identity(7)]).expect("identity");
    for batch in 0..20u64 {
        store.apply(&(batch * 10..batch * 10 + 10).map(learn).collect::<Vec<_>>()).expect("learns");
    }
    // Votes and nothing decided, for more than a segment.
    let before_votes = store.segments().len();
    for batch in 0..80u64 {
        store.apply(&[accept(200 + batch, ballot(1 + batch, 1), value(200 + batch))]).expect("a vote");
    }
    // A segment begun and sealed during the votes: it holds no decided slot.
    let votes_only = store.segments()[before_votes].clone();
    assert!(store.segments().len() > before_votes + 1, "the votes fill a segment");
    for batch in 20..40u64 {
        store.apply(&(batch * 10..batch * 10 + 10).map(learn).collect::<Vec<_>>()).expect("learns");
    }
    // Keep the second half of the first learns: the segment before the votes holds some.
    store.apply(&[AcceptorOp::Retain(Slot(190))]).expect("retain");
    for batch in 40..80u64 {
        store.apply(&(batch * 10..batch * 10 + 10).map(learn).collect::<Vec<_>>()).expect("learns");
    }
    drop(store);
    let mut store = open().expect("opens again: no segment is missing between others");
    let page = store.read(Slot(190), 10_000, usize::MAX).expect("read from the retention point");
    assert_eq!(page.entries.len(), 800 - 190, "every retained slot");
    // A data dir whose retention, in a release before, deleted such a segment still opens:
    // the gap lies below the checkpoint and the decided slots on either side follow each other.
    drop(store);
    fs::remove_file(&votes_only).expect("remove");
    let _ = fs::remove_file(votes_only.with_extension("idx"));
    let mut store = open().expect("a gap of votes alone, below the checkpoint, opens");
    assert_eq!(store.read(Slot(190), 10_000, usize::MAX).expect("read").entries.len(), 800 - 190);
}

/// A data dir is one store's at a time: a second open while the first is
/// open (another process, or this one) is refused with one line, and
/// succeeds once the first is closed, with what it wrote.
#[test]
fn a_data_dir_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = FileAcceptorStore::open(dir.path(), true).expect("open");
    first.apply(&[AcceptorOp::Promise(ballot(3, 1))]).expect("write");
    let err = FileAcceptorStore::open(dir.path(), true).expect_err("a second open is refused");
    let text = err.to_string();
    assert!(text.contains("another process has this data dir open") && !text.contains('\n'), "{text}");
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    assert!(dir.path().join(paxos_storage::LOCK).exists());
    drop(first);
    let mut again = FileAcceptorStore::open(dir.path(), true).expect("open once the first is closed");
    assert_eq!(again.load().expect("load").promised, ballot(3, 1));
}

/// The first claim of a data dir records its owner; the same owner may claim
/// it again (a restart, even on a copy moved to a new disk), another is told
/// who owns it; a damaged OWNER file is corruption, not silently replaced.
#[test]
fn a_data_dir_is_claimed_by_one_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = FileAcceptorStore::open(dir.path(), true).expect("open");
        assert_eq!(store.claim("acceptor-3 of cluster \"paxos\"").expect("claim"), None);
    }
    let copy = tempfile::tempdir().expect("tempdir");
    for name in [paxos_storage::OWNER, paxos_storage::LOG_DIR] {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(dir.path().join(name))
            .arg(copy.path())
            .status()
            .expect("cp");
        assert!(status.success());
    }
    let store = FileAcceptorStore::open(copy.path(), true).expect("open the copy");
    assert_eq!(store.claim("acceptor-3 of cluster \"paxos\"").expect("claim"), None, "the same node, moved");
    assert_eq!(
        store.claim("acceptor-4 of cluster \"paxos\"").expect("claim"),
        Some("acceptor-3 of cluster \"paxos\"".to_owned()),
        "another node"
    );
    drop(store);
    let owner = copy.path().join(paxos_storage::OWNER);
    let mut bytes = fs::read(&owner).expect("read");
    *bytes.last_mut().expect("a body") ^= 1;
    fs::write(&owner, bytes).expect("write");
    let store = FileAcceptorStore::open(copy.path(), true).expect("open");
    let err = store.claim("acceptor-3 of cluster \"paxos\"").expect_err("damaged");
    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
}

/// A log of the release before segments is refused with one line that says what to do.
#[test]
fn a_log_of_the_earlier_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("acceptor.wal"), b"PAXWAL01").expect("write");
    let err = FileAcceptorStore::open(dir.path(), true).expect_err("refused");
    assert!(err.to_string().contains("earlier release") && !err.to_string().contains('\n'), "{err}");
}

/// The records of one batch as the release before binary operations wrote
/// them: `batch:u64le flags:u8 json-array`, flags 1 on the last (only) record.
fn json_record<Op: serde::Serialize>(batch: u64, ops: &[Op]) -> Vec<u8> {
    let mut record = batch.to_le_bytes().to_vec();
    record.push(1);
    record.extend_from_slice(&serde_json::to_vec(ops).expect("encode"));
    record
}

/// A store written by the release before binary operations (JSON records)
/// opens with the same state and log, and goes on in binary in the same
/// segment; both kinds read back after another restart.
fn reads_json_records_then_appends_binary<S>(history: &[Vec<S::Op>])
where
    S: Durable + PartialEq + std::fmt::Debug,
    S::Op: serde::Serialize + serde::de::DeserializeOwned + paxos_storage::ops::BinaryOp,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = history.split_at(history.len() / 2);
    fs::create_dir(dir.path().join("log")).expect("mkdir");
    let (mut wal, records) = Wal::open(&acceptor_wal(dir.path()), true).expect("create the segment");
    assert!(records.is_empty());
    wal.append(old.iter().enumerate().map(|(i, ops)| json_record(i as u64 + 1, ops))).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let fold = |batches: &[Vec<S::Op>]| {
        let mut state = S::default();
        batches.iter().flatten().for_each(|op| state.apply(op));
        state
    };
    let mut store = FileStore::<S>::open(dir.path(), true).expect("open a store of JSON records");
    assert_eq!(store.load().expect("load"), fold(old));
    assert_eq!(
        store.read(Slot(0), 10_000, usize::MAX).expect("read").entries,
        fold_log::<S>(old).read(Slot(0), 10_000, usize::MAX).entries
    );
    for batch in new {
        store.apply(batch).expect("apply");
    }
    drop(store);
    let bytes = fs::read(acceptor_wal(dir.path())).expect("read");
    let starts = record_starts(&acceptor_wal(dir.path()));
    let flags: Vec<u8> = starts[..starts.len() - 1].iter().map(|&at| bytes[at + RECORD_HEADER_BYTES + 8]).collect();
    assert_eq!(flags, [vec![1; old.len()], vec![3; new.len()]].concat(), "JSON records, then binary ones");
    let mut store = FileStore::<S>::open(dir.path(), true).expect("reopen");
    assert_eq!(store.load().expect("load"), fold(history));
    let want = fold_log::<S>(history);
    assert_eq!(
        store.read(Slot(0), 10_000, usize::MAX).expect("read").entries,
        want.read(Slot(0), 10_000, usize::MAX).entries
    );
}

#[test]
fn stores_of_json_records_open_and_go_on_in_binary() {
    reads_json_records_then_appends_binary::<AcceptorState>(&acceptor_history());
    reads_json_records_then_appends_binary::<ProposerState>(&proposer_history());
}

/// A crash at any byte of the last write: the batches `apply` returned for are
/// all there, and the last batch is there whole or not at all.
#[test]
fn torn_tail_loses_nothing_that_apply_returned_for() {
    let history = acceptor_history();
    for last in [history[history.len() - 1].clone(), big_batch(2000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileAcceptorStore::open(dir.path(), true).expect("open");
        for batch in &history {
            store.apply(batch).expect("apply");
        }
        let durable_len = store.stats().bytes as usize;
        store.apply(&last).expect("apply");
        let end = store.stats().bytes as usize;
        drop(store);
        let full = fs::read(acceptor_wal(dir.path())).expect("read");
        assert_eq!(end, *record_starts(&acceptor_wal(dir.path())).last().expect("end"));
        let before = fold_acceptor(&history);
        let mut after = before.clone();
        for op in &last {
            after.apply(op);
        }
        // Cuts spread over the last write, and every byte near its record boundaries.
        let starts = record_starts(&acceptor_wal(dir.path()));
        let step = ((end - durable_len) / 40).max(1);
        let mut cuts: Vec<usize> = (durable_len..end).step_by(step).chain([end]).collect();
        for s in starts.iter().filter(|s| **s >= durable_len) {
            cuts.extend(s.saturating_sub(3)..(s + 12).min(end));
        }
        cuts.retain(|c| *c >= durable_len);
        for cut in cuts {
            // The write persisted up to `cut`: inside the preallocation the
            // zeros after it stay; a file without one ends at `cut`.
            let mut in_place = full.clone();
            in_place[cut..end].fill(0);
            for (how, torn) in [("in place", in_place), ("cut short", full[..cut].to_vec())] {
                let what = format!("cut at byte {cut}, {how}");
                let path = acceptor_wal(dir.path());
                fs::write(&path, &torn).expect("write");
                let mut store =
                    FileAcceptorStore::open(dir.path(), true).unwrap_or_else(|e| panic!("{what}: must load: {e}"));
                let state = store.load().expect("load");
                assert!(state == before || state == after, "{what}: the last batch is whole or absent");
                // (Zeros over bytes that were zeros already leave the batch whole.)
                let changed = how == "cut short" || full[cut..end].iter().any(|b| *b != 0);
                if cut < end && changed {
                    assert!(state == before, "{what}: a batch cut short is not applied");
                }
                // The store goes on normally after the cut.
                store.apply(&[AcceptorOp::Promise(Ballot::in_epoch(9, 99, NodeId(1)))]).expect("apply after a cut");
                drop(store);
                let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen");
                assert_eq!(store.load().expect("load").promised, Ballot::in_epoch(9, 99, NodeId(1)), "{what}");
            }
        }
    }
}

/// A write that fails part-way (disk full) or a sync that fails: after a
/// restart the failed batch is whole or absent, never half there, and every
/// earlier batch is intact.
#[test]
fn failing_store_never_makes_half_a_batch_visible() {
    let history = acceptor_history();
    let prepare = |dir: &Path| {
        let mut store = FileAcceptorStore::open(dir, true).expect("open");
        for batch in &history {
            store.apply(batch).expect("apply");
        }
        store
    };
    let before = fold_acceptor(&history);
    for last in [history[1].clone(), big_batch(2000)] {
        let mut after = before.clone();
        for op in &last {
            after.apply(op);
        }
        // The record boundaries of the batch, from a run that succeeds.
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = prepare(scratch.path());
        let start = store.stats().bytes as usize;
        store.apply(&last).expect("apply");
        let starts: Vec<usize> = record_starts(&acceptor_wal(scratch.path()))
            .into_iter()
            .filter(|s| *s > start)
            .map(|s| s - start)
            .collect();
        let total = *starts.last().expect("end");
        let bytes = fs::read(acceptor_wal(scratch.path())).expect("read");
        let batch = &bytes[start..start + total];
        let mut written: Vec<usize> = vec![0, 1, 8, 9, total - 1];
        for s in &starts {
            written.extend([s - 1, *s, s + 1]);
        }
        for w in written {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut store = prepare(dir.path());
            store.inject_fault(Fault::Write { written: w });
            assert!(store.apply(&last).is_err(), "an injected write fault fails the apply");
            assert!(store.apply(&history[0]).is_err(), "a failed store refuses every later apply");
            drop(store);
            let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen after a failed write");
            let state = store.load().expect("load");
            // (The bytes not written may all be zeros, as the preallocated file is: then the batch is whole.)
            if w < total && batch[w..].iter().any(|b| *b != 0) {
                assert!(state == before, "write fault after {w} of {total} bytes: nothing of the batch is visible");
            } else {
                assert!(state == before || state == after, "write fault after the whole batch: whole or absent");
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = prepare(dir.path());
        store.inject_fault(Fault::Sync);
        assert!(store.apply(&last).is_err(), "an injected sync fault fails the apply");
        drop(store);
        let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen after a failed sync");
        let state = store.load().expect("load");
        assert!(state == before || state == after, "after a failed sync the batch is whole or absent");
    }

    // The same for the proposer store.
    let dir = tempfile::tempdir().expect("tempdir");
    let history = proposer_history();
    let mut store = FileProposerStore::open(dir.path(), true).expect("open");
    for batch in &history[..3] {
        store.apply(batch).expect("apply");
    }
    store.inject_fault(Fault::Write { written: 20 });
    assert!(store.apply(&history[3]).is_err());
    drop(store);
    let mut store = FileProposerStore::open(dir.path(), true).expect("reopen");
    assert_eq!(store.load().expect("load"), fold_proposer(&history[..3]));
}

/// Damage before the last intact record is refused with the file and the offset named.
#[test]
fn corrupt_middle_refuses_to_open_with_a_clear_error() {
    let history = acceptor_history();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileAcceptorStore::open(dir.path(), true).expect("open");
    for batch in &history {
        store.apply(batch).expect("apply");
    }
    drop(store);
    let path = acceptor_wal(dir.path());
    let starts = record_starts(&path);
    let mut bytes = fs::read(&path).expect("read");
    let victim = starts[1] + RECORD_HEADER_BYTES + 3;
    bytes[victim] ^= 0x55;
    fs::write(&path, &bytes).expect("write");
    let err = FileAcceptorStore::open(dir.path(), true).expect_err("a corrupt middle must not open");
    let StorageError::Corrupt(message) = &err else { panic!("expected a corrupt error, got {err:?}") };
    assert!(message.contains(&path.display().to_string()), "names the file: {message}");
    assert!(message.contains(&format!("offset {}", starts[1])), "names the offset: {message}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");

    // The proposer store refuses the same way.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileProposerStore::open(dir.path(), true).expect("open");
    for batch in &proposer_history() {
        store.apply(batch).expect("apply");
    }
    drop(store);
    let path = acceptor_wal(dir.path());
    let starts = record_starts(&path);
    let mut bytes = fs::read(&path).expect("read");
    bytes[starts[2] + 2] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    let err = FileProposerStore::open(dir.path(), true).expect_err("a corrupt middle must not open");
    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
}

/// The stores report the logical length of their log, which compaction is
/// decided on, not the size of its preallocated file.
#[test]
fn stats_count_the_log_not_its_preallocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let mut acceptor = FileAcceptorStore::open(dir.path(), true).expect("open");
    let mut proposer = FileProposerStore::open(other.path(), true).expect("open");
    for batch in &acceptor_history() {
        acceptor.apply(batch).expect("apply");
    }
    for batch in &proposer_history() {
        proposer.apply(batch).expect("apply");
    }
    for (bytes, path) in
        [(acceptor.stats().bytes, acceptor_wal(dir.path())), (proposer.stats().bytes, acceptor_wal(other.path()))]
    {
        let end = *record_starts(&path).last().expect("end") as u64;
        assert_eq!(bytes, end, "{}", path.display());
        assert!(fs::metadata(&path).expect("metadata").len() > end, "{} is preallocated", path.display());
    }
}

/// The proposer store counts its syncs: one per non-empty batch (group commit).
#[test]
fn one_fsync_per_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileProposerStore::open(dir.path(), true).expect("open");
    let history = proposer_history();
    for batch in &history {
        store.apply(batch).expect("apply");
    }
    store.apply(&[]).expect("apply");
    assert_eq!(store.stats().fsyncs, history.len() as u64);
    let state = store.load().expect("load");
    assert_eq!(state.log.decided, Slot(260));
    assert_eq!(state.round, 3);
}
