"""`verifymock fuzz` and `verifymock validate` as CI runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import VERIFYMOCK, write_spec

THING = {
    "openapi": "3.1.0",
    "info": {"title": "thing", "version": "1"},
    "servers": [{"url": "/thing"}],
    "paths": {
        "/count": {
            "get": {
                "operationId": "GetCount",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["count"],
                                    "properties": {"count": {"type": "integer"}},
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VERIFYMOCK, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_fuzz_cli_bundled_specs_report_nothing(tmp_path: Path) -> None:
    result = run("fuzz", "--max-examples", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "telnyx_verify" in result.stdout and "POST /verifications/call" in result.stdout
    assert result.stdout.rstrip().endswith(", 0 failed")


def test_fuzz_cli_finds_a_handler_that_returns_the_wrong_type(tmp_path: Path) -> None:
    specs, handlers = tmp_path / "specs", tmp_path / "handlers"
    specs.mkdir(), handlers.mkdir()
    write_spec(specs, "thing", THING)
    (handlers / "thing.py").write_text("def get_count():\n    return {'count': 'many'}\n", encoding="utf-8")
    result = run(
        "fuzz", "--no-bundled", "--specs", str(specs), "--handlers", str(handlers), "--max-examples", "5", cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "GET /count" in result.stdout and "FAILED" in result.stdout

    (handlers / "thing.py").write_text("def get_count():\n    return {'count': 3}\n", encoding="utf-8")
    fixed = run(
        "fuzz", "--no-bundled", "--specs", str(specs), "--handlers", str(handlers), "--max-examples", "5", cwd=tmp_path
    )
    assert fixed.returncode == 0, fixed.stdout[-3000:]


def test_validate_cli_reports_a_broken_scenario_with_file_key_and_fix(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios" / "acme"
    scenarios.mkdir(parents=True)
    broken = scenarios / "broken.yaml"
    broken.write_text("summary: x\ncallee:\n  outcome: answers\n  at: 3\n", encoding="utf-8")
    result = run("validate", "--scenarios", str(tmp_path / "scenarios"), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{broken} at callee: unknown key `at` (expected one of: after, hangs_up_after, outcome, presses)" in (
        result.stdout
    )


def test_validate_cli_reports_spec_and_handler_problems(tmp_path: Path) -> None:
    specs, handlers = tmp_path / "specs", tmp_path / "handlers"
    specs.mkdir(), handlers.mkdir()
    write_spec(
        specs,
        "thing",
        {
            **THING,
            "paths": {
                "/count": {"get": {**THING["paths"]["/count"]["get"], "operationId": "GetCount"}},
                "/other": {"get": {"operationId": "GetOther", "responses": {"200": {"description": "ok"}}}},
            },
        },
    )
    (handlers / "thing.py").write_text("def get_count():\n    return {'count': 1}\n", encoding="utf-8")
    write_spec(specs, "tuple", {**THING, "components": {"schemas": {"T": {"prefixItems": [{"type": "string"}]}}}})
    result = run("validate", "--no-bundled", "--specs", str(specs), "--handlers", str(handlers), cwd=tmp_path)
    assert result.returncode == 1
    assert "at get_other: no handler for GetOther (define get_other() or list 'GetOther' in GENERIC)" in result.stdout
    assert "tuple.yaml at /components/schemas/T/prefixItems" in result.stdout


def test_validate_cli_bundled_files_are_clean(tmp_path: Path) -> None:
    result = run("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("ok: ")
