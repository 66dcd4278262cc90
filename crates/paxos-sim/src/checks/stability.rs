//! Stability: once the cluster has settled with no fault left and no
//! operator at work, leadership stays where it is.
//!
//! README's promise is that a live leader is not preempted by a proposer
//! that hears it (leadership moves on purpose, with a transfer), and that
//! a leader steps down only when it no longer hears a quorum or learns of a
//! higher ballot. In the quiet ticks after a run settles
//! (every member up, the network whole, no operator command), nothing
//! should move it: no other proposer campaigns or leads, and the leader
//! keeps its ballot, unless the log decided a new configuration meanwhile
//! (a rebuilt acceptor let in), which a leader enters with a new phase 1.
//!
//! The watch begins an election timeout after the heal, once one proposer
//! leads, every other member follows it (its heartbeat or accept arrived
//! within an election timeout), and neither a proposer nor an acceptor
//! holds a ballot above the leader's. A campaign that began during the
//! faults, while a quorum of the acceptors had lost the leader, is a real
//! election, and its ballot fences the leader once the partition heals; a
//! proposer that was merely cut off from the leader does not campaign while
//! the acceptors still name it (the pre-vote, held at every tick by
//! [`super::prevote`]). A transfer the operator asked for during the faults may also
//! still be under way (its `TimeoutNow` late, or the proposer it names
//! still campaigning), so the watch begins again after each `TimeoutNow`
//! delivered, and after a proposer finds damage in its decided log (damage
//! done under it during the faults may be found by a pass after the heal:
//! it then hands leadership over, or steps down as candidate, on purpose). Runs with an insider are not held to it: it holds the peer
//! key and may fence the leader at will. A forger cannot: every message of
//! a member or an operator needs the peer key's MAC, and it attacks only
//! during the faults.
//!
//! A leader that enters a new configuration must lead again in it within
//! an election timeout, or the watch flags the cluster as leaderless.

use paxos_core::{Leadership, ProposerConfig};
use paxos_proto::{Ballot, NodeId};

use crate::adversary::Adversary;
use crate::world::World;
use crate::Violation;

/// How long after the heal leadership may still move for what the faults
/// left behind: an election timeout. A leader cut off from the acceptors
/// until the heal steps down if it does not hear a quorum within it (check
/// quorum), and peers unheard during the faults count as dead until heard.
pub fn settling_ticks() -> u64 {
    ProposerConfig::new(NodeId(0), Vec::new(), Vec::new()).election_timeout_ticks
}

/// How long the watch lasts: longer than a datagram may be delayed in the
/// network (`World`'s long delays reach 300 ticks), so that late heartbeats
/// and answers sent during the faults arrive within it.
pub fn watched_ticks(liveness_ticks: u64) -> u64 {
    2 * liveness_ticks
}

/// Watches the quiet ticks of a settled run.
pub struct Watch {
    held: Option<Held>,
}

/// The leader the watch holds the cluster to, since tick `since`.
struct Held {
    /// The leader's index in the world, and its id.
    leader: usize,
    id: NodeId,
    ballot: Ballot,
    epoch: u32,
    since: u64,
    /// When the leader entered a new configuration it does not lead yet:
    /// it must lead again within an election timeout.
    changed_at: Option<u64>,
}

impl Watch {
    /// A watch of a settled world; `None` when the run is not held to
    /// stability: an insider, or too many acceptors failed for good for the
    /// cluster to be live.
    pub fn new(world: &World) -> Option<Watch> {
        let lost = world.params.failed_acceptors.len() * 2 >= world.params.acceptors;
        if lost || world.params.adversary == Some(Adversary::Insider) {
            return None;
        }
        Some(Watch { held: Held::start(world) })
    }

    /// Called after every quiet tick: flags a member proposer other than
    /// the leader that campaigns or leads, and a leader that changed its ballot
    /// within one configuration or stopped leading.
    pub fn observe(&mut self, world: &mut World) {
        if self.held.as_ref().is_some_and(|h| world.handed_over_at.max(world.damage_found_tick) >= h.since) {
            self.held = None; // leadership moves on purpose
        }
        match &mut self.held {
            None => self.held = Held::start(world),
            Some(held) => {
                if let Some(detail) = held.check(world) {
                    world.violations.push(Violation { invariant: "stability", detail });
                }
            }
        }
    }
}

impl Held {
    /// The leader of `world`, when one member proposer leads, the others
    /// follow it, the faults are an election timeout past, and no
    /// `TimeoutNow` arrived this tick.
    fn start(world: &World) -> Option<Held> {
        let moved = world.handed_over_at.max(world.damage_found_tick);
        if moved >= world.now || world.now < world.healed_at + settling_ticks() {
            return None;
        }
        let members = world.member_proposers();
        let up: Vec<&paxos_core::Proposer> =
            members.iter().map(|i| world.proposers[*i].as_ref()).collect::<Option<_>>()?;
        let mut leaders = members.iter().zip(&up).filter(|(_, p)| p.role() == Leadership::Leader);
        let (Some((&leader, p)), None) = (leaders.next(), leaders.next()) else { return None };
        let id = p.id();
        // A follower with a higher ballot campaigned since, or an acceptor
        // promised one (a proposer that took over and then restarted says
        // a ballot of epoch 0): it fences the leader once the leader hears it.
        if up.iter().any(|q| q.leading() != Some(id) || q.ballot() > p.ballot())
            || world.acceptor_states().any(|a| a.promised > p.ballot())
        {
            return None;
        }
        let epoch = p.learner().epoch_number();
        Some(Held { leader, id, ballot: p.ballot(), epoch, since: world.now, changed_at: None })
    }

    /// What moved since the watch began, if anything did.
    fn check(&mut self, world: &World) -> Option<String> {
        // Only members: a proposer removed from the configuration may not
        // know it yet, and campaign in an epoch that is over (the acceptors
        // refuse it).
        let members = world.member_proposers();
        let up = |i: &usize| world.proposers[*i].as_ref();
        if let Some(p) =
            members.iter().filter(|i| **i != self.leader).filter_map(up).find(|p| p.role() != Leadership::Follower)
        {
            return Some(format!(
                "proposer {} is {:?} with ballot {} at tick {}, while proposer {} led, quiet since tick {}",
                p.id(),
                p.role(),
                p.ballot(),
                world.now,
                self.id,
                self.since
            ));
        }
        let p = members.iter().find(|i| **i == self.leader).and_then(up)?;
        let epoch = p.learner().epoch_number();
        if epoch != self.epoch {
            // A new configuration: a new phase 1, so a new ballot, by the same leader.
            let changed_at = *self.changed_at.get_or_insert(world.now);
            if p.role() == Leadership::Leader {
                (self.epoch, self.ballot, self.changed_at) = (epoch, p.ballot(), None);
            } else if world.now > changed_at + settling_ticks() {
                return Some(format!(
                    "leader {} is {:?} at tick {}, an election timeout after it entered epoch {epoch} at tick {changed_at}, and nobody else leads; quiet since tick {}",
                    p.id(),
                    p.role(),
                    world.now,
                    self.since
                ));
            }
        } else if p.ballot() != self.ballot || p.role() != Leadership::Leader {
            return Some(format!(
                "leader {} is {:?} with ballot {} at tick {} (it led with {}), quiet since tick {}",
                p.id(),
                p.role(),
                p.ballot(),
                world.now,
                self.ballot,
                self.since
            ));
        }
        None
    }
}
