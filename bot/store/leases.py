"""Short leases on a key, kept in the externals table: who is working on something right now.

The Pub/Sub push endpoint takes a lease on a message (subscription and message id) while its
step runs, so that a redelivery arriving meanwhile, at this instance or another one sharing the
database, is turned away instead of running the same step a second time at the same moment. A
lease names its owner and when it runs out; the owner renews it while working, and a lease
whose owner died simply expires. The value is compared and swapped in one statement, so two
takers never both win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from bot.store.errors import database_errors
from bot.store.tables import externals


class LeaseMixin:
    """`take_lease` / `drop_lease` for `SqlStore` (which provides `_write`, `_insert_once`, `_clock`)."""

    _clock: Callable[[], datetime]
    _write: Callable[[], Any]
    _insert_once: Callable[..., bool]

    @database_errors
    def take_lease(self, scope: str, key: str, owner: str, seconds: float) -> bool:
        """Hold `key` for `owner` for `seconds` from now; True when it was free, expired or already
        `owner`'s (then renewed), False while someone else holds it."""
        now = self._clock()
        value = f"{owner} {(now + timedelta(seconds=seconds)).isoformat()}"
        where = {"scope": scope, "key": key}
        if self._insert_once(externals, {**where, "value": value}, where):
            return True
        with self._write() as conn:
            current = _value(conn, where)
            if current is None:
                conn.execute(externals.insert().values(**where, value=value))
                return True
            holder, _, until = current.partition(" ")
            if holder != owner and _parse(until) > now:
                return False
            swapped = conn.execute(update(externals).where(_match(where), externals.c.value == current)
                                   .values(value=value))
            return swapped.rowcount == 1

    @database_errors
    def drop_lease(self, scope: str, key: str, owner: str) -> None:
        """Give up `owner`'s lease on `key` (nothing happens when someone else holds it now)."""
        with self._write() as conn:
            conn.execute(delete(externals).where(_match({"scope": scope, "key": key}),
                                                 externals.c.value.startswith(f"{owner} ", autoescape=True)))


def _match(where: Mapping[str, str]) -> Any:
    return and_(externals.c.scope == where["scope"], externals.c.key == where["key"])


def _value(conn: Connection, where: Mapping[str, str]) -> str | None:
    return conn.execute(select(externals.c.value).where(_match(where))).scalar()


_EXPIRED = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _parse(stamp: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:  # not a lease this code wrote: treat it as expired
        return _EXPIRED
    return parsed if parsed.tzinfo is not None else _EXPIRED
