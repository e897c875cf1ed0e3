"""Deploys to a KFP endpoint against the fake KFP API over HTTP: pipeline versions and recurring runs.
(No `from __future__ import annotations`: kfp reads the component's annotations.)
"""
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import compiler, dsl

from deploy.compiler import CompiledPipeline, load_package
from deploy.errors import DeployError
from deploy.kfp_deploy.pipeline_store import KfpPipelineStore
from deploy.kfp_deploy.recurring_runs import KfpRecurringRuns, kfp_cron
from deploy.runners.kfp_calls import RetryPolicy
from pipeline_registry.settings import ScheduleOptions
from tests.deploy.test_kfp_endpoint import ARGO_WORKFLOW
from tests.fakes.kfp_api import Api, FakeKfp

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.02, request_timeout=5.0)
SHA1 = "1" * 40
SHA2 = "2" * 40
META = {"repo": "octo/monorepo", "commit": SHA1, "pipeline": "head-pose-pipeline", "images": "img:1"}


@dsl.component(base_image="python:3.11-slim")
def train(epochs: int) -> str:
    return str(epochs)


@dsl.pipeline(name="head-pose-pipeline")
def head_pose(label: str, epochs: int = 3):
    train(epochs=epochs)


@pytest.fixture(scope="module")
def kfp2_package(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    path = tmp_path_factory.mktemp("kfp2") / "head-pose-pipeline.yaml"
    compiler.Compiler().compile(head_pose, str(path))
    return load_package(path, "head-pose-pipeline")


@pytest.fixture
def argo_package(tmp_path: Path) -> CompiledPipeline:
    path = tmp_path / "head-pose-pipeline.yaml"
    path.write_text(ARGO_WORKFLOW)
    return load_package(path, "head-pose-pipeline")


@pytest.fixture
def fake() -> Iterator[FakeKfp]:
    with FakeKfp() as server:
        yield server


def upload(store: KfpPipelineStore, package: CompiledPipeline, sha: str) -> str:
    return store.upload("head-pose-pipeline", package, version=sha, tags=(sha, "latest"), metadata=META)


def test_kfp2_package_becomes_a_pipeline_with_one_version_per_commit(fake: FakeKfp, kfp2_package) -> None:
    store = KfpPipelineStore(fake.url, retry=FAST)
    first = upload(store, kfp2_package, SHA1)
    pipeline = fake.pipeline_routes.pipeline_named("head-pose-pipeline")
    assert pipeline is not None and [v.name for v in pipeline.versions] == [SHA1]
    assert first == f"{fake.url}/#/pipelines/details/{pipeline.id}/version/{pipeline.versions[0].id}"
    assert pipeline.versions[0].spec["pipelineInfo"]["name"] == "head-pose-pipeline"
    assert "octo/monorepo" in pipeline.versions[0].description

    assert upload(store, kfp2_package, SHA1) == first  # redelivered deploy: the same version
    second = upload(store, kfp2_package, SHA2)
    assert second != first
    assert [v.name for v in pipeline.versions] == [SHA1, SHA2]
    assert len(fake.pipeline_routes.pipelines) == 1


def test_argo_package_goes_through_v1beta1(fake: FakeKfp, argo_package) -> None:
    store = KfpPipelineStore(fake.url, retry=FAST)
    ref = upload(store, argo_package, SHA1)
    again = upload(store, argo_package, SHA1)
    pipeline = fake.pipeline_routes.pipeline_named("head-pose-pipeline")
    # v1beta1's upload creates a first version named after the pipeline, then the commit's version.
    assert [v.name for v in pipeline.versions] == ["head-pose-pipeline", SHA1]
    assert ref == again and ref.endswith(f"/version/{pipeline.versions[1].id}")
    assert pipeline.versions[1].spec["kind"] == "Workflow"
    assert any(r.path == "/apis/v1beta1/pipelines/upload_version" for r in fake.requests)


def test_kfp2_package_on_a_v1_only_endpoint_is_refused(kfp2_package) -> None:
    with FakeKfp(apis=(Api.V1BETA1,)) as v1_only:
        with pytest.raises(DeployError, match="serves only the Kubeflow Pipelines v1 API"):
            upload(KfpPipelineStore(v1_only.url, retry=FAST), kfp2_package, SHA1)


def test_recurring_run_created_updated_and_removed(fake: FakeKfp, kfp2_package) -> None:
    store = KfpPipelineStore(fake.url, retry=FAST)
    schedules = KfpRecurringRuns(fake.url, retry=FAST)
    ref1 = upload(store, kfp2_package, SHA1)
    daily = ScheduleOptions(cron="0 6 * * *", parameters={"label": "nightly"})
    rid = schedules.apply("head-pose-pipeline", ref1, daily, parameters={"label": "nightly", "epochs": 3})
    [created] = fake.pipeline_routes.recurring_runs(Api.V2BETA1)
    assert created.id == rid and created.name == "kfp-bot-head-pose-pipeline" and created.enabled
    assert created.body["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * *"
    assert created.body["runtime_config"]["parameters"] == {"label": "nightly", "epochs": 3}
    assert fake.experiment_named("head-pose-pipeline").id == created.body["experiment_id"]

    # Same deploy again: nothing changes.
    assert schedules.apply("head-pose-pipeline", ref1, daily, parameters={"label": "nightly", "epochs": 3}) == rid
    assert [r.id for r in fake.pipeline_routes.recurring_runs()] == [rid]

    # New commit and cron: the recurring run now runs the new version.
    ref2 = upload(store, kfp2_package, SHA2)
    hourly = ScheduleOptions(cron="0 * * * *")
    schedules.apply("head-pose-pipeline", ref2, hourly, parameters={"label": "x"})
    [updated] = fake.pipeline_routes.recurring_runs()
    version2 = fake.pipeline_routes.pipeline_named("head-pose-pipeline").versions[1].id
    assert updated.body["pipeline_version_reference"]["pipeline_version_id"] == version2
    assert updated.body["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"

    # Schedule removed: paused, then resumed by the next deploy that asks for it.
    schedules.remove("head-pose-pipeline")
    [paused] = fake.pipeline_routes.recurring_runs()
    assert not paused.enabled
    schedules.apply("head-pose-pipeline", ref2, hourly, parameters={"label": "x"})
    assert fake.pipeline_routes.recurring_runs()[0].enabled


def test_removal_can_delete(fake: FakeKfp, kfp2_package) -> None:
    from deploy.schedules import Removal

    ref = upload(KfpPipelineStore(fake.url, retry=FAST), kfp2_package, SHA1)
    schedules = KfpRecurringRuns(fake.url, retry=FAST, removal=Removal.DELETE)
    schedules.apply("head-pose-pipeline", ref, ScheduleOptions(cron="5 4 * * 1"), parameters={"label": "a"})
    schedules.remove("head-pose-pipeline")
    assert fake.pipeline_routes.recurring_runs() == []


def test_argo_recurring_run_is_a_v1beta1_job(fake: FakeKfp, argo_package) -> None:
    ref = upload(KfpPipelineStore(fake.url, retry=FAST), argo_package, SHA1)
    schedules = KfpRecurringRuns(fake.url, retry=FAST)
    schedules.apply("head-pose-pipeline", ref, ScheduleOptions(cron="0 6 * * *"), parameters={"epochs": 5})
    [job] = fake.pipeline_routes.recurring_runs(Api.V1BETA1)
    assert job.name == "kfp-bot-head-pose-pipeline"
    assert job.body["pipeline_spec"]["parameters"] == [{"name": "epochs", "value": "5"}]
    schedules.remove("head-pose-pipeline")
    assert not fake.pipeline_routes.recurring_runs(Api.V1BETA1)[0].enabled


def test_cron_and_reference_errors_say_what_to_do(fake: FakeKfp) -> None:
    assert kfp_cron(ScheduleOptions(cron="0 6 * * *"), "p") == "0 0 6 * * *"
    with pytest.raises(DeployError, match="UTC"):
        kfp_cron(ScheduleOptions(cron="0 6 * * *", time_zone="Europe/Paris"), "p")
    with pytest.raises(DeployError, match="5 fields"):
        kfp_cron(ScheduleOptions(cron="0 0 6 * * *"), "p")
    with pytest.raises(DeployError, match="not a KFP pipeline version"):
        KfpRecurringRuns(fake.url, retry=FAST).apply("p", "/tmp/p.yaml", ScheduleOptions(cron="0 6 * * *"),
                                                     parameters={})
