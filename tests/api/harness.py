"""Starts the real wallex binary on a free loopback port with a temporary
data directory and talks HTTP to it. Shared by the black-box test files.

With WALLEX_TEST_PG_URL set (tests/pg/pgcluster.py sets it), every server
runs on --store postgres, each in a schema of its own, so the same suites
run against PostgreSQL."""
import decimal
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

PG_URL = os.environ.get("WALLEX_TEST_PG_URL")
_schemas = [0]
# Data directory -> the store arguments of the server that uses it, so
# offline tools run on a server's directory reach the same log.
STORE_ARGS_BY_DIR = {}


def store_args_for(data_dir):
    return STORE_ARGS_BY_DIR.get(os.path.abspath(data_dir), [])


def position_key(token):
    """A position token ("lo" or "hi.lo") as something that sorts."""
    hi, _, lo = str(token).rpartition(".")
    return (int(hi or 0), int(lo))


def store_args(schema):
    return ["--store", "postgres", "--pg", PG_URL, "--pg-schema", schema] if PG_URL else []


# The default of Server.request's token: the server's admin token.
ADMIN = object()


class Server:
    def __init__(self, binary, data_dir=None, extra_args=(), auth=True):
        self.binary = binary
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="wallex-api-")
        self.extra_args = list(extra_args)
        # Authentication is on, as users run it: every request carries the
        # admin token a first start writes to DATA_DIR/admin.token, unless
        # the test asks otherwise. auth=False runs --auth off (loopback).
        self.auth = auth
        self.token = None
        # On PostgreSQL the log lives in a schema of this server's own; a
        # restart on the same data directory finds the same schema.
        _schemas[0] += 1
        self.schema = "api_%d_%d" % (os.getpid(), _schemas[0])
        self.store_args = store_args(self.schema) if "--store" not in self.extra_args else []
        STORE_ARGS_BY_DIR[os.path.abspath(self.data_dir)] = self.store_args
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        # Like a careful client: every GET waits for the read side to have
        # caught up with the last write this client saw (read-your-writes).
        self.read_your_writes = True
        self.position = "0"

    def start(self):
        log = open(self.log_path, "ab")
        offset = log.tell()  # a restart appends; only its own lines count
        self.log_offset = offset
        # Sanitizer builds: leaks are checked when the server exits (SIGTERM),
        # and stop() fails on any sanitizer report.
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        # ThreadSanitizer builds (tests/tsan/run): every report goes to the
        # log and fails stop(); the exit code says so too.
        env.setdefault("TSAN_OPTIONS", "halt_on_error=0:exitcode=66:second_deadlock_stack=1")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir]
            + ([] if self.auth else ["--auth", "off"]) + self.store_args + self.extra_args,
            stdout=log, stderr=log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.findall(rb"\(port (\d+)\)", f.read())
            if m:
                self.port = int(m[-1])
                self.read_token()
                return self
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError("server exited: " + self.log())
            time.sleep(0.02)
        # Never leave a server behind: whoever called start() gets no handle.
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise RuntimeError("server did not start: " + self.log())

    def read_token(self):
        """The admin token of the data directory's first start, if any."""
        path = os.path.join(self.data_dir, "admin.token")
        if self.auth and os.path.exists(path):
            with open(path) as f:
                self.token = f.read().strip()

    def auth_line(self, token=ADMIN):
        """The Authorization header line (bytes) for raw requests."""
        token = self.token if token is ADMIN else token
        return b"Authorization: Bearer %s\r\n" % token.encode() if token else b""

    def authed(self, data, token=ADMIN):
        """Raw requests (each with "Host: x") with the Authorization line."""
        return data.replace(b"\r\nHost: x\r\n", b"\r\nHost: x\r\n" + self.auth_line(token))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.proc = None
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            text = f.read().decode("utf-8", "replace")
        for marker in ("LeakSanitizer", "AddressSanitizer", "ThreadSanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError("sanitizer report from the server:\n" +
                                     text[text.index(marker) - 200:][:4000])
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        if self.proc is not None:
            self.stop(signal.SIGKILL)
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, raw=None, token=ADMIN):
        """Returns (status, headers dict lower-cased, body bytes, parsed json or None).
        token: ADMIN (the server's admin token, when it has one), None for
        no Authorization header, or a token's text."""
        h = {}
        token = self.token if token is ADMIN else token
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None or raw is not None:
            h["Content-Type"] = "application/json"
        if method == "GET" and self.read_your_writes and self.position != "0":
            h["X-Min-Position"] = self.position
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        c = self.conn()
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        if "x-position" in hdrs:
            self.note_position(hdrs["x-position"])
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload, parse_float=decimal.Decimal)
            except ValueError:
                parsed = None
        return r.status, hdrs, payload, parsed

    def note_position(self, token):
        if isinstance(token, bytes):
            token = token.decode()
        if position_key(token) > position_key(self.position):
            self.position = token

    def tool(self, cmd, *args):
        """Runs an offline tool (events, verify, ...) on this server's store."""
        return subprocess.run([self.binary, cmd, "--data-dir", self.data_dir] + self.store_args
                              + list(args), capture_output=True, text=True)

    def raw(self, data, read_timeout=5):
        """Sends raw bytes and returns whatever comes back (bytes)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout)
        try:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
                    if b"\r\n\r\n" in b"".join(chunks):
                        head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                        m = re.search(rb"content-length: *(\d+)", head, re.I)
                        if m and len(rest) >= int(m.group(1)):
                            break
            except socket.timeout:
                pass
            return b"".join(chunks)
        finally:
            s.close()

    def count_events(self):
        out = subprocess.run([self.binary, "events", "--data-dir", self.data_dir]
                             + self.store_args, capture_output=True, check=True)
        return len(out.stdout.splitlines())


def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class ReadSide:
    """A server's read models, for tests that look underneath them: the
    SQLite file readmodel.db, or on PostgreSQL the schema <schema>_read in
    the server's database (read and changed with psql). Rows come back as
    tuples; on PostgreSQL every all-digit value is an int, as SQLite gives
    it. Use `?` placeholders."""

    def __init__(self, server):
        self.server = server
        self.path = os.path.join(server.data_dir, "readmodel.db")
        self.schema = server.schema + "_read" if server.store_args else None

    def _psql(self, sql):
        out = subprocess.run(["psql", PG_URL, "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                              "-c", "SET search_path TO %s" % self.schema, "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("psql: %s" % out.stderr[-500:])
        rows = []
        for line in out.stdout.splitlines()[1:]:  # the first is SET's own line
            rows.append(tuple(int(v) if re.fullmatch(r"-?\d+", v) else v
                              for v in line.split("\x1f")))
        return rows

    def rows(self, sql, *params):
        if self.schema is None:
            import sqlite3
            db = sqlite3.connect(self.path, timeout=10)
            try:
                return db.execute(sql, params).fetchall()
            finally:
                db.close()
        parts = sql.split("?")
        text = parts[0] + "".join(_sql_literal(v) + rest for v, rest in zip(params, parts[1:]))
        return self._psql(text)

    def execute(self, sql, *params):
        self.execute_all([(sql,) + params])

    def execute_all(self, statements):
        """Changes rows in one transaction, as the projector would: on
        PostgreSQL after locking every checkpoint row, so no batch or fold
        of the node that projects is half-way through the same rows
        (SQLite's write lock does that). statements: (sql, *params) tuples."""
        if self.schema is None:
            import sqlite3
            db = sqlite3.connect(self.path, timeout=10)
            try:
                for sql, *params in statements:
                    db.execute(sql, params)
                db.commit()
            finally:
                db.close()
            return
        texts = []
        for sql, *params in statements:
            parts = sql.split("?")
            texts.append(parts[0] + "".join(_sql_literal(v) + rest
                                            for v, rest in zip(params, parts[1:])))
        self._psql("BEGIN; SELECT name FROM projections FOR UPDATE; %s; COMMIT"
                   % "; ".join(texts))

    def live_set(self, name):
        return self.rows("SELECT live_set FROM projections WHERE name = ?", name)[0][0]

    def drop(self):
        """Deletes the whole read side (the server is stopped)."""
        if self.schema is None:
            os.unlink(self.path)
        else:
            subprocess.run(["psql", PG_URL, "-c", "DROP SCHEMA %s CASCADE" % self.schema],
                           capture_output=True, check=True)

    def tables(self, suffix):
        if self.schema is None:
            return [t for (t,) in self.rows("SELECT name FROM sqlite_master WHERE type='table'"
                                            " AND name LIKE ?", "%" + suffix)]
        return [t for (t,) in self.rows("SELECT tablename FROM pg_tables WHERE schemaname = ?"
                                        " AND tablename LIKE ?", self.schema, "%" + suffix)]

    def dump(self):
        """Every read-model table by logical name (set suffix stripped), rows sorted."""
        out = {}
        for name, live in self.rows("SELECT name, live_set FROM projections ORDER BY name"):
            for t in self.tables(live):
                out[t[: -len(live)]] = sorted(self.rows("SELECT * FROM %s" % t), key=repr)
        return out


class Runner:
    """A tiny test runner: functions named test_*, one line per result and the
    closing line 'N passed, N failed'."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, tests, *args):
        for t in tests:
            start = time.time()
            try:
                t(*args)
                self.passed += 1
                print("ok   %-45s %.2fs" % (t.__name__, time.time() - start), flush=True)
            except Exception:
                self.failed += 1
                print("FAIL %s" % t.__name__, flush=True)
                traceback.print_exc()

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def expect(cond, msg=""):
    if not cond:
        raise AssertionError(msg)


def expect_problem(resp, status, code):
    st, hdrs, payload, body = resp
    expect(st == status, "status %d, want %d: %r" % (st, status, payload[:300]))
    expect(hdrs.get("content-type") == "application/problem+json",
           "content type %r" % hdrs.get("content-type"))
    expect(body is not None and body.get("code") == code, "code %r, want %s" % (body, code))
    expect(body.get("status") == status and "title" in body and "type" in body,
           "problem fields: %r" % body)


def run_suite(binary, module_globals, procs, extra_args=(), auth=True):
    """The usual shape of a test file: every test_* function against one
    server (which must then exit 0 on SIGTERM), then the proc_* functions
    that start servers of their own; prints the closing line and exits."""
    runner = Runner()
    s = Server(binary, extra_args=extra_args, auth=auth).start()
    try:
        runner.run([v for k, v in sorted(module_globals.items())
                    if k.startswith("test_") and callable(v)], s)
        rc = s.stop()
        runner.run([lambda: expect(rc == 0, "SIGTERM exit code %r" % rc)])
    finally:
        s.cleanup()
    runner.run(procs)
    runner.finish()
