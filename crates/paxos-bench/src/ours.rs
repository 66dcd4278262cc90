//! Our side: a cluster of the real daemons through scripts/cluster.sh (which
//! owns starting, signalling and stopping them by recorded PID), loaded by
//! `paxosctl bench`, the one load generator of our side.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::host;
use crate::procs;
use crate::results::Figures;

/// Where the programs the benchmark drives are.
#[derive(Clone, Debug)]
pub struct Tools {
    /// The checkout: scripts/cluster.sh, tools/etcd-bench.
    pub repo: PathBuf,
    /// paxos-proposer, paxos-acceptor, paxosctl.
    pub bin_dir: PathBuf,
    /// tools/etcd-bench's binary.
    pub etcd_bench: PathBuf,
}

impl Tools {
    /// `scripts/cluster.sh`, taking the binaries from our bin dir.
    fn cluster_sh(&self) -> Command {
        let mut c = Command::new(self.repo.join("scripts/cluster.sh"));
        c.env("PAXOS_BIN_DIR", &self.bin_dir);
        c
    }

    /// `paxosctl --config <config>`.
    pub fn paxosctl(&self, config: &Path) -> Command {
        let mut c = Command::new(self.bin_dir.join("paxosctl"));
        c.arg("--config").arg(config);
        c
    }

    /// Fails unless the daemons and paxosctl are in the bin dir.
    ///
    /// # Errors
    /// Naming the first one missing and how to build it.
    pub fn check(&self) -> Result<()> {
        for b in ["paxos-proposer", "paxos-acceptor", "paxosctl"] {
            if !self.bin_dir.join(b).is_file() {
                bail!(
                    "{} is missing (build with: cargo build --release -p paxos-node -p paxosctl, \
                     or run scripts/bench.sh without --no-build)",
                    self.bin_dir.join(b).display()
                );
            }
        }
        Ok(())
    }
}

/// How a load generator runs: by time (a row) or by count (the seed scenario).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// `--duration` seconds after `--warmup` seconds.
    Time {
        /// Proposals in flight.
        concurrency: u32,
        /// Seconds measured.
        duration: f64,
        /// Seconds of load before.
        warmup: f64,
    },
    /// `--values N`, all counted.
    Count {
        /// Proposals in flight.
        concurrency: u32,
        /// Values in all.
        values: u64,
    },
}

impl Load {
    /// The arguments both `paxosctl bench` and `etcd-bench` take for it.
    pub fn args(&self, size: usize) -> Vec<String> {
        let mut args = match *self {
            Load::Time { concurrency, duration, warmup } => vec![
                "--duration".to_owned(),
                duration.to_string(),
                "--warmup".to_owned(),
                warmup.to_string(),
                "--concurrency".to_owned(),
                concurrency.to_string(),
            ],
            Load::Count { concurrency, values } => {
                vec!["--values".to_owned(), values.to_string(), "--concurrency".to_owned(), concurrency.to_string()]
            }
        };
        args.extend(["--size".to_owned(), size.to_string(), "--json".to_owned()]);
        args
    }
}

/// A live daemon of a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Daemon {
    /// `proposer-1`, `acceptor-3`.
    pub name: String,
    /// Its PID.
    pub pid: u32,
}

impl Daemon {
    /// `p1`, `a3`: the names of the tables.
    pub fn short(&self) -> String {
        short_name(&self.name)
    }
}

/// `proposer-1` is `p1`, `acceptor-3` is `a3`.
pub fn short_name(name: &str) -> String {
    match name.split_once('-') {
        Some((role, id)) => format!("{}{id}", role.chars().next().unwrap_or('?')),
        None => name.to_owned(),
    }
}

/// Whether a cluster signs its datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `[auth]` with a fresh peer key, as `cluster.sh up` makes it: members
    /// sign every datagram to each other with HMAC-SHA256.
    On,
    /// No `[auth]` (`cluster.sh up --no-auth`): nothing signed or checked.
    Off,
}

/// A local cluster in `dir`, torn down when dropped (also on an error or an
/// interrupt).
pub struct Cluster<'t> {
    tools: &'t Tools,
    dir: PathBuf,
    up: bool,
}

impl<'t> Cluster<'t> {
    /// Starts `proposers` proposers and `acceptors` acceptors (fsync on,
    /// `auth` as given) in `dir` with `cluster.sh up`, which returns once
    /// there is a leader.
    ///
    /// # Errors
    /// When the cluster does not come up (its logs stay in `dir/logs`).
    pub fn up(tools: &'t Tools, dir: &Path, proposers: u32, acceptors: u32, auth: Auth) -> Result<Cluster<'t>> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        // Guarded before it starts: a half-started cluster is torn down too.
        let cluster = Cluster { tools, dir: dir.to_path_buf(), up: true };
        let mut up = tools.cluster_sh();
        up.arg("up").arg("--no-build").arg("--dir").arg(dir).args([
            "--proposers",
            &proposers.to_string(),
            "--acceptors",
            &acceptors.to_string(),
        ]);
        if auth == Auth::Off {
            up.arg("--no-auth");
        }
        procs::run_ok(&mut up, "scripts/cluster.sh up")?;
        Ok(cluster)
    }

    /// Its cluster file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }

    /// The data dir of one node, `<dir>/data/<role>-<id>`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join("data").join(name)
    }

    /// `cluster.sh kill|restart ROLE ID`.
    ///
    /// # Errors
    /// When cluster.sh fails (e.g. the node is not running, for kill).
    pub fn act(&self, action: &str, role: &str, id: u32) -> Result<()> {
        procs::run_ok(
            self.tools.cluster_sh().args([action, role, &id.to_string(), "--dir"]).arg(&self.dir),
            &format!("scripts/cluster.sh {action} {role} {id}"),
        )?;
        Ok(())
    }

    /// Every daemon alive now, by its recorded PID, in name order; a PID that
    /// no longer runs our binary is left out.
    pub fn daemons(&self) -> Vec<Daemon> {
        let mut daemons: Vec<Daemon> = std::fs::read_dir(self.dir.join("pids"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.path().file_stem()?.to_string_lossy().into_owned();
                let pid: u32 = std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
                let role = name.split('-').next()?;
                host::runs(pid, &self.tools.bin_dir.join(format!("paxos-{role}"))).then_some(Daemon { name, pid })
            })
            .collect();
        daemons.sort_by(|a, b| a.name.cmp(&b.name));
        daemons
    }

    /// The peak RSS (VmHWM, KiB) of every live daemon, by short name.
    pub fn peak_rss(&self) -> Vec<(String, u64)> {
        self.daemons().iter().filter_map(|d| Some((d.short(), host::proc_kib(d.pid, "VmHWM")?))).collect()
    }

    /// `cluster.sh down`, in a process group of its own, so that a Ctrl-C
    /// in the terminal cannot cut a teardown short.
    fn down_command(&self) -> Command {
        let mut c = self.tools.cluster_sh();
        c.arg("down").arg("--dir").arg(&self.dir).stdin(Stdio::null()).process_group(0);
        c
    }

    /// Stops every daemon (`cluster.sh down`).
    ///
    /// # Errors
    /// When cluster.sh fails (the guard tries once more when dropped).
    pub fn down(&mut self) -> Result<()> {
        if self.up {
            let out = self.down_command().output().context("cannot run scripts/cluster.sh down")?;
            if !out.status.success() {
                bail!(
                    "scripts/cluster.sh down failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            self.up = false;
        }
        Ok(())
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        if self.up {
            // Also after an interrupt: the daemons run in sessions of their own
            // and outlive us unless stopped.
            let _ = self.down_command().output();
            self.up = false;
        }
    }
}

/// Runs one load generator (`cmd`, with `--json` among its arguments) to its
/// end and reads its figures. A run where some values failed still has
/// figures: that is said on stderr, and the figures count the errors.
///
/// # Errors
/// When it printed no figures (nothing ran).
pub fn figures(cmd: &mut Command, what: &str) -> Result<Figures> {
    let out = procs::output(cmd, what)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Ok(figures) = Figures::parse(stdout.lines().last().unwrap_or("")) else {
        bail!("{what} printed no figures ({}): {}{}", out.status, stderr.trim(), stdout.trim());
    };
    if !out.status.success() {
        eprintln!("paxos-bench: {what}: some values were not decided: {}", stderr.lines().next().unwrap_or(""));
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_load_generators_get_the_same_arguments() {
        let time = Load::Time { concurrency: 64, duration: 5.0, warmup: 0.5 };
        assert_eq!(time.args(64).join(" "), "--duration 5 --warmup 0.5 --concurrency 64 --size 64 --json");
        let count = Load::Count { concurrency: 1000, values: 1000 };
        assert_eq!(count.args(64).join(" "), "--values 1000 --concurrency 1000 --size 64 --json");
    }

    #[test]
    fn daemons_have_short_names() {
        assert_eq!(short_name("proposer-1"), "p1");
        assert_eq!(short_name("acceptor-12"), "a12");
        assert_eq!(short_name("m3"), "m3");
    }
}
