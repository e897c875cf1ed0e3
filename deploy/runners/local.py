"""The embedded runner: a compiled kfp 2 pipeline run on this machine with kfp.local.

Running a pipeline executes repository code, so the run happens in the sandbox
(`deploy.sandbox`), driven by `local_driver.py`, which reports task progress as JSON lines.
Lightweight Python components run as subprocesses of the driver, inside the same sandbox: they
see the run's folder (writable), the package and the bot's interpreter (read-only), no network,
and end with the run. Container components need a container engine, which the sandbox cannot
reach (its socket would give root on this machine): a pipeline that has them is refused before
it starts, unless isolation is explicitly waived and an engine answers. Packages compiled by the
kfp v1 SDK are refused too: kfp.local only understands the kfp 2 intermediate representation
(`local_spec` reads the package). The `Runner` port on top of this is `local_runner.LocalRunner`.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.errors import RunError
from deploy.runners.local_logs import LogFile
from deploy.runners.local_spec import container_components, read_ir, task_names
from deploy.sandbox import Sandbox

DRIVER = Path(__file__).with_name("local_driver.py")
ENGINES = ("docker", "podman")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_TAIL_LINES = 30
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
    log_file: Path | None = None,
) -> LocalRunResult:
    """Run the compiled pipeline `package` with `parameters` (already checked) under kfp.local.

    Raises RunError when the run cannot start (not a kfp 2 package, container components and
    no container engine), SandboxUnavailable when `sandbox` may not run it; everything that
    happens once it started, a failed task or the time limit included, is in the result.
    `on_event` sees task state changes as they happen; `log_file` (outside `workdir`) receives the
    run's log (kfp.local's and the components' output) as it is written.
    """
    sandbox = sandbox or Sandbox()
    isolated = sandbox.check().available  # SandboxUnavailable: pull-request code may not run here
    package = Path(package).resolve()
    spec = read_ir(package)
    pipeline = str(spec.get("pipelineInfo", {}).get("name") or package.stem)
    needs_engine = container_components(spec)
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

    tracker = _Tracker(task_names(spec), on_event)
    log = LogFile(log_file) if log_file is not None else None
    try:
        result = sandbox.run([python, str(inside / DRIVER.name), str(request)], cwd=workdir,
                             limits=sandbox.limits(timeout_seconds, memory_mb), writable=[workdir],
                             env=_TASK_ENV, on_line=tracker.line, cancel=cancel,
                             on_stderr=log.write if log is not None else None)
    finally:
        if log is not None:
            log.close()
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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"
