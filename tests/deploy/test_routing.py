"""RoutingRunner: each run goes to the runner of its pipeline's target, picked by `ByTarget`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from kfp import compiler

from deploy.compiler import CompiledPipeline, load_package
from deploy.runners.routing import RoutingRunner
from deploy.runners.vertex import VertexRunner, make_pipeline_client
from handlers.run_models import RunState
from handlers.targets import ByTarget
from pipeline_registry.repo_config import Target
from tests.deploy.test_vertex import FAST_RETRY, PROJECT, REGION, ROOT, demo, make_run, request
from tests.fakes.vertex import FakeVertexPipelines


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    path = tmp_path_factory.mktemp("compiled") / "demo-pipeline.yaml"
    compiler.Compiler().compile(demo, str(path))
    return load_package(path, "demo-pipeline")


@pytest.fixture
def vertex() -> Iterator[tuple[FakeVertexPipelines, VertexRunner]]:
    """A Vertex AI runner on the fake; the bot's only runner, and its default target."""
    with FakeVertexPipelines(project_number=987654321) as fake:
        client = make_pipeline_client(REGION, fake.endpoint)
        yield fake, VertexRunner(client, PROJECT, REGION, pipeline_root=ROOT, retry=FAST_RETRY)
        client.transport.close()


def test_a_pipeline_naming_no_target_runs_on_the_default_runner(
        vertex: tuple[FakeVertexPipelines, VertexRunner], compiled: CompiledPipeline) -> None:
    fake, runner = vertex
    routing = RoutingRunner(ByTarget({Target.VERTEX: runner}, default=Target.VERTEX))
    submission = routing.submit_run(request(make_run(), compiled))
    assert submission.state is RunState.RUNNING
    assert len(fake.requests("CreatePipelineJob")) == 1


def test_a_target_without_a_runner_fails_the_run_naming_the_setting(
        vertex: tuple[FakeVertexPipelines, VertexRunner], compiled: CompiledPipeline) -> None:
    fake, runner = vertex
    routing = RoutingRunner(ByTarget({Target.VERTEX: runner}, default=Target.VERTEX))
    submission = routing.submit_run(replace(request(make_run(), compiled), target=Target.KFP))
    assert submission.state is RunState.FAILED
    assert "targets 'kfp', which this bot is not configured for (set KFP_BOT_KFP_HOST)" in submission.detail
    assert fake.requests("CreatePipelineJob") == []
