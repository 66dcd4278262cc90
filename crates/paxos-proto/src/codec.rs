//! The JSON codec: pure functions from envelopes to bytes and back.

use std::io::Write;

use serde::Deserialize;
use thiserror::Error;

use crate::{
    Ballot, Envelope, Message, Node, Slot, MAX_BODY_BYTES, MAX_CLIENT_NUMBER, MAX_COUNTER, MAX_DATAGRAM_BYTES,
    MAX_VALUE_BYTES, PROTOCOL_VERSION,
};

/// Why a datagram could not be decoded. Each variant is a drop-counter kind.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The datagram is larger than [`MAX_DATAGRAM_BYTES`].
    #[error("datagram of {len} bytes exceeds the limit of {MAX_DATAGRAM_BYTES}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The datagram is not a JSON envelope of a known message.
    #[error("malformed datagram: {0}")]
    Malformed(String),
    /// The envelope names another protocol version.
    #[error("protocol version {got} is not {PROTOCOL_VERSION}")]
    Version {
        /// The version it named.
        got: u16,
    },
    /// The message is well formed but breaks a rule no honest peer breaks.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

impl DecodeError {
    /// A short name for drop counters and rate-limited logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::Version { .. } => "version",
            DecodeError::Invalid(_) => "invalid",
        }
    }
}

/// Why an envelope could not be encoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded datagram would exceed [`MAX_BODY_BYTES`].
    #[error("encoded datagram of {len} bytes exceeds the limit of {MAX_BODY_BYTES}")]
    TooLarge {
        /// The encoded length.
        len: usize,
    },
}

/// Encodes `env` as one JSON datagram, appending to `buf` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] when the result would exceed [`MAX_BODY_BYTES`];
/// `buf` then holds the oversized encoding and must not be sent.
pub fn encode(env: &Envelope, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    buf.clear();
    // Serializing plain data structures into a Vec cannot fail: every map key is a string.
    serde_json::to_writer(&mut *buf, env).expect("envelope serializes");
    if buf.len() > MAX_BODY_BYTES {
        return Err(EncodeError::TooLarge { len: buf.len() });
    }
    Ok(())
}

/// Encodes `msg` alone (the `msg` field of an envelope), appending to `body`
/// (cleared first): the part of an envelope that [`encode_with_body`] can
/// reuse for every receiver of the same message.
pub fn encode_message(msg: &Message, body: &mut Vec<u8>) {
    body.clear();
    if !fast::encode_message(msg, body) {
        serde_json::to_writer(&mut *body, msg).expect("message serializes");
    }
}

/// Encodes the envelope `{version, cluster, from, to, msg}` whose `msg` is
/// `body`, as [`encode_message`] wrote it, appending to `buf` (cleared
/// first). The bytes equal those of [`encode`] of the same envelope, so a
/// message sent to five receivers is serialized once, not five times.
///
/// # Errors
/// [`EncodeError::TooLarge`] as for [`encode`].
pub fn encode_with_body(
    cluster: &str,
    from: Node,
    to: Node,
    body: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_envelope_head(cluster, from, to, buf);
    buf.extend_from_slice(body);
    buf.push(b'}');
    if buf.len() > MAX_BODY_BYTES {
        return Err(EncodeError::TooLarge { len: buf.len() });
    }
    Ok(())
}

/// Writes the bytes of the envelope `{version, cluster, from, to, msg}` in
/// front of its `msg` into `buf` (cleared first): followed by a body as
/// [`encode_message`] wrote it and a closing brace, they are the envelope
/// [`encode_with_body`] writes, so a sender can put the three parts straight
/// into a [`Bundle`] ([`Bundle::push_parts`]) without a copy in between.
pub fn encode_envelope_head(cluster: &str, from: Node, to: Node, buf: &mut Vec<u8>) {
    buf.clear();
    // Written into `buf`, not through a String: this runs once per receiver of every message.
    write!(buf, "{{\"version\":{PROTOCOL_VERSION},\"cluster\":").expect("a Vec takes every write");
    fast::put_str(buf, cluster);
    buf.extend_from_slice(b",\"from\":");
    fast::put_node(buf, from);
    buf.extend_from_slice(b",\"to\":");
    fast::put_node(buf, to);
    buf.extend_from_slice(b",\"msg\":");
}

/// Packs encoded envelopes bound for one address into as few datagrams as
/// the size limit allows: a *bundle* is a JSON array of envelopes, and a
/// bundle of one is sent as the bare envelope, so a peer that only ever
/// gets one message per datagram sees exactly what [`encode`] writes.
///
/// ```text
/// datagram := envelope | "[" envelope ("," envelope)* "]"
/// ```
#[derive(Debug, Default)]
pub struct Bundle {
    /// The datagram so far: the bare envelope while it holds one; from the
    /// second on, `[` then the envelopes, comma-separated (`]` is added by
    /// [`Bundle::finish`]). So a bundle of one, the common case of a large
    /// message, is never copied to become a datagram.
    buf: Vec<u8>,
    count: usize,
}

impl Bundle {
    /// An empty bundle.
    pub fn new() -> Bundle {
        Bundle { buf: Vec::new(), count: 0 }
    }

    /// How many envelopes it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `envelope` (encoded, at most [`MAX_BODY_BYTES`]) still fits.
    pub fn fits(&self, envelope: &[u8]) -> bool {
        self.fits_len(envelope.len())
    }

    /// Whether an envelope of `len` bytes (at most [`MAX_BODY_BYTES`]) still fits.
    pub fn fits_len(&self, len: usize) -> bool {
        // A comma, the envelope and the close bracket; with the second, the open bracket too.
        let brackets = if self.count == 1 { 3 } else { 2 };
        self.count == 0 || self.buf.len() + len + brackets <= MAX_BODY_BYTES
    }

    /// Adds one encoded envelope; the caller checked [`Bundle::fits`].
    pub fn push(&mut self, envelope: &[u8]) {
        self.push_parts(&[envelope]);
    }

    /// Adds one encoded envelope given in parts (see [`encode_envelope_head`]);
    /// the caller checked [`Bundle::fits_len`] with their total length.
    pub fn push_parts(&mut self, parts: &[&[u8]]) {
        debug_assert!(self.fits_len(parts.iter().map(|p| p.len()).sum()), "bundle overflow");
        match self.count {
            0 => {}
            1 => {
                self.buf.insert(0, b'[');
                self.buf.push(b',');
            }
            _ => self.buf.push(b','),
        }
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.count += 1;
    }

    /// The datagram, in `out` (whose bytes it replaces), leaving the bundle
    /// empty for reuse: the bare envelope for one, an array for more,
    /// nothing for none. The bytes move, they are not copied.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.count > 1 {
            self.buf.push(b']');
        }
        debug_assert!(self.buf.len() <= MAX_BODY_BYTES);
        std::mem::swap(out, &mut self.buf);
        self.buf.clear();
        self.count = 0;
    }
}

/// Decodes one datagram: one envelope, or a bundle of them ([`Bundle`]).
/// Every envelope of a bundle passes the checks of [`decode`]; one bad
/// envelope refuses the whole datagram.
///
/// # Errors
/// As for [`decode`]; an empty bundle is [`DecodeError::Invalid`].
pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<Envelope>, DecodeError> {
    if bytes.len() > MAX_DATAGRAM_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    if let Some(envs) = fast::envelopes(bytes) {
        // Read as serde_json would have read them (see `fast`); checked as they would have been.
        for env in &envs {
            validate_envelope(env)?;
        }
        return Ok(envs);
    }
    decode_bundle_without_fast_path(bytes)
}

/// [`decode_bundle`] with serde_json alone, never the fast path: what the
/// fast path must agree with, for the fuzzer (`fuzz/fuzz_targets/datagram.rs`).
///
/// # Errors
/// As for [`decode_bundle`].
#[doc(hidden)]
pub fn decode_bundle_without_fast_path(bytes: &[u8]) -> Result<Vec<Envelope>, DecodeError> {
    if bytes.len() > MAX_DATAGRAM_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return decode(bytes).map(|env| vec![env]);
    }
    let envs: Vec<Envelope> = serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if envs.is_empty() {
        return Err(DecodeError::Invalid("empty bundle"));
    }
    for env in &envs {
        if env.version != PROTOCOL_VERSION {
            return Err(DecodeError::Version { got: env.version });
        }
        validate_envelope(env)?;
    }
    Ok(envs)
}

/// Decodes one datagram.
///
/// # Errors
/// A [`DecodeError`] naming why the datagram was refused; it never panics,
/// whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.len() > MAX_DATAGRAM_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    let env: Envelope = match serde_json::from_slice(bytes) {
        Ok(env) => env,
        Err(err) => {
            // A newer or older peer's message may not parse at all: tell a version
            // mismatch apart from garbage so that operators see the right reason.
            #[derive(Deserialize)]
            struct Header {
                version: u16,
            }
            if let Ok(h) = serde_json::from_slice::<Header>(bytes) {
                if h.version != PROTOCOL_VERSION {
                    return Err(DecodeError::Version { got: h.version });
                }
            }
            return Err(DecodeError::Malformed(err.to_string()));
        }
    };
    if env.version != PROTOCOL_VERSION {
        return Err(DecodeError::Version { got: env.version });
    }
    validate_envelope(&env)?;
    Ok(env)
}

/// The rules of [`validate`], and client ids below 2^53 on both ends.
fn validate_envelope(env: &Envelope) -> Result<(), DecodeError> {
    let node_ok = |n: &Node| !matches!(n, Node::Client(id) if id.0 > MAX_CLIENT_NUMBER);
    if !node_ok(&env.from) || !node_ok(&env.to) {
        return Err(DecodeError::Invalid("client id of 2^53 or more"));
    }
    validate(&env.msg)
}

/// Rules every honest sender keeps, checked once here so that no role has to.
fn validate(msg: &Message) -> Result<(), DecodeError> {
    let value_ok = |v: &crate::Value| match v {
        crate::Value::Noop => true,
        crate::Value::Command(c) => c.data.len() <= MAX_VALUE_BYTES,
        crate::Value::Config(c) => config_ok(c),
    };
    // Slots and rounds near u64::MAX would overflow `+ 1` in the roles, and a
    // forged huge round would fence out every proposer for good.
    let slot_ok = |s: &Slot| s.0 <= MAX_COUNTER;
    let ballot_ok = |b: &Ballot| b.round <= MAX_COUNTER;
    // Client numbers stay below 2^53, so that every JSON parser reads them exactly.
    let number_ok = |n: u64| n <= MAX_CLIENT_NUMBER;
    let (counters_ok, values_ok) = match msg {
        Message::Prepare(p) => (
            ballot_ok(&p.ballot) && slot_ok(&p.from) && p.epoch.as_ref().is_none_or(|e| slot_ok(&e.start)),
            p.epoch.as_ref().is_none_or(|e| config_ok(&e.config) && e.config.epoch == p.ballot.epoch),
        ),
        Message::Promise(p) => {
            if p.to < p.from {
                return Err(DecodeError::Invalid("promise page ends before it starts"));
            }
            if !p.entries.iter().all(|e| e.slot >= p.from && e.slot < p.to && e.ballot <= p.ballot) {
                return Err(DecodeError::Invalid("promise entry outside its page or above its ballot"));
            }
            (
                ballot_ok(&p.ballot) && slot_ok(&p.to) && slot_ok(&p.decided),
                p.entries.iter().all(|e| value_ok(&e.value)),
            )
        }
        Message::Nack(n) => (ballot_ok(&n.ballot) && ballot_ok(&n.promised), true),
        Message::ProbeReply(r) => {
            (ballot_ok(&r.promised) && slot_ok(&r.decided) && r.digest.is_none_or(|d| slot_ok(&d.slot)), true)
        }
        Message::Accept(a) => (
            ballot_ok(&a.ballot) && slot_ok(&a.commit) && a.entries.iter().all(|e| slot_ok(&e.slot)),
            a.entries.iter().all(|e| value_ok(&e.value)),
        ),
        Message::Accepted(a) => (ballot_ok(&a.ballot) && a.slots.iter().all(slot_ok), true),
        Message::Heartbeat(h) => (
            ballot_ok(&h.ballot)
                && slot_ok(&h.decided)
                && slot_ok(&h.known)
                && h.digest.is_none_or(|d| slot_ok(&d.slot)),
            true,
        ),
        Message::CatchUp(c) => (slot_ok(&c.from), true),
        Message::CatchUpReply(r) => {
            let end = r.from.0.checked_add(r.entries.len() as u64);
            (
                end.is_some_and(|e| e <= MAX_COUNTER)
                    && slot_ok(&r.decided)
                    && r.epoch.as_ref().is_none_or(|e| slot_ok(&e.start) && e.start <= r.from),
                r.entries.iter().all(value_ok) && r.epoch.as_ref().is_none_or(|e| config_ok(&e.config)),
            )
        }
        Message::StateRequest(r) => (r.after.is_none_or(|c| number_ok(c.0)), true),
        Message::StateReply(r) => {
            let session_ok = |s: &crate::SessionEntry| number_ok(s.client.0) && number_ok(s.seq) && s.slot < r.at;
            let ordered = r.sessions.windows(2).all(|w| w[0].client < w[1].client);
            (
                slot_ok(&r.at)
                    && ordered
                    && r.sessions.iter().all(session_ok)
                    && r.epoch.as_ref().is_none_or(|e| slot_ok(&e.start) && e.start <= r.at),
                r.epoch.as_ref().is_none_or(|e| config_ok(&e.config)),
            )
        }
        Message::ClientReply(r) => (slot_ok(&r.slot) && number_ok(r.seq), true),
        Message::LogRead(r) => (slot_ok(&r.from) && number_ok(r.req), true),
        Message::LogReply(r) => (
            slot_ok(&r.decided) && slot_ok(&r.start) && number_ok(r.req) && r.entries.iter().all(|e| slot_ok(&e.slot)),
            true,
        ),
        Message::StatusReply(r) => (ballot_ok(&r.ballot) && slot_ok(&r.decided) && number_ok(r.req), true),
        // Oversized client values pass: the proposer answers them with an
        // error, and the datagram limit still bounds them.
        Message::ClientPropose(m) => (number_ok(m.seq), true),
        Message::ClientRedirect(m) => (number_ok(m.seq), true),
        Message::ClientError(m) => (number_ok(m.seq), true),
        Message::StatusRequest(m) => (number_ok(m.req), true),
        Message::Cookie(m) => (number_ok(m.req), true),
        Message::MemberRequest(m) => (number_ok(m.req) && m.deadline_ms.is_none_or(number_ok), true),
        Message::MemberReply(m) => (number_ok(m.req), m.config.as_ref().is_none_or(config_ok)),
        Message::RestoreRequest(m) => {
            let end = m.from.0.checked_add(m.entries.len() as u64);
            (
                number_ok(m.req) && end.is_some_and(|e| e <= MAX_COUNTER),
                m.entries.iter().flatten().all(|v| v.len() <= MAX_VALUE_BYTES),
            )
        }
        Message::RestoreReply(m) => (number_ok(m.req) && slot_ok(&m.end), true),
        Message::TransferRequest(m) => (number_ok(m.req), true),
        Message::TransferReply(m) => (number_ok(m.req), true),
        Message::TimeoutNow(m) => (ballot_ok(&m.ballot), true),
        Message::Probe(p) => (slot_ok(&p.decided), true),
    };
    if !counters_ok {
        return Err(DecodeError::Invalid("slot or round beyond MAX_COUNTER, or a client number of 2^53 or more"));
    }
    if !values_ok {
        return Err(DecodeError::Invalid("value too large"));
    }
    Ok(())
}

/// A configuration every honest node could have decided: at least one
/// proposer and one acceptor, at most 64 acceptors, no id twice per role,
/// no incarnation on a proposer.
fn config_ok(c: &crate::Config) -> bool {
    let distinct = |ms: &[crate::Member]| {
        let mut ids: Vec<u32> = ms.iter().map(|m| m.id.0).collect();
        ids.sort_unstable();
        ids.windows(2).all(|w| w[0] != w[1])
    };
    !c.proposers.is_empty()
        && !c.acceptors.is_empty()
        && c.acceptors.len() <= 64
        && distinct(&c.acceptors)
        && distinct(&c.proposers)
        && c.proposers.iter().all(|p| p.incarnation.is_none())
}

/// The length of `s` once written as a JSON string, quotes included.
///
/// Called several times per value on a leader's path (the byte budgets of
/// the window, of datagrams, of the caches), so the common case, a string
/// with nothing to escape, is one counting pass the compiler vectorizes: a
/// branch-free count into a byte, a chunk of at most 255 bytes at a time
/// (`filter().count()` is not vectorized: 550 instructions for 64 bytes
/// against 82 this way, under callgrind).
pub fn json_str_len(s: &str) -> usize {
    let mut escaped = 0;
    for chunk in s.as_bytes().chunks(255) {
        let mut n = 0u8;
        for &b in chunk {
            n += u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
        }
        escaped += usize::from(n);
    }
    if escaped == 0 {
        return 2 + s.len();
    }
    let mut len = 2;
    for b in s.bytes() {
        len += match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        };
    }
    len
}

mod fast;

#[cfg(test)]
mod tests;
