//! Wire messages, ballots, ids and the JSON codec of the Paxos log.
//!
//! This crate knows bytes and messages and nothing else: no sockets, no clocks,
//! no Paxos rules. `paxos-core` decides what to send; the daemons move the bytes
//! that [`encode`] and [`decode`] produce.
//!
//! ```text
//!  client            proposer (leader)              acceptors (5)        proposer (peer)
//!    | ClientPropose       |                              |                     |
//!    |-------------------->|  Prepare(b, from)  once per  |                     |
//!    |                     |----------------------------->|  (leadership)       |
//!    |                     |<-----------------------------|  Promise / Nack     |
//!    |                     |  Accept(b, [(slot, value)])  |                     |
//!    |                     |----------------------------->|   copy of Accept    |
//!    |                     |------------------------------+-------------------->|
//!    |                     |        Accepted(b, slots)    |  Accepted(b, slots) |
//!    |                     |<-----------------------------|-------------------->|
//!    |  ClientReply(slot)  |  (majority: decided)         |   (learns too)      |
//!    |<--------------------|                              |                     |
//!    |                     |  Heartbeat, CatchUp between proposers (and from acceptors) |
//! ```
//!
//! With `[auth]`, a datagram ends with a MAC over its bytes ([`auth`]).
//!
//! Every datagram is one JSON [`Envelope`]: protocol version, cluster name,
//! sender, receiver and one [`Message`]. [`decode`] refuses anything larger than
//! [`MAX_DATAGRAM_BYTES`], anything that is not valid JSON of that shape, and
//! any other protocol version, each with its own [`DecodeError`]. Envelopes
//! bound for one address may share a datagram as a JSON array, a *bundle*
//! ([`Bundle`], [`decode_bundle`]): a leader answers many clients of one
//! socket, or a client proposes many values, with one datagram.
#![deny(missing_docs)]

pub mod auth;
mod codec;
mod digest;
mod messages;
mod types;

pub use codec::{
    decode, decode_bundle, decode_bundle_without_fast_path, encode, encode_envelope_head, encode_message,
    encode_with_body, json_str_len, Bundle, DecodeError, EncodeError,
};
pub use digest::{Digest, DIGEST_EVERY, DIGEST_START};
pub use messages::*;
pub use types::*;

/// The protocol version this build speaks; any other is dropped on decode.
pub const PROTOCOL_VERSION: u16 = 2;

/// The largest datagram we send or accept: the largest UDP payload over IPv4.
pub const MAX_DATAGRAM_BYTES: usize = 65_507;

/// The largest body a datagram we send may have: room is left for the MAC
/// trailer of `[auth]` ([`auth::TRAILER_BYTES`]), so that a signed datagram
/// still fits [`MAX_DATAGRAM_BYTES`]. [`encode`] and [`Bundle`] keep to it.
pub const MAX_BODY_BYTES: usize = MAX_DATAGRAM_BYTES - auth::TRAILER_BYTES;

/// A read (status or log) that carries no cookie must be at least this long
/// (pad it with spaces after the JSON): its first answer is a cookie, which
/// must not be longer than the request (see [`Cookie`]).
pub const MIN_UNPROVEN_READ_BYTES: usize = 320;

/// The largest client value, in bytes of UTF-8.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// The largest client id, sequence number or request number a datagram may
/// carry: 2^53 - 1, the largest integer every JSON parser reads exactly
/// (JavaScript's numbers are doubles).
pub const MAX_CLIENT_NUMBER: u64 = (1 << 53) - 1;

/// The largest slot or ballot round a datagram may name. Far beyond anything a
/// cluster reaches (2^62 slots at a million a second is 146,000 years), and far
/// enough below `u64::MAX` that `slot + 1` and `round + 1` never overflow.
pub const MAX_COUNTER: u64 = 1 << 62;
