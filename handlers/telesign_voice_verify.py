"""TeleSign Voice Verify: thin handlers over the engine's TeleSign module."""

from __future__ import annotations

from typing import Any

from verifymock.engine import engine

Body = dict[str, Any]


async def send_voice_verify_code(body: Body) -> Body:
    mock = engine()
    scenario = await mock.scenario_for("+" + body["phone_number"])
    customer_id = mock.request().principal or ""
    return mock.telesign.send_call(customer_id, body, scenario).to_json()


async def get_voice_verify_status(reference_id: str, verify_code: str | None = None) -> Body:
    await engine().fetch("transaction", reference_id)
    return engine().telesign.status(reference_id, verify_code)


async def report_voice_verify_completion(reference_id: str) -> Body:
    await engine().fetch("transaction", reference_id)
    return engine().telesign.completion(reference_id)
