//! The guarantees of SPEC.md, one per module, checked on a finished world.
//!
//! Agreement is also checked after every tick (in the world), since a
//! disagreement may be repaired or hidden by a later crash.

pub mod agreement;
pub mod durability;
pub mod exactly_once;
pub mod liveness;
pub mod order;
pub mod validity;

use std::collections::BTreeMap;

use paxos_proto::{ClientId, Slot, Value};

use crate::world::World;

/// Runs every final check and appends what it finds to the world's violations.
pub fn check_all(world: &mut World) {
    let mut found = Vec::new();
    found.extend(agreement::check(world));
    found.extend(validity::check(world));
    found.extend(durability::check(world));
    found.extend(exactly_once::check(world));
    found.extend(order::check(world));
    found.extend(liveness::check_settled(world));
    world.violations.extend(found);
}

/// Per request `(client, seq)`, the first slot where it was chosen: where it counts.
pub(crate) fn first_slots(chosen: &BTreeMap<Slot, Value>) -> BTreeMap<(ClientId, u64), Slot> {
    let mut first = BTreeMap::new();
    for (slot, value) in chosen {
        if let Value::Command(c) = value {
            first.entry((c.client, c.seq)).or_insert(*slot);
        }
    }
    first
}
