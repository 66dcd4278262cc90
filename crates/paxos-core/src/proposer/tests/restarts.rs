//! A scenario across real acceptors: restarts with wiped data dirs.

use super::*;

/// A tiny synchronous network of proposers 1 and 2 and five real acceptors: every `Ready` is executed at
/// once (its writes applied to the node's store, its reads served from that store, its messages
/// delivered in the order sent, the answers after them) except over cut links, which drop every datagram
/// both ways.
struct Net {
    proposers: [Proposer; 2],
    /// Per proposer, what its store holds: its data dir.
    disks: [MemStore<ProposerState>; 2],
    acceptors: Vec<Acceptor>,
    /// Per acceptor, its store.
    acceptor_disks: Vec<MemStore<AcceptorState>>,
    /// Cut links, as (proposer, acceptor).
    cut: Vec<(Node, Node)>,
    /// Every message delivered so far, with its sender, in order.
    delivered: Vec<(Node, Outgoing)>,
}

impl Net {
    fn new() -> Self {
        let genesis = cfg(1).genesis;
        let acceptors = ACCEPTORS
            .iter()
            .map(|a| {
                let cfg = AcceptorConfig {
                    id: NodeId(*a),
                    genesis: genesis.clone(),
                    incarnation: inc(*a),
                    nonce_seed: inc(*a) ^ 11,
                    retain_slots: 0,
                    lease_ticks: 20,
                };
                Acceptor::new(cfg, AcceptorState::default())
            })
            .collect();
        Net {
            proposers: [proposer(1), proposer(2)],
            disks: Default::default(),
            acceptors,
            acceptor_disks: vec![MemStore::default(); ACCEPTORS.len()],
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
        self.disks[id as usize - 1] = MemStore::default();
    }

    /// One tick of every node, and everything that follows from it.
    fn tick(&mut self) {
        for p in &mut self.proposers {
            p.tick();
        }
        for a in &mut self.acceptors {
            a.tick();
        }
        self.run();
    }

    /// Ticks until `done` holds.
    fn tick_until(&mut self, what: &str, done: impl Fn(&Net) -> bool) {
        for _ in 0..1_000 {
            if done(self) {
                return;
            }
            self.tick();
        }
        panic!("never: {what}");
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
            // A page read for a node makes it answer at once: take its Ready until it is empty.
            for (p, disk) in self.proposers.iter_mut().zip(&mut self.disks) {
                let from = prop(p.id().0);
                loop {
                    let r = p.take_ready();
                    if r.is_empty() {
                        break;
                    }
                    queue.extend(r.early.into_iter().map(|m| (from, m)));
                    disk.apply(&r.persist).expect("a store in memory");
                    queue.extend(r.messages.into_iter().map(|m| (from, m)));
                    for read in r.reads {
                        let page = disk.read(read.from, read.limit, read.max_bytes).expect("a store in memory");
                        p.on_read(read.id, page);
                    }
                }
            }
            for (a, disk) in self.acceptors.iter_mut().zip(&mut self.acceptor_disks) {
                let from = acc(a.id().0);
                loop {
                    let r = a.take_ready();
                    if r.is_empty() {
                        break;
                    }
                    disk.apply(&r.persist).expect("a store in memory");
                    queue.extend(r.messages.into_iter().map(|m| (from, m)));
                    for read in r.reads {
                        let page = disk.read(read.from, read.limit, read.max_bytes).expect("a store in memory");
                        a.on_read(read.id, page);
                    }
                }
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

/// Unique ballots across a lost data dir (the reviewer's scenario): proposer 2 leads epoch 1 with 1:2.2 and
/// gets "a" accepted at slot 1 by acceptors 1 and 2 only; restarted with an empty store and reaching
/// acceptors 3 to 5 only, it hears "promised 1:2.2, in epoch 1" in answer to its probe, copies the decided
/// log up to the epoch's start, campaigns with 1:3.2 rather than 1:2.2 again, and the "b" it then decides at
/// slot 1 is what proposer 1's learner decides too.
/// (Reusing its ballot, as before the probe, let proposer 1 count the old votes for "a" and a new vote for
/// "b" as one majority of that ballot and decide "a" while proposer 2 decided "b".)
#[test]
fn proposer_with_a_wiped_data_dir_never_reuses_its_ballot() {
    let mut net = Net::new();
    net.tick_until("proposer 2 leads epoch 1", |net| {
        net.proposer(2).role() == Leadership::Leader && net.proposer(2).learner().epoch_number() == 1
    });
    assert_eq!((net.proposer(2).ballot(), net.disks[1].state.round), (b1(2, 2), 2));
    assert_eq!(net.proposer(1).role(), Leadership::Follower);
    net.partition(2, &[3, 4, 5]);
    net.input(client(7), 2, propose(1, "a"));
    for a in &net.acceptors[..2] {
        assert_eq!(a.state().accepted.get(&Slot(1)), Some(&(b1(2, 2), cmd(7, 1, "a"))), "acceptor {}", a.id());
    }
    assert_eq!(net.proposer(1).learner().value(Slot(1)), None, "two votes of five choose nothing");

    net.wipe(2);
    net.partition(2, &[1, 2]);
    let mark = net.delivered.len();
    net.tick();
    let reply = |a: u32| ProbeReply {
        nonce: 0,
        promised: b1(2, 2),
        decided: Slot(1),
        incarnation: inc(a),
        epoch: 1,
        joining: false,
        leader: None,
        challenge: 0,
        clock_ms: 0,
        written: None,
        digest: None,
    };
    // Each acceptor's lease challenge is drawn from its secret seed: compared apart from the rest.
    let answers: Vec<(Node, Message)> = net
        .acceptor_answers_to(2, mark)
        .into_iter()
        .map(|(to, mut msg)| {
            if let Message::ProbeReply(r) = &mut msg {
                assert_ne!(r.challenge, 0, "every answer carries a challenge");
                r.challenge = 0;
                let written = r.written.take().expect("every answer says how much was written");
                assert_eq!(written.incarnation, r.incarnation);
            }
            (to, msg)
        })
        .collect();
    assert_eq!(answers, [3, 4, 5].map(|a| (acc(a), Message::ProbeReply(reply(a)))).to_vec());
    net.tick_until("proposer 2 leads again", |net| net.proposer(2).role() == Leadership::Leader);
    assert_eq!(net.proposer(2).learner().epoch(), &epoch1(), "it copied the pinning configuration back");
    assert_eq!((net.proposer(2).ballot(), net.disks[1].state.round), (b1(3, 2), 3), "a round above its former self's");

    net.input(client(8), 2, propose(1, "b"));
    net.tick_until("proposer 1 learns slot 1 from the leader's commit", |net| {
        net.proposer(1).learner().value(Slot(1)).is_some()
    });

    let slot1 = net.proposers.each_ref().map(|p| p.learner().value(Slot(1)).cloned());
    assert_eq!(slot1, [Some(cmd(8, 1, "b")), Some(cmd(8, 1, "b"))], "what proposers 1 and 2 decided at slot 1");
    let reply = (prop(2), send(client(8), Message::ClientReply(ClientReply { seq: 1, slot: Slot(1) })));
    assert_eq!(net.delivered.iter().filter(|d| **d == reply).count(), 1, "the client is told slot 1 once");
}

/// Unique ballots across restarts: answers to an earlier start's probe (another nonce) are late copies
/// that may predate that start's campaigns, so they raise the round but never count towards the majority.
#[test]
fn probe_answers_of_an_earlier_start_do_not_count() {
    let mut c = cfg(2);
    c.incarnation = 7;
    let mut p = Proposer::new(c, ProposerState::default());
    tick(&mut p);
    let answer = |a: u32, nonce: u64, promised: Ballot| {
        Message::ProbeReply(ProbeReply {
            nonce,
            promised,
            decided: Slot(0),
            incarnation: inc(a),
            epoch: 0,
            joining: false,
            leader: None,
            challenge: 0,
            clock_ms: 0,
            written: None,
            digest: None,
        })
    };
    for a in 1..=5 {
        assert!(step(&mut p, acc(a), answer(a, 6, b(3, 2))).is_empty());
    }
    for _ in 0..100 {
        tick(&mut p);
        assert_eq!(p.role(), Leadership::Follower, "no campaign on stale answers");
    }
    let round = p.probe_round;
    for a in 1..=3 {
        step(&mut p, acc(a), answer(a, 7 + round, Ballot::ZERO));
    }
    let r = campaign(&mut p);
    assert_eq!(r.persist, vec![ProposerOp::Round(4)], "the stale answers still raised the round");
}
