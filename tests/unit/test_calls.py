"""Placing a call: the timers a scripted callee sets, and the states they lead to on a manual clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from verifymock.calls import RING_TIMEOUT, Phones
from verifymock.clock import Clock
from verifymock.registry import TIMERS
from verifymock.scenarios import Callee, Scenario


def _place(outcome: str, after: float, ring_timeout: float = RING_TIMEOUT) -> tuple[Phones, Clock, str]:
    clock = Clock("manual")
    phones = Phones(clock)
    engine = SimpleNamespace(phones=phones)  # what the timer functions read of the engine
    clock.fire = lambda timer: TIMERS[timer.kind][0](engine, timer)  # type: ignore[arg-type]
    scenario = Scenario(id=f"test/{outcome}", summary="", callee=Callee(outcome=outcome, after=after))
    call = phones.place_call(
        vendor="telnyx",
        kind="call",
        phone_number="+13035550100",
        caller_id="+13035550199",
        scenario=scenario,
        flow=None,
        ring_timeout=ring_timeout,
    )
    return phones, clock, call.id


@pytest.mark.parametrize(
    ("outcome", "after", "label", "final"),
    [
        ("answers", 2, "call.answer", "in_progress"),
        ("busy", 3, "call.end busy", "busy"),
        ("unreachable", 1, "call.end failed", "failed"),
        ("declines", 4, "call.end declined", "declined"),
        ("voicemail", 5, "call.end voicemail", "voicemail"),
        ("declines", RING_TIMEOUT + 10, "call.end declined", "declined"),  # still ringing at the timeout: as scripted
        ("answers", RING_TIMEOUT + 10, "call.ring_out", "no_answer"),  # would answer too late
        ("never_answers", 2, "call.ring_out", "no_answer"),
        ("interactive", 2, "call.ring_out", "no_answer"),  # unless someone answers through the handset API
    ],
)
def test_one_timer_ends_the_ringing_and_it_leads_to_the_scripted_state(
    outcome: str, after: float, label: str, final: str
) -> None:
    phones, clock, call_id = _place(outcome, after)
    assert [f"{t.kind} {t.args.get('state', '')}".strip() for t in clock.pending()] == [label]
    assert all(t.key == call_id for t in clock.pending())

    asyncio.run(clock.advance(RING_TIMEOUT + 60))

    assert phones.calls[0].state == final
    assert phones.calls[0].id == call_id


def test_a_call_answered_by_hand_is_not_rung_out() -> None:
    phones, clock, _ = _place("interactive", 2)
    asyncio.run(clock.advance(5))
    phones.answer(phones.calls[0])
    asyncio.run(clock.advance(RING_TIMEOUT * 2))
    assert phones.calls[0].state == "in_progress"
