//! Many proposals in flight over one socket: what `paxosctl bench` and
//! `paxosctl propose --concurrency N` run on.
//!
//! A [`MultiClient`] holds N *lanes*, each a client of its own ([`ClientId`],
//! `seq`) with at most one proposal in flight, exactly as a [`crate::client::Client`]
//! keeps it: the proposers deduplicate by `(client, seq)`, so a retried
//! request lands at most once. What the lanes share is one UDP socket. The
//! proposals that are due at one moment go out as one datagram per proposer
//! (a [`Bundle`]), and the leader answers all the lanes it decided in one
//! step with one datagram, so a busy run costs a few syscalls per batch of
//! values instead of two per value on each side.
//!
//! ```text
//!   loop: fill idle lanes from `next`      ──► send every due proposal, bundled per proposer
//!         wait for a datagram or the first timer (retry, back-off, deadline)
//!         drain the socket: reply ─► `done(Ok(slot))`, lane idle
//!                           redirect ─► resend to the leader named (backing off when in a row)
//!                           busy ─► resend after a back-off; other refusal ─► `done(Err)`
//!         timers: silence for `retry` ─► the same request to the next proposer
//!                 `timeout` passed    ─► `done(Err(Timeout))`, lane idle
//! ```

use std::collections::HashMap;
use std::time::Duration;

use paxos_proto::{
    encode_message, encode_with_body, Bundle, ClientErrorKind, ClientId, ClientPropose, Envelope, MemberOp,
    MemberRequest, Message, Node, NodeId, Slot, MAX_DATAGRAM_BYTES, MAX_VALUE_BYTES, PROTOCOL_VERSION,
};
use tokio::time::Instant;

use crate::client::{backoff, random_client_id, ClientError};
use crate::config::ClusterConfig;
use crate::link::Link;

/// The request number of lane 0's member list (see `MultiClient::list_members`).
const LIST_REQ: u64 = 1;

/// One proposal in flight.
#[derive(Debug)]
struct Job {
    /// The caller's name for it.
    tag: u64,
    seq: u64,
    value: std::sync::Arc<str>,
    /// The proposer it goes to next.
    to: NodeId,
    started: Instant,
    /// When it is sent (again); `None` once sent, until an answer or a timer sets it.
    due: Option<Instant>,
    /// When the current attempt counts as silence.
    attempt_end: Instant,
    deadline: Instant,
    /// Redirects and busy answers in a row, for the back-off.
    in_row: u32,
}

/// One logical client.
#[derive(Debug)]
struct Lane {
    id: ClientId,
    next_seq: u64,
    job: Option<Job>,
}

/// N clients with one proposal in flight each, over one socket.
#[derive(Debug)]
pub struct MultiClient {
    link: Link,
    lanes: Vec<Lane>,
    lane_of: HashMap<ClientId, usize>,
    recv_buf: Vec<u8>,
    body: Vec<u8>,
    envelope: Vec<u8>,
    datagram: Vec<u8>,
    /// The proposer to ask for the member list again, with the cookie it gave.
    relist: Option<Node>,
    /// Whether the member list was asked again with a cookie (once at most).
    relisted: bool,
}

impl MultiClient {
    /// `lanes` clients of `cluster` (at least one), each with a random id, on one socket.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn new(cluster: &ClusterConfig, lanes: usize) -> Result<MultiClient, ClientError> {
        let lanes: Vec<Lane> =
            (0..lanes.max(1)).map(|_| Lane { id: random_client_id(), next_seq: 1, job: None }).collect();
        let lane_of = lanes.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
        Ok(MultiClient {
            link: Link::new(cluster)?,
            lanes,
            lane_of,
            recv_buf: vec![0; MAX_DATAGRAM_BYTES + 1],
            body: Vec::new(),
            envelope: Vec::new(),
            datagram: Vec::with_capacity(MAX_DATAGRAM_BYTES),
            relist: None,
            relisted: false,
        })
    }

    crate::link::link_settings!();

    /// How many lanes (proposals in flight at most).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Proposes every value `next` yields, keeping every lane busy, and calls
    /// `done` once per value with its tag, its latency (first send to answer)
    /// and the slot it was decided at or why not. Returns when `next` is
    /// exhausted and every proposal is answered or timed out.
    ///
    /// # Errors
    /// Only when the socket fails for good; a value that fails is reported to `done`.
    pub async fn run(
        &mut self,
        mut next: impl FnMut() -> Option<(u64, String)>,
        mut done: impl FnMut(u64, Duration, Result<Slot, ClientError>),
    ) -> Result<(), ClientError> {
        let mut exhausted = false;
        loop {
            let now = Instant::now();
            if !exhausted {
                exhausted = self.fill(now, &mut next, &mut done);
            }
            self.expire(now, &mut done);
            if let Some(from) = self.link.unknown_leader.take().map(|(_, from)| from).or(self.relist.take()) {
                self.list_members(from).await;
            }
            self.send_due(now).await;
            let Some(wake) = self.next_timer() else {
                if exhausted {
                    return Ok(());
                }
                continue;
            };
            match tokio::time::timeout_at(wake, self.link.socket.recv_from(&mut self.recv_buf)).await {
                Err(_) => {}     // a timer is due
                Ok(Err(_)) => {} // e.g. ICMP port unreachable: a proposer is down; its timer rotates
                Ok(Ok((len, _))) => {
                    self.on_datagram(len, &mut done);
                    // Take everything already queued before sending again, so
                    // that the lanes it frees leave in one bundle.
                    while let Ok((len, _)) = self.link.socket.try_recv_from(&mut self.recv_buf) {
                        self.on_datagram(len, &mut done);
                    }
                }
            }
        }
    }

    /// Gives every idle lane the next value; true once `next` is exhausted.
    fn fill(
        &mut self,
        now: Instant,
        next: &mut impl FnMut() -> Option<(u64, String)>,
        done: &mut impl FnMut(u64, Duration, Result<Slot, ClientError>),
    ) -> bool {
        for lane in &mut self.lanes {
            while lane.job.is_none() {
                let Some((tag, value)) = next() else { return true };
                if value.len() > MAX_VALUE_BYTES {
                    done(tag, Duration::ZERO, Err(ClientError::ValueTooLarge { len: value.len() }));
                    continue;
                }
                let seq = lane.next_seq;
                lane.next_seq += 1;
                lane.job = Some(Job {
                    tag,
                    seq,
                    value: value.into(),
                    to: self.link.target,
                    started: now,
                    due: Some(now),
                    attempt_end: now + self.link.retry,
                    deadline: now + self.link.timeout,
                    in_row: 0,
                });
            }
        }
        false
    }

    /// Ends the proposals past their deadline, and sends those whose attempt
    /// met silence to the next proposer.
    fn expire(&mut self, now: Instant, done: &mut impl FnMut(u64, Duration, Result<Slot, ClientError>)) {
        for i in 0..self.lanes.len() {
            let Some(job) = &mut self.lanes[i].job else { continue };
            if now >= job.deadline {
                let job = self.lanes[i].job.take().expect("a job");
                let what = format!("propose (client {:x}, seq {})", self.lanes[i].id.0, job.seq);
                done(job.tag, now - job.started, Err(self.link.timed_out(&what)));
            } else if job.due.is_none() && now >= job.attempt_end {
                // Silence: the proposer may be down or may have moved.
                self.link.forget(Node::Proposer(job.to));
                self.link.silent(Node::Proposer(job.to));
                job.to = self.link.after_silence(job.to);
                job.due = Some(now);
                job.in_row = 0;
            }
        }
    }

    /// The earliest moment something must happen without a datagram; `None` when nothing is in flight.
    fn next_timer(&self) -> Option<Instant> {
        self.lanes.iter().filter_map(|l| l.job.as_ref()).map(|j| j.deadline.min(j.due.unwrap_or(j.attempt_end))).min()
    }

    /// Sends every proposal that is due now, one bundle per proposer.
    async fn send_due(&mut self, now: Instant) {
        let mut bundles: Vec<(NodeId, Bundle)> = Vec::new();
        for i in 0..self.lanes.len() {
            let lane = &self.lanes[i];
            let Some(job) = &lane.job else { continue };
            if job.due.is_none_or(|d| d > now) {
                continue;
            }
            let (id, to) = (lane.id, job.to);
            let job = self.lanes[i].job.as_mut().expect("a job");
            // The value is shared with the message: no copy per (re)send.
            let msg = Message::ClientPropose(ClientPropose { seq: job.seq, value: job.value.clone() });
            encode_message(&msg, &mut self.body);
            let sent = encode_with_body(
                &self.link.cluster,
                Node::Client(id),
                Node::Proposer(to),
                &self.body,
                &mut self.envelope,
            );
            job.due = None;
            job.attempt_end = (now + self.link.retry).min(job.deadline);
            if sent.is_err() {
                // A value within MAX_VALUE_BYTES always fits; counts as silence if not.
                continue;
            }
            let b = match bundles.iter().position(|(p, _)| *p == to) {
                Some(b) => b,
                None => {
                    bundles.push((to, Bundle::new()));
                    bundles.len() - 1
                }
            };
            if !bundles[b].1.fits(&self.envelope) {
                bundles[b].1.finish(&mut self.datagram);
                self.transmit(to).await;
            }
            bundles[b].1.push(&self.envelope);
        }
        for (to, mut bundle) in bundles {
            bundle.finish(&mut self.datagram);
            self.transmit(to).await;
        }
    }

    /// Asks `from` for the members the log decided, as lane 0 (a member list:
    /// signed with the peer key or else the client key, or unsigned with a
    /// cookie); the answer is taken in by `on_datagram`, which asks again once
    /// when it is a cookie. Once per client ([`Link::follow`]); nothing waits for it.
    async fn list_members(&mut self, from: Node) {
        self.link.listed = true;
        let mut msg = Message::MemberRequest(MemberRequest {
            req: LIST_REQ,
            op: MemberOp::List,
            deadline_ms: None,
            epoch: None,
            cookie: None,
        });
        self.link.with_cookie(from, &mut msg);
        let unproven = matches!(&msg, Message::MemberRequest(r) if r.cookie.is_none());
        let env = Envelope {
            version: PROTOCOL_VERSION,
            cluster: self.link.cluster.clone(),
            from: Node::Client(self.lanes[0].id),
            to: from,
            msg,
        };
        let mut bytes = Vec::new();
        if paxos_proto::encode(&env, &mut bytes).is_ok() {
            if unproven && bytes.len() < paxos_proto::MIN_UNPROVEN_READ_BYTES {
                // Its first answer may be a cookie, never longer than the request: pad it.
                bytes.resize(paxos_proto::MIN_UNPROVEN_READ_BYTES, b' ');
            }
            self.link.send_datagram(from, &bytes, true).await;
        }
    }

    /// Sends `self.datagram` to proposer `to`.
    async fn transmit(&mut self, to: NodeId) {
        self.link.send_datagram(Node::Proposer(to), &self.datagram, false).await;
    }

    /// Every answer of one datagram.
    fn on_datagram(&mut self, len: usize, done: &mut impl FnMut(u64, Duration, Result<Slot, ClientError>)) {
        let now = Instant::now();
        for env in self.link.envelopes(&self.recv_buf[..len]) {
            let (Node::Client(id), Node::Proposer(from)) = (env.to, env.from) else { continue };
            let Some(&i) = self.lane_of.get(&id) else { continue };
            if let Message::MemberReply(r) = &env.msg {
                // The answer to `list_members`: a leader the cluster file does not name becomes known.
                if let (0, LIST_REQ, Some(config)) = (i, r.req, &r.config) {
                    self.link.learn_members(config);
                }
                continue;
            }
            if let Message::Cookie(c) = env.msg {
                // `list_members` from an unsigned client: ask again with the cookie, once.
                if (i, c.req, self.relisted) == (0, LIST_REQ, false) {
                    self.relisted = true;
                    self.link.remember_cookie(env.from, c.cookie);
                    self.relist = Some(env.from);
                }
                continue;
            }
            let Some(job) = &mut self.lanes[i].job else { continue };
            let retry = self.link.retry;
            let backoff = |in_row: u32| if in_row == 0 { Duration::ZERO } else { backoff(in_row, retry) };
            match env.msg {
                Message::ClientReply(r) if r.seq == job.seq => {
                    let job = self.lanes[i].job.take().expect("a job");
                    self.link.target = from;
                    done(job.tag, now - job.started, Ok(r.slot));
                }
                Message::ClientRedirect(r) if r.seq == job.seq => {
                    // No leader known (or one the file does not name, until
                    // the members are listed): wait for the attempt to time
                    // out, then try the next proposer.
                    if let Some(l) = self.link.follow(r.leader, Node::Proposer(from)) {
                        job.to = l;
                        job.due = Some(now + backoff(job.in_row));
                        job.in_row += 1;
                        self.link.target = l;
                    }
                }
                Message::ClientError(e) if e.seq == job.seq => match e.kind {
                    // The leader's queue is full: ask it again, backing off.
                    ClientErrorKind::Busy => {
                        job.to = from;
                        job.due = Some(now + backoff(job.in_row + 1));
                        job.in_row += 1;
                    }
                    kind => {
                        let job = self.lanes[i].job.take().expect("a job");
                        done(job.tag, now - job.started, Err(ClientError::Refused(kind)));
                    }
                },
                _ => {}
            }
        }
    }
}
