//! Leadership: the start-up probe, election steps, heartbeats, nacks and fencing by higher ballots.

use super::*;

/// Phase 1a: a proposer that hears no better peer, its start-up probe answered by a majority, waits one
/// election timeout, then persists a fresh round and sends Prepare to every acceptor in the same Ready, so
/// the round is durable before it is used.
#[test]
fn lone_proposer_waits_election_timeout_then_campaigns() {
    let mut p = proposer(1);
    probed(&mut p); // tick 1
    for t in 2..50u64 {
        let r = tick(&mut p);
        let want = if t % 10 == 0 { vec![send(prop(2), heartbeat(b(0, 1), false, 0))] } else { vec![] };
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Follower);
    }

    let r = tick(&mut p);

    let mut want = vec![send(prop(2), heartbeat(b(0, 1), false, 0))];
    want.extend(to_acceptors(&prepare(b(1, 1), 0)));
    assert_eq!(r, ready(vec![ProposerOp::Round(1)], want));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Ballots are never reused: a proposer restarted with round 7 on disk campaigns with round 8,
/// and prepares from its first undecided slot.
#[test]
fn restarted_proposer_campaigns_above_its_persisted_round() {
    let mut p = restarted(1, ProposerState { round: 7, log: vec![Value::Noop, cmd(1, 1, "a")] });

    let r = campaign(&mut p);

    assert_eq!(r.persist, vec![ProposerOp::Round(8)]);
    let prepares: Vec<_> = r.messages.into_iter().filter(|m| matches!(m.msg, Message::Prepare(_))).collect();
    assert_eq!(prepares, to_acceptors(&prepare(b(8, 1), 2)));
    assert_eq!(p.ballot(), b(8, 1));
}

/// Election (the seed's rule): the highest live id leads, so proposer 1 hearing proposer 2 never
/// campaigns (though its probe is done and its election timeout long past), and sends clients to proposer 2.
#[test]
fn lower_id_hearing_higher_peer_never_campaigns_and_redirects() {
    let mut p = proposer(1);
    probed(&mut p); // tick 1
    for t in 2..=300u64 {
        if t % 10 == 0 {
            assert!(step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)).is_empty());
        }
        let r = tick(&mut p);
        assert!(r.persist.is_empty(), "tick {t}: no round is reserved");
        assert!(r.messages.iter().all(|m| matches!(m.msg, Message::Heartbeat(_))), "tick {t}: {r:?}");
        assert_eq!(p.role(), Leadership::Follower);
    }

    let r = step(&mut p, client(7), propose(1, "x"));

    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(7), redirect)]));
}

/// Election liveness: once the higher peer has been silent for a whole election timeout, the lower one campaigns.
#[test]
fn lower_id_campaigns_once_higher_peer_falls_silent() {
    let mut p = proposer(1);
    probed(&mut p); // tick 1
    for _ in 2..=40 {
        tick(&mut p);
    }
    step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)); // heard at tick 40: alive until tick 89
    for t in 41..90 {
        tick(&mut p);
        assert_eq!(p.role(), Leadership::Follower, "tick {t}");
    }

    let r = tick(&mut p);

    assert_eq!(p.role(), Leadership::Candidate);
    assert_eq!(r.persist, vec![ProposerOp::Round(1)]);
}

/// Unique ballots without trusting our own disk: the first output of a new proposer, from nothing or
/// recovered, is the probe to every acceptor, and nothing else.
#[test]
fn new_proposer_probes_every_acceptor_first() {
    for mut p in [proposer(1), restarted(1, ProposerState { round: 7, log: vec![Value::Noop] })] {
        let r = tick(&mut p);

        assert_eq!(r, ready(vec![], to_acceptors(&probe())));
        assert_eq!(p.role(), Leadership::Follower);
    }
}

/// Probe retransmission (datagrams get lost): every `retransmit_ticks` the probe goes again to the
/// acceptors that have not answered it, and not to those that did, whatever they promised.
#[test]
fn probe_is_retransmitted_only_to_acceptors_that_have_not_answered() {
    let mut p = proposer(1);
    tick(&mut p); // tick 1: the probe
    assert!(step(&mut p, acc(2), probe_promise()).is_empty());
    assert!(step(&mut p, acc(4), probe_nack(b(3, 2))).is_empty());
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());

    let r = tick(&mut p); // tick 4

    assert_eq!(r, ready(vec![], [1, 3, 5].map(|a| send(acc(a), probe())).to_vec()));
}

/// Unique ballots: a proposer does not campaign, however long past its election timeout, until a majority
/// of acceptors answered its probe (an acceptor answering twice counts once); at the tick after the
/// majority's last answer it campaigns.
#[test]
fn no_campaign_before_a_majority_answered_the_probe() {
    let mut p = proposer(1);
    tick(&mut p); // tick 1: the probe
    assert!(step(&mut p, acc(1), probe_promise()).is_empty());
    assert!(step(&mut p, acc(1), probe_promise()).is_empty());
    assert!(step(&mut p, acc(5), probe_promise()).is_empty());
    for t in 2..=100u64 {
        let r = tick(&mut p);
        let mut want = Vec::new();
        if t % 10 == 0 {
            want.push(send(prop(2), heartbeat(b(0, 1), false, 0)));
        }
        if t % 3 == 1 {
            want.extend([2, 3, 4].map(|a| send(acc(a), probe())));
        }
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Follower, "tick {t}");
    }
    assert!(step(&mut p, acc(3), probe_promise()).is_empty());

    let r = tick(&mut p); // tick 101

    assert_eq!(r, ready(vec![ProposerOp::Round(1)], to_acceptors(&prepare(b(1, 1), 0))));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Unique ballots: a nack of the probe reports the acceptor's promise, and the first campaign uses a round
/// above the highest one reported, even when the proposer's own store remembers a lower round.
#[test]
fn probe_nack_puts_the_first_round_above_the_promised_one() {
    let mut p = restarted(2, ProposerState { round: 3, log: vec![] });
    tick(&mut p); // tick 1: the probe
    assert!(step(&mut p, acc(1), probe_promise()).is_empty());
    assert!(step(&mut p, acc(4), probe_nack(b(9, 2))).is_empty());
    assert!(step(&mut p, acc(5), probe_nack(b(6, 1))).is_empty());

    let r = campaign(&mut p);

    assert_eq!(r.persist, vec![ProposerOp::Round(10)]);
    assert_eq!(p.ballot(), b(10, 2));
}

/// Preemption: a nack of our ballot naming a higher one makes a leader a follower at once; its next
/// campaign (after one heartbeat interval of back-off) uses a round above the nack's.
#[test]
fn nack_with_higher_ballot_makes_leader_step_down() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);

    let r = step(&mut p, acc(4), Message::Nack(Nack { ballot, promised: b(5, 2) }));

    assert_eq!(r, ready(vec![], vec![]));
    assert_eq!(p.role(), Leadership::Follower);
    let r = campaign(&mut p);
    assert_eq!(r.persist, vec![ProposerOp::Round(6)]);
    assert_eq!(p.ballot(), b(6, 1));
}

/// A nack of a ballot we no longer use (a late answer to an old prepare) does not depose the current one.
#[test]
fn nack_of_an_old_ballot_is_ignored() {
    let mut p = restarted(1, ProposerState { round: 3, log: vec![] });
    let ballot = elect(&mut p);

    let r = step(&mut p, acc(4), Message::Nack(Nack { ballot: b(3, 1), promised: b(3, 2) }));

    assert!(r.is_empty());
    assert_eq!((p.role(), p.ballot()), (Leadership::Leader, ballot));
}

/// Leadership by ballot: a leader that hears a leader heartbeat with a higher ballot steps down
/// (here proposer 2, still the rightful leader, so it keeps its clients), and campaigns again above that ballot.
#[test]
fn leader_heartbeat_with_higher_ballot_makes_leader_step_down() {
    let mut p = proposer(2);
    elect(&mut p);

    let r = step(&mut p, prop(1), heartbeat(b(9, 1), true, 0));

    assert!(r.is_empty());
    assert_eq!(p.role(), Leadership::Follower);
    assert_eq!(p.leader(), Some(NodeId(1)));
    let r = campaign(&mut p);
    assert_eq!(r.persist, vec![ProposerOp::Round(10)]);
}

/// Leadership by ballot: a candidate that hears the rightful leader's heartbeat with a higher ballot
/// gives up phase 1 and sends its waiting clients to that leader.
#[test]
fn candidate_steps_down_on_leader_heartbeat_and_redirects_clients() {
    let mut p = proposer(1);
    campaign(&mut p);
    assert!(step(&mut p, client(7), propose(1, "x")).is_empty(), "a candidate queues client values");

    let r = step(&mut p, prop(2), heartbeat(b(3, 2), true, 0));

    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(7), redirect)]));
    assert_eq!(p.role(), Leadership::Follower);
}

/// A heartbeat claiming leadership with a lower ballot does not depose the leader.
#[test]
fn leader_heartbeat_with_lower_ballot_is_no_threat() {
    let mut p = restarted(2, ProposerState { round: 5, log: vec![] });
    elect(&mut p);

    let r = step(&mut p, prop(1), heartbeat(b(4, 1), true, 0));

    assert!(r.is_empty());
    assert_eq!(p.role(), Leadership::Leader);
}

/// Leadership by ballot, not by id: a leader that hears a higher-id proposer alive (heartbeats with
/// `leader: false` and a lower ballot) keeps leading and keeps proposing; only a higher ballot fences it.
#[test]
fn leader_keeps_leading_while_a_higher_id_peer_is_merely_alive() {
    let mut p = proposer(1);
    let ballot = elect(&mut p); // at tick 50
    for t in 51..=150u64 {
        if t % 10 == 5 {
            assert!(step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)).is_empty());
        }
        let r = tick(&mut p);
        let want = if t % 10 == 0 { vec![send(prop(2), heartbeat(ballot, true, 0))] } else { vec![] };
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Leader, "tick {t}");
    }
    assert_eq!(p.leader(), Some(NodeId(1)));

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(7, 1, "x"))]), 2)));
}

/// Leadership by ballot: the higher-id proposer that a leader let live takes over with a higher ballot; its
/// leader heartbeat fences the leader, which only then steps down and hands its waiting clients to it.
#[test]
fn leader_steps_down_when_the_higher_id_peers_ballot_fences_it() {
    let mut p = proposer(1);
    elect(&mut p);
    assert!(step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)).is_empty());
    assert!(tick(&mut p).is_empty());
    assert_eq!(p.role(), Leadership::Leader);
    step(&mut p, client(7), propose(1, "x"));

    let r = step(&mut p, prop(2), heartbeat(b(2, 2), true, 0));

    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(7), redirect)]));
    assert_eq!((p.role(), p.leader()), (Leadership::Follower, Some(NodeId(2))));
}

/// Election: unlike a leader, a candidate (still in phase 1) that hears a higher-id proposer alive, even
/// one that does not lead, gives up phase 1 at the next tick and sends its waiting clients to that proposer.
#[test]
fn candidate_steps_down_when_a_higher_id_peer_is_alive() {
    let mut p = proposer(1);
    campaign(&mut p);
    assert!(step(&mut p, client(7), propose(1, "x")).is_empty());
    assert!(step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)).is_empty());

    let r = tick(&mut p);

    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(7), redirect)]));
    assert_eq!(p.role(), Leadership::Follower);
}

/// Redirects: a leader fenced by a higher ballot while a better proposer is back sends its waiting clients
/// to that proposer, and so does it with new requests, never to itself.
/// (Regression: before 3de8a2d it kept itself as leader hint and redirected clients to itself.)
#[test]
fn deposed_leader_redirects_to_the_rightful_leader_not_itself() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    assert!(step(&mut p, prop(2), heartbeat(b(0, 2), false, 0)).is_empty());
    assert!(tick(&mut p).is_empty());
    assert_eq!(p.role(), Leadership::Leader, "a better proposer that is merely alive does not depose a leader");

    // Proposer 2 campaigned: an acceptor tells us (the nack names no leader).
    let r = step(&mut p, acc(3), Message::Nack(Nack { ballot, promised: b(2, 2) }));

    assert_eq!(p.role(), Leadership::Follower);
    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(7), redirect)]));
    let r = step(&mut p, client(8), propose(1, "y"));
    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(r, ready(vec![], vec![send(client(8), redirect)]));
    assert_eq!(p.leader(), Some(NodeId(2)));
}

/// Redirects: a follower that queued a client value while it expected to lead (before its first election
/// timeout) hands the client to the better proposer as soon as that one shows up, as a deposed leader does.
#[test]
fn follower_hands_queued_clients_to_a_better_proposer() {
    let mut p = proposer(1);
    for _ in 0..10 {
        tick(&mut p);
    }
    assert!(step(&mut p, client(7), propose(1, "x")).is_empty(), "queued: proposer 1 expects to lead");

    // The hand-off may come with the heartbeat or at the next tick.
    let mut sent = step(&mut p, prop(2), heartbeat(b(1, 2), true, 0)).messages;
    sent.extend(tick(&mut p).messages);

    let redirect = Message::ClientRedirect(ClientRedirect { seq: 1, leader: Some(NodeId(2)) });
    assert_eq!(sent, vec![send(client(7), redirect)]);
}

/// Preemption: a leader that sees acceptors accept a higher ballot knows another proposer got through
/// phase 1, and steps down.
#[test]
fn accepted_with_higher_ballot_makes_leader_step_down() {
    let mut p = proposer(2);
    elect(&mut p);

    let r = step(&mut p, acc(2), accepted(b(7, 1), &[0]));

    assert!(r.is_empty());
    assert_eq!(p.role(), Leadership::Follower);
    assert_eq!(campaign(&mut p).persist, vec![ProposerOp::Round(8)]);
}

/// Garbage collection: on a heartbeat tick a leader that knows every proposer's decided point tells the
/// acceptors to trim below the lowest one; before it has heard every proposer it trims nothing.
#[test]
fn leader_trims_below_every_proposers_decided_point() {
    let mut p = restarted(2, ProposerState { round: 0, log: vec![Value::Noop; 6] });
    let ballot = elect(&mut p); // at tick 50
    for _ in 51..60 {
        assert!(tick(&mut p).is_empty());
    }
    let r = tick(&mut p);
    assert_eq!(r, ready(vec![], vec![send(prop(1), heartbeat(ballot, true, 6))]), "proposer 1 not heard yet");
    step(&mut p, prop(1), heartbeat(b(0, 1), false, 4));
    for _ in 61..70 {
        assert!(tick(&mut p).is_empty());
    }

    let r = tick(&mut p);

    let mut want = vec![send(prop(1), heartbeat(ballot, true, 6))];
    want.extend(to_acceptors(&Message::Trim(paxos_proto::Trim { below: Slot(4) })));
    assert_eq!(r, ready(vec![], want));
}

/// Membership and roles: messages from unknown nodes, from ourselves, of the wrong kind for their
/// sender, or carrying another proposer's ballot are ignored and produce nothing.
#[test]
fn foreign_or_misdirected_messages_are_ignored() {
    let mut p = proposer(1);
    let cases = [
        (acc(9), accepted(b(1, 2), &[0]), "proposer: unknown acceptor"),
        (prop(3), heartbeat(b(1, 3), true, 0), "proposer: unknown proposer"),
        (prop(1), heartbeat(b(1, 1), true, 0), "proposer: unknown proposer"),
        (acc(1), prepare(b(1, 1), 0), "proposer: not a message an acceptor sends"),
        (prop(2), propose(1, "x"), "proposer: not a message a proposer sends"),
        (client(7), heartbeat(b(1, 2), true, 0), "proposer: not a message a client sends"),
        (prop(2), heartbeat(b(5, 1), true, 0), "proposer: a ballot of another proposer"),
        (prop(2), accept(b(5, 1), &[(0, Value::Noop)]), "proposer: a ballot of another proposer"),
    ];
    for (from, msg, why) in cases {
        assert_eq!(p.handle(from, msg), Err(Ignored(why)));
        assert!(p.take_ready().is_empty());
    }
}

/// Election safety of ignored input: a message that is ignored must not count as a sign of life, or junk
/// claiming to come from proposer 2 would keep proposer 1 from ever leading.
#[test]
fn ignored_messages_do_not_keep_a_peer_alive() {
    let mut p = proposer(1);
    probed(&mut p); // tick 1
    for t in 2..=60u64 {
        if t % 10 == 0 {
            assert!(p.handle(prop(2), propose(1, "junk")).is_err());
        }
        p.tick();
        p.take_ready();
    }
    assert_eq!(p.role(), Leadership::Candidate, "proposer 2 never sent anything valid");
}

/// Bounded damage: a message naming a round above the ceiling of the clock
/// (even a member's, with the key) is ignored and moves no round; below it,
/// rounds are rounds.
#[test]
fn rounds_above_the_ceiling_of_the_clock_are_ignored() {
    let mut p = proposer(1);
    let now = crate::ROUND_CEILING_EPOCH_SECS + 1_000;
    p.set_clock(now);
    let beyond = crate::round_ceiling(now + crate::CLOCK_SKEW_SECS) + 1;
    let before = p.ballot();
    assert!(p.handle(prop(2), heartbeat(b(beyond, 2), true, 0)).is_err());
    assert!(p.handle(acc(1), Message::Nack(Nack { ballot: before, promised: b(beyond, 1) })).is_err());
    assert!(p.handle(acc(1), probe_nack(b(paxos_proto::MAX_COUNTER, 1))).is_err());
    let ballot = elect(&mut p);
    assert!(ballot.round < 10, "the first campaign is an ordinary one: {ballot}");
}

/// Bounded damage: a peer's claim of progress is believed only up to what
/// anyone could have decided, and its next word replaces it, so that one
/// hostile heartbeat cannot keep the rightful leader catching up forever.
#[test]
fn a_hostile_progress_claim_does_not_keep_the_rightful_leader_from_campaigning() {
    let mut p = proposer(2);
    probed(&mut p);
    step(&mut p, prop(1), heartbeat(b(0, 1), false, paxos_proto::MAX_COUNTER));
    step(&mut p, prop(1), heartbeat(b(0, 1), false, 0));
    while p.role() == Leadership::Follower {
        assert!(p.now < crate::Tick(100), "the rightful leader campaigns");
        tick(&mut p);
    }
}
