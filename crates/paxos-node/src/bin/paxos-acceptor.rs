//! `paxos-acceptor --config FILE --id N`: one acceptor of the Paxos log.
//!
//! Parse the command line, load the cluster file, install logging, open the
//! store, bind, run (mini-redis `src/bin/server.rs`); everything else lives in
//! the `paxos_node` library. See SPEC.md for the cluster file and the signals.

use std::process::ExitCode;

use anyhow::Context;
use paxos_node::config::Role;
use paxos_node::daemon::{self, NodeSetup};
use paxos_node::runtime::{self, AcceptorNode};
use paxos_node::store::FileAcceptorStore;
use paxos_node::{signals, transport};
use tracing::info;

fn main() -> ExitCode {
    let args = daemon::parse_args("paxos-acceptor", "An acceptor of the Multi-Paxos replicated log.");
    let node = match NodeSetup::load(&args, Role::Acceptor) {
        Ok(node) => node,
        Err(line) => return daemon::usage_error(&line),
    };
    daemon::init_tracing(args.log_format);
    daemon::exit_code(daemon::block_on(serve(node)))
}

async fn serve(node: NodeSetup) -> anyhow::Result<()> {
    let control = signals::install().context("install the signal handlers")?;
    let store = FileAcceptorStore::open(&node.data_dir, node.settings.fsync)
        .with_context(|| format!("open the acceptor store in {}", node.data_dir.display()))?;
    let recovered = store.state().clone();
    let replica = AcceptorNode::new(node.node_id(), node.proposer_ids(), store).context("load the acceptor state")?;
    let (socket, buffers) = transport::bind_udp(node.listen).with_context(|| format!("bind {}", node.listen))?;
    info!(
        node = %node.node_id(),
        role = "acceptor",
        addr = %node.listen,
        data_dir = %node.data_dir.display(),
        promised = %recovered.promised,
        accepted = recovered.accepted.len(),
        trimmed_below = %recovered.trimmed_below,
        fsync = daemon::fsync_note(node.settings.fsync),
        recv_buffer_bytes = buffers.recv_bytes,
        "started"
    );
    runtime::run(replica, socket, &node.cluster, &node.settings, control, std::future::pending()).await?;
    Ok(())
}
