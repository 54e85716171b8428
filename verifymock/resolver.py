"""From operationId to the code that answers it: a hand-written handler, or the spec's own example.

Handlers live in `<handlers dir>/<spec file stem>.py`, one function per operation named after its operationId in
snake_case (`CreateVerificationCall` → `create_verification_call`). A module lists the operations it knowingly
leaves to the generic answer in `GENERIC`. User folders are searched before the bundled one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from verifymock.errors import HandlerError
from verifymock.paths import bundled
from verifymock.specs import Spec

Handler = Callable[..., Any]


def snake_case(operation_id: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", operation_id)
    return re.sub(r"[^0-9a-zA-Z]+", "_", words).strip("_").lower()


def load_module(path: Path, fresh: bool = False) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"verifymock_handlers_{digest}.{path.stem}"
    if name in sys.modules and not fresh:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerError(str(path), "", "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise HandlerError(str(path), "", f"failed to import: {exc!r}") from exc
    return module


@dataclass(frozen=True)
class Resolution:
    """What answers one operation: `handler` is None when the spec's example does."""

    operation_id: str
    handler: Handler | None
    module: str | None


def resolve_spec(spec: Spec, handler_dirs: list[Path], fresh: bool = False) -> dict[str, Resolution]:
    """Resolve every operation of a spec; a handler module that does not fit the spec is a start-up error."""
    modules = [load_module(d / f"{spec.name}.py", fresh) for d in handler_dirs if (d / f"{spec.name}.py").is_file()]
    # a user's document that replaces a bundled one of the same name keeps the bundled handlers for the operations
    # they share; only a module written for this very document must match it exactly
    bundled_handlers = bundled("handlers").resolve()
    user_spec = spec.source.resolve().parent != bundled("specs").resolve()
    resolutions: dict[str, Resolution] = {}
    for module in modules:
        generic = set(getattr(module, "GENERIC", ()))
        unknown = generic - set(spec.operations)
        lenient = user_spec and Path(module.__file__ or "").resolve().parent == bundled_handlers
        if unknown and not lenient:
            raise HandlerError(
                module.__file__ or module.__name__,
                "GENERIC",
                f"names operations {sorted(unknown)} that {spec.source.name} does not have",
                "remove them from GENERIC",
            )
        for operation_id in generic:
            if callable(getattr(module, snake_case(operation_id), None)):
                raise HandlerError(
                    module.__file__ or module.__name__,
                    snake_case(operation_id),
                    f"{operation_id} is both handled and listed in GENERIC",
                    "keep one of them",
                )
    for operation_id in spec.operations:
        name = snake_case(operation_id)
        found = next(((m, getattr(m, name)) for m in modules if callable(getattr(m, name, None))), None)
        resolutions[operation_id] = (
            Resolution(operation_id, found[1], found[0].__file__) if found else Resolution(operation_id, None, None)
        )
    return resolutions


def generic_by_declaration(spec: Spec, handler_dirs: list[Path]) -> set[str]:
    """The operations some handler module for this spec declares as knowingly generic."""
    declared: set[str] = set()
    for directory in handler_dirs:
        path = directory / f"{spec.name}.py"
        if path.is_file():
            declared |= set(getattr(load_module(path), "GENERIC", ()))
    return declared


def accepted_arguments(handler: Handler) -> tuple[frozenset[str], bool]:
    """The keyword arguments a handler takes, and whether it takes any (**kwargs)."""
    parameters = inspect.signature(handler).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD)
    return names, takes_any
