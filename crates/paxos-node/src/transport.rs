//! UDP sockets, the address book of the members, and the map of clients.
//!
//! Members are written in the cluster file as `host:port`. An IP literal is
//! parsed once; a host name (a compose service name) is resolved in the
//! background and resolved again when a send to it fails, when it is still
//! unknown, when a datagram claiming to be that member arrives from another
//! address (it may have moved), and every [`REFRESH_INTERVAL`] otherwise, so
//! that a peer that comes up later or restarts elsewhere is found.
//!
//! A datagram whose envelope claims to come from a member is believed only
//! when it comes from an address that member resolves to; clients may send
//! from anywhere, and the last address of each client id is remembered (in a
//! bounded map) so that answers can find it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use paxos_client::config::ClusterConfig;
use paxos_client::net::{normalize, resolve};
use paxos_core::FastMap;
use paxos_proto::{ClientId, Node, NodeId};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Host names are resolved again at least this often.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// A host name is resolved at most this often on demand.
pub const RESOLVE_BACKOFF: Duration = Duration::from_secs(1);

/// The most client addresses remembered; the oldest half is forgotten beyond.
pub const MAX_CLIENTS: usize = 65_536;

/// The outcome of one background resolution, for [`AddressBook::resolved`].
#[derive(Debug)]
pub struct Resolved {
    node: Node,
    result: io::Result<Vec<SocketAddr>>,
}

#[derive(Debug)]
struct Entry {
    /// `host:port` as written in the cluster file or in the configuration
    /// the log decided.
    spec: String,
    /// `spec` is the cluster file's, not yet checked against the log's.
    from_file: bool,
    /// An IP literal: never needs resolving.
    literal: bool,
    addrs: Vec<SocketAddr>,
    resolving: bool,
    last_attempt: Option<Instant>,
}

/// Where every member of the cluster is.
#[derive(Debug)]
pub struct AddressBook {
    entries: HashMap<Node, Entry>,
    /// The local socket is IPv6 (so it can reach IPv6 and, mapped, IPv4).
    v6: bool,
    tx: mpsc::UnboundedSender<Resolved>,
}

impl AddressBook {
    /// The book of every member of `cluster`, for a socket bound at `local`.
    /// Host names start resolving in the background at once; their results
    /// arrive on the returned receiver and go to [`AddressBook::resolved`].
    /// Must be called within a tokio runtime when the file has host names.
    pub fn new(cluster: &ClusterConfig, local: SocketAddr) -> (AddressBook, mpsc::UnboundedReceiver<Resolved>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut entries = HashMap::new();
        let members = cluster
            .proposers
            .iter()
            .map(|m| (Node::Proposer(NodeId(m.id)), m))
            .chain(cluster.acceptors.iter().map(|m| (Node::Acceptor(NodeId(m.id)), m)));
        for (node, m) in members {
            let literal = m.addr.parse::<SocketAddr>().ok().map(normalize);
            entries.insert(
                node,
                Entry {
                    spec: m.addr.clone(),
                    from_file: true,
                    literal: literal.is_some(),
                    addrs: literal.into_iter().collect(),
                    resolving: false,
                    last_attempt: None,
                },
            );
        }
        let mut book = AddressBook { entries, v6: local.is_ipv6(), tx };
        let names: Vec<Node> = book.entries.iter().filter(|(_, e)| !e.literal).map(|(n, _)| *n).collect();
        for node in names {
            book.request_resolve(node, Instant::now());
        }
        (book, rx)
    }

    /// Sets where member `node` listens (`host:port`): a member of a
    /// configuration the log decided, or a node being added. An address that
    /// changed replaces the old one.
    ///
    /// Returns the cluster file's address for `node` when the log's is
    /// another (once per member): the file is only the first configuration,
    /// so the log's wins, and the operator should hear of it.
    pub fn set_member(&mut self, node: Node, spec: &str) -> Option<String> {
        let from_file = self.file_addr_unless(node, spec);
        if self.entries.get(&node).is_some_and(|e| e.spec == spec) {
            return None;
        }
        let literal = spec.parse::<SocketAddr>().ok().map(normalize);
        info!(peer = %node, addr = %spec, "a member's address");
        self.entries.insert(
            node,
            Entry {
                spec: spec.to_owned(),
                from_file: false,
                literal: literal.is_some(),
                addrs: literal.into_iter().collect(),
                resolving: false,
                last_attempt: None,
            },
        );
        if literal.is_none() {
            self.request_resolve(node, Instant::now());
        }
        from_file
    }

    /// The cluster file's address for `node` if the log's, `spec`, is
    /// another: the first time only (afterwards the entry is the log's).
    /// Takes nothing else; [`AddressBook::set_member`] also moves the entry.
    pub fn file_addr_unless(&mut self, node: Node, spec: &str) -> Option<String> {
        let e = self.entries.get_mut(&node)?;
        let from_file = std::mem::replace(&mut e.from_file, false);
        (from_file && e.spec != spec).then(|| e.spec.clone())
    }

    /// Records `src` as the address of `node`, which we had no address for,
    /// from a datagram signed with the peer key (a member we do not know of
    /// yet: it was added after what we know of the configuration).
    pub fn learn(&mut self, node: Node, src: SocketAddr) {
        if self.entries.contains_key(&node) {
            return;
        }
        let src = normalize(src);
        info!(peer = %node, addr = %src, "a member we did not know of yet, by its signed datagram");
        self.entries.insert(
            node,
            Entry {
                spec: src.to_string(),
                from_file: false,
                literal: true,
                addrs: vec![src],
                resolving: false,
                last_attempt: None,
            },
        );
    }

    /// True if `node` is a member of the cluster.
    pub fn is_member(&self, node: Node) -> bool {
        self.entries.contains_key(&node)
    }

    /// The address to send to `node`, if known. An unknown address of a
    /// member starts a resolution.
    pub fn addr_of(&mut self, node: Node) -> Option<SocketAddr> {
        let entry = self.entries.get(&node)?;
        let addr = entry.addrs.iter().find(|a| a.is_ipv4() || self.v6).map(|a| match (a, self.v6) {
            (SocketAddr::V4(v4), true) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
            _ => *a,
        });
        if addr.is_none() {
            self.request_resolve(node, Instant::now());
        }
        addr
    }

    /// True if a datagram from `src` may claim to come from the member `claimed`.
    /// A mismatch for a host name starts a resolution: the member may have moved.
    pub fn verify(&mut self, claimed: Node, src: SocketAddr) -> bool {
        let src = normalize(src);
        let Some(entry) = self.entries.get(&claimed) else { return false };
        if entry.addrs.contains(&src) {
            return true;
        }
        self.request_resolve(claimed, Instant::now());
        false
    }

    /// A send to `node` failed: resolve it again.
    pub fn send_failed(&mut self, node: Node) {
        self.request_resolve(node, Instant::now());
    }

    /// Resolves host names again that were last resolved [`REFRESH_INTERVAL`] ago.
    pub fn refresh(&mut self, now: Instant) {
        let due: Vec<Node> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.literal && e.last_attempt.is_none_or(|t| now.duration_since(t) >= REFRESH_INTERVAL))
            .map(|(n, _)| *n)
            .collect();
        for node in due {
            self.request_resolve(node, now);
        }
    }

    /// Takes in the result of a background resolution.
    pub fn resolved(&mut self, r: Resolved) {
        let Some(entry) = self.entries.get_mut(&r.node) else { return };
        entry.resolving = false;
        match r.result {
            Ok(addrs) => {
                if addrs != entry.addrs {
                    info!(peer = %r.node, addr = %entry.spec, resolved = ?addrs, "resolved peer address");
                    entry.addrs = addrs;
                }
            }
            Err(e) => {
                // Keep the last known addresses: a DNS hiccup is no reason to stop talking.
                debug!(peer = %r.node, addr = %entry.spec, error = %e, "cannot resolve peer address yet");
            }
        }
    }

    fn request_resolve(&mut self, node: Node, now: Instant) {
        let Some(entry) = self.entries.get_mut(&node) else { return };
        if entry.literal
            || entry.resolving
            || entry.last_attempt.is_some_and(|t| now.duration_since(t) < RESOLVE_BACKOFF)
        {
            return;
        }
        entry.resolving = true;
        entry.last_attempt = Some(now);
        let spec = entry.spec.clone();
        let tx = self.tx.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let result = resolve(&spec).await;
                    let _ = tx.send(Resolved { node, result });
                });
            }
            Err(_) => {
                entry.resolving = false;
                warn!(peer = %node, "no runtime to resolve the peer address in");
            }
        }
    }
}

/// The last address each client sent from, for at most [`MAX_CLIENTS`] clients.
#[derive(Debug, Default)]
pub struct ClientAddrs {
    map: FastMap<ClientId, (SocketAddr, u64)>,
    clock: u64,
    cap: usize,
}

impl ClientAddrs {
    /// An empty map that remembers at most `cap` clients (at least 2).
    pub fn new(cap: usize) -> ClientAddrs {
        ClientAddrs { map: FastMap::default(), clock: 0, cap: cap.max(2) }
    }

    /// Client `id` sent from `addr`.
    pub fn seen(&mut self, id: ClientId, addr: SocketAddr) {
        self.clock += 1;
        self.map.insert(id, (addr, self.clock));
        if self.map.len() > self.cap {
            // Forget the older half: amortized O(1) per insert.
            let mut stamps: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
            let mid = stamps.len() / 2;
            let (_, cut, _) = stamps.select_nth_unstable(mid);
            let cut = *cut;
            self.map.retain(|_, (_, t)| *t >= cut);
        }
    }

    /// Where client `id` last sent from.
    pub fn get(&self, id: ClientId) -> Option<SocketAddr> {
        self.map.get(&id).map(|(a, _)| *a)
    }

    /// The number of clients remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_map_stays_bounded_and_keeps_the_newest() {
        let mut c = ClientAddrs::new(10);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for i in 0..1000 {
            c.seen(ClientId(i), addr);
            assert!(c.len() <= 10);
        }
        assert!(c.get(ClientId(999)).is_some(), "the newest client is kept");
        assert!(c.get(ClientId(0)).is_none(), "the oldest is forgotten");
    }

    fn file(acceptor_1: &str) -> ClusterConfig {
        let toml = format!(
            "[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\"\n\
             [[acceptors]]\nid = 1\naddr = \"{acceptor_1}\"\n\
             [[acceptors]]\nid = 2\naddr = \"127.0.0.1:7102\"\n\
             [[acceptors]]\nid = 3\naddr = \"127.0.0.1:7103\"\n"
        );
        let dir = std::env::temp_dir().join(format!("paxos-book-{}-{acceptor_1}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("cluster.toml");
        std::fs::write(&path, toml).expect("the file written");
        let config = ClusterConfig::load_with_env(&path, []).expect("a valid file");
        let _ = std::fs::remove_dir_all(&dir);
        config
    }

    #[tokio::test]
    async fn a_member_the_log_puts_elsewhere_than_the_file_is_reported_once() {
        let (mut book, _rx) = AddressBook::new(&file("127.0.0.1:7101"), "127.0.0.1:7001".parse().unwrap());
        let a1 = Node::Acceptor(NodeId(1));
        let a2 = Node::Acceptor(NodeId(2));
        assert_eq!(book.set_member(a1, "127.0.0.1:9101"), Some("127.0.0.1:7101".to_owned()));
        assert_eq!(book.addr_of(a1), Some("127.0.0.1:9101".parse().unwrap()), "the log's address wins");
        assert_eq!(book.set_member(a1, "127.0.0.1:9101"), None, "reported once");
        assert_eq!(book.set_member(a2, "127.0.0.1:7102"), None, "the same address is no news");
        assert_eq!(book.set_member(a2, "127.0.0.1:9102"), None, "a later move through the log is no disagreement");
        let a9 = Node::Acceptor(NodeId(9));
        assert_eq!(book.set_member(a9, "127.0.0.1:7109"), None, "a member the file does not name");
    }
}
