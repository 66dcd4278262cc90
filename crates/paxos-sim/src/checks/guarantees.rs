//! Guarantees 1 to 5 on the logs and what the clients were told, through the
//! one checker every test uses ([`paxos_check`]): agreement between every
//! learner's final log and everything any learner ever applied, validity,
//! exactly once, durability at the acknowledged slot, and order (per client,
//! and in real time across clients, with ticks for time).
//!
//! Exactly once holds as SPEC words it: a request lands at most once unless
//! its client was idle for longer than the session lifetime. That rule is
//! computed here on its own, from the log ([`Sessions`]), and the
//! proposers' marks of duplicates must agree with it; a request that landed
//! again after its session expired is allowed, and checked as a request of
//! its own.

use std::collections::{BTreeMap, BTreeSet};

use paxos_check::{check, Client, Entry, Expect, Log, Sent};
use paxos_proto::{ClientId, Slot, Value};

use crate::world::World;
use crate::Violation;

/// A request, as the simulator names it.
type Key = (ClientId, u64);

/// The key of a request that landed again after its session expired, at `slot`: a request of its own.
fn relanded_key(slot: Slot, seq: u64) -> Key {
    (ClientId((1 << 62) + slot.0), seq)
}

/// How every slot of the log applies by SPEC's rule of sessions.
#[derive(Debug, Default)]
struct Sessions {
    /// Slots whose command repeats a request its client's live session already applied.
    duplicates: BTreeSet<Slot>,
    /// Slots whose command repeats an applied request whose session expired: it lands again.
    relanded: BTreeMap<Slot, Key>,
}

impl Sessions {
    /// Walks the decided log from slot 0: per client, the last request
    /// applied and when (by the log's clock: the highest stamp so far); a
    /// request not above it is a duplicate while the client was idle for at
    /// most the lifetime in force (the configuration's), else it lands again.
    /// A request above it that was applied before lands again too: its
    /// session expired since, and a stale retry of an older request began a
    /// new one.
    fn of(world: &World) -> Sessions {
        let mut out = Sessions::default();
        let mut last: BTreeMap<ClientId, (u64, u64)> = BTreeMap::new();
        let mut applied: BTreeSet<Key> = BTreeSet::new();
        let mut clock = 0;
        let mut lifetime = world.configs[&0].session_lifetime_ms;
        for (slot, value) in &world.chosen {
            match value {
                Value::Command(c) => {
                    clock = clock.max(c.at);
                    match last.get(&c.client) {
                        Some((seq, at)) if *seq >= c.seq && clock.saturating_sub(*at) <= lifetime => {
                            out.duplicates.insert(*slot);
                        }
                        Some((seq, _)) if *seq >= c.seq => {
                            out.relanded.insert(*slot, relanded_key(*slot, c.seq));
                            last.insert(c.client, (c.seq, c.at));
                        }
                        _ => {
                            if !applied.insert((c.client, c.seq)) {
                                out.relanded.insert(*slot, relanded_key(*slot, c.seq));
                            }
                            last.insert(c.client, (c.seq, c.at));
                        }
                    }
                }
                Value::Config(c) => lifetime = c.session_lifetime_ms,
                Value::Noop => {}
            }
        }
        out
    }
}

/// Runs the checker on the world's logs and clients.
pub fn check_world(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    let contiguous = world.chosen.keys().enumerate().all(|(i, s)| s.0 == i as u64);
    if !contiguous {
        // Some learner skipped a slot: the logs below say where.
        found.push(Violation { invariant: "gap", detail: "the slots learners applied have a hole".into() });
    }
    let sessions = Sessions::of(world);
    let view = |slot: Slot, value: &Value| -> Entry<Key> {
        match value {
            Value::Command(_) if sessions.duplicates.contains(&slot) => Entry::Noop,
            Value::Command(c) => {
                Entry::Value(sessions.relanded.get(&slot).copied().unwrap_or((c.client, c.seq)), c.data.to_string())
            }
            Value::Noop | Value::Config(_) => Entry::Noop,
        }
    };
    // Everything any learner ever applied, slot by slot, from slot 0.
    let ever = world.chosen.iter().map(|(s, v)| view(*s, v)).collect();
    let mut logs = vec![Log { name: "every learner, ever".into(), first: 0, entries: ever }];
    for p in world.member_proposers() {
        let (start, entries) = world.proposer_log(p);
        let name = format!("proposer {}", p + 1);
        for (i, (value, duplicate)) in entries.iter().enumerate() {
            let slot = Slot(start.0 + i as u64);
            if *duplicate != sessions.duplicates.contains(&slot) {
                let detail = format!(
                    "{name} marks slot {slot} ({value:?}) as {}a duplicate, the rule of sessions does not",
                    if *duplicate { "" } else { "not " }
                );
                found.push(Violation { invariant: "exactly-once", detail });
            }
        }
        let entries = entries.iter().enumerate().map(|(i, (v, _))| view(Slot(start.0 + i as u64), v)).collect();
        logs.push(Log { name, first: start.0, entries });
    }
    // A request that landed again after its session expired was acknowledged
    // (if at all) with one of its slots: that one keeps the request's key.
    let acked: BTreeMap<Key, Slot> = world
        .clients
        .iter()
        .flat_map(|c| c.requests.iter().filter_map(move |r| r.acked.map(|(_, slot)| ((c.id, r.seq), slot))))
        .collect();
    let mut relanded_sent = Vec::new();
    for (slot, key) in &sessions.relanded {
        let Some(Value::Command(c)) = world.chosen.get(slot) else { continue };
        let original = (c.client, c.seq);
        let kept = acked.get(&original) == Some(slot);
        for log in &mut logs {
            rekey(log, original, *slot, *key, kept);
        }
        relanded_sent.push(Sent { key: *key, value: c.data.to_string(), at: None, acked: None });
    }
    let mut clients: Vec<Client<Key>> = world
        .clients
        .iter()
        .map(|c| Client {
            name: format!("client {}", c.id.0),
            sent: c
                .requests
                .iter()
                .filter(|r| r.started.is_some())
                .map(|r| Sent {
                    key: (c.id, r.seq),
                    value: r.value.clone(),
                    at: r.started,
                    acked: r.acked.map(|(tick, slot)| (slot.0, Some(tick))),
                })
                .collect(),
            // A simulated client sends its next request only once the one before is
            // acknowledged, or given up (which may land later than the next one).
            sequential: !c.gave_up(),
        })
        .collect();
    // What the adversary proposed as a client is a client's proposal too.
    let sent = world.adversary_proposals.iter().map(|c| Sent {
        key: (c.client, c.seq),
        value: c.data.to_string(),
        at: None,
        acked: None,
    });
    clients.push(Client { name: "the adversary, as a client".into(), sent: sent.collect(), sequential: false });
    clients.push(Client {
        name: "requests that landed again after their session expired".into(),
        sent: relanded_sent,
        sequential: false,
    });
    found.extend(check(&logs, &clients, Expect::default()));
    found
}

/// In `log`, the landings of `original` at `slot` and at earlier slots:
/// when `kept` (the client was acknowledged with `slot`), the earlier
/// landing takes the fresh key and `slot` keeps the original; else `slot`
/// takes the fresh key.
fn rekey(log: &mut Log<Key>, original: Key, slot: Slot, fresh: Key, kept: bool) {
    let first = log.first;
    for (i, entry) in log.entries.iter_mut().enumerate() {
        let at = first + i as u64;
        let Entry::Value(key, _) = entry else { continue };
        if at == slot.0 && *key == fresh && kept {
            *key = original;
        } else if at < slot.0 && *key == original && kept {
            *key = fresh;
        }
    }
}

/// What clients were told that a correct cluster never tells them: a
/// request acknowledged with two slots is one only if it landed again after
/// its session expired.
pub fn complaints(world: &World) -> Vec<Violation> {
    let sessions = Sessions::of(world);
    let mut found: Vec<Violation> = world
        .clients
        .iter()
        .flat_map(|c| &c.complaints)
        .map(|c| Violation { invariant: "exactly-once", detail: c.clone() })
        .collect();
    for c in &world.clients {
        for (seq, a, b) in &c.double_acks {
            if !sessions.relanded.contains_key(a) && !sessions.relanded.contains_key(b) {
                let detail = format!("client {} seq {seq} acked at {a} and at {b}", c.id.0);
                found.push(Violation { invariant: "exactly-once", detail });
            }
        }
    }
    found
}
