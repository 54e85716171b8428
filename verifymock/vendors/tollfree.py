"""Telnyx toll-free verification requests and their review, played out over days on the clock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from verifymock.clock import Timer
from verifymock.errors import ApiError, Problem
from verifymock.ids import new_id
from verifymock.registry import timer
from verifymock.scenarios import Scenario
from verifymock.webhooks import Breakage

if TYPE_CHECKING:
    from verifymock.engine import Mock

Body = dict[str, Any]

EVENT = "messaging_tollfree.verification.status_changed"  # mock-defined: Telnyx publishes no event name
MAX_PAGE_SIZE = 100  # page_size is clamped to this
FINAL = ("Verified", "Rejected")


@dataclass
class TollFreeRequest:
    id: str
    fields: Body
    status: str
    reason: str | None
    created: datetime
    updated: datetime
    review: list[Body]  # the scenario's steps: after (seconds), status, reason
    webhooks: Body  # the scenario's breakage of its webhooks
    history: list[Body] = field(default_factory=list)
    next_step: int = 0
    timer: str | None = None  # the id of the next step's timer

    @classmethod
    def from_data(cls, data: Body) -> TollFreeRequest:
        created, updated = datetime.fromisoformat(data["created"]), datetime.fromisoformat(data["updated"])
        return cls(**{**data, "created": created, "updated": updated})

    def to_status(self) -> Body:
        return {
            **self.fields,
            "id": self.id,
            "verificationStatus": self.status,
            "reason": self.reason,
            "createdAt": self.created.isoformat(),
            "updatedAt": self.updated.isoformat(),
        }

    def to_egress(self) -> Body:
        return {**self.fields, "id": self.id, "verificationRequestId": self.id, "verificationStatus": self.status}


class TollFree:
    name = "tollfree"

    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        self.requests: dict[str, TollFreeRequest] = {}

    def clear(self) -> None:
        self.requests.clear()

    def submit(self, body: Body, scenario: Scenario) -> Body:
        now = self.mock.clock.now_datetime()
        review = [asdict(step) for step in scenario.review]
        request = TollFreeRequest(
            new_id(), _normalised(body), "In Progress", None, now, now, review, asdict(scenario.webhooks)
        )
        self.requests[request.id] = request
        self.mock.dirty("tollfree", request.id)
        numbers = request.fields.get("phoneNumbers") or [{}]
        self.mock.timelines.begin(request.id, "tollfree.request", str(numbers[0].get("phoneNumber", "")))
        self.mock.touch(request.id)
        self.mock.coverage.reach("tollfree.submitted")
        self._record(request)
        self._schedule(request)
        return request.to_egress()

    def get(self, request_id: str) -> TollFreeRequest:
        request = self.requests.get(request_id)
        if request is None:
            raise ApiError(Problem.NOT_FOUND, f"Verification request {request_id} was not found.")
        return request

    def update(self, request_id: str, body: Body) -> Body:
        request = self.get(request_id)
        request.fields = _normalised(body)
        request.updated = self.mock.clock.now_datetime()
        self.mock.dirty("tollfree", request_id)
        self.mock.touch(request_id)
        if request.status == "Waiting For Customer":
            self.mock.coverage.reach("tollfree.updated_while_waiting")
            self._change(request, "In Progress", None)
            self._schedule(request)
        return request.to_egress()

    def delete(self, request_id: str) -> None:
        request = self.get(request_id)
        if request.status != "Rejected":
            raise ApiError(
                Problem.INVALID_PARAMETER,
                f"Verification request {request_id} is {request.status}; only a Rejected request can be deleted.",
                parameter="id",
            )
        self.mock.clock.cancel(request.timer)
        del self.requests[request_id]
        self.mock.coverage.reach("tollfree.deleted")
        self.mock.dirty("tollfree", request_id)
        self.mock.touch(request_id)

    def list(self, page: int, page_size: int, filters: Body) -> Body:
        size = min(page_size, MAX_PAGE_SIZE)
        matching = [r for r in self.requests.values() if self._matches(r, filters)]
        start = (page - 1) * size
        return {"records": [r.to_status() for r in matching[start : start + size]], "total_records": len(matching)}

    @staticmethod
    def _matches(request: TollFreeRequest, filters: Body) -> bool:
        if filters.get("status") and request.status != filters["status"]:
            return False
        if filters.get("phone_number") and filters["phone_number"] not in [
            n["phoneNumber"] for n in request.fields.get("phoneNumbers", [])
        ]:
            return False
        name = filters.get("business_name")
        if name and name.casefold() not in str(request.fields.get("businessName", "")).casefold():
            return False
        if filters.get("date_start") and request.created < filters["date_start"]:
            return False
        return not (filters.get("date_end") and request.created > filters["date_end"])

    def history(self, request_id: str, page: int, page_size: int) -> Body:
        request = self.get(request_id)
        size = min(page_size, MAX_PAGE_SIZE)
        start = (page - 1) * size
        return {"records": request.history[start : start + size], "total_records": len(request.history)}

    # -- the review -------------------------------------------------------------------------------------------

    def _schedule(self, request: TollFreeRequest) -> None:
        """Arm the scenario's next step; a Waiting For Customer step waits for the customer instead."""
        steps = request.review
        if request.next_step >= len(steps) or request.status in ("Waiting For Customer", "Verified", "Rejected"):
            return
        request.timer = self.mock.clock.schedule(steps[request.next_step]["after"], "tollfree.review", request.id).id
        self.mock.dirty("tollfree", request.id)

    def review_step(self, request: TollFreeRequest) -> None:
        step = request.review[request.next_step]
        request.next_step += 1
        request.timer = None
        self._change(request, step["status"], step["reason"])
        self._schedule(request)

    def _change(self, request: TollFreeRequest, status: str, reason: str | None) -> None:
        if status != "In Progress":
            self.mock.coverage.reach(f"tollfree.status.{status.lower().replace(' ', '_')}")
        request.status = status
        request.reason = reason
        self.mock.dirty("tollfree", request.id)
        if status in FINAL:
            self.mock.finished("tollfree", request.id)
        request.updated = self.mock.clock.now_datetime()
        self.mock.timelines.tell(request.id, "vendor", "vendor", f"review: {status}", detail=reason)
        self._record(request)
        self._notify(request)

    def _record(self, request: TollFreeRequest) -> None:
        request.history.append(
            {"verificationStatus": request.status, "updatedAt": request.updated.isoformat(), "reason": request.reason}
        )

    def _notify(self, request: TollFreeRequest) -> None:
        url = request.fields.get("webhookUrl")
        if not url:
            return
        data = {
            "event_type": EVENT,
            "id": new_id(),
            "occurred_at": request.updated.isoformat(timespec="milliseconds"),
            "record_type": "event",
            "payload": request.to_status(),
        }
        self.mock.check_webhook(
            "telnyx_tollfree",
            "/components/schemas/StatusChangedEvent",
            {"data": data, "meta": {"attempt": 1, "delivered_to": url}},
        )
        self.mock.webhooks.send_telnyx(
            url=url, failover_url=None, data=data, subject=request.id, breakage=Breakage(**request.webhooks)
        )


def _normalised(body: Body) -> Body:
    """The fields as Telnyx keeps them: the registration country in upper case."""
    fields = dict(body)
    if isinstance(fields.get("businessRegistrationCountry"), str):
        fields["businessRegistrationCountry"] = fields["businessRegistrationCountry"].upper()
    return fields


@timer("tollfree.review", record="tollfree")
def _review(mock: Mock, t: Timer) -> None:
    request = mock.tollfree.requests.get(t.key)
    if request is not None:
        mock.tollfree.review_step(request)
