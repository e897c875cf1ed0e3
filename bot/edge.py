"""Reading a request body at the edge without letting a slow or oversized client hold a thread.

The WSGI server's socket is in the environ (`gunicorn.socket` under gunicorn, `werkzeug.socket`
under Werkzeug's server). `DeadlineStream` reads the body with one deadline for the whole of it:
before each read the socket's timeout is cut to the time left, so a client that announces more
than it sends, or trickles its body, gets a 408 when the deadline passes, however it spaces its
bytes. A body the app refuses without reading it whole is drained up to `DRAIN_BYTES` (so a
small client still reads the answer); past that, the connection is closed after the answer
instead of being drained, so an unsigned 24 MB body is never read at all.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

DRAIN_BYTES = 64 * 1024
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


def client_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The client's socket as the WSGI server exposes it, if it does."""
    for key in _SOCKET_KEYS:
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            return sock
    return None


class DeadlineStream:
    """`read(n)` from the body with a deadline for the whole body; raises `TimeoutError` past it.

    `open_stream` is called on the first read (Flask's `request.stream` raises 413 for a body
    announced over the limit, which must not happen before the signature header is looked at).
    `is_timeout` tells whether an exception from the stream is a read timeout in disguise
    (Werkzeug turns socket errors into `ClientDisconnected`, keeping the cause as context).
    """

    def __init__(self, open_stream: Callable[[], IO[bytes]], sock: socket.socket | None, seconds: float) -> None:
        self._open = open_stream
        self._stream: IO[bytes] | None = None
        self._sock = sock
        self._deadline = time.monotonic() + seconds
        self._previous = sock.gettimeout() if sock is not None else None
        self.consumed = 0
        self.ended = False

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" at the end of the body."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request body did not arrive in time")
        if self._sock is not None:
            current = self._previous
            self._sock.settimeout(left if current is None else min(left, current))
        if self._stream is None:
            self._stream = self._open()
        try:
            chunk = self._stream.read(size)
        except Exception as exc:
            if _is_timeout(exc):
                raise TimeoutError("the request body did not arrive in time") from None
            raise
        self.consumed += len(chunk)
        if not chunk:
            self.ended = True
        return chunk

    def drain(self, length: int | None, limit: int = DRAIN_BYTES) -> bool:
        """Read and discard the rest of a body of `length` bytes when at most `limit` are left;
        True when the body was read to its end (the connection can then serve another request)."""
        if length is None or length - self.consumed > limit:
            return False
        try:
            while self.consumed < length and not self.ended:
                self.read(min(16 * 1024, length - self.consumed))
        except Exception:  # a client that stops sending is closed, not waited for
            return False
        return True

    def restore(self) -> None:
        """Give the socket back its own timeout (the server's, for writing the answer)."""
        if self._sock is not None:
            try:
                self._sock.settimeout(self._previous)
            except OSError:
                pass


def stop_reading(sock: socket.socket | None) -> None:
    """Make the server see the end of this connection after the answer instead of draining an
    unread body (gunicorn drains a kept-alive connection's leftover body before the next request)."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
