"""How fast the webhook answers: `python -m benchmarks.webhook_bench`.

Serves the real app (`create_app`, SQLite store and its outbox, the store-backed bus) on 127.0.0.1 and posts signed
`pull_request` deliveries over HTTP from one client, one at a time, each with a new delivery id.
The bus's handler only counts events: this measures what happens before GitHub gets its answer
(signature check, parsing, the delivery and its event stored in one transaction), not the planning that follows on the bus.
Requests go only to the loopback address and the loop is bounded by --requests.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from werkzeug.serving import make_server

from bot.app import create_app
from bot.config import Settings
from bot.embedded_bus import OutboxBus
from bot.services import Services
from bot.store import SqlStore

SECRET = "bench-secret"
PAYLOAD = Path(__file__).resolve().parent.parent / "tests" / "data" / "webhooks" / "pull_request.opened.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    body = PAYLOAD.read_bytes()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    handled: list[object] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(webhook_secret=SECRET, data_dir=Path(tmp))
        store = SqlStore(f"sqlite:///{tmp}/bench.db")
        bus = OutboxBus(store, handled.append, on_error=lambda e, x: None)
        services = Services(store=store, bus=bus)
        services.start()
        server = make_server("127.0.0.1", 0, create_app(settings, services), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/github/webhook"
        session = requests.Session()
        timings = []
        for _ in range(args.requests):
            headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                       "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature}
            started = time.perf_counter()
            answer = session.post(url, data=body, headers=headers, timeout=10)
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 202, answer.text
        server.shutdown()
        bus.wait_idle(30)
        services.stop()
    timings.sort()
    print(f"{args.requests} signed pull_request deliveries ({len(body)} bytes) to 127.0.0.1, one at a time")
    print(f"median {statistics.median(timings):.2f} ms   p95 {timings[int(len(timings) * 0.95) - 1]:.2f} ms"
          f"   max {timings[-1]:.2f} ms   events queued {len(handled)}")


if __name__ == "__main__":
    main()
