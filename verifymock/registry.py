"""Behaviour found by name: what each kind of timer does when it falls due, and each vendor's call flow.

The state holds only names and data: a timer says `telnyx.dtmf_wait` and the call it is for, a call says its flow
is `{"flow": "telnyx.dtmf_confirm", "wrong": 1, ...}`. The functions live in the vendor modules, which register
them here when they are imported, so a stored state can be run by a later version of the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from verifymock.calls import Call
    from verifymock.clock import Timer
    from verifymock.engine import Mock

TimerFunction = Callable[["Mock", "Timer"], None]
# kind -> (the function that runs it, the kind of record its key names, which it may change)
TIMERS: dict[str, tuple[TimerFunction, str]] = {}


def timer(kind: str, record: str) -> Callable[[TimerFunction], TimerFunction]:
    """Register the function that runs timers of `kind`; each timer's key names a record of kind `record`."""

    def register(function: TimerFunction) -> TimerFunction:
        if kind in TIMERS:
            raise ValueError(f"two functions run timers of kind {kind!r}")
        TIMERS[kind] = (function, record)
        return function

    return register


class Flow(Protocol):
    """A vendor's rules for one call; its state is the call's `flow` data. Called on the event loop, at clock time."""

    def answered(self, mock: Mock, call: Call) -> None: ...
    def pressed(self, mock: Mock, call: Call, digit: str) -> None: ...
    def ended(self, mock: Mock, call: Call, reason: str) -> None: ...


FLOWS: dict[str, Any] = {}  # name -> a class whose static methods are the Flow


def flow(name: str) -> Callable[[type[Any]], type[Any]]:
    """Register a class whose static methods are a flow's answers to what happens on the call."""

    def register(cls: type[Any]) -> type[Any]:
        if name in FLOWS:
            raise ValueError(f"two flows are named {name!r}")
        FLOWS[name] = cls
        return cls

    return register
