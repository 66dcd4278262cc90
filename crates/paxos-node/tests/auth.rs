//! `[auth]` on real daemons: forged datagrams from members' own addresses
//! change nothing and are counted, no answer to an unproven address is
//! larger than the request, client keys are enforced, and a node without
//! `[auth]` says so.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use paxos_client::config::Role;
use paxos_proto::{
    encode, Accept, AcceptEntry, Ballot, CatchUpReply, ClientId, ClientPropose, Command, Envelope, Heartbeat, LogRead,
    MemberOp, MemberRequest, MemberRole, Message, Node, NodeId, Prepare, RestoreRequest, Slot, StatusRequest,
    TransferRequest, Value, MAX_COUNTER, PROTOCOL_VERSION,
};
use paxos_testkit::{assert_guarantees, full_log, serial, spoof_udp, Cluster};

fn addr(cluster: &Cluster, node: Node) -> SocketAddrV4 {
    let (role, id) = match node {
        Node::Proposer(id) => (Role::Proposer, id),
        Node::Acceptor(id) => (Role::Acceptor, id),
        Node::Client(_) => unreachable!("clients have no address in the file"),
    };
    match cluster.config.member(role, id.0).expect("member").addr.parse::<SocketAddr>().expect("a literal") {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("the test clusters are on 127.0.0.1"),
    }
}

fn envelope(from: Node, to: Node, msg: Message) -> Vec<u8> {
    let env = Envelope { version: PROTOCOL_VERSION, cluster: "test".into(), from, to, msg };
    let mut buf = Vec::new();
    encode(&env, &mut buf).expect("encode");
    buf
}

/// The forgeries of issue 11's table, each from the address of the member it
/// claims to be (raw sockets): with `[auth]` every one is dropped as forged
/// (`dropped.auth`), no ballot, log or leadership moves, and the cluster
/// goes on deciding. Skipped, saying so, where raw sockets are not allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_datagrams_from_members_addresses_change_nothing() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    let mut acked = HashMap::new();
    for i in 0..10 {
        let v = format!("before-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided"));
    }
    let mut before = BTreeMap::new();
    for node in cluster.nodes() {
        before.insert(node, client.status(node).await.expect("status"));
    }
    let leader_node = Node::Proposer(leader);
    let other = Node::Proposer(if leader == NodeId(1) { NodeId(2) } else { NodeId(1) });
    let ballot = before[&leader_node].ballot;
    let huge = Ballot::new(MAX_COUNTER, leader);
    let forged_value = Value::Command(Command::new(ClientId(666), 1, "forged"));
    // (claimed sender, receiver, message): the table, row by row.
    let mut rows: Vec<(Node, Node, Message)> = Vec::new();
    for a in cluster.acceptors.clone() {
        let acceptor = Node::Acceptor(a);
        rows.push((
            leader_node,
            acceptor,
            Message::Prepare(Prepare { ballot: huge, from: Slot(0), epoch: None, wrote: vec![] }),
        ));
        let next = before[&leader_node].decided;
        rows.push((leader_node, acceptor, Message::Accept(Accept { ballot, entries: vec![], commit: Slot(1 << 40) })));
        rows.push((
            leader_node,
            acceptor,
            Message::Accept(Accept {
                ballot,
                entries: vec![AcceptEntry { slot: next, value: forged_value.clone() }],
                commit: next,
            }),
        ));
        rows.push((
            leader_node,
            acceptor,
            Message::Accept(Accept {
                ballot,
                entries: vec![AcceptEntry { slot: Slot(MAX_COUNTER - 1), value: Value::Noop }],
                commit: Slot(0),
            }),
        ));
    }
    rows.push((
        other,
        leader_node,
        Message::Heartbeat(Heartbeat {
            ballot: Ballot::new(MAX_COUNTER, NodeId(9)),
            leader: true,
            decided: Slot(0),
            known: Slot(0),
            damaged: false,
            written: vec![],
            digest: None,
        }),
    ));
    rows.push((
        other,
        leader_node,
        Message::Heartbeat(Heartbeat {
            ballot: Ballot::new(ballot.round + 1, NodeId(9)),
            leader: true,
            decided: Slot(0),
            known: Slot(0),
            damaged: false,
            written: vec![],
            digest: None,
        }),
    ));
    rows.push((
        leader_node,
        other,
        Message::CatchUpReply(CatchUpReply {
            from: before[&other].decided,
            entries: vec![forged_value.clone()],
            decided: Slot(1 << 30),
            epoch: None,
            nonce: 0,
        }),
    ));
    let mut forged_to: BTreeMap<Node, u64> = BTreeMap::new();
    for (from, to, msg) in rows {
        let datagram = envelope(from, to, msg);
        match spoof_udp(addr(&cluster, from), addr(&cluster, to), &datagram) {
            Ok(()) => *forged_to.entry(to).or_default() += 1,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("skipped: raw sockets are not permitted here ({e}); run as root to forge source addresses");
                cluster.stop_all_gracefully().await;
                return;
            }
            Err(e) => panic!("spoof: {e}"),
        }
    }
    for (node, n) in &forged_to {
        let was = before[node].counters.get("dropped.auth").copied().unwrap_or(0);
        cluster
            .wait_status(*node, "counts every forgery as dropped.auth", |s| {
                s.counters.get("dropped.auth").copied().unwrap_or(0) >= was + n
            })
            .await;
    }
    for node in cluster.nodes() {
        let now = client.status(node).await.expect("status");
        assert_eq!(now.ballot, before[&node].ballot, "{node}: no forged round moved its ballot");
        assert!(
            now.counters.get("dropped.ignored").copied().unwrap_or(0)
                == before[&node].counters.get("dropped.ignored").copied().unwrap_or(0),
            "{node}: nothing forged even reached the role"
        );
    }
    for i in 0..10 {
        let v = format!("after-{i}");
        acked.insert(v.clone(), client.propose(v).await.expect("decided after the forgeries"));
    }
    let log = full_log(&mut client, leader).await;
    assert!(log.iter().all(|e| e.value.as_deref() != Some("forged")), "the forged value is nowhere");
    assert_guarantees(&[("leader", &log)], &acked);
    cluster.stop_all_gracefully().await;
}

/// What an address that has not proven itself gets back, per request kind,
/// in bytes, against what it sent: at most about 1x (issue 11: no
/// reflection amplification). A read without a cookie gets a cookie no
/// longer than itself; a read too short for that gets nothing; a bundle of
/// reads gets one answer; a proposal's answer is about its own size.
///
/// With `[auth]` and without: a member request is an operator's only with
/// peer keys, and its answer carries the configuration (before, a member
/// list to a node without `[auth]` was answered at once, ~3x its size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_to_an_unproven_address_is_larger_than_its_request() {
    let _serial = serial().await;
    for mut cluster in [Cluster::new(2, 3, ""), Cluster::without_auth(2, 3, "")] {
        cluster.start_all();
        no_answer_is_larger_than_its_request(&cluster).await;
        cluster.stop_all_gracefully().await;
    }
}

async fn no_answer_is_larger_than_its_request(cluster: &Cluster) {
    let leader = cluster.wait_ready().await;
    let follower = if leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    let me = Node::Client(ClientId(77));
    let pad = |mut d: Vec<u8>| {
        d.resize(d.len().max(paxos_proto::MIN_UNPROVEN_READ_BYTES), b' ');
        d
    };
    let status = |to| envelope(me, to, Message::StatusRequest(StatusRequest { req: 1, cookie: None }));
    let read = |req| {
        envelope(
            me,
            Node::Proposer(leader),
            Message::LogRead(LogRead { req, from: Slot(0), limit: u32::MAX, linearizable: false, cookie: None }),
        )
    };
    let propose = |seq: u64, value: &str, to: NodeId| {
        envelope(me, Node::Proposer(to), Message::ClientPropose(ClientPropose { seq, value: value.into() }))
    };
    let member = |req, op| {
        envelope(
            me,
            Node::Proposer(leader),
            Message::MemberRequest(MemberRequest { req, op, deadline_ms: None, epoch: None, cookie: None }),
        )
    };
    let remove = || MemberOp::Remove { role: MemberRole::Acceptor, id: NodeId(3) };
    let bundle = |parts: Vec<Vec<u8>>| {
        let mut d = b"[".to_vec();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.push(b',');
            }
            d.extend_from_slice(p);
        }
        d.push(b']');
        d
    };
    let cases: Vec<(&str, Node, Vec<u8>)> = vec![
        ("status_request to an acceptor (padded)", Node::Acceptor(NodeId(1)), pad(status(Node::Acceptor(NodeId(1))))),
        ("status_request to the leader (padded)", Node::Proposer(leader), pad(status(Node::Proposer(leader)))),
        ("status_request, unpadded", Node::Proposer(leader), status(Node::Proposer(leader))),
        ("log_read (padded)", Node::Proposer(leader), pad(read(1))),
        ("log_read, unpadded", Node::Proposer(leader), read(2)),
        ("a bundle of 200 log_reads", Node::Proposer(leader), bundle((0..200).map(read).collect())),
        (
            "a bundle of 200 member lists",
            Node::Proposer(leader),
            bundle((0..200).map(|r| member(r, MemberOp::List)).collect()),
        ),
        (
            "a bundle of 200 transfer_requests",
            Node::Proposer(leader),
            bundle(
                (0..200)
                    .map(|req| {
                        let msg = Message::TransferRequest(TransferRequest { req, to: NodeId(9), cookie: None });
                        envelope(me, Node::Proposer(leader), msg)
                    })
                    .collect(),
            ),
        ),
        ("member_request list (padded)", Node::Proposer(leader), pad(member(3, MemberOp::List))),
        ("member_request list, unpadded", Node::Proposer(leader), member(4, MemberOp::List)),
        ("member_request remove (padded)", Node::Proposer(leader), pad(member(5, remove()))),
        ("member_request remove, unpadded", Node::Proposer(leader), member(6, remove())),
        (
            "transfer_request to a non-member",
            Node::Proposer(leader),
            envelope(
                me,
                Node::Proposer(leader),
                Message::TransferRequest(TransferRequest { req: 7, to: NodeId(9), cookie: None }),
            ),
        ),
        (
            "restore_request into a non-empty log",
            Node::Proposer(leader),
            envelope(
                me,
                Node::Proposer(leader),
                Message::RestoreRequest(RestoreRequest { req: 8, from: Slot(0), entries: vec![], cookie: None }),
            ),
        ),
        (
            "transfer_request to a follower",
            Node::Proposer(follower),
            envelope(
                me,
                Node::Proposer(follower),
                Message::TransferRequest(TransferRequest { req: 9, to: NodeId(9), cookie: None }),
            ),
        ),
        ("client_propose to the leader", Node::Proposer(leader), propose(1, "v", leader)),
        ("client_propose to a follower", Node::Proposer(follower), propose(2, "", follower)),
        (
            "a bundle of 50 client_proposes to a follower",
            Node::Proposer(follower),
            bundle((10..60).map(|s| propose(s, "", follower)).collect()),
        ),
    ];
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    let mut buf = vec![0; 70_000];
    let mut worst = 0.0f64;
    for (what, to, datagram) in cases {
        socket.send_to(&datagram, addr(cluster, to)).expect("send");
        let mut received = 0;
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                received += n;
            }
        }
        let factor = received as f64 / datagram.len() as f64;
        println!("{what}: sent {} bytes, received {received} bytes: {factor:.2}x", datagram.len());
        worst = worst.max(factor);
        assert!(factor <= 1.05, "{what}: {received} bytes back for {} sent", datagram.len());
    }
    println!("worst amplification: {worst:.2}x");
}

/// With a client key, only signed client requests count: paxosctl's client
/// (which reads the key from the cluster file) proposes, an unsigned
/// request is dropped as forged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_key_unsigned_requests_are_forged() {
    let _serial = serial().await;
    let key = paxos_proto::auth::key_to_hex(&[5; 32]);
    let mut cluster = Cluster::new(1, 1, "");
    std::fs::write(cluster.dir().join("client.key"), format!("{key}\n")).expect("write the client key");
    let text = std::fs::read_to_string(&cluster.path)
        .expect("read")
        .replace("peer_key_file = \"peer.key\"", "peer_key_file = \"peer.key\"\nclient_key_file = \"client.key\"");
    std::fs::write(&cluster.path, text).expect("write");
    cluster.config = paxos_client::config::ClusterConfig::load_with_env(&cluster.path, Vec::<(String, String)>::new())
        .expect("valid");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let mut client = cluster.client().await;
    // Slot 0 holds the first configuration.
    assert_eq!(client.propose("signed").await.expect("a signed request is decided"), Slot(1));
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let unsigned = envelope(
        Node::Client(ClientId(9)),
        Node::Proposer(leader),
        Message::ClientPropose(ClientPropose { seq: 1, value: "unsigned".into() }),
    );
    socket.send_to(&unsigned, addr(&cluster, Node::Proposer(leader))).expect("send");
    cluster
        .wait_status(Node::Proposer(leader), "counts the unsigned request", |s| {
            s.counters.get("dropped.auth").copied().unwrap_or(0) >= 1
        })
        .await;
    let log = full_log(&mut client, leader).await;
    let values: Vec<_> = log.iter().filter_map(|e| e.value.clone()).collect();
    assert_eq!(values, ["signed"], "only the signed value: {log:?}");
    cluster.stop_all_gracefully().await;
}

/// A node without `[auth]` says at start-up, at warn, that anyone can forge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_auth_warns() {
    let _serial = serial().await;
    let mut cluster = Cluster::without_auth(1, 1, "");
    cluster.start_all();
    cluster.wait_ready().await;
    for node in cluster.nodes() {
        let log = cluster.log_text(node);
        assert!(log.lines().any(|l| l.contains("WARN") && l.contains("AUTH OFF")), "{node} warns:\n{log}");
    }
    let mut secured = Cluster::new(1, 1, "");
    secured.start_all();
    secured.wait_ready().await;
    for node in secured.nodes() {
        assert!(!secured.log_text(node).contains("AUTH OFF"), "{node} with [auth] does not warn");
    }
    cluster.stop_all_gracefully().await;
    secured.stop_all_gracefully().await;
}
