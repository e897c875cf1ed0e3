"""A finished Vertex AI job's results, read through the real `PipelineServiceClient` from the fake
Vertex AI's `job_detail.task_details`: the metrics artifacts' numbers, each artifact once."""
# No `from __future__ import annotations`: kfp reads the components' annotations as types.

import pytest
from google.cloud import aiplatform_v1
from kfp import compiler, dsl
from kfp.dsl import ClassificationMetrics, Dataset, Metrics, Output

from deploy.compiler import CompiledPipeline, load_package
from deploy.runners.vertex import VertexRunner
from deploy.runners.vertex_job import job_id_for
from deploy.runners.vertex_results import job_results
from tests.deploy.test_vertex import client, fake, make_run, request, runner  # noqa: F401 (fixtures)
from tests.fakes.vertex import FakeVertexPipelines


@dsl.component(base_image="python:3.11-slim")
def train(data: Output[Dataset], metrics: Output[Metrics]) -> None:
    metrics.log_metric("loss", 0.2)


@dsl.component(base_image="python:3.11-slim")
def evaluate(metrics: Output[Metrics], matrix: Output[ClassificationMetrics]) -> str:
    metrics.log_metric("accuracy", 0.93)
    return "gs://models/7"


@dsl.pipeline(name="scored-pipeline")
def scored(run_label: str = "x") -> None:
    train()
    evaluate()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    path = tmp_path_factory.mktemp("compiled") / "scored-pipeline.yaml"
    compiler.Compiler().compile(scored, str(path))
    return load_package(path, "scored-pipeline")


def test_the_metrics_artifacts_of_a_succeeded_job_are_its_metrics(fake: FakeVertexPipelines, runner: VertexRunner,  # noqa: F811
                                                                   package: CompiledPipeline) -> None:
    run = make_run(pipeline="scored-pipeline")
    runner.submit_run(request(run, package, {}))
    fake.set_state(job_id_for(run), "PIPELINE_STATE_SUCCEEDED", logged={
        "train": {"metrics": {"loss": 0.2}, "data": {"rows": 100}},
        "evaluate": {"metrics": {"accuracy": 0.93, "note": "text is not a metric"},
                     "matrix": {"confusionMatrix": {"rows": [{"row": [1, 2]}]}, "auroc": 0.97},
                     "Output": "gs://models/7"}})

    results = runner.run_results(run)

    assert results is not None
    # Only system.Metrics and system.ClassificationMetrics count: the Dataset's metadata is not a metric.
    assert dict(results.metrics) == {"loss": 0.2, "accuracy": 0.93, "auroc": 0.97}
    # Output parameters are the `output:<name>` entries of the task's execution metadata.
    assert dict(results.outputs) == {"Output": "gs://models/7"}
    job = fake.job(job_id_for(run))
    [root, *tasks] = job.job_detail.task_details
    assert root.task_name == "scored-pipeline" and {t.parent_task_id for t in tasks} == {root.task_id}
    assert {a.schema_title for t in tasks for o in t.outputs.values() for a in o.artifacts} == {
        "system.Dataset", "system.Metrics", "system.ClassificationMetrics"}
    by_name = {t.task_name: t for t in tasks}
    assert dict(by_name["evaluate"].execution.metadata) == {"output:Output": "gs://models/7"}


def test_a_job_vertex_does_not_know_has_no_results(runner: VertexRunner) -> None:  # noqa: F811
    assert runner.run_results(make_run(pipeline="scored-pipeline", pr=8)) is None


def test_an_artifact_listed_twice_counts_once_and_a_name_two_tasks_share_is_told_apart() -> None:
    def artifact(name: str, metadata: dict) -> aiplatform_v1.Artifact:
        return aiplatform_v1.Artifact(name=name, schema_title="system.Metrics", metadata=metadata)

    def task(task_name: str, *artifacts: aiplatform_v1.Artifact) -> aiplatform_v1.PipelineTaskDetail:
        return aiplatform_v1.PipelineTaskDetail(task_name=task_name, outputs={
            "metrics": aiplatform_v1.PipelineTaskDetail.ArtifactList(artifacts=list(artifacts))})

    shared = artifact("projects/1/locations/r/metadataStores/default/artifacts/1", {"accuracy": 0.9})
    job = aiplatform_v1.PipelineJob(job_detail=aiplatform_v1.PipelineJobDetail(task_details=[
        task("a", shared), task("b", artifact("projects/1/locations/r/metadataStores/default/artifacts/2",
                                              {"accuracy": 0.8})),
        task("scored-pipeline", shared)]))
    assert dict(job_results(job).metrics) == {"a.accuracy": 0.9, "b.accuracy": 0.8}
