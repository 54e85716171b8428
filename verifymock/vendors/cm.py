"""CM.com Voice API request-DTMF calls: digit collection, validation, attempts and dtmf-finished callbacks."""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import phonenumbers
import regex

from verifymock import jsonio
from verifymock.calls import Call
from verifymock.clock import Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_id
from verifymock.registry import flow, timer
from verifymock.scenarios import Scenario
from verifymock.webhooks import Breakage

if TYPE_CHECKING:
    from verifymock.engine import Mock

Body = dict[str, Any]

DEFAULT_TOKEN = "00000000-0000-0000-0000-000000000001"
NO_CALL = "00000000-0000-0000-0000-000000000000"  # .NET's Guid.Empty: the call-id when nobody was called
E164_SHAPE = re.compile(r"\+[1-9][0-9]{1,22}")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_ATTEMPTS = 3
REGEX_TIME_LIMIT = 0.02  # seconds one match may take; a pattern that needs longer does not match
DEFAULT_PATTERN = "[0-9]*"
# The regex package builds a counted repeat by copying what it repeats, so `a{2147483648}` asks for gigabytes
# before any match runs. A pattern is refused unless its copies, multiplied out through nested repeats, stay under
# this many atoms, and its groups nest at most this deep (its compiler recurses per level).
PATTERN_ATOMS = 10_000
PATTERN_DEPTH = 50
_COUNT = re.compile(r"\{(\d*)(?:,(\d*))?\}")
# How a call's end maps onto CM's result codes and the SIP reason reported with them.
RESULTS = {
    "completed": (10, "Finished successfully", "BYE", ""),
    "callee_hangup": (10, "Finished successfully", "BYE", ""),
    "voicemail": (10, "Finished successfully", "BYE", ""),
    "no_answer": (9, "Cancelled", "487", "Request Terminated"),
    "failed": (11, "Failed", "404", "Not Found"),
    "blocked": (11, "Failed", "403", "Forbidden"),
    "busy": (12, "Call rejected", "486", "Busy Here"),
    "declined": (12, "Call rejected", "603", "Decline"),
}


def e164(number: str, pointer: str) -> str:
    """The number in E.164 if phonenumbers calls it valid; ApiError otherwise."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise ApiError(Problem.UNPROCESSABLE, f"{number!r} is not an E.164 number: {exc}", pointer=pointer) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ApiError(Problem.UNPROCESSABLE, f"{number!r} is not a valid phone number.", pointer=pointer)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@functools.lru_cache(maxsize=256)  # a call's pattern is matched at each attempt; its state holds only the text
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A caller's `regex`, compiled once its cost is known to be bounded; ApiError (422) otherwise."""
    atoms, depth = _pattern_cost(pattern)
    if depth > PATTERN_DEPTH:
        raise ApiError(
            Problem.UNPROCESSABLE, f"The regex nests groups {depth} deep; at most {PATTERN_DEPTH}.", pointer="/regex"
        )
    if atoms > PATTERN_ATOMS:
        raise ApiError(
            Problem.UNPROCESSABLE,
            f"The regex repeats too much: it expands to about {atoms} atoms, at most {PATTERN_ATOMS}; "
            "use * or + rather than large counts.",
            pointer="/regex",
        )
    try:
        return regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, MemoryError) as exc:
        raise ApiError(Problem.UNPROCESSABLE, f"The regex does not compile: {exc}", pointer="/regex") from exc


def _pattern_cost(pattern: str) -> tuple[int, int]:
    """How many atoms the compiled pattern holds once counted repeats are copied out (an upper bound: `a|b`
    counts both), and how deep its groups nest. Reads only what sizes it: escapes, classes, groups, counts."""
    stack: list[list[int]] = [[0, 0]]  # per open group: [atoms so far, atoms of the last item]
    depth = deepest = 0
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            i += 2
            if i <= n and pattern[i - 1] in "pPNxuUg" and i < n and pattern[i] == "{":
                i = pattern.find("}", i) + 1 or n  # \p{Name}, \x{41}, \g{1}: one atom
            stack[-1][0] += 1
            stack[-1][1] = 1
            continue
        if char == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            stack[-1][0] += 1
            stack[-1][1] = 1
            i += 1
            continue
        if char == "(":
            stack.append([0, 0])
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()[0]
            depth -= 1
            stack[-1][0] += inner
            stack[-1][1] = inner
        elif char == "{" and (count := _COUNT.match(pattern, i)) is not None:
            times = max(int(count.group(1) or 0), int(count.group(2) or 0), 1)
            last = stack[-1][1]
            stack[-1][0] += last * (times - 1)
            stack[-1][1] = last * times
            i = count.end()
            continue
        elif char not in "|*+?":
            stack[-1][0] += 1
            stack[-1][1] = 1
        i += 1
    return sum(level[0] for level in stack), deepest


class CM:
    name = "cm"

    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        self.tokens = {t.lower() for t in mock.config.cm_product_tokens} or {DEFAULT_TOKEN}

    def authenticate(self, token: str) -> str:
        if not GUID.match(token.strip()):
            raise ApiError(Problem.UNAUTHENTICATED, "X-CM-PRODUCTTOKEN must be a GUID.", status=401)
        if not any(hmac.compare_digest(token.strip().lower(), known) for known in self.tokens):
            raise ApiError(Problem.UNAUTHENTICATED, "Unknown product token.", status=401)
        return token.strip().lower()

    def request_dtmf(self, body: Body, select: Callable[[str], Scenario]) -> list[tuple[Body, Scenario]]:
        """Validate what the schema cannot say and return each callee with its number; calls are placed by `place`."""
        caller = body["caller"]  # CM asks only for E.164's shape, which the schema checks
        single = body.get("callee")
        many = body.get("callees") or []
        if single is None and not many:
            raise ApiError(Problem.UNPROCESSABLE, "Give `callee` or `callees`.", pointer="/callee")
        skip_invalid = bool(body.get("disable-callees-validation"))
        callees: list[str] = []
        for pointer, number in ([("/callee", single)] if single is not None else []) + [
            (f"/callees/{i}", n) for i, n in enumerate(many)
        ]:
            try:
                if not E164_SHAPE.fullmatch(number):  # `callees` items are checked here, so that they can be skipped
                    raise ApiError(Problem.UNPROCESSABLE, f"{number!r} is not an E.164 number.", pointer=pointer)
                callees.append(e164(number, pointer))
            except ApiError:
                if not skip_invalid:
                    raise
        low, high = body.get("min-digits"), body.get("max-digits")
        if low is not None and high is not None and low > high:
            raise ApiError(Problem.UNPROCESSABLE, "min-digits is larger than max-digits.", pointer="/min-digits")
        compile_pattern(body.get("regex") or DEFAULT_PATTERN)
        return [({**body, "caller": caller, "callee": callee}, select(callee)) for callee in callees]

    def queued(self, body: Body, placed: list[Body]) -> Body:
        """The answer: one `call-queued` object, as CM's .NET SDK deserialises it (a `CallQueuedEvent`, whatever the
        number of callees). For `callees` it is the first call's, and `calls` (which the SDK ignores) lists each.
        With callee validation disabled and no valid callee, nothing is called: success is false, with the nil id."""
        if not placed:
            return {
                "type": "call-queued",
                "call-id": NO_CALL,
                "instruction-id": body.get("instruction-id"),
                "caller": body["caller"],
                "callee": "",
                "success": False,
                "error": "No callee is a valid phone number; nobody was called.",
                "calls": [],
            }
        return {**placed[0], "calls": placed} if body.get("callees") is not None else placed[0]

    def place(self, body: Body, scenario: Scenario) -> Body:
        call_id = new_id()
        self.mock.timelines.begin(call_id, "cm.call", body["callee"])
        self.mock.touch(call_id)
        call = self.mock.phones.place_call(
            vendor="cm",
            kind="request_dtmf",
            phone_number=body["callee"],
            caller_id="anonymous" if body.get("anonymous") else body["caller"],
            scenario=scenario,
            flow=DtmfCollection.start(body, scenario),
            ring_timeout=float(body.get("max-ringing-timeout") or 60),
            call_id=call_id,
            subject=call_id,
        )
        return {
            "type": "call-queued",
            "call-id": call.id,
            "instruction-id": body.get("instruction-id"),
            "caller": body["caller"],
            "callee": body["callee"],
            "success": True,
        }

    def finished(self, flow: Body, call: Call, reason: str) -> None:
        code, description, sip_code, sip_reason = RESULTS.get(reason, RESULTS["completed"])
        self.mock.coverage.reach(f"cm.result.{code}")
        digits, valid = flow["last_input"] or "none", "valid" if flow["valid"] else "not valid"
        self.mock.timelines.tell(call.id, "vendor", "vendor", f"result {code}: {description}; digits {digits}, {valid}")
        url = flow["body"].get("callback-url")
        if not url:
            return
        payload = {
            "type": "dtmf-finished",
            "call-id": call.id,
            "instruction-id": flow["body"].get("instruction-id"),
            "caller": flow["body"]["caller"],
            "callee": flow["body"]["callee"],
            "digits": flow["last_input"],
            "valid": flow["valid"],
            "attempts": flow["attempts"],
            "result": {
                "code": code,
                "description": description,
                "sip-disconnect-code": sip_code,
                "sip-disconnect-reason": sip_reason,
            },
        }
        self.mock.check_webhook("cm_voice_dtmf", "/components/schemas/DtmfFinished", payload)
        raw = jsonio.dumps(payload)
        self.mock.webhooks.send(
            vendor="cm",
            event_type="dtmf-finished",
            url=url,
            failover_url=None,
            subject=call.id,
            signing="none",
            payload=raw.decode(),
            breakage=Breakage(**flow["webhooks"]),
        )


@flow("cm.request_dtmf")
class DtmfCollection:
    """Collect digits until a terminator, max-digits or the inter-digit timeout; check min/max digits and the
    regex; an empty or invalid attempt plays the invalid prompt (if any) and starts again, up to max-attempts.
    Its state, in the call's flow: the request, the attempt and its input, and the timer of the wait for a digit."""

    NAME = "cm.request_dtmf"

    @staticmethod
    def start(body: Body, scenario: Scenario) -> Body:
        terminators = body.get("terminators")
        return {
            "flow": DtmfCollection.NAME,
            "body": body,
            "webhooks": asdict(scenario.webhooks),
            "terminators": "#" if terminators is None else str(terminators),
            "low": body.get("min-digits") or 1,
            "high": body.get("max-digits"),
            "max_attempts": body.get("max-attempts") or DEFAULT_ATTEMPTS,
            "timeout": (body.get("timeout") or 5000) / 1000,
            "attempts": 0,
            "input": "",
            "last_input": "",
            "valid": False,
            "collecting": False,
            "wait": None,
        }

    @staticmethod
    def answered(mock: Mock, call: Call) -> None:
        DtmfCollection._attempt(mock, call)

    @staticmethod
    def pressed(mock: Mock, call: Call, digit: str) -> None:
        state = call.flow
        assert state is not None
        if not state["collecting"]:
            return
        mock.phones.cancel(call, state["wait"])
        if digit in state["terminators"]:
            DtmfCollection._evaluate(mock, call, "by_terminator")
            return
        state["input"] += digit
        if state["high"] is not None and len(state["input"]) >= state["high"]:
            DtmfCollection._evaluate(mock, call, "by_max_digits")
        else:
            state["wait"] = mock.phones.later(call, state["timeout"], "cm.digit_wait")

    @staticmethod
    def ended(mock: Mock, call: Call, reason: str) -> None:
        assert call.flow is not None
        call.flow["collecting"] = False
        mock.cm.finished(call.flow, call, reason)

    @staticmethod
    def _attempt(mock: Mock, call: Call, after: float = 0.0) -> None:
        """A new attempt: the prompt plays (once what plays before it has ended) and the timeout for the first
        digit starts when it ends."""
        state = call.flow
        assert state is not None
        state["attempts"] += 1
        state["input"] = ""
        state["collecting"] = True
        playing = mock.phones.play(call, state["body"]["prompt"], after=after)
        state["wait"] = mock.phones.later(call, playing + state["timeout"], "cm.digit_wait")

    @staticmethod
    def timed_out(mock: Mock, call: Call) -> None:
        state = call.flow
        assert state is not None
        state["wait"] = None
        mock.timelines.tell(call.id, "vendor", "vendor", f"no digit within {state['timeout']:g} s")
        if state["input"]:
            DtmfCollection._evaluate(mock, call, "by_timeout")
        else:
            state["last_input"] = ""
            DtmfCollection._failed(mock, call, 0.0)

    @staticmethod
    def _evaluate(mock: Mock, call: Call, ended: str) -> None:
        """The input is complete, `ended` as it was (by_terminator, by_max_digits, by_timeout): check it."""
        state = call.flow
        assert state is not None
        state["collecting"] = False
        state["last_input"] = state["input"]
        mock.coverage.reach(f"cm.input.{ended}")
        if DtmfCollection._acceptable(state, state["input"]):
            state["valid"] = True
            mock.coverage.reach("cm.input.valid_first" if state["attempts"] == 1 else "cm.input.valid_later")
            mock.phones.play(call, state["body"]["valid-prompt"])
            mock.phones.finish(call, "completed")
        else:
            invalid = state["body"].get("invalid-prompt")
            playing = mock.phones.play(call, invalid) if invalid else 0.0
            DtmfCollection._failed(mock, call, playing)

    @staticmethod
    def _acceptable(state: Body, digits: str) -> bool:
        if len(digits) < state["low"] or (state["high"] is not None and len(digits) > state["high"]):
            return False
        try:
            pattern = compile_pattern(state["body"].get("regex") or DEFAULT_PATTERN)
            return pattern.fullmatch(digits, timeout=REGEX_TIME_LIMIT) is not None
        except TimeoutError:
            return False  # a pattern too slow to decide is treated as not matching

    @staticmethod
    def _failed(mock: Mock, call: Call, playing: float) -> None:
        assert call.flow is not None
        if call.flow["attempts"] >= call.flow["max_attempts"]:
            mock.coverage.reach("cm.input.exhausted")
            mock.phones.finish(call, "completed")
        else:
            DtmfCollection._attempt(mock, call, after=playing)


@timer("cm.digit_wait", record="call")
def _digit_wait(mock: Mock, t: Timer) -> None:
    call = mock.phones.by_id.get(t.key)
    if call is not None and call.flow is not None and call.live:
        DtmfCollection.timed_out(mock, call)
