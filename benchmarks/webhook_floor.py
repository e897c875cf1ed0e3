"""The webhook benchmark's floor: gunicorn answering deliveries with an app that does nothing.

`python -m benchmarks.webhook_floor PORT_FILE` serves, on 127.0.0.1 (an ephemeral port, written
to PORT_FILE), the same gunicorn the bot serves on (`bot.server.gunicorn_options`: its threaded
workers, threads, keep-alive and request limits, one web process as on SQLite) an app that reads
each body and answers 202 with a short JSON line, and no processing behind it. What the bot's
answer time costs above this is the bot's own: verifying, parsing, committing, waking the bus.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from bot.config import load_settings
from bot.server import gunicorn_options, web_workers

ANSWER = b'{"status":"accepted"}\n'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the body, answer 202."""
    environ["wsgi.input"].read()
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]


class FloorServer(BaseApplication):
    """gunicorn with the bot's options (web processes only, plain threaded workers) serving `app`."""

    def __init__(self, port_file: Path) -> None:
        self.port_file = port_file
        super().__init__()

    def load_config(self) -> None:
        settings = load_settings()
        options = gunicorn_options(settings)
        options.update(workers=web_workers(settings), worker_class="gthread", bind=["127.0.0.1:0"],
                       when_ready=self._announce, loglevel="warning")
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return app

    def _announce(self, arbiter: Any) -> None:
        self.port_file.write_text(str(arbiter.LISTENERS[0].sock.getsockname()[1]))


def main() -> int:
    FloorServer(Path(sys.argv[1])).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
