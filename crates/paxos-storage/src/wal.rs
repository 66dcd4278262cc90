//! A checksummed, append-only log of opaque byte records with group commit.
//!
//! The stores of the daemons are built on it: each serializes its own
//! operations into records, appends a batch of them and syncs once, so that a
//! batch of N records costs one `write` and one `fdatasync` (group commit is
//! the caller's choice of batch; apart from growing its file, see
//! [Preallocation](#preallocation), this module never syncs on its own).
//!
//! # Format
//!
//! ```text
//! file   := header record* zero*
//! header := "PAXWAL01" version:u32le                      (12 bytes)
//! record := len:u32le crc:u32le payload:[u8; len]         (8 + len bytes)
//! zero   := 0x00                   (the preallocated tail, see below)
//! ```
//!
//! `crc` is the CRC-32 (IEEE) of the four `len` bytes followed by the payload,
//! so a damaged length is caught as surely as a damaged payload. A payload is
//! at most [`MAX_RECORD_BYTES`]; a larger length field is damage, never a
//! record. A run of zero bytes is never a valid record (a zero `len` needs the
//! CRC of four zero bytes, which is not zero), so no offset whose eight header
//! bytes are all zero can start one.
//!
//! The *logical* end of the log ([`Wal::len_bytes`]) is the end of its last
//! record; the file goes on past it with zero bytes up to its allocated size
//! ([`Wal::allocated_bytes`]), and the next append overwrites those zeros.
//!
//! # Preallocation
//!
//! `fdatasync` after an append that grows the file must also commit the new
//! size and extents through the file system's journal, which on ext4 is one
//! per file system and so shared by every daemon of the machine; overwriting
//! blocks that are already allocated and written commits data only. Measured
//! on the benchmark machine (`docs/bench/fsync_probe.py`, 300-byte write +
//! `fdatasync`, p50): 0.107 ms appending against 0.066 ms overwriting with one
//! writer, 0.280 against 0.184 ms with five at once.
//!
//! So the log grows its file ahead of the records, by writing a step of zero
//! bytes past the allocated end and syncing it, and appends overwrite zeros at
//! the logical end. The zeros are *written*: `fallocate` would leave unwritten
//! extents whose conversion on first write needs a journal commit again, and
//! `set_len` would leave a hole. [`Wal::append`] grows the file before a batch
//! that would pass the allocated end, and the zeros are synced before the
//! batch is written, so that the one `fdatasync` of the next [`Wal::sync`]
//! commits data only, and a crash never finds records in a region whose
//! allocation was not durable. This is the only sync the log makes on its own;
//! [`Wal::grows`] counts them, [`Wal::syncs`] does not.
//!
//! Each step is the allocated size so far, at least [`PREALLOC_MIN_BYTES`]
//! and at most [`PREALLOC_MAX_BYTES`] (see there for why), and as many steps
//! as the batch needs. A new or rewritten file is preallocated to whole steps
//! of [`PREALLOC_MIN_BYTES`] with at least half a step free. With `fsync`
//! false the zeros are written the same way, only not synced.
//!
//! # Recovery: zero tail, torn tail and corrupt middle
//!
//! [`Wal::open`] reads records from the start until the first one that is not
//! intact (too short, length above the limit, or checksum mismatch) at offset
//! `bad`. Then:
//!
//! - If every byte from `bad` to the end of the file is zero, `bad` is the
//!   normal end of the log: the tail is the preallocation (or the file ends
//!   exactly at `bad`). Nothing is reported or changed.
//! - Otherwise it scans every later byte offset for an intact record (runs of
//!   zero bytes are skipped a run at a time, since no offset inside one can
//!   start a record). If there is none, the damage is a *torn tail*: the last
//!   write of a crash that never completed its sync, followed by zeros or by
//!   the end of the file. The bytes from `bad` to the last non-zero byte are
//!   overwritten with zeros and synced, which is reported with `warn!`, and
//!   every record before `bad` is returned. The file keeps its length (its
//!   preallocation stays), and the next append lands at `bad`.
//! - If there is one, records the log once held are damaged in the *middle*:
//!   [`WalError::Corrupt`] names the file and `bad`, and the node refuses to
//!   start rather than silently forgetting what it promised. The file is not
//!   touched.
//!
//! A write that tears inside a batch that was never synced can, on some file
//! systems, persist a later page of the batch but not an earlier one; that
//! reads as a corrupt middle and stops the node for an operator, which is the
//! safe side of the trade. A file without a zero tail (written before the log
//! preallocated, or cut by another tool) reads the same way; its first append
//! grows it.
//!
//! With `fsync` true, [`Wal::open`] ends with one `fdatasync`, so that every
//! record it returns, and the zero tail the next appends overwrite, are
//! durable before the node relies on them (a process that crashed after a
//! write but before its sync leaves that write in the page cache only); with
//! nothing left unsynced that costs next to nothing.
//!
//! # Replacing the log
//!
//! [`Wal::rewrite`] (compaction) and the creation of a new log write a
//! temporary file beside the log (header, records and preallocated zeros),
//! sync it, rename it over the log and sync the directory, so a crash leaves
//! either the old log or the new one. A temporary file left by a crash is
//! removed by the next [`Wal::open`].
//!
//! # Failures
//!
//! After a failed write or sync the state of the file is unknown (a failed
//! `fsync` may already have dropped the dirty pages), so the log refuses
//! every further call with [`WalError::Poisoned`]; storage errors are fatal
//! to the node, which restarts and recovers with [`Wal::open`].
//! [`Wal::inject_fault`] fakes such failures for tests of the stores above.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tracing::warn;

/// The first eight bytes of every log file.
pub const MAGIC: &[u8; 8] = b"PAXWAL01";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Bytes taken by the file header: magic and version.
pub const HEADER_BYTES: usize = MAGIC.len() + 4;

/// Bytes taken by each record's length and checksum.
pub const RECORD_HEADER_BYTES: usize = 8;

/// A record's payload with the byte offset of the record in its file.
pub type Located = (u64, Vec<u8>);

/// The largest payload of one record, checked on write and on read.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The smallest step by which the log grows its file, and the unit in which a
/// new or rewritten file is preallocated.
///
/// Growing costs one write of zeros and one `fdatasync` that commits the new
/// size and extents, and the append that needs it waits for it. On the
/// benchmark machine that takes about 2 ms per MiB (1 MiB 2.0 ms, 4 MiB
/// 9.4 ms, 16 MiB 32 ms). One MiB holds about 3,400 records of 300 bytes, so
/// the pause comes at most once per that many appends (well past the p99.9 of
/// the acceptor's hot path), while a new or freshly compacted log, and every
/// log of the tests, holds at most about a MiB of zeros.
pub const PREALLOC_MIN_BYTES: u64 = 1 << 20;

/// The largest step by which the log grows its file.
///
/// Steps double with the file (each step is the allocated size so far), so a
/// log that keeps growing (the proposer's decided log is never compacted)
/// pauses ever more rarely, but never for more than one write of 4 MiB of
/// zeros and its sync (about 10 ms), and never holds more than 4 MiB of
/// zeros: 40 MiB over the ten logs of a five-node machine at most.
pub const PREALLOC_MAX_BYTES: u64 = 4 << 20;

/// The suffix of the temporary file that [`Wal::rewrite`] renames over the log.
const TEMP_SUFFIX: &str = ".rewrite.tmp";

/// The framing buffer is kept between appends up to this size.
const KEEP_SCRATCH_BYTES: usize = 1 << 20;

/// What can go wrong with a log; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A system call failed.
    #[error("{}: {op}: {error}", path.display())]
    Io {
        /// The file (or directory) the call was about.
        path: PathBuf,
        /// What was being done, e.g. "fdatasync".
        op: &'static str,
        /// The operating system's error; kept out of `source()` because the
        /// message already includes it.
        error: io::Error,
    },
    /// Damage before the last intact record: the log cannot be trusted.
    #[error(
        "{}: corrupt record at byte offset {offset}: {detail}; an intact record follows at byte offset {next_valid}, so this is damage inside the log, not a torn last write; refusing to start (restore this node's data dir or rebuild it from the other nodes)",
        path.display()
    )]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the first damaged record starts.
        offset: u64,
        /// An intact record found after it.
        next_valid: u64,
        /// What is wrong with the damaged record.
        detail: String,
    },
    /// A record that is not intact where one must be, in a file read
    /// strictly (a sealed segment, or what was synced of the last one).
    #[error("{}: damaged record at byte offset {offset}: {detail}", path.display())]
    Damaged {
        /// The log file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// The file does not start with this format's header.
    #[error("{}: not a log of this format: {detail}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// A record given to [`Wal::append`] or [`Wal::rewrite`] is too large;
    /// nothing of the batch was written.
    #[error(
        "{}: a record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES}; nothing was written",
        path.display()
    )]
    RecordTooLarge {
        /// The log file.
        path: PathBuf,
        /// The payload's length.
        len: usize,
    },
    /// An earlier write or sync failed, so the file's state is unknown.
    #[error(
        "{}: an earlier write or sync failed; the log must be reopened to recover",
        path.display()
    )]
    Poisoned {
        /// The log file.
        path: PathBuf,
    },
}

impl WalError {
    /// The kind of the operating system's error, for an [`WalError::Io`].
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WalError::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }
}

/// A failure for [`Wal::inject_fault`] to fake on the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next [`Wal::append`] writes only the first `written` bytes of its
    /// batch (fewer if the batch is shorter), then fails as a full disk would.
    Write {
        /// How many bytes of the batch reach the file.
        written: usize,
    },
    /// The next [`Wal::sync`] fails after the data reached the OS but before
    /// it is known to be durable.
    Sync,
}

/// An open log; appends go to its logical end.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    fsync: bool,
    /// The logical end: the end of the last record, where the next append goes.
    len_bytes: u64,
    /// The size of the file; every byte from `len_bytes` on is zero.
    allocated_bytes: u64,
    unsynced: bool,
    poisoned: bool,
    writes: u64,
    syncs: u64,
    grows: u64,
    fault: Option<Fault>,
    /// The buffer the last batch was framed in, kept for the next one (up
    /// to [`KEEP_SCRATCH_BYTES`]): a batch is framed without growing a buffer.
    scratch: Vec<u8>,
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |error| WalError::Io { path: path.to_owned(), op, error }
}

fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..MAGIC.len()].copy_from_slice(MAGIC);
    h[MAGIC.len()..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the framed `records` to `buf`, refusing the whole batch if one is too large.
fn frame<I, R>(path: &Path, buf: &mut Vec<u8>, records: I) -> Result<usize, WalError>
where
    I: IntoIterator<Item = R>,
    R: AsRef<[u8]>,
{
    let mut count = 0;
    for record in records {
        let payload = record.as_ref();
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len as usize <= MAX_RECORD_BYTES)
            .ok_or_else(|| WalError::RecordTooLarge { path: path.to_owned(), len: payload.len() })?;
        let len_bytes = len.to_le_bytes();
        buf.extend_from_slice(&len_bytes);
        buf.extend_from_slice(&checksum(len_bytes, payload).to_le_bytes());
        buf.extend_from_slice(payload);
        count += 1;
    }
    Ok(count)
}

/// Why the bytes at one offset are not an intact record.
#[derive(Debug)]
enum Damage {
    /// Fewer bytes are left than a record header takes.
    ShortHeader { left: usize },
    /// The length field is above [`MAX_RECORD_BYTES`].
    TooLong { len: usize },
    /// The length field runs past the end of the file.
    ShortPayload { len: usize, left: usize },
    /// The checksum does not match.
    Checksum { stored: u32, computed: u32 },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::ShortHeader { left } => {
                write!(f, "only {left} bytes left, less than a record header")
            }
            Damage::TooLong { len } => write!(f, "length field {len} exceeds the limit of {MAX_RECORD_BYTES}"),
            Damage::ShortPayload { len, left } => {
                write!(f, "length field {len} runs past the end of the file ({left} bytes left)")
            }
            Damage::Checksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
        }
    }
}

/// The size of the intact record at `offset` (header included), or why there is none.
fn check_record(buf: &[u8], offset: usize) -> Result<usize, Damage> {
    let rest = buf.get(offset..).unwrap_or_default();
    let Some((head, after)) = rest.split_first_chunk::<RECORD_HEADER_BYTES>() else {
        return Err(Damage::ShortHeader { left: rest.len() });
    };
    let len_bytes = [head[0], head[1], head[2], head[3]];
    let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(Damage::TooLong { len });
    }
    let Some(payload) = after.get(..len) else {
        return Err(Damage::ShortPayload { len, left: after.len() });
    };
    let computed = checksum(len_bytes, payload);
    if computed != stored {
        return Err(Damage::Checksum { stored, computed });
    }
    Ok(RECORD_HEADER_BYTES + len)
}

/// Bytes compared at a time when looking for the end of a run of zeros; the
/// OR of a fixed-size chunk compiles to vector instructions, which matters for
/// a tail of several MiB.
const ZERO_SCAN_CHUNK: usize = 64;

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc | b) == 0
}

/// The length of the run of zero bytes that `bytes` starts with.
fn zero_run(bytes: &[u8]) -> usize {
    let mut run = 0;
    for chunk in bytes.chunks(ZERO_SCAN_CHUNK) {
        if !all_zero(chunk) {
            return run + chunk.iter().position(|&b| b != 0).unwrap_or(chunk.len());
        }
        run += chunk.len();
    }
    run
}

/// The index of the last non-zero byte of `bytes`, if any.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    for chunk in bytes.rchunks(ZERO_SCAN_CHUNK) {
        end -= chunk.len();
        if !all_zero(chunk) {
            return chunk.iter().rposition(|&b| b != 0).map(|i| end + i);
        }
    }
    None
}

/// The first offset at or after `from` where an intact record starts.
///
/// Gives the same answer as trying [`check_record`] at every offset, but
/// jumps over runs of zero bytes: an offset whose eight header bytes are all
/// zero has length 0 and checksum 0, and the checksum of length 0 is not 0.
fn next_intact(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        if buf[at] == 0 {
            let run = zero_run(&buf[at..]);
            if run >= RECORD_HEADER_BYTES {
                // The last offsets of the run have headers that reach past it.
                at += run - (RECORD_HEADER_BYTES - 1);
            }
        }
        // Past a skipped run, up to seven offsets start with zeros but not
        // eight of them; each is checked like any other.
        let stop = (at + RECORD_HEADER_BYTES).min(buf.len());
        for candidate in at..stop {
            if check_record(buf, candidate).is_ok() {
                return Some(candidate);
            }
        }
        at = stop;
    }
    None
}

/// Writes zeros over `[from, to)` of `file`, a MiB at a time at most.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; (to.saturating_sub(from)).min(PREALLOC_MIN_BYTES) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// The file size to grow to, from `allocated` bytes, so that `needed` fit:
/// whole steps of the allocated size so far, clamped to
/// [`PREALLOC_MIN_BYTES`]..=[`PREALLOC_MAX_BYTES`].
fn grown_size(allocated: u64, needed: u64) -> u64 {
    let step = allocated.clamp(PREALLOC_MIN_BYTES, PREALLOC_MAX_BYTES);
    allocated + needed.saturating_sub(allocated).div_ceil(step) * step
}

/// The size of a new or rewritten file holding `len` bytes of log: whole
/// steps of [`PREALLOC_MIN_BYTES`], with at least half a step free so that the
/// first appends do not grow it at once.
fn initial_size(len: u64) -> u64 {
    grown_size(0, len + PREALLOC_MIN_BYTES / 2)
}

/// The path of the temporary file that replaces `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// The directory that holds `path` (the current one for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing ancestors, syncing the parent of each one
/// created so that a crash cannot forget the directory under a synced log.
fn create_dir_durably(dir: &Path) -> Result<(), WalError> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    for created in missing.iter().rev() {
        sync_dir(parent_dir(created))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "fsync directory"))
}

/// Writes a complete log of `header ++ body`, followed by the zeros of its
/// preallocation, to the temporary path, syncs it, renames it over `path` and
/// syncs the directory. Returns the new file, open for reading and writing,
/// and its size.
fn replace_atomically(path: &Path, body: &[u8], fsync: bool) -> Result<(File, u64), WalError> {
    let temp = temp_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(io_err(&temp, "create"))?;
    let mut buf = Vec::with_capacity(HEADER_BYTES + body.len());
    buf.extend_from_slice(&header());
    buf.extend_from_slice(body);
    let len = buf.len() as u64;
    let size = initial_size(len);
    file.write_all_at(&buf, 0).map_err(io_err(&temp, "write"))?;
    write_zeros(&file, len, size).map_err(io_err(&temp, "preallocate"))?;
    if fsync {
        file.sync_all().map_err(io_err(&temp, "fsync"))?;
    }
    fs::rename(&temp, path).map_err(io_err(path, "rename the rewritten log into place"))?;
    if fsync {
        sync_dir(parent_dir(path))?;
    }
    Ok((file, size))
}

impl Wal {
    /// Opens the log at `path`, creating it (and its directory) if absent,
    /// replays it and returns every intact record in order. A torn tail is
    /// zeroed as described in the module docs; a leftover temporary file of
    /// an interrupted [`Wal::rewrite`] is removed. The whole file (with the
    /// zeros of its preallocation, usually at most one step of them) is read
    /// into memory once, which suits logs kept short by compaction.
    ///
    /// With `fsync` false, [`Wal::sync`] and [`Wal::rewrite`] skip their
    /// syncs: for benchmarks only, as a crash may then lose acknowledged data.
    ///
    /// # Errors
    ///
    /// [`WalError::Corrupt`] for damage before the last intact record,
    /// [`WalError::BadHeader`] for a file of another format or version, and
    /// [`WalError::Io`] when the file or directory cannot be created, read,
    /// repaired or synced.
    pub fn open(path: &Path, fsync: bool) -> Result<(Wal, Vec<Vec<u8>>), WalError> {
        let (wal, records) = Wal::open_at(path, fsync)?;
        Ok((wal, records.into_iter().map(|(_, r)| r).collect()))
    }

    /// As [`Wal::open`], with each record's byte offset in the file.
    ///
    /// # Errors
    /// As for [`Wal::open`].
    pub fn open_at(path: &Path, fsync: bool) -> Result<(Wal, Vec<Located>), WalError> {
        create_dir_durably(parent_dir(path))?;

        let temp = temp_path(path);
        match fs::remove_file(&temp) {
            Ok(()) => warn!(
                path = %temp.display(),
                "removed the temporary file of an interrupted log rewrite; the log before it stands"
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&temp, "remove")(e)),
        }

        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (file, size) = replace_atomically(path, &[], true)?;
                return Ok((Wal::new(path, file, fsync, HEADER_BYTES as u64, size), Vec::new()));
            }
            Err(e) => return Err(io_err(path, "open")(e)),
        };
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io_err(path, "read"))?;

        if buf.len() < HEADER_BYTES && header().starts_with(&buf) {
            // Only a crash while creating the file without the atomic rename
            // (e.g. by another tool) leaves a prefix of the header: nothing
            // was ever recorded in it.
            warn!(path = %path.display(), bytes = buf.len(), "log has a torn header and no records; starting it afresh");
            let (file, size) = replace_atomically(path, &[], true)?;
            return Ok((Wal::new(path, file, fsync, HEADER_BYTES as u64, size), Vec::new()));
        }
        check_header(path, &buf)?;

        let mut records = Vec::new();
        let mut offset = HEADER_BYTES;
        let mut repaired = false;
        while offset < buf.len() {
            match check_record(&buf, offset) {
                Ok(size) => {
                    records.push((offset as u64, buf[offset + RECORD_HEADER_BYTES..offset + size].to_vec()));
                    offset += size;
                }
                Err(detail) => {
                    let Some(last) = last_nonzero(&buf[offset..]) else {
                        // Zeros to the end of the file: the preallocated tail.
                        break;
                    };
                    if let Some(next) = next_intact(&buf, offset + 1) {
                        return Err(WalError::Corrupt {
                            path: path.to_owned(),
                            offset: offset as u64,
                            next_valid: next as u64,
                            detail: detail.to_string(),
                        });
                    }
                    let dirty_end = offset + last + 1;
                    warn!(
                        path = %path.display(),
                        offset,
                        cut_bytes = dirty_end - offset,
                        records = records.len(),
                        %detail,
                        "cutting a torn tail off the log (a write that a crash interrupted) by zeroing it"
                    );
                    // Zeroed rather than truncated, so the file keeps its
                    // preallocation, and no torn byte outlives the next append.
                    write_zeros(&file, offset as u64, dirty_end as u64).map_err(io_err(path, "zero the torn tail"))?;
                    repaired = true;
                    break;
                }
            }
        }
        // A repair is synced even without `fsync`, as the cut it replaces was.
        if fsync || repaired {
            file.sync_data().map_err(io_err(path, "fdatasync"))?;
        }
        Ok((Wal::new(path, file, fsync, offset as u64, buf.len() as u64), records))
    }

    fn new(path: &Path, file: File, fsync: bool, len_bytes: u64, allocated_bytes: u64) -> Wal {
        assert!(len_bytes <= allocated_bytes, "the logical end of the log lies inside its file");
        Wal {
            path: path.to_owned(),
            file,
            fsync,
            len_bytes,
            allocated_bytes,
            unsynced: false,
            poisoned: false,
            writes: 0,
            syncs: 0,
            grows: 0,
            fault: None,
            scratch: Vec::new(),
        }
    }

    /// Grows the file with zeros, and syncs them, so that `needed` bytes fit.
    fn grow(&mut self, needed: u64) -> Result<(), WalError> {
        let size = grown_size(self.allocated_bytes, needed);
        let mut result = write_zeros(&self.file, self.allocated_bytes, size);
        if self.fsync {
            result = result.and_then(|()| self.file.sync_data());
        }
        if let Err(error) = result {
            self.poisoned = true;
            return Err(io_err(&self.path, "preallocate")(error));
        }
        self.allocated_bytes = size;
        self.grows += 1;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned { path: self.path.clone() });
        }
        Ok(())
    }

    /// Appends `records` in one `write` call at the logical end. They are in
    /// the OS's hands but not durable until [`Wal::sync`]; an empty batch
    /// writes nothing. A batch that would pass the allocated end first grows
    /// the file (zeros written and, with `fsync`, synced: see the module docs).
    ///
    /// # Errors
    ///
    /// [`WalError::RecordTooLarge`] (nothing of the batch is written),
    /// [`WalError::Io`] when growing or the write fails (the log is then
    /// poisoned), or [`WalError::Poisoned`] after an earlier failure.
    pub fn append<I, R>(&mut self, records: I) -> Result<(), WalError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u8]>,
    {
        self.check_usable()?;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let result = self.append_in(&mut buf, records);
        if buf.capacity() <= KEEP_SCRATCH_BYTES {
            self.scratch = buf;
        }
        result
    }

    /// [`Wal::append`], framing the records in `buf`.
    fn append_in<I, R>(&mut self, buf: &mut Vec<u8>, records: I) -> Result<(), WalError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u8]>,
    {
        if frame(&self.path, buf, records)? == 0 {
            return Ok(());
        }
        let end = self.len_bytes + buf.len() as u64;
        if end > self.allocated_bytes {
            self.grow(end)?;
        }
        self.writes += 1;
        let result = match self.fault.take() {
            Some(Fault::Write { written }) => {
                let written = written.min(buf.len());
                self.file
                    .write_all_at(&buf[..written], self.len_bytes)
                    .and_then(|()| Err(io::Error::other("injected write fault")))
            }
            fault => {
                self.fault = fault;
                self.file.write_all_at(buf, self.len_bytes)
            }
        };
        if let Err(error) = result {
            self.poisoned = true;
            return Err(io_err(&self.path, "write")(error));
        }
        self.len_bytes += buf.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Makes everything appended so far durable with one `fdatasync`, unless
    /// the log was opened with `fsync` false or nothing was appended since the
    /// last sync; [`Wal::syncs`] counts the `fdatasync` calls made.
    ///
    /// # Errors
    ///
    /// [`WalError::Io`] when the sync fails (the log is then poisoned: the
    /// kernel may have dropped the data, so retrying could lie), or
    /// [`WalError::Poisoned`] after an earlier failure.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if !self.unsynced || !self.fsync {
            self.unsynced = false;
            return Ok(());
        }
        self.syncs += 1;
        let result = match self.fault.take() {
            Some(Fault::Sync) => Err(io::Error::other("injected sync fault")),
            fault => {
                self.fault = fault;
                self.file.sync_data()
            }
        };
        if let Err(error) = result {
            self.poisoned = true;
            return Err(io_err(&self.path, "fdatasync")(error));
        }
        self.unsynced = false;
        Ok(())
    }

    /// Replaces the whole log with `records`, atomically and durably: a
    /// temporary file beside the log is written (with the zeros of its
    /// preallocation) and synced, renamed over the log, and the directory is
    /// synced. Used for compaction.
    ///
    /// # Errors
    ///
    /// [`WalError::RecordTooLarge`] (the log is left as it was),
    /// [`WalError::Io`] when a step fails (the log is then poisoned; on disk
    /// it is either the old or the new one, which [`Wal::open`] tells), or
    /// [`WalError::Poisoned`] after an earlier failure.
    pub fn rewrite<I, R>(&mut self, records: I) -> Result<(), WalError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u8]>,
    {
        self.check_usable()?;
        let mut body = Vec::new();
        frame(&self.path, &mut body, records)?;
        match replace_atomically(&self.path, &body, self.fsync) {
            Ok((file, size)) => {
                self.file = file;
                self.len_bytes = (HEADER_BYTES + body.len()) as u64;
                self.allocated_bytes = size;
                self.unsynced = false;
                self.writes += 1;
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Makes the next [`Wal::append`] or [`Wal::sync`] fail as described by
    /// `fault`, for tests of the stores built on the log.
    pub fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The logical size of the log in bytes: the header and every record,
    /// not the preallocated zeros after them. Appends go at this offset.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// The size of the file in bytes: [`Wal::len_bytes`] and the zeros
    /// preallocated after it.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated_bytes
    }

    /// How many times [`Wal::append`] has grown the file (each a write of
    /// zeros and, with `fsync`, an `fdatasync`) since the log was opened.
    pub fn grows(&self) -> u64 {
        self.grows
    }

    /// How many `fdatasync` calls [`Wal::sync`] has made since the log was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// How many `write` batches [`Wal::append`] and [`Wal::rewrite`] have
    /// made since the log was opened.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

/// Reads the intact records of a log file from byte `offset` (a record's
/// start) on, with their offsets, until about `max_bytes` of payload were
/// read (at least one record) or the records end (zeros or the end of the
/// file). Meant for files no one appends to while they are read, or for
/// what was synced of one that is: a record that is not intact where one
/// must be is damage.
///
/// # Errors
/// [`WalError::Io`] when the file cannot be read, [`WalError::Damaged`] for a damaged record.
pub fn read_records(path: &Path, offset: u64, max_bytes: usize) -> Result<Vec<Located>, WalError> {
    let file = File::open(path).map_err(io_err(path, "open"))?;
    let mut records = Vec::new();
    let mut at = offset.max(HEADER_BYTES as u64);
    let mut bytes = 0;
    let mut head = [0u8; RECORD_HEADER_BYTES];
    while bytes < max_bytes || records.is_empty() {
        match file.read_exact_at(&mut head, at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err(path, "read")(e)),
        }
        if all_zero(&head) {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let corrupt = |detail: String| WalError::Damaged { path: path.to_owned(), offset: at, detail };
        if len > MAX_RECORD_BYTES {
            return Err(corrupt(format!("a length of {len} bytes, above the limit")));
        }
        let mut record = vec![0u8; RECORD_HEADER_BYTES + len];
        record[..RECORD_HEADER_BYTES].copy_from_slice(&head);
        file.read_exact_at(&mut record[RECORD_HEADER_BYTES..], at + RECORD_HEADER_BYTES as u64)
            .map_err(|e| corrupt(format!("the record is cut short: {e}")))?;
        check_record(&record, 0).map_err(|damage| corrupt(damage.to_string()))?;
        record.drain(..RECORD_HEADER_BYTES);
        bytes += record.len();
        records.push((at, record));
        at += (RECORD_HEADER_BYTES + len) as u64;
    }
    Ok(records)
}

fn check_header(path: &Path, buf: &[u8]) -> Result<(), WalError> {
    let bad = |detail: String| WalError::BadHeader { path: path.to_owned(), detail };
    let Some(magic) = buf.get(..MAGIC.len()) else {
        return Err(bad(format!("{} bytes, shorter than the header", buf.len())));
    };
    if magic != MAGIC {
        return Err(bad(format!(
            "the file starts with {:?}, not {:?}",
            String::from_utf8_lossy(magic),
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let Some(&[a, b, c, d]) = buf.get(MAGIC.len()..HEADER_BYTES) else {
        return Err(bad(format!("{} bytes, shorter than the header", buf.len())));
    };
    let version = u32::from_le_bytes([a, b, c, d]);
    if version != VERSION {
        return Err(bad(format!("format version {version}, but this build reads version {VERSION}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64), so the buffers are the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Buffers of runs of zeros, random bytes and intact records in random order.
    fn buffers() -> Vec<Vec<u8>> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = vec![Vec::new(), vec![0; 7], vec![0; 8], vec![0; 300]];
        for _ in 0..300 {
            let mut buf = Vec::new();
            for _ in 0..rng.below(8) {
                match rng.below(4) {
                    0 => buf.resize(buf.len() + rng.below(200), 0),
                    1 => buf.extend((0..rng.below(20)).map(|_| rng.next() as u8)),
                    2 => buf.extend((0..rng.below(20)).map(|_| (rng.below(3) == 0) as u8)),
                    _ => {
                        let payload: Vec<u8> = (0..rng.below(12)).map(|_| (rng.below(2) * 0xff) as u8).collect();
                        frame(Path::new("x"), &mut buf, [payload]).expect("small record");
                    }
                }
            }
            out.push(buf);
        }
        out
    }

    /// The zero tail is told from records by this fact alone.
    #[test]
    fn an_all_zero_header_is_never_a_record() {
        assert_ne!(checksum([0; 4], &[]), 0);
        for tail in [0, 1, 100] {
            assert!(check_record(&vec![0; RECORD_HEADER_BYTES + tail], 0).is_err());
        }
    }

    #[test]
    fn next_intact_skips_zero_runs_but_finds_what_a_byte_by_byte_scan_finds() {
        for buf in buffers() {
            for from in 0..=buf.len() {
                let naive = (from..buf.len()).find(|&at| check_record(&buf, at).is_ok());
                assert_eq!(next_intact(&buf, from), naive, "from {from} in {buf:?}");
            }
        }
    }

    #[test]
    fn zero_scans_agree_with_byte_by_byte_ones() {
        for buf in buffers() {
            let mut long = buf.clone();
            long.resize(buf.len() + 1000, 0);
            long.extend_from_slice(&buf);
            for b in [&buf, &long] {
                for from in 0..=b.len() {
                    let rest = &b[from..];
                    assert_eq!(zero_run(rest), rest.iter().position(|&x| x != 0).unwrap_or(rest.len()));
                    assert_eq!(last_nonzero(rest), rest.iter().rposition(|&x| x != 0));
                }
            }
        }
    }

    #[test]
    fn the_file_grows_in_steps_that_double_up_to_the_cap() {
        const MIB: u64 = 1 << 20;
        assert_eq!(initial_size(HEADER_BYTES as u64), MIB);
        assert_eq!(initial_size(MIB / 2), MIB, "half a step free");
        assert_eq!(initial_size(MIB / 2 + 1), 2 * MIB);
        assert_eq!(initial_size(3 * MIB), 4 * MIB);
        assert_eq!(grown_size(HEADER_BYTES as u64, HEADER_BYTES as u64 + 20), MIB + HEADER_BYTES as u64);
        assert_eq!(grown_size(MIB, MIB + 1), 2 * MIB);
        assert_eq!(grown_size(2 * MIB, 2 * MIB + 1), 4 * MIB);
        assert_eq!(grown_size(4 * MIB, 4 * MIB + 1), 8 * MIB);
        assert_eq!(grown_size(8 * MIB, 8 * MIB + 1), 12 * MIB, "capped at {PREALLOC_MAX_BYTES}");
        assert_eq!(grown_size(MIB, 3 * MIB + 1), 4 * MIB, "as many steps as the batch needs");
        assert_eq!(grown_size(12 * MIB, 30 * MIB), 32 * MIB);
    }
}
