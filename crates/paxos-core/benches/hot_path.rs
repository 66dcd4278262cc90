//! `cargo bench -p paxos-core`: the codec and the core's hot path, without a cluster.
//!
//! A plain harness (no dependency): each case runs for about a second and
//! prints nanoseconds per operation, so a regression shows without sockets,
//! disks or a second process. Figures are for one core of this machine.
//!
//! - `codec/*`: encode and decode of the datagrams that dominate steady state.
//! - `core/values`: a leader and five acceptors (two failed, as in the seed
//!   scenario) wired back to back in memory: client values in, client replies
//!   out, through take_ready, batching and the learner. This is the ceiling the
//!   daemons approach as I/O costs go to zero.

use std::hint::black_box;
use std::time::{Duration, Instant};

use paxos_core::{Acceptor, AcceptorConfig, AcceptorState, Proposer, ProposerConfig, ProposerState};
use paxos_proto::{
    decode, encode, Accept, AcceptEntry, Accepted, Ballot, ClientId, ClientPropose, Command, Envelope, Message, Node,
    NodeId, Slot, Value, Written, PROTOCOL_VERSION,
};

fn bench(name: &str, ops_per_iter: u64, mut f: impl FnMut()) {
    // Warm up, then run for about a second.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        f();
    }
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        f();
        iters += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / (iters * ops_per_iter) as f64;
    println!("{name:<40} {ns:>10.1} ns/op {:>12.0} ops/s", 1e9 / ns);
}

fn envelope(msg: Message) -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        cluster: "paxos".into(),
        from: Node::Proposer(NodeId(2)),
        to: Node::Acceptor(NodeId(3)),
        msg,
    }
}

fn value(i: u64) -> Value {
    Value::Command(Command::new(ClientId(1000 + i % 64), i, format!("{:064}", i)))
}

fn codec() {
    let ballot = Ballot::new(7, NodeId(2));
    let accept = envelope(Message::Accept(Accept {
        ballot,
        entries: (0..64).map(|i| AcceptEntry { slot: Slot(1_000_000 + i), value: value(i) }).collect(),
        commit: Slot(1_000_000),
    }));
    let accepted = envelope(Message::Accepted(Accepted {
        ballot,
        slots: (0..64).map(|i| Slot(1_000_000 + i)).collect(),
        written: Some(Written { incarnation: u64::MAX - 1, start: u64::MAX - 2, ops: 123_456_789 }),
    }));
    let mut buf = Vec::with_capacity(65_536);
    for (name, env) in [("accept of 64 x 64 B", &accept), ("accepted of 64 slots", &accepted)] {
        bench(&format!("codec/encode {name}"), 1, || {
            encode(black_box(env), &mut buf).unwrap();
        });
        encode(env, &mut buf).unwrap();
        let bytes = buf.clone();
        bench(&format!("codec/decode {name}"), 1, || {
            black_box(decode(black_box(&bytes)).unwrap());
        });
    }
}

/// A leader and five acceptors (1 and 2 failed once the cluster is up), messages delivered in memory.
struct Cluster {
    leader: Proposer,
    acceptors: Vec<Acceptor>,
    next_seq: u64,
    /// Acceptors 1 and 2 are failed.
    failed: bool,
}

impl Cluster {
    fn new() -> Cluster {
        let proposers = vec![NodeId(1)];
        let acceptors: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let leader = Proposer::new(
            ProposerConfig::new(NodeId(1), proposers.clone(), acceptors.clone()),
            ProposerState::default(),
        );
        let genesis = ProposerConfig::new(NodeId(1), proposers, acceptors.clone()).genesis;
        let acceptors = acceptors
            .iter()
            .map(|a| {
                let cfg = AcceptorConfig {
                    id: *a,
                    genesis: genesis.clone(),
                    incarnation: u64::from(a.0),
                    nonce_seed: 0,
                    retain_slots: 0,
                    lease_ticks: 20,
                };
                Acceptor::new(cfg, AcceptorState::default())
            })
            .collect();
        let mut c = Cluster { leader, acceptors, next_seq: 0, failed: false };
        // Up first (every acceptor pinned in the first configuration), then 1 and 2 fail.
        while c.leader.role() != paxos_core::Leadership::Leader || c.leader.learner().epoch_number() == 0 {
            c.leader.tick();
            c.route();
        }
        c.failed = true;
        c
    }

    /// Delivers everything until quiet; returns client replies seen.
    fn route(&mut self) -> u64 {
        let mut replies = 0;
        loop {
            let ready = self.leader.take_ready();
            if ready.is_empty() {
                return replies;
            }
            for out in ready.early.into_iter().chain(ready.messages) {
                match out.to {
                    // Acceptors 1 and 2 are failed, as in the seed scenario.
                    Node::Acceptor(a) if a.0 > 2 || !self.failed => {
                        let acc = &mut self.acceptors[a.0 as usize - 1];
                        acc.handle(Node::Proposer(NodeId(1)), out.msg).unwrap();
                        for m in acc.take_ready().messages {
                            let _ = self.leader.handle(Node::Acceptor(a), m.msg);
                        }
                    }
                    Node::Client(_) => replies += 1,
                    _ => {}
                }
            }
        }
    }

    /// Proposes `n` values from `n` clients at once and routes until all are answered.
    fn round(&mut self, n: u64) {
        for i in 0..n {
            self.next_seq += 1;
            let msg = Message::ClientPropose(ClientPropose { seq: self.next_seq, value: format!("{:064}", i).into() });
            self.leader.handle(Node::Client(ClientId(i + 1)), msg).unwrap();
        }
        let replies = self.route();
        assert_eq!(replies, n);
    }
}

fn core() {
    for batch in [1, 64, 1000] {
        let mut c = Cluster::new();
        bench(&format!("core/values in batches of {batch}"), batch, || c.round(batch));
    }
}

fn main() {
    codec();
    core();
}
