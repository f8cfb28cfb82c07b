#!/usr/bin/env python3
"""The event bus's figures, for bench/run (or alone: bench/bus.py [--small]).

  relay catch-up   a generated log of N events, a server started on it with
                   --redis: events/s until the stream holds them all
  relay lag        the publish delay histogram (occurredAt to in Redis)
                   during the mixed load, p50 and p99
  webhooks         deliveries/s to a local receiver (bench/receiver.py), one
                   subscription and eight (one request in flight each)
  on vs off        mixed throughput without the bus, with the relay, and
                   with the relay and one webhook subscription to every
                   event; alternating runs, medians, and CPU per request
  half load        the relay's publish delay with CPU to spare (the bus
                   threads run at the lowest priority: at a saturated
                   machine they lag, below it they keep up)

Everything on loopback; Redis is Debian's redis-server on a free port."""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(os.path.dirname(HERE), "build")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wallex-bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--dir", self.dir, "--save", "",
                                      "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, extra=(), data_dir=None):
        self.dir = data_dir or tempfile.mkdtemp(prefix="wallex-bench-bus-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([os.path.join(BUILD, "wallex"), "serve", "--listen",
                                      "127.0.0.1:%d" % self.port, "--data-dir", self.dir,
                                      "--log-level", "error"] + list(extra),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                # The admin token of the directory's first start (written
                # before the server listens); none when it had one before.
                path = os.path.join(self.dir, "admin.token")
                self.token = open(path).read().strip() if os.path.exists(path) else None
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def headers(self):
        return {"Authorization": "Bearer " + self.token} if self.token else {}

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers=dict(self.headers(),
                                                  **{"Content-Type": "application/json"}))
        return json.load(urllib.request.urlopen(req, timeout=30))

    def get(self, path):
        req = urllib.request.Request(self.url + path, headers=self.headers())
        return urllib.request.urlopen(req, timeout=30).read().decode()

    def relay(self):
        return json.loads(self.get("/admin/relays"))["data"][0]

    def metric(self, name):
        m = re.search(r"^%s (\d+)" % re.escape(name), self.get("/metrics"), re.M)
        return int(m.group(1)) if m else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(s, seconds, script="mixed.lua", env=None, connections=64):
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds,
                          "-s", os.path.join(HERE, script), s.url],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, BENCH_DIR=HERE, WALLETS="1000",
                                  WALLEX_TOKEN=s.token or "", **(env or {}))).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wallets(s, n=1000):
    for i in range(1, n + 1):
        s.post("/wallets", {"walletId": "b%d" % i, "ownerId": "bench", "initialBalance": 1000000})


def delay_buckets(s):
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^wallex_relay_delay_seconds_bucket\{stream="[^"]+",le="([^"]+)"\} (\d+)',
        s.get("/metrics"), re.M)}


def percentiles(before, after):
    keys = sorted((k for k in after if k != "+Inf"), key=float) + ["+Inf"]
    n = after["+Inf"] - before.get("+Inf", 0)
    out = {}
    for q in (50, 99):
        out[q] = "n/a"
        for k in keys:
            if n and after[k] - before.get(k, 0) >= n * q / 100:
                out[q] = "<= %g ms" % (float(k) * 1000) if k != "+Inf" else "> 30 s"
                break
    return out, n


def relay_catch_up(events):
    """A generated log; its read models caught up first (a server without
    --redis), so the relay's figure is its own: then a server with --redis,
    timed until the stream holds every event."""
    d = tempfile.mkdtemp(prefix="wallex-bench-relay-")
    subprocess.run([os.path.join(BUILD, "store_bench"), "genlog", d, "1000", str(events)],
                   check=True, capture_output=True)
    s = Server(data_dir=d)
    while any(p["lag"] for p in json.loads(s.get("/admin/projections"))["data"]):
        time.sleep(0.1)
    s.proc.terminate()
    s.proc.wait(timeout=60)
    redis = Redis()
    try:
        t0 = time.time()
        s = Server(["--redis", redis.url], data_dir=d)
        while s.relay()["lag"] > 0 or s.relay()["position"] == "0":
            time.sleep(0.02)
        elapsed = time.time() - t0
        published = s.relay()["published"]
        s.stop()
        return published, published / elapsed
    finally:
        redis.stop()
        shutil.rmtree(d, ignore_errors=True)


def deliveries(recv_url, subs, seconds):
    """Credits for `seconds`, then deliveries/s from the first credit until
    the last delivery (two quiet seconds end the count)."""
    s = Server(["--webhook-retry-schedule", "100ms"])
    try:
        wallets(s)
        for i in range(subs):
            s.post("/subscriptions", {"url": recv_url + "/s%d" % i,
                                      "eventTypes": ["WalletCredited"]})
        time.sleep(0.5)
        t0 = time.time()
        wrk(s, seconds, env={"MIX_TRANSFER": "0", "MIX_CREDIT": "100"})
        last, last_t = -1, time.time()
        while True:
            done = s.metric('wallex_webhook_deliveries_total{outcome="success"}')
            if done != last:
                last, last_t = done, time.time()
            elif time.time() - last_t > 2:
                break
            time.sleep(0.1)
        elapsed = last_t - t0
        return last, last / elapsed if elapsed > 0 else 0
    finally:
        s.stop()


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CONFIGS = ("off", "relay", "relay+webhook")


def on_off(recv, seconds, runs):
    """Alternating runs of the mixed load in each configuration: ops/s, and
    CPU ms per 1000 requests of wallex and of Redis + the receiver."""
    res = {c: [] for c in CONFIGS}
    for n in range(runs):
        # Each round starts with the next configuration, so a place in the
        # round (the first, after a pause) favours none of them.
        for label in CONFIGS[n % 3:] + CONFIGS[:n % 3]:
            redis = Redis() if label != "off" else None
            s = Server(["--redis", redis.url] if redis else [])
            try:
                wallets(s)
                if label == "relay+webhook":
                    s.post("/subscriptions", {"url": recv["url"] + "/onoff", "eventTypes": ["*"]})
                before = delay_buckets(s) if redis else {}
                others = [p for p in (redis.proc.pid if redis else None, recv["pid"]) if p]
                c0, o0 = cpu_s(s.proc.pid), sum(cpu_s(p) for p in others)
                rps = wrk(s, seconds)
                c1, o1 = cpu_s(s.proc.pid), sum(cpu_s(p) for p in others)
                n = rps * seconds / 1000
                lag = None
                if redis:
                    time.sleep(0.5)
                    lag = percentiles(before, delay_buckets(s))[0]
                res[label].append((rps, (c1 - c0) * 1000 / n,
                                   (o1 - o0) * 1000 / n if label != "off" else 0, lag))
            finally:
                s.stop()
                if redis:
                    redis.stop()
    return res


def half_load(recv, seconds, rps):
    """The relay's publish delay and the webhook's deliveries with the bus
    on and CPU to spare: the mixed load paced to `rps`."""
    redis = Redis()
    s = Server(["--redis", redis.url])
    try:
        wallets(s)
        s.post("/subscriptions", {"url": recv["url"] + "/half", "eventTypes": ["*"]})
        before = delay_buckets(s)
        d0 = s.metric('wallex_webhook_deliveries_total{outcome="success"}')
        pace = max(1, int(64 * 1000 / max(rps, 1)))
        got = wrk(s, seconds, "mixed_paced.lua", {"PACE_MS": str(pace)})
        time.sleep(0.5)
        lag = percentiles(before, delay_buckets(s))[0]
        done = s.metric('wallex_webhook_deliveries_total{outcome="success"}') - d0
        return ("mixed paced to half the relay+webhook throughput (%.0f ops/s): relay publish"
                " delay; webhook deliveries meanwhile" % got,
                "%.0f deliveries/s" % (done / seconds), lag[50], lag[99])
    finally:
        s.stop()
        redis.stop()


def run(small):
    """Rows (what, throughput, p50, p99), ratios and notes for bench/run."""
    rows, ratios, notes = [], [], []
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "receiver.py"), "0"],
                            stdout=subprocess.PIPE, text=True)
    recv = {"url": proc.stdout.readline().strip(), "pid": proc.pid}
    try:
        n, rate = relay_catch_up(20000 if small else 300000)
        rows.append(("relay catch-up into a local Redis, %d events (from server start)" % n,
                     "%.0f events/s" % rate, "", ""))
        for subs in (1, 8):
            done, rate = deliveries(recv["url"], subs, 1 if small else 5)
            rows.append(("webhook deliveries to a local receiver, %d subscription%s (%d delivered)"
                         % (subs, "s" if subs > 1 else "", done), "%.0f deliveries/s" % rate, "", ""))
        res = on_off(recv, 1 if small else 8, 1 if small else 5)
        med = {c: statistics.median(r[0] for r in res[c]) for c in CONFIGS}
        for c in CONFIGS:
            cpu = statistics.median(r[1] for r in res[c])
            other = statistics.median(r[2] for r in res[c])
            what = "mixed, 64 connections, bus %s (median of %d; CPU ms per 1000 requests:" \
                   " wallex %.0f" % (c, len(res[c]), cpu)
            what += ", Redis + receiver %.0f)" % other if c != "off" else ")"
            lag = res[c][-1][3]
            rows.append((what + ("; relay publish delay" if lag else ""), "%.0f ops/s" % med[c],
                         lag[50] if lag else "", lag[99] if lag else ""))
        for c in CONFIGS[1:]:
            ratios.append(("mixed with %s / without (goal >= 0.9)" % c,
                           "%.2f" % (med[c] / med["off"] if med["off"] else 0)))
            paired = [on[0] / off[0] for on, off in zip(res[c], res["off"]) if off[0]]
            ratios.append(("mixed with %s / without, median of each round's own ratio" % c,
                           "%.2f" % statistics.median(paired) if paired else "n/a"))
        rows.append(half_load(recv, 1 if small else 8, med["relay+webhook"] / 2))
    finally:
        proc.terminate()
        proc.wait()
    return rows, ratios, notes


if __name__ == "__main__":
    subprocess.run(["make", "-C", os.path.dirname(HERE), "build"], check=True,
                   capture_output=True)
    rows, ratios, notes = run("--small" in sys.argv)
    for r in rows:
        print("| %s | %s | %s | %s |" % r)
    for r in ratios:
        print("| %s | %s |" % r)
