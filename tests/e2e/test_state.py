"""`--state sqlite:PATH` and `--state redis://`: a killed server comes back with everything it answered, its calls
and its timers."""

from __future__ import annotations

import contextlib
import resource
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import REPO, TELNYX_AUTH, VERIFYMOCK, make_profile, running
from tests.receiver import Receiver, webhook_receiver
from verifymock.engine import ADVANCE_LEASE_S
from verifymock.state.sqlite import SCHEMA
from verifymock.vendors.cm import DEFAULT_TOKEN as CM_DEFAULT_TOKEN

REQUESTS = 1000
KILL_AFTER = 400  # answered requests before the SIGKILL


def _options(db: Path | str) -> list[str]:
    return ["--state", db if isinstance(db, str) else f"sqlite:{db}", "--clock", "manual", "--quiet"]


@pytest.fixture(params=["sqlite", "redis"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A durable state store, as --state names it: a file, or a prefix of its own on the tests' Redis server."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'mock.db'}"
    return f"{request.getfixturevalue('redis_url')}?prefix={tmp_path.name}"


def test_state_survives_sigkill_in_the_middle_of_a_run(durable: str) -> None:
    db = durable
    answered: dict[str, str] = {}  # verification id -> phone number, for every 2xx the clients saw
    lock = threading.Lock()
    with webhook_receiver() as receiver, running(_options(db), cwd=REPO) as (url, process):
        with httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
            profile_id = make_profile(client, webhook_url=f"{receiver.url}/hooks")
        killed = threading.Event()

        def verify(i: int) -> None:
            if killed.is_set():
                return
            number = f"+1312555{i:04d}"
            body = {"phone_number": number, "verify_profile_id": profile_id}
            try:
                response = httpx.post(f"{url}/v2/verifications/dtmf_confirm", json=body, headers=TELNYX_AUTH)
            except httpx.TransportError:
                return  # the server died under this request: it was never answered
            assert response.status_code == 200, response.text
            with lock:
                answered[response.json()["data"]["id"]] = number
                if len(answered) == KILL_AFTER:
                    process.kill()  # SIGKILL: no shutdown hook runs
                    killed.set()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(verify, range(REQUESTS)))
        process.wait(timeout=10)
        assert process.returncode == -9
        assert KILL_AFTER <= len(answered) < REQUESTS

        with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
            _check_everything_answered_is_back(client, answered)
            # the timers came back too: the default callee answers at 2 s and presses 1 at 5 s
            assert client.post("/_mock/clock/advance", json={"seconds": 6}, timeout=120).status_code == 200
            for verification_id, number in answered.items():
                data = client.get(f"/v2/verifications/{verification_id}").json()["data"]
                assert data["status"] == "accepted", (number, data)
            _check_webhooks(client, receiver, set(answered))


def _check_everything_answered_is_back(client: httpx.Client, answered: dict[str, str]) -> None:
    for verification_id, number in answered.items():
        response = client.get(f"/v2/verifications/{verification_id}")
        assert response.status_code == 200, (verification_id, response.text)
        assert response.json()["data"]["status"] == "pending"
        calls = client.get(f"/_mock/handsets/{number}").json()["calls"]
        assert [c["state"] for c in calls] == ["ringing"], number
    journaled = {
        e["response"]["body"]["data"]["id"]
        for e in client.get("/_mock/journal", params={"operation_id": "CreateVerificationDtmfConfirm"}).json()["data"]
        if e["status_code"] == 200
    }
    assert set(answered) <= journaled


def _check_webhooks(client: httpx.Client, receiver: Receiver, ids: set[str]) -> None:
    delivered = {orjson.loads(r.body)["data"]["payload"]["id"] for r in receiver.at("/hooks")}
    assert ids <= delivered
    states = {d["subject"]: d["state"] for d in client.get("/_mock/webhooks").json()["data"]}
    assert all(states[i] == "delivered" for i in ids)


def test_state_restores_profiles_bindings_clock_and_key_after_a_clean_stop(durable: str) -> None:
    db = durable
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client)
        assert client.put("/_mock/bindings/+13125550100", json={"scenario": "interactive"}).status_code == 200
        client.post("/_mock/clock/advance", json={"seconds": 3600})
        key = client.get("/_mock/keys").json()["telnyx"]["public_key"]
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        assert client.get(f"/v2/verify_profiles/{profile_id}").status_code == 200
        bindings = client.get("/_mock/bindings").json()["data"]
        assert {"phone_number": "+13125550100", "scenario": "interactive"} in bindings
        assert client.get("/_mock/clock").json()["now"] == "2026-01-01T01:00:00Z"
        assert client.get("/_mock/keys").json()["telnyx"]["public_key"] == key
        # reset empties the file too
        assert client.post("/_mock/reset").status_code == 204
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        assert client.get(f"/v2/verify_profiles/{profile_id}").status_code == 404
        paths = [e["path"] for e in client.get("/_mock/journal").json()["data"]]
        assert paths[0] == "/_mock/reset" and "/v2/verify_profiles" not in paths


def test_state_file_of_a_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    import sqlite3
    import subprocess
    import sys

    db = tmp_path / "mock.db"
    with running(_options(db), cwd=REPO):
        pass
    with sqlite3.connect(db) as connection:
        connection.execute(f"UPDATE meta SET value = '{SCHEMA + 1}' WHERE key = 'schema'")
        connection.execute("""UPDATE meta SET value = '"99.0.0"' WHERE key = 'version'""")
    result = subprocess.run(
        [sys.executable, "-m", "verifymock", "serve", *_options(db), "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "--state" in result.stderr and "99.0.0" in result.stderr and "upgrade verifymock" in result.stderr


def test_state_file_is_served_by_one_server_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "mock.db"
    with running(_options(db), cwd=REPO) as (url, _):
        second = subprocess.run(
            [*VERIFYMOCK, "serve", *_options(db), "--port", "0"], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        [line] = second.stderr.strip().splitlines()
        assert str(db) in line and "already served by another verifymock" in line
        assert httpx.get(f"{url}/_mock/health").status_code == 200  # the first goes on serving
    with running(_options(db), cwd=REPO) as (url, _):  # once it has stopped, the file is free
        assert httpx.get(f"{url}/_mock/health").status_code == 200


def _file_of_the_previous_layout(db: Path) -> None:
    """A state file as verifymock wrote it before state was data (schema 0): meta with a `format`, one pickled
    snapshot, and journal entries pickled whole."""
    import pickle
    import sqlite3

    from verifymock.journal import Entry

    entry = Entry(
        7, "2026-01-01T00:00:00+00:00", "POST", "/v2/verify_profiles", "", "CreateVerifyProfile", "telnyx", 200,
        (("content-type", "application/json"),), b'{"name":"old"}', b'{"data":{}}', 1.5, ("p1",),
    )  # fmt: skip
    with sqlite3.connect(db) as connection:
        connection.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL);
            CREATE TABLE journal (id INTEGER PRIMARY KEY, entry BLOB NOT NULL);
            """
        )
        connection.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "2"), ("version", "0.9.0")])
        connection.execute("INSERT INTO snapshot VALUES (1, ?)", (b"\x80\x05 not a snapshot this version reads",))
        connection.execute("INSERT INTO journal VALUES (?, ?)", (entry.id, pickle.dumps(entry)))


def test_state_file_of_the_previous_layout_is_migrated_and_served(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "mock.db"
    _file_of_the_previous_layout(db)
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        [old, *_] = client.get("/_mock/journal").json()["data"]
        assert (old["id"], old["path"], old["request"]["body"], old["touched"]) == (
            7,
            "/v2/verify_profiles",
            {"name": "old"},
            ["p1"],
        )
        profile_id = make_profile(client)  # and it serves, writing the new layout
        assert client.get(f"/v2/verify_profiles/{profile_id}").status_code == 200
    with sqlite3.connect(db) as connection:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert meta["schema"] == str(SCHEMA) and "format" not in meta
    assert "snapshot" not in tables and {"records", "timers", "journal"} <= tables
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        assert client.get(f"/v2/verify_profiles/{profile_id}").status_code == 200  # kept as data from then on
        assert client.get("/_mock/journal").json()["data"][0]["id"] == 7


def test_state_file_written_change_by_change(tmp_path: Path) -> None:
    """A request writes the records it changed, not the state: a check on one verification among many leaves
    every other row as it was (its version too)."""
    import sqlite3

    db = tmp_path / "mock.db"
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client, sms={})
        ids = [
            client.post(
                "/v2/verifications/sms",
                json={"phone_number": f"+1312555{i:04d}", "verify_profile_id": profile_id, "custom_code": "1234"},
            ).json()["data"]["id"]
            for i in range(20)
        ]

        def versions() -> dict[tuple[str, str], int]:
            with sqlite3.connect(db) as connection:
                return {(k, i): v for k, i, v in connection.execute("SELECT kind, id, version FROM records")}

        before = versions()
        accepted = client.post(f"/v2/verifications/{ids[3]}/actions/verify", json={"code": "1234"}).json()["data"]
        assert accepted["response_code"] == "accepted"
        after = versions()
    changed = {key for key in after if after[key] != before.get(key)}
    # the verification, its story, and the outcomes the check reached (coverage): nothing of the 19 others
    assert changed == {
        ("verification", ids[3]),
        ("story", ids[3]),
        ("outcome", "telnyx.check.by_id"),
        ("outcome", "telnyx.code.accepted"),
    }
    assert after[("verification", ids[3])] == before[("verification", ids[3])] + 1


def test_state_sigkill_during_an_advance_resends_the_round_under_way_with_its_event_id(durable: str) -> None:
    """A webhook is written before it is sent: killed while the receiver holds the first one, the restarted mock
    sends that same event (its id unchanged) again, and every other timer still fires, once."""
    db = durable
    with webhook_receiver() as receiver:
        with running(_options(db), cwd=REPO) as (url, process):
            with httpx.Client(base_url=url, headers=TELNYX_AUTH, timeout=60) as client:
                profile_id = make_profile(client, webhook_url=f"{receiver.url}/held")
                ids = {
                    client.post(
                        "/v2/verifications/dtmf_confirm",
                        json={"phone_number": f"+1312555{i:04d}", "verify_profile_id": profile_id},
                    ).json()["data"]["id"]
                    for i in range(5)
                }
            # the default callee answers at 2 s and presses 1 at 5 s: the first webhook is held by the receiver
            advancing = threading.Thread(
                target=lambda: _quietly(lambda: httpx.post(f"{url}/_mock/clock/advance", json={"seconds": 60})),
                daemon=True,
            )
            advancing.start()
            deadline = time.monotonic() + 30
            while not receiver.at("/held") and time.monotonic() < deadline:
                time.sleep(0.01)
            process.kill()
            process.wait(timeout=10)
        [before] = [orjson.loads(r.body)["data"] for r in receiver.at("/held")]
        receiver.held.set()  # from now on it answers at once
        with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
            deadline = time.monotonic() + 30  # the round under way is attempted again as the server starts
            while len(receiver.at("/held")) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            # a shared store's clock stays held by the killed process's advance until its lease runs out
            advanced = _advance_once_free(client, 60)
            assert advanced.status_code == 200, advanced.text
            statuses = {i: client.get(f"/v2/verifications/{i}").json()["data"]["status"] for i in ids}
    assert set(statuses.values()) == {"accepted"}
    events: dict[str, set[str]] = {}
    for received in receiver.at("/held"):
        data = orjson.loads(received.body)["data"]
        events.setdefault(data["payload"]["id"], set()).add(data["id"])
    assert set(events) == ids
    assert all(len(event_ids) == 1 for event_ids in events.values()), events  # one event per outcome
    assert events[before["payload"]["id"]] == {before["id"]}  # the one under way, sent again with its id


def _quietly(call: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server was killed under it
        call()


def _back_to_schema_1(db: Path) -> None:
    """Rewrite a state file in schema 1, the layout of the release before this one: records without a creation
    sequence, no index entries, timers without lease or fence, no change feed or named leases."""
    import sqlite3

    with sqlite3.connect(db) as connection:
        connection.executescript(
            """
            DROP TABLE indexes; DROP TABLE commits; DROP TABLE leases;
            CREATE TABLE records_1 (
                kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (kind, id)
            );
            INSERT INTO records_1 SELECT kind, id, version, data FROM records ORDER BY seq;
            DROP TABLE records; ALTER TABLE records_1 RENAME TO records;
            CREATE TABLE timers_1 (
                id TEXT PRIMARY KEY, due REAL NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                args TEXT NOT NULL
            );
            INSERT INTO timers_1 SELECT 't' || seq, due, seq, kind, key, args FROM timers;
            DROP TABLE timers; ALTER TABLE timers_1 RENAME TO timers;
            UPDATE meta SET value = '1' WHERE key = 'schema';
            DELETE FROM meta WHERE key = 'indexed';
            """
        )


@pytest.mark.parametrize("workers", [1, 3])
def test_state_file_of_schema_1_is_migrated_with_its_calls_timers_and_index_entries(
    tmp_path: Path, workers: int
) -> None:
    """The release before kept records without index entries: after the migration the engine writes them (once,
    however many workers start on the file), a pending DTMF confirmation's call goes on from where it was, and its
    number's uniqueness rule holds in the file."""
    import sqlite3

    db = tmp_path / "mock.db"
    number = "+13125550142"
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client)
        body = {"phone_number": number, "verify_profile_id": profile_id}
        verification_id = client.post("/v2/verifications/dtmf_confirm", json=body).json()["data"]["id"]
    _back_to_schema_1(db)
    served = [*_options(db), "--workers", str(workers)]
    with running(served, cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        again = client.post("/v2/verifications/dtmf_confirm", json=body)
        assert again.status_code == 422, again.text  # the first is still under way
        with sqlite3.connect(db) as connection:  # written at start-up, before anything changed the records
            kept = set(connection.execute("SELECT name, value, kind FROM indexes"))
        assert {
            ("verification.number", number, "verification"),
            ("verification.dtmf_pending", number, "verification"),
            ("call.number", number, "call"),
        } <= kept
        assert client.post("/_mock/clock/advance", json={"seconds": 6}).status_code == 200  # answered, pressed 1
        assert client.get(f"/v2/verifications/{verification_id}").json()["data"]["status"] == "accepted"
    with sqlite3.connect(db) as connection:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        entries = set(connection.execute("SELECT name, value, id FROM indexes WHERE kind = 'verification'"))
        columns = {row[1] for row in connection.execute("PRAGMA table_info(timers)")}
    assert meta["schema"] == str(SCHEMA) and meta["indexed"] == "1"
    assert entries == {("verification.number", number, verification_id)}  # no longer pending: not unique-held
    assert {"lease", "fence"} <= columns


def test_state_file_of_schema_2_keeps_its_index_entries_in_creation_order(tmp_path: Path) -> None:
    """Schema 2 kept index entries by their record's kind and id; the migration keys them by the record's creation
    sequence. Every entry is carried over, lookups by phone number give the newest first, and a pending DTMF
    confirmation still holds its number alone."""
    import asyncio
    import sqlite3

    from verifymock.state.sqlite import SqliteStore

    db = tmp_path / "mock.db"
    number = "+13125550143"
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client, sms={})
        body = {"phone_number": number, "verify_profile_id": profile_id}
        ids = [client.post("/v2/verifications/sms", json=body).json()["data"]["id"] for _ in range(5)]
        ids.append(client.post("/v2/verifications/dtmf_confirm", json=body).json()["data"]["id"])
    with sqlite3.connect(db) as connection:
        kept = set(connection.execute("SELECT name, value, kind, id, uniq FROM indexes"))
        connection.executescript(
            """
            CREATE TABLE indexes_2 (
                name TEXT NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, uniq INTEGER NOT NULL,
                PRIMARY KEY (name, value, kind, id)
            ) WITHOUT ROWID;
            INSERT INTO indexes_2 SELECT name, value, kind, id, uniq FROM indexes;
            DROP TABLE indexes; ALTER TABLE indexes_2 RENAME TO indexes;
            CREATE UNIQUE INDEX indexes_unique ON indexes (name, value) WHERE uniq = 1;
            UPDATE meta SET value = '2' WHERE key = 'schema';
            """
        )
    assert ("verification.dtmf_pending", number, "verification", ids[-1], 1) in kept
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        assert client.post("/v2/verifications/dtmf_confirm", json=body).status_code == 422  # the first is under way
        listed = client.get(f"/v2/verifications/by_phone_number/{number}").json()["data"]
        assert sorted(v["id"] for v in listed) == sorted(ids)
    with sqlite3.connect(db) as connection:
        assert set(connection.execute("SELECT name, value, kind, id, uniq FROM indexes")) == kept
        assert dict(connection.execute("SELECT key, value FROM meta"))["schema"] == str(SCHEMA)
        key = [row[1] for row in sorted(connection.execute("PRAGMA table_info(indexes)"), key=lambda r: r[5]) if row[5]]
    assert key == ["name", "value", "seq"]

    async def newest_first() -> list[str]:
        store = SqliteStore(db)
        try:
            return await store.index("verification.number", number)
        finally:
            await store.close()

    assert asyncio.run(newest_first()) == ids[::-1]


def test_state_file_of_schema_3_loses_its_timers_due_index_and_keeps_its_timers(tmp_path: Path) -> None:
    """Schema 3 indexed timers by due time; the migration drops that index. The timers themselves are carried over:
    a DTMF confirmation's call left ringing is answered and confirmed after the restart."""
    import sqlite3

    db = tmp_path / "mock.db"
    number = "+13125550144"
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        body = {"phone_number": number, "verify_profile_id": make_profile(client)}
        verification_id = client.post("/v2/verifications/dtmf_confirm", json=body).json()["data"]["id"]
    with sqlite3.connect(db) as connection:
        pending = connection.execute("SELECT count(*) FROM timers").fetchone()[0]
        connection.executescript(
            "CREATE INDEX timers_by_due ON timers (due); UPDATE meta SET value = '3' WHERE key = 'schema';"
        )
    assert pending > 0
    with running(_options(db), cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        assert client.post("/_mock/clock/advance", json={"seconds": 6}).status_code == 200  # answered, pressed 1
        assert client.get(f"/v2/verifications/{verification_id}").json()["data"]["status"] == "accepted"
    with sqlite3.connect(db) as connection:
        assert dict(connection.execute("SELECT key, value FROM meta"))["schema"] == str(SCHEMA)
        assert (
            connection.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'timers'").fetchall()
            == []
        )


def _advance_once_free(client: httpx.Client, seconds: float) -> httpx.Response:
    """Advance, retrying while the clock is held (409) by an advance of a killed process, whose lease runs out
    within ADVANCE_LEASE_S."""
    deadline = time.monotonic() + ADVANCE_LEASE_S + 5
    while True:
        response = client.post("/_mock/clock/advance", json={"seconds": seconds}, timeout=120)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_state_a_commit_the_disk_refuses_is_answered_503_and_nothing_answered_is_lost(tmp_path: Path) -> None:
    """A real refusal by the kernel, as on a full disk: the server's file size limit is lowered under it, so every
    write to its SQLite file fails (EFBIG). What it could not keep is not acknowledged; what it acknowledged
    survives a SIGKILL."""
    db = tmp_path / "mock.db"
    cm = {"X-CM-PRODUCTTOKEN": CM_DEFAULT_TOKEN}
    dtmf = {"caller": "+31201234567", "callee": "+31612345678", "prompt": "p", "valid-prompt": "v"}
    with running(_options(db), cwd=tmp_path) as (url, process):
        with httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
            assert client.post("/v2/verify_profiles", json={"name": "Kept"}).status_code == 200
            _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (1, hard))  # (Python ignores SIGXFSZ)
            refused = client.post("/v2/verify_profiles", json={"name": "Unanswered"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["errors"][0]["code"] == "10007"
            assert "could not be saved" in refused.json()["errors"][0]["detail"]
            queued = client.post("/voiceapi/v2/DTMF", json=dtmf, headers=cm)
            assert queued.status_code == 503 and queued.json()["status"] == 503, queued.text
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (hard, hard))
            assert client.post("/v2/verify_profiles", json={"name": "Later"}).status_code == 200
        process.kill()
        output = process.communicate(timeout=10)[0]
    assert f"saving state to sqlite:{db} failed" in output and "sqlite3.OperationalError" in output, output
    with running(_options(db), cwd=tmp_path) as (url, _):
        names = {p["name"] for p in httpx.get(f"{url}/v2/verify_profiles", headers=TELNYX_AUTH).json()["data"]}
    # what could not be written then went with the next commit (it was never acknowledged, but it was decided)
    assert names == {"Kept", "Unanswered", "Later"}
