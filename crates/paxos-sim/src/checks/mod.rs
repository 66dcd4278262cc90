//! The guarantees of SPEC.md, checked on a finished world.
//!
//! What clients can see (agreement between logs, validity, exactly once,
//! durability at the acknowledged slot, order) goes through the one checker
//! of the workspace ([`guarantees`], on `paxos-check`); what only a
//! simulator can see has a module of its own: [`agreement`] against the
//! acceptors' durable history and their promises, [`liveness`] after healing,
//! [`deadlines`] of operators' membership changes, the [`epochs`] they
//! are made from, the [`stability`] of leadership once a run settled, and
//! at every tick that no proposer campaigns past a [`prevote`] that should
//! have stopped it.
//! Agreement is also checked after every tick (in the world), since a
//! disagreement may be repaired or hidden by a later crash.

pub mod agreement;
pub mod deadlines;
pub mod epochs;
pub mod guarantees;
pub mod liveness;
pub mod prevote;
pub mod stability;

use crate::world::World;

/// Runs every final check and appends what it finds to the world's violations.
pub fn check_all(world: &mut World) {
    let mut found = Vec::new();
    found.extend(agreement::check(world));
    if world.settled() {
        found.extend(agreement::durability(world));
    }
    found.extend(deadlines::check(world));
    found.extend(epochs::check(world));
    found.extend(guarantees::check_world(world));
    found.extend(guarantees::complaints(world));
    found.extend(liveness::check_settled(world));
    found.extend(world.check_damage_marks());
    world.count_digests();
    world.violations.extend(found);
}
