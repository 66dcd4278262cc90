//! The version and the git commit of this build, as `--version`,
//! `paxos_node_info` and `paxosctl status` report them.
//!
//! A crate of its own so that a new commit rebuilds only this and the
//! binaries that print it, not the libraries underneath; `build.rs` says
//! where the commit comes from.

/// The release: the workspace's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binaries were built from; `unknown` without git.
pub const COMMIT: &str = env!("PAXOS_GIT_COMMIT");

/// What `--version` prints after a binary's name: `0.1.0 (commit 1a2b3c4)`.
pub const LONG: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PAXOS_GIT_COMMIT"), ")");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_both() {
        assert_eq!(LONG, format!("{VERSION} (commit {COMMIT})"));
        assert!(!COMMIT.is_empty());
    }
}
