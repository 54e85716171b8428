"""Every fault, observed from the client side: latency, errors, broken connections, broken webhook deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import PROFILE_BODY, TELNYX_AUTH, tollfree_body
from tests.receiver import Receiver, webhook_receiver
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread

NUMBER = "+13035551234"
SCENARIOS = {
    "faults/slow_random": "summary: x\noverrides:\n  latency_ms: {min: 200, max: 300}\n",
    "faults/closed": "summary: x\noverrides:\n  connection: close\n",
    "faults/reset": "summary: x\noverrides:\n  connection: reset\n",
    "faults/late": "summary: x\noverrides:\n  webhooks: {late_seconds: 60}\n",
    "faults/twice": "summary: x\noverrides:\n  webhooks: {duplicate: true}\n",
    "faults/out_of_order": (
        "summary: x\nreview:\n  - {after: 10, status: Waiting For Vendor}\n  - {after: 10, status: Verified}\n"
        "overrides:\n  webhooks: {out_of_order: true}\n"
    ),
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def mock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder: Path = tmp_path_factory.mktemp("scenarios")
    for scenario_id, text in SCENARIOS.items():
        path = folder / f"{scenario_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    with serve_in_thread(Config(port=0, clock="manual", scenarios=[folder])) as running:
        yield running


@pytest.fixture
def client(mock_server: Running, receiver: Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_server.url, headers=TELNYX_AUTH) as http:
        http.post("/_mock/reset")
        receiver.clear()
        yield http


def reached(client: httpx.Client) -> set[str]:
    """The outcomes the coverage report counts as reached."""
    report = client.get("/_mock/coverage").json()
    return {row["name"] for vendor in report["vendors"] for row in vendor["outcomes"] if row["reached"]}


def profile(client: httpx.Client, receiver: Receiver) -> str:
    body = {**PROFILE_BODY, "webhook_url": f"{receiver.url}/hook"}
    return str(client.post("/v2/verify_profiles", json=body).json()["data"]["id"])


def trigger(client: httpx.Client, profile_id: str, scenario: str | None = None, kind: str = "sms") -> httpx.Response:
    headers = {"X-Mock-Scenario": scenario} if scenario else {}
    return client.post(
        f"/v2/verifications/{kind}", json={"phone_number": NUMBER, "verify_profile_id": profile_id}, headers=headers
    )


# -- request faults -----------------------------------------------------------------------------------------------


def test_fault_fixed_latency_on_an_operation(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    client.post("/_mock/faults", json={"operation_id": "CreateVerificationSms", "latency_ms": 300})
    started = time.perf_counter()
    assert trigger(client, profile_id).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_fault_random_latency_from_a_scenario(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    started = time.perf_counter()
    assert trigger(client, profile_id, "faults/slow_random").status_code == 200
    assert time.perf_counter() - started >= 0.2


def test_fault_vendor_error_on_a_number_for_a_number_of_requests(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    fault = client.post(
        "/_mock/faults", json={"phone_number": NUMBER, "http": {"status": 503, "code": "10007"}, "times": 1}
    ).json()
    failed = trigger(client, profile_id)
    assert failed.status_code == 503
    assert failed.headers["x-should-retry"] == "false"
    assert failed.json()["errors"][0]["code"] == "10007"
    assert trigger(client, profile_id).status_code == 200  # times: 1
    assert client.delete(f"/_mock/faults/{fault['id']}").status_code == 404  # already used up


def test_fault_connection_closed_without_a_response(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    client.post("/_mock/faults", json={"operation_id": "CreateVerificationSms", "connection": "close"})
    with pytest.raises(httpx.RemoteProtocolError):
        trigger(client, profile_id)
    with pytest.raises(httpx.RemoteProtocolError):
        trigger(client, profile_id, "faults/closed")
    faults = client.get("/_mock/faults").json()["data"]
    client.delete(f"/_mock/faults/{faults[0]['id']}")
    assert trigger(client, profile_id).status_code == 200
    entries = client.get("/_mock/journal", params={"operation_id": "CreateVerificationSms"}).json()["data"]
    assert [e["response"]["dropped"] for e in entries] == ["close", "close", None]  # not taken for answers


def test_fault_connection_reset_mid_body(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        trigger(client, profile_id, "faults/reset")
    # the request was processed; only its answer was lost
    assert client.get(f"/v2/verifications/by_phone_number/{NUMBER}").json()["meta"]["total_results"] == 1
    entry = client.get("/_mock/journal", params={"operation_id": "CreateVerificationSms"}).json()["data"][-1]
    assert entry["response"]["dropped"] == "reset"


# -- webhook faults -----------------------------------------------------------------------------------------------


def test_fault_webhook_arrives_late(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    client.put(f"/_mock/bindings/{NUMBER}", json={"scenario": "faults/late"})
    trigger(client, profile_id, kind="dtmf_confirm")
    client.post(f"/_mock/handsets/{NUMBER}/answer")
    client.post(f"/_mock/handsets/{NUMBER}/hangup")
    assert receiver.at("/hook") == []
    client.post("/_mock/clock/advance", json={"seconds": 59})
    assert receiver.at("/hook") == []
    client.post("/_mock/clock/advance", json={"seconds": 1})
    assert len(receiver.at("/hook")) == 1
    assert reached(client) >= {"webhooks.late", "webhooks.delivered_first"}


def test_fault_webhook_arrives_twice(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    client.put(f"/_mock/bindings/{NUMBER}", json={"scenario": "faults/twice"})
    trigger(client, profile_id, kind="dtmf_confirm")
    client.post(f"/_mock/handsets/{NUMBER}/answer")
    client.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"})
    first, second = (json.loads(r.body) for r in receiver.at("/hook"))
    assert first == second  # the very same event, id and attempt included
    assert "webhooks.duplicate" in reached(client)


def test_fault_webhooks_out_of_order(client: httpx.Client, receiver: Receiver) -> None:
    body = tollfree_body(businessName="Order Co", webhookUrl=f"{receiver.url}/tfv")
    client.post(
        "/v2/messaging_tollfree/verification/requests", json=body, headers={"X-Mock-Scenario": "faults/out_of_order"}
    )
    client.post("/_mock/clock/advance", json={"seconds": 60})
    arrived = [json.loads(r.body)["data"]["payload"]["verificationStatus"] for r in receiver.at("/tfv")]
    assert arrived == ["Verified", "Waiting For Vendor"]
    assert "webhooks.out_of_order" in reached(client)


def test_fault_webhook_failures_and_bad_signature_are_recorded(client: httpx.Client, receiver: Receiver) -> None:
    profile_id = profile(client, receiver)
    receiver.script["/hook"] = [500]
    client.put(f"/_mock/bindings/{NUMBER}", json={"scenario": "webhooks/bad_signature"})
    trigger(client, profile_id, kind="dtmf_confirm")
    client.post("/_mock/clock/advance", json={"seconds": 30})
    [delivery] = client.get("/_mock/webhooks").json()["data"]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
