//! Process tests: the real `paxos-acceptor` and `paxos-proposer` binaries on
//! free ports with temporary data dirs, killed and signalled by PID.
//!
//! Readiness is always polled through status requests, never slept for.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxos_client::client::{Client, ClientError};
use paxos_core::{AcceptorOp, AcceptorState, Store};
use paxos_proto::{
    encode, Accept, AcceptEntry, Ballot, ClientId, Command as Cmd, Envelope, Heartbeat, Message, Node, NodeId, Prepare,
    Slot, StatusReply, Value, PROTOCOL_VERSION,
};
use paxos_storage::wal::{HEADER_BYTES, RECORD_HEADER_BYTES};
use paxos_storage::FileStore;
use paxos_testkit::{acceptor_bin, assert_guarantees, free_ports, full_log, proposer_bin, serial, wait_exit, Cluster};

async fn propose_all(client: &mut Client, prefix: &str, n: usize, acked: &mut HashMap<String, Slot>) {
    for i in 0..n {
        let value = format!("{prefix}-{i}");
        let slot = client.propose(value.clone()).await.unwrap_or_else(|e| panic!("propose {value}: {e}"));
        acked.insert(value, slot);
    }
}

async fn status(client: &mut Client, node: Node) -> StatusReply {
    client.status(node).await.unwrap_or_else(|e| panic!("status of {node}: {e}"))
}

// ---- the cluster file -------------------------------------------------------------

/// A bad cluster file (or command line) stops either daemon with exit code 2
/// and exactly one line on stderr naming the file and the key.
#[test]
fn bad_cluster_file_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(3);
    let good = format!(
        "[[proposers]]\nid = 1\naddr = \"127.0.0.1:{}\"\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:{}\"\n",
        ports[0], ports[1]
    );
    std::fs::write(dir.path().join("a-file"), "not a directory").expect("write");
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        (
            "duplicate id",
            format!("{good}[[acceptors]]\nid = 1\naddr = \"127.0.0.1:{}\"\n", ports[2]),
            vec!["--id", "1"],
            "acceptors",
        ),
        ("unknown key", format!("{good}[node]\nfsink = true\n"), vec!["--id", "1"], "node.fsink"),
        ("bad type", format!("{good}[node]\nheartbeat_ms = \"fast\"\n"), vec!["--id", "1"], "node.heartbeat_ms"),
        ("no such member", good.clone(), vec!["--id", "7"], "no acceptor 7 in the file"),
        ("missing id", good.clone(), vec![], "--id"),
        ("not toml", "[[proposers]\nid = ".to_owned(), vec!["--id", "1"], "line 1"),
        // A data dir with a file in its way.
        (
            "data dir a file",
            format!("{good}[node]\ndata_dir = {:?}\n", dir.path().join("a-file").display().to_string()),
            vec!["--id", "1"],
            "node.data_dir: cannot use",
        ),
        // On an empty data dir the file's acceptors start the cluster: an even set cannot.
        (
            "even acceptors",
            format!(
                "{good}[[acceptors]]\nid = 2\naddr = \"127.0.0.1:{}\"\n[node]\ndata_dir = {:?}\n",
                ports[2],
                dir.path().join("even-data").display().to_string()
            ),
            vec!["--id", "1"],
            "acceptors: 2 acceptors: an even acceptor count",
        ),
    ];
    for (what, text, args, key) in cases {
        let path = dir.path().join(format!("{}.toml", what.replace(' ', "-")));
        std::fs::write(&path, text).expect("write");
        for bin in [acceptor_bin(), proposer_bin()] {
            let key =
                if key.starts_with("no acceptor") && bin == proposer_bin() { "no proposer 7 in the file" } else { key };
            let out = Command::new(&bin)
                .arg("--config")
                .arg(&path)
                .args(&args)
                .env_remove("PAXOS_ID")
                .env("RUST_BACKTRACE", "1")
                .output()
                .expect("run the daemon");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} ({}): exit code 2; stderr: {stderr}", bin.display());
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what} ({}): exactly one line, got {stderr:?}", bin.display());
            assert!(lines[0].contains(&path.display().to_string()), "{what}: names the file: {stderr}");
            assert!(lines[0].contains(key), "{what}: names {key:?}: {stderr}");
            assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{what}: no panic: {stderr}");
        }
    }
    // A file that does not exist.
    let missing = dir.path().join("missing.toml");
    let out = Command::new(acceptor_bin()).arg("--config").arg(&missing).args(["--id", "1"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.toml") && stderr.contains("no such file"), "{stderr}");
    // A mistake of the command line itself: one line too, pointing to --help.
    for (args, names) in [(&["--id", "x"][..], "--id"), (&["--id", "1", "--log-format", "xml"], "--log-format")] {
        for bin in [acceptor_bin(), proposer_bin()] {
            let out = Command::new(&bin).arg("--config").arg(&missing).args(args).output().expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
            assert!(stderr.contains(names) && stderr.contains("--help"), "{args:?}: {stderr}");
        }
    }
}

/// `fsync = false` is announced in the start-up line; `--log-format json`
/// writes JSON lines; SIGTERM stops the node with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_false_is_announced_json_logs_and_sigterm_exits_0() {
    let _serial = serial().await;
    let cluster = Cluster::new(1, 1, "fsync = false");
    let node = Node::Acceptor(NodeId(1));
    let mut cmd = cluster.command(node);
    cmd.arg("--log-format").arg("json");
    let mut child = cmd.spawn().expect("spawn");
    cluster.wait_status(node, "answers", |_| true).await;
    paxos_testkit::signal(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    let log = cluster.log_text(node);
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    let started =
        lines.iter().find(|l| l["fields"]["message"] == "started").unwrap_or_else(|| panic!("a start-up line: {log}"));
    let fsync = started["fields"]["fsync"].as_str().unwrap_or_default();
    assert!(fsync.starts_with("false (benchmarks only"), "the start-up line says fsync is off: {started}");
    for field in ["node", "role", "addr", "data_dir", "promised", "accepted", "decided", "epoch", "incarnation"] {
        assert!(!started["fields"][field].is_null(), "the start-up line has {field}: {started}");
    }
    assert!(lines.iter().any(|l| l["fields"]["message"] == "stopped"), "logs its stop: {log}");

    // SIGHUP (the terminal closed) stops it the same way, not by the default action (exit 129, no stop line).
    let mut child = cluster.command(node).spawn().expect("spawn");
    cluster.wait_status(node, "answers again", |_| true).await;
    paxos_testkit::signal(child.id(), libc::SIGHUP);
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "SIGHUP exits 0: {status:?}");
    let stops = cluster.log_text(node).lines().filter(|l| l.contains("\"stopped\"") || l.contains(" stopped")).count();
    assert_eq!(stops, 2, "logs its second stop: {}", cluster.log_text(node));
    drop(cluster);
}

/// Structured logs are queryable: across every event of every node (a
/// start, an election, values, a leader killed and replaced, an acceptor
/// failed and recovered, a stop), each field has one JSON type, `node` is
/// always a name like `proposer-1`, and slots, epochs and leaders are numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_fields_have_one_name_and_one_type() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    let json = |c: &mut Command| {
        c.arg("--log-format").arg("json").env("RUST_LOG", "debug");
    };
    for node in cluster.nodes() {
        cluster.start_with(node, json);
    }
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "a", 20, &mut acked).await;
    cluster.kill9(Node::Proposer(leader)).await;
    cluster.start_with(Node::Proposer(leader), json);
    let a3 = Node::Acceptor(NodeId(3));
    cluster.signal(a3, libc::SIGUSR1);
    propose_all(&mut client, "b", 20, &mut acked).await;
    cluster.signal(a3, libc::SIGUSR2);
    propose_all(&mut client, "c", 20, &mut acked).await;
    cluster.stop_all_gracefully().await;

    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    };
    // field -> type -> the first line that used it with that type
    let mut types: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
    for node in cluster.nodes() {
        for line in cluster.log_text(node).lines() {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{node}: not a JSON line ({e}): {line}"));
            let fields = event["fields"].as_object().unwrap_or_else(|| panic!("{node}: no fields: {line}"));
            for (name, value) in fields {
                types.entry(name.clone()).or_default().entry(kind(value)).or_insert_with(|| line.to_owned());
            }
            if let Some(name) = fields.get("node") {
                let name = name.as_str().unwrap_or_default();
                let (role, id) = name.split_once('-').unwrap_or_default();
                assert!(
                    ["proposer", "acceptor"].contains(&role) && id.parse::<u32>().is_ok(),
                    "{node}: node is {name:?}, not a node's name: {line}"
                );
            }
        }
    }
    for (name, by_type) in &types {
        assert_eq!(by_type.len(), 1, "field {name} has {} types: {by_type:#?}", by_type.len());
    }
    for name in ["slot", "decided", "epoch", "leader", "round"] {
        if let Some(by_type) = types.get(name) {
            assert!(by_type.contains_key("number"), "{name} is not a number: {by_type:#?}");
        }
    }
    for name in ["node", "slot", "decided", "epoch", "leader", "ballot"] {
        assert!(types.contains_key(name), "no event had {name}; the run did not exercise what it should");
    }
}

/// A data dir whose log is damaged in its middle is refused: exit 1 and one
/// error line that names the file and the offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_data_dir_is_refused() {
    let cluster = Cluster::new(1, 1, "");
    let data_dir = cluster.config.data_dir_for(paxos_client::config::Role::Acceptor, 1).expect("data dir");
    let mut store = FileStore::<AcceptorState>::open(&data_dir, true).expect("open");
    let b = Ballot::new(3, NodeId(1));
    store.apply(&[AcceptorOp::Promise(b)]).expect("apply");
    for slot in 0..5 {
        let value = Value::Command(Cmd::new(ClientId(1), slot + 1, format!("v{slot}")));
        store.apply(&[AcceptorOp::Accept { slot: Slot(slot), ballot: b, value }]).expect("apply");
    }
    drop(store);
    let wal = data_dir.join(paxos_storage::LOG_DIR).join("0000000001.wal");
    let mut bytes = std::fs::read(&wal).expect("read");
    let len = u32::from_le_bytes(bytes[HEADER_BYTES..HEADER_BYTES + 4].try_into().unwrap()) as usize;
    let second = HEADER_BYTES + RECORD_HEADER_BYTES + len;
    bytes[second + RECORD_HEADER_BYTES + 2] ^= 0x40;
    std::fs::write(&wal, bytes).expect("write");

    let out = cluster.command(Node::Acceptor(NodeId(1))).stderr(std::process::Stdio::piped()).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refuses to start: {stderr}");
    let line = stderr.lines().find(|l| l.contains("ERROR")).unwrap_or_else(|| panic!("an error line: {stderr}"));
    assert!(line.contains(&wal.display().to_string()), "names the file: {line}");
    assert!(line.contains(&format!("offset {second}")), "names the offset: {line}");
    assert!(line.contains("corrupt"), "says what is wrong: {line}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
}

// ---- crashes and signals -------------------------------------------------------------

/// Several clients propose concurrently; the leader is killed with SIGKILL
/// mid-way; the other proposer takes over; no acknowledged value is lost,
/// moved or duplicated, and the restarted proposer catches up to the same log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_loses_and_duplicates_nothing() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 5, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    assert_eq!(leader, NodeId(2), "the highest id leads");
    let mut admin = cluster.client().await;
    let before_kill = status(&mut admin, Node::Proposer(leader)).await;

    const CLIENTS: usize = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = cluster.client().await;
        client.set_timeout(Duration::from_secs(5));
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut failed = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("c{c}-v{i}");
                i += 1;
                match client.propose(value.clone()).await {
                    Ok(slot) => acked.push((value, slot, Instant::now())),
                    Err(ClientError::Timeout { .. }) => failed.push(value),
                    Err(e) => panic!("client {c}: {e}"),
                }
            }
            (acked, failed)
        }));
    }
    // Let the load build up, then crash the leader.
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill9(Node::Proposer(leader)).await;
    let killed_at = Instant::now();
    // Keep proposing through the survivor until it has served a good while.
    let survivor = NodeId(1);
    cluster.wait_status(Node::Proposer(survivor), "takes over", |s| s.role == "leader").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashMap::new();
    let mut after_kill = 0;
    let mut unknown = 0;
    for t in tasks {
        let (a, f) = t.await.expect("client task");
        unknown += f.len();
        for (value, slot, at) in a {
            if at > killed_at {
                after_kill += 1;
            }
            acked.insert(value, slot);
        }
    }
    assert!(acked.len() > 50, "the load got through: {} acknowledged", acked.len());
    assert!(after_kill > 10, "values were acknowledged after the leader died: {after_kill}");

    let log1 = full_log(&mut admin, survivor).await;
    assert_guarantees(&[("survivor", &log1)], &acked);
    eprintln!(
        "{} acknowledged ({after_kill} after the kill), {unknown} timed out, log of {} slots",
        acked.len(),
        log1.len()
    );

    // The old leader restarts from its data dir, keeps its ballot rounds and
    // catches up as a follower: a healthy leader is not preempted. Handed
    // leadership on purpose, it leads with a round it never used before.
    cluster.start(Node::Proposer(leader));
    let decided = Slot(log1.len() as u64);
    cluster
        .wait_status(Node::Proposer(leader), "catches up and follows", |s| {
            s.decided >= decided && s.role == "follower" && s.leader == Some(survivor)
        })
        .await;
    admin.transfer(leader).await.expect("the survivor hands leadership back");
    let back = cluster.wait_status(Node::Proposer(leader), "leads again", |s| s.role == "leader").await;
    assert!(back.ballot.round > before_kill.ballot.round, "a restarted proposer never reuses a ballot round");
    propose_all(&mut admin, "after-restart", 20, &mut acked).await;
    let needed = Slot(acked.values().map(|s| s.0 + 1).max().unwrap_or(0));
    for p in [survivor, leader] {
        cluster.wait_status(Node::Proposer(p), "learned every acknowledged value", |s| s.decided >= needed).await;
    }
    let log1 = full_log(&mut admin, survivor).await;
    let log2 = full_log(&mut admin, leader).await;
    assert!(log1.len().min(log2.len()) as u64 >= needed.0);
    assert_guarantees(&[("survivor", &log1), ("restarted leader", &log2)], &acked);
    cluster.stop_all_gracefully().await;
}

/// An acceptor killed with SIGKILL restarts from its data dir with its
/// promise and votes, and is then needed for a quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptor_killed_and_restarted_recovers_its_state() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 5, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "first", 30, &mut acked).await;

    let a3 = Node::Acceptor(NodeId(3));
    let before = cluster.wait_status(a3, "accepted the first values", |s| s.decided.0 >= 30).await;
    cluster.kill9(a3).await;
    propose_all(&mut client, "while-down", 20, &mut acked).await;

    cluster.start(a3);
    let after = cluster.wait_status(a3, "answers after restart", |_| true).await;
    assert_eq!(after.ballot, before.ballot, "the promise survived the crash");
    assert!(after.decided >= before.decided, "the accepted slots survived the crash");
    assert!(!after.failed);

    // With two other acceptors gone, no quorum forms without the restarted one.
    cluster.kill9(Node::Acceptor(NodeId(4))).await;
    cluster.kill9(Node::Acceptor(NodeId(5))).await;
    propose_all(&mut client, "needs-a3", 20, &mut acked).await;
    let a3_status = status(&mut client, a3).await;
    assert!(a3_status.decided.0 >= 70, "the restarted acceptor votes: {a3_status:?}");
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);
    cluster.stop_all_gracefully().await;
}

/// SIGUSR1 fails two acceptors (they answer status as failed, ignore the
/// rest); the cluster still decides with three; failing a third stops it;
/// SIGUSR2 recovers and the stalled value is decided promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_fails_and_sigusr2_recovers_acceptors() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 5, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "before", 10, &mut acked).await;

    let (a1, a2, a3) = (Node::Acceptor(NodeId(1)), Node::Acceptor(NodeId(2)), Node::Acceptor(NodeId(3)));
    for a in [a1, a2] {
        cluster.signal(a, libc::SIGUSR1);
    }
    let failed1 = cluster.wait_status(a1, "is failed", |s| s.failed).await;
    cluster.wait_status(a2, "is failed", |s| s.failed).await;
    propose_all(&mut client, "two-failed", 30, &mut acked).await;
    let still = status(&mut client, a1).await;
    assert!(still.failed);
    assert_eq!(still.decided, failed1.decided, "a failed acceptor accepts nothing");
    assert!(still.counters.get("dropped.failed").copied().unwrap_or(0) > 0, "it drops what it gets: {still:?}");

    // A third failure leaves no quorum: nothing is decided.
    cluster.signal(a3, libc::SIGUSR1);
    cluster.wait_status(a3, "is failed", |s| s.failed).await;
    let mut stalled = cluster.client().await;
    stalled.set_timeout(Duration::from_millis(800));
    match stalled.propose("stalled").await {
        Err(ClientError::Timeout { .. }) => {}
        other => panic!("no quorum, no decision: {other:?}"),
    }
    // Recover one: the same request (same client, same seq... a new one here)
    // is decided well within 2 s.
    let mut pending = cluster.client().await;
    pending.set_timeout(Duration::from_secs(10));
    let waiter = tokio::spawn(async move {
        let slot = pending.propose("after-heal").await;
        (slot, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.signal(a3, libc::SIGUSR2);
    let healed_at = Instant::now();
    let (slot, decided_at) = waiter.await.expect("task");
    let slot = slot.expect("decided once a quorum is back");
    assert!(decided_at.duration_since(healed_at) < Duration::from_secs(2), "decided within 2 s of healing");
    acked.insert("after-heal".into(), slot);

    for a in [a1, a2] {
        cluster.signal(a, libc::SIGUSR2);
    }
    for a in [a1, a2, a3] {
        cluster.wait_status(a, "recovered", |s| !s.failed).await;
    }
    propose_all(&mut client, "all-back", 10, &mut acked).await;
    let a1_back = cluster.wait_status(a1, "votes again", |s| s.decided > failed1.decided).await;
    assert!(!a1_back.failed);
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);
    // The value proposed without a quorum may be decided later, but at most once.
    assert!(log.iter().filter(|e| e.value.as_deref() == Some("stalled")).count() <= 1);
    cluster.stop_all_gracefully().await;
}

/// Garbage of every kind sent to every node: each datagram is dropped and
/// counted, no node crashes or changes its state, and the cluster goes on.
/// With `[auth]`, a member's message without the peer key's MAC is forged
/// (`dropped.auth`) from any address; one signed by a member from another
/// member's address is still refused (`dropped.sender`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_change_nothing() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 5, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "before", 20, &mut acked).await;
    let mut before = BTreeMap::new();
    for node in cluster.nodes() {
        before.insert(node, status(&mut client, node).await);
    }

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let huge = Ballot::new(1 << 40, NodeId(1));
    let keys = cluster.peer_keys();
    let signed = |mut datagram: Vec<u8>| {
        keys.sign(&mut datagram);
        datagram
    };
    let envelope = |cluster_name: &str, version: u16, from: Node, to: Node, msg: Message| {
        let env = Envelope { version, cluster: cluster_name.into(), from, to, msg };
        let mut buf = Vec::new();
        encode(&env, &mut buf).expect("encode");
        buf
    };
    let mut sent: BTreeMap<Node, Vec<&str>> = BTreeMap::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for node in cluster.nodes() {
        let addr = match node {
            Node::Proposer(id) => {
                cluster.config.member(paxos_client::config::Role::Proposer, id.0).unwrap().addr.clone()
            }
            Node::Acceptor(id) => {
                cluster.config.member(paxos_client::config::Role::Acceptor, id.0).unwrap().addr.clone()
            }
            Node::Client(_) => unreachable!(),
        };
        // A message that would change state if it were believed.
        let forged_msg = match node {
            Node::Acceptor(_) => Message::Prepare(Prepare { ballot: huge, from: Slot(0), epoch: None, wrote: vec![] }),
            _ => Message::Heartbeat(Heartbeat {
                ballot: huge,
                leader: true,
                decided: Slot(0),
                known: Slot(0),
                damaged: false,
                written: vec![],
                digest: None,
            }),
        };
        let mut datagrams: Vec<(&str, Vec<u8>)> = Vec::new();
        for _ in 0..20 {
            let len = (seed % 300) as usize + 1;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            datagrams.push(("dropped.malformed", bytes));
        }
        let valid = envelope("test", PROTOCOL_VERSION, Node::Proposer(NodeId(1)), node, forged_msg.clone());
        datagrams.push(("dropped.malformed", valid[..valid.len() / 2].to_vec()));
        datagrams.push(("dropped.version", envelope("test", 99, Node::Proposer(NodeId(1)), node, forged_msg.clone())));
        datagrams.push((
            "dropped.cluster",
            envelope("other", PROTOCOL_VERSION, Node::Proposer(NodeId(1)), node, forged_msg.clone()),
        ));
        datagrams.push(("dropped.auth", valid.clone()));
        let mut bad_mac = signed(valid.clone());
        let last = bad_mac.len() - 1;
        bad_mac[last] = if bad_mac[last] == b'0' { b'1' } else { b'0' };
        datagrams.push(("dropped.auth", bad_mac));
        datagrams.push(("dropped.sender", signed(valid.clone())));
        // Signed with the peer key, a member we do not know is believed to be
        // one added since (its address is learned); what it sends is then up to the role.
        datagrams.push((
            "dropped.ignored",
            signed(envelope("test", PROTOCOL_VERSION, Node::Acceptor(NodeId(9)), node, forged_msg.clone())),
        ));
        datagrams.push((
            "dropped.receiver",
            envelope("test", PROTOCOL_VERSION, Node::Client(ClientId(5)), Node::Acceptor(NodeId(42)), forged_msg),
        ));
        // The largest datagram UDP carries, with a value far above the limit.
        let big = Message::Accept(Accept {
            ballot: huge,
            entries: vec![AcceptEntry {
                slot: Slot(0),
                value: Value::Command(Cmd::new(ClientId(1), 1, "x".repeat(60_000))),
            }],
            commit: Slot(0),
        });
        datagrams.push(("dropped.invalid", envelope("test", PROTOCOL_VERSION, Node::Client(ClientId(5)), node, big)));
        // Well formed, from a client, but not a message a client may send.
        let not_for_clients = Message::Accept(Accept { ballot: huge, entries: vec![], commit: Slot(0) });
        datagrams.push((
            "dropped.ignored",
            envelope("test", PROTOCOL_VERSION, Node::Client(ClientId(5)), node, not_for_clients),
        ));
        for (kind, bytes) in &datagrams {
            socket.send_to(bytes, &addr).expect("send garbage");
            sent.entry(node).or_default().push(kind);
        }
    }

    for node in cluster.nodes() {
        let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
        for kind in &sent[&node] {
            *expected.entry(kind).or_default() += 1;
        }
        let counted = |s: &StatusReply| {
            expected.iter().all(|(k, n)| {
                let was = before[&node].counters.get(*k).copied().unwrap_or(0);
                s.counters.get(*k).copied().unwrap_or(0) >= was + n
            })
        };
        let after = cluster.wait_status(node, "counts every garbage datagram", counted).await;
        assert!(!after.failed);
        if let Node::Acceptor(_) = node {
            assert_eq!(after.ballot, before[&node].ballot, "{node}: a forged prepare promised nothing");
        } else {
            assert!(after.ballot.round < huge.round, "{node}: a forged heartbeat changed nothing");
        }
    }
    // Everyone is still up, the old values are intact, and new ones are decided.
    propose_all(&mut client, "after", 20, &mut acked).await;
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);
    let status_leader = status(&mut client, Node::Proposer(leader)).await;
    assert_eq!(status_leader.role, "leader");
    assert_eq!(status_leader.ballot, before[&Node::Proposer(leader)].ballot, "no election was caused");

    // A client proposal that is too large is answered with an error, not dropped.
    let mut raw_client = cluster.client().await;
    let err = raw_client.propose("y".repeat(9000)).await.expect_err("too large");
    assert!(matches!(err, ClientError::ValueTooLarge { .. }), "{err}");
    cluster.stop_all_gracefully().await;
}

/// Members written as host names are resolved (by the daemons and the client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_are_resolved() {
    let _serial = serial().await;
    let mut cluster = Cluster::with_host(2, 3, "", "localhost");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "named", 20, &mut acked).await;
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);
    cluster.stop_all_gracefully().await;
}

/// Polls `node`'s log until it holds `text`, for at most 30 s.
async fn wait_log(cluster: &Cluster, node: Node, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.log_text(node).contains(text) {
        assert!(Instant::now() < deadline, "{node} never logged {text:?}: {}", cluster.log_text(node));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cluster file names the first configuration only: a file rewritten
/// with another address for a member over existing data dirs is not what
/// the log decided. The node that moved and the peers that read the new
/// file each say so in one warning, naming both addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_moves_a_member_of_the_log_is_warned_about() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    cluster.stop_all_gracefully().await;

    let a3 = Node::Acceptor(NodeId(3));
    let old = cluster.config.member(paxos_client::config::Role::Acceptor, 3).expect("acceptor 3").addr.clone();
    let new = format!("127.0.0.1:{}", free_ports(1)[0]);
    let text = std::fs::read_to_string(&cluster.path).expect("the cluster file");
    std::fs::write(&cluster.path, text.replace(&format!("\"{old}\""), &format!("\"{new}\""))).expect("rewrite it");
    for node in cluster.nodes() {
        cluster.start(node);
    }
    wait_log(&cluster, a3, "this node's address in the configuration the log decided is not the cluster file's").await;
    wait_log(&cluster, Node::Proposer(NodeId(1)), "the cluster file gives this member another address").await;
    for node in cluster.nodes() {
        let log = cluster.log_text(node);
        let warned: Vec<&str> = log.lines().filter(|l| l.contains("configuration the log decided")).collect();
        if node == a3 {
            assert_eq!(warned.len(), 1, "{node} warns once: {log}");
        } else {
            // Every peer of acceptor 3 (the acceptors too) hears of it once, and of no one else.
            assert_eq!(warned.len(), 1, "{node} warns once, about acceptor 3: {log}");
            assert!(warned[0].contains("peer=acceptor-3"), "about acceptor 3: {}", warned[0]);
        }
        assert!(warned[0].contains(&old) && warned[0].contains(&new), "names both addresses: {}", warned[0]);
    }
    cluster.stop_all_gracefully().await;
}

/// A second node started on a data dir that a running node has open (the
/// same id twice, another address) is refused: exit 1, one line saying so;
/// the running node goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_data_dir_in_use_is_refused() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    let a1 = Node::Acceptor(NodeId(1));
    cluster.start(a1);
    cluster.wait_status(a1, "answers", |_| true).await;
    let mut twin = cluster.command(a1);
    twin.arg("--listen").arg(format!("127.0.0.1:{}", free_ports(1)[0]));
    let mut child = twin.spawn().expect("spawn");
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(1), "refused with exit 1");
    let log = cluster.log_text(a1);
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("another process has this data dir open")).collect();
    assert_eq!(refused.len(), 1, "one line: {log}");
    cluster.wait_status(a1, "the first still answers", |s| !s.failed).await;
    cluster.stop_all_gracefully().await;
}

/// Membership may leave a running cluster with an even acceptor set, and a
/// file kept up to date then names it: nodes whose logs hold a configuration
/// restart on it (only a new cluster's first configuration must be odd), and
/// so do an acceptor and a proposer that lost their data dirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_an_even_set_restarts_a_running_cluster() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    propose_all(&mut client, "before", 5, &mut acked).await;
    cluster.stop_all_gracefully().await;

    let text = std::fs::read_to_string(&cluster.path).expect("the cluster file");
    let extra = format!("[[acceptors]]\nid = 4\naddr = \"127.0.0.1:{}\"\n", free_ports(1)[0]);
    std::fs::write(&cluster.path, text.replacen("[auth]", &format!("{extra}[auth]"), 1)).expect("rewrite it");
    assert_eq!(
        paxos_client::config::ClusterConfig::load_with_env(&cluster.path, Vec::<(String, String)>::new())
            .expect("loads")
            .acceptors
            .len(),
        4,
        "the file names an even set"
    );
    for node in cluster.nodes() {
        cluster.start(node);
    }
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    propose_all(&mut client, "after", 5, &mut acked).await;
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);

    // A member that lost its data dir restarts with that file too: an empty
    // log cannot tell a new cluster from a running one, so it asks its
    // peers, finds the running cluster, and rebuilds as with an odd set.
    let a2 = Node::Acceptor(NodeId(2));
    cluster.kill9(a2).await;
    std::fs::remove_dir_all(cluster.data_dir(a2)).expect("delete acceptor 2's data dir");
    cluster.start(a2);
    let up = cluster.wait_status(a2, "rebuilt and let in again", |s| s.state == "up").await;
    assert!(up.epoch >= 2, "a configuration pinned its new incarnation: {up:?}");
    assert!(cluster.log_text(a2).contains("but a member runs a cluster"), "{}", cluster.log_text(a2));
    // So does the proposer, which copies the decided log back from the acceptors.
    let p1 = Node::Proposer(leader);
    cluster.kill9(p1).await;
    std::fs::remove_dir_all(cluster.data_dir(p1)).expect("delete the proposer's data dir");
    cluster.start(p1);
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    propose_all(&mut client, "after-loss", 5, &mut acked).await;
    let log = full_log(&mut client, leader).await;
    assert_guarantees(&[("leader", &log)], &acked);

    // A new node the file does not name joins with that file too (it waits to be added).
    let a5 = Node::Acceptor(NodeId(5));
    cluster.start_listening(a5, &format!("127.0.0.1:{}", free_ports(1)[0]));
    // It gets past the check that refuses an even first configuration (which comes before "started").
    wait_log(&cluster, a5, "started").await;
    assert!(!cluster.log_text(a5).contains("even acceptor count"), "{}", cluster.log_text(a5));
    cluster.stop_all_gracefully().await;
}

/// A new cluster needs more than a majority of its acceptors to start (its
/// first configuration pins their incarnations): with fewer, the proposer
/// says so in one warning, naming how many answer and how many it needs,
/// and starts once enough do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_short_of_acceptors_says_why_it_does_not_start() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    let p1 = Node::Proposer(NodeId(1));
    for node in [p1, Node::Acceptor(NodeId(1)), Node::Acceptor(NodeId(2))] {
        cluster.start(node);
    }
    wait_log(&cluster, p1, "cannot campaign").await;
    let log = cluster.log_text(p1);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("cannot campaign")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("answering=2") && lines[0].contains("quorum=3"), "{}", lines[0]);
    assert!(lines[0].contains("first configuration"), "{}", lines[0]);
    cluster.start(Node::Acceptor(NodeId(3)));
    let leader = cluster.wait_ready().await;
    assert_eq!(leader, NodeId(1));
    cluster.stop_all_gracefully().await;
}

/// A data dir copied from another acceptor is refused: exit 2, one line
/// naming the node it belongs to; the node it belongs to restarts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_copied_from_another_node_is_refused() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    cluster.stop_all_gracefully().await;
    let (a1, a2) = (Node::Acceptor(NodeId(1)), Node::Acceptor(NodeId(2)));
    let (from, to) = (cluster.data_dir(a1), cluster.data_dir(a2));
    std::fs::remove_dir_all(&to).expect("remove acceptor 2's data dir");
    let status = std::process::Command::new("cp").arg("-a").arg(&from).arg(&to).status().expect("cp");
    assert!(status.success());

    let mut child = cluster.command(a2).spawn().expect("spawn");
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;

    assert_eq!(status.code(), Some(2), "refused with exit 2");
    let log = cluster.log_text(a2);
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("this data dir is acceptor-1's")).collect();
    assert_eq!(refused.len(), 1, "one line: {log}");
    assert!(refused[0].contains("not acceptor-2's"), "{log}");
    cluster.start(a1);
    cluster.wait_status(a1, "acceptor 1 restarts on its own data dir", |s| !s.failed).await;
    cluster.stop_all_gracefully().await;
}

/// A key file any user may read is warned about, once, naming the file and
/// its mode; one only its owner reads is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_others_may_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 3, "");
    let (a1, a2) = (Node::Acceptor(NodeId(1)), Node::Acceptor(NodeId(2)));
    cluster.start(a1);
    cluster.wait_status(a1, "answers", |_| true).await;
    let key = cluster.dir().join("peer.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    cluster.start(a2);
    cluster.wait_status(a2, "answers", |_| true).await;

    let warned = |node| {
        let log = cluster.log_text(node);
        log.lines().filter(|l| l.contains("a key file any user may read")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(warned(a1).len(), 0, "0600: {}", cluster.log_text(a1));
    let lines = warned(a2);
    assert_eq!(lines.len(), 1, "{}", cluster.log_text(a2));
    assert!(lines[0].contains("peer.key") && lines[0].contains("644"), "{}", lines[0]);
    cluster.stop_all_gracefully().await;
}

/// A daemon whose stderr is a pipe nobody reads any more (started as
/// `paxos-acceptor ... 2>&1 | logger`, and the logger died) goes on serving,
/// fails and recovers on its signals, and stops on SIGTERM with exit 0.
/// Before, its first log line after the reader went away panicked it (exit
/// 101: the tracing subscriber reported the failed write with `eprintln!`,
/// which panics on the same broken pipe), or left it hung in its stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_log_pipe_closed_serves_and_stops_cleanly() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(1, 1, "");
    let a1 = Node::Acceptor(NodeId(1));
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    cluster.start_with(a1, move |cmd| {
        cmd.stderr(writer);
    });
    cluster.start(Node::Proposer(NodeId(1)));
    cluster.wait_ready().await;
    cluster.signal(a1, libc::SIGUSR1);
    cluster.wait_status(a1, "failed by signal", |s| s.failed).await;
    cluster.signal(a1, libc::SIGUSR2);
    cluster.wait_status(a1, "recovered by signal", |s| !s.failed).await;
    let status = cluster.terminate(a1).await;
    assert!(status.success(), "SIGTERM stops it with exit 0: {status:?}");
    cluster.stop_all_gracefully().await;
}
