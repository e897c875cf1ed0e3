"""What the embedded runner reads in a compiled kfp 2 package before running it.

The pipeline spec (kfp 2 intermediate representation, YAML or JSON) is checked to be one kfp.local
can run (a kfp 1.8 package is refused with a clear error), its container components are found
(they need a container engine), and kfp.local's task names in its log are mapped back to the
pipeline's own task names, in dependency order.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import RunError

_LIGHTWEIGHT_MODULE = "kfp.dsl.executor_main"
_CONTAINERIZED_PYTHON = ["python3", "-m", _LIGHTWEIGHT_MODULE]
# kfp 2 writes only YAML or JSON pipeline specs; archives and Argo workflows come from kfp 1.8.
_V1_MESSAGE = ("{file} was compiled with the kfp v1 SDK; the embedded runner needs a kfp 2 pipeline — "
               "run it on a KFP endpoint or Vertex AI")


def read_ir(package: Path) -> dict[str, Any]:
    """The kfp 2 pipeline spec in `package`; RunError for anything else."""
    if package.is_file() and (tarfile.is_tarfile(package) or zipfile.is_zipfile(package)):
        raise RunError(_V1_MESSAGE.format(file=package.name), hint="or compile the pipeline with kfp 2.x")
    try:
        with package.open(encoding="utf-8") as handle:
            documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    except OSError as exc:
        raise RunError(f"{package}: cannot read the compiled pipeline: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise RunError(f"{package.name}: not a compiled pipeline (neither YAML nor JSON)") from None
    spec = documents[0] if documents else None
    if not isinstance(spec, dict):
        raise RunError(f"{package.name}: not a compiled pipeline")
    sdk = str(spec.get("sdkVersion", "") or spec.get("pipelineSpec", {}).get("sdkVersion", ""))
    v1 = (spec.get("kind") == "Workflow" or str(spec.get("apiVersion", "")).startswith("argoproj.io")
          or "pipelineSpec" in spec or sdk.startswith("kfp-1."))
    if v1:
        raise RunError(_V1_MESSAGE.format(file=package.name), hint="or compile the pipeline with kfp 2.x")
    if "deploymentSpec" not in spec or "root" not in spec:
        raise RunError(f"{package.name}: not a compiled kfp pipeline (no deploymentSpec/root)")
    return spec


def container_components(spec: Mapping[str, Any]) -> list[str]:
    """Tasks whose executor is a container image, not a lightweight Python function, in run order."""
    executors = spec.get("deploymentSpec", {}).get("executors", {}) or {}
    container_labels = {label for label, executor in executors.items()
                        if "container" in executor and not _is_lightweight(executor["container"])}
    components = {name: (component or {}).get("executorLabel")
                  for name, component in (spec.get("components") or {}).items()}
    wanted = {name for name, label in components.items() if label in container_labels}
    return [task for task, component in _ordered_tasks(spec) if component in wanted]


def _is_lightweight(container: Mapping[str, Any]) -> bool:
    command = [str(part) for part in container.get("command") or []]
    parts = command + [str(part) for part in container.get("args") or []]
    if command[:len(_CONTAINERIZED_PYTHON)] == _CONTAINERIZED_PYTHON:
        return False
    return any(_LIGHTWEIGHT_MODULE in part for part in parts)


def task_names(spec: Mapping[str, Any]) -> dict[str, str]:
    """kfp.local's log names (component name without `comp-`) → the pipeline's task names."""
    by_component: dict[str, list[str]] = {}
    for task, component in _ordered_tasks(spec):
        by_component.setdefault(component, []).append(task)
    names = {}
    for component, tasks in by_component.items():
        log_name = component[len("comp-"):] if component.startswith("comp-") else component
        names[log_name] = tasks[0] if len(tasks) == 1 else log_name
    return names


def _ordered_tasks(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(task, component) of every executor-backed task, in dependency order, DAGs expanded in place."""
    components = spec.get("components") or {}
    ordered: list[tuple[str, str]] = []

    def walk(dag: Mapping[str, Any], depth: int) -> None:
        tasks = (dag or {}).get("tasks") or {}
        pending = {name: set(t.get("dependentTasks") or []) & tasks.keys() for name, t in tasks.items()}
        while pending:
            ready = sorted(name for name, deps in pending.items() if not deps) or sorted(pending)[:1]
            for name in ready:
                del pending[name]
                for deps in pending.values():
                    deps.discard(name)
                component = str(tasks[name].get("componentRef", {}).get("name", ""))
                nested = (components.get(component) or {}).get("dag")
                if nested is not None and depth < 50:
                    walk(nested, depth + 1)
                else:
                    ordered.append((name, component))

    walk((spec.get("root") or {}).get("dag") or {}, 0)
    return ordered
