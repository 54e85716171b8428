"""The official Telnyx Node SDK (npm `telnyx`) against the real server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from verifymock.config import Config
from verifymock.server import Running, serve_in_thread

HERE = Path(__file__).parent / "node"
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "node"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    """npm `telnyx` 7.x installed into a cache folder of the checkout (the test set-up, not a requirement)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed on this machine; the Node SDK test needs them")
    if not (NPM_CACHE / "node_modules" / "telnyx").is_dir():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(NPM_CACHE), "telnyx@7"],
            check=True,
            timeout=300,
        )
    return NPM_CACHE / "node_modules"


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with serve_in_thread(Config(port=0, clock="manual")) as running:
        yield running


def test_node_sdk_call_verification_code_check_and_webhook_unwrap(node_sdk: Path, server: Running) -> None:
    script = NPM_CACHE / "telnyx_flow.mjs"  # beside node_modules, so `import 'telnyx'` resolves
    shutil.copy(HERE / "telnyx_flow.mjs", script)
    result = subprocess.run(["node", str(script), server.url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "type": "call",
        "response_code": "accepted",
        "status": "accepted",
        "dtmf_type": "dtmf_confirm",
        "event_type": "verification.complete",
        "event_status": "accepted",
        "tampered": "rejected",
    }
