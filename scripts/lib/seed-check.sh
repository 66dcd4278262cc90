#!/bin/sh
# The seed scenario's workload and checks, against a cluster that is already up
# (wherever it runs: loopback ports, network namespaces, a compose network).
# Failing acceptors 1 and 2 is the caller's part, since only it knows how
# (a PID, `ip netns`, `docker compose kill -s SIGUSR1`); this script says
# which acceptors it finds failed or unreachable before it starts.
#
#   seed-check.sh [--config FILE] [--values N] [--prefix P] [--concurrency C]
#                 [--timeout S] [--proposers "1 2"] [--ctl PATH] [--keep DIR] [--label TEXT]
#
# Proposes N values (default 1000) named P-0001 ... (default P: value) at once,
# as scripts/demo.sh does (one `paxosctl propose --concurrency N`; --concurrency
# C for fewer in flight, 1 for one after another), then checks with `paxosctl
# verify` (SPEC.md, "The seed scenario"):
#   - every value was decided, each at an instance of its own;
#   - every proposer's log (--proposers) is the same, and holds every value
#     exactly once, at the instance that paxosctl acknowledged;
#   - no other value with this prefix is in the log.
# Prints `elapsed: <ms> ms for N values` (the propose alone; `(TEXT)` after it
# with --label) and PASS or FAIL (exit 0 or 1); 2 for a usage error. Values of
# earlier runs (other prefixes) may be in the log: a second run with another
# prefix checks only its own.
#
# POSIX sh on purpose: it runs on the host (bash, dash) and in the images
# (busybox ash or dash), where no bash is installed.
set -eu

config=${PAXOS_CONFIG:-}
values=1000
prefix=value
concurrency=
timeout=120
proposers="1 2"
ctl=${PAXOSCTL:-paxosctl}
keep=
label=

# The header above is the help: printed from the second line to the first
# line that is not a comment.
usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --config) config=$2; shift 2 ;;
        --values) values=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --proposers) proposers=$2; shift 2 ;;
        --ctl) ctl=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        --label) label=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "seed-check: unknown argument $1" >&2; usage 2 ;;
    esac
done
[ -n "$config" ] || { echo "seed-check: no cluster file: pass --config FILE or set PAXOS_CONFIG" >&2; exit 2; }
case $values in ''|*[!0-9]*) echo "seed-check: --values must be a number" >&2; exit 2 ;; esac
case $prefix in ''|*[!A-Za-z0-9_.-]*) echo "seed-check: --prefix: letters, digits, . _ - only" >&2; exit 2 ;; esac

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    dir=$keep
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/seed-check.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
fi

ctl() { "$ctl" --config "$config" "$@"; }

# Milliseconds since some fixed point: date's %N where it has it (GNU), else
# /proc/uptime (busybox; 10 ms resolution).
now_ms() {
    ns=$(date +%s%N)
    case $ns in
        *[!0-9]*) awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime ;;
        *) echo $((ns / 1000000)) ;;
    esac
}

fail() {
    echo "FAIL: $*"
    exit 1
}

# What the caller set up, for the record: which nodes are failed or unreachable.
if ctl status --json >"$dir/status.jsonl" 2>/dev/null || [ -s "$dir/status.jsonl" ]; then
    down=$(sed -En 's/^\{"node":"([a-z0-9-]*)".*"state":"(failed|unreachable)".*/\1 (\2)/p' "$dir/status.jsonl" |
        paste -sd, - | sed 's/,/, /g')
    leader=$(sed -En 's/^\{"node":"([a-z0-9-]*)","role":"leader".*/\1/p' "$dir/status.jsonl" | paste -sd, -)
    echo "seed-check: leader: ${leader:-none}; failed or unreachable: ${down:-none}"
fi

awk -v n="$values" -v p="$prefix" 'BEGIN { for (i = 1; i <= n; i++) printf "%s-%04d\n", p, i }' >"$dir/expected.txt"
# The values have no blanks, so word splitting hands them over as arguments.
# shellcheck disable=SC2046
set -- $(cat "$dir/expected.txt")
[ $# -eq "$values" ] || fail "generated $# values, not $values"
set -- --timeout "$timeout" --concurrency "${concurrency:-$values}" "$@"

echo "seed-check: proposing $values values ($prefix-0001 ...)"
start=$(now_ms)
if ! ctl propose --json "$@" >"$dir/proposed.jsonl" 2>"$dir/propose.err"; then
    tail -n 20 "$dir/propose.err"
    fail "paxosctl propose did not get every value decided"
fi
end=$(now_ms)
elapsed_ms=$((end - start))

# Every proposer learns the same log: read them until `paxosctl verify` finds
# them identical and holding every value (a follower may lag a moment), then
# once more for the verdict.
verify() {
    set --
    for p in $proposers; do
        set -- "$@" --log "$dir/log-$p.jsonl"
    done
    "$ctl" verify "$@" --acked "$dir/proposed.jsonl" --proposed "$dir/expected.txt" --prefix "$prefix-" \
        --all-acked --same-logs
}
read_logs() {
    for p in $proposers; do
        ctl log --node "$p" --json >"$dir/log-$p.jsonl" 2>/dev/null || true
    done
}
tries=0
while [ $tries -lt 150 ]; do
    tries=$((tries + 1))
    read_logs
    if verify >"$dir/verify.txt" 2>&1; then
        break
    fi
    sleep 0.2
done
if ! verify >"$dir/verify.txt" 2>&1; then
    cat "$dir/verify.txt"
    fail "the logs of proposers $proposers break a guarantee or differ (see log-*.jsonl; --keep DIR keeps them)"
fi
entries=$(grep -c . "$dir/log-${proposers%% *}.jsonl" || true)

echo "elapsed: ${elapsed_ms} ms for $values values${label:+ ($label)} (log of $entries entries identical on proposers $proposers)"
echo "PASS"
