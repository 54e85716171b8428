"""Finding, reading and describing the OpenAPI documents the mock serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from verifymock.convert import convert, pointer
from verifymock.errors import ConfigError, ConfigErrors, SpecError

try:  # the C loader reads our specs about ten times faster
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Which vendor's error envelope a spec gets, when it does not say with `info.x-verifymock-vendor`.
_VENDOR_HOSTS = (
    (re.compile(r"(^|\.)telnyx\.com$"), "telnyx"),
    (re.compile(r"(^|\.)telesign\.com$"), "telesign"),
    (re.compile(r"(^|\.)(cm\.com|cmtelecom\.com)$"), "cm"),
)


@dataclass(frozen=True)
class Operation:
    """One operation of a spec, as declared in the original document."""

    operation_id: str
    method: str
    path: str
    definition: dict[str, Any]
    pointer: str

    @cached_property
    def success_status(self) -> int:
        """The status a handler's plain return value is sent with: the first 2xx the spec declares."""
        codes = sorted(int(c) for c in self.definition.get("responses", {}) if str(c).isdigit() and str(c)[0] == "2")
        return codes[0] if codes else 200


@dataclass
class Spec:
    """An OpenAPI document: the original (for validation and fuzzing) and the 3.0 view connexion routes with."""

    name: str
    source: Path
    original: dict[str, Any]
    view: dict[str, Any]
    base_path: str
    vendor: str
    operations: dict[str, Operation] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.original.get("openapi", ""))

    @property
    def prefix(self) -> str:
        """The path prefix this spec answers for: its base path and the literal segments all its paths share
        (`/v1/verify` for TeleSign, mounted at the root), so an unknown URL elsewhere is not blamed on it."""
        routes = [op.path.strip("/").split("/") for op in self.operations.values()]
        shared: list[str] = []
        for segments in zip(*routes, strict=False) if routes else ():
            if len(set(segments)) != 1 or "{" in segments[0] or len(shared) == min(map(len, routes)) - 1:
                break
            shared.append(segments[0])
        return self.base_path + "".join("/" + segment for segment in shared)


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), "", f"cannot be read: {exc}") from exc
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(str(path), where, f"is not valid YAML or JSON: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(doc, dict) or "openapi" not in doc:
        raise SpecError(str(path), "/openapi", "is not an OpenAPI 3 document", "add `openapi: 3.1.0` at the top")
    return doc


def base_path_of(doc: dict[str, Any]) -> str:
    """The path part of the first `servers` URL, with server variables at their defaults."""
    servers = doc.get("servers") or [{"url": "/"}]
    server = servers[0]
    url = str(server.get("url", "/"))
    for name, variable in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(variable.get("default", "")))
    return urlparse(url).path.rstrip("/")


def vendor_of(doc: dict[str, Any]) -> str:
    declared = (doc.get("info") or {}).get("x-verifymock-vendor")
    if declared:
        return str(declared)
    for server in doc.get("servers") or []:
        host = urlparse(server.get("url", "")).hostname or ""
        for pattern, vendor in _VENDOR_HOSTS:
            if pattern.search(host):
                return vendor
    return "generic"


ROUTED_SEPARATOR = "::"


def routed_id(spec_name: str, operation_id: str) -> str:
    """The operationId connexion routes by: unique across every mounted spec."""
    return f"{spec_name}{ROUTED_SEPARATOR}{operation_id}"


def synthetic_operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^0-9A-Za-z]+", "_", path).strip("_")
    return f"{method}_{words}" if words else method


def load_spec(path: Path) -> Spec:
    original = read_document(path)
    view, problems = convert(original, str(path))
    if problems:
        raise ConfigErrors(list(problems))
    spec = Spec(
        name=path.stem,
        source=path,
        original=original,
        view=view,
        base_path=base_path_of(original),
        vendor=vendor_of(original),
    )
    for route, item in (original.get("paths") or {}).items():
        for method in HTTP_METHODS:
            definition = item.get(method)
            if not isinstance(definition, dict):
                continue
            operation_id = definition.get("operationId") or synthetic_operation_id(method, route)
            if operation_id in spec.operations:
                raise SpecError(
                    str(path),
                    pointer("paths", route, method, "operationId"),
                    f"operationId {operation_id!r} is used twice",
                    "give every operation its own operationId",
                )
            # connexion keys operations by operationId across all specs; the spec name keeps two specs that share
            # an operationId (Telnyx's own document beside ours) apart. The original stays untouched.
            view["paths"][route][method]["operationId"] = routed_id(path.stem, operation_id)
            spec.operations[operation_id] = Operation(
                operation_id, method, route, definition, pointer("paths", route, method)
            )
    # OpenAPI matches concrete paths before templated ones; connexion routes in document order, so order the view
    view["paths"] = dict(sorted(view["paths"].items(), key=lambda item: route_specificity(item[0])))
    return spec


def route_specificity(route: str) -> list[int]:
    """Sort key putting a literal segment before a template at the first place two paths differ."""
    return [1 if "{" in segment else 0 for segment in route.strip("/").split("/")]


def template_regex(route: str) -> re.Pattern[str]:
    """A regex matching the concrete paths of a path template (a template matches one whole segment)."""
    parts = re.split(r"(\{[^}]+\})", route)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def spec_files(directories: list[Path]) -> list[Path]:
    """Every spec file, later directories shadowing earlier ones by file name (a user's copy wins)."""
    by_name: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            raise ConfigError(str(directory), "", "is not a directory", "pass a folder that holds OpenAPI files")
        for path in sorted(directory.iterdir()):
            if path.suffix in SPEC_SUFFIXES and not path.name.startswith("."):
                by_name[path.stem] = path
    return list(by_name.values())


def merged_view(specs: list[Spec]) -> dict[str, Any]:
    """One connexion view for several specs mounted at the same base path, earlier specs winning a shared path.

    connexion cannot mount two documents at one base path reliably (it sorts them with a comparison that is not
    a total order), so their views are merged: components are renamed per spec, references and security
    requirements follow, and each operation carries its document's security.
    """
    if len(specs) == 1:
        return specs[0].view
    merged: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": " + ".join(s.name for s in specs), "version": "1"}}
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for spec in specs:
        prefix = f"{spec.name}__"
        view = _renamed(spec.view, prefix)
        for kind, entries in (view.get("components") or {}).items():
            target = components.setdefault(kind, {})
            target.update({f"{prefix}{name}": value for name, value in entries.items()})
        security = view.get("security")
        for route, item in (view.get("paths") or {}).items():
            if route in paths:
                continue  # an earlier (user) document owns this path
            for method in HTTP_METHODS:
                operation = item.get(method)
                if isinstance(operation, dict) and "security" not in operation and security is not None:
                    operation["security"] = security
            paths[route] = item
    merged["paths"] = dict(sorted(paths.items(), key=lambda entry: route_specificity(entry[0])))
    merged["components"] = components
    return merged


def _renamed(view: dict[str, Any], prefix: str) -> Any:
    """A copy of a view whose component references and security requirement names carry `prefix`."""

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            if key == "mapping":  # a discriminator's mapping: values are schema references
                return {k: walk({"$ref": v})["$ref"] if isinstance(v, str) else v for k, v in node.items()}
            out = {k: walk(v, k) for k, v in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, kind, name, *rest = ref.split("/")
                out["$ref"] = "/".join(["#", "components", kind, prefix + name, *rest])
            return out
        if isinstance(node, list):
            if key == "security":
                return [{prefix + name: scopes for name, scopes in requirement.items()} for requirement in node]
            return [walk(item) for item in node]
        return node

    return walk(view)
