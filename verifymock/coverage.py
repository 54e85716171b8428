"""Outcome coverage: which of the vendors' outcomes the consumer's tests have reached, counted as they happen.

The catalogue is data: one `*.outcomes.yaml` beside each vendor module (and one for webhooks), each outcome with a
stable name, a description and how to produce it. The engine's own code calls `reach(name)` where an outcome
happens. Each reached outcome is a record of kind "outcome", so it is kept, shared and reset like the rest of the
state. It is credited to the test the pytest plugin (or an `X-Verifymock-Test` header) names, and to the request
being served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from verifymock.state.dirty import Dirty

log = logging.getLogger("verifymock.coverage")

HERE = Path(__file__).parent
CATALOGUES = (
    HERE / "vendors" / "telnyx.outcomes.yaml",
    HERE / "vendors" / "tollfree.outcomes.yaml",
    HERE / "vendors" / "telesign.outcomes.yaml",
    HERE / "vendors" / "cm.outcomes.yaml",
    HERE / "webhooks.outcomes.yaml",
)
TEST_HEADER = "x-verifymock-test"
MAX_TESTS = 200  # tests kept per outcome: a session of thousands still answers in bounded size
MAX_TEST_NAME = 1000  # characters of a test's name kept

# the vendor each spec's errors count under (the control API's own errors count under none)
SPEC_VENDORS = {
    "telnyx_verify": "telnyx",
    "telnyx_tollfree": "tollfree",
    "telesign_voice_verify": "telesign",
    "cm_voice_dtmf": "cm",
}
ERROR_STATUSES = (400, 401, 404, 422, 429)


@dataclass(frozen=True)
class Outcome:
    name: str
    description: str
    how: str
    finding: bool = False


@dataclass(frozen=True)
class Group:
    vendor: str
    title: str
    outcomes: tuple[Outcome, ...]


@cache
def catalogue() -> tuple[Group, ...]:
    groups = []
    for path in CATALOGUES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        outcomes = tuple(Outcome(**entry) for entry in doc["outcomes"])
        groups.append(Group(doc["vendor"], doc["title"], outcomes))
    return tuple(groups)


@cache
def known() -> dict[str, Outcome]:
    return {o.name: o for group in catalogue() for o in group.outcomes}


def error_outcome(spec_name: str, status: int) -> str | None:
    """The error outcome an answer of `status` from this spec reaches, if any."""
    vendor = SPEC_VENDORS.get(spec_name)
    if vendor is None or status < 400:
        return None
    if status >= 500:
        return f"{vendor}.error.5xx"
    return f"{vendor}.error.{status}" if status in ERROR_STATUSES else None


@dataclass
class Reached:
    """One outcome's record: how often, who reached it first, and the tests that reached it."""

    count: int = 0
    first: dict[str, Any] = field(default_factory=dict)  # test, request, at
    tests: dict[str, int] = field(default_factory=dict)  # test name -> count, at most MAX_TESTS

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Reached:
        return cls(int(data["count"]), dict(data["first"]), dict(data["tests"]))


class Coverage:
    def __init__(self, now: Callable[[], str], request: Callable[[], tuple[str | None, str | None]]) -> None:
        self.now = now
        self.request = request  # (the test named on the request being served, "METHOD /path"), if there is one
        self.reached: dict[str, Reached] = {}
        self.test: str | None = None  # the test under way, as the pytest plugin names it
        self.dirty = Dirty()

    def reach(self, name: str) -> None:
        if name not in known():  # a defect here, never the caller's: said, and the request goes on
            log.error("outcome %r is not in the catalogue", name)
            return
        header_test, request = self.request()
        test = header_test or self.test
        reached = self.reached.get(name)
        if reached is None:
            reached = self.reached[name] = Reached(first={"test": test, "request": request, "at": self.now()})
        reached.count += 1
        if test is not None and (test in reached.tests or len(reached.tests) < MAX_TESTS):
            reached.tests[test] = reached.tests.get(test, 0) + 1
        self.dirty("outcome", name)

    def clear(self) -> None:
        self.reached.clear()
        self.test = None

    def report(self) -> dict[str, Any]:
        """Per vendor, every outcome of the catalogue, reached or not; a finding counts in no total."""
        vendors: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        all_hit = all_total = 0
        for group in catalogue():
            rows: list[dict[str, Any]] = []
            for outcome in group.outcomes:
                reached = self.reached.get(outcome.name)
                rows.append(
                    {
                        "name": outcome.name,
                        "description": outcome.description,
                        "how": outcome.how,
                        "finding": outcome.finding,
                        "reached": reached is not None,
                        "count": reached.count if reached else 0,
                        "first": reached.first if reached else None,
                        "tests": sorted(reached.tests) if reached else [],
                    }
                )
                if outcome.finding and reached is not None:
                    findings.append(rows[-1])
            hit = sum(1 for row in rows if row["reached"] and not row["finding"])
            total = sum(1 for row in rows if not row["finding"])
            all_hit, all_total = all_hit + hit, all_total + total
            vendors.append(
                {"vendor": group.vendor, "title": group.title, "reached": hit, "total": total, "outcomes": rows}
            )
        return {
            "reached": all_hit,
            "total": all_total,
            "percent": round(100 * all_hit / all_total, 1) if all_total else 100.0,
            "findings": findings,
            "vendors": vendors,
        }


def table(report: dict[str, Any], width: int = 120) -> str:
    """The report as a terminal table: per vendor, each outcome reached or not, findings first."""
    lines = []
    for finding in report["findings"]:
        lines.append(f"FINDING {finding['name']} (x{finding['count']}): {finding['description']}")
    if lines:
        lines.append("")
    for vendor in report["vendors"]:
        lines.append(f"{vendor['title']}: {vendor['reached']} of {vendor['total']} outcomes reached")
        for row in vendor["outcomes"]:
            if row["finding"]:
                continue
            mark = "x" if row["reached"] else " "
            first = row["first"] or {}
            by = str(first.get("test") or first.get("request") or "")
            text = f"  [{mark}] {row['name']:<41} {row['count']:>5}"
            if by and len(text) + len(by) + 9 > width:  # the test's own name, without its file
                by = by.rsplit("::", 1)[-1]
            text += f"  first: {by}" if by else ""
            lines.append(text if len(text) <= width else text[: width - 1] + "…")
        lines.append("")
    lines.append(f"Outcome coverage: {report['reached']} of {report['total']} ({report['percent']}%)")
    return "\n".join(lines)


def missing(report: dict[str, Any], required: list[str]) -> list[str]:
    """Which of the required outcomes (names, or a vendor's prefix such as `telnyx.dtmf.`) were not reached; an
    unknown name counts as missing."""
    rows = {row["name"]: row for vendor in report["vendors"] for row in vendor["outcomes"]}
    absent = []
    for name in required:
        matched = [row for key, row in rows.items() if key == name or (name.endswith(".") and key.startswith(name))]
        if not matched or not all(row["reached"] for row in matched):
            absent.append(name)
    return absent


def markdown() -> str:
    """The catalogue as the README shows it."""
    lines = []
    for group in catalogue():
        lines += [f"**{group.title}**", "", "| outcome | what it is | how to reach it |", "|---|---|---|"]
        for o in group.outcomes:
            finding = " **A finding: the report shouts it.**" if o.finding else ""
            lines.append(f"| `{o.name}` | {o.description}{finding} | {o.how} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def command(
    url: str, token: str | None, as_json: bool, fail_under: float | None, required: list[str], catalogue_only: bool
) -> int:
    """`verifymock coverage`: 0 when the bar is met, 1 when not, 2 when the mock cannot be asked."""
    import json
    import sys

    import httpx

    if catalogue_only:
        print(markdown(), end="")
        return 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url.rstrip("/") + "/_mock/coverage", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"verifymock coverage: cannot reach {url} ({exc})", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"verifymock coverage: {url} answered {response.status_code}: {response.text[:500]}", file=sys.stderr)
        return 2
    report = response.json()
    print(json.dumps(report, indent=2) if as_json else table(report))
    failed = False
    if fail_under is not None and report["percent"] < fail_under:
        print(f"verifymock coverage: {report['percent']}% is under {fail_under}%", file=sys.stderr)
        failed = True
    absent = missing(report, required)
    if absent:
        print(f"verifymock coverage: required outcomes not reached: {', '.join(absent)}", file=sys.stderr)
        failed = True
    return 1 if failed else 0
