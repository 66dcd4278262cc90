//! The JSON codec: pure functions from envelopes to bytes and back.

use serde::Deserialize;
use thiserror::Error;

use crate::{Ballot, Envelope, Message, Slot, MAX_COUNTER, MAX_DATAGRAM_BYTES, MAX_VALUE_BYTES, PROTOCOL_VERSION};

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
    /// The encoded datagram would exceed [`MAX_DATAGRAM_BYTES`].
    #[error("encoded datagram of {len} bytes exceeds the limit of {MAX_DATAGRAM_BYTES}")]
    TooLarge {
        /// The encoded length.
        len: usize,
    },
}

/// Encodes `env` as one JSON datagram, appending to `buf` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] when the result would exceed [`MAX_DATAGRAM_BYTES`];
/// `buf` then holds the oversized encoding and must not be sent.
pub fn encode(env: &Envelope, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    buf.clear();
    // Serializing plain data structures into a Vec cannot fail: every map key is a string.
    serde_json::to_writer(&mut *buf, env).expect("envelope serializes");
    if buf.len() > MAX_DATAGRAM_BYTES {
        return Err(EncodeError::TooLarge { len: buf.len() });
    }
    Ok(())
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
    validate(&env.msg)?;
    Ok(env)
}

/// Rules every honest sender keeps, checked once here so that no role has to.
fn validate(msg: &Message) -> Result<(), DecodeError> {
    let value_ok = |v: &crate::Value| match v {
        crate::Value::Noop => true,
        crate::Value::Command(c) => c.data.len() <= MAX_VALUE_BYTES,
    };
    // Slots and rounds near u64::MAX would overflow `+ 1` in the roles, and a
    // forged huge round would fence out every proposer for good.
    let slot_ok = |s: &Slot| s.0 <= MAX_COUNTER;
    let ballot_ok = |b: &Ballot| b.round <= MAX_COUNTER;
    let (counters_ok, values_ok) = match msg {
        Message::Prepare(p) => (ballot_ok(&p.ballot) && slot_ok(&p.from), true),
        Message::Promise(p) => {
            if p.to < p.from {
                return Err(DecodeError::Invalid("promise page ends before it starts"));
            }
            if !p.entries.iter().all(|e| e.slot >= p.from && e.slot < p.to && e.ballot <= p.ballot) {
                return Err(DecodeError::Invalid("promise entry outside its page or above its ballot"));
            }
            (
                ballot_ok(&p.ballot) && slot_ok(&p.to) && slot_ok(&p.trimmed_below),
                p.entries.iter().all(|e| value_ok(&e.value)),
            )
        }
        Message::Nack(n) => (ballot_ok(&n.ballot) && ballot_ok(&n.promised), true),
        Message::ProbeReply(r) => (ballot_ok(&r.promised), true),
        Message::Accept(a) => (
            ballot_ok(&a.ballot) && a.entries.iter().all(|e| slot_ok(&e.slot)),
            a.entries.iter().all(|e| value_ok(&e.value)),
        ),
        Message::Accepted(a) => (ballot_ok(&a.ballot) && a.slots.iter().all(slot_ok), true),
        Message::Heartbeat(h) => (ballot_ok(&h.ballot) && slot_ok(&h.decided) && slot_ok(&h.known), true),
        Message::Trim(t) => (slot_ok(&t.below), true),
        Message::CatchUp(c) => (slot_ok(&c.from), true),
        Message::CatchUpReply(r) => {
            let end = r.from.0.checked_add(r.entries.len() as u64);
            (end.is_some_and(|e| e <= MAX_COUNTER) && slot_ok(&r.decided), r.entries.iter().all(value_ok))
        }
        Message::ClientReply(r) => (slot_ok(&r.slot), true),
        Message::LogRead(r) => (slot_ok(&r.from), true),
        Message::LogReply(r) => (slot_ok(&r.decided) && r.entries.iter().all(|e| slot_ok(&e.slot)), true),
        Message::StatusReply(r) => (ballot_ok(&r.ballot) && slot_ok(&r.decided), true),
        // Oversized client values pass: the proposer answers them with an
        // error, and the datagram limit still bounds them.
        Message::Probe(_)
        | Message::ClientPropose(_)
        | Message::ClientRedirect(_)
        | Message::ClientError(_)
        | Message::StatusRequest(_) => (true, true),
    };
    if !counters_ok {
        return Err(DecodeError::Invalid("slot or round beyond MAX_COUNTER"));
    }
    if !values_ok {
        return Err(DecodeError::Invalid("value too large"));
    }
    Ok(())
}

/// The length of `s` once written as a JSON string, quotes included.
pub fn json_str_len(s: &str) -> usize {
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

#[cfg(test)]
mod tests;
