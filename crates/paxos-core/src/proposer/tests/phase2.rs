//! Phase 2: the window, votes, early accepts, commits, stamps, retransmission, packing.

use super::*;

/// Phase 2a: a client value at the leader gets the next slot and leaves in one Accept to every acceptor,
/// with a copy to the peer proposer so that it can learn the value; the accept carries the leader's
/// decided prefix as its commit point.
#[test]
fn client_value_at_leader_is_sent_to_acceptors_and_peer() {
    let (mut p, ballot) = leader_in_epoch_1(1);

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(7, 1, "x"))]), 2)));
}

/// The log's clock: a proposer stamps a command with its wall clock (in milliseconds) when the
/// client's request reaches it, and the stamp travels with the command, so that every learner
/// expires client sessions alike.
#[test]
fn leader_stamps_commands_when_they_arrive() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    p.set_clock(1_800_000_000_123);

    let r = step(&mut p, client(7), propose(1, "x"));

    let stamped = Value::Command(Command { at: 1_800_000_000_123, ..Command::new(ClientId(7), 1, "x") });
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, stamped)]), 2)));
}

/// Learning: a slot is decided once a majority accepted it under one ballot; the decision is persisted
/// (Learn), and the reply that tells the client its slot leaves early: the value is durable at a majority
/// of acceptors already, so the client does not wait for the leader's own fsync.
#[test]
fn majority_of_accepted_decides_persists_then_replies() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    step(&mut p, client(7), propose(1, "x"));
    assert!(step(&mut p, acc(1), accepted(ballot, &[1])).is_empty());
    assert!(step(&mut p, acc(1), accepted(ballot, &[1])).is_empty(), "one acceptor counts once");
    assert!(step(&mut p, acc(5), accepted(ballot, &[1])).is_empty());

    let r = step(&mut p, acc(3), accepted(ballot, &[1]));

    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![learn(1, cmd(7, 1, "x"))], vec![]));
    assert_eq!(p.learner().decided(), Slot(2));
}

/// Votes count per ballot: a majority split across two ballots decides nothing.
#[test]
fn votes_under_different_ballots_do_not_add_up() {
    let (mut p, ballot) = restarted_leader(1, 3, &[]);
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), accepted(ballot, &[1]));
    step(&mut p, acc(2), accepted(ballot, &[1]));

    let r = step(&mut p, acc(3), accepted(b1(3, 2), &[1]));

    assert!(r.is_empty());
    assert_eq!(p.learner().decided(), Slot(1));
}

/// Flow control: at most `window` slots are in flight; the next value is proposed once one is applied,
/// with the new commit point.
#[test]
fn window_bounds_slots_in_flight() {
    let mut c = cfg(1);
    c.window = 2;
    let (mut p, ballot) = leader_in_epoch_1_with(c);
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        p.handle(client(i as u64 + 1), propose(1, v)).unwrap();
    }
    let r = p.take_ready();
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(1, 1, "a")), (2, cmd(2, 1, "b"))]), 2)));
    step(&mut p, acc(1), accepted(ballot, &[1]));
    step(&mut p, acc(2), accepted(ballot, &[1]));

    let r = step(&mut p, acc(3), accepted(ballot, &[1]));

    let reply = send(client(1), Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) }));
    let mut early = vec![reply];
    early.extend(to_acceptors_and(&accept(ballot, 2, &[(3, cmd(3, 1, "c"))]), 2));
    assert_eq!(r, ready_early(early, vec![learn(1, cmd(1, 1, "a"))], vec![]));
}

/// Accepts rest on no write but the round, durable before the prepares left (ready.rs): a leader that in one
/// Ready decides a slot and proposes a new client value sends the new Accept early, after the reply for the
/// decided value, as the core pushes them, while the Learn is still to be written; nothing waits for it.
/// (So a runtime may fsync the Learn in the background while the leader keeps proposing.)
#[test]
fn new_accept_leaves_early_beside_a_learn_not_yet_durable() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    step(&mut p, client(7), propose(1, "x"));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1])).is_empty());
    }
    p.handle(acc(3), accepted(ballot, &[1])).expect("an acceptor's vote");
    p.handle(client(8), propose(1, "y")).expect("a client's value");

    let r = p.take_ready();

    let mut early = vec![send(client(7), Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) }))];
    early.extend(to_acceptors_and(&accept(ballot, 2, &[(2, cmd(8, 1, "y"))]), 2));
    assert_eq!(r, ready_early(early, vec![learn(1, cmd(7, 1, "x"))], vec![]));
}

/// Phase 2a retransmission: after `retransmit_ticks` an undecided accept is sent again, and only to the
/// acceptors that have not voted for it under our ballot.
#[test]
fn retransmits_accept_only_to_acceptors_that_have_not_voted() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), accepted(ballot, &[1]));
    step(&mut p, acc(4), accepted(ballot, &[1]));
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());

    let r = tick(&mut p); // tick 64

    let again = accept(ballot, 1, &[(1, cmd(7, 1, "x"))]);
    assert_eq!(r, early_only([2, 3, 5].map(|a| send(acc(a), again.clone())).to_vec()));
}

/// Accepts rest on no write but the round: a retransmitted Accept leaves early too, beside the reply for a
/// slot decided in the same Ready and ahead of its Learn, while the heartbeat and probes of that tick wait
/// for the write like any other message.
#[test]
fn retransmitted_accept_leaves_early_while_a_learn_is_written() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    for _ in 62..=67 {
        assert!(tick(&mut p).is_empty());
    }
    p.handle(client(7), propose(1, "x")).expect("a client's value");
    p.handle(client(8), propose(1, "y")).expect("a client's value");
    let r = p.take_ready(); // tick 67: slots 1 and 2, to be retransmitted at tick 70
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(7, 1, "x")), (2, cmd(8, 1, "y"))]), 2)));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1, 2])).is_empty());
    }
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());
    p.handle(acc(3), accepted(ballot, &[1])).expect("an acceptor's vote");

    let r = tick(&mut p); // tick 70

    let mut early = vec![send(client(7), Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) }))];
    let again = accept(ballot, 2, &[(2, cmd(8, 1, "y"))]);
    early.extend([3, 4, 5].map(|a| send(acc(a), again.clone())));
    assert_eq!(r, ready_early(early, vec![learn(1, cmd(7, 1, "x"))], leader_heartbeat(ballot, 2, 2, 7)));
}

/// Multi-Paxos batching: values queued together share datagrams; 1000 values of 100 bytes leave in a few
/// Accepts per receiver, each within the datagram budget, together carrying slots 1..=1000 in order.
#[test]
fn many_values_are_packed_into_few_datagrams() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    for c in 1..=1000 {
        p.handle(client(c), propose(1, &format!("{c:0100}"))).unwrap();
    }

    let r = p.take_ready();

    assert!(r.persist.is_empty());
    assert!(r.messages.is_empty(), "accepts wait for no write");
    for to in ACCEPTORS.map(acc).into_iter().chain([prop(2)]) {
        let mut slots = Vec::new();
        let mut datagrams = 0;
        for m in r.early.iter().filter(|m| m.to == to) {
            let Message::Accept(a) = &m.msg else { panic!("{m:?}") };
            assert_eq!(a.ballot, ballot);
            assert!(datagram_len(&m.msg) <= MAX_BATCH_BYTES, "an accept exceeds the batch budget");
            slots.extend(a.entries.iter().map(|e| e.slot.0));
            datagrams += 1;
        }
        assert_eq!(slots, (1..=1000).collect::<Vec<_>>(), "to {to}");
        assert!((2..=5).contains(&datagrams), "{datagrams} datagrams to {to}");
    }
    assert_eq!(r.early.len() % 6, 0);
}

/// Packing at the widest numbers: many tiny values with maximal client ids, sequence numbers and stamps
/// still leave in accepts that each fit one datagram.
#[test]
fn packed_accepts_of_widest_values_fit_a_datagram() {
    let (mut p, _) = leader_in_epoch_1(1);
    p.set_clock(u64::MAX);
    for c in 0..3000 {
        p.handle(client(u64::MAX - c), propose(u64::MAX, "")).unwrap();
    }

    let r = p.take_ready();

    assert!(r.messages.is_empty(), "accepts wait for no write");
    assert!(r.early.len() > 6, "several datagrams");
    for m in &r.early {
        let Message::Accept(a) = &m.msg else { panic!("{m:?}") };
        assert!(a.entries.iter().all(|e| matches!(&e.value, Value::Command(c) if c.at == u64::MAX)));
        assert!(datagram_len(&m.msg) <= MAX_BODY_BYTES);
    }
}

/// One value per slot: a leader never proposes at a slot it already knows to be decided (learned from a
/// peer while it led), and gives the next client value the first slot above every decided one.
#[test]
fn leader_skips_slots_known_decided() {
    let (mut p, ballot) = leader_in_epoch_1(2);
    let decided = vec![Value::Noop, cmd(8, 1, "a"), cmd(8, 2, "b")];
    let r = step(
        &mut p,
        prop(1),
        Message::CatchUpReply(CatchUpReply {
            from: Slot(1),
            entries: decided,
            decided: Slot(4),
            epoch: None,
            nonce: 0,
        }),
    );
    assert_eq!(r.persist.len(), 3);

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 4, &[(4, cmd(7, 1, "x"))]), 1)));
}

/// ...but never past a slot not known decided: a decided slot learned far ahead (from a peer whose
/// log is ahead, or from a member forging one) leaves a hole below it, and the leader fills the hole
/// with its next client values (skipping what is decided), else its log could never be applied past
/// it. (A leader that jumped to the far slot stalled the cluster until the next leader change: the
/// simulator's seed 4031779.)
#[test]
fn leader_fills_holes_below_a_decided_slot_learned_far_ahead() {
    let (mut p, ballot) = leader_in_epoch_1(2);
    let far = |from: u64, entries: Vec<Value>| {
        Message::CatchUpReply(CatchUpReply { from: Slot(from), entries, decided: Slot(1_001), epoch: None, nonce: 0 })
    };
    step(&mut p, prop(1), far(1_000, vec![Value::Noop]));
    step(&mut p, prop(1), far(2, vec![cmd(8, 1, "a")]));
    assert_eq!((p.learner().decided(), p.learner().known()), (Slot(1), Slot(1_001)));

    let r = step(&mut p, client(7), propose(1, "x"));
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(7, 1, "x"))]), 1)), "in the hole");
    let r = step(&mut p, client(7), propose(2, "y"));
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(3, cmd(7, 2, "y"))]), 1)), "past slot 2");
}

/// An acceptor not heard within an election timeout (dead, or cut off) gets no new accepts: only the
/// retransmissions of slots left undecided and the probe of every heartbeat. Once it answers again,
/// new accepts go to it again.
#[test]
fn acceptors_not_heard_lately_get_only_retransmissions_until_they_answer() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61; every acceptor answered at tick 60
    let timeout = p.cfg.election_timeout_ticks;
    // Acceptors 1 to 3 answer every probe round; 4 and 5 fall silent.
    while p.now.0 <= 60 + timeout {
        let r = tick(&mut p);
        if let Some(round) = r.messages.iter().find_map(|m| match &m.msg {
            Message::Probe(probe) => Some(probe.nonce),
            _ => None,
        }) {
            for a in 1..=3 {
                step(&mut p, acc(a), report(a, round, ballot, 1));
            }
        }
    }
    assert_eq!(p.role(), Leadership::Leader);

    let r = step(&mut p, client(7), propose(1, "x"));

    let first = accept(ballot, 1, &[(1, cmd(7, 1, "x"))]);
    assert_eq!(r, early_only(to_heard_and(&first, &[1, 2, 3], 2)), "not to the silent acceptors");

    // Only 1 and 2 vote: the slot stays undecided and is sent again to every acceptor that has not voted.
    step(&mut p, acc(1), accepted(ballot, &[1]));
    step(&mut p, acc(2), accepted(ballot, &[1]));
    let again = (0..p.cfg.retransmit_ticks)
        .map(|_| tick(&mut p))
        .find(|r| !r.early.is_empty())
        .expect("the undecided slot is retransmitted");
    assert_eq!(again.early, [3, 4, 5].map(|a| send(acc(a), first.clone())).to_vec());

    // Acceptor 4 votes (any answer counts): the next new accept goes to it too.
    step(&mut p, acc(4), accepted(ballot, &[1]));
    let r = step(&mut p, client(8), propose(1, "y"));
    let second = accept(ballot, 2, &[(2, cmd(8, 1, "y"))]);
    assert_eq!(r, early_only(to_heard_and(&second, &[1, 2, 3, 4], 2)));
}

/// While fewer than a quorum of acceptors were heard within an election timeout (a leader elected by
/// promises that came in over a long partition), new accepts go to every acceptor: leaving any out
/// could only hold the leader back.
#[test]
fn with_fewer_than_a_quorum_heard_lately_accepts_go_to_every_acceptor() {
    let (mut p, ballot) = candidate_with_old_promises();
    step(&mut p, acc(3), promise(ballot, 1, &[]));
    assert_eq!(p.role(), Leadership::Leader, "elected with only acceptor 3 heard lately");

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(7, 1, "x"))]), 2)));
}
