"""The request journal: every request the mock received, newest last, bounded."""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from verifymock import jsonio

DEFAULT_SIZE = 10_000
JOURNAL_BODY_LIMIT = 64 * 1024  # bytes of each body kept: a full journal of 1 MiB bodies would hold gigabytes
_DIGITS = re.compile(r"\D")
_PHONE_LIKE = re.compile(r"\+?\d[\d() .-]{4,}\d")


class Entry(NamedTuple):
    """One exchange, every field a string, bytes, number or tuple of strings."""

    id: int
    at: str
    method: str
    path: str
    query: str
    operation_id: str | None
    vendor: str | None
    status: int
    request_headers: tuple[tuple[str, str], ...]
    request_raw: bytes
    response_raw: bytes
    duration_ms: float
    touched: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "operation_id": self.operation_id,
            "vendor": self.vendor,
            "status_code": self.status,
            "request": {"headers": dict(self.request_headers), "body": self.request_body},
            "response": {"body": decode_body(self.response_raw, "json")},
            "duration_ms": round(self.duration_ms, 3),
            "touched": list(self.touched),
        }

    @property
    def request_body(self) -> Any:
        return decode_body(self.request_raw, dict(self.request_headers).get("content-type", ""))

    def mentions_number(self, digits: str) -> bool:
        """Whether the phone number appears in the path, query or body, with or without + or %2B."""
        haystack = f"{self.path} {self.query} {self.request_body}".replace("%2B", "+").replace("%2b", "+")
        return any(_DIGITS.sub("", token) == digits for token in _PHONE_LIKE.findall(haystack))


def decode_body(raw: bytes, content_type: str) -> Any:
    """A body as the journal shows it: parsed when it is JSON, text otherwise, None when empty."""
    if not raw:
        return None
    if len(raw) > JOURNAL_BODY_LIMIT:
        return raw[:JOURNAL_BODY_LIMIT].decode("utf-8", "replace") + f"… (truncated at {JOURNAL_BODY_LIMIT} bytes)"
    if "json" in content_type:
        try:
            return jsonio.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _row(entry: Entry) -> tuple[Any, ...]:
    return (entry.id, datetime.fromisoformat(entry.at).timestamp(), *entry[2:])


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(row[0], datetime.fromtimestamp(row[1], UTC).isoformat(), *row[2:])


class Journal:
    """Entries are kept as plain tuples, their time as a Unix time. The cyclic garbage collector stops tracking a
    plain tuple of strings, bytes, numbers and such tuples after a collection or two, so a full journal costs a full
    collection nothing; 10,000 tracked entries made up a third of each one's pause under load (measured: 17 of 48 ms).
    Building an `Entry` and formatting its time are left to whoever reads it: together they cost 3.5 µs a request,
    a sixteenth of a GET under load."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self.unsaved: list[Entry] | None = None  # entries a durable store has yet to write; None: nothing kept

    def restore(self, entries: list[Entry]) -> None:
        self._entries.extend(map(_row, entries))
        self._ids = itertools.count((entries[-1].id + 1) if entries else 1)

    def take_unsaved(self) -> list[Entry]:
        entries, self.unsaved = self.unsaved or [], ([] if self.unsaved is not None else None)
        return entries

    def add(
        self,
        at: float,
        method: str,
        path: str,
        query: str,
        operation_id: str | None,
        vendor: str | None,
        status: int,
        request_headers: tuple[tuple[str, str], ...],
        request_raw: bytes,
        response_raw: bytes,
        duration_ms: float,
        touched: tuple[str, ...],
    ) -> None:
        """Keep one exchange, numbered next; the fields are those of `Entry` after its id, in its order, but `at` is
        a Unix time."""
        row = (
            next(self._ids), at, method, path, query, operation_id, vendor, status,
            request_headers, request_raw, response_raw, duration_ms, touched,
        )  # fmt: skip
        self._entries.append(row)
        if self.unsaved is not None:
            self.unsaved.append(_entry(row))

    def clear(self) -> None:
        self._entries.clear()
        if self.unsaved is not None:
            self.unsaved.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return map(_entry, self._entries)

    def find(
        self, *, operation_id: str | None = None, vendor: str | None = None, phone_number: str | None = None
    ) -> list[Entry]:
        digits = _DIGITS.sub("", phone_number) if phone_number else ""
        return [
            e
            for e in self
            if (operation_id is None or e.operation_id == operation_id)
            and (vendor is None or e.vendor == vendor)
            and (not digits or e.mentions_number(digits))
        ]
