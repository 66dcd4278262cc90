//! Passes over the decided log, a page at a time: one after each start,
//! then one a day, and sooner again after a failed read.
//!
//! A segment damaged while the node was down (a bad sector, a stray write,
//! a restore gone wrong) is otherwise found only when someone reads through
//! it: a client's `log`, a peer's catch-up. Until then a damaged proposer
//! leads as if it could serve its log, and `/health` says nothing. So each
//! role reads its decided log once after it starts, from its first slot to
//! the end it had at start, one page per [`SCRUB_EVERY_TICKS`], through the
//! same reads as everyone else's: a read that fails marks the node damaged
//! (a proposer hands leadership over) and counts as any failed read does.
//! A sealed segment can also rot while the node runs: [`SCRUB_AGAIN_TICKS`]
//! after a pass ends, the next one reads the decided log as it is then.
//!
//! Not every failed read is damage: an I/O error that passes (too many open
//! files, a disk that timed out once, a segment an operator moved away and
//! back) fails a read as a damaged record does. So after any failed read,
//! the next pass comes [`SCRUB_RETRY_TICKS`] later (while passes keep
//! failing, the wait doubles from the second failed pass in a row on, up to
//! [`SCRUB_RETRY_DOUBLINGS`] times), and a pass that
//! reads the whole decided log while no read fails tells the role that its
//! log can be read again ([`Scrub::on_page`]).
//!
//! One page in flight at a time, at most [`SCRUB_PAGE_ENTRIES`] entries and
//! [`crate::MAX_BATCH_BYTES`] of values each, so the pass costs a bounded
//! trickle of reads however long the log is; the start itself reads
//! nothing more than before.

use paxos_proto::{Node, Slot};
use tracing::info;

use crate::storage::LogPage;
use crate::tick::Tick;

/// A scrub reads one page every this many ticks (at most 1024 entries and
/// ~64 KiB: about 6 MB/s at the default 10 ms tick).
pub const SCRUB_EVERY_TICKS: u64 = 1;

/// Entries per scrub page.
pub const SCRUB_PAGE_ENTRIES: usize = 1024;

/// Ticks from the end of a pass to the start of the next: a day at the
/// default 10 ms tick (the daemons scale it to their `tick_ms`).
pub const SCRUB_AGAIN_TICKS: u64 = 24 * 3600 * 100;

/// Ticks from a failed read to the pass that reads the log again: 10 s at
/// the default 10 ms tick (the daemons scale it to their `tick_ms`).
pub const SCRUB_RETRY_TICKS: u64 = 10 * 100;

/// How many times the wait before a retry doubles while passes keep
/// failing: 10 s after the first failed pass, 20 s after the second, ... up
/// to 64 times that, about 11 minutes (never past [`SCRUB_AGAIN_TICKS`]).
pub const SCRUB_RETRY_DOUBLINGS: u32 = 6;

/// What a page of a pass means for a role's damage mark (`ended`: what
/// [`Scrub::on_page`] answered): a pass that read the whole log while no
/// read failed clears `damaged` (unless the defect `damage_sticks` keeps
/// it) and logs so, `then` saying what the role does again; a clean pass
/// over a log never marked logs that it found nothing.
pub(crate) fn after_page(node: Node, ended: Option<bool>, damaged: &mut bool, sticks: bool, then: &str) {
    match ended {
        Some(true) if *damaged && !sticks => {
            *damaged = false;
            info!(
                node = %node,
                "a pass read our whole decided log while no read failed: the failed read before it did not fail \
                 again (an I/O error that passed); {then}"
            );
        }
        Some(true) if !*damaged => info!(node = %node, "the pass over our decided log found no damage"),
        _ => {}
    }
}

/// Where the pass stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scrub {
    /// The next slot to read; the pass is over once it reaches `end`.
    next: Slot,
    /// One past the last slot of this pass: the decided end when it began.
    end: Slot,
    /// A page was asked for and not yet handed back.
    reading: bool,
    /// Ticks from the end of a pass to the next; 0: no next pass.
    again_after: u64,
    /// When the next pass starts, once this one is over.
    again_at: Option<Tick>,
    /// Ticks from a failed read to the next pass (0: no retry); doubles
    /// with each pass in a row that a failed read spoiled, from the second on.
    retry_after: u64,
    /// A read failed (this pass's or anyone's) since this pass began, or,
    /// between passes, since the last one began.
    spoiled: bool,
    /// Passes in a row that a failed read spoiled.
    spoiled_passes: u32,
    /// Entries a page asks for, at most ([`SCRUB_PAGE_ENTRIES`] unless set).
    page_entries: usize,
    /// This pass is over an empty decided log, one page past its end: an
    /// empty page is all it can read.
    empty_log: bool,
}

impl Scrub {
    /// A pass over `[start, end)`, the decided log at start.
    pub(crate) fn new(start: Slot, end: Slot) -> Scrub {
        Scrub {
            next: start,
            end,
            reading: false,
            again_after: SCRUB_AGAIN_TICKS,
            again_at: None,
            retry_after: SCRUB_RETRY_TICKS,
            spoiled: false,
            spoiled_passes: 0,
            page_entries: SCRUB_PAGE_ENTRIES,
            empty_log: false,
        }
    }

    /// Sets the entries a page asks for, at most (at least 1).
    pub(crate) fn set_page_entries(&mut self, entries: usize) {
        self.page_entries = entries.max(1);
    }

    /// The entries a page asks for, at most.
    pub(crate) fn page_entries(&self) -> usize {
        self.page_entries
    }

    /// Sets the ticks from the end of a pass to the next (0: none).
    pub(crate) fn again_after(&mut self, ticks: u64) {
        self.again_after = ticks;
        self.again_at = None;
    }

    /// Sets the ticks from a failed read to the next pass (0: none); they
    /// double with each pass in a row that fails, from the second on.
    pub(crate) fn retry_after(&mut self, ticks: u64) {
        self.retry_after = ticks;
        self.again_at = None;
    }

    /// Ticks from the end of the last pass to the next one: a retry's
    /// while the last read failed, else the daily pause (0: none).
    fn pause(&self) -> u64 {
        if !self.spoiled {
            return self.again_after;
        }
        let doublings = self.spoiled_passes.saturating_sub(1).min(SCRUB_RETRY_DOUBLINGS);
        let retry = self.retry_after.saturating_mul(1 << doublings);
        if self.again_after > 0 {
            retry.min(self.again_after)
        } else {
            retry
        }
    }

    /// The first slot of the page to read now, if one is due: none in flight,
    /// `now` on the pace, and the pass not over, or the next one due
    /// (`log`: the decided log now, first slot and one past the last; `None`:
    /// no next pass).
    pub(crate) fn due(&mut self, now: Tick, log: Option<(Slot, Slot)>) -> Option<Slot> {
        if self.reading || !now.every(SCRUB_EVERY_TICKS) {
            return None;
        }
        if self.next >= self.end {
            let pause = self.pause();
            let (Some((start, end)), true) = (log, pause > 0) else { return None };
            let at = *self.again_at.get_or_insert(now + pause);
            if now < at {
                return None;
            }
            self.again_at = None;
            (self.next, self.end) = (start, end);
            // Nothing decided to read: unless a read failed since the last
            // pass, nothing to do; if one did, a pass of one (empty) page
            // says whether the log can be read now (a pass under way, so
            // that a page the role could not ask for is asked for again).
            self.empty_log = self.next >= self.end;
            if self.empty_log {
                if !self.spoiled {
                    return None;
                }
                self.end = self.next.next();
            }
            self.spoiled = false;
        }
        self.reading = true;
        Some(self.next)
    }

    /// The page asked for: the pass goes on after its last entry, or ends if
    /// it holds none (the log ends there, or retention deleted past it and
    /// the page starts later). When the page ends the pass: whether the pass
    /// read the whole log while no read failed (`Some(true)`: the log can be
    /// read, whatever failed before it began). An empty page from below the
    /// pass's end (a log that ends short of what was decided, which no store
    /// should answer) ends it without vouching for the log.
    pub(crate) fn on_page(&mut self, page: &LogPage) -> Option<bool> {
        self.reading = false;
        let after = Slot(page.from.0.saturating_add(page.entries.len() as u64));
        if page.entries.is_empty() && page.from < self.end && !self.empty_log {
            self.spoiled = true;
        }
        // A page never goes back; guard the pass's end anyway.
        self.next = if !page.entries.is_empty() && after > self.next { after } else { self.end };
        (self.next >= self.end).then(|| self.end_pass())
    }

    /// The pass is over: counts it if a failed read spoiled it; whether it was clean.
    fn end_pass(&mut self) -> bool {
        self.spoiled_passes = if self.spoiled { self.spoiled_passes.saturating_add(1) } else { 0 };
        !self.spoiled
    }

    /// A read of the decided log failed, not one of this pass's (someone
    /// else's, at `now`): the pass under way cannot vouch for the log, and
    /// between passes the next one comes no later than a retry's pause.
    pub(crate) fn on_other_failed(&mut self, now: Tick) {
        self.spoiled = true;
        if self.next >= self.end {
            let pause = self.pause();
            if pause > 0 {
                let retry = now + pause;
                self.again_at = Some(self.again_at.map_or(retry, |at| at.min(retry)));
            }
        }
    }

    /// The page could not be asked for now (too many reads in flight): it
    /// is due again at the next pace.
    pub(crate) fn not_asked(&mut self) {
        self.reading = false;
    }

    /// The page asked for could not be read: the pass ends (the node now
    /// knows its log is damaged, which is what the pass was for), and the
    /// next one comes after a retry's pause.
    pub(crate) fn on_failed(&mut self) {
        self.reading = false;
        self.next = self.end;
        self.spoiled = true;
        self.end_pass();
    }

    /// Ends the pass in progress and every next one (for tests that count
    /// every read).
    #[cfg(test)]
    pub(crate) fn stop(&mut self) {
        self.reading = false;
        self.next = self.end;
        self.again_after(0);
        self.retry_after(0);
    }

    /// The pass is over (the next one, if any, not yet begun).
    #[cfg(test)]
    pub(crate) fn done(&self) -> bool {
        self.next >= self.end && !self.reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Stored;
    use paxos_proto::Value;

    fn page(from: u64, n: u64) -> LogPage {
        let entries = (0..n).map(|_| Stored { value: Value::Noop, duplicate: false }).collect();
        LogPage { start: Slot(0), from: Slot(from), entries }
    }

    #[test]
    fn a_pass_reads_the_log_at_start_page_by_page_and_ends() {
        let mut s = Scrub::new(Slot(3), Slot(2000));
        assert_eq!(s.due(Tick(1), None), Some(Slot(3)));
        assert_eq!(s.due(Tick(2), None), None, "one page in flight at a time");
        s.on_page(&page(3, 1024));
        assert_eq!(s.due(Tick(3), None), Some(Slot(1027)));
        s.on_page(&page(1027, 973));
        assert!(s.done());
        assert_eq!(s.due(Tick(4), None), None);
    }

    #[test]
    fn a_pass_ends_at_an_empty_page_or_a_failed_read() {
        let mut s = Scrub::new(Slot(0), Slot(10));
        assert_eq!(s.due(Tick(1), None), Some(Slot(0)));
        s.on_page(&page(0, 0));
        assert!(s.done());
        let mut s = Scrub::new(Slot(0), Slot(10));
        assert_eq!(s.due(Tick(1), None), Some(Slot(0)));
        assert!(!s.done());
        s.on_failed();
        assert!(s.done());
        assert_eq!(s.due(Tick(2), None), None);
    }

    #[test]
    fn no_pass_when_the_log_is_empty() {
        let mut s = Scrub::new(Slot(5), Slot(5));
        assert!(s.done());
        assert_eq!(s.due(Tick(1), None), None);
    }

    #[test]
    fn the_next_pass_reads_the_log_as_it_is_then() {
        let mut s = Scrub::new(Slot(0), Slot(10));
        s.again_after(100);
        assert_eq!(s.due(Tick(1), Some((Slot(0), Slot(10)))), Some(Slot(0)));
        s.on_page(&page(0, 10));
        assert!(s.done());
        // The pause counts from the first tick after the pass.
        assert_eq!(s.due(Tick(2), Some((Slot(0), Slot(50)))), None);
        assert_eq!(s.due(Tick(101), Some((Slot(0), Slot(50)))), None);
        assert_eq!(s.due(Tick(102), Some((Slot(5), Slot(50)))), Some(Slot(5)), "from the first slot left");
        assert!(!s.done());
        s.on_failed();
        assert!(s.done());
        assert_eq!(s.due(Tick(150), Some((Slot(5), Slot(60)))), None);
        assert_eq!(s.due(Tick(250), None), None, "none without a log given");
        assert_eq!(s.due(Tick(251), Some((Slot(5), Slot(60)))), Some(Slot(5)), "after a failed read too");
        // No next pass at all: after 0 ticks, or for a role that does not ask for one.
        let mut s = Scrub::new(Slot(0), Slot(0));
        s.again_after(0);
        assert_eq!(s.due(Tick(1_000_000), Some((Slot(0), Slot(10)))), None);
        let mut s = Scrub::new(Slot(0), Slot(0));
        assert_eq!(s.due(Tick(SCRUB_AGAIN_TICKS + 1), Some((Slot(0), Slot(10)))), None);
        assert_eq!(s.due(Tick(2 * SCRUB_AGAIN_TICKS + 1), Some((Slot(0), Slot(10)))), Some(Slot(0)), "a day later");
    }

    /// Runs the pass that is due at `now` over `[0, end)` to its end, one
    /// page a tick, each read or failed as `fails` says; whether it was clean.
    fn pass(s: &mut Scrub, mut now: u64, end: u64, fails: impl Fn(u64) -> bool) -> Option<bool> {
        let first = now;
        loop {
            let from = s.due(Tick(now), Some((Slot(0), Slot(end))))?;
            if fails(from.0) {
                s.on_failed();
                return Some(false);
            }
            if let Some(clean) = s.on_page(&page(from.0, (end - from.0).min(SCRUB_PAGE_ENTRIES as u64))) {
                return Some(clean);
            }
            now += 1;
            assert!(now < first + 100, "a pass ends");
        }
    }

    #[test]
    fn a_failed_page_brings_the_next_pass_forward_and_the_wait_doubles_while_passes_fail() {
        let mut s = Scrub::new(Slot(0), Slot(3000));
        s.again_after(1_000_000);
        s.retry_after(10);
        assert_eq!(pass(&mut s, 1, 3000, |from| from == 1024), Some(false), "the second page fails");
        // 10 ticks after the first tick after it (2), then 20, 40, ... up to 640.
        let mut at = 2;
        for wait in [10, 20, 40, 80, 160, 320, 640, 640] {
            assert_eq!(s.due(Tick(at), Some((Slot(0), Slot(3000)))), None, "{wait}");
            assert_eq!(s.due(Tick(at + wait - 1), Some((Slot(0), Slot(3000)))), None, "{wait}");
            assert_eq!(pass(&mut s, at + wait, 3000, |_| true), Some(false), "{wait}");
            at += wait + 1;
        }
        // A pass that reads it all says so, and the next one comes a day later.
        assert_eq!(s.due(Tick(at), Some((Slot(0), Slot(3000)))), None);
        assert_eq!(s.due(Tick(at + 639), Some((Slot(0), Slot(3000)))), None);
        assert_eq!(pass(&mut s, at + 640, 3000, |_| false), Some(true), "clean");
        let at = at + 640 + 3;
        assert_eq!(s.due(Tick(at), Some((Slot(0), Slot(3000)))), None);
        assert_eq!(s.due(Tick(at + 999_999), Some((Slot(0), Slot(3000)))), None);
        assert_eq!(s.due(Tick(at + 1_000_000), Some((Slot(0), Slot(3000)))), Some(Slot(0)), "a day later");
    }

    /// An empty page from below the pass's end says the log ends short of what was decided: no store
    /// should answer that, and the pass that got it vouches for nothing (it could clear a mark while
    /// the rest of the log was never read).
    #[test]
    fn an_empty_page_short_of_the_end_vouches_for_nothing() {
        let mut s = Scrub::new(Slot(0), Slot(100));
        s.again_after(1000);
        s.retry_after(10);
        assert_eq!(s.due(Tick(1), None), Some(Slot(0)));
        assert_eq!(s.on_page(&page(0, 8)), None);
        assert_eq!(s.due(Tick(2), None), Some(Slot(8)));
        assert_eq!(s.on_page(&page(8, 0)), Some(false), "the pass ends, not clean");
        assert_eq!(s.due(Tick(3), Some((Slot(0), Slot(100)))), None);
        assert_eq!(s.due(Tick(13), Some((Slot(0), Slot(100)))), Some(Slot(0)), "a retry's pause, not a day");
        // A page that starts at or past the pass's end (the log restarted later) is the end.
        assert_eq!(s.on_page(&page(120, 0)), Some(true));
    }

    #[test]
    fn the_retry_never_waits_longer_than_the_next_daily_pass() {
        let mut s = Scrub::new(Slot(0), Slot(10));
        s.again_after(100);
        s.retry_after(60);
        // The wait counts from the first tick after a pass: 60, then 120 and 240 capped at 100.
        for (at, next) in [(1, 62), (62, 163), (163, 264)] {
            assert_eq!(pass(&mut s, at, 10, |_| true), Some(false), "{at}");
            assert_eq!(s.due(Tick(at + 1), Some((Slot(0), Slot(10)))), None);
            assert_eq!(s.due(Tick(next - 1), Some((Slot(0), Slot(10)))), None, "{next}");
        }
        assert_eq!(s.due(Tick(264), Some((Slot(0), Slot(10)))), Some(Slot(0)));
    }

    #[test]
    fn another_read_that_fails_spoils_the_pass_under_way_and_brings_the_next_forward() {
        // During a pass: its pages all read, but it vouches for nothing.
        let mut s = Scrub::new(Slot(0), Slot(2048));
        s.again_after(1_000_000);
        s.retry_after(10);
        assert_eq!(s.due(Tick(1), None), Some(Slot(0)));
        s.on_other_failed(Tick(1));
        assert_eq!(s.on_page(&page(0, 1024)), None, "the pass goes on");
        assert_eq!(s.due(Tick(2), None), Some(Slot(1024)));
        assert_eq!(s.on_page(&page(1024, 1024)), Some(false), "spoiled");
        assert_eq!(s.due(Tick(3), Some((Slot(0), Slot(2048)))), None);
        assert_eq!(s.due(Tick(12), Some((Slot(0), Slot(2048)))), None);
        assert_eq!(pass(&mut s, 13, 2048, |_| false), Some(true), "a retry, clean");
        // Between passes: the daily pause gives way to a retry's.
        assert_eq!(s.due(Tick(20), Some((Slot(0), Slot(2048)))), None, "a day from now");
        s.on_other_failed(Tick(500));
        assert_eq!(s.due(Tick(509), Some((Slot(0), Slot(2048)))), None);
        // Reads that keep failing do not push the retry back.
        s.on_other_failed(Tick(505));
        assert_eq!(pass(&mut s, 510, 2048, |_| false), Some(true));
        // An empty log at the retry: one empty page vouches for it, and the daily pause is back.
        s.on_other_failed(Tick(600));
        assert_eq!(s.due(Tick(609), Some((Slot(5), Slot(5)))), None);
        assert_eq!(s.due(Tick(610), Some((Slot(5), Slot(5)))), Some(Slot(5)));
        assert_eq!(s.on_page(&page(5, 0)), Some(true));
        assert_eq!(s.due(Tick(611), Some((Slot(5), Slot(5)))), None);
        assert_eq!(s.due(Tick(611 + 999_999), Some((Slot(5), Slot(10)))), None, "a day from the empty pass");
        assert_eq!(s.due(Tick(611 + 1_000_000), Some((Slot(5), Slot(10)))), Some(Slot(5)));
        // The empty log's page, when the role cannot ask for it (too many reads in flight), is due
        // again at the next tick: the retry is not lost (a review found it was).
        assert_eq!(s.on_page(&page(5, 5)), Some(true));
        s.on_other_failed(Tick(700_000_000));
        assert_eq!(s.due(Tick(700_000_010), Some((Slot(5), Slot(5)))), Some(Slot(5)));
        s.not_asked();
        assert_eq!(s.due(Tick(700_000_011), Some((Slot(5), Slot(5)))), Some(Slot(5)), "asked again");
        assert_eq!(s.on_page(&page(5, 0)), Some(true));
        // No retry when asked for none.
        let mut s = Scrub::new(Slot(0), Slot(0));
        s.again_after(0);
        s.retry_after(0);
        s.on_other_failed(Tick(1));
        assert_eq!(s.due(Tick(1_000_000), Some((Slot(0), Slot(10)))), None);
    }
}
