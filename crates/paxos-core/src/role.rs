//! What every role offers the code that drives it: the daemons' node loop and
//! the simulator drive an [`Acceptor`](crate::Acceptor) and a
//! [`Proposer`](crate::Proposer) through this one trait.

use paxos_proto::{Ballot, Config, Message, Node, NodeId, StatusReply};

use crate::{Fold, Ignored, LogPage, Ready};

/// What an operator sees change: role, leader and ballot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// `leader`, `candidate` or `follower`.
    pub role: &'static str,
    /// The leader as far as the node knows.
    pub leader: Option<NodeId>,
    /// The node's ballot.
    pub ballot: Ballot,
}

/// A role of the protocol as a pure state machine: inputs in, a [`Ready`] out.
pub trait Role: Send + 'static {
    /// The state the role persists (its operations are what `take_ready` asks to write).
    type State: Fold;

    /// This node.
    fn me(&self) -> Node;

    /// Handles one message.
    ///
    /// # Errors
    /// [`Ignored`] when the message is refused; the state is then unchanged.
    fn handle(&mut self, from: Node, msg: Message) -> Result<(), Ignored>;

    /// Advances the role's clock by one tick.
    fn tick(&mut self);

    /// The wall clock, in Unix milliseconds: what bounds ballot rounds
    /// ([`crate::round_ceiling`], by the second) and stamps client commands.
    /// Until it is set, rounds are bounded only by the codec.
    fn set_clock(&mut self, unix_ms: u64);

    /// Takes what was produced since the last call.
    fn take_ready(&mut self) -> Ready<<Self::State as Fold>::Op>;

    /// Right after [`Role::take_ready`]: the state that every operation of
    /// every [`Ready`] taken so far folds into, from the state the role was
    /// built from, if the role keeps it whole (an acceptor does; a
    /// proposer's lies in its learner). The store can then take it rather
    /// than fold the operations again ([`crate::Store::apply_folded`]).
    fn folded(&self) -> Option<&Self::State> {
        None
    }

    /// The page of the decided log that read `id` of a [`Ready`] asked for
    /// (read from the store after that `Ready`'s writes).
    fn on_read(&mut self, id: u64, page: LogPage);

    /// Read `id` of a [`Ready`] failed (a damaged segment, an I/O error):
    /// the role forgets it and answers nothing, so that whoever asked goes
    /// to another node. A failed read is never an empty page: that would
    /// say the log ends where it is only unreadable.
    fn on_read_failed(&mut self, id: u64);

    /// A read of the decided log failed, and no pass read the whole log
    /// cleanly since ([`crate::scrub`]): the node cannot serve its log.
    fn damaged(&self) -> bool;

    /// Why our decided log is known to differ from another node's (its
    /// digest is not ours, [`crate::digest`]), in one line: `None` while no
    /// comparison showed it, and always for an acceptor, which compares nothing.
    fn divergence(&self) -> Option<String> {
        None
    }

    /// Every member of the latest configuration the role knows, with its
    /// address, and any node it is about to add: where the runtime sends.
    fn members(&self) -> Vec<(Node, String)>;

    /// A status report (the runtime fills in `req`, `failed` and counters).
    fn status(&self) -> StatusReply;

    /// Role, leader and ballot, for change logging; `None` when the role logs
    /// its changes itself.
    fn view(&self) -> Option<View>;

    /// The proposer known to lead now (a proposer's view, for monitoring);
    /// `None` for a role that follows no leader, or while none is known.
    fn leading(&self) -> Option<NodeId> {
        None
    }
}

/// Every member of `config` with its address.
pub(crate) fn addresses(config: &Config) -> Vec<(Node, String)> {
    let acceptors = config.acceptors.iter().map(|m| (Node::Acceptor(m.id), m.addr.clone()));
    let proposers = config.proposers.iter().map(|m| (Node::Proposer(m.id), m.addr.clone()));
    acceptors.chain(proposers).collect()
}
