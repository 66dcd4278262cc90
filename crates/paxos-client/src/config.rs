//! The cluster file: one TOML file that names every node of the cluster.
//!
//! Every daemon and `paxosctl` reads the same file (see SPEC.md, "The cluster
//! file"); a daemon then picks its own entry by role and `--id`.
//!
//! ```toml
//! cluster = "paxos"              # optional; datagrams of other clusters are dropped
//!
//! [[proposers]]
//! id = 1
//! addr = "127.0.0.1:7001"        # host:port; host names are kept as written
//!
//! [[acceptors]]
//! id = 1
//! addr = "127.0.0.1:7101"
//! fsync = false                  # any [node] key may be overridden per member
//! http = "127.0.0.1:9101"        # optional: GET /metrics, /health and /ready here (TCP)
//!
//! [node]                         # optional defaults for every node
//! data_dir = "data"              # a node keeps its state in <data_dir>/<role>-<id>
//! heartbeat_ms = 100
//! election_timeout_ms = 500
//! tick_ms = 10
//! fsync = true
//!
//! [auth]                         # optional; on in every script, compose file and manifest we ship
//! peer_key_file = "peer.key"     # members' shared keys, one per line: the first signs, all verify
//! client_key_file = "client.key" # optional: clients must sign their requests with one of these
//!
//! [chaos]                        # optional fault injection, off by default
//! drop = 0.0
//! duplicate = 0.0
//! delay_ms = 0
//! reorder = 0.0
//! seed = 0
//! ```
//!
//! # Environment overrides
//!
//! Variables named `PAXOS_<SECTION>__<KEY>` override the file; the double
//! underscore separates the levels, so `PAXOS_NODE__DATA_DIR=/var/lib/paxos`
//! sets `node.data_dir` and `PAXOS_CHAOS__DROP=0.1` sets `chaos.drop`.
//! `PAXOS_CLUSTER` sets the top-level `cluster`. Only the `[node]`, `[auth]`
//! and `[chaos]` sections can be overridden: the member lists live in the file.
//! Every other `PAXOS_*` variable without a double underscore (`PAXOS_ID`,
//! `PAXOS_LISTEN`, `PAXOS_HTTP`, `PAXOS_LOG_FORMAT`, ...) belongs to the binaries' command
//! line and is ignored here, whereas an unknown variable *with* a double
//! underscore is an error that names it, because it can only be a typo of a
//! key. An empty variable counts as unset, as shells and compose files use
//! `VAR=` to mean "no value".
//!
//! Values from the environment are strings; each is parsed as the type of its
//! key (an integer, a number or a boolean, which may also be spelled `1`/`0`,
//! `yes`/`no` or `on`/`off`), while `PAXOS_CLUSTER` and
//! `PAXOS_NODE__DATA_DIR` are taken verbatim, so that `PAXOS_CLUSTER=0123`
//! names the cluster `"0123"`.
//!
//! # Strict types
//!
//! The file is parsed and deserialized in one pass by the `toml` crate's serde
//! deserializer, which keeps TOML's own types: a string is never read as a
//! number (not even `"100"`), nor an integer as a boolean; only an integer
//! where a fractional number is expected is fine. `serde_path_to_error`
//! supplies the key path of every such error (`acceptors[2].id`), and a
//! syntax error is located by its line and column. TOML dates and times are
//! refused as a type error: no key of this file takes one.
//!
//! The environment is applied afterwards, directly onto the typed values, so
//! the file alone is checked for unknown and mistyped keys and an override
//! cannot mask a malformed key in it; the rules (ranges, duplicates, counts)
//! apply to the result, so an override may fix a value that breaks one.
//!
//! # Errors
//!
//! Every problem becomes a [`ConfigError`] whose `Display` is one line,
//! `<file>: <key>: <problem>`, e.g.
//! `deploy/local.toml: acceptors[2].id: duplicate id 3 (also acceptors[0])`,
//! so that a daemon can print it and exit non-zero.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use paxos_proto::auth::KeyRing;
use serde::Deserialize;

/// The cluster name used when the file gives none.
pub const DEFAULT_CLUSTER: &str = "paxos";

/// The longest cluster name accepted, in bytes; it travels in every datagram.
pub const MAX_CLUSTER_NAME_BYTES: usize = 64;

/// The prefix of every environment variable that this module reads.
pub const ENV_PREFIX: &str = "PAXOS_";

/// The two kinds of daemon; each numbers its members from 1 independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A proposer (which is also a learner): `paxos-proposer`.
    Proposer,
    /// An acceptor: `paxos-acceptor`.
    Acceptor,
}

impl Role {
    /// Both roles, in the order the file lists them.
    pub const ALL: [Role; 2] = [Role::Proposer, Role::Acceptor];

    /// The lower-case name: `"proposer"` or `"acceptor"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Proposer => "proposer",
            Role::Acceptor => "acceptor",
        }
    }

    /// The name of this role's member list in the file: `"proposers"` or `"acceptors"`.
    pub fn section(self) -> &'static str {
        match self {
            Role::Proposer => "proposers",
            Role::Acceptor => "acceptors",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    /// Parses `"proposer"` or `"acceptor"` (as the binaries and `paxosctl` print them).
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "proposer" => Ok(Role::Proposer),
            "acceptor" => Ok(Role::Acceptor),
            other => Err(format!("unknown role `{other}`, expected `proposer` or `acceptor`")),
        }
    }
}

/// The whole cluster file, loaded, overridden by the environment and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// The file this was loaded from, as given; errors name it.
    pub path: PathBuf,
    /// The cluster name carried by every datagram ([`DEFAULT_CLUSTER`] unless set).
    pub cluster: String,
    /// The proposers, in file order; at least one.
    pub proposers: Vec<Member>,
    /// The acceptors, in file order; an odd number of them.
    pub acceptors: Vec<Member>,
    /// The `[node]` defaults that every member inherits unless it overrides them.
    pub node: NodeSettings,
    /// The `[auth]` section, if any: where the keys are.
    pub auth: Option<AuthSettings>,
    /// The `[chaos]` fault injection settings; all off unless set.
    pub chaos: ChaosSettings,
    /// The `[log]` section: retention and client sessions.
    pub log: LogSettings,
}

/// The `[log]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Keep the newest this many decided slots; 0 keeps everything. Older
    /// ones may be deleted (whole segments at a time) on every node.
    pub retain_slots: u64,
    /// How long a client's session lasts without a request of its applied,
    /// by the log's clock, in milliseconds: within it a retried request lands
    /// at most once. At least a minute; an hour by default. Part of the first
    /// configuration the cluster decides (later changes of the file do not
    /// change a running cluster's).
    pub session_lifetime_ms: u64,
    /// The size of one segment of a node's log on disk: retention deletes
    /// whole segments, and a restart reads at most about one (after the last
    /// checkpoint, written every half segment). At least 64 KiB; 16 MiB by default.
    pub segment_bytes: u64,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings { retain_slots: 0, session_lifetime_ms: 3_600_000, segment_bytes: 16 << 20 }
    }
}

/// The smallest log segment the cluster file may set.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;

/// The shortest session lifetime the cluster file may set: a client retries
/// one request for at most half of it (docs/PROTOCOL.md), and our clients'
/// timeouts are at most 30 s by default.
pub const MIN_SESSION_LIFETIME_MS: u64 = 60_000;

/// The `[auth]` section: the key files. A relative path is relative to the
/// directory of the cluster file (the keys travel with it), unlike
/// `data_dir`, which a daemon resolves against its working directory.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The members' keys, one per line as hex: the first signs, every one verifies.
    pub peer_key_file: PathBuf,
    /// The clients' keys, in the same format; when set, a client request must be signed with one.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

/// One `[[proposers]]` or `[[acceptors]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The node's id within its role; ids start at 1 and are unique per role.
    pub id: u32,
    /// Where the node listens and its peers send to: `host:port`, kept as
    /// written (a host name is resolved by the runtime, not here).
    pub addr: String,
    /// Overrides `[node] data_dir` for this node.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Overrides `[node] heartbeat_ms` for this node.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// Overrides `[node] election_timeout_ms` for this node.
    #[serde(default)]
    pub election_timeout_ms: Option<u64>,
    /// Overrides `[node] tick_ms` for this node.
    #[serde(default)]
    pub tick_ms: Option<u64>,
    /// Overrides `[node] fsync` for this node.
    #[serde(default)]
    pub fsync: Option<bool>,
    /// Where the node serves HTTP (`GET /metrics`, `/health`, `/ready`):
    /// `host:port`, kept as written like `addr`; none by default. A daemon's
    /// `--http` (`PAXOS_HTTP`) overrides it for that one process, which is how
    /// containers bind `0.0.0.0:9100` and how a node not in the file gets one.
    /// There is no `[node]` default: on one host every node needs a port of its own.
    #[serde(default)]
    pub http: Option<String>,
}

impl Member {
    /// A member at `addr` with every setting of `[node]` (as a
    /// `[[proposers]]`/`[[acceptors]]` entry of `id` and `addr` alone).
    pub fn new(id: u32, addr: impl Into<String>) -> Member {
        Member {
            id,
            addr: addr.into(),
            data_dir: None,
            heartbeat_ms: None,
            election_timeout_ms: None,
            tick_ms: None,
            fsync: None,
            http: None,
        }
    }
}

/// The settings of one node: the `[node]` section, or a member's effective
/// settings from [`ClusterConfig::settings_for`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// The parent of every node's state directory, `<data_dir>/<role>-<id>`.
    /// A relative path is relative to the daemon's current directory, not to
    /// the cluster file, as with any command-line path.
    pub data_dir: PathBuf,
    /// How often a leader proposer tells the others it is alive.
    pub heartbeat_ms: u64,
    /// How long a proposer waits without hearing a leader before it runs for
    /// leader; more than twice `heartbeat_ms`, so one lost heartbeat is no election.
    pub election_timeout_ms: u64,
    /// The interval of the core's `tick()`; at most `heartbeat_ms`.
    pub tick_ms: u64,
    /// Whether writes are made durable (`fdatasync`) before anything depends on
    /// them; `false` is for benchmarks only.
    pub fsync: bool,
}

impl Default for NodeSettings {
    fn default() -> NodeSettings {
        NodeSettings {
            data_dir: PathBuf::from("data"),
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            tick_ms: 10,
            fsync: true,
        }
    }
}

/// The `[chaos]` section: faults that a node injects into its own outgoing
/// datagrams, for failure testing (applied by the daemons' chaos module, announced at
/// `warn` when a node starts). All off by default.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosSettings {
    /// Probability (0 to 1) that a datagram is dropped.
    pub drop: f64,
    /// Probability (0 to 1) that a datagram is sent twice.
    pub duplicate: f64,
    /// The largest extra delay of a datagram; each gets a delay drawn up to it.
    pub delay_ms: u64,
    /// Probability (0 to 1) that a datagram is held back and sent after a later one.
    pub reorder: f64,
    /// The seed of the random number generator that draws the faults.
    pub seed: u64,
}

impl ChaosSettings {
    /// Whether any fault is injected at all (the seed alone injects none).
    pub fn enabled(&self) -> bool {
        self.drop > 0.0 || self.duplicate > 0.0 || self.delay_ms > 0 || self.reorder > 0.0
    }
}

/// A problem with the cluster file or the environment that overrides it.
///
/// `Display` is one line, `<file>: <key>: <problem>` (or `<file>: <problem>`
/// when no key is to blame, e.g. a missing file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    file: String,
    key: String,
    problem: String,
}

impl ConfigError {
    fn new(file: &Path, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError { file: file.display().to_string(), key: key.into(), problem: one_line(&problem.into()) }
    }

    /// The cluster file, as it was given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The key to blame, e.g. `acceptors[2].id` or `PAXOS_NODE__BOGUS`; empty
    /// when the file as a whole is to blame.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.problem)
        }
    }
}

/// Squeezes a possibly multi-line message into one line.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("; ")
}

/// The top level of the file, as deserialized, before the environment and validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default = "default_cluster")]
    cluster: String,
    #[serde(default)]
    proposers: Vec<Member>,
    #[serde(default)]
    acceptors: Vec<Member>,
    #[serde(default)]
    node: NodeSettings,
    #[serde(default)]
    auth: Option<AuthSettings>,
    #[serde(default)]
    chaos: ChaosSettings,
    #[serde(default)]
    log: LogSettings,
}

fn default_cluster() -> String {
    DEFAULT_CLUSTER.to_owned()
}

/// Parses the text of an environment variable and sets one typed field with
/// it; on failure, says what was expected.
type EnvSetter = fn(&mut ClusterConfig, &str) -> Result<(), String>;

/// Every key the environment may set: (section, key, setter). The empty
/// section is the top level, set by `PAXOS_<KEY>`.
const ENV_KEYS: &[(&str, &str, EnvSetter)] = &[
    ("", "cluster", |c, raw| {
        c.cluster = raw.to_owned();
        Ok(())
    }),
    ("node", "data_dir", |c, raw| {
        c.node.data_dir = PathBuf::from(raw);
        Ok(())
    }),
    ("node", "heartbeat_ms", |c, raw| env_u64(raw).map(|v| c.node.heartbeat_ms = v)),
    ("node", "election_timeout_ms", |c, raw| env_u64(raw).map(|v| c.node.election_timeout_ms = v)),
    ("node", "tick_ms", |c, raw| env_u64(raw).map(|v| c.node.tick_ms = v)),
    ("node", "fsync", |c, raw| env_bool(raw).map(|v| c.node.fsync = v)),
    ("auth", "peer_key_file", |c, raw| {
        match &mut c.auth {
            Some(auth) => auth.peer_key_file = PathBuf::from(raw),
            None => c.auth = Some(AuthSettings { peer_key_file: PathBuf::from(raw), client_key_file: None }),
        }
        Ok(())
    }),
    ("auth", "client_key_file", |c, raw| {
        // Without a peer key file yet, validation asks for one (the variable
        // that sets it may come later in the environment).
        let auth = c.auth.get_or_insert_with(|| AuthSettings { peer_key_file: PathBuf::new(), client_key_file: None });
        auth.client_key_file = Some(PathBuf::from(raw));
        Ok(())
    }),
    ("chaos", "drop", |c, raw| env_f64(raw).map(|v| c.chaos.drop = v)),
    ("chaos", "duplicate", |c, raw| env_f64(raw).map(|v| c.chaos.duplicate = v)),
    ("chaos", "delay_ms", |c, raw| env_u64(raw).map(|v| c.chaos.delay_ms = v)),
    ("chaos", "reorder", |c, raw| env_f64(raw).map(|v| c.chaos.reorder = v)),
    ("chaos", "seed", |c, raw| env_u64(raw).map(|v| c.chaos.seed = v)),
    ("log", "retain_slots", |c, raw| env_u64(raw).map(|v| c.log.retain_slots = v)),
    ("log", "session_lifetime_ms", |c, raw| env_u64(raw).map(|v| c.log.session_lifetime_ms = v)),
    ("log", "segment_bytes", |c, raw| env_u64(raw).map(|v| c.log.segment_bytes = v)),
];

fn env_u64(raw: &str) -> Result<u64, String> {
    raw.trim().parse().map_err(|_| format!("expected a non-negative integer, got {raw:?}"))
}

fn env_f64(raw: &str) -> Result<f64, String> {
    raw.trim().parse().map_err(|_| format!("expected a number, got {raw:?}"))
}

fn env_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false (or 1/0, yes/no, on/off), got {raw:?}")),
    }
}

/// A key that the environment set: the dotted key (`node.data_dir`) and the
/// variable that set it, to name both when the value breaks a rule.
type EnvOrigin = (String, String);

/// Applies the variables of `env` that are config keys to `config` (see the
/// module docs for which variables count) and returns which keys they set.
fn apply_env(
    config: &mut ClusterConfig,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvOrigin>, ConfigError> {
    let mut applied = Vec::new();
    // Sorted, so that of several bad variables the same one is always reported.
    let env: BTreeMap<String, String> = env.into_iter().collect();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let (section, key) = match rest.split_once("__") {
            Some((section, key)) => (section, key),
            None if rest == "cluster" => ("", "cluster"),
            // PAXOS_ID, PAXOS_LISTEN, ...: the binaries' command line, not ours.
            None => continue,
        };
        if raw.is_empty() {
            continue;
        }
        let Some(&(_, _, set)) = ENV_KEYS.iter().find(|(s, k, _)| *s == section && *k == key) else {
            return Err(ConfigError::new(&config.path, var, unknown_variable(section, key)));
        };
        set(config, &raw).map_err(|problem| ConfigError::new(&config.path, &var, problem))?;
        let dotted = if section.is_empty() { key.to_owned() } else { format!("{section}.{key}") };
        applied.push((dotted, var));
    }
    Ok(applied)
}

/// Why a variable with a double underscore is not a key the environment may set.
fn unknown_variable(section: &str, key: &str) -> String {
    match section {
        "proposers" | "acceptors" => {
            format!("the members of [[{section}]] are set only in the file, not by the environment")
        }
        "node" | "auth" | "chaos" | "log" => {
            let known: Vec<String> = ENV_KEYS
                .iter()
                .filter(|(s, _, _)| *s == section)
                .map(|(s, k, _)| format!("{ENV_PREFIX}{s}__{k}").to_ascii_uppercase())
                .collect();
            format!("unknown key `{key}` in [{section}]; expected one of {}", known.join(", "))
        }
        _ => format!(
            "unknown configuration variable (section `{section}`); the environment can set {ENV_PREFIX}CLUSTER, {ENV_PREFIX}NODE__<KEY>, {ENV_PREFIX}AUTH__<KEY>, {ENV_PREFIX}CHAOS__<KEY> and {ENV_PREFIX}LOG__<KEY>"
        ),
    }
}

/// Parses and deserializes the file in one pass, strictly typed.
fn parse_file(file: &Path, text: &str) -> Result<RawFile, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let problem = format!("invalid TOML: {}", e.message());
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                ConfigError::new(file, format!("line {line}, column {column}"), problem)
            }
            None => ConfigError::new(file, "", problem),
        }
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| deserialize_error(file, &e))
}

/// The 1-based line and column (in characters) of a byte offset in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Turns a deserialization error into the key it is about and the problem,
/// worded for someone who wrote TOML rather than Rust.
///
/// `serde_path_to_error` gives the path of the value being deserialized; a
/// missing field is reported by its parent, so the field's own name is
/// appended to make the key name exactly what to fix.
fn deserialize_error(file: &Path, err: &serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let path = err.path().to_string();
    let message = err.inner().message();
    let field_in = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    // An unknown field may already be on the path, a missing one is not.
    let join = |field: &str| {
        if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let (key, problem) = if let Some(field) = field_in("unknown field `") {
        let expected = message.split_once(", ").map(|(_, expected)| format!("; {expected}")).unwrap_or_default();
        (join(field), format!("unknown key{expected}"))
    } else if let Some(field) = field_in("missing field `") {
        (join(field), "missing; every member needs it".to_owned())
    } else if let Some((found, _)) = message.split_once(", expected struct ") {
        // Serde names the Rust type; the operator wrote TOML.
        (path, format!("{found}, expected a table"))
    } else if let Some((found, _)) = message.split_once(", expected a sequence") {
        let list = format!("expected a list of [[{path}]] entries");
        (path, format!("{found}, {list}"))
    } else {
        (path, message.to_owned())
    };
    ConfigError::new(file, key, problem)
}

/// Names the environment variable that set `key`, if one did.
fn with_env_origin(env: &[EnvOrigin], key: &str) -> String {
    match env.iter().find(|(k, _)| k == key) {
        Some((_, var)) => format!("{key} (set by {var})"),
        None => key.to_owned(),
    }
}

impl ClusterConfig {
    /// Loads the cluster file at `path`, applies the `PAXOS_*` environment
    /// overrides of this process (see the module docs) and validates everything.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file, the key and the problem when the file
    /// cannot be read, is not valid TOML, has an unknown, missing or mistyped
    /// key or a value that breaks a rule of [`ClusterConfig::load_with_env`];
    /// or when an environment override is unknown, not Unicode or not of its
    /// key's type.
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            // Variables that are not ours may hold anything; only ours must be text.
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(value) => env.push((name.to_owned(), value)),
                Err(_) => return Err(ConfigError::new(path, name, "the value is not valid Unicode")),
            }
        }
        ClusterConfig::load_with_env(path, env)
    }

    /// Like [`ClusterConfig::load`], but with the environment given explicitly,
    /// so that tests need not touch the process environment.
    ///
    /// Rules: ids start at 1 and are unique within a role; addresses are
    /// `host:port` with a port in 1..=65535 and are unique across all nodes;
    /// there is at least one proposer and an odd number of acceptors;
    /// `heartbeat_ms` >= 1, `election_timeout_ms` > 2 * `heartbeat_ms`,
    /// 1 <= `tick_ms` <= `heartbeat_ms` for `[node]` and for every node's
    /// effective settings; chaos probabilities lie in 0..=1.
    ///
    /// # Errors
    ///
    /// As for [`ClusterConfig::load`].
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ClusterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let problem = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::InvalidData => "the file is not valid UTF-8".to_owned(),
                _ => format!("cannot read the file: {e}"),
            };
            ConfigError::new(path, "", problem)
        })?;
        let raw = parse_file(path, &text)?;
        let mut config = ClusterConfig {
            path: path.to_owned(),
            cluster: raw.cluster,
            proposers: raw.proposers,
            acceptors: raw.acceptors,
            node: raw.node,
            auth: raw.auth,
            chaos: raw.chaos,
            log: raw.log,
        };
        let applied = apply_env(&mut config, env)?;
        config.validate(&applied)?;
        Ok(config)
    }

    /// Why the file's acceptors cannot be a new cluster's first
    /// configuration: an even count, which tolerates no more failures than
    /// one fewer. Only a node that starts a cluster (its log holds no
    /// configuration yet) asks: membership changes may leave a running
    /// cluster with an even set, and a file kept up to date then names it.
    pub fn even_genesis(&self) -> Option<ConfigError> {
        let n = self.acceptors.len();
        n.is_multiple_of(2).then(|| {
            ConfigError::new(
                &self.path,
                "acceptors",
                format!(
                    "{n} acceptors: an even acceptor count tolerates no more failures than one fewer; use an odd \
                     count to start a cluster (a node whose log holds a configuration, or that the file does not name, \
                     takes the log's members)"
                ),
            )
        })
    }

    /// The members of one role, in file order.
    pub fn members(&self, role: Role) -> &[Member] {
        match role {
            Role::Proposer => &self.proposers,
            Role::Acceptor => &self.acceptors,
        }
    }

    /// The member of `role` with `id`, if there is one.
    pub fn member(&self, role: Role, id: u32) -> Option<&Member> {
        self.members(role).iter().find(|m| m.id == id)
    }

    /// The HTTP address that the file gives node `id` of `role`, with the key
    /// that sets it (`acceptors[2].http`, for error messages); `None` when the
    /// node has no `http` key or is not in the file.
    pub fn http_for(&self, role: Role, id: u32) -> Option<(String, &str)> {
        let (index, member) = self.members(role).iter().enumerate().find(|(_, m)| m.id == id)?;
        let addr = member.http.as_deref()?;
        Some((format!("{}[{index}].http", role.section()), addr))
    }

    /// The effective settings of one node: the `[node]` defaults, overridden
    /// by that member's own keys.
    ///
    /// # Errors
    ///
    /// When no member of `role` has `id`.
    pub fn settings_for(&self, role: Role, id: u32) -> Result<NodeSettings, ConfigError> {
        let member = self.member(role, id).ok_or_else(|| self.no_such_member(role, id))?;
        Ok(self.effective(member))
    }

    /// The settings of node `id` of `role`: its effective settings as a
    /// member, or the `[node]` defaults for a node the file does not name (one
    /// to be added to the cluster, which starts with `--listen`).
    pub fn node_settings(&self, role: Role, id: u32) -> NodeSettings {
        self.member(role, id).map_or_else(|| self.node.clone(), |m| self.effective(m))
    }

    /// The configuration the cluster starts with (epoch 0): the members of
    /// the file, none of them pinned to an incarnation yet.
    pub fn genesis(&self) -> paxos_proto::Config {
        let member =
            |m: &Member| paxos_proto::Member { id: paxos_proto::NodeId(m.id), addr: m.addr.clone(), incarnation: None };
        paxos_proto::Config {
            epoch: 0,
            acceptors: self.acceptors.iter().map(member).collect(),
            proposers: self.proposers.iter().map(member).collect(),
            session_lifetime_ms: self.log.session_lifetime_ms,
        }
    }

    /// The state directory of one node, `<data_dir>/<role>-<id>`, e.g.
    /// `data/acceptor-3`. A relative `data_dir` stays relative and so is
    /// resolved against the daemon's current directory.
    ///
    /// # Errors
    ///
    /// When no member of `role` has `id`.
    pub fn data_dir_for(&self, role: Role, id: u32) -> Result<PathBuf, ConfigError> {
        let settings = self.settings_for(role, id)?;
        Ok(settings.data_dir.join(format!("{role}-{id}")))
    }

    /// The peer keys of `[auth]`, read from their file; `None` without `[auth]`.
    ///
    /// # Errors
    /// One line naming the cluster file, the key and what is wrong with the key file.
    pub fn peer_keys(&self) -> Result<Option<KeyRing>, ConfigError> {
        match &self.auth {
            Some(auth) => self.key_ring("auth.peer_key_file", &auth.peer_key_file).map(Some),
            None => Ok(None),
        }
    }

    /// The client keys of `[auth]`, read from their file; `None` when there are none.
    ///
    /// # Errors
    /// One line naming the cluster file, the key and what is wrong with the key file.
    pub fn client_keys(&self) -> Result<Option<KeyRing>, ConfigError> {
        match self.auth.as_ref().and_then(|a| a.client_key_file.as_ref()) {
            Some(path) => self.key_ring("auth.client_key_file", path).map(Some),
            None => Ok(None),
        }
    }

    /// The key files of `[auth]` that any user may read (or the group
    /// write), with their permission bits: a key is a secret. A group may
    /// read it (Kubernetes mounts a Secret for the pod's `fsGroup`).
    #[cfg(unix)]
    pub fn exposed_key_files(&self) -> Vec<(PathBuf, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let Some(auth) = &self.auth else { return Vec::new() };
        std::iter::once(&auth.peer_key_file)
            .chain(&auth.client_key_file)
            .map(|file| self.key_path(file))
            .filter_map(|path| {
                let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
                (mode & 0o027 != 0).then_some((path, mode))
            })
            .collect()
    }

    /// Elsewhere, file modes say nothing of who may read a file.
    #[cfg(not(unix))]
    pub fn exposed_key_files(&self) -> Vec<(PathBuf, u32)> {
        Vec::new()
    }

    /// Where a key file named in the cluster file is: relative to the cluster file's directory.
    pub fn key_path(&self, file: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_owned(),
        }
    }

    fn key_ring(&self, key: &str, file: &Path) -> Result<KeyRing, ConfigError> {
        let path = self.key_path(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(&self.path, key, format!("cannot read the key file {}: {e}", path.display()))
        })?;
        KeyRing::parse(&text).map_err(|e| ConfigError::new(&self.path, key, format!("{}: {e}", path.display())))
    }

    /// The number of acceptors that makes a majority: floor(acceptors / 2) + 1.
    pub fn quorum(&self) -> usize {
        self.acceptors.len() / 2 + 1
    }

    fn no_such_member(&self, role: Role, id: u32) -> ConfigError {
        let ids: Vec<String> = self.members(role).iter().map(|m| m.id.to_string()).collect();
        ConfigError::new(
            &self.path,
            role.section(),
            format!("no {role} with id {id} (the file has {}: {})", role.section(), ids.join(", ")),
        )
    }

    fn effective(&self, member: &Member) -> NodeSettings {
        let node = &self.node;
        NodeSettings {
            data_dir: member.data_dir.clone().unwrap_or_else(|| node.data_dir.clone()),
            heartbeat_ms: member.heartbeat_ms.unwrap_or(node.heartbeat_ms),
            election_timeout_ms: member.election_timeout_ms.unwrap_or(node.election_timeout_ms),
            tick_ms: member.tick_ms.unwrap_or(node.tick_ms),
            fsync: member.fsync.unwrap_or(node.fsync),
        }
    }

    fn validate(&self, env: &[EnvOrigin]) -> Result<(), ConfigError> {
        let err = |key: &str, problem: String| ConfigError::new(&self.path, with_env_origin(env, key), problem);

        validate_cluster_name(&self.cluster).map_err(|p| err("cluster", p))?;

        // Ids per role, addresses across all nodes, by their normalized form
        // (`localhost` as the loopback addresses it names, see
        // `collision_keys`); HTTP addresses likewise among themselves (TCP
        // does not collide with UDP).
        let mut addrs: HashMap<String, String> = HashMap::new();
        let mut https: HashMap<String, String> = HashMap::new();
        for role in Role::ALL {
            let section = role.section();
            let mut ids: HashMap<u32, usize> = HashMap::new();
            for (i, m) in self.members(role).iter().enumerate() {
                let here = format!("{section}[{i}]");
                if m.id == 0 {
                    return Err(err(&format!("{here}.id"), "id 0 is invalid; ids start at 1".to_owned()));
                }
                if let Some(first) = ids.insert(m.id, i) {
                    return Err(err(&format!("{here}.id"), format!("duplicate id {} (also {section}[{first}])", m.id)));
                }
                let normalized = parse_addr(&m.addr).map_err(|p| err(&format!("{here}.addr"), p))?;
                if let Some(first) = first_with(&mut addrs, &normalized, &here) {
                    return Err(err(&format!("{here}.addr"), format!("duplicate address {} (also {first})", m.addr)));
                }
                if let Some(http) = &m.http {
                    let key = format!("{here}.http");
                    let normalized = parse_addr(http).map_err(|p| err(&key, p))?;
                    if let Some(first) = first_with(&mut https, &normalized, &key) {
                        return Err(err(&key, format!("duplicate HTTP address {http} (also {first})")));
                    }
                }
            }
        }

        if self.proposers.is_empty() {
            return Err(err("proposers", "no proposers; add at least one [[proposers]] entry".to_owned()));
        }
        if self.log.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(err(
                "log.segment_bytes",
                format!("must be at least {MIN_SEGMENT_BYTES} (64 KiB), got {}", self.log.segment_bytes),
            ));
        }
        if self.log.session_lifetime_ms < MIN_SESSION_LIFETIME_MS {
            return Err(err(
                "log.session_lifetime_ms",
                format!("must be at least {MIN_SESSION_LIFETIME_MS} (a minute), got {}", self.log.session_lifetime_ms),
            ));
        }
        if self.acceptors.is_empty() {
            return Err(err(
                "acceptors",
                "no acceptors; add an odd number of [[acceptors]] entries (1, 3, 5, ...)".to_owned(),
            ));
        }

        // The defaults themselves, then what each node ends up with: a member
        // may override one timing key so that it no longer fits the others.
        let node_keys = SettingKeys::all("node");
        validate_settings(&self.node, &node_keys).map_err(|(k, p)| err(&k, p))?;
        for role in Role::ALL {
            for (i, m) in self.members(role).iter().enumerate() {
                let keys = SettingKeys::for_member(&format!("{}[{i}]", role.section()), m);
                validate_settings(&self.effective(m), &keys).map_err(|(k, p)| err(&k, p))?;
            }
        }

        if let Some(auth) = &self.auth {
            if auth.peer_key_file.as_os_str().is_empty() {
                return Err(err(
                    "auth.peer_key_file",
                    "missing: [auth] needs the members' key file (paxosctl keygen makes a key)".to_owned(),
                ));
            }
        }

        let chaos = &self.chaos;
        for (key, p) in
            [("chaos.drop", chaos.drop), ("chaos.duplicate", chaos.duplicate), ("chaos.reorder", chaos.reorder)]
        {
            if !p.is_finite() {
                return Err(err(key, "nan and inf are not allowed here; expected a probability in 0..=1".to_owned()));
            }
            if !(0.0..=1.0).contains(&p) {
                return Err(err(key, format!("{p} is not a probability in 0..=1")));
            }
        }
        Ok(())
    }
}

/// The key that each effective setting comes from, for error messages.
struct SettingKeys {
    data_dir: String,
    heartbeat_ms: String,
    election_timeout_ms: String,
    tick_ms: String,
}

impl SettingKeys {
    fn all(section: &str) -> SettingKeys {
        SettingKeys {
            data_dir: format!("{section}.data_dir"),
            heartbeat_ms: format!("{section}.heartbeat_ms"),
            election_timeout_ms: format!("{section}.election_timeout_ms"),
            tick_ms: format!("{section}.tick_ms"),
        }
    }

    fn for_member(here: &str, m: &Member) -> SettingKeys {
        let pick = |own: bool, key: &str| {
            if own {
                format!("{here}.{key}")
            } else {
                format!("node.{key}")
            }
        };
        SettingKeys {
            data_dir: pick(m.data_dir.is_some(), "data_dir"),
            heartbeat_ms: pick(m.heartbeat_ms.is_some(), "heartbeat_ms"),
            election_timeout_ms: pick(m.election_timeout_ms.is_some(), "election_timeout_ms"),
            tick_ms: pick(m.tick_ms.is_some(), "tick_ms"),
        }
    }
}

/// Checks one node's settings; on failure gives the key to blame and the problem.
///
/// Of two keys that break a rule together, the one a member set itself is
/// blamed, since it is what makes this node differ from the `[node]` defaults
/// that already passed.
fn validate_settings(s: &NodeSettings, keys: &SettingKeys) -> Result<(), (String, String)> {
    let own = |key: &String| !key.starts_with("node.");
    if s.data_dir.as_os_str().is_empty() {
        return Err((keys.data_dir.clone(), "must not be empty".to_owned()));
    }
    if s.heartbeat_ms == 0 {
        return Err((keys.heartbeat_ms.clone(), "must be at least 1".to_owned()));
    }
    if s.election_timeout_ms <= s.heartbeat_ms.saturating_mul(2) {
        let key = if own(&keys.heartbeat_ms) && !own(&keys.election_timeout_ms) {
            &keys.heartbeat_ms
        } else {
            &keys.election_timeout_ms
        };
        return Err((
            key.clone(),
            format!(
                "election_timeout_ms ({}) must be greater than 2 * heartbeat_ms ({}), so that one lost heartbeat does not start an election",
                s.election_timeout_ms, s.heartbeat_ms
            ),
        ));
    }
    if s.tick_ms == 0 {
        return Err((keys.tick_ms.clone(), "must be at least 1".to_owned()));
    }
    if s.tick_ms > s.heartbeat_ms {
        let key = if own(&keys.heartbeat_ms) && !own(&keys.tick_ms) { &keys.heartbeat_ms } else { &keys.tick_ms };
        return Err((
            key.clone(),
            format!(
                "tick_ms ({}) must not exceed heartbeat_ms ({}): the core acts only on ticks",
                s.tick_ms, s.heartbeat_ms
            ),
        ));
    }
    Ok(())
}

fn validate_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.len() > MAX_CLUSTER_NAME_BYTES {
        return Err(format!("{} bytes is longer than the limit of {MAX_CLUSTER_NAME_BYTES}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("{name:?} contains {c:?}; use letters, digits, `-`, `_` and `.` only"));
    }
    Ok(())
}

/// Checks that `addr` is `host:port` and returns its normalized form
/// (lower-case host, port without leading zeros), so that two spellings of one
/// address count as duplicates. An IPv6 host is written in brackets,
/// `[::1]:7101`. Host names are not resolved.
///
/// # Errors
///
/// A one-line description of what is wrong with `addr`.
pub fn parse_addr(addr: &str) -> Result<String, String> {
    const EXAMPLE: &str = "e.g. 127.0.0.1:7101, acceptor-1:7101 or [::1]:7101";
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) =
            rest.split_once("]:").ok_or_else(|| format!("{addr:?} is not of the form [ipv6]:port ({EXAMPLE})"))?;
        let ip = host.parse::<Ipv6Addr>().map_err(|_| format!("{host:?} in {addr:?} is not an IPv6 address"))?;
        (format!("[{ip}]"), port)
    } else {
        let (host, port) =
            addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} is not of the form host:port ({EXAMPLE})"))?;
        if host.contains(':') {
            return Err(format!("{addr:?}: an IPv6 host must be written in brackets ({EXAMPLE})"));
        }
        if host.is_empty() {
            return Err(format!("{addr:?} has no host ({EXAMPLE})"));
        }
        if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
            return Err(format!("{addr:?}: the host contains {c:?} ({EXAMPLE})"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port: u16 = match port.parse() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(format!("{addr:?}: the port {port:?} is not a number in 1..=65535")),
    };
    Ok(format!("{host}:{port}"))
}

/// Whether two addresses of the form [`parse_addr`] takes may name one
/// socket: the same normalized form, or `localhost` and a loopback address
/// it may resolve to (`127.0.0.1` or `[::1]`) on the same port. Other host
/// names are not resolved; malformed addresses are never the same.
pub fn same_address(a: &str, b: &str) -> bool {
    match (parse_addr(a), parse_addr(b)) {
        (Ok(a), Ok(b)) => collision_keys(&a).iter().any(|k| collision_keys(&b).contains(k)),
        _ => false,
    }
}

/// The keys under which a normalized address may collide with another:
/// itself, and for `localhost` each loopback address it may resolve to
/// (host names are otherwise not resolved when the file is read).
fn collision_keys(normalized: &str) -> Vec<String> {
    match normalized.strip_prefix("localhost:") {
        Some(port) => vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")],
        None => vec![normalized.to_owned()],
    }
}

/// Records `normalized` for `here` in `seen` under each of its collision
/// keys; returns the entry that had one of them first, if any.
fn first_with(seen: &mut HashMap<String, String>, normalized: &str, here: &str) -> Option<String> {
    let keys = collision_keys(normalized);
    if let Some(first) = keys.iter().find_map(|k| seen.get(k)) {
        return Some(first.clone());
    }
    for k in keys {
        seen.insert(k, here.to_owned());
    }
    None
}

/// The first paragraph of a rendered clap error on one line, with a pointer
/// to `--help`, as every mistake of the command line is reported (the
/// daemons' and `paxosctl`'s): `error: unexpected argument '--x'
/// found\n\nUsage: ...` becomes `unexpected argument '--x' found (see paxosctl --help)`.
pub fn one_line_clap_error(rendered: &str, bin: &str) -> String {
    let paragraph: Vec<&str> =
        rendered.lines().map(str::trim).take_while(|l| !l.is_empty()).filter(|l| !l.starts_with("tip:")).collect();
    let text = paragraph.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see {bin} --help)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let text = "ab\nçd\nxy";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // After the two-byte `ç`: the third byte of line 2 is its second character.
        assert_eq!(line_column(text, 5), (2, 2));
        // Inside `ç`: rounded down to its start rather than panicking.
        assert_eq!(line_column(text, 4), (2, 1));
        assert_eq!(line_column(text, 999), (3, 3));
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<ClusterConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, text).expect("write the cluster file");
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        ClusterConfig::load_with_env(&path, env)
    }

    const HTTP: &str = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
http = "127.0.0.1:9001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;

    /// A member's `http` is its own; a member without one, or a node the file
    /// does not name, has none.
    #[test]
    fn http_is_a_per_member_key() {
        let c = load(HTTP, &[]).expect("valid");
        assert_eq!(c.http_for(Role::Proposer, 1), Some(("proposers[0].http".to_owned(), "127.0.0.1:9001")));
        assert_eq!(c.http_for(Role::Acceptor, 1), None);
        assert_eq!(c.http_for(Role::Acceptor, 9), None);
    }

    /// `PAXOS_HTTP` names one process's HTTP address: the daemon's command line
    /// reads it (as `PAXOS_LISTEN`), so the cluster file's loader leaves it
    /// alone, and there is no `[node] http` for `PAXOS_NODE__HTTP` to set.
    #[test]
    fn paxos_http_belongs_to_the_daemon_not_to_the_file() {
        let c = load(HTTP, &[("PAXOS_HTTP", "0.0.0.0:9100")]).expect("PAXOS_HTTP is not a config key");
        assert_eq!(c.http_for(Role::Proposer, 1).map(|(_, a)| a.to_owned()), Some("127.0.0.1:9001".to_owned()));
        let e = load(HTTP, &[("PAXOS_NODE__HTTP", "0.0.0.0:9100")]).expect_err("no [node] http");
        assert_eq!(e.key(), "PAXOS_NODE__HTTP");
        let e = load(&format!("{HTTP}[node]\nhttp = \"0.0.0.0:9100\"\n"), &[]).expect_err("no [node] http");
        assert_eq!(e.key(), "node.http");
    }

    /// An `http` that is not `host:port`, or one that another member uses too,
    /// is refused with the key that sets it.
    #[test]
    fn http_must_be_host_port_and_unique() {
        let bad = HTTP.replace("127.0.0.1:9001", "9001");
        let e = load(&bad, &[]).expect_err("not host:port");
        assert_eq!(e.key(), "proposers[0].http");
        assert!(e.problem().contains("host:port"), "{e}");

        let typed = HTTP.replace("\"127.0.0.1:9001\"", "9001");
        assert_eq!(load(&typed, &[]).expect_err("not a string").key(), "proposers[0].http");

        let twice = format!("{HTTP}[[acceptors]]\nid = 2\naddr = \"127.0.0.1:7102\"\nhttp = \"127.0.0.1:09001\"\n[[acceptors]]\nid = 3\naddr = \"127.0.0.1:7103\"\n");
        let e = load(&twice, &[]).expect_err("duplicate");
        assert_eq!(e.key(), "acceptors[1].http");
        assert!(e.problem().contains("also proposers[0].http"), "{e}");

        // TCP and UDP ports do not collide: a node may serve HTTP on its own UDP port number.
        let same_port = HTTP.replace("127.0.0.1:9001", "127.0.0.1:7001");
        load(&same_port, &[]).expect("http on the port number of a UDP addr");
    }

    #[test]
    fn one_line_joins_the_lines_of_a_message() {
        assert_eq!(one_line("a\n  b  \r\n\nc"), "a; b; c");
        assert_eq!(one_line("plain"), "plain");
    }
}
