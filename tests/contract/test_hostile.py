"""The hostile test's findings (../shared/reference/hostile-findings), each reproduced with a variant beside it: a
request that once cost the mock its memory, its event loop or its journal now gets a 4xx in the vendor's format,
and what is stored stays readable."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import LOCAL, TELNYX_AUTH, make_profile
from verifymock import scenarios
from verifymock.app import create_app
from verifymock.config import Config
from verifymock.vendors.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID

JSON = {"content-type": "application/json"}
TELESIGN_BASIC = {
    "Authorization": "Basic " + base64.b64encode(f"{DEFAULT_CUSTOMER_ID}:{DEFAULT_API_KEY}".encode()).decode()
}
CM_TOKEN = {"X-CM-PRODUCTTOKEN": "00000000-0000-0000-0000-000000000001"}
CM_BODY = {"caller": "+31201234567", "callee": "+31612345678", "prompt": "p", "valid-prompt": "v"}


FULLWIDTH_123 = "\uff11\uff12\uff13"  # digits, but not ASCII ones


def telnyx_code(response: Any) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/json", response.text
    return response.status_code, response.json()["errors"][0]["code"]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- H2, L13: code_length is bounded where the profile is saved ------------------------------------------------------


@pytest.mark.parametrize("length", [10_000_000, 5000, 11, 3, 0, -1])
def test_hostile_code_length_out_of_range_is_refused_on_create(client: TestClient, length: int) -> None:
    response = client.post(
        "/v2/verify_profiles", json={"name": "A", "sms": {"code_length": length}}, headers=TELNYX_AUTH
    )
    assert telnyx_code(response) == (422, "10015")
    assert response.json()["errors"][0]["source"]["pointer"] == "/sms/code_length"
    assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()["data"] == []


@pytest.mark.parametrize("length", [4, 10])
def test_hostile_code_length_in_range_makes_codes_of_that_length(client: TestClient, length: int) -> None:
    profile_id = make_profile(client, sms={"app_name": "Acme", "code_length": length})
    sent = client.post(
        "/v2/verifications/sms",
        json={"phone_number": "+13035551299", "verify_profile_id": profile_id},
        headers=TELNYX_AUTH,
    )
    assert sent.status_code == 200
    text = client.get("/_mock/handsets/+13035551299").json()["messages"][0]["text"]
    assert text.endswith(f": {text.rsplit(': ', 1)[1]}") and len(text.rsplit(": ", 1)[1].rstrip(".")) == length


def test_hostile_code_length_refused_on_update_changes_nothing(client: TestClient) -> None:
    profile_id = make_profile(client)
    before = client.get(f"/v2/verify_profiles/{profile_id}", headers=TELNYX_AUTH).json()
    response = client.patch(
        f"/v2/verify_profiles/{profile_id}",
        json={"name": "Renamed", "call": {"code_length": 4301}},
        headers=TELNYX_AUTH,
    )
    assert telnyx_code(response) == (422, "10015")
    assert client.get(f"/v2/verify_profiles/{profile_id}", headers=TELNYX_AUTH).json() == before


# -- H3: template text is bounded ----------------------------------------------------------------------------------


def test_hostile_template_text_is_bounded(client: TestClient) -> None:
    huge = client.post("/v2/verify_profiles/templates", json={"text": "{{code}}" * 12_800}, headers=TELNYX_AUTH)
    assert telnyx_code(huge) == (422, "10015")
    at_limit = client.post("/v2/verify_profiles/templates", json={"text": "x" * 1600}, headers=TELNYX_AUTH)
    assert at_limit.status_code == 200
    template_id = at_limit.json()["data"]["id"]
    grown = client.patch(f"/v2/verify_profiles/templates/{template_id}", json={"text": "x" * 1601}, headers=TELNYX_AUTH)
    assert telnyx_code(grown) == (422, "10015")
    templates = client.get("/v2/verify_profiles/templates", headers=TELNYX_AUTH).json()["data"]
    assert [len(t["text"]) for t in templates] == [1600]


# -- M1, M2: what cannot be written back out is refused at the door --------------------------------------------------


def test_hostile_lone_surrogate_anywhere_leaves_the_journal_readable(client: TestClient) -> None:
    client.post("/nowhere", content=b'{"x":"\\ud800"}', headers=JSON)
    created = client.post("/v2/verify_profiles", content=b'{"name":"\\udfff"}', headers={**TELNYX_AUTH, **JSON})
    assert telnyx_code(created) == (400, "10023")
    assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()["data"] == []
    journal = client.get("/_mock/journal")
    assert journal.status_code == 200
    assert [e["path"] for e in journal.json()["data"]] == ["/nowhere", "/v2/verify_profiles", "/v2/verify_profiles"]


@pytest.mark.parametrize("depth", [201, 960, 1000, 1024])
def test_hostile_deep_nesting_is_malformed_on_both_paths(client: TestClient, depth: int) -> None:
    fast = client.post("/v2/verify_profiles", content=nested(depth), headers={**TELNYX_AUTH, **JSON})
    assert telnyx_code(fast) == (400, "10023")
    full = client.post("/v2/verify_profiles?x=1", content=nested(depth), headers={**TELNYX_AUTH, **JSON})
    assert telnyx_code(full) == (400, "10023")
    client.post("/nowhere", content=nested(depth), headers=JSON)
    assert client.get("/_mock/journal").status_code == 200


def test_hostile_nesting_within_the_limit_is_still_json(client: TestClient) -> None:
    response = client.post("/v2/verify_profiles", content=nested(200), headers={**TELNYX_AUTH, **JSON})
    assert telnyx_code(response) == (400, "10015")  # parsed, then refused by the schema: not an object


# -- M3: media types are case-insensitive on the full path too -------------------------------------------------------


def test_hostile_mixed_case_media_type_is_json(client: TestClient) -> None:
    queued = client.post("/voiceapi/v2/DTMF", json=CM_BODY, headers={**CM_TOKEN, "content-type": "Application/JSON"})
    assert queued.status_code == 200, queued.text
    advanced = client.post(
        "/_mock/clock/advance?x=1", content=b'{"seconds": 1}', headers={"content-type": "APPLICATION/JSON"}
    )
    assert advanced.status_code == 200, advanced.text


# -- M4: codes that are not ASCII ----------------------------------------------------------------------------------


def test_hostile_non_ascii_code_is_a_rejected_check(client: TestClient) -> None:
    profile_id = make_profile(client)
    body = {"phone_number": "+13035551234", "verify_profile_id": profile_id}
    verification = client.post("/v2/verifications/sms", json=body, headers=TELNYX_AUTH).json()["data"]
    by_id = client.post(
        f"/v2/verifications/{verification['id']}/actions/verify", json={"code": FULLWIDTH_123}, headers=TELNYX_AUTH
    )
    assert (by_id.status_code, by_id.json()["data"]["response_code"]) == (200, "rejected")
    by_number = client.post(
        "/v2/verifications/by_phone_number/+13035551234/actions/verify",
        json={"code": "\u008d\u00be", "verify_profile_id": profile_id},
        headers=TELNYX_AUTH,
    )
    assert (by_number.status_code, by_number.json()["data"]["response_code"]) == (200, "rejected")


@pytest.mark.parametrize("code", [FULLWIDTH_123, "12a4", ""])
def test_hostile_custom_code_must_be_digits(client: TestClient, code: str) -> None:
    profile_id = make_profile(client)
    body = {"phone_number": "+13035551234", "verify_profile_id": profile_id, "custom_code": code}
    response = client.post("/v2/verifications/sms", json=body, headers=TELNYX_AUTH)
    assert telnyx_code(response) == (422, "10015")
    assert response.json()["errors"][0]["source"]["pointer"] == "/custom_code"


# -- M5: a newline after a pattern's end -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?x=1"])
def test_hostile_trailing_newline_fails_patterns_on_both_paths(client: TestClient, query: str) -> None:
    profile_id = make_profile(client)
    sms = client.post(
        f"/v2/verifications/sms{query}",
        json={"phone_number": "+13035551234\n", "verify_profile_id": profile_id},
        headers=TELNYX_AUTH,
    )
    assert telnyx_code(sms) == (400, "10016")
    profile = client.post(
        f"/v2/verify_profiles{query}", json={"name": "B", "sms": {"app_name": "Acme\n"}}, headers=TELNYX_AUTH
    )
    assert telnyx_code(profile) == (400, "10015")
    assert client.get("/_mock/handsets").json()["data"] == []


def test_hostile_trailing_newline_is_refused_by_telesign(client: TestClient) -> None:
    response = client.post("/v1/verify/call", data={"phone_number": "15555550100\n"}, headers=TELESIGN_BASIC)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == -10001


# -- L1, L2: TeleSign's dates and forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "date", ["Mon, 01 Jan 2026 00:00:00 +99999999999999999999", "Mon, 01 Jan 99999 00:00:00 +0000"]
)
def test_hostile_absurd_telesign_date_is_not_rfc_822(client: TestClient, date: str) -> None:
    headers = {
        "Authorization": f"TSA {DEFAULT_CUSTOMER_ID}:abc",
        "Date": date,
        "x-ts-auth-method": "HMAC-SHA256",
        "x-ts-nonce": "0123456789",
    }
    response = client.post("/v1/verify/call", data={"phone_number": "15555550100"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] in (-30009, -30010)


def test_hostile_form_with_too_many_fields_is_a_400(client: TestClient) -> None:
    body = "phone_number=15555550100" + "&a=b" * 1001
    response = client.post(
        "/v1/verify/call",
        content=body.encode(),
        headers={**TELESIGN_BASIC, "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["status"]["code"] == 500  # TeleSign's "transaction not attempted"


# -- L5, L14: the page's files and the event stream ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["%00", "a" * 300, "..%2Fapp.py", "app.css%00"])
def test_hostile_odd_page_file_names_are_404(client: TestClient, name: str) -> None:
    assert client.get(f"/_mock/ui/{name}").status_code == 404


@pytest.mark.parametrize("method", ["DELETE", "POST", "PUT"])
def test_hostile_event_stream_takes_only_get(client: TestClient, method: str) -> None:
    response = client.request(method, "/_mock/events")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_hostile_form_value_that_is_not_utf8_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/verify/call",
        content=b"phone_number=15555550100&tts_message=%FF%FE+$$CODE$$",
        headers={**TELESIGN_BASIC, "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == -10001


# -- M8: without a token the control API is this machine's alone, and the journal keeps no secrets ------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "attacker.example"},
        {"Host": "127.0.0.1.nip.example:4010"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Host": "localhost:4010", "Origin": "https://evil.example:4010"},
    ],
)
def test_hostile_foreign_host_or_origin_cannot_use_the_control_api(client: TestClient, headers: dict[str, str]) -> None:
    profile_id = make_profile(client)
    reset = client.post("/_mock/reset", content=b"x", headers={**headers, "content-type": "text/plain"})
    assert reset.status_code == 403
    assert reset.json()["status"] == 403
    assert client.get("/_mock/journal", headers=headers).status_code == 403
    assert client.get(f"/v2/verify_profiles/{profile_id}", headers=TELNYX_AUTH).status_code == 200  # still there


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "localhost:4010"},
        {"Host": "[::1]:4010"},
        {"Host": "127.0.0.2"},
        {"Host": "127.0.0.1:4010", "Origin": "http://127.0.0.1:4010"},
        {"Host": "localhost", "Origin": "http://localhost:5173"},
    ],
)
def test_hostile_loopback_host_and_origin_use_the_control_api(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/_mock/health", headers=headers).status_code == 200


def test_hostile_control_token_answers_any_host() -> None:
    with TestClient(create_app(Config(control_token="s3cret")), base_url="http://mock.internal") as client:
        answer = client.get("/_mock/health", headers={"Authorization": "Bearer s3cret", "Origin": "http://qa.example"})
        assert answer.status_code == 200


def test_hostile_journal_redacts_credentials(client: TestClient) -> None:
    client.get("/v2/verify_profiles", headers={"Authorization": "Bearer SECRET-KEY"})
    client.post("/v1/verify/call", data={"phone_number": "15555550100"}, headers=TELESIGN_BASIC)
    client.post("/voiceapi/v2/DTMF", json=CM_BODY, headers=CM_TOKEN)
    journal = client.get("/_mock/journal").json()["data"]
    headers = [entry["request"]["headers"] for entry in journal]
    assert headers[0]["authorization"] == "Bearer [redacted]"
    assert headers[1]["authorization"] == "Basic [redacted]"
    assert headers[2]["x-cm-producttoken"] == "[redacted]"
    assert "SECRET" not in client.get("/_mock/journal").text
    assert DEFAULT_API_KEY not in client.get("/_mock/journal").text


def test_hostile_journal_keeps_credentials_when_asked() -> None:
    with TestClient(create_app(Config(journal_credentials=True)), base_url=LOCAL) as client:
        client.get("/v2/verify_profiles", headers={"Authorization": "Bearer SECRET-KEY"})
        entry = client.get("/_mock/journal").json()["data"][0]
        assert entry["request"]["headers"]["authorization"] == "Bearer SECRET-KEY"


# -- L13: what a vendor refuses, the mock refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page[number]=\u0661",  # an Arabic-Indic digit one
        "page[size]=\uff11",  # a fullwidth one
        "page[number]=1_000",
        "page[number]]=3",
        "page]=1",
        "page[size]=2&page[size][x]=5",
    ],
)
def test_hostile_query_integers_and_object_keys_are_strict(client: TestClient, query: str) -> None:
    response = client.get(f"/v2/verify_profiles?{query}", headers=TELNYX_AUTH)
    assert telnyx_code(response) == (400, "10015")


def test_hostile_tollfree_page_in_other_digits_is_refused(client: TestClient) -> None:
    response = client.get("/v2/messaging_tollfree/verification/requests?page=\uff11&page_size=10", headers=TELNYX_AUTH)
    assert telnyx_code(response)[0] == 400


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "gopher://127.0.0.1/"])
def test_hostile_profile_webhook_url_must_be_http(client: TestClient, url: str) -> None:
    response = client.post("/v2/verify_profiles", json={"name": "A", "webhook_url": url}, headers=TELNYX_AUTH)
    assert telnyx_code(response) == (422, "10015")


@pytest.mark.parametrize("timeout", [-5, 0, 10**9])
def test_hostile_verification_timeout_out_of_range_is_refused(client: TestClient, timeout: int) -> None:
    profile_id = make_profile(client)
    body = {"phone_number": "+13035551297", "verify_profile_id": profile_id, "timeout_secs": timeout}
    response = client.post("/v2/verifications/sms", json=body, headers=TELNYX_AUTH)
    if timeout == 0:  # 0 means "the profile's default", as an absent value does
        assert response.status_code == 200
    else:
        assert telnyx_code(response) == (422, "10015")


@pytest.mark.parametrize("header", [("content-encoding", "gzip"), ("content-encoding", "br")])
def test_hostile_content_encoding_is_unsupported(client: TestClient, header: tuple[str, str]) -> None:
    response = client.post("/v2/verify_profiles", json={"name": "A"}, headers={**TELNYX_AUTH, header[0]: header[1]})
    assert telnyx_code(response) == (415, "10014")
    assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()["data"] == []


def test_hostile_faults_are_bounded(client: TestClient) -> None:
    for _ in range(1000):
        assert client.post("/_mock/faults", json={"operation_id": "Nope"}).status_code == 201
    refused = client.post("/_mock/faults", json={"operation_id": "Nope"})
    assert refused.status_code == 422
    assert "1000 faults" in refused.json()["detail"]


def test_hostile_bindings_are_bounded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "MAX_BINDINGS", 3)
    for number in ("+13035550001", "+13035550002", "+13035550003"):
        assert client.put(f"/_mock/bindings/{number}", json={"scenario": "interactive"}).status_code == 200
    assert client.put("/_mock/bindings/+13035550004", json={"scenario": "interactive"}).status_code == 422
    assert client.put("/_mock/bindings/+13035550003", json={"scenario": "default"}).status_code == 200  # a rebind


# -- L6: a binding does not outlive its scenario ----------------------------------------------------------------------


def test_hostile_binding_of_a_deleted_scenario_is_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    (folder / "custom").mkdir(parents=True)
    (folder / "custom" / "x.yaml").write_text("summary: mine\ncallee: {outcome: busy}\n")
    app = create_app(Config(scenarios=[folder]))
    with TestClient(app, base_url=LOCAL) as client:
        assert client.put("/_mock/bindings/+13035558101", json={"scenario": "custom/x"}).status_code == 200
        (folder / "custom" / "x.yaml").unlink()
        app.mock.reload_scenarios()
        assert client.get("/_mock/bindings").json()["data"] == []
        profile_id = make_profile(client)
        body = {"phone_number": "+13035558101", "verify_profile_id": profile_id}
        sent = client.post("/v2/verifications/sms", json=body, headers=TELNYX_AUTH)
        assert sent.status_code == 200, sent.text  # the default scenario, not a 400 about a header never sent


# -- M12: nothing is acknowledged that was not kept -------------------------------------------------------------------


def test_hostile_a_change_that_cannot_be_saved_is_not_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Config(state=f"sqlite:{tmp_path / 'mock.db'}"))
    with TestClient(app, base_url=LOCAL) as client:
        assert client.post("/v2/verify_profiles", json={"name": "Kept"}, headers=TELNYX_AUTH).status_code == 200
        store = app.mock.store
        working = store.commit

        async def broken(*args: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store, "commit", broken)
        refused = client.post("/v2/verify_profiles", json={"name": "Lost"}, headers=TELNYX_AUTH)
        assert telnyx_code(refused) == (503, "10007")
        assert "could not be saved" in refused.json()["errors"][0]["detail"]
        cm = client.post("/voiceapi/v2/DTMF", json=CM_BODY, headers=CM_TOKEN)
        assert cm.status_code == 503 and cm.json()["status"] == 503
        assert client.get("/_mock/health").status_code == 200  # a read acknowledges nothing
        monkeypatch.setattr(store, "commit", working)
        assert client.post("/v2/verify_profiles", json={"name": "Later"}, headers=TELNYX_AUTH).status_code == 200
    # what could not be written then was written with the next commit: a restart has all of it
    with TestClient(create_app(Config(state=f"sqlite:{tmp_path / 'mock.db'}")), base_url=LOCAL) as client:
        names = {p["name"] for p in client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()["data"]}
        assert names == {"Kept", "Lost", "Later"}
