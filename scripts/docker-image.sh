#!/usr/bin/env bash
# Builds the image of docker-compose.yml without pulling anything: statically
# linked binaries in an image FROM scratch (deploy/Dockerfile.offline), with
# busybox for the shell of the health check and the seed check.
#
#   scripts/docker-image.sh [--tag paxos:local] [--no-build] [--context DIR]
#
# Static binaries: the musl target when rustup has it installed, else glibc
# linked statically (`-C target-feature=+crt-static` on x86_64-unknown-linux-gnu;
# its getaddrinfo still reads /etc/hosts and asks DNS, which is all a node
# needs to find its peers). busybox comes from Debian's busybox-static,
# installed with apt-get when missing (as root). --no-build uses binaries that
# are already built; --context keeps the build context in DIR.
#
# With registry access, `docker compose build` (deploy/Dockerfile) makes an
# image with the same layout the conventional way.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
tag=paxos:local
build=1
ctx=

die() { echo "docker-image.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --tag) tag=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --context) ctx=$2; shift 2 ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

command -v docker >/dev/null || die "docker is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd; see scripts/compose.sh)"

# The static target: musl if installed, else glibc with crt-static.
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    rustflags=${RUSTFLAGS:-}
else
    target=x86_64-unknown-linux-gnu
    rustflags="${RUSTFLAGS:-} -C target-feature=+crt-static"
fi
bin_dir=$(target_dir "$repo")/$target/release
bins=(paxos-acceptor paxos-proposer paxosctl)

if [ $build = 1 ]; then
    echo "docker-image.sh: building static binaries for $target"
    # With --target, RUSTFLAGS reach only the target's code, not build scripts
    # and proc macros, and the output goes to target/<triple>/: the usual
    # target/release stays as it is.
    (cd "$repo" && RUSTFLAGS="$rustflags" cargo build --release --locked -q --target "$target" -p paxos-node -p paxosctl --bins)
fi
for b in "${bins[@]}"; do
    [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing (run without --no-build)"
    # A dynamically linked binary has a program interpreter; it would not start FROM scratch.
    if readelf -l "$bin_dir/$b" | grep -q 'Requesting program interpreter'; then
        die "$bin_dir/$b is dynamically linked; it cannot run in an image FROM scratch"
    fi
done

busybox=/bin/busybox
if ! [ -x "$busybox" ] || readelf -l "$busybox" | grep -q 'Requesting program interpreter'; then
    [ "$(id -u)" = 0 ] || die "needs Debian's busybox-static: apt-get install busybox-static (as root)"
    echo "docker-image.sh: installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi

if [ -n "$ctx" ]; then
    rm -rf "$ctx"
    mkdir -p "$ctx"
    keep_ctx=1
else
    ctx=$(mktemp -d "${TMPDIR:-/tmp}/paxos-image.XXXXXX")
    keep_ctx=0
fi
cleanup() { if [ "$keep_ctx" = 0 ]; then rm -rf "$ctx"; fi; }
trap cleanup EXIT

root=$ctx/rootfs
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/etc/paxos"
for b in "${bins[@]}"; do
    strip -o "$root/usr/local/bin/$b" "$bin_dir/$b"
done
install -m 0755 "$repo/scripts/lib/seed-check.sh" "$root/usr/local/bin/paxos-seed-check"
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0644 "$repo/deploy/compose.toml" "$root/etc/paxos/cluster.toml"
printf 'root:x:0:0:root:/root:/bin/sh\npaxos:x:10001:10001:paxos:/data:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\npaxos:x:10001:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cp "$repo/deploy/Dockerfile.offline" "$ctx/Dockerfile"

echo "docker-image.sh: building $tag FROM scratch"
# The classic builder: it needs no BuildKit and no buildx plugin, and FROM
# scratch pulls nothing. (Newer docker clients warn that it is deprecated.)
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "docker-image.sh: built $tag ($((size / 1024 / 1024)) MiB, $target)"
