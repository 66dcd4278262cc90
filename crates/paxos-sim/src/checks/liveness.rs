//! Guarantee 6, liveness: once faults stop, every request is decided within the bound.
//!
//! SPEC.md allows 2 s after the network heals; at 10 ms a tick that is
//! `liveness_ticks = 200`. A request in flight when the network heals must be
//! acknowledged within the bound of the heal; a request sent later, within the
//! bound of its first send. Then every proposer must hold the same log.

use crate::world::World;
use crate::Violation;

/// Called after every tick: flags a request that outlived its deadline.
pub fn check_progress(world: &mut World) {
    if world.faulty() || world.params.failed_acceptors.len() * 2 >= world.params.acceptors {
        return;
    }
    let bound = world.params.liveness_ticks;
    for client in &world.clients {
        let Some(req) = client.pending() else { continue };
        let Some(started) = req.started else { continue };
        let deadline = started.max(world.healed_at) + bound;
        if world.now > deadline {
            let detail = format!(
                "client {:?} seq {} sent at tick {started} not decided by tick {deadline} (healed at {})",
                client.id, req.seq, world.healed_at
            );
            world.violations.push(crate::Violation { invariant: "liveness", detail });
            return;
        }
    }
}

/// At the end: every client was answered and the proposers converged.
pub fn check_settled(world: &World) -> Vec<Violation> {
    if world.settled() || !world.violations.is_empty() {
        return Vec::new();
    }
    let decided: Vec<_> = world
        .proposers
        .iter()
        .map(|p| p.as_ref().map(|p| (p.learner().decided(), p.role(), p.learner().epoch_number())))
        .collect();
    let waiting = world.clients.iter().filter(|c| !c.done()).count();
    let detail = format!(
        "not settled by tick {}: {waiting} clients still waiting; proposers (decided, role, epoch): {decided:?}; operator busy: {}",
        world.now,
        world.admins.iter().any(|a| a.busy())
    );
    vec![Violation { invariant: "liveness", detail }]
}
