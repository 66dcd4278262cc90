//! `paxos-proposer --config FILE --id N`: one proposer (and learner) of the Paxos log.
//!
//! Parse the command line, load the cluster file, install logging, open the
//! store, bind, run (mini-redis `src/bin/server.rs`); everything else lives in
//! the `paxos_node` library. See SPEC.md for the cluster file and the signals.

use std::process::ExitCode;

use anyhow::Context;
use paxos_client::config::Role;
use paxos_client::net::bind_udp;
use paxos_core::{Proposer, ProposerState, Store};
use paxos_node::daemon::{self, NodeSetup};
use paxos_node::runtime::{self, Control};
use paxos_storage::FileStore;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::info;

fn main() -> ExitCode {
    daemon::main("paxos-proposer", "A proposer (and learner) of the Multi-Paxos replicated log.", Role::Proposer, serve)
}

async fn serve(node: NodeSetup, control: UnboundedReceiver<Control>) -> anyhow::Result<()> {
    let segment = node.cluster.log.segment_bytes;
    let mut store = FileStore::<ProposerState>::open_with(&node.data_dir, node.settings.fsync, segment, segment / 2)
        .with_context(|| format!("open the proposer store in {}", node.data_dir.display()))?;
    daemon::claim_data_dir(&node, &store)?;
    let state = store.load().context("load the proposer state")?;
    daemon::check_genesis(&node, state.log.epoch_number()).await?;
    let (socket, buffers) = bind_udp(node.listen).with_context(|| format!("bind {}", node.listen))?;
    info!(
        node = %node.node(),
        role = "proposer",
        addr = %node.listen,
        data_dir = %node.data_dir.display(),
        round = state.round,
        decided = state.log.decided.0,
        epoch = state.log.epoch_number(),
        member_of_file = node.in_file(),
        fsync = daemon::fsync_note(node.settings.fsync),
        recv_buffer_bytes = buffers.recv_bytes,
        "started"
    );
    let proposer = Proposer::new(runtime::proposer_config(&node.cluster, node.id, &node.settings), state)
        .with_scrub_again_after(runtime::scrub_again_ticks(&node.settings))
        .with_scrub_retry_after(runtime::scrub_retry_ticks(&node.settings));
    runtime::run(proposer, store, socket, &node.cluster, &node.settings, control, std::future::pending()).await?;
    Ok(())
}
