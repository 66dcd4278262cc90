//! Clients: retries, sessions, refusals, log reads.

use super::*;

/// Exactly once: a retry of a request that is still in flight is not proposed again; the one decision
/// answers it once.
#[test]
fn retry_in_flight_is_not_proposed_twice() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));

    let r = step(&mut p, client(7), propose(1, "x"));

    assert!(r.is_empty(), "{r:?}");
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[0])).is_empty());
    }
    let r = step(&mut p, acc(3), accepted(ballot, &[0]));
    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![learn(0, cmd(7, 1, "x"))], vec![]));
}

/// Exactly once: a retry of a request already applied is answered from the client's session with the
/// slot it holds, and nothing is proposed.
#[test]
fn retry_after_apply_is_answered_from_session() {
    let mut p = restarted(1, ProposerState { round: 0, log: vec![Value::Noop, cmd(7, 1, "x"), cmd(8, 1, "y")] });
    elect(&mut p);

    let r = step(&mut p, client(7), propose(1, "x"));

    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![], vec![]));
}

/// Exactly once: a follower also answers a retry of an applied request from its session rather than
/// redirecting it (any learner knows the answer).
#[test]
fn follower_answers_applied_retry_from_session() {
    let mut p = restarted(1, ProposerState { round: 0, log: vec![cmd(7, 4, "x")] });
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 1));

    let r = step(&mut p, client(7), propose(4, "x"));

    let reply = Message::ClientReply(ClientReply { seq: 4, slot: Slot(0) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![], vec![]));
}

/// Exactly once: a request older than the client's last applied one will never be decided and is refused as stale.
#[test]
fn request_below_last_applied_seq_is_stale() {
    let mut p = restarted(1, ProposerState { round: 0, log: vec![cmd(7, 5, "x")] });
    elect(&mut p);

    let r = step(&mut p, client(7), propose(4, "old"));

    let err = Message::ClientError(ClientError { seq: 4, kind: ClientErrorKind::Stale });
    assert_eq!(r, ready_early(vec![send(client(7), err)], vec![], vec![]));
}

/// Values are at most MAX_VALUE_BYTES: a larger one is refused, one of exactly that size is proposed.
#[test]
fn value_over_the_limit_is_refused() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);

    let r = step(&mut p, client(7), propose(1, &"x".repeat(MAX_VALUE_BYTES + 1)));

    let err = Message::ClientError(ClientError { seq: 1, kind: ClientErrorKind::TooLarge });
    assert_eq!(r, ready(vec![], vec![send(client(7), err)]));
    let largest = "x".repeat(MAX_VALUE_BYTES);
    let r = step(&mut p, client(7), propose(1, &largest));
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(7, 1, &largest))]), 2)));
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

/// Reading the log: entries come in slot order without gaps; no-ops and retries that landed twice show as `None`.
#[test]
fn log_read_shows_noops_and_duplicates_as_none() {
    let log = vec![cmd(7, 1, "a"), Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut p = restarted(1, ProposerState { round: 0, log });

    let r = step(&mut p, client(9), Message::LogRead(LogRead { req: 42, from: Slot(0), limit: 10, cookie: None }));

    let entries = [Some("a"), None, None, Some("b")]
        .iter()
        .enumerate()
        .map(|(i, v)| LogEntry { slot: Slot(i as u64), value: v.map(String::from) })
        .collect();
    let reply = LogReply { req: 42, entries, decided: Slot(4) };
    assert_eq!(r, ready(vec![], vec![send(client(9), Message::LogReply(reply))]));

    let r = step(&mut p, client(9), Message::LogRead(LogRead { req: 43, from: Slot(2), limit: 1, cookie: None }));
    let reply = LogReply { req: 43, entries: vec![LogEntry { slot: Slot(2), value: None }], decided: Slot(4) };
    assert_eq!(r, ready(vec![], vec![send(client(9), Message::LogReply(reply))]));
}
