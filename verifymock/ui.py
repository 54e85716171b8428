"""The web page at /_mock/ui and the event stream it listens to.

The page is static files shipped in the package (no build step); everything it shows comes from the control API,
which it reads again whenever the server says something changed. `/_mock/events` is a server-sent event stream
of those changes, read by the page with fetch so that it can carry the control token like every other call.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from starlette.types import Receive, Scope, Send

from verifymock import jsonio

PAGE_PREFIX = "/_mock/ui"
EVENTS_PATH = "/_mock/events"
UI_HEADER = "x-verifymock-ui"  # the page's own reads carry it, and are not journaled
STATIC = Path(__file__).parent / "ui"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
PING_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
COALESCE_SECONDS = 0.1  # changes within this window become one event


class Listeners:
    """A counter of state changes that any number of listeners can wait on."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._listening = 0

    def notify(self) -> None:
        self.version += 1
        if self._listening:  # a new event per change only when someone waits (not on every request under load)
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def wait(self, seen: int, timeout: float) -> None:
        """Until the version passes `seen`, or the timeout."""
        if self.version != seen:
            return
        self._listening += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        finally:
            self._listening -= 1


def is_page(path: str) -> bool:
    return path == PAGE_PREFIX or path.startswith(PAGE_PREFIX + "/")


async def serve_page(scope: Scope, send: Send) -> None:
    """index.html for /_mock/ui, else the named file from the package's ui folder; nothing outside it."""
    name = scope["path"][len(PAGE_PREFIX) :].strip("/") or "index.html"
    # looked up among the files shipped, never on the file system: a NUL or a 300-character name is just not one
    path = STATIC / name if name in _FILES else None
    if scope["method"] not in ("GET", "HEAD") or path is None:
        body = jsonio.dumps({"status": 404, "title": "Not Found", "detail": "There is no such page file."})
        await _respond(send, 404, "application/json", body)
        return
    body = path.read_bytes()
    await _respond(send, 200, TYPES.get(path.suffix, "application/octet-stream"), body, head=scope["method"] == "HEAD")


async def serve_events(changes: Listeners, receive: Receive, send: Send) -> None:
    """`event: change` with the version each time state changes, until the client goes away."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    gone = asyncio.ensure_future(_disconnected(receive))
    seen = -1
    try:
        while not gone.done():
            if changes.version != seen:
                seen = changes.version
                chunk = f"event: change\ndata: {jsonio.dumps({'version': seen}).decode()}\n\n".encode()
            else:
                chunk = b": ping\n\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            waiter = asyncio.ensure_future(changes.wait(seen, PING_SECONDS))
            await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not gone.done():
                await asyncio.sleep(COALESCE_SECONDS)
    except OSError:
        pass  # the connection broke under a write
    finally:
        gone.cancel()
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, status: int, content_type: str, body: bytes, head: bool = False) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
