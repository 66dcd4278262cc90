//! A client of the Paxos log, and the cluster file every program reads.
//!
//! ```text
//!   cluster.toml ──► config::ClusterConfig ──► Client / MultiClient ──► UDP ──► proposers, acceptors
//! ```
//!
//! - [`config`]: the cluster file (SPEC.md, "The cluster file"), with its
//!   `PAXOS_*` environment overrides and one-line errors that name the file
//!   and the key; the daemons read it too;
//! - [`net`]: addresses (`host:port`, host names resolved) and UDP sockets;
//! - [`client`]: [`Client`], one client with one request in flight: propose a
//!   value (following redirects, retrying the same request until it is
//!   decided), read a proposer's log, ask any node for its status;
//! - [`multi`]: [`MultiClient`], many clients' proposals in flight over one
//!   socket, bundled: what `paxosctl propose --concurrency N` and `bench` run on.
//!
//! This crate touches no disk. Its wire format is `paxos-proto`'s, which
//! docs/PROTOCOL.md describes for clients in other languages.

pub mod client;
pub mod config;
mod link;
pub mod multi;
pub mod net;

pub use client::{Client, ClientError};
pub use multi::MultiClient;
