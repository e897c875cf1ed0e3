"""`pull_request` events: plan every new head and run the affected pipelines.

opened / synchronize / reopened / ready_for_review: remember the head, cancel the runs of older
heads (queued ones are dropped from the line), check the head out, plan it against the base and create one run per affected pipeline.
Draft PRs, `autorun: false` or an `autorun` rule the PR does not meet (a label, paths), forks
and outside contributors get the plan (skipped runs saying why) but no run. labeled: a label an
`autorun.label` waits for starts the runs it held. closed: cancel what is still going.
"""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.messages.checks import head_note, plan_failed
from handlers.messages.pull_comment import waiting_for_approval
from handlers.models import EventKind, PullRequestAction, PullRequestEvent, PullRequestRef
from handlers.planning import WAITING, checkout_and_plan, create_runs, evaluate_trust, report_all, runnable, supersede
from handlers.router import Router
from handlers.run_models import RunState, Trigger, run_id_for
from handlers.run_queue import remember_limits
from handlers.status_reporting import record_failure, safely
from handlers.trusted import TrustedView, review, show_changes
from kfp_bot_errors import KfpBotError
from pipeline_registry.autorun import autorun_hold
from pipeline_registry.models import PipelinePlan, Plan
from pipeline_registry.repo_config import RepoConfig

router = Router()


@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.OPENED)
@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.SYNCHRONIZE)
@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.REOPENED)
@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.READY_FOR_REVIEW)
def new_head(event: PullRequestEvent, ctx: HandlerContext) -> None:
    """Plan the head and start (or hold) a run per affected pipeline."""
    repo, pull, installation = event.repo, event.pull, event.installation_id
    # The compile of the runs this head may start then finds the interpreters the repository's last
    # compile used, kfp imported while the head is checked out and planned (unused, they end).
    ctx.compiler.warm_up(repo.full_name)
    ctx.store.save_pull(repo, pull, installation)
    supersede(ctx, repo, pull, f"superseded by {pull.head_sha[:7]}", keep_sha=pull.head_sha)
    planned = _plan_and_review(ctx, event)
    if planned is None:
        return
    plan, pipelines, view = planned
    skip = _skip_reasons(ctx, event, pipelines, view.config)
    created = create_runs(ctx, repo, pull, installation, pipelines, trigger=Trigger.AUTORUN,
                          triggered_by=pull.author, id_parts=(), skip_reasons=skip,
                          trusted_changes=view.changes)
    show_changes(ctx, repo, pull.head_sha, view, installation)
    if created and any(WAITING in reason for reason in skip.values()):
        safely(ctx, f"{repo.full_name}#{pull.number}", "reply", lambda: ctx.reporter.reply(
            repo, pull.number, waiting_for_approval(pull.author, pull.head_sha,
                                                             [p.name for p in pipelines]), installation))
    deleted = [p.name for p in plan.pipelines if p not in pipelines]
    report_all(ctx, repo, pull, installation, note=head_note(deleted=deleted))


@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.LABELED)
def labeled(event: PullRequestEvent, ctx: HandlerContext) -> None:
    """A label that an `autorun.label` waits for: start the runs of this head it held.

    GitHub sends `labeled` after `opened` for each label a pull request is created with, in
    either order of processing here: a pipeline whose autorun run exists and was not held is
    left alone, one not planned yet gets the very run `opened` would create (same id), and one
    held gets a run of its own."""
    repo, pull, installation = event.repo, event.pull, event.installation_id
    planned = _plan_and_review(ctx, event)
    if planned is None:
        return
    _, pipelines, view = planned
    waiting = [p for p in pipelines if view.config.autorun_for(p.name).label == event.label]
    skip = _skip_reasons(ctx, event, waiting, view.config)
    ready = [p for p in waiting if p.name not in skip]
    if not ready:
        ctx.log.info("label %r on %s#%s starts no run", event.label, repo.full_name, pull.number)
        return
    ctx.store.save_pull(repo, pull, installation)
    held = {p.name for p in ready if _autorun_run_state(ctx, repo.full_name, pull, p.name) is RunState.SKIPPED}
    fresh = [p for p in ready if _autorun_run_state(ctx, repo.full_name, pull, p.name) is None]
    for group, id_parts in ((fresh, ()), ([p for p in ready if p.name in held], ("label", event.label))):
        if group:
            create_runs(ctx, repo, pull, installation, group, trigger=Trigger.AUTORUN, triggered_by=event.sender,
                        id_parts=id_parts, trusted_changes=view.changes)
    report_all(ctx, repo, pull, installation)


def _plan_and_review(ctx: HandlerContext, event: PullRequestEvent
                     ) -> tuple[Plan, list[PipelinePlan], TrustedView] | None:
    """The head's plan, its runnable pipelines and the default branch's view of them (autorun,
    allowed users, limits and identities: the default branch's, not the PR's); None when the
    head cannot be planned, which the head's check then says."""
    repo, pull = event.repo, event.pull
    try:
        repo_dir, plan, _ = checkout_and_plan(ctx, repo, pull)
        pipelines = runnable(plan)
        view = review(ctx, repo, repo_dir, [p.name for p in pipelines])
        remember_limits(ctx, repo.full_name, view.config)
        return plan, pipelines, view
    except KfpBotError as exc:
        ctx.log.error("cannot plan %s#%s at %s: %s", repo.full_name, pull.number, pull.head_sha, exc)
        record_failure(ctx, event, f"cannot plan {repo.full_name}#{pull.number} at {pull.head_sha}: {exc}")
        report_all(ctx, repo, pull, event.installation_id, note=plan_failed(str(exc)))
        return None


def _autorun_run_state(ctx: HandlerContext, repo: str, pull: PullRequestRef, pipeline: str) -> RunState | None:
    run = ctx.store.get_run(run_id_for(repo, pull.number, pull.head_sha, pipeline, Trigger.AUTORUN.value))
    return None if run is None else run.state


def _skip_reasons(ctx: HandlerContext, event: PullRequestEvent, pipelines: list[PipelinePlan],
                  config: RepoConfig) -> dict[str, str]:
    names = [p.name for p in pipelines]
    if not names:
        return {}
    if event.pull.draft:
        return {name: "draft pull request: planned, not run (mark it ready for review to run)"
                for name in names}
    trust = evaluate_trust(ctx, event.repo, event.pull, event.installation_id, config.allowed_users)
    if not trust.may_run:
        return {name: trust.reason for name in names}
    holds = {p.name: autorun_hold(config.autorun_for(p.name), p.name, labels=event.pull.labels,
                                  paths=[reason.path for reason in p.reasons]) for p in pipelines}
    return {name: hold for name, hold in holds.items() if hold is not None}


@router.on(EventKind.PULL_REQUEST, action=PullRequestAction.CLOSED)
def closed(event: PullRequestEvent, ctx: HandlerContext) -> None:
    """Cancel every unfinished run of a closed (or merged) pull request."""
    ctx.store.save_pull(event.repo, event.pull, event.installation_id)
    supersede(ctx, event.repo, event.pull, "pull request closed", keep_sha=None)
