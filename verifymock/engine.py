"""The engine's root object: configuration, the loaded specs and the state every handler reads through it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifymock.config import Config
from verifymock.errors import ConfigError, ConfigErrors
from verifymock.journal import Journal
from verifymock.paths import bundled
from verifymock.resolver import Resolution, resolve_spec
from verifymock.selfcheck import ResponseChecker
from verifymock.specs import Operation, Spec, load_spec, spec_files, template_regex

log = logging.getLogger("verifymock")

_current: ContextVar[Mock] = ContextVar("verifymock_engine")


def engine() -> Mock:
    """The mock serving the current request (handlers call this instead of keeping globals)."""
    return _current.get()


@dataclass
class Mounted:
    """A spec as served: how its operations resolve and how its responses are checked."""

    spec: Spec
    resolutions: dict[str, Resolution]
    checker: ResponseChecker
    user: bool

    @property
    def vendor(self) -> str:
        return self.spec.vendor


class Mock:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.journal = Journal(config.journal_size)
        self.mounted: list[Mounted] = self._load(config)
        self._by_prefix = sorted(self.mounted, key=lambda m: len(m.spec.base_path), reverse=True)
        self._reset_hooks: list[Callable[[], None]] = []
        self.concrete_paths = self._concrete_paths(self.mounted)

    @staticmethod
    def _load(config: Config) -> list[Mounted]:
        errors: list[ConfigError] = []
        mounted: list[Mounted] = []
        bundled_specs = bundled("specs").resolve()
        for path in spec_files(config.spec_dirs()):
            try:
                spec = load_spec(path)
                resolutions = resolve_spec(spec, config.handler_dirs())
            except ConfigErrors as exc:
                errors.extend(exc.errors)
                continue
            except ConfigError as exc:
                errors.append(exc)
                continue
            user = path.resolve().parent != bundled_specs
            mounted.append(Mounted(spec, resolutions, ResponseChecker(spec), user))
        if errors:
            raise ConfigErrors(errors)
        # a user's spec is routed first, so it wins where it overlaps a bundled one
        return sorted(mounted, key=lambda m: not m.user)

    @staticmethod
    def _concrete_paths(mounted: list[Mounted]) -> dict[str, frozenset[str]]:
        """Full paths without templates, with their methods. OpenAPI matches these before templated paths, so
        GET /v2/verifications/sms is a 405 (only POST is declared there), not a lookup of verification "sms"."""
        paths: dict[str, set[str]] = {}
        for m in mounted:
            for operation in m.spec.operations.values():
                if "{" not in operation.path:
                    paths.setdefault(m.spec.base_path + operation.path, set()).add(operation.method.upper())
        return {path: frozenset(methods) for path, methods in paths.items()}

    def allowed_methods(self, path: str) -> list[str]:
        """The methods a path supports: those of its concrete path if it has one, else of every template it fits."""
        if path in self.concrete_paths:
            return sorted(self.concrete_paths[path])
        methods = {
            operation.method.upper()
            for m in self.mounted
            if path.startswith(m.spec.base_path)
            for operation in m.spec.operations.values()
            if template_regex(operation.path).match(path[len(m.spec.base_path) :])
        }
        return sorted(methods)

    def activate(self) -> None:
        _current.set(self)

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        self.journal.clear()
        for hook in self._reset_hooks:
            hook()

    def mounted_for_path(self, path: str) -> Mounted | None:
        """The spec whose base path is the longest prefix of `path`."""
        for m in self._by_prefix:
            base = m.spec.base_path
            if not base or path == base or path.startswith(base + "/"):
                return m
        return None

    def locate(self, path: str, operation_id: str | None) -> tuple[Mounted | None, Operation | None]:
        """The spec and operation a request was routed to (or, unrouted, the spec its path falls under)."""
        candidates = [m for m in self._by_prefix if operation_id in m.spec.operations] if operation_id else []
        for m in candidates:
            base = m.spec.base_path
            if not base or path == base or path.startswith(base + "/"):
                return m, m.spec.operations[operation_id]  # type: ignore[index]
        return self.mounted_for_path(path), None

    def spec_dir_of(self, name: str) -> Path | None:
        return next((m.spec.source.parent for m in self.mounted if m.spec.name == name), None)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": m.spec.name,
                "base_path": m.spec.base_path or "/",
                "vendor": m.vendor,
                "openapi": m.spec.version,
                "operations": len(m.spec.operations),
                "source": str(m.spec.source),
            }
            for m in self.mounted
        ]
