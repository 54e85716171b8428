"""Faults injected on an operation or a number, through the control API (scenarios carry the same overrides).

Latency (fixed or random), a vendor error, or a broken connection: closed before any response, or reset halfway
through the body. The gate carries out the connection faults, since only it sees the bytes go out.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from verifymock.errors import ApiError, Problem
from verifymock.state.dirty import Dirty

CONNECTION_FAULTS = ("close", "reset")


@dataclass
class Fault:
    id: int
    operation_id: str | None
    phone_number: str | None
    latency_ms: float = 0.0
    latency_ms_max: float | None = None
    status: int | None = None
    code: str | None = None
    detail: str | None = None
    connection: str | None = None
    remaining: int | None = None  # how many more requests it applies to; None: until removed

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation_id": self.operation_id,
            "phone_number": self.phone_number,
            "latency_ms": self.latency_ms,
            "latency_ms_max": self.latency_ms_max,
            "http": None if self.status is None else {"status": self.status, "code": self.code, "detail": self.detail},
            "connection": self.connection,
            "remaining": self.remaining,
        }


async def delay(low_ms: float, high_ms: float | None) -> None:
    """Sleep a fixed time, or a random time between two bounds."""
    wait = random.uniform(low_ms, high_ms) if high_ms is not None and high_ms > low_ms else low_ms
    if wait > 0:
        await asyncio.sleep(wait / 1000)


def error_for(status: int, code: str | None, detail: str | None, source: str) -> ApiError:
    return ApiError(
        Problem.INTERNAL if status >= 500 else Problem.UNPROCESSABLE,
        detail or f"Forced by {source}.",
        code=code,
        status=status,
    )


MAX_FAULTS = 1000


class Faults:
    def __init__(self) -> None:
        self.active: list[Fault] = []
        self._next_id = 1
        self.dirty = Dirty()  # the engine's, when a store writes what changes

    def next_id(self) -> int:
        return self._next_id

    def continue_from(self, next_id: int) -> None:
        self._next_id = next_id

    def clear(self) -> None:
        self.active.clear()

    def add(self, body: dict[str, Any]) -> Fault:
        if len(self.active) >= MAX_FAULTS:  # every vendor request looks through them
            raise ApiError(
                Problem.UNPROCESSABLE,
                f"{MAX_FAULTS} faults are in force already; delete some (DELETE /_mock/faults/{{id}}) or reset.",
            )
        http = body.get("http") or {}
        self._next_id += 1
        fault = Fault(
            id=self._next_id - 1,
            operation_id=body.get("operation_id"),
            phone_number=body.get("phone_number"),
            latency_ms=float(body.get("latency_ms", 0)),
            latency_ms_max=body.get("latency_ms_max"),
            status=http.get("status"),
            code=http.get("code"),
            detail=http.get("detail"),
            connection=body.get("connection"),
            remaining=body.get("times"),
        )
        self.active.append(fault)
        self.dirty("fault", fault.id)
        return fault

    def remove(self, fault_id: int) -> bool:
        before = len(self.active)
        self.active = [f for f in self.active if f.id != fault_id]
        self.dirty("fault", fault_id)
        return len(self.active) != before

    def match(self, operation_id: str, numbers: list[str]) -> Fault | None:
        for fault in self.active:
            if fault.operation_id not in (None, operation_id):
                continue
            if fault.phone_number is not None and fault.phone_number not in numbers:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                self.dirty("fault", fault.id)
                if fault.remaining <= 0:
                    self.active.remove(fault)
            return fault
        return None


def numbers_in(arguments: dict[str, Any]) -> list[str]:
    """The phone numbers a request names, wherever the vendor puts them."""
    found: list[str] = []
    body = arguments.get("body")
    for source in (arguments, body if isinstance(body, dict) else {}):
        for key in ("phone_number", "callee", "caller"):
            value = source.get(key)
            if isinstance(value, str):
                found.append(value if value.startswith("+") else "+" + value)
        for entry in source.get("callees") or []:
            if isinstance(entry, str):
                found.append(entry)
        for entry in source.get("phoneNumbers") or []:
            if isinstance(entry, dict) and isinstance(entry.get("phoneNumber"), str):
                found.append(entry["phoneNumber"])
    return found
