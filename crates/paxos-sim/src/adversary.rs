//! A hostile host on the network, drawn from the seed.
//!
//! - [`Adversary::Forger`] knows every address and message kind but no key:
//!   it forges datagrams of every kind in the name of any member or client
//!   (the attacks of issue 11's table among them: a prepare or heartbeat at
//!   round 2^62, an accept whose commit is far ahead, an accept with the leader's ballot and a
//!   value nobody proposed, a catch-up reply of made-up values, an accept at
//!   slot 2^62 - 1, reads from a victim's address; the pages of state a
//!   restart copies are left to the insider, as unsigned they fall at
//!   admission like every other kind). Receivers apply the one
//!   rule of admission ([`paxos_proto::auth::admit`]) to its unsigned
//!   datagrams, as the daemons do, so nothing it claims as a member counts;
//!   what it sends as a client is a client's proposal like any other.
//! - [`Adversary::Insider`] holds the peer key but only sends extreme rounds
//!   and slots, and claims about the log's state that need a nonce it never
//!   sees (restarts of the log far ahead, pages of state nobody asked for,
//!   copies of state asked for in members' names); the bounded-damage rules
//!   of the core must hold against it:
//!   rounds above the ceiling of the clock ([`paxos_core::round_ceiling`])
//!   up to the codec's bound, rounds far above what it saw but below the
//!   ceiling (believed: rounds jump, but stay far below the bound), slots
//!   beyond [`paxos_core::MAX_SLOT_STEP`], decided claims near the codec's bounds. It does not forge values: against a key holder
//!   that lies about values no crash-fault protocol holds, and none is claimed to.
//! - [`Adversary::Replayer`] holds no key but sits on the wire: it records
//!   the last [`REPLAY_MEMORY`] datagrams delivered and sends any of them
//!   again, to the same receiver and with the same MAC, at any later time
//!   (MACs do not stop a replay). It is never drawn from a seed (that would
//!   move every seed's draws): pin it with `--adversary replayer`.

use paxos_proto::{
    Accept, AcceptEntry, Accepted, Ballot, CatchUp, CatchUpReply, ClientId, ClientPropose, Command, Digest, Heartbeat,
    LogRead, MemberOp, MemberRequest, MemberRole, Message, Nack, NackReason, Node, NodeId, Prepare, ProbeReply,
    Promise, PromiseEntry, SessionEntry, Slot, StateReply, StateRequest, StatusRequest, TimeoutNow, Value, Written,
    DIGEST_EVERY, MAX_COUNTER,
};

use crate::rng::Rng;

/// Who attacks a run, if anyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adversary {
    /// Forges datagrams of every kind without a key.
    Forger,
    /// Holds the peer key; sends extreme rounds and slots.
    Insider,
    /// Holds no key, but records every datagram delivered and sends old
    /// ones again, signed as they were: a replay, long after the fact.
    Replayer,
}

impl Adversary {
    /// The name on the command line and in the parameters.
    pub fn name(self) -> &'static str {
        match self {
            Adversary::Forger => "forger",
            Adversary::Insider => "insider",
            Adversary::Replayer => "replayer",
        }
    }

    /// Parses a name given by [`Adversary::name`].
    pub fn parse(name: &str) -> Option<Adversary> {
        [Adversary::Forger, Adversary::Insider, Adversary::Replayer].into_iter().find(|a| a.name() == name)
    }
}

/// How many delivered datagrams the replayer remembers (the oldest go first).
pub const REPLAY_MEMORY: usize = 4096;

/// The first client id of the adversary's own proposals (the run's clients are below).
pub const ADVERSARY_CLIENTS: u64 = 1_000_000;

/// What the adversary knows of the run: the members, and the highest round
/// and slot it has seen go by (it reads the network).
pub struct Knowledge<'a> {
    /// The proposers' ids.
    pub proposers: &'a [NodeId],
    /// The acceptors' ids.
    pub acceptors: &'a [NodeId],
    /// The highest ballot seen on the network.
    pub ballot: Ballot,
    /// The highest slot seen on the network.
    pub slot: Slot,
}

/// One datagram the adversary sends: as whom, to whom, what.
pub struct Forged {
    /// The sender it claims to be.
    pub from: Node,
    /// The receiver.
    pub to: Node,
    /// The message.
    pub msg: Message,
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.index(items.len())]
}

fn bogus(rng: &mut Rng) -> Value {
    Value::Command(Command::new(ClientId(rng.range(1, 1 << 40)), rng.range(1, 1 << 20), "forged"))
}

/// A datagram of the forger: any kind, in anyone's name, with values from
/// the table of attacks. The proposals it makes as a client are returned
/// with the datagram (the caller records them as proposed).
pub fn forge(rng: &mut Rng, k: &Knowledge<'_>, next_seq: &mut u64) -> (Forged, Option<Command>) {
    let proposer = Node::Proposer(pick(rng, k.proposers));
    let acceptor = Node::Acceptor(pick(rng, k.acceptors));
    let leader_ballot = k.ballot;
    let huge = Ballot::new(MAX_COUNTER, pick(rng, k.proposers));
    let far = Slot(MAX_COUNTER - 1);
    let near = Slot(k.slot.0 + rng.range(0, 4));
    let client = Node::Client(ClientId(ADVERSARY_CLIENTS + rng.range(0, 7)));
    let forged = |from, to, msg| Forged { from, to, msg };
    let mut proposal = None;
    let f = match rng.index(14) {
        // A prepare at round 2^62 to an acceptor, as a proposer.
        0 => {
            // With a claim of lost writes: of another incarnation, it changes nothing.
            let wrote = vec![Written { incarnation: rng.next_u64(), start: rng.next_u64(), ops: u64::MAX }];
            forged(proposer, acceptor, Message::Prepare(Prepare { ballot: huge, from: Slot(0), epoch: None, wrote }))
        }
        // A heartbeat at round 2^62, or at the leader's round + 1, to a proposer.
        1 => {
            let ballot = if rng.chance(0.5) { huge } else { Ballot::new(leader_ballot.round + 1, huge.proposer) };
            let to = Node::Proposer(pick(rng, k.proposers));
            forged(
                Node::Proposer(ballot.proposer),
                to,
                Message::Heartbeat(Heartbeat {
                    ballot,
                    leader: true,
                    decided: far,
                    known: far,
                    damaged: false,
                    written: vec![],
                    // A claim that the sender's log differs from everyone's (no draw: traces stay).
                    digest: Some(Digest { slot: Slot(DIGEST_EVERY), chain: 0 }),
                }),
            )
        }
        // An accept of nothing whose commit is far ahead of decided, as the leader.
        2 => {
            let from = Node::Proposer(leader_ballot.proposer);
            let commit = Slot(k.slot.0 + rng.range(1, 1 << 30));
            forged(from, acceptor, Message::Accept(Accept { ballot: leader_ballot, entries: vec![], commit }))
        }
        // An accept with the leader's ballot and a value nobody proposed.
        3 => {
            let from = Node::Proposer(leader_ballot.proposer);
            let entries = vec![AcceptEntry { slot: near, value: bogus(rng) }];
            let to = if rng.chance(0.7) { acceptor } else { proposer };
            forged(from, to, Message::Accept(Accept { ballot: leader_ballot, entries, commit: near }))
        }
        // A catch-up reply of made-up values, to a proposer.
        4 => {
            let entries = (0..rng.range(1, 4)).map(|_| bogus(rng)).collect();
            let reply = CatchUpReply {
                from: Slot(k.slot.0.saturating_sub(rng.range(0, 8))),
                entries,
                decided: far,
                epoch: None,
                nonce: 0,
            };
            forged(proposer, Node::Proposer(pick(rng, k.proposers)), Message::CatchUpReply(reply))
        }
        // An accept at slot 2^62 - 1.
        5 => {
            let from = Node::Proposer(leader_ballot.proposer);
            forged(
                from,
                acceptor,
                Message::Accept(Accept {
                    ballot: leader_ballot,
                    entries: vec![AcceptEntry { slot: far, value: Value::Noop }],
                    commit: Slot(0),
                }),
            )
        }
        // Votes and promises that never were, as an acceptor.
        6 => forged(
            acceptor,
            proposer,
            Message::Accepted(Accepted { ballot: leader_ballot, slots: vec![near, far], written: None }),
        ),
        7 => {
            let entries = vec![PromiseEntry { slot: near, ballot: leader_ballot, value: bogus(rng) }];
            let promise = Promise {
                ballot: leader_ballot,
                from: Slot(0),
                to: near.next(),
                done: true,
                decided: near,
                incarnation: rng.next_u64(),
                entries,
                written: None,
            };
            forged(acceptor, proposer, Message::Promise(promise))
        }
        8 => forged(
            acceptor,
            proposer,
            Message::Nack(Nack { ballot: leader_ballot, promised: huge, reason: NackReason::Promised }),
        ),
        9 => forged(
            acceptor,
            proposer,
            Message::ProbeReply(ProbeReply {
                nonce: rng.next_u64(),
                promised: huge,
                decided: far,
                incarnation: rng.next_u64(),
                epoch: u32::MAX,
                joining: false,
                leader: None,
                challenge: 0,
                // A clock far ahead: alone, it moves no bound on stamps.
                clock_ms: u64::MAX,
                // Sent back to the acceptor in our probes: of another incarnation, it changes nothing.
                written: Some(Written { incarnation: rng.next_u64(), start: rng.next_u64(), ops: u64::MAX }),
                digest: Some(Digest { slot: Slot(DIGEST_EVERY), chain: 0 }),
            }),
        ),
        10 => forged(
            proposer,
            Node::Proposer(pick(rng, k.proposers)),
            Message::CatchUp(CatchUp { from: Slot(0), limit: u32::MAX, nonce: 0 }),
        ),
        // Reads in a victim's name (the reply goes to it).
        11 => forged(
            client,
            proposer,
            Message::LogRead(LogRead {
                req: rng.next_u64() >> 11,
                from: Slot(0),
                limit: u32::MAX,
                linearizable: false,
                cookie: None,
            }),
        ),
        12 if rng.chance(0.5) => {
            forged(client, acceptor, Message::StatusRequest(StatusRequest { req: 1, cookie: None }))
        }
        // A membership change as a client: only an operator with the peer key may ask for one.
        12 => {
            let op = MemberOp::Remove { role: MemberRole::Acceptor, id: pick(rng, k.acceptors) };
            forged(
                client,
                proposer,
                Message::MemberRequest(MemberRequest { req: 1, op, deadline_ms: None, epoch: None, cookie: None }),
            )
        }
        // A proposal as a client: no key is needed for that, and it is a proposal like any other.
        _ => {
            *next_seq += 1;
            let Node::Client(id) = client else { unreachable!() };
            let value = format!("adversary-{}", *next_seq);
            proposal = Some(Command::new(id, *next_seq, value.clone()));
            forged(client, proposer, Message::ClientPropose(ClientPropose { seq: *next_seq, value: value.into() }))
        }
    };
    (f, proposal)
}

/// A datagram of the insider: a key holder's extreme rounds and slots.
pub fn extreme(rng: &mut Rng, k: &Knowledge<'_>) -> Forged {
    let p = pick(rng, k.proposers);
    let proposer = Node::Proposer(p);
    let acceptor = Node::Acceptor(pick(rng, k.acceptors));
    // The ceiling of any clock of the run (the simulated clock stays within a day of 2026-06).
    let ceiling = paxos_core::round_ceiling(paxos_core::ROUND_CEILING_EPOCH_SECS + 16_000_000 + 86_400);
    let round = |rng: &mut Rng| match rng.index(3) {
        0 => MAX_COUNTER,
        1 => ceiling.saturating_add(rng.range(1, 1 << 40)).min(MAX_COUNTER),
        // Below the ceiling: believed, so rounds jump, but stay far below the bound.
        _ => k.ballot.round.saturating_add(rng.range(1, 1 << 32)),
    };
    let far_slot = |rng: &mut Rng| match rng.index(2) {
        0 => Slot(MAX_COUNTER - 1),
        _ => Slot(k.slot.0.saturating_add(paxos_core::MAX_SLOT_STEP).saturating_add(rng.range(1, 1000))),
    };
    let forged = |from, to, msg| Forged { from, to, msg };
    match rng.index(10) {
        0 => {
            let ballot = Ballot::in_epoch(k.ballot.epoch, round(rng), p);
            forged(proposer, acceptor, Message::Prepare(Prepare { ballot, from: Slot(0), epoch: None, wrote: vec![] }))
        }
        1 => {
            // A far slot under the current ballot: refused by the slot step; a round beyond the step: refused too.
            let ballot = if rng.chance(0.5) {
                k.ballot
            } else {
                Ballot::in_epoch(k.ballot.epoch, round(rng).max(k.ballot.round), p)
            };
            let ballot = Ballot::in_epoch(ballot.epoch, ballot.round, p);
            let slot = far_slot(rng);
            forged(
                proposer,
                acceptor,
                Message::Accept(Accept {
                    ballot,
                    entries: vec![AcceptEntry { slot, value: Value::Noop }],
                    commit: slot,
                }),
            )
        }
        2 => {
            let ballot = Ballot::in_epoch(k.ballot.epoch, round(rng), p);
            let to = Node::Proposer(pick(rng, k.proposers));
            forged(
                proposer,
                to,
                Message::Heartbeat(Heartbeat {
                    ballot,
                    leader: false,
                    decided: far_slot(rng),
                    known: far_slot(rng),
                    damaged: false,
                    written: vec![],
                    // A claim that the sender's log differs from everyone's (no draw: traces stay).
                    digest: Some(Digest { slot: Slot(DIGEST_EVERY), chain: 0 }),
                }),
            )
        }
        3 => forged(
            acceptor,
            proposer,
            Message::Accepted(Accepted { ballot: k.ballot, slots: vec![far_slot(rng)], written: None }),
        ),
        4 => forged(
            acceptor,
            proposer,
            Message::Nack(Nack {
                ballot: k.ballot,
                promised: Ballot::in_epoch(k.ballot.epoch, round(rng), p),
                reason: NackReason::Promised,
            }),
        ),
        5 => {
            let from = far_slot(rng);
            // A restart of the log far ahead: only with the nonce of the receiver's request, which it cannot see.
            let reply = CatchUpReply {
                from,
                entries: vec![Value::Noop],
                decided: Slot(MAX_COUNTER),
                epoch: None,
                nonce: rng.next_u64(),
            };
            forged(proposer, Node::Proposer(pick(rng, k.proposers)), Message::CatchUpReply(reply))
        }
        // A page of a log's state at a far slot, with a session claiming a far request: refused without the nonce.
        7 => {
            let at = far_slot(rng);
            let session = SessionEntry {
                client: ClientId(rng.range(1, 1 << 40)),
                seq: 1 << 50,
                slot: Slot(at.0 - 1),
                at: u64::MAX >> 12,
            };
            let page = StateReply {
                nonce: rng.next_u64(),
                at,
                epoch: None,
                clock: u64::MAX >> 12,
                sessions: vec![session],
                more: false,
            };
            let to = if rng.chance(0.5) { acceptor } else { Node::Proposer(pick(rng, k.proposers)) };
            forged(proposer, to, Message::StateReply(page))
        }
        // Copies of a log's state asked for in a member's name: each freezes one (a few at most, the oldest goes).
        8 => {
            let to = if rng.chance(0.5) { acceptor } else { Node::Proposer(pick(rng, k.proposers)) };
            let from = if to == proposer { Node::Proposer(pick(rng, k.proposers)) } else { proposer };
            forged(from, to, Message::StateRequest(StateRequest { nonce: rng.next_u64(), after: None }))
        }
        // A leader's hand-over at an extreme round, to a proposer: it may step down and campaign, no more.
        9 => {
            let ballot = Ballot::in_epoch(k.ballot.epoch, round(rng), p);
            let others: Vec<NodeId> = k.proposers.iter().copied().filter(|q| *q != p).collect();
            let to = if others.is_empty() { p } else { pick(rng, &others) };
            forged(proposer, Node::Proposer(to), Message::TimeoutNow(TimeoutNow { ballot }))
        }
        _ => forged(
            acceptor,
            proposer,
            Message::ProbeReply(ProbeReply {
                nonce: rng.next_u64(),
                promised: Ballot::in_epoch(k.ballot.epoch, round(rng), p),
                decided: far_slot(rng),
                incarnation: rng.next_u64(),
                epoch: 0,
                joining: false,
                leader: None,
                challenge: 0,
                // A clock far ahead: alone, it moves no bound on stamps.
                clock_ms: u64::MAX,
                // Sent back to the acceptor in our probes: of another incarnation, it changes nothing.
                written: Some(Written { incarnation: rng.next_u64(), start: rng.next_u64(), ops: u64::MAX }),
                digest: Some(Digest { slot: Slot(DIGEST_EVERY), chain: 0 }),
            }),
        ),
    }
}
