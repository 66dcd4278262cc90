#!/usr/bin/env bash
# CI: the Python client (examples/clients/python), which uses nothing but
# what docs/PROTOCOL.md documents, against real clusters on loopback ports.
#
#   scripts/ci-python.sh [--no-build]     # --no-build: use the release binaries as they are
#
# Runs examples/clients/python/test_client.py twice, each time against a
# cluster of its own that scripts/cluster.sh brings up (2 proposers, 5
# acceptors, [auth] with a fresh peer key):
#   1. peer key only: clients send unsigned requests, and reads prove the
#      client's address with a cookie first;
#   2. with a client key as well (`paxosctl keygen > DIR/client.key`, then
#      `client_key_file = "client.key"` under [auth]; the daemons start with
#      it): only signed requests are answered, and every answer is signed.
# Ends with `PYTHON CLIENT: PASS` (exit 0) or `PYTHON CLIENT: FAIL` (exit 1).
# The clusters are stopped by their recorded PIDs (cluster.sh down) and
# their directories removed, whatever happens. The binaries are found as by
# every script (CARGO_TARGET_DIR, or PAXOS_BIN_DIR).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) build=0; shift ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "ci-python.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$repo"
bin_dir=$(release_bin_dir "$repo")

banner() {
    printf '\n%s\n%s\n%s\n' "################################################################" "$1" \
        "################################################################"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/paxos-ci-python.XXXXXX")
clusters=()   # cluster dirs this script brought up
cleanup() {
    local d
    for d in "${clusters[@]}"; do
        scripts/cluster.sh down --dir "$d" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Prints the end of every node's log of cluster DIR (what a failure needs).
show_logs() {
    local f
    for f in "$1"/logs/*.log; do
        [ -e "$f" ] || continue
        echo "--- $f (last 20 lines)"
        tail -n 20 "$f"
    done
}

if [ $build = 1 ]; then
    build_bins "$repo"
fi
check_bins "$bin_dir" || { banner "PYTHON CLIENT: FAIL (no binaries)"; exit 1; }
command -v python3 >/dev/null || { banner "PYTHON CLIENT: FAIL (python3 is not installed)"; exit 1; }
python3 --version

# run_against NAME CLIENT_KEY: brings up a cluster in $work/NAME (with a client
# key when CLIENT_KEY is 1), runs the tests against it; fails if any fails.
run_against() {
    local name=$1 client_key=$2 dir=$work/$1
    printf '\n=== python client: cluster %s (%s)\n' "$name" "$(date -u +%H:%M:%S)"
    mkdir -p "$dir"
    clusters+=("$dir")
    local up=(scripts/cluster.sh up --dir "$dir" --no-build)
    if [ "$client_key" = 1 ]; then
        (umask 077 && "$bin_dir/paxosctl" keygen >"$dir/client.key") || return 1
        # cluster.sh writes cluster.toml as it starts the nodes; the daemons (and
        # its paxosctl) take the client key from the environment, relative to
        # the cluster file, and the file gets the same line for the client below.
        up=(env PAXOS_AUTH__CLIENT_KEY_FILE=client.key "${up[@]}")
    fi
    if ! PAXOS_BIN_DIR=$bin_dir "${up[@]}"; then
        show_logs "$dir"
        return 1
    fi
    if [ "$client_key" = 1 ]; then
        sed -i 's/^peer_key_file = "peer.key"$/&\nclient_key_file = "client.key"/' "$dir/cluster.toml"
        grep -q '^client_key_file = "client.key"$' "$dir/cluster.toml" || {
            echo "ci-python.sh: could not add client_key_file to $dir/cluster.toml" >&2
            return 1
        }
    fi
    if ! PAXOS_CONFIG=$dir/cluster.toml python3 examples/clients/python/test_client.py; then
        show_logs "$dir"
        return 1
    fi
    scripts/cluster.sh down --dir "$dir" >/dev/null || return 1
}

if run_against peer-key 0 && run_against client-key 1; then
    banner "PYTHON CLIENT: PASS"
else
    banner "PYTHON CLIENT: FAIL"
    exit 1
fi
