"""The fast path: well-formed requests to simple operations go straight to their endpoint, past connexion.

connexion's per-request plumbing (about ten ASGI layers, each re-dispatching, plus request objects and
Python JSON Schema validation) costs far more than the mock's own work. Most traffic is well-formed: a JSON body
that the operation's schema accepts, bearer credentials, path parameters that fit. For an operation whose shape
allows it, the gate checks exactly that, with jsonschema-rs validators compiled at start-up from the original
(OpenAPI 3.1) document, and calls the same endpoint connexion would.

A body the schema refuses is answered here with the full path's own error: the same Python validator over the
same view schema, built on first use. Anything else is not decided here: a request that misses any other check
(no, odd or repeated credentials, a query string, another media type, a fault to inject) goes down the full path,
which produces the vendor's exact error. So the fast path can only ever accept what the full path accepts; the
parity of the 3.1 validators with connexion's view is what the conversion tests establish, and the parity tests
compare the two paths' answers byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema_rs
from connexion.decorators.parameter import sanitized
from jsonschema.exceptions import best_match
from starlette.responses import Response
from starlette.types import Scope

from verifymock import jsonio
from verifymock.convert import pointer
from verifymock.errors import ApiError
from verifymock.generate import resolve
from verifymock.selfcheck import compiled_at
from verifymock.specs import Operation, route_specificity, routed_id
from verifymock.validation import compiled, error_from_schema

if TYPE_CHECKING:
    from verifymock.engine import Mock, Mounted

Endpoint = Callable[..., Awaitable[Response]]
JSON_TYPES = frozenset({"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"})


@dataclass
class Route:
    method: str
    regex: re.Pattern[str]
    routed: str  # spec::operationId, as connexion's routing records it
    endpoint: Endpoint
    names: list[str]  # the path parameters, in the order the regex captures them
    params: dict[str, tuple[str, Any]]  # path parameter -> (argument name, compiled schema or None)
    body: Any | None  # compiled body schema, or None when the operation takes no body
    specificity: list[int]
    open: bool = False  # `{}` among its security alternatives: no credentials needed
    view_body: Any = None  # the body schema of the 3.0 view, which the full path validates with
    _explain: Any = None

    def body_error(self, body: Any) -> ApiError | None:
        """The error the full path gives for a body the schema refuses: the same validator over the same view
        schema, built on first use. None if it finds nothing (then the full path decides)."""
        if self._explain is None:
            self._explain = compiled(self.view_body)
        error = best_match(self._explain.iter_errors(body))
        return None if error is None else error_from_schema(error)


class FastPath:
    def __init__(self, mock: Mock, endpoints: dict[str, Endpoint]) -> None:
        self.mock = mock
        self.keys = frozenset(mock.config.api_keys)
        # by method and number of slashes: a path parameter never holds one, so a path can only match a template
        # with as many (a GET of a verification tried 14 patterns in turn before, 3 now)
        self.routes: dict[tuple[str, int], list[Route]] = {}
        for mounted in mock.mounted:
            for operation in mounted.spec.operations.values():
                routed = routed_id(mounted.spec.name, operation.operation_id)
                route = _route(mounted, operation, routed, endpoints.get(routed))
                if route is not None:
                    slashes = (mounted.spec.base_path + operation.path).count("/")
                    self.routes.setdefault((route.method, slashes), []).append(route)
        for routes in self.routes.values():
            routes.sort(key=lambda r: r.specificity)  # a literal segment before a template, as the full path does

    def match(
        self, scope: Scope, headers: dict[str, str], raw: bytes
    ) -> tuple[Route, dict[str, Any], ApiError | None] | None:
        """The route and endpoint arguments if this request is one the fast path may serve (with the error to
        answer if its body breaks the schema), else None. `headers` are the gate's: lower-case names, repeated
        ones joined with ", " (so a repeated Authorization or Content-Type is never a match: the full path
        decides)."""
        path = scope["path"]
        routes = self.routes.get((scope["method"], path.count("/")))
        if not routes or scope.get("query_string") or self.mock.faults.active:
            return None
        if path in self.mock.concrete_paths and scope["method"] not in self.mock.concrete_paths[path]:
            return None
        for route in routes:
            found = route.regex.fullmatch(path)
            if found is not None:
                break
        else:
            return None
        if route.names and path in self.mock.concrete_paths:
            return None  # a concrete path is never a template's match (connexion's order, as the full path keeps)
        if not route.open and not self._credentials(headers.get("authorization")):
            return None
        arguments: dict[str, Any] = {}
        for name, value in zip(route.names, found.groups(), strict=True):
            argument, schema = route.params[name]
            if schema is not None and not schema.is_valid(value):
                return None
            arguments[argument] = value
        if route.body is None:
            return (route, arguments, None) if not raw.strip() else None
        if headers.get("content-type", "").lower() not in JSON_TYPES or not raw:
            return None
        try:
            body = jsonio.loads(raw)
        except ValueError:
            return None
        if not route.body.is_valid(body):
            error = route.body_error(body)
            return None if error is None else (route, arguments, error)
        arguments["body"] = body
        return route, arguments, None

    def _credentials(self, authorization: str | None) -> bool:
        """Bearer credentials connexion would accept: `Bearer <token>`, the token one of --api-key's if given. A
        bearer token has no commas, so one here means a repeated header (the gate joins them): the full path
        decides."""
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and bool(token) and "," not in token and (not self.keys or token in self.keys)


def _route(mounted: Mounted, operation: Operation, routed: str, endpoint: Endpoint | None) -> Route | None:
    """A fast route for operations of a simple shape (3.1, bearer or no credentials, path parameters only, a JSON
    body or none); None for the rest, which connexion serves."""
    spec = mounted.spec
    doc = spec.original
    if endpoint is None or not spec.version.startswith("3.1"):
        return None
    definition = operation.definition
    security: list[dict[str, Any]] | None = definition.get("security", doc.get("security"))
    is_open = security is None or security == [] or {} in security
    if not is_open and not _bearer_only(doc, security or []):
        return None
    params: dict[str, tuple[str, Any]] = {}
    path_item = resolve(doc, doc["paths"][operation.path])
    for parameter in [*(path_item.get("parameters") or []), *(definition.get("parameters") or [])]:
        parameter = resolve(doc, parameter)
        if parameter.get("in") != "path":
            return None  # query, header and cookie parameters have defaults and styles: connexion's job
        schema = resolve(doc, parameter.get("schema") or {})
        if schema.get("type") != "string":
            return None
        params[parameter["name"]] = (sanitized(parameter["name"]), _compile(doc, schema))
    body = view_schema = None
    if "requestBody" in definition:
        # (an absent body falls back to the full path, which decides what the handler gets; the full path's
        # validator fills in no defaults, so a present body reaches the handler as it came)
        request_body = resolve(doc, definition["requestBody"])
        content = request_body.get("content") or {}
        if list(content) != ["application/json"] or "schema" not in content["application/json"]:
            return None
        body = compiled_at(doc, _schema_pointer(operation, definition["requestBody"]))
        view = spec.view
        view_body = _inlined(view, view["paths"][operation.path][operation.method.lower()]["requestBody"], frozenset())
        view_schema = view_body and view_body["content"]["application/json"]["schema"]
        if view_schema is None:
            return None  # a recursive schema: the full path handles it
    parts = re.split(r"\{([^}]+)\}", operation.path)  # literal, name, literal, name, ..., literal
    names = parts[1::2]
    if sorted(names) != sorted(params):
        return None
    pattern = "".join("([^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    regex = re.compile(re.escape(spec.base_path) + pattern)
    return Route(
        operation.method.upper(),
        regex,
        routed,
        endpoint,
        names,
        params,
        body,
        route_specificity(operation.path),
        is_open,
        view_schema,
    )


def _inlined(doc: dict[str, Any], node: Any, active: frozenset[str]) -> Any:
    """`node` with every local reference replaced by what it points to, as connexion hands schemas to its
    validators; None where a reference leads back into itself."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            return None if ref in active else _inlined(doc, resolve(doc, {"$ref": ref}), active | {ref})
        out = {}
        for key, value in node.items():
            inner = _inlined(doc, value, active)
            if inner is None and value is not None:
                return None
            out[key] = inner
        return out
    if isinstance(node, list):
        items = [_inlined(doc, value, active) for value in node]
        return None if any(i is None and v is not None for i, v in zip(items, node, strict=True)) else items
    return node


def _bearer_only(doc: dict[str, Any], security: list[dict[str, Any]]) -> bool:
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    for requirement in security:
        for name in requirement:
            scheme = resolve(doc, schemes.get(name) or {})
            if scheme.get("type") != "http" or str(scheme.get("scheme", "")).lower() != "bearer":
                return False
    return True


def _schema_pointer(operation: Operation, request_body: dict[str, Any]) -> str:
    base = request_body["$ref"][1:] if "$ref" in request_body else operation.pointer + pointer("requestBody")
    return base + pointer("content", "application/json", "schema")


def _compile(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator({**doc, **schema}, validate_formats=True) if schema else None
