"""Telnyx Verify: profiles, templates, verifications, code checks and DTMF confirmation, by Telnyx's rules."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from verifymock.calls import Call
from verifymock.clock import Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_digits, new_id
from verifymock.registry import flow, timer
from verifymock.scenarios import Scenario
from verifymock.webhooks import Breakage

if TYPE_CHECKING:
    from verifymock.engine import Mock

Body = dict[str, Any]

CHANNELS = ("sms", "call", "flashcall", "whatsapp", "dtmf_confirm")
CHANNEL_DEFAULTS: dict[str, Body] = {
    "sms": {"code_length": 5, "default_verification_timeout_secs": 300},
    "call": {"code_length": 5, "default_verification_timeout_secs": 300},
    "flashcall": {"default_verification_timeout_secs": 300},
    "whatsapp": {"code_length": 5, "default_verification_timeout_secs": 300},
    "dtmf_confirm": {"default_timeout_secs": 300},
}
DEFAULT_TEMPLATE = "Your {{app_name}} verification code is: {{code}}."
FLASHCALL_CODE_DIGITS = 4  # the code is the last digits of the flash call's caller id
CALLER_ID = "+13125550000"
DTMF_ATTEMPTS = 3
DTMF_WAIT = 10.0  # seconds of silence after the prompt before the verification expires
# Telnyx's schema bounds neither. Real codes are 4 to 10 digits, and an SMS carries at most 1,600 characters (ten
# segments); anything longer would only make every message the mock keeps cost more memory.
CODE_LENGTHS = range(4, 11)
TEMPLATE_CHARACTERS = 1600
MAX_PROFILES = 10_000  # each kept, listed and saved: a bound on what one client can grow
MAX_TEMPLATES = 1_000
MAX_TIMEOUT = 30 * 24 * 3600  # a code valid for longer than a month is no verification
_DIGITS = re.compile(r"[0-9]{1,32}")
_EXTENSION = re.compile(r"[0-9A-D*#wW]*")

# The fixed DTMF-confirm prompt (seed 000), by the profile's language; others fall back to English.
DTMF_PROMPTS = {
    "en": (
        "This is a verification call to confirm that this phone number is going to be used as a Caller ID for "
        "outbound calls. If you did not request this verification, or if someone is asking you to accept this call, "
        "please ignore this message. If you did request this verification, please press 1."
    ),
    "es": (
        "Esta es una llamada de verificación para confirmar que este número se usará como identificador de llamadas "
        "salientes. Si usted no solicitó esta verificación, o si alguien le pide aceptar esta llamada, ignore este "
        "mensaje. Si usted la solicitó, pulse 1."
    ),
    "de": (
        "Dies ist ein Bestätigungsanruf, um zu bestätigen, dass diese Rufnummer als Anrufer-ID für ausgehende Anrufe "
        "verwendet wird. Wenn Sie diese Bestätigung nicht angefordert haben oder jemand Sie bittet, diesen Anruf "
        "anzunehmen, ignorieren Sie diese Nachricht. Wenn Sie sie angefordert haben, drücken Sie bitte 1."
    ),
}


def telnyx_time(moment: Any) -> str:
    """Telnyx's timestamps: UTC, no zone, microseconds (isoformat's first 26 characters; strftime is slower)."""
    return str(moment.isoformat(timespec="microseconds")[:26])


@dataclass
class Verification:
    id: str
    type: str
    phone_number: str
    verify_profile_id: str
    timeout_secs: int
    code: str | None
    custom_code: str | None
    status: str
    created_at: str
    updated_at: str
    expires_at: float
    call_id: str | None = None
    attempts: int = 0
    timer: str | None = None  # the id of its expiry's timer
    extra: Body = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Body) -> Verification:
        return cls(**data)

    def to_json(self) -> Body:
        return {
            "id": self.id,
            "type": self.type,
            "record_type": "verification",
            "phone_number": self.phone_number,
            "verify_profile_id": self.verify_profile_id,
            "custom_code": self.custom_code,
            "timeout_secs": self.timeout_secs,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class Telnyx:
    name = "telnyx"

    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        self.profiles: dict[str, Body] = {}
        self.templates: dict[str, Body] = {}
        self.verifications: dict[str, Verification] = {}

    def clear(self) -> None:
        self.profiles.clear()
        self.templates.clear()
        self.verifications.clear()

    def _now(self) -> str:
        return telnyx_time(self.mock.clock.now_datetime())

    # -- verify profiles -------------------------------------------------------------------------------------------

    def create_profile(self, body: Body) -> Body:
        if len(self.profiles) >= MAX_PROFILES:
            raise ApiError(
                Problem.UNPROCESSABLE, f"{MAX_PROFILES} verify profiles exist already; delete some or reset the mock."
            )
        now = self._now()
        profile: Body = {
            "id": new_id(),
            "record_type": "verification_profile",
            "name": body["name"],
            "language": body.get("language", "en-US"),
            "daily_spend_limit_enabled": body.get("daily_spend_limit_enabled", False),
            "created_at": now,
            "updated_at": now,
        }
        self._apply_profile_fields(profile, body)
        self.profiles[profile["id"]] = profile
        self.mock.dirty("profile", profile["id"])
        self.mock.touch(profile["id"])
        return profile

    def _apply_profile_fields(self, profile: Body, body: Body) -> None:
        for channel in CHANNELS:  # checked before anything changes, so a refused update leaves the profile as it was
            if isinstance(body.get(channel), dict):
                _check_code_length(channel, body[channel])
        for key in ("webhook_url", "webhook_failover_url"):
            url = body.get(key)
            if url and urlsplit(url).scheme.lower() not in ("http", "https"):
                raise ApiError(Problem.UNPROCESSABLE, f"{key} must be an http or https URL.", pointer=f"/{key}")
        for key in (
            "name",
            "language",
            "webhook_url",
            "webhook_failover_url",
            "daily_spend_limit",
            "daily_spend_limit_enabled",
        ):
            if key in body:
                profile[key] = body[key]
        for channel in CHANNELS:
            if channel in body:
                settings = body[channel] if isinstance(body[channel], dict) else {}
                profile[channel] = {**CHANNEL_DEFAULTS[channel], **profile.get(channel, {}), **settings}

    def profile(self, profile_id: str, *, pointer: str | None = None) -> Body:
        profile = self.profiles.get(profile_id)
        if profile is None:
            raise ApiError(Problem.NOT_FOUND, f"Verify profile {profile_id} was not found.", pointer=pointer)
        return profile

    def list_profiles(self, name: str | None, page_number: int, page_size: int) -> Body:
        matching = [p for p in self.profiles.values() if name is None or p["name"] == name]
        start = (page_number - 1) * page_size
        return {
            "data": matching[start : start + page_size],
            "meta": {
                "page_number": page_number,
                "page_size": page_size,
                "total_pages": math.ceil(len(matching) / page_size),
                "total_results": len(matching),
            },
        }

    def update_profile(self, profile_id: str, body: Body) -> Body:
        profile = self.profile(profile_id)
        self._apply_profile_fields(profile, body)
        profile["updated_at"] = self._now()
        self.mock.dirty("profile", profile_id)
        self.mock.touch(profile_id)
        return profile

    def delete_profile(self, profile_id: str) -> Body:
        profile = self.profile(profile_id)
        del self.profiles[profile_id]
        self.mock.dirty("profile", profile_id)
        self.mock.touch(profile_id)
        return profile

    # -- message templates ---------------------------------------------------------------------------------------

    def create_template(self, text: str) -> Body:
        _check_template(text)
        if len(self.templates) >= MAX_TEMPLATES:  # Telnyx has no way to delete one: reset the mock
            raise ApiError(
                Problem.UNPROCESSABLE, f"{MAX_TEMPLATES} message templates exist already; reset the mock for more."
            )
        template = {"id": new_id(), "text": text}
        self.templates[template["id"]] = template
        self.mock.dirty("template", template["id"])
        self.mock.touch(template["id"])
        return template

    def update_template(self, template_id: str, text: str) -> Body:
        template = self.templates.get(template_id)
        if template is None:
            raise ApiError(Problem.NOT_FOUND, f"Message template {template_id} was not found.")
        _check_template(text)
        template["text"] = text
        self.mock.dirty("template", template_id)
        self.mock.touch(template_id)
        return template

    # -- verifications -------------------------------------------------------------------------------------------

    def start(self, channel: str, body: Body, scenario: Scenario) -> Verification:
        profile = self.profile(body["verify_profile_id"], pointer="/verify_profile_id")
        settings = profile.get(channel)
        if settings is None:
            raise ApiError(
                Problem.UNPROCESSABLE,
                f"Verify profile {profile['id']} has no {channel} settings; add `{channel}` to the profile first.",
                pointer="/verify_profile_id",
            )
        phone = body["phone_number"]
        if channel == "dtmf_confirm":
            self._refuse_overlapping_dtmf(phone)
        timeout_key = "default_timeout_secs" if channel == "dtmf_confirm" else "default_verification_timeout_secs"
        timeout = int(body.get("timeout_secs") or settings.get(timeout_key, 300))
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ApiError(
                Problem.UNPROCESSABLE,
                f"timeout_secs must be from 1 to {MAX_TIMEOUT} seconds; {timeout} is not.",
                pointer="/timeout_secs",
            )
        # a flash call's code is its caller id: a custom_code sent with one is ignored
        custom_code = None if channel == "flashcall" else body.get("custom_code")
        if custom_code is not None and not _DIGITS.fullmatch(custom_code):
            raise ApiError(Problem.UNPROCESSABLE, "custom_code must be 1 to 32 digits (0-9).", pointer="/custom_code")
        extension = body.get("extension")
        if extension is not None and not _EXTENSION.fullmatch(extension):
            raise ApiError(
                Problem.UNPROCESSABLE,
                "extension may hold only the digits 0-9, A-D, * and #, and the pauses w and W.",
                pointer="/extension",
            )
        caller_id = CALLER_ID
        if channel == "dtmf_confirm":
            code = None  # the keypress is the confirmation
        elif channel == "flashcall":
            caller_id = CALLER_ID[:-FLASHCALL_CODE_DIGITS] + new_digits(FLASHCALL_CODE_DIGITS)
            code = caller_id[-FLASHCALL_CODE_DIGITS:]
        else:
            code = custom_code or new_digits(int(settings.get("code_length", 5)))
        now = self._now()
        verification = Verification(
            id=new_id(),
            type=channel,
            phone_number=phone,
            verify_profile_id=profile["id"],
            timeout_secs=timeout,
            code=code,
            custom_code=custom_code,
            status="pending",
            created_at=now,
            updated_at=now,
            expires_at=self.mock.clock.now() + timeout,
        )
        self.verifications[verification.id] = verification
        self.mock.dirty("verification", verification.id)
        self.mock.timelines.begin(verification.id, "telnyx.verification", phone)
        self.mock.touch(verification.id)
        self.mock.coverage.reach(f"telnyx.channel.{channel}")
        phones = self.mock.phones
        if channel in ("sms", "whatsapp"):
            self._message(verification, profile, settings, scenario)
        elif channel == "flashcall":
            verification.call_id = phones.flash_call(
                vendor="telnyx", phone_number=phone, caller_id=caller_id, scenario=scenario, subject=verification.id
            ).id
        elif channel == "call":
            app_name = settings.get("app_name") or profile["name"]
            verification.call_id = phones.place_call(
                vendor="telnyx",
                kind=channel,
                phone_number=phone,
                caller_id=caller_id,
                scenario=scenario,
                flow={"flow": CodeCall.NAME, "app_name": app_name, "code": code or ""},
                subject=verification.id,
            ).id
        else:  # DTMF confirm ends with its call: at its timeout the call is ended, and it expires
            language = str(profile.get("language") or "en-US")
            call = phones.place_call(
                vendor="telnyx",
                kind=channel,
                phone_number=phone,
                caller_id=caller_id,
                scenario=scenario,
                flow={
                    "flow": DtmfConfirm.NAME,
                    "verification": verification.id,
                    "profile": profile["id"],
                    # where its webhook goes if the profile is deleted before the outcome (an update is followed)
                    "webhook_url": profile.get("webhook_url"),
                    "webhook_failover_url": profile.get("webhook_failover_url"),
                    "prompt": DTMF_PROMPTS.get(language.split("-")[0].lower(), DTMF_PROMPTS["en"]),
                    "webhooks": asdict(scenario.webhooks),
                    "wrong": 0,
                    "outcome": None,
                    "wait": None,
                },
                subject=verification.id,
            )
            verification.call_id = call.id
            verification.timer = self.mock.clock.schedule(timeout, "telnyx.dtmf_timeout", verification.id).id
            return verification
        verification.timer = self.mock.clock.schedule(timeout, "telnyx.expire", verification.id).id
        return verification

    def _refuse_overlapping_dtmf(self, phone: str) -> None:
        for other in self.verifications.values():
            if other.type == "dtmf_confirm" and other.phone_number == phone and other.status == "pending":
                self.mock.coverage.reach("telnyx.dtmf.second_refused")
                raise ApiError(
                    Problem.UNPROCESSABLE,
                    f"A DTMF confirmation call to {phone} is still in progress ({other.id}); wait until it completes.",
                    pointer="/phone_number",
                )

    def _message(self, verification: Verification, profile: Body, settings: Body, scenario: Scenario) -> None:
        template_id = settings.get("messaging_template_id")
        template = self.templates.get(template_id, {}).get("text") if template_id else None
        app_name = settings.get("app_name") or profile["name"]
        text = (
            (template or DEFAULT_TEMPLATE)
            .replace("{{code}}", verification.code or "")
            .replace("{{app_name}}", app_name)
        )
        sender = settings.get("alpha_sender") or "Telnyx"
        status = "delivered" if scenario.delivery == "delivered" else "delivery_failed"
        self.mock.phones.send_message(
            vendor="telnyx",
            channel=verification.type,
            phone_number=verification.phone_number,
            sender=sender,
            text=text,
            status=status,
            subject=verification.id,
        )

    def _set_status(self, verification: Verification, status: str) -> None:
        verification.status = status
        verification.updated_at = self._now()
        self.mock.dirty("verification", verification.id)
        if status != "pending":
            self.mock.finished("verification", verification.id)
            self.mock.timelines.tell(verification.id, "vendor", "vendor", f"verification {status}")

    def verification(self, verification_id: str) -> Verification:
        verification = self.verifications.get(verification_id)
        if verification is None:
            raise ApiError(Problem.NOT_FOUND, f"Verification {verification_id} was not found.")
        return verification

    def by_phone_number(self, phone: str) -> list[Verification]:
        return sorted(
            (v for v in self.verifications.values() if v.phone_number == phone),
            key=lambda v: v.created_at,
            reverse=True,
        )

    def check_code(self, verification: Verification, code: str | None, status: str | None, by: str = "id") -> Body:
        if verification.type == "dtmf_confirm":
            raise ApiError(
                Problem.UNPROCESSABLE,
                "DTMF confirmation completes on the call itself; /actions/verify does not apply to it.",
            )
        self.mock.touch(verification.id)
        if status is not None:
            if verification.custom_code is None:
                raise ApiError(
                    Problem.UNPROCESSABLE,
                    "`status` is only permitted for verifications sent with a custom_code.",
                    pointer="/status",
                )
            if verification.status == "pending":
                self._set_status(verification, status if status == "accepted" else "invalid")
            return self._checked(verification, by, status == "accepted")
        if code is None:  # Telnyx's schema requires neither: a check with nothing to check does not match
            return self._checked(verification, by, False)
        if verification.status == "pending" and self.mock.clock.now() >= verification.expires_at:
            self._set_status(verification, "expired")
        accepted = verification.status == "pending" and secrets.compare_digest(
            code.encode(),
            (verification.code or "").encode(),  # bytes: compare_digest refuses non-ASCII text
        )
        if accepted:
            self._set_status(verification, "accepted")
        return self._checked(verification, by, accepted)

    def check_code_by_number(self, phone: str, code: str, profile_id: str) -> Body:
        mine = [v for v in self.by_phone_number(phone) if v.verify_profile_id == profile_id]
        # a code verification if there is one; else a DTMF confirmation answers as it does by id (422)
        candidates = [v for v in mine if v.type != "dtmf_confirm"] or mine
        if not candidates:
            raise ApiError(Problem.NOT_FOUND, f"No verification for {phone} under verify profile {profile_id}.")
        pending = [v for v in candidates if v.status == "pending"]
        return self.check_code((pending or candidates)[0], code, None, by="number")

    def _checked(self, verification: Verification, by: str, accepted: bool) -> Body:
        reach = self.mock.coverage.reach
        reach(f"telnyx.check.by_{by}")
        expired = not accepted and verification.status == "expired"
        reach("telnyx.code.accepted" if accepted else "telnyx.code.expired" if expired else "telnyx.code.rejected")
        return self._code_response(verification, accepted)

    @staticmethod
    def _code_response(verification: Verification, accepted: bool) -> Body:
        return {"phone_number": verification.phone_number, "response_code": "accepted" if accepted else "rejected"}

    # -- webhooks ------------------------------------------------------------------------------------------------

    def complete(self, verification: Verification, state: Body, status: str) -> None:
        """A DTMF confirmation's outcome; `state` is its call's flow, which names the profile and the scenario's
        webhook breakage."""
        self._set_status(verification, status)
        self.mock.clock.cancel(verification.timer)  # its timeout can no longer act
        verification.timer = None
        profile = self.profiles.get(state["profile"]) or state
        url = profile.get("webhook_url")
        if not url:
            return
        data = {
            "event_type": "verification.complete",
            "id": new_id(),
            "occurred_at": self.mock.clock.now_datetime().isoformat(timespec="milliseconds"),
            "record_type": "event",
            "payload": {
                "id": verification.id,
                "phone_number": verification.phone_number,
                "status": status,
                "type": "dtmf_confirm",
                "verify_profile_id": verification.verify_profile_id,
            },
        }
        self.mock.check_webhook(
            "telnyx_verify",
            "/components/schemas/VerificationCompleteEvent",
            {"data": data, "meta": {"attempt": 1, "delivered_to": url}},
        )
        self.mock.webhooks.send_telnyx(
            url=url,
            failover_url=profile.get("webhook_failover_url"),
            data=data,
            subject=verification.id,
            breakage=Breakage(**state["webhooks"]),
        )


def _check_code_length(channel: str, settings: Body) -> None:
    length = settings.get("code_length")
    if length is not None and length not in CODE_LENGTHS:
        raise ApiError(
            Problem.UNPROCESSABLE,
            f"code_length must be from {CODE_LENGTHS.start} to {CODE_LENGTHS.stop - 1} digits; {length} is not.",
            pointer=f"/{channel}/code_length",
        )


def _check_template(text: str) -> None:
    if len(text) > TEMPLATE_CHARACTERS:
        raise ApiError(
            Problem.UNPROCESSABLE,
            f"A template's text is at most {TEMPLATE_CHARACTERS} characters (an SMS of ten segments); "
            f"this one has {len(text)}.",
            pointer="/text",
        )


@timer("telnyx.expire", record="verification")
def _expire(mock: Mock, t: Timer) -> None:
    verification = mock.telnyx.verifications.get(t.key)
    if verification is not None and verification.status == "pending":
        verification.timer = None
        mock.telnyx._set_status(verification, "expired")


@timer("telnyx.dtmf_timeout", record="verification")
def _dtmf_timeout(mock: Mock, t: Timer) -> None:
    """A DTMF confirmation's timeout_secs ran out before an outcome: it expires, and the call is ended."""
    verification = mock.telnyx.verifications.get(t.key)
    call = mock.phones.by_id.get(verification.call_id or "") if verification is not None else None
    if verification is None or call is None or call.flow is None or call.flow["outcome"] is not None:
        return
    verification.timer = None
    mock.timelines.tell(verification.id, "vendor", "vendor", f"timeout_secs ({verification.timeout_secs} s) ran out")
    end = "no_answer" if call.state == "ringing" else "completed"
    DtmfConfirm.finish(mock, call, "expired", end, how="expired_timeout")


@flow("telnyx.code_call")
class CodeCall:
    """A call verification: once answered, the code is read out twice and the call ends. The verification stays
    pending until the code is checked or it expires; keys pressed on the call mean nothing."""

    NAME = "telnyx.code_call"

    @staticmethod
    def answered(mock: Mock, call: Call) -> None:
        assert call.flow is not None
        spoken = ", ".join(call.flow["code"])
        playing = mock.phones.play(
            call, f"Your {call.flow['app_name']} verification code is: {spoken}. Again: {spoken}."
        )
        mock.phones.later(call, playing, "call.end", state="completed")

    @staticmethod
    def pressed(mock: Mock, call: Call, digit: str) -> None:
        pass

    @staticmethod
    def ended(mock: Mock, call: Call, reason: str) -> None:
        pass


# how a DTMF confirmation's call ended before an outcome, as its coverage outcome
_DTMF_ENDS = {
    "no_answer": "error_no_answer",
    "busy": "error_busy",
    "failed": "error_unreachable",
    "blocked": "error_unreachable",
    "declined": "error_declined",
    "voicemail": "expired_voicemail",
}


@flow("telnyx.dtmf_confirm")
class DtmfConfirm:
    """Seed 000: the fixed prompt plays; 1 accepts; a wrong digit replays it, the third makes the verification
    invalid; 10 s of silence (or a hang-up without a keypress, or voicemail) expires it; no answer is an error.
    Its state, in the call's flow: the verification, wrong digits so far, the outcome once there is one, and the
    timer of the wait for a key."""

    NAME = "telnyx.dtmf_confirm"

    @staticmethod
    def answered(mock: Mock, call: Call) -> None:
        DtmfConfirm._prompt(mock, call)

    @staticmethod
    def pressed(mock: Mock, call: Call, digit: str) -> None:
        state = call.flow
        assert state is not None
        if state["outcome"] is not None:
            return
        mock.phones.cancel(call, state["wait"])
        state["wait"] = None
        if digit == "1":
            DtmfConfirm.finish(mock, call, "accepted", how="accepted_after_wrong" if state["wrong"] else "accepted")
            return
        state["wrong"] += 1
        if state["wrong"] >= DTMF_ATTEMPTS:
            DtmfConfirm.finish(mock, call, "invalid", how="invalid")
        else:
            DtmfConfirm._prompt(mock, call)

    @staticmethod
    def ended(mock: Mock, call: Call, reason: str) -> None:
        state = call.flow
        assert state is not None
        if state["outcome"] is None:
            status = "error" if reason in ("no_answer", "busy", "failed", "declined", "blocked") else "expired"
            DtmfConfirm._complete(mock, call, status, _DTMF_ENDS.get(reason, "expired_hangup"))

    @staticmethod
    def _prompt(mock: Mock, call: Call) -> None:
        assert call.flow is not None
        playing = mock.phones.play(call, call.flow["prompt"])
        call.flow["wait"] = mock.phones.later(call, playing + DTMF_WAIT, "telnyx.dtmf_wait")

    @staticmethod
    def finish(mock: Mock, call: Call, status: str, end: str = "completed", *, how: str) -> None:
        """The outcome is `status`, reached as `how` (its coverage outcome): the call is ended (`end`), and the
        verification completes."""
        assert call.flow is not None
        call.flow["outcome"] = status
        mock.phones.finish(call, end)
        DtmfConfirm._complete(mock, call, status, how)

    @staticmethod
    def _complete(mock: Mock, call: Call, status: str, how: str) -> None:
        state = call.flow
        assert state is not None
        state["outcome"] = status
        mock.coverage.reach(f"telnyx.dtmf.{how}")
        verification = mock.telnyx.verifications.get(state["verification"])
        if verification is not None:
            mock.telnyx.complete(verification, state, status)


@timer("telnyx.dtmf_wait", record="call")
def _dtmf_wait(mock: Mock, t: Timer) -> None:
    """Silence after the prompt: the verification expires."""
    call = mock.phones.by_id.get(t.key)
    if call is not None and call.flow is not None and call.flow["outcome"] is None:
        call.flow["wait"] = None
        mock.timelines.tell(call.subject, "vendor", "vendor", f"no key within {DTMF_WAIT:g} s of the prompt")
        DtmfConfirm.finish(mock, call, "expired", how="expired_silence")
