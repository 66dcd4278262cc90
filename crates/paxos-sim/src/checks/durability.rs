//! Guarantee 3, durability: an acknowledged value keeps its slot after any crash and restart.

use paxos_proto::Value;

use crate::world::World;
use crate::Violation;

/// Every acknowledged request is, in every proposer's final log, at the slot it was acknowledged with.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    for client in &world.clients {
        for req in &client.requests {
            let Some((tick, slot)) = req.acked else { continue };
            let holds = |v: Option<&Value>| matches!(v, Some(Value::Command(c)) if c.client == client.id && c.seq == req.seq && c.data == req.value);
            if !holds(world.chosen.get(&slot)) {
                let detail = format!(
                    "client {:?} seq {} acked at tick {tick} with slot {slot}, which holds {:?}",
                    client.id,
                    req.seq,
                    world.chosen.get(&slot)
                );
                found.push(Violation { invariant: "durability", detail });
            }
            for p in world.proposers.iter().flatten() {
                let log = p.learner().log();
                if (slot.0 as usize) < log.len() && !holds(log.get(slot.0 as usize)) {
                    let detail = format!("proposer {} lost acked slot {slot}", p.id());
                    found.push(Violation { invariant: "durability", detail });
                }
            }
        }
    }
    found
}
