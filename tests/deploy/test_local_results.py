"""What a kfp.local run left in its folder, read back as metrics and outputs: artifacts typed by
the compiled spec, each file bounded (the pipeline's own code wrote them)."""
# No `from __future__ import annotations`: kfp reads the components' annotations as types.

import json
from pathlib import Path

import pytest
from kfp import compiler, dsl
from kfp.dsl import Dataset, Metrics, Output

from deploy.runners.local_results import collect, keep_outputs


@dsl.component(base_image="python:3.11-slim")
def train(data: Output[Dataset], metrics: Output[Metrics]) -> None:
    metrics.log_metric("loss", 0.2)


@dsl.component(base_image="python:3.11-slim")
def evaluate(metrics: Output[Metrics]) -> None:
    metrics.log_metric("loss", 0.3)


@dsl.pipeline(name="scored")
def scored() -> None:
    evaluate().after(train())


def executor_output(workdir: Path, task: str, artifacts: dict) -> Path:
    folder = workdir / "outputs" / "scored-2024-05-01-12-00-00-000000" / task
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "executor_output.json"
    path.write_text(json.dumps({"artifacts": {name: {"artifacts": [{"name": name, "uri": str(folder / name),
                                                                    "metadata": metadata}]}
                                              for name, metadata in artifacts.items()}}))
    return path


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("compiled") / "scored.yaml"
    compiler.Compiler().compile(scored, str(path))
    return path.read_text()


@pytest.fixture
def workdir(tmp_path: Path, spec: str) -> Path:
    """A run's folder as the embedded runner leaves it: the driver and the package beside the outputs."""
    (tmp_path / ".kfp-bot").mkdir()
    (tmp_path / ".kfp-bot" / "local_driver.py").write_text("")
    (tmp_path / ".kfp-bot" / "scored.yaml").write_text(spec)
    return tmp_path


def test_metrics_artifacts_are_read_in_task_order_and_told_apart(workdir: Path) -> None:
    executor_output(workdir, "evaluate", {"metrics": {"loss": 0.3, "label": "text"}})
    executor_output(workdir, "train", {"metrics": {"loss": 0.2, "auc": 0.9}, "data": {"rows": 10}})
    keep_outputs(workdir, {"score": 1.5, "model": {"artifact": "Model"}})
    results = collect(workdir)
    assert results is not None
    assert list(results.metrics.items()) == [("train.loss", 0.2), ("auc", 0.9), ("evaluate.loss", 0.3)]
    assert dict(results.outputs) == {"score": 1.5} and results.note == ""


def test_an_oversized_or_broken_file_is_noted_not_read(workdir: Path) -> None:
    executor_output(workdir, "train", {"metrics": {"loss": 0.2}}).write_text("x" * 1_000_001)
    executor_output(workdir, "evaluate", {}).write_text("{broken")
    results = collect(workdir)
    assert results is not None and dict(results.metrics) == {}
    assert "train/executor_output.json is larger than 1,000,000 bytes" in results.note
    assert "evaluate/executor_output.json could not be read" in results.note


def test_a_folder_without_a_run_has_no_results(tmp_path: Path) -> None:
    assert collect(tmp_path / "never-ran") is None
