"""CM.com request-DTMF over real HTTP: every scenario and the handset, callbacks on a real receiver, every rule."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI

from tests.helpers import CM_TOKEN, SPECS
from tests.oracle import assert_journal_conforms, assert_webhooks_conform
from tests.receiver import Receiver
from verifymock.calls import speaking_time
from verifymock.server import Running

TOKEN = CM_TOKEN
CALLER = "+31201234567"
CALLEE = "+31612345678"


@pytest.fixture
def cm(mock_server: Running, control: httpx.Client) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_server.url) as client:
        yield client


def request(receiver: Receiver, **fields: Any) -> dict[str, Any]:
    body = {
        "caller": CALLER,
        "callee": CALLEE,
        "instruction-id": "order-42",
        "callback-url": f"{receiver.url}/cm",
        "prompt": "Enter your four digit code, then press hash.",
        "prompt-type": "TTS",
        "valid-prompt": "Thank you.",
        "invalid-prompt": "That was not right.",
        "min-digits": 4,
        "max-digits": 4,
        "max-attempts": 3,
        "timeout": 5000,
    }
    body.update(fields)
    return body


def send(cm: httpx.Client, body: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    return cm.post("/voiceapi/v2/DTMF", json=body, headers={"X-CM-PRODUCTTOKEN": token} if token else {})


def advance(cm: httpx.Client, seconds: float) -> None:
    assert cm.post("/_mock/clock/advance", json={"seconds": seconds}).status_code == 200


def callbacks(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.at("/cm")]


@pytest.mark.parametrize(
    ("number", "fields", "digits", "valid", "attempts", "code"),
    [
        ("+15005550701", {}, "1234", True, 1, 10),
        ("+15005550702", {}, "1234", True, 2, 10),
        ("+15005550703", {}, "", False, 3, 10),
        ("+15005550704", {"regex": "[1-9]+", "min-digits": 1}, "0000", False, 3, 10),
        ("+15005550201", {}, "", False, 0, 9),  # calls/no_answer
        ("+15005550202", {}, "", False, 0, 12),  # calls/busy: rejected
        ("+15005550204", {}, "", False, 0, 12),  # calls/declines: rejected
        ("+15005550203", {}, "", False, 0, 11),  # calls/unreachable: failed
    ],
    ids=[
        "valid-with-terminator",
        "too-few-then-valid",
        "never-enters",
        "regex-mismatch",
        "not-answered",
        "busy",
        "declined",
        "failed",
    ],
)
def test_cm_scenarios_end_in_their_callbacks(
    cm: httpx.Client,
    receiver: Receiver,
    number: str,
    fields: dict[str, Any],
    digits: str,
    valid: bool,
    attempts: int,
    code: int,
) -> None:
    queued = send(cm, request(receiver, callee=number, **fields))
    assert queued.status_code == 200, queued.text
    call = queued.json()
    assert (call["type"], call["callee"], call["instruction-id"], call["success"]) == (
        "call-queued",
        number,
        "order-42",
        True,
    )
    advance(cm, 120)
    [finished] = callbacks(receiver)
    assert finished["type"] == "dtmf-finished"
    assert (finished["call-id"], finished["instruction-id"], finished["caller"], finished["callee"]) == (
        call["call-id"],
        "order-42",
        CALLER,
        number,
    )
    assert (finished["digits"], finished["valid"], finished["attempts"], finished["result"]["code"]) == (
        digits,
        valid,
        attempts,
        code,
    )


def test_cm_handset_digits_one_by_one_with_the_clock(cm: httpx.Client, receiver: Receiver) -> None:
    cm.put(f"/_mock/bindings/{CALLEE}", json={"scenario": "interactive"})
    send(cm, request(receiver, **{"max-digits": 6, "min-digits": 4}))
    cm.post(f"/_mock/handsets/{CALLEE}/answer")
    for digit in "98":
        cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": digit})
        advance(cm, 4)  # under the 5 s inter-digit timeout
    advance(cm, 5)  # the timeout ends the attempt with 98: too few
    call = cm.get(f"/_mock/handsets/{CALLEE}").json()["calls"][0]
    assert call["prompts"][-2:] == ["That was not right.", "Enter your four digit code, then press hash."]
    for digit in "7654#":
        cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": digit})
        advance(cm, 1)
    [finished] = callbacks(receiver)
    assert (finished["digits"], finished["valid"], finished["attempts"]) == ("7654", True, 2)
    assert cm.get(f"/_mock/handsets/{CALLEE}").json()["calls"][0]["prompts"][-1] == "Thank you."


def test_cm_max_digits_ends_input_without_terminator(cm: httpx.Client, receiver: Receiver) -> None:
    cm.put(f"/_mock/bindings/{CALLEE}", json={"scenario": "interactive"})
    send(cm, request(receiver, terminators="*"))
    cm.post(f"/_mock/handsets/{CALLEE}/answer")
    cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": "4321"})
    [finished] = callbacks(receiver)
    assert (finished["digits"], finished["valid"]) == ("4321", True)


def test_cm_several_callees_get_one_call_each(cm: httpx.Client, receiver: Receiver) -> None:
    body = request(receiver, callee=None, callees=["+15005550701", "+31612345679"])
    queued = send(cm, body)
    assert queued.status_code == 200
    answer = queued.json()  # one object, as CM's .NET SDK deserialises it: the first call, and all of them
    assert (answer["type"], answer["callee"], answer["success"]) == ("call-queued", "+15005550701", True)
    assert [c["callee"] for c in answer["calls"]] == ["+15005550701", "+31612345679"]
    assert answer["call-id"] == answer["calls"][0]["call-id"]
    skipped = send(cm, {**body, "callees": ["+15005550701", "12", "+\uff13\uff11"], "disable-callees-validation": True})
    assert [c["callee"] for c in skipped.json()["calls"]] == ["+15005550701"]


def test_cm_no_valid_callee_with_validation_disabled_calls_nobody(cm: httpx.Client, receiver: Receiver) -> None:
    body = request(receiver, callee=None, callees=["12", "+4477009"], **{"disable-callees-validation": True})
    answer = send(cm, body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["success"], answer.json()["call-id"], answer.json()["calls"]) == (
        False,
        "00000000-0000-0000-0000-000000000000",
        [],
    )
    assert cm.get("/_mock/handsets").json()["data"] == []


def test_cm_caller_needs_only_the_shape_of_e164(cm: httpx.Client, receiver: Receiver) -> None:
    assert send(cm, request(receiver, caller="+999")).status_code == 200


def test_cm_sdk_integer_enums_are_accepted(cm: httpx.Client, receiver: Receiver) -> None:
    body = request(receiver, **{"prompt-type": 1, "valid-prompt-type": 0, "voice": {"gender": 1, "volume": -4}})
    assert send(cm, body).status_code == 200


def test_cm_hostile_regex_cannot_stall_the_server(cm: httpx.Client, receiver: Receiver) -> None:
    cm.put(f"/_mock/bindings/{CALLEE}", json={"scenario": "interactive"})
    started = time.perf_counter()
    queued = send(cm, request(receiver, regex="(1|11)+2", **{"max-digits": 64, "min-digits": 1}))
    assert queued.status_code == 200
    cm.post(f"/_mock/handsets/{CALLEE}/answer")
    cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": "1" * 64})
    elapsed_ms = (time.perf_counter() - started) * 1000
    call = cm.get(f"/_mock/handsets/{CALLEE}").json()["calls"][0]
    assert call["prompts"][-1] == "Enter your four digit code, then press hash."  # judged invalid, next attempt
    assert elapsed_ms < 100, f"a hostile regex held the server for {elapsed_ms:.0f} ms"


# -- every range and format rule refuses ------------------------------------------------------------------------

# (field, value, status): 400 when the schema refuses it, 422 when only a rule beyond JSON Schema does
REJECTED = [
    ("instruction-id", "x" * 65, 400),
    ("callee", "+4477009", 422),
    ("callee", "31612345678", 400),
    ("callees", ["+15005550701", "nope"], 422),
    ("callees", ["+15005550701", "+4477009"], 422),
    ("caller", "", 400),
    ("caller", "+3120123456789012345678901", 400),
    ("callees", ["+15005550701", "+\uff13\uff11612345678"], 422),  # fullwidth digits: not E.164, as for callee
    ("anonymous", "yes", 400),
    ("callback-url", "not a url", 400),
    ("max-ringing-timeout", 9, 400),
    ("max-ringing-timeout", 61, 400),
    ("prompt", "", 400),
    ("prompt", "x" * 1001, 400),
    ("prompt-type", "MP3", 400),
    ("prompt-type", 3, 400),
    ("valid-prompt", "", 400),
    ("invalid-prompt", "x" * 1001, 400),
    ("min-digits", 0, 400),
    ("max-digits", 65, 400),
    ("max-attempts", 0, 400),
    ("max-attempts", 11, 400),
    ("timeout", 999, 400),
    ("timeout", 10001, 400),
    ("terminators", "x", 400),
    ("regex", "((", 400),
    ("regex", "}", 400),  # Python's re takes a lone brace; ECMA-262, JSON Schema's regex dialect, does not
    ("regex", "a{2", 400),
    # the hostile test's memory bomb was a{2147483648}: counted repeats are multiplied out before compiling
    ("regex", "a{20000}", 422),
    ("regex", "((a{30}){30}){30}", 422),
    ("regex", "(" * 350 + ")" * 350, 422),
    ("regex", "(" * 51 + "1" + ")" * 51, 422),
    ("voice", {"volume": 5}, 400),
    ("voice", {"volume": -5}, 400),
    ("voice", {"gender": "Robot"}, 400),
    ("voice", {"gender": 2}, 400),
    ("voice", {"number": 0}, 400),
    ("voice", {"premium": "no"}, 400),
    ("voice", {"language": "x" * 17}, 400),
    ("callees", ["+15005550701"] * 101, 400),
    ("disable-callees-validation", "true", 400),
    ("terminators", "#" * 13, 400),
    ("voicemail-response", "Maybe", 400),
    ("valid-prompt-type", "WAV", 400),
    ("invalid-prompt-type", 5, 400),
    ("min-digits", 65, 400),
    ("max-digits", 0, 400),
]


@pytest.mark.parametrize(("field", "value", "status"), REJECTED, ids=[f"{f}={str(v)[:12]}" for f, v, _ in REJECTED])
def test_cm_rules_reject(cm: httpx.Client, receiver: Receiver, field: str, value: Any, status: int) -> None:
    response = send(cm, request(receiver, **{field: value}))
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["detail"]


def test_cm_min_digits_above_max_digits_rejects(cm: httpx.Client, receiver: Receiver) -> None:
    assert send(cm, request(receiver, **{"min-digits": 5, "max-digits": 4})).status_code == 422


@pytest.mark.parametrize("field", ["caller", "prompt", "valid-prompt"])
def test_cm_required_fields_reject_when_missing(cm: httpx.Client, receiver: Receiver, field: str) -> None:
    body = request(receiver)
    del body[field]
    response = send(cm, body)
    assert (response.status_code, response.json()["pointer"]) == (400, f"/{field}")


def test_cm_needs_a_callee(cm: httpx.Client, receiver: Receiver) -> None:
    assert send(cm, request(receiver, callee=None)).status_code == 422


@pytest.mark.parametrize("token", [None, "not-a-guid", "11111111-2222-3333-4444-555555555555"])
def test_cm_product_token_missing_or_unknown_is_401(cm: httpx.Client, receiver: Receiver, token: str | None) -> None:
    response = send(cm, request(receiver), token=token)
    assert (response.status_code, response.json()["status"]) == (401, 401)


def test_cm_responses_and_callbacks_validate_with_openapi_core(cm: httpx.Client, receiver: Receiver) -> None:
    openapi = OpenAPI.from_file_path(str(SPECS / "cm_voice_dtmf.yaml"))
    send(cm, request(receiver, callee="+15005550701"))
    send(cm, request(receiver, callee=None, callees=["+15005550703", "+15005550202"]))
    send(cm, request(receiver, timeout=1))
    advance(cm, 120)
    entries = cm.get("/_mock/journal?vendor=cm").json()["data"]
    assert len(entries) == 3
    assert_journal_conforms(openapi, "https://api.cm.com", entries)
    assert len(receiver.at("/cm")) == 3
    assert_webhooks_conform(openapi, "dtmfFinished", [r.body for r in receiver.at("/cm")])


def test_cm_timeout_starts_when_the_prompt_has_played(cm: httpx.Client, receiver: Receiver) -> None:
    cm.put(f"/_mock/bindings/{CALLEE}", json={"scenario": "interactive"})
    send(cm, request(receiver))
    cm.post(f"/_mock/handsets/{CALLEE}/answer")
    prompt = speaking_time("Enter your four digit code, then press hash.")  # eight words: 3.2 s
    advance(cm, prompt + 4.9)  # the 5 s timeout for the first digit started when the prompt ended
    assert cm.get(f"/_mock/handsets/{CALLEE}").json()["calls"][0]["prompts"] == [
        "Enter your four digit code, then press hash."
    ]
    advance(cm, 0.2)  # no digit: the attempt timed out, and the prompt plays again
    call = cm.get(f"/_mock/handsets/{CALLEE}").json()["calls"][0]
    assert call["prompts"][1:] == ["Enter your four digit code, then press hash."]
    assert call["playing"] == "Enter your four digit code, then press hash."
    cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": "12"})  # keys during the prompts count
    cm.post(f"/_mock/handsets/{CALLEE}/press", json={"digits": "34"})
    assert callbacks(receiver)[-1]["digits"] == "1234" and callbacks(receiver)[-1]["valid"] is True
