//! One run's figures, as the load generators print them, and results.csv.

use serde::Deserialize;

use crate::stats::mib;

/// Which system a run measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// Our cluster, driven by `paxosctl bench`.
    Ours,
    /// etcd, driven by `tools/etcd-bench`.
    Etcd,
    /// Our cluster without `[auth]` (`scripts/cluster.sh up --no-auth`),
    /// driven by `paxosctl bench`: what authentication costs.
    NoAuth,
}

impl System {
    /// Every system, in the order the tables list them.
    pub const ALL: [System; 3] = [System::Ours, System::Etcd, System::NoAuth];

    /// Its name in results.csv and the tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Ours => "paxos",
            System::Etcd => "etcd",
            System::NoAuth => "paxos (auth off)",
        }
    }

    /// The name of the row of ratios ours/this system; `None` for ours.
    pub fn ratio_label(self) -> Option<&'static str> {
        match self {
            System::Ours => None,
            System::Etcd => Some("ours/etcd"),
            System::NoAuth => Some("auth on/off"),
        }
    }
}

/// What `paxosctl bench --json` and `etcd-bench --json` print (the fields
/// this tool reads).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Figures {
    /// Values proposed (decided plus errors).
    pub values: u64,
    /// The time the throughput is over: the window after the warm-up by
    /// time, first send to last answer by count.
    pub elapsed_s: f64,
    /// Values counted per second of `elapsed_s`.
    pub values_per_s: f64,
    /// Median latency of the counted values.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Highest.
    pub max_ms: f64,
    /// Values that failed.
    pub errors: u64,
    /// Values counted in throughput and latency (absent from older builds:
    /// then all decided ones).
    #[serde(default)]
    pub measured: Option<u64>,
}

impl Figures {
    /// Parses the one JSON line a load generator printed.
    ///
    /// # Errors
    /// When it is not such an object.
    pub fn parse(line: &str) -> Result<Figures, serde_json::Error> {
        serde_json::from_str(line.trim())
    }

    /// Values counted in throughput and latency.
    pub fn counted(&self) -> u64 {
        self.measured.unwrap_or(self.values.saturating_sub(self.errors))
    }
}

/// One run: one system, one row, one repetition, on a fresh cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Ours, etcd, or ours without auth.
    pub system: System,
    /// Proposals kept in flight.
    pub concurrency: u32,
    /// The seed scenario (all values at once, by count) rather than a row by time.
    pub seed: bool,
    /// 1 for the first repetition of its row.
    pub repeat: u32,
    /// What the load generator printed.
    pub figures: Figures,
    /// Peak RSS (VmHWM) in KiB of each daemon alive at the end, by name
    /// (`a3`, `p1`, `m4`).
    pub peak_rss_kib: Vec<(String, u64)>,
}

impl Run {
    /// The highest peak RSS of its daemons, in MiB.
    pub fn max_rss_mib(&self) -> f64 {
        mib(self.peak_rss_kib.iter().map(|(_, kib)| *kib).max().unwrap_or(0))
    }

    /// The line a person reads while the benchmark runs.
    pub fn summary(&self) -> String {
        let f = &self.figures;
        let rss: Vec<String> = self.peak_rss_kib.iter().map(|(n, kib)| format!("{n}={:.1}", mib(*kib))).collect();
        format!(
            "{:<6} c={:<5} #{} {:>8} values: {:>10.0} values/s  p50 {:>8.3} ms  p99 {:>8.3} ms  \
             max {:>8.3} ms  {} errors  peak RSS MiB {}",
            self.system.name(),
            self.concurrency,
            self.repeat,
            f.counted(),
            f.values_per_s,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.errors,
            rss.join(" ")
        )
    }
}

/// The header of results.csv.
pub const CSV_HEADER: &str =
    "system,concurrency,repeat,values,values_per_s,p50_ms,p99_ms,max_ms,max_rss_mib,elapsed_s,errors";

/// results.csv: the header and one line per run, in the order they ran.
pub fn csv(runs: &[Run]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in runs {
        let f = &r.figures;
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.system.name(),
            r.concurrency,
            r.repeat,
            f.counted(),
            f.values_per_s,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            r.max_rss_mib(),
            f.elapsed_s,
            f.errors
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: System, concurrency: u32, repeat: u32, vps: f64) -> Run {
        Run {
            system,
            concurrency,
            seed: false,
            repeat,
            figures: Figures {
                values: 5100,
                elapsed_s: 2.0,
                values_per_s: vps,
                p50_ms: 0.339,
                p99_ms: 0.61,
                max_ms: 13.063,
                errors: 0,
                measured: Some(5080),
            },
            peak_rss_kib: vec![("a3".into(), 5017), ("p1".into(), 5222)],
        }
    }

    #[test]
    fn each_peer_has_a_ratio_row_and_ours_has_none() {
        let labels: Vec<Option<&str>> = System::ALL.iter().map(|s| s.ratio_label()).collect();
        assert_eq!(labels, [None, Some("ours/etcd"), Some("auth on/off")]);
        let names: Vec<&str> = System::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["paxos", "etcd", "paxos (auth off)"]);
    }

    #[test]
    fn both_load_generators_json_parses() {
        let paxos = r#"{"values":10,"concurrency":2,"size":64,"proposers":2,"acceptors":5,"elapsed_s":0.5,"values_per_s":20.0,"p50_ms":1.5,"p99_ms":3.25,"max_ms":4.0,"errors":0,"measured":10,"warmup_s":null,"duration_s":null}"#;
        let f = Figures::parse(paxos).expect("parses");
        assert_eq!((f.values, f.counted(), f.p99_ms), (10, 10, 3.25));
        // An older build without `measured`: the decided ones count.
        let old =
            r#"{"values":10,"elapsed_s":0.5,"values_per_s":16.0,"p50_ms":1.5,"p99_ms":3.25,"max_ms":4.0,"errors":2}"#;
        assert_eq!(Figures::parse(old).expect("parses").counted(), 8);
        assert!(Figures::parse("paxosctl: cluster unreachable").is_err());
    }

    #[test]
    fn the_csv_has_one_line_per_run_under_its_header() {
        let runs =
            [run(System::Ours, 1, 1, 2539.758), run(System::Etcd, 1, 1, 1120.7), run(System::NoAuth, 1, 1, 2600.5)];
        let csv = csv(&runs);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "paxos,1,1,5080,2539.758,0.339,0.61,13.063,5.1,2,0");
        assert!(lines[2].starts_with("etcd,1,1,5080,1120.7,"));
        assert!(lines[3].starts_with("paxos (auth off),1,1,5080,2600.5,"));
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.split(',').count() == CSV_HEADER.split(',').count()));
    }
}
