"""What a change does to a compiled pipeline: a structural diff of two compiled specs.

A reviewer of a pipeline change wants to know what will run differently, not which lines of
Python moved: tasks added, removed or renamed, dependencies, component images, inputs and their
defaults, caching, resources, retries, the pipeline root. Both sides are reduced to the same
`SpecView` (task path → `TaskView`) from any of the three package formats the bot reads (kfp 2
IR YAML, kfp 1.8's v2 job JSON, kfp 1.8's Argo Workflow) and compared field by field, so a
change that compiles to the same spec (a comment, a reformatting) shows no difference at all.

`settings.yaml` values are not in the compiled spec; `diff_settings` compares them the same way.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

_Doc = Mapping[str, Any]


class ChangeKind(enum.Enum):
    """What kind of difference a `Change` is, in the order a reviewer reads them."""

    TASK_ADDED = "task added"
    TASK_REMOVED = "task removed"
    TASK_RENAMED = "task renamed"
    DEPENDENCIES = "dependencies"
    IMAGE = "image"
    COMPONENT_CODE = "component command"
    TASK_INPUT = "task input"
    PIPELINE_INPUT = "pipeline input"
    PIPELINE_OUTPUT = "pipeline output"
    CACHING = "caching"
    RESOURCES = "resources"
    RETRY = "retry policy"
    PIPELINE_ROOT = "pipeline root"
    SERVICE_ACCOUNT = "service account"
    SETTING = "settings.yaml"


@dataclass(frozen=True)
class Change:
    """One difference: `subject` names the task, input or key; `before`/`after` are shown as text."""

    kind: ChangeKind
    subject: str
    before: str | None = None
    after: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The change as JSON for `kfp-bot diff --json` and other tools."""
        return {"kind": self.kind.name.lower(), "subject": self.subject,
                "before": self.before, "after": self.after}


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


@dataclass(frozen=True)
class PipelineDiff:
    """The differences of one pipeline between a base and a head revision."""

    pipeline: str
    changes: tuple[Change, ...] = ()
    # The pipeline does not exist (or did not compile) on that side; `note` says which.
    added: bool = False
    removed: bool = False
    note: str = ""

    @property
    def unchanged(self) -> bool:
        """True when both sides compiled to the same spec and settings."""
        return not (self.changes or self.added or self.removed or self.note)

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON (`kfp-bot diff --json`)."""
        return {"pipeline": self.pipeline, "unchanged": self.unchanged, "added": self.added,
                "removed": self.removed, "note": self.note,
                "changes": [change.to_json() for change in self.changes]}


def view_of(document: _Doc) -> SpecView:
    """The comparable content of a compiled package document of any supported format."""
    if isinstance(document.get("pipelineSpec"), Mapping):
        return _ir_view(document["pipelineSpec"], document.get("runtimeConfig") or {})
    if document.get("kind") == "Workflow":
        return _argo_view(document)
    return _ir_view(document, {})


def diff_specs(base: _Doc, head: _Doc) -> tuple[Change, ...]:
    """Every structural difference between two compiled packages, base first."""
    before, after = view_of(base), view_of(head)
    changes: list[Change] = []
    changes += _task_changes(before.tasks, after.tasks)
    changes += _mapping_changes(ChangeKind.PIPELINE_INPUT, before.inputs, after.inputs)
    changes += _mapping_changes(ChangeKind.PIPELINE_OUTPUT, before.outputs, after.outputs)
    if before.pipeline_root != after.pipeline_root:
        changes.append(Change(ChangeKind.PIPELINE_ROOT, "default pipeline root",
                              before.pipeline_root, after.pipeline_root))
    return tuple(changes)


def diff_settings(base: Mapping[str, Any], head: Mapping[str, Any]) -> tuple[Change, ...]:
    """Differences of two flattened `settings.yaml` documents (`section.key` → value).

    `run.pipeline_root` and `run.service_account` get their own kinds: they decide where a run
    writes and with whose rights, which a reviewer must not miss among parameter values.
    """
    special = {"run.pipeline_root": ChangeKind.PIPELINE_ROOT,
               "run.service_account": ChangeKind.SERVICE_ACCOUNT}
    changes = []
    for key in sorted(set(base) | set(head)):
        old, new = base.get(key), head.get(key)
        if old != new:
            changes.append(Change(special.get(key, ChangeKind.SETTING), key,
                                  _shown(old) if key in base else None,
                                  _shown(new) if key in head else None))
    return tuple(changes)


def flatten_settings(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"run": {"pipeline_root": x}}` → `{"run.pipeline_root": x}`; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _task_changes(before: Mapping[str, TaskView], after: Mapping[str, TaskView]) -> list[Change]:
    removed = [name for name in before if name not in after]
    added = [name for name in after if name not in before]
    renamed: dict[str, str] = {}
    by_signature: dict[tuple[Any, ...], list[str]] = {}
    for name in added:
        by_signature.setdefault(after[name].signature, []).append(name)
    for name in removed:
        candidates = by_signature.get(before[name].signature)
        if candidates:
            renamed[name] = candidates.pop(0)
    changes = [Change(ChangeKind.TASK_RENAMED, old, old, new) for old, new in renamed.items()]
    changes += [Change(ChangeKind.TASK_ADDED, name, None, _task_line(after[name]))
                for name in added if name not in renamed.values()]
    changes += [Change(ChangeKind.TASK_REMOVED, name, _task_line(before[name]), None)
                for name in removed if name not in renamed]
    pairs = [(name, name) for name in before if name in after] + list(renamed.items())
    for old_name, new_name in pairs:
        changes += _same_task_changes(new_name, before[old_name], after[new_name], renamed)
    return changes


def _same_task_changes(name: str, old: TaskView, new: TaskView,
                       renamed: Mapping[str, str]) -> list[Change]:
    changes = []
    old_deps = tuple(sorted(renamed.get(dep, dep) for dep in old.dependencies))
    if old_deps != new.dependencies:
        changes.append(Change(ChangeKind.DEPENDENCIES, name, _list(old_deps), _list(new.dependencies)))
    if old.image != new.image:
        changes.append(Change(ChangeKind.IMAGE, name, old.image, new.image))
    if old.code != new.code:
        changes.append(Change(ChangeKind.COMPONENT_CODE, name, f"digest {old.code}", f"digest {new.code}"))
    changes += [Change(ChangeKind.TASK_INPUT, f"{name}.{key}", old_value, new_value)
                for key, old_value, new_value in _pairs(old.shown_inputs(renamed), new.shown_inputs())]
    if old.caching != new.caching:
        changes.append(Change(ChangeKind.CACHING, name, old.caching, new.caching))
    changes += [Change(ChangeKind.RESOURCES, f"{name}.{key}", old_value, new_value)
                for key, old_value, new_value in _pairs(old.resources, new.resources)]
    if old.retry != new.retry:
        changes.append(Change(ChangeKind.RETRY, name, old.retry, new.retry))
    return changes


def _mapping_changes(kind: ChangeKind, before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    return [Change(kind, key, old, new)
            for key, old, new in _pairs(tuple(before.items()), tuple(after.items()))]


def _pairs(before: Iterable[tuple[str, str]], after: Iterable[tuple[str, str]]
           ) -> list[tuple[str, str | None, str | None]]:
    old, new = dict(before), dict(after)
    return [(key, old.get(key), new.get(key)) for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


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
        return _shown(runtime["constant"]), None
    if "constantValue" in runtime:
        return _shown(next(iter((runtime["constantValue"] or {}).values()), None)), None
    return _compact(source), None


def _ir_parameters(definitions: _Doc) -> dict[str, str]:
    shown = {}
    for kind in ("parameters", "artifacts"):
        for name, spec in (definitions.get(kind) or {}).items():
            type_name = spec.get("parameterType") or spec.get("type") or \
                (spec.get("artifactType") or {}).get("schemaTitle") or "?"
            text = str(type_name)
            if "defaultValue" in spec:
                text += f", default {_shown(spec['defaultValue'])}"
            elif spec.get("isOptional"):
                text += ", optional"
            shown[name] = text
    return shown


# -- Argo Workflow (kfp 1.8's v1 compiler) --------------------------------------------------------------

def _argo_view(workflow: _Doc) -> SpecView:
    spec = workflow.get("spec") or {}
    templates = {t.get("name"): t for t in spec.get("templates") or () if isinstance(t, Mapping)}
    tasks: dict[str, TaskView] = {}
    _argo_tasks(templates.get(spec.get("entrypoint")) or {}, "", templates, tasks)
    inputs = {p.get("name"): "string" + (f", default {_shown(p['value'])}" if "value" in p else "")
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
            inputs=tuple(sorted((p.get("name", ""), _shown(p.get("value")), None)
                                for p in (task.get("arguments") or {}).get("parameters") or ())),
            caching=_on_off(labels.get("pipelines.kubeflow.org/cache_enabled") != "false"),
            resources=_flat(container.get("resources") or {}),
            retry=_compact(child.get("retryStrategy")),
        )
        if child.get("dag"):
            _argo_tasks(child, f"{path}/", templates, out)


# -- values as text -----------------------------------------------------------------------------------

def _task_line(task: TaskView) -> str:
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
    return ((prefix.rstrip("."), _shown(value)),)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _compact(value: Any) -> str:
    if not value:
        return "none"
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"


def _list(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "none"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return json.dumps(value, sort_keys=True, default=str)


