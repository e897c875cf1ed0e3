"""Claiming outbox rows: which instance works on a queued event, under a lease it renews.

A row is worked on by one instance at a time: `claim` gives it to an owner under a lease that
the owner renews (`renew`) while it works, atomically (on SQLite the row is chosen by a read and
taken under `BEGIN IMMEDIATE` by an update on the condition that it is still claimable, so the
write lock, which every webhook commit needs too, is held for updates by id only; PostgreSQL
skips rows other transactions hold with `FOR UPDATE SKIP LOCKED`).
Only a row whose lease expired can be claimed again, so a live owner's work is never taken over,
and a dead owner's is (`Claimed.attempts` > 1 says it is a takeover). The owner ends with
`OutboxStore.finish` (done, its follow-ups queued) or `release` (given back at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from bot.store.errors import database_errors
from bot.store.outbox_lanes import Lane
from bot.store.tables import outbox
from handlers.event_codec import event_from_dict
from handlers.models import Event

_log = logging.getLogger("kfp_bot.store")
# Rows of live owners looked past in one claim before giving up until the next poll.
_LIVE_SKIPS = 8
# Reads whose rows other workers all took before the write: then the claim gives up until the next poll.
_RACES = 3


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


class _Take:
    """Gives `owner` the first claimable row `pick` names, renewing on their behalf the rows of
    owners `alive` says are still running (looking past at most `_LIVE_SKIPS` of them)."""

    def __init__(self, owner: str, lease_until: datetime, conditions: list[Any],
                 alive: Callable[[str], bool] | None) -> None:
        self.owner = owner
        self.lease_until = lease_until
        self.conditions = conditions
        self.alive = alive
        self.renewed_only = False  # every row looked at belonged to a live owner

    def first_of(self, conn: Connection, pick: Callable[[], Any]) -> Any:
        """The claimed row (id, event, key, repo, attempts), or None."""
        renewed = 0
        for _ in range(_LIVE_SKIPS):
            picked = pick()
            if picked is None:
                break
            if picked.owner is not None and picked.owner != self.owner and self.alive is not None \
                    and self.alive(picked.owner):
                _log.info("outbox row %d: its owner %s is still running; its lease is renewed, not taken over",
                          picked.id, picked.owner)
                conn.execute(update(outbox).where(outbox.c.id == picked.id, outbox.c.owner == picked.owner)
                             .values(lease_until=self.lease_until))
                renewed += 1
                continue
            row = conn.execute(
                update(outbox).where(outbox.c.id == picked.id, *self.conditions)
                .values(owner=self.owner, lease_until=self.lease_until, attempts=outbox.c.attempts + 1)
                .returning(outbox.c.id, outbox.c.event, outbox.c.key, outbox.c.repo, outbox.c.attempts)
            ).mappings().first()
            if row is not None:
                return row
        self.renewed_only = renewed >= _LIVE_SKIPS
        return None


class OutboxClaims:
    """Claim, release and renew of outbox rows, for `OutboxStore` (it needs `_write`, `_read`, `_clock`)."""

    _clock: Callable[[], datetime]
    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    _sqlite: bool

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
        busy_conditions = [outbox.c.done_at.is_(None), outbox.c.owner.is_not(None), outbox.c.lease_until > now]
        if lane is not None:
            busy_conditions.append(outbox.c.lane == lane.value)
        busy = (select(outbox.c.repo.label("repo"), func.count().label("n"))
                .where(*busy_conditions).group_by(outbox.c.repo).subquery())
        pick = (select(outbox.c.id, outbox.c.owner)
                .select_from(outbox.outerjoin(busy, busy.c.repo == outbox.c.repo))
                .where(*conditions).order_by(func.coalesce(busy.c.n, 0), outbox.c.id))
        lease_until = now + timedelta(seconds=lease_seconds)
        take = _Take(owner, lease_until, conditions, alive)
        row = self._take_sqlite(pick, take) if self._sqlite else self._take_postgresql(pick, take)
        if row is None:
            return None
        try:
            event: Event | None = event_from_dict(row["event"])
            error = None
        except (TypeError, ValueError, KeyError) as exc:
            event, error = None, f"{type(exc).__name__}: {exc}"
        return Claimed(id=row["id"], event=event, raw=row["event"], key=row["key"], repo=row["repo"],
                       attempts=row["attempts"], decode_error=error)

    def _take_sqlite(self, pick: Select[Any], take: _Take) -> Any:
        """SQLite: the rows are chosen by a read, outside the write lock (ordering them by busy
        repository scans every claimable row, milliseconds that every webhook commit would wait
        for); the write transaction only updates rows by id, each on the condition that it is
        still claimable, so a row another worker took meanwhile is passed over."""
        for _ in range(_RACES):
            with self._read() as conn:  # idle workers poll without taking the write lock
                candidates = list(conn.execute(pick.limit(_LIVE_SKIPS)))
            if not candidates:
                return None
            with self._write() as conn:
                row = take.first_of(conn, partial(next, iter(candidates), None))
            if row is not None or take.renewed_only:
                return row
        return None

    def _take_postgresql(self, pick: Select[Any], take: _Take) -> Any:
        """PostgreSQL locks rows, not the database: the row is chosen and taken in one
        transaction, passing over rows other transactions hold (`FOR UPDATE SKIP LOCKED`)."""
        with self._read() as conn:  # idle workers poll without a write transaction
            if not conn.execute(select(exists().where(*take.conditions))).scalar():
                return None
        with self._write() as conn:
            return take.first_of(conn, lambda: conn.execute(
                pick.limit(1).with_for_update(skip_locked=True, of=outbox)).first())

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
