"""The clock: timers run in order at their own instants; manual time moves only when advanced."""

from __future__ import annotations

import asyncio

import pytest

from verifymock.clock import LAST_INSTANT, MANUAL_EPOCH, Clock, parse_mode
from verifymock.errors import ApiError, ConfigError


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
    clock.call_later(2, lambda: order.append("b2"))
    asyncio.run(clock.advance(5))
    # what each timer caused is settled before the next runs; nothing is awaited before the first
    assert order == ["a", "settled", "b", "settled", "b2", "settled"]


def test_clock_refuses_a_second_advance_while_one_runs() -> None:
    async def scenario() -> tuple[int, str]:
        clock = Clock("manual")
        release = asyncio.Event()

        async def settle() -> None:
            await release.wait()

        clock.settle = settle
        clock.call_later(1, lambda: None)
        first = asyncio.create_task(clock.advance(6))
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as refused:
            await clock.advance(100)
        release.set()
        await first
        return round(clock.now() - MANUAL_EPOCH), refused.value.problem.value

    assert asyncio.run(scenario()) == (6, "conflict")


def test_clock_refuses_to_pass_what_a_date_can_hold() -> None:
    clock = Clock("manual")
    with pytest.raises(ApiError, match="cannot go past"):
        asyncio.run(clock.advance(LAST_INSTANT - clock.now() + 1))
    assert clock.now() == MANUAL_EPOCH
    asyncio.run(clock.advance(LAST_INSTANT - clock.now()))
    assert clock.now_datetime().year == 9998


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


@pytest.mark.parametrize("text", ["fast", "scaled:", "scaled:0", "scaled:-2", "manual:2", "scaled:99999999999"])
def test_clock_refuses_unknown_modes(text: str) -> None:
    with pytest.raises(ConfigError, match="scaled:N"):
        parse_mode(text)


def test_clock_modes_parse() -> None:
    assert parse_mode("real") == ("real", 1.0)
    assert parse_mode("scaled:60") == ("scaled", 60.0)
    assert Clock("scaled:2.5").label == "scaled:2.5"
