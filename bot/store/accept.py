"""Accepting webhook deliveries: one commit serves many requests (group commit).

A webhook is answered 202 only once its delivery id, its event (an outbox row) and, for a pull
request, the head it announces are committed together. Under a burst, many request threads want
that commit at the same moment; one transaction each would queue them on the database's single
writer one after the other. Instead a request puts its delivery on a list and then waits for the
commit lock: whichever thread gets the lock commits everything listed so far in one transaction,
and the threads whose deliveries were in it find them committed when their turn comes. No
thread answers before its own commit, and a burst of N requests costs about one transaction per
request in flight rather than N.

In that transaction each delivery, in arrival order: its id is inserted unless known (the
database decides duplicates, insert-or-ignore; inside one batch the first of the same id wins);
a new comment reads the head stored for its pull request and is bound to it
(`handlers.receipt`); its outbox row is inserted; a pull request's announced head is upserted.
A duplicate therefore stores nothing, and never moves a head.

This is the hottest path of the webhook, so its statements are plain SQL run on the driver's
own cursor (`SqliteWriter`, `dbapi_transaction` on PostgreSQL): SQLAlchemy's per-statement work (cache keys, events,
execution contexts) cost more than SQLite's execution itself. Values still go through the
columns' SQLAlchemy bind processors, so they are stored exactly as the rest of the store writes
and reads them, on SQLite and PostgreSQL alike. If a batch fails as a whole, each of its
deliveries is tried again in a transaction of its own, so one bad delivery fails only itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError

from bot.store.tables import deliveries, outbox, pulls
from handlers.event_codec import event_to_dict
from handlers.models import Event
from handlers.receipt import comment_pull, stamped

# ~40 MB of WAL at SQLite's default 4 KiB pages; other connections checkpoint at 1,000 pages.
BACKSTOP_CHECKPOINT_PAGES = 10_000
INSERT_OUTBOX_ROWS = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)


@dataclass
class Acceptance:
    """One delivery to accept: its `deliveries` row, its `outbox` row and maybe a `pulls` row.

    `comment_on` (repository, number) asks for the event to be bound to the head stored for that
    pull request: `stamp(head_sha)` then gives the outbox row's new `event` value.
    """

    delivery: dict[str, Any]
    row: dict[str, Any]
    pull: dict[str, Any] | None = None
    comment_on: tuple[str, int] | None = None
    stamp: Callable[[str], Any] | None = None
    done: bool = False
    result: tuple[int, ...] | None = None
    error: Exception | None = None


class _Statements:
    """The accept path's SQL for one dialect, with each column's bind processor."""

    def __init__(self, dialect: Dialect) -> None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.columns = {table.name: [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect))
                                     for c in table.columns if c.name != "id" or table is not outbox]
                        for table in (deliveries, outbox, pulls)}

        def insert_into(table: Table) -> str:
            names = [name for name, _ in self.columns[table.name]]
            return (f"INSERT INTO {table.name} ({', '.join(_quoted(n) for n in names)}) "
                    f"VALUES ({', '.join(mark for _ in names)})")

        self.record = insert_into(deliveries) + " ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id"
        self.queue = insert_into(outbox) + " RETURNING id"
        updated = [n for n, _ in self.columns["pulls"] if n not in ("repo", "number")]
        self.save_pull = (insert_into(pulls) + " ON CONFLICT (repo, number) DO UPDATE SET "
                          + ", ".join(f"{_quoted(n)} = excluded.{_quoted(n)}" for n in updated))
        self.head = f"SELECT head_sha FROM pulls WHERE repo = {mark} AND {_quoted('number')} = {mark}"

    def values(self, table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
        """`row`'s values in the statement's column order, as the driver takes them."""
        return tuple(row[name] if process is None else process(row[name])
                     for name, process in self.columns[table.name])


def _quoted(name: str) -> str:
    return f'"{name}"'


@contextmanager
def dbapi_transaction(engine: Engine) -> Iterator[Any]:
    """A write transaction on a pooled connection (PostgreSQL; SQLite has `SqliteWriter`),
    yielding the driver's own cursor; committed when the block ends, rolled back if it raises.
    Driver errors are raised as SQLAlchemy's (`IntegrityError`, `OperationalError`...), as the
    rest of the store's."""
    dbapi = engine.dialect.loaded_dbapi
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            yield cursor
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    except dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc
    finally:
        connection.close()


class SqliteWriter:
    """The accept path's own SQLite connection, with a busy wait that does not sleep for long.

    Only the thread holding the group commit's lock writes through it, so one connection is
    enough and no pool is involved. SQLite's own busy handler sleeps in steps of up to 100 ms
    while another process (the processing process, another web process) holds the write lock;
    here `BEGIN IMMEDIATE` is retried after pauses of 0.1 ms doubling up to 2 ms, so a webhook
    waits about as long as the other writer's transaction, for at most `timeout` seconds.

    The commit that takes the WAL past SQLite's auto-checkpoint threshold (1,000 pages) copies
    it into the database file and syncs it before returning: tens of milliseconds for every
    request waiting on that group commit. The processing process commits as it works through
    the accepted events, so this connection leaves checkpoints to it and only checkpoints
    itself past BACKSTOP_CHECKPOINT_PAGES (nothing else writing, the WAL still bounded). A
    commit on the event loop (`transaction_now`) that crosses it checkpoints there; on the thread
    it held up the answers of every batch after it all the same.
    """

    def __init__(self, engine: Engine, lock: threading.RLock | None, timeout: float) -> None:
        self._engine = engine
        self._lock = lock if lock is not None else threading.RLock()
        self._timeout = timeout
        self._connection: Any = None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A `BEGIN IMMEDIATE` write transaction on the kept connection, under the process's write lock
        (as every write of the store, `bot.store.engine`), yielding the driver's own cursor."""
        with self._lock:
            yield from self._transaction(wait=True)

    @contextmanager
    def transaction_now(self) -> Iterator[Any]:
        """`transaction` if it can begin without waiting; `WriterBusy` (nothing begun) while
        another thread of this process or another connection holds the write lock."""
        if not self._lock.acquire(blocking=False):
            raise WriterBusy("another thread of this process is writing")
        try:
            yield from self._transaction(wait=False)
        finally:
            self._lock.release()

    def _transaction(self, *, wait: bool) -> Iterator[Any]:
        dbapi = self._engine.dialect.loaded_dbapi
        try:
            if self._connection is None:
                connection = self._engine.raw_connection()
                connection.detach()  # ours for good: closed by `close`, never pooled
                connection.cursor().execute("PRAGMA busy_timeout = 0")
                connection.cursor().execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")
                self._connection = connection
            cursor = self._connection.cursor()
            self._begin(cursor, dbapi, wait=wait)
            try:
                yield cursor
                self._connection.commit()
            except BaseException:
                self._connection.rollback()
                raise
        except dbapi.Error as exc:
            raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc

    def _begin(self, cursor: Any, dbapi: Any, *, wait: bool) -> None:
        deadline = time.monotonic() + self._timeout
        pause = 0.0001
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except dbapi.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                if not wait:
                    raise WriterBusy("another connection holds the database's write lock") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def close(self) -> None:
        """Close the kept connection (the next transaction opens another)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class WriterBusy(Exception):
    """A write that was not to wait found the write lock taken; nothing was written."""


class GroupCommit:
    """Commits `Acceptance`s in batches on `write()` transactions (a driver cursor each, of a
    database with `dialect`); `accept` waits for its own. `write_now`, when given, begins a
    transaction only if that needs no wait (else raises `WriterBusy`): `accept_now` uses it."""

    def __init__(self, write: Callable[[], AbstractContextManager[Any]], dialect: Dialect, *,
                 write_now: Callable[[], AbstractContextManager[Any]] | None = None, max_batch: int = 256) -> None:
        self._write = write
        self._write_now = write_now
        self._sql = _Statements(dialect)
        self._max_batch = max_batch
        self._pending: list[Acceptance] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def accept(self, item: Acceptance) -> tuple[int, ...] | None:
        """Commit `item` (with whatever else is waiting); its outbox row ids, None for a duplicate."""
        [result] = self.accept_all([item])
        if isinstance(result, Exception):
            raise result
        return result

    def accept_all(self, items: Sequence[Acceptance]) -> list[tuple[int, ...] | None | Exception]:
        """Commit `items` (with whatever else is waiting); for each, its outbox row ids, None for
        a duplicate, or the error that failed it alone."""
        with self._pending_lock:
            self._pending.extend(items)
        while not all(item.done for item in items):
            with self._commit_lock:
                with self._pending_lock:
                    batch = self._pending[:self._max_batch]
                    del self._pending[:self._max_batch]
                self._commit(batch)
        return [item.error if item.error is not None else item.result for item in items]

    @property
    def commits_now(self) -> bool:
        """Whether `accept_now` can ever commit (it has a `write_now`)."""
        return self._write_now is not None

    def accept_now(self, items: Sequence[Acceptance]) -> list[tuple[int, ...] | None] | None:
        """Commit `items` in one transaction on this thread if that needs no wait; for each, its
        outbox row ids or None for a duplicate. None, with nothing committed, when it would wait
        (another thread committing, another connection holding the write lock), when there is no
        `write_now`, or when the batch fails: `accept_all` then commits them, waiting, and tells
        a delivery that fails apart from the others."""
        if self._write_now is None or not self._commit_lock.acquire(blocking=False):
            return None
        try:
            results = self._transaction(items, self._write_now)
        except Exception:  # WriterBusy, or an error that accept_all reports delivery by delivery
            return None
        finally:
            self._commit_lock.release()
        for item, result in zip(items, results, strict=True):
            item.result, item.done = result, True
        return results

    def _commit(self, batch: Sequence[Acceptance]) -> None:
        if not batch:
            return
        try:
            results = self._transaction(batch, self._write)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            # Tell the delivery that broke the batch from the others: one transaction each.
            for item in batch:
                self._commit([item])
            return
        for item, result in zip(batch, results, strict=True):
            item.result, item.done = result, True

    def _transaction(self, batch: Sequence[Acceptance],
                     write: Callable[[], AbstractContextManager[Any]]) -> list[tuple[int, ...] | None]:
        sql = self._sql
        results: list[tuple[int, ...] | None] = []
        seen: set[str] = set()
        with write() as cursor:
            for item in batch:
                delivery_id = item.delivery["delivery_id"]
                if delivery_id in seen:
                    results.append(None)
                    continue
                seen.add(delivery_id)
                cursor.execute(sql.record, sql.values(deliveries, item.delivery))
                if cursor.fetchone() is None:  # seen before: nothing of it is stored
                    results.append(None)
                    continue
                if item.comment_on is not None and item.stamp is not None:
                    cursor.execute(sql.head, item.comment_on)
                    head = cursor.fetchone()
                    if head is not None:
                        item.row["event"] = item.stamp(head[0])
                cursor.execute(sql.queue, sql.values(outbox, item.row))
                results.append((cursor.fetchone()[0],))
                if item.pull is not None:
                    cursor.execute(sql.save_pull, sql.values(pulls, item.pull))
        return results


def acceptance(delivery: dict[str, Any], event: Event, row: dict[str, Any],
               pull: dict[str, Any] | None) -> Acceptance:
    """What to commit for `event`: a comment is bound to its pull request's stored head."""
    comment_on = comment_pull(event)
    if comment_on is None:
        return Acceptance(delivery, row, pull)
    return Acceptance(delivery, row, pull, comment_on, lambda sha: event_to_dict(stamped(event, sha)))


def delivery_record(delivery_id: str, event_name: str, now: datetime) -> dict[str, Any]:
    """The `deliveries` row of an accepted delivery."""
    return {"delivery_id": delivery_id, "event": event_name, "received_at": now}
