//! `paxos-sim`: replay one seed, or sweep many and report seeds per second.
//!
//! ```text
//! paxos-sim --seed 42 [--verbose]        replay one run exactly, print its parameters and outcome
//! paxos-sim --sweep 100000 [--from 0]    run many seeds on every core; exit 1 on the first violation
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use paxos_sim::{run, run_params, Adversary, Defect, Overrides, Params};

#[derive(Parser)]
#[command(version, about = "Deterministic simulation of the Paxos core under seeded faults")]
struct Args {
    /// Replay this seed.
    #[arg(long, conflicts_with = "sweep")]
    seed: Option<u64>,
    /// Run this many seeds.
    #[arg(long)]
    sweep: Option<u64>,
    /// The first seed of a sweep.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Threads for a sweep (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print every delivered datagram of a replay.
    #[arg(long)]
    verbose: bool,
    /// Run with a deliberate bug, by name (paxos_sim::Defect; an unknown name is refused with the list of all)
    #[arg(long, value_parser = parse_defect)]
    defect: Option<Defect>,
    /// Pin the adversary on the network: forger (no key), insider (the peer key, extreme rounds and slots), none.
    #[arg(long, value_parser = parse_adversary)]
    adversary: Option<Pinned>,
    /// Pin the number of acceptors.
    #[arg(long)]
    acceptors: Option<usize>,
    /// Pin the number of proposers.
    #[arg(long)]
    proposers: Option<usize>,
    /// Pin the number of clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Pin the values each client proposes.
    #[arg(long)]
    values_per_client: Option<usize>,
    /// Fail these acceptors (1-based ids) for the whole run, as the seed scenario does.
    #[arg(long, value_delimiter = ',')]
    failed_acceptors: Vec<usize>,
    /// No faults at all (besides --failed-acceptors).
    #[arg(long)]
    no_faults: bool,
    /// The seed scenario: 2 proposers, 5 acceptors with 1 and 2 failed, 1000 clients of one value each, no faults.
    #[arg(long)]
    seed_scenario: bool,
    /// Pin the probability that an acceptor's crash also loses its disk (0 to 1).
    #[arg(long)]
    wipe_acceptor: Option<f64>,
    /// Pin the per-tick rate at which the operator starts a membership change (0 for none).
    #[arg(long)]
    member_rate: Option<f64>,
    /// Set every node's `[log] retain_slots` (retention checked every min(N, 1024) slots)
    #[arg(long)]
    retain_slots: Option<u64>,
    /// Pin how far apart the nodes' wall clocks are, in ms (0: one clock; member
    /// deadlines hold up to paxos_proto::MAX_CLOCK_SKEW_MS)
    #[arg(long)]
    clock_spread_ms: Option<u64>,
    /// Now and then, a proposer's clock jumps this many ms ahead and stays
    /// (NTP gone wrong, a VM restored); never drawn from a seed
    #[arg(long)]
    clock_jump_ms: Option<u64>,
    /// During the faults, one proposer is lost for good (its machine gone: it
    /// never restarts); the others must carry on. Never drawn from a seed
    #[arg(long)]
    lose_proposer: bool,
    /// During the faults, one acceptor is lost for good (its machine gone,
    /// or it stops at a damaged disk); the others must carry on. Never drawn from a seed
    #[arg(long)]
    lose_acceptor: bool,
    /// Probability that a crash of one acceptor (a bad disk, one per run) also
    /// loses its last 1 to 256 durable batches of writes (a damaged synced
    /// tail or a rolled-back data dir, which it does not know: a known hole). Never drawn from a seed
    #[arg(long)]
    lose_tail: Option<f64>,
    /// Probability that a crash (of one node per run) damages the decided log
    /// it held so far, as a damaged old segment does: reads through it fail,
    /// and the node must go on without answering them. Never drawn from a seed
    #[arg(long)]
    damage_log: Option<f64>,
    /// Probability that a read of a decided log fails during the faults, though
    /// nothing is damaged (an I/O error that passes): a later pass must clear
    /// the node's damage mark. Never drawn from a seed
    #[arg(long)]
    flaky_reads: Option<f64>,
    /// A run goes on after two learners applied different values (still a
    /// violation), so that the proposers may find it by their logs'
    /// digests (stat digest_alarms). Never drawn from a seed
    #[arg(long)]
    keep_going: bool,
    /// Pin how many operators change the membership: 1, or 2 (the second undoes the first's additions under way)
    #[arg(long)]
    operators: Option<usize>,
    /// Pin the per-tick rate at which the operator, when idle, asks for a leadership transfer (0 for none)
    #[arg(long)]
    transfer_rate: Option<f64>,
}

fn parse_defect(s: &str) -> Result<Defect, String> {
    Defect::parse(s).ok_or_else(|| {
        let names: Vec<_> = Defect::ALL.iter().map(|d| d.name()).collect();
        format!("unknown defect {s:?}; one of {}", names.join(", "))
    })
}

/// An adversary pinned on the command line, `none` included.
#[derive(Clone, Copy, Debug)]
struct Pinned(Option<Adversary>);

fn parse_adversary(s: &str) -> Result<Pinned, String> {
    match s {
        "none" => Ok(Pinned(None)),
        _ => Adversary::parse(s)
            .map(|a| Pinned(Some(a)))
            .ok_or_else(|| format!("unknown adversary {s:?}; one of forger, insider, none")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let overrides = if args.seed_scenario {
        Overrides::seed_scenario()
    } else {
        Overrides {
            defect: args.defect,
            adversary: args.adversary.map(|p| p.0),
            acceptors: args.acceptors,
            proposers: args.proposers,
            clients: args.clients,
            values_per_client: args.values_per_client,
            failed_acceptors: args.failed_acceptors.iter().map(|a| a.saturating_sub(1)).collect(),
            no_faults: args.no_faults,
            wipe_acceptor: args.wipe_acceptor,
            member_rate: args.member_rate,
            retain_slots: args.retain_slots,
            clock_spread_ms: args.clock_spread_ms,
            clock_jump_ms: args.clock_jump_ms,
            lose_proposer: args.lose_proposer,
            lose_acceptor: args.lose_acceptor,
            lose_tail: args.lose_tail,
            damage_log: args.damage_log,
            flaky_reads: args.flaky_reads,
            keep_going: args.keep_going,
            operators: args.operators,
            transfer_rate: args.transfer_rate,
            fault_ticks: args.no_faults.then_some(1),
            ..Overrides::default()
        }
    };
    if let Some(seed) = args.seed {
        if args.verbose {
            tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).without_time().with_target(false).init();
        }
        let params = Params::draw(seed, &overrides);
        println!("{params}");
        let outcome = run_params(params, args.verbose);
        println!(
            "ticks={} decided={} trace={:016x} stats={:?}",
            outcome.ticks, outcome.decided, outcome.trace, outcome.stats
        );
        for v in &outcome.violations {
            println!("VIOLATION {v}");
        }
        return if outcome.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let count = args.sweep.unwrap_or(1000);
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicU64::new(args.from);
    let end = args.from + count;
    let failed = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || failed.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = run(seed, &overrides);
                if !outcome.ok() {
                    failed.store(true, Ordering::Relaxed);
                    println!("FAILED {}", outcome.params);
                    for v in &outcome.violations {
                        println!("VIOLATION {v}");
                    }
                    println!("replay: cargo run --release -p paxos-sim -- --seed {seed}{}", replay_flags(&args));
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(10_000) {
                    eprintln!("{n} seeds, {:.0} seeds/s", n as f64 / start.elapsed().as_secs_f64());
                }
            });
        }
    });
    let n = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!("{n} seeds from {} in {secs:.1} s on {threads} threads: {:.0} seeds/s", args.from, n as f64 / secs);
    if failed.load(Ordering::Relaxed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn replay_flags(args: &Args) -> String {
    let mut s = String::new();
    if let Some(d) = args.defect {
        s += &format!(" --defect {}", d.name());
    }
    if let Some(a) = args.acceptors {
        s += &format!(" --acceptors {a}");
    }
    if let Some(p) = args.proposers {
        s += &format!(" --proposers {p}");
    }
    if let Some(Pinned(a)) = args.adversary {
        s += &format!(" --adversary {}", a.map_or("none", |a| a.name()));
    }
    if args.seed_scenario {
        s += " --seed-scenario";
    }
    if let Some(w) = args.wipe_acceptor {
        s += &format!(" --wipe-acceptor {w}");
    }
    if let Some(m) = args.member_rate {
        s += &format!(" --member-rate {m}");
    }
    if let Some(r) = args.retain_slots {
        s += &format!(" --retain-slots {r}");
    }
    if let Some(c) = args.clock_spread_ms {
        s += &format!(" --clock-spread-ms {c}");
    }
    if let Some(j) = args.clock_jump_ms {
        s += &format!(" --clock-jump-ms {j}");
    }
    if args.lose_proposer {
        s += " --lose-proposer";
    }
    if args.lose_acceptor {
        s += " --lose-acceptor";
    }
    if let Some(t) = args.lose_tail {
        s += &format!(" --lose-tail {t}");
    }
    if let Some(d) = args.damage_log {
        s += &format!(" --damage-log {d}");
    }
    if let Some(f) = args.flaky_reads {
        s += &format!(" --flaky-reads {f}");
    }
    if args.keep_going {
        s += " --keep-going";
    }
    if let Some(o) = args.operators {
        s += &format!(" --operators {o}");
    }
    if let Some(t) = args.transfer_rate {
        s += &format!(" --transfer-rate {t}");
    }
    for (flag, v) in [(" --clients", args.clients), (" --values-per-client", args.values_per_client)] {
        if let Some(v) = v {
            s += &format!("{flag} {v}");
        }
    }
    if args.no_faults {
        s += " --no-faults";
    }
    if !args.failed_acceptors.is_empty() {
        let ids: Vec<String> = args.failed_acceptors.iter().map(|a| a.to_string()).collect();
        s += &format!(" --failed-acceptors {}", ids.join(","));
    }
    s
}
