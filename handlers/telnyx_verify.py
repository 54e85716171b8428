"""Telnyx Verify: thin handlers over the engine's Telnyx module."""

from __future__ import annotations

from typing import Any

from verifymock.engine import engine

Body = dict[str, Any]
MAX_PAGE_SIZE = 250  # Telnyx clamps page[size] to this


async def _trigger(channel: str, body: Body) -> Body:
    scenario = await engine().scenario_for(body["phone_number"])
    return {"data": engine().telnyx.start(channel, body, scenario).to_json()}


async def create_verification_sms(body: Body) -> Body:
    return await _trigger("sms", body)


async def create_verification_call(body: Body) -> Body:
    return await _trigger("call", body)


async def create_flashcall_verification(body: Body) -> Body:
    return await _trigger("flashcall", body)


async def create_whatsapp_verification(body: Body) -> Body:
    return await _trigger("whatsapp", body)


async def create_verification_dtmf_confirm(body: Body) -> Body:
    return await _trigger("dtmf_confirm", body)


async def retrieve_verification(verification_id: str) -> Body:
    await engine().fetch("verification", verification_id)
    return {"data": engine().telnyx.verification(verification_id).to_json()}


async def verify_verification_code_by_id(verification_id: str, body: Body) -> Body:
    await engine().fetch("verification", verification_id)
    verification = engine().telnyx.verification(verification_id)
    await engine().scenario_for(verification.phone_number)
    return {"data": engine().telnyx.check_code(verification, body.get("code"), body.get("status"))}


async def list_verifications(phone_number: str) -> Body:
    await engine().fetch_by("verification", "verification.number", phone_number)
    found = [v.to_json() for v in engine().telnyx.by_phone_number(phone_number)]
    meta = {"page_number": 1, "page_size": max(len(found), 1), "total_pages": 1, "total_results": len(found)}
    return {"data": found, "meta": meta}


async def verify_verification_code_by_phone_number(phone_number: str, body: Body) -> Body:
    await engine().fetch_by("verification", "verification.number", phone_number)
    await engine().scenario_for(phone_number)
    return {"data": engine().telnyx.check_code_by_number(phone_number, body["code"], body["verify_profile_id"])}


def list_profiles(filter: Body | None = None, page: Body | None = None) -> Body:
    page = page or {}
    name = (filter or {}).get("name")
    number, size = int(page.get("number", 1)), int(page.get("size", 25))
    return engine().telnyx.list_profiles(name, max(number, 1), min(max(size, 1), MAX_PAGE_SIZE))


def create_verify_profile(body: Body) -> Body:
    return {"data": engine().telnyx.create_profile(body)}


def get_verify_profile(verify_profile_id: str) -> Body:
    return {"data": engine().telnyx.profile(verify_profile_id)}


def update_verify_profile(verify_profile_id: str, body: Body) -> Body:
    return {"data": engine().telnyx.update_profile(verify_profile_id, body)}


def delete_profile(verify_profile_id: str) -> Body:
    return {"data": engine().telnyx.delete_profile(verify_profile_id)}


def list_profile_message_templates() -> Body:
    return {"data": list(engine().telnyx.templates.values())}


def create_message_template(body: Body) -> Body:
    return {"data": engine().telnyx.create_template(body["text"])}


def update_message_template(template_id: str, body: Body) -> Body:
    return {"data": engine().telnyx.update_template(template_id, body["text"])}
