"""Every verification's story from the real server: GET /_mock/timeline/{id}, checked against the control spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.helpers import (
    CM_TOKEN,
    REPO,
    SPECS,
    TELESIGN_CUSTOMER,
    TELESIGN_KEY,
    TELNYX_AUTH,
    make_profile,
    running,
    tollfree_body,
)
from tests.receiver import Receiver
from verifymock.server import Running

CONTROL = OpenAPI.from_file_path(str(SPECS / "control.yaml"))


def story(control: httpx.Client, subject: str) -> dict[str, Any]:
    response = control.get(f"/timeline/{subject}")
    assert response.status_code == 200, response.text
    body = response.json()
    request = MockRequest("http://127.0.0.1", "get", f"/_mock/timeline/{subject}")
    CONTROL.validate_response(request, MockResponse(json.dumps(body).encode(), 200, content_type="application/json"))
    return dict(body)


def told(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["from"], e["to"], e["label"]) for e in body["events"]]


def sms_verifications(url: str, numbers: list[str]) -> list[str]:
    """One SMS verification to each number, under a new profile: their ids, oldest first."""
    with httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client)
        sent = [
            client.post("/v2/verifications/sms", json={"phone_number": n, "verify_profile_id": profile_id})
            for n in numbers
        ]
    return [str(response.json()["data"]["id"]) for response in sent]


def test_timeline_of_a_telesign_call_through_the_prompt_gate(mock_server: Running, control: httpx.Client) -> None:
    telesign = httpx.Client(base_url=mock_server.url, auth=(TELESIGN_CUSTOMER, TELESIGN_KEY))
    control.put("/bindings/+13125550150", json={"scenario": "interactive"})
    sent = telesign.post(
        "/v1/verify/call",
        data={"phone_number": "13125550150", "verify_code": "12345", "prompt_message": "Press 5.", "prompt_digit": "5"},
    )
    assert sent.status_code == 200, sent.text
    reference = sent.json()["reference_id"]
    control.post("/clock/advance", json={"seconds": 1})
    control.post("/handsets/+13125550150/answer")
    control.post("/handsets/+13125550150/press", json={"digits": "4"})
    control.post("/clock/advance", json={"seconds": 1})
    control.post("/handsets/+13125550150/press", json={"digits": "5"})
    control.post("/clock/advance", json={"seconds": 60})
    body = story(control, reference)
    assert (body["kind"], body["phone_number"]) == ("telesign.transaction", "+13125550150")
    events = told(body)
    assert events[:3] == [
        ("app", "vendor", "POST /v1/verify/call"),
        ("vendor", "phone", "call placed: ringing"),
        ("vendor", "app", "200 OK"),
    ]
    assert [label for _, _, label in events[3:]] == [
        "answered",
        "prompt: Press 5.",
        "key 4",
        "prompt: Press 5.",
        "key 5",
        "prompt: " + body["events"][8]["label"].removeprefix("prompt: "),  # the code message
        "hangs up: call ended",
        "status 100: Call answered",
    ]
    assert body["events"][8]["seconds"] > 1  # how long the code message plays
    assert [e["at"][11:19] for e in body["events"][3:6]] == ["00:00:01", "00:00:01", "00:00:01"]


def test_timeline_of_a_cm_call_and_a_tollfree_review(
    mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    cm = httpx.post(
        f"{mock_server.url}/voiceapi/v2/DTMF",
        headers={"X-CM-PRODUCTTOKEN": CM_TOKEN},
        json={
            "caller": "+31201234567",
            "callee": "+15005550703",  # never enters anything
            "prompt": "Enter your code.",
            "prompt-type": "TTS",
            "valid-prompt": "Thank you.",
            "max-attempts": 2,
            "callback-url": f"{receiver.url}/cm",
        },
    )
    assert cm.status_code == 200, cm.text
    control.post("/clock/advance", json={"seconds": 120})
    labels = [label for _, _, label in told(story(control, cm.json()["call-id"]))]
    assert labels.count("no digit within 5 s") == 2
    assert labels[-3:] == [
        "hangs up: call ended",
        "result 10: Finished successfully; digits none, not valid",
        "webhook dtmf-finished → 200",
    ]

    body = tollfree_body(businessName="Acme Rejected Inc")
    submitted = httpx.post(
        f"{mock_server.url}/v2/messaging_tollfree/verification/requests", json=body, headers=TELNYX_AUTH
    )
    assert submitted.status_code == 200, submitted.text
    control.post("/clock/advance", json={"seconds": 4 * 86400})
    review = story(control, submitted.json()["id"])
    assert (review["kind"], review["phone_number"]) == ("tollfree.request", "+18773554398")
    assert [(e["label"], e["at"][:10]) for e in review["events"][2:]] == [
        ("review: Waiting For Vendor", "2026-01-02"),
        ("review: Rejected", "2026-01-04"),
    ]
    assert review["events"][-1]["detail"]  # the reason


def test_timeline_lists_the_newest_first_and_an_unknown_id_is_404(mock_server: Running, control: httpx.Client) -> None:
    assert control.get("/timeline/nothing-like-this").status_code == 404
    ids = sms_verifications(mock_server.url, [f"+1312555016{i}" for i in range(3)])
    listed = control.get("/timeline", params={"limit": 2}).json()["data"]
    assert [s["id"] for s in listed] == ids[::-1][:2]
    sms = told(story(control, ids[0]))
    assert sms[1][:2] == ("vendor", "phone") and sms[1][2].startswith("SMS: ")


def test_timeline_keeps_the_newest_retain_stories_and_survives_a_restart(tmp_path: Path) -> None:
    options = ["--state", f"sqlite:{tmp_path / 'state.db'}", "--clock", "manual", "--quiet", "--retain", "3"]
    with running(options, cwd=REPO) as (url, _):
        ids = sms_verifications(url, [f"+1312555017{i}" for i in range(5)])
    with running(options, cwd=REPO) as (url, _):
        listed = httpx.get(f"{url}/_mock/timeline").json()["data"]
        assert [s["id"] for s in listed] == ids[::-1][:3]
        assert httpx.get(f"{url}/_mock/timeline/{ids[0]}").status_code == 404
