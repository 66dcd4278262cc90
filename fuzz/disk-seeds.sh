#!/usr/bin/env bash
# Makes fuzz/seeds-disk: inputs of the `disk` target taken from real logs, so
# that fuzzing starts past the CRC instead of having to forge one.
#   1. A fresh local cluster (scripts/cluster.sh, 2 proposers, 5 acceptors)
#      decides a few values (plain, quoted, non-ASCII, empty); then it stops.
#   2. The log file of acceptor 1 and of proposer 2, each cut after its last
#      record plus 64 bytes of the preallocated zeros, prefixed with the byte 2
#      (the target opens it as a log file): `wal-acceptor`, `wal-proposer`.
#   3. The operations of each of their first records (the payload after its
#      batch number and flags, see paxos_storage::store::encode_batch),
#      prefixed with 0 (acceptor's) or 1 (proposer's): `ops-acceptor-N`,
#      `ops-proposer-N`.
#
#   fuzz/disk-seeds.sh        (needs release binaries: cargo build --release)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${PAXOS_BIN_DIR:-$repo/target/release}
export PAXOS_BIN_DIR=$bin
work=$(mktemp -d "${TMPDIR:-/tmp}/paxos-disk-seeds.XXXXXX")
trap '"$repo/scripts/cluster.sh" down --dir "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$repo/scripts/cluster.sh" up --no-build --dir "$work" >/dev/null
ctl() { "$bin/paxosctl" --config "$work/cluster.toml" "$@" >/dev/null; }
ctl propose "plain"
ctl propose 'a "quoted" \ value'
ctl propose "ünïcödé ✓"
ctl propose ""
ctl bench --values 8 --concurrency 2
"$repo/scripts/cluster.sh" down --dir "$work" >/dev/null

out=$repo/fuzz/seeds-disk
rm -rf "$out"
mkdir -p "$out"
python3 - "$work/data" "$out" <<'EOF'
import struct, sys
data, out = sys.argv[1], sys.argv[2]
for role, node, prefix in (("acceptor", "acceptor-1", 0), ("proposer", "proposer-2", 1)):
    raw = open(f"{data}/{node}/log/0000000001.wal", "rb").read()
    assert raw[:8] == b"PAXWAL01", "a log file starts with its magic"
    at, payloads = 12, []
    while at + 8 <= len(raw):
        length = struct.unpack_from("<I", raw, at)[0]
        if length == 0:
            break  # the preallocated zeros
        payloads.append(raw[at + 8 : at + 8 + length])
        at += 8 + length
    open(f"{out}/wal-{role}", "wb").write(bytes([2]) + raw[: at + 64])
    for i, payload in enumerate(payloads[:4]):
        open(f"{out}/ops-{role}-{i}", "wb").write(bytes([prefix]) + payload[9:])
    print(f"{node}: {len(payloads)} records, {at} bytes")
EOF
