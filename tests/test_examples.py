"""The example monorepo: every pipeline compiles with kfp 2, its settings fit, its images make sense."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.compiler import load_package
from pipeline_registry.models import ParameterType, PipelineInput
from pipeline_registry.parameters import resolve_parameters
from pipeline_registry.settings import parse_settings
from tests.conftest import EXAMPLE_MONOREPO

PIPELINES = ("hello-pipeline", "training-pipeline", "dataset-pipeline")

# Finds the one pipeline function of a pipeline file and compiles it, as a seed workflow does:
# repository root as working directory and on sys.path.
_COMPILE = """
import importlib.util, sys
from kfp import compiler
from kfp.dsl.graph_component import GraphComponent
spec = importlib.util.spec_from_file_location("pipeline_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
pipelines = [v for v in vars(module).values() if isinstance(v, GraphComponent)]
assert len(pipelines) == 1, pipelines
compiler.Compiler().compile(pipelines[0], sys.argv[2])
"""



def compile_example(repo: Path, pipeline: str, output: Path) -> Path:
    """Compile `pipelines/<pipeline>/<pipeline>.py` of `repo` with the real kfp 2, in a subprocess."""
    source = repo / "pipelines" / pipeline / f"{pipeline}.py"
    result = subprocess.run([sys.executable, "-c", _COMPILE, str(source), str(output)], cwd=repo,
                            env={"PYTHONPATH": str(repo), "PATH": "/usr/local/bin:/usr/bin:/bin",
                                 "HOME": str(output.parent), "PYTHONDONTWRITEBYTECODE": "1"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every example pipeline compiled from a copy of the example (so the source stays clean)."""
    root = tmp_path_factory.mktemp("examples")
    repo = root / "kfp-monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    return {name: yaml.safe_load(compile_example(repo, name, root / f"{name}.yaml").read_text())
            for name in PIPELINES}


def declared_inputs(pipeline: str, tmp_path: Path, ir: dict[str, Any]) -> tuple[PipelineInput, ...]:
    """The inputs as the bot reads them from a compiled package."""
    path = tmp_path / f"{pipeline}.yaml"
    path.write_text(yaml.safe_dump(ir))
    return load_package(path, pipeline).inputs


def test_the_example_has_exactly_the_documented_pipelines() -> None:
    folders = sorted(p.name for p in (EXAMPLE_MONOREPO / "pipelines").iterdir() if p.is_dir())
    assert folders == sorted(PIPELINES)
    readme = (EXAMPLE_MONOREPO / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in PIPELINES)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_compiles_with_kfp_2_under_its_folder_name(compiled: dict[str, Any], pipeline: str) -> None:
    ir = compiled[pipeline]
    assert ir["pipelineInfo"]["name"] == pipeline
    assert ir["sdkVersion"].startswith("kfp-2.")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_settings_parameters_are_declared_inputs_of_the_pipeline(compiled: dict[str, Any], pipeline: str,
                                                                tmp_path: Path) -> None:
    file = f"pipelines/{pipeline}/settings.yaml"
    settings = parse_settings((EXAMPLE_MONOREPO / file).read_bytes(), file)
    assert settings.parameters, f"{file} sets no parameters"
    resolved = resolve_parameters(settings, {}, declared_inputs(pipeline, tmp_path, compiled[pipeline]))
    assert resolved == dict(settings.parameters)


def test_hello_pipeline_has_typed_parameters_with_defaults(compiled: dict[str, Any], tmp_path: Path) -> None:
    inputs = {i.name: i for i in declared_inputs("hello-pipeline", tmp_path, compiled["hello-pipeline"])}
    assert {name: (i.type, i.default) for name, i in inputs.items()} == {
        "name": (ParameterType.STRING, "world"),
        "punctuation": (ParameterType.STRING, "!"),
        "repeat": (ParameterType.INTEGER, 2),
        "factor": (ParameterType.DOUBLE, 1.5),
        "shout": (ParameterType.BOOLEAN, False),
    }


def test_hello_pipeline_takes_its_description_from_utils(compiled: dict[str, Any]) -> None:
    assert compiled["hello-pipeline"]["pipelineInfo"]["description"].startswith("kfp-bot example hello-pipeline")


def test_training_settings_merge_two_sections() -> None:
    file = "pipelines/training-pipeline/settings.yaml"
    settings = parse_settings((EXAMPLE_MONOREPO / file).read_bytes(), file)
    assert settings.sections == ("arguments", "hyperparameters")


@pytest.mark.parametrize("pipeline, images", [
    ("hello-pipeline", set()),
    ("training-pipeline", {"gcr.io/my-project/training-pipeline-train:latest",
                           "gcr.io/my-project/training-pipeline-evaluate:latest",
                           "gcr.io/my-project/notify:latest"}),
    ("dataset-pipeline", {"gcr.io/my-project/dataset-pipeline-split:latest", "gcr.io/my-project/notify:latest"}),
])
def test_container_images_are_placeholders_the_bot_substitutes(compiled: dict[str, Any], pipeline: str,
                                                              images: set[str]) -> None:
    executors = compiled[pipeline]["deploymentSpec"]["executors"].values()
    found = {e["container"]["image"] for e in executors} - {"python:3.11-slim"}
    assert found == images


def test_compiled_outputs_are_ignored_by_git_but_settings_are_not(example_repo) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "pipelines/hello-pipeline/hello-pipeline.yaml",
         "pipelines/dataset-pipeline/dataset-pipeline.json", "pipelines/hello-pipeline/settings.yaml",
         "pipelines/training-pipeline/train/component.yaml"],
        cwd=example_repo.root, capture_output=True, text=True)
    assert ignored.stdout.split() == ["pipelines/hello-pipeline/hello-pipeline.yaml",
                                      "pipelines/dataset-pipeline/dataset-pipeline.json"]
    tracked = example_repo.git("ls-files").splitlines()
    assert "pipelines/hello-pipeline/settings.yaml" in tracked
    assert "components/notify/component.yaml" in tracked


def _image_dir(dockerfile: Path, into: Path) -> Path:
    """The image's WORKDIR as its Dockerfile's COPY lines fill it (repository root as context)."""
    workdir = into
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["WORKDIR"]:
            workdir = into / words[1].lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif words[:1] == ["COPY"]:
            source, dest = EXAMPLE_MONOREPO / words[1], workdir / words[2]
            assert source.exists(), f"{dockerfile}: COPY source {words[1]} does not exist"
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                shutil.copy(source, dest)
    return workdir


def _run_component(folder: str, tmp: Path, values: dict[str, str], paths: dict[str, Path]) -> None:
    """Run a container component's command as its image would, placeholders filled in."""
    spec = yaml.safe_load((EXAMPLE_MONOREPO / folder / "component.yaml").read_text())
    app = _image_dir(EXAMPLE_MONOREPO / folder / "Dockerfile", tmp / folder.replace("/", "_"))
    container = spec["implementation"]["container"]
    argv = []
    for part in container["command"] + container["args"]:
        if isinstance(part, dict):
            (kind, name), = part.items()
            argv.append(values[name] if kind == "inputValue" else str(paths[name]))
        else:
            argv.append(part)
    argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    result = subprocess.run(argv, cwd=app, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr


def test_training_components_run_from_what_their_dockerfiles_copy(tmp_path: Path) -> None:
    model, summary = tmp_path / "out" / "model", tmp_path / "out" / "summary"
    _run_component("pipelines/training-pipeline/train", tmp_path,
                   {"dataset": "gs://b/faces", "epochs": "2", "learning_rate": "0.5", "batch_size": "10"},
                   {"model": model})
    _run_component("pipelines/training-pipeline/evaluate", tmp_path, {"min_accuracy": "0.55"},
                   {"model": model, "summary": summary})
    # weight = epochs * learning_rate * 100 / batch_size = 10 → accuracy capped at 1.0
    assert summary.read_text() == "accuracy 1.000 (passed, minimum 0.55)"
    _run_component("components/notify", tmp_path, {"subject": "training-pipeline", "message": "done"}, {})


def test_split_component_cuts_at_the_test_fraction(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run_component("pipelines/dataset-pipeline/split", tmp_path,
                   {"source": "gs://b/raw.csv", "test_fraction": "0.25", "seed": "7"},
                   {"train_data": out / "train", "test_data": out / "test", "summary": out / "summary"})
    assert (out / "summary").read_text() == "gs://b/raw.csv: 75 train / 25 test rows"
    assert len(yaml.safe_load((out / "test").read_text())) == 25
