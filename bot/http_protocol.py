"""The HTTP/1.1 protocol of `kfp-bot serve`'s web processes: uvicorn's httptools protocol, bounded.

uvicorn parses requests with llhttp (httptools) on an event loop, which costs a few tens of
microseconds a request, but on its own it bounds neither how long a client may take to send a
request nor how large its head may grow: a client trickling header lines, or sending megabytes
of them, would hold a connection (and its memory) for good. `BoundedHttpToolsProtocol` adds:

- a request's head (request line and headers) must arrive within `read_timeout` seconds of the
  connection opening or of the request's first byte, and stay under `MAX_HEAD_BYTES`; otherwise
  the connection is closed (after a 431 for an oversized head, read from for `LINGER_SECONDS`
  more so that the client gets the answer);
- its body must arrive within `read_timeout` + `BODY_GRACE_SECONDS` of its head, else the
  connection is closed and the app sees the client leave. The webhook gives its own 408 at
  `read_timeout` (`bot.webhook_asgi`), before this; it is what bounds the Flask routes' bodies.

Idle kept-alive connections are closed by uvicorn's own keep-alive timeout, and the number of
connections and requests at once by its `limit_concurrency` (503 beyond).

uvicorn writes an answer's head and its body separately: two system calls, two TCP segments and
two wake-ups of the client for one small answer. `CoalescingTransport` hands what one turn of the
event loop writes to the socket in one call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("kfp_bot.http")

# gunicorn's own defaults bound the request line and each header field to 8190 bytes; GitHub's
# webhook heads are about 1 KB. This bounds the whole head (and the memory of one that is refused).
MAX_HEAD_BYTES = 64 * 1024
BODY_GRACE_SECONDS = 1.0
LINGER_SECONDS = 2.0


class CoalescingTransport:
    """A connection's transport whose writes during one turn of the event loop go out as one.

    Everything else is the wrapped transport's; closing (or half-closing) writes what is
    pending first, so nothing written before a close is lost or reordered.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`; it is sent, with the rest of this turn's writes, when the turn ends."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what is queued now, in one write."""
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        """Send what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's head and body and a
    bounded head; `read_timeout` is set by `bot.server` before the web processes start."""

    read_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes: int | None = 0  # None once the current request's head is complete
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm(self.read_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._head_bytes is None or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio.Protocol allows True
        """The client half-closed: it sends nothing more but may still read. A request being
        read or answered is answered first (a body cut short ends here, so the webhook answers
        400 naming how much arrived), then the connection closes; otherwise it closes now."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return None
        cycle.keep_alive = False
        if self._head_bytes is None and cycle.more_body:
            cycle.more_body = False
            cycle.message_event.set()
        return True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm(self.read_timeout)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._arm(self.read_timeout + BODY_GRACE_SECONDS)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """The request did not arrive in time: close (a request being answered is left alone)."""
        self._deadline = None
        if self.cycle is not None and self._head_bytes is None and self.cycle.response_started:
            return
        log.info("closing a connection whose request did not arrive within %gs", self.read_timeout)
        self.transport.close()

    def _refuse_head(self) -> None:
        self._disarm()
        reason = f"request line and headers are larger than {MAX_HEAD_BYTES} bytes"
        log.warning("refused a request: %s", reason)
        body = (json.dumps({"status": "error", "reason": reason}) + "\n").encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        # A lingering close: closed at once with the client's bytes unread, the connection would be
        # reset and the client could lose the answer; what it still sends is read and dropped.
        self._refused = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
