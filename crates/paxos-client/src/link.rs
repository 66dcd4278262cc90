//! One socket to one cluster, as [`crate::Client`] and [`crate::MultiClient`]
//! both use it: the members and where they are, the proposer believed to
//! lead, and the timings of retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use paxos_proto::auth::{self, KeyRing, Signer};
use paxos_proto::{decode_bundle, Config, Envelope, Message, Node, NodeId};
use tokio::net::UdpSocket;

use crate::config::ClusterConfig;
use crate::net::{client_socket, resolve_member};

/// How long one attempt waits for an answer before the request is sent again
/// (to the next proposer, for a proposal), by default.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(500);

/// How long a request may take in all, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings both clients expose, as methods of a type with a `link: Link`
/// field: written once here rather than once per client.
macro_rules! link_settings {
    () => {
        /// Makes `leader` the proposer proposals go to first, e.g. the leader
        /// a status request found, so that many new clients do not all start
        /// with a redirect. A node that is not a proposer of the cluster file
        /// is ignored.
        pub fn set_leader_hint(&mut self, leader: paxos_proto::NodeId) {
            self.link.set_leader_hint(leader);
        }

        /// Sets how long one attempt waits before the request is sent again
        /// (a proposal: to the next proposer).
        pub fn set_retry(&mut self, retry: std::time::Duration) {
            self.link.set_retry(retry);
        }

        /// Sets how long one request may take in all.
        pub fn set_timeout(&mut self, timeout: std::time::Duration) {
            self.link.timeout = timeout;
        }
    };
}
pub(crate) use link_settings;

/// One socket to the members of one cluster.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) socket: UdpSocket,
    /// The cluster's name, carried by every envelope.
    pub(crate) cluster: String,
    /// Every member's `host:port` as the cluster file writes it.
    members: HashMap<Node, String>,
    /// Where each member was found last; forgotten when it falls silent.
    resolved: HashMap<Node, SocketAddr>,
    /// The socket is IPv6 (so IPv4 members are reached as mapped addresses).
    v6: bool,
    /// The proposers, in file order.
    pub(crate) proposers: Vec<NodeId>,
    /// The proposer believed to lead: where proposals go first.
    pub(crate) target: NodeId,
    /// How long one attempt waits before the request is sent again.
    pub(crate) retry: Duration,
    /// How long one request may take in all.
    pub(crate) timeout: Duration,
    /// The client keys of `[auth]`: requests are signed with them and
    /// answers must be; `None` when the cluster has none.
    keys: Option<KeyRing>,
    /// The peer keys of `[auth]`: an operator's requests (membership,
    /// restore) are signed with them; `None` when the cluster has none.
    peer_keys: Option<KeyRing>,
    /// The cookie each node gave this socket's address (see [`paxos_proto::Cookie`]).
    cookies: HashMap<Node, String>,
    /// A datagram being signed.
    signed: Vec<u8>,
    /// A proposer an answer named as the leader that this link does not
    /// know (the log added it after the cluster file was written), and the
    /// proposer that named it: the members the log decided are to be asked
    /// of that one ([`Link::follow`]). Taken by the client that asks.
    pub(crate) unknown_leader: Option<(NodeId, Node)>,
    /// The last such proposer, whether asked for or not: a timeout names it.
    pub(crate) leader_not_in_file: Option<NodeId>,
    /// True once the members were asked for: at most once per client.
    pub(crate) listed: bool,
    /// The last leader followed on another proposer's word, and that
    /// proposer: if the leader then stays silent, it may have moved
    /// (removed and added again elsewhere), see [`Link::silent`].
    followed: Option<(NodeId, Node)>,
    /// Members that did not answer an attempt at the address this link
    /// had: only for those does the log's address replace the file's
    /// ([`Link::learn_members`]).
    silent_members: std::collections::HashSet<Node>,
    /// Every member's address as the cluster file writes it, for a member
    /// whose address from the log does not resolve here (a container's name
    /// seen from its host): it is reached where the file says.
    file_members: HashMap<Node, String>,
}

impl Link {
    /// A socket for `cluster`: on the loopback interface when every member
    /// is on it, on every interface otherwise; with the client keys of its
    /// `[auth]`, if it has some.
    pub(crate) fn new(cluster: &ClusterConfig) -> Result<Link, crate::ClientError> {
        let keys = cluster.client_keys().map_err(crate::ClientError::Keys)?;
        let peer_keys = cluster.peer_keys().map_err(crate::ClientError::Keys)?;
        let proposers = cluster.proposers.iter().map(|m| (Node::Proposer(NodeId(m.id)), m.addr.clone()));
        let members: HashMap<Node, String> =
            proposers.chain(cluster.acceptors.iter().map(|m| (Node::Acceptor(NodeId(m.id)), m.addr.clone()))).collect();
        let (socket, v6) = client_socket(members.values())?;
        let proposers: Vec<NodeId> = cluster.proposers.iter().map(|m| NodeId(m.id)).collect();
        // The seed's rule: the proposer with the highest id leads while it is up.
        let target = proposers.iter().copied().max().unwrap_or(NodeId(1));
        Ok(Link {
            socket,
            cluster: cluster.cluster.clone(),
            members: members.clone(),
            resolved: HashMap::new(),
            v6,
            proposers,
            target,
            retry: DEFAULT_RETRY,
            timeout: DEFAULT_TIMEOUT,
            keys,
            peer_keys,
            cookies: HashMap::new(),
            signed: Vec::new(),
            unknown_leader: None,
            leader_not_in_file: None,
            listed: false,
            followed: None,
            silent_members: std::collections::HashSet::new(),
            file_members: members,
        })
    }

    /// True if `node` is a member of the cluster file.
    pub(crate) fn is_member(&self, node: Node) -> bool {
        self.members.contains_key(&node)
    }

    /// The proposer to ask next when `from` answered that `leader` leads: one
    /// this link knows. One it does not know is noted
    /// ([`Link::unknown_leader`]), for the client to ask `from` the members
    /// the log decided (once), and the caller waits meanwhile.
    pub(crate) fn follow(&mut self, leader: Option<NodeId>, from: Node) -> Option<NodeId> {
        let leader = leader?;
        if self.is_member(Node::Proposer(leader)) {
            if Node::Proposer(leader) != from {
                self.followed = Some((leader, from));
            }
            return Some(leader);
        }
        self.leader_not_in_file = Some(leader);
        if !self.listed {
            self.unknown_leader = Some((leader, from));
        }
        None
    }

    /// `node` did not answer an attempt: if it is the leader another proposer
    /// named, it may have moved where the cluster file does not say, so the
    /// members the log decided are to be asked of that proposer (once), as
    /// for a leader the file does not name.
    pub(crate) fn silent(&mut self, node: Node) {
        self.silent_members.insert(node);
        if let Some((leader, from)) = self.followed.filter(|(l, _)| Node::Proposer(*l) == node) {
            if !self.listed {
                self.unknown_leader = Some((leader, from));
            }
        }
    }

    /// The error for `what`, not answered in time: it names the leader the
    /// cluster file lacks, if answers named one that is still unknown.
    pub(crate) fn timed_out(&self, what: &str) -> crate::ClientError {
        let (what, after) = (what.to_owned(), self.timeout);
        match self.leader_not_in_file.filter(|l| !self.is_member(Node::Proposer(*l))) {
            Some(leader) => crate::ClientError::LeaderNotInFile { what, after, leader },
            None => crate::ClientError::Timeout { what, after },
        }
    }

    /// Takes in the members of `config` (a member list's answer): proposers
    /// and acceptors the cluster file does not name become known, and where
    /// the log puts a member wins over the file for a member that fell
    /// silent at the file's address (it may have moved). A member that
    /// answers where the file says keeps that address: the file may name
    /// it as this host reaches it (published ports, NAT), not as the
    /// members do (compose service names).
    pub(crate) fn learn_members(&mut self, config: &Config) {
        let proposers = config.proposers.iter().map(|m| (Node::Proposer(m.id), &m.addr));
        for (node, addr) in proposers.chain(config.acceptors.iter().map(|m| (Node::Acceptor(m.id), &m.addr))) {
            let known = self.members.contains_key(&node);
            if known && !self.silent_members.contains(&node) {
                continue;
            }
            if self.members.get(&node) != Some(addr) {
                self.members.insert(node, addr.clone());
                self.resolved.remove(&node);
            }
            if let Node::Proposer(id) = node {
                if !self.proposers.contains(&id) {
                    self.proposers.push(id);
                }
            }
        }
    }

    /// Makes `leader` the proposer proposals go to first; a node that is not
    /// a proposer of the cluster file is ignored.
    pub(crate) fn set_leader_hint(&mut self, leader: NodeId) {
        if self.proposers.contains(&leader) {
            self.target = leader;
        }
    }

    /// Sets how long one attempt waits before the request is sent again.
    pub(crate) fn set_retry(&mut self, retry: Duration) {
        self.retry = retry.max(Duration::from_millis(1));
    }

    /// The proposer to try after `silent` did not answer: the next after the
    /// proposer whose word sent us to `silent`, if one did and that next is
    /// not `silent` itself, else the next after `silent`. Else two
    /// proposers, one naming the other, dead, as the leader, would send a
    /// client back and forth past the live one.
    pub(crate) fn after_silence(&self, silent: NodeId) -> NodeId {
        match self.followed {
            Some((leader, Node::Proposer(from))) if leader == silent && self.next_proposer(from) != silent => {
                self.next_proposer(from)
            }
            _ => self.next_proposer(silent),
        }
    }

    /// The proposer after `after` in file order, round and round.
    pub(crate) fn next_proposer(&self, after: NodeId) -> NodeId {
        let i = self.proposers.iter().position(|p| *p == after).unwrap_or(0);
        self.proposers[(i + 1) % self.proposers.len()]
    }

    /// `node` fell silent: it may have moved, so resolve it again next time.
    pub(crate) fn forget(&mut self, node: Node) {
        self.resolved.remove(&node);
    }

    /// Sends one datagram to `to`, signed with the client key when there is
    /// one (with the peer key, when there is one, for an operator's request
    /// or a member list: `admin`). An address that does not resolve (yet)
    /// and a failed send (an unreachable network) count as silence: the
    /// caller retries on its timer.
    pub(crate) async fn send_datagram(&mut self, to: Node, datagram: &[u8], admin: bool) {
        let keys = if admin { self.peer_keys.as_ref().or(self.keys.as_ref()) } else { self.keys.as_ref() };
        let datagram = match keys {
            Some(keys) => {
                self.signed.clear();
                self.signed.extend_from_slice(datagram);
                keys.sign(&mut self.signed);
                self.signed.as_slice()
            }
            None => datagram,
        };
        let addr = match self.resolved.get(&to) {
            Some(a) => Some(*a),
            None => self.resolve(to).await,
        };
        let Some(addr) = addr else { return };
        self.resolved.insert(to, addr);
        let _ = self.socket.send_to(datagram, addr).await;
    }

    /// Where member `to` is reached: at its address (the log's, once it
    /// moved there), or where the cluster file says when that one does not
    /// resolve here (a container's name seen from its host).
    async fn resolve(&self, to: Node) -> Option<SocketAddr> {
        let spec = self.members.get(&to)?;
        if let Some(addr) = resolve_member(spec, self.v6).await {
            return Some(addr);
        }
        let file = self.file_members.get(&to).filter(|f| *f != spec)?;
        resolve_member(file, self.v6).await
    }

    /// The envelopes of a received datagram that are for this cluster. A
    /// datagram that does not decode is no answer, and with client keys
    /// neither is one that is not signed with one (a forged answer).
    pub(crate) fn envelopes(&self, datagram: &[u8]) -> Vec<Envelope> {
        let Ok((body, signer)) = auth::open(datagram, None, self.keys.as_ref()) else { return Vec::new() };
        if self.keys.is_some() && signer != Signer::Client {
            return Vec::new();
        }
        let mut envs = decode_bundle(body).unwrap_or_default();
        envs.retain(|env| env.cluster == self.cluster);
        envs
    }

    /// `node` gave this address a cookie: requests to it carry it from now on.
    pub(crate) fn remember_cookie(&mut self, node: Node, cookie: String) {
        self.cookies.insert(node, cookie);
    }

    /// Puts the cookie `to` gave us, if any, into a request that takes one.
    pub(crate) fn with_cookie(&self, to: Node, msg: &mut Message) {
        if let Some(field) = msg.cookie_mut() {
            *field = self.cookies.get(&to).cloned();
        }
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::Member;

    use super::*;

    /// A member list moves a member of the file only once it fell silent
    /// at the file's address: one that answers there keeps it (the file may
    /// name it as this host reaches it, e.g. compose's published ports,
    /// while the log names it as the members do). Before, every member
    /// moved to the log's address, and `status` and clients on the host of a
    /// compose cluster reached no one (CI's compose run of this change).
    #[tokio::test]
    async fn a_member_list_moves_only_members_that_fell_silent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cluster.toml");
        let file =
            "[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\"\n\n[[proposers]]\nid = 2\naddr = \"127.0.0.1:7002\"\n\n\
                    [[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n";
        std::fs::write(&path, file).expect("write the cluster file");
        let mut link = Link::new(&ClusterConfig::load(&path).expect("the cluster file")).expect("a link");
        let member = |id, addr: &str| Member { id: NodeId(id), addr: addr.into(), incarnation: None };
        let config = Config {
            epoch: 1,
            acceptors: vec![member(1, "acceptor-1:7101")],
            proposers: vec![member(1, "proposer-1:7001"), member(2, "proposer-2:7002"), member(3, "proposer-3:7003")],
            session_lifetime_ms: 3_600_000,
        };
        link.silent(Node::Proposer(NodeId(2)));

        link.learn_members(&config);

        let at = |n: Node| link.members.get(&n).cloned();
        assert_eq!(at(Node::Proposer(NodeId(1))).as_deref(), Some("127.0.0.1:7001"), "answers: stays");
        assert_eq!(at(Node::Acceptor(NodeId(1))).as_deref(), Some("127.0.0.1:7101"), "answers: stays");
        assert_eq!(at(Node::Proposer(NodeId(2))).as_deref(), Some("proposer-2:7002"), "silent: moves");
        assert_eq!(at(Node::Proposer(NodeId(3))).as_deref(), Some("proposer-3:7003"), "not in the file: learned");
        assert!(link.proposers.contains(&NodeId(3)));
    }
}
