//! The learner: which slots are decided, in order, and which requests they answer.
//!
//! A slot is decided when a quorum of the acceptors of the slot's
//! configuration epoch accepted it under one ballot of that epoch. One ballot
//! proposes one value per slot, so the leader's learner needs the votes
//! (acceptors' `Accepted`, which go to the ballot's proposer alone) and the
//! value of that ballot, and decides when it has both. A follower's learner
//! has the values of the leader's `Accept`s (copied to every proposer) and
//! learns those below the leader's commit index
//! ([`Learner::learn_committed`]), as an acceptor does. Decided values also
//! arrive whole from peers that already learned them (catch-up).
//!
//! The log is applied in order, without gaps, through a [`LogState`]:
//! applying deduplicates client requests (a command whose `(client, seq)` is
//! not above its client's live session is a retry that landed twice and
//! counts as a no-op), keeps the log's clock, and follows the configuration
//! (a `Config` value ends its epoch; the next slot starts the next one).
//! Every learner applies the same log in the same order, so every learner
//! makes the same calls. The learner keeps only the newest decided values
//! (a bounded cache); the rest are read back from the store.

use std::collections::{BTreeMap, VecDeque};

use paxos_proto::{Ballot, ClientId, Command, Config, Epoch, NodeId, SessionEntry, Slot, Value};
use smallvec::SmallVec;

use crate::digest::Digests;
use crate::storage::{LogState, Session};
use crate::Ignored;

/// How far beyond its decided prefix a learner keeps track of slots. Every
/// slot in flight lies within a leader's window of the decided ones; a
/// learner further behind catches up from a peer instead, and nothing a peer
/// or acceptor sends can make it track more than this many slots.
pub const MAX_PENDING_AHEAD: u64 = 1 << 16;

/// The newest decided values a learner keeps in memory, by count...
pub const CACHE_ENTRIES: usize = 8192;

/// ...and by bytes of values.
pub const CACHE_BYTES: usize = 8 << 20;

/// Ballots a learner keeps proposals or votes of for one slot, at most: a
/// slot sees one ballot, or a few across leader changes; beyond this, what a
/// new ballot proposes or gets votes for here is not tracked (the slot is
/// then learned from a commit index or a peer), so a forging member cannot
/// grow a slot without bound.
pub const MAX_BALLOTS_PER_SLOT: usize = 64;

/// One slot above the decided prefix that we know something about.
#[derive(Debug, Default)]
struct Pending {
    /// The value, once known to be decided.
    decided: Option<Value>,
    /// The value each ballot proposed here.
    proposals: ByBallot<Value>,
    /// Per ballot, the acceptors that accepted it here.
    votes: ByBallot<Voters>,
}

/// The acceptors that accepted one ballot at one slot: inline up to four,
/// the most a slot counts before it is decided with five acceptors (four of
/// five in epoch 0), so counting votes allocates nothing; more spill to the heap.
type Voters = SmallVec<[NodeId; 4]>;

/// A few values by ballot, in ballot order. A slot sees one ballot, rarely a
/// few: a sorted vector that holds the first one inline does without any
/// allocation what a `BTreeMap` did with a node of eleven, per slot and
/// twice, on the leader's hot path.
#[derive(Debug)]
struct ByBallot<V>(SmallVec<[(Ballot, V); 1]>);

impl<V> Default for ByBallot<V> {
    fn default() -> Self {
        ByBallot(SmallVec::new())
    }
}

impl<V> ByBallot<V> {
    fn find(&self, ballot: &Ballot) -> Result<usize, usize> {
        self.0.binary_search_by(|(b, _)| b.cmp(ballot))
    }

    fn get(&self, ballot: &Ballot) -> Option<&V> {
        self.find(ballot).ok().map(|i| &self.0[i].1)
    }

    fn contains_key(&self, ballot: &Ballot) -> bool {
        self.find(ballot).is_ok()
    }

    /// The value of `ballot`, inserted by `make` if it has none and there is
    /// room ([`MAX_BALLOTS_PER_SLOT`]); `None` when there is not.
    fn get_or_insert_with(&mut self, ballot: Ballot, make: impl FnOnce() -> V) -> Option<&mut V> {
        let i = match self.find(&ballot) {
            Ok(i) => i,
            Err(_) if self.0.len() >= MAX_BALLOTS_PER_SLOT => return None,
            Err(i) => {
                self.0.insert(i, (ballot, make()));
                i
            }
        };
        Some(&mut self.0[i].1)
    }

    fn remove(&mut self, ballot: &Ballot) -> Option<V> {
        self.find(ballot).ok().map(|i| self.0.remove(i).1)
    }

    /// The value of the lowest ballot, removed.
    fn pop_first(&mut self) -> Option<(Ballot, V)> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    /// In ballot order.
    fn iter(&self) -> impl Iterator<Item = (&Ballot, &V)> {
        self.0.iter().map(|(b, v)| (b, v))
    }
}

/// A slot just applied to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The slot.
    pub slot: Slot,
    /// The decided value.
    pub value: Value,
    /// True when the value is a command that was already applied (a retry that landed twice).
    pub duplicate: bool,
}

/// The quorum of a configuration epoch with `n` acceptors: a majority, and
/// in epoch 0 (the cluster file's, whose members' incarnations nobody
/// recorded yet) a larger one, so that two quorums share enough acceptors
/// that one which lost its disk cannot make them disagree: `n - (n - m) / 2`
/// with `m` a majority (4 of 5, 3 of 3, 6 of 7).
pub fn quorum(epoch: u32, n: usize) -> usize {
    let m = crate::majority(n);
    if epoch == 0 {
        n - (n - m) / 2
    } else {
        m
    }
}

/// The learner of one proposer.
#[derive(Debug)]
pub struct Learner {
    /// The cluster file's configuration: epoch 0, from slot 0.
    genesis: Epoch,
    log: LogState,
    /// The newest decided values, `(value, duplicate)`, ending at `log.decided`.
    cache: VecDeque<(Value, bool)>,
    cache_bytes: usize,
    pending: BTreeMap<Slot, Pending>,
    /// One past the highest slot known decided; kept rather than searched for,
    /// since the leader asks for it once per value it proposes.
    known: Slot,
    /// Slots applied since the last `swap_applied`.
    applied: Vec<Applied>,
    /// A deliberate bug for the simulator: quorums of `n / 2`.
    minority_quorum: bool,
    /// A deliberate bug for the simulator: a commit index decides whatever value we hold.
    commit_any_ballot: bool,
    /// A deliberate bug for the simulator: a log that restarts later keeps its digest chain.
    chain_survives_restart: bool,
    /// Our recent digest points, and the peers' claims compared with them.
    digests: Digests,
}

impl Learner {
    /// A learner of a cluster that started with `genesis`, whose log applied
    /// so far built `log` (recovered from storage).
    pub fn new(genesis: Config, log: LogState) -> Self {
        let known = log.decided;
        // Our latest point before the restart, so that a claim there is compared too.
        let mut digests = Digests::default();
        if let Some(point) = log.point {
            digests.passed(point);
        }
        Learner {
            genesis: Epoch { start: Slot(0), config: genesis },
            log,
            cache: VecDeque::new(),
            cache_bytes: 0,
            pending: BTreeMap::new(),
            known,
            applied: Vec::new(),
            minority_quorum: false,
            commit_any_ballot: false,
            chain_survives_restart: false,
            digests,
        }
    }

    /// Runs with the simulator's defects that concern a learner: quorums of
    /// `n / 2` acceptors, and a commit index that decides whatever value it holds.
    pub(crate) fn set_defects(&mut self, defects: &crate::Defects) {
        self.minority_quorum = defects.minority_quorum;
        self.commit_any_ballot = defects.commit_any_ballot;
        self.chain_survives_restart = defects.chain_survives_restart;
    }

    /// Our digest points and the claims compared with them ([`crate::digest`]).
    pub fn digests(&self) -> &Digests {
        &self.digests
    }

    /// The same, to feed claims to.
    pub fn digests_mut(&mut self) -> &mut Digests {
        &mut self.digests
    }

    /// The first slot not yet applied: every slot below is decided.
    pub fn decided(&self) -> Slot {
        self.log.decided
    }

    /// One past the highest slot known to be decided (above `decided()` while there are holes).
    pub fn known(&self) -> Slot {
        debug_assert!(self.known >= self.decided());
        self.known
    }

    /// What applying the log built: sessions, configuration, clock.
    pub fn state(&self) -> &LogState {
        &self.log
    }

    /// The configuration in force from the decided prefix on, and the slot its epoch starts at.
    pub fn epoch(&self) -> &Epoch {
        self.log.epoch.as_ref().unwrap_or(&self.genesis)
    }

    /// The configuration epoch in force from the decided prefix on.
    pub fn epoch_number(&self) -> u32 {
        self.log.epoch_number()
    }

    /// The cluster file's configuration.
    pub fn genesis(&self) -> &Config {
        &self.genesis.config
    }

    /// True if `slot` is decided (applied, or known and waiting for a hole below).
    pub fn is_decided(&self, slot: Slot) -> bool {
        slot < self.decided() || self.pending.get(&slot).is_some_and(|p| p.decided.is_some())
    }

    /// The decided value at `slot`, if it is pending or still cached.
    pub fn value(&self, slot: Slot) -> Option<&Value> {
        let decided = self.decided();
        if slot >= decided {
            return self.pending.get(&slot).and_then(|p| p.decided.as_ref());
        }
        let back = (decided.0 - slot.0) as usize;
        self.cache.len().checked_sub(back).map(|i| &self.cache[i].0)
    }

    /// The first slot whose value is still cached.
    pub fn cache_start(&self) -> Slot {
        Slot(self.decided().0 - self.cache.len() as u64)
    }

    /// Cached entries from `from` (at least the cache's first slot), `(value, duplicate)`.
    pub fn cached(&self, from: Slot) -> impl Iterator<Item = &(Value, bool)> + '_ {
        let skip = from.0.saturating_sub(self.cache_start().0) as usize;
        self.cache.iter().skip(skip)
    }

    /// The live session of `client`.
    pub fn session(&self, client: ClientId) -> Option<Session> {
        self.log.session(client)
    }

    /// True if `cmd` was already applied (or a later request of its client was).
    pub fn is_applied(&self, cmd: &Command) -> bool {
        self.log.is_applied(cmd)
    }

    /// True for a slot this learner tracks: not applied yet, and within
    /// [`MAX_PENDING_AHEAD`] of the decided prefix.
    fn tracks(&self, slot: Slot) -> bool {
        let decided = self.decided();
        slot >= decided && slot.0 - decided.0 < MAX_PENDING_AHEAD
    }

    /// Ballot `ballot` proposed `value` at `slot`.
    pub fn observe_proposal(&mut self, slot: Slot, ballot: Ballot, value: Value) {
        if !self.tracks(slot) {
            return;
        }
        let p = self.pending.entry(slot).or_default();
        if p.decided.is_some() {
            return;
        }
        if p.proposals.get_or_insert_with(ballot, || value).is_none() {
            return; // too many ballots here already
        }
        self.check(slot);
    }

    /// Acceptor `acceptor` accepted `slot` under `ballot`.
    pub fn observe_accepted(&mut self, acceptor: NodeId, ballot: Ballot, slot: Slot) {
        if !self.tracks(slot) {
            return;
        }
        let p = self.pending.entry(slot).or_default();
        if p.decided.is_some() {
            return;
        }
        let Some(votes) = p.votes.get_or_insert_with(ballot, Voters::new) else { return };
        if votes.contains(&acceptor) || votes.len() >= 64 {
            return;
        }
        votes.push(acceptor);
        // Every change of a slot's votes, proposals or configuration is
        // checked as it happens, so only this ballot can have reached a
        // quorum now, and not with fewer votes than the quorum.
        let n = votes.len();
        if self.voters(slot, ballot).is_some_and(|(q, _)| n >= q) {
            self.check(slot);
        }
    }

    /// The acceptors that accepted `slot` under `ballot`.
    pub fn votes(&self, slot: Slot, ballot: Ballot) -> &[NodeId] {
        self.pending.get(&slot).and_then(|p| p.votes.get(&ballot)).map_or(&[], |v| v.as_slice())
    }

    /// The leader of `ballot` says that every slot below `commit` is decided:
    /// the values it proposed there under that ballot are the decided ones
    /// (one ballot proposes one value per slot, and a leader proposes again
    /// what its phase 1 found; a leader that learns another value decided at
    /// a slot it proposed steps down before it says so). Learns them in
    /// order, up to the first slot whose proposal under `ballot` we did not
    /// see, or that the ballot's epoch does not decide. This is how an
    /// acceptor learns too; a follower learns the leader's values without
    /// the acceptors' votes.
    pub fn learn_committed(&mut self, ballot: Ballot, commit: Slot) {
        while self.decided() < commit {
            let slot = self.decided();
            if self.voters(slot, ballot).is_none() {
                break;
            }
            let Some(p) = self.pending.get_mut(&slot) else { break };
            let value = if self.commit_any_ballot {
                p.proposals.pop_first().map(|(_, v)| v)
            } else {
                p.proposals.remove(&ballot)
            };
            let Some(value) = value else { break };
            p.decided = Some(value);
            p.proposals.clear();
            p.votes.clear();
            self.known = self.known.max(slot.next());
            self.advance();
        }
    }

    /// `value` is decided at `slot` (a peer learned it).
    ///
    /// # Errors
    /// [`Ignored`] when this learner knows another value decided there (only a
    /// broken or forged peer sends that, and the known value stays), or the
    /// slot is beyond what it tracks.
    pub fn learn(&mut self, slot: Slot, value: Value) -> Result<(), Ignored> {
        if slot < self.decided() {
            return match self.value(slot) {
                Some(known) if *known != value => Err(Ignored("learner: conflicting decided value")),
                _ => Ok(()),
            };
        }
        if let Some(known) = self.value(slot) {
            return if *known == value { Ok(()) } else { Err(Ignored("learner: conflicting decided value")) };
        }
        if !self.tracks(slot) {
            return Err(Ignored("learner: a decided slot too far ahead of the decided prefix"));
        }
        self.pending.entry(slot).or_default().decided = Some(value);
        self.known = self.known.max(slot.next());
        self.advance();
        Ok(())
    }

    /// The log restarts at `below`, beyond the decided prefix: what lies
    /// between is no longer held anywhere we can copy it from (retention).
    /// `epoch`, if any, is the configuration in force there, and `state` the
    /// log's clock and the clients' sessions there (copied from a peer).
    pub fn skip_to(&mut self, below: Slot, epoch: Option<&Epoch>, state: Option<(u64, &[SessionEntry])>) {
        if below <= self.decided() {
            return;
        }
        let (chain, point) = (self.log.chain, self.log.point);
        self.log.retain(below);
        if self.chain_survives_restart {
            (self.log.chain, self.log.point) = (chain, point);
        }
        if let Some(e) = epoch {
            self.log.adopt(e);
        }
        if let Some((clock, sessions)) = state {
            self.log.install(clock, true, sessions);
        }
        self.cache.clear();
        self.cache_bytes = 0;
        self.pending = self.pending.split_off(&below);
        self.known = self.known.max(below);
        self.advance();
    }

    /// Retention: the log may drop the slots below `below` (at most the decided prefix).
    pub fn retain(&mut self, below: Slot) {
        self.log.start = self.log.start.max(below.min(self.decided()));
    }

    /// Slots applied since the last call, in order (the tests' shorthand for [`Learner::swap_applied`]).
    #[cfg(test)]
    fn take_applied(&mut self) -> Vec<Applied> {
        std::mem::take(&mut self.applied)
    }

    /// Slots applied since the last call, in order, into `out` (which must
    /// be empty), whose room the learner keeps for the next ones: two
    /// buffers take turns, so that a batch of applied slots does not regrow
    /// one from nothing.
    pub fn swap_applied(&mut self, out: &mut Vec<Applied>) {
        debug_assert!(out.is_empty(), "the applied slots of the last call were all handled");
        std::mem::swap(&mut self.applied, out);
    }

    /// The quorum and members whose votes decide `slot` under `ballot`, if
    /// this learner knows the configuration of the ballot's epoch and the
    /// slot lies in it.
    fn voters(&self, slot: Slot, ballot: Ballot) -> Option<(usize, &Config)> {
        let epoch = self.epoch();
        if ballot.epoch != epoch.config.epoch || slot < epoch.start {
            return None;
        }
        let n = epoch.config.acceptors.len();
        let q = if self.minority_quorum { (n / 2).max(1) } else { quorum(ballot.epoch, n) };
        Some((q, &epoch.config))
    }

    /// Decides `slot` if some ballot has both a value and a quorum of votes.
    fn check(&mut self, slot: Slot) {
        let p = &self.pending[&slot];
        let chosen = p
            .votes
            .iter()
            .filter(|(b, _)| p.proposals.contains_key(b))
            .find(|(b, votes)| {
                self.voters(slot, **b).is_some_and(|(q, config)| {
                    votes.iter().filter(|a| config.acceptors.iter().any(|m| m.id == **a)).count() >= q
                })
            })
            .map(|(b, _)| *b);
        if let Some(b) = chosen {
            let p = self.pending.get_mut(&slot).expect("checked slot is pending");
            let value = p.proposals.remove(&b).expect("chosen ballot has a value");
            p.decided = Some(value);
            p.proposals.clear();
            p.votes.clear();
            self.known = self.known.max(slot.next());
            self.advance();
        }
    }

    /// Applies the decided prefix that became contiguous.
    fn advance(&mut self) {
        let epoch = self.epoch_number();
        loop {
            let next = self.decided();
            let Some(entry) = self.pending.first_entry() else { break };
            if *entry.key() != next || entry.get().decided.is_none() {
                // Stale entries below the prefix can't exist: every insert checks `decided()`.
                break;
            }
            let value = entry.remove().decided.expect("checked above");
            self.apply(value);
        }
        if self.epoch_number() != epoch {
            // A new configuration: votes that waited for it may decide now.
            let slots: Vec<Slot> = self.pending.keys().copied().collect();
            for slot in slots {
                if self.pending.get(&slot).is_some_and(|p| p.decided.is_none()) {
                    self.check(slot);
                }
            }
        }
    }

    fn apply(&mut self, value: Value) {
        let slot = self.decided();
        let duplicate = self.log.apply(slot, &value);
        if let Some(point) = self.log.point.filter(|p| p.slot == self.log.decided) {
            self.digests.passed(point);
        }
        self.known = self.known.max(self.decided());
        self.cache_bytes += value.wire_len();
        self.cache.push_back((value.clone(), duplicate));
        while self.cache.len() > CACHE_ENTRIES || (self.cache_bytes > CACHE_BYTES && self.cache.len() > 1) {
            let (old, _) = self.cache.pop_front().expect("non-empty");
            self.cache_bytes -= old.wire_len();
        }
        self.applied.push(Applied { slot, value, duplicate });
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::Member;

    use super::*;

    fn cmd(client: u64, seq: u64, data: &str) -> Value {
        Value::Command(Command::new(ClientId(client), seq, data))
    }

    fn config(epoch: u32, acceptors: u32) -> Config {
        let member = |id: u32| Member { id: NodeId(id), addr: String::new(), incarnation: None };
        Config {
            epoch,
            acceptors: (1..=acceptors).map(member).collect(),
            proposers: vec![member(1)],
            session_lifetime_ms: 3_600_000,
        }
    }

    fn learner(acceptors: u32) -> Learner {
        Learner::new(config(0, acceptors), LogState::default())
    }

    /// The bootstrap quorum is larger than a majority; later epochs use a majority.
    #[test]
    fn quorums() {
        assert_eq!([1, 3, 5, 7].map(|n| quorum(0, n)), [1, 3, 4, 6]);
        assert_eq!([1, 3, 5, 7].map(|n| quorum(1, n)), [1, 2, 3, 4]);
    }

    /// A slot is decided by a quorum of votes for one ballot plus that ballot's value, in either order.
    #[test]
    fn decides_on_quorum_of_one_ballot() {
        let b = Ballot::new(1, NodeId(1));
        let mut l = learner(5);
        l.observe_accepted(NodeId(1), b, Slot(0));
        l.observe_accepted(NodeId(2), b, Slot(0));
        l.observe_accepted(NodeId(3), Ballot::new(1, NodeId(2)), Slot(0));
        l.observe_accepted(NodeId(4), b, Slot(0));
        l.observe_proposal(Slot(0), b, cmd(1, 1, "x"));
        assert_eq!(l.decided(), Slot(0), "3 of 5 is no bootstrap quorum");
        l.observe_accepted(NodeId(4), b, Slot(0));
        assert_eq!(l.decided(), Slot(0), "a vote counts once");
        l.observe_accepted(NodeId(5), b, Slot(0));
        assert_eq!(l.decided(), Slot(1));
        assert_eq!(l.take_applied(), vec![Applied { slot: Slot(0), value: cmd(1, 1, "x"), duplicate: false }]);
    }

    /// Counts the allocations of the calling thread (tests run on threads of their own).
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
        }

        // SAFETY: every call goes to the system allocator unchanged; counting
        // touches a thread-local Cell, which allocates nothing once initialized
        // (a const initializer needs no lazy allocation).
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                ALLOCATIONS.with(|n| n.set(n.get() + 1));
                System.alloc(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                System.dealloc(ptr, layout)
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;

        pub fn allocations() -> u64 {
            ALLOCATIONS.with(Cell::get)
        }
    }

    /// The leader's hot path through its learner: a value proposed, a quorum
    /// of votes (four of five in epoch 0), decided, applied. Once warm, that takes well under one
    /// allocation per value (a BTreeMap node now and then), where a slot's
    /// ballots and voters on the heap took three.
    #[test]
    fn counting_votes_allocates_nothing_per_value() {
        let b = Ballot::new(1, NodeId(1));
        let mut l = learner(5);
        let mut out = Vec::new();
        let values: Vec<Value> = (0..2_000u64).map(|i| cmd(1 + i % 8, 1 + i / 8, "x")).collect();
        let run = |from: u64, l: &mut Learner, out: &mut Vec<Applied>| {
            for (i, v) in values[from as usize..from as usize + 1_000].iter().enumerate() {
                let slot = Slot(from + i as u64);
                l.observe_proposal(slot, b, v.clone());
                for a in 1..=4 {
                    l.observe_accepted(NodeId(a), b, slot);
                }
                l.swap_applied(out);
                out.clear();
            }
        };
        run(0, &mut l, &mut out); // warm: sessions, cache and buffers at their size
        let before = counting::allocations();
        run(1_000, &mut l, &mut out);
        let per_value = (counting::allocations() - before) as f64 / 1_000.0;
        assert_eq!(l.decided(), Slot(2_000));
        assert!(per_value < 0.1, "{per_value} allocations per value");
    }

    /// Votes beyond the four a slot holds inline still count: eleven acceptors need nine in epoch 0.
    #[test]
    fn more_voters_than_held_inline_still_decide() {
        let b = Ballot::new(1, NodeId(1));
        let mut l = learner(11);
        l.observe_proposal(Slot(0), b, cmd(1, 1, "x"));
        for a in 1..=8 {
            l.observe_accepted(NodeId(a), b, Slot(0));
        }
        assert_eq!(l.votes(Slot(0), b), (1..=8).map(NodeId).collect::<Vec<_>>().as_slice());
        assert_eq!(l.decided(), Slot(0), "8 of 11 is no bootstrap quorum");
        l.observe_accepted(NodeId(8), b, Slot(0));
        assert_eq!(l.decided(), Slot(0), "a vote counts once, inline or not");
        l.observe_accepted(NodeId(9), b, Slot(0));
        assert_eq!(l.decided(), Slot(1));
    }

    /// Applied slots come out in order, call after call, through the two buffers that take turns.
    #[test]
    fn applied_slots_come_out_in_order_through_swapped_buffers() {
        let b = Ballot::new(1, NodeId(1));
        let mut l = learner(3);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for slot in 0..5u64 {
            l.observe_proposal(Slot(slot), b, cmd(1, slot + 1, "x"));
            for a in 1..=3 {
                l.observe_accepted(NodeId(a), b, Slot(slot));
            }
            if slot % 2 == 1 {
                l.swap_applied(&mut out);
                seen.extend(out.drain(..).map(|a| a.slot.0));
            }
        }
        l.swap_applied(&mut out);
        seen.extend(out.drain(..).map(|a| a.slot.0));
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        l.swap_applied(&mut out);
        assert!(out.is_empty(), "nothing applied twice");
    }

    /// A slot keeps proposals and votes of at most MAX_BALLOTS_PER_SLOT ballots (a forging member
    /// cannot grow it without bound); what one more ballot sends there is not tracked, and the slot is
    /// still learned from a peer. Ballots arriving in any order are kept in ballot order.
    #[test]
    fn a_slot_tracks_a_bounded_number_of_ballots() {
        let mut l = learner(3);
        let ballot = |round: u64| Ballot::new(round, NodeId(1));
        // Ballots 2, 4, ..., then 1, 3, ...: out of order, up to the bound.
        let rounds: Vec<u64> = (1..=MAX_BALLOTS_PER_SLOT as u64 / 2)
            .map(|r| 2 * r)
            .chain((0..MAX_BALLOTS_PER_SLOT as u64 / 2).map(|r| 2 * r + 1))
            .collect();
        for r in &rounds {
            l.observe_proposal(Slot(0), ballot(*r), cmd(1, *r, "x"));
            l.observe_accepted(NodeId(1), ballot(*r), Slot(0));
        }
        let p = &l.pending[&Slot(0)];
        let kept: Vec<u64> = p.proposals.iter().map(|(b, _)| b.round).collect();
        assert_eq!(kept, (1..=MAX_BALLOTS_PER_SLOT as u64).collect::<Vec<_>>(), "in ballot order");
        assert_eq!(p.votes.iter().count(), MAX_BALLOTS_PER_SLOT);

        let extra = ballot(1_000);
        l.observe_proposal(Slot(0), extra, cmd(2, 1, "y"));
        for a in 1..=3 {
            l.observe_accepted(NodeId(a), extra, Slot(0));
        }
        assert_eq!(l.decided(), Slot(0), "one ballot too many: not tracked here");
        assert_eq!(l.pending[&Slot(0)].proposals.iter().count(), MAX_BALLOTS_PER_SLOT);
        assert!(l.votes(Slot(0), extra).is_empty());

        // A ballot already tracked still decides.
        for a in 2..=3 {
            l.observe_accepted(NodeId(a), ballot(7), Slot(0));
        }
        assert_eq!(l.decided(), Slot(1));
        assert_eq!(l.take_applied(), vec![Applied { slot: Slot(0), value: cmd(1, 7, "x"), duplicate: false }]);
    }

    /// After a configuration is decided, only its epoch's ballots decide,
    /// with its members' votes: a majority of them.
    #[test]
    fn a_decided_configuration_changes_who_decides() {
        let mut l = learner(3);
        let mut c1 = config(1, 3);
        c1.acceptors.retain(|m| m.id != NodeId(3));
        c1.acceptors.push(Member { id: NodeId(9), addr: String::new(), incarnation: None });
        l.learn(Slot(0), Value::Config(c1)).unwrap();
        assert_eq!(l.epoch().start, Slot(1));
        let old = Ballot::new(5, NodeId(1));
        let new = Ballot::in_epoch(1, 1, NodeId(1));
        l.observe_proposal(Slot(1), old, cmd(1, 1, "old"));
        for a in [1, 2, 3] {
            l.observe_accepted(NodeId(a), old, Slot(1));
        }
        assert_eq!(l.decided(), Slot(1), "an epoch-0 ballot decides nothing in epoch 1");
        l.observe_proposal(Slot(1), new, cmd(1, 1, "new"));
        l.observe_accepted(NodeId(3), new, Slot(1));
        l.observe_accepted(NodeId(1), new, Slot(1));
        assert_eq!(l.decided(), Slot(1), "acceptor 3 is no member of epoch 1");
        l.observe_accepted(NodeId(9), new, Slot(1));
        assert_eq!(l.decided(), Slot(2));
    }

    /// Votes of an epoch the learner does not know yet wait for its configuration.
    #[test]
    fn votes_of_a_later_epoch_wait_for_its_configuration() {
        let mut l = learner(1);
        let new = Ballot::in_epoch(1, 1, NodeId(1));
        l.observe_proposal(Slot(1), new, cmd(1, 1, "x"));
        l.observe_accepted(NodeId(1), new, Slot(1));
        l.observe_accepted(NodeId(2), new, Slot(1));
        assert_eq!(l.known(), Slot(0));
        l.learn(Slot(0), Value::Config(config(1, 3))).unwrap();
        assert_eq!(l.decided(), Slot(2));
    }

    /// The log is applied in order: a decided slot above a hole waits for the hole.
    #[test]
    fn applies_in_order_only() {
        let mut l = learner(1);
        l.learn(Slot(1), cmd(1, 1, "b")).unwrap();
        assert_eq!(l.decided(), Slot(0));
        assert_eq!(l.known(), Slot(2));
        l.learn(Slot(0), Value::Noop).unwrap();
        assert_eq!(l.decided(), Slot(2));
        assert_eq!(l.take_applied().len(), 2);
    }

    /// Exactly once: a request that landed in two slots counts once, the second is a no-op.
    #[test]
    fn duplicate_request_applies_once() {
        let mut l = learner(1);
        for (slot, v) in [cmd(7, 1, "a"), cmd(7, 1, "a"), cmd(7, 2, "b")].into_iter().enumerate() {
            l.learn(Slot(slot as u64), v).unwrap();
        }
        let shown: Vec<bool> = l.cached(Slot(0)).map(|(_, dup)| *dup).collect();
        assert_eq!(shown, vec![false, true, false]);
        assert!(l.is_applied(&Command::new(ClientId(7), 2, "")));
        l.learn(Slot(3), cmd(7, 1, "a")).unwrap();
        assert!(l.learn(Slot(3), Value::Noop).is_err(), "a conflicting value is refused");
        assert!(l.take_applied()[3].duplicate);
    }

    /// The cache keeps the newest values only; older ones are read from the store.
    #[test]
    fn cache_is_bounded() {
        let mut l = learner(1);
        let n = CACHE_ENTRIES as u64 + 10;
        for slot in 0..n {
            l.learn(Slot(slot), Value::Noop).unwrap();
        }
        assert_eq!(l.cache_start(), Slot(10));
        assert_eq!(l.value(Slot(9)), None);
        assert_eq!(l.value(Slot(10)), Some(&Value::Noop));
        assert!(l.is_decided(Slot(9)));
    }

    /// A learner that skips to a later start applies from there on.
    #[test]
    fn skip_to_restarts_the_log() {
        let mut l = learner(1);
        l.learn(Slot(7), Value::Noop).unwrap();
        l.skip_to(Slot(7), None, None);
        assert_eq!(l.decided(), Slot(8));
        assert_eq!(l.state().start, Slot(7));
    }
}
