"""Telnyx's own published document (seed 004, OpenAPI 3.1) dropped into a specs folder serves the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import telnyx

from tests.helpers import PROFILE_ID, seed_spec
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder: Path = tmp_path_factory.mktemp("seed-specs")
    # its own name, so no bundled handler module claims it: every answer comes from the document itself
    (folder / "telnyx_seed_004.yaml").write_text(seed_spec("004"), encoding="utf-8")
    with serve_in_thread(Config(port=0, specs=[folder])) as running:
        yield running


@pytest.fixture
def sdk(seed_server: Running) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key="KEY-any", base_url=f"{seed_server.url}/v2", max_retries=0)


def test_seed_spec_serves_trigger_call_to_the_official_sdk(sdk: telnyx.Telnyx) -> None:
    created = sdk.verifications.trigger_call(phone_number="+13035551234", verify_profile_id=PROFILE_ID)
    verification = created.data
    assert verification is not None
    # every field comes from the seed document's own examples
    assert verification.type in ("sms", "call", "flashcall", "whatsapp")
    assert verification.status in ("pending", "accepted", "invalid", "expired", "error")
    assert verification.phone_number == "+13035551234"
    assert verification.record_type == "verification"


def test_seed_spec_rejects_a_body_without_phone_number_in_telnyx_envelope(sdk: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.BadRequestError) as caught:
        sdk.post("/verifications/call", body={"verify_profile_id": PROFILE_ID}, cast_to=object)
    body = caught.value.body
    assert isinstance(body, dict)
    [error] = body["errors"]
    assert error["code"] == "10004"
    assert error["title"] == "Missing required parameter"
    assert error["source"] == {"pointer": "/phone_number"}


def test_seed_spec_refuses_a_missing_key_with_10009(seed_server: Running) -> None:
    client = telnyx.Telnyx(api_key="x", base_url=f"{seed_server.url}/v2", max_retries=0)
    with pytest.raises(telnyx.AuthenticationError) as caught:
        client.post(
            "/verifications/call",
            body={"phone_number": "+13035551234", "verify_profile_id": PROFILE_ID},
            cast_to=object,
            options={"headers": {"Authorization": telnyx.Omit()}},
        )
    assert caught.value.body["errors"][0]["code"] == "10009"  # type: ignore[index]
