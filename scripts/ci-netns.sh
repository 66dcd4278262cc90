#!/usr/bin/env bash
# CI: the cluster across network namespaces (scripts/netns.sh), for real:
#
#   1. the seed scenario: acceptors 1 and 2 failed (SIGUSR1), 1000 values from
#      the client namespace, checked (scripts/lib/seed-check.sh); then recovered;
#   2. a partition of the leader, with acceptors 1 and 2, away from the
#      majority: a new leader takes over and decides 200 values; the old one
#      stops deciding (its decided index stays put, a value sent to it times out);
#   3. heal: a value is decided within 2 s (SPEC.md, guarantee 6), then 200 more
#      with both proposers' logs identical;
#   3b. a node replaced: acceptor-3 killed, its data dir deleted, started
#      again: it rebuilds (status `rebuilding`, then `up`), and with acceptors
#      4 and 5 killed, 1, 2 and the rebuilt 3 decide 200 values;
#   4. the daemons' own faults: every node restarted with PAXOS_CHAOS__* (drop,
#      duplicate, delay, reorder) and 10 % loss on one acceptor's interface;
#      200 values; then chaos off again;
#   5. SPEC.md's guarantees over the whole log: agreement (both proposers'
#      logs identical and gap-free), validity, exactly once at the acknowledged
#      instance, order between the phases, and the liveness and leader checks above.
#
# Installs what it needs (iproute2, iptables) when missing, builds the release
# binaries, prints each phase's elapsed time, ends with `NETNS: PASS` (exit 0)
# or `NETNS: FAIL` (exit 1), and always tears the namespaces, route and
# daemons down again. Without root it cannot build namespaces: it says
# `NETNS: SKIPPED (why)` loudly and exits 0.
#
#   scripts/ci-netns.sh [--values N]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
values=1000
while [ $# -gt 0 ]; do
    case $1 in
        --values) values=$2; shift 2 ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "ci-netns.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$repo"

step() { printf '\n=== netns: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
banner() {
    printf '\n%s\n%s\n%s\n' "################################################################" "$1" \
        "################################################################"
}
skip() {
    banner "NETNS: SKIPPED ($1)"
    echo "The namespace cluster did NOT run. This is not a pass."
    exit 0
}

step "prerequisites"
[ "$(id -u)" = 0 ] || skip "network namespaces need root; run as root"
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
if [ ${#missing[@]} -gt 0 ]; then
    echo "netns: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}" >/dev/null
fi
# Can this machine make a namespace at all (a container without CAP_NET_ADMIN cannot)?
probe=pxn-probe-$$
if ! err=$(ip netns add "$probe" 2>&1); then
    skip "cannot create a network namespace: $err"
fi
ip netns del "$probe"

bin_dir=$(release_bin_dir "$repo")
step "build"
build_bins "$repo"

# A fixed place, so that a run that was interrupted is cleaned up by the next one.
dir=${TMPDIR:-/tmp}/paxos-ci-netns
nx() { "$repo/scripts/netns.sh" --dir "$dir" --bin-dir "$bin_dir" "$@"; }
ctl() { nx ctl "$@"; }
# paxosctl from inside NODE's namespace (it sees what NODE sees).
ctl_in() { local n=$1; shift; nx exec "$n" "$bin_dir/paxosctl" --config "$repo/deploy/compose.toml" "$@"; }
seed_check() {
    nx exec client sh "$repo/scripts/lib/seed-check.sh" --config "$repo/deploy/compose.toml" \
        --ctl "$bin_dir/paxosctl" "$@"
}
cleanup() {
    local rc=$?
    nx down >/dev/null 2>&1 || true
    if [ $rc = 0 ]; then rm -rf "$dir"; fi
    exit "$rc"
}
trap cleanup EXIT
# An interrupted run cleans up too.
trap 'exit 130' INT TERM
nx down >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"

fail() {
    echo "ci-netns.sh: $*" >&2
    for f in "$dir"/logs/*.log; do
        [ -e "$f" ] || continue
        echo "--- $f (last 15 lines)"
        tail -n 15 "$f"
    done
    banner "NETNS: FAIL ($*)"
    echo "(state kept in $dir)"
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The elapsed milliseconds that seed-check printed.
elapsed_of() { sed -n 's/^elapsed: \([0-9]*\) ms.*/\1/p' "$1"; }
leader_of() { sed -En 's/^\{"node":"(proposer-[0-9]+)","role":"leader".*/\1/p'; }
decided_of() { sed -En "s/^\\{\"node\":\"$1\",.*\"decided\":([0-9]+).*/\\1/p"; }

step "up: 7 daemons in 7 namespaces + a client namespace, 10.77.0.0/16 behind a blackhole route"
nx up --no-build || fail "netns up failed"
nx status

# ---- 1. the seed scenario -----------------------------------------------------------
step "1. seed scenario: acceptors 1 and 2 failed (SIGUSR1), $values values from the client namespace"
nx fail acceptor-1
nx fail acceptor-2
seed_check --values "$values" --prefix seed --keep "$dir/seed" | tee "$dir/seed.out" ||
    fail "the seed scenario failed across namespaces"
grep -q '^PASS$' "$dir/seed.out" || fail "the seed scenario failed across namespaces"
seed_ms=$(elapsed_of "$dir/seed.out")
nx recover acceptor-1
nx recover acceptor-2

# ---- 2. partition the leader away from the majority -----------------------------------
step "2. partition the leader (with acceptors 1 and 2) away from the majority"
old=$(ctl status --json | leader_of)
[ -n "$old" ] || fail "no leader before the partition"
case $old in proposer-1) new=proposer-2 ;; *) new=proposer-1 ;; esac
old_decided=$(ctl status --json | decided_of "$old")
echo "netns: leader $old has decided $old_decided; partitioning {$old acceptor-1 acceptor-2}"
part_start=$(now_ms)
nx partition "$old" acceptor-1 acceptor-2
seed_check --values 200 --prefix part --proposers "${new#proposer-}" --keep "$dir/part" | tee "$dir/part.out" ||
    fail "the majority side did not decide"
grep -q '^PASS$' "$dir/part.out" || fail "the majority side did not decide"
failover_ms=$(($(now_ms) - part_start))
ctl status --json >"$dir/status-part.jsonl" || true
[ "$(leader_of <"$dir/status-part.jsonl")" = "$new" ] || fail "$new did not take over: $(cat "$dir/status-part.jsonl")"
echo "netns: $new took over and decided 200 values ${failover_ms} ms after the partition"
# The old leader, seen from its own side: it decides nothing more.
if ctl_in "$old" propose --timeout 3 stuck-1 >/dev/null 2>"$dir/stuck.err"; then
    fail "the partitioned old leader decided a value without a majority"
fi
# (status exits 1 there: the cut-off side has no leader and no majority.)
old_after=$({ ctl_in "$old" status --json || true; } | decided_of "$old")
[ "$old_after" = "$old_decided" ] ||
    fail "the old leader's decided index moved from $old_decided to $old_after while cut off"
echo "netns: $old (cut off) still at decided $old_after; a value sent to it timed out: $(head -n 1 "$dir/stuck.err")"

# ---- 3. heal ------------------------------------------------------------------------
step "3. heal"
nx heal
heal_start=$(now_ms)
ctl propose --json --timeout 2 healed-1 >"$dir/healed.jsonl" || fail "no value decided within 2 s of healing (guarantee 6)"
heal_ms=$(($(now_ms) - heal_start))
echo "netns: first value decided ${heal_ms} ms after healing"
seed_check --values 200 --prefix after --keep "$dir/after" | tee "$dir/after.out" || fail "after healing"
grep -q '^PASS$' "$dir/after.out" || fail "after healing"
nx status

# ---- 3b. replace a node ------------------------------------------------------------------
step "3b. replace acceptor-3: killed, its data dir deleted (a new machine in its place), started again"
# The configuration epoch acceptor NODE reports (0 when it does not answer).
epoch_of() { { ctl status --json 2>/dev/null || true; } | status_epoch "$1"; }
epoch_before=$(epoch_of acceptor-1)
pid=$(cat "$dir/pids/acceptor-3.pid")
nx kill acceptor-3
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
rm -rf "$dir/data/acceptor-3"
replace_start=$(now_ms)
nx restart acceptor-3
# It comes back with another incarnation: `rebuilding` (it copies the decided
# log and never votes meanwhile) until a configuration lets it in again: `up`
# in a later epoch. (Right after its start, before it learns the configuration
# in force, it says `up` in the epoch of the cluster file: not the rebuild.)
deadline=$((SECONDS + 60))
states=
while :; do
    state=$({ ctl status --json 2>/dev/null || true; } | sed -En 's/^\{"node":"acceptor-3",.*"state":"([a-z]+)".*/\1/p')
    case " $states " in *" ${state:-none} "*) ;; *) states="$states ${state:-none}" ;; esac
    [ "$state" != up ] || [ "$(epoch_of acceptor-3)" -le "$epoch_before" ] || break
    [ $SECONDS -lt $deadline ] || fail "the replaced acceptor-3 is not up within 60 s (states seen:$states)"
    sleep 0.1
done
replace_ms=$(($(now_ms) - replace_start))
# It knew it had forgotten (a second "new incarnation" in its log), and a configuration let it in again.
[ "$(grep -c "a new incarnation" "$dir/logs/acceptor-3.log")" -ge 2 ] ||
    fail "the replaced acceptor-3 did not start as a new incarnation"
joined=$(grep "joined a configuration epoch" "$dir/logs/acceptor-3.log" | tail -n 1 | grep -oE 'epoch[=":]+[0-9]+' | head -n 1)
echo "netns: acceptor-3 rebuilt and let in again ${replace_ms} ms after its start on an empty disk (states seen:$states; $joined)"
# The rebuilt acceptor counts: with 4 and 5 killed, 1, 2 and 3 are the majority.
nx kill acceptor-4
nx kill acceptor-5
seed_check --values 200 --prefix replaced --keep "$dir/replaced" | tee "$dir/replaced.out" ||
    fail "acceptors 1, 2 and the rebuilt 3 did not decide"
grep -q '^PASS$' "$dir/replaced.out" || fail "acceptors 1, 2 and the rebuilt 3 did not decide"
nx restart acceptor-4
nx restart acceptor-5
nx status || true

# ---- 4. the daemons' own faults ---------------------------------------------------------
step "4. chaos: every daemon restarted with PAXOS_CHAOS__*, 10 % loss on acceptor-3's interface"
for n in acceptor-1 acceptor-2 acceptor-3 acceptor-4 acceptor-5 proposer-1 proposer-2; do
    PAXOS_CHAOS__DROP=0.02 PAXOS_CHAOS__DUPLICATE=0.05 PAXOS_CHAOS__DELAY_MS=3 PAXOS_CHAOS__REORDER=0.05 \
        PAXOS_CHAOS__SEED=$RANDOM nx restart "$n"
done
nx loss acceptor-3 10
announced=$(grep -l "CHAOS ON" "$dir"/logs/*.log | grep -c . || true)
[ "$announced" = 7 ] || fail "only $announced of 7 daemons announce chaos in their logs"
grep -h "CHAOS ON" "$dir"/logs/proposer-2.log | tail -n 1
seed_check --values 200 --prefix chaos --keep "$dir/chaos" | tee "$dir/chaos.out" || fail "under chaos"
grep -q '^PASS$' "$dir/chaos.out" || fail "under chaos"
chaos_ms=$(elapsed_of "$dir/chaos.out")
ctl status --json | grep -o '"node":"[a-z0-9-]*"\|"chaos\.[a-z]*":[0-9]*' | paste -sd' ' - | sed 's/ "node"/\n"node"/g' || true
nx heal
for n in acceptor-1 acceptor-2 acceptor-3 acceptor-4 acceptor-5 proposer-1 proposer-2; do
    nx restart "$n"
done

# ---- 5. the guarantees over the whole log -------------------------------------------------
step "5. SPEC.md's guarantees over the whole log"
read_converged_logs "$dir" ctl || fail "the two proposers' logs did not converge (see $dir/log-*.jsonl)"
entries=$(grep -c . "$dir/log-1.jsonl")
# Agreement, no gaps, validity (stuck-1 was proposed, never acknowledged: it
# may have landed), exactly once, durability at the acknowledged instance, and
# order between the phases, each acknowledged before the next was proposed.
printf '%s\n' healed-1 stuck-1 >"$dir/others.txt"
"$bin_dir/paxosctl" verify --log "$dir/log-1.jsonl" --log "$dir/log-2.jsonl" --same-logs \
    --phase "$dir/seed/proposed.jsonl" --phase "$dir/part/proposed.jsonl" --phase "$dir/healed.jsonl" \
    --phase "$dir/after/proposed.jsonl" --phase "$dir/replaced/proposed.jsonl" --phase "$dir/chaos/proposed.jsonl" \
    --proposed "$dir/seed/expected.txt" --proposed "$dir/part/expected.txt" --proposed "$dir/after/expected.txt" --proposed "$dir/replaced/expected.txt" \
    --proposed "$dir/chaos/expected.txt" --proposed "$dir/others.txt" | tee "$dir/verify.txt" ||
    fail "SPEC.md's guarantees do not hold over the whole log (see $dir/verify.txt)"
stuck=$(sed -n 's/^{"instance": \([0-9]*\), "value": "stuck-1"}$/at instance \1/p' "$dir/log-1.jsonl")
echo "netns: the value sent to the cut-off leader: ${stuck:-never decided} (proposed, never acknowledged: either is allowed)"

step "down"
nx down

echo
echo "netns: seed scenario (acceptors 1 and 2 failed):      elapsed ${seed_ms} ms for $values values"
echo "netns: leader cut off -> new leader decided 200 values: ${failover_ms} ms after the partition"
echo "netns: healed -> first value decided:                   ${heal_ms} ms"
echo "netns: acceptor-3 replaced (empty disk) -> up:        ${replace_ms} ms"
echo "netns: chaos + 10 % loss on acceptor-3:                 elapsed ${chaos_ms} ms for 200 values"
echo "netns: log of $entries entries, identical on both proposers"
banner "NETNS: PASS (seed scenario ${seed_ms} ms for $values values; failover ${failover_ms} ms; heal ${heal_ms} ms)"
