"""Hypothesis strategies from the JSON Schemas of docs/openapi.yaml: values
the document allows (types, enums, patterns, lengths, bounds, required and
optional members), number literals by x-json-literal, and a JSON writer
that sends those literals as they are."""
import decimal
import json

from hypothesis import strategies as st

from oas import Literal


class Raw:
    """A JSON number sent as this exact literal."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def dumps(v):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    return json.dumps(v)


class Strategies:
    def __init__(self, doc, array_max=4):
        self.doc = doc
        self.array_max = array_max

    def of(self, schema):
        doc = self.doc
        if "$ref" in schema:
            return self.of(doc.deref(schema))
        if "allOf" in schema:
            parts = schema["allOf"]
            base = self.of(parts[0])
            rest = [p for p in parts[1:]]
            return base.filter(lambda v: all(not doc.validate(p, v) for p in rest))
        if "oneOf" in schema or "anyOf" in schema:
            branches = schema.get("oneOf") or schema.get("anyOf")
            return st.one_of([self.of(b) for b in branches])
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        t = schema.get("type")
        if isinstance(t, list):
            return st.one_of([self.of(dict(schema, type=x)) for x in t])
        if t == "null":
            return st.none()
        if t == "boolean":
            return st.booleans()
        if t == "integer":
            lo, hi = schema.get("minimum", -2 ** 63), schema.get("maximum", 2 ** 63 - 1)
            # The bounds, and values near them, more often than chance.
            return st.one_of(st.sampled_from(sorted({lo, hi, min(lo + 1, hi), max(hi - 1, lo)})),
                             st.integers(lo, hi))
        if t == "number":
            return self.number(schema)
        if t == "string":
            return self.string(schema)
        if t == "array":
            items = self.of(schema.get("items", {}))
            lo = schema.get("minItems", 0)
            hi = min(schema.get("maxItems", self.array_max), max(lo, self.array_max))
            return st.lists(items, min_size=lo, max_size=hi,
                            unique_by=(lambda x: json.dumps(x, default=str))
                            if schema.get("uniqueItems") else None)
        if t == "object" or "properties" in schema:
            return self.obj(schema)
        return st.just({})

    def number(self, schema):
        pattern = schema.get("x-json-literal", r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,4})?$")

        def ok(text):
            v = decimal.Decimal(text)
            if "minimum" in schema and v < schema["minimum"]:
                return False
            if "exclusiveMinimum" in schema and v <= schema["exclusiveMinimum"]:
                return False
            return "maximum" not in schema or v <= schema["maximum"]
        return st.from_regex(pattern, fullmatch=True).filter(ok).map(Raw)

    def string(self, schema):
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if "pattern" in schema:
            s = st.from_regex(schema["pattern"], fullmatch=True)
        else:
            s = st.text(min_size=lo, max_size=min(hi or 32, 64))
        return s.filter(lambda x: lo <= len(x) and (hi is None or len(x) <= hi) and
                        not self.doc.validate(schema, x))

    def obj(self, schema):
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: self.of(v) for k, v in props.items() if k in required}
        optional = {k: self.of(v) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(fixed, optional=optional)


def is_number(v):
    return isinstance(v, (Raw, int, float, decimal.Decimal, Literal)) and not isinstance(v, bool)
