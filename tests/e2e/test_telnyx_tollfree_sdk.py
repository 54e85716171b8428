"""Toll-free verification end to end: the official telnyx SDK, a review over days on the clock, signed webhooks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import telnyx
from openapi_core import OpenAPI

from tests.helpers import SPECS
from tests.oracle import assert_journal_conforms, assert_webhooks_conform
from tests.receiver import Receiver
from verifymock.server import Running

DAY = 86400


@pytest.fixture
def requests_api(mock_server: Running, control: httpx.Client) -> Any:
    client = telnyx.Telnyx(api_key="KEY-test", base_url=f"{mock_server.url}/v2", max_retries=0)
    return client.messaging_tollfree.verification.requests


def details(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "business_name": "Acme Corp",
        "corporate_website": "https://acme.example",
        "business_addr1": "1 Main St",
        "business_city": "Chicago",
        "business_state": "Illinois",
        "business_zip": "60601",
        "business_contact_first_name": "Ada",
        "business_contact_last_name": "Lovelace",
        "business_contact_email": "ada@acme.example",
        "business_contact_phone": "+13125550100",
        "message_volume": "10,000",
        "phone_numbers": [{"phone_number": "+18773554398"}],
        "use_case": "2FA",
        "use_case_summary": "Login codes for our app",
        "production_message_content": "Your Acme code is 123456",
        "opt_in_workflow": "Users tick a box on sign-up",
        "opt_in_workflow_image_urls": [{"url": "https://acme.example/optin.png"}],
        "additional_information": "None",
        "webhook_url": f"{receiver.url}/tfv",
    }
    fields.update(overrides)
    return fields


def statuses(receiver: Receiver, public_key: str, sdk: telnyx.Telnyx) -> list[tuple[str, str | None]]:
    """Every status-change webhook, each verified with the SDK's own unwrap."""
    seen = []
    for received in receiver.at("/tfv"):
        event = sdk.webhooks.unwrap(received.body.decode(), headers=received.headers, key=public_key).to_dict()
        assert event["data"]["event_type"] == "messaging_tollfree.verification.status_changed"
        payload = event["data"]["payload"]
        seen.append((payload["verificationStatus"], payload.get("reason")))
    return seen


def test_tollfree_submit_get_update(requests_api: Any, receiver: Receiver) -> None:
    created = requests_api.create(**details(receiver))
    assert created.verification_status == "In Progress"
    assert created.verification_request_id == created.id
    fetched = requests_api.retrieve(created.id)
    assert (fetched.business_name, fetched.verification_status) == ("Acme Corp", "In Progress")
    updated = requests_api.update(created.id, **details(receiver, business_city="Springfield"))
    assert updated.business_city == "Springfield"
    assert requests_api.retrieve(created.id).business_city == "Springfield"


def test_tollfree_list_pages_through_every_record_once(requests_api: Any, receiver: Receiver) -> None:
    ids = {requests_api.create(**details(receiver, business_name=f"Shop {i}")).id for i in range(5)}
    seen = [record.id for record in requests_api.list(page=1, page_size=2)]
    assert sorted(seen) == sorted(ids)
    beyond = requests_api.list(page=9, page_size=2)
    assert (beyond.records, beyond.total_records) == ([], 5)


def test_tollfree_list_filters(requests_api: Any, control: httpx.Client, receiver: Receiver) -> None:
    first = requests_api.create(**details(receiver, business_name="Alpha Foods"))
    control.post("/clock/advance", json={"seconds": 3 * DAY})  # the default review verifies it after 2 days
    second = requests_api.create(
        **details(receiver, business_name="Beta Books", phone_numbers=[{"phone_number": "+18885550111"}])
    )

    def ids(**filters: Any) -> list[str]:
        return [r.id for r in requests_api.list(page=1, page_size=10, **filters).records]

    assert ids(status="Verified") == [first.id]
    assert ids(status="In Progress") == [second.id]
    assert ids(business_name="beta") == [second.id]
    assert ids(phone_number="+18885550111") == [second.id]
    assert ids(date_start="2026-01-02T00:00:00Z") == [second.id]
    assert ids(date_end="2026-01-02T00:00:00Z") == [first.id]
    # a date alone: from its start, or (as an inclusive end) through its last instant
    assert ids(date_start="2026-01-04") == [second.id]
    assert ids(date_end="2026-01-01") == [first.id]
    assert ids(date_start="2026-01-01", date_end="2026-01-04") == [first.id, second.id]


def test_tollfree_approved_after_two_days(
    requests_api: Any, control: httpx.Client, receiver: Receiver, mock_server: Running
) -> None:
    sdk = telnyx.Telnyx(api_key="k", base_url=f"{mock_server.url}/v2")
    public_key = control.get("/keys").json()["telnyx"]["public_key"]
    request = requests_api.create(**details(receiver, business_name="Acme Approved Inc"))
    control.post("/clock/advance", json={"seconds": DAY})
    assert requests_api.retrieve(request.id).verification_status == "In Progress"
    control.post("/clock/advance", json={"seconds": DAY})
    assert requests_api.retrieve(request.id).verification_status == "Verified"
    assert statuses(receiver, public_key, sdk) == [("Verified", None)]


def test_tollfree_screenshots_then_approved(
    requests_api: Any, control: httpx.Client, receiver: Receiver, mock_server: Running
) -> None:
    sdk = telnyx.Telnyx(api_key="k", base_url=f"{mock_server.url}/v2")
    public_key = control.get("/keys").json()["telnyx"]["public_key"]
    request = requests_api.create(**details(receiver, business_name="Acme Screenshots Inc"))
    control.post("/clock/advance", json={"seconds": 5 * DAY})
    waiting = requests_api.retrieve(request.id)
    assert (waiting.verification_status, waiting.reason) == (
        "Waiting For Customer",
        "Please add screenshots of the opt-in form.",
    )  # and it waits for the customer, however long
    requests_api.update(
        request.id,
        **details(
            receiver,
            business_name="Acme Screenshots Inc",
            opt_in_workflow_image_urls=[{"url": "https://acme.example/a.png"}, {"url": "https://acme.example/b.png"}],
        ),
    )
    assert requests_api.retrieve(request.id).verification_status == "In Progress"
    # the update's webhook goes out after it answers; wait, so that this reading has it before the next one's
    assert len(receiver.wait_for("/tfv", 2)) == 2
    control.post("/clock/advance", json={"seconds": DAY})
    assert requests_api.retrieve(request.id).verification_status == "Verified"
    assert statuses(receiver, public_key, sdk) == [
        ("Waiting For Customer", "Please add screenshots of the opt-in form."),
        ("In Progress", None),
        ("Verified", None),
    ]
    history = requests_api.retrieve_status_history(request.id, page_number=1, page_size=10)
    assert [r.verification_status for r in history.records] == [
        "In Progress",
        "Waiting For Customer",
        "In Progress",
        "Verified",
    ]
    assert history.total_records == 4
    second_page = requests_api.retrieve_status_history(request.id, page_number=2, page_size=3)
    assert [r.verification_status for r in second_page.records] == ["Verified"]


def test_tollfree_rejected_and_delete_rules(requests_api: Any, control: httpx.Client, receiver: Receiver) -> None:
    request = requests_api.create(**details(receiver, business_name="Acme Rejected Inc"))
    with pytest.raises(telnyx.BadRequestError):
        requests_api.delete(request.id)  # still In Progress
    control.post("/clock/advance", json={"seconds": 3 * DAY})
    rejected = requests_api.retrieve(request.id)
    assert (rejected.verification_status, rejected.reason) == (
        "Rejected",
        "The opt-in workflow does not show consent.",
    )
    requests_api.delete(request.id)
    with pytest.raises(telnyx.NotFoundError):
        requests_api.delete(request.id)
    with pytest.raises(telnyx.NotFoundError):
        requests_api.retrieve(request.id)


def test_tollfree_stuck_with_the_vendor(requests_api: Any, control: httpx.Client, receiver: Receiver) -> None:
    request = requests_api.create(**details(receiver, phone_numbers=[{"phone_number": "+18005550104"}]))
    control.post("/clock/advance", json={"seconds": 30 * DAY})
    assert requests_api.retrieve(request.id).verification_status == "Waiting For Vendor"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"business_name": None}, "/businessName"),
        ({"message_volume": "12"}, "/messageVolume"),
        ({"use_case": "Spam"}, "/useCase"),
        ({"phone_numbers": []}, "/phoneNumbers"),
        ({"opt_in_workflow_image_urls": []}, "/optInWorkflowImageURLs"),
        ({"business_city": "x" * 501}, "/businessCity"),
        ({"production_message_content": "x" * 1001}, "/productionMessageContent"),
        ({"business_registration_country": "usa"}, "/businessRegistrationCountry"),
        ({"entity_type": "PIRATE"}, "/entityType"),
    ],
    ids=[
        "missing",
        "bad-volume",
        "bad-use-case",
        "no-numbers",
        "no-images",
        "overlong",
        "overlong-content",
        "bad-country",
        "bad-entity",
    ],
)
def test_tollfree_invalid_submissions_point_at_the_field(
    requests_api: Any, receiver: Receiver, change: dict[str, Any], pointer: str
) -> None:
    fields = details(receiver, **change)
    if fields.get("business_name") is None:
        fields["business_name"] = telnyx.omit  # the SDK then leaves the field out of the body
    with pytest.raises(telnyx.BadRequestError) as refused:
        requests_api.create(**fields)
    [error] = refused.value.body["errors"]  # type: ignore[index]
    assert error["source"]["pointer"].startswith(pointer)
    assert error["code"] in ("10004", "10015")


def test_tollfree_responses_and_webhooks_validate_with_openapi_core(
    requests_api: Any, control: httpx.Client, receiver: Receiver
) -> None:
    openapi = OpenAPI.from_file_path(str(SPECS / "telnyx_tollfree.yaml"))
    request = requests_api.create(**details(receiver, business_name="Acme Screenshots Inc"))
    control.post("/clock/advance", json={"seconds": DAY})
    requests_api.update(request.id, **details(receiver))
    control.post("/clock/advance", json={"seconds": 0})  # returns once the webhook the update caused was tried
    requests_api.list(page=1, page_size=5)
    requests_api.retrieve_status_history(request.id, page_number=1, page_size=5)
    entries = [e for e in control.get("/journal?vendor=telnyx").json()["data"] if "tollfree" in e["path"]]
    assert len(entries) == 4
    assert_journal_conforms(openapi, "https://api.telnyx.com", entries)
    assert len(receiver.at("/tfv")) == 2
    assert_webhooks_conform(openapi, "verificationStatusChanged", [r.body for r in receiver.at("/tfv")])


def test_tollfree_country_is_upper_cased_and_email_unchecked(requests_api: Any, receiver: Receiver) -> None:
    created = requests_api.create(
        **details(receiver, business_registration_country="us", business_contact_email="not quite an address")
    )
    fetched = requests_api.retrieve(created.id)
    assert (fetched.business_registration_country, fetched.business_contact_email) == ("US", "not quite an address")
