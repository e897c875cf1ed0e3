"""What a finished kfp.local run produced, read from its pipeline root.

kfp.local writes every task's outputs under `<pipeline root>/<pipeline>-<timestamp>/<task>/`,
with `executor_output.json` holding the artifacts the task logged (name, uri, metadata) and its
output parameter values; the artifact types are not in that file but in the compiled spec
(`components.<comp>.outputDefinitions.artifacts.<name>.artifactType.schemaTitle`). Metrics are
the numeric metadata entries of `system.Metrics` and `system.ClassificationMetrics` artifacts;
outputs are the pipeline's own outputs (the driver's result, kept beside the run). The files
were written by pipeline code in the sandbox: each is read with a size limit and only numbers and
short scalars are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from deploy.errors import RunError
from deploy.runners.local_spec import read_ir, task_names
from handlers.ports.run import CollectedResults

T = TypeVar("T")
METRICS_TYPES = ("system.Metrics", "system.ClassificationMetrics")
OUTPUTS_FILE = "pipeline-outputs.json"
_EXECUTOR_OUTPUT = "executor_output.json"
_MAX_FILE_BYTES = 1_000_000


def keep_outputs(workdir: Path, outputs: Mapping[str, Any]) -> None:
    """Keep a run's pipeline outputs (the driver's result) beside it, scalars only."""
    plain = {str(k): v for k, v in outputs.items() if isinstance(v, str | int | float | bool)}
    (workdir / OUTPUTS_FILE).write_text(json.dumps(plain), encoding="utf-8")


def collect(workdir: Path) -> CollectedResults | None:
    """The metrics and outputs of the kfp.local run in `workdir` (None: no run there)."""
    package = _package(workdir)
    if package is None:
        return None
    try:
        spec = read_ir(package)
    except RunError as exc:
        return CollectedResults(note=f"the compiled pipeline could not be read: {exc}")
    notes: list[str] = []
    found: list[tuple[str, str, float]] = []
    run_root = _latest_run_root(workdir / "outputs")
    if run_root is not None:
        order = {name: index for index, name in enumerate(task_names(spec))}
        for task_dir in sorted((d for d in run_root.iterdir() if d.is_dir()),
                               key=lambda d: (order.get(d.name, len(order)), d.name)):
            executor_output = _read_json(task_dir / _EXECUTOR_OUTPUT, notes)
            if executor_output is None:
                continue
            types = _artifact_types(spec, task_dir.name)
            found += [(task_dir.name, name, value) for name, value in _metrics(executor_output, types)]
    return CollectedResults(metrics=named_metrics(found), outputs=_read_json(workdir / OUTPUTS_FILE, notes) or {},
                            note="; ".join(notes))


def _package(workdir: Path) -> Path | None:
    inside = workdir / ".kfp-bot"
    if not inside.is_dir():
        return None
    return next((p for p in sorted(inside.iterdir()) if p.suffix in (".yaml", ".yml", ".json")), None)


def _latest_run_root(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    runs = [d for d in root.iterdir() if d.is_dir()]
    return max(runs, key=lambda d: (d.stat().st_mtime, d.name), default=None)


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    if path.stat().st_size > _MAX_FILE_BYTES:
        notes.append(f"{path.parent.name}/{path.name} is larger than {_MAX_FILE_BYTES:,} bytes and was not read")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        notes.append(f"{path.parent.name}/{path.name} could not be read")
        return None


def _artifact_types(spec: Mapping[str, Any], task_dir: str) -> dict[str, str]:
    """Output artifact name → schema title of the component kfp.local ran in `task_dir`."""
    component = (spec.get("components") or {}).get(f"comp-{task_dir}") or {}
    artifacts = (component.get("outputDefinitions") or {}).get("artifacts") or {}
    return {name: str((definition.get("artifactType") or {}).get("schemaTitle") or "")
            for name, definition in artifacts.items() if isinstance(definition, dict)}


def _metrics(executor_output: Any, types: Mapping[str, str]) -> list[tuple[str, float]]:
    if not isinstance(executor_output, dict):
        return []
    metrics = []
    for output, listed in (executor_output.get("artifacts") or {}).items():
        if types.get(output) not in METRICS_TYPES or not isinstance(listed, dict):
            continue
        for artifact in listed.get("artifacts") or ():
            metadata = artifact.get("metadata") if isinstance(artifact, dict) else None
            for name, value in (metadata or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    metrics.append((str(name), float(value)))
    return metrics


def named_metrics(found: Sequence[tuple[str, str, T]]) -> dict[str, T]:
    """Name → value; a name two tasks report is told apart by its task (`task.name`)."""
    counts: dict[str, int] = {}
    for _, name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    return {(name if counts[name] == 1 else f"{task}.{name}"): value for task, name, value in found}
