#!/usr/bin/env bash
# The benchmark of issue 6: our log against etcd, same run, same machine.
#
#   scripts/bench.sh [--quick] [--vs etcd] [--out DIR] [--concurrency "1 4 16"] [--no-build] [--keep]
#
# For each concurrency (1 4 16 64 256; --quick: 1 and 16 with 200 values) it
# starts a FRESH local cluster (2 proposers, 5 acceptors, fsync on) in a temp
# dir, kills acceptors 1 and 2 (SIGKILL), runs `paxosctl bench` with 64-byte
# values, reads every live daemon's peak RSS (VmHWM) right before the teardown,
# and tears down. Then the seed scenario: 1000 values at once (concurrency 1000).
# With --vs etcd it does the same against 5 etcd members on loopback (Debian's
# etcd-server, installed if missing; default fsync behaviour) with 2 followers
# killed, driven by tools/etcd-bench, and shows both rows and the ratio.
# Writes DIR/results.csv, DIR/latency-throughput.svg (gnuplot) and DIR/README.md
# (date, machine, load, table). DIR: docs/bench (--quick: run/bench-quick).
# Binaries come from $PAXOS_BIN_DIR (default target/release). A benchmark, not a
# test: it fails only when something does not run, never on a timing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
bin_dir=$(release_bin_dir "$repo")
bin_given=${PAXOS_BIN_DIR:+1}
# cluster.sh, and its teardown in our trap, must look for the same binaries.
export PAXOS_BIN_DIR=$bin_dir
etcd_bench=$repo/tools/etcd-bench/target/release/etcd-bench
quick=0
vs=
out=
build=1
keep=0
conc_list=
size=64
seed_values=1000

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh: $*" >&2; }

usage() {
    print_help "${BASH_SOURCE[0]}"
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --vs) [ "${2:-}" = etcd ] || die "--vs takes 'etcd'"; vs=etcd; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
        --concurrency) [ $# -ge 2 ] || die "--concurrency needs a list"; conc_list=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

# Values per row: enough for a few seconds of the slower system per row.
values_for() {
    if [ $quick = 1 ]; then echo 200; return; fi
    case $1 in
        1) echo 1000 ;;
        4) echo 4000 ;;
        16) echo 10000 ;;
        64) echo 20000 ;;
        *) echo 40000 ;;
    esac
}
if [ -z "$conc_list" ]; then
    if [ $quick = 1 ]; then conc_list="1 16"; else conc_list="1 4 16 64 256"; fi
fi
for c in $conc_list; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "--concurrency: '$c' is not a positive number"
done
if [ -z "$out" ]; then
    if [ $quick = 1 ]; then out=$repo/run/bench-quick; else out=$repo/docs/bench; fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Installs Debian packages when a command is missing (we are root on the dev
# machines and in CI; elsewhere this says what to install).
need() {
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    note "$cmd is missing; installing the Debian packages: $*"
    if [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 || true
    else
        { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 || true
    fi
    command -v "$cmd" >/dev/null 2>&1
}

# ---------------------------------------------------------------- build
if [ $build = 1 ]; then
    build_bins "$repo"
fi
check_bins "$bin_dir" || exit 1
if [ "$vs" = etcd ]; then
    need etcd etcd-server || die "cannot install etcd (apt-get install etcd-server)"
    need etcdctl etcd-client || die "cannot install etcdctl (apt-get install etcd-client)"
    if [ $build = 1 ]; then
        need protoc protobuf-compiler || die "cannot install protoc (apt-get install protobuf-compiler)"
        cargo build --release --locked -q --manifest-path "$repo/tools/etcd-bench/Cargo.toml"
    fi
    [ -x "$etcd_bench" ] || die "$etcd_bench is missing (cargo build --release --manifest-path tools/etcd-bench/Cargo.toml)"
fi

# ---------------------------------------------------------------- cleanup
work=$(mktemp -d "${TMPDIR:-/tmp}/paxos-bench.XXXXXX")
ours_dirs=()   # cluster dirs that may still hold running daemons
etcd_pids=()   # etcd members we started and may still run

# True when PID still runs the etcd binary (so that we never kill a process we
# did not start, even if the PID was reused).
is_our_etcd() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null || true)
    [ "${exe% (deleted)}" = "$(command -v etcd)" ]
}

cleanup() {
    local d pid
    for d in "${ours_dirs[@]}"; do
        "$repo/scripts/cluster.sh" down --dir "$d" >/dev/null 2>&1 || true
    done
    for pid in "${etcd_pids[@]}"; do
        if is_our_etcd "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if [ $keep = 1 ]; then
        note "kept the clusters' files in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
# shellcheck source=scripts/lib/procs.sh disable=SC1091
. "$repo/scripts/lib/procs.sh"

# Peak RSS (VmHWM) of PID in KiB, or nothing when it is gone.
peak_rss_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# One field of a flat JSON object (numbers only), from stdin.
json_field() {
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}

# Rows, as CSV lines without the header.
rows=()
# Per row and system, the peak RSS of each daemon (`system c=C: name=MiB ...`).
rss_rows=()

# record SYSTEM CONCURRENCY JSON RSS_MAX_MIB RSS_DETAIL
record() {
    local system=$1 c=$2 json=$3 rss=$4 detail=$5 f
    local values vps p50 p99 max elapsed errors
    values=$(json_field values <<<"$json")
    vps=$(json_field values_per_s <<<"$json")
    p50=$(json_field p50_ms <<<"$json")
    p99=$(json_field p99_ms <<<"$json")
    max=$(json_field max_ms <<<"$json")
    elapsed=$(json_field elapsed_s <<<"$json")
    errors=$(json_field errors <<<"$json")
    rows+=("$system,$c,$values,$vps,$p50,$p99,$max,$rss,$elapsed,$errors")
    rss_rows+=("$system c=$c: $detail")
    f=$(printf '%-6s c=%-5s %7s values: %10.0f values/s  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms  %s errors  RSS %s MiB' \
        "$system" "$c" "$values" "$vps" "$p50" "$p99" "$max" "$errors" "$detail")
    note "$f"
}

# ---------------------------------------------------------------- our log
# run_ours CONCURRENCY VALUES: one row on a fresh cluster.
run_ours() {
    local c=$1 n=$2 d json rc=0 f name pid kib max=0 detail=""
    d=$work/paxos-c$c
    mkdir -p "$d"
    ours_dirs+=("$d")
    "$repo/scripts/cluster.sh" up --no-build --dir "$d" --proposers 2 --acceptors 5 >/dev/null
    "$repo/scripts/cluster.sh" kill acceptor 1 --dir "$d"
    "$repo/scripts/cluster.sh" kill acceptor 2 --dir "$d"
    json=$("$bin_dir/paxosctl" --config "$d/cluster.toml" bench --values "$n" --concurrency "$c" \
        --size "$size" --json 2>"$d/bench.err") || rc=$?
    [ -n "$json" ] || { cat "$d/bench.err" >&2; die "paxosctl bench at concurrency $c printed nothing (exit $rc)"; }
    [ $rc = 0 ] || note "paxosctl bench at concurrency $c: some values were not decided: $(head -n 1 "$d/bench.err")"
    # Peak RSS of every daemon still alive, read right before the teardown.
    for f in "$d"/pids/*.pid; do
        name=$(basename "$f" .pid)
        pid=$(cat "$f")
        kib=$(peak_rss_kib "$pid")
        [ -n "$kib" ] || continue
        detail+="${detail:+ }${name/proposer-/p}=$(kib_to_mib "$kib")"
        [ "$kib" -le "$max" ] || max=$kib
    done
    detail=${detail//acceptor-/a}
    "$repo/scripts/cluster.sh" down --dir "$d" >/dev/null
    record paxos "$c" "$json" "$(kib_to_mib "$max")" "$detail"
}

# ---------------------------------------------------------------- etcd
etcd_endpoints=
etcd_members=()   # PID of member i at index i-1

# etcd_up DIR: 5 members on free loopback ports; returns once all 5 agree on a leader.
etcd_up() {
    local d=$1 ports i cluster="" token pid deadline
    read -r -a ports <<<"$(free_ports tcp 10)"
    token=bench-$$-$RANDOM
    for i in 1 2 3 4 5; do
        cluster+="${cluster:+,}m$i=http://127.0.0.1:${ports[$((2 * i - 1))]}"
    done
    etcd_endpoints=
    etcd_members=()
    mkdir -p "$d/logs"
    for i in 1 2 3 4 5; do
        local cport=${ports[$((2 * i - 2))]} pport=${ports[$((2 * i - 1))]}
        etcd_endpoints+="${etcd_endpoints:+,}127.0.0.1:$cport"
        etcd --name "m$i" --data-dir "$d/m$i.etcd" \
            --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
            --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$token" \
            --logger zap --log-outputs stderr >"$d/logs/m$i.log" 2>&1 &
        pid=$!
        etcd_pids+=("$pid")
        etcd_members+=("$pid")
    done
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        if [ "$(etcd_leader 5)" != "" ]; then return 0; fi
        sleep 0.1
    done
    die "etcd: no leader agreed by 5 members after 30 s; logs in $d/logs (run with --keep)"
}

# etcd_leader N: the index (1-5) of the leader when N members answer and agree on it.
etcd_leader() {
    ETCDCTL_API=3 etcdctl --endpoints "$etcd_endpoints" --dial-timeout 1s --command-timeout 1s \
        endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
want, eps = int(sys.argv[1]), sys.argv[2].split(",")
try:
    st = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
leaders = {s["Status"]["leader"] for s in st}
if len(st) < want or len(leaders) != 1 or 0 in leaders:
    sys.exit(0)
for s in st:
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(eps.index(s["Endpoint"].replace("http://", "")) + 1)
' "$1" "$etcd_endpoints" || true
}

# run_etcd CONCURRENCY VALUES: one row on a fresh etcd cluster.
run_etcd() {
    local c=$1 n=$2 d leader killed=0 i pid json rc=0 kib max=0 detail=""
    d=$work/etcd-c$c
    mkdir -p "$d"
    etcd_up "$d"
    leader=$(etcd_leader 5)
    # Two followers down, as two acceptors are on our side; the leader stays.
    for i in 1 2 3 4 5; do
        if [ "$i" = "$leader" ] || [ $killed -ge 2 ]; then continue; fi
        pid=${etcd_members[$((i - 1))]}
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        killed=$((killed + 1))
    done
    json=$("$etcd_bench" --endpoints "$etcd_endpoints" --values "$n" --concurrency "$c" \
        --size "$size" --json 2>"$d/bench.err") || rc=$?
    [ -n "$json" ] || { cat "$d/bench.err" >&2; die "etcd-bench at concurrency $c printed nothing (exit $rc)"; }
    [ $rc = 0 ] || note "etcd-bench at concurrency $c: some PUTs failed: $(head -n 1 "$d/bench.err")"
    for i in 1 2 3 4 5; do
        pid=${etcd_members[$((i - 1))]}
        kib=$(peak_rss_kib "$pid")
        [ -n "$kib" ] || continue
        detail+="${detail:+ }m$i=$(kib_to_mib "$kib")"
        [ "$kib" -le "$max" ] || max=$kib
    done
    # SIGKILL: a leader without its quorum spends seconds on a graceful stop,
    # and these data dirs are thrown away.
    for pid in "${etcd_members[@]}"; do
        if is_our_etcd "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$d"/m*.etcd
    record etcd "$c" "$json" "$(kib_to_mib "$max")" "$detail"
}

# ---------------------------------------------------------------- the runs
load_before=$(uptime)
started=$(date -u +%FT%TZ)
# The code measured: read before this run writes its results (docs/bench is tracked).
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then dirty=" (with uncommitted changes)"; fi
for c in $conc_list; do
    run_ours "$c" "$(values_for "$c")"
    [ "$vs" != etcd ] || run_etcd "$c" "$(values_for "$c")"
done
# The seed scenario: 1000 values at once.
run_ours "$seed_values" "$seed_values"
[ "$vs" != etcd ] || run_etcd "$seed_values" "$seed_values"
load_after=$(uptime)

# ---------------------------------------------------------------- results
csv=$out/results.csv
{
    echo "system,concurrency,values,values_per_s,p50_ms,p99_ms,max_ms,max_rss_mib,elapsed_s,errors"
    printf '%s\n' "${rows[@]}"
} >"$csv"

# The table: each row for both systems, then the ratio ours/etcd.
table() {
    python3 - "$csv" "$seed_values" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
seed = sys.argv[2]
by = {(r["system"], r["concurrency"]): r for r in rows}
order = []
for r in rows:
    if r["concurrency"] not in order:
        order.append(r["concurrency"])
print("| row | system | values | values/s | p50 ms | p99 ms | max ms | elapsed s | errors | max RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in order:
    name = f"seed (1000 at once)" if c == seed else f"c={c}"
    for s in ("paxos", "etcd"):
        r = by.get((s, c))
        if r:
            print(f"| {name} | {s} | {r['values']} | {float(r['values_per_s']):,.0f} | {float(r['p50_ms']):.3f} "
                  f"| {float(r['p99_ms']):.3f} | {float(r['max_ms']):.3f} | {float(r['elapsed_s']):.3f} "
                  f"| {r['errors']} | {r['max_rss_mib']} |")
    a, b = by.get(("paxos", c)), by.get(("etcd", c))
    if a and b:
        def q(k):
            x, y = float(a[k]), float(b[k])
            return f"{x / y:.2f}x" if y > 0 else "-"
        print(f"| {name} | ours/etcd | | **{q('values_per_s')}** | {q('p50_ms')} | {q('p99_ms')} | {q('max_ms')} "
              f"| {q('elapsed_s')} | | {q('max_rss_mib')} |")
EOF
}


machine="$(uname -srm); $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); \
$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; \
data dirs on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
etcd_version=
[ "$vs" != etcd ] || etcd_version=$(etcd --version 2>/dev/null | sed -n 1p)  # sed reads all: no SIGPIPE under pipefail

{
    echo "# Benchmark: $started"
    echo
    echo "- command: \`scripts/bench.sh$([ $quick = 1 ] && echo " --quick")$([ "$vs" = etcd ] && echo " --vs etcd")\`"
    if [ -n "$bin_given" ]; then
        echo "- binaries: \$PAXOS_BIN_DIR=$bin_dir (the commit below is the checkout's, not necessarily theirs)"
    fi
    echo "- commit: $commit$dirty"
    echo "- machine: $machine"
    echo "- load before: ${load_before#*load }"
    echo "- load after: ${load_after#*load }"
    echo "- workload: ${size}-byte values, fsync on, 2 proposers + 5 acceptors with acceptors 1 and 2 killed (SIGKILL);"
    echo "  a fresh cluster per row; latency from the client's first send to the decision."
    [ "$vs" != etcd ] || echo "- peer: $etcd_version, 5 members on loopback with 2 followers killed (SIGKILL), default fsync; tools/etcd-bench PUTs unique keys to the leader over min(C,16) gRPC connections."
    echo
    table
    echo
    echo "Peak RSS (VmHWM, MiB) of each live daemon, read right before the teardown:"
    echo
    printf -- '- %s\n' "${rss_rows[@]}"
    echo
    echo "![latency vs throughput](latency-throughput.svg)"
    if [ -f "$out/PROFILE.md" ]; then
        echo
        echo "What bounds these figures, with the profiles: [PROFILE.md](PROFILE.md)."
    fi
} >"$out/README.md"

# ---------------------------------------------------------------- plot
plot() {
    local gp=$work/plot.gp s c
    {
        echo "set terminal svg size 900,560 dynamic enhanced font 'sans,12' background '#ffffff'"
        echo "set output '$out/latency-throughput.svg'"
        printf 'set title "Latency vs throughput: %s-byte values, fsync on, 5 replicas with 2 killed, concurrency %s\\n%s; %s" noenhanced\n' \
            "$size" "${conc_list// /, }" "$started" "${machine//\"/}"
        echo "set xlabel 'throughput (values/s)'"
        echo "set ylabel 'latency (ms)'"
        echo "set logscale xy"
        echo "set grid"
        echo "set key top left"
        for s in paxos etcd; do
            echo "\$$s << EOD"
            for r in "${rows[@]}"; do
                IFS=, read -r -a f <<<"$r"
                [ "${f[0]}" = "$s" ] || continue
                c=${f[1]}
                [ "$c" != "$seed_values" ] || continue
                echo "${f[3]} ${f[4]} ${f[5]} c=$c"
            done
            echo "EOD"
        done
        local plots=("\$paxos using 1:2 with linespoints lw 2 pt 7 lc rgb '#1b7837' title 'paxos p50'"
            "\$paxos using 1:3 with linespoints lw 2 pt 5 dt 2 lc rgb '#1b7837' title 'paxos p99'"
            "\$paxos using 1:2:4 with labels offset 0,1 font ',9' notitle")
        if [ "$vs" = etcd ]; then
            plots+=("\$etcd using 1:2 with linespoints lw 2 pt 7 lc rgb '#b2182b' title 'etcd p50'"
                "\$etcd using 1:3 with linespoints lw 2 pt 5 dt 2 lc rgb '#b2182b' title 'etcd p99'"
                "\$etcd using 1:2:4 with labels offset 0,1 font ',9' notitle")
        fi
        local IFS=,
        echo "plot ${plots[*]}"
    } >"$gp"
    gnuplot "$gp"
}
if need gnuplot gnuplot-nox; then
    plot
else
    note "gnuplot is missing and could not be installed; no plot (apt-get install gnuplot-nox)"
fi

echo
cat "$out/README.md"
echo
echo "wrote $csv, $out/README.md$([ -f "$out/latency-throughput.svg" ] && echo ", $out/latency-throughput.svg")"
