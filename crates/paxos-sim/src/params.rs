//! Every parameter of a run, drawn from its seed (or pinned by the caller).

use std::fmt;

use paxos_core::Defects;

use crate::adversary::Adversary;
use crate::rng::Rng;

/// A deliberate bug to run the roles with (see `paxos_core::Defects`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// Seed defect 1: acceptors accept without checking their promise.
    AcceptIgnoresPromise,
    /// Seed defect 2: proposers adopt values from the last promise only.
    AdoptFromLastPromise,
    /// Proposers and learners count `n / 2` acceptors as a quorum.
    MinorityQuorum,
    /// Rounds and slots from members are believed however far they jump
    /// (no ceiling of the clock, no slot step): caught by the insider.
    Unbounded,
    /// An acceptor that lost its disk votes at once, as the member it was.
    Amnesia,
    /// A log that restarts later (retention) does not copy the clients' sessions.
    StatelessRestart,
    /// A follower learns below the leader's commit index whatever value it
    /// holds for a slot, whichever ballot proposed it.
    CommitAnyBallot,
    /// An acceptor raises its promise in memory without writing it.
    UnloggedPromise,
    /// A leader answers that it gave up a membership change at its
    /// deadline, but keeps it queued and may still make it.
    MemberPastDeadline,
    /// A leader makes an operator's change from whatever configuration is
    /// in force, not only from the epoch it was asked from.
    MemberAnyEpoch,
    /// Late copies of the operator's requests reach the leader without
    /// their epoch (as an older client sends them): a copy of a change that
    /// was made and undone makes it again. A defect of the network, not of
    /// a role: the roles are correct.
    EpochlessCopies,
    /// An operator asks a change again from any newer configuration a
    /// leader refuses it with, not only from the very next one that does
    /// not have it: a change made (its answer lost) and undone by another
    /// operator is made a second time. A defect of the client, not of a role.
    ReaskAnyEpoch,
    /// A proposer that leadership was handed to leads after the first
    /// promise, as if the leader that handed over vouched for its log.
    HandedOverOnePromise,
    /// A proposer counts only votes as an acceptor's signs of life, not
    /// probe answers: an idle leader steps down every election timeout.
    VotesOnlyAlive,
    /// A proposer campaigns without a pre-vote, although a quorum of the
    /// acceptors names a live leader it does not hear (cut off until a heal).
    NoPrevote,
    /// An acceptor's lease never runs out: once a leader dies, nobody
    /// passes a pre-vote again.
    EndlessLease,
    /// A proposer stamps client commands with its own clock alone, however
    /// far ahead of the acceptors' it runs (caught with `--clock-jump-ms`).
    UnboundedStamps,
    /// A proposer asks the node it takes to be furthest ahead for what it
    /// lacks for ever, however often it goes unanswered (caught with
    /// `--lose-proposer`: the node may be gone for good); an acceptor, the
    /// proposer that told it of the most (caught with `--damage-log`: that
    /// one may be unable to read its log).
    CatchUpNeverSwitches,
    /// A node answers a catch-up whose read failed (a damaged segment)
    /// with an empty page, as if its log ended there (caught with
    /// `--damage-log`: a proposer copying from it gets nothing, for ever).
    FailedReadAsEnd,
    /// A proposer whose decided log cannot be read leads as any other
    /// (caught with `--damage-log`: while it leads, peers and acceptors
    /// behind find the slots only it learned nowhere, and the log waits).
    DamagedLeads,
    /// No node reads its decided log after a start: one whose log was
    /// damaged while it was down finds out only when someone reads through
    /// the damage (caught with `--damage-log`: the scrub check).
    NoScrub,
    /// A node reads its decided log once after a start, never again: damage
    /// done under it as it runs is found only when someone reads through it
    /// (caught with `--damage-log`: the scrub check).
    ScrubOnce,
    /// An acceptor ignores what proposers say it wrote: a disk that lost
    /// synced writes votes on with what it kept (caught with `--lose-tail`:
    /// agreement, at pinned seeds).
    IgnoresWritten,
    /// An acceptor takes what its own answers of this start said it wrote
    /// for writes its disk lost, and rebuilds for nothing (caught: the check
    /// that only an acceptor whose disk lost writes rebuilds as a new incarnation).
    WrittenAnyStart,
    /// A node whose read of its decided log failed says so until it
    /// restarts, although a later pass read it all (caught with
    /// `--flaky-reads`: the damage-mark check).
    DamageSticks,
    /// A node whose read of its decided log failed takes any read that
    /// succeeds afterwards for proof that its log can be read again
    /// (caught with `--damage-log`: the damage-mark check).
    AnyReadClears,
    /// A pass over the decided log ends after its first page (caught with
    /// `--damage-log`, whose damage may start past the first page: the
    /// scrub check; and, since a pass that stops short vouches for nothing,
    /// the damage-mark check when the damage is gone).
    ShortPass,
    /// A proposer's log that restarts later (retention) keeps its digest
    /// chain, which then covers slots it never applied: its claims differ
    /// from its peers' though every log agrees (caught with `--retain-slots`:
    /// the digest check).
    ChainSurvivesRestart,
}

impl Defect {
    /// Every defect, for sweeps and `--help`.
    pub const ALL: [Defect; 28] = [
        Defect::AcceptIgnoresPromise,
        Defect::AdoptFromLastPromise,
        Defect::MinorityQuorum,
        Defect::Unbounded,
        Defect::Amnesia,
        Defect::StatelessRestart,
        Defect::CommitAnyBallot,
        Defect::UnloggedPromise,
        Defect::MemberPastDeadline,
        Defect::MemberAnyEpoch,
        Defect::EpochlessCopies,
        Defect::ReaskAnyEpoch,
        Defect::HandedOverOnePromise,
        Defect::VotesOnlyAlive,
        Defect::NoPrevote,
        Defect::EndlessLease,
        Defect::UnboundedStamps,
        Defect::CatchUpNeverSwitches,
        Defect::FailedReadAsEnd,
        Defect::DamagedLeads,
        Defect::NoScrub,
        Defect::ScrubOnce,
        Defect::IgnoresWritten,
        Defect::WrittenAnyStart,
        Defect::DamageSticks,
        Defect::AnyReadClears,
        Defect::ShortPass,
        Defect::ChainSurvivesRestart,
    ];

    /// The defect's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Defect::AcceptIgnoresPromise => "accept-ignores-promise",
            Defect::AdoptFromLastPromise => "adopt-from-last-promise",
            Defect::MinorityQuorum => "minority-quorum",
            Defect::Unbounded => "unbounded",
            Defect::Amnesia => "amnesia",
            Defect::StatelessRestart => "stateless-restart",
            Defect::CommitAnyBallot => "commit-any-ballot",
            Defect::UnloggedPromise => "unlogged-promise",
            Defect::MemberPastDeadline => "member-past-deadline",
            Defect::MemberAnyEpoch => "member-any-epoch",
            Defect::EpochlessCopies => "epochless-copies",
            Defect::ReaskAnyEpoch => "reask-any-epoch",
            Defect::HandedOverOnePromise => "handed-over-one-promise",
            Defect::VotesOnlyAlive => "votes-only-alive",
            Defect::NoPrevote => "no-prevote",
            Defect::EndlessLease => "endless-lease",
            Defect::UnboundedStamps => "unbounded-stamps",
            Defect::CatchUpNeverSwitches => "catch-up-never-switches",
            Defect::FailedReadAsEnd => "failed-read-as-end",
            Defect::DamagedLeads => "damaged-leads",
            Defect::NoScrub => "no-scrub",
            Defect::ScrubOnce => "scrub-once",
            Defect::IgnoresWritten => "ignores-written",
            Defect::WrittenAnyStart => "written-any-start",
            Defect::DamageSticks => "damage-sticks",
            Defect::AnyReadClears => "any-read-clears",
            Defect::ShortPass => "short-pass",
            Defect::ChainSurvivesRestart => "chain-survives-restart",
        }
    }

    /// Parses a name given by [`Defect::name`].
    pub fn parse(name: &str) -> Option<Defect> {
        Defect::ALL.into_iter().find(|d| d.name() == name)
    }

    pub(crate) fn acceptor(self) -> Defects {
        match self {
            Defect::AcceptIgnoresPromise => Defects::accept_ignores_promise(),
            Defect::Unbounded => Defects::unbounded(),
            Defect::Amnesia => Defects::amnesia(),
            Defect::StatelessRestart => Defects::stateless_restart(),
            Defect::UnloggedPromise => Defects::unlogged_promise(),
            Defect::EndlessLease => Defects::endless_lease(),
            Defect::FailedReadAsEnd => Defects::failed_read_as_end(),
            Defect::CatchUpNeverSwitches => Defects::catch_up_never_switches(),
            Defect::NoScrub => Defects::no_scrub(),
            Defect::ScrubOnce => Defects::scrub_once(),
            Defect::IgnoresWritten => Defects::ignores_written(),
            Defect::WrittenAnyStart => Defects::written_any_start(),
            Defect::DamageSticks => Defects::damage_sticks(),
            Defect::AnyReadClears => Defects::any_read_clears(),
            Defect::ShortPass => Defects::short_pass(),
            _ => Defects::default(),
        }
    }

    pub(crate) fn proposer(self) -> Defects {
        match self {
            Defect::AdoptFromLastPromise => Defects::adopt_from_last_promise(),
            Defect::MinorityQuorum => Defects::minority_quorum(),
            Defect::Unbounded => Defects::unbounded(),
            Defect::StatelessRestart => Defects::stateless_restart(),
            Defect::CommitAnyBallot => Defects::commit_any_ballot(),
            Defect::MemberPastDeadline => Defects::member_past_deadline(),
            Defect::MemberAnyEpoch => Defects::member_any_epoch(),
            Defect::HandedOverOnePromise => Defects::handed_over_one_promise(),
            Defect::VotesOnlyAlive => Defects::votes_only_alive(),
            Defect::NoPrevote => Defects::no_prevote(),
            Defect::UnboundedStamps => Defects::unbounded_stamps(),
            Defect::CatchUpNeverSwitches => Defects::catch_up_never_switches(),
            Defect::FailedReadAsEnd => Defects::failed_read_as_end(),
            Defect::DamagedLeads => Defects::damaged_leads(),
            Defect::NoScrub => Defects::no_scrub(),
            Defect::ScrubOnce => Defects::scrub_once(),
            Defect::DamageSticks => Defects::damage_sticks(),
            Defect::AnyReadClears => Defects::any_read_clears(),
            Defect::ShortPass => Defects::short_pass(),
            Defect::ChainSurvivesRestart => Defects::chain_survives_restart(),
            Defect::AcceptIgnoresPromise
            | Defect::Amnesia
            | Defect::UnloggedPromise
            | Defect::EndlessLease
            | Defect::EpochlessCopies
            | Defect::ReaskAnyEpoch
            | Defect::IgnoresWritten
            | Defect::WrittenAnyStart => Defects::default(),
        }
    }
}

/// What the caller pins; everything left `None` is drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Number of proposers.
    pub proposers: Option<usize>,
    /// Number of acceptors.
    pub acceptors: Option<usize>,
    /// Number of clients.
    pub clients: Option<usize>,
    /// Values each client proposes, one after the other.
    pub values_per_client: Option<usize>,
    /// The proposers' window of slots in flight.
    pub window: Option<usize>,
    /// Ticks during which faults happen.
    pub fault_ticks: Option<u64>,
    /// Probability that a datagram is lost, during the fault phase.
    pub drop: Option<f64>,
    /// Acceptors (by index) failed for the whole run, as in the seed scenario.
    pub failed_acceptors: Vec<usize>,
    /// Turn every fault off (for the seed scenario and benchmarks of the simulator).
    pub no_faults: bool,
    /// Run with a deliberate bug.
    pub defect: Option<Defect>,
    /// Pin the adversary: `Some(None)` for none, `Some(Some(a))` for `a`.
    pub adversary: Option<Option<Adversary>>,
    /// Pin the probability that an acceptor's crash also loses its disk.
    pub wipe_acceptor: Option<f64>,
    /// Pin the per-tick rate of membership changes (0 for none).
    pub member_rate: Option<f64>,
    /// Pin `[log] retain_slots` of every node (0: keep everything).
    pub retain_slots: Option<u64>,
    /// Pin how far apart the nodes' wall clocks are, in ms (0: one clock).
    pub clock_spread_ms: Option<u64>,
    /// How far ahead a proposer's clock jumps now and then, in ms (never drawn from a seed).
    pub clock_jump_ms: Option<u64>,
    /// One proposer is lost for good during the faults (never drawn from a seed).
    pub lose_proposer: bool,
    /// One acceptor is lost for good during the faults (never drawn from a seed).
    pub lose_acceptor: bool,
    /// Probability that the bad-disk acceptor's crash also loses durable batches (never drawn from a seed).
    pub lose_tail: Option<f64>,
    /// Probability that a crash damages the node's decided log (never drawn from a seed).
    pub damage_log: Option<f64>,
    /// Probability that a read of a decided log fails during the faults (never drawn from a seed).
    pub flaky_reads: Option<f64>,
    /// A run goes on after two learners applied different values (never drawn from a seed).
    pub keep_going: bool,
    /// Pin how many operators change the membership (1 or 2).
    pub operators: Option<usize>,
    /// Pin the per-tick rate of leadership transfers (0 for none).
    pub transfer_rate: Option<f64>,
}

impl Overrides {
    /// The seed scenario: 2 proposers, 5 acceptors of which 1 and 2 are failed,
    /// 1000 values proposed at once (1000 clients of one value each), no other fault.
    pub fn seed_scenario() -> Overrides {
        Overrides {
            proposers: Some(2),
            acceptors: Some(5),
            clients: Some(1000),
            values_per_client: Some(1),
            window: Some(paxos_core::ProposerConfig::new(Default::default(), Vec::new(), Vec::new()).window),
            fault_ticks: Some(1),
            failed_acceptors: vec![0, 1],
            no_faults: true,
            ..Overrides::default()
        }
    }
}

/// Every parameter of one run.
#[derive(Clone, Debug)]
pub struct Params {
    /// The seed everything was drawn from.
    pub seed: u64,
    /// Number of proposers.
    pub proposers: usize,
    /// Number of acceptors.
    pub acceptors: usize,
    /// Number of clients.
    pub clients: usize,
    /// Values each client proposes.
    pub values_per_client: usize,
    /// The proposers' window of slots in flight.
    pub window: usize,
    /// Ticks during which faults happen; then the network heals and every node comes back.
    pub fault_ticks: u64,
    /// Probability that a datagram is lost (fault phase).
    pub drop: f64,
    /// Probability that a datagram is delivered twice (fault phase).
    pub duplicate: f64,
    /// Largest delivery delay, in ticks (reordering comes from different delays).
    pub max_delay: u64,
    /// Per tick, probability that some node crashes (fault phase).
    pub crash_rate: f64,
    /// Per tick, probability that some node is failed, as by SIGUSR1 (fault phase).
    pub fail_rate: f64,
    /// Per tick, probability that the network splits in two (fault phase).
    pub partition_rate: f64,
    /// Probability that a crash happens after a node handled its inputs but before its writes were durable.
    pub crash_before_persist: f64,
    /// Ticks a client waits for an answer before it retries (with the same request id).
    pub client_timeout: u64,
    /// Probability that a value is large (up to 8 KiB), so that promises page and accepts split.
    pub big_values: f64,
    /// Encode every datagram with the real codec and check it round-trips within the size limit.
    pub codec_check: bool,
    /// Probability that a crash of a proposer also wipes its disk (its data dir is lost).
    pub wipe_proposer: f64,
    /// Per tick, probability that every proposer crashes at once and loses its disk (fault phase).
    pub wipe_all_proposers: f64,
    /// Probability that a crash of an acceptor also wipes its disk, as long as
    /// a majority of the acceptors keeps theirs (counting one that lost it as
    /// lost until its new incarnation is let in).
    pub wipe_acceptor: f64,
    /// Per tick, probability that the operator starts a membership change
    /// (add an acceptor or a proposer, remove one) when none is under way (fault phase).
    pub member_rate: f64,
    /// Operators: the first adds and removes members, one change at a
    /// time; a second one, if any, only undoes an addition of the first
    /// while it is under way (two `paxosctl` runs at once).
    pub operators: usize,
    /// Per-tick chance that the transferring operator, when idle, asks the
    /// leader to hand leadership to a proposer drawn at random (`paxosctl
    /// leader transfer`), whatever the membership operators are doing.
    pub transfer_rate: f64,
    /// Spare acceptors (ids above the initial ones) the operator may add.
    pub spare_acceptors: usize,
    /// Spare proposers the operator may add.
    pub spare_proposers: usize,
    /// The clients' session lifetime, in milliseconds of the simulated clock (100 ticks a second).
    pub session_lifetime_ms: u64,
    /// `[log] retain_slots` of every node: keep the newest this many decided slots (0: all).
    /// Drawn in three faulty runs in ten (7 to 64 slots, so that logs restart later often).
    pub retain_slots: u64,
    /// Per tick, the largest probability that a proposer's clock skips a tick (clocks drift apart).
    pub clock_skew: f64,
    /// How far apart the nodes' wall clocks are, in ms: each runs ahead of
    /// the simulated clock by a fixed amount in `0..=clock_spread_ms`.
    pub clock_spread_ms: u64,
    /// How far ahead of the simulated clock a proposer's clock jumps now and
    /// then (0: never), far beyond the spread: NTP gone wrong, a VM restored.
    /// Only by `--clock-jump-ms`.
    pub clock_jump_ms: u64,
    /// Whether one proposer is lost for good during the faults (its machine
    /// gone: it never restarts, and its disk is lost with it), while at least
    /// one other member proposer remains. Only by `--lose-proposer`.
    pub lose_proposer: bool,
    /// Whether one acceptor is lost for good during the faults (its machine
    /// gone, or its disk damaged so that it stops at its next read: it never
    /// comes back), when a majority of every configuration keeps its disk
    /// without it. Only by `--lose-acceptor`.
    pub lose_acceptor: bool,
    /// Probability that a crash of the one acceptor with a bad disk (one
    /// per run, drawn at its first such crash, while a majority of every
    /// configuration keeps its disk without it) also loses its last 1 to
    /// 256 batches of writes that were durable, which it may have answered
    /// about: its disk damaged the synced tail (zeroed over, a flipped bit
    /// in the last record) or its data dir was rolled back to an older
    /// copy, and it restarts as the same incarnation, not knowing. SPEC
    /// counts such a node as one that lost its disk, but nothing makes it
    /// rebuild (a proposer's alarm sees some of it): a known hole, measured
    /// by this fault. Only by `--lose-tail`.
    pub lose_tail: f64,
    /// Probability that a node's crash (once per run, any node) damages what
    /// its decided log held until then, as a zeroed or bit-flipped old
    /// segment (from its first slot in half the runs, else from a slot
    /// further in): reads that reach it fail for the rest of the run (retention
    /// may delete it), while its state and votes stay intact. The node must
    /// go on without answering them, and the others must get the log
    /// elsewhere. Only by `--damage-log`.
    pub damage_log: f64,
    /// Probability that a read of a node's decided log fails during the
    /// faults, though nothing is damaged: an I/O error that passes (too
    /// many open files, a disk that timed out once). The node must not take
    /// it for damage for ever: a later pass that reads its whole log clears
    /// the mark. Only by `--flaky-reads`.
    pub flaky_reads: f64,
    /// A run goes on after two learners applied different values (the
    /// agreement check still reports it), so that the proposers have time
    /// to find it by their digests: how often they do is a statistic
    /// ([`crate::Stats::digest_alarms`]), not an invariant (the learner that
    /// diverged may crash, or never claim a point past the divergence).
    /// Only by `--keep-going`.
    pub keep_going: bool,
    /// Probability that a partition cuts one direction only.
    pub one_way: f64,
    /// Probability that a datagram is delayed up to 300 ticks (fault phase).
    pub long_delay: f64,
    /// Most ticks a node's writes take to become durable while it goes on
    /// (the daemons' background fsync); 0: durable within the tick.
    pub persist_lag: u64,
    /// Ticks after healing within which every request must be decided (SPEC: 2 s = 200 ticks of 10 ms).
    pub liveness_ticks: u64,
    /// Acceptors failed for the whole run.
    pub failed_acceptors: Vec<usize>,
    /// A deliberate bug, if any.
    pub defect: Option<Defect>,
    /// A hostile host on the network during the fault phase, if any.
    pub adversary: Option<Adversary>,
    /// Per tick, the probability that the adversary sends a datagram.
    pub adversary_rate: f64,
}

impl Params {
    /// Draws every parameter from `seed`, then applies `o`.
    pub fn draw(seed: u64, o: &Overrides) -> Params {
        let mut rng = Rng::new(seed);
        let acceptors = o.acceptors.unwrap_or(if rng.chance(0.8) { 5 } else { 3 });
        let faults = !o.no_faults;
        // One run in fifty is big: many clients, many slots, large values.
        let big = rng.chance(0.02) && o.clients.is_none();
        let f = |rng: &mut Rng, p: f64| {
            if faults {
                p
            } else {
                let _ = rng;
                0.0
            }
        };
        let mut p = Params {
            seed,
            proposers: o.proposers.unwrap_or(if rng.chance(0.8) { 2 } else { 3 }),
            acceptors,
            clients: o.clients.unwrap_or(if big { rng.range(5, 12) } else { rng.range(1, 4) } as usize),
            values_per_client: o
                .values_per_client
                .unwrap_or(if big { rng.range(10, 30) } else { rng.range(2, 12) } as usize),
            window: {
                let drawn = [1, 4, 64, 4096][rng.index(4)];
                o.window.unwrap_or(drawn)
            },
            fault_ticks: o.fault_ticks.unwrap_or(rng.range(100, 800)),
            drop: 0.0,
            duplicate: 0.0,
            max_delay: rng.range(1, 12),
            crash_rate: 0.0,
            fail_rate: 0.0,
            partition_rate: 0.0,
            crash_before_persist: rng.unit(),
            client_timeout: rng.range(10, 40),
            big_values: if big { 0.3 } else { 0.0 },
            codec_check: big,
            wipe_proposer: 0.0,
            wipe_all_proposers: 0.0,
            wipe_acceptor: 0.0,
            member_rate: 0.0,
            operators: 1,
            transfer_rate: 0.0,
            spare_acceptors: 2,
            spare_proposers: 1,
            session_lifetime_ms: paxos_core::DEFAULT_SESSION_LIFETIME_MS,
            retain_slots: 0,
            clock_skew: 0.0,
            clock_spread_ms: 0,
            clock_jump_ms: 0,
            lose_proposer: false,
            lose_acceptor: false,
            lose_tail: 0.0,
            damage_log: 0.0,
            flaky_reads: 0.0,
            keep_going: false,
            one_way: 0.0,
            long_delay: 0.0,
            liveness_ticks: 200,
            persist_lag: 0,
            failed_acceptors: o.failed_acceptors.clone(),
            defect: o.defect,
            adversary: None,
            adversary_rate: 0.0,
        };
        let drop = rng.unit() * 0.3;
        p.drop = o.drop.unwrap_or(f(&mut rng, drop));
        let dup = rng.unit() * 0.1;
        p.duplicate = f(&mut rng, dup);
        let crash = rng.unit() * 0.02;
        p.crash_rate = f(&mut rng, crash);
        let fail = rng.unit() * 0.02;
        p.fail_rate = f(&mut rng, fail);
        let part = rng.unit() * 0.01;
        p.partition_rate = f(&mut rng, part);
        let wipe = if rng.chance(0.3) { rng.unit() * 0.5 } else { 0.0 };
        p.wipe_proposer = f(&mut rng, wipe);
        let skew = rng.unit() * 0.15;
        p.clock_skew = f(&mut rng, skew);
        p.one_way = f(&mut rng, 0.3);
        let long = rng.unit() * 0.01;
        p.long_delay = f(&mut rng, long);
        let wipe_all = if rng.chance(0.2) { rng.unit() * 0.002 } else { 0.0 };
        p.wipe_all_proposers = f(&mut rng, wipe_all);
        let wipe_acceptor = if rng.chance(0.5) { rng.unit() * 0.8 } else { 0.0 };
        p.wipe_acceptor = o.wipe_acceptor.unwrap_or(f(&mut rng, wipe_acceptor));
        let members = if rng.chance(0.4) { rng.unit() * 0.02 } else { 0.0 };
        p.member_rate = o.member_rate.unwrap_or(f(&mut rng, members));
        // One run in five has sessions that expire within seconds (3 to 10: a quarter of it
        // is above the clients' retry interval, as a minute is for real clients).
        let lifetime = rng.range(3, 10) * 1000;
        if rng.chance(0.2) {
            p.session_lifetime_ms = lifetime;
        }
        let lag = if rng.chance(0.5) { rng.range(1, 3) } else { 0 };
        p.persist_lag = if faults { lag } else { 0 };
        if !faults {
            p.max_delay = 1;
        }
        // One run in five has a forger on the network, one in ten an insider.
        let who = rng.unit();
        let drawn = if who < 0.2 {
            Some(Adversary::Forger)
        } else if who < 0.3 {
            Some(Adversary::Insider)
        } else {
            None
        };
        let rate = 0.02 + rng.unit() * 0.2;
        p.adversary = match o.adversary {
            Some(pinned) => pinned,
            None if faults => drawn,
            None => None,
        };
        p.adversary_rate = if p.adversary.is_some() { rate } else { 0.0 };
        // Drawn last and from its own stream, so that every other draw of a seed stays where it was.
        let mut own = Rng::new(seed ^ 0x7265_7461_696e);
        let retain = if faults && own.chance(0.3) { [7, 15, 20, 35, 64][own.index(5)] } else { 0 };
        p.retain_slots = o.retain_slots.unwrap_or(retain);
        // Wall clocks apart, within what the deadlines of member requests allow, in three
        // runs of ten; from a stream of its own as well.
        let mut wall = Rng::new(seed ^ 0x7761_6c6c);
        let spread =
            if faults && wall.chance(0.3) { [10, 100, paxos_proto::MAX_CLOCK_SKEW_MS][wall.index(3)] } else { 0 };
        p.clock_spread_ms = o.clock_spread_ms.unwrap_or(spread);
        p.clock_jump_ms = o.clock_jump_ms.unwrap_or(0);
        p.lose_proposer = o.lose_proposer;
        p.lose_acceptor = o.lose_acceptor;
        p.lose_tail = o.lose_tail.unwrap_or(0.0);
        p.damage_log = o.damage_log.unwrap_or(0.0);
        p.flaky_reads = o.flaky_reads.unwrap_or(0.0);
        p.keep_going = o.keep_going;
        // A second operator in half the faulty runs with membership changes;
        // from a stream of its own too (and none without changes, where it
        // would only shift the partitions' draws).
        let mut ops = Rng::new(seed ^ 0x6f70_6572);
        let operators = if faults && p.member_rate > 0.0 && ops.chance(0.5) { 2 } else { 1 };
        p.operators = o.operators.unwrap_or(operators).clamp(1, 2);
        // Leadership transfers in three faulty runs of ten; from a stream of its own too.
        let mut transfers = Rng::new(seed ^ 0x7472_616e);
        let transfer = if faults && transfers.chance(0.3) { 0.002 + transfers.unit() * 0.018 } else { 0.0 };
        p.transfer_rate = o.transfer_rate.unwrap_or(transfer);
        p
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={} proposers={} acceptors={} clients={} values_per_client={} window={} fault_ticks={} \
             drop={:.3} duplicate={:.3} max_delay={} crash_rate={:.4} fail_rate={:.4} partition_rate={:.4} \
             crash_before_persist={:.2} client_timeout={} big_values={:.1} codec_check={} wipe_proposer={:.2} \
             wipe_all_proposers={:.4} wipe_acceptor={:.2} member_rate={:.4} operators={} transfer_rate={:.4} session_lifetime_ms={} retain_slots={} \
             clock_skew={:.3} clock_spread_ms={} clock_jump_ms={} lose_proposer={} lose_acceptor={} lose_tail={:.2} damage_log={:.2} flaky_reads={:.2} one_way={:.1} long_delay={:.4} persist_lag={} liveness_ticks={} failed_acceptors={:?} defect={} \
             adversary={} adversary_rate={:.3}",
            self.seed,
            self.proposers,
            self.acceptors,
            self.clients,
            self.values_per_client,
            self.window,
            self.fault_ticks,
            self.drop,
            self.duplicate,
            self.max_delay,
            self.crash_rate,
            self.fail_rate,
            self.partition_rate,
            self.crash_before_persist,
            self.client_timeout,
            self.big_values,
            self.codec_check,
            self.wipe_proposer,
            self.wipe_all_proposers,
            self.wipe_acceptor,
            self.member_rate,
            self.operators,
            self.transfer_rate,
            self.session_lifetime_ms,
            self.retain_slots,
            self.clock_skew,
            self.clock_spread_ms,
            self.clock_jump_ms,
            self.lose_proposer,
            self.lose_acceptor,
            self.lose_tail,
            self.damage_log,
            self.flaky_reads,
            self.one_way,
            self.long_delay,
            self.persist_lag,
            self.liveness_ticks,
            self.failed_acceptors,
            self.defect.map_or("none", |d| d.name()),
            self.adversary.map_or("none", |a| a.name()),
            self.adversary_rate,
        )
    }
}
