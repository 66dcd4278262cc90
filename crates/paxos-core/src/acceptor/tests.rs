//! Acceptor unit tests.
//!
//! Each test builds an acceptor from a given [`AcceptorState`], feeds it one
//! input and asserts the exact [`Ready`] it produces: the storage operations,
//! in order, the messages that leave once they are durable, and the reads of
//! the decided log it asks for. The doc line of each test names the rule of
//! Paxos (Lamport, "Paxos Made Simple", §2.2: P1a, the promise of phase 1b,
//! the acceptance rule of phase 2b), of membership (an acceptor votes in an
//! epoch only as a member pinned with its incarnation) or of the decided log
//! it checks.
//!
//! Unless a test says otherwise the acceptor is acceptor 1 of a cluster of
//! proposers 1 and 2 and acceptors 1 to 3, with incarnation [`INC`] on disk,
//! in epoch 0 (the cluster file's configuration).

use paxos_proto::{
    encode, Accept, AcceptEntry, Accepted, Ballot, CatchUp, CatchUpReply, ClientId, ClientPropose, Command, Config,
    Digest, Envelope, Epoch, Heartbeat, Member, Message, Nack, NackReason, Node, NodeId, Prepare, Probe, ProbeReply,
    Promise, PromiseEntry, SessionEntry, Slot, StateReply, Value, Written, DIGEST_START, MAX_BODY_BYTES,
    MAX_VALUE_BYTES, PROTOCOL_VERSION,
};

use crate::{
    Acceptor, AcceptorConfig, AcceptorOp, AcceptorState, Ignored, LogPage, MemStore, Membership, Outgoing, ReadRequest,
    Ready, Store, MAX_BATCH_BYTES,
};

use super::ACCEPTOR_CATCH_UP_LIMIT;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The proposers of every test cluster.
const PROPOSERS: [u32; 2] = [1, 2];

/// The incarnation of acceptor 1's store.
const INC: u64 = 11;

/// The incarnation a new acceptor draws when its store has none.
const FRESH: u64 = 99;

fn b(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

/// A ballot of epoch 1.
fn b1(round: u64, proposer: u32) -> Ballot {
    Ballot::in_epoch(1, round, NodeId(proposer))
}

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command::new(ClientId(client), seq, data))
}

fn proposer(id: u32) -> Node {
    Node::Proposer(NodeId(id))
}

fn member(id: u32, incarnation: Option<u64>) -> Member {
    Member { id: NodeId(id), addr: String::new(), incarnation }
}

/// A configuration of epoch `epoch` with proposers 1 and 2 and the acceptors `acceptors` (id, incarnation).
fn config(epoch: u32, acceptors: &[(u32, Option<u64>)]) -> Config {
    Config {
        epoch,
        acceptors: acceptors.iter().map(|(id, inc)| member(*id, *inc)).collect(),
        proposers: PROPOSERS.iter().map(|p| member(*p, None)).collect(),
        session_lifetime_ms: 3_600_000,
    }
}

/// The cluster file's configuration: acceptors 1 to 3, nobody's incarnation known.
fn genesis() -> Config {
    config(0, &[(1, None), (2, None), (3, None)])
}

/// Epoch 1 from slot 1: the genesis members, acceptor 1 pinned with `incarnation`.
fn epoch1(incarnation: u64) -> Epoch {
    Epoch { start: Slot(1), config: config(1, &[(1, Some(incarnation)), (2, Some(22)), (3, Some(33))]) }
}

/// Acceptor 1, recovered with `state`.
fn acceptor(state: AcceptorState) -> Acceptor {
    // Its pass over the decided log is over: the tests of the pass build their own.
    unscrubbed(state).scrubbed()
}

/// Acceptor 1, recovered with `state`, its pass over the decided log to come.
fn unscrubbed(state: AcceptorState) -> Acceptor {
    let cfg = AcceptorConfig {
        id: NodeId(1),
        genesis: genesis(),
        incarnation: FRESH,
        nonce_seed: 11,
        retain_slots: 0,
        lease_ticks: 20,
    };
    Acceptor::new(cfg, state)
}

/// The challenge of an acceptor's probe answers until a leader's probe renews its lease (`nonce_seed` 11).
fn first_challenge() -> u64 {
    crate::restart::nonce(11 ^ super::CHALLENGE_DOMAIN, 1)
}

/// The name of this start in an acceptor's probe answers (`nonce_seed` 11).
fn this_start() -> u64 {
    crate::restart::nonce(11 ^ super::START_DOMAIN, 0)
}

/// What the probe answers of acceptor `a` say it wrote.
fn written(a: &Acceptor) -> Option<Written> {
    Some(Written { incarnation: a.state().incarnation, start: this_start(), ops: a.state().ops })
}

/// A state of incarnation [`INC`] promised to `promised`, that accepted `accepted` (slot, ballot, value)
/// and holds every slot below `decided` in its decided log.
fn state(promised: Ballot, accepted: &[(u64, Ballot, Value)], decided: u64) -> AcceptorState {
    AcceptorState {
        incarnation: INC,
        promised,
        accepted: accepted.iter().map(|(s, b, v)| (Slot(*s), (*b, v.clone()))).collect(),
        decided: Slot(decided),
        ..AcceptorState::default()
    }
}

/// `s` in `epoch`.
fn joined(s: AcceptorState, epoch: Epoch) -> AcceptorState {
    AcceptorState { epoch: Some(epoch), ..s }
}

fn prepare(ballot: Ballot, from: u64) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from), epoch: None, wrote: vec![] })
}

/// A prepare that tells the acceptor of the ballot's epoch.
fn prepare_in(ballot: Ballot, from: u64, epoch: &Epoch) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from), epoch: Some(epoch.clone()), wrote: vec![] })
}

fn accept(ballot: Ballot, entries: &[(u64, Value)]) -> Message {
    accept_commit(ballot, 0, entries)
}

/// An accept that says every slot below `commit` is decided.
fn accept_commit(ballot: Ballot, commit: u64, entries: &[(u64, Value)]) -> Message {
    let entries = entries.iter().map(|(s, v)| AcceptEntry { slot: Slot(*s), value: v.clone() }).collect();
    Message::Accept(Accept { ballot, entries, commit: Slot(commit) })
}

fn entry(slot: u64, ballot: Ballot, value: Value) -> PromiseEntry {
    PromiseEntry { slot: Slot(slot), ballot, value }
}

/// A complete promise page of acceptor 1 (incarnation [`INC`]).
fn promise(ballot: Ballot, from: u64, to: u64, decided: u64, entries: Vec<PromiseEntry>) -> Message {
    Message::Promise(Promise {
        ballot,
        from: Slot(from),
        to: Slot(to),
        done: true,
        decided: Slot(decided),
        incarnation: INC,
        entries,
        written: None,
    })
}

fn nack(ballot: Ballot, promised: Ballot, reason: NackReason) -> Message {
    Message::Nack(Nack { ballot, promised, reason })
}

fn catch_up(from: u64) -> Message {
    Message::CatchUp(CatchUp { from: Slot(from), limit: ACCEPTOR_CATCH_UP_LIMIT, nonce: 0 })
}

fn send(to: Node, msg: Message) -> Outgoing {
    Outgoing { to, msg }
}

/// The `Accepted` for the ballot's proposer, the leader: only it counts votes.
fn accepted_to_leader(ballot: Ballot, slots: &[u64]) -> Vec<Outgoing> {
    let accepted = Accepted { ballot, slots: slots.iter().map(|s| Slot(*s)).collect(), written: None };
    vec![send(proposer(ballot.proposer.0), Message::Accepted(accepted))]
}

fn ready(persist: Vec<AcceptorOp>, messages: Vec<Outgoing>) -> Ready<AcceptorOp> {
    Ready { early: vec![], persist, messages, reads: vec![] }
}

fn accept_op(slot: u64, ballot: Ballot, value: Value) -> AcceptorOp {
    AcceptorOp::Accept { slot: Slot(slot), ballot, value }
}

fn learn_op(slot: u64, value: Value) -> AcceptorOp {
    AcceptorOp::Learn { slot: Slot(slot), value }
}

/// Feeds one message that must be handled, and returns what it produced
/// (see [`zero_nonces`] and [`unwritten`]).
fn step(a: &mut Acceptor, from: Node, msg: Message) -> Ready<AcceptorOp> {
    a.handle(from, msg).expect("the message is for an acceptor");
    let r = a.take_ready();
    unwritten(a, zero_nonces(r))
}

/// One tick, and what it produced (catch-up nonces zeroed, see [`zero_nonces`]).
fn tick(a: &mut Acceptor) -> Ready<AcceptorOp> {
    a.tick();
    let r = a.take_ready();
    unwritten(a, zero_nonces(r))
}

/// Checks that every promise and vote says how much `a` had written after this step (all of it is
/// durable before they leave), and takes that off, for the tests of the rest; the tests of lost
/// writes look at it ([`written`], probe answers).
fn unwritten(a: &Acceptor, mut r: Ready<AcceptorOp>) -> Ready<AcceptorOp> {
    for out in r.early.iter_mut().chain(r.messages.iter_mut()) {
        let said = match &mut out.msg {
            Message::Promise(p) => p.written.take(),
            Message::Accepted(v) => v.written.take(),
            _ => continue,
        };
        assert_eq!(said, written(a), "{:?}", out.msg);
    }
    r
}

/// Zeroes the nonces of catch-up requests, drawn from the node's secret seed:
/// the tests of what is asked compare the rest, and the tests of restarts read the nonce first.
fn zero_nonces(mut r: Ready<AcceptorOp>) -> Ready<AcceptorOp> {
    for out in r.early.iter_mut().chain(r.messages.iter_mut()) {
        if let Message::CatchUp(c) = &mut out.msg {
            c.nonce = 0;
        }
    }
    r
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
// Identity
// ---------------------------------------------------------------------------

/// Amnesia is visible: a store without an identity (new, or lost) gets the
/// fresh incarnation, persisted before anything else the acceptor writes,
/// and every promise names it; a store with an identity keeps its own.
#[test]
fn fresh_store_persists_its_incarnation_first() {
    let mut a = acceptor(AcceptorState::default());

    let r = step(&mut a, proposer(2), prepare(b(1, 2), 0));

    let promise = Message::Promise(Promise {
        ballot: b(1, 2),
        from: Slot(0),
        to: Slot(0),
        done: true,
        decided: Slot(0),
        incarnation: FRESH,
        entries: vec![],
        written: None,
    });
    assert_eq!(
        r,
        ready(vec![AcceptorOp::Identity(FRESH), AcceptorOp::Promise(b(1, 2))], vec![send(proposer(2), promise)])
    );
    assert!(acceptor(state(Ballot::ZERO, &[], 0)).take_ready().is_empty(), "a recovered identity stays");
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

    let entries = vec![entry(5, b(1, 2), cmd(9, 2, "a")), entry(7, b(1, 1), Value::Noop)];
    assert_eq!(
        r,
        ready(vec![AcceptorOp::Promise(b(2, 1))], vec![send(proposer(1), promise(b(2, 1), 3, 8, 0, entries))]),
        "slot 2 lies below `from` and is not reported"
    );
    assert_eq!(a.state().promised, b(2, 1));
}

/// Phase 1b on a fresh acceptor: nothing accepted means an empty, complete page starting and ending at `from`.
#[test]
fn prepare_on_fresh_acceptor_promises_empty_page() {
    let mut a = acceptor(state(Ballot::ZERO, &[], 0));

    let r = step(&mut a, proposer(2), prepare(b(1, 2), 0));

    assert_eq!(
        r,
        ready(vec![AcceptorOp::Promise(b(1, 2))], vec![send(proposer(2), promise(b(1, 2), 0, 0, 0, vec![]))])
    );
}

/// Phase 1b retransmission: a prepare equal to the promise is answered again, with nothing new to persist.
#[test]
fn prepare_with_equal_ballot_is_answered_without_persisting() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(1, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), prepare(b(2, 1), 0));

    let p = promise(b(2, 1), 0, 5, 0, vec![entry(4, b(2, 1), cmd(1, 1, "x"))]);
    assert_eq!(r, ready(vec![], vec![send(proposer(1), p)]));
}

/// P1a: a prepare below the promise is refused with a nack naming the promised ballot; nothing is persisted.
#[test]
fn prepare_with_lower_ballot_is_nacked() {
    let s = state(b(3, 2), &[(0, b(3, 2), cmd(1, 1, "x"))], 0);
    let mut a = acceptor(s.clone());

    let r = step(&mut a, proposer(1), prepare(b(2, 1), 0));

    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b(2, 1), b(3, 2), NackReason::Promised))]));
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
    assert_eq!(second, ready(vec![], vec![send(proposer(1), promise(b(2, 1), p1.to.0, 23, 0, rest))]));
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
/// ballots, request ids, stamps, decided prefix and incarnation still fits one datagram.
#[test]
fn promise_page_of_widest_entries_fits_a_datagram() {
    let top = paxos_proto::MAX_COUNTER;
    let widest = |i: u64| {
        let c = Command { at: u64::MAX, ..Command::new(ClientId(u64::MAX - i), u64::MAX, "") };
        (top - 5000 + i, b(top - 1, u32::MAX), Value::Command(c))
    };
    let accepted: Vec<_> = (0..5000).map(widest).collect();
    let mut a = acceptor(AcceptorState { incarnation: u64::MAX, ..state(b(top - 1, 2), &accepted, top - 5000) });

    a.handle(proposer(2), prepare(b(top, 2), 0)).unwrap();
    let r = a.take_ready();
    let [Outgoing { msg: msg @ Message::Promise(p), .. }] = &r.messages[..] else { panic!("{r:?}") };
    assert!(!p.done && !p.entries.is_empty());
    assert!(datagram_len(msg) <= MAX_BODY_BYTES);
}

/// Phase 1b reports the decided prefix and the incarnation: slots below `decided` are in the
/// acceptor's decided log (a new leader learns them rather than proposing there), and are not reported.
#[test]
fn promise_reports_the_decided_prefix_and_the_incarnation() {
    let mut a = acceptor(state(b(2, 1), &[(6, b(2, 1), Value::Noop)], 5));

    let r = step(&mut a, proposer(2), prepare(b(3, 2), 0));

    let p = promise(b(3, 2), 0, 7, 5, vec![entry(6, b(2, 1), Value::Noop)]);
    assert_eq!(r, ready(vec![AcceptorOp::Promise(b(3, 2))], vec![send(proposer(2), p)]));
}

// ---------------------------------------------------------------------------
// Phase 2b: accept
// ---------------------------------------------------------------------------

/// Phase 2b: an accept above the promise raises the promise and accepts every entry, all on disk
/// before the `Accepted` leaves, and the `Accepted` goes to the leader alone (followers learn from
/// its commit index).
#[test]
fn accept_with_higher_ballot_promises_accepts_and_tells_the_leader() {
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
            accepted_to_leader(b(2, 1), &[0, 1]),
        )
    );
    assert_eq!(a.state().accepted[&Slot(0)], (b(2, 1), cmd(7, 1, "x")), "a higher ballot replaces the old vote");
}

/// Phase 2b: an accept equal to the promise is accepted without a new promise on disk.
#[test]
fn accept_with_equal_ballot_accepts_without_promise_op() {
    let mut a = acceptor(state(b(2, 1), &[], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(3, cmd(7, 1, "x"))]));

    assert_eq!(r, ready(vec![accept_op(3, b(2, 1), cmd(7, 1, "x"))], accepted_to_leader(b(2, 1), &[3])));
}

/// P1a: an accept below the promise is refused with a nack naming the promise; nothing is accepted.
#[test]
fn accept_with_lower_ballot_is_nacked() {
    let s = state(b(3, 2), &[], 0);
    let mut a = acceptor(s.clone());

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(0, cmd(7, 1, "x"))]));

    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b(2, 1), b(3, 2), NackReason::Promised))]));
    assert_eq!(a.state(), &s);
}

/// Phase 2b retransmission: the same (slot, ballot, value) again is acknowledged again
/// (the first `Accepted` may have been lost) but not written twice.
#[test]
fn retransmitted_accept_is_acknowledged_without_persisting() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(7, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "x"))]));

    assert_eq!(r, ready(vec![], accepted_to_leader(b(2, 1), &[4])));
}

/// One value per slot per ballot: a second, different value under the same ballot is never voted for,
/// while the other entries of the same accept are.
#[test]
fn accept_of_a_different_value_under_the_same_ballot_is_not_acknowledged() {
    let mut a = acceptor(state(b(2, 1), &[(4, b(2, 1), cmd(7, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "forged")), (5, Value::Noop)]));

    assert_eq!(r, ready(vec![accept_op(5, b(2, 1), Value::Noop)], accepted_to_leader(b(2, 1), &[5])));
    assert_eq!(a.state().accepted[&Slot(4)], (b(2, 1), cmd(7, 1, "x")));
}

/// Slots in the decided log are decided: an accept there is neither stored nor acknowledged.
#[test]
fn accept_for_a_decided_slot_is_not_acknowledged() {
    let mut a = acceptor(state(b(2, 1), &[], 5));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(3, cmd(7, 1, "x")), (5, cmd(7, 2, "y"))]));
    assert_eq!(r, ready(vec![accept_op(5, b(2, 1), cmd(7, 2, "y"))], accepted_to_leader(b(2, 1), &[5])));

    let r = step(&mut a, proposer(1), accept(b(2, 1), &[(4, cmd(7, 1, "x"))]));
    assert_eq!(r, ready(vec![], vec![]), "an accept only for decided slots gets no answer at all");
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
// The decided log: commits, catch-up, reads
// ---------------------------------------------------------------------------

/// The decided log: what the acceptor accepted under the leader's ballot below the leader's `commit`
/// is decided and moves into its decided log, in order, after the accept's own votes; a slot it
/// accepted under another ballot stops the move (its value may not be the decided one), and the
/// acceptor fetches the rest from that leader at its next tick.
#[test]
fn commit_moves_values_of_the_same_ballot_into_the_decided_log() {
    let accepted = [(0, b(2, 1), cmd(1, 1, "a")), (1, b(1, 2), cmd(2, 1, "b")), (2, b(2, 1), cmd(1, 2, "c"))];
    let mut a = acceptor(state(b(2, 1), &accepted, 0));

    let r = step(&mut a, proposer(1), accept_commit(b(2, 1), 3, &[(3, cmd(1, 3, "d"))]));

    assert_eq!(
        r,
        ready(
            vec![accept_op(3, b(2, 1), cmd(1, 3, "d")), learn_op(0, cmd(1, 1, "a"))],
            accepted_to_leader(b(2, 1), &[3])
        )
    );
    assert_eq!(a.state().decided, Slot(1));
    assert_eq!(a.state().accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(1), Slot(2), Slot(3)]);

    let r = tick(&mut a);

    assert_eq!(r, ready(vec![], vec![send(proposer(1), catch_up(1))]), "slots 1 and 2 are fetched");
    assert!(tick(&mut a).is_empty(), "no second request before ACCEPTOR_CATCH_UP_TICKS");
}

/// The decided log: decided entries from the proposer it asked are appended in order (the decided
/// value, whatever the acceptor accepted there), and it stops asking once it holds the commit point.
#[test]
fn catch_up_reply_fills_the_decided_log_in_order() {
    let accepted = [(1, b(1, 2), cmd(2, 1, "b")), (3, b(2, 1), cmd(1, 3, "d"))];
    let mut a = acceptor(state(b(2, 1), &accepted, 1));
    step(&mut a, proposer(1), accept_commit(b(2, 1), 3, &[]));
    assert_eq!(tick(&mut a), ready(vec![], vec![send(proposer(1), catch_up(1))]));

    let reply = CatchUpReply {
        from: Slot(1),
        entries: vec![cmd(3, 1, "z"), Value::Noop],
        decided: Slot(3),
        epoch: None,
        nonce: 0,
    };
    let r = step(&mut a, proposer(1), Message::CatchUpReply(reply));

    assert_eq!(r, ready(vec![learn_op(1, cmd(3, 1, "z")), learn_op(2, Value::Noop)], vec![]));
    assert_eq!(a.state().decided, Slot(3));
    assert_eq!(a.state().accepted.keys().copied().collect::<Vec<_>>(), vec![Slot(3)]);
    for _ in 0..20 {
        assert!(tick(&mut a).is_empty(), "nothing more to fetch");
    }
}

/// Serving the decided log: a proposer's catch-up request becomes a read of the store (at most
/// ACCEPTOR_CATCH_UP_LIMIT entries, one datagram of bytes), nothing is sent until the page comes back,
/// and the page goes to the proposer that asked, with the acceptor's decided prefix.
#[test]
fn catch_up_request_is_served_through_a_read() {
    let mut store = MemStore::new(state(b(2, 1), &[], 0));
    let values = [Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let learns: Vec<_> = values.iter().enumerate().map(|(s, v)| learn_op(s as u64, v.clone())).collect();
    store.apply(&learns).unwrap();
    let mut a = acceptor(store.load().unwrap());

    let r = step(&mut a, proposer(2), Message::CatchUp(CatchUp { from: Slot(1), limit: 5000, nonce: 0 }));

    let read =
        ReadRequest { id: 0, from: Slot(1), limit: ACCEPTOR_CATCH_UP_LIMIT as usize, max_bytes: MAX_BATCH_BYTES };
    assert_eq!(r, Ready { reads: vec![read.clone()], ..ready(vec![], vec![]) });

    a.on_read(read.id, store.read(read.from, read.limit, read.max_bytes).unwrap());

    let reply = CatchUpReply { from: Slot(1), entries: values[1..].to_vec(), decided: Slot(3), epoch: None, nonce: 0 };
    assert_eq!(a.take_ready(), ready(vec![], vec![send(proposer(2), Message::CatchUpReply(reply))]));
    a.on_read(read.id, LogPage::default());
    assert!(a.take_ready().is_empty(), "a page nobody waits for is dropped");
}

/// A read for a catch-up that fails (a damaged segment of our decided log) is answered with nothing,
/// so that the proposer asks another node after its retries: an empty page would say our log ends
/// where it is only unreadable, and the proposer would ask us again for ever.
#[test]
fn a_failed_read_is_answered_with_nothing() {
    let mut a = acceptor(state(b(2, 1), &[], 3));

    let r = step(&mut a, proposer(2), Message::CatchUp(CatchUp { from: Slot(1), limit: 5000, nonce: 0 }));

    let [read] = r.reads.as_slice() else { panic!("one read: {r:?}") };
    a.on_read_failed(read.id);
    assert!(a.take_ready().is_empty(), "no answer");
    a.on_read(read.id, LogPage::default());
    assert!(a.take_ready().is_empty(), "a page of a read that failed is nobody's");
}

/// Catch-up: the proposer that told us of the most, asked [`CATCH_UP_SWITCH_AFTER`] times in a row
/// from the same slot without an answer (gone, or unable to read its log: a damaged segment answers
/// nothing), gives way to the next proposer, and so on round the configuration; its word of commits
/// does not make it the source again. Before, the acceptor asked it alone for as long as it kept
/// announcing commits (simulator `--damage-log 1`, seed 395000133: two acceptors that missed a
/// configuration never learned it, and the cluster stopped deciding).
#[test]
fn catch_up_unanswered_in_a_row_asks_the_next_proposer() {
    let mut a = acceptor(state(b(1, 1), &[], 2));
    let probe = Message::Probe(Probe { nonce: 1, decided: Slot(9), leading: false, echo: 0, wrote: vec![] });
    step(&mut a, proposer(2), probe.clone());
    let mut asked = Vec::new();
    while asked.len() < 8 {
        let r = tick(&mut a);
        asked.extend(r.messages.iter().filter(|o| matches!(o.msg, Message::CatchUp(_))).map(|o| o.to));
        // Proposer 2 keeps telling us of its commits; proposer 1 does not answer either.
        step(&mut a, proposer(2), probe.clone());
    }
    let (p1, p2) = (proposer(1), proposer(2));
    assert_eq!(asked, [p2, p2, p2, p1, p1, p1, p2, p2]);
}

/// Probe answers claim the digest of the acceptor's decided log at its latest multiple of 8 slots
/// (proposers compare it with their own, `crate::digest`): after 10 slots, the chain over the first 8;
/// after 16 learned from a commit, over 16; none once its log restarted beyond what it applied.
#[test]
fn probe_answers_claim_the_digest_of_the_decided_log() {
    let value = |i: u64| cmd(1, i + 1, &format!("v{i}"));
    let mut s = state(b(1, 1), &[], 0);
    for i in 0..10 {
        s.apply(&learn_op(i, value(i)));
    }
    let mut a = acceptor(s);
    let claim = |r: Ready<AcceptorOp>| {
        r.messages.iter().find_map(|o| match &o.msg {
            Message::ProbeReply(p) => Some(p.digest),
            _ => None,
        })
    };
    let probe = |nonce| Message::Probe(Probe { nonce, decided: Slot(0), leading: false, echo: 0, wrote: vec![] });
    let chain = |n: u64| (0..n).fold(DIGEST_START, |c, i| Digest::fold(c, Slot(i), &value(i)));
    assert_eq!(claim(step(&mut a, proposer(1), probe(1))), Some(Some(Digest { slot: Slot(8), chain: chain(8) })));
    let entries: Vec<(u64, Value)> = (10..16).map(|i| (i, value(i))).collect();
    step(&mut a, proposer(1), accept_commit(b(1, 1), 16, &entries));
    assert_eq!(claim(step(&mut a, proposer(1), probe(2))), Some(Some(Digest { slot: Slot(16), chain: chain(16) })));
    let mut restarted = a.state.clone();
    restarted.apply(&AcceptorOp::Retain(Slot(40)));
    let mut a = acceptor(restarted);
    assert_eq!(claim(step(&mut a, proposer(1), probe(3))), Some(None));
}

/// A probe tells the acceptor how far the proposer decided: an acceptor behind it fetches the rest
/// from that proposer (a rebuilt acceptor copies the log this way).
#[test]
fn probe_with_a_decided_prefix_ahead_makes_the_acceptor_catch_up() {
    let mut a = acceptor(state(b(1, 1), &[], 2));
    step(
        &mut a,
        proposer(2),
        Message::Probe(Probe { nonce: 1, decided: Slot(9), leading: false, echo: 0, wrote: vec![] }),
    );

    let r = tick(&mut a);

    assert_eq!(r, ready(vec![], vec![send(proposer(2), catch_up(2))]));
}

/// An acceptor of a cluster that retains (`retain_slots` 8), with `state`, that heard of decided
/// slots up to 100000 from proposer 2 and asked it for the rest: returns the nonce it asked with.
fn retaining_and_asking(state: AcceptorState) -> (Acceptor, u64) {
    let cfg = AcceptorConfig {
        id: NodeId(1),
        genesis: genesis(),
        incarnation: FRESH,
        nonce_seed: 11,
        retain_slots: 8,
        lease_ticks: 20,
    };
    let mut a = Acceptor::new(cfg, state);
    step(
        &mut a,
        proposer(2),
        Message::Probe(Probe { nonce: 1, decided: Slot(100_000), leading: false, echo: 0, wrote: vec![] }),
    );
    a.tick();
    let r = a.take_ready();
    let [Outgoing { msg: Message::CatchUp(c), .. }] = r.messages.as_slice() else {
        panic!("one catch-up request: {r:?}")
    };
    assert_ne!(c.nonce, 0);
    (a, c.nonce)
}

/// Retention: a proposer whose log starts beyond our decided prefix (far beyond: 2^16 slots and more)
/// answers our request with its nonce: we copy the state its log built (a page at a time, with the
/// copy's own nonce), and our decided log restarts at its decided prefix with that state and the
/// epoch in force there, which the log can no longer tell.
#[test]
fn the_answer_to_our_request_restarts_the_log_with_the_proposers_state() {
    let (mut a, nonce) = retaining_and_asking(state(b(1, 1), &[], 2));
    let epoch = epoch1(INC);
    let reply =
        CatchUpReply { from: Slot(90_000), entries: vec![Value::Noop], decided: Slot(100_000), epoch: None, nonce };

    let r = step(&mut a, proposer(2), Message::CatchUpReply(reply));

    assert!(r.persist.is_empty());
    let [Outgoing { to, msg: Message::StateRequest(asked) }] = r.messages.as_slice() else { panic!("{r:?}") };
    assert_eq!((*to, asked.after), (proposer(2), None));
    let session = SessionEntry { client: ClientId(7), seq: 2, slot: Slot(99_999), at: 40 };
    let page = StateReply {
        nonce: asked.nonce,
        at: Slot(100_000),
        epoch: Some(epoch.clone()),
        clock: 50,
        sessions: vec![session],
        more: false,
    };
    assert!(a.handle(proposer(2), Message::StateReply(StateReply { nonce: asked.nonce ^ 1, ..page.clone() })).is_err());

    let r = step(&mut a, proposer(2), Message::StateReply(page));

    let at = Slot(100_000);
    let sessions = AcceptorOp::Sessions { clock: 50, first: true, sessions: vec![session] };
    assert_eq!(r.persist, vec![AcceptorOp::Retain(at), AcceptorOp::Join(epoch), sessions]);
    assert_eq!((a.state.start, a.state.decided, a.state.epoch_number()), (at, at, 1));
    assert_eq!(a.state.log.session(ClientId(7)).map(|s| s.seq), Some(2));
}

/// Retention: an answer that does not carry our request's nonce (a key holder's forgery, or an
/// answer to an older request) restarts nothing, however plausible.
#[test]
fn an_answer_without_our_nonce_restarts_nothing() {
    for wrong in [0, 1] {
        let (mut a, nonce) = retaining_and_asking(state(b(1, 1), &[], 2));
        let reply = CatchUpReply {
            from: Slot(10),
            entries: vec![Value::Noop],
            decided: Slot(100_000),
            epoch: None,
            nonce: if wrong == 0 { 0 } else { nonce ^ 1 },
        };

        let r = step(&mut a, proposer(2), Message::CatchUpReply(reply));

        assert!(r.persist.is_empty(), "{r:?}");
        assert_eq!((a.state.start, a.state.decided), (Slot(0), Slot(2)));
    }
}

/// A catch-up answer that starts where our log starts (beyond slot 0, after retention) carries the
/// epoch in force there, and echoes the request's nonce.
#[test]
fn a_catch_up_from_the_start_of_a_retained_log_carries_the_epoch_in_force() {
    let mut s = state(b(1, 1), &[], 20);
    s.start = Slot(12);
    s.epoch = Some(epoch1(INC));
    let mut a = acceptor(s);
    let read = step(&mut a, proposer(2), Message::CatchUp(CatchUp { from: Slot(3), limit: 10, nonce: 77 }));
    let read = read.reads.first().cloned().expect("a read");
    let entries = vec![crate::Stored { value: Value::Noop, duplicate: false }; 2];
    let page = |from| LogPage { from: Slot(from), entries: entries.clone(), start: Slot(12) };

    a.on_read(read.id, page(12));

    let reply = CatchUpReply {
        from: Slot(12),
        entries: vec![Value::Noop; 2],
        decided: Slot(20),
        epoch: Some(epoch1(INC)),
        nonce: 77,
    };
    assert_eq!(a.take_ready(), ready(vec![], vec![send(proposer(2), Message::CatchUpReply(reply))]));

    // From further on: no epoch.
    let read = step(&mut a, proposer(2), Message::CatchUp(CatchUp { from: Slot(14), limit: 10, nonce: 78 }));
    let read = read.reads.first().cloned().expect("a read");
    a.on_read(read.id, page(14));
    let reply =
        CatchUpReply { from: Slot(14), entries: vec![Value::Noop; 2], decided: Slot(20), epoch: None, nonce: 78 };
    assert_eq!(a.take_ready(), ready(vec![], vec![send(proposer(2), Message::CatchUpReply(reply))]));
}

// ---------------------------------------------------------------------------
// Membership and epochs
// ---------------------------------------------------------------------------

/// Epoch 0: any member of the cluster file votes, whatever its incarnation; an acceptor the cluster
/// file does not list votes for nothing (NotMember) and says it waits to be added.
#[test]
fn in_epoch_0_every_listed_acceptor_votes() {
    let mut a = acceptor(state(Ballot::ZERO, &[], 0));
    assert_eq!((a.membership(), a.status().state.as_str(), a.status().epoch), (Membership::Up, "up", 0));
    assert_eq!(step(&mut a, proposer(1), prepare(b(1, 1), 0)).persist, vec![AcceptorOp::Promise(b(1, 1))]);

    let cfg = AcceptorConfig {
        id: NodeId(9),
        genesis: genesis(),
        incarnation: FRESH,
        nonce_seed: 11,
        retain_slots: 0,
        lease_ticks: 20,
    };
    let mut stranger = Acceptor::new(cfg, state(Ballot::ZERO, &[], 0));
    assert_eq!((stranger.membership(), stranger.status().state.as_str()), (Membership::Joining, "joining"));

    let r = step(&mut stranger, proposer(1), prepare(b(1, 1), 0));

    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b(1, 1), Ballot::ZERO, NackReason::NotMember))]));
}

/// Amnesia: from epoch 1 on an acceptor votes only as a member pinned with its own incarnation; one
/// the configuration pins with another (it lost its state) refuses prepares and accepts of the epoch
/// with NotMember, writes nothing, and reports itself rebuilding.
#[test]
fn acceptor_pinned_with_another_incarnation_refuses_to_vote() {
    let s = joined(state(b1(1, 1), &[], 1), epoch1(INC + 1));
    let mut a = acceptor(s.clone());
    assert_eq!(
        (a.membership(), a.status().state.as_str(), a.status().epoch),
        (Membership::Rebuilding, "rebuilding", 1)
    );

    let r = step(&mut a, proposer(1), prepare_in(b1(2, 1), 1, &epoch1(INC + 1)));
    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b1(2, 1), b1(1, 1), NackReason::NotMember))]));

    let r = step(&mut a, proposer(1), accept_commit(b1(2, 1), 1, &[(1, Value::Noop)]));
    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b1(2, 1), b1(1, 1), NackReason::NotMember))]));
    assert_eq!(a.state(), &s, "an acceptor that may not vote changes nothing");

    let probe = step(
        &mut a,
        proposer(2),
        Message::Probe(Probe { nonce: 5, decided: Slot(1), leading: false, echo: 0, wrote: vec![] }),
    );
    let reply = ProbeReply {
        nonce: 5,
        promised: b1(1, 1),
        decided: Slot(1),
        incarnation: INC,
        epoch: 1,
        joining: true,
        leader: None,
        challenge: first_challenge(),
        clock_ms: 0,
        written: written(&a),
        digest: None,
    };
    assert_eq!(probe, ready(vec![], vec![send(proposer(2), Message::ProbeReply(reply))]));
}

/// Amnesia: a member pinned with its own incarnation votes in the epoch it joined.
#[test]
fn acceptor_pinned_with_its_incarnation_votes() {
    let mut a = acceptor(joined(state(b1(1, 1), &[], 1), epoch1(INC)));
    assert_eq!(a.membership(), Membership::Up);

    let r = step(&mut a, proposer(1), accept_commit(b1(2, 1), 1, &[(1, Value::Noop)]));

    assert_eq!(
        r,
        ready(
            vec![AcceptorOp::Promise(b1(2, 1)), accept_op(1, b1(2, 1), Value::Noop)],
            accepted_to_leader(b1(2, 1), &[1])
        )
    );
}

/// Epochs: a ballot of a later epoch than the acceptor joined is refused with UnknownEpoch, whether
/// an accept or a prepare that does not say where the epoch starts and who its members are.
#[test]
fn ballot_of_an_unknown_epoch_is_refused() {
    let s = state(b(3, 1), &[], 0);
    let mut a = acceptor(s.clone());

    let r = step(&mut a, proposer(1), accept(b1(1, 1), &[(0, Value::Noop)]));
    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b1(1, 1), b(3, 1), NackReason::UnknownEpoch))]));

    let r = step(&mut a, proposer(2), prepare(b1(1, 2), 0));
    assert_eq!(r, ready(vec![], vec![send(proposer(2), nack(b1(1, 2), b(3, 1), NackReason::UnknownEpoch))]));
    assert_eq!(a.state(), &s);
}

/// Epochs: once joined, a ballot of an older epoch is below every ballot of the new one and is
/// refused as such (Promised), whatever its round.
#[test]
fn ballot_of_an_older_epoch_is_refused_as_promised() {
    let mut a = acceptor(joined(state(b1(1, 1), &[], 1), epoch1(INC)));

    let r = step(&mut a, proposer(2), prepare(b(1_000, 2), 1));

    assert_eq!(r, ready(vec![], vec![send(proposer(2), nack(b(1_000, 2), b1(1, 1), NackReason::Promised))]));
}

/// Stoppable Paxos: an acceptor joins an epoch from its prepare once its decided log holds every slot
/// before the epoch; when it holds all but the stop sign, it learns the stop sign from the prepare
/// itself (the configuration it carries) in the same write as the join and the promise.
#[test]
fn prepare_of_a_new_epoch_is_joined_once_the_stop_sign_is_the_only_slot_missing() {
    let pinning = Value::Config(epoch1(INC).config);
    let mut a = acceptor(state(b(1, 1), &[(0, b(1, 1), pinning.clone())], 0));

    let r = step(&mut a, proposer(1), prepare_in(b1(2, 1), 1, &epoch1(INC)));

    assert_eq!(
        r,
        ready(
            vec![learn_op(0, pinning), AcceptorOp::Join(epoch1(INC)), AcceptorOp::Promise(b1(2, 1))],
            vec![send(proposer(1), promise(b1(2, 1), 1, 1, 1, vec![]))],
        )
    );
    assert_eq!((a.state().epoch_number(), a.membership()), (1, Membership::Up));
}

/// Stoppable Paxos: an acceptor whose decided log ends before the epoch's stop sign does not join it
/// (whoever later finds it in the epoch must be able to copy the slots before from it): it refuses with
/// UnknownEpoch and asks the proposer for the missing slots; once it holds all but the stop sign, the
/// prepare again makes it join.
#[test]
fn prepare_of_a_new_epoch_waits_for_the_decided_log_to_reach_it() {
    let epoch = Epoch { start: Slot(5), config: epoch1(INC).config };
    let mut a = acceptor(state(b(1, 1), &[], 2));

    let r = step(&mut a, proposer(1), prepare_in(b1(2, 1), 5, &epoch));

    let refused = nack(b1(2, 1), b(1, 1), NackReason::UnknownEpoch);
    assert_eq!(r, ready(vec![], vec![send(proposer(1), catch_up(2)), send(proposer(1), refused)]));
    assert_eq!(a.state().epoch_number(), 0);

    let reply = CatchUpReply {
        from: Slot(2),
        entries: vec![Value::Noop, Value::Noop],
        decided: Slot(5),
        epoch: None,
        nonce: 0,
    };
    let r = step(&mut a, proposer(1), Message::CatchUpReply(reply));
    assert_eq!(
        r,
        ready(vec![learn_op(2, Value::Noop), learn_op(3, Value::Noop)], vec![send(proposer(1), catch_up(4))])
    );

    let r = step(&mut a, proposer(1), prepare_in(b1(2, 1), 5, &epoch));

    let stop = Value::Config(epoch.config.clone());
    assert_eq!(
        r,
        ready(
            vec![learn_op(4, stop), AcceptorOp::Join(epoch), AcceptorOp::Promise(b1(2, 1))],
            vec![send(proposer(1), promise(b1(2, 1), 5, 5, 5, vec![]))],
        )
    );
}

/// Epochs: joining an epoch voids what older ballots accepted from its first slot on (nothing of an
/// older epoch can be chosen there any more), so the promise reports none of it.
#[test]
fn joining_an_epoch_voids_older_votes_in_its_slots() {
    let pinning = Value::Config(epoch1(INC).config);
    let mut a = acceptor(state(b(2, 1), &[(0, b(2, 1), pinning), (1, b(2, 1), cmd(1, 1, "x"))], 0));

    let r = step(&mut a, proposer(1), prepare_in(b1(3, 1), 1, &epoch1(INC)));

    let [Outgoing { msg: Message::Promise(p), .. }] = &r.messages[..] else { panic!("{r:?}") };
    assert_eq!((p.entries.len(), p.decided), (0, Slot(1)));
    assert!(a.state().accepted.is_empty());
}

/// Epochs: the decided log learns a configuration as it learns any value, and the acceptor joins the
/// epoch that configuration starts and votes in it.
#[test]
fn a_committed_configuration_is_joined_and_followed() {
    let mut next = epoch1(INC).config;
    next.proposers.push(member(3, None));
    let mut a = acceptor(state(b(1, 1), &[(0, b(1, 1), Value::Config(next.clone()))], 0));

    let r = step(&mut a, proposer(1), accept_commit(b(1, 1), 1, &[]));

    let epoch = Epoch { start: Slot(1), config: next };
    assert_eq!(r, ready(vec![learn_op(0, Value::Config(epoch.config.clone())), AcceptorOp::Join(epoch)], vec![]));
    let r = step(&mut a, proposer(1), accept_commit(b1(2, 1), 1, &[(1, Value::Noop)]));
    assert_eq!(r.messages, accepted_to_leader(b1(2, 1), &[1]));
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
    let mut a = acceptor(state(Ballot::ZERO, &[], 0));
    let hb = Heartbeat {
        ballot: b(1, 1),
        leader: true,
        decided: Slot(0),
        known: Slot(0),
        damaged: false,
        written: vec![],
        digest: None,
    };

    assert_eq!(a.handle(proposer(1), Message::Heartbeat(hb)), Err(Ignored("acceptor: not an acceptor message")));
    assert!(a.take_ready().is_empty());
}

/// Membership: a proposer the configuration does not name is not a proposer of this cluster; its
/// prepare must neither raise the promise (which would lock out the real proposers) nor be answered.
#[test]
fn prepare_from_a_proposer_outside_the_cluster_is_ignored() {
    let s = state(b(1, 1), &[], 0);
    let mut a = acceptor(s.clone());

    assert_eq!(
        a.handle(proposer(99), prepare(b(1 << 40, 99), 0)),
        Err(Ignored("acceptor: a ballot of a proposer that is no member of its epoch"))
    );
    assert!(a.take_ready().is_empty());
    assert_eq!(a.state(), &s);
}

// ---------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------

/// Durability: folding the persisted operations of a run onto the recovered state gives exactly the
/// state the acceptor answered from, so a restart recovers every promise, vote and decided value it
/// ever sent or holds; a store that applied them reads the decided log back.
#[test]
fn folding_persisted_ops_reproduces_the_state() {
    let start = state(b(1, 2), &[(0, b(1, 2), cmd(5, 1, "a")), (2, b(1, 2), Value::Noop)], 0);
    let mut a = acceptor(start.clone());
    let inputs = [
        prepare(b(2, 1), 0),
        accept(b(2, 1), &[(0, cmd(5, 1, "a")), (1, cmd(6, 1, "b")), (2, Value::Noop)]),
        accept_commit(b(2, 1), 2, &[(1, cmd(6, 1, "b"))]),
        prepare(b(1, 1), 0),
        accept(b(4, 2), &[(0, Value::Noop), (3, cmd(6, 2, "c"))]),
        prepare(b(5, 1), 2),
        Message::CatchUp(CatchUp { from: Slot(0), limit: 10, nonce: 0 }),
    ];

    let mut disk = MemStore::new(start);
    let mut persisted = 0;
    for msg in inputs {
        let from = match &msg {
            Message::Prepare(p) => Node::Proposer(p.ballot.proposer),
            Message::Accept(m) => Node::Proposer(m.ballot.proposer),
            _ => proposer(1),
        };
        a.handle(from, msg).unwrap();
        let ops = a.take_ready().persist;
        persisted += ops.len() as u64;
        disk.apply(&ops).unwrap();
        assert_eq!(&disk.load().unwrap(), a.state());
    }
    let mut want = state(b(5, 1), &[(2, b(2, 1), Value::Noop), (3, b(4, 2), cmd(6, 2, "c"))], 2);
    want.log.apply(Slot(0), &cmd(5, 1, "a"));
    want.log.apply(Slot(1), &cmd(6, 1, "b"));
    want.ops = persisted;
    assert_eq!(disk.load().unwrap(), want);
    let log: Vec<_> = disk.read(Slot(0), 10, 1 << 20).unwrap().entries.into_iter().map(|e| e.value).collect();
    assert_eq!(log, vec![cmd(5, 1, "a"), cmd(6, 1, "b")]);
    assert!(acceptor(want).take_ready().is_empty(), "a restart writes nothing");
}

// ---------------------------------------------------------------------------
// Remote input at the edges
// ---------------------------------------------------------------------------

/// A probe changes nothing and is answered with the promised ballot, the decided prefix, the
/// incarnation, the epoch and whether it may vote, with the probe's nonce.
#[test]
fn probe_is_answered_with_the_promise_and_persists_nothing() {
    let mut a = acceptor(state(b(4, 2), &[], 3));

    let r = step(
        &mut a,
        proposer(1),
        Message::Probe(Probe { nonce: 99, decided: Slot(0), leading: false, echo: 0, wrote: vec![] }),
    );

    let reply = ProbeReply {
        nonce: 99,
        promised: b(4, 2),
        decided: Slot(3),
        incarnation: INC,
        epoch: 0,
        joining: false,
        leader: None,
        challenge: first_challenge(),
        clock_ms: 0,
        written: Some(Written { incarnation: INC, start: this_start(), ops: 0 }),
        digest: None,
    };
    assert_eq!(r, ready(vec![], vec![send(proposer(1), Message::ProbeReply(reply))]));
}

/// Pre-vote: an acceptor names the proposer of the ballot it promised in its probe answers while that
/// proposer's lease lasts (two heartbeats, `lease_ticks` 20 here). A new vote in its accept starts or
/// renews the lease, and so does its probe as leader that echoes the challenge of the acceptor's last
/// answer, which spends that challenge. Nothing renews it that an eavesdropper could replay: an accept
/// with no new vote, a probe with a spent challenge. A follower's probe renews nothing, a higher promise
/// ends the lease at once, and a promise alone starts none.
#[test]
fn probe_answers_name_the_leader_while_its_lease_lasts() {
    let mut a = acceptor(state(Ballot::ZERO, &[], 0));
    // Proposer `from` probes, as leader echoing `echo` or not; the answer's leader and challenge.
    let probe = |a: &mut Acceptor, from: u32, leading: bool, echo: u64| {
        let r =
            step(a, proposer(from), Message::Probe(Probe { nonce: 7, decided: Slot(0), leading, echo, wrote: vec![] }));
        match &r.messages[..] {
            [Outgoing { msg: Message::ProbeReply(reply), .. }] => (reply.leader, reply.challenge),
            other => panic!("one probe answer, got {other:?}"),
        }
    };
    let ticks = |a: &mut Acceptor, n: u32| (0..n).for_each(|_| a.tick());
    step(&mut a, proposer(2), prepare(b(4, 2), 0));
    assert_eq!(probe(&mut a, 1, false, 0).0, None, "a promise alone: no lease");

    let accept_x = accept(b(4, 2), &[(0, cmd(7, 1, "x"))]);
    step(&mut a, proposer(2), accept_x.clone());
    assert_eq!(probe(&mut a, 1, false, 0).0, Some(NodeId(2)), "an accept starts the lease");
    ticks(&mut a, 19);
    assert_eq!(probe(&mut a, 2, false, 0).0, Some(NodeId(2)), "19 ticks later it still holds");
    a.tick();
    let (leader, challenge) = probe(&mut a, 1, false, 0);
    assert_eq!(leader, None, "20 ticks: over (a follower's probe renewed nothing)");
    step(&mut a, proposer(2), accept_x);
    assert_eq!(a.lease_holder(), None, "a replayed accept brings no new vote: nothing");

    assert_eq!(probe(&mut a, 2, true, 0), (None, challenge), "a leader's probe that echoes nothing: nothing");
    let (leader, next) = probe(&mut a, 2, true, challenge);
    assert_eq!(leader, Some(NodeId(2)), "one that echoes the last answer's challenge starts it again");
    assert_ne!(next, challenge, "and spends that challenge");
    ticks(&mut a, 15);
    assert_eq!(probe(&mut a, 2, true, challenge), (Some(NodeId(2)), next), "a replay of that probe: nothing");
    ticks(&mut a, 5);
    assert_eq!(a.lease_holder(), None, "so the lease ran out 20 ticks after the live probe");
    let (leader, current) = probe(&mut a, 2, true, next);
    assert_eq!(leader, Some(NodeId(2)), "the leader's next probe renews it");
    ticks(&mut a, 15);
    assert_eq!(probe(&mut a, 1, false, 0).0, Some(NodeId(2)), "renewed 15 ticks ago");

    step(&mut a, proposer(1), prepare(b(5, 1), 0));
    assert_eq!(a.lease_holder(), None, "a higher promise ends it");
    assert_eq!(probe(&mut a, 2, true, current).0, None, "and the old leader's probe does not bring it back");
    assert_eq!(probe(&mut a, 1, true, current).0, Some(NodeId(1)), "the new leader's does");
}

// ---------------------------------------------------------------------------
// Bounded damage: what even a member with the key cannot do in one message
// ---------------------------------------------------------------------------

/// A prepare or accept above the ceiling of the clock is refused, and
/// changes nothing: no promise near the codec's bound, ever.
#[test]
fn rounds_above_the_ceiling_of_the_clock_are_refused() {
    let mut a = acceptor(state(Ballot::ZERO, &[], 0));
    let now = crate::ROUND_CEILING_EPOCH_SECS + 1_000;
    a.set_clock(now * 1000);
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
/// acceptor knows is refused whole; a commit point far ahead is believed
/// at most that far beyond the decided prefix.
#[test]
fn slots_move_at_most_one_step_per_message() {
    let mut a = acceptor(state(b(1, 1), &[(10, b(1, 1), cmd(1, 1, "x"))], 0));
    let far = 11 + crate::MAX_SLOT_STEP;
    assert!(a.handle(proposer(1), accept(b(1, 1), &[(12, Value::Noop), (far, Value::Noop)])).is_err());
    assert_eq!(a.take_ready(), Ready::default());
    let r = step(&mut a, proposer(1), accept(b(1, 1), &[(far - 1, Value::Noop)]));
    assert_eq!(r.persist.len(), 1, "just within the step is accepted");
    step(&mut a, proposer(1), accept_commit(b(1, 1), paxos_proto::MAX_COUNTER, &[]));
    assert_eq!(a.commit, Slot(crate::MAX_SLOT_STEP), "a commit point moves one step at most");
}

/// A restarted acceptor reads the decided log it had at start, a page at a time, before a proposer
/// asks for it ([`crate::scrub`]), so that its runtime says a damaged segment at once (`/health`, the
/// counter): the page is asked for at the first tick; the pass ends with the page that reaches the end
/// of the log, or with the first read that fails, which answers nobody; then nothing is read until
/// the next pass, which starts its pause later from the log's first slot (a segment may rot while
/// the node runs). With the defect `scrub-once` there is no next pass.
#[test]
fn a_restarted_acceptor_reads_its_decided_log_and_again_after_a_pause() {
    let log = [Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    for (intact, once) in [(true, false), (false, false), (true, true)] {
        let mut a = unscrubbed(state(b(1, 1), &[], 3)).with_scrub_again_after(30);
        if once {
            a = a.with_defects(crate::Defects { scrub_once: true, ..Default::default() });
        }
        let r = tick(&mut a);
        let [read] = r.reads.as_slice() else { panic!("the first tick reads the log: {r:?}") };
        assert_eq!((read.from, read.limit), (Slot(0), crate::SCRUB_PAGE_ENTRIES));
        assert!(r.messages.is_empty(), "{r:?}");
        if intact {
            let entries = log.iter().map(|v| crate::Stored { value: v.clone(), duplicate: false }).collect();
            a.on_read(read.id, LogPage { start: Slot(0), from: Slot(0), entries });
        } else {
            a.on_read_failed(read.id);
        }
        assert!(a.take_ready().is_empty(), "intact {intact}: the pass answers nobody");
        for _ in 0..30 {
            assert!(tick(&mut a).is_empty(), "intact {intact}: the pass is over");
        }
        assert_eq!(a.damaged(), !intact);
        let r = tick(&mut a);
        if once {
            assert!(r.is_empty(), "scrub-once: no next pass {r:?}");
        } else {
            let [again] = r.reads.as_slice() else { panic!("intact {intact}: the next pass: {r:?}") };
            assert_eq!(again.from, Slot(0), "the next pass reads the log from its first slot");
            let entries = log.iter().map(|v| crate::Stored { value: v.clone(), duplicate: false }).collect();
            a.on_read(again.id, LogPage { start: Slot(0), from: Slot(0), entries });
            assert!(!a.damaged(), "intact {intact}: a pass that read it all clears the mark");
        }
    }
}

/// A catch-up read that fails marks the acceptor damaged (its runtime says so in `/health`) and brings
/// its next pass forward, from a day to a retry's pause (here 10 ticks): a pass that then reads the
/// whole log clears the mark (the error passed), one that fails keeps it. A read
/// that succeeds meanwhile (a page above the damage) proves nothing: with the defect `any-read-clears`
/// it clears the mark.
#[test]
fn a_failed_read_is_read_again_soon_and_a_clean_pass_clears_the_mark() {
    let log = || {
        let entries = (0..3).map(|_| crate::Stored { value: Value::Noop, duplicate: false }).collect();
        LogPage { start: Slot(0), from: Slot(0), entries }
    };
    for any_read_clears in [false, true] {
        let defects = crate::Defects { any_read_clears, ..Default::default() };
        let mut a = unscrubbed(state(b(1, 1), &[], 3))
            .with_scrub_again_after(1000)
            .with_scrub_retry_after(10)
            .with_defects(defects);
        let r = tick(&mut a);
        let [read] = r.reads.as_slice() else { panic!("the first pass: {r:?}") };
        a.on_read(read.id, log());
        let catch_up = |a: &mut Acceptor, from: u64| {
            let r = step(a, proposer(2), Message::CatchUp(CatchUp { from: Slot(from), limit: 5, nonce: 0 }));
            let [read] = r.reads.as_slice() else { panic!("one read: {r:?}") };
            read.id
        };
        let id = catch_up(&mut a, 1);
        a.on_read_failed(id);
        assert!(a.damaged());
        let id = catch_up(&mut a, 2);
        a.on_read(id, LogPage { start: Slot(0), from: Slot(2), entries: log().entries[2..].to_vec() });
        assert_eq!(a.damaged(), !any_read_clears, "a page above the damage proves nothing");
        if any_read_clears {
            continue;
        }
        // The pause counts from the failure, at tick 1.
        for t in 2..11 {
            assert!(tick(&mut a).reads.is_empty(), "no pass before the retry's pause: {t}");
        }
        let r = tick(&mut a);
        let [again] = r.reads.as_slice() else { panic!("the retry: {r:?}") };
        a.on_read_failed(again.id);
        assert!(a.damaged(), "it failed again");
        // The pause counts from the first tick after the failed pass (it doubles from the second one on).
        for t in 12..22 {
            assert!(tick(&mut a).reads.is_empty(), "a retry's pause: {t}");
        }
        let r = tick(&mut a);
        let [again] = r.reads.as_slice() else { panic!("the second retry: {r:?}") };
        a.on_read(again.id, log());
        assert!(!a.damaged(), "the whole log read: the error passed");
    }
}

// ---------------------------------------------------------------------------
// Writes a disk lost
// ---------------------------------------------------------------------------

/// Acceptor 1 of epoch 1, pinned with [`INC`], promised `b1(3, 1)`, with a vote at slot 2, whose
/// store held 40 operations when this start began.
fn restarted_with_40_ops() -> Acceptor {
    let mut s = joined(state(b1(3, 1), &[(2, b1(3, 1), Value::Noop)], 2), epoch1(INC));
    s.ops = 40;
    acceptor(s)
}

fn probe_claiming(wrote: Written) -> Message {
    Message::Probe(Probe { nonce: 7, decided: Slot(2), leading: false, echo: 0, wrote: vec![wrote] })
}

/// Lost synced writes: a proposer sends back what an answer of an earlier start of ours said we had
/// written (as this incarnation), and it is more than our store held when this start began. Our
/// disk lost writes it had synced (a zeroed tail, a data dir rolled back), and our promises and votes
/// may lack some we made: we become a new incarnation, durably before we answer, which the
/// configuration does not pin, so we vote no more (NotMember) and rebuild as after a lost disk; the
/// answer names the new incarnation and says we cannot vote, and the counter says why.
#[test]
fn an_acceptor_told_it_wrote_more_than_it_held_rebuilds_as_a_new_incarnation() {
    let mut a = restarted_with_40_ops();
    assert_eq!(a.membership(), Membership::Up);
    let earlier = this_start() ^ 1;

    let r = step(&mut a, proposer(2), probe_claiming(Written { incarnation: INC, start: earlier, ops: 41 }));

    let new = crate::restart::nonce(11 ^ super::START_DOMAIN, 1);
    assert_ne!(new, INC);
    assert_eq!(r.persist, vec![AcceptorOp::Reincarnate(new)]);
    let [Outgoing { msg: Message::ProbeReply(reply), .. }] = r.messages.as_slice() else {
        panic!("one probe answer: {r:?}")
    };
    assert_eq!((reply.incarnation, reply.joining), (new, true));
    assert_eq!(reply.written, Some(Written { incarnation: new, start: this_start(), ops: 41 }));
    assert_eq!(a.membership(), Membership::Rebuilding);
    assert_eq!(a.status().counters.get("writes_lost"), Some(&1));
    let r = step(&mut a, proposer(1), prepare_in(b1(4, 1), 1, &epoch1(INC)));
    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b1(4, 1), b1(3, 1), NackReason::NotMember))]));
    let r = step(&mut a, proposer(1), accept(b1(3, 1), &[(3, Value::Noop)]));
    assert_eq!(r, ready(vec![], vec![send(proposer(1), nack(b1(3, 1), b1(3, 1), NackReason::NotMember))]));

    // The same claim again (a retransmitted probe) is of another incarnation now: nothing more.
    let r = step(&mut a, proposer(2), probe_claiming(Written { incarnation: INC, start: earlier, ops: 41 }));
    assert!(r.persist.is_empty());
    assert_eq!(a.status().counters.get("writes_lost"), Some(&1));
}

/// Lost synced writes, no false alarm: a claim of at most what the store held at this start, a
/// claim of this start (which counts what was written since), and a claim of another incarnation
/// (the one before a lost disk) all say nothing was lost; the acceptor votes on, writing nothing.
#[test]
fn claims_of_what_the_store_kept_or_of_this_start_change_nothing() {
    let mut a = restarted_with_40_ops();
    let claims = [
        Written { incarnation: INC, start: this_start() ^ 1, ops: 40 },
        Written { incarnation: INC, start: this_start() ^ 1, ops: 3 },
        Written { incarnation: INC, start: this_start(), ops: 400 },
        Written { incarnation: INC + 1, start: this_start() ^ 1, ops: 400 },
    ];
    for claim in claims {
        let r = step(&mut a, proposer(2), probe_claiming(claim));
        assert!(r.persist.is_empty(), "{claim:?}: {r:?}");
        assert_eq!(a.membership(), Membership::Up, "{claim:?}");
    }
    assert_eq!(a.status().counters.get("writes_lost"), Some(&0));
}

/// Lost synced writes, the count: every operation made durable counts once, and folding a new
/// incarnation in keeps counting, so that an answer never says less than the disk holds.
#[test]
fn the_count_of_writes_grows_with_every_operation_folded() {
    let mut s = AcceptorState::default();
    s.apply(&AcceptorOp::Identity(5));
    s.apply(&AcceptorOp::Promise(b(1, 1)));
    s.apply(&AcceptorOp::Promise(b(1, 1)));
    s.apply(&AcceptorOp::Reincarnate(6));
    assert_eq!((s.incarnation, s.ops), (6, 4));
}

/// Lost synced writes: a prepare carries the same claim as a probe (a candidate sends what the
/// acceptor last told it), checked before the acceptor promises: an acceptor that finds it lost
/// writes promises nothing as the old incarnation, but rebuilds.
#[test]
fn a_prepare_that_says_more_was_written_gets_no_promise() {
    let mut a = restarted_with_40_ops();
    let wrote = vec![Written { incarnation: INC, start: this_start() ^ 1, ops: 41 }];
    let prepare = Message::Prepare(Prepare { ballot: b1(4, 1), from: Slot(1), epoch: Some(epoch1(INC)), wrote });

    let r = step(&mut a, proposer(1), prepare);

    let new = crate::restart::nonce(11 ^ super::START_DOMAIN, 1);
    assert_eq!(
        r,
        ready(
            vec![AcceptorOp::Reincarnate(new)],
            vec![send(proposer(1), nack(b1(4, 1), b1(3, 1), NackReason::NotMember))]
        )
    );
    assert_eq!(a.membership(), Membership::Rebuilding);
}
