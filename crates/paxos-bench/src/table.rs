//! The table: every row, repeated, ours and the peer (etcd, or ours without
//! auth) interleaved, each run on a fresh cluster; then results.csv,
//! README.md and latency-throughput.svg.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cli::{Peer, Settings, TablePlan};
use crate::etcd::Etcd;
use crate::floor;
use crate::host::{self, WorkDir};
use crate::ours::{self, Auth, Cluster, Load};
use crate::procs;
use crate::report::{self, Header};
use crate::results::{self, Run, System};

/// Runs the table and writes its files.
///
/// # Errors
/// When something does not run (a cluster that does not come up, a load
/// generator that prints nothing); never because of a timing.
pub fn run(s: &Settings, plan: &TablePlan) -> Result<()> {
    // The code measured: read before this run writes its results (docs/bench is tracked).
    let commit = host::commit(&s.tools.repo);
    let started = host::utc_now();
    let load_before = host::load();
    s.tools.check()?;
    let peer = plan.vs.map(|vs| prepare_peer(s, vs)).transpose()?;

    let work = WorkDir::new(s.keep)?;
    let fs = host::fs_type(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default(), work.path())
        .unwrap_or_else(|| "unknown".to_owned());
    let floor = floor::measure(work.path())?;
    let floor_text = floor.describe(&fs);
    eprintln!("paxos-bench: floor at concurrency 1: {floor_text}");

    let mut runs = Vec::new();
    let mut n = 0u32;
    let mut one = |system: System, load: Load, seed: bool, repeat: u32, runs: &mut Vec<Run>| -> Result<()> {
        n += 1;
        let run = match system {
            System::Ours | System::NoAuth => {
                run_ours(s, &work.path().join(format!("paxos-{n}")), system, load, seed, repeat)?
            }
            System::Etcd => run_etcd(s, &work.path().join(format!("etcd-{n}")), load, seed, repeat)?,
        };
        eprintln!("paxos-bench: {}", run.summary());
        runs.push(run);
        Ok(())
    };
    let systems: Vec<System> = std::iter::once(System::Ours).chain(plan.vs.map(Peer::system)).collect();
    for &concurrency in &plan.concurrency {
        let load = Load::Time { concurrency, duration: plan.duration, warmup: plan.warmup };
        for repeat in 1..=plan.repeat {
            for &system in &systems {
                one(system, load, false, repeat, &mut runs)?;
            }
        }
    }
    let seed =
        Load::Count { concurrency: u32::try_from(plan.seed_values).unwrap_or(u32::MAX), values: plan.seed_values };
    for repeat in 1..=plan.repeat {
        for &system in &systems {
            one(system, seed, true, repeat, &mut runs)?;
        }
    }

    let header = Header {
        started: started.clone(),
        command: s.command.clone(),
        commit,
        binaries: s.binaries_note.clone(),
        machine: host::machine(work.path()),
        load_before,
        load_after: host::load(),
        workload: workload(s.size, plan, peer.as_deref()),
        floor: Some(floor_text),
    };
    write(s, plan, &header, &runs)
}

/// The workload bullets of the report; `peer` is the peer's bullet
/// ([`prepare_peer`]).
fn workload(size: usize, plan: &TablePlan, peer: Option<&str>) -> Vec<String> {
    let interleaved = match plan.vs {
        Some(Peer::Etcd) => ", ours and etcd interleaved",
        Some(Peer::NoAuth) => ", auth on and off interleaved",
        None => "",
    };
    let mut w = vec![format!(
        "workload: {}-byte values, fsync on, 2 proposers + 5 acceptors with acceptors 1 and 2 killed (SIGKILL); \
         a fresh cluster per run; each row {} s of steady load after {} s of warm-up (values decided during the \
         warm-up not counted), {} run{} per row and system{}; the seed row: {} values at once, the time for all; \
         latency from the client's first send to the decision.",
        size,
        plan.duration,
        plan.warmup,
        plan.repeat,
        if plan.repeat == 1 { "" } else { "s" },
        interleaved,
        plan.seed_values
    )];
    w.extend(peer.map(str::to_owned));
    w
}

/// The report's bullet on our cluster without auth, the peer of --vs no-auth.
const NO_AUTH_PEER: &str = "peer: paxos (auth off), the same binaries, cluster and load, started with \
    `scripts/cluster.sh up --no-auth`: no [auth] in its cluster file, so no datagram is signed or checked; \
    paxos runs with cluster.sh's default [auth], a fresh peer key with which the members sign every datagram to \
    each other (HMAC-SHA256); the client's datagrams are unsigned in both (no client key).";

/// Gets the peer ready to run and returns the report's bullet on it.
///
/// # Errors
/// When etcd or tools/etcd-bench cannot be had ([`prepare_etcd`]).
fn prepare_peer(s: &Settings, vs: Peer) -> Result<String> {
    match vs {
        Peer::Etcd => {
            let version = prepare_etcd(s)?;
            Ok(format!(
                "peer: {version}, 5 members on loopback with 2 followers killed (SIGKILL), default fsync; \
                 tools/etcd-bench PUTs unique keys to the leader over min(C,16) gRPC connections."
            ))
        }
        Peer::NoAuth => Ok(NO_AUTH_PEER.to_owned()),
    }
}

/// Writes results.csv, README.md and latency-throughput.svg into the output dir.
fn write(s: &Settings, plan: &TablePlan, header: &Header, runs: &[Run]) -> Result<()> {
    let out = &s.out;
    let csv = out.join("results.csv");
    std::fs::write(&csv, results::csv(runs)).with_context(|| format!("cannot write {}", csv.display()))?;

    let concurrency: Vec<String> = plan.concurrency.iter().map(u32::to_string).collect();
    let title = vec![
        format!(
            "Latency vs throughput: {}-byte values, fsync on, 5 replicas with 2 killed, concurrency {}",
            s.size,
            concurrency.join(", ")
        ),
        format!("{}; {}", header.started, header.machine),
    ];
    let svg = out.join("latency-throughput.svg");
    std::fs::write(&svg, report::chart(runs, title).svg())
        .with_context(|| format!("cannot write {}", svg.display()))?;

    let mut md = header.markdown("Benchmark");
    md += &if plan.repeat == 1 {
        "\nEach cell: one run.\n\n".to_owned()
    } else {
        format!(
            "\nEach cell: the median of {} runs (min–max when they differ); ratios are of medians.\n\n",
            plan.repeat
        )
    };
    md += &report::table(runs);
    md += &format!(
        "\nPeak RSS (VmHWM, MiB) of each live daemon, read right before the teardown{}:\n\n",
        if plan.repeat == 1 { String::new() } else { format!(" (the highest of {} runs)", plan.repeat) }
    );
    md += &report::rss_lines(runs);
    md += "\n![latency vs throughput](latency-throughput.svg)\n";
    if out.join("PROFILE.md").is_file() {
        md += "\nWhat bounds these figures, with the profiles: [PROFILE.md](PROFILE.md).\n";
    }
    let readme = out.join("README.md");
    std::fs::write(&readme, &md).with_context(|| format!("cannot write {}", readme.display()))?;
    println!("\n{md}");
    println!("wrote {}, {}, {}", csv.display(), readme.display(), svg.display());
    Ok(())
}

/// One run of ours on a fresh cluster: with auth, or without for
/// [`System::NoAuth`].
fn run_ours(s: &Settings, dir: &Path, system: System, load: Load, seed: bool, repeat: u32) -> Result<Run> {
    let auth = if system == System::NoAuth { Auth::Off } else { Auth::On };
    let mut cluster = Cluster::up(&s.tools, dir, 2, 5, auth)?;
    cluster.act("kill", "acceptor", 1)?;
    cluster.act("kill", "acceptor", 2)?;
    let figures =
        ours::figures(s.tools.paxosctl(&cluster.config()).arg("bench").args(load.args(s.size)), "paxosctl bench")?;
    let peak_rss_kib = cluster.peak_rss();
    cluster.down()?;
    if !s.keep {
        let _ = std::fs::remove_dir_all(dir.join("data"));
    }
    Ok(Run { system, concurrency: concurrency(load), seed, repeat, figures, peak_rss_kib })
}

/// One run of etcd on a fresh cluster.
fn run_etcd(s: &Settings, dir: &Path, load: Load, seed: bool, repeat: u32) -> Result<Run> {
    let mut etcd = Etcd::up(dir, 5)?;
    etcd.kill_followers(2)?;
    let figures = ours::figures(
        Command::new(&s.tools.etcd_bench).arg("--endpoints").arg(etcd.endpoints()).args(load.args(s.size)),
        "etcd-bench",
    )?;
    let peak_rss_kib = etcd.peak_rss();
    drop(etcd);
    Ok(Run { system: System::Etcd, concurrency: concurrency(load), seed, repeat, figures, peak_rss_kib })
}

fn concurrency(load: Load) -> u32 {
    match load {
        Load::Time { concurrency, .. } | Load::Count { concurrency, .. } => concurrency,
    }
}

/// Makes sure etcd, etcdctl and tools/etcd-bench are there (installing and
/// building what is missing), and returns etcd's version.
fn prepare_etcd(s: &Settings) -> Result<String> {
    procs::need("etcd", "etcd-server")?;
    procs::need("etcdctl", "etcd-client")?;
    if s.build {
        procs::need("protoc", "protobuf-compiler")?;
        // Into the target dir the other binaries came from, next to them.
        let target = s.tools.bin_dir.parent().context("the bin dir has no parent")?;
        eprintln!("paxos-bench: building tools/etcd-bench");
        procs::run_ok(
            Command::new("cargo")
                .args(["build", "--release", "--locked", "-q", "--manifest-path"])
                .arg(s.tools.repo.join("tools/etcd-bench/Cargo.toml"))
                .arg("--target-dir")
                .arg(target),
            "cargo build (tools/etcd-bench)",
        )?;
    }
    if !s.tools.etcd_bench.is_file() {
        bail!(
            "{} is missing (cargo build --release --manifest-path tools/etcd-bench/Cargo.toml, \
             or run without --no-build)",
            s.tools.etcd_bench.display()
        );
    }
    Ok(Etcd::version())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(vs: Option<Peer>) -> TablePlan {
        TablePlan { concurrency: vec![64], duration: 2.0, warmup: 0.5, repeat: 1, seed_values: 200, vs }
    }

    #[test]
    fn the_workload_names_the_peer_it_interleaves() {
        let alone = workload(64, &plan(None), None);
        assert_eq!(alone.len(), 1);
        assert!(alone[0].contains("1 run per row and system; the seed row: 200 values"));
        let etcd = workload(64, &plan(Some(Peer::Etcd)), Some("peer: etcd 3.4"));
        assert!(etcd[0].contains("1 run per row and system, ours and etcd interleaved; the seed row"));
        assert_eq!(etcd[1], "peer: etcd 3.4");
        let no_auth = workload(64, &plan(Some(Peer::NoAuth)), Some(NO_AUTH_PEER));
        assert!(no_auth[0].contains("per row and system, auth on and off interleaved; the seed row"));
        assert!(no_auth[1].starts_with("peer: paxos (auth off), the same binaries"));
        assert!(no_auth[1].contains("--no-auth"));
    }
}
