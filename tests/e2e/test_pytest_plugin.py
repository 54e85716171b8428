"""The `verifymock` pytest fixture, as a consumer's test suite uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

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


CONSUMER_SUITE = """
import httpx

AUTH = {"Authorization": "Bearer k"}


def profile(verifymock):
    body = {"name": "Acme", "webhook_url": verifymock.webhook_url + "/telnyx", "dtmf_confirm": {}}
    response = httpx.post(verifymock.base_url("telnyx") + "/verify_profiles", json=body, headers=AUTH)
    return response.json()["data"]["id"]


def dtmf_confirm(verifymock, number):
    body = {"phone_number": number, "verify_profile_id": profile(verifymock)}
    response = httpx.post(verifymock.base_url("telnyx") + "/verifications/dtmf_confirm", json=body, headers=AUTH)
    assert response.status_code == 200
    verifymock.advance(60)


def test_pressing_1_confirms(verifymock):
    dtmf_confirm(verifymock, "+15005550101")
    assert [w.body["data"]["payload"]["status"] for w in verifymock.webhooks] == ["accepted"]


def test_a_forged_webhook_is_recorded(verifymock):
    dtmf_confirm(verifymock, "+15005550401")
    assert [w.signature_valid for w in verifymock.webhooks] == [False]


def test_no_api_key(verifymock):
    assert httpx.get(verifymock.base_url("telnyx") + "/verify_profiles").status_code == 401
"""


def test_pytest_plugin_reports_exactly_the_outcomes_a_suite_reached(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_consumer=CONSUMER_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--verifymock-coverage=coverage.json")
    result.assert_outcomes(passed=3)
    report = json.loads((pytester.path / "coverage.json").read_text(encoding="utf-8"))
    tests = {row["name"]: row["tests"] for v in report["vendors"] for row in v["outcomes"] if row["reached"]}
    pressing, forged, no_key = (f"test_consumer.py::{name}" for name in CONSUMER_TESTS)
    assert tests == {
        "telnyx.channel.dtmf_confirm": [forged, pressing],
        "telnyx.dtmf.accepted": [forged, pressing],  # the bad-signature scenario presses 1 too
        "webhooks.delivered_first": [forged, pressing],
        "webhooks.forged.sent": [forged],
        "telnyx.error.401": [no_key],
    }
    # the plugin's own receiver only records, so its 200 to the forged webhook is no finding against the consumer
    assert report["findings"] == []
    result.stdout.fnmatch_lines(
        ["*verifymock outcome coverage*", "*[[]x[]] telnyx.dtmf.accepted*", "*Outcome coverage: 5 of *"]
    )


CONSUMER_TESTS = ("test_pressing_1_confirms", "test_a_forged_webhook_is_recorded", "test_no_api_key")


def test_pytest_plugin_fails_the_session_when_a_required_outcome_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_consumer=CONSUMER_SUITE)
    met = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--verifymock-require=telnyx.dtmf.accepted,telnyx.error."
    )
    assert (
        met.ret == pytest.ExitCode.TESTS_FAILED
    )  # telnyx.error. asks for every error outcome, and 401 is the only one
    met.stdout.fnmatch_lines(["*required outcomes not reached: telnyx.error.*"])
    missing = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--verifymock-require=telnyx.dtmf.accepted,telnyx.dtmf.invalid"
    )
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    missing.assert_outcomes(passed=3)
    missing.stdout.fnmatch_lines(["*required outcomes not reached: telnyx.dtmf.invalid*"])
    reached = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--verifymock-require=telnyx.dtmf.accepted,webhooks.forged.sent,telnyx.error.401"
    )
    assert reached.ret == pytest.ExitCode.OK
