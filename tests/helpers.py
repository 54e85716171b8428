"""Shared by the test modules: where things are, and small builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
TELNYX_AUTH = {"Authorization": "Bearer test-key"}
PROFILE_ID = "12ade33a-21c0-473b-b055-b3c836e1c292"


def seed_spec(number: str) -> str:
    """The OpenAPI document embedded in one of the vendor seed documents beside the repository."""
    candidates = sorted((REPO.parent / "shared" / "seeds").glob(f"{number}_*.txt"))
    if not candidates:
        pytest.fail(f"seed {number} not found: these tests read ../shared/seeds/ beside the checkout")
    text = candidates[0].read_text(encoding="utf-8")
    start = text.index("````yaml")
    start = text.index("\n", start) + 1
    return text[start : text.index("````", start)]


def write_spec(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
