"""The outcome catalogue and the report built from it."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO
from verifymock.coverage import Coverage, catalogue, error_outcome, known, missing, table

SCHEMA = (REPO / "verifymock" / "scenario.schema.json").read_text(encoding="utf-8")
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "verifymock").rglob("*.py"))


def test_coverage_catalogue_names_are_unique_and_grouped_by_vendor() -> None:
    names = [o.name for group in catalogue() for o in group.outcomes]
    assert len(names) == len(set(names))
    for group in catalogue():
        assert all(o.name.startswith(group.vendor + ".") for o in group.outcomes), group.vendor
        assert all(o.description and o.how for o in group.outcomes)


def test_coverage_every_name_the_code_reaches_is_in_the_catalogue_and_every_entry_is_reached_somewhere() -> None:
    names = known().keys()
    literal = set(re.findall(r'reach\(\s*"([^"]+)"', SOURCE))
    prefixes = set(re.findall(r'reach\(\s*f"([a-z_.]+)\{', SOURCE))
    assert literal - names == set()
    assert all(any(n.startswith(p) for n in names) for p in prefixes), prefixes
    # an entry is reached by a literal, or by a prefix the code completes with a value it has (a status, a state)
    texts = re.findall(r'"([^"\n]+)"', SOURCE + SCHEMA)
    quoted = {*texts, *(q.lower().replace(" ", "_") for q in texts)}
    unreached = [
        name
        for name in names
        if f'"{name}"' not in SOURCE
        and not any(name.startswith(p) and (name[len(p) :] in quoted or name[len(p) :].isdigit()) for p in prefixes)
        and not re.fullmatch(r"[a-z]+\.error\.(\d{3}|5xx)", name)  # the gate's, by status (error_outcome)
    ]
    assert unreached == []


def test_coverage_error_outcomes_follow_the_status_and_the_spec() -> None:
    assert error_outcome("telnyx_verify", 401) == "telnyx.error.401"
    assert error_outcome("telnyx_tollfree", 503) == "tollfree.error.5xx"
    assert error_outcome("cm_voice_dtmf", 409) is None  # not in the catalogue
    assert error_outcome("control", 404) is None  # the mock's own API
    assert error_outcome("telesign_voice_verify", 200) is None
    for spec in ("telnyx_verify", "telnyx_tollfree", "telesign_voice_verify", "cm_voice_dtmf"):
        for status in (400, 401, 404, 422, 429, 500, 503):
            assert error_outcome(spec, status) in known()


def test_coverage_counts_credit_tests_and_a_finding_is_shouted_first() -> None:
    coverage = Coverage(lambda: "2026-01-01T00:00:00+00:00", lambda: (None, "POST /v2/verifications/sms"))
    coverage.test = "t.py::one"
    coverage.reach("telnyx.channel.sms")
    coverage.test = "t.py::two"
    coverage.reach("telnyx.channel.sms")
    coverage.reach("webhooks.forged.accepted")
    coverage.reach("no.such.outcome")  # logged, never a failure of the request
    report = coverage.report()
    row = next(r for v in report["vendors"] for r in v["outcomes"] if r["name"] == "telnyx.channel.sms")
    assert (row["count"], row["tests"], row["first"]["test"]) == (2, ["t.py::one", "t.py::two"], "t.py::one")
    assert [f["name"] for f in report["findings"]] == ["webhooks.forged.accepted"]
    assert report["reached"] == 1  # a finding counts in no total
    text = table(report)
    assert text.startswith("FINDING webhooks.forged.accepted (x1)")
    assert "[x] telnyx.channel.sms" in text and "[ ] telnyx.channel.call" in text
    assert missing(report, ["telnyx.channel.sms", "telnyx.channel.", "nothing.like.this"]) == [
        "telnyx.channel.",
        "nothing.like.this",
    ]


def test_timeline_keeps_the_newest_stories_and_bounds_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from verifymock import timeline

    clock = [0.0]
    stories = timeline.Timelines(lambda: clock[0])
    for i in range(5):
        stories.begin(f"v{i}", "telnyx.verification", "+13125550100")
    stories.trim(3)
    assert list(stories.stories) == ["v2", "v3", "v4"]
    monkeypatch.setattr(timeline, "MAX_STORIES", 2)
    stories.trim(10**9)  # a huge --retain still keeps at most MAX_STORIES
    assert list(stories.stories) == ["v3", "v4"]
    for i in range(timeline.MAX_EVENTS + 5):
        clock[0] = 100.0 - i  # told out of clock order: shown in clock order
        stories.tell("v4", "vendor", "phone", f"prompt {i}", seconds=1.23456)
    assert stories.tell("nobody", "app", "vendor", "x") is None
    shown = stories.stories["v4"].to_json()
    assert len(shown["events"]) == timeline.MAX_EVENTS and shown["truncated"]
    assert shown["events"][0]["label"] == f"prompt {timeline.MAX_EVENTS - 1}"
    assert shown["events"][0]["seconds"] == 1.235


def test_timeline_an_answer_of_any_status_ends_the_requests_part() -> None:
    from verifymock.config import Config
    from verifymock.engine import Mock, RequestContext

    mock = Mock(Config(clock="manual"))
    mock.timelines.begin("v1", "telnyx.verification", "+13125550100")
    for status in (200, 422, 599):  # 599: a fault may answer with any status from 400 to 599
        mock.answered(RequestContext({}, [], told=["v1"]), status)
    labels = [e["label"] for e in mock.timelines.stories["v1"].events]
    assert labels == ["200 OK", "422 Unprocessable Entity", "599"]
