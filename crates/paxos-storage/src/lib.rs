//! The storage engine of the Paxos log: where a role's writes become durable.
//!
//! ```text
//!   paxos-core role ── Ready.persist (ops) ──► Persist ──► FileStore<S> ──► Wal ──► disk
//!                                               │ inline (acceptor) or on a thread (proposer)
//!                      restart: FileStore::load ◄── replay records, Fold::apply ◄──┘
//! ```
//!
//! This crate knows files and threads and nothing about sockets or async
//! runtimes. It holds:
//!
//! - [`wal`]: the checksummed append-only record log with group commit that
//!   the file store is built on (torn tails are cut, a corrupt middle refuses
//!   to start, the file is preallocated);
//! - [`ops`]: the binary form of the operations that carry values, in
//!   which the store writes its records (JSON for the rest);
//! - [`store`]: [`FileStore`], the core's [`paxos_core::Store`] on top of the
//!   log, for any [`paxos_core::Fold`] state: batches stay atomic across
//!   crashes, and a state that shrinks is compacted by write-then-rename;
//! - [`persist`]: where a loop's writes are made durable: inline, or on a
//!   thread of their own while the loop goes on;
//! - [`suite`]: the conformance suite that every store runs, in memory or on
//!   disk, with a deliberately failing store.

pub mod ops;
pub mod persist;
pub mod store;
pub mod suite;
pub mod wal;

pub use store::{Durable, FileStore, CHECKPOINT, CHECKPOINT_PREV, LOCK, LOG_DIR, OWNER};
