//! A client without the peer key finds a leader the cluster file does not
//! name: it lists the members of the proposer that named it, proving its
//! address with a cookie first, as for a read.

use std::net::SocketAddr;
use std::time::Duration;

use paxos_client::config::ClusterConfig;
use paxos_client::multi::MultiClient;
use paxos_client::{Client, ClientError};
use paxos_proto::{
    decode_bundle, encode, ClientRedirect, ClientReply, Config, Cookie, Envelope, Member, MemberOp, MemberReply,
    Message, NodeId, Slot, PROTOCOL_VERSION,
};
use tokio::net::UdpSocket;

const COOKIE: &str = "0123456789abcdef0123456789abcdef";

/// How the fake proposer 1 answers a member list.
#[derive(Clone, Copy)]
enum Lists {
    /// With a cookie first, then (with it) the members, as a node does for an unsigned client.
    WithCookie,
    /// Never: the members cannot be listed.
    Never,
}

/// Proposer 1 of the cluster file: redirects every proposal to proposer 7,
/// which the file does not name, and answers member lists as `lists` says,
/// naming proposer 7 at `leader`. Returns how many lists it answered with
/// the members, and the byte length of each list datagram it got.
async fn namer(socket: UdpSocket, lists: Lists, leader: SocketAddr, listed: tokio::sync::mpsc::Sender<usize>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        let Ok(envs) = decode_bundle(&buf[..n]) else { continue };
        for env in envs {
            let msg = match (&env.msg, lists) {
                (Message::ClientPropose(p), _) => {
                    Message::ClientRedirect(ClientRedirect { seq: p.seq, leader: Some(NodeId(7)) })
                }
                (Message::MemberRequest(r), Lists::WithCookie) if r.op == MemberOp::List => {
                    let _ = listed.send(n).await;
                    if r.cookie.as_deref() == Some(COOKIE) {
                        let member = |id, addr: String| Member { id: NodeId(id), addr, incarnation: None };
                        let config = Config {
                            epoch: 2,
                            acceptors: vec![member(1, "127.0.0.1:9".into())],
                            proposers: vec![
                                member(1, socket.local_addr().expect("addr").to_string()),
                                member(7, leader.to_string()),
                            ],
                            session_lifetime_ms: 3_600_000,
                        };
                        Message::MemberReply(MemberReply {
                            req: r.req,
                            config: Some(config),
                            error: None,
                            leader: None,
                        })
                    } else {
                        Message::Cookie(Cookie { req: r.req, cookie: COOKIE.into() })
                    }
                }
                _ => continue,
            };
            let reply =
                Envelope { version: PROTOCOL_VERSION, cluster: env.cluster.clone(), from: env.to, to: env.from, msg };
            let mut bytes = Vec::new();
            encode(&reply, &mut bytes).expect("encode");
            if let Message::Cookie(_) = reply.msg {
                assert!(
                    bytes.len() <= n,
                    "a cookie answer ({} bytes) is no longer than its request ({n})",
                    bytes.len()
                );
            }
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

/// Proposer 7: decides every proposal at slot 5.
async fn leader(socket: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        let Ok(envs) = decode_bundle(&buf[..n]) else { continue };
        let mut replies = Vec::new();
        for env in envs {
            let Message::ClientPropose(p) = &env.msg else { continue };
            let msg = Message::ClientReply(ClientReply { seq: p.seq, slot: Slot(5) });
            replies.push(Envelope {
                version: PROTOCOL_VERSION,
                cluster: env.cluster.clone(),
                from: env.to,
                to: env.from,
                msg,
            });
        }
        for reply in replies {
            let mut bytes = Vec::new();
            encode(&reply, &mut bytes).expect("encode");
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

/// A cluster file without `[auth]` naming proposer 1 only; proposer 7 is
/// listening but unknown to it. Returns the file's directory (kept alive),
/// the configuration, and the receiver of proposer 1's list sizes.
async fn cluster(lists: Lists) -> (tempfile::TempDir, ClusterConfig, tokio::sync::mpsc::Receiver<usize>) {
    let one = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let seven = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cluster.toml");
    let file = format!(
        "[[proposers]]\nid = 1\naddr = \"{}\"\n\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:9\"\n",
        one.local_addr().expect("address")
    );
    std::fs::write(&path, file).expect("write the cluster file");
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(namer(one, lists, seven.local_addr().expect("address"), tx));
    tokio::spawn(leader(seven));
    (dir, ClusterConfig::load(&path).expect("the cluster file"), rx)
}

/// Before, a client without the peer key sent the list as an operator's
/// request, which a node with `[auth]` refused, and timed out naming the
/// leader the file lacks.
#[tokio::test]
async fn a_client_without_keys_lists_the_members_with_a_cookie_and_follows() {
    let (_dir, config, mut listed) = cluster(Lists::WithCookie).await;
    let mut client = Client::new(&config).await.expect("a client");
    client.set_retry(Duration::from_millis(200));
    client.set_timeout(Duration::from_secs(3));

    assert_eq!(client.propose("x").await.expect("decided by proposer 7"), Slot(5));

    let first = listed.recv().await.expect("a first list");
    assert!(first >= paxos_proto::MIN_UNPROVEN_READ_BYTES, "a list without a cookie is padded ({first} bytes)");
    listed.recv().await.expect("a second list, with the cookie");
}

/// The same through the client of many lanes (`propose --concurrency`, `bench`).
#[tokio::test]
async fn many_lanes_without_keys_list_the_members_with_a_cookie_and_follow() {
    let (_dir, config, _listed) = cluster(Lists::WithCookie).await;
    let mut client = MultiClient::new(&config, 3).expect("a client");
    client.set_retry(Duration::from_millis(200));
    client.set_timeout(Duration::from_secs(3));
    let mut values = (0..6).map(|i| (i, format!("v{i}")));
    let mut slots = Vec::new();

    client.run(|| values.next(), |_, _, r| slots.push(r)).await.expect("run");

    assert_eq!(slots.len(), 6);
    assert!(slots.iter().all(|s| matches!(s, Ok(Slot(5)))), "{slots:?}");
}

/// When the members cannot be listed, the timeout names the leader the file lacks.
#[tokio::test]
async fn a_leader_that_cannot_be_listed_is_named_by_the_timeout() {
    let (_dir, config, _listed) = cluster(Lists::Never).await;
    let mut client = Client::new(&config).await.expect("a client");
    client.set_retry(Duration::from_millis(200));
    client.set_timeout(Duration::from_secs(1));

    let err = client.propose("x").await.expect_err("no leader reachable");

    assert!(matches!(err, ClientError::LeaderNotInFile { leader: NodeId(7), .. }), "{err}");
}
