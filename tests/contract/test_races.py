"""A keypress and the timeout it races: whichever comes first on the clock decides, once, with one webhook, on every
state backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import LOCAL, TELNYX_AUTH, make_profile
from tests.receiver import webhook_receiver
from verifymock.app import create_app
from verifymock.calls import speaking_time
from verifymock.config import Config
from verifymock.vendors.telnyx import DTMF_PROMPTS, DTMF_WAIT

NUMBER = "+13035550123"
TIMEOUT = speaking_time(DTMF_PROMPTS["en"]) + DTMF_WAIT  # from the answer: the prompt, then the wait for a key


@pytest.mark.parametrize("state", ["memory", "sqlite"])
@pytest.mark.parametrize(("first", "status"), [("key", "accepted"), ("timeout", "expired")])
def test_race_a_keypress_and_its_timeout_end_in_one_outcome_and_one_webhook(
    tmp_path: Path, state: str, first: str, status: str
) -> None:
    config = Config(clock="manual", state=state if state == "memory" else f"sqlite:{tmp_path / 'mock.db'}")
    app = create_app(config)
    app.mock.audit = True  # with a file: every commit must hold exactly the engine's state
    with webhook_receiver() as receiver, TestClient(app, base_url=LOCAL) as client:
        profile_id = make_profile(client, webhook_url=f"{receiver.url}/hook", language="en-US")
        client.put(f"/_mock/bindings/{NUMBER}", json={"scenario": "interactive"})
        body = {"phone_number": NUMBER, "verify_profile_id": profile_id}
        verification = client.post("/v2/verifications/dtmf_confirm", json=body, headers=TELNYX_AUTH).json()["data"]
        assert client.post(f"/_mock/handsets/{NUMBER}/answer").status_code == 200
        # the clock stops a tenth of a second before the timeout, or a tenth after it
        client.post("/_mock/clock/advance", json={"seconds": TIMEOUT + (-0.1 if first == "key" else 0.1)})
        pressed = client.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"})
        assert pressed.status_code == (200 if first == "key" else 404), pressed.text  # 404: no live call
        client.post("/_mock/clock/advance", json={"seconds": 600})  # whatever else was due has run
        final = client.get(f"/v2/verifications/{verification['id']}", headers=TELNYX_AUTH).json()["data"]
        deliveries = client.get("/_mock/webhooks").json()["data"]
    assert final["status"] == status
    assert [json.loads(r.body)["data"]["payload"]["status"] for r in receiver.at("/hook")] == [status]
    assert len(deliveries) == 1 and deliveries[0]["state"] == "delivered"
