//! Clients: retries, sessions, refusals, log reads.

use super::*;

fn log_read(req: u64, from: u64, limit: u32) -> Message {
    Message::LogRead(LogRead { req, from: Slot(from), limit, linearizable: false, cookie: None })
}

fn log_reply(req: u64, entries: Vec<LogEntry>, decided: u64) -> Message {
    Message::LogReply(LogReply {
        req,
        entries,
        decided: Slot(decided),
        start: Slot(0),
        leader: None,
        linearizable: false,
    })
}

/// Exactly once: a retry of a request that is still in flight is not proposed again; the one decision
/// answers it once.
#[test]
fn retry_in_flight_is_not_proposed_twice() {
    let (mut p, ballot) = leader_in_epoch_1(1);
    step(&mut p, client(7), propose(1, "x"));

    let r = step(&mut p, client(7), propose(1, "x"));

    assert!(r.is_empty(), "{r:?}");
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[1])).is_empty());
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[1]));
    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![learn(1, cmd(7, 1, "x"))], vec![]));
}

/// Exactly once: a retry of a request already applied is answered from the client's session with the
/// slot it holds, and nothing is proposed.
#[test]
fn retry_after_apply_is_answered_from_session() {
    let (mut p, _) = restarted_leader(1, 0, &[Value::Noop, cmd(7, 1, "x"), cmd(8, 1, "y")]);

    let r = step(&mut p, client(7), propose(1, "x"));

    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(2) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![], vec![]));
}

/// Exactly once: a follower also answers a retry of an applied request from its session rather than
/// redirecting it (any learner knows the answer).
#[test]
fn follower_answers_applied_retry_from_session() {
    let mut p = restarted(1, pinned_state(0, &[cmd(7, 4, "x")]));
    step(&mut p, prop(2), heartbeat(b1(1, 2), true, 2));

    let r = step(&mut p, client(7), propose(4, "x"));

    let reply = Message::ClientReply(ClientReply { seq: 4, slot: Slot(1) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![], vec![]));
}

/// Exactly once: a request older than the client's last applied one will never be decided and is refused as stale.
#[test]
fn request_below_last_applied_seq_is_stale() {
    let (mut p, _) = restarted_leader(1, 0, &[cmd(7, 5, "x")]);

    let r = step(&mut p, client(7), propose(4, "old"));

    let err = Message::ClientError(ClientError { seq: 4, kind: ClientErrorKind::Stale });
    assert_eq!(r, ready_early(vec![send(client(7), err)], vec![], vec![]));
}

/// Sessions expire by the log's clock: once the log's clock (the newest stamp applied) is more than the
/// configuration's session lifetime past a client's last applied request, its session is gone, and a
/// retry of that request is proposed again (stamped anew) rather than answered from the session.
#[test]
fn expired_session_no_longer_answers_retries() {
    let stamped =
        |client: u64, seq: u64, at: u64| Value::Command(Command { at, ..Command::new(ClientId(client), seq, "x") });
    let lifetime = DEFAULT_SESSION_LIFETIME_MS;
    let (mut p, ballot) = restarted_leader(1, 0, &[stamped(7, 1, 1_000), stamped(8, 1, 1_000 + lifetime)]);
    let r = step(&mut p, client(7), propose(1, "x"));
    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![], vec![]), "idle for exactly the lifetime");
    p.set_clock(2_000_000_000);
    step(&mut p, client(8), propose(2, "x"));
    for a in 1..=3 {
        step(&mut p, acc(a), accepted(ballot, &[3]));
    }
    assert_eq!(p.learner().state().clock, 2_000_000_000);
    assert!(p.learner().session(ClientId(7)).is_none());

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_heard_and(&accept(ballot, 4, &[(4, stamped(7, 1, 2_000_000_000))]), &[1, 2, 3], 2)));
}

/// Values are at most MAX_VALUE_BYTES: a larger one is refused, one of exactly that size is proposed.
#[test]
fn value_over_the_limit_is_refused() {
    let (mut p, ballot) = leader_in_epoch_1(1);

    let r = step(&mut p, client(7), propose(1, &"x".repeat(MAX_VALUE_BYTES + 1)));

    let err = Message::ClientError(ClientError { seq: 1, kind: ClientErrorKind::TooLarge });
    assert_eq!(r, ready(vec![], vec![send(client(7), err)]));
    let largest = "x".repeat(MAX_VALUE_BYTES);
    let r = step(&mut p, client(7), propose(1, &largest));
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, 1, &[(1, cmd(7, 1, &largest))]), 2)));
}

/// Back-pressure: beyond `max_queue` waiting values a client is told to retry later.
#[test]
fn full_queue_answers_busy() {
    let mut c = cfg(1);
    c.max_queue = 2;
    let mut p = Proposer::new(c, ProposerState::default());
    campaign(&mut p); // a candidate queues and proposes nothing yet
    assert!(step(&mut p, client(1), propose(1, "a")).is_empty());
    assert!(step(&mut p, client(2), propose(1, "b")).is_empty());

    let r = step(&mut p, client(3), propose(1, "c"));

    let err = Message::ClientError(ClientError { seq: 1, kind: ClientErrorKind::Busy });
    assert_eq!(r, ready(vec![], vec![send(client(3), err)]));
}

/// Reading the log: entries come in slot order without gaps; no-ops, configurations and retries that landed
/// twice show as `None`. Values the proposer still caches are answered at once.
#[test]
fn log_read_shows_noops_and_duplicates_as_none() {
    let mut p = proposer(1);
    let log = pinned_log(&[cmd(7, 1, "a"), Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")]);
    step(
        &mut p,
        prop(2),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: log, decided: Slot(5), epoch: None, nonce: 0 }),
    );

    let r = step(&mut p, client(9), log_read(42, 0, 10));

    let entries = [None, Some("a"), None, None, Some("b")]
        .iter()
        .enumerate()
        .map(|(i, v)| LogEntry { slot: Slot(i as u64), value: v.map(String::from) })
        .collect();
    assert_eq!(r, ready(vec![], vec![send(client(9), log_reply(42, entries, 5))]));

    let r = step(&mut p, client(9), log_read(43, 3, 1));
    let entries = vec![LogEntry { slot: Slot(3), value: None }];
    assert_eq!(r, ready(vec![], vec![send(client(9), log_reply(43, entries, 5))]));
}

/// Retention: slots below the retention point are not served, although the proposer still caches
/// them (the store drops them at its next compaction); the page starts at the point and says so,
/// so that `log` reports them deleted and a backup's first instance is its first entry.
#[test]
fn log_read_below_the_retention_point_starts_at_it() {
    let mut p = proposer(1);
    let log = pinned_log(&[cmd(7, 1, "a"), cmd(7, 2, "b"), cmd(7, 3, "c"), cmd(8, 1, "d")]);
    step(
        &mut p,
        prop(2),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: log, decided: Slot(5), epoch: None, nonce: 0 }),
    );
    p.learner.retain(Slot(3));

    let r = step(&mut p, client(9), log_read(42, 0, 10));

    let entries =
        vec![LogEntry { slot: Slot(3), value: Some("c".into()) }, LogEntry { slot: Slot(4), value: Some("d".into()) }];
    let reply = LogReply { req: 42, entries, decided: Slot(5), start: Slot(3), leader: None, linearizable: false };
    assert_eq!(r, ready(vec![], vec![send(client(9), Message::LogReply(reply))]));
}

/// Reading the log: slots the proposer no longer caches (here: recovered from its store after a restart)
/// are read from the store, duplicates marked as the store keeps them, and the page goes to the client.
#[test]
fn log_read_of_slots_not_cached_is_served_through_a_read() {
    let log = vec![cmd(7, 1, "a"), Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut disk = store(0, &log);
    let mut p = restarted(1, disk.state.clone());

    let r = step(&mut p, client(9), log_read(42, 0, 10));

    let read = ReadRequest { id: 0, from: Slot(0), limit: 10, max_bytes: MAX_BATCH_BYTES };
    assert_eq!(r, reads_only(vec![read.clone()]));
    p.on_read(read.id, disk.read(read.from, read.limit, read.max_bytes).unwrap());
    let entries = [Some("a"), None, None, Some("b")]
        .iter()
        .enumerate()
        .map(|(i, v)| LogEntry { slot: Slot(i as u64), value: v.map(String::from) })
        .collect();
    assert_eq!(p.take_ready(), ready(vec![], vec![send(client(9), log_reply(42, entries, 4))]));
}

/// A request that waited in a proposer's queue for more than a quarter of the session lifetime is
/// dropped and counted, not proposed: a proposer cut off for an hour must not land it after its
/// session expired. The client's retry queues it again, with a fresh stamp, and it is proposed.
#[test]
fn a_request_queued_for_a_quarter_of_the_session_lifetime_is_dropped() {
    let mut p = restarted(1, pinned_state(0, &[]));
    p.set_clock(1_000_000);
    campaign(&mut p);
    let r = step(&mut p, client(7), propose(1, "x"));
    assert!(r.is_empty(), "a candidate queues the request: {r:?}");
    let later = 1_000_000 + DEFAULT_SESSION_LIFETIME_MS / QUEUE_AGE_DIVISOR + 1;
    p.set_clock(later);
    let ballot = p.ballot();
    let from = p.learner().decided().0;
    let mut last = Ready::default();
    for a in 1..=3 {
        last = step(&mut p, acc(a), promise(ballot, from, &[]));
    }
    assert_eq!(p.role(), Leadership::Leader);
    assert!(last.early.iter().all(|m| !matches!(m.msg, Message::Accept(_))), "nothing proposed: {last:?}");
    assert_eq!(p.status().counters["requests_stale"], 1);

    let r = step(&mut p, client(7), propose(1, "x"));

    let fresh = Value::Command(Command { at: later, ..Command::new(ClientId(7), 1, "x") });
    assert_eq!(r, early_only(to_heard_and(&accept(ballot, 1, &[(1, fresh)]), &[1, 2, 3], 2)));
}

/// A client that keeps retrying keeps its queued request alive: the quarter of the session lifetime
/// counts from the last copy that arrived.
#[test]
fn a_retry_keeps_a_queued_request_alive() {
    let mut p = restarted(1, pinned_state(0, &[]));
    p.set_clock(1_000_000);
    campaign(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    let max_age = DEFAULT_SESSION_LIFETIME_MS / QUEUE_AGE_DIVISOR;
    p.set_clock(1_000_000 + max_age);
    let r = step(&mut p, client(7), propose(1, "x"));
    assert!(r.is_empty(), "a retry of a queued request is not queued twice: {r:?}");
    p.set_clock(1_000_000 + max_age + max_age / 2);
    let ballot = p.ballot();
    let from = p.learner().decided().0;
    let mut last = Ready::default();
    for a in 1..=3 {
        last = step(&mut p, acc(a), promise(ballot, from, &[]));
    }

    let stamped = Value::Command(Command { at: 1_000_000, ..Command::new(ClientId(7), 1, "x") });
    assert_eq!(last.early, to_heard_and(&accept(ballot, 1, &[(1, stamped)]), &[1, 2, 3], 2));
    assert_eq!(p.status().counters["requests_stale"], 0);
}

/// The probes `r` sends to acceptors: (acceptor, round).
pub(super) fn probes(r: &Ready<ProposerOp>) -> Vec<(u32, u64)> {
    r.messages
        .iter()
        .filter_map(|o| match (&o.to, &o.msg) {
            (Node::Acceptor(a), Message::Probe(m)) => Some((a.0, m.nonce)),
            _ => None,
        })
        .collect()
}

/// Linearizable reads: the leader serves one once a quorum of acceptors answered a probe sent after
/// it arrived, still promising the leader's ballot. Reads that arrive in one step (one batch of
/// datagrams, before the runtime takes the `Ready`) share one probe round, whose probes leave after
/// every one of them arrived: a stream of reads costs a round per batch, not one per read. A read of
/// the next step gets a round of its own.
#[test]
fn linearizable_reads_of_one_step_share_one_probe_round() {
    let (mut p, ballot) = leader_in_epoch_1(1); // at tick 61
    let read = Message::LogRead(LogRead { req: 1, from: Slot(0), limit: 10, linearizable: true, cookie: None });
    p.handle(client(7), read.clone()).expect("a read");
    p.handle(client(8), read.clone()).expect("a read");

    let r = p.take_ready();

    assert_eq!(probes(&r), (1..=5).map(|a| (a, 7)).collect::<Vec<_>>(), "one round, to every acceptor");
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), report(a, 7, ballot, 1)).is_empty(), "no quorum yet");
    }
    let r = step(&mut p, acc(3), report(3, 7, ballot, 1));
    let mut served: Vec<Node> =
        r.messages.iter().filter(|o| matches!(&o.msg, Message::LogReply(m) if m.linearizable)).map(|o| o.to).collect();
    served.sort();
    assert_eq!(served, vec![client(7), client(8)], "both served on one quorum");
    let r = step(&mut p, client(9), read);
    assert_eq!(probes(&r), (1..=5).map(|a| (a, 8)).collect::<Vec<_>>(), "the next step: a round of its own");
}
