//! The peer: etcd (Debian's etcd-server), five members on free loopback
//! ports, started by this tool as its own children and SIGKILLed through
//! their `Child` handles (never by name), loaded by tools/etcd-bench.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::host;
use crate::procs;

/// How long the members have to agree on a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// One line of `etcdctl endpoint status -w json` (the fields read here).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct EndpointStatus {
    /// `127.0.0.1:2379`, as given to `--endpoints`.
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    /// What the member said.
    #[serde(rename = "Status")]
    pub status: MemberStatus,
}

/// A member's status.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MemberStatus {
    /// Who answered.
    pub header: Header,
    /// The member it takes for the leader (0: none).
    #[serde(default)]
    pub leader: u64,
}

/// The header of an answer.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Header {
    /// The member that answered.
    #[serde(default)]
    pub member_id: u64,
}

/// The index in `endpoints` of the leader, when at least `want` members
/// answered and all name the same leader, which is one of them.
pub fn leader_index(statuses: &[EndpointStatus], endpoints: &[String], want: usize) -> Option<usize> {
    let leader = statuses.first()?.status.leader;
    if statuses.len() < want || leader == 0 || statuses.iter().any(|s| s.status.leader != leader) {
        return None;
    }
    let at = statuses.iter().find(|s| s.status.header.member_id == leader)?;
    let endpoint = at.endpoint.trim_start_matches("http://");
    endpoints.iter().position(|e| e == endpoint)
}

/// A member we started.
struct Member {
    /// `m1`..`m5`.
    name: String,
    /// Until it is killed.
    child: Option<Child>,
}

/// An etcd cluster, killed when dropped.
pub struct Etcd {
    dir: PathBuf,
    members: Vec<Member>,
    /// The members' client addresses, `127.0.0.1:PORT`, in member order.
    endpoints: Vec<String>,
}

impl Etcd {
    /// The first line of `etcd --version`.
    pub fn version() -> String {
        Command::new("etcd")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned))
            .unwrap_or_else(|| "etcd (unknown version)".to_owned())
    }

    /// Starts `n` members in `dir` on free loopback ports and returns once all
    /// of them agree on a leader.
    ///
    /// # Errors
    /// When a member cannot be started or no leader is agreed within 30 s.
    pub fn up(dir: &Path, n: usize) -> Result<Etcd> {
        std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot make {}", dir.display()))?;
        let ports = free_tcp_ports(2 * n)?;
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let cluster: Vec<String> = (0..n).map(|i| format!("m{}={}", i + 1, peer(i))).collect();
        let token = format!("bench-{}-{}", std::process::id(), ports[0]);
        let mut etcd = Etcd {
            dir: dir.to_path_buf(),
            members: Vec::new(),
            endpoints: (0..n).map(|i| format!("127.0.0.1:{}", ports[2 * i])).collect(),
        };
        for i in 0..n {
            let name = format!("m{}", i + 1);
            let client = format!("http://{}", etcd.endpoints[i]);
            let log = File::create(dir.join("logs").join(format!("{name}.log"))).context("the member's log")?;
            let child = Command::new("etcd")
                .args(["--name", &name, "--data-dir"])
                .arg(dir.join(format!("{name}.etcd")))
                .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer(i), "--initial-advertise-peer-urls", &peer(i)])
                .args(["--initial-cluster", &cluster.join(","), "--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token, "--logger", "zap", "--log-outputs", "stderr"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().context("the member's log")?)
                .stderr(log)
                .spawn()
                .context("cannot start etcd")?;
            etcd.members.push(Member { name, child: Some(child) });
        }
        let deadline = Instant::now() + LEADER_TIMEOUT;
        while etcd.leader(n).is_none() {
            if Instant::now() > deadline {
                bail!(
                    "etcd: no leader agreed by {n} members after 30 s; logs in {}/logs (run with --keep)",
                    dir.display()
                );
            }
            procs::sleep(Duration::from_millis(100))?;
        }
        Ok(etcd)
    }

    /// `A,B,C` for `--endpoints`.
    pub fn endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    /// The index of the leader, when `want` members answer and agree on it.
    pub fn leader(&self, want: usize) -> Option<usize> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints(), "--dial-timeout", "1s", "--command-timeout", "1s"])
            .args(["endpoint", "status", "-w", "json"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        // Some members down is an exit 1, with the others' status on stdout.
        let statuses: Vec<EndpointStatus> = serde_json::from_slice(&out.stdout).ok()?;
        leader_index(&statuses, &self.endpoints, want)
    }

    /// SIGKILLs `count` members that are not the leader, as two acceptors are
    /// killed on our side; the leader stays.
    ///
    /// # Errors
    /// When the members no longer agree on a leader.
    pub fn kill_followers(&mut self, count: usize) -> Result<()> {
        let leader = self.leader(self.members.len()).context("etcd: no leader to keep")?;
        let followers = (0..self.members.len()).filter(|i| *i != leader).take(count).collect::<Vec<_>>();
        for i in followers {
            if let Some(mut child) = self.members[i].child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        Ok(())
    }

    /// The peak RSS (VmHWM, KiB) of each live member, by name.
    pub fn peak_rss(&self) -> Vec<(String, u64)> {
        self.members
            .iter()
            .filter_map(|m| Some((m.name.clone(), host::proc_kib(m.child.as_ref()?.id(), "VmHWM")?)))
            .collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // SIGKILL: a leader without its quorum spends seconds on a graceful
        // stop, and these data dirs are thrown away.
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(self.dir.join(format!("{}.etcd", m.name)));
        }
    }
}

/// `n` TCP ports free on 127.0.0.1 now, chosen by the kernel.
fn free_tcp_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>().context("no free port")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"[{"Endpoint":"127.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":11,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":12,"raftIndex":8,"raftTerm":2}},
        {"Endpoint":"127.0.0.1:2381","Status":{"header":{"cluster_id":1,"member_id":12,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":12,"raftIndex":8,"raftTerm":2}}]"#;

    fn endpoints() -> Vec<String> {
        vec!["127.0.0.1:2379".into(), "127.0.0.1:2381".into(), "127.0.0.1:2383".into()]
    }

    #[test]
    fn the_leader_is_found_when_enough_members_agree() {
        let statuses: Vec<EndpointStatus> = serde_json::from_str(STATUS).expect("etcdctl's JSON");
        assert_eq!(leader_index(&statuses, &endpoints(), 2), Some(1));
        assert_eq!(leader_index(&statuses, &endpoints(), 3), None, "a member did not answer");
    }

    #[test]
    fn no_leader_when_members_disagree_or_know_none() {
        let mut statuses: Vec<EndpointStatus> = serde_json::from_str(STATUS).expect("etcdctl's JSON");
        statuses[0].status.leader = 11;
        assert_eq!(leader_index(&statuses, &endpoints(), 2), None);
        statuses[0].status.leader = 0;
        statuses[1].status.leader = 0;
        assert_eq!(leader_index(&statuses, &endpoints(), 2), None);
        assert_eq!(leader_index(&[], &endpoints(), 0), None);
    }
}
