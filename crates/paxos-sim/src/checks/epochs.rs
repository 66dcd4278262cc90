//! Operators' changes are made from the configuration they were asked from.
//!
//! The operator lists the members and asks for a change from that epoch; a
//! leader makes it only from there (`MemberRequest::epoch`). So every
//! decided configuration that adds or removes a member makes a change the
//! operator asked from the epoch just before it: a late copy of an old
//! request (the network duplicates and delays) never makes its change again
//! after a later one undid it.
//!
//! And each operator's command (one `paxosctl member` run, which may ask
//! again from a newer configuration) makes its change at most once: asking
//! again after its change was made and undone by another operator (its
//! answer lost) would make it twice.

use paxos_proto::{Config, Member};

use crate::checks::deadlines::makes;
use crate::world::World;
use crate::Violation;

/// Every decided configuration whose change no request asked from the epoch before it, and every
/// command that made its change twice.
pub fn check(world: &World) -> Vec<Violation> {
    let mut found = Vec::new();
    let ids = |ms: &[Member]| ms.iter().map(|m| m.id).collect::<Vec<_>>();
    let members = |c: &Config| (ids(&c.acceptors), ids(&c.proposers));
    for (epoch, before) in &world.configs {
        let Some(after) = world.configs.get(&(epoch + 1)) else { continue };
        if members(before) == members(after) {
            continue; // incarnations pinned: not an operator's change
        }
        let asked_here =
            world.admins.iter().flat_map(|a| &a.asked).any(|(_, op, e)| e == epoch && makes(op, before, after));
        if !asked_here {
            let asked: Vec<_> =
                world.admins.iter().flat_map(|a| &a.asked).filter(|(_, op, _)| makes(op, before, after)).collect();
            let detail = format!(
                "epoch {} changes the members of epoch {epoch}, but no request asked for that change from epoch \
                 {epoch}; the requests that make it were asked from: {asked:?}",
                epoch + 1
            );
            found.push(Violation { invariant: "member epoch", detail });
        }
    }
    for admin in &world.admins {
        let mut made: std::collections::BTreeMap<u64, Vec<u32>> = std::collections::BTreeMap::new();
        for (command, op, epoch) in &admin.asked {
            let (Some(before), Some(after)) = (world.configs.get(epoch), world.configs.get(&(epoch + 1))) else {
                continue;
            };
            if makes(op, before, after) {
                made.entry(*command).or_default().push(*epoch);
            }
        }
        for (command, epochs) in made.into_iter().filter(|(_, e)| e.len() > 1) {
            let detail = format!(
                "operator {}'s command {command} made its change {} times, from epochs {epochs:?}",
                admin.client,
                epochs.len()
            );
            found.push(Violation { invariant: "member change once", detail });
        }
    }
    found
}
