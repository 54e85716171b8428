"""Any OpenAPI document dropped into a specs folder becomes a validating mock of itself."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from starlette.testclient import TestClient

from tests.helpers import LOCAL, write_spec
from verifymock.app import create_app
from verifymock.config import Config
from verifymock.errors import ConfigErrors

WIDGETS_31: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Widgets", "version": "1"},
    "servers": [{"url": "https://api.example.com/widgets/v1"}],
    "paths": {
        "/widgets": {
            "get": {
                "operationId": "listWidgets",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["items", "next"],
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "minItems": 2,
                                            "items": {"$ref": "#/components/schemas/Widget"},
                                        },
                                        "next": {"type": ["string", "null"], "format": "uri"},
                                    },
                                }
                            }
                        },
                    }
                },
            },
            "post": {
                "operationId": "createWidget",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Widget"}}},
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {"application/json": {"example": {"id": "W-1234", "sku": "AB-12", "weight": 2}}},
                    }
                },
            },
        },
        "/widgets/{id}": {
            "delete": {
                "operationId": "deleteWidget",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "gone"}},
            }
        },
    },
    "components": {
        "schemas": {
            "Widget": {
                "type": "object",
                "required": ["id", "sku", "weight"],
                "properties": {
                    "id": {"type": "string", "pattern": "^W-[0-9]{4}$"},
                    "sku": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{2}$"},
                    "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                    "colour": {"enum": ["red", "green", None]},
                    "tags": {"type": "array", "items": {"type": "string", "minLength": 3}},
                    "made": {"type": "string", "format": "date-time"},
                },
            }
        }
    },
}


def oracle_accepts(doc: dict[str, Any], method: str, path: str, response: Any) -> None:
    """openapi-core, independent of our own self-check, validates what was sent."""
    request = MockRequest("https://api.example.com", method, path)
    openapi_response = MockResponse(
        response.content, status_code=response.status_code, content_type=response.headers.get("content-type", "")
    )
    OpenAPI.from_dict(doc).validate_response(request, openapi_response)


@pytest.fixture
def widgets(user_specs: Path) -> TestClient:
    write_spec(user_specs, "widgets", WIDGETS_31)
    return TestClient(create_app(Config(specs=[user_specs])), base_url=LOCAL)


def test_any_spec_answers_every_operation_from_its_schema(widgets: TestClient) -> None:
    listed = widgets.get("/widgets/v1/widgets")
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 2
    oracle_accepts(WIDGETS_31, "GET", "/widgets/v1/widgets", listed)

    body = {"id": "W-0001", "sku": "XY-99", "weight": 1.5}
    created = widgets.post("/widgets/v1/widgets", json=body)
    assert created.status_code == 201
    assert created.json() == {"id": "W-1234", "sku": "AB-12", "weight": 2}  # the spec's own example
    oracle_accepts(WIDGETS_31, "POST", "/widgets/v1/widgets", created)

    deleted = widgets.delete("/widgets/v1/widgets/W-0001")
    assert (deleted.status_code, deleted.content) == (204, b"")


def test_any_spec_validates_requests_with_31_semantics(widgets: TestClient) -> None:
    for bad in (
        {"id": "W-1", "sku": "XY-99", "weight": 1},  # pattern
        {"id": "W-0001", "sku": "XY-99", "weight": 0},  # exclusiveMinimum
        {"id": "W-0001", "sku": "XY-99", "weight": 1, "colour": "blue"},  # enum with null
        {"id": "W-0001", "sku": "XY-99", "weight": 1, "made": "yesterday"},  # format
    ):
        response = widgets.post("/widgets/v1/widgets", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["status"] == 400
    ok = {"id": "W-0001", "sku": "XY-99", "weight": 1, "colour": None, "made": "2026-01-01T10:00:00Z"}
    assert widgets.post("/widgets/v1/widgets", json=ok).status_code == 201


def test_any_spec_that_30_cannot_express_fails_at_start_up(user_specs: Path) -> None:
    doc = {**WIDGETS_31, "components": {"schemas": {"Widget": {"type": "object", "dependentRequired": {"a": ["b"]}}}}}
    path = write_spec(user_specs, "widgets", doc)
    with pytest.raises(ConfigErrors) as caught:
        create_app(Config(specs=[user_specs]))
    [error] = caught.value.errors
    assert error.source == str(path)
    assert error.where == "/components/schemas/Widget/dependentRequired"


def test_any_spec_replaces_a_bundled_one_of_the_same_name(user_specs: Path) -> None:
    write_spec(user_specs, "telnyx_verify", WIDGETS_31)
    with TestClient(create_app(Config(specs=[user_specs])), base_url=LOCAL) as client:
        assert client.get("/widgets/v1/widgets").status_code == 200
        assert client.post("/v2/verifications/call", json={}).status_code == 404


def test_any_spec_nonconforming_handler_is_a_500_naming_the_pointer(
    user_specs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_spec(user_specs, "widgets", WIDGETS_31)
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "widgets.py").write_text(
        "def list_widgets():\n    return {'items': [{'id': 'nope', 'sku': 'AB-12', 'weight': 1}] * 2, 'next': None}\n"
    )
    with (
        TestClient(create_app(Config(specs=[user_specs], handlers=[handlers])), base_url=LOCAL) as client,
        caplog.at_level(logging.ERROR, logger="verifymock"),
    ):
        response = client.get("/widgets/v1/widgets")
    assert response.status_code == 500
    assert "/items/0/id" in response.json()["detail"]
    assert any(
        "/items/0/id" in record.getMessage() and "listWidgets" in record.getMessage() for record in caplog.records
    )

    with TestClient(
        create_app(Config(specs=[user_specs], handlers=[handlers], self_check=False)), base_url=LOCAL
    ) as client:
        assert client.get("/widgets/v1/widgets").status_code == 200


def test_any_spec_30_documents_are_served_too(user_specs: Path) -> None:
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "Old", "version": "1"},
        "servers": [{"url": "/old"}],
        "paths": {
            "/thing": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["name"],
                                        "properties": {"name": {"type": "string", "nullable": True, "minLength": 2}},
                                    }
                                }
                            },
                        }
                    }
                }
            }
        },
    }
    write_spec(user_specs, "old", doc)
    with TestClient(create_app(Config(specs=[user_specs])), base_url=LOCAL) as client:
        response = client.get("/old/thing")
    assert response.status_code == 200
    assert len(response.json()["name"]) >= 2
    journal_op = "get_thing"
    with TestClient(create_app(Config(specs=[user_specs])), base_url=LOCAL) as client:
        client.get("/old/thing")
        assert client.get("/_mock/journal").json()["data"][0]["operation_id"] == journal_op
