//! Counters of what a node did and dropped, and warnings that cannot flood.
//!
//! Every datagram a node refuses is counted under a kind (`dropped.malformed`,
//! `dropped.sender`, ...) and logged at `warn`, but at most once per second
//! per kind: a peer that sends garbage in a loop must not turn the node's log
//! into the bottleneck. The counters travel in every `StatusReply`, so an
//! operator sees what was dropped even when the warnings were suppressed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use tracing::warn;

/// How often one kind of drop may be logged.
pub const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Datagrams received (decoded or not).
pub const DATAGRAMS_IN: &str = "datagrams.in";
/// Datagrams sent.
pub const DATAGRAMS_OUT: &str = "datagrams.out";
/// Batches of received datagrams (each ends in at most one fsync).
pub const BATCHES: &str = "batches";
/// Sends the operating system refused.
pub const SEND_ERRORS: &str = "send_errors";
/// Receives the operating system failed.
pub const RECV_ERRORS: &str = "recv_errors";
/// Messages that could not be sent because the receiver's address is unknown.
pub const UNROUTABLE: &str = "dropped.unroutable";
/// The prefix of the counters of messages received, by kind.
pub const MESSAGES_IN: &str = "messages.in.";
/// The prefix of the counters of messages sent, by kind.
pub const MESSAGES_OUT: &str = "messages.out.";
/// Messages that did not fit one datagram (a bug of ours; logged at error).
pub const ENCODE_ERRORS: &str = "encode_errors";

/// Counts by message kind, on the path of every message: the kinds are the
/// literals of [`paxos_proto::Message::kind`], found by address in a short
/// list rather than compared as strings (a kind seen at two addresses gets
/// two entries, summed by name in [`Counters::snapshot`]).
#[derive(Debug, Default)]
struct ByKind(Vec<(&'static str, u64)>);

impl ByKind {
    fn incr(&mut self, kind: &'static str) {
        match self.0.iter_mut().find(|(k, _)| std::ptr::eq(*k, kind)) {
            Some((_, n)) => *n += 1,
            None => self.0.push((kind, 1)),
        }
    }
}

/// Named counters plus the rate limiter of their warnings.
#[derive(Debug, Default)]
pub struct Counters {
    /// The node whose counters these are, for its warnings.
    node: String,
    values: BTreeMap<&'static str, u64>,
    /// Messages handed to the role, and messages sent, by kind ([`paxos_proto::Message::kind`]).
    messages_in: ByKind,
    messages_out: ByKind,
    /// Per kind: when it was last logged and how many were suppressed since.
    last_warn: BTreeMap<&'static str, (Instant, u64)>,
}

impl Counters {
    /// Empty counters of `node` (named in every warning).
    pub fn new(node: impl fmt::Display) -> Counters {
        Counters { node: node.to_string(), ..Counters::default() }
    }

    /// Adds `n` to the counter `name`.
    pub fn add(&mut self, name: &'static str, n: u64) {
        *self.values.entry(name).or_default() += n;
    }

    /// Adds one to the counter `name`.
    pub fn incr(&mut self, name: &'static str) {
        self.add(name, 1);
    }

    /// Counts one message of `kind` received and handed to the role.
    pub fn message_in(&mut self, kind: &'static str) {
        self.messages_in.incr(kind);
    }

    /// Counts one message of `kind` sent (in a datagram of its own or a bundle).
    pub fn message_out(&mut self, kind: &'static str) {
        self.messages_out.incr(kind);
    }

    /// The value of `name` (zero if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Counts one dropped datagram of `kind` and logs it at `warn`, unless a
    /// drop of the same kind was logged less than [`WARN_INTERVAL`] ago; the
    /// next warning of that kind then says how many were suppressed.
    pub fn drop_datagram(&mut self, kind: &'static str, addr: impl fmt::Display, why: impl fmt::Display) {
        self.incr(kind);
        if let Some(suppressed) = self.may_warn(kind, Instant::now()) {
            warn!(node = %self.node, kind, addr = %addr, suppressed, "dropped datagram: {why}");
        }
    }

    /// Rate limiter: `Some(suppressed since the last warning)` when a warning of
    /// `kind` may be logged at `now`, `None` when it must be suppressed.
    pub fn may_warn(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.last_warn.get_mut(kind) {
            Some((at, suppressed)) if now.duration_since(*at) < WARN_INTERVAL => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                *at = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                self.last_warn.insert(kind, (now, 0));
                Some(0)
            }
        }
    }

    /// Every counter, by name, as a status reply carries them; messages by
    /// kind as `messages.in.<kind>` and `messages.out.<kind>`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = self.values.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        for (prefix, by_kind) in [(MESSAGES_IN, &self.messages_in), (MESSAGES_OUT, &self.messages_out)] {
            for (kind, n) in &by_kind.0 {
                *all.entry(format!("{prefix}{kind}")).or_default() += n;
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_at_most_once_per_interval_per_kind() {
        let mut c = Counters::new("acceptor-1");
        let t0 = Instant::now();
        assert_eq!(c.may_warn("a", t0), Some(0));
        assert_eq!(c.may_warn("a", t0 + Duration::from_millis(10)), None);
        assert_eq!(c.may_warn("a", t0 + Duration::from_millis(20)), None);
        assert_eq!(c.may_warn("b", t0 + Duration::from_millis(20)), Some(0), "kinds are limited separately");
        assert_eq!(c.may_warn("a", t0 + WARN_INTERVAL), Some(2), "reports what it suppressed");
        assert_eq!(c.may_warn("a", t0 + WARN_INTERVAL + Duration::from_millis(1)), None);
    }

    #[test]
    fn counts_every_drop_even_when_not_logged() {
        let mut c = Counters::new("acceptor-1");
        for _ in 0..5 {
            c.drop_datagram("dropped.malformed", "127.0.0.1:1", "garbage");
        }
        assert_eq!(c.get("dropped.malformed"), 5);
        assert_eq!(c.snapshot().get("dropped.malformed"), Some(&5));
    }

    #[test]
    fn messages_are_counted_by_kind_and_summed_by_name() {
        let mut c = Counters::new("proposer-1");
        let accept: &'static str = "accept";
        // The same name at another address (another crate's literal) is summed, not lost.
        let other: &'static str = Box::leak(String::from("accept").into_boxed_str());
        c.message_in(accept);
        c.message_in(accept);
        c.message_in(other);
        c.message_out("accepted");
        let s = c.snapshot();
        assert_eq!(s.get("messages.in.accept"), Some(&3));
        assert_eq!(s.get("messages.out.accepted"), Some(&1));
        assert_eq!(s.get("messages.out.accept"), None);
    }
}
