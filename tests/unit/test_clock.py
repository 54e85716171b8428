"""The clock: timers run in order at their own instants; manual time moves only when advanced."""

from __future__ import annotations

import asyncio

import pytest

from verifymock.clock import MANUAL_EPOCH, Clock, parse_mode
from verifymock.errors import ConfigError


def test_clock_manual_stands_still_until_advanced() -> None:
    clock = Clock("manual")
    assert clock.now() == MANUAL_EPOCH
    asyncio.run(clock.advance(90))
    assert clock.now() == MANUAL_EPOCH + 90
    assert (clock.mode, clock.label) == ("manual", "manual")


def test_clock_advance_runs_timers_in_order_each_at_its_instant() -> None:
    clock = Clock("manual")
    seen: list[tuple[str, float]] = []

    def record(name: str) -> None:
        seen.append((name, clock.now() - MANUAL_EPOCH))

    clock.call_later(5, lambda: record("five"))
    clock.call_later(1, lambda: (record("one"), clock.call_later(1, lambda: record("two"))))
    cancelled = clock.call_later(3, lambda: record("never"))
    cancelled.cancel()
    clock.call_later(30, lambda: record("later"))
    ran = asyncio.run(clock.advance(10))
    assert seen == [("one", 1), ("two", 2), ("five", 5)]
    assert ran == 3
    assert [round(t.due - MANUAL_EPOCH) for t in clock.pending()] == [30]


def test_clock_advance_lets_each_timer_settle_before_the_next() -> None:
    clock = Clock("manual")
    order: list[str] = []

    async def settle() -> None:
        order.append("settled")

    clock.settle = settle
    clock.call_later(1, lambda: order.append("a"))
    clock.call_later(2, lambda: order.append("b"))
    asyncio.run(clock.advance(5))
    assert order == ["settled", "a", "settled", "b", "settled"]


def test_clock_scaled_runs_timers_in_the_background() -> None:
    async def scenario() -> float:
        clock = Clock("scaled:1000")
        fired = asyncio.Event()
        clock.call_later(10, fired.set)  # ten clock seconds, 10 ms of wall time
        ticking = asyncio.create_task(clock.run_forever())
        try:
            await asyncio.wait_for(fired.wait(), timeout=5)
        finally:
            ticking.cancel()
        return clock.scale

    assert asyncio.run(scenario()) == 1000


@pytest.mark.parametrize("text", ["fast", "scaled:", "scaled:0", "scaled:-2", "manual:2"])
def test_clock_refuses_unknown_modes(text: str) -> None:
    with pytest.raises(ConfigError, match="scaled:N"):
        parse_mode(text)


def test_clock_modes_parse() -> None:
    assert parse_mode("real") == ("real", 1.0)
    assert parse_mode("scaled:60") == ("scaled", 60.0)
    assert Clock("scaled:2.5").label == "scaled:2.5"
