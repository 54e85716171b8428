"""The server process's collector policy: survivors of a collection are frozen, a sweep frees their cycles."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import pytest
import uvicorn

from verifymock import server
from verifymock.collector import Collector
from verifymock.config import Config


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_survivors_of_a_collection_leave_the_collectors_walks_until_a_sweep_frees_their_cycles() -> None:
    collector = Collector(sweep_seconds=3600)
    with collector.installed():
        kept = Node()
        gc.collect(0)
        assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
        assert gc.get_freeze_count() > 0

        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        gc.collect(0)  # the cycle survives (it is still referenced) and is frozen with the rest
        del a, b
        gc.collect()
        assert alive() is not None  # garbage now, but out of sight until the sweep

        collector.sweep()
        assert alive() is None
        assert collector.sweeps == 1

        young = cycle()  # a cycle that dies before any collection sees it is freed by the next one
        gc.collect(0)
        assert young() is None
    assert collector._after not in gc.callbacks
    assert gc.get_freeze_count() == 0


def test_sweeps_run_on_their_own_in_the_background() -> None:
    collector = Collector(sweep_seconds=0.05, share=1.0)  # (a sweep of this test process's heap is not put off)
    with collector.installed():
        deadline = time.monotonic() + 5
        while collector.sweeps < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.sweeps >= 2


def test_a_costly_sweep_puts_off_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweeps take at most `share` of the time: one that took 50 ms at a share of 10% is followed by 0.5 s without
    one, where the base wait (10 ms) would have given several."""
    collect = gc.collect

    def slow_collect(*args: Any) -> int:
        time.sleep(0.05)
        return collect(*args)

    collector = Collector(sweep_seconds=0.01, share=0.1)
    monkeypatch.setattr(gc, "collect", slow_collect)
    with collector.installed():
        deadline = time.monotonic() + 5
        while collector.sweeps < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert collector.sweeps == 1
        time.sleep(0.3)
        assert collector.sweeps == 1


def test_serve_builds_the_app_with_the_collector_off_and_serves_with_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, bool] = {}
    build = server.create_app

    def create_app(config: Config) -> Any:
        seen["building"] = gc.isenabled()
        return build(config)

    def run(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        seen["serving"] = gc.isenabled()

    monkeypatch.setattr(server, "create_app", create_app)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    try:
        server.serve(Config(port=0), log_level="warning")
    finally:
        gc.enable()
    assert seen == {"building": False, "serving": True}
