"""Where the engine's state is kept between runs: nowhere (memory, the default) or a SQLite file.

The file holds data only: a row per record (kind, id, version, JSON), a row per timer, the journal's entries, and
a few meta values (the clock, the signing key, the next ids, the schema number). One `BEGIN IMMEDIATE` transaction
per commit writes the records that changed, the timers scheduled and gone, and new journal entries, so its cost is
that of the change, not of everything kept. WAL with `synchronous=NORMAL`: a commit survives the process being
killed; a power cut may take the last few.

The schema is numbered. At start-up, migrations bring an older file forward one number at a time; a file newer
than this code is refused with the fix. A file is served by one process at a time (an flock on PATH.lock).
"""

from __future__ import annotations

import fcntl
import json
import logging
import pickle
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from verifymock import __version__, jsonio
from verifymock.clock import Timer
from verifymock.errors import ConfigError
from verifymock.journal import Entry

log = logging.getLogger("verifymock.state")

SCHEMA = 1  # the layout this code writes; MIGRATIONS[n] brings schema n to n + 1
APPLICATION_ID = 0x766D6F6B  # "vmok": PRAGMA application_id, so another program's database is told apart

Data = dict[str, Any]


@dataclass
class Loaded:
    """What a store holds, as a restart reads it."""

    meta: dict[str, Any] = field(default_factory=dict)
    records: list[tuple[str, str, Data]] = field(default_factory=list)  # (kind, id, data), oldest first
    timers: list[Timer] = field(default_factory=list)
    journal: list[Entry] = field(default_factory=list)


@dataclass
class Commit:
    """One unit of work: records put (JSON) or deleted (None), timers added and removed, journal entries, meta."""

    records: dict[tuple[str, str], str | None] = field(default_factory=dict)  # JSON text, None: deleted
    timers_added: list[Timer] = field(default_factory=list)
    timers_removed: set[str] = field(default_factory=set)
    journal: list[Entry] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.records or self.timers_added or self.timers_removed or self.journal or self.meta)


class Store(Protocol):
    """What the engine asks of a store."""

    durable: bool
    location: str

    def load(self) -> Loaded: ...

    def write(self, commit: Commit, journal_size: int) -> None:
        """Apply one commit atomically."""
        ...

    def read_records(self) -> dict[tuple[str, str], Data]:
        """Every record as stored (for the state audit)."""
        ...

    def read_timer_ids(self) -> set[str]: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Nothing is written: state lasts as long as the process."""

    durable = False
    location = "memory"

    def load(self) -> Loaded:
        return Loaded()

    def write(self, commit: Commit, journal_size: int) -> None:
        pass

    def read_records(self) -> dict[tuple[str, str], Data]:
        return {}

    def read_timer_ids(self) -> set[str]:
        return set()

    def clear(self) -> None:
        pass

    def close(self) -> None:
        pass


_TABLES = """
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
);
"""


def _create_tables(db: sqlite3.Connection) -> None:
    for statement in _TABLES.split(";"):  # one by one: executescript would commit the transaction they are in
        if statement.strip():
            db.execute(statement)


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
    _create_tables(db)
    entries = []
    for (blob,) in old:
        try:
            entries.append(pickle.loads(blob))  # our own file's entries, plain tuples of data
        except Exception:  # an entry this version cannot read is left behind, not the whole journal
            continue
    _insert_journal(db, [e for e in entries if isinstance(e, Entry)])
    db.execute("DELETE FROM meta WHERE key IN ('format')")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _migrate_0}


class SqliteStore:
    durable = True

    def __init__(self, path: Path) -> None:
        self.location = f"sqlite:{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("--state", self.location, f"cannot be made: {exc}", "pass a writable path") from exc
        self._lock = _exclusive(path, self.location)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with _Transaction(self._db):
                self._open()
        except ConfigError:
            self._lock.close()
            raise
        except sqlite3.Error as exc:
            self._lock.close()
            raise ConfigError("--state", self.location, f"cannot be opened: {exc}", "pass a writable file") from exc

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

    def load(self) -> Loaded:
        db = self._db
        meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        records = [
            (kind, record_id, jsonio.loads(data.encode()))
            for kind, record_id, data in db.execute("SELECT kind, id, data FROM records ORDER BY rowid")
        ]
        timers = [
            Timer(due, seq, kind, key, orjson.loads(args))
            for due, seq, kind, key, args in db.execute("SELECT due, seq, kind, key, args FROM timers")
        ]
        journal = [_entry(row) for row in db.execute("SELECT * FROM journal ORDER BY id")]
        return Loaded(meta, records, timers, journal)

    def write(self, commit: Commit, journal_size: int) -> None:
        db = self._db
        puts = [(kind, i, text) for (kind, i), text in commit.records.items() if text is not None]
        deletes = [key for key, text in commit.records.items() if text is None]
        with _Transaction(db):
            if puts:
                # an update keeps the row (and its rowid, the record's place in creation order) and bumps its version
                db.executemany(
                    "INSERT INTO records VALUES (?, ?, 1, ?) "
                    "ON CONFLICT(kind, id) DO UPDATE SET data = excluded.data, version = version + 1",
                    puts,
                )
            if deletes:
                db.executemany("DELETE FROM records WHERE kind = ? AND id = ?", deletes)
            if commit.timers_added:
                db.executemany(
                    "INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?, ?, ?)",
                    [(t.id, t.due, t.seq, t.kind, t.key, orjson.dumps(t.args)) for t in commit.timers_added],
                )
            if commit.timers_removed:
                db.executemany("DELETE FROM timers WHERE id = ?", [(i,) for i in commit.timers_removed])
            if commit.journal:
                _insert_journal(db, commit.journal)
                db.execute("DELETE FROM journal WHERE id <= ?", (commit.journal[-1].id - journal_size,))
            if commit.meta:
                self._set_meta(commit.meta)

    def read_records(self) -> dict[tuple[str, str], Data]:
        return {(k, i): jsonio.loads(d.encode()) for k, i, d in self._db.execute("SELECT kind, id, data FROM records")}

    def read_timer_ids(self) -> set[str]:
        return {i for (i,) in self._db.execute("SELECT id FROM timers")}

    def clear(self) -> None:
        with _Transaction(self._db):
            for table in ("records", "timers", "journal"):
                self._db.execute(f"DELETE FROM {table}")  # (the names are ours)

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # (the lock goes with it, as it does when the process dies)


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
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


def open_store(spec: str) -> Store:
    """`memory` or `sqlite:PATH`."""
    check_store_spec(spec)
    return MemoryStore() if spec == "memory" else SqliteStore(Path(spec.partition(":")[2]))


def check_store_spec(spec: str) -> None:
    kind, _, rest = spec.partition(":")
    if spec != "memory" and not (kind == "sqlite" and rest):
        raise ConfigError("--state", spec, "is not a state store", "use memory or sqlite:PATH (e.g. sqlite:mock.db)")
