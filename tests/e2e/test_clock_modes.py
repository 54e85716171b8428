"""A scaled clock runs the same call without anyone advancing it, just faster than real time."""

from __future__ import annotations

import time

import httpx

from tests.helpers import PROFILE_BODY, TELNYX_AUTH
from verifymock.config import Config
from verifymock.server import serve_in_thread


def test_clock_scaled_server_completes_a_dtmf_confirm_by_itself() -> None:
    with serve_in_thread(Config(port=0, clock="scaled:200")) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/_mock/clock").json()["mode"] == "scaled:200"
        profile = client.post("/v2/verify_profiles", json=PROFILE_BODY, headers=TELNYX_AUTH).json()["data"]
        verification = client.post(
            "/v2/verifications/dtmf_confirm",
            json={"phone_number": "+13035551234", "verify_profile_id": profile["id"]},
            headers=TELNYX_AUTH,
        ).json()["data"]
        status = "pending"
        deadline = time.monotonic() + 20  # 5 clock seconds are 25 ms here; the bound only stops a broken run
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.01)
            status = client.get(f"/v2/verifications/{verification['id']}", headers=TELNYX_AUTH).json()["data"]["status"]
        assert status == "accepted"
