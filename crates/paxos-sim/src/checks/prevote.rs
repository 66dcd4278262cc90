//! Pre-vote: no proposer campaigns against a leader that the acceptors
//! vouch for.
//!
//! An acceptor names, in its probe answers, the proposer it accepted from
//! while that proposer's lease lasts (`Acceptor::lease_holder`), and a
//! follower campaigns only once a quorum of fresh answers names no other
//! leader (`Proposer::prevoted`). So while too many acceptors of a
//! proposer's configuration hold another proposer's lease for a quorum of
//! the rest to answer freely, that proposer must not start a campaign: a
//! campaign there is one whose ballot would fence a live leader, as a
//! proposer cut off until a heal did before the pre-vote.
//!
//! "Too many" is counted as the campaigner would: more than its
//! configuration's acceptor count minus its quorum. "Hold" means held
//! without a break for [`window_ticks`]: an answer counts as fresh for two
//! of the campaigner's probe rounds (two heartbeats of its own clock,
//! which may skip ticks), so any answer it could count was given while the
//! lease held. A transfer (`TimeoutNow`) campaigns on purpose and is not
//! held to it, nor is a leader's campaign into a new configuration (its
//! own leases may lag: found by review, seeds 300314737 and 301812229), nor
//! is a run with an insider, which may sign any answer.

use paxos_core::{Leadership, ProposerConfig};
use paxos_proto::{Ballot, NodeId};

use crate::adversary::Adversary;
use crate::world::World;
use crate::Violation;

/// How long a lease must have held, without a break, for a campaign against
/// it to count as one the pre-vote should have stopped: four heartbeats,
/// twice the two probe rounds an answer stays fresh for, so that clocks that
/// skip up to half their ticks are covered.
pub fn window_ticks() -> u64 {
    4 * ProposerConfig::new(NodeId(0), Vec::new(), Vec::new()).heartbeat_ticks
}

/// Watches every tick of a run for campaigns the acceptors' leases forbid.
pub struct Vouch {
    /// Per acceptor (by index): the proposer and ballot of the lease it holds, and since when.
    leases: Vec<Option<(NodeId, Ballot, u64)>>,
    /// Per proposer (by index): its role and ballot at the last tick.
    last: Vec<Option<(Leadership, Ballot)>>,
}

impl Vouch {
    /// A watch of `world` from its start; `None` in runs with an insider.
    pub fn new(world: &World) -> Option<Vouch> {
        if world.params.adversary == Some(Adversary::Insider) {
            return None;
        }
        Some(Vouch { leases: vec![None; world.acceptors.len()], last: vec![None; world.proposers.len()] })
    }

    /// Called after every tick.
    pub fn observe(&mut self, world: &mut World) {
        for (held, a) in self.leases.iter_mut().zip(&world.acceptors) {
            let now = a.as_ref().and_then(|a| a.lease_holder().map(|l| (l, a.state().promised)));
            *held = match (*held, now) {
                (Some((l, b, since)), Some(n)) if (l, b) == n => Some((l, b, since)),
                (_, Some((l, b))) => Some((l, b, world.now)),
                (_, None) => None,
            };
        }
        let mut found = Vec::new();
        for (last, p) in self.last.iter_mut().zip(&world.proposers) {
            let now = p.as_ref().map(|p| (p.role(), p.ballot()));
            let was = std::mem::replace(last, now);
            let (Some(p), Some((Leadership::Candidate, ballot))) = (p, now) else { continue };
            // Campaigning since before, a transfer, or a leader moving into a
            // new configuration: none of these is held to a pre-vote.
            if was == now || world.handed_over_at == world.now || was.is_some_and(|(r, _)| r == Leadership::Leader) {
                continue;
            }
            let config = &p.learner().epoch().config;
            let vouching: Vec<(u32, NodeId)> = config
                .acceptors
                .iter()
                .filter_map(|m| {
                    let i = world.acceptors.iter().position(|a| a.as_ref().is_some_and(|a| a.id() == m.id))?;
                    let (l, _, since) = self.leases[i]?;
                    (l != p.id() && world.now >= since + window_ticks()).then_some((m.id.0, l))
                })
                .collect();
            let free = config.acceptors.len() - vouching.len();
            if free < p.quorum() {
                found.push(Violation {
                    invariant: "pre-vote",
                    detail: format!(
                        "proposer {} campaigned with ballot {ballot} at tick {} while acceptors {vouching:?} (acceptor, leader) held leases for {} ticks and more: at most {free} of {} could answer freely, short of its quorum of {}",
                        p.id(),
                        world.now,
                        window_ticks(),
                        config.acceptors.len(),
                        p.quorum()
                    ),
                });
            }
        }
        world.violations.extend(found);
    }
}
