"""The embedded runner: real kfp.local runs of pipelines compiled with the real kfp 2.

No `from __future__ import annotations` here: kfp reads the components' annotations as types.
"""

import importlib.metadata
import shutil
import tarfile
from datetime import UTC
from pathlib import Path

import pytest
from kfp import compiler, dsl

from deploy.errors import RunError
from deploy.runners.local import LocalRunResult, TaskEvent, TaskState, container_engine, run_locally
from deploy.runners.local_logs import read_tail
from tests.conftest import EXAMPLE_MONOREPO
from tests.test_examples import compile_example


@dsl.component(base_image="python:3.11-slim")
def check_positive(value: int) -> int:
    if value <= 0:
        raise ValueError(f"value must be positive, got {value}")
    return value


@dsl.component(base_image="python:3.11-slim")
def double(value: int) -> int:
    return value * 2


@dsl.pipeline(name="failing-pipeline")
def failing_pipeline(value: int = -3):
    double(value=check_positive(value=value).output)


@dsl.component(base_image="python:3.11-slim")
def sleep(seconds: int) -> str:
    import time

    time.sleep(seconds)
    return "woke up"


@dsl.pipeline(name="sleepy-pipeline")
def sleepy_pipeline(seconds: int = 120):
    sleep(seconds=seconds)


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("example") / "kfp-monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    return repo


@pytest.fixture(scope="module")
def hello_package(example_copy: Path) -> Path:
    return compile_example(example_copy, "hello-pipeline", example_copy.parent / "hello-pipeline.yaml")


def states(result: LocalRunResult) -> dict[str, TaskState]:
    return {event.task: event.state for event in result.tasks}


def test_hello_pipeline_runs_end_to_end_with_the_given_parameters(hello_package: Path, tmp_path: Path) -> None:
    seen: list[TaskEvent] = []
    name, punctuation, repeat, factor = "Ada Lovelace", "?", 4, 0.25
    result = run_locally(hello_package, {"name": name, "punctuation": punctuation, "repeat": repeat,
                                         "factor": factor, "shout": True},
                         workdir=tmp_path / "run", on_event=seen.append, log_file=tmp_path / "run.log")

    greeting = f"Hello, {name}{punctuation}".upper()
    assert result.error is None
    assert result.succeeded
    assert result.outputs == {"greeting": greeting, "score": len(greeting.split()) * repeat * factor}
    assert [(e.task, e.state) for e in seen] == [
        ("greet", TaskState.RUNNING), ("greet", TaskState.SUCCEEDED),
        ("count-words", TaskState.RUNNING), ("count-words", TaskState.SUCCEEDED),
        ("scale", TaskState.RUNNING), ("scale", TaskState.SUCCEEDED),
    ]
    assert states(result) == {"greet": TaskState.SUCCEEDED, "count-words": TaskState.SUCCEEDED,
                              "scale": TaskState.SUCCEEDED}
    assert result.log_tail.splitlines()[-1].endswith("Pipeline 'hello-pipeline' finished with status SUCCESS")
    # The whole log, as the run's page shows it: kfp.local's lines and the components' own output.
    log = read_tail(tmp_path / "run.log")
    assert log is not None and not log.cut
    assert "Executing task 'greet'" in log.text and "Executing task 'scale'" in log.text
    assert log.text.rstrip().endswith("Pipeline 'hello-pipeline' finished with status SUCCESS")
    assert "\x1b[" not in log.text


def test_package_pinned_to_another_kfp_2_release_runs_with_the_installed_kfp(
        hello_package: Path, tmp_path: Path) -> None:
    # What a repository pinned to an older kfp 2 compiles: the same IR with another bootstrap pin.
    import kfp

    other = tmp_path / "hello-kfp-2.9.yaml"
    text = hello_package.read_text()
    assert f"kfp=={kfp.__version__}" in text
    other.write_text(text.replace(f"kfp=={kfp.__version__}", "kfp==2.9.0"))
    result = run_locally(other, {"name": "x y z"}, workdir=tmp_path / "run")
    assert result.succeeded, result.log_tail
    greeting = "Hello, x y z!"
    assert result.outputs == {"greeting": greeting, "score": len(greeting.split()) * 2 * 1.5}
    assert importlib.metadata.version("kfp") == kfp.__version__  # the bot's own kfp is untouched


def test_failing_task_is_reported_with_its_name_and_last_log_lines(tmp_path: Path) -> None:
    package = tmp_path / "failing.yaml"
    compiler.Compiler().compile(failing_pipeline, str(package))
    seen: list[TaskEvent] = []
    result = run_locally(package, {"value": -7}, workdir=tmp_path / "run", on_event=seen.append)

    assert not result.succeeded
    assert result.outputs == {}
    assert result.error == "task 'check-positive' failed"
    assert states(result) == {"check-positive": TaskState.FAILED, "double": TaskState.SKIPPED}
    failed = next(e for e in result.tasks if e.task == "check-positive")
    assert "ValueError: value must be positive, got -7" in failed.detail
    assert "ValueError: value must be positive, got -7" in result.log_tail
    assert TaskEvent("double", TaskState.SKIPPED, "not run: task 'check-positive' failed") in result.tasks
    assert TaskEvent("check-positive", TaskState.RUNNING) in seen
    assert seen[-1] == TaskEvent("double", TaskState.SKIPPED, "not run: task 'check-positive' failed")


def test_arguments_kfp_refuses_end_the_run_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    package = tmp_path / "failing.yaml"
    compiler.Compiler().compile(failing_pipeline, str(package))
    result = run_locally(package, {"value": "seven"}, workdir=tmp_path / "run")

    assert not result.succeeded
    assert result.error.startswith("InconsistentTypeException: Incompatible argument passed to the input 'value'")
    assert "Traceback" not in result.log_tail
    assert states(result) == {"check-positive": TaskState.SKIPPED, "double": TaskState.SKIPPED}


def test_run_over_the_time_limit_is_stopped_and_says_so(tmp_path: Path) -> None:
    package = tmp_path / "sleepy.yaml"
    compiler.Compiler().compile(sleepy_pipeline, str(package))
    result = run_locally(package, {"seconds": 120}, workdir=tmp_path / "run", timeout_seconds=2)

    assert not result.succeeded
    assert result.error == "the local run of 'sleepy-pipeline' did not finish within the time limit of 2 seconds " \
                           "and was stopped"
    assert states(result)["sleep"] in (TaskState.FAILED, TaskState.SKIPPED)


def test_pipeline_with_container_components_needs_a_container_engine(example_copy: Path, tmp_path: Path) -> None:
    if container_engine() is not None:
        pytest.skip("a container engine answers on this machine")
    package = compile_example(example_copy, "training-pipeline", tmp_path / "training-pipeline.yaml")
    with pytest.raises(RunError) as caught:
        run_locally(package, {"dataset": "gs://b/faces"}, workdir=tmp_path / "run")
    assert caught.value.message == (
        "pipeline 'training-pipeline' has container components (train, evaluate, notify) that need a "
        "container engine (docker or podman); none is available on this machine")
    assert not (tmp_path / "run").exists()


# The opening of what kfp 1.8.22 writes for the example's dataset-pipeline, in its two formats.
ARGO_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: dataset-pipeline-
  annotations: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22}
  labels: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22}
spec:
  entrypoint: dataset-pipeline
  templates:
  - name: dataset-pipeline
    dag:
      tasks:
      - {name: split, template: split}
"""
V2_COMPATIBLE_JOB = """\
{
  "pipelineSpec": {
    "pipelineInfo": {"name": "dataset-pipeline"},
    "root": {"dag": {"tasks": {}}},
    "deploymentSpec": {"executors": {}},
    "schemaVersion": "2.0.0",
    "sdkVersion": "kfp-1.8.22"
  },
  "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/root"}
}
"""


@pytest.mark.parametrize("file, text", [("dataset-pipeline.yaml", ARGO_WORKFLOW),
                                        ("dataset-pipeline.json", V2_COMPATIBLE_JOB)])
def test_package_from_the_kfp_v1_sdk_is_refused(tmp_path: Path, file: str, text: str) -> None:
    package = tmp_path / file
    package.write_text(text)
    with pytest.raises(RunError) as caught:
        run_locally(package, {}, workdir=tmp_path / "run")
    assert caught.value.message == (
        f"{file} was compiled with the kfp v1 SDK; the embedded runner needs a kfp 2 pipeline — "
        "run it on a KFP endpoint or Vertex AI")


def test_archived_package_from_the_kfp_v1_sdk_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "pipeline.yaml"
    source.write_text(ARGO_WORKFLOW)
    package = tmp_path / "dataset-pipeline.tar.gz"
    with tarfile.open(package, "w:gz") as archive:  # how kfp 1.8 packs `dsl-compile --output x.tar.gz`
        archive.add(source, arcname="pipeline.yaml")
    with pytest.raises(RunError, match="dataset-pipeline.tar.gz was compiled with the kfp v1 SDK"):
        run_locally(package, {}, workdir=tmp_path / "run")


def test_file_that_is_not_a_pipeline_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "notes.yaml"
    package.write_text("- just\n- a list\n")
    with pytest.raises(RunError, match="notes.yaml: not a compiled pipeline"):
        run_locally(package, {}, workdir=tmp_path / "run")


def test_a_run_cancelled_before_its_process_starts_never_starts(tmp_path: Path) -> None:
    from datetime import datetime

    from deploy.runners.local_runner import LocalRunner
    from handlers.ports.run import RunRequest
    from handlers.run_models import Run, RunState, Trigger

    now = datetime.now(UTC)
    run = Run(id="run-early", repo="o/r", pr=1, sha="a" * 40, base_sha=None, pipeline="hello-pipeline",
              trigger=Trigger.AUTORUN, state=RunState.RUNNING, created_at=now, updated_at=now)
    runner = LocalRunner(tmp_path / "runs")
    runner.cancel_run(run)
    submission = runner.submit_run(RunRequest(run=run, package=None, parameters={}))  # type: ignore[arg-type]
    assert submission.state is RunState.CANCELLED
    assert not (tmp_path / "runs" / "run-early").exists()
