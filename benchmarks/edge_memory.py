"""What large unsigned and forged bodies cost the service: `python -m benchmarks.edge_memory`.

Starts `kfp-bot serve` (gunicorn, embedded defaults, a temporary data folder) on 127.0.0.1 and
sends --clients concurrent requests each announcing and sending --megabytes of body: first
without a signature, then with a forged one. Prints the resident memory (RSS) of the server's
processes before, at the peak and after each round, and what the clients were answered. Only the
loopback address is used and every round is bounded by the number of clients.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHUNK = b"x" * (1 << 20)


def rss_mb(pids: list[int]) -> int:
    """Resident memory of `pids` together, in MB (Linux /proc)."""
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kb += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total_kb // 1024


def server_pids(arbiter: int) -> list[int]:
    """The gunicorn arbiter and its worker(s)."""
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children")
    found = children.read_text().split() if children.exists() else []
    return [arbiter, *map(int, found)]


def send(port: int, megabytes: int, signature: bytes | None, answers: list[bytes]) -> None:
    """One request announcing `megabytes` MB and sending as much of it as the server takes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = (b"POST /github/webhook HTTP/1.1\r\nHost: bench\r\nX-GitHub-Event: ping\r\n"
                b"X-GitHub-Delivery: bench\r\nContent-Length: %d\r\n" % (megabytes << 20))
        if signature is not None:
            head += b"X-Hub-Signature-256: " + signature + b"\r\n"
        try:
            sock.sendall(head + b"\r\n")
            for _ in range(megabytes):
                sock.sendall(CHUNK)
        except OSError:
            pass  # the server answered and closed without reading the rest: what it should do
        try:
            answers.append(sock.recv(64).split(b"\r\n")[0])
        except OSError as exc:
            answers.append(type(exc).__name__.encode())


def round_(port: int, pids: list[int], clients: int, megabytes: int, signature: bytes | None) -> str:
    before = rss_mb(pids)
    answers: list[bytes] = []
    threads = [threading.Thread(target=send, args=(port, megabytes, signature, answers)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    peak = before
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_mb(pids))
        time.sleep(0.05)
    after = rss_mb(pids)
    statuses = sorted({a.decode(errors="replace") for a in answers})
    return f"RSS before {before} MB, peak {peak} MB, after {after} MB; answers: {', '.join(statuses)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=24)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="kfp-bot-edge-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
        env.update(KFP_BOT_WEBHOOK_SECRET=secrets.token_hex(8), KFP_BOT_DATA_DIR=tmp, KFP_BOT_LOG_LEVEL="ERROR")
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("kfp-bot serve did not start") from None
                    time.sleep(0.2)
            time.sleep(3)  # the worker boots after the arbiter listens
            pids = server_pids(server.pid)
            round_(port, pids, 2, 1, b"sha256=" + b"0" * 64)  # warm up: first requests load code
            print(f"{args.clients} concurrent {args.megabytes} MB bodies")
            print("  unsigned:", round_(port, pids, args.clients, args.megabytes, None))
            print("  forged:  ", round_(port, pids, args.clients, args.megabytes, b"sha256=" + b"0" * 64))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
