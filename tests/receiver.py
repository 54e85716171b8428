"""A real webhook receiver on loopback: records every request's raw body and headers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 30.0
HUGE_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # statuses to answer with, by path, consumed in order (then 200)
    script: dict[str, list[int]] = field(default_factory=dict)

    # set when the receiver stops: a request to /hang... waits for it (or HANG_SECONDS) before answering
    released: threading.Event = field(default_factory=threading.Event)
    # a request to /held... waits for this (or HANG_SECONDS), then answers as scripted
    held: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests to `path` once there are `count`: a webhook a request caused goes out after it answers."""
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.at(path)

    def clear(self) -> None:
        self.received.clear()
        self.script.clear()


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path.startswith("/hang"):  # never answers, as a receiver that is stuck
                receiver.released.wait(HANG_SECONDS)
                return
            if self.path.startswith("/held"):
                receiver.held.wait(HANG_SECONDS)
            if self.path.startswith("/huge"):  # answers 200 with a body that does not end
                self.send_response(200)
                self.send_header("content-length", str(HUGE_BYTES))
                self.end_headers()
                chunk = b"x" * 1024 * 1024
                try:
                    for _ in range(HUGE_BYTES // len(chunk)):
                        self.wfile.write(chunk)
                except OSError:  # the mock hung up, as it should once it has the status
                    pass
                return
            statuses = receiver.script.get(self.path) or []
            status = statuses.pop(0) if statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        receiver.held.set()
        server.shutdown()
        server.server_close()
