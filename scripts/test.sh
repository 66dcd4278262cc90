#!/usr/bin/env bash
# The project's test command: every crate's tests, the simulator's seed sweep
# and the process tests that start the real daemons.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
