"""The web processes' transport: what one turn of the event loop writes goes out in one write.

On a real event loop and a real connected socket pair; the socket's far end reads what a client
would. (The protocol's deadlines and head limit are tested on a served bot, `test_server.py`.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from bot.http_protocol import CoalescingTransport


class CountingTransport:
    """A real transport, with a count of the writes it was given."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def on_a_connection(test: Callable[[CoalescingTransport, CountingTransport, socket.socket], Awaitable[None]]) -> None:
    """Run `test` with a coalescing transport over one end of a socket pair and the other end."""
    async def run() -> None:
        ours, theirs = socket.socketpair()
        theirs.settimeout(5)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        counting = CountingTransport(transport)
        try:
            await test(CoalescingTransport(counting, loop), counting, theirs)  # type: ignore[arg-type]
        finally:
            transport.close()
            theirs.close()

    asyncio.run(run())


async def read_all(peer: socket.socket) -> bytes:
    """What the peer reads until the other end closes (or half-closes), read on another thread
    while the loop runs (a transport closes, or writes what it buffered, from the loop)."""
    def read() -> bytes:
        chunks = []
        while chunk := peer.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    return await asyncio.to_thread(read)


def test_a_head_and_a_body_written_in_one_turn_go_out_in_one_write() -> None:
    async def test(transport: CoalescingTransport, counting: CountingTransport, peer: socket.socket) -> None:
        transport.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
        transport.write(bytearray(b"{}"))
        assert counting.writes == []  # nothing before the turn ends
        await asyncio.sleep(0)
        assert counting.writes == [b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"]
        transport.write(b"next answer")
        await asyncio.sleep(0)
        assert len(counting.writes) == 2
        transport.close()
        assert await read_all(peer) == b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}next answer"

    on_a_connection(test)


def test_closing_sends_what_is_pending_first() -> None:
    async def test(transport: CoalescingTransport, counting: CountingTransport, peer: socket.socket) -> None:
        transport.write(b"the answer, ")
        transport.write(b"then the close")
        transport.close()
        assert transport.is_closing()
        assert await read_all(peer) == b"the answer, then the close"
        await asyncio.sleep(0)
        assert len(counting.writes) == 1  # the turn's end finds nothing left to send

    on_a_connection(test)


def test_half_closing_sends_what_is_pending_first_and_the_client_may_still_send() -> None:
    async def test(transport: CoalescingTransport, counting: CountingTransport, peer: socket.socket) -> None:
        transport.write(b"431 and a lingering close")
        transport.write_eof()
        assert await read_all(peer) == b"431 and a lingering close"
        peer.sendall(b"the rest of an oversized head")  # still accepted: only our side is shut

    on_a_connection(test)


def test_what_is_written_after_the_connection_started_closing_is_dropped() -> None:
    async def test(transport: CoalescingTransport, counting: CountingTransport, peer: socket.socket) -> None:
        transport.write(b"sent")
        transport.flush()
        counting.transport.close()  # closed underneath, as when the client went away
        transport.write(b"never sent")
        await asyncio.sleep(0)
        assert counting.writes == [b"sent"]
        assert await read_all(peer) == b"sent"

    on_a_connection(test)
