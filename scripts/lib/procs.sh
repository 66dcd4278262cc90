# shellcheck shell=bash
# Helpers the cluster scripts share (bash; sourced, not run).

# Prints N free ports on 127.0.0.1 for PROTO (udp or tcp), chosen by the kernel.
free_ports() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# True when PID has exited: gone, or a zombie that its parent (init, for our
# setsid daemons) has not reaped yet, which kill -0 still finds.
exited() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [ "${stat%% *}" = Z ]
}

# Stops process PID: SIGTERM, up to SECONDS (default 5) for it to exit, then
# SIGKILL. Callers pass only PIDs they checked are theirs (pid_if_ours).
stop_pid() {
    local pid=$1 tries=$(( ${2:-5} * 10 ))
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tries"); do
        exited "$pid" && return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Prints the PID recorded in FILE if that process is alive and still runs the
# binary EXE (so that a recycled PID is never signalled), else nothing.
pid_if_ours() {
    local file=$1 exe=$2 pid running
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    running=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    case $running in
        "$exe" | "$exe (deleted)") echo "$pid" ;;
    esac
}
