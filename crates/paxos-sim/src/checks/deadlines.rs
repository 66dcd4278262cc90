//! Operators' deadlines: what a leader's "given up at its deadline" means.
//!
//! 1. No leader starts a change after its request's deadline: no
//!    configuration that makes a given-up change is first set out for
//!    (`Proposer::changing_to`) after the deadline, by the wall clock of
//!    the leader that did, the clock it compares deadlines with (the
//!    nodes' clocks are up to `Params::clock_spread_ms` apart).
//! 2. Once a leader said it gave a change up, a configuration that makes
//!    it is decided (after the request was made) only if it was first
//!    proposed in its slot by a leader of a higher ballot than that one
//!    (before the deadline, by 1): a stop sign of a leader of a lower
//!    ballot is never chosen, before the answer (the leader would have
//!    learned it and answered that the change was made) or after, as long
//!    as the clocks are at most `paxos_proto::MAX_CLOCK_SKEW_MS` apart.
//!
//! The operator leaves a member alone once a change to it was given up
//! (`World::operate`), so any later configuration that makes such a change
//! makes the given-up one.

use paxos_proto::{Config, MemberOp};

use crate::world::World;
use crate::Violation;

/// Every configuration that makes a given-up change and was started after its deadline, or decided
/// after the answer without a leader of a higher ballot behind it.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    let given_up = world.admins.iter().flat_map(|a| a.given_up.iter().map(move |g| (a.client, g)));
    for (client, (op, deadline_ms, req, asked)) in given_up {
        let makes_it = |config: &Config| {
            let before = config.epoch.checked_sub(1).and_then(|e| world.configs.get(&e));
            before.is_some_and(|before| makes(op, before, config))
        };
        for (config, tick, clock_ms) in world.config_starts.iter().filter(|(c, _, _)| makes_it(c)) {
            if clock_ms > deadline_ms {
                let detail = format!(
                    "{op:?} was given up at its deadline ({deadline_ms} ms), yet epoch {} that makes it was started at tick {tick} ({clock_ms} ms by its leader's clock)",
                    config.epoch,
                );
                found.push(Violation { invariant: "member deadline", detail });
            }
        }
        let Some((answered, giver)) = world.give_ups.get(&(client, *req)) else { continue };
        for config in world.configs.values().filter(|c| makes_it(c)) {
            let Some((decided, slot)) = world.config_decided_at.get(&config.epoch).copied() else { continue };
            let first =
                world.config_first_ballots.iter().find(|(s, c, _)| *s == slot && c == config).map(|(_, _, b)| *b);
            if decided >= *asked && first.is_none_or(|b| b <= *giver) {
                let detail = format!(
                    "{op:?} was given up at tick {answered} by the leader of ballot {giver}, yet epoch {} that makes it, first proposed at ballot {}, was decided at tick {decided}",
                    config.epoch,
                    first.map_or_else(|| "?".to_owned(), |b| b.to_string())
                );
                found.push(Violation { invariant: "member deadline", detail });
            }
        }
    }
    found
}

/// True when going from `before` to `after` does what `op` asks.
pub(crate) fn makes(op: &MemberOp, before: &Config, after: &Config) -> bool {
    let Some((role, id)) = op.target() else { return false };
    let has = |c: &Config| c.members(role).iter().any(|m| m.id == id);
    match op {
        MemberOp::Add { .. } => !has(before) && has(after),
        _ => has(before) && !has(after),
    }
}
