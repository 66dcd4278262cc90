//! Deliberate bugs, so that the simulator can show that its checks bite.
//!
//! Without the `defects` feature the only value of [`Defects`] is the default,
//! which turns nothing on: no production build can enable a defect.

/// Which deliberate bugs a role runs with. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Seed defect 1: an acceptor accepts without checking that it has not promised a higher ballot.
    pub(crate) accept_ignores_promise: bool,
    /// Seed defect 2: a proposer adopts the values of the promise that completes the quorum,
    /// not the highest-ballot value across the whole quorum.
    pub(crate) adopt_from_last_promise: bool,
    /// Seed defect 3 in spirit: a proposer counts `n / 2` acceptors as a majority.
    pub(crate) minority_quorum: bool,
    /// No bound on rounds or slots from a member: no ceiling of the clock, no slot step.
    pub(crate) unbounded: bool,
    /// An acceptor that lost its state votes at once, as if it were the member it was.
    pub(crate) amnesia: bool,
    /// A log that restarts later (retention) copies the configuration but not the clients' sessions.
    pub(crate) stateless_restart: bool,
    /// A follower learns below the leader's commit index whatever value it
    /// holds for a slot, whichever ballot proposed it.
    pub(crate) commit_any_ballot: bool,
    /// A log that restarts later (retention) keeps its digest chain, which
    /// then no longer covers the slots it holds: its claims differ from
    /// every peer's, though the logs agree.
    pub(crate) chain_survives_restart: bool,
    /// An acceptor raises its promise in memory without writing it: its state
    /// is no longer the fold of what it wrote, which its store relies on.
    pub(crate) unlogged_promise: bool,
    /// A leader answers that it gave up a membership change at its deadline,
    /// but keeps it queued, and may still make it.
    pub(crate) member_past_deadline: bool,
    /// A leader makes an operator's change from whatever configuration is
    /// in force, not only from the epoch the request was asked from.
    pub(crate) member_any_epoch: bool,
    /// A proposer that leadership was handed to (`TimeoutNow`) leads after
    /// the first promise, as if the leader that handed over vouched for the log.
    pub(crate) handed_over_one_promise: bool,
    /// A proposer counts only votes (promises, accepts) as an acceptor's
    /// signs of life, not probe answers: an idle leader hears no quorum and
    /// steps down (check quorum) every election timeout.
    pub(crate) votes_only_alive: bool,
    /// A proposer campaigns without a pre-vote: although a quorum of the
    /// acceptors still names a live leader that it does not hear.
    pub(crate) no_prevote: bool,
    /// An acceptor's lease never runs out: it names a leader that died
    /// forever, and no proposer passes a pre-vote again.
    pub(crate) endless_lease: bool,
    /// A proposer stamps client commands with its own clock alone, however
    /// far ahead of the acceptors' it runs.
    pub(crate) unbounded_stamps: bool,
    /// A proposer asks the node it takes to be furthest ahead for the
    /// decided slots it lacks, however often that node leaves it unanswered;
    /// an acceptor asks the proposer that told it of the most, however often
    /// that one leaves it unanswered.
    pub(crate) catch_up_never_switches: bool,
    /// A node answers a catch-up whose read failed (a damaged segment)
    /// with an empty page from the slot asked, as if its log ended there.
    pub(crate) failed_read_as_end: bool,
    /// A proposer whose decided log cannot be read leads as any other: it
    /// neither hands leadership over nor lets a peer lead in its place.
    pub(crate) damaged_leads: bool,
    /// No pass over the decided log after start: damage is found only when
    /// someone reads through it.
    pub(crate) no_scrub: bool,
    /// One pass over the decided log after start, none after: damage done
    /// while the node runs is found only when someone reads through it.
    pub(crate) scrub_once: bool,
    /// An acceptor ignores what a proposer says it wrote: it votes on with
    /// what a disk that lost synced writes kept.
    pub(crate) ignores_written: bool,
    /// An acceptor holds a proposer's claim of what it wrote against what
    /// it held at this start, whichever start answered: an answer of this
    /// start, which counts writes made since, looks like lost writes.
    pub(crate) written_any_start: bool,
    /// A node whose read of its decided log failed says so until it
    /// restarts, although a later pass read the whole log: one passing
    /// I/O error keeps it unhealthy and, for a proposer, out of leadership.
    pub(crate) damage_sticks: bool,
    /// A node whose read of its decided log failed takes any read that
    /// succeeds afterwards (a page after the damage) as proof that the
    /// whole log can be read again.
    pub(crate) any_read_clears: bool,
    /// A pass over the decided log ends after its first page, as if the
    /// log ended there: damage further in is found only when someone reads
    /// through it.
    pub(crate) short_pass: bool,
}

impl Defects {
    /// A page of a pass over the decided log, as the pass sees it: with
    /// `short_pass`, empty (the log seems to end there).
    pub(crate) fn scrub_page(&self, page: crate::LogPage) -> crate::LogPage {
        if self.short_pass {
            crate::LogPage { entries: Vec::new(), ..page }
        } else {
            page
        }
    }
}

#[cfg(feature = "defects")]
impl Defects {
    /// Seed defect 1 (see the field of the same name).
    pub fn accept_ignores_promise() -> Self {
        Defects { accept_ignores_promise: true, ..Defects::default() }
    }

    /// Seed defect 2 (see the field of the same name).
    pub fn adopt_from_last_promise() -> Self {
        Defects { adopt_from_last_promise: true, ..Defects::default() }
    }

    /// A quorum of `n / 2` acceptors.
    pub fn minority_quorum() -> Self {
        Defects { minority_quorum: true, ..Defects::default() }
    }

    /// Rounds and slots believed however far they jump (see the field of the same name).
    pub fn unbounded() -> Self {
        Defects { unbounded: true, ..Defects::default() }
    }

    /// Acceptors vote with amnesia (see the field of the same name).
    pub fn amnesia() -> Self {
        Defects { amnesia: true, ..Defects::default() }
    }

    /// Logs restart without the sessions (see the field of the same name).
    pub fn stateless_restart() -> Self {
        Defects { stateless_restart: true, ..Defects::default() }
    }

    /// Followers learn from a commit index whatever value they hold (see the field of the same name).
    pub fn commit_any_ballot() -> Self {
        Defects { commit_any_ballot: true, ..Defects::default() }
    }

    /// Logs that restart later keep their digest chain (see the field of the same name).
    pub fn chain_survives_restart() -> Self {
        Defects { chain_survives_restart: true, ..Defects::default() }
    }

    /// Acceptors promise without writing it (see the field of the same name).
    pub fn unlogged_promise() -> Self {
        Defects { unlogged_promise: true, ..Defects::default() }
    }

    /// Leaders make changes they said they gave up (see the field of the same name).
    pub fn member_past_deadline() -> Self {
        Defects { member_past_deadline: true, ..Defects::default() }
    }

    /// Leaders make changes asked from an earlier epoch (see the field of the same name).
    pub fn member_any_epoch() -> Self {
        Defects { member_any_epoch: true, ..Defects::default() }
    }

    /// Leadership handed over is taken on one promise (see the field of the same name).
    pub fn handed_over_one_promise() -> Self {
        Defects { handed_over_one_promise: true, ..Defects::default() }
    }
    /// Idle leaders step down (see the field of the same name).
    pub fn votes_only_alive() -> Self {
        Defects { votes_only_alive: true, ..Defects::default() }
    }

    /// Proposers campaign without a pre-vote (see the field of the same name).
    pub fn no_prevote() -> Self {
        Defects { no_prevote: true, ..Defects::default() }
    }

    /// Leases that never run out (see the field of the same name).
    pub fn endless_lease() -> Self {
        Defects { endless_lease: true, ..Defects::default() }
    }

    /// Commands stamped by the proposer's clock alone (see the field of the same name).
    pub fn unbounded_stamps() -> Self {
        Defects { unbounded_stamps: true, ..Defects::default() }
    }

    /// A catch-up that never gives up on its node (see the field of the same name).
    pub fn catch_up_never_switches() -> Self {
        Defects { catch_up_never_switches: true, ..Defects::default() }
    }

    /// A failed read answered as the end of the log (see the field of the same name).
    pub fn failed_read_as_end() -> Self {
        Defects { failed_read_as_end: true, ..Defects::default() }
    }

    /// A damaged proposer that leads as any other (see the field of the same name).
    pub fn damaged_leads() -> Self {
        Defects { damaged_leads: true, ..Defects::default() }
    }

    /// No pass over the decided log after start (see the field of the same name).
    pub fn no_scrub() -> Self {
        Defects { no_scrub: true, ..Defects::default() }
    }

    /// One pass over the decided log after start, none after (see the field of the same name).
    pub fn scrub_once() -> Self {
        Defects { scrub_once: true, ..Defects::default() }
    }

    /// An acceptor that ignores what a proposer says it wrote (see the field of the same name).
    pub fn ignores_written() -> Self {
        Defects { ignores_written: true, ..Defects::default() }
    }

    /// An acceptor that takes its own answers of this start for lost writes (see the field of the same name).
    pub fn written_any_start() -> Self {
        Defects { written_any_start: true, ..Defects::default() }
    }

    /// Damage marks kept until a restart (see the field of the same name).
    pub fn damage_sticks() -> Self {
        Defects { damage_sticks: true, ..Defects::default() }
    }

    /// Passes that end after their first page (see the field of the same name).
    pub fn short_pass() -> Self {
        Defects { short_pass: true, ..Defects::default() }
    }

    /// Damage marks cleared by any read (see the field of the same name).
    pub fn any_read_clears() -> Self {
        Defects { any_read_clears: true, ..Defects::default() }
    }
}
