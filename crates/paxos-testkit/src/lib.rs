//! The kit of the process tests: a cluster of the real daemons on free
//! loopback ports with a temporary data dir, children signalled and killed by
//! PID, and every child killed when the cluster is dropped (also when a test
//! panics, in which case its logs are kept and their place is printed;
//! `PAXOS_KEEP_TEST_LOGS=1` keeps them always).
//!
//! Every test binary of the workspace that starts daemons uses this one
//! crate (raft-rs keeps its harness in `harness/` the same way). The binaries
//! are the ones cargo built for this workspace and profile ([`bin`]):
//! `cargo test --workspace` (scripts/test.sh) builds them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use paxos_client::client::Client;
use paxos_client::config::ClusterConfig;
use paxos_proto::{Node, NodeId, StatusReply};
use tokio::sync::{Mutex, MutexGuard};

/// The path of the workspace binary `name` (`paxos-acceptor`, `paxos-proposer`,
/// `paxosctl`): in `PAXOS_BIN_DIR` when set, else beside the running test,
/// where cargo puts the binaries of the same target dir and profile.
///
/// # Panics
/// When it is not there, with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("PAXOS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // A test runs from <target>/<profile>/deps/<test>-<hash>.
            let exe = std::env::current_exe().expect("the path of the running test");
            exe.parent().and_then(Path::parent).expect("the test runs in <target>/<profile>/deps").to_owned()
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: `cargo test --workspace` builds every binary (or `cargo build --bins` in this profile)",
        path.display()
    );
    path
}

/// `paxos-acceptor`.
pub fn acceptor_bin() -> PathBuf {
    bin("paxos-acceptor")
}

/// `paxos-proposer`.
pub fn proposer_bin() -> PathBuf {
    bin("paxos-proposer")
}

/// `paxosctl`.
pub fn paxosctl_bin() -> PathBuf {
    bin("paxosctl")
}

/// Cluster tests run one at a time: seven daemons each on two cores are
/// enough load, and election timeouts are short. (An async mutex, as each test
/// holds it across its awaits; it needs no particular runtime.)
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Holds the machine for one cluster test.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// `n` distinct ports on 127.0.0.1, each free for both UDP and TCP when
/// picked, and below the kernel's ephemeral range.
///
/// The ports are handed back before the daemons bind them. A port in the
/// ephemeral range can meanwhile become any outgoing socket's local port (a
/// proposer's HTTP port once did, and the daemon exited with "Address already
/// in use"); below that range only an explicit bind takes it. The search starts
/// at a place drawn from the process id and the clock, so that test binaries
/// run side by side pick apart.
///
/// Within one test binary no port is handed out twice. Tests of one binary run
/// on parallel threads, and a port handed back is free again until its daemon
/// binds it: another test's search could pick it meanwhile (one test, taking
/// its node's port to see the node refuse it, once found it taken).
pub fn free_ports(n: usize) -> Vec<u16> {
    static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let first = 10_000u16.min(low / 2);
    let span = u32::from(low - first);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let start = (std::process::id().wrapping_mul(7919) ^ nanos) % span;
    let mut held = Vec::new();
    for i in 0..span {
        if held.len() == n {
            break;
        }
        let port = first + ((start + i) % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if let (Ok(udp), Ok(tcp)) = (UdpSocket::bind(("127.0.0.1", port)), TcpListener::bind(("127.0.0.1", port))) {
            held.push((port, udp, tcp));
        }
    }
    assert_eq!(held.len(), n, "{n} free ports below {low}");
    handed_out.extend(held.iter().map(|(port, _, _)| *port));
    held.into_iter().map(|(port, _, _)| port).collect()
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed: {}", std::io::Error::last_os_error());
}

/// Waits for `child` to exit, up to `timeout`.
pub async fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process {} did not exit within {timeout:?}", child.id());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    pub path: PathBuf,
    pub config: ClusterConfig,
    children: BTreeMap<Node, Child>,
    pub proposers: Vec<NodeId>,
    pub acceptors: Vec<NodeId>,
}

impl Cluster {
    /// Writes a cluster file for `proposers` and `acceptors` on free ports with
    /// short test timings, `[auth]` with a fresh peer key (as every cluster we
    /// ship has), and `extra` lines after `[node]`; starts nothing.
    pub fn new(proposers: u32, acceptors: u32, extra: &str) -> Cluster {
        Cluster::with_host(proposers, acceptors, extra, "127.0.0.1")
    }

    /// Like [`Cluster::new`] with every address written as `host:port`.
    pub fn with_host(proposers: u32, acceptors: u32, extra: &str, host: &str) -> Cluster {
        Cluster::build(proposers, acceptors, extra, host, true)
    }

    /// Like [`Cluster::new`] without `[auth]`: the nodes warn and check addresses only.
    pub fn without_auth(proposers: u32, acceptors: u32, extra: &str) -> Cluster {
        Cluster::build(proposers, acceptors, extra, "127.0.0.1", false)
    }

    fn build(proposers: u32, acceptors: u32, extra: &str, host: &str, auth: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports((proposers + acceptors) as usize);
        let mut text = String::from("cluster = \"test\"\n");
        for (i, port) in ports.iter().enumerate() {
            let i = i as u32;
            let (section, id) = if i < proposers { ("proposers", i + 1) } else { ("acceptors", i - proposers + 1) };
            writeln!(text, "[[{section}]]\nid = {id}\naddr = \"{host}:{port}\"").unwrap();
        }
        let peer_key = dir.path().join("peer.key");
        if auth {
            let key: Vec<u8> = (0..4).flat_map(|_| paxos_client::client::random_u64().to_le_bytes()).collect();
            fs::write(&peer_key, paxos_proto::auth::key_to_hex(&key) + "\n").expect("write the peer key");
            // As `paxosctl keygen` under umask 077 leaves it: the daemons warn about a key others may read.
            let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            fs::set_permissions(&peer_key, owner_only).expect("chmod the peer key");
            writeln!(text, "[auth]\npeer_key_file = \"peer.key\"").unwrap();
        }
        writeln!(
            text,
            "[node]\ndata_dir = {:?}\ntick_ms = 5\nheartbeat_ms = 50\nelection_timeout_ms = 250\n{extra}",
            dir.path().join("data").display().to_string()
        )
        .unwrap();
        let path = dir.path().join("cluster.toml");
        fs::write(&path, text).expect("write the cluster file");
        fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let config = ClusterConfig::load_with_env(&path, Vec::<(String, String)>::new()).expect("a valid cluster file");
        Cluster {
            dir: Some(dir),
            path,
            config,
            children: BTreeMap::new(),
            proposers: (1..=proposers).map(NodeId).collect(),
            acceptors: (1..=acceptors).map(NodeId).collect(),
        }
    }

    /// The members' keys, to sign datagrams as a member would (tests that forge).
    ///
    /// # Panics
    /// For a cluster without `[auth]`.
    pub fn peer_keys(&self) -> paxos_proto::auth::KeyRing {
        self.config.peer_keys().expect("the peer key file").expect("a cluster with [auth]")
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    pub fn nodes(&self) -> Vec<Node> {
        let p = self.proposers.iter().map(|id| Node::Proposer(*id));
        p.chain(self.acceptors.iter().map(|id| Node::Acceptor(*id))).collect()
    }

    pub fn log_path(&self, node: Node) -> PathBuf {
        self.dir().join("logs").join(format!("{node}.log"))
    }

    pub fn log_text(&self, node: Node) -> String {
        fs::read_to_string(self.log_path(node)).unwrap_or_default()
    }

    /// The command that starts `node`, with stderr appended to its log file.
    pub fn command(&self, node: Node) -> Command {
        let (bin, id) = match node {
            Node::Proposer(id) => (proposer_bin(), id),
            Node::Acceptor(id) => (acceptor_bin(), id),
            Node::Client(_) => panic!("clients are not daemons"),
        };
        let log = fs::OpenOptions::new().create(true).append(true).open(self.log_path(node)).expect("open log");
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&self.path).arg("--id").arg(id.0.to_string());
        cmd.env("RUST_LOG", "info").env_remove("PAXOS_LISTEN").env_remove("PAXOS_ID").env_remove("PAXOS_CONFIG");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        cmd
    }

    /// Starts `node`, which the cluster file does not name, listening at
    /// `addr` (`--listen`): a node to be added with `paxosctl member add`.
    pub fn start_listening(&mut self, node: Node, addr: &str) {
        assert!(!self.children.contains_key(&node), "{node} is already running");
        let mut cmd = self.command(node);
        cmd.arg("--listen").arg(addr);
        let child = cmd.spawn().expect("spawn a daemon");
        self.children.insert(node, child);
    }

    /// The data dir of `node`.
    pub fn data_dir(&self, node: Node) -> PathBuf {
        let (role, id) = match node {
            Node::Proposer(id) => ("proposer", id),
            Node::Acceptor(id) => ("acceptor", id),
            Node::Client(_) => panic!("clients have no data dir"),
        };
        self.config.node.data_dir.join(format!("{role}-{}", id.0))
    }

    /// A cluster file for clients that also names `extra` members (nodes
    /// added since the cluster started), so that a client can reach them.
    pub fn client_config(&self, extra: &[(Node, String)]) -> ClusterConfig {
        let mut text = fs::read_to_string(&self.path).expect("read the cluster file");
        for (node, addr) in extra {
            let (section, id) = match node {
                Node::Proposer(id) => ("proposers", id),
                Node::Acceptor(id) => ("acceptors", id),
                Node::Client(_) => panic!("clients are not members"),
            };
            text = format!("{text}\n[[{section}]]\nid = {}\naddr = \"{addr}\"\n", id.0);
        }
        let path = self.dir().join("client.toml");
        fs::write(&path, text).expect("write the client's cluster file");
        ClusterConfig::load_with_env(&path, Vec::<(String, String)>::new()).expect("a valid cluster file")
    }

    pub fn start(&mut self, node: Node) {
        self.start_with(node, |_| {});
    }

    /// Starts `node` with its command changed by `configure` first (more
    /// environment, another log format); stopped and cleaned up like any other.
    pub fn start_with(&mut self, node: Node, configure: impl FnOnce(&mut Command)) {
        assert!(!self.children.contains_key(&node), "{node} is already running");
        let mut command = self.command(node);
        configure(&mut command);
        let child = command.spawn().expect("spawn a daemon");
        self.children.insert(node, child);
    }

    pub fn start_all(&mut self) {
        for node in self.nodes() {
            self.start(node);
        }
    }

    pub fn pid(&self, node: Node) -> u32 {
        self.children.get(&node).unwrap_or_else(|| panic!("{node} is not running")).id()
    }

    pub fn signal(&self, node: Node, sig: i32) {
        signal(self.pid(node), sig);
    }

    /// SIGKILL, and wait until it is gone.
    pub async fn kill9(&mut self, node: Node) {
        let mut child = self.children.remove(&node).unwrap_or_else(|| panic!("{node} is not running"));
        signal(child.id(), libc::SIGKILL);
        wait_exit(&mut child, Duration::from_secs(5)).await;
    }

    /// SIGTERM, and the exit status.
    pub async fn terminate(&mut self, node: Node) -> ExitStatus {
        let mut child = self.children.remove(&node).unwrap_or_else(|| panic!("{node} is not running"));
        signal(child.id(), libc::SIGTERM);
        wait_exit(&mut child, Duration::from_secs(10)).await
    }

    /// SIGTERM every running node and check that each exits with 0.
    pub async fn stop_all_gracefully(&mut self) {
        let nodes: Vec<Node> = self.children.keys().copied().collect();
        for node in &nodes {
            self.signal(*node, libc::SIGTERM);
        }
        for node in nodes {
            let mut child = self.children.remove(&node).expect("running");
            let status = wait_exit(&mut child, Duration::from_secs(10)).await;
            assert_eq!(status.code(), Some(0), "{node} exits 0 on SIGTERM; log:\n{}", self.log_text(node));
        }
    }

    pub async fn client(&self) -> Client {
        let mut c = Client::new(&self.config).await.expect("client");
        c.set_retry(Duration::from_millis(200));
        c.set_timeout(Duration::from_secs(10));
        c
    }

    /// Polls until every running node answers its status and one proposer
    /// leads with every running proposer agreeing, and serves clients (the
    /// first configuration is decided). Returns the leader.
    pub async fn wait_ready(&self) -> NodeId {
        let mut client = self.client().await;
        client.set_timeout(Duration::from_millis(300));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut statuses = BTreeMap::new();
            for node in self.children.keys() {
                if let Ok(s) = client.status(*node).await {
                    statuses.insert(*node, s);
                }
            }
            if statuses.len() == self.children.len() {
                let leaders: Vec<NodeId> = statuses
                    .iter()
                    .filter(|(_, s)| s.role == "leader")
                    .filter_map(|(n, _)| match n {
                        Node::Proposer(id) => Some(*id),
                        _ => None,
                    })
                    .collect();
                if let [leader] = leaders[..] {
                    // Every proposer names the leader, and the leader serves: the
                    // first configuration (the members pinned) is decided.
                    let agreed = statuses
                        .iter()
                        .filter(|(n, _)| matches!(n, Node::Proposer(_)))
                        .all(|(_, s)| s.leader == Some(leader));
                    let serving = statuses[&Node::Proposer(leader)].epoch >= 1;
                    if agreed && serving {
                        return leader;
                    }
                }
            }
            assert!(Instant::now() < deadline, "cluster not ready in time: {statuses:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `node`'s status until `pred` holds.
    pub async fn wait_status(&self, node: Node, what: &str, pred: impl Fn(&StatusReply) -> bool) -> StatusReply {
        let mut client = self.client().await;
        client.set_timeout(Duration::from_millis(300));
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = None;
        loop {
            if let Ok(s) = client.status(node).await {
                if pred(&s) {
                    return s;
                }
                last = Some(s);
            }
            assert!(Instant::now() < deadline, "{node}: {what}: not in time; last status {last:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (node, child) in self.children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = node;
        }
        if std::thread::panicking() || std::env::var_os("PAXOS_KEEP_TEST_LOGS").is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("the cluster's files and logs are kept in {}", kept.display());
            }
        }
    }
}

/// The whole decided log of `proposer`, read page by page from slot 0.
///
/// # Panics
/// When the proposer does not answer.
pub async fn full_log(client: &mut Client, proposer: NodeId) -> Vec<paxos_proto::LogEntry> {
    client.read_log(proposer, paxos_proto::Slot(0)).await.expect("read the log")
}

/// Checks SPEC's guarantees with the one checker ([`paxos_check`]) on the
/// logs read from learners (`(whose, entries)`) and the values clients were
/// told were decided, with their instances: the logs agree and have no
/// gaps, no value is in them twice, and every acknowledged value is at its
/// instance. Values are their own keys (tests propose each value once);
/// values that were proposed but not acknowledged may be in the logs.
///
/// # Panics
/// With every violation found.
pub fn assert_guarantees(logs: &[(&str, &[paxos_proto::LogEntry])], acked: &HashMap<String, paxos_proto::Slot>) {
    use paxos_check::{check, Client as Checked, Entry, Expect, Log, Sent};
    let mut checked = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (whose, log) in logs {
        let first = log.first().map_or(0, |e| e.slot.0);
        for (i, e) in log.iter().enumerate() {
            assert_eq!(e.slot.0, first + i as u64, "the log of {whose} has a gap before instance {}", e.slot);
        }
        let entries = log
            .iter()
            .map(|e| match &e.value {
                Some(v) => {
                    seen.insert(v.clone());
                    Entry::Value(v.clone(), v.clone())
                }
                None => Entry::Noop,
            })
            .collect();
        checked.push(Log { name: (*whose).to_owned(), first, entries });
    }
    let sent = |v: &String, acked: Option<u64>| Sent {
        key: v.clone(),
        value: v.clone(),
        at: None,
        acked: acked.map(|a| (a, None)),
    };
    let mut clients = vec![Checked {
        name: "acknowledged".into(),
        sent: acked.iter().map(|(v, s)| sent(v, Some(s.0))).collect(),
        sequential: false,
    }];
    let unacked = seen.iter().filter(|v| !acked.contains_key(*v)).map(|v| sent(v, None)).collect();
    clients.push(Checked { name: "proposed, not acknowledged".into(), sent: unacked, sequential: false });
    let found = check(&checked, &clients, Expect::default());
    assert!(
        found.is_empty(),
        "guarantees broken:\n{}",
        found.iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n")
    );
}

/// Sends `payload` in one UDP datagram that claims to come from `src`, over
/// a raw socket (IPv4 only): what a forger on the same host or LAN can do.
///
/// # Errors
/// [`std::io::ErrorKind::PermissionDenied`] where raw sockets are not
/// permitted (not root, no CAP_NET_RAW); any other error of the socket.
pub fn spoof_udp(src: std::net::SocketAddrV4, dst: std::net::SocketAddrV4, payload: &[u8]) -> std::io::Result<()> {
    // SAFETY: plain system calls on a descriptor we own and close; the buffers outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // IPPROTO_RAW implies IP_HDRINCL: we write the IP header; the kernel
        // fills in its checksum, total length and id.
        let udp_len = 8 + payload.len();
        let mut packet = Vec::with_capacity(20 + udp_len);
        packet.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, libc::IPPROTO_UDP as u8, 0, 0]);
        packet.extend_from_slice(&src.ip().octets());
        packet.extend_from_slice(&dst.ip().octets());
        packet.extend_from_slice(&src.port().to_be_bytes());
        packet.extend_from_slice(&dst.port().to_be_bytes());
        packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
        packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
        packet.extend_from_slice(payload);
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: dst.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*dst.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let sent = libc::sendto(
            fd,
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&to as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if sent < 0 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::free_ports;

    /// Ports picked one at a time never repeat within a binary. Without the
    /// record of ports handed out, 1,000 searches from places drawn at random
    /// over some 20,000 ports would meet one another's ports (the birthday
    /// bound: a repeat with probability above 1 − e⁻²⁰).
    #[test]
    fn no_port_is_handed_out_twice() {
        let mut seen = BTreeSet::new();
        for _ in 0..1_000 {
            let port = free_ports(1)[0];
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }
}
