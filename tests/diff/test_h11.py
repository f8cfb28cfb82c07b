#!/usr/bin/env python3
"""Differential framing test: wallex's HTTP/1.1 parser (src/http/wire.c,
framed as conn.c frames a connection, through tests/diff/wire_dump.c)
against h11, an independent parser (Debian's python3-h11).

Seeded random request streams (pipelined requests, Content-Length and
chunked bodies with extensions, leading zeros and trailers, odd
whitespace, duplicate headers, absolute-form targets, HTTP/1.0) are
generated, most of them then damaged, and each is fed to both. wallex must
accept exactly the requests h11 accepts, with the same method, target,
header fields and body, and refuse where h11 refuses, except where the
stream shows one of the deliberate differences below (counted and printed):

  bare_lf           a line ended by LF alone: h11 takes it, we refuse (400)
  obs_fold          a folded header or trailer line: h11 unfolds, we refuse
  leading_crlf      empty lines before a request line: we skip them (RFC 9112
                    §2.2), h11 refuses
  ctl_in_field      a control character other than HTAB in a field value or
                    chunk extension: h11 takes it, we refuse
  version           HTTP/x.y other than 1.0 and 1.1: h11 takes it, we refuse
  target_form       a target that is neither a path nor an http(s) URL with a
                    host and no userinfo: h11 takes any, we refuse
  cl_list           Content-Length "5, 5": h11 takes it, we refuse
  cl_and_te         Content-Length with Transfer-Encoding: h11 reads chunked,
                    we refuse (smuggling)
  te_http10         Transfer-Encoding in HTTP/1.0: h11 reads chunked, we refuse
  chunk_bws         whitespace between a chunk size and ';': RFC 9112 allows
                    it (BWS) and we take it, h11 refuses
  size_limits       chunk sizes of more than 20 digits (h11's bound; ours is 8
                    significant ones and a 256-byte line), bodies over 64 KiB,
                    heads over 16 KiB: each side's own limits
  early_refusal     a request line starting with a byte below 0x21: h11
                    refuses before the line ends, we once it has
  bare_cr           a CR not followed by LF: we refuse at that byte, h11 once
                    its line (or head) is complete
  refused_early     we refuse at the first byte that cannot be, h11 once the
                    line is complete: shown by h11 refusing the stream with
                    CRLF CRLF added

HTTP/1.0 keep-alive is ours only (h11 always closes after an HTTP/1.0
request), so streams are compared up to the first request either side
closes after.

  tests/diff/test_h11.py build/tests/wire_dump                # 3,000 streams
  WALLEX_DIFF_CASES=300000 WALLEX_DIFF_SEED=7 tests/diff/test_h11.py build/tests/wire_dump
"""
import os
import random
import re
import subprocess
import sys

try:
    import h11
except ImportError:  # Debian's package, under another interpreter than Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
    import h11


# ---------------------------------------------------------------- generator

TOKENS = [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"PATCH", b"BREW", b"get"]
PATHS = [b"/", b"/healthz", b"/wallets/w-1", b"/wallets/w%2F1/credit?x=1&y=%20",
         b"/a?", b"/~!$&'()*+,;=:@", b"http://h.example/x?q", b"HTTPS://h:8080",
         b"http://u@h/x", b"*", b"h.example:443", b"/%00", b"/" + b"p" * 40]
NAMES = [b"X-A", b"x-b", b"Accept", b"User-Agent", b"X-Empty", b"Idempotency-Key"]
VALUES = [b"v", b"", b"  spaced  value  ", b"a\tb", b"caf\xc3\xa9", b"\x80\xff", b"1, 2"]


def chunked(rng, body):
    out, at = b"", 0
    while at < len(body):
        n = rng.randint(1, 9)
        piece = body[at:at + n]
        size = b"%x" % len(piece)
        if rng.random() < 0.1:
            size = b"0" * rng.randint(1, 12) + size
        if rng.random() < 0.1:
            size = size.upper()
        ext = rng.choice([b"", b"", b"", b";a=b", b";x", b' ; q="v"', b" "])
        out += size + ext + b"\r\n" + piece + b"\r\n"
        at += n
    out += b"0" + rng.choice([b"", b"", b";e"]) + b"\r\n"
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        out += rng.choice(NAMES) + b":" + rng.choice(VALUES) + b"\r\n"
    return out + b"\r\n"


def request(rng):
    method = rng.choice(TOKENS)
    version = rng.choice([b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/1.2"])
    lines = [method + b" " + rng.choice(PATHS) + b" " + version]
    fields = []
    if version != b"HTTP/1.0" or rng.random() < 0.5:
        fields.append(b"Host: " + rng.choice([b"x", b"a.example:80", b""]))
    for _ in range(rng.randint(0, 3)):
        fields.append(rng.choice(NAMES) + b":" + rng.choice([b"", b" ", b"  "]) +
                      rng.choice(VALUES))
    body = b"".join(rng.choice([b"{", b"}", b"a", b"\"", b"\r\n", b"0", b" ", b"\xc3\xa9"])
                    for _ in range(rng.randint(0, 30)))
    framing = rng.random()
    if framing < 0.35 and body:
        cl = b"%d" % len(body)
        fields.append(b"Content-Length: " + cl)
        if rng.random() < 0.1:
            fields.append(b"content-length:" + cl + b" ")
        tail = body
    elif framing < 0.7 and version == b"HTTP/1.1":
        fields.append(b"Transfer-Encoding: " + rng.choice([b"chunked", b"Chunked"]))
        tail = chunked(rng, body)
    else:
        tail = b""
    if rng.random() < 0.15:
        fields.append(b"Connection: " + rng.choice([b"close", b"keep-alive", b"x, Close"]))
    if rng.random() < 0.1:
        fields.append(b"Expect: 100-continue")
    rng.shuffle(fields)
    return b"\r\n".join(lines + fields) + b"\r\n\r\n" + tail


PALETTE = b"\r\n \t:;,0aZ9\x00\x01\x7f\x80\xff/?%HhTtPp"


def damage(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        i = rng.randrange(len(data))
        op = rng.random()
        if op < 0.3:
            data[i] = rng.choice(PALETTE)
        elif op < 0.5:
            del data[i]
        elif op < 0.7:
            data.insert(i, rng.choice(PALETTE))
        elif op < 0.8:  # a CRLF loses its CR
            j = data.find(b"\r\n", i)
            if j >= 0:
                del data[j]
        elif op < 0.9:  # whitespace where it may or may not belong
            data[i:i] = rng.choice([b" ", b"\t", b"\r\n ", b" :", b"\r\n"])
        else:  # a line repeated
            j = data.find(b"\r\n", i)
            k = data.rfind(b"\r\n", 0, i)
            if j > k >= 0:
                data[j:j] = data[k:j]
    return bytes(data)


def stream(rng):
    data = b"".join(request(rng) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.05:
        data = b"\r\n" + data
    if rng.random() < 0.6:
        data = damage(rng, data)
    if rng.random() < 0.2:
        data = data[:rng.randint(0, len(data))]
    return data


# ---------------------------------------------------------------- the parsers

def h11_parse(data):
    """(requests, end, at) as wire_dump reports them."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
    if data:  # no bytes at all would tell h11 the stream ended
        conn.receive_data(data)
    reqs, cur, at = [], None, 0
    while True:
        try:
            ev = conn.next_event()
        except h11.RemoteProtocolError:
            return reqs, "refused", at
        if ev is h11.NEED_DATA:
            return reqs, "incomplete" if conn.trailing_data[0] or cur else "ok", at
        if isinstance(ev, h11.Request):
            cur = {"at": at, "method": bytes(ev.method), "target": bytes(ev.target),
                   "headers": [(bytes(n), bytes(v)) for n, v in ev.headers], "body": b""}
        elif isinstance(ev, h11.Data):
            cur["body"] += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            reqs.append(cur)
            cur = None
            at = len(data) - len(conn.trailing_data[0])
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE:
                return reqs, "closed", at
            conn.start_next_cycle()
        else:
            return reqs, "refused", at


def normalize(req):
    """Header fields as h11 gives them: names in lower case, a repeated
    identical Content-Length once, Transfer-Encoding's value in lower case."""
    out, seen_cl = [], False
    for n, v in req["headers"]:
        n = n.lower()
        if n == b"content-length":
            if seen_cl:
                continue
            seen_cl = True
        if n == b"transfer-encoding":
            v = v.lower()
        out.append((n, v))
    return dict(req, headers=out)


class Wallex:
    def __init__(self, exe):
        self.p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def parse(self, data):
        self.p.stdin.write(b"%d\n" % len(data) + data)
        self.p.stdin.flush()
        import json
        out = json.loads(self.p.stdout.readline())
        reqs = [{"at": r["at"], "method": bytes.fromhex(r["method"]),
                 "target": bytes.fromhex(r["target"]),
                 "headers": [(bytes.fromhex(n), bytes.fromhex(v)) for n, v in r["headers"]],
                 "body": bytes.fromhex(r["body"])} for r in out["requests"]]
        return reqs, out["end"], out["at"]

    def close(self):
        self.p.stdin.close()
        self.p.wait()


# ---------------------------------------------------------------- differences

# Which side refuses in each difference: where we refuse and h11 does not,
# or where h11 refuses and we do not. Any other disagreement (two different
# readings of one request, above all) is a failure.
WE_REFUSE = {"bare_lf", "bare_cr", "obs_fold", "ctl_in_field", "version", "target_form",
             "cl_list", "cl_and_te", "te_http10", "size_limits"}
THEY_REFUSE = {"leading_crlf", "chunk_bws", "early_refusal", "size_limits"}

REQUEST_LINE = re.compile(rb"(?:^|\n)([^\r\n ]*) ([^\r\n ]*) (HTTP/[0-9]\.[0-9])\r?\n")


def triggers(region):
    """The deliberate differences a stream's region shows."""
    found = set()
    if re.search(rb"(?<!\r)\n", region):
        found.add("bare_lf")
    if re.search(rb"\r(?!\n)", region):
        found.add("bare_cr")
    if re.search(rb"\n[ \t]", region):
        found.add("obs_fold")
    if region.startswith(b"\r\n") or region.startswith(b"\n"):
        found.add("leading_crlf")
    if re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", region):
        found.add("ctl_in_field")
    for m in REQUEST_LINE.finditer(region):
        if m.group(3) not in (b"HTTP/1.0", b"HTTP/1.1"):
            found.add("version")
        if not re.match(rb"/|(?i:https?)://[^/?@]+(?:[/?]|$)", m.group(2)):
            found.add("target_form")
    if re.search(rb"(?i)content-length:[^\r\n]*,", region):
        found.add("cl_list")
    if re.search(rb"(?i)\ncontent-length", region) and \
            re.search(rb"(?i)\ntransfer-encoding", region):
        found.add("cl_and_te")
    if b"HTTP/1.0" in region and re.search(rb"(?i)transfer-encoding", region):
        found.add("te_http10")
    if re.search(rb"\n[0-9a-fA-F]+[ \t]+;", region):
        found.add("chunk_bws")
    if re.search(rb"\n(?:0*[1-9a-fA-F][0-9a-fA-F]{8}|[0-9a-fA-F]{21})", region) or \
            len(region) > 16 * 1024:
        found.add("size_limits")
    if region[:1] and region[0] < 0x21:
        found.add("early_refusal")
    return found


def compare(data, ours, theirs):
    """None when the two agree, else why not and the bytes in question:
    from the end of the last request both read alike to where either side
    says the next one ends."""
    (r1, e1, a1), (r2, e2, a2) = ours, theirs
    r1 = [normalize(dict(r, at=0)) for r in r1]
    r2 = [normalize(dict(r, at=0)) for r in r2]
    n = 0
    while n < min(len(r1), len(r2)) and r1[n] == r2[n]:
        n += 1
    start = theirs[0][n]["at"] if len(r2) > n else a2
    ends = [side[0][n + 1]["at"] for side in (ours, theirs) if len(side[0]) > n + 1]
    start = (start, max(ends) if ends else len(data))
    if n < min(len(r1), len(r2)):
        why = "request %d differs:\n  ours   %r\n  theirs %r" % (n, r1[n], r2[n])
        return why, start, set()  # no difference excuses this
    if "closed" in (e1, e2) and (len(r1) == n and e1 == "closed" or len(r2) == n and
                                 e2 == "closed"):
        return None  # one side closed after the last request both read
    if len(r1) == len(r2) and e1 == e2:
        return None
    why = "%d requests and %s, h11 %d and %s" % (len(r1), e1, len(r2), e2)
    excuses = set()
    if len(r1) == n and e1 == "refused":
        excuses |= WE_REFUSE
    if len(r2) == n and e2 == "refused":
        excuses |= THEY_REFUSE
    return why, start, excuses


def main():
    exe = sys.argv[1]
    cases = int(os.environ.get("WALLEX_DIFF_CASES", "3000"))
    seed = int(os.environ.get("WALLEX_DIFF_SEED", "18"))
    rng = random.Random(seed)
    wallex = Wallex(exe)
    tally, agreed, accepted, failures = {}, 0, 0, []
    for case in range(cases):
        data = stream(rng)
        ours, theirs = wallex.parse(data), h11_parse(data)
        diff = compare(data, ours, theirs)
        accepted += len(ours[0])
        if diff is None:
            agreed += 1
            continue
        why, (start, end), excuses = diff
        found = triggers(data[start:end]) & excuses
        if not found and ours[1] == "refused" and theirs[1] == "incomplete" and \
                h11_parse(data + b"\r\n\r\n")[1] == "refused":
            found = {"refused_early"}
        if found:
            for k in found:
                tally[k] = tally.get(k, 0) + 1
            continue
        failures.append((case, why, data))
        if len(failures) >= 5:
            break
    wallex.close()
    print("seed %d: %d streams, %d agree exactly (%d requests read), differences by kind: %s"
          % (seed, cases, agreed, accepted,
             ", ".join("%s %d" % kv for kv in sorted(tally.items())) or "none"))
    for case, why, data in failures:
        print("FAIL case %d: %s\n  stream %r" % (case, why, data))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
