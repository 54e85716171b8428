"""Response bodies built from a spec, for operations that have no hand-written handler.

The spec author's own examples come first (the media type's `example` or `examples`, then the schema's);
otherwise an instance is assembled from the schema, preferring each property's example, and strings with a
`pattern` get the simplest match hypothesis can find. The result is checked by the caller against the spec.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = Any
_MAX_DEPTH = 12
_FORMATS: dict[str, str] = {
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}


def resolve(doc: dict[str, JSON], node: JSON) -> JSON:
    """Follow local `$ref`s until a node that is not a reference."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and isinstance(node["$ref"], str):
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 50:
            return {}
        target: JSON = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, seen = target, seen + 1
    return node


def example_body(doc: dict[str, JSON], media: dict[str, JSON]) -> JSON:
    """The body for one media type object of a response."""
    if "example" in media:
        return copy.deepcopy(media["example"])
    for example in (media.get("examples") or {}).values():
        example = resolve(doc, example)
        if isinstance(example, dict) and "value" in example:
            return copy.deepcopy(example["value"])
    return instance_of(doc, media.get("schema", {}))


def instance_of(doc: dict[str, JSON], schema: JSON, depth: int = 0) -> JSON:
    schema = resolve(doc, schema)
    if schema is True or not isinstance(schema, dict):
        return None if schema is False else {}
    for key in ("example", "const", "default"):
        if key in schema:
            return copy.deepcopy(schema[key])
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return copy.deepcopy(schema["examples"][0])
    if schema.get("enum"):
        return copy.deepcopy(schema["enum"][0])
    if "allOf" in schema:
        merged: JSON = {}
        for part in schema["allOf"]:
            value = instance_of(doc, part, depth + 1)
            if isinstance(value, dict) and isinstance(merged, dict):
                merged.update(value)
            else:
                merged = value
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        extra = instance_of(doc, rest, depth + 1) if rest.get("properties") else None
        if isinstance(merged, dict) and isinstance(extra, dict):
            merged.update(extra)
        return merged
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return instance_of(doc, schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string" if "pattern" in schema else None
    return _of_type(doc, schema, kind, depth)


def _of_type(doc: dict[str, JSON], schema: dict[str, JSON], kind: str | None, depth: int) -> JSON:
    if kind == "object":
        if depth > _MAX_DEPTH:
            return {}
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        return {
            name: instance_of(doc, sub, depth + 1)
            for name, sub in properties.items()
            if name in required or depth < _MAX_DEPTH // 2
        }
    if kind == "array":
        if schema.get("maxItems") == 0 or depth > _MAX_DEPTH:
            return []
        count = max(1, int(schema.get("minItems", 1)))
        return [instance_of(doc, schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return {}


def _number(schema: dict[str, JSON], kind: str) -> int | float:
    """The lowest value the bounds allow (3.0 boolean or 3.1 numeric exclusive bounds), kept under the maximum."""
    exclusive_low = schema.get("exclusiveMinimum")
    low = schema.get("minimum", 0)
    if isinstance(exclusive_low, bool):
        value = low + 1 if exclusive_low else low
    elif isinstance(exclusive_low, (int, float)):
        value = max(low, exclusive_low + 1) if "minimum" in schema else exclusive_low + 1
    else:
        value = low
    high = schema.get("maximum")
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
        value = (value - 1 + high) / 2 if kind == "number" else high
    return int(value) if kind == "integer" else float(value)


def _string(schema: dict[str, JSON]) -> str:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, 1) + 64))
    if "pattern" in schema:
        # imported here: hypothesis costs ~90 ms at start-up and most specs never need it
        from hypothesis import find, settings
        from hypothesis import strategies as st

        try:
            found = find(
                st.from_regex(schema["pattern"]),
                lambda s: low <= len(s) <= high,
                settings=settings(database=None, derandomize=True, max_examples=500),
            )
            return str(found)
        except Exception:  # no match found, or an unusual pattern: the self-check reports what is wrong
            pass
    value = _FORMATS.get(str(schema.get("format")), "string")
    if len(value) < low:
        value = value + "x" * (low - len(value))
    return value[:high] if len(value) > high else value
