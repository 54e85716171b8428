"""Bodies built from schemas must satisfy those schemas."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from verifymock.generate import example_body, instance_of

SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "exclusiveMinimum": 0, "maximum": 10},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
    {"type": "integer", "minimum": 5, "exclusiveMinimum": 7},
    {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
    {"type": "string", "minLength": 12, "format": "email"},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "date-time"},
    {"type": ["null", "string"], "maxLength": 3},
    {"type": "array", "minItems": 3, "items": {"type": "integer"}},
    {"type": "object", "required": ["a"], "properties": {"a": {"const": "x"}, "b": {"enum": [1, 2]}}},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]},
    {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_generate_instance_satisfies_its_schema(schema: dict[str, Any]) -> None:
    instance = instance_of({}, schema)
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(instance)


def test_generate_prefers_the_authors_examples() -> None:
    doc = {"components": {"examples": {"E": {"value": {"from": "component"}}}}}
    assert example_body(doc, {"example": {"from": "media"}}) == {"from": "media"}
    assert example_body(doc, {"examples": {"one": {"$ref": "#/components/examples/E"}}}) == {"from": "component"}
    schema = {"type": "object", "properties": {"name": {"type": "string", "examples": ["Ada"]}}}
    assert example_body(doc, {"schema": schema}) == {"name": "Ada"}


def test_generate_follows_references() -> None:
    doc = {"components": {"schemas": {"N": {"type": "integer", "minimum": 7}}}}
    assert instance_of(doc, {"$ref": "#/components/schemas/N"}) == 7
