#!/usr/bin/env python3
"""docs/openapi.yaml: valid OpenAPI 3.1 (checked by Redocly CLI, installed from
the npm registry into the build directory), documents every route of the
route table and every problem code, and is what the server serves.
Usage: test_openapi.py path/to/wallex build-dir"""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from harness import Runner, Server, expect  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "openapi.yaml")
REDOCLY = "@redocly/cli@2.77.0"


def doc_text():
    with open(DOC) as f:
        return f.read()


def test_redocly_lint(build_dir):
    prefix = os.path.join(build_dir, "npm")
    exe = os.path.join(prefix, "node_modules", ".bin", "redocly")
    if not os.path.exists(exe):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, REDOCLY],
                       check=True, capture_output=True)
    r = subprocess.run([exe, "lint", DOC, "--format=summary"], capture_output=True, text=True)
    expect(r.returncode == 0, r.stdout + r.stderr)


def route_tables():
    """Every route table of the tree: the operations module and each
    domain's routes.c (src/*/routes.c)."""
    text = ""
    for path in [os.path.join(ROOT, "src", "ops", "ops.c")] + sorted(
            glob.glob(os.path.join(ROOT, "src", "*", "routes.c"))):
        with open(path) as f:
            text += f.read()
    return text


def outcome_maps():
    """Every outcome X-macro list: the core's and each domain's."""
    text = ""
    for path in [os.path.join(ROOT, "src", "es", "outcome.h")] + sorted(
            glob.glob(os.path.join(ROOT, "src", "*", "*.h"))):
        with open(path) as f:
            text += f.read()
    return text


def test_every_route_documented(build_dir):
    routes = re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)", "(/[^"]*)",', route_tables())
    expect(len(routes) >= 15, routes)
    text = doc_text()
    blocks = re.split(r"^  (/\S*):\s*$", text, flags=re.M)
    paths = {blocks[i]: blocks[i + 1] for i in range(1, len(blocks) - 1, 2)}
    for method, pattern in routes:
        expect(pattern in paths, "path %s is not in openapi.yaml" % pattern)
        expect(re.search(r"^    %s:" % method.lower(), paths[pattern], re.M),
               "%s %s is not in openapi.yaml" % (method, pattern))


def test_every_problem_code_documented(build_dir):
    codes = re.findall(r"XX\(P, (\w+), \d+,", outcome_maps())
    expect(len(codes) >= 20, codes)
    text = doc_text()
    enum = re.search(r"code:\s*\n\s*type: string\s*\n\s*enum: \[([^\]]*)\]", text).group(1)
    documented = {c.strip() for c in enum.split(",")}
    for c in codes:
        if c != "OK":
            expect(c in documented, "problem code %s is not in openapi.yaml" % c)


def test_currencies_documented(build_dir):
    """Currency's enum and x-minor-digits are base/money.c's table: the
    contract tests draw amounts by them."""
    with open(os.path.join(ROOT, "src", "base", "money.c")) as f:
        table = re.findall(r'\{"([A-Z]{3})", (\d)\}', f.read())
    expect(len(table) >= 150, table)
    text = doc_text()
    block = re.search(r"^    Currency:\n((?:      .*\n)+)", text, re.M).group(1)
    enum = re.search(r"enum: \[([^\]]*)\]", block).group(1)
    digits = re.search(r"x-minor-digits: \{([^}]*)\}", block).group(1)
    expect([c.strip() for c in enum.split(",")] == [c for c, _ in table], "Currency enum")
    expect([tuple(x.strip().split(": ")) for x in digits.split(",")] == table,
           "Currency x-minor-digits")


def test_served_document(build_dir):
    s = Server(sys.argv[1]).start()
    try:
        st, h, payload, _ = s.request("GET", "/openapi.yaml")
        expect(st == 200 and h["content-type"] == "application/yaml")
        with open(DOC, "rb") as f:
            expect(payload == f.read(), "served document differs from docs/openapi.yaml")
    finally:
        s.cleanup()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: test_openapi.py path/to/wallex build-dir", file=sys.stderr)
        sys.exit(2)
    runner = Runner()
    runner.run([test_redocly_lint, test_every_route_documented, test_every_problem_code_documented,
                test_currencies_documented, test_served_document], os.path.abspath(sys.argv[2]))
    runner.finish()
