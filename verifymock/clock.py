"""The one clock every timer runs on: real, scaled (N times faster) or manual (moves only when told).

Timers are data: a kind, the key of the record they act on, a due time on this clock and JSON arguments, kept in
a heap by due time. What a kind does is a plain function the engine finds by name (`fire`), so a timer can be
written to a store and run by another process or version. `advance` runs everything that falls due, in order, each
at its own instant, so a ten-second keypress timeout or a three-day review takes no wall time in a test. In the
real and scaled modes a background task also runs timers as their time comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from verifymock.errors import ApiError, ConfigError, Problem

log = logging.getLogger("verifymock.clock")

# Manual clocks start here, so test output does not depend on the day the test ran.
MANUAL_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
# The latest a clock may be moved to: timestamps are written as ISO 8601 dates, which end with year 9999, and a
# year is left for the timers a request may still set (a toll-free review takes days, a lookup window 12 hours).
LAST_INSTANT = datetime(9998, 12, 31, tzinfo=UTC).timestamp()
MAX_SCALE = 1_000_000.0  # at most this much faster than real time: at that rate the clock nears LAST_INSTANT in 3 days
COMPACT_AT = 1000  # cancelled timers in the heap before it is worth rebuilding


@dataclass(slots=True)
class Timer:
    """What is due when: `kind` names the function that runs it, `key` the record it acts on."""

    due: float
    seq: int
    kind: str
    key: str
    args: dict[str, Any]
    cancelled: bool = False

    @property
    def id(self) -> str:
        return f"t{self.seq}"

    def to_data(self) -> dict[str, Any]:
        return {"due": self.due, "seq": self.seq, "kind": self.kind, "key": self.key, "args": self.args}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Timer:
        return cls(float(data["due"]), int(data["seq"]), str(data["kind"]), str(data["key"]), dict(data["args"]))


def _unhandled(timer: Timer) -> None:
    raise LookupError(f"no function runs timers of kind {timer.kind!r}")


@contextlib.asynccontextmanager
async def _no_unit() -> AsyncIterator[None]:
    yield


def parse_mode(text: str) -> tuple[str, float]:
    """`real`, `manual` or `scaled:N` → (mode, scale)."""
    if text in ("real", "manual"):
        return text, 1.0
    match = re.fullmatch(r"scaled:(\d+(?:\.\d+)?)", text)
    if match and 0 < float(match.group(1)) <= MAX_SCALE:
        return "scaled", float(match.group(1))
    raise ConfigError(
        "--clock",
        text,
        "is not a clock mode",
        f"use real, manual or scaled:N with 0 < N <= {MAX_SCALE:,.0f} (e.g. scaled:60)",
    )


class Clock:
    def __init__(self, mode: str = "real") -> None:
        self.mode, self.scale = parse_mode(mode)
        self._origin_wall = MANUAL_EPOCH if self.mode == "manual" else time.time()
        self._origin_mono = time.monotonic()
        self._offset = 0.0
        # (due, seq, timer): tuples compare in C, where a dataclass's generated `__lt__` is Python (seq breaks ties)
        self._timers: list[tuple[float, int, Timer]] = []
        self._live: dict[str, Timer] = {}  # by id: what a record cancels
        self.cancelled = 0  # cancelled timers still in the heap; dropped when they are most of it
        self._next_seq = 0  # the number the next timer takes
        self._wakeup: asyncio.Event | None = None
        self.advancing = False  # an `advance` is running (a reset waits for it too)
        # runs a timer that fell due: the engine looks its kind up in the registry
        self.fire: Callable[[Timer], None] = _unhandled
        # with a durable store: timers scheduled, and ids fired or cancelled, since the store last took them
        self.tracking = False
        self.added: dict[str, Timer] = {}
        self.removed: set[str] = set()
        # awaited after each timer during `advance`: the engine lets the webhooks a timer caused be attempted
        self.settle: Callable[[], Awaitable[None]] | None = None
        # called after timers ran outside a request (real and scaled clocks): the engine saves its state
        self.persist: Callable[[], None] | None = None
        # what each run of timers happens in: with a store shared by several processes, the engine's unit of work
        # (this process holds the term, caught up with the others, and commits before it lets go)
        self.unit: Callable[[], contextlib.AbstractAsyncContextManager[None]] = _no_unit

    def export(self) -> dict[str, object]:
        """What a restart needs to go on: the time on this clock and the next timer number (timers are kept by
        the store one by one)."""
        # a real clock goes on from real time, so its time is not kept (it would change at every commit)
        return {"now": None if self.mode == "real" else self.now(), "seq": self._next_seq}

    def restore(self, state: dict[str, Any], timers: list[Timer]) -> None:
        """Continue from an export. A real clock keeps real time (timers that fell due while the server was down run
        at once); a manual or scaled clock continues from the time it had."""
        entries = [(t.due, t.seq, t) for t in timers]
        heapq.heapify(entries)
        self._timers = entries
        self._live = {t.id: t for t in timers}
        # numbering goes on past every timer kept, so a new timer never takes the id of one still due
        self._next_seq = max([int(state["seq"]), *(t.seq + 1 for t in timers)])
        self.cancelled = 0
        if self.mode != "real" and state.get("now") is not None:
            self._offset += float(state["now"]) - self.now()

    def follow(self, state: dict[str, Any]) -> None:
        """Another process moved the shared clock or numbered timers: go on from there."""
        self._next_seq = max(self._next_seq, int(state["seq"]))
        if self.mode != "real" and state.get("now") is not None:
            self._offset += float(state["now"]) - self.now()

    def adopt(self, timer: Timer) -> None:
        """A timer another process scheduled (nothing to write: it is stored)."""
        if timer.id in self._live:
            return
        self._next_seq = max(self._next_seq, timer.seq + 1)
        self._push(timer)

    def _push(self, timer: Timer) -> None:
        entry = (timer.due, timer.seq, timer)
        heapq.heappush(self._timers, entry)
        self._live[timer.id] = timer
        if self._wakeup is not None and entry is self._timers[0]:
            self._wakeup.set()  # only a new earliest timer changes how long the runner sleeps

    def forget(self, timer_id: str) -> None:
        """A timer another process ran or cancelled (nothing to write: it is gone from the store)."""
        timer = self._live.pop(timer_id, None)
        if timer is not None:
            timer.cancelled = True
            self.cancelled += 1
        self.added.pop(timer_id, None)

    @property
    def label(self) -> str:
        return f"scaled:{self.scale:g}" if self.mode == "scaled" else self.mode

    def now(self) -> float:
        """Seconds since the Unix epoch, on this clock."""
        if self.mode == "manual":
            return self._origin_wall + self._offset
        return self._origin_wall + (time.monotonic() - self._origin_mono) * self.scale + self._offset

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def schedule(self, seconds: float, kind: str, key: str, args: dict[str, Any] | None = None) -> Timer:
        """A timer of `kind` for the record `key`, due `seconds` from now; its args must be JSON data."""
        timer = Timer(self.now() + max(0.0, seconds), self._next_seq, kind, key, args or {})
        self._next_seq += 1
        self._push(timer)
        if self.tracking:
            self.added[timer.id] = timer
        if self.cancelled > COMPACT_AT and self.cancelled * 2 > len(self._timers):
            # cancelled timers stay in the heap until they would have been due: drop them once they are most of it
            self._timers = [e for e in self._timers if not e[2].cancelled]
            heapq.heapify(self._timers)
            self.cancelled = 0
        return timer

    def cancel(self, timer_id: str | None) -> None:
        """The timer will not run (nothing happens if it ran already or is unknown)."""
        timer = self._live.pop(timer_id, None) if timer_id else None
        if timer is None:
            return
        timer.cancelled = True
        self.cancelled += 1
        self._forget(timer)

    def _forget(self, timer: Timer) -> None:
        if self.tracking and self.added.pop(timer.id, None) is None:
            self.removed.add(timer.id)

    def take_changes(self) -> tuple[list[Timer], set[str]]:
        """Timers scheduled and ids gone since the last call: what a store writes."""
        added, removed = list(self.added.values()), self.removed
        self.added, self.removed = {}, set()
        return added, removed

    def pending(self) -> list[Timer]:
        return [e[2] for e in sorted(self._timers) if not e[2].cancelled]

    def clear(self) -> None:
        """Forget every timer; a manual clock also goes back to its start, so a reset test sees the same times."""
        self._timers.clear()
        self._live.clear()
        self.added.clear()
        self.removed.clear()
        self.cancelled = 0
        if self.mode == "manual":
            self._offset = 0.0

    def run_due(self) -> int:
        """Run every timer due by now, oldest first; timers they schedule for now run too."""
        ran = 0
        while self._timers and self._timers[0][0] <= self.now():
            timer = heapq.heappop(self._timers)[2]
            if timer.cancelled:
                self.cancelled -= 1
                continue
            self._run(timer)
            ran += 1
        return ran

    async def advance(self, seconds: float) -> int:
        """Move the clock forward, running each timer at its own due time, and letting what each one caused
        (webhook attempts, which may schedule retries inside the window) finish before the next.
        Returns how many timers ran. One advance at a time: a second while one runs is refused (409), as it would
        otherwise move the clock under the first."""
        target = self.now() + seconds
        if target > LAST_INSTANT:
            raise ApiError(
                Problem.INVALID_PARAMETER,
                f"The clock cannot go past {datetime.fromtimestamp(LAST_INSTANT, UTC).isoformat()}.",
                pointer="/seconds",
            )
        if self.advancing:
            raise ApiError(Problem.CONFLICT, "The clock is already being advanced; wait for that advance to answer.")
        self.advancing = True
        try:
            return await self._advance(target)
        finally:
            self.advancing = False

    async def _advance(self, target: float) -> int:
        ran = 0
        while True:
            async with self.unit():
                timer = self._next_due(target)
                if timer is None:
                    if target > self.now():
                        self._offset += target - self.now()
                    return ran
                if timer.due > self.now():
                    self._offset += timer.due - self.now()
                self._run(timer)
                ran += 1
            # one timer's webhooks at a time, as a receiver would see them from the vendor (hundreds at once
            # overflowed a small receiver's backlog); each attempt is bounded by its deadline
            if self.settle is not None:
                await self.settle()

    def _next_due(self, by: float) -> Timer | None:
        """Take the earliest live timer due by `by` off the heap."""
        while self._timers and self._timers[0][0] <= by:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                return timer
            self.cancelled -= 1
        return None

    def _run(self, timer: Timer) -> None:
        self._live.pop(timer.id, None)
        self._forget(timer)
        try:
            self.fire(timer)
        except Exception:
            log.exception("timer %s %s for %s failed", timer.id, timer.kind, timer.key)

    async def run_forever(self) -> None:
        """Run timers as they fall due (real and scaled clocks); a manual clock only moves when advanced."""
        if self.mode == "manual":
            return
        self._wakeup = asyncio.Event()
        while True:
            if self._timers and self._timers[0][0] <= self.now():
                async with self.unit():
                    if self.run_due() and self.persist is not None:
                        self.persist()
            while self._timers and self._timers[0][2].cancelled:  # the heap's top is the next live timer
                heapq.heappop(self._timers)
                self.cancelled -= 1
            nxt = self._timers[0][0] if self._timers else None
            delay = min(((nxt - self.now()) / self.scale) if nxt is not None else 1.0, 1.0)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=max(delay, 0.0))
