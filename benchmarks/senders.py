"""The benchmarks' webhook senders: many keep-alive connections driven by one thread.

A load generator shares the 2 cores with the bot it measures, so its own cost is taken from
the bot: a Python thread per connection (`http.client`) spends ~0.45 ms of CPU a request and,
with 20 or 50 threads contending for one GIL, adds its own waits to the times it reports. Here
one thread drives every connection through `selectors` (epoll), with each request's bytes
written before the clock starts, as `wrk`-style load generators do: the times are the bot's,
and the CPU it needs is left to the bot.

Each connection has at most one request in flight. `send` works in two modes:

- closed loop (`rate` None): each connection posts its next delivery as soon as it has an
  answer, so every sender always waits on the bot and the time includes queueing behind the
  other senders;
- open loop (`rate` deliveries a second): delivery i is due at i / rate seconds and goes out on
  the first idle connection; its time counts from when it was due, so a bot (or a client) that
  falls behind is charged for the wait.

A request that fails (refused, reset, closed before a whole answer, no answer within
`timeout`) is recorded as status 599.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAILED = 599
PATH = "/github/webhook"


@dataclass(eq=False)
class _Connection:
    """One keep-alive connection and the request it has in flight (hashed by identity)."""

    sock: socket.socket
    index: int = -1
    started: float = 0.0
    unsent: memoryview = field(default_factory=lambda: memoryview(b""))
    received: bytearray = field(default_factory=bytearray)


def encode(host: str, port: int, item: dict[str, Any]) -> bytes:
    """The whole HTTP/1.1 request of one delivery (`body` and `headers`), as bytes on the wire."""
    headers = {"Host": f"{host}:{port}", **item["headers"], "Content-Length": str(len(item["body"]))}
    head = f"POST {PATH} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + item["body"]


def _answer(buffer: bytearray) -> tuple[int, int, bool] | None:
    """(status, bytes it takes, whether the server closes) of the whole answer at the start of
    `buffer`, None until it has all arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, lines[0].startswith("HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
    total = end + 4 + length
    return (status, total, close) if len(buffer) >= total else None


def send(url: str, plan: list[dict[str, Any]], senders: int, *, rate: float | None = None,
         timeout: float = 30.0) -> list[tuple[int, float]]:
    """Each delivery's status and answer time (ms), over `senders` keep-alive connections."""
    host, port_text = url.removeprefix("http://").split(":")
    port = int(port_text)
    wire = [encode(host, port, item) for item in plan]
    answers: list[tuple[int, float]] = [(0, 0.0)] * len(plan)
    selector = selectors.DefaultSelector()
    waiting = deque(range(len(plan)))
    idle: list[_Connection] = []
    busy: set[_Connection] = set()

    def connect() -> _Connection:
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return _Connection(sock)

    def finish(conn: _Connection, status: int, *, reopen: bool) -> None:
        answers[conn.index] = (status, (time.perf_counter() - conn.started) * 1000)
        selector.unregister(conn.sock)
        busy.discard(conn)
        if reopen:
            conn.sock.close()
            conn = connect()
        conn.index, conn.received = -1, bytearray()
        idle.append(conn)

    def begin(conn: _Connection, index: int) -> None:
        conn.index = index
        conn.started = time.perf_counter() if rate is None else start + index / rate
        conn.unsent = memoryview(wire[index])
        busy.add(conn)
        selector.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def on_ready(conn: _Connection, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE and conn.unsent:
                conn.unsent = conn.unsent[conn.sock.send(conn.unsent):]
                if not conn.unsent:
                    selector.modify(conn.sock, selectors.EVENT_READ, conn)
            if events & selectors.EVENT_READ:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    finish(conn, FAILED, reopen=True)
                    return
                conn.received += chunk
                answer = _answer(conn.received)
                if answer is not None:
                    status, _, close = answer
                    # An answer before the whole request was sent (a refusal): the rest is unread.
                    finish(conn, status, reopen=close or bool(conn.unsent))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            finish(conn, FAILED, reopen=True)

    idle.extend(connect() for _ in range(senders))
    start = time.perf_counter()  # open loop: delivery i is due i / rate seconds from here
    try:
        while waiting or busy:
            now = time.perf_counter()
            while waiting and idle and (rate is None or start + waiting[0] / rate <= now):
                begin(idle.pop(), waiting.popleft())
            wait = 1.0
            if waiting and idle and rate is not None:
                wait = max(0.0, start + waiting[0] / rate - now)
            for key, events in selector.select(wait):
                on_ready(key.data, events)
            now = time.perf_counter()
            for conn in [c for c in busy if now - c.started > timeout]:
                finish(conn, FAILED, reopen=True)
    finally:
        for conn in idle + list(busy):
            conn.sock.close()
        selector.close()
    return answers
