//! What the two daemon binaries share: the command line, picking the node out
//! of the cluster file, logging, and exit codes.
//!
//! Exit codes: 0 after a graceful stop, 2 for a mistake of the operator (the
//! command line or the cluster file; one line on stderr naming the file, the
//! key and the problem), 1 for anything else (storage, a socket or the HTTP
//! port in use), reported as one `error!` line.
//!
//! `--version` prints the crate's version and the git commit it was built
//! from (`build.rs`), as `paxos_node_info` reports them.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use paxos_proto::{Node, NodeId};
use paxos_storage::ops::BinaryOp;
use paxos_storage::{Durable, FileStore, OWNER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use paxos_client::client::Client;
use paxos_client::config::{ClusterConfig, NodeSettings, Role};
use paxos_client::net::resolve_blocking;

/// The exit code for a mistake in the command line or the cluster file.
pub const USAGE_EXIT_CODE: u8 = 2;

/// The exit code for a failure at run time (storage, socket).
pub const FAILURE_EXIT_CODE: u8 = 1;

pub use paxos_version::{COMMIT, LONG as LONG_VERSION, VERSION};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The command line of `paxos-acceptor` and `paxos-proposer`.
#[derive(Clone, Debug, Parser)]
pub struct Args {
    /// The cluster file (TOML).
    #[arg(long, env = "PAXOS_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// This node's id among the members of its role in the cluster file.
    #[arg(long, env = "PAXOS_ID", value_name = "N")]
    pub id: Option<u32>,
    /// The address to bind instead of the node's own `addr`, e.g. 0.0.0.0:7101 in a container.
    #[arg(long, env = "PAXOS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve GET /metrics, /health and /ready over HTTP at ADDR (TCP), instead
    /// of the node's `http` in the cluster file, e.g. 0.0.0.0:9100 in a container.
    #[arg(long, env = "PAXOS_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// The format of log lines; RUST_LOG filters them (default: info).
    #[arg(long, env = "PAXOS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// The whole life of a daemon binary: parses the command line of `name`,
/// loads its node of `role` from the cluster file (a mistake is one line and
/// exit 2), installs logging, serves HTTP if the node has an address
/// ([`crate::http`]), installs the signal handlers, and runs `serve` with
/// the node and the signals' commands on the node's runtime. The exit code is
/// 0 after a graceful stop, 1 after one `error!` line.
pub fn main<F, Fut>(name: &'static str, about: &'static str, role: Role, serve: F) -> ExitCode
where
    F: FnOnce(NodeSetup, tokio::sync::mpsc::UnboundedReceiver<crate::runtime::Control>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args = parse_args(name, about);
    let node = match NodeSetup::load(&args, role) {
        Ok(node) => node,
        Err(line) => return usage_error(&line),
    };
    init_tracing(args.log_format);
    exit_code(block_on(async move {
        if let Some(http) = &node.http {
            // Before the node opens its store: /health says `starting` meanwhile.
            start_http(http, role, node.id)?;
        }
        let control = crate::signals::install().map_err(|e| anyhow::anyhow!("install the signal handlers: {e}"))?;
        serve(node, control).await
    }))
}

/// Binds the HTTP address and serves it on a thread of its own ([`crate::http`]).
///
/// # Errors
/// One line naming where the address comes from, when it cannot be bound
/// (a port in use) or the server cannot start.
fn start_http(http: &HttpAddr, role: Role, id: u32) -> anyhow::Result<()> {
    let HttpAddr { addr, origin } = http;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("{origin}: cannot serve HTTP on {addr}: {e}"))?;
    crate::http::start(listener, role, id).map_err(|e| anyhow::anyhow!("{origin}: cannot start the HTTP server: {e}"))
}

/// Parses the command line of the binary `name`: `--help` and `--version`
/// print and exit 0; a mistake exits 2 with one line (clap's first
/// paragraph, with a pointer to `--help`).
pub fn parse_args(name: &'static str, about: &'static str) -> Args {
    let command = Args::command().name(name).bin_name(name).about(about).version(LONG_VERSION);
    let parsed = command.try_get_matches().and_then(|matches| Args::from_arg_matches(&matches));
    match parsed {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => e.exit(),
        Err(e) => {
            // As `usage_error` prints it; nothing is running yet to return to.
            let line = paxos_client::config::one_line_clap_error(&e.render().to_string(), name);
            let argv: Vec<String> = std::env::args().collect();
            eprintln!("{}", from_env(&line, &argv, |var| std::env::var_os(var).is_some()));
            std::process::exit(i32::from(USAGE_EXIT_CODE));
        }
    }
}

/// The flags a variable of the environment may set instead, as `Args` declares them.
const FLAG_VARIABLES: [(&str, &str); 5] = [
    ("--config", "PAXOS_CONFIG"),
    ("--id", "PAXOS_ID"),
    ("--listen", "PAXOS_LISTEN"),
    ("--http", "PAXOS_HTTP"),
    ("--log-format", "PAXOS_LOG_FORMAT"),
];

/// `line` (clap's one-line error), saying which variable of the environment
/// gave the value it refuses when the command line `argv` did not (clap
/// names the flag alone: `invalid value 'x' for '--id <N>'` for PAXOS_ID=x).
fn from_env(line: &str, argv: &[String], is_set: impl Fn(&str) -> bool) -> String {
    let given = |flag: &str| argv.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let named =
        FLAG_VARIABLES.iter().find(|(flag, var)| line.contains(&format!("'{flag} ")) && !given(flag) && is_set(var));
    match named {
        Some((_, var)) => format!("{line} (the value is {var}'s, from the environment)"),
        None => line.to_owned(),
    }
}

/// Everything a daemon needs to know about itself before it opens anything.
#[derive(Clone, Debug)]
pub struct NodeSetup {
    /// The whole cluster file.
    pub cluster: ClusterConfig,
    /// This node's role.
    pub role: Role,
    /// This node's id within its role.
    pub id: u32,
    /// Its effective settings.
    pub settings: NodeSettings,
    /// Its state directory, `<data_dir>/<role>-<id>`.
    pub data_dir: PathBuf,
    /// The address to bind.
    pub listen: SocketAddr,
    /// Where to serve HTTP, if anywhere: `--http`, else the member's `http`.
    pub http: Option<HttpAddr>,
}

/// The HTTP address of a node, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAddr {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Where it was set, to name in errors: `<file>: acceptors[2].http` or `<file>: --http (PAXOS_HTTP)`.
    pub origin: String,
}

impl NodeSetup {
    /// Loads the cluster file named by `args` and picks the node `args.id` of `role`.
    ///
    /// # Errors
    /// One line naming the file, the key and the problem.
    pub fn load(args: &Args, role: Role) -> Result<NodeSetup, String> {
        let cluster = ClusterConfig::load(&args.config).map_err(|e| e.to_string())?;
        let file = args.config.display();
        let id = args.id.ok_or_else(|| format!("{file}: --id: missing; pass --id N or set PAXOS_ID"))?;
        let member = cluster.member(role, id).is_some();
        if id == 0 {
            return Err(format!("{file}: --id: 0 is invalid; ids start at 1"));
        }
        if !member && args.listen.is_none() {
            return Err(format!(
                "{file}: --id {id}: no {role} {id} in the file; a node to be added to the cluster starts with \
                 --listen ADDR (and waits until `paxosctl member add {role} {id} ADDR`)"
            ));
        }
        let settings = cluster.node_settings(role, id);
        // The key files are read at start-up, so that a missing or bad one is an operator's mistake (exit 2).
        cluster.peer_keys().map_err(|e| e.to_string())?;
        cluster.client_keys().map_err(|e| e.to_string())?;
        let data_dir = settings.data_dir.join(format!("{role}-{id}"));
        // A data dir that cannot be one (a file in its way, a read-only
        // disk) is the operator's to fix: one line naming the key, exit 2.
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            let key = match cluster.members(role).iter().position(|m| m.id == id && m.data_dir.is_some()) {
                Some(index) => format!("{}[{index}].data_dir", role.section()),
                None if std::env::var_os("PAXOS_NODE__DATA_DIR").is_some() => {
                    "node.data_dir (PAXOS_NODE__DATA_DIR)".into()
                }
                None => "node.data_dir".into(),
            };
            format!("{file}: {key}: cannot use {} as this node's data dir: {e}", data_dir.display())
        })?;
        let listen = match &args.listen {
            Some(listen) => pick(resolve_blocking(listen))
                .map_err(|e| format!("{file}: --listen (PAXOS_LISTEN): cannot use {listen:?}: {e}"))?,
            None => {
                let (index, member) =
                    cluster.members(role).iter().enumerate().find(|(_, m)| m.id == id).expect("a member, or --listen");
                pick(resolve_blocking(&member.addr)).map_err(|e| {
                    format!(
                        "{file}: {}[{index}].addr: cannot resolve {:?}: {e}; pass --listen ADDR to bind another address",
                        role.section(),
                        member.addr
                    )
                })?
            }
        };
        let http = match args.http.as_deref().filter(|a| !a.is_empty()) {
            Some(http) => Some((format!("{file}: --http (PAXOS_HTTP)"), http)),
            None => cluster.http_for(role, id).map(|(key, http)| (format!("{file}: {key}"), http)),
        };
        let http = match http {
            Some((origin, spec)) => {
                let addr = pick(resolve_blocking(spec)).map_err(|e| format!("{origin}: cannot use {spec:?}: {e}"))?;
                Some(HttpAddr { addr, origin })
            }
            None => None,
        };
        Ok(NodeSetup { cluster, role, id, settings, data_dir, listen, http })
    }

    /// This node's id as the core knows it.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// This node's name, `proposer-1` or `acceptor-3`, as every log line calls it.
    pub fn node(&self) -> Node {
        match self.role {
            Role::Proposer => Node::Proposer(self.node_id()),
            Role::Acceptor => Node::Acceptor(self.node_id()),
        }
    }

    /// True when the cluster file names this node (else it waits to be added).
    pub fn in_file(&self) -> bool {
        self.cluster.member(self.role, self.id).is_some()
    }
}

/// The first IPv4 address, else the first.
fn pick(addrs: std::io::Result<Vec<SocketAddr>>) -> std::io::Result<SocketAddr> {
    let addrs = addrs?;
    Ok(addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().expect("resolve returns at least one address"))
}

/// How the start-up line shows the `fsync` setting.
pub fn fsync_note(fsync: bool) -> &'static str {
    if fsync {
        "true"
    } else {
        "false (benchmarks only: acknowledged values may be lost on power failure)"
    }
}

/// Installs the tracing subscriber: stderr, `RUST_LOG` filter (default `info`), `format`.
///
/// A log line that cannot be written (stderr is a pipe whose reader went
/// away, a full disk) is dropped: by default the subscriber reports that
/// with `eprintln!`, which panics on the same broken stderr, so a daemon
/// logged through `| logger` died at its next event when the logger did, or
/// hung in its stop.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::builder().with_default_directive(tracing::Level::INFO.into()).from_env_lossy();
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    match format {
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Prints an operator's mistake as its one line and returns exit code 2.
pub fn usage_error(line: &str) -> ExitCode {
    // Tracing is not installed yet (the log format may be what is wrong), and
    // the line must be the only one: plain stderr.
    eprintln!("{line}");
    ExitCode::from(USAGE_EXIT_CODE)
}

/// How long a stopping daemon waits for background work (a host-name lookup
/// that hangs on an unreachable DNS server) before it exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Runs `serve` on a single-threaded tokio runtime (the node loop is the one
/// owner of the node; fsyncs run inline on it, which is the group-commit point),
/// then shuts the runtime down without waiting longer than [`SHUTDOWN_GRACE`].
///
/// # Errors
/// What `serve` returns, or why the runtime could not start.
pub fn block_on(serve: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("start the tokio runtime: {e}"))?;
    let result = runtime.block_on(serve);
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// An operator's mistake found once the node has opened its store (e.g. a
/// file whose acceptors cannot start a cluster): one line, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How long a node that would start a cluster with an even acceptor set asks
/// the file's other members whether a cluster already runs (see [`check_genesis`]).
pub const RUNNING_CLUSTER_ASK: Duration = Duration::from_secs(3);

/// Refuses the file's acceptors as the first configuration of a cluster
/// when their count is even and this node would start one with them: it is
/// a member of the file and its log holds no configuration yet (`epoch` 0).
/// A node the file does not name joins a running cluster (`--listen`) and
/// takes its configuration from the log, whatever the file's count.
///
/// An empty log does not tell a new cluster from a running one whose
/// members a kept-up-to-date file names, left even by membership changes,
/// where this node lost its data dir. So before it refuses, the node asks
/// the file's other members for their status for up to
/// [`RUNNING_CLUSTER_ASK`]: if one answers from a configuration the log
/// decided (epoch 1 or later), a cluster runs, and the node starts and takes
/// its members from the log (an acceptor rebuilds itself, as with an odd
/// set). It refuses once every other member answered from none, or when the
/// time is up.
///
/// # Errors
/// [`UsageError`] with the file, the key and the problem.
pub async fn check_genesis(node: &NodeSetup, epoch: u32) -> anyhow::Result<()> {
    let problem = match node.cluster.even_genesis() {
        Some(problem) if epoch == 0 && node.in_file() => problem,
        _ => return Ok(()),
    };
    match running_cluster(node).await {
        Some((peer, epoch)) => {
            info!(
                node = %node.node(), %peer, epoch,
                "the cluster file names an even acceptor set, but a member runs a cluster: starting, to take the \
                 members from its log"
            );
            Ok(())
        }
        None => Err(UsageError(format!(
            "{problem}; no other member answered from a running cluster within {}s (a node that lost its data dir \
             in a running cluster left with an even set starts once one does)",
            RUNNING_CLUSTER_ASK.as_secs()
        ))
        .into()),
    }
}

/// The first other member of the file that answers its status from a
/// configuration the log decided, with its epoch; `None` once every one
/// answered from none, or after [`RUNNING_CLUSTER_ASK`].
async fn running_cluster(node: &NodeSetup) -> Option<(Node, u32)> {
    let me = node.node();
    let proposers = node.cluster.proposers.iter().map(|m| Node::Proposer(NodeId(m.id)));
    let acceptors = node.cluster.acceptors.iter().map(|m| Node::Acceptor(NodeId(m.id)));
    let mut asks = tokio::task::JoinSet::new();
    for peer in proposers.chain(acceptors).filter(|n| *n != me) {
        let cluster = node.cluster.clone();
        asks.spawn(async move {
            let mut client = Client::new(&cluster).await.ok()?;
            client.set_retry(Duration::from_millis(250));
            client.set_timeout(RUNNING_CLUSTER_ASK);
            let reply = client.status(peer).await.ok()?;
            Some((peer, reply.epoch))
        });
    }
    // Dropping the set aborts the asks still running.
    while let Some(asked) = asks.join_next().await {
        if let Ok(Some((peer, epoch))) = asked {
            if epoch > 0 {
                return Some((peer, epoch));
            }
        }
    }
    None
}

/// Claims the node's data dir for it ([`FileStore::claim`]), right after
/// the store opened it and before its state is loaded: the first start
/// records the node (role and id) in the dir; a data dir that another node
/// ran on (copied or renamed from another acceptor's) is refused with one
/// line, exit 2. (The cluster's name is not part of it: a renamed cluster
/// keeps its data.)
///
/// # Errors
/// [`UsageError`] naming both nodes; the store's error when the file cannot be read or written.
pub fn claim_data_dir<S>(node: &NodeSetup, store: &FileStore<S>) -> anyhow::Result<()>
where
    S: Durable,
    S::Op: Serialize + DeserializeOwned + BinaryOp,
{
    let owner = node.node().to_string();
    let claimed = store.claim(&owner).with_context(|| format!("claim the data dir {}", node.data_dir.display()))?;
    match claimed {
        None => Ok(()),
        Some(recorded) => Err(UsageError(format!(
            "{}: this data dir is {recorded}'s (its {OWNER} file), not {owner}'s: a node must not run on \
             another's state; give it an empty data dir (an acceptor then rebuilds itself from its peers)",
            node.data_dir.display()
        ))
        .into()),
    }
}

/// The exit code of a daemon's run: 0, or 1 after one `error!` line with the
/// whole cause chain; 2 for a [`UsageError`], printed as its one line.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => usage_error(&e.to_string()),
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(FAILURE_EXIT_CODE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value clap refuses that came from the environment is named with its
    /// variable; one from the command line is not.
    #[test]
    fn a_refused_value_from_the_environment_names_its_variable() {
        let line = "error: invalid value 'x' for '--id <N>': invalid digit found in string (see --help)";
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let set = |v: &str| v == "PAXOS_ID";
        assert_eq!(
            from_env(line, &argv(&["paxos-acceptor", "--config", "c.toml"]), set),
            format!("{line} (the value is PAXOS_ID's, from the environment)")
        );
        assert_eq!(from_env(line, &argv(&["paxos-acceptor", "--id", "x"]), set), line, "the command line's own");
        assert_eq!(from_env(line, &argv(&["paxos-acceptor", "--id=x"]), set), line);
        assert_eq!(from_env(line, &argv(&["paxos-acceptor"]), |_| false), line, "no such variable");
    }
}
