//! Membership: the bootstrap that pins every acceptor's incarnation, rebuilds of acceptors that lost
//! their state, and operators' member requests.

use std::collections::BTreeSet;

use super::clients::probes;
use super::*;

fn member_request(req: u64, op: MemberOp) -> Message {
    Message::MemberRequest(MemberRequest { req, op, deadline_ms: None, epoch: None, cookie: None })
}

pub(super) fn member_request_until(req: u64, op: MemberOp, deadline_ms: u64) -> Message {
    Message::MemberRequest(MemberRequest { req, op, deadline_ms: Some(deadline_ms), epoch: None, cookie: None })
}

/// A member request asked from the configuration of `epoch`.
fn member_request_from(req: u64, op: MemberOp, epoch: u32) -> Message {
    Message::MemberRequest(MemberRequest { req, op, deadline_ms: None, epoch: Some(epoch), cookie: None })
}

/// The one member reply in `r`, to client 7: its request, and its error if any.
pub(super) fn the_member_reply(r: &Ready<ProposerOp>) -> Option<(u64, Option<String>)> {
    let replies: Vec<_> = sent(r)
        .filter_map(|o| match &o.msg {
            Message::MemberReply(m) if o.to == client(7) => Some((m.req, m.error.clone())),
            _ => None,
        })
        .collect();
    assert!(replies.len() <= 1, "one reply at most: {replies:?}");
    replies.into_iter().next()
}

/// Every message in `r`, early or not.
pub(super) fn sent(r: &Ready<ProposerOp>) -> impl Iterator<Item = &Outgoing> {
    r.early.iter().chain(&r.messages)
}

/// True when `r` proposes something.
fn proposes(r: &Ready<ProposerOp>) -> bool {
    sent(r).any(|o| matches!(o.msg, Message::Accept(_)))
}

/// The first accept `r` sends, if any.
fn first_accept(r: &Ready<ProposerOp>) -> Option<Message> {
    sent(r).find(|o| matches!(o.msg, Message::Accept(_))).map(|o| o.msg.clone())
}

/// The configuration `r` proposes, if any.
fn proposed_config(r: &Ready<ProposerOp>) -> Option<Config> {
    sent(r).find_map(|o| match &o.msg {
        Message::Accept(m) => m.entries.iter().find_map(|e| match &e.value {
            Value::Config(c) => Some(c.clone()),
            _ => None,
        }),
        _ => None,
    })
}

fn member_reply(req: u64, config: Option<Config>, error: Option<&str>, leader: Option<u32>) -> Message {
    Message::MemberReply(MemberReply { req, config, error: error.map(String::from), leader: leader.map(NodeId) })
}

fn remove_acceptor(id: u32) -> MemberOp {
    MemberOp::Remove { role: MemberRole::Acceptor, id: NodeId(id) }
}

/// `from` asks the leader `p` for a change with `request`: the leader probes every acceptor in force
/// and each one being added at once, in a probe round of its own, and sends nothing else (only answers
/// to that round or later ones count for the change). Returns the round.
pub(super) fn ask(p: &mut Proposer, from: Node, request: Message) -> u64 {
    let r = step(p, from, request);
    let round = p.probe_round;
    let decided = p.learner().decided().0;
    let targets: BTreeSet<NodeId> = p.config().acceptors.iter().map(|m| m.id).chain(p.joining.ids()).collect();
    let probes = targets.into_iter().map(|a| send(Node::Acceptor(a), leader_probe(round, decided))).collect();
    assert_eq!(r, ready(vec![], probes), "a probe round of its own, at once");
    round
}

/// As [`ask`], and acceptors 1 to 5 answer that round at once, as they were.
pub(super) fn ask_answered(p: &mut Proposer, from: Node, request: Message) -> u64 {
    let round = ask(p, from, request);
    let decided = p.learner().decided().0;
    answer_round(p, round, decided);
    round
}

/// Bootstrap: the first leader of a cluster, in epoch 0, proposes no client value there (nobody's
/// incarnation is pinned yet); once every acceptor answered a fresh probe round it proposes, alone at
/// slot 0, the same members pinned with the incarnations they reported; that needs a bootstrap quorum
/// (4 of 5) of votes, and once it is decided the leader runs phase 1 again in epoch 1 from slot 1, telling
/// the acceptors of the epoch, and proposes the client value that waited.
#[test]
fn first_leadership_proposes_the_pinning_configuration_before_any_client_value() {
    let mut p = proposer(1);
    let ballot = elect(&mut p); // at tick 50
    assert_eq!(ballot, b(1, 1));
    assert!(step(&mut p, client(7), propose(1, "x")).is_empty(), "no client value goes into epoch 0");
    for t in 51..60 {
        assert!(tick(&mut p).is_empty(), "tick {t}: the start-up probe's reports are too old to pin");
    }
    assert_eq!(tick(&mut p), ready(vec![], leader_heartbeat(ballot, 2, 0, 6)), "tick 60: a fresh probe round");
    answer_round(&mut p, 6, 0);

    let r = tick(&mut p); // tick 61

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 0, &[(0, Value::Config(pinned()))]), 2)));
    assert_eq!(p.changing_to(), Some(&pinned()));
    for a in 1..=3 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[0])).is_empty(), "3 of 5 is no bootstrap quorum");
    }
    let r = step(&mut p, acc(4), accepted(ballot, &[0]));
    assert_eq!(
        r,
        ready(vec![learn(0, Value::Config(pinned())), ProposerOp::Round(2)], to_acceptors(&prepare1(b1(2, 1), 1)))
    );
    assert_eq!((p.role(), p.status().epoch), (Leadership::Candidate, 1));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), promise(b1(2, 1), 1, &[])).is_empty());
    }
    let r = step(&mut p, acc(3), promise(b1(2, 1), 1, &[]));
    let accepts = to_acceptors_and(&accept(b1(2, 1), 1, &[(1, cmd(7, 1, "x"))]), 2);
    assert_eq!(r, ready_early(accepts, vec![], announced(b1(2, 1), 2, 1)));
}

/// Bootstrap: while an acceptor does not answer, the first leader waits ten election timeouts from the
/// start of its leadership for it, then pins the acceptors that answered the current or the last probe
/// round, as many as a bootstrap quorum at least, and leaves the silent one unpinned (it must be let in
/// later to vote).
#[test]
fn pinning_waits_for_a_silent_acceptor_then_goes_without_it() {
    let mut p = proposer(1);
    let ballot = elect(&mut p); // at tick 50
    let patience = 10 * p.cfg.election_timeout_ticks;
    for t in 51..50 + patience {
        let r = tick(&mut p);
        if t % 10 == 0 {
            for a in 1..=4 {
                step(&mut p, acc(a), report(a, t / 10, ballot, 0));
            }
        }
        assert!(r.early.is_empty(), "tick {t}: nothing proposed yet");
    }

    let r = tick(&mut p); // tick 550

    let mut partial = pinned();
    partial.acceptors[4].incarnation = None;
    let pinning = accept(ballot, 0, &[(0, Value::Config(partial))]);
    let round = p.now.0 / 10;
    assert_eq!(r, ready_early(to_heard_and(&pinning, &[1, 2, 3, 4], 2), vec![], leader_heartbeat(ballot, 2, 0, round)));
}

/// Bootstrap: fewer answering acceptors than a bootstrap quorum are never pinned, however long the
/// leader waits: the new epoch could not decide anything.
#[test]
fn pinning_needs_a_bootstrap_quorum_of_answers() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    for t in 51..=1_000 {
        let r = tick(&mut p);
        if t % 10 == 0 {
            for a in 1..=3 {
                step(&mut p, acc(a), report(a, t / 10, ballot, 0));
            }
        }
        assert!(r.early.is_empty(), "tick {t}: nothing proposed");
    }
    assert_eq!(p.learner().epoch_number(), 0);
}

/// Rebuilds: a member acceptor that reports another incarnation than the one pinned (it lost its state)
/// is pinned with its new one, in a new configuration, only once a recent probe round (the current one
/// or the last) says it holds the decided log to within REBUILD_SLACK_SLOTS; a late answer to an older
/// round does not count. Once that is decided, the leader runs phase 1 in the new epoch.
#[test]
fn rebuilt_acceptor_is_pinned_once_it_holds_the_log() {
    let (mut p, ballot) = restarted_leader(1, 5, &vec![Value::Noop; 5000]); // at tick 50
    let decided = 5001;
    let rebuilt = |round: u64, decided: u64| {
        let reply = ProbeReply {
            nonce: round,
            promised: ballot,
            decided: Slot(decided),
            incarnation: 999,
            epoch: 1,
            joining: true,
            leader: None,
            challenge: 0,
            clock_ms: 0,
            written: None,
            digest: None,
        };
        Message::ProbeReply(reply)
    };
    let answer = |p: &mut Proposer, round: u64, acceptor_5: u64| {
        for a in 1..=4 {
            assert!(step(p, acc(a), report(a, round, ballot, decided)).is_empty());
        }
        assert!(step(p, acc(5), rebuilt(round, acceptor_5)).is_empty());
    };
    tick_to(&mut p, 60);
    answer(&mut p, 6, 100);
    assert!(tick(&mut p).is_empty(), "tick 61: acceptor 5 lacks far more than the slack");
    assert!(step(&mut p, acc(5), rebuilt(4, decided)).is_empty());
    assert!(tick(&mut p).is_empty(), "tick 62: an answer to round 4 says nothing of acceptor 5 now");
    tick_to(&mut p, 70);
    answer(&mut p, 7, decided - REBUILD_SLACK_SLOTS - 1);
    assert!(tick(&mut p).is_empty(), "tick 71: one slot more than the slack");
    tick_to(&mut p, 80);
    answer(&mut p, 8, decided - REBUILD_SLACK_SLOTS);

    let r = tick(&mut p); // tick 81

    let mut next = pinned();
    next.epoch = 2;
    next.acceptors[4].incarnation = Some(999);
    let change = accept(ballot, decided, &[(decided, Value::Config(next.clone()))]);
    assert_eq!(r, early_only(to_acceptors_and(&change, 2)));
    for a in 1..=2 {
        step(&mut p, acc(a), accepted(ballot, &[decided]));
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[decided]));
    let epoch2 = Epoch { start: Slot(decided + 1), config: next.clone() };
    let prepare = Prepare {
        ballot: Ballot::in_epoch(2, 7, NodeId(1)),
        from: Slot(decided + 1),
        epoch: Some(epoch2),
        wrote: vec![],
    };
    assert_eq!(
        r,
        ready(
            vec![learn(decided, Value::Config(next)), ProposerOp::Round(7)],
            to_acceptors(&Message::Prepare(prepare))
        )
    );
}

/// Member requests: any proposer lists the configuration in force; a change asked of a proposer that does
/// not lead is answered with the leader to ask.
#[test]
fn member_change_asked_of_a_follower_is_redirected() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b1(3, 2), true, 1));

    let r = step(&mut p, client(7), member_request(1, remove_acceptor(5)));

    assert_eq!(r, ready(vec![], vec![send(client(7), member_reply(1, None, None, Some(2)))]));
    let r = step(&mut p, client(7), member_request(2, MemberOp::List));
    assert_eq!(r, ready(vec![], vec![send(client(7), member_reply(2, Some(cfg(1).genesis), None, None))]));
}

/// Member requests: the leader refuses a change it cannot make, answers one the configuration already
/// satisfies at once, and answers a change it makes only once the new configuration is decided (retries
/// meanwhile get no second answer). A change waits until one more acceptor than a majority of the new
/// configuration is ready (pinned, answering, holding the log), then goes alone into the next slot, and
/// the leader leads on in the new epoch with its acceptors.
#[test]
fn member_change_asked_of_the_leader_is_answered_once_decided() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: String::new() };
    let r = step(&mut p, client(7), member_request(1, add));
    assert_eq!(
        r,
        ready(vec![], vec![send(client(7), member_reply(1, None, Some("the address must have 1 to 256 bytes"), None))])
    );
    let r = step(&mut p, client(7), member_request(2, remove_acceptor(9)));
    assert_eq!(r, ready(vec![], vec![send(client(7), member_reply(2, Some(pinned()), None, None))]));

    ask_answered(&mut p, client(7), member_request(3, remove_acceptor(5)));
    assert!(step(&mut p, client(7), member_request(3, remove_acceptor(5))).is_empty(), "a retry");
    let r = tick(&mut p); // tick 62

    let mut next = pinned();
    next.epoch = 2;
    next.acceptors.truncate(4);
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, Value::Config(next.clone()))]), 2)));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1])).is_empty());
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[1]));
    let epoch2 = Epoch { start: Slot(2), config: next.clone() };
    let prepare = Message::Prepare(Prepare {
        ballot: Ballot::in_epoch(2, 3, NodeId(1)),
        from: Slot(2),
        epoch: Some(epoch2),
        wrote: vec![],
    });
    let mut messages: Vec<_> = (1..=4).map(|a| send(acc(a), prepare.clone())).collect();
    messages.push(send(client(7), member_reply(3, Some(next.clone()), None, None)));
    assert_eq!(r, ready(vec![learn(1, Value::Config(next)), ProposerOp::Round(3)], messages));
}

/// Member requests: a change counts only answers made after it was asked. Every acceptor answered
/// the heartbeat's probe round at tick 70; acceptor 4 then loses its disk and stays down, and at tick
/// 72 an operator asks to remove acceptor 5. By the answers of round 7, which are recent, all four
/// acceptors left are ready, as the removal needs (one more than a majority of four); but acceptor 4
/// has not answered since the request, so the removal waits: made, it would leave three acceptors
/// that can vote of four, and a second loss would stop the cluster for good. It is made once acceptor
/// 4 answers a round sent after the request, as it was (a restart, not a lost disk).
#[test]
fn a_change_counts_only_answers_made_after_it_was_asked() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    tick_to(&mut p, 70); // round 7
    answer_round(&mut p, 7, 1);
    tick_to(&mut p, 72);

    let round = ask(&mut p, client(7), member_request(1, remove_acceptor(5)));

    assert_eq!(round, 8);
    for a in [1, 2, 3, 5] {
        assert!(step(&mut p, acc(a), report(a, 8, ballot, 1)).is_empty());
    }
    for t in 73..80 {
        assert!(!proposes(&tick(&mut p)), "tick {t}: acceptor 4 has not answered since the request");
    }
    let r = tick(&mut p); // tick 80: round 9
    assert!(!proposes(&r));
    for a in 1..=5 {
        assert!(step(&mut p, acc(a), report(a, 9, ballot, 1)).is_empty());
    }
    let r = tick(&mut p); // tick 81

    let mut next = pinned();
    next.epoch = 2;
    next.acceptors.truncate(4);
    assert_eq!(proposed_config(&r), Some(next), "made once acceptor 4 answered since the request");
}

/// What a leader knows of an acceptor comes from its latest answer, and an answer made before the
/// acceptor lost its disk never replaces one made after: acceptor 4 answers probe round 8 as a new
/// incarnation (which cannot vote), then an answer it made before the loss arrives, as the incarnation
/// the configuration pins. That answer is a late one to round 7, or the other answer to round 8 (a
/// probe the network duplicated): of two answers to one round, the one that says the acceptor cannot
/// vote is kept.
#[test]
fn an_answer_made_before_a_disk_loss_does_not_replace_one_made_after() {
    for before_the_loss in [7, 8] {
        let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
        tick_to(&mut p, 70); // round 7
        tick_to(&mut p, 80); // round 8
        assert!(step(&mut p, acc(4), after_a_disk_loss(4, 8, ballot, 0)).is_empty());

        assert!(step(&mut p, acc(4), report(4, before_the_loss, ballot, 1)).is_empty());

        assert_eq!(p.acceptors[&NodeId(4)].incarnation, Some((999, 8)), "round {before_the_loss}");
    }
}

/// Acceptor `a`'s answer to probe round `round` after it lost its disk: incarnation 999, which
/// cannot vote, holding `decided` slots.
fn after_a_disk_loss(a: u32, round: u64, promised: Ballot, decided: u64) -> Message {
    let mut m = report(a, round, promised, decided);
    if let Message::ProbeReply(m) = &mut m {
        (m.incarnation, m.joining) = (999, true);
    }
    m
}

/// Probe answers stay fresh for two heartbeats, however many probe rounds of their own linearizable
/// reads (and member requests) start in between: counted in rounds, two reads per tick made every
/// answer stale by the time it came back (a tick later), and the leader never learned that acceptor
/// 5 rebuilt its log (nor anything else of the acceptors: their challenges, so its probes renewed no
/// lease). Here each tick brings two reads, then the answers to the probes of the tick before.
#[test]
fn answers_stay_fresh_however_many_rounds_reads_start() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let answer = |a: u32, round: u64| {
        // Acceptor 5 rebuilt its log after losing its disk.
        let mut m = if a == 5 { after_a_disk_loss(a, round, ballot, 1) } else { report(a, round, ballot, 1) };
        if let Message::ProbeReply(m) = &mut m {
            m.challenge = 42;
        }
        m
    };
    let mut due = Vec::new();
    for t in 62..100u64 {
        let mut sent_now = Vec::new();
        for k in 0..2 {
            let read = LogRead { req: 1, from: Slot(0), limit: 1, linearizable: true, cookie: None };
            sent_now.extend(probes(&step(&mut p, client(100 + 2 * t + k), Message::LogRead(read))));
        }
        for (a, round) in std::mem::take(&mut due) {
            step(&mut p, acc(a), answer(a, round));
        }
        let r = tick(&mut p);
        if proposed_config(&r).is_some_and(|c| c.acceptors[4].incarnation == Some(999)) {
            assert_eq!(p.acceptors[&NodeId(1)].challenge, 42, "the challenges are learned too");
            return;
        }
        sent_now.extend(probes(&r));
        due = sent_now;
    }
    panic!("acceptor 5's rebuild was never proposed: every answer came back stale");
}

/// Member requests: an acceptor being added is probed by the leader each heartbeat at the address the
/// operator gave; once it answers a recent probe round with its incarnation and holds the decided log,
/// the leader decides a configuration with it pinned, runs phase 1 of the new epoch with it, and answers.
#[test]
fn added_acceptor_is_let_in_once_it_reported_its_incarnation() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() };

    assert_eq!(ask(&mut p, client(7), member_request(1, add)), 7, "acceptor 6 is probed at once");

    assert!(p.members().contains(&(acc(6), "a6:7000".to_owned())), "the runtime learns where to send");
    tick_to(&mut p, 69);
    let r = tick(&mut p); // tick 70
    let mut probes = leader_heartbeat(ballot, 2, 1, 8);
    probes.push(send(acc(6), leader_probe(8, 1)));
    assert_eq!(r, ready(vec![], probes));
    answer_round(&mut p, 8, 1);
    assert!(step(&mut p, acc(6), joining_answer(8)).is_empty());

    let r = tick(&mut p); // tick 71

    let mut next = pinned();
    next.epoch = 2;
    next.acceptors.push(Member { id: NodeId(6), addr: "a6:7000".into(), incarnation: Some(606) });
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, Value::Config(next.clone()))]), 2)));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1])).is_empty());
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[1]));
    let epoch2 = Epoch { start: Slot(2), config: next.clone() };
    let prepare = Message::Prepare(Prepare {
        ballot: Ballot::in_epoch(2, 3, NodeId(1)),
        from: Slot(2),
        epoch: Some(epoch2),
        wrote: vec![],
    });
    let mut messages: Vec<_> = (1..=6).map(|a| send(acc(a), prepare.clone())).collect();
    messages.push(send(client(7), member_reply(1, Some(next.clone()), None, None)));
    assert_eq!(r, ready(vec![learn(1, Value::Config(next)), ProposerOp::Round(3)], messages));
}

/// Deadlines: a change that cannot be made (an acceptor to add that never answers) waits until the
/// deadline the client gave. The leader then first gets a value it proposed `MAX_CLOCK_SKEW_MS`
/// after the deadline decided (idle, a no-op), so that no stop sign of a leader of a lower ballot
/// (whose clock may be behind by that much) can be chosen later, then answers with why it gave the
/// change up, and probes the acceptor no more.
#[test]
fn a_change_that_cannot_be_made_is_given_up_at_its_deadline_with_the_reason() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() };
    ask_answered(&mut p, client(7), member_request_until(1, add, 1_000_500));
    for _ in 0..3 {
        let r = tick(&mut p);
        assert_eq!(the_member_reply(&r), None, "before the deadline");
        assert!(!proposes(&r), "nothing is proposed: {r:?}");
    }
    assert!(p.members().contains(&(acc(6), "a6:7000".to_owned())), "acceptor 6 is probed meanwhile");

    for clock in [1_000_501, 1_000_500 + MAX_CLOCK_SKEW_MS] {
        p.set_clock(clock);
        let r = tick(&mut p);
        assert_eq!(the_member_reply(&r), None, "past the deadline: the change is not started, nor given up yet");
        assert!(!proposes(&r), "no fence while a leader whose clock is behind ours may still start it: {r:?}");
    }

    p.set_clock(1_000_501 + MAX_CLOCK_SKEW_MS);
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r), None, "not before a value proposed after the deadline is decided");
    let proposed = first_accept(&r);
    assert_eq!(proposed, Some(accept(ballot, 1, &[(1, Value::Noop)])), "a no-op, proposed after the deadline");
    for _ in 0..3 {
        let r = tick(&mut p);
        let new_slots =
            sent(&r).any(|o| matches!(&o.msg, Message::Accept(m) if m.entries.iter().any(|e| e.slot > Slot(1))));
        assert!(!new_slots, "one fence at a time, not a no-op per tick: {r:?}");
    }
    for a in 1..=2 {
        step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    assert_eq!(the_member_reply(&tick(&mut p)), None, "two votes are no quorum");
    step(&mut p, acc(3), accepted(ballot, &[1]));
    let r = tick(&mut p);

    let (req, error) = the_member_reply(&r).expect("the addition is answered");
    assert_eq!(req, 1);
    let error = error.expect("with an error");
    assert!(error.starts_with("given up at its deadline, not made: acceptor 6 has not answered at a6:7000"), "{error}");
    assert!(!p.members().contains(&(acc(6), "a6:7000".to_owned())), "acceptor 6 is probed no more");
    assert!(!proposes(&r));
}

/// Deadlines: changes go in order, but one whose deadline passed holds up the ones behind it no
/// longer: at the deadline of an addition that cannot be made, the removal asked after it starts.
#[test]
fn a_change_past_its_deadline_holds_up_nothing() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() };
    ask_answered(&mut p, client(7), member_request_until(1, add, 1_000_500));
    ask_answered(&mut p, client(7), member_request(2, remove_acceptor(5)));
    for _ in 0..3 {
        assert!(!proposes(&tick(&mut p)), "the removal waits behind the addition");
    }

    p.set_clock(1_000_501);
    let r = tick(&mut p);

    let mut next = pinned();
    next.epoch = 2;
    next.acceptors.truncate(4);
    let proposed = first_accept(&r);
    assert_eq!(proposed, Some(accept(ballot, 1, &[(1, Value::Config(next))])), "the removal goes on at once");
}

/// Deadlines: a change under way (proposed) when its deadline passes is not given up; it is answered
/// once decided. One whose stop sign still waits for the window to drain at its deadline is never
/// proposed. A request that arrives after its deadline (a late duplicate, or a client clock ahead)
/// is never started, and the answer says by how much it came late.
#[test]
fn a_change_is_never_proposed_after_its_deadline() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    ask_answered(&mut p, client(7), member_request_until(1, remove_acceptor(5), 1_000_010));
    let r = tick(&mut p);
    assert!(proposes(&r), "the removal is proposed");
    p.set_clock(1_000_011);
    assert_eq!(the_member_reply(&tick(&mut p)), None, "under way: not given up");
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1])).is_empty());
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[1]));
    assert_eq!(the_member_reply(&r), Some((1, None)), "answered with the new configuration");

    let (mut p, ballot) = leader_in_epoch_1(1);
    p.set_clock(1_000_000);
    assert!(proposes(&step(&mut p, client(8), propose(1, "x"))), "a client value in slot 1");
    ask_answered(&mut p, client(7), member_request_until(1, remove_acceptor(5), 1_000_010));
    assert!(!proposes(&tick(&mut p)), "the stop sign waits for slot 1");
    p.set_clock(1_000_011);
    for a in 1..=3 {
        let r = step(&mut p, acc(a), accepted(ballot, &[1]));
        assert!(proposed_config(&r).is_none(), "never proposed: {r:?}");
    }
    p.set_clock(1_000_011 + MAX_CLOCK_SKEW_MS);
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r), None, "not before a value proposed after the deadline is decided");
    let fence = first_accept(&r);
    assert_eq!(fence, Some(accept(ballot, 2, &[(2, Value::Noop)])), "a no-op proposed after the deadline");
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[2]));
    }
    let (req, error) = the_member_reply(&tick(&mut p)).expect("given up");
    assert_eq!(req, 1);
    assert!(error.is_some_and(|e| e.starts_with("given up at its deadline, not made: ")));
    assert_eq!((p.config().epoch, p.changing_to()), (1, None));

    let (mut p, ballot) = leader_in_epoch_1(1);
    p.set_clock(2_000_000);
    ask_answered(&mut p, client(7), member_request_until(1, remove_acceptor(5), 1_998_500));
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r), None);
    assert_eq!(first_accept(&r), Some(accept(ballot, 1, &[(1, Value::Noop)])));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    let r = tick(&mut p);
    assert!(proposed_config(&r).is_none(), "never started: {r:?}");
    let (req, error) = the_member_reply(&r).expect("answered");
    assert_eq!(req, 1);
    let error = error.expect("an error");
    assert!(error.contains("it reached this leader 1500 ms after its deadline"), "{error}");
    assert_eq!(p.config().epoch, 1);
}

/// A removal asked while the addition of the same acceptor is under way is not answered from the
/// configuration in force (which lacks it): it waits for the addition to land.
#[test]
fn a_removal_waits_while_the_addition_of_the_same_member_is_under_way() {
    let (mut p, _) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() };
    let round = ask_answered(&mut p, client(8), member_request(1, add));
    assert!(step(&mut p, acc(6), joining_answer(round)).is_empty());
    let r = tick(&mut p); // tick 71: the addition is proposed
    assert!(proposes(&r));

    let r = step(&mut p, client(7), member_request(1, remove_acceptor(6)));

    assert_eq!(the_member_reply(&r), None, "not answered while acceptor 6 is being added");
    assert_eq!(the_member_reply(&tick(&mut p)), None);
}

/// Deadlines: the value that fences off earlier leaders' stop signs must be proposed after the
/// deadline of the change given up: a second change, due later, needs a fence of its own.
#[test]
fn each_change_given_up_needs_a_fence_proposed_after_its_deadline() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    let add = |id: u32| MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(id), addr: format!("a{id}:7000") };
    ask_answered(&mut p, client(7), member_request_until(1, add(6), 1_000_100));
    ask_answered(&mut p, client(7), member_request_until(2, add(7), 1_000_200));

    p.set_clock(1_000_101 + MAX_CLOCK_SKEW_MS);
    let fence = first_accept(&tick(&mut p));
    assert_eq!(fence, Some(accept(ballot, 1, &[(1, Value::Noop)])));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r).map(|(req, e)| (req, e.is_some())), Some((1, true)), "the first is given up");

    p.set_clock(1_000_201 + MAX_CLOCK_SKEW_MS);
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r), None, "the fence at slot 1 went out before the second deadline");
    let fence = first_accept(&r);
    assert_eq!(fence, Some(accept(ballot, 2, &[(2, Value::Noop)])));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[2]));
    }
    let r = tick(&mut p);
    assert_eq!(the_member_reply(&r).map(|(req, e)| (req, e.is_some())), Some((2, true)), "then the second");
}

/// Deadlines: a fence decided without a quorum of this leader's own ballot (here learned from a peer's
/// catch-up, as when a leader of a higher ballot got an equal no-op chosen there first) proves nothing
/// about when its slot was decided: the leader asks for another fence before it gives up.
#[test]
fn a_fence_decided_without_our_quorum_is_replaced() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    let add = MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(6), addr: "a6:7000".into() };
    ask_answered(&mut p, client(7), member_request_until(1, add, 1_000_100));
    p.set_clock(1_000_101 + MAX_CLOCK_SKEW_MS);
    let fence = first_accept(&tick(&mut p));
    assert_eq!(fence, Some(accept(ballot, 1, &[(1, Value::Noop)])));

    let decided_elsewhere =
        CatchUpReply { from: Slot(1), entries: vec![Value::Noop], decided: Slot(2), epoch: None, nonce: 0 };
    step(&mut p, prop(2), Message::CatchUpReply(decided_elsewhere));
    assert_eq!(p.learner().decided(), Slot(2), "slot 1 is decided, with a no-op equal to ours");
    let r = tick(&mut p);

    assert_eq!(the_member_reply(&r), None, "not given up on that fence");
    let fence = first_accept(&r);
    assert_eq!(fence, Some(accept(ballot, 2, &[(2, Value::Noop)])), "a new fence");
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[2]));
    }
    let (req, error) = the_member_reply(&tick(&mut p)).expect("given up on the new fence");
    assert_eq!(req, 1);
    assert!(error.is_some_and(|e| e.starts_with("given up at its deadline, not made: ")));
}

/// A change asked again after it was answered (the network duplicated or delayed the request) is not
/// made again: here an operator adds proposer 3, then removes it, and a late copy of the addition
/// reaches the leader. The client numbers its requests upwards, one at a time: the copy is older than
/// the last answer, so it gets no answer and nothing is proposed; a copy of the last request answered
/// gets the answer it had. (Made again, the addition brought back the member the operator removed: the
/// simulator's seed 21006144, a removed acceptor added again by a late copy of its addition.)
#[test]
fn a_late_copy_of_an_answered_change_is_not_made_again() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(3), addr: "p3:7000".into() };
    let remove = MemberOp::Remove { role: MemberRole::Proposer, id: NodeId(3) };
    let (added, ballot) = decide_change(&mut p, member_request(1, add.clone()), 1, ballot);
    assert!(added.proposers.iter().any(|m| m.id == NodeId(3)));
    let (removed, _) = decide_change(&mut p, member_request(2, remove.clone()), 2, ballot);
    assert!(!removed.proposers.iter().any(|m| m.id == NodeId(3)));

    let late = p.handle(client(7), member_request(1, add));

    assert_eq!(late, Err(Ignored("proposer: a member request older than one already answered")));
    assert!(p.take_ready().is_empty(), "no answer");
    assert!(!proposes(&tick(&mut p)), "not made again");
    assert_eq!(p.config().epoch, removed.epoch);
    let r = step(&mut p, client(7), member_request(2, remove));
    assert_eq!(r, ready(vec![], vec![send(client(7), member_reply(2, Some(removed), None, None))]), "its answer");
}

/// A copy of an old request that reaches a leader which never answered its client (another leader
/// did, before leadership moved): the request names the epoch it was asked from, so the leader does
/// not take it for a new one. The operator added proposer 3 from epoch 1, then removed it from epoch 2;
/// a copy of the addition, delayed by the network, must not bring proposer 3 back: it is refused with
/// the configuration in force, and nothing is proposed.
#[test]
fn a_late_copy_of_a_change_another_leader_answered_is_refused_by_its_epoch() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(3), addr: "p3:7000".into() };
    let remove = MemberOp::Remove { role: MemberRole::Proposer, id: NodeId(3) };
    let (added, ballot) = decide_change(&mut p, member_request_from(1, add.clone(), 1), 1, ballot);
    assert!(added.proposers.iter().any(|m| m.id == NodeId(3)));
    let (removed, _) = decide_change(&mut p, member_request_from(2, remove, added.epoch), 2, ballot);
    assert_eq!(removed.epoch, 3);

    // Client 8's copy: this leader never answered client 8.
    let r = step(&mut p, client(8), member_request_from(1, add, 1));

    let refusal = "the configuration changed since epoch 1, which the request was asked from (epoch 3 is in force, \
                   without this change); list the members and ask again";
    let answer = member_reply(1, Some(removed.clone()), Some(refusal), None);
    assert_eq!(r, ready(vec![], vec![send(client(8), answer)]), "refused with the configuration in force");
    for _ in 0..5 {
        assert!(!proposes(&tick(&mut p)), "not made again");
    }
    assert_eq!(p.config(), removed);
}

/// A request that waited at the leader while another change came into force is not made from the
/// new configuration: clients 7 and 8 each ask, from epoch 1, to add a proposer. Client 7's change is
/// made; the leader, campaigning again in epoch 2, sends client 8 back to the leader; there, its
/// request is refused with epoch 2's configuration (its client asks again from that one).
#[test]
fn a_request_overtaken_by_another_change_is_refused_with_the_new_configuration() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add3 = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(3), addr: "p3:7000".into() };
    let add4 = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(4), addr: "p4:7000".into() };
    ask_answered(&mut p, client(7), member_request_from(1, add3, 1));
    ask_answered(&mut p, client(8), member_request_from(1, add4.clone(), 1)); // waits behind client 7's
    let added = proposed_config(&tick(&mut p)).expect("client 7's change is proposed");
    assert!(added.proposers.iter().any(|m| m.id == NodeId(3)));
    let mut to_8 = Vec::new();
    for a in 1..=3 {
        let r = step(&mut p, acc(a), accepted(ballot, &[1]));
        to_8.extend(sent(&r).filter(|o| o.to == client(8)).map(|o| o.msg.clone()));
    }
    assert_eq!(p.config(), added);
    assert_eq!(to_8, vec![member_reply(1, None, None, Some(1))], "campaigning again: ask the leader");
    let next = p.ballot();
    for a in 1..=3 {
        step(&mut p, acc(a), promise(next, 2, &[]));
    }
    assert_eq!(p.role(), Leadership::Leader);

    let r = step(&mut p, client(8), member_request_from(1, add4, 1));

    let refusal = "the configuration changed since epoch 1, which the request was asked from (epoch 2 is in force, \
                   without this change); list the members and ask again";
    assert_eq!(r, ready(vec![], vec![send(client(8), member_reply(1, Some(added.clone()), Some(refusal), None))]));
    for _ in 0..5 {
        assert!(!proposes(&tick(&mut p)), "not made from epoch 2");
    }
    assert_eq!(p.config(), added);
}

/// A retry of a change that was made (its answer lost, its client unknown to this leader) while a
/// change that undoes it is under way: it is not refused with the configuration that has it, which
/// its client would take for another change than its own (the next epoch) and ask again from, making
/// it twice. It waits for the change under way, and is then refused with the configuration after it.
#[test]
fn a_retry_of_a_change_being_undone_waits_and_is_refused_with_the_configuration_after() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let add = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(3), addr: "p3:7000".into() };
    let remove = MemberOp::Remove { role: MemberRole::Proposer, id: NodeId(3) };
    let (added, ballot) = decide_change(&mut p, member_request_from(1, add.clone(), 1), 1, ballot);
    ask_answered(&mut p, client(7), member_request_from(2, remove, added.epoch));
    let removing = proposed_config(&tick(&mut p)).expect("the removal is proposed");

    // Client 9's request, asked from epoch 1 and made at epoch 2 (the answer went to another leader).
    ask(&mut p, client(9), member_request_from(1, add.clone(), 1)); // waits for the removal under way
    let mut to_9 = Vec::new();
    for a in 1..=3 {
        let r = step(&mut p, acc(a), accepted(ballot, &[2]));
        to_9.extend(sent(&r).filter(|o| o.to == client(9)).map(|o| o.msg.clone()));
    }
    assert_eq!(p.config(), removing);
    assert_eq!(to_9, vec![member_reply(1, None, None, Some(1))], "campaigning again: ask the leader");
    let next = p.ballot();
    for a in 1..=3 {
        step(&mut p, acc(a), promise(next, 3, &[]));
    }
    let r = step(&mut p, client(9), member_request_from(1, add, 1));
    let refusal = "the configuration changed since epoch 1, which the request was asked from (epoch 3 is in force, \
                   without this change); list the members and ask again";
    assert_eq!(r, ready(vec![], vec![send(client(9), member_reply(1, Some(removing), Some(refusal), None))]));
}

/// Election after a change: the leader that added proposer 3 campaigns again in the new epoch, and leads
/// on: it does not make room for proposer 3 (a higher id, alive, holding the log), since a live leader is
/// not preempted and nobody would lead meanwhile. (It made room before, and the cluster had no leader for
/// an election timeout after the change: the simulator's stability check caught it.)
#[test]
fn the_leader_leads_on_into_the_new_epoch_although_a_higher_id_is_alive() {
    let (mut p, _) = leader_added_proposer_3(64);

    step(&mut p, prop(3), heartbeat(b(0, 3), false, 2));
    tick(&mut p);

    assert_eq!(p.role(), Leadership::Candidate, "it campaigns on");
    let next = p.ballot();
    for a in 1..=3 {
        step(&mut p, acc(a), promise(next, 2, &[]));
    }
    assert_eq!((p.role(), p.config().epoch), (Leadership::Leader, 2));
}

/// Election after a change, a campaign by the election's rule (proposer 3 not heard from when it began):
/// the candidate makes room for proposer 3 (a higher id, alive) only if proposer 3 holds the log to
/// within a window: one with an empty log does not campaign before it has caught up, and nobody would
/// lead meanwhile.
#[test]
fn a_candidate_makes_room_for_a_higher_id_only_once_it_holds_the_log() {
    for (their_decided, stays) in [(0, true), (2, false)] {
        let (mut p, _) = leader_added_proposer_3(1);
        // Fenced in epoch 2 by a ballot nobody leads with; it campaigns again once it may.
        let ours = p.ballot();
        step(&mut p, acc(1), nack(ours, Ballot::in_epoch(2, ours.round + 1, NodeId(2)), NackReason::Promised));
        assert_eq!(p.role(), Leadership::Follower);
        while p.role() == Leadership::Follower {
            tick(&mut p);
        }

        step(&mut p, prop(3), heartbeat(b(0, 3), false, their_decided));
        tick(&mut p);

        let expected = if stays { Leadership::Candidate } else { Leadership::Follower };
        assert_eq!(p.role(), expected, "proposer 3 has decided {their_decided} of 2 slots");
    }
}

/// Proposer 1 leads epoch 1 with window `window`, adds proposer 3 (decided at slot 1), and campaigns in
/// epoch 2. Returns it and its ballot of epoch 1.
fn leader_added_proposer_3(window: usize) -> (Proposer, Ballot) {
    let mut c = cfg(1);
    c.window = window;
    let (mut p, ballot) = leader_in_epoch_1_with(c);
    let add = MemberOp::Add { role: MemberRole::Proposer, id: NodeId(3), addr: "p3:7000".into() };
    ask_answered(&mut p, client(7), member_request_from(1, add, 1));
    assert!(proposed_config(&tick(&mut p)).is_some(), "the addition is proposed");
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[1]));
    }
    assert_eq!((p.role(), p.config().epoch, p.learner().decided()), (Leadership::Candidate, 2, Slot(2)));
    (p, ballot)
}

/// Client 7 asks for a change with `request`; the leader proposes it at `slot` and acceptors 1 to 3
/// accept it at `ballot`; the leader answers once it is decided and leads on in the new epoch.
/// Returns the new configuration and the leader's new ballot.
fn decide_change(p: &mut Proposer, request: Message, slot: u64, ballot: Ballot) -> (Config, Ballot) {
    let Message::MemberRequest(m) = &request else { panic!("a member request") };
    let req = m.req;
    ask_answered(p, client(7), request);
    let r = tick(p);
    let config = proposed_config(&r).expect("the change is proposed");
    let mut answered = None;
    for a in 1..=3 {
        answered = answered.or(the_member_reply(&step(p, acc(a), accepted(ballot, &[slot]))));
    }
    assert_eq!(answered, Some((req, None)), "answered once decided");
    let next = p.ballot();
    for a in 1..=3 {
        step(p, acc(a), promise(next, slot + 1, &[]));
    }
    assert_eq!(p.role(), Leadership::Leader, "leading on in epoch {}", config.epoch);
    (config, next)
}

/// Deadlines: a wall clock stepped back (an NTP step) does not bring a passed deadline back. The
/// leader's clock stands still until the wall clock catches up, so a change whose deadline passed is
/// never started: another leader may have fenced it off already.
#[test]
fn a_clock_stepped_back_does_not_reopen_a_deadline() {
    let (mut p, _) = leader_in_epoch_1(1); // at tick 61
    p.set_clock(1_000_000);
    ask_answered(&mut p, client(7), member_request_until(1, remove_acceptor(5), 999_000));

    p.set_clock(998_000);
    let r = tick(&mut p);

    assert!(proposed_config(&r).is_none(), "not started: {r:?}");
    for _ in 0..10 {
        assert!(proposed_config(&tick(&mut p)).is_none());
    }
}

/// Acceptor 6, being added, answers probe round `round`: incarnation 606, slot 0 decided, not let in yet.
fn joining_answer(round: u64) -> Message {
    Message::ProbeReply(ProbeReply {
        nonce: round,
        promised: Ballot::ZERO,
        decided: Slot(1),
        incarnation: 606,
        epoch: 0,
        joining: true,
        leader: None,
        challenge: 0,
        clock_ms: 0,
        written: None,
        digest: None,
    })
}
