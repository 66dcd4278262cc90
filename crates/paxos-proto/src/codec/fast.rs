//! A fast path for the datagrams that dominate a loaded cluster: client
//! proposals and votes (a leader's input), accepts (an acceptor's and a
//! follower's) and client replies (a client's),
//! alone or bundled, in exactly the form our encoders write them: no
//! whitespace, fields in declaration order, strings without escapes. And the
//! other way, a writer of the same messages and of envelope heads
//! that writes serde_json's bytes without its per-field machinery
//! ([`encode_message`]).
//!
//! ```text
//! datagram := envelope | "[" envelope ("," envelope)* "]"
//! envelope := {"version":N,"cluster":"S","from":NODE,"to":NODE,"msg":{MSG}}
//! NODE     := {"proposer":N} | {"acceptor":N} | {"client":N}
//! MSG      := "client_propose":{"seq":N,"value":"S"}
//!           | "client_reply":{"seq":N,"slot":N}
//!           | "accept":{"ballot":BALLOT,"entries":[ENTRY,...],"commit":N}
//!           | "accepted":{"ballot":BALLOT,"slots":[N,...](,"written":{"incarnation":N,"start":N,"ops":N})?}
//! BALLOT   := {"epoch":N,"round":N,"proposer":N} | {"round":N,"proposer":N}
//! ENTRY    := {"slot":N,"value":"noop"}
//!           | {"slot":N,"value":{"command":{"client":N,"seq":N,"data":"S","at":N}}}
//! ```
//!
//! Anything else, or anything unusual in it (whitespace, an escape or a
//! control character in a string, invalid UTF-8, a number with a sign, a
//! fraction, a leading zero or out of its type's range, another version, a
//! configuration value), gives `None`, and the caller decodes with
//! serde_json as before. So where the fast path answers, it answers what
//! serde_json would have: the property tests check exactly that, on every
//! kind of envelope and on damaged ones.

use std::sync::Arc;

use crate::{
    Accept, AcceptEntry, Accepted, Ballot, ClientId, ClientPropose, ClientReply, Command, Envelope, Message, Node,
    NodeId, Slot, Value, Written, PROTOCOL_VERSION,
};

/// The envelopes of a datagram in the canonical form above, or `None`.
pub(super) fn envelopes(bytes: &[u8]) -> Option<Vec<Envelope>> {
    let mut c = Cursor { bytes, at: 0 };
    if c.peek() != Some(b'[') {
        let env = c.envelope()?;
        return c.at_end().then(|| vec![env]);
    }
    c.at += 1;
    let envs = c.list(false, Cursor::envelope)?;
    c.at_end().then_some(envs)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Whether these bytes come next; reads them if so.
    fn take(&mut self, lit: &[u8]) -> bool {
        let found = self.bytes.get(self.at..).is_some_and(|rest| rest.starts_with(lit));
        if found {
            self.at += lit.len();
        }
        found
    }

    /// Exactly these bytes.
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.take(lit).then_some(())
    }

    /// An unsigned integer as JSON writes it: `0`, or digits without a leading zero.
    fn u64(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        (digits > 0 && !leading_zero).then_some(n)
    }

    /// Items separated by commas, up to the closing bracket (the opening
    /// one was read); `empty`: whether the bracket may close at once.
    fn list<T>(&mut self, empty: bool, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        if empty && self.take(b"]") {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            match self.next()? {
                b',' => {}
                b']' => return Some(items),
                _ => return None,
            }
        }
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    /// A string (its opening quote included), only when it holds no escape
    /// and no control character.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let rest = &self.bytes[self.at..];
        let len = plain_len(rest);
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        let s = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(s)
    }

    fn envelope(&mut self) -> Option<Envelope> {
        self.lit(br#"{"version":"#)?;
        let version = u16::try_from(self.u64()?).ok().filter(|v| *v == PROTOCOL_VERSION)?;
        self.lit(br#","cluster":"#)?;
        let cluster = self.plain_str()?.to_owned();
        self.lit(br#","from":"#)?;
        let from = self.node()?;
        self.lit(br#","to":"#)?;
        let to = self.node()?;
        self.lit(br#","msg":{"#)?;
        let msg = if self.take(br#""client_propose":{"seq":"#) {
            let seq = self.u64()?;
            self.lit(br#","value":"#)?;
            let value: Arc<str> = Arc::from(self.plain_str()?);
            Message::ClientPropose(ClientPropose { seq, value })
        } else if self.take(br#""accept":{"ballot":"#) {
            Message::Accept(self.accept()?)
        } else if self.take(br#""client_reply":{"seq":"#) {
            let seq = self.u64()?;
            self.lit(br#","slot":"#)?;
            let slot = Slot(self.u64()?);
            Message::ClientReply(ClientReply { seq, slot })
        } else if self.take(br#""accepted":{"ballot":"#) {
            let ballot = self.ballot()?;
            self.lit(br#","slots":["#)?;
            let slots = self.list(true, |c| c.u64().map(Slot))?;
            let written = if self.take(br#","written":{"incarnation":"#) {
                let incarnation = self.u64()?;
                self.lit(br#","start":"#)?;
                let start = self.u64()?;
                self.lit(br#","ops":"#)?;
                let ops = self.u64()?;
                self.lit(b"}")?;
                Some(Written { incarnation, start, ops })
            } else {
                None
            };
            Message::Accepted(Accepted { ballot, slots, written })
        } else {
            return None;
        };
        self.lit(b"}}}")?;
        Some(Envelope { version, cluster, from, to, msg })
    }

    fn node(&mut self) -> Option<Node> {
        if self.take(br#"{"proposer":"#) {
            let id = self.u32()?;
            self.lit(b"}").map(|()| Node::Proposer(NodeId(id)))
        } else if self.take(br#"{"acceptor":"#) {
            let id = self.u32()?;
            self.lit(b"}").map(|()| Node::Acceptor(NodeId(id)))
        } else if self.take(br#"{"client":"#) {
            let id = self.u64()?;
            self.lit(b"}").map(|()| Node::Client(ClientId(id)))
        } else {
            None
        }
    }

    /// An accept after its `"ballot":`, up to its closing brace (not read).
    fn accept(&mut self) -> Option<Accept> {
        let ballot = self.ballot()?;
        self.lit(br#","entries":["#)?;
        let entries = self.list(true, Cursor::entry)?;
        self.lit(br#","commit":"#)?;
        let commit = Slot(self.u64()?);
        Some(Accept { ballot, entries, commit })
    }

    fn ballot(&mut self) -> Option<Ballot> {
        let epoch = if self.take(br#"{"epoch":"#) {
            let epoch = self.u32()?;
            self.lit(br#","round":"#)?;
            epoch
        } else {
            self.lit(br#"{"round":"#)?;
            0
        };
        let round = self.u64()?;
        self.lit(br#","proposer":"#)?;
        let proposer = NodeId(self.u32()?);
        self.lit(b"}")?;
        Some(Ballot { epoch, round, proposer })
    }

    fn entry(&mut self) -> Option<AcceptEntry> {
        self.lit(br#"{"slot":"#)?;
        let slot = Slot(self.u64()?);
        self.lit(br#","value":"#)?;
        let value = if self.take(br#""noop"}"#) {
            Value::Noop
        } else {
            self.lit(br#"{"command":{"client":"#)?;
            let client = ClientId(self.u64()?);
            self.lit(br#","seq":"#)?;
            let seq = self.u64()?;
            self.lit(br#","data":"#)?;
            let data: Arc<str> = Arc::from(self.plain_str()?);
            self.lit(br#","at":"#)?;
            let at = self.u64()?;
            self.lit(b"}}}")?;
            Value::Command(Command { client, seq, data, at })
        };
        Some(AcceptEntry { slot, value })
    }
}

/// Writes `msg` as serde_json would, for the messages a loaded cluster
/// sends most: client proposals, accepts without a configuration value,
/// votes and client replies. Returns false, with nothing written, for any other
/// message: the caller then serializes it with serde_json. Strings that need
/// an escape are written by serde_json itself, so the bytes are always
/// serde_json's (the property tests compare them).
pub(super) fn encode_message(msg: &Message, out: &mut Vec<u8>) -> bool {
    match msg {
        Message::ClientPropose(p) => {
            out.extend_from_slice(br#"{"client_propose":{"seq":"#);
            put_u64(out, p.seq);
            out.extend_from_slice(br#","value":"#);
            put_str(out, &p.value);
            out.extend_from_slice(b"}}");
        }
        Message::ClientReply(r) => {
            out.extend_from_slice(br#"{"client_reply":{"seq":"#);
            put_u64(out, r.seq);
            out.extend_from_slice(br#","slot":"#);
            put_u64(out, r.slot.0);
            out.extend_from_slice(b"}}");
        }
        Message::Accepted(a) => {
            out.extend_from_slice(br#"{"accepted":{"ballot":"#);
            put_ballot(out, a.ballot);
            out.extend_from_slice(br#","slots":["#);
            put_list(out, &a.slots, |out, slot| put_u64(out, slot.0));
            out.push(b']');
            if let Some(w) = &a.written {
                out.extend_from_slice(br#","written":{"incarnation":"#);
                put_u64(out, w.incarnation);
                out.extend_from_slice(br#","start":"#);
                put_u64(out, w.start);
                out.extend_from_slice(br#","ops":"#);
                put_u64(out, w.ops);
                out.push(b'}');
            }
            out.extend_from_slice(b"}}");
        }
        Message::Accept(a) if a.entries.iter().all(|e| !matches!(e.value, Value::Config(_))) => {
            out.extend_from_slice(br#"{"accept":{"ballot":"#);
            put_ballot(out, a.ballot);
            out.extend_from_slice(br#","entries":["#);
            put_list(out, &a.entries, |out, e| {
                out.extend_from_slice(br#"{"slot":"#);
                put_u64(out, e.slot.0);
                match &e.value {
                    Value::Noop => out.extend_from_slice(br#","value":"noop"}"#),
                    Value::Command(c) => {
                        out.extend_from_slice(br#","value":{"command":{"client":"#);
                        put_u64(out, c.client.0);
                        out.extend_from_slice(br#","seq":"#);
                        put_u64(out, c.seq);
                        out.extend_from_slice(br#","data":"#);
                        put_str(out, &c.data);
                        out.extend_from_slice(br#","at":"#);
                        put_u64(out, c.at);
                        out.extend_from_slice(b"}}}");
                    }
                    Value::Config(_) => unreachable!("checked above"),
                }
            });
            out.extend_from_slice(br#"],"commit":"#);
            put_u64(out, a.commit.0);
            out.extend_from_slice(b"}}");
        }
        _ => return false,
    }
    true
}

/// Writes `node` as serde_json would: `{"proposer":N}`, `{"acceptor":N}` or `{"client":N}`.
pub(super) fn put_node(out: &mut Vec<u8>, node: Node) {
    let (tag, id): (&[u8], u64) = match node {
        Node::Proposer(id) => (br#"{"proposer":"#, u64::from(id.0)),
        Node::Acceptor(id) => (br#"{"acceptor":"#, u64::from(id.0)),
        Node::Client(id) => (br#"{"client":"#, id.0),
    };
    out.extend_from_slice(tag);
    put_u64(out, id);
    out.push(b'}');
}

/// Writes `s` as a JSON string: as it is when nothing in it needs an escape,
/// else through serde_json.
pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    if plain_len(s.as_bytes()) == s.len() {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

fn put_ballot(out: &mut Vec<u8>, b: Ballot) {
    // The epoch is left out while it is 0 (`skip_serializing_if`), as the decoder expects.
    if b.epoch == 0 {
        out.extend_from_slice(br#"{"round":"#);
    } else {
        out.extend_from_slice(br#"{"epoch":"#);
        put_u64(out, u64::from(b.epoch));
        out.extend_from_slice(br#","round":"#);
    }
    put_u64(out, b.round);
    out.extend_from_slice(br#","proposer":"#);
    put_u64(out, u64::from(b.proposer.0));
    out.push(b'}');
}

/// Writes `items` comma-separated, each by `put`.
fn put_list<T>(out: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put(out, item);
    }
}

/// Writes `n` in decimal, as JSON (and serde_json, through the same crate) does.
fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// The length of the longest prefix of `bytes` without a quote, a backslash
/// or a control character: eight bytes at a time while no word holds one,
/// then byte by byte. The word test may see a special byte that is not there
/// (a borrow between bytes), never miss one, so the byte scan decides.
fn plain_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of a byte set where the byte may be zero, and surely where it is.
    fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGH
    }
    let mut at = 0;
    for word in bytes.chunks_exact(8) {
        let x = u64::from_ne_bytes(word.try_into().expect("chunks of eight"));
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if below_space | zero_bytes(x ^ (ONES * u64::from(b'"'))) | zero_bytes(x ^ (ONES * u64::from(b'\\'))) != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(bytes.len() - at)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// What `plain_len` must answer: the first special byte, byte by byte.
    fn naive(bytes: &[u8]) -> usize {
        bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(bytes.len())
    }

    /// Every special byte at every position of strings around the word size,
    /// among bytes next to the special ones (0x1f, 0x20, 0x21, 0x23, 0x5b,
    /// 0x5d, 0x7f, 0x80, 0xff): the word test never misses one.
    #[test]
    fn plain_len_finds_every_special_byte_at_every_position() {
        let fillers = [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xc3, 0xff];
        for len in 0..=33 {
            for &fill in &fillers {
                let plain = vec![fill; len];
                assert_eq!(super::plain_len(&plain), len);
                for at in 0..len {
                    for special in [b'"', b'\\', 0x00, 0x01, 0x1f] {
                        let mut bytes = plain.clone();
                        bytes[at] = special;
                        assert_eq!(super::plain_len(&bytes), at, "{bytes:?}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn plain_len_is_the_first_special_byte(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(super::plain_len(&bytes), naive(&bytes));
        }

        #[test]
        fn plain_len_of_mostly_plain_text(text in r#"[ -~\u{80}-\u{ffff}]{0,40}["\\\x00-\x1f]?[ -~]{0,20}"#) {
            prop_assert_eq!(super::plain_len(text.as_bytes()), naive(text.as_bytes()));
        }
    }
}
