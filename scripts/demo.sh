#!/usr/bin/env bash
# The seed scenario, end to end on real daemons:
#   2 proposers and 5 acceptors on loopback; acceptors 1 and 2 are failed
#   (SIGUSR1, or SIGKILL with --kill); 1000 values are proposed at once; all
#   1000 must be decided exactly once and both proposers' logs must be identical.
# Prints the elapsed time and PASS or FAIL (exit code 0 or 1), and tears down.
# The workload and its checks are scripts/lib/seed-check.sh's (paxosctl verify).
#
#   scripts/demo.sh [--kill] [--values N] [--no-build]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
bin_dir=$(release_bin_dir "$repo")
how=fail
values=1000
build_flag=()
while [ $# -gt 0 ]; do
    case $1 in
        --kill) how="kill"; shift ;;
        --values) values=$2; shift 2 ;;
        --no-build) build_flag=(--no-build); shift ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/paxos-demo.XXXXXX")
cluster() { "$repo/scripts/cluster.sh" "$@" --dir "$dir"; }
cleanup() {
    cluster down >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

cluster up "${build_flag[@]}" --proposers 2 --acceptors 5

echo "acceptors 1 and 2: $how"
cluster "$how" acceptor 1
cluster "$how" acceptor 2

if ! "$repo/scripts/lib/seed-check.sh" --config "$dir/cluster.toml" --ctl "$bin_dir/paxosctl" \
    --values "$values" --label "$how acceptors 1 and 2"; then
    echo "logs of the run:"
    for f in "$dir"/logs/*.log; do
        echo "--- $f (last 20 lines)"
        tail -n 20 "$f"
    done
    exit 1
fi
