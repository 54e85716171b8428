"""The control API: health, reset, the journal and its filters, the control token."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.helpers import PROFILE_ID, TELNYX_AUTH, make_profile
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
    assert [e["operation_id"] for e in entries] == ["CreateVerifyProfile", "CreateVerificationCall", "ListVerifications"]
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
    with TestClient(create_app(Config(journal_size=3))) as client:
        for _ in range(5):
            client.get("/_mock/health")
        entries = client.get("/_mock/journal").json()["data"]
    assert len(entries) == 3
    assert [e["id"] for e in entries] == [3, 4, 5]  # the journal request itself is recorded once answered


def test_control_token_guards_the_control_api_only() -> None:
    with TestClient(create_app(Config(control_token="s3cret"))) as client:
        refused = client.get("/_mock/health")
        assert refused.status_code == 401
        assert refused.json()["status"] == 401
        assert client.get("/_mock/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/_mock/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).status_code == 200


def test_control_api_keys_limit_telnyx_credentials() -> None:
    with TestClient(create_app(Config(api_keys=["KEY1"]))) as client:
        assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).status_code == 401
        assert client.get("/v2/verify_profiles", headers={"Authorization": "Bearer KEY1"}).status_code == 200


def test_control_specs_lists_what_is_mounted(client: TestClient) -> None:
    specs = {s["name"]: s for s in client.get("/_mock/specs").json()["data"]}
    assert specs["telnyx_verify"]["base_path"] == "/v2"
    assert specs["telnyx_verify"]["vendor"] == "telnyx"
    assert specs["control"]["base_path"] == "/_mock"
