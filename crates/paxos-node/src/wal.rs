//! A checksummed, append-only log of opaque byte records with group commit.
//!
//! The stores of the daemons are built on it: each serializes its own
//! operations into records, appends a batch of them and syncs once, so that a
//! batch of N records costs one `write` and one `fdatasync` (group commit is
//! the caller's choice of batch; this module never syncs on its own).
//!
//! # Format
//!
//! ```text
//! file   := header record*
//! header := "PAXWAL01" version:u32le                      (12 bytes)
//! record := len:u32le crc:u32le payload:[u8; len]         (8 + len bytes)
//! ```
//!
//! `crc` is the CRC-32 (IEEE) of the four `len` bytes followed by the payload,
//! so a damaged length is caught as surely as a damaged payload. A payload is
//! at most [`MAX_RECORD_BYTES`]; a larger length field is damage, never a
//! record. A run of zero bytes is never a valid record (the CRC of four zero
//! bytes is not zero), so a zero-filled tail reads as damage too.
//!
//! # Recovery: torn tail versus corrupt middle
//!
//! [`Wal::open`] reads records from the start until the first one that is not
//! intact (too short, length above the limit, or checksum mismatch) at offset
//! `bad`. Then it scans every later byte offset for an intact record:
//!
//! - If there is none, the damage is a *torn tail*: the last write of a crash
//!   that never completed its sync. The file is cut back to `bad`, the cut is
//!   synced and reported with `warn!`, and every record before `bad` is
//!   returned.
//! - If there is one, records the log once held are damaged in the *middle*:
//!   [`WalError::Corrupt`] names the file and `bad`, and the node refuses to
//!   start rather than silently forgetting what it promised.
//!
//! A write that tears inside a batch that was never synced can, on some file
//! systems, persist a later page of the batch but not an earlier one; that
//! reads as a corrupt middle and stops the node for an operator, which is the
//! safe side of the trade.
//!
//! # Replacing the log
//!
//! [`Wal::rewrite`] (compaction) and the creation of a new log write a
//! temporary file beside the log, sync it, rename it over the log and sync the
//! directory, so a crash leaves either the old log or the new one. A
//! temporary file left by a crash is removed by the next [`Wal::open`].
//!
//! # Failures
//!
//! After a failed write or sync the state of the file is unknown (a failed
//! `fsync` may already have dropped the dirty pages), so the log refuses
//! every further call with [`WalError::Poisoned`]; storage errors are fatal
//! to the node, which restarts and recovers with [`Wal::open`].
//! [`Wal::inject_fault`] fakes such failures for tests of the stores above.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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

/// The largest payload of one record, checked on write and on read.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The suffix of the temporary file that [`Wal::rewrite`] renames over the log.
const TEMP_SUFFIX: &str = ".rewrite.tmp";

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

/// An open log, positioned at its end.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    fsync: bool,
    len_bytes: u64,
    unsynced: bool,
    poisoned: bool,
    writes: u64,
    syncs: u64,
    fault: Option<Fault>,
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

/// Writes a complete log of `header ++ body` to the temporary path, syncs it,
/// renames it over `path` and syncs the directory. Returns the new file, open
/// for reading and writing and positioned at its end.
fn replace_atomically(path: &Path, body: &[u8], fsync: bool) -> Result<File, WalError> {
    let temp = temp_path(path);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(io_err(&temp, "create"))?;
    let mut buf = Vec::with_capacity(HEADER_BYTES + body.len());
    buf.extend_from_slice(&header());
    buf.extend_from_slice(body);
    file.write_all(&buf).map_err(io_err(&temp, "write"))?;
    if fsync {
        file.sync_all().map_err(io_err(&temp, "fsync"))?;
    }
    fs::rename(&temp, path).map_err(io_err(path, "rename the rewritten log into place"))?;
    if fsync {
        sync_dir(parent_dir(path))?;
    }
    Ok(file)
}

impl Wal {
    /// Opens the log at `path`, creating it (and its directory) if absent,
    /// replays it and returns every intact record in order. A torn tail is
    /// cut off as described in the module docs; a leftover temporary file of
    /// an interrupted [`Wal::rewrite`] is removed. The whole file is read into
    /// memory once, which suits logs kept short by compaction.
    ///
    /// With `fsync` false, [`Wal::sync`] and [`Wal::rewrite`] skip their
    /// syncs: for benchmarks only, as a crash may then lose acknowledged data.
    ///
    /// # Errors
    ///
    /// [`WalError::Corrupt`] for damage before the last intact record,
    /// [`WalError::BadHeader`] for a file of another format or version, and
    /// [`WalError::Io`] when the file or directory cannot be created, read,
    /// cut or synced.
    pub fn open(path: &Path, fsync: bool) -> Result<(Wal, Vec<Vec<u8>>), WalError> {
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
                let file = replace_atomically(path, &[], true)?;
                return Ok((Wal::new(path, file, fsync, HEADER_BYTES as u64), Vec::new()));
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
            let file = replace_atomically(path, &[], true)?;
            return Ok((Wal::new(path, file, fsync, HEADER_BYTES as u64), Vec::new()));
        }
        check_header(path, &buf)?;

        let mut records = Vec::new();
        let mut offset = HEADER_BYTES;
        while offset < buf.len() {
            match check_record(&buf, offset) {
                Ok(size) => {
                    records.push(buf[offset + RECORD_HEADER_BYTES..offset + size].to_vec());
                    offset += size;
                }
                Err(detail) => {
                    if let Some(next) = (offset + 1..buf.len()).find(|&at| check_record(&buf, at).is_ok()) {
                        return Err(WalError::Corrupt {
                            path: path.to_owned(),
                            offset: offset as u64,
                            next_valid: next as u64,
                            detail: detail.to_string(),
                        });
                    }
                    warn!(
                        path = %path.display(),
                        offset,
                        cut_bytes = buf.len() - offset,
                        records = records.len(),
                        %detail,
                        "cutting a torn tail off the log (a write that a crash interrupted)"
                    );
                    file.set_len(offset as u64).map_err(io_err(path, "truncate"))?;
                    file.sync_all().map_err(io_err(path, "fsync"))?;
                    break;
                }
            }
        }
        file.seek(SeekFrom::Start(offset as u64)).map_err(io_err(path, "seek"))?;
        Ok((Wal::new(path, file, fsync, offset as u64), records))
    }

    fn new(path: &Path, file: File, fsync: bool, len_bytes: u64) -> Wal {
        Wal {
            path: path.to_owned(),
            file,
            fsync,
            len_bytes,
            unsynced: false,
            poisoned: false,
            writes: 0,
            syncs: 0,
            fault: None,
        }
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned { path: self.path.clone() });
        }
        Ok(())
    }

    /// Appends `records` in one `write` call. They are in the OS's hands but
    /// not durable until [`Wal::sync`]; an empty batch writes nothing.
    ///
    /// # Errors
    ///
    /// [`WalError::RecordTooLarge`] (nothing of the batch is written),
    /// [`WalError::Io`] when the write fails (the log is then poisoned), or
    /// [`WalError::Poisoned`] after an earlier failure.
    pub fn append<I, R>(&mut self, records: I) -> Result<(), WalError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u8]>,
    {
        self.check_usable()?;
        let mut buf = Vec::new();
        if frame(&self.path, &mut buf, records)? == 0 {
            return Ok(());
        }
        self.writes += 1;
        let result = match self.fault.take() {
            Some(Fault::Write { written }) => {
                let written = written.min(buf.len());
                self.file.write_all(&buf[..written]).and_then(|()| Err(io::Error::other("injected write fault")))
            }
            fault => {
                self.fault = fault;
                self.file.write_all(&buf)
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
    /// temporary file beside the log is written and synced, renamed over the
    /// log, and the directory is synced. Used for compaction.
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
            Ok(file) => {
                self.file = file;
                self.len_bytes = (HEADER_BYTES + body.len()) as u64;
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

    /// The size of the file in bytes, header included.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
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
