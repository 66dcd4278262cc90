//! The one checker of what the clients of the log were promised.
//!
//! SPEC.md's guarantees, as far as logs and clients can show them:
//!
//! | check          | what holds                                                                 |
//! |----------------|----------------------------------------------------------------------------|
//! | `agreement`    | no two logs hold different entries at one instance                         |
//! | `gap`          | each log is consecutive from its first instance                            |
//! | `validity`     | every value in a log is one a client proposed, with the data it proposed   |
//! | `exactly-once` | no request is in the log twice                                             |
//! | `durability`   | every acknowledged request is in the log at the instance it was acknowledged with |
//! | `order`        | a request acknowledged before another was sent has the lower instance      |
//! | `decided`      | (when asked) every request was acknowledged, and every log is the same     |
//!
//! The simulator ([`paxos-sim`]), the process tests and `paxosctl verify`
//! (what the scripts call) all check through [`check`], so there is one
//! definition of each guarantee. A request is named by a key of the caller's
//! choice: the simulator uses `(client, seq)`, `paxosctl verify` the value
//! itself (its workloads propose unique values). Logs hold what clients read:
//! a request that landed twice after a leader change shows as a no-op the
//! second time, as `paxosctl log` shows it, so a key seen twice is a real
//! double application.
//!
//! No I/O and no dependencies: the callers read their files and sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A position in the log.
pub type Instance = u64;

/// A point in time as the caller counts it (simulator ticks, nanoseconds).
pub type Time = u64;

/// One broken guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which check (see the crate docs).
    pub invariant: &'static str,
    /// What happened, with the instances and values involved.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// One entry of a log: a request's value, or a no-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<K> {
    /// A request, and the value it put in the log.
    Value(K, String),
    /// A no-op filler (or a request that landed twice, the second time).
    Noop,
}

/// The log one learner holds, from `first` on without gaps (`first` is above
/// zero when retention deleted what came before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log<K> {
    /// Whose log: named in violations.
    pub name: String,
    /// The instance of `entries[0]`.
    pub first: Instance,
    /// The entries, consecutive from `first`.
    pub entries: Vec<Entry<K>>,
}

impl<K> Log<K> {
    /// One past the last instance held.
    pub fn end(&self) -> Instance {
        self.first + self.entries.len() as u64
    }

    /// The entry at `instance`, if held.
    pub fn get(&self, instance: Instance) -> Option<&Entry<K>> {
        instance.checked_sub(self.first).and_then(|i| self.entries.get(i as usize))
    }
}

/// What one client did, in the order it did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client<K> {
    /// Named in violations.
    pub name: String,
    /// Every request it sent, with its value and when it was first sent (if known).
    pub sent: Vec<Sent<K>>,
    /// True when it sent one request after another (each once the one before
    /// was acknowledged or given up): its acknowledged instances then increase.
    pub sequential: bool,
}

/// One request a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent<K> {
    /// The request.
    pub key: K,
    /// The value it carried.
    pub value: String,
    /// When it was first sent, if the caller knows.
    pub at: Option<Time>,
    /// The instance it was acknowledged with, and when, if it was.
    pub acked: Option<(Instance, Option<Time>)>,
}

/// What to check beyond the guarantees that always hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Every request sent was acknowledged (the workload ran without faults
    /// that let a request time out, as the seed scenario does).
    pub all_acked: bool,
    /// Every log is the same (the learners converged).
    pub same_logs: bool,
}

/// Checks `logs` against what `clients` did; an empty result means every
/// guarantee holds.
pub fn check<K: Ord + Clone + fmt::Debug>(logs: &[Log<K>], clients: &[Client<K>], expect: Expect) -> Vec<Violation> {
    let mut found = Vec::new();
    let merged = agreement(logs, &mut found);
    let proposed: BTreeMap<&K, &str> =
        clients.iter().flat_map(|c| c.sent.iter().map(|s| (&s.key, s.value.as_str()))).collect();
    validity(&merged, &proposed, &mut found);
    let first = exactly_once(&merged, &mut found);
    durability(&merged, clients, &mut found);
    order(&first, clients, &mut found);
    if expect.all_acked {
        for c in clients {
            for s in c.sent.iter().filter(|s| s.acked.is_none()) {
                found.push(violation(
                    "decided",
                    format!("{}: {:?} ({:?}) was never acknowledged", c.name, s.key, s.value),
                ));
            }
        }
    }
    if expect.same_logs {
        if let Some((a, rest)) = logs.split_first() {
            for b in rest.iter().filter(|b| b.first != a.first || b.entries.len() != a.entries.len()) {
                let detail = format!(
                    "{} holds instances {}..{} but {} holds {}..{}",
                    a.name,
                    a.first,
                    a.end(),
                    b.name,
                    b.first,
                    b.end()
                );
                found.push(violation("decided", detail));
            }
        }
    }
    found
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// Agreement: every instance held by two logs holds one entry. Returns the
/// union of the logs, instance by instance (the first log's entry where they differ).
fn agreement<'a, K: PartialEq + fmt::Debug>(
    logs: &'a [Log<K>],
    found: &mut Vec<Violation>,
) -> BTreeMap<Instance, (&'a Entry<K>, &'a str)> {
    let mut merged: BTreeMap<Instance, (&Entry<K>, &str)> = BTreeMap::new();
    for log in logs {
        for (i, entry) in log.entries.iter().enumerate() {
            let at = log.first + i as u64;
            match merged.get(&at) {
                None => {
                    merged.insert(at, (entry, &log.name));
                }
                Some((e, _)) if *e == entry => {}
                Some((e, other)) => found.push(violation(
                    "agreement",
                    format!("instance {at}: {} holds {entry:?}, {other} holds {e:?}", log.name),
                )),
            }
        }
    }
    merged
}

fn validity<K: Ord + fmt::Debug>(
    merged: &BTreeMap<Instance, (&Entry<K>, &str)>,
    proposed: &BTreeMap<&K, &str>,
    found: &mut Vec<Violation>,
) {
    for (at, (entry, whose)) in merged {
        if let Entry::Value(key, value) = entry {
            match proposed.get(key) {
                Some(v) if *v == value => {}
                Some(v) => found.push(violation(
                    "validity",
                    format!("instance {at} ({whose}): {key:?} holds {value:?}, but its client proposed {v:?}"),
                )),
                None => found.push(violation(
                    "validity",
                    format!("instance {at} ({whose}): {key:?} = {value:?} was proposed by no client"),
                )),
            }
        }
    }
}

/// Exactly once: each request at one instance at most. Returns where each request is.
fn exactly_once<K: Ord + Clone + fmt::Debug>(
    merged: &BTreeMap<Instance, (&Entry<K>, &str)>,
    found: &mut Vec<Violation>,
) -> BTreeMap<K, Instance> {
    let mut first: BTreeMap<K, Instance> = BTreeMap::new();
    for (at, (entry, _)) in merged {
        if let Entry::Value(key, _) = entry {
            if let Some(before) = first.get(key) {
                found.push(violation("exactly-once", format!("{key:?} is at instance {before} and again at {at}")));
            } else {
                first.insert(key.clone(), *at);
            }
        }
    }
    first
}

/// Durability: an acknowledged request is at the instance it was acknowledged with.
fn durability<K: PartialEq + fmt::Debug>(
    merged: &BTreeMap<Instance, (&Entry<K>, &str)>,
    clients: &[Client<K>],
    found: &mut Vec<Violation>,
) {
    let end = merged.keys().next_back().map_or(0, |last| last + 1);
    let start = merged.keys().next().copied().unwrap_or(0);
    for c in clients {
        for s in &c.sent {
            let Some((at, _)) = s.acked else { continue };
            if at < start {
                continue; // deleted by retention: nothing left to compare with
            }
            match merged.get(&at) {
                Some((Entry::Value(key, _), _)) if *key == s.key => {}
                Some((entry, whose)) => found.push(violation(
                    "durability",
                    format!("{}: {:?} was acknowledged at instance {at}, where {whose} holds {entry:?}", c.name, s.key),
                )),
                None => found.push(violation(
                    "durability",
                    format!("{}: {:?} was acknowledged at instance {at}, but the logs end at {end}", c.name, s.key),
                )),
            }
        }
    }
}

/// Order: per sequential client, acknowledged instances increase; with times,
/// a request acknowledged before another was first sent is at a lower instance.
fn order<K: Ord + fmt::Debug>(first: &BTreeMap<K, Instance>, clients: &[Client<K>], found: &mut Vec<Violation>) {
    for c in clients.iter().filter(|c| c.sequential) {
        let mut last: Option<(&K, Instance)> = None;
        for s in &c.sent {
            let Some(&at) = first.get(&s.key) else { continue };
            if let Some((before, prev)) = last {
                if at <= prev {
                    let detail = format!(
                        "{}: {:?} is at instance {at}, not after {before:?} at {prev}, sent before it",
                        c.name, s.key
                    );
                    found.push(violation("order", detail));
                }
            }
            last = Some((&s.key, at));
        }
    }
    // Across clients, where times are known: sort acknowledgements by time,
    // then every request sent later must sit above every one acknowledged before.
    let mut acks: Vec<(Time, Instance)> = clients
        .iter()
        .flat_map(|c| c.sent.iter().filter_map(|s| s.acked.and_then(|(at, t)| t.map(|t| (t, at)))))
        .collect();
    if acks.is_empty() {
        return;
    }
    acks.sort_unstable();
    let mut highest_before = Vec::with_capacity(acks.len() + 1);
    highest_before.push(None);
    for (_, at) in &acks {
        let prev: Option<Instance> = *highest_before.last().expect("seeded");
        highest_before.push(Some(prev.map_or(*at, |p| p.max(*at))));
    }
    for c in clients {
        for s in &c.sent {
            let (Some(sent), Some(&at)) = (s.at, first.get(&s.key)) else { continue };
            let before = acks.partition_point(|(t, _)| *t < sent);
            if let Some(max) = highest_before[before] {
                if max >= at {
                    let detail = format!(
                        "{}: {:?}, first sent at time {sent}, is at instance {at}, but instance {max} was acknowledged before",
                        c.name, s.key
                    );
                    found.push(violation("order", detail));
                }
            }
        }
    }
}

/// The keys of `entries` that are not all distinct, for callers that build
/// logs from raw learners' logs (where a request that landed twice is there
/// twice) and want the client's view: every occurrence after the first
/// becomes a no-op.
pub fn client_view<K: Ord + Clone>(entries: impl IntoIterator<Item = Entry<K>>) -> Vec<Entry<K>> {
    let mut seen = BTreeSet::new();
    entries
        .into_iter()
        .map(|e| match e {
            Entry::Value(k, v) if seen.insert(k.clone()) => Entry::Value(k, v),
            Entry::Value(..) | Entry::Noop => Entry::Noop,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Entry<String> {
        Entry::Value(s.to_owned(), s.to_owned())
    }

    fn log(name: &str, entries: Vec<Entry<String>>) -> Log<String> {
        Log { name: name.into(), first: 0, entries }
    }

    fn client(name: &str, sent: &[(&str, Option<u64>)], sequential: bool) -> Client<String> {
        Client {
            name: name.into(),
            sent: sent
                .iter()
                .map(|(value, acked)| Sent {
                    key: (*value).to_owned(),
                    value: (*value).to_owned(),
                    at: None,
                    acked: acked.map(|a| (a, None)),
                })
                .collect(),
            sequential,
        }
    }

    fn kinds(found: &[Violation]) -> Vec<&'static str> {
        found.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_correct_history_passes() {
        let logs = [log("p1", vec![v("a"), Entry::Noop, v("b")]), log("p2", vec![v("a"), Entry::Noop])];
        let clients = [client("c1", &[("a", Some(0)), ("b", Some(2))], true), client("c2", &[("x", None)], true)];
        assert_eq!(check(&logs, &clients, Expect::default()), vec![]);
    }

    #[test]
    fn each_guarantee_bites() {
        let c = |sent: &[(&str, Option<u64>)]| vec![client("c", sent, true)];
        let agreement = check(
            &[log("p1", vec![v("a")]), log("p2", vec![v("b")])],
            &c(&[("a", None), ("b", None)]),
            Expect::default(),
        );
        assert_eq!(kinds(&agreement), ["agreement"]);
        let validity = check(&[log("p1", vec![v("z")])], &c(&[]), Expect::default());
        assert_eq!(kinds(&validity), ["validity"]);
        let twice = check(&[log("p1", vec![v("a"), v("a")])], &c(&[("a", Some(0))]), Expect::default());
        assert_eq!(kinds(&twice), ["exactly-once"]);
        let lost =
            check(&[log("p1", vec![v("a"), Entry::Noop])], &c(&[("a", Some(0)), ("b", Some(1))]), Expect::default());
        assert_eq!(kinds(&lost), ["durability"]);
        let short = check(&[log("p1", vec![v("a")])], &c(&[("a", Some(0)), ("b", Some(1))]), Expect::default());
        assert_eq!(kinds(&short), ["durability"]);
        let order = check(&[log("p1", vec![v("b"), v("a")])], &c(&[("a", Some(1)), ("b", Some(0))]), Expect::default());
        assert_eq!(kinds(&order), ["order"]);
        let all = Expect { all_acked: true, same_logs: true };
        let undecided = check(&[log("p1", vec![v("a")]), log("p2", vec![])], &c(&[("a", Some(0)), ("b", None)]), all);
        assert_eq!(kinds(&undecided), ["decided", "decided"]);
    }

    #[test]
    fn real_time_order_across_clients() {
        let logs = [log("p1", vec![v("late"), v("early")])];
        let mut early = client("c1", &[("early", Some(1))], true);
        early.sent[0].at = Some(0);
        early.sent[0].acked = Some((1, Some(10)));
        let mut late = client("c2", &[("late", Some(0))], true);
        late.sent[0].at = Some(20);
        late.sent[0].acked = Some((0, Some(30)));
        assert_eq!(kinds(&check(&logs, &[early, late], Expect::default())), ["order"]);
    }

    #[test]
    fn retention_hides_what_it_deleted_and_nothing_else() {
        let logs = [Log { name: "p1".into(), first: 2, entries: vec![v("c")] }];
        let clients = [client("c", &[("a", Some(0)), ("c", Some(2))], true)];
        assert_eq!(check(&logs, &clients, Expect::default()), vec![]);
    }

    #[test]
    fn the_client_view_hides_second_landings() {
        let view = client_view([v("a"), v("b"), v("a")]);
        assert_eq!(view, vec![v("a"), v("b"), Entry::Noop]);
    }
}
