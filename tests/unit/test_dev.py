"""The set-up script's own steps (scripts/dev.py is what README's two commands run)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from tests.helpers import REPO


def _dev() -> Any:
    spec = importlib.util.spec_from_file_location("dev", REPO / "scripts" / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_project_modules_are_byte_compiled_for_the_venv_python() -> None:
    dev = _dev()
    sources = [path for name in dev.PACKAGES for path in (REPO / name).rglob("*.py")]
    assert len(sources) > 20
    source = sources[0]
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)  # its bytecode gone, as after a checkout

    dev.compile_sources()

    missing = [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).exists()]
    assert missing == []
    assert os.stat(cached).st_mtime >= os.stat(source).st_mtime
