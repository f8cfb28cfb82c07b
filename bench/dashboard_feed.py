#!/usr/bin/env python3
"""What one open dashboard asks of the server, without the browser: the
overview's GET /admin/stats once a second and GET /readyz every five
(web/app.js's POLL_MS and HEALTH_MS), over one keep-alive connection, with
a token from WALLEX_TOKEN. For bench/ab's "feed": the dashboard's cost to a
server when the browser runs elsewhere, as an operator's does; "dashboard"
runs the real page in chromium on this machine, sharing its two cores.

  bench/dashboard_feed.py URL      (stops when its stdin closes)
"""
import http.client
import os
import sys
import threading
import time
import urllib.parse

POLL_S = 1.0    # web/app.js POLL_MS
HEALTH_S = 5.0  # web/app.js HEALTH_MS


def main():
    u = urllib.parse.urlsplit(sys.argv[1])
    token = os.environ.get("WALLEX_TOKEN", "")
    headers = {"Authorization": "Bearer " + token} if token else {}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    print("open", flush=True)
    next_health = 0.0
    while not stop.is_set():
        t = time.monotonic()
        paths = ["/admin/stats"] + (["/readyz"] if t >= next_health else [])
        if t >= next_health:
            next_health = t + HEALTH_S
        for path in paths:
            try:
                conn.request("GET", path, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        stop.wait(max(0.0, POLL_S - (time.monotonic() - t)))


if __name__ == "__main__":
    main()
