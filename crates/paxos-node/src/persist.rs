//! Making a role's writes durable: in the loop, or on a thread of their own.
//!
//! The node loop hands each `Ready`'s writes to a [`Persist`] as one numbered
//! batch and learns, in order, up to which batch everything is durable.
//!
//! - [`Persist::Inline`]: the loop writes and fsyncs the batch itself, blocked
//!   meanwhile; the batch is durable when [`Persist::submit`] returns. An
//!   acceptor works so: it has nothing to send before its writes are durable,
//!   and it saves two thread switches per batch.
//! - [`Persist::Background`]: a thread owns the store and the loop goes on
//!   while it writes and fsyncs, so that a leader keeps proposing and
//!   answering during its own fsync. Batches that queue up while the thread is
//!   in an fsync are written together with one write and one fsync (group
//!   commit across wake-ups), and completions come back in order on a channel
//!   the loop selects on. The thread syncs at most once per `min_interval`:
//!   what a proposer sends after its writes (heartbeats, prepares, status
//!   answers) can wait a millisecond or two, and fewer fsyncs of its own
//!   leave the disk's journal to the acceptors, whose fsync every value waits for.
//!
//! Either way batches become durable strictly in the order they were
//! submitted, and each is applied atomically (several may share one
//! atomic append). A failed batch is reported once; the thread stops and
//! the node must stop too, without sending what waited on it.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxos_core::{AcceptorOp, AcceptorStore, ProposerOp, ProposerStore, StorageError};
use tokio::sync::mpsc;

use crate::store::{StoreStats, StoreStatsSource};

/// A store the loop can write a role's operations to, from any thread.
pub trait Durable<Op>: Send + 'static {
    /// Makes `ops` durable, atomically.
    ///
    /// # Errors
    /// When they could not be made durable.
    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError>;
    /// What the store did so far.
    fn stats(&self) -> StoreStats;
}

impl<S: AcceptorStore + StoreStatsSource + Send + 'static> Durable<AcceptorOp> for S {
    fn apply(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError> {
        AcceptorStore::apply(self, ops)
    }

    fn stats(&self) -> StoreStats {
        StoreStatsSource::stats(self)
    }
}

impl<S: ProposerStore + StoreStatsSource + Send + 'static> Durable<ProposerOp> for S {
    fn apply(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError> {
        ProposerStore::apply(self, ops)
    }

    fn stats(&self) -> StoreStats {
        StoreStatsSource::stats(self)
    }
}

/// A batch number: batches are numbered 1, 2, ... in submission order.
pub type BatchSeq = u64;

/// Where the writes of a loop go.
pub enum Persist<Op, S> {
    /// Written and synced by the loop itself.
    Inline {
        /// The store.
        store: S,
        /// The last batch submitted (and so durable).
        durable: BatchSeq,
    },
    /// Written and synced by a thread of its own.
    Background(Background<Op>),
}

/// The loop's side of a persist thread.
pub struct Background<Op> {
    jobs: Option<std_mpsc::Sender<(BatchSeq, Vec<Op>)>>,
    done: mpsc::UnboundedReceiver<(BatchSeq, Result<(), StorageError>)>,
    stats: Arc<Mutex<StoreStats>>,
    thread: Option<JoinHandle<()>>,
    submitted: BatchSeq,
    durable: BatchSeq,
}

impl<Op: Send + 'static, S: Durable<Op>> Persist<Op, S> {
    /// Writes in the loop.
    pub fn inline(store: S) -> Persist<Op, S> {
        Persist::Inline { store, durable: 0 }
    }

    /// Starts the persist thread, named after `node`, which owns `store` from
    /// now on and syncs at most once per `min_interval`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn background(store: S, node: &str, min_interval: Duration) -> std::io::Result<Persist<Op, S>> {
        let (jobs, jobs_rx) = std_mpsc::channel::<(BatchSeq, Vec<Op>)>();
        let (done_tx, done) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(store.stats()));
        let shared = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name(format!("persist-{node}"))
            .spawn(move || persist_thread(store, &jobs_rx, &done_tx, &shared, min_interval))?;
        Ok(Persist::Background(Background {
            jobs: Some(jobs),
            done,
            stats,
            thread: Some(thread),
            submitted: 0,
            durable: 0,
        }))
    }

    /// Hands over the writes of one `Ready` and returns its batch number.
    /// Inline, the batch is durable when this returns.
    ///
    /// # Errors
    /// Inline: when the batch could not be made durable. In the background:
    /// when the thread already stopped on an error.
    pub fn submit(&mut self, ops: Vec<Op>) -> Result<BatchSeq, StorageError> {
        match self {
            Persist::Inline { store, durable } => {
                store.apply(&ops)?;
                *durable += 1;
                Ok(*durable)
            }
            Persist::Background(b) => {
                b.submitted += 1;
                let sent = b.jobs.as_ref().is_some_and(|jobs| jobs.send((b.submitted, ops)).is_ok());
                if !sent {
                    // The thread stops only after a failed write: report that failure, not its symptom.
                    while let Ok((_, result)) = b.done.try_recv() {
                        result?;
                    }
                    return Err(StorageError::Io("the persist thread stopped".into()));
                }
                Ok(b.submitted)
            }
        }
    }

    /// The last batch submitted.
    pub fn submitted(&self) -> BatchSeq {
        match self {
            Persist::Inline { durable, .. } => *durable,
            Persist::Background(b) => b.submitted,
        }
    }

    /// Every batch up to this one is durable.
    pub fn durable(&self) -> BatchSeq {
        match self {
            Persist::Inline { durable, .. } => *durable,
            Persist::Background(b) => b.durable,
        }
    }

    /// Waits until the persist thread reports progress and returns the new
    /// durable batch; never completes inline or once nothing is outstanding
    /// (a disabled `select!` branch).
    ///
    /// # Errors
    /// When a batch could not be made durable.
    pub async fn progress(&mut self) -> Result<BatchSeq, StorageError> {
        match self {
            Persist::Background(b) if b.durable < b.submitted => match b.done.recv().await {
                Some((seq, Ok(()))) => {
                    debug_assert!(seq > b.durable && seq <= b.submitted, "batches complete in order");
                    b.durable = seq;
                    Ok(seq)
                }
                Some((_, Err(e))) => Err(e),
                None => Err(StorageError::Io("the persist thread stopped".into())),
            },
            _ => std::future::pending().await,
        }
    }

    /// What the store did so far.
    pub fn stats(&self) -> StoreStats {
        match self {
            Persist::Inline { store, .. } => store.stats(),
            Persist::Background(b) => *b.stats.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }
}

impl<Op> Drop for Background<Op> {
    fn drop(&mut self) {
        // Closing the queue ends the thread after what it holds.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The persist thread: takes every batch that is queued (waiting, when the
/// last sync was less than `min_interval` ago, for the rest of it), writes
/// them as one, syncs once, reports the last; stops when the queue closes or
/// a write fails.
fn persist_thread<Op, S: Durable<Op>>(
    mut store: S,
    jobs: &std_mpsc::Receiver<(BatchSeq, Vec<Op>)>,
    done: &mpsc::UnboundedSender<(BatchSeq, Result<(), StorageError>)>,
    stats: &Mutex<StoreStats>,
    min_interval: Duration,
) {
    let mut ops = Vec::new();
    let mut last_sync: Option<Instant> = None;
    while let Ok((mut last, batch)) = jobs.recv() {
        ops.extend(batch);
        if let Some(wake) = last_sync.map(|t| t + min_interval) {
            while let Some(left) = wake.checked_duration_since(Instant::now()) {
                match jobs.recv_timeout(left) {
                    Ok((seq, batch)) => {
                        last = seq;
                        ops.extend(batch);
                    }
                    Err(_) => break, // due, or the loop is done: write what we have
                }
            }
        }
        while let Ok((seq, batch)) = jobs.try_recv() {
            last = seq;
            ops.extend(batch);
        }
        let result = store.apply(&ops);
        last_sync = Some(Instant::now());
        ops.clear();
        *stats.lock().unwrap_or_else(PoisonError::into_inner) = store.stats();
        let failed = result.is_err();
        if done.send((last, result)).is_err() || failed {
            return;
        }
    }
}
