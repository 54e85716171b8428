"""The store interface's contract, run against every durable backend: SQLite and Redis (a real server).

Each test drives a real store through its async methods only, as the engine does: versions and conflicts,
atomic commits, index entries and unique ones, scans, timer claims with leases and fences, named leases, the
journal and the change feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from verifymock.clock import Timer
from verifymock.journal import Entry
from verifymock.state import sqlite
from verifymock.state.redis import RedisStore
from verifymock.state.sqlite import SqliteStore
from verifymock.state.store import Changes, Claimed, Conflict, IndexEntry, Put, Store, changes_since

T = TypeVar("T")
JOURNAL = 5  # entries a commit keeps


def run(work: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await work

    return asyncio.run(wrapped())


def _redis(request: pytest.FixtureRequest, tmp: Path) -> Store:
    url = request.getfixturevalue("redis_url")
    return RedisStore(f"{url}?prefix={tmp.name}")  # a prefix per test: one server, tests kept apart


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Store]] = {
    "sqlite": lambda _, tmp: SqliteStore(tmp / "state.db"),
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = BACKENDS[request.param](request, tmp_path)
    yield opened
    run(opened.close())


def put(**data: Any) -> Put:
    return Put(orjson.dumps(data).decode())


def create(store: Store, kind: str, record_id: str, *entries: IndexEntry, **data: Any) -> None:
    key = (kind, record_id)
    run(store.commit(Changes(expect={key: 0}, put={key: Put(orjson.dumps(data).decode(), entries)}), JOURNAL))


def version(store: Store, kind: str, record_id: str) -> int:
    found = run(store.get_many([(kind, record_id)]))
    return found[(kind, record_id)].version if found else 0


# -- records and versions -----------------------------------------------------------------------------------------


def test_store_creates_reads_and_counts_versions(store: Store) -> None:
    create(store, "verification", "v1", status="pending")
    [record] = run(store.get_many([("verification", "v1"), ("verification", "absent")])).values()
    assert (record.kind, record.id, record.version, record.data) == ("verification", "v1", 1, {"status": "pending"})
    key = ("verification", "v1")
    run(store.commit(Changes(expect={key: 1}, put={key: put(status="accepted")}), JOURNAL))
    assert run(store.get_many([key]))[key][2:4] == (2, {"status": "accepted"})


def test_store_refuses_a_whole_commit_when_one_version_moved(store: Store) -> None:
    create(store, "call", "c1", state="ringing")
    key, other = ("call", "c1"), ("profile", "p1")
    stale = Changes(expect={key: 7, other: 0}, put={key: put(state="ended"), other: put(name="p")})
    stale.schedule.append(Timer(5.0, 1, "telnyx.expire", "v1", {}))
    stale.journal.append(_entry(1))
    with pytest.raises(Conflict):
        run(store.commit(stale, JOURNAL))
    # nothing of it was written: not the record it could have created, the timer or the journal entry
    assert run(store.get_many([key, other])).keys() == {key}
    assert run(store.get_many([key]))[key].data == {"state": "ringing"}
    assert run(store.timers()) == [] and run(store.journal()) == []


def test_store_refuses_creating_what_exists_and_deleting_a_moved_record(store: Store) -> None:
    create(store, "call", "c1", state="ringing")
    with pytest.raises(Conflict):
        create(store, "call", "c1", state="again")
    key = ("call", "c1")
    with pytest.raises(Conflict):
        run(store.commit(Changes(expect={key: 2}, delete={key}), JOURNAL))
    run(store.commit(Changes(expect={key: 1}, delete={key}), JOURNAL))
    assert run(store.get_many([key])) == {}
    create(store, "call", "c1", state="new")  # a deleted record's id may be created again
    assert version(store, "call", "c1") == 1


def test_store_checks_what_a_decision_read_without_writing_it(store: Store) -> None:
    create(store, "profile", "p1", name="one")
    create(store, "verification", "v1", status="pending")
    read, written = ("profile", "p1"), ("verification", "v1")
    run(store.commit(Changes(expect={read: 1}, put={read: put(name="renamed")}), JOURNAL))
    decided = Changes(expect={read: 1, written: 1}, put={written: put(status="accepted")})
    with pytest.raises(Conflict):
        run(store.commit(decided, JOURNAL))
    assert version(store, "verification", "v1") == 1
    absent = Changes(expect={("profile", "p9"): 0}, put={written: put(status="accepted")})
    run(store.commit(absent, JOURNAL))  # expecting a record absent holds while it is
    assert version(store, "verification", "v1") == 2


def test_store_scans_one_kind_oldest_first_by_cursor(store: Store) -> None:
    for i in range(5):
        create(store, "call", f"c{i}", n=i)
        create(store, "message", f"m{i}", n=i)
    first = run(store.scan("call", limit=2))
    assert [r.id for r in first] == ["c0", "c1"]
    rest = run(store.scan("call", after=first[-1].seq, limit=10))
    assert [r.id for r in rest] == ["c2", "c3", "c4"]
    key = ("call", "c1")
    run(store.commit(Changes(expect={key: 1}, put={key: put(n=10)}), JOURNAL))
    assert [r.id for r in run(store.scan("call"))] == ["c0", "c1", "c2", "c3", "c4"]  # an update keeps its place
    assert run(store.ids("call", after=first[0].seq, limit=2)) == [(r.seq, r.id) for r in [first[1], rest[0]]]
    assert [record_id for _, record_id in run(store.ids("message"))] == ["m0", "m1", "m2", "m3", "m4"]


# -- indexes ------------------------------------------------------------------------------------------------------


def test_store_index_entries_follow_their_record(store: Store) -> None:
    """Entries given with a put replace the record's; a put without (None) keeps them; a delete drops them."""
    number = "+13035550100"
    create(store, "call", "c1", IndexEntry("call.number", number), IndexEntry("call.live", number))
    create(store, "call", "c2", IndexEntry("call.number", number), IndexEntry("call.live", number))
    assert run(store.index("call.live", number)) == ["c2", "c1"]  # newest record first
    assert run(store.index("call.live", number, limit=1)) == ["c2"]
    ended = ("call", "c2")
    run(store.commit(Changes(expect={ended: 1}, put={ended: Put("{}", (IndexEntry("call.number", number),))}), 5))
    assert run(store.index("call.live", number)) == ["c1"]  # a put's entries replace the record's old ones
    assert run(store.index("call.number", number)) == ["c2", "c1"]
    kept = ("call", "c1")
    run(store.commit(Changes(expect={kept: 1}, put={kept: Put('{"n": 2}', None)}), JOURNAL))
    assert run(store.index("call.live", number)) == ["c1"] and run(store.get_many([kept]))[kept].data == {"n": 2}
    run(store.commit(Changes(delete={("call", "c1")}), JOURNAL))
    assert run(store.index("call.number", number)) == ["c2"]
    assert run(store.index("call.live", "+19999999999")) == []


def test_store_index_entries_of_records_created_in_one_commit_are_each_their_own(store: Store) -> None:
    """Several records created by one commit, with records of other kinds between them: each one's entries are
    listed newest first, and each goes with its own record, whether that one is deleted or its entries change."""
    number = "+13035550101"
    keys = [("verification", f"v{i}") for i in range(4)]
    changes = Changes()
    for n, key in enumerate(keys):
        changes.expect[key] = 0
        changes.put[key] = Put("{}", (IndexEntry("verification.number", number),))
        changes.put[("story", key[1])] = Put("{}")  # (made between them, without entries)
        changes.expect[("story", key[1])] = 0
        if n == 1:
            changes.put[("profile", "p")] = Put("{}", None)  # (a blind put: no version checked)
    run(store.commit(changes, JOURNAL))
    assert run(store.index("verification.number", number)) == ["v3", "v2", "v1", "v0"]
    run(store.commit(Changes(expect={keys[1]: 1}, delete={keys[1]}), JOURNAL))
    run(store.commit(Changes(expect={keys[2]: 1}, put={keys[2]: Put("{}", ())}), JOURNAL))
    assert run(store.index("verification.number", number)) == ["v3", "v0"]


def test_sqlite_store_without_returning_reads_a_deleted_records_entries_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 has no RETURNING: a deletion reads the row's entries first, with the same outcomes."""
    monkeypatch.setattr(sqlite, "RETURNING", False)
    store = SqliteStore(tmp_path / "state.db")
    number = "+13035550102"
    for record_id in ("c1", "c2"):
        create(store, "call", record_id, IndexEntry("call.number", number))
    with pytest.raises(Conflict):  # a version that moved
        run(store.commit(Changes(expect={("call", "c1"): 2}, delete={("call", "c1")}), JOURNAL))
    run(store.commit(Changes(expect={("call", "c1"): 1}, delete={("call", "c1"), ("call", "c9")}), JOURNAL))
    assert run(store.index("call.number", number)) == ["c2"]
    run(store.commit(Changes(delete={("call", "c2")}), JOURNAL))  # no version checked
    assert run(store.index("call.number", number)) == [] and run(store.get_many([("call", "c2")])) == {}
    run(store.close())


def test_store_unique_index_entry_is_held_by_one_record(store: Store) -> None:
    number = "+13035550100"
    pending = IndexEntry("verification.dtmf_pending", number, unique=True)
    create(store, "verification", "v1", pending)
    with pytest.raises(Conflict):
        create(store, "verification", "v2", pending)
    assert run(store.get_many([("verification", "v2")])) == {}
    # in one commit, the first lets go of the entry and the second takes it
    v1, v2 = ("verification", "v1"), ("verification", "v2")
    handover = Changes(expect={v1: 1, v2: 0}, put={v1: Put("{}"), v2: Put("{}", (pending,))})
    run(store.commit(handover, JOURNAL))
    assert run(store.index("verification.dtmf_pending", number)) == ["v2"]
    create(store, "verification", "v3", IndexEntry("verification.dtmf_pending", "+13035550111", unique=True))


# -- timers -------------------------------------------------------------------------------------------------------


def _schedule(store: Store, *timers: Timer) -> None:
    run(store.commit(Changes(schedule=list(timers)), JOURNAL))


def test_store_claims_due_timers_in_due_order_under_a_lease(store: Store) -> None:
    _schedule(store, Timer(30.0, 3, "b", "k3", {}), Timer(10.0, 1, "a", "k1", {"n": 1}), Timer(10.0, 2, "a", "k2", {}))
    assert run(store.next_due()) == 10.0
    claimed = run(store.claim_due(20.0, limit=10, lease_s=60))
    assert [(c.timer.id, c.timer.args) for c in claimed] == [("t1", {"n": 1}), ("t2", {})]  # t3 is not due
    assert run(store.claim_due(20.0, limit=10, lease_s=60)) == []  # leased: nobody else takes them
    run(store.commit(Changes(consume=claimed[0]), JOURNAL))
    assert [t.id for t in run(store.timers())] == ["t2", "t3"]
    assert [c.timer.id for c in run(store.claim_due(40.0, limit=1, lease_s=60))] == ["t3"]  # at most `limit`


def test_store_a_lease_that_ran_out_passes_the_timer_on_and_fences_the_first_holder(store: Store) -> None:
    _schedule(store, Timer(1.0, 1, "a", "k1", {}))
    [first] = run(store.claim_due(1.0, limit=1, lease_s=0.05))
    time.sleep(0.1)  # the first holder died, or stalled, past its lease
    [second] = run(store.claim_due(1.0, limit=1, lease_s=60))
    assert second.timer.id == first.timer.id and second.fence > first.fence
    key = ("call", "k1")
    late = Changes(expect={key: 0}, put={key: put(outcome="first")}, consume=first)
    with pytest.raises(Conflict):  # the late holder's work is refused whole
        run(store.commit(late, JOURNAL))
    assert run(store.get_many([key])) == {}
    run(store.commit(Changes(expect={key: 0}, put={key: put(outcome="second")}, consume=second), JOURNAL))
    assert run(store.timers()) == []
    with pytest.raises(Conflict):  # and a timer runs once: consumed, it cannot be consumed again
        run(store.commit(Changes(consume=Claimed(second.timer, second.fence)), JOURNAL))


def test_store_cancelled_timers_are_gone(store: Store) -> None:
    _schedule(store, Timer(1.0, 1, "a", "k1", {}), Timer(2.0, 2, "a", "k2", {}))
    run(store.commit(Changes(cancel={"t1"}), JOURNAL))
    assert [t.id for t in run(store.timers())] == ["t2"]
    assert [c.timer.id for c in run(store.claim_due(5.0, limit=5, lease_s=5))] == ["t2"]


# -- leases, journal, meta, feed ----------------------------------------------------------------------------------


def test_store_named_lease_has_one_holder_until_released_or_run_out(store: Store) -> None:
    token = run(store.acquire("advance", 60))
    assert token and run(store.acquire("advance", 60)) is None
    assert run(store.release("advance", token)) and not run(store.release("advance", token))
    short = run(store.acquire("advance", 0.05))
    time.sleep(0.1)
    taken = run(store.acquire("advance", 60))
    assert taken and taken != short
    assert short is not None and not run(store.release("advance", short))  # a holder whose lease ran out
    assert not run(store.renew("advance", short, 60))
    renewed = run(store.acquire("renewed", 0.2))
    assert renewed is not None and run(store.renew("renewed", renewed, 60))
    time.sleep(0.3)
    assert run(store.acquire("renewed", 60)) is None  # still held: the renewal moved its end


def _entry(i: int) -> Entry:
    return Entry(i, "2026-01-01T00:00:00Z", "GET", "/x", "", None, None, 200, (), b"", b"", 1.0)


def test_store_journal_keeps_the_newest_entries(store: Store) -> None:
    for i in range(1, 9):
        run(store.commit(Changes(journal=[_entry(i)]), JOURNAL))
    assert [e.id for e in run(store.journal())] == [4, 5, 6, 7, 8]
    assert [e.id for e in run(store.journal(after=5, limit=2))] == [6, 7]
    assert run(store.journal())[0] == _entry(4)


def test_store_meta_and_load(store: Store) -> None:
    run(store.commit(Changes(meta={"clock": {"offset": 2.5}, "webhook_ids": 4}), JOURNAL))
    create(store, "profile", "p1", name="one")
    _schedule(store, Timer(1.0, 1, "a", "k1", {"x": [1]}))
    meta = run(store.meta())
    assert meta["clock"] == {"offset": 2.5} and meta["webhook_ids"] == 4
    loaded = run(store.load(3))
    assert [(r.id, r.data) for r in loaded.records] == [("p1", {"name": "one"})]
    assert loaded.timers == [Timer(1.0, 1, "a", "k1", {"x": [1]})]
    run(store.clear())
    loaded = run(store.load(3))
    assert (loaded.records, loaded.timers, loaded.journal) == ([], [], [])


@pytest.fixture(params=sorted(BACKENDS))
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store as the processes sharing it open it: the workers of `serve --workers` share a SQLite file."""
    opened = SqliteStore(tmp_path / "state.db", shared=True) if request.param == "sqlite" else _redis(request, tmp_path)
    yield opened
    run(opened.close())


def test_store_change_feed_names_what_each_commit_changed(shared_store: Store) -> None:
    store = shared_store
    cursor, rows = run(store.feed(None))  # from now on
    assert rows == []
    create(store, "call", "c1")
    changes = Changes(delete={("call", "c1")}, put={("message", "m1"): put()}, meta={"clock": 1})
    changes.schedule.append(Timer(5.0, 3, "telnyx.expire", "v1", {}))
    changes.cancel.add("t2")
    changes.journal.append(_entry(7))
    number = run(store.commit(changes, JOURNAL))
    cursor, rows = run(store.feed(cursor))
    assert [n for n, _ in rows] == [number - 1, number]  # one after another, each commit's own number
    assert rows[0][1] == [("call", "c1")]
    assert set(rows[1][1]) == {
        ("call", "c1"), ("message", "m1"), ("timer", "t3"), ("timer", "t2"), ("meta", "clock"), ("journal", "7")
    }  # fmt: skip
    assert run(store.feed(cursor)) == (cursor, [])
    assert run(store.commit(Changes(), JOURNAL)) == 0  # nothing to name: no row

    async def stream() -> list[tuple[str, str]]:
        changes = changes_since(store, cursor, poll_s=0.01)
        waiting = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.05)
        await store.commit(Changes(put={("profile", "p1"): put()}), JOURNAL)
        return await asyncio.wait_for(waiting, 5)

    assert run(stream()) == [("profile", "p1")]


def test_sqlite_store_of_a_single_server_keeps_no_change_feed(tmp_path: Path) -> None:
    """Only other processes read the feed (to catch up): a file one server holds for itself writes none, and a file
    served later by workers gives them a feed from its last number on."""
    single = SqliteStore(tmp_path / "state.db")
    create(single, "call", "c1")
    assert run(single.commit(Changes(put={("call", "c2"): put()}), JOURNAL)) == 0
    assert run(single.feed(None)) == (0, [])
    run(single.close())
    workers = SqliteStore(tmp_path / "state.db", shared=True)
    cursor, _ = run(workers.feed(None))
    number = run(workers.commit(Changes(put={("call", "c3"): put()}), JOURNAL))
    assert run(workers.feed(cursor)) == (number, [(number, [("call", "c3")])])
    run(workers.close())


def _on_file(path: Path, copy: Path) -> int:
    """Calls the database file itself holds, what its WAL holds aside (a copy of the file alone is read)."""
    for _ in range(100):
        copy.write_bytes(path.read_bytes())
        try:
            with contextlib.closing(sqlite3.connect(copy)) as db:
                if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone():
                    return 0  # (not even the tables made when the file was created have been copied yet)
                return int(db.execute("SELECT count(*) FROM records WHERE kind = 'call'").fetchone()[0])
        except sqlite3.DatabaseError:  # (copied while a page was being written into it)
            time.sleep(0.01)
        finally:
            for leftover in copy.parent.glob(f"{copy.name}*"):
                leftover.unlink()
    raise AssertionError(f"{path} could not be read")


def _wal_frames(path: Path) -> int:
    """Pages the WAL holds since it last started over (asked once everything is in the file: it copies nothing)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for _ in range(100):
            busy, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy:
                return int(frames)
            time.sleep(0.01)
    raise AssertionError(f"{path}: the WAL stayed busy")


def _calls(store: Store, first: int, count: int) -> None:
    """Each in a commit of its own, as many pages as there are calls."""
    for i in range(first, first + count):
        create(store, "call", f"c{i}", padding="x" * 3000)  # (a page each)


def _until(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sqlite_store_commits_only_append_to_the_wal_which_its_checkpointer_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit only appends to the WAL, however long it grows (SQLite's automatic checkpoint copied it into the
    file inside the commit that passed 1,000 pages). The store's own thread copies it CHECKPOINT_EVERY after a
    commit, and has the WAL start over, which commits landing during a copy would otherwise prevent: under steady
    commits the WAL does not keep growing. Closing stops the thread."""
    path, copy = tmp_path / "state.db", tmp_path / "copy.db"
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 3600.0)
    store = SqliteStore(path)
    _calls(store, 0, 1200)
    assert _on_file(path, copy) == 0
    run(store.close())
    assert _on_file(path, copy) == 1200  # (SQLite copies it as the last connection closes)

    path.unlink()
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 0.2)
    store = SqliteStore(path)
    count, end = 0, time.monotonic() + 3
    while time.monotonic() < end:  # steady commits, as a server under load makes them
        _calls(store, count, 10)
        count += 10
        time.sleep(0.002)
    _until(lambda: _on_file(path, copy) == count)
    assert _wal_frames(path) < count  # (3 pages a call: a WAL that never started over would hold them all)
    run(store.close())
    assert not [t for t in threading.enumerate() if t.name == "verifymock-checkpoint"]


def test_sqlite_store_commit_waits_for_a_restart_of_the_wal_with_the_event_loop_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart holds writers back while it copies the last pages and syncs (5-50 ms under load). A commit waits for
    it without holding up the event loop, which SQLite's busy handler would: here a reader's snapshot holds the
    restart up, and the loop runs on while the commit waits; once the reader is done, the commit is made."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 0.05)
    monkeypatch.setattr(sqlite, "RESTART_WAIT", 60.0)  # (however slow this machine, the reader ends it first)
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    create(store, "call", "c0")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM records").fetchone()  # (a snapshot the restart must wait out)
        create(store, "call", "c1")  # (the checkpointer wakes)
        with contextlib.closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as probe:

            def writers_held_back() -> bool:
                try:
                    probe.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return True
                probe.execute("ROLLBACK")
                return False

            _until(writers_held_back)

        async def commit_meanwhile() -> bool:
            key = ("call", "c2")
            commit = asyncio.ensure_future(store.commit(Changes(expect={key: 0}, put={key: put()}), JOURNAL))
            for _ in range(20):  # (with the loop held up, none of these would run before the commit is made)
                await asyncio.sleep(0.01)
            waited = not commit.done()
            reader.execute("COMMIT")
            await commit
            return waited

        assert run(commit_meanwhile())
    assert version(store, "call", "c2") == 1
    run(store.close())


def test_store_reads_timers_by_id(store: Store) -> None:
    _schedule(store, Timer(1.0, 1, "a", "k1", {"x": 1}), Timer(2.0, 2, "b", "k2", {}))
    assert run(store.get_timers(["t2", "t9"])) == {"t2": Timer(2.0, 2, "b", "k2", {})}


def test_store_commit_under_a_term_is_refused_once_the_lease_is_another_holders(store: Store) -> None:
    token = run(store.acquire("term", 5))
    assert token is not None
    key = ("profile", "p1")
    run(store.commit(Changes(expect={key: 0}, put={key: put(n=1)}, term=("term", token)), JOURNAL))
    assert run(store.release("term", token))
    later = run(store.acquire("term", 5))  # another process's term
    assert later is not None
    with pytest.raises(Conflict):
        run(store.commit(Changes(expect={key: 1}, put={key: put(n=2)}, term=("term", token)), JOURNAL))
    assert version(store, "profile", "p1") == 1


def test_store_journal_reads_on_from_an_id(store: Store) -> None:
    for i in range(1, 6):
        run(store.commit(Changes(journal=[_entry(i)]), JOURNAL))
    assert [e.id for e in run(store.journal(after=2, limit=2))] == [3, 4]
    assert [e.id for e in run(store.journal(after=5))] == []


# -- the engine over a store ----------------------------------------------------------------------------------------


def test_store_a_conflict_never_stops_the_engine_committing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The file's one writer holds the state. A version moved or a unique entry taken under it (a bug, or a hand
    that edited the file) is logged, and what the engine holds is written over it, so later commits go on."""
    from starlette.testclient import TestClient

    from tests.helpers import LOCAL, TELNYX_AUTH, make_profile
    from verifymock.app import create_app
    from verifymock.config import Config

    number = "+13035550177"
    app = create_app(Config(clock="manual", state=f"sqlite:{tmp_path / 'mock.db'}"))
    with TestClient(app, base_url=LOCAL) as client:
        client.headers.update(TELNYX_AUTH)
        profile_id = make_profile(client, sms={})
        store = app.mock.store
        taken = IndexEntry("verification.dtmf_pending", number, unique=True)  # held by a record the engine lacks
        stray = Changes(expect={("verification", "stray"): 0}, put={("verification", "stray"): Put("{}", (taken,))})
        profile = ("profile", profile_id)
        moved = Changes(put={profile: put(name="edited")})  # a write the engine did not make: its version moves
        run(store.commit(stray, JOURNAL))
        run(store.commit(moved, JOURNAL))
        body = {"phone_number": number, "verify_profile_id": profile_id}
        assert client.post("/v2/verifications/dtmf_confirm", json=body).status_code == 200
        assert client.patch(f"/v2/verify_profiles/{profile_id}", json={"name": "mine"}).status_code == 200
        assert client.post("/v2/verifications/sms", json={**body, "phone_number": "+13035550178"}).status_code == 200
        assert "state commit conflict" in caplog.text
        assert run(store.get_many([profile]))[profile].data["name"] == "mine"


# -- Redis: what only a networked store has -----------------------------------------------------------------------


def test_redis_store_keeps_every_key_under_its_prefix_and_hash_tag(redis_url: str, tmp_path: Path) -> None:
    import redis

    store = RedisStore(f"{redis_url}?prefix={tmp_path.name}")
    create(store, "verification", "v1", IndexEntry("verification.dtmf_pending", "+1", unique=True), status="p")
    changes = Changes(schedule=[Timer(5.0, 1, "telnyx.expire", "v1", {})], journal=[_entry(1)], meta={"clock": 1})
    run(store.commit(changes, JOURNAL))
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"*{tmp_path.name}*")
    assert len(keys) > 8 and all(k.startswith(b"{" + tmp_path.name.encode() + b"}:") for k in keys)
    run(store.clear())
    assert run(store.get_many([("verification", "v1")])) == {} and run(store.timers()) == []
    run(store.close())
    client.close()


def test_redis_store_is_shared_by_every_process_on_its_prefix(redis_url: str, tmp_path: Path) -> None:
    spec = f"{redis_url}?prefix={tmp_path.name}"
    first, second = RedisStore(spec), RedisStore(spec)
    create(first, "profile", "p1", name="one")
    assert run(second.get_many([("profile", "p1")]))[("profile", "p1")].data == {"name": "one"}
    assert first.shared and second.shared
    run(first.close())
    run(second.close())


def test_redis_store_refuses_a_newer_layout_and_an_unreachable_server(redis_url: str, tmp_path: Path) -> None:
    import redis

    from verifymock.errors import ConfigError

    client = redis.Redis.from_url(redis_url)
    client.hset(f"{{{tmp_path.name}}}:meta", mapping={"layout": 99, "version": '"99.0.0"'})
    client.close()
    with pytest.raises(ConfigError, match=r"99\.0\.0.*upgrade verifymock"):
        RedisStore(f"{redis_url}?prefix={tmp_path.name}")
    with pytest.raises(ConfigError, match="cannot be reached"):
        RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="prefix"):
        RedisStore(f"{redis_url}?prefix=a{{b}}")
