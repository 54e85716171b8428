"""TeleSign Voice Verify end to end: the official telesignenterprise SDK in HMAC and Basic modes, a real receiver."""

from __future__ import annotations

import base64
import json
import re
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from telesign.rest import RestClient
from telesign.util import verify_telesign_callback_signature
from telesignenterprise.verify import VerifyClient

from tests.helpers import SPECS, TELESIGN_CUSTOMER, TELESIGN_KEY
from tests.oracle import assert_journal_conforms, assert_webhooks_conform
from tests.receiver import Receiver
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread

CUSTOMER, KEY = TELESIGN_CUSTOMER, TELESIGN_KEY
NUMBER = "15555550100"


@pytest.fixture(params=["HMAC", "Basic"])
def verify(request: pytest.FixtureRequest, mock_server: Running, control: httpx.Client) -> VerifyClient:
    auth = None if request.param == "HMAC" else "Basic"
    return VerifyClient(CUSTOMER, KEY, rest_endpoint=mock_server.url, auth_method=auth)


def spoken_code(control: httpx.Client, number: str = NUMBER) -> str:
    call = control.get(f"/handsets/+{number}").json()["calls"][-1]
    return "".join(ch for ch in call["prompts"][-1].split("code is", 1)[1].split(".")[0] if ch.isdigit())


def test_telesign_voice_status_and_completion(verify: VerifyClient, control: httpx.Client) -> None:
    sent = verify.voice(NUMBER, ucid="ATCK", language="en-US")
    assert sent.status_code == 200, sent.body
    reference_id = sent.json["reference_id"]
    assert len(reference_id) == 32 and reference_id == reference_id.upper()
    assert sent.json["status"]["code"] == 103
    assert sent.json["verify"] == {"code_state": "UNKNOWN", "code_entered": ""}

    control.post("/clock/advance", json={"seconds": 3})  # the default callee answers after 2 s
    code = spoken_code(control)
    assert len(code) == 5

    wrong = verify.status(reference_id, verify_code="1" if code != "1" else "2")
    assert (wrong.status_code, wrong.json["verify"]["code_state"]) == (200, "INVALID")
    right = verify.status(reference_id, verify_code=code)
    assert right.json["verify"] == {"code_state": "VALID", "code_entered": code}
    assert right.json["status"]["code"] == 103  # in progress while the message plays
    control.post("/clock/advance", json={"seconds": 12})
    assert verify.status(reference_id).json["status"]["code"] == 100  # answered, once it has played

    completed = verify.completion(reference_id)
    assert (completed.status_code, completed.json["status"]["code"]) == (200, 1900)


def test_telesign_own_code_and_template_are_spoken(verify: VerifyClient, control: httpx.Client) -> None:
    sent = verify.voice(NUMBER, verify_code="4321", tts_message="Your Acme code: $$CODE$$.")
    assert sent.status_code == 200, sent.body
    control.post("/clock/advance", json={"seconds": 3})
    call = control.get(f"/handsets/+{NUMBER}").json()["calls"][0]
    assert call["prompts"] == ["Your Acme code: 4, 3, 2, 1."]
    assert verify.status(sent.json["reference_id"], verify_code="4321").json["verify"]["code_state"] == "VALID"


def test_telesign_invalid_requests_are_refused_in_the_envelope(verify: VerifyClient) -> None:
    for params in ({"verify_code": "42"}, {"tts_message": "no placeholder"}, {"ucid": "NOPE"}):
        refused = verify.voice(NUMBER, **params)
        assert refused.status_code == 400, params
        assert refused.json["errors"][0]["code"] == -10001
        assert refused.json["status"]["code"] == 500
    unknown = verify.status("0" * 32)
    assert (unknown.status_code, unknown.json["errors"][0]["code"]) == (404, -10001)


def test_telesign_code_expires_and_lookups_end_after_12_hours(verify: VerifyClient, control: httpx.Client) -> None:
    reference_id = verify.voice(NUMBER, verify_code="5555").json["reference_id"]
    control.post("/clock/advance", json={"seconds": 301})
    assert verify.status(reference_id, verify_code="5555").json["verify"]["code_state"] == "EXPIRED"
    control.post("/clock/advance", json={"seconds": 12 * 3600})
    gone = verify.status(reference_id)
    assert (gone.status_code, gone.json["errors"][0]["code"]) == (404, -10004)


@pytest.mark.parametrize(
    ("number", "final"),
    [("15005550201", 101), ("15005550202", 107), ("15005550203", 106), ("15005550601", 129), ("15005550602", 130)],
    ids=["not-answered", "busy", "failed", "blocked-by-request", "blocked-by-telesign"],
)
def test_telesign_call_fates_become_status_codes(
    verify: VerifyClient, control: httpx.Client, number: str, final: int
) -> None:
    reference_id = verify.voice(number).json["reference_id"]
    control.post("/clock/advance", json={"seconds": 60})
    assert verify.status(reference_id).json["status"]["code"] == final


def test_telesign_prompt_digit_gates_the_code(verify: VerifyClient, control: httpx.Client) -> None:
    control.put(f"/bindings/+{NUMBER}", json={"scenario": "interactive"})
    verify.voice(NUMBER, prompt_message="Press 5 to hear your code.", prompt_digit="5", verify_code="777")
    control.post(f"/handsets/+{NUMBER}/answer")
    call = control.post(f"/handsets/+{NUMBER}/press", json={"digits": "3"}).json()
    assert call["prompts"] == ["Press 5 to hear your code."] * 2
    call = control.post(f"/handsets/+{NUMBER}/press", json={"digits": "5"}).json()
    assert "7, 7, 7" in call["prompts"][-1]


def test_telesign_two_silences_hang_up(verify: VerifyClient, control: httpx.Client) -> None:
    control.put(f"/bindings/+{NUMBER}", json={"scenario": "interactive"})
    verify.voice(NUMBER, prompt_message="Press 5.", prompt_digit="5")
    control.post(f"/handsets/+{NUMBER}/answer")
    # each play of the prompt lasts a second (two words, at least a second), and the 5 s wait starts after it
    control.post("/clock/advance", json={"seconds": 11.9})
    call = control.get(f"/handsets/+{NUMBER}").json()["calls"][0]
    assert (call["state"], call["prompts"]) == ("in_progress", ["Press 5."] * 2)
    control.post("/clock/advance", json={"seconds": 0.1})
    call = control.get(f"/handsets/+{NUMBER}").json()["calls"][0]
    assert call["state"] == "completed"
    assert call["prompts"] == ["Press 5."] * 2


def test_telesign_pressx_announces_a_digit_with_two_tries(verify: VerifyClient, control: httpx.Client) -> None:
    control.put(f"/bindings/+{NUMBER}", json={"scenario": "interactive"})
    verify.voice(NUMBER, pressx="1", verify_code="246")
    call = control.post(f"/handsets/+{NUMBER}/answer").json()
    assert call["prompts"][0].startswith("Hello. Thank you for using the phone verification system. Please press ")
    digit = re.search(r"press (\d) to hear your code", call["prompts"][0]).group(1)  # type: ignore[union-attr]
    wrong = "1" if digit != "1" else "2"
    control.post(f"/handsets/+{NUMBER}/press", json={"digits": wrong})
    call = control.post(f"/handsets/+{NUMBER}/press", json={"digits": digit}).json()
    assert "2, 4, 6" in call["prompts"][-1]


# -- authentication failures, each with its own code --------------------------------------------------------------


def signed(method: str, resource: str, *, date: str | None = None, nonce: str | None = None, key: str = KEY) -> dict:
    return dict(
        RestClient.generate_telesign_headers(CUSTOMER, key, method, resource, "", date_rfc2616=date, nonce=nonce)
    )


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, -30004),
        ({"Authorization": "Bearer x"}, -30005),
        ({"Authorization": "TSA nocolon"}, -30005),
        ({"Authorization": "Basic " + base64.b64encode(b"nobody:" + KEY.encode()).decode()}, -30000),
        ({"Authorization": "Basic " + base64.b64encode(f"{CUSTOMER}:wrong".encode()).decode()}, -30015),
        ("tampered", -30006),
        ("no-date", -30007),
        ("bad-date", -30009),
        ("stale-date", -30010),
        ("short-nonce", -30011),
        ("bad-method", -30008),
    ],
    ids=[
        "missing",
        "bad-scheme",
        "bad-format",
        "unknown-customer",
        "wrong-key",
        "tampered",
        "no-date",
        "bad-date",
        "stale-date",
        "short-nonce",
        "bad-auth-method",
    ],
)
def test_telesign_auth_failures_have_their_codes(mock_server: Running, headers: Any, code: int) -> None:
    resource = f"/v1/verify/{'A' * 32}"
    if isinstance(headers, str):
        variant = headers
        date = formatdate(usegmt=True)
        if variant == "stale-date":
            date = formatdate(timeval=__import__("time").time() - 3600, usegmt=True)
        headers = signed("GET", resource, date=date, nonce="n" * 4 if variant == "short-nonce" else None)
        if variant == "tampered":
            headers["Authorization"] = headers["Authorization"][:-4] + "AAA="
        elif variant == "no-date":
            del headers["Date"]
        elif variant == "bad-date":
            headers["Date"] = "yesterday"
        elif variant == "bad-method":
            headers["x-ts-auth-method"] = "HMAC-SHA1"
    response = httpx.get(mock_server.url + resource, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["code"] == code
    assert body["status"]["code"] == 501


def test_telesign_replayed_nonce_is_refused(mock_server: Running) -> None:
    resource = f"/v1/verify/{'B' * 32}"
    headers = signed("GET", resource)
    assert httpx.get(mock_server.url + resource, headers=headers).json()["errors"][0]["code"] == -10001
    replay = httpx.get(mock_server.url + resource, headers=headers)
    assert (replay.status_code, replay.json()["errors"][0]["code"]) == (401, -30012)


def test_telesign_x_ts_date_is_signed_in_place_of_date(mock_server: Running) -> None:
    resource = f"/v1/verify/{'C' * 32}"
    date, nonce = formatdate(usegmt=True), "c0ffee00-1234"
    to_sign = f"GET\n\n\nx-ts-auth-method:HMAC-SHA256\nx-ts-date:{date}\nx-ts-nonce:{nonce}\n{resource}"
    import hashlib
    import hmac

    signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    headers = {
        "Authorization": f"TSA {CUSTOMER}:{signature}",
        "x-ts-date": date,
        "x-ts-nonce": nonce,
        "x-ts-auth-method": "HMAC-SHA256",
    }
    response = httpx.get(mock_server.url + resource, headers=headers)
    assert response.json()["errors"][0]["code"] == -10001  # authenticated; the reference is simply unknown


# -- callbacks ----------------------------------------------------------------------------------------------------


def test_telesign_callback_is_signed_as_the_sdk_checks(
    verify: VerifyClient, control: httpx.Client, receiver: Receiver
) -> None:
    sent = verify.voice(NUMBER, callback_url=f"{receiver.url}/telesign")
    control.post("/clock/advance", json={"seconds": 15})  # answered at 2 s, the message played for 12
    [received] = receiver.at("/telesign")
    body = json.loads(received.body)
    assert body["reference_id"] == sent.json["reference_id"]
    assert body["status"]["code"] == 100
    assert received.headers["authorization"] == received.headers["x-ts-authorization"]
    scheme, credentials = received.headers["authorization"].split(" ", 1)
    customer, signature = credentials.split(":", 1)
    assert (scheme, customer) == ("TSA", CUSTOMER)
    assert verify_telesign_callback_signature(KEY, signature, received.body.decode())
    assert not verify_telesign_callback_signature(KEY, signature, received.body.decode().replace("100", "101"))


def test_telesign_every_response_and_callback_validates_with_openapi_core(
    verify: VerifyClient, control: httpx.Client, receiver: Receiver
) -> None:
    openapi = OpenAPI.from_file_path(str(SPECS / "telesign_voice_verify.yaml"))
    reference_id = verify.voice(NUMBER, callback_url=f"{receiver.url}/cb", verify_code="9876").json["reference_id"]
    verify.status(reference_id, verify_code="9876")
    verify.completion(reference_id)
    verify.status("F" * 32)
    verify.voice("12")
    control.post("/clock/advance", json={"seconds": 30})
    entries = [e for e in control.get("/journal?vendor=telesign").json()["data"]]
    assert len(entries) == 5
    assert_journal_conforms(openapi, "https://rest-ww.telesign.com", entries)
    assert receiver.at("/cb")
    assert_webhooks_conform(openapi, "transactionCallback", [r.body for r in receiver.at("/cb")])


def test_telesign_too_many_wrong_codes_lock_the_transaction(verify: VerifyClient, control: httpx.Client) -> None:
    reference_id = verify.voice(NUMBER, verify_code="8888").json["reference_id"]
    states = [verify.status(reference_id, verify_code="1111").json["verify"]["code_state"] for _ in range(5)]
    assert states == ["INVALID"] * 4 + ["MAX_ATTEMPTS_EXCEEDED"]
    assert verify.status(reference_id, verify_code="8888").json["verify"]["code_state"] == "MAX_ATTEMPTS_EXCEEDED"


def test_telesign_callbacks_fall_back_to_the_account_url(receiver: Receiver) -> None:
    config = Config(
        port=0, clock="manual", telesign_customers={CUSTOMER: KEY}, telesign_callback_url=f"{receiver.url}/account"
    )
    with serve_in_thread(config) as server:
        client = VerifyClient(CUSTOMER, KEY, rest_endpoint=server.url)
        client.voice(NUMBER)
        httpx.post(f"{server.url}/_mock/clock/advance", json={"seconds": 15})
    assert [json.loads(r.body)["status"]["code"] for r in receiver.at("/account")] == [100]


# -- fidelity: what TeleSign accepts and says, the mock accepts and says -----------------------------------------


def test_telesign_default_message_and_caller_id_are_telesigns(verify: VerifyClient, control: httpx.Client) -> None:
    sent = verify.voice(NUMBER)
    assert sent.json["voice"] == {"caller_id": "+15555550000"}
    control.post("/clock/advance", json={"seconds": 3})
    message = control.get(f"/handsets/+{NUMBER}").json()["calls"][0]["prompts"][-1]
    code = ", ".join(spoken_code(control))
    assert message == (
        f"Hello. Thank you for using our phone verification system. Your code is {code}. "
        f"Once again, your code is {code}. Goodbye."
    )


def test_telesign_own_code_needs_no_placeholder(verify: VerifyClient, control: httpx.Client) -> None:
    sent = verify.voice(NUMBER, verify_code="4321", tts_message="Your code is ready.")
    assert sent.status_code == 200, sent.body
    assert verify.status(sent.json["reference_id"], verify_code="4321").json["verify"]["code_state"] == "VALID"


def test_telesign_status_code_is_any_text(verify: VerifyClient) -> None:
    reference_id = verify.voice(NUMBER).json["reference_id"]
    for typed in ("abc", "12 34", "\u0661\u0662\u0663"):
        checked = verify.status(reference_id, verify_code=typed)
        assert (checked.status_code, checked.json["verify"]["code_state"]) == (200, "INVALID"), typed


def test_telesign_completion_errors_name_voice(verify: VerifyClient) -> None:
    missing = verify.completion("0" * 32)
    assert (missing.status_code, missing.json["sub_resource"]) == (404, "voice")
    assert missing.json["errors"][0]["code"] == -10001


def test_telesign_empty_post_is_no_data_submitted(verify: VerifyClient) -> None:
    empty = verify.post("/v1/verify/call")
    assert (empty.status_code, empty.json["errors"][0]["code"]) == (400, -40007)


@pytest.mark.parametrize(
    "params",
    [
        {"pressx": "1", "tts_message": "Code $$CODE$$"},
        {"pressx": "1", "language": "es-ES"},
        {"extension_type": "1"},
        {"prompt_message": "Press a key"},
    ],
)
def test_telesign_conflicting_options_are_refused(verify: VerifyClient, params: dict[str, str]) -> None:
    refused = verify.voice(NUMBER, **params)
    assert (refused.status_code, refused.json["errors"][0]["code"]) == (400, -10001)
