"""Where the engine's state lives between requests: in memory (the default) or in a SQLite file.

The engine keeps its working state as live Python objects: calls whose flows hold timers whose callbacks close
over the call. A store persists that graph as it is, so a restarted server continues where it stopped, with its
timers still due. The persisted form is one snapshot of every stateful part of the engine, pickled together (so
the references between calls, flows, timers and verifications survive), with the engine's own parts, which a
restart builds anew from its configuration, written as references by name. Callbacks are pickled by value with
cloudpickle. The journal, which only grows, is appended row by row.

A snapshot is written before the response of every request that may have changed state, after timers run, and
after webhook attempts, so a request that got its answer is never lost, even under SIGKILL. Its cost grows with
the state kept, which `--retain` bounds (`Mock.trim`).

`Store` is the interface the engine uses; a shared store can implement it without touching handlers.
"""

from __future__ import annotations

import fcntl
import io
import pickle
import sqlite3
from contextvars import ContextVar
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import cloudpickle

from verifymock import __version__
from verifymock.errors import ConfigError
from verifymock.journal import Entry

if TYPE_CHECKING:
    from verifymock.engine import Mock

FORMAT = 2  # bumped when what a snapshot holds changes shape


class Store(Protocol):
    """What the engine asks of a store."""

    durable: bool
    location: str

    def load(self) -> tuple[bytes | None, list[Entry]]:
        """The last snapshot, if any, and the journal entries kept, oldest first."""
        ...

    def write(self, snapshot: bytes | None, entries: list[Entry], journal_size: int) -> None:
        """Persist a snapshot (None: unchanged) and new journal entries, atomically."""
        ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Nothing is written: state lasts as long as the process."""

    durable = False
    location = "memory"

    def load(self) -> tuple[bytes | None, list[Entry]]:
        return None, []

    def write(self, snapshot: bytes | None, entries: list[Entry], journal_size: int) -> None:
        pass

    def clear(self) -> None:
        pass

    def close(self) -> None:
        pass


class SqliteStore:
    """One SQLite file in WAL mode: a snapshot row and the journal table."""

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
            # NORMAL: a commit survives the process being killed (it is in the OS's cache); only a power cut can
            # take the last few, which is the trade-off WAL documents
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, entry BLOB NOT NULL);
                """
            )
            self._check_version()
        except sqlite3.Error as exc:
            self._lock.close()
            raise ConfigError("--state", self.location, f"cannot be opened: {exc}", "pass a writable file") from exc

    def _check_version(self) -> None:
        found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        expected = {"format": str(FORMAT), "version": __version__}
        if found and found != expected:
            raise ConfigError(
                "--state",
                self.location,
                f"was written by verifymock {found.get('version')} (state format {found.get('format')}); "
                f"this is {__version__} (format {FORMAT}), which cannot continue its calls and timers",
                "run the version that wrote it, or start with a new file",
            )
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", expected.items())

    def load(self) -> tuple[bytes | None, list[Entry]]:
        row = self._db.execute("SELECT state FROM snapshot WHERE id = 1").fetchone()
        entries = [pickle.loads(blob) for (blob,) in self._db.execute("SELECT entry FROM journal ORDER BY id")]
        return (row[0] if row else None), entries

    def write(self, snapshot: bytes | None, entries: list[Entry], journal_size: int) -> None:
        with self._transaction():
            if snapshot is not None:
                self._db.execute("INSERT OR REPLACE INTO snapshot VALUES (1, ?)", (snapshot,))
            if entries:
                self._db.executemany(
                    "INSERT OR REPLACE INTO journal VALUES (?, ?)",
                    [(e.id, pickle.dumps(e, pickle.HIGHEST_PROTOCOL)) for e in entries],
                )
                self._db.execute("DELETE FROM journal WHERE id <= ?", (entries[-1].id - journal_size,))

    def clear(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM snapshot")
            self._db.execute("DELETE FROM journal")

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # (the lock goes with it, as it does when the process dies)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _exclusive(path: Path, location: str) -> IO[str]:
    """An exclusive lock on PATH.lock, held while the store is open: a second server on the same file would keep
    its own state and overwrite the snapshot, so the last writer silently won. The kernel lets go of it when the
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


# -- the snapshot ----------------------------------------------------------------------------------------------------


_parts: ContextVar[dict[str, Any]] = ContextVar("verifymock_store_parts")


def _part(name: str) -> Any:
    """How a snapshot refers to an engine part: looked up in the engine being restored."""
    try:
        return _parts.get()[name]
    except (LookupError, KeyError):
        raise pickle.UnpicklingError(f"the snapshot names an engine part this version lacks: {name}") from None


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """Writes the engine's own parts (the Mock, its vendors, clock, ...) as names, everything else by value."""

    def __init__(self, file: io.BytesIO, parts: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = parts

    def reducer_override(self, obj: Any) -> Any:
        # called only for objects of non-builtin types, unlike persistent_id (measured: a third of the dump time)
        name = self._names.get(id(obj))
        if name is not None:
            return _part, (name,)
        return super().reducer_override(obj)


def engine_parts(mock: Mock) -> dict[str, Any]:
    """The objects a restart builds from configuration; state refers to them by these names."""
    return {
        "mock": mock,
        "config": mock.config,
        "clock": mock.clock,
        "phones": mock.phones,
        "journal": mock.journal,
        "scenarios": mock.scenarios,
        "signer": mock.signer,
        "webhooks": mock.webhooks,
        "faults": mock.faults,
        **{vendor.name: vendor for vendor in mock.vendors()},
    }


def dump_state(mock: Mock, state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, {id(obj): name for name, obj in engine_parts(mock).items()}).dump(state)
    return buffer.getvalue()


def load_state(mock: Mock, blob: bytes) -> dict[str, Any]:
    token = _parts.set(engine_parts(mock))
    try:
        state = pickle.loads(blob)
    finally:
        _parts.reset(token)
    if not isinstance(state, dict):
        raise pickle.UnpicklingError("the snapshot is not a state mapping")
    return state
