"""`SqlStore`: the `handlers.ports.store.Store` port on SQLAlchemy, for SQLite and PostgreSQL alike.

Redelivered webhooks, at-least-once bus messages and out-of-order status notifications all
meet here, from several threads and processes at once, so every write that must happen once is
decided by the database itself: inserts rely on primary keys (the loser gets an
IntegrityError, never a check-then-insert race) and state changes are compare-and-set updates.
Runs live in `bot.store.run_store`, the outbox in `bot.store.outbox`, leases in
`bot.store.leases`, run slots in `bot.store.slots`; this module opens the database and keeps the rest (deliveries, pull
requests, approvals, ids of remote objects, chat threads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.store import rows
from bot.store.accept import GroupCommit, SqliteWriter, dbapi_transaction
from bot.store.engine import open_engines
from bot.store.errors import StoreError, database_errors
from bot.store.leases import LeaseMixin
from bot.store.run_store import RunStore
from bot.store.slots import SlotMixin
from bot.store.tables import (
    approvals,
    chat_threads,
    deliveries,
    delivery_failures,
    ensure_schema,
    externals,
    messages,
    pulls,
)
from handlers.models import PullRequestRef, RepoRef
from handlers.ports.chat import ChatMessage
from handlers.ports.store import StoredPull
from handlers.run_models import FailedDelivery, FailureStage

Clock = Callable[[], datetime]

_REASON_CHARS = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _storable(text: str, limit: int) -> str:
    """`text` as every database takes it: lone surrogates escaped, NUL removed, bounded."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")
    return safe if len(safe) <= limit else safe[:limit - 1] + "…"


class SqlStore(RunStore, LeaseMixin, SlotMixin):
    """Runs, deliveries, pull requests, approvals, external ids, the outbox and step leases in a SQL database.

    `url` is `sqlite:///path/to/file.db` (the folder is created) or a PostgreSQL URL
    (`postgresql://user:password@host/db`, the psycopg driver). Tables are created when missing.
    `clock` returns the current time (timezone-aware); tests pass their own. `redact` masks
    secrets in the text stored for a run (errors, transition details), which the API, the page
    and notifications show.
    """

    def __init__(self, url: str, *, clock: Clock | None = None, busy_timeout: float = 30.0,
                 redact: Callable[[str], str] | None = None) -> None:
        self._clock = clock or _utc_now
        self._redact = redact or (lambda text: text)
        self._listeners = []
        engines = open_engines(url, busy_timeout=busy_timeout)
        self._engine = engines.engine
        self._reader: Engine = engines.reader
        self._writer: Engine = engines.writer
        self._write_lock = engines.write_lock
        self._sqlite = self._engine.dialect.name == "sqlite"
        if self._sqlite:
            self._accept_writer: SqliteWriter | None = SqliteWriter(self._engine, self._write_lock, busy_timeout)
            self._acceptor = GroupCommit(self._accept_writer.transaction, self._engine.dialect,
                                         write_now=self._accept_writer.transaction_now)
        else:
            self._accept_writer = None
            self._acceptor = GroupCommit(lambda: dbapi_transaction(self._engine), self._engine.dialect)
        self.url = engines.display_url
        try:
            with self._writer.begin() as conn:
                ensure_schema(conn, self._clock(), self.url)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot open the database {self.url}: {cause}",
                             hint="check the database URL, and that the database is reachable") from exc
        except StoreError:
            self._engine.dispose()
            raise

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> SqlStore:
        """The store at `url`, tables created if missing (see the class docstring)."""
        return cls(url, clock=clock)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every connection (SQLite checkpoints its WAL when the last one closes)."""
        if self._accept_writer is not None:
            self._accept_writer.close()
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self._writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._reader.begin() as conn:
            yield conn

    def _insert_once(self, table: Table, values: Mapping[str, Any], key: Mapping[str, Any],
                     *, dependents: tuple[Table, Sequence[Mapping[str, Any]]] | None = None) -> bool:
        """Insert a row (and its dependent rows); False when its primary key exists.

        The database decides, not a look-up before the insert: of writers racing with the same
        key, exactly one commits and the others get an IntegrityError.
        """
        try:
            with self._write() as conn:
                conn.execute(insert(table).values(**values))
                if dependents is not None:
                    conn.execute(insert(dependents[0]), list(dependents[1]))
            return True
        except IntegrityError:
            # Another constraint (NOT NULL, foreign key) fails the same way: tell them apart.
            with self._read() as conn:
                if conn.execute(select(exists().where(*(table.c[k] == v for k, v in key.items())))).scalar():
                    return False
            raise

    @staticmethod
    def _upsert(conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str],
                *, replace: bool = True) -> None:
        """Insert, or on a key conflict update the other columns (or keep the row: replace=False)."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table).values(**values)
        if replace:
            changed = {c: stmt.excluded[c] for c in values if c not in key}
            stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=changed)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        conn.execute(stmt)

    # -- deliveries and bus messages -------------------------------------------------------

    @database_errors
    def record_delivery(self, delivery_id: str, event: str) -> bool:
        """Remember a webhook delivery; False when it was seen before (atomic)."""
        return self._insert_once(deliveries, {"delivery_id": delivery_id, "event": event,
                                              "received_at": self._clock()},
                                 {"delivery_id": delivery_id})

    @database_errors
    def has_delivery(self, delivery_id: str) -> bool:
        """Whether a webhook delivery was recorded (read-only: redelivery asks before resending)."""
        with self._read() as conn:
            return bool(conn.execute(select(exists().where(deliveries.c.delivery_id == delivery_id))).scalar())

    @database_errors
    def record_delivery_failure(self, delivery_id: str, event: str, stage: FailureStage, reason: str) -> None:
        """Keep a failed delivery queryable with the reason (text made storable: no NUL, no lone
        surrogate, at most `_REASON_CHARS` characters)."""
        with self._write() as conn:
            conn.execute(insert(delivery_failures).values(
                delivery_id=_storable(delivery_id, 200), event=_storable(event, 200), stage=stage.value,
                reason=_storable(reason, _REASON_CHARS), at=self._clock()))

    @database_errors
    def list_delivery_failures(self, *, delivery_id: str | None = None, limit: int = 50) -> list[FailedDelivery]:
        """Failed deliveries (or the failures of one), newest first."""
        query = (select(delivery_failures)
                 .where(*([delivery_failures.c.delivery_id == delivery_id] if delivery_id is not None else []))
                 .order_by(delivery_failures.c.at.desc(), delivery_failures.c.id.desc()).limit(limit))
        with self._read() as conn:
            return [FailedDelivery(delivery_id=row["delivery_id"], event=row["event"],
                                   stage=FailureStage(row["stage"]), reason=row["reason"], at=row["at"])
                    for row in conn.execute(query).mappings()]

    @database_errors
    def record_message(self, key: str) -> bool:
        """Remember a processed bus message key; False when it was processed before."""
        return self._insert_once(messages, {"key": key, "at": self._clock()}, {"key": key})

    # -- pull requests and approvals --------------------------------------------------------

    @database_errors
    def save_pull(self, repo: RepoRef, pull: PullRequestRef, installation_id: int | None) -> None:
        """Remember the latest head of a pull request."""
        with self._write() as conn:
            self._upsert(conn, pulls, rows.pull_values(repo, pull, installation_id, self._clock()),
                         ("repo", "number"))

    @database_errors
    def get_pull(self, repo: str, number: int) -> StoredPull | None:
        """The last pull request event stored for `repo#number`."""
        with self._read() as conn:
            row = conn.execute(select(pulls).where(pulls.c.repo == repo, pulls.c.number == number)
                               ).mappings().first()
        return rows.pull_from_row(row) if row is not None else None

    @database_errors
    def approve(self, repo: str, number: int, sha: str, by: str) -> None:
        """Record a maintainer's `/ok-to-run` for one exact head commit (the first approval stays)."""
        with self._write() as conn:
            self._upsert(conn, approvals, {"repo": repo, "number": number, "sha": sha, "by": by,
                                           "at": self._clock()},
                         ("repo", "number", "sha"), replace=False)

    @database_errors
    def is_approved(self, repo: str, number: int, sha: str) -> bool:
        """True when `/ok-to-run` was given for this exact head commit."""
        with self._read() as conn:
            return bool(conn.execute(select(exists().where(
                approvals.c.repo == repo, approvals.c.number == number, approvals.c.sha == sha))).scalar())

    # -- ids of remote objects --------------------------------------------------------------

    @database_errors
    def get_external(self, scope: str, key: str) -> str | None:
        """An id the bot keeps for a remote object (check run id, comment id, build id)."""
        with self._read() as conn:
            return conn.execute(select(externals.c.value).where(externals.c.scope == scope,
                                                                externals.c.key == key)).scalar()

    @database_errors
    def set_external(self, scope: str, key: str, value: str) -> None:
        """Remember an id for a remote object (replacing the one kept before)."""
        with self._write() as conn:
            self._upsert(conn, externals, {"scope": scope, "key": key, "value": value}, ("scope", "key"))

    # -- chat threads -----------------------------------------------------------------------

    @database_errors
    def get_chat_thread(self, key: str) -> ChatMessage | None:
        """The parent message of chat thread `key` (channel ID and ts), or None."""
        with self._read() as conn:
            row = conn.execute(select(chat_threads.c.channel_id, chat_threads.c.ts)
                               .where(chat_threads.c.key == key)).first()
        return ChatMessage(channel=row.channel_id, ts=row.ts) if row is not None else None

    @database_errors
    def set_chat_thread(self, key: str, message: ChatMessage) -> None:
        """Remember the parent message of chat thread `key` (replacing the one kept before)."""
        with self._write() as conn:
            self._upsert(conn, chat_threads, {"key": key, "channel_id": message.channel, "ts": message.ts,
                                              "updated_at": self._clock()}, ("key",))
