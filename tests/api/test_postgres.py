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
        conflicts = caught_up = 0
        for node in (n1, n2):
            text = node.request("GET", "/metrics")[2].decode()
            for line in text.splitlines():
                if line.startswith("wallex_writer_conflict_retries_total "):
                    conflicts += int(line.split()[1])
                if line.startswith("wallex_writer_catch_up_events_total "):
                    caught_up += int(line.split()[1])
        expect(conflicts > 0, "no race was lost: the test did not race")
        # The losers' cached states were brought up to the log (and the log
        # followed for a while after), not dropped: the balances above
        # prove what they were brought up to.
        expect(caught_up > 0, "no cached state was brought up to the log")
        r = verify_log(schema)
        expect(r.returncode == 0, r.stdout[-800:] + r.stderr[-500:])
        expect(n1.stop() == 0 and n2.stop() == 0)
    finally:
        n1.cleanup()
        n2.cleanup()


def projected_here(s):
    """{consumer: projectedHere} of a node, or None when it does not answer."""
    try:
        st, _, _, body = s.request("GET", "/admin/projections", headers={"X-Min-Position": "0"})
    except OSError:
        return None
    return {p["name"]: p["projectedHere"] for p in body["data"]} if st == 200 else None


class Transfers:
    """Transfers back and forth between a few wallets from threads bound to
    nodes, until stopped; a thread whose node dies moves to the next live
    one, as a client behind a load balancer would. Keeps every
    acknowledged transfer id and the highest X-Position each node gave."""

    def __init__(self, nodes, wallets, threads=8):
        self.nodes, self.wallets = nodes, wallets
        self.acked, self.codes, self.positions = [], {}, {}
        self.stop = False
        # Daemons: a failing test must not hang on them.
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, i):
        k = 0
        node = i % len(self.nodes)
        while not self.stop:
            k += 1
            a = self.wallets[(i + k) % len(self.wallets)]
            b = self.wallets[(i + 3 * k + 1) % len(self.wallets)]
            if a == b:
                continue
            tid = "t-%d-%d-%d" % (os.getpid(), i, k)
            s = self.nodes[node]
            try:
                st, h, _, _ = post(s, "/transfers", {"transferId": tid, "fromWalletId": a,
                                                     "toWalletId": b, "amount": "1.00"})
            except OSError:
                node = (node + 1) % len(self.nodes)  # that node is gone: fail over
                time.sleep(0.01)
                continue
            with _lock:
                self.codes[st] = self.codes.get(st, 0) + 1
                if st == 201:
                    self.acked.append(tid)
                    old = self.positions.get(node, "0")
                    if position_key(h["x-position"]) > position_key(old):
                        self.positions[node] = h["x-position"]

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


# API.md: a token issued or revoked is known on every node within 1 s.
TOKEN_DELAY_S_MAX = 1.0


def until_status(node, path, token, status):
    """Seconds until `path` with `token` answers `status` on node (None
    past three times the promised delay)."""
    started = time.time()
    while time.time() - started < 3 * TOKEN_DELAY_S_MAX:
        if node.request("GET", path, token=token)[0] == status:
            return time.time() - started
        time.sleep(0.01)
    return None


def tokens_cross_nodes(n1, n2):
    """A user token issued on one node works on the other within the
    promised delay (its refresher reads the tokens read model another node
    may project); revoked there, the first refuses it within the delay."""
    subject = uid("u")
    st, _, payload, body = post(n1, "/admin/tokens", {"role": "user", "subject": subject})
    expect(st == 201, payload)
    mine = "/wallets?ownerId=" + subject
    expect(n1.request("GET", mine, token=body["token"])[0] == 200, "known at once where issued")
    issued = until_status(n2, mine, body["token"], 200)
    expect(issued is not None and issued <= TOKEN_DELAY_S_MAX, ("issued, known after", issued))
    st, _, payload, _ = n2.request("DELETE", "/admin/tokens/" + body["tokenId"])
    expect(st == 204, payload)
    expect(n2.request("GET", mine, token=body["token"])[0] == 401, "refused at once where revoked")
    revoked = until_status(n1, mine, body["token"], 401)
    expect(revoked is not None and revoked <= TOKEN_DELAY_S_MAX, ("revoked, known after", revoked))
    print("     a token issued on one node known on the other after %.0f ms, its revocation"
          " after %.0f ms" % (issued * 1000, revoked * 1000), flush=True)


def proc_two_nodes_share_the_read_side():
    """Two nodes on one database share one read side: the first projects
    every read model, the other answers queries from the same tables and
    follows its checkpoints; a token issued or revoked on one is known on
    the other within API.md's second. Transfers both ways on the same four
    wallets from both nodes; kill -9 of the node that projects: the other
    takes its leases over and catches up, every acknowledged transfer is
    there, money is conserved, and a position from either node is waited
    for on the other."""
    schema = "shared_%d" % os.getpid()
    n1 = pg_server(schema).start()
    n2 = pg_server(schema)
    n2.token = n1.token  # the first start's token is in n1's directory; tokens are in the log
    n2.start()
    load = None
    try:
        expect(all(projected_here(n1).values()), projected_here(n1))
        expect(not any(projected_here(n2).values()), projected_here(n2))
        # The dashboard's feed on both nodes: the same read models, each
        # projected by one of them, and one node delivering webhooks.
        stats = [n.request("GET", "/admin/stats") for n in (n1, n2)]
        expect(all(st[0] == 200 for st in stats), stats)
        expect([sorted((p["name"], p["projectedHere"]) for p in st[3]["projections"])
                for st in stats] == [sorted((name, here) for name in projected_here(n1))
                                     for here in (True, False)], stats)
        deadline = time.time() + 5
        while time.time() < deadline:
            delivering = [n.request("GET", "/admin/stats")[3]["webhooks"]["deliversHere"]
                          for n in (n1, n2)]
            if sorted(delivering) == [False, True]:
                break
            time.sleep(0.05)
        expect(sorted(delivering) == [False, True], delivering)
        tokens_cross_nodes(n1, n2)
        wallets = [uid() for _ in range(4)]
        for w in wallets:
            create(n1, w, "1000.00")
        # Created on one node, visible on the other at that node's position.
        n2.note_position(n1.position)
        expect(all(n2.request("GET", "/wallets/" + w)[0] == 200 for w in wallets))
        load = Transfers([n1, n2], wallets)
        time.sleep(1.0)
        n1.proc.kill()  # SIGKILL: no clean stop, no lease handed over
        n1.proc.wait()
        n1.proc = None
        killed = time.time()
        took_over = None
        while time.time() - killed < 10:
            here = projected_here(n2)
            if here and all(here.values()):
                took_over = time.time() - killed
                break
            time.sleep(0.02)
        expect(took_over is not None, "the live node did not take the read models over")
        time.sleep(0.5)
        load.finish()
        print("     takeover after kill -9: %.0f ms; %d transfers acknowledged %r"
              % (took_over * 1000, len(load.acked), load.codes), flush=True)
        expect(set(load.codes) <= {201, 409, 422}, load.codes)
        expect(len(load.acked) > 50 and 1 in load.positions and 0 in load.positions, load.codes)
        # The dead node's last acknowledged position is waited for on the
        # live one, and every acknowledged transfer is in its read models.
        n2.position = load.positions[0]
        n2.note_position(load.positions[1])
        for tid in load.acked:
            st, _, _, body = n2.request("GET", "/transfers/" + tid)
            expect(st == 200, (tid, st, body))
        total = sum(n2.request("GET", "/wallets/" + w)[3]["balance"] for w in wallets)
        expect(total == Decimal("4000.00"), total)
        # Back up, the killed node follows: a position the other gave is
        # answered here, with the same balances.
        n1.start()
        expect(not any(projected_here(n1).values()), projected_here(n1))
        n1.position = n2.position
        for w in wallets:
            a, b = n1.request("GET", "/wallets/" + w), n2.request("GET", "/wallets/" + w)
            expect(a[0] == 200 and a[3] == b[3], (a[3], b[3]))
            expect(a[3]["balance"] >= 0, a[3])
        r = verify_log(schema)
        expect(r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout[-800:] + r.stderr[-500:])
        expect(n1.stop() == 0 and n2.stop() == 0)
    finally:
        if load is not None:
            load.finish()
        n1.cleanup()
        n2.cleanup()


def proc_leases_move_and_rebuilds_cross_nodes():
    """A read model's rebuild asked for on a node that does not project it
    runs on the one that does; a one-wallet rebuild on the follower waits
    for the holder's batches (the checkpoint row is locked) and leaves no
    drift; a clean stop hands every lease over."""
    schema = "leases_%d" % os.getpid()
    n1 = pg_server(schema).start()
    n2 = pg_server(schema)
    n2.token = n1.token  # the first start's token is in n1's directory; tokens are in the log
    n2.start()
    load = None
    try:
        wallets = [uid() for _ in range(3)]
        for w in wallets:
            create(n1, w, "100.00")
        # The rebuilds replay up to the holder's checkpoint: past the wallets.
        n2.position = n1.position
        expect(all(n2.request("GET", "/wallets/" + w)[0] == 200 for w in wallets))
        load = Transfers([n1], wallets, threads=2)
        st, _, _, body = n2.request("POST", "/admin/projections/wallets/rebuild")
        expect(st == 202, body)
        for w in wallets:
            st, _, _, body = n2.request("POST", "/admin/wallets/%s/rebuild" % w)
            expect(st == 200, body)
        time.sleep(0.5)
        load.finish()

        def rebuilt():
            p = {x["name"]: x for x in n1.request("GET", "/admin/projections")[3]["data"]}
            return p["wallets"]["status"] == "running" and p["wallets"]["lag"] == 0
        wait = time.time() + 20
        while not rebuilt() and time.time() < wait:
            time.sleep(0.05)
        expect(rebuilt(), n1.request("GET", "/admin/projections")[3])
        expect("rebuilt and swapped in" in n1.log(), "the holder did not rebuild")
        n2.note_position(n1.position)
        for node in (n1, n2):
            drift = node.request("GET", "/admin/drift")[3]
            expect(drift["drifted"] == [], drift)
        # A clean stop ends the holder's sessions: the other takes over.
        expect(n1.stop() == 0)
        stopped = time.time()
        while time.time() - stopped < 5 and not all((projected_here(n2) or {"": False}).values()):
            time.sleep(0.02)
        expect(all(projected_here(n2).values()), projected_here(n2))
        print("     takeover after SIGTERM: %.0f ms" % ((time.time() - stopped) * 1000), flush=True)
        expect(n2.stop() == 0)
    finally:
        if load is not None:
            load.finish()
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
                    proc_two_nodes_one_database, proc_two_nodes_share_the_read_side,
                    proc_leases_move_and_rebuilds_cross_nodes, proc_migrate_round_trip])
    runner.finish()


if __name__ == "__main__":
    main()
