"""Simulated phone calls and messages, and the virtual handset of each phone number.

A call rings, is answered or not, plays prompts, collects keypresses and hangs up. What the callee does comes
from the scenario (scripted on the clock) or from the handset API (a person or a test). What the vendor does
about it lives in a `CallFlow`: one per vendor product, so the same callee behaves correctly against each.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from verifymock.clock import Clock, Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_id
from verifymock.scenarios import Scenario

RING_TIMEOUT = 30.0  # seconds a call rings before it counts as not answered
# How long a prompt plays, from its text: speech at 150 words a minute (each digit of a spoken code is a word), and a
# second at least. A wait for a key starts when its prompt ends; keys pressed while it plays count (barge-in).
WORDS_PER_MINUTE = 150


def speaking_time(text: str) -> float:
    return max(1.0, len(text.split()) * 60.0 / WORDS_PER_MINUTE)


LIVE = ("ringing", "in_progress")
# scripted outcomes that end a ringing call, and the end reason each gives it
_ENDS = {"busy": "busy", "unreachable": "failed", "declines": "declined", "voicemail": "voicemail"}


class CallFlow(Protocol):
    """A vendor's rules for one call. Every method is called on the event loop, at clock time."""

    def answered(self, call: Call) -> None: ...
    def pressed(self, call: Call, digit: str) -> None: ...
    def ended(self, call: Call, reason: str) -> None: ...


@dataclass
class Call:
    id: str
    vendor: str
    kind: str  # what the vendor placed it for, e.g. "dtmf_confirm"
    phone_number: str
    caller_id: str
    scenario: str
    started_at: str
    flow: CallFlow | None = None
    # ringing → in_progress → completed, or no_answer / busy / failed / declined / voicemail / blocked
    state: str = "ringing"
    answered_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    prompts: list[str] = field(default_factory=list)
    prompt_ends: float = 0.0  # clock time the last prompt stops playing
    digits: str = ""
    timers: list[Timer] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        """As the handset API shows it; `playing` is the prompt still being spoken at `now`, if any."""
        playing = self.live and now is not None and now < self.prompt_ends and bool(self.prompts)
        return {
            "id": self.id,
            "vendor": self.vendor,
            "kind": self.kind,
            "phone_number": self.phone_number,
            "caller_id": self.caller_id,
            "scenario": self.scenario,
            "state": self.state,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "prompts": list(self.prompts),
            "playing": self.prompts[-1] if playing else None,
            "digits": self.digits,
        }


@dataclass
class Message:
    id: str
    vendor: str
    channel: str  # sms, whatsapp
    phone_number: str
    sender: str
    text: str
    status: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "vendor": self.vendor,
            "channel": self.channel,
            "phone_number": self.phone_number,
            "from": self.sender,
            "text": self.text,
            "status": self.status,
            "at": self.at,
        }


class Phones:
    """Every call and message, by number, and the callee's side of each call."""

    STATE = ("calls", "messages")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: deque[Call] = deque()
        self.messages: deque[Message] = deque()

    def clear(self) -> None:
        self.calls.clear()
        self.messages.clear()

    # -- what vendors do ------------------------------------------------------------------------------------------

    def place_call(
        self,
        *,
        vendor: str,
        kind: str,
        phone_number: str,
        caller_id: str,
        scenario: Scenario,
        flow: CallFlow,
        ring_timeout: float = RING_TIMEOUT,
        call_id: str | None = None,
    ) -> Call:
        call = Call(
            id=call_id or new_id(),
            vendor=vendor,
            kind=kind,
            phone_number=phone_number,
            caller_id=caller_id,
            scenario=scenario.id,
            started_at=self._stamp(),
            flow=flow,
        )
        self.calls.append(call)
        # one timer for whatever ends the ringing first: a scripted answer or end takes the call out of `ringing`
        # for good, so a ring-out after it would never act (and showed in the clock as a timer that never fires)
        callee = scenario.callee
        ring = min(callee.after, ring_timeout)
        if scenario.blocked is not None:  # the network refuses it before it rings
            self._later(call, 0, lambda: self.finish(call, "blocked"), "blocked")
        elif callee.outcome == "answers" and callee.after < ring_timeout:
            self._later(call, ring, lambda: self._answer_scripted(call, scenario), "answer")
        elif callee.outcome in _ENDS:
            self._later(call, ring, lambda: self.finish(call, _ENDS[callee.outcome]), callee.outcome)
        else:  # nobody picks up (or someone may, through the handset API): it rings out
            self._later(call, ring_timeout, lambda: self._ring_out(call), "ring timeout")
        return call

    def send_message(
        self, *, vendor: str, channel: str, phone_number: str, sender: str, text: str, status: str
    ) -> Message:
        message = Message(new_id(), vendor, channel, phone_number, sender, text, status, self._stamp())
        self.messages.append(message)
        return message

    def flash_call(self, *, vendor: str, phone_number: str, caller_id: str, scenario: Scenario) -> Call:
        """A missed call whose caller id carries the code: it rings once and ends."""
        call = Call(
            new_id(),
            vendor,
            "flashcall",
            phone_number,
            caller_id,
            scenario.id,
            self._stamp(),
            state="completed",
            end_reason="flash",
            ended_at=self._stamp(),
        )
        self.calls.append(call)
        return call

    def play(self, call: Call, text: str, *, after: float = 0.0) -> float:
        """Speak a prompt on the call, `after` seconds from now (once what plays before it has ended); returns the
        seconds until it has been spoken."""
        call.prompts.append(text)
        ends = after + speaking_time(text)
        call.prompt_ends = self.clock.now() + ends
        return ends

    def later(self, call: Call, seconds: float, callback: Any, label: str) -> Timer:
        """A vendor timer that dies with the call."""
        return self._later(call, seconds, callback, label)

    def finish(self, call: Call, state: str) -> None:
        """End a call in one of its final states; the flow hears of it once."""
        if not call.live:
            return
        for timer in call.timers:
            timer.cancel()
        call.timers.clear()
        call.state = "completed" if state in ("hangup", "completed", "callee_hangup") else state
        call.end_reason = state
        call.ended_at = self._stamp()
        if call.flow is not None:
            call.flow.ended(call, state)

    # -- what the callee does (scenario or handset) ----------------------------------------------------------------

    def answer(self, call: Call) -> None:
        if call.state != "ringing":
            raise ApiError(Problem.CONFLICT, f"Call {call.id} is {call.state}, not ringing.")
        call.state = "in_progress"
        call.answered_at = self._stamp()
        if call.flow is not None:
            call.flow.answered(call)

    def press(self, call: Call, digits: str) -> None:
        if call.state != "in_progress":
            raise ApiError(
                Problem.CONFLICT, f"Call {call.id} is {call.state}: keys can only be pressed on a live call."
            )
        for digit in digits:
            if not call.live:
                break
            call.digits += digit
            if call.flow is not None:
                call.flow.pressed(call, digit)

    def hangup(self, call: Call) -> None:
        if not call.live:
            raise ApiError(Problem.CONFLICT, f"Call {call.id} has already ended ({call.state}).")
        self.finish(call, "callee_hangup" if call.state == "in_progress" else "declined")

    def decline(self, call: Call) -> None:
        if call.state != "ringing":
            raise ApiError(Problem.CONFLICT, f"Call {call.id} is {call.state}, not ringing.")
        self.finish(call, "declined")

    def current_call(self, phone_number: str) -> Call:
        for call in reversed(self.calls):
            if call.phone_number == phone_number and call.live:
                return call
        raise ApiError(Problem.NOT_FOUND, f"{phone_number} has no ringing or live call.")

    def handsets(self, extra: list[str]) -> list[dict[str, Any]]:
        """Every number with a call or message (newest activity first), then the `extra` numbers not among them."""
        by_number: dict[str, dict[str, Any]] = {}
        latest: dict[str, str] = {}
        now = self.clock.now()
        for kind, items in (("calls", self.calls), ("messages", self.messages)):
            for item in items:
                number = item.phone_number
                handset = by_number.setdefault(number, {"phone_number": number, "calls": [], "messages": []})
                handset[kind].append(item.to_json(now) if isinstance(item, Call) else item.to_json())
                stamp = item.started_at if isinstance(item, Call) else item.at
                latest[number] = max(stamp, latest.get(number, ""))
        numbers = sorted(latest, key=lambda n: latest[n], reverse=True)
        numbers += sorted(n for n in set(extra) if n not in latest)
        return [by_number.get(n) or {"phone_number": n, "calls": [], "messages": []} for n in numbers]

    def handset(self, phone_number: str) -> dict[str, Any]:
        return {
            "phone_number": phone_number,
            "calls": [c.to_json(self.clock.now()) for c in self.calls if c.phone_number == phone_number],
            "messages": [m.to_json() for m in self.messages if m.phone_number == phone_number],
        }

    # -- internals -------------------------------------------------------------------------------------------------

    def _answer_scripted(self, call: Call, scenario: Scenario) -> None:
        if call.state != "ringing":
            return
        self.answer(call)
        for press in scenario.callee.presses:
            self._later(call, press.at, lambda digits=press.digits: self._press_scripted(call, digits), "press")
        if scenario.callee.hangs_up_after is not None:
            self._later(call, scenario.callee.hangs_up_after, lambda: self.finish(call, "callee_hangup"), "hangup")

    def _press_scripted(self, call: Call, digits: str) -> None:
        if call.state == "in_progress":
            self.press(call, digits)

    def _ring_out(self, call: Call) -> None:
        if call.state == "ringing":
            self.finish(call, "no_answer")

    def _later(self, call: Call, seconds: float, callback: Any, label: str) -> Timer:
        timer = self.clock.call_later(seconds, callback, f"call {call.id} {label}")
        call.timers.append(timer)
        return timer

    def _stamp(self) -> str:
        return self.clock.now_datetime().isoformat()
