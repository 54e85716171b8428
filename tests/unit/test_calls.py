"""Placing a call: the timers a scripted callee sets, and the states they lead to on a manual clock."""

from __future__ import annotations

import asyncio

import pytest

from verifymock.calls import RING_TIMEOUT, Phones
from verifymock.clock import Clock
from verifymock.scenarios import Callee, Scenario


class _Flow:
    def answered(self, call: object) -> None: ...
    def pressed(self, call: object, digit: str) -> None: ...
    def ended(self, call: object, reason: str) -> None: ...


def _place(outcome: str, after: float, ring_timeout: float = RING_TIMEOUT) -> tuple[Phones, Clock, str]:
    clock = Clock("manual")
    phones = Phones(clock)
    scenario = Scenario(id=f"test/{outcome}", summary="", callee=Callee(outcome=outcome, after=after))
    call = phones.place_call(
        vendor="telnyx",
        kind="call",
        phone_number="+13035550100",
        caller_id="+13035550199",
        scenario=scenario,
        flow=_Flow(),
        ring_timeout=ring_timeout,
    )
    return phones, clock, call.id


@pytest.mark.parametrize(
    ("outcome", "after", "label", "final"),
    [
        ("answers", 2, "answer", "in_progress"),
        ("busy", 3, "busy", "busy"),
        ("unreachable", 1, "unreachable", "failed"),
        ("declines", 4, "declines", "declined"),
        ("voicemail", 5, "voicemail", "voicemail"),
        ("declines", RING_TIMEOUT + 10, "declines", "declined"),  # still ringing at the timeout: it ends as scripted
        ("answers", RING_TIMEOUT + 10, "ring timeout", "no_answer"),  # would answer too late
        ("never_answers", 2, "ring timeout", "no_answer"),
        ("interactive", 2, "ring timeout", "no_answer"),  # unless someone answers through the handset API
    ],
)
def test_one_timer_ends_the_ringing_and_it_leads_to_the_scripted_state(
    outcome: str, after: float, label: str, final: str
) -> None:
    phones, clock, call_id = _place(outcome, after)
    assert [timer.label.split(" ", 2)[-1] for timer in clock.pending()] == [label]

    asyncio.run(clock.advance(RING_TIMEOUT + 60))

    assert phones.calls[0].state == final
    assert phones.calls[0].id == call_id


def test_a_call_answered_by_hand_is_not_rung_out() -> None:
    phones, clock, _ = _place("interactive", 2)
    asyncio.run(clock.advance(5))
    phones.answer(phones.calls[0])
    asyncio.run(clock.advance(RING_TIMEOUT * 2))
    assert phones.calls[0].state == "in_progress"
