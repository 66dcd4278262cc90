//! Clients: proposals, retries, redirects and log reads.

use paxos_proto::{
    json_str_len, ClientError, ClientErrorKind, ClientId, ClientPropose, ClientRedirect, Command, LogEntry, LogRead,
    LogReply, Message, Node, NodeId, RestoreReply, RestoreRequest, Slot, Value, MAX_VALUE_BYTES,
};

use super::{Asked, Clients, Phase, Proposer, ReadFor, STAMP_SLACK_MS};
use crate::Tick;
use crate::{Ignored, Learner, LogPage, Stored, MAX_BATCH_BYTES};
use tracing::{info, warn};

/// Bytes a log entry takes in a reply beside its value: the slot and the JSON framing.
pub const LOG_ENTRY_OVERHEAD_BYTES: usize = 32;

/// Bytes a no-op entry's absent value takes in a reply (`null`).
const NOOP_VALUE_BYTES: usize = 4;

/// Linearizable reads waiting for a quorum's confirmation, at most.
const MAX_CONFIRMING_READS: usize = 256;

/// A linearizable read waiting for a quorum of acceptors to confirm our leadership.
#[derive(Debug)]
pub(super) struct Confirming {
    client: ClientId,
    read: LogRead,
    /// Answers to this probe round or later ones confirm.
    round: u64,
    /// Our ballot when it arrived: the promise the answers must name.
    ballot: paxos_proto::Ballot,
    acks: Vec<NodeId>,
}

impl Clients {
    /// Puts a client's value that lost its slot back at the front of the
    /// queue, unless it was applied meanwhile (no-ops and configurations need
    /// no slot of their own: a configuration is proposed again if still wanted).
    pub(super) fn requeue(&mut self, learner: &Learner, value: Value) {
        if let Value::Command(c) = value {
            if !learner.is_applied(&c) {
                self.queue_bytes += c.data.len();
                self.queue.push_front(c);
            }
        }
    }

    /// Queues a new command.
    pub(super) fn push_back(&mut self, c: Command) {
        self.queue_bytes += c.data.len();
        self.queue.push_back(c);
    }

    /// How many commands wait for a slot.
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The next command to give a slot.
    pub(super) fn pop_front(&mut self) -> Option<Command> {
        let c = self.queue.pop_front()?;
        self.queue_bytes -= c.data.len();
        Some(c)
    }

    /// When a copy of `c` last arrived here (its stamp, or a later retry's arrival).
    pub(super) fn heard_ms(&self, c: &Command) -> u64 {
        self.proposed.get(&c.client).filter(|a| a.seq == c.seq).map_or(c.at, |a| a.heard_ms.max(c.at))
    }

    /// Forgets a command that waited too long for a slot: the client's retry,
    /// if it still wants it, queues it again.
    pub(super) fn drop_stale(&mut self, c: &Command) {
        self.stale += 1;
        if self.proposed.get(&c.client).is_some_and(|a| a.seq == c.seq) {
            self.proposed.remove(&c.client);
        }
    }

    /// Keeps only the commands `keep` says to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Command) -> bool) {
        self.queue.retain(|c| keep(c));
        self.queue_bytes = self.queue.iter().map(|c| c.data.len()).sum();
    }

    /// Forgets every queued command.
    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.queue_bytes = 0;
    }
}

/// The client id of the values a restore appends (their request numbers are their slots).
pub const RESTORE_CLIENT: ClientId = ClientId(0);

/// How clients see a stored entry: its data, or nothing for a no-op, a
/// configuration or a retry that landed twice.
fn client_view(value: &Value, duplicate: bool) -> Option<String> {
    match value {
        Value::Command(c) if !duplicate => Some(c.data.to_string()),
        _ => None,
    }
}

/// Entries from `from` as clients see them, as many as `limit` and one datagram allow.
fn log_entries<'a>(from: Slot, limit: u32, entries: impl Iterator<Item = (&'a Value, bool)>) -> Vec<LogEntry> {
    let mut bytes = 0;
    entries
        .take(limit as usize)
        .enumerate()
        .map(|(i, (value, dup))| LogEntry { slot: Slot(from.0 + i as u64), value: client_view(value, dup) })
        .take_while(|e| {
            bytes += LOG_ENTRY_OVERHEAD_BYTES + e.value.as_deref().map_or(NOOP_VALUE_BYTES, json_str_len);
            bytes <= MAX_BATCH_BYTES
        })
        .collect()
}

/// How many clients' turns a proposer the configuration removed keeps
/// (see `Proposer::member_to_ask`).
const MAX_TURNS_KEPT: usize = 4096;

impl Proposer {
    /// A client's proposal: refused, answered from its session, redirected, or queued.
    pub(super) fn on_client_propose(&mut self, client: ClientId, m: ClientPropose) -> Result<(), Ignored> {
        if client == RESTORE_CLIENT {
            return Err(Ignored("proposer: client id 0 is reserved for restored values"));
        }
        let seq = m.seq;
        if m.value.len() > MAX_VALUE_BYTES {
            let err = ClientError { seq, kind: ClientErrorKind::TooLarge };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        }
        if self.learner.session(client).is_some_and(|s| s.seq >= seq) {
            self.answer_applied(client, seq);
            return Ok(());
        }
        if !self.expects_to_lead() {
            let leader = self.leader();
            self.redirect(client, seq, leader);
            return Ok(());
        }
        if let Some(asked) = self.clients.proposed.get_mut(&client).filter(|a| a.seq >= seq) {
            // A retry of a request already on its way: the client still wants it.
            if asked.seq == seq {
                asked.heard_ms = self.clock_ms;
            }
            self.clients.waiting.insert(client, seq);
            return Ok(());
        }
        // Stamped on arrival; the stamp stays with the command in every slot it gets.
        let at = self.stamp();
        let full = self.clients.queue.len() >= self.cfg.max_queue
            || self.clients.queue_bytes + m.value.len() > self.cfg.max_queue_bytes;
        let Some(at) = at.filter(|_| !full) else {
            // The queue is full, or no acceptor's clock is known yet (a proposer
            // that just started): the client asks again, backing off.
            let err = ClientError { seq, kind: ClientErrorKind::Busy };
            self.ready.send(Node::Client(client), Message::ClientError(err));
            return Ok(());
        };
        self.clients.proposed.insert(client, Asked { seq, heard_ms: self.clock_ms });
        self.clients.waiting.insert(client, seq);
        self.clients.push_back(Command { at, ..Command::new(client, seq, m.value) });
        Ok(())
    }

    /// True when we lead, campaign, or should (the election names us and we are a member).
    pub(super) fn expects_to_lead(&self) -> bool {
        !matches!(self.phase, Phase::Follower) || self.should_lead()
    }

    /// The time a client command is stamped with, which ages its client's
    /// session by the log's clock (the highest stamp applied): this
    /// proposer's clock, but no later than the acceptors' clocks allow
    /// ([`Proposer::refresh_stamp_bound`]), carried forward by this
    /// proposer's ticks while no quorum's answers are fresh. So one proposer
    /// whose clock runs hours ahead (NTP gone wrong, a VM restored) cannot
    /// expire every session at once, which let retries land twice, for as
    /// long as the skew, even after its clock was put right. `None` until
    /// enough acceptors answered with their clocks (the first moments of a
    /// proposer's start); its own clock while a quorum answers but too few
    /// of them with a clock (acceptors of an earlier release).
    pub(super) fn stamp(&mut self) -> Option<u64> {
        let ticks_ms = |since: Tick| self.now.since(since).saturating_mul(self.cfg.tick_ms);
        let bound = match self.stamp_ref {
            _ if self.defects.unbounded_stamps => return Some(self.clock_ms),
            Some((ms, at)) => ms.saturating_add(ticks_ms(at)),
            None if self.clockless => return Some(self.clock_ms),
            None => return None,
        };
        let bounded = self.clock_ms > bound;
        if bounded != self.stamps_bounded {
            self.stamps_bounded = bounded;
            let node = Node::Proposer(self.cfg.id);
            if bounded {
                let ahead_ms = self.clock_ms - bound + STAMP_SLACK_MS;
                warn!(%node, ahead_ms, "this proposer's clock runs ahead of the acceptors': client commands are stamped by theirs (keep the clocks in sync, e.g. with NTP)");
            } else {
                info!(%node, "this proposer's clock is back in line with the acceptors': client commands are stamped by it again");
            }
        }
        Some(self.clock_ms.min(bound))
    }

    /// How late a command may be stamped: [`STAMP_SLACK_MS`] past the
    /// (f+1)-th latest clock of the acceptors in force whose fresh probe
    /// answers carry one, where f is how many acceptors a quorum may lack:
    /// that one is no later than some right clock while at most f are
    /// ahead. Kept, with the tick it was worked out at, until fresh answers
    /// give another (so it stays an upper bound, moved on by this proposer's
    /// ticks). Worked out when answers arrive and at each heartbeat, not
    /// per command.
    pub(super) fn refresh_stamp_bound(&mut self) {
        let config = &self.learner.epoch().config;
        let mut clocks = [0u64; 64];
        let (mut known, mut fresh) = (0, 0);
        for info in config.acceptors.iter().filter_map(|m| self.acceptors.get(&m.id)) {
            if info.named.is_some_and(|(_, round)| self.fresh(round)) {
                fresh += 1;
            }
            if let Some((ms, _)) = info.clock.filter(|(_, round)| self.fresh(*round)) {
                if known < clocks.len() {
                    clocks[known] = ms;
                    known += 1;
                }
            }
        }
        let lacking = config.acceptors.len().saturating_sub(self.quorum());
        if known > lacking {
            let clocks = &mut clocks[..known];
            clocks.sort_unstable();
            self.stamp_ref = Some((clocks[known - 1 - lacking].saturating_add(STAMP_SLACK_MS), self.now));
        }
        // A quorum answers, but too few with a clock to bound stamps: acceptors
        // of an earlier release (an upgrade under way).
        self.clockless = self.stamp_ref.is_none() && known <= lacking && fresh >= self.quorum();
    }

    pub(super) fn redirect(&mut self, client: ClientId, seq: u64, leader: Option<NodeId>) {
        let leader = leader.or_else(|| self.member_to_ask(client));
        let msg = Message::ClientRedirect(ClientRedirect { seq, leader });
        self.ready.send(Node::Client(client), msg);
    }

    /// Where a proposer that the configuration in force removed sends a
    /// client when it knows no leader (the members no longer heartbeat to
    /// it): each member in turn, one per answer to that client, since it
    /// cannot tell which of them is up. So a client whose cluster file names
    /// only removed or lost proposers still finds the cluster (it asks this
    /// one for the members, see `Link::follow`), and its retries are not
    /// sent to the same dead member for ever. The turns of at most
    /// [`MAX_TURNS_KEPT`] clients are kept.
    fn member_to_ask(&mut self, client: ClientId) -> Option<NodeId> {
        if self.is_member() {
            return None;
        }
        let count = self.learner.epoch().config.proposers.len() as u64;
        if count == 0 {
            return None;
        }
        if self.members_named.len() >= MAX_TURNS_KEPT && !self.members_named.contains_key(&client) {
            self.members_named.clear();
        }
        let turn = self.members_named.entry(client).or_insert(client.0);
        *turn = turn.wrapping_add(1);
        let i = (*turn % count) as usize;
        Some(self.learner.epoch().config.proposers[i].id)
    }

    /// A page of the decided log, as much as fits one datagram: from the
    /// cache when it holds the slots, else read from the store.
    pub(super) fn on_log_read(&mut self, client: ClientId, m: LogRead) -> Result<(), Ignored> {
        if m.linearizable {
            return self.linearizable_read(client, m);
        }
        self.serve_log(client, m, false)
    }

    /// A linearizable read: only the leader answers, once a quorum of
    /// acceptors has answered a probe sent after the read arrived with our
    /// ballot still their promise (so no other leader can have decided
    /// anything meanwhile), with every entry decided before the read
    /// arrived. No disk write is needed. Others say who leads.
    fn linearizable_read(&mut self, client: ClientId, m: LogRead) -> Result<(), Ignored> {
        let serving = matches!(&self.phase, Phase::Leader(p2) if p2.recovered()) && self.learner.epoch_number() > 0;
        if !serving {
            let leader = self.leader().filter(|l| *l != self.cfg.id);
            let reply = LogReply {
                req: m.req,
                entries: Vec::new(),
                decided: self.learner.decided(),
                start: self.learner.state().start,
                leader,
                linearizable: false,
            };
            self.ready.send(Node::Client(client), Message::LogReply(reply));
            return Ok(());
        }
        if self.confirming.iter().any(|r| r.client == client && r.read.req == m.req) {
            return Ok(()); // a retry: answered once confirmed
        }
        if self.confirming.len() >= MAX_CONFIRMING_READS {
            return Err(Ignored("proposer: too many linearizable reads waiting"));
        }
        // A probe round sent after the read arrived: only answers to it (or
        // later ones) confirm.
        let round = self.probe_now();
        self.confirming.push(Confirming { client, read: m, round, ballot: self.ballot, acks: Vec::new() });
        Ok(())
    }

    /// Acceptor `a` answered probe round `round` with `promised`: reads waiting
    /// for a quorum that round confirms are served.
    pub(super) fn confirm_reads(&mut self, a: NodeId, round: u64, promised: paxos_proto::Ballot) {
        if self.confirming.is_empty() {
            return;
        }
        let leading = matches!(self.phase, Phase::Leader(_));
        let quorum = self.quorum();
        let members = self.acceptor_ids();
        let mut done = Vec::new();
        for (i, r) in self.confirming.iter_mut().enumerate() {
            if round >= r.round && promised == r.ballot && members.contains(&a) && !r.acks.contains(&a) {
                r.acks.push(a);
            }
            if r.acks.len() >= quorum || !leading || self.ballot != r.ballot {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let r = self.confirming.swap_remove(i);
            if leading && self.ballot == r.ballot {
                self.serve_log(r.client, r.read, true).ok();
            } else {
                // Leadership changed before the read was confirmed: ask the leader.
                self.redirect_read(r.client, r.read.req);
            }
        }
    }

    /// Leadership ended: the reads that waited for its confirmation go to the leader.
    pub(super) fn abandon_reads(&mut self) {
        for r in std::mem::take(&mut self.confirming) {
            self.redirect_read(r.client, r.read.req);
        }
    }

    /// An empty, non-linearizable answer to read `req` that names the leader
    /// (if another one is known), for the client to ask it instead.
    fn redirect_read(&mut self, client: ClientId, req: u64) {
        let reply = LogReply {
            req,
            entries: Vec::new(),
            decided: self.learner.decided(),
            start: self.learner.state().start,
            leader: self.leader().filter(|l| *l != self.cfg.id),
            linearizable: false,
        };
        self.ready.send(Node::Client(client), Message::LogReply(reply));
    }

    /// A page of the decided log from the cache, or read from the store.
    /// Nothing below the retention point is served, although the cache or
    /// the store may still hold it until compaction: the page starts there,
    /// and its `start` says so, as it would once the slots are gone.
    fn serve_log(&mut self, client: ClientId, mut m: LogRead, linearizable: bool) -> Result<(), Ignored> {
        m.from = m.from.max(self.learner.state().start);
        if m.from >= self.learner.cache_start() {
            let from = m.from.min(self.learner.decided());
            let entries = log_entries(from, m.limit, self.learner.cached(from).map(|(v, dup)| (v, *dup)));
            let reply = LogReply {
                req: m.req,
                entries,
                decided: self.learner.decided(),
                start: self.learner.state().start,
                leader: None,
                linearizable,
            };
            self.ready.send(Node::Client(client), Message::LogReply(reply));
            return Ok(());
        }
        self.read(m.from, m.limit, ReadFor::Client { client, req: m.req, limit: m.limit, linearizable })
    }

    /// A page read from the store for a client.
    pub(super) fn reply_log(&mut self, client: ClientId, req: u64, limit: u32, linearizable: bool, page: LogPage) {
        let entries =
            log_entries(page.from, limit, page.entries.iter().map(|Stored { value, duplicate }| (value, *duplicate)));
        let reply = LogReply {
            req,
            entries,
            decided: self.learner.decided(),
            start: page.start.max(self.learner.state().start),
            leader: None,
            linearizable,
        };
        self.ready.send(Node::Client(client), Message::LogReply(reply));
    }
}

impl Proposer {
    /// An operator restores a backup into this (empty) cluster: the entries
    /// go to the very next slots, in order, as values or no-ops, and the
    /// answer comes once they are decided. Only where the log ends exactly at
    /// `from`, with nothing in flight: a restore never reorders or overwrites.
    pub(super) fn on_restore(&mut self, client: ClientId, m: RestoreRequest) -> Result<(), Ignored> {
        let end = self.learner.decided();
        let reply = |error: Option<String>, leader: Option<NodeId>| RestoreReply { req: m.req, end, error, leader };
        let Phase::Leader(p2) = &mut self.phase else {
            let leader = self.leader().or(Some(self.cfg.id));
            self.ready.send(Node::Client(client), Message::RestoreReply(reply(None, leader)));
            return Ok(());
        };
        if p2.restore_waiter.is_some_and(|(c, r, _)| c == client && r == m.req) {
            return Ok(()); // a retry: the answer comes once the entries are decided
        }
        if self.learner.epoch_number() == 0 || !p2.recovered() || p2.changing() || p2.restore_waiter.is_some() {
            return Ok(()); // not ready for it yet: the operator's retry comes back
        }
        if m.from != end || !p2.idle() || !self.clients.queue.is_empty() {
            let error = format!(
                "the log ends at {end}{}, not at {}: a backup is restored into an empty cluster only",
                if p2.idle() { "" } else { " and values are in flight" },
                m.from
            );
            self.ready.send(Node::Client(client), Message::RestoreReply(reply(Some(error), None)));
            return Ok(());
        }
        let at = self.clock_ms;
        let values = m.entries.into_iter().enumerate().map(|(i, v)| match v {
            Some(data) => Value::Command(Command { at, ..Command::new(RESTORE_CLIENT, end.0 + i as u64, data) }),
            None => Value::Noop,
        });
        p2.restoring.extend(values);
        let target = Slot(end.0 + p2.restoring.len() as u64);
        p2.restore_waiter = Some((client, m.req, target));
        Ok(())
    }

    /// Answers the operator whose restore is decided.
    pub(super) fn answer_restore(&mut self) {
        let Phase::Leader(p2) = &mut self.phase else { return };
        let Some((client, req, target)) = p2.restore_waiter else { return };
        let end = self.learner.decided();
        if end >= target {
            p2.restore_waiter = None;
            let reply = RestoreReply { req, end, error: None, leader: None };
            self.ready.send_early(Node::Client(client), Message::RestoreReply(reply));
        }
    }
}
