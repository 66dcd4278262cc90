//! Latency of one [`Wal::append`] + [`Wal::sync`] of a small record, the
//! acceptor's hot path, with 1 or more writer processes at once (the daemons
//! of one machine share one file system journal).
//!
//! ```text
//! cargo run --release -p paxos-storage --example wal_latency -- --writers 5 --appends 2000 --bytes 300
//! ```
//!
//! The parent starts `--writers` copies of itself, each of which opens a fresh
//! log in `--dir`, reports that it is ready and waits for a line on stdin, so
//! that all of them start appending at the same moment. Each times every
//! append + sync and prints the latencies in nanoseconds; the parent prints
//! p50/p90/p99/p99.9/max over all of them. Only the public API that every
//! version of the log has is used, so the same file measures before and after
//! a change (build the old one in a `git worktree` with its own
//! `CARGO_TARGET_DIR`: worktrees that share a target dir overwrite each
//! other's binaries).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use paxos_storage::wal::Wal;

/// Times append + fdatasync of the write-ahead log.
#[derive(Parser, Debug)]
struct Args {
    /// Directory for the logs (on the disk to measure).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Writer processes at once.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Appends (each followed by a sync) per writer.
    #[arg(long, default_value_t = 2000)]
    appends: usize,
    /// Payload bytes of each record.
    #[arg(long, default_value_t = 300)]
    bytes: usize,
    /// Internal: run as one writer on this log file.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.child {
        Some(path) => child(path, &args),
        None => parent(&args),
    }
}

fn child(path: &Path, args: &Args) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let (mut wal, old) = Wal::open(path, true).context("open the log")?;
    assert!(old.is_empty(), "a fresh log");
    let record = vec![b'x'; args.bytes];
    println!("ready");
    std::io::stdout().flush()?;
    let mut go = String::new();
    std::io::stdin().read_line(&mut go)?;
    let mut nanos = Vec::with_capacity(args.appends);
    for _ in 0..args.appends {
        let start = Instant::now();
        wal.append([&record])?;
        wal.sync()?;
        nanos.push(start.elapsed().as_nanos() as u64);
    }
    drop(wal);
    std::fs::remove_file(path)?;
    let mut out = std::io::stdout().lock();
    for n in nanos {
        writeln!(out, "{n}")?;
    }
    Ok(())
}

fn parent(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..args.writers {
        let path = args.dir.join(format!("wal-latency-{}-{i}.wal", std::process::id()));
        let mut child = Command::new(&exe)
            .arg("--child")
            .arg(&path)
            .args(["--appends", &args.appends.to_string(), "--bytes", &args.bytes.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn a writer")?;
        let mut out = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("writer {i} did not get ready: {line:?}");
        }
        children.push((child, out));
    }
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().context("stdin")?, "go")?;
    }
    let mut all: Vec<u64> = Vec::new();
    for (mut child, out) in children {
        for line in out.lines() {
            all.push(line?.trim().parse()?);
        }
        if !child.wait()?.success() {
            bail!("a writer failed");
        }
    }
    all.sort_unstable();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1e6;
    println!(
        "{} writer(s) x {} appends of {} bytes: append+fdatasync p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        args.writers,
        args.appends,
        args.bytes,
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(0.999),
        all.last().copied().unwrap_or(0) as f64 / 1e6
    );
    Ok(())
}
