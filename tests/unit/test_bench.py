"""The load benchmark's own logic (its figures are never asserted)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.load import median_run
from tests.helpers import REPO


def test_the_median_run_is_reported_with_its_own_latencies() -> None:
    runs = [{"rps": 900.0, "p99": 9.0}, {"rps": 1200.0, "p99": 3.0}, {"rps": 1000.0, "p99": 5.0}]
    assert median_run(runs) == {"rps": 1000.0, "p99": 5.0}
    assert median_run(runs[:1]) == runs[0]


def test_the_benchmark_documents_its_options() -> None:
    shown = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "load.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--repeat", "--duration", "--connections", "--targets", "--soak"):
        assert option in shown
