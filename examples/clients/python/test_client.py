#!/usr/bin/env python3
"""Tests of paxos_client.py against a live cluster (unittest, standard library).

    PAXOS_CONFIG=run/cluster/cluster.toml python3 examples/clients/python/test_client.py

Without PAXOS_CONFIG every test is skipped. The tests that need a cluster
whose [auth] has a client_key_file run only against one, and those that
need one without run only against that (scripts/ci-python.sh runs both).
"""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import paxos_client as px  # noqa: E402

CONFIG = os.environ.get("PAXOS_CONFIG")


def unique(tag):
    return f"py-{tag}-{random.SystemRandom().getrandbits(48):012x}"


def load():
    return px.Cluster.load(CONFIG)


def first_answer(client, to, kind, fields, timeout=3.0):
    """Sends one request and returns the first answer to it (sender, kind, fields), cookies handled."""
    return client.exchange(to, kind, fields, lambda s, k, m: ("done", (s, k, m)), timeout=timeout)


@unittest.skipUnless(CONFIG, "set PAXOS_CONFIG to the cluster file of a live cluster")
class Cluster(unittest.TestCase):
    """What every client may rely on, with or without a client key."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = load()
        cls.client = px.Client(cls.cluster)
        cls.leader = cls.client.find_leader()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def log_at(self, slots, node=None):
        """The values at `slots` in proposer node's log (default: the leader's)."""
        entries = dict(self.client.read_log(min(slots), node=node))
        return [entries.get(s, "<missing>") for s in slots]

    def test_proposed_values_are_in_the_log_at_the_instances_returned(self):
        values = [unique(f"v{i}") for i in range(5)]
        slots = [self.client.propose(v) for v in values]
        self.assertEqual(slots, sorted(slots), "a value acknowledged before another is proposed has the lower instance")
        self.assertEqual(len(set(slots)), len(slots))
        self.assertEqual(self.log_at(slots), values)
        # Every proposer learns the same values at the same instances.
        for p in sorted(self.cluster.proposers):
            deadline = time.monotonic() + 5
            while self.log_at(slots, node=p) != values and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(self.log_at(slots, node=p), values, f"the log of proposer {p}")

    def test_unicode_and_json_special_characters_round_trip(self):
        value = 'quote " backslash \\ newline \n tab \t nul \x00 é 😀'
        slot = self.client.propose(value)
        self.assertEqual(self.log_at([slot]), [value])

    def test_a_retry_under_the_same_seq_lands_once(self):
        value = unique("retry")
        slot = self.client.propose(value)
        seq = self.client.last_seq
        # The answer was "lost": the client asks again under the same seq, twice.
        self.assertEqual(self.client.propose(value, seq=seq), slot)
        self.assertEqual(self.client.propose(value, seq=seq), slot)
        entries = self.client.read_log(slot)
        self.assertEqual([s for s, v in entries if v == value], [slot], "exactly once")

    def test_an_older_seq_is_stale(self):
        first = self.client.propose(unique("a"))
        seq = self.client.last_seq
        self.client.propose(unique("b"))
        with self.assertRaises(px.Refused) as e:
            self.client.propose(unique("late"), seq=seq)
        self.assertEqual(e.exception.kind, "stale")
        self.assertGreaterEqual(first, 0)

    def test_a_follower_redirects_to_the_leader(self):
        followers = [p for p in sorted(self.cluster.proposers) if p != self.leader]
        if not followers:
            self.skipTest("a cluster of one proposer")
        seq = self.client.next_seq
        self.client.next_seq += 1
        value = unique("redirect")
        sender, kind, m = first_answer(self.client, ("proposer", followers[0]), "client_propose",
                                       {"seq": seq, "value": value})
        self.assertEqual((sender, kind), (("proposer", followers[0]), "client_redirect"))
        self.assertEqual(m, {"seq": seq, "leader": self.leader})
        # propose() follows it: start at the follower, end decided by the leader.
        self.client.leader = followers[0]
        slot = self.client.propose(value, seq=seq)
        self.assertEqual(self.client.leader, self.leader)
        self.assertEqual(self.log_at([slot]), [value])

    def test_values_over_8_kib_are_refused(self):
        with self.assertRaises(ValueError):
            self.client.propose("é" * (px.MAX_VALUE_BYTES // 2 + 1))  # 8194 bytes of UTF-8: nothing is sent
        # Sent anyway, the leader answers too_large; exactly 8 KiB is fine.
        seq = self.client.next_seq
        self.client.next_seq += 1
        _, kind, m = first_answer(self.client, ("proposer", self.leader), "client_propose",
                                  {"seq": seq, "value": "x" * (px.MAX_VALUE_BYTES + 1)})
        self.assertEqual((kind, m), ("client_error", {"seq": seq, "kind": "too_large"}))
        value = "y" * (px.MAX_VALUE_BYTES - 20) + unique("")[:20]
        slot = self.client.propose(value)
        self.assertEqual(self.log_at([slot]), [value])

    def test_log_pages_join_up(self):
        slots = [self.client.propose(unique(f"page{i}")) for i in range(5)]
        whole = self.client.read_log(slots[0], node=self.leader)
        paged = self.client.read_log(slots[0], node=self.leader, page=2)
        self.assertEqual(paged, whole)
        self.assertEqual([s for s, _ in whole], list(range(slots[0], slots[0] + len(whole))), "no gaps")
        reply = self.client.log(self.leader, slots[0], 2)
        self.assertEqual(len(reply["entries"]), 2)
        self.assertGreater(reply["decided"], slots[-1])
        self.assertEqual(reply["start"], 0, "nothing deleted by retention")
        # Beyond the decided end: no entries, and where the end is.
        end = self.client.log(self.leader, reply["decided"] + 1000, 10)
        self.assertEqual(end["entries"], [])
        self.assertGreaterEqual(end["decided"], reply["decided"])

    def test_linearizable_reads_are_served_by_the_leader(self):
        slot = self.client.propose(unique("lin"))
        _, kind, m = first_answer(self.client, ("proposer", self.leader), "log_read",
                                  {"req": 1_000_001, "from": slot, "limit": 1, "linearizable": True})
        self.assertEqual(kind, "log_reply")
        if not m["linearizable"] and m["entries"]:
            self.skipTest("this build ignores the linearizable flag of LogRead")
        reply = self.client.log(self.leader, slot, 1, linearizable=True)
        self.assertTrue(reply["linearizable"])
        self.assertEqual(reply["entries"][0]["slot"], slot)
        for p in self.cluster.proposers:
            if p != self.leader:
                # A follower says who leads, with no entries; log() follows it.
                _, _, m = first_answer(self.client, ("proposer", p), "log_read",
                                       {"req": 1_000_002, "from": slot, "limit": 1, "linearizable": True})
                self.assertEqual((m["entries"], m["linearizable"], m.get("leader")), ([], False, self.leader))
                self.assertTrue(self.client.log(p, slot, 1, linearizable=True)["linearizable"])

    def test_every_node_reports_its_status(self):
        leaders = []
        for p in sorted(self.cluster.proposers):
            s = self.client.status(("proposer", p))
            self.assertIn(s["role"], ("leader", "follower", "candidate"))
            self.assertFalse(s["failed"])
            self.assertEqual(s["state"], "up")
            self.assertGreaterEqual(s["epoch"], 1)
            self.assertEqual(s["leader"], self.leader)
            self.assertIsInstance(s["decided"], int)
            self.assertIsInstance(s["counters"], dict)
            if s["role"] == "leader":
                leaders.append(p)
                self.assertEqual(s["ballot"]["proposer"], p)
                heard = {px.node_of(n) for n in s["peers_heard"]}
                acceptors = {("acceptor", a) for a in self.cluster.acceptors}
                self.assertGreater(len(heard & acceptors), len(acceptors) // 2)
        self.assertEqual(leaders, [self.leader])
        for a in sorted(self.cluster.acceptors):
            s = self.client.status(("acceptor", a))
            self.assertEqual((s["role"], s["state"], s["failed"], s["leader"]), ("acceptor", "up", False, None))
            self.assertEqual(s["ballot"]["proposer"], self.leader, "its promise is the leader's ballot")
            self.assertGreaterEqual(s["epoch"], 1)
        with self.assertRaises(px.PaxosError):
            self.client.status(("acceptor", max(self.cluster.acceptors) + 100))

    def test_the_cli_prints_like_paxosctl(self):
        import contextlib
        import io
        import json
        value = unique("cli")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = px.main(["--config", CONFIG, "propose", "--json", value])
        self.assertEqual(code, 0)
        line = json.loads(out.getvalue())
        self.assertEqual(line["value"], value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = px.main(["--config", CONFIG, "log", "--from", str(line["instance"]), "--limit", "1"])
        self.assertEqual((code, out.getvalue()), (0, f"{line['instance']}\t{value}\n"))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = px.main(["--config", CONFIG, "status", "--json"])
        self.assertEqual(code, 0)
        rows = [json.loads(r) for r in out.getvalue().splitlines()]
        self.assertEqual(len(rows), len(self.cluster.proposers) + len(self.cluster.acceptors))
        self.assertEqual([r["node"] for r in rows if r["role"] == "leader"], [f"proposer-{self.leader}"])


@unittest.skipUnless(CONFIG and load().client_keys is None, "needs a cluster without [auth] client_key_file")
class UnsignedClients(unittest.TestCase):
    """Without client keys, reads prove the client's address with a cookie."""

    def test_an_unproven_read_gets_a_cookie_first_then_its_answer(self):
        seen = []
        with px.Client(load(), trace=lambda d, n, b: seen.append((d, b))) as c:
            leader = c.find_leader()
            self.assertIn(("proposer", leader), c.cookies)
            cookie = c.cookies[("proposer", leader)]
            self.assertRegex(cookie, "^[0-9a-f]{32}$")
            sent = [b for d, b in seen if d == "out"]
            self.assertEqual(len(sent[0]), px.MIN_UNPROVEN_READ_BYTES, "padded with spaces")
            self.assertIn(b'"cookie":{"req":', [b for d, b in seen if d == "in"][0])
            # A read with the cookie gets its answer at once.
            seen.clear()
            c.status(("proposer", leader))
            self.assertEqual([d for d, _ in seen], ["out", "in"])
            self.assertIn(cookie.encode(), seen[0][1])
            for _, b in seen:
                self.assertNotEqual(b[-px.TRAILER_BYTES:-px.MAC_HEX_BYTES], px.MAC_TAG, "nothing is signed")

    def test_a_short_unproven_read_gets_no_answer(self):
        with px.Client(load(), retry=1.0) as c:
            to = ("proposer", max(c.cluster.proposers))
            body = px.encode(px.envelope(c.cluster.name, c.id, to, "status_request", {"req": 1}))
            self.assertLess(len(body), px.MIN_UNPROVEN_READ_BYTES)
            c.sock.sendto(body, c._addr(to))
            self.assertIsNone(c._receive(time.monotonic() + 1.0), "a cookie would be larger than the read")
            # Padded, the same read gets its cookie.
            c.sock.sendto(body.ljust(px.MIN_UNPROVEN_READ_BYTES), c._addr(to))
            answer = c._receive(time.monotonic() + 2.0)
            self.assertEqual([k for _, k, _ in answer], ["cookie"])


@unittest.skipUnless(CONFIG and load().client_keys is not None, "needs a cluster whose [auth] has a client_key_file")
class SignedClients(unittest.TestCase):
    """With [auth] client_key_file, only signed requests are answered, and answers are signed."""

    def test_an_unsigned_request_gets_no_answer_while_a_signed_one_is_decided(self):
        cluster = load()
        value = unique("unsigned")
        with px.Client(cluster, sign=False, timeout=2.0) as unsigned:
            with self.assertRaises(px.Timeout):
                unsigned.propose(value)
            with self.assertRaises(px.Timeout):
                unsigned.status(("proposer", max(cluster.proposers)))
        seen = []
        with px.Client(cluster, trace=lambda d, n, b: seen.append((d, b))) as signed:
            slot = signed.propose(value)
            entries = signed.read_log(0)
        self.assertEqual([s for s, v in entries if v == value], [slot], "decided once: the unsigned one never was")
        self.assertFalse(signed.cookies, "a key holder needs no cookie")
        for direction, datagram in seen:
            body, ok = px.open_datagram(datagram, cluster.client_keys)
            self.assertTrue(ok, f"{direction}: {datagram[-80:]!r} is signed with the client key")

    def test_a_request_signed_with_another_key_gets_no_answer(self):
        cluster = load()
        with px.Client(cluster, timeout=2.0) as forger:
            forger.keys = [os.urandom(32)]
            with self.assertRaises(px.Timeout):
                forger.propose(unique("forged"))

    def test_the_peer_key_is_no_client_key_for_answers(self):
        # Answers to clients are signed with the client key; one "signed" with
        # any other key is refused by open_datagram.
        cluster = load()
        body = b'{"version":2}'
        self.assertEqual(px.open_datagram(px.sign(body, cluster.client_keys[0]), cluster.client_keys), (body, True))
        if cluster.peer_keys:
            self.assertEqual(px.open_datagram(px.sign(body, cluster.peer_keys[0]), cluster.client_keys), (None, False))


class Offline(unittest.TestCase):
    """The pieces that need no cluster: MAC, key files, the TOML fallback."""

    def test_the_mac_matches_the_rust_codec(self):
        # Signed by paxos-proto's KeyRing::sign with this key (docs/PROTOCOL.md).
        key = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        body = (b'{"version":2,"cluster":"paxos","from":{"client":4503599627370497},"to":{"proposer":2},'
                b'"msg":{"client_propose":{"seq":3,"value":"hello"}}}')
        self.assertEqual(px.sign(body, key)[len(body):],
                         b"#m17f994d6b3844114d8cd7da0fd2b6cf486d93d4c582d2265c64c921ac55eaf903")
        self.assertEqual(px.open_datagram(px.sign(body, key), [key]), (body, True))
        upper = body + b"#m1" + px.sign(body, key)[-64:].upper()
        self.assertEqual(px.open_datagram(upper, [key]), (None, False), "lower-case hex only")
        self.assertEqual(px.open_datagram(body, [key]), (body, False), "unsigned")

    def test_a_padded_read_captured_from_a_real_cluster_verifies(self):
        # docs/PROTOCOL.md, "A captured session": a status request padded to 320 bytes, then signed.
        key = bytes.fromhex("43d3ee8773845ed39589b036e4c6dba2ad1c7d9892bc3f2ce8d300f40e8a0257")
        body = (b'{"version":2,"cluster":"paxos","from":{"client":4503599627370497},"to":{"acceptor":1},'
                b'"msg":{"status_request":{"req":1}}}').ljust(px.MIN_UNPROVEN_READ_BYTES)
        datagram = body + b"#m1b1b709c46449aa4f60b02a1dcd1adccb41dc8912d3f96c482f43a3ce3d97e2b2"
        self.assertEqual(len(datagram), 387)
        self.assertEqual(px.open_datagram(datagram, [key]), (body, True))
        self.assertEqual(px.sign(body, key), datagram)

    def test_the_minimal_toml_reader_reads_a_cluster_file(self):
        text = ('cluster = "c1"  # a name\n[[proposers]]\nid = 1\naddr = "127.0.0.1:7001"\n\n'
                '[[acceptors]]\nid = 1\naddr = "h:7101"\n[auth]\npeer_key_file = "peer.key"\n'
                '[node]\nfsync = false\nheartbeat_ms = 1_00\n')
        doc = px._minimal_toml(text, "x.toml")
        self.assertEqual(doc["cluster"], "c1")
        self.assertEqual(doc["proposers"], [{"id": 1, "addr": "127.0.0.1:7001"}])
        self.assertEqual(doc["auth"], {"peer_key_file": "peer.key"})
        self.assertEqual(doc["node"], {"fsync": False, "heartbeat_ms": 100})


if __name__ == "__main__":
    unittest.main(verbosity=2)
