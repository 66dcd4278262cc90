//! The daemon runtime of the Paxos log: everything that touches the world.
//!
//! ```text
//!  cluster file ──► config ──► paxos-acceptor / paxos-proposer / paxosctl
//!                                   │
//!      UDP datagrams ◄──► runtime loop ◄──► paxos-core (pure roles)
//!                                   │                 │ Persist(ops)
//!      clocks (tick) ───────────────┤                 ▼
//!      signals (TERM, USR1/2) ──────┘          stores ──► wal (disk)
//! ```
//!
//! `paxos-proto` knows bytes and messages and `paxos-core` knows Paxos; this
//! crate knows sockets, disks, clocks and signals, and drives the core's pure
//! state machines with them. So far it holds:
//!
//! - [`config`]: the cluster file every daemon and `paxosctl` reads, with its
//!   `PAXOS_*` environment overrides and validation (one-line errors that name
//!   the file and the key);
//! - [`wal`]: the checksummed append-only record log with group commit that
//!   the durable stores are built on (torn tails are cut, a corrupt middle
//!   refuses to start);
//! - [`store`]: the core's storage traits on top of the log, with batches
//!   that stay atomic across crashes and acceptor compaction after trims;
//! - [`transport`]: UDP sockets, the members' address book (host names
//!   resolved and resolved again), sender verification, the clients' addresses;
//! - [`runtime`]: the node loop with group commit, fail/recover and shutdown;
//! - [`persist`]: where the loop's writes are made durable: in the loop, or on
//!   a thread of their own while the loop goes on;
//! - [`chaos`]: the `[chaos]` fault injector (drop, duplicate, delay, reorder)
//!   on a node's own outgoing datagrams, seeded per node;
//! - [`counters`]: drop counters and rate-limited warnings;
//! - [`signals`]: SIGTERM/SIGINT/SIGUSR1/SIGUSR2 as loop commands;
//! - [`daemon`]: the command line, logging and exit codes the binaries share;
//! - [`client`]: an async client (propose, log reads, status) for tests and `paxosctl`;
//! - [`multi`]: many clients' proposals in flight over one socket, bundled;
//! - [`ctl`]: `paxosctl`, the operator's command line (propose, log, status, bench).

pub mod chaos;
pub mod client;
pub mod config;
pub mod counters;
pub mod ctl;
pub mod daemon;
pub mod multi;
pub mod persist;
pub mod runtime;
pub mod signals;
pub mod store;
pub mod transport;
pub mod wal;
