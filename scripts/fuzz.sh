#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, cargo fuzz) of what strangers' bytes
# reach; the targets are in fuzz/fuzz_targets (see fuzz/README.md):
#   datagram  any datagram: the trailer check, the fast decoder against
#             serde_json, and encode(decode(x)) == x's envelopes
#   roles     two proposers and three acceptors, the real core, talking to
#             each other while the input speaks as any member or client
#   disk      any log file, any record body: intact records or a clear error
# Each target starts from its seeds (fuzz/seeds: one datagram of each kind,
# captured from the daemons' tests; fuzz/seeds-disk for `disk`: real log
# files and record bodies, made by fuzz/disk-seeds.sh) and from its corpus of earlier runs
# (fuzz/corpus/<target>, kept out of git). A crash leaves its input in
# fuzz/artifacts/<target>/ and this script exits 1; replay it with
#   cargo +nightly fuzz run -O <target> fuzz/artifacts/<target>/<file>
#
#   scripts/fuzz.sh [--seconds N] [target...]      (default: 60 s each, all three)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        datagram|roles|disk) targets+=("$1"); shift ;;
        *) echo "fuzz.sh: unknown argument $1 (targets: datagram roles disk)" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(datagram roles disk)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: libFuzzer needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

cd "$repo/fuzz"
cargo +nightly fuzz build -O
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=(seeds)
    [ "$target" = disk ] && seeds=(seeds-disk)
    echo "== $target: $seconds s"
    # A crash fails the run; it is told apart from other failures by its input in artifacts/.
    cargo +nightly fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 2>&1 |
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|Done)' || true
    if compgen -G "artifacts/$target/*" >/dev/null; then
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAIL: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
echo "PASS: no crash in ${targets[*]}"
