"""`kfp-bot serve`: gunicorn's arbiter running uvicorn workers, with the edge's limits; `app.yaml`
runs the same command, so both serve with one configuration (`gunicorn_options`).

Accepting and processing live in different processes, so they never compete for one GIL:

- web processes (`web_workers` says how many) answer HTTP on uvicorn: one event loop reads
  every connection (llhttp parses it), and the webhook is answered on that loop up to the commit
  (`bot.webhook_asgi`): verify, parse, then commit the delivery and its event together with the
  others waiting at that moment (`bot.accept_queue`: on the loop while SQLite's write lock is
  free, else on one committer thread), answer 202. The
  other routes are the Flask app's, run on `KFP_BOT_HTTP_THREADS` threads (a2wsgi). Web processes share the
  store (SQLite in WAL mode, or PostgreSQL) and start no bus workers;
- one processing process, a gunicorn worker too (restarted by the arbiter if it dies, stopped
  gracefully with the others), runs the bus workers and start-up recovery and serves no HTTP.
  Web processes wake it through a pipe the arbiter opened before forking, right after each
  commit; its workers also poll the store, so a lost wake-up only delays work. It runs at a
  lower scheduling priority (nice 10), so a burst of webhooks is answered before work goes on,
  and passes Python's lock between its threads every 0.5 ms (`processing_priority`).
  The processes are named `kfp-bot-web` and `kfp-bot-bus` (`ps -o pid,comm`).

Why uvicorn and not gunicorn's threaded worker: a request through gthread's poller, thread pool
and blocking reads costs ~0.4 ms of CPU before the app sees it, and 20 senders keep its threads
contending for the GIL; on uvicorn the same costs ~0.05 ms (benchmarks/webhook_floor.py measures both).

Limits (`bot.http_protocol`):

- a request's head must arrive within KFP_BOT_READ_TIMEOUT_SECONDS and stay under 64 KiB (431);
- bodies: the webhook refuses a Content-Length over KFP_BOT_MAX_BODY_BYTES unread (413) and
  verifies the signature while reading (`bot.webhook.SignedBody`); its body must arrive within
  KFP_BOT_READ_TIMEOUT_SECONDS (408); any other route's body within a second more, or the
  connection is closed;
- kept-alive connections are closed after `KEEPALIVE_SECONDS` idle; at most `bot.worker.MAX_CONNECTIONS`
  connections or requests at once per web process (503 beyond);
- `timeout` (gunicorn's worker heartbeat) and `graceful_timeout`.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from bot.accept_queue import AcceptQueue
from bot.config import Settings
from bot.http_protocol import BoundedHttpToolsProtocol
from bot.worker import BOOT_ERROR, GRACEFUL_TIMEOUT_SECONDS, PROCESS_NAMES, BotArbiter, Role

if TYPE_CHECKING:
    from handlers.context import HandlerContext

WORKER_CLASS = "bot.worker.BotWorker"
WORKER_TIMEOUT_SECONDS = 120
KEEPALIVE_SECONDS = 5
PROCESSING_NICENESS = 10
PROCESSING_SWITCH_INTERVAL_SECONDS = 0.0005
_PR_SET_NAME = 15


class BotServer(BaseApplication):
    """gunicorn running the bot built from `settings` on `host:port` (0: any free port)."""

    # Replaces ports of the handler context as it is built (`build_services`); a benchmark's runner.
    override: Callable[[HandlerContext], HandlerContext] | None = None

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.services: Any = None
        self.accept: AcceptQueue | None = None
        self.role = Role.WEB
        # The arbiter's pipe: web processes write a byte after each accepted delivery.
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)
        super().__init__()

    def run(self) -> None:
        """gunicorn's `BaseApplication.run`, on `BotArbiter`."""
        try:
            BotArbiter(self).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)

    def load_config(self) -> None:
        BoundedHttpToolsProtocol.read_timeout = self.settings.read_timeout_seconds
        options = gunicorn_options(self.settings)
        options.update(bind=[self.bind], when_ready=self._announce, worker_exit=self._stop_services,
                       pre_fork=self._assign_role, post_fork=self._take_role)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In a worker: build the services and return the app; the processing worker also starts
        the bus and picks up unfinished work."""
        from dataclasses import replace

        from bot.app import create_app, create_asgi_app
        from bot.startup import configure_service_logging, recover
        from bot.wiring import build_services
        from kfp_bot_errors import KfpBotError

        try:
            configure_service_logging(self.settings)
            self.services = build_services(self.settings, override=self.override)
            if self.role is Role.PROCESSING:
                self.services.start()
                recover(self.settings, self.services)
                app: Any = create_app(self.settings, self.services)
            else:
                self.services = replace(self.services, bus=WakingBus(self.services.bus, self.wake_write))
                self.accept = AcceptQueue(self.services.store, self.services.bus)
                app = create_asgi_app(self.settings, self.services, self.accept)
        except KfpBotError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(BOOT_ERROR)
        # What is built so far (modules, services, the app: ~100,000 objects) lives as long as the
        # process: kept out of the cycle collector's full passes, which would otherwise stop every
        # request thread for tens of milliseconds now and then.
        gc.freeze()
        return app

    def wake_processing(self) -> None:
        """In the processing worker: rows were written by a web process, wake the bus workers."""
        if self.services is not None:
            self.services.bus.notify()

    def _assign_role(self, arbiter: Any, worker: Any) -> None:
        """Before a fork: the new worker processes unless a live worker already does."""
        taken = any(getattr(w, "role", Role.WEB) is Role.PROCESSING for w in arbiter.WORKERS.values())
        worker.role = Role.WEB if taken else Role.PROCESSING

    def _take_role(self, arbiter: Any, worker: Any) -> None:
        self.role = worker.role
        _name_process(PROCESS_NAMES[worker.role])
        if worker.role is Role.PROCESSING:
            processing_priority()
            os.close(self.wake_write)
        else:
            os.close(self.wake_read)
            self.wake_read = None  # type: ignore[assignment]

    def _announce(self, arbiter: Any) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        print(f"kfp-bot listening on http://{host}:{port}", flush=True)

    def _stop_services(self, arbiter: Any, worker: Any) -> None:
        if self.accept is not None:
            self.accept.close()
        if self.services is not None:
            self.services.stop(GRACEFUL_TIMEOUT_SECONDS - 5)
            self.services.store.close()


class WakingBus:
    """A web process's view of the bus: it starts no workers, and `notify` also wakes the
    processing process (through the arbiter's pipe)."""

    def __init__(self, bus: Any, wake_fd: int) -> None:
        self._bus = bus
        self._fd = wake_fd

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    def start(self) -> None:
        """Nothing: the processing process runs the workers."""

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the bus here (no workers to wait for; the Pub/Sub relay flushes its publisher)."""
        return bool(self._bus.stop(timeout))

    @property
    def notify_blocks(self) -> bool:
        """As the bus here: waking the processing process is a write to a non-blocking pipe."""
        return bool(self._bus.notify_blocks)

    def notify(self, ids: Any = ()) -> None:
        """Hand rows `ids` to the bus here (the Pub/Sub relay publishes them at once, as before
        the 202; the embedded bus has no workers here to wake), then wake the processing
        process; a full pipe already holds a wake-up, so that one is dropped."""
        self._bus.notify(ids)
        try:
            os.write(self._fd, b"\x01")
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EPIPE):
                raise


def processing_priority() -> None:
    """Set up this process to run as the processing process, behind the web processes.

    Answering GitHub is what must not wait: the scheduler gives accepting first claim on the
    CPU, and processing (and the git, compile and run processes it starts, which inherit this)
    whatever is left (nice `PROCESSING_NICENESS`).

    The processing process also holds SQLite's write lock now and then, and its threads take
    Python's GIL back after each SQLite call of a transaction while other threads plan (pure
    Python). With the default 5 ms switch interval each of those takes could wait 5 ms, so a
    transaction of a few statements held the lock for tens of milliseconds, and every webhook
    behind it waited as long (a burst of 50 senders: p99 57 ms against 26 ms with
    `PROCESSING_SWITCH_INTERVAL_SECONDS`, median of 4 runs each).
    """
    os.nice(PROCESSING_NICENESS)
    sys.setswitchinterval(PROCESSING_SWITCH_INTERVAL_SECONDS)


def _name_process(name: str) -> None:
    """Name the process for `ps`/`top` (Linux `prctl(PR_SET_NAME)`; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def web_workers(settings: Settings) -> int:
    """How many web processes: KFP_BOT_HTTP_WORKERS, else one on SQLite and two on PostgreSQL.

    SQLite has one writer for the whole file: web processes of one machine would take turns on
    its lock (and wait in its busy handler's sleeps), which measured slower than one process
    whose threads share a group commit. PostgreSQL locks rows, so its commits run side by side.
    """
    if settings.http_workers is not None:
        return settings.http_workers
    return 2 if settings.resolved_database_url.startswith("postgres") else 1


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's settings for the bot (all but `bind` and the hooks): one processing worker
    besides the web workers."""
    return {
        "workers": web_workers(settings) + 1, "worker_class": WORKER_CLASS,
        "timeout": WORKER_TIMEOUT_SECONDS, "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "loglevel": settings.log_level.lower(),
    }


def serve(settings: Settings, *, host: str, port: int) -> int:
    """Run gunicorn until SIGTERM or SIGINT; its exit status."""
    try:
        BotServer(settings, host, port).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
