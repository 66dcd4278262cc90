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
    Nack, Node, NodeId, Prepare, Probe, ProbeReply, Promise, PromiseEntry, Slot, Value, MAX_BODY_BYTES,
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

mod clients;
mod leadership;
mod learning;
mod phase1;
mod phase2;
mod restarts;
