"""Shared use: the mock must not become a way to reach internal services, nor be driven without its token."""

from __future__ import annotations

import httpx

from tests.helpers import TELNYX_AUTH, make_profile
from tests.receiver import Receiver
from verifymock.config import LOOPBACK_HOSTS, Config
from verifymock.server import serve_in_thread


def _dtmf(client: httpx.Client, profile_id: str, number: str) -> str:
    response = client.post(
        "/v2/verifications/dtmf_confirm", json={"phone_number": number, "verify_profile_id": profile_id}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def test_guard_callback_outside_the_allow_list_is_refused_recorded_and_not_sent(receiver: Receiver) -> None:
    receiver.clear()
    config = Config(port=0, clock="manual", allow_callback_hosts=["localhost"], access_log=False)
    port = receiver.url.rsplit(":", 1)[1]
    with serve_in_thread(config) as running, httpx.Client(base_url=running.url, headers=TELNYX_AUTH) as client:
        refused_profile = make_profile(client, webhook_url=f"{receiver.url}/refused")  # 127.0.0.1: not allowed
        allowed_profile = make_profile(client, webhook_url=f"http://localhost:{port}/allowed")
        refused_id = _dtmf(client, refused_profile, "+13125550301")
        allowed_id = _dtmf(client, allowed_profile, "+13125550302")
        client.post("/_mock/clock/advance", json={"seconds": 6})  # both callees press 1; both webhooks are due

        deliveries = {d["subject"]: d for d in client.get("/_mock/webhooks").json()["data"]}
        refused = deliveries[refused_id]
        assert refused["state"] == "refused"
        [attempt] = refused["attempts"]
        assert attempt["status_code"] is None and not attempt["delivered"]
        assert "127.0.0.1 is not an allowed callback host" in attempt["error"]
        assert deliveries[allowed_id]["state"] == "delivered"
        # not retried later either
        client.post("/_mock/clock/advance", json={"seconds": 600})
        assert len(client.get("/_mock/webhooks").json()["data"][0]["attempts"]) == 1
        told = client.get(f"/_mock/timeline/{refused_id}").json()["events"][-1]
        assert (told["to"], told["label"]) == ("receiver", "webhook verification.complete → not sent")
    assert receiver.at("/refused") == []
    assert len(receiver.at("/allowed")) == 1


def test_guard_defaults_loopback_only_and_token_when_bound_beyond_loopback() -> None:
    assert Config(host="127.0.0.1").callback_hosts() is None  # a local mock may call anything the tests run
    exposed = Config(host="0.0.0.0", control_token="t")
    assert exposed.callback_hosts() == LOOPBACK_HOSTS
    assert Config(host="0.0.0.0", control_token="t", allow_callback_hosts=["hooks.internal"]).callback_hosts() == {
        "hooks.internal"
    }


def test_guard_exposed_server_requires_the_token_for_control_events_but_not_the_static_page() -> None:
    config = Config(host="0.0.0.0", port=0, clock="manual", control_token="s3cret", access_log=False)
    with serve_in_thread(config) as running:
        base = running.url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(f"{base}/_mock/ui").status_code == 200
        assert httpx.get(f"{base}/_mock/handsets").status_code == 401
        assert httpx.get(f"{base}/_mock/events").status_code == 401
        token = {"Authorization": "Bearer s3cret"}
        assert httpx.get(f"{base}/_mock/handsets", headers=token).status_code == 200
        with httpx.stream("GET", f"{base}/_mock/events", headers=token) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream"
            assert next(stream.iter_lines()) == "event: change"
