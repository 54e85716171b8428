"""The `verifymock` pytest fixture, as a consumer's test suite uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from tests.helpers import REPO, build_wheel


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("```python\n# test_verification.py\n", 1)[1].split("```", 1)[0]


def run_pytest(python: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pytest_plugin_readme_example_passes_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheel = build_wheel(wheels)
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = str(fresh / "bin" / "python")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
            "telnyx[webhooks]",
            "pytest",
        ],
        check=True,
        timeout=600,
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_verification.py").write_text(readme_example(), encoding="utf-8")
    result = run_pytest(python, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_pytest_plugin_assert_called_shows_what_was_received(tmp_path: Path) -> None:
    (tmp_path / "test_miss.py").write_text(
        "import httpx\n\n"
        "def test_miss(verifymock):\n"
        "    httpx.post(verifymock.base_url('telnyx') + '/verify_profiles', json={'name': 'Acme'},\n"
        "               headers={'Authorization': 'Bearer k'})\n"
        "    verifymock.assert_called('CreateVerifyProfile', name='Other')\n",
        encoding="utf-8",
    )
    result = run_pytest(sys.executable, tmp_path)
    assert result.returncode == 1
    assert "no CreateVerifyProfile request with {'name': 'Other'}; received instead:" in result.stdout
    assert "POST /v2/verify_profiles (CreateVerifyProfile) -> 200: {'name': 'Acme'}" in result.stdout


def test_pytest_plugin_each_test_starts_from_a_reset(tmp_path: Path) -> None:
    (tmp_path / "test_reset.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('round', [1, 2])\n"
        "def test_clean(verifymock, round):\n"
        "    assert verifymock.journal(vendor='telnyx') == []\n"
        "    verifymock.use_scenario('+13035551234', 'interactive')\n"
        "    verifymock.advance(60)\n"
        "    assert verifymock.control('GET', '/bindings')['data'] == [\n"
        "        {'phone_number': '+13035551234', 'scenario': 'interactive'}]\n",
        encoding="utf-8",
    )
    result = run_pytest(sys.executable, tmp_path)
    assert result.returncode == 0, result.stdout
    assert "2 passed" in result.stdout
