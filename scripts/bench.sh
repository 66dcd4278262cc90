#!/usr/bin/env bash
# The benchmark: builds the release binaries (unless --no-build), then runs
# crates/paxos-bench with the arguments given. Its help is the tool's own:
#
#   scripts/bench.sh --help
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
bin_dir=$(release_bin_dir "$repo")

build=1
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        # Help needs no fresh build when the tool is there.
        -h|--help) [ ! -x "$bin_dir/paxos-bench" ] || build=0 ;;
    esac
done
if [ $build = 1 ]; then
    build_bins "$repo" -p paxos-bench
fi
if [ ! -x "$bin_dir/paxos-bench" ]; then
    echo "bench.sh: $bin_dir/paxos-bench is missing (cargo build --release -p paxos-bench, or run without --no-build)" >&2
    exit 1
fi
exec "$bin_dir/paxos-bench" --bin-dir "$bin_dir" --repo "$repo" "$@"
