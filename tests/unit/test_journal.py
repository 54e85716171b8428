"""The journal keeps rows with a Unix time and gives them back as entries stamped in ISO 8601."""

from __future__ import annotations

import time
from datetime import datetime

from verifymock.journal import Entry, Journal


def _add(journal: Journal, at: float, path: str) -> None:
    journal.add(at, "POST", path, "a=1", "op", "telnyx", 200, (("x-trace", "t"),), b"{}", b"[]", 1.5, ("id-1",), None)


def test_entries_are_read_back_whole_with_their_time_in_iso_8601() -> None:
    journal = Journal(size=2)
    before = time.time()
    for number in range(3):
        _add(journal, time.time(), f"/v2/{number}")
    after = time.time()

    entries = list(journal)

    assert [(e.id, e.path) for e in entries] == [(2, "/v2/1"), (3, "/v2/2")]  # bounded, oldest dropped
    first = entries[0]
    assert first[2:] == (
        "POST",
        "/v2/1",
        "a=1",
        "op",
        "telnyx",
        200,
        (("x-trace", "t"),),
        b"{}",
        b"[]",
        1.5,
        ("id-1",),
        None,
    )
    stamp = datetime.fromisoformat(first.at)
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert before <= stamp.timestamp() <= after
    assert first.to_json()["at"] == first.at


def test_a_restored_journal_gives_back_the_same_entries_and_counts_on() -> None:
    journal = Journal()
    journal.unsaved = []  # as with a durable store: what it has yet to write
    for at in (1_795_000_000.000001, 1_795_000_000.999999, 1_795_000_123.5):
        _add(journal, at, "/v2/x")
    saved = journal.take_unsaved()
    assert [type(e) for e in saved] == [Entry] * 3
    assert [e.at for e in saved] == [
        "2026-11-18T11:06:40.000001+00:00",
        "2026-11-18T11:06:40.999999+00:00",
        "2026-11-18T11:08:43.500000+00:00",
    ]

    restored = Journal()
    restored.restore(saved)
    _add(restored, 1_795_000_200.0, "/v2/y")

    assert list(restored)[:3] == saved  # every field, the time to the microsecond
    assert [e.id for e in restored] == [1, 2, 3, 4]


def test_journal_is_bounded_by_bytes_as_well_as_entries() -> None:
    journal = Journal(size=1000, max_bytes=300_000)
    for number in range(10):
        journal.add(time.time(), "POST", f"/v2/{number}", "", None, None, 200, (), b"x" * 65_536, b"", 1.0, ())
    assert [e.path for e in journal] == ["/v2/6", "/v2/7", "/v2/8", "/v2/9"]  # four of 64 KiB fit in 300,000 bytes
    journal.clear()
    journal.add(time.time(), "GET", "/small", "", None, None, 200, (), b"", b"", 1.0, ())
    assert [e.path for e in journal] == ["/small"]  # what the dropped entries held is no longer counted


def test_journal_pages_from_the_newest_end() -> None:
    journal = Journal()
    for number in range(10):
        _add(journal, time.time(), f"/v2/{number}")
    assert [e.id for e in journal.find(limit=3)] == [8, 9, 10]
    assert [e.id for e in journal.find(limit=3, before=8)] == [5, 6, 7]
    assert [e.id for e in journal.find(limit=3, before=2)] == [1]
