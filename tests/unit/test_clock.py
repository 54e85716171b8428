"""The clock: timers run in order at their own instants; manual time moves only when advanced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from verifymock.clock import LAST_INSTANT, MANUAL_EPOCH, Clock, Timer, parse_mode
from verifymock.errors import ApiError, ConfigError


def _running(clock: Clock, kinds: dict[str, Callable[[Timer], object]]) -> Clock:
    """The clock runs each timer by its kind, as the engine's registry would."""
    clock.fire = lambda timer: kinds[timer.kind](timer)
    return clock


def test_clock_manual_stands_still_until_advanced() -> None:
    clock = Clock("manual")
    assert clock.now() == MANUAL_EPOCH
    asyncio.run(clock.advance(90))
    assert clock.now() == MANUAL_EPOCH + 90
    assert (clock.mode, clock.label) == ("manual", "manual")


def test_clock_advance_runs_timers_in_order_each_at_its_instant() -> None:
    clock = Clock("manual")
    seen: list[tuple[str, float]] = []

    def record(timer: Timer) -> None:
        seen.append((timer.key, clock.now() - MANUAL_EPOCH))
        if timer.args.get("then"):  # a timer that sets another, one second on
            clock.schedule(1, "record", timer.args["then"])

    _running(clock, {"record": record})
    clock.schedule(5, "record", "five")
    clock.schedule(1, "record", "one", {"then": "two"})
    cancelled = clock.schedule(3, "record", "never")
    clock.cancel(cancelled.id)
    clock.schedule(30, "record", "later")
    ran = asyncio.run(clock.advance(10))
    assert seen == [("one", 1), ("two", 2), ("five", 5)]
    assert ran == 3
    assert [(t.key, round(t.due - MANUAL_EPOCH)) for t in clock.pending()] == [("later", 30)]


def test_clock_timers_are_data_and_a_restore_runs_them() -> None:
    clock = Clock("manual")
    clock.schedule(5, "record", "c1", {"digits": "12"})
    clock.cancel(clock.schedule(6, "record", "gone").id)
    stored = [Timer.from_data(t.to_data()) for t in clock.pending()]
    state = clock.export()

    seen: list[tuple[str, dict[str, object]]] = []
    again = _running(Clock("manual"), {"record": lambda timer: seen.append((timer.key, timer.args))})
    again.restore(state, stored)
    asyncio.run(again.advance(10))
    assert seen == [("c1", {"digits": "12"})]
    assert again.schedule(1, "record", "next").seq > stored[0].seq  # numbering goes on


def test_clock_tracks_what_a_store_must_write() -> None:
    clock = Clock("manual")
    _running(clock, {"noop": lambda timer: None})
    clock.tracking = True
    kept, fired, cancelled = (clock.schedule(s, "noop", k) for s, k in ((9, "kept"), (1, "fired"), (2, "cancelled")))
    assert [t.id for t in clock.take_changes()[0]] == [kept.id, fired.id, cancelled.id]
    clock.cancel(cancelled.id)
    asyncio.run(clock.advance(5))
    born_and_gone = clock.schedule(0, "noop", "x")
    clock.cancel(born_and_gone.id)  # never written, so nothing to delete
    assert clock.take_changes() == ([], {fired.id, cancelled.id})


def test_clock_advance_lets_each_timer_settle_before_the_next() -> None:
    clock = Clock("manual")
    order: list[str] = []

    async def settle() -> None:
        order.append("settled")

    clock.settle = settle
    _running(clock, {"append": lambda timer: order.append(timer.key)})
    clock.schedule(1, "append", "a")
    clock.schedule(2, "append", "b")
    clock.schedule(2, "append", "b2")
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
        _running(clock, {"noop": lambda timer: None})
        clock.schedule(1, "noop", "x")
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
        _running(clock, {"set": lambda timer: fired.set()})
        clock.schedule(10, "set", "x")  # ten clock seconds, 10 ms of wall time
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
