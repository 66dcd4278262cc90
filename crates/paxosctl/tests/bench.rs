//! Throughput through one leader: 2 proposers and 5 acceptors on this
//! machine, N concurrent clients, with fsync on and off. Ignored by default:
//!
//! ```text
//! cargo test -p paxosctl --release --test bench -- --ignored --nocapture
//! PAXOS_BENCH_VALUES=50000 PAXOS_BENCH_CLIENTS=128 cargo test ... (same)
//! ```
//!
//! It prints values/s, latency percentiles, and fsyncs/s of the leader and of
//! one acceptor (from their status counters).

use std::time::{Duration, Instant};

use paxos_proto::{Node, NodeId};
use paxos_testkit::{serial, Cluster};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn fsyncs(cluster: &Cluster, node: Node) -> u64 {
    let mut client = cluster.client().await;
    let s = client.status(node).await.expect("status");
    s.counters.get("fsyncs").copied().unwrap_or(0)
}

async fn bench(fsync: bool, values: usize, clients: usize, size: usize) {
    let mut cluster = Cluster::new(2, 5, &format!("fsync = {fsync}"));
    cluster.start_all();
    let leader = Node::Proposer(cluster.wait_ready().await);
    let acceptor = Node::Acceptor(NodeId(1));
    let (leader_fsyncs, acceptor_fsyncs) = (fsyncs(&cluster, leader).await, fsyncs(&cluster, acceptor).await);

    let per_client = values.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = cluster.client().await;
        client.set_retry(Duration::from_millis(500));
        client.set_timeout(Duration::from_secs(30));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let mut value = format!("c{c}-{i}-");
                value.extend(std::iter::repeat_n('x', size.saturating_sub(value.len())));
                let t = Instant::now();
                client.propose(value).await.expect("decided");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    let (leader_fsyncs, acceptor_fsyncs) =
        (fsyncs(&cluster, leader).await - leader_fsyncs, fsyncs(&cluster, acceptor).await - acceptor_fsyncs);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let secs = elapsed.as_secs_f64();
    println!(
        "fsync={fsync:5} values={} clients={clients} size={size}B: {:.0} values/s in {secs:.2} s; \
         latency p50 {:?} p99 {:?} max {:?}; leader {:.0} fsyncs/s ({:.1} values/fsync), acceptor-1 {:.0} fsyncs/s",
        latencies.len(),
        latencies.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1],
        leader_fsyncs as f64 / secs,
        latencies.len() as f64 / leader_fsyncs.max(1) as f64,
        acceptor_fsyncs as f64 / secs,
    );
    cluster.stop_all_gracefully().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn throughput_through_one_leader() {
    let _serial = serial().await;
    let values = env_usize("PAXOS_BENCH_VALUES", 20_000);
    let clients = env_usize("PAXOS_BENCH_CLIENTS", 64);
    let size = env_usize("PAXOS_BENCH_SIZE", 64);
    for fsync in [true, false] {
        bench(fsync, values, clients, size).await;
    }
}
