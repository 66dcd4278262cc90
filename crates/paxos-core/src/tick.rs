//! The core's clock: a count of ticks since a role started.

use std::fmt;
use std::ops::Add;

/// A moment on a role's own clock, in ticks since it started. The daemons
/// tick every `tick_ms` (10 ms by default), the simulator once per step;
/// nothing in the core reads a real clock. Durations are plain tick counts
/// (`election_timeout_ticks`), so that a moment and a length are never mixed up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

impl Tick {
    /// The start of the clock.
    pub const ZERO: Tick = Tick(0);

    /// The next tick.
    pub fn next(self) -> Tick {
        Tick(self.0 + 1)
    }

    /// Ticks from `earlier` to this moment (zero if `earlier` is later).
    pub fn since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// True on every `period`th tick (a period of 0 never comes).
    pub fn every(self, period: u64) -> bool {
        period != 0 && self.0.is_multiple_of(period)
    }
}

impl Add<u64> for Tick {
    type Output = Tick;

    fn add(self, ticks: u64) -> Tick {
        Tick(self.0.saturating_add(ticks))
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
