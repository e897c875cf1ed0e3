"""The webhook benchmark's floor: the bot's server answering deliveries with an app that does nothing.

`python -m benchmarks.webhook_floor PORT_FILE` serves, on 127.0.0.1 (an ephemeral port, written
to PORT_FILE), with the same server the bot serves on (`bot.server.gunicorn_options`: gunicorn's
arbiter, the bot's uvicorn worker and its bounded HTTP protocol, keep-alive, one web process as
on SQLite) an ASGI app that reads each body and answers 202 with a short JSON line, and no
processing behind it. What the bot's answer time costs above this is the bot's own: verifying,
parsing, committing, waking the bus.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from bot.config import load_settings
from bot.server import gunicorn_options, web_workers
from bot.webhook_asgi import Receive, Scope, Send

ANSWER = b'{"status":"accepted"}\n'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 202."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})


class FloorServer(BaseApplication):
    """The bot's server and options (web processes only) serving `app`."""

    def __init__(self, port_file: Path) -> None:
        self.port_file = port_file
        super().__init__()

    def load_config(self) -> None:
        settings = load_settings()
        options = gunicorn_options(settings)
        options.update(workers=web_workers(settings), bind=["127.0.0.1:0"],
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
