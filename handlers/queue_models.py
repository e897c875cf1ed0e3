"""The run queue's answers: whether a run got a slot, waits in line, or is beyond a day's budget.

A run of a pull request (autorun or `/run`) takes one of its repository's slots while it is
building, compiling or running; a run that finds no free slot stays `queued` and waits in line
(oldest first). Runs started in a UTC day count against the day's budgets. The store decides
atomically (`Store.claim_slot`); these are the plain values it answers with.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from handlers.run_models import Run, RunState

HOLDING_SLOT = (RunState.BUILDING, RunState.COMPILING, RunState.RUNNING)
"""States in which a run holds one of its repository's slots."""


class SlotOutcome(enum.Enum):
    """What claiming a slot for a queued run came to."""

    STARTED = "started"          # it got a slot and moved to building
    WAITING = "waiting"          # no slot is free for it (or older runs come first): it stays queued
    OVER_BUDGET = "over_budget"  # a day's budget is used up: it must not start
    NOT_QUEUED = "not_queued"    # it is not queued any more (started, cancelled, gone)


class LimitScope(enum.Enum):
    """What a limit or a budget counts: the whole repository, or one pull request."""

    REPOSITORY = "repository"
    PULL_REQUEST = "pull_request"


@dataclass(frozen=True)
class BudgetUse:
    """A day's budget that is used up: which one, its size and how many runs started today."""

    scope: LimitScope
    limit: int
    used: int


@dataclass(frozen=True)
class SlotClaim:
    """The store's answer to `claim_slot`.

    `run` is the run as it is now (moved to building when STARTED; None when it does not exist).
    For WAITING, `position` is its place in the repository's line (1 = next), `running` the runs
    holding the repository's slots and `held_by` the limit that keeps it waiting. For OVER_BUDGET,
    `budget` says which budget.
    """

    outcome: SlotOutcome
    run: Run | None = None
    position: int = 0
    running: int = 0
    held_by: LimitScope | None = None
    budget: BudgetUse | None = None


@dataclass(frozen=True)
class QueueSpot:
    """Where a waiting run stands, as its check and the API show it: its place in its
    repository's line (1 = next), the runs holding the repository's slots, and the limits."""

    repo: str
    pr: int | None
    position: int
    running: int
    limit: int
    pr_running: int = 0
    pr_limit: int = 0

    @property
    def held_by(self) -> LimitScope:
        """The limit that keeps the run waiting: its pull request's, when the repository has room."""
        if self.pr is not None and self.running < self.limit and self.pr_running >= self.pr_limit:
            return LimitScope.PULL_REQUEST
        return LimitScope.REPOSITORY

    def to_json(self) -> dict[str, object]:
        """The spot as `/api/runs` shows it."""
        return {"position": self.position, "running": self.running, "limit": self.limit,
                "pr_running": self.pr_running, "pr_limit": self.pr_limit, "held_by": self.held_by.value}


@dataclass(frozen=True)
class BudgetRefusal:
    """A day's budget a request for runs would go beyond: which, its size, how many runs started
    today and are waiting to start, and when the day (UTC) ends."""

    scope: LimitScope
    repo: str
    pr: int | None
    limit: int
    started: int
    waiting: int
    resets_at: datetime
