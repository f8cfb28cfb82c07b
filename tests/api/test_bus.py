#!/usr/bin/env python3
"""The event bus against a real redis-server (Debian's, started here on a
free loopback port) and a webhook receiver written here, which checks
every signature with Python's hmac.

Relay: order, completeness and no duplicates across kill -9 of wallex and
restarts of Redis (with and without its data), commands unaffected while
Redis is down or stalled, lag bounded under load, the reference consumer
of docs/operations.md. Webhooks: retries on the schedule then one success,
dead letters and their replay, pause/resume/delete, replay from a
position, disabling, a slow receiver beside a fast one, kill -9 during
delivery (at least once, deduplicated by webhook-id).
Usage: test_bus.py path/to/wallex"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Runner, Server, expect, expect_problem  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = None
SCHEDULE = "50ms,100ms,200ms"  # 1 + 3 attempts before the dead-letter queue


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# ---- Redis: the server and a minimal RESP client ----

class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError("bad reply %r" % line)


class RedisServer:
    """redis-server on a free loopback port; with `persist`, an append-only
    file fsync'd on every write, so a kill -9 loses nothing it acknowledged."""

    def __init__(self, persist=True):
        self.dir = tempfile.mkdtemp(prefix="wallex-redis-")
        self.port = free_port()
        self.persist = persist
        self.proc = None

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--enable-debug-command", "local", "--daemonize", "no"]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else \
                ["--appendonly", "no"]
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        wait_for(self._answers, 10, "redis-server to start")
        return self

    def _answers(self):
        try:
            c = Redis(self.port)
            ok = c.cmd("PING") == "PONG"
            c.close()
            return ok
        except (OSError, RedisError):
            return False

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def wipe(self):
        """Forget everything, as a Redis that lost its data."""
        self.kill()
        for name in os.listdir(self.dir):
            if name != "redis.log":
                p = os.path.join(self.dir, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def entries(self, stream="wallex:events"):
        c = Redis(self.port)
        try:
            out = []
            last = "-"
            while True:
                page = c.cmd("XRANGE", stream, last, "+", "COUNT", 1000)
                if last != "-":
                    page = page[1:]
                if not page:
                    return out
                for eid, fields in page:
                    f = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
                    out.append((eid.decode(), f))
                last = page[-1][0].decode()
        finally:
            c.close()


# ---- wallex ----

def post(s, path, body=None):
    return s.request("POST", path, body=body) if body is not None else s.request("POST", path)


def log_events(s):
    out = subprocess.run([BINARY, "events", "--data-dir", s.data_dir], capture_output=True,
                         check=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def relay(s):
    data = s.request("GET", "/admin/relays")[3]["data"]
    expect(len(data) == 1, data)
    return data[0]


def wallet(s, wid, initial=100):
    r = post(s, "/wallets", {"walletId": wid, "ownerId": "o", "initialBalance": initial})
    expect(r[0] == 201, r[2])


def credits(s, wid, n, threads=8):
    def one(_):
        return post(s, "/wallets/%s/credit" % wid, {"amount": "0.01"})[0]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        codes = list(ex.map(one, range(n)))
    expect(all(c == 200 for c in codes), set(codes))


def expect_mirror(s, redis):
    """The stream holds every event of the log exactly once, in log order,
    with the API's fields; a subscription's secret never leaves."""
    wait_for(lambda: relay(s)["lag"] == 0, 20, "the relay to catch up")
    events = log_events(s)
    entries = redis.entries()
    ids = [e[0] for e in entries]
    expect(len(ids) == len(set(ids)), "duplicate entries")
    expect(ids == ["0-%s" % e["position"] for e in events],
           "stream %s... vs log %s..." % (ids[:5], [e["position"] for e in events][:5]))
    for (eid, f), e in zip(entries, events):
        expect(f["eventId"] == e["eventId"] and f["type"] == e["type"] and
               f["streamId"] == e["streamId"] and f["position"] == e["position"] and
               int(f["version"]) == e["version"], (f, e))
        expect("whsec_" not in f["data"], "a secret went to Redis")
        if "whsec_" not in json.dumps(e["data"]):
            expect(json.loads(f["data"]) == e["data"], (f["data"], e["data"]))
        expect(json.loads(f["metadata"]) == e["metadata"])
    return len(events)


# ---- relay ----

def proc_relay_mirror_and_failures():
    """Order and completeness; commands unaffected while Redis is down or
    stalled; catch-up; /readyz only with --redis-required."""
    redis = RedisServer().start()
    s = Server(BINARY, extra_args=["--redis", redis.url]).start()
    try:
        wallet(s, "r1")
        credits(s, "r1", 200)
        expect(relay(s)["status"] in ("running", "connecting"))
        n = expect_mirror(s, redis)
        expect(n == 203, n)  # the first start's TokenIssued, a wallet, 1 + 200 credits
        # A stalled Redis (DEBUG SLEEP) and then a dead one: commands go on.
        stall = threading.Thread(target=lambda: Redis(redis.port).cmd("DEBUG", "SLEEP", "2"))
        stall.start()
        time.sleep(0.1)
        t0 = time.time()
        credits(s, "r1", 50, threads=1)
        expect(time.time() - t0 < 1.5, "commands slowed by a stalled Redis: %.2fs" % (time.time() - t0))
        stall.join()
        redis.kill()
        latencies = []
        for _ in range(100):
            t = time.time()
            expect(post(s, "/wallets/r1/credit", {"amount": "0.01"})[0] == 200)
            latencies.append(time.time() - t)
        latencies.sort()
        expect(latencies[98] < 0.1, "p99 %.3fs with Redis down" % latencies[98])
        r = wait_for(lambda: (lambda x: x if x["status"] == "failing" else None)(relay(s)), 10,
                     "the relay to report the failure")
        expect(r["lastError"] and r["lag"] > 0, r)
        expect(s.request("GET", "/readyz")[0] == 200, "readyz without --redis-required")
        m = s.request("GET", "/metrics")[2].decode()
        expect(re.search(r'wallex_relay_up\{stream="wallex:events"\} 0', m), "relay metric")
        redis.start()
        n = expect_mirror(s, redis)
        expect(n == 353, n)
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        redis.cleanup()


def proc_relay_kill9_and_redis_restarts():
    """kill -9 of wallex while a backlog is relayed, kill -9 of Redis under
    load, and a Redis that lost its data: afterwards the stream holds every
    event exactly once, in order."""
    redis = RedisServer().start()
    d = tempfile.mkdtemp(prefix="wallex-bus-")
    s = Server(BINARY, data_dir=d, extra_args=["--redis", redis.url]).start()
    try:
        wallet(s, "k1")
        redis.kill()
        credits(s, "k1", 3000, threads=16)  # a backlog of three relay batches
        redis.start()
        # Kill wallex while the relay works through the backlog.
        wait_for(lambda: relay(s)["published"] > 0 or relay(s)["position"] != "0", 10, "relaying")
        s.stop(signal.SIGKILL)
        s.start()
        skipped_before = relay(s)["skipped"]
        expect_mirror(s, redis)
        # Redis killed under load, restarted from its append-only file.
        stop = threading.Event()
        def load():
            while not stop.is_set():
                try:
                    post(s, "/wallets/k1/credit", {"amount": "0.01"})
                except OSError:
                    time.sleep(0.05)  # the server was killed; its restart follows
        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.3)
        redis.kill()
        time.sleep(0.3)
        redis.start()
        time.sleep(0.3)
        # And once more, wallex killed while Redis is down.
        redis.kill()
        s.stop(signal.SIGKILL)
        stop.set()
        t.join()
        redis.start()
        s.start()
        expect_mirror(s, redis)
        # A Redis that lost everything gets the whole log again.
        redis.wipe()
        redis.start()
        credits(s, "k1", 10, threads=2)
        n = expect_mirror(s, redis)
        expect(n > 3000, n)
        expect(relay(s)["skipped"] >= skipped_before)
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        redis.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def proc_relay_lag_bounded_and_required():
    """Under load the relay stays close behind; --redis-required makes
    /readyz follow Redis; {category} splits the streams."""
    redis = RedisServer(persist=False).start()
    s = Server(BINARY, extra_args=["--redis", redis.url, "--redis-required",
                                   "--redis-stream", "wx:{category}"]).start()
    try:
        wallet(s, "l1")
        wallet(s, "l2")
        stop = threading.Event()
        lags = []
        def sample():
            while not stop.is_set():
                lags.append(relay(s)["lag"])
                time.sleep(0.02)
        t = threading.Thread(target=sample)
        t.start()
        def transfer(i):
            return post(s, "/transfers", {"fromWalletId": "l1", "toWalletId": "l2",
                                          "amount": "0.01"})[0]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(transfer, range(2000)))
        stop.set()
        t.join()
        expect(all(c == 201 for c in codes))
        expect(max(lags) < 3000, "lag reached %d events" % max(lags))
        wait_for(lambda: relay(s)["lag"] == 0, 5, "the relay to catch up")
        events = log_events(s)
        by_stream = {}
        for e in events:
            by_stream.setdefault("wx:" + e["streamId"].split(":")[0], []).append("0-" + e["position"])
        for name, ids in by_stream.items():
            expect([x[0] for x in redis.entries(name)] == ids, name)
        expect(s.request("GET", "/readyz")[0] == 200)
        redis.kill()
        wait_for(lambda: s.request("GET", "/readyz")[0] == 503, 10, "readyz to fail")
        expect_problem(s.request("GET", "/readyz"), 503, "store_unavailable")
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        redis.cleanup()


def docs_consumer():
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        text = f.read()
    m = re.search(r"<!-- reference-consumer -->\s*```python\n(.*?)```", text, re.S)
    expect(m, "no reference consumer in docs/operations.md")
    return m.group(1)


def proc_reference_consumer():
    """The consumer of docs/operations.md, run as written (Debian's python3
    with python3-redis): one consumer dies holding messages, another claims
    them with XAUTOCLAIM; every event is processed and acknowledged."""
    py = "/usr/bin/python3"
    check = subprocess.run([py, "-c", "import redis"], capture_output=True)
    expect(check.returncode == 0, "python3-redis is missing: run scripts/install-deps")
    redis = RedisServer(persist=False).start()
    s = Server(BINARY, extra_args=["--redis", redis.url]).start()
    d = tempfile.mkdtemp(prefix="wallex-consumer-")
    try:
        wallet(s, "c1")
        credits(s, "c1", 40, threads=4)
        wait_for(lambda: relay(s)["lag"] == 0, 10, "the relay")
        path = os.path.join(d, "consumer.py")
        with open(path, "w") as f:
            f.write(docs_consumer())
        env = dict(os.environ, REDIS_URL=redis.url, CONSUMER_EXIT_IDLE_S="1")
        # "a" takes messages and dies before acknowledging them.
        a = subprocess.run([py, path, "a"], env=dict(env, CONSUMER_CRASH_AFTER="5"),
                           capture_output=True, text=True, timeout=60)
        expect(a.returncode != 0, a.stdout + a.stderr)
        time.sleep(0.3)
        b = subprocess.run([py, path, "b"], env=dict(env, CONSUMER_CLAIM_IDLE_MS="200"),
                           capture_output=True, text=True, timeout=60)
        expect(b.returncode == 0, b.stdout + b.stderr)
        done = [json.loads(line)["eventId"] for line in (a.stdout + b.stdout).splitlines()
                if line.startswith("{")]
        events = [e["eventId"] for e in log_events(s)]
        expect(sorted(set(done)) == sorted(events), (len(done), len(events)))
        c = Redis(redis.port)
        pending = c.cmd("XPENDING", "wallex:events", "wallex-example")
        c.close()
        expect(pending[0] == 0, pending)
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        redis.cleanup()
        shutil.rmtree(d, ignore_errors=True)


# ---- webhooks ----

class Receiver:
    """Records every request per path and checks its signature. A path's
    behaviour: "fail:N" fails the first N, "fail" always, "slow:S" sleeps
    S seconds, anything else answers 204."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = {}      # path -> [(time, webhook-id, body, status)]
        self.behaviour = {}
        self.secrets = {}
        self.bad_signatures = []
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recv.handle(self, body)

            def log_message(self, *a):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a sender killed mid-request (kill -9 tests) is expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def verify(self, path, h, body):
        secret = self.secrets.get(path)
        if secret is None:
            return True
        key = base64.b64decode(secret[len("whsec_"):])
        signed = h["webhook-id"].encode() + b"." + h["webhook-timestamp"].encode() + b"." + body
        want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        ts_ok = abs(time.time() - int(h["webhook-timestamp"])) < 300
        return ts_ok and any(hmac.compare_digest(want, s) for s in h["webhook-signature"].split())

    def handle(self, req, body):
        path = req.path
        with self.lock:
            calls = self.got.setdefault(path, [])
            mode = self.behaviour.get(path, "")
            n = len(calls)
            if not self.verify(path, req.headers, body):
                self.bad_signatures.append((path, dict(req.headers)))
            status = 204
            if mode == "fail" or (mode.startswith("fail:") and n < int(mode[5:])):
                status = 500
            calls.append((time.time(), req.headers["webhook-id"], json.loads(body), status))
        if mode.startswith("slow:"):
            time.sleep(float(mode[5:]))
        req.send_response(status)
        req.send_header("Content-Length", "0")
        req.end_headers()

    def calls(self, path):
        with self.lock:
            return list(self.got.get(path, []))

    def successes(self, path):
        return [c for c in self.calls(path) if c[3] < 300]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def subscribe(s, recv, path, types=("WalletCredited",), behaviour=None):
    if behaviour:
        recv.behaviour[path] = behaviour
    r = post(s, "/subscriptions", {"url": recv.url(path), "eventTypes": list(types),
                                   "description": path})
    expect(r[0] == 201 and r[3]["secret"].startswith("whsec_") and r[3]["status"] == "active", r[2])
    expect(r[1]["location"] == "/subscriptions/" + r[3]["subscriptionId"])
    recv.secrets[path] = r[3]["secret"]
    return r[3]["subscriptionId"]


def credit_ids(s, wid, n):
    """n credits; the event ids of WalletCredited, in log order."""
    for _ in range(n):
        expect(post(s, "/wallets/%s/credit" % wid, {"amount": "1"})[0] == 200)
    return [e["eventId"] for e in log_events(s)
            if e["type"] == "WalletCredited" and e["streamId"] == "wallet:" + wid][-n:]


def test_subscription_resource_and_errors(s, recv):
    sid = subscribe(s, recv, "/res")
    st, _, _, body = s.request("GET", "/subscriptions/" + sid)
    expect(st == 200 and "secret" not in body and body["eventTypes"] == ["WalletCredited"], body)
    expect(body["description"] == "/res" and body["version"] == 1, body)
    listed = s.request("GET", "/subscriptions?limit=1000")[3]["data"]
    expect(any(x["subscriptionId"] == sid for x in listed))
    expect(all("secret" not in x for x in listed))
    expect_problem(s.request("GET", "/subscriptions/nope"), 404, "subscription_not_found")
    expect_problem(post(s, "/subscriptions/nope/pause"), 404, "subscription_not_found")
    expect_problem(s.request("DELETE", "/subscriptions/nope"), 404, "subscription_not_found")
    expect_problem(post(s, "/subscriptions", {"url": "ftp://x/", "eventTypes": ["*"]}), 400,
                   "invalid_request")
    expect_problem(post(s, "/subscriptions", {"url": recv.url("/x"), "eventTypes": ["Nope"]}), 400,
                   "invalid_request")
    expect_problem(post(s, "/admin/dead-letters/999999/replay"), 404, "dead_letter_not_found")
    expect_problem(post(s, "/subscriptions/%s/replay" % sid, {"fromPosition": "x"}), 400,
                   "invalid_request")
    # The log holds the secret (the only source of truth); no API answer does.
    created = [e for e in log_events(s) if e["streamId"] == "subscription:" + sid]
    expect(created[0]["data"]["secret"] == recv.secrets["/res"])
    ev = s.request("GET", "/admin/relays")[3]
    expect(ev == {"data": []}, ev)


def test_retries_then_one_success(s, recv):
    wallet(s, "h1")
    subscribe(s, recv, "/flaky", behaviour="fail:2")
    [eid] = credit_ids(s, "h1", 1)
    wait_for(lambda: recv.successes("/flaky"), 10, "a success")
    time.sleep(0.3)  # nothing more may come
    calls = recv.calls("/flaky")
    expect([c[3] for c in calls] == [500, 500, 204], [c[3] for c in calls])
    expect(all(c[1] == eid and c[2]["eventId"] == eid for c in calls))
    gaps = [calls[i + 1][0] - calls[i][0] for i in range(2)]
    expect(gaps[0] >= 0.045 and gaps[1] >= 0.095, "attempts off the schedule: %r" % gaps)
    expect(calls[0][2]["type"] == "WalletCredited" and calls[0][2]["data"]["amountMinor"] == 100)
    expect(not recv.bad_signatures, recv.bad_signatures)


def all_dead_letters(s):
    return len(s.request("GET", "/admin/dead-letters?limit=1000")[3]["data"])


def stats_dead_letters(s):
    return s.request("GET", "/admin/stats")[3]["webhooks"]["deadLetters"]


def test_dead_letter_then_replay(s, recv):
    wallet(s, "h2")
    sid = subscribe(s, recv, "/down", behaviour="fail")
    first, second = credit_ids(s, "h2", 2)
    page = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(s.request(
        "GET", "/admin/dead-letters?subscriptionId=" + sid)[3]["data"]), 10, "two dead letters")
    expect([d["eventId"] for d in page] == [first, second], page)
    expect(all(d["attempts"] == 4 and d["lastError"].startswith("HTTP 500") for d in page), page)
    expect(all(d["lastAttemptAt"] >= d["firstAttemptAt"] for d in page))
    expect(len(recv.calls("/down")) == 8)  # 1 + 3 attempts each
    wait_for(lambda: stats_dead_letters(s) == all_dead_letters(s), 5,
             "the dead letters in /admin/stats")
    before = all_dead_letters(s)
    expect(before >= 2 and s.request("GET", "/admin/stats")[3]["webhooks"]["lag"] is not None)
    sub = s.request("GET", "/subscriptions/" + sid)[3]
    expect(sub["status"] == "active" and sub["delivery"]["failingSince"] is not None, sub)
    recv.behaviour["/down"] = ""
    r = post(s, "/admin/dead-letters/%s/replay" % page[0]["deadLetterId"])
    expect(r[0] == 202 and r[3]["status"] == "replaying", r[2])
    wait_for(lambda: recv.successes("/down"), 10, "the replay")
    expect(recv.successes("/down")[0][1] == first)
    left = wait_for(lambda: (lambda d: d if len(d) == 1 else None)(s.request(
        "GET", "/admin/dead-letters?subscriptionId=" + sid)[3]["data"]), 5, "one letter left")
    expect(left[0]["eventId"] == second)
    wait_for(lambda: stats_dead_letters(s) == before - 1, 5, "one letter fewer in /admin/stats")
    m = s.request("GET", "/metrics")[2].decode()
    expect(re.search(r"wallex_webhook_dead_letters_total [1-9]", m), "dead-letter metric")


def test_pause_resume_delete(s, recv):
    wallet(s, "h3")
    sid = subscribe(s, recv, "/paused")
    r = post(s, "/subscriptions/%s/pause" % sid)
    expect(r[0] == 200 and r[3]["status"] == "paused", r[2])
    expect(post(s, "/subscriptions/%s/pause" % sid)[3]["version"] == 2)  # no second event
    ids = credit_ids(s, "h3", 3)
    time.sleep(0.4)
    expect(recv.calls("/paused") == [])
    r = post(s, "/subscriptions/%s/resume" % sid)
    expect(r[0] == 200 and r[3]["status"] == "active", r[2])
    wait_for(lambda: len(recv.successes("/paused")) == 3, 10, "held events")
    expect([c[1] for c in recv.calls("/paused")] == ids, "order after resume")
    r = s.request("DELETE", "/subscriptions/" + sid)
    expect(r[0] == 204 and r[2] == b"" and "content-length" not in r[1], r)
    expect_problem(s.request("GET", "/subscriptions/" + sid), 404, "subscription_not_found")
    credit_ids(s, "h3", 1)
    time.sleep(0.3)
    expect(len(recv.calls("/paused")) == 3)


def test_replay_from_position(s, recv):
    wallet(s, "h4")
    sid = subscribe(s, recv, "/again")
    ids = credit_ids(s, "h4", 3)
    wait_for(lambda: len(recv.successes("/again")) == 3, 10, "three deliveries")
    pos = [e["position"] for e in log_events(s) if e["eventId"] == ids[1]][0]
    r = post(s, "/subscriptions/%s/replay" % sid, {"fromPosition": pos})
    expect(r[0] == 202, r[2])
    wait_for(lambda: len(recv.successes("/again")) == 5, 10, "the replayed two")
    expect([c[1] for c in recv.calls("/again")] == ids + ids[1:])


def test_slow_receiver_does_not_hold_up_others(s, recv):
    wallet(s, "h5")
    subscribe(s, recv, "/slow", behaviour="slow:2")
    subscribe(s, recv, "/fast")
    t0 = time.time()
    credit_ids(s, "h5", 5)
    wait_for(lambda: len(recv.successes("/fast")) == 5, 10, "the fast receiver")
    expect(time.time() - t0 < 1.5, "the fast receiver waited %.2fs" % (time.time() - t0))
    expect(len(recv.calls("/slow")) <= 2)


def test_all_types_and_disabling(s, recv):
    """A receiver failing longer than --webhook-disable-after is disabled,
    says so, and delivers again once resumed."""
    wallet(s, "h6")
    sid = subscribe(s, recv, "/gone", types=["*"], behaviour="fail")
    def disabled():
        credit_ids(s, "h6", 1)
        b = s.request("GET", "/subscriptions/" + sid)[3]
        return b if b["status"] == "disabled" else None
    b = wait_for(disabled, 15, "the subscription to be disabled")
    expect("failed since" in b["disabledReason"], b)
    disabled_events = [e for e in log_events(s) if e["type"] == "SubscriptionDisabled"]
    expect(len(disabled_events) == 1, disabled_events)
    n = len(recv.calls("/gone"))
    time.sleep(0.3)
    expect(len(recv.calls("/gone")) == n, "delivering while disabled")
    recv.behaviour["/gone"] = ""
    r = post(s, "/subscriptions/%s/resume" % sid)
    expect(r[3]["status"] == "active", r[2])
    wait_for(lambda: recv.successes("/gone"), 10, "deliveries after resume")
    types = {c[2]["type"] for c in recv.calls("/gone")}
    expect("WalletCreated" in types or "WalletCredited" in types, types)


def proc_resume_seen_when_read_before_its_commit():
    """The delivery thread reads the subscriptions between the projector's
    apply of a resume and its commit (a fault holds the commit 400 ms, and
    the thread reads at least every 200 ms): it must read them again once
    the resume has committed, and deliver. It once kept the old rows (a
    generation that moved before the commit) and never delivered again."""
    recv = Receiver()
    faults = tempfile.mkdtemp(prefix="wallex-bus-faults-")
    os.environ["WALLEX_FAULT_DIR"] = faults
    try:
        s = Server(BINARY, extra_args=["--webhook-retry-schedule", SCHEDULE,
                                       "--webhook-disable-after", "500ms"]).start()
    finally:
        del os.environ["WALLEX_FAULT_DIR"]
    try:
        wallet(s, "rc")
        sid = subscribe(s, recv, "/rc", types=["*"], behaviour="fail")
        def disabled():
            credit_ids(s, "rc", 1)
            return s.request("GET", "/subscriptions/" + sid)[3]["status"] == "disabled"
        wait_for(disabled, 15, "the subscription to be disabled")
        time.sleep(0.5)  # the thread has settled the disable
        recv.behaviour["/rc"] = ""
        delay = os.path.join(faults, "projector-commit-delay-ms")
        with open(delay, "w") as f:
            f.write("400")
        try:
            r = post(s, "/subscriptions/%s/resume" % sid)
            expect(r[3]["status"] == "active", r[2])
            time.sleep(1.0)
        finally:
            os.unlink(delay)
        credit_ids(s, "rc", 1)
        wait_for(lambda: recv.successes("/rc"), 10, "deliveries after resume")
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        recv.close()
        shutil.rmtree(faults, ignore_errors=True)


def proc_rebuild_swap_rereads_the_catalog():
    """A live subscriptions set that drifted (here: a row paused behind the
    server's back, then read by the delivery thread when another
    subscription came) is fixed by a rebuild; the delivery thread must read
    the rebuilt set when it is swapped in, with no subscription event to
    tell it. It once kept the drifted rows until the next such event. A
    fault holds the rebuild's commit 400 ms, so the thread's periodic read
    (every 200 ms) falls between the rebuild's apply and the swap."""
    recv = Receiver()
    faults = tempfile.mkdtemp(prefix="wallex-bus-faults-")
    os.environ["WALLEX_FAULT_DIR"] = faults
    try:
        s = Server(BINARY, extra_args=["--webhook-retry-schedule", SCHEDULE]).start()
    finally:
        del os.environ["WALLEX_FAULT_DIR"]
    try:
        wallet(s, "sw")
        sid = subscribe(s, recv, "/sw")
        credit_ids(s, "sw", 1)
        wait_for(lambda: len(recv.successes("/sw")) == 1, 10, "the first delivery")
        db = sqlite3.connect(os.path.join(s.data_dir, "readmodel.db"), timeout=10)
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'subscriptions%'")]
        for t in tables:
            db.execute("UPDATE %s SET status = 'paused' WHERE id = ?" % t, (sid,))
        db.commit()
        db.close()
        subscribe(s, recv, "/sw-other")  # the delivery thread reads the drifted rows
        time.sleep(0.5)
        credit_ids(s, "sw", 1)
        time.sleep(0.5)
        expect(len(recv.calls("/sw")) == 1, "the drifted row holds deliveries back")
        delay = os.path.join(faults, "projector-commit-delay-ms")
        with open(delay, "w") as f:
            f.write("400")
        try:
            r = s.request("POST", "/admin/projections/subscriptions/rebuild")
            expect(r[0] == 202, r[2])
            wait_for(lambda: all(p["status"] == "running" for p in
                                 s.request("GET", "/admin/projections")[3]["data"]),
                     10, "the rebuild")
        finally:
            os.unlink(delay)
        wait_for(lambda: len(recv.successes("/sw")) == 2, 10, "delivery after the rebuild")
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        recv.close()
        shutil.rmtree(faults, ignore_errors=True)


def proc_webhooks_kill9():
    """kill -9 during delivery: afterwards the receiver has every event at
    least once; deduplicated by webhook-id they are the log's, in order."""
    recv = Receiver()
    d = tempfile.mkdtemp(prefix="wallex-bus-")
    s = Server(BINARY, data_dir=d, extra_args=["--webhook-retry-schedule", SCHEDULE]).start()
    try:
        wallet(s, "k9")
        subscribe(s, recv, "/k9", behaviour="slow:0.02")
        ids = credit_ids(s, "k9", 60)
        wait_for(lambda: len(recv.calls("/k9")) >= 10, 10, "deliveries under way")
        s.stop(signal.SIGKILL)
        got = len(recv.calls("/k9"))
        expect(got < 60, "all delivered before the kill: nothing tested")
        s.start()
        wait_for(lambda: {c[1] for c in recv.calls("/k9")} >= set(ids), 20, "every event")
        seen, first_order = set(), []
        for c in recv.calls("/k9"):
            if c[1] not in seen:
                seen.add(c[1])
                first_order.append(c[1])
        expect(first_order == ids, "first deliveries out of log order")
        expect(not recv.bad_signatures)
        expect(s.stop() == 0)
    finally:
        s.cleanup()
        recv.close()
        shutil.rmtree(d, ignore_errors=True)


def proc_deny_private():
    s = Server(BINARY, extra_args=["--webhook-deny-private"]).start()
    try:
        for url in ("http://127.0.0.1:9/h", "http://localhost/h", "http://[::1]/h",
                    "http://192.168.1.1/h"):
            expect_problem(post(s, "/subscriptions", {"url": url, "eventTypes": ["*"]}), 400,
                           "invalid_request")
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_flags():
    for bad in (["--webhook-retry-schedule", "5x"], ["--webhook-timeout", "10m"],
                ["--redis", "http://x"], ["--redis-maxlen", "-1"]):
        r = subprocess.run([BINARY, "serve", "--data-dir", "/nonexistent"] + bad,
                           capture_output=True, text=True)
        expect(r.returncode == 2 and "wallex:" in r.stderr, (bad, r.stderr))
    out = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True).stdout
    for flag in ("--redis", "--redis-stream", "--webhook-retry-schedule", "--webhook-timeout",
                 "--webhook-disable-after", "--webhook-deny-private", "WALLEX_REDIS_URL"):
        expect(flag in out, flag)


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    runner = Runner()
    recv = Receiver()
    s = Server(BINARY, extra_args=["--webhook-retry-schedule", SCHEDULE,
                                   "--webhook-disable-after", "1500ms"]).start()
    try:
        runner.run([v for k, v in sorted(globals().items())
                    if k.startswith("test_") and callable(v)], s, recv)
        rc = s.stop()
        runner.run([lambda: expect(rc == 0, "SIGTERM exit code %r" % rc)])
    finally:
        s.cleanup()
        recv.close()
    runner.run([proc_flags, proc_deny_private, proc_relay_mirror_and_failures,
                proc_relay_kill9_and_redis_restarts, proc_relay_lag_bounded_and_required,
                proc_reference_consumer, proc_webhooks_kill9,
                proc_resume_seen_when_read_before_its_commit,
                proc_rebuild_swap_rereads_the_catalog])
    runner.finish()


if __name__ == "__main__":
    main()
