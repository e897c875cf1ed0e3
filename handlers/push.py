"""`push` events to a deploy branch: deploy every pipeline the pushed commits changed.

The push is planned like a pull request (`before..after`; a new branch deploys every pipeline),
and each affected pipeline gets one DEPLOY run on the pushed commit: built with the commit's
images, compiled, uploaded to the template store and scheduled (`handlers.deploying`), shown as
a check on the commit. Pipelines the push deleted get their schedules removed. Run ids derive
from (repository, commit, pipeline, "deploy"), so a redelivered push deploys nothing twice.
"""

from __future__ import annotations

from pathlib import Path

from handlers.clone_urls import check_clone_url
from handlers.context import HandlerContext
from handlers.deploying import remove_schedules
from handlers.messages.checks import head_note, plan_failed
from handlers.models import EventKind, PushEvent, RunStart
from handlers.planning import runnable, unstarted
from handlers.router import Router
from handlers.run_models import Run, RunPlan, RunState, Trigger, run_id_for
from handlers.status_reporting import record_failure, report_check, report_head
from kfp_bot_errors import KfpBotError
from pipeline_registry.models import ComponentPlan, PipelineChange, PipelinePlan, Plan
from pipeline_registry.planner import plan_change
from pipeline_registry.repository import Repository

router = Router()

ZERO_SHA = "0" * 40
NEW_BRANCH_REASON = "the branch was created: every pipeline is deployed"


@router.on(EventKind.PUSH)
def on_push(event: PushEvent, ctx: HandlerContext) -> None:
    """Plan the push and start one deploy run per affected pipeline."""
    repo, installation = event.repo, event.installation_id
    try:
        check_clone_url(repo.clone_url, ctx.policy)
        repo_dir = ctx.source.checkout(repo, repo.clone_url, event.after, base_sha=_base(event))
        plan = plan_push(repo_dir, event)
    except KfpBotError as exc:
        ctx.log.error("cannot plan the push of %s to %s (%s): %s", event.after, event.ref, event.delivery_id, exc)
        record_failure(ctx, event, f"cannot plan the push of {event.after} to {event.ref}: {exc}")
        report_head(ctx, repo, event.after, installation, note=plan_failed(str(exc)))
        return
    pipelines = runnable(plan)
    deleted = [p.name for p in plan.pipelines if p.change is PipelineChange.DELETED]
    remove_schedules(ctx, deleted)
    created = create_deploy_runs(ctx, event, pipelines)
    ctx.log.info("push %s to %s: %d deploy run(s) created, %d deleted pipeline(s)", event.after[:7], event.ref,
                 len(created), len(deleted))
    report_head(ctx, repo, event.after, installation, note=head_note(deleted=deleted))


def plan_push(repo_dir: Path, event: PushEvent) -> Plan:
    """What the pushed commits changed; for a new branch, every pipeline at `after`."""
    base = _base(event)
    if base is not None:
        return plan_change(repo_dir, base, event.after)
    repository = Repository.open(repo_dir)
    try:
        plans = tuple(PipelinePlan(name=name, change=PipelineChange.ADDED, reasons=(),
                                   components=_all_components(repository, name))
                      for name in sorted(repository.pipelines()))
    finally:
        repository.close()
    return Plan(base=event.after, head=event.after, pipelines=plans)


def _all_components(repository: Repository, pipeline: str) -> tuple[ComponentPlan, ...]:
    images = repository.component_images(pipeline)
    plans = []
    for component in repository.components_of(pipeline):
        image = images.get(component.path)
        plans.append(ComponentPlan(component=component, image=image,
                                   content_hash=image.rsplit(":", 1)[-1] if image else None, rebuild=bool(image)))
    return tuple(plans)


def create_deploy_runs(ctx: HandlerContext, event: PushEvent, pipelines: list[PipelinePlan]) -> list[Run]:
    """One queued DEPLOY run per pipeline on the pushed commit, started; redeliveries add none."""
    now = ctx.clock.now()
    created: list[Run] = []
    for pipeline in pipelines:
        run = Run(id=run_id_for(event.repo.full_name, event.after, pipeline.name, Trigger.DEPLOY.value),
                  repo=event.repo.full_name, pr=None, sha=event.after, base_sha=_base(event),
                  pipeline=pipeline.name, trigger=Trigger.DEPLOY, triggered_by=event.pusher or None,
                  state=RunState.QUEUED, created_at=now, updated_at=now, plan=RunPlan.of(pipeline),
                  clone_url=event.repo.clone_url, installation_id=event.installation_id)
        created.extend([run] if ctx.store.create_run(run) else unstarted(ctx, run.id))
    for run in created:
        report_check(ctx, run)
        ctx.bus.publish(RunStart(run_id=run.id))
    return created


def _base(event: PushEvent) -> str | None:
    return None if event.before == ZERO_SHA else event.before
