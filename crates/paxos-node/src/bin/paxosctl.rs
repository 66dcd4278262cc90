//! `paxosctl --config FILE <propose|log|status|bench> ...`: the operator's
//! command line of the Paxos log (SPEC.md, "paxosctl").
//!
//! Everything lives in [`paxos_node::ctl`], so that its pieces are unit-tested
//! and the process tests run exactly this binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    paxos_node::ctl::main()
}
