"""The benchmarks' senders (`benchmarks.senders`) against a real HTTP server on a real socket.

The webhook figures in the README are only as true as the client that measures them: every
delivery must be sent once, on kept-alive connections, its own answer's status recorded, and a
connection the server closes (or a request it never answers) counted as failed, not lost.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from benchmarks.senders import FAILED, send


class Handler(BaseHTTPRequestHandler):
    """202 with the body's length; 401 with `Connection: close`, unread, for a `refuse` header;
    no answer at all (the connection closed) for a `drop` header."""

    protocol_version = "HTTP/1.1"
    connections: set[int] = set()
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.connections.add(self.client_address[1])
        if self.headers.get("X-Test") == "drop":
            self.close_connection = True
            return
        if self.headers.get("X-Test") == "refuse":
            self._answer(401, b"no", close=True)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append(body)
        self._answer(202, str(len(body)).encode())

    def _answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def url() -> Iterator[str]:
    Handler.connections, Handler.bodies = set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def delivery(n: int, test: str | None = None, size: int = 100) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "X-GitHub-Delivery": f"d-{n}"}
    if test:
        headers["X-Test"] = test
    return {"body": b"x" * size, "headers": headers}


def test_closed_loop_sends_each_delivery_once_on_kept_alive_connections(url: str) -> None:
    plan = [delivery(n, size=70_000 if n % 7 == 0 else 100 + n) for n in range(200)]

    answers = send(url, plan, 5)

    assert [status for status, _ in answers] == [202] * 200
    assert all(ms > 0 for _, ms in answers)
    assert Counter(Handler.bodies) == Counter(item["body"] for item in plan)
    assert len(Handler.connections) == 5


def test_refusals_and_dropped_connections_are_recorded_and_the_rest_goes_on(url: str) -> None:
    plan = [delivery(n, "refuse" if n % 10 == 3 else "drop" if n % 10 == 6 else None, size=50_000)
            for n in range(40)]

    answers = send(url, plan, 3)

    expected = [401 if n % 10 == 3 else FAILED if n % 10 == 6 else 202 for n in range(40)]
    assert [status for status, _ in answers] == expected


def test_open_loop_times_count_from_when_each_delivery_was_due(url: str) -> None:
    plan = [delivery(n) for n in range(30)]

    answers = send(url, plan, 1, rate=10_000.0)  # due every 0.1 ms: one connection falls behind

    assert [status for status, _ in answers] == [202] * 30
    # The last waited for the 29 before it on the only connection: its time includes that wait.
    assert answers[-1][1] > answers[0][1]
