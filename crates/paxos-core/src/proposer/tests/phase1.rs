//! Phase 1: campaigning, promises page by page, adopting the highest ballot, Stoppable Paxos's rule at a
//! stop sign, becoming leader.

use super::*;

/// A configuration of epoch 2: the pinned members, acceptor 5 removed.
fn without_acceptor_5() -> Config {
    let mut c = pinned();
    c.epoch = 2;
    c.acceptors.retain(|m| m.id != NodeId(5));
    c
}

/// Phase 1 needs a quorum of the epoch: in epoch 0 (nobody's incarnation pinned) three complete promises of
/// five leave a candidate and the fourth makes it leader; in epoch 1 a majority, three, does. With nothing
/// accepted anywhere there is nothing to re-propose.
#[test]
fn quorum_of_promises_makes_leader() {
    let mut p = proposer(1);
    let r = elect_with(&mut p, &[(4, &[]), (2, &[]), (5, &[]), (1, &[])]);
    assert_eq!(r, ready(vec![], announced(b(1, 1), 2, 0)), "nothing to re-propose; it says that it leads");
    assert_eq!(p.leader(), Some(NodeId(1)));

    let mut p = restarted(1, pinned_state(0, &[]));
    let r = elect_with(&mut p, &[(4, &[]), (2, &[]), (5, &[])]);
    assert_eq!(r, ready(vec![], announced(b1(1, 1), 2, 1)));
    assert_eq!((p.leader(), p.ballot()), (Some(NodeId(1)), b1(1, 1)));
}

/// Phase 1 (P2c): per slot the leader re-proposes the value of the highest ballot reported across the
/// whole quorum, whichever promise arrives last, and fills holes below the highest reported slot with no-ops.
#[test]
fn adopts_highest_ballot_across_quorum_and_fills_holes() {
    let a: &[Reported] = &[(4, b1(1, 2), cmd(1, 1, "x"))];
    let bb: &[Reported] = &[(1, b1(2, 2), cmd(2, 1, "w")), (4, b1(2, 2), cmd(3, 1, "y"))];
    let c: &[Reported] = &[];
    let orders = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]];
    for order in orders {
        let reports: Vec<(u32, &[Reported])> = order.iter().map(|i| (*i, [a, bb, c][*i as usize - 1])).collect();
        // Round 5 on disk: the new ballot 1:6.1 is above every reported one, as the acceptors require.
        let mut p = restarted(1, pinned_state(5, &[]));

        let r = elect_with(&mut p, &reports);

        let entries = [(1, cmd(2, 1, "w")), (2, Value::Noop), (3, Value::Noop), (4, cmd(3, 1, "y"))];
        assert_eq!(
            r,
            ready_early(to_heard_and(&accept(b1(6, 1), 1, &entries), &[1, 2, 3], 2), vec![], announced(b1(6, 1), 2, 1)),
            "promises in order {order:?}"
        );
    }
}

/// Epochs: a value an acceptor accepted under a ballot of an older epoch, in a slot of the epoch in force,
/// can never be chosen (every acceptor of the epoch promised a ballot above it), and is not adopted.
#[test]
fn votes_of_an_older_epoch_are_not_adopted() {
    let mut p = restarted(1, pinned_state(0, &[]));

    let r = elect_with(&mut p, &[(1, &[(2, b(9, 2), cmd(1, 1, "old"))]), (2, &[]), (3, &[])]);

    assert_eq!(r, ready(vec![], announced(b1(1, 1), 2, 1)), "nothing to re-propose");
    let r = step(&mut p, client(7), propose(1, "x"));
    assert_eq!(r, early_only(to_heard_and(&accept(b1(1, 1), 1, &[(1, cmd(7, 1, "x"))]), &[1, 2, 3], 2)));
}

/// Stoppable Paxos: a stop sign (a configuration) that phase 1 adopts followed by a value of a higher
/// ballot was never chosen (the leader of that higher ballot would have found it and proposed nothing
/// after it), so the new leader re-proposes a no-op in its place, keeps what follows, and serves clients.
#[test]
fn stop_sign_followed_by_a_higher_ballot_becomes_a_noop() {
    let mut p = restarted(1, pinned_state(5, &[]));
    let reported: &[Reported] = &[(2, b1(3, 2), Value::Config(without_acceptor_5())), (3, b1(4, 2), cmd(7, 1, "x"))];

    let r = elect_with(&mut p, &[(1, reported), (2, &[]), (3, &[])]);

    let entries = [(1, Value::Noop), (2, Value::Noop), (3, cmd(7, 1, "x"))];
    let accepts = to_heard_and(&accept(b1(6, 1), 1, &entries), &[1, 2, 3], 2);
    assert_eq!(r, ready_early(accepts, vec![], announced(b1(6, 1), 2, 1)));
    let r = step(&mut p, client(8), propose(1, "y"));
    assert_eq!(r, early_only(to_heard_and(&accept(b1(6, 1), 1, &[(4, cmd(8, 1, "y"))]), &[1, 2, 3], 2)));
}

/// Stoppable Paxos: a stop sign that phase 1 adopts with nothing of a higher ballot after it may have
/// been chosen, so nothing after it can be of this epoch: the leader re-proposes it, drops what was
/// accepted after it (those slots are the next epoch's), and proposes no client value after it.
#[test]
fn entries_after_an_adopted_stop_sign_are_dropped() {
    let mut p = restarted(1, pinned_state(5, &[]));
    let stop = Value::Config(without_acceptor_5());
    let reported: &[Reported] = &[(2, b1(4, 2), stop.clone()), (3, b1(3, 2), cmd(7, 1, "x"))];

    let r = elect_with(&mut p, &[(1, reported), (2, &[]), (3, &[])]);

    let accepts = to_heard_and(&accept(b1(6, 1), 1, &[(1, Value::Noop), (2, stop)]), &[1, 2, 3], 2);
    assert_eq!(r, ready_early(accepts, vec![], announced(b1(6, 1), 2, 1)));
    assert!(step(&mut p, client(8), propose(1, "y")).is_empty(), "nothing goes after a stop sign");
}

/// Phase 1 paging: a promise page that is not `done` makes the candidate prepare again, with the same
/// ballot (and the same epoch), from the page's `to`, at that acceptor only.
#[test]
fn partial_promise_page_asks_that_acceptor_for_the_next_page() {
    let mut p = restarted(1, pinned_state(0, &[]));
    campaign(&mut p);
    let ballot = p.ballot();

    let r = step(&mut p, acc(3), page(ballot, 1, 8, false, &[(7, b1(0, 2), Value::Noop)]));

    assert_eq!(r, ready(vec![], vec![send(acc(3), prepare1(ballot, 8))]));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Phase 1 paging: an acceptor counts towards the quorum only once it reported everything (its last
/// page is `done`), and what its earlier pages reported is adopted too.
#[test]
fn paged_acceptor_counts_only_when_done() {
    let mut p = restarted(1, pinned_state(2, &[]));
    campaign(&mut p);
    let ballot = p.ballot();
    let old = b1(1, 2);

    step(&mut p, acc(1), page(ballot, 1, 3, false, &[(2, old, cmd(1, 1, "a"))]));
    assert!(step(&mut p, acc(2), promise(ballot, 1, &[])).is_empty());
    assert!(step(&mut p, acc(3), promise(ballot, 1, &[])).is_empty());
    assert_eq!(p.role(), Leadership::Candidate, "two complete promises and a partial one are no majority");
    // A duplicate of the first page, or a page we did not ask for, changes nothing.
    assert!(step(&mut p, acc(1), page(ballot, 1, 3, false, &[(2, old, cmd(1, 1, "a"))])).is_empty());
    assert!(step(&mut p, acc(1), promise(ballot, 5, &[])).is_empty());
    assert_eq!(p.role(), Leadership::Candidate);

    let r = step(&mut p, acc(1), page(ballot, 3, 5, true, &[(4, old, cmd(1, 2, "b"))]));

    let want = accept(ballot, 1, &[(1, Value::Noop), (2, cmd(1, 1, "a")), (3, Value::Noop), (4, cmd(1, 2, "b"))]);
    assert_eq!(r, ready_early(to_heard_and(&want, &[1, 2, 3], 2), vec![], announced(ballot, 2, 1)));
}

/// Phase 1a retransmission: after `retransmit_ticks` a candidate prepares again at every acceptor whose
/// promise is incomplete, from the page it still needs, and not at those that answered in full.
#[test]
fn phase1_retransmits_only_to_acceptors_without_a_complete_promise() {
    let mut p = proposer(1); // campaigns at tick 50
    campaign(&mut p);
    let ballot = p.ballot();
    step(&mut p, acc(1), promise(ballot, 0, &[]));
    step(&mut p, acc(2), page(ballot, 0, 4, false, &[(3, Ballot::ZERO, Value::Noop)]));
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());

    let r = tick(&mut p);

    let mut want = vec![send(acc(2), prepare(ballot, 4))];
    want.extend([3, 4, 5].map(|a| send(acc(a), prepare(ballot, 0))));
    assert_eq!(r, ready(vec![], want));
}

/// Preemption: a preempted leader that is still the rightful one keeps its clients' values and
/// re-proposes them under its next ballot.
#[test]
fn preempted_leader_reproposes_in_flight_values_after_reelection() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), nack(ballot, b1(5, 2), NackReason::Promised));

    let r = elect_with(&mut p, &[(1, &[]), (2, &[]), (3, &[])]);

    let accepts = to_acceptors_and(&accept(b1(6, 1), 1, &[(1, cmd(7, 1, "x"))]), 2);
    assert_eq!(r, ready_early(accepts, vec![], announced(b1(6, 1), 2, 1)));
}

/// Phase 1 recovery + exactly once: a retry of a request that phase 1 found accepted (and re-proposed)
/// is not proposed a second time, and is answered with the slot it was re-proposed at.
#[test]
fn retry_of_adopted_request_is_answered_with_its_adopted_slot() {
    let mut p = restarted(1, pinned_state(4, &[]));
    let old = b1(2, 2);
    elect_with(&mut p, &[(1, &[(2, old, cmd(7, 3, "x"))]), (2, &[]), (3, &[])]);
    let ballot = p.ballot();

    let r = step(&mut p, client(7), propose(3, "x"));

    assert!(r.is_empty(), "{r:?}");
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    let mut last = Ready::default();
    for a in 1..=3 {
        last = step(&mut p, acc(a), accepted(ballot, &[2]));
    }
    let reply = Message::ClientReply(ClientReply { seq: 3, slot: Slot(2) });
    assert_eq!(last, ready_early(vec![send(client(7), reply)], vec![learn(2, cmd(7, 3, "x"))], vec![]));
}

/// Phase 1 recovery + exactly once: a request queued during phase 1 that phase 1 then finds accepted
/// elsewhere is re-proposed once, at its adopted slot, not again at a fresh one.
#[test]
fn value_queued_during_phase1_and_adopted_is_proposed_once() {
    let mut p = restarted(1, pinned_state(4, &[]));
    campaign(&mut p);
    let ballot = p.ballot();
    assert!(step(&mut p, client(7), propose(3, "x")).is_empty());
    step(&mut p, acc(1), promise(ballot, 1, &[(1, b1(2, 2), cmd(7, 3, "x"))]));
    step(&mut p, acc(2), promise(ballot, 1, &[]));

    let r = step(&mut p, acc(3), promise(ballot, 1, &[]));

    let accepts = to_heard_and(&accept(ballot, 1, &[(1, cmd(7, 3, "x"))]), &[1, 2, 3], 2);
    assert_eq!(r, ready_early(accepts, vec![], announced(ballot, 2, 1)));
}

/// Flow control covers recovery too: a single promise reporting one value far above the decided prefix
/// (one forged accept stored by one acceptor suffices) must not make the new leader put every slot below
/// it in flight at once; here a million no-ops, in general an unbounded allocation. Recovery may use a
/// wider window than client values (RECOVERY_WINDOW), so that filling many holes does not take forever.
#[test]
fn recovery_of_a_far_slot_respects_the_window() {
    let mut c = cfg(1);
    c.window = 64;
    let mut p = Proposer::new(c, pinned_state(3, &[]));

    let r = elect_with(&mut p, &[(1, &[(1_000_000, b1(2, 2), cmd(6, 1, "far"))]), (2, &[]), (3, &[])]);

    assert_eq!(r.messages, announced(p.ballot(), 2, 1), "accepts wait for no write; the announcement follows them");
    let slots: usize = r
        .early
        .iter()
        .filter(|m| m.to == acc(1))
        .map(|m| match &m.msg {
            Message::Accept(a) => a.entries.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(slots, crate::proposer::phase2::RECOVERY_WINDOW, "slots put in flight at once");
    assert!(step(&mut p, client(7), propose(1, "x")).is_empty(), "client values wait behind the recovery");
}

/// Decided slots are learned, never proposed: slots below an acceptor's reported decided prefix are in
/// its decided log, so the new leader re-proposes nothing there, asks that acceptor for them, and holds
/// client values back until it has learned them (it could not deduplicate against them otherwise).
#[test]
fn slots_an_acceptor_holds_as_decided_are_learned_before_clients_are_served() {
    let mut p = restarted(1, pinned_state(0, &[]));
    campaign(&mut p);
    let ballot = p.ballot();
    step(&mut p, acc(1), page_decided(ballot, 1, 3, true, 4, &[(2, b1(0, 2), cmd(7, 1, "x"))]));
    step(&mut p, acc(2), promise(ballot, 1, &[]));
    let r = step(&mut p, acc(3), promise(ballot, 1, &[]));
    let want = ready(vec![], announced(ballot, 2, 1));
    assert_eq!((r, p.role()), (want, Leadership::Leader), "nothing to re-propose below slot 4");
    assert!(step(&mut p, client(8), propose(1, "y")).is_empty(), "y waits for slots 1 to 3");
    let r = tick(&mut p);
    assert_eq!(
        r,
        ready(vec![], vec![send(acc(1), Message::CatchUp(CatchUp { from: Slot(1), limit: 1024, nonce: 0 }))])
    );

    let decided = vec![Value::Noop, cmd(7, 1, "x"), Value::Noop];
    let reply = CatchUpReply { from: Slot(1), entries: decided.clone(), decided: Slot(4), epoch: None, nonce: 0 };
    let r = step(&mut p, acc(1), Message::CatchUpReply(reply));

    let learns = decided.into_iter().enumerate().map(|(i, v)| learn(i as u64 + 1, v)).collect();
    let y = accept(ballot, 4, &[(4, cmd(8, 1, "y"))]);
    assert_eq!(r, ready_early(to_heard_and(&y, &[1, 2, 3], 2), learns, vec![]));
}
