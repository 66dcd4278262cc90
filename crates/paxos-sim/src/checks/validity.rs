//! Guarantee 2, validity: the log holds only values that clients proposed, and no-ops.

use std::collections::BTreeSet;

use paxos_proto::Value;

use crate::world::World;
use crate::Violation;

/// Every chosen command is a request some client sent, with the data it sent.
pub fn check(world: &World) -> Vec<Violation> {
    let proposed: BTreeSet<_> = world
        .clients
        .iter()
        .flat_map(|c| c.requests.iter().filter(|r| r.started.is_some()).map(move |r| (c.id, r.seq, r.value.as_str())))
        .collect();
    world
        .chosen
        .iter()
        .filter_map(|(slot, v)| match v {
            Value::Command(c) if !proposed.contains(&(c.client, c.seq, c.data.as_str())) => Some(Violation {
                invariant: "validity",
                detail: format!("slot {slot} holds {c:?}, which no client proposed"),
            }),
            _ => None,
        })
        .collect()
}
