//! Digests of a decided log, which learners claim and proposers compare.
//!
//! Every learner folds each slot it applies, in order, into a 64-bit chain
//! ([`Digest::fold`]), starting from [`DIGEST_START`] at slot 0. Two
//! learners that applied the same values hold the same chain at every slot;
//! once one value differs, every later chain differs too (each step of the
//! fold is one-to-one in the chain and in each word folded in, so one
//! changed word always changes the result; several changed words cancel
//! out with odds of about 2^-64). Learners claim their chain at every
//! [`DIGEST_EVERY`]th slot, so a comparison at any later point shows a
//! divergence anywhere before it.
//!
//! The fold is part of the protocol: every release must compute it alike
//! (docs/PROTOCOL.md gives it word by word). It guards against faults, not
//! against an attacker, who would need the peer key to send a claim anyway.

use serde::{Deserialize, Serialize};

use crate::{Config, Member, Slot, Value};

/// Learners claim the digest of their decided log at every multiple of this many slots.
pub const DIGEST_EVERY: u64 = 8;

/// The chain of an empty log (slot 0).
pub const DIGEST_START: u64 = 0x7061_786f_735f_6c67; // "paxos_lg"

/// The multiplier of each step: odd, so that multiplying is one-to-one.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The digest of a decided log's first `slot` slots, as a learner claims it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The digest covers the slots below this one (a multiple of [`DIGEST_EVERY`]).
    pub slot: Slot,
    /// The chain's value there.
    pub chain: u64,
}

impl Digest {
    /// The chain after slot `slot` holding `value`, from `chain` before it.
    pub fn fold(chain: u64, slot: Slot, value: &Value) -> u64 {
        let h = step(chain, slot.0);
        match value {
            Value::Noop => step(h, 0),
            Value::Command(c) => {
                let h = step(step(step(step(h, 1), c.client.0), c.seq), c.at);
                bytes(h, c.data.as_bytes())
            }
            Value::Config(c) => config(step(h, 2), c),
        }
    }
}

fn step(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// Its length, then its bytes as little-endian words, the last one padded with zeros.
fn bytes(mut h: u64, b: &[u8]) -> u64 {
    h = step(h, b.len() as u64);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        h = step(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(w));
    }
    h
}

fn config(h: u64, c: &Config) -> u64 {
    let h = step(step(h, u64::from(c.epoch)), c.session_lifetime_ms);
    members(members(h, &c.acceptors), &c.proposers)
}

/// Their count, then each one's id, address and incarnation (0 for none, else 1 and the number).
fn members(mut h: u64, ms: &[Member]) -> u64 {
    h = step(h, ms.len() as u64);
    for m in ms {
        h = bytes(step(h, u64::from(m.id.0)), m.addr.as_bytes());
        h = match m.incarnation {
            None => step(h, 0),
            Some(i) => step(step(h, 1), i),
        };
    }
    h
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{ClientId, Command, NodeId};

    fn cmd(data: &str) -> Value {
        Value::Command(Command { client: ClientId(7), seq: 3, data: Arc::from(data), at: 1_000 })
    }

    fn config(incarnation: Option<u64>) -> Value {
        let m = |id, addr: &str, incarnation| Member { id: NodeId(id), addr: addr.into(), incarnation };
        Value::Config(Config {
            epoch: 2,
            acceptors: vec![m(1, "a:1", incarnation), m(2, "a:2", None)],
            proposers: vec![m(1, "p:1", None)],
            session_lifetime_ms: 3_600_000,
        })
    }

    /// The fold as docs/PROTOCOL.md states it: these numbers pin it, so that
    /// a change to it (which would make releases disagree) fails here.
    #[test]
    fn the_fold_is_pinned() {
        let chain = [Value::Noop, cmd("hello, paxos"), config(Some(9))]
            .iter()
            .enumerate()
            .fold(DIGEST_START, |h, (i, v)| Digest::fold(h, Slot(i as u64), v));
        assert_eq!(chain, PINNED, "the digest fold changed: releases would disagree ({chain:#018x})");
    }
    const PINNED: u64 = 0xee23_45af_48c8_e238;

    /// Anything that tells two values apart, or two slots, tells their chains apart.
    #[test]
    fn every_field_changes_the_chain() {
        let base = Digest::fold(DIGEST_START, Slot(5), &cmd("abcdefghij"));
        let others = [
            Digest::fold(DIGEST_START, Slot(6), &cmd("abcdefghij")),
            Digest::fold(DIGEST_START ^ 1, Slot(5), &cmd("abcdefghij")),
            Digest::fold(DIGEST_START, Slot(5), &cmd("abcdefghiJ")),
            Digest::fold(DIGEST_START, Slot(5), &cmd("abcdefghij\0")),
            Digest::fold(DIGEST_START, Slot(5), &cmd("abcdefgh")),
            Digest::fold(DIGEST_START, Slot(5), &Value::Noop),
            Digest::fold(DIGEST_START, Slot(5), &config(None)),
            Digest::fold(DIGEST_START, Slot(5), &config(Some(0))),
            Digest::fold(
                DIGEST_START,
                Slot(5),
                &Value::Command(Command { client: ClientId(8), seq: 3, data: Arc::from("abcdefghij"), at: 1_000 }),
            ),
            Digest::fold(
                DIGEST_START,
                Slot(5),
                &Value::Command(Command { client: ClientId(7), seq: 3, data: Arc::from("abcdefghij"), at: 1_001 }),
            ),
        ];
        for (i, o) in others.iter().enumerate() {
            assert_ne!(base, *o, "variant {i} folds to the same chain");
        }
        // And a difference stays in every chain after it.
        let later = |first: &Value| Digest::fold(Digest::fold(DIGEST_START, Slot(0), first), Slot(1), &Value::Noop);
        assert_ne!(later(&cmd("x")), later(&cmd("y")));
    }
}
