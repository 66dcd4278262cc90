//! The daemons of the Paxos log: everything that touches the world.
//!
//! ```text
//!  cluster file ──► paxos_client::config ──► paxos-acceptor / paxos-proposer
//!                                               │
//!      UDP datagrams ◄──► runtime loop ◄──► paxos-core role (pure)
//!                            │                    │ Ready.persist (ops)
//!      clocks (tick) ────────┤                    ▼
//!      signals (TERM, USR1/2)┘           paxos-storage (Persist ──► FileStore ──► disk)
//! ```
//!
//! `paxos-proto` knows bytes and messages, `paxos-core` knows Paxos,
//! `paxos-storage` knows files; this crate knows sockets, clocks and signals,
//! and drives a core role with them. It holds:
//!
//! - [`runtime`]: the node loop with group commit, fail/recover and shutdown;
//!   it takes the role and its store as arguments;
//! - [`transport`]: the members' address book (host names resolved and
//!   resolved again), sender verification, the clients' addresses;
//! - [`guard`]: what a node lets in and how it signs what it sends: the
//!   `[auth]` MACs, cookies that validate clients' addresses, limits on
//!   unsigned traffic;
//! - [`chaos`]: the `[chaos]` fault injector (drop, duplicate, delay, reorder)
//!   on a node's own outgoing datagrams, seeded per node;
//! - [`counters`]: drop counters and rate-limited warnings;
//! - [`signals`]: SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 as loop commands;
//! - [`http`]: `GET /metrics`, `/health` and `/ready` on a thread of their
//!   own, from snapshots that the loop publishes;
//! - [`daemon`]: the command line, logging and exit codes the binaries share.

pub mod chaos;
pub mod counters;
pub mod daemon;
pub mod guard;
pub mod http;
pub mod runtime;
pub mod signals;
pub mod transport;
