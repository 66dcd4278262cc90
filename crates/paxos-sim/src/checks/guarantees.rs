//! Guarantees 1 to 5 on the logs and what the clients were told, through the
//! one checker every test uses ([`paxos_check`]): agreement between every
//! learner's final log and everything any learner ever applied, validity,
//! exactly once, durability at the acknowledged slot, and order (per client,
//! and in real time across clients, with ticks for time).

use paxos_check::{check, client_view, Client, Entry, Expect, Log, Sent};
use paxos_proto::{ClientId, Value};

use crate::world::World;
use crate::Violation;

/// A request, as the simulator names it.
type Key = (ClientId, u64);

fn entries<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<Entry<Key>> {
    client_view(values.into_iter().map(|v| match v {
        Value::Command(c) => Entry::Value((c.client, c.seq), c.data.clone()),
        Value::Noop => Entry::Noop,
    }))
}

/// Runs the checker on the world's logs and clients.
pub fn check_world(world: &World) -> Vec<Violation> {
    // Everything any learner ever applied, slot by slot, from slot 0.
    let mut logs = vec![Log { name: "every learner, ever".into(), first: 0, entries: entries(world.chosen.values()) }];
    for p in world.proposers.iter().flatten() {
        logs.push(Log { name: format!("proposer {}", p.id()), first: 0, entries: entries(p.learner().log()) });
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
            // A simulated client sends its next request only once the one before is acknowledged.
            sequential: true,
        })
        .collect();
    // What the adversary proposed as a client is a client's proposal too.
    let sent = world.adversary_proposals.iter().map(|c| Sent {
        key: (c.client, c.seq),
        value: c.data.clone(),
        at: None,
        acked: None,
    });
    clients.push(Client { name: "the adversary, as a client".into(), sent: sent.collect(), sequential: false });
    check(&logs, &clients, Expect::default())
}

/// What clients were told that a correct cluster never tells them.
pub fn complaints(world: &World) -> Vec<Violation> {
    let complaints = world.clients.iter().flat_map(|c| &c.complaints);
    complaints.map(|c| Violation { invariant: "exactly-once", detail: c.clone() }).collect()
}
