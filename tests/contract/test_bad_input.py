"""Bad input never breaks the mock: each row is a 4xx in the vendor's own envelope, and nothing stored changes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import PROFILE_ID, TELNYX_AUTH, make_profile

CALL = "/v2/verifications/call"
JSON = {"content-type": "application/json"}
VALID = {"phone_number": "+13035551234", "verify_profile_id": PROFILE_ID}


def telnyx_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}
    error = body["errors"][0]
    assert error["code"] == code
    assert error["title"]
    assert error["detail"]
    return error


TELNYX_ROWS = [
    # (name, method, path, request kwargs, status, Telnyx code, pointer or parameter expected)
    (
        "malformed JSON",
        "POST",
        CALL,
        {"content": b'{"phone_number": ', "headers": {**TELNYX_AUTH, **JSON}},
        400,
        "10023",
        None,
    ),
    (
        "invalid UTF-8",
        "POST",
        CALL,
        {"content": b'{"phone_number": "\xff\xfe"}', "headers": {**TELNYX_AUTH, **JSON}},
        400,
        "10023",
        None,
    ),
    (
        "10,000-deep nesting",
        "POST",
        CALL,
        {"content": b"[" * 10_000 + b"]" * 10_000, "headers": {**TELNYX_AUTH, **JSON}},
        400,
        "10023",
        None,
    ),
    (
        "deep object nesting",
        "POST",
        CALL,
        {"content": b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "headers": {**TELNYX_AUTH, **JSON}},
        400,
        "10023",
        None,
    ),
    (
        "wrong content type",
        "POST",
        CALL,
        {"content": b"phone_number=1", "headers": {**TELNYX_AUTH, "content-type": "application/x-www-form-urlencoded"}},
        415,
        "10014",
        None,
    ),
    (
        "missing content type",
        "POST",
        CALL,
        {"content": b'{"phone_number": "+13035551234"}', "headers": TELNYX_AUTH},
        415,
        "10014",
        None,
    ),
    (
        "unknown charset",
        "POST",
        CALL,
        {"content": b"{}", "headers": {**TELNYX_AUTH, "content-type": "application/json; charset=klingon"}},
        415,
        "10014",
        None,
    ),
    ("empty body", "POST", CALL, {"headers": {**TELNYX_AUTH, **JSON}}, 400, "10015", None),
    (
        "body over 1 MiB",
        "POST",
        CALL,
        {"content": b" " * (1024 * 1024 + 1), "headers": {**TELNYX_AUTH, **JSON}},
        413,
        "10015",
        None,
    ),
    (
        "huge headers",
        "GET",
        "/v2/verify_profiles",
        {"headers": {**TELNYX_AUTH, "x-padding": "a" * 100_000}},
        431,
        "10015",
        None,
    ),
    ("missing credentials", "POST", CALL, {"json": VALID}, 401, "10009", None),
    (
        "wrong auth scheme",
        "POST",
        CALL,
        {"json": VALID, "headers": {"Authorization": "Basic dTpw"}},
        401,
        "10009",
        None,
    ),
    ("unknown path", "GET", "/v2/no/such/thing", {"headers": TELNYX_AUTH}, 404, "10005", None),
    ("unknown method", "DELETE", CALL, {"headers": TELNYX_AUTH}, 405, "10015", None),
    (
        "missing required field",
        "POST",
        CALL,
        {"json": {"verify_profile_id": PROFILE_ID}, "headers": TELNYX_AUTH},
        400,
        "10004",
        "/phone_number",
    ),
    (
        "not +E.164",
        "POST",
        CALL,
        {"json": {**VALID, "phone_number": "3035551234"}, "headers": TELNYX_AUTH},
        400,
        "10016",
        "/phone_number",
    ),
    (
        "wrong type",
        "POST",
        CALL,
        {"json": {**VALID, "timeout_secs": "soon"}, "headers": TELNYX_AUTH},
        400,
        "10015",
        "/timeout_secs",
    ),
    ("body not an object", "POST", CALL, {"json": ["a"], "headers": TELNYX_AUTH}, 400, "10015", ""),
    ("id not a uuid", "GET", "/v2/verifications/not-a-uuid", {"headers": TELNYX_AUTH}, 400, "10006", "verification_id"),
    (
        "query not an integer",
        "GET",
        "/v2/verify_profiles?page[number]=abc",
        {"headers": TELNYX_AUTH},
        400,
        "10015",
        "page",
    ),
    (
        "query nested too deep",
        "GET",
        "/v2/verify_profiles?page[size][]=7",
        {"headers": TELNYX_AUTH},
        400,
        "10015",
        None,
    ),
    ("object query sent flat", "GET", "/v2/verify_profiles?page=2", {"headers": TELNYX_AUTH}, 400, "10015", "page"),
    ("nameless query value", "GET", "/v2/verify_profiles?=true", {"headers": TELNYX_AUTH}, 400, "10015", None),
    ("concrete path, other method", "GET", "/v2/verifications/sms", {"headers": TELNYX_AUTH}, 405, "10015", None),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "source"),
    [row[1:] for row in TELNYX_ROWS],
    ids=[row[0] for row in TELNYX_ROWS],
)
def test_bad_input_gets_telnyx_envelope(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: str, source: str | None
) -> None:
    error = telnyx_error(client.request(method, path, **kwargs), status, code)
    if source is not None:
        assert source in (error["source"].get("pointer"), error["source"].get("parameter"))


def test_undeclared_deep_object_fields_are_ignored_as_telnyx_schema_leaves_them_open(client: TestClient) -> None:
    """Telnyx's schema declares `filter[name]`, `page[number]` and `page[size]` without closing either object, so
    other fields, in whatever shape, are accepted and ignored; a declared field in a wrong shape is still refused."""
    make_profile(client, name="kept")
    plain = client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()
    for query in ("filter[colour]=red", "page[foo]=1", "page[a]b]=2", "page[]=3", "page[x][y]=4"):
        answer = client.get(f"/v2/verify_profiles?{query}", headers=TELNYX_AUTH)
        assert answer.status_code == 200, (query, answer.text)
        assert answer.json() == plain, query
    named = client.get("/v2/verify_profiles?filter[name]=other&filter[colour]=red", headers=TELNYX_AUTH).json()
    assert named["data"] == []
    telnyx_error(client.get("/v2/verify_profiles?page[size][]=7", headers=TELNYX_AUTH), 400, "10015")


CONTROL_ROWS = [
    ("unknown control path", "GET", "/_mock/nothing", {}, 404),
    ("wrong method", "DELETE", "/_mock/health", {}, 405),
    ("bad filter value", "GET", "/_mock/journal?vendor=acme", {}, 400),
    ("huge body", "POST", "/_mock/reset", {"content": b"x" * (2 * 1024 * 1024), "headers": JSON}, 413),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"), [row[1:] for row in CONTROL_ROWS], ids=[row[0] for row in CONTROL_ROWS]
)
def test_bad_input_gets_plain_envelope_on_control_api(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]


def test_bad_input_outside_any_api_gets_plain_404(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_bad_input_leaves_stored_state_whole_and_the_server_serving(client: TestClient) -> None:
    profile_id = make_profile(client)
    created = client.post(CALL, json={**VALID, "verify_profile_id": profile_id}, headers=TELNYX_AUTH)
    assert created.status_code == 200
    verification = created.json()["data"]
    profiles_before = client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json()
    journal_before = len(client.get("/_mock/journal").json()["data"])
    for _, method, path, kwargs, *_ in TELNYX_ROWS:
        client.request(method, path, **kwargs)
    assert client.get("/v2/verify_profiles", headers=TELNYX_AUTH).json() == profiles_before
    again = client.get(f"/v2/verifications/{verification['id']}", headers=TELNYX_AUTH).json()["data"]
    assert again == verification
    journal = client.get("/_mock/journal").json()["data"]
    bad = journal[journal_before + 1 : journal_before + 1 + len(TELNYX_ROWS)]  # after the journal read itself
    assert [(e["path"], e["status_code"]) for e in bad] == [(row[2].split("?")[0], row[4]) for row in TELNYX_ROWS]
    assert client.get("/_mock/health").json() == {"status": "ok"}


def test_bad_input_method_not_allowed_says_which_are(client: TestClient) -> None:
    response = client.delete(CALL, headers=TELNYX_AUTH)
    assert response.headers["allow"] == "POST"
