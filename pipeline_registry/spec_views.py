"""A compiled pipeline reduced to what a reviewer compares: tasks, their images, inputs, caching,
resources and retries, the pipeline's inputs, outputs and root.

Three package formats reach the bot (kfp 2 IR YAML, kfp 1.8's v2 job JSON, kfp 1.8's Argo
Workflow); each is read into the same `SpecView` (task path -> `TaskView`), so `spec_diff`
compares them field by field whatever the SDK that compiled them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_Doc = Mapping[str, Any]

@dataclass(frozen=True)
class TaskView:
    """What the bot compares of one task (its component folded in)."""

    component: str
    image: str | None
    code: str
    dependencies: tuple[str, ...]
    # (input name, value as text, producing task or None): producers apart so renames carry over.
    inputs: tuple[tuple[str, str, str | None], ...]
    caching: str
    resources: tuple[tuple[str, str], ...]
    retry: str

    @property
    def signature(self) -> tuple[Any, ...]:
        """What must match for a removed and an added task to be one task renamed."""
        return (_image_name(self.image), self.code, tuple(i[:2] for i in self.inputs))

    def shown_inputs(self, renamed: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
        """Each input as text, naming producing tasks by their names after `renamed`."""
        renamed = renamed or {}
        return tuple((key, f"{text} of {renamed.get(producer, producer)}" if producer else text)
                     for key, text, producer in self.inputs)


@dataclass(frozen=True)
class SpecView:
    """The comparable content of a compiled pipeline."""

    tasks: Mapping[str, TaskView]
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    pipeline_root: str | None = None


def view_of(document: _Doc) -> SpecView:
    """The comparable content of a compiled package document of any supported format."""
    if isinstance(document.get("pipelineSpec"), Mapping):
        return _ir_view(document["pipelineSpec"], document.get("runtimeConfig") or {})
    if document.get("kind") == "Workflow":
        return _argo_view(document)
    return _ir_view(document, {})

# -- kfp IR (kfp 2, and kfp 1.8's v2 compiler) ---------------------------------------------------------

def _ir_view(spec: _Doc, runtime: _Doc) -> SpecView:
    components = spec.get("components") or {}
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    tasks: dict[str, TaskView] = {}
    _ir_tasks(spec.get("root") or {}, "", components, executors, tasks)
    root = spec.get("root") or {}
    return SpecView(tasks=tasks, inputs=_ir_parameters(root.get("inputDefinitions") or {}),
                    outputs=_ir_parameters(root.get("outputDefinitions") or {}),
                    pipeline_root=spec.get("defaultPipelineRoot") or runtime.get("gcsOutputDirectory"))


def _ir_tasks(component: _Doc, prefix: str, components: _Doc, executors: _Doc,
              out: dict[str, TaskView]) -> None:
    for name, task in sorted(((component.get("dag") or {}).get("tasks") or {}).items()):
        ref = (task.get("componentRef") or {}).get("name", "")
        child = components.get(ref) or {}
        container = (executors.get(child.get("executorLabel", "")) or {}).get("container") or {}
        path = f"{prefix}{name}"
        out[path] = TaskView(
            component=ref,
            image=container.get("image"),
            code=_digest({"command": container.get("command"), "args": container.get("args"),
                          "dag": bool(child.get("dag"))}),
            dependencies=tuple(sorted(f"{prefix}{dep}" for dep in task.get("dependentTasks") or ())),
            inputs=_ir_task_inputs(task.get("inputs") or {}, prefix),
            # A protobuf default: kfp leaves `enableCache` out when caching is off.
            caching=_on_off((task.get("cachingOptions") or {}).get("enableCache") is True),
            resources=_flat(container.get("resources") or {}),
            retry=_compact(task.get("retryPolicy")),
        )
        if child.get("dag"):
            _ir_tasks(child, f"{path}/", components, executors, out)


def _ir_task_inputs(inputs: _Doc, prefix: str) -> tuple[tuple[str, str, str | None], ...]:
    values = []
    for kind in ("parameters", "artifacts"):
        for key, source in (inputs.get(kind) or {}).items():
            values.append((key, *_ir_source(source, prefix)))
    return tuple(sorted(values, key=lambda value: value[0]))


def _ir_source(source: _Doc, prefix: str) -> tuple[str, str | None]:
    if "componentInputParameter" in source:
        return f"pipeline input {source['componentInputParameter']}", None
    if "componentInputArtifact" in source:
        return f"pipeline input {source['componentInputArtifact']}", None
    if "taskOutputParameter" in source or "taskOutputArtifact" in source:
        output = source.get("taskOutputParameter") or source.get("taskOutputArtifact") or {}
        key = output.get("outputParameterKey") or output.get("outputArtifactKey")
        return f"output {key}", f"{prefix}{output.get('producerTask')}"
    runtime = source.get("runtimeValue") or {}
    if "constant" in runtime:
        return shown(runtime["constant"]), None
    if "constantValue" in runtime:
        return shown(next(iter((runtime["constantValue"] or {}).values()), None)), None
    return _compact(source), None


def _ir_parameters(definitions: _Doc) -> dict[str, str]:
    described: dict[str, str] = {}
    for kind in ("parameters", "artifacts"):
        for name, spec in (definitions.get(kind) or {}).items():
            type_name = spec.get("parameterType") or spec.get("type") or \
                (spec.get("artifactType") or {}).get("schemaTitle") or "?"
            text = str(type_name)
            if "defaultValue" in spec:
                text += f", default {shown(spec['defaultValue'])}"
            elif spec.get("isOptional"):
                text += ", optional"
            described[name] = text
    return described


# -- Argo Workflow (kfp 1.8's v1 compiler) --------------------------------------------------------------

def _argo_view(workflow: _Doc) -> SpecView:
    spec = workflow.get("spec") or {}
    templates = {str(t.get("name")): t for t in spec.get("templates") or () if isinstance(t, Mapping)}
    tasks: dict[str, TaskView] = {}
    _argo_tasks(templates.get(str(spec.get("entrypoint"))) or {}, "", templates, tasks)
    inputs = {p.get("name"): "string" + (f", default {shown(p['value'])}" if "value" in p else "")
              for p in (spec.get("arguments") or {}).get("parameters") or ()}
    annotations = (workflow.get("metadata") or {}).get("annotations") or {}
    return SpecView(tasks=tasks, inputs=inputs, outputs={},
                    pipeline_root=annotations.get("pipelines.kubeflow.org/v2_pipeline_root"))


def _argo_tasks(template: _Doc, prefix: str, templates: _Doc, out: dict[str, TaskView]) -> None:
    for task in sorted((template.get("dag") or {}).get("tasks") or (), key=lambda t: t.get("name", "")):
        child = templates.get(task.get("template")) or {}
        container = child.get("container") or {}
        path = f"{prefix}{task.get('name')}"
        labels = (child.get("metadata") or {}).get("labels") or {}
        out[path] = TaskView(
            component=str(task.get("template")),
            image=container.get("image"),
            code=_digest({"command": container.get("command"), "args": container.get("args"),
                          "dag": bool(child.get("dag"))}),
            dependencies=tuple(sorted(f"{prefix}{dep}" for dep in task.get("dependencies") or ())),
            inputs=tuple(sorted((p.get("name", ""), shown(p.get("value")), None)
                                for p in (task.get("arguments") or {}).get("parameters") or ())),
            caching=_on_off(labels.get("pipelines.kubeflow.org/cache_enabled") != "false"),
            resources=_flat(container.get("resources") or {}),
            retry=_compact(child.get("retryStrategy")),
        )
        if child.get("dag"):
            _argo_tasks(child, f"{path}/", templates, out)


# -- values as text -----------------------------------------------------------------------------------

def task_line(task: TaskView) -> str:
    """A task in one line: its image, or its component when it has none (a sub-DAG)."""
    return task.image or task.component


def _image_name(image: str | None) -> str | None:
    """The image without its tag or digest: a rebuilt image does not make a rename a new task."""
    if not image:
        return image
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _flat(value: Any, prefix: str = "") -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        items: list[tuple[str, str]] = []
        for key, inner in sorted(value.items()):
            items += _flat(inner, f"{prefix}{key}.")
        return tuple(items)
    return ((prefix.rstrip("."), shown(value)),)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _compact(value: Any) -> str:
    if not value:
        return "none"
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"


def names_list(names: Iterable[str]) -> str:
    """Names joined with commas; "none" for none."""
    names = list(names)
    return ", ".join(names) if names else "none"


def shown(value: Any) -> str:
    """A value as a reviewer reads it: strings bare, whole floats (kfp writes `3.0` for 3) as ints."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return json.dumps(value, sort_keys=True, default=str)
