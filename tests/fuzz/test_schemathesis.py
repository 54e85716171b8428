"""schemathesis, with every check it has, over every operation of every bundled spec, against the real server."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from tests.helpers import REPO
from verifymock.config import Config
from verifymock.fuzz import config_for
from verifymock.server import Running, serve_in_thread
from verifymock.specs import base_path_of, load_spec, spec_files
from verifymock.vendors.cm import DEFAULT_TOKEN as CM_TOKEN
from verifymock.vendors.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID

FUZZ_KEY = "fuzz-key"
BASIC = base64.b64encode(f"{DEFAULT_CUSTOMER_ID}:{DEFAULT_API_KEY}".encode()).decode()
# valid credentials per spec; schemathesis checks that missing or wrong ones are refused
AUTH = {
    "telesign_voice_verify": {"Authorization": f"Basic {BASIC}"},
    "cm_voice_dtmf": {"X-CM-PRODUCTTOKEN": CM_TOKEN},
}
DEFAULT_AUTH = {"Authorization": f"Bearer {FUZZ_KEY}"}
# CI runs a fixed, repeatable set; VERIFYMOCK_FUZZ_EXAMPLES=N runs N random examples per operation instead
MAX_EXAMPLES = int(os.environ.get("VERIFYMOCK_FUZZ_EXAMPLES", "100"))
REPEATABLE = "VERIFYMOCK_FUZZ_EXAMPLES" not in os.environ
_CONFIGS = tempfile.TemporaryDirectory(prefix="verifymock-fuzz-")  # removed when the test process ends
CONFIGS = Path(_CONFIGS.name)  # each spec's view of verifymock/schemathesis.toml
_fuzzing: dict[str, str | None] = {"spec": None}  # the spec whose cases are being run


def credentials(case: Any, spec: str) -> dict[str, str] | None:
    """A valid key, unless this case deliberately breaks the headers (a missing Authorization must stay missing)."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers is not None and headers.mode == schemathesis.GenerationMode.NEGATIVE:
        return None
    return AUTH.get(spec, DEFAULT_AUTH)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Running]:
    # with a list of valid keys, so schemathesis can check that a wrong key is refused
    with serve_in_thread(Config(port=0, api_keys=[FUZZ_KEY])) as running:
        yield running


def _fuzz_test(name: str) -> Any:
    source = REPO / "specs" / f"{name}.yaml"
    operations = {o.operation_id for o in load_spec(source).operations.values()}
    config = config_for(operations, CONFIGS / f"{name}.toml")
    schema = schemathesis.openapi.from_path(source, config=SchemathesisConfig.from_path(str(config)))
    base_path = base_path_of(schema.raw_schema)

    @schema.parametrize()
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=REPEATABLE,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def test(case: Any, fuzz_server: Running) -> None:
        if _fuzzing["spec"] != name:  # what fuzzing the control API left (faults, bindings) must not reach the next
            httpx.post(f"{fuzz_server.url}/_mock/reset", timeout=30)
            _fuzzing["spec"] = name
        case.call_and_validate(base_url=fuzz_server.url + base_path, headers=credentials(case, name))

    return test


for _path in spec_files([REPO / "specs"]):
    globals()[f"test_fuzz_{_path.stem}"] = _fuzz_test(_path.stem)
