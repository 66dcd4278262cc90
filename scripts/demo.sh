#!/usr/bin/env bash
# The seed scenario, end to end on real daemons:
#   2 proposers and 5 acceptors on loopback; acceptors 1 and 2 are failed
#   (SIGUSR1, or SIGKILL with --kill); 1000 values are proposed at once; all
#   1000 must be decided exactly once and both proposers' logs must be identical.
# Prints the elapsed time and PASS or FAIL (exit code 0 or 1), and tears down.
#
#   scripts/demo.sh [--kill] [--values N] [--no-build]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=${PAXOS_BIN_DIR:-$repo/target/release}
how=fail
values=1000
build_flag=()
while [ $# -gt 0 ]; do
    case $1 in
        --kill) how="kill"; shift ;;
        --values) values=$2; shift 2 ;;
        --no-build) build_flag=(--no-build); shift ;;
        -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

fail() {
    echo "FAIL: $*"
    echo "logs of the run:"
    for f in "$dir"/logs/*.log; do
        echo "--- $f (last 20 lines)"
        tail -n 20 "$f"
    done
    exit 1
}

cluster up "${build_flag[@]}" --proposers 2 --acceptors 5
ctl() { "$bin_dir/paxosctl" --config "$dir/cluster.toml" "$@"; }

echo "acceptors 1 and 2: $how"
cluster "$how" acceptor 1
cluster "$how" acceptor 2

mapfile -t vals < <(seq -f "value-%04g" 1 "$values")
start=$(date +%s%N)
# All values at once: one client per value, each with one request in flight.
if ! ctl propose --concurrency "$values" "${vals[@]}" >"$dir/proposed.tsv" 2>"$dir/propose.err"; then
    cat "$dir/propose.err"
    fail "paxosctl propose did not get every value decided"
fi
end=$(date +%s%N)
elapsed_ms=$(((end - start) / 1000000))

# Every value decided, each at its own instance.
decided=$(wc -l <"$dir/proposed.tsv")
[ "$decided" -eq "$values" ] || fail "$decided of $values values decided"
distinct=$(cut -f1 "$dir/proposed.tsv" | sort -u | wc -l)
[ "$distinct" -eq "$values" ] || fail "only $distinct distinct instances for $values values"
cut -f2 "$dir/proposed.tsv" | sort >"$dir/acked.txt"
printf '%s\n' "${vals[@]}" | sort >"$dir/expected.txt"
cmp -s "$dir/acked.txt" "$dir/expected.txt" || fail "the decided values are not the proposed ones"

# Both proposers learn the same log: poll until they agree (the follower may lag a moment).
same=0
for _ in $(seq 1 100); do
    ctl log --node 1 >"$dir/log-1.tsv" 2>/dev/null || true
    ctl log --node 2 >"$dir/log-2.tsv" 2>/dev/null || true
    if [ -s "$dir/log-1.tsv" ] && cmp -s "$dir/log-1.tsv" "$dir/log-2.tsv" \
        && [ "$(grep -c . "$dir/log-1.tsv")" -ge "$values" ]; then
        same=1
        break
    fi
    sleep 0.1
done
[ $same = 1 ] || fail "the proposers' logs differ (or lack values): see log-1.tsv / log-2.tsv"

# Exactly once in the log: each value appears once, and where paxosctl said.
sort "$dir/proposed.tsv" >"$dir/a.tsv"
grep -P '\t' "$dir/log-1.tsv" | sort >"$dir/b.tsv" || true  # no-op lines have no tab
cmp -s "$dir/a.tsv" "$dir/b.tsv" || fail "the log does not hold each value exactly once at its acknowledged instance"

echo "elapsed: ${elapsed_ms} ms for $values values ($how acceptors 1 and 2)"
echo "PASS"
