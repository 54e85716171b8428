"""CM.com Voice API request-DTMF calls: digit collection, validation, attempts and dtmf-finished callbacks."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import phonenumbers
import regex

from verifymock import jsonio
from verifymock.calls import Call, Phones
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_id
from verifymock.scenarios import Scenario

if TYPE_CHECKING:
    from verifymock.engine import Mock

Body = dict[str, Any]

DEFAULT_TOKEN = "00000000-0000-0000-0000-000000000001"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_ATTEMPTS = 3
REGEX_TIME_LIMIT = 0.02  # seconds one match may take; a pattern that needs longer does not match
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


class CM:
    name = "cm"
    STATE: tuple[str, ...] = ()  # its calls live in Phones

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
        caller = e164(body["caller"], "/caller")
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
                callees.append(e164(number, pointer))
            except ApiError:
                if not skip_invalid:
                    raise
        if not callees:
            raise ApiError(Problem.UNPROCESSABLE, "No callee is a valid phone number.", pointer="/callees")
        low, high = body.get("min-digits"), body.get("max-digits")
        if low is not None and high is not None and low > high:
            raise ApiError(Problem.UNPROCESSABLE, "min-digits is larger than max-digits.", pointer="/min-digits")
        try:
            regex.compile(body.get("regex") or "[0-9]*")
        except regex.error as exc:
            raise ApiError(Problem.UNPROCESSABLE, f"The regex does not compile: {exc}", pointer="/regex") from exc
        return [({**body, "caller": caller, "callee": callee}, select(callee)) for callee in callees]

    def place(self, body: Body, scenario: Scenario) -> Body:
        call_id = new_id()
        flow = DtmfCollection(self, call_id, body, scenario)
        call = self.mock.phones.place_call(
            vendor="cm",
            kind="request_dtmf",
            phone_number=body["callee"],
            caller_id="anonymous" if body.get("anonymous") else body["caller"],
            scenario=scenario,
            flow=flow,
            ring_timeout=float(body.get("max-ringing-timeout") or 60),
            call_id=call_id,
        )
        self.mock.touch(call.id)
        return {
            "type": "call-queued",
            "call-id": call.id,
            "instruction-id": body.get("instruction-id"),
            "caller": body["caller"],
            "callee": body["callee"],
            "success": True,
        }

    def finished(self, flow: DtmfCollection, call: Call, reason: str) -> None:
        url = flow.body.get("callback-url")
        if not url:
            return
        code, description, sip_code, sip_reason = RESULTS.get(reason, RESULTS["completed"])
        payload = {
            "type": "dtmf-finished",
            "call-id": call.id,
            "instruction-id": flow.body.get("instruction-id"),
            "caller": flow.body["caller"],
            "callee": flow.body["callee"],
            "digits": flow.last_input,
            "valid": flow.valid,
            "attempts": flow.attempts,
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
            body_for=lambda _attempt, _url: raw,
            headers_for=lambda _body, _tamper: {"content-type": "application/json"},
            breakage=flow.scenario.webhooks,
        )


class DtmfCollection:
    """Collect digits until a terminator, max-digits or the inter-digit timeout; check min/max digits and the
    regex; an empty or invalid attempt plays the invalid prompt (if any) and starts again, up to max-attempts."""

    def __init__(self, cm: CM, call_id: str, body: Body, scenario: Scenario) -> None:
        self.cm = cm
        self.phones: Phones = cm.mock.phones
        self.body = body
        self.scenario = scenario
        terminators = body.get("terminators")
        self.terminators: str = "#" if terminators is None else str(terminators)
        self.low = body.get("min-digits") or 1
        self.high = body.get("max-digits")
        self.max_attempts = body.get("max-attempts") or DEFAULT_ATTEMPTS
        self.timeout = (body.get("timeout") or 5000) / 1000
        self.pattern = regex.compile(body.get("regex") or "[0-9]*")
        self.attempts = 0
        self.input = ""
        self.last_input = ""
        self.valid = False
        self.collecting = False
        self.wait: Any = None

    def answered(self, call: Call) -> None:
        self._attempt(call)

    def pressed(self, call: Call, digit: str) -> None:
        if not self.collecting:
            return
        self.wait.cancel()
        if digit in self.terminators:
            self._evaluate(call)
            return
        self.input += digit
        if self.high is not None and len(self.input) >= self.high:
            self._evaluate(call)
        else:
            self.wait = self.phones.later(call, self.timeout, lambda: self._timed_out(call), "inter-digit timeout")

    def ended(self, call: Call, reason: str) -> None:
        self.collecting = False
        self.cm.finished(self, call, reason)

    def _attempt(self, call: Call) -> None:
        self.attempts += 1
        self.input = ""
        self.collecting = True
        self.phones.play(call, self.body["prompt"])
        self.wait = self.phones.later(call, self.timeout, lambda: self._timed_out(call), "inter-digit timeout")

    def _timed_out(self, call: Call) -> None:
        if self.input:
            self._evaluate(call)
        else:
            self.last_input = ""
            self._failed(call)

    def _evaluate(self, call: Call) -> None:
        self.collecting = False
        self.last_input = self.input
        if self._acceptable(self.input):
            self.valid = True
            self.phones.play(call, self.body["valid-prompt"])
            self.phones.finish(call, "completed")
        else:
            if self.body.get("invalid-prompt"):
                self.phones.play(call, self.body["invalid-prompt"])
            self._failed(call)

    def _acceptable(self, digits: str) -> bool:
        if len(digits) < self.low or (self.high is not None and len(digits) > self.high):
            return False
        try:
            return self.pattern.fullmatch(digits, timeout=REGEX_TIME_LIMIT) is not None
        except TimeoutError:
            return False  # a pattern too slow to decide is treated as not matching

    def _failed(self, call: Call) -> None:
        if self.attempts >= self.max_attempts:
            self.phones.finish(call, "completed")
        else:
            self._attempt(call)
