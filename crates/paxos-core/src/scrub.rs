//! Passes over the decided log, a page at a time: one after each start,
//! then one a day.
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
//! One page in flight at a time, at most [`SCRUB_PAGE_ENTRIES`] entries and
//! [`crate::MAX_BATCH_BYTES`] of values each, so the pass costs a bounded
//! trickle of reads however long the log is; the start itself reads
//! nothing more than before.

use paxos_proto::Slot;

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
}

impl Scrub {
    /// A pass over `[start, end)`, the decided log at start.
    pub(crate) fn new(start: Slot, end: Slot) -> Scrub {
        Scrub { next: start, end, reading: false, again_after: SCRUB_AGAIN_TICKS, again_at: None }
    }

    /// Sets the ticks from the end of a pass to the next (0: none).
    pub(crate) fn again_after(&mut self, ticks: u64) {
        self.again_after = ticks;
        self.again_at = None;
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
            let (Some((start, end)), true) = (log, self.again_after > 0) else { return None };
            let at = *self.again_at.get_or_insert(now + self.again_after);
            if now < at {
                return None;
            }
            self.again_at = None;
            (self.next, self.end) = (start, end);
            if self.next >= self.end {
                return None;
            }
        }
        self.reading = true;
        Some(self.next)
    }

    /// The page asked for: the pass goes on after its last entry, or ends if
    /// it holds none (the log ends there, or retention deleted past it and
    /// the page starts later).
    pub(crate) fn on_page(&mut self, page: &LogPage) {
        self.reading = false;
        if page.entries.is_empty() {
            self.next = self.end;
            return;
        }
        let after = Slot(page.from.0.saturating_add(page.entries.len() as u64));
        // A page never goes back; guard the pass's end anyway.
        self.next = if after > self.next { after } else { self.end };
    }

    /// The page could not be asked for now (too many reads in flight): it
    /// is due again at the next pace.
    pub(crate) fn not_asked(&mut self) {
        self.reading = false;
    }

    /// The page asked for could not be read: the pass ends (the node now
    /// knows its log is damaged, which is what the pass was for).
    pub(crate) fn on_failed(&mut self) {
        self.reading = false;
        self.next = self.end;
    }

    /// Ends the pass in progress and every next one (for tests that count
    /// every read).
    #[cfg(test)]
    pub(crate) fn stop(&mut self) {
        self.on_failed();
        self.again_after(0);
    }

    /// The pass is over (the next one, if any, not yet begun).
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
}
