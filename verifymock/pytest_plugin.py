"""The `verifymock` pytest fixture: the real server on a loopback port, a manual clock, a webhook receiver.

Registered through the `pytest11` entry point, so installing verifymock is enough:

    def test_login_sends_a_code(verifymock):
        client = Telnyx(api_key="test", base_url=verifymock.base_url("telnyx"), max_retries=0)
        ...
        verifymock.advance(3)
        assert verifymock.handset("+13035551234").messages

One server serves the whole session; every test starts from a reset (state, clock timers, journal, bindings,
webhooks received). Outcome coverage is kept across the session, each outcome credited to the test that reached
it: the session ends with the table, `--verifymock-coverage=PATH` writes it as JSON, and
`--verifymock-require=NAME,...` fails the session unless each outcome was reached.
"""

from __future__ import annotations

import base64
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

REPORT = pytest.StashKey[dict[str, Any]]()  # the session mock's coverage, read as it stops
ABSENT = pytest.StashKey[list[str]]()  # the required outcomes it did not reach
BASE_PATHS = {"telnyx": "/v2", "telesign": "", "cm": "/voiceapi/v2", "mock": "/_mock"}


@dataclass
class Webhook:
    """One webhook or callback the mock sent to the fixture's receiver."""

    path: str
    headers: dict[str, str]
    raw: bytes
    signature_valid: bool | None  # None: a vendor that does not sign (CM)

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class _Receiver:
    url: str = ""
    received: list[Webhook] = field(default_factory=list)
    public_key: str = ""
    telesign_keys: dict[str, str] = field(default_factory=dict)

    def check(self, headers: dict[str, str], raw: bytes) -> bool | None:
        if "telnyx-signature-ed25519" in headers:
            from nacl.exceptions import BadSignatureError
            from nacl.signing import VerifyKey

            try:
                VerifyKey(base64.b64decode(self.public_key)).verify(
                    headers.get("telnyx-timestamp", "").encode() + b"|" + raw,
                    base64.b64decode(headers["telnyx-signature-ed25519"]),
                )
            except (BadSignatureError, ValueError):
                return False
            return True
        if headers.get("authorization", "").startswith("TSA "):
            from verifymock.vendors.telesign import callback_headers

            customer_id = headers["authorization"][4:].split(":", 1)[0]
            key = self.telesign_keys.get(customer_id)
            return (
                key is not None and callback_headers(customer_id, key, raw)["authorization"] == headers["authorization"]
            )
        return None


class Handset:
    """The callee's side of a phone number."""

    def __init__(self, mock: VerifyMock, phone_number: str) -> None:
        self._mock = mock
        self.phone_number = phone_number

    def _state(self) -> dict[str, Any]:
        return dict(self._mock.control("GET", f"/handsets/{self.phone_number}"))

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self._state()["calls"])

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self._state()["messages"])

    def answer(self) -> dict[str, Any]:
        return dict(self._mock.control("POST", f"/handsets/{self.phone_number}/answer"))

    def press(self, digits: str) -> dict[str, Any]:
        return dict(self._mock.control("POST", f"/handsets/{self.phone_number}/press", {"digits": digits}))

    def hangup(self) -> dict[str, Any]:
        return dict(self._mock.control("POST", f"/handsets/{self.phone_number}/hangup"))

    def decline(self) -> dict[str, Any]:
        return dict(self._mock.control("POST", f"/handsets/{self.phone_number}/decline"))


class VerifyMock:
    """What a test gets from the `verifymock` fixture."""

    def __init__(self, url: str, receiver: _Receiver) -> None:
        import httpx

        self.url = url
        self._receiver = receiver
        self._http = httpx.Client(base_url=f"{url}/_mock", timeout=30)

    # -- where things are -----------------------------------------------------------------------------------------

    def base_url(self, vendor: str) -> str:
        """The base URL an official SDK takes: telnyx, telesign, cm or mock."""
        return self.url + BASE_PATHS[vendor]

    @property
    def webhook_url(self) -> str:
        """The built-in receiver; any path under it works (`verifymock.webhook_url + "/telnyx"`)."""
        return self._receiver.url

    @property
    def telnyx_public_key(self) -> str:
        return self._receiver.public_key

    # -- acting ---------------------------------------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise AssertionError(f"{method} /_mock{path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def advance(self, seconds: float) -> dict[str, Any]:
        return dict(self.control("POST", "/clock/advance", {"seconds": seconds}))

    def handset(self, phone_number: str) -> Handset:
        return Handset(self, phone_number)

    def use_scenario(self, phone_number: str, scenario_id: str) -> None:
        self.control("PUT", f"/bindings/{phone_number}", {"scenario": scenario_id})

    def reset(self) -> None:
        """Everything as at start-up but the outcome coverage, which counts for the whole session."""
        self._reset(None)

    def _reset(self, test: str | None) -> None:
        """The reset, naming the test that begins (coverage credits it); one request, so one journal entry."""
        self.control("POST", "/reset?" + urlencode({"coverage": "keep", **({"test": test} if test else {})}))
        self._receiver.received.clear()

    def coverage(self) -> dict[str, Any]:
        """The outcome coverage report so far (GET /_mock/coverage)."""
        return dict(self.control("GET", "/coverage"))

    # -- observing ------------------------------------------------------------------------------------------------

    @property
    def webhooks(self) -> list[Webhook]:
        return list(self._receiver.received)

    def journal(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in filters.items())
        return list(self.control("GET", "/journal" + (f"?{query}" if query else ""))["data"])

    def assert_called(self, operation_id: str, **match: Any) -> dict[str, Any]:
        """The journal entry of `operation_id` whose request body (or path or query) has these fields; on failure
        the message lists what was received instead."""
        entries = self.journal()
        for entry in entries:
            if entry["operation_id"] == operation_id and _matches(entry, match):
                return dict(entry)
        near = [e for e in entries if e["operation_id"] == operation_id] or entries
        lines = [
            f"  {e['method']} {e['path']} ({e['operation_id']}) -> {e['status_code']}: {e['request']['body']}"
            for e in near[-10:]
        ]
        raise AssertionError(
            f"no {operation_id} request with {match}; received instead:\n" + ("\n".join(lines) or "  (nothing)")
        )


def _matches(entry: dict[str, Any], match: dict[str, Any]) -> bool:
    body = entry["request"]["body"] if isinstance(entry["request"]["body"], dict) else {}
    text = f"{entry['path']}?{entry['query']}"
    return all(body.get(key) == value or f"{value}" in text for key, value in match.items())


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verifymock")
    group.addoption(
        "--verifymock-coverage",
        metavar="PATH",
        help="write the outcome coverage report of the session's mock as JSON to PATH",
    )
    group.addoption(
        "--verifymock-require",
        metavar="NAME,...",
        help="fail the session unless each of these outcomes was reached (a name ending in a dot requires every "
        "outcome under it, e.g. telnyx.dtmf.)",
    )


def _required(config: pytest.Config) -> list[str]:
    value = config.getoption("--verifymock-require") or ""
    return [name.strip() for name in value.split(",") if name.strip()]


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    report = config.stash.get(REPORT, None)
    path = config.getoption("--verifymock-coverage")
    if path and report is not None:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
    required = _required(config)
    if required:
        from verifymock.coverage import missing

        absent = missing(report, required) if report is not None else required
        if absent and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        config.stash[ABSENT] = absent


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(REPORT, None)
    absent = config.stash.get(ABSENT, [])
    if report is None and not absent:
        return
    from verifymock.coverage import table

    terminalreporter.section("verifymock outcome coverage")
    if report is not None:
        for line in table(report).splitlines():
            terminalreporter.write_line(line, red=line.startswith("FINDING"), bold=line.startswith("FINDING"))
    if absent:
        terminalreporter.write_line(f"required outcomes not reached: {', '.join(absent)}", red=True, bold=True)


@pytest.fixture(scope="session")
def _verifymock_session(pytestconfig: pytest.Config) -> Iterator[tuple[str, _Receiver]]:
    with warnings.catch_warnings():  # connexion's imports warn about its own dependencies; not the user's concern
        warnings.simplefilter("ignore")
        from verifymock.config import Config
        from verifymock.server import serve_in_thread
        from verifymock.vendors.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID

    receiver = _Receiver(telesign_keys={DEFAULT_CUSTOMER_ID: DEFAULT_API_KEY})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.received.append(Webhook(self.path, headers, raw, receiver.check(headers, raw)))
            self.send_response(200)
            self.send_header("x-verifymock-recorder", "1")  # it only records: coverage does not judge its answers
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        with serve_in_thread(Config(port=0, clock="manual", access_log=False)) as server:
            import httpx

            receiver.public_key = httpx.get(f"{server.url}/_mock/keys").json()["telnyx"]["public_key"]
            yield server.url, receiver
            # read before the server stops (a webhook round the last test left under way may still be going)
            pytestconfig.stash[REPORT] = httpx.get(f"{server.url}/_mock/coverage", timeout=30).json()
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture
def verifymock(_verifymock_session: tuple[str, _Receiver], request: pytest.FixtureRequest) -> Iterator[VerifyMock]:
    """The running mock, reset for this test, which the outcomes reached from here on are credited to."""
    url, receiver = _verifymock_session
    mock = VerifyMock(url, receiver)
    mock._reset(request.node.nodeid[:1000])
    yield mock
    mock._http.close()
