"""`verifymock fuzz`: schemathesis, every check, over every operation of every spec the server serves.

Runs schemathesis' own command line per spec (its progress display included) against a server you name with
--url, or one started in this process, then prints one summary table of every operation. Exit code 1 on any
finding. The mock is reset before each spec: fuzzing the control API leaves faults and bindings behind (a fault
that closes every connection, say), which would otherwise break the specs fuzzed after it. Then a verify profile,
a verification and a ringing call are made, and fuzz_hooks.py points about half the generated requests at them.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ElementTree
from contextlib import ExitStack
from pathlib import Path

import httpx

from verifymock.config import Config
from verifymock.engine import Mock
from verifymock.vendors.cm import DEFAULT_TOKEN
from verifymock.vendors.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID

CONFIG = Path(__file__).with_name("schemathesis.toml")
FUZZ_KEY = "verifymock-fuzz-key"


def credentials(vendor: str) -> list[str]:
    """Valid credentials per vendor, as the default configuration knows them; schemathesis tests wrong ones."""
    if vendor == "telesign":
        basic = base64.b64encode(f"{DEFAULT_CUSTOMER_ID}:{DEFAULT_API_KEY}".encode()).decode()
        return [f"Authorization: Basic {basic}"]
    if vendor == "cm":
        return [f"X-CM-PRODUCTTOKEN: {DEFAULT_TOKEN}"]
    return [f"Authorization: Bearer {FUZZ_KEY}"]


def run(config: Config, url: str | None, max_examples: int) -> int:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(st).exists():
        print("verifymock fuzz needs schemathesis: pip install 'verifymock[test]'", file=sys.stderr)
        return 2
    from verifymock.fuzz_hooks import seed  # (it needs schemathesis, which is there now)

    mounted = Mock(config).mounted  # also reports every start-up problem before anything runs
    rows: list[tuple[str, str, str]] = []
    failed = False
    with ExitStack() as stack, tempfile.TemporaryDirectory() as reports:
        if url is None:
            from verifymock.server import serve_in_thread

            config.port, config.access_log = 0, False
            config.api_keys = [FUZZ_KEY]  # so schemathesis can check that a wrong key is refused
            config.allow_callback_hosts = ["127.0.0.1", "localhost"]  # generated URLs must not leave the machine
            url = stack.enter_context(serve_in_thread(config)).url
        for m in mounted:
            junit = Path(reports) / f"{m.spec.name}.xml"
            command = [
                st,
                "--config-file",
                str(config_for(set(m.spec.operations), Path(reports) / f"{m.spec.name}.toml")),
                "run",
                str(m.spec.source),
                "--url",
                url.rstrip("/") + m.spec.base_path,
                "--checks",
                "all",
                "--max-examples",
                str(max_examples),
                "--generation-deterministic",
                "--report",
                "junit",
                "--report-junit-path",
                str(junit),
            ]
            for header in credentials(m.vendor):
                command += ["--header", header]
            print(f"\n== {m.spec.name} ({m.spec.source}) ==", flush=True)
            root = url.rstrip("/")
            httpx.post(root + "/_mock/reset", timeout=30)
            seeded = seed(root, credentials("telnyx")[0].partition(": ")[2])
            env = {**os.environ, **seeded, "SCHEMATHESIS_HOOKS": "verifymock.fuzz_hooks"}
            failed |= subprocess.call(command, env=env) != 0
            rows += _rows(m.spec.name, junit)
    _table(rows)
    return 1 if failed else 0


def config_for(operation_ids: set[str], path: Path) -> Path:
    """The fuzz configuration for one spec: its `[[operations]]` tables kept only where this spec has the
    operation, so that the others do not warn of a filter that matches nothing."""
    head, *tables = CONFIG.read_text(encoding="utf-8").split("\n[[operations]]\n")
    kept = [t for t in tables if tomllib.loads(t).get("include-operation-id") in operation_ids]
    path.write_text("\n[[operations]]\n".join([head, *kept]), encoding="utf-8")
    return path


def _rows(spec: str, junit: Path) -> list[tuple[str, str, str]]:
    if not junit.exists():
        return [(spec, "(schemathesis did not run)", "ERROR")]
    rows = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        problems = len(case.findall("failure")) + len(case.findall("error"))
        rows.append((spec, case.get("name", "?"), f"FAILED ({problems})" if problems else "ok"))
    return rows


def _table(rows: list[tuple[str, str, str]]) -> None:
    width = max((len(r[0]) for r in rows), default=4), max((len(r[1]) for r in rows), default=9)
    print(f"\n{'spec':<{width[0]}}  {'operation':<{width[1]}}  result")
    for spec, operation, result in rows:
        print(f"{spec:<{width[0]}}  {operation:<{width[1]}}  {result}")
    bad = sum(r[2] != "ok" for r in rows)
    print(f"\n{len(rows) - bad} passed, {bad} failed")
