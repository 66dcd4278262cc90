//! Fault injection on a node's own outgoing datagrams: the `[chaos]` section.
//!
//! Network-level faults (partitions, loss on an interface) come from the
//! namespace scripts; delay, duplication and reordering are hard to produce
//! there without netem, so a daemon can inject them itself, into what it
//! sends and nothing else:
//!
//! ```text
//!   encode ──► Chaos::submit ──┬─ drop (p = drop) ───────────────► counted, gone
//!                              ├─ reorder (p = reorder) ─► held ─► out behind the next datagram
//!                              │                                   (or after MIN_REORDER_HOLD)
//!                              └─ 1 or 2 copies (p = duplicate)
//!                                  each delayed 0..=delay_ms ─► now, or scheduled
//!   loop wake-up at next_wakeup() ─► Chaos::due ─► socket
//! ```
//!
//! Every decision is drawn from a seeded generator, one per node: the seed of
//! the file xor the node's index ([`node_index`]), so that two nodes do not
//! draw the same faults and a run can be repeated with the same seed (as far
//! as the timing of the real network lets it). Incoming datagrams are not
//! touched: every node's outgoing faults are every other node's incoming ones.
//!
//! Chaos is off unless a probability or `delay_ms` is set, and a node with
//! chaos on says so at `warn` when it starts, with every setting and its own
//! seed, and counts what it did in its status (`chaos.dropped`, ...).
//!
//! The core is unaware of all this: resending after loss is its own business
//! (driven by `tick()`), and this module only makes the network worse.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use paxos_proto::Node;

use paxos_client::config::{ChaosSettings, ClusterConfig};

/// The longest a reordered datagram waits for a later one to overtake it (or
/// `delay_ms`, when that is longer): when the node sends nothing more, the
/// held datagram still goes out.
pub const MIN_REORDER_HOLD: Duration = Duration::from_millis(20);

/// One datagram on its way out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Where it goes.
    pub addr: SocketAddr,
    /// The node it is addressed to (for the address book when a send fails).
    pub to: Node,
    /// The encoded envelope.
    pub bytes: Vec<u8>,
}

/// What the chaos did so far; each counts datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChaosStats {
    /// Dropped instead of sent.
    pub dropped: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Copies sent later than submitted (by the delay; not counting reordering).
    pub delayed: u64,
    /// Held back behind a later datagram.
    pub reordered: u64,
    /// Pending when the node failed (SIGUSR1) and so never sent.
    pub discarded: u64,
}

impl ChaosStats {
    /// The counters as a node's status shows them: `chaos.dropped`, ...
    pub fn counters(&self) -> BTreeMap<String, u64> {
        [
            ("chaos.dropped", self.dropped),
            ("chaos.duplicated", self.duplicated),
            ("chaos.delayed", self.delayed),
            ("chaos.reordered", self.reordered),
            ("chaos.discarded", self.discarded),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// A datagram scheduled for later, ordered by (due, seq): the earliest first,
/// and of two due at once the one submitted first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    due: Instant,
    seq: u64,
    datagram: DatagramOrd,
}

/// [`Datagram`] with an order that never decides anything (seq is unique),
/// so that [`Scheduled`] can derive `Ord`.
#[derive(Debug, PartialEq, Eq)]
struct DatagramOrd(Datagram);

impl PartialOrd for DatagramOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DatagramOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// A reordered datagram (with its copies) waiting for a later one.
#[derive(Debug)]
struct Held {
    /// It goes out by itself at this time if nothing overtakes it before.
    deadline: Instant,
    seq: u64,
    copies: Vec<Datagram>,
}

/// The fault injector of one node. See the module docs.
#[derive(Debug)]
pub struct Chaos {
    settings: ChaosSettings,
    node_seed: u64,
    rng: SplitMix64,
    next_seq: u64,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    held: Vec<Held>,
    stats: ChaosStats,
}

impl Chaos {
    /// The injector of the node with `node_index` (see [`node_index`]) under
    /// `settings`, or `None` when the settings inject no fault at all.
    pub fn new(settings: &ChaosSettings, node_index: u64) -> Option<Chaos> {
        if !settings.enabled() {
            return None;
        }
        let node_seed = settings.seed ^ node_index;
        Some(Chaos {
            settings: settings.clone(),
            node_seed,
            rng: SplitMix64(node_seed),
            next_seq: 0,
            scheduled: BinaryHeap::new(),
            held: Vec::new(),
            stats: ChaosStats::default(),
        })
    }

    /// The seed this node draws from: the file's seed xor the node index.
    pub fn node_seed(&self) -> u64 {
        self.node_seed
    }

    /// The settings in force.
    pub fn settings(&self) -> &ChaosSettings {
        &self.settings
    }

    /// What the chaos did so far.
    pub fn stats(&self) -> ChaosStats {
        self.stats
    }

    /// The number of datagrams waiting (scheduled or held, copies counted).
    pub fn pending(&self) -> usize {
        self.scheduled.len() + self.held.iter().map(|h| h.copies.len()).sum::<usize>()
    }

    /// Hands one datagram to the chaos at `now`; returns what to send right
    /// away, in order. The rest is dropped, held back or scheduled for
    /// [`Chaos::due`].
    pub fn submit(&mut self, now: Instant, datagram: Datagram) -> Vec<Datagram> {
        if self.rng.chance(self.settings.drop) {
            self.stats.dropped += 1;
            return Vec::new();
        }
        let mut copies = vec![datagram];
        if self.rng.chance(self.settings.duplicate) {
            self.stats.duplicated += 1;
            copies.push(copies[0].clone());
        }
        if self.rng.chance(self.settings.reorder) {
            self.stats.reordered += 1;
            let seq = self.seq();
            self.held.push(Held { deadline: now + self.max_hold(), seq, copies });
            return Vec::new();
        }

        let mut now_out = Vec::new();
        let mut latest: Option<Instant> = None;
        for copy in copies {
            let delay = self.draw_delay();
            if delay.is_zero() {
                now_out.push(copy);
            } else {
                self.stats.delayed += 1;
                let due = now + delay;
                latest = latest.max(Some(due));
                self.schedule(due, copy);
            }
        }

        // Whatever was held back goes out behind this datagram: right after it
        // when it leaves now, else at its latest copy's time (a later seq, so after it).
        let held = std::mem::take(&mut self.held);
        for h in held {
            match latest {
                None => now_out.extend(h.copies),
                Some(due) => {
                    for copy in h.copies {
                        self.schedule(due, copy);
                    }
                }
            }
        }
        now_out
    }

    /// The datagrams whose time has come at `now`, in order: the scheduled
    /// ones by due time, then the held ones that waited long enough.
    pub fn due(&mut self, now: Instant) -> Vec<Datagram> {
        let mut out = Vec::new();
        while self.scheduled.peek().is_some_and(|Reverse(s)| s.due <= now) {
            let Reverse(s) = self.scheduled.pop().expect("peeked");
            out.push(s.datagram.0);
        }
        let (ripe, waiting): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(|h| h.deadline <= now);
        self.held = waiting;
        let mut ripe = ripe;
        ripe.sort_by_key(|h| h.seq);
        for h in ripe {
            out.extend(h.copies);
        }
        out
    }

    /// When [`Chaos::due`] has something next, if anything waits.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let scheduled = self.scheduled.peek().map(|Reverse(s)| s.due);
        let held = self.held.iter().map(|h| h.deadline).min();
        match (scheduled, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets everything pending (the node failed: it sends nothing).
    pub fn discard(&mut self) {
        self.stats.discarded += self.pending() as u64;
        self.scheduled.clear();
        self.held.clear();
    }

    fn max_hold(&self) -> Duration {
        MIN_REORDER_HOLD.max(Duration::from_millis(self.settings.delay_ms))
    }

    fn draw_delay(&mut self) -> Duration {
        if self.settings.delay_ms == 0 {
            return Duration::ZERO;
        }
        let max_us = self.settings.delay_ms.saturating_mul(1000);
        Duration::from_micros(self.rng.below(max_us.saturating_add(1)))
    }

    fn schedule(&mut self, due: Instant, datagram: Datagram) {
        let seq = self.seq();
        self.scheduled.push(Reverse(Scheduled { due, seq, datagram: DatagramOrd(datagram) }));
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

/// The index of `node` in `cluster` that its chaos seed is mixed with: the
/// proposers count from 1 in file order, the acceptors go on after them
/// (with 2 proposers, acceptor 1 of the file is index 3). A node that is not
/// in the file gets 0.
pub fn node_index(cluster: &ClusterConfig, node: Node) -> u64 {
    let position = match node {
        Node::Proposer(id) => cluster.proposers.iter().position(|m| m.id == id.0),
        Node::Acceptor(id) => cluster.acceptors.iter().position(|m| m.id == id.0).map(|i| i + cluster.proposers.len()),
        Node::Client(_) => None,
    };
    position.map_or(0, |i| i as u64 + 1)
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and good enough to
/// draw faults from; any seed, zero included, gives a full-period sequence.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`; draws nothing when `p` is 0, so that a
    /// fault that is off does not shift the draws of the others.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform in 0..n (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_proto::NodeId;

    fn settings(drop: f64, duplicate: f64, delay_ms: u64, reorder: f64, seed: u64) -> ChaosSettings {
        ChaosSettings { drop, duplicate, delay_ms, reorder, seed }
    }

    fn dgram(n: u8) -> Datagram {
        Datagram { addr: "127.0.0.1:7101".parse().unwrap(), to: Node::Acceptor(NodeId(1)), bytes: vec![n] }
    }

    /// Sends 0..n at `now` and drains everything due up to `until`, in send order.
    fn run(chaos: &mut Chaos, n: u8, now: Instant, until: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(chaos.submit(now, dgram(i)).into_iter().map(|d| d.bytes[0]));
        }
        out.extend(chaos.due(until).into_iter().map(|d| d.bytes[0]));
        out
    }

    #[test]
    fn off_by_default_and_the_seed_alone_is_off() {
        assert!(Chaos::new(&ChaosSettings::default(), 1).is_none());
        assert!(Chaos::new(&settings(0.0, 0.0, 0, 0.0, 42), 1).is_none());
        assert!(Chaos::new(&settings(0.0, 0.0, 1, 0.0, 0), 1).is_some());
    }

    #[test]
    fn certain_drop_sends_nothing_and_counts_everything() {
        let mut chaos = Chaos::new(&settings(1.0, 1.0, 50, 1.0, 7), 1).unwrap();
        let now = Instant::now();
        assert!(run(&mut chaos, 100, now, now + Duration::from_secs(1)).is_empty());
        assert_eq!(chaos.stats().dropped, 100);
        assert_eq!(chaos.pending(), 0);
        assert_eq!(chaos.next_wakeup(), None);
    }

    #[test]
    fn certain_duplication_sends_each_twice_in_order() {
        let mut chaos = Chaos::new(&settings(0.0, 1.0, 0, 0.0, 7), 1).unwrap();
        let now = Instant::now();
        assert_eq!(run(&mut chaos, 3, now, now), vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(chaos.stats().duplicated, 3);
    }

    #[test]
    fn delays_stay_within_delay_ms_and_nothing_leaves_early() {
        let mut chaos = Chaos::new(&settings(0.0, 0.0, 30, 0.0, 9), 1).unwrap();
        let now = Instant::now();
        let mut sent_now = 0;
        for i in 0..200 {
            sent_now += chaos.submit(now, dgram(i)).len();
        }
        assert!(sent_now < 20, "almost every datagram is delayed, {sent_now} went out at once");
        let wake = chaos.next_wakeup().expect("something waits");
        assert!(wake > now && wake <= now + Duration::from_millis(30));
        assert!(chaos.due(now).is_empty(), "nothing is due before its time");
        let later = chaos.due(now + Duration::from_millis(30));
        assert_eq!(sent_now + later.len(), 200, "every datagram leaves by delay_ms");
        assert_eq!(chaos.pending(), 0);
        assert_eq!(chaos.stats().delayed as usize, 200 - sent_now);
    }

    #[test]
    fn delays_reorder_datagrams_by_their_due_time() {
        let mut chaos = Chaos::new(&settings(0.0, 0.0, 50, 0.0, 3), 1).unwrap();
        let now = Instant::now();
        let out = run(&mut chaos, 50, now, now + Duration::from_millis(50));
        assert_eq!(out.len(), 50);
        let mut sorted = out.clone();
        sorted.sort();
        assert_ne!(out, sorted, "random delays change the order");
        assert_eq!(sorted, (0..50).collect::<Vec<u8>>(), "and lose nothing");
    }

    #[test]
    fn a_reordered_datagram_leaves_behind_the_next_one() {
        // reorder = 1 holds everything; so submit with a second injector that
        // holds the first datagram only: find a seed whose first draw holds
        // and whose second does not, with reorder = 0.5.
        let now = Instant::now();
        let seed = (0..1000)
            .find(|&seed| {
                let mut c = Chaos::new(&settings(0.0, 0.0, 0, 0.5, seed), 1).unwrap();
                c.submit(now, dgram(0)).is_empty() && c.submit(now, dgram(1)).len() == 2
            })
            .expect("some seed holds the first datagram and not the second");
        let mut chaos = Chaos::new(&settings(0.0, 0.0, 0, 0.5, seed), 1).unwrap();
        assert!(chaos.submit(now, dgram(0)).is_empty(), "held back");
        assert_eq!(chaos.pending(), 1);
        let out: Vec<u8> = chaos.submit(now, dgram(1)).into_iter().map(|d| d.bytes[0]).collect();
        assert_eq!(out, vec![1, 0], "the held datagram goes out right behind the later one");
        assert_eq!(chaos.stats().reordered, 1);
    }

    #[test]
    fn a_held_datagram_leaves_by_itself_when_nothing_follows() {
        let mut chaos = Chaos::new(&settings(0.0, 0.0, 0, 1.0, 1), 1).unwrap();
        let now = Instant::now();
        assert!(chaos.submit(now, dgram(0)).is_empty());
        assert!(chaos.submit(now, dgram(1)).is_empty());
        assert_eq!(chaos.next_wakeup(), Some(now + MIN_REORDER_HOLD));
        assert!(chaos.due(now + MIN_REORDER_HOLD - Duration::from_millis(1)).is_empty());
        let out: Vec<u8> = chaos.due(now + MIN_REORDER_HOLD).into_iter().map(|d| d.bytes[0]).collect();
        assert_eq!(out, vec![0, 1], "held datagrams keep their own order among themselves");
        assert_eq!(chaos.next_wakeup(), None);
    }

    #[test]
    fn behind_a_delayed_datagram_the_held_one_is_scheduled_after_it() {
        let now = Instant::now();
        let seed = (0..1000)
            .find(|&seed| {
                let mut c = Chaos::new(&settings(0.0, 0.0, 10, 0.5, seed), 1).unwrap();
                c.submit(now, dgram(0));
                let first_held = c.stats().reordered == 1;
                c.submit(now, dgram(1));
                first_held && c.stats().reordered == 1 && c.stats().delayed == 1
            })
            .expect("a seed that holds the first and delays the second");
        let mut chaos = Chaos::new(&settings(0.0, 0.0, 10, 0.5, seed), 1).unwrap();
        chaos.submit(now, dgram(0));
        chaos.submit(now, dgram(1));
        let out: Vec<u8> = chaos.due(now + Duration::from_millis(10)).into_iter().map(|d| d.bytes[0]).collect();
        assert_eq!(out, vec![1, 0]);
    }

    #[test]
    fn the_same_seed_draws_the_same_faults_and_nodes_draw_differently() {
        let s = settings(0.2, 0.2, 20, 0.2, 1234);
        let now = Instant::now();
        let until = now + Duration::from_millis(100);
        let a = run(&mut Chaos::new(&s, 3).unwrap(), 200, now, until);
        let b = run(&mut Chaos::new(&s, 3).unwrap(), 200, now, until);
        let c = run(&mut Chaos::new(&s, 4).unwrap(), 200, now, until);
        assert_eq!(a, b, "same seed and node: same run");
        assert_ne!(a, c, "another node draws other faults");
        assert_eq!(Chaos::new(&s, 3).unwrap().node_seed(), 1234 ^ 3);
    }

    #[test]
    fn rates_match_the_probabilities() {
        let mut chaos = Chaos::new(&settings(0.1, 0.2, 0, 0.0, 5), 1).unwrap();
        let now = Instant::now();
        let n = 20_000u64;
        let mut sent = 0u64;
        for _ in 0..n {
            sent += chaos.submit(now, dgram(0)).len() as u64;
        }
        let st = chaos.stats();
        let dropped = st.dropped as f64 / n as f64;
        let duplicated = st.duplicated as f64 / (n - st.dropped) as f64;
        assert!((dropped - 0.1).abs() < 0.01, "drop rate {dropped}");
        assert!((duplicated - 0.2).abs() < 0.015, "duplicate rate {duplicated}");
        assert_eq!(sent, n - st.dropped + st.duplicated);
    }

    #[test]
    fn discard_forgets_and_counts_what_was_pending() {
        let mut chaos = Chaos::new(&settings(0.0, 1.0, 0, 1.0, 5), 1).unwrap();
        let now = Instant::now();
        chaos.submit(now, dgram(0));
        chaos.submit(now, dgram(1));
        assert_eq!(chaos.pending(), 4);
        chaos.discard();
        assert_eq!(chaos.pending(), 0);
        assert_eq!(chaos.stats().discarded, 4);
        assert!(chaos.due(now + Duration::from_secs(1)).is_empty());
        assert_eq!(chaos.stats().counters().get("chaos.discarded"), Some(&4));
    }

    #[test]
    fn node_index_counts_proposers_then_acceptors_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let mut text = String::new();
        for (section, id, port) in [("proposers", 7, 1), ("proposers", 2, 2), ("acceptors", 1, 3), ("acceptors", 5, 4)]
        {
            text += &format!("[[{section}]]\nid = {id}\naddr = \"127.0.0.1:{port}\"\n");
        }
        text += "[[acceptors]]\nid = 9\naddr = \"127.0.0.1:5\"\n";
        std::fs::write(&path, text).unwrap();
        let cluster = ClusterConfig::load_with_env(&path, Vec::<(String, String)>::new()).unwrap();
        assert_eq!(node_index(&cluster, Node::Proposer(NodeId(7))), 1);
        assert_eq!(node_index(&cluster, Node::Proposer(NodeId(2))), 2);
        assert_eq!(node_index(&cluster, Node::Acceptor(NodeId(1))), 3);
        assert_eq!(node_index(&cluster, Node::Acceptor(NodeId(9))), 5);
        assert_eq!(node_index(&cluster, Node::Acceptor(NodeId(4))), 0);
    }

    #[test]
    fn unit_and_below_stay_in_range() {
        let mut rng = SplitMix64(0);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(7) < 7);
        }
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
    }
}
