"""`kfp-bot serve` runs on gunicorn with the edge's limits: slow clients are cut off, not waited for."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from bot.webhook import sign
from tests.fakes.pubsub import FakePubSub
from tests.support.botprocess import descendants
from tests.support.webhooks import load_payload


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder of the served bot (its SQLite store is `kfp-bot.db` there)."""
    return tmp_path_factory.mktemp("serve")


@contextmanager
def serving(env_vars: dict[str, str], output: list[str] | None = None) -> Iterator[tuple[str, int, int]]:
    """`python -m bot serve --port 0` with `env_vars` (and no other KFP_BOT_ variable) until the
    block ends, then SIGTERM (which must end it cleanly); its URL, port and pid once it answers.
    What it printed after it started listening is added to `output` once it has stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_") and k != "PUBSUB_EMULATOR_HOST"}
    env.update(env_vars)
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
                time.sleep(0.1)
        yield url, port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=40) == 0
            if output is not None and process.stdout is not None:
                output.extend(process.stdout.read().splitlines())
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture(scope="module")
def served(data_dir: Path) -> Iterator[tuple[str, int]]:
    """`python -m bot serve --port 0` with a one-second read timeout, shared by the module's tests."""
    with serving({"KFP_BOT_WEBHOOK_SECRET": "server-test", "KFP_BOT_DATA_DIR": str(data_dir),
                  "KFP_BOT_READ_TIMEOUT_SECONDS": "1", "KFP_BOT_LOG_LEVEL": "WARNING"}) as (url, port, pid):
        served_pids.append(pid)
        yield url, port


served_pids: list[int] = []


def processes_below(pid: int) -> dict[str, list[int]]:
    """The named processes below `pid` (`kfp-bot-web`, `kfp-bot-bus`), by name."""
    named: dict[str, list[int]] = {}
    for child in descendants(pid):
        try:
            named.setdefault(Path(f"/proc/{child}/comm").read_text().strip(), []).append(child)
        except OSError:
            continue
    return named


def test_serve_accepts_in_a_web_process_and_processes_in_another(served: tuple[str, int], data_dir: Path) -> None:
    url, _ = served
    body = json.dumps(load_payload("issue_comment.created", {"comment.body": "thanks, looks good"})).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "issue_comment",
               "X-GitHub-Delivery": "served-comment-1", "X-Hub-Signature-256": sign("server-test", body)}

    answer = requests.post(f"{url}/github/webhook", data=body, headers=headers, timeout=10)

    assert answer.status_code == 202
    named = processes_below(served_pids[-1])
    assert len(named.get("kfp-bot-web", [])) == 1  # SQLite: one web process (a single writer)
    [processing] = named["kfp-bot-bus"]
    assert os.getpriority(os.PRIO_PROCESS, processing) == 10  # accepting comes first
    # The processing process handled the accepted event (the web process runs no bus workers).
    deadline = time.monotonic() + 60
    while True:
        with sqlite3.connect(f"file:{data_dir / 'kfp-bot.db'}?mode=ro", uri=True) as conn:
            done = conn.execute("SELECT done_at FROM outbox WHERE json_extract(event, '$.data.delivery_id') = ?",
                                ("served-comment-1",)).fetchone()
        conn.close()
        if done is not None and done[0] is not None:
            break
        assert time.monotonic() < deadline, "the accepted event was never handled"
        time.sleep(0.2)


def test_the_processing_process_yields_the_cpu_and_takes_pythons_lock_in_short_turns() -> None:
    # In a process of its own: a niceness cannot be taken back. Short turns bound how long a
    # transaction holds SQLite's write lock while other threads of the process plan.
    code = ("import os, sys\nfrom bot.server import processing_priority\n"
            "before = os.getpriority(os.PRIO_PROCESS, 0)\nprocessing_priority()\n"
            "print(os.getpriority(os.PRIO_PROCESS, 0) - before, sys.getswitchinterval())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    niceness, interval = done.stdout.split()
    assert int(niceness) == 10 and float(interval) <= 0.001 < sys.getswitchinterval()


def test_serve_is_uvicorn_answering_the_webhook(served: tuple[str, int]) -> None:
    url, _ = served

    health = requests.get(f"{url}/healthz", timeout=10)
    unsigned = requests.post(f"{url}/github/webhook", data=b"{}", timeout=10,
                             headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "1"})

    assert health.headers["Server"] == "uvicorn"
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


def test_with_pubsub_the_web_process_publishes_an_accepted_delivery_before_its_202(tmp_path: Path) -> None:
    body = json.dumps(load_payload("issue_comment.created", {"comment.body": "thanks"})).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "issue_comment",
               "X-GitHub-Delivery": "served-pubsub-1", "X-Hub-Signature-256": sign("server-test", body)}
    with FakePubSub() as pubsub, serving({
            "KFP_BOT_WEBHOOK_SECRET": "server-test", "KFP_BOT_DATA_DIR": str(tmp_path), "KFP_BOT_LOG_LEVEL": "WARNING",
            "KFP_BOT_BUS": "pubsub", "KFP_BOT_GCP_PROJECT": pubsub.project, "KFP_BOT_PUBSUB_ENDPOINT": pubsub.endpoint,
            "KFP_BOT_PUBSUB_VERIFY_TOKEN": "0"}) as (url, _, _):
        answer = requests.post(f"{url}/github/webhook", data=body, headers=headers, timeout=30)

        assert answer.status_code == 202
        # Published by the web process before it answered, not left to the relay's retry loop.
        [message] = pubsub.messages_on(pubsub.topic("kfp-bot-events"))
        assert message.json["data"]["delivery_id"] == "served-pubsub-1"


# `kfp-bot serve` whose workers are slow to start after the fork (a loaded machine that has not
# yet scheduled them): each waits in gunicorn's post-fork hook before it installs its handlers.
SLOW_FORK = """
import sys, time
from bot.config import load_settings
from bot.server import BotServer

class SlowFork(BotServer):
    def _take_role(self, arbiter, worker):
        print("forked", flush=True)
        time.sleep(2)
        super()._take_role(arbiter, worker)

SlowFork(load_settings(), "127.0.0.1", 0).run()
"""


def test_a_worker_told_to_stop_before_it_has_started_stops_by_itself(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_") and k != "PUBSUB_EMULATOR_HOST"}
    env.update(KFP_BOT_DATA_DIR=str(tmp_path), KFP_BOT_WEBHOOK_SECRET="stop-test", KFP_BOT_ALLOW_UNSANDBOXED="1")
    process = subprocess.Popen([sys.executable, "-c", SLOW_FORK], env=env, cwd=Path(__file__).parents[2],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    forked = 0
    while forked < 2:  # both workers are inside the hook, their handlers not yet installed
        line = process.stdout.readline()
        assert line, process.communicate()[1][-3000:]
        forked += line.strip() == "forked"
    process.terminate()
    _, errors = process.communicate(timeout=90)

    # Each worker ran its own exit (gunicorn logs it, then the bot stops its services); a worker
    # that lost the signal would run until the arbiter killed it after the graceful timeout.
    assert errors.count("Worker exiting") == 2, errors[-3000:]
    assert process.returncode == 0


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_head_over_the_limit_is_refused_with_431_and_closed(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\n")
        for i in range(100):  # 100 header lines of 1 KB: over 64 KiB in all
            sock.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000))

        answer = read_answer(sock)

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"request line and headers are larger than 65536 bytes" in answer


def test_a_large_unsigned_body_is_refused_unread_and_the_connection_closed(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
                     b"X-GitHub-Delivery: big-1\r\nContent-Length: 20000000\r\n\r\n" + b"{" * 1000)

        answer = read_answer(sock)  # without sending the other 19.999 MB

    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"connection: close" in answer.lower()
    assert b"missing X-Hub-Signature-256 header" in answer


def test_a_signed_body_arriving_in_pieces_or_chunked_is_accepted(served: tuple[str, int]) -> None:
    _, port = served
    body = json.dumps(load_payload("issue_comment.created", {"comment.body": "thanks"})).encode()
    signature = sign("server-test", body).encode()
    head = (b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: issue_comment\r\nX-Hub-Signature-256: " + signature + b"\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"X-GitHub-Delivery: pieces-1\r\nContent-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 4000):  # within the read timeout, in pieces
            sock.sendall(body[start:start + 4000])
            time.sleep(0.05)
        in_pieces = sock.recv(65536)
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 3000]), body[i:i + 3000])
                           for i in range(0, len(body), 3000)) + b"0\r\n\r\n"
        sock.sendall(head + b"X-GitHub-Delivery: chunked-1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        in_chunks = sock.recv(65536)  # on the same kept-alive connection

    assert in_pieces.startswith(b"HTTP/1.1 202 "), in_pieces
    assert in_chunks.startswith(b"HTTP/1.1 202 "), in_chunks


def test_a_slow_body_on_another_route_is_cut_off(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /tasks/reconcile HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()

        answer = read_answer(sock)  # the 1 s read timeout, and a second's grace

    assert time.monotonic() - started < 10
    assert not answer.startswith(b"HTTP/1.1 2")


def test_a_body_cut_short_by_the_client_closing_its_side_is_answered_400(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\n"
                     b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: cut-1\r\nContent-Length: 100\r\n\r\n{\"zen\"")
        sock.shutdown(socket.SHUT_WR)  # nothing more will come, but the answer is still read

        answer = read_answer(sock)

    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"body ended after 6 of the 100 bytes announced" in answer


def test_a_websocket_upgrade_is_answered_as_plain_http(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")

        answer = sock.recv(65536)

    status = int(answer.split()[1])
    assert status != 101 and status < 500, answer  # answered as HTTP: the bot speaks no websocket


def test_uvicorns_lines_are_logged_as_the_bots_json_and_it_adds_no_access_line(tmp_path: Path) -> None:
    output: list[str] = []
    with serving({"KFP_BOT_WEBHOOK_SECRET": "server-test", "KFP_BOT_DATA_DIR": str(tmp_path),
                  "KFP_BOT_LOG_FORMAT": "json", "KFP_BOT_LOG_LEVEL": "INFO"}, output) as (_, port, _pid):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")  # refused by the HTTP parser itself
            assert read_answer(sock).startswith(b"HTTP/1.1 400 ")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_answer(sock).startswith(b"HTTP/1.1 404 ")

    records = [json.loads(line) for line in output if line.startswith("{")]
    loggers = [record["logger"] for record in records]
    assert any(r["logger"] == "uvicorn.error" and "Invalid HTTP request" in r["message"] for r in records)
    assert "uvicorn.access" not in loggers  # the bot logs its own access lines


def test_pipelined_requests_are_each_answered_in_order(served: tuple[str, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

        answers = read_answer(sock)

    assert re.findall(rb"HTTP/1\.1 (\d+)", answers) == [b"200", b"404", b"401"]


def test_a_signed_delivery_refused_once_parsed_is_listed_before_its_answer(served: tuple[str, int]) -> None:
    url, _ = served
    body = b'{"zen": "x", "hook_id": 1e400}'
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "issue_comment",
               "X-GitHub-Delivery": "refused-1", "X-Hub-Signature-256": sign("server-test", body)}

    answer = requests.post(f"{url}/github/webhook", data=body, headers=headers, timeout=10)
    failed = requests.get(f"{url}/api/deliveries", params={"failed": "1", "delivery": "refused-1"}, timeout=10)

    assert answer.status_code == 400
    assert [(d["delivery"], d["stage"]) for d in failed.json()["deliveries"]] == [("refused-1", "rejected")]
