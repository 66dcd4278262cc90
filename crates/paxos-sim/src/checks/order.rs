//! Guarantee 5, order: a value acknowledged before another was proposed has the lower slot.

use crate::checks::first_slots;
use crate::world::World;
use crate::Violation;

/// For every request, each request acknowledged before it was first sent counts at a lower slot.
pub fn check(world: &World) -> Vec<Violation> {
    let first = first_slots(&world.chosen);
    // (ack tick, slot) of every acknowledged request, by ack tick.
    let mut acks: Vec<(u64, u64)> =
        world.clients.iter().flat_map(|c| c.requests.iter().filter_map(|r| r.acked.map(|(t, s)| (t, s.0)))).collect();
    acks.sort_unstable();
    // prefix_max[i] = highest slot among the first i acknowledgements.
    let mut prefix_max = vec![None; acks.len() + 1];
    for (i, (_, s)) in acks.iter().enumerate() {
        prefix_max[i + 1] = Some(prefix_max[i].map_or(*s, |m: u64| m.max(*s)));
    }
    let mut found = Vec::new();
    for client in &world.clients {
        for req in &client.requests {
            let (Some(started), Some(slot)) = (req.started, first.get(&(client.id, req.seq))) else { continue };
            let before = acks.partition_point(|(t, _)| *t < started);
            if let Some(max) = prefix_max[before] {
                if max >= slot.0 {
                    let detail = format!(
                        "client {:?} seq {} sent at tick {started} counts at slot {slot}, but slot {max} was acked before",
                        client.id, req.seq
                    );
                    found.push(Violation { invariant: "order", detail });
                }
            }
        }
    }
    found
}
