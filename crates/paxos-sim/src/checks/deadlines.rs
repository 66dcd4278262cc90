//! Operators' deadlines: a membership change that a leader answered as
//! given up (its request had a deadline) is never started after that
//! deadline, by any leader.
//!
//! The operator leaves a member alone once a change to it was given up
//! (`World::operate`), so any later configuration that makes such a change
//! makes the given-up one. A configuration counts from the first tick a
//! leader set out to change to it (`Proposer::changing_to`), at the
//! simulated wall clock of that tick, the clock the leaders compare
//! deadlines with.

use paxos_proto::{Config, MemberOp, MemberRole};

use crate::world::{touches, unix_ms, World};
use crate::Violation;

/// Every configuration started after the deadline of a given-up change that makes that change.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    for (op, deadline_ms) in &world.admin.given_up {
        for (config, tick) in &world.config_starts {
            if unix_ms(*tick) <= *deadline_ms {
                continue;
            }
            let Some(before) = config.epoch.checked_sub(1).and_then(|e| world.configs.get(&e)) else { continue };
            if makes(op, before, config) {
                let detail = format!(
                    "{op:?} was given up at its deadline ({deadline_ms} ms), yet epoch {} that makes it was started at tick {tick} ({} ms)",
                    config.epoch,
                    unix_ms(*tick)
                );
                found.push(Violation { invariant: "member deadline", detail });
            }
        }
    }
    found
}

/// True when going from `before` to `after` does what `op` asks.
fn makes(op: &MemberOp, before: &Config, after: &Config) -> bool {
    let (role, id) = match op {
        MemberOp::List => return false,
        MemberOp::Add { role, id, .. } | MemberOp::Remove { role, id } => (*role, *id),
    };
    debug_assert!(touches(op, role, id));
    let has = |c: &Config| match role {
        MemberRole::Acceptor => c.acceptors.iter().any(|m| m.id == id),
        MemberRole::Proposer => c.proposers.iter().any(|m| m.id == id),
    };
    match op {
        MemberOp::Add { .. } => !has(before) && has(after),
        _ => has(before) && !has(after),
    }
}
