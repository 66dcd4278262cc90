//! An async client of the cluster: propose values, read logs, ask for status.
//!
//! `paxosctl` and the process tests use it, and so can any Rust program. A [`Client`] has one id
//! ([`ClientId`], random) and one request in flight at a time: the proposers
//! deduplicate by `(client, seq)` and treat a lower `seq` as stale, so
//! concurrency means several clients.
//!
//! [`Client::propose`] sends to the proposer it believes leads, follows
//! redirects, and on silence retries the *same* request (same `seq`) with the
//! next proposer, until the value is decided or the overall timeout passes.
//! A retried request lands at most once, and exactly once if it was
//! acknowledged (SPEC.md, guarantee 4).

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::Duration;

use paxos_proto::{
    encode, ClientErrorKind, ClientId, ClientPropose, Config, Envelope, LogEntry, LogRead, LogReply, MemberOp,
    MemberRequest, Message, Node, NodeId, RestoreRequest, Slot, StatusReply, StatusRequest, MAX_CLOCK_SKEW_MS,
    MAX_DATAGRAM_BYTES, MAX_VALUE_BYTES, MIN_UNPROVEN_READ_BYTES, PROTOCOL_VERSION,
};
use tokio::time::Instant;

use crate::config::ClusterConfig;
use crate::link::Link;

pub use crate::link::{DEFAULT_RETRY, DEFAULT_TIMEOUT};

/// How many times [`Client::member_from`] asks for a change, at most, when
/// the configuration keeps changing under it.
pub const MEMBER_ATTEMPTS: u32 = 5;

/// How long before the end of `timeout` a member request's deadline is: a
/// fifth of it (at most a second) for the answer to come back, plus how
/// long after the deadline a leader answers at the earliest.
fn member_margin(timeout: Duration) -> Duration {
    (timeout / 5).min(Duration::from_secs(1)) + Duration::from_millis(MAX_CLOCK_SKEW_MS)
}

/// The most entries one log read asks for.
pub const LOG_PAGE_LIMIT: u32 = 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The value is larger than [`MAX_VALUE_BYTES`]; nothing was sent.
    #[error("value of {len} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes; nothing was sent")]
    ValueTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// No answer in time.
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// What was asked.
        what: String,
        /// The overall timeout.
        after: Duration,
    },
    /// No answer in time, while proposers named as the leader one that the
    /// cluster file does not name, and the members the log decided could
    /// not be listed to find it (the proposer that named it did not answer the list).
    #[error(
        "{what}: no answer within {after:?}: proposer {leader} leads, but the cluster file does not name it (add it: \
         `paxosctl member list` shows where it is)"
    )]
    LeaderNotInFile {
        /// What was asked.
        what: String,
        /// The overall timeout.
        after: Duration,
        /// The leader named.
        leader: NodeId,
    },
    /// A proposer refused the request for good.
    #[error("the cluster refused the request: {0:?}")]
    Refused(ClientErrorKind),
    /// The node is not in the cluster file.
    #[error("{0} is not a member of the cluster")]
    UnknownNode(Node),
    /// The socket failed.
    #[error("client socket: {0}")]
    Io(#[from] io::Error),
    /// The client keys of the cluster file's `[auth]` cannot be read.
    #[error("{0}")]
    Keys(crate::config::ConfigError),
    /// The leader refused a leadership transfer.
    #[error("the leadership transfer was refused: {0}")]
    Transfer(String),
    /// The leader refused a membership change.
    #[error("the membership change was refused: {0}")]
    Member(String),
    /// The leader refused to restore entries.
    #[error("the restore was refused: {error} (the log ends at {end})")]
    Restore {
        /// Why.
        error: String,
        /// Where the cluster's log ends.
        end: Slot,
    },
    /// The slots asked for were deleted by retention (`[log] retain_slots`).
    #[error("slots {from}..{start} were deleted by retention; the log now starts at {start}")]
    Deleted {
        /// The first slot asked for.
        from: Slot,
        /// The first slot the node still holds.
        start: Slot,
    },
}

/// A client of one cluster.
#[derive(Debug)]
pub struct Client {
    link: Link,
    id: ClientId,
    next_seq: u64,
    next_req: u64,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

/// A reply as [`Client::exchange`] sees it.
enum Step<T> {
    Done(T),
    /// Resend now, to this node.
    Resend(Node),
    /// Keep waiting for another datagram.
    Wait,
}

impl Client {
    /// A client of `cluster` with a random id, bound to an ephemeral port of
    /// the loopback interface when every member is on it, of every interface otherwise.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn new(cluster: &ClusterConfig) -> Result<Client, ClientError> {
        Client::with_id(cluster, random_client_id(), 1).await
    }

    /// A client of `cluster` with the id `id`, whose next request gets `next_seq`
    /// (above every request this id made before, or the cluster answers stale).
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn with_id(cluster: &ClusterConfig, id: ClientId, next_seq: u64) -> Result<Client, ClientError> {
        Ok(Client {
            link: Link::new(cluster)?,
            id,
            next_seq,
            next_req: 1,
            send_buf: Vec::with_capacity(MAX_DATAGRAM_BYTES),
            recv_buf: vec![0; MAX_DATAGRAM_BYTES + 1],
        })
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The `seq` the next proposal gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The proposer this client believes leads.
    pub fn leader_hint(&self) -> NodeId {
        self.link.target
    }

    crate::link::link_settings!();

    /// Appends `value` to the log and returns the slot it was decided at.
    ///
    /// # Errors
    /// [`ClientError::ValueTooLarge`] before anything is sent;
    /// [`ClientError::Timeout`] when no proposer decided it in time (it may
    /// still be decided later, at most once); [`ClientError::Refused`] when a
    /// proposer refuses it for good.
    pub async fn propose(&mut self, value: impl Into<String>) -> Result<Slot, ClientError> {
        let value = value.into();
        if value.len() > MAX_VALUE_BYTES {
            return Err(ClientError::ValueTooLarge { len: value.len() });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let msg = Message::ClientPropose(ClientPropose { seq, value: value.into() });
        let what = format!("propose (client {:x}, seq {seq})", self.id.0);
        let first = Node::Proposer(self.link.target);
        let (slot, leader) = self
            .exchange(first, &msg, &what, true, |client, from, reply| match reply {
                Message::ClientReply(r) if r.seq == seq => Ok(Step::Done((r.slot, from))),
                Message::ClientRedirect(r) if r.seq == seq => match client.link.follow(r.leader, from) {
                    Some(l) => {
                        client.link.target = l;
                        Ok(Step::Resend(Node::Proposer(l)))
                    }
                    // No leader known: wait for the attempt to time out, then try the next proposer.
                    None => Ok(Step::Wait),
                },
                Message::ClientError(e) if e.seq == seq => match e.kind {
                    // The leader's queue is full: ask it again, backing off.
                    ClientErrorKind::Busy => Ok(Step::Resend(from)),
                    kind => Err(ClientError::Refused(kind)),
                },
                _ => Ok(Step::Wait),
            })
            .await?;
        if let Node::Proposer(p) = leader {
            self.link.target = p;
        }
        Ok(slot)
    }

    /// Reads up to `limit` decided entries of proposer `node` from slot `from`.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when the proposer does not answer in time.
    pub async fn log(&mut self, node: NodeId, from: Slot, limit: u32) -> Result<LogReply, ClientError> {
        let req = self.next_req();
        let msg = Message::LogRead(LogRead { req, from, limit, linearizable: false, cookie: None });
        let what = format!("log read from proposer {node}");
        self.exchange(Node::Proposer(node), &msg, &what, false, |_, _, reply| match reply {
            Message::LogReply(r) if r.req == req => Ok(Step::Done(r)),
            _ => Ok(Step::Wait),
        })
        .await
    }

    /// A linearizable page of the decided log from `from`: the leader
    /// answers once a quorum of acceptors confirmed it still leads, with
    /// every entry decided before the read arrived. Follows redirects.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when no leader answers in time.
    pub async fn log_linearizable(&mut self, from: Slot, limit: u32) -> Result<(NodeId, LogReply), ClientError> {
        let req = self.next_req();
        let msg = Message::LogRead(LogRead { req, from, limit, linearizable: true, cookie: None });
        let target = Node::Proposer(self.link.target);
        self.exchange(target, &msg, "linearizable log read", true, |client, node, reply| match reply {
            Message::LogReply(r) if r.req == req => {
                let Node::Proposer(p) = node else { return Ok(Step::Wait) };
                if r.linearizable {
                    client.link.target = p;
                    return Ok(Step::Done((p, r)));
                }
                match client.link.follow(r.leader.filter(|l| *l != p), node) {
                    Some(l) => Ok(Step::Resend(Node::Proposer(l))),
                    None => Ok(Step::Wait),
                }
            }
            _ => Ok(Step::Wait),
        })
        .await
    }

    /// Asks the leader to hand leadership to proposer `to`; returns once it
    /// sent `to` the word (the caller watches for the new leader).
    ///
    /// # Errors
    /// [`ClientError::Transfer`] when the leader refuses, [`ClientError::Timeout`] when none answers.
    pub async fn transfer(&mut self, to: NodeId) -> Result<(), ClientError> {
        let req = self.next_req();
        let msg = Message::TransferRequest(paxos_proto::TransferRequest { req, to, cookie: None });
        let target = Node::Proposer(self.link.target);
        self.exchange(target, &msg, "leadership transfer", true, |client, node, reply| match reply {
            Message::TransferReply(r) if r.req == req => match r.error {
                None => Ok(Step::Done(())),
                Some(e) if e == "not the leader" => {
                    match client.link.follow(r.leader.filter(|l| Node::Proposer(*l) != node), node) {
                        Some(l) => Ok(Step::Resend(Node::Proposer(l))),
                        None => Ok(Step::Wait),
                    }
                }
                Some(e) => Err(ClientError::Transfer(e)),
            },
            _ => Ok(Step::Wait),
        })
        .await
    }

    /// Reads the whole decided log of proposer `node` from slot `from`, page by page.
    ///
    /// # Errors
    /// As for [`Client::log`].
    pub async fn read_log(&mut self, node: NodeId, from: Slot) -> Result<Vec<LogEntry>, ClientError> {
        let mut entries = Vec::new();
        let mut next = from;
        loop {
            let page = self.log(node, next, LOG_PAGE_LIMIT).await?;
            if page.start > next {
                return Err(ClientError::Deleted { from: next, start: page.start });
            }
            let Some(last) = page.entries.last() else { break };
            next = last.slot.next();
            entries.extend(page.entries);
            if next >= page.decided {
                break;
            }
        }
        Ok(entries)
    }

    /// Lists, adds or removes a member (`paxosctl member`): the leader makes
    /// the change through the log and answers once it is decided; the
    /// request is signed with the cluster's peer key (a list needs none: it
    /// is then signed with the client key, or unsigned with a cookie). Follows redirects. A
    /// change lists the members first and is asked from that configuration
    /// ([`Client::member_from`]), both within one timeout.
    ///
    /// # Errors
    /// As for [`Client::member_from`].
    pub async fn member(&mut self, op: MemberOp) -> Result<Config, ClientError> {
        // The list and the change share the timeout: the command is over by its end.
        let end = Instant::now() + self.link.timeout;
        let list = self
            .member_once(MemberOp::List, None, end, member_margin(self.link.timeout))
            .await?
            .map_err(|(_, why)| ClientError::Member(why))?;
        if op == MemberOp::List {
            return Ok(list);
        }
        self.member_from_until(op, &list, end).await
    }

    /// Adds or removes a member, asked from the configuration `from` (the
    /// answer to a `List`): the leader makes the change only from that
    /// epoch, so that a late copy of this request (duplicated or delayed by
    /// the network) cannot make it again after a later change undid it.
    ///
    /// When another configuration came into force first (another change,
    /// an acceptor's rebuild, the cluster's first configuration), the
    /// leader refuses with it. If it is the very next epoch, it is not this
    /// change (which would be in force then), so the change was not made
    /// and is asked again from it: at most [`MEMBER_ATTEMPTS`] times in
    /// all, and while a second more than the deadline's margin is left. A
    /// refusal from two or more epochs on is final: one of those may have
    /// made this change (its answer lost) and a later one undone it, and
    /// asking again would make it a second time. (So a list from a
    /// proposer two or more epochs behind ends in that error too: list
    /// again.)
    ///
    /// Removing a node that no configuration seen here had (neither `from`
    /// nor one a refusal carried) is an error even though the leader answers
    /// it as done (nothing to remove): most likely a mistyped id, as
    /// `etcdctl member remove` says. A list from a proposer one epoch
    /// behind that does not have a node added since is asked again from
    /// the leader's.
    ///
    /// Each request carries a deadline before the end of the timeout (by a
    /// fifth of the timeout, at most a second, plus [`MAX_CLOCK_SKEW_MS`],
    /// on this host's clock): a leader that cannot start the change by then
    /// gives it up and says why, in time for the answer to arrive (it
    /// answers [`MAX_CLOCK_SKEW_MS`] after the deadline at the earliest),
    /// and no leader starts it later. A timeout under a second leaves the
    /// change little or no time.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when no leader answers in time;
    /// [`ClientError::Member`] when the leader refuses the change or gives
    /// it up at its deadline (a new acceptor is let in only once it
    /// started and copied the log), when the configuration changed under
    /// it as above, or when it removes a node that was no member.
    pub async fn member_from(&mut self, op: MemberOp, from: &Config) -> Result<Config, ClientError> {
        let end = Instant::now() + self.link.timeout;
        self.member_from_until(op, from, end).await
    }

    /// [`Client::member_from`], over by `end` rather than a timeout from now.
    async fn member_from_until(&mut self, op: MemberOp, from: &Config, end: Instant) -> Result<Config, ClientError> {
        let margin = member_margin(self.link.timeout);
        let target = match &op {
            MemberOp::Remove { role, id } => Some((*role, *id)),
            _ => None,
        };
        let has = |config: &Config| target.is_some_and(|(role, id)| config.members(role).iter().any(|m| m.id == id));
        let mut seen = has(from);
        let mut epoch = from.epoch;
        let mut attempt = 1;
        loop {
            match self.member_once(op.clone(), Some(epoch), end, margin).await? {
                Ok(config) => {
                    let Some((role, id)) = target.filter(|_| !seen) else { return Ok(config) };
                    let ids: Vec<String> = config.members(role).iter().map(|m| m.id.to_string()).collect();
                    let role = role.name();
                    return Err(ClientError::Member(format!(
                        "{role} {id} is not a member (the {role}s of epoch {}: {}; if an earlier try timed out, it \
                         may have removed it)",
                        config.epoch,
                        ids.join(", ")
                    )));
                }
                Err((now, why)) => {
                    let left = end.saturating_duration_since(Instant::now());
                    // A proposer of an earlier release refuses with the next
                    // epoch even when that is this change (being undone).
                    if now.epoch != epoch + 1 || op.satisfied_by(&now) {
                        return Err(ClientError::Member(format!(
                            "{why} (not asked again: a change since epoch {epoch} may have been this one, undone \
                             since; list the members and decide)"
                        )));
                    }
                    if attempt >= MEMBER_ATTEMPTS || left < margin + Duration::from_secs(1) {
                        return Err(ClientError::Member(format!("{why} (asked {attempt} times)")));
                    }
                    seen |= has(&now);
                    epoch = now.epoch;
                    attempt += 1;
                }
            }
        }
    }

    /// One member request, asked from `epoch` until `end`, with a deadline
    /// `margin` before it: the configuration it is answered with, or the
    /// one in force that it was refused with as asked from an earlier
    /// epoch, and the refusal.
    async fn member_once(
        &mut self,
        op: MemberOp,
        epoch: Option<u32>,
        end: Instant,
        margin: Duration,
    ) -> Result<Result<Config, (Config, String)>, ClientError> {
        let req = self.next_req();
        let left = end.saturating_duration_since(Instant::now());
        let deadline_ms = unix_ms().saturating_add(left.saturating_sub(margin).as_millis() as u64);
        let what = if op == MemberOp::List { "member list" } else { "membership change" };
        let msg =
            Message::MemberRequest(MemberRequest { req, op, deadline_ms: Some(deadline_ms), epoch, cookie: None });
        let target = Node::Proposer(self.link.target);
        self.exchange_until(target, &msg, what, true, end, |client, from, reply| match reply {
            Message::MemberReply(r) if r.req == req => {
                if let Some(error) = r.error {
                    return match r.config {
                        Some(config) if epoch.is_some_and(|e| config.epoch > e) => Ok(Step::Done(Err((config, error)))),
                        _ => Err(ClientError::Member(error)),
                    };
                }
                if let Some(config) = r.config {
                    if let Node::Proposer(p) = from {
                        client.link.target = p;
                    }
                    return Ok(Step::Done(Ok(config)));
                }
                match client.link.follow(r.leader.filter(|l| Node::Proposer(*l) != from), from) {
                    Some(l) => Ok(Step::Resend(Node::Proposer(l))),
                    None => Ok(Step::Wait),
                }
            }
            _ => Ok(Step::Wait),
        })
        .await
    }

    /// Appends `entries` (values, `None` for no-ops) at `from`, `from + 1`, ...
    /// of an empty cluster's log (`paxosctl restore`), signed with the peer
    /// key; returns where the log ends once they are decided. Follows redirects.
    ///
    /// # Errors
    /// [`ClientError::Restore`] when the leader refuses (the log does not end
    /// at `from`), [`ClientError::Timeout`] when no leader answers in time.
    pub async fn restore(&mut self, from: Slot, entries: Vec<Option<String>>) -> Result<Slot, ClientError> {
        let req = self.next_req();
        let msg = Message::RestoreRequest(RestoreRequest { req, from, entries, cookie: None });
        let target = Node::Proposer(self.link.target);
        self.exchange(target, &msg, "restore", true, |client, from, reply| match reply {
            Message::RestoreReply(r) if r.req == req => {
                if let Some(error) = r.error {
                    return Err(ClientError::Restore { error, end: r.end });
                }
                if r.leader.is_none() {
                    if let Node::Proposer(p) = from {
                        client.link.target = p;
                    }
                    return Ok(Step::Done(r.end));
                }
                match client.link.follow(r.leader.filter(|l| Node::Proposer(*l) != from), from) {
                    Some(l) => Ok(Step::Resend(Node::Proposer(l))),
                    None => Ok(Step::Wait),
                }
            }
            _ => Ok(Step::Wait),
        })
        .await
    }

    /// Asks `node` (a proposer or an acceptor) for its status.
    ///
    /// # Errors
    /// [`ClientError::UnknownNode`] for a node not in the cluster file,
    /// [`ClientError::Timeout`] when it does not answer in time.
    pub async fn status(&mut self, node: Node) -> Result<StatusReply, ClientError> {
        let req = self.next_req();
        let msg = Message::StatusRequest(StatusRequest { req, cookie: None });
        let what = format!("status of {node}");
        self.exchange(node, &msg, &what, false, |_, _, reply| match reply {
            Message::StatusReply(r) if r.req == req => Ok(Step::Done(r)),
            _ => Ok(Step::Wait),
        })
        .await
    }

    fn next_req(&mut self) -> u64 {
        let req = self.next_req;
        self.next_req += 1;
        req
    }

    /// Sends `msg` to `to` and feeds every answer to `on_reply` until it is done,
    /// resending on every retry interval (to the next proposer if `rotate`)
    /// until the overall timeout.
    async fn exchange<T>(
        &mut self,
        to: Node,
        msg: &Message,
        what: &str,
        rotate: bool,
        on_reply: impl FnMut(&mut Client, Node, Message) -> Result<Step<T>, ClientError>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + self.link.timeout;
        self.exchange_until(to, msg, what, rotate, deadline, on_reply).await
    }

    /// [`Client::exchange`] until `deadline` rather than for the timeout
    /// (a timeout still reports the overall one, which `deadline` is within).
    async fn exchange_until<T>(
        &mut self,
        mut to: Node,
        msg: &Message,
        what: &str,
        rotate: bool,
        deadline: Instant,
        mut on_reply: impl FnMut(&mut Client, Node, Message) -> Result<Step<T>, ClientError>,
    ) -> Result<T, ClientError> {
        if !self.link.is_member(to) {
            return Err(ClientError::UnknownNode(to));
        }
        // Redirects (and busy answers) in a row back off, so that two proposers
        // that each name the other while leadership settles make no busy loop.
        let mut redirects_in_row = 0u32;
        loop {
            self.send(to, msg).await?;
            let attempt_end = (Instant::now() + self.link.retry).min(deadline);
            let mut resend = None;
            while resend.is_none() {
                let received =
                    tokio::time::timeout_at(attempt_end, self.link.socket.recv_from(&mut self.recv_buf)).await;
                let Ok(received) = received else { break };
                let (len, _) = match received {
                    Ok(r) => r,
                    // E.g. an ICMP port unreachable reported on the socket: the node is down.
                    Err(_) => continue,
                };
                for env in self.link.envelopes(&self.recv_buf[..len]) {
                    if env.to != Node::Client(self.id) {
                        continue;
                    }
                    if let Message::Cookie(c) = env.msg {
                        // Proof of our address wanted: ask again at once, with the cookie.
                        if env.from == to {
                            self.link.remember_cookie(to, c.cookie);
                            resend = Some(to);
                        }
                        continue;
                    }
                    match on_reply(self, env.from, env.msg)? {
                        Step::Done(t) => return Ok(t),
                        Step::Resend(node) => resend = Some(node),
                        Step::Wait => {}
                    }
                }
                if let (None, Some((leader, from))) = (resend, self.link.unknown_leader.take()) {
                    if self.list_members(from, deadline).await && self.link.is_member(Node::Proposer(leader)) {
                        resend = Some(Node::Proposer(leader));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(self.link.timed_out(what));
            }
            to = match resend {
                Some(node) => {
                    if redirects_in_row > 0 {
                        let wait = backoff(redirects_in_row, self.link.retry);
                        tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
                    }
                    redirects_in_row += 1;
                    node
                }
                None => {
                    redirects_in_row = 0;
                    // Silence: the node may be down or may have moved.
                    self.link.forget(to);
                    self.link.silent(to);
                    let moved = match self.link.unknown_leader.take() {
                        Some((leader, from)) => self.list_members(from, deadline).await.then_some(leader),
                        None => None,
                    };
                    match (moved, rotate, to) {
                        (Some(leader), _, _) => Node::Proposer(leader),
                        (None, true, Node::Proposer(p)) => Node::Proposer(self.link.after_silence(p)),
                        (None, _, _) => to,
                    }
                }
            };
        }
    }

    /// Asks `from` for the members the log decided (a member list: signed
    /// with the peer key or else the client key, or unsigned with a cookie),
    /// waiting one retry interval at most, and takes them in: a leader that
    /// the cluster file does not name becomes known. True if `from`
    /// answered. Once per client ([`Link::follow`]).
    async fn list_members(&mut self, from: Node, deadline: Instant) -> bool {
        self.link.listed = true;
        let req = self.next_req();
        let msg = Message::MemberRequest(MemberRequest {
            req,
            op: MemberOp::List,
            deadline_ms: None,
            epoch: None,
            cookie: None,
        });
        if self.send(from, &msg).await.is_err() {
            return false;
        }
        let end = (Instant::now() + self.link.retry).min(deadline);
        let mut cookies = 0;
        while let Ok(Ok((len, _))) = tokio::time::timeout_at(end, self.link.socket.recv_from(&mut self.recv_buf)).await
        {
            for env in self.link.envelopes(&self.recv_buf[..len]) {
                if env.to != Node::Client(self.id) {
                    continue;
                }
                match env.msg {
                    Message::MemberReply(r) if r.req == req => {
                        if let Some(config) = r.config {
                            self.link.learn_members(&config);
                            return true;
                        }
                    }
                    // Proof of our address wanted (an unsigned client): ask again with it, once.
                    Message::Cookie(c) if c.req == req && env.from == from && cookies == 0 => {
                        cookies += 1;
                        self.link.remember_cookie(from, c.cookie);
                        if self.send(from, &msg).await.is_err() {
                            return false;
                        }
                    }
                    _ => {}
                }
            }
        }
        false
    }

    async fn send(&mut self, to: Node, msg: &Message) -> Result<(), ClientError> {
        let mut msg = msg.clone();
        self.link.with_cookie(to, &mut msg);
        let env = Envelope {
            version: PROTOCOL_VERSION,
            cluster: self.link.cluster.clone(),
            from: Node::Client(self.id),
            to,
            msg,
        };
        let unproven_read = env.msg.proof().is_some_and(|(_, cookie)| cookie.is_none());
        if let Err(e) = encode(&env, &mut self.send_buf) {
            return Err(ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)));
        }
        if unproven_read && self.send_buf.len() < MIN_UNPROVEN_READ_BYTES {
            // Its first answer is a cookie, never longer than the request: pad it.
            self.send_buf.resize(MIN_UNPROVEN_READ_BYTES, b' ');
        }
        let admin = matches!(env.msg, Message::MemberRequest(_)) || paxos_proto::auth::is_admin(&env.msg);
        self.link.send_datagram(to, &self.send_buf, admin).await;
        Ok(())
    }
}

/// How long to wait before the `in_row`th resend in a row of redirects or
/// busy answers: 10, 20, 40, 80, then 160 ms, never above `retry`.
pub(crate) fn backoff(in_row: u32, retry: Duration) -> Duration {
    Duration::from_millis(5 << in_row.min(5)).min(retry)
}

/// A random client id, never zero, below 2^53 (as the wire requires).
pub fn random_client_id() -> ClientId {
    ClientId((random_u64() & paxos_proto::MAX_CLIENT_NUMBER).max(1))
}

/// A random acceptor incarnation, never zero, below 2^53: operators and
/// scripts read it in `member list --json`, and JSON parsers that read
/// numbers as doubles (jq, JavaScript) read it exactly.
pub fn random_incarnation() -> u64 {
    (random_u64() & paxos_proto::MAX_CLIENT_NUMBER).max(1)
}

/// This host's wall clock, in Unix ms (deadlines of requests; the daemons' clock for the core).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// 64 bits that differ between calls, processes and starts: a client id, or a
/// proposer's incarnation. (RandomState is seeded from the OS per process.)
pub fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}
