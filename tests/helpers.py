"""Shared by the test modules: where things are, and small builders."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
TELNYX_AUTH = {"Authorization": "Bearer test-key"}
LOCAL = "http://127.0.0.1"  # the in-process client's base URL: without a token the control API answers only loopback
PROFILE_ID = "12ade33a-21c0-473b-b055-b3c836e1c292"


REQUIRE_SEEDS = "VERIFYMOCK_REQUIRE_SEEDS"  # set (as .ci/run does) to fail, not skip, without the seeds


def seed_spec(number: str) -> str:
    """The OpenAPI document embedded in one of the vendor seed documents beside the repository. A clone elsewhere
    has none: the tests that need one skip, saying so, unless REQUIRE_SEEDS is set."""
    candidates = sorted((REPO.parent / "shared" / "seeds").glob(f"{number}_*.txt"))
    if not candidates:
        reason = f"seed {number} not found: these tests read ../shared/seeds/ beside the checkout"
        if os.environ.get(REQUIRE_SEEDS):
            pytest.fail(f"{reason} ({REQUIRE_SEEDS} is set)")
        pytest.skip(reason)
    text = candidates[0].read_text(encoding="utf-8")
    start = text.index("````yaml")
    start = text.index("\n", start) + 1
    return text[start : text.index("````", start)]


def write_spec(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


PROFILE_BODY: dict[str, Any] = {
    "name": "Test Profile",
    "language": "en-US",
    "sms": {"app_name": "Acme"},
    "call": {"app_name": "Acme"},
    "flashcall": {},
    "whatsapp": {"app_name": "Acme"},
    "dtmf_confirm": {"default_timeout_secs": 300},
}


def tollfree_body(**fields: Any) -> dict[str, Any]:
    """A toll-free verification request as the API takes it (camelCase), with these fields changed."""
    return {
        "businessName": "Acme Corp",
        "corporateWebsite": "https://acme.example",
        "businessAddr1": "1 Main St",
        "businessCity": "Chicago",
        "businessState": "Illinois",
        "businessZip": "60601",
        "businessContactFirstName": "Ada",
        "businessContactLastName": "Lovelace",
        "businessContactEmail": "ada@acme.example",
        "businessContactPhone": "+13125550100",
        "messageVolume": "10,000",
        "phoneNumbers": [{"phoneNumber": "+18773554398"}],
        "useCase": "2FA",
        "useCaseSummary": "Login codes",
        "productionMessageContent": "Your code is 123456",
        "optInWorkflow": "A box on sign-up",
        "optInWorkflowImageURLs": [{"url": "https://acme.example/optin.png"}],
        "additionalInformation": "None",
        **fields,
    }


def make_profile(client: Any, **fields: Any) -> str:
    """A verify profile with every channel, through the API; returns its id."""
    response = client.post("/v2/verify_profiles", json={**PROFILE_BODY, **fields}, headers=TELNYX_AUTH)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


# Credentials the end-to-end server knows besides the defaults.
TELESIGN_CUSTOMER = "11111111-2222-3333-4444-555555555555"
TELESIGN_KEY = "YSBzZWNyZXQgb25seSB0aGUgdGVzdHMga25vdw=="  # base64 of "a secret only the tests know"
CM_TOKEN = "7e4c1a2b-0c0d-4e5f-8a9b-0123456789ab"


VERIFYMOCK = [sys.executable, "-m", "verifymock"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_wheel(folder: Path) -> Path:
    """The project's wheel, built into `folder` without its dependencies."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(folder), str(REPO)],
        check=True,
        timeout=300,
    )
    [wheel] = folder.glob("verifymock-*.whl")
    return wheel


@contextmanager
def running(
    options: list[str], *, cwd: Path, env: dict[str, str] | None = None, command: list[str] = VERIFYMOCK
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`command serve` (this checkout's verifymock unless told otherwise) on a free port, once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "serve", *options, "--port", str(port)],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_mock/health", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.communicate(timeout=5)[0] if process.poll() is not None else ""
                    pytest.fail(f"verifymock did not start: {output}")
                time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
