"""Telnyx toll-free verification: thin handlers over the engine's toll-free module."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from verifymock.engine import engine
from verifymock.errors import ApiError, Problem

Body = dict[str, Any]
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}:)60")


def _moment(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 date-time, or a date: its first instant, or (for an inclusive end) its last."""
    if value is None:
        return None
    try:  # RFC 3339 allows a lower-case t and z, and a leap second, which Python's parser does not
        moment = datetime.fromisoformat(_LEAP_SECOND.sub(r"\g<1>59", value.upper()))
    except ValueError as exc:
        raise ApiError(
            Problem.INVALID_PARAMETER, f"'{name}' is not an ISO 8601 date or date-time.", parameter=name
        ) from exc
    if end and _DATE_ONLY.fullmatch(value):
        moment += timedelta(days=1, microseconds=-1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_verification_requests(
    page: int,
    page_size: int,
    date_start: str | None = None,
    date_end: str | None = None,
    status: str | None = None,
    phone_number: str | None = None,
    business_name: str | None = None,
) -> Body:
    filters = {
        "date_start": _moment(date_start, "date_start"),
        "date_end": _moment(date_end, "date_end", end=True),
        "status": status,
        "phone_number": phone_number,
        "business_name": business_name,
    }
    return engine().tollfree.list(page, page_size, filters)


async def submit_verification_request(body: Body) -> Body:
    mock = engine()
    numbers = [entry["phoneNumber"] for entry in body["phoneNumbers"]]
    scenario = mock.select_scenario(*numbers, business_name=body["businessName"])
    await mock.apply_overrides(scenario)
    return mock.tollfree.submit(body, scenario)


def get_verification_request(id: str) -> Body:
    return engine().tollfree.get(id).to_status()


def update_verification_request(id: str, body: Body) -> Body:
    return engine().tollfree.update(id, body)


def delete_verification_request(id: str) -> None:
    engine().tollfree.delete(id)


def get_verification_status_history(id: str, page_number: int, page_size: int) -> Body:
    return engine().tollfree.history(id, page_number, page_size)
