//! The command line, the one place its help is written (scripts/bench.sh
//! --help prints it), and the settings it resolves to.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::ours::Tools;
use crate::results::System;

/// The help's long description.
const ABOUT: &str = "\
The benchmark of the Paxos log: our cluster against etcd, or against itself without
authentication; same run, same machine.

Each run starts a FRESH local cluster (scripts/cluster.sh: 2 proposers, 5 acceptors,
fsync on, [auth]: every datagram between members carries an HMAC-SHA256 tag) in a
temporary work dir, SIGKILLs acceptors 1 and 2, loads it with `paxosctl bench`
(64-byte values) and reads each live daemon's peak RSS (VmHWM) before the teardown.
A row is --duration seconds of steady load after --warmup seconds (values decided
during the warm-up count in neither throughput nor latency), repeated --repeat
times. With --vs, each of our runs is followed by the same run of a peer system, so
that both see the same machine: --vs etcd runs 5 members of Debian's etcd-server on
loopback, 2 followers SIGKILLed, loaded by tools/etcd-bench; --vs no-auth runs our
cluster again, started with `scripts/cluster.sh up --no-auth` (no datagram signed
or checked), so that the ratio auth on/off is what authentication costs. Rows:
concurrency 1 4 16 64 256, then the seed scenario: --seed-values values at once
(concurrency = values, by count: the time for all of them). The same run also
measures the floor of this machine at concurrency 1: two loopback UDP round trips
and one fdatasync of a 300-byte append to a preallocated file, as the logs are
written, on the data dirs' filesystem (an append that grows the file is shown
beside it).

Writes into --out: results.csv (one line per run), README.md (date, command,
commit, machine, load, workload, floor; per row the median and the spread
(min-max) of values/s, p50, p99, max and peak RSS, and the ratios ours/etcd or
auth on/off; each daemon's peak RSS) and latency-throughput.svg (p50 and p99
against throughput, log-log).

--soak instead runs one durable cluster (2 proposers, 5 acceptors, acceptors 1 and
2 SIGKILLed) through `paxosctl bench --values N --concurrency 256`, samples each
live daemon's RssAnon and the leader's decided index every second into soak.csv,
then SIGKILLs the leader proposer, restarts it and measures the time until it
serves again; writes soak.csv, soak-rss.svg and README.md.

A benchmark, not a test: it fails only when something does not run, never on a timing.";

/// The command line of `paxos-bench` (run as `scripts/bench.sh [OPTIONS]`).
#[derive(Debug, Parser)]
#[command(
    name = "paxos-bench",
    bin_name = "scripts/bench.sh",
    version,
    about = "The benchmark of the Paxos log: ours against etcd or without auth, and the soak run.",
    long_about = ABOUT
)]
pub struct Cli {
    /// What CI runs: concurrency 1 and 16, --duration 1 --warmup 0.2 --repeat 1,
    /// no etcd, the seed scenario with 200 values, into run/bench-quick.
    #[arg(long)]
    pub quick: bool,
    /// Also run a peer system, each of its runs right after the same one of ours.
    #[arg(long, value_name = "SYSTEM")]
    pub vs: Option<Peer>,
    /// The soak run instead of the table (see above).
    #[arg(long, conflicts_with_all = ["quick", "vs", "concurrency", "duration", "warmup", "repeat", "seed_values"])]
    pub soak: bool,
    /// With --soak: how many values to propose [default: 10000000].
    #[arg(long, value_name = "N", requires = "soak", value_parser = clap::value_parser!(u64).range(1..))]
    pub values: Option<u64>,
    /// The rows' concurrencies, e.g. "1 4 16" [default: "1 4 16 64 256"; --quick: "1 16"].
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    pub concurrency: Option<Concurrencies>,
    /// Seconds of steady load measured per run, after the warm-up [default: 5; --quick: 1].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<f64>,
    /// Seconds of load before each run's measurement, not counted [default: 1; --quick: 0.2].
    #[arg(long, value_name = "SECS", value_parser = parse_warmup)]
    pub warmup: Option<f64>,
    /// Runs per row and system [default: 3; --quick: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Values of the seed scenario, all proposed at once [default: 1000; --quick: 200].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub seed_values: Option<u64>,
    /// Bytes per value.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,
    /// Where the results go [default: docs/bench; --quick: run/bench-quick; --soak: run/bench-soak].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep the work dir (the clusters' logs and data) and say where it is.
    #[arg(long)]
    pub keep: bool,
    /// Build nothing: scripts/bench.sh skips the release build of the workspace,
    /// and tools/etcd-bench is not built either.
    #[arg(long)]
    pub no_build: bool,
    /// Where paxos-proposer, paxos-acceptor, paxosctl (and etcd-bench) are;
    /// scripts/bench.sh passes cargo's release dir [default: this program's dir].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The checkout, for scripts/cluster.sh and tools/etcd-bench; scripts/bench.sh
    /// passes it [default: the current dir].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// tools/etcd-bench's binary [default: <bin-dir>/etcd-bench, where it is built].
    #[arg(long, value_name = "FILE")]
    pub etcd_bench: Option<PathBuf>,
}

/// The system `--vs` runs beside ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// etcd; installs etcd-server, etcd-client and (to build tools/etcd-bench)
    /// protobuf-compiler with apt-get when they are missing.
    Etcd,
    /// Our cluster without [auth] (`scripts/cluster.sh up --no-auth`).
    NoAuth,
}

impl Peer {
    /// The system its runs are recorded as.
    pub fn system(self) -> System {
        match self {
            Peer::Etcd => System::Etcd,
            Peer::NoAuth => System::NoAuth,
        }
    }
}

/// A list of concurrencies, as `--concurrency "1 4 16"` gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Concurrencies(pub Vec<u32>);

/// Parses `"1 4 16"` or `"1,4,16"`: positive whole numbers.
fn parse_list(text: &str) -> Result<Concurrencies, String> {
    let list: Vec<u32> = text
        .split([' ', ',', '\t'])
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().ok().filter(|c| *c > 0).ok_or(format!("'{w}' is not a positive number")))
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("no concurrency given".to_owned());
    }
    Ok(Concurrencies(list))
}

/// Parses a positive number of seconds, fractions allowed.
fn parse_secs(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds over 0 and at most 86400")),
    }
}

/// As [`parse_secs`], but 0 is allowed.
fn parse_warmup(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        _ => parse_secs(text),
    }
}

/// What the table runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TablePlan {
    /// One row each, in this order.
    pub concurrency: Vec<u32>,
    /// Seconds measured per run.
    pub duration: f64,
    /// Seconds of load before.
    pub warmup: f64,
    /// Runs per row and system.
    pub repeat: u32,
    /// Values of the seed scenario.
    pub seed_values: u64,
    /// The system run beside ours, if any.
    pub vs: Option<Peer>,
}

/// The table or the soak run.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Rows of both systems, repeated.
    Table(TablePlan),
    /// One long run of ours.
    Soak {
        /// Values to propose.
        values: u64,
    },
}

/// The resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// What to run.
    pub mode: Mode,
    /// Bytes per value.
    pub size: usize,
    /// Where the results go (made, absolute).
    pub out: PathBuf,
    /// Keep the work dir.
    pub keep: bool,
    /// Build tools/etcd-bench when needed.
    pub build: bool,
    /// Where the programs are.
    pub tools: Tools,
    /// The command line as the report quotes it.
    pub command: String,
    /// Set when the binaries were named by `$PAXOS_BIN_DIR`.
    pub binaries_note: Option<String>,
}

impl Settings {
    /// Resolves the defaults (those of --quick where it applies) and the paths.
    ///
    /// # Errors
    /// When the output dir cannot be made or the paths cannot be resolved.
    pub fn resolve(cli: Cli, args: &[String]) -> Result<Settings> {
        let quick = cli.quick;
        let pick = |given: Option<f64>, normal: f64, fast: f64| given.unwrap_or(if quick { fast } else { normal });
        let mode = if cli.soak {
            Mode::Soak { values: cli.values.unwrap_or(10_000_000) }
        } else {
            Mode::Table(TablePlan {
                concurrency: cli.concurrency.map(|c| c.0).unwrap_or_else(|| {
                    if quick {
                        vec![1, 16]
                    } else {
                        vec![1, 4, 16, 64, 256]
                    }
                }),
                duration: pick(cli.duration, 5.0, 1.0),
                warmup: pick(cli.warmup, 1.0, 0.2),
                repeat: cli.repeat.unwrap_or(if quick { 1 } else { 3 }),
                seed_values: cli.seed_values.unwrap_or(if quick { 200 } else { 1000 }),
                vs: cli.vs,
            })
        };
        let cwd = std::env::current_dir().context("the current dir")?;
        let repo = absolute(&cwd, cli.repo.as_deref().unwrap_or(Path::new(".")));
        let bin_dir = match cli.bin_dir {
            Some(d) => absolute(&cwd, &d),
            None => std::env::current_exe()
                .context("this program's path")?
                .parent()
                .map(Path::to_path_buf)
                .context("this program's dir")?,
        };
        let etcd_bench = cli.etcd_bench.map_or_else(|| bin_dir.join("etcd-bench"), |p| absolute(&cwd, &p));
        let out = match (&cli.out, &mode) {
            (Some(o), _) => absolute(&cwd, o),
            (None, Mode::Soak { .. }) => repo.join("run/bench-soak"),
            (None, _) if quick => repo.join("run/bench-quick"),
            (None, _) => repo.join("docs/bench"),
        };
        std::fs::create_dir_all(&out).with_context(|| format!("cannot make {}", out.display()))?;
        let binaries_note = std::env::var_os("PAXOS_BIN_DIR").map(|_| {
            format!("$PAXOS_BIN_DIR={} (the commit below is the checkout's, not necessarily theirs)", bin_dir.display())
        });
        Ok(Settings {
            mode,
            size: cli.size,
            out,
            keep: cli.keep,
            build: !cli.no_build,
            tools: Tools { repo, bin_dir, etcd_bench },
            command: command_line(args),
            binaries_note,
        })
    }
}

/// `path` against `cwd` when it is relative.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    let p = cwd.join(path);
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// The command as a person would type it: `scripts/bench.sh` and the
/// arguments, without those scripts/bench.sh adds (--bin-dir, --repo).
pub fn command_line(args: &[String]) -> String {
    let mut words = vec!["scripts/bench.sh".to_owned()];
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--bin-dir" || a == "--repo" {
            skip = true;
            continue;
        }
        if a.starts_with("--bin-dir=") || a.starts_with("--repo=") {
            continue;
        }
        let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c));
        words.push(if plain { a.clone() } else { format!("\"{a}\"") });
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("paxos-bench").chain(args.iter().copied()))
    }

    #[test]
    fn quick_has_its_own_defaults_and_options_still_win() {
        let cli = parse(&["--quick", "--duration", "2", "--out", "/tmp"]).expect("parses");
        let s = Settings::resolve(cli, &[]).expect("resolves");
        let Mode::Table(plan) = s.mode else { panic!("a table") };
        assert_eq!(
            plan,
            TablePlan { concurrency: vec![1, 16], duration: 2.0, warmup: 0.2, repeat: 1, seed_values: 200, vs: None }
        );
    }

    #[test]
    fn the_defaults_are_the_full_table() {
        let cli = parse(&["--vs", "etcd", "--out", "/tmp"]).expect("parses");
        let Mode::Table(plan) = Settings::resolve(cli, &[]).expect("resolves").mode else { panic!("a table") };
        assert_eq!(
            plan,
            TablePlan {
                concurrency: vec![1, 4, 16, 64, 256],
                duration: 5.0,
                warmup: 1.0,
                repeat: 3,
                seed_values: 1000,
                vs: Some(Peer::Etcd)
            }
        );
    }

    #[test]
    fn soak_takes_values_and_refuses_table_options() {
        let cli = parse(&["--soak", "--values", "200000", "--out", "/tmp"]).expect("parses");
        assert_eq!(Settings::resolve(cli, &[]).expect("resolves").mode, Mode::Soak { values: 200_000 });
        assert!(parse(&["--soak", "--concurrency", "1"]).is_err());
        assert!(parse(&["--values", "5"]).is_err(), "--values is for --soak");
        assert!(parse(&["--vs", "zookeeper"]).is_err());
        let vs = |arg: &str| parse(&["--vs", arg]).expect("parses").vs.map(Peer::system);
        assert_eq!((vs("etcd"), vs("no-auth")), (Some(System::Etcd), Some(System::NoAuth)));
    }

    #[test]
    fn concurrency_lists_are_words_of_positive_numbers() {
        assert_eq!(parse_list("1 4  16"), Ok(Concurrencies(vec![1, 4, 16])));
        assert_eq!(parse_list("1,64"), Ok(Concurrencies(vec![1, 64])));
        assert!(parse_list("1 0").is_err() && parse_list("a").is_err() && parse_list(" ").is_err());
        assert_eq!(parse_warmup("0"), Ok(0.0));
        assert!(parse_secs("0").is_err() && parse_secs("-1").is_err());
    }

    #[test]
    fn the_command_line_leaves_out_what_the_wrapper_adds() {
        let args: Vec<String> =
            ["--bin-dir", "/t/release", "--repo=/r", "--concurrency", "1 16", "--quick"].map(String::from).to_vec();
        assert_eq!(command_line(&args), r#"scripts/bench.sh --concurrency "1 16" --quick"#);
    }
}
