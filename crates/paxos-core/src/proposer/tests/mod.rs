//! Proposer unit tests.
//!
//! Each test drives a proposer to a state (with the helpers below), then feeds
//! it one input — a message or a tick — and asserts the exact [`Ready`] it
//! produces: the messages that may leave before its writes are durable (`early`:
//! a leader's accepts, answers for decided values), the storage operations, in
//! order, the messages that leave once they are durable, and the reads of the
//! decided log it asks its runtime for. The doc line of each test names the
//! rule of Multi-Paxos (phase 1 and 2 of "Paxos Made Simple", §2–3), of
//! reconfiguration (Stoppable Paxos) or of the product (SPEC.md's guarantees)
//! it checks.
//!
//! Unless a test says otherwise the cluster has proposers 1 and 2 and acceptors
//! 1 to 5, with the default configuration: heartbeat every 10 ticks, election
//! timeout 50 ticks, retransmission after 3 ticks, incarnation 0 (so a probe's
//! nonce is its probe round: the number of heartbeat ticks so far).
//!
//! Every new proposer first probes the acceptors (a `Probe` at its first tick,
//! again every 3 ticks to those that have not answered) and does not campaign
//! before a majority answered. `probed` and `campaign` answer the probe from
//! acceptors 1 to 3, so a lone proposer campaigns at tick 50.
//!
//! A new cluster is in epoch 0 (the cluster file's configuration, nobody's
//! incarnation pinned), where a quorum is 4 of 5 and no client value goes.
//! Its first leader proposes the pinning configuration ([`pinned`]: epoch 1,
//! every acceptor with the incarnation it reported, [`inc`]) at slot 0 once
//! every acceptor answered a fresh probe, and once that is decided it runs
//! phase 1 again in epoch 1 from slot 1 (a majority, 3 of 5, is a quorum
//! there) and serves clients. [`leader_in_epoch_1`] drives a fresh proposer
//! through all of it, at tick 61; [`restarted_leader`] elects a proposer whose
//! log already holds the pinning configuration.

use paxos_proto::{
    encode, Accept, AcceptEntry, Accepted, Ballot, CatchUp, CatchUpReply, ClientError, ClientErrorKind, ClientId,
    ClientPropose, ClientRedirect, ClientReply, Command, Config, Digest, Envelope, Epoch, Heartbeat, LogEntry, LogRead,
    LogReply, Member, MemberOp, MemberReply, MemberRequest, MemberRole, Message, Nack, NackReason, Node, NodeId,
    Prepare, Probe, ProbeReply, Promise, PromiseEntry, SessionEntry, Slot, StateReply, StateRequest, Value, Written,
    MAX_BODY_BYTES, MAX_CLOCK_SKEW_MS, MAX_VALUE_BYTES, PROTOCOL_VERSION,
};

use std::collections::VecDeque;

use crate::{
    Acceptor, AcceptorConfig, AcceptorState, Ignored, Leadership, MemStore, Outgoing, Proposer, ProposerConfig,
    ProposerOp, ProposerState, ReadRequest, Ready, Role, Store, DEFAULT_SESSION_LIFETIME_MS, MAX_BATCH_BYTES,
    QUEUE_AGE_DIVISOR, REBUILD_SLACK_SLOTS,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const ACCEPTORS: [u32; 5] = [1, 2, 3, 4, 5];

/// An accepted slot as a promise reports it: slot, the ballot it was accepted under, and the value.
type Reported = (u64, Ballot, Value);

/// A ballot of epoch 0.
fn b(round: u64, proposer: u32) -> Ballot {
    Ballot::new(round, NodeId(proposer))
}

/// A ballot of epoch 1.
fn b1(round: u64, proposer: u32) -> Ballot {
    Ballot::in_epoch(1, round, NodeId(proposer))
}

/// A client's command, not stamped (as every proposer without a clock stamps it).
fn cmd(client: u64, seq: u64, data: &str) -> Value {
    Value::Command(Command::new(ClientId(client), seq, data))
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
    Ready { early: vec![], persist, messages, reads: vec![] }
}

/// A Ready whose `early` messages (client answers for decided values, a leader's accepts) may leave before
/// `persist` is durable, then the rest.
fn ready_early(early: Vec<Outgoing>, persist: Vec<ProposerOp>, messages: Vec<Outgoing>) -> Ready<ProposerOp> {
    Ready { early, persist, messages, reads: vec![] }
}

/// A Ready of early messages only: nothing to write and nothing that waits for a write (how a leader's
/// accepts leave when nothing else happened).
fn early_only(early: Vec<Outgoing>) -> Ready<ProposerOp> {
    ready_early(early, vec![], vec![])
}

/// A Ready that only reads the decided log.
fn reads_only(reads: Vec<ReadRequest>) -> Ready<ProposerOp> {
    Ready { reads, ..Ready::default() }
}

fn cfg(id: u32) -> ProposerConfig {
    ProposerConfig::new(NodeId(id), vec![NodeId(1), NodeId(2)], ACCEPTORS.iter().map(|a| NodeId(*a)).collect())
}

/// Proposer `id` of the two, starting from nothing.
fn proposer(id: u32) -> Proposer {
    Proposer::new(cfg(id), ProposerState::default())
}

/// Proposer `id` of the two, recovered with `state`.
/// Its pass over the decided log is over ([`Proposer::scrubbed`]): tests of it build their own.
fn restarted(id: u32, state: ProposerState) -> Proposer {
    Proposer::new(cfg(id), state).scrubbed()
}

/// The incarnation acceptor `a` reports.
fn inc(a: u32) -> u64 {
    100 + u64::from(a)
}

fn member(id: u32, incarnation: Option<u64>) -> Member {
    Member { id: NodeId(id), addr: String::new(), incarnation }
}

/// The pinning configuration: epoch 1, the cluster file's members, every acceptor with its incarnation.
fn pinned() -> Config {
    Config {
        epoch: 1,
        acceptors: ACCEPTORS.iter().map(|a| member(*a, Some(inc(*a)))).collect(),
        proposers: vec![member(1, None), member(2, None)],
        session_lifetime_ms: DEFAULT_SESSION_LIFETIME_MS,
    }
}

/// Epoch 1, from slot 1 (the pinning configuration is decided at slot 0).
fn epoch1() -> Epoch {
    Epoch { start: Slot(1), config: pinned() }
}

/// A proposer's store that reserved `round` and learned `values` from slot 0.
fn store(round: u64, values: &[Value]) -> MemStore<ProposerState> {
    let mut store = MemStore::<ProposerState>::default();
    let mut ops = vec![ProposerOp::Round(round)];
    let mut log = crate::LogState::default();
    for (slot, value) in values.iter().enumerate() {
        let duplicate = log.apply(Slot(slot as u64), value);
        ops.push(ProposerOp::Learn { slot: Slot(slot as u64), value: value.clone(), duplicate });
    }
    store.apply(&ops).expect("a store in memory");
    store
}

/// What a proposer that reserved `round` and learned `values` from slot 0 recovers.
fn state(round: u64, values: &[Value]) -> ProposerState {
    store(round, values).state
}

/// The pinning configuration at slot 0, then `values`: a log in epoch 1.
fn pinned_log(values: &[Value]) -> Vec<Value> {
    let mut log = vec![Value::Config(pinned())];
    log.extend_from_slice(values);
    log
}

/// What a proposer recovers whose log is in epoch 1: see [`pinned_log`].
fn pinned_state(round: u64, values: &[Value]) -> ProposerState {
    state(round, &pinned_log(values))
}

fn learn(slot: u64, value: Value) -> ProposerOp {
    ProposerOp::Learn { slot: Slot(slot), value, duplicate: false }
}

fn propose(seq: u64, value: &str) -> Message {
    Message::ClientPropose(ClientPropose { seq, value: value.into() })
}

fn heartbeat(ballot: Ballot, leader: bool, decided: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        ballot,
        leader,
        decided: Slot(decided),
        known: Slot(decided),
        damaged: false,
        written: vec![],
        digest: None,
    })
}

fn accepted(ballot: Ballot, slots: &[u64]) -> Message {
    Message::Accepted(Accepted { ballot, slots: slots.iter().map(|s| Slot(*s)).collect(), written: None })
}

/// An accept of `ballot` whose leader decided every slot below `commit`.
fn accept(ballot: Ballot, commit: u64, entries: &[(u64, Value)]) -> Message {
    let entries = entries.iter().map(|(s, v)| AcceptEntry { slot: Slot(*s), value: v.clone() }).collect();
    Message::Accept(Accept { ballot, entries, commit: Slot(commit) })
}

/// A prepare of epoch 0.
fn prepare(ballot: Ballot, from: u64) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from), epoch: None, wrote: vec![] })
}

/// A prepare of epoch 1, which tells the acceptors of [`epoch1`].
fn prepare1(ballot: Ballot, from: u64) -> Message {
    Message::Prepare(Prepare { ballot, from: Slot(from), epoch: Some(epoch1()), wrote: vec![] })
}

/// A promise page of `ballot` covering `[from, to)` with `entries` (slot, accepted ballot, value), from an
/// acceptor whose decided log holds every slot below `decided`. (A proposer reads no incarnation from a
/// promise, which may be late: only probe rounds say what an acceptor is now.)
fn page_decided(ballot: Ballot, from: u64, to: u64, done: bool, decided: u64, entries: &[Reported]) -> Message {
    Message::Promise(Promise {
        ballot,
        from: Slot(from),
        to: Slot(to),
        done,
        decided: Slot(decided),
        incarnation: 0,
        entries: entries
            .iter()
            .map(|(s, b, v)| PromiseEntry { slot: Slot(*s), ballot: *b, value: v.clone() })
            .collect(),
        written: None,
    })
}

/// A promise page from an acceptor with an empty decided log.
fn page(ballot: Ballot, from: u64, to: u64, done: bool, entries: &[Reported]) -> Message {
    page_decided(ballot, from, to, done, 0, entries)
}

/// A complete promise of `ballot` from `from` reporting `entries`.
fn promise(ballot: Ballot, from: u64, entries: &[Reported]) -> Message {
    let to = entries.iter().map(|e| e.0 + 1).max().unwrap_or(from).max(from);
    page(ballot, from, to, true, entries)
}

fn nack(ballot: Ballot, promised: Ballot, reason: NackReason) -> Message {
    Message::Nack(Nack { ballot, promised, reason })
}

/// The probe of probe round `round` (of a proposer of incarnation 0) that has decided every slot below `decided`.
fn probe(round: u64, decided: u64) -> Message {
    Message::Probe(Probe { nonce: round, decided: Slot(decided), leading: false, echo: 0, wrote: vec![] })
}

/// The same probe, sent by a leader.
fn leader_probe(round: u64, decided: u64) -> Message {
    Message::Probe(Probe { nonce: round, decided: Slot(decided), leading: true, echo: 0, wrote: vec![] })
}

/// Acceptor `a`'s answer to probe round `round`: it promised `promised`, and holds `decided` decided slots.
/// Its clock is far ahead of any the tests set, so that it bounds no stamp (see `skew.rs` for those
/// that do), but a proposer that heard it may stamp commands.
fn report(a: u32, round: u64, promised: Ballot, decided: u64) -> Message {
    Message::ProbeReply(ProbeReply {
        nonce: round,
        promised,
        decided: Slot(decided),
        incarnation: inc(a),
        epoch: promised.epoch,
        joining: false,
        leader: None,
        challenge: 0,
        clock_ms: FAR_AHEAD_MS,
        written: None,
        digest: None,
    })
}

/// An acceptor's clock in the tests' probe answers: far ahead of any a test sets on a proposer.
const FAR_AHEAD_MS: u64 = u64::MAX;

/// Acceptor `a`'s answer to the start-up probe when it promised no real ballot.
fn probe_promise(a: u32) -> Message {
    report(a, 0, Ballot::ZERO, 0)
}

/// Acceptor `a`'s answer to the start-up probe when it promised `promised`.
fn probe_nack(a: u32, promised: Ballot) -> Message {
    report(a, 0, promised, 0)
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

/// `msg` to the acceptors `heard` and then to the peer proposer `peer`: how a leader sends an accept while
/// the other acceptors have not been heard within an election timeout.
fn to_heard_and(msg: &Message, heard: &[u32], peer: u32) -> Vec<Outgoing> {
    let mut out: Vec<Outgoing> = heard.iter().map(|a| send(acc(*a), msg.clone())).collect();
    out.push(send(prop(peer), msg.clone()));
    out
}

/// What a new leader says at once to its peer, in the step that elects it: that it leads (`Proposer::heartbeat_peers`).
fn announced(ballot: Ballot, peer: u32, decided: u64) -> Vec<Outgoing> {
    vec![send(prop(peer), heartbeat(ballot, true, decided))]
}

/// What a leader sends on a heartbeat tick: the heartbeat to its peer, then the probe of that round to every
/// acceptor.
fn leader_heartbeat(ballot: Ballot, peer: u32, decided: u64, round: u64) -> Vec<Outgoing> {
    let mut out = vec![send(prop(peer), heartbeat(ballot, true, decided))];
    out.extend(to_acceptors(&leader_probe(round, decided)));
    out
}

/// Feeds one message that must be handled, and returns what it produced
/// (catch-up nonces zeroed, see [`zero_nonces`]).
fn step(p: &mut Proposer, from: Node, msg: Message) -> Ready<ProposerOp> {
    p.handle(from, msg).expect("the message is for a proposer");
    zero_nonces(p.take_ready())
}

/// One tick, and what it produced (catch-up nonces zeroed, see [`zero_nonces`]).
fn tick(p: &mut Proposer) -> Ready<ProposerOp> {
    p.tick();
    zero_nonces(p.take_ready())
}

/// Zeroes the nonces of catch-up requests, drawn from the node's secret seed:
/// the tests of what is asked compare the rest, and the tests of restarts read the nonce first.
fn zero_nonces<Op>(mut r: Ready<Op>) -> Ready<Op> {
    for out in r.early.iter_mut().chain(r.messages.iter_mut()) {
        if let Message::CatchUp(c) = &mut out.msg {
            c.nonce = 0;
        }
    }
    r
}

/// Ticks until the clock reads `t`; what those ticks produced is dropped.
fn tick_to(p: &mut Proposer, t: u64) {
    while p.now.0 < t {
        tick(p);
    }
}

/// Acceptors 1 to 3, a majority, answer the start-up probe of `p` with empty promises; the answers produce
/// nothing.
fn answer_probe(p: &mut Proposer) {
    for a in 1..=3 {
        let r = step(p, acc(a), probe_promise(a));
        assert!(r.is_empty(), "a probe answer produces nothing, got {r:?}");
    }
}

/// The first tick of a new proposer, which sends the probe to every acceptor and nothing else, then a
/// majority's answers: afterwards the proposer campaigns as soon as its election timeout has passed.
fn probed(p: &mut Proposer) {
    let r = tick(p);
    let decided = p.learner().decided().0;
    assert_eq!(r, ready(vec![], to_acceptors(&probe(0, decided))), "the first tick sends only the probe");
    answer_probe(p);
}

/// Ticks until the proposer campaigns, acceptors 1 to 3 answering its start-up probe whenever it is sent,
/// and every acceptor its pre-vote ([`answer_prevote`]); returns the Ready of the step that campaigned.
/// Earlier steps' output is dropped.
fn campaign(p: &mut Proposer) -> Ready<ProposerOp> {
    for _ in 0..1_000 {
        let r = tick(p);
        if p.role() == Leadership::Candidate {
            return r;
        }
        if r.messages.iter().any(|m| matches!(m.msg, Message::Probe(Probe { nonce: 0, .. }))) {
            answer_probe(p);
        } else if let Some(r) = prevote_nonce(&r).and_then(|nonce| answer_prevote(p, nonce)) {
            return r;
        }
    }
    panic!("proposer {} never campaigned", p.id().0)
}

/// The nonce of the pre-vote `r` sends, if it sends one: a probe of a proposer that does not lead.
fn prevote_nonce(r: &Ready<ProposerOp>) -> Option<u64> {
    r.messages.iter().find_map(|m| match &m.msg {
        Message::Probe(probe) if !probe.leading => Some(probe.nonce),
        _ => None,
    })
}

/// Every acceptor answers the pre-vote `nonce` of `p` naming no leader, until `p` campaigns; returns the
/// Ready of the answer that started the campaign (the prepares), or `None` if none did.
fn answer_prevote(p: &mut Proposer, nonce: u64) -> Option<Ready<ProposerOp>> {
    let (promised, decided) = (p.ballot(), p.learner().decided().0);
    for a in ACCEPTORS {
        let r = step(p, acc(a), report(a, nonce, promised, decided));
        if p.role() == Leadership::Candidate {
            return Some(r);
        }
        assert!(r.is_empty(), "a pre-vote answer short of a quorum produces nothing, got {r:?}");
    }
    None
}

/// One tick on which `p` may campaign: it asks the acceptors who leads (the pre-vote), every one names
/// none, and it campaigns; returns the Ready of the answer that started the campaign.
fn tick_and_prevote(p: &mut Proposer) -> Ready<ProposerOp> {
    let r = tick(p);
    assert_eq!(p.role(), Leadership::Follower, "a campaign waits for the pre-vote");
    let nonce = prevote_nonce(&r).expect("the tick sends a pre-vote");
    answer_prevote(p, nonce).expect("a quorum naming no leader starts the campaign")
}

/// Ticks until the clock reads `t`, every acceptor answering each pre-vote naming no leader; what those
/// ticks produced is dropped.
fn tick_to_prevoting(p: &mut Proposer, t: u64) {
    while p.now.0 < t {
        let r = tick(p);
        if let Some(nonce) = prevote_nonce(&r) {
            answer_prevote(p, nonce);
        }
    }
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

/// Makes `p` leader in the epoch its log is in, on empty promises from a quorum (acceptors 1 to 4 in
/// epoch 0, 1 to 3 in epoch 1); returns its ballot.
fn elect(p: &mut Proposer) -> Ballot {
    let quorum = p.quorum() as u32;
    let reports: Vec<(u32, &[Reported])> = (1..=quorum).map(|a| (a, &[][..])).collect();
    elect_with(p, &reports);
    p.ballot()
}

/// Every acceptor answers probe round `round` of `p`: its incarnation, and `decided` decided slots.
fn answer_round(p: &mut Proposer, round: u64, decided: u64) {
    let promised = p.ballot();
    for a in ACCEPTORS {
        let r = step(p, acc(a), report(a, round, promised, decided));
        assert!(r.is_empty(), "a probe answer produces nothing, got {r:?}");
    }
}

/// A fresh proposer `id` bootstraps the cluster: it leads epoch 0 with ballot 1 at tick 50, every acceptor
/// answers its probe at tick 60, it proposes the pinning configuration at slot 0 at tick 61, acceptors 1 to
/// 4 accept it, and acceptors 1 to 3 promise its ballot of epoch 1 (round 2) from slot 1. Returns the
/// proposer, leading in epoch 1 at tick 61 with nothing in flight, and its ballot.
fn leader_in_epoch_1(id: u32) -> (Proposer, Ballot) {
    leader_in_epoch_1_with(cfg(id))
}

/// Proposer 1 bootstraps epoch 1 as [`leader_in_epoch_1`] does and campaigns in it; acceptors 1 and 2
/// promise at once, then more than an election timeout passes (a partition that heals slowly). Returns
/// the candidate, one promise short of leading, and its ballot.
fn candidate_with_old_promises() -> (Proposer, Ballot) {
    let c = cfg(1);
    let timeout = c.election_timeout_ticks;
    let mut p = Proposer::new(c, ProposerState::default());
    let first = elect(&mut p);
    tick_to(&mut p, 60);
    answer_round(&mut p, 6, 0);
    tick(&mut p);
    for a in 1..=4 {
        step(&mut p, acc(a), accepted(first, &[0]));
    }
    let ballot = p.ballot();
    step(&mut p, acc(1), promise(ballot, 1, &[]));
    step(&mut p, acc(2), promise(ballot, 1, &[]));
    let late = p.now.0 + timeout + 5;
    tick_to(&mut p, late);
    (p, ballot)
}

/// [`leader_in_epoch_1`] with the configuration `c`.
fn leader_in_epoch_1_with(c: ProposerConfig) -> (Proposer, Ballot) {
    let id = c.id.0;
    let mut p = Proposer::new(c, ProposerState::default());
    let first = elect(&mut p);
    assert_eq!((first, p.now.0), (b(1, id), 50));
    tick_to(&mut p, 60);
    answer_round(&mut p, 6, 0);
    let r = tick(&mut p);
    let pinning = accept(first, 0, &[(0, Value::Config(pinned()))]);
    assert_eq!(r, early_only(to_acceptors_and(&pinning, 3 - id)), "tick 61 proposes the pinning configuration");
    for a in 1..=4 {
        step(&mut p, acc(a), accepted(first, &[0]));
    }
    let ballot = p.ballot();
    assert_eq!((ballot, p.learner().epoch()), (b1(2, id), &epoch1()));
    for a in 1..=3 {
        step(&mut p, acc(a), promise(ballot, 1, &[]));
    }
    assert_eq!(p.role(), Leadership::Leader);
    (p, ballot)
}

/// Proposer `id` recovered with `round` reserved and a log in epoch 1 of `values` after the pinning
/// configuration, elected in epoch 1 (at tick 50); returns it and its ballot.
fn restarted_leader(id: u32, round: u64, values: &[Value]) -> (Proposer, Ballot) {
    let mut p = restarted(id, pinned_state(round, values));
    let ballot = elect(&mut p);
    (p, ballot)
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
mod membership;
mod phase1;
mod phase2;
mod restarts;
mod skew;
