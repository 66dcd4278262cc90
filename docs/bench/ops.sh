#!/usr/bin/env bash
# Operations measured on a local durable cluster (2 proposers, 5 acceptors, all
# up, auth, fsync), with `paxosctl bench --concurrency 64` running across each
# event: a membership change (acceptor 6 added, then removed), a leader
# transfer, a returning proposer; then the latency of a linearizable `log`
# against `--stale`, and the rebuild of an acceptor whose data dir is deleted
# after 1M more values. Timings are a benchmark, never a test.
#
#   docs/bench/ops.sh [OUT_DIR]      (default /tmp/ops-results; needs the release binaries)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${PAXOS_BIN_DIR:-$repo/target/release}
dir=${TMPDIR:-/tmp}/ops-cluster
out=${1:-/tmp/ops-results}
rm -rf "$out"; mkdir -p "$out"
cs() { "$repo/scripts/cluster.sh" "$@" --dir "$dir"; }
ctl() { "$bin/paxosctl" --config "$dir/cluster.toml" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
cs down >/dev/null 2>&1 || true
rm -rf "$dir"
cs up --no-build >/dev/null
ctl status

# free port
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== 1. membership: add acceptor 6, remove it, under bench c=64 (12 s)"
p6=$(port)
PAXOS_NODE__DATA_DIR=$dir/data PAXOS_AUTH__PEER_KEY_FILE=$dir/peer.key \
    "$bin/paxos-acceptor" --config "$dir/cluster.toml" --id 6 --listen "127.0.0.1:$p6" >"$dir/logs/acceptor-6.log" 2>&1 &
a6=$!
ctl bench --concurrency 64 --duration 12 --warmup 1 --json >"$out/member-bench.json" &
bp=$!
sleep 4
t0=$(now_ms); ctl member add acceptor 6 "127.0.0.1:$p6" >"$out/member-add.txt"; t1=$(now_ms)
echo "member add took $((t1 - t0)) ms" | tee -a "$out/summary.txt"
sleep 3
t0=$(now_ms); ctl member remove acceptor 6 >"$out/member-remove.txt"; t1=$(now_ms)
echo "member remove took $((t1 - t0)) ms" | tee -a "$out/summary.txt"
wait $bp
echo "bench across add+remove: $(cat "$out/member-bench.json")" | tee -a "$out/summary.txt"
kill $a6 2>/dev/null || true
echo "== baseline bench c=64 (8 s), nothing happening"
ctl bench --concurrency 64 --duration 8 --warmup 1 --json | tee "$out/baseline.json" | sed 's/^/baseline: /' | tee -a "$out/summary.txt"

echo "== 2. leader transfer under bench c=64"
leader=$(ctl status --json | sed -En 's/^\{"node":"proposer-([0-9]+)","role":"leader".*/\1/p')
other=$((3 - leader))
ctl bench --concurrency 64 --duration 8 --warmup 1 --json >"$out/transfer-bench.json" &
bp=$!
sleep 4
t0=$(now_ms); ctl leader transfer "$other" >"$out/transfer.txt"; t1=$(now_ms)
echo "leader transfer $leader -> $other took $((t1 - t0)) ms" | tee -a "$out/summary.txt"
wait $bp
echo "bench across transfer: $(cat "$out/transfer-bench.json")" | tee -a "$out/summary.txt"

echo "== 3. returning proposer: kill the follower ($leader), restart it under bench"
ctl bench --concurrency 64 --duration 8 --warmup 1 --json >"$out/return-bench.json" &
bp=$!
sleep 2
cs kill proposer "$leader" >/dev/null
sleep 2
cs restart proposer "$leader" >/dev/null
wait $bp
echo "bench across follower kill + return: $(cat "$out/return-bench.json")" | tee -a "$out/summary.txt"
ctl status | tee -a "$out/summary.txt"

echo "== 4. log read latency: linearizable vs --stale, 200 reads of 1 entry each"
for mode in lin stale; do
    flag=; [ $mode = stale ] && flag=--stale
    python3 - "$bin/paxosctl" "$dir/cluster.toml" "$mode" $flag <<'EOF' | tee -a "$out/summary.txt"
import subprocess, sys, time
ctl, cfg, mode = sys.argv[1:4]; extra = sys.argv[4:]
ts = []
for i in range(200):
    t = time.perf_counter()
    subprocess.run([ctl, "--config", cfg, "log", "--from", str(1000 + i), "--limit", "1", *extra], check=True, stdout=subprocess.DEVNULL)
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"log {mode}: 200 runs of `paxosctl log --limit 1`: p50 {ts[100]:.2f} ms, p99 {ts[197]:.2f} ms (whole process)")
EOF
done
# In-process latency (without process start): paxosctl log --limit 1 measures the process; the difference is the confirmation.

echo "== 5. rebuild an acceptor at 1M slots"
ctl bench --concurrency 256 --values 1000000 --json | sed 's/^/fill 1M: /' | tee -a "$out/summary.txt"
ctl status
cs kill acceptor 3 >/dev/null
sleep 0.5
du -sh "$dir/data/acceptor-3" | sed 's/^/acceptor-3 data before wipe: /' | tee -a "$out/summary.txt"
rm -rf "$dir/data/acceptor-3"
t0=$(now_ms)
cs restart acceptor 3 >/dev/null
seen=
while :; do
    st=$({ ctl status --json 2>/dev/null || true; } | sed -En 's/^\{"node":"acceptor-3",.*"state":"([a-z]+)".*/\1/p')
    case "$seen" in *" ${st:-none}@"*) ;; *) seen="$seen ${st:-none}@$(( $(now_ms) - t0 ))ms" ;; esac
    [ "$st" = up ] && break
    sleep 0.05
done
t1=$(now_ms)
echo "acceptor-3 rebuilt at 1M slots: up $((t1 - t0)) ms after its start on an empty dir (states:$seen)" | tee -a "$out/summary.txt"
du -sh "$dir/data/acceptor-3" | sed 's/^/acceptor-3 data after rebuild: /' | tee -a "$out/summary.txt"
cs down >/dev/null
