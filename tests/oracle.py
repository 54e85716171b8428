"""openapi-core as an independent oracle: what the mock sent, checked against the OpenAPI 3.1 originals."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse


def assert_journal_conforms(openapi: OpenAPI, host: str, entries: list[dict[str, Any]]) -> None:
    """Every journal entry's response, for its request, validates against the spec."""
    for entry in entries:
        headers = entry["request"]["headers"]
        body = entry["request"]["body"]
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else None
        request = MockRequest(
            host,
            entry["method"],
            entry["path"],
            args=dict(parse_qsl(entry["query"], keep_blank_values=True)),
            headers=headers,
            data=data,
            content_type=headers.get("content-type") or "application/json",
        )
        sent = entry["response"]["body"]
        response = MockResponse(
            json.dumps(sent).encode() if sent is not None else b"",
            status_code=entry["status_code"],
            content_type="application/json" if sent is not None else "",
        )
        openapi.validate_response(request, response)


def assert_webhooks_conform(openapi: OpenAPI, webhook: str, bodies: list[bytes]) -> None:
    """Every body validates as the request of the spec's named webhook."""

    class Webhook(MockRequest):
        name = webhook

    for body in bodies:
        openapi.validate_request(Webhook("https://example.com", "post", "/", data=body))
