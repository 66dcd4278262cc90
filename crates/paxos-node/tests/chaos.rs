//! Process test of the daemons' own fault injection (`[chaos]`): real
//! binaries that drop, duplicate, delay and reorder their outgoing datagrams
//! still decide every value once, agree on the log, say loudly that chaos is
//! on, and count what it did.

use std::collections::HashMap;
use std::time::Duration;

use paxos_proto::{Node, NodeId, Slot};
use paxos_testkit::{assert_guarantees, full_log, serial, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_section_injects_faults_and_the_log_survives_them() {
    let _serial = serial().await;
    let chaos = "\n[chaos]\ndrop = 0.05\nduplicate = 0.1\ndelay_ms = 5\nreorder = 0.1\nseed = 7\n";
    let mut cluster = Cluster::new(2, 3, chaos);
    cluster.start_all();
    let leader = cluster.wait_ready().await;

    // A few clients at once, so that datagrams overtake each other.
    let mut tasks = Vec::new();
    for c in 0..4 {
        let mut client = cluster.client().await;
        client.set_timeout(Duration::from_secs(20));
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                let value = format!("chaos-c{c}-{i}");
                let slot = client.propose(value.clone()).await.unwrap_or_else(|e| panic!("propose {value}: {e}"));
                acked.push((value, slot));
            }
            acked
        }));
    }
    let mut acked: HashMap<String, Slot> = HashMap::new();
    for t in tasks {
        acked.extend(t.await.expect("client task"));
    }
    assert_eq!(acked.len(), 100);

    let needed = Slot(acked.values().map(|s| s.0 + 1).max().expect("values"));
    for p in [NodeId(1), NodeId(2)] {
        cluster.wait_status(Node::Proposer(p), "learned every acknowledged value", |s| s.decided >= needed).await;
    }
    let mut admin = cluster.client().await;
    let log1 = full_log(&mut admin, NodeId(1)).await;
    let log2 = full_log(&mut admin, leader).await;
    assert!(log1.len().min(log2.len()) as u64 >= needed.0);
    assert_guarantees(&[("proposer 1", &log1), ("the leader", &log2)], &acked);

    // Loud at start-up, with every setting; counted in the status.
    for node in cluster.nodes() {
        let log = cluster.log_text(node);
        let announced = log.lines().find(|l| l.contains("WARN") && l.contains("CHAOS ON")).unwrap_or("");
        for setting in ["drop=0.05", "duplicate=0.1", "delay_ms=5", "reorder=0.1", "seed=7", "node_seed="] {
            assert!(announced.contains(setting), "{node} announces chaos with {setting}:\n{log}");
        }
    }
    let mut totals: HashMap<String, u64> = HashMap::new();
    for node in cluster.nodes() {
        let s = cluster.wait_status(node, "answers", |_| true).await;
        for (k, v) in s.counters.iter().filter(|(k, _)| k.starts_with("chaos.")) {
            *totals.entry(k.clone()).or_default() += v;
        }
    }
    for key in ["chaos.dropped", "chaos.duplicated", "chaos.delayed", "chaos.reordered"] {
        assert!(totals.get(key).copied().unwrap_or(0) > 0, "{key} counted: {totals:?}");
    }
    cluster.stop_all_gracefully().await;
}

/// Without a `[chaos]` section nothing is injected and nothing is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_is_off_by_default() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 1, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let mut client = cluster.client().await;
    client.propose("quiet").await.expect("decided");
    for node in cluster.nodes() {
        let s = cluster.wait_status(node, "answers", |_| true).await;
        assert!(!s.counters.keys().any(|k| k.starts_with("chaos.")), "{node}: {:?}", s.counters);
        assert!(!cluster.log_text(node).contains("CHAOS"), "{node} says nothing about chaos");
    }
    cluster.stop_all_gracefully().await;
}
