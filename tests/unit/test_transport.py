"""The coalescing transport: what is written in one loop turn leaves as one write at the start of the next."""

from __future__ import annotations

import asyncio

from verifymock.transport import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def write_eof(self) -> None:
        self.events.append("eof")

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.events.append("close")

    def abort(self) -> None:
        self.closed = True
        self.events.append("abort")

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def wrap(real: Recorder) -> CoalescingTransport:
    return CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]


def test_headers_and_body_written_in_one_turn_go_out_as_one_write_at_the_next() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        real = Recorder()
        transport = wrap(real)
        transport.write(HEAD)
        transport.write(b"{}")
        assert transport.get_write_buffer_size() == len(HEAD) + 2
        during = list(real.writes)
        await asyncio.sleep(0)
        return during, real.writes

    during, after = asyncio.run(scenario())
    assert during == [] and after == [HEAD + b"{}"]


def test_answers_finished_in_one_turn_on_several_connections_leave_together() -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        sent: list[tuple[int, bytes]] = []
        reals = [Recorder(), Recorder()]
        for index, real in enumerate(reals):
            real.write = lambda data, index=index: sent.append((index, bytes(data)))  # type: ignore[method-assign]
        first, second = wrap(reals[0]), wrap(reals[1])
        first.write(b"one")
        second.write(b"two")
        first.write(b"!")
        assert sent == []  # nothing leaves while the turn's work goes on
        await asyncio.sleep(0)
        return sent

    assert asyncio.run(scenario()) == [(0, b"one!"), (1, b"two")]


def test_a_write_in_a_later_turn_goes_out_in_its_own_write() -> None:
    async def scenario() -> list[bytes]:
        real = Recorder()
        transport = wrap(real)
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim answer: nothing follows it at once
        await asyncio.sleep(0)
        transport.write(b"data: 1\n\n")  # a stream's chunk, later
        transport.write(b"")  # nothing to send schedules nothing
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 100 Continue\r\n\r\n", b"data: 1\n\n"]


def test_close_and_end_of_file_send_what_is_buffered_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[Recorder, Recorder, Recorder]:
        closed, ended, aborted = Recorder(), Recorder(), Recorder()
        transport = wrap(closed)
        transport.writelines([HEAD, b"{}"])
        transport.close()
        assert transport.get_extra_info("peername") == "extra peername"
        transport = wrap(ended)
        transport.write(b"last")
        transport.write_eof()
        transport = wrap(aborted)
        transport.write(b"never")
        transport.abort()
        await asyncio.sleep(0)  # the flushes scheduled by those writes find nothing left
        return closed, ended, aborted

    closed, ended, aborted = asyncio.run(scenario())
    assert (closed.writes, closed.events) == ([HEAD + b"{}"], ["write", "close"])
    assert (ended.writes, ended.events) == ([b"last"], ["write", "eof"])
    assert (aborted.writes, aborted.events) == ([], ["abort"])


def test_nothing_is_written_to_a_transport_already_closing() -> None:
    async def scenario() -> list[bytes]:
        real = Recorder()
        transport = wrap(real)
        transport.write(HEAD)
        real.closed = True  # the client went away during the turn
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(scenario()) == []
