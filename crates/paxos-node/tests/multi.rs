//! `MultiClient`: many clients' proposals over one socket, against nodes run
//! in-process (in-memory stores): bundled both ways, redirects followed,
//! timeouts and refusals reported per value.

use std::collections::BTreeSet;
use std::time::Duration;

use paxos_client::client::ClientError;
use paxos_client::config::Role;
use paxos_client::multi::MultiClient;
use paxos_client::net::bind_udp;
use paxos_core::{Acceptor, AcceptorConfig, AcceptorState, MemStore, Proposer, ProposerState};
use paxos_node::runtime;
use paxos_proto::{Node, NodeId, Slot, MAX_VALUE_BYTES};
use paxos_testkit::Cluster;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Runs every member of `cluster` in this process.
fn spawn_all(cluster: &Cluster) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for &id in &cluster.acceptors {
        let settings = cluster.config.settings_for(Role::Acceptor, id.0).expect("settings");
        let addr = cluster.config.member(Role::Acceptor, id.0).expect("member").addr.parse().expect("addr");
        let (socket, _) = bind_udp(addr).expect("bind");
        let cfg = AcceptorConfig {
            id,
            genesis: cluster.config.genesis(),
            incarnation: u64::from(id.0),
            nonce_seed: u64::from(id.0) + 100,
            retain_slots: 0,
            lease_ticks: 20,
        };
        let (node, store) = (Acceptor::new(cfg, AcceptorState::default()), MemStore::<AcceptorState>::default());
        let config = cluster.config.clone();
        tasks.push(tokio::spawn(async move {
            let (_control, rx) = mpsc::unbounded_channel();
            let _ = runtime::run(node, store, socket, &config, &settings, rx, std::future::pending()).await;
        }));
    }
    for &id in &cluster.proposers {
        let settings = cluster.config.settings_for(Role::Proposer, id.0).expect("settings");
        let addr = cluster.config.member(Role::Proposer, id.0).expect("member").addr.parse().expect("addr");
        let (socket, _) = bind_udp(addr).expect("bind");
        let cfg = runtime::proposer_config(&cluster.config, id.0, &settings);
        let (node, store) = (Proposer::new(cfg, ProposerState::default()), MemStore::<ProposerState>::default());
        let config = cluster.config.clone();
        tasks.push(tokio::spawn(async move {
            let (_control, rx) = mpsc::unbounded_channel();
            let _ = runtime::run(node, store, socket, &config, &settings, rx, std::future::pending()).await;
        }));
    }
    tasks
}

/// Proposes `n` values `v0..` with `client`; returns per value its result.
async fn propose_all(client: &mut MultiClient, n: u64) -> Vec<(u64, Result<Slot, ClientError>)> {
    let mut next = 0;
    let mut results = Vec::new();
    client
        .run(
            || {
                let i = next;
                next += 1;
                (i < n).then(|| (i, format!("v{i}")))
            },
            |tag, _latency, result| results.push((tag, result)),
        )
        .await
        .expect("the socket works");
    results
}

/// 16 lanes, 400 values: each decided once at its own slot, and the leader
/// answered them in far fewer datagrams than values (one bundle per step for
/// the one client socket), as the client proposed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_lanes_share_one_socket_and_bundles_both_ways() {
    let cluster = Cluster::new(1, 3, "");
    let tasks = spawn_all(&cluster);
    let serving = |s: &paxos_proto::StatusReply| s.role == "leader" && s.epoch >= 1;
    cluster.wait_status(Node::Proposer(NodeId(1)), "leads and serves", serving).await;
    let before = cluster.wait_status(Node::Proposer(NodeId(1)), "answers", |_| true).await;

    let mut client = MultiClient::new(&cluster.config, 16).expect("client");
    assert_eq!(client.lanes(), 16);
    let results = propose_all(&mut client, 400).await;

    assert_eq!(results.len(), 400);
    let tags: BTreeSet<u64> = results.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, (0..400).collect(), "every value reported once");
    let slots: BTreeSet<Slot> = results.iter().map(|(_, r)| *r.as_ref().expect("decided")).collect();
    // Slot 0 holds the first configuration.
    assert_eq!(slots, (1..401).map(Slot).collect(), "400 values at 400 distinct slots");

    let after = cluster.wait_status(Node::Proposer(NodeId(1)), "answers", |_| true).await;
    let count = |s: &paxos_proto::StatusReply, k: &str| s.counters.get(k).copied().unwrap_or(0);
    let sent = count(&after, "datagrams.out") - count(&before, "datagrams.out");
    let received = count(&after, "datagrams.in") - count(&before, "datagrams.in");
    // Unbundled: at least 400 replies and 400 proposals, plus the accepts and votes.
    assert!(sent < 300, "the leader sent {sent} datagrams for 400 values (accepts to 3 acceptors included)");
    assert!(received < 300, "the leader received {received} datagrams for 400 values (votes included)");
    for t in tasks {
        t.abort();
    }
}

/// Lanes that start at a follower are redirected to the leader and decided there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_follow_redirects_to_the_leader() {
    let cluster = Cluster::new(2, 3, "");
    let tasks = spawn_all(&cluster);
    cluster.wait_status(Node::Proposer(NodeId(2)), "leads", |s| s.role == "leader").await;
    cluster.wait_status(Node::Proposer(NodeId(1)), "follows 2", |s| s.leader == Some(NodeId(2))).await;

    let mut client = MultiClient::new(&cluster.config, 8).expect("client");
    client.set_leader_hint(NodeId(1));
    let results = propose_all(&mut client, 50).await;
    let slots: BTreeSet<Slot> = results.iter().map(|(_, r)| *r.as_ref().expect("decided")).collect();
    assert_eq!(slots.len(), 50);
    for t in tasks {
        t.abort();
    }
}

/// Nobody listening: each value fails with a timeout after `--timeout`, and
/// `run` returns; an oversized value fails at once without being sent.
#[tokio::test]
async fn silence_times_out_per_value_and_oversized_values_are_refused() {
    let cluster = Cluster::new(2, 3, "");
    let mut client = MultiClient::new(&cluster.config, 4).expect("client");
    client.set_retry(Duration::from_millis(50));
    client.set_timeout(Duration::from_millis(300));
    let mut next = 0;
    let mut results = Vec::new();
    let started = std::time::Instant::now();
    client
        .run(
            || {
                let i = next;
                next += 1;
                match i {
                    0 => Some((0, "x".repeat(MAX_VALUE_BYTES + 1))),
                    1..=6 => Some((i, format!("v{i}"))),
                    _ => None,
                }
            },
            |tag, _latency, result| results.push((tag, result)),
        )
        .await
        .expect("the socket works");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(results.len(), 7);
    for (tag, result) in results {
        match tag {
            0 => assert!(matches!(result, Err(ClientError::ValueTooLarge { len }) if len == MAX_VALUE_BYTES + 1)),
            _ => assert!(matches!(result, Err(ClientError::Timeout { .. })), "value {tag}: {result:?}"),
        }
    }
}
