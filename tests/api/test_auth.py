#!/usr/bin/env python3
"""Identity and access (issue 21, API.md "Identity (tokens)") against the
real binary.

The matrix: every route of every route table, called by every kind of
caller (no token, a malformed one, a wrong secret, an expired token, a
revoked one, a user on its own resource, a user on another subject's, a
reader, an admin) gets the status API.md gives it; and every refusal
changes nothing (the log's head and the resource, read by the admin, are
the same after as before). Then: the first start's token file, --auth off
(refused beyond loopback), `wallex token create` both ways, revocation from
the next request, the rate limit's 429, the audit fields, Idempotency-Keys
scoped to their caller, and a refused body never read.
Usage: test_auth.py path/to/wallex"""
import base64
import datetime
import glob
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Runner, Server, expect, expect_problem  # noqa: E402

BINARY = None
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_n = [0]


def uid(p="a"):
    _n[0] += 1
    return "%s-%d-%d" % (p, os.getpid(), _n[0])


def post(s, path, body, token=None, headers=None):
    kw = {} if token is None else {"token": token}
    return s.request("POST", path, raw=json.dumps(body).encode(), headers=headers, **kw)


def ok(r, status=None):
    expect(r[0] == status if status else 200 <= r[0] < 300, (r[0], r[2][:300]))
    return r[3]


def rfc3339(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def issue(s, role, subject, expires=None):
    body = {"role": role, "subject": subject}
    if expires:
        body["expiresAt"] = expires
    return ok(post(s, "/admin/tokens", body), 201)


# ---------------------------------------------------------------- fixtures (as the admin)

def wallet(s, owner, initial="100.00"):
    wid = uid("w")
    ok(post(s, "/wallets", {"walletId": wid, "ownerId": owner, "initialBalance": initial}), 201)
    return wid


def transfer(s, owner):
    tid = uid("t")
    ok(post(s, "/transfers", {"transferId": tid, "fromWalletId": wallet(s, owner),
                              "toWalletId": wallet(s, "u3"), "amount": "1.00"}), 201)
    return tid


def order(s, owner, status="pending", versions=1):
    oid = uid("o")
    ok(post(s, "/orders", {"orderId": oid, "customerId": owner,
                           "items": [{"productId": "p1", "quantity": 1, "unitPrice": "2.00"}]}),
       201)
    for i in range(versions - 1):
        ok(post(s, "/orders/%s/items" % oid, {"productId": "x%d" % i, "quantity": 1,
                                              "unitPrice": "1.00"}))
    steps = {"confirmed": ["confirm"], "paid": ["confirm", "pay"],
             "shipped": ["confirm", "pay", "ship"]}.get(status, [])
    for step in steps:
        body = {"walletId": wallet(s, owner)} if step == "pay" else {}
        ok(post(s, "/orders/%s/%s" % (oid, step), body))
    return oid


def subscription(s, owner):
    return ok(post(s, "/subscriptions", {"url": "http://127.0.0.1:9/hook",
                                         "eventTypes": ["TokenRevoked"]}), 201)["subscriptionId"]


def token_id(s, owner):
    return issue(s, "reader", uid("x"))["tokenId"]


def folder_of(s, owner):
    """A top-level folder the admin makes and grants manage on to owner:
    what is in it is owner's to do anything with, and nobody else's."""
    fid = uid("d")
    ok(post(s, "/folders", {"folderId": fid, "name": fid}), 201)
    ok(post(s, "/items/%s/grants" % fid, {"subject": owner, "permission": "manage"}))
    return fid


def item_of(s, owner, kind="file", trashed=False):
    top = folder_of(s, owner)
    iid = uid("i")
    if kind == "folder":
        ok(post(s, "/folders", {"folderId": iid, "name": iid, "parentId": top}), 201)
    else:
        ok(post(s, "/files", {"fileId": iid, "name": iid, "parentId": top, "size": 1,
                              "mimeType": "text/plain"}), 201)
    if trashed:
        ok(post(s, "/items/%s/trash" % iid, {}))
    return iid


# ---------------------------------------------------------------- the matrix

# Each route: (method, pattern, access, build). build(s, owner) makes what
# the call needs (as the admin) and returns (path, body or None, the path
# the admin reads to see the resource's state, or None). "owner" is the
# subject whose resource is used: the caller's own for "user_own", u2's
# for everyone else.
W = "/wallets/%s"
O = "/orders/%s"


def w_(s, o):
    w = wallet(s, o)
    return w, W % w


def o_(s, o, status="pending", versions=1):
    oid = order(s, o, status, versions)
    return oid, O % oid


def route_cases():
    def on_wallet(suffix, body=None):
        def build(s, o):
            w, state = w_(s, o)
            return (W % w) + suffix, body, state
        return build

    def on_order(suffix, body=None, status="pending", versions=1):
        def build(s, o):
            oid, state = o_(s, o, status, versions)
            return (O % oid) + suffix, body, state
        return build

    def fixed(path, body=None):
        return lambda s, o: (path, body, None)

    def on_item(suffix, body=None, kind="file", trashed=False):
        def build(s, o):
            iid = item_of(s, o, kind, trashed)
            return "/items/%s%s" % (iid, suffix), body, "/items/" + iid
        return build

    def in_folder(path, body):
        def build(s, o):
            return path, dict(body, name=uid("n"), parentId=folder_of(s, o)), None
        return build

    def moved(s, o):
        iid = item_of(s, o)
        return "/items/%s/move" % iid, {"parentId": folder_of(s, o)}, "/items/" + iid

    def revoked(s, o):
        iid = item_of(s, o)
        ok(post(s, "/items/%s/grants" % iid, {"subject": "g", "permission": "read"}))
        return "/items/%s/grants/g/read" % iid, None, "/items/" + iid

    def with_sub(suffix, body=None):
        def build(s, o):
            sid = subscription(s, o)
            return "/subscriptions/%s%s" % (sid, suffix), body, "/subscriptions/" + sid
        return build

    return [
        ("GET", "/healthz", "open", fixed("/healthz")),
        ("GET", "/readyz", "open", fixed("/readyz")),
        ("GET", "/openapi.yaml", "open", fixed("/openapi.yaml")),
        ("GET", "/metrics", "observe", fixed("/metrics")),
        ("GET", "/admin/projections", "admin", fixed("/admin/projections")),
        ("POST", "/admin/projections/{name}/rebuild", "admin",
         fixed("/admin/projections/transfers/rebuild")),
        ("GET", "/admin/drift", "admin", fixed("/admin/drift")),
        ("GET", "/admin/stats", "admin", fixed("/admin/stats")),
        # the dashboard's page and assets: the page asks for a token itself
        ("GET", "/ui", "open", fixed("/ui")),
        ("GET", "/ui/{asset}", "open", fixed("/ui/app.js")),
        # wallets
        ("POST", "/wallets", "command",
         lambda s, o: ("/wallets", {"walletId": uid("w"), "ownerId": o}, None)),
        ("GET", "/wallets", "query", lambda s, o: ("/wallets?ownerId=" + o, None, None)),
        ("GET", "/wallets/{id}", "query", on_wallet("")),
        ("GET", "/wallets/{id}/ledger", "query", on_wallet("/ledger")),
        ("POST", "/wallets/{id}/credit", "command", on_wallet("/credit", {"amount": "1.00"})),
        ("POST", "/wallets/{id}/debit", "command", on_wallet("/debit", {"amount": "1.00"})),
        ("GET", "/wallets/{id}/events", "query", on_wallet("/events")),
        ("POST", "/transfers", "command", lambda s, o: (
            "/transfers", {"fromWalletId": wallet(s, o), "toWalletId": wallet(s, "u3"),
                           "amount": "1.00"}, None)),
        ("GET", "/transfers/{id}", "query",
         lambda s, o: ("/transfers/" + transfer(s, o), None, None)),
        ("POST", "/admin/wallets/{id}/rebuild", "admin", lambda s, o: (
            lambda w: ("/admin/wallets/%s/rebuild" % w, None, W % w))(wallet(s, o))),
        # orders
        ("POST", "/orders", "command",
         lambda s, o: ("/orders", {"customerId": o, "items": []}, None)),
        ("GET", "/orders", "query", lambda s, o: ("/orders?customerId=" + o, None, None)),
        ("GET", "/orders/statistics", "observe", fixed("/orders/statistics")),
        ("GET", "/orders/{id}", "query", on_order("")),
        ("GET", "/orders/{id}/events", "query", on_order("/events")),
        ("POST", "/orders/{id}/items", "command",
         on_order("/items", {"productId": "p2", "quantity": 1, "unitPrice": "1.00"})),
        ("PUT", "/orders/{id}/items/{productId}", "command", on_order("/items/p1",
                                                                       {"quantity": 3})),
        ("DELETE", "/orders/{id}/items/{productId}", "command", on_order("/items/p1")),
        ("POST", "/orders/{id}/confirm", "command", on_order("/confirm", {})),
        ("POST", "/orders/{id}/pay", "command", lambda s, o: (
            lambda oid: (O % oid + "/pay", {"walletId": wallet(s, o)}, O % oid))(
                order(s, o, "confirmed"))),
        ("POST", "/orders/{id}/ship", "command", on_order("/ship", {}, status="paid")),
        ("POST", "/orders/{id}/deliver", "command", on_order("/deliver", {}, status="shipped")),
        ("POST", "/orders/{id}/cancel", "command", on_order("/cancel", {})),
        ("POST", "/orders/{id}/rollback", "command", on_order("/rollback", {"toVersion": 1},
                                                              versions=2)),
        ("POST", "/admin/orders/{id}/rebuild", "admin", lambda s, o: (
            lambda oid: ("/admin/orders/%s/rebuild" % oid, None, O % oid))(order(s, o))),
        # files and folders: the owner's are in a folder granted manage to
        # it; another's are invisible to the caller (404)
        ("POST", "/folders", "command", in_folder("/folders", {})),
        ("POST", "/files", "command", in_folder("/files", {"size": 1, "mimeType": "text/plain"})),
        ("GET", "/items", "query", lambda s, o: ("/items?under=" + folder_of(s, o), None, None)),
        ("GET", "/items/{id}", "query", on_item("")),
        ("PATCH", "/items/{id}", "command", on_item("", {"size": 5})),
        ("DELETE", "/items/{id}", "command", on_item("", trashed=True)),
        ("GET", "/items/{id}/events", "query", on_item("/events")),
        ("POST", "/items/{id}/rename", "command", on_item("/rename", {"name": "renamed"})),
        ("POST", "/items/{id}/move", "command", moved),
        ("POST", "/items/{id}/trash", "command", on_item("/trash", {})),
        ("POST", "/items/{id}/restore", "command", on_item("/restore", {}, trashed=True)),
        ("POST", "/items/{id}/grants", "command", on_item("/grants", {"subject": "g2",
                                                                     "permission": "write"})),
        ("DELETE", "/items/{id}/grants/{subject}/{permission}", "command", revoked),
        ("GET", "/folders/{id}/children", "query", lambda s, o: (
            "/folders/%s/children" % folder_of(s, o), None, None)),
        ("GET", "/folders/{id}/tree", "query", lambda s, o: (
            "/folders/%s/tree" % folder_of(s, o), None, None)),
        ("GET", "/shared-with-me", "query", fixed("/shared-with-me")),
        ("GET", "/trash", "query", fixed("/trash")),
        ("POST", "/admin/items/{id}/rebuild", "admin", lambda s, o: (
            lambda i: ("/admin/items/%s/rebuild" % i, None, "/items/" + i))(item_of(s, o))),
        # the event bus
        ("POST", "/subscriptions", "admin", fixed("/subscriptions", {
            "url": "http://127.0.0.1:9/hook", "eventTypes": ["TokenRevoked"]})),
        ("GET", "/subscriptions", "admin", fixed("/subscriptions")),
        ("GET", "/subscriptions/{id}", "admin", with_sub("")),
        ("DELETE", "/subscriptions/{id}", "admin", with_sub("")),
        ("POST", "/subscriptions/{id}/pause", "admin", with_sub("/pause")),
        ("POST", "/subscriptions/{id}/resume", "admin", with_sub("/resume")),
        ("POST", "/subscriptions/{id}/replay", "admin", with_sub("/replay",
                                                                 {"fromPosition": "0"})),
        ("GET", "/admin/relays", "admin", fixed("/admin/relays")),
        ("GET", "/admin/dead-letters", "admin", fixed("/admin/dead-letters")),
        ("POST", "/admin/dead-letters/{id}/replay", "admin",
         fixed("/admin/dead-letters/1/replay")),
        # tokens
        ("POST", "/admin/tokens", "admin", fixed("/admin/tokens",
                                                 {"role": "reader", "subject": "m"})),
        ("GET", "/admin/tokens", "admin", fixed("/admin/tokens")),
        ("DELETE", "/admin/tokens/{tokenId}", "admin",
         lambda s, o: ("/admin/tokens/" + token_id(s, o), None, "/admin/tokens?limit=1000")),
    ]


# What an admin gets where it is not 2xx.
ADMIN_STATUS = {"/admin/dead-letters/{id}/replay": 404}
# A user acting on another subject's resource: 404 as if absent (ids do not
# leak), 403 where it names the other subject itself.
OTHER_STATUS = {("POST", "/wallets"): 403, ("GET", "/wallets"): 403,
                ("POST", "/orders"): 403, ("GET", "/orders"): 403,
                # what is shared with the caller and its trash: its own, of nobody else's
                ("GET", "/shared-with-me"): 200, ("GET", "/trash"): 200}
UNAUTHENTICATED = ["none", "malformed", "bad_secret", "expired", "revoked"]
CALLERS = UNAUTHENTICATED + ["user_own", "user_other", "reader", "admin"]


def expected(method, pattern, access, caller):
    if access == "open":
        return 200
    if caller in UNAUTHENTICATED:
        return 401
    success = ADMIN_STATUS.get(pattern, "2xx")
    if caller == "admin":
        return success
    if access == "admin":
        return 403
    if access == "observe":
        return 200 if caller == "reader" else 403
    if caller == "reader":
        return 200 if access == "query" else 403
    if caller == "user_own":
        return success
    return OTHER_STATUS.get((method, pattern), 404)


def snapshot(s, state_path):
    head = ok(s.request("GET", "/admin/projections"))["data"][0]["headPosition"]
    body = s.request("GET", state_path)[2] if state_path else b""
    return head, body


def callers(s):
    """Every kind of caller's token (None: no Authorization header)."""
    user = issue(s, "user", "u1")
    reader = issue(s, "reader", "r1")
    expiring = issue(s, "user", "u1", expires=rfc3339(1.5))
    expect(s.request("GET", "/wallets?ownerId=u1", token=expiring["token"])[0] == 200)
    revoked = issue(s, "user", "u1")
    expect(s.request("GET", "/wallets?ownerId=u1", token=revoked["token"])[0] == 200)
    ok(s.request("DELETE", "/admin/tokens/" + revoked["tokenId"]), 204)
    secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return {"none": None, "malformed": "wxt.not-a-token", "expired": expiring["token"],
            "bad_secret": "wxt.%s.%s" % (user["tokenId"], secret), "revoked": revoked["token"],
            "user_own": user["token"], "user_other": user["token"], "reader": reader["token"],
            "admin": s.token}


def call(s, caller, tokens, method, path, body):
    kw = {"token": tokens[caller]}
    if body is not None:
        return s.request(method, path, raw=json.dumps(body).encode(), **kw)
    return s.request(method, path, **kw)


def check_refusal(r, want, route):
    st, h, payload, b = r
    code = b.get("code") if isinstance(b, dict) else None
    if want == 401:
        expect(code == "unauthorized" and h.get("www-authenticate", "").startswith("Bearer"),
               (route, h, payload[:200]))
    elif want == 403:
        expect(code == "forbidden", (route, payload[:200]))
    elif want == 404:
        expect(code and code.endswith("_not_found"), (route, payload[:200]))


def test_matrix(s):
    tokens = callers(s)
    time.sleep(1.6)  # the expiring token has expired by now
    cases = route_cases()
    table = set()
    for src in [os.path.join(ROOT, "src", "ops", "ops.c")] + sorted(
            glob.glob(os.path.join(ROOT, "src", "*", "routes.c"))):
        with open(src) as f:
            table |= set(re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)", "(/[^"]*)",', f.read()))
    expect(table == {(m, p) for m, p, _, _ in cases},
           "routes without a case: %s; cases without a route: %s"
           % (table - {(m, p) for m, p, _, _ in cases}, {(m, p) for m, p, _, _ in cases} - table))
    checked = 0
    for method, pattern, access, build in cases:
        for caller in CALLERS:
            path, body, state_path = build(s, "u1" if caller == "user_own" else "u2")
            want = expected(method, pattern, access, caller)
            # The read side has what the fixture made (a rebuild of one
            # aggregate replays up to its checkpoint), and the state before.
            before = snapshot(s, state_path)
            r = call(s, caller, tokens, method, path, body)
            route = (method, pattern, caller, path)
            if want == "2xx":
                expect(200 <= r[0] < 300, (route, r[0], r[2][:300]))
                continue
            expect(r[0] == want, (route, r[0], want, r[2][:300]))
            if want >= 400:
                check_refusal(r, want, route)
                if not (caller == "admin" and want == 404):
                    expect(snapshot(s, state_path) == before, ("state changed", route))
            checked += 1
    expect(checked > 300, checked)


# ---------------------------------------------------------------- the rest, on this server

def test_query_visibility_details(s):
    """What a user sees of others: a transfer from its wallet shows the
    receiving side as null; lists default to its own."""
    user = issue(s, "user", "vu")
    mine = ok(post(s, "/wallets", {"walletId": uid("w"), "initialBalance": "5.00"},
                   token=user["token"]), 201)
    expect(mine["ownerId"] == "vu" and mine["createdBy"] == "vu", mine)
    theirs = wallet(s, "someone")
    t = ok(post(s, "/transfers", {"fromWalletId": mine["id"], "toWalletId": theirs,
                                  "amount": "1.00"}, token=user["token"]), 201)
    expect(t["to"] is None and t["from"]["id"] == mine["id"], t)
    seen = ok(s.request("GET", "/transfers/" + t["transferId"], token=user["token"]))
    expect(seen["to"] is None and seen["from"]["balance"] == 4, seen)
    full = ok(s.request("GET", "/transfers/" + t["transferId"]))
    expect(full["to"]["id"] == theirs, full)
    listed = ok(s.request("GET", "/wallets", token=user["token"]))
    expect([w["id"] for w in listed["data"]] == [mine["id"]], listed)
    o = ok(post(s, "/orders", {"items": []}, token=user["token"]), 201)
    expect(o["customerId"] == "vu", o)
    orders = ok(s.request("GET", "/orders", token=user["token"]))
    expect([x["orderId"] for x in orders["data"]] == [o["orderId"]], orders)
    # Time travel answers as the present does.
    expect_problem(s.request("GET", W % theirs + "?atVersion=1", token=user["token"]), 404,
                   "wallet_not_found")
    ok(s.request("GET", W % mine["id"] + "?atVersion=1", token=user["token"]))


def test_audit_fields_and_metadata(s):
    user = issue(s, "user", "au")
    w = ok(post(s, "/wallets", {"walletId": uid("w")}, token=user["token"]), 201)
    expect(w["createdBy"] == "au" and w["updatedBy"] == "au", w)
    ok(post(s, W % w["id"] + "/credit", {"amount": "3.00"}))  # by the admin
    now = ok(s.request("GET", W % w["id"]))
    expect(now["createdBy"] == "au" and now["updatedBy"] == "admin", now)
    events = ok(s.request("GET", W % w["id"] + "/events"))["data"]
    expect([e["metadata"]["actor"] for e in events] == ["au", "admin"], events)
    admin_id = s.token.split(".")[1]
    expect(events[0]["metadata"]["tokenId"] == user["tokenId"] and
           events[1]["metadata"]["tokenId"] == admin_id, events)
    # The read model, a time-travelled fold and a rebuild say the same.
    then = ok(s.request("GET", W % w["id"] + "?atVersion=2"))
    expect(then["createdBy"] == "au" and then["updatedBy"] == "admin", then)
    rebuilt = ok(s.request("POST", "/admin/wallets/%s/rebuild" % w["id"]))
    expect(rebuilt["updatedBy"] == "admin", rebuilt)
    o = ok(post(s, "/orders", {"items": []}, token=user["token"]), 201)
    ok(post(s, O % o["orderId"] + "/cancel", {}))
    o = ok(s.request("GET", O % o["orderId"]))
    expect(o["createdBy"] == "au" and o["updatedBy"] == "admin", o)
    drift = ok(s.request("GET", "/admin/drift"))
    expect(drift["drifted"] == [], drift)


def test_tokens_resource(s):
    body = issue(s, "reader", "tr", expires=rfc3339(3600))
    expect(set(body) == {"tokenId", "token", "role", "subject", "createdAt", "expiresAt"}, body)
    expect(body["token"].startswith("wxt.%s." % body["tokenId"]), body)
    page = ok(s.request("GET", "/admin/tokens?limit=1000"))
    row = [t for t in page["data"] if t["tokenId"] == body["tokenId"]][0]
    expect(set(row) == {"tokenId", "role", "subject", "createdAt", "expiresAt", "revoked"}, row)
    expect(not row["revoked"] and row["expiresAt"] == body["expiresAt"], row)
    text = json.dumps(page)
    expect("wxt." not in text and "secret" not in text.lower(), "a secret is listed")
    for bad in [{"role": "root", "subject": "x"}, {"role": "user"}, {"role": "user", "subject": "a b"},
                {"role": "user", "subject": "x", "expiresAt": "yesterday"},
                {"role": "user", "subject": "x", "expiresAt": rfc3339(-60)},
                {"role": "user", "subject": "x", "scope": "all"}]:
        expect_problem(post(s, "/admin/tokens", bad), 400, "invalid_request")
    expect_problem(s.request("DELETE", "/admin/tokens/%s" % uid("nope")), 404, "token_not_found")
    # Revoking twice is one revocation.
    ok(s.request("DELETE", "/admin/tokens/" + body["tokenId"]), 204)
    ok(s.request("DELETE", "/admin/tokens/" + body["tokenId"]), 204)
    # An Idempotency-Key replay says the token was made, never the token.
    key = {"Idempotency-Key": uid("k")}
    first = post(s, "/admin/tokens", {"role": "user", "subject": "ik"}, headers=key)
    again = post(s, "/admin/tokens", {"role": "user", "subject": "ik"}, headers=key)
    expect(first[0] == again[0] == 201 and again[1].get("idempotency-replayed") == "true")
    expect(first[3]["token"].startswith("wxt.") and again[3]["token"] is None, again[2])
    expect(first[3]["tokenId"] == again[3]["tokenId"])


def test_revocation_from_the_next_request(s):
    t = issue(s, "user", "rv")
    c = s.conn()  # one keep-alive connection: no new connection hides it
    try:
        for expect_status in (200, 401):
            c.request("GET", "/wallets", headers={"Authorization": "Bearer " + t["token"]})
            r = c.getresponse()
            r.read()
            expect(r.status == expect_status, r.status)
            if expect_status == 200:
                ok(s.request("DELETE", "/admin/tokens/" + t["tokenId"]), 204)
    finally:
        c.close()
    r = s.request("GET", "/wallets", token=t["token"])
    expect_problem(r, 401, "unauthorized")
    expect("revoked" in r[3]["detail"] and 'error="invalid_token"' in r[1]["www-authenticate"],
           r)


def test_idempotency_keys_are_the_callers(s):
    a, b = issue(s, "user", "ia"), issue(s, "user", "ib")
    key = {"Idempotency-Key": "same-key"}
    ra = post(s, "/orders", {"items": []}, token=a["token"], headers=key)
    rb = post(s, "/orders", {"items": []}, token=b["token"], headers=key)
    expect(ra[0] == rb[0] == 201 and "idempotency-replayed" not in rb[1], (ra[2], rb[2]))
    expect(ra[3]["customerId"] == "ia" and rb[3]["customerId"] == "ib")
    again = post(s, "/orders", {"items": []}, token=a["token"], headers=key)
    expect(again[1].get("idempotency-replayed") == "true" and again[2] == ra[2])


def test_refused_before_the_body(s):
    """A request without a valid token is answered at its head: its body
    is never waited for nor read, and the connection closes."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    try:
        t0 = time.time()
        c.sendall(b"POST /wallets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 60000\r\n\r\n{")
        got = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        expect(got.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in got, got[:300])
        expect(time.time() - t0 < 2, "waited for a body it refused")
    finally:
        c.close()
    # No 100 Continue for a caller without a token.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    try:
        c.sendall(b"POST /wallets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        expect(c.recv(4096).startswith(b"HTTP/1.1 401 "))
    finally:
        c.close()
    # A refusal carries the client's correlation id, like any answer.
    r = s.request("GET", "/wallets", headers={"X-Correlation-Id": "trace-me-401"}, token=None)
    expect(r[0] == 401 and r[1]["x-correlation-id"] == "trace-me-401", r[1])
    # The scheme's case does not matter; anything else than Bearer is 401.
    expect(s.request("GET", "/wallets", headers={"Authorization": "bearer " + s.token},
                     token=None)[0] == 200)
    r = s.request("GET", "/wallets", headers={"Authorization": "Basic YTpi"}, token=None)
    expect_problem(r, 401, "unauthorized")
    m = s.request("GET", "/metrics")[2].decode()
    expect(re.search(r'wallex_auth_refused_total\{reason="missing"\} [1-9]', m), "metrics")
    expect(re.search(r'wallex_http_requests_total\{[^}]*status="401"\} [1-9]', m), "metrics")


# ---------------------------------------------------------------- servers of their own

def proc_first_start_token_file():
    s = Server(BINARY).start()
    try:
        path = os.path.join(s.data_dir, "admin.token")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        expect(mode == 0o600, oct(mode))
        token = open(path).read()
        expect(re.fullmatch(r"wxt\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}\n", token), token)
        log = s.log()
        expect(path in log and "first start" in log, log[-2000:])
        expect(token.strip() not in log, "the token is in the log")
        secret = token.split(".")[2].strip().encode()
        for name in os.listdir(s.data_dir):
            if name != "admin.token":
                with open(os.path.join(s.data_dir, name), "rb") as f:
                    expect(secret not in f.read(), "the secret is in " + name)
        ev = subprocess.run([BINARY, "events", "--data-dir", s.data_dir], capture_output=True,
                            text=True, check=True).stdout.splitlines()
        first = json.loads(ev[0])
        expect(first["type"] == "TokenIssued" and first["data"]["role"] == "admin" and
               first["metadata"]["actor"] == "system:first-start", first)
        expect(s.stop() == 0)
        # A restart keeps the token and writes no other file.
        os.unlink(path)
        s.start()
        expect(not os.path.exists(path) and s.token is not None)
        expect(s.request("GET", "/admin/tokens")[0] == 200)
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_auth_off_only_on_loopback():
    for listen in ["0.0.0.0:0", "10.0.0.1:0", "[::]:0"]:
        r = subprocess.run([BINARY, "serve", "--auth", "off", "--listen", listen, "--data-dir",
                            "/nonexistent-wallex"], capture_output=True, text=True, timeout=10)
        expect(r.returncode == 2 and "--auth off is refused" in r.stderr and listen in r.stderr,
               (listen, r.returncode, r.stderr))
    r = subprocess.run([BINARY, "serve", "--auth", "maybe"], capture_output=True, text=True)
    expect(r.returncode == 2 and "--auth must be on or off" in r.stderr, r.stderr)
    s = Server(BINARY, auth=False).start()
    try:
        expect("authentication is OFF" in s.log(), s.log()[-1000:])
        expect(not os.path.exists(os.path.join(s.data_dir, "admin.token")))
        expect(s.count_events() == 0, "no token without authentication")
        # Without tokens there is no subject to default to.
        expect_problem(post(s, "/wallets", {"walletId": "w"}), 400, "invalid_request")
        expect_problem(post(s, "/orders", {"items": []}), 400, "invalid_request")
        expect_problem(s.request("GET", "/wallets"), 400, "invalid_request")
        w = ok(post(s, "/wallets", {"walletId": "w", "ownerId": "o"}), 201)
        expect(w["createdBy"] is None and w["updatedBy"] is None, w)
        ok(s.request("GET", "/admin/projections"))
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def token_cli(*args, env=None):
    return subprocess.run([BINARY, "token", "create"] + list(args), capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, **(env or {})))


def proc_token_create_both_ways():
    s = Server(BINARY).start()
    try:
        url = "http://127.0.0.1:%d" % s.port
        r = token_cli("--role", "user", "--subject", "cli-u", "--url", url,
                      env={"WALLEX_TOKEN": s.token})
        expect(r.returncode == 0 and re.fullmatch(r"wxt\.\S+\n", r.stdout), (r.stdout, r.stderr))
        user = r.stdout.strip()
        expect(ok(post(s, "/wallets", {"walletId": uid("w")}, token=user), 201)["ownerId"] ==
               "cli-u")
        r = token_cli("--role", "user", "--subject", "x", "--url", url,
                      env={"WALLEX_TOKEN": user})
        expect(r.returncode == 1 and "403" in r.stderr, r.stderr)
        r = token_cli("--role", "user", "--subject", "x", "--url", url, env={"WALLEX_TOKEN": ""})
        expect(r.returncode == 1 and "WALLEX_TOKEN" in r.stderr, r.stderr)
        # The data directory is the running server's: refused, clearly.
        r = token_cli("--role", "reader", "--subject", "off", "--data-dir", s.data_dir)
        expect(r.returncode == 1 and "in use" in r.stderr and "--url" in r.stderr, r.stderr)
        for bad in [["--role", "root", "--subject", "x"], ["--role", "user"],
                    ["--role", "user", "--subject", "x", "--expires", "2001-01-01T00:00:00Z"]]:
            r = token_cli(*bad, "--data-dir", s.data_dir)
            expect(r.returncode == 2, (bad, r.stderr))
        expect(s.stop() == 0)
        # Stopped: straight into its log; the server knows it when it starts.
        r = token_cli("--role", "reader", "--subject", "offline", "--data-dir", s.data_dir,
                      "--expires", rfc3339(3600))
        expect(r.returncode == 0 and r.stdout.startswith("wxt."), r.stderr)
        reader = r.stdout.strip()
        s.start()
        expect(s.request("GET", "/metrics", token=reader)[0] == 200)
        expect_problem(post(s, "/wallets", {"walletId": "x"}, token=reader), 403, "forbidden")
        ev = s.request("GET", "/admin/tokens?limit=1000")[3]["data"]
        expect(any(t["subject"] == "offline" and t["role"] == "reader" and t["expiresAt"]
                   for t in ev), ev)
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_rate_limit():
    s = Server(BINARY, extra_args=["--rate-limit-user", "5,5"]).start()
    try:
        user = issue(s, "user", "rl")
        c = s.conn()
        statuses, retry = [], None
        try:
            for _ in range(12):
                c.request("GET", "/wallets", headers={"Authorization": "Bearer " + user["token"]})
                r = c.getresponse()
                body = r.read()
                statuses.append(r.status)
                if r.status == 429:
                    retry = r.getheader("Retry-After")
                    expect(json.loads(body)["code"] == "rate_limited", body)
        finally:
            c.close()
        expect(statuses[:5] == [200] * 5 and 429 in statuses, statuses)
        expect(retry is not None and int(retry) >= 1, retry)
        # Others are not held up: admins and readers are never limited.
        for _ in range(20):
            expect(s.request("GET", "/wallets")[0] == 200)
        time.sleep(1.1)  # five more a second
        expect(s.request("GET", "/wallets", token=user["token"])[0] == 200)
        m = s.request("GET", "/metrics")[2].decode()
        expect(re.search(r'wallex_auth_refused_total\{reason="rate_limited"\} [1-9]', m), m[-500:])
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    runner = Runner()
    s = Server(BINARY).start()
    try:
        runner.run([v for k, v in sorted(globals().items())
                    if k.startswith("test_") and callable(v)], s)
        rc = s.stop()
        runner.run([lambda: expect(rc == 0, "SIGTERM exit code %r" % rc)])
    finally:
        s.cleanup()
    runner.run([proc_first_start_token_file, proc_auth_off_only_on_loopback,
                proc_token_create_both_ways, proc_rate_limit])
    runner.finish()


if __name__ == "__main__":
    main()
