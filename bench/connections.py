#!/usr/bin/env python3
"""N concurrent keep-alive connections to one wallex server (the seeds size
the system for 30k concurrent users): opens them from several loopback
source addresses (one address has ~28k ephemeral ports), keeps them open,
and while they are open measures /healthz and a credit on a fresh
connection, and the server's resident memory. Run as root for the file
limits. Usage: bench/connections.py [N] (default 30000)"""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(os.path.dirname(HERE), "build")


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(port, raw):
    t0 = time.perf_counter()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(raw)
    data = c.recv(65536)
    c.close()
    return (time.perf_counter() - t0) * 1000, data.split(b" ")[1]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    except (ValueError, PermissionError):
        # Raising the hard limit needs CAP_SYS_RESOURCE; without it (some
        # containers) the server cannot hold more sockets than the hard
        # limit either, so say what does fit instead of failing vaguely.
        print("cannot raise the open-file limit to %d (hard limit %d, no CAP_SYS_RESOURCE);"
              " the most that fits here is about %d: bench/connections.py %d"
              % (want, hard, hard - 2000, hard - 2000))
        sys.exit(1)
    d = tempfile.mkdtemp(prefix="wallex-conns-")
    port = 18120
    log = open(os.path.join(d, "server.log"), "wb")
    srv = subprocess.Popen([os.path.join(BUILD, "wallex"), "serve", "--listen",
                            "127.0.0.1:%d" % port, "--data-dir", d, "--log-level", "warn",
                            "--connections-max", str(n + 100), "--connection-timeout-s", "600"],
                           stdout=log, stderr=log)
    held = []
    try:
        time.sleep(0.5)
        with open(os.path.join(d, "admin.token")) as f:  # the first start's
            auth = b"Authorization: Bearer %s\r\n" % f.read().strip().encode()
        body = json.dumps({"walletId": "c1", "ownerId": "o", "initialBalance": 10}).encode()
        ms, st = timed(port, b"POST /wallets HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json"
                       b"\r\nContent-Length: %d\r\n\r\n%s" % (auth, len(body), body))
        assert st == b"201", st
        rss_before = rss_bytes(srv.pid)
        t0 = time.time()
        for i in range(n):
            src = "127.0.0.%d" % (2 + i % 4)
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.bind((src, 0))
            c.connect(("127.0.0.1", port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(c)
            if i % 1000 == 999:
                for k in range(i - 999, i + 1):  # every one answered, and stays open
                    assert held[k].recv(4096).startswith(b"HTTP/1.1 200"), k
        opened_s = time.time() - t0
        rss = rss_bytes(srv.pid)
        health = sorted(timed(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0]
                        for _ in range(21))
        credit_body = b'{"amount":"0.01"}'
        credits = sorted(timed(port, b"POST /wallets/c1/credit HTTP/1.1\r\nHost: x\r\n%s"
                               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                               % (auth, len(credit_body), credit_body))[0] for _ in range(21))
        print("open connections: %d (opened in %.1f s from 4 source addresses)" % (n, opened_s))
        print("server RSS: %.0f MiB with them open (%.0f MiB before)" % (rss / 2 ** 20,
                                                                       rss_before / 2 ** 20))
        print("/healthz on a new connection: median %.2f ms, max %.2f ms" % (health[10],
                                                                            health[-1]))
        print("credit on a new connection:  median %.2f ms, max %.2f ms" % (credits[10],
                                                                           credits[-1]))
        ok = rss <= 2 ** 30
        print("RSS <= 1 GiB: %s" % ("yes" if ok else "NO"))
        sys.exit(0 if ok else 1)
    finally:
        for c in held:
            c.close()
        srv.terminate()
        srv.wait(timeout=60)
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
