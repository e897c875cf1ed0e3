"""The reconcile pass: ask the backends where every unfinished run really is.

Build and run notifications (Cloud Build's `cloud-builds` topic, pipeline state events) can be
lost or arrive while the bot is down; a run would then wait forever for an event that never
comes. This pass, called periodically (`POST /tasks/reconcile`) and on start-up, looks at every
run the store still thinks is active and publishes the event that was lost: a `BuildStatus` for
a build that finished, a `RunStatus` for a pipeline run that finished, a fresh `RunStart` or
`BuildStatus(COMPILING)` for a run stuck before its backend ever heard of it. Runs waiting in
their repository's line (`handlers.run_queue`) are started when a slot is free for them.

It never moves a run itself: it only publishes events, and the handlers apply forward-only
transitions, so it is safe to run concurrently with the events it stands in for (a duplicate
is a no-op). A run with a step still queued or owned in the outbox is left alone: its owner
is alive, or its step will be taken over once the lease expires.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.context import HandlerContext
from handlers.messages.rendering import format_duration
from handlers.models import BuildStatus, Event, RunStart, RunStatus
from handlers.ports.build import BuildOutcome, BuildState
from handlers.queue_view import WAITING_SCOPE
from handlers.run_models import Run, RunState
from handlers.run_queue import start_next, takes_slot
from handlers.runs import DEADLINE_SCOPE

DEFAULT_STUCK_AFTER = timedelta(minutes=15)
"""A queued or compiling run unchanged this long lost the event that drives it."""

DEFAULT_LOST_AFTER = timedelta(hours=1)
"""A building or running run its backend has never heard of for this long was never started."""

MAX_RUNS = 10_000

_BUILD_TO_RUN = {BuildState.SUCCEEDED: RunState.COMPILING, BuildState.SKIPPED: RunState.COMPILING,
                 BuildState.FAILED: RunState.FAILED}


class Finding(enum.Enum):
    """What the pass concluded about one run (the report counts each)."""

    IN_PROGRESS = "in_progress"
    BUILD_FINISHED = "builds_finished"
    RUN_FINISHED = "runs_finished"
    RESUMED = "resumed"
    LOST = "lost"
    TIMED_OUT = "timed_out"
    UNKNOWN = "unknown"
    ERROR = "errors"


@dataclass(frozen=True)
class ReconcileReport:
    """Counts of one pass.

    `checked`: active runs looked at. `builds_finished` / `runs_finished`: status events published
    for builds and pipeline runs that had finished. `resumed`: stuck runs whose step was started
    again. `lost`: runs the backend never heard of, ended as errors. `timed_out`: runs past their
    `run.timeout`, cancelled on their backend and ended failed. `unknown`: runs the backend
    does not know yet (left for a later pass). `errors`: backend look-ups or publishes that
    failed (retried next pass). `in_progress`: runs still going.
    """

    checked: int = 0
    in_progress: int = 0
    builds_finished: int = 0
    runs_finished: int = 0
    resumed: int = 0
    lost: int = 0
    timed_out: int = 0
    unknown: int = 0
    errors: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts as `/tasks/reconcile` answers them (every field, in order)."""
        return dataclasses.asdict(self)


def reconcile(ctx: HandlerContext, *, stuck_after: timedelta = DEFAULT_STUCK_AFTER,
              lost_after: timedelta = DEFAULT_LOST_AFTER) -> ReconcileReport:
    """Publish the lost events of every active run; counts of what was found.

    A store failure (listing the runs) propagates: the caller answers "unavailable". A failure
    for one run (a backend look-up, a publish) is logged with the run id, counted in `errors`,
    and the pass goes on with the others; the next pass tries again.
    """
    runs = ctx.store.list_runs(active=True, limit=MAX_RUNS)
    found: Counter[Finding] = Counter()
    for run in runs:
        try:
            if ctx.store.run_has_work(run.id):
                found[Finding.IN_PROGRESS] += 1
                continue
            finding = _reconcile_run(ctx, run, stuck_after, lost_after)
        except Exception as exc:  # one backend's failure must not stop the pass for the others
            ctx.log.error("reconcile: could not check run %s (%s, %s): %s: %s", run.id, run.pipeline,
                          run.state.value, type(exc).__name__, exc)
            finding = Finding.ERROR
        found[finding] += 1
    # Runs waiting in line get a slot that freed while nobody was listening (a crash between a run's
    # end and the start of the next): the line of every repository with waiting runs moves on.
    # Only runs refused a slot wait in line; a queued run never asked yet is its own RunStart's
    # (still in the outbox, or resumed above once stuck), so it is not started a second way here.
    waiting = {run.repo for run in runs if run.state is RunState.QUEUED and takes_slot(run)
               and ctx.store.get_external(WAITING_SCOPE, run.id)}
    for repo in sorted(waiting):
        try:
            start_next(ctx, repo)
        except Exception as exc:  # the next pass tries again
            ctx.log.error("reconcile: could not move the line of %s on: %s: %s", repo, type(exc).__name__, exc)
    report = ReconcileReport(checked=len(runs), **{f.value: found[f] for f in Finding})
    if report.checked:
        ctx.log.info("reconcile: %s", ", ".join(f"{k} {v}" for k, v in report.to_json().items() if v))
    return report


def _reconcile_run(ctx: HandlerContext, run: Run, stuck_after: timedelta, lost_after: timedelta) -> Finding:
    age = ctx.clock.now() - run.updated_at
    if run.state is RunState.BUILDING:
        return _building(ctx, run, ctx.builder.build_status(run), age >= lost_after)
    if run.state is RunState.RUNNING:
        return _running(ctx, run, age, lost_after)
    if age < stuck_after or (run.state is RunState.QUEUED and ctx.store.get_external(WAITING_SCOPE, run.id)):
        return Finding.IN_PROGRESS  # a run waiting in line is started by `start_next` when a slot frees
    if run.state is RunState.COMPILING:
        _publish(ctx, run, BuildStatus(run_id=run.id, state=RunState.COMPILING,
                                       detail="resumed by reconcile"), "compile again")
    else:
        _publish(ctx, run, RunStart(run_id=run.id), "start again")
    return Finding.RESUMED


def _building(ctx: HandlerContext, run: Run, outcome: BuildOutcome | None, overdue: bool) -> Finding:
    if outcome is None:
        if not overdue:
            return Finding.UNKNOWN
        # The process died between "building" and starting the build: build again (builds have
        # a deterministic identity, so a build that does exist is not started twice).
        _publish(ctx, run, RunStart(run_id=run.id), "its builder knows no build: build again")
        return Finding.RESUMED
    state = _BUILD_TO_RUN.get(outcome.state)
    if state is None:
        return Finding.IN_PROGRESS
    detail = outcome.detail or ("image build failed" if state is RunState.FAILED else "images built")
    _publish(ctx, run, BuildStatus(run_id=run.id, state=state, detail=detail, url=outcome.url),
             f"build {outcome.state.value}")
    return Finding.BUILD_FINISHED


def _running(ctx: HandlerContext, run: Run, age: timedelta, lost_after: timedelta) -> Finding:
    status = ctx.runner.run_status(run)
    if status is None:
        if age < lost_after:
            return Finding.UNKNOWN
        minutes = int(lost_after.total_seconds() // 60)
        reason = (f"the pipeline backend has no record of this run {minutes} minutes after it was "
                  f"submitted; start it again with /run {run.pipeline}")
        _publish(ctx, run, RunStatus(run_id=run.id, state=RunState.ERROR, detail=reason), "lost")
        return Finding.LOST
    if not status.state.terminal:
        return _stop_if_overdue(ctx, run)
    _publish(ctx, run, RunStatus(run_id=run.id, state=status.state, detail=status.detail, url=status.url),
             f"run {status.state.value}")
    return Finding.RUN_FINISHED


def _stop_if_overdue(ctx: HandlerContext, run: Run) -> Finding:
    """A run past its `run.timeout` is cancelled on its backend and ends failed, saying why."""
    deadline = ctx.store.get_external(DEADLINE_SCOPE, run.id)
    if deadline is None or ctx.clock.now() < datetime.fromisoformat(deadline):
        return Finding.IN_PROGRESS
    ctx.runner.cancel_run(run)
    started = next((t.at for t in reversed(run.transitions) if t.state is RunState.RUNNING), None)
    took = f" after {format_duration((ctx.clock.now() - started).total_seconds())}" if started else ""
    _publish(ctx, run, RunStatus(run_id=run.id, state=RunState.FAILED, detail=(
        f"stopped{took}: the run went past its time limit (run.timeout in settings.yaml)")), "overdue")
    return Finding.TIMED_OUT


def _publish(ctx: HandlerContext, run: Run, event: Event, why: str) -> None:
    ctx.log.info("reconcile: run %s (%s) was %s: %s, publishing %s", run.id, run.pipeline,
                 run.state.value, why, event.key)
    ctx.bus.publish(event)
