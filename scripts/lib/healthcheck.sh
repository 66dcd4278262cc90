#!/bin/sh
# The containers' health check: healthy while this node answers a status
# request on its own port, whether up or deliberately failed (SIGUSR1: it still
# answers status, and `paxosctl status` shows it as failed). Installed in the
# image as /usr/local/bin/paxos-healthcheck; docker-compose.yml calls it with
# the node's name:
#
#   paxos-healthcheck acceptor-3
#
# The node's id and port come from the container's PAXOS_ID and PAXOS_LISTEN,
# the cluster name from the cluster file of PAXOS_CONFIG. It asks only this
# node, at 127.0.0.1, through a cluster file of its own: the health of one
# node must not depend on the others, nor on resolving their names (Docker's
# DNS takes seconds to give up on a stopped container's name).
set -eu
node=${1:?usage: paxos-healthcheck NODE (e.g. acceptor-3)}
role=${node%-*}
id=${PAXOS_ID:?PAXOS_ID is not set}
port=${PAXOS_LISTEN:?PAXOS_LISTEN is not set}
port=${port##*:}
cluster=$(sed -n 's/^cluster *= *"\([^"]*\)".*/\1/p' "${PAXOS_CONFIG:?PAXOS_CONFIG is not set}" | head -n 1)

# A cluster file needs a proposer and an odd number of acceptors: the other
# role gets one member at a port where nothing listens, which shows as
# unreachable at once and is not looked at.
case $role in
    proposer) other=acceptors ;;
    acceptor) other=proposers ;;
    *) echo "paxos-healthcheck: NODE must be proposer-N or acceptor-N, not $node" >&2; exit 2 ;;
esac
file=$(mktemp "${TMPDIR:-/tmp}/health.XXXXXX")
trap 'rm -f "$file"' EXIT
cat >"$file" <<EOF
cluster = "${cluster:-paxos}"

[[${role}s]]
id = $id
addr = "127.0.0.1:$port"

[[$other]]
id = 1
addr = "127.0.0.1:9"
EOF
paxosctl --config "$file" status --json 2>/dev/null | grep -Eq "^\{\"node\":\"$node\",.*\"state\":\"(up|failed)\""
