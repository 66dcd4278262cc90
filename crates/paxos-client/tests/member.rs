//! `Client::member`: the list that a change is asked from and the change
//! itself share one timeout, as `paxosctl member --timeout` promises.

use std::time::Duration;

use paxos_client::config::ClusterConfig;
use paxos_client::{Client, ClientError};
use paxos_proto::{
    decode, encode, Config, Envelope, Member, MemberOp, MemberReply, MemberRole, Message, Node, NodeId,
    PROTOCOL_VERSION,
};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// How long the proposer below takes to answer the list.
const LIST_DELAY: Duration = Duration::from_millis(1500);

/// The client's timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A proposer that answers the list `LIST_DELAY` after the first request
/// for it, and never answers the change: the client gives up at the end of
/// its one timeout, not a timeout after the list.
#[tokio::test]
async fn a_change_and_its_list_share_one_timeout() {
    let proposer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = proposer.local_addr().expect("address");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cluster.toml");
    let file = format!("[[proposers]]\nid = 1\naddr = \"{addr}\"\n\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:9\"\n");
    std::fs::write(&path, file).expect("write the cluster file");
    let cluster = ClusterConfig::load(&path).expect("the cluster file");
    let member = |addr: &str| Member { id: NodeId(1), addr: addr.to_owned(), incarnation: None };
    let config = Config {
        epoch: 0,
        acceptors: vec![member("127.0.0.1:9")],
        proposers: vec![member(&addr.to_string())],
        session_lifetime_ms: 0,
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut first_list = None;
        loop {
            let Ok((n, from)) = proposer.recv_from(&mut buf).await else { return };
            let Ok(env) = decode(&buf[..n]) else { continue };
            let Message::MemberRequest(m) = &env.msg else { continue };
            if m.op != MemberOp::List {
                continue; // the change: never answered
            }
            let at = *first_list.get_or_insert_with(Instant::now) + LIST_DELAY;
            tokio::time::sleep_until(at).await;
            let reply = MemberReply { req: m.req, config: Some(config.clone()), error: None, leader: None };
            let reply = Envelope {
                version: PROTOCOL_VERSION,
                cluster: env.cluster.clone(),
                from: Node::Proposer(NodeId(1)),
                to: env.from,
                msg: Message::MemberReply(reply),
            };
            let mut bytes = Vec::new();
            encode(&reply, &mut bytes).expect("encode");
            let _ = proposer.send_to(&bytes, from).await;
        }
    });
    let mut client = Client::new(&cluster).await.expect("a client");
    client.set_timeout(TIMEOUT);
    let started = Instant::now();

    let result = client.member(MemberOp::Remove { role: MemberRole::Acceptor, id: NodeId(1) }).await;

    let elapsed = started.elapsed();
    assert!(matches!(result, Err(ClientError::Timeout { .. })), "{result:?}");
    assert!(elapsed >= LIST_DELAY, "the list was answered first ({elapsed:?})");
    assert!(elapsed < TIMEOUT + Duration::from_millis(900), "over by the end of the one timeout: {elapsed:?}");
}
