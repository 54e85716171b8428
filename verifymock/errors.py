"""The exceptions verifymock raises.

Start-up problems (`ConfigError` and its children) name the file, the place in it and the fix. Request-time
problems are `ApiError`: data describing what went wrong, which each API's renderer turns into that vendor's
own status code and error envelope.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class VerifymockError(Exception):
    """Base of every error verifymock raises on purpose."""


class ConfigError(VerifymockError):
    """Something given at start-up (a spec, a handler module, a scenario, a flag) cannot be used."""

    def __init__(self, source: str, where: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.where = where
        self.problem = problem
        self.fix = fix
        location = f"{source} at {where}" if where else source
        super().__init__(f"{location}: {problem}" + (f" ({fix})" if fix else ""))


class SpecError(ConfigError):
    """An OpenAPI document cannot be served as it is."""


class HandlerError(ConfigError):
    """A handler module does not fit the spec it belongs to."""


class ScenarioError(ConfigError):
    """A scenario file does not fit the scenario schema."""


class ConfigErrors(VerifymockError):
    """Several start-up problems at once, so the user can fix them all in one go."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class Problem(enum.Enum):
    """What went wrong with a request, independent of how a vendor words it."""

    INVALID_JSON = "invalid_json"
    MISSING_BODY = "missing_body"
    MISSING_PARAMETER = "missing_parameter"
    INVALID_PARAMETER = "invalid_parameter"
    INVALID_PHONE_NUMBER = "invalid_phone_number"
    INVALID_ID = "invalid_id"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    CONFLICT = "conflict"
    UNPROCESSABLE = "unprocessable"
    INTERNAL = "internal"


@dataclass(eq=False)
class ApiError(VerifymockError):
    """A request the mock refuses. The vendor's renderer picks the status code and envelope.

    `pointer` is an RFC 6901 pointer into the request body, `parameter` the name of the query, path or header
    parameter at fault. `code` and `status` let a handler force a vendor-specific code (TeleSign's -30006, say).
    """

    problem: Problem
    detail: str
    pointer: str | None = None
    parameter: str | None = None
    code: str | int | None = None
    status: int | None = None
    title: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.problem.value}: {self.detail}")

    def __str__(self) -> str:
        return f"{self.problem.value}: {self.detail}"
