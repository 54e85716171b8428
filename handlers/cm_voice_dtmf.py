"""CM.com Voice API request-DTMF: a thin handler over the engine's CM module."""

from __future__ import annotations

from typing import Any

from verifymock.engine import engine


async def send_dtmf_call(body: dict[str, Any]) -> Any:
    mock = engine()
    calls = mock.cm.request_dtmf(body, mock.select_scenario)
    for _, scenario in calls:
        await mock.apply_overrides(scenario)
    return mock.cm.queued(body, [mock.cm.place(call, scenario) for call, scenario in calls])
