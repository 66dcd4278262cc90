#!/usr/bin/env bash
# CI: `scripts/cluster.sh down` then `up` on the same DIR restarts that
# cluster from its data (its cluster.toml and peer key kept), and what was
# decided before is still there, with a leader that decides more. An `up`
# that cannot work says why and leaves nothing running: data without its
# cluster.toml is refused; a node that dies at start (its port taken) is
# named at once and the others are stopped.
#
#   scripts/ci-restart.sh [--no-build]
#
# Prints CLUSTER RESTART: PASS or FAIL last. The cluster lives in a temporary
# dir and is stopped by its recorded PIDs (cluster.sh down) on every exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
bin_dir=$(release_bin_dir "$repo")
build=1
case ${1:-} in
    --no-build) build=0 ;;
    "") ;;
    *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac
[ $build = 0 ] || build_bins "$repo"

dir=$(mktemp -d /tmp/paxos-restart.XXXXXX)
cluster() { PAXOS_BIN_DIR=$bin_dir "$repo/scripts/cluster.sh" "$@" --dir "$dir" --no-build; }
ctl() { "$bin_dir/paxosctl" --config "$dir/cluster.toml" "$@"; }
cleanup() { cluster down >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
fail() {
    echo "ci-restart.sh: $*" >&2
    tail -n 5 "$dir"/logs/*.log >&2 || true
    echo "CLUSTER RESTART: FAIL"
    exit 1
}

cluster up >/dev/null || fail "the first up failed"
ctl propose before-1 before-2 >/dev/null || fail "propose before the restart failed"
ports_before=$(grep '^addr' "$dir/cluster.toml")
cluster down >/dev/null
cluster up || fail "up after down did not bring the same cluster back"
[ "$(grep '^addr' "$dir/cluster.toml")" = "$ports_before" ] || fail "up after down rewrote the members' addresses"
ctl propose after-1 >/dev/null || fail "propose after the restart failed"
log=$(ctl log | cut -f2)
for v in before-1 before-2 after-1; do
    grep -qx "$v" <<<"$log" || fail "$v is not in the log after the restart: $(tr '\n' ' ' <<<"$log")"
done
if cluster down >/dev/null && cluster up --proposers 3 2>/dev/null; then
    fail "up with --proposers on a dir with data should refuse"
fi

# The file gone, the data left: refused, nothing started.
mv "$dir/cluster.toml" "$dir/cluster.toml.away"
if out=$(cluster up 2>&1); then fail "up without cluster.toml over data should refuse"; fi
grep -q "cluster.toml is gone" <<<"$out" || fail "no reason given: $out"
mv "$dir/cluster.toml.away" "$dir/cluster.toml"

# A node that cannot start (its port taken): up fails at once, names it, and stops the others.
port=$(awk '/^\[\[acceptors\]\]/ { a = 1 } a && /^addr/ { print; exit }' "$dir/cluster.toml" | sed 's/.*:\([0-9]*\)".*/\1/')
[ -n "$port" ] || fail "no acceptor port in the file"
python3 -c "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $port)); time.sleep(60)" &
holder=$!
sleep 0.3
started=$SECONDS
if out=$(cluster up 2>&1); then kill "$holder"; fail "up with a port taken should fail: $out"; fi
kill "$holder"
[ $((SECONDS - started)) -lt 20 ] || fail "up took $((SECONDS - started)) s to notice a dead node"
grep -q "acceptor-1 exited" <<<"$out" || fail "the dead node is not named: $out"
[ -z "$(ls -A "$dir/pids" 2>/dev/null)" ] || fail "a failed up left nodes behind: $(ls "$dir/pids")"
cluster up >/dev/null || fail "up after a failed up"
echo "CLUSTER RESTART: PASS"
