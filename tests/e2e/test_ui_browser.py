"""The web page at /_mock/ui in headless Chromium (Debian's, driven by Playwright): a person watching and pressing."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import telnyx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers import PROFILE_BODY, REPO
from tests.receiver import Receiver
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread

NUMBER = "+13125550177"
ARTIFACTS = Path(os.environ.get("VERIFYMOCK_ARTIFACTS", REPO / "artifacts")) / "screenshots"
# what the machine's closed network needs: without these Chromium keeps trying to reach Google's hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does), or set CHROMIUM=/path")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_ui_shows_a_call_from_the_sdk_and_its_keypad_accepts_it(
    page: Page, mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    page.goto(f"{mock_server.url}/_mock/ui")
    expect(page.get_by_role("status")).to_have_text("Live")

    # a person picks the number and leaves the callee to the keypad
    page.get_by_label("Watch a number").fill(NUMBER)
    page.get_by_role("button", name="Watch", exact=True).click()
    page.get_by_label("Scenario for this number").select_option("interactive")
    expect(page.get_by_label("Scenario for this number")).to_have_value("interactive")
    assert {"phone_number": NUMBER, "scenario": "interactive"} in control.get("/bindings").json()["data"]

    sdk = telnyx.Telnyx(api_key="KEY-test", base_url=f"{mock_server.url}/v2", max_retries=0)
    profile = sdk.verify_profiles.create(
        name="Acme login",
        webhook_url=f"{receiver.url}/hook",
        extra_body={"dtmf_confirm": PROFILE_BODY["dtmf_confirm"]},
    )
    assert profile.data is not None and profile.data.id is not None
    started = sdk.post(
        "/verifications/dtmf_confirm",
        body={"phone_number": NUMBER, "verify_profile_id": profile.data.id},
        cast_to=object,
    )
    assert isinstance(started, dict)
    verification_id = started["data"]["id"]

    # the call appears without a reload: the page hears of it on its event stream
    expect(page.locator(f'[data-number="{NUMBER}"] .badge')).to_have_text("ringing")
    expect(page.locator("#call-state")).to_have_text("ringing")
    expect(page.get_by_role("button", name="1", exact=True)).to_be_disabled()
    screenshot(page, "01-call-ringing")

    page.get_by_role("button", name="Answer").click()
    expect(page.locator("#call-state")).to_have_text("in progress")
    expect(page.locator(".prompt")).to_contain_text("please press 1")
    page.get_by_role("button", name="1", exact=True).click()

    expect(page.locator("#current-call")).to_contain_text("No ringing or live call.")
    expect(page.locator("#call-rows tr").first).to_contain_text("completed")
    webhook_row = page.locator(f'#webhook-rows tr[data-subject="{verification_id}"]')
    expect(webhook_row).to_contain_text("verification.complete")
    expect(webhook_row).to_contain_text("delivered")
    screenshot(page, "02-accepted-and-delivered")

    retrieved = sdk.verifications.retrieve(verification_id).data
    assert retrieved is not None and retrieved.status == "accepted"
    hooks = receiver.at("/hook")
    assert len(hooks) == 1 and b'"status":"accepted"' in hooks[0].body.replace(b" ", b"")


def test_ui_clock_buttons_and_journal_filters(page: Page, mock_server: Running, control: httpx.Client) -> None:
    page.goto(f"{mock_server.url}/_mock/ui")
    expect(page.locator("#clock-now")).to_have_text("2026-01-01T00:00:00Z")
    page.get_by_role("button", name="+1 h").click()
    expect(page.locator("#clock-now")).to_have_text("2026-01-01T01:00:00Z")
    expect(page.locator("#clock-mode")).to_have_text("manual")

    # requests from elsewhere show up in the journal as they arrive; the filter narrows it
    for number in ("+13125550001", "+13125550002"):
        control.put(f"/bindings/{number}", json={"scenario": "interactive"})
    rows = page.locator("#journal-rows tr")
    expect(rows.filter(has_text="/_mock/bindings/")).to_have_count(2)
    page.get_by_role("textbox", name="Phone number", exact=True).fill("+13125550002")
    expect(rows.filter(has_text="/_mock/bindings/")).to_have_count(1)
    expect(rows.first).to_contain_text("+13125550002")
    # the page's own reads are not journaled: only the advance and the two bindings are there
    page.get_by_role("textbox", name="Phone number", exact=True).fill("")
    expect(rows).to_have_count(4)  # reset (by the fixture), advance, two bindings
    screenshot(page, "03-journal")


def test_ui_asks_for_the_control_token_and_then_works(page: Page, tmp_path: Path) -> None:
    with serve_in_thread(Config(port=0, clock="manual", control_token="s3cret", access_log=False)) as running:
        page.goto(f"{running.url}/_mock/ui")  # the page itself holds no data: it loads without the token
        expect(page.get_by_label("This mock requires its control token")).to_be_visible()
        assert httpx.get(f"{running.url}/_mock/handsets").status_code == 401
        page.get_by_label("This mock requires its control token").fill("s3cret")
        page.get_by_role("button", name="Use token").click()
        expect(page.get_by_role("status")).to_have_text("Live")
        expect(page.locator("#clock-mode")).to_have_text("manual")
        expect(page.locator("#token-form")).to_be_hidden()
        assert re.match(r"\d{4}-", page.locator("#clock-now").inner_text())


def test_ui_fits_a_narrow_window_and_says_one_call(
    browser: Browser, mock_server: Running, control: httpx.Client
) -> None:
    context = browser.new_context(viewport={"width": 400, "height": 800})
    page = context.new_page()
    try:
        number = "+13125550188"
        control.put(f"/bindings/{number}", json={"scenario": "interactive"})
        control.post("/clock/advance", json={"seconds": 1})
        sdk = telnyx.Telnyx(api_key="KEY-test", base_url=f"{mock_server.url}/v2", max_retries=0)
        profile = sdk.verify_profiles.create(name="Acme", call={"app_name": "Acme"}).data
        assert profile is not None
        sdk.verifications.trigger_call(phone_number=number, verify_profile_id=profile.id)
        page.goto(f"{mock_server.url}/_mock/ui")
        entry = page.locator(".number", has_text=number)
        expect(entry).to_contain_text("1 call · 0 messages")
        entry.click()
        summary = next(s["summary"] for s in control.get("/scenarios").json()["data"] if s["id"] == "interactive")
        expect(page.locator("#scenario-description")).to_have_text(summary)
        expect(page.locator("#current-call")).not_to_contain_text("null")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a 400 px window"
        screenshot(page, "04-narrow")
    finally:
        context.close()


def test_ui_journal_pages_back_instead_of_reading_it_whole(
    page: Page, mock_server: Running, control: httpx.Client
) -> None:
    for i in range(60):
        control.put(f"/bindings/+131255502{i:02d}", json={"scenario": "interactive"})
    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url) if "/_mock/journal" in request.url else None)
    page.goto(f"{mock_server.url}/_mock/ui")
    page.get_by_label("Show").select_option("50")
    rows = page.locator("#journal-rows tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("+13125550259")
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(11)  # the reset and the first ten bindings
    expect(rows.last).to_contain_text("/_mock/reset")
    page.get_by_role("button", name="Newest").click()
    expect(rows.first).to_contain_text("+13125550259")
    assert reads and all("limit=" in url for url in reads)


def test_ui_timeline_tells_a_dtmf_confirm_in_order_and_coverage_shows_what_it_reached(
    page: Page, mock_server: Running, control: httpx.Client, receiver: Receiver
) -> None:
    """One wrong digit, then 1, then a webhook that fails over: the timeline shows each step in order, on the
    mock's clock, across the four lanes; the coverage panel marks the outcomes reached."""
    receiver.script["/primary"] = [500]
    sdk = telnyx.Telnyx(api_key="KEY-test", base_url=f"{mock_server.url}/v2", max_retries=0)
    profile = sdk.verify_profiles.create(
        name="Acme login",
        webhook_url=f"{receiver.url}/primary",
        webhook_failover_url=f"{receiver.url}/failover",
        extra_body={"dtmf_confirm": PROFILE_BODY["dtmf_confirm"]},
    )
    assert profile.data is not None and profile.data.id is not None
    started = sdk.post(
        "/verifications/dtmf_confirm",
        body={"phone_number": "+15005550102", "verify_profile_id": profile.data.id},  # presses 7, then 1
        cast_to=object,
    )
    assert isinstance(started, dict)
    page.goto(f"{mock_server.url}/_mock/ui")
    expect(page.locator("#live")).to_have_text("Live")  # (the live call's digits are a status too)
    page.get_by_role("button", name="+1 min").click()

    timeline = page.locator("#timeline")
    expect(timeline.locator("h3")).to_contain_text(started["data"]["id"])
    labels = timeline.locator("g.event text.label")
    expect(labels).to_have_count(12)
    assert [text.split(":")[0] if text.startswith("prompt") else text for text in labels.all_text_contents()] == [
        "POST /v2/verifications/dtmf_confirm",
        "call placed: ringing",
        "200 OK",
        "answered",
        "prompt",
        "key 7",
        "prompt",
        "key 1",
        "hangs up: call ended",
        "verification accepted",
        "webhook verification.complete → 500",
        "webhook verification.complete → 200",
    ]
    times = timeline.locator("g.event text.time").all_text_contents()
    assert times[0] == "00:00:00.000" and times[3] == "00:00:02.000" and times[-1] == "00:00:08.000"
    lanes = [
        (g.get_attribute("class") or "").split()[1:] for g in timeline.locator("g.event").all()
    ]  # from-x to-y, in order
    assert lanes[0] == ["from-app", "to-vendor"] and lanes[5] == ["from-phone", "to-vendor"]
    assert lanes[-1] == ["from-vendor", "to-receiver"]
    assert "failover URL" in (timeline.locator("g.event title").last.text_content() or "")
    for reached in ("telnyx.dtmf.accepted_after_wrong", "webhooks.failover_used", "telnyx.channel.dtmf_confirm"):
        expect(page.locator(f'[data-outcome="{reached}"]')).to_have_class("reached")
    expect(page.locator('[data-outcome="telnyx.dtmf.invalid"]')).to_have_class("unreached")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timeline.screenshot(path=str(ARTIFACTS / "05-timeline.png"))
    page.locator(".coverage").screenshot(path=str(ARTIFACTS / "06-coverage.png"))
    control.post("/reset")  # the story is gone: the page says so rather than keep drawing it
    expect(timeline).to_contain_text("No verification yet")
    expect(page.locator('[data-outcome="telnyx.dtmf.accepted_after_wrong"]')).to_have_class("unreached")
