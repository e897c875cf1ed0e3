"""`kfp-bot serve` on gunicorn, the production WSGI server `app.yaml` uses, with the edge's limits.

One worker process with threads (`gthread`), like `app.yaml`: the in-process bus and start-up
recovery belong to one process, so the services are built and started inside the worker after
gunicorn forks it, and stopped when it exits. Limits:

- request line and header fields: gunicorn's `limit_request_line` / `limit_request_fields` /
  `limit_request_field_size` (8190 bytes, 100 fields, 8190 bytes);
- bodies: the app refuses a Content-Length over KFP_BOT_MAX_BODY_BYTES unread and verifies the
  signature while reading (`bot.webhook.read_signed_body`);
- slow clients: gunicorn's threaded worker reads with blocking sockets and no timeout (a client
  that stops mid-request holds a thread for good, gunicorn issue #2652), so `ReadTimeoutWorker`
  gives every client socket a timeout of KFP_BOT_READ_TIMEOUT_SECONDS before gunicorn reads the
  request, and the app bounds each body's total read time by the same number (408);
- `timeout` (gunicorn's worker heartbeat) and `graceful_timeout` as in `app.yaml`.
"""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from bot.config import Settings, load_settings

WORKER_CLASS = "bot.server.ReadTimeoutWorker"
WORKER_TIMEOUT_SECONDS = 120
GRACEFUL_TIMEOUT_SECONDS = 30
# Gunicorn's WORKER_BOOT_ERROR: the arbiter stops instead of forking the worker again and again.
_BOOT_ERROR = 3


class ReadTimeoutWorker(ThreadWorker):
    """gunicorn's threaded worker with a read timeout on every client socket.

    The timeout is `read_timeout` when set (by `BotServer`), else KFP_BOT_READ_TIMEOUT_SECONDS
    (`app.yaml` names this class with `-k`).
    """

    read_timeout: float | None = None

    def init_process(self) -> None:
        if self.read_timeout is None:
            self.read_timeout = load_settings().read_timeout_seconds
        super().init_process()

    def handle(self, conn: Any) -> Any:
        """Serve one connection whose socket times out instead of blocking for ever."""
        conn.sock.settimeout(self.read_timeout)
        return super().handle(conn)


class BotServer(BaseApplication):
    """gunicorn running the bot built from `settings` on `host:port` (0: any free port)."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.services: Any = None
        super().__init__()

    def load_config(self) -> None:
        ReadTimeoutWorker.read_timeout = self.settings.read_timeout_seconds
        options = {
            "bind": [self.bind], "workers": 1, "worker_class": WORKER_CLASS,
            "threads": self.settings.http_threads, "timeout": WORKER_TIMEOUT_SECONDS,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS, "keepalive": 5,
            "limit_request_line": 8190, "limit_request_fields": 100, "limit_request_field_size": 8190,
            "loglevel": self.settings.log_level.lower(),
            "when_ready": self._announce, "worker_exit": self._stop_services,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In the worker: build and start the services, pick up unfinished runs, return the app."""
        from bot.app import create_app
        from bot.logs import configure_logging
        from bot.redaction import redactor_for
        from bot.wiring import build_services, resume
        from kfp_bot_errors import KfpBotError

        try:
            configure_logging(self.settings.log_format, self.settings.log_level,
                              redact=redactor_for(self.settings))
            self.services = build_services(self.settings)
            app = create_app(self.settings, self.services)
            self.services.start()
            resume(self.settings, self.services)
        except KfpBotError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(_BOOT_ERROR)
        return app

    def _announce(self, arbiter: Any) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        print(f"kfp-bot listening on http://{host}:{port}", flush=True)

    def _stop_services(self, arbiter: Any, worker: Any) -> None:
        if self.services is not None:
            self.services.stop(GRACEFUL_TIMEOUT_SECONDS - 5)


def serve(settings: Settings, *, host: str, port: int) -> int:
    """Run gunicorn until SIGTERM or SIGINT; its exit status."""
    try:
        BotServer(settings, host, port).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
