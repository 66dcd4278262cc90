//! Guarantee 1, agreement, as only the simulator can see it: every value any
//! learner applied was accepted by a quorum of its epoch's acceptors under
//! one ballot of that epoch (from the acceptors' own durable history, not
//! from any learner), and no acceptor holds an accepted ballot above its promise.
//!
//! The world compares every applied slot with what any learner (proposer or
//! acceptor) applied before, as it is applied, and [`super::guarantees`]
//! compares the final logs.

use crate::world::World;
use crate::Violation;

/// Checks that a quorum backs every chosen value, and the acceptors' own invariant.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    for (slot, value) in &world.chosen {
        let backed =
            world.accept_history.range((*slot, paxos_proto::Ballot::ZERO)..).take_while(|((s, _), _)| s == slot).any(
                |((_, ballot), (v, votes))| {
                    let Some(config) = world.configs.get(&ballot.epoch) else { return false };
                    let members = votes.iter().filter(|a| config.acceptors.iter().any(|m| m.id == **a)).count();
                    v == value && members >= paxos_core::quorum(ballot.epoch, config.acceptors.len())
                },
            );
        if !backed {
            let detail =
                format!("slot {slot} was applied as {value:?}, which no quorum of its epoch's acceptors accepted");
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

/// Durability through the acceptors: every acknowledged slot is held (in a
/// decided log, or accepted with its value) by a majority of the latest
/// configuration's acceptors that kept their disks, or by every member
/// proposer's durable log; unless retention may have deleted it.
pub fn durability(world: &World) -> Vec<Violation> {
    let voting = world.voting_acceptors();
    let majority = paxos_core::majority(world.config().acceptors.len());
    let proposers = world.member_proposers();
    // Retention may delete what lies below the newest `retain_slots` slots.
    let end = world.chosen.keys().next_back().map_or(0, |s| s.0 + 1);
    let kept_from = if world.params.retain_slots > 0 { end.saturating_sub(world.params.retain_slots) } else { 0 };
    let mut found = Vec::new();
    for c in &world.clients {
        for r in &c.requests {
            let Some((_, slot)) = r.acked else { continue };
            if slot.0 < kept_from {
                continue;
            }
            let Some(value) = world.chosen.get(&slot) else { continue };
            // An acceptor whose log restarted beyond the slot (retention: it
            // copied a peer's state there) deleted it by retention.
            let restarted = |a: usize| world.params.retain_slots > 0 && world.acceptor_disks[a].log.start > slot;
            let acceptors = voting.iter().filter(|a| world.acceptor_holds(**a, slot, value) || restarted(**a)).count();
            let all_proposers =
                !proposers.is_empty() && proposers.iter().all(|p| world.proposer_holds(*p, slot, value));
            if acceptors < majority && !all_proposers {
                let detail = format!(
                    "client {} seq {} acknowledged at slot {slot} is held by {acceptors} acceptors \
                     (a majority is {majority}) and not by every proposer",
                    c.id.0, r.seq
                );
                found.push(Violation { invariant: "durability", detail });
                return found;
            }
        }
    }
    found
}
