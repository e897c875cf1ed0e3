"""Claiming one of a repository's run slots, atomically, for any number of workers and instances.

A queued run of a pull request may start when its repository has fewer runs holding a slot
(building, compiling, running) than its limit, its pull request fewer than the per-PR limit, no
older queued run comes first, and neither day's budget is used up. Deciding that and moving the
run to `building` are one transaction, taken under a lock per repository: on SQLite the write
transaction itself (`BEGIN IMMEDIATE`: one writer at a time), on PostgreSQL a transaction-level
advisory lock on the repository's name. Two workers can therefore never both take the last slot,
and a day's budget is never overspent. Deploy runs take no slot and count against no budget.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from bot.store.errors import database_errors
from bot.store.tables import runs, transitions
from handlers.ports.store import Then
from handlers.queue_models import HOLDING_SLOT, BudgetUse, LimitScope, SlotClaim, SlotOutcome
from handlers.run_models import Run, RunState, Trigger
from pipeline_registry.limits import RunLimits

_HOLDING = tuple(s.value for s in HOLDING_SLOT)


class SlotMixin:
    """`claim_slot` for `SqlStore` (which provides `_write`, `_move_in`, `_queued`, `_load`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    _queued: Callable[[tuple[int, ...]], None]
    _move_in: Callable[..., tuple[Run, tuple[int, ...]] | None]
    _load: Callable[..., list[Run]]

    @database_errors
    def claim_slot(self, run_id: str, limits: RunLimits, *, day_start: datetime, detail: str = "",
                   then: Then | None = None) -> SlotClaim:
        """Move the queued run `run_id` to building if a slot is free for it, in one transaction.

        The line is the repository's queued runs, oldest first; walking it, each run whose day
        budgets are not used up takes a free slot (repository and pull request limits) in turn,
        so a run starts only when every older run that could start has been given a slot first.
        Budgets count the runs that started building since `day_start`. `then(run)` gives the
        events the move causes, queued with it.
        """
        with self._write() as conn:
            row = conn.execute(select(runs.c.repo, runs.c.pr, runs.c.state).where(runs.c.id == run_id)).first()
            if row is None:
                return SlotClaim(SlotOutcome.NOT_QUEUED)
            _lock_repository(conn, row.repo)
            state = RunState(conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar_one())
            if state is not RunState.QUEUED:
                return SlotClaim(SlotOutcome.NOT_QUEUED, run=self._load(conn, select(runs).where(runs.c.id == run_id))[0])
            claim = _decide(conn, run_id, row.repo, row.pr, limits, day_start)
            if claim.outcome is not SlotOutcome.STARTED:
                current = self._load(conn, select(runs).where(runs.c.id == run_id))[0]
                return SlotClaim(claim.outcome, run=current, position=claim.position, running=claim.running,
                                 held_by=claim.held_by, budget=claim.budget)
            done = self._move_in(conn, run_id, RunState.QUEUED, RunState.BUILDING, detail=detail, then=then)
            if done is None:  # cannot happen under the lock; said plainly if it ever does
                return SlotClaim(SlotOutcome.NOT_QUEUED)
            moved, queued = done
        self._queued(queued)
        return SlotClaim(SlotOutcome.STARTED, run=moved, running=claim.running + 1)

    @database_errors
    def count_started(self, repo: str, *, since: datetime, pr: int | None = None) -> int:
        """Runs of `repo` (of its pull request `pr`) that started building since `since`, deploys
        not counted: what a day's budget has spent."""
        conditions = [runs.c.repo == repo, runs.c.trigger != Trigger.DEPLOY.value,
                      transitions.c.state == RunState.BUILDING.value, transitions.c.at >= since]
        if pr is not None:
            conditions.append(runs.c.pr == pr)
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(
                runs.join(transitions, transitions.c.run_id == runs.c.id)).where(*conditions)).scalar_one())


def _lock_repository(conn: Connection, repo: str) -> None:
    """Serialise slot claims of one repository until the transaction ends (SQLite's write
    transaction already excludes every other writer)."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"kfp-bot-slots:{repo}".encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _decide(conn: Connection, run_id: str, repo: str, pr: int | None, limits: RunLimits,
            day_start: datetime) -> SlotClaim:
    """The verdict for `run_id`, from the repository's runs as they are under the lock."""
    not_deploy = runs.c.trigger != Trigger.DEPLOY.value
    holding = Counter(r.pr for r in conn.execute(
        select(runs.c.pr).where(runs.c.repo == repo, runs.c.state.in_(_HOLDING), not_deploy)))
    line = conn.execute(select(runs.c.id, runs.c.pr).where(
        runs.c.repo == repo, runs.c.state == RunState.QUEUED.value, not_deploy)
        .order_by(runs.c.created_at, runs.c.id)).all()
    started = Counter(r.pr for r in conn.execute(
        select(runs.c.pr).select_from(runs.join(transitions, transitions.c.run_id == runs.c.id))
        .where(runs.c.repo == repo, not_deploy, transitions.c.state == RunState.BUILDING.value,
               transitions.c.at >= day_start)))
    running = sum(holding.values())
    # The budgets as they stand (a verdict of OVER_BUDGET must not count runs that may never start).
    over = _over_budget(limits, sum(started.values()), started[pr] if pr is not None else 0, pr)
    if over is not None:
        return SlotClaim(SlotOutcome.OVER_BUDGET, running=running, budget=over)
    taken, taken_by_pr, spent, spent_by_pr = running, Counter(holding), sum(started.values()), Counter(started)
    for position, (queued_id, queued_pr) in enumerate(line, start=1):
        if _over_budget(limits, sum(started.values()), started[queued_pr], queued_pr) is not None:
            continue  # it will not start (its budget is used up): it takes no slot
        repo_full = taken >= limits.concurrent_runs or spent >= limits.runs_per_day
        pr_full = queued_pr is not None and (taken_by_pr[queued_pr] >= limits.concurrent_runs_per_pr
                                             or spent_by_pr[queued_pr] >= limits.runs_per_pr_per_day)
        if queued_id == run_id:
            if not repo_full and not pr_full:
                return SlotClaim(SlotOutcome.STARTED, running=running)
            held_by = LimitScope.PULL_REQUEST if pr_full and not repo_full else LimitScope.REPOSITORY
            return SlotClaim(SlotOutcome.WAITING, position=position, running=running, held_by=held_by)
        if not repo_full and not pr_full:
            taken, spent = taken + 1, spent + 1
            taken_by_pr[queued_pr] += 1
            spent_by_pr[queued_pr] += 1
    return SlotClaim(SlotOutcome.NOT_QUEUED, running=running)


def _over_budget(limits: RunLimits, repo_used: int, pr_used: int, pr: int | None) -> BudgetUse | None:
    if pr is not None and pr_used >= limits.runs_per_pr_per_day:
        return BudgetUse(LimitScope.PULL_REQUEST, limits.runs_per_pr_per_day, pr_used)
    if repo_used >= limits.runs_per_day:
        return BudgetUse(LimitScope.REPOSITORY, limits.runs_per_day, repo_used)
    return None
