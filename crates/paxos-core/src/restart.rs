//! Restarting a log later: catch-up across slots that retention deleted.
//!
//! A node whose decided prefix lies below where a peer's log now starts
//! cannot copy the slots between. The peer's catch-up answer says where its
//! log starts, and which configuration epoch is in force there
//! ([`catch_up_reply`]); the node then copies the state the peer's log
//! built (configuration, clock, clients' sessions), a page at a time from a
//! copy the peer freezes at the first page ([`Copy`], [`Frozen`]), and its
//! log restarts at the peer's decided prefix with that state ([`Restart`]).
//!
//! Only the answer to the node's own last request may start this: each
//! request (and each copy) carries a nonce drawn from a secret seed
//! ([`nonce`]), and the answers must echo it. A key holder that does not see
//! our requests (every member's datagrams are signed, not hidden) cannot
//! guess it, so its claim that the log restarts at some extreme slot moves
//! nothing, however far: the slot step that bounds every other claim
//! ([`crate::MAX_SLOT_STEP`]) cannot bound this one, as a node that was away
//! long may rightly restart millions of slots ahead.

use paxos_proto::{CatchUpReply, Epoch, Node, SessionEntry, Slot, StateReply, StateRequest, Value};

use tracing::warn;

use crate::{Ignored, LogState, Tick, MAX_BATCH_BYTES};

/// The `n`th nonce of a node whose secret seed is `seed`: never 0 (0 means none).
pub(crate) fn nonce(seed: u64, n: u64) -> u64 {
    // splitmix64's finalizer over the seed and the counter.
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

/// A catch-up answer (to the request with `nonce`) of `entries` from `from`. When it starts where the
/// sender's log starts, beyond slot 0 (retention deleted the slots below),
/// it carries the configuration epoch in force there if that epoch started
/// at or before it (the one who restarts its log there cannot read that
/// configuration from the log), and holds fewer entries to make room.
pub(crate) fn catch_up_reply(
    nonce: u64,
    from: Slot,
    mut entries: Vec<Value>,
    decided: Slot,
    log_start: Slot,
    epoch: Option<&Epoch>,
) -> CatchUpReply {
    let epoch = epoch.filter(|e| from == log_start && from.0 > 0 && e.start <= from).cloned();
    if let Some(e) = &epoch {
        let room = MAX_BATCH_BYTES.saturating_sub(e.config.wire_len());
        let mut bytes = 0;
        let keep = entries
            .iter()
            .take_while(|v| {
                bytes += v.wire_len();
                bytes <= room
            })
            .count();
        entries.truncate(keep);
    }
    CatchUpReply { from, entries, decided, epoch, nonce }
}

/// Bytes a session takes in a JSON datagram, at most (ids and numbers below 2^53).
const SESSION_WIRE_BYTES: usize = 110;

/// Sessions in one chunk of the store's batch.
pub(crate) const SESSIONS_PER_OP: usize = 4096;

/// A copy of a peer's state under way, to restart the log later.
#[derive(Debug)]
pub(crate) struct Copy {
    /// Whom we copy from.
    pub from: Node,
    /// The copy's nonce, echoed by every page.
    nonce: u64,
    /// Our decided prefix when the copy started.
    decided: Slot,
    /// Where the log of the node we asked starts, and the epoch in force there.
    restart: Slot,
    restart_epoch: Option<Epoch>,
    /// From the first page: where the peer's state is, and the configuration and clock there.
    at: Option<(Slot, Option<Epoch>, u64)>,
    sessions: Vec<SessionEntry>,
    asked: Tick,
    started: Tick,
}

/// A copy completed: restart the log at `at` with this state.
#[derive(Debug)]
pub(crate) struct Copied {
    pub at: Slot,
    pub epoch: Option<Epoch>,
    pub clock: u64,
    pub sessions: Vec<SessionEntry>,
}

impl Copy {
    /// A copy from `from`, whose log starts at `restart` (with `restart_epoch` in force there).
    pub fn new(from: Node, nonce: u64, decided: Slot, restart: Slot, restart_epoch: Option<Epoch>, now: Tick) -> Self {
        Copy { from, nonce, decided, restart, restart_epoch, at: None, sessions: Vec::new(), asked: now, started: now }
    }

    /// The request for the next page.
    pub fn request(&self) -> StateRequest {
        StateRequest { nonce: self.nonce, after: self.sessions.last().map(|s| s.client) }
    }

    /// The request again, if its answer is late by `retransmit` ticks.
    pub fn due(&mut self, now: Tick, retransmit: u64) -> Option<StateRequest> {
        (now.since(self.asked) >= retransmit).then(|| {
            self.asked = now;
            self.request()
        })
    }

    /// True once the copy has taken longer than `limit` ticks: given up.
    pub fn expired(&self, now: Tick, limit: u64) -> bool {
        now.since(self.started) > limit
    }

    /// A page from `from`: `Ok(false)` when more are to be asked for
    /// ([`Copy::request`]), `Ok(true)` when the copy is complete
    /// ([`Copy::finish`]).
    ///
    /// # Errors
    /// [`Ignored`] for a page of no copy of ours, or of another frozen state than the first page's.
    pub fn page(&mut self, from: Node, m: StateReply, now: Tick) -> Result<bool, Ignored> {
        if from != self.from || m.nonce != self.nonce {
            return Err(Ignored("a state page of no copy we asked for"));
        }
        let after = self.sessions.last().map(|s| s.client);
        if m.sessions.first().is_some_and(|s| after.is_some_and(|a| s.client <= a)) {
            return Ok(false); // a page we already have
        }
        match &self.at {
            None => self.at = Some((m.at, m.epoch, m.clock)),
            Some((at, _, _)) if *at != m.at => return Err(Ignored("a state page of another frozen state")),
            Some(_) => {}
        }
        self.sessions.extend(m.sessions);
        self.asked = now;
        Ok(!m.more)
    }

    /// Where a complete copy restarts the log, now that the decided prefix
    /// is `decided` (`drop_sessions`: the defect that forgets them).
    pub fn finish(self, decided: Slot, drop_sessions: bool) -> Restart {
        let (at, epoch, clock) = self.at.expect("a complete copy has a first page");
        if decided != self.decided {
            Restart::Stale
        } else if at < self.restart {
            Restart::Bare { at: self.restart, epoch: self.restart_epoch }
        } else {
            let sessions = if drop_sessions { Vec::new() } else { self.sessions };
            Restart::Full(Copied { at, epoch, clock, sessions })
        }
    }
}

/// What a complete copy leads to.
#[derive(Debug)]
pub(crate) enum Restart {
    /// We learned meanwhile: catch-up goes on as usual.
    Stale,
    /// The node asked holds no state where its own log starts (a store of the
    /// release before this one): the log restarts there without the sessions
    /// of the deleted slots.
    Bare { at: Slot, epoch: Option<Epoch> },
    /// The log restarts at the copy's slot with its state.
    Full(Copied),
}

impl Restart {
    /// Where the log restarts, the configuration in force there, and the
    /// state copied (none for a bare restart); nothing when the copy is stale.
    fn parts(self) -> Option<(Slot, Option<Epoch>, Option<Copied>)> {
        match self {
            Restart::Stale => None,
            Restart::Bare { at, epoch } => Some((at, epoch, None)),
            Restart::Full(copied) => Some((copied.at, copied.epoch.clone(), Some(copied))),
        }
    }

    /// [`Restart::parts`], with the restart logged for `node`, whose log was
    /// decided up to `decided`: both roles end a copy this way.
    pub fn logged(self, node: Node, decided: Slot) -> Option<(Slot, Option<Epoch>, Option<Copied>)> {
        let (at, epoch, state) = self.parts()?;
        match &state {
            None => {
                warn!(node = %node, slot = decided.0, restart = at.0, "the decided log restarts later, and the node asked holds no state there: the sessions of the deleted slots are lost (a retry of a request applied there may land again)")
            }
            Some(c) => {
                warn!(node = %node, slot = decided.0, restart = at.0, sessions = c.sessions.len(), "the decided log restarts later with the state there: the slots between were deleted by retention")
            }
        }
        Some((at, epoch, state))
    }
}

impl Copied {
    /// The store's chunks of the sessions, the first one replacing every session known.
    pub fn chunks(&self) -> impl Iterator<Item = (bool, Vec<SessionEntry>)> + '_ {
        // The first chunk even when there are no sessions: it is what clears the ones known.
        let (first, rest) = self.sessions.split_at(self.sessions.len().min(SESSIONS_PER_OP));
        std::iter::once((true, first.to_vec())).chain(rest.chunks(SESSIONS_PER_OP).map(|c| (false, c.to_vec())))
    }
}

/// A node's log state, frozen for a peer that copies it.
#[derive(Debug)]
pub(crate) struct Frozen {
    to: Node,
    nonce: u64,
    at: Slot,
    epoch: Option<Epoch>,
    clock: u64,
    /// Live sessions, in the order of client ids.
    sessions: Vec<SessionEntry>,
    heard: Tick,
}

/// Copies of a node's state frozen at once, at most: a new copy replaces the one asked least recently.
pub(crate) const MAX_FROZEN: usize = 4;

impl Frozen {
    /// A page for `to`'s request `m`, from the copy frozen for it, or from
    /// `log` frozen now if this is the first page of a copy.
    ///
    /// # Errors
    /// [`Ignored`] for a later page of no copy under way.
    pub fn serve(
        frozen: &mut Vec<Frozen>,
        to: Node,
        m: &StateRequest,
        log: &LogState,
        now: Tick,
    ) -> Result<StateReply, Ignored> {
        let found = frozen.iter().position(|f| f.to == to && f.nonce == m.nonce);
        let i = if let Some(i) = found {
            i
        } else {
            if m.after.is_some() {
                return Err(Ignored("a state page of no copy under way"));
            }
            let mut sessions: Vec<SessionEntry> = log
                .sessions
                .keys()
                .filter_map(|c| {
                    let s = log.session(*c)?;
                    Some(SessionEntry { client: *c, seq: s.seq, slot: s.slot, at: s.at })
                })
                .collect();
            sessions.sort_unstable_by_key(|s| s.client);
            let copy = Frozen {
                to,
                nonce: m.nonce,
                at: log.decided,
                epoch: log.epoch.clone(),
                clock: log.clock,
                sessions,
                heard: now,
            };
            frozen.retain(|f| f.to != to);
            if frozen.len() >= MAX_FROZEN {
                let oldest = (0..frozen.len()).min_by_key(|i| frozen[*i].heard).expect("full");
                frozen.swap_remove(oldest);
            }
            frozen.push(copy);
            frozen.len() - 1
        };
        let f = &mut frozen[i];
        f.heard = now;
        let first = m.after.map_or(0, |after| f.sessions.partition_point(|s| s.client <= after));
        let room = (MAX_BATCH_BYTES - f.epoch.as_ref().map_or(0, |e| e.config.wire_len())) / SESSION_WIRE_BYTES;
        let end = (first + room).min(f.sessions.len());
        Ok(StateReply {
            nonce: f.nonce,
            at: f.at,
            epoch: f.epoch.clone(),
            clock: f.clock,
            sessions: f.sessions[first..end].to_vec(),
            more: end < f.sessions.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_and_are_never_zero() {
        let a: Vec<u64> = (0..1000).map(|n| nonce(7, n)).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(b.len(), a.len());
        assert!(a.iter().all(|n| *n != 0));
        assert_ne!(nonce(7, 1), nonce(8, 1));
    }
}
