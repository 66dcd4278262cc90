//! Restarting a log later: catch-up across slots that retention deleted.
//!
//! A node whose decided prefix lies below where a peer's log now starts
//! cannot copy the slots between; it restarts its log where the peer's
//! starts, with the configuration epoch in force there (carried by the
//! answer, [`paxos_proto::CatchUpReply::epoch`]). Only the answer to the
//! node's own last request may do that: each request carries a nonce drawn
//! from a secret seed, and the answer must echo it. A key holder that does
//! not see our requests (every member's datagrams are signed, not hidden)
//! cannot guess it, so its claim that the log restarts at some extreme slot
//! moves nothing, however far: the slot step that bounds every other claim
//! ([`crate::MAX_SLOT_STEP`]) cannot bound this one, as a node that was away
//! long may rightly restart millions of slots ahead.

/// The `n`th nonce of a node whose secret seed is `seed`: never 0 (0 means none).
pub(crate) fn nonce(seed: u64, n: u64) -> u64 {
    // splitmix64's finalizer over the seed and the counter.
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
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
