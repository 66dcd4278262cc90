#!/usr/bin/env bash
# A local cluster on free loopback ports, for people and scripts.
#
#   scripts/cluster.sh up [--proposers 2] [--acceptors 5] [--dir DIR] [--no-fsync] [--no-auth] [--no-build]
#   scripts/cluster.sh down [--dir DIR]
#   scripts/cluster.sh status [--dir DIR] [--json] [--timeout S]
#   scripts/cluster.sh kill|fail|recover|restart|logs ROLE ID [--dir DIR]
#
# `up` builds the release binaries once (into the target dir cargo uses, so
# CARGO_TARGET_DIR is honoured; PAXOS_BIN_DIR names another place to take them
# from), writes DIR/cluster.toml with [auth] and a fresh peer key in
# DIR/peer.key (`paxosctl keygen`; --no-auth for none), starts every node in
# the background (log in DIR/logs, PID in DIR/pids) and returns once
# `paxosctl status` shows a leader.
# `up` on a DIR whose cluster ran before (after `down`) restarts that cluster
# from its data: DIR/cluster.toml and DIR/peer.key are kept, because the log
# pins the members' addresses (a fresh file on new ports would name nobody
# the nodes know). Remove DIR for a fresh cluster.
# Every other command acts only on the PIDs recorded in DIR, after checking
# that each still runs one of our binaries: it never touches a process it did
# not start. DIR defaults to <repo>/run/cluster.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
# shellcheck source=scripts/lib/procs.sh disable=SC1091
. "$repo/scripts/lib/procs.sh"
bin_dir=$(release_bin_dir "$repo")
dir=$repo/run/cluster
proposers=2
acceptors=5
fsync=true
auth=1
build=1

die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
    print_help "${BASH_SOURCE[0]}"
    exit "${1:-2}"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
args=()
layout=()
while [ $# -gt 0 ]; do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        --proposers) proposers=$2; layout+=("$1"); shift 2 ;;
        --acceptors) acceptors=$2; layout+=("$1"); shift 2 ;;
        --no-fsync) fsync=false; layout+=("$1"); shift ;;
        --no-auth) auth=0; layout+=("$1"); shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        # status passes its own options (--json, --timeout S) to paxosctl status.
        --json) [ "$cmd" = status ] || die "unknown option $1"; args+=("$1"); shift ;;
        --timeout) [ "$cmd" = status ] || die "unknown option $1"; args+=("$1" "$2"); shift 2 ;;
        -*) die "unknown option $1" ;;
        *) args+=("$1"); shift ;;
    esac
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
config=$dir/cluster.toml

paxosctl() { "$bin_dir/paxosctl" --config "$config" "$@"; }


pid_file() { echo "$dir/pids/$1-$2.pid"; }

# The PID of ROLE ID if it is alive and still one of our binaries, else nothing.
live_pid() { pid_if_ours "$(pid_file "$1" "$2")" "$bin_dir/paxos-$1"; }

start_node() {
    local role=$1 id=$2
    mkdir -p "$dir/logs" "$dir/pids"
    [ -z "$(live_pid "$role" "$id")" ] || die "$role $id is already running"
    # setsid: the node outlives this script and a Ctrl-C in its terminal. It execs
    # in place (this shell is no group leader), so $! is the node itself.
    setsid "$bin_dir/paxos-$role" --config "$config" --id "$id" >>"$dir/logs/$role-$id.log" 2>&1 &
    echo $! >"$(pid_file "$role" "$id")"
}

check_role() {
    case ${1:-} in
        proposer|acceptor) ;;
        *) die "ROLE must be proposer or acceptor, not '${1:-}'" ;;
    esac
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "ID must be a number, not '${2:-}'"
}

signal_node() {
    local sig=$1 role=$2 id=$3 pid
    pid=$(live_pid "$role" "$id")
    [ -n "$pid" ] || die "$role $id is not running"
    kill "-$sig" "$pid"
}

# Waits until paxosctl status shows a leader that serves (its first configuration,
# the members pinned, is decided: epoch 1 or later), or fails after $1 seconds,
# or as soon as a node it started has exited (saying which, and its last line).
wait_leader() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        dead_node && return 1
        if paxosctl status --json 2>/dev/null | grep '"role":"leader"' | grep -q '"epoch":[1-9]'; then
            # A node that dies at start (e.g. its port is taken) may not stop the others from electing.
            dead_node && return 1
            return 0
        fi
        sleep 0.1
    done
    echo "cluster.sh: no leader after $1 s; logs in $dir/logs" >&2
    return 1
}

# True (and says so) when a node this script started has exited.
dead_node() {
    local f name pid
    for f in "$dir"/pids/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        pid=$(cat "$f")
        if exited "$pid"; then
            echo "cluster.sh: $name exited: $(tail -n 1 "$dir/logs/$name.log" 2>/dev/null)" >&2
            return 0
        fi
    done
    return 1
}

# Stops every node recorded in DIR/pids (only ours) and forgets them.
stop_all() {
    local f name pid
    for f in "$dir"/pids/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        pid=$(live_pid "${name%-*}" "${name##*-}")
        if [ -n "$pid" ]; then stop_pid "$pid"; fi
        rm -f "$f"
    done
}

# Writes $config for a fresh cluster on free ports, with a fresh peer key.
write_config() {
    local ports i
    read -r -a ports <<<"$(free_ports udp $((proposers + acceptors)))"
    if [ $auth = 1 ]; then
        (umask 077 && "$bin_dir/paxosctl" keygen >"$dir/peer.key")
    fi
    {
        echo "# Written by scripts/cluster.sh on $(date -u +%FT%TZ)."
        for i in $(seq 1 "$proposers"); do
            printf '[[proposers]]\nid = %d\naddr = "127.0.0.1:%d"\n\n' "$i" "${ports[$((i - 1))]}"
        done
        for i in $(seq 1 "$acceptors"); do
            printf '[[acceptors]]\nid = %d\naddr = "127.0.0.1:%d"\n\n' "$i" "${ports[$((proposers + i - 1))]}"
        done
        if [ $auth = 1 ]; then
            printf '[auth]\npeer_key_file = "peer.key"\n\n'
        fi
        printf '[node]\ndata_dir = "%s/data"\nfsync = %s\n' "$dir" "$fsync"
    } >"$config"
}

# "1 proposer", "2 proposers".
plural() {
    if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi
}

case $cmd in
    up)
        if [ $build = 1 ]; then
            build_bins "$repo"
        fi
        check_bins "$bin_dir" || exit 1
        if [ -d "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ]; then
            die "$dir already holds a cluster; run: $0 down --dir $dir"
        fi
        if [ ! -f "$config" ] && [ -n "$(ls -A "$dir/data" 2>/dev/null)" ]; then
            die "$dir/data holds a cluster's data but $config is gone: a new file (new ports, a new key) would name nobody the log knows; put the file back, or remove $dir for a fresh cluster"
        fi
        if [ -f "$config" ] && [ -n "$(ls -A "$dir/data" 2>/dev/null)" ]; then
            # A restart of the cluster that ran here: its own file and key.
            if [ ${#layout[@]} -gt 0 ]; then
                die "$dir holds a cluster's data, restarted with its own cluster.toml: ${layout[*]} cannot change it (remove $dir for a fresh cluster)"
            fi
            proposers=$(grep -c '^\[\[proposers\]\]' "$config" || true)
            acceptors=$(grep -c '^\[\[acceptors\]\]' "$config" || true)
            echo "cluster.sh: restarting the cluster in $dir from its data (remove $dir for a fresh one)"
        else
            write_config
        fi
        for i in $(seq 1 "$acceptors"); do start_node acceptor "$i"; done
        for i in $(seq 1 "$proposers"); do start_node proposer "$i"; done
        if ! wait_leader 30; then
            # Nothing half-started stays behind: the next up starts clean.
            stop_all
            echo "cluster.sh: up failed; every node it started is stopped; logs in $dir/logs" >&2
            exit 1
        fi
        echo "cluster up: $(plural "$proposers" proposer), $(plural "$acceptors" acceptor); config $config"
        ;;
    down)
        stop_all
        echo "cluster down"
        ;;
    status)
        paxosctl status "${args[@]}"
        ;;
    kill|fail|recover)
        check_role "${args[0]:-}" "${args[1]:-}"
        case $cmd in kill) sig=KILL ;; fail) sig=USR1 ;; recover) sig=USR2 ;; esac
        signal_node "$sig" "${args[0]}" "${args[1]}"
        ;;
    restart)
        check_role "${args[0]:-}" "${args[1]:-}"
        pid=$(live_pid "${args[0]}" "${args[1]}")
        if [ -n "$pid" ]; then
            kill -KILL "$pid"
            until exited "$pid"; do sleep 0.05; done
        fi
        start_node "${args[0]}" "${args[1]}"
        ;;
    logs)
        check_role "${args[0]:-}" "${args[1]:-}"
        cat "$dir/logs/${args[0]}-${args[1]}.log"
        ;;
    *)
        usage
        ;;
esac
