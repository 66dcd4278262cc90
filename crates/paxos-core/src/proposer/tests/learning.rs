//! Learning: applying decided slots in order, catch-up between proposers.

use super::*;

/// Catch-up: a follower that hears a peer has decided further asks it for the entries from its own
/// first undecided slot, at its first tick, without waiting for its start-up probe to be answered.
#[test]
fn follower_behind_a_peer_asks_to_catch_up() {
    let mut p = restarted(1, ProposerState { round: 0, log: vec![Value::Noop, Value::Noop, Value::Noop] });
    assert!(step(&mut p, prop(2), heartbeat(b(1, 2), true, 10)).is_empty());

    let r = tick(&mut p);

    let mut want = to_acceptors(&probe());
    want.push(send(prop(2), Message::CatchUp(CatchUp { from: Slot(3), limit: 1024 })));
    assert_eq!(r, ready(vec![], want));
    assert!(tick(&mut p).is_empty(), "no second request (nor probe) before a retransmission interval");
}

/// Catch-up: decided entries from a peer are learned in order, each persisted as a Learn op.
#[test]
fn catch_up_reply_is_learned_and_persisted_in_order() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 4));
    tick(&mut p);
    let values = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b"), cmd(7, 2, "c")];

    let r = step(
        &mut p,
        prop(2),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: values.clone(), decided: Slot(4) }),
    );

    let want: Vec<_> = values.into_iter().enumerate().map(|(i, v)| learn(i as u64, v)).collect();
    assert_eq!(r, ready(want, vec![]));
    assert_eq!(p.learner().decided(), Slot(4));
}

/// Catch-up: a reply that leaves us behind the peer's decided point is followed at the next tick by a
/// request for the rest, without waiting for a retransmission interval.
#[test]
fn partial_catch_up_reply_asks_for_the_rest_at_once() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 6));
    tick(&mut p);
    let reply = CatchUpReply { from: Slot(0), entries: vec![Value::Noop, Value::Noop], decided: Slot(6) };
    step(&mut p, prop(2), Message::CatchUpReply(reply));

    let r = tick(&mut p);

    assert_eq!(r, ready(vec![], vec![send(prop(2), Message::CatchUp(CatchUp { from: Slot(2), limit: 1024 }))]));
}

/// Catch up before leading: the rightful leader, while a live peer has decided more than `window` slots
/// beyond it, asks that peer for entries and does not campaign, even past its election timeout; once it is
/// within the window it campaigns from its first undecided slot (and keeps fetching the rest).
#[test]
fn rightful_follower_far_behind_catches_up_before_campaigning() {
    let mut c = cfg(2);
    c.window = 4;
    let mut p = Proposer::new(c, ProposerState::default());
    probed(&mut p); // tick 1
                    // Proposer 1 led while we were away and has decided slots 0..10.
    let peer_leads = heartbeat(b(3, 1), true, 10);
    assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
    let ask = |from| send(prop(1), Message::CatchUp(CatchUp { from: Slot(from), limit: 1024 }));
    let noops = |from, n| {
        Message::CatchUpReply(CatchUpReply { from: Slot(from), entries: vec![Value::Noop; n], decided: Slot(10) })
    };
    for t in 2..=80u64 {
        if t % 10 == 5 {
            assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
        }
        let r = tick(&mut p);
        let mut want = Vec::new();
        if t % 10 == 0 {
            want.push(send(prop(1), heartbeat(b(0, 2), false, 0)));
        }
        if t % 3 == 2 {
            want.push(ask(0));
        }
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Follower, "tick {t}");
    }
    // Slots 0..5: still 5 behind, one more than the window.
    assert_eq!(step(&mut p, prop(1), noops(0, 5)).persist.len(), 5);
    assert_eq!(tick(&mut p), ready(vec![], vec![ask(5)]), "tick 81: no campaign yet, the rest asked for at once");
    assert_eq!(step(&mut p, prop(1), noops(5, 1)).persist, vec![learn(5, Value::Noop)]);

    let r = tick(&mut p); // tick 82: 4 behind, within the window

    let mut want = to_acceptors(&prepare(b(4, 2), 6));
    want.push(ask(6));
    assert_eq!(r, ready(vec![ProposerOp::Round(4)], want));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Catch-up: a proposer serves its decided log from the requested slot.
#[test]
fn catch_up_request_is_served_from_the_log() {
    let log = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut p = restarted(2, ProposerState { round: 0, log });

    let r = step(&mut p, prop(1), Message::CatchUp(CatchUp { from: Slot(1), limit: 1024 }));

    let reply = CatchUpReply { from: Slot(1), entries: vec![cmd(7, 1, "a"), cmd(8, 1, "b")], decided: Slot(3) };
    assert_eq!(r, ready(vec![], vec![send(prop(1), Message::CatchUpReply(reply))]));
}

/// A follower learns a value from the leader's accept copy plus the acceptors' Accepted votes.
#[test]
fn follower_learns_from_accept_copy_and_votes() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 0));
    assert!(step(&mut p, prop(2), accept(b(1, 2), &[(0, cmd(7, 1, "x"))])).is_empty());
    step(&mut p, acc(1), accepted(b(1, 2), &[0]));
    step(&mut p, acc(2), accepted(b(1, 2), &[0]));

    let r = step(&mut p, acc(3), accepted(b(1, 2), &[0]));

    assert_eq!(r, ready(vec![learn(0, cmd(7, 1, "x"))], vec![]), "the follower does not answer the client");
}
