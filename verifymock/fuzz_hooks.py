"""Schemathesis hooks that let generated requests reach data that exists on the mock being fuzzed.

Random identifiers only ever reach the 404 branch: a verification needs an existing verify profile, a check by phone
number a verification for that number, a handset action a call on that number. `seed` makes such data on the mock
(a profile with every channel, and a ringing call to a number bound to the interactive scenario, with an SMS
verification under that profile), and these hooks put it into about half the generated requests that have the
field. The other half keep their random values, so the 404 answers are still fuzzed. A value is swapped only where
the generated one has the right shape (a UUID, an E.164 number), so a deliberately malformed case stays malformed.

`verifymock fuzz` passes the seeded values to schemathesis' process through the environment (SEEDED).
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis

SEEDED = {
    "profile": "VERIFYMOCK_FUZZ_PROFILE",
    "number": "VERIFYMOCK_FUZZ_NUMBER",
    "verification": "VERIFYMOCK_FUZZ_VERIFICATION",
}
NUMBER = "+13035550199"
TOKEN = "verifymock-fuzz"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SUBJECT = re.compile(r"[^/]{1,200}")  # a story's id as its path takes it


def seed(url: str, authorization: str) -> dict[str, str]:
    """Make the data on the mock at `url` (its root); returns the environment that tells the hooks about it, which
    is empty if the mock refused (a server of yours with other keys): the fuzzing goes on with random values."""
    try:
        return _seed(url, {"Authorization": authorization})
    except httpx.HTTPError as exc:
        print(f"verifymock fuzz: no data seeded ({exc}); requests keep their random identifiers", flush=True)
        return {}


def _seed(url: str, headers: dict[str, str]) -> dict[str, str]:
    channels: dict[str, dict[str, object]] = {c: {} for c in ("sms", "call", "flashcall", "whatsapp", "dtmf_confirm")}
    profile = httpx.post(f"{url}/v2/verify_profiles", json={"name": TOKEN, **channels}, headers=headers, timeout=30)
    profile.raise_for_status()
    profile_id = profile.json()["data"]["id"]
    httpx.put(f"{url}/_mock/bindings/{NUMBER}", json={"scenario": "interactive"}, timeout=30).raise_for_status()
    made = {}
    for channel in ("sms", "dtmf_confirm"):  # a code to check by number, and a call that rings until acted on
        body = {"phone_number": NUMBER, "verify_profile_id": profile_id}
        response = httpx.post(f"{url}/v2/verifications/{channel}", json=body, headers=headers, timeout=30)
        response.raise_for_status()
        made[channel] = response.json()["data"]["id"]
    return {SEEDED["profile"]: profile_id, SEEDED["number"]: NUMBER, SEEDED["verification"]: made["sms"]}


def _half(value: str) -> bool:
    return zlib.crc32(value.encode()) % 2 == 0


# only where the seeded data is what the operation needs: a hook changes how every case of its operations is drawn
NEEDS_PROFILE = [
    "VerifyVerificationCodeByPhoneNumber",
    "CreateVerificationSms",
    "CreateVerificationCall",
    "CreateFlashcallVerification",
    "CreateWhatsappVerification",
    "CreateVerificationDtmfConfirm",
]
NEEDS_NUMBER = [
    "VerifyVerificationCodeByPhoneNumber",
    "ListVerifications",
    "GetHandset",
    "AnswerCall",
    "PressDigits",
    "HangupCall",
    "DeclineCall",
]
NEEDS_VERIFICATION = ["GetTimeline"]  # (its story)


HookFunction = Callable[[Any, Any], Any]
# schemathesis attaches apply_to to its hook decorator at run time, out of the type checker's sight
_apply_to: Callable[..., Callable[[HookFunction], HookFunction]] = schemathesis.hook.apply_to  # type: ignore[attr-defined]


# A check by number reaches a code only with both the seeded number (in its path) and the seeded profile (in its
# body), which separate hooks swap: its profile is always swapped, so the half of its cases that name the seeded
# number reach the code, and the other half still fuzz the 404.
BY_NUMBER = "/verifications/by_phone_number/{phone_number}/actions/verify"


@_apply_to(operation_id=NEEDS_PROFILE)
def map_body(context: Any, body: Any) -> Any:
    always = str(getattr(getattr(context, "operation", None), "path", "")).endswith(BY_NUMBER)
    return _swap(body, "verify_profile_id", _UUID, SEEDED["profile"], always=always)


@_apply_to(operation_id=NEEDS_NUMBER + NEEDS_VERIFICATION)
def map_path_parameters(context: Any, parameters: Any) -> Any:
    swapped = _swap(parameters, "phone_number", _E164, SEEDED["number"])
    return _swap(swapped, "subject_id", _SUBJECT, SEEDED["verification"])


def _swap(values: Any, field: str, shape: re.Pattern[str], variable: str, *, always: bool = False) -> Any:
    """`values` with `field` set to the seeded value, if it was drawn well-formed and falls in the swapped half (or
    `always`)."""
    seeded = os.environ.get(variable)
    if seeded and isinstance(values, dict):
        given = values.get(field)
        if isinstance(given, str) and shape.fullmatch(given) and (always or _half(given)):
            return {**values, field: seeded}
    return values
