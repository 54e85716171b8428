"""The 3.0 view must accept exactly what the 3.1 original accepts, or refuse to be built."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.json_schema import Draft4RequestValidator
from jsonschema import Draft202012Validator, FormatChecker

from verifymock.convert import convert
from verifymock.errors import SpecError


def doc_with(schema: Any, **components: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "summary": "3.1 only", "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": {
            "/x": {
                "post": {
                    "operationId": "X",
                    "requestBody": {"content": {"application/json": {"schema": schema}}},
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {"schemas": components},
        "webhooks": {"w": {"post": {"responses": {"200": {"description": "ok"}}}}},
    }


def view_schema(view: dict[str, Any]) -> dict[str, Any]:
    schema = view["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": view.get("components", {})}


# (3.1 schema, components, instances to try); every instance must get the same verdict from both validators
PARITY = [
    ({"type": ["string", "null"]}, {}, ["a", None, 1]),
    ({"type": ["string", "null"], "enum": ["a", "b"]}, {}, ["a", None, "c"]),
    ({"type": ["string", "null"], "enum": ["a", None]}, {}, ["a", None, "c"]),
    ({"type": ["string", "integer"]}, {}, ["a", 3, 2.5, None]),
    ({"type": ["string", "integer", "null"], "minLength": 2}, {}, ["a", "ab", 3, None, []]),
    ({"type": "null"}, {}, [None, 0, ""]),
    ({"const": "fixed"}, {}, ["fixed", "other"]),
    ({"type": "integer", "exclusiveMinimum": 3}, {}, [3, 4]),
    ({"type": "number", "exclusiveMaximum": 1.5, "maximum": 2}, {}, [1.4, 1.5, 2]),
    ({"type": "integer", "exclusiveMinimum": 3, "minimum": 5}, {}, [4, 5]),
    ({"type": "string", "examples": ["x"], "$comment": "c", "contentMediaType": "text/plain"}, {}, ["y", 1]),
    ({"$ref": "#/components/schemas/S", "description": "only words"}, {"S": {"type": "string"}}, ["a", 1]),
    ({"$ref": "#/components/schemas/S", "maxLength": 2}, {"S": {"type": "string"}}, ["ab", "abc", 1]),
    (
        {"type": "object", "properties": {"a": True, "b": False}, "additionalProperties": False},
        {},
        [{"a": 1}, {"b": 1}, {"c": 1}, {}],
    ),
    (
        {"anyOf": [{"$ref": "#/components/schemas/S"}, {"type": "null"}]},
        {"S": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
        [{"id": "1"}, None, {}, "x"],
    ),
    ({"type": "array", "items": {"type": ["integer", "null"]}, "minItems": 1}, {}, [[1, None], [], ["a"]]),
]


@pytest.mark.parametrize(("schema", "components", "instances"), PARITY)
def test_convert_view_accepts_exactly_what_the_original_accepts(
    schema: Any, components: dict[str, Any], instances: list[Any]
) -> None:
    original = doc_with(schema, **components)
    view, errors = convert(original, "spec.yaml")
    assert errors == []
    strict = Draft202012Validator({**schema, "components": {"schemas": components}}, format_checker=FormatChecker())
    loose = Draft4RequestValidator(view_schema(view), format_checker=FormatChecker())
    for instance in instances:
        assert strict.is_valid(instance) == loose.is_valid(instance), (schema, instance)


def test_convert_document_drops_only_what_30_cannot_hold() -> None:
    view, errors = convert(doc_with({"type": "string"}), "spec.yaml")
    assert errors == []
    assert view["openapi"] == "3.0.3"
    assert "webhooks" not in view
    assert "summary" not in view["info"]
    assert view["info"]["license"] == {"name": "MIT"}


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("prefixItems", [{"type": "string"}]),
        ("if", {"required": ["a"]}),
        ("dependentRequired", {"a": ["b"]}),
        ("unevaluatedProperties", False),
        ("patternProperties", {"^x": {"type": "string"}}),
        ("$defs", {"a": {"type": "string"}}),
        ("nullable", True),
        ("bogus", 1),
    ],
)
def test_convert_refuses_what_30_cannot_express_naming_file_and_pointer(keyword: str, value: Any) -> None:
    _, errors = convert(doc_with({"type": "object", "properties": {"a": {keyword: value}}}), "my/spec.yaml")
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, SpecError)
    assert error.source == "my/spec.yaml"
    expected = "/paths/~1x/post/requestBody/content/application~1json/schema/properties/a/" + keyword.replace("/", "~1")
    assert error.where == expected
    assert keyword in str(error)


def test_convert_collects_every_problem_at_once() -> None:
    _, errors = convert(
        doc_with({"type": "object", "properties": {"a": {"if": {}}, "b": {"prefixItems": []}}}), "spec.yaml"
    )
    assert [e.where.rsplit("/", 2)[-2] for e in errors] == ["a", "b"]


def test_convert_keeps_30_documents_as_they_are() -> None:
    doc = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}
    view, errors = convert(doc, "spec.yaml")
    assert (view, errors) == (doc, [])


def test_convert_refuses_other_versions() -> None:
    _, errors = convert({"openapi": "2.0"}, "spec.yaml")
    assert errors[0].where == "/openapi"
