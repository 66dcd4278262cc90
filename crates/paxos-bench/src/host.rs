//! What the report says about where and when it ran: the date, the commit,
//! the machine, its load, the filesystem of the data dirs; and the figures a
//! process shows in /proc (peak and anonymous RSS).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// Now, in UTC: `2026-11-22T20:40:52Z`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`).
pub fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The commit of the checkout at `repo`, short, and whether tracked files
/// differ from it; `unknown` outside a git checkout.
pub fn commit(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{hash} (with uncommitted changes)")
            } else {
                hash
            }
        }
        _ => "unknown".to_owned(),
    }
}

/// The load averages over 1, 5 and 15 minutes: `0.45, 0.78, 1.20`.
pub fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    if fields.len() == 3 {
        fields.join(", ")
    } else {
        "unknown".to_owned()
    }
}

/// One line about the machine: kernel, cores, CPU, memory, and the filesystem
/// under `data`: `Linux 6.1.0 x86_64; 2 cores (AMD EPYC); 24 GiB RAM; data dirs on ext4`.
pub fn machine(data: &Path) -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let kernel = format!("{} {}", read("/proc/sys/kernel/ostype").trim(), read("/proc/sys/kernel/osrelease").trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim());
    let mem_gib = status_kib(&read("/proc/meminfo"), "MemTotal").map_or(0.0, |kib| kib as f64 / 1_048_576.0);
    let fs = fs_type(&read("/proc/self/mounts"), data).unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{} {}; {cores} cores ({cpu}); {mem_gib:.0} GiB RAM; data dirs on {fs}",
        kernel.trim(),
        std::env::consts::ARCH
    )
}

/// The filesystem type of the mount that holds `path`, from the text of
/// /proc/self/mounts (the longest mount point that is a prefix of it).
pub fn fs_type(mounts: &str, path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            Some((point.replace("\\040", " "), kind))
        })
        .filter(|(point, _)| path.starts_with(point))
        .max_by_key(|(point, _)| point.len())
        .map(|(_, kind)| kind.to_owned())
}

/// A `Name:   1234 kB` field of /proc/PID/status or /proc/meminfo, in KiB.
pub fn status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name != field {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A field of /proc/PID/status in KiB (`VmHWM`, `RssAnon`), or `None` when
/// the process is gone.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    status_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, field)
}

/// Whether process `pid` runs the binary `exe` (also when that file was
/// replaced since), so that a recycled PID is never taken for ours.
pub fn runs(pid: u32, exe: &Path) -> bool {
    let Ok(running) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return false };
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    let running = running.to_string_lossy();
    let exe = exe.to_string_lossy();
    running == exe || running.strip_suffix(" (deleted)") == Some(&*exe)
}

/// The disk space the files under `dir` take, in bytes (as `du`: allocated
/// blocks, not lengths).
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() * 512 + disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// A fresh temporary dir for the clusters' files (in `$TMPDIR`, so that the
/// data dirs are where the operator's temporary files are), removed when
/// dropped unless it is to be kept.
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// Makes `$TMPDIR/paxos-bench.<pid>.<n>`.
    ///
    /// # Errors
    /// When it cannot be made.
    pub fn new(keep: bool) -> Result<WorkDir> {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let path = base.join(format!("paxos-bench.{}.{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(WorkDir { path, keep }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot make {}", path.display())),
            }
        }
        bail!("cannot make a work dir in {}", base.display())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("paxos-bench: kept the clusters' files in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_and_iso() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_380_052), "2026-11-22T20:40:52Z");
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tpaxos-acceptor\nVmHWM:\t    5222 kB\nRssAnon:\t    1800 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(5222));
        assert_eq!(status_kib(status, "RssAnon"), Some(1800));
        assert_eq!(status_kib(status, "VmRSS"), None);
    }

    #[test]
    fn the_filesystem_is_that_of_the_longest_mount_point_above() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs rw 0 0\n";
        assert_eq!(fs_type(mounts, Path::new("/tmp/paxos-bench.1/data")).as_deref(), Some("tmpfs"));
        assert_eq!(fs_type(mounts, Path::new("/work/x")).as_deref(), Some("ext4"));
        assert_eq!(fs_type("", Path::new("/work")), None);
    }
}
