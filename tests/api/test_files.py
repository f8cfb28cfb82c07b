#!/usr/bin/env python3
"""Black-box tests of files and folders (API.md "Files and folders") against
the real binary with authentication on: every route and problem code, the
permission matrix (owner, grantees by inheritance, another subject, admin,
reader against every route), names, moves and cycles (concurrent ones too),
trash and restore of nested subtrees, purge and the retention sweeper,
paging, search, trees, shared-with-me, the read model's rebuilds, drift and
the offline verify, and the tree index across a restart.
Usage: test_files.py path/to/wallex"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PG_URL, Server, expect, expect_problem, run_suite, store_args_for  # noqa: E402

BINARY = None
_seq = [0]
_seq_lock = threading.Lock()
ITEM_KEYS = {"id", "kind", "name", "parentId", "path", "size", "mimeType", "contentHash",
             "ownerId", "createdBy", "updatedBy", "createdAt", "updatedAt", "trashed", "version",
             "permissions"}


def uid(prefix="i"):
    with _seq_lock:
        _seq[0] += 1
        return "%s-%d-%d" % (prefix, os.getpid(), _seq[0])


class As:
    """One caller: its bearer token on every request."""

    def __init__(self, s, token, subject):
        self.s, self.token, self.subject = s, token, subject

    def req(self, method, path, body=None, headers=None, raw=None):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers or {})
        if body is not None:
            raw = json.dumps(body).encode()
        return self.s.request(method, path, headers=h, raw=raw)

    def get(self, path):
        return self.req("GET", path)

    def folder(self, name, parent=None, folder_id=None, want=201):
        body = {"name": name, "folderId": folder_id or uid("d")}
        if parent is not None:
            body["parentId"] = parent
        r = self.req("POST", "/folders", body)
        expect(r[0] == want, r[2])
        return r[3]

    def file(self, name, parent, size=10, file_id=None, want=201, **extra):
        body = {"name": name, "parentId": parent, "size": size, "mimeType": "text/plain",
                "fileId": file_id or uid("f")}
        body.update(extra)
        r = self.req("POST", "/files", body)
        expect(r[0] == want, r[2])
        return r[3]

    def act(self, item, action, body=None, want=200):
        r = self.req("POST", "/items/%s/%s" % (item, action), body)
        expect(r[0] == want, "%s %s: %d %r" % (item, action, r[0], r[2][:300]))
        return r[3]


CALLERS = {}


def setup_callers(s):
    with open(os.path.join(s.data_dir, "admin.token")) as f:
        admin = As(s, f.read().strip(), None)
    CALLERS["admin"] = admin
    for role, subject in (("user", "alice"), ("user", "bob"), ("user", "carol"),
                          ("user", "dave"), ("reader", "ray")):
        r = admin.req("POST", "/admin/tokens", {"role": role, "subject": subject})
        expect(r[0] == 201, r[2])
        CALLERS[subject] = As(s, r[3]["token"], subject)


def who(name):
    return CALLERS[name]


def page_all(caller, path, limit=50):
    out, after = [], None
    while True:
        sep = "&" if "?" in path else "?"
        url = "%s%slimit=%d" % (path, sep, limit) + ("&after=" + after if after else "")
        r = caller.get(url)
        expect(r[0] == 200, r[2])
        out += r[3]["data"]
        after = r[3]["nextCursor"]
        if after is None:
            return out


# ---- shapes and the basic life ----

def test_create_shapes(s):
    alice = who("alice")
    top = alice.folder("Top")
    expect(set(top) == ITEM_KEYS, sorted(top))
    expect(top["kind"] == "folder" and top["parentId"] is None and top["path"] == "/Top", top)
    expect(top["size"] is None and top["mimeType"] is None and top["contentHash"] is None, top)
    expect(top["ownerId"] == "alice" and top["createdBy"] == "alice", top)
    expect(top["permissions"] == ["read", "write", "manage"] and top["version"] == 1, top)
    sub = alice.folder("Sub", top["id"])
    f = alice.file("a.txt", sub["id"], size=12, contentHash="sha256:abc")
    expect(f["path"] == "/Top/Sub/a.txt" and f["size"] == 12 and f["contentHash"] == "sha256:abc", f)
    r = alice.req("POST", "/files", {"name": "gen.txt", "parentId": sub["id"], "size": 0,
                                     "mimeType": "application/octet-stream"})
    expect(r[0] == 201 and r[1]["location"] == "/items/" + r[3]["id"], r[1])
    got = alice.get("/items/" + f["id"])
    expect(got[0] == 200 and got[3] == f, (got[3], f))
    r = alice.req("POST", "/files", {"name": "x", "parentId": sub["id"], "size": 1,
                                     "mimeType": "a/b", "fileId": f["id"]})
    expect_problem(r, 409, "file_already_exists")


def test_validation(s):
    alice = who("alice")
    top = alice.folder("Validation")
    bad = [("/folders", {"name": ""}), ("/folders", {"name": "."}), ("/folders", {"name": ".."}),
           ("/folders", {"name": "a/b"}), ("/folders", {"name": "a\tb"}),
           ("/folders", {"name": "c1\u0085"}), ("/folders", {"name": "x" * 256}),
           ("/folders", {"name": "ok", "parentId": None}), ("/folders", {"name": "ok", "x": 1}),
           ("/folders", {"name": "ok", "folderId": "bad id"}),
           ("/files", {"name": "f", "size": 1, "mimeType": "a/b"}),
           ("/files", {"name": "f", "parentId": top["id"], "size": -1, "mimeType": "a/b"}),
           ("/files", {"name": "f", "parentId": top["id"], "size": 2 ** 53, "mimeType": "a/b"}),
           ("/files", {"name": "f", "parentId": top["id"], "size": 1, "mimeType": "plain"}),
           ("/files", {"name": "f", "parentId": top["id"], "size": 1, "mimeType": "a/b",
                       "contentHash": "not a hash"})]
    for path, body in bad:
        expect_problem(alice.req("POST", path, body), 400, "invalid_request")
    expect(alice.folder("x" * 255, top["id"])["name"] == "x" * 255)
    expect(alice.folder("é 日本 \U0001F600", top["id"])["name"] == "é 日本 \U0001F600")
    r = alice.req("POST", "/folders", raw=b'{"name":"t"}', headers={"Content-Type": "text/plain"})
    expect_problem(r, 415, "unsupported_media_type")
    expect_problem(alice.req("POST", "/items/%s/rename" % top["id"], {"name": "a/b"}), 400,
                   "invalid_request")
    expect_problem(alice.req("POST", "/items/%s/grants" % top["id"],
                             {"subject": "bob", "permission": "own"}), 400, "invalid_request")
    expect_problem(alice.get("/folders/%s/children?sort=size" % top["id"]), 400,
                   "invalid_request")
    expect_problem(alice.get("/folders/%s/tree?depth=0" % top["id"]), 400, "invalid_request")
    expect_problem(alice.get("/items?prefix=a"), 400, "invalid_request")
    expect_problem(alice.get("/folders/%s/children?after=zz" % top["id"]), 400,
                   "invalid_request")


def test_bodiless_actions(s):
    """Trash, restore and purge take no body: none, without a Content-Type,
    or {}."""
    alice = who("alice")
    top = alice.folder("Bodiless")
    f = alice.file("f", top["id"])
    c = s.conn()
    c.request("POST", "/items/%s/trash" % f["id"], headers={"Authorization": "Bearer " +
                                                            alice.token})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    expect(r.status == 200 and body["trashed"] is True, body)
    alice.act(f["id"], "restore", {})
    alice.act(f["id"], "trash", {})
    expect_problem(alice.req("POST", "/items/%s/restore" % f["id"], {"x": 1}), 400,
                   "invalid_request")
    r = alice.req("DELETE", "/items/" + f["id"])
    expect(r[0] == 204 and r[2] == b"", r)


def test_names(s):
    alice, bob = who("alice"), who("bob")
    top = alice.folder("Names")
    a = alice.file("doc", top["id"])
    expect_problem(alice.req("POST", "/files", {"name": "doc", "parentId": top["id"], "size": 1,
                                                "mimeType": "a/b"}), 409, "name_taken")
    alice.file("Doc", top["id"])  # case-sensitive: another name
    alice.file("doc\u0301", top["id"])  # no normalisation: another name
    b = alice.file("other", top["id"])
    expect_problem(alice.req("POST", "/items/%s/rename" % b["id"], {"name": "doc"}), 409,
                   "name_taken")
    alice.act(a["id"], "trash")
    alice.act(b["id"], "rename", {"name": "doc"})  # a trashed item's name is free
    expect_problem(alice.req("POST", "/items/%s/restore" % a["id"]), 409, "name_taken")
    # Top-level folders: unique per owner.
    alice.folder("Names-top")
    alice.folder("Names-top", want=409)
    bob.folder("Names-top")
    # Renaming to the same name changes nothing.
    r = alice.act(b["id"], "rename", {"name": "doc"})
    expect(r["version"] == 2, r)


def test_moves(s):
    alice = who("alice")
    top = alice.folder("Moves")
    x = alice.folder("X", top["id"])
    y = alice.folder("Y", top["id"])
    deep = alice.folder("deep", x["id"])
    f = alice.file("f", deep["id"])
    expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": x["id"]}), 422,
                   "cycle")
    expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": deep["id"]}), 422,
                   "cycle")
    expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": f["id"]}), 422,
                   "not_a_folder")
    expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": "nope"}), 404,
                   "parent_not_found")
    moved = alice.act(x["id"], "move", {"parentId": y["id"]})
    expect(moved["parentId"] == y["id"] and moved["path"] == "/Moves/Y/X", moved)
    g = alice.get("/items/" + f["id"])[3]
    expect(g["path"] == "/Moves/Y/X/deep/f", g)
    alice.act(y["id"], "rename", {"name": "Why"})
    expect(alice.get("/items/" + f["id"])[3]["path"] == "/Moves/Why/X/deep/f")
    alice.folder("X", top["id"])
    expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": top["id"]}), 409,
                   "name_taken")


def test_update(s):
    alice = who("alice")
    top = alice.folder("Update")
    f = alice.file("f", top["id"], contentHash="h1")
    r = alice.req("PATCH", "/items/" + f["id"], {"size": 99, "mimeType": "image/png"})
    expect(r[0] == 200 and r[3]["size"] == 99 and r[3]["mimeType"] == "image/png", r[2])
    expect(r[3]["contentHash"] == "h1" and r[3]["version"] == 2, r[3])
    same = alice.req("PATCH", "/items/" + f["id"], {"size": 99})
    expect(same[3]["version"] == 2, same[3])
    expect_problem(alice.req("PATCH", "/items/" + top["id"], {"size": 1}), 422, "not_a_file")


# ---- trash ----

def test_trash_and_restore_nested(s):
    alice = who("alice")
    top = alice.folder("Trash")
    a = alice.folder("A", top["id"])
    b = alice.folder("B", a["id"])
    f = alice.file("f", b["id"])
    g = alice.file("g", b["id"])
    alice.act(f["id"], "trash")  # on its own, first
    time.sleep(0.002)  # /trash is newest first by the millisecond, then by id
    alice.act(a["id"], "trash")  # then the folder
    expect(alice.get("/items/" + g["id"])[3]["trashed"] is True)
    expect(alice.get("/folders/%s/children" % top["id"])[3]["data"] == [])
    expect([i["id"] for i in page_all(alice, "/items?under=%s" % top["id"])] == [])
    tree = alice.get("/folders/%s/tree?depth=5" % top["id"])[3]
    expect(tree["children"] == [], tree)
    # A trashed folder's own tree (or one below it) is the folder alone.
    for root in (a, b):
        tree = alice.get("/folders/%s/tree?depth=5" % root["id"])[3]
        expect(tree["id"] == root["id"] and tree["trashed"] is True, tree)
        expect(tree.get("children", []) == [], tree)
    trash_ids = [i["id"] for i in page_all(alice, "/trash")]
    expect(a["id"] in trash_ids and f["id"] in trash_ids and g["id"] not in trash_ids,
           trash_ids)
    expect(trash_ids.index(a["id"]) < trash_ids.index(f["id"]), "newest first")
    expect_problem(alice.req("POST", "/items/%s/restore" % g["id"]), 422, "not_trashed")
    expect_problem(alice.req("POST", "/items/%s/restore" % f["id"]), 422, "item_trashed")
    expect_problem(alice.req("POST", "/items/%s/rename" % g["id"], {"name": "h"}), 422,
                   "item_trashed")
    expect_problem(alice.req("POST", "/files", {"name": "n", "parentId": b["id"], "size": 1,
                                                "mimeType": "a/b"}), 422, "item_trashed")
    # Trashing what is in the trash already changes nothing.
    expect(alice.act(b["id"], "trash")["version"] == 1)
    alice.act(a["id"], "restore")
    expect(alice.get("/items/" + g["id"])[3]["trashed"] is False)
    expect(alice.get("/items/" + f["id"])[3]["trashed"] is True)  # Drive's rule
    names = [i["name"] for i in page_all(alice, "/folders/%s/children" % b["id"])]
    expect(names == ["g"], names)
    alice.act(f["id"], "restore")
    expect(sorted(i["name"] for i in page_all(alice, "/folders/%s/children" % b["id"])) ==
           ["f", "g"])


def test_purge(s):
    alice, admin = who("alice"), who("admin")
    top = alice.folder("Purge")
    a = alice.folder("A", top["id"])
    f = alice.file("f", a["id"])
    expect_problem(alice.req("DELETE", "/items/" + a["id"]), 422, "not_trashed")
    alice.act(a["id"], "trash")
    r = alice.req("DELETE", "/items/" + a["id"])
    expect(r[0] == 204, r)
    for item in (a, f):
        expect_problem(alice.get("/items/" + item["id"]), 404, "file_not_found")
        expect_problem(alice.get("/items/%s/events" % item["id"]), 404, "file_not_found")
    expect_problem(alice.req("POST", "/items/%s/rename" % f["id"], {"name": "z"}), 404,
                   "file_not_found")
    ev = admin.get("/items/%s/events" % a["id"])[3]["data"]
    expect([e["type"] for e in ev] == ["FolderCreated", "ItemTrashed", "ItemPurged"], ev)
    expect(ev[-1]["data"]["reason"] == "request" and ev[-1]["metadata"]["actor"] == "alice")
    alice.folder("A", top["id"])  # the name is free
    alice.folder("A2", top["id"], folder_id=a["id"], want=409)  # the id is not


# ---- permissions ----

def matrix_world():
    """alice owns /M (m) > /M/B (b) > f, and /M/C (c); bob may write M,
    dave may read M; carol has nothing."""
    alice = who("alice")
    m = alice.folder("M-" + uid())
    b = alice.folder("B", m["id"])
    c = alice.folder("C", m["id"])
    f = alice.file("f", b["id"])
    alice.act(m["id"], "grants", {"subject": "bob", "permission": "write"})
    alice.act(m["id"], "grants", {"subject": "dave", "permission": "read"})
    return {"m": m["id"], "b": b["id"], "c": c["id"], "f": f["id"]}


def matrix_case(route):
    """Each route as (prepare by alice, request) over a fresh world."""
    def plain(method, path, body=None):
        return lambda w: (method, path.format(**w), body)

    def after(step, method, path, body=None):
        def run(w):
            step(w)
            return method, path.format(**w), body
        return run

    def trashed(w):
        who("alice").act(w["f"], "trash")

    def granted(w):
        who("alice").act(w["f"], "grants", {"subject": "erin", "permission": "read"})

    return {
        "get": plain("GET", "/items/{f}"),
        "children": plain("GET", "/folders/{b}/children"),
        "tree": plain("GET", "/folders/{m}/tree?depth=3"),
        "search": plain("GET", "/items?under={m}&prefix=f"),
        "events": plain("GET", "/items/{f}/events"),
        "create": plain("POST", "/files", None),
        "rename": plain("POST", "/items/{f}/rename", {"name": "renamed"}),
        "move": plain("POST", "/items/{f}/move", {"parentId": "{c}"}),
        "patch": plain("PATCH", "/items/{f}", {"size": 5}),
        "trash": plain("POST", "/items/{f}/trash"),
        "restore": after(trashed, "POST", "/items/{f}/restore"),
        "purge": after(trashed, "DELETE", "/items/{f}"),
        "grant": plain("POST", "/items/{f}/grants", {"subject": "erin", "permission": "read"}),
        "revoke": after(granted, "DELETE", "/items/{f}/grants/erin/read"),
    }[route]


# status by caller: alice (owner), bob (write on M), dave (read on M),
# carol (nothing), admin, ray (reader)
MATRIX = {
    "get": (200, 200, 200, 404, 200, 200),
    "children": (200, 200, 200, 404, 200, 200),
    "tree": (200, 200, 200, 404, 200, 200),
    "search": (200, 200, 200, 404, 200, 200),
    "events": (200, 200, 200, 404, 200, 200),
    "create": (201, 201, 403, 404, 201, 403),
    "rename": (200, 200, 403, 404, 200, 403),
    "move": (200, 200, 403, 404, 200, 403),
    "patch": (200, 200, 403, 404, 200, 403),
    "trash": (200, 200, 403, 404, 200, 403),
    "restore": (200, 200, 403, 404, 200, 403),
    "purge": (204, 403, 403, 404, 204, 403),
    "grant": (200, 403, 403, 404, 200, 403),
    "revoke": (200, 403, 403, 404, 200, 403),
}


def test_permission_matrix(s):
    names = ("alice", "bob", "dave", "carol", "admin", "ray")
    failures = []
    for route, wants in sorted(MATRIX.items()):
        for name, want in zip(names, wants):
            w = matrix_world()
            method, path, body = matrix_case(route)(w)
            if route == "create":
                body = {"name": "new", "parentId": w["b"], "size": 1, "mimeType": "a/b"}
            if body is not None:
                body = json.loads(json.dumps(body).replace("{c}", w["c"]))
            r = who(name).req(method, path, body)
            if r[0] != want:
                failures.append("%s by %s: %d, want %d %r" % (route, name, r[0], want, r[2][:120]))
            elif r[0] == 404:
                code = r[3]["code"]
                expect(code in ("file_not_found", "parent_not_found"), code)
            elif r[0] == 403:
                expect(r[3]["code"] == "forbidden", r[3])
            elif method == "GET" and route in ("get",):
                level = {"alice": 3, "bob": 2, "dave": 1, "admin": 3, "ray": 1}[name]
                expect(r[3]["permissions"] == ["read", "write", "manage"][:level],
                       (name, r[3]["permissions"]))
    expect(not failures, "\n".join(failures))


def test_everyone_and_shared_with_me(s):
    alice, bob, carol = who("alice"), who("bob"), who("carol")
    top = alice.folder("Shared")
    pub = alice.folder("Public", top["id"])
    f = alice.file("readme", pub["id"])
    expect_problem(carol.get("/items/" + f["id"]), 404, "file_not_found")
    alice.act(pub["id"], "grants", {"subject": "*", "permission": "read"})
    expect(carol.get("/items/" + f["id"])[3]["permissions"] == ["read"])
    expect_problem(carol.req("POST", "/items/%s/rename" % f["id"], {"name": "x"}), 403,
                   "forbidden")
    expect_problem(carol.get("/items/" + top["id"]), 404, "file_not_found")
    # Shared with me: items granted to the caller itself, live, not its own.
    alice.act(f["id"], "grants", {"subject": "bob", "permission": "write"})
    alice.act(top["id"], "grants", {"subject": "bob", "permission": "read"})
    shared = [i["id"] for i in page_all(bob, "/shared-with-me")]
    expect(f["id"] in shared and top["id"] in shared and pub["id"] not in shared, shared)
    expect(f["id"] not in [i["id"] for i in page_all(carol, "/shared-with-me")])
    alice.act(f["id"], "trash")
    expect(f["id"] not in [i["id"] for i in page_all(bob, "/shared-with-me")])
    alice.act(f["id"], "restore")
    # Revoking a grant the item does not hold itself: 404 (no narrowing).
    expect_problem(alice.req("DELETE", "/items/%s/grants/bob/read" % f["id"]), 404,
                   "grant_not_found")
    r = alice.req("DELETE", "/items/%s/grants/bob/write" % f["id"])
    expect(r[0] == 200 and r[3]["id"] == f["id"], r)
    expect(bob.get("/items/" + f["id"])[3]["permissions"] == ["read"])  # still via top
    # Moving changes what is inherited: f under a folder bob cannot see.
    private = alice.folder("Private", top["id"])
    alice.act(f["id"], "move", {"parentId": private["id"]})
    expect(bob.get("/items/" + f["id"])[3]["permissions"] == ["read"])
    alice.act(top["id"], "grants", {"subject": "bob", "permission": "write"})
    expect(bob.get("/items/" + f["id"])[3]["permissions"] == ["read", "write"])


def test_trash_lists_what_the_caller_may_restore(s):
    alice, bob, carol = who("alice"), who("bob"), who("carol")
    top = alice.folder("TrashList")
    f = alice.file("f", top["id"])
    alice.act(top["id"], "grants", {"subject": "carol", "permission": "read"})
    alice.act(f["id"], "trash")
    expect(f["id"] in [i["id"] for i in page_all(alice, "/trash")])
    expect(f["id"] not in [i["id"] for i in page_all(carol, "/trash")])
    expect(f["id"] not in [i["id"] for i in page_all(bob, "/trash")])
    expect(f["id"] in [i["id"] for i in page_all(who("admin"), "/trash")])
    expect(f["id"] in [i["id"] for i in page_all(who("ray"), "/trash")])  # a reader reads all

    def trash_of(caller, limit=50):
        return [i["id"] for i in page_all(caller, "/trash", limit) if i["id"] in mine]

    # Grants made and revoked while in the trash, on the item or above it;
    # to a subject and to everyone.
    mine = {f["id"]}
    alice.act(top["id"], "grants", {"subject": "carol", "permission": "write"})
    expect(trash_of(carol) == [f["id"]], "carol may write now")
    r = alice.req("DELETE", "/items/%s/grants/carol/write" % top["id"])
    expect(r[0] == 200, r[2])
    expect(trash_of(carol) == [], "carol may only read again")
    alice.act(f["id"], "grants", {"subject": "*", "permission": "write"})
    expect(trash_of(bob) == [f["id"]] and trash_of(carol) == [f["id"]], "everyone may write")
    # What another subject trashes in a folder it may write is the folder
    # owner's to restore too; newest first across pages.
    alice.act(top["id"], "grants", {"subject": "bob", "permission": "write"})
    g = bob.file("g", top["id"])
    sub = bob.folder("sub", top["id"])
    h = bob.file("h", sub["id"])
    mine |= {g["id"], sub["id"], h["id"]}
    time.sleep(0.002)  # newest first by the millisecond, then by id
    bob.act(g["id"], "trash")
    time.sleep(0.002)
    bob.act(sub["id"], "trash")  # h goes with it: not a top of its own
    for caller in (alice, bob):
        expect(trash_of(caller, 1) == [sub["id"], g["id"], f["id"]], caller.subject)
    expect(trash_of(carol) == [f["id"]], "carol: only what everyone may write")
    bob.act(sub["id"], "restore")
    expect(trash_of(alice) == [g["id"], f["id"]], "restored leaves")
    r = alice.req("DELETE", "/items/%s" % g["id"])
    expect(r[0] == 204, r[2])
    expect(trash_of(bob) == [f["id"]], "purged leaves")


# ---- lists ----

def test_children_pages(s):
    alice = who("alice")
    top = alice.folder("Pages")
    names = ["n%03d" % i for i in range(120)] + ["Z", "a", "é", "\U0001F600"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: alice.file(n, top["id"]), names))
    got = [i["name"] for i in page_all(alice, "/folders/%s/children?sort=name" % top["id"], 7)]
    expect(got == sorted(names, key=lambda n: n.encode()), got[:10])
    alice.act(alice.get("/folders/%s/children?limit=1" % top["id"])[3]["data"][0]["id"],
              "rename", {"name": "zz-last-touched"})
    by_time = page_all(alice, "/folders/%s/children?sort=updatedAt" % top["id"], 9)
    expect(len(by_time) == len(names) and by_time[0]["name"] == "zz-last-touched",
           by_time[0])
    stamps = [(i["updatedAt"], i["id"]) for i in by_time]
    expect(stamps == sorted(stamps, reverse=True))
    expect_problem(alice.get("/folders/%s/children" % by_time[0]["id"]), 404, "file_not_found")
    # A cursor says where a page starts: one from either order fits the
    # other, and any text of a cursor's shape is taken (the document lets
    # clients send it); another shape is 400.
    kids = "/folders/%s/children" % top["id"]
    first = alice.get(kids + "?sort=name&limit=3")[3]
    r = alice.get(kids + "?sort=updatedAt&limit=3&after=" + first["nextCursor"])
    expect(r[0] == 200, r[2])
    for after in ("c0~ff~x", "c-5~0a01~a.b", "c9999999999999~7a7a~zz"):
        for sort in ("name", "updatedAt"):
            r = alice.get(kids + "?sort=%s&after=%s" % (sort, after))
            expect(r[0] == 200, (after, sort, r[2]))
    expect(alice.get(kids + "?after=c0~f5~zz")[3]["data"] == [], "past every name")
    for after in ("n61~x", "t5~x", "c0~00~x", "c0~6~x", "c~61~x", "c0~61~", "c0~61~bad%20id"):
        expect_problem(alice.get(kids + "?after=" + after), 400, "invalid_request")


def test_search(s):
    alice = who("alice")
    top = alice.folder("Search")
    a = alice.folder("alpha", top["id"])
    for n in ("report-1", "report-2", "résumé", "rapport", "other"):
        alice.file(n, a["id"])
    alice.file("report-outside", alice.folder("Elsewhere")["id"])
    got = [i["name"] for i in page_all(alice, "/items?under=%s&prefix=re" % top["id"], 2)]
    expect(got == ["report-1", "report-2"], got)  # bytes: "ré" does not start with "re"
    got = [i["name"] for i in page_all(alice, "/items?under=%s&prefix=r%%C3%%A9" % top["id"])]
    expect(got == ["résumé"], got)
    got = [i["name"] for i in page_all(alice, "/items?under=%s" % top["id"])]
    expect(got == sorted(["alpha", "report-1", "report-2", "résumé", "rapport", "other"],
                         key=lambda n: n.encode()), got)
    expect_problem(alice.get("/items?under=nope"), 404, "file_not_found")


def test_search_both_ways(s):
    """A subtree over FILES_SEARCH_SUBTREE_SCAN_MAX (4096) items is searched
    along the names' index, a smaller one through its closure rows: the
    same answers either way, trashed items left out, pages and the
    prefix's end exact."""
    alice = who("alice")
    wide = alice.folder("Wide")
    inner = alice.folder("inner", wide["id"])
    small = alice.folder("Small")
    names = ["w%04d" % i for i in range(4100)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: alice.file(n, wide["id"]), names))
    xs_wide = ["x", "x-a", "x-b", "x\u00e9", "xa", "xz"]
    xs_small = ["x-s1", "x-s2", "xy"]
    for n in xs_wide[:4]:
        alice.file(n, wide["id"])
    for n in xs_wide[4:]:
        alice.file(n, inner["id"])
    for n in xs_small:
        alice.file(n, small["id"])
    alice.file("y", small["id"])  # just past the prefix "x"
    gone_wide = alice.file("x-gone", inner["id"])
    gone_small = alice.file("x-gone", small["id"])
    alice.act(gone_wide["id"], "trash")
    alice.act(gone_small["id"], "trash")

    def search(folder, prefix, limit=50):
        q = "/items?under=%s" % folder + ("&prefix=" + prefix if prefix is not None else "")
        return [i["name"] for i in page_all(alice, q, limit)]

    def by_bytes(ns):
        return sorted(ns, key=lambda n: n.encode())

    for limit in (1, 4, 50):
        got = search(wide["id"], "x", limit)
        expect(got == by_bytes(xs_wide), (limit, got))
        got = search(small["id"], "x", limit)
        expect(got == by_bytes(xs_small), (limit, got))
    expect(search(wide["id"], "w00", 30) == names[:100], "w00")
    expect(search(wide["id"], "x%C3%A9") == ["x\u00e9"], "x\u00e9")
    expect(search(wide["id"], "y") == [] and search(small["id"], "y") == ["y"], "y")
    expect(search(small["id"], "z") == [] and search(wide["id"], "w9") == [], "z, w9")
    everything = search(wide["id"], None, 1000)
    expect(everything == by_bytes(names + xs_wide + ["inner"]), len(everything))
    expect(search(small["id"], None, 2) == by_bytes(xs_small + ["y"]), "small, all")


def test_tree(s):
    alice = who("alice")
    top = alice.folder("Tree")
    a = alice.folder("a", top["id"])
    b = alice.folder("b", a["id"])
    alice.file("f", b["id"])
    alice.file("g", top["id"])
    t1 = alice.get("/folders/%s/tree" % top["id"])[3]
    expect([c["name"] for c in t1["children"]] == ["a", "g"], t1)
    expect("children" not in t1["children"][0], t1)
    t3 = alice.get("/folders/%s/tree?depth=3" % top["id"])[3]
    expect(t3["children"][0]["children"][0]["children"][0]["name"] == "f", t3)
    # Trashed below the root: left out with everything under it, however
    # deep the tree asked.
    c = alice.folder("c", a["id"])
    alice.file("in-c", c["id"])
    alice.file("in-b", b["id"])
    alice.act(c["id"], "trash")
    t9 = alice.get("/folders/%s/tree?depth=9" % top["id"])[3]

    def names(n):
        return [n["name"]] + [x for k in n.get("children", []) for x in names(k)]
    expect(names(t9) == ["Tree", "a", "b", "f", "in-b", "g"], names(t9))
    alice.act(c["id"], "restore")
    t9 = alice.get("/folders/%s/tree?depth=9" % top["id"])[3]
    expect(names(t9) == ["Tree", "a", "b", "f", "in-b", "c", "in-c", "g"], names(t9))
    t2 = alice.get("/folders/%s/tree?depth=2" % top["id"])[3]
    expect(names(t2) == ["Tree", "a", "b", "c", "g"], names(t2))
    expect(t3["children"][0]["children"][0]["children"][0]["path"] == "/Tree/a/b/f")
    expect_problem(alice.get("/folders/%s/tree" % t3["children"][1]["id"]), 404,
                   "file_not_found")
    big = alice.folder("Big")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: alice.file("f%d" % i, big["id"]), range(1001)))
    expect_problem(alice.get("/folders/%s/tree" % big["id"]), 422, "tree_too_large")


def test_events_and_audit(s):
    alice, bob = who("alice"), who("bob")
    top = alice.folder("Audit")
    f = alice.file("f", top["id"])
    alice.act(top["id"], "grants", {"subject": "bob", "permission": "write"})
    r = bob.act(f["id"], "rename", {"name": "g"})
    expect(r["createdBy"] == "alice" and r["updatedBy"] == "bob" and r["ownerId"] == "alice", r)
    ev = alice.get("/items/%s/events" % f["id"])[3]["data"]
    expect([(e["type"], e["metadata"]["actor"]) for e in ev] ==
           [("FileCreated", "alice"), ("ItemRenamed", "bob")], ev)
    expect(ev[1]["data"] == {"itemId": f["id"], "name": "g", "previousName": "f"}, ev[1])


def test_idempotency(s):
    alice = who("alice")
    top = alice.folder("Idem")
    body = {"name": "once", "parentId": top["id"], "size": 1, "mimeType": "a/b"}
    h = {"Idempotency-Key": uid("k")}
    a = alice.req("POST", "/files", body, headers=h)
    b = alice.req("POST", "/files", body, headers=h)
    expect(a[0] == 201 and b[0] == 201 and b[1].get("idempotency-replayed") == "true", b[1])
    expect(a[2] == b[2])
    expect(len(page_all(alice, "/folders/%s/children" % top["id"])) == 1)


# ---- concurrency ----

def test_concurrent_conflicting_moves(s):
    """Pairs of folders moved into each other at the same time: exactly one
    move of each pair is applied, the other is refused as a cycle."""
    alice = who("alice")
    top = alice.folder("Race")
    pairs = [(alice.folder("x%d" % i, top["id"])["id"], alice.folder("y%d" % i, top["id"])["id"])
             for i in range(40)]
    jobs = [(x, y) for x, y in pairs] + [(y, x) for x, y in pairs]

    def move(job):
        r = alice.req("POST", "/items/%s/move" % job[0], {"parentId": job[1]})
        return job, r[0], (r[3] or {}).get("code")

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(move, jobs))
    by_pair = {}
    for (a, b), status, code in results:
        key = tuple(sorted((a, b)))
        by_pair.setdefault(key, []).append((status, code))
    for key, outcomes in by_pair.items():
        expect(sorted(outcomes, key=str) == [(200, None), (422, "cycle")], (key, outcomes))
    for x, y in pairs:
        px = alice.get("/items/" + x)[3]["parentId"]
        py = alice.get("/items/" + y)[3]["parentId"]
        expect((px == y) != (py == x), (x, px, y, py))


def test_concurrent_same_name(s):
    alice = who("alice")
    top = alice.folder("SameName")

    def create(i):
        return alice.req("POST", "/files", {"name": "one", "parentId": top["id"], "size": i,
                                            "mimeType": "a/b"})[0]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(create, range(64)))
    expect(sorted(statuses) == [201] + [409] * 63, statuses)


def test_drift_is_empty(s):
    r = who("admin").get("/admin/drift")
    expect(r[0] == 200 and r[3]["driftedCount"] == 0, r[2][:2000])


def test_rebuild_one_and_all(s):
    alice, admin = who("alice"), who("admin")
    top = alice.folder("Rebuild")
    a = alice.folder("a", top["id"])
    f = alice.file("f", a["id"])
    alice.act(a["id"], "rename", {"name": "a-longer-name"})
    alice.act(top["id"], "grants", {"subject": "bob", "permission": "read"})
    before = alice.get("/items/" + f["id"])[3]
    r = admin.req("POST", "/admin/items/%s/rebuild" % a["id"])
    expect(r[0] == 200 and r[3]["name"] == "a-longer-name", r[2])
    expect(alice.get("/items/" + f["id"])[3] == before)
    expect_problem(admin.req("POST", "/admin/items/nope/rebuild"), 404, "file_not_found")
    expect_problem(alice.req("POST", "/admin/items/%s/rebuild" % a["id"]), 403, "forbidden")
    r = admin.req("POST", "/admin/projections/items/rebuild")
    expect(r[0] == 202, r[2])
    deadline = time.time() + 30
    while time.time() < deadline:
        st = [p for p in admin.get("/admin/projections")[3]["data"] if p["name"] == "items"]
        if st and st[0]["status"] == "running":
            break
        time.sleep(0.1)
    expect(alice.get("/items/" + f["id"])[3] == before)
    test_drift_is_empty(s)


# ---- servers of their own ----

def new_server(*args):
    s = Server(BINARY, extra_args=list(args)).start()
    setup_callers(s)
    return s


def proc_retention_sweeper():
    s = new_server("--trash-retention", "1s")
    try:
        alice, admin = who("alice"), who("admin")
        top = alice.folder("Retention")
        a = alice.folder("a", top["id"])
        f = alice.file("f", a["id"])
        kept = alice.file("kept", top["id"])
        alice.act(a["id"], "trash")
        alice.act(kept["id"], "trash")
        time.sleep(0.5)
        alice.act(kept["id"], "restore")
        deadline = time.time() + 15
        while time.time() < deadline:
            if alice.get("/items/" + a["id"])[0] == 404:
                break
            time.sleep(0.2)
        expect_problem(alice.get("/items/" + a["id"]), 404, "file_not_found")
        expect_problem(alice.get("/items/" + f["id"]), 404, "file_not_found")
        expect(alice.get("/items/" + kept["id"])[0] == 200)
        ev = admin.get("/items/%s/events" % a["id"])[3]["data"][-1]
        expect(ev["type"] == "ItemPurged" and ev["data"]["reason"] == "retention" and
               ev["metadata"]["actor"] == "system:trash-retention", ev)
        expect(s.stop() == 0)
    finally:
        s.cleanup()


def proc_restart_keeps_the_tree():
    """The tree index is folded from the log at start: after a restart
    (SIGKILL) names and cycles are still decided against every item."""
    s = new_server()
    try:
        alice = who("alice")
        top = alice.folder("Restart")
        x = alice.folder("x", top["id"])
        y = alice.folder("y", x["id"])
        alice.file("f", y["id"])
        alice.act(top["id"], "grants", {"subject": "bob", "permission": "write"})
        s.stop(sig=9)
        s.start()
        expect_problem(alice.req("POST", "/items/%s/move" % x["id"], {"parentId": y["id"]}), 422,
                       "cycle")
        alice.folder("y", x["id"], want=409)
        who("bob").act(y["id"], "rename", {"name": "by-bob"})
        expect(s.stop() == 0)
        out = subprocess.run([BINARY, "verify", "--data-dir", s.data_dir]
                             + store_args_for(s.data_dir), capture_output=True)
        expect(out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:])
        report = json.loads(out.stdout)
        expect(report["files"]["items"] == 4 and report["files"]["drifted"] == [], report)
    finally:
        s.cleanup()


def server_with_faults():
    """A server reading faults from a directory of its own: (server, dir)."""
    import tempfile
    faults = tempfile.mkdtemp(prefix="wallex-files-faults-")
    os.environ["WALLEX_FAULT_DIR"] = faults
    try:
        return new_server(), faults
    finally:
        del os.environ["WALLEX_FAULT_DIR"]


def tear_down(s, faults, held):
    if held is not None:
        held.kill()
        held.wait()
    s.cleanup()
    shutil.rmtree(faults, ignore_errors=True)


def hold_transaction():
    """On PostgreSQL, a transaction left open (as a projection's may be):
    the log is readable only below it until release_later ends it. None on
    SQLite."""
    if not PG_URL:
        return None
    held = subprocess.Popen(["psql", PG_URL, "-qAt", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    held.stdin.write("BEGIN;\nSELECT pg_current_xact_id();\n")
    held.stdin.flush()
    expect(held.stdout.readline().strip().isdigit())
    return held


def release_later(held, seconds=0.3):
    if held is None:
        return
    def release():
        time.sleep(seconds)
        held.stdin.write("COMMIT;\n")
        held.stdin.close()
    threading.Thread(target=release, daemon=True).start()


def until_not_503(call, timeout=10):
    """The answer of call() once it is no longer 503 (the index could not
    be folded again yet: retry, as a client would)."""
    deadline = time.time() + timeout
    while True:
        r = call()
        if r[0] != 503 or time.time() > deadline:
            return r
        time.sleep(0.05)


def proc_failed_commit_leaves_no_trace_in_the_tree():
    """A batch that fails to commit changed the tree index as its commands
    were decided; the discarded hook has it folded again from the log, so
    nothing of the failed commands is decided against afterwards."""
    s, faults = server_with_faults()
    held = None
    try:
        alice = who("alice")
        # A transaction older than the items below stays open: the fold
        # again must wait for it rather than miss the items.
        held = hold_transaction()
        top = alice.folder("Faults")
        a = alice.folder("A", top["id"])
        b = alice.folder("B", top["id"])
        f = alice.file("f", top["id"])
        fail = os.path.join(faults, "store-commit-fail")
        open(fail, "w").close()
        try:
            for path, body in (("/files", {"name": "x", "parentId": top["id"], "size": 1,
                                           "mimeType": "a/b", "fileId": "fx"}),
                               ("/items/%s/rename" % f["id"], {"name": "y"}),
                               ("/items/%s/move" % a["id"], {"parentId": b["id"]})):
                expect_problem(alice.req("POST", path, body), 503, "store_unavailable")
        finally:
            os.unlink(fail)
        release_later(held)
        # As if none of them had been decided: x and the id are free, y is
        # free, f is still f, and B may go under A (A never went under B).
        # Until the held transaction ends the index cannot be folded again
        # (503, retry: one bounded wait, then a look per command).
        r = until_not_503(lambda: alice.req("POST", "/files", {
            "name": "x", "parentId": top["id"], "size": 10, "mimeType": "text/plain",
            "fileId": "fx"}))
        expect(r[0] == 201, r[2])
        alice.folder("y", top["id"])
        expect(alice.act(f["id"], "rename", {"name": "z"})["name"] == "z")
        alice.act(b["id"], "move", {"parentId": a["id"]})
        expect("folded again from the log" in s.log(), s.log()[-2000:])
        expect(who("admin").get("/admin/drift")[3]["driftedCount"] == 0)
        expect(s.stop() == 0)
    finally:
        tear_down(s, faults, held)


def proc_commit_with_a_lost_answer_is_in_the_tree():
    """A commit whose answer was lost (the store committed, the writer saw
    an error: 503) may be in the log, at a position nobody knows. The fold
    again must not miss it, or the tree index would lack the folder and a
    second one of the same name would be accepted. On PostgreSQL a
    transaction older than the commit stays open meanwhile, so the log is
    readable only below it until that ends."""
    s, faults = server_with_faults()
    held = None
    try:
        alice = who("alice")
        top = alice.folder("Lost")
        held = hold_transaction()
        lost = os.path.join(faults, "store-commit-lost-ack")
        open(lost, "w").close()
        try:
            r = alice.req("POST", "/folders", {"name": "n", "parentId": top["id"],
                                               "folderId": "lost-n"})
            expect_problem(r, 503, "store_unavailable")
        finally:
            os.unlink(lost)
        release_later(held)
        r = until_not_503(lambda: alice.req("POST", "/folders", {
            "name": "n", "parentId": top["id"], "folderId": "lost-n2"}))
        expect_problem(r, 409, "name_taken")
        deadline = time.time() + 10  # the read side shows it too, once caught up
        while alice.get("/items/lost-n")[0] != 200 and time.time() < deadline:
            time.sleep(0.05)
        expect(alice.get("/items/lost-n")[0] == 200)
        expect(who("admin").get("/admin/drift")[3]["driftedCount"] == 0)
        expect(s.stop() == 0)
    finally:
        tear_down(s, faults, held)


def proc_failed_after_stage_is_not_decided_on():
    """A command that fails after it changed the tree index (its answer
    could not be built: the fault files-fail-after-stage) sends nothing to
    the store; later commands of the same batch must not find its folder,
    or a file would be created under a folder that never was."""
    s, faults = server_with_faults()
    try:
        alice = who("alice")
        top = alice.folder("Staged")
        delay = os.path.join(faults, "store-commit-delay-ms")
        with open(delay, "w") as f:
            f.write("40")  # slow commits: the requests below queue into one batch
        fail = os.path.join(faults, "files-fail-after-stage")
        open(fail, "w").close()
        try:
            # A file first keeps the writer committing; the folder, then
            # the files under it, queue meanwhile and are one batch.
            def create(i):
                time.sleep(0.01 * min(i, 2))
                if i == 1:
                    r = alice.req("POST", "/folders", {"name": "boom", "parentId": top["id"],
                                                       "folderId": "phantom"})
                else:
                    r = alice.req("POST", "/files", {"name": "f%d" % i, "size": 1,
                                                     "parentId": top["id"] if i == 0 else "phantom",
                                                     "mimeType": "a/b"})
                return r[0], (r[3] or {}).get("code")

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(create, range(16)))
        finally:
            os.unlink(fail)
            os.unlink(delay)
        expect(answers[0][0] == 201 and answers[1] == (500, "internal_error"), answers)
        expect(all(a == (404, "parent_not_found") for a in answers[2:]), answers)
        expect_problem(alice.get("/items/phantom"), 404, "file_not_found")
        alice.folder("boom", top["id"], folder_id="phantom")
        expect(who("admin").get("/admin/drift")[3]["driftedCount"] == 0)
        expect(s.stop() == 0)
    finally:
        tear_down(s, faults, None)


def proc_lost_tree_changes_fold_again():
    """PostgreSQL failed over to a standby that had not received the last
    commits: the log's tree stream is behind the node's index. Here the
    rows are deleted behind the server's back, and a failed commit of
    another domain's command stands for the failover (the node's writer
    drops its cached states then, as when its connection dies). The node
    must fold its index again rather than keep deciding on the lost
    folder (a 409 for a name nobody holds)."""
    if not PG_URL:
        return
    s, faults = server_with_faults()
    try:
        alice = who("alice")
        top = alice.folder("Failover")
        alice.folder("A", top["id"])
        b = alice.folder("B", top["id"])
        sql = ("BEGIN;"
               " DELETE FROM {s}.events WHERE stream_id = 'item:{b}';"
               " DELETE FROM {s}.snapshots WHERE stream_id = 'files:tree' AND version >="
               "  (SELECT max(version) FROM {s}.events WHERE stream_id = 'files:tree');"
               " DELETE FROM {s}.events WHERE stream_id = 'files:tree' AND version ="
               "  (SELECT max(version) FROM {s}.events WHERE stream_id = 'files:tree');"
               " COMMIT;").format(s=s.schema, b=b["id"])
        out = subprocess.run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                             capture_output=True, text=True)
        expect(out.returncode == 0, out.stderr)
        fail = os.path.join(faults, "store-commit-fail")
        open(fail, "w").close()
        try:
            r = s.request("POST", "/wallets", {"walletId": uid("w"), "ownerId": "o"})
            expect_problem(r, 503, "store_unavailable")
        finally:
            os.unlink(fail)
        alice.folder("B", top["id"])
        expect("the log lost changes" in s.log(), s.log()[-3000:])
        alice.folder("A", top["id"], want=409)
    finally:
        tear_down(s, faults, None)


def second_node(n1, *args):
    """Another node on n1's database (PostgreSQL): its own data directory,
    the same schema, the same tokens (they are in the log)."""
    import harness
    n2 = Server(BINARY, extra_args=list(args))
    n2.schema = n1.schema
    n2.store_args = harness.store_args(n1.schema)
    harness.STORE_ARGS_BY_DIR[os.path.abspath(n2.data_dir)] = n2.store_args
    n2.token = n1.token
    return n2.start()


def on(node, caller):
    return As(node, caller.token, caller.subject)


def conflict_retries(node):
    r = node.request("GET", "/metrics")
    m = re.search(rb"^wallex_writer_conflict_retries_total (\d+)", r[2], re.M)
    return int(m.group(1)) if m else 0


def proc_two_nodes_share_the_tree():
    """Two nodes on one PostgreSQL database both decide files and folders:
    each learns the other's tree changes (a folder made on one is a parent
    on the other), and races between them end as on one node: one name in
    a folder, one move of a pair that would make a cycle, the same tree on
    both. The offline verify and drift agree with the log."""
    if not PG_URL:
        return
    n1 = new_server()
    n2 = None
    try:
        n2 = second_node(n1)
        a1, a2 = who("alice"), on(n2, who("alice"))
        b2 = on(n2, who("bob"))
        top = a1.folder("Nodes")
        # A parent made on the other node; names and renames across nodes.
        sub = a2.folder("sub", top["id"])
        a1.folder("sub", top["id"], want=409)
        a2.act(sub["id"], "rename", {"name": "renamed"})
        a1.folder("renamed", top["id"], want=409)
        a1.folder("sub", top["id"])
        # Trash on one, restore on the other; a grant on one, used on the other.
        a1.act(sub["id"], "trash")
        a2.act(sub["id"], "restore")
        r = b2.req("POST", "/folders", {"name": "x", "parentId": sub["id"]})
        expect(r[0] in (403, 404), r[2])
        a1.act(sub["id"], "grants", {"subject": "bob", "permission": "write"})
        b2.folder("by-bob", sub["id"])

        # One name, created from both nodes at once.
        def create(i):
            node = (a1, a2)[i % 2]
            r = node.req("POST", "/files", {"name": "one", "parentId": top["id"], "size": i,
                                            "mimeType": "a/b"})
            return r[0], (r[3] or {}).get("code")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(create, range(48)))
        expect(sorted(st for st, _ in results) == [201] + [409] * 47, results)
        expect(all(code == "name_taken" for st, code in results if st == 409), results)

        # Pairs moved into each other, one move on each node: one is a cycle.
        pairs = [(a1.folder("x%d" % i, top["id"])["id"], a1.folder("y%d" % i, top["id"])["id"])
                 for i in range(24)]
        jobs = [(a1, x, y) for x, y in pairs] + [(a2, y, x) for x, y in pairs]

        def move(job):
            r = job[0].req("POST", "/items/%s/move" % job[1], {"parentId": job[2]})
            return (job[1], job[2]), r[0], (r[3] or {}).get("code")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            moved = list(pool.map(move, jobs))
        by_pair = {}
        for (a, b), status, code in moved:
            by_pair.setdefault(tuple(sorted((a, b))), []).append((status, code))
        for key, outcomes in by_pair.items():
            expect(sorted(outcomes, key=str) == [(200, None), (422, "cycle")], (key, outcomes))
        print("  conflict retries: node 1 %d, node 2 %d"
              % (conflict_retries(n1), conflict_retries(n2)))

        # Both nodes answer the same tree once caught up.
        n2.note_position(n1.position)
        n1.note_position(n2.position)
        t1 = page_all(a1, "/folders/%s/children" % top["id"], limit=100)
        t2 = page_all(a2, "/folders/%s/children" % top["id"], limit=100)
        expect(sorted(i["id"] for i in t1) == sorted(i["id"] for i in t2), (t1, t2))
        for x, y in pairs:
            px = a2.get("/items/" + x)[3]["parentId"]
            py = a2.get("/items/" + y)[3]["parentId"]
            expect((px == y) != (py == x), (x, px, y, py))
        for node in (n1, n2):
            r = node.request("GET", "/admin/drift")
            expect(r[0] == 200 and r[3]["driftedCount"] == 0, r[2][:2000])
        # More than a chunk of the tree stream (256 changes) behind: node 2
        # catches up chunk by chunk, without folding its index again.
        deep = top["id"]
        for i in range(130):
            deep = a1.folder("d%d" % i, deep if i % 60 else top["id"])["id"]
            a1.act(deep, "rename", {"name": "e%d" % i})
        a2.folder("under-the-last", deep)

        # Random tree changes from both nodes at once on a few folders:
        # whatever each answers, the log must still fold into one tree
        # (names unique among live children, no cycle: the verify below).
        import random
        stress = a1.folder("Stress")["id"]
        pool_ids = [a1.folder("s%d" % i, stress)["id"] for i in range(10)]
        # Top-level folders too: a move of one into a folder that loses a
        # race is undone back to the top level.
        pool_ids += [a1.folder("top-%s" % uid("t"))["id"] for i in range(3)]
        names = ["n%d" % i for i in range(4)]

        def change(i):
            node, r = (a1, a2)[i % 2], random.Random(i)
            x, y = r.choice(pool_ids), r.choice(pool_ids)
            op = r.randrange(16)
            if op < 3:
                res = node.req("POST", "/folders", {"name": r.choice(names), "parentId": x})
            elif op < 6:
                res = node.req("POST", "/items/%s/rename" % x, {"name": r.choice(names)})
            elif op < 9:
                res = node.req("POST", "/items/%s/move" % x, {"parentId": y})
            elif op < 11:
                res = node.req("POST", "/items/%s/trash" % x)
            elif op < 13:
                res = node.req("POST", "/items/%s/restore" % x)
            elif op == 13:
                res = node.req("POST", "/items/%s/grants" % x,
                               {"subject": "bob", "permission": "write"})
            elif op == 14:
                res = node.req("DELETE", "/items/%s/grants/bob/write" % x)
            else:
                res = node.req("DELETE", "/items/%s" % x)
            return res[0], (res[3] or {}).get("code")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(change, range(600)))
        expect(all(st < 500 for st, _ in answers), answers)
        expect(sum(st in (200, 201, 204) for st, _ in answers) > 60, answers)
        print("  random changes: %r; conflict retries: node 1 %d, node 2 %d"
              % (sorted(set(answers), key=str), conflict_retries(n1), conflict_retries(n2)))
        # Lost changes (purges and moves out of the top level included)
        # are undone in the index; nothing was folded again from the log.
        for node in (n1, n2):
            expect("folded again" not in node.log(), node.log()[-3000:])
        for node in (n1, n2):
            expect("disagree" not in node.log(), node.log()[-3000:])
        # The read side, once caught up with both, matches the log; the
        # log folds into one tree (verify: a duplicate live name or a
        # cycle would not fold).
        n1.note_position(n2.position)
        n2.note_position(n1.position)
        for node in (n1, n2):
            r = node.request("GET", "/admin/drift")
            expect(r[0] == 200 and r[3]["driftedCount"] == 0, r[2][:2000])
        expect(n2.stop() == 0)
        expect(n1.stop() == 0)
        out = subprocess.run([BINARY, "verify", "--data-dir", n1.data_dir]
                             + store_args_for(n1.data_dir), capture_output=True)
        expect(out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:])
    finally:
        if n2 is not None:
            n2.cleanup()
        n1.cleanup()


def proc_one_node_sweeps_the_trash():
    """Two nodes with a retention: one holds the sweeper's lease and purges
    what expired, the other stands by; when the sweeping node stops, the
    other takes the lease over and purges."""
    if not PG_URL:
        return
    n1 = new_server("--trash-retention", "1s")
    n2 = None
    try:
        n2 = second_node(n1, "--trash-retention", "1s")
        alice = who("alice")
        top = alice.folder("Swept")
        files = [alice.file("f%d" % i, top["id"]) for i in range(6)]
        for f in files:
            alice.act(f["id"], "trash")

        def gone(caller, items):
            deadline = time.time() + 20
            while time.time() < deadline:
                if all(caller.get("/items/" + f["id"])[0] == 404 for f in items):
                    return
                time.sleep(0.2)
            expect(False, "not purged: " + n1.log()[-1500:] + n2.log()[-1500:])

        gone(alice, files)
        time.sleep(1)  # a few more passes of both
        sweeping = [n for n in (n1, n2) if "this node sweeps the trash" in n.log()]
        expect(len(sweeping) == 1, "sweeping: %d nodes" % len(sweeping))
        standing = n2 if sweeping[0] is n1 else n1
        expect("standing by" in standing.log(), standing.log()[-2000:])
        expect("the trash sweeper purged" not in standing.log(), standing.log()[-2000:])
        # The sweeping node goes; the other takes over.
        expect(sweeping[0].stop() == 0)
        other = on(standing, alice)
        late = other.file("late", top["id"])
        other.act(late["id"], "trash")
        gone(other, [late])
        expect("this node sweeps the trash" in standing.log(), standing.log()[-2000:])
        expect(standing.stop() == 0)
    finally:
        if n2 is not None:
            n2.cleanup()
        n1.cleanup()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    from harness import Runner
    runner = Runner()
    s = new_server()
    try:
        runner.run([v for k, v in sorted(globals().items())
                    if k.startswith("test_") and callable(v)], s)
        rc = s.stop()
        runner.run([lambda: expect(rc == 0, "SIGTERM exit code %r" % rc)])
        out = subprocess.run([BINARY, "verify", "--data-dir", s.data_dir]
                             + store_args_for(s.data_dir), capture_output=True)
        runner.run([lambda: expect(out.returncode == 0, out.stdout[-3000:])])
    finally:
        s.cleanup()
    runner.run([proc_retention_sweeper, proc_restart_keeps_the_tree,
                proc_failed_commit_leaves_no_trace_in_the_tree,
                proc_commit_with_a_lost_answer_is_in_the_tree,
                proc_failed_after_stage_is_not_decided_on, proc_lost_tree_changes_fold_again,
                proc_two_nodes_share_the_tree, proc_one_node_sweeps_the_trash])
    runner.finish()


if __name__ == "__main__":
    main()
