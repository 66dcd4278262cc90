//! `paxosctl status [--json] [--timeout SECS]`
//!
//! Asks every node of the cluster file, proposers and acceptors, for its
//! status, all at once, each with [`super::STATUS_RETRY`] and one retry
//! (`--timeout`, 1 s by default, in all). A
//! node is `up`, `failed` (it answers, but ignores every other datagram since
//! SIGUSR1) or `unreachable` (no answer in time: down, or not where the file
//! says). When a proposer leads, it is asked for the members the log decided
//! (`member list`; while no proposer of the file leads, the working one
//! that decided the most is): those the file does not name, and those the
//! log moved elsewhere, are asked where the log puts them, and those the
//! file names but the log removed show as `removed` and do not count
//! towards the majority.
//!
//! The table has the columns NODE, ROLE, ADDRESS, STATE, LEADER, BALLOT and
//! DECIDED. With `--json` there is one compact JSON object per node and line:
//! `{"node":"proposer-1","role":"leader","addr":"127.0.0.1:7001","state":"up",
//! "epoch":1,"leader":1,"ballot":"3.1","decided":17,"peers_heard":[...],
//! "counters":{...},"version":"0.1.0","commit":"1a2b3c4"}`.
//! The role is the one the node reports (`leader`, `candidate`, `follower`,
//! `acceptor`); for an unreachable node it is its role in the file
//! (`proposer` or `acceptor`), never `leader`, and the fields only the node
//! knows are `null`. Scripts wait for a leader with `grep '"role":"leader"'`.
//!
//! Exit 0 when a working proposer leads and a majority of the acceptors is
//! up; else 1, after the table, with one line on stderr saying which.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use paxos_proto::{MemberOp, Node};
use serde::Serialize;

use super::{all_nodes, probe, unreachable, CtlError, Out, Probe};
use paxos_client::config::{ClusterConfig, Member};

/// The arguments of `paxosctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object per node and line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long each node may take to answer before it counts as unreachable [default: 1].
    #[arg(long, value_name = "SECS", value_parser = super::parse_secs)]
    pub timeout: Option<Duration>,
}

/// One node's line of `status --json`.
#[derive(Debug, Serialize)]
pub struct NodeStatus<'a> {
    /// `proposer-1`, `acceptor-3`.
    pub node: String,
    /// What the node says it is, or its role in the cluster file when it is unreachable.
    pub role: &'a str,
    /// Its address in the cluster file.
    pub addr: &'a str,
    /// `up`, `failed`, `rebuilding` (an acceptor copying the decided log
    /// before it may vote again), `joining` (a node not let in yet) or `unreachable`.
    pub state: &'a str,
    /// The configuration epoch it is in (how many membership changes the log decided).
    pub epoch: Option<u32>,
    /// The proposer it takes to lead, if it knows one.
    pub leader: Option<u32>,
    /// A proposer's ballot or an acceptor's promise: `round.proposer` in
    /// epoch 0, `epoch:round.proposer` from epoch 1 on (an acceptor's
    /// promise may be of an earlier epoch than the proposers' ballots).
    pub ballot: Option<String>,
    /// Its first instance not known decided (the end of its decided prefix).
    pub decided: Option<u64>,
    /// The peers it heard from within the election timeout.
    pub peers_heard: Option<Vec<String>>,
    /// Its counters: datagrams dropped by reason, fsyncs, values decided...
    pub counters: Option<&'a BTreeMap<String, u64>>,
    /// The release it runs, as its `--version` says.
    pub version: Option<&'a str>,
    /// The git commit it was built from.
    pub commit: Option<&'a str>,
}

impl<'a> NodeStatus<'a> {
    /// What `probe` shows of one node.
    pub fn of(probe: &'a Probe) -> NodeStatus<'a> {
        let node = probe.node.to_string();
        match &probe.reply {
            Some(r) => NodeStatus {
                node,
                role: &r.role,
                addr: &probe.addr,
                state: if r.failed {
                    "failed"
                } else if r.state.is_empty() {
                    "up"
                } else {
                    &r.state
                },
                epoch: Some(r.epoch),
                leader: r.leader.map(|l| l.0),
                ballot: Some(r.ballot.to_string()),
                decided: Some(r.decided.0),
                peers_heard: Some(r.peers_heard.iter().map(Node::to_string).collect()),
                counters: Some(&r.counters),
                version: Some(r.version.as_str()).filter(|v| !v.is_empty()),
                commit: Some(r.commit.as_str()).filter(|c| !c.is_empty()),
            },
            None => NodeStatus {
                node,
                role: match probe.node {
                    Node::Proposer(_) => "proposer",
                    Node::Acceptor(_) | Node::Client(_) => "acceptor",
                },
                addr: &probe.addr,
                state: "unreachable",
                epoch: None,
                leader: None,
                ballot: None,
                decided: None,
                peers_heard: None,
                counters: None,
                version: None,
                commit: None,
            },
        }
    }

    /// The cells of its table row.
    fn cells(&self) -> [String; 7] {
        let dash = || "-".to_owned();
        [
            self.node.clone(),
            self.role.to_owned(),
            self.addr.to_owned(),
            self.state.to_owned(),
            self.leader.map_or_else(dash, |l| format!("proposer-{l}")),
            self.ballot.clone().unwrap_or_else(dash),
            self.decided.map_or_else(dash, |d| d.to_string()),
        ]
    }
}

/// The status table: a header and one row per node, columns padded to fit.
pub fn format_table(nodes: &[NodeStatus<'_>]) -> Vec<String> {
    const HEADER: [&str; 7] = ["NODE", "ROLE", "ADDRESS", "STATE", "LEADER", "BALLOT", "DECIDED"];
    let mut rows: Vec<[String; 7]> = vec![HEADER.map(str::to_owned)];
    rows.extend(nodes.iter().map(NodeStatus::cells));
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// Runs `paxosctl status`.
///
/// # Errors
/// [`CtlError::Failed`] when no node answered.
pub async fn run(cluster: &ClusterConfig, args: StatusArgs, out: &mut Out) -> Result<(), CtlError> {
    let wait = args.timeout.unwrap_or(super::STATUS_TIMEOUT);
    let in_file = all_nodes(cluster);
    let mut probes = probe(cluster, &in_file, wait).await?;
    // The members the log decided, if the leader says: those it names and
    // the log removed are marked.
    let decided = decided_members(cluster, &probes).await;
    let removed: Vec<Node> = match &decided {
        Some(members) => in_file.iter().copied().filter(|n| !members.iter().any(|(m, _)| m == n)).collect(),
        None => Vec::new(),
    };
    // Those the file does not name, and those the log moved elsewhere (removed
    // and added again at another address) that did not answer where the file
    // says, are asked where the log puts them. One that answers where the file
    // says stays there: the file may name it as this host reaches it (published
    // ports), not as the members do (compose service names).
    let answered = |n: &Node| probes.iter().any(|p| p.node == *n && p.reply.is_some());
    let elsewhere =
        |(n, addr): &&(Node, String)| !in_file.contains(n) || (super::address(cluster, *n) != *addr && !answered(n));
    let extra: Vec<&(Node, String)> = decided.iter().flatten().filter(elsewhere).collect();
    if !extra.is_empty() {
        let mut widened = cluster.clone();
        for (node, addr) in &extra {
            let (members, id) = match node {
                Node::Proposer(id) => (&mut widened.proposers, id.0),
                Node::Acceptor(id) => (&mut widened.acceptors, id.0),
                Node::Client(_) => continue,
            };
            members.retain(|m| m.id != id);
            members.push(Member::new(id, addr));
        }
        let nodes: Vec<Node> = extra.iter().map(|(n, _)| *n).collect();
        let moved = probe(&widened, &nodes, wait).await?;
        // A member of the file silent at both addresses shows where the file says.
        let found: Vec<Node> =
            moved.iter().filter(|p| p.reply.is_some() || !in_file.contains(&p.node)).map(|p| p.node).collect();
        probes.retain(|p| !found.contains(&p.node));
        probes.extend(moved.into_iter().filter(|p| found.contains(&p.node)));
    }
    let nodes: Vec<NodeStatus<'_>> = probes
        .iter()
        .map(|p| {
            let mut n = NodeStatus::of(p);
            if removed.contains(&p.node) {
                n.state = "removed";
            }
            n
        })
        .collect();
    if args.json {
        for node in &nodes {
            let line = serde_json::to_string(node).map_err(|e| CtlError::Failed(format!("status as JSON: {e}")))?;
            out.line(line)?;
        }
    } else {
        for line in format_table(&nodes) {
            out.line(line)?;
        }
    }
    if probes.iter().all(|p| p.reply.is_none()) {
        out.flush()?;
        return Err(unreachable(cluster, "no node", wait));
    }
    out.flush()?;
    for line in damaged(&nodes).into_iter().chain(diverged(&nodes)) {
        super::diag(line);
    }
    unhealthy(&nodes).map_or(Ok(()), |why| Err(CtlError::Failed(why)))
}

/// One line per node that cannot read its decided log now (`log_damaged`
/// 1: a read failed, and no pass over all of it read it cleanly since; a
/// node of an earlier release, which has no such value: any failed read
/// since it started, its counter `log_read_failed`), saying what that means
/// and what to do; for stderr, so that the table and the JSON lines keep
/// SPEC's form.
pub fn damaged(nodes: &[NodeStatus<'_>]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| {
            let counters = n.counters?;
            if counters.get("log_damaged").is_some_and(|d| *d == 0) {
                return None;
            }
            let failed = counters.get("log_read_failed").copied().filter(|f| *f > 0)?;
            let lead = if n.node.starts_with("proposer") { " nor lead while another proposer can" } else { "" };
            Some(format!(
                "{}: {failed} reads of its decided log failed (a damaged segment): it cannot serve them{lead}; \
                 its log names the segment; stop it, move its data dir away and start it again",
                n.node
            ))
        })
        .collect()
}

/// One line per proposer that found other nodes' decided logs to differ
/// from its own (`log_diverged` above 0: their digests differ), for stderr
/// as [`damaged`]'s: agreement is broken there, and an operator must pick
/// the logs to keep.
pub fn diverged(nodes: &[NodeStatus<'_>]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| {
            let count = n.counters?.get("log_diverged").copied().filter(|d| *d > 0)?;
            let nodes = if count == 1 { "node" } else { "nodes" };
            Some(format!(
                "{}: the decided log of {count} {nodes} differs from its own (their digests): agreement is broken \
                 there; its /health and its log name them and the slot; compare the logs (paxosctl log --node) \
                 and move away the data dirs of the nodes whose digest the majority does not share",
                n.node
            ))
        })
        .collect()
}

/// The members of the configuration the log decided, with their addresses,
/// as the leader lists them (`member list`), or while no proposer of the
/// file leads (the leader may be one the file does not name), as the
/// working proposer that decided the most does; `None` when none answers
/// within [`MEMBERS_TIMEOUT`] (e.g. this file lacks the cluster's peer
/// key): the file's members are all there is.
async fn decided_members(cluster: &ClusterConfig, probes: &[Probe]) -> Option<Vec<(Node, String)>> {
    let most = || {
        let working = probes.iter().filter_map(|p| match (p.node, &p.reply) {
            (Node::Proposer(id), Some(r)) if !r.failed => Some((id, r.decided)),
            _ => None,
        });
        working.max_by_key(|(_, decided)| *decided).map(|(id, _)| id)
    };
    let asked = super::leading_of(probes).or_else(most)?;
    let mut client = super::new_client(cluster).await.ok()?;
    client.set_leader_hint(asked);
    client.set_retry(super::STATUS_RETRY);
    client.set_timeout(MEMBERS_TIMEOUT);
    let config = client.member(MemberOp::List).await.ok()?;
    let proposers = config.proposers.iter().map(|m| (Node::Proposer(m.id), m.addr.clone()));
    Some(proposers.chain(config.acceptors.iter().map(|m| (Node::Acceptor(m.id), m.addr.clone()))).collect())
}

/// How long `status` waits for the leader's list of members.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the cluster cannot serve, as `status` sees it (its exit code 1): no
/// leader known, or no majority of the acceptors up (of those the log has
/// not removed).
pub fn unhealthy(nodes: &[NodeStatus<'_>]) -> Option<String> {
    let acceptors: Vec<&NodeStatus<'_>> =
        nodes.iter().filter(|n| n.node.starts_with("acceptor-") && n.state != "removed").collect();
    let up = acceptors.iter().filter(|n| n.state == "up").count();
    let leader = nodes.iter().any(|n| n.role == "leader" && n.state == "up");
    if !leader {
        Some("no leader: no working proposer leads".into())
    } else if up < acceptors.len() / 2 + 1 {
        Some(format!("{up} of {} acceptors up, no majority: nothing can be decided", acceptors.len()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use paxos_proto::{Ballot, NodeId, Slot, StatusReply};

    use super::*;

    fn probes() -> Vec<Probe> {
        let reply = StatusReply {
            req: 7,
            role: "leader".into(),
            failed: false,
            leader: Some(NodeId(2)),
            ballot: Ballot::new(3, NodeId(2)),
            decided: Slot(17),
            peers_heard: vec![Node::Acceptor(NodeId(1))],
            counters: BTreeMap::from([("fsyncs".to_owned(), 4)]),
            state: "up".into(),
            epoch: 1,
            version: "0.1.0".into(),
            commit: "1a2b3c4".into(),
        };
        vec![
            Probe { node: Node::Proposer(NodeId(2)), addr: "127.0.0.1:7002".into(), reply: Some(reply.clone()) },
            Probe {
                node: Node::Acceptor(NodeId(1)),
                addr: "127.0.0.1:7101".into(),
                reply: Some(StatusReply { role: "acceptor".into(), failed: true, leader: None, ..reply }),
            },
            Probe { node: Node::Proposer(NodeId(1)), addr: "127.0.0.1:7001".into(), reply: None },
        ]
    }

    #[test]
    fn json_lines_are_compact_and_an_unreachable_node_keeps_its_configured_role() {
        let probes = probes();
        let lines: Vec<String> =
            probes.iter().map(|p| serde_json::to_string(&NodeStatus::of(p)).expect("json")).collect();
        assert_eq!(
            lines[0],
            r#"{"node":"proposer-2","role":"leader","addr":"127.0.0.1:7002","state":"up","epoch":1,"leader":2,"ballot":"3.2","decided":17,"peers_heard":["acceptor-1"],"counters":{"fsyncs":4},"version":"0.1.0","commit":"1a2b3c4"}"#
        );
        assert!(lines[1].contains(r#""role":"acceptor""#) && lines[1].contains(r#""state":"failed""#));
        assert_eq!(
            lines[2],
            r#"{"node":"proposer-1","role":"proposer","addr":"127.0.0.1:7001","state":"unreachable","epoch":null,"leader":null,"ballot":null,"decided":null,"peers_heard":null,"counters":null,"version":null,"commit":null}"#
        );
    }

    /// A node that cannot read its decided log now gets a line for stderr; the others none: one that
    /// took the mark back (a pass read it all, `log_damaged` 0) neither, although its counter of
    /// failed reads stays. A node of an earlier release (no `log_damaged`) is named by its counter.
    #[test]
    fn a_damaged_node_is_named_on_stderr() {
        let mut probes = probes();
        assert!(damaged(&probes.iter().map(NodeStatus::of).collect::<Vec<_>>()).is_empty());
        for p in &mut probes[..2] {
            if let Some(r) = &mut p.reply {
                r.counters.insert("log_read_failed".to_owned(), 3);
            }
        }
        let lines = damaged(&probes.iter().map(NodeStatus::of).collect::<Vec<_>>());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("proposer-2: 3 reads of its decided log failed"), "{}", lines[0]);
        assert!(lines[0].contains("nor lead while another proposer can") && lines[0].contains("move its data dir"));
        assert!(lines[1].starts_with("acceptor-1: 3 reads") && !lines[1].contains("lead"), "{}", lines[1]);
        for (p, damaged) in probes[..2].iter_mut().zip([1, 0]) {
            if let Some(r) = &mut p.reply {
                r.counters.insert("log_damaged".to_owned(), damaged);
            }
        }
        let lines = damaged(&probes.iter().map(NodeStatus::of).collect::<Vec<_>>());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("proposer-2: 3 reads"), "{}", lines[0]);
    }

    /// A proposer that found a log that differs from its own gets a line for stderr; the others none.
    #[test]
    fn a_proposer_that_found_a_divergence_is_named_on_stderr() {
        let mut probes = probes();
        assert!(diverged(&probes.iter().map(NodeStatus::of).collect::<Vec<_>>()).is_empty());
        for (p, n) in probes[..2].iter_mut().zip([2, 0]) {
            if let Some(r) = &mut p.reply {
                r.counters.insert("log_diverged".to_owned(), n);
            }
        }
        let lines = diverged(&probes.iter().map(NodeStatus::of).collect::<Vec<_>>());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("proposer-2: the decided log of 2 nodes differs from its own"), "{}", lines[0]);
    }

    #[test]
    fn the_table_has_a_header_and_aligned_columns() {
        let probes = probes();
        let nodes: Vec<NodeStatus<'_>> = probes.iter().map(NodeStatus::of).collect();
        let table = format_table(&nodes);
        assert_eq!(
            table,
            [
                "NODE        ROLE      ADDRESS         STATE        LEADER      BALLOT  DECIDED",
                "proposer-2  leader    127.0.0.1:7002  up           proposer-2  3.2     17",
                "acceptor-1  acceptor  127.0.0.1:7101  failed       -           3.2     17",
                "proposer-1  proposer  127.0.0.1:7001  unreachable  -           -       -",
            ]
        );
    }
}
