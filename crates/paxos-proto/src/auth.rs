//! Authenticated datagrams: a MAC over every datagram's bytes (`[auth]`).
//!
//! ```text
//! datagram := body                    unsigned (no [auth], or a client without a client key)
//!           | body "#m1" mac          mac = lower-case hex of HMAC-SHA256(key, body), 64 characters
//! body     := envelope | bundle       the JSON of [`crate::encode`] / [`crate::Bundle`], unchanged
//! ```
//!
//! The trailer (`#m1` and 64 hex digits, [`TRAILER_BYTES`]) follows the JSON
//! text; `m1` names the MAC (version 1: HMAC-SHA256), so that another one can
//! be added without ambiguity. A [`KeyRing`] holds the keys of one kind,
//! read from a key file with one key per line: the first key signs, every key
//! verifies, so a key is rotated by prepending the new one everywhere, then
//! dropping the old one. Members sign everything they send to each other
//! with the peer keys; clients sign their requests with the client keys when
//! the cluster has some, and members then sign their answers to clients with
//! them too.
//!
//! [`open`] strips and checks the trailer and says who could have made the
//! datagram ([`Signer`]); [`admit`] is the rule that every receiver applies
//! to each envelope of it: a datagram that claims to come from a member but
//! is not signed with a peer key is forged, whatever address it comes from.
//! A replayed datagram is an exact duplicate of one a member sent, which
//! Paxos tolerates like any duplicate the network makes.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::{Message, Node};

/// What a signed datagram's MAC starts with: version 1, HMAC-SHA256.
pub const MAC_TAG: &[u8; 3] = b"#m1";

/// The bytes of a MAC in the trailer: 32 bytes as hex.
pub const MAC_HEX_BYTES: usize = 64;

/// The bytes a signature adds to a datagram.
pub const TRAILER_BYTES: usize = MAC_TAG.len() + MAC_HEX_BYTES;

/// The fewest key bytes accepted: 128 bits.
pub const MIN_KEY_BYTES: usize = 16;

/// The bytes of a key that `paxosctl keygen` makes: 256 bits.
pub const KEY_BYTES: usize = 32;

/// Why a key file is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The file holds no key.
    #[error("no key in the file (one key per line, as hex; `paxosctl keygen` makes one)")]
    Empty,
    /// A line is not a key.
    #[error("line {line}: {problem}")]
    BadLine {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// Who may have made a datagram, as its MAC shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// A holder of a peer key: a member.
    Peer,
    /// A holder of a client key.
    Client,
    /// Nobody vouches for it: no MAC, or no keys to check one with.
    Unsigned,
}

/// Why a datagram's MAC is refused.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// It carries a MAC that no key of ours makes.
    #[error("the datagram's MAC matches none of our keys")]
    BadMac,
}

/// The keys of one kind (peer or client): the first signs, all verify.
#[derive(Clone)]
pub struct KeyRing {
    /// One prepared HMAC per key (its padded key hashed once), cloned per datagram.
    macs: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        write!(f, "KeyRing({} keys)", self.macs.len())
    }
}

impl KeyRing {
    /// The keys of a key file: one per line as hex (at least [`MIN_KEY_BYTES`]
    /// bytes); blank lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// [`KeyError`] naming the first line that is not a key, or the lack of any.
    pub fn parse(text: &str) -> Result<KeyRing, KeyError> {
        let mut macs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| KeyError::BadLine { line: i + 1, problem };
            let key = from_hex(line).ok_or_else(|| bad("not a key in hex (0-9, a-f)".into()))?;
            if key.len() < MIN_KEY_BYTES {
                return Err(bad(format!("a key of {} bytes is too short; at least {MIN_KEY_BYTES}", key.len())));
            }
            macs.push(Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length"));
        }
        if macs.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(KeyRing { macs })
    }

    /// A ring of one key (tests and tools).
    ///
    /// # Panics
    /// If `key` is shorter than [`MIN_KEY_BYTES`].
    pub fn from_key(key: &[u8]) -> KeyRing {
        assert!(key.len() >= MIN_KEY_BYTES, "a key of at least {MIN_KEY_BYTES} bytes");
        KeyRing { macs: vec![Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")] }
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.macs.len()
    }

    /// Whether it holds none (never: parsing refuses that).
    pub fn is_empty(&self) -> bool {
        self.macs.is_empty()
    }

    /// Appends the trailer of `datagram` (its body so far), signed with the first key.
    pub fn sign(&self, datagram: &mut Vec<u8>) {
        let mut mac = self.macs[0].clone();
        mac.update(datagram);
        let tag = mac.finalize().into_bytes();
        datagram.extend_from_slice(MAC_TAG);
        push_hex(datagram, &tag);
    }

    /// True when `mac` (hex, from a trailer) is the MAC of `body` under any of the keys.
    fn verifies(&self, body: &[u8], mac: &[u8]) -> bool {
        // The trailer is canonical: lower-case hex only, so that no two trailers carry one MAC.
        if mac.iter().any(u8::is_ascii_uppercase) {
            return false;
        }
        let Some(tag) = from_hex_ascii(mac) else { return false };
        self.macs.iter().any(|m| {
            let mut m = m.clone();
            m.update(body);
            // Constant-time comparison.
            m.verify_slice(&tag).is_ok()
        })
    }
}

/// Splits a datagram into its body and the hex MAC of its trailer, if it has one.
pub fn split(datagram: &[u8]) -> (&[u8], Option<&[u8]>) {
    if datagram.len() < TRAILER_BYTES {
        return (datagram, None);
    }
    let (body, trailer) = datagram.split_at(datagram.len() - TRAILER_BYTES);
    match trailer.strip_prefix(MAC_TAG.as_slice()) {
        Some(mac) => (body, Some(mac)),
        None => (datagram, None),
    }
}

/// Checks a received datagram's MAC against the peer keys, then the client
/// keys, and returns its body and who may have made it. A datagram without
/// a MAC is [`Signer::Unsigned`]; so is one with a MAC when there are no
/// keys to check it with (a node without `[auth]` reads signed datagrams as
/// plain ones).
///
/// # Errors
/// [`AuthError::BadMac`] when it carries a MAC that no key makes: forged or damaged.
pub fn open<'a>(
    datagram: &'a [u8],
    peer: Option<&KeyRing>,
    client: Option<&KeyRing>,
) -> Result<(&'a [u8], Signer), AuthError> {
    let (body, mac) = split(datagram);
    let Some(mac) = mac else { return Ok((body, Signer::Unsigned)) };
    if peer.is_none() && client.is_none() {
        return Ok((body, Signer::Unsigned));
    }
    if peer.is_some_and(|k| k.verifies(body, mac)) {
        return Ok((body, Signer::Peer));
    }
    if client.is_some_and(|k| k.verifies(body, mac)) {
        return Ok((body, Signer::Client));
    }
    Err(AuthError::BadMac)
}

/// Who must sign what: whether the receiver has peer keys and client keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Members must sign with a peer key (`[auth] peer_key_file`).
    pub peers: bool,
    /// Clients must sign with a client key (`[auth] client_key_file`).
    pub clients: bool,
}

/// Whether an envelope that claims to come from `claimed` and carries `msg`
/// may be believed, given who signed its datagram: the one rule every receiver applies.
///
/// Requests that change the cluster (membership, restore, a leadership
/// transfer) are an operator's: with peer keys, they must be signed with
/// one, whoever sends them (`paxosctl` signs them with the cluster file's peer key).
///
/// # Errors
/// Why not, for the drop counter's log line.
pub fn admit(claimed: Node, msg: &Message, signer: Signer, policy: Policy) -> Result<(), &'static str> {
    match claimed {
        Node::Proposer(_) | Node::Acceptor(_) if policy.peers && signer != Signer::Peer => {
            Err("claims to be a member but is not signed with a peer key")
        }
        Node::Client(_) if policy.peers && is_admin(msg) && signer != Signer::Peer => {
            Err("an operator's request that is not signed with a peer key")
        }
        Node::Client(_) if policy.clients && signer == Signer::Unsigned => {
            Err("a client request that is not signed with a client key")
        }
        _ => Ok(()),
    }
}

/// True for the requests that change the cluster: only an operator (a peer key holder) may send them.
///
/// Listing the members changes nothing: any client may, as it may read the
/// log (an unsigned one proves its address first, see docs/PROTOCOL.md), so
/// that a client without the peer key can find a leader that the cluster
/// file does not name, or names at an old address.
pub fn is_admin(msg: &Message) -> bool {
    match msg {
        Message::MemberRequest(r) => r.op != crate::MemberOp::List,
        Message::RestoreRequest(_) | Message::TransferRequest(_) => true,
        _ => false,
    }
}

/// A new key as `paxosctl keygen` prints it: [`KEY_BYTES`] bytes as hex.
pub fn key_to_hex(key: &[u8]) -> String {
    let mut out = Vec::with_capacity(2 * key.len());
    push_hex(&mut out, key);
    String::from_utf8(out).expect("hex is ASCII")
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    from_hex_ascii(text.as_bytes())
}

fn from_hex_ascii(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientId, NodeId};

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";

    fn signed(ring: &KeyRing, body: &[u8]) -> Vec<u8> {
        let mut d = body.to_vec();
        ring.sign(&mut d);
        d
    }

    /// The MAC is HMAC-SHA256 of the body, in hex after `#m1`: RFC 4231's test case 2.
    #[test]
    fn the_mac_is_hmac_sha256_in_hex() {
        let ring = KeyRing::from_key(b"JefeJefeJefeJefe");
        let d = signed(&ring, b"what do ya want for nothing?");
        let (body, mac) = split(&d);
        assert_eq!(body, b"what do ya want for nothing?");
        // Computed with Python: hmac.new(b"JefeJefeJefeJefe", body, hashlib.sha256).hexdigest()
        let expected = {
            let mut m = Hmac::<Sha256>::new_from_slice(b"JefeJefeJefeJefe").unwrap();
            m.update(b"what do ya want for nothing?");
            key_to_hex(&m.finalize().into_bytes())
        };
        assert_eq!(mac.unwrap(), expected.as_bytes());
        assert_eq!(d.len(), 28 + TRAILER_BYTES);
    }

    #[test]
    fn rfc_4231_case_2_with_the_short_key() {
        // "Jefe" is shorter than MIN_KEY_BYTES, so drive the HMAC directly: the construction is the standard one.
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            key_to_hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_good_mac_opens_as_its_signer_and_anything_else_does_not() {
        let peer = KeyRing::parse(K1).unwrap();
        let client = KeyRing::parse(K2).unwrap();
        let d = signed(&peer, br#"{"x":1}"#);
        assert_eq!(open(&d, Some(&peer), Some(&client)), Ok((&br#"{"x":1}"#[..], Signer::Peer)));
        let c = signed(&client, b"{}");
        assert_eq!(open(&c, Some(&peer), Some(&client)), Ok((&b"{}"[..], Signer::Client)));
        assert_eq!(open(&c, Some(&peer), None), Err(AuthError::BadMac), "a client key is no peer key");
        assert_eq!(open(b"{}", Some(&peer), None), Ok((&b"{}"[..], Signer::Unsigned)));
        // Without keys a signed datagram reads as a plain one.
        assert_eq!(open(&d, None, None), Ok((&br#"{"x":1}"#[..], Signer::Unsigned)));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let peer = KeyRing::parse(K1).unwrap();
        let d = signed(&peer, br#"{"version":1,"msg":"prepare"}"#);
        for i in 0..d.len() {
            for bit in 0..8 {
                let mut e = d.clone();
                e[i] ^= 1 << bit;
                assert_ne!(open(&e, Some(&peer), None).map(|(_, s)| s), Ok(Signer::Peer), "byte {i} bit {bit}");
            }
        }
        for cut in 1..=TRAILER_BYTES {
            let e = &d[..d.len() - cut];
            assert_ne!(open(e, Some(&peer), None).map(|(_, s)| s), Ok(Signer::Peer), "cut {cut}");
        }
        let wrong = KeyRing::parse(K2).unwrap();
        assert_eq!(open(&d, Some(&wrong), None), Err(AuthError::BadMac));
    }

    #[test]
    fn rotation_the_first_key_signs_every_key_verifies() {
        let old = KeyRing::parse(K1).unwrap();
        let both = KeyRing::parse(&format!("# rotated in\n{K2}\n\n{K1}\n")).unwrap();
        assert_eq!(both.len(), 2);
        let from_old = signed(&old, b"a");
        assert_eq!(open(&from_old, Some(&both), None).unwrap().1, Signer::Peer, "the old key still verifies");
        let from_new = signed(&both, b"a");
        assert_eq!(open(&from_new, Some(&both), None).unwrap().1, Signer::Peer);
        assert_eq!(open(&from_new, Some(&old), None), Err(AuthError::BadMac), "the new key signs");
    }

    #[test]
    fn key_files_are_refused_with_the_line() {
        assert_eq!(KeyRing::parse("# nothing\n\n").unwrap_err(), KeyError::Empty);
        assert!(matches!(KeyRing::parse("zz").unwrap_err(), KeyError::BadLine { line: 1, .. }));
        let short = KeyRing::parse(&format!("{K1}\n0011")).unwrap_err();
        assert!(
            matches!(short, KeyError::BadLine { line: 2, ref problem } if problem.contains("too short")),
            "{short}"
        );
        assert_eq!(format!("{:?}", KeyRing::parse(K1).unwrap()), "KeyRing(1 keys)", "keys are never printed");
    }

    #[test]
    fn the_rule_of_admission() {
        let on = Policy { peers: true, clients: false };
        let member = Node::Acceptor(NodeId(1));
        let client = Node::Client(ClientId(7));
        let msg =
            Message::Probe(crate::Probe { nonce: 1, decided: crate::Slot(0), leading: false, echo: 0, wrote: vec![] });
        let admin = Message::MemberRequest(crate::MemberRequest {
            req: 1,
            op: crate::MemberOp::Remove { role: crate::MemberRole::Acceptor, id: NodeId(3) },
            deadline_ms: None,
            epoch: None,
            cookie: None,
        });
        let list = Message::MemberRequest(crate::MemberRequest {
            req: 2,
            op: crate::MemberOp::List,
            deadline_ms: None,
            epoch: None,
            cookie: None,
        });
        assert!(admit(member, &msg, Signer::Peer, on).is_ok());
        assert!(admit(member, &msg, Signer::Unsigned, on).is_err());
        assert!(admit(member, &msg, Signer::Client, on).is_err(), "a client key does not make a member");
        assert!(admit(client, &msg, Signer::Unsigned, on).is_ok());
        assert!(admit(client, &admin, Signer::Unsigned, on).is_err(), "an operator's request needs the peer key");
        assert!(admit(client, &admin, Signer::Client, on).is_err(), "a client key is not enough for it");
        assert!(admit(client, &admin, Signer::Peer, on).is_ok());
        assert!(admit(client, &list, Signer::Unsigned, on).is_ok(), "listing the members changes nothing");
        assert!(admit(client, &list, Signer::Client, on).is_ok());
        let strict = Policy { peers: true, clients: true };
        assert!(admit(client, &msg, Signer::Unsigned, strict).is_err());
        assert!(admit(client, &msg, Signer::Client, strict).is_ok());
        assert!(
            admit(member, &msg, Signer::Unsigned, Policy::default()).is_ok(),
            "without [auth] the address check is all"
        );
        assert!(admit(client, &admin, Signer::Unsigned, Policy::default()).is_ok());
    }
}
