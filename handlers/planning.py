"""From a pull request to runs: who may run, what the change affects, which runs to create.

Shared by the pull request handler (autorun) and the comment handler (`/run`, `/ok-to-run`,
`/plan`), so both decide the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from handlers.clone_urls import check_clone_url
from handlers.context import HandlerContext, step_resumed
from handlers.messages.checks import NoteLike
from handlers.models import PullRequestRef, RepoRef, RunStart
from handlers.run_models import Run, RunPlan, RunState, Trigger, run_id_for
from handlers.status_reporting import report_check, report_head, report_pull
from kfp_bot_errors import KfpBotError
from pipeline_registry.models import PipelineChange, PipelinePlan, Plan
from pipeline_registry.planner import plan_change
from pipeline_registry.repo_config import RepoConfig, load_repo_config
from pipeline_registry.repository import Repository
from pipeline_registry.snapshot import merge_base
from pipeline_registry.trusted import TrustedChange

WAITING = "a maintainer must comment /ok-to-run"


@dataclass(frozen=True)
class Trust:
    """Whether a PR's head may run without a maintainer's approval, and why."""

    may_run: bool
    reason: str


def may_command(ctx: HandlerContext, repo: RepoRef, user: str, installation_id: int | None,
                allowed_users: Iterable[str] = ()) -> bool:
    """Write access to the repository, or listed in KFP_BOT_ALLOWED_USERS or in `allowed_users`
    (the default branch's `.kfp-bot.yaml`, never the pull request's)."""
    if user in ctx.policy.allowed_users or user in tuple(allowed_users):
        return True
    return ctx.permissions.can_write(repo, user, installation_id)


def evaluate_trust(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef,
                   installation_id: int | None, allowed_users: Iterable[str] = ()) -> Trust:
    """Forks and non-collaborators wait for `/ok-to-run` on their exact head commit."""
    if ctx.store.is_approved(repo.full_name, pull.number, pull.head_sha):
        return Trust(True, "approved with /ok-to-run")
    if pull.is_fork(repo):
        return Trust(False, f"the head is in a fork: {WAITING}")
    try:
        if may_command(ctx, repo, pull.author, installation_id, allowed_users):
            return Trust(True, "author has write access")
    except KfpBotError as exc:
        return Trust(False, f"could not check @{pull.author}'s permission ({exc}); {WAITING}")
    return Trust(False, f"@{pull.author} does not have write access: {WAITING}")


def checkout_and_plan(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef) -> tuple[Path, Plan, RepoConfig]:
    """Check out the head (with the base) and plan the change; errors are `KfpBotError`s."""
    check_clone_url(pull.head_clone_url or repo.clone_url, ctx.policy)
    repo_dir = ctx.source.checkout(repo, pull.head_clone_url or repo.clone_url, pull.head_sha,
                                   base_sha=pull.base_sha)
    # Like GitHub's "Files changed": against the merge base, not the base branch's current tip.
    plan = plan_change(repo_dir, merge_base(repo_dir, pull.base_sha, pull.head_sha), pull.head_sha)
    config = load_repo_config(_read(repo_dir / ".kfp-bot.yaml"))
    return repo_dir, plan, config


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def runnable(plan: Plan) -> list[PipelinePlan]:
    """Pipelines of a plan that can run (deleted ones cannot)."""
    return [p for p in plan.pipelines if p.change is not PipelineChange.DELETED]


def create_runs(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef, installation_id: int | None,
                pipelines: Iterable[PipelinePlan], *, trigger: Trigger, triggered_by: str | None,
                id_parts: tuple[object, ...], skip_reasons: Mapping[str, str] | None = None,
                overrides: Mapping[str, str] | None = None,
                trusted_changes: Sequence[TrustedChange] = ()) -> list[Run]:
    """Create one run per pipeline (queued, or skipped with a reason) and start the queued ones.

    Run ids are deterministic, so a redelivered event finds its runs already created and starts
    nothing twice. `trusted_changes` (trusted keys the head changes) are kept with each run's
    plan, for the line the PR comment shows about them.
    """
    now = ctx.clock.now()
    created: list[Run] = []
    skip_reasons = skip_reasons or {}
    for pipeline in pipelines:
        reason = skip_reasons.get(pipeline.name)
        run = Run(
            id=run_id_for(repo.full_name, pull.number, pull.head_sha, pipeline.name, trigger.value, *id_parts),
            repo=repo.full_name, pr=pull.number, sha=pull.head_sha, base_sha=pull.base_sha,
            pipeline=pipeline.name, trigger=trigger, triggered_by=triggered_by,
            state=RunState.QUEUED, created_at=now, updated_at=now,
            overrides=dict(overrides or {}), plan=RunPlan.of(pipeline, trusted_changes),
            clone_url=pull.head_clone_url or repo.clone_url, installation_id=installation_id,
        )
        if not ctx.store.create_run(run):
            created.extend(unstarted(ctx, run.id))
            continue
        if reason:
            run = ctx.store.transition(run.id, RunState.SKIPPED, detail=reason) or run
        created.append(run)
    for run in created:
        report_check(ctx, run)
        if run.state is RunState.QUEUED:
            ctx.bus.publish(RunStart(run_id=run.id))
    return created


def unstarted(ctx: HandlerContext, run_id: str) -> list[Run]:
    """The existing run `run_id` when this event is resumed after its owner stopped between
    creating the run and queuing its start (they are not one transaction); else nothing."""
    if not step_resumed():
        return []
    run = ctx.store.get_run(run_id)
    return [run] if run is not None and run.state is RunState.QUEUED else []


def supersede(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef, reason: str,
              *, keep_sha: str | None) -> list[Run]:
    """Cancel the PR's unfinished runs of other heads (all of them when keep_sha is None)."""
    from handlers.runs import cancel

    active = ctx.store.list_runs(repo=repo.full_name, pr=pull.number, active=True)
    return cancel(ctx, [run for run in active if keep_sha is None or run.sha != keep_sha], reason)


def report_all(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef, installation_id: int | None,
               note: NoteLike = "") -> None:
    """Refresh the aggregate check of the head and the PR comment."""
    report_head(ctx, repo, pull.head_sha, installation_id, note=note)
    report_pull(ctx, repo, pull.number, installation_id)


def pipelines_named(repo_dir: Path, names: Iterable[str], plan: Plan) -> list[PipelinePlan]:
    """Plans for pipelines chosen by name (`/run x`), affected by the change or not."""
    repository = Repository.open(repo_dir)
    chosen = []
    for name in names:
        repository.pipeline(name)  # UnknownPipelineError lists the valid names
        chosen.append(plan.get(name) or PipelinePlan(name=name, change=PipelineChange.MODIFIED, reasons=()))
    return chosen
