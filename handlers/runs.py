"""The life of a run: build its images, compile it, submit it, follow its state.

Each step is started by an event on the bus (`RunStart`, `BuildStatus`, `RunStatus`) and ends
by publishing the next one, so a step never waits for a build or a pipeline run to finish
inside one delivery. Synchronous backends (local builder, kfp.local) publish their outcome at
once; remote ones (Cloud Build, Vertex AI) report it later through their notifications.
Every step is idempotent: states only move forward, so a redelivered event changes nothing.
A step whose run is already past its start belongs to another event and does nothing, unless
this event is being resumed after its owner stopped halfway (`step_resumed`): then the step
runs again (builds and remote jobs have deterministic ids), and a local run that died with its
owner ends as `error`, never running twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from handlers import result_cache, run_queue, run_results
from handlers.context import HandlerContext, step_resumed, step_taken_over
from handlers.deploying import deploy_template
from handlers.messages.guardrails import dropped
from handlers.messages.results import gate_failure
from handlers.models import BuildStatus, EventKind, RepoRef, RunStart, RunStatus
from handlers.notifications import notify_change
from handlers.ports.build import BuildRequest, BuildState
from handlers.ports.run import RunRequest
from handlers.queue_models import SlotOutcome
from handlers.router import Router
from handlers.run_diffs import diff_run
from handlers.run_models import Run, RunState, Trigger
from handlers.status_reporting import report_run
from handlers.trusted import ServiceAccountRefused, run_settings
from kfp_bot_errors import IsolationUnavailable, KfpBotError
from pipeline_registry.models import ComponentPlan
from pipeline_registry.parameters import resolve_parameters
from pipeline_registry.repository import Repository

router = Router()

SUBMITTED_SCOPE = "run-submitted"
# run id -> when its `run.timeout` ends (ISO 8601, UTC); the reconcile pass stops it after that.
DEADLINE_SCOPE = "run-deadline"
"""Store scope (`get_external`) of runs the runner answered for: run id → the runner's URL or state."""

_BUILD_TO_RUN = {BuildState.SUCCEEDED: RunState.COMPILING, BuildState.SKIPPED: RunState.COMPILING,
                 BuildState.FAILED: RunState.FAILED}


@router.on(EventKind.RUN_START)
def start_run(event: RunStart, ctx: HandlerContext) -> None:
    """Build the run's images (or start building them)."""
    run = ctx.store.get_run(event.run_id)
    if run is None or run.state.terminal or run.state in (RunState.COMPILING, RunState.RUNNING):
        return
    if run.state is RunState.QUEUED and run_queue.takes_slot(run):
        moved = _take_slot(ctx, run)
    else:
        moved = move(ctx, run, RunState.BUILDING, "building images")
    if moved is None and not (run.state is RunState.BUILDING and step_resumed()):
        return  # another event started this run, and is building it
    run = moved or run
    repo_dir = checkout(ctx, run)
    components = components_to_build(run, repo_dir)
    outcome = ctx.builder.build(BuildRequest(run_id=run.id, repo=run.repo, sha=run.sha, pr=run.pr,
                                             pipeline=run.pipeline, repo_dir=repo_dir,
                                             components=components, base_sha=run.base_sha))
    if outcome.state is BuildState.STARTED:
        if outcome.url:
            ctx.store.update_run(run.id, url=outcome.url)
        return
    ctx.bus.publish(BuildStatus(run_id=run.id, state=_BUILD_TO_RUN[outcome.state],
                                detail=outcome.detail, url=outcome.url))


def _take_slot(ctx: HandlerContext, run: Run) -> Run | None:
    """Move a pull request's queued run to building when its repository has a slot for it; None
    when it waits in line (its check says where) or is beyond a day's budget (then it ends
    skipped, saying which budget and when it resets)."""
    answer = run_queue.claim(ctx, run, "building images", then=notify_change(ctx, run))
    if answer.outcome is SlotOutcome.OVER_BUDGET:
        reason = run_queue.over_budget_text(ctx, run, answer)
        move(ctx, answer.run or run, RunState.SKIPPED, reason, error=reason)
        return None
    if answer.outcome is not SlotOutcome.STARTED or answer.run is None:
        return None
    ctx.log.info("run %s (%s) is building: took a slot of %s (%d running)", run.id, run.pipeline, run.repo,
                 answer.running)
    report_run(ctx, answer.run)
    run_queue.show_line(ctx, run.repo)  # the runs behind it moved up
    return answer.run


@router.on(EventKind.BUILD_STATUS)
def build_finished(event: BuildStatus, ctx: HandlerContext) -> None:
    """After the images: compile with them, check parameters, submit the run."""
    run = ctx.store.get_run(event.run_id)
    if run is None or run.state.terminal:
        return
    if event.state is not RunState.COMPILING:
        move(ctx, run, event.state, event.detail or "image build failed", url=event.url,
             error=event.detail or "image build failed")
        return
    if run.state is RunState.RUNNING and step_resumed():
        submitted = ctx.store.get_external(SUBMITTED_SCOPE, run.id) is not None
        # A recorded submission is the backend's to finish (its events, reconcile), unless the
        # owner that submitted it is known to be gone: then ask where it is (a local run ended
        # with its owner). The run's URL says nothing here: it is the build's log until then.
        status = ctx.runner.run_status(run) if not submitted or step_taken_over() else None
        if submitted or status is not None:
            if status is not None and status.state.terminal:  # it ended while nobody listened
                ctx.bus.publish(RunStatus(run_id=run.id, state=status.state, detail=status.detail,
                                          url=status.url))
            return
        # A submission that never reached the backend (it was down): submit it again; runner
        # job ids are deterministic, so a submission that did arrive is found, not duplicated.
        resumed = True
    else:
        resumed = run.state is RunState.COMPILING and step_resumed()
    moved = run if resumed else move(ctx, run, RunState.COMPILING, event.detail or "compiling")
    if moved is None:
        return
    repo_dir = checkout(ctx, moved)
    try:
        repository = Repository.open(repo_dir)
        # Trusted keys (identity, target, compile limits) come from the default branch.
        options, config = run_settings(ctx, run, repository)
        package = ctx.compiler.compile(repo_dir, run.pipeline, repository.component_images(run.pipeline),
                                       run_dir(ctx, run) / "package", config=config, along=siblings(ctx, run),
                                       repo=run.repo)
        parameters = resolve_parameters(repository.settings(run.pipeline), dict(run.overrides),
                                        package.inputs)
        target = options.target or config.target_for(run.pipeline)
    except IsolationUnavailable as exc:
        move(ctx, moved, RunState.ERROR, "pull-request code is not executed on this machine", error=str(exc))
        return
    except ServiceAccountRefused as exc:
        move(ctx, moved, RunState.FAILED, "service account refused", error=str(exc))
        return
    except KfpBotError as exc:
        move(ctx, moved, RunState.FAILED, "could not compile", error=str(exc))
        return
    ctx.store.update_run(run.id, parameters=parameters)
    if options.gates:  # trusted: the default branch's gates, held when the run ends
        run_results.remember_gates(ctx.store, run.id, options.gates)
    # What the change does to the compiled pipeline, shown by every report from here on.
    diff_run(ctx, moved, repo_dir, package.package_path)
    if run.trigger is Trigger.DEPLOY:
        settings = repository.settings(run.pipeline)
        try:
            ref = deploy_template(ctx, moved, package, settings, parameters, target=target)
        except KfpBotError as exc:
            move(ctx, moved, RunState.FAILED, "could not deploy", error=str(exc))
            return
        if not settings.deploy.run:
            move(ctx, moved, RunState.SUCCEEDED, f"deployed {ref}")
            return
    executed = result_cache.fingerprint(package, parameters, target, options)
    earlier = result_cache.earlier_success(ctx, moved, executed)
    if earlier is not None:
        reused = run_results.reuse(ctx, moved, earlier)
        if reused is not None and not reused.passed:
            failure = gate_failure(reused)
            move(ctx, moved, RunState.FAILED, failure, url=earlier.url, error=failure)
            return
        move(ctx, moved, RunState.SUCCEEDED, f"unchanged since run {earlier.id} (succeeded)",
             url=earlier.url)
        return
    result_cache.remember(ctx, moved, executed)
    notes = "; ".join(getattr(package, "notes", ()))  # e.g. an SDK pin that fell back to a release that installs
    running = moved if moved.state is RunState.RUNNING else \
        move(ctx, moved, RunState.RUNNING, f"submitted ({notes})" if notes else "submitted")
    if running is None:
        return
    submission = ctx.runner.submit_run(RunRequest(run=running, package=package, parameters=parameters,
                                                  options=options, labels=labels_for(running),
                                                  target=target))
    ctx.store.set_external(SUBMITTED_SCOPE, run.id, submission.url or submission.state.value)
    if options.timeout and not submission.state.terminal:
        deadline = ctx.clock.now() + timedelta(seconds=options.timeout)
        ctx.store.set_external(DEADLINE_SCOPE, run.id, deadline.isoformat())
    if submission.state.terminal:
        ctx.bus.publish(RunStatus(run_id=run.id, state=submission.state, detail=submission.detail,
                                  url=submission.url))
    elif submission.url:
        updated = ctx.store.update_run(run.id, url=submission.url)
        if updated is not None:
            report_run(ctx, updated)


@router.on(EventKind.RUN_STATUS)
def run_status(event: RunStatus, ctx: HandlerContext) -> None:
    """A pipeline run moved: store and show it (duplicates and stale states are ignored)."""
    run = ctx.store.get_run(event.run_id)
    if run is None:
        ctx.log.warning("status %s for unknown run %s ignored", event.state.value, event.run_id)
        return
    state, detail = event.state, event.detail
    if state is RunState.SUCCEEDED and run.state.can_move_to(state):
        # Results are kept before the move, so the check, comment and Slack show them with it.
        results = run_results.conclude(ctx, run)
        if not results.passed:
            state, detail = RunState.FAILED, gate_failure(results)
    error = detail if state in (RunState.FAILED, RunState.ERROR) else None
    moved = move(ctx, run, state, detail, url=event.url, error=error)
    if moved is not None and moved.state is RunState.SUCCEEDED:
        result_cache.record_success(ctx, moved)
    if moved is None and run.state is event.state and step_taken_over():
        # Its owner stored the state and may have stopped before showing it: show it (a report
        # is idempotent: the check run is found by its external id and updated in place).
        report_run(ctx, run)


def move(ctx: HandlerContext, run: Run, state: RunState, detail: str = "", *,
         url: str | None = None, error: str | None = None) -> Run | None:
    """Move a run forward (its notification queued with the change), then report it; None when
    the move was stale or a duplicate."""
    moved = ctx.store.transition(run.id, state, detail=detail, url=url, error=error, then=notify_change(ctx, run))
    if moved is not None:
        ctx.log.info("run %s (%s) is %s%s", run.id, run.pipeline, state.value,
                     f": {detail}" if detail else "")
        report_run(ctx, moved)
        if moved.state.terminal and run_queue.takes_slot(moved):
            run_queue.start_next(ctx, moved.repo)  # a slot may have freed
    return moved


def cancel(ctx: HandlerContext, runs: Iterable[Run], reason: str) -> list[Run]:
    """Cancel unfinished runs on their backend and move them to `cancelled` with `reason`; the
    runs moved. A backend that cannot cancel is logged and the run still ends as cancelled here
    (the bot stops following it), so the PR never waits on a run nobody wants."""
    cancelled = []
    for run in runs:
        try:
            ctx.runner.cancel_run(run)
        except KfpBotError as exc:
            ctx.log.error("could not cancel run %s: %s", run.id, exc)
        # A run still in line never started: say it was dropped, not stopped.
        moved = move(ctx, run, RunState.CANCELLED, dropped(reason) if run.state is RunState.QUEUED else reason)
        if moved is not None:
            cancelled.append(moved)
    return cancelled


def checkout(ctx: HandlerContext, run: Run) -> Path:
    """The run's commit checked out (from the source cache)."""
    repo = RepoRef(full_name=run.repo, clone_url=run.clone_url or "")
    return ctx.source.checkout(repo, run.clone_url or "", run.sha, base_sha=run.base_sha)


def siblings(ctx: HandlerContext, run: Run) -> list[str]:
    """The pipelines of the run's other runs at its commit that have not reached compiling yet (a
    pull request's, a `/run all`'s): the compiler may compile them with this one, in one batch."""
    return sorted({other.pipeline for other in ctx.store.list_runs(repo=run.repo, sha=run.sha, active=True)
                   if other.id != run.id and other.state in (RunState.QUEUED, RunState.BUILDING)})


def run_dir(ctx: HandlerContext, run: Run) -> Path:
    """Scratch space of one run (compiled package, local run outputs)."""
    path = ctx.work_dir / "runs" / run.id
    path.mkdir(parents=True, exist_ok=True)
    return path


def components_to_build(run: Run, repo_dir: Path) -> tuple[ComponentPlan, ...]:
    """The run's components with their images; rebuild flags come from the run's plan."""
    repository = Repository.open(repo_dir)
    images = repository.component_images(run.pipeline)
    planned = {c.path: c.rebuild for c in run.plan.components}
    plans = []
    for component in repository.components_of(run.pipeline):
        image = images.get(component.path)
        tag = image.rsplit(":", 1)[-1] if image else None
        plans.append(ComponentPlan(component=component, image=image, content_hash=tag,
                                   rebuild=bool(image) and planned.get(component.path, False)))
    return tuple(plans)


def labels_for(run: Run) -> dict[str, str]:
    """Labels that identify a run on the execution backend."""
    labels = {"kfp-bot-repo": run.repo, "kfp-bot-commit": run.sha, "kfp-bot-pipeline": run.pipeline,
              "kfp-bot-trigger": run.trigger.value, "kfp-bot-run": run.id}
    if run.pr is not None:
        labels["kfp-bot-pr"] = str(run.pr)
    return labels


def fail_run(ctx: HandlerContext, run_id: str, reason: str) -> None:
    """Mark a run as failed by the bot itself (used by the bus when a step crashes)."""
    run = ctx.store.get_run(run_id)
    if run is not None and not run.state.terminal:
        move(ctx, run, RunState.ERROR, reason, error=reason)
