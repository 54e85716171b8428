"""Scenario files: validated with errors that name the file, the key and the fix; selected in a fixed order."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifymock.errors import ApiError, ConfigErrors
from verifymock.paths import bundled
from verifymock.scenarios import Scenarios, load


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_scenarios_bundled_files_all_load() -> None:
    scenarios = load([bundled("scenarios")])
    assert {"default", "interactive", "telnyx/dtmf_confirm/press_1"} <= set(scenarios)
    assert all(s.summary for s in scenarios.values())


@pytest.mark.parametrize(
    ("text", "where", "problem", "fix"),
    [
        ("summary: x\ncallee:\n  outcome: answers\n  at: 3\n", "callee", "unknown key `at`", "expected one of: after,"),
        ("summary: x\ncallee:\n  outcome: sings\n", "callee/outcome", "'sings' is not allowed", "use one of: answers,"),
        ("callee:\n  outcome: busy\n", "(top level)", "'summary' is a required property", "add the missing key"),
        ("summary: x\nnumbers: ['12345']\n", "numbers/0", "does not match", "scenario.schema.json"),
    ],
)
def test_scenarios_errors_name_file_key_and_fix(tmp_path: Path, text: str, where: str, problem: str, fix: str) -> None:
    path = write(tmp_path, "acme/broken", text)
    with pytest.raises(ConfigErrors) as caught:
        load([tmp_path])
    [error] = caught.value.errors
    assert error.source == str(path)
    assert error.where == where
    assert problem in error.problem
    assert fix in error.fix


def test_scenarios_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "one", "summary: [\n")
    write(tmp_path, "two", "summary: x\nbogus: 1\n")
    write(tmp_path, "three", "summary: x\nnumbers: ['+15005550101']\n")  # already reserved by a bundled one
    with pytest.raises(ConfigErrors) as caught:
        load([bundled("scenarios"), tmp_path])
    assert sorted(Path(e.source).stem for e in caught.value.errors) == ["one", "three", "two"]


def test_scenarios_selection_order_header_binding_number_default(tmp_path: Path) -> None:
    write(tmp_path, "reserved", "summary: x\nnumbers: ['+15551230000']\n")
    write(tmp_path, "other", "summary: y\n")
    scenarios = Scenarios(load([tmp_path]))
    assert scenarios.select("+15551239999", None).id == "default"
    assert scenarios.select("+15551230000", None).id == "reserved"
    scenarios.bind("+15551230000", "interactive")
    assert scenarios.select("+15551230000", None).id == "interactive"
    assert scenarios.select("+15551230000", "other").id == "other"
    assert scenarios.unbind("+15551230000")
    assert scenarios.select("+15551230000", None).id == "reserved"
    with pytest.raises(ApiError, match="Unknown scenario"):
        scenarios.select(None, "nope")
