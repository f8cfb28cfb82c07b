#!/usr/bin/env python3
"""Schema evolution, shown on a real change: order items gained
lineTotalMinor in v2 of OrderCreated and OrderItemAdded (src/order/codec.c).
A log written at v1 (tests/fixtures/orders-v1.jsonl: two wallets, six orders
in every status, payments and a refund whose wallet movements carry
"reference":"order:<id>") is loaded into an events.db, in the current layout
and in the previous release's (no events.schema_version column), and must
fold, project, time-travel, take new commands and pass `wallex verify`,
`wallex drift` and `wallex rebuild` as if it had been written today.
Usage: test_schema_v1.py path/to/wallex"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
from harness import Runner, Server, expect  # noqa: E402
import load_events  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "fixtures", "orders-v1.jsonl")
BINARY = None


def tool(data_dir, cmd):
    return subprocess.run([BINARY, cmd, "--data-dir", data_dir], capture_output=True, text=True)


def dump_read_side(path):
    """Every read-model table by logical name (set suffix stripped), rows sorted."""
    db = sqlite3.connect(path)
    out = {}
    for _, live in db.execute("SELECT name, live_set FROM projections ORDER BY name"):
        for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?",
                               ("%" + live,)):
            out[t[: -len(live)]] = sorted(db.execute("SELECT * FROM %s" % t).fetchall(), key=repr)
    db.close()
    return out


def get(s, path):
    st, _, payload, body = s.request("GET", path)
    expect(st == 200, (path, payload))
    return body, payload


def lines(order):
    return [(i["productId"], i["quantity"], i["unitPrice"], i["lineTotal"])
            for i in order["items"]]


def check_fixture_reads(s):
    """What the v1 log must read as (figures worked out by hand from the fixture)."""
    s.note_position("32")  # the fixture's head: read once the read side has it all
    o, payload = get(s, "/orders/o-1001")
    expect(lines(o) == [("tea", 3, Decimal("4.50"), Decimal("13.50")),
                        ("mug", 1, Decimal("12.99"), Decimal("12.99")),
                        ("spoon", 2, Decimal("1.25"), Decimal("2.50"))], o)
    expect(b'"total":28.99,' in payload and o["status"] == "delivered", payload)
    expect(o["paidFrom"] == "alice" and o["version"] == 6, o)
    expect(o["createdAt"] == "2024-07-01T10:00:03.000Z", o)
    o, _ = get(s, "/orders/o-1002")
    expect(o["status"] == "confirmed" and o["version"] == 5 and o["total"] == Decimal("13.40"), o)
    expect(lines(o) == [("pen", 10, Decimal("0.99"), Decimal("9.90")),
                        ("ink", 1, Decimal("3.50"), Decimal("3.50"))], o)
    # Time travel folds the v1 events through the upcasters too.
    o, _ = get(s, "/orders/o-1002?atVersion=1")
    expect(lines(o) == [("pen", 10, Decimal("0.99"), Decimal("9.90"))] and o["version"] == 1, o)
    expect(o["total"] == Decimal("9.90") and o["status"] == "pending", o)
    o, _ = get(s, "/orders/o-1002?atVersion=3")
    expect(o["total"] == Decimal("8.45") and lines(o)[0][3] == Decimal("4.95"), o)
    o, _ = get(s, "/orders/o-1001?asOf=2024-07-01T10:00:04.000Z")
    expect(o["version"] == 2 and o["total"] == Decimal("28.99") and o["status"] == "pending", o)
    o, payload = get(s, "/orders/o-1003")
    expect(o["status"] == "cancelled" and o["currency"] == "JPY" and o["paidFrom"] == "kenji", o)
    expect(b'"unitPrice":1200,"lineTotal":2400}],"total":2400,' in payload, payload)
    o, _ = get(s, "/orders/o-1005")
    expect(o["items"] == [] and o["total"] == 0 and o["status"] == "pending", o)
    # /events shows every event in its current schema.
    page, _ = get(s, "/orders/o-1001/events")
    got = [(e["type"], e["schemaVersion"]) for e in page["data"]]
    expect(got == [("OrderCreated", 2), ("OrderItemAdded", 2), ("OrderConfirmed", 1),
                   ("OrderPaid", 1), ("OrderShipped", 1), ("OrderDelivered", 1)], got)
    expect(page["data"][0]["data"]["items"] == [
        {"productId": "tea", "quantity": 3, "unitPriceMinor": 450, "lineTotalMinor": 1350},
        {"productId": "mug", "quantity": 1, "unitPriceMinor": 1299, "lineTotalMinor": 1299}],
        page["data"][0])
    expect(page["data"][1]["data"] == {"orderId": "o-1001", "productId": "spoon", "quantity": 2,
                                       "unitPriceMinor": 125, "lineTotalMinor": 250},
           page["data"][1])
    expect(page["data"][0]["metadata"]["occurredAt"] == "2024-07-01T10:00:03.000Z")
    # Statistics: one order in each status; revenue from paid, shipped and
    # delivered; USD (28.99 + 1.00) / 2 = 14.995, half-even 15.00.
    stats, payload = get(s, "/orders/statistics")
    expect(stats == {"totalOrders": 6, "byStatus": {k: 1 for k in (
        "pending", "confirmed", "paid", "shipped", "delivered", "cancelled")},
        "revenue": {"JPY": 999, "USD": Decimal("29.99")},
        "averageOrderValue": {"JPY": 999, "USD": Decimal("15.00")}}, stats)
    expect(b'"averageOrderValue":{"JPY":999,"USD":15.00}' in payload, payload)
    listed, _ = get(s, "/orders?customerId=alice")
    expect([o["orderId"] for o in listed["data"]] == ["o-1006", "o-1005", "o-1002", "o-1001"],
           listed)
    w, payload = get(s, "/wallets/alice")
    expect(b'"balance":220.01' in payload and w["version"] == 4, payload)
    w, payload = get(s, "/wallets/kenji")
    expect(b'"balance":9001' in payload and w["version"] == 5, payload)
    ledger, _ = get(s, "/wallets/kenji/ledger")
    expect([e["type"] for e in ledger["data"]] == ["CREDIT", "DEBIT", "CREDIT", "DEBIT"], ledger)
    drift, _ = get(s, "/admin/drift")
    expect(drift["drifted"] == [] and drift["checked"] >= 8, drift)


def post(s, path, body):
    st, h, payload, out = s.request("POST", path, raw=json.dumps(body).encode())
    expect(st < 300, (path, payload))
    return out


def new_commands_on_old_orders(s):
    """The v1 orders take commands; the new events are written at v2."""
    o = post(s, "/orders/o-1005/items", {"productId": "new", "quantity": 2, "unitPrice": "0.75"})
    expect(o["version"] == 2 and o["total"] == Decimal("1.50"), o)
    # Rolling back to version 1 folds the v1 OrderCreated through its upcaster.
    o = post(s, "/orders/o-1002/rollback", {"toVersion": 1})
    expect(o["status"] == "pending" and o["version"] == 6 and o["total"] == Decimal("9.90"), o)
    post(s, "/orders/o-1002/confirm", {})
    o = post(s, "/orders/o-1002/pay", {"walletId": "alice"})
    expect(o["status"] == "paid", o)
    o = post(s, "/orders/o-1004/cancel", {"reason": "late"})
    expect(o["status"] == "cancelled", o)
    w, payload = get(s, "/wallets/alice")
    expect(b'"balance":210.11' in payload, payload)
    w, payload = get(s, "/wallets/kenji")
    expect(b'"balance":10000' in payload, payload)
    page, _ = get(s, "/orders/o-1005/events")
    expect([(e["type"], e["schemaVersion"]) for e in page["data"]] ==
           [("OrderCreated", 2), ("OrderItemAdded", 2)], page)
    stats, _ = get(s, "/orders/statistics")
    expect(stats["revenue"] == {"USD": Decimal("39.89")} and stats["byStatus"]["cancelled"] == 2,
           stats)


def offline_tools_agree(d):
    r = tool(d, "verify")
    report = json.loads(r.stdout) if r.stdout else {}
    expect(r.returncode == 0 and report.get("ok"), r.stdout[:2000] + r.stderr[-2000:])
    r = tool(d, "drift")
    expect(r.returncode == 0 and json.loads(r.stdout)["drifted"] == [], r.stdout[:2000])
    path = os.path.join(d, "readmodel.db")
    before = dump_read_side(path)
    expect(len(before["orders"]) == 6 and len(before["wallets"]) == 2, before.keys())
    os.unlink(path)
    r = tool(d, "rebuild")
    expect(r.returncode == 0, r.stderr)
    expect(dump_read_side(path) == before, "rebuilt tables differ")
    return report


def stored_versions(d):
    db = sqlite3.connect(os.path.join(d, "events.db"))
    try:
        layout = db.execute("PRAGMA user_version").fetchone()[0]
        rows = db.execute("SELECT stream_id, version, schema_version FROM events"
                          " ORDER BY position").fetchall()
    finally:
        db.close()
    return layout, rows


def test_v1_log_in_the_current_layout():
    d = tempfile.mkdtemp(prefix="wallex-v1-")
    s = Server(BINARY, data_dir=d)
    try:
        events = load_events.load(FIXTURE, d, layout=2)
        expect(len(events) == 32 and {e["schemaVersion"] for e in events} == {1})
        s.start()
        check_fixture_reads(s)
        expect(s.stop() == 0)
        report = offline_tools_agree(d)
        expect(report["order"]["orders"] == 6 and report["order"]["paidOrders"] == 4,
               report["order"])
        # Again after the rebuild, then with new commands on top.
        s.start()
        check_fixture_reads(s)
        new_commands_on_old_orders(s)
        expect(s.stop() == 0)
        expect(tool(d, "verify").returncode == 0)
        # Nothing stored was rewritten: the v1 rows are still v1.
        _, rows = stored_versions(d)
        expect(rows[4] == ("order:o-1001", 1, 1), rows[4])
        expect(rows[-1][2] == 1 and ("order:o-1005", 2, 2) in rows, rows[-6:])
    finally:
        s.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_previous_release_layout_is_upgraded_on_open():
    d = tempfile.mkdtemp(prefix="wallex-v0-")
    s = Server(BINARY, data_dir=d)
    try:
        load_events.load(FIXTURE, d, layout=0)
        db = sqlite3.connect(os.path.join(d, "events.db"))
        columns = [r[1] for r in db.execute("PRAGMA table_info(events)")]
        db.close()
        expect("schema_version" not in columns, columns)
        # An offline tool opens (and upgrades) it as well as the server does.
        r = tool(d, "verify")
        expect(r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout[:2000] + r.stderr)
        layout, rows = stored_versions(d)
        expect(layout == 2 and {v for _, _, v in rows} == {1}, (layout, rows[:3]))
        s.start()
        check_fixture_reads(s)
        new_commands_on_old_orders(s)
        expect(s.stop() == 0)
        expect(tool(d, "verify").returncode == 0)
        _, rows = stored_versions(d)
        expect(("order:o-1001", 1, 1) in rows and ("order:o-1005", 2, 2) in rows, rows)
    finally:
        s.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_a_fresh_directory_from_the_loader_without_a_server():
    # The loader's layout is exactly what the store reads: verify alone
    # (no server ever started) folds and projects it.
    d = tempfile.mkdtemp(prefix="wallex-v1-offline-")
    try:
        load_events.load(FIXTURE, d)
        report = offline_tools_agree(d)
        expect(report["wallet"]["wallets"] == 2 and report["wallet"]["ledgerEntries"] == 7,
               report["wallet"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: test_schema_v1.py path/to/wallex", file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv[1])
    runner = Runner()
    runner.run([test_v1_log_in_the_current_layout, test_previous_release_layout_is_upgraded_on_open,
                test_a_fresh_directory_from_the_loader_without_a_server])
    runner.finish()
