"""Outcome coverage end to end: outcomes counted as the real server reaches them, credited to tests and requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.helpers import CM_TOKEN, REPO, SPECS, TELESIGN_CUSTOMER, TELESIGN_KEY, TELNYX_AUTH, make_profile, running
from tests.receiver import Receiver
from verifymock.server import Running

DTMF_WRONG_THEN_1 = "+15005550102"
BAD_SIGNATURE = "+15005550401"
CONTROL = OpenAPI.from_file_path(str(SPECS / "control.yaml"))


def reached(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every reached outcome's row, by name; the report is checked against the control spec first."""
    response = control.get("/coverage")
    assert response.status_code == 200, response.text
    report = response.json()
    assert_conforms(report)
    return {row["name"]: row for vendor in report["vendors"] for row in vendor["outcomes"] if row["reached"]}


def assert_conforms(report: dict[str, Any]) -> None:
    request = MockRequest("http://127.0.0.1", "get", "/_mock/coverage")
    response = MockResponse(json.dumps(report).encode(), status_code=200, content_type="application/json")
    CONTROL.validate_response(request, response)


def profile(mock_server: Running, receiver: Receiver, **fields: Any) -> str:
    """A profile whose webhooks go to the receiver's /primary, failing over to /failover."""
    urls = {"webhook_url": f"{receiver.url}/primary", "webhook_failover_url": f"{receiver.url}/failover"}
    with httpx.Client(base_url=mock_server.url) as client:
        return make_profile(client, **{**urls, **fields})


def telnyx(mock_server: Running, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{mock_server.url}/v2{path}", headers=TELNYX_AUTH, **kwargs)


def test_coverage_names_exactly_the_outcomes_a_dtmf_story_reached(
    mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    assert reached(control) == {}
    assert control.put("/coverage/test", json={"test": "suite.py::test_dtmf"}).status_code == 204
    profile_id = profile(mock_server, receiver)
    receiver.script["/primary"] = [500]  # the primary fails, so the webhook goes to the failover URL
    body = {"phone_number": DTMF_WRONG_THEN_1, "verify_profile_id": profile_id}
    assert telnyx(mock_server, "POST", "/verifications/dtmf_confirm", json=body).status_code == 200
    assert telnyx(mock_server, "POST", "/verifications/dtmf_confirm", json=body).status_code == 422
    assert control.post("/clock/advance", json={"seconds": 60}).status_code == 200
    assert telnyx(mock_server, "GET", "/verifications/12ade33a-21c0-473b-b055-000000000000").status_code == 404
    assert httpx.get(f"{mock_server.url}/v2/verify_profiles").status_code == 401
    assert control.get("/handsets/not-a-number").status_code >= 400  # the control API's own errors count nowhere

    rows = reached(control)
    assert set(rows) == {
        "telnyx.channel.dtmf_confirm",
        "telnyx.dtmf.second_refused",
        "telnyx.error.422",
        "telnyx.dtmf.accepted_after_wrong",
        "webhooks.failover_used",
        "telnyx.error.404",
        "telnyx.error.401",
    }
    accepted = rows["telnyx.dtmf.accepted_after_wrong"]
    assert (accepted["count"], accepted["tests"]) == (1, ["suite.py::test_dtmf"])
    assert accepted["first"]["test"] == "suite.py::test_dtmf"
    assert accepted["first"]["request"] == "POST /_mock/clock/advance"  # a timer reached it, during the advance
    assert rows["telnyx.dtmf.second_refused"]["first"]["request"] == "POST /v2/verifications/dtmf_confirm"
    assert rows["telnyx.error.401"]["first"]["request"] == "GET /v2/verify_profiles"


def test_coverage_a_header_names_the_test_of_one_request(mock_server: Running, control: httpx.Client) -> None:
    control.put("/coverage/test", json={"test": "suite.py::named_by_the_plugin"})
    headers = {"X-Verifymock-Test": "suite.py::named_by_the_header"}
    assert httpx.get(f"{mock_server.url}/v2/verify_profiles", headers=headers).status_code == 401
    assert httpx.get(f"{mock_server.url}/v2/verify_profiles").status_code == 401
    row = reached(control)["telnyx.error.401"]
    assert row["count"] == 2
    assert row["tests"] == ["suite.py::named_by_the_header", "suite.py::named_by_the_plugin"]
    assert row["first"]["test"] == "suite.py::named_by_the_header"


@pytest.mark.parametrize(("answer", "outcome"), [(200, "webhooks.forged.accepted"), (401, "webhooks.forged.refused")])
def test_coverage_judges_the_receivers_answer_to_a_forged_signature(
    mock_server: Running, control: httpx.Client, receiver: Receiver, answer: int, outcome: str
) -> None:
    profile_id = profile(mock_server, receiver)
    receiver.script["/primary"] = [answer] * 10  # every attempt, the retries too
    receiver.script["/failover"] = [answer] * 10
    body = {"phone_number": BAD_SIGNATURE, "verify_profile_id": profile_id}
    assert telnyx(mock_server, "POST", "/verifications/dtmf_confirm", json=body).status_code == 200
    control.post("/clock/advance", json={"seconds": 30})
    rows = reached(control)
    assert "webhooks.forged.sent" in rows
    assert outcome in rows
    other = {"webhooks.forged.accepted", "webhooks.forged.refused"} - {outcome}
    assert not other & set(rows)
    findings = [f["name"] for f in control.get("/coverage").json()["findings"]]
    assert findings == (["webhooks.forged.accepted"] if answer == 200 else [])


def test_coverage_reset_clears_it_unless_asked_to_keep_it(mock_server: Running, control: httpx.Client) -> None:
    httpx.get(f"{mock_server.url}/v2/verify_profiles")
    assert control.post("/reset", params={"coverage": "keep"}).status_code == 204
    assert set(reached(control)) == {"telnyx.error.401"}
    assert control.post("/reset").status_code == 204
    assert reached(control) == {}
    assert control.post("/reset", params={"coverage": "forget"}).status_code == 400
    assert control.post("/reset", params={"coverage": "keep", "test": "suite.py::next"}).status_code == 204
    httpx.get(f"{mock_server.url}/v2/verify_profiles")
    assert reached(control)["telnyx.error.401"]["tests"] == ["suite.py::next"]


def test_coverage_counts_telesign_cm_and_tollfree_outcomes(
    mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    telesign = httpx.Client(base_url=mock_server.url, auth=(TELESIGN_CUSTOMER, TELESIGN_KEY))
    sent = telesign.post("/v1/verify/call", data={"phone_number": "15005550202", "verify_code": "12345"})
    assert sent.status_code == 200, sent.text
    reference = sent.json()["reference_id"]
    control.post("/clock/advance", json={"seconds": 60})
    assert telesign.get(f"/v1/verify/{reference}", params={"verify_code": "99999"}).status_code == 200
    assert telesign.get(f"/v1/verify/{reference}").status_code == 200  # a lookup alone checks nothing
    assert telesign.put(f"/v1/verify/completion/{reference}").status_code == 200
    cm = httpx.post(
        f"{mock_server.url}/voiceapi/v2/DTMF",
        headers={"X-CM-PRODUCTTOKEN": CM_TOKEN},
        json={
            "caller": "+31201234567",
            "callee": "+15005550702",
            "prompt": "Enter your four digit code, then press hash.",
            "prompt-type": "TTS",
            "valid-prompt": "Thank you.",
            "invalid-prompt": "That was not right.",
            "min-digits": 4,
            "max-digits": 8,
            "max-attempts": 3,
        },
    )
    assert cm.status_code == 200, cm.text
    control.post("/clock/advance", json={"seconds": 120})
    rows = reached(control)
    assert {
        "telesign.status.103",
        "telesign.status.107",
        "telesign.code_state.INVALID",
        "telesign.completion",
        "cm.input.by_terminator",
        "cm.input.valid_later",
        "cm.result.10",
    } <= set(rows)
    assert "cm.input.valid_first" not in rows
    assert rows["telesign.code_state.INVALID"]["count"] == 1 and "telesign.code_state.UNKNOWN" not in rows


def test_coverage_survives_a_restart_with_a_state_file(tmp_path: Path) -> None:
    options = ["--state", f"sqlite:{tmp_path / 'state.db'}", "--clock", "manual", "--quiet"]
    with running(options, cwd=REPO) as (url, _):
        httpx.put(f"{url}/_mock/coverage/test", json={"test": "suite.py::before"})
        assert httpx.get(f"{url}/v2/verify_profiles").status_code == 401
    with running(options, cwd=REPO) as (url, _):
        rows = reached(httpx.Client(base_url=f"{url}/_mock"))
        assert rows["telnyx.error.401"]["tests"] == ["suite.py::before"]
        assert httpx.get(f"{url}/v2/verify_profiles").status_code == 401
        row = reached(httpx.Client(base_url=f"{url}/_mock"))["telnyx.error.401"]
        assert (row["count"], row["tests"]) == (2, ["suite.py::before"])  # the test named is kept too


def test_coverage_webhooks_retried_then_delivered_or_given_up(
    mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    with httpx.Client(base_url=mock_server.url) as client:
        flaky = make_profile(client, webhook_url=f"{receiver.url}/flaky")  # no failover: each round is one attempt
    receiver.script["/flaky"] = [503]  # the first round fails; the retry 5 s later is taken
    body = {"phone_number": "+15005550101", "verify_profile_id": flaky}
    assert telnyx(mock_server, "POST", "/verifications/dtmf_confirm", json=body).status_code == 200
    control.post("/clock/advance", json={"seconds": 20})
    assert "webhooks.retried_then_delivered" in reached(control)
    assert "webhooks.all_failed" not in reached(control)
    receiver.script["/flaky"] = [503] * 10  # every round fails: 4 rounds over 155 s, then the mock gives up
    body = {"phone_number": "+15005550101", "verify_profile_id": flaky}
    assert telnyx(mock_server, "POST", "/verifications/dtmf_confirm", json=body).status_code == 200
    control.post("/clock/advance", json={"seconds": 300})
    row = reached(control)["webhooks.all_failed"]
    assert row["count"] == 1 and row["first"]["request"] == "POST /_mock/clock/advance"
