//! The soak run: one durable cluster through millions of values, its memory
//! sampled every second against the length of its log, then a restart of the
//! leader timed until it serves again.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cli::Settings;
use crate::host::{self, WorkDir};
use crate::ours::{short_name, Auth, Cluster, Tools};
use crate::procs;
use crate::report::Header;
use crate::results::Figures;
use crate::stats::thousands;
use crate::svg::{Axis, Chart, Marker, Point, Series};

/// Proposals in flight during the soak.
const CONCURRENCY: u32 = 256;
/// How long the restarted leader has to serve again.
const RESTART_LIMIT: Duration = Duration::from_secs(60);
/// How often a status probe starts while waiting for the restarted node.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// One line of `paxosctl status --json` (the fields read here).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct NodeLine {
    /// `proposer-1`.
    pub node: String,
    /// `leader`, `follower`, `acceptor`...
    pub role: String,
    /// `up`, `failed`, `unreachable`.
    pub state: String,
    /// Its first undecided instance.
    pub decided: Option<u64>,
}

/// The lines of `paxosctl status --json` that parse.
pub fn status_lines(stdout: &str) -> Vec<NodeLine> {
    stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The leader that is up, and its decided index.
pub fn leader(lines: &[NodeLine]) -> Option<(String, u64)> {
    lines.iter().find(|n| n.role == "leader" && n.state == "up").map(|n| (n.node.clone(), n.decided.unwrap_or(0)))
}

/// Whether `node` is up with a decided index of at least `decided`.
pub fn caught_up(lines: &[NodeLine], node: &str, decided: u64) -> bool {
    lines.iter().any(|n| n.node == node && n.state == "up" && n.decided.is_some_and(|d| d >= decided))
}

/// One sample: seconds since the load started, the leader's decided index
/// (`None` when no leader answered), each daemon's RssAnon in KiB.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the load started.
    pub time_s: f64,
    /// The leader's decided index.
    pub decided: Option<u64>,
    /// RssAnon in KiB per daemon, in the order of the CSV's columns.
    pub rss_anon_kib: Vec<Option<u64>>,
}

/// The header of soak.csv for these daemons.
pub fn csv_header(daemons: &[String]) -> String {
    let mut h = String::from("time_s,decided");
    for d in daemons {
        h += &format!(",{}_rss_anon_kib", short_name(d));
    }
    h
}

/// One line of soak.csv (an unknown figure is an empty cell).
pub fn csv_line(s: &Sample) -> String {
    let cell = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    let mut line = format!("{:.1},{}", s.time_s, cell(s.decided));
    for v in &s.rss_anon_kib {
        line += &format!(",{}", cell(*v));
    }
    line
}

/// What one daemon's memory did: its highest RssAnon, and its RssAnon at
/// the first sample at or past `from` values and at the last sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// The highest sample, KiB.
    pub max_kib: u64,
    /// At the first sample whose decided index reached `from`, KiB.
    pub at_from_kib: Option<u64>,
    /// At the last sample, KiB.
    pub at_end_kib: Option<u64>,
}

/// The [`Growth`] of column `i` over `samples`.
pub fn growth(samples: &[Sample], i: usize, from: u64) -> Growth {
    let value = |s: &Sample| s.rss_anon_kib.get(i).copied().flatten();
    Growth {
        max_kib: samples.iter().filter_map(value).max().unwrap_or(0),
        at_from_kib: samples.iter().find(|s| s.decided.is_some_and(|d| d >= from)).and_then(value),
        at_end_kib: samples.iter().rev().find_map(value),
    }
}

/// Kills and reaps a child when dropped (our own, by its handle).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// `paxosctl status --json`, started now.
fn start_status(tools: &Tools, config: &Path) -> Result<Reaped> {
    let child = tools
        .paxosctl(config)
        .args(["status", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run paxosctl status")?;
    Ok(Reaped(child))
}

/// Waits for a status probe and returns its lines.
fn finish_status(mut probe: Reaped) -> Result<Vec<NodeLine>> {
    let mut text = String::new();
    if let Some(mut out) = probe.0.stdout.take() {
        out.read_to_string(&mut text).context("paxosctl status's output")?;
    }
    let _ = probe.0.wait();
    procs::check()?;
    Ok(status_lines(&text))
}

/// Runs the soak and writes soak.csv, soak-rss.svg and README.md.
///
/// # Errors
/// When something does not run: the cluster, the load, or a restarted leader
/// that does not serve again within a minute.
pub fn run(s: &Settings, values: u64) -> Result<()> {
    let commit = host::commit(&s.tools.repo);
    let started = host::utc_now();
    let load_before = host::load();
    s.tools.check()?;
    let work = WorkDir::new(s.keep)?;
    let dir = work.path().join("soak");
    let mut cluster = Cluster::up(&s.tools, &dir, 2, 5, Auth::On)?;
    cluster.act("kill", "acceptor", 1)?;
    cluster.act("kill", "acceptor", 2)?;
    let config = cluster.config();
    let names: Vec<String> = cluster.daemons().into_iter().map(|d| d.name).collect();

    let csv_path = s.out.join("soak.csv");
    let mut csv =
        BufWriter::new(File::create(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?);
    writeln!(csv, "{}", csv_header(&names))?;

    eprintln!(
        "paxos-bench: soak: {} values of {} bytes at concurrency {CONCURRENCY}; daemons {}",
        thousands(values as f64),
        s.size,
        names.join(" ")
    );
    // The baseline, at time 0: the idle cluster before any value.
    let idle = take_sample(&s.tools, &cluster, &names, Instant::now())?;
    let idle = Sample { time_s: 0.0, ..idle };
    writeln!(csv, "{}", csv_line(&idle))?;
    let mut samples = vec![idle];
    let mut bench = Reaped(
        s.tools
            .paxosctl(&config)
            .arg("bench")
            .args(["--values", &values.to_string(), "--concurrency", &CONCURRENCY.to_string()])
            .args(["--size", &s.size.to_string(), "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run paxosctl bench")?,
    );
    let (out_reader, err_reader) = (drain(bench.0.stdout.take()), drain(bench.0.stderr.take()));
    let t0 = Instant::now();
    let mut tick = 1u32;
    let status = loop {
        let ended = wait_until(&mut bench.0, t0 + Duration::from_secs(u64::from(tick)))?;
        let sample = take_sample(&s.tools, &cluster, &names, t0)?;
        writeln!(csv, "{}", csv_line(&sample))?;
        csv.flush()?;
        if tick.is_multiple_of(10) {
            let top = sample.rss_anon_kib.iter().flatten().max().copied().unwrap_or(0);
            eprintln!(
                "paxos-bench: soak: {:.0} s, decided {}, highest RssAnon {:.1} MiB",
                sample.time_s,
                sample.decided.map_or("?".to_owned(), |d| thousands(d as f64)),
                top as f64 / 1024.0
            );
        }
        samples.push(sample);
        if let Some(status) = ended {
            break status;
        }
        tick += 1;
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let figures = Figures::parse(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("paxosctl bench printed no figures ({status}): {}", stderr.trim()))?;
    if !status.success() {
        eprintln!("paxos-bench: soak: some values were not decided: {}", stderr.lines().next().unwrap_or(""));
    }
    eprintln!(
        "paxos-bench: soak: {} values in {:.1} s, {} values/s, p50 {} ms, p99 {} ms, {} errors",
        thousands(figures.values as f64),
        figures.elapsed_s,
        thousands(figures.values_per_s),
        figures.p50_ms,
        figures.p99_ms,
        figures.errors
    );

    let restart = restart_leader(&s.tools, &cluster)?;
    eprintln!(
        "paxos-bench: soak: {} restarted: up with its decided index back after {:.0} ms, \
         a propose succeeded after {:.0} ms; RssAnon {:.1} MiB",
        restart.node,
        restart.caught_up.as_secs_f64() * 1000.0,
        restart.proposed.as_secs_f64() * 1000.0,
        restart.rss_anon_kib.unwrap_or(0) as f64 / 1024.0
    );
    let final_decided = finish_status(start_status(&s.tools, &config)?)
        .ok()
        .and_then(|l| leader(&l))
        .map_or(restart.decided_before, |(_, d)| d);
    let disk: Vec<u64> = names.iter().map(|n| host::disk_bytes(&cluster.data_dir(n))).collect();
    cluster.down()?;
    drop(csv);

    let header = Header {
        started: started.clone(),
        command: s.command.clone(),
        commit,
        binaries: s.binaries_note.clone(),
        machine: host::machine(work.path()),
        load_before,
        load_after: host::load(),
        workload: vec![format!(
            "workload: one cluster, 2 proposers + 5 acceptors with acceptors 1 and 2 killed (SIGKILL), fsync on; \
             `paxosctl bench --values {values} --concurrency {CONCURRENCY} --size {}`; every second each live \
             daemon's RssAnon and the leader's decided index (soak.csv); then the leader SIGKILLed and restarted.",
            s.size
        )],
        floor: None,
    };
    let report = SoakReport {
        values,
        names: &names,
        samples: &samples,
        figures: &figures,
        restart: &restart,
        disk: &disk,
        decided: final_decided,
    };
    let svg_path = s.out.join("soak-rss.svg");
    let title = vec![
        format!(
            "RssAnon of each daemon against log length: {} values at concurrency {CONCURRENCY}",
            thousands(values as f64)
        ),
        format!("{started}; {}", header.machine),
    ];
    std::fs::write(&svg_path, rss_chart(&names, &samples, title).svg())
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    let md = header.markdown("Soak") + "\n" + &report.markdown();
    let readme = s.out.join("README.md");
    std::fs::write(&readme, &md).with_context(|| format!("cannot write {}", readme.display()))?;
    println!("\n{md}");
    println!("wrote {}, {}, {}", csv_path.display(), readme.display(), svg_path.display());
    Ok(())
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

/// Waits until `deadline` or until `child` ends, whichever comes first; its
/// exit status when it ended.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>> {
    loop {
        procs::check()?;
        if let Some(status) = child.try_wait().context("waiting for paxosctl bench")? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// RssAnon of every daemon now, and the leader's decided index.
fn take_sample(tools: &Tools, cluster: &Cluster<'_>, names: &[String], t0: Instant) -> Result<Sample> {
    let probe = start_status(tools, &cluster.config())?;
    let time_s = t0.elapsed().as_secs_f64();
    let live = cluster.daemons();
    let rss_anon_kib = names
        .iter()
        .map(|n| live.iter().find(|d| &d.name == n).and_then(|d| host::proc_kib(d.pid, "RssAnon")))
        .collect();
    let decided = leader(&finish_status(probe)?).map(|(_, d)| d);
    Ok(Sample { time_s, decided, rss_anon_kib })
}

/// What the restart of the leader showed.
#[derive(Clone, Debug)]
struct Restart {
    /// `proposer-1`.
    node: String,
    /// Its decided index when it was killed.
    decided_before: u64,
    /// From the restart to the first status probe that showed it up with
    /// that decided index back.
    caught_up: Duration,
    /// From the restart to the first `paxosctl propose` that succeeded.
    proposed: Duration,
    /// Its RssAnon once it served again.
    rss_anon_kib: Option<u64>,
}

/// SIGKILLs the leader proposer, restarts it (`cluster.sh restart`), and
/// times it back: a status showing it up with its decided index back, and a
/// propose through the cluster succeeding, both timed from the restart.
fn restart_leader(tools: &Tools, cluster: &Cluster<'_>) -> Result<Restart> {
    let config = cluster.config();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (node, decided_before) = loop {
        if let Some(l) = leader(&finish_status(start_status(tools, &config)?)?) {
            break l;
        }
        if Instant::now() > deadline {
            bail!("soak: no leader to restart");
        }
        procs::sleep(Duration::from_millis(100))?;
    };
    let id: u32 = node.strip_prefix("proposer-").and_then(|i| i.parse().ok()).context("the leader is no proposer")?;
    cluster.act("kill", "proposer", id)?;
    let since = Instant::now();
    cluster.act("restart", "proposer", id)?;

    let (ptools, pconfig) = (tools.clone(), config.clone());
    let proposer = std::thread::spawn(move || -> Result<Duration> {
        for i in 0.. {
            procs::check()?;
            if since.elapsed() > RESTART_LIMIT {
                bail!("soak: no propose succeeded within {} s of the restart", RESTART_LIMIT.as_secs());
            }
            let ok = ptools
                .paxosctl(&pconfig)
                .args(["propose", "--timeout", "5", &format!("soak-after-restart-{i}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unreachable!("the loop only ends by returning")
    });
    let caught_up = wait_caught_up(tools, &config, &node, decided_before, since)?;
    let proposed = proposer.join().map_err(|_| anyhow::anyhow!("the propose thread panicked"))??;
    let rss_anon_kib = cluster.daemons().iter().find(|d| d.name == node).and_then(|d| host::proc_kib(d.pid, "RssAnon"));
    Ok(Restart { node, decided_before, caught_up, proposed, rss_anon_kib })
}

/// Starts a status probe every [`PROBE_EVERY`] (each may wait a second for
/// the killed acceptors) and returns the time, since `since`, at which the
/// earliest probe that saw `node` up with `decided` back was started.
fn wait_caught_up(tools: &Tools, config: &Path, node: &str, decided: u64, since: Instant) -> Result<Duration> {
    let mut probes: Vec<(Duration, Reaped)> = Vec::new();
    let mut best: Option<Duration> = None;
    let mut next = Instant::now();
    loop {
        procs::check()?;
        if since.elapsed() > RESTART_LIMIT {
            bail!("soak: {node} did not come back with decided index {decided} within {} s", RESTART_LIMIT.as_secs());
        }
        if best.is_none() && Instant::now() >= next && probes.len() < 32 {
            probes.push((since.elapsed(), start_status(tools, config)?));
            next += PROBE_EVERY;
        }
        let mut i = 0;
        while i < probes.len() {
            if matches!(probes[i].1 .0.try_wait(), Ok(Some(_))) {
                let (at, probe) = probes.remove(i);
                if caught_up(&finish_status(probe)?, node, decided) {
                    best = Some(best.map_or(at, |b| b.min(at)));
                }
            } else {
                i += 1;
            }
        }
        if let Some(b) = best {
            // Later probes cannot do better; earlier ones still might.
            probes.retain(|(at, _)| *at < b);
            if probes.is_empty() {
                return Ok(b);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The figures of the README's soak section.
struct SoakReport<'a> {
    values: u64,
    names: &'a [String],
    samples: &'a [Sample],
    figures: &'a Figures,
    restart: &'a Restart,
    disk: &'a [u64],
    decided: u64,
}

impl SoakReport<'_> {
    fn markdown(&self) -> String {
        let f = self.figures;
        let r = self.restart;
        let from = self.values / 10;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mib = |kib: Option<u64>| kib.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        let mut s = format!("## Soak: {} values at concurrency {CONCURRENCY}\n\n", thousands(self.values as f64));
        s += &format!(
            "- throughput: {} values/s ({} values in {:.1} s; p50 {} ms, p99 {} ms, max {} ms; {} errors)\n",
            thousands(f.values_per_s),
            thousands(f.values as f64),
            f.elapsed_s,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.errors
        );
        s += &format!(
            "- restart: the leader ({}) SIGKILLed at decided index {} and restarted; up with its decided index back \
             after {:.0} ms (`paxosctl status --json`), a `paxosctl propose` through the cluster succeeded after \
             {:.0} ms: serving again after {:.0} ms; its RssAnon then {} MiB\n",
            r.node,
            thousands(r.decided_before as f64),
            ms(r.caught_up),
            ms(r.proposed),
            ms(r.caught_up.max(r.proposed)),
            mib(r.rss_anon_kib)
        );
        s += &format!(
            "- memory: RssAnon of each daemon, sampled every second ({} samples, the first before the load); \
             growth from the first sample at decided index {} or more ({} of the run) to the last one\n",
            self.samples.len(),
            thousands(from as f64),
            if self.values >= 10_000_000 && from == 1_000_000 { "1M of 10M" } else { "10 %" }
        );
        s += &format!("- disk: each data dir's `du` over the {} decided instances\n\n", thousands(self.decided as f64));
        s += "| daemon | max RssAnon MiB | at 10 % MiB | at the end MiB | growth MiB | disk bytes per value |\n";
        s += "|---|---:|---:|---:|---:|---:|\n";
        for (i, name) in self.names.iter().enumerate() {
            let g = growth(self.samples, i, from);
            let delta = match (g.at_from_kib, g.at_end_kib) {
                (Some(a), Some(b)) => format!("{:+.1}", (b as f64 - a as f64) / 1024.0),
                _ => "-".to_owned(),
            };
            let per_value = if self.decided > 0 {
                format!("{:.0}", self.disk.get(i).copied().unwrap_or(0) as f64 / self.decided as f64)
            } else {
                "-".to_owned()
            };
            s += &format!(
                "| {name} | {} | {} | {} | {delta} | {per_value} |\n",
                mib(Some(g.max_kib)),
                mib(g.at_from_kib),
                mib(g.at_end_kib)
            );
        }
        s += "\n![RssAnon against log length](soak-rss.svg)\n";
        s
    }
}

/// RssAnon (MiB) of each daemon against the decided index.
fn rss_chart(names: &[String], samples: &[Sample], title: Vec<String>) -> Chart {
    const COLORS: [&str; 8] = ["#1b7837", "#762a83", "#2166ac", "#b2182b", "#e08214", "#35978f", "#8c510a", "#404040"];
    let series = names
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: name.clone(),
            color: COLORS[i % COLORS.len()].into(),
            dashed: name.starts_with("acceptor"),
            marker: Marker::None,
            points: samples
                .iter()
                .filter_map(|s| {
                    let kib = s.rss_anon_kib.get(i).copied().flatten()?;
                    Some(Point { x: s.decided? as f64, y: kib as f64 / 1024.0, label: None })
                })
                .collect(),
        })
        .collect();
    Chart {
        title,
        x_label: "log length (decided index)".into(),
        y_label: "RssAnon (MiB)".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"node":"proposer-1","role":"follower","addr":"127.0.0.1:7001","state":"up","leader":2,"ballot":"3.2","decided":90,"peers_heard":[],"counters":{}}
{"node":"proposer-2","role":"leader","addr":"127.0.0.1:7002","state":"up","leader":2,"ballot":"3.2","decided":100,"peers_heard":[],"counters":{}}
{"node":"acceptor-1","role":"acceptor","addr":"127.0.0.1:7101","state":"unreachable","leader":null,"ballot":null,"decided":null,"peers_heard":null,"counters":null}
paxosctl: something on stdout that is not JSON"#;

    #[test]
    fn the_leader_and_a_caught_up_node_are_read_from_status() {
        let lines = status_lines(STATUS);
        assert_eq!(lines.len(), 3);
        assert_eq!(leader(&lines), Some(("proposer-2".to_owned(), 100)));
        assert!(caught_up(&lines, "proposer-1", 90) && !caught_up(&lines, "proposer-1", 91));
        assert!(!caught_up(&lines, "acceptor-1", 0), "unreachable is not up");
    }

    fn sample(time_s: f64, decided: u64, a: Option<u64>, b: u64) -> Sample {
        Sample { time_s, decided: Some(decided), rss_anon_kib: vec![a, Some(b)] }
    }

    #[test]
    fn the_csv_has_a_column_per_daemon_and_empty_cells_for_the_unknown() {
        assert_eq!(
            csv_header(&["proposer-1".into(), "acceptor-3".into()]),
            "time_s,decided,p1_rss_anon_kib,a3_rss_anon_kib"
        );
        assert_eq!(csv_line(&sample(1.04, 5000, None, 2048)), "1.0,5000,,2048");
        let unknown = Sample { time_s: 2.0, decided: None, rss_anon_kib: vec![Some(1)] };
        assert_eq!(csv_line(&unknown), "2.0,,1");
    }

    #[test]
    fn growth_is_from_the_first_sample_past_the_mark_to_the_last() {
        let samples = [
            sample(1.0, 50, Some(1000), 10),
            sample(2.0, 100, Some(1500), 10),
            sample(3.0, 900, Some(1400), 12),
            sample(4.0, 1000, None, 11),
        ];
        assert_eq!(growth(&samples, 0, 100), Growth { max_kib: 1500, at_from_kib: Some(1500), at_end_kib: Some(1400) });
        assert_eq!(growth(&samples, 1, 100), Growth { max_kib: 12, at_from_kib: Some(10), at_end_kib: Some(11) });
        assert_eq!(growth(&samples, 1, 5000).at_from_kib, None);
    }
}
