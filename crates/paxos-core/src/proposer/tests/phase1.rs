//! Phase 1: campaigning, promises page by page, adopting the highest ballot, becoming leader.

use super::*;

/// Phase 1 needs a majority: two complete promises of five leave a candidate; the third makes it leader,
/// and with nothing accepted anywhere there is nothing to re-propose.
#[test]
fn majority_of_promises_makes_leader() {
    let mut p = proposer(1);
    let r = elect_with(&mut p, &[(4, &[]), (2, &[]), (5, &[])]);
    assert_eq!(r, ready(vec![], vec![]));
    assert_eq!(p.leader(), Some(NodeId(1)));
}

/// Phase 1 (P2c): per slot the leader re-proposes the value of the highest ballot reported across the
/// whole quorum, whichever promise arrives last, and fills holes below the highest reported slot with no-ops.
#[test]
fn adopts_highest_ballot_across_quorum_and_fills_holes() {
    let a: &[Reported] = &[(3, b(1, 2), cmd(1, 1, "x"))];
    let bb: &[Reported] = &[(0, b(2, 2), cmd(2, 1, "w")), (3, b(2, 2), cmd(3, 1, "y"))];
    let c: &[Reported] = &[];
    let orders = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]];
    for order in orders {
        let reports: Vec<(u32, &[Reported])> = order.iter().map(|i| (*i, [a, bb, c][*i as usize - 1])).collect();
        // Round 5 on disk: the new ballot 6.1 is above every reported one, as the acceptors require.
        let mut p = restarted(1, ProposerState { round: 5, log: vec![] });

        let r = elect_with(&mut p, &reports);

        let want = accept(b(6, 1), &[(0, cmd(2, 1, "w")), (1, Value::Noop), (2, Value::Noop), (3, cmd(3, 1, "y"))]);
        assert_eq!(r, early_only(to_acceptors_and(&want, 2)), "promises in order {order:?}");
    }
}

/// Phase 1 paging: a promise page that is not `done` makes the candidate prepare again, with the same
/// ballot, from the page's `to`, at that acceptor only.
#[test]
fn partial_promise_page_asks_that_acceptor_for_the_next_page() {
    let mut p = proposer(1);
    campaign(&mut p);
    let ballot = p.ballot();

    let r = step(&mut p, acc(3), page(ballot, 0, 8, false, &[(7, Ballot::ZERO, Value::Noop)]));

    assert_eq!(r, ready(vec![], vec![send(acc(3), prepare(ballot, 8))]));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Phase 1 paging: an acceptor counts towards the quorum only once it reported everything (its last
/// page is `done`), and what its earlier pages reported is adopted too.
#[test]
fn paged_acceptor_counts_only_when_done() {
    let mut p = restarted(1, ProposerState { round: 2, log: vec![] });
    campaign(&mut p);
    let ballot = p.ballot();
    let old = b(1, 2);

    step(&mut p, acc(1), page(ballot, 0, 2, false, &[(1, old, cmd(1, 1, "a"))]));
    assert!(step(&mut p, acc(2), promise(ballot, 0, &[])).is_empty());
    assert!(step(&mut p, acc(3), promise(ballot, 0, &[])).is_empty());
    assert_eq!(p.role(), Leadership::Candidate, "two complete promises and a partial one are no majority");
    // A duplicate of the first page, or a page we did not ask for, changes nothing.
    assert!(step(&mut p, acc(1), page(ballot, 0, 2, false, &[(1, old, cmd(1, 1, "a"))])).is_empty());
    assert!(step(&mut p, acc(1), promise(ballot, 5, &[])).is_empty());
    assert_eq!(p.role(), Leadership::Candidate);

    let r = step(&mut p, acc(1), page(ballot, 2, 4, true, &[(3, old, cmd(1, 2, "b"))]));

    let want = accept(ballot, &[(0, Value::Noop), (1, cmd(1, 1, "a")), (2, Value::Noop), (3, cmd(1, 2, "b"))]);
    assert_eq!(r, early_only(to_acceptors_and(&want, 2)));
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
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), Message::Nack(Nack { ballot, promised: b(5, 2) }));

    let r = elect_with(&mut p, &[(1, &[]), (2, &[]), (3, &[])]);

    assert_eq!(r, early_only(to_acceptors_and(&accept(b(6, 1), &[(0, cmd(7, 1, "x"))]), 2)));
}

/// Phase 1 recovery + exactly once: a retry of a request that phase 1 found accepted (and re-proposed)
/// is not proposed a second time, and is answered with the slot it was re-proposed at.
#[test]
fn retry_of_adopted_request_is_answered_with_its_adopted_slot() {
    let mut p = restarted(1, ProposerState { round: 4, log: vec![] });
    let old = b(2, 2);
    elect_with(&mut p, &[(1, &[(1, old, cmd(7, 3, "x"))]), (2, &[]), (3, &[])]);
    let ballot = p.ballot();

    let r = step(&mut p, client(7), propose(3, "x"));

    assert!(r.is_empty(), "{r:?}");
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[0]));
    }
    let mut last = Ready::default();
    for a in 1..=3 {
        last = step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    let reply = Message::ClientReply(ClientReply { seq: 3, slot: Slot(1) });
    assert_eq!(last, ready_early(vec![send(client(7), reply)], vec![learn(1, cmd(7, 3, "x"))], vec![]));
}

/// Phase 1 recovery + exactly once: a request queued during phase 1 that phase 1 then finds accepted
/// elsewhere is re-proposed once, at its adopted slot, not again at a fresh one.
#[test]
fn value_queued_during_phase1_and_adopted_is_proposed_once() {
    let mut p = restarted(1, ProposerState { round: 4, log: vec![] });
    campaign(&mut p);
    let ballot = p.ballot();
    assert!(step(&mut p, client(7), propose(3, "x")).is_empty());
    step(&mut p, acc(1), promise(ballot, 0, &[(0, b(2, 2), cmd(7, 3, "x"))]));
    step(&mut p, acc(2), promise(ballot, 0, &[]));

    let r = step(&mut p, acc(3), promise(ballot, 0, &[]));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(7, 3, "x"))]), 2)));
}

/// Flow control covers recovery too: a single promise reporting one value far above the decided prefix
/// (one forged accept stored by one acceptor suffices) must not make the new leader put every slot below
/// it in flight at once; here a million no-ops, in general an unbounded allocation.
#[test]
fn recovery_of_a_far_slot_respects_the_window() {
    let mut c = cfg(1);
    c.window = 64;
    let mut p = Proposer::new(c, ProposerState { round: 3, log: vec![] });

    let r = elect_with(&mut p, &[(1, &[(1_000_000, b(2, 2), cmd(6, 1, "far"))]), (2, &[]), (3, &[])]);

    assert!(r.messages.is_empty(), "accepts wait for no write");
    let slots: usize = r
        .early
        .iter()
        .filter(|m| m.to == acc(1))
        .map(|m| match &m.msg {
            Message::Accept(a) => a.entries.len(),
            _ => 0,
        })
        .sum();
    assert!(slots <= 64, "{slots} slots put in flight at once");
}
