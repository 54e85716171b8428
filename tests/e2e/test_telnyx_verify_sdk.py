"""Telnyx Verify end to end: the official `telnyx` SDK against the real server, the handset, a real receiver."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import telnyx

from tests.helpers import PROFILE_BODY
from tests.receiver import Receiver
from verifymock.calls import speaking_time
from verifymock.server import Running
from verifymock.vendors.telnyx import DTMF_PROMPTS

NUMBER = "+13035551234"
PROMPT_SECONDS = speaking_time(DTMF_PROMPTS["en"])  # how long the DTMF-confirm prompt plays


@pytest.fixture
def sdk(mock_server: Running, control: httpx.Client) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key="KEY-test", base_url=f"{mock_server.url}/v2", max_retries=0)


def make_profile(sdk: telnyx.Telnyx, receiver: Receiver, **extra: Any) -> str:
    body = {k: v for k, v in PROFILE_BODY.items() if k not in ("name", "dtmf_confirm")}
    profile = sdk.verify_profiles.create(
        name="Acme login",
        webhook_url=f"{receiver.url}/hook",
        webhook_failover_url=f"{receiver.url}/failover",
        extra_body={"dtmf_confirm": {"default_timeout_secs": 300}, **body, **extra},
    )
    assert profile.data is not None and profile.data.id is not None
    return profile.data.id


def advance(control: httpx.Client, seconds: float) -> dict[str, Any]:
    response = control.post("/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return dict(response.json())


def handset(control: httpx.Client, number: str = NUMBER) -> dict[str, Any]:
    return dict(control.get(f"/handsets/{number}").json())


def dtmf_confirm(sdk: telnyx.Telnyx, profile_id: str, number: str = NUMBER) -> dict[str, Any]:
    result = sdk.post(
        "/verifications/dtmf_confirm", body={"phone_number": number, "verify_profile_id": profile_id}, cast_to=object
    )
    assert isinstance(result, dict)
    return dict(result["data"])


# -- verify profiles ----------------------------------------------------------------------------------------------


def test_telnyx_profile_crud(sdk: telnyx.Telnyx, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    fetched = sdk.verify_profiles.retrieve(profile_id).data
    assert fetched is not None and fetched.name == "Acme login"
    assert fetched.sms is not None and fetched.sms.code_length == 5
    assert fetched.to_dict()["dtmf_confirm"] == {"default_timeout_secs": 300}

    updated = sdk.verify_profiles.update(profile_id, name="Acme 2FA", sms={"code_length": 7}).data
    assert updated is not None and updated.name == "Acme 2FA"
    assert updated.sms is not None and updated.sms.code_length == 7
    assert updated.sms.app_name == "Acme"  # fields left out keep their value

    deleted = sdk.verify_profiles.delete(profile_id).data
    assert deleted is not None and deleted.id == profile_id and deleted.name == "Acme 2FA"
    with pytest.raises(telnyx.NotFoundError) as caught:
        sdk.verify_profiles.retrieve(profile_id)
    assert caught.value.body["errors"][0]["code"] == "10005"  # type: ignore[index]


def test_telnyx_profiles_paginate_every_profile_once(sdk: telnyx.Telnyx, receiver: Receiver) -> None:
    created = {make_profile(sdk, receiver) for _ in range(7)}
    seen = [p.id for p in sdk.verify_profiles.list(page_size=3)]
    assert sorted(seen) == sorted(created)
    page = sdk.verify_profiles.list(page_size=3, page_number=3)
    assert page.meta is not None
    assert (page.meta.page_number, page.meta.page_size, page.meta.total_pages, page.meta.total_results) == (3, 3, 3, 7)
    assert len(page.data or []) == 1
    beyond = sdk.verify_profiles.list(page_size=3, page_number=9)
    assert beyond.data == [] and beyond.meta is not None and beyond.meta.page_number == 9


def test_telnyx_profiles_filter_by_name(sdk: telnyx.Telnyx, receiver: Receiver) -> None:
    make_profile(sdk, receiver)
    other = sdk.verify_profiles.create(name="Other").data
    assert other is not None
    found = sdk.verify_profiles.list(filter={"name": "Other"})
    assert [p.id for p in found.data or []] == [other.id]


def test_telnyx_message_templates(sdk: telnyx.Telnyx) -> None:
    template = sdk.verify_profiles.create_template(text="Code for {{app_name}}: {{code}}").data
    assert template is not None and template.id is not None
    changed = sdk.verify_profiles.update_template(template.id, text="{{code}} is your code").data
    assert changed is not None and changed.text == "{{code}} is your code"
    listed = sdk.verify_profiles.retrieve_templates().data or []
    assert [(t.id, t.text) for t in listed] == [(template.id, "{{code}} is your code")]


# -- code verifications ---------------------------------------------------------------------------------------------


def sms_code(control: httpx.Client, number: str = NUMBER) -> str:
    [message] = handset(control, number)["messages"]
    return str(message["text"].rsplit(" ", 1)[-1].rstrip("."))


def test_telnyx_sms_code_from_handset_accepted_by_id(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_sms(phone_number=NUMBER, verify_profile_id=profile_id).data
    assert verification is not None and verification.status == "pending" and verification.type == "sms"
    [message] = handset(control)["messages"]
    assert message["text"].startswith("Your Acme verification code is: ")
    code = sms_code(control)
    assert len(code) == 5 and code.isdigit()

    wrong = sdk.verifications.actions.verify(verification.id, code="00000" if code != "00000" else "11111")
    assert wrong.data is not None and wrong.data.response_code == "rejected"
    assert sdk.verifications.retrieve(verification.id).data.status == "pending"  # type: ignore[union-attr]

    right = sdk.verifications.actions.verify(verification.id, code=code)
    assert right.data is not None and (right.data.response_code, right.data.phone_number) == ("accepted", NUMBER)
    assert sdk.verifications.retrieve(verification.id).data.status == "accepted"  # type: ignore[union-attr]


def test_telnyx_call_code_spoken_and_accepted_by_number(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_call(phone_number=NUMBER, verify_profile_id=profile_id).data
    assert verification is not None and verification.type == "call"
    [call] = handset(control)["calls"]
    assert (call["state"], call["prompts"]) == ("ringing", [])
    advance(control, 2)  # the default callee answers after 2 s
    [call] = handset(control)["calls"]
    assert call["state"] == "in_progress"
    spoken = call["prompts"][0]
    code = "".join(ch for ch in spoken.split(":", 1)[1].split(".")[0] if ch.isdigit())
    assert len(code) == 5

    result = sdk.verifications.by_phone_number.actions.verify(NUMBER, code=code, verify_profile_id=profile_id)
    assert result.data is not None and result.data.response_code == "accepted"
    listed = sdk.verifications.by_phone_number.list(NUMBER)
    assert [(v.id, v.status) for v in listed.data or []] == [(verification.id, "accepted")]


def test_telnyx_code_expires_on_the_clock(sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_sms(
        phone_number=NUMBER, verify_profile_id=profile_id, timeout_secs=60
    ).data
    assert verification is not None and verification.timeout_secs == 60
    code = sms_code(control)
    advance(control, 61)
    assert sdk.verifications.retrieve(verification.id).data.status == "expired"  # type: ignore[union-attr]
    late = sdk.verifications.actions.verify(verification.id, code=code)
    assert late.data is not None and late.data.response_code == "rejected"


def test_telnyx_custom_code_is_sent_and_checked(sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_sms(phone_number=NUMBER, verify_profile_id=profile_id, custom_code="4242")
    assert verification.data is not None and verification.data.custom_code == "4242"
    assert sms_code(control) == "4242"
    result = sdk.verifications.by_phone_number.actions.verify(NUMBER, code="4242", verify_profile_id=profile_id)
    assert result.data is not None and result.data.response_code == "accepted"


def test_telnyx_flashcall_code_is_the_caller_id_tail(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_flashcall(phone_number=NUMBER, verify_profile_id=profile_id).data
    assert verification is not None
    [flash] = handset(control)["calls"]
    assert flash["kind"] == "flashcall"
    result = sdk.verifications.actions.verify(verification.id, code=flash["caller_id"][-4:])
    assert result.data is not None and result.data.response_code == "accepted"


def test_telnyx_unknown_profile_and_missing_channel_are_refused(sdk: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.NotFoundError) as unknown:
        sdk.verifications.trigger_sms(phone_number=NUMBER, verify_profile_id="5b7d9a7e-9d3e-4f34-9a57-3c1f2f7f9c11")
    assert unknown.value.body["errors"][0]["code"] == "10005"  # type: ignore[index]
    bare = sdk.verify_profiles.create(name="sms only", sms={}).data
    assert bare is not None and bare.id is not None
    with pytest.raises(telnyx.UnprocessableEntityError) as missing:
        sdk.verifications.trigger_call(phone_number=NUMBER, verify_profile_id=bare.id)
    error = missing.value.body["errors"][0]  # type: ignore[index]
    assert error["code"] == "10015" and "call" in error["detail"]


# -- DTMF confirm -------------------------------------------------------------------------------------------------


def bind(control: httpx.Client, scenario: str, number: str = NUMBER) -> None:
    assert control.put(f"/bindings/{number}", json={"scenario": scenario}).status_code == 200


def completion_webhooks(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.at("/hook")]


@pytest.mark.parametrize(
    ("actions", "status"),
    [
        ([("answer", None), ("press", "1")], "accepted"),
        ([("answer", None), ("press", "7"), ("press", "8"), ("press", "9")], "invalid"),
        ([("answer", None), ("advance", PROMPT_SECONDS + 10)], "expired"),  # 10 s of silence once it has played
        ([("advance", 30)], "error"),
    ],
    ids=["pressed-1", "three-wrong-digits", "silence", "not-answered"],
)
def test_telnyx_dtmf_confirm_outcomes_through_the_handset(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver, actions: list[tuple[str, Any]], status: str
) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    verification = dtmf_confirm(sdk, profile_id)
    assert (verification["type"], verification["status"], verification["timeout_secs"]) == (
        "dtmf_confirm",
        "pending",
        300,
    )
    for action, argument in actions:
        if action == "advance":
            advance(control, argument)
        elif action == "press":
            assert control.post(f"/handsets/{NUMBER}/press", json={"digits": argument}).status_code == 200
        else:
            assert control.post(f"/handsets/{NUMBER}/{action}").status_code == 200
    assert sdk.verifications.retrieve(verification["id"]).data.status == status  # type: ignore[union-attr]
    [event] = completion_webhooks(receiver)
    assert event["data"]["event_type"] == "verification.complete"
    assert event["data"]["payload"] == {
        "id": verification["id"],
        "phone_number": NUMBER,
        "status": status,
        "type": "dtmf_confirm",
        "verify_profile_id": profile_id,
    }
    assert event["meta"] == {"attempt": 1, "delivered_to": f"{receiver.url}/hook"}
    [call] = handset(control)["calls"]
    assert call["state"] in ("completed", "no_answer")
    if call["answered_at"]:
        assert "please press 1" in call["prompts"][0]


def test_telnyx_dtmf_wrong_digit_replays_the_prompt(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    verification = dtmf_confirm(sdk, profile_id)
    control.post(f"/handsets/{NUMBER}/answer")
    call = control.post(f"/handsets/{NUMBER}/press", json={"digits": "4"}).json()
    assert len(call["prompts"]) == 2 and call["prompts"][0] == call["prompts"][1]
    advance(control, 9)  # the 10 s wait restarted with the replay
    assert sdk.verifications.retrieve(verification["id"]).data.status == "pending"  # type: ignore[union-attr]
    control.post(f"/handsets/{NUMBER}/press", json={"digits": "1"})
    assert sdk.verifications.retrieve(verification["id"]).data.status == "accepted"  # type: ignore[union-attr]


def test_telnyx_dtmf_prompt_follows_the_profile_language(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver, language="es-MX")
    dtmf_confirm(sdk, profile_id)
    advance(control, 2)
    [call] = handset(control)["calls"]
    assert "pulse 1" in call["prompts"][0]


def test_telnyx_dtmf_refuses_a_second_call_while_one_is_live(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    first = dtmf_confirm(sdk, profile_id)
    with pytest.raises(telnyx.UnprocessableEntityError) as refused:
        dtmf_confirm(sdk, profile_id)
    assert first["id"] in refused.value.body["errors"][0]["detail"]  # type: ignore[index]
    control.post(f"/handsets/{NUMBER}/decline")
    assert sdk.verifications.retrieve(first["id"]).data.status == "error"  # type: ignore[union-attr]
    assert dtmf_confirm(sdk, profile_id)["status"] == "pending"  # the number is free again


def test_telnyx_dtmf_verify_endpoint_does_not_apply(sdk: telnyx.Telnyx, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = dtmf_confirm(sdk, profile_id)
    with pytest.raises(telnyx.UnprocessableEntityError) as refused:
        sdk.verifications.actions.verify(verification["id"], code="1")
    assert "does not apply" in refused.value.body["errors"][0]["detail"]  # type: ignore[index]


def test_telnyx_dtmf_timeout_takes_no_wall_time(sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    verification = dtmf_confirm(sdk, profile_id)
    control.post(f"/handsets/{NUMBER}/answer")
    started = time.perf_counter()
    advance(control, PROMPT_SECONDS + 10)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert sdk.verifications.retrieve(verification["id"]).data.status == "expired"  # type: ignore[union-attr]
    # the claim is that the manual clock does not sleep through the 10 s, not how fast the machine is (a 50 ms bound
    # failed on a busy CI core at 51.8 ms): a tenth of the timeout still proves no wall time was waited
    assert elapsed_ms < 1000, f"crossing the 10 s timeout took {elapsed_ms:.1f} ms of wall time"


# -- webhooks -------------------------------------------------------------------------------------------------


def test_telnyx_webhook_verifies_with_the_sdk_and_fails_when_a_byte_changes(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    dtmf_confirm(sdk, profile_id)
    advance(control, 5)  # default scenario: answered at 2 s, 1 pressed at 3 s after that
    [received] = receiver.at("/hook")
    public_key = control.get("/keys").json()["telnyx"]["public_key"]
    event = sdk.webhooks.unwrap(received.body.decode(), headers=received.headers, key=public_key)
    assert event.to_dict()["data"]["event_type"] == "verification.complete"
    tampered = received.body.replace(b'"accepted"', b'"acceptex"')
    assert tampered != received.body
    with pytest.raises(ValueError, match="Signature verification failed"):
        sdk.webhooks.unwrap(tampered.decode(), headers=received.headers, key=public_key)


def test_telnyx_webhook_fails_over_then_retries_on_the_clock(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    receiver.script["/hook"] = [500, 500]
    receiver.script["/failover"] = [503]
    dtmf_confirm(sdk, profile_id)
    advance(control, 5)
    [delivery] = control.get("/webhooks").json()["data"]
    assert [(a["url"].rsplit("/", 1)[-1], a["status_code"]) for a in delivery["attempts"]] == [
        ("hook", 500),
        ("failover", 503),
    ]
    assert delivery["state"] == "pending"
    advance(control, 5)  # the first retry round, on the clock
    [delivery] = control.get("/webhooks").json()["data"]
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 503), (3, 500), (4, 200)]
    assert delivery["state"] == "delivered"
    final = json.loads(receiver.at("/failover")[-1].body)
    assert final["meta"] == {"attempt": 4, "delivered_to": f"{receiver.url}/failover"}


def test_telnyx_webhook_breakage_scenarios(sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    bad, dropped = "+15005550401", "+15005550402"  # webhooks/bad_signature, webhooks/primary_down
    dtmf_confirm(sdk, profile_id, bad)
    dtmf_confirm(sdk, profile_id, dropped)
    advance(control, 6)
    public_key = control.get("/keys").json()["telnyx"]["public_key"]
    by_number = {json.loads(r.body)["data"]["payload"]["phone_number"]: r for r in receiver.received}
    with pytest.raises(ValueError, match="Signature verification failed"):
        sdk.webhooks.unwrap(by_number[bad].body.decode(), headers=by_number[bad].headers, key=public_key)
    assert by_number[dropped].path == "/failover"
    sdk.webhooks.unwrap(by_number[dropped].body.decode(), headers=by_number[dropped].headers, key=public_key)


# -- fidelity: what Telnyx's schema accepts, the mock accepts -----------------------------------------------------


def test_telnyx_check_with_neither_code_nor_status_is_rejected(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    verification = sdk.verifications.trigger_sms(phone_number=NUMBER, verify_profile_id=make_profile(sdk, receiver))
    assert verification.data is not None
    result = sdk.verifications.actions.verify(verification.data.id)
    assert result.data is not None and result.data.response_code == "rejected"
    assert sdk.verifications.retrieve(verification.data.id).data.status == "pending"  # type: ignore[union-attr]


def test_telnyx_profile_pages_are_clamped_never_refused(sdk: telnyx.Telnyx, mock_server: Running) -> None:
    for i in range(3):
        sdk.verify_profiles.create(name=f"Clamp {i}")
    for query, number, size in (
        ("page[number]=0&page[size]=1000", 1, 250),
        ("page[number]=-4&page[size]=0", 1, 1),
    ):
        answer = httpx.get(f"{mock_server.url}/v2/verify_profiles?{query}", headers={"Authorization": "Bearer k"})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["meta"]["page_number"], answer.json()["meta"]["page_size"]) == (number, size)


def test_telnyx_template_text_may_be_empty(sdk: telnyx.Telnyx) -> None:
    template = sdk.verify_profiles.create_template(text="").data
    assert template is not None and template.text == ""


def test_telnyx_flashcall_ignores_custom_code(sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = sdk.verifications.trigger_flashcall(
        phone_number=NUMBER, verify_profile_id=profile_id, extra_body={"custom_code": "99999"}
    ).data
    assert verification is not None
    [flash] = handset(control)["calls"]
    ignored = sdk.verifications.actions.verify(verification.id, code="99999")
    assert ignored.data is not None and ignored.data.response_code == "rejected"
    result = sdk.verifications.actions.verify(verification.id, code=flash["caller_id"][-4:])
    assert result.data is not None and result.data.response_code == "accepted"


def test_telnyx_dtmf_confirm_expires_at_its_timeout(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    verification = sdk.post(
        "/verifications/dtmf_confirm",
        body={"phone_number": NUMBER, "verify_profile_id": profile_id, "timeout_secs": 20},
        cast_to=object,
    )["data"]  # type: ignore[index]
    advance(control, 19)
    assert sdk.verifications.retrieve(verification["id"]).data.status == "pending"  # type: ignore[union-attr]
    advance(control, 1)  # still ringing at 20 s: the verification expires, and the call is ended
    assert sdk.verifications.retrieve(verification["id"]).data.status == "expired"  # type: ignore[union-attr]
    assert [h["data"]["payload"]["status"] for h in completion_webhooks(receiver)] == ["expired"]
    assert handset(control)["calls"][0]["state"] != "ringing"


def test_telnyx_code_check_on_a_dtmf_confirm_answers_alike_by_id_and_number(
    sdk: telnyx.Telnyx, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    verification = dtmf_confirm(sdk, profile_id)
    with pytest.raises(telnyx.UnprocessableEntityError) as by_id:
        sdk.verifications.actions.verify(verification["id"], code="1")
    with pytest.raises(telnyx.UnprocessableEntityError) as by_number:
        sdk.verifications.by_phone_number.actions.verify(NUMBER, code="1", verify_profile_id=profile_id)
    assert by_id.value.body == by_number.value.body


def test_telnyx_dtmf_wait_starts_when_the_prompt_ends_and_keys_barge_in(
    sdk: telnyx.Telnyx, control: httpx.Client, receiver: Receiver
) -> None:
    profile_id = make_profile(sdk, receiver)
    bind(control, "interactive")
    first = dtmf_confirm(sdk, profile_id)
    call = control.post(f"/handsets/{NUMBER}/answer").json()
    assert call["playing"] == DTMF_PROMPTS["en"]  # the handset shows the prompt while it plays
    advance(control, PROMPT_SECONDS + 9)  # 9 s of silence after it ended: still waiting
    assert handset(control)["calls"][0]["playing"] is None
    assert sdk.verifications.retrieve(first["id"]).data.status == "pending"  # type: ignore[union-attr]
    advance(control, 1)
    assert sdk.verifications.retrieve(first["id"]).data.status == "expired"  # type: ignore[union-attr]

    second = dtmf_confirm(sdk, profile_id)
    control.post(f"/handsets/{NUMBER}/answer")
    advance(control, 2)  # the prompt is still playing: a key pressed now counts
    control.post(f"/handsets/{NUMBER}/press", json={"digits": "1"})
    assert sdk.verifications.retrieve(second["id"]).data.status == "accepted"  # type: ignore[union-attr]
