"""The control API: health, reset, the journal and its filters, the control token."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.helpers import LOCAL, PROFILE_ID, TELNYX_AUTH, make_profile
from verifymock.app import create_app
from verifymock.config import Config

CALL = {"phone_number": "+13035551234", "verify_profile_id": PROFILE_ID}


def test_control_health_answers_ok(client: TestClient) -> None:
    assert client.get("/_mock/health").json() == {"status": "ok"}


def test_control_journal_records_requests_newest_last(client: TestClient) -> None:
    profile_id = make_profile(client)
    body = {**CALL, "verify_profile_id": profile_id}
    client.post("/v2/verifications/call", json=body, headers={**TELNYX_AUTH, "X-Trace": "1"})
    client.get("/v2/verifications/by_phone_number/+13035550000", headers=TELNYX_AUTH)
    entries = client.get("/_mock/journal").json()["data"]
    assert [e["operation_id"] for e in entries] == [
        "CreateVerifyProfile",
        "CreateVerificationCall",
        "ListVerifications",
    ]
    call = entries[1]
    assert call["method"] == "POST"
    assert call["path"] == "/v2/verifications/call"
    assert call["vendor"] == "telnyx"
    assert call["status_code"] == 200
    assert call["request"]["headers"]["x-trace"] == "1"
    assert call["request"]["body"] == body
    verification_id = call["response"]["body"]["data"]["id"]
    assert call["touched"] == [verification_id]
    assert entries[0]["touched"] == [profile_id]
    assert entries[0]["id"] < entries[1]["id"] < entries[2]["id"]


def test_control_journal_filters_by_operation_vendor_and_number(client: TestClient) -> None:
    profile_id = make_profile(client)
    call = {**CALL, "verify_profile_id": profile_id}
    client.post("/v2/verifications/call", json=call, headers=TELNYX_AUTH)
    client.post("/v2/verifications/sms", json={**call, "phone_number": "+447700900123"}, headers=TELNYX_AUTH)
    client.get("/v2/verifications/by_phone_number/%2B13035551234", headers=TELNYX_AUTH)

    def ops(query: str) -> list[str]:
        return [e["operation_id"] for e in client.get(f"/_mock/journal?{query}").json()["data"]]

    assert ops("operation_id=CreateVerificationSms") == ["CreateVerificationSms"]
    assert ops("phone_number=%2B13035551234") == ["CreateVerificationCall", "ListVerifications"]
    assert ops("phone_number=447700900123") == ["CreateVerificationSms"]
    assert ops("vendor=telnyx&operation_id=CreateVerificationCall") == ["CreateVerificationCall"]
    assert "GetHealth" not in ops("vendor=telnyx")


def test_control_reset_clears_the_journal(client: TestClient) -> None:
    client.get("/_mock/health")
    assert client.post("/_mock/reset").status_code == 204
    entries = client.get("/_mock/journal").json()["data"]
    assert [e["operation_id"] for e in entries] == ["ResetMock"]


def test_control_journal_is_bounded_dropping_the_oldest() -> None:
    with TestClient(create_app(Config(journal_size=3)), base_url=LOCAL) as client:
        for _ in range(5):
            client.get("/_mock/health")
        entries = client.get("/_mock/journal").json()["data"]
    assert len(entries) == 3
    assert [e["id"] for e in entries] == [3, 4, 5]  # the journal request itself is recorded once answered


def test_control_token_guards_the_control_api_only() -> None:
    with TestClient(create_app(Config(control_token="s3cret")), base_url=LOCAL) as client:
        refused = client.get("/_mock/health")
        assert refused.status_code == 401
        assert refused.json()["status"] == 401
        assert client.get("/_mock/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/_mock/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).status_code == 200


def test_control_api_keys_limit_telnyx_credentials() -> None:
    with TestClient(create_app(Config(api_keys=["KEY1"])), base_url=LOCAL) as client:
        assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).status_code == 401
        assert client.get("/v2/verify_profiles", headers={"Authorization": "Bearer KEY1"}).status_code == 200


def test_control_specs_lists_what_is_mounted(client: TestClient) -> None:
    specs = {s["name"]: s for s in client.get("/_mock/specs").json()["data"]}
    assert specs["telnyx_verify"]["base_path"] == "/v2"
    assert specs["telnyx_verify"]["vendor"] == "telnyx"
    assert specs["control"]["base_path"] == "/_mock"


def _dtmf(client: TestClient, number: str, headers: dict[str, str] | None = None) -> Any:
    profile_id = make_profile(client)
    return client.post(
        "/v2/verifications/dtmf_confirm",
        json={"phone_number": number, "verify_profile_id": profile_id},
        headers={**TELNYX_AUTH, **(headers or {})},
    )


def test_control_clock_reads_and_advances() -> None:
    with TestClient(create_app(Config(clock="manual")), base_url=LOCAL) as client:
        assert client.get("/_mock/clock").json() == {"now": "2026-01-01T00:00:00Z", "mode": "manual"}
        advanced = client.post("/_mock/clock/advance", json={"seconds": 86400 * 3}).json()
        assert advanced == {"now": "2026-01-04T00:00:00Z", "mode": "manual", "timers_run": 0}
        assert client.post("/_mock/clock/advance", json={"seconds": -1}).status_code == 400


def test_control_scenario_header_and_bindings_choose_the_callee() -> None:
    number = "+13035550100"
    with TestClient(create_app(Config(clock="manual")), base_url=LOCAL) as client:
        _dtmf(client, number, {"X-Mock-Scenario": "calls/busy"})
        client.post("/_mock/clock/advance", json={"seconds": 5})
        assert client.get(f"/_mock/handsets/{number}").json()["calls"][0]["state"] == "busy"

        assert client.put(f"/_mock/bindings/{number}", json={"scenario": "calls/voicemail"}).json() == {
            "phone_number": number,
            "scenario": "calls/voicemail",
        }
        assert client.get("/_mock/bindings").json()["data"] == [{"phone_number": number, "scenario": "calls/voicemail"}]
        _dtmf(client, number)
        client.post("/_mock/clock/advance", json={"seconds": 10})
        assert client.get(f"/_mock/handsets/{number}").json()["calls"][1]["state"] == "voicemail"

        assert client.delete(f"/_mock/bindings/{number}").status_code == 204
        assert client.delete(f"/_mock/bindings/{number}").status_code == 404
        refused = client.put(f"/_mock/bindings/{number}", json={"scenario": "no/such"})
        assert refused.status_code == 422  # the number exists as a path; the scenario the body names does not
        assert refused.json()["pointer"] == "/scenario"
        unknown = _dtmf(client, number, {"X-Mock-Scenario": "no/such"})
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["source"] == {"parameter": "X-Mock-Scenario"}


def test_control_handset_refuses_actions_that_do_not_fit_the_call() -> None:
    number = "+13035550101"
    with TestClient(create_app(Config(clock="manual")), base_url=LOCAL) as client:
        assert client.post(f"/_mock/handsets/{number}/answer").status_code == 404
        _dtmf(client, number, {"X-Mock-Scenario": "interactive"})
        assert client.post(f"/_mock/handsets/{number}/press", json={"digits": "1"}).status_code == 409
        assert client.post(f"/_mock/handsets/{number}/press", json={"digits": "x"}).status_code == 400
        assert client.post(f"/_mock/handsets/{number}/answer").json()["state"] == "in_progress"
        assert client.post(f"/_mock/handsets/{number}/decline").status_code == 409
        assert client.post(f"/_mock/handsets/{number}/hangup").json()["state"] == "completed"
        assert client.post(f"/_mock/handsets/{number}/hangup").status_code == 404


def test_control_reset_forgets_state_and_pending_timers() -> None:
    number = "+13035550102"
    with TestClient(create_app(Config(clock="manual")), base_url=LOCAL) as client:
        verification = _dtmf(client, number).json()["data"]
        client.put(f"/_mock/bindings/{number}", json={"scenario": "calls/busy"})
        assert client.post("/_mock/reset").status_code == 204
        assert client.post("/_mock/clock/advance", json={"seconds": 600}).json()["timers_run"] == 0
        assert client.get(f"/v2/verifications/{verification['id']}", headers=TELNYX_AUTH).status_code == 404
        assert client.get(f"/_mock/handsets/{number}").json() == {"phone_number": number, "calls": [], "messages": []}
        assert client.get("/_mock/bindings").json()["data"] == []
        assert client.get("/_mock/webhooks").json()["data"] == []


def test_control_scenarios_lists_built_ins_and_files(client: TestClient) -> None:
    scenarios = {s["id"]: s for s in client.get("/_mock/scenarios").json()["data"]}
    assert scenarios["default"]["source"] == "built-in"
    assert scenarios["telnyx/dtmf_confirm/press_1"]["numbers"] == ["+15005550101"]


def test_control_journal_limit_keeps_the_newest_and_the_page_reads_are_not_journaled(client: TestClient) -> None:
    for _ in range(3):
        client.get("/_mock/health")
    client.get("/_mock/clock", headers={"x-verifymock-ui": "1"})  # the web page's own read
    limited = client.get("/_mock/journal", params={"limit": 2}).json()["data"]
    assert [e["id"] for e in limited] == [2, 3]
    assert [e["operation_id"] for e in client.get("/_mock/journal").json()["data"]] == ["GetHealth"] * 3 + [
        "ListJournal"
    ]
    assert client.get("/_mock/journal", params={"limit": 0}).status_code == 400


def test_control_handsets_lists_numbers_newest_activity_first_then_bound_ones(client: TestClient) -> None:
    profile_id = make_profile(client)
    for number in ("+13035550001", "+13035550002"):
        body = {"phone_number": number, "verify_profile_id": profile_id}
        assert client.post("/v2/verifications/sms", json=body, headers=TELNYX_AUTH).status_code == 200
    client.put("/_mock/bindings/+13035550009", json={"scenario": "interactive"})
    handsets = client.get("/_mock/handsets").json()["data"]
    assert {h["phone_number"] for h in handsets[:2]} == {"+13035550001", "+13035550002"}
    assert handsets[2] == {"phone_number": "+13035550009", "calls": [], "messages": []}
    assert [len(h["messages"]) for h in handsets[:2]] == [1, 1]


def test_control_page_files_are_served_and_nothing_beside_them(client: TestClient) -> None:
    page = client.get("/_mock/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/_mock/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/_mock/ui/..%2Fstore.py").status_code == 404
    assert client.get("/_mock/ui/missing.js").status_code == 404
    assert client.post("/_mock/ui").status_code == 404
