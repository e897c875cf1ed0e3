"""What a change does to a compiled pipeline: a structural diff of two compiled specs.

A reviewer of a pipeline change wants to know what will run differently, not which lines of
Python moved: tasks added, removed or renamed, dependencies, component images, inputs and their
defaults, caching, resources, retries, the pipeline root. Both sides are read into the same
`SpecView` (`pipeline_registry.spec_views`) and compared field by field, so a change that
compiles to the same spec (a comment, a reformatting) shows no difference at all.

`settings.yaml` values are not in the compiled spec; `diff_settings` compares them the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_registry.spec_views import TaskView, names_list, shown, task_line, view_of

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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        """The change `to_json` wrote; ValueError naming the field when `data` is not one."""
        try:
            kind = ChangeKind[str(data["kind"]).upper()]
            subject = data["subject"]
        except KeyError as exc:
            raise ValueError(f"not a pipeline change: unknown or missing {exc}") from None
        before, after = data.get("before"), data.get("after")
        if not isinstance(subject, str) or not all(v is None or isinstance(v, str) for v in (before, after)):
            raise ValueError("not a pipeline change: subject, before and after must be text")
        return cls(kind, subject, before, after)


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PipelineDiff:
        """The diff `to_json` wrote (kept per run by the service); ValueError when it is not one."""
        pipeline, changes = data.get("pipeline"), data.get("changes", [])
        if not isinstance(pipeline, str) or not isinstance(changes, list):
            raise ValueError("not a pipeline diff: `pipeline` must be text and `changes` a list")
        return cls(pipeline, tuple(Change.from_json(change) for change in changes),
                   added=bool(data.get("added")), removed=bool(data.get("removed")),
                   note=str(data.get("note") or ""))


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
                                  shown(old) if key in base else None,
                                  shown(new) if key in head else None))
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
    changes += [Change(ChangeKind.TASK_ADDED, name, None, task_line(after[name]))
                for name in added if name not in renamed.values()]
    changes += [Change(ChangeKind.TASK_REMOVED, name, task_line(before[name]), None)
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
        changes.append(Change(ChangeKind.DEPENDENCIES, name, names_list(old_deps), names_list(new.dependencies)))
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
