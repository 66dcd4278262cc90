#!/usr/bin/env bash
# The cluster of deploy/compose.toml as several hosts on this machine: one Linux
# network namespace per node (plus one for the client), each with its own
# address in 10.77.0.0/16, all joined by a bridge that lives in a namespace of
# its own, and each node finding the others by host name through
# /etc/netns/<ns>/hosts, as on a real network. Faults at the network level
# (partitions, random loss) are iptables rules inside the namespaces.
#
#   scripts/netns.sh up [--no-build]         build the network, start the 7 daemons, wait for a leader
#   scripts/netns.sh down                    stop the daemons, remove the namespaces, files and route
#   scripts/netns.sh status | ctl ARGS...    paxosctl (status, propose, log, ...) from the client namespace
#   scripts/netns.sh exec NODE CMD...        run CMD in NODE's namespace (NODE: proposer-1 ... acceptor-5, client)
#   scripts/netns.sh partition NODE...       cut NODE... off, as one group, from every other namespace
#   scripts/netns.sh heal                    remove every partition and every loss
#   scripts/netns.sh loss NODE PERCENT       drop PERCENT % of NODE's datagrams at random, each way (0: none)
#   scripts/netns.sh kill|fail|recover|restart|logs NODE
#   scripts/netns.sh addr NODE               NODE's address
#
# Options, before the command (or after it, except for exec and ctl):
# --dir DIR (state: logs, PIDs, data dirs; default <repo>/run/netns; the data
# outlives `down`), --config FILE (default deploy/compose.toml), --bin-dir DIR
# (default <target dir>/release, honouring CARGO_TARGET_DIR, or $PAXOS_BIN_DIR). The daemons run with
# [auth]: the members' key is made in DIR/peer.key on the first start. PAXOS_CHAOS__* variables given
# to `up` or `restart` reach the daemons (their own delay, duplication, reordering).
#
# Safety: before it creates anything, `up` installs a blackhole route for
# 10.77.0.0/16 on the host, so that no datagram to these addresses can leave
# the machine, and refuses to start if the host has any address or more
# specific route in that range. No interface, address or rule outside the
# namespaces it creates is touched; the veth pairs are created inside them.
# Needs root (CAP_NET_ADMIN), iproute2 and, for faults, iptables.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
. "$repo/scripts/lib/common.sh"
# shellcheck source=scripts/lib/procs.sh disable=SC1091
. "$repo/scripts/lib/procs.sh"
bin_dir=$(release_bin_dir "$repo")
dir=$repo/run/netns
config=$repo/deploy/compose.toml
build=1
prefix=pxn-               # every namespace we create is named pxn-<node>, the bridge's pxn-br
net=10.77.0.0/16

die() { echo "netns.sh: $*" >&2; exit 1; }
usage() {
    print_help "${BASH_SOURCE[0]}"
    exit "${1:-2}"
}

# Options may come before the command and, except for exec and ctl (whose
# arguments all belong to the command they run), after it.
cmd=
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        -*) die "unknown option $1" ;;
        *)
            if [ -z "$cmd" ]; then
                cmd=$1
                shift
                if [ "$cmd" = exec ] || [ "$cmd" = ctl ]; then
                    args=("$@")
                    break
                fi
            else
                args+=("$1")
                shift
            fi
            ;;
    esac
done
[ -n "$cmd" ] || usage
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
[ -f "$config" ] || die "no cluster file $config"

# The nodes, by host name, in file order; then the client.
mapfile -t nodes < <(sed -n 's/^addr = "\([a-z0-9-]*\):[0-9]*".*/\1/p' "$config")
[ ${#nodes[@]} -gt 0 ] || die "$config names no node by host name (addr = \"name:port\")"
all=("${nodes[@]}" client)

# proposer-N: 10.77.1.N, acceptor-N: 10.77.2.N, client: 10.77.3.1.
addr_of() {
    case $1 in
        proposer-[0-9]*) echo "10.77.1.${1#proposer-}" ;;
        acceptor-[0-9]*) echo "10.77.2.${1#acceptor-}" ;;
        client) echo "10.77.3.1" ;;
        *) die "unknown node $1 (expected one of: ${all[*]})" ;;
    esac
}
check_node() {
    local n
    for n in "${all[@]}"; do [ "$n" = "$1" ] && return 0; done
    die "unknown node '$1' (expected one of: ${all[*]})"
}
check_daemon() {
    check_node "$1"
    [ "$1" != client ] || die "the client namespace runs no daemon"
}
ns() { echo "$prefix$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
ctl() { in_ns client "$bin_dir/paxosctl" --config "$config" "$@"; }

need_root() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, veth, routes): run it with sudo"
    command -v ip >/dev/null || die "needs iproute2 (apt-get install iproute2)"
}

pid_file() { echo "$dir/pids/$1.pid"; }
# The PID of NODE's daemon if it is alive and still one of our binaries, else nothing.
live_pid() { pid_if_ours "$(pid_file "$1")" "$bin_dir/paxos-${1%-*}"; }

start_node() {
    local n=$1 role=${1%-*} id=${1##*-}
    [ -z "$(live_pid "$n")" ] || die "$n is already running"
    mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
    # [auth]: one members' key per cluster, made on the first start (the
    # cluster file is shared with compose, whose key lives in a volume).
    if [ ! -s "$dir/peer.key" ]; then
        (umask 077 && "$bin_dir/paxosctl" keygen >"$dir/peer.key")
    fi
    # setsid execs `ip`, which execs env, which execs the daemon: $! is the daemon.
    setsid ip netns exec "$(ns "$n")" env PAXOS_NODE__DATA_DIR="$dir/data" PAXOS_AUTH__PEER_KEY_FILE="$dir/peer.key" \
        RUST_LOG="${RUST_LOG:-info}" "$bin_dir/paxos-$role" --config "$config" --id "$id" >>"$dir/logs/$n.log" 2>&1 &
    echo $! >"$(pid_file "$n")"
}

stop_node() {
    local pid
    pid=$(live_pid "$1")
    if [ -n "$pid" ]; then stop_pid "$pid"; fi
    rm -f "$(pid_file "$1")"
}

# Any host address or route inside 10.77.0.0/16 other than our blackhole.
host_conflicts() {
    ip -4 -o addr show | awk '{ split($4, a, "/"); if (a[1] ~ /^10\.77\./) print "address " $4 " on " $2 }'
    ip -4 route show table all | awk -v net="$net" '{
        d = $1
        if (d == "local" || d == "broadcast" || d == "blackhole" || d == "unreachable" || d == "prohibit") d = $2
        if (d ~ /^10\.77\./ && !($1 == "blackhole" && d == net)) print "route " $0
    }'
}

add_blackhole() {
    local conflicts
    conflicts=$(host_conflicts)
    [ -z "$conflicts" ] || die "the host already uses $net, refusing to touch it: $conflicts"
    if [ -z "$(ip -4 route show exact "$net" type blackhole)" ]; then
        ip route add blackhole "$net"
    fi
    touch "$dir/blackhole"
    [ -n "$(ip -4 route show exact "$net" type blackhole)" ] || die "could not install the blackhole route for $net"
}

ipt() {
    local n=$1
    shift
    in_ns "$n" iptables -w "$@"
}

# Creates (or empties) the chain $2 in NODE's namespace, hooked into $3 (INPUT/OUTPUT).
chain() {
    local n=$1 c=$2 hook=$3
    command -v iptables >/dev/null || die "needs iptables (apt-get install iptables)"
    ipt "$n" -N "$c" 2>/dev/null || ipt "$n" -F "$c"
    ipt "$n" -C "$hook" -j "$c" 2>/dev/null || ipt "$n" -I "$hook" -j "$c"
}

flush_chains() {
    local n=$1 c
    for c in PXN-PART-IN PXN-PART-OUT PXN-LOSS-IN PXN-LOSS-OUT; do
        ipt "$n" -F "$c" 2>/dev/null || true
    done
}

up() {
    need_root
    local n a
    for n in br "${all[@]}"; do
        if ip netns list | grep -qw "$(ns "$n")"; then
            die "namespace $(ns "$n") exists already: another cluster is up; stop it with: $0 down --dir ITS_DIR"
        fi
    done
    if [ $build = 1 ]; then
        build_bins "$repo"
    fi
    check_bins "$bin_dir" || exit 1
    # Tear down whatever was made if anything below fails.
    trap 'echo "netns.sh: up failed; tearing down" >&2; down >/dev/null 2>&1 || true' ERR
    add_blackhole

    # Every namespace is recorded as soon as it exists: `down` removes only
    # what this --dir created, never another run's namespaces.
    : >"$dir/namespaces"
    ip netns add "$(ns br)"
    ns br >>"$dir/namespaces"
    ip -n "$(ns br)" link set lo up
    ip -n "$(ns br)" link add br0 type bridge
    ip -n "$(ns br)" link set br0 up
    mkdir -p /etc/netns
    for n in "${all[@]}"; do
        a=$(addr_of "$n")
        ip netns add "$(ns "$n")"
        ns "$n" >>"$dir/namespaces"
        # Both ends are created inside their namespaces: nothing appears on the host.
        ip link add name eth0 netns "$(ns "$n")" type veth peer name "v-$n" netns "$(ns br)"
        ip -n "$(ns br)" link set "v-$n" master br0 up
        ip -n "$(ns "$n")" addr add "$a/16" dev eth0
        ip -n "$(ns "$n")" link set eth0 up
        ip -n "$(ns "$n")" link set lo up
        mkdir -p "/etc/netns/$(ns "$n")"
        {
            echo "# Written by scripts/netns.sh: the cluster's host names inside $(ns "$n")."
            printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n'
            for m in "${all[@]}"; do printf '%s\t%s\n' "$(addr_of "$m")" "$m"; done
        } >"/etc/netns/$(ns "$n")/hosts"
    done

    for n in "${nodes[@]}"; do
        if [[ $n == acceptor-* ]]; then start_node "$n"; fi
    done
    for n in "${nodes[@]}"; do
        if [[ $n == proposer-* ]]; then start_node "$n"; fi
    done
    trap - ERR
    local deadline=$((SECONDS + 30))
    until ctl status --json 2>/dev/null | grep '"role":"leader"' | grep -q '"epoch":[1-9]'; do
        [ $SECONDS -lt $deadline ] || die "no leader after 30 s; logs in $dir/logs"
        sleep 0.2
    done
    echo "netns up: ${#nodes[@]} nodes in namespaces ${prefix}<node> on $net; client in $(ns client); state in $dir"
}

down() {
    local n name
    for n in "${nodes[@]}"; do stop_node "$n"; done
    if [ "$(id -u)" = 0 ] && [ -f "$dir/namespaces" ]; then
        while read -r name; do
            case $name in "$prefix"*) ;; *) continue ;; esac
            if ip netns list | grep -qw "$name"; then
                ip netns del "$name"
            fi
            rm -rf "/etc/netns/$name"
        done <"$dir/namespaces"
        rmdir /etc/netns 2>/dev/null || true
        if [ -f "$dir/blackhole" ]; then
            if [ -n "$(ip -4 route show exact "$net" type blackhole)" ]; then
                ip route del blackhole "$net"
            fi
            rm -f "$dir/blackhole"
        fi
    fi
    rm -f "$dir/namespaces"
    echo "netns down"
}

case $cmd in
    up) up ;;
    down) down ;;
    status) ctl status "${args[@]}" ;;
    ctl) ctl "${args[@]}" ;;
    exec)
        [ ${#args[@]} -ge 2 ] || die "usage: $0 exec NODE CMD..."
        check_node "${args[0]}"
        in_ns "${args[@]}"
        ;;
    addr)
        check_node "${args[0]:-}"
        addr_of "${args[0]}"
        ;;
    partition)
        need_root
        [ ${#args[@]} -ge 1 ] || die "usage: $0 partition NODE..."
        for n in "${args[@]}"; do check_node "$n"; done
        for n in "${args[@]}"; do
            chain "$n" PXN-PART-IN INPUT
            chain "$n" PXN-PART-OUT OUTPUT
            ipt "$n" -A PXN-PART-IN -i lo -j RETURN
            ipt "$n" -A PXN-PART-OUT -o lo -j RETURN
            for m in "${args[@]}"; do
                ipt "$n" -A PXN-PART-IN -s "$(addr_of "$m")" -j RETURN
                ipt "$n" -A PXN-PART-OUT -d "$(addr_of "$m")" -j RETURN
            done
            ipt "$n" -A PXN-PART-IN -s "$net" -j DROP
            ipt "$n" -A PXN-PART-OUT -d "$net" -j DROP
        done
        echo "partitioned: {${args[*]}} | everyone else"
        ;;
    heal)
        need_root
        for n in "${all[@]}"; do flush_chains "$n"; done
        echo "healed: no partition, no loss"
        ;;
    loss)
        need_root
        [ ${#args[@]} = 2 ] || die "usage: $0 loss NODE PERCENT"
        check_node "${args[0]}"
        [[ ${args[1]} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "PERCENT must be a number in 0..100"
        p=$(awk -v p="${args[1]}" 'BEGIN { if (p > 100) exit 1; printf "%.6f", p / 100 }') ||
            die "PERCENT must be in 0..100"
        chain "${args[0]}" PXN-LOSS-IN INPUT
        chain "${args[0]}" PXN-LOSS-OUT OUTPUT
        if [ "$p" != 0.000000 ]; then
            ipt "${args[0]}" -A PXN-LOSS-IN -i eth0 -m statistic --mode random --probability "$p" -j DROP
            ipt "${args[0]}" -A PXN-LOSS-OUT -o eth0 -m statistic --mode random --probability "$p" -j DROP
        fi
        echo "loss on ${args[0]}: ${args[1]} % each way"
        ;;
    kill | fail | recover)
        check_daemon "${args[0]:-}"
        pid=$(live_pid "${args[0]}")
        [ -n "$pid" ] || die "${args[0]} is not running"
        case $cmd in kill) sig=KILL ;; fail) sig=USR1 ;; recover) sig=USR2 ;; esac
        kill "-$sig" "$pid"
        ;;
    restart)
        check_daemon "${args[0]:-}"
        pid=$(live_pid "${args[0]}")
        if [ -n "$pid" ]; then
            kill -KILL "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        fi
        start_node "${args[0]}"
        ;;
    logs)
        check_daemon "${args[0]:-}"
        cat "$dir/logs/${args[0]}.log"
        ;;
    *) usage ;;
esac
