"""Accepting webhook deliveries from the web process's event loop: a batch per commit.

The webhook verifies and parses each delivery on uvicorn's event loop (`bot.webhook_asgi`), and
`AcceptQueue` commits the deliveries waiting at a given moment as one batch (one transaction for
all of them); while a batch commits, the next gathers. Then the bus hears of the batch's rows
(`notify`: the Pub/Sub relay publishes them, before the 202) and each delivery is answered.

Where a batch commits:

- on the loop itself, when that cannot wait: a SQLite file whose write lock is free
  (`Store.accept_deliveries_now`: no network, no fsync at commit in WAL mode, about 50 µs a
  delivery) and a bus whose `notify` does not block. A commit needs the GIL however it is run;
  handing it to a thread cost the CPU of two thread switches and, while the loop kept the GIL
  reading other requests, 1 to 2 ms each way of waiting for it: most of an answer's time under
  load.
- on the one committer thread otherwise (`Store.accept_deliveries`): when another process holds
  SQLite's write lock, on PostgreSQL (the network), with the Pub/Sub relay, and to tell apart
  the delivery that failed a batch. The webhook's other write (a refused delivery kept in the
  failed deliveries) runs there too (`write`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from handlers.ports.store import IncomingDelivery, Store

log = logging.getLogger("kfp_bot.app")

Accepted = tuple[int, ...] | None | Exception
_T = TypeVar("_T")


class Notifier(Protocol):
    """What is told of the rows a batch queued (the bus of `bot.services.Services`)."""

    def notify(self, ids: Sequence[int] = ()) -> None:
        """Take rows `ids` (queued and committed)."""

    @property
    def notify_blocks(self) -> bool:
        """True when `notify` may wait: then batches are committed and notified on the thread."""


class AcceptQueue:
    """Commits deliveries for the coroutines of one event loop, a batch at a time: on the loop when
    that cannot wait, else on one committer thread."""

    def __init__(self, store: Store, bus: Notifier) -> None:
        self._store = store
        self._bus = bus
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kfp-bot-accept")
        self._waiting: list[tuple[IncomingDelivery, asyncio.Future[Accepted]]] = []
        self._committing: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    async def accept(self, incoming: IncomingDelivery) -> Accepted:
        """Commit `incoming`: its outbox row ids, None for a delivery seen before, or the error
        that refused it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._waiting.append((incoming, future))
        if self._committing is None:
            self._committing = loop.create_task(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                deliveries = [one for one, _ in batch]
                try:
                    results = self._commit_here(deliveries)
                    if results is None:
                        results = await loop.run_in_executor(self._thread, self._commit, deliveries)
                except Exception as exc:  # the committer itself failed: every delivery of the batch is refused
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._committing = None

    async def write(self, action: Callable[[], _T]) -> _T:
        """Run `action`, another write to the store, on the committer thread (never on the event
        loop, which a write waiting for the database would stop), in the caller's log context."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._thread, context.run, action)

    def _commit_here(self, batch: list[IncomingDelivery]) -> Sequence[Accepted] | None:
        """On the loop: one commit for `batch` and the bus told, if neither can wait; None when
        nothing was committed (the committer thread then commits the batch)."""
        if self._bus.notify_blocks:
            return None
        results: Sequence[Accepted] | None = self._store.accept_deliveries_now(batch)
        if results is not None:
            self._notify(results, len(batch))
        return results

    def _commit(self, batch: list[IncomingDelivery]) -> list[Accepted]:
        """On the committer thread: one commit for `batch`, then the bus hears of its rows."""
        results = self._store.accept_deliveries(batch)
        self._notify(results, len(batch))
        return results

    def _notify(self, results: Sequence[Accepted], size: int) -> None:
        rows = tuple(row for result in results if isinstance(result, tuple) for row in result)
        if rows:
            try:
                self._bus.notify(rows)
            except Exception as exc:  # the events are stored: a worker or the relay picks them up later
                log.warning("accepted %d deliveries, but could not wake the bus: %s: %s",
                            size, type(exc).__name__, exc)

    def close(self) -> None:
        """Stop the committer thread once what it was given is committed."""
        self._thread.shutdown()
