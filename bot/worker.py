"""The gunicorn worker and arbiter of `kfp-bot serve` (`bot.server` configures and runs them).

A worker takes one of two roles, assigned by `bot.server.BotServer` before each fork: a web
process serves HTTP on uvicorn (an event loop, `bot.http_protocol.BoundedHttpToolsProtocol`), the
processing process closes the listening sockets and runs the bus. `BotArbiter` forks workers with
the stop signals blocked until each has installed its own handlers.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import signal
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from bot.http_protocol import BoundedHttpToolsProtocol

GRACEFUL_TIMEOUT_SECONDS = 30
MAX_CONNECTIONS = 1000
# Gunicorn's WORKERBOOT_ERROR: the arbiter stops instead of forking the worker again and again.
BOOT_ERROR = 3
# What stops a worker (gunicorn: TERM gracefully, INT and QUIT at once).
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


class Role(enum.Enum):
    """What a gunicorn worker process of the bot does."""

    WEB = "web"
    PROCESSING = "processing"


# What `ps -o comm` shows (Linux keeps 15 characters).
PROCESS_NAMES = {Role.WEB: "kfp-bot-web", Role.PROCESSING: "kfp-bot-bus"}


class BotWorker(UvicornWorker):
    """A gunicorn worker in one of two roles: a web process serving HTTP on uvicorn (the event
    loop, `BoundedHttpToolsProtocol`), or the processing process, which closes the listening
    sockets and runs the bus instead."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop", "http": BoundedHttpToolsProtocol, "ws": "none", "interface": "asgi3", "lifespan": "off",
        "access_log": False, "limit_concurrency": MAX_CONNECTIONS,
        # Nothing reads the client's address: X-Forwarded-For is neither trusted nor parsed.
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACEFUL_TIMEOUT_SECONDS - 5,
    }
    role: Role = Role.WEB
    sockets: list[Any]  # gunicorn's listeners (set by its arbiter)
    _server: Server | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own lines (a request it could not parse, …) go where the bot's go, in the
        # bot's format (JSON in production), rather than to gunicorn's plain-text handlers; the bot
        # logs its own access line per request, so uvicorn's stays off.
        errors = logging.getLogger("uvicorn.error")
        errors.handlers = []
        errors.propagate = True
        access = logging.getLogger("uvicorn.access")
        access.handlers = []
        access.propagate = False

    def init_signals(self) -> None:
        """The role's signal handlers, then the stop signals `BotArbiter` blocked across the fork
        are let through: one that came meanwhile reaches these handlers now."""
        if self.role is Role.PROCESSING:
            Worker.init_signals(self)  # gunicorn's: a stop signal ends `_process`'s loop
        else:
            super().init_signals()  # uvicorn installs its own handlers once it serves
            for stop in STOP_SIGNALS:
                signal.signal(stop, self._stop_before_serving)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _stop_before_serving(self, signum: int, frame: Any) -> None:
        """A stop signal before uvicorn took over (or after it gave back) the handlers: uvicorn
        stops as soon as it starts."""
        self.alive = False
        if self._server is not None:
            self._server.should_exit = True

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        self._server = server = Server(config=self.config)
        server.should_exit = not self.alive
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started and self.alive:
            sys.exit(BOOT_ERROR)

    def run(self) -> None:
        if self.role is Role.PROCESSING:
            self._process()
            return
        super().run()

    def _process(self) -> None:
        """The processing role: no HTTP; tell the arbiter we live, pass wake-ups to the bus."""
        for sock in self.sockets:
            sock.close()
        self.sockets = []
        wake: int | None = getattr(self.app, "wake_read", None)
        while self.alive and os.getppid() == self.ppid:
            self.notify()
            ready, _, _ = select.select([wake] if wake is not None else [], [], [], 1.0)
            if ready and wake is not None and _drain(wake):
                self.app.wake_processing()


class BotArbiter(Arbiter):
    """gunicorn's arbiter, forking each worker with the stop signals blocked.

    A worker forked just before the arbiter is told to stop (a deploy replacing an instance that is
    still starting) can get its SIGTERM before it has installed its own handlers. It then ran the
    arbiter's handler, inherited with the fork, which only queues the signal for an arbiter that
    is not in that process: the worker went on until the arbiter killed it GRACEFUL_TIMEOUT_SECONDS
    later, its services never stopped. Blocked across the fork, the signal waits for the worker's
    handlers (`BotWorker.init_signals`); the arbiter lets it through again at once.
    """

    def spawn_worker(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return int(super().spawn_worker())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 65536))
    except BlockingIOError:
        return False
