"""`SqlStore`: the `handlers.ports.Store` port on SQLAlchemy, for SQLite and PostgreSQL alike.

Redelivered webhooks, at-least-once bus messages and out-of-order status notifications all
meet here, from several threads and processes at once, so every write that must happen once is
decided by the database itself: inserts rely on primary keys (the loser gets an
IntegrityError, never a check-then-insert race) and state changes are compare-and-set updates.
A run's `updated_at` is the time of its last state change, which `Run.duration_seconds` uses;
`update_run` leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, Table, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.store import rows
from bot.store.engine import open_engines
from bot.store.errors import StoreError, database_errors
from bot.store.leases import LeaseMixin
from bot.store.outbox import OutboxStore
from bot.store.tables import (
    approvals,
    chat_threads,
    deliveries,
    delivery_failures,
    ensure_schema,
    externals,
    messages,
    pulls,
    runs,
    transitions,
)
from handlers.models import FailedDelivery, FailureStage, PullRequestRef, RepoRef, Run, RunState, Transition
from handlers.ports import ChatMessage, StoredPull

Clock = Callable[[], datetime]

_ACTIVE = tuple(s.value for s in RunState if not s.terminal)
_FINISHED = tuple(s.value for s in RunState if s.terminal)
# Databases cap the number of bound parameters; transitions of long listings are read in chunks.
_CHUNK = 500


_REASON_CHARS = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _storable(text: str, limit: int) -> str:
    """`text` as every database takes it: lone surrogates escaped, NUL removed, bounded."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")
    return safe if len(safe) <= limit else safe[:limit - 1] + "…"


class SqlStore(OutboxStore, LeaseMixin):
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
        engines = open_engines(url, busy_timeout=busy_timeout)
        self._engine = engines.engine
        self._reader: Engine = engines.reader
        self._writer: Engine = engines.writer
        self._write_lock = engines.write_lock
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
        """Close every pooled connection (SQLite checkpoints its WAL when the last one closes)."""
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

    # -- runs -------------------------------------------------------------------------------

    @database_errors
    def create_run(self, run: Run) -> bool:
        """Insert a run; False when a run with that id already exists (redelivery).

        The run's transitions are stored with it; a run given without any gets one for its
        initial state at its creation time, so every stored history starts where the run began.
        """
        history = run.transitions or (Transition(state=run.state, at=run.created_at),)
        values = rows.run_values(run)
        values["error"] = self._redact(run.error) if run.error else run.error
        return self._insert_once(runs, values, {"id": run.id}, dependents=(
            transitions, [rows.transition_values(run.id, seq, t.state, t.at, self._redact(t.detail))
                          for seq, t in enumerate(history)]))

    @database_errors
    def get_run(self, run_id: str) -> Run | None:
        """One run with its transitions."""
        with self._read() as conn:
            found = self._load(conn, select(runs).where(runs.c.id == run_id))
        return found[0] if found else None

    @database_errors
    def transition(self, run_id: str, state: RunState, *, detail: str = "", url: str | None = None,
                   error: str | None = None) -> Run | None:
        """Move a run forward; None (and no change) when the move is not forward.

        The update only applies while the run is still in the state it was read in. Losing that
        race means another writer moved the run forward, so the move is re-checked against the
        new state; states only go forward, so this ends after a handful of rounds at most.
        """
        for _ in range(len(RunState)):
            with self._write() as conn:
                current = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar()
                if current is None or not RunState(current).can_move_to(state):
                    return None
                now = self._clock()
                values: dict[str, Any] = {"state": state.value, "updated_at": now}
                if url is not None:
                    values["url"] = url
                if error is not None:
                    values["error"] = self._redact(error)
                moved = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.state == current)
                                     .values(**values))
                if moved.rowcount != 1:
                    continue
                # The row lock taken by the update keeps other writers of this run waiting.
                seq = conn.execute(select(func.coalesce(func.max(transitions.c.seq) + 1, 0))
                                   .where(transitions.c.run_id == run_id)).scalar_one()
                conn.execute(insert(transitions).values(**rows.transition_values(run_id, seq, state, now,
                                                                                 self._redact(detail))))
                return self._load(conn, select(runs).where(runs.c.id == run_id))[0]
        return None

    @database_errors
    def update_run(self, run_id: str, *, parameters: Mapping[str, Any] | None = None,
                   url: str | None = None, plan: Mapping[str, Any] | None = None) -> Run | None:
        """Update details of a run without changing its state; None when there is no such run."""
        values: dict[str, Any] = {}
        if parameters is not None:
            values["parameters"] = rows.json_value(run_id, "parameters", parameters)
        if url is not None:
            values["url"] = url
        if plan is not None:
            values["plan"] = rows.json_value(run_id, "plan", plan)
        if not values:
            return self.get_run(run_id)
        with self._write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            found = self._load(conn, select(runs).where(runs.c.id == run_id))
        return found[0] if found else None

    @database_errors
    def list_runs(self, *, repo: str | None = None, pr: int | None = None, sha: str | None = None,
                  pipeline: str | None = None, state: RunState | None = None,
                  active: bool | None = None, limit: int = 200) -> list[Run]:
        """Runs matching every given filter, newest first.

        `active=True` keeps unfinished runs only, `active=False` finished ones only. Runs with the
        same creation time come in id order.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        conditions = [column == value for column, value in
                      ((runs.c.repo, repo), (runs.c.pr, pr), (runs.c.sha, sha), (runs.c.pipeline, pipeline))
                      if value is not None]
        if state is not None:
            conditions.append(runs.c.state == state.value)
        if active is not None:
            conditions.append(runs.c.state.in_(_ACTIVE if active else _FINISHED))
        query = (select(runs).where(*conditions)
                 .order_by(runs.c.created_at.desc(), runs.c.id).limit(limit))
        with self._read() as conn:
            return self._load(conn, query)

    def _load(self, conn: Connection, query: Any) -> list[Run]:
        """Runs of a query, in its order, with their transitions read in one query per chunk."""
        found = conn.execute(query).mappings().all()
        history: dict[str, list[RowMapping]] = {row["id"]: [] for row in found}
        ids = list(history)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            for t in conn.execute(select(transitions).where(transitions.c.run_id.in_(chunk))
                                  .order_by(transitions.c.run_id, transitions.c.seq)).mappings():
                history[t["run_id"]].append(t)
        return [rows.run_from_row(row, history[row["id"]]) for row in found]

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
