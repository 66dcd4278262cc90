//! The cluster file: every rule of SPEC.md "The cluster file", one test each,
//! through the public API only.

use std::path::{Path, PathBuf};

use paxos_client::config::{parse_addr, same_address, ClusterConfig, ConfigError, NodeSettings, Role};

/// The example of SPEC.md: 2 proposers, 5 acceptors, explicit [node] defaults.
const SPEC_EXAMPLE: &str = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[proposers]]
id = 2
addr = "127.0.0.1:7002"

[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
[[acceptors]]
id = 2
addr = "127.0.0.1:7102"
[[acceptors]]
id = 3
addr = "127.0.0.1:7103"
[[acceptors]]
id = 4
addr = "127.0.0.1:7104"
[[acceptors]]
id = 5
addr = "127.0.0.1:7105"

[node]
data_dir = "data"
heartbeat_ms = 100
election_timeout_ms = 500
fsync = true
"#;

/// One proposer and one acceptor, to which a test appends what it checks.
const MINIMAL: &str = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;

/// A cluster file in its own temporary directory.
struct TestFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write(text: &str) -> TestFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, text).expect("write cluster file");
    TestFile { _dir: dir, path }
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn load(text: &str) -> Result<ClusterConfig, ConfigError> {
    let file = write(text);
    ClusterConfig::load_with_env(&file.path, no_env())
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<ClusterConfig, ConfigError> {
    let file = write(text);
    ClusterConfig::load_with_env(&file.path, env(vars))
}

/// Loads `text`, expects an error at `key` whose problem contains `problem`,
/// and checks the one-line `<file>: <key>: <problem>` shape.
#[track_caller]
fn expect_err(text: &str, vars: &[(&str, &str)], key: &str, problem: &str) -> ConfigError {
    let file = write(text);
    let err = ClusterConfig::load_with_env(&file.path, env(vars)).expect_err("the file should be refused");
    check_err(&err, &file.path, key, problem);
    err
}

#[track_caller]
fn check_err(err: &ConfigError, path: &Path, key: &str, problem: &str) {
    let line = err.to_string();
    assert!(!line.contains('\n'), "not one line: {line:?}");
    assert_eq!(err.file(), path.display().to_string(), "{line}");
    assert_eq!(err.key(), key, "{line}");
    assert!(err.problem().contains(problem), "{line}: lacks {problem:?}");
    let expected = if key.is_empty() {
        format!("{}: {}", path.display(), err.problem())
    } else {
        format!("{}: {}: {}", path.display(), key, err.problem())
    };
    assert_eq!(line, expected);
}

fn with_minimal(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

// ---- what a good file gives ----

#[test]
fn loads_the_spec_example() {
    let c = load(SPEC_EXAMPLE).expect("valid");
    assert_eq!(c.cluster, "paxos");
    assert_eq!(c.proposers.len(), 2);
    assert_eq!(c.acceptors.len(), 5);
    assert_eq!(c.quorum(), 3);
    assert_eq!(c.proposers[1].id, 2);
    assert_eq!(c.proposers[1].addr, "127.0.0.1:7002");
    assert_eq!(c.node, NodeSettings::default());
    assert!(!c.chaos.enabled());
    assert_eq!(c.data_dir_for(Role::Acceptor, 3).expect("acceptor 3"), Path::new("data").join("acceptor-3"));
    assert_eq!(c.data_dir_for(Role::Proposer, 1).expect("proposer 1"), Path::new("data").join("proposer-1"));
}

#[test]
fn defaults_apply_without_a_node_section() {
    let c = load(MINIMAL).expect("valid");
    assert_eq!(
        c.node,
        NodeSettings {
            data_dir: PathBuf::from("data"),
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            tick_ms: 10,
            fsync: true,
        }
    );
    assert_eq!(c.cluster, "paxos");
    assert_eq!(c.quorum(), 1);
}

#[test]
fn the_cluster_name_comes_from_the_file() {
    let c = load(&format!("cluster = \"prod-eu.1\"\n{MINIMAL}")).expect("valid");
    assert_eq!(c.cluster, "prod-eu.1");
}

#[test]
fn a_member_overrides_the_node_defaults() {
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
heartbeat_ms = 50
tick_ms = 5
[[acceptors]]
id = 7
addr = "127.0.0.1:7101"
data_dir = "/mnt/fast"
fsync = false
election_timeout_ms = 900
[node]
data_dir = "state"
tick_ms = 20
"#;
    let c = load(text).expect("valid");
    let p = c.settings_for(Role::Proposer, 1).expect("proposer 1");
    assert_eq!(
        p,
        NodeSettings {
            data_dir: PathBuf::from("state"),
            heartbeat_ms: 50,
            election_timeout_ms: 500,
            tick_ms: 5,
            fsync: true,
        }
    );
    let a = c.settings_for(Role::Acceptor, 7).expect("acceptor 7");
    assert_eq!(
        a,
        NodeSettings {
            data_dir: PathBuf::from("/mnt/fast"),
            heartbeat_ms: 100,
            election_timeout_ms: 900,
            tick_ms: 20,
            fsync: false,
        }
    );
    assert_eq!(c.data_dir_for(Role::Acceptor, 7).expect("acceptor 7"), PathBuf::from("/mnt/fast/acceptor-7"));
    assert_eq!(c.data_dir_for(Role::Proposer, 1).expect("proposer 1"), PathBuf::from("state/proposer-1"));
}

#[test]
fn an_unknown_member_is_an_error_and_member_finds_by_role_and_id() {
    let c = load(SPEC_EXAMPLE).expect("valid");
    assert_eq!(c.member(Role::Acceptor, 4).map(|m| m.addr.as_str()), Some("127.0.0.1:7104"));
    assert!(c.member(Role::Proposer, 4).is_none());
    assert_eq!(c.members(Role::Proposer).len(), 2);
    let err = c.settings_for(Role::Proposer, 9).expect_err("no proposer 9");
    assert_eq!(err.key(), "proposers");
    assert!(err.problem().contains("no proposer with id 9"), "{err}");
    assert!(err.problem().contains("1, 2"), "{err}");
    assert!(c.data_dir_for(Role::Acceptor, 6).is_err());
}

#[test]
fn quorum_is_a_majority_of_acceptors() {
    let mut text = String::from("[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\"\n");
    for (n, quorum) in [(1, 1), (3, 2), (5, 3), (7, 4)] {
        let mut t = text.clone();
        for id in 1..=n {
            t.push_str(&format!("[[acceptors]]\nid = {id}\naddr = \"127.0.0.1:{}\"\n", 7100 + id));
        }
        assert_eq!(load(&t).expect("valid").quorum(), quorum, "{n} acceptors");
    }
    text.clear();
}

#[test]
fn host_names_and_ipv6_addresses_are_kept_as_written() {
    let text = r#"
[[proposers]]
id = 1
addr = "proposer-1:7001"
[[acceptors]]
id = 1
addr = "[::1]:7101"
"#;
    let c = load(text).expect("valid");
    assert_eq!(c.proposers[0].addr, "proposer-1:7001");
    assert_eq!(c.acceptors[0].addr, "[::1]:7101");
}

#[test]
fn role_display_and_parse() {
    assert_eq!(Role::Proposer.to_string(), "proposer");
    assert_eq!(Role::Acceptor.to_string(), "acceptor");
    assert_eq!("acceptor".parse::<Role>(), Ok(Role::Acceptor));
    assert_eq!("proposer".parse::<Role>(), Ok(Role::Proposer));
    assert!("learner".parse::<Role>().is_err());
}

// ---- the file itself ----

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.toml");
    let err = ClusterConfig::load_with_env(&path, no_env()).expect_err("missing");
    check_err(&err, &path, "", "no such file");
}

#[test]
fn an_unreadable_file_is_named() {
    // A directory cannot be read as a file, whoever runs the test (even root).
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ClusterConfig::load_with_env(dir.path(), no_env()).expect_err("a directory");
    check_err(&err, dir.path(), "", "cannot read the file");
}

#[test]
fn a_file_that_is_not_utf8_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bin.toml");
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let err = ClusterConfig::load_with_env(&path, no_env()).expect_err("binary");
    check_err(&err, &path, "", "not valid UTF-8");
}

#[test]
fn a_toml_syntax_error_names_line_and_column_on_one_line() {
    let text = "[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\n";
    // The string is not closed: the parser stops at the end of line 3.
    let err = expect_err(text, &[], "line 3, column 23", "invalid TOML");
    assert!(!err.to_string().contains('\n'));
    let err = expect_err("[node\n", &[], "line 1, column 6", "invalid TOML");
    assert!(err.problem().contains("expected"), "{err}");
}

#[test]
fn a_key_given_twice_is_a_syntax_error() {
    let text = "[[proposers]]\nid = 1\nid = 2\naddr = \"127.0.0.1:7001\"\n";
    expect_err(text, &[], "line 3, column 1", "invalid TOML");
}

// ---- keys ----

#[test]
fn an_unknown_top_level_key_is_named() {
    expect_err(&format!("clutser = \"x\"\n{MINIMAL}"), &[], "clutser", "unknown key");
    expect_err(&with_minimal("[nodes]\nfsync = true\n"), &[], "nodes", "unknown key");
}

#[test]
fn an_unknown_key_in_a_member_is_named() {
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
[[acceptors]]
id = 2
adress = "127.0.0.1:7102"
"#;
    let err = expect_err(text, &[], "acceptors[1].adress", "unknown key");
    assert!(err.problem().contains("`addr`"), "lists what is expected: {err}");
}

#[test]
fn an_unknown_key_in_node_is_named() {
    expect_err(&with_minimal("[node]\nheartbeat = 100\n"), &[], "node.heartbeat", "unknown key");
}

#[test]
fn an_unknown_key_in_chaos_is_named() {
    expect_err(&with_minimal("[chaos]\nloss = 0.1\n"), &[], "chaos.loss", "unknown key");
}

#[test]
fn a_missing_id_is_named() {
    let text = r#"
[[proposers]]
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;
    expect_err(text, &[], "proposers[0].id", "missing");
}

#[test]
fn a_missing_addr_is_named() {
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
"#;
    expect_err(text, &[], "acceptors[0].addr", "missing");
}

#[test]
fn id_zero_is_invalid() {
    let text = r#"
[[proposers]]
id = 0
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;
    expect_err(text, &[], "proposers[0].id", "ids start at 1");
}

#[test]
fn a_negative_or_huge_id_is_a_type_error() {
    let text = |id: &str| {
        format!(
            "[[proposers]]\nid = {id}\naddr = \"127.0.0.1:7001\"\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n"
        )
    };
    expect_err(&text("-1"), &[], "proposers[0].id", "u32");
    expect_err(&text("4294967296"), &[], "proposers[0].id", "u32");
}

#[test]
fn a_duplicate_id_within_a_role_is_refused_with_both_places() {
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 3
addr = "127.0.0.1:7101"
[[acceptors]]
id = 1
addr = "127.0.0.1:7102"
[[acceptors]]
id = 3
addr = "127.0.0.1:7103"
"#;
    let file = write(text);
    let err = ClusterConfig::load_with_env(&file.path, no_env()).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        format!("{}: acceptors[2].id: duplicate id 3 (also acceptors[0])", file.path.display())
    );
}

#[test]
fn the_same_id_in_both_roles_is_fine() {
    let c = load(MINIMAL).expect("proposer 1 and acceptor 1 are different nodes");
    assert!(c.member(Role::Proposer, 1).is_some());
    assert!(c.member(Role::Acceptor, 1).is_some());
}

#[test]
fn a_duplicate_address_across_roles_is_refused() {
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7001"
"#;
    expect_err(text, &[], "acceptors[0].addr", "duplicate address 127.0.0.1:7001 (also proposers[0])");
}

#[test]
fn a_duplicate_address_spelled_differently_is_refused() {
    let text = r#"
[[proposers]]
id = 1
addr = "Acceptor-1:7101"
[[acceptors]]
id = 1
addr = "acceptor-1:07101"
"#;
    expect_err(text, &[], "acceptors[0].addr", "duplicate address");
}

/// `localhost` may resolve to 127.0.0.1 or ::1: either spelling beside it on
/// the same port is one socket named twice, whichever comes first. Another
/// loopback address, or another port, is not.
#[test]
fn localhost_and_a_loopback_address_on_one_port_are_a_duplicate() {
    for (a, b) in [
        ("localhost:7001", "127.0.0.1:7001"),
        ("127.0.0.1:7001", "LOCALHOST:7001"),
        ("[::1]:7001", "localhost:07001"),
        ("localhost:7001", "localhost:7001"),
    ] {
        let text = format!("[[proposers]]\nid = 1\naddr = {a:?}\n[[acceptors]]\nid = 1\naddr = {b:?}\n");
        let err = load(&text).expect_err(b);
        assert_eq!(err.key(), "acceptors[0].addr", "{a} and {b}: {err}");
        assert!(
            err.to_string().contains("duplicate address") && err.to_string().contains("(also proposers[0])"),
            "{err}"
        );
    }
    for (a, b) in
        [("localhost:7001", "127.0.0.2:7001"), ("localhost:7001", "127.0.0.1:7002"), ("127.0.0.1:7001", "[::1]:7001")]
    {
        let text = format!("[[proposers]]\nid = 1\naddr = {a:?}\n[[acceptors]]\nid = 1\naddr = {b:?}\n");
        load(&text).unwrap_or_else(|e| panic!("{a} and {b} are two sockets: {e}"));
    }
    assert!(same_address("localhost:7001", "[0::1]:7001") && !same_address("localhost:7001", "bad"));
}

#[test]
fn a_malformed_address_is_refused() {
    for bad in [
        "127.0.0.1",
        "127.0.0.1:",
        ":7101",
        "127.0.0.1:70000",
        "127.0.0.1:0",
        "127.0.0.1:http",
        "127.0.0.1:+7101",
        "::1:7101",
        "[::1]",
        "[not-v6]:7101",
        "my host:7101",
        "",
    ] {
        let text = format!("[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\"\n[[acceptors]]\nid = 1\naddr = {bad:?}\n");
        let err = load(&text).expect_err(bad);
        assert_eq!(err.key(), "acceptors[0].addr", "{bad:?}: {err}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn parse_addr_normalizes() {
    assert_eq!(parse_addr("LocalHost:07001"), Ok("localhost:7001".to_owned()));
    assert_eq!(parse_addr("[0:0::1]:7001"), Ok("[::1]:7001".to_owned()));
    assert_eq!(parse_addr("10.0.0.1:65535"), Ok("10.0.0.1:65535".to_owned()));
    assert!(parse_addr("10.0.0.1:65536").is_err());
}

// ---- the member sets ----

#[test]
fn an_empty_acceptor_set_is_refused() {
    let text = "[[proposers]]\nid = 1\naddr = \"127.0.0.1:7001\"\n";
    expect_err(text, &[], "acceptors", "no acceptors");
    let text = format!("acceptors = []\n{text}");
    expect_err(&text, &[], "acceptors", "no acceptors");
}

/// An even acceptor set loads (membership may leave a running cluster with
/// one, and a file kept up to date names it) but cannot start a cluster:
/// `even_genesis` says why, in the one line a daemon on an empty data dir exits 2 with.
#[test]
fn an_even_acceptor_count_cannot_start_a_cluster() {
    let file = write(&with_minimal("[[acceptors]]\nid = 2\naddr = \"127.0.0.1:7102\"\n"));
    let c = ClusterConfig::load_with_env(&file.path, no_env()).expect("an even set loads");
    let err = c.even_genesis().expect("but cannot start a cluster");
    check_err(
        &err,
        &file.path,
        "acceptors",
        "2 acceptors: an even acceptor count tolerates no more failures than one fewer; use an odd count",
    );
    assert!(load(MINIMAL).expect("valid").even_genesis().is_none(), "an odd set can");
}

#[test]
fn no_proposers_is_refused() {
    let text = "[[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n";
    expect_err(text, &[], "proposers", "no proposers");
}

#[test]
fn members_as_a_table_instead_of_a_list_is_a_type_error() {
    let text = "[proposers]\nid = 1\naddr = \"127.0.0.1:7001\"\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n";
    expect_err(text, &[], "proposers", "expected a list of [[proposers]] entries");
}

// ---- timing ----

#[test]
fn heartbeat_zero_is_refused() {
    expect_err(&with_minimal("[node]\nheartbeat_ms = 0\n"), &[], "node.heartbeat_ms", "at least 1");
}

#[test]
fn election_timeout_must_exceed_twice_the_heartbeat() {
    expect_err(
        &with_minimal("[node]\nheartbeat_ms = 100\nelection_timeout_ms = 200\n"),
        &[],
        "node.election_timeout_ms",
        "greater than 2 * heartbeat_ms",
    );
    load(&with_minimal("[node]\nheartbeat_ms = 100\nelection_timeout_ms = 201\n")).expect("201 > 200");
}

#[test]
fn tick_zero_or_above_the_heartbeat_is_refused() {
    expect_err(&with_minimal("[node]\ntick_ms = 0\n"), &[], "node.tick_ms", "at least 1");
    expect_err(
        &with_minimal("[node]\nheartbeat_ms = 50\ntick_ms = 51\n"),
        &[],
        "node.tick_ms",
        "must not exceed heartbeat_ms",
    );
    load(&with_minimal("[node]\nheartbeat_ms = 50\ntick_ms = 50\n")).expect("equal is fine");
}

#[test]
fn a_member_override_that_breaks_a_timing_rule_names_the_member_key() {
    // The member's heartbeat against the [node] election timeout of 500.
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[proposers]]
id = 2
addr = "127.0.0.1:7002"
heartbeat_ms = 250
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;
    expect_err(text, &[], "proposers[1].heartbeat_ms", "greater than 2 * heartbeat_ms");
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
tick_ms = 0
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
"#;
    expect_err(text, &[], "proposers[0].tick_ms", "at least 1");
    let text = r#"
[[proposers]]
id = 1
addr = "127.0.0.1:7001"
[[acceptors]]
id = 1
addr = "127.0.0.1:7101"
data_dir = ""
"#;
    expect_err(text, &[], "acceptors[0].data_dir", "must not be empty");
}

// ---- types ----

#[test]
fn a_string_where_a_number_is_expected_names_the_key() {
    expect_err(
        &with_minimal("[node]\nheartbeat_ms = \"fast\"\n"),
        &[],
        "node.heartbeat_ms",
        "invalid type: string \"fast\", expected u64",
    );
    // Even a string of digits: the file is typed, unlike the environment.
    expect_err(&with_minimal("[node]\nheartbeat_ms = \"100\"\n"), &[], "node.heartbeat_ms", "invalid type");
    let text =
        "[[proposers]]\nid = \"one\"\naddr = \"127.0.0.1:7001\"\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n";
    expect_err(text, &[], "proposers[0].id", "invalid type");
}

#[test]
fn other_wrong_types_name_the_key() {
    expect_err(&with_minimal("[node]\nfsync = 1\n"), &[], "node.fsync", "expected a boolean");
    expect_err(&with_minimal("[node]\nheartbeat_ms = 1.5\n"), &[], "node.heartbeat_ms", "invalid type");
    expect_err(&format!("cluster = 7\n{MINIMAL}"), &[], "cluster", "invalid type");
    let text = "[[proposers]]\nid = 1\naddr = 7001\n[[acceptors]]\nid = 1\naddr = \"127.0.0.1:7101\"\n";
    expect_err(text, &[], "proposers[0].addr", "invalid type");
    expect_err(&format!("node = 5\n{MINIMAL}"), &[], "node", "invalid type: integer `5`, expected a table");
}

#[test]
fn an_invalid_cluster_name_is_refused() {
    expect_err(&format!("cluster = \"\"\n{MINIMAL}"), &[], "cluster", "empty");
    expect_err(&format!("cluster = \"my cluster\"\n{MINIMAL}"), &[], "cluster", "contains ' '");
    let long = "x".repeat(65);
    expect_err(&format!("cluster = \"{long}\"\n{MINIMAL}"), &[], "cluster", "longer than");
}

// ---- chaos ----

#[test]
fn chaos_is_off_by_default_and_parsed_when_given() {
    let c = load(MINIMAL).expect("valid");
    assert!(!c.chaos.enabled());
    let c = load(&with_minimal("[chaos]\nseed = 42\n")).expect("valid");
    assert!(!c.chaos.enabled(), "a seed alone injects nothing");
    assert_eq!(c.chaos.seed, 42);
    let c = load(&with_minimal("[chaos]\ndrop = 0.1\nduplicate = 0.05\ndelay_ms = 20\nreorder = 1\nseed = 7\n"))
        .expect("valid");
    assert!(c.chaos.enabled());
    assert_eq!(c.chaos.drop, 0.1);
    assert_eq!(c.chaos.duplicate, 0.05);
    assert_eq!(c.chaos.delay_ms, 20);
    assert_eq!(c.chaos.reorder, 1.0, "an integer is a fine probability");
    assert_eq!(c.chaos.seed, 7);
    let c = load(&with_minimal("[chaos]\ndelay_ms = 5\n")).expect("valid");
    assert!(c.chaos.enabled(), "a delay alone is a fault");
}

#[test]
fn a_chaos_probability_outside_zero_to_one_is_refused() {
    expect_err(&with_minimal("[chaos]\ndrop = 1.5\n"), &[], "chaos.drop", "not a probability");
    expect_err(&with_minimal("[chaos]\nduplicate = -0.1\n"), &[], "chaos.duplicate", "not a probability");
    expect_err(&with_minimal("[chaos]\nreorder = nan\n"), &[], "chaos.reorder", "nan and inf are not allowed");
}

// ---- the environment ----

#[test]
fn the_environment_overrides_node_keys() {
    let c = load_env(
        SPEC_EXAMPLE,
        &[
            ("PAXOS_NODE__DATA_DIR", "/var/lib/paxos"),
            ("PAXOS_NODE__FSYNC", "false"),
            ("PAXOS_NODE__HEARTBEAT_MS", "50"),
            ("PAXOS_NODE__ELECTION_TIMEOUT_MS", "300"),
            ("PAXOS_NODE__TICK_MS", "5"),
        ],
    )
    .expect("valid");
    assert_eq!(
        c.node,
        NodeSettings {
            data_dir: PathBuf::from("/var/lib/paxos"),
            heartbeat_ms: 50,
            election_timeout_ms: 300,
            tick_ms: 5,
            fsync: false,
        }
    );
    assert_eq!(c.data_dir_for(Role::Acceptor, 2).expect("acceptor 2"), PathBuf::from("/var/lib/paxos/acceptor-2"));
}

#[test]
fn the_environment_sets_the_cluster_name_verbatim() {
    let c = load_env(MINIMAL, &[("PAXOS_CLUSTER", "0123")]).expect("valid");
    assert_eq!(c.cluster, "0123", "a name of digits is not turned into a number");
    let c = load_env(MINIMAL, &[("PAXOS_NODE__DATA_DIR", "1e5")]).expect("valid");
    assert_eq!(c.node.data_dir, PathBuf::from("1e5"));
}

#[test]
fn the_environment_overrides_chaos_keys() {
    let c = load_env(MINIMAL, &[("PAXOS_CHAOS__DROP", "0.25"), ("PAXOS_CHAOS__SEED", "18446744073709551615")])
        .expect("valid");
    assert_eq!(c.chaos.drop, 0.25);
    assert_eq!(c.chaos.seed, u64::MAX);
    assert!(c.chaos.enabled());
}

#[test]
fn the_binaries_variables_are_not_config_keys() {
    let c = load_env(
        MINIMAL,
        &[
            ("PAXOS_ID", "3"),
            ("PAXOS_LISTEN", "0.0.0.0:7101"),
            ("PAXOS_LOG_FORMAT", "json"),
            ("PAXOS_CONFIG", "/etc/paxos.toml"),
            ("PATH", "/usr/bin"),
            ("paxos_node__fsync", "false"),
        ],
    )
    .expect("none of these is a config key");
    let plain = load(MINIMAL).expect("valid");
    assert_eq!((c.cluster, c.node, c.chaos), (plain.cluster, plain.node, plain.chaos));
}

#[test]
fn booleans_from_the_environment_accept_common_spellings() {
    for (raw, want) in [("0", false), ("FALSE", false), ("off", false), ("1", true), ("Yes", true)] {
        let c = load_env(MINIMAL, &[("PAXOS_NODE__FSYNC", raw)]).expect(raw);
        assert_eq!(c.node.fsync, want, "{raw}");
    }
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let c = load_env(MINIMAL, &[("PAXOS_NODE__HEARTBEAT_MS", ""), ("PAXOS_CLUSTER", "")]).expect("valid");
    assert_eq!(c.node.heartbeat_ms, 100);
    assert_eq!(c.cluster, "paxos");
}

#[test]
fn an_unknown_variable_with_double_underscore_names_the_variable() {
    let err = expect_err(MINIMAL, &[("PAXOS_NODE__BOGUS", "1")], "PAXOS_NODE__BOGUS", "unknown key `bogus` in [node]");
    assert!(err.problem().contains("PAXOS_NODE__DATA_DIR"), "{err}");
    expect_err(MINIMAL, &[("PAXOS_NODES__FSYNC", "false")], "PAXOS_NODES__FSYNC", "unknown configuration variable");
    expect_err(MINIMAL, &[("PAXOS_ACCEPTORS__0__ADDR", "0.0.0.0:1")], "PAXOS_ACCEPTORS__0__ADDR", "only in the file");
    expect_err(MINIMAL, &[("PAXOS_NODE__FSYNC__X", "1")], "PAXOS_NODE__FSYNC__X", "unknown key");
}

#[test]
fn a_mistyped_variable_names_the_variable() {
    expect_err(
        MINIMAL,
        &[("PAXOS_NODE__HEARTBEAT_MS", "fast")],
        "PAXOS_NODE__HEARTBEAT_MS",
        "expected a non-negative integer, got \"fast\"",
    );
    expect_err(MINIMAL, &[("PAXOS_NODE__FSYNC", "maybe")], "PAXOS_NODE__FSYNC", "expected true or false");
    expect_err(MINIMAL, &[("PAXOS_CHAOS__DROP", "lots")], "PAXOS_CHAOS__DROP", "expected a number");
}

#[test]
fn a_variable_that_breaks_a_rule_names_key_and_variable() {
    expect_err(
        MINIMAL,
        &[("PAXOS_NODE__HEARTBEAT_MS", "0")],
        "node.heartbeat_ms (set by PAXOS_NODE__HEARTBEAT_MS)",
        "at least 1",
    );
    expect_err(MINIMAL, &[("PAXOS_CHAOS__DROP", "2")], "chaos.drop (set by PAXOS_CHAOS__DROP)", "not a probability");
    expect_err(MINIMAL, &[("PAXOS_CLUSTER", "a b")], "cluster (set by PAXOS_CLUSTER)", "contains");
}

#[test]
fn the_environment_cannot_hide_an_error_in_the_file() {
    expect_err(&with_minimal("[node]\nbogus = 1\n"), &[("PAXOS_NODE__FSYNC", "false")], "node.bogus", "unknown key");
}

#[test]
fn the_environment_cannot_replace_a_malformed_section() {
    expect_err(&format!("node = 5\n{MINIMAL}"), &[("PAXOS_NODE__FSYNC", "false")], "node", "expected a table");
    expect_err(
        &with_minimal("[node]\nheartbeat_ms = \"fast\"\n"),
        &[("PAXOS_NODE__HEARTBEAT_MS", "100")],
        "node.heartbeat_ms",
        "invalid type",
    );
}

#[test]
fn the_environment_may_fix_a_value_that_breaks_a_rule() {
    // Types and keys are the file's own business; rules apply to the result.
    let c = load_env(&with_minimal("[node]\nheartbeat_ms = 0\n"), &[("PAXOS_NODE__HEARTBEAT_MS", "100")])
        .expect("valid after the override");
    assert_eq!(c.node.heartbeat_ms, 100);
}

#[test]
fn load_reads_the_process_environment() {
    // No test in this binary sets PAXOS_* variables, so `load` equals
    // `load_with_env` with none, unless the person running it set some.
    let file = write(MINIMAL);
    let ours = std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("PAXOS_"));
    if !ours {
        assert_eq!(
            ClusterConfig::load(&file.path).expect("valid"),
            ClusterConfig::load_with_env(&file.path, no_env()).expect("valid")
        );
    }
}
