"""The one interface the engine keeps its state through, and the data that crosses it.

A unit of work is decided in memory and then committed as one `Changes`: the records put or deleted, each under the
version the decision read, their index entries, the timers scheduled and cancelled, the timer it consumed (if a
timer ran it), journal entries and meta values. A backend applies all of it or none of it. If a version moved, a
unique index entry is taken, or the consumed timer's claim was overtaken, it raises `Conflict`: the caller reads
again and decides again.

Every method is async, so that a networked backend is one more implementation. The file-backed one (sqlite.py)
answers from a local file and does not need to leave the event loop; a networked one awaits its server.

Indexes are named lists of record ids under a value ("call.number" -> "+13035550100" -> its call ids). A record's
entries are given with each put and replace the ones it had; a deleted record loses its entries. An entry marked
unique may be held by one record only: that is how a rule such as "one pending DTMF confirmation per number" holds
across processes.

Timers are due on the simulated clock. A claim leases due timers on real time and bumps each one's fence, so when a
process dies holding a lease another takes the timer once the lease runs out, and the late process's commit (its
`consume` names the fence it saw) is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from verifymock.clock import Timer
from verifymock.errors import ConfigError
from verifymock.journal import Entry

Key = tuple[str, str]  # (kind, id)
Data = dict[str, Any]


class Conflict(Exception):
    """A commit was refused and nothing of it was written: read again and decide again."""


class Record(NamedTuple):
    kind: str
    id: str
    version: int  # 1 when created, one more for every put
    data: Data
    seq: int  # creation order across all kinds: a scan's cursor


class IndexEntry(NamedTuple):
    name: str
    value: str
    unique: bool = False


@dataclass
class Put:
    text: str  # the record's data as JSON
    indexes: tuple[IndexEntry, ...] | None = ()  # its entries from now on, replacing any it had; None: as they were


@dataclass(frozen=True)
class Claimed:
    """A due timer leased to one process: `fence` tells its commit from that of a process whose lease ran out."""

    timer: Timer
    fence: int


@dataclass
class Changes:
    """One unit of work."""

    expect: dict[Key, int] = field(default_factory=dict)  # the version read; 0: absent. A key not here is not checked
    put: dict[Key, Put] = field(default_factory=dict)
    delete: set[Key] = field(default_factory=set)
    schedule: list[Timer] = field(default_factory=list)
    cancel: set[str] = field(default_factory=set)
    consume: Claimed | None = None
    journal: list[Entry] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # a named lease (name, token) the committing process must still hold: one process decides at a time, and one
    # that stalled past its lease cannot write over what the next holder decided
    term: tuple[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(
            self.put or self.delete or self.schedule or self.cancel or self.consume or self.journal or self.meta
        )

    def merge(self, later: Changes) -> None:
        """Add a later unit of work to this one (one not yet written): what it writes wins; the versions checked
        stay the ones first read, which is what the store still holds."""
        for key, version in later.expect.items():
            self.expect.setdefault(key, version)
        for key, put in later.put.items():
            self.delete.discard(key)
            self.put[key] = put
        for key in later.delete:
            self.put.pop(key, None)
            self.delete.add(key)
        scheduled = {t.id for t in later.schedule}
        self.cancel = (self.cancel - scheduled) | later.cancel
        self.schedule = [t for t in self.schedule if t.id not in later.cancel] + later.schedule
        self.consume = later.consume or self.consume
        self.journal += later.journal
        self.meta.update(later.meta)
        self.term = later.term or self.term

    def feed_keys(self) -> list[Key]:
        """What a commit names in the change feed: the records it put or deleted, and ("timer", id),
        ("meta", name) and ("journal", last id) for the timers, meta values and journal entries it wrote."""
        keys: list[Key] = [*self.put, *self.delete]
        keys += [("timer", t.id) for t in self.schedule] + [("timer", i) for i in self.cancel]
        if self.consume is not None:
            keys.append(("timer", self.consume.timer.id))
        keys += [("meta", name) for name in self.meta]
        if self.journal:
            keys.append(("journal", str(self.journal[-1].id)))
        return keys


@dataclass
class Loaded:
    """What a store holds, as a start-up reads it."""

    meta: dict[str, Any] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)  # oldest first
    timers: list[Timer] = field(default_factory=list)
    journal: list[Entry] = field(default_factory=list)


class Store(Protocol):
    """What the engine asks of a store. In memory mode there is none: the engine's own dicts and heap are the
    state, and it lasts as long as the process."""

    location: str
    shared: bool  # other processes may commit to it too (the engine then decides under the term, term.py)

    async def load(self, journal_size: int) -> Loaded:
        """Meta, every record, every timer and the newest `journal_size` entries."""
        ...

    async def get_many(self, keys: list[Key]) -> dict[Key, Record]:
        """The records that exist among `keys`."""
        ...

    async def scan(self, kind: str, *, after: int = 0, limit: int = 100) -> list[Record]:
        """Records of one kind created after the cursor `after` (a record's seq), oldest first."""
        ...

    async def ids(self, kind: str, *, after: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        """`scan` without the data: each record's (seq, id). Retention finds what to delete by it."""
        ...

    async def index(self, name: str, value: str, *, limit: int = 100) -> list[str]:
        """The ids under an index value, the newest entry first."""
        ...

    async def commit(self, changes: Changes, journal_size: int) -> int:
        """Apply one unit of work atomically, keeping the newest `journal_size` journal entries. Raises Conflict.
        Returns the change feed's number for it (0 if it changed nothing the feed names, or the store keeps no
        feed: a SQLite file one server holds for itself, where no other process would read it)."""
        ...

    async def claim_due(self, now: float, *, limit: int, lease_s: float) -> list[Claimed]:
        """Lease up to `limit` timers due at `now` (simulated), in due order, that nobody holds a live lease on."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest timer is due (simulated time), leased or not."""
        ...

    async def timers(self) -> list[Timer]: ...

    async def get_timers(self, ids: list[str]) -> dict[str, Timer]:
        """The timers that exist among `ids`."""
        ...

    async def meta(self) -> dict[str, Any]: ...

    async def acquire(self, name: str, ttl_s: float) -> str | None:
        """A named lease on real time (the clock's advance, one at a time across processes): its token, or None if
        another holder's lease is live."""
        ...

    async def renew(self, name: str, token: str, ttl_s: float) -> bool:
        """Extend a lease still held; False if it had run out and someone else took it."""
        ...

    async def release(self, name: str, token: str) -> bool:
        """Give back a lease; False if it had run out and someone else took it."""
        ...

    async def journal(self, *, after: int = 0, limit: int = 100) -> list[Entry]: ...

    async def feed(self, after: int | None, *, limit: int = 1000) -> tuple[int, list[tuple[int, list[Key]]]]:
        """The commits after the cursor, each as its number and the keys it changed (`Changes.feed_keys`), and
        the cursor to ask from next (None: from now on). Numbers follow one another, so a first number beyond
        `after + 1` means the feed no longer holds what came between (it keeps the last ten thousand or so)."""
        ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...


async def changes_since(store: Store, cursor: int | None, *, poll_s: float = 0.25) -> AsyncIterator[list[Key]]:
    """A store's change feed as a stream, for the web page: each batch of keys as commits land (None: from now)."""
    if cursor is None:
        cursor, _ = await store.feed(None)
    while True:
        cursor, rows = await store.feed(cursor)
        if rows:
            yield list(dict.fromkeys(key for _, keys in rows for key in keys))
        else:
            await asyncio.sleep(poll_s)


def check_store_spec(spec: str) -> None:
    kind, _, rest = spec.partition(":")
    if spec != "memory" and not (kind == "sqlite" and rest) and kind not in REDIS_SCHEMES:
        raise ConfigError(
            "--state",
            spec,
            "is not a state store",
            "use memory, sqlite:PATH (e.g. sqlite:mock.db) or redis://HOST:PORT/DB (e.g. redis://127.0.0.1:6379/0)",
        )


REDIS_SCHEMES = ("redis", "rediss", "unix")
DAMAGED = "start with a new file, or move the damaged one aside"  # the fix for a state file that cannot be read


def open_store(spec: str, *, worker: bool = False) -> Store | None:
    """None for `memory` (nothing is kept beyond the engine's own dicts), else the store `spec` names. A worker of
    `serve --workers` shares a SQLite file with the other workers (their supervisor holds its lock)."""
    check_store_spec(spec)
    if spec == "memory":
        return None
    if spec.partition(":")[0] in REDIS_SCHEMES:
        from verifymock.state.redis import RedisStore

        return RedisStore(spec)
    from verifymock.state.sqlite import SqliteStore

    return SqliteStore(Path(spec.partition(":")[2]), shared=worker)
