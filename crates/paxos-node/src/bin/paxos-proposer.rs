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
use paxos_node::{runtime, signals};
use paxos_storage::FileStore;
use tracing::info;

fn main() -> ExitCode {
    let args = daemon::parse_args("paxos-proposer", "A proposer (and learner) of the Multi-Paxos replicated log.");
    let node = match NodeSetup::load(&args, Role::Proposer) {
        Ok(node) => node,
        Err(line) => return daemon::usage_error(&line),
    };
    daemon::init_tracing(args.log_format);
    daemon::exit_code(daemon::block_on(serve(node)))
}

async fn serve(node: NodeSetup) -> anyhow::Result<()> {
    let control = signals::install().context("install the signal handlers")?;
    let mut store = FileStore::<ProposerState>::open(&node.data_dir, node.settings.fsync)
        .with_context(|| format!("open the proposer store in {}", node.data_dir.display()))?;
    let state = store.load().context("load the proposer state")?;
    let (socket, buffers) = bind_udp(node.listen).with_context(|| format!("bind {}", node.listen))?;
    info!(
        node = %node.node_id(),
        role = "proposer",
        addr = %node.listen,
        data_dir = %node.data_dir.display(),
        round = state.round,
        decided = state.log.len(),
        fsync = daemon::fsync_note(node.settings.fsync),
        recv_buffer_bytes = buffers.recv_bytes,
        "started"
    );
    let proposer = Proposer::new(runtime::proposer_config(&node.cluster, node.id, &node.settings), state);
    runtime::run(proposer, store, socket, &node.cluster, &node.settings, control, std::future::pending()).await?;
    Ok(())
}
