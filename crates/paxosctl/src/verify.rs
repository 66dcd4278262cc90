//! `paxosctl verify [--log FILE]... [--acked FILE]... [--sequential FILE]... [--proposed FILE]... [--all-acked] [--same-logs]`
//!
//! Checks SPEC.md's guarantees on what a workload recorded, with the one
//! checker every test uses ([`paxos_check`]); the scripts (chaos, the seed
//! scenario in compose and network namespaces) call it rather than checking
//! on their own. It reads files and talks to no node, so it needs no cluster file.
//!
//! - `--log FILE`: a learner's log as `paxosctl log --json` prints it;
//! - `--acked FILE`: what one client was told, as `paxosctl propose --json` prints it;
//! - `--sequential FILE`: the same, for a client that proposed its values one
//!   after another (`propose` without `--concurrency`): its instances must increase;
//! - `--phase FILE`: like `--acked`, for workloads run one after another:
//!   every value of a `--phase` file was sent after every value of the
//!   `--phase` files before it was acknowledged, so its instances must all be higher;
//! - `--proposed FILE`: values clients sent, one per line, acknowledged or not
//!   (a value in a log that no file names breaks validity);
//! - `--all-acked`: every proposed value must have been acknowledged;
//! - `--same-logs`: every log must be the same (the learners converged);
//! - `--prefix P`: this workload's values start with P; a value in a log that
//!   does not belongs to an earlier workload and counts as proposed (it is
//!   still checked for agreement and exactly once).
//!
//! Values are the requests' names: the workloads propose each value once.
//! Prints one summary line, then one line per violation (`VIOLATION check: what`,
//! at most [`SHOWN`]); exit 0 when there is none, 1 otherwise, 2 for an
//! unreadable file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;
use paxos_check::{check, Client, Entry, Expect, Log, Sent};
use serde::Deserialize;

use super::{CtlError, Out};

/// Violations printed at most; the summary counts them all.
pub const SHOWN: usize = 20;

/// The arguments of `paxosctl verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A learner's log, as `paxosctl log --json` prints it.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// What one client was told, as `paxosctl propose --json` prints it.
    #[arg(long = "acked", value_name = "FILE")]
    pub acked: Vec<PathBuf>,
    /// What one client that proposed one value after another was told (its instances must increase).
    #[arg(long = "sequential", value_name = "FILE")]
    pub sequential: Vec<PathBuf>,
    /// What one workload was told, sent after every earlier --phase workload was acknowledged.
    #[arg(long = "phase", value_name = "FILE")]
    pub phases: Vec<PathBuf>,
    /// Values clients sent, one per line, acknowledged or not.
    #[arg(long = "proposed", value_name = "FILE")]
    pub proposed: Vec<PathBuf>,
    /// Every proposed value must have been acknowledged.
    #[arg(long)]
    pub all_acked: bool,
    /// Every log must be the same.
    #[arg(long)]
    pub same_logs: bool,
    /// This workload's values start with P; other values in the logs are earlier workloads'.
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
}

/// One line of `log --json` or `propose --json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    instance: u64,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    noop: bool,
}

fn read(path: &Path) -> Result<String, CtlError> {
    fs::read_to_string(path).map_err(|e| CtlError::Usage(format!("verify: cannot read {}: {e}", path.display())))
}

fn json_lines(path: &Path) -> Result<Vec<Line>, CtlError> {
    let text = read(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: Line = serde_json::from_str(l).map_err(|e| {
                CtlError::Usage(format!("verify: {}:{}: not a log or propose line: {e}", path.display(), i + 1))
            })?;
            if line.value.is_some() == line.noop {
                return Err(CtlError::Usage(format!(
                    "verify: {}:{}: a line holds a value or \"noop\":true, not both or neither",
                    path.display(),
                    i + 1
                )));
            }
            Ok(line)
        })
        .collect()
}

fn log(path: &Path) -> Result<Log<String>, CtlError> {
    let lines = json_lines(path)?;
    let first = lines.first().map_or(0, |l| l.instance);
    let mut entries = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        if line.instance != first + i as u64 {
            return Err(CtlError::Usage(format!(
                "verify: {}: instance {} follows {}: a log is read without gaps",
                path.display(),
                line.instance,
                first + i as u64 - 1
            )));
        }
        entries.push(match line.value {
            Some(v) => Entry::Value(v.clone(), v),
            None => Entry::Noop,
        });
    }
    Ok(Log { name: path.display().to_string(), first, entries })
}

fn client(path: &Path, sequential: bool) -> Result<Client<String>, CtlError> {
    let sent = json_lines(path)?
        .into_iter()
        .map(|l| {
            let value = l.value.unwrap_or_default();
            Sent { key: value.clone(), value, at: None, acked: Some((l.instance, None)) }
        })
        .collect();
    Ok(Client { name: path.display().to_string(), sent, sequential })
}

/// Runs `paxosctl verify`.
///
/// # Errors
/// [`CtlError::Usage`] for a file that cannot be read or parsed;
/// [`CtlError::Reported`] when a guarantee is broken (after printing it).
pub fn run(args: VerifyArgs, out: &mut Out) -> Result<(), CtlError> {
    if args.logs.is_empty() && args.acked.is_empty() && args.sequential.is_empty() && args.phases.is_empty() {
        return Err(CtlError::Usage("verify: nothing to check: give --log, --acked or --sequential files".into()));
    }
    let logs = args.logs.iter().map(|p| log(p)).collect::<Result<Vec<_>, _>>()?;
    let mut clients = Vec::new();
    for p in &args.acked {
        clients.push(client(p, false)?);
    }
    for p in &args.sequential {
        clients.push(client(p, true)?);
    }
    // Phases in time: phase k was sent at 2k + 1 and acknowledged at 2k + 2.
    for (k, p) in args.phases.iter().enumerate() {
        let mut c = client(p, false)?;
        let (sent, acked) = (2 * k as u64 + 1, 2 * k as u64 + 2);
        for s in &mut c.sent {
            s.at = Some(sent);
            s.acked = s.acked.map(|(at, _)| (at, Some(acked)));
        }
        clients.push(c);
    }
    let acked: BTreeSet<String> = clients.iter().flat_map(|c| c.sent.iter().map(|s| s.key.clone())).collect();
    let mut proposed = BTreeSet::new();
    for p in &args.proposed {
        proposed.extend(read(p)?.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    let unacked: Vec<Sent<String>> = proposed
        .iter()
        .filter(|v| !acked.contains(*v))
        .map(|v| Sent { key: v.clone(), value: v.clone(), at: None, acked: None })
        .collect();
    let attempted = acked.union(&proposed).count();
    if let Some(prefix) = &args.prefix {
        // Values of earlier workloads were proposed and acknowledged then (this
        // run checked them): taken as acknowledged where the logs hold them.
        let mut earlier: BTreeMap<String, u64> = BTreeMap::new();
        for log in &logs {
            for (i, e) in log.entries.iter().enumerate() {
                if let Entry::Value(v, _) = e {
                    if !v.starts_with(prefix.as_str()) {
                        earlier.entry(v.clone()).or_insert(log.first + i as u64);
                    }
                }
            }
        }
        let sent = earlier
            .into_iter()
            .map(|(v, at)| Sent { key: v.clone(), value: v, at: None, acked: Some((at, None)) })
            .collect();
        clients.push(Client { name: "earlier workloads".into(), sent, sequential: false });
    }
    clients.push(Client { name: "proposed".into(), sent: unacked, sequential: false });

    let found = check(&logs, &clients, Expect { all_acked: args.all_acked, same_logs: args.same_logs });
    let instances = logs.iter().map(Log::end).max().unwrap_or(0);
    out.line(format!(
        "verify: {} logs ({instances} instances), {} acknowledged of {attempted} proposed, violations: {}",
        logs.len(),
        acked.len(),
        found.len()
    ))?;
    for v in found.iter().take(SHOWN) {
        out.line(format!("VIOLATION {v}"))?;
    }
    if found.is_empty() {
        Ok(())
    } else {
        out.flush()?;
        Err(CtlError::Reported)
    }
}
