//! What a node lets in, and how it signs what it sends: the `[auth]` keys,
//! address validation by cookie, and limits on unsigned traffic.
//!
//! ```text
//!  datagram ──► budget (unsigned, this batch) ──► MAC (auth::open) ──► decode ──► per envelope:
//!               rate per source IP                 forged: dropped.auth           auth::admit (members signed)
//!                                                                                 cookie for big answers
//! ```
//!
//! - **MACs** ([`paxos_proto::auth`]): with `[auth]`, a datagram that claims
//!   to come from a member must be signed with a peer key, whatever address
//!   it comes from; a client request must be signed with a client key when
//!   the cluster has them. Members sign what they send each other with the
//!   first peer key, and their answers to clients with the first client key.
//! - **Cookies** ([`paxos_proto::Cookie`]): a request whose answer is larger
//!   than itself (a status or a log read; a member, restore or transfer
//!   request) from an unsigned client is answered
//!   only once its address proved that it receives: the first answer is a
//!   cookie, smaller than the request, which the client sends back. A cookie
//!   is a MAC of the source address, the client id and the minute, under a
//!   secret drawn at start; it is good for this minute and the next.
//! - **Limits**: unsigned datagrams (clients') are rate-limited per source IP
//!   and, per batch, capped before they are even decoded, so that a flood of
//!   forged or unsigned datagrams cannot keep a node from its members'.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use paxos_client::config::{ClusterConfig, ConfigError};
use paxos_proto::auth::{self, AuthError, KeyRing, Policy, Signer};
use paxos_proto::{ClientId, Cookie, Message, Node};

/// Unsigned datagrams handled per batch at most; the rest of the batch's
/// unsigned ones are dropped undecoded (members' datagrams are signed).
pub const UNSIGNED_PER_BATCH: usize = 512;

/// Unsigned datagrams per second one source IP may send, sustained.
pub const UNSIGNED_RATE_PER_IP: f64 = 20_000.0;

/// The burst of unsigned datagrams one source IP may send at once.
pub const UNSIGNED_BURST_PER_IP: f64 = 4_096.0;

/// Source IPs whose rate is tracked at most; the oldest half is forgotten beyond.
pub const MAX_TRACKED_SOURCES: usize = 4_096;

/// How long one cookie period lasts, in seconds; a cookie is good for the
/// period it was made in and the next one.
pub const COOKIE_PERIOD_SECS: u64 = 60;

/// Hex digits of a cookie: 128 bits.
const COOKIE_HEX_BYTES: usize = 32;

/// The keys, the cookie secret and the limits of one node.
pub struct Guard {
    peer: Option<KeyRing>,
    client: Option<KeyRing>,
    policy: Policy,
    /// The secret of this node's cookies, drawn at start.
    cookie_secret: KeyRing,
    buckets: HashMap<IpAddr, Bucket>,
    /// Unsigned datagrams taken in this batch.
    unsigned_in_batch: usize,
}

/// A token bucket of one source IP.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What the guard says of one datagram before it is decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Decode this body; its signer is as given.
    Take(&'a [u8], Signer),
    /// Drop it, counted under the given kind, for the given reason.
    Drop(&'static str, &'static str),
}

impl Guard {
    /// The guard of a node of `cluster`: its `[auth]` keys, read now.
    ///
    /// # Errors
    /// When a key file cannot be read or holds no valid key.
    pub fn new(cluster: &ClusterConfig) -> Result<Guard, ConfigError> {
        let peer = cluster.peer_keys()?;
        let client = cluster.client_keys()?;
        Ok(Guard::with_keys(peer, client))
    }

    /// A guard with these keys (tests and the simulator's adversary).
    pub fn with_keys(peer: Option<KeyRing>, client: Option<KeyRing>) -> Guard {
        let policy = Policy { peers: peer.is_some(), clients: client.is_some() };
        let secret: Vec<u8> = (0..4).flat_map(|_| paxos_client::client::random_u64().to_le_bytes()).collect();
        Guard {
            peer,
            client,
            policy,
            cookie_secret: KeyRing::from_key(&secret),
            buckets: HashMap::new(),
            unsigned_in_batch: 0,
        }
    }

    /// Whether members must sign (`[auth]` is on).
    pub fn auth_on(&self) -> bool {
        self.policy.peers
    }

    /// Whether clients must sign too.
    pub fn client_auth_on(&self) -> bool {
        self.policy.clients
    }

    /// A new batch of received datagrams begins.
    pub fn new_batch(&mut self) {
        self.unsigned_in_batch = 0;
    }

    /// Checks one received datagram's MAC and the limits on unsigned ones.
    pub fn check<'a>(&mut self, datagram: &'a [u8], src: SocketAddr, now: Instant) -> Verdict<'a> {
        let (body, signer) = match auth::open(datagram, self.peer.as_ref(), self.client.as_ref()) {
            Ok(opened) => opened,
            Err(AuthError::BadMac) => return Verdict::Drop("dropped.auth", "its MAC matches none of our keys"),
        };
        if signer == Signer::Unsigned {
            if self.auth_on() {
                // With [auth] only clients send unsigned datagrams: bound what they may cost.
                self.unsigned_in_batch += 1;
                if self.unsigned_in_batch > UNSIGNED_PER_BATCH {
                    return Verdict::Drop("dropped.flood", "too many unsigned datagrams in one batch");
                }
            }
            if !self.allow(src.ip(), now) {
                return Verdict::Drop("dropped.rate", "its source sends unsigned datagrams too fast");
            }
        }
        Verdict::Take(body, signer)
    }

    /// Whether an envelope that claims to come from `from` may be believed.
    ///
    /// # Errors
    /// Why not.
    pub fn admit(&self, from: Node, msg: &paxos_proto::Message, signer: Signer) -> Result<(), &'static str> {
        auth::admit(from, msg, signer, self.policy)
    }

    /// The answer to `msg` from client `client` at `src`, when the request
    /// must first prove its address: a request whose answer may be larger
    /// than itself ([`Message::proof`]: a status or log read, a member,
    /// restore or transfer request) from an unsigned client without a good
    /// cookie gets a cookie; `None` lets it through.
    pub fn cookie_for(&self, client: ClientId, src: SocketAddr, signer: Signer, msg: &Message) -> Option<Message> {
        let (req, cookie) = msg.proof()?;
        if signer != Signer::Unsigned {
            return None; // a key holder needs no proof of address
        }
        let period = unix_secs() / COOKIE_PERIOD_SECS;
        let good = |p: u64| cookie.is_some_and(|c| c == self.cookie(client, src, p));
        if good(period) || good(period.saturating_sub(1)) {
            return None;
        }
        Some(Message::Cookie(Cookie { req, cookie: self.cookie(client, src, period) }))
    }

    fn cookie(&self, client: ClientId, src: SocketAddr, period: u64) -> String {
        let mut input = format!("{period}/{src}/{}", client.0).into_bytes();
        self.cookie_secret.sign(&mut input);
        let mac = &input[input.len() - auth::MAC_HEX_BYTES..];
        String::from_utf8_lossy(&mac[..COOKIE_HEX_BYTES]).into_owned()
    }

    /// Signs a datagram bound for `to`: with the peer key for a member, with
    /// the client key for a client (when there are such keys).
    pub fn seal(&self, to: Node, datagram: &mut Vec<u8>) {
        let keys = match to {
            Node::Client(_) => self.client.as_ref(),
            Node::Proposer(_) | Node::Acceptor(_) => self.peer.as_ref(),
        };
        if let Some(keys) = keys {
            keys.sign(datagram);
        }
    }

    /// Takes a token from `ip`'s bucket.
    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED_SOURCES && !self.buckets.contains_key(&ip) {
            // Forget the sources heard from longest ago: amortized O(1) per insert.
            let mut ats: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            let mid = ats.len() / 2;
            let (_, cut, _) = ats.select_nth_unstable(mid);
            let cut = *cut;
            self.buckets.retain(|_, b| b.at >= cut);
        }
        let b = self.buckets.entry(ip).or_insert(Bucket { tokens: UNSIGNED_BURST_PER_IP, at: now });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * UNSIGNED_RATE_PER_IP;
        b.tokens = (b.tokens + refill).min(UNSIGNED_BURST_PER_IP);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use paxos_proto::{LogRead, MemberOp, MemberRequest, NodeId, RestoreRequest, Slot, StatusRequest, TransferRequest};

    use super::*;

    fn keys(byte: u8) -> KeyRing {
        KeyRing::from_key(&[byte; 32])
    }

    fn src() -> SocketAddr {
        "10.0.0.1:5555".parse().unwrap()
    }

    #[test]
    fn forged_and_unsigned_member_datagrams_are_refused_with_auth_on() {
        let mut g = Guard::with_keys(Some(keys(1)), None);
        let now = Instant::now();
        let mut d = b"{}".to_vec();
        keys(2).sign(&mut d);
        assert_eq!(g.check(&d, src(), now), Verdict::Drop("dropped.auth", "its MAC matches none of our keys"));
        let Verdict::Take(_, signer) = g.check(b"{}", src(), now) else { panic!("unsigned is decoded") };
        let msg = paxos_proto::Message::Probe(paxos_proto::Probe {
            nonce: 1,
            decided: paxos_proto::Slot(0),
            leading: false,
            echo: 0,
            wrote: vec![],
        });
        assert!(g.admit(Node::Acceptor(NodeId(1)), &msg, signer).is_err(), "but no member may send it");
        assert!(g.admit(Node::Client(ClientId(1)), &msg, signer).is_ok(), "a client may");
    }

    #[test]
    fn big_answers_to_unsigned_clients_need_a_cookie_of_their_address() {
        let g = Guard::with_keys(Some(keys(1)), None);
        let read = |cookie: Option<String>| {
            Message::LogRead(LogRead { req: 9, from: Slot(0), limit: 10, linearizable: false, cookie })
        };
        let Some(Message::Cookie(c)) = g.cookie_for(ClientId(5), src(), Signer::Unsigned, &read(None)) else {
            panic!("a cookie first")
        };
        assert_eq!(c.req, 9);
        assert_eq!(c.cookie.len(), COOKIE_HEX_BYTES);
        assert_eq!(g.cookie_for(ClientId(5), src(), Signer::Unsigned, &read(Some(c.cookie.clone()))), None);
        let elsewhere: SocketAddr = "10.0.0.2:5555".parse().unwrap();
        assert!(g.cookie_for(ClientId(5), elsewhere, Signer::Unsigned, &read(Some(c.cookie.clone()))).is_some());
        assert!(g.cookie_for(ClientId(6), src(), Signer::Unsigned, &read(Some(c.cookie))).is_some());
        let status = Message::StatusRequest(StatusRequest { req: 1, cookie: None });
        assert!(g.cookie_for(ClientId(5), src(), Signer::Unsigned, &status).is_some());
        assert_eq!(g.cookie_for(ClientId(5), src(), Signer::Client, &status), None, "a key holder needs none");
        let list = |cookie| {
            Message::MemberRequest(MemberRequest { req: 3, op: MemberOp::List, deadline_ms: None, epoch: None, cookie })
        };
        let Some(Message::Cookie(c)) = g.cookie_for(ClientId(5), src(), Signer::Unsigned, &list(None)) else {
            panic!("a member list's answer carries the configuration: a cookie first")
        };
        assert_eq!(g.cookie_for(ClientId(5), src(), Signer::Unsigned, &list(Some(c.cookie))), None);
        assert_eq!(g.cookie_for(ClientId(5), src(), Signer::Peer, &list(None)), None, "an operator needs none");
        let transfer = Message::TransferRequest(TransferRequest { req: 4, to: NodeId(2), cookie: None });
        let restore = Message::RestoreRequest(RestoreRequest { req: 5, from: Slot(1), entries: vec![], cookie: None });
        for (what, msg) in [("transfer", transfer), ("restore", restore)] {
            assert!(g.cookie_for(ClientId(5), src(), Signer::Unsigned, &msg).is_some(), "{what}: a cookie first");
        }
    }

    #[test]
    fn unsigned_floods_are_capped_per_batch_and_per_source() {
        let mut g = Guard::with_keys(Some(keys(1)), None);
        let now = Instant::now();
        let taken =
            (0..UNSIGNED_PER_BATCH + 10).filter(|_| matches!(g.check(b"{}", src(), now), Verdict::Take(..))).count();
        assert_eq!(taken, UNSIGNED_PER_BATCH);
        let mut signed = b"{}".to_vec();
        keys(1).sign(&mut signed);
        assert!(matches!(g.check(&signed, src(), now), Verdict::Take(_, Signer::Peer)), "members still get in");
        let mut g = Guard::with_keys(None, None);
        let burst = UNSIGNED_BURST_PER_IP as usize;
        let taken = (0..burst + 10).filter(|_| matches!(g.check(b"{}", src(), now), Verdict::Take(..))).count();
        assert_eq!(taken, burst, "one source's burst");
        let other: SocketAddr = "10.0.0.9:1".parse().unwrap();
        assert!(matches!(g.check(b"{}", other, now), Verdict::Take(..)), "another source is not held back");
    }
}
