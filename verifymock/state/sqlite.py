"""`--state sqlite:PATH`: the engine's state in one SQLite file, behind the store interface (store.py).

The file holds data only: a row per record (kind, id, version, JSON), its index entries, a row per timer with its
lease and fence, the journal's entries, one row per commit for the change feed (when workers share the file), named
leases and a few meta values (the clock, the signing key, the next ids, the schema number). One `BEGIN IMMEDIATE`
transaction per commit writes what changed, so its cost is that of the change, not of everything kept. WAL with
`synchronous=NORMAL`: a commit survives the process being killed; a power cut may take the last few. Each call is a
short local read or write, made on the event loop; the WAL is copied into the file by a thread of the store's own
(`_Checkpointer`).

The schema is numbered. At start-up, migrations bring an older file forward one number at a time; a file newer
than this code is refused with the fix. A file is served by one process at a time (an flock on PATH.lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import pickle
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import orjson

from verifymock import __version__, jsonio
from verifymock.clock import Timer
from verifymock.errors import ConfigError
from verifymock.journal import Entry
from verifymock.state.store import DAMAGED, Changes, Claimed, Conflict, IndexEntry, Key, Loaded, Record

log = logging.getLogger("verifymock.state")

SCHEMA = 4  # the layout this code writes; MIGRATIONS[n] brings schema n to n + 1
APPLICATION_ID = 0x766D6F6B  # "vmok": PRAGMA application_id, so another program's database is told apart
FEED_KEPT = 10_000  # commits the change feed remembers
CHECKPOINT_EVERY = 0.5  # seconds: while commits come, the WAL is copied into the file this often
RESTART_WAIT = 1.0  # seconds a restart of the WAL waits for a commit under way or a reader, then tries next time


# Schema 1, as it was written: the layout migration 0 produces, which migration 1 then brings forward.
_TABLES_1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY, due REAL NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, query TEXT NOT NULL,
    operation_id TEXT, vendor TEXT, status INTEGER NOT NULL, headers TEXT NOT NULL, request BLOB NOT NULL,
    response BLOB NOT NULL, duration_ms REAL NOT NULL, touched TEXT NOT NULL, dropped TEXT
)
"""

# Schema 2's tables that are new or rebuilt (the migration moves records and timers into theirs). Each table has as
# few b-trees as its reads need, since every one of them is written per commit: records by creation (the scan's
# cursor) and by key; timers by number (their id) and by due time.
_TABLES_2 = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    data TEXT NOT NULL, entries TEXT NOT NULL DEFAULT '[]', UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS timers (
    seq INTEGER PRIMARY KEY, due REAL NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, args TEXT NOT NULL,
    lease REAL, fence INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due);
CREATE TABLE IF NOT EXISTS indexes (
    name TEXT NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, uniq INTEGER NOT NULL,
    PRIMARY KEY (name, value, kind, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS indexes_unique ON indexes (name, value) WHERE uniq = 1;
CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY AUTOINCREMENT, keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, token TEXT NOT NULL, until REAL NOT NULL)
"""


def _run(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):  # one by one: executescript would commit the transaction they are in
        if statement.strip():
            db.execute(statement)


def _create_tables(db: sqlite3.Connection) -> None:
    """A new file: schema 1's tables brought forward, exactly as an old file would be."""
    _run(db, _TABLES_1)
    for schema in range(1, SCHEMA):
        MIGRATIONS[schema](db)


def _migrate_0(db: sqlite3.Connection) -> None:
    """From the layout before state was data (verifymock 0.x, state format 2): one pickled snapshot of live
    objects, and pickled journal entries. The journal is carried over; the snapshot's calls, flows and timers held
    code that this version no longer has, so they cannot be, and the log says so."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'snapshot'").fetchone():
        if db.execute("SELECT 1 FROM snapshot").fetchone():
            log.warning("the state file's live calls and timers were written in the old pickled form: not carried over")
        db.execute("DROP TABLE snapshot")
    old = []
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'journal'").fetchone():
        old = db.execute("SELECT entry FROM journal ORDER BY id").fetchall()
        db.execute("DROP TABLE journal")
    _run(db, _TABLES_1)
    entries = []
    for (blob,) in old:
        try:
            entries.append(pickle.loads(blob))  # our own file's entries, plain tuples of data
        except Exception:  # an entry this version cannot read is left behind, not the whole journal
            continue
    _insert_journal(db, [e for e in entries if isinstance(e, Entry)])
    db.execute("DELETE FROM meta WHERE key IN ('format')")


def _migrate_1(db: sqlite3.Connection) -> None:
    """Schema 1 to 2: records get a creation sequence (a scan's cursor); timers are kept by number with a lease
    and a fence; the file gains index entries, the change feed and named leases. Index entries are the engine's to
    compute: the meta value `indexed` is absent, so the first start-up writes them."""
    db.execute("ALTER TABLE records RENAME TO records_1")
    db.execute("ALTER TABLE timers RENAME TO timers_1")
    _run(db, _TABLES_2)
    db.execute(
        "INSERT INTO records (kind, id, version, data) SELECT kind, id, version, data FROM records_1 ORDER BY rowid"
    )
    db.execute("INSERT INTO timers (seq, due, kind, key, args) SELECT seq, due, kind, key, args FROM timers_1")
    db.execute("DROP TABLE records_1")
    db.execute("DROP TABLE timers_1")


def _migrate_2(db: sqlite3.Connection) -> None:
    """Schema 2 to 3: index entries are kept by name, value and their record's creation sequence, no longer by the
    record's kind and id. The entries under one value (every verification of one phone number) then follow one
    another as records are created, instead of each landing on a page of its own by its random id: measured with
    benchmarks/store.py, a fifth of the store's time went to index entries."""
    db.execute(
        "CREATE TABLE indexes_3 (name TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
        "id TEXT NOT NULL, uniq INTEGER NOT NULL, PRIMARY KEY (name, value, seq)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO indexes_3 SELECT i.name, i.value, r.seq, i.kind, i.id, i.uniq "
        "FROM indexes i JOIN records r ON r.kind = i.kind AND r.id = i.id"
    )
    db.execute("DROP TABLE indexes")
    db.execute("ALTER TABLE indexes_3 RENAME TO indexes")
    db.execute("CREATE UNIQUE INDEX indexes_unique ON indexes (name, value) WHERE uniq = 1")


def _migrate_3(db: sqlite3.Connection) -> None:
    """Schema 3 to 4: timers are no longer indexed by due time. Every process runs its timers from its own heap
    (clock.py, under the term when the file is shared), so the only readers by due time are `claim_due` and
    `next_due`, which the engine does not call; they scan. The index was written twice per timer, and a call
    verification sets four timers and removes three: 6% of the store's instructions (callgrind over the replay of
    benchmarks/store.py)."""
    db.execute("DROP INDEX IF EXISTS timers_by_due")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: _migrate_0,
    1: _migrate_1,
    2: _migrate_2,
    3: _migrate_3,
}

_PUT_NEW = "INSERT INTO records (kind, id, version, data, entries) VALUES (?, ?, 1, ?, ?)"
_PUT_ANY = (
    "INSERT INTO records (kind, id, version, data, entries) VALUES (?, ?, 1, ?, ?) "
    "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, version = version + 1, entries = excluded.entries"
)
_PUT_ANY_KEEPING = (
    "INSERT INTO records (kind, id, version, data) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, version = version + 1"
)
_PUT_AT = "UPDATE records SET data = ?, entries = ?, version = version + 1 WHERE kind = ? AND id = ? AND version = ?"
_PUT_AT_KEEPING = "UPDATE records SET data = ?, version = version + 1 WHERE kind = ? AND id = ? AND version = ?"
_DELETE_OLD = "DELETE FROM records WHERE kind = ? AND id = ?"
_DELETE_AT_OLD = _DELETE_OLD + " AND version = ?"
_DELETE, _DELETE_AT = (f"{statement} RETURNING seq, entries" for statement in (_DELETE_OLD, _DELETE_AT_OLD))
RETURNING = sqlite3.sqlite_version_info >= (3, 35)  # SQLite's RETURNING clause (Debian 11's SQLite is 3.34)
_NO_ENTRIES = "[]"


class SqliteStore:
    def __init__(self, path: Path, *, shared: bool = False) -> None:
        """`shared`: one of the workers of `serve --workers`, which share the file (their supervisor holds its lock,
        so no other server opens it); otherwise this process locks the file for itself."""
        self.location = f"sqlite:{path}"
        self.shared = shared
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("--state", self.location, f"cannot be made: {exc}", "pass a writable path") from exc
        self._lock = None if shared else _exclusive(path, self.location)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 10000")  # (workers take turns writing)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with _Transaction(self._db):
                self._open()
            self._db.execute("PRAGMA wal_autocheckpoint = 0")  # (the checkpointer's work)
            self._checkpointer = _Checkpointer(path, self.location)
        except ConfigError:
            self._unlock()
            raise
        except sqlite3.Error as exc:
            self._unlock()
            raise ConfigError("--state", self.location, f"cannot be opened: {exc}", _fix(exc)) from exc

    def _open(self) -> None:
        """Create the tables of a new file, or bring an older one forward; refuse what is not ours or is newer."""
        db = self._db
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            _create_tables(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._set_meta({"schema": SCHEMA, "version": __version__})
            return
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if not meta:
            raise ConfigError(
                "--state",
                self.location,
                "is not a verifymock state file (it holds another program's tables)",
                "give verifymock a file of its own",
            )
        schema = int(json.loads(meta["schema"])) if "schema" in meta else 0
        written_by = json.loads(meta["version"]) if schema else meta.get("version", "?")
        if schema > SCHEMA:
            raise ConfigError(
                "--state",
                self.location,
                f"was written by verifymock {written_by} (state schema {schema}); this is "
                f"{__version__}, which reads schema {SCHEMA} and older",
                "upgrade verifymock, or start with a new file",
            )
        while schema < SCHEMA:
            log.info("state file %s: migrating schema %d to %d", self.location, schema, schema + 1)
            MIGRATIONS[schema](db)
            schema += 1
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        self._set_meta({"schema": SCHEMA, "version": __version__})

    def _set_meta(self, values: dict[str, Any]) -> None:
        self._db.executemany(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    # -- reads -------------------------------------------------------------------------------------------------------

    async def load(self, journal_size: int) -> Loaded:
        db = self._db
        records = [_record(row) for row in db.execute("SELECT kind, id, version, data, seq FROM records ORDER BY seq")]
        journal = [
            _entry(row)
            for row in db.execute(
                "SELECT * FROM (SELECT * FROM journal ORDER BY id DESC LIMIT ?) ORDER BY id", (journal_size,)
            )
        ]
        return Loaded(await self.meta(), records, await self.timers(), journal)

    async def get_many(self, keys: list[Key]) -> dict[Key, Record]:
        found: dict[Key, Record] = {}
        for kind, record_id in keys:
            row = self._db.execute(
                "SELECT kind, id, version, data, seq FROM records WHERE kind = ? AND id = ?", (kind, record_id)
            ).fetchone()
            if row is not None:
                found[(kind, record_id)] = _record(row)
        return found

    async def scan(self, kind: str, *, after: int = 0, limit: int = 100) -> list[Record]:
        rows = self._db.execute(
            "SELECT kind, id, version, data, seq FROM records WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?",
            (kind, after, limit),
        )
        return [_record(row) for row in rows]

    async def ids(self, kind: str, *, after: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        rows = self._db.execute(
            "SELECT seq, id FROM records WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?", (kind, after, limit)
        )
        return [(seq, record_id) for seq, record_id in rows]

    async def index(self, name: str, value: str, *, limit: int = 100) -> list[str]:
        rows = self._db.execute(
            "SELECT id FROM indexes WHERE name = ? AND value = ? ORDER BY seq DESC LIMIT ?", (name, value, limit)
        )
        return [record_id for (record_id,) in rows]

    async def timers(self) -> list[Timer]:
        rows = self._db.execute("SELECT due, seq, kind, key, args FROM timers ORDER BY due, seq")
        return [Timer(due, seq, kind, key, orjson.loads(args)) for due, seq, kind, key, args in rows]

    async def get_timers(self, ids: list[str]) -> dict[str, Timer]:
        found = {}
        for timer_id in ids:
            row = self._db.execute(
                "SELECT due, seq, kind, key, args FROM timers WHERE seq = ?", (_timer_seq(timer_id),)
            ).fetchone()
            if row is not None:
                due, seq, kind, key, args = row
                found[timer_id] = Timer(due, seq, kind, key, orjson.loads(args))
        return found

    async def next_due(self) -> float | None:
        row = self._db.execute("SELECT min(due) FROM timers").fetchone()
        return None if row is None else float(row[0])

    async def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    async def journal(self, *, after: int = 0, limit: int = 100) -> list[Entry]:
        rows = self._db.execute("SELECT * FROM journal WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        return [_entry(row) for row in rows]

    async def feed(self, after: int | None, *, limit: int = 1000) -> tuple[int, list[tuple[int, list[Key]]]]:
        db = self._db
        if after is None:
            row = db.execute("SELECT max(seq) FROM commits").fetchone()
            return int(row[0] or 0), []
        found = db.execute("SELECT seq, keys FROM commits WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        rows = [(seq, [(kind, record_id) for kind, record_id in orjson.loads(text)]) for seq, text in found]
        return (rows[-1][0] if rows else after), rows

    # -- writes ------------------------------------------------------------------------------------------------------

    async def commit(self, changes: Changes, journal_size: int) -> int:
        try:
            with await self._transaction():
                return self._write(changes, journal_size)
        except sqlite3.IntegrityError as exc:  # a record created twice, or a unique index entry taken
            raise Conflict(str(exc)) from exc

    def _write(self, changes: Changes, journal_size: int) -> int:
        db = self._db
        if changes.term is not None:
            name, token = changes.term
            row = db.execute("SELECT token FROM leases WHERE name = ?", (name,)).fetchone()
            if row is None or row[0] != token:
                raise Conflict(f"the lease {name} is no longer this process's")
        expect = changes.expect
        # a record's index entries are kept in its row too, so that only entries that changed are written
        entries = {key: _entries(put.indexes) for key, put in changes.put.items() if put.indexes is not None}
        before = self._entries_held([key for key in entries if expect.get(key) != 0])
        new: list[tuple[Any, ...]] = []
        at: list[tuple[Any, ...]] = []
        at_keeping: list[tuple[Any, ...]] = []
        blind: list[tuple[Any, ...]] = []
        blind_keeping: list[tuple[Any, ...]] = []
        for key, put in changes.put.items():
            version, kept = expect.get(key), put.indexes is None
            if version == 0:
                new.append((*key, put.text, entries.get(key, _NO_ENTRIES)))
            elif version is not None:
                (at_keeping if kept else at).append((put.text, *(() if kept else (entries[key],)), *key, version))
            else:
                (blind_keeping if kept else blind).append((*key, put.text, *(() if kept else (entries[key],))))
        created: dict[Key, int] = {}
        if new:
            db.executemany(_PUT_NEW, new)  # an IntegrityError if one exists already
            (last,) = db.execute("SELECT last_insert_rowid()").fetchone()
            # (AUTOINCREMENT gives the rows of one statement one number after another)
            created = {(row[0], row[1]): last - len(new) + 1 + n for n, row in enumerate(new)}
        for statement, rows in ((_PUT_AT, at), (_PUT_AT_KEEPING, at_keeping)):
            if rows and db.executemany(statement, rows).rowcount != len(rows):
                raise Conflict(f"a record changed since it was read: one of {[row[-3:-1] for row in rows][:5]}")
        for statement, rows in ((_PUT_ANY, blind), (_PUT_ANY_KEEPING, blind_keeping)):
            if rows:
                db.executemany(statement, rows)
        for key in changes.delete:  # (each gives back what its entries are dropped by)
            version = expect.get(key)
            gone = self._delete(key, version)
            if gone is not None:
                before[key] = gone
            elif version is not None:
                raise Conflict(f"{key} changed since it was read")
        for key, version in expect.items():  # what was read without being written must still be as read
            if key not in changes.put and key not in changes.delete:
                row = db.execute("SELECT version FROM records WHERE kind = ? AND id = ?", key).fetchone()
                if (row[0] if row else 0) != version:
                    raise Conflict(f"{key} changed since it was read")
        # entries are kept under their record's creation number: known for a record read or created here, looked up
        # for one put without a version that did not exist before
        dropped, added, unplaced = [], [], []
        for key in [*entries, *changes.delete]:
            seq, old = before.get(key) or (created.get(key, 0), _NO_ENTRIES)
            now = entries.get(key, _NO_ENTRIES)
            if old != now:
                dropped += [(name, value, seq) for name, value, _ in orjson.loads(old)]
                for name, value, unique in orjson.loads(now):
                    if seq:
                        added.append((name, value, seq, *key, unique))
                    else:
                        unplaced.append((name, value, unique, *key))
        if dropped:
            db.executemany("DELETE FROM indexes WHERE name = ? AND value = ? AND seq = ?", dropped)
        if added:
            db.executemany("INSERT INTO indexes (name, value, seq, kind, id, uniq) VALUES (?, ?, ?, ?, ?, ?)", added)
        if unplaced:
            db.executemany(
                "INSERT INTO indexes SELECT ?, ?, seq, kind, id, ? FROM records WHERE kind = ? AND id = ?", unplaced
            )
        if changes.consume is not None:
            claimed = changes.consume
            taken = db.execute("DELETE FROM timers WHERE seq = ? AND fence = ?", (claimed.timer.seq, claimed.fence))
            if taken.rowcount != 1:
                raise Conflict(f"timer {claimed.timer.id} was claimed by another process after its lease ran out")
        if changes.cancel:
            db.executemany("DELETE FROM timers WHERE seq = ?", [(_timer_seq(i),) for i in changes.cancel])
        if changes.schedule:
            db.executemany(
                "INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?, ?, NULL, 0)",
                [(t.seq, t.due, t.kind, t.key, orjson.dumps(t.args)) for t in changes.schedule],
            )
        if changes.journal:
            _insert_journal(db, changes.journal)
            db.execute("DELETE FROM journal WHERE id <= ?", (changes.journal[-1].id - journal_size,))
        if changes.meta:
            self._set_meta(changes.meta)
        keys = changes.feed_keys() if self.shared else None  # (only other processes read the feed: catch_up)
        if not keys:
            return 0
        seq = db.execute("INSERT INTO commits (keys) VALUES (?)", (orjson.dumps(keys),)).lastrowid or 0
        if seq % 1000 == 0:
            db.execute("DELETE FROM commits WHERE seq <= ?", (seq - FEED_KEPT,))
        return seq

    def _delete(self, key: Key, version: int | None) -> tuple[int, str] | None:
        """Delete a record (at `version`, unless None): its creation number and entries, or None if it was not
        there (at that version)."""
        at = () if version is None else (version,)
        if RETURNING:
            gone = self._db.execute(_DELETE_AT if at else _DELETE, (*key, *at)).fetchall()
            return gone[0] if gone else None
        held = self._entries_held([key]).get(key)  # (no RETURNING before SQLite 3.35: read it first)
        if held is None or self._db.execute(_DELETE_AT_OLD if at else _DELETE_OLD, (*key, *at)).rowcount != 1:
            return None
        return held

    def _entries_held(self, keys: list[Key]) -> dict[Key, tuple[int, str]]:
        """Each stored record's creation sequence and index entries, as they are before the commit."""
        held = {}
        for key in keys:
            row = self._db.execute("SELECT seq, entries FROM records WHERE kind = ? AND id = ?", key).fetchone()
            if row is not None:
                held[key] = (row[0], row[1])
        return held

    async def claim_due(self, now: float, *, limit: int, lease_s: float) -> list[Claimed]:
        db = self._db
        real = time.time()
        with await self._transaction():
            rows = db.execute(
                "SELECT seq, due, seq, kind, key, args, fence FROM timers "
                "WHERE due <= ? AND (lease IS NULL OR lease < ?) ORDER BY due, seq LIMIT ?",
                (now, real, limit),
            ).fetchall()
            db.executemany(
                "UPDATE timers SET lease = ?, fence = fence + 1 WHERE seq = ?", [(real + lease_s, r[0]) for r in rows]
            )
        return [
            Claimed(Timer(due, seq, kind, key, orjson.loads(args)), fence + 1)
            for _, due, seq, kind, key, args, fence in rows
        ]

    async def acquire(self, name: str, ttl_s: float) -> str | None:
        db = self._db
        real = time.time()
        with await self._transaction():
            row = db.execute("SELECT until FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] > real:
                return None
            token = secrets.token_hex(8)
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, token, real + ttl_s))
        return token

    async def renew(self, name: str, token: str, ttl_s: float) -> bool:
        with await self._transaction():
            kept = self._db.execute(
                "UPDATE leases SET until = ? WHERE name = ? AND token = ?", (time.time() + ttl_s, name, token)
            )
        return kept.rowcount == 1

    async def release(self, name: str, token: str) -> bool:
        with await self._transaction():
            gone = self._db.execute("DELETE FROM leases WHERE name = ? AND token = ?", (name, token))
        return gone.rowcount == 1

    async def clear(self) -> None:
        with await self._transaction():
            for table in ("records", "indexes", "timers", "journal", "commits"):  # (leases stay held)
                self._db.execute(f"DELETE FROM {table}")  # (the names are ours)

    async def _transaction(self) -> _Transaction:
        """A write transaction, begun once no restart of the WAL holds the file (waited for with the loop free)."""
        await self._checkpointer.writable()
        return _Transaction(self._db, self._checkpointer.wake)

    async def close(self) -> None:
        self._checkpointer.stop()
        self._db.close()
        self._unlock()  # (the lock goes with it, as it does when the process dies)

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()


def _fix(error: sqlite3.Error) -> str:
    """What to do about a file SQLite would not open, by the kind of error it gave."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):  # damaged, cut short, or not a database at all
        return DAMAGED
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):  # a write refused (a full disk, a size limit) or failed
        return "free some disk space, or pass a file on another disk"
    return "pass a writable file"  # read-only, or a folder or file it may not open


def _timer_seq(timer_id: str) -> int:
    return int(timer_id[1:])  # a timer's id is "t" and its number (clock.Timer.id)


def _entries(indexes: tuple[IndexEntry, ...]) -> str:
    return orjson.dumps([(e.name, e.value, int(e.unique)) for e in indexes]).decode() if indexes else _NO_ENTRIES


def _record(row: tuple[Any, ...]) -> Record:
    kind, record_id, version, data, seq = row
    return Record(kind, record_id, version, jsonio.loads(data.encode()), seq)


def _insert_journal(db: sqlite3.Connection, entries: Iterable[Entry]) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.id, e.at, e.method, e.path, e.query, e.operation_id, e.vendor, e.status,
                orjson.dumps(e.request_headers), e.request_raw, e.response_raw, e.duration_ms,
                orjson.dumps(e.touched), e.dropped,
            )
            for e in entries
        ],
    )  # fmt: skip


def _entry(row: tuple[Any, ...]) -> Entry:
    headers = tuple((str(k), str(v)) for k, v in orjson.loads(row[8]))
    return Entry(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        headers, bytes(row[9]), bytes(row[10]), row[11], tuple(orjson.loads(row[12])), row[13],
    )  # fmt: skip


def _exclusive(path: Path, location: str) -> IO[str]:
    """An exclusive lock on PATH.lock, held while the store is open: a second server on the same file would keep
    its own state and overwrite the first's, so the last writer silently won. The kernel lets go of it when the
    process dies, even by SIGKILL."""
    try:
        lock = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open for the store's lifetime, closed by close()
    except OSError as exc:
        raise ConfigError("--state", location, f"cannot be locked: {exc}", "pass a file in a writable folder") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(
            "--state",
            location,
            "is already served by another verifymock process",
            "stop that server, or give this one another file",
        ) from None
    return lock


class _Transaction:
    def __init__(self, db: sqlite3.Connection, written: Callable[[], None] | None = None) -> None:
        self._db = db
        self._written = written

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")
        if not kind and self._written is not None:
            self._written()


class _Checkpointer:
    """Copies the WAL into the database file on a thread and a connection of its own. Left to SQLite, that copy
    (and its two syncs) ran inside whichever commit took the WAL past 1,000 pages, holding up the event loop: half
    of a commit's time under load (py-spy). Here the loop goes on serving meanwhile, and a page that many commits
    changed is copied once per CHECKPOINT_EVERY instead of once per 1,000 pages.

    A passive copy lets commits go on, but one that lands during it keeps the WAL from starting over from its
    beginning, so under steady load the WAL would only grow. A restart follows each passive copy: it waits for the
    commit under way, holds the next ones back while it copies the few pages written meanwhile and syncs, and lets
    the WAL start over. That takes 5-50 ms under load; a commit waits for it in `writable`, with the event loop
    free, not in SQLite's busy handler, which would hold the loop up."""

    def __init__(self, path: Path, location: str) -> None:
        self._location = location
        self._db = sqlite3.connect(path, timeout=RESTART_WAIT, check_same_thread=False, isolation_level=None)
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._restarting = False
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []  # commits held back
        self._thread = threading.Thread(target=self._run, name="verifymock-checkpoint", daemon=True)
        self._thread.start()
        self.wake()  # (opening the file may have migrated it)

    def wake(self) -> None:
        """Something was committed: it is copied within CHECKPOINT_EVERY."""
        self._woken.set()

    def _run(self) -> None:
        try:
            while self._woken.wait() and not self._stopping.wait(CHECKPOINT_EVERY):
                self._woken.clear()
                try:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self._restart()
                except sqlite3.Error as exc:  # (a full disk: the commits say so; the WAL keeps what they wrote)
                    log.warning("state file %s: copying the WAL into the file failed: %s", self._location, exc)
        finally:
            self._db.close()

    async def writable(self) -> None:
        """Once no restart holds the file (at once, nearly always)."""
        with self._lock:
            if not self._restarting:
                return
            loop = asyncio.get_running_loop()
            restarted = loop.create_future()
            self._waiting.append((loop, restarted))
        await restarted

    def _restart(self) -> None:
        with self._lock:
            self._restarting = True
        try:
            self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            with self._lock:
                self._restarting, waiting, self._waiting = False, self._waiting, []
            for loop, restarted in waiting:
                with contextlib.suppress(RuntimeError):  # (its loop has closed: nothing waits any more)
                    loop.call_soon_threadsafe(_settle, restarted)

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
        self._thread.join()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # (the commit waiting on it may have been cancelled)
        future.set_result(None)
