#!/usr/bin/env python3
"""A client of the Paxos log in Python 3, standard library only.

It uses nothing but what docs/PROTOCOL.md documents: it speaks the wire
protocol (JSON envelopes over UDP, version 2), signs its
requests when the cluster file's [auth] names a client key, proves its
address with cookies for reads, and retries proposals under the same
sequence number so that each value lands exactly once.

Library:

    from paxos_client import Cluster, Client
    client = Client(Cluster.load("run/cluster/cluster.toml"))
    slot = client.propose("hello")               # the instance it was decided at
    entries = client.read_log(0)                 # [(slot, value or None), ...]
    reply = client.status(("acceptor", 3))       # the StatusReply as a dict

Command line (the output matches paxosctl's):

    python3 paxos_client.py --config FILE propose [--json] VALUE...
    python3 paxos_client.py --config FILE log [--node ID] [--from N] [--limit N] [--json]
    python3 paxos_client.py --config FILE status [--json]
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import socket
import sys
import time

try:
    import tomllib  # Python 3.11 and later
except ImportError:  # pragma: no cover - exercised on older Pythons only
    tomllib = None

PROTOCOL_VERSION = 2
MAX_DATAGRAM_BYTES = 65_507
MAC_TAG = b"#m1"
MAC_HEX_BYTES = 64
TRAILER_BYTES = len(MAC_TAG) + MAC_HEX_BYTES
MAX_BODY_BYTES = MAX_DATAGRAM_BYTES - TRAILER_BYTES
MIN_UNPROVEN_READ_BYTES = 320
MAX_VALUE_BYTES = 8 * 1024
MAX_CLIENT_NUMBER = (1 << 53) - 1
MIN_KEY_BYTES = 16
DEFAULT_CLUSTER = "paxos"
LOG_PAGE_LIMIT = 1024

DEFAULT_RETRY = 0.5     # seconds one attempt waits before the request is sent again
DEFAULT_TIMEOUT = 10.0  # seconds a request may take in all


class PaxosError(Exception):
    """A request failed; the message says why in one line."""


class Timeout(PaxosError):
    """No answer in time (a proposal may still be decided later, at most once)."""


class Refused(PaxosError):
    """A proposer refused the request for good: kind is "too_large" or "stale"."""

    def __init__(self, kind, seq):
        super().__init__(f"the cluster refused request {seq}: {kind}")
        self.kind = kind
        self.seq = seq


class Deleted(PaxosError):
    """The slots asked for were deleted by retention ([log] retain_slots)."""

    def __init__(self, first, start):
        super().__init__(f"slots {first}..{start} were deleted by retention; the log now starts at {start}")
        self.first = first
        self.start = start


# ---------------------------------------------------------------------------
# The cluster file
# ---------------------------------------------------------------------------

def _parse_toml_value(text, where):
    """One TOML value of the kinds the cluster file's needed keys use."""
    text = text.strip()
    if text.startswith('"'):
        out, i = [], 1
        escapes = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
        while i < len(text):
            c = text[i]
            if c == '"':
                return "".join(out), text[i + 1:]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt in escapes:
                    out.append(escapes[nxt])
                    i += 2
                    continue
                if nxt in ("u", "U"):
                    width = 4 if nxt == "u" else 8
                    out.append(chr(int(text[i + 2:i + 2 + width], 16)))
                    i += 2 + width
                    continue
                raise ValueError(f"{where}: unknown escape \\{nxt}")
            out.append(c)
            i += 1
        raise ValueError(f"{where}: unterminated string")
    if text.startswith("'"):
        end = text.index("'", 1)
        return text[1:end], text[end + 1:]
    token = text.split("#", 1)[0].strip()
    rest = text[len(token):]
    if token in ("true", "false"):
        return token == "true", rest
    try:
        return int(token.replace("_", ""), 0), rest
    except ValueError:
        pass
    try:
        return float(token.replace("_", "")), rest
    except ValueError:
        raise ValueError(f"{where}: cannot read the value {token!r}") from None


def _minimal_toml(text, path):
    """The subset of TOML a cluster file uses: tables, arrays of tables, and
    key = string | integer | float | boolean lines (for Pythons without tomllib)."""
    root = {}
    table = root
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{path}:{n}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            name = line[2:line.index("]]")].strip()
            table = {}
            root.setdefault(name, []).append(table)
        elif line.startswith("["):
            name = line[1:line.index("]")].strip()
            table = root.setdefault(name, {})
        else:
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{where}: expected key = value")
            value, rest = _parse_toml_value(value, where)
            if rest.strip() and not rest.strip().startswith("#"):
                raise ValueError(f"{where}: unexpected {rest.strip()!r} after the value")
            table[key.strip().strip('"')] = value
    return root


def read_keys(path):
    """A key file: one key per line as hex (at least 16 bytes); blank lines
    and lines starting with '#' are skipped. The first key signs, all verify."""
    keys = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                key = bytes.fromhex(line)
            except ValueError:
                raise PaxosError(f"{path}:{n}: not a key in hex (0-9, a-f)") from None
            if len(key) < MIN_KEY_BYTES:
                raise PaxosError(f"{path}:{n}: a key of {len(key)} bytes is too short; at least {MIN_KEY_BYTES}")
            keys.append(key)
    if not keys:
        raise PaxosError(f"{path}: no key in the file")
    return keys


class Cluster:
    """What a client needs of the cluster file: the name, the members'
    addresses and the [auth] keys (key files are relative to the file)."""

    def __init__(self, name, proposers, acceptors, peer_keys=None, client_keys=None, path=None):
        self.name = name
        self.proposers = dict(proposers)  # id -> "host:port"
        self.acceptors = dict(acceptors)
        self.peer_keys = peer_keys
        self.client_keys = client_keys
        self.path = path

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            raw = f.read()
        if tomllib is not None:
            doc = tomllib.loads(raw.decode("utf-8"))
        else:
            doc = _minimal_toml(raw.decode("utf-8"), path)
        # PAXOS_CLUSTER overrides the file for the daemons and paxosctl; do the same.
        name = os.environ.get("PAXOS_CLUSTER") or doc.get("cluster", DEFAULT_CLUSTER)
        proposers = {int(m["id"]): str(m["addr"]) for m in doc.get("proposers", [])}
        acceptors = {int(m["id"]): str(m["addr"]) for m in doc.get("acceptors", [])}
        if not proposers:
            raise PaxosError(f"{path}: proposers: the cluster file names no proposer")
        auth = dict(doc.get("auth") or {})
        for key in ("peer_key_file", "client_key_file"):
            env = os.environ.get("PAXOS_AUTH__" + key.upper())
            if env:
                auth[key] = env
        base = os.path.dirname(os.path.abspath(path))

        def keys(key):
            if not auth.get(key):
                return None
            return read_keys(os.path.join(base, auth[key]))

        return cls(name, proposers, acceptors, keys("peer_key_file"), keys("client_key_file"), path)

    def address(self, node):
        role, ident = node
        members = self.proposers if role == "proposer" else self.acceptors
        if ident not in members:
            raise PaxosError(f"{role}-{ident} is not a member of the cluster")
        return members[ident]


# ---------------------------------------------------------------------------
# Datagrams
# ---------------------------------------------------------------------------

def sign(body, key):
    """body + "#m1" + lower-case hex HMAC-SHA256(key, body)."""
    return body + MAC_TAG + hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")


def open_datagram(datagram, keys):
    """Splits off the MAC trailer. Returns (body, signed_by_one_of_keys);
    without keys a trailer is stripped and ignored. None: a MAC no key makes."""
    body, mac = datagram, None
    if len(datagram) >= TRAILER_BYTES and datagram[-TRAILER_BYTES:].startswith(MAC_TAG):
        body, mac = datagram[:-TRAILER_BYTES], datagram[-MAC_HEX_BYTES:]
    if mac is None or not keys:
        return body, False
    if mac != mac.lower():
        return None, False  # the trailer is canonical: lower-case hex only
    for key in keys:
        want = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
        if hmac.compare_digest(want, mac):
            return body, True
    return None, False


def envelope(cluster, client_id, to, kind, fields):
    role, ident = to
    return {
        "version": PROTOCOL_VERSION,
        "cluster": cluster,
        "from": {"client": client_id},
        "to": {role: ident},
        "msg": {kind: fields},
    }


def encode(env):
    return json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(body):
    """The envelopes of a datagram's body (one, or a bundle); [] if it is not one."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    envs = doc if isinstance(doc, list) else [doc]
    return [e for e in envs if isinstance(e, dict) and e.get("version") == PROTOCOL_VERSION]


def node_of(value):
    """{"proposer": 2} -> ("proposer", 2); anything else -> None."""
    if isinstance(value, dict) and len(value) == 1:
        ((role, ident),) = value.items()
        return role, ident
    return None


def node_name(node):
    return f"{node[0]}-{node[1]}"


def ballot_str(b):
    """round.proposer, and epoch:round.proposer from epoch 1 on (as paxosctl prints it)."""
    if not b:
        return None
    text = f"{b['round']}.{b['proposer']}"
    return f"{b['epoch']}:{text}" if b.get("epoch") else text


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

class Client:
    """One client of one cluster: one UDP socket, one id, one request in flight.

    sign=False sends unsigned requests even when the cluster has a client key
    (and then takes unsigned answers): only for tests of the admission rule.
    """

    def __init__(self, cluster, client_id=None, first_seq=1, retry=DEFAULT_RETRY, timeout=DEFAULT_TIMEOUT,
                 sign=True, trace=None):
        self.cluster = cluster
        self.id = client_id if client_id is not None else random.SystemRandom().randint(1, MAX_CLIENT_NUMBER)
        if not 1 <= self.id <= MAX_CLIENT_NUMBER:
            raise ValueError("a client id is from 1 to 2^53 - 1 (0 is the restores')")
        self.next_seq = first_seq
        self.last_seq = None
        self.next_req = 1
        self.retry = retry
        self.timeout = timeout
        self.keys = cluster.client_keys if sign else None
        self.trace = trace  # a function(direction, node, bytes), to watch the wire
        # A first guess: the proposer with the highest id campaigns when none
        # leads. Redirects correct it; the last proposer that decided a value keeps it.
        self.leader = max(cluster.proposers)
        self.cookies = {}
        self.addrs = {}
        self.sock = self._socket()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sockets and addresses ---------------------------------------------

    def _resolve(self, spec):
        host, _, port = spec.rpartition(":")
        host = host.strip("[]")
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
        v4 = [i[4] for i in infos if i[0] == socket.AF_INET]
        v6 = [i[4] for i in infos if i[0] == socket.AF_INET6]
        return v4, v6

    def _socket(self):
        """IPv4, unless some member is reachable over IPv6 only: then a
        dual-stack IPv6 socket (IPv4 members reached as ::ffff:a.b.c.d)."""
        self._v6 = False
        for spec in list(self.cluster.proposers.values()) + list(self.cluster.acceptors.values()):
            try:
                v4, v6 = self._resolve(spec)
            except OSError:
                continue
            if v6 and not v4:
                self._v6 = True
        if self._v6:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 0))
        return s

    def _addr(self, node):
        if node not in self.addrs:
            v4, v6 = self._resolve(self.cluster.address(node))
            if not v4 and not (self._v6 and v6):
                raise OSError(f"{self.cluster.address(node)} has no address this socket can reach")
            if self._v6:
                addr = v6[0] if v6 else ("::ffff:" + v4[0][0], v4[0][1])
            else:
                addr = v4[0]
            self.addrs[node] = addr
        return self.addrs[node]

    # -- one request -----------------------------------------------------------

    def _send(self, to, kind, fields, admin=False):
        """Encodes, pads an unproven read, signs and sends one request."""
        fields = dict(fields)
        read = kind in ("status_request", "log_read")
        if read and to in self.cookies:
            fields["cookie"] = self.cookies[to]
        body = encode(envelope(self.cluster.name, self.id, to, kind, fields))
        if read and "cookie" not in fields and len(body) < MIN_UNPROVEN_READ_BYTES:
            # Its first answer is a cookie, which the node never makes longer than the request.
            body += b" " * (MIN_UNPROVEN_READ_BYTES - len(body))
        keys = self.cluster.peer_keys if admin else self.keys
        datagram = sign(body, keys[0]) if keys else body
        if len(datagram) > MAX_DATAGRAM_BYTES:
            raise PaxosError(f"a datagram of {len(datagram)} bytes exceeds {MAX_DATAGRAM_BYTES}")
        try:
            addr = self._addr(to)
        except OSError:
            return  # does not resolve (yet): silence, retried on the timer
        if self.trace:
            self.trace("out", to, datagram)
        try:
            self.sock.sendto(datagram, addr)
        except OSError:
            pass  # an unreachable network is silence too

    def _receive(self, until):
        """The envelopes for us of the next datagram, or None once `until` passed."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                datagram, _ = self.sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
            except socket.timeout:
                return None
            except OSError:
                continue  # e.g. an ICMP error reported on the socket
            body, signed = open_datagram(datagram, self.keys)
            if body is None or (self.keys and not signed):
                continue  # a forged answer, or an unsigned one where answers must be signed
            if self.trace:
                self.trace("in", None, datagram)
            out = []
            for env in decode(body):
                sender = node_of(env.get("from"))
                if env.get("cluster") != self.cluster.name or env.get("to") != {"client": self.id} or not sender:
                    continue
                msg = env.get("msg")
                if isinstance(msg, dict) and len(msg) == 1:
                    ((kind, fields),) = msg.items()
                    out.append((sender, kind, fields))
            return out

    def exchange(self, to, kind, fields, on_reply, rotate=False, admin=False, timeout=None):
        """Sends a request and feeds every answer to on_reply(sender, kind,
        fields), which returns ("done", value), ("resend", node) or None (keep
        waiting). Resends on every retry interval (a proposal: to the next
        proposer) until the overall timeout. Cookies are handled here."""
        self.cluster.address(to)  # a member, or PaxosError
        deadline_s = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + deadline_s
        in_row = 0
        while True:
            self._send(to, kind, fields, admin)
            attempt_end = min(time.monotonic() + self.retry, deadline)
            resend = None
            while resend is None:
                envs = self._receive(attempt_end)
                if envs is None:
                    break
                for sender, rkind, rfields in envs:
                    if rkind == "cookie":
                        if sender == to:
                            # Proof of our address wanted: ask again at once, with the cookie.
                            self.cookies[to] = rfields["cookie"]
                            resend = to
                        continue
                    step = on_reply(sender, rkind, rfields)
                    if step is None:
                        continue
                    if step[0] == "done":
                        return step[1]
                    resend = step[1]
            if time.monotonic() >= deadline:
                raise Timeout(f"{kind} to {node_name(to)}: no answer within {deadline_s:g} s")
            if resend is not None:
                if in_row:
                    # Redirects and busy answers in a row back off: 10, 20, 40, 80, 160 ms.
                    time.sleep(min(0.005 * (1 << min(in_row, 5)), self.retry, max(0, deadline - time.monotonic())))
                in_row += 1
                to = resend
            else:
                in_row = 0
                self.addrs.pop(to, None)  # silence: it may have moved
                if rotate and to[0] == "proposer":
                    ids = sorted(self.cluster.proposers)
                    to = ("proposer", ids[(ids.index(to[1]) + 1) % len(ids)] if to[1] in ids else ids[0])

    # -- the requests ------------------------------------------------------------

    def propose(self, value, seq=None):
        """Appends value to the log; returns the slot (instance) it was decided at.

        Retries go out under the same seq, to the leader (following
        redirects) or, on silence, to the next proposer, so the value lands
        exactly once. seq: a request number to retry (default: the next one).
        """
        data = value.encode("utf-8")
        if len(data) > MAX_VALUE_BYTES:
            raise ValueError(f"value of {len(data)} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes; "
                             "nothing was sent")
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        if not 0 <= seq <= MAX_CLIENT_NUMBER:
            raise ValueError("a sequence number is below 2^53")
        self.last_seq = seq

        def on_reply(sender, kind, m):
            if m.get("seq") != seq:
                return None
            if kind == "client_reply":
                return ("done", (m["slot"], sender))
            if kind == "client_redirect":
                leader = m.get("leader")
                if leader in self.cluster.proposers:
                    self.leader = leader
                    return ("resend", ("proposer", leader))
                return None  # no leader known: wait, then try the next proposer
            if kind == "client_error":
                if m["kind"] == "busy":
                    return ("resend", sender)  # the leader's queue is full: again, backing off
                raise Refused(m["kind"], seq)
            return None

        slot, sender = self.exchange(("proposer", self.leader), "client_propose", {"seq": seq, "value": value},
                                     on_reply, rotate=True)
        if sender[0] == "proposer":
            self.leader = sender[1]
        return slot

    def log(self, node, first=0, limit=LOG_PAGE_LIMIT, linearizable=False):
        """One page of proposer node's decided log from slot first: the LogReply as a dict."""
        req = self._next_req()
        fields = {"req": req, "from": first, "limit": limit, "linearizable": linearizable}

        def on_reply(sender, kind, m):
            if kind != "log_reply" or m.get("req") != req:
                return None
            if linearizable and not m.get("linearizable"):
                leader = m.get("leader")
                if leader in self.cluster.proposers and ("proposer", leader) != sender:
                    return ("resend", ("proposer", leader))
                return None  # no leader to ask yet: wait, then ask again
            return ("done", m)

        return self.exchange(("proposer", node), "log_read", fields, on_reply)

    def read_log(self, first=0, node=None, page=LOG_PAGE_LIMIT):
        """Every decided entry of proposer node (default: the leader) from
        slot first, page by page: a list of (slot, value), value None for a
        no-op (or a configuration, or a retry that landed twice)."""
        if node is None:
            node = self.find_leader()
        entries, nxt = [], first
        while True:
            reply = self.log(node, nxt, page)
            if reply.get("start", 0) > nxt:
                raise Deleted(nxt, reply["start"])
            got = reply["entries"]
            if not got:
                break
            for e in got:
                entries.append((e["slot"], e.get("value")))
            nxt = got[-1]["slot"] + 1
            if nxt >= reply["decided"]:
                break
        return entries

    def status(self, node):
        """The StatusReply of node (("proposer", 1) or ("acceptor", 3)) as a dict."""
        req = self._next_req()

        def on_reply(sender, kind, m):
            if kind == "status_reply" and m.get("req") == req and sender == node:
                return ("done", m)
            return None

        return self.exchange(node, "status_request", {"req": req}, on_reply)

    def find_leader(self):
        """The proposer that says it leads; else the one that decided the most."""
        best = None
        for ident in sorted(self.cluster.proposers):
            try:
                s = self.status(("proposer", ident))
            except Timeout:
                continue
            if s["role"] == "leader" and not s["failed"]:
                self.leader = ident
                return ident
            if best is None or s["decided"] > best[1]:
                best = (ident, s["decided"])
        if best is None:
            raise Timeout("no proposer answered")
        return best[0]

    def _next_req(self):
        req = self.next_req
        self.next_req += 1
        return req


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

def _cmd_propose(client, args):
    ok = True
    for value in args.values:
        try:
            slot = client.propose(value)
        except (PaxosError, ValueError) as e:
            print(f"paxos_client: {value!r}: {e}", file=sys.stderr)
            ok = False
            continue
        if args.json:
            print(json.dumps({"instance": slot, "value": value}, ensure_ascii=False))
        else:
            print(f"{slot}\t{value}")
    return 0 if ok else 1


def _cmd_log(client, args):
    node = args.node if args.node is not None else client.find_leader()
    printed, nxt = 0, args.first
    while args.limit is None or printed < args.limit:
        reply = client.log(node, nxt, LOG_PAGE_LIMIT)
        if reply.get("start", 0) > nxt:
            print(f"paxos_client: {Deleted(nxt, reply['start'])}", file=sys.stderr)
            return 1
        if not reply["entries"]:
            break
        for e in reply["entries"]:
            if args.limit is not None and printed >= args.limit:
                break
            value = e.get("value")
            if args.json:
                line = {"instance": e["slot"], "value": value}
                if value is None:
                    line = {"instance": e["slot"], "noop": True}
                print(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            else:
                print(f"{e['slot']}\t{value}" if value is not None else str(e["slot"]))
            printed += 1
        nxt = reply["entries"][-1]["slot"] + 1
        if nxt >= reply["decided"]:
            break
    return 0


def _cmd_status(client, args):
    nodes = [("proposer", i) for i in sorted(client.cluster.proposers)]
    nodes += [("acceptor", i) for i in sorted(client.cluster.acceptors)]
    leader, up_acceptors = None, 0
    for node in nodes:
        try:
            s = client.status(node)
        except Timeout:
            s = None
        if s is None:
            row = {"node": node_name(node), "role": node[0], "state": "unreachable", "leader": None,
                   "ballot": None, "decided": None, "epoch": None}
        else:
            state = "failed" if s["failed"] else (s.get("state") or "up")
            row = {"node": node_name(node), "role": s["role"], "state": state, "leader": s["leader"],
                   "ballot": ballot_str(s["ballot"]), "decided": s["decided"], "epoch": s.get("epoch", 0)}
            if s["role"] == "leader" and state == "up":
                leader = node[1]
            if node[0] == "acceptor" and state == "up":
                up_acceptors += 1
        if args.json:
            print(json.dumps(row, separators=(",", ":")))
        else:
            shown = {k: ("-" if v is None else v) for k, v in row.items()}
            print("{node:<12} {role:<10} {state:<12} leader={leader} ballot={ballot} decided={decided} "
                  "epoch={epoch}".format(**shown))
    return 0 if leader is not None and up_acceptors > len(client.cluster.acceptors) // 2 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="paxos_client.py", description="A Python client of the Paxos log.")
    parser.add_argument("--config", required=True, help="the cluster file (TOML)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request (default 10)")
    parser.add_argument("--trace", action="store_true", help="print every datagram sent and received on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("propose", help="append values; prints <instance>TAB<value> per value")
    p.add_argument("--json", action="store_true")
    p.add_argument("values", nargs="+", metavar="VALUE")
    p = sub.add_parser("log", help="print a proposer's decided log")
    p.add_argument("--node", type=int, help="the proposer to read (default: the leader)")
    p.add_argument("--from", dest="first", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help="every node's status; exit 1 without a leader or a majority of acceptors")
    p.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    def trace(direction, node, datagram):
        where = f" {node_name(node)}" if node else ""
        print(f"{direction}{where}: {datagram.decode('utf-8', 'replace')}", file=sys.stderr)

    try:
        cluster = Cluster.load(args.config)
        with Client(cluster, timeout=args.timeout, trace=trace if args.trace else None) as client:
            return {"propose": _cmd_propose, "log": _cmd_log, "status": _cmd_status}[args.command](client, args)
    except (PaxosError, OSError, ValueError, KeyError) as e:
        print(f"paxos_client: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
