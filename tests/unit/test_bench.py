"""The load benchmark's own logic (its figures are never asserted)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from benchmarks.load import median_run, steal_share, steal_summary, steal_ticks
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


STAT = """cpu  1431473 1808 214825 3406392 9319 0 92448 20791 0 0
cpu0 738848 903 81601 1708299 1499 0 65677 7129 0 0
cpu1 692625 905 133224 1698093 7819 0 26771 13662 0 0
intr 1 2 3
"""


def test_steal_is_read_per_core_and_given_as_a_share_of_the_run() -> None:
    before = steal_ticks(STAT)
    assert before == {0: 7129, 1: 13662}
    ticks = os.sysconf("SC_CLK_TCK")
    after = {0: 7129 + ticks // 2, 1: 13662}
    assert steal_share(before, after, 0, 10.0) == 100.0 * (ticks // 2) / ticks / 10.0
    assert steal_share(before, after, 1, 10.0) == 0.0
    assert math.isnan(steal_share({}, after, 0, 10.0))  # a kernel without the figure


def test_the_steal_summary_gives_median_and_worst_and_skips_unknown_figures() -> None:
    runs = [{"steal_server": share, "steal_load": float("nan")} for share in (0.5, 9.0, 1.0)]
    summary = steal_summary(runs)
    assert "server core median 1.0%, worst 9.0%" in summary
    assert "wrk core" not in summary
    assert steal_summary([]) == "CPU steal: not reported by this kernel"
