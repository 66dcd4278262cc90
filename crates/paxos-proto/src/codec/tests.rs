//! Codec tests: round trips of every message, robustness of `decode` against
//! any bytes, the validation rules, and the size arithmetic the packer relies on.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

use crate::*;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// The proptest configuration of every property here: default case count, and
/// no regression files written into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// Any character, biased towards those JSON escapes or that take several bytes.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => (0u8..0x20).prop_map(char::from),
        2 => prop::char::range(' ', '~'),
        1 => prop::sample::select(vec![
            '"', '\\', '/', '\u{7f}', '\u{80}', '\u{ff}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffd}',
            '\u{10000}', '\u{10ffff}',
        ]),
    ]
}

/// A string of at most `max_chars` characters drawn from [`any_char`].
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..=max_chars).prop_map(String::from_iter)
}

/// `s` cut at the last character boundary at or below `max` bytes.
fn truncate_bytes(mut s: String, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Client data that `validate` accepts: mostly short, sometimes up to [`MAX_VALUE_BYTES`].
fn value_data() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => text(40),
        1 => text(MAX_VALUE_BYTES).prop_map(|s| truncate_bytes(s, MAX_VALUE_BYTES)),
    ]
}

/// Client data longer than [`MAX_VALUE_BYTES`], which `validate` refuses in log values.
fn oversized_data() -> impl Strategy<Value = String> {
    (any_char(), 1usize..64).prop_map(|(c, extra)| {
        let n = MAX_VALUE_BYTES / c.len_utf8() + extra;
        c.to_string().repeat(n)
    })
}

/// A command carrying `data`.
fn command(data: impl Strategy<Value = String>) -> impl Strategy<Value = Command> {
    (any::<u64>(), any::<u64>(), data, any::<u64>()).prop_map(|(client, seq, data, at)| Command {
        client: ClientId(client),
        seq,
        data: data.into(),
        at,
    })
}

/// A configuration that `validate` accepts.
fn cluster_config() -> impl Strategy<Value = Config> {
    let member = |incarnation: bool| {
        (node_id(), text(24), any::<u64>()).prop_map(move |(id, addr, i)| Member {
            id,
            addr,
            incarnation: incarnation.then_some(i),
        })
    };
    (any::<u32>(), prop::collection::vec(member(true), 1..8), prop::collection::vec(member(false), 1..4), any::<u64>())
        .prop_map(|(epoch, mut acceptors, mut proposers, session_lifetime_ms)| {
            acceptors.sort_by_key(|m| m.id);
            acceptors.dedup_by_key(|m| m.id);
            proposers.sort_by_key(|m| m.id);
            proposers.dedup_by_key(|m| m.id);
            Config { epoch, acceptors, proposers, session_lifetime_ms }
        })
}

/// A log value whose data comes from `data`.
fn value_of(data: impl Strategy<Value = String>) -> impl Strategy<Value = Value> {
    prop_oneof![2 => Just(Value::Noop), 6 => command(data).prop_map(Value::Command), 1 => cluster_config().prop_map(Value::Config)]
}

/// A log value that `validate` accepts.
fn value() -> impl Strategy<Value = Value> {
    value_of(value_data())
}

/// A short log value, so that invalid-message tests always fit a datagram.
fn small_value() -> impl Strategy<Value = Value> {
    value_of(text(40))
}

/// A number biased towards the edges, where off-by-ones live.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4, u64::MAX - 3..=u64::MAX, any::<u64>()]
}

/// A client id, sequence or request number: valid ones stop at MAX_CLIENT_NUMBER; biased towards both ends.
fn edgy_number() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4, MAX_CLIENT_NUMBER - 3..=MAX_CLIENT_NUMBER, 0..=MAX_CLIENT_NUMBER]
}

/// A cookie as a node hands them out, or none.
fn cookie() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[0-9a-f]{32}")
}

/// A slot or round: valid ones stop at MAX_COUNTER; biased towards both ends.
fn edgy_counter() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4, MAX_COUNTER - 3..=MAX_COUNTER, 0..=MAX_COUNTER]
}

/// A 32-bit number biased towards the edges.
fn edgy_u32() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..4, u32::MAX - 3..=u32::MAX, any::<u32>()]
}

/// Any node id.
fn node_id() -> impl Strategy<Value = NodeId> {
    edgy_u32().prop_map(NodeId)
}

/// Any slot.
fn slot() -> impl Strategy<Value = Slot> {
    edgy_counter().prop_map(Slot)
}

/// Any ballot.
fn ballot() -> impl Strategy<Value = Ballot> {
    (prop_oneof![Just(0u32), any::<u32>()], edgy_counter(), node_id()).prop_map(|(epoch, round, proposer)| Ballot {
        epoch,
        round,
        proposer,
    })
}

/// A ballot at or below `max`.
fn ballot_at_most(max: Ballot) -> impl Strategy<Value = Ballot> {
    (0..=max.round, any::<u32>(), any::<bool>()).prop_map(move |(round, proposer, same_round)| {
        let round = if same_round { max.round } else { round };
        let proposer =
            if round == max.round { (u64::from(proposer) % (u64::from(max.proposer.0) + 1)) as u32 } else { proposer };
        Ballot { epoch: max.epoch, round, proposer: NodeId(proposer) }
    })
}

/// Any sender or receiver.
fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        node_id().prop_map(Node::Proposer),
        node_id().prop_map(Node::Acceptor),
        edgy_number().prop_map(|c| Node::Client(ClientId(c))),
    ]
}

/// A promise that `validate` accepts: a page `[from, to)` with entries inside it
/// under ballots at or below the promised one.
fn valid_promise() -> impl Strategy<Value = Promise> {
    (ballot(), slot(), 0u64..1_000, any::<bool>(), slot()).prop_flat_map(|(ballot, from, len, done, decided)| {
        let to = Slot(from.0.saturating_add(len).min(MAX_COUNTER));
        let width = to.0 - from.0;
        let entry = (0..width.max(1), ballot_at_most(ballot), value()).prop_map(move |(off, b, value)| PromiseEntry {
            slot: Slot(from.0 + off),
            ballot: b,
            value,
        });
        let max_entries = if width == 0 { 0 } else { 8 };
        prop::collection::vec(entry, 0..=max_entries).prop_map(move |entries| Promise {
            ballot,
            from,
            to,
            done,
            decided,
            incarnation: 7,
            entries,
            written: Some(Written { incarnation: 7, start: 1, ops: u64::MAX }),
        })
    })
}

/// What an acceptor says it wrote, or nothing.
fn written() -> impl Strategy<Value = Option<Written>> {
    proptest::option::of((edgy_u64(), edgy_u64(), edgy_u64()).prop_map(|(incarnation, start, ops)| Written {
        incarnation,
        start,
        ops,
    }))
}

fn digest() -> impl Strategy<Value = Option<Digest>> {
    proptest::option::of((slot(), edgy_u64()).prop_map(|(slot, chain)| Digest { slot, chain }))
}

/// Every message of the protocol, each valid under `validate`.
fn message() -> impl Strategy<Value = Message> {
    let claims = || prop::collection::vec(written(), 0..=MAX_WRITTEN).prop_map(|ws| ws.into_iter().flatten().collect());
    let prepare = (ballot(), slot(), prop::option::of((slot(), cluster_config())), claims()).prop_map(
        |(ballot, from, epoch, wrote)| {
            let epoch = epoch.map(|(start, mut config)| {
                config.epoch = ballot.epoch;
                Epoch { start, config }
            });
            Message::Prepare(Prepare { ballot, from, epoch, wrote })
        },
    );
    let promise = valid_promise().prop_map(Message::Promise);
    let reasons = vec![NackReason::Promised, NackReason::UnknownEpoch, NackReason::NotMember];
    let nack = (ballot(), ballot(), prop::sample::select(reasons))
        .prop_map(|(ballot, promised, reason)| Message::Nack(Nack { ballot, promised, reason }));
    let accept = (ballot(), prop::collection::vec((slot(), value()), 0..8)).prop_map(|(ballot, entries)| {
        let entries = entries.into_iter().map(|(slot, value)| AcceptEntry { slot, value }).collect();
        Message::Accept(Accept { ballot, entries, commit: Slot(0) })
    });
    let accepted = (ballot(), prop::collection::vec(slot(), 0..64), written())
        .prop_map(|(ballot, slots, written)| Message::Accepted(Accepted { ballot, slots, written }));
    let written_by = prop::collection::vec((node_id(), written()), 0..4)
        .prop_map(|ws| ws.into_iter().filter_map(|(a, w)| Some((a, w?))).collect::<Vec<_>>());
    let heartbeat = (ballot(), any::<bool>(), slot(), slot(), any::<bool>(), written_by, digest()).prop_map(
        |(ballot, leader, decided, known, damaged, written, digest)| {
            Message::Heartbeat(Heartbeat { ballot, leader, decided, known, damaged, written, digest })
        },
    );
    let catch_up = (slot(), edgy_u32(), any::<u64>())
        .prop_map(|(from, limit, nonce)| Message::CatchUp(CatchUp { from, limit, nonce }));
    let catch_up_reply = (
        slot(),
        prop::collection::vec(value(), 0..8),
        slot(),
        prop::option::of((any::<u64>(), cluster_config())),
        any::<u64>(),
    )
        .prop_map(|(from, entries, decided, epoch, nonce)| {
            // The entries' last slot stays within MAX_COUNTER, and the epoch starts at or before `from`.
            let from = Slot(from.0.min(MAX_COUNTER - entries.len() as u64));
            let epoch = epoch.map(|(start, config)| Epoch { start: Slot(start % (from.0 + 1)), config });
            Message::CatchUpReply(CatchUpReply { from, entries, decided, epoch, nonce })
        });
    let state_request = (any::<u64>(), prop::option::of(edgy_number()))
        .prop_map(|(nonce, after)| Message::StateRequest(StateRequest { nonce, after: after.map(ClientId) }));
    let state_reply = (
        any::<u64>(),
        1..MAX_COUNTER,
        prop::option::of(cluster_config()),
        any::<u64>(),
        prop::collection::btree_map(edgy_number(), (edgy_number(), any::<u64>(), any::<u64>()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(nonce, at, config, clock, sessions, more)| {
            let sessions = sessions
                .into_iter()
                .map(|(c, (seq, slot, t))| SessionEntry { client: ClientId(c), seq, slot: Slot(slot % at), at: t })
                .collect();
            let epoch = config.map(|config| Epoch { start: Slot(at), config });
            Message::StateReply(StateReply { nonce, at: Slot(at), epoch, clock, sessions, more })
        });
    // Oversized client values pass `validate` (the proposer answers them), so go past the limit here.
    let client_propose = (edgy_number(), prop_oneof![4 => value_data(), 1 => oversized_data()])
        .prop_map(|(seq, value)| Message::ClientPropose(ClientPropose { seq, value: value.into() }));
    let client_reply = (edgy_number(), slot()).prop_map(|(seq, slot)| Message::ClientReply(ClientReply { seq, slot }));
    let client_redirect = (edgy_number(), prop::option::of(node_id()))
        .prop_map(|(seq, leader)| Message::ClientRedirect(ClientRedirect { seq, leader }));
    let client_error = (
        edgy_number(),
        prop::sample::select(vec![ClientErrorKind::TooLarge, ClientErrorKind::Stale, ClientErrorKind::Busy]),
    )
        .prop_map(|(seq, kind)| Message::ClientError(ClientError { seq, kind }));
    let log_read = (edgy_number(), slot(), edgy_u32(), any::<bool>(), cookie()).prop_map(
        |(req, from, limit, linearizable, cookie)| Message::LogRead(LogRead { req, from, limit, linearizable, cookie }),
    );
    let log_entry = (slot(), prop::option::of(value_data())).prop_map(|(slot, value)| LogEntry { slot, value });
    let log_reply = (
        edgy_number(),
        prop::collection::vec(log_entry, 0..8),
        slot(),
        slot(),
        prop::option::of(node_id()),
        any::<bool>(),
    )
        .prop_map(|(req, entries, decided, start, leader, linearizable)| {
            Message::LogReply(LogReply { req, entries, decided, start, leader, linearizable })
        });
    let status_request =
        (edgy_number(), cookie()).prop_map(|(req, cookie)| Message::StatusRequest(StatusRequest { req, cookie }));
    let cookie_reply =
        (edgy_number(), "[0-9a-f]{32}").prop_map(|(req, cookie)| Message::Cookie(Cookie { req, cookie }));
    let status_reply = (
        edgy_number(),
        text(12),
        any::<bool>(),
        prop::option::of(node_id()),
        ballot(),
        slot(),
        prop::collection::vec(node(), 0..8),
        prop::collection::btree_map(text(16), edgy_u64(), 0..8),
        (text(12), any::<u32>(), text(12), text(12)),
    )
        .prop_map(
            |(req, role, failed, leader, ballot, decided, peers_heard, counters, (state, epoch, version, commit))| {
                Message::StatusReply(StatusReply {
                    req,
                    role,
                    failed,
                    leader,
                    ballot,
                    decided,
                    peers_heard,
                    counters,
                    state,
                    epoch,
                    version,
                    commit,
                })
            },
        );
    let probe = (edgy_u64(), slot(), any::<bool>(), claims())
        .prop_map(|(nonce, decided, leading, wrote)| Message::Probe(Probe { nonce, decided, leading, echo: 0, wrote }));
    let leader = proptest::option::of(any::<u32>().prop_map(NodeId));
    let probe_reply =
        (edgy_u64(), ballot(), slot(), any::<u64>(), any::<u32>(), any::<bool>(), leader, written(), digest())
            .prop_map(|(nonce, promised, decided, incarnation, epoch, joining, leader, written, digest)| {
                Message::ProbeReply(ProbeReply {
                    nonce,
                    promised,
                    decided,
                    incarnation,
                    epoch,
                    joining,
                    leader,
                    challenge: 0,
                    clock_ms: 0,
                    written,
                    digest,
                })
            });
    let member_op = prop_oneof![
        Just(MemberOp::List),
        (node_id(), text(20)).prop_map(|(id, addr)| MemberOp::Add { role: MemberRole::Acceptor, id, addr }),
        node_id().prop_map(|id| MemberOp::Remove { role: MemberRole::Proposer, id }),
    ];
    let member_request =
        (edgy_number(), member_op, prop::option::of(edgy_number()), prop::option::of(any::<u32>()), cookie()).prop_map(
            |(req, op, deadline_ms, epoch, cookie)| {
                Message::MemberRequest(MemberRequest { req, op, deadline_ms, epoch, cookie })
            },
        );
    let member_reply =
        (edgy_number(), prop::option::of(cluster_config()), prop::option::of(text(20)), prop::option::of(node_id()))
            .prop_map(|(req, config, error, leader)| Message::MemberReply(MemberReply { req, config, error, leader }));
    let restore_request =
        (edgy_number(), 0u64..MAX_COUNTER / 2, prop::collection::vec(prop::option::of(value_data()), 0..8), cookie())
            .prop_map(|(req, from, entries, cookie)| {
                Message::RestoreRequest(RestoreRequest { req, from: Slot(from), entries, cookie })
            });
    let restore_reply = (edgy_number(), slot(), prop::option::of(text(20)), prop::option::of(node_id()))
        .prop_map(|(req, end, error, leader)| Message::RestoreReply(RestoreReply { req, end, error, leader }));
    let transfer_request = (edgy_number(), node_id(), cookie())
        .prop_map(|(req, to, cookie)| Message::TransferRequest(TransferRequest { req, to, cookie }));
    let transfer_reply = (edgy_number(), prop::option::of(node_id()), prop::option::of(text(20)))
        .prop_map(|(req, leader, error)| Message::TransferReply(TransferReply { req, leader, error }));
    let timeout_now = ballot().prop_map(|ballot| Message::TimeoutNow(TimeoutNow { ballot }));
    prop_oneof![
        prepare.boxed(),
        promise.boxed(),
        nack.boxed(),
        accept.boxed(),
        accepted.boxed(),
        heartbeat.boxed(),
        catch_up.boxed(),
        catch_up_reply.boxed(),
        state_request.boxed(),
        state_reply.boxed(),
        client_propose.boxed(),
        client_reply.boxed(),
        client_redirect.boxed(),
        client_error.boxed(),
        log_read.boxed(),
        log_reply.boxed(),
        status_request.boxed(),
        status_reply.boxed(),
        probe.boxed(),
        probe_reply.boxed(),
        cookie_reply.boxed(),
        member_request.boxed(),
        member_reply.boxed(),
        restore_request.boxed(),
        restore_reply.boxed(),
        transfer_request.boxed(),
        transfer_reply.boxed(),
        timeout_now.boxed(),
    ]
}

/// An envelope of the current protocol version around `msg`.
fn envelope_of(msg: impl Strategy<Value = Message>) -> impl Strategy<Value = Envelope> {
    (text(24), node(), node(), msg).prop_map(|(cluster, from, to, msg)| Envelope {
        version: PROTOCOL_VERSION,
        cluster,
        from,
        to,
        msg,
    })
}

/// Any valid envelope of the current protocol version.
fn envelope() -> impl Strategy<Value = Envelope> {
    envelope_of(message())
}

/// A ballot strictly above `b`, or `None` when `b` is the largest ballot.
fn ballot_above(b: Ballot, r: u64) -> Option<Ballot> {
    if b.round < MAX_COUNTER {
        Some(Ballot { epoch: b.epoch, round: b.round + 1 + r % (MAX_COUNTER - b.round), proposer: NodeId(r as u32) })
    } else if b.proposer.0 < u32::MAX {
        Some(Ballot {
            epoch: b.epoch,
            round: b.round,
            proposer: NodeId(b.proposer.0 + 1 + (r as u32) % (u32::MAX - b.proposer.0)),
        })
    } else {
        None
    }
}

/// Gives `p` a non-empty page (leaving it valid) and returns a slot inside it.
fn slot_in_page(p: &mut Promise, r: u64) -> Slot {
    if p.to <= p.from {
        if p.from.0 == MAX_COUNTER {
            p.from = Slot(MAX_COUNTER - 1);
        }
        p.to = p.from.next();
    }
    Slot(p.from.0 + r % (p.to.0 - p.from.0))
}

/// A message that breaks exactly one of `validate`'s rules, with why.
fn invalid_message() -> impl Strategy<Value = (Message, &'static str)> {
    let base_promise = || {
        valid_promise().prop_map(|mut p| {
            // Keep the other entries small so that the datagram always fits.
            for e in &mut p.entries {
                if let Value::Command(c) = &mut e.value {
                    c.data = truncate_bytes(c.data.to_string(), 40).into();
                }
            }
            p
        })
    };
    let entry_below_page =
        (base_promise(), any::<Index>(), any::<u64>(), small_value()).prop_map(|(mut p, i, r, v)| {
            if p.from.0 == 0 {
                // Shift the page up by one; entries at the old `from` would be below it, so drop them.
                p.from = Slot(1);
                p.to = p.to.max(Slot(1));
                p.entries.retain(|e| e.slot >= p.from);
            }
            let bad = PromiseEntry { slot: Slot(r % p.from.0), ballot: p.ballot, value: v };
            p.entries.insert(i.index(p.entries.len() + 1), bad);
            (Message::Promise(p), "promise entry below its page")
        });
    let entry_above_page = (base_promise(), any::<Index>(), 0u64..1_000, small_value()).prop_map(|(mut p, i, d, v)| {
        let bad = PromiseEntry { slot: Slot(p.to.0.saturating_add(d)), ballot: p.ballot, value: v };
        p.entries.insert(i.index(p.entries.len() + 1), bad);
        (Message::Promise(p), "promise entry at or above its page end")
    });
    let entry_above_ballot =
        (base_promise(), any::<Index>(), any::<u64>(), small_value()).prop_map(|(mut p, i, r, v)| {
            if p.ballot == (Ballot { epoch: p.ballot.epoch, round: MAX_COUNTER, proposer: NodeId(u32::MAX) }) {
                p.ballot.proposer.0 -= 1;
                let max = p.ballot;
                p.entries.retain(|e| e.ballot <= max);
            }
            let above = ballot_above(p.ballot, r).expect("ballot below the largest");
            let slot = slot_in_page(&mut p, r);
            p.entries.insert(i.index(p.entries.len() + 1), PromiseEntry { slot, ballot: above, value: v });
            (Message::Promise(p), "promise entry above the promised ballot")
        });
    let page_reversed = (base_promise(), any::<u64>()).prop_map(|(mut p, r)| {
        if p.from.0 == 0 {
            p.from = Slot(1 + r % u64::MAX);
        }
        p.to = Slot(r % p.from.0);
        // Without entries, a reversed page breaks only the ordering rule.
        p.entries.clear();
        (Message::Promise(p), "promise page ends before it starts")
    });
    let promise_value_too_large =
        (base_promise(), any::<Index>(), any::<u64>(), command(oversized_data())).prop_map(|(mut p, i, r, c)| {
            let slot = slot_in_page(&mut p, r);
            let bad = PromiseEntry { slot, ballot: p.ballot, value: Value::Command(c) };
            p.entries.insert(i.index(p.entries.len() + 1), bad);
            (Message::Promise(p), "promise value too large")
        });
    let accept_value_too_large = (
        ballot(),
        prop::collection::vec((slot(), small_value()), 0..8),
        any::<Index>(),
        slot(),
        command(oversized_data()),
    )
        .prop_map(|(ballot, entries, i, s, c)| {
            let mut entries: Vec<_> = entries.into_iter().map(|(slot, value)| AcceptEntry { slot, value }).collect();
            entries.insert(i.index(entries.len() + 1), AcceptEntry { slot: s, value: Value::Command(c) });
            (Message::Accept(Accept { ballot, entries, commit: Slot(0) }), "accept value too large")
        });
    let catch_up_value_too_large =
        (slot(), prop::collection::vec(small_value(), 0..8), any::<Index>(), command(oversized_data()), slot())
            .prop_map(|(from, mut entries, i, c, decided)| {
                entries.insert(i.index(entries.len() + 1), Value::Command(c));
                (
                    Message::CatchUpReply(CatchUpReply { from, entries, decided, epoch: None, nonce: 0 }),
                    "catch-up value too large",
                )
            });
    let catch_up_epoch_after_from =
        (0..MAX_COUNTER - 1, slot(), cluster_config()).prop_map(|(from, decided, config)| {
            let epoch = Epoch { start: Slot(from + 1), config };
            let reply =
                CatchUpReply { from: Slot(from), entries: vec![Value::Noop], decided, epoch: Some(epoch), nonce: 0 };
            (Message::CatchUpReply(reply), "catch-up epoch starting after its first slot")
        });
    prop_oneof![
        entry_below_page,
        entry_above_page,
        entry_above_ballot,
        page_reversed,
        promise_value_too_large,
        accept_value_too_large,
        catch_up_value_too_large,
        catch_up_epoch_after_from,
    ]
}

/// A change to a datagram, as a lossy or hostile network might make it.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep only the bytes before this index.
    Truncate(Index),
    /// XOR the byte at this index with a non-zero mask.
    Flip(Index, u8),
    /// Insert these bytes before this index.
    Insert(Index, Vec<u8>),
}

/// Any mutation; inserted bytes favour JSON's own punctuation.
fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"{}[]\":,0123456789-+.eE\\u tfn".to_vec())];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), prop::collection::vec(byte, 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

/// JSON-looking token soup: mostly well-formed pieces of envelopes in random order.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"version\"",
        "\"cluster\"",
        "\"from\"",
        "\"to\"",
        "\"msg\"",
        "\"proposer\"",
        "\"acceptor\"",
        "\"client\"",
        "\"prepare\"",
        "\"promise\"",
        "\"accept\"",
        "\"entries\"",
        "\"slot\"",
        "\"value\"",
        "\"noop\"",
        "\"command\"",
        "\"data\"",
        "\"ballot\"",
        "\"round\"",
        "1",
        "2",
        "0",
        "-1",
        "65536",
        "18446744073709551616",
        "1e999",
        "1.5",
        "null",
        "true",
        "false",
        "\"\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\x\"",
        " ",
        "\u{e9}",
    ]);
    prop::collection::vec(token, 0..64).prop_map(|t| t.concat().into_bytes())
}

/// Encodes `env`, which must fit a datagram.
fn encoded(env: &Envelope) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(env, &mut buf).expect("envelope fits a datagram");
    buf
}

/// A small valid envelope carrying `msg`.
fn envelope_with(msg: Message) -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        cluster: "test".to_owned(),
        from: Node::Proposer(NodeId(1)),
        to: Node::Acceptor(NodeId(2)),
        msg,
    }
}

/// A command value of `data`.
fn command_value(data: String) -> Value {
    Value::Command(Command::new(ClientId(7), 1, data))
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// The message strategy reaches every one of the 28 message kinds.
#[test]
fn strategy_covers_every_message_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = message();
    let mut kinds = BTreeSet::new();
    for _ in 0..2_000 {
        kinds.insert(strategy.new_tree(&mut runner).expect("strategy generates").current().kind());
    }
    assert_eq!(kinds.len(), 28, "kinds generated: {kinds:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..config() })]

    /// Every valid envelope that encodes decodes back to itself, and re-encodes to the same bytes.
    #[test]
    fn encode_then_decode_round_trips(env in envelope()) {
        let mut buf = Vec::new();
        match encode(&env, &mut buf) {
            Ok(()) => {
                prop_assert!(buf.len() <= MAX_BODY_BYTES);
                let back = decode(&buf);
                prop_assert_eq!(back.as_ref(), Ok(&env));
                let mut again = Vec::new();
                encode(&back.unwrap(), &mut again).expect("re-encodes");
                prop_assert_eq!(again, buf);
            }
            Err(EncodeError::TooLarge { len }) => {
                prop_assert!(len > MAX_BODY_BYTES);
                prop_assert_eq!(len, buf.len());
                prop_assert_eq!(decode(&buf), Err(DecodeError::TooLarge { len }));
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// `encode_with_body` writes exactly the bytes of `encode`, so a message
    /// serialized once can go to every receiver.
    #[test]
    fn encode_with_body_equals_encode(env in envelope()) {
        let mut whole = Vec::new();
        let mut body = Vec::new();
        let mut parts = Vec::new();
        encode_message(&env.msg, &mut body);
        let a = encode(&env, &mut whole);
        let b = encode_with_body(&env.cluster, env.from, env.to, &body, &mut parts);
        prop_assert_eq!(a, b);
        prop_assert_eq!(parts, whole);
    }

    /// A bundle of any envelopes that fit decodes to the same envelopes in the
    /// same order; a bundle of one is the bare envelope. Envelopes pushed
    /// whole or in parts (head, body, brace) are the same, and what the
    /// datagram buffer held before (a signed trailer) never shows.
    #[test]
    fn bundles_round_trip(envs in prop::collection::vec((envelope_of(message()), any::<bool>()), 1..12)) {
        let mut bundle = Bundle::new();
        let mut sent = Vec::new();
        let mut datagrams = Vec::new();
        let mut out = b"left over".to_vec();
        for (env, in_parts) in &envs {
            let mut buf = Vec::new();
            if encode(env, &mut buf).is_err() {
                continue;
            }
            if !bundle.fits(&buf) {
                bundle.finish(&mut out);
                datagrams.push(out.clone());
                out.extend_from_slice(b" trailer");
            }
            if *in_parts {
                let (mut head, mut body) = (Vec::new(), Vec::new());
                encode_envelope_head(&env.cluster, env.from, env.to, &mut head);
                encode_message(&env.msg, &mut body);
                prop_assert_eq!(head.len() + body.len() + 1, buf.len());
                prop_assert!(bundle.fits_len(buf.len()));
                bundle.push_parts(&[&head, &body, b"}"]);
            } else {
                bundle.push(&buf);
            }
            sent.push(env.clone());
        }
        if !bundle.is_empty() {
            let one = bundle.len() == 1;
            bundle.finish(&mut out);
            if one {
                prop_assert_eq!(decode(&out), Ok(sent[sent.len() - 1].clone()));
            }
            datagrams.push(out.clone());
        }
        prop_assert!(bundle.is_empty());
        let mut got = Vec::new();
        for d in &datagrams {
            prop_assert!(d.len() <= MAX_BODY_BYTES);
            got.extend(decode_bundle(d).expect("a bundle decodes"));
        }
        prop_assert_eq!(got, sent);
    }

    /// One invalid envelope refuses the whole bundle; arbitrary bytes behind
    /// an open bracket never panic.
    #[test]
    fn bad_bundles_are_refused((msg, why) in invalid_message(), good in envelope_of(Just(Message::CatchUp(CatchUp { from: Slot(1), limit: 1, nonce: 0 }))), tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let bad = Envelope { version: PROTOCOL_VERSION, cluster: "c".to_owned(), from: good.from, to: good.to, msg };
        let mut bundle = Bundle::new();
        let mut out = Vec::new();
        bundle.push(&encoded(&good));
        bundle.push(&encoded(&bad));
        bundle.finish(&mut out);
        let got = decode_bundle(&out);
        prop_assert!(matches!(got, Err(DecodeError::Invalid(_))), "{why}: decoded to {got:?}");
        let mut soup = b"[".to_vec();
        soup.extend(tail);
        let _ = decode_bundle(&soup);
    }
}

#[test]
fn empty_and_nested_bundles_are_refused() {
    assert_eq!(decode_bundle(b"[]"), Err(DecodeError::Invalid("empty bundle")));
    assert_eq!(decode_bundle(b" \n[ ]"), Err(DecodeError::Invalid("empty bundle")));
    let env = encoded(&envelope_with(Message::CatchUp(CatchUp { from: Slot(3), limit: 1, nonce: 0 })));
    let mut nested = b"[[".to_vec();
    nested.extend(&env);
    nested.extend(b"]]");
    assert!(matches!(decode_bundle(&nested), Err(DecodeError::Malformed(_))));
    let mut v2 = b"[".to_vec();
    v2.extend(String::from_utf8(env.clone()).unwrap().replacen("\"version\":2", "\"version\":3", 1).as_bytes());
    v2.push(b']');
    assert_eq!(decode_bundle(&v2), Err(DecodeError::Version { got: 3 }));
    let mut big = vec![b' '; MAX_BODY_BYTES];
    big[0] = b'[';
    big.extend(&env);
    assert!(matches!(decode_bundle(&big), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn a_full_bundle_stays_within_the_limit() {
    let env = encoded(&envelope_with(Message::CatchUp(CatchUp { from: Slot(3), limit: 1, nonce: 0 })));
    let mut bundle = Bundle::new();
    let mut n = 0;
    while bundle.fits(&env) {
        bundle.push(&env);
        n += 1;
    }
    let mut out = Vec::new();
    bundle.finish(&mut out);
    assert!(out.len() <= MAX_BODY_BYTES && out.len() + env.len() + 1 > MAX_BODY_BYTES);
    assert_eq!(decode_bundle(&out).expect("decodes").len(), n);
}

proptest! {
    #![proptest_config(config())]

    /// A message that breaks one of `validate`'s rules encodes but decodes to `Invalid`.
    #[test]
    fn invalid_messages_decode_to_invalid((msg, why) in invalid_message(), from in node(), to in node()) {
        let env = Envelope { version: PROTOCOL_VERSION, cluster: "c".to_owned(), from, to, msg };
        let buf = encoded(&env);
        let got = decode(&buf);
        prop_assert!(matches!(got, Err(DecodeError::Invalid(_))), "{why}: decoded to {got:?}");
    }

    /// `decode` never panics on arbitrary bytes, and refuses bytes that are not JSON as malformed.
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let got = decode(&bytes);
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            prop_assert!(matches!(got, Err(DecodeError::Malformed(_))), "{got:?}");
        }
    }

    /// `decode` never panics on JSON-looking token soup, and what it accepts re-encodes and decodes equal.
    #[test]
    fn decode_never_panics_on_json_soup(bytes in json_soup()) {
        if let Ok(env) = decode(&bytes) {
            prop_assert_eq!(decode(&encoded(&env)), Ok(env));
        }
    }

    /// Truncating, flipping a byte of, or inserting bytes into a valid datagram never makes `decode` panic.
    #[test]
    fn decode_never_panics_on_mutated_datagrams(env in envelope(), m in mutation()) {
        let mut buf = Vec::new();
        let fits = encode(&env, &mut buf).is_ok();
        match m {
            Mutation::Truncate(i) => {
                buf.truncate(i.index(buf.len()));
                let got = decode(&buf);
                if fits {
                    // A proper prefix of one JSON object is never a whole one.
                    prop_assert!(matches!(got, Err(DecodeError::Malformed(_))), "{got:?}");
                }
            }
            Mutation::Flip(i, mask) => {
                if !buf.is_empty() {
                    let i = i.index(buf.len());
                    buf[i] ^= mask;
                }
                if let Ok(back) = decode(&buf) {
                    // Whatever is accepted must itself survive a round trip.
                    let mut again = Vec::new();
                    if encode(&back, &mut again).is_ok() {
                        prop_assert_eq!(decode(&again), Ok(back));
                    }
                }
            }
            Mutation::Insert(i, bytes) => {
                let at = i.index(buf.len() + 1);
                buf.splice(at..at, bytes);
                if let Ok(back) = decode(&buf) {
                    let mut again = Vec::new();
                    if encode(&back, &mut again).is_ok() {
                        prop_assert_eq!(decode(&again), Ok(back));
                    }
                }
            }
        }
    }

    /// `json_str_len` equals the length of serde_json's own encoding of the string.
    #[test]
    fn json_str_len_matches_serde_json(s in prop_oneof![text(256), any::<String>()]) {
        prop_assert_eq!(json_str_len(&s), serde_json::to_string(&s).unwrap().len());
    }

    /// Ballots order by round first, then proposer, and `cmp` is `Equal` exactly when `==`.
    #[test]
    fn ballot_order_is_round_then_proposer(
        a_round in prop_oneof![0u64..3, any::<u64>()],
        a_prop in prop_oneof![0u32..3, any::<u32>()],
        b_round in prop_oneof![0u64..3, any::<u64>()],
        b_prop in prop_oneof![0u32..3, any::<u32>()],
    ) {
        let a = Ballot::new(a_round, NodeId(a_prop));
        let b = Ballot::new(b_round, NodeId(b_prop));
        prop_assert_eq!(a.cmp(&b), (a_round, a_prop).cmp(&(b_round, b_prop)));
        prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        prop_assert_eq!(b.cmp(&a), a.cmp(&b).reverse());
    }

    /// `Value::wire_len` is at least the bytes the value takes inside an encoded `AcceptEntry`.
    #[test]
    fn wire_len_bounds_encoded_value(v in value_of(prop_oneof![text(64), value_data()]), s in slot()) {
        let entry = serde_json::to_string(&AcceptEntry { slot: s, value: v.clone() }).unwrap();
        let value = serde_json::to_string(&v).unwrap();
        // The compact encoding of an entry holds the value's own encoding verbatim.
        prop_assert!(entry.contains(&value));
        prop_assert!(v.wire_len() >= value.len(), "wire_len {} < encoded {} for {:?}", v.wire_len(), value.len(), v);
    }
}

// ---------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------

/// A datagram one byte over the limit is refused as too large before any parsing.
#[test]
fn oversized_datagram_is_too_large() {
    let bytes = vec![b' '; MAX_DATAGRAM_BYTES + 1];
    assert_eq!(decode(&bytes), Err(DecodeError::TooLarge { len: MAX_DATAGRAM_BYTES + 1 }));
}

/// A valid datagram padded to exactly the limit still decodes.
#[test]
fn datagram_of_exactly_the_limit_decodes() {
    let env = envelope_with(Message::CatchUp(CatchUp { from: Slot(3), limit: 1, nonce: 0 }));
    let mut bytes = encoded(&env);
    bytes.resize(MAX_DATAGRAM_BYTES, b' ');
    assert_eq!(decode(&bytes), Ok(env));
}

/// An otherwise valid envelope of another version (the one before, and the one after) is refused as a version mismatch.
#[test]
fn other_versions_are_version_errors() {
    for version in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
        let mut env = envelope_with(Message::Prepare(Prepare {
            ballot: Ballot::new(1, NodeId(1)),
            from: Slot(0),
            epoch: None,
            wrote: vec![],
        }));
        env.version = version;
        assert_eq!(decode(&encoded(&env)), Err(DecodeError::Version { got: version }));
    }
}

/// A next-version envelope whose message kind this build does not know is still a version mismatch.
#[test]
fn next_version_with_unknown_kind_is_version_error() {
    let bytes =
        br#"{"version":3,"cluster":"c","from":{"proposer":1},"to":{"acceptor":1},"msg":{"frobnicate":{"x":[1,2]}}}"#;
    assert_eq!(decode(bytes), Err(DecodeError::Version { got: 3 }));
}

/// A current-version envelope with an unknown message kind is malformed.
#[test]
fn current_version_with_unknown_kind_is_malformed() {
    let bytes = br#"{"version":2,"cluster":"c","from":{"proposer":1},"to":{"acceptor":1},"msg":{"frobnicate":{}}}"#;
    assert!(matches!(decode(bytes), Err(DecodeError::Malformed(_))));
}

/// Truncated JSON is malformed, at every cut point of a real datagram.
#[test]
fn truncated_json_is_malformed() {
    let env = envelope_with(Message::Accept(Accept {
        ballot: Ballot::new(4, NodeId(2)),
        entries: vec![AcceptEntry { slot: Slot(9), value: command_value("hello \"world\"\n".to_owned()) }],
        commit: Slot(3),
    }));
    let bytes = encoded(&env);
    for cut in 0..bytes.len() {
        let got = decode(&bytes[..cut]);
        assert!(matches!(got, Err(DecodeError::Malformed(_))), "cut at {cut}: {got:?}");
    }
}

/// Deeply nested JSON hits serde_json's recursion limit instead of the stack.
#[test]
fn deeply_nested_json_is_malformed() {
    let mut bytes = br#"{"version":2,"cluster":"c","from":{"proposer":1},"to":{"acceptor":1},"msg":"#.to_vec();
    bytes.extend(vec![b'['; 60_000]);
    assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
}

/// An accept whose values together exceed the datagram limit fails to encode as too large.
#[test]
fn oversized_accept_fails_to_encode() {
    let entries =
        (0..9).map(|i| AcceptEntry { slot: Slot(i), value: command_value("v".repeat(MAX_VALUE_BYTES)) }).collect();
    let env = envelope_with(Message::Accept(Accept { ballot: Ballot::new(1, NodeId(1)), entries, commit: Slot(0) }));
    let mut buf = Vec::new();
    let err = encode(&env, &mut buf).expect_err("9 full values exceed one datagram");
    let EncodeError::TooLarge { len } = err;
    assert!(len > MAX_BODY_BYTES);
    assert_eq!(len, buf.len());
}

/// An envelope encoding to exactly `MAX_BODY_BYTES` encodes and decodes; one byte more is too large.
#[test]
fn encode_limit_is_inclusive() {
    let propose = |value: String| envelope_with(Message::ClientPropose(ClientPropose { seq: 1, value: value.into() }));
    let overhead = encoded(&propose(String::new())).len();
    let at_limit = propose("a".repeat(MAX_BODY_BYTES - overhead));
    let bytes = encoded(&at_limit);
    assert_eq!(bytes.len(), MAX_BODY_BYTES);
    assert_eq!(decode(&bytes), Ok(at_limit));
    let mut buf = Vec::new();
    let over = propose("a".repeat(MAX_BODY_BYTES + 1 - overhead));
    assert_eq!(encode(&over, &mut buf), Err(EncodeError::TooLarge { len: MAX_BODY_BYTES + 1 }));
}

/// A log value of exactly `MAX_VALUE_BYTES` is accepted; one byte more is invalid.
#[test]
fn value_size_limit_is_inclusive() {
    let accept = |data: String| {
        envelope_with(Message::Accept(Accept {
            ballot: Ballot::new(1, NodeId(1)),
            entries: vec![AcceptEntry { slot: Slot(0), value: command_value(data) }],
            commit: Slot(0),
        }))
    };
    let at_limit = accept("é".repeat(MAX_VALUE_BYTES / 2));
    assert_eq!(decode(&encoded(&at_limit)), Ok(at_limit));
    let over = accept("x".repeat(MAX_VALUE_BYTES + 1));
    assert_eq!(decode(&encoded(&over)), Err(DecodeError::Invalid("value too large")));
}

/// A promise page may be empty (`from == to`) and still be valid.
#[test]
fn empty_promise_page_is_valid() {
    let env = envelope_with(Message::Promise(Promise {
        ballot: Ballot::new(3, NodeId(1)),
        from: Slot(5),
        to: Slot(5),
        done: true,
        decided: Slot(0),
        incarnation: 1,
        entries: vec![],
        written: None,
    }));
    assert_eq!(decode(&encoded(&env)), Ok(env));
}

/// Ballots compare by round before proposer, with `ZERO` below every other ballot.
#[test]
fn ballot_order_examples() {
    assert!(Ballot::new(2, NodeId(1)) > Ballot::new(1, NodeId(9)));
    assert!(Ballot::new(1, NodeId(2)) > Ballot::new(1, NodeId(1)));
    assert_eq!(Ballot::new(1, NodeId(1)), Ballot::new(1, NodeId(1)));
    assert!(Ballot::ZERO < Ballot::new(0, NodeId(1)));
    assert_eq!(Ballot::ZERO, Ballot::default());
}

/// `json_str_len` counts two bytes for short escapes, six for other control characters, raw bytes otherwise.
#[test]
fn json_str_len_examples() {
    assert_eq!(json_str_len(""), 2);
    assert_eq!(json_str_len("a\"b\\c"), 9);
    assert_eq!(json_str_len("\n\r\t\u{8}\u{c}"), 12);
    assert_eq!(json_str_len("\u{0}\u{1f}"), 14);
    assert_eq!(json_str_len("\u{7f}é😀"), 2 + 1 + 2 + 4);
}

/// Slots and rounds beyond MAX_COUNTER are refused at the edge, so that no role
/// ever computes `slot + 1` or `round + 1` near `u64::MAX` (found by the role tests:
/// a catch-up reply at the last slot wrapped to slot 0; a huge round wrapped a ballot).
#[test]
fn counters_beyond_the_limit_are_invalid() {
    let too_big = MAX_COUNTER + 1;
    let ballot = Ballot { epoch: 0, round: too_big, proposer: NodeId(1) };
    let msgs = [
        Message::Heartbeat(Heartbeat {
            ballot,
            leader: true,
            decided: Slot(0),
            known: Slot(0),
            damaged: false,
            written: vec![],
            digest: None,
        }),
        Message::Heartbeat(Heartbeat {
            ballot: Ballot::ZERO,
            leader: true,
            decided: Slot(0),
            known: Slot(0),
            damaged: false,
            written: vec![],
            digest: Some(Digest { slot: Slot(too_big), chain: 1 }),
        }),
        Message::ProbeReply(ProbeReply {
            nonce: 1,
            promised: Ballot::ZERO,
            decided: Slot(0),
            incarnation: 0,
            epoch: 0,
            joining: false,
            leader: None,
            challenge: 0,
            clock_ms: 0,
            written: None,
            digest: Some(Digest { slot: Slot(too_big), chain: 1 }),
        }),
        Message::Nack(Nack { ballot: Ballot::ZERO, promised: ballot, reason: NackReason::Promised }),
        Message::Accept(Accept {
            ballot: Ballot::ZERO,
            entries: vec![AcceptEntry { slot: Slot(too_big), value: Value::Noop }],
            commit: Slot(0),
        }),
        Message::Accepted(Accepted { ballot: Ballot::ZERO, slots: vec![Slot(u64::MAX)], written: None }),
        Message::CatchUpReply(CatchUpReply {
            from: Slot(MAX_COUNTER),
            entries: vec![Value::Noop, Value::Noop],
            decided: Slot(0),
            epoch: None,
            nonce: 0,
        }),
        Message::CatchUp(CatchUp { from: Slot(u64::MAX), limit: 1, nonce: 0 }),
    ];
    for msg in msgs {
        let env = Envelope {
            version: PROTOCOL_VERSION,
            cluster: "c".into(),
            from: Node::Proposer(NodeId(1)),
            to: Node::Acceptor(NodeId(1)),
            msg,
        };
        let mut buf = Vec::new();
        encode(&env, &mut buf).unwrap();
        assert!(matches!(decode(&buf), Err(DecodeError::Invalid(_))), "{:?}", env.msg);
    }
    // The limit itself is fine.
    let ok = Message::CatchUp(CatchUp { from: Slot(MAX_COUNTER), limit: 1, nonce: 0 });
    let env = Envelope {
        version: PROTOCOL_VERSION,
        cluster: "c".into(),
        from: Node::Proposer(NodeId(1)),
        to: Node::Acceptor(NodeId(1)),
        msg: ok,
    };
    let mut buf = Vec::new();
    encode(&env, &mut buf).unwrap();
    assert!(decode(&buf).is_ok());
}

proptest! {
    #![proptest_config(config())]

    /// With [auth]: every message kind, signed with the peer key, opens as a
    /// peer's and decodes to itself; any flipped bit, a wrong key or a
    /// truncated MAC is refused; a key rotated in verifies beside the old one.
    #[test]
    fn a_mac_over_every_message_verifies_and_nothing_else_does(
        env in envelope(),
        at in any::<Index>(),
        bit in 0u8..8,
        cut in 1usize..=crate::auth::TRAILER_BYTES,
    ) {
        use crate::auth::{open, KeyRing, Signer};
        let peer = KeyRing::from_key(&[7; 32]);
        let rotated = KeyRing::parse(&format!("{}\n{}", "ab".repeat(32), "07".repeat(32))).unwrap();
        let mut datagram = Vec::new();
        prop_assume!(encode(&env, &mut datagram).is_ok());
        let body_len = datagram.len();
        peer.sign(&mut datagram);
        let (body, signer) = open(&datagram, Some(&peer), None).expect("its own MAC verifies");
        prop_assert_eq!(signer, Signer::Peer);
        prop_assert_eq!(body.len(), body_len);
        prop_assert_eq!(decode(body), Ok(env.clone()));
        prop_assert_eq!(open(&datagram, Some(&rotated), None).map(|(_, s)| s), Ok(Signer::Peer), "the old key still verifies");

        let mut flipped = datagram.clone();
        flipped[at.index(datagram.len())] ^= 1 << bit;
        prop_assert_ne!(open(&flipped, Some(&peer), None).map(|(_, s)| s), Ok(Signer::Peer));
        let truncated = &datagram[..datagram.len() - cut];
        prop_assert_ne!(open(truncated, Some(&peer), None).map(|(_, s)| s), Ok(Signer::Peer));
        let other = KeyRing::from_key(&[8; 32]);
        prop_assert!(open(&datagram, Some(&other), None).is_err());
    }
}

/// Client ids, sequence and request numbers of 2^53 or more are refused,
/// so that every JSON parser (JavaScript's doubles too) reads them exactly.
#[test]
fn client_numbers_stay_below_2_pow_53() {
    let ok = |from: Node, msg: Message| {
        let env = Envelope { version: PROTOCOL_VERSION, cluster: "c".into(), from, to: Node::Proposer(NodeId(1)), msg };
        let mut buf = Vec::new();
        encode(&env, &mut buf).unwrap();
        decode(&buf).is_ok()
    };
    let propose = |seq| Message::ClientPropose(ClientPropose { seq, value: "x".into() });
    assert!(ok(Node::Client(ClientId(MAX_CLIENT_NUMBER)), propose(MAX_CLIENT_NUMBER)));
    assert!(!ok(Node::Client(ClientId(MAX_CLIENT_NUMBER + 1)), propose(1)));
    assert!(!ok(Node::Client(ClientId(1)), propose(MAX_CLIENT_NUMBER + 1)));
    let status = |req| Message::StatusRequest(StatusRequest { req, cookie: None });
    assert!(!ok(Node::Client(ClientId(1)), status(1 << 53)));
}

/// The widest cookie answer (longest cluster name, widest ids and numbers)
/// is no longer than the shortest read a client may send without a cookie:
/// a node asked by an unproven address never answers with more bytes.
#[test]
fn the_widest_cookie_answer_fits_in_the_shortest_unproven_read() {
    let reply = Envelope {
        version: PROTOCOL_VERSION,
        cluster: "c".repeat(64),
        from: Node::Acceptor(NodeId(u32::MAX)),
        to: Node::Client(ClientId(MAX_CLIENT_NUMBER)),
        msg: Message::Cookie(Cookie { req: MAX_CLIENT_NUMBER, cookie: "f".repeat(32) }),
    };
    let mut buf = Vec::new();
    encode(&reply, &mut buf).unwrap();
    assert!(buf.len() <= MIN_UNPROVEN_READ_BYTES, "{} > {MIN_UNPROVEN_READ_BYTES}", buf.len());
    println!("widest cookie answer: {} bytes", buf.len());
}

/// The envelopes the fast path reads and writes: a client's proposal, an
/// accept whose values are no-ops and commands, a vote, a client reply.
fn fast_envelope() -> impl Strategy<Value = Envelope> {
    let proposal = (edgy_u64(), text(40))
        .prop_map(|(seq, value)| Message::ClientPropose(ClientPropose { seq, value: value.into() }));
    let entry_value = prop_oneof![Just(Value::Noop), command(text(40)).prop_map(Value::Command)];
    let entries =
        prop::collection::vec((slot(), entry_value).prop_map(|(slot, value)| AcceptEntry { slot, value }), 0..5);
    let accept = (ballot(), entries, slot())
        .prop_map(|(ballot, entries, commit)| Message::Accept(Accept { ballot, entries, commit }));
    let accepted = (ballot(), prop::collection::vec(slot(), 0..5), written())
        .prop_map(|(ballot, slots, written)| Message::Accepted(Accepted { ballot, slots, written }));
    let reply = (edgy_u64(), slot()).prop_map(|(seq, slot)| Message::ClientReply(ClientReply { seq, slot }));
    envelope_of(prop_oneof![proposal, accept, accepted, reply])
}

/// Whether the fast path must read `env`: every string in it is plain.
fn all_plain(env: &Envelope) -> bool {
    plain(&env.cluster)
        && match &env.msg {
            Message::ClientPropose(p) => plain(&p.value),
            Message::Accept(a) => a.entries.iter().all(|e| match &e.value {
                Value::Command(c) => plain(&c.data),
                _ => true,
            }),
            Message::Accepted(_) | Message::ClientReply(_) => true,
            _ => false,
        }
}

/// What serde_json alone makes of a datagram, envelope or bundle, before any validation.
fn serde_envelopes(bytes: &[u8]) -> Option<Vec<Envelope>> {
    if bytes.first() == Some(&b'[') {
        serde_json::from_slice(bytes).ok()
    } else {
        serde_json::from_slice(bytes).ok().map(|env| vec![env])
    }
}

/// A string the fast path takes as it is: nothing JSON escapes.
fn plain(s: &str) -> bool {
    !s.chars().any(|c| c == '"' || c == '\\' || c < ' ')
}

/// `datagram` of `envs`, bundled when there are several.
fn datagram_of(envs: &[Envelope]) -> Vec<u8> {
    if envs.len() == 1 {
        return encoded(&envs[0]);
    }
    let mut bundle = Bundle::new();
    for env in envs {
        bundle.push(&encoded(env));
    }
    let mut out = Vec::new();
    bundle.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(config())]

    /// Our encoding of client proposals and accepts, alone or bundled, reads
    /// back through the fast path exactly whenever no string needs an escape.
    #[test]
    fn fast_path_reads_our_proposals_and_accepts(envs in prop::collection::vec(fast_envelope(), 1..6)) {
        let bytes = datagram_of(&envs);
        let fast = super::fast::envelopes(&bytes);
        if envs.iter().all(all_plain) {
            prop_assert_eq!(fast.as_ref(), Some(&envs));
        } else {
            prop_assert_eq!(fast.as_ref(), None);
        }
        prop_assert_eq!(serde_envelopes(&bytes), Some(envs));
    }

    /// The fast writer writes every accept without a configuration value,
    /// every vote, client proposal and client reply, whatever their strings hold, and
    /// writes serde_json's bytes; it leaves every other message alone. (So
    /// this fails if the writer silently never runs, and
    /// `encode_with_body_equals_encode` checks whole envelopes.)
    #[test]
    fn fast_writer_writes_serde_jsons_bytes(env in envelope(), fast in fast_envelope(), seq in edgy_number(), slot in slot()) {
        let reply = Message::ClientReply(ClientReply { seq, slot });
        for msg in [env.msg, fast.msg, reply] {
            let mut out = Vec::new();
            let written = super::fast::encode_message(&msg, &mut out);
            let expected = match &msg {
                Message::Accept(a) => a.entries.iter().all(|e| !matches!(e.value, Value::Config(_))),
                Message::Accepted(_) | Message::ClientReply(_) | Message::ClientPropose(_) => true,
                _ => false,
            };
            prop_assert_eq!(written, expected, "{:?}", msg);
            if written {
                prop_assert_eq!(out, serde_json::to_vec(&msg).expect("serializes"));
            } else {
                prop_assert!(out.is_empty(), "nothing written for a message left to serde_json");
            }
        }
    }

    /// Any envelope of any kind: the fast path reads it as it was or leaves it to serde_json.
    #[test]
    fn fast_path_reads_any_envelope_right_or_not_at_all(env in envelope()) {
        let bytes = encoded(&env);
        if let Some(fast) = super::fast::envelopes(&bytes) {
            prop_assert_eq!(fast, vec![env]);
        }
    }

    /// On damaged datagrams the fast path either gives up or reads what
    /// serde_json reads, and `decode_bundle` answers as before.
    #[test]
    fn fast_path_agrees_with_serde_on_damaged_datagrams(envs in prop::collection::vec(fast_envelope(), 1..4), m in mutation()) {
        let mut bytes = datagram_of(&envs);
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Flip(i, mask) => {
                let i = i.index(bytes.len());
                bytes[i] ^= mask;
            }
            Mutation::Insert(i, ins) => {
                let i = i.index(bytes.len() + 1);
                bytes.splice(i..i, ins);
            }
        }
        if let Some(fast) = super::fast::envelopes(&bytes) {
            prop_assert_eq!(Some(fast), serde_envelopes(&bytes));
        }
    }
}

/// The fast path reads the canonical form only: any whitespace, escape,
/// unusual number or other field order goes to serde_json, which decides.
#[test]
fn fast_path_leaves_anything_unusual_to_serde() {
    let env = Envelope {
        version: PROTOCOL_VERSION,
        cluster: "c".into(),
        from: Node::Client(ClientId(7)),
        to: Node::Proposer(NodeId(2)),
        msg: Message::ClientPropose(ClientPropose { seq: 3, value: "v".into() }),
    };
    let canonical = String::from_utf8(encoded(&env)).expect("UTF-8");
    assert_eq!(
        canonical,
        r#"{"version":2,"cluster":"c","from":{"client":7},"to":{"proposer":2},"msg":{"client_propose":{"seq":3,"value":"v"}}}"#
    );
    assert_eq!(super::fast::envelopes(canonical.as_bytes()), Some(vec![env.clone()]));
    for unusual in [
        canonical.replace(r#""seq":3"#, r#""seq": 3"#),
        canonical.replace(r#""seq":3"#, r#""seq":03"#),
        canonical.replace(r#""seq":3"#, r#""seq":3.0"#),
        canonical.replace(r#""seq":3"#, r#""seq":-3"#),
        canonical.replace(r#""seq":3"#, r#""seq":18446744073709551616"#),
        canonical.replace(r#""value":"v""#, r#""value":"\u0076""#),
        canonical.replace(r#""proposer":2"#, r#""proposer":4294967296"#),
        canonical.replace(r#""version":2"#, r#""version":3"#),
        canonical.replace(r#""from":{"client":7},"to":{"proposer":2}"#, r#""to":{"proposer":2},"from":{"client":7}"#),
        format!(" {canonical}"),
        format!("{canonical} "),
        format!("[{canonical},]"),
        "[]".to_owned(),
    ] {
        assert_eq!(super::fast::envelopes(unusual.as_bytes()), None, "{unusual}");
    }
    // Some of those are fine JSON all the same: serde_json reads them, as before.
    let spaced = canonical.replace(r#""seq":3"#, r#""seq": 3"#);
    assert_eq!(decode_bundle(spaced.as_bytes()), Ok(vec![env.clone()]));
    let escaped = canonical.replace(r#""value":"v""#, r#""value":"\u0076""#);
    assert_eq!(decode_bundle(escaped.as_bytes()), Ok(vec![env]));

    // Accepts: no-ops and commands are read; a configuration, or a missing
    // commit (which serde_json takes as 0), is left to serde_json.
    let accept = |value: Value| Envelope {
        version: PROTOCOL_VERSION,
        cluster: "c".into(),
        from: Node::Proposer(NodeId(2)),
        to: Node::Acceptor(NodeId(3)),
        msg: Message::Accept(Accept {
            ballot: Ballot::in_epoch(1, 4, NodeId(2)),
            entries: vec![AcceptEntry { slot: Slot(9), value: Value::Noop }, AcceptEntry { slot: Slot(10), value }],
            commit: Slot(9),
        }),
    };
    let with_command = accept(command_value("x".into()));
    let bytes = encoded(&with_command);
    assert_eq!(super::fast::envelopes(&bytes), Some(vec![with_command.clone()]));
    let with_config = accept(Value::Config(Config {
        epoch: 1,
        acceptors: Vec::new(),
        proposers: Vec::new(),
        session_lifetime_ms: 60_000,
    }));
    assert_eq!(super::fast::envelopes(&encoded(&with_config)), None);
    let no_commit = String::from_utf8(bytes).expect("UTF-8").replace(r#","commit":9"#, "");
    assert_eq!(super::fast::envelopes(no_commit.as_bytes()), None);
    let Message::Accept(a) = &with_command.msg else { unreachable!() };
    let want = Envelope { msg: Message::Accept(Accept { commit: Slot(0), ..a.clone() }), ..with_command.clone() };
    assert_eq!(decode_bundle(no_commit.as_bytes()), Ok(vec![want]));
}
