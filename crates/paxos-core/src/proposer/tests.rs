//! Proposer unit tests.
//!
//! Each test drives a proposer to a state (with the helpers below), then feeds
//! it one input — a message or a tick — and asserts the exact [`Ready`] it
//! produces: the messages that may leave before its writes are durable (`early`:
//! a leader's accepts, answers for decided values), the storage operations, in
//! order, and the messages that leave once they are durable. The doc line of
//! each test names the rule of Multi-Paxos (phase 1 and 2 of "Paxos Made
//! Simple", §2–3) or of the product (SPEC.md's guarantees) it checks.
//!
//! Unless a test says otherwise the cluster has proposers 1 and 2 and acceptors
//! 1 to 5, with the default configuration: heartbeat every 10 ticks, election
//! timeout 50 ticks, retransmission after 3 ticks.
//!
//! Every new proposer first probes the acceptors (a `Probe` at its first tick,
//! again every 3 ticks to those that have not answered) and does not
//! campaign before a majority answered. `probed` and `campaign` answer the probe
//! from acceptors 1 to 3, so tests about later phases start at the same ticks as
//! before: a lone proposer campaigns at tick 50.

use paxos_proto::{
    encode, Accept, AcceptEntry, Accepted, Ballot, CatchUp, CatchUpReply, ClientError, ClientErrorKind, ClientId,
    ClientPropose, ClientRedirect, ClientReply, Command, Envelope, Heartbeat, LogEntry, LogRead, LogReply, Message,
    Nack, Node, NodeId, Prepare, Probe, ProbeReply, Promise, PromiseEntry, Slot, Value, MAX_DATAGRAM_BYTES,
    MAX_VALUE_BYTES, PROTOCOL_VERSION,
};

use std::collections::VecDeque;

use crate::{
    Acceptor, AcceptorState, Ignored, Leadership, Outgoing, Proposer, ProposerConfig, ProposerOp, ProposerState, Ready,
    MAX_BATCH_BYTES,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const ACCEPTORS: [u32; 5] = [1, 2, 3, 4, 5];

/// An accepted slot as a promise reports it: slot, the ballot it was accepted under, and the value.
type Reported = (u64, Ballot, Value);

fn b(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command { client: ClientId(client), seq, data: data.into() })
}

fn acc(id: u32) -> Node {
    Node::Acceptor(NodeId(id))
}

fn prop(id: u32) -> Node {
    Node::Proposer(NodeId(id))
}

fn client(id: u64) -> Node {
    Node::Client(ClientId(id))
}

fn send(to: Node, msg: Message) -> Outgoing {
    Outgoing { to, msg }
}

fn ready(persist: Vec<ProposerOp>, messages: Vec<Outgoing>) -> Ready<ProposerOp> {
    Ready { early: vec![], persist, messages }
}

/// A Ready whose `early` messages (client answers for decided values, a leader's accepts) may leave before
/// `persist` is durable, then the rest.
fn ready_early(early: Vec<Outgoing>, persist: Vec<ProposerOp>, messages: Vec<Outgoing>) -> Ready<ProposerOp> {
    Ready { early, persist, messages }
}

/// A Ready of early messages only: nothing to write and nothing that waits for a write (how a leader's
/// accepts leave when nothing else happened).
fn early_only(early: Vec<Outgoing>) -> Ready<ProposerOp> {
    ready_early(early, vec![], vec![])
}

fn cfg(id: u32) -> ProposerConfig {
    ProposerConfig::new(NodeId(id), vec![NodeId(1), NodeId(2)], ACCEPTORS.iter().map(|a| NodeId(*a)).collect())
}

/// Proposer `id` of the two, starting from nothing.
fn proposer(id: u32) -> Proposer {
    Proposer::new(cfg(id), ProposerState::default())
}

/// Proposer `id` of the two, recovered with `state`.
fn restarted(id: u32, state: ProposerState) -> Proposer {
    Proposer::new(cfg(id), state)
}

fn learn(slot: u64, value: Value) -> ProposerOp {
    ProposerOp::Learn { slot: Slot(slot), value }
}

fn propose(seq: u64, value: &str) -> Message {
    Message::ClientPropose(ClientPropose { seq, value: value.into() })
}

fn heartbeat(ballot: Ballot, leader: bool, decided: u64) -> Message {
    Message::Heartbeat(Heartbeat { ballot, leader, decided: Slot(decided), known: Slot(decided) })
}

fn accepted(ballot: Ballot, slots: &[u64]) -> Message {
    Message::Accepted(Accepted { ballot, slots: slots.iter().map(|s| Slot(*s)).collect() })
}

fn accept(ballot: Ballot, entries: &[(u64, Value)]) -> Message {
    let entries = entries.iter().map(|(s, v)| AcceptEntry { slot: Slot(*s), value: v.clone() }).collect();
    Message::Accept(Accept { ballot, entries })
}

fn prepare(ballot: Ballot, from: u64) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from) })
}

/// A promise page of `ballot` covering `[from, to)` with `entries` (slot, accepted ballot, value).
fn page(ballot: Ballot, from: u64, to: u64, done: bool, entries: &[Reported]) -> Message {
    Message::Promise(Promise {
        ballot,
        from: Slot(from),
        to: Slot(to),
        done,
        trimmed_below: Slot(0),
        entries: entries
            .iter()
            .map(|(s, b, v)| PromiseEntry { slot: Slot(*s), ballot: *b, value: v.clone() })
            .collect(),
    })
}

/// A complete promise of `ballot` from `from` reporting `entries`.
fn promise(ballot: Ballot, from: u64, entries: &[Reported]) -> Message {
    let to = entries.iter().map(|e| e.0 + 1).max().unwrap_or(from).max(from);
    page(ballot, from, to, true, entries)
}

/// `msg` to every acceptor, in configuration order.
fn to_acceptors(msg: &Message) -> Vec<Outgoing> {
    ACCEPTORS.iter().map(|a| send(acc(*a), msg.clone())).collect()
}

/// `msg` to every acceptor and then to the peer proposer `peer`: how a leader sends an accept.
fn to_acceptors_and(msg: &Message, peer: u32) -> Vec<Outgoing> {
    let mut out = to_acceptors(msg);
    out.push(send(prop(peer), msg.clone()));
    out
}

/// Feeds one message that must be handled, and returns what it produced.
fn step(p: &mut Proposer, from: Node, msg: Message) -> Ready<ProposerOp> {
    p.handle(from, msg).expect("the message is for a proposer");
    p.take_ready()
}

/// One tick, and what it produced.
fn tick(p: &mut Proposer) -> Ready<ProposerOp> {
    p.tick();
    p.take_ready()
}

/// The start-up probe of a proposer of incarnation 0 (the default configuration).
fn probe() -> Message {
    Message::Probe(Probe { nonce: 0 })
}

/// An acceptor's answer to the probe when it promised no real ballot.
fn probe_promise() -> Message {
    Message::ProbeReply(ProbeReply { nonce: 0, promised: Ballot::ZERO })
}

/// An acceptor's answer to the probe when it promised `promised`.
fn probe_nack(promised: Ballot) -> Message {
    Message::ProbeReply(ProbeReply { nonce: 0, promised })
}

/// Acceptors 1 to 3, a majority, answer the probe of `p` with empty promises; the answers produce nothing.
fn answer_probe(p: &mut Proposer) {
    for a in 1..=3 {
        let r = step(p, acc(a), probe_promise());
        assert!(r.is_empty(), "a probe answer produces nothing, got {r:?}");
    }
}

/// The first tick of a new proposer, which sends the probe to every acceptor and nothing else, then a
/// majority's answers: afterwards the proposer campaigns as soon as its election timeout has passed.
fn probed(p: &mut Proposer) {
    let r = tick(p);
    assert_eq!(r, ready(vec![], to_acceptors(&probe())), "the first tick sends only the probe");
    answer_probe(p);
}

/// Ticks until the proposer campaigns, acceptors 1 to 3 answering its start-up probe whenever it is sent;
/// returns the Ready of the tick that campaigned. Earlier ticks' output is dropped.
fn campaign(p: &mut Proposer) -> Ready<ProposerOp> {
    for _ in 0..1_000 {
        let r = tick(p);
        if p.role() == Leadership::Candidate {
            return r;
        }
        if r.messages.iter().any(|m| m.msg == probe()) {
            answer_probe(p);
        }
    }
    panic!("proposer {} never campaigned", p.id().0)
}

/// Campaigns and completes phase 1 with one complete promise per `(acceptor, entries)`, in order;
/// returns the Ready of the promise that made the proposer leader.
fn elect_with(p: &mut Proposer, reports: &[(u32, &[Reported])]) -> Ready<ProposerOp> {
    campaign(p);
    let ballot = p.ballot();
    let from = p.learner().decided().0;
    let (last, first) = reports.split_last().expect("at least one promise");
    for (a, entries) in first {
        let r = step(p, acc(*a), promise(ballot, from, entries));
        assert_eq!(p.role(), Leadership::Candidate, "leader before the last promise");
        assert!(r.is_empty(), "a promise short of a quorum produces nothing, got {r:?}");
    }
    let r = step(p, acc(last.0), promise(ballot, from, last.1));
    assert_eq!(p.role(), Leadership::Leader);
    r
}

/// Makes `p` leader on empty promises from acceptors 1 to 3; returns its ballot.
fn elect(p: &mut Proposer) -> Ballot {
    elect_with(p, &[(1, &[]), (2, &[]), (3, &[])]);
    p.ballot()
}

/// The length of `msg` as one datagram from proposer 1 to acceptor 1.
fn datagram_len(msg: &Message) -> usize {
    let env =
        Envelope { version: PROTOCOL_VERSION, cluster: "test".into(), from: prop(1), to: acc(1), msg: msg.clone() };
    let mut buf = Vec::new();
    encode(&env, &mut buf).expect("the datagram fits");
    buf.len()
}

// ---------------------------------------------------------------------------
// Election and phase 1a
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Start-up probe: ballots stay unique even if the proposer lost its data dir
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Phase 1b at the proposer
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Step-down
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Phase 2 and clients
// ---------------------------------------------------------------------------

/// Phase 2a: a client value at the leader gets the next slot and leaves in one Accept to every acceptor,
/// with a copy to the peer proposer so that it can learn the value.
#[test]
fn client_value_at_leader_is_sent_to_acceptors_and_peer() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(7, 1, "x"))]), 2)));
}

/// Learning: a slot is decided once a majority accepted it under one ballot; the decision is persisted
/// (Learn), and the reply that tells the client its slot leaves early: the value is durable at a majority
/// of acceptors already, so the client does not wait for the leader's own fsync.
#[test]
fn majority_of_accepted_decides_persists_then_replies() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    assert!(step(&mut p, acc(1), accepted(ballot, &[0])).is_empty());
    assert!(step(&mut p, acc(1), accepted(ballot, &[0])).is_empty(), "one acceptor counts once");
    assert!(step(&mut p, acc(5), accepted(ballot, &[0])).is_empty());

    let r = step(&mut p, acc(3), accepted(ballot, &[0]));

    let reply = Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) });
    assert_eq!(r, ready_early(vec![send(client(7), reply)], vec![learn(0, cmd(7, 1, "x"))], vec![]));
    assert_eq!(p.learner().decided(), Slot(1));
}

/// Votes count per ballot: a majority split across two ballots decides nothing.
#[test]
fn votes_under_different_ballots_do_not_add_up() {
    let mut p = restarted(1, ProposerState { round: 3, log: vec![] });
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), accepted(ballot, &[0]));
    step(&mut p, acc(2), accepted(ballot, &[0]));

    let r = step(&mut p, acc(3), accepted(b(3, 2), &[0]));

    assert!(r.is_empty());
    assert_eq!(p.learner().decided(), Slot(0));
}

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

/// Flow control: at most `window` slots are in flight; the next value is proposed once one is applied.
#[test]
fn window_bounds_slots_in_flight() {
    let mut c = cfg(1);
    c.window = 2;
    let mut p = Proposer::new(c, ProposerState::default());
    let ballot = elect(&mut p);
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        p.handle(client(i as u64 + 1), propose(1, v)).unwrap();
    }
    let r = p.take_ready();
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(1, 1, "a")), (1, cmd(2, 1, "b"))]), 2)));
    step(&mut p, acc(1), accepted(ballot, &[0]));
    step(&mut p, acc(2), accepted(ballot, &[0]));

    let r = step(&mut p, acc(3), accepted(ballot, &[0]));

    let reply = send(client(1), Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) }));
    let mut early = vec![reply];
    early.extend(to_acceptors_and(&accept(ballot, &[(2, cmd(3, 1, "c"))]), 2));
    assert_eq!(r, ready_early(early, vec![learn(0, cmd(1, 1, "a"))], vec![]));
}

/// Accepts rest on no write but the round, durable before the prepares left (ready.rs): a leader that in one
/// Ready decides a slot and proposes a new client value sends the new Accept early, after the reply for the
/// decided value, as the core pushes them, while the Learn is still to be written; nothing waits for it.
/// (So a runtime may fsync the Learn in the background while the leader keeps proposing.)
#[test]
fn new_accept_leaves_early_beside_a_learn_not_yet_durable() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[0])).is_empty());
    }
    p.handle(acc(3), accepted(ballot, &[0])).expect("an acceptor's vote");
    p.handle(client(8), propose(1, "y")).expect("a client's value");

    let r = p.take_ready();

    let mut early = vec![send(client(7), Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) }))];
    early.extend(to_acceptors_and(&accept(ballot, &[(1, cmd(8, 1, "y"))]), 2));
    assert_eq!(r, ready_early(early, vec![learn(0, cmd(7, 1, "x"))], vec![]));
}

/// Phase 2a retransmission: after `retransmit_ticks` an undecided accept is sent again, and only to the
/// acceptors that have not voted for it under our ballot.
#[test]
fn retransmits_accept_only_to_acceptors_that_have_not_voted() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));
    step(&mut p, acc(1), accepted(ballot, &[0]));
    step(&mut p, acc(4), accepted(ballot, &[0]));
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());

    let r = tick(&mut p);

    let again = accept(ballot, &[(0, cmd(7, 1, "x"))]);
    assert_eq!(r, early_only([2, 3, 5].map(|a| send(acc(a), again.clone())).to_vec()));
}

/// Accepts rest on no write but the round: a retransmitted Accept leaves early too, beside the reply for a
/// slot decided in the same Ready and ahead of its Learn, while the heartbeat of that tick waits for the
/// write like any other message.
#[test]
fn retransmitted_accept_leaves_early_while_a_learn_is_written() {
    let mut p = proposer(1);
    let ballot = elect(&mut p); // at tick 50
    for _ in 51..=57 {
        assert!(tick(&mut p).is_empty());
    }
    p.handle(client(7), propose(1, "x")).expect("a client's value");
    p.handle(client(8), propose(1, "y")).expect("a client's value");
    let r = p.take_ready(); // tick 57: slots 0 and 1, to be retransmitted at tick 60
    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(0, cmd(7, 1, "x")), (1, cmd(8, 1, "y"))]), 2)));
    for a in 1..=2 {
        assert!(step(&mut p, acc(a), accepted(ballot, &[0, 1])).is_empty());
    }
    assert!(tick(&mut p).is_empty());
    assert!(tick(&mut p).is_empty());
    p.handle(acc(3), accepted(ballot, &[0])).expect("an acceptor's vote");

    let r = tick(&mut p); // tick 60

    let mut early = vec![send(client(7), Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) }))];
    let again = accept(ballot, &[(1, cmd(8, 1, "y"))]);
    early.extend([3, 4, 5].map(|a| send(acc(a), again.clone())));
    let hb = send(prop(2), heartbeat(ballot, true, 1));
    assert_eq!(r, ready_early(early, vec![learn(0, cmd(7, 1, "x"))], vec![hb]));
}

/// Multi-Paxos batching: values queued together share datagrams; 1000 values of 100 bytes leave in a few
/// Accepts per receiver, each within the datagram budget, together carrying slots 0..1000 in order.
#[test]
fn many_values_are_packed_into_few_datagrams() {
    let mut p = proposer(1);
    let ballot = elect(&mut p);
    for c in 0..1000 {
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
        assert_eq!(slots, (0..1000).collect::<Vec<_>>(), "to {to}");
        assert!((2..=4).contains(&datagrams), "{datagrams} datagrams to {to}");
    }
    assert_eq!(r.early.len() % 6, 0);
}

/// Packing at the widest numbers: many tiny values with maximal client ids and sequence numbers still
/// leave in accepts that each fit one datagram.
#[test]
fn packed_accepts_of_widest_values_fit_a_datagram() {
    let mut p = proposer(1);
    elect(&mut p);
    for c in 0..3000 {
        p.handle(client(u64::MAX - c), propose(u64::MAX, "")).unwrap();
    }

    let r = p.take_ready();

    assert!(r.messages.is_empty(), "accepts wait for no write");
    assert!(r.early.len() > 6, "several datagrams");
    for m in &r.early {
        assert!(datagram_len(&m.msg) <= MAX_DATAGRAM_BYTES);
    }
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

/// Liveness / exactly once: when a slot the leader has in flight turns out decided with another value
/// (learned from a peer that led with a higher ballot), the leader's own value is not lost: in the same
/// Ready it is proposed again at the next free slot.
/// (Regression: before 3de8a2d the value was dropped and its retries swallowed as "already on its way".)
#[test]
fn in_flight_value_overtaken_at_its_slot_is_proposed_again() {
    let mut p = proposer(2);
    let ballot = elect(&mut p);
    step(&mut p, client(7), propose(1, "x"));

    let r = step(
        &mut p,
        prop(1),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: vec![cmd(8, 1, "y")], decided: Slot(1) }),
    );

    let again = accept(ballot, &[(1, cmd(7, 1, "x"))]);
    assert_eq!(r, ready_early(to_acceptors_and(&again, 1), vec![learn(0, cmd(8, 1, "y"))], vec![]));
}

/// One value per slot: a leader never proposes at a slot it already knows to be decided (learned from a
/// peer while it led), and gives the next client value the first slot above every decided one.
#[test]
fn leader_skips_slots_known_decided() {
    let mut p = proposer(2);
    let ballot = elect(&mut p);
    let decided = vec![Value::Noop, cmd(8, 1, "a"), cmd(8, 2, "b")];
    let r = step(
        &mut p,
        prop(1),
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: decided, decided: Slot(3) }),
    );
    assert_eq!(r.persist.len(), 3);

    let r = step(&mut p, client(7), propose(1, "x"));

    assert_eq!(r, early_only(to_acceptors_and(&accept(ballot, &[(3, cmd(7, 1, "x"))]), 1)));
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

// ---------------------------------------------------------------------------
// Learning from peers, reading, trimming
// ---------------------------------------------------------------------------

/// Catch-up: a follower that hears a peer has decided further asks it for the entries from its own
/// first undecided slot, at its first tick, without waiting for its start-up probe to be answered.
#[test]
fn follower_behind_a_peer_asks_to_catch_up() {
    let mut p = restarted(1, ProposerState { round: 0, log: vec![Value::Noop, Value::Noop, Value::Noop] });
    assert!(step(&mut p, prop(2), heartbeat(b(1, 2), true, 10)).is_empty());

    let r = tick(&mut p);

    let mut want = to_acceptors(&probe());
    want.push(send(prop(2), Message::CatchUp(CatchUp { from: Slot(3), limit: 1024 })));
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
        Message::CatchUpReply(CatchUpReply { from: Slot(0), entries: values.clone(), decided: Slot(4) }),
    );

    let want: Vec<_> = values.into_iter().enumerate().map(|(i, v)| learn(i as u64, v)).collect();
    assert_eq!(r, ready(want, vec![]));
    assert_eq!(p.learner().decided(), Slot(4));
}

/// Catch-up: a reply that leaves us behind the peer's decided point is followed at the next tick by a
/// request for the rest, without waiting for a retransmission interval.
#[test]
fn partial_catch_up_reply_asks_for_the_rest_at_once() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 6));
    tick(&mut p);
    let reply = CatchUpReply { from: Slot(0), entries: vec![Value::Noop, Value::Noop], decided: Slot(6) };
    step(&mut p, prop(2), Message::CatchUpReply(reply));

    let r = tick(&mut p);

    assert_eq!(r, ready(vec![], vec![send(prop(2), Message::CatchUp(CatchUp { from: Slot(2), limit: 1024 }))]));
}

/// Catch up before leading: the rightful leader, while a live peer has decided more than `window` slots
/// beyond it, asks that peer for entries and does not campaign, even past its election timeout; once it is
/// within the window it campaigns from its first undecided slot (and keeps fetching the rest).
#[test]
fn rightful_follower_far_behind_catches_up_before_campaigning() {
    let mut c = cfg(2);
    c.window = 4;
    let mut p = Proposer::new(c, ProposerState::default());
    probed(&mut p); // tick 1
                    // Proposer 1 led while we were away and has decided slots 0..10.
    let peer_leads = heartbeat(b(3, 1), true, 10);
    assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
    let ask = |from| send(prop(1), Message::CatchUp(CatchUp { from: Slot(from), limit: 1024 }));
    let noops = |from, n| {
        Message::CatchUpReply(CatchUpReply { from: Slot(from), entries: vec![Value::Noop; n], decided: Slot(10) })
    };
    for t in 2..=80u64 {
        if t % 10 == 5 {
            assert!(step(&mut p, prop(1), peer_leads.clone()).is_empty());
        }
        let r = tick(&mut p);
        let mut want = Vec::new();
        if t % 10 == 0 {
            want.push(send(prop(1), heartbeat(b(0, 2), false, 0)));
        }
        if t % 3 == 2 {
            want.push(ask(0));
        }
        assert_eq!(r, ready(vec![], want), "tick {t}");
        assert_eq!(p.role(), Leadership::Follower, "tick {t}");
    }
    // Slots 0..5: still 5 behind, one more than the window.
    assert_eq!(step(&mut p, prop(1), noops(0, 5)).persist.len(), 5);
    assert_eq!(tick(&mut p), ready(vec![], vec![ask(5)]), "tick 81: no campaign yet, the rest asked for at once");
    assert_eq!(step(&mut p, prop(1), noops(5, 1)).persist, vec![learn(5, Value::Noop)]);

    let r = tick(&mut p); // tick 82: 4 behind, within the window

    let mut want = to_acceptors(&prepare(b(4, 2), 6));
    want.push(ask(6));
    assert_eq!(r, ready(vec![ProposerOp::Round(4)], want));
    assert_eq!(p.role(), Leadership::Candidate);
}

/// Catch-up: a proposer serves its decided log from the requested slot.
#[test]
fn catch_up_request_is_served_from_the_log() {
    let log = vec![Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut p = restarted(2, ProposerState { round: 0, log });

    let r = step(&mut p, prop(1), Message::CatchUp(CatchUp { from: Slot(1), limit: 1024 }));

    let reply = CatchUpReply { from: Slot(1), entries: vec![cmd(7, 1, "a"), cmd(8, 1, "b")], decided: Slot(3) };
    assert_eq!(r, ready(vec![], vec![send(prop(1), Message::CatchUpReply(reply))]));
}

/// Reading the log: entries come in slot order without gaps; no-ops and retries that landed twice show as `None`.
#[test]
fn log_read_shows_noops_and_duplicates_as_none() {
    let log = vec![cmd(7, 1, "a"), Value::Noop, cmd(7, 1, "a"), cmd(8, 1, "b")];
    let mut p = restarted(1, ProposerState { round: 0, log });

    let r = step(&mut p, client(9), Message::LogRead(LogRead { req: 42, from: Slot(0), limit: 10 }));

    let entries = [Some("a"), None, None, Some("b")]
        .iter()
        .enumerate()
        .map(|(i, v)| LogEntry { slot: Slot(i as u64), value: v.map(String::from) })
        .collect();
    let reply = LogReply { req: 42, entries, decided: Slot(4) };
    assert_eq!(r, ready(vec![], vec![send(client(9), Message::LogReply(reply))]));

    let r = step(&mut p, client(9), Message::LogRead(LogRead { req: 43, from: Slot(2), limit: 1 }));
    let reply = LogReply { req: 43, entries: vec![LogEntry { slot: Slot(2), value: None }], decided: Slot(4) };
    assert_eq!(r, ready(vec![], vec![send(client(9), Message::LogReply(reply))]));
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

/// A follower learns a value from the leader's accept copy plus the acceptors' Accepted votes.
#[test]
fn follower_learns_from_accept_copy_and_votes() {
    let mut p = proposer(1);
    step(&mut p, prop(2), heartbeat(b(1, 2), true, 0));
    assert!(step(&mut p, prop(2), accept(b(1, 2), &[(0, cmd(7, 1, "x"))])).is_empty());
    step(&mut p, acc(1), accepted(b(1, 2), &[0]));
    step(&mut p, acc(2), accepted(b(1, 2), &[0]));

    let r = step(&mut p, acc(3), accepted(b(1, 2), &[0]));

    assert_eq!(r, ready(vec![learn(0, cmd(7, 1, "x"))], vec![]), "the follower does not answer the client");
}

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// A scenario across real acceptors
// ---------------------------------------------------------------------------

/// A tiny synchronous network of proposers 1 and 2 and five real acceptors: every `Ready` is executed at
/// once (its writes applied to the proposer's store, its messages delivered in the order sent, the answers
/// after them) except over cut links, which drop every datagram both ways.
struct Net {
    proposers: [Proposer; 2],
    /// Per proposer, what its store holds: its data dir.
    disks: [ProposerState; 2],
    acceptors: Vec<Acceptor>,
    /// Cut links, as (proposer, acceptor).
    cut: Vec<(Node, Node)>,
    /// Every message delivered so far, with its sender, in order.
    delivered: Vec<(Node, Outgoing)>,
}

impl Net {
    fn new() -> Self {
        let proposers = vec![NodeId(1), NodeId(2)];
        let acceptors =
            ACCEPTORS.iter().map(|a| Acceptor::new(NodeId(*a), proposers.clone(), AcceptorState::default())).collect();
        Net {
            proposers: [proposer(1), proposer(2)],
            disks: Default::default(),
            acceptors,
            cut: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn proposer(&self, id: u32) -> &Proposer {
        &self.proposers[id as usize - 1]
    }

    /// From now on proposer `id` reaches every acceptor but `unreachable`.
    fn partition(&mut self, id: u32, unreachable: &[u32]) {
        self.cut = unreachable.iter().map(|a| (prop(id), acc(*a))).collect();
    }

    /// Proposer `id` restarts with its data dir wiped.
    fn wipe(&mut self, id: u32) {
        self.proposers[id as usize - 1] = proposer(id);
        self.disks[id as usize - 1] = ProposerState::default();
    }

    /// One tick of every proposer, and everything that follows from it.
    fn tick(&mut self) {
        for p in &mut self.proposers {
            p.tick();
        }
        self.run();
    }

    /// Ticks until proposer `id` leads.
    fn tick_until_leader(&mut self, id: u32) {
        for _ in 0..1_000 {
            if self.proposer(id).role() == Leadership::Leader {
                return;
            }
            self.tick();
        }
        panic!("proposer {id} never led");
    }

    /// `msg` from `from` arrives at proposer `to`, and everything that follows from it.
    fn input(&mut self, from: Node, to: u32, msg: Message) {
        self.proposers[to as usize - 1].handle(from, msg).expect("the input is for a proposer");
        self.run();
    }

    /// What the acceptors sent proposer `id` since `mark`, an earlier length of `delivered`.
    fn acceptor_answers_to(&self, id: u32, mark: usize) -> Vec<(Node, Message)> {
        let from_acceptor = |n: &Node| matches!(n, Node::Acceptor(_));
        self.delivered[mark..]
            .iter()
            .filter(|(from, out)| from_acceptor(from) && out.to == prop(id))
            .map(|(from, out)| (*from, out.msg.clone()))
            .collect()
    }

    /// Executes every `Ready` until the network is quiet.
    fn run(&mut self) {
        let mut queue = VecDeque::new();
        loop {
            for (p, disk) in self.proposers.iter_mut().zip(&mut self.disks) {
                let r = p.take_ready();
                queue.extend(r.early.into_iter().map(|m| (prop(p.id().0), m)));
                r.persist.iter().for_each(|op| disk.apply(op));
                queue.extend(r.messages.into_iter().map(|m| (prop(p.id().0), m)));
            }
            for a in &mut self.acceptors {
                let from = acc(a.id().0);
                queue.extend(a.take_ready().messages.into_iter().map(|m| (from, m)));
            }
            let Some((from, out)) = queue.pop_front() else { return };
            if self.cut.contains(&(from, out.to)) || self.cut.contains(&(out.to, from)) {
                continue;
            }
            self.delivered.push((from, out.clone()));
            let handled = match out.to {
                Node::Proposer(id) => self.proposers[id.0 as usize - 1].handle(from, out.msg),
                Node::Acceptor(id) => self.acceptors[id.0 as usize - 1].handle(from, out.msg),
                Node::Client(_) => Ok(()),
            };
            handled.expect("every message of this scenario is handled");
        }
    }
}

/// Unique ballots across a lost data dir (the reviewer's scenario): proposer 2 leads with 1.2 and gets "a"
/// accepted at slot 0 by acceptors 1 and 2 only; restarted with an empty store and reaching acceptors 3 to 5
/// only, it hears "promised 1.2" in answer to its probe, campaigns with 2.2 rather than 1.2 again, and the
/// "b" it then decides at slot 0 is what proposer 1's learner decides too.
/// (Reusing 1.2, as before the probe, let proposer 1 count the old votes for "a" and a new vote for "b" as
/// one majority of 1.2 and decide "a" while proposer 2 decided "b".)
#[test]
fn proposer_with_a_wiped_data_dir_never_reuses_its_ballot() {
    let mut net = Net::new();
    net.tick_until_leader(2);
    assert_eq!((net.proposer(2).ballot(), net.disks[1].round), (b(1, 2), 1));
    assert_eq!(net.proposer(1).role(), Leadership::Follower);
    net.partition(2, &[3, 4, 5]);
    net.input(client(7), 2, propose(1, "a"));
    for a in &net.acceptors[..2] {
        assert_eq!(a.state().accepted.get(&Slot(0)), Some(&(b(1, 2), cmd(7, 1, "a"))), "acceptor {}", a.id());
    }
    assert_eq!(net.proposer(1).learner().value(Slot(0)), None, "two votes of five choose nothing");

    net.wipe(2);
    net.partition(2, &[1, 2]);
    let mark = net.delivered.len();
    net.tick();
    assert_eq!(net.acceptor_answers_to(2, mark), [3, 4, 5].map(|a| (acc(a), probe_nack(b(1, 2)))).to_vec());
    net.tick_until_leader(2);
    assert_eq!((net.proposer(2).ballot(), net.disks[1].round), (b(2, 2), 2), "a round above its former self's");

    net.input(client(8), 2, propose(1, "b"));

    let slot0 = net.proposers.each_ref().map(|p| p.learner().value(Slot(0)).cloned());
    assert_eq!(slot0, [Some(cmd(8, 1, "b")), Some(cmd(8, 1, "b"))], "what proposers 1 and 2 decided at slot 0");
    let reply = (prop(2), send(client(8), Message::ClientReply(ClientReply { seq: 1, slot: Slot(0) })));
    assert_eq!(net.delivered.iter().filter(|d| **d == reply).count(), 1, "the client is told slot 0 once");
}

/// Unique ballots across restarts: answers to an earlier start's probe (another nonce) are late copies
/// that may predate that start's campaigns, so they raise the round but never count towards the majority.
#[test]
fn probe_answers_of_an_earlier_start_do_not_count() {
    let mut c = cfg(2);
    c.incarnation = 7;
    let mut p = Proposer::new(c, ProposerState::default());
    tick(&mut p);
    for a in 1..=5 {
        let stale = Message::ProbeReply(ProbeReply { nonce: 6, promised: b(3, 2) });
        assert!(step(&mut p, acc(a), stale).is_empty());
    }
    for _ in 0..100 {
        tick(&mut p);
        assert_eq!(p.role(), Leadership::Follower, "no campaign on stale answers");
    }
    for a in 1..=3 {
        step(&mut p, acc(a), Message::ProbeReply(ProbeReply { nonce: 7, promised: Ballot::ZERO }));
    }
    let r = campaign(&mut p);
    assert_eq!(r.persist, vec![ProposerOp::Round(4)], "the stale answers still raised the round");
}
