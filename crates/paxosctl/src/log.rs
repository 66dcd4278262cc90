//! `paxosctl log [--node ID] [--stale] [--from N] [--limit N] [--json] [--follow] [--timeout SECS]`
//!
//! Prints the decided log, one entry per line, page by page from `--from`
//! (default 0): `<instance>\t<value>`, or `<instance>` alone for a no-op
//! filler; a value that is empty, starts with `"` or holds a control character
//! (a tab, a newline) is printed as a JSON string, so every line reads back
//! unambiguously. With `--json`, `{"instance": N, "value": "..."}` and
//! `{"instance": N, "noop": true}`.
//!
//! By default the read is linearizable: the leader answers each page once a
//! quorum of acceptors confirmed it still leads, with every entry decided
//! before the read arrived, so the output holds every value acknowledged
//! before `log` started. `--stale` reads a proposer's own copy instead (the
//! leader's, or with `--node` that proposer's; while there is no leader, the
//! working proposer that has learned the most): any proposer's log is a
//! prefix of the same log (SPEC.md, guarantee 1), only perhaps shorter.
//!
//! `--follow` keeps polling (every [`FOLLOW_POLL`]) and prints entries as they
//! are decided, until SIGINT or SIGTERM (exit 0) or until its reader goes
//! away (SIGPIPE, exit 0). While the proposer it reads is silent it says so
//! once on stderr and keeps trying, moving to the new leader when it reads
//! the leader's log.

use std::time::Duration;

use clap::Args;
use paxos_proto::{LogEntry, Node, NodeId, Slot};
use tokio::signal::unix::{signal, SignalKind};

use super::{describe, diag, leader_of, new_client, reach_proposers, CtlError, Out, STATUS_TIMEOUT};
use paxos_client::client::LOG_PAGE_LIMIT;
use paxos_client::config::ClusterConfig;

/// How often `--follow` asks for new entries once it has printed them all.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// How long one log read waits before it is sent again.
pub const LOG_RETRY: Duration = Duration::from_millis(300);

/// How long one log read may take in all.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one log read of `--follow` may take before it looks for the leader again.
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(1);

/// The arguments of `paxosctl log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Read the log of the proposer with this id, its own copy (implies --stale).
    #[arg(long, value_name = "ID")]
    pub node: Option<u32>,
    /// Read one proposer's own copy, without confirming leadership (faster, perhaps shorter).
    #[arg(long)]
    pub stale: bool,
    /// Start at this instance.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from: u64,
    /// Print at most this many entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print one JSON object per entry: {"instance": N, "value": "..."} or {"instance": N, "noop": true}.
    #[arg(long)]
    pub json: bool,
    /// Keep printing entries as they are decided, until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// How long each read (a page of up to 1000 entries, and the first look
    /// for the leader) may wait for an answer [default: 3; with --follow, 1 before it looks for the leader again].
    #[arg(long, value_name = "SECS", value_parser = super::parse_secs)]
    pub timeout: Option<Duration>,
}

/// One entry as `log --json` and `propose --json` print it, spaced as
/// SPEC writes it: `{"instance": 17, "value": "x"}`, or
/// `{"instance": 17, "noop": true}` for a no-op filler.
pub(crate) fn json_entry(instance: u64, value: Option<&str>) -> String {
    match value {
        // Serializing a string cannot fail.
        Some(v) => format!("{{\"instance\": {instance}, \"value\": {}}}", serde_json::to_string(v).unwrap_or_default()),
        None => format!("{{\"instance\": {instance}, \"noop\": true}}"),
    }
}

/// The line `log` prints for `entry`: `<instance>\t<value>`, or `<instance>`
/// alone (no tab) for a no-op filler; or the JSON object.
pub fn format_entry(entry: &LogEntry, json: bool) -> String {
    match (json, &entry.value) {
        (false, Some(value)) if ambiguous(value) => {
            format!("{}\t{}", entry.slot, serde_json::to_string(value).unwrap_or_default())
        }
        (false, Some(value)) => format!("{}\t{value}", entry.slot),
        (false, None) => entry.slot.to_string(),
        (true, value) => json_entry(entry.slot.0, value.as_deref()),
    }
}

/// True when a value printed as it is would not read back as itself: empty
/// (a no-op prints no tab), starting with a quote, or holding a control character.
pub(crate) fn ambiguous(value: &str) -> bool {
    value.is_empty() || value.starts_with('"') || value.chars().any(char::is_control)
}

/// Runs `paxosctl log`.
///
/// # Errors
/// [`CtlError::Usage`] for a `--node` that is not a proposer of the cluster
/// file; [`CtlError::Failed`] when no proposer answers, or (without
/// `--follow`) when the proposer stops answering.
pub async fn run(cluster: &ClusterConfig, args: LogArgs, out: &mut Out) -> Result<(), CtlError> {
    if let Some(id) = args.node {
        if !cluster.proposers.iter().any(|m| m.id == id) {
            let ids: Vec<String> = cluster.proposers.iter().map(|m| m.id.to_string()).collect();
            return Err(CtlError::Usage(format!(
                "--node {id}: {} has no proposer {id} (proposers: {}; if the log added it, add it to the file: \
                 `paxosctl member list` shows where it is)",
                cluster.path.display(),
                ids.join(", ")
            )));
        }
    }
    if !args.follow {
        return read(cluster, &args, out).await;
    }
    let signals = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
    let (mut interrupt, mut terminate) =
        signals.map_err(|e| CtlError::Failed(format!("cannot install the signal handlers: {e}")))?;
    tokio::select! {
        result = read(cluster, &args, out) => result,
        _ = interrupt.recv() => Ok(()),
        _ = terminate.recv() => Ok(()),
    }
}

/// Prints the log (and, with `--follow`, what is decided next) to `out`.
async fn read(cluster: &ClusterConfig, args: &LogArgs, out: &mut Out) -> Result<(), CtlError> {
    let explicit = args.node.map(NodeId);
    let stale = args.stale || explicit.is_some();
    let mut node = match explicit {
        Some(id) => id,
        None => pick_proposer(cluster, args.timeout.unwrap_or(STATUS_TIMEOUT)).await?,
    };
    let mut client = new_client(cluster).await?;
    client.set_leader_hint(node);
    client.set_retry(LOG_RETRY);
    let default = if args.follow { FOLLOW_TIMEOUT } else { LOG_TIMEOUT };
    client.set_timeout(args.timeout.unwrap_or(default));
    let mut next = Slot(args.from);
    let mut printed = 0u64;
    // The proposer that stopped answering, while --follow waits for an answer again.
    let mut silent = None;
    loop {
        let wanted = args.limit.map_or(u64::MAX, |limit| limit - printed);
        if wanted == 0 {
            return Ok(());
        }
        let limit = wanted.min(u64::from(LOG_PAGE_LIMIT)) as u32;
        let result = if stale {
            client.log(node, next, limit).await
        } else {
            client.log_linearizable(next, limit).await.map(|(leader, page)| {
                node = leader;
                page
            })
        };
        let page = match result {
            Ok(page) => page,
            Err(e) if !args.follow => {
                let (who, addr) = (Node::Proposer(node), super::address(cluster, Node::Proposer(node)));
                return Err(CtlError::Failed(format!("log read from {who} at {addr}: {}", describe(&e))));
            }
            Err(e) => {
                if silent.is_none() {
                    diag(format_args!("log read from {}: {}; still trying", Node::Proposer(node), describe(&e)));
                    silent = Some(node);
                }
                if explicit.is_none() {
                    match pick_proposer(cluster, args.timeout.unwrap_or(STATUS_TIMEOUT)).await {
                        Ok(other) => node = other,
                        Err(_) => tokio::time::sleep(FOLLOW_POLL).await,
                    }
                }
                continue;
            }
        };
        if page.start > next {
            return Err(CtlError::Failed(format!(
                "instances {next}..{} were deleted by retention ([log] retain_slots); the log now starts at {}",
                page.start, page.start
            )));
        }
        match silent.take() {
            Some(before) if before == node => diag(format_args!("{} answers again", Node::Proposer(node))),
            Some(_) => diag(format_args!("following the log of {} now", Node::Proposer(node))),
            None => {}
        }
        let from = next;
        for entry in page.entries.iter().filter(|e| e.slot >= from).take(wanted.try_into().unwrap_or(usize::MAX)) {
            out.line(format_entry(entry, args.json))?;
            next = entry.slot.next();
            printed += 1;
        }
        out.flush()?;
        let at_end = page.entries.is_empty() || next >= page.decided;
        if at_end {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

/// The proposer whose log `log` reads by default: the leader if it answers
/// and works, else the working proposer that has decided the most.
///
/// # Errors
/// [`CtlError::Failed`] when no working proposer answers within `wait`.
async fn pick_proposer(cluster: &ClusterConfig, wait: Duration) -> Result<NodeId, CtlError> {
    let probes = reach_proposers(cluster, wait).await?;
    let working = || {
        probes.iter().filter_map(|p| match (p.node, &p.reply) {
            (Node::Proposer(id), Some(r)) if !r.failed => Some((id, r)),
            _ => None,
        })
    };
    if let Some(leader) = leader_of(&probes) {
        if working().any(|(id, _)| id == leader) {
            return Ok(leader);
        }
    }
    match working().max_by_key(|(_, r)| r.decided) {
        Some((id, _)) => Ok(id),
        None => Err(CtlError::Failed(format!(
            "no working proposer: every proposer that answered is failed (SIGUSR1); cluster file {}",
            cluster.path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: u64, value: Option<&str>) -> LogEntry {
        LogEntry { slot: Slot(slot), value: value.map(str::to_owned) }
    }

    #[test]
    fn values_print_with_a_tab_and_noops_alone() {
        assert_eq!(format_entry(&entry(3, Some("x")), false), "3\tx");
        assert_eq!(format_entry(&entry(3, Some("a b, c")), false), "3\ta b, c");
        assert_eq!(format_entry(&entry(4, None), false), "4");
    }

    /// What would read back as something else is printed as a JSON string.
    #[test]
    fn ambiguous_values_are_quoted() {
        assert_eq!(format_entry(&entry(0, Some("")), false), "0\t\"\"", "an empty value is not a no-op");
        assert_eq!(format_entry(&entry(1, Some("a\tb")), false), "1\t\"a\\tb\"");
        assert_eq!(format_entry(&entry(2, Some("two\nlines")), false), "2\t\"two\\nlines\"");
        assert_eq!(format_entry(&entry(3, Some("\"q\"")), false), "3\t\"\\\"q\\\"\"");
    }

    #[test]
    fn json_lines_carry_a_value_or_noop_true() {
        assert_eq!(format_entry(&entry(3, Some("x")), true), r#"{"instance": 3, "value": "x"}"#);
        assert_eq!(format_entry(&entry(4, None), true), r#"{"instance": 4, "noop": true}"#);
        assert_eq!(format_entry(&entry(5, Some("tab\there")), true), r#"{"instance": 5, "value": "tab\there"}"#);
    }
}
