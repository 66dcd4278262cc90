#!/usr/bin/env bash
# Chaos on real daemons: under a steady load from paxosctl, for a bounded time,
# kill (SIGKILL), restart, fail (SIGUSR1) and recover (SIGUSR2) random nodes,
# never more than a majority can bear (at most 2 of 5 acceptors and 1 of 2
# proposers out at once) unless --majority is given; then heal everything and
# check SPEC.md's guarantees on the proposers' logs against what the clients
# were told, with `paxosctl verify`. Prints faults injected, then values
# acknowledged and violations (must be 0); exit code 0 only if there are none.
#
#   scripts/chaos.sh [--duration SECONDS] [--seed N] [--loaders N] [--majority] [--no-build] [--keep]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
bin_dir=$(release_bin_dir "$repo")
duration=30
seed=$RANDOM
loaders=3
majority=0
keep=0
build_flag=()
while [ $# -gt 0 ]; do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --loaders) loaders=$2; shift 2 ;;
        --majority) majority=1; shift ;;
        --no-build) build_flag=(--no-build); shift ;;
        --keep) keep=1; shift ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "chaos.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $duration =~ ^[0-9]+$ ]] || { echo "chaos.sh: --duration takes whole seconds" >&2; exit 2; }
RANDOM=$seed

dir=$(mktemp -d "${TMPDIR:-/tmp}/paxos-chaos.XXXXXX")
cluster() { "$repo/scripts/cluster.sh" "$@" --dir "$dir"; }
ctl() { "$bin_dir/paxosctl" --config "$dir/cluster.toml" "$@"; }
loader_pids=()
cleanup() {
    touch "$dir/stop"
    for pid in "${loader_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    cluster down >/dev/null 2>&1 || true
    if [ $keep = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

echo "chaos: seed $seed, ${duration}s, $loaders loaders, majority faults $([ $majority = 1 ] && echo allowed || echo never)"
cluster up "${build_flag[@]}" --proposers 2 --acceptors 5 >/dev/null

# A loader proposes unique values one call at a time (each call one value after
# another), recording what it attempted before each call and what was acknowledged.
loader() {
    local k=$1 n=0 vals
    while [ ! -e "$dir/stop" ]; do
        vals=()
        for _ in 1 2 3 4 5; do
            n=$((n + 1))
            vals+=("chaos-$k-$n")
        done
        printf '%s\n' "${vals[@]}" >>"$dir/attempted-$k.txt"
        ctl propose --json --timeout 3 "${vals[@]}" >>"$dir/acked-$k.jsonl" 2>>"$dir/loader-$k.err" || true
    done
}
for k in $(seq 1 "$loaders"); do
    loader "$k" &
    loader_pids+=($!)
done

# The fault injector. state[node] is up, down or failed.
declare -A state
nodes=()
for i in 1 2; do nodes+=("proposer $i"); state["proposer $i"]=up; done
for i in 1 2 3 4 5; do nodes+=("acceptor $i"); state["acceptor $i"]=up; done
out_of() {
    local role=$1 c=0 node
    for node in "${nodes[@]}"; do
        [[ $node == "$role "* && ${state[$node]} != up ]] && c=$((c + 1))
    done
    echo $c
}
faults=0
end=$((SECONDS + duration))
while [ $SECONDS -lt $end ]; do
    node=${nodes[$((RANDOM % ${#nodes[@]}))]}
    read -r role id <<<"$node"
    case ${state[$node]} in
        up)
            limit=$([ "$role" = acceptor ] && echo 2 || echo 1)
            if [ $majority = 1 ] || [ "$(out_of "$role")" -lt "$limit" ]; then
                if [ $((RANDOM % 2)) = 0 ]; then
                    cluster kill "$role" "$id"; state[$node]=down
                else
                    cluster fail "$role" "$id"; state[$node]=failed
                fi
                faults=$((faults + 1))
                echo "  t+$((duration - end + SECONDS))s ${state[$node]}: $node"
            fi
            ;;
        down) cluster restart "$role" "$id"; state[$node]=up ;;
        failed) cluster recover "$role" "$id"; state[$node]=up ;;
    esac
    sleep "0.$((2 + RANDOM % 8))"
done

echo "healing"
for node in "${nodes[@]}"; do
    read -r role id <<<"$node"
    case ${state[$node]} in
        down) cluster restart "$role" "$id" ;;
        failed) cluster recover "$role" "$id" ;;
    esac
    state[$node]=up
done
touch "$dir/stop"
for pid in "${loader_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
loader_pids=()

# Liveness: with everything healed a new value is decided promptly (SPEC: within 2 s;
# allow a margin for the restarted nodes' election timeout).
live=1
echo chaos-final >"$dir/attempted-final.txt"
ctl propose --json --timeout 5 "chaos-final" >"$dir/acked-final.jsonl" 2>"$dir/final.err" || live=0

# Both proposers converge on one log.
same=1
read_converged_logs "$dir" ctl || same=0

echo "faults injected: $faults"
[ $live = 1 ] || echo "VIOLATION liveness: a value proposed after healing was not decided within 5 s"
[ $same = 1 ] || echo "VIOLATION liveness: the proposers' logs did not converge within 20 s"
# Each loader proposed one value after another: its instances must increase.
checks=(--log "$dir/log-1.jsonl" --log "$dir/log-2.jsonl")
for f in "$dir"/acked-*.jsonl; do checks+=(--sequential "$f"); done
for f in "$dir"/attempted-*.txt; do checks+=(--proposed "$f"); done
verified=1
"$bin_dir/paxosctl" verify "${checks[@]}" || verified=0
[ $live = 1 ] && [ $same = 1 ] && [ $verified = 1 ]
