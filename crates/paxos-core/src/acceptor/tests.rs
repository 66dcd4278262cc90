//! Acceptor unit tests.
//!
//! Each test builds an acceptor from a given [`AcceptorState`], feeds it one
//! input and asserts the exact [`Ready`] it produces: the storage operations,
//! in order, and the messages that leave once they are durable. The doc line
//! of each test names the rule of Paxos (Lamport, "Paxos Made Simple", §2.2:
//! P1a, the promise of phase 1b, the acceptance rule of phase 2b) it checks.

use paxos_proto::{
    encode, Accept, AcceptEntry, Accepted, Ballot, ClientId, ClientPropose, Command, Envelope, Heartbeat, Message,
    Nack, Node, NodeId, Prepare, Promise, PromiseEntry, Slot, Trim, Value, MAX_BODY_BYTES, MAX_VALUE_BYTES,
    PROTOCOL_VERSION,
};

use crate::{Acceptor, AcceptorOp, AcceptorState, Ignored, Outgoing, Ready};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The proposers of every test cluster.
const PROPOSERS: [u32; 2] = [1, 2];

fn b(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command { client: ClientId(client), seq, data: data.into() })
}

fn proposer(id: u32) -> Node {
    Node::Proposer(NodeId(id))
}

/// Acceptor 1 of a cluster with proposers 1 and 2, recovered with `state`.
fn acceptor(state: AcceptorState) -> Acceptor {
    Acceptor::new(NodeId(1), PROPOSERS.iter().map(|p| NodeId(*p)).collect(), state)
}

/// A state promised to `promised` that accepted `accepted` (slot, ballot, value) and trimmed below `trimmed`.
fn state(promised: Ballot, accepted: &[(u64, Ballot, Value)], trimmed: u64) -> AcceptorState {
    AcceptorState {
        promised,
        accepted: accepted.iter().map(|(s, b, v)| (Slot(*s), (*b, v.clone()))).collect(),
        trimmed_below: Slot(trimmed),
    }
}

fn prepare(ballot: Ballot, from: u64) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from) })
}

fn accept(ballot: Ballot, entries: &[(u64, Value)]) -> Message {
    let entries = entries.iter().map(|(s, v)| AcceptEntry { slot: Slot(*s), value: v.clone() }).collect();
    Message::Accept(Accept { ballot, entries })
}

fn entry(slot: u64, ballot: Ballot, value: Value) -> PromiseEntry {
    PromiseEntry { slot: Slot(slot), ballot, value }
}

fn send(to: Node, msg: Message) -> Outgoing {
    Outgoing { to, msg }
}

/// The same `Accepted` to every proposer, in configuration order.
fn accepted_to_all(ballot: Ballot, slots: &[u64]) -> Vec<Outgoing> {
    let accepted = Accepted { ballot, slots: slots.iter().map(|s| Slot(*s)).collect() };
    PROPOSERS.iter().map(|p| send(proposer(*p), Message::Accepted(accepted.clone()))).collect()
}

fn ready(persist: Vec<AcceptorOp>, messages: Vec<Outgoing>) -> Ready<AcceptorOp> {
    Ready { early: vec![], persist, messages }
}

fn accept_op(slot: u64, ballot: Ballot, value: Value) -> AcceptorOp {
    AcceptorOp::Accept { slot: Slot(slot), ballot, value }
}

/// Feeds one message that must be handled, and returns what it produced.
fn step(a: &mut Acceptor, from: Node, msg: Message) -> Ready<AcceptorOp> {
    a.handle(from, msg).expect("the message is for an acceptor");
    a.take_ready()
}

/// The length of `msg` as one datagram from acceptor 1 to proposer 1.
fn datagram_len(msg: &Message) -> usize {
    let env = Envelope {
        version: PROTOCOL_VERSION,
        cluster: "test".into(),
        from: Node::Acceptor(NodeId(1)),
        to: proposer(1),
        msg: msg.clone(),
    };
    let mut buf = Vec::new();
    encode(&env, &mut buf).expect("the datagram fits");
    buf.len()
}

// ---------------------------------------------------------------------------
// Phase 1b: prepare
// ---------------------------------------------------------------------------

/// Phase 1b: a prepare above the promise is promised on disk first, and the promise reports
/// every slot accepted at or above `from` with the ballot it was accepted under.
#[test]
fn prepare_with_higher_ballot_persists_promise_and_reports_accepted() {
    let s =
        state(b(1, 2), &[(2, b(1, 2), cmd(9, 1, "old")), (5, b(1, 2), cmd(9, 2, "a")), (7, b(1, 1), Value::Noop)], 0);
    let mut a = acceptor(s);

    let r = step(&mut a, proposer(1), prepare(b(2, 1), 3));

    let promise = Promise {
        ballot: b(2, 1),
        from: Slot(3),
        to: Slot(8),
        done: true,
        trimmed_below: Slot(0),
        entries: vec![entry(5, b(1, 2), cmd(9, 2, "a")), entry(7, b(1, 1), Value::Noop)],
    };
    assert_eq!(
        r,
        ready(vec![AcceptorOp::Promise(b(2, 1))], vec![send(proposer(1), Message::Promise(promise))]),
        "slot 2 lies below `from` and is not reported"
    );
    assert_eq!(a.state().promised, b(2, 1));
}

/// Phase 1b on a fresh acceptor: nothing accepted means an empty, complete page starting and ending at `from`.
#[test]
fn prepare_on_fresh_acceptor_promises_empty_page() {
    let mut a = acceptor(AcceptorState::default());

    let r = step(&mut a, proposer(2), prepare(b(1, 2), 0));

    let promise =
        Promise { ballot: b(1, 2), from: Slot(0), to: Slot(0), done: true, trimmed_below: Slot(0), entries: vec![] };
    assert_eq!(r, ready(vec![AcceptorOp::Promise(b(1, 2))], vec![send(proposer(2), Message::Promise(promise))]));
}

/// Phase 1b retransmission: a prepare equal to the promise is answered again, with nothing new to persist.
#[test]
fn prepare_with_equal_ballot_is_answered_without_persisting() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(1, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), prepare(b(2, 1), 0));

    let promise = Promise {
        ballot: b(2, 1),
        from: Slot(0),
        to: Slot(5),
        done: true,
        trimmed_below: Slot(0),
        entries: vec![entry(4, b(2, 1), cmd(1, 1, "x"))],
    };
    assert_eq!(r, ready(vec![], vec![send(proposer(1), Message::Promise(promise))]));
}

/// P1a: a prepare below the promise is refused with a nack naming the promised ballot; nothing is persisted.
#[test]
fn prepare_with_lower_ballot_is_nacked() {
    let s = state(b(3, 2), &[(0, b(3, 2), cmd(1, 1, "x"))], 0);
    let mut a = acceptor(s.clone());

    let r = step(&mut a, proposer(1), prepare(b(2, 1), 0));

    let nack = Nack { ballot: b(2, 1), promised: b(3, 2) };
    assert_eq!(r, ready(vec![], vec![send(proposer(1), Message::Nack(nack))]));
    assert_eq!(a.state(), &s, "a refused prepare changes nothing");
}

/// Ballots are owned: a prepare whose ballot belongs to another proposer than the sender is forged and ignored.
#[test]
fn prepare_with_another_proposers_ballot_is_ignored() {
    let s = state(b(1, 1), &[], 0);
    let mut a = acceptor(s.clone());

    assert_eq!(
        a.handle(proposer(1), prepare(b(9, 2), 0)),
        Err(Ignored("acceptor: prepare with another proposer's ballot"))
    );
    assert!(a.take_ready().is_empty());
    assert_eq!(a.state(), &s);
}

/// Phase 1b paging: a promise that does not fit one datagram stops before the datagram limit with
/// `done = false` and `to` just past its last entry; preparing again from `to` with the same ballot
/// continues where it stopped, persists nothing more, and the last page says `done = true`.
#[test]
fn promise_is_paged_and_the_next_page_starts_at_to() {
    // Twelve values of 8 KiB at even slots: seven fill a page, five remain.
    let big = |i: u64| cmd(100 + i, 1, &"v".repeat(MAX_VALUE_BYTES));
    let accepted: Vec<_> = (0..12).map(|i| (2 * i, b(1, 2), big(i))).collect();
    let mut a = acceptor(state(b(1, 2), &accepted, 0));

    let first = step(&mut a, proposer(1), prepare(b(2, 1), 0));
    assert_eq!(first.persist, vec![AcceptorOp::Promise(b(2, 1))]);
    let [Outgoing { to, msg: Message::Promise(p1) }] = &first.messages[..] else {
        panic!("one promise expected, got {:?}", first.messages)
    };
    assert_eq!(*to, proposer(1));
    let per_page = p1.entries.len() as u64;
    assert!((1..12).contains(&per_page), "a first page of {per_page} entries is not a partial page");
    assert_eq!((p1.ballot, p1.from, p1.done), (b(2, 1), Slot(0), false));
    assert_eq!(p1.to, Slot(2 * (per_page - 1) + 1), "`to` is one past the last slot on the page");
    let want: Vec<_> = accepted[..per_page as usize].iter().map(|(s, b, v)| entry(*s, *b, v.clone())).collect();
    assert_eq!(p1.entries, want);
    assert!(datagram_len(&first.messages[0].msg) <= MAX_BODY_BYTES);

    // `to` falls on an odd slot where nothing was accepted: the next page starts there anyway.
    let second = step(&mut a, proposer(1), prepare(b(2, 1), p1.to.0));
    let rest: Vec<_> = accepted[per_page as usize..].iter().map(|(s, b, v)| entry(*s, *b, v.clone())).collect();
    let p2 = Promise { ballot: b(2, 1), from: p1.to, to: Slot(23), done: true, trimmed_below: Slot(0), entries: rest };
    assert_eq!(second, ready(vec![], vec![send(proposer(1), Message::Promise(p2))]));
}

/// Phase 1b paging with 20 values of 8 KiB: following `to` page by page reports every accepted slot
/// exactly once, in order, each page within one datagram, and only the last page is `done`.
#[test]
fn promise_pages_cover_every_accepted_slot_once() {
    let accepted: Vec<_> =
        (0..20).map(|i| (i, b(1, 2), cmd(i, 1, &"\"".repeat(MAX_VALUE_BYTES / 2)))).collect::<Vec<_>>();
    let mut a = acceptor(state(b(1, 2), &accepted, 0));

    let mut from = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = step(&mut a, proposer(1), prepare(b(2, 1), from));
        let [Outgoing { msg: Message::Promise(p), .. }] = &r.messages[..] else { panic!("{r:?}") };
        assert!(datagram_len(&r.messages[0].msg) <= MAX_BODY_BYTES, "page {pages} exceeds a datagram");
        assert_eq!(p.from, Slot(from));
        seen.extend(p.entries.iter().map(|e| e.slot.0));
        pages += 1;
        if p.done {
            break;
        }
        from = p.to.0;
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert!(pages >= 3, "20 values of 8 KiB take at least three datagrams, got {pages} pages");
}

/// Phase 1b paging at the widest numbers: a page of many small values with maximal slots,
/// ballots and request ids still fits one datagram.
#[test]
fn promise_page_of_widest_entries_fits_a_datagram() {
    let wide = |i: u64| (u64::MAX - 5000 + i, b(u64::MAX - 1, u32::MAX), cmd(u64::MAX - i, u64::MAX, ""));
    let accepted: Vec<_> = (0..5000).map(wide).collect();
    let mut a = acceptor(state(b(u64::MAX - 1, u32::MAX), &accepted, 0));

    a.handle(proposer(2), prepare(b(u64::MAX, 2), 0)).unwrap();
    let r = a.take_ready();
    let [Outgoing { msg: msg @ Message::Promise(p), .. }] = &r.messages[..] else { panic!("{r:?}") };
    assert!(!p.done && !p.entries.is_empty());
    assert!(datagram_len(msg) <= MAX_BODY_BYTES);
}

// ---------------------------------------------------------------------------
// Phase 2b: accept
// ---------------------------------------------------------------------------

/// Phase 2b: an accept above the promise raises the promise and accepts every entry, all on disk
/// before the `Accepted` leaves, and the `Accepted` goes to every proposer so that every learner counts it.
#[test]
fn accept_with_higher_ballot_promises_accepts_and_tells_every_proposer() {
    let mut a = acceptor(state(b(1, 2), &[(0, b(1, 2), cmd(5, 1, "old"))], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(0, cmd(7, 1, "x")), (1, Value::Noop)]));

    assert_eq!(
        r,
        ready(
            vec![
                AcceptorOp::Promise(b(2, 1)),
                accept_op(0, b(2, 1), cmd(7, 1, "x")),
                accept_op(1, b(2, 1), Value::Noop),
            ],
            accepted_to_all(b(2, 1), &[0, 1]),
        )
    );
    assert_eq!(a.state().accepted[&Slot(0)], (b(2, 1), cmd(7, 1, "x")), "a higher ballot replaces the old vote");
}

/// Phase 2b: an accept equal to the promise is accepted without a new promise on disk.
#[test]
fn accept_with_equal_ballot_accepts_without_promise_op() {
    let mut a = acceptor(state(b(2, 1), &[], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(3, cmd(7, 1, "x"))]));

    assert_eq!(r, ready(vec![accept_op(3, b(2, 1), cmd(7, 1, "x"))], accepted_to_all(b(2, 1), &[3])));
}

/// P1a: an accept below the promise is refused with a nack naming the promise; nothing is accepted.
#[test]
fn accept_with_lower_ballot_is_nacked() {
    let s = state(b(3, 2), &[], 0);
    let mut a = acceptor(s.clone());

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(0, cmd(7, 1, "x"))]));

    let nack = Nack { ballot: b(2, 1), promised: b(3, 2) };
    assert_eq!(r, ready(vec![], vec![send(proposer(1), Message::Nack(nack))]));
    assert_eq!(a.state(), &s);
}

/// Phase 2b retransmission: the same (slot, ballot, value) again is acknowledged again
/// (the first `Accepted` may have been lost) but not written twice.
#[test]
fn retransmitted_accept_is_acknowledged_without_persisting() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(7, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "x"))]));

    assert_eq!(r, ready(vec![], accepted_to_all(b(2, 1), &[4])));
}

/// One value per slot per ballot: a second, different value under the same ballot is never voted for,
/// while the other entries of the same accept are.
#[test]
fn accept_of_a_different_value_under_the_same_ballot_is_not_acknowledged() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(7, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "forged")), (5, Value::Noop)]));

    assert_eq!(r, ready(vec![accept_op(5, b(2, 1), Value::Noop)], accepted_to_all(b(2, 1), &[5])));
    assert_eq!(a.state().accepted[&Slot(4)], (b(2, 1), cmd(7, 1, "x")));
}

/// Trimmed slots are decided and learned by every proposer: an accept there is neither stored nor acknowledged.
#[test]
fn accept_for_a_trimmed_slot_is_not_acknowledged() {
    let mut a = acceptor(state(b(2, 1), &[], 5));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(3, cmd(7, 1, "x")), (5, cmd(7, 2, "y"))]));
    assert_eq!(r, ready(vec![accept_op(5, b(2, 1), cmd(7, 2, "y"))], accepted_to_all(b(2, 1), &[5])));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "x"))]));
    assert_eq!(r, ready(vec![], vec![]), "an accept only for trimmed slots gets no answer at all");
}

/// Ballots are owned: an accept whose ballot belongs to another proposer than the sender is forged and ignored.
#[test]
fn accept_with_another_proposers_ballot_is_ignored() {
    let s = state(b(1, 1), &[], 0);
    let mut a = acceptor(s.clone());

    assert_eq!(
        a.handle(proposer(2), accept(b(5, 1), &[(0, Value::Noop)])),
        Err(Ignored("acceptor: accept with another proposer's ballot"))
    );
    assert!(a.take_ready().is_empty());
    assert_eq!(a.state(), &s);
}

// ---------------------------------------------------------------------------
// Trim
// ---------------------------------------------------------------------------

/// Garbage collection: a trim persists the new trim point and forgets every accepted slot below it.
#[test]
fn trim_forgets_slots_below() {
    let s = state(b(2, 1), &[(1, b(2, 1), Value::Noop), (3, b(2, 1), cmd(7, 1, "x")), (4, b(2, 1), Value::Noop)], 0);
    let mut a = acceptor(s);

    let r = step(&mut a, proposer(1), Message::Trim(Trim { below: Slot(4) }));

    assert_eq!(r, ready(vec![AcceptorOp::Trim(Slot(4))], vec![]));
    assert_eq!(a.state(), &state(b(2, 1), &[(4, b(2, 1), Value::Noop)], 4));
}

/// Garbage collection never goes back: a trim at or below the trim point is a no-op.
#[test]
fn lower_or_equal_trim_is_a_no_op() {
    let s = state(b(2, 1), &[(4, b(2, 1), Value::Noop)], 4);
    let mut a = acceptor(s.clone());

    for below in [4, 2, 0] {
        let r = step(&mut a, proposer(2), Message::Trim(Trim { below: Slot(below) }));
        assert!(r.is_empty(), "trim below {below}: {r:?}");
    }
    assert_eq!(a.state(), &s);
}

/// A promise after a trim says where the acceptor forgot, so that the new leader learns those slots from peers.
#[test]
fn promise_after_trim_reports_the_trim_point() {
    let mut a = acceptor(state(b(2, 1), &[(6, b(2, 1), Value::Noop)], 5));

    let r = step(&mut a, proposer(2), prepare(b(3, 2), 0));

    let promise = Promise {
        ballot: b(3, 2),
        from: Slot(0),
        to: Slot(7),
        done: true,
        trimmed_below: Slot(5),
        entries: vec![entry(6, b(2, 1), Value::Noop)],
    };
    assert_eq!(r, ready(vec![AcceptorOp::Promise(b(3, 2))], vec![send(proposer(2), Message::Promise(promise))]));
}

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

/// Only proposers drive an acceptor: the same prepare from a client or an acceptor is ignored.
#[test]
fn messages_from_clients_and_acceptors_are_ignored() {
    let s = state(b(1, 1), &[], 0);
    let mut a = acceptor(s.clone());

    for from in [Node::Client(ClientId(1)), Node::Acceptor(NodeId(2))] {
        assert_eq!(a.handle(from, prepare(b(5, 1), 0)), Err(Ignored("acceptor: sender is not a proposer")));
        assert_eq!(
            a.handle(from, Message::ClientPropose(ClientPropose { seq: 1, value: "x".into() })),
            Err(Ignored("acceptor: sender is not a proposer"))
        );
    }
    assert!(a.take_ready().is_empty());
    assert_eq!(a.state(), &s);
}

/// An acceptor answers only acceptor messages: a heartbeat from a proposer is ignored.
#[test]
fn non_acceptor_message_from_a_proposer_is_ignored() {
    let mut a = acceptor(AcceptorState::default());
    let hb = Heartbeat { ballot: b(1, 1), leader: true, decided: Slot(0), known: Slot(0) };

    assert_eq!(a.handle(proposer(1), Message::Heartbeat(hb)), Err(Ignored("acceptor: not an acceptor message")));
    assert!(a.take_ready().is_empty());
}

/// Membership: a proposer the cluster file does not name is not a proposer of this cluster; its
/// prepare must neither raise the promise (which would lock out the real proposers) nor be answered.
#[test]
fn prepare_from_a_proposer_outside_the_cluster_is_ignored() {
    let s = state(b(1, 1), &[], 0);
    let mut a = acceptor(s.clone());

    assert!(a.handle(proposer(99), prepare(b(u64::MAX, 99), 0)).is_err());
    assert!(a.take_ready().is_empty());
    assert_eq!(a.state(), &s);
}

// ---------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------

/// Durability: folding the persisted operations of a run onto the recovered state gives exactly the
/// state the acceptor answered from, so a restart recovers every promise and vote it ever sent.
#[test]
fn folding_persisted_ops_reproduces_the_state() {
    let start = state(b(1, 2), &[(0, b(1, 2), cmd(5, 1, "a")), (2, b(1, 2), Value::Noop)], 0);
    let mut a = acceptor(start.clone());
    let inputs = [
        prepare(b(2, 1), 0),
        accept(b(2, 1), &[(0, cmd(5, 1, "a")), (1, cmd(6, 1, "b")), (2, Value::Noop)]),
        accept(b(2, 1), &[(1, cmd(6, 1, "b"))]),
        prepare(b(1, 1), 0),
        Message::Trim(Trim { below: Slot(1) }),
        accept(b(4, 2), &[(0, Value::Noop), (3, cmd(6, 2, "c"))]),
        prepare(b(5, 1), 2),
        Message::Trim(Trim { below: Slot(0) }),
    ];

    let mut disk = start;
    for msg in inputs {
        let from = match &msg {
            Message::Prepare(p) => Node::Proposer(p.ballot.proposer),
            Message::Accept(m) => Node::Proposer(m.ballot.proposer),
            _ => proposer(1),
        };
        a.handle(from, msg).unwrap();
        for op in a.take_ready().persist {
            disk.apply(&op);
        }
        assert_eq!(&disk, a.state());
    }
    assert_eq!(
        disk,
        state(b(5, 1), &[(1, b(2, 1), cmd(6, 1, "b")), (2, b(2, 1), Value::Noop), (3, b(4, 2), cmd(6, 2, "c"))], 1)
    );

    let mut compacted = AcceptorState::default();
    for op in a.state().snapshot_ops() {
        compacted.apply(&op);
    }
    assert_eq!(&compacted, a.state(), "a compacted store recovers the same state");
}

// ---------------------------------------------------------------------------
// Remote input at the edges
// ---------------------------------------------------------------------------

/// A probe changes nothing and is answered with the promised ballot and the probe's nonce.
#[test]
fn probe_is_answered_with_the_promise_and_persists_nothing() {
    let mut a = acceptor(state(b(4, 2), &[], 0));

    let r = step(&mut a, proposer(1), Message::Probe(paxos_proto::Probe { nonce: 99 }));

    let reply = paxos_proto::ProbeReply { nonce: 99, promised: b(4, 2) };
    assert_eq!(r.persist, vec![]);
    assert_eq!(r.messages, vec![Outgoing { to: proposer(1), msg: Message::ProbeReply(reply) }]);
}

// ---------------------------------------------------------------------------
// Bounded damage: what even a member with the key cannot do in one message
// ---------------------------------------------------------------------------

/// A prepare or accept above the ceiling of the clock is refused, and
/// changes nothing: no promise near the codec's bound, ever.
#[test]
fn rounds_above_the_ceiling_of_the_clock_are_refused() {
    let mut a = acceptor(AcceptorState::default());
    let now = crate::ROUND_CEILING_EPOCH_SECS + 1_000;
    a.set_clock(now);
    let ceiling = crate::round_ceiling(now + crate::CLOCK_SKEW_SECS);
    assert!(ceiling < paxos_proto::MAX_COUNTER / 1000, "the ceiling is far below the codec's bound");
    for round in [ceiling + 1, paxos_proto::MAX_COUNTER] {
        assert!(a.handle(proposer(1), prepare(b(round, 1), 0)).is_err());
        assert!(a.handle(proposer(1), accept(b(round, 1), &[(0, cmd(1, 1, "x"))])).is_err());
        assert_eq!(a.take_ready(), Ready::default());
    }
    let r = step(&mut a, proposer(1), prepare(b(ceiling, 1), 0));
    assert_eq!(r.persist, vec![AcceptorOp::Promise(b(ceiling, 1))], "up to the ceiling, a round is a round");
}

/// An accept of a slot more than MAX_SLOT_STEP beyond everything the
/// acceptor knows is refused whole; a trim far ahead moves the trim point
/// at most that far.
#[test]
fn slots_move_at_most_one_step_per_message() {
    let mut a = acceptor(state(b(1, 1), &[(10, b(1, 1), cmd(1, 1, "x"))], 0));
    let far = 11 + crate::MAX_SLOT_STEP;
    assert!(a.handle(proposer(1), accept(b(1, 1), &[(12, Value::Noop), (far, Value::Noop)])).is_err());
    assert_eq!(a.take_ready(), Ready::default());
    let r = step(&mut a, proposer(1), accept(b(1, 1), &[(far - 1, Value::Noop)]));
    assert_eq!(r.persist.len(), 1, "just within the step is accepted");
    let r = step(&mut a, proposer(1), Message::Trim(Trim { below: Slot(paxos_proto::MAX_COUNTER) }));
    assert_eq!(r.persist, vec![AcceptorOp::Trim(Slot(far + crate::MAX_SLOT_STEP))], "a trim moves one step at most");
}
