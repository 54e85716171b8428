"""The fast path answers exactly as connexion's full stack does, and only takes the requests it may."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import LOCAL, PROFILE_BODY, TELNYX_AUTH
from verifymock.app import create_app
from verifymock.config import Config

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NUMBER = "+13035551234"
JSON = {**TELNYX_AUTH, "content-type": "application/json"}


class Pair:
    """The same requests to two mocks, one with the fast path and one without; ids are mapped between them."""

    def __init__(self, fast: TestClient, full: TestClient, gate: Any) -> None:
        self.fast, self.full, self.gate = fast, full, gate
        self.ids: dict[str, str] = {}  # id on the fast mock -> id on the full one

    def both(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[Any, bool]:
        """Send to both; assert equal answers; return the fast one and whether the fast path served it."""
        raw = body or b""
        scope = {"method": method, "path": path.split("?")[0], "query_string": path.partition("?")[2].encode()}
        scope["headers"] = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        taken = self.gate.fast.match(scope, lowered, raw) is not None
        fast = self.fast.request(method, path, content=body, headers=headers)
        mapped_path, mapped_body = path, raw
        for mine, theirs in self.ids.items():
            mapped_path = mapped_path.replace(mine, theirs)
            mapped_body = mapped_body.replace(mine.encode(), theirs.encode())
        full = self.full.request(method, mapped_path, content=mapped_body or None, headers=headers)
        for mine, theirs in zip(UUID.findall(fast.content), UUID.findall(full.content), strict=False):
            self.ids.setdefault(mine.decode(), theirs.decode())
        assert fast.status_code == full.status_code, (method, path, fast.text, full.text)
        assert UUID.sub(b"<id>", fast.content) == UUID.sub(b"<id>", full.content), (method, path)
        assert fast.headers.get("content-type") == full.headers.get("content-type")
        return fast, taken


@pytest.fixture
def pair() -> Iterator[Pair]:
    with ExitStack() as stack:
        fast_app = create_app(Config(clock="manual", access_log=False))
        full_app = create_app(Config(clock="manual", access_log=False, fast_path=False))
        fast = stack.enter_context(TestClient(fast_app, base_url=LOCAL, raise_server_exceptions=False))
        full = stack.enter_context(TestClient(full_app, base_url=LOCAL, raise_server_exceptions=False))
        yield Pair(fast, full, fast_app)


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


def test_fastpath_serves_well_formed_requests_with_the_full_stacks_answers(pair: Pair) -> None:
    profile, taken = pair.both("POST", "/v2/verify_profiles", body=_json(PROFILE_BODY), headers=JSON)
    assert taken and profile.status_code == 200
    profile_id = profile.json()["data"]["id"]
    served = []
    for channel in ("sms", "call", "flashcall", "dtmf_confirm"):
        body = _json({"phone_number": NUMBER, "verify_profile_id": profile_id})
        response, taken = pair.both("POST", f"/v2/verifications/{channel}", body=body, headers=JSON)
        served.append(taken)
        assert response.status_code == 200, response.text
    verification_id = response.json()["data"]["id"]
    for method, path in (
        ("GET", f"/v2/verifications/{verification_id}"),
        ("GET", f"/v2/verify_profiles/{profile_id}"),
        ("GET", "/_mock/health"),
        ("GET", "/_mock/clock"),
        ("GET", "/_mock/bindings"),
    ):
        response, taken = pair.both(method, path, headers=TELNYX_AUTH)
        served.append(taken)
        assert response.status_code == 200, (path, response.text)
    assert all(served)
    # DTMF confirm is one at a time per number: the handler's own 422 comes the same way on both paths
    body = _json({"phone_number": NUMBER, "verify_profile_id": profile_id})
    response, taken = pair.both("POST", "/v2/verifications/dtmf_confirm", body=body, headers=JSON)
    assert taken and response.status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/v2/verifications/call", {"phone_number": NUMBER, "verify_profile_id": "x"}, {}, 401),
        ("POST", "/v2/verifications/call", {"phone_number": NUMBER}, {**JSON, "authorization": "Basic eDp5"}, 400),
        (
            "POST",
            "/v2/verifications/call",
            {"phone_number": NUMBER},
            {**TELNYX_AUTH, "content-type": "text/plain"},
            415,
        ),
        ("GET", "/v2/verifications/not-a-uuid", None, TELNYX_AUTH, 400),
        ("GET", "/v2/verify_profiles?page[size]=2", None, TELNYX_AUTH, 200),  # a query string
        ("GET", "/v2/verifications/sms", None, TELNYX_AUTH, 405),  # a concrete path, never the {id} template
        # a segment more or less than any template has: no route is even tried
        ("GET", "/v2/verifications/12ade33a-21c0-473b-b055-b3c836e1c292/by_phone", None, TELNYX_AUTH, 404),
        ("GET", "/v2/verify_profiles/12ade33a-21c0-473b-b055-b3c836e1c292/", None, TELNYX_AUTH, 404),
        ("GET", "/v2", None, TELNYX_AUTH, 404),
        ("POST", "/v2/verifications/call", b"{not json", JSON, 400),
        ("POST", "/v2/verifications/call", b"", JSON, 400),
    ],
)
def test_fastpath_leaves_everything_else_to_the_full_stack(
    pair: Pair, method: str, path: str, body: Any, headers: dict[str, str], status: int
) -> None:
    raw = body if isinstance(body, bytes) or body is None else _json(body)
    response, taken = pair.both(method, path, body=raw, headers=headers)
    assert not taken
    assert response.status_code == status


@pytest.mark.parametrize(
    "body",
    [
        {"phone_number": "3035551234", "verify_profile_id": "12ade33a-21c0-473b-b055-b3c836e1c292"},  # pattern
        {"phone_number": NUMBER},  # a required property missing
        {"phone_number": NUMBER, "verify_profile_id": 5},  # a wrong type
        {"phone_number": NUMBER, "verify_profile_id": "not-a-uuid"},  # a format
        {"phone_number": NUMBER, "verify_profile_id": "12ade33a-21c0-473b-b055-b3c836e1c292", "timeout_secs": "x"},
        [],  # not an object
    ],
)
def test_fastpath_refuses_what_the_schema_refuses_in_the_full_stacks_words(pair: Pair, body: Any) -> None:
    response, taken = pair.both("POST", "/v2/verifications/call", body=_json(body), headers=JSON)
    assert taken
    assert response.status_code in (400, 422), response.text
    assert response.json()["errors"][0]["code"]


def test_fastpath_steps_aside_while_a_fault_is_set(pair: Pair) -> None:
    fault = {"operation_id": "CreateVerificationCall", "http": {"status": 503}}
    for client in (pair.fast, pair.full):
        assert client.post("/_mock/faults", json=fault).status_code == 201
    body = _json({"phone_number": NUMBER, "verify_profile_id": "12ade33a-21c0-473b-b055-b3c836e1c292"})
    response, taken = pair.both("POST", "/v2/verifications/call", body=body, headers=JSON)
    assert not taken and response.status_code == 503


def test_fastpath_leaves_repeated_credentials_to_the_full_stack(pair: Pair) -> None:
    # the gate joins a repeated header with ", "; which of the two counts is connexion's call, not the fast path's
    assert pair.gate.fast._credentials("Bearer test-key")
    assert not pair.gate.fast._credentials("Bearer test-key, Bearer other-key")
