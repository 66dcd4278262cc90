//! The simulated world: nodes running the real core, their disks, a faulty
//! network, clients, and a clock, all driven by one seed.
//!
//! One tick of the world: inject or heal faults; deliver every datagram that
//! is due (ties broken by a random key, so equal delays reorder too); tick every
//! node and client; then take each node's `Ready`, send its early messages,
//! and queue its writes and messages as one pending batch. A batch becomes
//! durable in the node's in-memory disk up to `persist_lag` ticks later (in
//! order: the daemons fsync in the background while their loop goes on), and
//! only then are its messages put on the network, where each may be lost,
//! duplicated or delayed. A crash discards the node's volatile state and its
//! pending batches' messages; with probability `crash_before_persist` it also
//! discards the writes of a random suffix of its pending batches, as a power
//! cut before fsync would, and the rest reach the disk unannounced.

use std::collections::{BTreeMap, VecDeque};

use paxos_core::{
    Acceptor, AcceptorConfig, AcceptorOp, AcceptorState, MemStore, Membership, Outgoing, Proposer, ProposerConfig,
    ProposerOp, ProposerState, ReadRequest, Store, STAMP_SLACK_MS,
};
use paxos_proto::auth::{admit, Policy, Signer};
use paxos_proto::{
    Ballot, ClientId, Command, Config, Envelope, Member, MemberOp, MemberRole, Message, Node, NodeId, Slot, Value,
    PROTOCOL_VERSION,
};

use crate::admin::{Admin, ADMIN_CLIENT};
use crate::adversary::{self, Adversary, Knowledge};
use crate::client::SimClient;
use crate::params::Params;
use crate::rng::Rng;
use crate::Violation;

/// A datagram on its way.
#[derive(Debug, Clone)]
struct Datagram {
    from: Node,
    to: Node,
    msg: Message,
    /// Who signed it: members sign with the peer key, clients and the forger do not.
    signer: Signer,
}

/// Who must sign what in the simulated cluster: `[auth]` with a peer key, no client keys.
const POLICY: Policy = Policy { peers: true, clients: false };

/// The writes of one `Ready`, of either role.
#[derive(Debug)]
enum Writes {
    Proposer(Vec<ProposerOp>),
    Acceptor(Vec<AcceptorOp>),
}

/// One `Ready` whose writes are not durable yet.
#[derive(Debug)]
struct Pending {
    writes: Writes,
    /// Sent once the writes are durable.
    messages: Vec<Outgoing>,
    /// Reads of the decided log, served once the writes are durable.
    reads: Vec<ReadRequest>,
    /// The tick at which the writes become durable.
    due: u64,
}

/// Counts of what happened in a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams sent by nodes and clients.
    pub sent: u64,
    /// Datagrams delivered.
    pub delivered: u64,
    /// Datagrams lost (by chance, partition, failed or down receivers).
    pub lost: u64,
    /// Crashes (each followed by a restart from the node's disk).
    pub crashes: u64,
    /// Batches of writes that crashes lost before they were durable.
    pub crashes_before_persist: u64,
    /// Times a node was failed.
    pub failures: u64,
    /// Partitions.
    pub partitions: u64,
    /// Inputs a role refused (counted, never applied).
    pub ignored: u64,
    /// Requests acknowledged to clients.
    pub acked: u64,
    /// Datagrams the adversary sent.
    pub adversary_sent: u64,
    /// Datagrams refused by the rule of admission (no valid MAC for a member's name).
    pub unauthenticated: u64,
    /// Proposers' clocks that jumped far ahead (`--clock-jump-ms`).
    pub clock_jumps: u64,
    /// Proposers lost for good (`--lose-proposer`).
    pub proposers_lost: u64,
    /// Acceptors lost for good (`--lose-acceptor`).
    pub acceptors_lost: u64,
    /// Changes an operator asked while an acceptor lost for good was a
    /// member: removing it, or adding a spare in its stead.
    pub lost_replacements: u64,
    /// Acceptors lost for good that a decided configuration then left out.
    pub lost_removed: u64,
    /// Crashes of the bad-disk acceptor that lost durable batches (`--lose-tail`).
    pub tails_lost: u64,
    /// Times a proposer said an acceptor's promise went backwards (its
    /// counter `acceptor_writes_lost`, summed over every start).
    pub writes_lost_seen: u64,
    /// Times an acceptor found that its disk lost writes it had synced (a
    /// proposer sent back more than it held) and became a new incarnation.
    pub rebuilt_lost_writes: u64,
    /// Nodes whose decided log a crash, or a tick as they ran, damaged
    /// (`--damage-log`; at most one a run).
    pub logs_damaged: u64,
    /// Of those, proposers' logs that held decided slots no other
    /// proposer's log held: the damaged proposer must hand leadership over.
    pub only_copies_damaged: u64,
    /// Of those, logs damaged under a running node (found by its next pass).
    pub damaged_running: u64,
    /// Reads of a damaged decided log that failed (each answered with nothing).
    pub reads_failed: u64,
    /// Reads that failed though nothing was damaged (`--flaky-reads`).
    pub reads_flaked: u64,
    /// Nodes whose read failed and that said later that their log can be
    /// read again (a pass read it all), summed at the end of the run.
    pub damage_cleared: u64,
    /// Claims of peers' log digests that proposers compared with their own,
    /// summed over the proposers alive at the end of the run.
    pub digests_compared: u64,
    /// The most nodes that live proposers found, at one tick, to hold a
    /// decided log that differs from theirs (their digests).
    pub digest_alarms: u64,
    /// Acceptors that lost their disk with a crash.
    pub acceptor_wipes: u64,
    /// Proposers that lost their disk with a crash (every one at once counts each).
    pub proposer_wipes: u64,
    /// Times every proposer lost its disk at once.
    pub all_proposers_wiped: u64,
    /// Membership changes decided (adds and removes asked by the operator).
    pub member_changes: u64,
    /// Membership changes given up at their deadlines.
    pub member_given_up: u64,
    /// Member requests a leader refused as asked from an earlier epoch (the operator asked again).
    pub member_stale: u64,
    /// Changes the second operator asked for (undoing the first's additions).
    pub second_operator: u64,
    /// Removals a hasty operator asked right after an acceptor lost its disk.
    pub hasty_removals: u64,
    /// Leadership transfers the operator asked for.
    pub transfers: u64,
    /// Transfers answered without an error, naming the proposer asked for
    /// (handed over to it, or it already led).
    pub transfers_handed: u64,
    /// Acceptors to add that started only after they were asked for.
    pub late_joiners: u64,
    /// Configurations decided (the operator's, pinnings and rebuilds).
    pub configs: u64,
}

/// How many of an acceptor's last durable batches `--lose-tail` may lose at once.
const TAIL_BATCHES: usize = 256;

/// The world of one run.
pub struct World {
    pub(crate) params: Params,
    pub(crate) now: u64,
    fault_rng: Rng,
    net_rng: Rng,
    /// Every proposer slot (the initial ones, then spares the operator may add).
    proposer_ids: Vec<NodeId>,
    /// Every acceptor slot (the initial ones, then spares).
    acceptor_ids: Vec<NodeId>,
    /// The cluster file's configuration: the initial members.
    genesis: Config,
    pub(crate) proposers: Vec<Option<Proposer>>,
    pub(crate) proposer_disks: Vec<MemStore<ProposerState>>,
    pub(crate) acceptors: Vec<Option<Acceptor>>,
    pub(crate) acceptor_disks: Vec<MemStore<AcceptorState>>,
    /// Per acceptor, its disk before each of its last durable batches, the
    /// latest last (`--lose-tail` only).
    before_last: Vec<Vec<MemStore<AcceptorState>>>,
    /// Per acceptor, the fold of every operation its running incarnation
    /// handed out, from the state it was started with: what its state must
    /// be right after each `take_ready` (the daemons' store checkpoints the
    /// acceptor's own state instead of folding again, `Role::folded`).
    acceptor_folds: Vec<AcceptorState>,
    pub(crate) clients: Vec<SimClient>,
    /// The operators (see `Params::operators`), then the one who transfers
    /// leadership when transfers are on (see `transferer`).
    pub(crate) admins: Vec<Admin>,
    /// The index in `admins` of the operator who transfers leadership, on
    /// its own: a transfer may come while a membership change waits.
    pub(crate) transferer: Option<usize>,
    /// Per node (proposers, then acceptors): started at least once (spares wait to be added).
    started: Vec<bool>,
    /// Per node: the tick of its last failed read of its decided log since
    /// it last started (damage, or `--flaky-reads`), for the damage-mark check.
    read_failed_at: Vec<Option<u64>>,
    /// Per node: the tick of its first read since it last started that
    /// failed at the damage of its decided log (`--damage-log`).
    damage_found_at: Vec<Option<u64>>,
    /// Per node: down until this tick.
    down_until: Vec<Option<u64>>,
    /// Per node: failed until this tick (`u64::MAX` for the whole run).
    failed_until: Vec<Option<u64>>,
    /// Per node: crash at the end of this tick, and whether its disk goes too.
    crash_now: Vec<Option<bool>>,
    /// The proposer lost for good, if any (`--lose-proposer`): down for the
    /// rest of the run, and no longer one whose log the checks read.
    lost: Option<usize>,
    /// The acceptor lost for good (`--lose-acceptor`), by acceptor index.
    lost_acceptor: Option<usize>,
    /// The one acceptor whose disk loses durable batches (`--lose-tail`), once it did.
    tail_lost: Option<usize>,
    /// The node whose decided log is damaged (`--damage-log`), and the
    /// damaged slots, first and one past the last: a read that reaches one
    /// fails. Cleared when its disk is lost.
    damaged: Option<(usize, Slot, Slot)>,
    /// The damaged node, since it last started or since its log was
    /// damaged as it ran, and the tick by which a read of its decided log
    /// must have failed (its pass over the log, if nobody else's; the scrub
    /// check): cleared when one does, or when it crashes.
    scrub_watch: Option<(usize, u64)>,
    /// The acceptor lost for good is no member any more (counted once).
    lost_out: bool,
    /// Per acceptor: lost its disk, and its new incarnation is not let in yet.
    pub(crate) amnesiac: Vec<bool>,
    /// Per endpoint (nodes, then clients): its side of the partition, whether it
    /// cuts one direction only (from side `true` to side `false`), and when it heals.
    partition: Option<(Vec<bool>, bool, u64)>,
    /// Per proposer: probability that its clock skips a tick.
    tick_skip: Vec<f64>,
    /// Per proposer, then per acceptor: how far its wall clock runs ahead
    /// of the simulated one, in ms (at most `Params::clock_spread_ms`).
    proposer_ahead_ms: Vec<u64>,
    acceptor_ahead_ms: Vec<u64>,
    /// Draws the offsets, and their steps (a proposer's clock set anew, back
    /// or forward, within the spread) during the faults: a stream of its own.
    wall_rng: Rng,
    network: BTreeMap<(u64, u64), Datagram>,
    /// Messages to put on the network at the end of this tick.
    pending_sends: Vec<(Node, Node, Message)>,
    /// Per node: its batches whose writes are not durable yet, oldest first.
    unsynced: Vec<VecDeque<Pending>>,
    /// Every value any learner (proposer or acceptor) ever applied, per slot:
    /// what agreement is checked against.
    pub(crate) chosen: BTreeMap<Slot, Value>,
    /// The configurations the log decided, by epoch (epoch 0: the genesis).
    pub(crate) configs: BTreeMap<u32, Config>,
    /// Configurations some acceptor accepted (a stop sign on its way), by epoch.
    proposed_configs: BTreeMap<u32, Vec<Config>>,
    /// Every configuration a leader set out to change to, with the first
    /// tick it did and that leader's wall clock then (Unix ms).
    pub(crate) config_starts: Vec<(Config, u64, u64)>,
    /// Every configuration that went out in an accept, with its slot and the ballot of the first such accept.
    pub(crate) config_first_ballots: Vec<(Slot, Config, Ballot)>,
    /// The tick and slot each configuration was decided at, by epoch.
    pub(crate) config_decided_at: BTreeMap<u32, (u64, Slot)>,
    /// Per member request an operator was told was given up (by its client
    /// and request id): the tick of the answer and the ballot of the leader that sent it.
    pub(crate) give_ups: BTreeMap<(u64, u64), (u64, Ballot)>,
    /// Acceptors (by index) the operator added without starting them: each starts at its tick.
    late_starts: Vec<(u64, usize)>,
    /// When an acceptor last lost its disk, and which: a hasty operator
    /// may remove another one right after (see [`World::operate_hastily`]).
    last_acceptor_wipe: Option<(u64, NodeId)>,
    /// Every accept any acceptor made durable, ever: per (slot, ballot) the value and
    /// the acceptors. Independent of what learners concluded.
    pub(crate) accept_history: BTreeMap<(Slot, Ballot), (Value, Vec<NodeId>)>,
    /// The tick at which the network healed.
    pub(crate) healed_at: u64,
    /// The last tick a `TimeoutNow` was delivered at (0 before any): leadership moves on purpose.
    pub(crate) handed_over_at: u64,
    /// The last tick a proposer first failed a read of the damage in its
    /// decided log since it started (0 before any): leadership moves on
    /// purpose too (a damaged leader hands it over; a damaged candidate
    /// steps down for a peer that can serve its log).
    pub(crate) damage_found_tick: u64,
    /// Per learner, the first slot where it applied another value than the
    /// learner that applied that slot first (the agreement check's finds).
    pub(crate) diverged_at: BTreeMap<Node, Slot>,
    pub(crate) violations: Vec<Violation>,
    /// A digest of every delivery: the same seed gives the same digest.
    pub(crate) trace: u64,
    /// What the replayer recorded of the delivered datagrams (a ring of
    /// `REPLAY_MEMORY`), and how many it recorded in all.
    recorded: Vec<Datagram>,
    recorded_next: usize,
    /// Print every delivery.
    verbose: bool,
    pub(crate) stats: Stats,
    /// The highest ballot and slot that went over the network: what the adversary knows.
    seen_ballot: Ballot,
    seen_slot: Slot,
    /// The proposals the adversary made as a client (validity counts them as proposed).
    pub(crate) adversary_proposals: Vec<Command>,
    adversary_seq: u64,
}

const FNV_PRIME: u64 = 0x100_0000_01b3;

/// The tick at which the seed scenario's acceptors are failed: once the cluster is up.
const FAIL_AT: u64 = 150;

/// Ticks a node started with a damaged decided log has to find the damage
/// by its own pass over the log (the scrub check; the pass asks for its first
/// page at the first tick).
const SCRUB_DEADLINE_TICKS: u64 = 20;

/// Entries a page of a pass over the decided log asks for (1,024 in the
/// daemons): a run's log holds tens to hundreds of slots, and its passes
/// must read several pages, as the daemons' do over a long log, so that a
/// pass that stops short is caught.
const SCRUB_PAGE_ENTRIES: usize = 8;

/// The fewest entries a page of a pass over the decided log holds: values
/// of up to 8 KiB, and a page holds at least [`paxos_core::MAX_BATCH_BYTES`]
/// of them less one value (7 or more), and at most [`SCRUB_PAGE_ENTRIES`].
const MIN_PAGE_ENTRIES: u64 = 4;

/// Ticks from the end of a node's pass over its decided log to the next (a
/// day in the daemons: runs here last a few hundred ticks).
const SCRUB_AGAIN_TICKS: u64 = 100;

/// Ticks from a failed read to the pass that reads the log again (10 s in
/// the daemons), doubling while passes fail, up to [`SCRUB_AGAIN_TICKS`].
const SCRUB_RETRY_TICKS: u64 = 10;

/// Ticks after its last failed read by which a node whose log holds no
/// damage must no longer say it is damaged (the damage-mark check), besides
/// two passes over its log (`World::damage_mark_deadline`): the longest
/// pause before a retry ([`SCRUB_AGAIN_TICKS`], counted in the node's own
/// ticks, of which a proposer skips up to ~15 %), with room to spare, as
/// for [`RUNNING_DAMAGE_DEADLINE_TICKS`].
const DAMAGE_MARK_DEADLINE_TICKS: u64 = 300;

/// With `--damage-log`, the chance per tick that a running node's decided
/// log is damaged under it (unless a log was damaged already): about one
/// run in three is damaged so before a crash does it.
const RUNNING_DAMAGE_RATE: f64 = 0.004;

/// Ticks a node whose log was damaged as it ran has to fail a read of it:
/// the pass in progress may have read past the damage already (up to ~100
/// ticks with 8 KiB values, a few entries a page), then the pause of
/// [`SCRUB_AGAIN_TICKS`] counts the node's own ticks (a proposer skips up
/// to ~15 % of the world's), then the first page fails.
const RUNNING_DAMAGE_DEADLINE_TICKS: u64 = 300;

/// The simulated wall clock at tick 0, in Unix seconds (mid-2026).
const SIM_EPOCH_SECS: u64 = paxos_core::ROUND_CEILING_EPOCH_SECS + 15_000_000;

/// The simulated wall clock at `tick`, in Unix ms.
pub(crate) fn unix_ms(tick: u64) -> u64 {
    SIM_EPOCH_SECS * 1000 + tick * TICK_MS
}

/// Milliseconds of wall clock per tick.
pub(crate) const TICK_MS: u64 = 10;

impl World {
    /// Builds the world `params` describe.
    pub fn new(params: Params, verbose: bool) -> World {
        let mut rng = Rng::new(params.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let fault_rng = rng.fork();
        let net_rng = rng.fork();
        let mut client_rng = rng.fork();
        let (spare_p, spare_a) =
            if params.member_rate > 0.0 { (params.spare_proposers, params.spare_acceptors) } else { (0, 0) };
        let proposer_ids: Vec<NodeId> = (1..=(params.proposers + spare_p) as u32).map(NodeId).collect();
        let acceptor_ids: Vec<NodeId> = (1..=(params.acceptors + spare_a) as u32).map(NodeId).collect();
        let member = |prefix: &str, id: &NodeId| Member { id: *id, addr: format!("{prefix}-{id}"), incarnation: None };
        let genesis = Config {
            epoch: 0,
            acceptors: acceptor_ids[..params.acceptors].iter().map(|id| member("acceptor", id)).collect(),
            proposers: proposer_ids[..params.proposers].iter().map(|id| member("proposer", id)).collect(),
            session_lifetime_ms: params.session_lifetime_ms,
        };
        let n = proposer_ids.len() + acceptor_ids.len();
        let initial = &proposer_ids[..params.proposers];
        let clients = (0..params.clients)
            .map(|c| {
                let values = (0..params.values_per_client)
                    .map(|i| {
                        // Some values repeat on purpose: equal data under different request ids are different requests.
                        if client_rng.chance(params.big_values) {
                            // Up to 8 KiB, with characters JSON must escape.
                            let len = client_rng.range(1, 8 * 1024 - 16) as usize;
                            let mut v = format!("c{c}-v{i}:");
                            while v.len() < len {
                                v.push(['x', '"', '\n', 'é', '\u{1}'][client_rng.index(5)]);
                            }
                            while v.len() > 8 * 1024 {
                                v.pop();
                            }
                            v
                        } else if client_rng.chance(0.1) {
                            "same".to_string()
                        } else {
                            format!("c{c}-v{i}")
                        }
                    })
                    .collect();
                let target = initial[client_rng.index(initial.len())];
                // Half the session lifetime, as docs/PROTOCOL.md asks of clients.
                let give_up = params.session_lifetime_ms / 2 / TICK_MS;
                SimClient::new(ClientId(1000 + c as u64), values, target, params.client_timeout, give_up)
            })
            .collect();
        let reask_any = params.defect == Some(crate::Defect::ReaskAnyEpoch);
        let first = initial[client_rng.index(initial.len())];
        let mut admins: Vec<Admin> = (0..params.operators)
            .map(|k| Admin::new(ADMIN_CLIENT + k as u64, first, params.client_timeout.max(20), reask_any))
            .collect();
        let transferer = (params.transfer_rate > 0.0).then(|| {
            admins.push(Admin::new(ADMIN_CLIENT + admins.len() as u64, first, params.client_timeout.max(20), false));
            admins.len() - 1
        });
        let tick_skip = (0..proposer_ids.len()).map(|_| client_rng.unit() * params.clock_skew).collect();
        // From a stream of its own, so that every other draw of a seed stays where it was.
        let mut wall_rng = Rng::new(params.seed ^ 0x0061_6865_6164);
        let mut ahead =
            |count: usize| -> Vec<u64> { (0..count).map(|_| wall_rng.range(0, params.clock_spread_ms)).collect() };
        let proposer_ahead_ms = ahead(proposer_ids.len());
        let acceptor_ahead_ms = ahead(acceptor_ids.len());
        let failed_until = vec![None; n];
        let mut configs = BTreeMap::new();
        configs.insert(0, genesis.clone());
        let mut world = World {
            now: 0,
            fault_rng,
            net_rng,
            proposers: (0..proposer_ids.len()).map(|_| None).collect(),
            proposer_disks: vec![MemStore::<ProposerState>::default(); proposer_ids.len()],
            acceptors: (0..acceptor_ids.len()).map(|_| None).collect(),
            acceptor_disks: vec![MemStore::<AcceptorState>::default(); acceptor_ids.len()],
            before_last: vec![Vec::new(); acceptor_ids.len()],
            acceptor_folds: vec![AcceptorState::default(); acceptor_ids.len()],
            amnesiac: vec![false; acceptor_ids.len()],
            started: vec![false; n],
            read_failed_at: vec![None; n],
            damage_found_at: vec![None; n],
            proposer_ids,
            acceptor_ids,
            genesis,
            clients,
            admins,
            transferer,
            down_until: vec![None; n],
            failed_until,
            crash_now: vec![None; n],
            lost: None,
            lost_acceptor: None,
            lost_out: false,
            tail_lost: None,
            damaged: None,
            scrub_watch: None,
            partition: None,
            tick_skip,
            proposer_ahead_ms,
            acceptor_ahead_ms,
            wall_rng,
            network: BTreeMap::new(),
            pending_sends: Vec::new(),
            unsynced: (0..n).map(|_| VecDeque::new()).collect(),
            chosen: BTreeMap::new(),
            configs,
            proposed_configs: BTreeMap::new(),
            config_starts: Vec::new(),
            config_first_ballots: Vec::new(),
            config_decided_at: BTreeMap::new(),
            give_ups: BTreeMap::new(),
            late_starts: Vec::new(),
            last_acceptor_wipe: None,
            accept_history: BTreeMap::new(),
            healed_at: params.fault_ticks,
            handed_over_at: 0,
            damage_found_tick: 0,
            diverged_at: BTreeMap::new(),
            violations: Vec::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            recorded: Vec::new(),
            recorded_next: 0,
            verbose,
            stats: Stats::default(),
            seen_ballot: Ballot::ZERO,
            seen_slot: Slot(0),
            adversary_proposals: Vec::new(),
            adversary_seq: 0,
            params,
        };
        for i in 0..world.params.proposers {
            world.start_proposer(i);
        }
        for i in 0..world.params.acceptors {
            world.start_acceptor(i);
        }
        world
    }

    fn start_proposer(&mut self, i: usize) {
        let mut cfg = ProposerConfig::with_genesis(self.proposer_ids[i], self.genesis.clone());
        cfg.window = self.params.window;
        // A new start, a new nonce for its probe (the daemons draw it at random).
        cfg.incarnation = self.fault_rng.next_u64();
        cfg.retain_slots = self.params.retain_slots;
        let state = self.proposer_disks[i].load().expect("the in-memory disk loads");
        let mut p = Proposer::new(cfg, state)
            .with_scrub_again_after(SCRUB_AGAIN_TICKS)
            .with_scrub_retry_after(SCRUB_RETRY_TICKS)
            .with_scrub_page_entries(SCRUB_PAGE_ENTRIES);
        if let Some(d) = self.params.defect {
            p = p.with_defects(d.proposer());
        }
        self.started[i] = true;
        self.read_failed_at[i] = None;
        self.damage_found_at[i] = None;
        self.proposers[i] = Some(p);
        self.watch_scrub(i);
    }

    /// Node `i` starts: if its decided log still holds damage, its pass over it must
    /// find the damage within [`SCRUB_DEADLINE_TICKS`] (and the batches'
    /// persist lag), before anyone needs to read through it.
    fn watch_scrub(&mut self, i: usize) {
        if self.damage_left(i) {
            let by = self.now + SCRUB_DEADLINE_TICKS + self.params.persist_lag + self.ticks_to_damage(i);
            self.scrub_watch = Some((i, by));
        }
    }

    /// Ticks a pass over node `i`'s decided log may take to reach the first
    /// damaged slot from the log's first: a page of at least
    /// [`MIN_PAGE_ENTRIES`] a tick, each read served after the persist lag,
    /// in the node's own ticks (a proposer skips up to ~15 % of the world's).
    fn ticks_to_damage(&self, i: usize) -> u64 {
        let Some((_, first, _)) = self.damaged else { return 0 };
        self.pass_ticks(first.0.saturating_sub(self.disk_log(i).start.0))
    }

    /// Ticks a pass may take to read `slots` entries of a decided log: a
    /// page of at least [`MIN_PAGE_ENTRIES`] a tick, each read served after
    /// the persist lag, in the node's own ticks (a proposer skips up to
    /// ~15 % of the world's).
    fn pass_ticks(&self, slots: u64) -> u64 {
        slots.div_ceil(MIN_PAGE_ENTRIES) * (1 + self.params.persist_lag) * 6 / 5
    }

    /// Node `i`'s decided log, as its disk holds it.
    fn disk_log(&self, i: usize) -> &paxos_core::MemLog {
        let p0 = self.proposer_ids.len();
        if i < p0 {
            &self.proposer_disks[i].log
        } else {
            &self.acceptor_disks[i - p0].log
        }
    }

    /// Node `i`'s decided log holds damage: the damaged slots are not all
    /// below its start (retention deleted them) nor past its end (a disk
    /// rolled back by `--lose-tail` holds less than when it was damaged).
    fn damage_left(&self, i: usize) -> bool {
        let log = self.disk_log(i);
        self.damaged.is_some_and(|(d, first, end)| d == i && end.min(log.end()) > first.max(log.start))
    }

    /// The scrub check: a node whose decided log was damaged before its
    /// start, or under it as it ran, fails a read of the damage in time
    /// (its own pass's, if nobody reads it first).
    fn check_scrub(&mut self) {
        let Some((i, by)) = self.scrub_watch else { return };
        // Retention may delete every damaged slot after the start, before the
        // pass reads them: nothing is left to find.
        if !self.damage_left(i) {
            self.scrub_watch = None;
            return;
        }
        if self.now > by {
            self.scrub_watch = None;
            let p0 = self.proposer_ids.len();
            let node =
                if i < p0 { Node::Proposer(self.proposer_ids[i]) } else { Node::Acceptor(self.acceptor_ids[i - p0]) };
            let detail = format!(
                "tick {}: {node}'s decided log is damaged (before its start, or under it as it ran) and no read of it failed by tick {by}",
                self.now
            );
            self.violations.push(Violation { invariant: "scrub", detail });
        }
    }

    /// Node `i`'s name, and whether it says that its decided log is
    /// damaged (a read failed and no pass read it all since); `None` while down.
    fn damage_mark(&self, i: usize) -> Option<(Node, bool)> {
        let p0 = self.proposer_ids.len();
        if i < p0 {
            self.proposers[i].as_ref().map(|p| (Node::Proposer(p.id()), p.damaged()))
        } else {
            self.acceptors[i - p0].as_ref().map(|a| (Node::Acceptor(a.id()), a.damaged()))
        }
    }

    /// The damage-mark check, at every tick: a node that failed a read of
    /// damage still in its decided log says so (`/health`; a proposer hands
    /// leadership over) for as long as it runs: no read, and no pass,
    /// proves the damage gone while it is there. (The defect
    /// `damaged-leads` never marks a proposer: what its leading breaks
    /// catches it.)
    fn check_damage_found(&mut self) {
        let Some((i, _, _)) = self.damaged else { return };
        let Some(found) = self.damage_found_at[i] else { return };
        if !self.damage_left(i) {
            return;
        }
        if i < self.proposer_ids.len() && self.params.defect == Some(crate::Defect::DamagedLeads) {
            return;
        }
        if let Some((node, false)) = self.damage_mark(i) {
            let detail = format!(
                "tick {}: {node} failed a read of the damage in its decided log at tick {found}, and says its log can \
                 be read while the damage is still there",
                self.now
            );
            self.violations.push(Violation { invariant: "damage mark", detail });
        }
    }

    /// The damage-mark check, at the end of a run: a node whose decided
    /// log holds no damage does not say it is damaged
    /// [`DAMAGE_MARK_DEADLINE_TICKS`] after its last failed read (an I/O
    /// error that passed, or damage that retention deleted): one passing
    /// error must not keep it unhealthy, or a proposer out of leadership,
    /// until an operator restarts it.
    pub(crate) fn check_damage_marks(&mut self) -> Vec<Violation> {
        let mut found = Vec::new();
        for i in 0..self.nodes() {
            let Some((node, damaged)) = self.damage_mark(i) else { continue };
            let Some(at) = self.read_failed_at[i] else { continue };
            if !damaged {
                self.stats.damage_cleared += 1;
            } else if !self.damage_left(i) && self.now > at + self.damage_mark_deadline(i) {
                let detail = format!(
                    "tick {}: {node} still says its decided log is damaged, though nothing in it is and its last \
                     read failed at tick {at}",
                    self.now
                );
                found.push(Violation { invariant: "damage mark", detail });
            }
        }
        found
    }

    /// Ticks after node `i`'s last failed read by which it must have read
    /// its whole log again: [`DAMAGE_MARK_DEADLINE_TICKS`], and two passes
    /// over its log (the failed read spoils the pass under way, which goes
    /// on to its end; then the pause, then a whole pass).
    fn damage_mark_deadline(&self, i: usize) -> u64 {
        let log = self.disk_log(i);
        let pass = self.pass_ticks(log.end().0.saturating_sub(log.start.0));
        DAMAGE_MARK_DEADLINE_TICKS + self.params.persist_lag + 2 * pass
    }

    fn start_acceptor(&mut self, a: usize) {
        let state = self.acceptor_disks[a].load().expect("the in-memory disk loads");
        let incarnation = self.fault_rng.next_u64();
        let cfg = AcceptorConfig {
            id: self.acceptor_ids[a],
            genesis: self.genesis.clone(),
            incarnation,
            // Derived, not drawn, so that the seed's faults stay where they were; the adversary knows neither.
            nonce_seed: incarnation.rotate_left(29) ^ 0x5eed,
            retain_slots: self.params.retain_slots,
            lease_ticks: 2 * ProposerConfig::new(NodeId(0), Vec::new(), Vec::new()).heartbeat_ticks,
        };
        self.acceptor_folds[a] = state.clone();
        let mut acceptor = Acceptor::new(cfg, state)
            .with_scrub_again_after(SCRUB_AGAIN_TICKS)
            .with_scrub_retry_after(SCRUB_RETRY_TICKS)
            .with_scrub_page_entries(SCRUB_PAGE_ENTRIES);
        if let Some(d) = self.params.defect {
            acceptor = acceptor.with_defects(d.acceptor());
        }
        self.started[self.proposer_ids.len() + a] = true;
        self.read_failed_at[self.proposer_ids.len() + a] = None;
        self.damage_found_at[self.proposer_ids.len() + a] = None;
        self.acceptors[a] = Some(acceptor);
        self.watch_scrub(self.proposer_ids.len() + a);
    }

    /// Index of a node or client among the endpoints: proposers, acceptors, clients, the operator.
    fn endpoint(&self, node: Node) -> Option<usize> {
        let (p, a) = (self.proposer_ids.len(), self.acceptor_ids.len());
        match node {
            Node::Proposer(id) => (id.0 as usize).checked_sub(1).filter(|i| *i < p),
            Node::Acceptor(id) => (id.0 as usize).checked_sub(1).filter(|i| *i < a).map(|i| p + i),
            Node::Client(ClientId(c)) => match self.admin_index(c) {
                Some(k) => Some(p + a + self.clients.len() + k),
                None => (c as usize).checked_sub(1000).filter(|i| *i < self.clients.len()).map(|i| p + a + i),
            },
        }
    }

    fn nodes(&self) -> usize {
        self.proposer_ids.len() + self.acceptor_ids.len()
    }

    fn endpoints(&self) -> usize {
        self.nodes() + self.clients.len() + self.admins.len()
    }

    fn is_up(&self, i: usize) -> bool {
        i >= self.nodes() || (self.started[i] && self.down_until[i].is_none())
    }

    fn is_failed(&self, i: usize) -> bool {
        i < self.nodes() && self.failed_until[i].is_some()
    }

    /// True if the partition stops datagrams from `a` to `b`.
    fn cut(&self, a: usize, b: usize) -> bool {
        self.partition.as_ref().is_some_and(|(side, one_way, _)| side[a] != side[b] && (!one_way || side[a]))
    }

    /// True while faults may happen.
    pub fn faulty(&self) -> bool {
        self.now < self.params.fault_ticks
    }

    /// The latest configuration the log decided (the genesis before any).
    pub fn config(&self) -> &Config {
        self.configs.values().next_back().expect("the genesis is always there")
    }

    /// Runs one tick.
    pub fn step(&mut self) {
        self.now += 1;
        if self.now == FAIL_AT {
            // The seed scenario's failed acceptors: failed once the cluster is up, as demo.sh does.
            for a in self.params.failed_acceptors.clone() {
                self.failed_until[self.proposer_ids.len() + a] = Some(u64::MAX);
            }
        }
        if self.faulty() {
            self.inject_faults();
            self.attack();
            self.operate();
        } else if self.now == self.params.fault_ticks {
            self.heal();
        }
        self.wake();
        let now = self.now;
        let due: Vec<usize> = self.late_starts.iter().filter(|(t, _)| *t == now).map(|(_, a)| *a).collect();
        for a in due {
            self.start_acceptor(a);
        }
        let unix_ms = unix_ms(self.now);
        for (p, ahead) in self.proposers.iter_mut().zip(&self.proposer_ahead_ms) {
            if let Some(p) = p {
                p.set_clock(unix_ms + ahead);
            }
        }
        for (a, ahead) in self.acceptors.iter_mut().zip(&self.acceptor_ahead_ms) {
            if let Some(a) = a {
                a.set_clock(unix_ms + ahead);
            }
        }
        self.deliver();
        for (i, p) in self.proposers.iter_mut().enumerate() {
            // Clocks drift: a proposer sometimes misses a tick.
            if let Some(p) = p {
                if !self.fault_rng.chance(self.tick_skip[i]) {
                    p.tick();
                }
            }
        }
        for a in self.acceptors.iter_mut().flatten() {
            a.tick();
        }
        for p in self.proposers.iter().flatten() {
            if let Some(c) = p.changing_to() {
                if !self.config_starts.iter().any(|(known, _, _)| known == c) {
                    self.config_starts.push((c.clone(), self.now, p.clock_ms()));
                }
            }
        }
        let mut out = Vec::new();
        let initial = self.proposer_ids[..self.params.proposers].to_vec();
        // Once the faults stop, a request is never given up: guarantee 6 says
        // when it must be answered, and the liveness check holds the cluster to it.
        let may_give_up = self.faulty();
        for (c, client) in self.clients.iter_mut().enumerate() {
            client.tick(self.now, &initial, may_give_up, &mut out);
            for (to, msg) in out.drain(..) {
                let from = Node::Client(ClientId(1000 + c as u64));
                self.pending_sends.push((from, to, msg));
            }
        }
        let members: Vec<NodeId> = self.config().proposers.iter().map(|m| m.id).collect();
        for admin in &mut self.admins {
            admin.tick(self.now, &members, &mut out);
            for (to, msg) in out.drain(..) {
                self.pending_sends.push((Node::Client(ClientId(admin.client)), to, msg));
            }
        }
        self.flush();
        self.follow_rebuilds();
        self.check_scrub();
        self.check_damage_found();
        self.watch_digests();
    }

    /// Whether the run goes on: no violation yet, or (`--keep-going`) only
    /// learners that applied different values.
    pub(crate) fn going(&self) -> bool {
        self.violations.iter().all(|v| self.params.keep_going && v.invariant == "agreement")
    }

    /// The digest check, at every tick: a proposer says that a node's
    /// decided log differs from its own at or before a slot only if one of
    /// the two applied, below that slot, another value than the learner
    /// that applied it first (the agreement check reports that too). A key
    /// holder (the insider) may forge claims, so its runs are exempt. Also
    /// notes the most nodes found to differ at once.
    fn watch_digests(&mut self) {
        let mut alarms = 0;
        let mut false_alarm = None;
        for (i, p) in self.proposers.iter().enumerate() {
            let Some(p) = p else { continue };
            let me = Node::Proposer(self.proposer_ids[i]);
            let diverged = p.learner().digests().diverged();
            alarms += diverged.len() as u64;
            let below = |n: &Node, slot: Slot| self.diverged_at.get(n).is_some_and(|s| *s < slot);
            if let Some((node, d)) = diverged.iter().find(|(n, d)| !below(&me, d.slot) && !below(n, d.slot)) {
                false_alarm.get_or_insert((me, *node, d.slot));
            }
        }
        self.stats.digest_alarms = self.stats.digest_alarms.max(alarms);
        if let Some((me, node, slot)) = false_alarm.filter(|_| self.params.adversary != Some(Adversary::Insider)) {
            let detail = format!(
                "tick {}: {me} says that the decided log of {node} differs from its own at or before slot {slot}, \
                 but below it both applied what every learner did",
                self.now
            );
            self.violations.push(Violation { invariant: "digests", detail });
        }
    }

    /// At the end of a run: the claims that live proposers compared.
    pub(crate) fn count_digests(&mut self) {
        self.stats.digests_compared = self.proposers.iter().flatten().map(|p| p.learner().digests().compared()).sum();
    }

    /// Draws this tick's faults.
    fn inject_faults(&mut self) {
        let n = self.nodes();
        let now = self.now;
        // A sealed segment rots under a running node: its next pass over
        // the log must find it (the scrub check). Drawn first, so that this
        // tick's crashes and losses see it (proposers keep their disks while
        // a log is damaged; a damaged acceptor counts as one that lost its disk).
        if self.params.damage_log > 0.0 && self.stats.logs_damaged == 0 && self.fault_rng.chance(RUNNING_DAMAGE_RATE) {
            let i = self.fault_rng.index(n);
            if self.is_up(i) && self.crash_now[i].is_none() {
                self.damage_log(i);
                if self.damage_left(i) {
                    self.stats.damaged_running += 1;
                    // The pass under way may have read past the damage: the next one must reach it.
                    let log = self.disk_log(i);
                    let pass = self.pass_ticks(log.end().0.saturating_sub(log.start.0));
                    let by =
                        now + RUNNING_DAMAGE_DEADLINE_TICKS + self.params.persist_lag + pass + self.ticks_to_damage(i);
                    self.scrub_watch = Some((i, by));
                }
            }
        }
        // A proposer's clock is stepped (as NTP does), back or forward, within the spread.
        if self.params.clock_spread_ms > 0 && self.wall_rng.chance(0.01) {
            let i = self.wall_rng.index(self.proposer_ahead_ms.len());
            self.proposer_ahead_ms[i] = self.wall_rng.range(0, self.params.clock_spread_ms);
        }
        // A proposer's clock jumps far ahead (NTP gone wrong, a VM restored); it
        // stays there until the proposer restarts, as a clock never goes back while it runs.
        if self.params.clock_jump_ms > 0 && self.wall_rng.chance(0.002) {
            let i = self.wall_rng.index(self.proposer_ahead_ms.len());
            self.proposer_ahead_ms[i] = self.params.clock_jump_ms;
            self.stats.clock_jumps += 1;
        }
        // While a node's decided log is damaged, proposers keep their disks (see `damage_log`).
        if self.params.lose_proposer && self.lost.is_none() && self.damaged.is_none() && self.fault_rng.chance(0.005) {
            self.lose_proposer();
        }
        if self.params.lose_acceptor && self.lost_acceptor.is_none() && self.fault_rng.chance(0.02) {
            self.lose_acceptor();
        }
        // The machine with the bad disk also crashes more often than the rest
        // (before it is drawn, any acceptor may be it).
        if self.params.lose_tail > 0.0 && self.fault_rng.chance(0.01 * self.params.lose_tail) {
            let p0 = self.proposer_ids.len();
            let a = self.tail_lost.unwrap_or_else(|| self.fault_rng.index(self.acceptor_ids.len()));
            if self.is_up(p0 + a) && self.crash_now[p0 + a].is_none() && self.lost_acceptor != Some(a) {
                self.crash_now[p0 + a] = Some(false);
            }
        }
        if self.fault_rng.chance(self.params.crash_rate) {
            let i = self.fault_rng.index(n);
            if self.is_up(i) {
                // While a node's decided log is damaged, proposers keep their disks
                // (see `damage_log`).
                let wipe = if i < self.proposer_ids.len() {
                    self.fault_rng.chance(self.params.wipe_proposer) && self.damaged.is_none()
                } else {
                    self.fault_rng.chance(self.params.wipe_acceptor) && self.may_wipe(i - self.proposer_ids.len())
                };
                self.crash_now[i] = Some(wipe);
            }
        }
        if self.fault_rng.chance(self.params.wipe_all_proposers) {
            let wipe = self.damaged.is_none();
            for i in 0..self.proposer_ids.len() {
                if self.is_up(i) {
                    self.crash_now[i] = Some(wipe);
                }
            }
            self.stats.all_proposers_wiped += u64::from(wipe);
        }
        if self.fault_rng.chance(self.params.fail_rate) {
            let i = self.fault_rng.index(n);
            if self.failed_until[i].is_none() {
                self.failed_until[i] = Some(now + self.fault_rng.range(10, 200));
                self.stats.failures += 1;
            }
        }
        if self.partition.is_none() && self.fault_rng.chance(self.params.partition_rate) {
            let side = (0..self.endpoints()).map(|_| self.fault_rng.chance(0.5)).collect();
            let one_way = self.fault_rng.chance(self.params.one_way);
            let until = now + self.fault_rng.range(10, 300);
            self.partition = Some((side, one_way, until));
            self.stats.partitions += 1;
        }
        if self.partition.as_ref().is_some_and(|(_, _, until)| now >= *until) {
            self.partition = None;
        }
    }

    /// One member proposer that is up is lost for good, with its disk (its
    /// machine is gone), while another member proposer remains to carry on,
    /// whatever the operators' pending removals make. Those that heard from
    /// it last may take it to be the furthest ahead.
    fn lose_proposer(&mut self) {
        let members = self.member_proposers();
        let removing = |p: NodeId| {
            self.admins
                .iter()
                .any(|a| matches!(a.pending(), Some(MemberOp::Remove { role: MemberRole::Proposer, id }) if *id == p))
        };
        let staying: Vec<usize> = members.iter().copied().filter(|p| !removing(self.proposer_ids[*p])).collect();
        let up: Vec<usize> = members.iter().copied().filter(|p| self.is_up(*p)).collect();
        let up: Vec<usize> = up.into_iter().filter(|p| staying.iter().any(|q| q != p)).collect();
        if up.is_empty() {
            return;
        }
        let i = up[self.fault_rng.index(up.len())];
        self.lost = Some(i);
        self.crash_now[i] = Some(true);
        self.stats.proposers_lost += 1;
        if self.verbose {
            println!("{:>6} proposer {} is lost for good", self.now, i + 1);
        }
    }

    /// One acceptor that is up is lost for good (its machine gone, or its
    /// disk damaged so that it stops at its next read), if a majority of
    /// every configuration that is or may come into force keeps its disk
    /// without it ([`World::may_wipe`], which counts it as lost from then
    /// on). Proposers that heard it last may take it to be the furthest ahead.
    /// Not before another acceptor holds the first configuration as decided
    /// on its disk, where a node that restarts without its own can learn it:
    /// until a node learns it, a quorum is one more than a majority (the
    /// core's rule for unpinned incarnations), and a cluster short of one
    /// acceptor for good, and of another for a while, rightly cannot start
    /// again. Nor while an operator's membership change is
    /// pending, which may need it; from then on the operators replace it
    /// ([`World::replace_lost`]).
    fn lose_acceptor(&mut self) {
        if self.config().epoch == 0 || self.admins.iter().any(|a| a.pending().is_some()) {
            return;
        }
        let p0 = self.proposer_ids.len();
        let learned = |a: usize| self.acceptor_disks[a].state.decided > Slot(0);
        let up: Vec<usize> = (0..self.acceptor_ids.len())
            .filter(|a| self.is_up(p0 + a) && self.may_wipe(*a))
            .filter(|a| (0..self.acceptor_ids.len()).any(|o| o != *a && learned(o)))
            .collect();
        if up.is_empty() {
            return;
        }
        let a = up[self.fault_rng.index(up.len())];
        self.lost_acceptor = Some(a);
        self.crash_now[p0 + a] = Some(false);
        self.stats.acceptors_lost += 1;
        if self.verbose {
            println!("{:>6} acceptor {} is lost for good", self.now, a + 1);
        }
    }

    /// Whether acceptor `a` may lose its disk now: a majority of the acceptors
    /// of every configuration that is or may come into force (the latest
    /// decided and the one before it, any later one an acceptor accepted, any
    /// a leader is about to propose, the one the operator's pending removal
    /// makes) must keep theirs,
    /// counting one that lost it as lost until its new incarnation is let in.
    fn may_wipe(&self, a: usize) -> bool {
        let latest = self.config().epoch;
        let accepted = self.proposed_configs.range(latest + 1..).flat_map(|(_, cs)| cs);
        let asked = self.proposers.iter().flatten().filter_map(|p| p.changing_to());
        // An operator's change may come into force at any moment: a removal,
        // or an addition that pins whatever incarnation the leader last heard
        // of (one lost since counts as lost in it, see `follow_rebuilds`).
        // Two operators' changes may both come into force, one after the other:
        // each alone, and all of them together.
        let apply = |config: &mut Config, op: Option<&MemberOp>| match op {
            Some(MemberOp::Remove { role: MemberRole::Acceptor, id }) => config.acceptors.retain(|m| m.id != *id),
            Some(MemberOp::Add { role: MemberRole::Acceptor, id, addr }) => {
                if let Some(i) = self.acceptor_index(*id).filter(|_| config.acceptors.iter().all(|m| m.id != *id)) {
                    let incarnation = Some(self.acceptor_disks[i].state.incarnation);
                    config.acceptors.push(Member { id: *id, addr: addr.clone(), incarnation });
                }
            }
            _ => {}
        };
        let mut pending: Vec<Config> = Vec::new();
        let mut all = self.config().clone();
        for admin in &self.admins {
            let mut one = self.config().clone();
            apply(&mut one, admin.pending());
            apply(&mut all, admin.pending());
            pending.push(one);
        }
        pending.push(all);
        // The configuration before the latest too: until the new epoch's
        // acceptors hold its stop sign, recovering it may take the old one's quorum.
        let previous = self.configs.values().rev().nth(1);
        let id = self.acceptor_ids[a];
        let configs = std::iter::once(self.config()).chain(previous).chain(accepted).chain(asked);
        configs.chain(&pending).all(|config| {
            if !config.acceptors.iter().any(|m| m.id == id) {
                return true;
            }
            // Lost: wiped and not let in again, or (from epoch 1 on) not pinned with the incarnation it has.
            let lost = config
                .acceptors
                .iter()
                .filter(|m| {
                    self.acceptor_index(m.id).is_none_or(|i| {
                        let pinned =
                            config.epoch == 0 || m.incarnation == Some(self.acceptor_disks[i].state.incarnation);
                        self.amnesiac[i]
                            || i == a
                            || !pinned
                            || self.lost_acceptor == Some(i)
                            || self.tail_lost == Some(i)
                            || self.damaged.is_some_and(|(d, _, _)| d == self.proposer_ids.len() + i)
                    })
                })
                .count();
            lost <= (config.acceptors.len() - 1) / 2
        })
    }

    /// Whether acceptor `a`'s crash now also loses durable batches
    /// (`--lose-tail`): one acceptor per run has the bad disk, and from its
    /// first loss on it counts as lost in every configuration
    /// ([`World::may_wipe`]: it never knows, so nothing lets it in again),
    /// so only while a majority of each keeps its disk without it.
    fn loses_tail(&mut self, a: usize) -> bool {
        self.params.lose_tail > 0.0
            && self.tail_lost.is_none_or(|t| t == a)
            && (self.tail_lost.is_some() || self.may_wipe(a))
            && self.fault_rng.chance(self.params.lose_tail)
    }

    /// Which operator client id `c` is, if it is one.
    fn admin_index(&self, c: u64) -> Option<usize> {
        self.admins.iter().position(|a| a.client == c)
    }

    fn acceptor_index(&self, id: NodeId) -> Option<usize> {
        self.acceptor_ids.iter().position(|a| *a == id)
    }

    /// An acceptor that lost its disk counts again once the latest
    /// configuration pins its new incarnation (or it is no member any more).
    fn follow_rebuilds(&mut self) {
        for a in 0..self.acceptor_ids.len() {
            if !self.amnesiac[a] {
                continue;
            }
            let id = self.acceptor_ids[a];
            let incarnation = self.acceptor_disks[a].state.incarnation;
            let config = self.config();
            let member = config.acceptors.iter().find(|m| m.id == id);
            // Not a member, but about to become one: the leader may pin the
            // incarnation it heard of before the loss, so it stays lost.
            let joining = self.admins.iter().any(
                |admin| matches!(admin.pending(), Some(MemberOp::Add { role: MemberRole::Acceptor, id: to, .. }) if *to == id),
            );
            let accepted = self.proposed_configs.range(config.epoch + 1..).flat_map(|(_, cs)| cs);
            let asked = self.proposers.iter().flatten().filter_map(|p| p.changing_to());
            let pinned_later = accepted
                .chain(asked)
                .any(|c| c.acceptors.iter().any(|m| m.id == id && m.incarnation != Some(incarnation)));
            let counts = match member {
                Some(m) => m.incarnation == Some(incarnation),
                None => !joining && !pinned_later,
            };
            if counts {
                self.amnesiac[a] = false;
            }
        }
    }

    /// The operators' moves of this tick.
    fn operate(&mut self) {
        if let Some(lost) = self.lost_member() {
            self.replace_lost(lost);
        } else {
            self.operate_first();
            if self.params.operators > 1 {
                self.operate_second();
            }
        }
        self.transfer();
    }

    /// The acceptor lost for good, by index, while the configuration in
    /// force holds it; counts the first tick it does not any more.
    fn lost_member(&mut self) -> Option<usize> {
        let a = self.lost_acceptor?;
        let id = self.acceptor_ids[a];
        if self.config().acceptors.iter().any(|m| m.id == id) {
            return Some(a);
        }
        if !self.lost_out {
            self.lost_out = true;
            self.stats.lost_removed += 1;
            if self.verbose {
                println!("{:>6} acceptor {} (lost for good) is no member any more", self.now, a + 1);
            }
        }
        None
    }

    /// While an acceptor lost for good is a member, the first operator
    /// replaces it, as one would: it removes the lost acceptor, or adds a
    /// spare in its stead (the other comes later), whichever the leader can
    /// make without it. A change waits until one more acceptor than a
    /// majority of its new configuration is ready, and the lost one never
    /// will be: a change that needs it would wait for ever (in a cluster of
    /// three, adding a fourth before removing the lost one does; so does
    /// removing another acceptor of five). No other change is asked
    /// meanwhile, and the second operator waits.
    fn replace_lost(&mut self, lost: usize) {
        if self.admins[0].busy() || !self.fault_rng.chance(self.params.member_rate) {
            return;
        }
        let config = self.config().clone();
        let lost_id = self.acceptor_ids[lost];
        // Whether a change to `n` acceptors, `live` of them not lost, can be made without the lost one.
        let feasible = |n: usize, live: usize| live >= (paxos_core::majority(n) + usize::from(n >= 3)).min(n);
        let spare = self.spare_acceptor();
        let n = config.acceptors.len();
        let mut choices: Vec<MemberOp> = Vec::new();
        if n > 1 && feasible(n - 1, n - 1) && !left_alone(&self.admins, MemberRole::Acceptor, lost_id) {
            choices.push(MemberOp::Remove { role: MemberRole::Acceptor, id: lost_id });
        }
        if let Some(a) = spare.filter(|_| n < 7 && feasible(n + 1, n)) {
            let id = self.acceptor_ids[a];
            choices.push(MemberOp::Add { role: MemberRole::Acceptor, id, addr: format!("acceptor-{id}") });
        }
        if choices.is_empty() {
            return;
        }
        let op = choices.swap_remove(self.fault_rng.index(choices.len()));
        if let MemberOp::Add { id, .. } = &op {
            let a = self.acceptor_index(*id).expect("a spare");
            self.start_acceptor(a);
        }
        let deadline_ms = self.draw_deadline();
        if self.verbose {
            println!("{:>6} operator, replacing lost acceptor {lost_id}: {op:?}", self.now);
        }
        self.stats.lost_replacements += 1;
        self.admins[0].start(op, self.now, deadline_ms);
    }

    /// The transferring operator's move of this tick: now and then it asks
    /// the leader to hand leadership to a proposer drawn at random from the
    /// configuration in force, as `paxosctl leader transfer` does, whatever
    /// the other operators are doing.
    fn transfer(&mut self) {
        let Some(t) = self.transferer else { return };
        if self.admins[t].busy() || !self.fault_rng.chance(self.params.transfer_rate) {
            return;
        }
        let i = self.fault_rng.index(self.config().proposers.len());
        let to = self.config().proposers[i].id;
        if self.verbose {
            println!("{:>6} operator: leader transfer to proposer {to}", self.now);
        }
        self.admins[t].start_transfer(to);
    }

    /// Whether removing proposer `id`, with every operator's pending removal,
    /// leaves a member proposer that is not lost for good: no operator
    /// removes the last one that can lead (nothing could lead then, for good).
    fn leaves_a_live_proposer(&self, id: NodeId) -> bool {
        let Some(lost) = self.lost.map(|p| self.proposer_ids[p]) else { return true };
        let removed = |p: NodeId| {
            p == id
                || p == lost
                || self.admins.iter().any(
                    |a| matches!(a.pending(), Some(MemberOp::Remove { role: MemberRole::Proposer, id: r }) if *r == p),
                )
        };
        self.config().proposers.iter().any(|m| !removed(m.id))
    }

    /// A second operator undoes an addition the first one asked for, once
    /// it is decided and while the first still waits for its answer (lost
    /// or late): the first one's retries must not make it again.
    fn operate_second(&mut self) {
        if self.admins[1].busy() {
            return;
        }
        let Some(MemberOp::Add { role, id, .. }) = self.admins[0].pending() else { return };
        let (role, id) = (*role, *id);
        // A member whose change was given up is left alone, as by the first operator.
        if given_up(&self.admins, role, id)
            || !self.config().members(role).iter().any(|m| m.id == id)
            || (role == MemberRole::Proposer && !self.leaves_a_live_proposer(id))
            || !self.fault_rng.chance(0.3)
        {
            return;
        }
        let deadline_ms = self.draw_deadline();
        let op = MemberOp::Remove { role, id };
        if self.verbose {
            println!("{:>6} second operator: {op:?}", self.now);
        }
        self.admins[1].start(op, self.now, deadline_ms);
    }

    /// A hasty operator: in the tick an acceptor lost its disk and in each of
    /// the two after, with a chance of one half, the first operator (if
    /// idle) removes another acceptor (taking the wrong host for the failed
    /// one, say), before any leader can have heard of the loss. Whether that leaves enough acceptors
    /// that can vote is the leader's to judge, by what the acceptors are
    /// after the request: a leader that counted their earlier answers
    /// could shrink the cluster around lost disks for good. Returns true
    /// if it asked.
    fn operate_hastily(&mut self) -> bool {
        let Some((_, lost)) = self.last_acceptor_wipe.filter(|(at, _)| self.now <= at + 2) else { return false };
        if self.params.member_rate == 0.0 || self.config().acceptors.len() <= 3 || !self.fault_rng.chance(0.5) {
            return false;
        }
        let candidates: Vec<NodeId> = self
            .config()
            .acceptors
            .iter()
            .map(|m| m.id)
            .filter(|id| *id != lost && !left_alone(&self.admins, MemberRole::Acceptor, *id))
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let id = candidates[self.fault_rng.index(candidates.len())];
        let op = MemberOp::Remove { role: MemberRole::Acceptor, id };
        let deadline_ms = self.draw_deadline();
        if self.verbose {
            println!("{:>6} operator, hastily: {op:?}", self.now);
        }
        self.stats.hasty_removals += 1;
        self.admins[0].start(op, self.now, deadline_ms);
        true
    }

    /// The deadline of an operator's change, if it has one. Half the
    /// operators' requests carry a deadline (paxosctl's always do), some of
    /// them short: a change not started by then is given up.
    fn draw_deadline(&mut self) -> Option<u64> {
        self.fault_rng
            .chance(0.5)
            .then(|| unix_ms(self.now + self.fault_rng.range(20, self.params.liveness_ticks.max(20))))
    }

    /// An acceptor the operators may add: never started, not waiting to
    /// start late, and not one whose change was given up or is pending.
    fn spare_acceptor(&self) -> Option<usize> {
        let p0 = self.proposer_ids.len();
        let late = |a: usize| self.late_starts.iter().any(|(_, l)| *l == a);
        (0..self.acceptor_ids.len()).find(|a| {
            !self.started[p0 + a] && !late(*a) && !left_alone(&self.admins, MemberRole::Acceptor, self.acceptor_ids[*a])
        })
    }

    /// The first operator's move of this tick: a membership change, one at a time.
    fn operate_first(&mut self) {
        if self.admins[0].busy() || self.operate_hastily() {
            return;
        }
        if !self.fault_rng.chance(self.params.member_rate) {
            return;
        }
        let config = self.config().clone();
        let p0 = self.proposer_ids.len();
        let left_alone = |role: MemberRole, id: NodeId| left_alone(&self.admins, role, id);
        let spare_acceptor = self.spare_acceptor();
        let spare_proposer =
            (0..p0).find(|p| !self.started[*p] && !left_alone(MemberRole::Proposer, self.proposer_ids[*p]));
        let mut choices: Vec<MemberOp> = Vec::new();
        if let Some(a) = spare_acceptor.filter(|_| config.acceptors.len() < 7) {
            let id = self.acceptor_ids[a];
            choices.push(MemberOp::Add { role: MemberRole::Acceptor, id, addr: format!("acceptor-{id}") });
        }
        if config.acceptors.len() > 3 {
            let m = &config.acceptors[self.fault_rng.index(config.acceptors.len())];
            if !left_alone(MemberRole::Acceptor, m.id) {
                choices.push(MemberOp::Remove { role: MemberRole::Acceptor, id: m.id });
            }
        }
        if let Some(p) = spare_proposer {
            let id = self.proposer_ids[p];
            choices.push(MemberOp::Add { role: MemberRole::Proposer, id, addr: format!("proposer-{id}") });
        }
        if config.proposers.len() > 2 {
            let m = &config.proposers[self.fault_rng.index(config.proposers.len())];
            if !left_alone(MemberRole::Proposer, m.id) && self.leaves_a_live_proposer(m.id) {
                choices.push(MemberOp::Remove { role: MemberRole::Proposer, id: m.id });
            }
        }
        if choices.is_empty() {
            return;
        }
        let op = choices.swap_remove(self.fault_rng.index(choices.len()));
        let deadline_ms = self.draw_deadline();
        // A node to add starts first, on an empty disk, and waits to be let
        // in; with a deadline, it may start late or never (a mistyped
        // address, a host that does not come up).
        match &op {
            MemberOp::Add { role: MemberRole::Acceptor, id, .. } => {
                let a = self.acceptor_index(*id).expect("a spare");
                if deadline_ms.is_some() && self.fault_rng.chance(0.3) {
                    if self.fault_rng.chance(0.5) {
                        let at = self.now + self.fault_rng.range(1, 2 * self.params.liveness_ticks);
                        self.late_starts.push((at, a));
                        self.stats.late_joiners += 1;
                    }
                } else {
                    self.start_acceptor(a);
                }
            }
            MemberOp::Add { role: MemberRole::Proposer, id, .. } => {
                let p = (id.0 - 1) as usize;
                self.start_proposer(p);
            }
            _ => {}
        }
        if self.verbose {
            println!("{:>6} operator: {op:?}", self.now);
        }
        self.admins[0].start(op, self.now, deadline_ms);
    }

    /// The adversary's move of this tick, if it has one.
    fn attack(&mut self) {
        let Some(who) = self.params.adversary else { return };
        if !self.fault_rng.chance(self.params.adversary_rate) {
            return;
        }
        let k = Knowledge {
            proposers: &self.proposer_ids[..self.params.proposers],
            acceptors: &self.acceptor_ids[..self.params.acceptors],
            ballot: self.seen_ballot,
            slot: self.seen_slot,
        };
        if who == Adversary::Replayer {
            if self.recorded.is_empty() {
                return;
            }
            let d = self.recorded[self.fault_rng.index(self.recorded.len())].clone();
            self.stats.adversary_sent += 1;
            let at = (self.now + self.net_rng.range(1, self.params.max_delay), self.net_rng.next_u64());
            self.network.insert(at, d);
            return;
        }
        let (forged, signer) = match who {
            Adversary::Forger => {
                let (forged, proposal) = adversary::forge(&mut self.fault_rng, &k, &mut self.adversary_seq);
                self.adversary_proposals.extend(proposal);
                (forged, Signer::Unsigned)
            }
            Adversary::Insider => (adversary::extreme(&mut self.fault_rng, &k), Signer::Peer),
            Adversary::Replayer => unreachable!("replays are sent above"),
        };
        self.stats.adversary_sent += 1;
        // The adversary sits beside every node: no partition or loss between.
        let at = (self.now + self.net_rng.range(1, self.params.max_delay), self.net_rng.next_u64());
        self.network.insert(at, Datagram { from: forged.from, to: forged.to, msg: forged.msg, signer });
    }

    /// The faults stop: every node comes back, the network is whole and reliable.
    fn heal(&mut self) {
        self.partition = None;
        for i in 0..self.nodes() {
            if self.down_until[i].is_some_and(|t| t != u64::MAX) {
                self.down_until[i] = Some(self.now);
            }
            if self.failed_until[i].is_some_and(|t| t != u64::MAX) {
                self.failed_until[i] = Some(self.now);
            }
        }
    }

    /// Restarts crashed nodes and recovers failed ones whose time is up.
    fn wake(&mut self) {
        for i in 0..self.nodes() {
            if self.down_until[i].is_some_and(|t| self.now >= t) {
                self.down_until[i] = None;
                if i < self.proposer_ids.len() {
                    self.start_proposer(i);
                } else {
                    self.start_acceptor(i - self.proposer_ids.len());
                }
            }
            if self.failed_until[i].is_some_and(|t| self.now >= t) {
                self.failed_until[i] = None;
            }
        }
    }

    fn deliver(&mut self) {
        let later = self.network.split_off(&(self.now + 1, 0));
        let due = std::mem::replace(&mut self.network, later);
        for (_, mut d) in due {
            let Some(to) = self.endpoint(d.to) else {
                unreachable!("the simulator only addresses its own endpoints");
            };
            // The adversary may claim any name; its datagrams come from no endpoint of ours.
            let cut = self.endpoint(d.from).is_some_and(|from| self.cut(from, to));
            if !self.is_up(to) || self.is_failed(to) || cut {
                self.stats.lost += 1;
                continue;
            }
            // The one rule every receiver applies: a member's name (or an operator's request) needs a peer key's MAC.
            if admit(d.from, &d.msg, d.signer, POLICY).is_err() {
                self.stats.unauthenticated += 1;
                continue;
            }
            let from = self.endpoint(d.from).unwrap_or(usize::MAX);
            self.stats.delivered += 1;
            if self.params.adversary == Some(Adversary::Replayer) {
                if self.recorded.len() < adversary::REPLAY_MEMORY {
                    self.recorded.push(d.clone());
                } else {
                    let i = self.recorded_next % adversary::REPLAY_MEMORY;
                    self.recorded[i] = d.clone();
                }
                self.recorded_next += 1;
            }
            self.trace = (self.trace ^ (self.now << 32 ^ (from as u64) << 16 ^ to as u64)).wrapping_mul(FNV_PRIME);
            self.trace = (self.trace ^ d.msg.kind().len() as u64).wrapping_mul(FNV_PRIME);
            if self.verbose {
                println!("{:>6} {} -> {}: {:?}", self.now, d.from, d.to, d.msg);
            }
            if matches!(d.msg, Message::TimeoutNow(_)) {
                self.handed_over_at = self.now;
            }
            let p0 = self.proposer_ids.len();
            if let (Message::MemberRequest(m), Some(crate::Defect::EpochlessCopies)) = (&mut d.msg, self.params.defect)
            {
                if self.admins.iter().any(|a| d.from == Node::Client(ClientId(a.client)) && a.is_late_copy(m.req)) {
                    m.epoch = None;
                }
            }
            let result = match d.to {
                Node::Proposer(_) => self.proposers[to].as_mut().expect("up").handle(d.from, d.msg),
                Node::Acceptor(_) => self.acceptors[to - p0].as_mut().expect("up").handle(d.from, d.msg),
                Node::Client(ClientId(c)) => {
                    match self.admin_index(c) {
                        Some(k) => self.admins[k].handle(self.now, d.msg),
                        None => {
                            let c = to - self.nodes();
                            self.clients[c].handle(self.now, d.from, d.msg);
                        }
                    }
                    Ok(())
                }
            };
            if result.is_err() {
                self.stats.ignored += 1;
            }
        }
    }

    /// Sends every node's early messages and queues its writes; makes the
    /// writes that are due durable, sends what waited on them and serves the
    /// reads that waited on them; crashes the nodes due to crash.
    fn flush(&mut self) {
        let p0 = self.proposer_ids.len();
        for i in 0..self.nodes() {
            let crash = self.crash_now[i].take();
            let (from, early, writes, messages, reads) = if i < p0 {
                let Some(p) = self.proposers[i].as_mut() else { continue };
                let ready = p.take_ready();
                (Node::Proposer(p.id()), ready.early, Writes::Proposer(ready.persist), ready.messages, ready.reads)
            } else {
                let Some(a) = self.acceptors[i - p0].as_mut() else { continue };
                let ready = a.take_ready();
                let fold = &mut self.acceptor_folds[i - p0];
                for op in &ready.persist {
                    fold.apply(op);
                }
                if paxos_core::Role::folded(a) != Some(&*fold) {
                    let detail = format!("acceptor {}: its state is not the fold of the operations it wrote", a.id());
                    self.violations.push(Violation { invariant: "fold", detail });
                }
                (Node::Acceptor(a.id()), ready.early, Writes::Acceptor(ready.persist), ready.messages, ready.reads)
            };
            self.check_learned(from, &writes);
            // Early messages leave before the writes are durable, so even a
            // crash that loses those writes does not hold them back.
            if !self.is_failed(i) {
                self.pending_sends.extend(early.into_iter().map(|m| (from, m.to, m.msg)));
            }
            let lag = if self.params.persist_lag > 0 { self.fault_rng.range(0, self.params.persist_lag) } else { 0 };
            let after = self.unsynced[i].back().map_or(0, |b| b.due);
            self.unsynced[i].push_back(Pending { writes, messages, reads, due: (self.now + lag).max(after) });
            // A power cut loses the writes of a suffix of the batches in flight.
            let pending = self.unsynced[i].len();
            let keep = if crash.is_some() && self.fault_rng.chance(self.params.crash_before_persist) {
                self.fault_rng.index(pending)
            } else {
                pending
            };
            let mut done = 0;
            while done < keep && self.unsynced[i][done].due <= self.now {
                done += 1;
            }
            for (k, batch) in std::mem::take(&mut self.unsynced[i]).into_iter().enumerate() {
                if k >= keep {
                    self.stats.crashes_before_persist += 1;
                    continue;
                }
                if k >= done && crash.is_none() {
                    self.unsynced[i].push_back(batch);
                    continue;
                }
                self.make_durable(i, batch.writes);
                // A crash comes after what was due: those messages left and
                // those reads were served; the rest never will be.
                if k < done && !self.is_failed(i) {
                    self.pending_sends.extend(batch.messages.into_iter().map(|m| (from, m.to, m.msg)));
                }
                if k < done && crash.is_none() {
                    self.serve_reads(i, batch.reads);
                }
            }
            if let Some(wipe) = crash {
                self.crash(i, wipe);
            }
        }
        for (from, to, msg) in std::mem::take(&mut self.pending_sends) {
            self.send(from, to, msg);
        }
    }

    /// Node `i` crashes; with `wipe`, its disk is lost too.
    fn crash(&mut self, i: usize, wipe: bool) {
        let p0 = self.proposer_ids.len();
        self.stats.crashes += 1;
        if self.scrub_watch.is_some_and(|(w, _)| w == i) {
            self.scrub_watch = None;
        }
        if wipe && self.damaged.is_some_and(|(d, _, _)| d == i) {
            self.damaged = None;
        } else if !wipe && self.stats.logs_damaged == 0 && self.params.damage_log > 0.0 {
            self.damage_log(i);
        }
        if i < p0 {
            if let Some(p) = self.proposers[i].take() {
                self.stats.writes_lost_seen += p.status().counters.get("acceptor_writes_lost").copied().unwrap_or(0);
            }
            if wipe {
                self.proposer_disks[i] = MemStore::<ProposerState>::default();
                self.stats.proposer_wipes += 1;
            }
        } else {
            let a = i - p0;
            self.acceptors[a] = None;
            // Drawn earlier this tick: another acceptor's crash since may
            // have lost its disk or its tail, and the majority that keeps
            // its disk must hold with both (seed 498408072 of `--lose-tail 1`
            // lost acceptor 1's tail and acceptor 2's disk at one tick, of three).
            let wipe = wipe && self.may_wipe(a);
            if !wipe && self.loses_tail(a) {
                let kept = std::mem::take(&mut self.before_last[a]);
                if !kept.is_empty() {
                    self.tail_lost = Some(a);
                    let lost = 1 + self.fault_rng.index(kept.len());
                    self.acceptor_disks[a] = kept[kept.len() - lost].clone();
                    self.stats.tails_lost += 1;
                    if self.verbose {
                        println!("{:>6} acceptor {} lost its last {lost} durable batches", self.now, a + 1);
                    }
                }
            }
            if wipe {
                self.before_last[a].clear();
                self.acceptor_disks[a] = MemStore::<AcceptorState>::default();
                self.amnesiac[a] = true;
                self.last_acceptor_wipe = Some((self.now, self.acceptor_ids[a]));
                self.stats.acceptor_wipes += 1;
                if self.verbose {
                    println!("{:>6} acceptor {} lost its disk", self.now, a + 1);
                }
            }
        }
        self.down_until[i] =
            Some(if self.lost == Some(i) || self.lost_acceptor.map(|a| self.proposer_ids.len() + a) == Some(i) {
                u64::MAX
            } else {
                self.now + self.fault_rng.range(1, 100)
            });
    }

    /// With `--damage-log`, node `i`'s crash, or a rare tick while it runs,
    /// damages (once a run, with that probability) its decided log as it is
    /// on disk then: a proposer's, all of it, which
    /// may be the only decided copy of its last slots (a damaged leader
    /// hands leadership over, and the next leader recovers them from the
    /// acceptors' votes), if another member proposer (not lost for good,
    /// its log holding the configuration in force) could lead in its place;
    /// an acceptor's, the slots that another proposer's disk holds in its
    /// decided log too, as an old sealed segment's are. A
    /// damaged acceptor counts as one that lost its disk from then on
    /// ([`World::may_wipe`]), and is damaged only while that is allowed.
    /// While a log is damaged, proposers crash without losing their disks
    /// (nor is one lost for good):
    /// with every proposer's gone, a damaged acceptor may hold the only
    /// decided copy of slots the other acceptors hold only as votes, and its
    /// decided prefix tells a new leader not to recover them from the votes
    /// (simulator seed 397006254 before this rule; README, Known limits).
    fn damage_log(&mut self, i: usize) {
        let p0 = self.proposer_ids.len();
        if i >= p0 && !self.may_wipe(i - p0) {
            return;
        }
        let others = self.proposer_disks.iter().enumerate().filter(|(j, _)| *j != i && self.lost != Some(*j));
        let Some(others_end) = others.map(|(_, d)| d.log.end()).max() else { return };
        // A proposer's damage needs another member proposer that could lead
        // in its place: one whose own log holds the configuration in force
        // (one added by a change that only the damaged log holds does not
        // know it is a member, and cannot campaign to recover it).
        if i < p0 {
            let epoch = self.config().epoch;
            let holds = self.config_decided_at.get(&epoch).map_or(Slot(0), |(_, at)| at.next());
            let can_lead = |j: &usize| *j != i && self.proposer_disks[*j].log.end() >= holds;
            if !self.member_proposers().iter().any(can_lead) {
                return;
            }
        }
        let (start, end) = (self.disk_log(i).start, self.disk_log(i).end());
        let end = if i < p0 { end } else { others_end.min(end) };
        if end > start && self.fault_rng.chance(self.params.damage_log) {
            // From the log's first slot in half the runs; else from a slot
            // further in, which only a pass that reads on finds.
            let first = if self.fault_rng.chance(0.5) { start } else { Slot(self.fault_rng.range(start.0, end.0)) };
            self.damaged = Some((i, first, end));
            self.stats.logs_damaged += 1;
            self.stats.only_copies_damaged += u64::from(i < p0 && end > others_end);
            if self.verbose {
                let node = if i < p0 { format!("proposer {}", i + 1) } else { format!("acceptor {}", i - p0 + 1) };
                println!("{:>6} {node} damaged its decided log from slot {} below slot {}", self.now, first.0, end.0);
            }
        }
    }

    /// Reads of the decided log, from the node's disk, handed back to its
    /// role; a read that reaches the damage of a damaged log fails.
    fn serve_reads(&mut self, i: usize, reads: Vec<ReadRequest>) {
        let p0 = self.proposer_ids.len();
        for r in reads {
            let log = self.disk_log(i);
            let page = log.read(r.from, r.limit, r.max_bytes);
            // The page holds a damaged slot (a page that ends before the damage reads).
            let after = Slot(page.from.0 + page.entries.len() as u64);
            let damaged = self.damaged.is_some_and(|(d, first, end)| d == i && page.from < end && after > first);
            // An I/O error that passes (drawn only with `--flaky-reads`, so that other runs keep their traces).
            let flaky = self.params.flaky_reads > 0.0
                && self.now < self.params.fault_ticks
                && self.fault_rng.chance(self.params.flaky_reads);
            // `None`: the read reached the damage, or the error, and failed.
            let page = (!damaged && !flaky).then_some(page);
            self.stats.reads_failed += u64::from(damaged);
            self.stats.reads_flaked += u64::from(flaky && !damaged);
            if damaged || flaky {
                self.read_failed_at[i] = Some(self.now);
            }
            if damaged && self.damage_found_at[i].is_none() {
                self.damage_found_at[i] = Some(self.now);
                if i < p0 {
                    self.damage_found_tick = self.now;
                }
            }
            if damaged && self.scrub_watch.is_some_and(|(w, _)| w == i) {
                self.scrub_watch = None;
            }
            // A read that failed for an error that passes ends the watched
            // node's pass short of the damage: the next comes after a
            // retry's pause (at most the daily one here), and must reach it.
            if flaky && !damaged {
                if let Some((w, by)) = self.scrub_watch.filter(|(w, _)| *w == i) {
                    let again =
                        self.now + SCRUB_AGAIN_TICKS * 6 / 5 + self.params.persist_lag + self.ticks_to_damage(w);
                    self.scrub_watch = Some((w, by.max(again + SCRUB_DEADLINE_TICKS)));
                }
            }
            if i < p0 {
                if let Some(p) = self.proposers[i].as_mut() {
                    match page {
                        Some(page) => p.on_read(r.id, page),
                        None => p.on_read_failed(r.id),
                    }
                }
            } else if let Some(a) = self.acceptors[i - p0].as_mut() {
                match page {
                    Some(page) => a.on_read(r.id, page),
                    None => a.on_read_failed(r.id),
                }
            }
        }
    }

    /// Agreement, checked for every value a learner (a proposer, or an
    /// acceptor filling its decided log) applies, when it applies it: one
    /// value per slot, ever.
    fn check_learned(&mut self, node: Node, writes: &Writes) {
        let learned: Vec<(Slot, &Value)> = match writes {
            Writes::Proposer(ops) => ops
                .iter()
                .filter_map(|op| match op {
                    ProposerOp::Learn { slot, value, .. } => Some((*slot, value)),
                    _ => None,
                })
                .collect(),
            Writes::Acceptor(ops) => ops
                .iter()
                .filter_map(|op| match op {
                    AcceptorOp::Learn { slot, value } => Some((*slot, value)),
                    _ => None,
                })
                .collect(),
        };
        for (slot, value) in learned {
            match self.chosen.get(&slot) {
                None => {
                    if let Value::Config(c) = value {
                        if let std::collections::btree_map::Entry::Vacant(e) = self.configs.entry(c.epoch) {
                            e.insert(c.clone());
                            self.config_decided_at.insert(c.epoch, (self.now, slot));
                            self.stats.configs += 1;
                        }
                    }
                    if let Value::Command(c) = value {
                        // A command is stamped no later than the acceptors' clocks allow (they run
                        // at most `clock_spread_ms` ahead of the simulated one), whatever a
                        // proposer's clock says: one far ahead would age every session at once.
                        let latest = unix_ms(self.now) + self.params.clock_spread_ms + STAMP_SLACK_MS;
                        if c.at > latest {
                            self.violations.push(Violation {
                                invariant: "stamps",
                                detail: format!(
                                    "tick {}: slot {slot} holds a command stamped {} ms past what the acceptors' \
                                     clocks allow",
                                    self.now,
                                    c.at - latest
                                ),
                            });
                        }
                    }
                    self.chosen.insert(slot, value.clone());
                }
                Some(v) if v == value => {}
                Some(v) => {
                    let first = self.diverged_at.entry(node).or_insert(slot);
                    *first = (*first).min(slot);
                    self.violations.push(Violation {
                        invariant: "agreement",
                        detail: format!(
                            "tick {}: {node} applied {value:?} at slot {slot}, another learner applied {v:?}",
                            self.now
                        ),
                    })
                }
            }
        }
    }

    /// Applies one batch of writes of node `i` to its disk, recording every
    /// accept in the history that agreement is checked against.
    fn make_durable(&mut self, i: usize, writes: Writes) {
        match writes {
            Writes::Proposer(ops) => self.proposer_disks[i].apply(&ops).expect("in-memory disk"),
            Writes::Acceptor(ops) => {
                let a = i - self.proposer_ids.len();
                if self.params.lose_tail > 0.0 {
                    let kept = &mut self.before_last[a];
                    if kept.len() == TAIL_BATCHES {
                        kept.remove(0);
                    }
                    kept.push(self.acceptor_disks[a].clone());
                }
                self.acceptor_disks[a].apply(&ops).expect("in-memory disk");
                let id = self.acceptor_ids[a];
                for op in &ops {
                    if let AcceptorOp::Reincarnate(incarnation) = op {
                        self.stats.rebuilt_lost_writes += 1;
                        // Only a disk that lost synced writes rebuilds for it
                        // (an insider may forge the answers that say so).
                        if self.tail_lost != Some(a) && self.params.adversary != Some(Adversary::Insider) {
                            self.violations.push(Violation {
                                invariant: "rebuilds only after lost writes",
                                detail: format!(
                                    "tick {}: acceptor {id} became incarnation {incarnation} for writes it lost, \
                                     but its disk lost none",
                                    self.now
                                ),
                            });
                        }
                    }
                    if let AcceptorOp::Accept { slot, ballot, value } = op {
                        if let Value::Config(c) = value {
                            let known = self.proposed_configs.entry(c.epoch).or_default();
                            if !known.contains(c) {
                                known.push(c.clone());
                            }
                        }
                        let (v, votes) =
                            self.accept_history.entry((*slot, *ballot)).or_insert((value.clone(), Vec::new()));
                        if !votes.contains(&id) {
                            votes.push(id);
                        }
                        if v != value {
                            self.violations.push(Violation {
                                invariant: "one value per ballot",
                                detail: format!(
                                    "tick {}: acceptor {id} accepted {value:?} at slot {slot} under {ballot}, \
                                     another acceptor {v:?}",
                                    self.now,
                                ),
                            });
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, from: Node, to: Node, msg: Message) {
        self.stats.sent += 1;
        // What the deadline check needs of a "given up": when, and the ballot of the leader that said it.
        if let (Node::Proposer(p), Node::Client(ClientId(c)), Message::MemberReply(r)) = (from, to, &msg) {
            if let Some(proposer) = self.proposers.get((p.0 as usize).wrapping_sub(1)).and_then(|p| p.as_ref()) {
                let given_up = r.error.as_ref().is_some_and(|e| e.starts_with("given up at its deadline"));
                if given_up && self.admin_index(c).is_some() {
                    self.give_ups.entry((c, r.req)).or_insert((self.now, proposer.ballot()));
                }
            }
        }
        let (Some(f), Some(t)) = (self.endpoint(from), self.endpoint(to)) else {
            // A node may name a client or peer that is not part of this world (a forged address):
            // the datagram goes nowhere.
            self.stats.lost += 1;
            return;
        };
        let faulty = self.faulty();
        if self.cut(f, t) || (faulty && self.net_rng.chance(self.params.drop)) {
            self.stats.lost += 1;
            return;
        }
        if self.params.codec_check {
            self.check_codec(from, to, &msg);
        }
        let max_delay = if !faulty {
            self.params.max_delay.min(2)
        } else if self.net_rng.chance(self.params.long_delay) {
            300
        } else {
            self.params.max_delay
        };
        self.observe(&msg);
        // Members sign with the peer key, and so does the operator; clients do not.
        let signer = match from {
            Node::Client(ClientId(c)) if self.admin_index(c).is_some() => Signer::Peer,
            Node::Client(_) => Signer::Unsigned,
            _ => Signer::Peer,
        };
        if faulty && self.net_rng.chance(self.params.duplicate) {
            let at = (self.now + self.net_rng.range(1, max_delay), self.net_rng.next_u64());
            self.network.insert(at, Datagram { from, to, msg: msg.clone(), signer });
        }
        let at = (self.now + self.net_rng.range(1, max_delay), self.net_rng.next_u64());
        self.network.insert(at, Datagram { from, to, msg, signer });
    }

    /// What the adversary learns from watching the network: the highest ballot and slot.
    fn observe(&mut self, msg: &Message) {
        // A configuration on its way may come into force: disks may only be lost as it allows.
        if let Message::Accept(m) = msg {
            for e in &m.entries {
                if let Value::Config(c) = &e.value {
                    let known = self.proposed_configs.entry(c.epoch).or_default();
                    if !known.contains(c) {
                        known.push(c.clone());
                    }
                    if !self.config_first_ballots.iter().any(|(s, known, _)| *s == e.slot && known == c) {
                        self.config_first_ballots.push((e.slot, c.clone(), m.ballot));
                    }
                }
            }
        }
        let (ballot, slot) = match msg {
            Message::Accept(m) => (Some(m.ballot), m.entries.iter().map(|e| e.slot).max()),
            Message::Accepted(m) => (Some(m.ballot), m.slots.iter().copied().max()),
            Message::Prepare(m) => (Some(m.ballot), None),
            Message::Heartbeat(m) => (Some(m.ballot), Some(m.known)),
            _ => (None, None),
        };
        self.seen_ballot = self.seen_ballot.max(ballot.unwrap_or(Ballot::ZERO));
        self.seen_slot = self.seen_slot.max(slot.unwrap_or(Slot(0)));
    }

    /// Every datagram the roles produce must encode within the limit and decode to itself.
    fn check_codec(&mut self, from: Node, to: Node, msg: &Message) {
        let env = Envelope { version: PROTOCOL_VERSION, cluster: "sim".into(), from, to, msg: msg.clone() };
        let mut buf = Vec::new();
        // Through the daemons' own send path (head and body apart, with the fast
        // writer), which must write serde_json's bytes, and their receive path
        // (`decode_bundle`, with its fast path).
        let (mut head, mut body) = (Vec::new(), Vec::new());
        paxos_proto::encode_envelope_head(&env.cluster, from, to, &mut head);
        paxos_proto::encode_message(msg, &mut body);
        let sent = [head, body, b"}".to_vec()].concat();
        let ok = paxos_proto::encode(&env, &mut buf).is_ok()
            && sent == buf
            && paxos_proto::decode_bundle(&buf).is_ok_and(|envs| envs.len() == 1 && envs[0] == env);
        if !ok {
            let detail = format!("{} -> {}: a {} of {} bytes does not round-trip", from, to, msg.kind(), buf.len());
            self.violations.push(Violation { invariant: "codec", detail });
        }
    }

    /// The proposers that are members of the latest configuration, by index,
    /// but the one lost for good (its log is gone with its machine).
    pub(crate) fn member_proposers(&self) -> Vec<usize> {
        let config = self.config();
        (0..self.proposer_ids.len())
            .filter(|p| self.lost != Some(*p))
            .filter(|p| config.proposers.iter().any(|m| m.id == self.proposer_ids[*p]))
            .collect()
    }

    /// A proposer's durable decided log, as clients see it: `(value, duplicate)` from its start.
    pub(crate) fn proposer_log(&self, p: usize) -> (Slot, Vec<(Value, bool)>) {
        let log = &self.proposer_disks[p].log;
        (log.start, log.entries.iter().map(|e| (e.value.clone(), e.duplicate)).collect())
    }

    /// True when every node is up, every client is done, the operator's
    /// change is decided, and every member proposer learned the same log,
    /// which holds every acknowledged value.
    pub fn settled(&self) -> bool {
        if self.faulty() || !self.clients.iter().all(|c| c.done()) || self.admins.iter().any(Admin::busy) {
            return false;
        }
        let members = self.member_proposers();
        if members.iter().any(|p| self.proposers[*p].is_none()) {
            return false;
        }
        let logs: Vec<(Slot, Vec<(Value, bool)>)> = members.iter().map(|p| self.proposer_log(*p)).collect();
        // Every acknowledged value is learned and durable, not merely decided: a leader
        // answers before its own copy is durable, and may crash right after.
        let acked_end = self
            .clients
            .iter()
            .flat_map(|c| &c.requests)
            .filter_map(|r| r.acked)
            .map(|(_, s)| s.0 + 1)
            .max()
            .unwrap_or(0);
        let decided_everywhere = members.iter().all(|p| {
            self.proposers[*p].as_ref().is_some_and(|x| x.learner().decided().0 == self.proposer_disks[*p].log.end().0)
        });
        // Retention may have deleted different prefixes: the logs agree where they overlap.
        let agree = |(sa, a): &(Slot, Vec<(Value, bool)>), (sb, b): &(Slot, Vec<(Value, bool)>)| {
            let from = sa.0.max(sb.0);
            let skip = |start: Slot| (from - start.0) as usize;
            sa.0 + a.len() as u64 == sb.0 + b.len() as u64 && a[skip(*sa).min(a.len())..] == b[skip(*sb).min(b.len())..]
        };
        decided_everywhere
            && logs.windows(2).all(|w| agree(&w[0], &w[1]))
            && logs.iter().all(|(start, l)| start.0 + l.len() as u64 >= acked_end)
    }

    /// The acceptors' durable states, for the final checks.
    pub(crate) fn acceptor_states(&self) -> impl Iterator<Item = &AcceptorState> {
        self.acceptor_disks.iter().map(|d| &d.state)
    }

    /// The acceptors of the latest configuration that count (not waiting for a rebuild),
    /// by index, with their membership as they see it.
    pub(crate) fn voting_acceptors(&self) -> Vec<usize> {
        let config = self.config();
        config
            .acceptors
            .iter()
            .filter_map(|m| self.acceptor_index(m.id))
            .filter(|a| !self.amnesiac[*a])
            .filter(|a| self.acceptors[*a].as_ref().is_none_or(|x| x.membership() == Membership::Up))
            .collect()
    }
}

impl World {
    /// True when acceptor `a`'s disk holds `value` at `slot`: decided, or accepted.
    pub(crate) fn acceptor_holds(&self, a: usize, slot: Slot, value: &Value) -> bool {
        let disk = &self.acceptor_disks[a];
        let decided = slot >= disk.log.start
            && disk.log.entries.get((slot.0 - disk.log.start.0) as usize).is_some_and(|e| e.value == *value);
        decided || disk.state.accepted.get(&slot).is_some_and(|(_, v)| v == value)
    }

    /// True when proposer `p`'s durable log holds `value` at `slot`.
    pub(crate) fn proposer_holds(&self, p: usize, slot: Slot, value: &Value) -> bool {
        let log = &self.proposer_disks[p].log;
        slot >= log.start && log.entries.get((slot.0 - log.start.0) as usize).is_some_and(|e| e.value == *value)
    }
}

/// True when an operator was told a change to this member was given up.
fn given_up(admins: &[Admin], role: MemberRole, id: NodeId) -> bool {
    admins.iter().flat_map(|a| &a.given_up).any(|(op, ..)| op.target() == Some((role, id)))
}

/// True when the first operator leaves this member alone. One whose change
/// was given up is left alone from then on, so that any later change to it
/// would be the given-up one (see `checks::deadlines`). So is one an
/// operator is changing, so that a change given up is never made by the
/// other operator's request.
fn left_alone(admins: &[Admin], role: MemberRole, id: NodeId) -> bool {
    given_up(admins, role, id) || admins.iter().any(|a| a.pending().and_then(MemberOp::target) == Some((role, id)))
}
