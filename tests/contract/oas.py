"""docs/openapi.yaml as a checker: which operation a request is, and
whether an answer is one the document allows (status, headers, media type,
body schema). Everything comes from the document: JSON Schema 2020-12 for
bodies and parameters (python3-jsonschema), plus the document's one
extension keyword, x-json-literal, the grammar of a JSON number's literal
(no exponent, fraction digits) that JSON Schema cannot say."""
import decimal
import json
import os
import re
import urllib.parse

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "openapi.yaml")
METHODS = ("get", "head", "post", "put", "delete", "patch")


class Literal(decimal.Decimal):
    """A JSON number with a fraction or exponent, keeping its literal text."""
    text = None


def parse_literal(s):
    v = Literal(s)
    v.text = s
    return v


def loads(payload):
    """JSON with number literals kept (x-json-literal checks them)."""
    return json.loads(payload, parse_float=parse_literal)


def _json_literal(validator, pattern, instance, schema):
    if isinstance(instance, bool) or not isinstance(instance, (int, decimal.Decimal, float)):
        return
    text = instance.text if isinstance(instance, Literal) else (
        str(instance) if isinstance(instance, int) else repr(instance))
    if not re.fullmatch(pattern, text):
        yield jsonschema.ValidationError("number literal %r does not match x-json-literal %r"
                                         % (text, pattern))


def _is_number(checker, instance):
    return isinstance(instance, (int, float, decimal.Decimal)) and not isinstance(instance, bool)


def _is_integer(checker, instance):
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    return isinstance(instance, decimal.Decimal) and instance == instance.to_integral_value() \
        and not isinstance(instance, Literal)


_types = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"number": _is_number, "integer": _is_integer})
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                         {"x-json-literal": _json_literal}, type_checker=_types)


class Operation:
    def __init__(self, doc, template, method, op, path_item):
        self.doc = doc
        self.template = template
        self.method = method
        self.op = op
        self.id = op.get("operationId")
        params = list(path_item.get("parameters", [])) + list(op.get("parameters", []))
        self.params = [doc.deref(p) for p in params]
        rb = op.get("requestBody")
        self.body = doc.deref(rb) if rb else None
        self.responses = {k: doc.deref(v) for k, v in op.get("responses", {}).items()}
        # The operation's security, else the document's: a requirement that
        # names a scheme means a token is needed ("security: []" is open).
        security = op.get("security", doc.raw.get("security", []))
        self.secured = any(req for req in security)

    def param(self, where, name):
        for p in self.params:
            if p["in"] == where and p["name"].lower() == name.lower():
                return p
        return None

    def body_schema(self):
        if self.body is None:
            return None
        return self.body["content"]["application/json"]["schema"]

    def problems_codes(self, status):
        """The problem codes the document allows with this status here."""
        r = self.responses.get(str(status))
        if r is None:
            return set()
        schema = r.get("content", {}).get("application/problem+json", {}).get("schema")
        if schema is None:
            return set()
        for part in schema.get("allOf", []):
            enum = part.get("properties", {}).get("code", {}).get("enum")
            if enum:
                return set(enum)
        return set()


class Document:
    def __init__(self, path=DOC):
        with open(path) as f:
            self.raw = yaml.safe_load(f)
        self.resolver = jsonschema.RefResolver.from_schema(self.raw)
        self.ops = []
        self.paths = []
        # Literal paths before templated ones: /orders/statistics is not an id.
        for template, item in sorted(self.raw["paths"].items(),
                                     key=lambda kv: (kv[0].count("{"), kv[0])):
            names = re.findall(r"\{(\w+)\}", template)
            rx = re.compile("^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + "$")
            ops = {}
            for m in METHODS:
                if m in item:
                    ops[m.upper()] = Operation(self, template, m.upper(), item[m], item)
                    self.ops.append(ops[m.upper()])
            self.paths.append((template, rx, names, ops))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target = self.raw
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def schema(self, name):
        return self.raw["components"]["schemas"][name]

    def validate(self, schema, instance):
        """The errors of instance against a schema of this document."""
        v = Validator(schema, resolver=self.resolver)
        return ["%s at %s" % (e.message[:300], "/".join(str(p) for p in e.absolute_path))
                for e in v.iter_errors(instance)]

    def match(self, path):
        """(template, path params, {METHOD: Operation}) or None."""
        raw_path = path.split("?", 1)[0]
        for template, rx, names, ops in self.paths:
            m = rx.match(raw_path)
            if m:
                params = {n: urllib.parse.unquote(v) for n, v in zip(names, m.groups())}
                return template, params, ops
        return None

    # ---- answers ----

    def check_response(self, method, path, status, headers, payload):
        """Violations of the document by one answer (an empty list if none).
        headers: lower-cased names."""
        found = self.match(path)
        if found is None:
            return self._check_problem(None, status, headers, payload, 404, {"not_found"})
        template, _, ops = found
        if method not in ops:
            if method not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE",
                              "CONNECT", "PATCH"):
                expect = ("501", {"not_implemented"})
            else:
                expect = ("405", {"method_not_allowed"})
            # Any operation of the path says what its 405 and 501 look like.
            op = next(iter(ops.values()))
            out = self._check(op, "GET", status, headers, payload)
            if str(status) != expect[0]:
                out.append("%s %s: %d, want %s for a method the path does not have"
                           % (method, template, status, expect[0]))
            if status == 405:
                allow = headers.get("allow", "")
                have = set(a.strip() for a in allow.split(","))
                if have != set(ops):
                    out.append("405 Allow %r, the document has %s" % (allow, sorted(ops)))
            return out
        return self._check(ops[method], method, status, headers, payload)

    def _check_problem(self, op, status, headers, payload, want_status, codes):
        out = []
        if status != want_status:
            out.append("unknown path: %d, want %d" % (status, want_status))
        body = self._json(headers, payload, "application/problem+json", out)
        if body is not None:
            out += self.validate({"$ref": "#/components/schemas/Problem"}, body)
            if body.get("code") not in codes:
                out.append("code %r, want one of %s" % (body.get("code"), sorted(codes)))
        return out

    def _json(self, headers, payload, media, out):
        ct = headers.get("content-type", "")
        if ct.split(";")[0].strip().lower() != media:
            out.append("content-type %r, want %s" % (ct, media))
            return None
        try:
            return loads(payload)
        except ValueError as e:
            out.append("body is not JSON: %s %r" % (e, payload[:200]))
            return None

    def _check(self, op, method, status, headers, payload):
        out = []
        where = "%s %s -> %d" % (method, op.template, status)
        r = op.responses.get(str(status)) or op.responses.get("%dXX" % (status // 100)) \
            or op.responses.get("default")
        if r is None:
            return ["%s: status not in the document (%s)" % (where, sorted(op.responses))]
        for name, h in r.get("headers", {}).items():
            h = self.deref(h)
            value = headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    out.append("%s: required header %s missing" % (where, name))
                continue
            errs = self.validate(h["schema"], value)
            out += ["%s: header %s: %s" % (where, name, e) for e in errs]
        content = r.get("content")
        if method == "HEAD" or status == 204 or not content:
            if method != "HEAD" and not content and payload:
                out.append("%s: a body the document does not describe: %r" % (where, payload[:100]))
            if method == "HEAD" and payload:
                out.append("%s: HEAD answered with a body" % where)
            return out
        ct = headers.get("content-type", "")
        media = ct.split(";")[0].strip().lower()
        mt = content.get(media) or content.get(ct)
        if mt is None:
            return out + ["%s: content-type %r, the document has %s" % (where, ct, sorted(content))]
        schema = mt.get("schema")
        if media.endswith("json"):
            try:
                body = loads(payload)
            except ValueError as e:
                return out + ["%s: body is not JSON: %s" % (where, e)]
        else:
            body = payload.decode("utf-8", "replace")
        if schema is not None:
            out += ["%s: %s" % (where, e) for e in self.validate(schema, body)]
        return out
