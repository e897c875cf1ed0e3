"""Vertex AI schedules through the real ScheduleServiceClient, against the fake Vertex AI."""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import aiplatform_v1
from kfp import compiler, dsl

from deploy.errors import DeployError
from deploy.schedules import Removal, VertexSchedules, make_schedule_client
from pipeline_registry.settings import ScheduleOptions
from tests.fakes.vertex import FakeVertexPipelines

State = aiplatform_v1.Schedule.State
AR_TEMPLATE = "https://europe-west4-kfp.pkg.dev/my-project/my-repo/hello-pipeline/latest"


@dsl.component(base_image="python:3.11-slim")
def say(text: str, times: int) -> str:
    return text * times


@dsl.pipeline(name="hello-pipeline")
def hello(text: str = "hi", times: int = 1):
    say(text=text, times=times)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compiled") / "hello-pipeline.yaml"
    compiler.Compiler().compile(hello, str(path))
    return path


@pytest.fixture
def vertex() -> Iterator[FakeVertexPipelines]:
    with FakeVertexPipelines() as fake:
        yield fake


def schedules(vertex: FakeVertexPipelines, removal: Removal = Removal.PAUSE) -> VertexSchedules:
    return VertexSchedules(make_schedule_client("europe-west4", vertex.endpoint), "my-project", "europe-west4",
                           pipeline_root="gs://my-bucket/root", service_account="runner@p.iam.gserviceaccount.com",
                           removal=removal)


def test_a_schedule_is_created_with_the_compiled_spec_and_parameters(vertex: FakeVertexPipelines,
                                                                     compiled: Path) -> None:
    name = schedules(vertex).apply("hello-pipeline", str(compiled),
                                   ScheduleOptions(cron="0 6 * * 1", time_zone="Europe/Paris"),
                                   parameters={"text": "hello", "times": 2})

    [schedule] = vertex.schedules.schedules
    assert (schedule.name, schedule.display_name, schedule.cron, schedule.state) == (
        name, "kfp-bot-hello-pipeline", "TZ=Europe/Paris 0 6 * * 1", State.ACTIVE)
    request = schedule.create_pipeline_job_request
    assert request.parent == "projects/my-project/locations/europe-west4"
    job = request.pipeline_job
    assert job.pipeline_spec["pipelineInfo"]["name"] == "hello-pipeline"
    assert dict(job.runtime_config.parameter_values) == {"text": "hello", "times": 2}
    assert job.runtime_config.gcs_output_directory == "gs://my-bucket/root"
    assert job.service_account == "runner@p.iam.gserviceaccount.com"


def test_the_next_deploy_updates_the_same_schedule(vertex: FakeVertexPipelines, compiled: Path) -> None:
    scheduler = schedules(vertex)
    first = scheduler.apply("hello-pipeline", str(compiled), ScheduleOptions(cron="0 6 * * *"), parameters={})
    second = scheduler.apply("hello-pipeline", AR_TEMPLATE, ScheduleOptions(cron="30 7 * * *", max_concurrent_runs=2),
                             parameters={"times": 3})

    [schedule] = vertex.schedules.schedules
    assert first == second == schedule.name
    assert (schedule.cron, schedule.max_concurrent_run_count) == ("TZ=Etc/UTC 30 7 * * *", 2)
    assert schedule.create_pipeline_job_request.pipeline_job.template_uri == AR_TEMPLATE
    assert len(vertex.schedules.requests("CreateSchedule")) == 1
    assert len(vertex.schedules.requests("UpdateSchedule")) == 1


def test_a_removed_schedule_is_paused_then_resumed_when_it_comes_back(vertex: FakeVertexPipelines,
                                                                      compiled: Path) -> None:
    scheduler = schedules(vertex)
    scheduler.apply("hello-pipeline", str(compiled), ScheduleOptions(cron="0 6 * * *"), parameters={})

    scheduler.remove("hello-pipeline")
    assert vertex.schedules.schedules[0].state == State.PAUSED
    scheduler.remove("hello-pipeline")  # again: already paused, nothing to do
    assert len(vertex.schedules.requests("PauseSchedule")) == 1

    scheduler.apply("hello-pipeline", str(compiled), ScheduleOptions(cron="0 8 * * *"), parameters={})
    [schedule] = vertex.schedules.schedules
    assert (schedule.state, schedule.cron) == (State.ACTIVE, "TZ=Etc/UTC 0 8 * * *")


def test_with_delete_removal_the_schedule_is_deleted(vertex: FakeVertexPipelines, compiled: Path) -> None:
    scheduler = schedules(vertex, Removal.DELETE)
    scheduler.apply("other-pipeline", str(compiled), ScheduleOptions(cron="0 1 * * *"), parameters={})
    scheduler.apply("hello-pipeline", str(compiled), ScheduleOptions(cron="0 6 * * *"), parameters={})

    scheduler.remove("hello-pipeline")

    assert [s.display_name for s in vertex.schedules.schedules] == ["kfp-bot-other-pipeline"]


def test_a_schedule_vertex_refuses_is_a_deploy_error_naming_the_pipeline(vertex: FakeVertexPipelines,
                                                                         compiled: Path) -> None:
    with pytest.raises(DeployError, match=r"hello-pipeline.*Invalid cron"):
        schedules(vertex).apply("hello-pipeline", str(compiled), ScheduleOptions(cron="every day"), parameters={})
    assert vertex.schedules.schedules == []
