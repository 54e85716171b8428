"""Simulated phone calls and messages, and the virtual handset of each phone number.

A call rings, is answered or not, plays prompts, collects keypresses and hangs up. What the callee does comes
from the scenario (scripted on the clock) or from the handset API (a person or a test). What the vendor does
about it is the call's flow: data in the call (`{"flow": "telnyx.dtmf_confirm", ...}`) and functions registered
under the flow's name, one per vendor product, so the same callee behaves correctly against each. Timers are data
too (see clock.py); the kinds a callee's script sets are registered here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from verifymock.clock import Clock, Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_id
from verifymock.registry import FLOWS, timer
from verifymock.scenarios import Scenario
from verifymock.state.dirty import Dirty

if TYPE_CHECKING:
    from verifymock.engine import Mock

RING_TIMEOUT = 30.0  # seconds a call rings before it counts as not answered
# How long a prompt plays, from its text: speech at 150 words a minute (each digit of a spoken code is a word), and a
# second at least. A wait for a key starts when its prompt ends; keys pressed while it plays count (barge-in).
WORDS_PER_MINUTE = 150


def speaking_time(text: str) -> float:
    return max(1.0, len(text.split()) * 60.0 / WORDS_PER_MINUTE)


LIVE = ("ringing", "in_progress")
# scripted outcomes that end a ringing call, and the end reason each gives it
_ENDS = {"busy": "busy", "unreachable": "failed", "declines": "declined", "voicemail": "voicemail"}


@dataclass
class Call:
    id: str
    vendor: str
    kind: str  # what the vendor placed it for, e.g. "dtmf_confirm"
    phone_number: str
    caller_id: str
    scenario: str
    started_at: str
    flow: dict[str, Any] | None = None  # the vendor's flow and its state, as data
    # ringing → in_progress → completed, or no_answer / busy / failed / declined / voicemail / blocked
    state: str = "ringing"
    answered_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    prompts: list[str] = field(default_factory=list)
    prompt_ends: float = 0.0  # clock time the last prompt stops playing
    digits: str = ""
    timers: list[str] = field(default_factory=list)  # ids of the timers that die with the call
    subject: str | None = None  # whose story it is part of: a verification, a transaction, itself (CM)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Call:
        return cls(**data)

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

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Message:
        return cls(**data)

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

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.mock: Mock | None = None  # the engine, handed to flows
        self.dirty = Dirty()  # the engine's, when a store writes what changes
        self.by_id: dict[str, Call] = {}  # every call kept, oldest first
        self.ended: deque[str] = deque()  # ids of calls that ended, in the order they did: what retention may drop
        self.messages: deque[Message] = deque()
        self.messages_by_id: dict[str, Message] = {}
        self.tell: Callable[..., Any] = lambda *args, **kwargs: None  # an event of a story (the engine's timelines)

    @property
    def calls(self) -> list[Call]:
        return list(self.by_id.values())

    def clear(self) -> None:
        self.by_id.clear()
        self.ended.clear()
        self.messages.clear()
        self.messages_by_id.clear()

    def add(self, call: Call) -> None:
        self.by_id[call.id] = call
        if not call.live:
            self.ended.append(call.id)
        self.dirty("call", call.id)

    def keep_message(self, message: Message) -> None:
        self.messages.append(message)
        self.messages_by_id[message.id] = message
        self.dirty("message", message.id)

    def drop_oldest_ended(self) -> Call | None:
        """Let go of the call that ended first (retention); None if every call kept is live."""
        while self.ended:
            call = self.by_id.pop(self.ended.popleft(), None)
            if call is not None:
                self.dirty("call", call.id)
                return call
        return None

    def drop_oldest_message(self) -> None:
        message = self.messages.popleft()
        self.messages_by_id.pop(message.id, None)
        self.dirty("message", message.id)

    # -- what vendors do ------------------------------------------------------------------------------------------

    def place_call(
        self,
        *,
        vendor: str,
        kind: str,
        phone_number: str,
        caller_id: str,
        scenario: Scenario,
        flow: dict[str, Any] | None,
        ring_timeout: float = RING_TIMEOUT,
        call_id: str | None = None,
        subject: str | None = None,
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
            subject=subject,
        )
        self.add(call)
        self.tell(subject, "vendor", "phone", "call placed: ringing", detail=f"from {caller_id}")
        # one timer for whatever ends the ringing first: a scripted answer or end takes the call out of `ringing`
        # for good, so a ring-out after it would never act (and showed in the clock as a timer that never fires)
        callee = scenario.callee
        ring = min(callee.after, ring_timeout)
        if scenario.blocked is not None:  # the network refuses it before it rings
            self.later(call, 0, "call.end", state="blocked")
        elif callee.outcome == "answers" and callee.after < ring_timeout:
            self.later(call, ring, "call.answer", **callee.script)
        elif callee.outcome in _ENDS:
            self.later(call, ring, "call.end", state=_ENDS[callee.outcome])
        else:  # nobody picks up (or someone may, through the handset API): it rings out
            self.later(call, ring_timeout, "call.ring_out")
        return call

    def send_message(
        self,
        *,
        vendor: str,
        channel: str,
        phone_number: str,
        sender: str,
        text: str,
        status: str,
        subject: str | None = None,
    ) -> Message:
        message = Message(new_id(), vendor, channel, phone_number, sender, text, status, self._stamp())
        self.keep_message(message)
        self.tell(subject, "vendor", "phone", f"{channel.upper()}: {text}", detail=status)
        return message

    def flash_call(
        self, *, vendor: str, phone_number: str, caller_id: str, scenario: Scenario, subject: str | None = None
    ) -> Call:
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
            subject=subject,
        )
        self.add(call)
        self.tell(subject, "vendor", "phone", f"flash call from {caller_id}: rings once, unanswered")
        return call

    def play(self, call: Call, text: str, *, after: float = 0.0) -> float:
        """Speak a prompt on the call, `after` seconds from now (once what plays before it has ended); returns the
        seconds until it has been spoken."""
        call.prompts.append(text)
        self.dirty("call", call.id)
        self.tell(call.subject, "vendor", "phone", f"prompt: {text}", after=after, seconds=speaking_time(text))
        ends = after + speaking_time(text)
        call.prompt_ends = self.clock.now() + ends
        return ends

    def later(self, call: Call, seconds: float, kind: str, **args: Any) -> str:
        """A timer of `kind` for this call, which dies with it; returns its id."""
        timer = self.clock.schedule(seconds, kind, call.id, args)
        call.timers.append(timer.id)
        self.dirty("call", call.id)
        return timer.id

    def cancel(self, call: Call, timer_id: str | None) -> None:
        if timer_id is not None:
            self.clock.cancel(timer_id)
            if timer_id in call.timers:
                call.timers.remove(timer_id)
            self.dirty("call", call.id)

    def finish(self, call: Call, state: str) -> None:
        """End a call in one of its final states; the flow hears of it once."""
        if not call.live:
            return
        for timer_id in call.timers:
            self.clock.cancel(timer_id)
        call.timers.clear()
        call.state = "completed" if state in ("hangup", "completed", "callee_hangup") else state
        call.end_reason = state
        call.ended_at = self._stamp()
        self.ended.append(call.id)
        self.dirty("call", call.id)
        if state in ("completed", "hangup"):
            self.tell(call.subject, "vendor", "phone", "hangs up: call ended")
        else:
            self.tell(call.subject, "phone", "vendor", f"call ended: {state.replace('_', ' ')}")
        self._flow(call, "ended", state)

    # -- what the callee does (scenario or handset) ----------------------------------------------------------------

    def answer(self, call: Call) -> None:
        if call.state != "ringing":
            raise ApiError(Problem.CONFLICT, f"Call {call.id} is {call.state}, not ringing.")
        call.state = "in_progress"
        call.answered_at = self._stamp()
        self.dirty("call", call.id)
        self.tell(call.subject, "phone", "vendor", "answered")
        self._flow(call, "answered")

    def press(self, call: Call, digits: str) -> None:
        if call.state != "in_progress":
            raise ApiError(
                Problem.CONFLICT, f"Call {call.id} is {call.state}: keys can only be pressed on a live call."
            )
        for digit in digits:
            if not call.live:
                break
            call.digits += digit
            self.dirty("call", call.id)
            self.tell(call.subject, "phone", "vendor", f"key {digit}")
            self._flow(call, "pressed", digit)

    def hangup(self, call: Call) -> None:
        if not call.live:
            raise ApiError(Problem.CONFLICT, f"Call {call.id} has already ended ({call.state}).")
        self.finish(call, "callee_hangup" if call.state == "in_progress" else "declined")

    def decline(self, call: Call) -> None:
        if call.state != "ringing":
            raise ApiError(Problem.CONFLICT, f"Call {call.id} is {call.state}, not ringing.")
        self.finish(call, "declined")

    def current_call(self, phone_number: str) -> Call:
        for call in reversed(self.by_id.values()):
            if call.phone_number == phone_number and call.live:
                return call
        raise ApiError(Problem.NOT_FOUND, f"{phone_number} has no ringing or live call.")

    def handsets(self, extra: list[str], older: tuple[list[Call], list[Message]] = ([], [])) -> list[dict[str, Any]]:
        """Every number with a call or message (newest activity first), then the `extra` numbers not among them.
        `older`: calls and messages kept on disk only, which come before those in memory."""
        by_number: dict[str, dict[str, Any]] = {}
        latest: dict[str, str] = {}
        now = self.clock.now()
        calls, messages = older
        for kind, items in (("calls", [*calls, *self.by_id.values()]), ("messages", [*messages, *self.messages])):
            for item in items:
                number = item.phone_number
                handset = by_number.setdefault(number, {"phone_number": number, "calls": [], "messages": []})
                handset[kind].append(item.to_json(now) if isinstance(item, Call) else item.to_json())
                stamp = item.started_at if isinstance(item, Call) else item.at
                latest[number] = max(stamp, latest.get(number, ""))
        numbers = sorted(latest, key=lambda n: latest[n], reverse=True)
        numbers += sorted(n for n in set(extra) if n not in latest)
        return [by_number.get(n) or {"phone_number": n, "calls": [], "messages": []} for n in numbers]

    def handset(self, phone_number: str, older: tuple[list[Call], list[Message]] = ([], [])) -> dict[str, Any]:
        """A number's calls and messages, oldest first; `older` as for `handsets`."""
        calls, messages = older
        now = self.clock.now()
        return {
            "phone_number": phone_number,
            "calls": [c.to_json(now) for c in [*calls, *self.by_id.values()] if c.phone_number == phone_number],
            "messages": [m.to_json() for m in [*messages, *self.messages] if m.phone_number == phone_number],
        }

    # -- internals -------------------------------------------------------------------------------------------------

    def _flow(self, call: Call, event: str, *args: str) -> None:
        if call.flow is not None and self.mock is not None:
            getattr(FLOWS[call.flow["flow"]], event)(self.mock, call, *args)
            self.dirty("call", call.id)  # the flow's state is in the call

    def _stamp(self) -> str:
        return self.clock.now_datetime().isoformat()


# -- what a callee's script does, on the clock -----------------------------------------------------------------------


def _live_call(mock: Mock, t: Timer) -> Call | None:
    return mock.phones.by_id.get(t.key)


@timer("call.end", record="call")
def _end(mock: Mock, t: Timer) -> None:
    call = _live_call(mock, t)
    if call is not None:
        mock.phones.finish(call, t.args["state"])


@timer("call.ring_out", record="call")
def _ring_out(mock: Mock, t: Timer) -> None:
    call = _live_call(mock, t)
    if call is not None and call.state == "ringing":
        mock.phones.finish(call, "no_answer")


@timer("call.answer", record="call")
def _answer_scripted(mock: Mock, t: Timer) -> None:
    call = _live_call(mock, t)
    if call is None or call.state != "ringing":
        return
    phones = mock.phones
    phones.answer(call)
    for press in t.args["presses"]:
        phones.later(call, press["at"], "call.press", digits=press["digits"])
    if t.args["hangs_up_after"] is not None:
        phones.later(call, t.args["hangs_up_after"], "call.end", state="callee_hangup")


@timer("call.press", record="call")
def _press_scripted(mock: Mock, t: Timer) -> None:
    call = _live_call(mock, t)
    if call is not None and call.state == "in_progress":
        mock.phones.press(call, t.args["digits"])
