"""The control API: the mock's own health, reset and journal."""

from __future__ import annotations

from typing import Any

from verifymock.engine import engine
from verifymock.reply import Reply

Body = dict[str, Any]


def get_health() -> Body:
    return {"status": "ok"}


def reset_mock() -> Reply:
    engine().reset()
    return Reply(None, 204)


def list_journal(operation_id: str | None = None, vendor: str | None = None, phone_number: str | None = None) -> Body:
    entries = engine().journal.find(operation_id=operation_id, vendor=vendor, phone_number=phone_number)
    return {"data": [e.to_json() for e in entries]}


def list_specs() -> Body:
    return {"data": engine().describe()}
