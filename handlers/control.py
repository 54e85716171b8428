"""The control API: the mock's own health, reset and journal."""

from __future__ import annotations

from typing import Any

from verifymock.engine import engine
from verifymock.errors import ApiError, Problem
from verifymock.reply import Reply

Body = dict[str, Any]
JOURNAL_PAGE = 1000  # entries a journal read returns unless it asks for another limit


def get_health() -> Body:
    return {"status": "ok"}


async def reset_mock(coverage: str = "clear", test: str | None = None) -> Reply:
    mock = engine()
    await mock.reset(keep_coverage=coverage == "keep")
    if test is not None:
        mock.coverage.test = test
    return Reply(None, 204)


def get_coverage() -> Body:
    return engine().coverage.report()


def list_timelines(limit: int = 100) -> Body:
    stories = list(engine().timelines.stories.values())
    return {"data": [story.summary() for story in reversed(stories[-limit:])]}


def get_timeline(subject_id: str) -> Body:
    story = engine().timelines.stories.get(subject_id)
    if story is None:
        raise ApiError(Problem.NOT_FOUND, f"No story of a verification, transaction, call or request {subject_id}.")
    return story.to_json()


def set_coverage_test(body: Body) -> Reply:
    mock = engine()
    mock.coverage.test = body["test"]
    mock.changed()  # the meta names it, for the other processes of a shared store and a restart
    return Reply(None, 204)


def list_journal(
    operation_id: str | None = None,
    vendor: str | None = None,
    phone_number: str | None = None,
    limit: int = JOURNAL_PAGE,
    before: int | None = None,
) -> Body:
    entries = engine().journal.find(
        operation_id=operation_id, vendor=vendor, phone_number=phone_number, limit=limit, before=before
    )
    return {"data": [e.to_json() for e in entries]}


def list_specs() -> Body:
    return {"data": engine().describe()}


def _clock(**extra: Any) -> Body:
    clock = engine().clock
    return {"now": clock.now_datetime().isoformat().replace("+00:00", "Z"), "mode": clock.label, **extra}


def get_clock() -> Body:
    return _clock()


async def advance_clock(body: Body) -> Body:
    engine().webhooks.watch()  # the advance answers once the webhooks its timers caused were attempted
    ran = await engine().advance(float(body["seconds"]))
    return _clock(timers_run=ran)


async def list_handsets() -> Body:
    mock = engine()
    older = (await mock.on_disk("call"), await mock.on_disk("message"))
    return {"data": mock.phones.handsets(extra=list(mock.scenarios.bindings), older=older)}


async def get_handset(phone_number: str) -> Body:
    mock = engine()
    older = (
        await mock.on_disk("call", "call.number", phone_number),
        await mock.on_disk("message", "message.number", phone_number),
    )
    return mock.phones.handset(phone_number, older)


async def _act(phone_number: str, action: str, *args: str) -> Body:
    phones = engine().phones
    engine().webhooks.watch()
    call = phones.current_call(phone_number)
    getattr(phones, action)(call, *args)
    await engine().webhooks.settle()  # what the action caused has been attempted when this answers
    return call.to_json(engine().clock.now())


async def answer_call(phone_number: str) -> Body:
    return await _act(phone_number, "answer")


async def press_digits(phone_number: str, body: Body) -> Body:
    return await _act(phone_number, "press", body["digits"])


async def hangup_call(phone_number: str) -> Body:
    return await _act(phone_number, "hangup")


async def decline_call(phone_number: str) -> Body:
    return await _act(phone_number, "decline")


def list_scenarios() -> Body:
    return {"data": [s.to_json() for s in engine().scenarios.all.values()]}


def list_bindings() -> Body:
    return {"data": [{"phone_number": n, "scenario": s} for n, s in engine().scenarios.bindings.items()]}


def bind_scenario(phone_number: str, body: Body) -> Body:
    engine().scenarios.bind(phone_number, body["scenario"])
    return {"phone_number": phone_number, "scenario": body["scenario"]}


def unbind_scenario(phone_number: str) -> Reply:
    if not engine().scenarios.unbind(phone_number):
        raise ApiError(Problem.NOT_FOUND, f"{phone_number} is not bound to a scenario.")
    return Reply(None, 204)


def list_webhooks() -> Body:
    return {"data": [d.to_json() for d in engine().webhooks.deliveries]}


def get_keys() -> Body:
    return {"telnyx": {"public_key": engine().signer.public_key}}


def list_faults() -> Body:
    return {"data": [f.to_json() for f in engine().faults.active]}


def create_fault(body: Body) -> Reply:
    return Reply(engine().faults.add(body).to_json(), 201)


def delete_fault(fault_id: int) -> Reply:
    if not engine().faults.remove(fault_id):
        raise ApiError(Problem.NOT_FOUND, f"There is no fault {fault_id}.")
    return Reply(None, 204)
