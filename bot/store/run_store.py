"""Runs and their transitions, and the outbox rows a state change causes, in one transaction.

A run's state only moves forward, by compare-and-set (`transition`). What a state change causes
(its notification, which the Slack notifier and other subscribers read; any next step) is
written to the outbox in the transaction that stores the change (`then`), so a crash can never
keep the change and lose what it causes, nor queue it without the change: a step resumed after
a crash finds the state already moved, moves nothing and queues nothing a second time.
A run's `updated_at` is the time of its last state change, which `Run.duration_seconds` uses;
`update_run` leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import RowMapping, func, insert, select, update
from sqlalchemy.engine import Connection

from bot.store import rows
from bot.store.errors import database_errors
from bot.store.outbox import OutboxStore
from bot.store.tables import runs, transitions
from handlers.ports.store import Then
from handlers.run_models import Run, RunPlan, RunState, Transition

_ACTIVE = tuple(s.value for s in RunState if not s.terminal)
_FINISHED = tuple(s.value for s in RunState if s.terminal)
# Databases cap the number of bound parameters; transitions of long listings are read in chunks.
_CHUNK = 500

class RunStore(OutboxStore):
    """Run methods of `SqlStore` (a mixin: it needs `_write`, `_read`, `_insert_once`, `_redact`)."""

    _redact: Callable[[str], str]
    _insert_once: Callable[..., bool]
    _read: Callable[[], AbstractContextManager[Connection]]

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
                   error: str | None = None, then: Then | None = None) -> Run | None:
        """Move a run forward; None (and no change, nothing queued) when the move is not forward.

        `then(run)` gives the events the change causes; they are queued in the outbox in the
        same transaction (their rows inherit the run's repository) and the store's listeners
        are woken once it committed. The update only applies while the run is still in the
        state it was read in. Losing that race means another writer moved the run forward, so
        the move is re-checked against the new state; states only go forward, so this ends
        after a handful of rounds at most.
        """
        for _ in range(len(RunState)):
            with self._write() as conn:
                current = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar()
                if current is None or not RunState(current).can_move_to(state):
                    return None
                done = self._move_in(conn, run_id, RunState(current), state, detail=detail, url=url,
                                     error=error, then=then)
                if done is None:
                    continue
            run, queued = done
            self._queued(queued)
            return run
        return None

    def _move_in(self, conn: Connection, run_id: str, current: RunState, state: RunState, *, detail: str = "",
                 url: str | None = None, error: str | None = None,
                 then: Then | None = None) -> tuple[Run, tuple[int, ...]] | None:
        """Within the write transaction `conn`: move the run from `current` to `state` with its
        transition and the events `then` gives; the moved run and the outbox rows queued (to be
        announced once committed), or None when the run is no longer in `current`."""
        now = self._clock()
        values: dict[str, Any] = {"state": state.value, "updated_at": now}
        if url is not None:
            values["url"] = url
        if error is not None:
            values["error"] = self._redact(error)
        moved = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.state == current.value)
                             .values(**values))
        if moved.rowcount != 1:
            return None
        # The row lock taken by the update keeps other writers of this run waiting.
        seq = conn.execute(select(func.coalesce(func.max(transitions.c.seq) + 1, 0))
                           .where(transitions.c.run_id == run_id)).scalar_one()
        conn.execute(insert(transitions).values(**rows.transition_values(run_id, seq, state, now,
                                                                         self._redact(detail))))
        run = self._load(conn, select(runs).where(runs.c.id == run_id))[0]
        caused = tuple(then(run)) if then is not None else ()
        queued = self._enqueue(conn, caused, now, parent_repo=run.repo) if caused else ()
        return run, queued

    @database_errors
    def update_run(self, run_id: str, *, parameters: Mapping[str, Any] | None = None,
                   url: str | None = None, plan: RunPlan | None = None) -> Run | None:
        """Update details of a run without changing its state; None when there is no such run."""
        values: dict[str, Any] = {}
        if parameters is not None:
            values["parameters"] = rows.json_value(run_id, "parameters", parameters)
        if url is not None:
            values["url"] = url
        if plan is not None:
            values["plan"] = rows.json_value(run_id, "plan", plan.to_json())
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
