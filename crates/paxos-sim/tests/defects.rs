//! The checks bite: deliberately broken roles are caught within a bounded number of seeds.
//!
//! Each defect is one of the seed demo's bugs (shared/seeds/README.md). The
//! simulator must find a broken guarantee within `BOUND` seeds; the number it
//! needed is printed, so a weakening of the simulator shows as a growing count.

use paxos_sim::{run, Adversary, Defect, Overrides};

const BOUND: u64 = 1000;

fn seeds_to_catch(defect: Defect) -> u64 {
    // The bounds on rounds and slots only matter against a key holder that sends extreme ones.
    let adversary = (defect == Defect::Unbounded).then_some(Some(Adversary::Insider));
    catch_within(&Overrides { defect: Some(defect), adversary, ..Overrides::default() }, BOUND)
}

/// Runs seeds from 0 with the defect that `o` pins until a guarantee breaks; returns how many runs
/// that took, and fails when `bound` seeds do not catch it. A run that panics is caught too: a
/// defect may break the guarantee that no input makes a node panic (`unbounded` turns a forged
/// slot into a range too large to allocate).
fn catch_within(o: &Overrides, bound: u64) -> u64 {
    let name = o.defect.expect("a defect is pinned").name();
    for (i, seed) in (0..bound).enumerate() {
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed, o))) {
            Ok(outcome) => outcome,
            Err(_) => {
                println!("{name}: caught at seed {seed} after {} runs: a role panicked", i + 1);
                return i as u64 + 1;
            }
        };
        if !outcome.ok() {
            println!("{name}: caught at seed {seed} after {} runs: {}", i + 1, outcome.violations[0]);
            return i as u64 + 1;
        }
    }
    panic!("{name} survived {bound} seeds: the simulator's checks do not bite");
}

/// Seed defect 1: an acceptor that accepts without checking its promise breaks agreement.
#[test]
fn catches_accept_ignoring_promise() {
    seeds_to_catch(Defect::AcceptIgnoresPromise);
}

/// Seed defect 2: adopting values from the last promise instead of the highest ballot loses chosen values.
/// It needs elections where promises report different values; since leadership moves less often (a new
/// leader says so at once, a leader leads on into a new configuration), transfers in every run move it.
#[test]
fn catches_adopt_from_last_promise() {
    let o = Overrides { defect: Some(Defect::AdoptFromLastPromise), transfer_rate: Some(0.02), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A quorum of n/2 lets two disjoint "majorities" choose different values.
#[test]
fn catches_minority_quorum() {
    seeds_to_catch(Defect::MinorityQuorum);
}

/// A follower that learns below the leader's commit index whatever value
/// it holds for a slot, not the one the commit's ballot proposed, learns a
/// value a later ballot replaced: agreement breaks.
#[test]
fn catches_a_commit_that_decides_any_ballots_value() {
    seeds_to_catch(Defect::CommitAnyBallot);
}

/// Without the ceiling of rounds and the slot step, a member with the key
/// that sends extreme rounds and slots stops the cluster for good.
#[test]
fn catches_unbounded_rounds_and_slots() {
    seeds_to_catch(Defect::Unbounded);
}

/// An acceptor that lost its disk and votes at once, as the member it was,
/// breaks agreement: caught with acceptors losing their disks in every run.
/// Three acceptors, where one amnesiac is a third of every quorum (with the
/// seed's own mix, 5 acceptors among them, it takes ~15,000 seeds), and
/// leadership transfers in every run: the amnesiac's vote must count in an
/// election.
#[test]
fn catches_voting_with_amnesia() {
    let o = Overrides {
        defect: Some(Defect::Amnesia),
        wipe_acceptor: Some(0.9),
        acceptors: Some(3),
        proposers: Some(3),
        transfer_rate: Some(0.1),
        ..Overrides::default()
    };
    catch_within(&o, AMNESIA_BOUND);
}

/// Voting with amnesia needs a disk lost at the wrong moment: more seeds
/// (caught at seed 72 when this was written, at seed 698 in 2026-11-30's
/// first build, and at seed 1430 with transfers once leadership moved less
/// often; without them, not within 2,000). On 2026-12-01, once proposers
/// that just started answer busy until they know the acceptors' clocks,
/// transfers at 0.02 first caught it at seed 4605; with three proposers and
/// transfers at 0.1 it is caught at seeds 627, 2605, 2809 and 3431 of the
/// first 4,000. On 2026-12-03, once every answer said how much the acceptor
/// wrote (every trace moved), at seeds 4715 and 5973 of the first 6,000 (9
/// in the first 20,000; the build before: 13).
const AMNESIA_BOUND: u64 = 6000;

/// An acceptor that changes its state without writing the change (here, a
/// promise) is no longer the fold of what it wrote, which the daemons'
/// store relies on (it checkpoints the acceptor's own state): caught by the
/// fold check at the first such promise.
#[test]
fn catches_a_promise_not_written() {
    seeds_to_catch(Defect::UnloggedPromise);
}

/// The correct roles survive the very seeds that catch the defects.
#[test]
fn correct_roles_survive_the_same_seeds() {
    for seed in 0..100 {
        assert!(run(seed, &Overrides::default()).ok(), "seed {seed}");
    }
}

/// A log that restarts later (retention) without copying the clients'
/// sessions lets a retry of a request applied in the deleted slots land
/// again: caught with a small retention (7 slots), so that logs restart often.
#[test]
fn catches_a_restart_without_sessions() {
    let o = Overrides { defect: Some(Defect::StatelessRestart), retain_slots: Some(7), ..Overrides::default() };
    catch_within(&o, STATELESS_BOUND);
}

/// A restart without sessions needs a retry across it: more seeds.
const STATELESS_BOUND: u64 = 5000;

/// A leader that answers "given up" at a change's deadline but keeps the
/// change queued makes it later (an acceptor that started late is let in
/// after all): caught by the deadline check, with membership changes in every run.
#[test]
fn catches_a_change_made_after_it_was_given_up() {
    let o = Overrides { defect: Some(Defect::MemberPastDeadline), member_rate: Some(0.02), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A leader that makes an operator's change from whatever configuration is
/// in force, not only from the epoch it was asked from: a change asked from
/// an earlier epoch is made. Caught by the epoch check, with membership
/// changes in every run (first where the cluster's first configuration
/// overtakes a request asked from epoch 0).
#[test]
fn catches_a_change_made_from_another_epoch() {
    let o = Overrides { defect: Some(Defect::MemberAnyEpoch), member_rate: Some(0.02), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// The case the epoch is for: late copies of the operator's requests (the
/// network duplicates and delays them) reach a leader without their epoch,
/// as an older client sends them, and one that reaches a leader which never
/// answered it makes its change again after a later change undid it (the
/// roles are correct; the copies are not). Caught by the epoch check; it
/// needs leadership to move between the answer and the copy: a third
/// proposer, and transfers while changes wait.
///
/// It is too rare for a bounded search to be quick: before 9c0bef1 (a
/// change counts only answers since its request, one more round trip) two
/// seeds in the first 8,000 caught it (81 and 6771), after it none did. So
/// this test pins a seed that does, and that it passes without the defect:
/// a change of the core that moves the traces may need a new seed
/// (`paxos-sim --sweep 40000 --defect epochless-copies --proposers 3
/// --member-rate 0.02 --transfer-rate 0.05 --threads 2`): 19239 on 9c0bef1,
/// 12914 since proposers that just started answer busy until they know the
/// acceptors' clocks, 20969 since removed proposers send clients to members
/// and clients go on past a silent leader from the proposer that named it
/// (2026-12-01), 50597 since the simulated client asks a busy proposer
/// again after a back-off (2026-12-02; none in the first 40,000), 116352
/// since every acceptor answer says how much it wrote (2026-12-03; the
/// first a sweep of 116,353 seeds found).
#[test]
fn catches_a_late_copy_without_its_epoch_making_a_change_again() {
    const SEED: u64 = 116_352;
    let mut o = Overrides {
        defect: Some(Defect::EpochlessCopies),
        member_rate: Some(0.02),
        proposers: Some(3),
        transfer_rate: Some(0.05),
        ..Overrides::default()
    };
    let outcome = run(SEED, &o);
    assert!(
        outcome.violations.first().is_some_and(|v| v.invariant == "member epoch"),
        "seed {SEED} no longer catches epochless-copies: {:?}",
        outcome.violations
    );
    o.defect = None;
    let outcome = run(SEED, &o);
    assert!(outcome.ok(), "seed {SEED} without the defect: {:?}", outcome.violations);
}

/// An operator that asks a change again from any newer configuration a
/// leader refuses it with, not only from the very next one that does not
/// have it (as the client did in 82bfabb): with a second operator undoing
/// the first one's additions while it waits for its answer, a change is
/// made twice by one command. Caught by the check that each command makes
/// its change at most once, or by the deadline check when its second try is
/// given up although its first made the change (seed 1349).
#[test]
fn catches_a_command_that_makes_its_change_twice() {
    let o = Overrides {
        defect: Some(Defect::ReaskAnyEpoch),
        member_rate: Some(0.02),
        operators: Some(2),
        ..Overrides::default()
    };
    // About one seed in 400 catches it (9 of the first 3,000 before
    // 9c0bef1, 7 after, the first at 1349): three bounds, not one.
    catch_within(&o, 3 * BOUND);
}

/// A proposer that leadership is handed to (`paxosctl leader transfer`)
/// leads on the first promise, as if the leader that handed over vouched
/// for its log: with leadership transfers under faults, a value chosen by a
/// quorum that promise did not reach is overwritten. Caught by agreement.
#[test]
fn catches_leadership_handed_over_taken_on_one_promise() {
    let o = Overrides { defect: Some(Defect::HandedOverOnePromise), transfer_rate: Some(0.02), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A proposer counts only votes (promises, accepts) as an acceptor's signs
/// of life, not probe answers: an idle leader hears no quorum and steps
/// down every election timeout (check quorum), and leadership flaps while
/// nothing is wrong. Caught by stability, in the quiet ticks after a run
/// settled.
#[test]
fn catches_an_idle_leader_that_steps_down() {
    seeds_to_catch(Defect::VotesOnlyAlive);
}

/// A proposer campaigns without a pre-vote, although a quorum of the
/// acceptors names a live leader it does not hear (cut off from it): its
/// ballot would fence that leader, as a healed partition did. Caught by
/// the pre-vote check, at every tick.
#[test]
fn catches_a_campaign_against_a_leader_the_acceptors_vouch_for() {
    seeds_to_catch(Defect::NoPrevote);
}

/// An acceptor's lease never runs out: it names a leader that crashed or
/// stepped down forever, so no proposer passes a pre-vote again and the
/// cluster stays leaderless. Caught by liveness: the pre-vote may delay a
/// campaign, never stop it.
#[test]
fn catches_leases_that_never_run_out() {
    seeds_to_catch(Defect::EndlessLease);
}

/// A proposer whose clock jumps hours ahead, and stamps client commands with it alone, ages every
/// client's session at once (retries then land twice): the check of stamps catches it.
#[test]
fn catches_commands_stamped_by_a_clock_far_ahead() {
    let o =
        Overrides { defect: Some(Defect::UnboundedStamps), clock_jump_ms: Some(3 * 3_600_000), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A proposer that asks the node it takes to be furthest ahead for what it lacks, for ever, however
/// often it goes unanswered: once that node is lost for good, the proposer never learns the epoch the
/// acceptors moved to, cannot campaign, and nothing is decided. Caught by liveness with a proposer
/// lost during the faults (`--lose-proposer`); the real daemons showed it when two proposers moved.
#[test]
fn catches_a_catch_up_that_never_gives_up_on_its_node() {
    let o = Overrides { defect: Some(Defect::CatchUpNeverSwitches), lose_proposer: true, ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// An acceptor catching up from a proposer that cannot read its log (a damaged old segment,
/// `--damage-log`) asks it alone for ever, while it keeps announcing commits; a proposer too,
/// when the silent node is the one it took to be furthest ahead.
#[test]
fn catches_a_catch_up_that_never_gives_up_on_a_damaged_log() {
    let o = Overrides { defect: Some(Defect::CatchUpNeverSwitches), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A failed read answered as the end of the log (an empty page) leaves a proposer that copies from
/// that node with nothing, for ever: an answer, even without entries, keeps it asking the same node.
/// The damaged range must be what someone needs: nodes that lose their disks and join need it most.
#[test]
fn catches_a_failed_read_answered_as_the_end_of_the_log() {
    let o = Overrides {
        defect: Some(Defect::FailedReadAsEnd),
        damage_log: Some(1.0),
        wipe_acceptor: Some(0.5),
        member_rate: Some(0.02),
        ..Overrides::default()
    };
    catch_within(&o, BOUND);
}

/// A proposer whose decided log cannot be read that leads on as any other: while it leads, peers and
/// acceptors behind find the slots only it learned nowhere (it answers their catch-up with nothing),
/// so they never learn the configuration it moved the cluster to, and the log stops. Caught by
/// liveness when the damage covers the proposer's last slots (`--damage-log`). About one seed in 500
/// catches it (11 and 9 of the first 5,000, before and after damage could start past a log's first
/// slot, which moved every trace: the first catch went from seed 305 to 1033), so its bound is 3,000.
#[test]
fn catches_a_damaged_proposer_that_leads_on() {
    let o = Overrides { defect: Some(Defect::DamagedLeads), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, 3 * BOUND);
}

/// Nodes that do not read their decided log after a start: one whose log was damaged while it was down
/// does not know until someone reads through the damage (a damaged proposer may lead meanwhile, a
/// damaged acceptor's `/health` says nothing). Caught by the scrub check (`--damage-log`): a node started
/// with a damaged log must have failed a read of it within 20 ticks.
#[test]
fn catches_a_node_that_does_not_read_its_log_after_a_start() {
    let o = Overrides { defect: Some(Defect::NoScrub), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// Nodes that read their decided log after a start and never again: a segment that rots under a
/// running node is found only when someone reads through it. Caught by the scrub check
/// (`--damage-log`, which also damages a running node's log): its next pass must fail a read.
#[test]
fn catches_a_node_that_reads_its_log_only_after_a_start() {
    let o = Overrides { defect: Some(Defect::ScrubOnce), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// Passes over the decided log that end after their first page, as if the log ended there: damage
/// further in is found only when someone reads through it. Caught by the scrub check (`--damage-log`,
/// whose damage starts past the log's first slot in half the runs; the simulator's passes ask for 8
/// entries a page, so that they page over its short logs as the daemons' do over long ones), and by
/// the damage-mark check: a pass that ends at an empty page short of the log's end vouches for
/// nothing, so a mark is never taken back, even once retention deleted the damage (first at seed 21,
/// then 42 by the damage mark, 146 and 152 by the scrub check: 32 of the first 1,000 seeds).
#[test]
fn catches_a_pass_that_ends_after_one_page() {
    let o = Overrides { defect: Some(Defect::ShortPass), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A node that keeps its damage mark until it restarts (as every node did before): one read that
/// failed for a passing I/O error keeps it unhealthy, and a proposer out of leadership, although its
/// later passes read the whole log. Caught by the damage-mark check (`--flaky-reads`).
#[test]
fn catches_a_node_that_keeps_its_damage_mark() {
    let o = Overrides { defect: Some(Defect::DamageSticks), flaky_reads: Some(0.2), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A node that takes any read that succeeds after a failed one for proof that its log can be read
/// (a page above the damage): it says it is healthy, and a proposer leads, over damage that is still
/// there. Caught by the damage-mark check (`--damage-log`).
#[test]
fn catches_a_node_that_any_read_clears() {
    let o = Overrides { defect: Some(Defect::AnyReadClears), damage_log: Some(1.0), ..Overrides::default() };
    catch_within(&o, BOUND);
}

/// A proposer whose log restarts later (retention copies a peer's state across the slots it lacks)
/// and keeps the digest chain it had: the chain then no longer covers the slots its log holds, so
/// its claims differ from every peer's though every log agrees. Caught by the digest check, which
/// holds an alarm against what the learners applied (`--retain-slots 8` with 30 values per client,
/// so that logs restart and pass digest points: first at seed 39).
#[test]
fn catches_a_digest_chain_kept_across_a_log_restart() {
    let o = Overrides {
        defect: Some(Defect::ChainSurvivesRestart),
        retain_slots: Some(8),
        values_per_client: Some(30),
        ..Overrides::default()
    };
    catch_within(&o, BOUND);
}

/// A known hole, narrowed, not closed: an acceptor whose disk loses writes it had synced and
/// answered about (`--lose-tail`: its last 1 to 256 durable batches, as a zeroed tail or a data dir
/// rolled back to an older copy would) restarts as the same incarnation, not knowing. Proposers send
/// back what its answers said it had written, and it rebuilds as a new incarnation once it sees it
/// holds less (see the next test); but when the only proposer that heard its last answers is gone
/// too (it crashed or was wiped within a heartbeat, before it told its peers), nobody can tell it,
/// and it votes with what it forgot: with a quorum that counts on it, a value clients were told was
/// decided is overwritten (README, Known limits). This pins that the simulator's fault still
/// reaches what is left (seed 914 of the first 3000), so that a fix can be shown to close it; with
/// the fix, this becomes a sweep that passes.
#[test]
fn a_lost_synced_tail_breaks_agreement_a_known_hole() {
    let o = Overrides { lose_tail: Some(1.0), acceptors: Some(3), ..Overrides::default() };
    for seed in 0..3000 {
        let outcome = run(seed, &o);
        if let Some(v) = outcome.violations.iter().find(|v| v.invariant == "agreement") {
            println!("lose-tail: agreement broken at seed {seed}: {v}");
            return;
        }
    }
    panic!(
        "3000 seeds with --lose-tail 1 --acceptors 3 broke no agreement: the fault no longer reaches the known hole"
    );
}

/// Lost synced writes, the remedy: an acceptor that ignores what proposers say it wrote votes on
/// with what its disk kept, and with `--lose-tail` agreement breaks at these seeds (pinned: the
/// fault is rare: 31 runs of 50,000 from 487,000,000 break without the remedy, 6 with it);
/// with the remedy each passes, and the acceptor rebuilt.
#[test]
fn catches_an_acceptor_that_ignores_what_it_wrote() {
    for seed in [487_000_128, 487_000_390, 487_000_895] {
        let o = Overrides { lose_tail: Some(1.0), acceptors: Some(3), ..Overrides::default() };
        let fixed = run(seed, &o);
        assert!(fixed.ok(), "seed {seed} with the remedy: {:?}", fixed.violations);
        assert!(fixed.stats.rebuilt_lost_writes > 0, "seed {seed}: the acceptor found its lost writes");
        let broken = run(seed, &Overrides { defect: Some(Defect::IgnoresWritten), ..o });
        assert!(
            broken.violations.iter().any(|v| v.invariant == "agreement"),
            "seed {seed} without the remedy: {:?}",
            broken.violations
        );
    }
}

/// Lost synced writes, no false alarm: an acceptor that checks what its answers of this start said
/// it wrote (which counts writes made since it started) takes them for writes its disk lost, and
/// rebuilds for nothing. Caught by the check that only an acceptor whose disk lost writes rebuilds
/// for it (in any run: no fault needed).
#[test]
fn catches_an_acceptor_that_rebuilds_for_writes_it_did_not_lose() {
    let o = Overrides { defect: Some(Defect::WrittenAnyStart), ..Overrides::default() };
    catch_within(&o, BOUND);
}
