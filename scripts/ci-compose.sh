#!/usr/bin/env bash
# CI: docker-compose.yml for real (scripts/compose.sh), after installing what
# it needs when missing: Debian's docker.io (the engine), docker-compose and
# busybox-static (the shell of the offline image). No image is pulled: the
# image is built FROM scratch out of static binaries.
#
# Ends with `COMPOSE: PASS` (exit 0), `COMPOSE: FAIL` (exit 1), or, when no
# Docker engine can be had here, a loud `COMPOSE: SKIPPED (why)` after
# validating docker-compose.yml with `docker-compose config` (exit 0 only if
# that passes; a skip is never reported as a pass).
#
#   scripts/ci-compose.sh [--values N]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

printf '\n=== compose: prerequisites (%s)\n' "$(date -u +%H:%M:%S)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "compose: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # A failed install is not fatal here: compose.sh then says what is missing (SKIPPED or FAIL).
        if ! { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }; then
            echo "compose: apt-get could not install ${missing[*]}" >&2
        fi
    else
        echo "compose: ${missing[*]} missing and cannot be installed here (needs root and apt-get)" >&2
    fi
fi

exec "$repo/scripts/compose.sh" "$@"
