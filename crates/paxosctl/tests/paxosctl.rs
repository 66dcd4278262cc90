//! Process tests of `paxosctl`: the real binary against a cluster of real
//! daemons on free ports (tests/common), its stdout, stderr and exit code
//! checked as a script would see them. Readiness is polled, never slept for,
//! and every child is killed by PID.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use paxos_proto::{Node, NodeId, Slot};
use paxos_testkit::{free_ports, serial, signal, wait_exit, Cluster};
use serde_json::Value as Json;

/// What one run of `paxosctl` did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// `paxosctl` with a clean environment: no `PAXOS_*` variable leaks in from the test runner.
fn paxosctl(config: &Path) -> Command {
    let mut cmd = Command::new(paxos_testkit::paxosctl_bin());
    cmd.arg("--config").arg(config);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PAXOS_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `paxosctl --config <config> <args>` to its end (killed, and the test
/// failed, if it takes longer than `limit`).
fn run_with(config: &Path, args: &[&str], limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = paxosctl(config).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("paxosctl writes UTF-8");
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
            panic!("paxosctl {args:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        took: started.elapsed(),
    }
}

fn run(config: &Path, args: &[&str]) -> Run {
    run_with(config, args, Duration::from_secs(20))
}

/// Runs it and expects exit 0 and a quiet stderr.
fn ok(config: &Path, args: &[&str]) -> Run {
    let r = run(config, args);
    assert_eq!(r.code, Some(0), "paxosctl {args:?} succeeds: {r:#?}");
    assert_eq!(r.stderr, "", "paxosctl {args:?} says nothing on stderr");
    r
}

/// Parses `<instance>\t<value>`.
fn instance_and_value(line: &str) -> (u64, &str) {
    let (instance, value) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in {line:?}"));
    (instance.parse().unwrap_or_else(|_| panic!("not an instance: {line:?}")), value)
}

fn json(line: &str) -> Json {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
}

async fn ready_cluster(proposers: u32, acceptors: u32) -> Cluster {
    let mut cluster = Cluster::new(proposers, acceptors, "");
    cluster.start_all();
    cluster.wait_ready().await;
    cluster
}

/// `propose` prints `<instance>\t<value>` per value in the order given, with
/// increasing instances when sequential; `--json` and `--concurrency` keep
/// the order; afterwards both proposers' logs are identical and hold each
/// value exactly once, where `propose` said; `--from`/`--limit` page it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_prints_each_instance_in_order_and_logs_agree() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    let config = cluster.path.as_path();

    let r = ok(config, &["propose", "alpha", "beta gamma", "delta"]);
    let decided: Vec<(u64, &str)> = r.lines().into_iter().map(instance_and_value).collect();
    assert_eq!(decided.iter().map(|d| d.1).collect::<Vec<_>>(), ["alpha", "beta gamma", "delta"]);
    assert!(decided.windows(2).all(|w| w[0].0 < w[1].0), "sequential values get increasing instances: {decided:?}");

    let values: Vec<String> = (1..=40).map(|i| format!("v{i}")).collect();
    let mut args = vec!["propose", "--json", "--concurrency", "8"];
    args.extend(values.iter().map(String::as_str));
    let r = ok(config, &args);
    let lines = r.lines();
    assert_eq!(lines.len(), values.len());
    let mut instances = BTreeSet::new();
    for (line, value) in lines.iter().zip(&values) {
        let j = json(line);
        assert_eq!(j.as_object().map(|o| o.len()), Some(2), "{line}: instance and value only");
        assert_eq!(j["value"], value.as_str(), "lines come in the order given");
        assert!(instances.insert(j["instance"].as_u64().expect("instance is a number")), "{line}: a fresh instance");
    }

    // Both proposers learn the same log; the follower may lag a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log1 = loop {
        let (l1, l2) = (ok(config, &["log", "--node", "1"]), ok(config, &["log", "--node", "2"]));
        if l1.stdout == l2.stdout && l1.lines().len() >= 44 {
            break l1;
        }
        assert!(Instant::now() < deadline, "the proposers' logs differ:\n{}\n---\n{}", l1.stdout, l2.stdout);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let default = ok(config, &["log"]);
    assert_eq!(default.stdout, log1.stdout, "log reads the leader by default");
    let in_log: Vec<(u64, &str)> =
        log1.lines().into_iter().filter(|l| l.contains('\t')).map(instance_and_value).collect();
    for (i, line) in log1.lines().iter().enumerate() {
        assert_eq!(line.split('\t').next(), Some(i.to_string().as_str()), "the log is printed from 0 without gaps");
    }
    for (instance, value) in &decided {
        assert_eq!(in_log.iter().filter(|(_, v)| v == value).collect::<Vec<_>>(), [&(*instance, *value)]);
    }

    let page = ok(config, &["log", "--json", "--from", "2", "--limit", "2"]);
    let page: Vec<Json> = page.lines().into_iter().map(json).collect();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["instance"], 2);
    assert_eq!(page[0]["value"], "beta gamma");
    assert_eq!(page[1]["instance"], 3);
}

/// A value over 8 KiB is refused before anything is sent: exit 2, one line,
/// and the cluster decides nothing (the valid value before it is not sent either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_value_exits_2_before_anything_is_sent() {
    let _serial = serial().await;
    let cluster = ready_cluster(1, 3).await;
    let big = "x".repeat(paxos_proto::MAX_VALUE_BYTES + 1);
    let r = run(&cluster.path, &["propose", "fine", &big]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert_eq!(r.stdout, "");
    let err = r.stderr_lines();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].starts_with("paxosctl: value #2 ") && err[0].contains("8192 bytes"), "{err:?}");

    let fits = "y".repeat(paxos_proto::MAX_VALUE_BYTES);
    let r = run(&cluster.path, &["bench", "--values", "1", "--concurrency", "1", "--size", "8193"]);
    assert_eq!(r.code, Some(2), "{r:#?}");

    let mut client = cluster.client().await;
    let leader = client.status(Node::Proposer(NodeId(1))).await.expect("status");
    // Instance 0 holds the cluster's first configuration.
    assert_eq!(leader.decided, Slot(1), "nothing was proposed");
    assert_eq!(leader.counters.get("values.decided").copied().unwrap_or(0), 1);
    // The limit itself is fine.
    let r = ok(&cluster.path, &["propose", &fits]);
    assert_eq!(instance_and_value(r.lines()[0]).0, 1);
}

/// Without a majority of acceptors nothing is decided: each value that
/// times out gets its own line on stderr, in order, and the exit code is 1;
/// the values that were decided before it still print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_value_not_decided_in_time_is_one_stderr_line() {
    let _serial = serial().await;
    let cluster = ready_cluster(1, 3).await;
    ok(&cluster.path, &["propose", "first"]);
    for id in [1, 2] {
        cluster.signal(Node::Acceptor(NodeId(id)), libc::SIGUSR1);
        cluster.wait_status(Node::Acceptor(NodeId(id)), "failed", |s| s.failed).await;
    }
    let r = run(&cluster.path, &["propose", "--timeout", "1", "--concurrency", "2", "a", "b"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr_lines(),
        [r#"paxosctl: value #1 "a": timed out after 1s"#, r#"paxosctl: value #2 "b": timed out after 1s"#]
    );
    assert!(r.took < Duration::from_secs(4), "the values wait at once: {:?}", r.took);
}

/// `status` shows every node: a failed one (SIGUSR1) as failed, a killed
/// one as unreachable with its configured role, never as leader; `--json`
/// prints one compact object per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_failed_and_unreachable_nodes() {
    let _serial = serial().await;
    let mut cluster = ready_cluster(2, 5).await;
    let leader = cluster.wait_ready().await;
    cluster.signal(Node::Acceptor(NodeId(1)), libc::SIGUSR1);
    cluster.kill9(Node::Acceptor(NodeId(2))).await;
    cluster.wait_status(Node::Acceptor(NodeId(1)), "failed", |s| s.failed).await;

    let r = ok(&cluster.path, &["status"]);
    let rows: Vec<Vec<&str>> = r.lines().iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NODE", "ROLE", "ADDRESS", "STATE", "LEADER", "BALLOT", "DECIDED"]);
    assert_eq!(rows.len(), 8, "a header and seven nodes: {}", r.stdout);
    let row = |node: &str| rows.iter().find(|r| r[0] == node).unwrap_or_else(|| panic!("no row {node}"));
    assert_eq!(row(&format!("proposer-{leader}"))[1..2], ["leader"]);
    assert_eq!(row(&format!("proposer-{leader}"))[3], "up");
    assert_eq!(row("acceptor-1")[3], "failed");
    assert_eq!(row("acceptor-2")[1], "acceptor");
    assert_eq!(row("acceptor-2")[3], "unreachable");
    assert_eq!(row("acceptor-2")[4..], ["-", "-", "-"]);

    let r = ok(&cluster.path, &["status", "--json"]);
    assert_eq!(r.lines().iter().filter(|l| l.contains(r#""role":"leader""#)).count(), 1, "{}", r.stdout);
    let nodes: Vec<Json> = r.lines().into_iter().map(json).collect();
    assert_eq!(nodes.len(), 7);
    let keys = [
        "node",
        "role",
        "addr",
        "state",
        "epoch",
        "leader",
        "ballot",
        "decided",
        "peers_heard",
        "counters",
        "version",
        "commit",
    ];
    for n in &nodes {
        let got: Vec<&str> = n.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(BTreeSet::from_iter(got), BTreeSet::from(keys), "{n}");
    }
    let by = |name: &str| nodes.iter().find(|n| n["node"] == name).unwrap_or_else(|| panic!("no {name}"));
    let lead = by(&format!("proposer-{leader}"));
    assert_eq!(
        (&lead["role"], &lead["state"], &lead["leader"]),
        (&Json::from("leader"), &Json::from("up"), &Json::from(leader.0))
    );
    assert!(lead["ballot"].as_str().is_some_and(|b| b.ends_with(&format!(".{leader}"))), "{lead}");
    assert!(lead["counters"].is_object() && lead["peers_heard"].is_array());
    // What the node runs, as its --version says (built from this very tree).
    assert_eq!(
        (&lead["version"], &lead["commit"]),
        (&Json::from(paxos_version::VERSION), &Json::from(paxos_version::COMMIT))
    );
    assert_eq!(by("acceptor-1")["state"], "failed");
    let gone = by("acceptor-2");
    assert_eq!((&gone["role"], &gone["state"]), (&Json::from("acceptor"), &Json::from("unreachable")));
    assert!(gone["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")));

    // The leader gone and the other proposer failed: the rows are still
    // printed (the dead leader's keeps the role "proposer"), but with no
    // leader the cluster is unhealthy: exit 1 and one line saying why.
    let other = NodeId(if leader.0 == 1 { 2 } else { 1 });
    cluster.signal(Node::Proposer(other), libc::SIGUSR1);
    cluster.kill9(Node::Proposer(leader)).await;
    cluster.wait_status(Node::Proposer(other), "failed", |s| s.failed).await;
    let r = run(&cluster.path, &["status", "--json"]);
    assert_eq!((r.code, r.stderr.as_str()), (Some(1), "paxosctl: no leader: no working proposer leads\n"), "{r:#?}");
    let lead = r.lines().into_iter().map(json).find(|n| n["node"] == format!("proposer-{leader}")).expect("row");
    assert_eq!((&lead["role"], &lead["state"]), (&Json::from("proposer"), &Json::from("unreachable")));
    // Back to health once the other proposer leads.
    cluster.signal(Node::Proposer(other), libc::SIGUSR2);
    cluster.wait_status(Node::Proposer(other), "leads", |s| s.role == "leader").await;
    ok(&cluster.path, &["status"]);
    // A majority of acceptors gone: exit 1 again.
    cluster.kill9(Node::Acceptor(NodeId(3))).await;
    let r = run(&cluster.path, &["status"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.starts_with("paxosctl: ") && r.stderr.lines().count() == 1, "{r:#?}");
}

/// `bench --json` prints one object with every figure, and nothing on
/// stderr: no progress bar when stderr is not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_has_every_figure() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    let r = ok(&cluster.path, &["bench", "--values", "300", "--concurrency", "8", "--size", "100", "--json"]);
    let lines = r.lines();
    assert_eq!(lines.len(), 1, "one JSON object: {}", r.stdout);
    let b = json(lines[0]);
    for (key, want) in
        [("values", 300), ("concurrency", 8), ("size", 100), ("proposers", 2), ("acceptors", 3), ("errors", 0)]
    {
        assert_eq!(b[key], want, "{key} in {b}");
    }
    for key in ["elapsed_s", "values_per_s", "p50_ms", "p99_ms", "max_ms"] {
        assert!(b[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {b}");
    }
    assert!(b["p50_ms"].as_f64() <= b["p99_ms"].as_f64() && b["p99_ms"].as_f64() <= b["max_ms"].as_f64(), "{b}");

    let r = ok(&cluster.path, &["bench", "--values", "20", "--concurrency", "2"]);
    let lines = r.lines();
    assert_eq!(lines.len(), 1, "one summary line: {}", r.stdout);
    for word in ["20 values", "values/s", "p50", "p99", "max", "0 errors"] {
        assert!(lines[0].contains(word), "{word:?} in {lines:?}");
    }
    // By time: values are proposed for warm-up plus duration, and only those
    // decided in the window after the warm-up are measured.
    let r = ok(
        &cluster.path,
        &["bench", "--duration", "0.5", "--warmup", "0.2", "--concurrency", "4", "--size", "16", "--json"],
    );
    let t = json(r.lines()[0]);
    assert_eq!((&t["warmup_s"], &t["duration_s"], &t["errors"]), (&Json::from(0.2), &Json::from(0.5), &Json::from(0)));
    let (proposed, measured) = (t["values"].as_u64().expect("values"), t["measured"].as_u64().expect("measured"));
    assert!(0 < measured && measured < proposed, "{t}");
    assert!(t["elapsed_s"].as_f64().is_some_and(|s| s > 0.0 && s <= 0.5), "{t}");
    assert_eq!(b["warmup_s"], Json::Null, "by count: {b}");

    // The first configuration, 300 + 20 values and those of the run by time, and nothing else.
    let log = ok(&cluster.path, &["log"]);
    assert_eq!(log.lines().len() as u64, 1 + 320 + proposed);
}

/// `--version` names the release and the commit, as the daemons' do.
#[test]
fn version_names_the_commit() {
    let out = Command::new(paxos_testkit::paxosctl_bin()).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), format!("paxosctl {}", paxos_version::LONG));
}

/// A cluster file whose addresses have nobody listening: every command
/// exits 1 within a few seconds, with one line on stderr; a bad cluster file
/// and a bad argument exit 2 with one line.
#[test]
fn an_unreachable_cluster_or_a_mistake_is_one_line_and_an_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(4);
    let mut text = String::new();
    for (i, port) in ports.iter().enumerate() {
        let (section, id) = if i < 1 { ("proposers", i + 1) } else { ("acceptors", i) };
        text += &format!("[[{section}]]\nid = {id}\naddr = \"127.0.0.1:{port}\"\n");
    }
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, text).expect("write");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["propose", "x"],
        &["log"],
        &["bench", "--values", "5", "--concurrency", "2"],
        &["status", "--timeout", "0.3"],
        &["log", "--timeout", "0.3"],
    ] {
        let r = run_with(&config, args, Duration::from_secs(10));
        assert_eq!(r.code, Some(1), "{args:?}: {r:#?}");
        let err = r.stderr_lines();
        assert_eq!(err.len(), 1, "{args:?}: one line: {err:?}");
        assert!(err[0].starts_with("paxosctl: cluster unreachable"), "{args:?}: {err:?}");
        assert!(r.took < Duration::from_secs(3), "{args:?} took {:?}", r.took);
        if args.contains(&"--timeout") {
            assert!(err[0].contains("answered within 0.3s"), "{args:?}: {err:?}");
        }
    }
    let r = run_with(&config, &["log", "--node", "1"], Duration::from_secs(10));
    assert_eq!((r.code, r.stderr_lines().len()), (Some(1), 1), "{r:#?}");
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[proposers]]\nid = 1\naddr = \"127.0.0.1:1\"\nbogus = 3\n").expect("write");
    // A member to add that cannot be one is refused before anything is sent.
    let acceptor_1 = format!("127.0.0.1:{}", ports[1]);
    // The same socket spelled another way: `localhost` may resolve to 127.0.0.1.
    let acceptor_1_spelled = format!("LOCALHOST:0{}", ports[1]);

    for (config, args) in [
        (bad.as_path(), &["status"][..]),
        (config.as_path(), &["status", "--bogus"]),
        (config.as_path(), &["propose"]),
        (config.as_path(), &["log", "--node", "9"]),
        (config.as_path(), &["propose", "--timeout", "soon", "x"]),
        (config.as_path(), &[]),
        (config.as_path(), &["member", "add", "acceptor", "0", "127.0.0.1:9"]),
        (config.as_path(), &["member", "add", "acceptor", "7", "nonsense"]),
        (config.as_path(), &["member", "add", "acceptor", "7", &acceptor_1]),
        (config.as_path(), &["member", "add", "acceptor", "7", &acceptor_1_spelled]),
    ] {
        let r = run_with(config, args, Duration::from_secs(10));
        assert_eq!(r.code, Some(2), "{args:?}: {r:#?}");
        let err = r.stderr_lines();
        assert_eq!(err.len(), 1, "{args:?}: one line: {err:?}");
        assert!(err[0].starts_with("paxosctl: "), "{args:?}: {err:?}");
        assert!(!r.stderr.contains("panicked"), "{args:?}");
    }
    let r = run_with(&bad, &["status"], Duration::from_secs(10));
    assert!(r.stderr.contains("bad.toml") && r.stderr.contains("bogus"), "names the file and the key: {r:#?}");
    // A member of the file added back at its own address (after a removal) is no mistake: it is
    // asked of the cluster (here unreachable, exit 1).
    let r = run_with(&config, &["member", "add", "acceptor", "1", &acceptor_1], Duration::from_secs(10));
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("cluster unreachable"), "{r:#?}");
}

/// Spawns `paxosctl log --follow` and hands its stdout lines over a channel.
fn follow(config: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child =
        paxosctl(config).args(["log", "--follow"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn expect_line(rx: &mpsc::Receiver<String>, want: &str) {
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
    assert_eq!(line, want);
}

/// `log --follow` prints what was decided, then what is decided after it
/// started, and exits 0 on SIGINT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_follow_prints_values_decided_after_it_started() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    ok(&cluster.path, &["propose", "before"]);
    let (mut child, rx) = follow(&cluster.path);
    expect_line(&rx, "0"); // the first configuration: a no-op to clients
    expect_line(&rx, "1\tbefore");
    let mut client = cluster.client().await;
    assert_eq!(client.propose("after").await.expect("decided"), Slot(2));
    expect_line(&rx, "2\tafter");
    assert_eq!(client.propose("later").await.expect("decided"), Slot(3));
    expect_line(&rx, "3\tlater");
    signal(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "SIGINT ends --follow quietly");
}

/// `backup` writes every instance, no-ops included, with a checksum;
/// `restore` into an empty cluster gives the identical log, which goes on
/// from there; a cluster that is not empty, or a damaged backup, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_into_an_empty_cluster_give_the_same_log() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    // Small values, then values of 1.5 KB: 256 of those would not fit one restore request.
    let values: Vec<String> = (0..120)
        .map(|i| format!("v{i} \"quoted\"\t{}", "x".repeat(i % 7)))
        .chain((0..60).map(|i| format!("big{i}-{}", "y".repeat(1500))))
        .collect();
    let mut args = vec!["propose", "--concurrency", "8"];
    args.extend(values.iter().map(String::as_str));
    ok(&cluster.path, &args);
    let file = cluster.dir().join("backup.jsonl");
    let r = ok(&cluster.path, &["backup", file.to_str().expect("utf-8")]);
    assert!(r.stdout.contains("backed up instances 0..181"), "{}", r.stdout);
    let original = ok(&cluster.path, &["log", "--json"]).stdout;

    let fresh = ready_cluster(2, 3).await;
    let r = ok(&fresh.path, &["restore", file.to_str().expect("utf-8")]);
    assert!(r.stdout.contains("restored instances 0..181"), "{}", r.stdout);
    assert_eq!(ok(&fresh.path, &["log", "--json"]).stdout, original, "the same instances, values and no-ops");
    let next = ok(&fresh.path, &["propose", "next"]);
    assert_eq!(instance_and_value(next.lines()[0]), (181, "next"), "the restored cluster goes on from there");

    let again = run(&fresh.path, &["restore", file.to_str().expect("utf-8")]);
    assert_eq!(again.code, Some(1), "{again:#?}");
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    let text = std::fs::read_to_string(&file).expect("read").replacen("v1 ", "v9 ", 1);
    std::fs::write(&file, text).expect("write");
    let damaged = run(&fresh.path, &["restore", file.to_str().expect("utf-8")]);
    assert_eq!(damaged.code, Some(2), "{damaged:#?}");
    assert!(damaged.stderr.contains("checksum"), "{}", damaged.stderr);
}

/// In a cluster without `[auth]`, an operator's requests (member list and
/// change, leadership transfer, restore) come from an unproven address: each
/// proves it with a cookie before its answer, which may be larger than the
/// request, is sent, and each command works as with keys (a client that
/// did not put the cookie into these requests would get a cookie for ever).
/// Before, such a node answered them at once (a reflection amplifier: a
/// member list's answer is ~4x its request; `paxos-node`'s auth test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_operators_requests_prove_their_address_first() {
    let _serial = serial().await;
    let mut cluster = Cluster::without_auth(2, 3, "");
    cluster.start_all();
    let leader = cluster.wait_ready().await;
    let list = ok(&cluster.path, &["member", "list", "--json"]);
    assert!(list.stdout.contains("\"acceptors\""), "{list:#?}");
    let other = if leader == NodeId(1) { 2 } else { 1 };
    ok(&cluster.path, &["leader", "transfer", &other.to_string(), "--timeout", "10"]);
    ok(&cluster.path, &["propose", "a", "b"]);
    let file = cluster.dir().join("backup.jsonl");
    ok(&cluster.path, &["backup", file.to_str().expect("utf-8")]);

    let mut fresh = Cluster::without_auth(2, 3, "");
    fresh.start_all();
    fresh.wait_ready().await;
    let r = ok(&fresh.path, &["restore", file.to_str().expect("utf-8")]);
    assert!(r.stdout.contains("restored instances 0..3"), "{}", r.stdout);
    assert_eq!(ok(&fresh.path, &["log", "--json"]).stdout, ok(&cluster.path, &["log", "--json"]).stdout);
}

/// With `[log] retain_slots`, whole segments of old instances are deleted on
/// every node; reading them says so (one line, exit 1), and what is retained reads as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_instances_and_says_so() {
    let _serial = serial().await;
    let mut cluster = Cluster::new(2, 3, "[log]\nretain_slots = 200\nsegment_bytes = 65536");
    cluster.start_all();
    cluster.wait_ready().await;
    ok(&cluster.path, &["bench", "--values", "4000", "--concurrency", "32", "--size", "64"]);
    let mut client = cluster.client().await;
    let leader = cluster.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let start = loop {
        let page = client.log(leader, Slot(0), 1).await.expect("read");
        if page.start > Slot(0) {
            break page.start;
        }
        assert!(Instant::now() < deadline, "nothing was deleted: {page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(start <= Slot(4001 - 200), "the newest 200 are kept: starts at {start}");
    let r = run(&cluster.path, &["log", "--from", "0"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("deleted by retention"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let tail = ok(&cluster.path, &["log", "--from", "3900"]);
    assert_eq!(tail.lines().len(), 101, "instances 3900..4001 are there");

    // A backup could not be restored from there: refused, unless asked for as an archive.
    let file = cluster.dir().join("backup.jsonl");
    let path = file.to_str().expect("a UTF-8 path");
    let r = run(&cluster.path, &["backup", path]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr_lines().len(), 1, "{r:#?}");
    assert!(r.stderr.contains("deleted by retention") && r.stderr.contains("--partial"), "{r:#?}");
    assert!(!file.exists(), "nothing written");
    let r = run(&cluster.path, &["backup", "--partial", path]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("the backup starts there"), "{r:#?}");
    let text = std::fs::read_to_string(&file).expect("the partial backup");
    let (_, entries) = paxosctl::admin::decode_backup(&text).expect("a partial backup reads back whole");
    assert!(entries[0].slot >= start && entries.last().expect("entries").slot == Slot(4000), "{:?}", entries[0]);
}

/// `verify --prefix` counts values of earlier workloads (other prefixes) in
/// the logs as acknowledged where they are, so `--all-acked` asks only this
/// workload's values; a value of this workload that never came back still fails.
#[test]
fn verify_with_a_prefix_checks_only_this_workloads_acknowledgements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log.jsonl");
    std::fs::write(
        &log,
        "{\"instance\":0,\"noop\":true}\n{\"instance\":1,\"value\":\"seed-0001\"}\n{\"instance\":2,\"value\":\"again-0001\"}\n",
    )
    .expect("write");
    let acked = dir.path().join("acked.jsonl");
    std::fs::write(&acked, "{\"instance\":2,\"value\":\"again-0001\"}\n").expect("write");
    let proposed = dir.path().join("proposed.txt");
    std::fs::write(&proposed, "again-0001\n").expect("write");
    let base = |extra: &str| {
        let mut args: Vec<String> = ["verify", "--log"].iter().map(|s| s.to_string()).collect();
        args.push(log.display().to_string());
        args.extend(["--acked".to_owned(), acked.display().to_string(), "--proposed".to_owned()]);
        args.push(extra.to_owned());
        args.extend(["--prefix".to_owned(), "again-".to_owned(), "--all-acked".to_owned()]);
        args
    };
    let args = base(&proposed.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(Path::new("unused.toml"), &refs);
    assert_eq!(r.code, Some(0), "{r:#?}");
    std::fs::write(&proposed, "again-0001\nagain-0002\n").expect("write");
    let r = run(Path::new("unused.toml"), &refs);
    assert_eq!(r.code, Some(1), "a value of this workload that was never acknowledged: {r:#?}");
    assert!(r.stdout.contains("again-0002") && !r.stdout.contains("seed-0001"), "{}", r.stdout);
}

/// A ballot of `status --json` (`epoch:round.proposer`, or `round.proposer`
/// in epoch 0) in its order.
fn ballot(node: &Json) -> (u64, u64, u64) {
    let text = node["ballot"].as_str().unwrap_or_else(|| panic!("a ballot in {node}"));
    let (epoch, rest) = text.split_once(':').unwrap_or(("0", text));
    let (round, proposer) = rest.split_once('.').unwrap_or_else(|| panic!("a ballot: {text}"));
    let n = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("a ballot: {text}"));
    (n(epoch), n(round), n(proposer))
}

/// `leader transfer` back and forth, at once: each says done only once the
/// target leads with a ballot above the old leader's (which still says
/// "leader" for a moment), so right after it, the target is the leader that
/// every proposer's ballot agrees on. (Regression: `transfer 1; transfer 2`
/// printed success while proposer 1 kept leading.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_transfer_back_and_forth_moves_leadership_each_time() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    for round in 0..4 {
        for to in [1u32, 2] {
            let out = ok(&cluster.path, &["leader", "transfer", &to.to_string(), "--timeout", "10"]);
            assert!(out.stdout.contains(&format!("-> proposer-{to} in")), "round {round}: {}", out.stdout);
            let status = run(&cluster.path, &["status", "--json"]);
            let nodes: Vec<Json> = status.stdout.lines().map(json).collect();
            let proposer = |id: u32| {
                nodes
                    .iter()
                    .find(|n| n["node"] == format!("proposer-{id}"))
                    .unwrap_or_else(|| panic!("proposer {id} in {}", status.stdout))
            };
            let target = proposer(to);
            assert_eq!(target["role"], "leader", "round {round}: proposer {to} leads: {}", status.stdout);
            let other = proposer(3 - to);
            if other["role"] == "leader" {
                // Deposed a moment ago and not told yet: its ballot must be the lower one.
                assert!(
                    ballot(other) < ballot(target),
                    "round {round}: proposer {to} says it leads, but below another leader: {}",
                    status.stdout
                );
            }
        }
    }
}

/// `backup` reads the leader's log only: with no majority of acceptors up,
/// no proposer leads, and the backup fails with one line instead of writing
/// a candidate's (possibly short) log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_without_a_leader_fails() {
    let _serial = serial().await;
    let cluster = ready_cluster(2, 3).await;
    ok(&cluster.path, &["propose", "a", "b"]);
    for a in [1, 2] {
        cluster.signal(Node::Acceptor(NodeId(a)), libc::SIGUSR1);
    }
    for p in [1, 2] {
        cluster.wait_status(Node::Proposer(NodeId(p)), "no longer leads", |s| s.role != "leader").await;
    }
    let file = cluster.dir().join("backup.jsonl");
    let r = run(&cluster.path, &["backup", file.to_str().expect("a UTF-8 path"), "--timeout", "2"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr_lines().len(), 1, "{r:#?}");
    assert!(r.stderr.contains("no leader"), "{r:#?}");
    assert!(!file.exists(), "nothing written");
}

/// `status` shows the members the log decided, not only the file's: an
/// acceptor added with `member add` is asked and listed, one removed is
/// marked `removed` and left out of the majority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_decided_membership() {
    let _serial = serial().await;
    let mut cluster = ready_cluster(1, 3).await;
    let a4 = Node::Acceptor(NodeId(4));
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    cluster.start_listening(a4, &addr);
    ok(&cluster.path, &["member", "add", "acceptor", "4", &addr, "--timeout", "30"]);
    ok(&cluster.path, &["member", "remove", "acceptor", "3", "--timeout", "30"]);
    cluster.kill9(Node::Acceptor(NodeId(3))).await;

    let status = ok(&cluster.path, &["status", "--json"]);
    let nodes: Vec<Json> = status.stdout.lines().map(json).collect();
    let of = |name: &str| {
        nodes.iter().find(|n| n["node"] == name).unwrap_or_else(|| panic!("{name} in {}", status.stdout)).clone()
    };
    assert_eq!(of("acceptor-4")["state"], "up", "{}", status.stdout);
    assert_eq!(of("acceptor-4")["addr"], addr.as_str(), "{}", status.stdout);
    assert_eq!(of("acceptor-3")["state"], "removed", "{}", status.stdout);
    // Three members up of three (1, 2, 4): a majority, although acceptor 3 is gone.
    assert_eq!(status.code, Some(0), "{status:#?}");
}

/// Makes proposer `id` lead, by transfers asked through a client of `config` (which knows where it is).
async fn lead(config: &paxos_client::config::ClusterConfig, id: NodeId) {
    let mut admin = paxos_client::Client::new(config).await.expect("client");
    admin.set_timeout(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !admin.status(Node::Proposer(id)).await.is_ok_and(|s| s.role == "leader") {
        let _ = admin.transfer(id).await;
        assert!(Instant::now() < deadline, "proposer {id} never led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cluster of proposers 1 and 2 and three acceptors, to which proposer 3
/// is added with `member add` (the cluster file is not updated) and made to
/// lead: the cluster, proposer 3's address, and a client configuration that
/// knows it.
async fn proposer_3_added_and_leading() -> (Cluster, String, paxos_client::config::ClusterConfig) {
    let mut cluster = ready_cluster(2, 3).await;
    let p3 = Node::Proposer(NodeId(3));
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    cluster.start_listening(p3, &addr);
    ok(&cluster.path, &["member", "add", "proposer", "3", &addr, "--timeout", "30"]);
    // Proposer 3 leads (the highest id may take it by itself; a transfer makes sure).
    let widened = cluster.client_config(&[(p3, addr.clone())]);
    lead(&widened, NodeId(3)).await;
    (cluster, addr, widened)
}

/// A proposer added with `member add` that then leads, while the cluster
/// file was not updated: paxosctl with that file is redirected to a leader
/// it does not know, lists the members the log decided, and finds it;
/// propose, log, status and backup work as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_the_file_does_not_name_is_found_through_the_log() {
    let _serial = serial().await;
    let (mut cluster, addr, widened) = proposer_3_added_and_leading().await;

    let proposed = ok(&cluster.path, &["propose", "--timeout", "10", "found"]);
    assert!(proposed.stdout.ends_with("\tfound\n"), "{proposed:#?}");
    let log = ok(&cluster.path, &["log"]);
    assert!(log.stdout.contains("\tfound\n"), "{log:#?}");
    let status = ok(&cluster.path, &["status", "--json"]);
    let leader: Vec<Json> = status.stdout.lines().map(json).filter(|n| n["role"] == "leader").collect();
    assert_eq!(leader.len(), 1, "{}", status.stdout);
    assert_eq!((&leader[0]["node"], &leader[0]["addr"]), (&Json::from("proposer-3"), &Json::from(addr.as_str())));
    let file = cluster.dir().join("backup.jsonl");
    let backup = ok(&cluster.path, &["backup", file.to_str().expect("a UTF-8 path")]);
    assert!(backup.stdout.contains("from proposer-3"), "{backup:#?}");

    // Without the peer key too: listing the members is no operator's request, and an unsigned
    // client proves its address with a cookie first (before, the list was refused and the
    // timeout said "proposer 3 leads, but the cluster file does not name it").
    let text = std::fs::read_to_string(&cluster.path).expect("the cluster file");
    let keyless = cluster.dir().join("keyless.toml");
    std::fs::write(&keyless, text.replace("[auth]\npeer_key_file = \"peer.key\"\n", "")).expect("write");
    assert!(!std::fs::read_to_string(&keyless).expect("read").contains("[auth]"));
    let one = ok(&keyless, &["propose", "--timeout", "10", "keyless"]);
    assert!(one.stdout.ends_with("\tkeyless\n"), "{one:#?}");
    let many = ok(&keyless, &["propose", "--timeout", "10", "--concurrency", "2", "keyless-a", "keyless-b"]);
    assert_eq!(many.stdout.lines().count(), 2, "{many:#?}");
    let status = ok(&keyless, &["status", "--json"]);
    assert!(status.stdout.lines().map(json).any(|n| n["node"] == "proposer-3" && n["role"] == "leader"), "{status:#?}");

    // A member the log moved (removed, then added again at another address) is asked, and shown,
    // where the log puts it, not where the file does.
    let p2 = Node::Proposer(NodeId(2));
    ok(&cluster.path, &["member", "remove", "proposer", "2", "--timeout", "30"]);
    cluster.kill9(p2).await;
    std::fs::remove_dir_all(cluster.data_dir(p2)).expect("delete proposer 2's data dir");
    let moved = format!("127.0.0.1:{}", free_ports(1)[0]);
    cluster.start_listening(p2, &moved);
    ok(&cluster.path, &["member", "add", "proposer", "2", &moved, "--timeout", "30"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = run(&cluster.path, &["status", "--json"]);
        let nodes: Vec<Json> = status.stdout.lines().map(json).collect();
        let p2 = nodes.iter().find(|n| n["node"] == "proposer-2").cloned().unwrap_or_default();
        if p2["addr"] == moved.as_str() && p2["state"] == "up" {
            break;
        }
        assert!(Instant::now() < deadline, "proposer 2 not shown up at {moved}: {}", status.stdout);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It leads (a transfer, asked by a client that knows where it is): paxosctl, redirected to it
    // and met with silence at the file's address, lists the members and finds it.
    let mut knows = widened.clone();
    knows.proposers.retain(|m| m.id != 2);
    knows.proposers.push(paxos_client::config::Member::new(2, &moved));
    lead(&knows, NodeId(2)).await;
    let proposed = ok(&cluster.path, &["propose", "--timeout", "10", "after-the-move"]);
    assert!(proposed.stdout.ends_with("\tafter-the-move\n"), "{proposed:#?}");
}

/// A cluster file that names only proposers the log removed or that are
/// gone: proposer 3 is added and leads, proposer 2 is removed (it still
/// runs) and proposer 1 dies. The removed one, which hears no leader, sends
/// paxosctl to each member in turn, and paxosctl lists the members and finds
/// proposer 3. Before, proposer 2 named no leader and the proposal timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_proposer_sends_clients_on_to_the_members() {
    let _serial = serial().await;
    let (mut cluster, _, _) = proposer_3_added_and_leading().await;
    ok(&cluster.path, &["member", "remove", "proposer", "2", "--timeout", "30"]);
    cluster.kill9(Node::Proposer(NodeId(1))).await;

    let proposed = ok(&cluster.path, &["propose", "--timeout", "10", "found"]);

    assert!(proposed.stdout.ends_with("\tfound\n"), "{proposed:#?}");
}

/// A membership change that cannot be made (an acceptor never started)
/// is given up at the request's deadline, a little before `--timeout`: the
/// command exits 1 with why, not with a bare timeout; the leader no longer
/// waits for it, so the next change goes through; and the node, started
/// afterwards, is not let in (the given-up change is not made later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_cannot_be_made_is_given_up_and_holds_nothing_up() {
    let _serial = serial().await;
    let mut cluster = ready_cluster(1, 3).await;
    let ports = free_ports(2);
    let (addr6, addr4) = (format!("127.0.0.1:{}", ports[0]), format!("127.0.0.1:{}", ports[1]));

    let r = run(&cluster.path, &["member", "add", "acceptor", "6", &addr6, "--timeout", "3"]);

    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr_lines().len(), 1, "{r:#?}");
    let why = format!("given up at its deadline, not made: acceptor 6 has not answered at {addr6}");
    assert!(r.stderr.contains(&why), "{r:#?}");
    cluster.start_listening(Node::Acceptor(NodeId(6)), &addr6);
    cluster.start_listening(Node::Acceptor(NodeId(4)), &addr4);
    ok(&cluster.path, &["member", "add", "acceptor", "4", &addr4, "--timeout", "30"]);
    let list = ok(&cluster.path, &["member", "list"]);
    assert!(list.stdout.contains("acceptor-4"), "{}", list.stdout);
    assert!(!list.stdout.contains("acceptor-6"), "{}", list.stdout);

    // Removing a node that is no member (a mistyped id) is refused, not a silent success.
    let r = run(&cluster.path, &["member", "remove", "acceptor", "6"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr_lines().len(), 1, "{r:#?}");
    assert!(r.stderr.contains("acceptor 6 is not a member (the acceptors of epoch"), "{r:#?}");
    assert!(r.stderr.contains(": 1, 2, 3, 4;"), "{r:#?}");
}
