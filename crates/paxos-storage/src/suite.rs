//! The storage conformance suite: one set of checks that every [`Store`] runs.
//!
//! A store is driven through a [`Harness`] that knows how to open it again
//! after a crash and, where the medium allows, how to make a write fail half
//! way. The oracle is the core's own [`Fold`]: whatever a store does, loading
//! must give the state that the batches it acknowledged fold into, and never
//! a part of a batch it did not acknowledge (openraft's `testing/log/suite.rs`
//! and omnipaxos's atomic storage test are the models).
//!
//! [`run`] runs every check on one harness and returns the first failure in
//! words, so that a store's own test asserts it is `Ok` and the suite's test
//! of itself asserts that [`BrokenStore`], a deliberately wrong store, fails it.

use std::fmt;

use paxos_core::{
    AcceptorOp, AcceptorState, Fold, LogPage, MemLog, MemStore, ProposerOp, ProposerState, StorageError, Store,
};
use paxos_proto::{Ballot, ClientId, Command, NodeId, Slot, Value};

/// How the suite drives one kind of store.
pub trait Harness {
    /// The state the store keeps.
    type State: Fold + PartialEq + fmt::Debug;
    /// The store under test.
    type Store: Store<State = Self::State>;

    /// Opens the store: empty the first time, and what a restart finds afterwards.
    fn open(&mut self) -> Self::Store;

    /// The node crashes (`store` is dropped as a killed process leaves it) and starts again.
    fn restart(&mut self, store: Self::Store) -> Self::Store {
        drop(store);
        self.open()
    }

    /// Makes the next [`Store::apply`] of `store` fail after `bytes` bytes of
    /// its batch reached the medium, as a full disk would; false when this
    /// medium cannot fail so (a store in memory), and the check is skipped.
    fn fail_next_apply(&mut self, store: &mut Self::Store, bytes: usize) -> bool;
}

/// A store in memory, whose "disk" survives a restart, as the simulator's does.
#[derive(Debug, Default)]
pub struct MemHarness<S> {
    disk: Option<MemStore<S>>,
}

impl<S: Fold + PartialEq + fmt::Debug> Harness for MemHarness<S> {
    type State = S;
    type Store = MemStore<S>;

    fn open(&mut self) -> MemStore<S> {
        self.disk.take().unwrap_or_default()
    }

    fn restart(&mut self, store: MemStore<S>) -> MemStore<S> {
        store
    }

    fn fail_next_apply(&mut self, _: &mut MemStore<S>, _: usize) -> bool {
        false
    }
}

/// Batches of acceptor operations as a real acceptor emits them: its
/// identity, promises, accepts, re-accepts under a higher ballot, values
/// moving into the decided log, an epoch joined, and values JSON must escape.
pub fn acceptor_history() -> Vec<Vec<AcceptorOp>> {
    let b1 = Ballot::new(1, NodeId(2));
    let b2 = Ballot::new(2, NodeId(1));
    let accept = |slot: u64, ballot: Ballot, value: Value| AcceptorOp::Accept { slot: Slot(slot), ballot, value };
    let learn = |slot: u64, value: Value| AcceptorOp::Learn { slot: Slot(slot), value };
    let mut history = vec![
        vec![AcceptorOp::Identity(77), AcceptorOp::Promise(b1)],
        vec![accept(0, b1, cmd(7, 1, "a")), accept(1, b1, cmd(7, 2, "b")), accept(2, b1, Value::Noop)],
        vec![accept(3, b1, cmd(8, 1, "c\n\"quoted\" é"))],
        vec![AcceptorOp::Promise(b2), accept(3, b2, cmd(8, 1, "c\n\"quoted\" é")), accept(4, b2, cmd(9, 1, "d"))],
        vec![learn(0, cmd(7, 1, "a")), learn(1, cmd(7, 2, "b"))],
        vec![accept(5, b2, cmd(9, 2, "e")), learn(2, Value::Noop)],
    ];
    // Many slots, accepted then decided.
    for round in 0..20u64 {
        let first = 6 + round * 50;
        history.push((0..50).map(|i| accept(first + i, b2, cmd(round, i + 1, &"v".repeat(200)))).collect());
    }
    history.push(vec![learn(3, cmd(8, 1, "c\n\"quoted\" é")), learn(4, cmd(9, 1, "d")), learn(5, cmd(9, 2, "e"))]);
    for round in 0..20u64 {
        let first = 6 + round * 50;
        history.push((0..50).map(|i| learn(first + i, cmd(round, i + 1, &"v".repeat(200)))).collect());
    }
    // The last batch is the one the failure check writes: several operations.
    let b3 = Ballot::in_epoch(1, 3, NodeId(2));
    let config = paxos_proto::Config {
        epoch: 1,
        acceptors: vec![paxos_proto::Member { id: NodeId(1), addr: "a:1".into(), incarnation: Some(77) }],
        proposers: vec![paxos_proto::Member { id: NodeId(2), addr: "p:2".into(), incarnation: None }],
        session_lifetime_ms: 1000,
    };
    history.push(vec![
        AcceptorOp::Join(paxos_proto::Epoch { start: Slot(1006), config }),
        AcceptorOp::Promise(b3),
        accept(1100, b3, cmd(30, 1, "f")),
        accept(1101, b3, Value::Noop),
    ]);
    history
}

/// Batches of proposer operations: rounds (one going down, which must not
/// lower the recovered round), a decided log learned in order (a duplicate
/// among it), and a retention point.
pub fn proposer_history() -> Vec<Vec<ProposerOp>> {
    let learn = |slot: u64, value: Value| ProposerOp::Learn { slot: Slot(slot), value, duplicate: false };
    vec![
        vec![ProposerOp::Round(1)],
        vec![learn(0, cmd(1, 1, "x")), learn(1, Value::Noop)],
        vec![ProposerOp::Round(3), learn(2, cmd(1, 2, "y"))],
        vec![ProposerOp::Learn { slot: Slot(3), value: cmd(1, 2, "y"), duplicate: true }],
        vec![learn(4, cmd(2, 1, "z\t\u{1}"))],
        vec![ProposerOp::Round(2)],
        (5..200).map(|s| learn(s, cmd(3, s, &"w".repeat(100)))).collect(),
        vec![ProposerOp::Retain(Slot(2))],
        (200..260).map(|s| learn(s, cmd(4, s, &"q".repeat(300)))).collect(),
    ]
}

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command::new(ClientId(client), seq, data))
}

/// The decided log `batches` make, as a store must read it back.
pub fn fold_log<'a, S: Fold>(batches: impl IntoIterator<Item = &'a Vec<S::Op>>) -> MemLog
where
    S::Op: 'a,
{
    let mut log = MemLog::default();
    for op in batches.into_iter().flatten() {
        log.apply(S::log_op(op));
    }
    log
}

/// The state `batches` fold into.
pub fn fold<'a, S: Fold>(batches: impl IntoIterator<Item = &'a Vec<S::Op>>) -> S
where
    S::Op: 'a,
{
    let mut state = S::default();
    for op in batches.into_iter().flatten() {
        state.apply(op);
    }
    state
}

/// A failed check, in words.
pub type Failure = String;

fn expect_eq<S: PartialEq + fmt::Debug>(got: Result<S, StorageError>, want: &S, what: &str) -> Result<(), Failure> {
    match got {
        Ok(got) if got == *want => Ok(()),
        Ok(got) => Err(format!("{what}: loaded {got:?}, expected {want:?}")),
        Err(e) => Err(format!("{what}: load failed: {e}")),
    }
}

fn applied<S: Store>(store: &mut S, batch: &[<S::State as Fold>::Op], what: &str) -> Result<(), Failure> {
    store.apply(batch).map_err(|e| format!("{what}: apply failed: {e}"))
}

/// A fresh store is empty; after every batch, loading gives the fold of
/// every batch so far; an empty batch changes nothing.
///
/// # Errors
/// The first mismatch, in words.
pub fn apply_then_load_folds<H: Harness>(h: &mut H, history: &[Vec<<H::State as Fold>::Op>]) -> Result<(), Failure> {
    let mut store = h.open();
    expect_eq(store.load(), &H::State::default(), "a fresh store")?;
    for (i, batch) in history.iter().enumerate() {
        applied(&mut store, batch, &format!("batch {i}"))?;
        expect_eq(store.load(), &fold(&history[..=i]), &format!("after batch {i}"))?;
    }
    applied(&mut store, &[], "an empty batch")?;
    expect_eq(store.load(), &fold(history), "after an empty batch")
}

/// A restart gives back every acknowledged batch, later batches go on from
/// there, and restarting twice changes nothing.
///
/// # Errors
/// The first mismatch, in words.
pub fn restart_gives_same_state<H: Harness>(h: &mut H, history: &[Vec<<H::State as Fold>::Op>]) -> Result<(), Failure> {
    let half = history.len() / 2;
    let mut store = h.open();
    for (i, batch) in history[..half].iter().enumerate() {
        applied(&mut store, batch, &format!("batch {i}"))?;
    }
    let mut store = h.restart(store);
    expect_eq(store.load(), &fold(&history[..half]), "after a restart")?;
    for (i, batch) in history[half..].iter().enumerate() {
        applied(&mut store, batch, &format!("batch {} after the restart", half + i))?;
    }
    let store = h.restart(store);
    let mut store = h.restart(store);
    expect_eq(store.load(), &fold(history), "after two more restarts")
}

/// The decided log reads back as the `Learn` operations made it, page by
/// page from any slot, before and after a restart; slots below the
/// retention point are not there, and the page says where the log starts.
///
/// # Errors
/// The first mismatch, in words.
pub fn reads_give_the_decided_log<H: Harness>(
    h: &mut H,
    history: &[Vec<<H::State as Fold>::Op>],
) -> Result<(), Failure> {
    let want = fold_log::<H::State>(history);
    let mut store = h.open();
    for (i, batch) in history.iter().enumerate() {
        applied(&mut store, batch, &format!("batch {i}"))?;
    }
    for round in ["before a restart", "after a restart"] {
        for from in
            [0, 1, 3, want.start.0, want.start.0 + 7, want.end().0.saturating_sub(1), want.end().0, want.end().0 + 5]
        {
            for (limit, max_bytes) in [(1, 1 << 20), (10, 1 << 20), (1000, 300), (100_000, 1 << 30)] {
                let what = format!("{round}: read from {from}, {limit} entries, {max_bytes} bytes");
                let got = store.read(Slot(from), limit, max_bytes).map_err(|e| format!("{what}: {e}"))?;
                let expected = want.read(Slot(from), limit, max_bytes);
                if got.from != expected.from || got.entries != expected.entries {
                    return Err(format!(
                        "{what}: got {} entries from {}, expected {} from {}",
                        got.entries.len(),
                        got.from,
                        expected.entries.len(),
                        expected.from
                    ));
                }
                if got.start < expected.start {
                    return Err(format!(
                        "{what}: the log starts at {}, below retention's {}",
                        got.start, expected.start
                    ));
                }
            }
        }
        store = h.restart(store);
    }
    Ok(())
}

/// A batch whose write fails part way is either wholly visible after a
/// restart or not at all, and the batches before it all are. `store` holds
/// every batch of `history` but the last; the last is written with a failure
/// after every byte count up to `batch_bytes` (in steps, for long batches).
///
/// # Errors
/// The first half-visible batch, in words.
pub fn failed_apply_is_all_or_nothing<H: Harness>(
    h: &mut H,
    mut store: H::Store,
    history: &[Vec<<H::State as Fold>::Op>],
    batch_bytes: usize,
) -> Result<(), Failure> {
    let (last, before) = history.split_last().expect("a history of at least one batch");
    let none = fold::<H::State>(before);
    let all = fold::<H::State>(history);
    let step = (batch_bytes / 64).max(1);
    for bytes in (0..batch_bytes).step_by(step) {
        if !h.fail_next_apply(&mut store, bytes) {
            return Ok(());
        }
        if store.apply(last).is_ok() {
            return Err(format!("a write failing after {bytes} bytes reported success"));
        }
        store = h.restart(store);
        let seen = store.load().map_err(|e| format!("after the failure at byte {bytes}: load failed: {e}"))?;
        if seen != none && seen != all {
            return Err(format!("after a write failing at byte {bytes}, the store holds part of the batch: {seen:?}"));
        }
        if seen == all {
            // The whole batch made it; nothing left to try at later bytes.
            return Ok(());
        }
    }
    Ok(())
}

/// Runs every check of the suite on fresh harnesses from `fresh`, with
/// `history`; `batch_bytes` bounds the byte counts at which a write of the
/// last batch is made to fail.
///
/// # Errors
/// The first failure, prefixed with the check's name.
pub fn run<H: Harness>(
    mut fresh: impl FnMut() -> H,
    history: &[Vec<<H::State as Fold>::Op>],
    batch_bytes: usize,
) -> Result<(), Failure> {
    apply_then_load_folds(&mut fresh(), history).map_err(|e| format!("apply_then_load_folds: {e}"))?;
    restart_gives_same_state(&mut fresh(), history).map_err(|e| format!("restart_gives_same_state: {e}"))?;
    reads_give_the_decided_log(&mut fresh(), history).map_err(|e| format!("reads_give_the_decided_log: {e}"))?;
    let mut h = fresh();
    let mut store = h.open();
    for batch in &history[..history.len() - 1] {
        applied(&mut store, batch, "setting up the failure check")?;
    }
    failed_apply_is_all_or_nothing(&mut h, store, history, batch_bytes)
        .map_err(|e| format!("failed_apply_is_all_or_nothing: {e}"))
}

/// Runs the suite on the acceptor's and the proposer's states.
///
/// # Errors
/// The first failure, naming the state.
pub fn run_both<A, P>(acceptor: impl FnMut() -> A, proposer: impl FnMut() -> P) -> Result<(), Failure>
where
    A: Harness<State = AcceptorState>,
    P: Harness<State = ProposerState>,
{
    run(acceptor, &acceptor_history(), 4096).map_err(|e| format!("acceptor state: {e}"))?;
    run(proposer, &proposer_history(), 4096).map_err(|e| format!("proposer state: {e}"))
}

/// A deliberately wrong store, to show that the suite bites: it applies a
/// batch op by op and, when told to fail, stops half way with the first
/// half of the batch applied, as a store without atomic batches would.
#[derive(Debug, Default)]
pub struct BrokenStore<S> {
    state: S,
    log: MemLog,
    fail_after_ops: Option<usize>,
}

impl<S: Fold> Store for BrokenStore<S> {
    type State = S;

    fn load(&mut self) -> Result<S, StorageError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[S::Op]) -> Result<(), StorageError> {
        for (i, op) in ops.iter().enumerate() {
            if self.fail_after_ops.is_some_and(|n| i >= n) {
                self.fail_after_ops = None;
                return Err(StorageError::Io("disk full".into()));
            }
            self.state.apply(op);
            self.log.apply(S::log_op(op));
        }
        Ok(())
    }

    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        Ok(self.log.read(from, limit, max_bytes))
    }
}

/// The harness of [`BrokenStore`]: it survives restarts as memory does, and
/// fails a write after half the batch's operations.
#[derive(Debug, Default)]
pub struct BrokenHarness<S> {
    disk: Option<BrokenStore<S>>,
}

impl<S: Fold + PartialEq + fmt::Debug> Harness for BrokenHarness<S> {
    type State = S;
    type Store = BrokenStore<S>;

    fn open(&mut self) -> BrokenStore<S> {
        self.disk.take().unwrap_or_default()
    }

    fn restart(&mut self, store: BrokenStore<S>) -> BrokenStore<S> {
        store
    }

    fn fail_next_apply(&mut self, store: &mut BrokenStore<S>, _: usize) -> bool {
        // Fail after the first operation of the batch.
        store.fail_after_ops = Some(1);
        true
    }
}
