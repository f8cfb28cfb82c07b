#!/usr/bin/env python3
"""Crash loop: a real server under concurrent transfers, credits, debits,
order flows (create an order of 3 items, confirm it, pay it from a wallet,
sometimes cancel it once paid, which refunds it) and file flows (create a
file, rename it, move it to another folder, sometimes trash and restore it),
each command with its own Idempotency-Key, killed with SIGKILL at random
moments and restarted.
Clients keep a journal of every acknowledgement. After each round:
  - every acknowledged command, sent again with its key, comes back byte for
    byte with Idempotency-Replayed: true (it is durable, and a retry never
    applies it twice);
  - commands whose answer was lost in the crash are retried with their key
    until they have an answer, so every one ends applied exactly once or
    refused;
  - the balances add up to the initial money plus acknowledged credits minus
    acknowledged debits, minus acknowledged payments plus acknowledged
    refunds, none negative;
  - every order is, in the log, in the status its last acknowledged command
    left it;
  - every file has, in the log, the name, folder and trash flag its last
    acknowledged command left it with.
At the end: `wallex verify` on the data directory (money invariants, ledger,
read models against the log, each payment and refund against its wallet
movement, the files read model against the log and itself). Authentication is
on, as users run it: every command carries the admin token of the data
directory's first start, across every restart.

  tests/crash/crash_loop.py build/wallex              # 3 rounds (CI)
  tests/crash/crash_loop.py build/wallex --rounds 100 # the long run
"""
import argparse
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from harness import Server  # noqa: E402

WALLETS = 12
INITIAL = Decimal("1000.00")


class Journal:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}    # key -> (path, body, status, response bytes)
        self.unknown = {}  # key -> (path, body): sent, answer lost
        self.credits = Decimal(0)
        self.debits = Decimal(0)
        self.paid = Decimal(0)      # acknowledged order payments
        self.refunded = Decimal(0)  # acknowledged cancels of paid orders
        self.orders = {}            # order id -> status its last acknowledged command left
        self.files = {}             # item id -> (name, parentId, trashed) likewise
        self.replays_checked = 0

    def settle(self, key, path, body, status, payload):
        with self.lock:
            self.unknown.pop(key, None)
            if status >= 500:
                return  # not an acknowledgement: nothing was applied
            self.acked[key] = (path, body, status, payload)
            if status == 200 and path.endswith("/credit"):
                self.credits += Decimal(json.loads(body)["amount"])
            if status == 200 and path.endswith("/debit"):
                self.debits += Decimal(json.loads(body)["amount"])
            if path.startswith("/orders") and status in (200, 201):
                order = json.loads(payload, parse_float=Decimal)
                self.orders[order["orderId"]] = order["status"]
                if path.endswith("/pay"):
                    self.paid += order["total"]
                if path.endswith("/cancel") and order["paidFrom"] is not None:
                    self.refunded += order["total"]
            if (path.startswith("/files") or path.startswith("/items")) and status in (200, 201):
                it = json.loads(payload)
                self.files[it["id"]] = (it["name"], it["parentId"], it["trashed"])


def send(s, path, body, key):
    return s.request("POST", path, raw=body.encode(), headers={"Idempotency-Key": key})


def random_command(rnd):
    a, b = rnd.sample(range(WALLETS), 2)
    amount = "%d.%02d" % (rnd.randint(0, 20), rnd.randint(0, 99))
    if amount == "0.00":
        amount = "0.01"
    r = rnd.random()
    if r < 0.6:
        return "/transfers", json.dumps({"fromWalletId": "c%d" % a, "toWalletId": "c%d" % b,
                                         "amount": amount})
    if r < 0.8:
        return "/wallets/c%d/credit" % a, json.dumps({"amount": amount})
    return "/wallets/c%d/debit" % a, json.dumps({"amount": amount})


def order_flow(rnd, order_id):
    """The commands of one order's life, in order: create with 3 items,
    confirm, pay from a wallet, and sometimes cancel once paid (a refund)."""
    items = [{"productId": "p%d" % i, "quantity": rnd.randint(1, 3),
              "unitPrice": "%d.%02d" % (rnd.randint(0, 4), rnd.randint(0, 99))} for i in range(3)]
    steps = [("/orders", json.dumps({"orderId": order_id, "customerId": "crash",
                                     "items": items})),
             ("/orders/%s/confirm" % order_id, "{}"),
             ("/orders/%s/pay" % order_id,
              json.dumps({"walletId": "c%d" % rnd.randrange(WALLETS)}))]
    if rnd.random() < 0.3:
        steps.append(("/orders/%s/cancel" % order_id, json.dumps({"reason": "crash loop"})))
    return steps


def file_flow(rnd, file_id):
    """One file's life: created in the left folder, renamed, moved to the
    right one, sometimes trashed, and then sometimes restored."""
    steps = [("/files", json.dumps({"fileId": file_id, "name": file_id, "parentId": "crash-left",
                                    "size": rnd.randint(0, 10 ** 6), "mimeType": "text/plain"})),
             ("/items/%s/rename" % file_id, json.dumps({"name": file_id + "-renamed"})),
             ("/items/%s/move" % file_id, json.dumps({"parentId": "crash-right"}))]
    if rnd.random() < 0.4:
        steps.append(("/items/%s/trash" % file_id, "{}"))
        if rnd.random() < 0.5:
            steps.append(("/items/%s/restore" % file_id, "{}"))
    return steps


def client(s, journal, stop, seed, round_no):
    rnd = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        key = "r%d-c%d-%d" % (round_no, seed, n)
        r = rnd.random()
        if r < 0.2:
            steps = order_flow(rnd, "o-" + key)
        elif r < 0.4:
            steps = file_flow(rnd, "f-" + key)
        else:
            steps = [random_command(rnd)]
        for i, (path, body) in enumerate(steps):
            step_key = "%s-%d" % (key, i)
            with journal.lock:
                journal.unknown[step_key] = (path, body)
            try:
                st, _, payload, _ = send(s, path, body, step_key)
            except Exception:
                return  # the server died under us: the answer is lost
            journal.settle(step_key, path, body, st, payload)
            if st not in (200, 201):
                break  # refused (or not answered): the order's life stops here


def check_round(s, journal, verified_keys):
    """Returns how many answers the crash lost."""
    lost = len(journal.unknown)
    # Lost answers: retry with the same key until answered.
    for key, (path, body) in list(journal.unknown.items()):
        for _ in range(50):
            st, _, payload, _ = send(s, path, body, key)
            if st < 500:
                journal.settle(key, path, body, st, payload)
                break
            time.sleep(0.1)
        else:
            raise AssertionError("no answer for %s" % key)
    # Every acknowledgement is durable and replays byte for byte.
    for key, (path, body, status, payload) in journal.acked.items():
        if key in verified_keys:
            continue
        st, h, again, _ = send(s, path, body, key)
        assert st == status and again == payload, (key, st, status, again[:200], payload[:200])
        assert h.get("idempotency-replayed") == "true", (key, h)
        verified_keys.add(key)
        journal.replays_checked += 1
    # Money adds up.
    s.read_your_writes = False
    total = Decimal(0)
    expected = (WALLETS * INITIAL + journal.credits - journal.debits - journal.paid +
                journal.refunded)
    # Balances from the log itself (folded), not the read model, so this does
    # not depend on projection lag.
    for w in range(WALLETS):
        page, after, balance = None, None, INITIAL
        while True:
            q = "/wallets/c%d/events?limit=1000" % w + ("&after=" + after if after else "")
            page = s.request("GET", q)[3]
            for e in page["data"]:
                if e["type"] in ("WalletCredited", "WalletDebited"):
                    balance = Decimal(e["data"]["balanceAfterMinor"]) / 100
            after = page["nextCursor"]
            if after is None:
                break
        assert balance is not None and balance >= 0
        total += balance
    assert total == expected, (total, expected)
    # Every order is where its last acknowledged command left it, in the
    # log itself (folded: ?asOf in the future), whatever the read side holds.
    for order_id, status in journal.orders.items():
        st, _, payload, order = s.request("GET", "/orders/%s?asOf=2999-01-01T00:00:00Z"
                                          % order_id)
        assert st == 200 and order["status"] == status, (order_id, status, payload[:300])
    # Every file's name, folder and trash flag, folded from its events.
    for item_id, want in journal.files.items():
        st, _, payload, page = s.request("GET", "/items/%s/events?limit=1000" % item_id)
        assert st == 200, (item_id, payload[:300])
        name = parent = None
        trashed = False
        for e in page["data"]:
            name = e["data"].get("name", name)
            parent = e["data"].get("parentId", parent)
            trashed = {"ItemTrashed": True, "ItemRestored": False}.get(e["type"], trashed)
        assert (name, parent, trashed) == want, (item_id, (name, parent, trashed), want)
    return lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    print("crash loop: %d rounds, seed %d" % (args.rounds, args.seed), flush=True)
    s = Server(os.path.abspath(args.binary), extra_args=["--log-level", "warn"]).start()
    journal = Journal()
    verified = set()
    failures = 0
    try:
        for w in range(WALLETS):
            st = s.request("POST", "/wallets", raw=json.dumps(
                {"walletId": "c%d" % w, "ownerId": "crash", "initialBalance": str(INITIAL)}
            ).encode())[0]
            assert st == 201
        for folder in ({"folderId": "crash-root", "name": "crash"},
                       {"folderId": "crash-left", "name": "left", "parentId": "crash-root"},
                       {"folderId": "crash-right", "name": "right", "parentId": "crash-root"}):
            st = s.request("POST", "/folders", raw=json.dumps(folder).encode())[0]
            assert st == 201
        for round_no in range(1, args.rounds + 1):
            stop = threading.Event()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
                futs = [ex.submit(client, s, journal, stop, rnd.randint(0, 10 ** 9), round_no)
                        for _ in range(args.clients)]
                time.sleep(0.2 + rnd.random() * 1.0)
                s.proc.send_signal(signal.SIGKILL)
                s.proc.wait()
                s.proc = None
                stop.set()
                for f in futs:
                    f.result()
            s.start()
            try:
                lost = check_round(s, journal, verified)
                print("round %d: ok, %d acknowledged so far (%d orders, payments %s, refunds"
                      " %s, %d files), %d answers lost in the crash settled by retrying with"
                      " their keys" % (round_no, len(journal.acked), len(journal.orders),
                                       journal.paid, journal.refunded, len(journal.files), lost),
                      flush=True)
            except AssertionError as e:
                failures += 1
                print("round %d: FAILED %r" % (round_no, e), flush=True)
                break
        assert s.stop() == 0
        r = subprocess.run([os.path.abspath(args.binary), "verify", "--data-dir", s.data_dir]
                           + s.store_args, capture_output=True, text=True)
        report = json.loads(r.stdout) if r.stdout else {}
        if r.returncode != 0 or not report.get("ok"):
            failures += 1
            print("verify FAILED: %s %s" % (r.stdout[:2000], r.stderr[-2000:]))
        else:
            print("verify: ok, %d events, %d ledger entries, %d orders, %d paid, %d files and"
                  " folders" % (report["wallet"]["events"], report["wallet"]["ledgerEntries"],
                                report["order"]["orders"], report["order"]["paidOrders"],
                                report["files"]["items"]))
        print("acknowledgements verified by replay: %d" % journal.replays_checked)
    finally:
        s.cleanup()
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
