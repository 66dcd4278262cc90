//! The write-ahead log: round trips, group commit, the preallocated zero
//! tail, torn tails versus corrupt middles, atomic rewrite and injected
//! failures, through the public API.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use paxos_storage::wal::{
    Fault, Wal, WalError, HEADER_BYTES, MAGIC, MAX_RECORD_BYTES, PREALLOC_MAX_BYTES, PREALLOC_MIN_BYTES,
    RECORD_HEADER_BYTES, VERSION,
};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn open(path: &Path) -> (Wal, Vec<Vec<u8>>) {
    Wal::open(path, true).expect("open the log")
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}

/// Asserts that every byte of the file from `at` on is zero: the log's end is
/// at or before `at`, and what follows is its preallocation.
#[track_caller]
fn assert_zero_from(path: &Path, at: u64, what: &str) {
    let bytes = fs::read(path).expect("read");
    assert!(bytes.len() as u64 >= at, "{what}: the file ({} bytes) reaches byte {at}", bytes.len());
    if let Some(i) = bytes[at as usize..].iter().position(|&b| b != 0) {
        panic!("{what}: byte {} after the log's end {at} is not zero", at as usize + i);
    }
}

/// Asserts that the file has blocks on disk for all of its length: its zeros
/// were written, not left as a hole.
#[track_caller]
fn assert_allocated(path: &Path) {
    let meta = fs::metadata(path).expect("metadata");
    assert!(meta.blocks() * 512 >= meta.len(), "{} bytes but only {} blocks of 512", meta.len(), meta.blocks());
}

/// A writer for the log lines of one test, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` and returns what it returned and the warnings it logged.
///
/// tracing caches per call site, process-wide, whether anyone listens. With
/// at most one subscriber registered, a test on another thread (with none)
/// that reaches a call site first caches "never" for it, and the warning
/// would not reach ours: a CI run failed so. So a second subscriber stays
/// registered for the whole test binary (then every call site asks all of
/// them), and the cache is rebuilt once ours is this thread's default.
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    static SECOND: OnceLock<tracing::Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let lines = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    (out, lines)
}

/// The logical length of a fresh log holding `records`.
fn end_of(records: &[&[u8]]) -> usize {
    HEADER_BYTES + records.iter().map(|r| RECORD_HEADER_BYTES + r.len()).sum::<usize>()
}

/// Byte offsets at which each of `records` starts in a fresh log.
fn offsets(records: &[&[u8]]) -> Vec<usize> {
    let mut at = HEADER_BYTES;
    records
        .iter()
        .map(|r| {
            let start = at;
            at += RECORD_HEADER_BYTES + r.len();
            start
        })
        .collect()
}

/// A fresh log at `dir/wal` holding `records`, synced and closed.
fn make_log(dir: &Path, records: &[&[u8]]) -> PathBuf {
    let path = dir.join("wal");
    let (mut wal, old) = open(&path);
    assert!(old.is_empty());
    wal.append(records).expect("append");
    wal.sync().expect("sync");
    path
}

fn owned(records: &[&[u8]]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.to_vec()).collect()
}

const ABC: [&[u8]; 3] = [b"first record", b"the second one", b"and the third, last"];

#[test]
fn a_new_log_starts_empty_with_its_directory() {
    let dir = tempdir();
    let path = dir.path().join("acceptor-1").join("nested").join("wal");
    let (wal, records) = open(&path);
    assert!(records.is_empty());
    assert_eq!(wal.len_bytes(), HEADER_BYTES as u64);
    assert_eq!(file_len(&path), PREALLOC_MIN_BYTES, "a new log is preallocated");
    assert_eq!(wal.allocated_bytes(), PREALLOC_MIN_BYTES);
    let bytes = fs::read(&path).expect("read");
    assert_eq!(&bytes[..8], MAGIC);
    assert_eq!(bytes[8..12], VERSION.to_le_bytes());
    assert_zero_from(&path, HEADER_BYTES as u64, "a new log");
    assert_allocated(&path);
    assert_eq!(wal.path(), path);
}

#[test]
fn records_round_trip_across_reopen() {
    let dir = tempdir();
    let big = vec![0xabu8; MAX_RECORD_BYTES];
    let records: Vec<&[u8]> = vec![b"one", b"", &big, b"\x00\x00\x00\x00"];
    let path = make_log(dir.path(), &records);
    let (wal, got) = open(&path);
    assert_eq!(got, owned(&records));
    assert_eq!(wal.len_bytes(), end_of(&records) as u64);
    assert_eq!(wal.allocated_bytes(), file_len(&path));
    assert!(file_len(&path) > wal.len_bytes());

    // Appends after a reopen go after the old records.
    let (mut wal, _) = open(&path);
    wal.append([b"five".as_slice()]).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], b"five");
}

#[test]
fn append_takes_any_iterator_of_byte_slices() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    wal.append(vec![b"a".to_vec(), b"b".to_vec()]).expect("vecs");
    wal.append(["c", "d"]).expect("strs");
    wal.append(Vec::<Vec<u8>>::new()).expect("nothing");
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got, owned(&[b"a", b"b", b"c", b"d"]));
}

#[test]
fn group_commit_costs_one_write_and_one_sync() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    let batch: Vec<Vec<u8>> = (0..100).map(|i| format!("value {i}").into_bytes()).collect();
    wal.append(&batch).expect("append");
    wal.sync().expect("sync");
    assert_eq!(wal.writes(), 1, "one write for the whole batch");
    assert_eq!(wal.syncs(), 1, "one fdatasync for the whole batch");

    // Nothing new: no second fdatasync; an empty batch: no write.
    wal.sync().expect("sync");
    wal.append(Vec::<Vec<u8>>::new()).expect("empty");
    assert_eq!((wal.writes(), wal.syncs()), (1, 1));

    wal.append(["x"]).expect("append");
    wal.sync().expect("sync");
    assert_eq!((wal.writes(), wal.syncs()), (2, 2));
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got.len(), 101);
}

#[test]
fn without_fsync_sync_makes_no_fdatasync() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = Wal::open(&path, false).expect("open");
    wal.append(["a", "b"]).expect("append");
    wal.sync().expect("sync");
    assert_eq!(wal.syncs(), 0);
    // Growing works the same, only without its sync.
    wal.append([vec![7u8; MAX_RECORD_BYTES]]).expect("append past the first step");
    assert_eq!(wal.grows(), 1);
    assert_eq!(file_len(&path), wal.allocated_bytes());
    drop(wal);
    let (wal, got) = Wal::open(&path, false).expect("open");
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), vec![7u8; MAX_RECORD_BYTES]]);
    assert!(file_len(&path) > wal.len_bytes());
}

#[test]
fn records_appended_without_sync_survive_a_process_restart() {
    // The OS keeps what was written; only a machine crash may lose it.
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    wal.append(ABC).expect("append");
    assert_eq!(wal.syncs(), 0);
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got, owned(&ABC));
}

#[test]
fn len_bytes_is_the_logical_length_and_the_file_is_preallocated() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    wal.append(ABC).expect("append");
    wal.sync().expect("sync");
    let expected = end_of(&ABC) as u64;
    assert_eq!(wal.len_bytes(), expected);
    assert_eq!(wal.allocated_bytes(), file_len(&path));
    assert!(file_len(&path) >= expected + PREALLOC_MIN_BYTES / 2, "room to append without growing the file");
    assert_eq!(wal.grows(), 0, "the new log's preallocation took the batch");
    assert_allocated(&path);
    assert_zero_from(&path, expected, "after the batch");
}

/// The file as it was written, and a copy of it with the bytes from `cut` to
/// `end` zeroed: a crash that persisted the write only up to `cut`, with the
/// preallocated zeros after it.
fn torn_in_place(pristine: &[u8], cut: usize, end: usize) -> Vec<u8> {
    let mut torn = pristine.to_vec();
    torn[cut..end].fill(0);
    torn
}

#[test]
fn a_torn_tail_at_every_byte_of_the_last_record_is_cut() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let end = end_of(&ABC);
    let pristine = fs::read(&path).expect("read");
    let last = offsets(&ABC)[2];
    for cut in last..end {
        // Torn inside the preallocation (the bytes after `cut` are still
        // zero), and torn at the end of a file that has no zero tail.
        for (how, torn) in [("in place", torn_in_place(&pristine, cut, end)), ("cut short", pristine[..cut].to_vec())] {
            let what = format!("torn at byte {cut}, {how}");
            fs::write(&path, &torn).expect("write torn copy");
            let ((mut wal, got), warnings) = warnings_of(|| open(&path));
            if cut > last {
                assert!(warnings.contains("torn tail"), "{what}: reported: {warnings:?}");
            } else {
                assert!(warnings.is_empty(), "{what}: zeros after the last record are no torn tail: {warnings:?}");
            }
            assert_eq!(got, owned(&ABC[..2]), "{what}");
            assert_eq!(wal.len_bytes(), last as u64, "{what}");
            assert_eq!(file_len(&path), torn.len() as u64, "{what}: the file keeps its length");
            assert_zero_from(&path, last as u64, &what);
            // The log goes on after the cut.
            wal.append(["again"]).expect("append");
            wal.sync().expect("sync");
            drop(wal);
            let (wal, got) = open(&path);
            assert_eq!(got, owned(&[ABC[0], ABC[1], b"again"]), "{what}");
            assert_eq!(wal.len_bytes(), (last + RECORD_HEADER_BYTES + 5) as u64, "{what}");
            assert_zero_from(&path, wal.len_bytes(), &what);
        }
    }
}

#[test]
fn a_torn_tail_inside_a_larger_batch_keeps_the_whole_records_before_it() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let end = end_of(&ABC);
    let pristine = fs::read(&path).expect("read");
    let starts = offsets(&ABC);
    for cut in HEADER_BYTES..end {
        let whole = starts.iter().zip(ABC).filter(|(start, r)| *start + RECORD_HEADER_BYTES + r.len() <= cut).count();
        for (how, torn) in [("in place", torn_in_place(&pristine, cut, end)), ("cut short", pristine[..cut].to_vec())] {
            fs::write(&path, &torn).expect("write torn copy");
            let (wal, got) = open(&path);
            assert_eq!(got, owned(&ABC[..whole]), "torn at byte {cut}, {how}");
            assert_eq!(wal.len_bytes(), end_of(&ABC[..whole]) as u64, "torn at byte {cut}, {how}");
        }
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    for garbage in [
        b"\xde\xad\xbe\xef some garbage that is no record".to_vec(),
        vec![0u8; 4096],
        vec![0u8; 3],
        vec![0xffu8; 100],
        // A length field above the limit.
        ((MAX_RECORD_BYTES as u32) + 1).to_le_bytes().iter().chain(&[0u8; 12]).copied().collect(),
        // A zero length field with a wrong checksum, followed by zeros.
        vec![0, 0, 0, 0, 1],
    ] {
        // Right after the last record (over the preallocated zeros), and
        // after the end of the file (past the zeros).
        for at_end_of_file in [false, true] {
            let what = format!("garbage {garbage:?}, at the end of the file: {at_end_of_file}");
            let dir = tempdir();
            let path = make_log(dir.path(), &ABC);
            let good = end_of(&ABC) as u64;
            let f = OpenOptions::new().write(true).open(&path).expect("open");
            let at = if at_end_of_file { file_len(&path) } else { good };
            f.write_all_at(&garbage, at).expect("write garbage");
            drop(f);
            let size = file_len(&path);
            let (mut wal, got) = open(&path);
            assert_eq!(got, owned(&ABC), "{what}");
            assert_eq!(wal.len_bytes(), good, "{what}");
            assert_eq!(file_len(&path), size, "{what}: zeroed, not cut");
            assert_zero_from(&path, good, &what);
            wal.append(["after"]).expect("append");
            drop(wal);
            assert_eq!(open(&path).1, owned(&[ABC[0], ABC[1], ABC[2], b"after"]), "{what}");
        }
    }
}

#[test]
fn reopening_a_preallocated_log_returns_exactly_its_records_and_changes_nothing() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    let mut expected = Vec::new();
    for i in 0..500u32 {
        let batch: Vec<Vec<u8>> =
            (0..i % 4).map(|j| format!("record {i}.{j} ").repeat(j as usize).into_bytes()).collect();
        wal.append(&batch).expect("append");
        wal.sync().expect("sync");
        expected.extend(batch);
    }
    let len = wal.len_bytes();
    assert!(file_len(&path) > len, "the log is shorter than its file");
    drop(wal);
    let before = fs::read(&path).expect("read");
    for _ in 0..2 {
        let ((wal, got), warnings) = warnings_of(|| open(&path));
        assert!(warnings.is_empty(), "the zero tail is the normal end, not worth a warning: {warnings:?}");
        assert_eq!(got, expected);
        assert_eq!(wal.len_bytes(), len);
        assert_eq!(wal.allocated_bytes(), before.len() as u64);
        drop(wal);
        assert!(fs::read(&path).expect("read") == before, "the zero tail is the normal end: the file is not touched");
    }
}

#[test]
fn an_intact_record_after_damage_inside_the_preallocated_region_is_corruption() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let end = end_of(&ABC);
    let pristine = fs::read(&path).expect("read");
    // An intact record, as the log frames it, from another log.
    let stray = {
        let payload = b"a record far out in the zeros";
        let other = make_log(&dir.path().join("other"), &[payload]);
        fs::read(&other).expect("read")[HEADER_BYTES..HEADER_BYTES + RECORD_HEADER_BYTES + payload.len()].to_vec()
    };
    let far = pristine.len() - 4096;
    let last = offsets(&ABC)[2];
    for (what, damage_at, garbage) in [
        // Zeros after the last record, then a record: a write landed but the one before it did not.
        ("zeros then a record", end, &b""[..]),
        // The last record's first bytes never landed but the rest did.
        ("the last record's head zeroed", last, &[0u8; 6][..]),
        // A torn write, zeros, then a record.
        ("a torn write, zeros, then a record", end, &b"\x30\x00\x00\x00torn"[..]),
    ] {
        let mut bytes = pristine.clone();
        bytes[damage_at..damage_at + garbage.len()].copy_from_slice(garbage);
        bytes[far..far + stray.len()].copy_from_slice(&stray);
        fs::write(&path, &bytes).expect("write damaged copy");
        let err = Wal::open(&path, true).expect_err(what);
        match &err {
            WalError::Corrupt { offset, next_valid, .. } => {
                let bad = if damage_at == last { last } else { end };
                assert_eq!(*offset, bad as u64, "{what}");
                assert_eq!(*next_valid, far as u64, "{what}");
            }
            other => panic!("{what}: expected Corrupt, got {other}"),
        }
        assert!(fs::read(&path).expect("read") == bytes, "{what}: refusing to start must not touch the file");
    }
}

#[test]
fn appends_grow_the_file_across_a_step_and_stay_readable() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    assert_eq!(wal.allocated_bytes(), PREALLOC_MIN_BYTES);
    // Records of 1000 bytes (and their headers) until one straddles the end of the first step.
    let mut expected = Vec::new();
    while wal.grows() == 0 {
        let record = vec![(expected.len() % 251) as u8 + 1; 1000];
        let before = wal.len_bytes();
        wal.append([&record]).expect("append");
        wal.sync().expect("sync");
        expected.push(record);
        if wal.grows() == 1 {
            assert!(before < PREALLOC_MIN_BYTES, "grew for the record that straddles the step");
            assert!(wal.len_bytes() > PREALLOC_MIN_BYTES, "grew for the record that straddles the step");
        }
    }
    assert_eq!(wal.allocated_bytes(), 2 * PREALLOC_MIN_BYTES, "the second step is as large as the file");
    assert_eq!(file_len(&path), 2 * PREALLOC_MIN_BYTES);
    assert_allocated(&path);
    assert_zero_from(&path, wal.len_bytes(), "after the step");
    assert_eq!(wal.syncs(), expected.len() as u64, "growing is not a sync of the caller's");

    // A batch larger than several steps grows the file once, by whole steps.
    let batch: Vec<Vec<u8>> = (0..5).map(|i| vec![i + 1; MAX_RECORD_BYTES]).collect();
    let allocated = wal.allocated_bytes();
    wal.append(&batch).expect("append a large batch");
    wal.sync().expect("sync");
    expected.extend(batch);
    assert_eq!(wal.grows(), 2);
    assert!(wal.allocated_bytes() >= wal.len_bytes());
    assert_eq!((wal.allocated_bytes() - allocated) % allocated.min(PREALLOC_MAX_BYTES), 0, "whole steps");
    assert_eq!(file_len(&path), wal.allocated_bytes());
    assert_allocated(&path);
    let len = wal.len_bytes();
    drop(wal);
    let (wal, got) = open(&path);
    assert!(got == expected, "every record across both growths reads back");
    assert_eq!(wal.len_bytes(), len);
}

#[test]
fn a_flipped_byte_in_the_middle_record_is_corruption() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let pristine = fs::read(&path).expect("read");
    let starts = offsets(&ABC);
    let (middle, last) = (starts[1], starts[2]);
    for at in middle..last {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x20;
        fs::write(&path, &bytes).expect("write damaged copy");
        let err = Wal::open(&path, true).expect_err("corruption in the middle must not open");
        match &err {
            WalError::Corrupt { path: p, offset, next_valid, .. } => {
                assert_eq!(p, &path);
                assert_eq!(*offset, middle as u64, "flipped byte {at}");
                assert!(*next_valid > middle as u64);
            }
            other => panic!("flipped byte {at}: expected Corrupt, got {other}"),
        }
        let line = err.to_string();
        assert!(line.contains(&path.display().to_string()), "{line}");
        assert!(line.contains(&format!("byte offset {middle}")), "{line}");
        assert!(!line.contains('\n'));
        // Refusing to start must not touch the file.
        assert_eq!(fs::read(&path).expect("read"), bytes, "flipped byte {at}");
    }
}

#[test]
fn a_flipped_byte_in_the_first_record_is_corruption() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let mut bytes = fs::read(&path).expect("read");
    bytes[HEADER_BYTES + RECORD_HEADER_BYTES + 2] ^= 1;
    fs::write(&path, &bytes).expect("write");
    let err = Wal::open(&path, true).expect_err("corrupt");
    assert!(matches!(err, WalError::Corrupt { offset, .. } if offset == HEADER_BYTES as u64), "{err}");
}

#[test]
fn a_flipped_byte_in_the_last_record_is_cut() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let pristine = fs::read(&path).expect("read");
    let last = offsets(&ABC)[2];
    for at in last..end_of(&ABC) {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).expect("write damaged copy");
        let (wal, got) = open(&path);
        assert_eq!(got, owned(&ABC[..2]), "flipped byte {at}");
        assert_eq!(wal.len_bytes(), last as u64);
        assert_eq!(file_len(&path), pristine.len() as u64, "zeroed, not cut");
        assert_zero_from(&path, last as u64, &format!("flipped byte {at}"));
    }
}

#[test]
fn rewrite_replaces_the_log() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let (mut wal, _) = open(&path);
    wal.rewrite([b"snapshot".as_slice(), b"tail"]).expect("rewrite");
    assert_eq!(wal.len_bytes(), end_of(&[b"snapshot", b"tail"]) as u64);
    assert_eq!(wal.allocated_bytes(), file_len(&path));
    assert_eq!(file_len(&path), PREALLOC_MIN_BYTES, "the new file is preallocated too");
    assert_allocated(&path);
    assert_zero_from(&path, wal.len_bytes(), "after a rewrite");
    wal.append(["after"]).expect("append");
    wal.sync().expect("sync");
    assert_eq!(wal.len_bytes(), end_of(&[b"snapshot", b"tail", b"after"]) as u64);
    assert_eq!(wal.grows(), 0);
    drop(wal);
    let (mut wal, got) = open(&path);
    assert_eq!(got, owned(&[b"snapshot", b"tail", b"after"]));
    assert!(!dir.path().join("wal.rewrite.tmp").exists());

    wal.rewrite(Vec::<Vec<u8>>::new()).expect("rewrite to nothing");
    assert_eq!(wal.len_bytes(), HEADER_BYTES as u64);
    drop(wal);
    let (_, got) = open(&path);
    assert!(got.is_empty());
}

#[test]
fn a_crash_in_the_middle_of_rewrite_leaves_the_old_log() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    // What a crash before the rename leaves: a temporary file, whole or torn.
    let temp = dir.path().join("wal.rewrite.tmp");
    let mut partial = MAGIC.to_vec();
    partial.extend_from_slice(&VERSION.to_le_bytes());
    partial.extend_from_slice(b"\x05\x00\x00\x00junk");
    fs::write(&temp, &partial).expect("write temp");
    let (mut wal, got) = open(&path);
    assert_eq!(got, owned(&ABC), "the old log stands");
    assert!(!temp.exists(), "the leftover is removed");
    // And a later rewrite works as usual.
    wal.rewrite(["new"]).expect("rewrite");
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got, owned(&[b"new"]));
}

#[test]
fn a_foreign_file_is_refused_with_a_clear_error() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    fs::write(&path, b"{\"this\": \"is json, not a log\"}").expect("write");
    let err = Wal::open(&path, true).expect_err("not a log");
    assert!(matches!(err, WalError::BadHeader { .. }), "{err}");
    let line = err.to_string();
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("PAXWAL01"), "{line}");
    assert_eq!(fs::read(&path).expect("read").len(), 30, "left untouched");
}

#[test]
fn another_version_is_refused() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let mut bytes = fs::read(&path).expect("read");
    bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    fs::write(&path, &bytes).expect("write");
    let err = Wal::open(&path, true).expect_err("future version");
    assert!(matches!(err, WalError::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn a_torn_header_starts_afresh_but_a_short_foreign_file_does_not() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    for len in 0..HEADER_BYTES {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&VERSION.to_le_bytes());
        fs::write(&path, &header[..len]).expect("write");
        let (mut wal, got) = open(&path);
        assert!(got.is_empty(), "{len} bytes of header");
        assert_eq!(wal.len_bytes(), HEADER_BYTES as u64);
        assert_eq!(file_len(&path), PREALLOC_MIN_BYTES);
        wal.append(["x"]).expect("append");
        drop(wal);
        assert_eq!(open(&path).1, owned(&[b"x"]));
    }
    fs::write(&path, b"PAXW4L").expect("write");
    assert!(matches!(Wal::open(&path, true), Err(WalError::BadHeader { .. })));
}

#[test]
fn an_oversized_record_is_refused_and_nothing_of_its_batch_is_written() {
    let dir = tempdir();
    let path = make_log(dir.path(), &ABC);
    let (mut wal, _) = open(&path);
    let before = wal.len_bytes();
    let big = vec![1u8; MAX_RECORD_BYTES + 1];
    let err = wal.append([b"small".as_slice(), &big]).expect_err("too large");
    assert!(matches!(err, WalError::RecordTooLarge { len, .. } if len == MAX_RECORD_BYTES + 1), "{err}");
    assert_eq!(wal.len_bytes(), before);
    assert_eq!(wal.writes(), 0);
    assert!(wal.rewrite([&big]).is_err());
    // Refusing a record is not a failure of the disk: the log goes on.
    wal.append(["fine"]).expect("append");
    drop(wal);
    let (_, got) = open(&path);
    assert_eq!(got, owned(&[ABC[0], ABC[1], ABC[2], b"fine"]));
}

#[test]
fn an_injected_partial_write_is_never_half_visible() {
    let batch: [&[u8]; 2] = [b"batch record one", b"batch record two"];
    let batch_len: usize = batch.iter().map(|r| RECORD_HEADER_BYTES + r.len()).sum();
    for written in 0..=batch_len {
        let dir = tempdir();
        let path = make_log(dir.path(), &ABC);
        let (mut wal, _) = open(&path);
        wal.inject_fault(Fault::Write { written });
        let err = wal.append(batch).expect_err("injected");
        assert!(matches!(err, WalError::Io { op: "write", .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert!(matches!(wal.append(["more"]), Err(WalError::Poisoned { .. })), "a failed log refuses further appends");
        assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
        drop(wal);
        let (_, got) = open(&path);
        let first_whole = written >= RECORD_HEADER_BYTES + batch[0].len();
        let mut expected = owned(&ABC);
        if first_whole {
            expected.push(batch[0].to_vec());
        }
        if written == batch_len {
            expected.push(batch[1].to_vec());
        }
        assert_eq!(got, expected, "{written} bytes of the batch written");
    }
}

#[test]
fn an_injected_sync_failure_poisons_the_log() {
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    wal.append(["a"]).expect("append");
    wal.inject_fault(Fault::Sync);
    let err = wal.sync().expect_err("injected");
    assert!(matches!(err, WalError::Io { op: "fdatasync", .. }), "{err}");
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::Other));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
    assert!(matches!(wal.rewrite(["b"]), Err(WalError::Poisoned { .. })));
}

#[test]
fn a_fault_waits_for_its_call() {
    // A sync fault does not fire on append, nor a write fault on sync.
    let dir = tempdir();
    let path = dir.path().join("wal");
    let (mut wal, _) = open(&path);
    wal.inject_fault(Fault::Sync);
    wal.append(["a"]).expect("append is not the faulty call");
    assert!(wal.sync().is_err());

    let (mut wal, _) = open(&path);
    wal.inject_fault(Fault::Write { written: 0 });
    wal.sync().expect("nothing to sync, and sync is not the faulty call");
    assert!(wal.append(["b"]).is_err());
}

#[test]
fn an_unusable_directory_is_an_io_error_naming_it() {
    let dir = tempdir();
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"a file").expect("write");
    let path = blocker.join("wal");
    let err = Wal::open(&path, true).expect_err("parent is a file");
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
