"""A faithful OpenAPI 3.0 view of an OpenAPI 3.1 document, for connexion.

connexion 3.3 validates documents against the 3.0 schema and requests with JSON Schema Draft 4, so it refuses
3.1. The view rewrites what 3.0 can say another way (type arrays, `const`, `examples`, numeric
`exclusiveMinimum`, `$ref` with siblings, boolean schemas) and refuses what it cannot: every such keyword is an
error naming the file and JSON pointer, because dropping it would silently weaken a check. The 3.1 original is
kept for openapi-core, schemathesis and the response self-check.
"""

from __future__ import annotations

import copy
from typing import Any

from verifymock.errors import SpecError

JSON = Any

_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords with the same meaning in JSON Schema 2020-12 (as OpenAPI 3.1 uses it) and in OpenAPI 3.0.
_SAME = frozenset(
    {
        "title",
        "description",
        "default",
        "enum",
        "format",
        "pattern",
        "multipleOf",
        "maximum",
        "minimum",
        "maxLength",
        "minLength",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "readOnly",
        "writeOnly",
        "deprecated",
        "example",
        "discriminator",
        "xml",
        "externalDocs",
    }
)
# Annotations only: 2020-12 does not assert them, so leaving them out of the view loses no check.
_ANNOTATIONS = frozenset({"$comment", "contentMediaType", "contentEncoding", "contentSchema", "$schema"})
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
# Allowed beside `$ref` without turning it into `allOf`: they describe, they do not constrain.
_REF_SIBLING_ANNOTATIONS = frozenset(
    {"description", "summary", "title", "example", "examples", "deprecated", "$comment"}
)

_UNEXPRESSIBLE = {
    "prefixItems": "tuple validation has no OpenAPI 3.0 form",
    "if": "conditional schemas have no OpenAPI 3.0 form",
    "then": "conditional schemas have no OpenAPI 3.0 form",
    "else": "conditional schemas have no OpenAPI 3.0 form",
    "dependentRequired": "OpenAPI 3.0 cannot make one property require another",
    "dependentSchemas": "OpenAPI 3.0 cannot make one property require a schema",
    "unevaluatedProperties": "OpenAPI 3.0 has no unevaluatedProperties; use additionalProperties",
    "unevaluatedItems": "OpenAPI 3.0 has no unevaluatedItems",
    "contains": "OpenAPI 3.0 has no contains",
    "minContains": "OpenAPI 3.0 has no minContains",
    "maxContains": "OpenAPI 3.0 has no maxContains",
    "propertyNames": "OpenAPI 3.0 has no propertyNames",
    "patternProperties": "OpenAPI 3.0 has no patternProperties",
    "$defs": "move these schemas to #/components/schemas and refer to them there",
    "$id": "OpenAPI 3.0 schemas cannot set their own base URI",
    "$anchor": "refer to the schema by JSON pointer instead of an anchor",
    "$dynamicRef": "OpenAPI 3.0 has no dynamic references",
    "$dynamicAnchor": "OpenAPI 3.0 has no dynamic references",
    "$vocabulary": "OpenAPI 3.0 has no vocabularies",
}


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from path segments."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class _Converter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[SpecError] = []

    def fail(self, where: str, problem: str, fix: str = "") -> None:
        self.errors.append(SpecError(self.source, where or "/", problem, fix))

    # -- documents and the objects that hold schemas -------------------------------------------------------------

    def document(self, doc: dict[str, JSON]) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for key, value in doc.items():
            if key == "openapi":
                out[key] = "3.0.3"
            elif key in ("webhooks", "jsonSchemaDialect"):
                continue  # documentation only: nothing is routed or validated from them
            elif key == "info":
                out[key] = {k: v for k, v in value.items() if k != "summary"}
                if isinstance(value.get("license"), dict):
                    out[key]["license"] = {k: v for k, v in value["license"].items() if k != "identifier"}
            elif key == "paths":
                out[key] = {p: self.path_item(item, pointer("paths", p)) for p, item in (value or {}).items()}
            elif key == "components":
                out[key] = self.components(value, "/components")
            else:
                out[key] = copy.deepcopy(value)
        out.setdefault("paths", {})
        return out

    def components(self, comps: dict[str, JSON], at: str) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for kind, entries in comps.items():
            here = f"{at}/{kind}"
            if kind == "schemas":
                out[kind] = {n: self.schema(s, f"{here}{pointer(n)}") for n, s in entries.items()}
            elif kind == "parameters":
                out[kind] = {n: self.parameter(p, f"{here}{pointer(n)}") for n, p in entries.items()}
            elif kind == "responses":
                out[kind] = {n: self.response(r, f"{here}{pointer(n)}") for n, r in entries.items()}
            elif kind == "requestBodies":
                out[kind] = {n: self.request_body(b, f"{here}{pointer(n)}") for n, b in entries.items()}
            elif kind == "headers":
                out[kind] = {n: self.parameter(h, f"{here}{pointer(n)}") for n, h in entries.items()}
            elif kind == "securitySchemes":
                for n, s in entries.items():
                    if s.get("type") == "mutualTLS":
                        self.fail(f"{here}{pointer(n)}", "mutualTLS security has no OpenAPI 3.0 form")
                out[kind] = copy.deepcopy(entries)
            elif kind == "pathItems":
                if entries:
                    self.fail(here, "components/pathItems has no OpenAPI 3.0 form", "inline the path items under paths")
            elif kind == "callbacks":
                out[kind] = {n: self.callback(c, f"{here}{pointer(n)}") for n, c in entries.items()}
            else:
                out[kind] = copy.deepcopy(entries)
        return out

    def reference(self, obj: dict[str, JSON]) -> dict[str, JSON]:
        # 3.1 lets `summary` and `description` sit beside a $ref to a component; 3.0 does not.
        return {"$ref": obj["$ref"]}

    def path_item(self, item: dict[str, JSON], at: str) -> dict[str, JSON]:
        if "$ref" in item:
            return self.reference(item)
        out: dict[str, JSON] = {}
        for key, value in item.items():
            if key in _OPERATIONS:
                out[key] = self.operation(value, f"{at}/{key}")
            elif key == "parameters":
                out[key] = [self.parameter(p, f"{at}/parameters/{i}") for i, p in enumerate(value)]
            else:
                out[key] = copy.deepcopy(value)
        return out

    def operation(self, op: dict[str, JSON], at: str) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for key, value in op.items():
            if key == "parameters":
                out[key] = [self.parameter(p, f"{at}/parameters/{i}") for i, p in enumerate(value)]
            elif key == "requestBody":
                out[key] = self.request_body(value, f"{at}/requestBody")
            elif key == "responses":
                out[key] = {str(c): self.response(r, f"{at}/responses{pointer(str(c))}") for c, r in value.items()}
            elif key == "callbacks":
                out[key] = {n: self.callback(c, f"{at}/callbacks{pointer(n)}") for n, c in value.items()}
            else:
                out[key] = copy.deepcopy(value)
        return out

    def callback(self, cb: dict[str, JSON], at: str) -> dict[str, JSON]:
        if "$ref" in cb:
            return self.reference(cb)
        return {expr: self.path_item(item, f"{at}{pointer(expr)}") for expr, item in cb.items()}

    def parameter(self, param: dict[str, JSON], at: str) -> dict[str, JSON]:
        """A parameter or a header object: both carry a schema or a content map."""
        if "$ref" in param:
            return self.reference(param)
        out = copy.deepcopy({k: v for k, v in param.items() if k not in ("schema", "content")})
        if "schema" in param:
            out["schema"] = self.schema(param["schema"], f"{at}/schema")
        if "content" in param:
            out["content"] = self.content(param["content"], f"{at}/content")
        return out

    def request_body(self, body: dict[str, JSON], at: str) -> dict[str, JSON]:
        if "$ref" in body:
            return self.reference(body)
        out = copy.deepcopy({k: v for k, v in body.items() if k != "content"})
        out["content"] = self.content(body.get("content", {}), f"{at}/content")
        return out

    def response(self, resp: dict[str, JSON], at: str) -> dict[str, JSON]:
        if "$ref" in resp:
            return self.reference(resp)
        out = copy.deepcopy({k: v for k, v in resp.items() if k not in ("content", "headers")})
        if "headers" in resp:
            out["headers"] = {n: self.parameter(h, f"{at}/headers{pointer(n)}") for n, h in resp["headers"].items()}
        if "content" in resp:
            out["content"] = self.content(resp["content"], f"{at}/content")
        return out

    def content(self, content: dict[str, JSON], at: str) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for media, obj in content.items():
            here = f"{at}{pointer(media)}"
            converted = copy.deepcopy({k: v for k, v in obj.items() if k not in ("schema", "encoding")})
            if "schema" in obj:
                converted["schema"] = self.schema(obj["schema"], f"{here}/schema")
            if "encoding" in obj:
                converted["encoding"] = {
                    name: {
                        **copy.deepcopy({k: v for k, v in enc.items() if k != "headers"}),
                        **(
                            {
                                "headers": {
                                    h: self.parameter(hv, f"{here}/encoding{pointer(name, 'headers', h)}")
                                    for h, hv in enc["headers"].items()
                                }
                            }
                            if "headers" in enc
                            else {}
                        ),
                    }
                    for name, enc in obj["encoding"].items()
                }
            out[media] = converted
        return out

    # -- schemas ---------------------------------------------------------------------------------------------------

    def schema(self, schema: JSON, at: str) -> JSON:
        if schema is True:
            return {}
        if schema is False:
            return {"not": {}}
        if not isinstance(schema, dict):
            self.fail(at, f"a schema must be an object or a boolean, not {type(schema).__name__}")
            return {}
        if "$ref" in schema:
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            constraining = {k: v for k, v in siblings.items() if k not in _REF_SIBLING_ANNOTATIONS}
            if not constraining:
                return {"$ref": schema["$ref"]}
            # 3.0 ignores everything beside a $ref; allOf keeps both the reference and the constraints.
            rest = self.schema(constraining, at)
            return {"allOf": [{"$ref": schema["$ref"]}], **rest}

        out: dict[str, JSON] = {}
        for key, value in schema.items():
            here = f"{at}{pointer(key)}"
            if key in _UNEXPRESSIBLE:
                if key == "$defs" and not value:
                    continue
                self.fail(here, f"`{key}` cannot be expressed in OpenAPI 3.0", _UNEXPRESSIBLE[key])
            elif key in _ANNOTATIONS or key == "type":
                continue
            elif key in _SAME or key.startswith("x-"):
                out[key] = copy.deepcopy(value)
            elif key == "const":
                out["enum"] = [copy.deepcopy(value)]
            elif key == "examples":
                if isinstance(value, list) and value and "example" not in schema:
                    out["example"] = copy.deepcopy(value[0])
            elif key == "nullable":
                self.fail(here, "`nullable` is not a JSON Schema 2020-12 keyword", 'write `type: [<type>, "null"]`')
            elif key == "properties":
                out[key] = {name: self.schema(sub, f"{here}{pointer(name)}") for name, sub in value.items()}
            elif key in ("additionalProperties", "not"):
                out[key] = (
                    value if isinstance(value, bool) and key == "additionalProperties" else self.schema(value, here)
                )
            elif key == "items":
                if isinstance(value, list):
                    self.fail(here, "`items` must be a schema in OpenAPI 3.1", "use prefixItems for tuples")
                else:
                    out[key] = self.schema(value, here)
            elif key in _SUBSCHEMA_LISTS:
                out[key] = [self.schema(sub, f"{here}/{i}") for i, sub in enumerate(value)]
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                continue  # folded in with minimum / maximum below
            else:
                self.fail(
                    here, f"unknown schema keyword `{key}`", "remove it, or prefix it with x- if it is an extension"
                )
        self._bounds(schema, out, at)
        if "enum" in schema and "const" in schema:
            self.fail(f"{at}/const", "`const` beside `enum` is ambiguous", "keep one of them")
        self._type(schema, out, at)
        return out

    def _bounds(self, schema: dict[str, JSON], out: dict[str, JSON], at: str) -> None:
        for exclusive, inclusive, sign in (("exclusiveMinimum", "minimum", 1), ("exclusiveMaximum", "maximum", -1)):
            if exclusive not in schema:
                continue
            bound = schema[exclusive]
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                self.fail(f"{at}/{exclusive}", f"`{exclusive}` must be a number in OpenAPI 3.1")
                continue
            # the exclusive bound wins unless the inclusive one is strictly tighter
            if inclusive not in schema or sign * (bound - schema[inclusive]) >= 0:
                out[inclusive] = bound
                out[exclusive] = True

    def _type(self, schema: dict[str, JSON], out: dict[str, JSON], at: str) -> None:
        if "type" not in schema:
            return
        declared = schema["type"]
        types = declared if isinstance(declared, list) else [declared]
        concrete = [t for t in types if t != "null"]
        if "integer" in concrete and "number" in concrete:
            concrete.remove("integer")
        allows_null = "null" in types
        values = out.get("enum")
        if values is not None and allows_null and None not in values:
            allows_null = False  # the enum rejects null already; nullable would wrongly let it through
        if not concrete:
            out["enum"] = [v for v in (values or [None]) if v is None] or [None]
            return
        if len(concrete) == 1:
            out["type"] = concrete[0]
            if allows_null:
                out["nullable"] = True
            return
        # several types: one branch per type, each nullable on its own (3.0 `nullable` only relaxes `type`)
        branches = [{"type": t, **({"nullable": True} if allows_null else {})} for t in concrete]
        if "anyOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"anyOf": branches}]
        else:
            out["anyOf"] = branches


def convert(doc: dict[str, JSON], source: str) -> tuple[dict[str, JSON], list[SpecError]]:
    """The 3.0 view of a 3.0 or 3.1 document, and every problem that kept it from being faithful."""
    version = str(doc.get("openapi", ""))
    if version.startswith("3.0"):
        return copy.deepcopy(doc), []
    if not version.startswith("3.1"):
        return {}, [SpecError(source, "/openapi", f"unsupported OpenAPI version {version!r}", "use 3.0.x or 3.1.x")]
    converter = _Converter(source)
    view = converter.document(doc)
    return view, converter.errors
