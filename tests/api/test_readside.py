#!/usr/bin/env python3
"""Black-box tests of the read side against the real binary: read models and
their queries, X-Min-Position, projection status, rebuilds while writing,
drift, failure and recovery, replay to identical tables, kill -9 in the
middle of projection, and the offline tools. Usage: test_readside.py wallex"""
import concurrent.futures
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ReadSide, Server, expect, expect_problem, position_key, run_suite  # noqa: E402

BINARY = None
_n = [0]


def uid(prefix="w"):
    _n[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _n[0])


def post(s, path, body, headers=None):
    return s.request("POST", path, raw=json.dumps(body).encode(), headers=headers)


def create(s, owner="owner", initial=None, currency=None):
    body = {"walletId": uid(), "ownerId": owner}
    if initial is not None:
        body["initialBalance"] = initial
    if currency:
        body["currency"] = currency
    r = post(s, "/wallets", body)
    expect(r[0] == 201, r[2])
    return body["walletId"]


def wait_until(fn, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def projections(s):
    return {p["name"]: p for p in s.request("GET", "/admin/projections")[3]["data"]}


def caught_up(s):
    ps = projections(s)
    return all(p["lag"] == 0 and p["status"] == "running" for p in ps.values())


def tool(data_dir, cmd):
    return subprocess.run([BINARY, cmd, "--data-dir", data_dir] + harness.store_args_for(data_dir),
                          capture_output=True, text=True)


def differences(a, b):
    """What differs between two dumps, briefly."""
    out = []
    for t in sorted(set(a) | set(b)):
        x, y = a.get(t, []), b.get(t, [])
        if x != y:
            out.append((t, len(x), len(y), [r for r in x if r not in y][:2],
                        [r for r in y if r not in x][:2]))
    return out


def some_activity(s, wallets=8, ops=120):
    ws = [create(s, owner="o%d" % (i % 3), initial="100.00") for i in range(wallets)]
    for i in range(ops):
        a, b = random.sample(ws, 2)
        r = random.random()
        if r < 0.6:
            post(s, "/transfers", {"fromWalletId": a, "toWalletId": b, "amount": "1.25",
                                   "description": "t%d" % i})
        elif r < 0.8:
            post(s, "/wallets/%s/credit" % a, {"amount": "0.10"})
        else:
            post(s, "/wallets/%s/debit" % a, {"amount": "0.05"})
    return ws


# ------------------------------------------------------------ queries

def test_list_by_owner_paged(s):
    owner = uid("owner")
    ids = sorted(create(s, owner=owner) for _ in range(7))
    create(s, owner=uid("other"))
    seen, cursor = [], None
    while True:
        q = "/wallets?ownerId=%s&limit=3" % owner + ("&after=" + cursor if cursor else "")
        st, _, _, page = s.request("GET", q)
        expect(st == 200, page)
        seen += [w["id"] for w in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    expect(seen == ids, (seen, ids))
    for q in ["?ownerId=", "?ownerId=a%20b", "?ownerId=x&limit=0", "?ownerId=x&after=zz"]:
        expect_problem(s.request("GET", "/wallets" + q), 400, "invalid_request")
    # Without ownerId: the caller's own (the admin token's subject owns none).
    st, _, _, page = s.request("GET", "/wallets")
    expect(st == 200 and page["data"] == [], page)


def test_ledger_entries(s):
    a = create(s, initial="10.00")
    b = create(s)
    post(s, "/wallets/%s/credit" % a, {"amount": "2.50", "description": "top up"})
    post(s, "/wallets/%s/debit" % a, {"amount": "1.00"})
    tid = uid("t")
    post(s, "/transfers", {"transferId": tid, "fromWalletId": a, "toWalletId": b,
                           "amount": "3.00"})
    st, _, payload, page = s.request("GET", "/wallets/%s/ledger?limit=2" % a)
    expect(st == 200 and len(page["data"]) == 2 and page["nextCursor"], payload)
    entries = page["data"]
    while page["nextCursor"]:
        page = s.request("GET", "/wallets/%s/ledger?limit=2&after=%s" % (a, page["nextCursor"]))[3]
        entries += page["data"]
    expect([e["type"] for e in entries] == ["CREDIT", "CREDIT", "DEBIT", "DEBIT"], entries)
    expect([e["version"] for e in entries] == [2, 3, 4, 5])
    expect(entries[0]["description"] == "Initial balance" and entries[1]["description"] == "top up")
    expect(entries[3]["transferId"] == tid and entries[0]["transferId"] is None)
    prev = Decimal("0")
    for e in entries:
        expect(e["balanceBefore"] == prev, entries)
        prev = e["balanceAfter"]
        expect(len(e["eventId"]) == 36 and e["walletId"] == a and e["occurredAt"].endswith("Z"))
    expect(prev == Decimal("8.50"))
    expect(b'"amount":2.50' in payload, payload)
    # The receiving side has the matching credit.
    bl = s.request("GET", "/wallets/%s/ledger" % b)[3]["data"]
    expect(len(bl) == 1 and bl[0]["type"] == "CREDIT" and bl[0]["transferId"] == tid)
    # Wallet creation alone has no entry.
    c = create(s)
    expect(s.request("GET", "/wallets/%s/ledger" % c)[3] == {"data": [], "nextCursor": None})
    expect_problem(s.request("GET", "/wallets/nope-%s/ledger" % uid()), 404, "wallet_not_found")


def test_descriptions_keep_every_character(s):
    # json.dumps escapes every non-ASCII character, so each of these arrives
    # as \\u escapes, those above U+FFFF as surrogate pairs. U+1DA0B and
    # U+2D800 are ones json-c 0.16 alone would turn into U+FFFD.
    wid = create(s)
    texts = ["caf\u00e9 \U0001DA0B", "\U0001F600\U0002D800\U0001DC00", "\U0010FFFF"]
    for t in texts:
        st, h, payload, _ = post(s, "/wallets/%s/credit" % wid, {"amount": 1, "description": t})
        expect(st == 200, payload)
    entries = s.request("GET", "/wallets/%s/ledger" % wid,
                        headers={"X-Min-Position": h["x-position"]})[3]
    expect([e["description"] for e in entries["data"]] == texts, entries)
    # A lone half of a pair is no character: refused, not replaced.
    for lone in ["\\ud836", "\\ude0b", "x\\ud836\\u0041"]:
        body = '{"amount":1,"description":"%s"}' % lone
        r = s.request("POST", "/wallets/%s/credit" % wid, raw=body.encode())
        expect_problem(r, 400, "invalid_request")
    expect(s.request("GET", "/wallets/" + wid)[3]["version"] == 1 + len(texts))


def test_x_min_position(s):
    wid = create(s)
    st, h, _, _ = post(s, "/wallets/%s/credit" % wid, {"amount": 5})
    pos = h["x-position"]
    st, _, _, body = s.request("GET", "/wallets/" + wid, headers={"X-Min-Position": pos})
    expect(st == 200 and body["version"] == 2)
    for bad in ["", "abc", "-1", "1.2.3", "99999999999999999999999"]:
        expect_problem(s.request("GET", "/wallets/" + wid, headers={"X-Min-Position": bad}),
                       400, "invalid_request")
    hi, lo = position_key(pos)
    far = "%d.%d" % (hi, lo + 10 ** 9) if hi else str(lo + 10 ** 9)
    t0 = time.time()
    r = s.request("GET", "/wallets/" + wid, headers={"X-Min-Position": far})
    expect_problem(r, 503, "projection_lagging")
    expect(r[1].get("retry-after") == "1" and time.time() - t0 < 5)


def test_admin_projections(s):
    create(s)
    wait_until(lambda: caught_up(s), what="catch up")
    ps = projections(s)
    expect(set(ps) == {"wallets", "ledger", "transfers", "orders", "order_stats",
                       "subscriptions", "tokens", "items"}, ps)
    for p in ps.values():
        expect(p["position"] == p["headPosition"] and p["lag"] == 0 and p["lastError"] is None)
    expect(s.request("GET", "/readyz")[0] == 200)
    expect_problem(s.request("POST", "/admin/projections/nope/rebuild"), 404, "not_found")


def test_rebuild_while_writing(s):
    ws = some_activity(s, wallets=6, ops=60)
    stop = [False]

    def writer():
        n = 0
        while not stop[0]:
            a, b = random.sample(ws, 2)
            post(s, "/transfers", {"fromWalletId": a, "toWalletId": b, "amount": "0.01"})
            n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(writer) for _ in range(2)]
        for name in ["wallets", "ledger", "transfers"]:
            r = s.request("POST", "/admin/projections/%s/rebuild" % name)
            expect(r[0] == 202 and r[3]["status"] == "rebuilding", r[2])
        # Reads keep working during the rebuild.
        for w in ws:
            expect(s.request("GET", "/wallets/" + w)[0] == 200)
        time.sleep(0.5)
        stop[0] = True
        writes = sum(f.result() for f in futs)
    expect(writes > 0)
    wait_until(lambda: caught_up(s), what="rebuilt projections")
    drift = s.request("GET", "/admin/drift")[3]
    expect(drift["drifted"] == [] and drift["checked"] >= 6, drift)


def test_drift_finds_and_wallet_rebuild_fixes(s):
    wid = create(s, initial="5.00")
    post(s, "/wallets/%s/credit" % wid, {"amount": "1"})
    wait_until(lambda: caught_up(s), what="catch up")
    rs = ReadSide(s)
    wset, lset = rs.live_set("wallets"), rs.live_set("ledger")
    # The entry is in one of two tables, staged or folded: both in one
    # transaction, or a fold between the two could move it out of reach.
    rs.execute_all([("UPDATE wallets%s SET balance_minor = balance_minor + 1 WHERE id = ?" % wset,
                     wid)] +
                   [("DELETE FROM %s%s WHERE wallet_id = ? AND version = 3" % (table, lset), wid)
                    for table in ("ledger", "ledger_tail")])
    drift = s.request("GET", "/admin/drift")[3]
    fields = {(d["walletId"], d["model"], d["field"]) for d in drift["drifted"]}
    expect((wid, "wallets", "balanceMinor") in fields, drift)
    expect((wid, "ledger", "entry v3") in fields, drift)
    bad = [d for d in drift["drifted"] if d["field"] == "balanceMinor"][0]
    expect(bad["readModel"] == "601" and bad["events"] == "600", bad)
    st, _, _, body = s.request("POST", "/admin/wallets/%s/rebuild" % wid)
    expect(st == 200 and body["balance"] == Decimal("6.00") and body["version"] == 3, body)
    expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])
    expect(len(s.request("GET", "/wallets/%s/ledger" % wid)[3]["data"]) == 2)
    expect_problem(s.request("POST", "/admin/wallets/nope-%s/rebuild" % uid()), 404,
                   "wallet_not_found")


# ------------------------------------------------------------ with own servers

def placed(folded, staged):
    """Where (ledger, ledger_tail) should hold a wallet's entries: SQLite
    stages new ones in the tail; PostgreSQL writes every entry straight to
    the ledger (src/wallet/projections.c)."""
    return (sorted(folded + staged), []) if harness.PG_URL else (folded, staged)


def ledger_rows(s, wid):
    """The wallet's ledger versions in (folded ledger, staged tail)."""
    rs = ReadSide(s)
    lset = rs.live_set("ledger")
    return tuple([v for (v,) in rs.rows(
        "SELECT version FROM %s%s WHERE wallet_id = ? ORDER BY version" % (t, lset), wid)]
        for t in ("ledger", "ledger_tail"))


def whole_ledger(s, wid):
    entries, after = [], ""
    while True:
        page = s.request("GET", "/wallets/%s/ledger?limit=2%s" % (wid, after))[3]
        entries += page["data"]
        if not page["nextCursor"]:
            return entries
        after = "&after=" + page["nextCursor"]


@contextlib.contextmanager
def server_with_faults():
    """A server of its own whose WALLEX_FAULT_DIR is a fresh directory (see
    src/base/fault.h); yields (server, that directory), removes both after."""
    fault_dir = tempfile.mkdtemp(prefix="wallex-fault-")
    env_before = os.environ.get("WALLEX_FAULT_DIR")
    os.environ["WALLEX_FAULT_DIR"] = fault_dir
    s = Server(BINARY)
    try:
        yield s.start(), fault_dir
    finally:
        if env_before is None:
            del os.environ["WALLEX_FAULT_DIR"]
        else:
            os.environ["WALLEX_FAULT_DIR"] = env_before
        shutil.rmtree(fault_dir, ignore_errors=True)
        s.cleanup()


def proc_ledger_staged_then_folded():
    """New ledger entries are staged in ledger_tail and folded into ledger in
    batches on SQLite, written to ledger at once on PostgreSQL
    (src/wallet/projections.c). Pages, transfers, drift, a wallet
    rebuild and a restart must read the same entries wherever they are; the
    fault file fold-ledger holds them in the tail."""
    with server_with_faults() as (s, fault_dir):
        hold = os.path.join(fault_dir, "fold-ledger")
        a, b = create(s, initial="10.00"), create(s)
        post(s, "/wallets/%s/credit" % a, {"amount": "1.00"})
        # Quiet: the projector folds by itself.
        wait_until(lambda: caught_up(s) and ledger_rows(s, a) == placed([2, 3], []),
                   what="idle fold")
        open(hold, "w").close()
        post(s, "/wallets/%s/credit" % a, {"amount": "2.00"})
        tid = uid("t")
        post(s, "/transfers", {"transferId": tid, "fromWalletId": a, "toWalletId": b,
                               "amount": "3.00"})
        post(s, "/wallets/%s/debit" % a, {"amount": "0.50"})
        wait_until(lambda: caught_up(s), what="catch up")
        expect(ledger_rows(s, a) == placed([2, 3], [4, 5, 6]), ledger_rows(s, a))
        split = whole_ledger(s, a)
        expect([e["version"] for e in split] == [2, 3, 4, 5, 6], split)
        expect([str(e["balanceAfter"]) for e in split] == ["10.00", "11.00", "13.00", "10.00",
                                                            "9.50"], split)
        expect(all(x["balanceAfter"] == y["balanceBefore"] for x, y in zip(split, split[1:])))
        st, _, _, t = s.request("GET", "/transfers/" + tid)
        expect(st == 200 and str(t["from"]["balance"]) == "10.00"
               and str(t["to"]["balance"]) == "3.00", t)
        expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])
        # A wallet rebuild re-stages the wallet's entries; nothing changes.
        expect(s.request("POST", "/admin/wallets/%s/rebuild" % a)[0] == 200)
        expect(ledger_rows(s, a) == placed([], [2, 3, 4, 5, 6]), ledger_rows(s, a))
        expect(whole_ledger(s, a) == split)
        # Staged entries survive a restart (the hold keeps even the close
        # from folding).
        expect(s.stop() == 0)
        s.start()
        expect(ledger_rows(s, a) == placed([], [2, 3, 4, 5, 6]) and whole_ledger(s, a) == split)
        os.unlink(hold)
        # With no new event after the restart, the stage the earlier process
        # left still folds, at the first quiet moment (a kill -9 between
        # folds leaves the same).
        wait_until(lambda: ledger_rows(s, a) == placed([2, 3, 4, 5, 6], []),
                   what="fold of a stage left by the earlier process")
        post(s, "/wallets/%s/credit" % a, {"amount": "0.25"})
        wait_until(lambda: caught_up(s) and ledger_rows(s, a) == placed([2, 3, 4, 5, 6, 7],
                                                                           []),
                   what="fold after the hold")
        after = whole_ledger(s, a)
        expect(after[:5] == split and str(after[5]["balanceAfter"]) == "9.75", after)
        expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])
        expect(s.stop() == 0)
        r = tool(s.data_dir, "verify")
        expect(r.returncode == 0 and json.loads(r.stdout)["wallet"]["ledgerEntries"] == 7, r.stdout)


def proc_read_model_of_an_older_release():
    """A read model written before createdBy and updatedBy existed (issue
    21) keeps serving after the upgrade, on SQLite and PostgreSQL alike: at
    open the projector adds the columns a release added where a table lacks
    them (es_consumer.columns_added), and what it projects from then on
    fills them."""
    s = Server(BINARY).start()
    try:
        wid = create(s, initial="5.00")
        wait_until(lambda: caught_up(s), what="catch up")
        expect(s.stop() == 0)
        rs = ReadSide(s)
        wset = rs.live_set("wallets")
        rs.execute_all([("ALTER TABLE wallets%s DROP COLUMN %s" % (wset, c),)
                        for c in ("created_by", "updated_by")])
        s.start()
        st, _, _, w = s.request("GET", "/wallets/" + wid)
        expect(st == 200 and w["balance"] == Decimal("5.00") and w["updatedBy"] is None, w)
        expect(post(s, "/wallets/%s/credit" % wid, {"amount": "1"})[0] == 200)
        st, _, _, w = s.request("GET", "/wallets/" + wid)
        expect(st == 200 and w["updatedBy"] == "admin" and w["balance"] == Decimal("6.00"), w)
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_read_model_after_a_reboot():
    """The read model runs without fsync under a boot marker
    (src/rm/bootguard.h): left open by another boot, it is rebuilt from
    the log; left open by this boot (a process crash) or closed cleanly, it
    is kept. SQLite's read side only: PostgreSQL keeps its own."""
    if harness.PG_URL:
        return
    s = Server(BINARY).start()
    marker = os.path.join(s.data_dir, "readmodel.db.boot")
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        expect(open(marker).read().split() == [boot, "open"], open(marker).read())
        wid = create(s, initial="10.00")
        post(s, "/wallets/%s/credit" % wid, {"amount": "5"})
        wait_until(lambda: caught_up(s), what="catch up")
        expect(s.stop() == 0)
        expect(open(marker).read().split() == [boot, "clean"], open(marker).read())

        def plant(marker_text):
            """A wrong balance in the read model, and the marker given."""
            db = sqlite3.connect(os.path.join(s.data_dir, "readmodel.db"), timeout=10)
            wset = db.execute("SELECT live_set FROM projections WHERE name='wallets'").fetchone()[0]
            db.execute("UPDATE wallets%s SET balance_minor = 99900 WHERE id = ?" % wset, (wid,))
            db.commit()
            db.close()
            with open(marker, "w") as f:
                f.write(marker_text)

        def balance_after_restart():
            s.start()
            wait_until(lambda: caught_up(s), what="catch up")
            b = s.request("GET", "/wallets/%s" % wid)[3]["balance"]
            expect(s.stop() == 0)
            return b

        other = "00000000-0000-4000-8000-000000000000"
        rebuilding = "was open when the machine stopped"
        plant("%s open\n" % boot)  # a crash of the process: the OS kept every write
        expect(balance_after_restart() == Decimal("999.00"))
        plant("%s clean\n" % other)  # closed cleanly, then a reboot
        expect(balance_after_restart() == Decimal("999.00"))
        expect(rebuilding not in s.log(), "rebuilt without cause")
        plant("%s open\n" % other)  # open when the machine stopped
        expect(balance_after_restart() == Decimal("15.00"))
        expect(rebuilding in s.log(), "no rebuild logged")
        plant("garbage")  # a marker that does not read counts as torn too
        expect(balance_after_restart() == Decimal("15.00"))
    finally:
        s.cleanup()


def events_read(s):
    m = re.search(r"^wallex_projector_events_read_total (\d+)$",
                  s.request("GET", "/metrics")[2].decode(), re.M)
    expect(m is not None, "wallex_projector_events_read_total missing")
    return int(m.group(1))


def proc_failure_and_recovery():
    with server_with_faults() as (s, fault_dir):
        fault = os.path.join(fault_dir, "projection-ledger")
        wid = create(s)
        open(fault, "w").close()
        for _ in range(5):
            post(s, "/wallets/%s/credit" % wid, {"amount": "1"})
        wait_until(lambda: projections(s)["ledger"]["status"] == "failed", what="failed status")
        p = projections(s)
        expect(p["ledger"]["lastError"] and p["ledger"]["lag"] > 0, p)
        expect_problem(s.request("GET", "/readyz"), 503, "projection_lagging")
        # Other consumers go on.
        st, _, _, body = s.request("GET", "/wallets/" + wid)
        expect(st == 200 and body["version"] == 6, body)
        expect(p["wallets"]["status"] == "running")
        os.unlink(fault)
        wait_until(lambda: caught_up(s), what="recovery")
        expect(projections(s)["ledger"]["lastError"] is None)
        expect(s.request("GET", "/readyz")[0] == 200)
        expect(len(s.request("GET", "/wallets/%s/ledger" % wid)[3]["data"]) == 5)
        # The ledger came back behind the others; once it has met them
        # again the log is read once for all read models, not once each.
        before = events_read(s)
        for _ in range(40):
            post(s, "/wallets/%s/credit" % wid, {"amount": "1"})
        wait_until(lambda: caught_up(s), what="the credits projected")
        read = events_read(s) - before
        expect(40 <= read < 80, "%d events read for 40 credits" % read)
        expect(s.stop() == 0)
        r = tool(s.data_dir, "verify")
        expect(r.returncode == 0, r.stdout + r.stderr)


def proc_consumers_meet_under_load():
    """A read model that failed for a while comes back behind the others
    while credits keep coming and each projector commit is slow: it meets
    them again anyway, and from then on every event is read once, not once
    per group (about twice when the groups never met)."""
    with server_with_faults() as (s, fault_dir):
        s.read_your_writes = False
        fault = os.path.join(fault_dir, "projection-ledger")
        wids = [create(s) for _ in range(4)]
        open(fault, "w").close()
        for _ in range(5):
            post(s, "/wallets/%s/credit" % wids[0], {"amount": "1"})
        wait_until(lambda: projections(s)["ledger"]["status"] == "failed", what="failed status")
        stop, posted = [False], [0]

        def load(wid):
            while not stop[0]:
                if post(s, "/wallets/%s/credit" % wid, {"amount": "1"})[0] == 200:
                    posted[0] += 1

        threads = [threading.Thread(target=load, args=(w,)) for w in wids]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            with open(os.path.join(fault_dir, "projector-commit-delay-ms"), "w") as f:
                f.write("20")
            os.unlink(fault)
            wait_until(lambda: projections(s)["ledger"]["lastError"] is None, what="recovery")
            time.sleep(1)
            r0, p0 = events_read(s), posted[0]
            time.sleep(3)
            r1, p1 = events_read(s), posted[0]
        finally:
            stop[0] = True
            for t in threads:
                t.join()
        ratio = (r1 - r0) / max(1, p1 - p0)
        expect(p1 - p0 >= 20 and ratio < 1.5,
               "%d events read for %d credits (%.2f)" % (r1 - r0, p1 - p0, ratio))
        os.unlink(os.path.join(fault_dir, "projector-commit-delay-ms"))
        wait_until(lambda: caught_up(s), what="caught up")
        expect(s.stop() == 0)


def proc_replay_gives_identical_tables():
    s = Server(BINARY).start()
    try:
        some_activity(s)
        wait_until(lambda: caught_up(s), what="catch up")
        expect(s.stop() == 0)
        rs = ReadSide(s)
        before = rs.dump()
        expect(len(before["wallets"]) == 8 and len(before["ledger"]) > 50, before.keys())
        rs.drop()
        r = tool(s.data_dir, "rebuild")
        expect(r.returncode == 0, r.stderr)
        after = rs.dump()
        expect(after == before, ("rebuilt tables differ", differences(before, after)))
        # Deleting the read side and starting the server rebuilds it too.
        rs.drop()
        s.start()
        s.position = 10 ** 9  # unknown: wait until the projector has caught up
        wait_until(lambda: caught_up(s), what="rebuild at start")
        expect(s.stop() == 0)
        after = rs.dump()
        expect(after == before, ("tables rebuilt at start differ", differences(before, after)))
        r = tool(s.data_dir, "drift")
        expect(r.returncode == 0 and json.loads(r.stdout)["drifted"] == [], r.stdout)
    finally:
        s.cleanup()


def proc_kill_9_during_projection():
    s = Server(BINARY).start()
    try:
        ws = [create(s, initial="1000") for _ in range(10)]
        acked = [0]
        for round_ in range(3):
            stop = [False]

            def load():
                while not stop[0]:
                    a, b = random.sample(ws, 2)
                    try:
                        r = post(s, "/transfers", {"fromWalletId": a, "toWalletId": b,
                                                   "amount": "0.01"})
                        if r[0] == 201:
                            acked[0] += 1
                    except Exception:
                        return

            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                futs = [ex.submit(load) for _ in range(4)]
                time.sleep(0.3 + random.random() * 0.4)
                s.proc.send_signal(signal.SIGKILL)
                s.proc.wait()
                s.proc = None
                stop[0] = True
                for f in futs:
                    f.result()
            s.start()
        wait_until(lambda: caught_up(s), what="catch up after kills")
        expect(s.stop() == 0)
        r = tool(s.data_dir, "verify")
        report = json.loads(r.stdout)
        expect(r.returncode == 0 and report["ok"], r.stdout[:2000])
        # Every acknowledged transfer has its two ledger entries, no more.
        rs = ReadSide(s)
        legs = rs.rows("SELECT count(*) FROM ledger%s WHERE transfer_id IS NOT NULL"
                       % rs.live_set("ledger"))[0][0]
        expect(legs >= 2 * acked[0] and legs % 2 == 0, (legs, acked[0]))
        expect(report["wallet"]["ledgerEntries"] == 10 + legs, report)
    finally:
        s.cleanup()


def proc_verify_detects_broken_invariant():
    s = Server(BINARY).start()
    try:
        some_activity(s, wallets=4, ops=30)
        wait_until(lambda: caught_up(s), what="catch up")
        expect(s.stop() == 0)
        expect(tool(s.data_dir, "verify").returncode == 0)
        rs = ReadSide(s)
        lset = rs.live_set("ledger")
        # A clean stop folded every entry into ledger{set}.
        rs.execute("UPDATE ledger%s SET balance_before_minor = balance_before_minor + 7"
                   " WHERE (wallet_id, version) IN (SELECT wallet_id, version FROM ledger%s"
                   " LIMIT 1)" % (lset, lset))
        r = tool(s.data_dir, "verify")
        report = json.loads(r.stdout)
        expect(r.returncode == 1 and not report["ok"] and report["violations"], r.stdout[:1000])
        expect(tool(s.data_dir, "drift").returncode == 1)
        expect(tool(s.data_dir, "rebuild").returncode == 0)
        expect(tool(s.data_dir, "verify").returncode == 0)
    finally:
        s.cleanup()


def proc_backup_while_writing_and_restore():
    # wallex backup copies SQLite's events.db; a PostgreSQL log is backed
    # up with PostgreSQL's tools (docs/operations.md).
    s = Server(BINARY, extra_args=["--store", "sqlite"]).start()
    restore_dir = os.path.join(s.data_dir, "restored")
    backup_dir = os.path.join(s.data_dir, "backup")
    try:
        ws = [create(s, initial="500") for _ in range(6)]
        stop = [False]

        def load():
            while not stop[0]:
                a, b = random.sample(ws, 2)
                post(s, "/transfers", {"fromWalletId": a, "toWalletId": b, "amount": "0.25"})

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = [ex.submit(load) for _ in range(2)]
            time.sleep(0.2)
            before = s.count_events()
            r = subprocess.run([BINARY, "backup", "--data-dir", s.data_dir, "--to", backup_dir],
                               capture_output=True, text=True)
            time.sleep(0.2)
            stop[0] = True
            for f in futs:
                f.result()
        expect(r.returncode == 0, r.stderr)
        again = subprocess.run([BINARY, "backup", "--data-dir", s.data_dir, "--to", backup_dir],
                               capture_output=True, text=True)
        expect(again.returncode == 1, "a backup must never be overwritten")
        expect(s.stop() == 0)
        # Restore: the copy alone in an empty data directory; the read side
        # is rebuilt when the server starts.
        os.makedirs(restore_dir)
        os.rename(os.path.join(backup_dir, "events.db"), os.path.join(restore_dir, "events.db"))
        t = Server(BINARY, data_dir=restore_dir, extra_args=["--store", "sqlite"]).start()
        try:
            t.token = s.token  # tokens are in the log: the restored server knows it
            t.position = "1"
            wait_until(lambda: caught_up(t), what="restored read side")
            n = t.count_events()
            expect(n >= before and n <= s.count_events(), (before, n))
            total = sum(t.request("GET", "/wallets/" + w)[3]["balance"] for w in ws)
            expect(total == Decimal("3000.00"), total)
            expect(t.stop() == 0)
            r = tool(restore_dir, "verify")
            expect(r.returncode == 0, r.stdout[:500])
        finally:
            t.cleanup()
    finally:
        s.cleanup()


def proc_snapshots_cold_loads_and_time_travel():
    # Reads the snapshots out of events.db itself: SQLite only.
    s = Server(BINARY, extra_args=["--snapshot-every", "3", "--store", "sqlite"]).start()
    try:
        wid = create(s, initial="1.00")  # versions 1, 2
        stamps = {}
        for v in range(3, 12):
            r = post(s, "/wallets/%s/credit" % wid, {"amount": "1"})
            expect(r[0] == 200 and r[3]["version"] == v, r[2])
            stamps[v] = r[3]["updatedAt"]
        db = sqlite3.connect(os.path.join(s.data_dir, "events.db"))
        snaps = [v for (v,) in db.execute("SELECT version FROM snapshots WHERE stream_id = ?"
                                          " ORDER BY version", ("wallet:" + wid,))]
        db.close()
        expect(snaps == [6, 9], snaps)  # the two latest, every 3 events
        # A restart empties the cache: the next command loads snapshot + tail.
        expect(s.stop() == 0)
        s.start()
        r = post(s, "/wallets/%s/debit" % wid, {"amount": "0.50", "expectedVersion": 11})
        expect(r[0] == 200 and r[3]["version"] == 12 and r[3]["balance"] == Decimal("9.50"),
               r[2])
        for v, want in ((2, "1.00"), (5, "4.00"), (9, "8.00"), (11, "10.00"), (12, "9.50")):
            b = s.request("GET", "/wallets/%s?atVersion=%d" % (wid, v))[3]
            expect(b["version"] == v and b["balance"] == Decimal(want), (v, b))
        b = s.request("GET", "/wallets/%s?asOf=%s" % (wid, stamps[10]))[3]
        expect(b["version"] >= 10 and b["version"] <= 11, b)
        expect(s.stop() == 0)
        r = tool(s.data_dir, "verify")
        expect(r.returncode == 0, r.stdout[:500])
    finally:
        s.cleanup()


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_readside.py path/to/wallex", file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv[1])
    random.seed(7)
    run_suite(BINARY, globals(), [proc_ledger_staged_then_folded,
                                  proc_read_model_of_an_older_release,
                                  proc_read_model_after_a_reboot,
                                  proc_failure_and_recovery, proc_consumers_meet_under_load,
                                  proc_replay_gives_identical_tables,
                proc_kill_9_during_projection, proc_verify_detects_broken_invariant,
                proc_backup_while_writing_and_restore,
                proc_snapshots_cold_loads_and_time_travel])


if __name__ == "__main__":
    main()
