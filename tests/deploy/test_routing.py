"""RoutingRunner: each run goes to the runner of its pipeline's target, picked by `ByTarget`."""

from __future__ import annotations

from dataclasses import replace

from deploy.compiler import CompiledPipeline
from deploy.runners.routing import RoutingRunner
from deploy.runners.vertex import VertexRunner
from handlers.models import RunState
from handlers.targets import ByTarget
from pipeline_registry.repo_config import Target
from tests.deploy.test_vertex import client, fake, make_run, package, request, runner  # noqa: F401 (fixtures)
from tests.fakes.vertex import FakeVertexPipelines


def test_a_pipeline_naming_no_target_runs_on_the_default_runner(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    routing = RoutingRunner(ByTarget({Target.VERTEX: runner}, default=Target.VERTEX))
    submission = routing.submit_run(request(make_run(), package))
    assert submission.state is RunState.RUNNING
    assert len(fake.requests("CreatePipelineJob")) == 1


def test_a_target_without_a_runner_fails_the_run_naming_the_setting(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    routing = RoutingRunner(ByTarget({Target.VERTEX: runner}, default=Target.VERTEX))
    submission = routing.submit_run(replace(request(make_run(), package), target=Target.KFP))
    assert submission.state is RunState.FAILED
    assert "targets 'kfp', which this bot is not configured for (set KFP_BOT_KFP_HOST)" in submission.detail
    assert fake.requests("CreatePipelineJob") == []
