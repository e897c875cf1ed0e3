"""`kfp-bot serve` runs on gunicorn with the edge's limits: slow clients are cut off, not waited for."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`python -m bot serve --port 0` with a one-second read timeout, shared by the module's tests."""
    tmp_path = tmp_path_factory.mktemp("serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
    env.update({"KFP_BOT_WEBHOOK_SECRET": "server-test", "KFP_BOT_DATA_DIR": str(tmp_path),
                "KFP_BOT_READ_TIMEOUT_SECONDS": "1", "KFP_BOT_LOG_LEVEL": "WARNING"})
    process = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = re.search(r"kfp-bot listening on (http://127\.0\.0\.1:(\d+))", line)
            if found:
                break
        else:
            pytest.fail("kfp-bot serve exited before listening")
        url, port = found.group(1), int(found.group(2))
        for _ in range(300):
            try:
                requests.get(f"{url}/healthz", timeout=5)
                break
            except requests.RequestException:  # the worker is still booting
                assert process.poll() is None
        yield url, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=40) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_is_gunicorn_answering_the_webhook(served: tuple[str, int]) -> None:
    url, _ = served

    health = requests.get(f"{url}/healthz", timeout=10)
    unsigned = requests.post(f"{url}/github/webhook", data=b"{}", timeout=10,
                             headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "1"})

    assert health.headers["Server"] == "gunicorn"
    assert health.json()["status"] == "ok"
    assert unsigned.status_code == 401


def test_a_client_that_stops_inside_its_headers_is_disconnected(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\n")  # and no more

        assert sock.recv(1000) == b""  # closed by the server, not left waiting for ever


def test_a_client_that_stops_inside_its_body_gets_408(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\n"
                     b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow-1\r\nContent-Length: 100\r\n\r\n{")

        assert sock.recv(1000).startswith(b"HTTP/1.1 408")


def test_a_request_line_over_gunicorns_limit_is_refused(served: tuple[str, int]) -> None:
    url, _ = served

    response = requests.get(f"{url}/api/runs?repo={'x' * 9000}", timeout=10)

    assert response.status_code == 400
