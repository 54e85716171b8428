"""Scenario files: what the callee, the network and the mock itself do, chosen per request.

Selection, first match wins: the `X-Mock-Scenario` header, a binding set through the control API, a reserved test
number in the request, then the built-in `default` (the callee answers after 2 s and presses 1 at 5 s).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError

from verifymock.errors import ApiError, ConfigError, ConfigErrors, Problem, ScenarioError
from verifymock.state.dirty import Dirty
from verifymock.webhooks import Breakage

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

HEADER = "x-mock-scenario"
MAX_BINDINGS = 100_000  # numbers bound at once: each is kept, listed and saved
log = logging.getLogger("verifymock.scenarios")


@dataclass(frozen=True)
class Press:
    at: float
    digits: str


@dataclass(frozen=True)
class Callee:
    outcome: str = "answers"
    after: float = 2.0
    presses: tuple[Press, ...] = ()
    hangs_up_after: float | None = None

    @cached_property
    def script(self) -> dict[str, Any]:
        """What an answering callee does, as the answer timer's arguments: made once per scenario (dataclasses'
        `asdict` per call was 1.6% of a call verification under load), read by every call, changed by none."""
        return {"presses": [asdict(p) for p in self.presses], "hangs_up_after": self.hangs_up_after}


@dataclass(frozen=True)
class ReviewStep:
    after: float  # clock seconds after the previous step (or the submission, or the customer's update)
    status: str
    reason: str | None = None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: float | str) -> float:
    """A duration in seconds: a number, or a string such as 90m, 36h or 2d."""
    if isinstance(value, str):
        return float(value[:-1]) * _UNITS[value[-1]]
    return float(value)


@dataclass(frozen=True)
class HttpOverride:
    status: int
    code: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    summary: str
    numbers: tuple[str, ...] = ()
    business_names: tuple[str, ...] = ()
    callee: Callee = field(default_factory=Callee)
    review: tuple[ReviewStep, ...] = ()
    delivery: str = "delivered"
    http: HttpOverride | None = None
    latency_ms: float = 0.0
    latency_ms_max: float | None = None  # with latency_ms: a random delay between the two
    connection: str | None = None  # close (no response at all) or reset (half the body, then the connection drops)
    webhooks: Breakage = field(default_factory=Breakage)
    blocked: str | None = None  # by_customer / by_vendor: the vendor refuses to place the call
    source: str = "built-in"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "summary": self.summary,
            "numbers": list(self.numbers),
            "business_names": list(self.business_names),
            "source": self.source,
            "review": [{"after": s.after, "status": s.status, "reason": s.reason} for s in self.review],
            "callee": {
                "outcome": self.callee.outcome,
                "after": self.callee.after,
                "presses": [{"at": p.at, "digits": p.digits} for p in self.callee.presses],
                "hangs_up_after": self.callee.hangs_up_after,
            },
            "messages": {"delivery": self.delivery},
            "overrides": {
                "http": None
                if self.http is None
                else {"status": self.http.status, "code": self.http.code, "detail": self.http.detail},
                "latency_ms": self.latency_ms,
                "latency_ms_max": self.latency_ms_max,
                "connection": self.connection,
                "webhooks": {
                    "drop_attempts": self.webhooks.drop_attempts,
                    "bad_signature": self.webhooks.bad_signature,
                    "late_seconds": self.webhooks.late_seconds,
                    "duplicate": self.webhooks.duplicate,
                    "out_of_order": self.webhooks.out_of_order,
                },
                "blocked": self.blocked,
            },
        }


BUILT_IN = {
    "default": Scenario(
        "default",
        "The callee answers after 2 s and presses 1 at 5 s (3 s after answering); messages are delivered; "
        "toll-free requests are Verified after 2 days.",
        callee=Callee("answers", 2.0, (Press(3.0, "1"),)),
        review=(ReviewStep(2 * 86400.0, "Verified"),),
    ),
    "interactive": Scenario(
        "interactive",
        "Nothing is scripted: the handset API answers, declines, presses keys and hangs up "
        "(unanswered calls ring out after 30 s).",
        callee=Callee("interactive", 0.0),
    ),
}


def _schema() -> dict[str, Any]:
    text = resources.files("verifymock").joinpath("scenario.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _explain(error: ValidationError) -> tuple[str, str, str]:
    """(key path, problem, fix) in words a scenario author can act on."""
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return where, f"unknown key `{', '.join(unknown)}`", f"expected one of: {', '.join(allowed)}"
    if error.validator == "enum":
        return where, f"{error.instance!r} is not allowed", f"use one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return where, error.message, "add the missing key"
    return where, error.message, "see verifymock/scenario.schema.json"


def parse(scenario_id: str, raw: Any, source: str) -> Scenario:
    errors = sorted(Draft202012Validator(_schema()).iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        where, problem, fix = _explain(errors[0])
        raise ScenarioError(source, where, problem, fix)
    callee = raw.get("callee") or {}
    overrides = raw.get("overrides") or {}
    http = overrides.get("http")
    hooks = overrides.get("webhooks") or {}
    latency = overrides.get("latency_ms", 0.0)
    return Scenario(
        id=scenario_id,
        summary=raw["summary"],
        numbers=tuple(raw.get("numbers") or ()),
        business_names=tuple(raw.get("business_names") or ()),
        review=tuple(
            ReviewStep(seconds(step["after"]), step["status"], step.get("reason")) for step in raw.get("review") or ()
        ),
        callee=Callee(
            outcome=callee.get("outcome", "answers"),
            after=float(callee.get("after", 2.0)),
            presses=tuple(Press(float(p["at"]), p["digits"]) for p in callee.get("presses") or ()),
            hangs_up_after=callee.get("hangs_up_after"),
        ),
        delivery=(raw.get("messages") or {}).get("delivery", "delivered"),
        http=None if http is None else HttpOverride(http["status"], http.get("code"), http.get("detail")),
        latency_ms=float(latency.get("min", 0.0)) if isinstance(latency, dict) else float(latency),
        latency_ms_max=float(latency["max"]) if isinstance(latency, dict) else None,
        connection=overrides.get("connection"),
        webhooks=Breakage(
            drop_attempts=int(hooks.get("drop_attempts", 0)),
            bad_signature=bool(hooks.get("bad_signature", False)),
            late_seconds=float(hooks.get("late_seconds", 0.0)),
            duplicate=bool(hooks.get("duplicate", False)),
            out_of_order=bool(hooks.get("out_of_order", False)),
        ),
        blocked=overrides.get("blocked"),
        source=source,
    )


def load(directories: list[Path]) -> dict[str, Scenario]:
    """Every scenario under the folders; ids are paths without `.yaml`. All problems are reported at once."""
    found: dict[str, Scenario] = dict(BUILT_IN)
    numbers: dict[str, str] = {}
    problems: list[ConfigError] = []
    for directory in directories:
        for path in sorted(directory.rglob("*.yaml")):
            scenario_id = path.relative_to(directory).with_suffix("").as_posix()
            try:
                raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
                scenario = parse(scenario_id, raw, str(path))
            except yaml.YAMLError as exc:
                problems.append(ScenarioError(str(path), "", f"is not valid YAML: {exc}", "fix the syntax"))
                continue
            except ScenarioError as exc:
                problems.append(exc)
                continue
            if scenario_id in BUILT_IN:
                problems.append(ScenarioError(str(path), "", f"`{scenario_id}` is built in", "rename the file"))
                continue
            for number in scenario.numbers:
                if number in numbers and numbers[number] != scenario_id:
                    problems.append(
                        ScenarioError(
                            str(path),
                            "numbers",
                            f"{number} is already reserved by {numbers[number]}",
                            "give each scenario its own numbers",
                        )
                    )
                numbers[number] = scenario_id
            found[scenario_id] = scenario  # a later folder's file of the same id replaces an earlier one
    if problems:
        raise ConfigErrors(problems)
    return found


class Scenarios:
    def __init__(self, scenarios: dict[str, Scenario]) -> None:
        self.all = scenarios
        self.by_number = {n: s for s in scenarios.values() for n in s.numbers}
        self.by_business = {name.casefold(): s for s in scenarios.values() for name in s.business_names}
        self.bindings: dict[str, str] = {}
        self.dirty = Dirty()  # the engine's, when a store writes what changes

    def get(self, scenario_id: str) -> Scenario:
        scenario = self.all.get(scenario_id)
        if scenario is None:
            raise ApiError(
                Problem.INVALID_PARAMETER,
                f"Unknown scenario {scenario_id!r}; GET /_mock/scenarios lists them.",
                parameter="X-Mock-Scenario",
            )
        return scenario

    def bind(self, phone_number: str, scenario_id: str) -> None:
        if scenario_id not in self.all:  # the number is not what is missing: the body names what does not exist
            raise ApiError(
                Problem.UNPROCESSABLE,
                f"There is no scenario {scenario_id!r}; GET /_mock/scenarios lists them.",
                pointer="/scenario",
            )
        if phone_number not in self.bindings and len(self.bindings) >= MAX_BINDINGS:
            raise ApiError(
                Problem.UNPROCESSABLE,
                f"{MAX_BINDINGS} numbers are bound already; unbind some (DELETE /_mock/bindings/{{number}}) or reset.",
            )
        self.bindings[phone_number] = scenario_id
        self.dirty("binding", phone_number)

    def prune(self) -> list[str]:
        """Drop the bindings whose scenario no longer exists (its file deleted under --watch, or a restart without
        its folder); returns the numbers that lost theirs."""
        gone = [number for number, scenario_id in self.bindings.items() if scenario_id not in self.all]
        for number in gone:
            log.warning(
                "%s was bound to scenario %r, which no longer exists: binding dropped", number, self.bindings[number]
            )
            del self.bindings[number]
            self.dirty("binding", number)
        return gone

    def unbind(self, phone_number: str) -> bool:
        self.dirty("binding", phone_number)
        return self.bindings.pop(phone_number, None) is not None

    def select(self, phone_number: str | None, header: str | None) -> Scenario:
        return self.select_any([phone_number] if phone_number else [], header)

    def select_any(self, phone_numbers: list[str], header: str | None, business_name: str | None = None) -> Scenario:
        """Header, then a binding of any of the numbers, then a reserved number, then a reserved business name."""
        if header:
            return self.get(header)
        for number in phone_numbers:
            bound = self.all.get(self.bindings.get(number, ""))
            if bound is not None:  # (a binding whose scenario file is gone no longer applies)
                return bound
        for number in phone_numbers:
            if number in self.by_number:
                return self.by_number[number]
        if business_name and business_name.casefold() in self.by_business:
            return self.by_business[business_name.casefold()]
        return self.all["default"]
