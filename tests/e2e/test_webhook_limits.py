"""What a receiver can do to the mock, and what retention and the allow-list do to deliveries (hostile findings M6,
M7, L7, L8, L9): a stuck or endless receiver costs an attempt its deadline and nothing more, and only the request
that caused a delivery waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import TELNYX_AUTH
from tests.receiver import Receiver
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread
from verifymock.webhooks import ATTEMPT_DEADLINE

NUMBER = "+13035552101"


def dtmf_confirm(client: httpx.Client, webhook_url: str, number: str = NUMBER, **profile: str) -> str:
    created = client.post(
        "/v2/verify_profiles",
        json={"name": "Acme", "dtmf_confirm": {}, "webhook_url": webhook_url, **profile},
        headers=TELNYX_AUTH,
    )
    assert created.status_code == 200, created.text
    client.put(f"/_mock/bindings/{number}", json={"scenario": "interactive"})
    sent = client.post(
        "/v2/verifications/dtmf_confirm",
        json={"phone_number": number, "verify_profile_id": created.json()["data"]["id"]},
        headers=TELNYX_AUTH,
    )
    assert sent.status_code == 200, sent.text
    return str(sent.json()["data"]["id"])


@pytest.fixture
def client(mock_server: Running, control: httpx.Client) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_server.url, timeout=60) as plain:
        yield plain


def test_webhook_stuck_receiver_holds_only_the_request_that_caused_it(client: httpx.Client, receiver: Receiver) -> None:
    dtmf_confirm(client, f"{receiver.url}/hang")
    client.post(f"/_mock/handsets/{NUMBER}/answer")
    pressed: list[float] = []

    def press() -> None:
        started = time.perf_counter()
        client.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"})
        pressed.append(time.perf_counter() - started)

    presser = threading.Thread(target=press)
    presser.start()
    deadline = time.monotonic() + 5
    while not receiver.at("/hang") and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    assert client.post("/_mock/clock/advance", json={"seconds": 1}).status_code == 200
    unrelated = time.perf_counter() - started
    presser.join()
    # the press waits for its own webhook's attempt, which ends at the deadline; the advance waited for nothing
    assert pressed[0] >= ATTEMPT_DEADLINE * 0.9
    assert unrelated < ATTEMPT_DEADLINE / 2, f"an unrelated advance waited {unrelated:.1f} s for a stuck receiver"
    attempt = client.get("/_mock/webhooks").json()["data"][0]["attempts"][0]
    assert attempt["status_code"] is None and "no answer within" in attempt["error"]


def test_webhook_endless_answer_is_not_read(client: httpx.Client, receiver: Receiver) -> None:
    peak_before = _peak_rss_kib()
    dtmf_confirm(client, f"{receiver.url}/huge")
    client.post(f"/_mock/handsets/{NUMBER}/answer")
    client.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"})
    delivery = client.get("/_mock/webhooks").json()["data"][0]
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][0]["status_code"] == 200
    grown_mib = (_peak_rss_kib() - peak_before) / 1024
    assert grown_mib < 100, f"the server's peak memory grew {grown_mib:.0f} MiB on a 2 GiB answer"


def _peak_rss_kib() -> int:
    # the mock serves in a thread of this process: its peak memory is this process's
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def test_webhook_refused_primary_goes_to_an_allowed_failover(receiver: Receiver) -> None:
    config = Config(port=0, clock="manual", allow_callback_hosts=["127.0.0.1"], access_log=False)
    with serve_in_thread(config) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        refused = receiver.url.replace("127.0.0.1", "localhost") + "/primary"
        dtmf_confirm(client, refused, webhook_failover_url=f"{receiver.url}/failover")
        client.post(f"/_mock/handsets/{NUMBER}/answer")
        client.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"})
        delivery = client.get("/_mock/webhooks").json()["data"][0]
        assert delivery["state"] == "delivered"
        assert [a["url"] for a in delivery["attempts"]] == [refused, f"{receiver.url}/failover"]
        assert "not an allowed callback host" in delivery["attempts"][0]["error"]
        assert len(receiver.at("/failover")) == 1 and not receiver.at("/primary")


def test_webhook_retention_lets_a_delivery_retry_to_its_end_and_drops_it_once_over(receiver: Receiver) -> None:
    receiver.clear()
    with (
        serve_in_thread(Config(port=0, clock="manual", retain=1, access_log=False)) as running,
        httpx.Client(base_url=running.url, timeout=30) as client,
    ):
        receiver.script["/fail"] = [500] * 10
        dtmf_confirm(client, f"{receiver.url}/fail", number="+13035552102")
        client.post("/_mock/handsets/+13035552102/answer")
        client.post("/_mock/handsets/+13035552102/press", json={"digits": "1"})
        assert len(receiver.at("/fail")) == 1
        dtmf_confirm(client, f"{receiver.url}/ok", number="+13035552103")
        client.post("/_mock/handsets/+13035552103/answer")
        client.post("/_mock/handsets/+13035552103/press", json={"digits": "1"})
        # one is kept: the delivery under way stays, and the one that is over (delivered) goes
        assert [d["url"] for d in client.get("/_mock/webhooks").json()["data"]] == [f"{receiver.url}/fail"]
        client.post("/_mock/clock/advance", json={"seconds": 200})  # its three retries, at 5, 30 and 120 s
        assert len(receiver.at("/fail")) == 4
        assert client.get("/_mock/webhooks").json()["data"][0]["state"] == "failed"
        dtmf_confirm(client, f"{receiver.url}/ok", number="+13035552104")
        client.post("/_mock/handsets/+13035552104/answer")
        client.post("/_mock/handsets/+13035552104/press", json={"digits": "1"})
        # now it is over, and the oldest: it goes
        assert [d["url"] for d in client.get("/_mock/webhooks").json()["data"]] == [f"{receiver.url}/ok"]
        client.post("/_mock/clock/advance", json={"seconds": 1000})
        assert len(receiver.at("/fail")) == 4, "a dropped delivery was retried"


def test_webhook_reset_or_second_advance_during_an_advance_is_refused(client: httpx.Client, receiver: Receiver) -> None:
    dtmf_confirm(client, f"{receiver.url}/hang")
    client.post(f"/_mock/handsets/{NUMBER}/answer")  # its 10 s wait for a key ends in a webhook to /hang
    advanced: list[httpx.Response] = []
    advancing = threading.Thread(
        target=lambda: advanced.append(client.post("/_mock/clock/advance", json={"seconds": 100}))
    )
    advancing.start()
    deadline = time.monotonic() + 5
    while not receiver.at("/hang") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.post("/_mock/reset").status_code == 409
    assert client.post("/_mock/clock/advance", json={"seconds": 6}).status_code == 409
    advancing.join()
    assert advanced[0].status_code == 200
    assert client.get("/_mock/clock").json()["now"] == "2026-01-01T00:01:40Z"  # the 100 s and no more
