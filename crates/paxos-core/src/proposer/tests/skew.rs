//! Clock skew between leaders: why a leader that gives up an operator's change waits
//! `MAX_CLOCK_SKEW_MS` past its deadline before it proposes the fence it gives the change up on.

use super::membership::{ask_answered, member_request_until, sent, the_member_reply};
use super::*;
use crate::proposer::STAMP_SLACK_MS;

/// A tick of the runtime (its default `tick_ms`).
const TICK_MS: u64 = 10;

/// How far the clock of the leader of the lower ballot is behind the other's: less than the skew allowed.
const BEHIND_MS: u64 = MAX_CLOCK_SKEW_MS - 100;

/// The operator's deadline (Unix ms).
const DEADLINE_MS: u64 = 1_000_300;

/// The addition of acceptor 6, at a6:7000.
fn add_joiner() -> MemberOp {
    MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() }
}

/// Acceptor 6's first answer, to probe round `round`: it joins, and holds `decided` decided slots.
fn joiner_report(round: u64, decided: u64) -> Message {
    let reply = ProbeReply {
        nonce: round,
        promised: Ballot::ZERO,
        decided: Slot(decided),
        incarnation: 606,
        epoch: 0,
        joining: true,
        leader: None,
        challenge: 0,
        clock_ms: 0,
        written: None,
        digest: None,
    };
    Message::ProbeReply(reply)
}

/// The entries `r` sends to acceptor 1 (every proposal, first sent or sent again, reaches it here).
fn proposals(r: &Ready<ProposerOp>) -> Vec<(Slot, Value)> {
    sent(r)
        .filter(|o| o.to == acc(1))
        .filter_map(|o| match &o.msg {
            Message::Accept(m) => Some(m.entries.iter().map(|e| (e.slot, e.value.clone()))),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The probe round `r` starts, if it probes.
fn probe_round_of(r: &Ready<ProposerOp>) -> Option<u64> {
    sent(r).find_map(|o| match &o.msg {
        Message::Probe(p) if o.to == acc(1) => Some(p.nonce),
        _ => None,
    })
}

/// Deadlines under clock skew: two proposers lead epoch 1 at once, A (proposer 1) with the lower
/// ballot, cut off from B (proposer 2) and unaware of it, A's clock `BEHIND_MS` (< `MAX_CLOCK_SKEW_MS`)
/// behind B's. Both hold the operator's addition of acceptor 6 with the same deadline; acceptor 6
/// first answers A's probe as A's clock reads the deadline (B's is past it by `BEHIND_MS`): A's last
/// chance to start the change, which it takes, its stop sign alone in its next slot. Past its deadline
/// B never starts the change: it proposes a fence (a no-op) `MAX_CLOCK_SKEW_MS` after the deadline by
/// its clock, acceptors 1 to 3 accept it at B's ballot, A learns the slot decided at once from a
/// catch-up (which carries no ballot), and B answers "given up".
///
/// With the margin, B's fence goes out only once A's clock too is past the deadline, after A's stop
/// sign, and in the same slot: decided as the fence, A's stop sign can never be chosen (A, learning
/// so, steps down), and "given up" holds. Without it the fence goes out at the deadline by B's clock,
/// is decided while A still has time, and A's stop sign goes into the slot after the fence, where a
/// minority of acceptors that never promised B's ballot could accept it and a later leader recover
/// and decide it after B answered "given up".
#[test]
fn a_fence_goes_out_only_after_a_leader_whose_clock_is_behind_had_its_last_chance() {
    let (mut a, a_ballot) = leader_in_epoch_1(1); // at tick 61
    let (mut b, b_ballot) = leader_in_epoch_1(2);
    assert!(a_ballot < b_ballot, "A leads with the lower ballot");
    let mut now = DEADLINE_MS - 300; // by B's clock
    b.set_clock(now);
    a.set_clock(now - BEHIND_MS);
    for p in [&mut a, &mut b] {
        // The addition waits for acceptor 6 to answer.
        ask_answered(p, client(7), member_request_until(1, add_joiner(), DEADLINE_MS));
    }

    let mut a_round = None;
    // Slot and time (by B's clock) of A's stop sign and of B's fence, when first proposed.
    let mut stop_sign: Option<(Slot, u64)> = None;
    let mut fence: Option<(Slot, u64)> = None;
    let mut given_up_at = None;
    while given_up_at.is_none() || now <= DEADLINE_MS + BEHIND_MS {
        now += TICK_MS;
        assert!(now < DEADLINE_MS + 10 * MAX_CLOCK_SKEW_MS, "B never gave the addition up");
        b.set_clock(now);
        a.set_clock(now - BEHIND_MS);

        let r = tick(&mut b);
        if let Some(round) = probe_round_of(&r) {
            let decided = b.learner().decided().0;
            answer_round(&mut b, round, decided);
        }
        if let Some((_, error)) = the_member_reply(&r) {
            let error = error.expect("B answers with an error");
            assert!(error.starts_with("given up at its deadline, not made: "), "{error}");
            given_up_at.get_or_insert(now);
        }
        for (slot, value) in proposals(&r) {
            assert_eq!(value, Value::Noop, "B, past its deadline before acceptor 6 answers, proposes only a fence");
            if fence.is_some() {
                continue;
            }
            fence = Some((slot, now));
            for x in 1..=3 {
                step(&mut b, acc(x), accepted(b_ballot, &[slot.0]));
            }
            assert_eq!(b.learner().decided(), slot.next(), "B's fence is decided");
            let decided =
                CatchUpReply { from: slot, entries: vec![Value::Noop], decided: slot.next(), epoch: None, nonce: 0 };
            step(&mut a, prop(2), Message::CatchUpReply(decided));
        }

        if a.role() != Leadership::Leader {
            continue;
        }
        if now - BEHIND_MS == DEADLINE_MS {
            let round = a_round.expect("A probes acceptor 6");
            let decided = a.learner().decided().0;
            assert!(step(&mut a, acc(6), joiner_report(round, decided)).is_empty());
        }
        let r = tick(&mut a);
        if let Some(round) = probe_round_of(&r) {
            let decided = a.learner().decided().0;
            answer_round(&mut a, round, decided);
            a_round = Some(round);
        }
        for (slot, value) in proposals(&r) {
            if matches!(value, Value::Config(_)) && stop_sign.is_none() {
                assert!(now - BEHIND_MS <= DEADLINE_MS, "A starts the change only by the deadline by its clock");
                stop_sign = Some((slot, now));
            }
        }
    }

    let (stop_slot, stop_at) = stop_sign.expect("A starts the change at its last chance, its clock at the deadline");
    let (fence_slot, fence_at) = fence.expect("B proposes a fence");
    let given_up_at = given_up_at.expect("B gives the addition up");
    assert!(
        stop_slot <= fence_slot,
        "A's stop sign (slot {}) must lie at or below B's fence (slot {}), or it may still be chosen after B gave \
         up at {given_up_at}",
        stop_slot.0,
        fence_slot.0
    );
    assert!(
        stop_at < fence_at,
        "B's fence (at {fence_at} by B's clock) goes out only after A's last chance, at {}: A proposed its stop \
         sign at {stop_at}",
        DEADLINE_MS + BEHIND_MS
    );
    assert!(fence_at > DEADLINE_MS + MAX_CLOCK_SKEW_MS, "B's fence goes out {MAX_CLOCK_SKEW_MS} ms after the deadline");
    assert_eq!(stop_slot, fence_slot, "A's stop sign and B's fence compete for the same slot");
    assert_eq!(a.learner().decided(), fence_slot.next(), "A learned the fence decided");
    assert_eq!(a.role(), Leadership::Follower, "A, its stop sign's slot decided with another value, steps down");
    assert_eq!((a.config().epoch, b.config().epoch), (1, 1), "nobody made the change");
}

/// `report` carrying the acceptor's wall clock.
fn clocked(report: Message, clock_ms: u64) -> Message {
    match report {
        Message::ProbeReply(r) => Message::ProbeReply(ProbeReply { clock_ms, written: None, ..r }),
        other => other,
    }
}

/// A leader whose clock runs hours ahead of the acceptors' (NTP gone wrong, a VM restored) stamps a
/// client's command no later than `STAMP_SLACK_MS` past the acceptors' clocks in their fresh probe
/// answers: the third latest of five, as a quorum of three may lack two (so two clocks further ahead
/// move nothing). It cannot age every client's session at once, which let retries land twice. (The
/// tests' other probe answers carry clocks further ahead than any: they bound nothing.)
#[test]
fn a_leader_whose_clock_runs_ahead_stamps_commands_by_the_acceptors_clocks() {
    const ACCEPTORS_MS: u64 = 1_000_000;
    const LEADER_MS: u64 = ACCEPTORS_MS + 3 * 3_600_000;
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(LEADER_MS);
    let stamp = |p: &mut Proposer, seq: u64| -> u64 {
        let r = step(p, client(7), propose(seq, "x"));
        let at = proposals(&r).into_iter().find_map(|(_, v)| match v {
            Value::Command(c) => Some(c.at),
            _ => None,
        });
        at.expect("the command is proposed at once")
    };
    assert_eq!(stamp(&mut p, 1), LEADER_MS, "the acceptors' clocks are further ahead: its own");

    let round = loop {
        if let Some(round) = probe_round_of(&tick(&mut p)) {
            break round;
        }
    };
    for (a, ahead_ms) in [(1, 10), (2, 20)] {
        step(&mut p, acc(a), clocked(report(a, round, ballot, 1), ACCEPTORS_MS + ahead_ms));
    }
    assert_eq!(stamp(&mut p, 2), LEADER_MS, "two clocks behind it, both of which a quorum may lack: its own");
    for (a, ahead_ms) in [(3, 30), (4, 9_000_000), (5, 9_000_000)] {
        step(&mut p, acc(a), clocked(report(a, round, ballot, 1), ACCEPTORS_MS + ahead_ms));
    }
    assert_eq!(stamp(&mut p, 3), ACCEPTORS_MS + 30 + STAMP_SLACK_MS);
}
