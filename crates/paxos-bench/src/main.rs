//! `paxos-bench`: the benchmark of the Paxos log, run as `scripts/bench.sh`.
//!
//! It sits outside the flow of the log: it starts real clusters (ours through
//! scripts/cluster.sh, etcd as its own children), loads them with the load
//! generators (`paxosctl bench`, `tools/etcd-bench`), reads what they print
//! and what /proc shows of the daemons, and writes the results: a CSV, a
//! README with the table, and SVG plots it draws itself.
//!
//! - [`cli`]: the command line (the only copy of its help) and its defaults;
//! - [`table`]: the rows, repeated, ours and the peer (etcd, or ours without
//!   auth) interleaved; [`soak`]: one long run and a restart;
//! - [`ours`], [`etcd`]: the two systems' clusters; [`floor`]: what the
//!   machine allows at concurrency 1; [`host`], [`procs`]: the machine, /proc,
//!   child processes, Ctrl-C;
//! - [`results`], [`stats`], [`report`], [`svg`]: the pure part, from figures
//!   to files.

mod cli;
mod etcd;
mod floor;
mod host;
mod ours;
mod procs;
mod report;
mod results;
mod soak;
mod stats;
mod svg;
mod table;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Mode, Settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = Cli::parse();
    procs::catch_interrupts();
    let result = Settings::resolve(cli, &args).and_then(|settings| match &settings.mode {
        Mode::Table(plan) => table::run(&settings, plan),
        Mode::Soak { values } => soak::run(&settings, *values),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paxos-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
