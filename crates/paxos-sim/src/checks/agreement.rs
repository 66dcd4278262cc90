//! Guarantee 1, agreement: no two learners ever hold different values at one slot.
//!
//! The world compares every applied slot with what any learner applied before
//! (after each tick); here the final logs and the acceptors' states are checked too.

use paxos_proto::Slot;

use crate::world::World;
use crate::Violation;

/// Checks every proposer's final log against everything ever chosen, and the acceptors' own invariant.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    for p in world.proposers.iter().flatten() {
        for (s, value) in p.learner().log().iter().enumerate() {
            if let Some(v) = world.chosen.get(&Slot(s as u64)) {
                if v != value {
                    let detail = format!("proposer {} holds {value:?} at slot {s}, another learner {v:?}", p.id());
                    found.push(Violation { invariant: "agreement", detail });
                }
            }
        }
    }
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
