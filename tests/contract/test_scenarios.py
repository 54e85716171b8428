"""Every shipped scenario, run with the manual clock: the final state, the call and the webhooks it leads to.

The same run feeds the oracle test: every response in the journal and every webhook received is validated with
openapi-core against the OpenAPI 3.1 originals, independently of the mock's own self-check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_core import OpenAPI
from starlette.testclient import TestClient

from tests.helpers import LOCAL, PROFILE_BODY, SPECS, TELNYX_AUTH
from tests.oracle import assert_journal_conforms, assert_webhooks_conform
from tests.receiver import Receiver, webhook_receiver
from verifymock.app import create_app
from verifymock.config import Config
from verifymock.paths import bundled
from verifymock.scenarios import load


@dataclass(frozen=True)
class Expect:
    channel: str  # what is triggered
    status: int = 200  # HTTP status of the trigger
    final: str | None = None  # verification status after two minutes
    call_state: str | None = None
    digits: str | None = None
    webhook: str | None = None  # where verification.complete lands: "hook", "failover" or None
    signature_ok: bool = True
    message_status: str | None = None
    code: str | None = None  # vendor error code of a refused trigger


EXPECTED: dict[str, Expect] = {
    "default": Expect("dtmf_confirm", final="accepted", call_state="completed", digits="1", webhook="hook"),
    "interactive": Expect("dtmf_confirm", final="error", call_state="no_answer", digits="", webhook="hook"),
    "telnyx/dtmf_confirm/press_1": Expect(
        "dtmf_confirm", final="accepted", call_state="completed", digits="1", webhook="hook"
    ),
    "telnyx/dtmf_confirm/wrong_digit_then_1": Expect(
        "dtmf_confirm", final="accepted", call_state="completed", digits="71", webhook="hook"
    ),
    "telnyx/dtmf_confirm/three_wrong_digits": Expect(
        "dtmf_confirm", final="invalid", call_state="completed", digits="789", webhook="hook"
    ),
    "telnyx/dtmf_confirm/silence": Expect(
        "dtmf_confirm", final="expired", call_state="completed", digits="", webhook="hook"
    ),
    "telnyx/dtmf_confirm/hangs_up": Expect(
        "dtmf_confirm", final="expired", call_state="completed", digits="", webhook="hook"
    ),
    "calls/no_answer": Expect("dtmf_confirm", final="error", call_state="no_answer", webhook="hook"),
    "calls/busy": Expect("dtmf_confirm", final="error", call_state="busy", webhook="hook"),
    "calls/unreachable": Expect("dtmf_confirm", final="error", call_state="failed", webhook="hook"),
    "calls/declines": Expect("dtmf_confirm", final="error", call_state="declined", webhook="hook"),
    "calls/blocked_by_customer": Expect("dtmf_confirm", final="error", call_state="blocked", webhook="hook"),
    "calls/blocked_by_vendor": Expect("dtmf_confirm", final="error", call_state="blocked", webhook="hook"),
    # the CM callees, run against Telnyx DTMF confirm: only their first key matters there
    "cm/valid_with_terminator": Expect(
        "dtmf_confirm", final="accepted", call_state="completed", digits="1", webhook="hook"
    ),
    "cm/too_few_then_valid": Expect(
        "dtmf_confirm", final="accepted", call_state="completed", digits="1", webhook="hook"
    ),
    "cm/never_enters": Expect("dtmf_confirm", final="expired", call_state="completed", digits="", webhook="hook"),
    "cm/regex_mismatch": Expect("dtmf_confirm", final="invalid", call_state="completed", digits="000", webhook="hook"),
    # toll-free reviews script no callee: the default one answers and never presses a key
    **{
        f"tollfree/{name}": Expect("dtmf_confirm", final="expired", call_state="completed", digits="", webhook="hook")
        for name in ("approved_after_2_days", "screenshots_then_approved", "rejected", "stuck_with_vendor")
    },
    "calls/voicemail": Expect("dtmf_confirm", final="expired", call_state="voicemail", webhook="hook"),
    "messages/undelivered": Expect("sms", final="pending", message_status="delivery_failed"),
    "webhooks/bad_signature": Expect(
        "dtmf_confirm", final="accepted", call_state="completed", webhook="hook", signature_ok=False
    ),
    "webhooks/primary_down": Expect("dtmf_confirm", final="accepted", call_state="completed", webhook="failover"),
    "errors/service_unavailable": Expect("dtmf_confirm", status=503, code="10007"),
    "errors/rate_limited": Expect("dtmf_confirm", status=429, code="10011"),
    "errors/slow": Expect("dtmf_confirm", final="accepted", call_state="completed", digits="1", webhook="hook"),
}
SCENARIOS = load([bundled("scenarios")])
NUMBERS = {
    sid: s.numbers[0] if s.numbers else f"+1303555{1000 + i:04d}"
    for i, (sid, s) in enumerate(sorted(SCENARIOS.items()))
}


@dataclass
class Run:
    responses: dict[str, Any]
    final: dict[str, Any]
    handsets: dict[str, Any]
    webhooks: list[Any]
    journal: list[dict[str, Any]]
    received: list[Any]
    public_key: str


@dataclass
class Restarted:
    before: dict[str, Any]  # what the control API showed when the first server stopped
    after: dict[str, Any]  # what a new server on the same file shows


_runs: dict[str, tuple[Run, Restarted | None]] = {}


def _views(client: TestClient) -> dict[str, Any]:
    journal = client.get("/_mock/journal").json()["data"][:-1]  # first, and less its own read
    by_number = "/v2/verifications/by_phone_number/"
    return {
        "journal": journal,
        "verifications": {sid: client.get(by_number + NUMBERS[sid], headers=TELNYX_AUTH).json() for sid in SCENARIOS},
        "handsets": client.get("/_mock/handsets").json(),
        "webhooks": client.get("/_mock/webhooks").json(),
        "bindings": client.get("/_mock/bindings").json(),
        "keys": client.get("/_mock/keys").json(),
        "clock": client.get("/_mock/clock").json(),
    }


def _run_on(state: str, folder: Path) -> tuple[Run, Restarted | None]:
    """Every scenario on one server, its state in memory or in a SQLite file. With a file, every commit is audited
    (the file must hold exactly the engine's state), and a second server on the file must show the same state."""
    if state not in _runs:
        config = Config(clock="manual", state=state if state == "memory" else f"sqlite:{folder / 'mock.db'}")
        app = create_app(config)
        app.mock.audit = True
        with webhook_receiver() as receiver:
            with TestClient(app, base_url=LOCAL) as client:
                run = _run_all(client, receiver)
                before = _views(client) if config.state != "memory" else None
            restarted = None
            if before is not None:
                with TestClient(create_app(config), base_url=LOCAL) as client:
                    restarted = Restarted(before, _views(client))
        _runs[state] = (run, restarted)
    return _runs[state]


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run_on(request.param, tmp_path_factory.mktemp("state"))[0]


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Restarted:
    found = _run_on("sqlite", tmp_path_factory.mktemp("state"))[1]
    assert found is not None
    return found


def test_scenarios_a_new_server_on_the_state_file_shows_the_same_state(restarted: Restarted) -> None:
    for view, before in restarted.before.items():
        after = restarted.after[view]
        if view == "journal":  # it goes on with the reads made after it was read
            after = after[: len(before)]
        assert after == before, view
    assert restarted.before["handsets"]["data"] and restarted.before["webhooks"]["data"]  # (not two empty views)


def _run_all(client: TestClient, receiver: Receiver) -> Run:
    profile = client.post(
        "/v2/verify_profiles",
        json={
            **PROFILE_BODY,
            "webhook_url": f"{receiver.url}/hook",
            "webhook_failover_url": f"{receiver.url}/failover",
        },
        headers=TELNYX_AUTH,
    ).json()["data"]
    responses = {}
    for scenario_id in sorted(SCENARIOS):
        number = NUMBERS[scenario_id]
        if not SCENARIOS[scenario_id].numbers:  # built-ins have no reserved number: bind one
            client.put(f"/_mock/bindings/{number}", json={"scenario": scenario_id})
        channel = EXPECTED[scenario_id].channel if scenario_id in EXPECTED else "dtmf_confirm"
        responses[scenario_id] = client.post(
            f"/v2/verifications/{channel}",
            json={"phone_number": number, "verify_profile_id": profile["id"]},
            headers=TELNYX_AUTH,
        )
    client.post("/_mock/clock/advance", json={"seconds": 120})
    final = {}
    for scenario_id, response in responses.items():
        if response.status_code == 200:
            verification_id = response.json()["data"]["id"]
            final[scenario_id] = client.get(f"/v2/verifications/{verification_id}", headers=TELNYX_AUTH).json()["data"]
    handsets = {sid: client.get(f"/_mock/handsets/{NUMBERS[sid]}").json() for sid in SCENARIOS}
    return Run(
        responses=responses,
        final=final,
        handsets=handsets,
        webhooks=client.get("/_mock/webhooks").json()["data"],
        journal=client.get("/_mock/journal").json()["data"],
        received=list(receiver.received),
        public_key=client.get("/_mock/keys").json()["telnyx"]["public_key"],
    )


def test_scenarios_every_shipped_scenario_has_an_expectation() -> None:
    assert set(SCENARIOS) == set(EXPECTED)


@pytest.mark.parametrize("scenario_id", sorted(EXPECTED))
def test_scenarios_end_where_they_say(run: Run, scenario_id: str) -> None:
    expect = EXPECTED[scenario_id]
    response = run.responses[scenario_id]
    assert response.status_code == expect.status, response.text
    if expect.code is not None:
        assert response.json()["errors"][0]["code"] == expect.code
        return
    assert run.final[scenario_id]["status"] == expect.final
    handset = run.handsets[scenario_id]
    if expect.call_state is not None:
        [call] = handset["calls"]
        assert call["state"] == expect.call_state
        assert call["scenario"] == scenario_id
        if expect.digits is not None:
            assert call["digits"] == expect.digits
    if expect.message_status is not None:
        [message] = handset["messages"]
        assert message["status"] == expect.message_status
    verification_id = response.json()["data"]["id"]
    deliveries = [d for d in run.webhooks if d["subject"] == verification_id]
    if expect.webhook is None:
        assert deliveries == []
        return
    [delivery] = deliveries
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][-1]["url"].endswith("/" + expect.webhook)
    [received] = [r for r in run.received if json.loads(r.body)["data"]["payload"]["id"] == verification_id]
    event = json.loads(received.body)
    assert event["data"]["payload"]["status"] == expect.final
    assert _signature_ok(received, run.public_key) == expect.signature_ok


def _signature_ok(received: Any, public_key: str) -> bool:
    import base64

    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    key = VerifyKey(base64.b64decode(public_key))
    message = received.headers["telnyx-timestamp"].encode() + b"|" + received.body
    try:
        key.verify(message, base64.b64decode(received.headers["telnyx-signature-ed25519"]))
    except BadSignatureError:
        return False
    return True


def test_scenarios_slow_scenario_took_its_latency(run: Run) -> None:
    [entry] = [
        e
        for e in run.journal
        if e["request"]["body"]
        and isinstance(e["request"]["body"], dict)
        and e["request"]["body"].get("phone_number") == NUMBERS["errors/slow"]
    ]
    assert entry["duration_ms"] >= 1500


# -- the independent oracle ---------------------------------------------------------------------------------------

ORIGINALS = {
    "telnyx": ("https://api.telnyx.com", yaml.safe_load((SPECS / "telnyx_verify.yaml").read_text())),
    "mock": ("http://localhost", yaml.safe_load((SPECS / "control.yaml").read_text())),
}


def test_scenarios_every_response_validates_with_openapi_core(run: Run) -> None:
    checked = 0
    for vendor, (host, doc) in ORIGINALS.items():
        entries = [e for e in run.journal if e["vendor"] == vendor and e["operation_id"] is not None]
        assert_journal_conforms(OpenAPI.from_dict(doc), host, entries)
        checked += len(entries)
    assert checked >= len(EXPECTED) * 2


def test_scenarios_every_webhook_validates_with_openapi_core(run: Run) -> None:
    assert run.received
    assert_webhooks_conform(
        OpenAPI.from_dict(ORIGINALS["telnyx"][1]), "verificationComplete", [r.body for r in run.received]
    )
