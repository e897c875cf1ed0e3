"""Guardrails on spending: concurrent runs per repository and pull request, and daily budgets.

A pull request's run (autorun, `/run`, a check's Re-run) takes a slot of its repository when it
starts building and gives it back when it ends, whatever the end (succeeded, failed, cancelled,
timed out, error). A run that finds no slot stays `queued`, its check showing its place in line;
when a slot frees the oldest waiting runs that fit are started again (`start_next`); a queued run
superseded (new head, PR closed, `/cancel`) is cancelled like any other and never runs. Runs
started in a UTC day count against the day's budgets (per repository, per pull request): beyond
them an automatic run ends `skipped` naming the budget and when it resets, and `/run` is answered
without running anything (`budget_refusal`). Deploys on merge are neither queued nor budgeted.
The limits are the default branch's `limits:` capped by the bot's settings, remembered per
repository whenever the bot reads them (`remember_limits`).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from handlers.context import HandlerContext
from handlers.messages.guardrails import budget_exhausted
from handlers.models import RunStart
from handlers.ports.store import Then
from handlers.queue_models import HOLDING_SLOT, BudgetRefusal, LimitScope, SlotClaim, SlotOutcome
from handlers.queue_view import LIMITS_SCOPE, MAX_ACTIVE, WAITING_SCOPE, limits_for
from handlers.run_models import Run, RunState, Trigger
from handlers.status_reporting import repo_of, report_check, report_pull
from pipeline_registry.limits import RunLimits, capped
from pipeline_registry.repo_config import RepoConfig


def takes_slot(run: Run) -> bool:
    """Whether `run` is held to the limits and budgets (a pull request's run, not a deploy)."""
    return run.trigger is not Trigger.DEPLOY and run.pr is not None


def day_of(moment: datetime) -> tuple[datetime, datetime]:
    """The UTC day `moment` falls in: its start, and when the next one starts (budgets reset)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    start = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def remember_limits(ctx: HandlerContext, repo: str, trusted: RepoConfig) -> RunLimits:
    """The limits of `trusted` (the default branch's configuration) capped by the bot's settings,
    remembered as the ones in effect for `repo`."""
    limits = capped(trusted.limits, ctx.policy.limits_ceiling)
    if ctx.store.get_external(LIMITS_SCOPE, repo) != (stored := json.dumps(limits.to_json(), sort_keys=True)):
        ctx.store.set_external(LIMITS_SCOPE, repo, stored)
    return limits


def claim(ctx: HandlerContext, run: Run, detail: str, then: Then) -> SlotClaim:
    """Ask the store for a slot for the queued `run` (moving it to building with `detail` when it
    gets one). A run that waits is marked and its check shows its place in line; a run beyond a
    budget is for the caller to end (it says which budget, `over_budget_text`)."""
    now = ctx.clock.now()
    answer = ctx.store.claim_slot(run.id, limits_for(ctx, run.repo), day_start=day_of(now)[0], detail=detail,
                                  then=then)
    if answer.outcome is SlotOutcome.WAITING:
        if ctx.store.get_external(WAITING_SCOPE, run.id) is None:
            ctx.store.set_external(WAITING_SCOPE, run.id, now.isoformat())
        ctx.log.info("run %s (%s) waits for a slot of %s: %s in line, %d running", run.id, run.pipeline,
                     run.repo, answer.position, answer.running)
        show_places(ctx, [answer.run or run])
    return answer


def over_budget_text(ctx: HandlerContext, run: Run, answer: SlotClaim) -> str:
    """Why a run beyond a day's budget does not start (its check's title and history)."""
    assert answer.budget is not None
    return budget_exhausted(BudgetRefusal(scope=answer.budget.scope, repo=run.repo, pr=run.pr,
                                          limit=answer.budget.limit, started=answer.budget.used, waiting=0,
                                          resets_at=day_of(ctx.clock.now())[1]))


def start_next(ctx: HandlerContext, repo: str) -> None:
    """A slot of `repo` may have freed: start again the oldest waiting runs that fit (their own
    claim decides), and show the others their new place in line."""
    active = [r for r in ctx.store.list_runs(repo=repo, active=True, limit=MAX_ACTIVE) if takes_slot(r)]
    line = sorted((r for r in active if r.state is RunState.QUEUED), key=lambda r: (r.created_at, r.id))
    if not line:
        return
    limits = limits_for(ctx, repo)
    holding = [r for r in active if r.state in HOLDING_SLOT]
    taken, by_pr = len(holding), Counter(r.pr for r in holding)
    moved_up = []
    for run in line:
        if taken < limits.concurrent_runs and by_pr[run.pr] < limits.concurrent_runs_per_pr:
            taken += 1
            by_pr[run.pr] += 1
            ctx.bus.publish(RunStart(run_id=run.id))
        elif ctx.store.get_external(WAITING_SCOPE, run.id) is not None:
            moved_up.append(run)
    show_places(ctx, moved_up)


def show_line(ctx: HandlerContext, repo: str) -> None:
    """Show every run waiting in `repo`'s line its place now (after a run left the line)."""
    show_places(ctx, [run for run in ctx.store.list_runs(repo=repo, state=RunState.QUEUED, limit=MAX_ACTIVE)
                      if takes_slot(run) and ctx.store.get_external(WAITING_SCOPE, run.id) is not None])


def show_places(ctx: HandlerContext, waiting: list[Run]) -> None:
    """Show waiting runs their place in line: each one's check, and each of their pull requests'
    comment once."""
    pulls: dict[tuple[str, int], Run] = {}
    for run in waiting:
        report_check(ctx, run)
        if run.pr is not None:
            pulls.setdefault((run.repo, run.pr), run)
    for (_, number), run in pulls.items():
        report_pull(ctx, repo_of(run), number, run.installation_id)


def budget_refusal(ctx: HandlerContext, repo: str, pr: int, count: int, limits: RunLimits) -> BudgetRefusal | None:
    """The budget that `count` more runs of pull request `pr` would go beyond today (runs started
    today and runs waiting to start both count), or None when they fit."""
    start, resets_at = day_of(ctx.clock.now())
    waiting = [r for r in ctx.store.list_runs(repo=repo, state=RunState.QUEUED, limit=MAX_ACTIVE) if takes_slot(r)]
    checks = ((LimitScope.PULL_REQUEST, limits.runs_per_pr_per_day, ctx.store.count_started(repo, since=start, pr=pr),
               sum(1 for r in waiting if r.pr == pr)),
              (LimitScope.REPOSITORY, limits.runs_per_day, ctx.store.count_started(repo, since=start), len(waiting)))
    for scope, limit, started, queued in checks:
        if started + queued + count > limit:
            return BudgetRefusal(scope=scope, repo=repo, pr=pr, limit=limit, started=started, waiting=queued,
                                 resets_at=resets_at)
    return None
