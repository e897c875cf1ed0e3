"""The embedded event bus: a queue in the bot's own process, drained by worker threads.

The webhook route publishes and answers at once; the slow work (git, builds, compiles, runs)
happens on the workers. A handler's exception never kills a worker: it is logged with the
event key and handed to `on_error`, which turns it into a visible run error. Production swaps
this for Pub/Sub behind the same `publish`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from bot.logs import log_context
from handlers.models import Event
from pipeline_registry.errors import KfpBotError

log = logging.getLogger("kfp_bot.bus")

_STOP = object()


class BusUnavailable(KfpBotError):
    """The bus cannot take the event (stopped, or its bounded queue is full)."""


def _log_only(event: Event, error: BaseException) -> None:
    """The default `on_error`: the worker already logged the failure."""


class InProcessBus:
    """A FIFO queue with `workers` threads calling `dispatch(event)` for each published event."""

    def __init__(self, dispatch: Callable[[Event], None], workers: int = 2,
                 on_error: Callable[[Event, BaseException], None] = _log_only, *,
                 max_queue: int = 0, name: str = "kfp-bot-bus") -> None:
        """`max_queue` 0 means unbounded; otherwise `publish` raises `BusUnavailable` when full."""
        if workers < 1:
            raise ValueError("an in-process bus needs at least one worker")
        self._dispatch = dispatch
        self._workers = workers
        self._on_error = on_error
        self._name = name
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._threads: list[threading.Thread] = []
        self._worker_idents: set[int] = set()
        # Events published and not yet fully handled; zero means idle.
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = False
        self._stopped = False

    def start(self) -> None:
        """Start the worker threads (once; later calls do nothing)."""
        with self._idle:
            if self._stopped or self._stopping:
                raise BusUnavailable("the event bus was stopped and cannot be restarted")
            if self._threads:
                return
            for index in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"{self._name}-{index}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def publish(self, event: Event) -> None:
        """Enqueue `event` without blocking; raises `BusUnavailable` when it cannot be taken.

        While stopping, only the workers themselves may publish (follow-ups of events being
        drained), so that a drain finishes the work it started.
        """
        with self._idle:
            closed = self._stopped or (self._stopping and threading.get_ident() not in self._worker_idents)
            if closed:
                raise BusUnavailable(f"the event bus is stopped: {event.key} was not queued")
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                raise BusUnavailable(f"the event bus queue is full ({self._queue.maxsize} events): "
                                     f"{event.key} was not queued, retry later") from None
            self._pending += 1

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once no event is queued and no worker is busy; False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def accepting(self) -> bool:
        """False once `stop` has begun: new events from outside the workers are refused."""
        with self._idle:
            return not (self._stopping or self._stopped)

    @property
    def pending(self) -> int:
        """Events published and not yet handled (queued or in a handler)."""
        with self._idle:
            return self._pending

    def stop(self, timeout: float = 30.0, *, drain: bool = True) -> bool:
        """Stop taking events, finish the queued ones (when `drain`), and stop the workers.

        True when every worker stopped within `timeout`; queued events that were not handled
        are logged, since an in-process queue cannot keep them.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            if self._stopped:
                return True
            self._stopping = True
        if drain and self._threads:
            self.wait_idle(timeout)
        with self._idle:
            self._stopped = True
            dropped = self._discard_queued()
            self._idle.notify_all()
        if dropped:
            log.warning("event bus stopped with %d unhandled event(s): %s", len(dropped),
                        ", ".join(dropped))
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("event bus workers still busy after stop: %s", ", ".join(alive))
        return not alive

    def _discard_queued(self) -> list[str]:
        dropped = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if item is not _STOP:
                dropped.append(item.key)  # type: ignore[attr-defined]
                self._pending -= 1

    def _work(self) -> None:
        with self._idle:
            self._worker_idents.add(threading.get_ident())
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            event: Event = item  # type: ignore[assignment]
            try:
                self._handle(event)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def _handle(self, event: Event) -> None:
        with log_context(delivery_id=getattr(event, "delivery_id", None),
                         run_id=getattr(event, "run_id", None)):
            try:
                self._dispatch(event)
            except Exception as exc:  # a worker must survive any handler failure
                log.exception("handler failed for %s: %s", event.key, exc)
                try:
                    self._on_error(event, exc)
                except Exception:
                    log.exception("on_error failed for %s", event.key)
