"""Output is written once per connection per turn of the event loop, at the start of the next turn.

uvicorn writes each response as it goes: the status line and headers, then the body, each a `send` system call
and, with Nagle's algorithm off as servers keep it, a TCP segment of its own. Two costs came of that, both measured
on a call verification POST and a GET with wrk on loopback:

- Two segments per answer doubled what the client's stack acknowledges, and a client's delayed acknowledgement of
  the first set off tail-loss probes: the p99 at 64 connections ranged from 23 to 124 ms over four runs, and stayed
  at 24-26 ms with one write per answer.
- Each write to a client that is waiting for it wakes the client, and the kernel does that waking inside the
  server's `send`. Written as each response finished, nearly every answer woke wrk on its own: 0.98 voluntary
  context switches of wrk per request. Written together at the start of the next turn, one wake-up serves the
  batch: 0.13 per request, and on this 2-core VM the same server answered GETs at 16 connections 55% faster
  (15,600-16,300 req/s against 9,600-11,700) with half the p99 (1.7-1.9 ms against 3.7-4.6 ms), and call
  verification POSTs 20-35% faster.

`CoalescingTransport` wraps the socket's transport: `write` appends to a buffer, and the first write of a turn
schedules that buffer's flush with `call_soon`, which runs at the start of the next turn, after the loop has
polled for I/O and before any request that poll started. A lone client waits for one extra poll of the loop (a
few microseconds); under concurrency a response finished early in a turn waits for the rest of that turn's work
before it leaves. `close` sends what is buffered first, `abort` drops it, and HEAD answers, `100 Continue` and
streamed chunks go out at the next turn like everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes of one loop turn leave as one write at the start of the next."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer += data

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + len(self._buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# uvicorn times out only idle keep-alive connections: a client that sends half a request's headers, or half its
# body, held its connection (and a file descriptor) forever, and 20,000 of them stopped the server. A request must
# now arrive whole within READ_TIMEOUT of its first byte (or of the connection, for the first), and connections
# past MAX_CONNECTIONS are closed as they are accepted. Each connection notes when it started reading, and one sweep
# per server, every SWEEP_SECONDS, closes the late ones: a timer per request (armed, then cancelled) cost a fifth of
# the GET rate under load, in heap pushes and the loop's cleanups of cancelled timers.
READ_TIMEOUT = 15.0
SWEEP_SECONDS = 1.0
MAX_CONNECTIONS = 4096
# the loop sweeping each server's connection set, by the set's id (a loop that has closed sweeps no more, and an id
# can come back for another server's set)
_swept: dict[int, asyncio.AbstractEventLoop] = {}


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a `CoalescingTransport`, with a deadline on reading each
    request and a bound on connections."""

    _reading_since: float | None = None  # loop time a request (or the connection) started arriving

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > MAX_CONNECTIONS:
            self.transport.close()
            return
        self._reading_since = self.loop.time()
        key = id(self.connections)
        if _swept.get(key) is not self.loop:
            _swept[key] = self.loop
            self.loop.call_later(SWEEP_SECONDS, _sweep, self.loop, self.connections, key)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_since = self.loop.time()

    def on_message_complete(self) -> None:
        self._reading_since = None
        super().on_message_complete()

    def too_slow(self, now: float) -> bool:
        return self._reading_since is not None and now - self._reading_since > READ_TIMEOUT


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], key: int) -> None:
    """Close the connections whose request has taken longer than READ_TIMEOUT to arrive; again in a second while
    the server has any."""
    if not connections:
        if _swept.get(key) is loop:
            del _swept[key]
        return
    now = loop.time()
    for protocol in list(connections):
        if isinstance(protocol, CoalescingProtocol) and protocol.too_slow(now) and not protocol.transport.is_closing():
            protocol._reading_since = None
            protocol.transport.close()
    loop.call_later(SWEEP_SECONDS, _sweep, loop, connections, key)


# How verifymock's uvicorn serves, apart from its app and lifetime: also what the load benchmark's bare-ASGI ceiling
# is served with, so the two differ only in their apps. Kept here, beside the protocol, so the ceiling need not
# import the app to read them.
SERVER_SETTINGS: dict[str, Any] = {
    "http": CoalescingProtocol,  # output written once per connection per loop turn
    "proxy_headers": False,  # nothing reads the client's address; the middleware that rewrites it cost 1.7% a request
    "access_log": False,  # verifymock's gate logs one line per request itself
    "server_header": False,
}
