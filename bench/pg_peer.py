"""The peer a team would hand-roll instead of wallex: PostgreSQL with a
transfer in one transaction (lock both rows in id order, overdraft check,
two balance UPDATEs, two ledger INSERTs), driven by pgbench on loopback.
Installs PostgreSQL from Debian when missing (as root), runs a throwaway
cluster as the postgres user, and removes it afterwards."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE ledger (id bigserial PRIMARY KEY, account int NOT NULL, amount bigint NOT NULL,
                     balance_after bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts SELECT g, 100000000 FROM generate_series(1, %(wallets)d) g;
CREATE FUNCTION transfer(a int, b int, amt bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE bal bigint;
BEGIN
  PERFORM 1 FROM accounts WHERE id IN (a, b) ORDER BY id FOR UPDATE;
  SELECT balance INTO bal FROM accounts WHERE id = a;
  IF bal < amt THEN RETURN false; END IF;
  UPDATE accounts SET balance = balance - amt WHERE id = a;
  UPDATE accounts SET balance = balance + amt WHERE id = b;
  INSERT INTO ledger(account, amount, balance_after) VALUES (a, -amt, bal - amt);
  INSERT INTO ledger(account, amount, balance_after)
    SELECT b, amt, balance FROM accounts WHERE id = b;
  RETURN true;
END $$;
"""

SCRIPT = """\\set a random(1, %(wallets)d)
\\set b random(1, %(wallets)d - 1)
\\set b :b + (case when :b >= :a then 1 else 0 end)
\\set amt random(1, 100)
SELECT transfer(:a, :b, :amt);
"""


def bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return os.path.dirname(found[-1]) if found else None


def ensure_installed():
    if bin_dir() is None:
        if os.geteuid() != 0:
            return "PostgreSQL is not installed (run bench/run as root to install it)"
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True,
                       capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return None


def as_postgres(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def run(duration_s, clients=32, wallets=1000, port=55432):
    """Returns (tps, latency_avg_ms, note) or (None, None, note). A cluster
    that fails to start (a port still in use, a shared-memory segment not
    yet released) is tried again on another port."""
    note = None
    for attempt in range(3):
        tps, lat, note = run_once(duration_s, clients, wallets, port + attempt)
        if tps is not None or not (note or "").startswith("PostgreSQL did not start"):
            return tps, lat, note
        time.sleep(1)
    return None, None, note


def run_once(duration_s, clients, wallets, port):
    note = ensure_installed()
    if note:
        return None, None, note
    bindir = bin_dir()
    work = tempfile.mkdtemp(prefix="wallex-pg-")
    os.chmod(work, 0o777)
    data = os.path.join(work, "data")
    started = False
    try:
        as_postgres([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres"])
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on"
                " -c max_connections=100 -c shared_buffers=128MB" % (port, work))
        try:
            as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-w", "-l",
                         os.path.join(work, "pg.log"), "start"])
        except subprocess.CalledProcessError:
            with open(os.path.join(work, "pg.log")) as f:
                return None, None, "PostgreSQL did not start: " + f.read()[-600:]
        started = True
        psql = [os.path.join(bindir, "psql"), "-h", "127.0.0.1", "-p", str(port), "-U",
                "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
        as_postgres(psql + ["-c", SCHEMA % {"wallets": wallets}])
        script = os.path.join(work, "transfer.sql")
        with open(script, "w") as f:
            f.write(SCRIPT % {"wallets": wallets})
        os.chmod(script, 0o644)
        out = as_postgres([os.path.join(bindir, "pgbench"), "-h", "127.0.0.1", "-p", str(port),
                           "-U", "postgres", "-n", "-c", str(clients), "-j", "2", "-T",
                           str(duration_s), "-f", script, "postgres"]).stdout
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        lat = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
        # The peer must be right too: money conserved, no negative balance.
        total = as_postgres(psql + ["-At", "-c", "SELECT sum(balance), min(balance) FROM accounts"]
                            ).stdout.strip().split("|")
        if int(total[0]) != wallets * 100000000 or int(total[1]) < 0:
            return tps, lat, "PostgreSQL peer lost money: %r" % total
        return tps, lat, None
    finally:
        if started:
            as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    t0 = time.time()
    print(run(5), "in %.1fs" % (time.time() - t0))
