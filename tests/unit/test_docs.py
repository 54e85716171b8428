"""The README stays true to the code: every serve option and every shipped scenario is in it."""

from __future__ import annotations

import argparse

from tests.helpers import REPO
from verifymock.cli import parser
from verifymock.paths import bundled
from verifymock.scenarios import load

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_docs_readme_lists_every_serve_option() -> None:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices["serve"]
    options = [o for action in serve._actions for o in action.option_strings if o.startswith("--") and o != "--help"]
    missing = [o for o in options if f"`{o}" not in README]
    assert missing == []


def test_docs_readme_catalogue_lists_every_scenario_and_number() -> None:
    for scenario_id, scenario in load([bundled("scenarios")]).items():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{scenario_id}` |")), None)
        assert row is not None, f"{scenario_id} is missing from the README catalogue"
        for number in scenario.numbers:
            assert number in row
        assert scenario.summary in row


def test_docs_readme_outcome_catalogue_is_the_generated_one() -> None:
    from verifymock.coverage import markdown

    start, end = "<!-- outcome catalogue: verifymock coverage --catalogue -->\n", "<!-- end of outcome catalogue -->"
    assert start in README and end in README
    assert README.split(start, 1)[1].split(end, 1)[0].strip() == markdown().strip()
