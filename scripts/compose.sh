#!/usr/bin/env bash
# docker-compose.yml for real, on this machine, as CI runs it:
#
#   1. a Docker engine: the one that answers, else our own dockerd (root only;
#      no iptables, no default bridge, container networks in 10.78.0.0/16);
#   2. the image, built offline FROM scratch (scripts/docker-image.sh), or
#      with --dockerfile by `compose build` from deploy/Dockerfile (needs a registry);
#   3. `up`, and wait until every container is healthy and a leader is seen
#      from the host through the published ports (deploy/compose-host.toml);
#   4. the seed scenario: acceptors 1 and 2 failed (SIGUSR1), N values proposed
#      by the one-shot `client` service inside the compose network, checked;
#   5. `kill acceptor-1 acceptor-2` (SIGKILL; the restart policy leaves them
#      down) and the same again with new values;
#   6. acceptor-3 replaced: its container and volume removed and created
#      again (acceptors 1 and 2 started again first); it rebuilds (`rebuilding`,
#      then `up`), and with acceptors 4 and 5 killed the same again;
#   7. a few values and `status` from the host; `down -v`.
#
#   scripts/compose.sh [--values N] [--dockerfile] [--keep]
#
# Prints the seed scenario's elapsed time for both runs and ends with
# `COMPOSE: PASS` (exit 0) or `COMPOSE: FAIL` (exit 1). When no Docker engine
# can be had it says `COMPOSE: SKIPPED (why)` loudly, still validates
# docker-compose.yml with `compose config`, and exits 0 only if that passes.
# --keep leaves the cluster up for you to try (it prints how to reach and
# remove it). Everything it starts it stops again: the containers, the
# volumes and network (`down -v`), and its own dockerd, by PID.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
# shellcheck source=scripts/lib/procs.sh disable=SC1091
. "$repo/scripts/lib/procs.sh"
values=1000
dockerfile=0
keep=0
project=paxos-compose
image=paxos:local
while [ $# -gt 0 ]; do
    case $1 in
        --values) values=$2; shift 2 ;;
        --dockerfile) dockerfile=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) print_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "compose.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$repo"

step() { printf '\n=== compose: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
banner() {
    printf '\n%s\n%s\n%s\n' "################################################################" "$1" \
        "################################################################"
}

# `docker compose` (v2) where the plugin is there, else `docker-compose` (v1).
compose_cmd=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose_cmd=(docker-compose)
fi
compose() { "${compose_cmd[@]}" -p "$project" -f "$repo/docker-compose.yml" "$@"; }

validate() {
    if [ ${#compose_cmd[@]} = 0 ]; then
        echo "compose.sh: neither \`docker compose\` nor \`docker-compose\` is installed: docker-compose.yml NOT validated" >&2
        return 1
    fi
    if compose --profile client config -q; then
        echo "compose: docker-compose.yml is valid (${compose_cmd[*]} config)"
    else
        echo "compose.sh: docker-compose.yml is INVALID (${compose_cmd[*]} config)" >&2
        return 1
    fi
}

dockerd_pid=
own_dir=/run/paxos-dockerd
started=0
cleanup() {
    local rc=$?
    if [ $started = 1 ] && [ $keep = 0 ]; then
        compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
    fi
    if [ -n "$dockerd_pid" ] && [ $keep = 0 ]; then
        stop_pid "$dockerd_pid" 20
    fi
    exit "$rc"
}
trap cleanup EXIT
# An interrupted run cleans up too.
trap 'exit 130' INT TERM

skip() {
    banner "COMPOSE: SKIPPED ($1)"
    echo "The compose cluster did NOT run; only docker-compose.yml is validated below. This is not a pass."
    validate || exit 1
    exit 0
}

fail() {
    echo "compose.sh: $*" >&2
    if [ $started = 1 ]; then
        echo "--- container logs (last 15 lines each)"
        compose logs --no-color --tail 15 2>&1 || true
    fi
    banner "COMPOSE: FAIL ($*)"
    exit 1
}

# ---- 1. an engine -----------------------------------------------------------------
step "engine"
command -v docker >/dev/null || skip "no docker client is installed (apt-get install docker.io)"
[ ${#compose_cmd[@]} -gt 0 ] || fail "neither docker compose nor docker-compose is installed (apt-get install docker-compose)"
if docker info >/dev/null 2>&1; then
    echo "compose: using the Docker engine that answers at ${DOCKER_HOST:-the default socket}"
else
    command -v dockerd >/dev/null || skip "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
    [ "$(id -u)" = 0 ] || skip "no Docker engine answers, and starting dockerd needs root"
    # Our own engine on a socket of its own, so that nothing else is disturbed:
    # no iptables rules, no default bridge, no forwarding; the networks compose
    # creates get addresses in 10.78.0.0/16 and are only ever reached from here,
    # and the containers' DNS asks nothing beyond Docker's own names (their
    # upstream resolver is 127.0.0.1, so no query ever leaves the machine).
    mkdir -p "$own_dir"
    export DOCKER_HOST="unix://$own_dir/docker.sock"
    if docker info >/dev/null 2>&1; then
        # Left running by an earlier run that was interrupted: ours, so stop it at the end.
        dockerd_pid=$(cat "$own_dir/dockerd.pid" 2>/dev/null || true)
        echo "compose: reusing the dockerd of an earlier run at $DOCKER_HOST (PID ${dockerd_pid:-unknown})"
    else
        rm -f "$own_dir/docker.sock" "$own_dir/dockerd.pid"
        setsid dockerd --host "$DOCKER_HOST" --pidfile "$own_dir/dockerd.pid" --exec-root "$own_dir/exec" \
            --data-root /var/lib/paxos-dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
            --default-address-pool base=10.78.0.0/16,size=24 --dns 127.0.0.1 >"$own_dir/dockerd.log" 2>&1 &
        dockerd_pid=$!
        deadline=$((SECONDS + 60))
        until docker info >/dev/null 2>&1; do
            if ! kill -0 "$dockerd_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
                why=$(grep -v '^$' "$own_dir/dockerd.log" | tail -n 1 | cut -c1-200)
                kill -KILL "$dockerd_pid" 2>/dev/null || true
                dockerd_pid=
                skip "dockerd did not start: ${why:-no output}"
            fi
            sleep 0.5
        done
        echo "compose: started dockerd (PID $dockerd_pid) at $DOCKER_HOST; log $own_dir/dockerd.log"
    fi
fi
docker version --format 'compose: engine {{.Server.Version}}, client {{.Client.Version}}' || true
"${compose_cmd[@]}" version 2>/dev/null | head -n 1 || true
validate || fail "docker-compose.yml does not validate"

# ---- 2. the image -----------------------------------------------------------------
step "image"
export PAXOS_IMAGE=$image
if [ $dockerfile = 1 ]; then
    compose build || fail "compose build (deploy/Dockerfile) failed; without registry access, drop --dockerfile"
else
    scripts/docker-image.sh --tag "$image" || fail "the offline image did not build"
fi
# paxosctl on the host: the static one built for the image when there is one.
paxosctl=
target=$(target_dir "$repo")
for c in "$target"/x86_64-unknown-linux-{musl,gnu}/release/paxosctl; do
    if [ -z "$paxosctl" ] && [ -x "$c" ]; then paxosctl=$c; fi
done
if [ -z "$paxosctl" ]; then
    (cd "$repo" && cargo build --release --locked -q -p paxosctl)
    paxosctl=$target/release/paxosctl
fi
hostctl() { "$paxosctl" --config "$repo/deploy/compose-host.toml" "$@"; }

# ---- 3. up ------------------------------------------------------------------------
step "up"
compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
started=1
up_start=$SECONDS
compose up -d --no-build || fail "compose up failed"

all_healthy() {
    local ids states
    ids=$(compose ps -q)
    [ "$(echo "$ids" | grep -c .)" -ge 7 ] || return 1
    # shellcheck disable=SC2086
    states=$(docker inspect -f '{{.State.Health.Status}}' $ids)
    ! echo "$states" | grep -qv '^healthy$'
}
deadline=$((SECONDS + 90))
until all_healthy; do
    [ $SECONDS -lt $deadline ] || fail "not every container became healthy within 90 s"
    sleep 0.5
done
until hostctl status --json 2>/dev/null | grep '"role":"leader"' | grep -q '"epoch":[1-9]'; do
    [ $SECONDS -lt $deadline ] || fail "no leader seen from the host within 90 s"
    sleep 0.2
done
echo "compose: 7 containers healthy and a leader elected after $((SECONDS - up_start)) s"
hostctl status

# ---- 4. the seed scenario ---------------------------------------------------------
# Runs the client service; prints its output; echoes the elapsed milliseconds.
run_client() {
    local prefix=$1 out
    out=$(compose run --rm -T client --values "$values" --prefix "$prefix" 2>&1) || {
        echo "$out" >&2
        return 1
    }
    echo "$out" >&2
    echo "$out" | grep -q '^PASS$' || return 1
    echo "$out" | sed -n 's/^elapsed: \([0-9]*\) ms.*/\1/p'
}

step "seed scenario: acceptors 1 and 2 failed (SIGUSR1), $values values from the client service"
compose kill -s SIGUSR1 acceptor-1 acceptor-2 >/dev/null
until [ "$(hostctl status --json 2>/dev/null | grep -cE '"node":"acceptor-[12]".*"state":"failed"')" = 2 ]; do
    [ $SECONDS -lt $((deadline + 30)) ] || fail "acceptors 1 and 2 do not show as failed"
    sleep 0.2
done
seed_ms=$(run_client seed) || fail "the seed scenario failed in compose"
compose kill -s SIGUSR2 acceptor-1 acceptor-2 >/dev/null

step "docker compose kill acceptor-1 acceptor-2, and again"
compose kill acceptor-1 acceptor-2 >/dev/null
sleep 2 # long enough for a restart policy to act, if it were to
for s in acceptor-1 acceptor-2; do
    running=$(docker inspect -f '{{.State.Running}}' "$(compose ps -a -q "$s")")
    [ "$running" = false ] || fail "$s runs again after kill: the restart policy should leave it down"
done
echo "compose: acceptor-1 and acceptor-2 are down (killed; unless-stopped leaves them so)"
kill_ms=$(run_client again) || fail "the scenario with acceptors 1 and 2 killed failed in compose"

# ---- 5b. replace a node ---------------------------------------------------------------
step "replace acceptor-3: its container and volume removed, created again on an empty volume"
compose start acceptor-1 acceptor-2 >/dev/null || fail "compose start acceptor-1 acceptor-2 failed"
# The state of NODE as the host's paxosctl sees it (status exits 1 while there
# is no majority, and still prints every node).
state_of() { { hostctl status --json 2>/dev/null || true; } | sed -En "s/^\\{\"node\":\"$1\",.*\"state\":\"([a-z]+)\".*/\\1/p"; }
# The configuration epoch NODE reports (0 when it does not answer).
epoch_of() { { hostctl status --json 2>/dev/null || true; } | status_epoch "$1"; }
deadline=$((SECONDS + 60))
until [ "$(state_of acceptor-1)" = up ] && [ "$(state_of acceptor-2)" = up ]; do
    [ $SECONDS -lt $deadline ] || fail "acceptors 1 and 2 are not up again within 60 s of compose start"
    sleep 0.2
done
epoch_before=$(epoch_of acceptor-1)
compose kill acceptor-3 >/dev/null
compose rm -f acceptor-3 >/dev/null || fail "compose rm acceptor-3 failed"
docker volume rm "${project}_acceptor-3" >/dev/null || fail "the volume ${project}_acceptor-3 could not be removed"
replace_start=$SECONDS
compose up -d --no-build --no-deps acceptor-3 || fail "compose up acceptor-3 (on a new volume) failed"
# A new incarnation: `rebuilding` (it copies the decided log and does not vote)
# until a configuration lets it in again: `up` in a later epoch. (Right after
# its start, before it learns the configuration in force, it says `up` in
# epoch 0: that is no rebuild.)
states=
while :; do
    state=$(state_of acceptor-3)
    case " $states " in *" ${state:-none} "*) ;; *) states="$states ${state:-none}" ;; esac
    [ "$state" != up ] || [ "$(epoch_of acceptor-3)" -le "$epoch_before" ] || break
    [ $SECONDS -lt $((replace_start + 60)) ] || fail "the replaced acceptor-3 is not up within 60 s (states seen:$states)"
    sleep 0.2
done
# It knew it had forgotten (a new incarnation), and a configuration let it in again.
a3_log=$(compose logs --no-color acceptor-3 2>&1)
echo "$a3_log" | grep -q "a new incarnation" || fail "the replaced acceptor-3 did not start as a new incarnation"
joined=$(echo "$a3_log" | grep "joined a configuration epoch" | tail -n 1 | grep -oE 'epoch[=":]+[0-9]+' | head -n 1)
[ -n "$joined" ] || fail "the replaced acceptor-3 never joined a configuration"
echo "compose: acceptor-3 on an empty volume rebuilt and let in again within $((SECONDS - replace_start)) s (states seen:$states; $joined)"
# The rebuilt acceptor counts: with 4 and 5 killed, 1, 2 and 3 are the majority.
compose kill acceptor-4 acceptor-5 >/dev/null
replaced_ms=$(run_client replaced) || fail "acceptors 1, 2 and the rebuilt 3 did not decide"

# ---- 6. from the host, and down -----------------------------------------------------
step "from the host: deploy/compose-host.toml"
hostctl propose from-host-1 from-host-2 from-host-3 || fail "paxosctl propose from the host failed"
hostctl status

if [ $keep = 1 ]; then
    step "kept"
    echo "The cluster stays up (acceptors 4 and 5 killed). Try:"
    echo "  ${DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST }$paxosctl --config deploy/compose-host.toml status"
    echo "  ${DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST }${compose_cmd[*]} -p $project start acceptor-4 acceptor-5"
    echo "Remove it with:  ${DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST }${compose_cmd[*]} -p $project down -v"
    [ -z "$dockerd_pid" ] || echo "and stop our dockerd with:  kill $dockerd_pid"
else
    step "down -v"
    compose down -v --remove-orphans --timeout 10 || fail "compose down -v failed"
    started=0
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$project" | grep -c . || true)
    [ "$left" = 0 ] || fail "$left containers are left after down"
fi

echo
echo "compose: seed scenario (acceptors 1 and 2 failed): elapsed ${seed_ms} ms for $values values"
echo "compose: again with acceptors 1 and 2 killed:      elapsed ${kill_ms} ms for $values values"
echo "compose: acceptor-3 replaced, acceptors 4, 5 killed: elapsed ${replaced_ms} ms for $values values"
banner "COMPOSE: PASS (seed scenario ${seed_ms} ms; with acceptors 1 and 2 killed ${kill_ms} ms; acceptor-3 replaced, 4 and 5 killed ${replaced_ms} ms; $values values each)"
