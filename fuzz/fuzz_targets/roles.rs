//! A member's key in a stranger's hands: two proposers and three acceptors,
//! the real roles, talk to each other at once, while the fuzzer's input
//! speaks as anyone (any member or client, to any member) with any message
//! the receivers' decoder admits, between ticks of the clock. No input may
//! make a role panic: every `assert!` in the core is about the node's own
//! state, which no message may break.
//!
//! The input is lines: `t` and a byte ticks every role (1 to 64 times, the
//! traffic between them delivered after each tick), `x` drops the traffic in
//! flight, anything else is a datagram's body, decoded as a receiver decodes
//! it and delivered, each envelope to the member it names.
//!
//! An input whose first line is `o` holds an outsider: it has a client key,
//! not a member's, so the receivers' `admit` refuses what it says as a
//! member or as an operator. Then the roles must also agree: no slot is
//! decided with two values in the two proposers' logs.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use paxos_core::{
    Acceptor, AcceptorConfig, AcceptorState, MemStore, Proposer, ProposerConfig, ProposerState, Role, Store,
};
use paxos_proto::auth::{admit, Policy, Signer};
use paxos_proto::{decode_bundle, Config, Member, Message, Node, NodeId, Slot};

/// 2026-11-30, in Unix milliseconds: rounds are believed up to the ceiling of this time.
const START_MS: u64 = 1_796_000_000_000;
/// The most deliveries of members' own traffic per line, so that every input runs quickly.
const MAX_DELIVERIES: usize = 4_000;

/// A role and the in-memory store its writes go to (reads of the decided log are served from it).
struct Running<R: Role> {
    role: R,
    store: MemStore<R::State>,
}

impl<R: Role> Running<R> {
    fn flush(&mut self, wire: &mut VecDeque<(Node, Node, Message)>) {
        let ready = self.role.take_ready();
        self.store.apply(&ready.persist).expect("the in-memory store takes every op");
        let me = self.role.me();
        for out in ready.early.into_iter().chain(ready.messages) {
            wire.push_back((me, out.to, out.msg));
        }
        for read in ready.reads {
            match self.store.read(read.from, read.limit, read.max_bytes) {
                Ok(page) => self.role.on_read(read.id, page),
                Err(_) => self.role.on_read_failed(read.id),
            }
        }
    }
}

struct World {
    proposers: Vec<Running<Proposer>>,
    acceptors: Vec<Running<Acceptor>>,
    wire: VecDeque<(Node, Node, Message)>,
    now_ms: u64,
}

impl World {
    fn new() -> World {
        let member = |id| Member { id: NodeId(id), addr: String::new(), incarnation: None };
        let genesis = Config {
            epoch: 0,
            acceptors: (1..=3).map(member).collect(),
            proposers: (1..=2).map(member).collect(),
            session_lifetime_ms: 60_000,
        };
        let proposers = (1..=2)
            .map(|id| {
                let mut cfg = ProposerConfig::with_genesis(NodeId(id), genesis.clone());
                cfg.window = 8;
                cfg.incarnation = u64::from(id);
                let mut role = Proposer::new(cfg, ProposerState::default());
                role.set_clock(START_MS);
                Running { role, store: MemStore::new(ProposerState::default()) }
            })
            .collect();
        let acceptors = (1..=3)
            .map(|id| {
                let cfg = AcceptorConfig {
                    id: NodeId(id),
                    genesis: genesis.clone(),
                    incarnation: 100 + u64::from(id),
                    nonce_seed: 200 + u64::from(id),
                    retain_slots: 16,
                    lease_ticks: 20,
                };
                let mut role = Acceptor::new(cfg, AcceptorState::default());
                role.set_clock(START_MS);
                Running { role, store: MemStore::new(AcceptorState::default()) }
            })
            .collect();
        World { proposers, acceptors, wire: VecDeque::new(), now_ms: START_MS }
    }

    fn deliver(&mut self, from: Node, to: Node, msg: Message) {
        let wire = &mut self.wire;
        match to {
            Node::Proposer(id) => {
                if let Some(p) = (id.0 as usize).checked_sub(1).and_then(|i| self.proposers.get_mut(i)) {
                    let _ = p.role.handle(from, msg);
                    p.flush(wire);
                }
            }
            Node::Acceptor(id) => {
                if let Some(a) = (id.0 as usize).checked_sub(1).and_then(|i| self.acceptors.get_mut(i)) {
                    let _ = a.role.handle(from, msg);
                    a.flush(wire);
                }
            }
            Node::Client(_) => {}
        }
    }

    fn settle(&mut self) {
        for _ in 0..MAX_DELIVERIES {
            let Some((from, to, msg)) = self.wire.pop_front() else { return };
            self.deliver(from, to, msg);
        }
    }

    fn tick(&mut self) {
        self.now_ms += 10;
        let wire = &mut self.wire;
        for p in &mut self.proposers {
            p.role.set_clock(self.now_ms);
            p.role.tick();
            p.flush(wire);
        }
        for a in &mut self.acceptors {
            a.role.set_clock(self.now_ms);
            a.role.tick();
            a.flush(wire);
        }
        self.settle();
    }

    /// Every slot the two proposers both hold decided the same value.
    fn check_agreement(&mut self) {
        let [one, two] = &mut self.proposers[..] else { unreachable!("two proposers") };
        let read = |m: &mut Running<Proposer>| {
            m.store.read(Slot(0), usize::MAX, usize::MAX).expect("the in-memory store reads")
        };
        let (a, b) = (read(one), read(two));
        fn at(page: &paxos_core::LogPage, slot: u64) -> Option<&paxos_proto::Value> {
            slot.checked_sub(page.from.0).and_then(|i| page.entries.get(i as usize)).map(|e| &e.value)
        }
        let last = (a.from.0 + a.entries.len() as u64).min(b.from.0 + b.entries.len() as u64);
        for slot in a.from.0.max(b.from.0)..last {
            assert_eq!(at(&a, slot), at(&b, slot), "slot {slot} decided twice");
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut world = World::new();
    let outsider = bytes.split(|b| *b == b'\n').next() == Some(b"o");
    let policy = Policy { peers: true, clients: true };
    for line in bytes.split(|b| *b == b'\n') {
        match line {
            [b't', n, ..] => {
                for _ in 0..=(n % 64) {
                    world.tick();
                }
            }
            [b'x', ..] => world.wire.clear(),
            body => {
                if let Ok(envs) = decode_bundle(body) {
                    for env in envs {
                        if outsider && admit(env.from, &env.msg, Signer::Client, policy).is_err() {
                            continue;
                        }
                        world.deliver(env.from, env.to, env.msg);
                    }
                    world.settle();
                }
            }
        }
    }
    if outsider {
        world.check_agreement();
    }
});
