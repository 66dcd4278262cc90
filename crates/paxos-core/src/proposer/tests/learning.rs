//! Learning: applying decided slots in order, catch-up from proposers and acceptors, serving catch-up,
//! and what a leader does when a slot it proposed is decided otherwise.

use super::*;

fn ask(to: Node, from: u64) -> Outgoing {
    send(to, Message::CatchUp(CatchUp { from: Slot(from), limit: 1024, nonce: 0 }))
}

/// Catch-up: a follower that hears a peer has decided further asks it for the entries from its own
/// first undecided slot, at its first tick, without waiting for its start-up probe to be answered.
#[test]
fn follower_behind_a_peer_asks_to_catch_up() {
    let mut p = restarted(1, state(0, &[Value::Noop, Value::Noop, Value::Noop]));
    assert!(step(&mut p, prop(2), heartbeat(b(1, 2), true, 10)).is_empty());

    let r = tick(&mut p);

    let mut want = to_acceptors(&probe(0, 3));
    want.push(ask(prop(2), 3));
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
        Message::CatchUpReply(CatchUpReply {
            from: Slot(0),
            entries: values.clone(),
            decided: Slot(4),
            epoch: None,
            nonce: 0,
        }),
    );

    let want: Vec<_> = values.into_iter().enumerate().map(|(i, v)| learn(i as u64, v)).collect();
    assert_eq!(r, ready(want, vec![]));
    assert_eq!(p.learner().decided(), Slot(4));
}

/// Exactly once across learners: a request decided twice (a retry that landed in two slots) is learned as
/// a duplicate the second time, so that every learner and every reader sees it as a no-op.
#[test]
fn duplicate_request_is_persisted_as_a_duplicate() {
    let mut p = proposer(1);
    let values = vec![cmd(7, 1, "a"), cmd(7, 1, "a")];

    let r = step(
        &mut p,
        prop(2),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: values, decided: Slot(2), epoch: None, nonce: 0 }),
    );

    let duplicate = ProposerOp::Learn { slot: Slot(1), value: cmd(7, 1, "a"), duplicate: true };
    assert_eq!(r, ready(vec![learn(0, cmd(7, 1, "a")), duplicate], vec![]));
}

/// Catch-up: a reply that leaves us behind the peer's decided point is followed at the next tick by a
/// request for the rest, without waiting for a retransmission interval.
#[test]
fn partial_catch_up_reply_asks_for_the_rest_at_once() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 6));
    tick(&mut p);
    let reply = CatchUpReply {
        from: Slot(0),
        entries: vec![Value::Noop, Value::Noop],
        decided: Slot(6),
        epoch: None,
        nonce: 0,
    };
    step(&mut p, prop(2), Message::CatchUpReply(reply));

    let r = tick(&mut p);

    assert_eq!(r, ready(vec![], vec![ask(prop(2), 2)]));
}

/// Catch up before leading: the rightful leader (no live proposer leads), while a live peer has decided
/// more than `window` slots beyond it, asks that peer for entries (and probes every acceptor each
/// heartbeat) and does not campaign, even past its election timeout; once it is within the window it
/// campaigns from its first undecided slot (and keeps fetching the rest).
#[test]
fn rightful_follower_far_behind_catches_up_before_campaigning() {
    let mut c = cfg(2);
    c.window = 4;
    let mut p = Proposer::new(c, ProposerState::default());
    probed(&mut p); // tick 1
                    // Proposer 1 led while we were away, has decided slots 0..10, and leads no more.
    let peer_leads = heartbeat(b(3, 1), false, 10);
    assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
    let noops = |from, n| {
        Message::CatchUpReply(CatchUpReply {
            from: Slot(from),
            entries: vec![Value::Noop; n],
            decided: Slot(10),
            epoch: None,
            nonce: 0,
        })
    };
    for t in 2..=80u64 {
        if t % 10 == 5 {
            assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
        }
        let r = tick(&mut p);
        let mut want = Vec::new();
        if t % 10 == 0 {
            // Behind, it probes every acceptor too: their answers say which of them hold the slots.
            want.push(send(prop(1), heartbeat(b(0, 2), false, 0)));
            want.extend(to_acceptors(&probe(t / 10, 0)));
        }
        if t % 3 == 2 {
            want.push(ask(prop(1), 0));
        }
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Follower, "tick {t}");
    }
    // Slots 0..5: still 5 behind, one more than the window.
    assert_eq!(step(&mut p, prop(1), noops(0, 5)).persist.len(), 5);
    assert_eq!(
        tick(&mut p),
        ready(vec![], vec![ask(prop(1), 5)]),
        "tick 81: no campaign yet, the rest asked for at once"
    );
    assert_eq!(step(&mut p, prop(1), noops(5, 1)).persist, vec![learn(5, Value::Noop)]);

    // Tick 82: 4 behind, within the window; it asks who leads (its probes went unanswered).
    let mut want = to_acceptors(&probe(8, 6));
    want.push(ask(prop(1), 6));
    assert_eq!(tick(&mut p), ready(vec![], want));

    let r = answer_prevote(&mut p, 8).expect("it campaigns");

    assert_eq!(r, ready(vec![ProposerOp::Round(4)], to_acceptors(&prepare(b(4, 2), 6))));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Catch-up: a proposer serves a peer's request from the decided values it still caches, at once.
#[test]
fn catch_up_request_is_served_from_the_cache() {
    let mut p = proposer(2);
    let log = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    step(
        &mut p,
        prop(1),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: log, decided: Slot(3), epoch: None, nonce: 0 }),
    );

    let r = step(&mut p, prop(1), Message::CatchUp(CatchUp { from: Slot(1), limit: 1024, nonce: 0 }));

    let reply = CatchUpReply {
        from: Slot(1),
        entries: vec![cmd(7, 1, "a"), cmd(8, 1, "b")],
        decided: Slot(3),
        epoch: None,
        nonce: 0,
    };
    assert_eq!(r, ready(vec![], vec![send(prop(1), Message::CatchUpReply(reply))]));
}

/// Catch-up: decided values the proposer no longer caches (here: recovered from its store after a
/// restart) are read from the store, and the page goes to whoever asked, a peer or an acceptor.
#[test]
fn catch_up_request_is_served_from_the_store_through_a_read() {
    let log = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut disk = store(0, &log);
    let mut p = restarted(2, disk.state.clone());

    for (id, asker) in [(0, prop(1)), (1, acc(4))] {
        let r = step(&mut p, asker, Message::CatchUp(CatchUp { from: Slot(1), limit: 5000, nonce: 0 }));

        let read = ReadRequest { id, from: Slot(1), limit: 1024, max_bytes: MAX_BATCH_BYTES };
        assert_eq!(r, reads_only(vec![read.clone()]));
        p.on_read(read.id, disk.read(read.from, read.limit, read.max_bytes).unwrap());
        let reply = CatchUpReply { from: Slot(1), entries: log[1..].to_vec(), decided: Slot(3), epoch: None, nonce: 0 };
        assert_eq!(p.take_ready(), ready(vec![], vec![send(asker, Message::CatchUpReply(reply))]));
    }
}

/// Durability through acceptors: a proposer that lost its data dir copies the decided log back from an
/// acceptor whose probe answer says it holds more decided slots than the proposer (a decided value
/// stays on a majority of acceptors' decided logs).
#[test]
fn proposer_catches_up_from_an_acceptor_ahead_of_it() {
    let mut p = proposer(1);
    tick(&mut p); // tick 1: the probe
    step(&mut p, acc(4), report(4, 0, b(1, 2), 2));

    let r = tick(&mut p);

    assert_eq!(r, ready(vec![], vec![ask(acc(4), 0)]));
    let reply = CatchUpReply {
        from: Slot(0),
        entries: vec![cmd(7, 1, "a"), Value::Noop],
        decided: Slot(2),
        epoch: None,
        nonce: 0,
    };
    let r = step(&mut p, acc(4), Message::CatchUpReply(reply));
    assert_eq!(r, ready(vec![learn(0, cmd(7, 1, "a")), learn(1, Value::Noop)], vec![]));
}

/// The first `count` catch-up requests of a follower that heard proposer 2 say it decided up to slot
/// 10 and acceptor 4 up to slot 2: the nodes asked, in order. With `answer`, each request is answered
/// at once with nothing that advances our decided prefix (no entries, the same prefix as before).
fn catch_up_targets(answer: bool, count: usize) -> Vec<Node> {
    let mut p = proposer(1);
    tick(&mut p); // tick 1: the probe
    step(&mut p, acc(4), report(4, 0, b(1, 2), 2));
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 10));
    let mut asked = Vec::new();
    for _ in 0..100 {
        let r = tick(&mut p);
        for to in r.messages.iter().filter(|o| matches!(o.msg, Message::CatchUp(_))).map(|o| o.to) {
            asked.push(to);
            if answer {
                let nothing = CatchUpReply { from: Slot(0), entries: vec![], decided: Slot(10), epoch: None, nonce: 0 };
                step(&mut p, to, Message::CatchUpReply(nothing));
            }
        }
        if asked.len() >= count {
            break;
        }
    }
    asked
}

/// Catch-up: a node asked [`CATCH_UP_SWITCH_AFTER`] times in a row from the same slot without an
/// answer (gone, or moved where this proposer cannot hear it: removed and added again elsewhere while
/// it was away) is passed for the next node ahead of us, here an acceptor; once every candidate was
/// passed, the first is asked again. Before, the proposer asked it alone for ever, and a cluster whose
/// other proposers had all moved stopped deciding once this one was left to lead.
#[test]
fn catch_up_unanswered_in_a_row_asks_the_next_node_ahead() {
    let (p2, a4) = (prop(2), acc(4));
    assert_eq!(catch_up_targets(false, 8), [p2, p2, p2, a4, a4, a4, p2, p2]);
}

/// Catch-up from peers alone: of two live peers equally far ahead, the one asked first (the highest
/// id) never answers (its log is damaged where we read), and after [`CATCH_UP_SWITCH_AFTER`]
/// requests the other is asked. Before, only the peer furthest ahead was a candidate (besides the node
/// that first said it is furthest ahead, here the silent one too), and a proposer with acceptors no
/// further than itself asked the silent one for ever (simulator `--damage-log 1`, seed 395000251).
#[test]
fn catch_up_passes_a_peer_that_does_not_answer_for_another_peer_ahead() {
    let mut p = Proposer::new(
        ProposerConfig::new(
            NodeId(1),
            vec![NodeId(1), NodeId(2), NodeId(3)],
            ACCEPTORS.iter().map(|a| NodeId(*a)).collect(),
        ),
        ProposerState::default(),
    );
    let mut asked = Vec::new();
    while asked.len() < 8 {
        step(&mut p, prop(3), heartbeat(b(1, 3), true, 10));
        step(&mut p, prop(2), heartbeat(b(1, 2), false, 10));
        let r = tick(&mut p);
        asked.extend(r.messages.iter().filter(|o| matches!(o.msg, Message::CatchUp(_))).map(|o| o.to));
    }
    let (p2, p3) = (prop(2), prop(3));
    assert_eq!(asked[..8], [p3, p3, p3, p2, p2, p2, p3, p3]);
}

/// A read for someone that fails (a damaged segment of our decided log) is answered with nothing: a
/// peer asks another node after its retries, a client's read times out.
#[test]
fn a_failed_read_is_answered_with_nothing() {
    let log = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let disk = store(0, &log);
    let mut p = restarted(2, disk.state.clone());

    let r = step(&mut p, prop(1), Message::CatchUp(CatchUp { from: Slot(1), limit: 5000, nonce: 0 }));

    let [read] = r.reads.as_slice() else { panic!("one read: {r:?}") };
    p.on_read_failed(read.id);
    assert!(p.take_ready().is_empty(), "no answer");
}

/// Catch-up from acceptors alone (no peer proposer is ahead), all equally far ahead, none answering:
/// each is asked [`CATCH_UP_SWITCH_AFTER`] times and passed for the next, round all of them. Before,
/// the proposer asked only the first, which it took for the furthest ahead for as long as it did not
/// hear from it again: on real daemons, an acceptor that answered the start-up probe and then stopped
/// (its disk damaged) kept two restarted proposers from ever catching up, and the cluster stopped
/// deciding with four acceptors up. Then, until this stop, a passed node was asked again after one
/// request elsewhere: two silent candidates first in line (here 5 and 4; in the simulator a proposer
/// and an acceptor each lost for good, seed 420004972 with `--lose-proposer --lose-acceptor`) kept it
/// from the third for ever.
#[test]
fn catch_up_from_acceptors_passes_one_that_does_not_answer() {
    let (a3, a4, a5) = (acc(3), acc(4), acc(5));
    assert_eq!(catch_up_from_three_acceptors(None, 11), [a5, a5, a5, a4, a4, a4, a3, a3, a3, a5, a5]);
}

/// The first `count` catch-up requests of a proposer that heard acceptors 3, 4 and 5 say they decided
/// up to slot 600, and no peer ahead: the nodes asked, in order. Only `answering` answers, at once,
/// with nothing that advances our decided prefix.
fn catch_up_from_three_acceptors(answering: Option<Node>, count: usize) -> Vec<Node> {
    let mut p = proposer(1);
    tick(&mut p); // tick 1: the probe
    for a in [3, 4, 5] {
        step(&mut p, acc(a), report(a, 0, b(1, 2), 600));
    }
    let mut asked = Vec::new();
    for _ in 0..200 {
        let r = tick(&mut p);
        for to in r.messages.iter().filter(|o| matches!(o.msg, Message::CatchUp(_))).map(|o| o.to) {
            asked.push(to);
            if Some(to) == answering {
                let nothing =
                    CatchUpReply { from: Slot(0), entries: vec![], decided: Slot(600), epoch: None, nonce: 0 };
                step(&mut p, to, Message::CatchUpReply(nothing));
            }
        }
        if asked.len() >= count {
            break;
        }
    }
    asked.truncate(count);
    asked
}

/// Catch-up from acceptors: once another acceptor answers in place of a silent one, it is asked again
/// while it answers (its answer makes it the node known to be ahead), not the silent first choice
/// again after every page, which would cost three unanswered requests per page (a review of the
/// change above asked whether it did).
#[test]
fn catch_up_stays_with_the_acceptor_that_answers() {
    assert_eq!(
        catch_up_from_three_acceptors(Some(acc(4)), 7),
        [acc(5), acc(5), acc(5), acc(4), acc(4), acc(4), acc(4)]
    );
}

/// Catch-up: a node that answers, even with nothing that advances our decided prefix, is not given up
/// for another; only requests left unanswered count towards [`CATCH_UP_SWITCH_AFTER`]. Before, three
/// requests sent made the proposer ask elsewhere, and a peer whose answers called for a restart of the
/// log (retention) was left before the restart came (simulator seed 341606343, `--retain-slots 7
/// --transfer-rate 0.02`).
#[test]
fn catch_up_answered_without_progress_keeps_asking_the_same_node() {
    assert_eq!(catch_up_targets(true, 6), [prop(2); 6]);
}

/// A follower learns a value from the leader's accept copy plus the acceptors' Accepted votes, a majority
/// of the epoch's acceptors.
#[test]
fn follower_learns_from_accept_copy_and_votes() {
    let mut p = restarted(1, pinned_state(0, &[]));
    step(&mut p, prop(2), heartbeat(b1(1, 2), true, 1));
    assert!(step(&mut p, prop(2), accept(b1(1, 2), 1, &[(1, cmd(7, 1, "x"))])).is_empty());
    step(&mut p, acc(1), accepted(b1(1, 2), &[1]));
    step(&mut p, acc(2), accepted(b1(1, 2), &[1]));

    let r = step(&mut p, acc(3), accepted(b1(1, 2), &[1]));

    assert_eq!(r, ready(vec![learn(1, cmd(7, 1, "x"))], vec![]), "the follower does not answer the client");
}

/// A proposer that the configuration in force removed, and that hears no leader (the members no
/// longer heartbeat to it), sends each client to each member in turn, one per answer to it. Before,
/// it answered that it knew no leader, and a client whose cluster file named only removed or lost
/// proposers never found the cluster (simulator seed 350001001 with `--lose-proposer`: proposer 1
/// lost, 3 added, 2 removed). Naming the same member every time, or each in turn by the clock or at
/// random, sent a client's retries back to a dead one too often (seeds 350001114, 350006351).
#[test]
fn a_removed_proposer_sends_clients_to_members() {
    let mut next = pinned();
    next.epoch = 2;
    next.proposers = vec![member(2, None), member(3, None), member(4, None)];
    let mut p = restarted(1, pinned_state(0, &[Value::Config(next)]));
    assert!(!p.is_member());

    let mut named = |c: u64| {
        let r = step(&mut p, client(c), propose(1, "x"));
        let [Outgoing { msg: Message::ClientRedirect(ClientRedirect { leader: Some(leader), .. }), .. }] =
            &r.messages[..]
        else {
            panic!("a redirect to a member: {r:?}");
        };
        leader.0
    };
    let (seven, eight): (Vec<u32>, Vec<u32>) = (0..4).map(|_| (named(7), named(8))).unzip();

    assert_eq!(seven, [4, 2, 3, 4], "client 7 is sent to each member in turn");
    assert_eq!(eight, [2, 3, 4, 2], "and so is client 8, whatever client 7 asks in between");
}

/// Epochs: a follower that learns a new configuration follows it; a slot of the new epoch is decided only
/// by a ballot of that epoch and a majority of its acceptors.
#[test]
fn follower_follows_a_decided_configuration() {
    let mut p = restarted(1, pinned_state(0, &[]));
    let mut next = pinned();
    next.epoch = 2;
    next.acceptors.retain(|m| m.id.0 <= 3);
    step(&mut p, prop(2), accept(b1(1, 2), 1, &[(1, Value::Config(next.clone()))]));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(b1(1, 2), &[1]));
    }
    assert_eq!((p.config(), p.learner().epoch().start), (next, Slot(2)));

    let x = cmd(7, 1, "x");
    step(&mut p, prop(2), accept(b1(1, 2), 2, &[(2, x.clone())]));
    step(&mut p, prop(2), accept(Ballot::in_epoch(2, 2, NodeId(2)), 2, &[(2, x.clone())]));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(b1(1, 2), &[2]));
    }
    assert_eq!(p.learner().decided(), Slot(2), "a ballot of epoch 1 decides nothing in epoch 2");
    step(&mut p, acc(4), accepted(Ballot::in_epoch(2, 2, NodeId(2)), &[2]));
    step(&mut p, acc(1), accepted(Ballot::in_epoch(2, 2, NodeId(2)), &[2]));
    assert_eq!(p.learner().decided(), Slot(2), "acceptor 4 is no member of epoch 2");

    let r = step(&mut p, acc(2), accepted(Ballot::in_epoch(2, 2, NodeId(2)), &[2]));

    assert_eq!(r, ready(vec![learn(2, x)], vec![]));
}

/// Safety of a stale leader: a slot it proposed that it learns decided with another value (chosen under a
/// higher ballot) shows its ballot is stale; acceptors would move what they accepted from it below its
/// commit into their decided logs, so it steps down at once rather than tell them so. Its client's value
/// is not lost: it proposes it again, at the next free slot, once it leads again.
#[test]
fn stale_leader_that_learns_another_value_at_its_slot_steps_down() {
    let (mut p, _) = leader_in_epoch_1(2);
    step(&mut p, client(7), propose(1, "x"));

    let y = cmd(8, 1, "y");
    let r = step(
        &mut p,
        prop(1),
        Message::CatchUpReply(CatchUpReply {
            from: Slot(1),
            entries: vec![y.clone()],
            decided: Slot(2),
            epoch: None,
            nonce: 0,
        }),
    );

    assert_eq!(r, ready(vec![learn(1, y)], vec![]));
    assert_eq!(p.role(), Leadership::Follower);
    let r = elect_with(&mut p, &[(1, &[]), (2, &[]), (3, &[])]);
    let accepts = to_acceptors_and(&accept(b1(3, 2), 2, &[(2, cmd(7, 1, "x"))]), 1);
    assert_eq!(r, ready_early(accepts, vec![], announced(b1(3, 2), 1, 2)));
}

/// Retention: a follower far behind (more than 2^16 slots) asks a peer, whose log starts later. The
/// answer to its request (echoing the nonce; one without it moves nothing) makes it copy the peer's
/// state, a page at a time from a frozen copy; with the last page its log restarts at the peer's
/// decided prefix, with the configuration, clock and sessions there, persisted so that a restart
/// folds the same.
#[test]
fn the_answer_to_our_request_restarts_the_log_with_a_peers_state() {
    let mut c = cfg(1);
    c.retain_slots = 8;
    let mut p = Proposer::new(c, ProposerState::default());
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 100_000));
    p.tick();
    let sent = |r: Ready<ProposerOp>| r.messages.into_iter().map(|o| (o.to, o.msg)).collect::<Vec<_>>();
    let asked = sent(p.take_ready()).into_iter().find_map(|(_, m)| match m {
        Message::CatchUp(c) => Some(c),
        _ => None,
    });
    let nonce = asked.expect("a catch-up request").nonce;
    let epoch = Epoch { start: Slot(7), config: pinned() };
    let reply = |nonce| CatchUpReply {
        from: Slot(90_000),
        entries: vec![Value::Noop],
        decided: Slot(100_000),
        epoch: Some(epoch.clone()),
        nonce,
    };
    // Without the nonce, its entries are just too far ahead.
    assert!(p.handle(prop(2), Message::CatchUpReply(reply(nonce ^ 1))).is_err());
    assert!(p.take_ready().is_empty());

    p.handle(prop(2), Message::CatchUpReply(reply(nonce))).expect("handled");
    let requests = sent(p.take_ready());
    let [(to, Message::StateRequest(first))] = requests.as_slice() else { panic!("a state request: {requests:?}") };
    let (to, first) = (*to, first.clone());
    assert_eq!((to, first.after), (prop(2), None));

    // The peer, at 100000, serves its frozen state in pages.
    let session = |c: u64| SessionEntry { client: ClientId(c), seq: 3, slot: Slot(99_000 + c), at: 1_000 + c };
    let page = |sessions: Vec<SessionEntry>, more| StateReply {
        nonce: first.nonce,
        at: Slot(100_000),
        epoch: Some(epoch.clone()),
        clock: 5_000,
        sessions,
        more,
    };
    p.handle(prop(2), Message::StateReply(page(vec![session(1), session(2)], true))).expect("handled");
    let r = p.take_ready();
    assert!(r.persist.is_empty());
    assert_eq!(
        sent(r),
        vec![(prop(2), Message::StateRequest(StateRequest { nonce: first.nonce, after: Some(ClientId(2)) }))]
    );
    let forged = StateReply { nonce: first.nonce ^ 1, ..page(vec![session(3)], false) };
    assert!(p.handle(prop(2), Message::StateReply(forged)).is_err());
    p.handle(prop(2), Message::StateReply(page(vec![session(3)], false))).expect("handled");
    let r = p.take_ready();

    let sessions = vec![session(1), session(2), session(3)];
    assert_eq!(
        r.persist,
        vec![
            ProposerOp::Retain(Slot(100_000)),
            ProposerOp::Epoch(epoch.clone()),
            ProposerOp::Sessions { clock: 5_000, first: true, sessions },
        ]
    );
    assert_eq!((p.learner.decided(), p.learner.epoch()), (Slot(100_000), &epoch));
    assert_eq!(p.learner.session(ClientId(2)).map(|s| (s.seq, s.slot)), Some((3, Slot(99_002))));
    let mut folded = ProposerState::default();
    r.persist.iter().for_each(|op| folded.apply(op));
    assert_eq!(folded.log, *p.learner.state());
}

/// A peer that copies our state gets it in pages of one frozen copy: what we learn meanwhile does
/// not change the pages of that copy.
#[test]
fn a_copy_of_our_state_is_served_from_one_frozen_copy() {
    let values: Vec<Value> = (1..=3).map(|c| cmd(c, 1, "x")).collect();
    let mut p = restarted(1, state(0, &values));
    let ask = |after| Message::StateRequest(StateRequest { nonce: 9, after });

    let r = step(&mut p, prop(2), ask(None));

    let reply = |r: Ready<ProposerOp>| match r.messages.into_iter().next().map(|o| o.msg) {
        Some(Message::StateReply(s)) => s,
        other => panic!("a state reply: {other:?}"),
    };
    let first = reply(r);
    assert_eq!((first.nonce, first.at, first.more), (9, Slot(3), false));
    assert_eq!(first.sessions.iter().map(|s| s.client.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    // The same copy again (a retransmission), after the log moved on: the same answer.
    let moved = CatchUpReply { from: Slot(3), entries: vec![cmd(4, 1, "y")], decided: Slot(4), epoch: None, nonce: 0 };
    step(&mut p, prop(2), Message::CatchUpReply(moved));
    assert_eq!(reply(step(&mut p, prop(2), ask(None))), first);
    assert_eq!(reply(step(&mut p, prop(2), ask(Some(ClientId(1))))).sessions, first.sessions[1..].to_vec());
}

/// A follower learns from the leader's commit index (acceptors answer only the leader): the values the
/// leader's accepts proposed below the commit of a later accept, or of its heartbeat when idle, are
/// decided, in order.
#[test]
fn follower_learns_the_leaders_values_below_its_commit() {
    let mut p = restarted(1, pinned_state(0, &[]));
    let (x, y, z) = (cmd(7, 1, "x"), cmd(7, 2, "y"), cmd(8, 1, "z"));
    assert!(step(&mut p, prop(2), accept(b1(1, 2), 1, &[(1, x.clone()), (2, y.clone())])).is_empty());

    let r = step(&mut p, prop(2), accept(b1(1, 2), 3, &[(3, z.clone())]));
    assert_eq!(r, ready(vec![learn(1, x), learn(2, y)], vec![]));

    let r = step(&mut p, prop(2), heartbeat(b1(1, 2), true, 4));
    assert_eq!(r, ready(vec![learn(3, z)], vec![]));
    assert_eq!(p.learner().decided(), Slot(4));
}

/// What a commit index does not say: a value proposed under another ballot than the commit's (it may
/// not be the decided one), or a commit in a heartbeat of a proposer that does not lead, decides nothing.
/// The follower fetches those slots instead.
#[test]
fn a_commit_decides_only_the_values_of_its_own_ballot() {
    let mut p = restarted(1, pinned_state(0, &[]));
    step(&mut p, prop(2), accept(b1(1, 2), 1, &[(1, cmd(7, 1, "x"))]));

    assert!(step(&mut p, prop(2), accept(b1(2, 2), 2, &[])).persist.is_empty(), "another ballot's commit");
    assert!(step(&mut p, prop(2), heartbeat(b1(1, 2), false, 2)).persist.is_empty(), "not the leader's");
    assert_eq!(p.learner().decided(), Slot(1));

    let r = tick(&mut p);
    assert!(r.messages.contains(&ask(prop(2), 1)), "slot 1 is fetched from the leader: {r:?}");
}

/// Digests: a proposer compares the digest a peer or an acceptor claims with its own at the same
/// slot. A claim that matches says nothing; one that differs is said once per node (an ERROR line,
/// `divergence()` for `/health`, `log_diverged` in its status), from a restart too (its latest
/// point comes back with its log); and a claim from a node ahead of it waits until it gets there.
#[test]
fn a_log_that_differs_from_ours_is_found_by_its_digest() {
    let values: Vec<Value> = (0..16).map(|i| cmd(1, i + 1, &format!("v{i}"))).collect();
    let mut p = restarted(1, state(0, &values));
    let ours = p.learner().state().point.expect("a point at slot 16");
    assert_eq!(ours.slot, Slot(16));
    // A peer's heartbeat, and acceptor 3's probe answer, that claim `digest`.
    let with_digest = |msg: Message, digest: Digest| match msg {
        Message::Heartbeat(hb) => Message::Heartbeat(Heartbeat { digest: Some(digest), ..hb }),
        Message::ProbeReply(r) => Message::ProbeReply(ProbeReply { digest: Some(digest), ..r }),
        other => other,
    };
    let claim = |digest: Digest| with_digest(heartbeat(b(1, 2), true, digest.slot.0), digest);
    let probe_reply = |digest: Digest| with_digest(report(3, 0, Ballot::ZERO, digest.slot.0), digest);
    step(&mut p, prop(2), claim(ours));
    assert_eq!(Role::divergence(&p), None);
    assert_eq!(p.learner().digests().compared(), 1);
    let theirs = Digest { slot: Slot(16), chain: ours.chain ^ 1 };
    step(&mut p, acc(3), probe_reply(theirs));
    let why = Role::divergence(&p).expect("acceptor 3's log differs");
    assert!(why.starts_with("the decided log of acceptor-3 differs from ours at or before slot 16"), "{why}");
    assert_eq!(p.status().counters["log_diverged"], 1);
    // Ahead of us: compared once we learn up to its slot, with the values it learned there.
    let later: Vec<Value> = (16..24).map(|i| cmd(1, i + 1, &format!("v{i}"))).collect();
    let mut chain = ours.chain;
    for (i, v) in later.iter().enumerate() {
        chain = Digest::fold(chain, Slot(16 + i as u64), v);
    }
    step(&mut p, prop(2), claim(Digest { slot: Slot(24), chain: chain ^ 1 }));
    assert_eq!(p.learner().digests().diverged().len(), 1, "not before we get there");
    let entries: Vec<(u64, Value)> = later.into_iter().enumerate().map(|(i, v)| (16 + i as u64, v)).collect();
    let ballot = b(1, 2);
    step(&mut p, prop(2), accept(ballot, 24, &entries));
    assert_eq!(p.learner().decided(), Slot(24));
    assert_eq!(p.learner().digests().diverged().len(), 2, "proposer 2's claim at slot 24 differs too");
    let why = Role::divergence(&p).expect("still");
    assert!(why.contains("(and 1 more nodes) differs from ours"), "{why}");
}
