//! The seed scenario in simulation: 2 proposers, 5 acceptors of which 1 and 2
//! are failed, 1000 values proposed at once; all are decided, exactly once, and
//! both proposers' logs are identical.

use std::collections::BTreeSet;

use paxos_proto::Value;
use paxos_sim::{run, Overrides};

/// All 1000 values decided while 2 of 5 acceptors are failed, both logs identical.
#[test]
fn thousand_values_with_two_acceptors_failed() {
    let o = Overrides::seed_scenario();
    let outcome = run(7, &o);
    assert!(outcome.ok(), "{:?}", outcome.violations);
    assert_eq!(outcome.stats.acked, 1000, "every value acknowledged");
    let logs = outcome.logs.clone();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0], logs[1], "both proposers hold the same log");
    let values: BTreeSet<_> = logs[0]
        .iter()
        .filter_map(|v| match v {
            Value::Command(c) => Some((c.client, c.seq)),
            Value::Noop | Value::Config(_) => None,
        })
        .collect();
    assert_eq!(values.len(), 1000, "each value exactly once");
    println!("seed scenario: {} ticks, {} slots", outcome.ticks, logs[0].len());
}
