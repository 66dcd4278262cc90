//! Restarting the log later with a peer's state: the clients' sessions.
//!
//! A proposer far behind, whose peers' logs now start beyond its decided
//! prefix (retention deleted what it lacks), cannot rebuild the sessions of
//! the clients whose last request lies in the deleted slots; without them,
//! a retry of such a request that it proposes as leader would land twice.
//! So it copies the state the answering node's log built (proposers and
//! acceptors both apply their decided logs into it), a page at a time, from
//! a copy frozen at the first page ([`crate::restart`]). Once the last page
//! is in, the log restarts at that node's decided prefix with that state,
//! in one atomic batch of the store, and catch-up goes on from there.

use paxos_proto::{Epoch, Message, Node, Slot, StateReply, StateRequest};
use tracing::{info, warn};

use super::{Phase, Proposer, NONCE_SALT};
use crate::restart::{nonce, Copy, Frozen};
use crate::{Ignored, ProposerOp};

/// A copy of a peer's state is abandoned after this many heartbeat intervals without completing.
pub(crate) const COPY_HEARTBEATS: u64 = 20;

impl Proposer {
    /// The node we asked (`by`) says its log starts at `restart`, beyond our
    /// decided prefix: copy the state its log built.
    pub(super) fn restart_later(&mut self, by: Node, restart: Slot, epoch: Option<Epoch>) {
        if self.copying.is_some() {
            return;
        }
        let decided = self.learner.decided();
        self.requests += 1;
        let nonce = nonce(self.cfg.incarnation ^ NONCE_SALT, self.requests);
        info!(node = %Node::Proposer(self.cfg.id), slot = decided.0, restart = restart.0, from = %by, "the decided log restarts later: copying the state there");
        let copy = Copy::new(by, nonce, decided, restart, epoch, self.now);
        self.ready.send(by, Message::StateRequest(copy.request()));
        self.copying = Some(copy);
    }

    /// At a tick: asks again for a page whose answer is late, or gives the copy up.
    pub(super) fn copy_state(&mut self) {
        let Some(c) = &mut self.copying else { return };
        if c.expired(self.now, COPY_HEARTBEATS * self.cfg.heartbeat_ticks) {
            warn!(node = %Node::Proposer(self.cfg.id), from = %c.from, "copying a peer's state takes too long; giving up for now");
            self.copying = None;
        } else if let Some(request) = c.due(self.now, self.cfg.retransmit_ticks) {
            self.ready.send(c.from, Message::StateRequest(request));
        }
    }

    /// True while a copy is under way: catch-up waits for it.
    pub(super) fn copying(&self) -> bool {
        self.copying.is_some()
    }

    /// A peer copies our state: a page of it, frozen at its first request.
    pub(super) fn on_state_request(&mut self, from: Node, m: StateRequest) -> Result<(), Ignored> {
        let reply = Frozen::serve(&mut self.frozen, from, &m, self.learner.state(), self.now)?;
        self.ready.send(from, Message::StateReply(reply));
        Ok(())
    }

    /// A page of the state we copy: the next, or the last, which restarts the log.
    pub(super) fn on_state_reply(&mut self, from: Node, m: StateReply) -> Result<(), Ignored> {
        let Some(c) = &mut self.copying else {
            return Err(Ignored("proposer: a state page of no copy we asked for"));
        };
        match c.page(from, m, self.now) {
            Err(e) => return Err(e),
            Ok(false) => {
                self.ready.send(from, Message::StateRequest(c.request()));
                return Ok(());
            }
            Ok(true) => {}
        }
        let decided = self.learner.decided();
        let copy = self.copying.take().expect("matched above");
        let node = Node::Proposer(self.cfg.id);
        let Some((at, epoch, state)) = copy.finish(decided, self.defects.stateless_restart).logged(node, decided)
        else {
            return Ok(());
        };
        if !matches!(self.phase, Phase::Follower) {
            // Our phase rests on slots the restart skips: the next campaign starts from the restarted log.
            info!(node = %node, ballot = %self.ballot, "the decided log restarts under our leadership; stepping down");
            self.step_down();
        }
        self.learner.skip_to(at, epoch.as_ref(), state.as_ref().map(|c| (c.clock, c.sessions.as_slice())));
        self.ready.persist.push(ProposerOp::Retain(at));
        if let Some(e) = epoch {
            self.ready.persist.push(ProposerOp::Epoch(e));
        }
        if let Some(c) = &state {
            for (first, sessions) in c.chunks() {
                self.ready.persist.push(ProposerOp::Sessions { clock: c.clock, first, sessions });
            }
        }
        self.catch_up_after = self.now;
        Ok(())
    }
}
