//! Deterministic simulation of the real `paxos-core` roles.
//!
//! A run builds proposers, acceptors and clients from one seed, drives them
//! through lost, duplicated, delayed and reordered datagrams, partitions,
//! failures (the seed's `fail()`) and crash-restarts from their in-memory disks
//! for `fault_ticks`, then heals everything and runs until every client is
//! answered and every proposer learned the same log. Afterwards it checks each
//! guarantee of SPEC.md, one module per invariant in [`checks`].
//!
//! The same seed gives the same run, datagram for datagram: the only source of
//! chance is [`rng::Rng`], and nothing in the core or here iterates a hash map
//! where order shows. `paxos-sim --seed N` replays run `N`.

pub mod admin;
pub mod adversary;
pub mod checks;
pub mod client;
pub mod params;
pub mod rng;
pub mod world;

pub use adversary::Adversary;
pub use params::{Defect, Overrides, Params};
/// A broken guarantee: the checker's own type, for the simulator's checks too.
pub use paxos_check::Violation;
pub use world::{Stats, World};

/// What one run did and found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The parameters, all drawn from the seed or pinned.
    pub params: Params,
    /// Broken guarantees; empty for a correct run.
    pub violations: Vec<Violation>,
    /// Ticks the run took.
    pub ticks: u64,
    /// Digest of every delivery; equal for equal seeds.
    pub trace: u64,
    /// What happened.
    pub stats: Stats,
    /// Slots decided.
    pub decided: u64,
    /// Each member proposer's final durable log.
    pub logs: Vec<Vec<paxos_proto::Value>>,
}

impl Outcome {
    /// True when no guarantee was broken.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one simulation: seed and overrides in, outcome out.
pub fn run(seed: u64, overrides: &Overrides) -> Outcome {
    run_params(Params::draw(seed, overrides), false)
}

/// Runs the simulation `params` describe; `verbose` prints every delivery.
pub fn run_params(params: Params, verbose: bool) -> Outcome {
    let mut world = World::new(params, verbose);
    // After healing, everything must settle within the liveness bound; a little
    // more is allowed for the last client's request to go out and come back.
    // Each request has its own deadline (checked every tick); this only bounds the run.
    let values = (world.params.clients * world.params.values_per_client) as u64;
    let deadline =
        world.params.fault_ticks + world.params.liveness_ticks + 2 * world.params.client_timeout + 100 + 20 * values;
    // No campaign against a leader the acceptors vouch for, at any tick (`checks::prevote`).
    let mut vouch = checks::prevote::Vouch::new(&world);
    while !world.settled() && world.now < deadline && world.going() {
        world.step();
        checks::liveness::check_progress(&mut world);
        if let Some(v) = &mut vouch {
            v.observe(&mut world);
        }
    }
    // A little longer, so that acceptors hear the last decided slots (the
    // leader's probes carry them) before durability is checked on them.
    // The cluster may still change meanwhile (a rebuilt acceptor let in), so
    // it must settle again afterwards, within the liveness bound.
    // Meanwhile leadership must stay where it is (`checks::stability`).
    if world.settled() {
        let mut watch = checks::stability::Watch::new(&world);
        let mut step = |world: &mut World| {
            world.step();
            if let Some(w) = &mut watch {
                w.observe(world);
            }
            if let Some(v) = &mut vouch {
                v.observe(world);
            }
        };
        let watched_from = world.now.max(world.healed_at + checks::stability::settling_ticks());
        let quiet = watched_from + checks::stability::watched_ticks(world.params.liveness_ticks);
        while world.now < quiet && world.going() {
            step(&mut world);
        }
        let again = world.now + world.params.liveness_ticks;
        while !world.settled() && world.now < again && world.going() {
            step(&mut world);
        }
    }
    checks::check_all(&mut world);
    if verbose {
        for p in world.proposers.iter().flatten() {
            println!("final state of proposer {}: {p:?}", p.id());
        }
    }
    world.stats.member_changes = world.admins.iter().map(|a| a.done.len() as u64).sum();
    world.stats.member_given_up = world.admins.iter().map(|a| a.given_up.len() as u64).sum();
    world.stats.member_stale = world.admins.iter().map(|a| a.stale).sum();
    world.stats.second_operator =
        if world.params.operators > 1 { world.admins.get(1).map_or(0, |a| a.commands()) } else { 0 };
    if let Some(t) = world.transferer {
        let transfers = &world.admins[t].transfers;
        world.stats.transfers = transfers.len() as u64;
        world.stats.transfers_handed =
            transfers.iter().filter(|(to, leader, error)| error.is_none() && leader == &Some(*to)).count() as u64;
    }
    for p in world.proposers.iter().flatten() {
        world.stats.writes_lost_seen += p.status().counters.get("acceptor_writes_lost").copied().unwrap_or(0);
    }
    // No false alarm: a proposer says an acceptor lost writes it had synced
    // only when one did (an insider may forge the answers that say so).
    if world.stats.writes_lost_seen > 0
        && world.stats.tails_lost == 0
        && world.params.adversary != Some(Adversary::Insider)
    {
        world.violations.push(Violation {
            invariant: "writes-lost alarm",
            detail: format!(
                "a proposer said {} times that an acceptor lost writes it had synced; no disk lost any",
                world.stats.writes_lost_seen
            ),
        });
    }
    world.stats.acked = world.clients.iter().flat_map(|c| &c.requests).filter(|r| r.acked.is_some()).count() as u64;
    Outcome {
        logs: world
            .member_proposers()
            .into_iter()
            .map(|p| world.proposer_log(p).1.into_iter().map(|(v, _)| v).collect())
            .collect(),
        ticks: world.now,
        trace: world.trace,
        stats: world.stats.clone(),
        decided: world.chosen.len() as u64,
        violations: std::mem::take(&mut world.violations),
        params: world.params.clone(),
    }
}
