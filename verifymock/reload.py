"""`--watch`: edited specs, handler modules and scenario files are loaded again without a restart.

A broken edit is logged with the same file-and-pointer messages as at start-up, and the last good version keeps
serving. State (profiles, calls, the clock, bindings) survives a reload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import watchfiles

from verifymock.errors import ConfigError, ConfigErrors
from verifymock.gate import Gate

log = logging.getLogger("verifymock.reload")


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(folder.resolve()) for folder in folders)


async def watch(gate: Gate, rebuild: Callable[[], Any]) -> None:
    mock = gate.mock
    config = mock.config
    code_folders = [*config.spec_dirs(), *config.handler_dirs()]
    scenario_folders = config.scenario_dirs()
    folders = [str(f) for f in {*code_folders, *scenario_folders} if f.is_dir()]
    async for changes in watchfiles.awatch(*folders, debounce=100, step=20):
        changed = {Path(path).resolve() for _, path in changes}
        if any(_under(p, scenario_folders) for p in changed):
            apply(mock.reload_scenarios, "scenarios")
        previous = mock.mounted
        if any(_under(p, code_folders) for p in changed) and apply(mock.reload_specs, "specs and handlers"):
            try:
                gate.app, gate.fast = rebuild()
            except Exception as exc:  # connexion refused the new view: keep serving the old one
                log.error("reload of specs refused, the last good version keeps serving: %s", exc)
                mock.use(previous)


def apply(reload: Callable[[], None], what: str) -> bool:
    try:
        reload()
    except ConfigErrors as exc:
        for error in exc.errors:
            log.error("reload of %s refused, the last good version keeps serving: %s", what, error)
        return False
    except ConfigError as exc:
        log.error("reload of %s refused, the last good version keeps serving: %s", what, exc)
        return False
    log.info("reloaded %s", what)
    return True
