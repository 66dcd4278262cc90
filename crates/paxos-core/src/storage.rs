//! What the roles persist, as operations folded into a state, and the one store abstraction.
//!
//! A role emits operations in its [`crate::Ready`]; a store makes them durable
//! and, on restart, gives back the state they fold into. The fold itself
//! ([`AcceptorState::apply`], [`ProposerState::apply`]) lives here so that every
//! store, in memory or on disk, recovers exactly the same state.
//!
//! The state a role folds is small: ballots, the configuration, what is
//! accepted and not yet decided, client sessions. The decided log itself is
//! not part of it: a store keeps the values of the `Learn` operations
//! ([`Fold::log_op`]) where it can read them back a page at a time
//! ([`Store::read`]), and deletes them only when a `Retain` says so.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use paxos_proto::{Ballot, ClientId, Command, Digest, Epoch, SessionEntry, Slot, Value, DIGEST_EVERY, DIGEST_START};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::FastMap;

/// Sessions are swept for expiry when a learner applies a slot that is a
/// multiple of this.
pub const SESSION_SWEEP_SLOTS: u64 = 1024;

/// One durable change of an acceptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptorOp {
    /// The acceptor's incarnation, drawn at random when its store was
    /// created: the first operation of every acceptor store.
    Identity(u64),
    /// The acceptor found that its disk lost writes it had synced: from
    /// here on it is this new incarnation, which votes only once a
    /// configuration pins it (a rebuild, as after a lost disk).
    Reincarnate(u64),
    /// The acceptor promised this ballot (higher than any before).
    Promise(Ballot),
    /// The acceptor learned of a configuration epoch (a later one than any before).
    Join(Epoch),
    /// The acceptor accepted `value` at `slot` under `ballot`.
    Accept {
        /// The slot.
        slot: Slot,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: Value,
    },
    /// `value` is decided at `slot`, the next slot of the acceptor's decided log.
    Learn {
        /// The slot; always the acceptor's `decided`.
        slot: Slot,
        /// The decided value.
        value: Value,
    },
    /// The decided log may drop every slot below this one (retention); when it
    /// is beyond the decided prefix, the acceptor's log starts there instead
    /// (it copies from a peer whose log starts there).
    Retain(Slot),
    /// The log restarted later with the sessions a proposer's log built there
    /// (one chunk; the first replaces every session known), as [`ProposerOp::Sessions`].
    Sessions {
        /// The log's clock there.
        clock: u64,
        /// The first chunk of the copy.
        first: bool,
        /// Sessions.
        sessions: Vec<SessionEntry>,
    },
}

/// Everything an acceptor must remember across a crash, but its decided log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorState {
    /// The acceptor's incarnation; 0 until its store recorded one.
    pub incarnation: u64,
    /// The highest ballot promised.
    pub promised: Ballot,
    /// The latest configuration epoch it knows of, if any beyond the cluster file's.
    pub epoch: Option<Epoch>,
    /// Per undecided slot, the highest ballot accepted there and its value.
    pub accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// Every slot below this one is in the decided log.
    pub decided: Slot,
    /// The decided log starts here: retention deleted what was below.
    pub start: Slot,
    /// What applying the decided log builds, as a proposer's learner does:
    /// the clients' sessions above all, which a proposer that restarts its
    /// log later (retention) copies from us.
    #[serde(default)]
    pub log: LogState,
    /// Operations folded in, ever: every one the store made durable, so a
    /// restart counts exactly what the disk kept (see [`paxos_proto::Written`]).
    #[serde(default)]
    pub ops: u64,
}

impl AcceptorState {
    /// Folds one operation into the state.
    pub fn apply(&mut self, op: &AcceptorOp) {
        self.ops += 1;
        match op {
            AcceptorOp::Identity(i) => {
                if self.incarnation == 0 {
                    self.incarnation = *i;
                }
            }
            AcceptorOp::Reincarnate(i) => self.incarnation = *i,
            AcceptorOp::Promise(b) => self.promised = self.promised.max(*b),
            AcceptorOp::Join(e) => {
                if self.epoch.as_ref().is_none_or(|known| e.config.epoch > known.config.epoch) {
                    // What older epochs accepted from the new epoch's first slot on can never be chosen.
                    let number = e.config.epoch;
                    self.accepted.retain(|slot, (b, _)| *slot < e.start || b.epoch >= number);
                    self.epoch = Some(e.clone());
                }
                self.log.adopt(e);
            }
            AcceptorOp::Accept { slot, ballot, value } => {
                if *slot >= self.decided {
                    self.accepted.insert(*slot, (*ballot, value.clone()));
                }
            }
            AcceptorOp::Learn { slot, value } => {
                if *slot == self.decided {
                    self.accepted.remove(slot);
                    self.decided = slot.next();
                    if self.log.decided != *slot {
                        // A store of the release before the log's state: it starts here, without sessions.
                        self.log.retain(*slot);
                    }
                    self.log.apply(*slot, value);
                }
            }
            AcceptorOp::Retain(below) => {
                self.start = self.start.max(*below);
                self.log.retain(*below);
                if *below > self.decided {
                    self.decided = *below;
                    self.accepted = self.accepted.split_off(below);
                }
            }
            AcceptorOp::Sessions { clock, first, sessions } => self.log.install(*clock, *first, sessions),
        }
    }

    /// The configuration epoch the acceptor is in: 0 until it joined one.
    pub fn epoch_number(&self) -> u32 {
        self.epoch.as_ref().map_or(0, |e| e.config.epoch)
    }
}

/// One durable change of a proposer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposerOp {
    /// The proposer may use rounds up to this one; it never uses a round twice.
    Round(u64),
    /// The proposer learned that `value` is decided at `slot` (the next slot of its log).
    Learn {
        /// The slot; always the proposer's `decided`.
        slot: Slot,
        /// The decided value.
        value: Value,
        /// A command that was already applied (a retry that landed twice): clients see a no-op.
        #[serde(default, skip_serializing_if = "is_false")]
        duplicate: bool,
    },
    /// The decided log may drop every slot below this one; when it is beyond
    /// the decided prefix, the log starts there (copied from a peer whose log does).
    Retain(Slot),
    /// The log restarted later (a `Retain` beyond the decided prefix), and
    /// this configuration epoch is in force where it restarts: the peer it
    /// copies from said so, as the log itself no longer can.
    Epoch(Epoch),
    /// The log restarted later with the sessions a peer's log built there
    /// (one chunk of them; the first chunk replaces every session known).
    Sessions {
        /// The log's clock there.
        clock: u64,
        /// The first chunk of the copy.
        first: bool,
        /// Sessions.
        sessions: Vec<SessionEntry>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The last applied request of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its sequence number.
    pub seq: u64,
    /// The slot where it was applied.
    pub slot: Slot,
    /// Its stamp ([`Command::at`]).
    pub at: u64,
}

impl Session {
    /// True while it is within the session lifetime `life` (none: forever) at the log's `clock`.
    fn live(&self, clock: u64, life: Option<u64>) -> bool {
        life.is_none_or(|life| clock.saturating_sub(self.at) <= life)
    }

    /// True when it makes request `seq` of its client already applied: it is
    /// live, and that request or a later one was applied.
    fn covers(&self, seq: u64, clock: u64, life: Option<u64>) -> bool {
        self.live(clock, life) && self.seq >= seq
    }
}

/// What applying the decided log builds: the decided prefix, the
/// configuration in force, and the clients' sessions. A learner applies
/// every slot through it, and a store's fold replays the same slots through
/// it, so both end in the same state. Everything in it is a function of the
/// log alone, the same on every learner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// Every slot below this one is decided and applied.
    pub decided: Slot,
    /// The log starts here: retention deleted the slots below.
    pub start: Slot,
    /// The latest configuration the log decided, and where its epoch starts;
    /// `None` while the cluster file's is in force.
    pub epoch: Option<Epoch>,
    /// The clients' sessions (some may have expired and wait for a sweep).
    pub sessions: FastMap<ClientId, Session>,
    /// The log's clock: the highest [`Command::at`] applied, in milliseconds.
    pub clock: u64,
    /// Sessions swept away after expiring.
    pub evicted: u64,
    /// The digest chain of every slot applied so far ([`paxos_proto::Digest`]);
    /// `None` while unknown: the log restarted beyond slot 0 (retention), or
    /// a store of a release before digests holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<u64>,
    /// The chain at the latest multiple of [`paxos_proto::DIGEST_EVERY`]
    /// slots applied, which the node claims to its peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Digest>,
}

impl LogState {
    /// The session lifetime in force, in milliseconds (none before the log decided a configuration).
    pub fn session_lifetime(&self) -> Option<u64> {
        self.epoch.as_ref().map(|e| e.config.session_lifetime_ms)
    }

    /// The live session of `client`: none if it expired by the log's clock.
    pub fn session(&self, client: ClientId) -> Option<Session> {
        let s = self.sessions.get(&client)?;
        s.live(self.clock, self.session_lifetime()).then_some(*s)
    }

    /// True if `cmd` was already applied (or a later request of its client was), by a live session.
    pub fn is_applied(&self, cmd: &Command) -> bool {
        self.sessions.get(&cmd.client).is_some_and(|s| s.covers(cmd.seq, self.clock, self.session_lifetime()))
    }

    /// The configuration epoch in force from `decided` on.
    pub fn epoch_number(&self) -> u32 {
        self.epoch.as_ref().map_or(0, |e| e.config.epoch)
    }

    /// Applies `value` at `slot`, the next slot: returns whether it is a
    /// command already applied (a duplicate, which clients see as a no-op).
    ///
    /// # Panics
    /// If `slot` is not the next slot: a log is applied in order.
    pub fn apply(&mut self, slot: Slot, value: &Value) -> bool {
        assert_eq!(slot, self.decided, "a log is applied in order");
        self.decided = slot.next();
        let before = if slot == Slot(0) { Some(DIGEST_START) } else { self.chain };
        self.chain = before.map(|c| Digest::fold(c, slot, value));
        if let Some(chain) = self.chain.filter(|_| self.decided.0.is_multiple_of(DIGEST_EVERY)) {
            self.point = Some(Digest { slot: self.decided, chain });
        }
        let duplicate = match value {
            Value::Noop => false,
            Value::Command(c) => {
                self.clock = self.clock.max(c.at);
                // As `is_applied`, then the session's update, with one lookup.
                let (clock, life) = (self.clock, self.session_lifetime());
                let fresh = Session { seq: c.seq, slot, at: c.at };
                match self.sessions.entry(c.client) {
                    Entry::Occupied(mut e) => {
                        if e.get().covers(c.seq, clock, life) {
                            true
                        } else {
                            e.insert(fresh);
                            false
                        }
                    }
                    Entry::Vacant(e) => {
                        e.insert(fresh);
                        false
                    }
                }
            }
            Value::Config(config) => {
                // The next epoch; or, on a log that restarted later than its
                // configuration in force, any later one.
                if config.epoch > self.epoch_number() {
                    self.epoch = Some(Epoch { start: slot.next(), config: config.clone() });
                }
                false
            }
        };
        if slot.0.is_multiple_of(SESSION_SWEEP_SLOTS) {
            self.sweep();
        }
        duplicate
    }

    /// Forgets every expired session.
    fn sweep(&mut self) {
        let Some(life) = self.session_lifetime() else { return };
        let clock = self.clock;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| clock.saturating_sub(s.at) <= life);
        self.evicted += (before - self.sessions.len()) as u64;
    }

    /// Retention: the log starts at `below` at the earliest; beyond the
    /// decided prefix, applying resumes there.
    pub fn retain(&mut self, below: Slot) {
        self.start = self.start.max(below);
        if below > self.decided {
            // The slots between were never applied here: the chain is unknown from now on,
            // and we claim none.
            self.decided = below;
            self.chain = None;
            self.point = None;
        }
    }

    /// The log restarted at `decided` (retention deleted what lay before),
    /// where `epoch` is in force: adopted if later than the one known.
    pub fn adopt(&mut self, epoch: &Epoch) {
        if epoch.config.epoch > self.epoch_number() && epoch.start <= self.decided {
            self.epoch = Some(epoch.clone());
        }
    }

    /// The log restarted at `decided` with a peer's sessions there (one
    /// chunk; the first replaces every session known) and its clock.
    pub fn install(&mut self, clock: u64, first: bool, sessions: &[SessionEntry]) {
        if first {
            self.sessions.clear();
        }
        self.clock = self.clock.max(clock);
        for s in sessions.iter().filter(|s| s.slot < self.decided) {
            self.sessions.insert(s.client, Session { seq: s.seq, slot: s.slot, at: s.at });
        }
    }
}

/// Everything a proposer must remember across a crash, but its decided log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerState {
    /// The highest round this proposer has used (or reserved).
    pub round: u64,
    /// What applying the decided log built.
    pub log: LogState,
}

impl ProposerState {
    /// Folds one operation into the state.
    ///
    /// # Panics
    /// If a `Learn` is not for the next slot of the log: the proposer only ever
    /// learns in order, so anything else is a corrupt store or a bug.
    pub fn apply(&mut self, op: &ProposerOp) {
        match op {
            ProposerOp::Round(r) => self.round = self.round.max(*r),
            ProposerOp::Learn { slot, value, .. } => {
                assert_eq!(*slot, self.log.decided, "a proposer learns its log in order");
                self.log.apply(*slot, value);
            }
            ProposerOp::Retain(below) => self.log.retain(*below),
            ProposerOp::Epoch(e) => self.log.adopt(e),
            ProposerOp::Sessions { clock, first, sessions } => self.log.install(*clock, *first, sessions),
        }
    }
}

/// Why a store failed. A storage error is fatal to the node.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The medium failed (disk full, I/O error...).
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// What is stored is not what was written.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

/// What an operation does to the decided log a store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOp<'a> {
    /// Appends `value` at `slot`.
    Learn {
        /// The slot: the next one of the log.
        slot: Slot,
        /// The decided value.
        value: &'a Value,
        /// Whether clients see it as a no-op (a retry that landed twice).
        duplicate: bool,
    },
    /// Every slot below may go; beyond the log's end, the log restarts there.
    Retain(Slot),
    /// Nothing.
    Other,
}

/// A state that a sequence of operations folds into: what a role persists.
///
/// Every store recovers its state by folding the operations it made durable,
/// in order, with [`Fold::apply`], so that a store in memory and a store on
/// disk recover exactly the same state.
pub trait Fold: Clone + Default + Send + 'static {
    /// One durable change.
    type Op: Clone + fmt::Debug + Send + 'static;
    /// Folds one operation into the state.
    fn apply(&mut self, op: &Self::Op);

    /// What `op` does to the decided log.
    fn log_op(op: &Self::Op) -> LogOp<'_>;

    /// Whether `op` can follow this state at all; a store that reads back an
    /// operation that cannot is corrupt. Everything can, unless a state says otherwise.
    ///
    /// # Errors
    /// What is wrong with `op`, in words.
    fn check(&self, op: &Self::Op) -> Result<(), String> {
        let _ = op;
        Ok(())
    }
}

impl Fold for AcceptorState {
    type Op = AcceptorOp;

    fn apply(&mut self, op: &AcceptorOp) {
        AcceptorState::apply(self, op);
    }

    fn log_op(op: &AcceptorOp) -> LogOp<'_> {
        match op {
            AcceptorOp::Learn { slot, value } => LogOp::Learn { slot: *slot, value, duplicate: false },
            AcceptorOp::Retain(below) => LogOp::Retain(*below),
            _ => LogOp::Other,
        }
    }

    /// The decided log grows in order, and the identity is set once.
    fn check(&self, op: &AcceptorOp) -> Result<(), String> {
        match op {
            AcceptorOp::Learn { slot, .. } if *slot != self.decided => {
                Err(format!("learns slot {slot} with {} decided; the decided log has a gap", self.decided))
            }
            AcceptorOp::Identity(i) if self.incarnation != 0 && self.incarnation != *i => {
                Err(format!("a second identity {i} after {}", self.incarnation))
            }
            _ => Ok(()),
        }
    }
}

impl Fold for ProposerState {
    type Op = ProposerOp;

    fn apply(&mut self, op: &ProposerOp) {
        ProposerState::apply(self, op);
    }

    fn log_op(op: &ProposerOp) -> LogOp<'_> {
        match op {
            ProposerOp::Learn { slot, value, duplicate } => LogOp::Learn { slot: *slot, value, duplicate: *duplicate },
            ProposerOp::Retain(below) => LogOp::Retain(*below),
            ProposerOp::Round(_) | ProposerOp::Epoch(_) | ProposerOp::Sessions { .. } => LogOp::Other,
        }
    }

    /// A proposer learns its log in order: a `Learn` of any other slot than the next one.
    fn check(&self, op: &ProposerOp) -> Result<(), String> {
        match op {
            ProposerOp::Learn { slot, .. } if *slot != self.log.decided => {
                Err(format!("learns slot {slot} after {} slots; the decided log has a gap", self.log.decided))
            }
            _ => Ok(()),
        }
    }
}

/// One entry of the decided log as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The decided value.
    pub value: Value,
    /// Clients see it as a no-op (a retry that landed twice).
    pub duplicate: bool,
}

/// A page of the decided log, read back from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    /// The first slot the store still holds (retention deleted the ones below).
    pub start: Slot,
    /// The slot of the first entry.
    pub from: Slot,
    /// Consecutive entries from `from`.
    pub entries: Vec<Stored>,
}

/// A read of the decided log that a role asks its runtime for (see [`crate::Ready::reads`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The role's number for it, handed back with the page.
    pub id: u64,
    /// The first slot wanted.
    pub from: Slot,
    /// At most this many entries.
    pub limit: usize,
    /// And at most about this many bytes of values (at least one entry).
    pub max_bytes: usize,
}

/// What a store did since it was opened, for status counters and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `fdatasync` calls.
    pub fsyncs: u64,
    /// Batches written (appends and rewrites).
    pub writes: u64,
    /// Compactions (checkpoints).
    pub compactions: u64,
    /// The size of what is stored, in bytes.
    pub bytes: u64,
}

/// The durable state of a role: one abstraction for every role and every medium.
///
/// A store keeps a [`Fold`] state and the decided log. [`Store::apply`] makes
/// a batch of operations durable atomically; [`Store::load`] gives back the
/// state that every batch applied so far folds into (after a restart: every
/// batch that `apply` returned `Ok` for, and no part of any other);
/// [`Store::read`] reads the decided log back.
pub trait Store: Send + 'static {
    /// The state the store's operations fold into.
    type State: Fold;

    /// The state every op applied so far folds into.
    ///
    /// # Errors
    /// When the stored state cannot be read or is corrupt.
    fn load(&mut self) -> Result<Self::State, StorageError>;

    /// Applies `ops` atomically; returns once they are durable.
    ///
    /// # Errors
    /// When they could not be made durable; then none of them may be visible
    /// after a restart unless all of them are.
    fn apply(&mut self, ops: &[<Self::State as Fold>::Op]) -> Result<(), StorageError>;

    /// As [`Store::apply`], given `folded`: the state that every op applied
    /// so far, `ops` included, folds into (the role's own, which folded them
    /// as it made them: [`crate::Role::folded`]). A store that keeps the
    /// state may take it rather than fold `ops` a second time; once given
    /// one, it must be given one with every batch.
    ///
    /// # Errors
    /// As for [`Store::apply`].
    fn apply_folded(&mut self, ops: &[<Self::State as Fold>::Op], folded: &Self::State) -> Result<(), StorageError> {
        let _ = folded;
        self.apply(ops)
    }

    /// Reads the decided log from `from` on: at most `limit` entries, and no
    /// more than about `max_bytes` of values (but at least one entry, if any).
    /// Slots below the store's first are not there (the page says where it starts).
    ///
    /// # Errors
    /// When the log cannot be read or is corrupt.
    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError>;

    /// What the store did so far.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

/// The decided log in memory: what [`MemStore`] keeps, and what a page is cut from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemLog {
    /// The slot of the first entry.
    pub start: Slot,
    /// The entries from `start` on.
    pub entries: VecDeque<Stored>,
}

impl MemLog {
    /// One past the last slot held.
    pub fn end(&self) -> Slot {
        Slot(self.start.0 + self.entries.len() as u64)
    }

    /// Applies what `op` does to the log.
    pub fn apply(&mut self, op: LogOp<'_>) {
        match op {
            LogOp::Learn { slot, value, duplicate } => {
                if slot == self.end() {
                    self.entries.push_back(Stored { value: value.clone(), duplicate });
                }
            }
            LogOp::Retain(below) => {
                if below >= self.end() {
                    self.entries.clear();
                    self.start = below;
                } else {
                    while self.start < below {
                        self.entries.pop_front();
                        self.start = self.start.next();
                    }
                }
            }
            LogOp::Other => {}
        }
    }

    /// A page from `from` (see [`Store::read`]).
    pub fn read(&self, from: Slot, limit: usize, max_bytes: usize) -> LogPage {
        let from = from.max(self.start);
        let skip = (from.0 - self.start.0) as usize;
        let mut bytes = 0;
        let entries = self
            .entries
            .iter()
            .skip(skip)
            .take(limit)
            .enumerate()
            .take_while(|(i, e)| {
                bytes += e.value.wire_len();
                *i == 0 || bytes <= max_bytes
            })
            .map(|(_, e)| e.clone())
            .collect();
        LogPage { start: self.start, from, entries }
    }
}

/// A store in memory: for tests and the simulator, where it plays the disk.
#[derive(Clone, Debug, Default)]
pub struct MemStore<S> {
    /// The durable state.
    pub state: S,
    /// The durable decided log.
    pub log: MemLog,
}

impl<S: Fold> MemStore<S> {
    /// A store that already holds `state` and an empty log.
    pub fn new(state: S) -> MemStore<S> {
        MemStore { state, log: MemLog::default() }
    }
}

impl<S: Fold> Store for MemStore<S> {
    type State = S;

    fn load(&mut self) -> Result<S, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[S::Op]) -> Result<(), StorageError> {
        for op in ops {
            self.state.apply(op);
            self.log.apply(S::log_op(op));
        }
        Ok(())
    }

    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        Ok(self.log.read(from, limit, max_bytes))
    }
}

#[cfg(test)]
mod tests {
    //! The fold every store recovers through: each test applies operations to a
    //! state and checks what a restarted role would see.

    use paxos_proto::{Config, Member, NodeId};

    use super::*;

    fn b(round: u64, proposer: u32) -> Ballot {
        Ballot::new(round, NodeId(proposer))
    }

    fn cmd(seq: u64) -> Value {
        Value::Command(Command::new(ClientId(1), seq, format!("v{seq}")))
    }

    fn accept(slot: u64, ballot: Ballot, value: Value) -> AcceptorOp {
        AcceptorOp::Accept { slot: Slot(slot), ballot, value }
    }

    fn fold(ops: &[AcceptorOp]) -> AcceptorState {
        let mut s = AcceptorState::default();
        for op in ops {
            s.apply(op);
        }
        s
    }

    fn config(epoch: u32, lifetime: u64) -> Config {
        let member = |id: u32| Member { id: NodeId(id), addr: format!("a{id}"), incarnation: None };
        Config { epoch, acceptors: vec![member(1)], proposers: vec![member(1)], session_lifetime_ms: lifetime }
    }

    /// P1a on disk: a recovered promise is the highest ever written, whatever the order of the records.
    #[test]
    fn recovered_promise_never_goes_down() {
        let s = fold(&[AcceptorOp::Promise(b(3, 1)), AcceptorOp::Promise(b(2, 2)), AcceptorOp::Promise(b(3, 2))]);
        assert_eq!(s.promised, b(3, 2));
    }

    /// Phase 2b on disk: a later vote at a slot replaces the earlier one (the acceptor reports the last).
    #[test]
    fn later_accept_replaces_earlier_at_a_slot() {
        let s = fold(&[accept(4, b(1, 1), cmd(1)), accept(4, b(2, 2), cmd(2))]);
        assert_eq!(s.accepted[&Slot(4)], (b(2, 2), cmd(2)));
    }

    /// The decided log takes over from the votes: a learned slot leaves the
    /// accepted map, later votes below the decided prefix are ignored, and a
    /// retention point beyond the prefix restarts the log there.
    #[test]
    fn learn_and_retain_move_the_decided_prefix() {
        let s = fold(&[
            accept(0, b(1, 1), cmd(1)),
            accept(1, b(1, 1), cmd(2)),
            accept(5, b(1, 1), cmd(3)),
            AcceptorOp::Learn { slot: Slot(0), value: cmd(1) },
            AcceptorOp::Learn { slot: Slot(2), value: cmd(9) },
            accept(0, b(2, 1), cmd(4)),
        ]);
        assert_eq!(s.decided, Slot(1), "a learn out of order does not count");
        assert_eq!(s.accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(1), Slot(5)]);
        let mut s = s;
        s.apply(&AcceptorOp::Retain(Slot(3)));
        assert_eq!((s.decided, s.start), (Slot(3), Slot(3)));
        assert_eq!(s.accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(5)]);
    }

    /// Joining an epoch voids what older epochs accepted from its first slot on, and epochs only go up.
    #[test]
    fn join_voids_older_epochs_beyond_its_start() {
        let e2 = Ballot::in_epoch(2, 1, NodeId(1));
        let s = fold(&[
            accept(3, b(5, 1), cmd(1)),
            accept(6, b(5, 1), cmd(2)),
            accept(7, e2, cmd(3)),
            AcceptorOp::Join(Epoch { start: Slot(5), config: config(2, 1) }),
            AcceptorOp::Join(Epoch { start: Slot(9), config: config(1, 1) }),
        ]);
        assert_eq!(s.accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(3), Slot(7)]);
        assert_eq!(s.epoch_number(), 2);
    }

    /// The digest chain: known from slot 0 on, claimed at every eighth slot, the same on an
    /// acceptor's fold and a proposer's; unknown (and unclaimed) once the log restarts later.
    #[test]
    fn the_digest_chain_follows_the_log_from_slot_0_only() {
        let learns: Vec<AcceptorOp> = (0..20).map(|i| AcceptorOp::Learn { slot: Slot(i), value: cmd(i + 1) }).collect();
        let acceptor = fold(&learns);
        let mut proposer = ProposerState::default();
        for i in 0..20 {
            proposer.apply(&ProposerOp::Learn { slot: Slot(i), value: cmd(i + 1), duplicate: false });
        }
        let mut chain = DIGEST_START;
        for i in 0..16 {
            chain = Digest::fold(chain, Slot(i), &cmd(i + 1));
        }
        assert_eq!(acceptor.log.point, Some(Digest { slot: Slot(16), chain }));
        assert_eq!(acceptor.log.point, proposer.log.point);
        assert_eq!(acceptor.log.chain, proposer.log.chain);
        // Another value anywhere: another chain from there on.
        let mut other = learns.clone();
        other[3] = AcceptorOp::Learn { slot: Slot(3), value: Value::Noop };
        assert_ne!(fold(&other).log.point, acceptor.log.point);
        // A log that restarts later does not know its chain, and claims none.
        let mut restarted = acceptor.clone();
        restarted.apply(&AcceptorOp::Retain(Slot(30)));
        for i in 30..45 {
            restarted.apply(&AcceptorOp::Learn { slot: Slot(i), value: cmd(i + 1) });
        }
        assert_eq!((restarted.log.chain, restarted.log.point), (None, None));
        // Retention below the decided prefix changes nothing.
        let mut retained = acceptor.clone();
        retained.apply(&AcceptorOp::Retain(Slot(10)));
        assert_eq!(retained.log.point, acceptor.log.point);
    }

    /// A checkpoint of a release before digests (no `chain`, no `point`)
    /// loads with neither known; one of this release keeps both.
    #[test]
    fn a_checkpoint_without_a_chain_loads_as_unknown() {
        let mut log = LogState::default();
        log.apply(Slot(0), &cmd(1));
        let json = serde_json::to_value(&log).expect("encodes");
        assert!(json.get("chain").is_some());
        let mut old = json.clone();
        old.as_object_mut().expect("an object").retain(|k, _| k != "chain" && k != "point");
        let loaded: LogState = serde_json::from_value(old).expect("decodes");
        assert_eq!((loaded.chain, loaded.point, loaded.decided), (None, None, Slot(1)));
        let again: LogState = serde_json::from_value(json).expect("decodes");
        assert_eq!(again, log);
    }

    /// The identity is set once; a second, different one is corruption.
    #[test]
    fn identity_is_set_once() {
        let s = fold(&[AcceptorOp::Identity(7), AcceptorOp::Identity(8)]);
        assert_eq!(s.incarnation, 7);
        assert!(s.check(&AcceptorOp::Identity(8)).is_err());
        assert!(s.check(&AcceptorOp::Identity(7)).is_ok());
    }

    /// A log that restarted later (retention) adopts the epoch in force there, said by a peer; a
    /// configuration it then decides is in force if it is later than the one known, even if epochs
    /// between were in the slots it never held; an earlier or equal one changes nothing.
    #[test]
    fn a_restarted_log_adopts_the_epoch_in_force_and_any_later_configuration() {
        let mut log = LogState::default();
        log.retain(Slot(50));
        log.adopt(&Epoch { start: Slot(60), config: config(2, 1_000) });
        assert_eq!(log.epoch_number(), 0, "an epoch that starts beyond the restart is not in force there");
        log.adopt(&Epoch { start: Slot(40), config: config(2, 1_000) });
        assert_eq!(log.epoch_number(), 2);
        log.apply(Slot(50), &Value::Config(config(2, 5)));
        assert_eq!(log.epoch.as_ref().map(|e| e.start), Some(Slot(40)), "epoch 2 again changes nothing");
        log.apply(Slot(51), &Value::Config(config(4, 5)));
        assert_eq!((log.epoch_number(), log.epoch.as_ref().map(|e| e.start)), (4, Some(Slot(52))));
    }

    /// Sessions: a retry is a duplicate while its session lives, and a
    /// session idle for longer than the lifetime (by the log's clock) is
    /// forgotten, so an old retry lands again.
    #[test]
    fn sessions_expire_by_the_logs_clock() {
        let at = |c: u64, seq: u64, at: u64| Value::Command(Command { at, ..Command::new(ClientId(c), seq, "x") });
        let mut log = LogState::default();
        assert!(!log.apply(Slot(0), &Value::Config(config(1, 1_000))));
        assert!(!log.apply(Slot(1), &at(1, 1, 10)));
        assert!(log.apply(Slot(2), &at(1, 1, 500)), "a retry within the lifetime is a duplicate");
        assert!(!log.apply(Slot(3), &at(2, 1, 1_600)));
        assert!(log.session(ClientId(1)).is_none(), "client 1 idle for 1590 ms > 1000");
        assert!(!log.apply(Slot(4), &at(1, 1, 1_700)), "its old request lands again");
        assert_eq!(log.session(ClientId(1)).map(|s| s.slot), Some(Slot(4)));
    }

    /// Sweeps forget expired sessions, counted, at fixed slots.
    #[test]
    fn sweeps_count_evictions() {
        let mut log = LogState::default();
        log.apply(Slot(0), &Value::Config(config(1, 10)));
        for slot in 1..=SESSION_SWEEP_SLOTS {
            let c = Command { at: slot * 100, ..Command::new(ClientId(slot), 1, "x") };
            log.apply(Slot(slot), &Value::Command(c));
        }
        assert_eq!(log.sessions.len(), 1, "only the newest session is live after the sweep");
        assert_eq!(log.evicted, SESSION_SWEEP_SLOTS - 1);
    }

    /// The in-memory stores recover what was applied to them, and read their log back in pages.
    #[test]
    fn memory_stores_load_and_read_what_was_applied() {
        let mut a = MemStore::<AcceptorState>::default();
        a.apply(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]).unwrap();
        assert_eq!(a.load().unwrap(), fold(&[AcceptorOp::Promise(b(1, 1)), accept(0, b(1, 1), cmd(1))]));

        let mut p = MemStore::<ProposerState>::default();
        let learn = |slot: u64, value: Value| ProposerOp::Learn { slot: Slot(slot), value, duplicate: false };
        p.apply(&[ProposerOp::Round(4), learn(0, Value::Noop)]).unwrap();
        p.apply(&[ProposerOp::Round(2), learn(1, cmd(1)), learn(2, cmd(2))]).unwrap();
        let state = p.load().unwrap();
        assert_eq!((state.round, state.log.decided), (4, Slot(3)));
        let page = p.read(Slot(1), 10, 1).unwrap();
        assert_eq!((page.from, page.entries.len()), (Slot(1), 1), "at least one entry, then the byte budget");
        p.apply(&[ProposerOp::Retain(Slot(2))]).unwrap();
        let page = p.read(Slot(0), 10, 1 << 20).unwrap();
        assert_eq!((page.start, page.from, page.entries.len()), (Slot(2), Slot(2), 1));
    }

    /// Ballots are never reused: the recovered round is the highest reserved.
    #[test]
    fn recovered_round_is_the_highest() {
        let mut s = ProposerState::default();
        for r in [3, 9, 5] {
            s.apply(&ProposerOp::Round(r));
        }
        assert_eq!(s.round, 9);
    }

    /// A proposer learns its log in order: a record for any other slot is a corrupt store.
    #[test]
    #[should_panic(expected = "a proposer learns its log in order")]
    fn learn_out_of_order_is_refused() {
        let mut s = ProposerState::default();
        s.apply(&ProposerOp::Learn { slot: Slot(1), value: Value::Noop, duplicate: false });
    }
}
