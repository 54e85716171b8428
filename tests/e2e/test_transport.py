"""The real server answers each request in one write, and buffered output never stalls an answer."""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Iterator

import pytest

from tests.helpers import TELNYX_AUTH
from verifymock import transport
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with serve_in_thread() as running:
        yield running


def exchange(server: Running, request: bytes) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(request)
    return sock


def read_all(sock: socket.socket, until: bytes) -> bytes:
    data = b""
    while until not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def data_segments_received(sock: socket.socket) -> int:
    """tcpi_data_segs_in of Linux's struct tcp_info: segments with data this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < 156:
        pytest.skip("this kernel's tcp_info has no tcpi_data_segs_in (Linux 4.6+)")
    return int(struct.unpack_from("I", info, 152)[0])


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's TCP_INFO")
def test_an_answer_arrives_in_one_segment(server: Running) -> None:
    auth = TELNYX_AUTH["Authorization"].encode()
    request = b"GET /v2/verify_profiles HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
    with exchange(server, request) as sock:
        answer = read_all(sock, b"}")
        time.sleep(0.1)  # anything else the server wrote has landed
        assert answer.startswith(b"HTTP/1.1 200")
        assert data_segments_received(sock) == 1  # status line, headers and body in one segment


def test_head_and_100_continue_are_not_held_back(server: Running) -> None:
    auth = TELNYX_AUTH["Authorization"].encode()
    with exchange(server, b"HEAD /_mock/ui HTTP/1.1\r\nHost: x\r\n\r\n") as sock:
        assert read_all(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200")  # headers only, nothing to write after them

    body = b'{"name": "held"}'
    request = (
        b"POST /v2/verify_profiles HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
        b"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with exchange(server, request) as sock:
        assert read_all(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert b'"name":"held"' in read_all(sock, b'"held"')


def test_transport_half_sent_request_is_closed_after_the_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "READ_TIMEOUT", 0.5)
    with serve_in_thread(Config(port=0, access_log=False)) as running:
        half_headers = exchange(running, b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        half_body = exchange(
            running, b"POST /_mock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
        )
        silent = socket.create_connection((running.host, running.port), timeout=5)
        started = time.monotonic()
        for sock in (half_headers, half_body, silent):
            assert sock.recv(1024) == b"", "a half-sent request was answered or kept open"
            sock.close()
        assert time.monotonic() - started < 4  # closed at the deadline, not at the client's 5 s timeout
        # a whole request on a connection kept alive is not cut by the deadline of the one before
        sock = exchange(running, b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_all(sock, b'"ok"}').startswith(b"HTTP/1.1 200")
        time.sleep(0.7)
        sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_all(sock, b'"ok"}').startswith(b"HTTP/1.1 200")
        sock.close()


def test_transport_connections_past_the_limit_are_closed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_CONNECTIONS", 4)
    with serve_in_thread(Config(port=0, access_log=False)) as running:
        held = [socket.create_connection((running.host, running.port), timeout=5) for _ in range(4)]
        time.sleep(0.2)  # accepted by the server
        extra = socket.create_connection((running.host, running.port), timeout=5)
        assert extra.recv(1024) == b""
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.2)
        sock = exchange(running, b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_all(sock, b'"ok"}').startswith(b"HTTP/1.1 200")
        sock.close()


@pytest.mark.parametrize("path", ["/_mock/journal", "/_mock/health", "/v2/verify_profiles"])
def test_transport_head_is_get_without_the_body(server: Running, path: str) -> None:
    request = f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n\r\n".encode()
    sock = exchange(server, request)
    head = read_all(sock, b"\r\n\r\n")
    sock.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert head.endswith(b"\r\n\r\n")  # headers alone
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    if path != "/_mock/journal":  # (which the HEAD itself has just grown)
        got = exchange(server, request.replace(b"HEAD", b"GET", 1))
        assert len(read_all(got, b"}").partition(b"\r\n\r\n")[2]) == length  # the GET's body is that long
        got.close()


def test_transport_head_on_a_post_only_path_is_405(server: Running) -> None:
    sock = exchange(server, b"HEAD /_mock/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_all(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 405")
    sock.close()
