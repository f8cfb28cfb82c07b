#!/usr/bin/env python3
"""Faults injected into a real server (WALLEX_FAULT_DIR, see src/base/fault.h)
and hostile connections: failed commits, lost acknowledgements, slow fsync,
half-sent requests, the connection limit and the idle timeout. After each:
the documented error, nothing half-applied, and the next commands work.
Usage: test_faults.py path/to/wallex"""
import concurrent.futures
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, expect, expect_problem, run_suite  # noqa: E402

BINARY = None
FAULTS = tempfile.mkdtemp(prefix="wallex-faults-")
_n = [0]


def uid(p="w"):
    _n[0] += 1
    return "%s-%d-%d" % (p, os.getpid(), _n[0])


def fault(name, value=None):
    path = os.path.join(FAULTS, name)
    if value is False:
        if os.path.exists(path):
            os.unlink(path)
        return
    with open(path, "w") as f:
        f.write("" if value is None else str(value))


def post(s, path, body, headers=None):
    return s.request("POST", path, raw=json.dumps(body).encode(), headers=headers)


def create(s, initial="10.00"):
    wid = uid()
    r = post(s, "/wallets", {"walletId": wid, "ownerId": "o", "initialBalance": initial})
    expect(r[0] == 201, r[2])
    return wid


def wallet(s, wid):
    return s.request("GET", "/wallets/" + wid)[3]


def test_failed_commit_applies_nothing(s):
    wid = create(s)
    fault("store-commit-fail")
    try:
        key = {"Idempotency-Key": uid("k")}
        r = post(s, "/wallets/%s/credit" % wid, {"amount": "5"}, key)
        expect_problem(r, 503, "store_unavailable")
        expect(r[1].get("retry-after") == "1")
        r = post(s, "/transfers", {"fromWalletId": wid, "toWalletId": wid + "x", "amount": 1})
        expect(r[0] in (404, 503), r[2])  # 404 decided without writing, or 503
        expect(s.request("GET", "/readyz")[0] == 200)  # queries and the read side go on
    finally:
        fault("store-commit-fail", False)
    w = wallet(s, wid)
    expect(w["version"] == 2 and w["balance"] == Decimal("10.00"), w)
    # The cache kept no trace of the failed batch: expectedVersion 2 is right,
    # and the key is free for the retry, which applies once.
    r = post(s, "/wallets/%s/credit" % wid, {"amount": "5", "expectedVersion": 2})
    expect(r[0] == 200 and r[3]["version"] == 3, r[2])
    r = post(s, "/wallets/%s/credit" % wid, {"amount": "5"}, key)
    expect(r[0] == 200 and "idempotency-replayed" not in r[1] and r[3]["version"] == 4, r[2])
    r2 = post(s, "/wallets/%s/credit" % wid, {"amount": "5"}, key)
    expect(r2[1].get("idempotency-replayed") == "true" and r2[2] == r[2])
    expect(wallet(s, wid)["balance"] == Decimal("20.00"))


def test_lost_acknowledgement_retry_gets_original(s):
    wid = create(s)
    key = {"Idempotency-Key": uid("k")}
    fault("ack-drop")
    try:
        try:
            r = post(s, "/wallets/%s/debit" % wid, {"amount": "3"}, key)
            raise AssertionError("expected the answer to be lost, got %r" % (r[0],))
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
            pass
    finally:
        fault("ack-drop", False)
    # The client does not know whether it happened; it retries with its key.
    r = post(s, "/wallets/%s/debit" % wid, {"amount": "3"}, key)
    expect(r[0] == 200 and r[1].get("idempotency-replayed") == "true", r)
    expect(r[3]["balance"] == Decimal("7.00") and r[3]["version"] == 3, r[2])
    expect(wallet(s, wid)["balance"] == Decimal("7.00"))


def test_stats_lag_as_time(s):
    """A read model that cannot apply: /admin/stats shows how old the oldest
    event it has not applied is, growing, and 0 once it caught up."""
    fault("projection-ledger")
    try:
        create(s)
        time.sleep(0.4)
        ledger = [p for p in s.request("GET", "/admin/stats")[3]["projections"]
                  if p["name"] == "ledger"][0]
        expect(ledger["status"] == "failed" and ledger["lagMs"] >= 350, ledger)
        # Positions across PostgreSQL transactions count no events (an estimate).
        expect(ledger["lag"] >= 1 or harness.PG_URL, ledger)
    finally:
        fault("projection-ledger", False)
    deadline = time.time() + 15
    while time.time() < deadline:
        ledger = [p for p in s.request("GET", "/admin/stats")[3]["projections"]
                  if p["name"] == "ledger"][0]
        if ledger["lagMs"] == 0 and ledger["status"] == "running":
            break
        time.sleep(0.05)
    expect(ledger["lagMs"] == 0 and ledger["lag"] == 0 and ledger["status"] == "running", ledger)


def test_slow_fsync(s):
    wids = [create(s) for _ in range(8)]
    fault("store-commit-delay-ms", 300)
    try:
        def credit(w):
            t0 = time.time()
            r = post(s, "/wallets/%s/credit" % w, {"amount": "1"})
            return r[0], time.time() - t0

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(credit, w) for w in wids]
            time.sleep(0.05)
            # Queries do not wait for the writer.
            q0 = time.time()
            expect(s.request("GET", "/healthz", headers={})[0] == 200)
            st = s.request("GET", "/wallets/" + wids[0], headers={"X-Min-Position": "1"})[0]
            expect(st == 200 and time.time() - q0 < 0.25, time.time() - q0)
            results = [f.result() for f in futs]
        elapsed = time.time() - t0
    finally:
        fault("store-commit-delay-ms", False)
    expect(all(st == 200 and took >= 0.29 for st, took in results), results)
    # Group commit: eight commands did not take eight slow commits.
    expect(elapsed < 8 * 0.3, elapsed)
    for w in wids:
        expect(wallet(s, w)["balance"] == Decimal("11.00"))


def test_half_sent_request_blocks_nobody(s):
    socks = []
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"POST /wallets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"walletId\":")
        socks.append(c)
    try:
        t0 = time.time()
        wid = create(s)
        expect(wallet(s, wid)["version"] == 2 and time.time() - t0 < 1.0, time.time() - t0)
    finally:
        for c in socks:
            c.close()


def proc_connection_limit_and_timeout():
    s = Server(BINARY, extra_args=["--connections-max", "8", "--connection-timeout-s", "3"]).start()
    try:
        held = []
        for _ in range(8):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)
            held.append(c)  # keep-alive: each holds a slot
        # The ninth is turned away cleanly: 503 overloaded, then closed.
        t0 = time.time()
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = extra.recv(4096)
            if not chunk:
                break
            data += chunk
        extra.close()
        expect(data.startswith(b"HTTP/1.1 503") and b'"code":"overloaded"' in data, data[:300])
        expect(b"Retry-After: 1" in data and time.time() - t0 < 2, data[:300])
        # Idle connections time out, and service comes back by itself.
        time.sleep(4.5)
        for c in held:
            c.settimeout(2)
            try:
                expect(c.recv(1) == b"", "idle connection still open")
            except ConnectionResetError:
                pass
            c.close()
        expect(s.request("GET", "/healthz")[0] == 200)
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    os.environ["WALLEX_FAULT_DIR"] = FAULTS
    try:
        run_suite(BINARY, globals(), [proc_connection_limit_and_timeout])
    finally:  # run_suite exits; the fault files go with it
        shutil.rmtree(FAULTS, ignore_errors=True)


if __name__ == "__main__":
    main()
