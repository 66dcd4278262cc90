//! Process tests of the nodes' HTTP side (SPEC.md, "Observability"): the real
//! daemons with an `http` address each, scraped and probed with plain HTTP/1.1
//! over `std::net::TcpStream`; `--version`; and the one-line exit of a node
//! whose UDP or HTTP port is taken.
//!
//! Metrics are published by the node loop every 0.1 s, so every check polls
//! until the figure moves (never a bare sleep).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paxos_client::config::Role;
use paxos_proto::{Node, NodeId};
use paxos_testkit::{acceptor_bin, free_ports, proposer_bin, serial, wait_exit, Cluster};

/// `GET path` from `addr`: the status code and the body, or why not.
fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read from {addr}: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no header end: {response:?}"))?;
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("no status: {head:?}"))?;
    Ok((code, body.to_owned()))
}

/// The value of the sample `series` (`name` or `name{labels}`) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `check` until it gives `Some`, for at most 15 s.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<Option<T>, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    loop {
        match check() {
            Ok(Some(value)) => return value,
            Ok(None) => {}
            Err(e) => last = e,
        }
        assert!(Instant::now() < deadline, "{what}: not in time (last error: {last})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `GET path` from `addr` answers `code`; returns the body.
async fn wait_code(addr: &str, path: &str, code: u16) -> String {
    eventually(&format!("GET {addr}{path} answers {code}"), || {
        let (got, body) = get(addr, path)?;
        Ok((got == code).then_some(body))
    })
    .await
}

/// Polls `addr`'s `/health` until it answers 503 for a damaged log (other
/// 503s, e.g. no leader known yet, come first after a start); returns the body.
async fn wait_damaged(addr: &str) -> String {
    eventually(&format!("GET {addr}/health says the log is damaged"), || {
        let (code, body) = get(addr, "/health")?;
        Ok((code == 503 && body.starts_with("damaged log")).then_some(body))
    })
    .await
}

/// Polls `addr`'s metrics until `series` is at least `min`; returns its value.
async fn wait_sample(addr: &str, series: &str, min: f64) -> f64 {
    eventually(&format!("{series} >= {min} at {addr}"), || {
        let (code, text) = get(addr, "/metrics")?;
        if code != 200 {
            return Err(format!("/metrics answered {code}"));
        }
        Ok(sample(&text, series).filter(|v| *v >= min))
    })
    .await
}

/// A cluster whose every member has `http = "127.0.0.1:<free port>"` in the
/// cluster file (with `extra` sections); returns the HTTP address of each node.
fn cluster_with_http(proposers: u32, acceptors: u32, extra: &str) -> (Cluster, BTreeMap<Node, String>) {
    let cluster = Cluster::new(proposers, acceptors, extra);
    let nodes = cluster.nodes();
    let https: BTreeMap<Node, String> =
        nodes.iter().zip(free_ports(nodes.len())).map(|(n, p)| (*n, format!("127.0.0.1:{p}"))).collect();
    let text = std::fs::read_to_string(&cluster.path).expect("read the cluster file");
    let mut out = String::new();
    let mut section = "";
    let mut id = 0;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("[[") {
            section = if line.contains("proposers") { "proposers" } else { "acceptors" };
        } else if let Some(n) = line.strip_prefix("id = ") {
            id = n.parse().expect("an id");
        } else if line.starts_with("addr = ") {
            let node = if section == "proposers" { Node::Proposer(NodeId(id)) } else { Node::Acceptor(NodeId(id)) };
            out.push_str(&format!("http = \"{}\"\n", https[&node]));
        }
    }
    std::fs::write(&cluster.path, out).expect("write the cluster file");
    (cluster, https)
}

/// A child killed when the test ends, even by a panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The figures move when what they count happens: proposing values moves
/// `paxos_decided_index`, the messages by kind (`paxos_messages_total`) and
/// opens a client session (`paxos_sessions`), a garbage datagram `paxos_datagrams_dropped_total
/// {reason="malformed"}`, a durable write the fsync histogram; `/health`
/// turns 503 on SIGUSR1 and 200 again on SIGUSR2; a proposer is ready once a
/// leader exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_probes_follow_the_node() {
    let _serial = serial().await;
    let (mut cluster, https) = cluster_with_http(2, 3, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let leader_http = &https[&Node::Proposer(leader)];
    let acceptor = Node::Acceptor(NodeId(1));
    let acceptor_http = &https[&acceptor];

    // Every node serves its probes and says who it is.
    for (node, addr) in &https {
        wait_code(addr, "/ready", 200).await;
        let (code, body) = get(addr, "/health").expect("GET /health");
        assert_eq!((code, body.as_str()), (200, "ok\n"), "{node}: /health");
        let (code, text) = get(addr, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200, "{node}: /metrics");
        let (role, id) = match node {
            Node::Proposer(id) => ("proposer", id.0),
            Node::Acceptor(id) => ("acceptor", id.0),
            Node::Client(_) => unreachable!(),
        };
        let info = format!("paxos_node_info{{role=\"{role}\",id=\"{id}\",version=\"{}\"", env!("CARGO_PKG_VERSION"));
        assert!(text.lines().any(|l| l.starts_with(&info) && l.ends_with("} 1")), "{node}: {info} in\n{text}");
        for series in ["paxos_decided_index", "paxos_ballot_round", "paxos_epoch", "paxos_is_leader"] {
            assert!(sample(&text, series).is_some(), "{node}: {series} in\n{text}");
        }
        assert!(sample(&text, "paxos_node_state{state=\"up\"}") == Some(1.0), "{node}: up in\n{text}");
    }
    assert_eq!(sample(&get(leader_http, "/metrics").unwrap().1, "paxos_is_leader"), Some(1.0));

    // Values decided move the decided index and the values decided.
    let before = wait_sample(leader_http, "paxos_decided_index", 0.0).await;
    let mut client = cluster.client().await;
    for i in 0..5 {
        client.propose(format!("metric-{i}")).await.expect("propose");
    }
    wait_sample(leader_http, "paxos_decided_index", before + 5.0).await;
    wait_sample(leader_http, "paxos_values_decided_total", before + 5.0).await;
    // The leader timed the five requests it answered.
    wait_sample(leader_http, "paxos_commit_latency_seconds_count", 5.0).await;
    // Messages by direction and kind.
    wait_sample(leader_http, "paxos_messages_total{direction=\"in\",kind=\"client_propose\"}", 5.0).await;
    wait_sample(leader_http, "paxos_messages_total{direction=\"out\",kind=\"client_reply\"}", 5.0).await;
    wait_sample(acceptor_http, "paxos_messages_total{direction=\"in\",kind=\"accept\"}", 1.0).await;
    wait_sample(acceptor_http, "paxos_messages_total{direction=\"out\",kind=\"accepted\"}", 1.0).await;
    // The role's own counters reach the scrape too: one live client session.
    wait_sample(leader_http, "paxos_sessions", 1.0).await;
    let text = get(leader_http, "/metrics").expect("GET /metrics").1;
    assert_eq!(sample(&text, "paxos_sessions_evicted_total"), Some(0.0), "in\n{text}");
    assert_eq!(sample(&text, "paxos_node_events_total{name=\"requests_stale\"}"), Some(0.0), "in\n{text}");
    wait_sample(acceptor_http, "paxos_fsync_duration_seconds_count", 1.0).await;
    wait_sample(acceptor_http, "paxos_datagrams_in_total", 1.0).await;

    // A garbage datagram, signed so that it passes [auth] and fails to decode.
    let malformed = "paxos_datagrams_dropped_total{reason=\"malformed\"}";
    let dropped = wait_sample(acceptor_http, malformed, 0.0).await;
    let mut garbage = b"{\"not\": \"an envelope\"".to_vec();
    cluster.peer_keys().sign(&mut garbage);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = &cluster.config.member(Role::Acceptor, 1).expect("acceptor 1").addr;
    socket.send_to(&garbage, addr).expect("send");
    wait_sample(acceptor_http, malformed, dropped + 1.0).await;

    // SIGUSR1 fails the node: 503 with the reason; SIGUSR2 brings it back.
    cluster.signal(acceptor, libc::SIGUSR1);
    let reason = wait_code(acceptor_http, "/health", 503).await;
    assert!(reason.starts_with("failed") && reason.lines().count() == 1, "one line saying why: {reason:?}");
    assert_eq!(get(acceptor_http, "/ready").expect("GET /ready").0, 503);
    // Failed, yet alive: a liveness probe on /live does not restart it.
    assert_eq!(get(acceptor_http, "/live").expect("GET /live"), (200, "ok\n".to_owned()));
    wait_sample(acceptor_http, "paxos_node_state{state=\"failed\"}", 1.0).await;
    cluster.signal(acceptor, libc::SIGUSR2);
    assert_eq!(wait_code(acceptor_http, "/health", 200).await, "ok\n");
    wait_code(acceptor_http, "/ready", 200).await;

    // With every acceptor failed nothing can be decided: no proposer is healthy, whichever
    // campaigns (it names itself where clients go, but no majority made it leader); then back.
    let acceptors: Vec<Node> = cluster.acceptors.iter().map(|a| Node::Acceptor(*a)).collect();
    for a in &acceptors {
        cluster.signal(*a, libc::SIGUSR1);
    }
    for p in cluster.proposers.clone() {
        let addr = &https[&Node::Proposer(p)];
        let reason = wait_code(addr, "/health", 503).await;
        assert!(reason.starts_with("no leader known") && reason.lines().count() == 1, "proposer {p}: {reason:?}");
        eventually(&format!("paxos_leader_id 0 at {addr}"), || {
            Ok((sample(&get(addr, "/metrics")?.1, "paxos_leader_id") == Some(0.0)).then_some(()))
        })
        .await;
    }
    for a in &acceptors {
        cluster.signal(*a, libc::SIGUSR2);
    }
    for p in cluster.proposers.clone() {
        assert_eq!(wait_code(&https[&Node::Proposer(p)], "/health", 200).await, "ok\n");
    }

    // Unknown paths are 404.
    assert_eq!(get(acceptor_http, "/nothing").expect("GET").0, 404);
    cluster.stop_all_gracefully().await;
}

/// `PAXOS_HTTP` serves HTTP where the file gives none; a proposer that knows
/// no leader (no acceptor is up) is neither healthy nor ready, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paxos_http_serves_and_a_proposer_without_leader_is_not_ready() {
    let _serial = serial().await;
    let cluster = Cluster::new(1, 1, "");
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    let mut cmd = cluster.command(Node::Proposer(NodeId(1)));
    let _proposer = Killed(cmd.env("PAXOS_HTTP", &addr).spawn().expect("spawn"));
    // Until its loop first reports, it says "starting"; then why it is not healthy.
    eventually("/health says no leader known", || {
        let (code, body) = get(&addr, "/health")?;
        assert_eq!(code, 503, "{body}");
        Ok((body.starts_with("no leader known") && body.lines().count() == 1).then_some(()))
    })
    .await;
    let (code, reason) = get(&addr, "/ready").expect("GET /ready");
    assert!(code == 503 && reason.starts_with("no leader known"), "{code} {reason}");
    wait_sample(&addr, "paxos_node_state{state=\"up\"}", 0.0).await;
    wait_sample(&addr, "paxos_is_leader", 0.0).await;
}

/// A damaged old segment of a node's decided log (zeros over one of its
/// records) fails the reads that reach it, and only them: the node answers
/// such a read with nothing (a client times out; a peer asks another node),
/// counts `log_read_failed`, logs one error naming the segment and what to
/// do, and says so in `/health` and in its heartbeats (the leader refuses to
/// hand leadership to it), while it goes on serving everything else.
/// It used to stop at each such read, restart cleanly, and stop again.
/// Damaged while it was down, the node finds the damage by its own pass over
/// its log after the start, before anyone reads through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_segment_fails_its_reads_and_the_node_goes_on() {
    let _serial = serial().await;
    let (mut cluster, https, leader, mut client) = sealed_segments_cluster().await;
    let follower = Node::Proposer(NodeId(1));
    assert!(cluster.terminate(follower).await.success());
    damage_first_segment(&cluster, follower);
    cluster.start(follower);
    cluster.wait_status(follower, "is back", |s| s.decided.0 >= 80).await;
    // Nobody has read its log yet: its own pass finds the damage.
    let http = &https[&follower];
    let body = wait_damaged(http).await;
    assert!(body.contains("0000000001.wal"), "found at start: {body}");

    let mut reader = cluster.client().await;
    reader.set_timeout(Duration::from_millis(1500));
    match reader.log(NodeId(1), paxos_proto::Slot(0), 1000).await {
        Err(paxos_client::ClientError::Timeout { .. }) => {}
        Err(e) => panic!("a read through the damage: {e}"),
        Ok(page) => {
            panic!("a read through the damage was answered: {} entries from {}", page.entries.len(), page.decided)
        }
    }
    let s = cluster
        .wait_status(follower, "counts the failed reads", |s| {
            s.counters.get("log_read_failed").is_some_and(|n| *n >= 1)
        })
        .await;
    assert!(!s.failed, "{s:?}");
    let body = wait_code(http, "/health", 503).await;
    assert!(body.starts_with("damaged log") && body.contains("0000000001.wal") && body.lines().count() == 1, "{body}");
    let (code, body) = get(http, "/ready").expect("GET /ready");
    assert!(code == 503 && body.starts_with("damaged log"), "{code} {body}");
    wait_code(http, "/live", 200).await;
    let log = cluster.log_text(follower);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.len() == 1 && errors[0].contains("0000000001.wal") && errors[0].contains("move"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Damage is not an error that passes: the retry, 10 s after the last failed read, fails too, and
    // the node still says so.
    let failed = s.counters["log_read_failed"];
    let s = cluster
        .wait_status(follower, "fails its retry too", |s| {
            s.counters.get("log_read_failed").is_some_and(|n| *n > failed)
        })
        .await;
    assert_eq!(s.counters.get("log_damaged"), Some(&1), "{s:?}");
    assert!(!s.counters.contains_key("log_read_recovered"), "{s:?}");
    let body = wait_code(http, "/health", 503).await;
    assert!(body.starts_with("damaged log"), "{body}");
    // Its heartbeats say so: the leader refuses to hand leadership to it.
    let mut admin = cluster.client().await;
    transfer_refused(&mut admin).await;

    // The cluster goes on, and the node too: it learns a new value, and the
    // leader's log reads from the start.
    let slot = client.propose("after the damage").await.expect("propose");
    cluster.wait_status(follower, "learns the new value", |s| s.decided > slot).await;
    let page = reader.log(leader, paxos_proto::Slot(0), 1000).await.expect("the leader's log");
    assert_eq!(page.entries.first().map(|e| e.slot), Some(paxos_proto::Slot(0)), "{} entries", page.entries.len());
    assert!(cluster.terminate(follower).await.success(), "a clean stop");
    cluster.stop_all_gracefully().await;
}

/// A read of the decided log that fails for an error that passes (here the first sealed segment
/// moved away while the node runs, so that its open fails, then moved back, as an open that failed
/// once for too many open files would) marks the node damaged as damage does: the read is not
/// answered, `/health` says why, the leader refuses to hand leadership to it. Its next pass, 10 s
/// after the failure, reads the whole log again, and then the node says it is healthy: `/health` 200,
/// `log_read_recovered` 1, one INFO line, its log served, and leadership handed to it. Before, the mark
/// stayed until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_failed_once_is_read_again_and_the_node_recovers() {
    let _serial = serial().await;
    let (mut cluster, https, _, mut client) = sealed_segments_cluster().await;
    let follower = Node::Proposer(NodeId(1));
    // Restarted, it serves its log from the disk, not from the values it learned as it ran (a cache).
    assert!(cluster.terminate(follower).await.success());
    cluster.start(follower);
    cluster.wait_status(follower, "is back", |s| s.decided.0 >= 80).await;
    eventually("its pass after the start ends", || {
        Ok(cluster.log_text(follower).contains("the pass over our decided log found no damage").then_some(()))
    })
    .await;
    let http = &https[&follower];
    wait_code(http, "/health", 200).await;

    let first = cluster.data_dir(follower).join(paxos_storage::LOG_DIR).join("0000000001.wal");
    let away = first.with_extension("away");
    std::fs::rename(&first, &away).expect("move the first segment away");
    let mut reader = cluster.client().await;
    reader.set_timeout(Duration::from_millis(1500));
    match reader.log(NodeId(1), paxos_proto::Slot(0), 1000).await {
        Err(paxos_client::ClientError::Timeout { .. }) => {}
        Err(e) => panic!("a read that fails: {e}"),
        Ok(page) => panic!("a read that fails was answered: {} entries", page.entries.len()),
    }
    let body = wait_damaged(http).await;
    assert!(body.contains("0000000001.wal"), "{body}");
    let s =
        cluster.wait_status(follower, "says its log is damaged", |s| s.counters.get("log_damaged") == Some(&1)).await;
    assert!(!s.counters.contains_key("log_read_recovered"), "{s:?}");
    let mut admin = cluster.client().await;
    transfer_refused(&mut admin).await;
    std::fs::rename(&away, &first).expect("move the first segment back");

    // The retry comes 10 s after the failed read: within the 15 s of the wait.
    wait_code(http, "/health", 200).await;
    let s =
        cluster.wait_status(follower, "counts the recovery", |s| s.counters.contains_key("log_read_recovered")).await;
    assert_eq!(s.counters.get("log_read_recovered"), Some(&1), "{s:?}");
    assert_eq!(s.counters.get("log_damaged"), Some(&0), "{s:?}");
    let log = cluster.log_text(follower);
    let recovered = log.lines().filter(|l| l.contains("the failed read before it did not fail again")).count();
    assert_eq!(recovered, 1, "{log}");
    let page = reader.log(NodeId(1), paxos_proto::Slot(0), 1000).await.expect("its log, served again");
    assert_eq!(page.entries.first().map(|e| e.slot), Some(paxos_proto::Slot(0)));
    // Its next heartbeats no longer say it is damaged: the leader hands leadership to it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match admin.transfer(NodeId(1)).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "a transfer to the recovered proposer: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let slot = client.propose("led by the recovered proposer").await.expect("propose");
    cluster.wait_status(follower, "leads and decides", |s| s.decided > slot && s.leader == Some(NodeId(1))).await;
    cluster.stop_all_gracefully().await;
}

/// Two proposers and three acceptors with HTTP, segments of 64 KiB, and
/// about 320 KiB of values decided (several sealed segments, below the
/// checkpoint) and learned by the follower, proposer 1; returns the leader
/// and the client that proposed them.
async fn sealed_segments_cluster() -> (Cluster, BTreeMap<Node, String>, NodeId, paxos_client::Client) {
    let (mut cluster, https) = cluster_with_http(2, 3, "[log]\nsegment_bytes = 65536\n");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    for i in 0..80 {
        client.propose(format!("{i:03}-{}", "v".repeat(4000))).await.expect("propose");
    }
    let follower = Node::Proposer(NodeId(1));
    assert_ne!(follower, Node::Proposer(leader), "the highest id leads");
    cluster.wait_status(follower, "learns every value", |s| s.decided.0 >= 80).await;
    (cluster, https, leader, client)
}

/// The leader refuses to hand leadership to proposer 1: its heartbeats say
/// it cannot read its decided log.
async fn transfer_refused(admin: &mut paxos_client::Client) {
    match admin.transfer(NodeId(1)).await {
        Err(paxos_client::ClientError::Transfer(e)) => assert!(e.contains("cannot read its decided log"), "{e}"),
        other => panic!("a transfer to the damaged proposer: {other:?}"),
    }
}

/// Zeros over 64 bytes a third of the way into the records of `node`'s first
/// segment, a full and sealed one (`node` is stopped).
fn damage_first_segment(cluster: &Cluster, node: Node) {
    let first = cluster.data_dir(node).join(paxos_storage::LOG_DIR).join("0000000001.wal");
    let mut bytes = std::fs::read(&first).expect("the first segment");
    // Its records, then the zeros preallocated ahead of them: zeros over a third of the way in.
    let end = bytes.iter().rposition(|b| *b != 0).expect("records");
    assert!(end > 60_000, "a full, sealed segment: records up to byte {end}");
    let at = end / 3;
    bytes[at..at + 64].fill(0);
    std::fs::write(&first, &bytes).expect("damage it");
}

/// A leader whose decided log is damaged hands leadership to the other
/// proposer once that one runs, which leads on, and the cluster goes on
/// deciding. Both proposers stop; proposer 2's first segment is damaged;
/// proposer 2 starts alone, finds the damage by its own pass over its log
/// (`/health` says so before anyone reads it), and leads, as no peer could;
/// then proposer 1 starts, and proposer 2 steps aside for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_leader_hands_leadership_over() {
    let _serial = serial().await;
    let (mut cluster, https) = cluster_with_http(2, 3, "[log]\nsegment_bytes = 65536\n");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    assert_eq!(leader, NodeId(2), "the highest id leads");
    let mut client = cluster.client().await;
    for i in 0..80 {
        client.propose(format!("{i:03}-{}", "v".repeat(4000))).await.expect("propose");
    }
    let (p1, p2) = (Node::Proposer(NodeId(1)), Node::Proposer(NodeId(2)));
    cluster.wait_status(p1, "learns every value", |s| s.decided.0 >= 80).await;
    assert!(cluster.terminate(p1).await.success());
    assert!(cluster.terminate(p2).await.success());
    damage_first_segment(&cluster, p2);
    cluster.start(p2);
    // Found at start, before anyone read it.
    wait_damaged(&https[&p2]).await;
    cluster.wait_status(p2, "leads: no peer could", |s| s.role == "leader").await;
    client.propose("while proposer 1 is down").await.expect("propose");

    cluster.start(p1);
    cluster.wait_status(p1, "leads: proposer 2 handed leadership over", |s| s.role == "leader").await;
    cluster.wait_status(p2, "follows", |s| s.role == "follower" && s.leader == Some(NodeId(1))).await;
    let log = cluster.log_text(p2);
    assert!(log.contains("handing leadership over") && !log.contains("panicked"), "{log}");
    let slot = client.propose("after the hand-over").await.expect("propose");
    cluster.wait_status(p2, "learns the new value", |s| s.decided > slot).await;
    // It does not take leadership back while proposer 1 lives.
    let mut admin = cluster.client().await;
    let again = admin.transfer(NodeId(2)).await;
    assert!(matches!(&again, Err(paxos_client::ClientError::Transfer(e)) if e.contains("cannot read")), "{again:?}");
    cluster.stop_all_gracefully().await;
}

/// `--version` prints the binary's name, the crate's version and a commit.
#[test]
fn version_prints_the_version() {
    for (name, bin) in [("paxos-acceptor", acceptor_bin()), ("paxos-proposer", proposer_bin())] {
        let out = Command::new(bin).arg("--version").output().expect("run");
        assert!(out.status.success(), "{name} --version exits 0");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.trim_end(), format!("{name} {}", paxos_version::LONG), "{name}");
    }
}

/// A node whose UDP port or HTTP port is taken stops with exit 1 and one line
/// on stderr that names the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_one_line_and_exit_1() {
    // A port picked free may be taken by someone else before we take it
    // (seen once in CI: AddrInUse here); then pick again.
    let (cluster, udp, taken_udp) = (0..5)
        .find_map(|_| {
            let cluster = Cluster::new(1, 1, "");
            let udp = cluster.config.member(Role::Acceptor, 1).expect("acceptor 1").addr.clone();
            let taken = std::net::UdpSocket::bind(&udp).ok()?;
            Some((cluster, udp, taken))
        })
        .expect("take the node's UDP port (5 tries)");
    let node = Node::Acceptor(NodeId(1));
    let http = format!("127.0.0.1:{}", free_ports(1)[0]);
    let out = cluster.command(node).env("PAXOS_HTTP", &http).stderr(Stdio::piped()).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "UDP port in use: exit 1; {stderr}");
    assert_eq!(stderr.lines().count(), 1, "UDP port in use: one line: {stderr:?}");
    assert!(stderr.contains(&udp) && !stderr.contains("panicked"), "names {udp}: {stderr}");
    drop(taken_udp);

    let taken_http = TcpListener::bind("127.0.0.1:0").expect("take a TCP port");
    let http = taken_http.local_addr().expect("addr").to_string();
    let mut child = cluster.command(node).env("PAXOS_HTTP", &http).stderr(Stdio::piped()).spawn().expect("spawn");
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(1), "HTTP port in use: exit 1; {stderr}");
    assert_eq!(stderr.lines().count(), 1, "HTTP port in use: one line: {stderr:?}");
    assert!(stderr.contains(&http) && stderr.contains("PAXOS_HTTP"), "names {http} and its origin: {stderr}");
}

/// Two decided logs that differ are found by comparing their digests, and
/// said: a cluster decides 16 values and stops; then, as a bug or a memory
/// fault that no checksum catches would, proposer 2 and acceptor 3 each get
/// eight more decided slots, with different values (written through their
/// stores, so every checksum holds). Started again, a proposer finds that a
/// node's log differs from its own: its `/health` says `diverged log` and
/// names the node, `paxos_log_diverged` is 1 or more, and `/ready` stays
/// 200 (the wrong log may be the peer's). A healthy cluster compares
/// digests and finds nothing (`paxos_log_digests_compared_total` moves,
/// `paxos_log_diverged` stays 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_that_diverged_are_found_by_their_digests() {
    use paxos_core::{AcceptorOp, AcceptorState, ProposerOp, ProposerState, Store};
    use paxos_proto::{ClientId, Command, Slot, Value};
    use paxos_storage::FileStore;

    let _serial = serial().await;
    let (mut cluster, https) = cluster_with_http(2, 3, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    for i in 0..16 {
        client.propose(format!("agreed-{i}")).await.expect("propose");
    }
    for node in cluster.nodes() {
        cluster.wait_status(node, "learns all 16", |s| s.decided.0 >= 16).await;
    }
    let leader_http = &https[&Node::Proposer(leader)];
    wait_sample(leader_http, "paxos_log_digests_compared_total", 1.0).await;
    assert_eq!(sample(&get(leader_http, "/metrics").unwrap().1, "paxos_log_diverged"), Some(0.0));
    for (node, addr) in &https {
        assert_eq!(get(addr, "/health").expect("GET /health"), (200, "ok\n".to_owned()), "{node}");
    }
    cluster.stop_all_gracefully().await;

    let forged = |who: &str, slot: u64| {
        Value::Command(Command { client: ClientId(77), seq: slot + 1, data: format!("{who}-{slot}").into(), at: 1 })
    };
    let acceptor = Node::Acceptor(NodeId(3));
    let mut store = FileStore::<AcceptorState>::open(&cluster.data_dir(acceptor), true).expect("open acceptor 3");
    let decided = store.load().expect("load").decided.0;
    for slot in decided..decided + 8 {
        store.apply(&[AcceptorOp::Learn { slot: Slot(slot), value: forged("a", slot) }]).expect("apply");
    }
    drop(store);
    let proposer = Node::Proposer(NodeId(2));
    let mut store = FileStore::<ProposerState>::open(&cluster.data_dir(proposer), true).expect("open proposer 2");
    let decided = store.load().expect("load").log.decided.0;
    for slot in decided..decided + 8 {
        let op = ProposerOp::Learn { slot: Slot(slot), value: forged("p", slot), duplicate: false };
        store.apply(&[op]).expect("apply");
    }
    drop(store);

    cluster.start_all();
    let (addr, why) = eventually("a proposer says that a log diverged", || {
        for p in cluster.proposers.clone() {
            let addr = &https[&Node::Proposer(p)];
            if let Ok((503, body)) = get(addr, "/health") {
                if body.starts_with("diverged log") {
                    return Ok(Some((addr.clone(), body)));
                }
            }
        }
        Ok(None)
    })
    .await;
    println!("{addr}: {why}");
    assert!(why.contains("differs from ours at or before slot") && why.lines().count() == 1, "{why}");
    assert!(why.contains("acceptor-3") || why.contains("proposer-"), "names the node: {why}");
    // Acceptor 3's log differs from proposer 2's whichever log proposer 1 copied, and proposer 2
    // leads (the highest id) and probes it: its probe answers' claims are compared too.
    eventually("a proposer logs that acceptor 3's log differs from its own", || {
        let found = cluster.proposers.iter().any(|p| {
            cluster
                .log_text(Node::Proposer(*p))
                .lines()
                .any(|l| l.contains("differs from ours at or before this slot") && l.contains("peer=acceptor-3"))
        });
        Ok(found.then_some(()))
    })
    .await;
    assert!(wait_sample(&addr, "paxos_log_diverged", 1.0).await >= 1.0);
    assert_eq!(get(&addr, "/ready").expect("GET /ready").0, 200, "still serves");
    // `paxosctl status` names the proposer on stderr (its table and exit code as SPEC has them).
    let out = std::process::Command::new(paxos_testkit::paxosctl_bin())
        .args(["--config", &cluster.path.display().to_string(), "status"])
        .output()
        .expect("run paxosctl status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("differs from its own (their digests)"), "status: {stderr}");
    cluster.stop_all_gracefully().await;
}
