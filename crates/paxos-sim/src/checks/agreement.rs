//! Guarantee 1, agreement, as only the simulator can see it: every value any
//! learner applied was accepted by a majority of acceptors under one ballot
//! (from the acceptors' own durable history, not from any learner), and no
//! acceptor holds an accepted ballot above its promise.
//!
//! The world compares every applied slot with what any learner applied before
//! (after each tick), and [`super::guarantees`] compares the final logs.

use crate::world::World;
use crate::Violation;

/// Checks that a majority backs every chosen value, and the acceptors' own invariant.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    // Every chosen value had a majority of acceptors accept it under one ballot
    // (from the acceptors' own durable history, not from any learner).
    let quorum = world.params.acceptors / 2 + 1;
    for (slot, value) in &world.chosen {
        let backed = world
            .accept_history
            .range((*slot, paxos_proto::Ballot::ZERO)..)
            .take_while(|((s, _), _)| s == slot)
            .any(|(_, (v, votes))| v == value && votes.count_ones() as usize >= quorum);
        if !backed {
            let detail = format!("slot {slot} was applied as {value:?}, which no majority of acceptors accepted");
            found.push(Violation { invariant: "agreement", detail });
        }
    }
    if world.params.defect.is_none() {
        for (i, state) in world.acceptor_states().enumerate() {
            if let Some((slot, (b, _))) = state.accepted.iter().find(|(_, (b, _))| *b > state.promised) {
                let detail = format!(
                    "acceptor {} accepted ballot {b} at slot {slot} above its promise {}",
                    i + 1,
                    state.promised
                );
                found.push(Violation { invariant: "acceptor", detail });
            }
        }
    }
    found
}
