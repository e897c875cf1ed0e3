"""The embedded event bus: worker threads that take their work from the store's outbox.

The store is the queue (`bot.store.outbox`); this bus only wakes workers when rows were
written and runs them. Each lane has its own workers, so short bookkeeping (state changes,
notifications) never waits behind long work (checkouts, builds, compiles, runs). A worker
claims a row under a lease that a heartbeat thread renews while it works, runs the handlers,
and marks the row done together with the events the handlers published (they are buffered
until then), in one transaction. A process that dies leaves its rows with leases nobody
renews; once those expire, any instance sharing the database takes them over and the step is
resumed (`handlers.context.step_resumed`); a live process of this machine whose renewal is late
keeps its rows (`bot.owners.alive_here`).

A handler's exception never kills a worker: it is logged with the event key and handed to
`on_error`, which turns it into a visible run error. Production replaces this with the
Pub/Sub relay (`bot.pubsub.relay`) behind the same `publish`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from bot.logs import log_context
from bot.owners import alive_here, new_owner_id
from bot.store.outbox import OutboxStore
from bot.store.outbox_claims import Claimed
from bot.store.outbox_lanes import Lane
from handlers.context import handling
from handlers.models import Event
from kfp_bot_errors import KfpBotError

log = logging.getLogger("kfp_bot.bus")

DEFAULT_LANES: Mapping[Lane, int] = {Lane.SHORT: 2, Lane.LONG: 2}
DEFAULT_LEASE_SECONDS = 60.0
_KEEP_DONE = timedelta(days=1)
_FINISH_ATTEMPTS = 5


class BusUnavailable(KfpBotError):
    """The bus cannot take the event (the store or the topic did not accept it)."""


def _log_only(event: Event, error: BaseException) -> None:
    """The default `on_error`: the worker already logged the failure."""


class StepEvents(threading.local):
    """Events published by the handler running on this thread, committed when its step finishes
    (None: no step is collecting on this thread)."""

    events: list[Event] | None = None


class OutboxBus:
    """Workers per lane calling `dispatch(event)` for each outbox row they claim."""

    notify_blocks = False  # `notify` wakes threads of this process

    def __init__(self, store: OutboxStore, dispatch: Callable[[Event], None], *,
                 on_error: Callable[[Event, BaseException], None] = _log_only,
                 lanes: Mapping[Lane, int] = DEFAULT_LANES, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 poll_seconds: float = 1.0, owner: str | None = None, name: str = "kfp-bot-bus") -> None:
        """`poll_seconds`: how often idle workers look for rows other instances wrote or left."""
        if not lanes or min(lanes.values()) < 1:
            raise ValueError("every lane of the bus needs at least one worker")
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("the lease and the poll interval must be positive")
        self._store = store
        self._dispatch = dispatch
        self._on_error = on_error
        self._lanes = dict(lanes)
        self._lease = lease_seconds
        self._poll = poll_seconds
        self.owner = owner or new_owner_id()
        self._name = name
        self._unit = StepEvents()
        self._wake = threading.Condition()
        self._generation = 0
        self._busy = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        store.on_queued(self.notify)  # a state change queued its notification

    def start(self) -> None:
        """Start the workers and the lease heartbeat (once; later calls do nothing)."""
        with self._wake:
            if self._stop.is_set():
                raise BusUnavailable("the event bus was stopped and cannot be restarted")
            if self._threads:
                return
            for lane, count in self._lanes.items():
                for index in range(count):
                    self._threads.append(threading.Thread(target=self._work, args=(lane,), daemon=True,
                                                          name=f"{self._name}-{lane.value}-{index}"))
            self._threads.append(threading.Thread(target=self._heartbeat, daemon=True,
                                                  name=f"{self._name}-lease"))
            for thread in self._threads:
                thread.start()

    def publish(self, event: Event) -> None:
        """Queue `event`: with the running step's result when called from a handler, else at once.

        (A run's notifications do not come this way: they are queued with its state changes.)
        """
        buffered = self._unit.events
        if buffered is not None:
            buffered.append(event)
            return
        try:
            self._store.enqueue([event])
        except Exception as exc:
            raise BusUnavailable(f"could not queue {event.key}: {exc}") from exc
        self.notify()

    def notify(self, ids: Sequence[int] = ()) -> None:
        """Rows were written to the outbox (by the webhook, or another thread): wake the workers."""
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    @property
    def pending(self) -> int:
        """Rows not done yet, in the whole store (queued or in progress, any instance)."""
        return self._store.pending_work()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once no row is left to do and no worker here is busy; False if `timeout` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._wake:
                busy = self._busy
            if busy == 0 and self._store.pending_work() == 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0, *, drain: bool = True) -> bool:
        """Stop claiming (after the queue is empty, when `drain`) and let the workers finish.

        Rows not handled stay in the store for the next start or another instance. True when
        every worker stopped within `timeout`.
        """
        deadline = time.monotonic() + timeout
        if drain and self._threads and not self._stop.is_set():
            self.wait_idle(timeout)
        self._stop.set()
        self.notify()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("event bus workers still busy after stop: %s", ", ".join(alive))
        left = self._safe_pending()
        if left:
            log.info("event bus stopped with %d event(s) left in the store for the next start", left)
        return not alive

    def _safe_pending(self) -> int:
        try:
            return self._store.pending_work()
        except Exception:
            return 0

    def _work(self, lane: Lane) -> None:
        while not self._stop.is_set():
            with self._wake:
                generation = self._generation
            try:
                claimed = self._store.claim(self.owner, self._lease, lane=lane, alive=alive_here)
            except Exception as exc:  # the store is down: wait and try again
                log.error("could not claim work from the store: %s", exc)
                claimed = None
            if claimed is None:
                with self._wake:
                    if generation == self._generation and not self._stop.is_set():
                        self._wake.wait(self._poll)
                continue
            with self._wake:
                self._busy += 1
            try:
                self._run(claimed)
            finally:
                with self._wake:
                    self._busy -= 1
                    self._generation += 1
                    self._wake.notify_all()

    def _run(self, claimed: Claimed) -> None:
        event = claimed.event
        self._unit.events = []
        try:
            if event is None:
                log.error("outbox row %d (%s) is not an event this bot knows and is dropped: %s",
                          claimed.id, claimed.key, claimed.decode_error)
            else:
                if claimed.attempts > 1:
                    log.warning("taking over %s (attempt %d): its previous owner stopped before finishing",
                                claimed.key, claimed.attempts)
                with handling(resumed=claimed.attempts > 1):
                    self._handle(event)
            published = self._unit.events
        finally:
            self._unit.events = None
        self._finish(claimed, published)

    def _handle(self, event: Event) -> None:
        with log_context(delivery_id=getattr(event, "delivery_id", None), run_id=getattr(event, "run_id", None)):
            try:
                self._dispatch(event)
            except Exception as exc:  # a worker must survive any handler failure
                log.exception("handler failed for %s: %s", event.key, exc)
                try:
                    self._on_error(event, exc)
                except Exception:
                    log.exception("on_error failed for %s", event.key)

    def _finish(self, claimed: Claimed, published: list[Event]) -> None:
        for attempt in range(_FINISH_ATTEMPTS):
            try:
                if self._store.finish(claimed.id, self.owner, published, repo=claimed.repo) is None:
                    log.warning("%s was taken over by another instance before it finished here; its "
                                "follow-ups are left to that instance", claimed.key)
                return
            except Exception as exc:
                log.error("could not mark %s done (try %d): %s", claimed.key, attempt + 1, exc)
                time.sleep(min(0.1 * 2 ** attempt, 2.0))
        # The lease runs out and the step is resumed elsewhere: nothing is lost.
        log.error("giving up marking %s done; it will be resumed when its lease expires", claimed.key)

    def _heartbeat(self) -> None:
        beats = 0
        while not self._stop.wait(self._lease / 3):
            try:
                self._store.renew(self.owner, self._lease)
                beats += 1
                if beats % 100 == 0:
                    self._store.purge_done(_KEEP_DONE)
            except Exception as exc:
                log.error("could not renew the leases of %s: %s", self.owner, exc)
