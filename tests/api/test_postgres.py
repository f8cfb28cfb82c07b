#!/usr/bin/env python3
"""The PostgreSQL store from outside, on a real cluster of its own
(tests/pg/pgcluster.py): PostgreSQL unreachable at start; PostgreSQL
restarted and stopped under load (in-flight commands answer 503 with
Retry-After, nothing half-applied, /readyz says why, the node reconnects by
itself); two nodes on one database racing on the same wallets and the same
Idempotency-Keys (money conserved, every key applied once, no 503); and a
migration SQLite -> PostgreSQL -> SQLite that copies the log exactly.
Usage: test_postgres.py path/to/wallex"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pg"))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import Runner, Server, expect, position_key  # noqa: E402

BINARY = None
CLUSTER = None
_n = [0]
_lock = threading.Lock()


def uid(p="w"):
    with _lock:
        _n[0] += 1
        return "%s-%d-%d" % (p, os.getpid(), _n[0])


def post(s, path, body, headers=None):
    return s.request("POST", path, body, headers=headers)


def create(s, wid, initial="100.00"):
    st, _, payload, _ = post(s, "/wallets", {"walletId": wid, "ownerId": "o",
                                             "initialBalance": initial})
    expect(st == 201, payload)


def pg_server(schema=None, data_dir=None, extra=()):
    s = Server(BINARY, data_dir=data_dir, extra_args=list(extra))
    if schema is not None:
        s.schema = schema
        s.store_args = harness.store_args(schema)
    return s


def verify_log(schema):
    """wallex verify on a node's log, with a read side of its own (a running
    node holds its data directory)."""
    d = tempfile.mkdtemp(prefix="wallex-verify-")
    try:
        return subprocess.run([BINARY, "verify", "--data-dir", d] + harness.store_args(schema),
                              capture_output=True, text=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def proc_unreachable_at_start():
    d = tempfile.mkdtemp(prefix="wallex-pg-")
    try:
        t0 = time.time()
        r = subprocess.run([BINARY, "serve", "--store", "postgres", "--pg",
                            "postgresql://postgres@127.0.0.1:%d/postgres" % pgcluster.free_port(),
                            "--data-dir", d, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        expect(r.returncode == 3, (r.returncode, r.stderr[-500:]))
        expect("cannot reach PostgreSQL" in r.stderr and "Connection refused" in r.stderr,
               r.stderr[-500:])
        expect(time.time() - t0 < 10)
        r = subprocess.run([BINARY, "serve", "--store", "postgres", "--data-dir", d],
                           capture_output=True, text=True, timeout=30)
        expect(r.returncode != 0 and "--pg" in r.stderr, r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Load:
    """Credits and transfers on two wallets from a few threads until
    stopped; counts answers by status and sums the acknowledged credits."""

    def __init__(self, s, a, b):
        self.s, self.a, self.b = s, a, b
        self.statuses = {}
        self.credited = Decimal("0")
        self.no_retry_after = 0
        self.stop = False
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(4)]
        for t in self.threads:
            t.start()

    def run(self, i):
        while not self.stop:
            try:
                if i % 2:
                    st, h, _, _ = post(self.s, "/wallets/%s/credit" % self.a, {"amount": "1.00"})
                else:
                    st, h, _, _ = post(self.s, "/transfers", {"fromWalletId": self.a,
                                                              "toWalletId": self.b,
                                                              "amount": "0.01"})
            except OSError:
                st, h = "refused", {}
            with _lock:
                self.statuses[st] = self.statuses.get(st, 0) + 1
                if st == 200:
                    self.credited += 1
                if st == 503 and "retry-after" not in h:
                    self.no_retry_after += 1
            time.sleep(0.002)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def wait_ready(s, timeout_s=30):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if s.request("GET", "/readyz")[0] == 200:
            return True
        time.sleep(0.1)
    return False


def proc_restart_and_outage_under_load():
    s = pg_server().start()
    try:
        a, b = uid(), uid()
        create(s, a)
        create(s, b, "0")
        load = Load(s, a, b)
        time.sleep(0.5)
        CLUSTER.restart("fast")  # every connection is cut
        time.sleep(0.5)
        CLUSTER.stop("immediate")  # and a crash: down for a while
        time.sleep(1.0)
        st, h, _, body = s.request("GET", "/readyz")
        expect(st == 503 and h.get("retry-after") and "does not answer" in body["detail"],
               (st, body))
        expect("connect" in body["detail"], body)  # the reason, from libpq
        CLUSTER.start()
        expect(wait_ready(s), "the node did not reconnect by itself")
        time.sleep(0.5)
        load.finish()
        expect(load.statuses.get(200, 0) > 20 and load.statuses.get(201, 0) > 20, load.statuses)
        expect(load.statuses.get(503, 0) > 0, load.statuses)  # the outage was seen
        expect(set(load.statuses) <= {200, 201, 503}, load.statuses)
        expect(load.no_retry_after == 0)
        # Serving again, and nothing half-applied: the log's invariants
        # hold and every acknowledged credit is in it (a commit cut off
        # mid-flight may have landed too: at least, never less).
        st, _, _, body = post(s, "/wallets/%s/credit" % a, {"amount": "1.00"})
        expect(st == 200, body)
        s.read_your_writes = True
        wa = s.request("GET", "/wallets/" + a)[3]
        wb = s.request("GET", "/wallets/" + b)[3]
        expect(wa["balance"] + wb["balance"] >= Decimal("101.00") + load.credited,
               (wa, wb, load.credited))
        r = verify_log(s.schema)
        expect(r.returncode == 0, r.stdout[-800:] + r.stderr[-800:])
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_two_nodes_one_database():
    schema = "nodes_%d" % os.getpid()
    n1 = pg_server(schema).start()
    n2 = pg_server(schema)
    n2.token = n1.token  # the first start's token is in n1's directory; tokens are in the log
    n2.start()
    try:
        wallets = [uid() for _ in range(4)]
        for w in wallets:
            create(n1, w, "1000.00")
        # Both nodes know the wallets (cached), then race on them.
        for w in wallets:
            expect(post(n2, "/wallets/%s/credit" % w, {"amount": "0.01"})[0] == 200)

        def transfer(i):
            node = (n1, n2)[i % 2]
            src, dst = wallets[i % 4], wallets[(i * 7 + 1) % 4]
            if src == dst:
                dst = wallets[(i + 1) % 4]
            st, h, payload, _ = post(node, "/transfers", {"fromWalletId": src, "toWalletId": dst,
                                                          "amount": "1.00"})
            return st, h.get("x-position")

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            results = list(ex.map(transfer, range(600)))
        codes = {}
        for st, _ in results:
            codes[st] = codes.get(st, 0) + 1
        expect(set(codes) <= {201, 409}, codes)  # 409 only once retries ran out
        expect(codes.get(201, 0) > 550, codes)

        # The same key on both nodes at once: applied once, the other
        # answer a replay or "in use".
        for k in range(20):
            key = {"Idempotency-Key": uid("k")}
            body = {"amount": "5.00"}
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                f1 = ex.submit(post, n1, "/wallets/%s/credit" % wallets[0], body, key)
                f2 = ex.submit(post, n2, "/wallets/%s/credit" % wallets[0], body, key)
                r1, r2 = f1.result(), f2.result()
            ok = [r for r in (r1, r2) if r[0] == 200]
            expect(len(ok) >= 1, (r1[:3], r2[:3]))
            fresh = [r for r in ok if r[1].get("idempotency-replayed") != "true"]
            expect(len(fresh) == 1 or (len(ok) == 1 and r1[0] + r2[0] == 609), (r1[:3], r2[:3]))
            other = r2 if r1 in fresh else r1
            expect(other[0] == 200 or (other[0] == 409 and
                                       other[3]["code"] == "idempotency_key_in_use"), other[:3])
            for r in (r1, r2):
                if r[0] == 200:
                    n1.note_position(r[1]["x-position"])

        # An X-Position from either node is a valid X-Min-Position on both.
        for _, pos in results:
            if pos:
                n1.note_position(pos)
                n2.note_position(pos)
        n2.note_position(n1.position)
        total = sum(n1.request("GET", "/wallets/" + w)[3]["balance"] for w in wallets)
        expect(total == Decimal("4000.04") + Decimal("100.00"), total)  # 20 keys x 5.00
        for w in wallets:
            expect(n1.request("GET", "/wallets/" + w)[3] == n2.request("GET", "/wallets/" + w)[3])
        conflicts = 0
        for node in (n1, n2):
            text = node.request("GET", "/metrics")[2].decode()
            for line in text.splitlines():
                if line.startswith("wallex_writer_conflict_retries_total "):
                    conflicts += int(line.split()[1])
        expect(conflicts > 0, "no race was lost: the test did not race")
        r = verify_log(schema)
        expect(r.returncode == 0, r.stdout[-800:] + r.stderr[-500:])
        expect(n1.stop() == 0 and n2.stop() == 0)
    finally:
        n1.cleanup()
        n2.cleanup()


def same_wallets(s, before):
    """The read side has caught up with the log and shows these wallets."""
    deadline = time.time() + 20
    while time.time() < deadline:
        now = {w: s.request("GET", "/wallets/" + w)[3] for w in before}
        if now == before:
            return True
        time.sleep(0.1)
    return False


def log_of(cmd_args):
    out = subprocess.run([BINARY, "events"] + cmd_args, capture_output=True, text=True,
                         check=True).stdout
    events = [json.loads(line) for line in out.splitlines()]
    for e in events:
        e.pop("position")
    return events


def migrate(src, dst, schema):
    return subprocess.run([BINARY, "migrate", "--from", src, "--to", dst, "--pg-schema", schema],
                          capture_output=True, text=True, timeout=300)


def proc_migrate_round_trip():
    schema = "migrated_%d" % os.getpid()
    src = Server(BINARY, extra_args=["--store", "sqlite"]).start()
    back = tempfile.mkdtemp(prefix="wallex-back-")
    shutil.rmtree(back)
    pg = pg_server(schema)
    try:
        wallets = [uid() for _ in range(5)]
        for w in wallets:
            create(src, w, "50.00")
        for i in range(40):
            post(src, "/transfers", {"fromWalletId": wallets[i % 5],
                                     "toWalletId": wallets[(i + 2) % 5], "amount": "1.25"})
            post(src, "/wallets/%s/debit" % wallets[i % 5], {"amount": "0.10"})
        before = {w: src.request("GET", "/wallets/" + w)[3] for w in wallets}
        expect(src.stop() == 0)

        r = migrate(src.data_dir, CLUSTER.url, schema)
        expect(r.returncode == 0 and "events copied" in r.stderr, r.stderr)
        r = migrate(src.data_dir, CLUSTER.url, schema)  # again: nothing left to copy
        expect(r.returncode == 0 and "0 events copied" in r.stderr, r.stderr)
        other = Server(BINARY, extra_args=["--store", "sqlite"]).start()
        create(other, uid())
        other.stop()
        r = migrate(other.data_dir, CLUSTER.url, schema)  # not a prefix of this log
        expect(r.returncode == 1 and "not a copy" in r.stderr, r.stderr)
        other.cleanup()

        r = migrate(CLUSTER.url, back, schema)
        expect(r.returncode == 0, r.stderr)
        original = log_of(["--data-dir", src.data_dir])
        expect(len(original) > 100)
        expect(log_of(["--store", "postgres", "--pg", CLUSTER.url, "--pg-schema", schema])
               == original)
        expect(log_of(["--data-dir", back]) == original)

        # Each side's read side rebuilds to the same wallets.
        pg.token = src.token  # the token is in the copied log, its file in src's directory
        pg.start()
        expect(same_wallets(pg, before))
        expect(verify_log(schema).returncode == 0)
        pg.stop()
        r = subprocess.run([BINARY, "verify", "--data-dir", back], capture_output=True, text=True)
        expect(r.returncode == 0, r.stdout + r.stderr)
        again = Server(BINARY, data_dir=back, extra_args=["--store", "sqlite"])
        again.token = src.token
        again.start()
        expect(same_wallets(again, before))
        again.stop()
        shutil.rmtree(back, ignore_errors=True)
        # The target must be empty at the first start.
        os.makedirs(back)
        with open(os.path.join(back, "notes.txt"), "w") as f:
            f.write("not a wallex directory")
        r = migrate(CLUSTER.url, back, schema)
        expect(r.returncode == 1 and "not empty" in r.stderr, r.stderr)
    finally:
        src.cleanup()
        pg.cleanup()
        shutil.rmtree(back, ignore_errors=True)


def main():
    global BINARY, CLUSTER
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv[1])
    runner = Runner()
    with pgcluster.Cluster() as cluster:
        CLUSTER = cluster
        harness.PG_URL = cluster.url
        runner.run([proc_unreachable_at_start, proc_restart_and_outage_under_load,
                    proc_two_nodes_one_database, proc_migrate_round_trip])
    runner.finish()


if __name__ == "__main__":
    main()
