//! `paxos-acceptor --config FILE --id N`: one acceptor of the Paxos log.
//!
//! Parse the command line, load the cluster file, install logging, open the
//! store, bind, run (mini-redis `src/bin/server.rs`); everything else lives in
//! the `paxos_node` library. See SPEC.md for the cluster file and the signals.

use std::process::ExitCode;

use anyhow::Context;
use paxos_client::config::Role;
use paxos_client::net::bind_udp;
use paxos_core::{Acceptor, AcceptorConfig, AcceptorState, Store};
use paxos_node::daemon::{self, NodeSetup};
use paxos_node::runtime::{self, Control};
use paxos_storage::FileStore;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::info;

fn main() -> ExitCode {
    daemon::main("paxos-acceptor", "An acceptor of the Multi-Paxos replicated log.", Role::Acceptor, serve)
}

async fn serve(node: NodeSetup, control: UnboundedReceiver<Control>) -> anyhow::Result<()> {
    let segment = node.cluster.log.segment_bytes;
    let mut store = FileStore::<AcceptorState>::open_with(&node.data_dir, node.settings.fsync, segment, segment / 2)
        .with_context(|| format!("open the acceptor store in {}", node.data_dir.display()))?;
    daemon::claim_data_dir(&node, &store)?;
    let state = store.load().context("load the acceptor state")?;
    daemon::check_genesis(&node, state.epoch_number()).await?;
    let (socket, buffers) = bind_udp(node.listen).with_context(|| format!("bind {}", node.listen))?;
    info!(
        node = %node.node(),
        role = "acceptor",
        addr = %node.listen,
        data_dir = %node.data_dir.display(),
        promised = %state.promised,
        accepted = state.accepted.len(),
        decided = state.decided.0,
        epoch = state.epoch_number(),
        incarnation = state.incarnation,
        member_of_file = node.in_file(),
        fsync = daemon::fsync_note(node.settings.fsync),
        recv_buffer_bytes = buffers.recv_bytes,
        "started"
    );
    let cfg = AcceptorConfig {
        id: node.node_id(),
        genesis: node.cluster.genesis(),
        // Used only if the store has no identity yet (a new node, or one that lost its disk).
        incarnation: paxos_client::client::random_incarnation(),
        nonce_seed: paxos_client::client::random_u64(),
        retain_slots: node.cluster.log.retain_slots,
        lease_ticks: runtime::lease_ticks(&node.settings),
    };
    let acceptor = Acceptor::new(cfg, state)
        .with_scrub_again_after(runtime::scrub_again_ticks(&node.settings))
        .with_scrub_retry_after(runtime::scrub_retry_ticks(&node.settings));
    runtime::run(acceptor, store, socket, &node.cluster, &node.settings, control, std::future::pending()).await?;
    Ok(())
}
