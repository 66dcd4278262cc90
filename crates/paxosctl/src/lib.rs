//! `paxosctl`: the operator's command line, the part of the system that knows people.
//!
//! ```text
//!  paxosctl --config FILE propose [--json] [--timeout SECS] [--concurrency N] VALUE...
//!  paxosctl --config FILE log [--node ID] [--stale] [--from N] [--limit N] [--json] [--follow] [--timeout SECS]
//!  paxosctl --config FILE status [--json] [--timeout SECS]
//!  paxosctl --config FILE bench (--values N | --duration S [--warmup S]) --concurrency C [--size BYTES] [--json]
//!  paxosctl --config FILE member list|add|remove ...
//!  paxosctl --config FILE backup [--partial] FILE
//!  paxosctl --config FILE restore FILE
//!  paxosctl --config FILE leader transfer ID
//!  paxosctl verify [--log FILE]... [--acked FILE]... [--sequential FILE]... [--proposed FILE]... [--all-acked] [--same-logs]
//!  paxosctl keygen
//! ```
//!
//! Each subcommand is one module ([`propose`], [`log`], [`status`],
//! [`bench`](mod@bench), [`verify`]) on top of [`paxos_client`]. This module parses the command line,
//! loads the cluster file, runs the subcommand on a tokio runtime and turns
//! its outcome into an exit code:
//!
//! - 0: done (also when stdout was closed under us, e.g. `| head`, or when
//!   `log --follow` is interrupted);
//! - 1: the cluster failed us (unreachable, a timeout, a refused value), with
//!   one line on stderr per failure, each starting with `paxosctl: `;
//! - 2: a mistake of the operator (the command line, an oversized value, the
//!   cluster file), one line on stderr, and nothing was sent.
//!
//! Results go to stdout, diagnostics to stderr; nothing ever panics on input.

pub mod admin;
pub mod bench;
pub mod log;
pub mod propose;
pub mod status;
pub mod verify;

use std::fmt::Display;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use paxos_proto::{ClientErrorKind, Node, NodeId, StatusReply};
use tokio::task::JoinSet;

use paxos_client::client::{Client, ClientError};
use paxos_client::config::ClusterConfig;

use paxos_client::multi::MultiClient;

/// The exit code for a mistake of the operator (the command line, the cluster file).
pub const USAGE_EXIT_CODE: u8 = 2;

/// The exit code for a request the cluster failed (unreachable, timeout, refusal).
pub const FAILURE_EXIT_CODE: u8 = 1;

/// How long one status request waits before it is sent once more.
pub const STATUS_RETRY: Duration = Duration::from_millis(500);

/// How long a status request may take in all by default (`status
/// --timeout`): one retry after [`STATUS_RETRY`].
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(1000);

/// The command line of `paxosctl`.
#[derive(Debug, Parser)]
#[command(
    name = "paxosctl",
    version = paxos_version::LONG,
    about = "Propose values to, read the log of, and inspect a Multi-Paxos cluster.",
    after_help = "Exit codes: 0 success, 1 the cluster failed the request, 2 a usage error (nothing was sent)."
)]
pub struct Cli {
    /// The cluster file (TOML) that the daemons read.
    #[arg(long, env = "PAXOS_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append values to the log; waits until each is decided and prints `<instance>\t<value>` in the order given.
    Propose(propose::ProposeArgs),
    /// Print the decided log of one proposer (the leader by default): `<instance>\t<value>`.
    Log(log::LogArgs),
    /// Ask every node for its state: role, up/failed/unreachable, leader, ballot, decided index.
    Status(status::StatusArgs),
    /// Keep C proposals in flight for N values or for a time; report throughput and latency.
    Bench(bench::BenchArgs),
    /// Check SPEC's guarantees on recorded logs and acknowledgements (no cluster needed).
    Verify(verify::VerifyArgs),
    /// List, add or remove members (acceptors and proposers), through the log.
    Member(admin::MemberArgs),
    /// Write the decided log (every instance, no-ops included, checksummed) to FILE.
    Backup(admin::BackupArgs),
    /// Restore a backup into an empty cluster: the same instances, values and no-ops.
    Restore(admin::RestoreArgs),
    /// Leadership: `leader transfer ID` hands it to proposer ID.
    Leader(admin::LeaderArgs),
    /// Print a new key for [auth] (256 random bits as hex), for a peer or client key file.
    Keygen,
}

/// Why a subcommand did not succeed, and so which exit code `paxosctl` returns.
#[derive(Debug)]
pub enum CtlError {
    /// A mistake of the operator (exit 2); nothing was sent. The line to print.
    Usage(String),
    /// The cluster failed the request (exit 1). The line to print.
    Failed(String),
    /// Failures were already reported on stderr, one line each (exit 1).
    Reported,
    /// stdout was closed by its reader (SIGPIPE); stop quietly (exit 0).
    Closed,
}

impl CtlError {
    /// A failure to write to stdout: quiet for a closed pipe, else one line.
    pub fn from_stdout(e: io::Error) -> CtlError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CtlError::Closed
        } else {
            CtlError::Failed(format!("cannot write to stdout: {e}"))
        }
    }
}

/// Buffered stdout whose write errors become [`CtlError`]s instead of panics.
pub struct Out {
    w: BufWriter<Stdout>,
}

impl Out {
    /// Standard output.
    pub fn stdout() -> Out {
        Out { w: BufWriter::new(io::stdout()) }
    }

    /// Writes `line` and a newline (buffered; see [`Out::flush`]).
    ///
    /// # Errors
    /// [`CtlError::Closed`] when the reader went away, [`CtlError::Failed`] otherwise.
    pub fn line(&mut self, line: impl Display) -> Result<(), CtlError> {
        writeln!(self.w, "{line}").map_err(CtlError::from_stdout)
    }

    /// Hands what was written to the reader.
    ///
    /// # Errors
    /// As for [`Out::line`].
    pub fn flush(&mut self) -> Result<(), CtlError> {
        self.w.flush().map_err(CtlError::from_stdout)
    }
}

/// Prints one diagnostic line on stderr, prefixed `paxosctl: `. A closed
/// stderr is ignored: there is nobody left to tell.
pub fn diag(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "paxosctl: {line}");
}

/// `paxosctl`'s whole life: parse, run, and the exit code. The binary's `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    init_tracing();
    match run(cli) {
        Ok(()) | Err(CtlError::Closed) => ExitCode::SUCCESS,
        Err(CtlError::Usage(line)) => {
            diag(line);
            ExitCode::from(USAGE_EXIT_CODE)
        }
        Err(CtlError::Failed(line)) => {
            diag(line);
            ExitCode::from(FAILURE_EXIT_CODE)
        }
        Err(CtlError::Reported) => ExitCode::from(FAILURE_EXIT_CODE),
    }
}

/// Runs one parsed command line.
///
/// # Errors
/// See [`CtlError`].
pub fn run(cli: Cli) -> Result<(), CtlError> {
    match cli.command {
        Command::Verify(args) => {
            let mut out = Out::stdout();
            let result = verify::run(args, &mut out);
            return result.and(out.flush());
        }
        Command::Keygen => {
            let mut out = Out::stdout();
            out.line(keygen()?)?;
            return out.flush();
        }
        _ => {}
    }
    let path = cli
        .config
        .ok_or_else(|| CtlError::Usage("no cluster file: pass --config FILE or set PAXOS_CONFIG".to_owned()))?;
    // The arguments are checked before the cluster file is even read, so that
    // an oversized value is refused whatever the state of the cluster.
    match &cli.command {
        Command::Propose(args) => args.check()?,
        Command::Bench(args) => args.check()?,
        Command::Log(_)
        | Command::Status(_)
        | Command::Verify(_)
        | Command::Keygen
        | Command::Member(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::Leader(_) => {}
    }
    let cluster = load_cluster(&path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot start the tokio runtime: {e}")))?;
    let mut out = Out::stdout();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Propose(args) => propose::run(&cluster, args, &mut out).await,
            Command::Log(args) => log::run(&cluster, args, &mut out).await,
            Command::Status(args) => status::run(&cluster, args, &mut out).await,
            Command::Bench(args) => bench::run(&cluster, args, &mut out).await,
            Command::Member(args) => admin::member(&cluster, args, &mut out).await,
            Command::Backup(args) => admin::backup(&cluster, args, &mut out).await,
            Command::Restore(args) => admin::restore(&cluster, args, &mut out).await,
            Command::Leader(args) => admin::leader(&cluster, args, &mut out).await,
            Command::Verify(_) | Command::Keygen => unreachable!("runs without a cluster"),
        }
    });
    // What is still running (clients of a failed run, a host-name lookup that
    // hangs) is abandoned, not waited for.
    runtime.shutdown_background();
    let flushed = out.flush();
    result.and(flushed)
}

/// A new key for `[auth]`: [`paxos_proto::auth::KEY_BYTES`] bytes from the
/// operating system's random source, as hex.
///
/// # Errors
/// [`CtlError::Failed`] when the random source cannot be read.
pub fn keygen() -> Result<String, CtlError> {
    use std::io::Read;
    let mut key = [0u8; paxos_proto::auth::KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| CtlError::Failed(format!("cannot read /dev/urandom for a key: {e}")))?;
    Ok(paxos_proto::auth::key_to_hex(&key))
}

/// Loads the cluster file; its one-line error is a usage error.
///
/// # Errors
/// [`CtlError::Usage`] with the [`crate::config::ConfigError`] line.
pub fn load_cluster(path: &Path) -> Result<ClusterConfig, CtlError> {
    ClusterConfig::load(path).map_err(|e| CtlError::Usage(e.to_string()))
}

/// Prints a clap error as one line (exit 2), or help and version as clap
/// does (exit 0).
fn clap_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        // Plain `paxosctl` (or `paxosctl member`): clap would print the whole help as the error.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            diag(missing_command(&e.render().to_string()));
            ExitCode::from(USAGE_EXIT_CODE)
        }
        _ => {
            diag(one_line_clap_error(&e.render().to_string()));
            ExitCode::from(USAGE_EXIT_CODE)
        }
    }
}

/// What a command line without its (sub)command is told, from the usage
/// line clap rendered: `Usage: paxosctl member <COMMAND>` names the command
/// whose subcommand is missing.
fn missing_command(rendered: &str) -> String {
    let usage = rendered.lines().find_map(|l| l.trim().strip_prefix("Usage: ")).unwrap_or("paxosctl");
    let path: Vec<&str> = usage.split_whitespace().take_while(|w| !w.starts_with(['<', '['])).collect();
    match path[..] {
        [_, "member", ..] => "member: expected list, add or remove (see paxosctl member --help)".into(),
        [_, "leader", ..] => "leader: expected transfer ID (see paxosctl leader --help)".into(),
        _ => "no command given: expected propose, log, status, bench, member, backup, restore, leader, verify or \
              keygen (see paxosctl --help)"
            .into(),
    }
}

/// A clap error of `paxosctl` on one line.
fn one_line_clap_error(rendered: &str) -> String {
    paxos_client::config::one_line_clap_error(rendered, "paxosctl")
}

/// Installs a tracing subscriber on stderr only when `RUST_LOG` asks for one,
/// so that by default stderr carries nothing but `paxosctl`'s own lines.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).try_init();
    }
}

/// Parses `--timeout SECS`: a positive number of seconds, fractions allowed.
///
/// # Errors
/// A message for clap when it is not a positive finite number up to a day.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text} must be more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration as an operator writes it: `10s`, `2.5s`, `0.25s`.
pub fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A value quoted for one diagnostic line: escaped, and cut after 40 characters.
pub fn quote(value: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Why one request failed, in words, e.g. `timed out after 10s`.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Timeout { after, .. } => format!("timed out after {}", secs(*after)),
        ClientError::LeaderNotInFile { after, leader, .. } => format!(
            "timed out after {}: proposer {leader} leads, but the cluster file does not name it (add it: `paxosctl \
             member list` shows where it is)",
            secs(*after)
        ),
        ClientError::Refused(kind) => format!(
            "refused by the cluster: {}",
            match kind {
                ClientErrorKind::TooLarge => "the value is too large",
                ClientErrorKind::Stale => "a later request of this client was already decided",
                ClientErrorKind::Busy => "the leader is busy",
            }
        ),
        ClientError::ValueTooLarge { len } => {
            format!("is {len} bytes, over the limit of {} bytes", paxos_proto::MAX_VALUE_BYTES)
        }
        ClientError::UnknownNode(node) => format!("{node} is not in the cluster file"),
        ClientError::Io(e) => format!("client socket: {e}"),
        ClientError::Keys(e) => e.to_string(),
        ClientError::Deleted { .. }
        | ClientError::Member(_)
        | ClientError::Restore { .. }
        | ClientError::Transfer(_) => e.to_string(),
    }
}

/// A new client of `cluster`.
///
/// # Errors
/// [`CtlError::Failed`] when its socket cannot be opened (e.g. too many open files).
pub async fn new_client(cluster: &ClusterConfig) -> Result<Client, CtlError> {
    Client::new(cluster).await.map_err(client_error)
}

/// Why a client could not be made: a key file is the operator's mistake (exit 2).
fn client_error(e: ClientError) -> CtlError {
    match e {
        ClientError::Io(e) => CtlError::Failed(format!("cannot open a client socket: {e}")),
        ClientError::Keys(e) => CtlError::Usage(e.to_string()),
        e => CtlError::Failed(format!("cannot make a client: {}", describe(&e))),
    }
}

/// What one node answered to a status request, if it answered.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The node asked.
    pub node: Node,
    /// Its address in the cluster file.
    pub addr: String,
    /// Its answer, or `None` when it did not answer in time.
    pub reply: Option<StatusReply>,
}

/// Asks each of `nodes` for its status, all at once, each with its own client,
/// waiting [`STATUS_RETRY`] and then again, for `wait` in all. The answers
/// come back in the order of `nodes`.
///
/// # Errors
/// [`CtlError::Failed`] when a client socket cannot be opened.
pub async fn probe(cluster: &ClusterConfig, nodes: &[Node], wait: Duration) -> Result<Vec<Probe>, CtlError> {
    let mut tasks = JoinSet::new();
    for (i, node) in nodes.iter().copied().enumerate() {
        let mut client = new_client(cluster).await?;
        client.set_retry(STATUS_RETRY.min(wait));
        client.set_timeout(wait);
        tasks.spawn(async move { (i, client.status(node).await.ok()) });
    }
    let mut replies = vec![None; nodes.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, reply)) = done {
            replies[i] = reply;
        }
    }
    Ok(nodes
        .iter()
        .zip(replies)
        .map(|(node, reply)| Probe { node: *node, addr: address(cluster, *node), reply })
        .collect())
}

/// Every node of the cluster file: proposers, then acceptors, in file order.
pub fn all_nodes(cluster: &ClusterConfig) -> Vec<Node> {
    let proposers = cluster.proposers.iter().map(|m| Node::Proposer(NodeId(m.id)));
    proposers.chain(cluster.acceptors.iter().map(|m| Node::Acceptor(NodeId(m.id)))).collect()
}

/// Every proposer of the cluster file, in file order.
pub fn proposer_nodes(cluster: &ClusterConfig) -> Vec<Node> {
    cluster.proposers.iter().map(|m| Node::Proposer(NodeId(m.id))).collect()
}

/// The address of `node` as the cluster file writes it.
pub fn address(cluster: &ClusterConfig, node: Node) -> String {
    let member = match node {
        Node::Proposer(id) => cluster.proposers.iter().find(|m| m.id == id.0),
        Node::Acceptor(id) => cluster.acceptors.iter().find(|m| m.id == id.0),
        Node::Client(_) => None,
    };
    member.map(|m| m.addr.clone()).unwrap_or_default()
}

/// The leader as the proposers' answers show it: a working proposer that
/// says it leads (the highest ballot if, for a moment, two do), else the
/// leader a working proposer names, unless that one is seen failed. Failed
/// (SIGUSR1) nodes do not count: they answer status requests, nothing else.
pub fn leader_of(probes: &[Probe]) -> Option<NodeId> {
    let failed =
        |id: NodeId| probes.iter().any(|p| p.node == Node::Proposer(id) && p.reply.as_ref().is_some_and(|r| r.failed));
    leading_of(probes).or_else(|| working(probes).filter_map(|(_, r)| r.leader).find(|l| !failed(*l)))
}

/// The working proposer that says it leads (the highest ballot if, for a
/// moment, two do); not one that is merely named: a candidate names itself.
pub fn leading_of(probes: &[Probe]) -> Option<NodeId> {
    working(probes).filter(|(_, r)| r.role == "leader").max_by_key(|(_, r)| r.ballot).map(|(id, _)| id)
}

/// The proposers that answered and are not failed (SIGUSR1), with their answers.
fn working(probes: &[Probe]) -> impl Iterator<Item = (NodeId, &StatusReply)> {
    probes.iter().filter_map(|p| match (p.node, &p.reply) {
        (Node::Proposer(id), Some(r)) if !r.failed => Some((id, r)),
        _ => None,
    })
}

/// The client `propose` and `bench` propose through: `lanes` clients on one
/// socket that give a value up after `timeout` and start at the leader the
/// proposers name (fails fast, as [`reach_proposers`], when none answers).
///
/// # Errors
/// [`CtlError::Failed`] when no proposer answers or the socket cannot be opened.
pub async fn proposing_client(
    cluster: &ClusterConfig,
    lanes: usize,
    timeout: Duration,
) -> Result<MultiClient, CtlError> {
    let probes = reach_proposers(cluster, STATUS_TIMEOUT).await?;
    let mut client = MultiClient::new(cluster, lanes).map_err(client_error)?;
    client.set_timeout(timeout);
    if let Some(leader) = leader_of(&probes) {
        client.set_leader_hint(leader);
    }
    Ok(client)
}

/// The proposers' status, failing fast when none answers: the cluster is
/// down or the file points elsewhere, and waiting out a long timeout per
/// value would only hide that.
///
/// # Errors
/// [`CtlError::Failed`] when no proposer answers within `wait`.
pub async fn reach_proposers(cluster: &ClusterConfig, wait: Duration) -> Result<Vec<Probe>, CtlError> {
    let probes = probe(cluster, &proposer_nodes(cluster), wait).await?;
    if probes.iter().all(|p| p.reply.is_none()) {
        return Err(unreachable(cluster, "no proposer", wait));
    }
    Ok(probes)
}

/// The error for a cluster of which `who` answered within `wait`. Nodes
/// also drop, unanswered, what names another cluster than theirs.
pub fn unreachable(cluster: &ClusterConfig, who: &str, wait: Duration) -> CtlError {
    CtlError::Failed(format!(
        "cluster unreachable: {who} answered within {} (is it running, and named {:?} as here? cluster file {})",
        secs(wait),
        cluster.cluster,
        cluster.path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: paxosctl status [OPTIONS]\n\nFor more information, try '--help'.\n";
        assert_eq!(one_line_clap_error(rendered), "unexpected argument '--bogus' found (see paxosctl --help)");
        let missing = "error: the following required arguments were not provided:\n  --values <N>\n\nUsage: x\n";
        assert_eq!(
            one_line_clap_error(missing),
            "the following required arguments were not provided: --values <N> (see paxosctl --help)"
        );
    }

    #[test]
    fn a_missing_subcommand_names_its_command() {
        for (args, want) in [
            (&["paxosctl"][..], "no command given: expected propose"),
            (&["paxosctl", "member"], "member: expected list, add or remove"),
            (&["paxosctl", "leader"], "leader: expected transfer ID"),
        ] {
            let e = Cli::try_parse_from(args).expect_err("a usage error");
            let line = missing_command(&e.render().to_string());
            assert!(line.starts_with(want), "{args:?}: {line:?}");
        }
    }

    #[test]
    fn every_clap_error_of_the_real_command_line_is_one_line() {
        for args in [
            &["paxosctl", "bogus"][..],
            &["paxosctl", "status", "--bogus"],
            &["paxosctl", "bench", "--values", "3"],
            &["paxosctl", "propose"],
            &["paxosctl", "propose", "--timeout", "abc", "x"],
            &["paxosctl", "propose", "--concurrency", "0", "x"],
            &["paxosctl", "log", "--from", "-1"],
        ] {
            let e = Cli::try_parse_from(args).expect_err("a usage error");
            let line = one_line_clap_error(&e.render().to_string());
            assert!(!line.contains('\n') && line.len() > 20, "{args:?}: {line:?}");
        }
    }

    /// SPEC: `--timeout S` on every command that waits.
    #[test]
    fn every_command_that_waits_takes_a_timeout() {
        for args in [
            &["paxosctl", "propose", "x"][..],
            &["paxosctl", "log"],
            &["paxosctl", "log", "--follow"],
            &["paxosctl", "status", "--json"],
            &["paxosctl", "member", "list"],
            &["paxosctl", "backup", "f"],
            &["paxosctl", "restore", "f"],
            &["paxosctl", "leader", "transfer", "2"],
        ] {
            let with: Vec<&str> = args.iter().copied().chain(["--timeout", "2.5"]).collect();
            if let Err(e) = Cli::try_parse_from(&with) {
                panic!("{with:?}: {}", e.render());
            }
        }
    }

    #[test]
    fn keygen_makes_distinct_keys_that_parse() {
        let (a, b) = (keygen().unwrap(), keygen().unwrap());
        assert_eq!(a.len(), 2 * paxos_proto::auth::KEY_BYTES);
        assert_ne!(a, b);
        assert_eq!(paxos_proto::auth::KeyRing::parse(&a).unwrap().len(), 1);
    }

    #[test]
    fn seconds_parse_and_print() {
        assert_eq!(parse_secs("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_secs("ten").is_err());
        assert_eq!(secs(Duration::from_secs(10)), "10s");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
    }

    #[test]
    fn long_values_are_cut_in_diagnostics() {
        assert_eq!(quote("x"), "\"x\"");
        assert_eq!(quote("a\tb"), "\"a\\tb\"");
        let long = "é".repeat(50);
        assert_eq!(quote(&long), format!("{:?}...", "é".repeat(40)));
    }

    #[test]
    fn timeouts_read_as_the_brief_says() {
        let e = ClientError::Timeout { what: "propose".into(), after: Duration::from_secs(10) };
        assert_eq!(describe(&e), "timed out after 10s");
    }

    fn reply(role: &str, failed: bool, leader: Option<u32>, round: u64, id: u32) -> Option<StatusReply> {
        Some(StatusReply {
            req: 1,
            role: role.into(),
            failed,
            leader: leader.map(NodeId),
            ballot: paxos_proto::Ballot::new(round, NodeId(id)),
            decided: paxos_proto::Slot(0),
            peers_heard: vec![],
            counters: Default::default(),
            state: "up".into(),
            epoch: 1,
            version: String::new(),
            commit: String::new(),
        })
    }

    fn p(id: u32, reply: Option<StatusReply>) -> Probe {
        Probe { node: Node::Proposer(NodeId(id)), addr: String::new(), reply }
    }

    #[test]
    fn the_leader_is_a_working_proposer_that_leads() {
        assert_eq!(leader_of(&[p(1, reply("follower", false, Some(2), 1, 2)), p(2, None)]), Some(NodeId(2)));
        assert_eq!(
            leader_of(&[p(1, reply("leader", false, Some(1), 3, 1)), p(2, reply("leader", false, Some(2), 2, 2))]),
            Some(NodeId(1))
        );
        // A failed node may still believe it leads, and others may still name it; it cannot serve.
        assert_eq!(
            leader_of(&[p(1, reply("follower", false, None, 1, 1)), p(2, reply("leader", true, Some(2), 2, 2))]),
            None
        );
        assert_eq!(
            leader_of(&[p(1, reply("follower", false, Some(2), 1, 1)), p(2, reply("leader", true, Some(2), 2, 2))]),
            None
        );
        assert_eq!(leader_of(&[p(1, None), p(2, None)]), None);
    }
}
