"""`--retain N`: a mock under load keeps at most N records of each kind by letting go of finished work, oldest
finished first; work under way is never dropped."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import LOCAL, TELNYX_AUTH, make_profile
from verifymock import engine as engine_module
from verifymock.app import create_app
from verifymock.clock import COMPACT_AT, Clock
from verifymock.config import Config
from verifymock.engine import AUDIT_VARIABLE
from verifymock.vendors.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID

TELESIGN_BASIC = {
    "Authorization": "Basic " + base64.b64encode(f"{DEFAULT_CUSTOMER_ID}:{DEFAULT_API_KEY}".encode()).decode()
}


def test_retention_keeps_work_under_way_and_drops_the_oldest_finished() -> None:
    app = create_app(Config(clock="manual", retain=3))
    with TestClient(app, base_url=LOCAL) as client:
        profile_id = make_profile(client)

        def verify(i: int) -> str:
            body = {"phone_number": f"+1303555000{i}", "verify_profile_id": profile_id, "custom_code": "1234"}
            response = client.post("/v2/verifications/call", json=body, headers=TELNYX_AUTH)
            assert response.status_code == 200, response.text
            return str(response.json()["data"]["id"])

        def kept(ids: list[str]) -> list[int]:
            return [client.get(f"/v2/verifications/{i}", headers=TELNYX_AUTH).status_code for i in ids]

        ids = [verify(i) for i in range(5)]
        # five pending verifications and five ringing calls, over a retention of three: none is dropped
        assert kept(ids) == [200] * 5
        assert len(client.get("/_mock/handsets").json()["data"]) == 5
        assert len(app.mock.clock.pending()) == 5 * 2  # each: its answer and its expiry
        # they finish in this order: 3, 1, 4 (checked), then 0 and 2 stay pending
        for i in (3, 1, 4):
            client.post(f"/v2/verifications/{ids[i]}/actions/verify", json={"code": "1234"}, headers=TELNYX_AUTH)
        # the next change trims: of the finished, the first two to finish go, down to three kept
        client.put("/_mock/bindings/+13035559999", json={"scenario": "interactive"})
        assert kept(ids) == [200, 404, 200, 404, 200]
        # the calls play out (the default callee answers at 2 s); once ended, the oldest ended go, down to three
        client.post("/_mock/clock/advance", json={"seconds": 60})
        client.put("/_mock/bindings/+13035559999", json={"scenario": "interactive"})
        calls = [h["calls"] for h in client.get("/_mock/handsets").json()["data"] if h["calls"]]
        assert len(calls) == 3 and all(c[0]["state"] == "completed" for c in calls)


def test_retention_never_ends_a_live_call_so_its_dtmf_confirmation_goes_on() -> None:
    app = create_app(Config(clock="manual", retain=2))
    with TestClient(app, base_url=LOCAL) as client:
        profile_id = make_profile(client)
        body = {"phone_number": "+13035550001", "verify_profile_id": profile_id}
        client.put("/_mock/bindings/+13035550001", json={"scenario": "interactive"})  # its callee is driven by hand
        first = client.post("/v2/verifications/dtmf_confirm", json=body, headers=TELNYX_AUTH).json()["data"]["id"]
        phones, scenario = app.mock.phones, app.mock.scenarios.get("interactive")
        for number in ("+13035550002", "+13035550003"):  # two more calls (another vendor's), over the retention
            phones.place_call(
                vendor="cm", kind="dtmf", phone_number=number, caller_id="+3100", scenario=scenario, flow=None
            )
        client.put("/_mock/bindings/+13035550009", json={"scenario": "interactive"})  # any change trims
        assert [c.phone_number for c in phones.calls] == ["+13035550001", "+13035550002", "+13035550003"]
        # the first call is still live, and its confirmation completes as it would have
        client.post("/_mock/clock/advance", json={"seconds": 10})
        assert client.post("/_mock/handsets/+13035550001/answer").status_code == 200
        assert client.post("/_mock/handsets/+13035550001/press", json={"digits": "1"}).status_code == 200
        verification = client.get(f"/v2/verifications/{first}", headers=TELNYX_AUTH).json()["data"]
        assert verification["status"] == "accepted"
        # and once ended, it is the oldest ended call: the next trim lets go of it
        client.put("/_mock/bindings/+13035550009", json={"scenario": "interactive"})
        assert [c.phone_number for c in phones.calls] == ["+13035550002", "+13035550003"]


def test_clock_drops_cancelled_timers_once_they_are_most_of_the_heap() -> None:
    clock = Clock("manual")
    timers = [clock.schedule(60, "call.end", f"c{i}") for i in range(COMPACT_AT * 2)]
    for timer in timers[: COMPACT_AT + 10]:
        clock.cancel(timer.id)
    clock.schedule(1, "call.end", "c")  # the next timer added compacts the heap
    assert clock.cancelled == 0
    assert len(clock._timers) == COMPACT_AT * 2 - (COMPACT_AT + 10) + 1


def test_journal_does_not_hold_the_serializers_buffers() -> None:
    import tracemalloc

    from verifymock import jsonio

    app = create_app(Config(clock="manual"))
    with TestClient(app, base_url=LOCAL) as client:
        tracemalloc.start()
        try:
            for _ in range(200):
                make_profile(client)
            snapshot = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    held = sum(
        s.size for s in snapshot.filter_traces([tracemalloc.Filter(True, jsonio.__file__)]).statistics("filename")
    )
    # each orjson result carries its whole working buffer (KiBs); the journal keeps exact-size copies instead
    assert held < 200 * 1024, held


def test_journal_entries_are_left_out_of_the_cyclic_collectors_walks() -> None:
    import gc

    app = create_app(Config(clock="manual"))
    with TestClient(app, base_url=LOCAL) as client:
        for _ in range(20):
            response = client.post("/v2/verify_profiles", json={"name": "a"}, headers={**TELNYX_AUTH, "X-Trace": "a"})
            assert response.status_code == 200
        journal = app.mock.journal
        for _ in range(3):  # a tuple is untracked once what it holds is; a pass may meet it before its contents
            gc.collect()
        rows = list(journal._entries)
        assert len(rows) == 20
        # a tracked entry is walked by every full collection; 10,000 of them were a third of each pause under load
        assert not any(gc.is_tracked(row) for row in rows)
        entry = next(iter(journal))
        assert dict(entry.request_headers)["x-trace"] == "a"
        assert entry.to_json()["touched"] and entry.to_json()["request"]["body"]["name"]


def test_retention_with_a_store_keeps_finished_records_on_disk_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--state sqlite:`, memory holds work under way and the newest finished records of each kind (two here);
    the file holds `--retain` of each (six here). A request for a record on disk only reads it back, and every view
    shows it as before. The audit checks the file against memory after every commit."""
    monkeypatch.setattr(engine_module, "HOT_FINISHED", 2)
    monkeypatch.setenv(AUDIT_VARIABLE, "1")
    db = tmp_path / "mock.db"
    numbers = [f"+130355501{i:02d}" for i in range(8)]
    with TestClient(create_app(Config(clock="manual", state=f"sqlite:{db}", retain=6)), base_url=LOCAL) as client:
        client.headers.update(TELNYX_AUTH)
        profile_id = make_profile(client, sms={})
        ids = []
        for number in numbers:  # each finishes at once: its code is checked
            body = {"phone_number": number, "verify_profile_id": profile_id, "custom_code": "4321"}
            ids.append(client.post("/v2/verifications/sms", json=body).json()["data"]["id"])
            assert client.post(f"/v2/verifications/{ids[-1]}/actions/verify", json={"code": "4321"}).status_code == 200
        mock = client.app.mock  # type: ignore[attr-defined]
        client.put("/_mock/bindings/+13035559999", json={"scenario": "interactive"})  # a change: trimmed and evicted
        assert len(mock.telnyx.verifications) == 2 and len(mock.phones.messages) == 2
        assert _count(db, "verification") == 6 and _count(db, "message") == 6  # the oldest two were dropped
        _check_served_as_before(client, ids, numbers, profile_id)
        assert len(mock.telnyx.verifications) <= 3  # what a request read back leaves memory again
    with TestClient(create_app(Config(clock="manual", state=f"sqlite:{db}", retain=6)), base_url=LOCAL) as client:
        client.headers.update(TELNYX_AUTH)
        assert len(client.app.mock.telnyx.verifications) == 2  # type: ignore[attr-defined]
        _check_served_as_before(client, ids, numbers, profile_id)


def _count(db: Path, kind: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT count(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0])


def _check_served_as_before(client: TestClient, ids: list[str], numbers: list[str], profile_id: str) -> None:
    assert [client.get(f"/v2/verifications/{i}").status_code for i in ids] == [404] * 2 + [200] * 6
    assert client.get(f"/v2/verifications/{ids[2]}").json()["data"]["status"] == "accepted"
    listed = client.get(f"/v2/verifications/by_phone_number/{numbers[3]}").json()["data"]
    assert [v["id"] for v in listed] == [ids[3]]
    again = {"code": "4321", "verify_profile_id": profile_id}
    checked = client.post(f"/v2/verifications/by_phone_number/{numbers[3]}/actions/verify", json=again)
    # a code checked again after its verification was accepted is rejected, as in memory mode
    assert checked.status_code == 200 and checked.json()["data"]["response_code"] == "rejected"
    [message] = client.get(f"/_mock/handsets/{numbers[4]}").json()["messages"]
    assert "4321" in message["text"]
    handsets = client.get("/_mock/handsets").json()["data"]
    assert {h["phone_number"] for h in handsets if h["messages"]} == set(numbers[2:])


def test_retention_with_a_store_reads_a_telesign_transaction_back_from_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "HOT_FINISHED", 1)
    monkeypatch.setenv(AUDIT_VARIABLE, "1")
    with TestClient(create_app(Config(clock="manual", state=f"sqlite:{tmp_path / 'm.db'}")), base_url=LOCAL) as client:
        sent = [
            client.post(
                "/v1/verify/call",
                data={"phone_number": f"1555555010{i}", "verify_code": "52341"},
                headers=TELESIGN_BASIC,
            ).json()
            for i in range(3)
        ]
        client.post("/_mock/clock/advance", json={"seconds": 120})  # the calls play out: each transaction finishes
        client.put("/_mock/bindings/+13035559999", json={"scenario": "interactive"})
        mock = client.app.mock  # type: ignore[attr-defined]
        assert len(mock.telesign.transactions) == 1
        first = sent[0]["reference_id"]
        status = client.get(f"/v1/verify/{first}", params={"verify_code": "52341"}, headers=TELESIGN_BASIC)
        assert status.status_code == 200, status.text
        assert status.json()["reference_id"] == first and status.json()["verify"]["code_state"] == "VALID"
        assert status.json()["status"]["code"] != 103  # its call is over
        completion = client.put(f"/v1/verify/completion/{first}", headers=TELESIGN_BASIC)
        assert completion.status_code == 200, completion.text
