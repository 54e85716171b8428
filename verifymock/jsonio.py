"""JSON in and out: orjson for speed, the standard library for integers beyond 64 bits (valid JSON orjson refuses).

Whatever `loads` accepts, `dumps` can write back: the journal, the handsets and every list show what requests
brought in, so a value that cannot be written out again (a lone surrogate, nesting orjson refuses to write) is
refused at the door as malformed rather than stored to fail every later read.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# orjson writes at most 254 levels; what the mock shows wraps a body in a few more (journal → entry → request).
MAX_DEPTH = 200


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes) -> Any:
    """Parse strict JSON; raises ValueError (invalid UTF-8, a lone surrogate, syntax, NaN, nesting deeper than
    MAX_DEPTH)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as first:
        try:  # orjson refuses integers beyond 64 bits; nothing else it refuses is valid JSON
            value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
            # ... but the standard library takes lone surrogates (`"\ud800"`), which nothing can encode again
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):
            raise ValueError(str(first)) from first
    # only a body with that many brackets can be that deep, and counting them runs in C
    if (raw.count(b"[") + raw.count(b"{")) > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ValueError(f"nesting is deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in node if isinstance(child, dict | list))
    return deepest


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # text no UTF-8 can hold (a lone surrogate): written as escapes
        return json.dumps(value, separators=(",", ":")).encode("ascii")
