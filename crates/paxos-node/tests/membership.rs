//! Disks die and machines move, on real daemons: an acceptor whose data dir
//! is deleted under load rebuilds itself and votes again; proposers that lose
//! their data dirs copy the log back from the acceptors; acceptors are added
//! and removed under load, then the old ones are killed, and the new ones decide.
//! After each, every acknowledged value is at its instance in every log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxos_client::client::Client;
use paxos_client::config::ClusterConfig;
use paxos_proto::{MemberOp, MemberRole, Node, NodeId, Slot};
use paxos_testkit::{assert_guarantees, free_ports, full_log, serial, Cluster};
use tokio::task::JoinHandle;

/// One client of the load: what it had acknowledged, and its worst latency.
type Load = JoinHandle<(Vec<(String, Slot)>, Duration)>;

/// Clients proposing unique values until `stop`; each returns what was acknowledged, with the worst latency.
fn load(config: &ClusterConfig, clients: usize, stop: &Arc<AtomicBool>) -> Vec<Load> {
    (0..clients)
        .map(|c| {
            let config = config.clone();
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let mut client = Client::new(&config).await.expect("client");
                client.set_retry(Duration::from_millis(200));
                client.set_timeout(Duration::from_secs(10));
                let mut acked = Vec::new();
                let mut worst = Duration::ZERO;
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let value = format!("c{c}-v{i}");
                    let started = Instant::now();
                    if let Ok(slot) = client.propose(value.clone()).await {
                        worst = worst.max(started.elapsed());
                        acked.push((value, slot));
                    }
                    i += 1;
                }
                (acked, worst)
            })
        })
        .collect()
}

/// Stops the load and gathers every acknowledgement, and the worst latency seen.
async fn finish(stop: &Arc<AtomicBool>, tasks: Vec<Load>) -> (HashMap<String, Slot>, Duration) {
    stop.store(true, Ordering::SeqCst);
    let mut acked = HashMap::new();
    let mut worst = Duration::ZERO;
    for t in tasks {
        let (values, w) = t.await.expect("a load task");
        worst = worst.max(w);
        acked.extend(values);
    }
    (acked, worst)
}

/// Every acknowledged value is at its instance in the log of every proposer named.
async fn check_logs(config: &ClusterConfig, proposers: &[NodeId], acked: &HashMap<String, Slot>) {
    let mut client = Client::new(config).await.expect("client");
    client.set_timeout(Duration::from_secs(10));
    let mut logs = Vec::new();
    for p in proposers {
        logs.push((format!("proposer {p}"), full_log(&mut client, *p).await));
    }
    let refs: Vec<(&str, &[paxos_proto::LogEntry])> = logs.iter().map(|(n, l)| (n.as_str(), l.as_slice())).collect();
    assert_guarantees(&refs, acked);
}

/// The rebuilt acceptor 3 counts: with acceptor 1 killed, 2 and 3 are the
/// majority, and 20 more values are decided (added to `acked`).
async fn rebuilt_3_counts(cluster: &mut Cluster, acked: &mut HashMap<String, Slot>) {
    cluster.kill9(Node::Acceptor(NodeId(1))).await;
    let mut client = cluster.client().await;
    for i in 0..20 {
        let v = format!("after-{i}");
        let slot = client.propose(v.clone()).await.expect("decided by acceptors 2 and the rebuilt 3");
        acked.insert(v, slot);
    }
}

/// An acceptor's data dir is deleted under load: it comes back with another
/// incarnation, says `rebuilding`, copies the decided log, is let in again
/// (`up`), and then counts: with another acceptor killed, the cluster still decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptor_that_lost_its_disk_rebuilds_and_votes_again() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&cluster.config, 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let victim = Node::Acceptor(NodeId(3));
    cluster.kill9(victim).await;
    std::fs::remove_dir_all(cluster.data_dir(victim)).expect("delete the data dir");
    cluster.start(victim);
    let rebuilding = cluster.wait_status(victim, "answers again", |_| true).await;
    assert_ne!(rebuilding.state, "", "an acceptor says what it is doing");
    let up = cluster.wait_status(victim, "rebuilt and let in again", |s| s.state == "up").await;
    assert!(up.epoch >= 2, "a configuration pinned its new incarnation: {up:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut acked, _) = finish(&stop, tasks).await;

    rebuilt_3_counts(&mut cluster, &mut acked).await;
    assert!(acked.len() > 20, "load was acknowledged meanwhile: {}", acked.len());
    check_logs(&cluster.config, &cluster.proposers.clone(), &acked).await;
    cluster.stop_all_gracefully().await;
}

/// Copies directory `from` into `to` (which must not exist), files and folders.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the data dir") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// An acceptor's data dir is rolled back to an older copy of itself (a
/// backup restored, a snapshot of the volume): it holds less than it had
/// synced and answered about, as the same incarnation, with nothing on its
/// own disk to tell. The leader's probes send back what its answers said it
/// had written; it finds that it holds less, becomes a new incarnation
/// (counter `writes_lost`), rebuilds and is let in again, and then counts.
/// Before, it voted on with what it forgot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptor_rolled_back_to_an_older_copy_rebuilds_and_votes_again() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let victim = Node::Acceptor(NodeId(3));
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    for i in 0..20 {
        let v = format!("before-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided"));
    }
    // A consistent copy: taken while the acceptor is stopped.
    assert!(cluster.terminate(victim).await.success(), "a graceful stop");
    let backup = tempfile::tempdir().expect("tempdir");
    let copy = backup.path().join("copy");
    copy_dir(&cluster.data_dir(victim), &copy);
    cluster.start(victim);
    let before = cluster.wait_status(victim, "votes again", |s| s.state == "up").await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&cluster.config, 4, &stop);
    // It votes on what comes, and the leader hears how much it wrote.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cluster.kill9(victim).await;
    std::fs::remove_dir_all(cluster.data_dir(victim)).expect("delete the data dir");
    copy_dir(&copy, &cluster.data_dir(victim));
    cluster.start(victim);
    cluster.wait_status(victim, "finds that its disk lost writes", |s| s.counters.get("writes_lost") == Some(&1)).await;
    let up =
        cluster.wait_status(victim, "rebuilt and let in again", |s| s.state == "up" && s.epoch > before.epoch).await;
    assert!(up.epoch > before.epoch, "a configuration pinned its new incarnation: {up:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (more, _) = finish(&stop, tasks).await;
    acked.extend(more);

    rebuilt_3_counts(&mut cluster, &mut acked).await;
    check_logs(&cluster.config, &cluster.proposers.clone(), &acked).await;
    cluster.stop_all_gracefully().await;
}

/// Every proposer loses its data dir at once: the decided log comes back
/// from the acceptors' decided logs, and the cluster goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposers_that_lost_their_disks_copy_the_log_from_the_acceptors() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    for i in 0..300 {
        let v = format!("v{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided"));
    }
    for p in [1, 2] {
        let node = Node::Proposer(NodeId(p));
        cluster.kill9(node).await;
        std::fs::remove_dir_all(cluster.data_dir(node)).expect("delete the data dir");
    }
    for p in [1, 2] {
        cluster.start(Node::Proposer(NodeId(p)));
    }
    cluster.wait_ready().await;
    let mut client = cluster.client().await;
    for i in 0..20 {
        let v = format!("after-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided after the proposers' disks were lost"));
    }
    check_logs(&cluster.config, &cluster.proposers.clone(), &acked).await;
    cluster.stop_all_gracefully().await;
}

/// Acceptors 6 and 7 are added and 1 and 2 removed, one change after another,
/// under load; then 3 and 4 are killed: 5, 6 and 7 decide, and every
/// acknowledged value is there. Each change pauses clients for less than an election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptors_added_and_removed_under_load() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 5, "");
    let ports = free_ports(3);
    let new = [
        (6u32, format!("127.0.0.1:{}", ports[0])),
        (7, format!("127.0.0.1:{}", ports[1])),
        (8, format!("127.0.0.1:{}", ports[2])),
    ];
    let extra: Vec<(Node, String)> = new.iter().map(|(id, addr)| (Node::Acceptor(NodeId(*id)), addr.clone())).collect();
    let clients = cluster.client_config(&extra);
    cluster.start_all();
    cluster.wait_ready().await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&clients, 4, &stop);
    let mut admin = Client::new(&clients).await.expect("client");
    admin.set_retry(Duration::from_millis(300));
    admin.set_timeout(Duration::from_secs(30));
    let before = admin.member(MemberOp::List).await.expect("list");
    let mut last_list = before.clone();
    for (id, addr) in &new {
        cluster.start_listening(Node::Acceptor(NodeId(*id)), addr);
        last_list = admin.member(MemberOp::List).await.expect("list");
        let config = admin
            .member_from(MemberOp::Add { role: MemberRole::Acceptor, id: NodeId(*id), addr: addr.clone() }, &last_list)
            .await
            .expect("added");
        assert!(config.acceptors.iter().any(|m| m.id == NodeId(*id) && m.incarnation.is_some()), "{config:?}");
    }
    // The leader's probe of each acceptor being added, sent as the request
    // arrives, found its address: the runtime took in the new member at once.
    for p in cluster.proposers.clone() {
        let status = admin.status(Node::Proposer(p)).await.expect("status");
        assert_eq!(status.counters.get("dropped.unroutable"), None, "proposer {p}: {:?}", status.counters);
    }
    // A list from just before acceptor 8 was added (as a lagging proposer would answer): the leader
    // refuses the removal with the configuration in force, the next one, which has it; the client
    // asks again from there and it is removed.
    let remove = |id| MemberOp::Remove { role: MemberRole::Acceptor, id: NodeId(id) };
    let config = admin.member_from(remove(8), &last_list).await.expect("removed");
    assert_eq!(config.epoch, last_list.epoch + 2, "{config:?}");
    assert!(!config.acceptors.iter().any(|m| m.id == NodeId(8)), "{config:?}");
    cluster.kill9(Node::Acceptor(NodeId(8))).await;
    // From a list several changes old, a refusal is final: one of those changes might have been
    // this one, undone since.
    let refused = admin.member_from(remove(1), &before).await.expect_err("refused");
    assert!(refused.to_string().contains("not asked again"), "{refused}");
    // A node no configuration had: a mistyped id, refused (the leader has nothing to remove).
    let refused = admin.member_from(remove(9), &before).await.expect_err("not a member");
    assert!(refused.to_string().contains("acceptor 9 is not a member (the acceptors of epoch"), "{refused}");
    for id in [1, 2] {
        let config = admin.member(remove(id)).await.expect("removed");
        assert!(!config.acceptors.iter().any(|m| m.id == NodeId(id)), "{config:?}");
        cluster.kill9(Node::Acceptor(NodeId(id))).await;
    }
    let listed = admin.member(MemberOp::List).await.expect("list");
    let ids: Vec<u32> = listed.acceptors.iter().map(|m| m.id.0).collect();
    assert_eq!(ids, [3, 4, 5, 6, 7]);
    // Incarnations stay below 2^53, so that `member list --json` reads exactly in jq.
    let exact = |m: &paxos_proto::Member| m.incarnation.is_some_and(|i| i <= paxos_proto::MAX_CLIENT_NUMBER);
    assert!(listed.acceptors.iter().all(exact), "{listed:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut acked, worst) = finish(&stop, tasks).await;
    println!("membership changes under load: {} values acknowledged, worst latency {worst:?}", acked.len());
    assert!(worst < Duration::from_secs(5), "no pause of a client longer than a few elections: {worst:?}");

    for id in [3, 4] {
        cluster.kill9(Node::Acceptor(NodeId(id))).await;
    }
    let mut client = Client::new(&clients).await.expect("client");
    client.set_timeout(Duration::from_secs(10));
    for i in 0..20 {
        let v = format!("after-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided by acceptors 5, 6 and 7"));
    }
    check_logs(&clients, &cluster.proposers.clone(), &acked).await;
    cluster.stop_all_gracefully().await;
}

/// Leadership moves on purpose (`leader transfer`) under load, with no
/// acknowledged value lost; a healthy leader is then not preempted, neither
/// by the old leader (a higher id) nor by a proposer that comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_transferred_and_not_taken_back() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    assert_eq!(cluster.wait_ready().await, NodeId(2), "the highest id leads a new cluster");
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&cluster.config, 4, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut admin = cluster.client().await;
    let started = Instant::now();
    admin.transfer(NodeId(1)).await.expect("the leader hands over");
    let leads = |s: &paxos_proto::StatusReply| s.role == "leader";
    cluster.wait_status(Node::Proposer(NodeId(1)), "leads after the transfer", leads).await;
    println!("leader transfer: proposer 1 leads {} ms after the request", started.elapsed().as_millis());
    // Several election timeouts later, proposer 2 (the higher id, alive) has not taken it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = cluster.wait_status(Node::Proposer(NodeId(1)), "answers", |_| true).await;
    assert_eq!(s.role, "leader", "a healthy leader is not preempted by a higher id: {s:?}");
    let (mut acked, worst) = finish(&stop, tasks).await;
    println!("transfer under load: {} values acknowledged, worst latency {worst:?}", acked.len());

    // A proposer that comes back does not take leadership either.
    cluster.kill9(Node::Proposer(NodeId(2))).await;
    cluster.start(Node::Proposer(NodeId(2)));
    cluster.wait_status(Node::Proposer(NodeId(2)), "follows 1", |s| s.leader == Some(NodeId(1))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = cluster.wait_status(Node::Proposer(NodeId(1)), "answers", |_| true).await;
    assert_eq!(s.role, "leader", "the returning proposer 2 did not preempt: {s:?}");
    let mut client = cluster.client().await;
    for i in 0..10 {
        let v = format!("after-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided"));
    }
    check_logs(&cluster.config, &cluster.proposers.clone(), &acked).await;
    cluster.stop_all_gracefully().await;
}

/// A linearizable read returns every value acknowledged before it started,
/// from whichever proposer leads: right after the leader was killed and came
/// back, and through a deposed leader that was cut off (SIGUSR1) while the
/// other proposer took over and decided more, asked the moment it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizable_reads_see_every_acknowledged_value() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut last = Slot(0);
    let mut cut_off = None;
    for round in 0..4 {
        for i in 0..20 {
            last = client.propose(format!("r{round}-{i}")).await.expect("decided");
        }
        // Read at once, through a client that starts at the follower (it is
        // sent to the leader), or at the deposed leader the moment it is back.
        let mut reader = cluster.client().await;
        match cut_off.take() {
            Some(old) => {
                cluster.signal(Node::Proposer(old), libc::SIGUSR2);
                reader.set_leader_hint(old);
            }
            None => reader.set_leader_hint(NodeId(1)),
        }
        let (leader, page) = reader.log_linearizable(last, 10).await.expect("a linearizable read");
        assert!(page.linearizable && page.entries.first().is_some_and(|e| e.slot == last), "{page:?}");
        assert_eq!(page.entries[0].value.as_deref(), Some(format!("r{round}-19").as_str()), "from {leader}");
        match round {
            1 => {
                // A leader change between acknowledgement and read.
                let old = cluster.wait_ready().await;
                cluster.kill9(Node::Proposer(old)).await;
                cluster.start(Node::Proposer(old));
            }
            2 => {
                // A partition: the leader hears nothing and says nothing until SIGUSR2.
                let old = cluster.wait_ready().await;
                cluster.signal(Node::Proposer(old), libc::SIGUSR1);
                cut_off = Some(old);
            }
            _ => {}
        }
    }
    cluster.stop_all_gracefully().await;
}

/// Retention (`retain_slots = 200`, small segments): an acceptor and then a
/// proposer lose their data dirs after the instances they would copy were
/// deleted everywhere (and beyond what proposers keep in memory). Each restarts its log later, copying the state the
/// answering node's log built there (the configuration, the clients'
/// sessions), and goes on: the acceptor is let in again and counts in a
/// majority; the proposer holds the sessions of clients whose requests lie
/// in the deleted instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retention_nodes_that_lost_their_disks_restart_their_logs_later() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "[log]\nretain_slots = 200\nsegment_bytes = 65536");
    cluster.start_all();
    cluster.wait_ready().await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&cluster.config, 8, &stop);
    let mut client = cluster.client().await;
    let leader = cluster.wait_ready().await;
    // Beyond the newest 8192 values a proposer also keeps in memory (and serves catch-up from).
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.log(leader, Slot(0), 1).await.expect("read").start < Slot(9000) {
        assert!(Instant::now() < deadline, "retention deleted too little under load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let acceptor = Node::Acceptor(NodeId(3));
    cluster.kill9(acceptor).await;
    std::fs::remove_dir_all(cluster.data_dir(acceptor)).expect("delete the data dir");
    cluster.start(acceptor);
    let up = cluster.wait_status(acceptor, "restarted its log and let in again", |s| s.state == "up").await;
    assert!(up.epoch >= 2, "a configuration pinned its new incarnation: {up:?}");
    assert!(cluster.log_text(acceptor).contains("restarts later with the state there"), "it copied the state");

    let follower = Node::Proposer(NodeId(if leader == NodeId(1) { 2 } else { 1 }));
    cluster.kill9(follower).await;
    std::fs::remove_dir_all(cluster.data_dir(follower)).expect("delete the data dir");
    cluster.start(follower);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.log_text(follower).contains("restarts later with the state there") {
        assert!(Instant::now() < deadline, "the proposer did not restart its log: {}", cluster.log_text(follower));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (acked, _) = finish(&stop, tasks).await;
    assert!(acked.len() > 9000, "load was acknowledged meanwhile: {}", acked.len());
    let text = cluster.log_text(follower);
    let line = text.lines().find(|l| l.contains("restarts later with the state there")).expect("logged");
    let sessions: usize = line
        .split("sessions=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the sessions copied are counted: {line}"));
    assert!(sessions >= 8, "it copied the 8 clients' sessions: {line}");

    // The acceptor that restarted its log counts: with acceptor 1 gone, 2 and 3 are the majority.
    cluster.kill9(Node::Acceptor(NodeId(1))).await;
    let mut client = cluster.client().await;
    for i in 0..20 {
        client.propose(format!("after-{i}")).await.expect("decided by acceptor 2 and the restarted 3");
    }
    cluster.stop_all_gracefully().await;
}
