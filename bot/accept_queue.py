"""Accepting webhook deliveries from the web process's event loop: a batch per commit, one thread.

The webhook verifies and parses each delivery on uvicorn's event loop (`bot.webhook_asgi`), but
a commit must not run there: it may wait for the database's write lock (another process is
writing) or, on PostgreSQL, for the network. Handing every delivery to a thread pool costs a
thread switch each way and keeps several threads contending for the GIL with the loop. Instead
`AcceptQueue` hands the deliveries waiting at a given moment to its one committer thread as one
batch (`Store.accept_deliveries`: one transaction for all of them), and while that commits, the
next batch gathers. The committer then hands the rows to the bus (`notify`: the Pub/Sub relay
publishes them there, before the 202), and each delivery's answer resumes on the loop. The
webhook's other write (a refused delivery kept in the failed deliveries) runs on the same thread
(`write`).
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


class AcceptQueue:
    """Commits deliveries for the coroutines of one event loop, a batch at a time on one thread."""

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
                try:
                    results = await loop.run_in_executor(self._thread, self._commit, [one for one, _ in batch])
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

    def _commit(self, batch: list[IncomingDelivery]) -> list[Accepted]:
        """On the committer thread: one commit for `batch`, then the bus hears of its rows."""
        results = self._store.accept_deliveries(batch)
        rows = tuple(row for result in results if isinstance(result, tuple) for row in result)
        if rows:
            try:
                self._bus.notify(rows)
            except Exception as exc:  # the events are stored: a worker or the relay picks them up later
                log.warning("accepted %d deliveries, but could not wake the bus: %s: %s",
                            len(batch), type(exc).__name__, exc)
        return results

    def close(self) -> None:
        """Stop the committer thread once what it was given is committed."""
        self._thread.shutdown()
