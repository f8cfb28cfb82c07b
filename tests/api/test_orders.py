#!/usr/bin/env python3
"""Black-box tests of the orders part of the HTTP contract (API.md "Orders")
against the real binary: every order route, every rule and every problem
code; paying and refunding against wallets in the same commit; time travel,
lists, events, statistics; Idempotency-Key and X-Min-Position on orders; the
one-order rebuild, drift, and the offline tools after a mixed run.
Usage: test_orders.py path/to/wallex"""
import concurrent.futures
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, expect, expect_problem, position_key, run_suite  # noqa: E402

BINARY = None
_seq = [0]
_seq_lock = threading.Lock()
STATUSES = ["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]


def uid(prefix="o"):
    with _seq_lock:
        _seq[0] += 1
        return "%s-%d-%d" % (prefix, os.getpid(), _seq[0])


def raw_post(s, path, text, headers=None):
    return s.request("POST", path, raw=text.encode() if isinstance(text, str) else text,
                     headers=headers)


def post(s, path, body, headers=None):
    return s.request("POST", path, raw=json.dumps(body).encode(), headers=headers)


def item(product, quantity=1, price="1.00"):
    return {"productId": product, "quantity": quantity, "unitPrice": price}


def create_order(s, items=None, customer="cust-1", currency=None, order_id=None, headers=None):
    body = {"customerId": customer,
            "items": items if items is not None else [item("p1", 2, "1.25")]}
    if order_id is not False:
        body["orderId"] = order_id or uid()
    if currency is not None:
        body["currency"] = currency
    return post(s, "/orders", body, headers)


def new_order(s, **kw):
    r = create_order(s, **kw)
    expect(r[0] == 201, r[2])
    return r[3]["orderId"]


def wallet(s, initial="100.00", currency=None):
    body = {"walletId": uid("w"), "ownerId": "owner-1", "initialBalance": initial}
    if currency:
        body["currency"] = currency
    r = post(s, "/wallets", body)
    expect(r[0] == 201, r[2])
    return body["walletId"]


def get_order(s, oid):
    st, _, payload, body = s.request("GET", "/orders/" + oid)
    expect(st == 200, payload)
    return body


def get_wallet(s, wid):
    st, _, payload, body = s.request("GET", "/wallets/" + wid)
    expect(st == 200, payload)
    return body


def step(s, oid, action, body=None, headers=None):
    return post(s, "/orders/%s/%s" % (oid, action), body if body is not None else {}, headers)


def ok(r, status=200):
    expect(r[0] == status, "status %d, want %d: %r" % (r[0], status, r[2][:400]))
    return r[3]


def order_in(s, status, customer="cust-1", items=None, currency=None, wallet_id=None):
    """A fresh order brought to `status` through the API; returns (id, wallet or None)."""
    oid = new_order(s, customer=customer, items=items, currency=currency)
    if status == "pending":
        return oid, None
    if status == "cancelled":
        ok(step(s, oid, "cancel"))
        return oid, None
    ok(step(s, oid, "confirm"))
    if status == "confirmed":
        return oid, None
    w = wallet_id or wallet(s, "1000.00", currency)
    ok(step(s, oid, "pay", {"walletId": w}))
    for nxt in ("shipped", "delivered"):
        if status == STATUSES[STATUSES.index(nxt) - 1]:
            return oid, w
        ok(step(s, oid, "ship" if nxt == "shipped" else "deliver"))
    return oid, w


def events(s, stream_path):
    out, after = [], ""
    while True:
        st, _, payload, page = s.request("GET", "%s/events?limit=1000%s" % (stream_path, after))
        expect(st == 200, payload)
        out += page["data"]
        if not page["nextCursor"]:
            return out
        after = "&after=" + page["nextCursor"]


def list_all(s, query, limit=50):
    """Every page of GET /orders?query, in order; also returns the pages."""
    out, pages, after = [], 0, ""
    while True:
        st, _, payload, page = s.request("GET", "/orders?limit=%d%s%s" % (limit, query, after))
        expect(st == 200, payload)
        out += page["data"]
        pages += 1
        if not page["nextCursor"]:
            return out, pages
        after = "&after=" + page["nextCursor"]


def newest_first(orders):
    keys = [(o["createdAt"], o["orderId"]) for o in orders]
    return keys == sorted(keys, reverse=True)


# ---------------------------------------------------------------- create

def test_create_order(s):
    oid = uid()
    st, h, payload, body = raw_post(
        s, "/orders", '{"orderId":"%s","customerId":"c-1","items":[{"productId":"p1",'
        '"quantity":2,"unitPrice":1.25},{"productId":"p2","quantity":3,"unitPrice":"0.10"}]}'
        % oid)
    expect(st == 201, payload)
    expect(h["location"] == "/orders/" + oid and h.get("x-position"), h)
    expect(h["content-type"] == "application/json", h)
    expect(body["orderId"] == oid and body["customerId"] == "c-1" and body["currency"] == "USD")
    expect(body["status"] == "pending" and body["paidFrom"] is None and body["version"] == 1, body)
    expect(b'"items":[{"productId":"p1","quantity":2,"unitPrice":1.25,"lineTotal":2.50},'
           b'{"productId":"p2","quantity":3,"unitPrice":0.10,"lineTotal":0.30}],"total":2.80,'
           in payload, payload)
    expect(body["createdAt"] == body["updatedAt"] and body["createdAt"].endswith("Z")
           and len(body["createdAt"]) == 24, body)
    expect(set(body) == {"orderId", "customerId", "currency", "status", "items", "total",
                         "paidFrom", "version", "createdAt", "updatedAt", "createdBy",
                         "updatedBy"}, body)
    # Audit: who created it (the admin token's subject here).
    expect(body["createdBy"] == body["updatedBy"] == "admin", body)
    st, _, again, _ = s.request("GET", "/orders/" + oid)
    expect(st == 200 and again == payload, (payload, again))


def test_create_generated_id_and_defaults(s):
    st, h, payload, body = raw_post(s, "/orders", '{"customerId":"c-2","items":[]}')
    expect(st == 201 and len(body["orderId"]) == 36, payload)
    expect(h["location"] == "/orders/" + body["orderId"])
    expect(body["currency"] == "USD" and body["items"] == [] and b'"total":0.00' in payload)
    expect(get_order(s, body["orderId"])["version"] == 1)
    # customerId defaults to the caller's subject (tests/api/test_auth.py
    # shows it required with --auth off).
    st, _, payload, body = raw_post(s, "/orders", '{"items":[]}')
    expect(st == 201 and body["customerId"] == "admin", payload)
    expect_problem(raw_post(s, "/orders", '{"customerId":"c"}'), 400, "invalid_request")


def test_create_duplicate(s):
    oid = new_order(s)
    expect_problem(create_order(s, order_id=oid, items=[]), 409, "order_already_exists")
    expect(get_order(s, oid)["version"] == 1)


def test_create_validation_changes_nothing(s):
    before = s.count_events()
    hundred_one = [item("p%d" % i) for i in range(101)]
    cases = [
        {"orderId": "statistics", "customerId": "c", "items": []},
        {"customerId": "c", "items": hundred_one},
        {"customerId": "c", "items": [item("p"), item("q"), item("p")]},
        {"customerId": "c", "items": [item("p", 0)]},
        {"customerId": "c", "items": [item("p", 1000001)]},
        {"customerId": "c", "items": [item("p", -1)]},
        {"customerId": "c", "items": [item("p", 1.5)]},
        {"customerId": "c", "items": [item("p", "2")]},
        {"customerId": "c", "items": [item("p", True)]},
        {"customerId": "c", "items": [item("p", 1, "-1.00")]},
        {"customerId": "c", "items": [item("p", 1, "abc")]},
        {"customerId": "c", "items": [item("p", 1, "1.001")]},  # USD has 2 digits
        {"customerId": "c", "items": [item("p", 1, [1])]},
        {"customerId": "c", "items": [{"productId": "p", "quantity": 1}]},
        {"customerId": "c", "items": [{"quantity": 1, "unitPrice": 1}]},
        {"customerId": "c", "items": [{"productId": "p", "quantity": 1, "unitPrice": 1, "x": 1}]},
        {"customerId": "c", "items": [item("a b")]},
        {"customerId": "c", "items": [item("x" * 65)]},
        {"customerId": "c", "items": ["p"]},
        {"customerId": "c", "items": {"productId": "p"}},
        {"customerId": "c", "items": []} | {"extra": 1},
        {"customerId": "c d", "items": []},
        {"customerId": "", "items": []},
        {"orderId": "", "customerId": "c", "items": []},
        {"orderId": "a/b", "customerId": "c", "items": []},
        {"customerId": "c", "currency": "usd", "items": []},
        {"customerId": "c", "currency": "XXX", "items": []},
        {"customerId": "c", "currency": 840, "items": []},
    ]
    for c in cases:
        expect_problem(post(s, "/orders", c), 400, "invalid_request")
    # An optional field is present with a value of its type or absent: null is 400.
    for text in ['{"orderId":null,"customerId":"c","items":[]}',
                 '{"customerId":null,"items":[]}',
                 '{"customerId":"c","currency":null,"items":[]}',
                 '{"customerId":"c","items":null}',
                 '{"customerId":"c","items":[null]}',
                 '{"customerId":"c","items":[{"productId":"p","quantity":1,"unitPrice":null}]}',
                 '{"customerId":"c","items":[{"productId":null,"quantity":1,"unitPrice":1}]}',
                 '{"customerId":"c","items":[{"productId":"p","quantity":null,"unitPrice":1}]}',
                 '{"customerId":"c","items":[],"customerId":"d"}',
                 '{"customerId":"c","items":[]} x', '[]', '', '{']:
        expect_problem(raw_post(s, "/orders", text), 400, "invalid_request")
    expect(s.count_events() == before, "a refused create appended events")


def test_create_bounds_that_pass(s):
    hundred = [item("p%d" % i, 1, "0.01") for i in range(100)]
    body = ok(create_order(s, items=hundred), 201)
    expect(len(body["items"]) == 100 and body["total"] == Decimal("1.00"), body["total"])
    body = ok(create_order(s, items=[item("p", 1000000, "0.01"), item("q", 1, 0)]), 201)
    expect(body["items"][0]["lineTotal"] == Decimal("10000.00"), body)
    expect(body["items"][1]["unitPrice"] == 0 and body["items"][1]["lineTotal"] == 0, body)


def test_currency_digits(s):
    st, _, payload, body = create_order(s, currency="JPY",
                                        items=[item("a", 2, 150), item("b", 1, "7")])
    expect(st == 201 and body["currency"] == "JPY", payload)
    expect(b'"unitPrice":150,"lineTotal":300}' in payload and b'"total":307,' in payload, payload)
    oid = body["orderId"]
    expect_problem(create_order(s, currency="JPY", items=[item("a", 1, "1.5")]), 400,
                   "invalid_request")
    expect_problem(step(s, oid, "items", item("c", 1, "0.5")), 400, "invalid_request")
    expect_problem(s.request("PUT", "/orders/%s/items/a" % oid,
                             raw=b'{"quantity":1,"unitPrice":"9.9"}'), 400, "invalid_request")
    st, _, payload, body = create_order(s, currency="KWD", items=[item("a", 3, "1.005")])
    expect(st == 201 and b'"unitPrice":1.005,"lineTotal":3.015}' in payload, payload)
    expect_problem(create_order(s, currency="KWD", items=[item("a", 1, "1.0005")]), 400,
                   "invalid_request")
    st, _, payload, _ = create_order(s, items=[item("a", 1, "3.1")])
    expect(st == 201 and b'"unitPrice":3.10,' in payload, payload)
    expect(get_order(s, oid)["version"] == 1)


def test_total_overflow(s):
    big = "9223372036854775807"  # int64 max: a price that fits, in a currency without digits
    st, _, payload, _ = create_order(s, currency="JPY", items=[item("a", 1, big)])
    expect(st == 201 and b'"total":9223372036854775807' in payload, payload)
    expect_problem(create_order(s, currency="JPY", items=[item("a", 2, big)]), 422,
                   "total_overflow")
    half = "4611686018427387904"  # 2^62: two lines of it are 2^63, one past the maximum
    expect_problem(create_order(s, currency="JPY", items=[item("a", 1, half), item("b", 1, half)]),
                   422, "total_overflow")
    oid = new_order(s, currency="JPY", items=[item("a", 1, half)])
    expect_problem(step(s, oid, "items", item("b", 1, half)), 422, "total_overflow")
    expect_problem(s.request("PUT", "/orders/%s/items/a" % oid, raw=b'{"quantity":2}'), 422,
                   "total_overflow")
    expect(get_order(s, oid)["version"] == 1)
    # A price that is not an int64 of minor units is not money: 400, as for wallets.
    expect_problem(create_order(s, currency="JPY", items=[item("a", 1, "9223372036854775808")]),
                   400, "invalid_request")
    expect_problem(create_order(s, items=[item("a", 1, "92233720368547758.08")]), 400,
                   "invalid_request")
    expect_problem(raw_post(s, "/orders", '{"customerId":"c","items":[{"productId":"a",'
                            '"quantity":1,"unitPrice":99999999999999999999999}]}'), 400,
                   "invalid_request")
    # Both faults in one body: the 400 is found, whatever comes first.
    expect_problem(create_order(s, currency="JPY", items=[item("a", 2, big), item("b", 1, "0.5")]),
                   400, "invalid_request")


# ---------------------------------------------------------------- items

def test_items_add_change_remove(s):
    oid = new_order(s, items=[item("a", 2, "1.00")])
    body = ok(step(s, oid, "items", item("b", 1, "5.00")))
    expect(body["version"] == 2 and [i["productId"] for i in body["items"]] == ["a", "b"], body)
    expect(body["total"] == Decimal("7.00"), body)
    expect_problem(step(s, oid, "items", item("a", 1, "1.00")), 409, "item_already_exists")
    # Change: the quantity, the price kept when absent, replaced when given.
    st, _, payload, body = s.request("PUT", "/orders/%s/items/a" % oid, raw=b'{"quantity":5}')
    expect(st == 200 and body["version"] == 3, payload)
    expect(b'{"productId":"a","quantity":5,"unitPrice":1.00,"lineTotal":5.00}' in payload, payload)
    st, _, payload, body = s.request("PUT", "/orders/%s/items/b" % oid,
                                     raw=b'{"quantity":2,"unitPrice":"0.25"}')
    expect(st == 200 and b'"lineTotal":0.50}],"total":5.50' in payload, payload)
    expect_problem(s.request("PUT", "/orders/%s/items/zz" % oid, raw=b'{"quantity":1}'), 404,
                   "item_not_found")
    st, _, payload, body = s.request("DELETE", "/orders/%s/items/a" % oid)
    expect(st == 200 and body["version"] == 5 and [i["productId"] for i in body["items"]] == ["b"],
           payload)
    expect(body["total"] == Decimal("0.50"), body)
    expect_problem(s.request("DELETE", "/orders/%s/items/a" % oid), 404, "item_not_found")
    # Adding back puts the item last; the others keep their order.
    body = ok(step(s, oid, "items", item("a", 1, "1.00")))
    expect([i["productId"] for i in body["items"]] == ["b", "a"], body)
    expect(get_order(s, oid) == body, (get_order(s, oid), body))
    # Bodies and path parameters.
    for bad in [{"productId": "c", "quantity": 1}, {"productId": "c", "unitPrice": 1},
                {"productId": "c d", "quantity": 1, "unitPrice": 1},
                {"productId": "c", "quantity": 0, "unitPrice": 1},
                {"productId": "c", "quantity": 1, "unitPrice": 1, "note": "x"}]:
        expect_problem(step(s, oid, "items", bad), 400, "invalid_request")
    for bad in [b'{}', b'{"quantity":0}', b'{"quantity":1,"productId":"a"}',
                b'{"quantity":1,"unitPrice":null}', b'{"quantity":null}', b'{"quantity":2000000}']:
        expect_problem(s.request("PUT", "/orders/%s/items/a" % oid, raw=bad), 400,
                       "invalid_request")
    expect_problem(s.request("PUT", "/orders/%s/items/a%%20b" % oid, raw=b'{"quantity":1}'), 400,
                   "invalid_request")
    expect_problem(s.request("DELETE", "/orders/%s/items/%s" % (oid, "x" * 65)), 400,
                   "invalid_request")
    expect(get_order(s, oid)["version"] == 6)


def test_too_many_items(s):
    oid = new_order(s, items=[item("p%d" % i, 1, "0.01") for i in range(99)])
    ok(step(s, oid, "items", item("p99", 1, "0.01")))
    expect_problem(step(s, oid, "items", item("p100", 1, "0.01")), 422, "too_many_items")
    # An existing productId is item_already_exists first, full or not.
    expect_problem(step(s, oid, "items", item("p5", 1, "0.01")), 409, "item_already_exists")
    expect(s.request("DELETE", "/orders/%s/items/p0" % oid)[0] == 200)
    body = ok(step(s, oid, "items", item("p100", 1, "0.01")))
    expect(len(body["items"]) == 100 and body["version"] == 4, body["version"])


def test_items_change_only_while_pending(s):
    for status in STATUSES[1:]:
        oid, _ = order_in(s, status, items=[item("a", 1, "2.00")])
        version = get_order(s, oid)["version"]
        for r in [step(s, oid, "items", item("b", 1, "1.00")),
                  s.request("PUT", "/orders/%s/items/a" % oid, raw=b'{"quantity":3}'),
                  s.request("DELETE", "/orders/%s/items/a" % oid)]:
            expect_problem(r, 422, "invalid_transition")
            expect(r[3]["currentStatus"] == status, r[3])
        expect(get_order(s, oid)["version"] == version)


# ---------------------------------------------------------------- life cycle

def test_life_cycle(s):
    w = wallet(s, "50.00")
    oid = new_order(s, items=[item("a", 2, "10.00")])
    seen = []
    for action, body in (("confirm", {}), ("pay", {"walletId": w}), ("ship", {}),
                         ("deliver", {})):
        st, h, payload, order = step(s, oid, action, body)
        expect(st == 200 and "x-position" in h, payload)
        seen.append((order["status"], order["version"]))
    expect(seen == [("confirmed", 2), ("paid", 3), ("shipped", 4), ("delivered", 5)], seen)
    final = get_order(s, oid)
    expect(final["status"] == "delivered" and final["paidFrom"] == w, final)
    expect(get_wallet(s, w)["balance"] == Decimal("30.00"))
    types = [e["type"] for e in events(s, "/orders/" + oid)]
    expect(types == ["OrderCreated", "OrderConfirmed", "OrderPaid", "OrderShipped",
                     "OrderDelivered"], types)


# What each status refuses: every command that is not its way on.
REFUSED = {
    "pending": ["pay", "ship", "deliver"],
    "confirmed": ["confirm", "ship", "deliver"],
    "paid": ["confirm", "pay", "deliver", "rollback"],
    "shipped": ["confirm", "pay", "ship", "cancel", "rollback"],
    "delivered": ["confirm", "pay", "ship", "deliver", "cancel", "rollback"],
    "cancelled": ["confirm", "pay", "ship", "deliver", "cancel", "rollback"],
}


def test_refused_transitions(s):
    payer = wallet(s, "1000.00")
    for status, refused in REFUSED.items():
        oid, _ = order_in(s, status, wallet_id=payer)
        before = get_order(s, oid)
        balance = get_wallet(s, payer)
        for action in refused:
            body = {"walletId": payer} if action == "pay" else (
                {"toVersion": 1} if action == "rollback" else {})
            r = step(s, oid, action, body)
            expect_problem(r, 422, "invalid_transition")
            expect(r[3].get("currentStatus") == status, (status, action, r[3]))
        expect(get_order(s, oid) == before, (status, get_order(s, oid), before))
        expect(get_wallet(s, payer) == balance, status)


def test_allowed_transitions(s):
    # The other half of the table: each status takes exactly the rest.
    payer = wallet(s, "1000.00")
    for status in STATUSES:
        for action in ["confirm", "pay", "ship", "deliver", "cancel"]:
            if action in REFUSED[status]:
                continue
            oid, _ = order_in(s, status, wallet_id=payer)
            body = {"walletId": payer} if action == "pay" else {}
            ok(step(s, oid, action, body))


def test_empty_order(s):
    oid = new_order(s, items=[])
    r = step(s, oid, "confirm")
    expect_problem(r, 422, "empty_order")
    oid = new_order(s, items=[item("a")])
    expect(s.request("DELETE", "/orders/%s/items/a" % oid)[0] == 200)
    expect_problem(step(s, oid, "confirm"), 422, "empty_order")
    expect(get_order(s, oid)["status"] == "pending" and get_order(s, oid)["version"] == 2)
    # An empty order may still be cancelled.
    expect(ok(step(s, oid, "cancel"))["status"] == "cancelled")


def test_expected_version(s):
    w = wallet(s)
    oid = new_order(s)
    expect_problem(step(s, oid, "confirm", {"expectedVersion": 2}), 409, "version_conflict")
    expect_problem(step(s, oid, "confirm", {"expectedVersion": 0}), 409, "version_conflict")
    expect(ok(step(s, oid, "confirm", {"expectedVersion": 1}))["version"] == 2)
    ok(step(s, oid, "pay", {"walletId": w}))
    expect_problem(step(s, oid, "ship", {"expectedVersion": 2}), 409, "version_conflict")
    expect(ok(step(s, oid, "ship", {"expectedVersion": 3}))["version"] == 4)
    expect_problem(step(s, oid, "deliver", {"expectedVersion": 99}), 409, "version_conflict")
    expect(ok(step(s, oid, "deliver", {"expectedVersion": 4}))["status"] == "delivered")
    for bad in ['{"expectedVersion":-1}', '{"expectedVersion":"4"}', '{"expectedVersion":1.5}',
                '{"expectedVersion":null}', '{"version":4}']:
        expect_problem(raw_post(s, "/orders/%s/confirm" % oid, bad), 400, "invalid_request")
    expect(get_order(s, oid)["version"] == 5)


# ---------------------------------------------------------------- paying

def test_pay_debits_the_wallet_in_the_same_commit(s):
    w = wallet(s, "100.00")
    wallet_version = get_wallet(s, w)["version"]
    oid = new_order(s, items=[item("a", 5, "2.50")])
    ok(step(s, oid, "confirm"))
    cid = uid("corr")
    st, h, payload, body = step(s, oid, "pay", {"walletId": w}, {"X-Correlation-Id": cid})
    expect(st == 200 and body["status"] == "paid" and body["paidFrom"] == w, payload)
    expect(body["version"] == 3 and body["total"] == Decimal("12.50"), body)
    # Both sides are visible at the command's X-Position.
    s.position = h["x-position"]
    got = get_wallet(s, w)
    expect(got["balance"] == Decimal("87.50") and got["version"] == wallet_version + 1, got)
    expect(get_order(s, oid)["status"] == "paid")
    debit = events(s, "/wallets/" + w)[-1]
    paid = events(s, "/orders/" + oid)[-1]
    expect(debit["type"] == "WalletDebited" and paid["type"] == "OrderPaid", (debit, paid))
    expect(debit["data"]["amountMinor"] == 1250 and debit["data"]["reference"] == "order:" + oid,
           debit)
    expect(paid["data"] == {"orderId": oid, "walletId": w, "amountMinor": 1250}, paid)
    # One commit: the two events are neighbours in the log, the answer names
    # the later one, and both carry the request's correlation id.
    positions = sorted([position_key(debit["position"]), position_key(paid["position"])])
    answered = position_key(h["x-position"])
    expect(positions[0][0] == positions[1][0] and positions[1][1] == positions[0][1] + 1
           and positions[1] == answered, (positions, answered))
    expect(debit["metadata"]["correlationId"] == cid == paid["metadata"]["correlationId"])
    expect(debit["metadata"]["causationId"] == paid["metadata"]["causationId"])
    # The ledger shows it as a debit with its description.
    ledger = s.request("GET", "/wallets/%s/ledger" % w)[3]["data"]
    expect(ledger[-1]["type"] == "DEBIT" and ledger[-1]["amount"] == Decimal("12.50"), ledger[-1])


def test_pay_refusals_change_nothing(s):
    rich = wallet(s, "100.00")
    poor = wallet(s, "12.49")
    euro = wallet(s, "100.00", "EUR")
    oid = new_order(s, items=[item("a", 5, "2.50")])
    ok(step(s, oid, "confirm"))
    before = {w: get_wallet(s, w) for w in (rich, poor, euro)}
    order_before = get_order(s, oid)
    count = s.count_events()
    expect_problem(step(s, oid, "pay", {"walletId": "nope-" + uid()}), 404, "wallet_not_found")
    expect_problem(step(s, oid, "pay", {"walletId": poor}), 422, "insufficient_funds")
    expect_problem(step(s, oid, "pay", {"walletId": euro}), 422, "currency_mismatch")
    for bad in ['{}', '{"walletId":""}', '{"walletId":"a b"}', '{"walletId":null}',
                '{"walletId":"%s","amount":1}' % rich, '{"walletId":5}']:
        expect_problem(raw_post(s, "/orders/%s/pay" % oid, bad), 400, "invalid_request")
    expect(s.count_events() == count, "a refused payment appended events")
    expect(get_order(s, oid) == order_before)
    for w, b in before.items():
        expect(get_wallet(s, w) == b, w)
    # Pending is not payable either.
    pending = new_order(s)
    r = step(s, pending, "pay", {"walletId": rich})
    expect_problem(r, 422, "invalid_transition")
    expect(r[3]["currentStatus"] == "pending")
    # And the order still pays from the right wallet afterwards.
    expect(ok(step(s, oid, "pay", {"walletId": rich}))["paidFrom"] == rich)
    expect(get_wallet(s, rich)["balance"] == Decimal("87.50"))


def test_pay_a_free_order(s):
    w = wallet(s, "1.00")
    euro = wallet(s, "1.00", "EUR")
    oid = new_order(s, items=[item("gift", 1, 0)])
    ok(step(s, oid, "confirm"))
    expect_problem(step(s, oid, "pay", {"walletId": "nope-" + uid()}), 404, "wallet_not_found")
    expect_problem(step(s, oid, "pay", {"walletId": euro}), 422, "currency_mismatch")
    version = get_wallet(s, w)["version"]
    body = ok(step(s, oid, "pay", {"walletId": w}))
    expect(body["status"] == "paid" and body["paidFrom"] == w, body)
    expect(get_wallet(s, w)["version"] == version, "a free order moved money")
    body = ok(step(s, oid, "cancel"))
    expect(body["status"] == "cancelled" and get_wallet(s, w)["version"] == version)


def test_cancel_refunds_a_paid_order(s):
    w = wallet(s, "30.00")
    oid = new_order(s, items=[item("a", 3, "3.33")])
    ok(step(s, oid, "confirm"))
    ok(step(s, oid, "pay", {"walletId": w}))
    expect(get_wallet(s, w)["balance"] == Decimal("20.01"))
    st, h, payload, body = step(s, oid, "cancel", {"reason": "changed my mind"})
    expect(st == 200 and body["status"] == "cancelled" and body["paidFrom"] == w, payload)
    s.position = h["x-position"]
    expect(get_wallet(s, w)["balance"] == Decimal("30.00"))
    credit = events(s, "/wallets/" + w)[-1]
    cancelled = events(s, "/orders/" + oid)[-1]
    expect(credit["type"] == "WalletCredited" and credit["data"]["amountMinor"] == 999 and
           credit["data"]["reference"] == "order:" + oid, credit)
    expect(cancelled["data"] == {"orderId": oid, "reason": "changed my mind", "walletId": w,
                                 "refundedMinor": 999}, cancelled)
    expect(abs(int(credit["position"]) - int(cancelled["position"])) == 1)
    # Cancelling an unpaid order moves no money and records no refund.
    oid = new_order(s)
    body = ok(step(s, oid, "cancel"))
    expect(events(s, "/orders/" + oid)[-1]["data"] == {"orderId": oid}, body)
    for bad in ['{"reason":5}', '{"reason":null}', '{"reason":"%s"}' % ("r" * 1025),
                '{"why":"x"}']:
        expect_problem(raw_post(s, "/orders/%s/cancel" % new_order(s), bad), 400,
                       "invalid_request")
    expect(ok(step(s, new_order(s), "cancel", {"reason": "r" * 1024}))["status"] == "cancelled")


def test_refund_after_the_wallet_spent_its_money(s):
    # The refund is a credit: it never needs funds, whatever the wallet did since.
    w = wallet(s, "10.00")
    oid = new_order(s, items=[item("a", 1, "10.00")])
    ok(step(s, oid, "confirm"))
    ok(step(s, oid, "pay", {"walletId": w}))
    expect(get_wallet(s, w)["balance"] == 0)
    ok(step(s, oid, "cancel"))
    expect(get_wallet(s, w)["balance"] == Decimal("10.00"))


def test_concurrent_payments_conserve_money(s):
    w = wallet(s, "100.00")
    orders = []
    for i in range(30):
        oid = new_order(s, items=[item("a", 1, "7.00")])
        ok(step(s, oid, "confirm"))
        orders.append(oid)

    def pay(oid):
        return step(s, oid, "pay", {"walletId": w})

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        results = list(ex.map(pay, orders))
    paid = [r for r in results if r[0] == 200]
    expect(len(paid) == 14, [r[0] for r in results])  # 14 x 7.00 <= 100.00 < 15 x 7.00
    for r in results:
        if r[0] != 200:
            expect_problem(r, 422, "insufficient_funds")
    expect(get_wallet(s, w)["balance"] == Decimal("2.00"))
    # The same order paid twice at once: once.
    other = wallet(s, "100.00")
    oid = new_order(s, items=[item("a", 1, "1.00")])
    ok(step(s, oid, "confirm"))
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: step(s, oid, "pay", {"walletId": other}), range(8)))
    expect(sum(1 for r in results if r[0] == 200) == 1, [r[0] for r in results])
    for r in results:
        if r[0] != 200:
            expect_problem(r, 422, "invalid_transition")
            expect(r[3]["currentStatus"] == "paid")
    expect(get_wallet(s, other)["balance"] == Decimal("99.00"))


# ---------------------------------------------------------------- rollback

def test_rollback(s):
    oid = new_order(s, items=[item("a", 1, "1.00")])               # v1
    ok(step(s, oid, "items", item("b", 2, "2.00")))                # v2
    ok(step(s, oid, "confirm"))                                    # v3
    body = ok(step(s, oid, "rollback", {"toVersion": 1}))          # v4
    expect(body["status"] == "pending" and body["version"] == 4, body)
    expect([(i["productId"], i["quantity"]) for i in body["items"]] == [("a", 1)], body)
    expect(body["total"] == Decimal("1.00"), body)
    expect(get_order(s, oid) == body)
    ok(step(s, oid, "items", item("c", 1, "3.00")))                # v5
    ok(s.request("PUT", "/orders/%s/items/a" % oid, raw=b'{"quantity":7}'))  # v6
    ok(step(s, oid, "confirm"))                                    # v7
    # Back to v3: confirmed, with the items of then; a new event, v8.
    body = ok(step(s, oid, "rollback", {"toVersion": 3}))
    expect(body["status"] == "confirmed" and body["version"] == 8, body)
    expect([(i["productId"], i["quantity"]) for i in body["items"]] == [("a", 1), ("b", 2)], body)
    expect(body["total"] == Decimal("5.00"), body)
    last = events(s, "/orders/" + oid)[-1]
    expect(last["type"] == "OrderRolledBack" and last["version"] == 8, last)
    expect(last["data"]["toVersion"] == 3 and last["data"]["status"] == "confirmed", last)
    expect(len(last["data"]["items"]) == 2 and last["data"]["items"][1]["lineTotalMinor"] == 400)
    # The rolled-back order goes on like any other.
    w = wallet(s)
    expect(ok(step(s, oid, "pay", {"walletId": w}))["total"] == Decimal("5.00"))
    expect(get_wallet(s, w)["balance"] == Decimal("95.00"))


def test_rollback_refusals(s):
    oid = new_order(s)
    ok(step(s, oid, "items", item("b")))
    for bad in ['{"toVersion":0}', '{"toVersion":-1}', '{"toVersion":"1"}', '{"toVersion":1.0}',
                '{}', '{"toVersion":null}', '{"toVersion":1,"x":1}']:
        expect_problem(raw_post(s, "/orders/%s/rollback" % oid, bad), 400, "invalid_request")
    expect_problem(step(s, oid, "rollback", {"toVersion": 2}), 422, "invalid_version")
    expect_problem(step(s, oid, "rollback", {"toVersion": 3}), 422, "invalid_version")
    expect_problem(step(s, oid, "rollback", {"toVersion": 2 ** 62}), 422, "invalid_version")
    fresh = new_order(s)
    expect_problem(step(s, fresh, "rollback", {"toVersion": 1}), 422, "invalid_version")
    expect(get_order(s, oid)["version"] == 2 and get_order(s, fresh)["version"] == 1)
    # Once paid (or later, or cancelled): invalid_transition, before the version is looked at.
    paid, _ = order_in(s, "paid")
    r = step(s, paid, "rollback", {"toVersion": 99})
    expect_problem(r, 422, "invalid_transition")
    expect(r[3]["currentStatus"] == "paid")


# ---------------------------------------------------------------- reads

def test_unknown_order_everywhere(s):
    nope = "nope-" + uid()
    for method, path, body in [
            ("GET", "/orders/%s", None), ("GET", "/orders/%s?atVersion=1", None),
            ("GET", "/orders/%s?asOf=2999-01-01T00:00:00Z", None),
            ("GET", "/orders/%s/events", None),
            ("POST", "/orders/%s/items", item("a")), ("PUT", "/orders/%s/items/a", {"quantity": 1}),
            ("DELETE", "/orders/%s/items/a", None), ("POST", "/orders/%s/confirm", {}),
            ("POST", "/orders/%s/pay", {"walletId": "w"}), ("POST", "/orders/%s/ship", {}),
            ("POST", "/orders/%s/deliver", {}), ("POST", "/orders/%s/cancel", {}),
            ("POST", "/orders/%s/rollback", {"toVersion": 1}),
            ("POST", "/admin/orders/%s/rebuild", None)]:
        raw = None if body is None else json.dumps(body).encode()
        expect_problem(s.request(method, path % nope, raw=raw), 404, "order_not_found")
        expect_problem(s.request(method, path % "a%20b", raw=raw), 400, "invalid_request")


def test_http_errors_on_order_routes(s):
    oid = new_order(s)
    r = s.request("PATCH", "/orders/" + oid)
    expect_problem(r, 405, "method_not_allowed")
    expect(r[1]["allow"] == "GET, HEAD", r[1])
    r = s.request("GET", "/orders/%s/confirm" % oid)
    expect_problem(r, 405, "method_not_allowed")
    expect(r[1]["allow"] == "POST", r[1])
    r = s.request("POST", "/orders/%s/items/a" % oid, raw=b"{}")
    expect_problem(r, 405, "method_not_allowed")
    expect(set(r[1]["allow"].split(", ")) == {"PUT", "DELETE"}, r[1])
    expect_problem(s.request("POST", "/orders/%s/confirm" % oid, raw=b"{}",
                             headers={"Content-Type": "text/plain"}), 415,
                   "unsupported_media_type")
    big = '{"customerId":"c","items":[],"pad":"%s"}' % ("x" * 65536)
    expect_problem(raw_post(s, "/orders", big), 413, "payload_too_large")
    expect_problem(s.request("GET", "/orders/%s/nothing" % oid), 404, "not_found")
    # confirm, ship and deliver take no body at all, or {}.
    c = s.conn()
    c.request("POST", "/orders/%s/confirm" % oid, headers={"Content-Length": "0",
                                                          "Content-Type": "application/json",
                                                          "Authorization": "Bearer " + s.token})
    r = c.getresponse()
    expect(r.status == 200, r.read())
    c.close()


def test_time_travel(s):
    w = wallet(s)
    oid = new_order(s, items=[item("a", 1, "1.00")])
    stamps = []
    for action, body in (("items", item("b", 1, "2.00")), ("confirm", {}),
                         ("pay", {"walletId": w})):
        time.sleep(0.005)  # distinct milliseconds, so asOf tells the versions apart
        stamps.append(ok(step(s, oid, action, body))["updatedAt"])
    now = get_order(s, oid)
    st, _, payload, v1 = s.request("GET", "/orders/%s?atVersion=1" % oid)
    expect(st == 200 and v1["version"] == 1 and v1["status"] == "pending", payload)
    expect(len(v1["items"]) == 1 and v1["total"] == Decimal("1.00") and v1["paidFrom"] is None)
    v3 = s.request("GET", "/orders/%s?atVersion=3" % oid)[3]
    expect(v3["status"] == "confirmed" and v3["total"] == Decimal("3.00") and v3["version"] == 3)
    expect(s.request("GET", "/orders/%s?atVersion=4" % oid)[3] == now)
    expect_problem(s.request("GET", "/orders/%s?atVersion=5" % oid), 404, "order_not_found")
    for bad in ["atVersion=0", "atVersion=-1", "atVersion=x", "asOf=yesterday",
                "asOf=2020-02-30T00:00:00Z"]:
        expect_problem(s.request("GET", "/orders/%s?%s" % (oid, bad)), 400, "invalid_request")
    at = s.request("GET", "/orders/%s?asOf=%s" % (oid, stamps[0]))[3]
    expect(at["version"] == 2 and len(at["items"]) == 2 and at["status"] == "pending", at)
    at = s.request("GET", "/orders/%s?asOf=%s" % (oid, stamps[1]))[3]
    expect(at["version"] == 3 and at["status"] == "confirmed", at)
    expect(s.request("GET", "/orders/%s?asOf=2999-01-01T00:00:00Z" % oid)[3] == now)
    expect_problem(s.request("GET", "/orders/%s?asOf=2000-01-01T00:00:00Z" % oid), 404,
                   "order_not_found")


def test_events(s):
    oid = new_order(s, items=[item("a", 3, "0.50")])
    ok(step(s, oid, "items", item("b", 1, "1.00")))
    ok(step(s, oid, "confirm"))
    es = events(s, "/orders/" + oid)
    expect([(e["type"], e["version"], e["schemaVersion"]) for e in es] ==
           [("OrderCreated", 1, 2), ("OrderItemAdded", 2, 2), ("OrderConfirmed", 3, 1)], es)
    expect(es[0]["data"] == {"orderId": oid, "customerId": "cust-1", "currency": "USD",
                             "items": [{"productId": "a", "quantity": 3, "unitPriceMinor": 50,
                                        "lineTotalMinor": 150}]}, es[0]["data"])
    expect(es[1]["data"]["lineTotalMinor"] == 100, es[1])
    for e in es:
        expect(e["streamId"] == "order:" + oid and len(e["eventId"]) == 36, e)
        expect({"correlationId", "causationId", "occurredAt"} <= set(e["metadata"]), e)
    st, _, _, page = s.request("GET", "/orders/%s/events?fromVersion=2&limit=1" % oid)
    expect(st == 200 and [e["version"] for e in page["data"]] == [2] and page["nextCursor"], page)
    page = s.request("GET", "/orders/%s/events?limit=1&after=%s" % (oid, page["nextCursor"]))[3]
    expect([e["version"] for e in page["data"]] == [3], page)
    for q in ["limit=0", "limit=1001", "fromVersion=0", "after=zzz"]:
        expect_problem(s.request("GET", "/orders/%s/events?%s" % (oid, q)), 400, "invalid_request")


def test_list_filters_and_paging(s):
    cust = uid("cust")
    made = {}
    for status in STATUSES:
        for _ in range(2):
            oid, _ = order_in(s, status, customer=cust)
            made[oid] = status
    everything, pages = list_all(s, "&customerId=" + cust, limit=5)
    expect(pages == 3 and sorted(o["orderId"] for o in everything) == sorted(made), everything)
    expect(newest_first(everything), [(o["createdAt"], o["orderId"]) for o in everything])
    for o in everything:
        expect(o["status"] == made[o["orderId"]] and o["customerId"] == cust, o)
        expect(o == get_order(s, o["orderId"]), o)
    for status in STATUSES:
        got, _ = list_all(s, "&customerId=%s&status=%s" % (cust, status), limit=1)
        expect(sorted(o["orderId"] for o in got) ==
               sorted(k for k, v in made.items() if v == status), (status, got))
        expect(newest_first(got))
    # By status alone: every order of ours of that status among them.
    got, _ = list_all(s, "&status=delivered", limit=1000)
    expect(all(o["status"] == "delivered" for o in got) and newest_first(got))
    expect({k for k, v in made.items() if v == "delivered"} <= {o["orderId"] for o in got})
    st, _, _, page = s.request("GET", "/orders")
    expect(st == 200 and len(page["data"]) <= 50 and newest_first(page["data"]), page)
    nobody = s.request("GET", "/orders?customerId=" + uid("nobody"))[3]
    expect(nobody == {"data": [], "nextCursor": None}, nobody)
    for q in ["status=open", "status=", "customerId=a%20b", "limit=0", "limit=1001",
              "limit=x", "after=zzz", "after=1~", "after=~x", "after=12~a%20b"]:
        expect_problem(s.request("GET", "/orders?" + q), 400, "invalid_request")


def test_list_stable_under_concurrent_inserts(s):
    cust = uid("cust")
    before = [new_order(s, customer=cust, items=[]) for _ in range(60)]
    stop = threading.Event()
    inserted = []

    def insert():
        while not stop.is_set():
            inserted.append(new_order(s, customer=cust, items=[]))
            new_order(s, customer=uid("other"), items=[])

    t = threading.Thread(target=insert)
    t.start()
    try:
        for query, limit in (("&customerId=" + cust, 7), ("&customerId=%s&status=pending"
                                                           % cust, 4), ("", 25)):
            listed, after = [], ""
            while True:
                page = s.request("GET", "/orders?limit=%d%s%s" % (limit, query, after))[3]
                listed += page["data"]
                if not page["nextCursor"]:
                    break
                after = "&after=" + page["nextCursor"]
                time.sleep(0.002)  # let the inserts land between pages
            seen = [o["orderId"] for o in listed]
            expect(len(seen) == len(set(seen)), "an order twice in one listing: " + query)
            expect(set(before) <= set(seen), "orders skipped: %r" % (set(before) - set(seen)))
            expect(newest_first(listed), query)
    finally:
        stop.set()
        t.join()
    expect(len(inserted) > 0, "no insert happened while paging")


def test_list_pages_bounded_in_bytes(s):
    # 150 orders of 100 items are about 1.2 MB of JSON: more than a page
    # holds (1 MiB), so a page of limit=1000 stops early with a cursor, and
    # the next page starts where it stopped.
    cust = uid("big")
    items = [item("product-%03d" % i, 1, "1.00") for i in range(100)]
    made = [new_order(s, customer=cust, items=items) for _ in range(150)]
    got, pages = list_all(s, "&customerId=" + cust, limit=1000)
    expect(pages >= 2, pages)
    ids = [o["orderId"] for o in got]
    expect(len(ids) == len(set(ids)) and set(ids) == set(made), (len(ids), len(set(ids))))
    expect(newest_first(got) and all(len(o["items"]) == 100 for o in got))


def test_x_min_position(s):
    oid = new_order(s)
    s.read_your_writes = False
    try:
        st, h, _, _ = step(s, oid, "confirm")
        pos = h["x-position"]
        for path in ("/orders/" + oid, "/orders?customerId=cust-1&limit=1",
                     "/orders/statistics"):
            r = s.request("GET", path, headers={"X-Min-Position": pos})
            expect(r[0] == 200, r[2])
        expect(s.request("GET", "/orders/" + oid, headers={"X-Min-Position": pos})[3]["status"] ==
               "confirmed")
        t0 = time.time()
        r = s.request("GET", "/orders/statistics", headers={"X-Min-Position": str(10 ** 12)})
        expect_problem(r, 503, "projection_lagging")
        expect(r[1].get("retry-after") and time.time() - t0 < 5, r[1])
        expect_problem(s.request("GET", "/orders/" + oid, headers={"X-Min-Position": "x"}), 400,
                       "invalid_request")
    finally:
        s.read_your_writes = True


# ---------------------------------------------------------------- idempotency

def test_idempotent_create_and_pay(s):
    key = {"Idempotency-Key": uid("key")}
    oid = uid()
    body = {"orderId": oid, "customerId": "c", "items": [item("a", 1, "4.00")]}
    first = post(s, "/orders", body, key)
    second = post(s, "/orders", body, key)
    expect(first[0] == 201 and second[0] == 201 and first[2] == second[2], second[2])
    expect(second[1].get("idempotency-replayed") == "true" and
           "idempotency-replayed" not in first[1])
    expect(second[1]["location"] == first[1]["location"] and
           second[1]["x-position"] == first[1]["x-position"])
    expect_problem(post(s, "/orders", dict(body, customerId="d"), key), 422,
                   "idempotency_key_reused")
    expect_problem(step(s, oid, "confirm", {}, key), 422, "idempotency_key_reused")
    ok(step(s, oid, "confirm"))
    w = wallet(s, "10.00")
    pay_key = {"Idempotency-Key": uid("key")}
    answers = [step(s, oid, "pay", {"walletId": w}, pay_key) for _ in range(4)]
    expect(all(a[0] == 200 and a[2] == answers[0][2] for a in answers), [a[0] for a in answers])
    expect(get_wallet(s, w)["balance"] == Decimal("6.00"))
    expect(len(events(s, "/orders/" + oid)) == 3)
    # A generated orderId is replayed too, not generated again.
    gen_key = {"Idempotency-Key": uid("key")}
    a = raw_post(s, "/orders", '{"customerId":"c","items":[]}', gen_key)
    b = raw_post(s, "/orders", '{"customerId":"c","items":[]}', gen_key)
    expect(a[2] == b[2] and a[3]["orderId"] == b[3]["orderId"], (a[2], b[2]))


def test_idempotent_rejections_remembered(s):
    poor = wallet(s, "1.00")
    oid = new_order(s, items=[item("a", 1, "5.00")])
    ok(step(s, oid, "confirm"))
    key = {"Idempotency-Key": uid("key")}
    first = step(s, oid, "pay", {"walletId": poor}, key)
    expect_problem(first, 422, "insufficient_funds")
    post(s, "/wallets/%s/credit" % poor, {"amount": "10.00"})
    again = step(s, oid, "pay", {"walletId": poor}, key)
    expect(again[2] == first[2] and again[1].get("idempotency-replayed") == "true", again[2])
    expect(get_order(s, oid)["status"] == "confirmed")
    # item_already_exists and invalid_transition are remembered the same way.
    key2 = {"Idempotency-Key": uid("key")}
    r1 = step(s, oid, "ship", {}, key2)
    expect_problem(r1, 422, "invalid_transition")
    r2 = step(s, oid, "ship", {}, key2)
    expect(r2[2] == r1[2] and r2[1].get("idempotency-replayed") == "true")


def test_idempotency_never_remembers_400(s):
    # Refused by the parser (an unknown field) ...
    key = {"Idempotency-Key": uid("key")}
    expect_problem(raw_post(s, "/orders", '{"customerId":"c","items":[],"x":1}', key), 400,
                   "invalid_request")
    r = raw_post(s, "/orders", '{"customerId":"c","items":[]}', key)
    expect(r[0] == 201 and "idempotency-replayed" not in r[1], r[2])
    # ... or by the decider, which alone knows the order's currency digits.
    oid = new_order(s, currency="JPY", items=[])
    key = {"Idempotency-Key": uid("key")}
    expect_problem(step(s, oid, "items", item("a", 1, "1.5"), key), 400, "invalid_request")
    r = step(s, oid, "items", item("a", 1, "15"), key)
    expect(r[0] == 200 and "idempotency-replayed" not in r[1], r[2])
    key = {"Idempotency-Key": uid("key")}
    expect_problem(create_order(s, currency="JPY", items=[item("a", 1, "0.5")], headers=key), 400,
                   "invalid_request")
    expect(create_order(s, currency="JPY", items=[item("a", 1, "5")], headers=key)[0] == 201)


# ---------------------------------------------------------------- recovery

def projection_set(db, name):
    return db.execute("SELECT live_set FROM projections WHERE name=?", (name,)).fetchone()[0]


def caught_up(s):
    return all(p["lag"] == 0 and p["status"] == "running"
               for p in s.request("GET", "/admin/projections")[3]["data"])


def wait_until(fn, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_projection_rebuilds_while_orders_change(s):
    stop = threading.Event()
    refused = []

    def writer(seed):
        rnd = random.Random(seed)
        w = wallet(s, "10000.00")
        while not stop.is_set():
            oid = new_order(s, items=[item("a", 1, "1.%02d" % rnd.randint(0, 99))])
            for action in ["confirm", "pay", "ship"][:rnd.randint(0, 3)]:
                r = step(s, oid, action, {"walletId": w} if action == "pay" else {})
                if r[0] != 200:
                    refused.append(r[2])
            if rnd.random() < 0.3:
                step(s, oid, "cancel")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for name in ("orders", "order_stats"):
            time.sleep(0.3)
            r = s.request("POST", "/admin/projections/%s/rebuild" % name)
            expect(r[0] == 202 and r[3]["status"] == "rebuilding", r[2])
            # Reads keep working during the rebuild.
            expect(s.request("GET", "/orders/statistics")[0] == 200)
            wait_until(lambda: all(p["status"] == "running" for p in
                                   s.request("GET", "/admin/projections")[3]["data"]),
                       timeout=60, what="rebuild of " + name)
    finally:
        stop.set()
        for t in threads:
            t.join()
    expect(refused == [], refused[:3])
    wait_until(lambda: caught_up(s), what="catch up")
    expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])


def test_zz_drift_and_one_order_rebuild(s):
    # zz: runs last, after everything above, so drift checks all of it.
    oid, w = order_in(s, "paid", items=[item("a", 2, "1.50"), item("b", 1, "4.00")])
    wait_until(lambda: caught_up(s), what="catch up")
    drift = s.request("GET", "/admin/drift")[3]
    expect(drift["drifted"] == [] and drift["checked"] > 100, drift)
    db = sqlite3.connect(os.path.join(s.data_dir, "readmodel.db"), timeout=10)
    oset, sset = projection_set(db, "orders"), projection_set(db, "order_stats")
    db.execute("UPDATE orders%s SET status = 'shipped', total_minor = 1 WHERE id = ?" % oset,
               (oid,))
    db.execute("DELETE FROM order_items%s WHERE order_id = ? AND product_id = 'b'" % oset, (oid,))
    db.execute("UPDATE order_status_counts%s SET orders = orders + 5 WHERE status = 'paid'" % sset)
    db.commit()
    db.close()
    drift = s.request("GET", "/admin/drift")[3]
    fields = {(d.get("orderId"), d["model"], d["field"]) for d in drift["drifted"]}
    for want in [(oid, "orders", "status"), (oid, "orders", "totalMinor"),
                 (oid, "orders", "items"), ("*", "order_stats", "paid")]:
        expect(want in fields, (want, drift))
    st, _, payload, body = s.request("POST", "/admin/orders/%s/rebuild" % oid)
    expect(st == 200 and body["status"] == "paid" and body["total"] == Decimal("7.00"), payload)
    expect(len(body["items"]) == 2 and body == get_order(s, oid), body)
    # The rebuild mended the order's rows; the statistics' counter was
    # damaged apart from any order, so only a full rebuild mends it.
    left = s.request("GET", "/admin/drift")[3]["drifted"]
    expect([(d["model"], d["field"]) for d in left] == [("order_stats", "paid")], left)
    expect(s.request("POST", "/admin/projections/order_stats/rebuild")[0] == 202)
    wait_until(lambda: caught_up(s), what="order_stats rebuild")
    expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])


# ---------------------------------------------------------------- with own servers

def tool(data_dir, *args):
    return subprocess.run([BINARY] + list(args) + ["--data-dir", data_dir], capture_output=True,
                          text=True)


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


def proc_statistics():
    s = Server(BINARY).start()
    try:
        st, _, payload, stats = s.request("GET", "/orders/statistics")
        expect(st == 200 and stats == {"totalOrders": 0, "byStatus": {k: 0 for k in STATUSES},
                                       "revenue": {}, "averageOrderValue": {}}, payload)
        expect(list(stats["byStatus"]) == STATUSES, stats)
        usd = wallet(s, "100.00")
        jpy = wallet(s, "1000", "JPY")
        eur = wallet(s, "100.00", "EUR")
        # 0.01 and 0.02 paid: revenue 0.03, average 0.015, half-even 0.02.
        a, _ = order_in(s, "paid", items=[item("a", 1, "0.01")], wallet_id=usd)
        b, _ = order_in(s, "shipped", items=[item("a", 1, "0.02")], wallet_id=usd)
        # 1 and 2 yen: average 1.5 yen, half-even 2.
        order_in(s, "delivered", items=[item("a", 1, "1")], currency="JPY", wallet_id=jpy)
        order_in(s, "paid", items=[item("a", 2, "1")], currency="JPY", wallet_id=jpy)
        # Not revenue: pending, confirmed, and a paid order cancelled (refunded), in EUR.
        order_in(s, "pending")
        order_in(s, "confirmed")
        c, _ = order_in(s, "paid", items=[item("a", 1, "9.99")], currency="EUR", wallet_id=eur)
        ok(step(s, c, "cancel"))
        stats = s.request("GET", "/orders/statistics")[3]
        want = {"totalOrders": 7, "byStatus": {"pending": 1, "confirmed": 1, "paid": 2,
                                               "shipped": 1, "delivered": 1, "cancelled": 1},
                "revenue": {"JPY": 3, "USD": Decimal("0.03")},
                "averageOrderValue": {"JPY": 2, "USD": Decimal("0.02")}}
        expect(stats == want, stats)
        st, _, payload, _ = s.request("GET", "/orders/statistics")
        expect(b'"revenue":{"JPY":3,"USD":0.03},"averageOrderValue":{"JPY":2,"USD":0.02}}'
               in payload, payload)
        # Two more USD orders, 0.03 and 0.04: revenue 0.10 over 4, 0.025, half-even 0.02.
        order_in(s, "delivered", items=[item("a", 1, "0.03")], wallet_id=usd)
        order_in(s, "paid", items=[item("a", 1, "0.04")], wallet_id=usd)
        stats = s.request("GET", "/orders/statistics")[3]
        expect(stats["revenue"]["USD"] == Decimal("0.10") and
               stats["averageOrderValue"]["USD"] == Decimal("0.02"), stats)
        # A free paid order counts in the average: 0.10 over 5 is 0.02 exactly.
        order_in(s, "paid", items=[item("gift", 1, 0)], wallet_id=usd)
        stats = s.request("GET", "/orders/statistics")[3]
        expect(stats["averageOrderValue"]["USD"] == Decimal("0.02") and
               stats["byStatus"]["paid"] == 4 and stats["totalOrders"] == 10, stats)
        # Cancelling a paid order takes it out of the revenue: 0.09 over 4, 0.0225 -> 0.02.
        ok(step(s, a, "cancel"))
        stats = s.request("GET", "/orders/statistics")[3]
        expect(stats["revenue"]["USD"] == Decimal("0.09") and stats["byStatus"]["cancelled"] == 2,
               stats)
        expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])
        expect(s.stop() == 0)
        # The same figures after a rebuild from the log alone.
        os.unlink(os.path.join(s.data_dir, "readmodel.db"))
        r = tool(s.data_dir, "rebuild")
        expect(r.returncode == 0, r.stderr)
        s.start()
        expect(s.request("GET", "/orders/statistics")[3] == stats)
        expect(s.request("GET", "/wallets/" + usd)[3]["balance"] == Decimal("99.91"))
        expect(b is not None)
    finally:
        s.cleanup()


def mixed_run(s, orders=40, seed=7):
    """Orders of every kind against a few wallets; returns the wallets."""
    rnd = random.Random(seed)
    wallets = [wallet(s, "500.00") for _ in range(4)]
    for i in range(orders):
        oid = new_order(s, customer="c%d" % (i % 5),
                        items=[item("p%d" % k, rnd.randint(1, 3), "%d.%02d" % (
                            rnd.randint(0, 9), rnd.randint(0, 99))) for k in range(3)])
        if rnd.random() < 0.3:
            ok(step(s, oid, "items", item("extra", 1, "1.00")))
            if rnd.random() < 0.5:
                ok(step(s, oid, "rollback", {"toVersion": 1}))
        if rnd.random() < 0.1:
            continue
        ok(step(s, oid, "confirm"))
        r = step(s, oid, "pay", {"walletId": rnd.choice(wallets)})
        if r[0] != 200:
            continue
        x = rnd.random()
        if x < 0.25:
            ok(step(s, oid, "cancel", {"reason": "test"}))
        elif x < 0.75:
            ok(step(s, oid, "ship"))
            if x < 0.5:
                ok(step(s, oid, "deliver"))
    return wallets


def proc_verify_drift_rebuild_after_a_mixed_run():
    s = Server(BINARY).start()
    try:
        mixed_run(s)
        wait_until(lambda: caught_up(s), what="catch up")
        expect(s.request("GET", "/admin/drift")[3]["drifted"] == [])
        expect(s.stop() == 0)
        r = tool(s.data_dir, "verify")
        report = json.loads(r.stdout)
        expect(r.returncode == 0 and report["ok"] and report["violations"] == [], r.stdout[:2000])
        expect(report["order"]["orders"] == 40 and report["order"]["paidOrders"] > 10,
               report["order"])
        r = tool(s.data_dir, "drift")
        expect(r.returncode == 0 and json.loads(r.stdout)["drifted"] == [], r.stdout[:2000])
        path = os.path.join(s.data_dir, "readmodel.db")
        before = dump_read_side(path)
        expect(len(before["orders"]) == 40 and len(before["order_items"]) >= 120, before.keys())
        os.unlink(path)
        r = tool(s.data_dir, "rebuild")
        expect(r.returncode == 0, r.stderr)
        expect(dump_read_side(path) == before, "rebuilt tables differ")
        # A line total that is not quantity x price in the read model: verify fails.
        db = sqlite3.connect(path)
        oset = projection_set(db, "orders")
        db.execute("UPDATE order_items%s SET line_total_minor = line_total_minor + 1 WHERE"
                   " (order_id, position) IN (SELECT order_id, position FROM order_items%s"
                   " LIMIT 1)" % (oset, oset))
        db.commit()
        db.close()
        r = tool(s.data_dir, "verify")
        report = json.loads(r.stdout)
        expect(r.returncode == 1 and not report["ok"] and report["violations"], r.stdout[:1000])
        expect(tool(s.data_dir, "rebuild").returncode == 0)
        expect(tool(s.data_dir, "verify").returncode == 0)
    finally:
        s.cleanup()


def proc_kill_9_keeps_paid_orders():
    s = Server(BINARY).start()
    try:
        w = wallet(s, "20.00")
        oid = new_order(s, items=[item("a", 3, "5.00")])
        ok(step(s, oid, "confirm"))
        ok(step(s, oid, "pay", {"walletId": w}))
        s.stop(signal.SIGKILL)
        s.start()
        s.position = "0"
        wait_until(lambda: caught_up(s), what="catch up after restart")
        expect(get_order(s, oid)["status"] == "paid")
        expect(get_wallet(s, w)["balance"] == Decimal("5.00"))
        expect(s.stop() == 0)
        expect(tool(s.data_dir, "verify").returncode == 0)
    finally:
        s.cleanup()


def run_all(binary):
    global BINARY
    BINARY = binary
    run_suite(binary, globals(), [proc_statistics, proc_verify_drift_rebuild_after_a_mixed_run,
                                  proc_kill_9_keeps_paid_orders])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: test_orders.py path/to/wallex", file=sys.stderr)
        sys.exit(2)
    run_all(os.path.abspath(sys.argv[1]))
