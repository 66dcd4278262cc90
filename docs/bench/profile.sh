#!/usr/bin/env bash
# How docs/bench/PROFILE.md was measured; run it again to check a change.
#
#   docs/bench/profile.sh [--values N] [--concurrency C] [--cg-values N] [--out DIR]
#
# Every step uses a fresh cluster (2 proposers, 5 acceptors, fsync on,
# acceptors 1 and 2 killed) and `paxosctl bench` at C in flight (default 64)
# with 64-byte values; proposer 2 leads (the highest id).
#  0. The disk: fdatasync latency alone and with 3 or 5 writers at once.
#  1. CPU accounting at full speed (N values, default 20000): user and system
#     CPU (from /proc) of each daemon and of the client, the daemons' counters
#     (datagrams, batches, fsyncs), per value; then 2000 values at concurrency 1
#     for the latency floor. Then all of it again with fsync off.
#  2. If perf is there: `perf trace -s` of the leader and acceptor 3 (syscall
#     counts and times: where the loop waits), and `perf record -g` of the
#     leader (kernel against user time).
#  3. Callgrind of the leader, then of acceptor 3: the daemon is restarted under
#     `valgrind --tool=callgrind --instr-atstart=no`, gets back in (the proposer
#     is handed the leadership: `paxosctl leader transfer 2`), instrumentation
#     is switched on only for the bench (default 5000 values: the daemon runs
#     ~50x slower), then it stops by SIGTERM.
#     `callgrind_annotate`, inclusive and self, goes to DIR with the raw files.
# DIR defaults to docs/bench/profile/. Needs valgrind and line tables: $PAXOS_BIN_DIR,
# default target/profiling (cargo build --profile profiling -p paxos-node -p paxosctl).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin_dir=${PAXOS_BIN_DIR:-$repo/target/profiling}
export PAXOS_BIN_DIR=$bin_dir
values=20000
conc=64
cg_values=5000
out=$repo/docs/bench/profile
while [ $# -gt 0 ]; do
    case $1 in
        --values) values=$2; shift 2 ;;
        --concurrency) conc=$2; shift 2 ;;
        --cg-values) cg_values=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/paxos-profile.XXXXXX")
dirs=()      # clusters that may still run
bg_pids=()   # valgrind and perf processes we started
cleanup() {
    local d pid
    for pid in "${bg_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for d in "${dirs[@]}"; do "$repo/scripts/cluster.sh" down --dir "$d" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster() { "$repo/scripts/cluster.sh" "$@"; }
ctl() { "$bin_dir/paxosctl" --config "$d/cluster.toml" "$@"; }
bench() { ctl bench --values "$1" --concurrency "$conc" --timeout 60 --json; }
pid_of() { cat "$d/pids/$1.pid"; }
live=(proposer-1 proposer-2 acceptor-3 acceptor-4 acceptor-5)

# fresh NAME [cluster.sh flags]: a new cluster in $work/NAME with acceptors 1 and 2 killed; sets d.
fresh() {
    d=$work/$1
    dirs+=("$d")
    cluster up --no-build --dir "$d" "${@:2}" >/dev/null
    cluster kill acceptor 1 --dir "$d"
    cluster kill acceptor 2 --dir "$d"
}

{
    echo "# docs/bench/profile.sh, $(date -u +%FT%TZ)"
    echo "# $(uptime)"
    echo "# $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); data dirs on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
} >"$out/cpu.txt"

# ---------------------------------------------------------------- 0. the disk
echo "## fdatasync of 300 bytes, K writers at once (docs/bench/fsync_probe.py)" | tee -a "$out/cpu.txt"
python3 "$repo/docs/bench/fsync_probe.py" "$work" | tee -a "$out/cpu.txt"

# ---------------------------------------------------------------- 1. CPU accounting
# account LABEL [cluster.sh flags]
account() {
    local label=$1 n u s
    fresh "cpu-$label" "${@:2}"
    declare -A u0 s0 u1 s1
    for n in "${live[@]}"; do
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$(pid_of "$n")/stat")
        u0[$n]=$u
        s0[$n]=$s
    done
    /usr/bin/time -f '%U %S' -o "$work/client.time" \
        "$bin_dir/paxosctl" --config "$d/cluster.toml" bench --values "$values" --concurrency "$conc" --json >"$work/bench.json"
    for n in "${live[@]}"; do
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$(pid_of "$n")/stat")
        u1[$n]=$u
        s1[$n]=$s
    done
    ctl status --json >"$work/status.json"
    # One value at a time, for the latency floor (after the counters were read).
    ctl bench --values 2000 --concurrency 1 --json >"$work/bench1.json"
    {
        echo
        echo "## CPU accounting, $label: paxosctl bench --values $values --concurrency $conc"
        cat "$work/bench.json"
        printf '%-11s %7s %7s %9s %9s %9s %9s %8s %8s %12s\n' \
            node user_s sys_s us/value dgram_in dgram_out batches fsyncs v/fsync dgrams/batch
        for n in "${live[@]}"; do
            python3 - "$n" $((u1[$n] - u0[$n])) $((s1[$n] - s0[$n])) "$(getconf CLK_TCK)" "$values" "$work/status.json" <<'EOF'
import json, sys
name, ut, st, hz, values, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
for line in open(path):
    s = json.loads(line)
    if s["node"] != name:
        continue
    c = s["counters"]
    din, dout, batches, fsyncs = c["datagrams.in"], c["datagrams.out"], c["batches"], c["fsyncs"]
    u, k = ut / hz, st / hz
    print(f"{name:<11} {u:7.2f} {k:7.2f} {(u + k) * 1e6 / values:9.1f} {din:9d} {dout:9d} {batches:9d} "
          f"{fsyncs:8d} {values / max(fsyncs, 1):8.1f} {din / max(batches, 1):12.1f}")
EOF
        done
        echo "then paxosctl bench --values 2000 --concurrency 1:"
        cat "$work/bench1.json"
        read -r u s <"$work/client.time"
        python3 -c 'import sys; u, s, v = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(f"{sys.argv[4]:<11} {u:7.2f} {s:7.2f} {(u + s) * 1e6 / v:9.1f}")' "$u" "$s" "$values" paxosctl
    } | tee -a "$out/cpu.txt"
    cluster down --dir "$d" >/dev/null
}
account fsync
account no-fsync --no-fsync

# ---------------------------------------------------------------- 2. perf
if command -v perf >/dev/null; then
    fresh perf-trace
    perf trace -s -p "$(pid_of proposer-2),$(pid_of acceptor-3)" -o "$work/trace.txt" &
    bg_pids+=("$!")
    sleep 1
    bench "$values" | tee "$out/perf-trace.bench.json"
    sleep 0.5
    kill -INT "${bg_pids[-1]}"
    wait "${bg_pids[-1]}" || true
    grep -v '^$' "$work/trace.txt" >"$out/perf-trace.txt"
    cluster down --dir "$d" >/dev/null

    fresh perf-record
    perf record -q -e cpu-clock -F 4999 -g -o "$work/perf.data" -p "$(pid_of proposer-2)" 2>/dev/null &
    bg_pids+=("$!")
    sleep 0.5
    bench $((values * 2)) | tee "$out/perf-record.bench.json"
    kill -INT "${bg_pids[-1]}"
    wait "${bg_pids[-1]}" || true
    {
        echo "# perf record -e cpu-clock -g of the leader during bench --values $((values * 2)) --concurrency $conc"
        echo "# by shared object:"
        perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$'
        echo "# syscalls, inclusive (children):"
        perf report -i "$work/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
            grep -E '__x64_sys|do_syscall_64|handle_softirqs' | sed -n '1,12p'
        echo "# top symbols, self:"
        perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | sed -n '1,30p'
    } >"$out/perf-record.leader.txt"
    cluster down --dir "$d" >/dev/null
else
    echo "profile.sh: no perf here; skipping perf trace and perf record" >&2
fi

# ---------------------------------------------------------------- 3. callgrind
# wait_until NODE up|leader: until `status` shows NODE up (and leading).
wait_until() {
    local deadline=$((SECONDS + 60))
    until { ctl status --json 2>/dev/null || true; } | python3 -c '
import json, sys
want, lead = sys.argv[1], sys.argv[2] == "leader"
for line in sys.stdin:
    s = json.loads(line)
    if s["node"] == want and s["state"] == "up" and (not lead or s["role"] == "leader"):
        sys.exit(0)
sys.exit(1)' "$1" "$2"; do
        [ $SECONDS -lt $deadline ] || { echo "profile.sh: $1 is not $2 under valgrind within 60 s" >&2; exit 1; }
        sleep 0.5
    done
}

# profile ROLE ID: restart that daemon under callgrind and bench with it.
profile() {
    local role=$1 id=$2 pid vg cg deadline
    fresh "cg-$role-$id"
    pid=$(pid_of "$role-$id")
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    cg=$work/callgrind.$role-$id.out
    setsid valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg" \
        "$bin_dir/paxos-$role" --config "$d/cluster.toml" --id "$id" >"$d/logs/$role-$id.valgrind.log" 2>&1 &
    vg=$!
    bg_pids+=("$vg")
    # Back in the game: the node answers; a proposer is handed the leadership,
    # which a returning proposer never takes back by itself.
    wait_until "$role-$id" up
    if [ "$role" = proposer ]; then
        ctl leader transfer "$id" --timeout 60 >/dev/null ||
            { echo "profile.sh: $role $id could not be made leader under valgrind" >&2; exit 1; }
        wait_until "$role-$id" leader
    fi
    sleep 1
    callgrind_control -i on "$vg" >/dev/null
    bench "$cg_values" | tee "$out/callgrind.$role-$id.bench.json"
    callgrind_control -i off "$vg" >/dev/null
    ctl status --json >"$out/callgrind.$role-$id.status.json"
    kill -TERM "$vg"
    wait "$vg" || true
    cluster down --dir "$d" >/dev/null
    cp "$cg" "$out/"
    # Into files first: `| head` would end callgrind_annotate with SIGPIPE.
    callgrind_annotate --inclusive=yes "$cg" >"$work/incl.txt" 2>/dev/null
    callgrind_annotate "$cg" >"$work/self.txt" 2>/dev/null
    sed -n '1,100p' "$work/incl.txt" >"$out/callgrind.$role-$id.inclusive.txt"
    sed -n '1,100p' "$work/self.txt" >"$out/callgrind.$role-$id.self.txt"
}
profile proposer 2
profile acceptor 3
echo "wrote $out"
