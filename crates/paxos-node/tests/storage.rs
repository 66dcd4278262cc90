//! The storage conformance suite: one set of checks run against every store
//! (the core's in-memory stores and the file stores of the daemons), plus
//! crash and failure checks that only a store with a disk can take: torn
//! tails, injected write and sync failures, and a corrupt middle.
//!
//! The oracle is the core's own fold ([`AcceptorState::apply`],
//! [`ProposerState::apply`]): whatever a store does, loading must give the
//! state that the operations it acknowledged fold into.

use std::fs;
use std::path::{Path, PathBuf};

use paxos_core::{
    AcceptorOp, AcceptorState, AcceptorStore, MemAcceptorStore, MemProposerStore, ProposerOp, ProposerState,
    ProposerStore, StorageError,
};
use paxos_node::store::{FileAcceptorStore, FileProposerStore, StoreStatsSource, ACCEPTOR_WAL, PROPOSER_WAL};
use paxos_node::wal::{Fault, HEADER_BYTES, RECORD_HEADER_BYTES};
use paxos_proto::{Ballot, ClientId, Command, NodeId, Slot, Value};

// ---- fixtures ---------------------------------------------------------------

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command { client: ClientId(client), seq, data: data.to_owned() })
}

fn ballot(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

fn accept(slot: u64, b: Ballot, value: Value) -> AcceptorOp {
    AcceptorOp::Accept { slot: Slot(slot), ballot: b, value }
}

/// Batches of acceptor operations as a real acceptor emits them: promises,
/// accepts, re-accepts under a higher ballot, trims.
fn acceptor_history() -> Vec<Vec<AcceptorOp>> {
    let b1 = ballot(1, 2);
    let b2 = ballot(2, 1);
    vec![
        vec![AcceptorOp::Promise(b1)],
        vec![accept(0, b1, cmd(7, 1, "a")), accept(1, b1, cmd(7, 2, "b")), accept(2, b1, Value::Noop)],
        vec![accept(3, b1, cmd(8, 1, "c\n\"quoted\" é"))],
        vec![AcceptorOp::Promise(b2), accept(3, b2, cmd(8, 1, "c\n\"quoted\" é")), accept(4, b2, cmd(9, 1, "d"))],
        vec![AcceptorOp::Trim(Slot(2))],
        vec![accept(5, b2, cmd(9, 2, "e")), AcceptorOp::Trim(Slot(1))],
    ]
}

fn fold_acceptor<'a>(batches: impl IntoIterator<Item = &'a Vec<AcceptorOp>>) -> AcceptorState {
    let mut state = AcceptorState::default();
    for op in batches.into_iter().flatten() {
        state.apply(op);
    }
    state
}

fn proposer_history() -> Vec<Vec<ProposerOp>> {
    let learn = |slot: u64, value: Value| ProposerOp::Learn { slot: Slot(slot), value };
    vec![
        vec![ProposerOp::Round(1)],
        vec![learn(0, cmd(1, 1, "x")), learn(1, Value::Noop)],
        vec![ProposerOp::Round(3), learn(2, cmd(1, 2, "y"))],
        vec![learn(3, cmd(2, 1, "z"))],
        vec![ProposerOp::Round(2)],
    ]
}

fn fold_proposer<'a>(batches: impl IntoIterator<Item = &'a Vec<ProposerOp>>) -> ProposerState {
    let mut state = ProposerState::default();
    for op in batches.into_iter().flatten() {
        state.apply(op);
    }
    state
}

// ---- the stores under test ---------------------------------------------------

/// A kind of acceptor store: how to make a fresh one and how to "restart" it.
trait AcceptorKind {
    type Store: AcceptorStore;
    fn fresh(&self) -> Self::Store;
    fn reopen(&self, store: Self::Store) -> Self::Store;
}

struct MemAcceptors;

impl AcceptorKind for MemAcceptors {
    type Store = MemAcceptorStore;
    fn fresh(&self) -> MemAcceptorStore {
        MemAcceptorStore::default()
    }
    fn reopen(&self, store: MemAcceptorStore) -> MemAcceptorStore {
        // The simulator's disk survives a crash: a restart keeps it.
        store
    }
}

struct FileAcceptors {
    dir: tempfile::TempDir,
}

impl FileAcceptors {
    fn new() -> FileAcceptors {
        FileAcceptors { dir: tempfile::tempdir().expect("tempdir") }
    }
}

impl AcceptorKind for FileAcceptors {
    type Store = FileAcceptorStore;
    fn fresh(&self) -> FileAcceptorStore {
        FileAcceptorStore::open(self.dir.path(), true).expect("open a fresh acceptor store")
    }
    fn reopen(&self, store: FileAcceptorStore) -> FileAcceptorStore {
        drop(store);
        FileAcceptorStore::open(self.dir.path(), true).expect("reopen the acceptor store")
    }
}

trait ProposerKind {
    type Store: ProposerStore;
    fn fresh(&self) -> Self::Store;
    fn reopen(&self, store: Self::Store) -> Self::Store;
}

struct MemProposers;

impl ProposerKind for MemProposers {
    type Store = MemProposerStore;
    fn fresh(&self) -> MemProposerStore {
        MemProposerStore::default()
    }
    fn reopen(&self, store: MemProposerStore) -> MemProposerStore {
        store
    }
}

struct FileProposers {
    dir: tempfile::TempDir,
}

impl FileProposers {
    fn new() -> FileProposers {
        FileProposers { dir: tempfile::tempdir().expect("tempdir") }
    }
}

impl ProposerKind for FileProposers {
    type Store = FileProposerStore;
    fn fresh(&self) -> FileProposerStore {
        FileProposerStore::open(self.dir.path(), true).expect("open a fresh proposer store")
    }
    fn reopen(&self, store: FileProposerStore) -> FileProposerStore {
        drop(store);
        FileProposerStore::open(self.dir.path(), true).expect("reopen the proposer store")
    }
}

// ---- the generic suite -------------------------------------------------------

/// Applying batches and loading gives the folded state, after every batch.
fn acceptor_apply_then_load_folds<K: AcceptorKind>(kind: &K) {
    let history = acceptor_history();
    let mut store = kind.fresh();
    assert_eq!(store.load().expect("load"), AcceptorState::default(), "a fresh store is empty");
    for (i, batch) in history.iter().enumerate() {
        store.apply(batch).expect("apply");
        assert_eq!(store.load().expect("load"), fold_acceptor(&history[..=i]), "after batch {i}");
    }
    store.apply(&[]).expect("an empty batch is fine");
    assert_eq!(store.load().expect("load"), fold_acceptor(&history));
}

/// A restart gives back the same state, and later batches go on from it.
fn acceptor_reopen_gives_same_state<K: AcceptorKind>(kind: &K) {
    let history = acceptor_history();
    let mut store = kind.fresh();
    for batch in &history[..3] {
        store.apply(batch).expect("apply");
    }
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), fold_acceptor(&history[..3]));
    for batch in &history[3..] {
        store.apply(batch).expect("apply");
    }
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), fold_acceptor(&history));
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), fold_acceptor(&history), "reopening twice changes nothing");
}

/// Many slots accepted, then trimmed: the trimmed slots are gone, the rest is kept.
fn acceptor_trim_keeps_the_rest<K: AcceptorKind>(kind: &K) {
    let mut store = kind.fresh();
    let b = ballot(1, 1);
    let mut applied = vec![vec![AcceptorOp::Promise(b)]];
    for round in 0..20u64 {
        let batch: Vec<AcceptorOp> =
            (0..50).map(|i| accept(round * 50 + i, b, cmd(round, i + 1, &"v".repeat(200)))).collect();
        applied.push(batch);
        applied.push(vec![AcceptorOp::Trim(Slot(round * 50 + 25))]);
    }
    for batch in &applied {
        store.apply(batch).expect("apply");
    }
    let expected = fold_acceptor(&applied);
    assert_eq!(expected.trimmed_below, Slot(19 * 50 + 25));
    assert_eq!(expected.accepted.len(), 25);
    assert_eq!(store.load().expect("load"), expected);
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), expected);
}

fn proposer_apply_then_load_folds<K: ProposerKind>(kind: &K) {
    let history = proposer_history();
    let mut store = kind.fresh();
    assert_eq!(store.load().expect("load"), ProposerState::default());
    for (i, batch) in history.iter().enumerate() {
        store.apply(batch).expect("apply");
        assert_eq!(store.load().expect("load"), fold_proposer(&history[..=i]), "after batch {i}");
    }
    assert_eq!(store.load().expect("load").round, 3, "the round never goes down");
}

fn proposer_reopen_gives_same_state<K: ProposerKind>(kind: &K) {
    let history = proposer_history();
    let mut store = kind.fresh();
    for batch in &history[..2] {
        store.apply(batch).expect("apply");
    }
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), fold_proposer(&history[..2]));
    for batch in &history[2..] {
        store.apply(batch).expect("apply");
    }
    let mut store = kind.reopen(store);
    assert_eq!(store.load().expect("load"), fold_proposer(&history));
}

macro_rules! suite {
    ($module:ident, $acceptors:expr, $proposers:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn acceptor_apply_then_load_folds() {
                super::acceptor_apply_then_load_folds(&$acceptors);
            }

            #[test]
            fn acceptor_reopen_gives_same_state() {
                super::acceptor_reopen_gives_same_state(&$acceptors);
            }

            #[test]
            fn acceptor_trim_keeps_the_rest() {
                super::acceptor_trim_keeps_the_rest(&$acceptors);
            }

            #[test]
            fn proposer_apply_then_load_folds() {
                super::proposer_apply_then_load_folds(&$proposers);
            }

            #[test]
            fn proposer_reopen_gives_same_state() {
                super::proposer_reopen_gives_same_state(&$proposers);
            }
        }
    };
}

suite!(mem_stores, MemAcceptors, MemProposers);
suite!(file_stores, FileAcceptors::new(), FileProposers::new());

// ---- what only a disk can do ---------------------------------------------------

fn acceptor_wal(dir: &Path) -> PathBuf {
    dir.join(ACCEPTOR_WAL)
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

/// Compaction after trims keeps the state and shrinks the log.
#[test]
fn compaction_after_trims_keeps_the_state_and_shrinks_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileAcceptorStore::open(dir.path(), true).expect("open").with_compact_min_bytes(64 * 1024);
    let b = ballot(1, 1);
    let mut applied = vec![vec![AcceptorOp::Promise(b)]];
    for round in 0..100u64 {
        let batch: Vec<AcceptorOp> =
            (0..20).map(|i| accept(round * 20 + i, b, cmd(round, i + 1, &"v".repeat(500)))).collect();
        applied.push(batch);
        // Everything but the last few slots is learned by every proposer.
        applied.push(vec![AcceptorOp::Trim(Slot(round * 20 + 15))]);
    }
    let mut max_bytes = 0;
    for batch in &applied {
        store.apply(batch).expect("apply");
        max_bytes = max_bytes.max(store.stats().bytes);
    }
    let expected = fold_acceptor(&applied);
    let stats = store.stats();
    assert!(stats.compactions > 0, "compacted at least once: {stats:?}");
    let written: usize = applied.iter().flatten().count() * 500;
    assert!(
        (max_bytes as usize) < written / 4,
        "the log stays far below what was written ({max_bytes} bytes, {written} written)"
    );
    assert_eq!(store.load().expect("load"), expected);
    drop(store);
    let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen");
    assert_eq!(store.load().expect("load"), expected, "a compacted log reloads to the same state");

    // An explicit compaction of a state that was never trimmed keeps it too.
    store.apply(&[AcceptorOp::Promise(ballot(9, 2))]).expect("apply");
    store.compact().expect("compact");
    drop(store);
    let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen");
    let mut expected = expected;
    expected.apply(&AcceptorOp::Promise(ballot(9, 2)));
    assert_eq!(store.load().expect("load"), expected);
}

/// A crash at any byte of the last write: the batches `apply` returned for are
/// all there, and the last batch is there whole or not at all.
#[test]
fn torn_tail_loses_nothing_that_apply_returned_for() {
    let history = acceptor_history();
    for last in [history[history.len() - 1].clone(), big_batch(100)] {
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
                if cut < end {
                    assert!(state == before, "{what}: a batch cut short is not applied");
                }
                // The store goes on normally after the cut.
                store.apply(&[AcceptorOp::Promise(ballot(99, 1))]).expect("apply after a cut");
                drop(store);
                let mut store = FileAcceptorStore::open(dir.path(), true).expect("reopen");
                assert_eq!(store.load().expect("load").promised, ballot(99, 1), "{what}");
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
    for last in [history[1].clone(), big_batch(100)] {
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
            if w < total {
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
    let path = dir.path().join(PROPOSER_WAL);
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
    let mut acceptor = FileAcceptorStore::open(dir.path(), true).expect("open");
    let mut proposer = FileProposerStore::open(dir.path(), true).expect("open");
    for batch in &acceptor_history() {
        acceptor.apply(batch).expect("apply");
    }
    for batch in &proposer_history() {
        proposer.apply(batch).expect("apply");
    }
    for (bytes, path) in
        [(acceptor.stats().bytes, acceptor_wal(dir.path())), (proposer.stats().bytes, dir.path().join(PROPOSER_WAL))]
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
    assert_eq!(store.decided(), Slot(4));
    assert_eq!(store.round(), 3);
}
