"""The coalescing transport: a header block goes out with the body's write, and never waits past one loop turn."""

from __future__ import annotations

import asyncio

from verifymock.transport import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def test_headers_and_body_written_in_one_step_go_out_as_one_write() -> None:
    async def scenario() -> list[bytes]:
        real = Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(HEAD)
        assert real.writes == [] and transport.get_write_buffer_size() == len(HEAD)
        transport.write(b"{}")
        await asyncio.sleep(0)  # the safety flush finds nothing left
        return real.writes

    assert asyncio.run(scenario()) == [HEAD + b"{}"]


def test_a_header_block_alone_goes_out_at_the_next_turn_of_the_loop() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        real = Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim answer: nothing follows it at once
        before = list(real.writes)
        await asyncio.sleep(0)
        return before, real.writes

    before, after = asyncio.run(scenario())
    assert before == [] and after == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_other_writes_pass_straight_through_and_close_sends_what_is_held() -> None:
    async def scenario() -> Recorder:
        real = Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"data: 1\n\n")  # a stream's chunk
        assert real.writes == [b"data: 1\n\n"]
        transport.write(HEAD)
        transport.close()
        assert transport.get_extra_info("peername") == "extra peername"
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"data: 1\n\n", HEAD] and real.closed
