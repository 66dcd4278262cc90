#!/bin/sh
# The entry point of every pod of deploy/k8s (mounted from the ConfigMap at
# /etc/paxos/start.sh and run by /bin/sh, so it needs no exec bit):
#
#   /bin/sh /etc/paxos/start.sh paxos-acceptor [ARGS...]
#
# A StatefulSet numbers its pods from 0 (acceptor-0 ... acceptor-4) and its one
# pod template cannot give each pod an id of its own, while the cluster file
# numbers members from 1. So the id is derived here: PAXOS_ID = the ordinal at
# the end of the pod's name (POD_NAME, from the downward API) + 1; pod
# acceptor-0 is acceptor 1, proposer-1 is proposer 2. Then the daemon replaces
# this shell (exec), so it is PID 1 and gets the kubelet's SIGTERM itself.
# Everything else (PAXOS_CONFIG, PAXOS_LISTEN, PAXOS_HTTP, ...) comes from the
# manifest's environment.
set -eu
[ $# -ge 1 ] || { echo "start.sh: usage: start.sh paxos-acceptor|paxos-proposer [ARGS...]" >&2; exit 2; }
pod=${POD_NAME:-}
ordinal=${pod##*-}
case $ordinal in
    '' | *[!0-9]*)
        echo "start.sh: cannot read a StatefulSet ordinal from the pod name '$pod' (POD_NAME, want NAME-N)" >&2
        exit 2
        ;;
esac
PAXOS_ID=$((ordinal + 1))
export PAXOS_ID
echo "start.sh: pod $pod is $1 id $PAXOS_ID" >&2
exec "$@"
