//! The acceptor: promises, accepts, keeps the decided log, and remembers all
//! of it on disk before it answers.
//!
//! Beside the votes of Paxos, an acceptor keeps the decided log: what it
//! accepted under a leader's ballot below that leader's `commit` (the
//! leader's decided prefix) is decided, and moves there; what it lacks it
//! copies from a proposer. So decided values stay on a majority of
//! acceptors, and proposers that lost their disks copy the log back from them.
//!
//! # Membership and amnesia
//!
//! An acceptor votes in a configuration epoch only as a member of that
//! epoch's configuration with its own incarnation (the random number its
//! store was created with). The first configuration the cluster decides pins
//! every acceptor's incarnation, so an acceptor that comes back on an empty
//! or replaced data dir has another one and cannot vote with what it forgot:
//! it answers `NotMember`, copies the decided log, and votes again once a
//! leader decided a configuration with its new incarnation (its rebuild).
//! Before that first configuration (epoch 0, the cluster file's), any
//! incarnation votes, and quorums are larger ([`crate::learner::quorum`]).

use std::collections::HashMap;

use paxos_proto::{
    Accept, Accepted, Ballot, CatchUp, CatchUpReply, Config, Epoch, Message, Nack, NackReason, Node, NodeId, Prepare,
    Probe, ProbeReply, Promise, PromiseEntry, Slot, StateReply, StateRequest, StatusReply, Value, Written,
};
use tracing::{debug, error, info, warn};

use crate::proposer::CATCH_UP_SWITCH_AFTER;
use crate::restart::{catch_up_reply, nonce, Copy, Frozen};
use crate::scrub::Scrub;
use crate::{
    round_ceiling, AcceptorOp, AcceptorState, Defects, Ignored, LogPage, ReadRequest, Ready, Tick, CLOCK_SKEW_SECS,
    MAX_BATCH_BYTES, MAX_SLOT_STEP,
};

/// Bytes a promise entry takes on the wire beside its value: the slot, the
/// ballot (epoch, round, proposer) and the JSON framing at their widest.
pub const PROMISE_ENTRY_OVERHEAD_BYTES: usize = 130;

/// The most decided entries an acceptor asks a proposer for at once.
pub const ACCEPTOR_CATCH_UP_LIMIT: u32 = 1024;

/// Ticks between catch-up requests of an acceptor that lacks decided entries.
pub const ACCEPTOR_CATCH_UP_TICKS: u64 = 5;

/// A copy of a proposer's state is given up after this many ticks without completing.
const ACCEPTOR_COPY_TICKS: u64 = 200;

/// Reads of the decided log an acceptor serves at once; more requests wait for a retry.
const MAX_PENDING_READS: usize = 64;

/// Mixed into the nonce seed for lease challenges, apart from catch-up nonces.
const CHALLENGE_DOMAIN: u64 = 0x6c65_6173_6563_6861;

/// Mixed into the nonce seed for the start's name and new incarnations.
const START_DOMAIN: u64 = 0x7374_6172_7469_6e63;

/// How an acceptor is set up.
#[derive(Clone, Debug)]
pub struct AcceptorConfig {
    /// This acceptor.
    pub id: NodeId,
    /// The cluster file's configuration: epoch 0.
    pub genesis: Config,
    /// A fresh random number: the incarnation if the store has none yet.
    pub incarnation: u64,
    /// Another fresh random number, kept secret: seeds the nonces of catch-up requests.
    pub nonce_seed: u64,
    /// Keep the newest this many decided slots; 0 keeps everything.
    pub retain_slots: u64,
    /// How long after a leader's last renewal this acceptor still names it
    /// in its probe answers (its lease; see [`Acceptor::lease_holder`]).
    /// Two heartbeats: a leader probes every acceptor at each of its heartbeats.
    pub lease_ticks: u64,
}

/// What an acceptor is doing, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// A voting member of the latest epoch it knows.
    Up,
    /// Listed in the latest configuration with another incarnation (it lost
    /// its state) or none yet: copying the decided log until a leader lets it vote.
    Rebuilding,
    /// Not in the latest configuration: waiting to be added (or removed).
    Joining,
}

impl Membership {
    /// The name operators see.
    pub fn name(self) -> &'static str {
        match self {
            Membership::Up => "up",
            Membership::Rebuilding => "rebuilding",
            Membership::Joining => "joining",
        }
    }
}

/// An acceptor of Multi-Paxos.
///
/// It promises only ballots at least as high as any it promised (an equal one
/// is a retransmission and gets the same answer); it accepts only ballots not
/// lower than its promise; its promise reports every undecided slot it
/// accepted at or above the requested one with the highest ballot accepted
/// there. Every change of state is an [`AcceptorOp`] in the same [`Ready`] as
/// the answer, so the answer leaves only once the change is on disk.
#[derive(Debug)]
pub struct Acceptor {
    cfg: AcceptorConfig,
    state: AcceptorState,
    ready: Ready<AcceptorOp>,
    defects: Defects,
    /// Rounds above this are refused; no limit until the clock is set.
    round_ceiling: u64,
    /// The wall clock as last set, in Unix ms (0: never set).
    clock_ms: u64,
    now: Tick,
    /// The highest decided prefix a proposer told us of, and that proposer.
    commit: Slot,
    source: Option<NodeId>,
    /// The last source that left a catch-up request unanswered
    /// [`CATCH_UP_SWITCH_AFTER`] times in a row: it is not made the source
    /// again by telling us of commits (only by the turn of the others).
    passed: Option<NodeId>,
    catch_up_after: Tick,
    /// The last catch-up request: whom we asked, from which slot, with which nonce.
    asked: Option<(NodeId, Slot, u64)>,
    /// How many times in a row that request was sent (it is answered when our log grows).
    asked_times: u32,
    /// Catch-up requests and copies of a proposer's state started (the counter of their nonces).
    requests: u64,
    /// A proposer's state being copied, to restart our decided log later (retention).
    copying: Option<Copy>,
    /// Our log's state, frozen for a proposer that copies it.
    frozen: Vec<Frozen>,
    /// Reads of the decided log in flight: who asked, the nonce to echo, and the first slot read.
    reads: HashMap<u64, (NodeId, u64, Slot)>,
    next_read: u64,
    /// Our passes over the decided log, after start and again each
    /// [`crate::SCRUB_AGAIN_TICKS`] ([`crate::scrub`]), and the id of the read in flight.
    scrub: Scrub,
    scrub_read: Option<u64>,
    /// The ballot we had promised when its proposer last renewed its lease
    /// (see [`Acceptor::lease_holder`]), and when.
    lease: Option<(Ballot, Tick)>,
    /// The challenge our probe answers carry, and how many we drew: a
    /// leader's probe renews the lease only by echoing the current one,
    /// which is then spent, so replaying its old probes renews nothing.
    challenge: u64,
    challenges: u64,
    /// This start, as our probe answers name it (drawn anew at each start).
    start: u64,
    /// The operations our store held when this start began: an earlier
    /// start's answer that said more was written is writes our disk lost.
    recovered_ops: u64,
    /// How many times this start found that our disk lost writes it had synced.
    writes_lost: u64,
    /// A read of our decided log failed, and no pass read all of it
    /// cleanly since ([`crate::scrub`]): the runtime says so in `/health`.
    damaged: bool,
}

impl Acceptor {
    /// An acceptor with state recovered from its store. A store without an
    /// identity (new, or lost) gets `cfg.incarnation`, persisted before anything else.
    pub fn new(cfg: AcceptorConfig, state: AcceptorState) -> Self {
        let scrub = Scrub::new(state.start, state.decided);
        let recovered_ops = state.ops;
        let start = nonce(cfg.nonce_seed ^ START_DOMAIN, 0);
        let mut acceptor = Acceptor {
            cfg,
            state,
            ready: Ready::default(),
            defects: Defects::default(),
            round_ceiling: u64::MAX,
            clock_ms: 0,
            now: Tick::ZERO,
            commit: Slot(0),
            source: None,
            passed: None,
            catch_up_after: Tick::ZERO,
            asked: None,
            asked_times: 0,
            requests: 0,
            copying: None,
            frozen: Vec::new(),
            reads: HashMap::new(),
            next_read: 0,
            scrub,
            scrub_read: None,
            lease: None,
            challenge: 0,
            challenges: 0,
            start,
            recovered_ops,
            writes_lost: 0,
            damaged: false,
        };
        acceptor.challenge = acceptor.next_challenge();
        if acceptor.state.incarnation == 0 {
            let incarnation = acceptor.cfg.incarnation.max(1);
            info!(node = %Node::Acceptor(acceptor.cfg.id), incarnation, "a new incarnation: this acceptor votes once a configuration names it");
            acceptor.persist(AcceptorOp::Identity(incarnation));
        }
        acceptor.commit = acceptor.state.decided;
        acceptor
    }

    /// The same acceptor with deliberate bugs, for the simulator's self-test.
    pub fn with_defects(mut self, defects: Defects) -> Self {
        self.defects = defects;
        self
    }

    /// This acceptor's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The state as the acceptor sees it (durable once the last `Ready` was persisted).
    pub fn state(&self) -> &AcceptorState {
        &self.state
    }

    /// The configuration of the latest epoch this acceptor knows.
    pub fn config(&self) -> &Config {
        self.state.epoch.as_ref().map_or(&self.cfg.genesis, |e| &e.config)
    }

    /// The proposer of the ballot we promised, while its lease lasts: within
    /// `lease_ticks` it gave live word that it leads (an accept with that
    /// ballot that brought a new vote, or a probe it sent as leader that
    /// echoed our current challenge; a replay can give neither), and we
    /// promised nothing higher since. Probe
    /// answers name it, so that a proposer that does not hear it (cut off
    /// until a heal, say) does not campaign and fence a live leader
    /// (pre-vote). Refusing nothing, it bears on no vote: only on who tries.
    pub fn lease_holder(&self) -> Option<NodeId> {
        self.lease
            .filter(|(b, at)| {
                *b == self.state.promised && (self.now.since(*at) < self.cfg.lease_ticks || self.defects.endless_lease)
            })
            .map(|(b, _)| b.proposer)
    }

    /// A challenge never drawn before, by this start or any other (the seed is fresh at each start).
    fn next_challenge(&mut self) -> u64 {
        self.challenges += 1;
        nonce(self.cfg.nonce_seed ^ CHALLENGE_DOMAIN, self.challenges)
    }

    /// Whether it votes, rebuilds, or waits to be added.
    pub fn membership(&self) -> Membership {
        let me = self.config().acceptors.iter().find(|m| m.id == self.cfg.id);
        match me {
            Some(_) if self.defects.amnesia => Membership::Up,
            Some(m) if self.state.epoch.is_none() || m.incarnation == Some(self.state.incarnation) => Membership::Up,
            Some(_) => Membership::Rebuilding,
            None => Membership::Joining,
        }
    }

    /// Handles one message.
    ///
    /// # Errors
    /// [`Ignored`] when the message is not for an acceptor or its sender may not send it;
    /// the state is then unchanged and nothing is sent.
    pub fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        let Node::Proposer(proposer) = from else {
            return Err(Ignored("acceptor: sender is not a proposer"));
        };
        match msg {
            Message::Prepare(m) => self.on_prepare(proposer, m),
            Message::Accept(m) => self.on_accept(proposer, m),
            Message::Probe(m) => self.on_probe(proposer, m),
            Message::CatchUp(m) => self.on_catch_up(proposer, m),
            Message::CatchUpReply(m) => self.on_catch_up_reply(proposer, m),
            Message::StateRequest(m) => self.on_state_request(proposer, m),
            Message::StateReply(m) => self.on_state_reply(proposer, m),
            _ => Err(Ignored("acceptor: not an acceptor message")),
        }
    }

    /// Advances the clock: asks for decided entries it lacks.
    pub fn tick(&mut self) {
        self.now = self.now.next();
        self.copy_state();
        self.catch_up();
        self.scrub();
    }

    /// The next page of the pass over our decided log, if one is due. A
    /// read that fails counts as any (the runtime says so in `/health`).
    fn scrub(&mut self) {
        if self.defects.no_scrub || self.reads.len() >= MAX_PENDING_READS {
            return;
        }
        let log = (!self.defects.scrub_once).then_some((self.state.start, self.state.decided));
        if let Some(from) = self.scrub.due(self.now, log) {
            let id = self.next_read;
            self.next_read += 1;
            self.scrub_read = Some(id);
            let limit = self.scrub.page_entries();
            self.ready.reads.push(ReadRequest { id, from, limit, max_bytes: MAX_BATCH_BYTES });
        }
    }

    /// The same acceptor with its pass over the decided log already over,
    /// and no next one: for tests that count every read.
    #[cfg(test)]
    pub(crate) fn scrubbed(mut self) -> Self {
        self.scrub.stop();
        self
    }

    /// The same acceptor with `ticks` from the end of a pass over its decided
    /// log to the next ([`crate::SCRUB_AGAIN_TICKS`] unless set; 0: none).
    pub fn with_scrub_again_after(mut self, ticks: u64) -> Self {
        self.scrub.again_after(ticks);
        self
    }

    /// The same acceptor with `ticks` from a failed read of its decided log
    /// to the pass that reads it again ([`crate::SCRUB_RETRY_TICKS`] unless
    /// set; 0: none), doubling while passes keep failing.
    pub fn with_scrub_retry_after(mut self, ticks: u64) -> Self {
        self.scrub.retry_after(ticks);
        self
    }

    /// The same acceptor with passes over its decided log that ask for at
    /// most `entries` a page ([`crate::SCRUB_PAGE_ENTRIES`] unless set): the
    /// simulator's logs are short, and its passes must page too.
    pub fn with_scrub_page_entries(mut self, entries: usize) -> Self {
        self.scrub.set_page_entries(entries);
        self
    }

    /// A read of our decided log failed, and no pass read all of it
    /// cleanly since (see the field).
    pub fn damaged(&self) -> bool {
        self.damaged
    }

    /// Takes what was produced since the last call.
    pub fn take_ready(&mut self) -> Ready<AcceptorOp> {
        std::mem::take(&mut self.ready)
    }

    /// A page of the decided log that was read for a proposer's catch-up.
    pub fn on_read(&mut self, id: u64, page: LogPage) {
        if self.defects.any_read_clears {
            self.damaged = false;
        }
        if self.scrub_read == Some(id) {
            self.scrub_read = None;
            let ended = self.scrub.on_page(&self.defects.scrub_page(page));
            let (me, sticks) = (Node::Acceptor(self.cfg.id), self.defects.damage_sticks);
            crate::scrub::after_page(me, ended, &mut self.damaged, sticks, "we serve our log again");
            return;
        }
        let Some((to, nonce, _)) = self.reads.remove(&id) else { return };
        self.on_read_page(to, nonce, page);
    }

    fn on_read_page(&mut self, to: NodeId, nonce: u64, page: LogPage) {
        let entries = page.entries.into_iter().map(|e| e.value).collect();
        let (decided, start, epoch) = (self.state.decided, self.state.start, self.state.epoch.as_ref());
        let reply = catch_up_reply(nonce, page.from, entries, decided, start, epoch);
        self.ready.send(Node::Proposer(to), Message::CatchUpReply(reply));
    }

    /// A read for a proposer's catch-up failed: no answer, so that the
    /// proposer asks another node after its retries. Our decided log is
    /// damaged until a later pass reads all of it cleanly.
    pub fn on_read_failed(&mut self, id: u64) {
        self.damaged = true;
        if self.scrub_read == Some(id) {
            self.scrub_read = None;
            self.scrub.on_failed();
            return;
        }
        self.scrub.on_other_failed(self.now);
        let Some((to, nonce, from)) = self.reads.remove(&id) else { return };
        if self.defects.failed_read_as_end {
            let start = self.state.start;
            self.on_read_page(to, nonce, LogPage { start, from, entries: Vec::new() });
        }
    }

    /// A status report (the runtime fills in `req`, `failed` and counters).
    pub fn status(&self) -> StatusReply {
        StatusReply {
            req: 0,
            role: "acceptor".into(),
            failed: false,
            leader: None,
            ballot: self.state.promised,
            decided: self.state.decided,
            peers_heard: Vec::new(),
            counters: [("writes_lost".to_owned(), self.writes_lost)].into(),
            state: self.membership().name().into(),
            epoch: self.state.epoch_number(),
            version: String::new(),
            commit: String::new(),
        }
    }

    /// Phase 1b. A ballot only its owner may use: a proposer preparing
    /// someone else's ballot is forging and is ignored.
    fn on_prepare(&mut self, from: NodeId, m: Prepare) -> Result<(), Ignored> {
        if m.ballot.proposer != from {
            return Err(Ignored("acceptor: prepare with another proposer's ballot"));
        }
        self.check_round(m.ballot)?;
        for wrote in m.wrote {
            self.check_written(from, wrote);
        }
        if let Some(epoch) = m.epoch.filter(|e| e.config.epoch == m.ballot.epoch) {
            if epoch.config.epoch > self.state.epoch_number() && !self.enter(from, epoch) {
                // Not before our decided log holds every slot of the epochs before (we copy them now).
                self.nack(from, m.ballot, NackReason::UnknownEpoch);
                return Ok(());
            }
        }
        self.check_proposer(m.ballot)?;
        if let Err(reason) = self.may_vote(m.ballot) {
            self.nack(from, m.ballot, reason);
            return Ok(());
        }
        self.promise(m.ballot);
        let promise = self.promise_page(m.ballot, m.from);
        self.ready.send(Node::Proposer(from), Message::Promise(promise));
        Ok(())
    }

    /// Phase 2b: accept every entry unless a higher ballot was promised; then
    /// move what the leader says is decided into the decided log.
    fn on_accept(&mut self, from: NodeId, m: Accept) -> Result<(), Ignored> {
        if m.ballot.proposer != from {
            return Err(Ignored("acceptor: accept with another proposer's ballot"));
        }
        self.check_round(m.ballot)?;
        let limit = self.frontier().0.saturating_add(MAX_SLOT_STEP);
        if m.entries.iter().any(|e| e.slot.0 >= limit) && !self.defects.unbounded {
            return Err(Ignored("acceptor: accept of a slot too far ahead of everything it knows"));
        }
        self.check_proposer(m.ballot)?;
        self.heard_commit(from, m.commit);
        if let Err(reason) = self.may_vote(m.ballot) {
            self.nack(from, m.ballot, reason);
            return Ok(());
        }
        if m.ballot > self.state.promised {
            self.promise(m.ballot);
        }
        let epoch_start = self.state.epoch.as_ref().map_or(Slot(0), |e| e.start);
        let mut slots = Vec::with_capacity(m.entries.len());
        let mut new_votes = 0;
        for e in m.entries {
            if e.slot < self.state.decided || e.slot < epoch_start {
                // Decided, or a slot of an earlier epoch: nothing to vote on here.
                continue;
            }
            match self.state.accepted.get(&e.slot) {
                Some((b, v)) if *b == m.ballot => {
                    // A retransmission. One ballot proposes one value per slot;
                    // a different value here is a forgery, and voting for it
                    // would let two values reach a quorum under one ballot.
                    if *v != e.value {
                        continue;
                    }
                }
                Some((b, _)) if *b > m.ballot && !self.defects.accept_ignores_promise => {
                    // Unreachable with the promise check above (accepted ballots
                    // never exceed the promise); kept as a second line of defence.
                    continue;
                }
                _ => {
                    self.persist(AcceptorOp::Accept { slot: e.slot, ballot: m.ballot, value: e.value });
                    new_votes += 1;
                }
            }
            slots.push(e.slot);
        }
        if !self.defects.accept_ignores_promise {
            debug_assert!(
                slots.iter().all(|s| self.state.accepted[s].0 <= self.state.promised),
                "an acceptor never holds an accepted ballot above its promise"
            );
        }
        self.learn_committed(m.ballot, m.commit);
        // Only a proposer that completed phase 1 with a ballot sends accepts
        // with it; a new vote is live word of it (a replayed accept brings none).
        if new_votes > 0 {
            self.lease = Some((m.ballot, self.now));
        }
        if slots.is_empty() {
            return Ok(());
        }
        debug!(node = %Node::Acceptor(self.cfg.id), ballot = %m.ballot, slots = slots.len(), "accepted");
        // Only the leader counts votes: followers learn from its commit index.
        let written = Some(self.written());
        self.ready.send(Node::Proposer(from), Message::Accepted(Accepted { ballot: m.ballot, slots, written }));
        Ok(())
    }

    /// A proposer asks what we promised (before its first campaign), and tells us how far it learned.
    fn on_probe(&mut self, from: NodeId, m: Probe) -> Result<(), Ignored> {
        for wrote in m.wrote {
            self.check_written(from, wrote);
        }
        self.heard_commit(from, m.decided);
        if m.leading && self.state.promised.proposer == from && m.echo == self.challenge {
            // It leads, the highest ballot we promised is its own (its latest
            // is no lower), and it heard our last answer: a live round trip,
            // not a replay. The challenge is spent.
            self.lease = Some((self.state.promised, self.now));
            self.challenge = self.next_challenge();
        }
        // Promised ballots are durable once their Ready was persisted, and
        // Readys run in order, so this answer rests on disk.
        let reply = ProbeReply {
            nonce: m.nonce,
            promised: self.state.promised,
            decided: self.state.decided,
            incarnation: self.state.incarnation,
            epoch: self.state.epoch_number(),
            joining: self.membership() != Membership::Up,
            leader: self.lease_holder(),
            challenge: self.challenge,
            clock_ms: self.clock_ms,
            written: Some(self.written()),
            digest: self.state.log.point,
        };
        self.ready.send(Node::Proposer(from), Message::ProbeReply(reply));
        Ok(())
    }

    /// How much we have written, for an answer: every operation applied so
    /// far is in this step's [`Ready`] or an earlier one, and the answer
    /// leaves only once they are durable.
    fn written(&self) -> Written {
        Written { incarnation: self.state.incarnation, start: self.start, ops: self.state.ops }
    }

    /// A proposer tells us what an answer of ours said we had written. Our
    /// count only grows, and a restart folds exactly what the disk kept: an
    /// earlier start's answer (as this incarnation) that counted more than
    /// we held when this start began means our disk lost writes it had
    /// synced and we answered about (a zeroed tail, a data dir rolled back
    /// to an older copy). Our promises and votes may be missing some we
    /// made: voting on with them could break agreement. So we become a new
    /// incarnation, which from epoch 1 on votes only once a leader's
    /// configuration pins it (before, any incarnation votes, and quorums
    /// are larger), and rebuild as after a lost disk. With authentication
    /// on, only a holder of the cluster key can send this (a replay sends
    /// only what was true); a false claim costs a rebuild, never a value.
    fn check_written(&mut self, from: NodeId, wrote: Written) {
        let this_start = wrote.start == self.start && !self.defects.written_any_start;
        if wrote.incarnation != self.state.incarnation
            || this_start
            || wrote.ops <= self.recovered_ops
            || self.defects.ignores_written
        {
            return;
        }
        let old = self.state.incarnation;
        let mut n = self.writes_lost;
        let incarnation = loop {
            n += 1;
            let i = nonce(self.cfg.nonce_seed ^ START_DOMAIN, n);
            if i != old {
                break i;
            }
        };
        self.writes_lost += 1;
        error!(
            node = %Node::Acceptor(self.cfg.id), proposer = %Node::Proposer(from), written = wrote.ops,
            held = self.recovered_ops, incarnation,
            "a proposer heard us answer with more written than our disk held at this start: it lost writes it \
             had synced; we vote no more with what it kept, and rebuild from our peers as a new incarnation"
        );
        self.lease = None;
        self.persist(AcceptorOp::Reincarnate(incarnation));
        assert_ne!(self.state.incarnation, old, "a new incarnation after lost writes");
        assert!(
            self.state.epoch.is_none() || self.membership() != Membership::Up || self.defects.amnesia,
            "no configuration pins an incarnation drawn just now"
        );
        // Every answer from here on is of the new incarnation and of this start.
        self.recovered_ops = 0;
    }

    /// A proposer copies decided entries from us: read them from the store.
    fn on_catch_up(&mut self, from: NodeId, m: CatchUp) -> Result<(), Ignored> {
        if self.reads.len() >= MAX_PENDING_READS {
            return Err(Ignored("acceptor: too many reads in flight"));
        }
        let from_slot = m.from.min(self.state.decided);
        let id = self.next_read;
        self.next_read += 1;
        self.reads.insert(id, (from, m.nonce, from_slot));
        let limit = m.limit.min(ACCEPTOR_CATCH_UP_LIMIT) as usize;
        self.ready.reads.push(ReadRequest { id, from: from_slot, limit, max_bytes: MAX_BATCH_BYTES });
        Ok(())
    }

    /// Decided entries from a proposer: appended to the decided log in order.
    fn on_catch_up_reply(&mut self, from: NodeId, m: CatchUpReply) -> Result<(), Ignored> {
        let decided = self.state.decided;
        if m.from > decided {
            // Only the answer to our last request, echoing its nonce, restarts the log (see `restart`).
            let asked = m.nonce != 0 && self.asked == Some((from, decided, m.nonce));
            let retained = self.cfg.retain_slots > 0;
            // (No entries: its log starts at its decided prefix, nothing decided since it restarted.)
            let holds = !m.entries.is_empty() || m.from == m.decided;
            if !holds || m.from > m.decided || !asked || !retained {
                return Ok(());
            }
            // The proposer's log starts later (retention deleted what lies
            // between): our log restarts with the state its log built.
            self.restart_later(from, m.from, m.epoch);
            return Ok(());
        }
        let before = self.state.decided;
        for (i, value) in m.entries.into_iter().enumerate() {
            let slot = Slot(m.from.0 + i as u64);
            if slot == self.state.decided {
                self.learn(slot, value);
            }
        }
        self.commit = self.commit.max(m.decided.min(Slot(self.state.decided.0.saturating_add(MAX_SLOT_STEP))));
        if self.state.decided > before && self.state.decided < self.commit {
            // Progress, and more to copy: ask again at once rather than at the next tick.
            self.catch_up_after = self.now;
            self.catch_up();
        }
        Ok(())
    }

    /// A proposer told us that every slot below `commit` is decided.
    fn heard_commit(&mut self, from: NodeId, commit: Slot) {
        let bounded = commit.min(Slot(self.state.decided.0.saturating_add(MAX_SLOT_STEP)));
        // The latest to tell us of the most is who we copy from (a new leader
        // announcing the same commit replaces one that may be gone).
        if (bounded >= self.commit || self.source.is_none()) && self.passed != Some(from) {
            self.source = Some(from);
        }
        self.commit = self.commit.max(bounded);
    }

    /// Moves into the decided log every slot below `commit` that we accepted under `ballot`,
    /// the ballot of the leader that says they are decided: its values are the decided ones.
    fn learn_committed(&mut self, ballot: Ballot, commit: Slot) {
        while self.state.decided < commit {
            let slot = self.state.decided;
            let Some(entry) = self.state.accepted.first_entry() else { break };
            assert!(*entry.key() >= slot, "nothing below the decided prefix stays accepted");
            if *entry.key() != slot || entry.get().0 != ballot {
                break;
            }
            // Taken rather than copied: the `Learn` below removes it from `accepted` anyway.
            let (_, value) = entry.remove();
            self.learn(slot, value);
        }
    }

    fn learn(&mut self, slot: Slot, value: Value) {
        let config = match &value {
            Value::Config(config) => Some(config.clone()),
            _ => None,
        };
        self.persist(AcceptorOp::Learn { slot, value });
        if let Some(config) = config {
            self.join(Epoch { start: slot.next(), config });
        }
        if let Some(below) = crate::retention_point(slot, self.cfg.retain_slots) {
            if below > self.state.start {
                self.persist(AcceptorOp::Retain(below));
            }
        }
    }

    /// The proposer we asked says its log starts at `restart`, beyond our
    /// decided prefix: copy the state its log built (the clients' sessions,
    /// which a proposer that copies from us later needs), then restart there.
    fn restart_later(&mut self, from: NodeId, restart: Slot, epoch: Option<Epoch>) {
        if self.copying.is_some() {
            return;
        }
        let decided = self.state.decided;
        self.requests += 1;
        let nonce = nonce(self.cfg.nonce_seed, self.requests);
        let by = Node::Proposer(from);
        info!(node = %Node::Acceptor(self.cfg.id), slot = decided.0, restart = restart.0, from = %by, "the decided log restarts later: copying the state there");
        let copy = Copy::new(by, nonce, decided, restart, epoch, self.now);
        self.ready.send(by, Message::StateRequest(copy.request()));
        self.copying = Some(copy);
    }

    /// At a tick: asks again for a page whose answer is late, or gives the copy up.
    fn copy_state(&mut self) {
        let Some(c) = &mut self.copying else { return };
        if c.expired(self.now, ACCEPTOR_COPY_TICKS) {
            warn!(node = %Node::Acceptor(self.cfg.id), from = %c.from, "copying a proposer's state takes too long; giving up for now");
            self.copying = None;
        } else if let Some(request) = c.due(self.now, ACCEPTOR_CATCH_UP_TICKS) {
            self.ready.send(c.from, Message::StateRequest(request));
        }
    }

    /// A proposer copies our log's state: a page of it, frozen at its first request.
    fn on_state_request(&mut self, from: NodeId, m: StateRequest) -> Result<(), Ignored> {
        let to = Node::Proposer(from);
        let reply = Frozen::serve(&mut self.frozen, to, &m, &self.state.log, self.now)?;
        self.ready.send(to, Message::StateReply(reply));
        Ok(())
    }

    /// A page of the state we copy: the next, or the last, which restarts the log.
    fn on_state_reply(&mut self, from: NodeId, m: StateReply) -> Result<(), Ignored> {
        let Some(c) = &mut self.copying else {
            return Err(Ignored("acceptor: a state page of no copy we asked for"));
        };
        let by = Node::Proposer(from);
        if !c.page(by, m, self.now)? {
            self.ready.send(by, Message::StateRequest(c.request()));
            return Ok(());
        }
        let decided = self.state.decided;
        let copy = self.copying.take().expect("matched above");
        let node = Node::Acceptor(self.cfg.id);
        let Some((at, epoch, state)) = copy.finish(decided, self.defects.stateless_restart).logged(node, decided)
        else {
            return Ok(());
        };
        self.persist(AcceptorOp::Retain(at));
        if let Some(epoch) = epoch {
            // The configuration in force where the log restarts: the log can no longer tell us.
            self.join(epoch);
        }
        if let Some(c) = &state {
            for (first, sessions) in c.chunks() {
                self.persist(AcceptorOp::Sessions { clock: c.clock, first, sessions });
            }
        }
        self.commit = self.commit.max(at);
        self.catch_up_after = self.now;
        Ok(())
    }

    /// Asks the proposer that told us of decided slots we lack for them.
    fn catch_up(&mut self) {
        if self.state.decided >= self.commit || self.now < self.catch_up_after || self.copying.is_some() {
            return;
        }
        let Some(mut to) = self.source else { return };
        self.catch_up_after = self.now + ACCEPTOR_CATCH_UP_TICKS;
        let decided = self.state.decided;
        // The source asked from the same slot this many times in a row
        // without an answer may be gone, or unable to read its log (a
        // damaged segment answers nothing) while it still tells us of
        // commits: the next proposer of the configuration becomes the
        // source, and so on round it, until one answers.
        let unanswered = self.asked_times >= CATCH_UP_SWITCH_AFTER
            && self.asked.is_some_and(|(p, d, _)| p == to && d == decided)
            && !self.defects.catch_up_never_switches;
        if unanswered {
            self.passed = Some(to);
            to = self.proposer_after(to);
            self.source = Some(to);
        }
        // A request asked again (same proposer, same slot) keeps its nonce, so that a late answer still counts.
        let nonce = match self.asked {
            Some((p, d, nonce)) if p == to && d == decided => {
                self.asked_times += 1;
                nonce
            }
            _ => {
                self.asked_times = 1;
                self.requests += 1;
                nonce(self.cfg.nonce_seed, self.requests)
            }
        };
        let request = CatchUp { from: decided, limit: ACCEPTOR_CATCH_UP_LIMIT, nonce };
        self.asked = Some((to, decided, nonce));
        self.ready.send(Node::Proposer(to), Message::CatchUp(request));
    }

    /// The proposer after `p` in the configuration we know, by id, round
    /// the end (`p` itself when it is the only one).
    fn proposer_after(&self, p: NodeId) -> NodeId {
        let ids = self.config().proposers.iter().map(|m| m.id);
        ids.clone().filter(|id| *id > p).min().or_else(|| ids.filter(|id| *id != p).min()).unwrap_or(p)
    }

    /// A proposer campaigns in a later epoch: we join it once our decided log
    /// holds every slot before it, so that whoever later finds us in that
    /// epoch can copy from us the configuration that started it (and
    /// everything before), even if every proposer lost its disk. The stop
    /// sign itself comes with the prepare; what lies before it we copy from
    /// the proposer. Returns whether we joined.
    fn enter(&mut self, from: NodeId, epoch: Epoch) -> bool {
        let Some(stop) = epoch.start.0.checked_sub(1).map(Slot) else {
            self.join(epoch);
            return true;
        };
        self.heard_commit(from, epoch.start);
        if self.state.decided == stop {
            self.learn(stop, Value::Config(epoch.config.clone()));
        }
        if self.state.decided < epoch.start {
            self.catch_up();
            return false;
        }
        self.join(epoch);
        true
    }

    /// Learns of a configuration epoch whose earlier slots are all in our
    /// decided log (from a prepare of that epoch, or from the decided log
    /// itself): a later epoch than any known.
    fn join(&mut self, epoch: Epoch) {
        if epoch.config.epoch <= self.state.epoch_number() {
            return;
        }
        let member =
            epoch.config.acceptors.iter().any(|m| m.id == self.cfg.id && m.incarnation == Some(self.state.incarnation));
        info!(node = %Node::Acceptor(self.cfg.id), epoch = epoch.config.epoch, start = epoch.start.0, member, "joined a configuration epoch");
        self.persist(AcceptorOp::Join(epoch));
    }

    /// The ballot's proposer must be a proposer of the ballot's epoch, as far as we know it.
    fn check_proposer(&self, ballot: Ballot) -> Result<(), Ignored> {
        let config = if ballot.epoch == 0 {
            &self.cfg.genesis
        } else if ballot.epoch == self.state.epoch_number() {
            self.config()
        } else {
            return Ok(()); // another epoch: refused by `may_vote` with the reason
        };
        if config.proposers.iter().any(|p| p.id == ballot.proposer) {
            Ok(())
        } else {
            Err(Ignored("acceptor: a ballot of a proposer that is no member of its epoch"))
        }
    }

    /// Whether we may vote for `ballot`: it must be of the epoch we are in,
    /// we a member of it with our incarnation, and the ballot not below our promise.
    fn may_vote(&self, ballot: Ballot) -> Result<(), NackReason> {
        let joined = self.state.epoch_number();
        if ballot.epoch > joined {
            return Err(NackReason::UnknownEpoch);
        }
        if ballot.epoch < joined || ballot < self.state.promised {
            return if self.defects.accept_ignores_promise { Ok(()) } else { Err(NackReason::Promised) };
        }
        match self.membership() {
            Membership::Up => Ok(()),
            Membership::Rebuilding | Membership::Joining => Err(NackReason::NotMember),
        }
    }

    /// Refuses a ballot whose round is above the ceiling of the clock (see [`round_ceiling`]).
    fn check_round(&self, ballot: Ballot) -> Result<(), Ignored> {
        if ballot.round > self.round_ceiling && !self.defects.unbounded {
            return Err(Ignored("acceptor: a round above the ceiling of the clock"));
        }
        Ok(())
    }

    /// The wall clock, in Unix milliseconds, for the round ceiling and the
    /// probe answers (`clock_ms`).
    pub fn set_clock(&mut self, unix_ms: u64) {
        self.round_ceiling = round_ceiling((unix_ms / 1000).saturating_add(CLOCK_SKEW_SECS));
        self.clock_ms = unix_ms;
    }

    /// One past the highest slot this acceptor knows of: accepted, or decided.
    fn frontier(&self) -> Slot {
        let accepted = self.state.accepted.keys().next_back().map_or(Slot(0), |s| s.next());
        accepted.max(self.state.decided)
    }

    fn persist(&mut self, op: AcceptorOp) {
        self.state.apply(&op);
        if self.defects.unlogged_promise && matches!(op, AcceptorOp::Promise(_)) {
            return;
        }
        self.ready.persist.push(op);
    }

    fn promise(&mut self, ballot: Ballot) {
        if ballot > self.state.promised {
            info!(node = %Node::Acceptor(self.cfg.id), ballot = %ballot, "promised");
            self.persist(AcceptorOp::Promise(ballot));
        }
        assert!(self.state.promised >= ballot, "promise never goes down");
    }

    fn nack(&mut self, to: NodeId, ballot: Ballot, reason: NackReason) {
        debug!(node = %Node::Acceptor(self.cfg.id), ballot = %ballot, promised = %self.state.promised, ?reason, "nack");
        let nack = Nack { ballot, promised: self.state.promised, reason };
        self.ready.send(Node::Proposer(to), Message::Nack(nack));
    }

    /// The page of a promise that starts at `from` and fits one datagram.
    fn promise_page(&self, ballot: Ballot, from: Slot) -> Promise {
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut to = from;
        let mut done = true;
        for (slot, (b, value)) in self.state.accepted.range(from..) {
            let len = value.wire_len() + PROMISE_ENTRY_OVERHEAD_BYTES;
            if !entries.is_empty() && bytes + len > MAX_BATCH_BYTES {
                done = false;
                break;
            }
            bytes += len;
            entries.push(PromiseEntry { slot: *slot, ballot: *b, value: value.clone() });
            to = slot.next();
        }
        let (decided, incarnation, written) = (self.state.decided, self.state.incarnation, Some(self.written()));
        Promise { ballot, from, to, done, decided, incarnation, entries, written }
    }
}

impl crate::Role for Acceptor {
    type State = AcceptorState;

    fn me(&self) -> Node {
        Node::Acceptor(self.cfg.id)
    }

    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored> {
        Acceptor::handle(self, from, msg)
    }

    fn tick(&mut self) {
        Acceptor::tick(self);
    }

    fn set_clock(&mut self, unix_ms: u64) {
        Acceptor::set_clock(self, unix_ms);
    }

    fn take_ready(&mut self) -> Ready<AcceptorOp> {
        Acceptor::take_ready(self)
    }

    /// Every change of the state is an op of the `Ready` it was made in
    /// (`Acceptor::persist`), so once that is taken the state is their fold.
    fn folded(&self) -> Option<&AcceptorState> {
        assert!(self.ready.persist.is_empty(), "the state is the fold of the ops taken only right after take_ready");
        Some(&self.state)
    }

    fn on_read(&mut self, id: u64, page: LogPage) {
        Acceptor::on_read(self, id, page);
    }

    fn on_read_failed(&mut self, id: u64) {
        Acceptor::on_read_failed(self, id);
    }

    fn damaged(&self) -> bool {
        Acceptor::damaged(self)
    }

    fn status(&self) -> StatusReply {
        Acceptor::status(self)
    }

    /// The acceptor logs every new promise itself.
    fn view(&self) -> Option<crate::View> {
        None
    }

    fn members(&self) -> Vec<(Node, String)> {
        crate::role::addresses(self.config())
    }
}

#[cfg(test)]
mod tests;
