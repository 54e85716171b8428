"""Every stateful thing the engine keeps, as a record: a kind, an id and JSON data.

While it runs, the engine keeps each kind where its vendor reads it (Telnyx's verifications in a dict by id, calls
in the phones, ...). `Records` is the one place that knows those homes: it gives a record's data by key (None once
the record is gone), every record for a full write, and puts records read from a store back in their homes.
What changed is marked with `Dirty` by the code that changed it; a commit writes those records and nothing else.

A record's stored form is its JSON text, written by orjson straight from the dataclass (measured: building a dict
with `dataclasses.asdict` first took 40% of a commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, fields, is_dataclass
from typing import TYPE_CHECKING, Any

import orjson

from verifymock import jsonio
from verifymock.calls import Call, Message
from verifymock.coverage import Reached
from verifymock.faults import Fault
from verifymock.state.store import IndexEntry, Put
from verifymock.timeline import Story
from verifymock.vendors.telesign import Transaction
from verifymock.vendors.telnyx import Verification
from verifymock.vendors.tollfree import TollFreeRequest
from verifymock.webhooks import Delivery
from verifymock.webhooks import over as _delivery_over

if TYPE_CHECKING:
    from verifymock.engine import Mock

Key = tuple[str, str]  # (kind, id)
Data = dict[str, Any]

# every kind, in the order a restore puts them back (a call before the verification that refers to it)
KINDS = (
    "profile",
    "template",
    "binding",
    "fault",
    "call",
    "message",
    "verification",
    "transaction",
    "nonce",
    "tollfree",
    "delivery",
    "outcome",
    "story",
)

# The index entries each kind of record has, found from its data. A store keeps them with the record; a change to
# these rules bumps INDEXED, and a file indexed under other rules is indexed again at start-up.
INDEXED = 1
_NONE: tuple[IndexEntry, ...] = ()


def _verification_entries(v: Verification) -> tuple[IndexEntry, ...]:
    number = IndexEntry("verification.number", v.phone_number)
    if v.type == "dtmf_confirm" and v.status == "pending":  # one DTMF confirmation under way per number
        return number, IndexEntry("verification.dtmf_pending", v.phone_number, unique=True)
    return (number,)


INDEXES: dict[str, Callable[[Any], tuple[IndexEntry, ...]]] = {
    "call": lambda call: (IndexEntry("call.number", call.phone_number),),
    "message": lambda message: (IndexEntry("message.number", message.phone_number),),
    "verification": _verification_entries,
}
# kinds whose entries are fixed once the record exists (a call's and a message's follow its phone number; most kinds
# have none): an update leaves them as they are, and the store need not read them back to compare
FIXED_ENTRIES = frozenset({"call", "message", *(kind for kind in KINDS if kind not in INDEXES)})


class Records:
    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        m = mock
        # kind -> (its records by id, as the engine holds them; what of a record is its data)
        self._homes: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[Any], Any]]] = {
            "profile": (lambda: m.telnyx.profiles, _same),
            "template": (lambda: m.telnyx.templates, _same),
            "binding": (lambda: m.scenarios.bindings, lambda scenario: {"scenario": scenario}),
            "fault": (lambda: {str(f.id): f for f in m.faults.active}, _same),
            "call": (lambda: m.phones.by_id, _same),
            "message": (lambda: m.phones.messages_by_id, _same),
            "verification": (lambda: m.telnyx.verifications, _same),
            "transaction": (lambda: m.telesign.transactions, _same),
            "nonce": (lambda: m.telesign.nonces, lambda at: {"at": at}),
            "tollfree": (lambda: m.tollfree.requests, _same),
            "delivery": (lambda: {str(k): d for k, d in m.webhooks.by_id.items()}, _same),
            "outcome": (lambda: m.coverage.reached, _same),
            "story": (lambda: m.timelines.stories, _same),
        }

    def put(self, kind: str, record_id: str, stored: bool) -> Put | None:
        """The record's stored form now (JSON, and its index entries unless `stored` already has them fixed), or
        None if it no longer exists."""
        if kind == "fault":
            found: Any = next((f for f in self.mock.faults.active if str(f.id) == record_id), None)
        elif kind == "delivery":
            found = self.mock.webhooks.by_id.get(int(record_id))
        else:
            found = self._homes[kind][0]().get(record_id)
        if found is None:
            return None
        text, entries = _json(self._homes[kind][1](found)), INDEXES.get(kind)
        if stored and kind in FIXED_ENTRIES:
            return Put(text, None)
        return Put(text, entries(found) if entries else _NONE)

    def items(self) -> Iterator[tuple[Key, Data]]:
        """Every record's data, kind by kind, each kind oldest first (as it would be read back)."""
        for kind in KINDS:
            home, view = self._homes[kind]
            for record_id, record in home().items():
                yield (kind, str(record_id)), jsonio.loads(_json(view(record)).encode())

    def count(self, kind: str) -> int:
        """How many records of a kind the engine holds in memory."""
        return len(self._homes[kind][0]())

    def held(self, kind: str, record_id: str) -> bool:
        """Whether the engine holds this record in memory (for the kinds whose home is a dict by id)."""
        return record_id in self._homes[kind][0]()

    def decode(self, kind: str, data: Data) -> Any:
        """A record of a kind that may live on disk only, as the engine holds it."""
        return _DECODERS[kind](data)

    def adopt(self, kind: str, record_id: str, data: Data) -> None:
        """A finished record read back from disk is kept in memory again, as the newest finished of its kind."""
        m, record = self.mock, self.decode(kind, data)
        if kind == "call":
            m.phones.by_id[record_id] = record
            m.phones.ended.append(record_id)
        elif kind == "message":
            m.phones.messages.append(record)
            m.phones.messages_by_id[record_id] = record
        else:
            (m.telnyx.verifications if kind == "verification" else m.telesign.transactions)[record_id] = record
            m.finished(kind, record_id)

    def replace(self, kind: str, record_id: str, data: Data | None) -> None:
        """Hold what a store holds for one record that another process changed: updated in place (whoever holds
        the object sees the change), added where its kind is kept, or let go of (None: deleted). Nothing is marked
        changed: this is what is stored."""
        m = self.mock
        if kind in ("profile", "template", "binding", "nonce"):
            home: dict[str, Any] = self._homes[kind][0]()
            if data is None:
                home.pop(record_id, None)
            else:
                home[record_id] = data if kind in ("profile", "template") else _PLAIN[kind](data)
            return
        if kind == "fault":
            m.faults.active = [f for f in m.faults.active if str(f.id) != record_id]
            if data is not None:
                m.faults.active = sorted([*m.faults.active, Fault(**data)], key=lambda f: f.id)
            return
        key: Any = int(record_id) if kind == "delivery" else record_id
        homes: dict[str, dict[Any, Any]] = {
            "call": m.phones.by_id,
            "message": m.phones.messages_by_id,
            "verification": m.telnyx.verifications,
            "transaction": m.telesign.transactions,
            "tollfree": m.tollfree.requests,
            "delivery": m.webhooks.by_id,
            "outcome": m.coverage.reached,
            "story": m.timelines.stories,
        }
        held, home = homes[kind].get(key), homes[kind]
        if data is None:
            home.pop(key, None)
            if kind == "message" and held is not None:
                m.phones.messages.remove(held)
            return
        record = _FROM_DATA[kind](data)
        if held is not None:
            for f in fields(record):
                setattr(held, f.name, getattr(record, f.name))
            record = held
        else:
            home[key] = record
            if kind == "message":
                m.phones.messages.append(record)
        self._finishing(kind, key, record)

    def _finishing(self, kind: str, key: Any, record: Any) -> None:
        """A record changed elsewhere may have finished: retention learns of it as it would have here."""
        m = self.mock
        if kind == "call" and not record.live and key not in m.phones.ended:
            m.phones.ended.append(key)
        elif kind == "delivery" and _delivery_over(record) and key not in m.webhooks.done:
            m.webhooks.done.append(key)
        elif kind in ("verification", "transaction", "tollfree") and m.is_finished(kind, record):
            m.finished(kind, key)

    def restore(self, rows: list[tuple[str, str, Data]]) -> None:
        """Put records read from a store (oldest first) back where the engine keeps them."""
        m = self.mock
        by_kind: dict[str, list[tuple[str, Data]]] = {kind: [] for kind in KINDS}
        for kind, record_id, data in rows:
            if kind in by_kind:
                by_kind[kind].append((record_id, data))
        m.telnyx.profiles = {i: d for i, d in by_kind["profile"]}
        m.telnyx.templates = {i: d for i, d in by_kind["template"]}
        m.scenarios.bindings = {i: d["scenario"] for i, d in by_kind["binding"]}
        m.faults.active = [Fault(**d) for _, d in by_kind["fault"]]
        for _, d in by_kind["call"]:
            m.phones.add(Call.from_data(d))
        for _, d in by_kind["message"]:
            m.phones.keep_message(Message.from_data(d))
        m.telnyx.verifications = {i: Verification.from_data(d) for i, d in by_kind["verification"]}
        m.telesign.transactions = {i: Transaction.from_data(d) for i, d in by_kind["transaction"]}
        m.telesign.nonces = {i: float(d["at"]) for i, d in by_kind["nonce"]}
        m.tollfree.requests = {i: TollFreeRequest.from_data(d) for i, d in by_kind["tollfree"]}
        deliveries = [Delivery.from_data(d) for _, d in by_kind["delivery"]]
        m.webhooks.restore(deliveries, max((d.id for d in deliveries), default=0) + 1)
        m.coverage.reached = {i: Reached.from_data(d) for i, d in by_kind["outcome"]}
        m.timelines.stories = {i: Story.from_data(d) for i, d in by_kind["story"]}


_PLAIN: dict[str, Callable[[Data], Any]] = {"binding": lambda d: d["scenario"], "nonce": lambda d: float(d["at"])}
_FROM_DATA: dict[str, Callable[[Data], Any]] = {
    "call": Call.from_data,
    "message": Message.from_data,
    "verification": Verification.from_data,
    "transaction": Transaction.from_data,
    "tollfree": TollFreeRequest.from_data,
    "delivery": Delivery.from_data,
    "outcome": Reached.from_data,
    "story": Story.from_data,
}
_DECODERS: dict[str, Callable[[Data], Any]] = {
    "call": Call.from_data,
    "message": Message.from_data,
    "verification": Verification.from_data,
    "transaction": Transaction.from_data,
}


def _same(record: Any) -> Any:
    return record


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits in a caller's body: the standard library writes it
        return jsonio.dumps(asdict(value) if is_dataclass(value) and not isinstance(value, type) else value).decode()
