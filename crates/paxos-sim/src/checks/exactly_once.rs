//! Guarantee 4, exactly once: a retried request lands at most once, and exactly once if acknowledged.
//!
//! A retry may be chosen in two slots after a leader change; only the first
//! counts (every learner applies the log in order and skips the second). So:
//! the slot a client was told is the request's first slot, and a client is
//! never told two different slots for one request.

use crate::checks::first_slots;
use crate::world::World;
use crate::Violation;

/// Checks acknowledgements against first occurrences, and what clients were told.
pub fn check(world: &World) -> Vec<Violation> {
    let first = first_slots(&world.chosen);
    let mut found = Vec::new();
    for client in &world.clients {
        for c in &client.complaints {
            found.push(Violation { invariant: "exactly-once", detail: c.clone() });
        }
        for req in &client.requests {
            if let Some((_, slot)) = req.acked {
                match first.get(&(client.id, req.seq)) {
                    Some(s) if *s == slot => {}
                    other => found.push(Violation {
                        invariant: "exactly-once",
                        detail: format!(
                            "client {:?} seq {} acked with slot {slot}, but it first landed at {other:?}",
                            client.id, req.seq
                        ),
                    }),
                }
            }
        }
    }
    // Each client's requests count in the order it sent them (one in flight at a time).
    for ((client, seq), slot) in &first {
        if let Some(next) = first.get(&(*client, seq + 1)) {
            if next < slot {
                let detail = format!("client {client:?} seq {} counts at {next}, before seq {seq} at {slot}", seq + 1);
                found.push(Violation { invariant: "exactly-once", detail });
            }
        }
    }
    found
}
