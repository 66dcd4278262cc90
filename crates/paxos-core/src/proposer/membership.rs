//! Who the members are: acceptors' incarnations, the configuration changes
//! a leader makes, and operators' member requests.
//!
//! A leader changes the configuration (one change at a time, each a stop
//! sign in the log, see the module above) when:
//!
//! 1. the log is still in epoch 0, the cluster file's: the first thing a
//!    leader decides is the same members with the incarnations they
//!    reported, so that from epoch 1 on an acceptor that lost its disk (and
//!    so its incarnation) can no longer vote;
//! 2. an operator asked to add or remove a member (`paxosctl member`): an
//!    acceptor is added once it has started, reported its incarnation and
//!    copied the decided log. Requests go in the order asked; one that is
//!    not started by its deadline (the client's, in the request) is given
//!    up and answered with what it waited for, and never started after.
//!    One that names the epoch it was asked from is made only from that
//!    configuration: once a later one is in force (and does not already do
//!    what it asks), it is refused with that configuration, so that a late
//!    copy of an old request never makes its change again;
//! 3. a member acceptor reports another incarnation than the configuration
//!    pins (it lost its state) and has copied the decided log again: the
//!    new configuration pins its new incarnation (its rebuild is done).
//!
//! A change is proposed only when a majority of the new configuration's
//! acceptors are pinned, answer, and hold the decided log (to within
//! [`REBUILD_SLACK_SLOTS`]): the new epoch can decide at once, and every
//! decided value is on a majority of its acceptors. An operator's change
//! needs one more, and counts only answers to the probe round the leader
//! sends when the request arrives: an acceptor that lost its disk just
//! before (which an operator who saw it go down may well be reacting to)
//! still looks well in the answers of the rounds before.

use std::collections::BTreeMap;

use paxos_proto::{
    ClientId, Config, Member, MemberOp, MemberReply, MemberRequest, MemberRole, Message, Node, NodeId,
    MAX_CLOCK_SKEW_MS,
};
use tracing::info;

use super::{Phase, Proposer};
use crate::Ignored;

/// An acceptor counts as holding the decided log when it lacks at most this many slots of the leader's.
pub const REBUILD_SLACK_SLOTS: u64 = 4096;

/// Member requests waiting for their change, at most.
const MAX_WAITING_REQUESTS: usize = 64;

/// Operators' clients whose last answer about a change a leader keeps, at most.
pub(super) const MAX_ANSWERED_CLIENTS: usize = 256;

/// A request that reaches the leader more than this long after its
/// deadline (later than retries and redirects explain) may come from a
/// client whose clock is ahead: the answer says so.
const LATE_ARRIVAL_MS: u64 = 1000;

/// The longest address a member may have.
const MAX_ADDR_BYTES: usize = 256;

/// Acceptors being added: probed at their address until they are let in.
#[derive(Debug, Default)]
pub(super) struct Joining {
    acceptors: BTreeMap<NodeId, String>,
}

impl Joining {
    pub(super) fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.acceptors.keys().copied()
    }

    pub(super) fn addresses(&self) -> impl Iterator<Item = (Node, String)> + '_ {
        self.acceptors.iter().map(|(id, addr)| (Node::Acceptor(*id), addr.clone()))
    }
}

/// An operator's request waiting for its change to be decided.
#[derive(Clone, Debug)]
pub(super) struct Waiting {
    client: ClientId,
    req: u64,
    op: MemberOp,
    /// The client's deadline (Unix ms): the change is not started after it.
    deadline_ms: Option<u64>,
    /// How long after its deadline the request reached this leader, if it did.
    late_by_ms: Option<u64>,
    /// The epoch the client asked from: the change is made only from it.
    epoch: Option<u32>,
    /// A probe round that left after the request arrived (its own, or one it
    /// shares with the other inputs of its step, see [`Proposer::probe_now`]):
    /// only answers to it or to later rounds say whether the new
    /// configuration's acceptors are ready (see [`Proposer::next_config`]).
    asked_round: u64,
}

/// Why a request for `op` asked from `epoch` is not made from `config`,
/// if its epoch is an earlier one and `config` does not do what it asks.
/// No leader makes it any more: a change asked from epoch `e` is only ever
/// the one from `e` to `e + 1`, which is decided. (When `config` does what
/// it asks but a change under way undoes it, the request waits for that
/// change: refused with `config`, its client would take `config` for one
/// that is not its change, and ask again.)
fn stale(op: &MemberOp, epoch: Option<u32>, config: &Config) -> Option<String> {
    let e = epoch.filter(|e| *e < config.epoch && !op.satisfied_by(config))?;
    Some(format!(
        "the configuration changed since epoch {e}, which the request was asked from (epoch {} is in force, \
         without this change); list the members and ask again",
        config.epoch
    ))
}

/// Why `op` cannot be done to `config`, if it cannot.
fn refused(op: &MemberOp, config: &Config) -> Option<String> {
    match op {
        MemberOp::List => None,
        MemberOp::Add { role, id, addr } => {
            if addr.is_empty() || addr.len() > MAX_ADDR_BYTES {
                return Some(format!("the address must have 1 to {MAX_ADDR_BYTES} bytes"));
            }
            if *role == MemberRole::Acceptor && config.acceptors.len() >= 64 && !op.satisfied_by(config) {
                return Some("a configuration has at most 64 acceptors".into());
            }
            let clash = config.members(*role).iter().find(|m| m.id == *id && m.addr != *addr);
            clash.map(|m| format!("{} {} is already a member, at {}", role.name(), id, m.addr))
        }
        MemberOp::Remove { role, id } => {
            let left = config.members(*role).iter().filter(|m| m.id != *id).count();
            (left == 0).then(|| format!("{} {} is the last {}; add another first", role.name(), id, role.name()))
        }
    }
}

impl Proposer {
    /// An operator lists, adds or removes a member. Changes are made by the
    /// leader; the reply waits until the change is decided.
    pub(super) fn on_member_request(&mut self, client: ClientId, m: MemberRequest) -> Result<(), Ignored> {
        let config = self.config();
        if m.op == MemberOp::List {
            let reply = MemberReply { req: m.req, config: Some(config), error: None, leader: None };
            self.ready.send(Node::Client(client), Message::MemberReply(reply));
            return Ok(());
        }
        if !matches!(self.phase, Phase::Leader(_)) {
            let reply = MemberReply { req: m.req, config: None, error: None, leader: self.leader() };
            self.ready.send(Node::Client(client), Message::MemberReply(reply));
            return Ok(());
        }
        // A client asks one change at a time, its requests numbered upwards:
        // a copy of a request that was answered (the network duplicated or
        // delayed it) must not make the change again, after a later request
        // undid it. It gets the answer it had; an older one, nothing.
        if let Some(last) = self.member_answers.get(&client) {
            if m.req == last.req {
                let last = last.clone();
                self.ready.send(Node::Client(client), Message::MemberReply(last));
                return Ok(());
            }
            if m.req < last.req {
                return Err(Ignored("proposer: a member request older than one already answered"));
            }
        }
        if self.member_ops.iter().any(|w| w.client == client && w.req > m.req) {
            return Err(Ignored("proposer: a member request older than one already waiting"));
        }
        if let Some(error) = refused(&m.op, &config) {
            self.member_reply(client, m.req, None, Some(error));
            return Ok(());
        }
        if self.settled(&m.op) {
            self.member_reply(client, m.req, Some(config), None);
            return Ok(());
        }
        if let Some(why) = self.stale(&m.op, m.epoch, &config) {
            self.member_reply(client, m.req, Some(config), Some(why));
            return Ok(());
        }
        if self.member_ops.iter().any(|w| w.client == client && w.req == m.req) {
            return Ok(()); // a retry: the answer comes with the change
        }
        // A request whose deadline passed queues all the same: it is given
        // up (and answered) by `answer_members`, never started.
        if self.member_ops.len() >= MAX_WAITING_REQUESTS {
            return Err(Ignored("proposer: too many member requests waiting"));
        }
        info!(node = %Node::Proposer(self.cfg.id), op = ?m.op, "member request");
        if let MemberOp::Add { role: MemberRole::Acceptor, id, addr } = &m.op {
            self.joining.acceptors.insert(*id, addr.clone());
            self.acceptors.entry(*id).or_default();
        }
        let late_by_ms = m.deadline_ms.filter(|d| self.clock_ms > *d).map(|d| self.clock_ms - d);
        // What the acceptors were before this moment does not count: one that
        // answered a round ago may have lost its disk since. Ask them all again.
        let asked_round = self.probe_now();
        let w = Waiting {
            client,
            req: m.req,
            op: m.op,
            deadline_ms: m.deadline_ms,
            late_by_ms,
            epoch: m.epoch,
            asked_round,
        };
        self.member_ops.push(w);
        Ok(())
    }

    /// True when the configuration in force does what `op` asks, and so
    /// does the one a change under way leads to (a removal must not be
    /// answered while the addition of the same member is being decided).
    fn settled(&self, op: &MemberOp) -> bool {
        op.satisfied_by(&self.config()) && self.changing_to().is_none_or(|c| op.satisfied_by(c))
    }

    /// Why a request for `op` asked from `epoch` is refused, see [`stale`].
    fn stale(&self, op: &MemberOp, epoch: Option<u32>, config: &Config) -> Option<String> {
        stale(op, epoch, config).filter(|_| !self.defects.member_any_epoch)
    }

    /// True while `w`'s change may still be started: its deadline has not passed.
    fn in_time(&self, w: &Waiting) -> bool {
        w.deadline_ms.is_none_or(|d| self.clock_ms <= d)
    }

    /// When a fence may go out for `w` (see [`Self::answer_members`]): its
    /// deadline, plus how far behind ours another leader's clock may be.
    fn fence_from(w: &Waiting) -> Option<u64> {
        w.deadline_ms.map(|d| d.saturating_add(MAX_CLOCK_SKEW_MS))
    }

    /// Answers `client`'s request `req` for a change, and keeps the answer (see `member_answers`).
    fn member_reply(&mut self, client: ClientId, req: u64, config: Option<Config>, error: Option<String>) {
        let reply = MemberReply { req, config, error, leader: None };
        if self.member_answers.len() >= MAX_ANSWERED_CLIENTS && !self.member_answers.contains_key(&client) {
            self.member_answers.pop_first();
        }
        self.member_answers.insert(client, reply.clone());
        self.ready.send(Node::Client(client), Message::MemberReply(reply));
    }

    /// Answers the member requests the configuration in force satisfies;
    /// a proposer that no longer leads sends the others to the leader.
    ///
    /// A leader gives up a request whose deadline passed, and says why, once
    /// it has no change under way, nor one left by an earlier leader to
    /// re-propose, and a value it proposed [`MAX_CLOCK_SKEW_MS`] after the
    /// deadline is decided (`Phase2::fenced`; a no-op when no client value
    /// comes): a stop sign of a leader of a lower ballot is then never
    /// chosen afterwards. No leader proposes the change after its deadline
    /// by its own clock ([`Self::next_config`], `Phase2::change_to`); the
    /// margin covers a leader whose clock is behind ours by up to that
    /// much, so that its last chance came before our fence. One of a higher
    /// ballot than this leader's that proposed it in time, cut off from
    /// this one, may still get it decided, as with any request that timed
    /// out.
    pub(super) fn answer_members(&mut self) {
        if self.member_ops.is_empty() {
            return;
        }
        let config = self.config();
        let leading = matches!(self.phase, Phase::Leader(_));
        let may_give_up = matches!(&self.phase, Phase::Leader(p2) if !p2.changing() && p2.recovered());
        let quorum = self.quorum();
        let fenced = |p: &Proposer, from: Option<u64>| match (&p.phase, from) {
            (Phase::Leader(p2), Some(from)) => p2.fenced(&p.learner, quorum, from),
            _ => false,
        };
        // One fence at a time: a new one only for a deadline after the last one went out.
        let fence_wanted = match &self.phase {
            Phase::Leader(p2) if may_give_up => self
                .member_ops
                .iter()
                .filter_map(Self::fence_from)
                .any(|from| self.clock_ms > from && !p2.fence_after(&self.learner, quorum, from)),
            _ => false,
        };
        if let Phase::Leader(p2) = &mut self.phase {
            p2.fence_wanted = fence_wanted;
        }
        for w in std::mem::take(&mut self.member_ops) {
            if self.settled(&w.op) {
                self.member_reply(w.client, w.req, Some(config.clone()), None);
            } else if let Some(why) = self.stale(&w.op, w.epoch, &config).filter(|_| leading) {
                info!(node = %Node::Proposer(self.cfg.id), op = ?w.op, why, "member request refused");
                self.member_reply(w.client, w.req, Some(config.clone()), Some(why));
            } else if !leading {
                let reply = MemberReply { req: w.req, config: None, error: None, leader: self.leader() };
                self.ready.send(Node::Client(w.client), Message::MemberReply(reply));
            } else if may_give_up && !self.in_time(&w) && fenced(self, Self::fence_from(&w)) {
                let mut why = self.why_not_ready(&w, &config);
                if let Some(late) = w.late_by_ms.filter(|late| *late > LATE_ARRIVAL_MS) {
                    why += &format!(
                        "; it reached this leader {late} ms after its deadline: do the clocks of the client and the \
                         leader agree?"
                    );
                }
                info!(node = %Node::Proposer(self.cfg.id), op = ?w.op, why, "member request given up at its deadline");
                self.member_reply(w.client, w.req, None, Some(format!("given up at its deadline, not made: {why}")));
                if self.defects.member_past_deadline {
                    self.member_ops.push(Waiting { deadline_ms: None, ..w });
                }
            } else {
                self.member_ops.push(w);
            }
        }
        let wanted: Vec<NodeId> = self
            .member_ops
            .iter()
            .filter_map(|w| match w.op {
                MemberOp::Add { role: MemberRole::Acceptor, id, .. } => Some(id),
                _ => None,
            })
            .collect();
        self.joining.acceptors.retain(|id, _| wanted.contains(id));
    }

    /// On every tick: a leader whose window has nothing else to settle
    /// starts the next configuration change, if one is due and ready.
    pub(super) fn reconfigure(&mut self) {
        self.answer_members();
        let Phase::Leader(p2) = &self.phase else { return };
        if p2.changing() || !p2.recovered() {
            return;
        }
        let Some((config, deadline_ms)) = self.next_config() else { return };
        info!(node = %Node::Proposer(self.cfg.id), epoch = config.epoch, acceptors = ?config.acceptors, "changing the configuration");
        if let Phase::Leader(p2) = &mut self.phase {
            p2.change_to(config, deadline_ms);
        }
    }

    /// The configuration to change to next, if any change is due and
    /// ready, with the deadline of the operator's request it makes.
    fn next_config(&self) -> Option<(Config, Option<u64>)> {
        let current = self.config();
        let mut next = current.clone();
        next.epoch = current.epoch + 1;
        if current.epoch == 0 {
            for m in &mut next.acceptors {
                m.incarnation = self.reported(m.id);
            }
            // Every acceptor that answers is pinned; one that does not cannot
            // vote until it is let in later. So wait (ten election timeouts)
            // for all to answer, then pin as many as a bootstrap quorum (4 of
            // 5, 3 of 3): a minority of those may still lose its disk and the
            // cluster goes on. (A pin may be stale: an acceptor can lose its
            // disk right after its last answer; the more are pinned, the
            // more such losses the first configuration survives.)
            let all = next.acceptors.iter().all(|m| m.incarnation.is_some() && self.holds_log(m.id));
            let waited = match &self.phase {
                Phase::Leader(p2) => self.now.since(p2.since) >= 10 * self.cfg.election_timeout_ticks,
                _ => false,
            };
            let need = crate::quorum(0, next.acceptors.len());
            return (self.ready(&next) >= need && (all || waited)).then_some((next, None));
        }
        // First, a member that lost its state and copied the log again gets
        // its new incarnation pinned: the cluster is healthier for it.
        let rebuilt = next.acceptors.iter_mut().find(|m| {
            let reported = self.reported(m.id);
            reported.is_some() && reported != m.incarnation && self.holds_log(m.id)
        });
        if let Some(rebuilt) = rebuilt {
            rebuilt.incarnation = self.reported(rebuilt.id);
            if self.ready_to_run(&next) {
                return Some((next, None));
            }
            next = current.clone();
            next.epoch = current.epoch + 1;
        }
        // Operators' changes go in the order asked, one at a time; one
        // whose deadline passed is skipped (it is being given up), and one
        // asked from another epoch than this one waits (an earlier epoch's
        // is refused by `answer_members`; a later one's leader is behind).
        let w = self.member_ops.iter().find(|w| {
            let from_here = w.epoch.is_none_or(|e| e == current.epoch) || self.defects.member_any_epoch;
            self.in_time(w) && !w.op.satisfied_by(&current) && from_here
        })?;
        let (next, ready, need) = self.operator_change(w, next).ok()?;
        (ready >= need).then_some((next, w.deadline_ms))
    }

    /// `next` (the configuration in force, one epoch on) changed as `w`
    /// asks, with how many of its acceptors are ready by their answers
    /// since the request and how many must be; or why it cannot be built
    /// yet (the acceptor to add is not there).
    fn operator_change(&self, w: &Waiting, mut next: Config) -> Result<(Config, usize, usize), String> {
        // Only answers to the round sent when the request arrived, or later
        // ones, count. An acceptor may lose its disk right after it answered
        // a round, and an operator who saw it go down may be asking just
        // for that reason; by the answers before the request it would still
        // be ready, and a change counting it could leave the cluster
        // without a quorum for good.
        let since = w.asked_round;
        match &w.op {
            MemberOp::List => {}
            MemberOp::Add { role: MemberRole::Acceptor, id, addr } => {
                let Some(incarnation) = self.reported_since(*id, since) else {
                    return Err(format!(
                        "acceptor {id} has not answered at {addr} (is it started there, with the cluster's peer key?)"
                    ));
                };
                if !self.holds_log(*id) {
                    let behind = self.acceptors.get(id).map_or(0, |i| i.decided.0);
                    return Err(format!(
                        "acceptor {id} has not copied the decided log yet (it holds {behind} of {} slots)",
                        self.learner.decided().0
                    ));
                }
                next.acceptors.retain(|m| m.id != *id);
                next.acceptors.push(Member { id: *id, addr: addr.clone(), incarnation: Some(incarnation) });
                next.acceptors.sort_by_key(|m| m.id);
            }
            MemberOp::Add { role: MemberRole::Proposer, id, addr } => {
                next.proposers.retain(|m| m.id != *id);
                next.proposers.push(Member { id: *id, addr: addr.clone(), incarnation: None });
                next.proposers.sort_by_key(|m| m.id);
            }
            MemberOp::Remove { role: MemberRole::Acceptor, id } => next.acceptors.retain(|m| m.id != *id),
            MemberOp::Remove { role: MemberRole::Proposer, id } => next.proposers.retain(|m| m.id != *id),
        }
        // An operator's change waits until one more acceptor than a majority
        // of the new configuration is ready (when it has three or more):
        // one of them may lose its disk right after, and the new epoch must still decide.
        let n = next.acceptors.len();
        let need = (crate::majority(n) + usize::from(n >= 3)).min(n);
        let ready = self.ready_since(&next, since);
        Ok((next, ready, need))
    }

    /// Why `w`'s change was not made: what it still waits for.
    fn why_not_ready(&self, w: &Waiting, current: &Config) -> String {
        let mut next = current.clone();
        next.epoch = current.epoch + 1;
        match self.operator_change(w, next) {
            Err(why) => why,
            Ok((_, ready, need)) if ready < need => format!(
                "{ready} acceptors of the new configuration are up, pinned and hold the decided log (by their \
                 answers since the request); it needs {need}"
            ),
            Ok(_) => "an earlier change was under way or waiting".to_owned(),
        }
    }

    /// The incarnation acceptor `id` reported in a fresh probe round (see
    /// [`Proposer::fresh`]): what it is now (an older report may come from
    /// before it lost its disk).
    fn reported(&self, id: NodeId) -> Option<u64> {
        self.reported_since(id, 0)
    }

    /// The incarnation acceptor `id` reported, as [`Self::reported`], if
    /// that answer was to probe round `since` or a later one.
    fn reported_since(&self, id: NodeId, since: u64) -> Option<u64> {
        let (incarnation, round) = self.acceptors.get(&id)?.incarnation?;
        (self.fresh(round) && round >= since).then_some(incarnation)
    }

    /// True when acceptor `id` answers and holds the decided log (to within the slack).
    fn holds_log(&self, id: NodeId) -> bool {
        let decided = self.learner.decided().0;
        self.heard_lately(id)
            && self.acceptors.get(&id).is_some_and(|i| i.decided.0.saturating_add(REBUILD_SLACK_SLOTS) >= decided)
    }

    /// True when a majority of `config`'s acceptors could vote in it now.
    fn ready_to_run(&self, config: &Config) -> bool {
        self.ready(config) >= crate::majority(config.acceptors.len())
    }

    /// How many of `config`'s acceptors could vote in it now: pinned with
    /// the incarnation they report, answering, and holding the decided log.
    fn ready(&self, config: &Config) -> usize {
        self.ready_since(config, 0)
    }

    /// How many of `config`'s acceptors are [`Self::ready`] by answers to
    /// probe round `since` or later ones.
    fn ready_since(&self, config: &Config, since: u64) -> usize {
        config
            .acceptors
            .iter()
            .filter(|m| {
                m.incarnation.is_some() && self.reported_since(m.id, since) == m.incarnation && self.holds_log(m.id)
            })
            .count()
    }
}
