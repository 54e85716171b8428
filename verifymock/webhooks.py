"""Outgoing webhooks: signed, sent with httpx, failed over, retried on the clock, every attempt recorded.

Sending never blocks the request that caused it: each round of attempts is a task on the event loop. `settle`
waits for the rounds the current request started (since it called `watch`), which is how a handset action or a
clock advance answers only after its own webhooks were tried, and never waits on someone else's slow receiver.
Each attempt has a total deadline, and a receiver's answer is judged by its status alone: its body is never read.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
from nacl.signing import SigningKey

from verifymock import jsonio
from verifymock.clock import Clock, Timer
from verifymock.registry import timer
from verifymock.state.dirty import Dirty

log = logging.getLogger("verifymock.webhooks")

# Clock seconds to wait before each further round (primary, then failover) after a failed one.
RETRY_DELAYS = (5.0, 30.0, 120.0)
ATTEMPT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
ATTEMPT_DEADLINE = 5.0  # real seconds an attempt may take in all: a receiver dripping bytes cannot hold it longer
# A receiver that answers with this header only records what it gets (the pytest plugin's): its answer to a forged
# signature says nothing of the consumer's own receiver, so coverage does not judge it
RECORDER_HEADER = "x-verifymock-recorder"

_caused: ContextVar[set[asyncio.Task[None]] | None] = ContextVar("verifymock_webhook_rounds", default=None)


class TelnyxSigner:
    """Ed25519 over "{telnyx-timestamp}|{raw body}", as the Telnyx SDKs verify it."""

    def __init__(self, seed_b64: str | None = None) -> None:
        self._key = SigningKey(base64.b64decode(seed_b64)) if seed_b64 else SigningKey.generate()
        self.generated = not seed_b64

    @property
    def seed(self) -> str:
        return base64.b64encode(bytes(self._key)).decode()

    def use_seed(self, seed_b64: str) -> None:
        self._key = SigningKey(base64.b64decode(seed_b64))

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self._key.verify_key)).decode()

    def headers(self, body: bytes, *, tamper: bool = False) -> dict[str, str]:
        timestamp = str(int(time.time()))  # real wall time: receivers compare it with their own clock
        signature = self._key.sign(f"{timestamp}|".encode() + body).signature
        if tamper:
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        return {
            "content-type": "application/json",
            "telnyx-timestamp": timestamp,
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        }


@dataclass
class Attempt:
    number: int
    url: str
    at: str
    status_code: int | None
    error: str | None
    delivered: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "url": self.url,
            "at": self.at,
            "status_code": self.status_code,
            "error": self.error,
            "delivered": self.delivered,
        }


OUT_OF_ORDER_HOLD = 30.0  # clock seconds the first webhook about a resource is held under out_of_order


@dataclass
class Breakage:
    """What a scenario does to deliveries: drop the first N attempts, sign them wrongly, send them late, twice,
    or out of order."""

    drop_attempts: int = 0
    bad_signature: bool = False
    late_seconds: float = 0.0
    duplicate: bool = False
    out_of_order: bool = False


# How a delivery's body is made and signed: Telnyx's envelope, counted and signed anew per attempt; TeleSign's fixed
# body signed with the customer's key; CM's fixed body, unsigned.
SIGNINGS = ("telnyx", "telesign", "none")


@dataclass
class Delivery:
    id: int
    vendor: str
    event_type: str
    url: str
    failover_url: str | None
    created_at: str
    subject: str
    signing: str  # one of SIGNINGS
    payload: Any  # Telnyx: the event's `data`; else the body's text
    customer_id: str | None = None  # TeleSign: whose key signs it
    breakage: Breakage = field(default_factory=Breakage)
    attempts: list[Attempt] = field(default_factory=list)
    rounds: int = 0
    state: str = "pending"
    in_flight: bool = False  # a round of attempts is under way (a restart starts it again)
    timer: str | None = None  # the held first round or the next retry, cancelled if the delivery is dropped
    dropped: bool = False  # let go of by --retain: no further round starts
    owner: str = ""  # with a shared store: the process whose round is under way (another takes it if it dies)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Delivery:
        attempts = [Attempt(**a) for a in data["attempts"]]
        return cls(**{**data, "breakage": Breakage(**data["breakage"]), "attempts": attempts})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "vendor": self.vendor,
            "event_type": self.event_type,
            "url": self.url,
            "failover_url": self.failover_url,
            "subject": self.subject,
            "created_at": self.created_at,
            "state": self.state,
            "attempts": [a.to_json() for a in self.attempts],
        }


class Webhooks:
    def __init__(self, clock: Clock, signer: TelnyxSigner, allowed_hosts: frozenset[str] | None = None) -> None:
        self.clock = clock
        self.signer = signer
        self.allowed_hosts = allowed_hosts
        self.by_id: dict[int, Delivery] = {}  # every delivery kept, oldest first
        # ids of deliveries that are over, in the order they ended: what retention lets go of
        self.done: deque[int] = deque()
        self._next_id = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self.persist: Callable[[], None] | None = None  # called when a round of attempts ends
        self.telesign_key: Callable[[str], str | None] | None = None  # a TeleSign customer's key, which signs
        self.dirty = Dirty()  # the engine's, when a store writes what changes
        # with a durable store: awaited before a round's first attempt, so that what is sent (an event and its id)
        # has been written, and a restart after a crash sends the same event again rather than a new one
        self.written: Callable[[], Awaitable[bool]] | None = None
        self.owner = ""  # this process, as the rounds it starts name it (with a store shared by several)
        self.reach: Callable[[str], None] = lambda name: None  # an outcome for coverage (the engine's)
        self.tell: Callable[..., Any] = lambda *args, **kwargs: None  # an event of a story (the engine's timelines)

    def resume(self, owners: Callable[[str], bool] = lambda owner: False) -> None:
        """After a restart: start again the rounds that were under way when the server stopped (with a shared
        store, those whose process is gone: `owners` says which owners live)."""
        for delivery in self.deliveries:
            if delivery.in_flight and not owners(delivery.owner):
                self.start_round(delivery)

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.by_id.values())

    def clear(self) -> None:
        self.by_id.clear()
        self.done.clear()

    def next_id(self) -> int:
        return self._next_id

    def restore(self, deliveries: list[Delivery], next_id: int) -> None:
        self.by_id = {d.id: d for d in deliveries}
        self.done = deque(d.id for d in deliveries if over(d))
        self._next_id = next_id

    def continue_from(self, next_id: int) -> None:
        self._next_id = max(next_id, self._next_id)

    def send(
        self,
        *,
        vendor: str,
        event_type: str,
        url: str,
        failover_url: str | None,
        subject: str,
        signing: str,
        payload: Any,
        customer_id: str | None = None,
        breakage: Breakage | None = None,
    ) -> Delivery:
        """Start delivering: the first round of attempts runs now, on the event loop; the request goes on."""
        self._next_id += 1
        delivery = Delivery(
            id=self._next_id - 1,
            vendor=vendor,
            event_type=event_type,
            url=url,
            failover_url=failover_url or None,
            created_at=self.clock.now_datetime().isoformat(),
            subject=subject,
            signing=signing,
            payload=payload,
            customer_id=customer_id,
            breakage=breakage or Breakage(),
        )
        self.by_id[delivery.id] = delivery
        self.dirty("delivery", delivery.id)
        hold = delivery.breakage.late_seconds
        if hold:
            self.reach("webhooks.late")
        if delivery.breakage.out_of_order and not any(
            d.subject == subject and d is not delivery for d in self.by_id.values()
        ):
            hold += OUT_OF_ORDER_HOLD
            self.reach("webhooks.out_of_order")
        if hold:
            delivery.timer = self.clock.schedule(hold, "webhook.round", str(delivery.id)).id
            self.tell(subject, "vendor", "vendor", f"webhook {delivery.event_type} held {hold:g} s (scenario)")
        else:
            self.start_round(delivery)
        return delivery

    def send_telnyx(
        self,
        *,
        url: str,
        failover_url: str | None,
        data: dict[str, Any],
        subject: str,
        breakage: Breakage | None = None,
    ) -> Delivery:
        """Telnyx's envelope: `meta` counts the attempt and names the URL, so each attempt is signed anew."""
        return self.send(
            vendor="telnyx",
            event_type=str(data.get("event_type", "")),
            url=url,
            failover_url=failover_url,
            subject=subject,
            signing="telnyx",
            payload=data,
            breakage=breakage,
        )

    def _body(self, delivery: Delivery, attempt: int, url: str) -> bytes:
        if delivery.signing == "telnyx":
            return jsonio.dumps({"data": delivery.payload, "meta": {"attempt": attempt, "delivered_to": url}})
        return str(delivery.payload).encode()

    def _headers(self, delivery: Delivery, body: bytes, tamper: bool) -> dict[str, str]:
        if delivery.signing == "telnyx":
            return self.signer.headers(body, tamper=tamper)
        key = self.telesign_key(delivery.customer_id) if self.telesign_key and delivery.customer_id else None
        if delivery.signing == "telesign" and key is not None:  # (a customer no longer configured: unsigned)
            from verifymock.vendors.telesign import callback_headers

            return callback_headers(delivery.customer_id or "", key, body, tamper)
        return {"content-type": "application/json"}

    def watch(self) -> None:
        """From here on, the rounds this request starts (directly, or through the timers it runs) are the ones its
        `settle` waits for."""
        _caused.set(set())

    async def settle(self) -> None:
        """Wait until the rounds this request started since `watch` have finished; every round under way if it
        did not watch (shutting down)."""
        caused = _caused.get()
        rounds = self._tasks if caused is None else caused
        while waiting := [task for task in rounds if not task.done()]:
            await asyncio.gather(*waiting, return_exceptions=True)
        if caused is not None:
            caused.clear()  # all done: an advance settles after every timer, and need not look at these again

    def drop(self, delivery: Delivery) -> None:
        """Let go of a delivery (retention): its held round or next retry is cancelled, and no round starts again."""
        delivery.dropped = True
        self.by_id.pop(delivery.id, None)
        self.dirty("delivery", delivery.id)
        self.clock.cancel(delivery.timer)
        delivery.timer = None

    def start_round(self, delivery: Delivery) -> None:
        delivery.timer = None
        if delivery.dropped:
            return
        delivery.in_flight = True
        delivery.owner = self.owner
        self.dirty("delivery", delivery.id)
        task = asyncio.get_running_loop().create_task(self._rounded(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        caused = _caused.get()
        if caused is not None:
            caused.add(task)

    def _refusal(self, url: str) -> str | None:
        """Why a URL may not be called, if it may not: the mock must not become a way into internal services."""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return f"refused: {url!r} is not an http(s) URL"
        if self.allowed_hosts is not None and parsed.hostname.lower() not in self.allowed_hosts:
            return f"refused: {parsed.hostname} is not an allowed callback host"
        return None

    async def _rounded(self, delivery: Delivery) -> None:
        try:
            if self.written is not None and not await self.written():
                if self.by_id.get(delivery.id) is not delivery:  # thrown away with a refused commit: never sent
                    return
                log.error("webhook %s is sent though it could not be written first", delivery.id)
            await self._round(delivery)
        finally:
            delivery.in_flight = False
            if over(delivery):
                self.done.append(delivery.id)
            self.dirty("delivery", delivery.id)  # its attempts, state and next retry
            if self.persist is not None:
                self.persist()

    async def _round(self, delivery: Delivery) -> None:
        failover = delivery.failover_url
        if failover is not None and self._refusal(failover) is not None:
            failover = None
        refusal = self._refusal(delivery.url)
        if refusal is not None:
            if delivery.rounds == 0:  # said once; the rounds go on to an allowed failover
                at = self.clock.now_datetime().isoformat()
                delivery.attempts.append(Attempt(len(delivery.attempts) + 1, delivery.url, at, None, refusal, False))
                self._told(delivery, delivery.url, "not sent")
            if failover is None:
                delivery.state = "refused"
                return
        delivery.rounds += 1
        targets = ([] if refusal is not None else [delivery.url]) + ([failover] if failover else [])
        async with httpx.AsyncClient(timeout=ATTEMPT_TIMEOUT, follow_redirects=False) as client:
            for url in targets:
                if await self._attempt(client, delivery, url):
                    delivery.state = "delivered"
                    first = delivery.rounds == 1 and url == delivery.url
                    self.reach(
                        "webhooks.delivered_first"
                        if first
                        else "webhooks.failover_used"
                        if url == failover
                        else "webhooks.retried_then_delivered"
                    )
                    if delivery.breakage.duplicate:  # the same event again, as a receiver must tolerate
                        await self._attempt(client, delivery, url, repeat=True)
                        self.reach("webhooks.duplicate")
                    return
        if delivery.dropped:
            return
        if delivery.rounds <= len(RETRY_DELAYS):
            delivery.timer = self.clock.schedule(
                RETRY_DELAYS[delivery.rounds - 1], "webhook.round", str(delivery.id)
            ).id
        else:
            delivery.state = "failed"
            self.reach("webhooks.all_failed")

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery, url: str, repeat: bool = False) -> bool:
        number = len(delivery.attempts) + 1
        body = self._body(delivery, number - 1 if repeat else number, url)
        at = self.clock.now_datetime().isoformat()
        if number <= delivery.breakage.drop_attempts:
            delivery.attempts.append(Attempt(number, url, at, None, "dropped by the scenario", False))
            self._told(delivery, url, "dropped by the scenario")
            return False
        headers = self._headers(delivery, body, delivery.breakage.bad_signature)
        forged = delivery.breakage.bad_signature and delivery.signing != "none"
        if forged:
            self.reach("webhooks.forged.sent")
        try:
            async with asyncio.timeout(ATTEMPT_DEADLINE):
                # streamed and closed unread: only the status counts, so a receiver's endless body costs nothing
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    recorder = RECORDER_HEADER in response.headers
        except TimeoutError:
            error = f"no answer within {ATTEMPT_DEADLINE:g} s"
            delivery.attempts.append(Attempt(number, url, at, None, error, False))
            self._told(delivery, url, error)
            return False
        except httpx.HTTPError as exc:
            delivery.attempts.append(Attempt(number, url, at, None, f"{type(exc).__name__}: {exc}", False))
            self._told(delivery, url, type(exc).__name__)
            return False
        ok = 200 <= status < 300
        delivery.attempts.append(Attempt(number, url, at, status, None, ok))
        self._told(delivery, url, str(status), forged)
        if forged and not recorder:
            self.reach("webhooks.forged.accepted" if ok else "webhooks.forged.refused")
        return ok

    def _told(self, delivery: Delivery, url: str, result: str, forged: bool = False) -> None:
        """An attempt, as its subject's story tells it."""
        attempt = delivery.attempts[-1]
        where = "failover URL" if url == delivery.failover_url and url != delivery.url else "URL"
        signed = ", wrong signature" if forged else ""
        self.tell(
            delivery.subject,
            "vendor",
            "receiver",
            f"webhook {delivery.event_type} → {result}",
            detail=f"attempt {attempt.number} to the {where}{signed}: {url}",
        )


def over(delivery: Delivery) -> bool:
    """No round is under way or due: delivered, failed or refused."""
    return delivery.state != "pending" and not delivery.in_flight and delivery.timer is None


@timer("webhook.round", record="delivery")
def _round_due(mock: Any, t: Timer) -> None:
    """A held first round, or the next retry."""
    delivery = mock.webhooks.by_id.get(int(t.key))
    if delivery is not None:
        mock.webhooks.start_round(delivery)
