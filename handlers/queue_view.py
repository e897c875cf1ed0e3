"""A waiting run's place in its repository's line, read from the store for its check and the API.

The store decides who starts (`Store.claim_slot`); this only shows where a queued run that was
refused a slot stands now: its position among the repository's queued runs (oldest first), how
many runs hold the repository's slots, and the limits in effect. Runs never refused a slot (just
created, about to start) and deploys have no spot.
"""

from __future__ import annotations

import json

from handlers.context import HandlerContext
from handlers.ports.store import Store
from handlers.queue_models import HOLDING_SLOT, QueueSpot
from handlers.run_models import Run, RunState, Trigger
from pipeline_registry.limits import LimitsConfig, RunLimits, capped

LIMITS_SCOPE = "repo-limits"
"""Store scope (`get_external`): repository → the limits in effect (JSON), last read from its default branch."""
WAITING_SCOPE = "run-waiting"
"""Store scope: run id → when it was first refused a slot (ISO 8601, UTC)."""
MAX_ACTIVE = 5000
"""How many active runs of one repository are looked at to place a run in line."""


def limits_for(ctx: HandlerContext, repo: str) -> RunLimits:
    """The limits in effect for `repo`: its default branch's `limits:` as last read (capped by the
    bot's settings), else the defaults capped the same way."""
    return stored_limits(ctx.store, repo, ctx.policy.limits_ceiling)


def stored_limits(store: Store, repo: str, ceiling: RunLimits) -> RunLimits:
    """`limits_for` from a store and the bot's ceiling (for the page, which has no handler context)."""
    stored = store.get_external(LIMITS_SCOPE, repo)
    limits = RunLimits.from_json(json.loads(stored)) if stored else None
    return limits or capped(LimitsConfig(), ceiling)


def queue_spot(ctx: HandlerContext, run: Run) -> QueueSpot | None:
    """Where `run` waits, or None when it is not waiting for a slot."""
    return place_in_line(ctx.store, run, ctx.policy.limits_ceiling)


def place_in_line(store: Store, run: Run, ceiling: RunLimits) -> QueueSpot | None:
    """`queue_spot` from a store and the bot's ceiling (for the page)."""
    if run.state is not RunState.QUEUED or run.trigger is Trigger.DEPLOY:
        return None
    if store.get_external(WAITING_SCOPE, run.id) is None:
        return None
    active = [r for r in store.list_runs(repo=run.repo, active=True, limit=MAX_ACTIVE)
              if r.trigger is not Trigger.DEPLOY]
    line = sorted((r for r in active if r.state is RunState.QUEUED), key=lambda r: (r.created_at, r.id))
    ids = [r.id for r in line]
    if run.id not in ids:
        return None
    holding = [r for r in active if r.state in HOLDING_SLOT]
    limits = stored_limits(store, run.repo, ceiling)
    return QueueSpot(repo=run.repo, pr=run.pr, position=ids.index(run.id) + 1, running=len(holding),
                     limit=limits.concurrent_runs, pr_running=sum(1 for r in holding if r.pr == run.pr),
                     pr_limit=limits.concurrent_runs_per_pr)
