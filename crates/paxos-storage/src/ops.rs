//! The binary form of the operations in a segment's records.
//!
//! Nearly every operation a role writes carries one decided or accepted
//! value, and writing those as JSON cost more than anything else an acceptor
//! does per value but check MACs (`docs/bench/PROFILE.md`, fifth round). So
//! the two that carry values are written in a fixed binary layout, and every
//! other operation (rare: a promise, a round, a configuration, a chunk of
//! sessions) as its JSON, behind a length:
//!
//! ```text
//! ops     := op*                                  (to the end of the record)
//! op      := 0x00 len:u32le json                  any operation, as JSON
//!          | 0x01 slot:u64le ballot value         AcceptorOp::Accept
//!          | 0x02 slot:u64le value                AcceptorOp::Learn
//!          | 0x02 slot:u64le value duplicate:u8   ProposerOp::Learn (duplicate: 0 or 1)
//! ballot  := epoch:u32le round:u64le proposer:u32le
//! value   := 0x00                                 Value::Noop
//!          | 0x01 client:u64le seq:u64le at:u64le len:u32le data   Value::Command (data: UTF-8)
//!          | 0x02 len:u32le json                  any value, as JSON (a configuration)
//! ```
//!
//! Integers are little-endian and of fixed width: a value's record is about
//! 60 bytes smaller than its JSON and is copied, not escaped. Decoding checks
//! every length against what is left of the record and every string for
//! UTF-8, so damage that the record's CRC missed is an error, never a panic
//! or an allocation of a length read from disk.

use paxos_core::{AcceptorOp, ProposerOp};
use paxos_proto::{Ballot, ClientId, Command, NodeId, Slot, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

const OP_JSON: u8 = 0x00;
const OP_ACCEPT: u8 = 0x01;
const OP_LEARN: u8 = 0x02;

const VALUE_NOOP: u8 = 0x00;
const VALUE_COMMAND: u8 = 0x01;
const VALUE_JSON: u8 = 0x02;

/// An operation with a binary form.
pub trait BinaryOp: Sized {
    /// Appends the operation's binary form to `out`.
    ///
    /// # Errors
    /// When a part of it does not encode (JSON) or is too long for its length field.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String>;

    /// Reads one operation from the front of `input`.
    ///
    /// # Errors
    /// What is wrong with the bytes, in a few words.
    fn decode(input: &mut Reader<'_>) -> Result<Self, String>;
}

/// The unread rest of a record.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err(format!("an operation needs {n} more bytes where {} are left", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    /// A `len:u32le` and that many bytes.
    fn sized(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()?;
        self.take(len as usize)
    }

    fn json<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let body = self.sized()?;
        serde_json::from_slice(body).map_err(|e| format!("an operation's JSON does not decode: {e}"))
    }
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), String> {
    let len = u32::try_from(bytes.len()).map_err(|_| format!("{} bytes do not fit a length field", bytes.len()))?;
    put_u32(out, len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// `len:u32le json`, written in place.
fn put_json<T: Serialize>(out: &mut Vec<u8>, item: &T) -> Result<(), String> {
    let at = out.len();
    put_u32(out, 0);
    serde_json::to_writer(&mut *out, item).map_err(|e| format!("encode: {e}"))?;
    let len = out.len() - at - 4;
    let len = u32::try_from(len).map_err(|_| format!("{len} bytes of JSON do not fit a length field"))?;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_ballot(out: &mut Vec<u8>, b: &Ballot) {
    put_u32(out, b.epoch);
    put_u64(out, b.round);
    put_u32(out, b.proposer.0);
}

fn ballot(input: &mut Reader<'_>) -> Result<Ballot, String> {
    Ok(Ballot { epoch: input.u32()?, round: input.u64()?, proposer: NodeId(input.u32()?) })
}

fn put_value(out: &mut Vec<u8>, value: &Value) -> Result<(), String> {
    match value {
        Value::Noop => out.push(VALUE_NOOP),
        Value::Command(c) => {
            out.push(VALUE_COMMAND);
            put_u64(out, c.client.0);
            put_u64(out, c.seq);
            put_u64(out, c.at);
            put_sized(out, c.data.as_bytes())?;
        }
        Value::Config(_) => {
            out.push(VALUE_JSON);
            put_json(out, value)?;
        }
    }
    Ok(())
}

fn value(input: &mut Reader<'_>) -> Result<Value, String> {
    match input.u8()? {
        VALUE_NOOP => Ok(Value::Noop),
        VALUE_COMMAND => {
            let (client, seq, at) = (ClientId(input.u64()?), input.u64()?, input.u64()?);
            let data =
                std::str::from_utf8(input.sized()?).map_err(|e| format!("a command's data is not UTF-8: {e}"))?;
            Ok(Value::Command(Command { client, seq, data: data.into(), at }))
        }
        VALUE_JSON => input.json(),
        other => Err(format!("unknown value tag {other:#04x}")),
    }
}

/// The head of either role's `Learn`: its tag, slot and value.
fn put_learn(out: &mut Vec<u8>, slot: Slot, value: &Value) -> Result<(), String> {
    out.push(OP_LEARN);
    put_u64(out, slot.0);
    put_value(out, value)
}

/// An operation without a binary layout of its own: its JSON behind a length.
fn put_other<T: Serialize>(out: &mut Vec<u8>, op: &T) -> Result<(), String> {
    out.push(OP_JSON);
    put_json(out, op)
}

impl BinaryOp for AcceptorOp {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            AcceptorOp::Accept { slot, ballot, value } => {
                out.push(OP_ACCEPT);
                put_u64(out, slot.0);
                put_ballot(out, ballot);
                put_value(out, value)
            }
            AcceptorOp::Learn { slot, value } => put_learn(out, *slot, value),
            _ => put_other(out, self),
        }
    }

    fn decode(input: &mut Reader<'_>) -> Result<Self, String> {
        match input.u8()? {
            OP_JSON => input.json(),
            OP_ACCEPT => {
                Ok(AcceptorOp::Accept { slot: Slot(input.u64()?), ballot: ballot(input)?, value: value(input)? })
            }
            OP_LEARN => Ok(AcceptorOp::Learn { slot: Slot(input.u64()?), value: value(input)? }),
            other => Err(format!("unknown acceptor operation tag {other:#04x}")),
        }
    }
}

impl BinaryOp for ProposerOp {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            ProposerOp::Learn { slot, value, duplicate } => {
                put_learn(out, *slot, value)?;
                out.push(u8::from(*duplicate));
                Ok(())
            }
            _ => put_other(out, self),
        }
    }

    fn decode(input: &mut Reader<'_>) -> Result<Self, String> {
        match input.u8()? {
            OP_JSON => input.json(),
            OP_LEARN => {
                let (slot, value) = (Slot(input.u64()?), value(input)?);
                let duplicate = match input.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(format!("a learned value's duplicate flag is {other}, not 0 or 1")),
                };
                Ok(ProposerOp::Learn { slot, value, duplicate })
            }
            other => Err(format!("unknown proposer operation tag {other:#04x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_proto::{Config, Member, SessionEntry};

    fn round_trip<Op: BinaryOp + PartialEq + std::fmt::Debug>(ops: &[Op]) {
        let mut bytes = Vec::new();
        for op in ops {
            op.encode(&mut bytes).unwrap();
        }
        let mut input = Reader::new(&bytes);
        let mut back = Vec::new();
        while !input.is_empty() {
            back.push(Op::decode(&mut input).unwrap());
        }
        assert_eq!(back, ops);
        // Every strict prefix is an error, never a panic or a different list of operations.
        for cut in 0..bytes.len() {
            let mut input = Reader::new(&bytes[..cut]);
            let mut decoded = Vec::new();
            let result = loop {
                if input.is_empty() {
                    break Ok(());
                }
                match Op::decode(&mut input) {
                    Ok(op) => decoded.push(op),
                    Err(e) => break Err(e),
                }
            };
            assert!(result.is_err() || decoded.len() < ops.len(), "a prefix of {cut} bytes decoded as everything");
        }
    }

    fn values() -> Vec<Value> {
        let config = Config {
            epoch: 3,
            acceptors: vec![Member { id: NodeId(1), addr: "127.0.0.1:7001".into(), incarnation: Some(9) }],
            proposers: vec![Member { id: NodeId(2), addr: "[::1]:7002".into(), incarnation: None }],
            session_lifetime_ms: 3_600_000,
        };
        vec![
            Value::Noop,
            Value::Command(Command {
                client: ClientId(7), seq: u64::MAX, data: "tab\t \"quoted\" é ✓".into(), at: 1
            }),
            Value::Command(Command::new(ClientId(0), 0, "")),
            Value::Config(config),
        ]
    }

    #[test]
    fn acceptor_operations_round_trip() {
        let b = Ballot { epoch: 2, round: 1 << 40, proposer: NodeId(u32::MAX) };
        let mut ops = vec![AcceptorOp::Identity(42), AcceptorOp::Promise(b), AcceptorOp::Retain(Slot(9))];
        for (i, v) in values().into_iter().enumerate() {
            ops.push(AcceptorOp::Accept { slot: Slot(i as u64), ballot: b, value: v.clone() });
            ops.push(AcceptorOp::Learn { slot: Slot(u64::MAX - i as u64), value: v });
        }
        ops.push(AcceptorOp::Sessions {
            clock: 5,
            first: true,
            sessions: vec![SessionEntry { client: ClientId(3), seq: 4, slot: Slot(5), at: 6 }],
        });
        round_trip(&ops);
    }

    #[test]
    fn proposer_operations_round_trip() {
        let mut ops = vec![ProposerOp::Round(77), ProposerOp::Retain(Slot(3))];
        for (i, v) in values().into_iter().enumerate() {
            ops.push(ProposerOp::Learn { slot: Slot(i as u64), value: v, duplicate: i % 2 == 1 });
        }
        round_trip(&ops);
    }

    #[test]
    fn values_are_written_in_binary_and_the_rest_as_json() {
        let mut out = Vec::new();
        let learn = AcceptorOp::Learn { slot: Slot(1), value: Value::Command(Command::new(ClientId(1), 2, "x")) };
        learn.encode(&mut out).unwrap();
        assert_eq!(out.len(), 1 + 8 + 1 + 24 + 4 + 1);
        assert_eq!(out[0], OP_LEARN);
        out.clear();
        AcceptorOp::Identity(5).encode(&mut out).unwrap();
        assert_eq!(out[0], OP_JSON);
        assert_eq!(&out[5..], br#"{"identity":5}"#);
    }

    #[test]
    fn damage_is_an_error_with_a_reason() {
        let decode = |bytes: &[u8]| AcceptorOp::decode(&mut Reader::new(bytes)).unwrap_err();
        assert!(decode(&[0x07]).contains("unknown acceptor operation tag 0x07"), "{}", decode(&[0x07]));
        let mut learn = vec![OP_LEARN];
        learn.extend_from_slice(&1u64.to_le_bytes());
        learn.push(0x09);
        assert!(decode(&learn).contains("unknown value tag 0x09"));
        // A length far beyond the record is refused before anything is allocated.
        let mut huge = vec![OP_JSON];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).contains("more bytes where 0 are left"), "{}", decode(&huge));
        let mut command = vec![OP_LEARN];
        command.extend_from_slice(&1u64.to_le_bytes());
        command.push(VALUE_COMMAND);
        command.extend_from_slice(&[0u8; 24]);
        command.extend_from_slice(&2u32.to_le_bytes());
        command.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode(&command).contains("not UTF-8"));
        let mut flag = vec![OP_LEARN];
        flag.extend_from_slice(&1u64.to_le_bytes());
        flag.extend_from_slice(&[VALUE_NOOP, 2]);
        let e = ProposerOp::decode(&mut Reader::new(&flag)).unwrap_err();
        assert!(e.contains("duplicate flag is 2"), "{e}");
    }
}
