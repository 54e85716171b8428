"""Every verification's story: what happened to it, in order, on the mock's clock, across four lanes.

A story belongs to one subject: a Telnyx verification, a TeleSign transaction, a CM call or a toll-free request.
The engine tells it as things happen: the consumer's requests and their answers, the call placed, ringing and
answered, each prompt (with how long it plays), each key, each timeout, the outcome, and each webhook attempt
(with its status, and whether it went to the failover URL). A story is a record of kind "story", so it is kept and
shared like the rest of the state. The newest `retain` are kept (at most MAX_STORIES: they stay in memory, and a
person reads the recent ones), each with at most MAX_EVENTS events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from verifymock.state.dirty import Dirty

# who sends what to whom: the consumer's app, the mock standing in for the vendor, the phone, the consumer's
# webhook receiver
LANES = ("app", "vendor", "phone", "receiver")
MAX_EVENTS = 200
MAX_STORIES = 1_000  # a few KB each, all in memory (as many as the default --retain)
LABEL_CHARACTERS = 300  # a prompt's text or a message is cut here; the handset API has it whole


@dataclass
class Story:
    id: str
    kind: str  # telnyx.verification, telesign.transaction, cm.call, tollfree.request
    phone_number: str
    events: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0  # events told so far (beyond MAX_EVENTS the newest are not kept)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Story:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        events = sorted(self.events, key=lambda e: (e["t"], e["seq"]))
        return {
            "id": self.id,
            "kind": self.kind,
            "phone_number": self.phone_number,
            "lanes": list(LANES),
            "events": [{"seq": e["seq"], "at": _iso(e["t"]), **{k: e[k] for k in _SHOWN}} for e in events],
            "truncated": self.seq > len(self.events),
        }

    def summary(self) -> dict[str, Any]:
        last = self.events[-1] if self.events else None
        return {
            "id": self.id,
            "kind": self.kind,
            "phone_number": self.phone_number,
            "events": len(self.events),
            "last": last["label"] if last else None,
            "at": _iso(last["t"]) if last else None,
        }


_SHOWN = ("from", "to", "label", "seconds", "detail")


def _iso(t: float) -> str:
    """A clock time as the API shows it (formatted when read: telling an event is on every request's path)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class Timelines:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now  # the mock's clock, in seconds
        self.stories: dict[str, Story] = {}  # oldest first
        self.dirty = Dirty()

    def begin(self, subject: str, kind: str, phone_number: str) -> None:
        """A new subject: its story starts (empty)."""
        self.stories[subject] = Story(subject, kind, phone_number)
        self.dirty("story", subject)

    def tell(
        self,
        subject: str | None,
        source: str,
        target: str,
        label: str,
        *,
        after: float = 0.0,
        seconds: float | None = None,
        detail: str | None = None,
    ) -> dict[str, Any] | None:
        """An event of the subject's story, now (or `after` seconds from now); `seconds` is how long it lasts.
        Nothing if there is no such story."""
        story = self.stories.get(subject) if subject is not None else None
        if story is None:
            return None
        story.seq += 1
        if len(story.events) >= MAX_EVENTS:
            return None
        event = {
            "seq": story.seq,
            "t": self.now() + after,
            "from": source,
            "to": target,
            "label": label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…",
            "seconds": None if seconds is None else round(seconds, 3),
            "detail": detail,
        }
        story.events.append(event)
        self.dirty("story", subject)
        return event

    def trim(self, keep: int) -> None:
        """Keep the newest `keep` stories (MAX_STORIES at most)."""
        keep = min(keep, MAX_STORIES)
        while len(self.stories) > keep:
            oldest = next(iter(self.stories))
            del self.stories[oldest]
            self.dirty("story", oldest)

    def clear(self) -> None:
        self.stories.clear()
