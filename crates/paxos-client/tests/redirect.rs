//! A client sent to a dead leader by another proposer's word goes on past
//! the proposer that named it, not back to it.

use std::time::Duration;

use paxos_client::config::ClusterConfig;
use paxos_client::Client;
use paxos_proto::{
    decode, encode, ClientRedirect, ClientReply, Envelope, Message, Node, NodeId, Slot, PROTOCOL_VERSION,
};
use tokio::net::UdpSocket;

/// Answers every proposal on `socket` as proposer `id`: with a redirect to
/// `redirect_to` if given, else as decided at slot 5.
async fn fake_proposer(socket: UdpSocket, id: u32, redirect_to: Option<u32>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        let Ok(env) = decode(&buf[..n]) else { continue };
        let Message::ClientPropose(p) = &env.msg else { continue };
        let msg = match redirect_to {
            Some(leader) => Message::ClientRedirect(ClientRedirect { seq: p.seq, leader: Some(NodeId(leader)) }),
            None => Message::ClientReply(ClientReply { seq: p.seq, slot: Slot(5) }),
        };
        let reply = Envelope {
            version: PROTOCOL_VERSION,
            cluster: env.cluster.clone(),
            from: Node::Proposer(NodeId(id)),
            to: env.from,
            msg,
        };
        let mut bytes = Vec::new();
        encode(&reply, &mut bytes).expect("encode");
        let _ = socket.send_to(&bytes, from).await;
    }
}

/// Proposer 3 (asked first, the highest id) names proposer 2 as the leader,
/// but proposer 2 is dead; proposer 1 leads. After proposer 2's silence the
/// client asks proposer 1, the next after proposer 3. Before, it asked the
/// next after proposer 2, that is proposer 3 again, which sent it back to 2,
/// until its timeout.
#[tokio::test]
async fn a_dead_leader_named_by_a_proposer_is_passed_for_the_next_one() {
    let sockets =
        [UdpSocket::bind("127.0.0.1:0").await.expect("bind"), UdpSocket::bind("127.0.0.1:0").await.expect("bind")];
    let dead = UdpSocket::bind("127.0.0.1:0").await.expect("bind"); // proposer 2: never answers
    let addrs: Vec<_> = sockets.iter().map(|s| s.local_addr().expect("address")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cluster.toml");
    let file = format!(
        "[[proposers]]\nid = 1\naddr = \"{}\"\n\n[[proposers]]\nid = 2\naddr = \"{}\"\n\n[[proposers]]\nid = 3\naddr = \"{}\"\n\n\
         [[acceptors]]\nid = 1\naddr = \"127.0.0.1:9\"\n",
        addrs[0],
        dead.local_addr().expect("address"),
        addrs[1],
    );
    std::fs::write(&path, file).expect("write the cluster file");
    let cluster = ClusterConfig::load(&path).expect("the cluster file");
    let [leader, namer] = sockets;
    tokio::spawn(fake_proposer(leader, 1, None));
    tokio::spawn(fake_proposer(namer, 3, Some(2)));
    let mut client = Client::new(&cluster).await.expect("a client");
    client.set_retry(Duration::from_millis(200));
    client.set_timeout(Duration::from_secs(3));

    let slot = client.propose("x").await;

    assert_eq!(slot.expect("decided by proposer 1"), Slot(5));
    drop(dead);
}
