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
DEFAULT_BYTES = 64 * 1024 * 1024  # what all entries may hold together (bodies and headers)
ENTRY_OVERHEAD = 256  # bytes an entry costs beyond its bodies and headers, roughly
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
    dropped: str | None = None  # a connection fault ate the answer: "close" (nothing sent) or "reset" (half sent)

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
            "response": {"body": decode_body(self.response_raw, "json"), "dropped": self.dropped},
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

    def __init__(self, size: int = DEFAULT_SIZE, max_bytes: int = DEFAULT_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._entries: deque[tuple[Any, ...]] = deque()
        self._weights: deque[int] = deque()  # bytes each entry holds, beside it
        self._bytes = 0
        self._ids = itertools.count(1)
        self.unsaved: list[Entry] | None = None  # entries a durable store has yet to write; None: nothing kept

    def restore(self, entries: list[Entry]) -> None:
        for row in map(_row, entries):
            self._keep(row)
        self._ids = itertools.count((entries[-1].id + 1) if entries else 1)

    @property
    def last_id(self) -> int:
        return int(self._entries[-1][0]) if self._entries else 0

    def _keep(self, row: tuple[Any, ...]) -> None:
        """Append, then drop the oldest while there are more than `size` entries or they hold more than `max_bytes`
        (each entry may hold 64 KiB of each body and the headers: by count alone, 10,000 of them could be 2 GB)."""
        weight = ENTRY_OVERHEAD + len(row[9]) + len(row[10]) + sum(len(k) + len(v) for k, v in row[8])
        self._entries.append(row)
        self._weights.append(weight)
        self._bytes += weight
        while self._entries and (len(self._entries) > self.size or self._bytes > self.max_bytes):
            self._entries.popleft()
            self._bytes -= self._weights.popleft()

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
        dropped: str | None = None,
    ) -> None:
        """Keep one exchange, numbered next; the fields are those of `Entry` after its id, in its order, but `at` is
        a Unix time."""
        row = (
            next(self._ids), at, method, path, query, operation_id, vendor, status,
            request_headers, request_raw, response_raw, duration_ms, touched, dropped,
        )  # fmt: skip
        self._keep(row)
        if self.unsaved is not None:
            self.unsaved.append(_entry(row))

    def clear(self) -> None:
        self._entries.clear()
        self._weights.clear()
        self._bytes = 0
        if self.unsaved is not None:
            self.unsaved.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return map(_entry, self._entries)

    def find(
        self,
        *,
        operation_id: str | None = None,
        vendor: str | None = None,
        phone_number: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[Entry]:
        """The newest `limit` matching entries older than entry `before`, oldest first. Read from the newest end,
        so a page costs what it holds, not what the journal holds."""
        digits = _DIGITS.sub("", phone_number) if phone_number else ""
        found: list[Entry] = []
        for row in reversed(self._entries):
            if limit is not None and len(found) >= limit:
                break
            if (before is not None and row[0] >= before) or (operation_id is not None and row[5] != operation_id):
                continue
            if vendor is not None and row[6] != vendor:
                continue
            entry = _entry(row)
            if not digits or entry.mentions_number(digits):
                found.append(entry)
        found.reverse()
        return found
