"""`--retain N`: a mock under load keeps the newest N records of each kind, and drops the rest with their timers."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.helpers import LOCAL, TELNYX_AUTH, make_profile
from verifymock.app import create_app
from verifymock.clock import COMPACT_AT, Clock
from verifymock.config import Config


def test_retention_drops_the_oldest_verifications_and_calls_with_their_timers() -> None:
    app = create_app(Config(clock="manual", retain=3))
    with TestClient(app, base_url=LOCAL) as client:
        profile_id = make_profile(client)
        ids = []
        for i in range(5):
            body = {"phone_number": f"+1303555000{i}", "verify_profile_id": profile_id}
            response = client.post("/v2/verifications/call", json=body, headers=TELNYX_AUTH)
            assert response.status_code == 200, response.text
            ids.append(response.json()["data"]["id"])
        assert [client.get(f"/v2/verifications/{i}", headers=TELNYX_AUTH).status_code for i in ids] == [404] * 2 + [
            200
        ] * 3
        handsets = client.get("/_mock/handsets").json()["data"]
        assert sorted(h["phone_number"] for h in handsets) == [f"+1303555000{i}" for i in (2, 3, 4)]
        # only the kept calls and verifications still have timers: answer and expiry, two each (no ring-out is set
        # when a scripted answer comes first)
        assert len(app.mock.clock.pending()) == 3 * 2
        # and they still run: the default callee answers at 2 s
        client.post("/_mock/clock/advance", json={"seconds": 3})
        states = [h["calls"][0]["state"] for h in client.get("/_mock/handsets").json()["data"]]
        assert states == ["in_progress"] * 3


def test_retention_ends_a_dropped_live_call_so_its_dtmf_confirmation_does_not_stay_pending() -> None:
    app = create_app(Config(clock="manual", retain=2))
    with TestClient(app, base_url=LOCAL) as client:
        profile_id = make_profile(client)
        body = {"phone_number": "+13035550001", "verify_profile_id": profile_id}
        dropped = client.post("/v2/verifications/dtmf_confirm", json=body, headers=TELNYX_AUTH).json()["data"]["id"]
        phones, scenario = app.mock.phones, app.mock.scenarios.get("interactive")
        for number in ("+13035550002", "+13035550003"):  # two more calls (another vendor's): the first must go
            phones.place_call(
                vendor="cm", kind="dtmf", phone_number=number, caller_id="+3100", scenario=scenario, flow=None
            )
        client.put("/_mock/bindings/+13035550009", json={"scenario": "interactive"})  # any change trims
        assert [c.phone_number for c in phones.calls] == ["+13035550002", "+13035550003"]
        # the dropped call ended as failed: its verification is in error, and the number takes a new one
        assert client.get(f"/v2/verifications/{dropped}", headers=TELNYX_AUTH).json()["data"]["status"] == "error"
        again = client.post("/v2/verifications/dtmf_confirm", json=body, headers=TELNYX_AUTH)
        assert again.status_code == 200, again.text


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
