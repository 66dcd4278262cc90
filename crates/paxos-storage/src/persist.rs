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
//!   commit across wake-ups), and completions come back in order through a
//!   callback that the caller gives (the daemons' loop sends them on a channel
//!   it selects on, and hands each to [`Persist::completed`]). Nothing here
//!   knows an async runtime. The thread syncs at most once per `min_interval`:
//!   what a proposer sends after its writes (heartbeats, prepares, status
//!   answers) can wait a millisecond or two, and fewer fsyncs of its own
//!   leave the disk's journal to the acceptors, whose fsync every value waits for.
//!
//! Either way batches become durable strictly in the order they were
//! submitted, and each is applied atomically (several may share one
//! atomic append). A failed batch is reported once; the thread stops and
//! the node must stop too, without sending what waited on it. A failed
//! *read* (a damaged segment of the decided log) fails only itself: its page
//! carries the error, and the batch and the other reads go on.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxos_core::{Fold, LogPage, ReadRequest, StorageError, Store, StoreStats};

/// A batch number: batches are numbered 1, 2, ... in submission order.
pub type BatchSeq = u64;

/// Pages of the decided log read after a batch's writes: `(read id, page)`,
/// or why that read failed. A failed read fails only itself: the writes
/// are durable, and the role answers nothing for it
/// ([`paxos_core::Role::on_read_failed`]).
pub type Pages = Vec<(u64, Result<LogPage, StorageError>)>;

/// What the persist thread reports: every batch up to this one is durable
/// (and the reads of those batches, done after their writes), or what failed.
pub type Completion = (BatchSeq, Result<Pages, StorageError>);

/// One submitted batch: its number, writes and reads.
type Job<Op> = (BatchSeq, Vec<Op>, Vec<ReadRequest>);

type OpOf<S> = <<S as Store>::State as Fold>::Op;

/// Where the writes of a loop go.
pub enum Persist<S: Store> {
    /// Written and synced by the loop itself.
    Inline {
        /// The store.
        store: S,
        /// The last batch submitted (and so durable).
        durable: BatchSeq,
    },
    /// Written and synced by a thread of its own.
    Background(Background<OpOf<S>>),
}

/// The loop's side of a persist thread.
pub struct Background<Op> {
    jobs: Option<std_mpsc::Sender<Job<Op>>>,
    /// What the thread last reported of its store, and the error it stopped on.
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
    submitted: BatchSeq,
    durable: BatchSeq,
}

#[derive(Default)]
struct Shared {
    stats: StoreStats,
    failed: Option<StorageError>,
}

impl<S: Store> Persist<S> {
    /// Writes in the loop.
    pub fn inline(store: S) -> Persist<S> {
        Persist::Inline { store, durable: 0 }
    }

    /// Starts the persist thread, named after `node`, which owns `store` from
    /// now on and syncs at most once per `min_interval`. It calls `done` with
    /// each completion, in order, from its own thread; when `done` returns
    /// false (nobody listens any more) the thread stops.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn background(
        store: S,
        node: &str,
        min_interval: Duration,
        done: impl FnMut(Completion) -> bool + Send + 'static,
    ) -> std::io::Result<Persist<S>> {
        let (jobs, jobs_rx) = std_mpsc::channel::<Job<OpOf<S>>>();
        let shared = Arc::new(Mutex::new(Shared { stats: store.stats(), failed: None }));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("persist-{node}"))
            .spawn(move || persist_thread(store, &jobs_rx, done, &theirs, min_interval))?;
        Ok(Persist::Background(Background { jobs: Some(jobs), shared, thread: Some(thread), submitted: 0, durable: 0 }))
    }

    /// Hands over the writes and reads of one `Ready` and returns its batch
    /// number. Inline, the batch is durable when this returns, and its reads
    /// come with it; in the background they come with its completion.
    /// `folded` is the role's state, when it keeps it whole ([`paxos_core::Role::folded`]):
    /// inline, the store takes it rather than fold the batch again.
    ///
    /// # Errors
    /// Inline: when the batch could not be made durable (a failed read is in its page). In
    /// the background: when the thread already stopped on an error (that error is returned).
    pub fn submit(
        &mut self,
        ops: Vec<OpOf<S>>,
        reads: Vec<ReadRequest>,
        folded: Option<&S::State>,
    ) -> Result<(BatchSeq, Pages), StorageError> {
        match self {
            Persist::Inline { store, durable } => {
                match folded {
                    Some(state) => store.apply_folded(&ops, state)?,
                    None => store.apply(&ops)?,
                }
                *durable += 1;
                Ok((*durable, serve(store, &reads)))
            }
            Persist::Background(b) => {
                b.submitted += 1;
                let sent = b.jobs.as_ref().is_some_and(|jobs| jobs.send((b.submitted, ops, reads)).is_ok());
                if !sent {
                    // The thread stops only after a failed write: report that failure, not its symptom.
                    let failed = b.shared.lock().unwrap_or_else(PoisonError::into_inner).failed.clone();
                    return Err(failed.unwrap_or_else(|| StorageError::Io("the persist thread stopped".into())));
                }
                Ok((b.submitted, Vec::new()))
            }
        }
    }

    /// Takes in one completion that the thread reported through its callback
    /// and returns the new durable batch, with the pages read.
    ///
    /// # Errors
    /// The write that failed.
    pub fn completed(&mut self, completion: Completion) -> Result<(BatchSeq, Pages), StorageError> {
        let (seq, result) = completion;
        let pages = result?;
        if let Persist::Background(b) = self {
            debug_assert!(seq > b.durable && seq <= b.submitted, "batches complete in order");
            b.durable = seq;
        }
        Ok((seq, pages))
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

    /// What the store did so far.
    pub fn stats(&self) -> StoreStats {
        match self {
            Persist::Inline { store, .. } => store.stats(),
            Persist::Background(b) => b.shared.lock().unwrap_or_else(PoisonError::into_inner).stats,
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
/// them as one, syncs once, reports the last; stops when the queue closes,
/// nobody takes its reports, or a write fails.
fn persist_thread<S: Store>(
    mut store: S,
    jobs: &std_mpsc::Receiver<Job<OpOf<S>>>,
    mut done: impl FnMut(Completion) -> bool,
    shared: &Mutex<Shared>,
    min_interval: Duration,
) {
    let mut ops = Vec::new();
    let mut reads = Vec::new();
    let mut last_sync: Option<Instant> = None;
    while let Ok((mut last, batch, batch_reads)) = jobs.recv() {
        ops.extend(batch);
        reads.extend(batch_reads);
        if let Some(wake) = last_sync.map(|t| t + min_interval) {
            while let Some(left) = wake.checked_duration_since(Instant::now()) {
                match jobs.recv_timeout(left) {
                    Ok((seq, batch, batch_reads)) => {
                        last = seq;
                        ops.extend(batch);
                        reads.extend(batch_reads);
                    }
                    Err(_) => break, // due, or the loop is done: write what we have
                }
            }
        }
        while let Ok((seq, batch, batch_reads)) = jobs.try_recv() {
            last = seq;
            ops.extend(batch);
            reads.extend(batch_reads);
        }
        let result = store.apply(&ops).map(|()| serve(&mut store, &reads));
        last_sync = Some(Instant::now());
        ops.clear();
        reads.clear();
        {
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            shared.stats = store.stats();
            if let Err(e) = &result {
                shared.failed = Some(e.clone());
            }
        }
        let failed = result.is_err();
        if !done((last, result)) || failed {
            return;
        }
    }
}

/// Runs `reads` against `store`, each on its own: one that fails (a damaged
/// segment) does not take the others, nor the batch, with it.
fn serve<S: Store>(store: &mut S, reads: &[ReadRequest]) -> Pages {
    reads.iter().map(|r| (r.id, store.read(r.from, r.limit, r.max_bytes))).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use paxos_core::{AcceptorOp, AcceptorState, MemStore};
    use paxos_proto::{Ballot, NodeId, Slot};

    use super::*;

    /// A store in memory whose decided log cannot be read below slot 5 (a damaged old segment).
    struct Damaged(MemStore<AcceptorState>);

    impl Store for Damaged {
        type State = AcceptorState;

        fn load(&mut self) -> Result<AcceptorState, StorageError> {
            self.0.load()
        }

        fn apply(&mut self, ops: &[AcceptorOp]) -> Result<(), StorageError> {
            self.0.apply(ops)
        }

        fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
            if from < Slot(5) {
                return Err(StorageError::Corrupt("segment 1: damaged".into()));
            }
            self.0.read(from, limit, max_bytes)
        }
    }

    fn reads() -> Vec<ReadRequest> {
        vec![
            ReadRequest { id: 1, from: Slot(0), limit: 10, max_bytes: 1 << 16 },
            ReadRequest { id: 2, from: Slot(5), limit: 10, max_bytes: 1 << 16 },
        ]
    }

    fn promise(round: u64) -> Vec<AcceptorOp> {
        vec![AcceptorOp::Promise(Ballot::new(round, NodeId(1)))]
    }

    /// Which reads of `pages` failed, and which were served.
    fn outcome(pages: &Pages) -> Vec<(u64, bool)> {
        pages.iter().map(|(id, page)| (*id, page.is_ok())).collect()
    }

    /// A read that fails fails only itself: the batch is durable, the other read is served, and the
    /// next batch goes on. Before, the failed read failed the batch, and the node stopped.
    #[test]
    fn a_failed_read_fails_only_itself() {
        let mut inline = Persist::inline(Damaged(MemStore::default()));
        let (seq, pages) = inline.submit(promise(1), reads(), None).expect("the batch is durable");
        assert_eq!((seq, outcome(&pages)), (1, vec![(1, false), (2, true)]));
        assert_eq!(inline.submit(promise(2), Vec::new(), None).expect("goes on").0, 2);

        let (tx, rx) = mpsc::channel();
        let mut background =
            Persist::background(Damaged(MemStore::default()), "test", Duration::ZERO, move |c| tx.send(c).is_ok())
                .expect("a thread");
        background.submit(promise(1), reads(), None).expect("submitted");
        let (seq, pages) = background.completed(rx.recv().expect("a completion")).expect("the batch is durable");
        assert_eq!((seq, outcome(&pages)), (1, vec![(1, false), (2, true)]));
        background.submit(promise(2), Vec::new(), None).expect("submitted");
        assert_eq!(background.completed(rx.recv().expect("a completion")).expect("goes on").0, 2);
    }
}
