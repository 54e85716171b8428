"""The request journal: every request the mock received, newest last, bounded."""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from verifymock import jsonio

DEFAULT_SIZE = 10_000
JOURNAL_BODY_LIMIT = 64 * 1024  # bytes of each body kept: a full journal of 1 MiB bodies would hold gigabytes
_DIGITS = re.compile(r"\D")
_PHONE_LIKE = re.compile(r"\+?\d[\d() .-]{4,}\d")


@dataclass
class Entry:
    id: int
    at: str
    method: str
    path: str
    query: str
    operation_id: str | None
    vendor: str | None
    status: int
    request_headers: dict[str, str]
    request_raw: bytes
    response_raw: bytes
    duration_ms: float
    touched: list[str] = field(default_factory=list)

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
            "request": {"headers": self.request_headers, "body": self.request_body},
            "response": {"body": decode_body(self.response_raw, "json")},
            "duration_ms": round(self.duration_ms, 3),
            "touched": self.touched,
        }

    @property
    def request_body(self) -> Any:
        return decode_body(self.request_raw, self.request_headers.get("content-type", ""))

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


class Journal:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: deque[Entry] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self.unsaved: list[Entry] | None = None  # entries a durable store has yet to write; None: nothing kept

    def restore(self, entries: list[Entry]) -> None:
        self._entries.extend(entries)
        self._ids = itertools.count((entries[-1].id + 1) if entries else 1)

    def take_unsaved(self) -> list[Entry]:
        entries, self.unsaved = self.unsaved or [], ([] if self.unsaved is not None else None)
        return entries

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, entry: Entry) -> None:
        self._entries.append(entry)
        if self.unsaved is not None:
            self.unsaved.append(entry)

    def clear(self) -> None:
        self._entries.clear()
        if self.unsaved is not None:
            self.unsaved.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def find(
        self, *, operation_id: str | None = None, vendor: str | None = None, phone_number: str | None = None
    ) -> list[Entry]:
        digits = _DIGITS.sub("", phone_number) if phone_number else ""
        return [
            e
            for e in self._entries
            if (operation_id is None or e.operation_id == operation_id)
            and (vendor is None or e.vendor == vendor)
            and (not digits or e.mentions_number(digits))
        ]
