"""TeleSign Voice Verify: authentication, transactions, the call's status codes, code checks and callbacks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from verifymock import jsonio
from verifymock.calls import Call
from verifymock.clock import Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_digits, new_hex
from verifymock.registry import flow, timer
from verifymock.scenarios import Scenario
from verifymock.webhooks import Breakage

if TYPE_CHECKING:
    from verifymock.engine import Mock

Body = dict[str, Any]

DEFAULT_CUSTOMER_ID = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
DEFAULT_API_KEY = base64.b64encode(b"verifymock-telesign-test-key").decode()
DEFAULT_TEMPLATE = (
    "Hello. Thank you for using our phone verification system. Your code is $$CODE$$. Once again, your code is "
    "$$CODE$$. Goodbye."
)
PRESSX_PROMPT = "Hello. Thank you for using the phone verification system. Please press {digit} to hear your code."
CALLER_ID = "15555550000"  # digits, as requests give one; answers show it as +E.164, as TeleSign does
CODE_VALIDITY = 300.0  # clock seconds a code can be checked
MAX_CODE_ATTEMPTS = 5  # wrong checks before MAX_ATTEMPTS_EXCEEDED
LOOKUP_WINDOW = 12 * 3600.0  # clock seconds a transaction can be looked up
PROMPT_WAIT = 5.0  # seconds of silence after a prompt
NONCE_LENGTHS = range(8, 129)
MAX_NONCES = 100_000  # nonces remembered at once, each for the date tolerance

STATUS = {
    100: "Call answered",
    101: "Not answered",
    103: "Call in progress",
    106: "Call failed",
    107: "Line busy",
    129: "Call blocked by your request",
    130: "Call blocked by Telesign",
    500: "Transaction not attempted",
    501: "Not authorized",
}
# How a call's end maps onto TeleSign's status codes.
CALL_END_STATUS = {
    "no_answer": 101,
    "declined": 101,
    "busy": 107,
    "failed": 106,
    "voicemail": 100,
}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unauthorized(code: int, detail: str) -> ApiError:
    return ApiError(Problem.UNAUTHENTICATED, detail, code=code, status=401, extra={"sub_resource": "call"})


@dataclass
class Transaction:
    reference_id: str
    customer_id: str
    phone_number: str
    code: str
    submitted_at: float
    submitted: str
    status_code: int
    updated_on: str
    callback_url: str | None
    webhooks: Body = field(default_factory=dict)  # the scenario's breakage of its callbacks
    code_state: str = "UNKNOWN"
    code_entered: str | None = ""
    attempts: int = 0
    call_id: str | None = None
    caller_id: str = CALLER_ID

    @classmethod
    def from_data(cls, data: Body) -> Transaction:
        return cls(**data)

    def status(self) -> Body:
        return {"code": self.status_code, "description": STATUS[self.status_code], "updated_on": self.updated_on}

    def to_json(self) -> Body:
        return {
            "reference_id": self.reference_id,
            "sub_resource": "call",
            "errors": [],
            "status": self.status(),
            "verify": {"code_state": self.code_state, "code_entered": self.code_entered},
            "voice": {"caller_id": "+" + self.caller_id},
        }


class TeleSign:
    name = "telesign"

    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        self.customers: dict[str, str] = dict(mock.config.telesign_customers) or {DEFAULT_CUSTOMER_ID: DEFAULT_API_KEY}
        self.transactions: dict[str, Transaction] = {}
        self.nonces: dict[str, float] = {}  # nonce -> real time it was first seen

    def clear(self) -> None:
        self.transactions.clear()
        self.nonces.clear()

    # -- authentication -------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        """The customer id the request authenticates as; ApiError with TeleSign's code otherwise."""
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._basic(credentials.strip())
        if scheme == "TSA":
            return self._digest(credentials.strip(), method, path, headers, body)
        raise _unauthorized(-30005, "The Authorization header must be `Basic ...` or `TSA customer_id:signature`.")

    def _customer_key(self, customer_id: str) -> str:
        key = self.customers.get(customer_id)
        if key is None:
            raise _unauthorized(-30000, f"Invalid Customer ID {customer_id!r}.")
        return key

    def _basic(self, credentials: str) -> str:
        try:
            customer_id, separator, api_key = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _unauthorized(-30005, "Basic credentials must be base64 of customer_id:api_key.") from exc
        if not separator:
            raise _unauthorized(-30005, "Basic credentials must be base64 of customer_id:api_key.")
        if not hmac.compare_digest(api_key.encode(), self._customer_key(customer_id).encode()):
            raise _unauthorized(-30015, "Invalid API Key.")
        return customer_id

    def _digest(self, credentials: str, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        customer_id, separator, signature = credentials.partition(":")
        if not separator or not customer_id or not signature:
            raise _unauthorized(-30005, "The Authorization header must be `TSA customer_id:signature`.")
        api_key = self._customer_key(customer_id)
        x_ts_date = headers.get("x-ts-date")
        date = x_ts_date if x_ts_date is not None else headers.get("date")
        if not date:
            raise _unauthorized(-30007, "A Date or x-ts-date header is required.")
        try:
            sent = parsedate_to_datetime(date)
            if sent.tzinfo is None:
                raise _unauthorized(-30009, f"The date {date!r} has no time zone.")
            sent_at = sent.timestamp()
        except (TypeError, ValueError, OverflowError) as exc:  # an absurd zone offset overflows
            raise _unauthorized(-30009, f"The date {date!r} is not in RFC 822 format.") from exc
        tolerance = self.mock.config.telesign_date_tolerance
        if abs(time.time() - sent_at) > tolerance:  # real time: it is the client's clock being checked
            raise _unauthorized(-30010, f"The date is more than {tolerance:g} seconds from the server's time.")
        auth_method = headers.get("x-ts-auth-method", "")
        if auth_method != "HMAC-SHA256":
            raise _unauthorized(-30008, "x-ts-auth-method must be HMAC-SHA256.")
        nonce = headers.get("x-ts-nonce", "")
        if len(nonce) not in NONCE_LENGTHS:
            raise _unauthorized(-30011, f"x-ts-nonce must be {NONCE_LENGTHS.start} to {NONCE_LENGTHS.stop - 1} long.")
        content_type = headers.get("content-type", "")
        lines = [method, content_type, "" if x_ts_date is not None else date, f"x-ts-auth-method:{auth_method}"]
        if x_ts_date is not None:
            lines.append(f"x-ts-date:{x_ts_date}")
        lines.append(f"x-ts-nonce:{nonce}")
        if content_type and body:
            lines.append(body.decode("utf-8", "replace"))
        lines.append(path)
        expected = base64.b64encode(
            hmac.new(base64.b64decode(api_key), "\n".join(lines).encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise _unauthorized(-30006, "Invalid Signature.")
        self._remember_nonce(nonce, tolerance)
        return customer_id

    def _remember_nonce(self, nonce: str, window: float) -> None:
        now = time.time()
        # oldest first (a dict keeps insertion order): forgetting stops at the first nonce still in the window, and
        # past MAX_NONCES the oldest go even inside it, so a flood of fresh nonces costs bounded memory and time
        nonces = self.nonces
        while nonces:
            oldest = next(iter(nonces))
            if now - nonces[oldest] <= window and len(nonces) < MAX_NONCES:
                break
            del nonces[oldest]
            self.mock.dirty("nonce", oldest)
        if nonce in nonces:
            raise _unauthorized(-30012, "This nonce was already used.")
        self.nonces[nonce] = now
        self.mock.dirty("nonce", nonce)

    # -- transactions ---------------------------------------------------------------------------------------------

    def _now(self) -> str:
        return timestamp(self.mock.clock.now_datetime())

    def send_call(self, customer_id: str, body: Body, scenario: Scenario) -> Transaction:
        code = body.get("verify_code") or new_digits(5)
        now = self._now()
        transaction = Transaction(
            reference_id=new_hex(16),
            customer_id=customer_id,
            phone_number=body["phone_number"],
            code=code,
            submitted_at=self.mock.clock.now(),
            submitted=now,
            status_code=103,
            updated_on=now,
            callback_url=body.get("callback_url") or self.mock.config.telesign_callback_url,
            webhooks=asdict(scenario.webhooks),
            caller_id=body.get("caller_id") or CALLER_ID,
        )
        self.transactions[transaction.reference_id] = transaction
        self.mock.dirty("transaction", transaction.reference_id)
        self.mock.timelines.begin(transaction.reference_id, "telesign.transaction", "+" + transaction.phone_number)
        self.mock.touch(transaction.reference_id)
        if body.get("pressx") == "1":
            self.mock.coverage.reach("telesign.pressx")
        if scenario.blocked is not None:
            self._set_status(transaction, 129 if scenario.blocked == "by_customer" else 130)
            return transaction
        message = (body.get("tts_message") or body.get("template") or DEFAULT_TEMPLATE).replace(
            "$$CODE$$", ", ".join(code)
        )
        call = self.mock.phones.place_call(
            vendor="telesign",
            kind="voice_verify",
            phone_number="+" + transaction.phone_number,
            caller_id="+" + transaction.caller_id,
            scenario=scenario,
            flow=VoiceVerify.start(transaction, message, body),
            subject=transaction.reference_id,
        )
        transaction.call_id = call.id
        self.mock.dirty("transaction", transaction.reference_id)
        self.mock.coverage.reach("telesign.status.103")
        return transaction

    def transaction(self, reference_id: str, sub_resource: str = "call") -> Transaction:
        """The transaction, or TeleSign's 404; errors name the sub-resource asked about (completion's is voice)."""
        transaction = self.transactions.get(reference_id)
        if transaction is None:
            raise ApiError(
                Problem.NOT_FOUND,
                f"Reference ID {reference_id} not found.",
                code=-10001,
                extra={"reference_id": reference_id, "sub_resource": sub_resource},
            )
        if self.mock.clock.now() - transaction.submitted_at > LOOKUP_WINDOW:
            raise ApiError(
                Problem.NOT_FOUND,
                f"Reference ID {reference_id} has expired.",
                code=-10004,
                extra={"reference_id": reference_id, "sub_resource": sub_resource},
            )
        return transaction

    def status(self, reference_id: str, verify_code: str | None) -> Body:
        transaction = self.transaction(reference_id)
        if verify_code is not None:
            self.mock.touch(reference_id)
            self._check(transaction, verify_code)
        if verify_code is not None or transaction.code_state == "UNKNOWN":  # (a plain lookup counts no check)
            self.mock.coverage.reach(f"telesign.code_state.{transaction.code_state}")
        return transaction.to_json()

    def _check(self, transaction: Transaction, entered: str) -> None:
        transaction.code_entered = entered
        self.mock.dirty("transaction", transaction.reference_id)
        if transaction.code_state in ("VALID", "MAX_ATTEMPTS_EXCEEDED"):
            return
        if self.mock.clock.now() - transaction.submitted_at > CODE_VALIDITY:
            transaction.code_state = "EXPIRED"
        elif hmac.compare_digest(entered.encode(), transaction.code.encode()):  # (any text: a letter is INVALID)
            transaction.code_state = "VALID"
        else:
            transaction.attempts += 1
            transaction.code_state = "MAX_ATTEMPTS_EXCEEDED" if transaction.attempts >= MAX_CODE_ATTEMPTS else "INVALID"

    def completion(self, reference_id: str) -> Body:
        transaction = self.transaction(reference_id, sub_resource="voice")
        self.mock.touch(reference_id)
        self.mock.coverage.reach("telesign.completion")
        return {
            "reference_id": transaction.reference_id,
            "sub_resource": "voice",
            "errors": [],
            "status": {
                "code": 1900,
                "description": "Verify completion successfully recorded",
                "updated_on": self._now(),
            },
        }

    # -- the call's fate and callbacks ----------------------------------------------------------------------------

    def _set_status(self, transaction: Transaction, code: int) -> None:
        if transaction.status_code == code:
            return
        transaction.status_code = code
        transaction.updated_on = self._now()
        self.mock.dirty("transaction", transaction.reference_id)
        if code != 103:  # its call is over
            self.mock.finished("transaction", transaction.reference_id)
        self.mock.coverage.reach(f"telesign.status.{code}")
        self.mock.timelines.tell(transaction.reference_id, "vendor", "vendor", f"status {code}: {STATUS[code]}")
        self._callback(transaction)

    def _callback(self, transaction: Transaction) -> None:
        if not transaction.callback_url:
            return
        body = {
            "reference_id": transaction.reference_id,
            "sub_resource": "call",
            "errors": [],
            "status": transaction.status(),
            "submit_timestamp": transaction.submitted,
            "verify": {"code_state": transaction.code_state, "code_entered": transaction.code_entered},
        }
        self.mock.check_webhook("telesign_voice_verify", "/components/schemas/Callback", body)
        raw = jsonio.dumps(body)
        self.mock.webhooks.send(
            vendor="telesign",
            event_type=f"status {transaction.status_code}",
            url=transaction.callback_url,
            failover_url=None,
            subject=transaction.reference_id,
            signing="telesign",
            payload=raw.decode(),
            customer_id=transaction.customer_id,
            breakage=Breakage(**transaction.webhooks),
        )


def callback_headers(customer_id: str, api_key: str, body: bytes, tamper: bool = False) -> dict[str, str]:
    """The signature TeleSign puts on callbacks: base64 HMAC-SHA256 of the raw body, in two headers."""
    digest = hmac.new(base64.b64decode(api_key), body, hashlib.sha256).digest()
    if tamper:
        digest = bytes([digest[0] ^ 0xFF]) + digest[1:]
    value = f"TSA {customer_id}:{base64.b64encode(digest).decode()}"
    return {"content-type": "application/json", "authorization": value, "x-ts-authorization": value}


@flow("telesign.voice_verify")
class VoiceVerify:
    """The call: once answered the code message plays (after the prompt_digit or pressx gate when asked for), then
    the call ends. A wrong digit or a silence replays the gate; three plays at most, two silences in a row hang up;
    pressx gives two tries. Its state, in the call's flow: the texts, the gate's digit, plays and silences so far,
    and the timer of the wait for a key."""

    NAME = "telesign.voice_verify"

    @staticmethod
    def start(transaction: Transaction, message: str, body: Body) -> Body:
        pressx = body.get("pressx") == "1"
        prompt, digit = body.get("prompt_message"), body.get("prompt_digit")
        if pressx:
            digit = secrets.choice("0123456789")
            prompt = PRESSX_PROMPT.format(digit=digit)
        return {
            "flow": VoiceVerify.NAME,
            "reference_id": transaction.reference_id,
            "message": message,
            "pressx": pressx,
            "prompt": prompt,
            "digit": digit,
            "gated": digit is not None and prompt is not None,
            "plays": 0,
            "silences": 0,
            "wait": None,
        }

    @staticmethod
    def answered(mock: Mock, call: Call) -> None:
        # 103 (in progress) while anything plays; 100 once the call is over, having been answered
        assert call.flow is not None
        if call.flow["gated"]:
            VoiceVerify._gate(mock, call)
        else:
            VoiceVerify._read_code(mock, call)

    @staticmethod
    def pressed(mock: Mock, call: Call, digit: str) -> None:
        state = call.flow
        assert state is not None
        if not state["gated"] or state["wait"] is None:
            return
        mock.phones.cancel(call, state["wait"])
        state["wait"] = None
        state["silences"] = 0
        if digit == state["digit"]:
            mock.coverage.reach("telesign.gate.passed")
            VoiceVerify._read_code(mock, call)
        elif state["plays"] >= VoiceVerify._limit(state):
            VoiceVerify._shut(mock, call)
        else:
            VoiceVerify._gate(mock, call)

    @staticmethod
    def ended(mock: Mock, call: Call, reason: str) -> None:
        assert call.flow is not None
        transaction = mock.telesign.transactions.get(call.flow["reference_id"])
        code = 100 if call.answered_at is not None else CALL_END_STATUS.get(reason)
        if transaction is not None and code is not None and transaction.status_code == 103:
            mock.telesign._set_status(transaction, code)

    @staticmethod
    def _limit(state: Body) -> int:
        return 2 if state["pressx"] else 3

    @staticmethod
    def _gate(mock: Mock, call: Call) -> None:
        state = call.flow
        assert state is not None
        state["plays"] += 1
        playing = mock.phones.play(call, str(state["prompt"]))
        state["wait"] = mock.phones.later(call, playing + PROMPT_WAIT, "telesign.prompt_wait")

    @staticmethod
    def _shut(mock: Mock, call: Call) -> None:
        """The gate was never passed: the call ends without the code."""
        mock.coverage.reach("telesign.gate.failed")
        mock.phones.finish(call, "completed")

    @staticmethod
    def _read_code(mock: Mock, call: Call) -> None:
        assert call.flow is not None
        call.flow["gated"] = False
        playing = mock.phones.play(call, call.flow["message"])
        mock.phones.later(call, playing, "call.end", state="completed")


@timer("telesign.prompt_wait", record="call")
def _silence(mock: Mock, t: Timer) -> None:
    call = mock.phones.by_id.get(t.key)
    if call is None or call.flow is None or not call.live:
        return
    state = call.flow
    state["wait"] = None
    state["silences"] += 1
    mock.timelines.tell(call.subject, "vendor", "vendor", f"no key within {PROMPT_WAIT:g} s of the prompt")
    if state["silences"] >= 2 or state["plays"] >= VoiceVerify._limit(state):
        VoiceVerify._shut(mock, call)
    else:
        VoiceVerify._gate(mock, call)
