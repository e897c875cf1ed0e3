"""Accepting webhook deliveries: one commit serves many requests (group commit).

A webhook is answered 202 only once its delivery id, its event (an outbox row) and, for a pull
request, the head it announces are committed together. Under a burst, many request threads want
that commit at the same moment; one transaction each would queue them on the database's single
writer one after the other. Instead a request puts its delivery on a list and then waits for the
commit lock: whichever thread gets the lock commits everything listed so far in one transaction
(three statements whatever the number of deliveries), and the threads whose deliveries were in
it find them committed when their turn comes. No thread answers before its own commit, and a
burst of N requests costs about one transaction per request in flight rather than N.

Duplicates are decided by the database (insert-or-ignore on the delivery id) and, inside one
batch, by the first of the same id. If a batch fails as a whole, each of its deliveries is
tried again in a transaction of its own, so one bad delivery fails only itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.tables import deliveries, outbox, pulls

# Built once per dialect: statement construction is most of SQLAlchemy's cost per call.
_RECORD_DELIVERIES = {
    postgres: dialect.insert(deliveries).on_conflict_do_nothing(index_elements=["delivery_id"])
    .returning(deliveries.c.delivery_id)
    for postgres, dialect in ((False, sqlite), (True, postgresql))
}
INSERT_OUTBOX_ROWS = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)


def _pull_upsert(dialect: Any) -> Any:
    statement = dialect.insert(pulls)
    keys = {"repo", "number"}
    return statement.on_conflict_do_update(
        index_elements=["repo", "number"],
        set_={c.name: statement.excluded[c.name] for c in pulls.columns if c.name not in keys})


_SAVE_PULLS = {False: _pull_upsert(sqlite), True: _pull_upsert(postgresql)}


@dataclass
class Acceptance:
    """One delivery to accept: its `deliveries` row, its `outbox` row and maybe a `pulls` row."""

    delivery: dict[str, Any]
    row: dict[str, Any]
    pull: dict[str, Any] | None = None
    done: bool = False
    result: tuple[int, ...] | None = None
    error: BaseException | None = None
    _ready: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Commits `Acceptance`s in batches on `write()` transactions; `accept` waits for its own."""

    def __init__(self, write: Callable[[], AbstractContextManager[Connection]], *, max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[Acceptance] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def accept(self, item: Acceptance) -> tuple[int, ...] | None:
        """Commit `item` (with whatever else is waiting); its outbox row ids, None for a duplicate."""
        with self._pending_lock:
            self._pending.append(item)
        while not item.done:
            with self._commit_lock:
                if item.done:
                    break
                with self._pending_lock:
                    batch = self._pending[:self._max_batch]
                    del self._pending[:self._max_batch]
                self._commit(batch)
        if item.error is not None:
            raise item.error
        return item.result

    def _commit(self, batch: Sequence[Acceptance]) -> None:
        if not batch:
            return
        try:
            results = self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            # Tell the delivery that broke the batch from the others: one transaction each.
            for item in batch:
                self._commit([item])
            return
        for item, result in zip(batch, results, strict=False):
            item.result, item.done = result, True

    def _transaction(self, batch: Sequence[Acceptance]) -> list[tuple[int, ...] | None]:
        first: dict[str, Acceptance] = {}
        for item in batch:
            first.setdefault(item.delivery["delivery_id"], item)
        with self._write() as conn:
            postgres = conn.dialect.name == "postgresql"
            records = [item.delivery for item in first.values()]
            if len(records) == 1:  # psycopg's rowcount is -1 here: RETURNING says whether it was new
                new = set(conn.execute(_RECORD_DELIVERIES[postgres], records[0]).scalars())
            else:
                new = set(conn.execute(_RECORD_DELIVERIES[postgres], records).scalars())
            accepted = [item for item in first.values() if item.delivery["delivery_id"] in new]
            ids: dict[int, tuple[int, ...]] = {}
            if accepted:
                row_ids = list(conn.execute(INSERT_OUTBOX_ROWS, [item.row for item in accepted]).scalars())
                ids = {id(item): (row_id,) for item, row_id in zip(accepted, row_ids, strict=False)}
                heads = [item.pull for item in accepted if item.pull is not None]
                if heads:
                    conn.execute(_SAVE_PULLS[postgres], heads)
        return [ids.get(id(item)) if first[item.delivery["delivery_id"]] is item else None for item in batch]


def delivery_record(delivery_id: str, event_name: str, now: datetime) -> dict[str, Any]:
    """The `deliveries` row of an accepted delivery."""
    return {"delivery_id": delivery_id, "event": event_name, "received_at": now}
