"""The embedded runner: a compiled kfp 2 pipeline run on this machine with kfp.local.

Running a pipeline executes repository code, so the run happens in the sandbox
(`deploy.sandbox`), driven by `local_driver.py`, which reports task progress as JSON lines.
Lightweight Python components run as subprocesses of the driver, inside the same sandbox: they
see the run's folder (writable), the package and the bot's interpreter (read-only), no network,
and end with the run. Container components need a container engine, which the sandbox cannot
reach (its socket would give root on this machine): a pipeline that has them is refused before
it starts, unless isolation is explicitly waived and an engine answers. Packages compiled by the kfp v1 SDK are refused too: kfp.local
only understands the kfp 2 intermediate representation.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import RunError
from deploy.sandbox import Sandbox, SandboxUnavailable
from handlers.models import Run, RunState
from handlers.ports import RunRequest, RunSubmission

DRIVER = Path(__file__).with_name("local_driver.py")
ENGINES = ("docker", "podman")
_LIGHTWEIGHT_MODULE = "kfp.dsl.executor_main"
_CONTAINERIZED_PYTHON = ["python3", "-m", _LIGHTWEIGHT_MODULE]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_TAIL_LINES = 30
# kfp 2 writes only YAML or JSON pipeline specs; archives and Argo workflows come from kfp 1.8.
_V1_MESSAGE = ("{file} was compiled with the kfp v1 SDK; the embedded runner needs a kfp 2 pipeline — "
               "run it on a KFP endpoint or Vertex AI")
# Tasks run in the bot's interpreter: their bootstrap pip may use what is installed, never fetch.
_TASK_ENV = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class TaskState(enum.Enum):
    """Where one task of a local run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class TaskEvent:
    """A task changed state; `detail` holds a failed task's last log lines or why it was skipped."""

    task: str
    state: TaskState
    detail: str = ""


@dataclass(frozen=True)
class LocalRunResult:
    """How a local run ended: pipeline outputs, the last state of every task, and the log's end."""

    succeeded: bool
    outputs: dict[str, Any]
    tasks: tuple[TaskEvent, ...]
    error: str | None
    log_tail: str


def container_engine(candidates: Sequence[str] = ENGINES) -> str | None:
    """The container engine kfp.local can use: the first of `candidates` ("docker", "podman")
    installed whose daemon answers `info`."""
    for engine in candidates:
        path = shutil.which(engine)
        if path is None:
            continue
        try:
            answered = subprocess.run([path, "info"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            answered = False
        if answered:
            return engine
    return None


def run_locally(
    package: Path,
    parameters: Mapping[str, Any],
    *,
    workdir: Path,
    timeout_seconds: float = 3600,
    python: str = sys.executable,
    on_event: Callable[[TaskEvent], None] | None = None,
    memory_mb: int | None = 4096,
    cancel: threading.Event | None = None,
    sandbox: Sandbox | None = None,
    limit_set_by: str = "",
) -> LocalRunResult:
    """Run the compiled pipeline `package` with `parameters` (already checked) under kfp.local.

    Raises RunError when the run cannot start (not a kfp 2 package, container components and
    no container engine), SandboxUnavailable when `sandbox` may not run it; everything that happens once it started, a failed task or the time
    limit included, is in the result. `on_event` sees task state changes as they happen.
    """
    sandbox = sandbox or Sandbox()
    isolated = sandbox.check().available  # SandboxUnavailable: pull-request code may not run here
    package = Path(package).resolve()
    spec = _read_ir(package)
    pipeline = str(spec.get("pipelineInfo", {}).get("name") or package.stem)
    needs_engine = _container_components(spec)
    engine = container_engine() if needs_engine else None
    if needs_engine and engine is None:
        raise RunError(f"pipeline '{pipeline}' has container components ({', '.join(needs_engine)}) that "
                       "need a container engine (docker or podman); none is available on this machine",
                       hint="install and start docker or podman, or run the pipeline on a KFP endpoint "
                            "or Vertex AI")
    if needs_engine and isolated:
        raise RunError(f"pipeline '{pipeline}' has container components ({', '.join(needs_engine)}), which "
                       "the embedded runner does not start from its sandbox (reaching the container engine "
                       "would give the pipeline root on this machine)",
                       hint="run the pipeline on a KFP endpoint or Vertex AI")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    request = workdir / "local-run-request.json"
    inside = workdir / ".kfp-bot"  # the driver and the package, copied: the sandbox sees only the run's folder
    inside.mkdir(exist_ok=True)
    shutil.copyfile(DRIVER, inside / DRIVER.name)
    shutil.copyfile(package, inside / package.name)
    try:
        request.write_text(json.dumps({
            "package": str(inside / package.name),
            "parameters": dict(parameters),
            "pipeline_root": str(workdir / "outputs"),
            "runner": "docker" if needs_engine else "subprocess",
        }))
    except TypeError as exc:
        raise RunError(f"parameters of pipeline '{pipeline}' cannot be passed to a run: {exc}") from None

    tracker = _Tracker(_task_names(spec), on_event)
    result = sandbox.run([python, str(inside / DRIVER.name), str(request)], cwd=workdir,
                         limits=sandbox.limits(timeout_seconds, memory_mb), writable=[workdir],
                         env=_TASK_ENV, on_line=tracker.line, cancel=cancel)
    log_tail = "\n".join(_ANSI.sub("", result.stderr).rstrip().splitlines()[-_LOG_TAIL_LINES:])
    if result.cancelled:
        return tracker.finish(False, {}, f"the local run of '{pipeline}' was cancelled", log_tail,
                              unfinished="cancelled")
    if result.timed_out:
        source = f" ({limit_set_by})" if limit_set_by else ""
        return tracker.finish(False, {}, f"the local run of '{pipeline}' did not finish within the time "
                              f"limit of {_duration(timeout_seconds)}{source} and was stopped", log_tail,
                              unfinished="stopped at the time limit")
    final = tracker.result
    if final is None:
        return tracker.finish(False, {}, f"the local runner stopped unexpectedly (exit status "
                              f"{result.returncode}) before reporting a result", log_tail,
                              unfinished="the runner stopped")
    return tracker.finish(bool(final.get("succeeded")), dict(final.get("outputs") or {}),
                          final.get("error"), log_tail, unfinished="the runner stopped")


class _Tracker:
    """Turns the driver's JSON lines into TaskEvents, under the pipeline's own task names."""

    def __init__(self, names: Mapping[str, str], on_event: Callable[[TaskEvent], None] | None) -> None:
        self.names = names
        self.on_event = on_event
        self.states: dict[str, TaskEvent] = {}
        self.result: dict[str, Any] | None = None

    def line(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("event") == "result":
            self.result = message
        elif message.get("event") == "task":
            try:
                state = TaskState(message.get("state"))
            except ValueError:
                return
            name = str(message.get("task", ""))
            self._record(TaskEvent(self.names.get(name, name), state, str(message.get("detail") or "")))

    def _record(self, event: TaskEvent) -> None:
        self.states[event.task] = event
        if self.on_event is not None:
            self.on_event(event)

    def finish(self, succeeded: bool, outputs: dict[str, Any], error: str | None, log_tail: str,
               *, unfinished: str) -> LocalRunResult:
        if not succeeded:
            for event in list(self.states.values()):
                if event.state is TaskState.RUNNING:
                    self._record(TaskEvent(event.task, TaskState.FAILED, unfinished))
            failed = [e.task for e in self.states.values() if e.state is TaskState.FAILED]
            why = f"not run: task '{failed[0]}' failed" if failed else "not run"
            for task in dict.fromkeys(self.names.values()):
                if task not in self.states:
                    self._record(TaskEvent(task, TaskState.SKIPPED, why))
            error = error or "the pipeline failed"
        return LocalRunResult(succeeded=succeeded, outputs=outputs, tasks=tuple(self.states.values()),
                              error=None if succeeded else error, log_tail=log_tail)


def _read_ir(package: Path) -> dict[str, Any]:
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


def _container_components(spec: Mapping[str, Any]) -> list[str]:
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


def _task_names(spec: Mapping[str, Any]) -> dict[str, str]:
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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"


class LocalRunner:
    """The `Runner` port on kfp.local: runs synchronously in the calling worker thread.

    `cancel_run` stops the run's process group; its result is then discarded because the run
    is already `cancelled` in the store (states only move forward).
    """

    def __init__(self, runs_dir: Path, *, timeout_seconds: float = 3600.0, sandbox: Sandbox | None = None) -> None:
        self.runs_dir = runs_dir
        self.timeout_seconds = timeout_seconds
        self.sandbox = sandbox or Sandbox()
        self._cancels: dict[str, threading.Event] = {}
        # Cancelled before its process started (the run was already `running` in the store).
        self._cancelled_early: set[str] = set()
        self._guard = threading.Lock()

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Run to completion; the submission carries the final state and the reason."""
        run_id = request.run.id
        with self._guard:
            if run_id in self._cancelled_early:
                self._cancelled_early.discard(run_id)
                return RunSubmission(RunState.CANCELLED, detail="cancelled")
            cancel = self._cancels.setdefault(run_id, threading.Event())
        # The pipeline's `run.timeout` applies when it is shorter than the runner's own limit.
        own = request.options.timeout
        limit = min(self.timeout_seconds, own) if own else self.timeout_seconds
        try:
            result = run_locally(request.package.package_path, request.parameters,
                                 workdir=self.runs_dir / run_id, timeout_seconds=limit,
                                 cancel=cancel, sandbox=self.sandbox,
                                 limit_set_by="run.timeout in settings.yaml" if limit != self.timeout_seconds else "")
        except SandboxUnavailable as exc:  # the machine, not the pipeline, is at fault
            return RunSubmission(RunState.ERROR, detail=str(exc))
        except RunError as exc:
            return RunSubmission(RunState.FAILED, detail=str(exc))
        finally:
            with self._guard:
                self._cancels.pop(run_id, None)
        if cancel.is_set():
            return RunSubmission(RunState.CANCELLED, detail="cancelled")
        if result.succeeded:
            outputs = ", ".join(f"{k}={v!r}" for k, v in sorted(result.outputs.items()))
            return RunSubmission(RunState.SUCCEEDED, detail=f"outputs: {outputs}" if outputs else "")
        failed = next((t for t in result.tasks if t.state is TaskState.FAILED), None)
        detail = result.error or "the pipeline failed"
        if failed is not None and failed.detail:
            detail = f"{detail}\n{failed.detail}"
        return RunSubmission(RunState.FAILED, detail=detail)

    def run_status(self, run: Run) -> RunSubmission | None:
        """RUNNING while this process runs it. A run the store has as `running` that is not
        running here was started by a bot process that stopped: a local run ends with the process
        that runs it, so it is ERROR (callers ask only once that process's lease on the run has
        expired). None for a run never submitted."""
        with self._guard:
            running = run.id in self._cancels
        if running:
            return RunSubmission(RunState.RUNNING)
        if run.state is RunState.RUNNING:
            return RunSubmission(RunState.ERROR, detail=(
                "the bot process running this local run stopped before it finished, and the run "
                f"ended with it; start it again with /run {run.pipeline}"))
        return None

    def cancel_run(self, run: Run) -> None:
        """Stop the run's processes if it is running here."""
        with self._guard:
            cancel = self._cancels.get(run.id)
            if cancel is None and run.state is RunState.RUNNING:
                self._cancelled_early.add(run.id)
        if cancel is not None:
            cancel.set()
