//! The operator's changes: `member list|add|remove`, `backup FILE`, `restore FILE`.
//!
//! Membership changes and restore requests are signed with the cluster
//! file's peer key (an operator holds it; a client key is not enough), go to
//! the leader, and are answered once the change is decided in the log. A
//! member list needs no key (signed with the peer key when the file has it).
//!
//! # Backup format
//!
//! A backup is text, one JSON object per line:
//!
//! ```text
//! {"paxos_backup":1,"cluster":"paxos","start":0,"end":3}
//! {"instance":0,"noop":true}
//! {"instance":1,"value":"x"}
//! {"instance":2,"noop":true}
//! {"entries":3,"sha256":"<64 hex digits>"}
//! ```
//!
//! Every instance from `start` to `end` (exclusive) has a line, no-ops
//! included (configurations of the cluster and retries that landed twice
//! show as no-ops, as `paxosctl log` shows them). The last line is the
//! SHA-256 of every byte before it; a file whose checksum, header or
//! instances do not add up is refused whole.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use paxos_client::client::ClientError;
use paxos_client::config::ClusterConfig;
use paxos_proto::{Config, LogEntry, MemberOp, MemberRole, Node, NodeId, Slot};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    address, all_nodes, describe, diag, leader_of, leading_of, new_client, parse_secs, reach_proposers, CtlError, Out,
};

/// How long `member` waits for its change by default: adding an acceptor
/// waits until it started and copied the decided log.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(60);

/// Entries per restore request, at most.
pub const RESTORE_PAGE: usize = 256;

/// Bytes of JSON-encoded entries per restore request, at most: with its
/// envelope and MAC trailer it fits one datagram, and the largest value
/// (8 KiB of characters that JSON escapes six times over) fits alone.
pub const RESTORE_PAGE_BYTES: usize = 60_000;

/// The version of the backup format.
pub const BACKUP_VERSION: u32 = 1;

/// The arguments of `paxosctl member`.
#[derive(Debug, Args)]
pub struct MemberArgs {
    /// What to do.
    #[command(subcommand)]
    pub op: MemberCommand,
    /// Give up after this many seconds (60 by default); a change the leader
    /// cannot start a little before then is given up, and the error says why.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, global = true)]
    pub timeout: Option<Duration>,
    /// Print the configuration as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `member list|add|remove`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// The members in force: acceptors (with their incarnations) and proposers.
    List,
    /// Add an acceptor or a proposer listening at ADDR; it must be started
    /// (`--id ID --listen ADDR`) and an acceptor must copy the log before it is let in.
    Add {
        /// `acceptor` or `proposer`.
        role: RoleArg,
        /// Its id within its role.
        id: u32,
        /// Where it listens, `host:port`.
        addr: String,
    },
    /// Remove an acceptor or a proposer.
    Remove {
        /// `acceptor` or `proposer`.
        role: RoleArg,
        /// Its id within its role.
        id: u32,
    },
}

/// A role on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// An acceptor.
    Acceptor,
    /// A proposer.
    Proposer,
}

impl From<RoleArg> for MemberRole {
    fn from(r: RoleArg) -> MemberRole {
        match r {
            RoleArg::Acceptor => MemberRole::Acceptor,
            RoleArg::Proposer => MemberRole::Proposer,
        }
    }
}

/// The configuration as `member list --json` prints it.
#[derive(Serialize)]
struct ConfigJson<'a> {
    epoch: u32,
    session_lifetime_ms: u64,
    acceptors: Vec<MemberJson<'a>>,
    proposers: Vec<MemberJson<'a>>,
}

#[derive(Serialize)]
struct MemberJson<'a> {
    id: u32,
    addr: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    incarnation: Option<u64>,
    /// An acceptor not pinned to an incarnation yet cannot vote (it was never heard, or is being let in).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
}

/// The lines `member` prints for `config`.
pub fn format_config(config: &Config, json: bool) -> Vec<String> {
    if json {
        fn members(ms: &[paxos_proto::Member], acceptors: bool) -> Vec<MemberJson<'_>> {
            ms.iter()
                .map(|m| MemberJson {
                    id: m.id.0,
                    addr: &m.addr,
                    incarnation: m.incarnation,
                    pending: acceptors && m.incarnation.is_none(),
                })
                .collect()
        }
        let c = ConfigJson {
            epoch: config.epoch,
            session_lifetime_ms: config.session_lifetime_ms,
            acceptors: members(&config.acceptors, true),
            proposers: members(&config.proposers, false),
        };
        return vec![serde_json::to_string(&c).unwrap_or_default()];
    }
    let mut lines = vec![format!("epoch {}", config.epoch)];
    for m in &config.acceptors {
        let inc = m
            .incarnation
            .map_or_else(|| "not pinned (cannot vote yet)".to_owned(), |i| format!("incarnation {i:016x}"));
        lines.push(format!("acceptor-{}\t{}\t{inc}", m.id, m.addr));
    }
    for m in &config.proposers {
        lines.push(format!("proposer-{}\t{}", m.id, m.addr));
    }
    lines
}

/// Runs `paxosctl member`.
///
/// # Errors
/// [`CtlError::Failed`] when no leader answers in time or the change is refused.
pub async fn member(cluster: &ClusterConfig, args: MemberArgs, out: &mut Out) -> Result<(), CtlError> {
    let op = match args.op {
        MemberCommand::List => MemberOp::List,
        MemberCommand::Add { role, id, addr } => {
            let role: MemberRole = role.into();
            check_new_member(cluster, role, id, &addr)?;
            MemberOp::Add { role, id: NodeId(id), addr }
        }
        MemberCommand::Remove { role, id } => MemberOp::Remove { role: role.into(), id: NodeId(id) },
    };
    let probes = reach_proposers(cluster, super::STATUS_TIMEOUT).await?;
    let mut client = new_client(cluster).await?;
    if let Some(leader) = leader_of(&probes) {
        client.set_leader_hint(leader);
    }
    client.set_retry(Duration::from_millis(500));
    client.set_timeout(args.timeout.unwrap_or(MEMBER_TIMEOUT));
    let what = if op == MemberOp::List { "member list" } else { "membership change" };
    let refused = |e| match e {
        ClientError::Member(why) => CtlError::Failed(format!("refused: {why}")),
        e => operator_error(what, &e),
    };
    // A change is asked from the configuration listed first, within the
    // same timeout: the leader makes it only from there (a late copy of the
    // request cannot make it again after a later change), and asks again
    // from a newer one. Removing a node that no configuration seen had is
    // refused (most likely a mistyped id, as `etcdctl member remove` says):
    // the list, or the leader's newer one when the list came from a
    // lagging proposer.
    let config = client.member(op).await.map_err(refused)?;
    print_config(&config, args.json, out)
}

/// Prints `config` as `member` does.
fn print_config(config: &Config, json: bool, out: &mut Out) -> Result<(), CtlError> {
    for line in format_config(config, json) {
        out.line(line)?;
    }
    Ok(())
}

/// Why an operator request (`what`) failed; a timeout adds that the cluster
/// drops (and counts) requests signed with another key, so silence may mean a wrong key.
fn operator_error(what: &str, e: &ClientError) -> CtlError {
    let hint = if matches!(e, ClientError::Timeout { .. }) {
        " (a leader answers within milliseconds: does the cluster file have the cluster's [auth] peer key? the \
         nodes drop requests signed with another key, or none, and count them as dropped.auth)"
    } else {
        ""
    };
    CtlError::Failed(format!("{what}: {}{hint}", describe(e)))
}

/// What `member add ROLE ID ADDR` can be told before anything is sent: an
/// id from 1, an address of the form the cluster file takes, and not the
/// address of another member of the file (the new node would be probed at
/// that member's door). A member of the file added back at its own address
/// (after a removal) is no other member.
fn check_new_member(cluster: &ClusterConfig, role: MemberRole, id: u32, addr: &str) -> Result<(), CtlError> {
    if id == 0 {
        return Err(CtlError::Usage("member add: ids start at 1".to_owned()));
    }
    paxos_client::config::parse_addr(addr).map_err(|why| CtlError::Usage(format!("member add: {why}")))?;
    let itself = match role {
        MemberRole::Acceptor => Node::Acceptor(NodeId(id)),
        MemberRole::Proposer => Node::Proposer(NodeId(id)),
    };
    let other = all_nodes(cluster)
        .into_iter()
        .find(|n| *n != itself && paxos_client::config::same_address(&address(cluster, *n), addr));
    if let Some(node) = other {
        return Err(CtlError::Usage(format!(
            "member add: {addr} is {node}'s address in {}; a new member needs an address of its own",
            cluster.path.display()
        )));
    }
    Ok(())
}

/// The arguments of `paxosctl leader`.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// What to do.
    #[command(subcommand)]
    pub op: LeaderCommand,
}

/// `leader transfer ID`.
#[derive(Debug, Subcommand)]
pub enum LeaderCommand {
    /// Hand leadership to proposer ID (a live member); waits until it leads.
    Transfer {
        /// The proposer that should lead.
        id: u32,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        timeout: Option<Duration>,
    },
}

/// How long `leader transfer` waits for the target to lead before it asks again.
const TRANSFER_AGAIN_AFTER: Duration = Duration::from_millis(300);

/// Runs `paxosctl leader transfer ID`: prints how long the cluster was
/// without a leader that serves (from the request to the new leader's first
/// answer). Done only when the target says it leads with a ballot above the
/// one that led before (a leader deposed a moment ago still says "leader").
///
/// # Errors
/// [`CtlError::Failed`] when the leader refuses, or the new leader does not lead in time.
pub async fn leader(cluster: &ClusterConfig, args: LeaderArgs, out: &mut Out) -> Result<(), CtlError> {
    let LeaderCommand::Transfer { id, timeout } = args.op;
    let timeout = timeout.unwrap_or(Duration::from_secs(10));
    let to = NodeId(id);
    if !cluster.proposers.iter().any(|m| m.id == id) {
        return Err(CtlError::Usage(format!(
            "{}: no proposer {id} (if the log added it, add it to the file: `paxosctl member list` shows where it is)",
            cluster.path.display()
        )));
    }
    let probes = reach_proposers(cluster, super::STATUS_TIMEOUT).await?;
    let before = leader_of(&probes);
    // The ballot that led before: the target leads only with a higher one
    // (a leader deposed a moment ago still says "leader" for a heartbeat).
    let ballot_before = before.and_then(|l| {
        probes.iter().find(|p| p.node == Node::Proposer(l)).and_then(|p| p.reply.as_ref()).map(|r| r.ballot)
    });
    let mut client = new_client(cluster).await?;
    if let Some(l) = before {
        client.set_leader_hint(l);
    }
    client.set_timeout(timeout);
    let started = std::time::Instant::now();
    client.transfer(to).await.map_err(|e| operator_error("leader transfer", &e))?;
    let mut watcher = new_client(cluster).await?;
    watcher.set_retry(Duration::from_millis(50));
    watcher.set_timeout(Duration::from_millis(500));
    let mut asked = std::time::Instant::now();
    loop {
        if let Ok(s) = watcher.status(Node::Proposer(to)).await {
            if s.role == "leader" && (before == Some(to) || ballot_before.is_none_or(|b| s.ballot > b)) {
                break;
            }
        }
        if started.elapsed() > timeout {
            return Err(CtlError::Failed(format!("proposer {id} does not lead after {}", super::secs(timeout))));
        }
        if asked.elapsed() > TRANSFER_AGAIN_AFTER {
            // The target lets a hand-over pass while it may not campaign yet
            // (it is catching up the log); the same request again is harmless.
            client.transfer(to).await.map_err(|e| operator_error("leader transfer", &e))?;
            asked = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let from = before.map_or_else(|| "none".to_owned(), |l| format!("proposer-{l}"));
    out.line(format!("leader: {from} -> proposer-{id} in {} ms", started.elapsed().as_millis()))
}

/// The arguments of `paxosctl backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (replaced atomically).
    pub file: PathBuf,
    /// Give up when a read takes longer than this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Write the log from where retention left it, although `restore`
    /// cannot take such a backup (an archive of the values).
    #[arg(long)]
    pub partial: bool,
}

/// The first line of a backup.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    paxos_backup: u32,
    cluster: String,
    start: u64,
    end: u64,
}

/// One entry line of a backup.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    instance: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    noop: bool,
}

/// The last line of a backup.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Trailer {
    entries: u64,
    sha256: String,
}

/// The text of a backup of `entries` (consecutive, from `start`) of `cluster`.
pub fn encode_backup(cluster: &str, start: Slot, entries: &[LogEntry]) -> String {
    let end = start.0 + entries.len() as u64;
    let header = Header { paxos_backup: BACKUP_VERSION, cluster: cluster.to_owned(), start: start.0, end };
    let mut text = serde_json::to_string(&header).unwrap_or_default();
    text.push('\n');
    for e in entries {
        let line = Line { instance: e.slot.0, value: e.value.clone(), noop: e.value.is_none() };
        text.push_str(&serde_json::to_string(&line).unwrap_or_default());
        text.push('\n');
    }
    let trailer = Trailer { entries: entries.len() as u64, sha256: hex(&Sha256::digest(text.as_bytes())) };
    text.push_str(&serde_json::to_string(&trailer).unwrap_or_default());
    text.push('\n');
    text
}

/// The entries of a backup, checked whole: header, consecutive instances, count and checksum.
///
/// # Errors
/// One line saying what is wrong and where.
pub fn decode_backup(text: &str) -> Result<(String, Vec<LogEntry>), String> {
    let body_end =
        text.trim_end_matches('\n').rfind('\n').map(|i| i + 1).ok_or("not a backup: fewer than two lines")?;
    let (body, last) = text.split_at(body_end);
    let trailer: Trailer =
        serde_json::from_str(last.trim_end()).map_err(|e| format!("the last line is not a checksum line: {e}"))?;
    if hex(&Sha256::digest(body.as_bytes())) != trailer.sha256 {
        return Err("the checksum does not match: the file is damaged or was edited".into());
    }
    let mut lines = body.lines();
    let header: Header = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| format!("line 1 is not a backup header: {e}"))?;
    if header.paxos_backup != BACKUP_VERSION {
        return Err(format!("backup format {}, this paxosctl reads {BACKUP_VERSION}", header.paxos_backup));
    }
    let mut entries = Vec::new();
    for (i, text) in lines.enumerate() {
        let line: Line = serde_json::from_str(text).map_err(|e| format!("line {}: {e}", i + 2))?;
        let want = header.start + i as u64;
        if line.instance != want || line.value.is_some() == line.noop {
            return Err(format!(
                "line {}: instance {} where {want} belongs, or neither value nor noop",
                i + 2,
                line.instance
            ));
        }
        entries.push(LogEntry { slot: Slot(line.instance), value: line.value });
    }
    if entries.len() as u64 != trailer.entries || header.start + trailer.entries != header.end {
        return Err(format!("{} entries, but the header says {}..{}", entries.len(), header.start, header.end));
    }
    Ok((header.cluster, entries))
}

/// Writes `file` whole or not at all: into a temporary file of its own
/// beside it (hidden, named after it and this process, so that it is no
/// operator's file and two backups never share one), synced, then renamed
/// over it. Before, the temporary file was `file` with the extension
/// `partial`: `backup nightly.jsonl` replaced and then removed an
/// operator's `nightly.partial`.
fn write_whole(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = file.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    let temp = file.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `entries` in pages of at most [`RESTORE_PAGE`] entries and
/// [`RESTORE_PAGE_BYTES`] of JSON each (one entry at least), in order.
fn restore_pages(entries: &[LogEntry]) -> Vec<&[LogEntry]> {
    let mut pages = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in entries.iter().enumerate() {
        // The entry as the request carries it (a JSON string, or null), and its comma.
        let len = e.value.as_ref().map_or(4, |v| serde_json::to_string(v).map_or(6 * v.len() + 2, |s| s.len())) + 1;
        if i > start && (i - start >= RESTORE_PAGE || bytes + len > RESTORE_PAGE_BYTES) {
            pages.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < entries.len() {
        pages.push(&entries[start..]);
    }
    pages
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Runs `paxosctl backup FILE`: the leader's decided log, every instance up
/// to its decided index when the backup started, written atomically.
///
/// # Errors
/// [`CtlError::Failed`] when no proposer answers, a read fails, or the file cannot be written.
pub async fn backup(cluster: &ClusterConfig, args: BackupArgs, out: &mut Out) -> Result<(), CtlError> {
    let probes = reach_proposers(cluster, super::STATUS_TIMEOUT).await?;
    // The leader's log: every page is read linearizably (below), which only
    // the leader answers, so the backup holds every value acknowledged
    // before it started. A proposer of the file that says it leads, or one
    // the file does not name (the log added it) that proposers name: the
    // reads follow their redirects there.
    let unknown = leader_of(&probes).filter(|l| !cluster.proposers.iter().any(|m| m.id == l.0));
    let named = leading_of(&probes).or(unknown).ok_or_else(|| {
        CtlError::Failed("no leader: nothing to back up from (a backup reads the leader's log)".into())
    })?;
    let mut client = new_client(cluster).await?;
    client.set_leader_hint(named);
    client.set_timeout(args.timeout.unwrap_or(Duration::from_secs(10)));
    let mut entries = Vec::new();
    let mut next = Slot(0);
    let mut start = None;
    // Up to the leader's decided index at the first read: every value acknowledged before the backup started.
    let mut end = None;
    let mut leader = None;
    while end.is_none_or(|end| next < end) {
        let (from, page) = client
            .log_linearizable(next, paxos_client::client::LOG_PAGE_LIMIT)
            .await
            .map_err(|e| CtlError::Failed(format!("log read from the leader: {}", describe(&e))))?;
        leader = Some(from);
        let end = *end.get_or_insert(page.decided);
        if start.is_none() {
            if page.start > next && !args.partial {
                return Err(CtlError::Failed(format!(
                    "instances below {} were deleted by retention ([log] retain_slots): restore cannot take a \
                     backup from there (it starts an empty cluster at instance 0); --partial writes it anyway",
                    page.start
                )));
            }
            if page.start > next {
                diag(format_args!("instances below {} were deleted by retention: the backup starts there", page.start));
            }
            // The first entry is where the backup starts (a proposer serves nothing below its
            // retention point, but one of an older release may).
            start = Some(page.entries.first().map_or(page.start.max(next), |e| e.slot));
        }
        let Some(last) = page.entries.last() else { break };
        next = last.slot.next();
        entries.extend(page.entries.into_iter().filter(|e| e.slot < end));
    }
    let start = start.unwrap_or(Slot(0));
    let text = encode_backup(&cluster.cluster, start, &entries);
    write_whole(&args.file, text.as_bytes())
        .map_err(|e| CtlError::Failed(format!("cannot write {}: {e}", args.file.display())))?;
    out.line(format!(
        "backed up instances {}..{} ({} entries, {} bytes) from {} to {}",
        start,
        start.0 + entries.len() as u64,
        entries.len(),
        text.len(),
        Node::Proposer(leader.unwrap_or(named)),
        args.file.display()
    ))
}

/// The arguments of `paxosctl restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    pub file: PathBuf,
    /// Give up when one page takes longer than this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
}

/// Runs `paxosctl restore FILE` into an empty cluster: its log then holds
/// the same instances, values and no-ops as the backup, checked by reading it back.
///
/// # Errors
/// [`CtlError::Usage`] for a damaged backup, [`CtlError::Failed`] when the
/// cluster is not empty, refuses, or does not answer.
pub async fn restore(cluster: &ClusterConfig, args: RestoreArgs, out: &mut Out) -> Result<(), CtlError> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let (from_cluster, entries) =
        decode_backup(&text).map_err(|e| CtlError::Usage(format!("{}: {e}", args.file.display())))?;
    if from_cluster != cluster.cluster {
        diag(format_args!("the backup is of cluster {from_cluster:?}, restoring into {:?}", cluster.cluster));
    }
    let first = entries.first().map_or(Slot(0), |e| e.slot);
    if first > Slot(0) {
        return Err(CtlError::Usage(format!(
            "{}: the backup starts at instance {first} (retention deleted what came before): an empty cluster \
             cannot hold the same instances",
            args.file.display()
        )));
    }
    let probes = reach_proposers(cluster, super::STATUS_TIMEOUT).await?;
    let mut client = new_client(cluster).await?;
    if let Some(leader) = leader_of(&probes) {
        client.set_leader_hint(leader);
    }
    client.set_timeout(args.timeout.unwrap_or(Duration::from_secs(30)));
    // An empty cluster's log holds its first configuration (instance 0, a no-op to clients) and nothing else.
    let end = probes.iter().filter_map(|p| p.reply.as_ref()).map(|r| r.decided).max().unwrap_or(Slot(0));
    if end > Slot(1) {
        return Err(CtlError::Failed(format!("the cluster is not empty: its log ends at {end}")));
    }
    if entries.first().is_some_and(|e| e.value.is_some()) {
        return Err(CtlError::Usage(format!(
            "{}: instance 0 holds a value; a backup of this system starts with the cluster's first configuration",
            args.file.display()
        )));
    }
    if let Some(e) = entries.iter().find(|e| e.value.as_ref().is_some_and(|v| v.len() > paxos_proto::MAX_VALUE_BYTES)) {
        let len = e.value.as_ref().map_or(0, String::len);
        return Err(CtlError::Usage(format!(
            "{}: instance {} holds a value of {len} bytes, above the limit of {} that every cluster refuses",
            args.file.display(),
            e.slot,
            paxos_proto::MAX_VALUE_BYTES
        )));
    }
    let mut next = Slot(1);
    for page in restore_pages(&entries[1.min(entries.len())..]) {
        let values: Vec<Option<String>> = page.iter().map(|e| e.value.clone()).collect();
        let len = values.len() as u64;
        match client.restore(next, values).await {
            Ok(end) if end.0 >= next.0 + len => next = Slot(next.0 + len),
            Ok(end) => return Err(CtlError::Failed(format!("restore stopped at {end}, short of {}", next.0 + len))),
            // A retry of a page that landed before its answer was lost.
            Err(ClientError::Restore { end, .. }) if end.0 == next.0 + len => next = end,
            Err(e) => return Err(CtlError::Failed(format!("restore at instance {next}: {}", describe(&e)))),
        }
    }
    // Read it back: a leader change during the restore could have put a no-op in a hole.
    let leader = client.leader_hint();
    let restored = client
        .read_log(leader, Slot(0))
        .await
        .map_err(|e| CtlError::Failed(format!("reading the restored log back: {}", describe(&e))))?;
    let got: BTreeMap<u64, Option<&str>> = restored.iter().map(|e| (e.slot.0, e.value.as_deref())).collect();
    for e in &entries {
        if got.get(&e.slot.0) != Some(&e.value.as_deref()) {
            return Err(CtlError::Failed(format!(
                "the restored log differs from the backup at instance {} (a leader change during the restore?): \
                 restore again into a fresh cluster",
                e.slot
            )));
        }
    }
    out.line(format!("restored instances 0..{} from {}", entries.len(), args.file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup's file is written whole through a temporary file of its own:
    /// an operator's `X.partial` beside `X.jsonl` is left alone.
    #[test]
    fn a_backup_leaves_other_files_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partial = dir.path().join("nightly.partial");
        std::fs::write(&partial, "an operator's file").expect("write");
        let file = dir.path().join("nightly.jsonl");
        write_whole(&file, b"the backup").expect("written");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "the backup");
        assert_eq!(std::fs::read_to_string(&partial).expect("still there"), "an operator's file");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    /// Restore pages hold at most 256 entries and 60,000 bytes of JSON, so
    /// that each fits a datagram: 100 values of 1000 bytes made one request
    /// of 100,443 bytes, which the client refused to send.
    #[test]
    fn restore_pages_fit_a_datagram() {
        let big = "x".repeat(1000);
        let escaped = "\u{1}".repeat(paxos_proto::MAX_VALUE_BYTES);
        let entries: Vec<LogEntry> = (0..100)
            .map(|i| entry(i, Some(&big)))
            .chain((100..400).map(|i| entry(i, (i % 2 == 0).then_some("v"))))
            .chain((400..403).map(|i| entry(i, Some(&escaped))))
            .collect();
        let pages = restore_pages(&entries);
        assert_eq!(pages.iter().map(|p| p.len()).sum::<usize>(), entries.len(), "every entry, once");
        assert_eq!(pages.concat(), entries, "in order");
        for page in &pages {
            let values: Vec<Option<String>> = page.iter().map(|e| e.value.clone()).collect();
            let json = serde_json::to_string(&values).expect("encodes");
            assert!(page.len() <= RESTORE_PAGE && json.len() <= RESTORE_PAGE_BYTES + 2, "{} bytes", json.len());
        }
        assert_eq!(pages[0].len(), 59, "as many 1000-byte values as fit");
        assert_eq!(pages.last().map(|p| p.len()), Some(1), "an 8 KiB value JSON escapes six times over fits alone");
    }

    fn entry(slot: u64, value: Option<&str>) -> LogEntry {
        LogEntry { slot: Slot(slot), value: value.map(str::to_owned) }
    }

    /// A backup round-trips, no-ops and values JSON must escape included.
    #[test]
    fn backups_round_trip() {
        let entries = vec![entry(0, None), entry(1, Some("a\t\"b\"\n")), entry(2, None), entry(3, Some("é"))];
        let text = encode_backup("paxos", Slot(0), &entries);
        assert_eq!(decode_backup(&text), Ok(("paxos".to_owned(), entries)));
        assert!(text.lines().last().unwrap().contains("sha256"));
    }

    /// Any edit is caught: a changed value, a dropped line, a cut file.
    #[test]
    fn damaged_backups_are_refused() {
        let entries = vec![entry(0, None), entry(1, Some("x")), entry(2, Some("y"))];
        let text = encode_backup("paxos", Slot(0), &entries);
        assert!(decode_backup(&text.replace("\"x\"", "\"z\"")).unwrap_err().contains("checksum"));
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(2);
        assert!(decode_backup(&lines.join("\n")).is_err());
        assert!(decode_backup(&text[..text.len() / 2]).is_err());
        assert!(decode_backup("").is_err());
    }

    /// The configuration prints one member per line, or as one JSON object.
    #[test]
    fn configurations_print() {
        let m = |id: u32, inc: Option<u64>| paxos_proto::Member {
            id: NodeId(id),
            addr: format!("h:{id}"),
            incarnation: inc,
        };
        let c = Config {
            epoch: 3,
            acceptors: vec![m(1, Some(255)), m(6, None)],
            proposers: vec![m(2, None)],
            session_lifetime_ms: 1000,
        };
        let lines = format_config(&c, false);
        assert_eq!(lines[0], "epoch 3");
        assert!(lines[1].starts_with("acceptor-1\th:1\tincarnation 00000000000000ff"));
        assert!(lines[2].contains("not pinned"));
        assert_eq!(lines[3], "proposer-2\th:2");
        let json = &format_config(&c, true)[0];
        assert!(json.contains(r#""pending":true"#) && json.contains(r#""epoch":3"#), "{json}");
    }
}
