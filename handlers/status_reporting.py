"""Showing the state of runs after every change: the pipeline's check, the head's aggregate
check and the one PR comment.

Reporting is best effort towards GitHub: a failing report is logged with the run id and never
undoes or blocks the state change that caused it (the store and the page still show it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from handlers.context import HandlerContext
from handlers.messages.checks import NoteLike, head_report, run_report
from handlers.messages.pull_comment import pull_report
from handlers.models import Event, RepoRef
from handlers.queue_view import queue_spot
from handlers.run_diffs import load_diff
from handlers.run_models import FailureStage, Run
from handlers.run_results import load_results
from kfp_bot_errors import KfpBotError

_current_event: ContextVar[Event | None] = ContextVar("kfp_bot_handled_event", default=None)


def repo_of(run: Run) -> RepoRef:
    """The repository reference of a stored run (clone URL as stored)."""
    return RepoRef(full_name=run.repo, clone_url=run.clone_url or "")


def report_run(ctx: HandlerContext, run: Run, *, note: NoteLike = "") -> None:
    """Update the run's check, the aggregate check of its commit and its PR's comment."""
    report_check(ctx, run)
    report_head(ctx, repo_of(run), run.sha, run.installation_id, note=note)
    if run.pr is not None:
        report_pull(ctx, repo_of(run), run.pr, run.installation_id)


def report_check(ctx: HandlerContext, run: Run) -> None:
    """Only the run's own check (or commit status), with its results once it ended and its
    pipeline diff once it has one."""

    def check() -> None:
        results = load_results(ctx.store, run.id) if run.state.terminal else None
        ctx.reporter.run_changed(run_report(run, results, load_diff(ctx.store, run.id),
                                                 queue=queue_spot(ctx, run), pages=ctx.pages))

    safely(ctx, run.id, "check", check)


def report_head(ctx: HandlerContext, repo: RepoRef, sha: str, installation_id: int | None,
                *, note: NoteLike = "") -> None:
    """The aggregate `kfp-bot` check of one commit, from every run of that commit."""
    runs = ctx.store.list_runs(repo=repo.full_name, sha=sha)
    latest = latest_per_pipeline(runs)
    safely(ctx, sha, "aggregate check",
           lambda: ctx.reporter.head_summary(head_report(repo, sha, latest, note, installation_id,
                                                             pages=ctx.pages)))


def report_pull(ctx: HandlerContext, repo: RepoRef, number: int, installation_id: int | None) -> None:
    """The PR's one comment, with the latest run of every pipeline, their pipeline diffs and a
    waiting run's place in line."""
    runs = ctx.store.list_runs(repo=repo.full_name, pr=number)
    latest = latest_per_pipeline(runs)

    def comment() -> None:
        results = {r.id: found for r in latest if r.state.terminal
                   and (found := load_results(ctx.store, r.id)) is not None}
        diffs = {r.id: diff for r in latest if (diff := load_diff(ctx.store, r.id)) is not None}
        queues = {r.id: spot for r in latest if (spot := queue_spot(ctx, r)) is not None}
        ctx.reporter.pull_summary(pull_report(repo, number, latest, installation_id, results, diffs,
                                              pages=ctx.pages, queues=queues))

    safely(ctx, f"{repo.full_name}#{number}", "PR comment", comment)


def latest_per_pipeline(runs: list[Run]) -> list[Run]:
    """The newest run of each pipeline (runs come newest first), sorted by pipeline name."""
    latest: dict[str, Run] = {}
    for run in runs:
        latest.setdefault(run.pipeline, run)
    return [latest[name] for name in sorted(latest)]


def safely(ctx: HandlerContext, subject: str, what: str, action: Callable[[], object]) -> None:
    """Run a report action; log (never raise) when the remote side fails.

    While a webhook event is handled (`handling`), the failure is also kept against its delivery:
    a report GitHub refused is a result nobody sees otherwise.
    """
    try:
        action()
    except KfpBotError as exc:
        ctx.log.error("could not update the %s of %s: %s", what, subject, exc)
        _record_current(ctx, f"could not update the {what} of {subject}: {exc}")
    except Exception as exc:  # a reporter outage must not lose the state change
        ctx.log.exception("could not update the %s of %s", what, subject)
        _record_current(ctx, f"could not update the {what} of {subject}: {type(exc).__name__}: {exc}")


@contextmanager
def handling(event: Event) -> Iterator[None]:
    """Mark `event` as the one being handled in this thread, for failures reported on the way."""
    token = _current_event.set(event)
    try:
        yield
    finally:
        _current_event.reset(token)


def _record_current(ctx: HandlerContext, reason: str) -> None:
    event = _current_event.get()
    if event is not None:
        record_failure(ctx, event, reason)


def record_failure(ctx: HandlerContext, event: Event, reason: str) -> None:
    """Keep the failure of a webhook event queryable (`/api/deliveries?failed=1`) by its delivery
    id: GitHub saw a 202, so without this the reason would reach only the log. Never raises."""
    delivery_id = getattr(event, "delivery_id", None)
    if not delivery_id:
        return
    try:
        ctx.store.record_delivery_failure(delivery_id, event.kind.value, FailureStage.HANDLER, reason)
    except Exception:  # the store may be what failed; the log line below still has the reason
        ctx.log.exception("could not record the failure of delivery %s", delivery_id)
