//! The node loop in-process: `run` driven with in-memory stores, stopped by
//! its shutdown future, failed and recovered by [`Control`], and stopped by a
//! storage failure before it sends anything that depends on the failed write;
//! a proposer's writes go on in the background while it keeps answering.

use std::time::Duration;

use paxos_client::client::ClientError;
use paxos_client::config::Role;
use paxos_client::net::bind_udp;
use paxos_core::{
    Acceptor, AcceptorConfig, AcceptorOp, AcceptorState, LogPage, MemStore, Proposer, ProposerOp, ProposerState,
    StorageError, Store,
};
use paxos_node::runtime::{self, Control, RunError};
use paxos_proto::{
    decode, decode_bundle, encode, Ballot, Envelope, Message, Node, NodeId, Prepare, ProbeReply, Slot, PROTOCOL_VERSION,
};
use paxos_testkit::Cluster;
use tokio::sync::{mpsc, oneshot};

fn addr_of(cluster: &Cluster, role: Role, id: u32) -> std::net::SocketAddr {
    cluster.config.member(role, id).expect("member").addr.parse().expect("a literal address")
}

/// Acceptor `id` of `cluster`, new.
fn acceptor(cluster: &Cluster, id: u32) -> Acceptor {
    let cfg = AcceptorConfig {
        id: NodeId(id),
        genesis: cluster.config.genesis(),
        incarnation: 7,
        nonce_seed: 8,
        retain_slots: 0,
        lease_ticks: 20,
    };
    Acceptor::new(cfg, AcceptorState::default())
}

#[tokio::test]
async fn run_serves_fails_recovers_and_stops_on_shutdown() {
    let cluster = Cluster::new(1, 1, "");
    let settings = cluster.config.settings_for(Role::Proposer, 1).expect("settings");

    let (acceptor_socket, _) = bind_udp(addr_of(&cluster, Role::Acceptor, 1)).expect("bind");
    let (acceptor, acceptor_store) = (acceptor(&cluster, 1), MemStore::<AcceptorState>::default());
    let (acceptor_control, acceptor_rx) = mpsc::unbounded_channel();
    let (stop_acceptor, acceptor_stopped) = oneshot::channel::<()>();
    let config = cluster.config.clone();
    let s = settings.clone();
    let acceptor_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = acceptor_stopped.await;
        };
        runtime::run(acceptor, acceptor_store, acceptor_socket, &config, &s, acceptor_rx, shutdown).await
    });

    let (proposer_socket, _) = bind_udp(addr_of(&cluster, Role::Proposer, 1)).expect("bind");
    let cfg = runtime::proposer_config(&cluster.config, 1, &settings);
    assert_eq!((cfg.heartbeat_ticks, cfg.election_timeout_ticks), (10, 50), "50 ms / 5 ms and 250 ms / 5 ms");
    let (proposer, proposer_store) =
        (Proposer::new(cfg, ProposerState::default()), MemStore::<ProposerState>::default());
    let (_proposer_control, proposer_rx) = mpsc::unbounded_channel();
    let (stop_proposer, proposer_stopped) = oneshot::channel::<()>();
    let config = cluster.config.clone();
    let proposer_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = proposer_stopped.await;
        };
        runtime::run(proposer, proposer_store, proposer_socket, &config, &settings, proposer_rx, shutdown).await
    });

    let mut client = cluster.client().await;
    // Slot 0 holds the first configuration (the members, pinned).
    for i in 0..5u64 {
        assert_eq!(client.propose(format!("v{i}")).await.expect("decided"), Slot(i + 1));
    }
    let log = client.read_log(NodeId(1), Slot(0)).await.expect("log");
    assert_eq!(log.len(), 6);
    assert_eq!(log[0].value, None, "the configuration shows as a no-op");

    // Failed: status still answers (and says so); proposals are not decided.
    acceptor_control.send(Control::Fail).expect("send");
    cluster.wait_status(Node::Acceptor(NodeId(1)), "is failed", |s| s.failed).await;
    let mut short = cluster.client().await;
    short.set_timeout(Duration::from_millis(500));
    assert!(matches!(short.propose("while failed").await, Err(ClientError::Timeout { .. })));
    acceptor_control.send(Control::Recover).expect("send");
    assert!(client.propose("after recovery").await.is_ok());

    stop_acceptor.send(()).expect("stop");
    stop_proposer.send(()).expect("stop");
    acceptor_task.await.expect("task").expect("the acceptor stops cleanly");
    proposer_task.await.expect("task").expect("the proposer stops cleanly");
}

/// A store whose every write fails, as a full disk would.
#[derive(Default)]
struct FailingStore {
    applies: usize,
}

impl Store for FailingStore {
    type State = AcceptorState;

    fn load(&mut self) -> Result<AcceptorState, StorageError> {
        Ok(AcceptorState::default())
    }

    fn apply(&mut self, _ops: &[AcceptorOp]) -> Result<(), StorageError> {
        self.applies += 1;
        Err(StorageError::Io("injected: no space left on device".into()))
    }

    fn read(&mut self, from: Slot, _: usize, _: usize) -> Result<LogPage, StorageError> {
        Ok(LogPage { start: from, from, entries: Vec::new() })
    }
}

/// The promise a prepare asks for cannot be written: the loop stops with the
/// storage error and the promise is never sent.
#[tokio::test]
async fn storage_failure_stops_the_node_before_it_answers() {
    let cluster = Cluster::without_auth(1, 1, "");
    let settings = cluster.config.settings_for(Role::Acceptor, 1).expect("settings");
    let (socket, _) = bind_udp(addr_of(&cluster, Role::Acceptor, 1)).expect("bind");
    let (acceptor, acceptor_store) = (acceptor(&cluster, 1), FailingStore::default());
    let (_control, rx) = mpsc::unbounded_channel();
    let config = cluster.config.clone();
    let task = tokio::spawn(async move {
        runtime::run(acceptor, acceptor_store, socket, &config, &settings, rx, std::future::pending()).await
    });

    // Play proposer 1, from its own address.
    let (proposer, _) = bind_udp(addr_of(&cluster, Role::Proposer, 1)).expect("bind");
    let env = Envelope {
        version: PROTOCOL_VERSION,
        cluster: cluster.config.cluster.clone(),
        from: Node::Proposer(NodeId(1)),
        to: Node::Acceptor(NodeId(1)),
        msg: Message::Prepare(Prepare { ballot: Ballot::new(1, NodeId(1)), from: Slot(0), epoch: None, wrote: vec![] }),
    };
    let mut buf = Vec::new();
    encode(&env, &mut buf).expect("encode");
    proposer.send_to(&buf, addr_of(&cluster, Role::Acceptor, 1)).await.expect("send");

    let result = tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops").expect("task");
    assert!(matches!(result, Err(RunError::Storage(_))), "{result:?}");
    let mut reply = vec![0; 65_536];
    let got = tokio::time::timeout(Duration::from_millis(200), proposer.recv_from(&mut reply)).await;
    if let Ok(Ok((len, _))) = got {
        panic!("nothing may be sent about an unwritten promise, got {:?}", decode(&reply[..len]));
    }
}

/// A datagram larger than the protocol allows (possible over IPv6) is dropped
/// and counted as too large; the node answers status afterwards.
#[tokio::test]
async fn oversized_datagram_is_dropped_as_too_large() {
    let cluster = Cluster::with_host(1, 1, "", "[::1]");
    let settings = cluster.config.settings_for(Role::Acceptor, 1).expect("settings");
    let acceptor_addr = addr_of(&cluster, Role::Acceptor, 1);
    let Ok((socket, _)) = bind_udp(acceptor_addr) else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let (acceptor, acceptor_store) = (acceptor(&cluster, 1), MemStore::<AcceptorState>::default());
    let (_control, rx) = mpsc::unbounded_channel();
    let config = cluster.config.clone();
    let task = tokio::spawn(async move {
        runtime::run(acceptor, acceptor_store, socket, &config, &settings, rx, std::future::pending()).await
    });
    let (sender, _) = bind_udp("[::1]:0".parse().expect("addr")).expect("bind");
    let size = paxos_proto::MAX_DATAGRAM_BYTES + 13;
    sender.send_to(&vec![b'{'; size], acceptor_addr).await.expect("send a jumbo datagram");
    let status = cluster
        .wait_status(Node::Acceptor(NodeId(1)), "counted the datagram", |s| {
            s.counters.get("dropped.too_large") == Some(&1)
        })
        .await;
    assert!(status.counters.get("datagrams.in").is_some_and(|n| *n >= 2), "counted as received: {status:?}");
    assert!(!status.failed);
    task.abort();
}

/// A proposer store whose writes all fail, as a full disk would.
#[derive(Default)]
struct FailingProposerStore;

impl Store for FailingProposerStore {
    type State = ProposerState;

    fn load(&mut self) -> Result<ProposerState, StorageError> {
        Ok(ProposerState::default())
    }

    fn apply(&mut self, _ops: &[ProposerOp]) -> Result<(), StorageError> {
        Err(StorageError::Io("injected: no space left on device".into()))
    }

    fn read(&mut self, from: Slot, _: usize, _: usize) -> Result<LogPage, StorageError> {
        Ok(LogPage { start: from, from, entries: Vec::new() })
    }
}

/// A proposer persists in the background, yet a failed write still stops it
/// before anything that rests on it leaves: the round it campaigns with
/// cannot be written, so no prepare is ever sent.
#[tokio::test]
async fn proposer_storage_failure_stops_it_before_it_prepares() {
    let cluster = Cluster::without_auth(1, 1, "");
    let settings = cluster.config.settings_for(Role::Proposer, 1).expect("settings");
    let (socket, _) = bind_udp(addr_of(&cluster, Role::Proposer, 1)).expect("bind");
    let cfg = runtime::proposer_config(&cluster.config, 1, &settings);
    let (proposer, proposer_store) = (Proposer::new(cfg, ProposerState::default()), FailingProposerStore);
    let (_control, rx) = mpsc::unbounded_channel();
    let config = cluster.config.clone();
    let task = tokio::spawn(async move {
        runtime::run(proposer, proposer_store, socket, &config, &settings, rx, std::future::pending()).await
    });

    // Play acceptor 1: answer the start-up probe and the pre-vote (naming no
    // leader), so that the proposer campaigns.
    let (acceptor, _) = bind_udp(addr_of(&cluster, Role::Acceptor, 1)).expect("bind");
    let mut buf = vec![0; 65_536];
    let mut task = std::pin::pin!(task);
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    let mut deadline = std::pin::pin!(deadline);
    loop {
        tokio::select! {
            result = &mut task => {
                let result = result.expect("task");
                // The disk's own error, not a symptom of the persist thread stopping.
                assert!(
                    matches!(&result, Err(RunError::Storage(StorageError::Io(m))) if m.contains("no space left")),
                    "{result:?}"
                );
                break;
            }
            got = acceptor.recv_from(&mut buf) => {
                let (len, from) = got.expect("recv");
                for env in decode_bundle(&buf[..len]).expect("decodes") {
                    match env.msg {
                        Message::Prepare(p) => panic!("a prepare left although its round was never written: {p:?}"),
                        Message::Probe(probe) => {
                            let reply = Envelope {
                                version: PROTOCOL_VERSION,
                                cluster: cluster.config.cluster.clone(),
                                from: Node::Acceptor(NodeId(1)),
                                to: Node::Proposer(NodeId(1)),
                                msg: Message::ProbeReply(ProbeReply {
                                    nonce: probe.nonce,
                                    promised: Ballot::default(),
                                    decided: Slot(0),
                                    incarnation: 7,
                                    epoch: 0,
                                    joining: false,
                                    leader: None, challenge: 0,
                                    clock_ms: 0,
                                    written: None, digest: None,
                                }),
                            };
                            let mut out = Vec::new();
                            encode(&reply, &mut out).expect("encode");
                            acceptor.send_to(&out, from).await.expect("send");
                        }
                        _ => {}
                    }
                }
            }
            () = &mut deadline => panic!("the proposer neither campaigned nor stopped within 10 s"),
        }
    }
}

/// A proposer store that holds every write of a decided value until the test
/// lets it through, as a very slow disk would; counts the writes held.
struct GatedStore {
    inner: MemStore<ProposerState>,
    gate: std::sync::mpsc::Receiver<()>,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Store for GatedStore {
    type State = ProposerState;

    fn load(&mut self) -> Result<ProposerState, StorageError> {
        self.inner.load()
    }

    fn apply(&mut self, ops: &[ProposerOp]) -> Result<(), StorageError> {
        // Client values only: the first configuration goes through, or the leader never serves.
        let command = |op: &ProposerOp| matches!(op, ProposerOp::Learn { value: paxos_proto::Value::Command(_), .. });
        if ops.iter().any(command) {
            self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Blocks until the test sends a permit or drops the sender.
            let _ = self.gate.recv();
        }
        self.inner.apply(ops)
    }

    fn read(&mut self, from: Slot, limit: usize, max_bytes: usize) -> Result<LogPage, StorageError> {
        self.inner.read(from, limit, max_bytes)
    }
}

/// The leader's own log is written on a thread of its own: while that write
/// hangs, the leader still proposes and answers clients (their values are on
/// a majority of acceptors), and what must wait for the write (a status
/// answer) is sent only once it is done.
// Two workers: were the write in the loop, the loop would block one of them
// and the client would time out instead of the test hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_answers_clients_while_its_own_write_is_in_progress() {
    let cluster = Cluster::new(1, 1, "");
    let settings = cluster.config.settings_for(Role::Proposer, 1).expect("settings");

    let (acceptor_socket, _) = bind_udp(addr_of(&cluster, Role::Acceptor, 1)).expect("bind");
    let (acceptor, acceptor_store) = (acceptor(&cluster, 1), MemStore::<AcceptorState>::default());
    let (_acceptor_control, acceptor_rx) = mpsc::unbounded_channel();
    let config = cluster.config.clone();
    let s = settings.clone();
    let acceptor_task = tokio::spawn(async move {
        runtime::run(acceptor, acceptor_store, acceptor_socket, &config, &s, acceptor_rx, std::future::pending()).await
    });

    let (gate_tx, gate) = std::sync::mpsc::channel();
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = GatedStore { inner: MemStore::<ProposerState>::default(), gate, held: std::sync::Arc::clone(&held) };
    let (proposer_socket, _) = bind_udp(addr_of(&cluster, Role::Proposer, 1)).expect("bind");
    let cfg = runtime::proposer_config(&cluster.config, 1, &settings);
    let (proposer, proposer_store) = (Proposer::new(cfg, ProposerState::default()), store);
    let (_proposer_control, proposer_rx) = mpsc::unbounded_channel();
    let config = cluster.config.clone();
    let proposer_task = tokio::spawn(async move {
        runtime::run(proposer, proposer_store, proposer_socket, &config, &settings, proposer_rx, std::future::pending())
            .await
    });

    let mut client = cluster.client().await;
    for i in 0..3u64 {
        let slot = client.propose(format!("v{i}")).await.expect("decided while the log write hangs");
        assert_eq!(slot, Slot(i + 1), "after the first configuration");
    }

    // A status answer rests on the proposer's writes: it waits for them.
    let mut asker = cluster.client().await;
    asker.set_timeout(Duration::from_millis(300));
    let early = asker.status(Node::Proposer(NodeId(1))).await;
    assert!(early.is_err(), "a status answer left before the writes it follows were durable: {early:?}");
    // (The write may linger up to PROPOSER_MIN_SYNC_INTERVAL before it is tried.)
    assert!(held.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the first decision's write is held");

    drop(gate_tx);
    asker.set_timeout(Duration::from_secs(5));
    let status = asker.status(Node::Proposer(NodeId(1))).await.expect("answered once the writes are done");
    assert_eq!(status.decided, Slot(4));
    proposer_task.abort();
    acceptor_task.abort();
}
