//! README.md and latency-throughput.svg from the runs: per row, the median
//! and the spread of the repetitions, ours against the peer (etcd, or ours
//! without auth).

use std::collections::BTreeMap;

use crate::results::{Run, System};
use crate::stats::{mib, ms, ratio, thousands, Spread};
use crate::svg::{Axis, Chart, Marker, Point, Series};

/// What the report says before its table.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// When the run started (UTC).
    pub started: String,
    /// The command line, as typed.
    pub command: String,
    /// The commit measured, read before anything was written.
    pub commit: String,
    /// Where the binaries came from, when not from this checkout's build.
    pub binaries: Option<String>,
    /// [`crate::host::machine`].
    pub machine: String,
    /// Load averages when the run started.
    pub load_before: String,
    /// Load averages when it ended.
    pub load_after: String,
    /// The workload, one bullet's text per item.
    pub workload: Vec<String>,
    /// The floor at c=1 ([`crate::floor::Floor::describe`]).
    pub floor: Option<String>,
}

impl Header {
    /// `# Benchmark: <date>` and its bullets.
    pub fn markdown(&self, title: &str) -> String {
        let mut s = format!("# {title}: {}\n\n", self.started);
        s += &format!("- command: `{}`\n", self.command);
        if let Some(b) = &self.binaries {
            s += &format!("- binaries: {b}\n");
        }
        s += &format!("- commit: {}\n", self.commit);
        s += &format!("- machine: {}\n", self.machine);
        s += &format!("- load before: {}\n", self.load_before);
        s += &format!("- load after: {}\n", self.load_after);
        for w in &self.workload {
            s += &format!("- {w}\n");
        }
        if let Some(f) = &self.floor {
            s += &format!("- floor at concurrency 1 on this machine: {f}\n");
        }
        s
    }
}

/// One row of the table: a concurrency by time, or the seed scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowKey {
    /// Proposals in flight.
    pub concurrency: u32,
    /// All values at once, by count.
    pub seed: bool,
}

impl RowKey {
    /// The row's name in the table.
    pub fn label(&self) -> String {
        if self.seed {
            format!("seed: {} at once", self.concurrency)
        } else {
            format!("c={}", self.concurrency)
        }
    }
}

/// The rows in the order they first ran, each with its runs.
pub fn rows(runs: &[Run]) -> Vec<(RowKey, Vec<&Run>)> {
    let mut rows: Vec<(RowKey, Vec<&Run>)> = Vec::new();
    for r in runs {
        let key = RowKey { concurrency: r.concurrency, seed: r.seed };
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => rows.push((key, vec![r])),
        }
    }
    rows
}

/// The medians and spreads of one system's runs of one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Values per second.
    pub values_per_s: Spread,
    /// Seconds the throughput is over (for the seed: all values).
    pub elapsed_s: Spread,
    /// Latency p50, ms.
    pub p50_ms: Spread,
    /// Latency p99, ms.
    pub p99_ms: Spread,
    /// Latency max, ms.
    pub max_ms: Spread,
    /// The highest peak RSS of its daemons, MiB.
    pub rss_mib: Spread,
    /// Errors, summed over the runs.
    pub errors: u64,
}

impl Summary {
    /// The summary of `runs` of `system`, or `None` when there is none.
    pub fn of(runs: &[&Run], system: System) -> Option<Summary> {
        let mine: Vec<&Run> = runs.iter().copied().filter(|r| r.system == system).collect();
        let spread = |f: &dyn Fn(&Run) -> f64| Spread::of(&mine.iter().map(|r| f(r)).collect::<Vec<_>>());
        Some(Summary {
            values_per_s: spread(&|r| r.figures.values_per_s)?,
            elapsed_s: spread(&|r| r.figures.elapsed_s)?,
            p50_ms: spread(&|r| r.figures.p50_ms)?,
            p99_ms: spread(&|r| r.figures.p99_ms)?,
            max_ms: spread(&|r| r.figures.max_ms)?,
            rss_mib: spread(&|r| r.max_rss_mib())?,
            errors: mine.iter().map(|r| r.figures.errors).sum(),
        })
    }
}

/// The table: per row, each system's medians (min–max), then for each peer
/// that ran a row of ratios ours/peer (`ours/etcd`, `auth on/off`).
pub fn table(runs: &[Run]) -> String {
    let mut s = String::from("| row | system | values/s | p50 ms | p99 ms | max ms | peak RSS MiB | errors |\n");
    s += "|---|---|---:|---:|---:|---:|---:|---:|\n";
    let mib1 = |x: f64| format!("{x:.1}");
    for (key, runs) in rows(runs) {
        let label = key.label();
        let summaries: Vec<(System, Summary)> =
            System::ALL.iter().filter_map(|&system| Some((system, Summary::of(&runs, system)?))).collect();
        for (system, m) in &summaries {
            let throughput = if key.seed {
                // elapsed_s has millisecond steps: whole milliseconds, unless under one.
                let whole = |x: f64| if x >= 0.001 { format!("{:.0}", x * 1000.0) } else { ms(x * 1000.0) };
                format!("all in {} ms", m.elapsed_s.show(whole))
            } else {
                m.values_per_s.show(thousands)
            };
            s += &format!(
                "| {label} | {} | {throughput} | {} | {} | {} | {} | {} |\n",
                system.name(),
                m.p50_ms.show(ms),
                m.p99_ms.show(ms),
                m.max_ms.show(ms),
                m.rss_mib.show(mib1),
                m.errors
            );
        }
        let Some((_, a)) = summaries.iter().find(|(system, _)| *system == System::Ours) else { continue };
        for (system, b) in &summaries {
            let Some(name) = system.ratio_label() else { continue };
            s += &format!(
                "| {label} | {name} | **{}** | {} | {} | {} | {} | |\n",
                ratio(a.values_per_s.median, b.values_per_s.median),
                ratio(a.p50_ms.median, b.p50_ms.median),
                ratio(a.p99_ms.median, b.p99_ms.median),
                ratio(a.max_ms.median, b.max_ms.median),
                ratio(a.rss_mib.median, b.rss_mib.median)
            );
        }
    }
    s
}

/// Per row and system, the peak RSS of each daemon (the highest over the
/// repetitions), one bullet each: `- paxos c=1: a3=4.9 a4=4.7 p1=5.1`.
pub fn rss_lines(runs: &[Run]) -> String {
    let mut s = String::new();
    for (key, runs) in rows(runs) {
        for system in System::ALL {
            let mut peak: BTreeMap<&str, u64> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.system == system) {
                for (name, kib) in &r.peak_rss_kib {
                    let e = peak.entry(name).or_default();
                    *e = (*e).max(*kib);
                }
            }
            if !peak.is_empty() {
                let cells: Vec<String> = peak.iter().map(|(n, kib)| format!("{n}={:.1}", mib(*kib))).collect();
                s += &format!("- {} {}: {}\n", system.name(), key.label(), cells.join(" "));
            }
        }
    }
    s
}

/// The plot: p50 and p99 against throughput, log-log, per system, each point
/// labelled with its concurrency (the seed scenario, not steady load, is left out).
pub fn chart(runs: &[Run], title: Vec<String>) -> Chart {
    let mut series = Vec::new();
    let styles =
        [(System::Ours, "ours", "#1b7837"), (System::Etcd, "etcd", "#b2182b"), (System::NoAuth, "auth off", "#2166ac")];
    for (system, name, color) in styles {
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for (key, runs) in rows(runs).iter().filter(|(k, _)| !k.seed) {
            let Some(m) = Summary::of(runs, system) else { continue };
            let x = m.values_per_s.median;
            p50.push(Point { x, y: m.p50_ms.median, label: Some(key.label()) });
            p99.push(Point { x, y: m.p99_ms.median, label: None });
        }
        if p50.is_empty() {
            continue;
        }
        series.push(Series {
            name: format!("{name} p50"),
            color: color.into(),
            dashed: false,
            marker: Marker::Circle,
            points: p50,
        });
        series.push(Series {
            name: format!("{name} p99"),
            color: color.into(),
            dashed: true,
            marker: Marker::Square,
            points: p99,
        });
    }
    Chart {
        title,
        x_label: "throughput (values/s, median)".into(),
        y_label: "latency (ms, median)".into(),
        x_axis: Axis::Log,
        y_axis: Axis::Log,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Figures;

    fn run(system: System, concurrency: u32, seed: bool, repeat: u32, vps: f64, p50: f64) -> Run {
        Run {
            system,
            concurrency,
            seed,
            repeat,
            figures: Figures {
                values: 1000,
                elapsed_s: if seed { 0.01 } else { 5.0 },
                values_per_s: vps,
                p50_ms: p50,
                p99_ms: p50 * 2.0,
                max_ms: p50 * 4.0,
                errors: 0,
                measured: Some(1000),
            },
            peak_rss_kib: vec![("a3".into(), 5120 + u64::from(repeat)), ("p1".into(), 6144)],
        }
    }

    fn runs() -> Vec<Run> {
        vec![
            run(System::Ours, 1, false, 1, 2500.0, 0.33),
            run(System::Etcd, 1, false, 1, 1000.0, 0.8),
            run(System::Ours, 1, false, 2, 2600.0, 0.32),
            run(System::Etcd, 1, false, 2, 1100.0, 0.7),
            run(System::Ours, 1, false, 3, 2400.0, 0.34),
            run(System::Etcd, 1, false, 3, 1200.0, 0.9),
            run(System::Ours, 1000, true, 1, 100_000.0, 10.0),
        ]
    }

    #[test]
    fn rows_keep_the_order_they_ran_in() {
        let runs = runs();
        let rows = rows(&runs);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.label(), "c=1");
        assert_eq!(rows[0].1.len(), 6);
        assert_eq!(rows[1].0.label(), "seed: 1000 at once");
    }

    #[test]
    fn the_table_shows_medians_spreads_and_ratios_of_medians() {
        let table = table(&runs());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[2], "| c=1 | paxos | 2,500 (2,400–2,600) | 0.330 (0.320–0.340) | 0.660 (0.640–0.680) | 1.32 (1.28–1.36) | 6.0 | 0 |");
        assert_eq!(lines[3], "| c=1 | etcd | 1,100 (1,000–1,200) | 0.800 (0.700–0.900) | 1.60 (1.40–1.80) | 3.20 (2.80–3.60) | 6.0 | 0 |");
        assert_eq!(lines[4], "| c=1 | ours/etcd | **2.27x** | 0.41x | 0.41x | 0.41x | 1.00x | |");
        assert_eq!(lines[5], "| seed: 1000 at once | paxos | all in 10 ms | 10.0 | 20.0 | 40.0 | 6.0 | 0 |");
        assert_eq!(lines.len(), 6, "no etcd seed run, no ratio row for it");
    }

    #[test]
    fn without_auth_the_ratio_row_is_auth_on_over_off() {
        let runs = vec![
            run(System::Ours, 64, false, 1, 9500.0, 6.0),
            run(System::NoAuth, 64, false, 1, 10_000.0, 5.0),
            run(System::Ours, 64, false, 2, 9700.0, 6.2),
            run(System::NoAuth, 64, false, 2, 10_000.0, 5.0),
        ];
        let table = table(&runs);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| c=64 | paxos | 9,600 (9,500–9,700) | 6.10 (6.00–6.20) | 12.2 (12.0–12.4) | 24.4 (24.0–24.8) | 6.0 | 0 |"
        );
        assert_eq!(lines[3], "| c=64 | paxos (auth off) | 10,000 | 5.00 | 10.0 | 20.0 | 6.0 | 0 |");
        assert_eq!(lines[4], "| c=64 | auth on/off | **0.96x** | 1.22x | 1.22x | 1.22x | 1.00x | |");
        assert_eq!(lines.len(), 5);
        let names: Vec<String> = chart(&runs, vec![]).series.into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["ours p50", "ours p99", "auth off p50", "auth off p99"]);
        assert!(rss_lines(&runs).contains("- paxos (auth off) c=64: a3=5.0 p1=6.0\n"));
    }

    #[test]
    fn each_daemon_shows_its_highest_peak_over_the_repetitions() {
        let lines = rss_lines(&runs());
        assert_eq!(lines.lines().next(), Some("- paxos c=1: a3=5.0 p1=6.0"));
        assert!(lines.contains("- etcd c=1: a3=5.0 p1=6.0\n"));
    }

    #[test]
    fn the_chart_has_p50_and_p99_per_system_without_the_seed() {
        let chart = chart(&runs(), vec!["t".into()]);
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ours p50", "ours p99", "etcd p50", "etcd p99"]);
        assert_eq!(chart.series[0].points, vec![Point { x: 2500.0, y: 0.33, label: Some("c=1".into()) }]);
    }
}
