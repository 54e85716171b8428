"""`verifymock validate`: everything the server would load, checked, with every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from verifymock.config import Config
from verifymock.convert import pointer
from verifymock.engine import mount
from verifymock.errors import ConfigError, ConfigErrors, HandlerError, SpecError
from verifymock.resolver import generic_by_declaration, snake_case
from verifymock.scenarios import load as load_scenarios
from verifymock.specs import read_document, spec_files


def problems(config: Config) -> tuple[list[ConfigError], dict[str, int]]:
    """Every problem, and counts of what was checked."""
    found: list[ConfigError] = []
    counts = {"specs": 0, "operations": 0, "scenarios": 0}
    try:
        counts["scenarios"] = len(load_scenarios(config.scenario_dirs()))
    except ConfigErrors as exc:
        found.extend(exc.errors)
    try:
        paths = spec_files(config.spec_dirs())
    except ConfigError as exc:
        return [*found, exc], counts
    sound: list[Path] = []
    for path in paths:
        try:
            structural = _structural(read_document(path), str(path))
        except SpecError as exc:
            structural = [exc]
        found.extend(structural)
        if not structural:
            sound.append(path)
    mounted, problems_found = mount(config, sound)
    found.extend(problems_found)
    for m in mounted:
        spec = m.spec
        counts["specs"] += 1
        counts["operations"] += len(spec.operations)
        modules = [d / f"{spec.name}.py" for d in config.handler_dirs() if (d / f"{spec.name}.py").is_file()]
        if modules:  # a spec with a handler module should handle, or knowingly leave generic, every operation
            generic = generic_by_declaration(spec, config.handler_dirs())
            for operation_id, resolution in m.resolutions.items():
                if resolution.handler is None and operation_id not in generic:
                    found.append(
                        HandlerError(
                            str(modules[0]),
                            snake_case(operation_id),
                            f"no handler for {operation_id}",
                            f"define {snake_case(operation_id)}() or list {operation_id!r} in GENERIC",
                        )
                    )
    return found, counts


def _structural(doc: dict[str, Any], source: str) -> list[ConfigError]:
    validator_cls: Any = (
        OpenAPIV31SpecValidator if str(doc.get("openapi", "")).startswith("3.1") else (OpenAPIV30SpecValidator)
    )
    return [
        SpecError(source, pointer(*error.absolute_path) or "/", error.message)
        for error in validator_cls(doc).iter_errors()
    ]


def report(config: Config) -> int:
    """Print one line per problem (`file at where: problem (fix)`), then a summary; 1 if anything is wrong."""
    found, counts = problems(config)
    for problem in found:
        print(f"error: {problem}")
    summary = f"{counts['specs']} specs, {counts['operations']} operations, {counts['scenarios']} scenarios"
    if found:
        print(f"{len(found)} problem{'s' if len(found) != 1 else ''} ({summary} loaded)")
        return 1
    print(f"ok: {summary}")
    return 0
