#!/usr/bin/env python3
"""Hostile and odd clients against the real binary (issue 18), one test per
numbered item: a request waiting for the read side blocks no HTTP thread,
slow readers and slow senders are bounded and timed out, encoded path
separators stay inside their segment, chunked trailers are fields, bare-LF
requests are answered at once, a FIN that comes with the request is seen,
protocol corners (HEAD, absolute-form, 501, 414, 431, body_not_allowed,
415), strict UTF-8 and nulls in bodies, and SIGTERM under keep-alive load.
Timeouts are shortened by flags so nothing here waits 30 s.
Usage: test_hostile.py path/to/wallex"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, expect, expect_problem, run_suite  # noqa: E402

BINARY = None
_n = [0]


def uid(p="h"):
    _n[0] += 1
    return "%s-%d-%d" % (p, os.getpid(), _n[0])


def post(s, path, body, headers=None):
    return s.request("POST", path, raw=json.dumps(body).encode(), headers=headers)


def create(s, initial="10.00"):
    wid = uid()
    r = post(s, "/wallets", {"walletId": wid, "ownerId": "o", "initialBalance": initial})
    expect(r[0] == 201, r[2])
    return wid


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def head_position(s):
    st, h, _, _ = post(s, "/wallets/%s/credit" % create(s), {"amount": 1})
    expect(st == 200, st)
    return int(h["x-position"])


# ---------------------------------------------------------------- item 1

def test_min_position_waiters_block_no_thread(s):
    # Four requests wait for a position the log will not reach: more than
    # there are HTTP threads. Everyone else is still served at once, and
    # each waiter gets 503 projection_lagging when its wait ends.
    far = str(head_position(s) + 10 ** 9)
    wid = create(s)
    results = []

    def waiter():
        t0 = time.monotonic()
        r = s.request("GET", "/wallets/" + wid, headers={"X-Min-Position": far})
        results.append((r, time.monotonic() - t0))

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    worst = 0.0
    for _ in range(10):
        (st, _, _, _), dt = timed(lambda: s.request("GET", "/healthz"))
        expect(st == 200, st)
        worst = max(worst, dt)
        (st, _, _, _), dt = timed(lambda: post(s, "/wallets/%s/credit" % wid, {"amount": 1}))
        expect(st == 200, st)
        worst = max(worst, dt)
    expect(worst < 0.5, "a request waited %.2fs behind the X-Min-Position waiters" % worst)
    for t in threads:
        t.join()
    for r, dt in results:
        expect_problem(r, 503, "projection_lagging")
        expect(r[1].get("retry-after") == "1", r[1])
        expect(1.0 < dt < 5.0, dt)  # the server's wait is 1.5 s here


def test_min_position_waiter_resumes_when_reached(s):
    # A waiter is answered as soon as the read side passes its position,
    # not when its wait expires.
    wid = create(s)
    nxt = str(head_position(s) + 1)
    out = []
    t = threading.Thread(target=lambda: out.append(timed(lambda: s.request(
        "GET", "/wallets/" + wid, headers={"X-Min-Position": nxt}))))
    t.start()
    time.sleep(0.3)
    expect(post(s, "/wallets/%s/credit" % wid, {"amount": 2})[0] == 200)
    t.join()
    (st, _, _, body), dt = out[0]
    expect(st == 200 and body["version"] == 3, (st, body))
    expect(dt < 1.2, "answered after %.2fs, not when the position was reached" % dt)


def test_min_position_waiter_that_hangs_up(s):
    # A waiter that closes its connection is forgotten: later requests and
    # the position being reached find nothing to wake.
    far = str(head_position(s) + 10 ** 9)
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(b"GET /wallets/x HTTP/1.1\r\nHost: x\r\nX-Min-Position: %s\r\n\r\n"
                  % far.encode())
        c.close()
    time.sleep(0.2)
    expect(s.request("GET", "/healthz")[0] == 200)
    expect_problem(s.request("GET", "/wallets/x", headers={"X-Min-Position": "abc"}), 400,
                   "invalid_request")


# ---------------------------------------------------------------- item 6

def test_encoded_slashes_are_not_separators(s):
    wid = create(s)
    before = s.count_events()
    for method, path in [("GET", "/admin%2Fprojections"), ("GET", "/%61dmin/projections"),
                         ("GET", "/admin/projections%2F"), ("GET", "/wallets%2F" + wid),
                         ("GET", "/%77allets/" + wid), ("POST", "/admin%2fdrift")]:
        expect_problem(s.request(method, path), 404, "not_found")
    # Inside a parameter an encoded slash is a character of the id, which
    # the id rules refuse: never the debit route.
    r = s.request("POST", "/wallets/%s%%2Fdebit" % wid, raw=b'{"amount":1}')
    expect(r[0] in (400, 405), r[:3])
    expect_problem(s.request("GET", "/wallets/%s%%2Fevents" % wid), 400, "invalid_request")
    expect_problem(s.request("POST", "/wallets/%s%%2Fx/credit" % wid, raw=b'{"amount":1}'), 400,
                   "invalid_request")
    expect(s.count_events() == before, "an encoded path changed the log")
    # Escapes inside an id still decode to the id.
    escaped = "".join("%%%02X" % ord(ch) for ch in wid)
    st, _, _, body = s.request("GET", "/wallets/" + escaped)
    expect(st == 200 and body["id"] == wid, body)


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    run_suite(BINARY, globals(), [], extra_args=["--min-position-wait-ms", "1500"])


if __name__ == "__main__":
    main()
