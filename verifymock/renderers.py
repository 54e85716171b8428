"""Each vendor's error envelope: one function per vendor turns an `ApiError` into (status, body).

A registry of plain functions with one signature, so a vendor is added by adding one function.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from verifymock.errors import ApiError, Problem
from verifymock.ids import new_hex

Body = dict[str, Any]
Renderer = Callable[[ApiError], tuple[int, Body]]

_STATUS: dict[Problem, int] = {
    Problem.INVALID_JSON: 400,
    Problem.MISSING_BODY: 400,
    Problem.MISSING_PARAMETER: 400,
    Problem.INVALID_PARAMETER: 400,
    Problem.INVALID_PHONE_NUMBER: 400,
    Problem.INVALID_ID: 400,
    Problem.UNAUTHENTICATED: 401,
    Problem.FORBIDDEN: 403,
    Problem.NOT_FOUND: 404,
    Problem.METHOD_NOT_ALLOWED: 405,
    Problem.CONFLICT: 409,
    Problem.BODY_TOO_LARGE: 413,
    Problem.UNSUPPORTED_MEDIA_TYPE: 415,
    Problem.UNPROCESSABLE: 422,
    Problem.HEADERS_TOO_LARGE: 431,
    Problem.INTERNAL: 500,
}

_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_of(error: ApiError) -> int:
    return error.status or _STATUS[error.problem]


# Telnyx: the v2 error catalogue (codes are strings on the wire).
_TELNYX: dict[Problem, tuple[str, str]] = {
    Problem.INVALID_JSON: ("10023", "Invalid JSON"),
    Problem.MISSING_BODY: ("10015", "Bad Request"),
    Problem.MISSING_PARAMETER: ("10004", "Missing required parameter"),
    Problem.INVALID_PARAMETER: ("10015", "Bad Request"),
    Problem.INVALID_PHONE_NUMBER: ("10016", "Phone number must be in +E.164 format"),
    Problem.INVALID_ID: ("10006", "Invalid ID"),
    Problem.UNAUTHENTICATED: ("10009", "Authentication failed"),
    Problem.FORBIDDEN: ("10010", "Authorization failed"),
    Problem.NOT_FOUND: ("10005", "Resource not found"),
    Problem.METHOD_NOT_ALLOWED: ("10015", "Bad Request"),
    Problem.CONFLICT: ("10015", "Bad Request"),
    Problem.BODY_TOO_LARGE: ("10015", "Bad Request"),
    Problem.UNSUPPORTED_MEDIA_TYPE: ("10014", "Unsupported Media Type"),
    Problem.UNPROCESSABLE: ("10015", "Bad Request"),
    Problem.HEADERS_TOO_LARGE: ("10015", "Bad Request"),
    Problem.INTERNAL: ("10007", "Unexpected error"),
}


def render_telnyx(error: ApiError) -> tuple[int, Body]:
    code, title = _TELNYX[error.problem]
    code = str(error.code or code)
    entry: Body = {
        "code": code,
        "title": error.title or title,
        "detail": error.detail,
        "meta": {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"},
    }
    source = {k: v for k, v in (("pointer", error.pointer), ("parameter", error.parameter)) if v is not None}
    if source:
        entry["source"] = source
    return status_of(error), {"errors": [entry]}


# TeleSign: negative codes, and a status block saying the transaction was not attempted.
_TELESIGN: dict[Problem, int] = {
    Problem.INVALID_JSON: -40006,
    Problem.MISSING_BODY: -40007,
    Problem.MISSING_PARAMETER: -10001,
    Problem.INVALID_PARAMETER: -10001,
    Problem.INVALID_PHONE_NUMBER: -10001,
    Problem.INVALID_ID: -10001,
    Problem.UNAUTHENTICATED: -30004,
    Problem.FORBIDDEN: -30000,
    Problem.NOT_FOUND: -40004,
    Problem.METHOD_NOT_ALLOWED: -40005,
    Problem.CONFLICT: -40006,
    Problem.BODY_TOO_LARGE: -40006,
    Problem.UNSUPPORTED_MEDIA_TYPE: -40006,
    Problem.UNPROCESSABLE: -40006,
    Problem.HEADERS_TOO_LARGE: -40006,
    Problem.INTERNAL: -90001,
}


def telesign_timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _telesign_code(error: ApiError) -> int:
    try:
        code = int(error.code) if error.code is not None else _TELESIGN[error.problem]
    except ValueError:
        code = 0
    return code if code < 0 else _TELESIGN[error.problem]  # a scenario's code for another vendor does not apply


def render_telesign(error: ApiError) -> tuple[int, Body]:
    body: Body = {
        "reference_id": error.extra.get("reference_id") or new_hex(16),
        "sub_resource": error.extra.get("sub_resource", "call"),
        "errors": [{"code": _telesign_code(error), "description": error.detail}],
        "status": {"code": 500, "description": "Transaction not attempted", "updated_on": telesign_timestamp()},
    }
    status = status_of(error)
    if status == 401:
        body["status"].update(code=501, description="Not authorized")
    return status, body


def render_plain(error: ApiError) -> tuple[int, Body]:
    """CM.com documents no error body, and a generic spec none we know: a small, plain JSON error."""
    status = status_of(error)
    body: Body = {"status": status, "title": error.title or _TITLES.get(status, "Error"), "detail": error.detail}
    if error.code is not None:
        body["code"] = str(error.code)
    if error.pointer is not None:
        body["pointer"] = error.pointer
    if error.parameter is not None:
        body["parameter"] = error.parameter
    return status, body


RENDERERS: dict[str, Renderer] = {
    "telnyx": render_telnyx,
    "telesign": render_telesign,
    "cm": render_plain,
    "mock": render_plain,
    "generic": render_plain,
}


def renderer_for(vendor: str) -> Renderer:
    return RENDERERS.get(vendor, render_plain)
