"""The mock checks itself: every body it sends is validated against the original spec before it leaves.

Validation runs on the original document (OpenAPI 3.1 semantics for a 3.1 spec, 3.0 for a 3.0 one), never on
connexion's 3.0 view, so a mistake in that view cannot hide a non-conforming response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jsonschema_rs
from connexion.json_schema import Draft4ResponseValidator
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4, DRAFT202012

from verifymock.convert import pointer
from verifymock.generate import resolve
from verifymock.specs import Operation, Spec
from verifymock.validation import FORMATS as _FORMATS


def compiled_at(doc: dict[str, Any], schema_pointer: str) -> Any:
    """A jsonschema-rs validator for the schema at a pointer into a 3.1 document. The whole document is the root,
    so its #/components references resolve; its other keys are not JSON Schema keywords and are ignored."""
    return jsonschema_rs.Draft202012Validator(
        {**doc, "$ref": "#" + quote(schema_pointer, safe="/~")}, validate_formats=True
    )


@dataclass(frozen=True)
class Nonconformity:
    """One way a response differs from its spec: where in the body, and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def response_key(responses: dict[str, Any], status: int) -> str | None:
    """The `responses` key that documents `status`: exact code, then its range (4XX), then default."""
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return key
    return None


def media_key(content: dict[str, Any], media_type: str) -> str | None:
    if media_type in content:
        return media_type
    main = media_type.split("/")[0]
    for key in (f"{main}/*", "*/*"):
        if key in content:
            return key
    if media_type.endswith("json"):
        return next((k for k in content if k.endswith("json")), None)
    return None


class ResponseChecker:
    """Validators for one spec's responses, compiled on first use and kept."""

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._uri = f"urn:verifymock:spec:{spec.name}"
        is31 = spec.version.startswith("3.1")
        # 3.1 schemas are JSON Schema 2020-12; 3.0 ones are Draft 4 plus `nullable` and `writeOnly`
        self._validator_cls: Any = Draft202012Validator if is31 else Draft4ResponseValidator
        specification = DRAFT202012 if is31 else DRAFT4
        self._registry: Registry[Any] = Registry().with_resource(
            self._uri, specification.create_resource(spec.original)
        )
        self._validators: dict[str, Any] = {}
        self._plans: dict[tuple[str, int, str | None], tuple[str, str]] = {}
        self._fast = is31  # OpenAPI 3.1 schemas are plain JSON Schema 2020-12, which jsonschema-rs checks natively

    def check(self, operation: Operation, status: int, media_type: str | None, body: Any) -> list[Nonconformity]:
        key = (operation.pointer, status, media_type)
        plan = self._plans.get(key)
        if plan is None:  # what the spec says of this status and media type, worked out once
            plan = self._plans[key] = self._plan(operation, status, media_type)
        kind, detail = plan
        if kind == "no content":
            return [Nonconformity("", detail)] if body not in (None, b"", "") else []
        if kind != "undocumented" and body is None:
            return [Nonconformity("", f"status {status} of {operation.operation_id} documents a body; none was sent")]
        if kind == "schema":
            return self._errors(detail, body)
        return [] if kind == "any body" else [Nonconformity("", detail)]

    def _plan(self, operation: Operation, status: int, media_type: str | None) -> tuple[str, str]:
        """(kind, detail): "undocumented" or "media" (a nonconformity whatever the body), "no content" (a body is
        one), "any body" (a body without a schema) or "schema" (the pointer of the schema to check it against)."""
        responses = operation.definition.get("responses") or {}
        key = response_key(responses, status)
        if key is None:
            return "undocumented", f"status {status} is not documented for {operation.operation_id}"
        response = resolve(self._spec.original, responses[key])
        content = response.get("content") or {}
        if not content:
            return "no content", f"status {status} of {operation.operation_id} documents no body"
        media = media_key(content, media_type or "application/json")
        if media is None:
            return "media", f"media type {media_type} is not documented for status {status}"
        if "schema" not in content[media]:
            return "any body", ""
        where = operation.pointer + pointer("responses", key) if "$ref" not in responses[key] else None
        schema_pointer = (
            f"{where}{pointer('content', media, 'schema')}"
            if where
            else f"{responses[key]['$ref'][1:]}{pointer('content', media, 'schema')}"
        )
        return "schema", schema_pointer

    def check_schema(self, schema_pointer: str, instance: Any) -> list[Nonconformity]:
        """Validate any instance against the schema at a pointer into the spec (webhook payloads, examples)."""
        return self._errors(schema_pointer, instance)

    def _errors(self, schema_pointer: str, instance: Any) -> list[Nonconformity]:
        validator = self._validator(schema_pointer)
        if self._fast:
            if validator.is_valid(instance):  # the common case, without building an iterator of errors
                return []
            return [Nonconformity(pointer(*e.instance_path), e.message) for e in validator.iter_errors(instance)]
        return [Nonconformity(pointer(*e.absolute_path), e.message) for e in validator.iter_errors(instance)]

    def _validator(self, schema_pointer: str) -> Any:
        validator = self._validators.get(schema_pointer)
        if validator is None and self._fast:  # compiled once, then about a microsecond per response
            validator = self._validators[schema_pointer] = compiled_at(self._spec.original, schema_pointer)
        if validator is None:
            validator = self._validators[schema_pointer] = self._validator_cls(
                {"$ref": f"{self._uri}#{schema_pointer}"},
                registry=self._registry,
                format_checker=_FORMATS,
            )
        return validator
