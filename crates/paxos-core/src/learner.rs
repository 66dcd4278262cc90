//! The learner: which slots are decided, in order, and which requests they answer.
//!
//! A slot is decided when a majority of acceptors accepted it under one
//! ballot. One ballot proposes one value per slot, so the learner needs the
//! votes (acceptors' `Accepted`) and the value of that ballot (the leader's
//! `Accept`, copied to every proposer) and decides when it has both. Decided
//! values also arrive whole from peers that already learned them (catch-up).
//!
//! The log is applied in order, without gaps. Applying deduplicates client
//! requests: a command whose `(client, seq)` is not above the last applied
//! `seq` of that client is a retry that landed twice (possible after a leader
//! change) and counts as a no-op. Every learner applies the same log in the
//! same order, so every learner makes the same call.

use std::collections::{BTreeMap, HashMap};

use paxos_proto::{Ballot, ClientId, Command, LogEntry, Slot, Value};

use crate::Ignored;

/// How far beyond its decided prefix a learner keeps track of slots. Every
/// slot in flight lies within a leader's window of the decided ones; a
/// learner further behind catches up from a peer instead, and nothing a peer
/// or acceptor sends can make it track more than this many slots.
pub const MAX_PENDING_AHEAD: u64 = 1 << 16;

/// One slot above the decided prefix that we know something about.
#[derive(Debug, Default)]
struct Pending {
    /// The value, once known to be decided.
    decided: Option<Value>,
    /// The value each ballot proposed here.
    proposals: BTreeMap<Ballot, Value>,
    /// Per ballot, the acceptors (by index) that accepted it here.
    votes: BTreeMap<Ballot, u64>,
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

/// The last applied request of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// The slot where it was applied.
    pub(crate) slot: Slot,
}

/// The learner of one proposer.
#[derive(Debug)]
pub struct Learner {
    quorum: usize,
    /// The decided log, from slot 0.
    log: Vec<Value>,
    /// Per slot of `log`, whether it applied as a duplicate.
    duplicate: Vec<bool>,
    sessions: HashMap<ClientId, Session>,
    pending: BTreeMap<Slot, Pending>,
    /// One past the highest slot known decided; kept rather than searched for,
    /// since the leader asks for it once per value it proposes.
    known: Slot,
    /// Slots applied since the last `take_applied`.
    applied: Vec<Applied>,
}

impl Learner {
    /// A learner whose decided log is `log` (recovered from storage).
    pub fn new(quorum: usize, log: Vec<Value>) -> Self {
        let mut learner = Learner {
            quorum,
            log: Vec::with_capacity(log.len()),
            duplicate: Vec::with_capacity(log.len()),
            sessions: HashMap::new(),
            pending: BTreeMap::new(),
            known: Slot(0),
            applied: Vec::new(),
        };
        for value in log {
            learner.apply(value);
        }
        learner.applied.clear();
        learner
    }

    /// The first slot not yet applied: every slot below is decided and known.
    pub fn decided(&self) -> Slot {
        Slot(self.log.len() as u64)
    }

    /// One past the highest slot known to be decided (above `decided()` while there are holes).
    pub fn known(&self) -> Slot {
        debug_assert!(self.known >= self.decided());
        self.known
    }

    /// The decided value at `slot`, if known.
    pub fn value(&self, slot: Slot) -> Option<&Value> {
        match self.log.get(slot.0 as usize) {
            Some(v) => Some(v),
            None => self.pending.get(&slot).and_then(|p| p.decided.as_ref()),
        }
    }

    /// The decided log from slot 0.
    pub fn log(&self) -> &[Value] {
        &self.log
    }

    /// The log from `from` as clients see it: duplicates show as no-ops.
    pub fn entries(&self, from: Slot) -> impl Iterator<Item = LogEntry> + '_ {
        let start = (from.0 as usize).min(self.log.len());
        self.log[start..].iter().zip(&self.duplicate[start..]).enumerate().map(move |(i, (v, dup))| LogEntry {
            slot: Slot((start + i) as u64),
            value: match v {
                Value::Command(c) if !dup => Some(c.data.clone()),
                _ => None,
            },
        })
    }

    /// The last applied request of `client`.
    pub(crate) fn session(&self, client: ClientId) -> Option<Session> {
        self.sessions.get(&client).copied()
    }

    /// True if `cmd` was already applied (or a later request of its client was).
    pub fn is_applied(&self, cmd: &Command) -> bool {
        self.sessions.get(&cmd.client).is_some_and(|s| s.seq >= cmd.seq)
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
        p.proposals.entry(ballot).or_insert(value);
        self.check(slot);
    }

    /// Acceptor number `acceptor` (its index among the acceptors) accepted `slot` under `ballot`.
    pub fn observe_accepted(&mut self, acceptor: usize, ballot: Ballot, slot: Slot) {
        assert!(acceptor < 64, "at most 64 acceptors");
        if !self.tracks(slot) {
            return;
        }
        let p = self.pending.entry(slot).or_default();
        if p.decided.is_some() {
            return;
        }
        *p.votes.entry(ballot).or_default() |= 1 << acceptor;
        self.check(slot);
    }

    /// The acceptors (as a bit set of indexes) that accepted `slot` under `ballot`.
    pub fn votes(&self, slot: Slot, ballot: Ballot) -> u64 {
        self.pending.get(&slot).and_then(|p| p.votes.get(&ballot)).copied().unwrap_or(0)
    }

    /// `value` is decided at `slot` (a peer learned it).
    ///
    /// # Errors
    /// [`Ignored`] when this learner knows another value decided there (only a
    /// broken or forged peer sends that, and the known value stays), or the
    /// slot is beyond what it tracks.
    pub fn learn(&mut self, slot: Slot, value: Value) -> Result<(), Ignored> {
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

    /// Slots applied since the last call, in order.
    pub fn take_applied(&mut self) -> Vec<Applied> {
        std::mem::take(&mut self.applied)
    }

    /// Decides `slot` if some ballot has both a value and a quorum of votes.
    fn check(&mut self, slot: Slot) {
        let quorum = self.quorum;
        let p = self.pending.get_mut(&slot).expect("checked slot is pending");
        let chosen = p
            .votes
            .iter()
            .find(|(b, votes)| votes.count_ones() as usize >= quorum && p.proposals.contains_key(b))
            .map(|(b, _)| *b);
        if let Some(b) = chosen {
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
    }

    fn apply(&mut self, value: Value) {
        let slot = self.decided();
        let duplicate = match &value {
            Value::Noop => false,
            Value::Command(c) => match self.sessions.get(&c.client) {
                Some(s) if s.seq >= c.seq => true,
                _ => {
                    self.sessions.insert(c.client, Session { seq: c.seq, slot });
                    false
                }
            },
        };
        self.log.push(value.clone());
        self.duplicate.push(duplicate);
        self.known = self.known.max(self.decided());
        self.applied.push(Applied { slot, value, duplicate });
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::NodeId;

    use super::*;

    fn cmd(client: u64, seq: u64, data: &str) -> Value {
        Value::Command(Command { client: ClientId(client), seq, data: data.into() })
    }

    /// A slot is decided by a majority of votes for one ballot plus that ballot's value, in either order.
    #[test]
    fn decides_on_majority_of_one_ballot() {
        let b = Ballot::new(1, NodeId(1));
        let mut l = Learner::new(3, Vec::new());
        l.observe_accepted(0, b, Slot(0));
        l.observe_accepted(1, b, Slot(0));
        l.observe_accepted(2, Ballot::new(1, NodeId(2)), Slot(0));
        assert_eq!(l.decided(), Slot(0), "votes split across ballots are no majority");
        l.observe_accepted(3, b, Slot(0));
        assert_eq!(l.decided(), Slot(0), "a majority without the value decides nothing yet");
        l.observe_proposal(Slot(0), b, cmd(1, 1, "x"));
        assert_eq!(l.decided(), Slot(1));
        assert_eq!(l.take_applied(), vec![Applied { slot: Slot(0), value: cmd(1, 1, "x"), duplicate: false }]);
    }

    /// The log is applied in order: a decided slot above a hole waits for the hole.
    #[test]
    fn applies_in_order_only() {
        let mut l = Learner::new(1, Vec::new());
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
        let mut l = Learner::new(1, vec![cmd(7, 1, "a"), cmd(7, 1, "a"), cmd(7, 2, "b")]);
        let shown: Vec<_> = l.entries(Slot(0)).map(|e| e.value).collect();
        assert_eq!(shown, vec![Some("a".to_string()), None, Some("b".to_string())]);
        assert!(l.is_applied(&Command { client: ClientId(7), seq: 2, data: String::new() }));
        l.learn(Slot(3), cmd(7, 1, "a")).unwrap();
        assert!(l.learn(Slot(3), Value::Noop).is_err(), "a conflicting value is refused");
        assert!(l.take_applied()[0].duplicate);
    }
}
