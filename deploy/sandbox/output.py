"""Bounded capture of a sandboxed process's output: a head, a tail, and a count of what was dropped.

A pipeline that prints a gigabyte must not take the bot's memory with it, so the pipes are read
in fixed-size chunks as they arrive (never `read()` to the end) and only the first and the last
`limit` bytes of each stream are kept. Lines are handed to a callback (progress reporting) as
they complete; a line longer than the limit is cut, never buffered whole.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable

CHUNK = 64 * 1024


class BoundedStream:
    """The head and tail of one stream, fed chunk by chunk."""

    def __init__(self, limit: int, on_line: Callable[[str], None] | None = None,
                 sink: Callable[[bytes], None] | None = None) -> None:
        self.limit = max(limit, 1)
        self.sink = sink
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.dropped = 0
        self.on_line = on_line
        self._line = bytearray()
        self._line_cut = False

    def feed(self, chunk: bytes) -> None:
        """Keep what fits in the head, then roll the rest through the tail; count what falls out.
        `sink` (a run's log file) sees every chunk as it arrives."""
        if self.sink is not None:
            try:
                self.sink(chunk)
            except Exception:  # a full disk must not kill the run whose log it is
                self.sink = None
        if self.on_line is not None:
            self._lines(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail.append(chunk)
        self.tail_size += len(chunk)
        while self.tail_size > self.limit:
            first = self.tail[0]
            excess = self.tail_size - self.limit
            if len(first) <= excess:
                self.tail.popleft()
                self.tail_size -= len(first)
                self.dropped += len(first)
            else:
                self.tail[0] = first[excess:]
                self.tail_size -= excess
                self.dropped += excess

    def _lines(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = self.limit - len(self._line)
            if len(piece) > room:
                self._line_cut = True
            self._line += piece[:max(room, 0)]
            if end < 0:
                return
            self._emit()
            start = end + 1

    def _emit(self) -> None:
        line, cut = bytes(self._line), self._line_cut
        self._line.clear()
        self._line_cut = False
        if cut or self.on_line is None:
            return  # a cut line is not a protocol line; it is still in the captured text
        try:
            self.on_line(line.decode("utf-8", errors="replace").rstrip("\r"))
        except Exception:  # a progress printer must never kill the run it reports
            pass

    def finish(self) -> None:
        """The stream ended: a last line without a newline still counts."""
        if self._line:
            self._emit()

    def text(self) -> str:
        """Head, a marker saying how much was dropped, and tail, as text."""
        head = bytes(self.head).decode("utf-8", errors="replace")
        tail = b"".join(self.tail).decode("utf-8", errors="replace")
        if not self.dropped:
            return head + tail
        return f"{head}\n[... {self.dropped} bytes of output dropped ...]\n{tail}"


def pump(fd: int, stream: BoundedStream) -> None:
    """Read `fd` until end of file into `stream`, chunk by chunk, then close it."""
    try:
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except InterruptedError:
                continue
            except OSError:
                break
            if not chunk:
                break
            stream.feed(chunk)
    finally:
        stream.finish()
        os.close(fd)
