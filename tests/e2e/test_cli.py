"""`verifymock` as a user runs it: a real process, real sockets, real exit codes."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import PROFILE_BODY, TELNYX_AUTH, VERIFYMOCK, build_wheel, running, write_spec


def test_cli_serves_bundled_specs_and_logs_one_line_per_request(tmp_path: Path) -> None:
    with running([], cwd=tmp_path) as (url, process):
        assert httpx.get(f"{url}/_mock/health").json() == {"status": "ok"}
        profile = httpx.post(f"{url}/v2/verify_profiles", json=PROFILE_BODY, headers=TELNYX_AUTH).json()["data"]
        created = httpx.post(
            f"{url}/v2/verifications/call",
            json={"phone_number": "+13035551234", "verify_profile_id": profile["id"]},
            headers=TELNYX_AUTH,
        )
        assert created.status_code == 200
        process.terminate()
        output = process.communicate(timeout=10)[0]
    lines = [line for line in output.splitlines() if "verifymock.access" in line]
    assert sum("POST /v2/verifications/call CreateVerificationCall 200" in line for line in lines) == 1
    assert lines[-1].endswith("scenario=default")
    assert "POST /v2/verify_profiles CreateVerifyProfile 200" in lines[-2]
    assert all("GET /_mock/health GetHealth 200" in line for line in lines[:-2])  # the start-up probes and ours


def test_cli_serves_a_user_specs_folder(tmp_path: Path) -> None:
    specs = tmp_path / "mine"
    specs.mkdir()
    write_spec(
        specs,
        "hello",
        {
            "openapi": "3.1.0",
            "info": {"title": "hello", "version": "1"},
            "servers": [{"url": "/hello"}],
            "paths": {
                "/greeting": {
                    "get": {
                        "responses": {
                            "200": {"description": "ok", "content": {"application/json": {"example": {"text": "hi"}}}}
                        }
                    }
                }
            },
        },
    )
    with running(["--specs", str(specs)], cwd=tmp_path) as (url, _):
        assert httpx.get(f"{url}/hello/greeting").json() == {"text": "hi"}
        assert httpx.get(f"{url}/_mock/health").status_code == 200


def test_cli_refuses_a_public_bind_without_control_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [*VERIFYMOCK, "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--control-token" in result.stderr


def test_cli_reports_a_bad_spec_with_file_and_pointer(tmp_path: Path) -> None:
    specs = tmp_path / "bad"
    specs.mkdir()
    path = write_spec(
        specs,
        "broken",
        {
            "openapi": "3.1.0",
            "info": {"title": "b", "version": "1"},
            "components": {"schemas": {"X": {"type": "array", "prefixItems": [{"type": "string"}]}}},
        },
    )
    result = subprocess.run(
        [*VERIFYMOCK, "serve", "--specs", str(specs), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{path} at /components/schemas/X/prefixItems" in result.stderr


def test_cli_help_names_every_serve_option() -> None:
    result = subprocess.run([*VERIFYMOCK, "serve", "--help"], capture_output=True, text=True, timeout=30)
    for option in ("--host", "--port", "--specs", "--handlers", "--scenarios", "--control-token", "--no-self-check"):
        assert option in result.stdout


def test_cli_installed_wheel_serves_bundled_files_from_any_directory(tmp_path: Path) -> None:
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    wheel = build_wheel(wheels)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "verifymock/_bundled/specs/telnyx_verify.yaml" in names
    assert "verifymock/_bundled/handlers/control.py" in names
    assert "verifymock = verifymock.cli:main" in entry_points
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    with running([], cwd=elsewhere, env=env) as (url, _):
        specs = httpx.get(f"{url}/_mock/specs").json()["data"]
    assert {s["name"] for s in specs} >= {"control", "telnyx_verify"}
    assert all(s["source"].startswith(str(target)) for s in specs)


def test_cli_json_log_has_one_object_per_request(tmp_path: Path) -> None:
    import json

    with running(["--log-format", "json"], cwd=tmp_path) as (url, process):
        httpx.post(f"{url}/v2/verify_profiles", json=PROFILE_BODY, headers={**TELNYX_AUTH, "X-Mock-Scenario": "x"})
        process.terminate()
        output = process.communicate(timeout=10)[0]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines[-1] == {
        **lines[-1],
        "method": "POST",
        "path": "/v2/verify_profiles",
        "operation_id": "CreateVerifyProfile",
        "status": 200,
    }
    assert set(lines[-1]) == {"method", "path", "operation_id", "status", "ms", "scenario"}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--retain", "-1"], "--retain"),
        (["--retain", "0"], "--retain"),
        (["--journal-size", "-1"], "--journal-size"),
        (["--journal-bytes", "-5"], "--journal-bytes"),
        (["--max-body-bytes", "0"], "--max-body-bytes"),
        (["--telnyx-signing-key", "AAAA"], "--telnyx-signing-key"),
        (["--telnyx-signing-key", "not base64!"], "--telnyx-signing-key"),
        (["--telesign-customer", "CUST:notbase64!"], "--telesign-customer"),
        (["--clock", "scaled:99999999999"], "--clock"),
        (["--telesign-date-tolerance", "-1"], "--telesign-date-tolerance"),
    ],
)
def test_cli_refuses_a_bad_flag_in_one_line(tmp_path: Path, flags: list[str], named: str) -> None:
    result = subprocess.run(
        [*VERIFYMOCK, "serve", "--port", "0", *flags], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr


DAMAGED = "move the damaged one aside"


@pytest.mark.parametrize(
    ("damage", "fix"),
    [
        ("garbage", DAMAGED),
        ("truncated", DAMAGED),
        ("record rows", DAMAGED),
        ("journal rows", DAMAGED),
        ("another program's", "give verifymock a file of its own"),
        ("read-only", "pass a writable file"),
        ("full disk", "pass a file on another disk"),
    ],
)
def test_cli_refuses_a_damaged_state_file_in_one_line(tmp_path: Path, damage: str, fix: str) -> None:
    db = tmp_path / "mock.db"
    with running(["--state", f"sqlite:{db}", "--clock", "manual", "--quiet"], cwd=tmp_path) as (url, _):
        assert httpx.put(f"{url}/_mock/bindings/+13125550100", json={"scenario": "interactive"}).status_code == 200
    if damage == "garbage":
        data = bytearray(db.read_bytes())
        data[4096:8192] = os.urandom(4096)  # the pages after the header
        db.write_bytes(bytes(data))
    elif damage == "truncated":  # a copy cut short
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    elif damage == "record rows":
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE records SET data = '{not json'")
    elif damage == "journal rows":
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE journal SET headers = x'00ff00ff'")
    elif damage == "another program's":  # a database verifymock did not write
        db.unlink()
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    try:
        if damage == "read-only":
            _make_read_only(db)
        result = subprocess.run(
            [*VERIFYMOCK, "serve", "--port", "0", "--state", f"sqlite:{db}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            # as on a full disk: a write past any file's first KB (the WAL's first page) is refused (EFBIG)
            preexec_fn=_no_writes_past(1024) if damage == "full disk" else None,
        )
    finally:
        if damage == "read-only" and os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(db)], check=True)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(db) in lines[0] and lines[0].endswith(f"{fix})"), result.stderr


def _no_writes_past(size: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return limit


def _make_read_only(path: Path) -> None:
    """Read-only even to root, whom file modes do not stop: the immutable attribute (ext4, xfs, btrfs)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    marked = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    assert marked.returncode == 0, f"the test needs chattr +i on {path.parent}: {marked.stderr}"


def test_cli_runs_with_only_its_declared_dependencies(tmp_path: Path) -> None:
    """A plain `pip install` of the wheel, nothing else: every command but `fuzz` (which says to install the test
    extra) must run on what pyproject.toml declares."""
    wheels, fresh, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    wheel = build_wheel(wheels)
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = str(fresh / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)], check=True, timeout=600
    )
    command = [str(fresh / "bin" / "verifymock")]
    helped = subprocess.run([*command, "--help"], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr
    validated = subprocess.run([*command, "validate"], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with running(["--quiet"], cwd=elsewhere, env=env, command=command) as (url, _):
        assert httpx.get(f"{url}/_mock/health").json() == {"status": "ok"}


def test_cli_coverage_prints_the_report_and_holds_ci_to_a_bar(tmp_path: Path) -> None:
    def coverage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VERIFYMOCK, "coverage", "--url", url, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    with running(["--clock", "manual", "--quiet"], cwd=tmp_path) as (url, _):
        assert httpx.get(f"{url}/v2/verify_profiles").status_code == 401
        table = coverage(url)
        assert table.returncode == 0, table.stderr
        assert "  [x] telnyx.error.401" in table.stdout and "  [ ] telnyx.error.404" in table.stdout
        assert table.stdout.rstrip().endswith("Outcome coverage: 1 of 89 (1.1%)")
        as_json = coverage(url, "--json")
        assert json.loads(as_json.stdout)["reached"] == 1
        assert coverage(url, "--require", "telnyx.error.401").returncode == 0
        missing = coverage(url, "--require", "telnyx.error.401", "telnyx.dtmf.")
        assert missing.returncode == 1
        assert "required outcomes not reached: telnyx.dtmf." in missing.stderr
        under = coverage(url, "--fail-under", "50")
        assert (under.returncode, under.stderr.strip()) == (1, "verifymock coverage: 1.1% is under 50.0%")
    gone = coverage(url)
    assert gone.returncode == 2 and "cannot reach" in gone.stderr
    catalogue = coverage(url, "--catalogue")
    assert catalogue.returncode == 0 and "| `webhooks.forged.accepted` |" in catalogue.stdout
