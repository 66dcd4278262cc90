#!/bin/sh
# The seed scenario's workload and checks, against a cluster that is already up
# (wherever it runs: loopback ports, network namespaces, a compose network).
# Failing acceptors 1 and 2 is the caller's part, since only it knows how
# (a PID, `ip netns`, `docker compose kill -s SIGUSR1`); this script says
# which acceptors it finds failed or unreachable before it starts.
#
#   seed-check.sh [--config FILE] [--values N] [--prefix P] [--concurrency C]
#                 [--timeout S] [--proposers "1 2"] [--ctl PATH] [--keep DIR]
#
# Proposes N values (default 1000) named P-0001 ... (default P: value) at once,
# as scripts/demo.sh does (one `paxosctl propose --concurrency N`; --concurrency
# C for fewer in flight, 1 for one after another), then checks (SPEC.md, "The
# seed scenario"):
#   - every value was decided, each at an instance of its own;
#   - every proposer's log (--proposers) is the same, and holds every value
#     exactly once, at the instance that paxosctl acknowledged;
#   - no other value with this prefix is in the log.
# Prints `elapsed: <ms> ms for N values` (the propose alone) and PASS or FAIL
# (exit 0 or 1); 2 for a usage error. Values of earlier runs (other prefixes)
# may be in the log: a second run with another prefix checks only its own.
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

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
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
tab=$(printf '\t')

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
if ! ctl propose "$@" >"$dir/proposed.tsv" 2>"$dir/propose.err"; then
    tail -n 20 "$dir/propose.err"
    fail "paxosctl propose did not get every value decided"
fi
end=$(now_ms)
elapsed_ms=$((end - start))

# Every value decided, each at its own instance.
decided=$(grep -c . "$dir/proposed.tsv" || true)
[ "$decided" -eq "$values" ] || fail "$decided of $values values decided"
distinct=$(cut -f1 "$dir/proposed.tsv" | sort -u | grep -c . || true)
[ "$distinct" -eq "$values" ] || fail "only $distinct distinct instances for $values values"
cut -f2 "$dir/proposed.tsv" | sort >"$dir/acked.txt"
sort "$dir/expected.txt" >"$dir/expected.sorted"
cmp -s "$dir/acked.txt" "$dir/expected.sorted" || fail "the decided values are not the proposed ones"

# Every proposer learns the same log: poll until they agree (a follower may lag a moment).
first=${proposers%% *}
same=0
tries=0
while [ $tries -lt 150 ]; do
    tries=$((tries + 1))
    same=1
    for p in $proposers; do
        ctl log --node "$p" >"$dir/log-$p.tsv" 2>/dev/null || true
        if [ ! -s "$dir/log-$p.tsv" ] || ! cmp -s "$dir/log-$first.tsv" "$dir/log-$p.tsv"; then
            same=0
        fi
    done
    if [ $same = 1 ] && [ "$(grep -c "$tab$prefix-" "$dir/log-$first.tsv" || true)" -ge "$values" ]; then
        break
    fi
    same=0
    sleep 0.2
done
[ $same = 1 ] || fail "the logs of proposers $proposers differ or lack values (see log-*.tsv; --keep DIR keeps them)"

# Exactly once in the log: each value of this run appears once, where paxosctl said.
sort "$dir/proposed.tsv" >"$dir/a.tsv"
grep "$tab$prefix-" "$dir/log-$first.tsv" | sort >"$dir/b.tsv" || true
cmp -s "$dir/a.tsv" "$dir/b.tsv" ||
    fail "the log does not hold each value exactly once at its acknowledged instance"
entries=$(grep -c . "$dir/log-$first.tsv" || true)

echo "elapsed: ${elapsed_ms} ms for $values values (log of $entries entries identical on proposers $proposers)"
echo "PASS"
