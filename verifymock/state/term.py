"""Several processes on one store: one decides at a time, each term under a lease that its commits are tied to.

A process that serves a request or runs a timer first holds the term: a named lease in the store ("term"), taken
on real time. On taking it, the process reads what the others committed since it last looked (the engine's
`catch_up`), so what it holds in memory is the store's state, and its decisions are made on that. Its commits
name the lease, and the store refuses them once the lease is someone else's: a process that stalled past its lease
cannot write over what the next holder decided. The lease is renewed while held.

Every unit of work that runs while the term is held shares it. The term is given back as soon as no unit is in
flight, and at the latest after MAX_TERM_S (new units then wait for the next term), so that other processes get
their turn under load. Waiting for the term polls the store with a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from verifymock.state.store import Store

log = logging.getLogger("verifymock.state")

NAME = "term"
TTL_S = 5.0  # a holder that dies, or stalls this long, lets the others go on
MAX_TERM_S = 0.1
_POLL_FIRST_S, _POLL_MAX_S = 0.0005, 0.01


class Unavailable(Exception):
    """The store could not be reached to take the term: the request is answered 503, and the next one tries again."""


class Term:
    def __init__(self, store: Store, catch_up: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.catch_up = catch_up
        self.token: str | None = None
        self.units = 0
        self._since = 0.0
        self._draining = False
        self._taking: asyncio.Task[None] | None = None
        self._giving: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._failed: Exception | None = None  # why the last attempt to take the term failed

    @property
    def held(self) -> tuple[str, str] | None:
        """What a commit names: the lease, if this process holds it."""
        return None if self.token is None else (NAME, self.token)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def enter(self) -> None:
        """Wait for this process to hold the term (caught up with the others), and count a unit of work in it."""
        changed = self._condition()
        async with changed:
            while self.token is None or self._draining:
                if self._failed is not None and self._taking is None:
                    failed, self._failed = self._failed, None
                    raise Unavailable(f"{type(failed).__name__}: {failed}") from failed
                if self._taking is None and self._giving is None and not self._draining:
                    self._taking = asyncio.get_running_loop().create_task(self._take())
                await changed.wait()
            self.units += 1
            if time.monotonic() - self._since > MAX_TERM_S:
                self._draining = True  # the units in flight finish; the next ones wait for another term

    def leave(self) -> None:
        self.units -= 1
        if self.units == 0 and self._giving is None:
            self._giving = asyncio.get_running_loop().create_task(self._give())

    async def _take(self) -> None:
        pause = _POLL_FIRST_S
        token = None
        try:
            while (token := await self.store.acquire(NAME, TTL_S)) is None:
                await asyncio.sleep(pause)
                pause = min(pause * 2, _POLL_MAX_S)
            await self.catch_up()
        except Exception as exc:  # (the store is down, say): the units waiting hear of it
            log.error("taking the state term failed: %s: %s", type(exc).__name__, exc)
            self._failed = exc
            if token is not None:
                with contextlib.suppress(Exception):
                    await self.store.release(NAME, token)
            token = None
        finally:
            changed = self._condition()
            async with changed:
                self._taking = None
                if token is not None:
                    self.token, self._since = token, time.monotonic()
                    self._renewing = asyncio.get_running_loop().create_task(self._renew(token))
                changed.notify_all()

    async def _give(self) -> None:
        changed = self._condition()
        try:
            async with changed:
                if self.units or self.token is None:  # a unit came in meanwhile: the term goes on
                    return
                token, self.token, self._draining = self.token, None, False
            if self._renewing is not None:
                self._renewing.cancel()
            try:
                await self.store.release(NAME, token)
            except Exception:  # it runs out by itself
                log.exception("giving back the state term failed")
        finally:
            async with changed:
                self._giving = None
                changed.notify_all()

    async def close(self) -> None:
        """Shutting down: give the term back (the others need not wait for it to run out)."""
        for task in (self._taking, self._giving):
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        if self._renewing is not None:
            self._renewing.cancel()
        if self.token is not None:
            token, self.token = self.token, None
            with contextlib.suppress(Exception):
                await self.store.release(NAME, token)

    async def _renew(self, token: str) -> None:
        await keep(self.store, NAME, token, TTL_S)
        log.error("the state term ran out while this process held it: its next commit will be refused")


async def keep(store: Store, name: str, token: str, ttl_s: float) -> None:
    """Renew a lease just taken, a third of its life at a time, until it turns out lost (or the task is cancelled)."""
    while True:
        await asyncio.sleep(ttl_s / 3)
        if not await store.renew(name, token, ttl_s):
            return
