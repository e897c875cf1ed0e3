"""The outbox: the store is the queue.

Every event the bot has to handle (or, in production, publish to Pub/Sub) is a row of the
`outbox` table, written in the same transaction as what caused it: a webhook's delivery id and
its event commit together (`accept_delivery`), and the events a step publishes commit together
with the mark that the step is done (`finish`, or `complete_step` for a step a Pub/Sub push
ran), and what a run's state change causes commits with the change
(`bot.store.run_store.RunStore.transition`). A crash at any point therefore either keeps the
cause and its rows, or neither. Whoever delivers the rows (`bot.bus`'s workers, the Pub/Sub
relay) registers with `on_queued` to hear of rows queued by such a transaction once it committed.

A row is worked on by one instance at a time: `claim` gives it to an owner under a lease that
the owner renews (`renew`) while it works, atomically (SQLite serialises writers with
`BEGIN IMMEDIATE`; PostgreSQL skips rows other transactions hold with `FOR UPDATE SKIP LOCKED`).
Only a row whose lease expired can be claimed again, so a live owner's work is never taken over,
and a dead owner's is (`Claimed.attempts` > 1 says it is a takeover).

Rows go to lanes: short bookkeeping (run state changes, notifications) never waits behind long
work (checkouts, builds, compiles, runs). Within a lane, repositories with the fewest rows in
progress come first, so one busy repository cannot starve the others.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.accept import INSERT_OUTBOX_ROWS, GroupCommit, acceptance, delivery_record
from bot.store.errors import database_errors
from bot.store.rows import pull_values
from bot.store.tables import externals, outbox, runs
from handlers.event_codec import event_from_dict, event_to_dict
from handlers.models import BuildStatus, Event, EventKind, RunStart, RunStatus
from handlers.ports.store import StoredPull
from handlers.run_models import RunState

_log = logging.getLogger("kfp_bot.store")


class Lane(enum.Enum):
    """Which workers handle an event: short bookkeeping, or long work."""

    SHORT = "short"
    LONG = "long"


# Prepared once (and compiled once per dialect).
_REMEMBER_STEP = {
    postgres: dialect.insert(externals).on_conflict_do_nothing(index_elements=["scope", "key"])
    .returning(externals.c.key)
    for postgres, dialect in ((False, sqlite), (True, postgresql))
}
_SHORT_KINDS = frozenset({EventKind.RUN_STATUS, EventKind.NOTIFICATION})
_RUN_STEPS = (RunStart, BuildStatus, RunStatus)
# Rows of live owners looked past in one claim before giving up until the next poll.
_LIVE_SKIPS = 8


def lane_for(event: Event) -> Lane:
    """Short for state changes and notifications (a failed build is only a state change), long
    for anything that checks out, builds, compiles or runs."""
    if event.kind in _SHORT_KINDS:
        return Lane.SHORT
    if isinstance(event, BuildStatus) and event.state is not RunState.COMPILING:
        return Lane.SHORT
    return Lane.LONG


@dataclass(frozen=True)
class Claimed:
    """An outbox row given to an owner: `attempts` > 1 means an earlier owner stopped halfway."""

    id: int
    event: Event | None
    raw: Any
    key: str
    repo: str
    attempts: int
    decode_error: str | None = None


class OutboxStore:
    """Outbox methods of `SqlStore` (a mixin: it needs `_write`, `_read`, `_clock` and `url`)."""

    _clock: Callable[[], datetime]
    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    _listeners: list[Callable[[tuple[int, ...]], None]]
    _acceptor: GroupCommit

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
        now = self._clock()
        # Everything but the statements happens before the commit lock is taken.
        item = acceptance(delivery_record(delivery_id, event_name, now), event, self._row(None, event, now, None),
                          pull_values(head.repo, head.pull, head.installation_id, now) if head else None)
        return self._acceptor.accept(item)

    @database_errors
    def enqueue(self, events: Sequence[Event]) -> tuple[int, ...]:
        """Queue events outside any step (reconcile, start-up, tests); their row ids."""
        if not events:
            return ()
        with self._write() as conn:
            return self._enqueue(conn, events, self._clock(), parent_repo=None)

    @database_errors
    def claim(self, owner: str, lease_seconds: float, *, lane: Lane | None = None,
              ids: Sequence[int] = (), alive: Callable[[str], bool] | None = None) -> Claimed | None:
        """Give one claimable row to `owner` until its lease ends; None when there is none.

        Claimable: not done, and never claimed or with an expired lease. `lane` limits the
        choice to one lane, `ids` to given rows. Repositories with fewer rows in progress go
        first, then the oldest row. `alive(previous_owner)` True means that owner is known to be
        running (a process of this host, say) however late its renewal is: its row is renewed
        on its behalf rather than taken over, so a live owner's step never runs twice.
        """
        now = self._clock()
        conditions = [outbox.c.done_at.is_(None),
                      or_(outbox.c.owner.is_(None), outbox.c.lease_until <= now)]
        if lane is not None:
            conditions.append(outbox.c.lane == lane.value)
        if ids:
            conditions.append(outbox.c.id.in_(list(ids)))
        # A read first: idle workers poll without taking SQLite's write lock.
        with self._read() as conn:
            if not conn.execute(select(exists().where(*conditions))).scalar():
                return None
        busy_conditions = [outbox.c.done_at.is_(None), outbox.c.owner.is_not(None), outbox.c.lease_until > now]
        if lane is not None:
            busy_conditions.append(outbox.c.lane == lane.value)
        busy = (select(outbox.c.repo.label("repo"), func.count().label("n"))
                .where(*busy_conditions).group_by(outbox.c.repo).subquery())
        pick = (select(outbox.c.id, outbox.c.owner)
                .select_from(outbox.outerjoin(busy, busy.c.repo == outbox.c.repo))
                .where(*conditions).order_by(func.coalesce(busy.c.n, 0), outbox.c.id).limit(1))
        lease_until = now + timedelta(seconds=lease_seconds)
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True, of=outbox)
            for _ in range(_LIVE_SKIPS):
                picked = conn.execute(pick).first()
                if picked is None:
                    return None
                if picked.owner is None or picked.owner == owner or alive is None or not alive(picked.owner):
                    break
                _log.info("outbox row %d: its owner %s is still running; its lease is renewed, not taken over",
                          picked.id, picked.owner)
                conn.execute(update(outbox).where(outbox.c.id == picked.id, outbox.c.owner == picked.owner)
                             .values(lease_until=lease_until))
            else:
                return None
            row = conn.execute(
                update(outbox).where(outbox.c.id == picked.id, *conditions)
                .values(owner=owner, lease_until=lease_until, attempts=outbox.c.attempts + 1)
                .returning(outbox.c.id, outbox.c.event, outbox.c.key, outbox.c.repo, outbox.c.attempts)
            ).mappings().first()
        if row is None:
            return None
        try:
            event: Event | None = event_from_dict(row["event"])
            error = None
        except (TypeError, ValueError, KeyError) as exc:
            event, error = None, f"{type(exc).__name__}: {exc}"
        return Claimed(id=row["id"], event=event, raw=row["event"], key=row["key"], repo=row["repo"],
                       attempts=row["attempts"], decode_error=error)

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
    def release(self, row_id: int, owner: str) -> bool:
        """Give a claimed row back at once (its work was not done, e.g. Pub/Sub refused it)."""
        with self._write() as conn:
            return conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.owner == owner,
                                                     outbox.c.done_at.is_(None))
                                .values(owner=None, lease_until=None)).rowcount == 1

    @database_errors
    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend the lease of every unfinished row `owner` holds; how many it holds."""
        now = self._clock()
        with self._write() as conn:
            # Expired leases too: while nobody else claimed the row, it is still ours to finish.
            return conn.execute(update(outbox).where(outbox.c.owner == owner, outbox.c.done_at.is_(None))
                                .values(lease_until=now + timedelta(seconds=lease_seconds))).rowcount

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
