"""Reading compiled packages in every format the kfp SDKs write."""

import io
import tarfile
import zipfile
from pathlib import Path

import kfp
import pytest
from kfp import compiler, dsl

from deploy.compiler import PackageFormat, load_package
from deploy.errors import CompileError
from pipeline_registry.models import ParameterType, PipelineInput

# Written by kfp 1.8.22's kfp.v2.compiler (the seed's format) for a pipeline with the signature
# `pipeline(epochs: int = 3, lr: float = 0.1, name: str = "a", flag: bool = True)`.
KFP18_JOB_JSON = """\
{
  "pipelineSpec": {
    "components": {
      "comp-train": {
        "executorLabel": "exec-train",
        "inputDefinitions": {
          "parameters": {
            "epochs": {
              "type": "INT"
            }
          }
        },
        "outputDefinitions": {
          "parameters": {
            "model": {
              "type": "STRING"
            }
          }
        }
      }
    },
    "deploymentSpec": {
      "executors": {
        "exec-train": {
          "container": {
            "command": [
              "python",
              "main.py",
              "--epochs",
              "{{$.inputs.parameters['epochs']}}",
              "--out",
              "{{$.outputs.parameters['model'].output_file}}"
            ],
            "image": "gcr.io/old/train:latest"
          }
        }
      }
    },
    "pipelineInfo": {
      "name": "demo-v2"
    },
    "root": {
      "dag": {
        "tasks": {
          "train": {
            "cachingOptions": {
              "enableCache": true
            },
            "componentRef": {
              "name": "comp-train"
            },
            "inputs": {
              "parameters": {
                "epochs": {
                  "componentInputParameter": "epochs"
                }
              }
            },
            "taskInfo": {
              "name": "train"
            }
          }
        }
      },
      "inputDefinitions": {
        "parameters": {
          "epochs": {
            "type": "INT"
          },
          "flag": {
            "type": "STRING"
          },
          "lr": {
            "type": "DOUBLE"
          },
          "name": {
            "type": "STRING"
          }
        }
      }
    },
    "schemaVersion": "2.0.0",
    "sdkVersion": "kfp-1.8.22"
  },
  "runtimeConfig": {
    "gcsOutputDirectory": "gs://x/y",
    "parameters": {
      "epochs": {
        "intValue": "3"
      },
      "flag": {
        "stringValue": "True"
      },
      "lr": {
        "doubleValue": 0.1
      },
      "name": {
        "stringValue": "a"
      }
    }
  }
}"""

# Written by kfp 1.8.22's v1 compiler for the same pipeline plus `req: str = None`.
KFP18_ARGO_YAML = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: demo-v1-
  annotations: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22, pipelines.kubeflow.org/pipeline_compilation_time: '2026-11-23T09:12:03.888233',
    pipelines.kubeflow.org/pipeline_spec: '{"inputs": [{"default": "3", "name": "epochs",
      "optional": true, "type": "Integer"}, {"default": "0.1", "name": "lr", "optional":
      true, "type": "Float"}, {"default": "a", "name": "name", "optional": true, "type":
      "String"}, {"default": "True", "name": "flag", "optional": true, "type": "Boolean"},
      {"name": "req", "optional": true, "type": "String"}], "name": "demo-v1"}'}
  labels: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22}
spec:
  entrypoint: demo-v1
  templates:
  - name: demo-v1
    inputs:
      parameters:
      - {name: epochs}
    dag:
      tasks:
      - name: train
        template: train
        arguments:
          parameters:
          - {name: epochs, value: '{{inputs.parameters.epochs}}'}
  - name: train
    container:
      args: []
      command: [python, main.py, --epochs, '{{inputs.parameters.epochs}}', --out,
        /tmp/outputs/model/data]
      image: gcr.io/old/train:latest
    inputs:
      parameters:
      - {name: epochs}
    outputs:
      artifacts:
      - {name: train-model, path: /tmp/outputs/model/data}
    metadata:
      labels:
        pipelines.kubeflow.org/kfp_sdk_version: 1.8.22
        pipelines.kubeflow.org/pipeline-sdk-type: kfp
        pipelines.kubeflow.org/enable_caching: "true"
      annotations: {pipelines.kubeflow.org/component_spec: '{"implementation": {"container":
          {"command": ["python", "main.py", "--epochs", {"inputValue": "epochs"},
          "--out", {"outputPath": "model"}], "image": "gcr.io/old/train:latest"}},
          "inputs": [{"name": "epochs", "type": "Integer"}], "name": "Train", "outputs":
          [{"name": "model", "type": "String"}]}', pipelines.kubeflow.org/component_ref: '{"digest":
          "9397a5b678727efee3d9aa9230f06bdf9e15e04e4eac00e2452126eb142ee3d4", "url":
          "comp.yaml"}', pipelines.kubeflow.org/arguments.parameters: '{"epochs":
          "{{inputs.parameters.epochs}}"}'}
  arguments:
    parameters:
    - {name: epochs, value: '3'}
    - {name: lr, value: '0.1'}
    - {name: name, value: a}
    - name: flag
      value: "True"
    - {name: req}
  serviceAccountName: pipeline-runner
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def ir_package(tmp_path: Path) -> Path:
    """A real kfp 2 package: parameters of every type, an artifact input, two images.

    (This module has no `from __future__ import annotations`: kfp reads the annotations.)
    """

    @dsl.component(base_image="python:3.11-slim")
    def count(data: dsl.Input[dsl.Dataset], limit: int) -> int:
        return limit

    @dsl.container_component
    def announce(text: str):
        return dsl.ContainerSpec(image="alpine:3.20", command=["echo"], args=[text])

    @dsl.pipeline(name="typed-pipeline")
    def typed(data: dsl.Input[dsl.Dataset], limit: int = 10, ratio: float = 0.5, label: str = "x",
              strict: bool = True, names: list = ["a", "b"], extra: dict = {"k": "v"}, target: str = None,  # noqa: B006 (kfp reads the defaults)
              required_ratio: float = None):
        count(data=data, limit=limit)
        announce(text=label)

    path = tmp_path / "typed.yaml"
    compiler.Compiler().compile(typed, str(path))
    return path


def test_kfp2_ir_yaml(ir_package: Path) -> None:
    compiled = load_package(ir_package, "typed")

    assert compiled.format is PackageFormat.IR_YAML
    assert (compiled.pipeline, compiled.name, compiled.package_path) == ("typed", "typed-pipeline", ir_package)
    assert compiled.sdk_version == kfp.__version__
    assert compiled.images == ("alpine:3.20", "python:3.11-slim")
    assert compiled.inputs == (
        PipelineInput("extra", ParameterType.STRUCT, True, {"k": "v"}),
        PipelineInput("label", ParameterType.STRING, True, "x"),
        PipelineInput("limit", ParameterType.INTEGER, True, 10),
        PipelineInput("names", ParameterType.LIST, True, ["a", "b"]),
        PipelineInput("ratio", ParameterType.DOUBLE, True, 0.5),
        PipelineInput("required_ratio", ParameterType.DOUBLE, True, None),
        PipelineInput("strict", ParameterType.BOOLEAN, True, True),
        PipelineInput("target", ParameterType.STRING, True, None),
        PipelineInput("data", ParameterType.ARTIFACT, False, None),
    )
    assert compiled.read_text() == ir_package.read_text()


def test_ir_yaml_with_a_platform_spec_document(ir_package: Path) -> None:
    ir_package.write_text(ir_package.read_text() + "---\nplatforms:\n  kubernetes:\n    deploymentSpec: {}\n")

    compiled = load_package(ir_package, "typed")

    assert compiled.name == "typed-pipeline" and len(compiled.inputs) == 9


def test_kfp_1_8_v2_job_json(tmp_path: Path) -> None:
    compiled = load_package(write(tmp_path / "demo.json", KFP18_JOB_JSON), "demo")

    assert compiled.format is PackageFormat.JOB_JSON
    assert compiled.name == "demo-v2"
    assert compiled.sdk_version == "1.8.22"
    assert compiled.images == ("gcr.io/old/train:latest",)
    # kfp 1.8's v2 compiler declares booleans as strings; the default says what was passed.
    assert compiled.inputs == (
        PipelineInput("epochs", ParameterType.INTEGER, True, 3),
        PipelineInput("flag", ParameterType.STRING, True, "True"),
        PipelineInput("lr", ParameterType.DOUBLE, True, 0.1),
        PipelineInput("name", ParameterType.STRING, True, "a"),
    )


def test_kfp_1_8_argo_workflow(tmp_path: Path) -> None:
    compiled = load_package(write(tmp_path / "demo.yaml", KFP18_ARGO_YAML), "demo")

    assert compiled.format is PackageFormat.ARGO_YAML
    assert compiled.name == "demo-v1"
    assert compiled.sdk_version == "1.8.22"
    assert compiled.images == ("gcr.io/old/train:latest",)
    assert compiled.inputs == (
        PipelineInput("epochs", ParameterType.INTEGER, True, 3),
        PipelineInput("lr", ParameterType.DOUBLE, True, 0.1),
        PipelineInput("name", ParameterType.STRING, True, "a"),
        PipelineInput("flag", ParameterType.BOOLEAN, True, True),
        PipelineInput("req", ParameterType.STRING, True, None),
    )


def test_argo_workflow_without_the_spec_annotation_uses_its_arguments(tmp_path: Path) -> None:
    text = KFP18_ARGO_YAML.replace("pipelines.kubeflow.org/pipeline_spec:", "ignored-annotation:")

    compiled = load_package(write(tmp_path / "demo.yaml", text), "demo")

    assert compiled.name == "demo-v1"
    assert compiled.inputs[0] == PipelineInput("epochs", ParameterType.STRING, True, "3")
    assert compiled.inputs[-1] == PipelineInput("req", ParameterType.STRING, False, None)


def test_dsl_compile_tar_gz_is_extracted_beside_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "demo.tar.gz"
    data = KFP18_ARGO_YAML.encode()
    with tarfile.open(archive, "w:gz") as tarred:
        member = tarfile.TarInfo("pipeline.yaml")
        member.size = len(data)
        tarred.addfile(member, io.BytesIO(data))

    compiled = load_package(archive, "demo")

    assert compiled.package_path == tmp_path / "demo.yaml"
    assert compiled.format is PackageFormat.ARGO_YAML
    assert compiled.read_text() == KFP18_ARGO_YAML


def test_zip_archive(tmp_path: Path) -> None:
    archive = tmp_path / "demo.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pipeline.yaml", KFP18_ARGO_YAML)

    assert load_package(archive, "demo").name == "demo-v1"


def test_archive_with_two_pipelines_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "demo.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.yaml", KFP18_ARGO_YAML)
        zipped.writestr("b.yaml", KFP18_ARGO_YAML)

    with pytest.raises(CompileError) as caught:
        load_package(archive, "demo")

    assert str(caught.value) == f"{archive}: archive must hold exactly one pipeline YAML file (found: a.yaml, b.yaml)"


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("settings.yaml", "arguments:\n  epochs: 1\n", "is not a pipeline package: neither a kfp PipelineSpec"),
    ("list.yaml", "- 1\n- 2\n", "is not a pipeline package (expected a mapping"),
    ("broken.json", "{\"pipelineSpec\": ", "the package is not valid JSON"),
    ("broken.yaml", "root: [unclosed\n", "the package is not valid YAML"),
])
def test_files_that_are_not_packages(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = write(tmp_path / name, text)

    with pytest.raises(CompileError) as caught:
        load_package(path, "demo")

    assert caught.value.file == str(path)
    assert problem in caught.value.message


def test_missing_package(tmp_path: Path) -> None:
    with pytest.raises(CompileError, match="compiled package does not exist"):
        load_package(tmp_path / "nowhere.yaml", "demo")
