//! `paxosctl --config FILE <propose|log|status|bench> ...` and `paxosctl verify`:
//! the operator's command line of the Paxos log (SPEC.md, "paxosctl").
//!
//! Everything lives in the `paxosctl` library, so that its pieces are
//! unit-tested and the process tests run exactly this binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    paxosctl::main()
}
