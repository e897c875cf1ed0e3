"""The deploy step of a deploy run: upload the compiled template, then apply its schedule.

Called by `handlers.runs.build_finished` after a DEPLOY run compiled. The template is uploaded
with the commit as version, tagged with the commit and `latest`, with the repository, commit
and images recorded; then the `schedule:` of `settings.yaml` is created or updated (removed when
the section is gone). Both steps are idempotent, so a redelivered status deploys nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.context import HandlerContext
from handlers.ports.build import CompiledPackage
from handlers.run_models import Run
from kfp_bot_errors import KfpBotError
from pipeline_registry.errors import ConfigError
from pipeline_registry.repo_config import Target
from pipeline_registry.settings import PipelineSettings

LATEST_TAG = "latest"


class NoTemplateStore(KfpBotError):
    """A deploy run on a bot without a template store."""


def deploy_template(ctx: HandlerContext, run: Run, package: CompiledPackage, settings: PipelineSettings,
                    parameters: Mapping[str, Any], *, target: Target | None = None) -> str:
    """Upload the run's compiled pipeline and apply its schedule; the template's reference.

    `target` picks the store and scheduler (a `kfp` pipeline: a KFP pipeline version and recurring run).

    Raises a `KfpBotError` saying what is wrong (no store, upload refused, bad schedule).
    """
    templates, schedules = ctx.templates.for_target(target), ctx.schedules.for_target(target)
    if templates is None:
        raise NoTemplateStore("this bot has no template store to deploy to",
                              hint="set KFP_BOT_TEMPLATE_STORE (a folder, gs:// path or Artifact Registry URL)")
    metadata = {"repo": run.repo, "commit": run.sha, "pipeline": run.pipeline,
                "images": ",".join(package.images)}
    ref = templates.upload(run.pipeline, package, version=run.sha, tags=(run.sha, LATEST_TAG),
                               metadata=metadata)
    ctx.log.info("run %s: template of %s uploaded to %s", run.id, run.pipeline, ref)
    if schedules is None:
        if settings.schedule is not None:
            ctx.log.warning("run %s: %s asks for a schedule but no scheduler is configured (Vertex AI)",
                            run.id, settings.file)
        return ref
    if settings.schedule is None:
        schedules.remove(run.pipeline)
        return ref
    declared = {i.name for i in package.inputs}
    unknown = sorted(set(settings.schedule.parameters) - declared)
    if unknown:
        raise ConfigError(settings.file, f"schedule.parameters: {', '.join(unknown)} "
                          f"{'is not an input' if len(unknown) == 1 else 'are not inputs'} of the pipeline",
                          field="schedule.parameters",
                          hint=f"valid parameters: {', '.join(sorted(declared)) or 'none'}")
    # Vertex AI reads a template from Artifact Registry itself; other stores' copies it cannot
    # read, so the schedule embeds the compiled spec instead.
    template = ref if ref.startswith("https://") or target is Target.KFP else str(package.package_path)
    schedules.apply(run.pipeline, template, settings.schedule,
                    parameters={**parameters, **settings.schedule.parameters})
    return ref


def remove_schedules(ctx: HandlerContext, pipelines: list[str]) -> None:
    """Pause/delete the schedules of deleted pipelines (a no-op without a scheduler)."""
    # A deleted pipeline's target is gone with its files: every scheduler is asked.
    for name in pipelines:
        for port in ctx.schedules.every():
            try:
                port.remove(name)
                ctx.log.info("schedule of deleted pipeline %s removed", name)
            except KfpBotError as exc:
                ctx.log.error("could not remove the schedule of deleted pipeline %s: %s", name, exc)
