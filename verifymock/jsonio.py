"""JSON in and out: orjson for speed, the standard library for integers beyond 64 bits (valid JSON orjson refuses)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes) -> Any:
    """Parse strict JSON; raises ValueError (invalid UTF-8, syntax, NaN, nesting deeper than 1,024)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as first:
        try:  # orjson refuses integers beyond 64 bits; nothing else it refuses is valid JSON
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise ValueError(str(first)) from first


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
