"""The outbox: the store is the queue.

Every event the bot has to handle (or, in production, publish to Pub/Sub) is a row of the
`outbox` table, written in the same transaction as what caused it: a webhook's delivery id and
its event commit together (`accept_delivery`), and the events a step publishes commit together
with the mark that the step is done (`finish`, or `complete_step` for a step a Pub/Sub push
ran), and what a run's state change causes commits with the change
(`bot.store.run_store.RunStore.transition`). A crash at any point therefore either keeps the
cause and its rows, or neither. Whoever delivers the rows (`bot.bus`'s workers, the Pub/Sub
relay) registers with `on_queued` to hear of rows queued by such a transaction once it committed.

A row is worked on by one instance at a time, under a lease: `bot.store.outbox_claims`.

Rows go to lanes: short bookkeeping (run state changes, notifications) never waits behind long
work (checkouts, builds, compiles, runs). Within a lane, repositories with the fewest rows in
progress come first, so one busy repository cannot starve the others (`bot.store.outbox_lanes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.accept import INSERT_OUTBOX_ROWS, Acceptance, GroupCommit, acceptance, delivery_record
from bot.store.errors import database_errors, store_error
from bot.store.outbox_claims import OutboxClaims
from bot.store.outbox_lanes import lane_for
from bot.store.rows import pull_values
from bot.store.tables import externals, outbox, runs
from handlers.event_codec import event_from_dict, event_to_dict
from handlers.models import BuildStatus, Event, RunStart, RunStatus
from handlers.ports.store import IncomingDelivery, StoredPull

_log = logging.getLogger("kfp_bot.store")


# Prepared once (and compiled once per dialect).
_REMEMBER_STEP = {
    postgres: dialect.insert(externals).on_conflict_do_nothing(index_elements=["scope", "key"])
    .returning(externals.c.key)
    for postgres, dialect in ((False, sqlite), (True, postgresql))
}
_RUN_STEPS = (RunStart, BuildStatus, RunStatus)


class OutboxStore(OutboxClaims):
    """Outbox methods of `SqlStore` (a mixin: it needs `_write`, `_read`, `_clock` and `url`)."""

    _clock: Callable[[], datetime]
    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    _listeners: list[Callable[[tuple[int, ...]], None]]
    _acceptor: GroupCommit
    url: str

    def on_queued(self, listener: Callable[[tuple[int, ...]], None]) -> None:
        """Call `listener(row_ids)` after a state change or a completed step queued rows (in the
        writer's thread, after the commit; its failures are logged, never raised)."""
        self._listeners.append(listener)

    def _queued(self, ids: tuple[int, ...]) -> None:
        if not ids:
            return
        for listener in tuple(self._listeners):
            try:
                listener(ids)
            except Exception as exc:  # the rows are stored: whoever polls the outbox takes them
                _log.warning("outbox listener failed for rows %s: %s: %s", ids, type(exc).__name__, exc)

    @database_errors
    def accept_delivery(self, delivery_id: str, event_name: str, event: Event, *,
                        head: StoredPull | None = None) -> tuple[int, ...] | None:
        """Record a webhook delivery, queue its event and remember the pull request `head` it
        announces, in one transaction (shared with the deliveries accepted at the same moment:
        `bot.store.accept`). None when the delivery was seen before (nothing queued or stored);
        otherwise the outbox row ids.
        """
        # Everything but the statements happens before the commit lock is taken.
        return self._acceptor.accept(self._acceptance(IncomingDelivery(delivery_id, event_name, event, head),
                                                      self._clock()))

    def accept_deliveries(self, incoming: Sequence[IncomingDelivery]) -> list[tuple[int, ...] | None | Exception]:
        """`accept_delivery` for each of `incoming` (in their order), committed together; for
        each, its outbox row ids, None for a delivery seen before, or the `StoreError` that
        refused it alone."""
        now = self._clock()
        items = [self._acceptance(one, now) for one in incoming]
        return [store_error("accept_deliveries", self.url, result) if isinstance(result, Exception) else result
                for result in self._acceptor.accept_all(items)]

    def accept_deliveries_now(self, incoming: Sequence[IncomingDelivery]) -> list[tuple[int, ...] | None] | None:
        """`accept_deliveries` committed on the calling thread when that needs no wait: SQLite,
        this process's and the database's write locks both free. None, with nothing committed,
        otherwise (always on PostgreSQL, which is reached over the network), and when the batch
        fails: `accept_deliveries` then commits, waiting, and reports each failure."""
        if not self._acceptor.commits_now:  # encoding the events here would be work done twice
            return None
        now = self._clock()
        return self._acceptor.accept_now([self._acceptance(one, now) for one in incoming])

    def _acceptance(self, incoming: IncomingDelivery, now: datetime) -> Acceptance:
        """What accepting `incoming` at `now` commits: its delivery, its outbox row, its head."""
        head = incoming.head
        return acceptance(delivery_record(incoming.delivery_id, incoming.event_name, now), incoming.event,
                          self._row(None, incoming.event, now, None),
                          pull_values(head.repo, head.pull, head.installation_id, now) if head else None)

    @database_errors
    def enqueue(self, events: Sequence[Event]) -> tuple[int, ...]:
        """Queue events outside any step (reconcile, start-up, tests); their row ids."""
        if not events:
            return ()
        with self._write() as conn:
            return self._enqueue(conn, events, self._clock(), parent_repo=None)

    @database_errors
    def finish(self, row_id: int, owner: str, then: Sequence[Event] = (), *,
               repo: str | None = None) -> tuple[int, ...] | None:
        """Mark a claimed row done and queue the events its step published, in one transaction.

        None (and nothing queued) when `owner` no longer holds the row: its lease expired and
        another instance took it over, which will publish the step's events itself. Queued
        events without a repository of their own inherit `repo` (the step's) for fairness.
        """
        now = self._clock()
        with self._write() as conn:
            done = conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.owner == owner,
                                                     outbox.c.done_at.is_(None)).values(done_at=now))
            if done.rowcount != 1:
                return None
            return self._enqueue(conn, then, now, parent_repo=repo) if then else ()

    @database_errors
    def complete_step(self, scope: str, key: str, value: str, then: Sequence[Event] = (), *,
                      repo: str | None = None) -> tuple[int, ...] | None:
        """Remember step `key` (in the externals table, under `scope`) as done and queue the events
        it published, in one transaction; None (nothing queued) when it was remembered before.

        The Pub/Sub push endpoint ends each message's step with this: a redelivery of the message
        is then a duplicate, and the next steps are in the outbox for the relay, or neither.
        """
        now = self._clock()
        with self._write() as conn:
            statement = _REMEMBER_STEP[conn.dialect.name == "postgresql"]
            if conn.execute(statement, {"scope": scope, "key": key, "value": value}).first() is None:
                return None
            queued = self._enqueue(conn, then, now, parent_repo=repo) if then else ()
        self._queued(queued)
        return queued

    @database_errors
    def pending_work(self) -> int:
        """How many rows are not done yet (queued or in progress)."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)
                                    .where(outbox.c.done_at.is_(None))).scalar_one())

    @database_errors
    def run_has_work(self, run_id: str) -> bool:
        """True while a step of the run is queued or owned: someone is going to move it."""
        with self._read() as conn:
            return bool(conn.execute(select(exists().where(outbox.c.run_id == run_id,
                                                           outbox.c.done_at.is_(None)))).scalar())

    @database_errors
    def queued_events(self, *, pending: bool = True, limit: int = 1000) -> list[Event]:
        """Events of the outbox in order (not done ones, or all with `pending=False`)."""
        query = select(outbox.c.event).order_by(outbox.c.id).limit(limit)
        if pending:
            query = query.where(outbox.c.done_at.is_(None))
        with self._read() as conn:
            return [event_from_dict(value) for value in conn.execute(query).scalars()]

    @database_errors
    def purge_done(self, older_than: timedelta) -> int:
        """Delete rows done before `older_than` ago; how many."""
        with self._write() as conn:
            return conn.execute(delete(outbox).where(outbox.c.done_at < self._clock() - older_than)).rowcount

    def _enqueue(self, conn: Connection, events: Iterable[Event], now: datetime, *,
                 parent_repo: str | None) -> tuple[int, ...]:
        values = [self._row(conn, event, now, parent_repo) for event in events]
        if not values:
            return ()
        # One statement shape for any number of rows: compiled once, then taken from the cache.
        return tuple(conn.execute(INSERT_OUTBOX_ROWS, values).scalars())

    @staticmethod
    def _row(conn: Connection | None, event: Event, now: datetime, parent_repo: str | None) -> dict[str, Any]:
        run_id = event.run_id if isinstance(event, _RUN_STEPS) else None
        return {"kind": event.kind.value, "key": event.key, "event": event_to_dict(event),
                "lane": lane_for(event).value, "repo": _repo_of(conn, event, run_id, parent_repo),
                "run_id": run_id, "created_at": now, "owner": None, "lease_until": None, "attempts": 0,
                "done_at": None}


def _repo_of(conn: Connection | None, event: Event, run_id: str | None, parent_repo: str | None) -> str:
    """The repository an event is for: its own, the step's that published it, or its run's."""
    repo = getattr(event, "repo", None)
    if repo is not None:
        return repo if isinstance(repo, str) else repo.full_name
    if parent_repo:
        return parent_repo
    if run_id is not None and conn is not None:
        found = conn.execute(select(runs.c.repo).where(runs.c.id == run_id)).scalar()
        if found:
            return str(found)
    return ""
