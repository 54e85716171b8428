"""Two replicas on one Redis behave as one mock: real servers on loopback ports, a real Valkey server, the official
Telnyx SDK sent to both in alternation as a round-robin load balancer would, and a real webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import telnyx

from tests.helpers import PROFILE_BODY, REPO, TELNYX_AUTH, make_profile, running
from tests.receiver import webhook_receiver
from verifymock.state.term import TTL_S

NUMBER = "+13035551234"


@pytest.fixture
def replicas(redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two servers sharing one prefix on the tests' Redis server: their base URLs."""
    options = ["--state", f"{redis_url}?prefix={tmp_path.name}", "--clock", "manual", "--quiet"]
    with ExitStack() as stack:
        yield [stack.enter_context(running(options, cwd=REPO))[0] for _ in range(2)]


class RoundRobin(httpx.HTTPTransport):
    """Sends each request to the next replica in turn."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.ports = [httpx.URL(url).port for url in urls]
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(port=self.ports[self.sent % len(self.ports)])
        self.sent += 1
        return super().handle_request(request)


def _sdk(url: str, transport: httpx.BaseTransport | None = None) -> telnyx.Telnyx:
    client = httpx.Client(transport=transport) if transport is not None else None
    return telnyx.Telnyx(api_key="KEY-test", base_url=f"{url}/v2", max_retries=0, http_client=client)


def _dtmf_confirm(sdk: telnyx.Telnyx, profile_id: str, number: str = NUMBER) -> dict[str, Any]:
    result = sdk.post(
        "/verifications/dtmf_confirm", body={"phone_number": number, "verify_profile_id": profile_id}, cast_to=object
    )
    assert isinstance(result, dict)
    return dict(result["data"])


def _wait(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_replicas_serve_one_verification_through_a_round_robin(replicas: list[str]) -> None:
    a, b = replicas
    with webhook_receiver() as receiver, httpx.Client(base_url=b) as control_b:
        body = {k: v for k, v in PROFILE_BODY.items() if k not in ("name", "dtmf_confirm")}
        profile = _sdk(a).verify_profiles.create(
            name="Acme login",
            webhook_url=f"{receiver.url}/hook",
            extra_body={"dtmf_confirm": {"default_timeout_secs": 300}, **body},
        )
        assert profile.data is not None and profile.data.id is not None
        verification = _dtmf_confirm(_sdk(b), profile.data.id)
        assert verification["status"] == "pending"
        with pytest.raises(telnyx.UnprocessableEntityError):  # one DTMF confirmation per number, across replicas
            _dtmf_confirm(_sdk(a), profile.data.id)
        assert control_b.post(f"/_mock/handsets/{NUMBER}/answer").status_code == 200
        assert control_b.post(f"/_mock/handsets/{NUMBER}/press", json={"digits": "1"}).status_code == 200
        _wait(lambda: receiver.at("/hook"))
        balanced = _sdk(a, RoundRobin([a, b]))
        for _ in range(4):  # each replica answers twice, the same
            found = balanced.verifications.retrieve(verification["id"])
            assert found.data is not None and found.data.status == "accepted"
        time.sleep(0.5)  # nothing more comes
        [received] = receiver.at("/hook")
        keys = {httpx.get(f"{url}/_mock/keys").json()["telnyx"]["public_key"] for url in replicas}
        assert len(keys) == 1  # one signing key for the whole mock
        event = balanced.webhooks.unwrap(received.body.decode(), headers=received.headers, key=keys.pop())
        assert event.data is not None
        payload = orjson.loads(received.body)["data"]["payload"]
        assert (payload["id"], payload["status"]) == (verification["id"], "accepted")
        for url in replicas:  # both show the one delivery, delivered
            deliveries = httpx.get(f"{url}/_mock/webhooks").json()["data"]
            assert [(d["subject"], d["state"]) for d in deliveries] == [(verification["id"], "delivered")]


def test_replicas_share_the_clock_and_refuse_a_second_advance(replicas: list[str]) -> None:
    a, b = replicas
    with webhook_receiver() as receiver:
        with httpx.Client(base_url=a, headers=TELNYX_AUTH) as client:
            profile_id = make_profile(client, webhook_url=f"{receiver.url}/held")
            client.post(
                "/v2/verifications/dtmf_confirm", json={"phone_number": NUMBER, "verify_profile_id": profile_id}
            )
        # the default callee answers at 2 s and presses 1 at 5 s: the webhook is held by the receiver
        first = ThreadPoolExecutor(1).submit(httpx.post, f"{a}/_mock/clock/advance", json={"seconds": 60}, timeout=60)
        _wait(lambda: receiver.at("/held"))
        second = httpx.post(f"{b}/_mock/clock/advance", json={"seconds": 1})
        assert second.status_code == 409, second.text
        assert httpx.post(f"{b}/_mock/reset").status_code == 409
        assert httpx.get(f"{b}/v2/verify_profiles/{profile_id}", headers=TELNYX_AUTH).status_code == 200  # served
        receiver.held.set()
        assert first.result().status_code == 200
        clocks = {httpx.get(f"{url}/_mock/clock").json()["now"] for url in replicas}
        assert clocks == {"2026-01-01T00:01:00Z"}
        assert httpx.post(f"{b}/_mock/clock/advance", json={"seconds": 60}).json()["now"] == "2026-01-01T00:02:00Z"
        assert httpx.get(f"{a}/_mock/clock").json()["now"] == "2026-01-01T00:02:00Z"


@pytest.mark.parametrize("first", ["press", "timeout"])
def test_replicas_a_keypress_racing_the_timeout_has_one_outcome_and_one_webhook(
    replicas: list[str], first: str
) -> None:
    a, b = replicas
    with webhook_receiver() as receiver, httpx.Client(base_url=a, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client, webhook_url=f"{receiver.url}/hook")
        numbers = [f"+1303555{i:04d}" for i in range(6)]
        ids = {}
        for number in numbers:
            body = {"phone_number": number, "verify_profile_id": profile_id}
            response = client.post(
                "/v2/verifications/dtmf_confirm", json=body, headers={"X-Mock-Scenario": "interactive"}
            )
            ids[number] = response.json()["data"]["id"]
            assert client.post(f"/_mock/handsets/{number}/answer").status_code == 200

        def press(number: str) -> None:
            httpx.post(f"{b}/_mock/handsets/{number}/press", json={"digits": "1"})

        def advance() -> None:
            assert httpx.post(f"{a}/_mock/clock/advance", json={"seconds": 3600}, timeout=60).status_code == 200

        with ThreadPoolExecutor(len(numbers) + 1) as pool:  # both at once, one of them a little ahead
            if first == "press":
                waits = [pool.submit(press, n) for n in numbers]
                time.sleep(0.01)
                waits.append(pool.submit(advance))
            else:
                waits = [pool.submit(advance)]
                time.sleep(0.01)
                waits += [pool.submit(press, n) for n in numbers]
            for wait in waits:
                wait.result()
        _wait(lambda: len(receiver.at("/hook")) >= len(numbers))
        time.sleep(0.5)
        subjects = [orjson.loads(r.body)["data"]["payload"]["id"] for r in receiver.at("/hook")]
        assert sorted(subjects) == sorted(ids.values())  # one webhook each
        for number, verification_id in ids.items():
            statuses = {
                httpx.get(f"{url}/v2/verifications/{verification_id}", headers=TELNYX_AUTH).json()["data"]["status"]
                for url in replicas
            }
            assert len(statuses) == 1 and statuses <= {"accepted", "expired", "invalid"}, (number, statuses)


def test_replicas_a_replica_killed_while_it_decides_loses_nothing_and_runs_nothing_twice(
    redis_url: str, tmp_path: Path
) -> None:
    options = ["--state", f"{redis_url}?prefix={tmp_path.name}", "--clock", "manual", "--quiet"]
    answered: dict[str, str] = {}
    lock = threading.Lock()
    with webhook_receiver() as receiver, ExitStack() as stack:
        (a, process_a), (b, _) = (stack.enter_context(running(options, cwd=REPO)) for _ in range(2))
        with httpx.Client(base_url=a, headers=TELNYX_AUTH) as client:
            profile_id = make_profile(client, webhook_url=f"{receiver.url}/hook")
        killed = threading.Event()

        def verify(i: int) -> None:
            url = (a, b)[i % 2]
            number = f"+1312555{i:04d}"
            try:
                response = httpx.post(
                    f"{url}/v2/verifications/dtmf_confirm",
                    json={"phone_number": number, "verify_profile_id": profile_id},
                    headers=TELNYX_AUTH,
                    timeout=30,
                )
            except httpx.TransportError:
                return  # replica A died under this request: it was never answered
            if response.status_code == 200:
                with lock:
                    answered[response.json()["data"]["id"]] = number
                    if len(answered) == 60 and not killed.is_set():
                        process_a.kill()  # SIGKILL, most likely while it holds the term
                        killed.set()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(verify, range(200)))
        assert killed.is_set() and len(answered) >= 60
        # replica B goes on once A's term has run out (TTL_S); every answered verification is there
        advanced = httpx.post(f"{b}/_mock/clock/advance", json={"seconds": 6}, timeout=TTL_S + 120)
        assert advanced.status_code == 200, advanced.text
        for verification_id in answered:
            data = httpx.get(f"{b}/v2/verifications/{verification_id}", headers=TELNYX_AUTH).json()["data"]
            assert data["status"] == "accepted", data
        _wait(lambda: len(receiver.at("/hook")) >= len(answered), 30)
        subjects = [orjson.loads(r.body)["data"]["payload"]["id"] for r in receiver.at("/hook")]
        assert set(answered) <= set(subjects)
        assert len(subjects) == len(set(subjects))  # each timer ran once: one webhook per verification


def test_replicas_show_every_replicas_journal(replicas: list[str]) -> None:
    a, b = replicas
    httpx.get(f"{a}/v2/verify_profiles", headers=TELNYX_AUTH)
    httpx.get(f"{b}/v2/verify_profiles/missing", headers=TELNYX_AUTH)
    for url in replicas:
        paths = [e["path"] for e in httpx.get(f"{url}/_mock/journal").json()["data"]]
        assert "/v2/verify_profiles" in paths and "/v2/verify_profiles/missing" in paths


# -- serve --workers N: processes on one port ---------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_workers_share_one_port_and_one_state(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    state = (
        f"sqlite:{tmp_path / 'mock.db'}"
        if store == "sqlite"
        else f"{request.getfixturevalue('redis_url')}?prefix={tmp_path.name}"
    )
    options = ["--workers", "3", "--state", state, "--clock", "manual", "--quiet"]
    with webhook_receiver() as receiver, running(options, cwd=REPO) as (url, supervisor):
        workers = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text().split()
        assert len(workers) >= 3  # (and uvicorn's own helper, if any)
        # a new connection for every request: the kernel hands each to whichever worker accepts it
        fresh = httpx.Client(base_url=url, headers=TELNYX_AUTH, limits=httpx.Limits(max_keepalive_connections=0))
        with fresh:
            profile_id = make_profile(fresh, webhook_url=f"{receiver.url}/hook")
            body = {"phone_number": NUMBER, "verify_profile_id": profile_id}
            created = fresh.post("/v2/verifications/dtmf_confirm", json=body)
            assert created.status_code == 200, created.text
            path = f"/v2/verifications/{created.json()['data']['id']}"
            assert {fresh.get(path).json()["data"]["status"] for _ in range(10)} == {"pending"}
            assert fresh.post("/_mock/clock/advance", json={"seconds": 6}).status_code == 200  # answered, pressed 1
            _wait(lambda: receiver.at("/hook"))
            assert {fresh.get(path).json()["data"]["status"] for _ in range(10)} == {"accepted"}
            time.sleep(0.5)
            assert len(receiver.at("/hook")) == 1


def test_workers_refuse_memory_state_with_the_fix() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "verifymock", "serve", "--workers", "2", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "verifymock: --workers at 2: needs state the workers share, and memory state lives in one process "
        "(add --state sqlite:PATH or --state redis://HOST:PORT/DB)"
    ]


def test_replicas_a_round_under_way_in_a_killed_replica_is_attempted_again_by_another(
    redis_url: str, tmp_path: Path
) -> None:
    options = ["--state", f"{redis_url}?prefix={tmp_path.name}", "--clock", "manual", "--quiet"]
    with webhook_receiver() as receiver, ExitStack() as stack:
        (a, process_a), (b, _) = (stack.enter_context(running(options, cwd=REPO)) for _ in range(2))
        with httpx.Client(base_url=b, headers=TELNYX_AUTH) as client:
            profile_id = make_profile(client, webhook_url=f"{receiver.url}/held")
            body = {"phone_number": NUMBER, "verify_profile_id": profile_id}
            verification_id = client.post("/v2/verifications/dtmf_confirm", json=body).json()["data"]["id"]
        # replica A runs the timers (answer at 2 s, press 1 at 5 s); the receiver holds A's attempt
        ThreadPoolExecutor(1).submit(lambda: httpx.post(f"{a}/_mock/clock/advance", json={"seconds": 6}, timeout=60))
        _wait(lambda: receiver.at("/held"))
        process_a.kill()
        receiver.held.set()  # from now on it answers at once
        _wait(lambda: len(receiver.at("/held")) >= 2, 30)  # replica B sends the round again once A is known gone
        first, again = (orjson.loads(r.body) for r in receiver.at("/held")[:2])
        assert first["data"]["id"] == again["data"]["id"]  # the same event, its id unchanged
        assert again["data"]["payload"]["id"] == verification_id
        _wait(lambda: httpx.get(f"{b}/_mock/webhooks").json()["data"][0]["state"] == "delivered")
        [delivery] = httpx.get(f"{b}/_mock/webhooks").json()["data"]
        assert delivery["attempts"][-1]["status_code"] == 200


def test_replicas_the_page_stream_hears_of_changes_made_through_another(replicas: list[str]) -> None:
    a, b = replicas
    with httpx.stream("GET", f"{b}/_mock/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "event: change"  # the stream opens with the version it starts from
        with httpx.Client(base_url=a, headers=TELNYX_AUTH) as client:
            make_profile(client)
        deadline = time.monotonic() + 10
        while next(lines) != "event: change":
            assert time.monotonic() < deadline


def test_replicas_a_refused_commit_is_decided_again_on_the_state_read_afresh(redis_url: str, tmp_path: Path) -> None:
    """A record moved in the store behind the process's back (as if it had lost its term while deciding): that
    commit is refused, the process reads the state again and serves the request again, on what the store holds;
    later requests are served as usual (a refused commit kept for the next one made every later one refused)."""
    import redis

    options = ["--state", f"{redis_url}?prefix={tmp_path.name}", "--clock", "manual", "--quiet"]
    with running(options, cwd=REPO) as (url, _), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client)
        direct = redis.Redis.from_url(redis_url)
        key = f"{{{tmp_path.name}}}:r:profile:{profile_id}"
        direct.hincrby(key, "v", 5)
        direct.hset(key, "d", direct.hget(key, "d").replace(b'"name":"', b'"name":"elsewhere '))
        direct.close()
        again = client.patch(f"/v2/verify_profiles/{profile_id}", json={"language": "fr-FR"})
        assert again.status_code == 200, again.text
        # decided on the store's record (the name another process gave it), not on what this process held
        assert (again.json()["data"]["name"], again.json()["data"]["language"]) == ("elsewhere Test Profile", "fr-FR")
        journal = client.get("/_mock/journal", params={"operation_id": "UpdateVerifyProfile"}).json()["data"]
        assert [e["status_code"] for e in journal] == [200]  # the attempt thrown away left no entry
        for name in ("first", "second"):
            served = client.patch(f"/v2/verify_profiles/{profile_id}", json={"name": name})
            assert served.status_code == 200, served.text
        assert client.get(f"/v2/verify_profiles/{profile_id}").json()["data"]["name"] == "second"


def test_replicas_a_redis_out_of_reach_is_answered_503_in_the_vendors_envelope(tmp_path: Path) -> None:
    from tests.redis_server import redis_server

    redis = ExitStack()
    url = redis.enter_context(redis_server(tmp_path / "redis"))
    options = ["--state", url, "--clock", "manual", "--quiet"]
    with running(options, cwd=REPO) as (base, _), httpx.Client(base_url=base, headers=TELNYX_AUTH) as client:
        make_profile(client)
        redis.close()  # the Redis server stops
        for _ in range(3):  # each request tries again, and is answered at once
            refused = client.post("/v2/verify_profiles", json={"name": "lost"}, timeout=30)
            assert refused.status_code == 503, refused.text
            assert refused.json()["errors"][0]["detail"].startswith("The change could not be saved")
        assert client.get("/_mock/health").status_code == 503  # a readiness probe takes the replica out


def test_replicas_requests_in_a_row_changing_one_record_are_never_refused(redis_url: str, tmp_path: Path) -> None:
    """Many clients changing one profile at once: each commit expects the version the one before it wrote, so
    the store refuses none of them (a commit that took its changes while the one before was under way expected the
    version that one replaced, and was refused)."""
    options = ["--state", f"{redis_url}?prefix={tmp_path.name}", "--clock", "manual"]
    with running(options, cwd=REPO) as (url, process), httpx.Client(base_url=url, headers=TELNYX_AUTH) as client:
        profile_id = make_profile(client)

        def rename(i: int) -> int:
            body = {"name": f"name {i}"}
            return httpx.patch(f"{url}/v2/verify_profiles/{profile_id}", json=body, headers=TELNYX_AUTH).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(rename, range(200))) == {200}
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "refused" not in output


def test_replicas_count_outcome_coverage_as_one_mock(replicas: list[str]) -> None:
    """An outcome reached through either replica counts once per time, under the test named through the other."""
    first, second = replicas
    assert httpx.put(f"{first}/_mock/coverage/test", json={"test": "suite.py::shared"}).status_code == 204
    for url in (first, second, first):
        assert httpx.get(f"{url}/v2/verify_profiles").status_code == 401
    for url in replicas:
        rows = {r["name"]: r for v in httpx.get(f"{url}/_mock/coverage").json()["vendors"] for r in v["outcomes"]}
        assert (rows["telnyx.error.401"]["count"], rows["telnyx.error.401"]["tests"]) == (3, ["suite.py::shared"])
    assert httpx.post(f"{second}/_mock/reset").status_code == 204
    _wait(lambda: httpx.get(f"{first}/_mock/coverage").json()["reached"] == 0)
