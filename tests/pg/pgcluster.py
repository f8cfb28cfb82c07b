#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for tests: installed from Debian when
missing (as root), initdb + pg_ctl in a temporary directory, listening on a
free loopback port, stopped and removed afterwards, also when the test
fails or is interrupted. One cluster per test process; tests keep apart by
schema (wallex --pg-schema) or database.

  tests/pg/pgcluster.py -- CMD ARGS...   runs CMD with WALLEX_TEST_PG_URL
                                         set, "{url}" in ARGS replaced
  import pgcluster; with pgcluster.Cluster() as c: c.url, c.restart()
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def ensure_installed():
    if bin_dir() is not None:
        return
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL is not installed (scripts/install-deps as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
                   check=True, capture_output=True, env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd, **kw):
    # initdb refuses to run as root: the cluster belongs to the postgres user.
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Cluster:
    def __init__(self, durable=False):
        # durable: fsync and synchronous_commit on, as bench/run's
        # PostgreSQL peer runs, so figures compare like with like.
        self.durable = durable
        ensure_installed()
        self.bin = bin_dir()
        self.work = tempfile.mkdtemp(prefix="wallex-pgtest-")
        os.chmod(self.work, 0o777)
        self.data = os.path.join(self.work, "data")
        self.port = free_port()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self.running = False

    def pg_ctl(self, *args):
        return as_postgres([os.path.join(self.bin, "pg_ctl"), "-D", self.data] + list(args))

    def start(self):
        if not os.path.exists(self.data):
            as_postgres([os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust",
                         "-U", "postgres", "--no-sync"])
        # fsync off for tests: these clusters hold test data only, and a
        # crash test kills wallex or restarts PostgreSQL, never the machine.
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200"
                % (self.port, self.work))
        opts += (" -c fsync=on -c synchronous_commit=on -c shared_buffers=128MB" if self.durable
                 else " -c fsync=off")
        try:
            self.pg_ctl("-o", opts, "-w", "-t", "60", "-l", os.path.join(self.work, "pg.log"),
                        "start")
        except subprocess.CalledProcessError:
            raise RuntimeError("PostgreSQL did not start: " + self.log()[-2000:])
        self.running = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            self.running = False
            self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def log(self):
        try:
            with open(os.path.join(self.work, "pg.log")) as f:
                return f.read()
        except OSError:
            return ""

    def psql(self, sql):
        return as_postgres([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-At", "-v", "ON_ERROR_STOP=1",
                            "-c", sql]).stdout

    def close(self):
        try:
            self.stop()
        except Exception:
            try:
                self.stop("immediate")
            except Exception:
                pass
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    cluster = Cluster()

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    with cluster:
        env = dict(os.environ, WALLEX_TEST_PG_URL=cluster.url)
        t0 = time.time()
        rc = subprocess.call([a.replace("{url}", cluster.url) for a in cmd], env=env)
        print("pgcluster: %s exited %d after %.1fs" % (os.path.basename(cmd[0]), rc,
                                                      time.time() - t0), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
