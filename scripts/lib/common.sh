# shellcheck shell=bash
# What every script of scripts/ shares (bash; sourced, not run): where the
# binaries are, how to build them, and the help text.

# The directory cargo builds into: $CARGO_TARGET_DIR or build.target-dir when
# set (cargo metadata applies both), else <repo>/target.
target_dir() {
    local repo=$1 dir
    dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    echo "${dir:-${CARGO_TARGET_DIR:-$repo/target}}"
}

# Where the release binaries are: $PAXOS_BIN_DIR when set, else <target>/release.
release_bin_dir() {
    if [ -n "${PAXOS_BIN_DIR:-}" ]; then
        echo "$PAXOS_BIN_DIR"
    else
        echo "$(target_dir "$1")/release"
    fi
}

# Builds the three binaries in release mode (quietly), into the target dir
# release_bin_dir names: build_bins REPO [-p OTHER-PACKAGE...].
build_bins() {
    local repo=$1
    shift
    (cd "$repo" && cargo build --release --locked -q -p paxos-node -p paxosctl "$@" --bins)
}

# Fails unless the three binaries are in DIR.
check_bins() {
    local dir=$1 b
    for b in paxos-proposer paxos-acceptor paxosctl; do
        if [ ! -x "$dir/$b" ]; then
            echo "$dir/$b is missing (build with: cargo build --release -p paxos-node -p paxosctl)" >&2
            return 1
        fi
    done
}

# The configuration epoch of NODE in the `paxosctl status --json` lines read
# on stdin (0 when NODE is not among them: it did not answer).
status_epoch() {
    local e
    e=$(sed -En "s/^\\{\"node\":\"$1\",.*\"epoch\":([0-9]+).*/\\1/p")
    echo "${e:-0}"
}

# Prints the help of SCRIPT: its header comment, from the second line to the
# first line that is not a comment, without the leading "# ". The header is
# the only copy of the help, so the two cannot drift apart.
print_help() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# Reads the logs of proposers 1 and 2 into DIR/log-1.jsonl and DIR/log-2.jsonl
# with the command CTL... (paxosctl with its cluster file, maybe inside a
# namespace) until they are the same, for up to 20 s; fails if they never are.
read_converged_logs() {
    local dir=$1 _
    shift
    for _ in $(seq 1 100); do
        "$@" log --node 1 --json >"$dir/log-1.jsonl" 2>/dev/null || true
        "$@" log --node 2 --json >"$dir/log-2.jsonl" 2>/dev/null || true
        if [ -s "$dir/log-1.jsonl" ] && cmp -s "$dir/log-1.jsonl" "$dir/log-2.jsonl"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}
