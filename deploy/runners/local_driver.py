"""Driver that runs one compiled pipeline with kfp.local, inside the sandbox.

Started by `deploy.runners.local` in `deploy.sandbox` (bubblewrap), never imported by the
bot: running a pipeline executes repository code. It depends on nothing but the standard
library, PyYAML and kfp 2.x, so any interpreter with kfp can run it.

Protocol: the only argument is a JSON request file
`{"package", "parameters", "pipeline_root", "runner": "subprocess"|"docker"}`. Stdout carries
nothing but JSON lines: `{"event": "task", "task", "state": "running"|"succeeded"|"failed",
"detail"}` as tasks start and end, `{"event": "pipeline", "status", "failed": [...]}` when the
pipeline ends and a final `{"event": "result", "succeeded", "outputs", "error"}`. Everything
else (kfp's log, the components' output) goes to stderr.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import sys
import tempfile
import textwrap
from typing import Any, TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# kfp.local log records (kfp/local/task_dispatcher.py, pipeline_orchestrator.py); names are repr()'d.
_NAME = r"""(?P<q>['"])(?P<name>.+?)(?P=q)"""
_EXECUTING = re.compile(rf"^Executing task {_NAME}\s*$")
_TASK_DONE = re.compile(rf"^Task {_NAME} finished with status (?P<status>[A-Z_]+)")
_PIPELINE_DONE = re.compile(rf"^Pipeline {_NAME} finished with status (?P<status>[A-Z_]+)"
                            r"(?:\. Inner task failed: (?P<chain>.*?)\.?)?\s*$")
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")
_KFP_PIN = re.compile(r"kfp==[0-9][0-9A-Za-z.+!-]*")
_TASK_LOG_LINES = 20
_LINE_CHARS = 4096


class _Protocol:
    """JSON lines on the real stdout, which nothing else may write to."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, **message: Any) -> None:
        self.stream.write(json.dumps(message, default=_jsonable) + "\n")
        self.stream.flush()


class _TaskLog:
    """Stands in for sys.stdout: forwards to stderr and keeps the current task's last lines."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.lines: collections.deque[str] = collections.deque(maxlen=_TASK_LOG_LINES)
        self._partial = ""

    def write(self, text: str) -> int:
        self.target.write(text)
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        self._partial = self._partial[-_LINE_CHARS:]  # a line without end must not fill the memory
        self.lines.extend(line[:_LINE_CHARS] for line in (_ANSI.sub("", c).rstrip() for c in complete) if line.strip())
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    def reset(self) -> None:
        self.lines.clear()
        self._partial = ""

    def tail(self) -> str:
        # kfp.local indents a task's output by four spaces; the report should not.
        return textwrap.dedent("\n".join(self.lines))


class _EventFilter(logging.Filter):
    """Turns kfp.local's root-logger records into protocol events; lets every record through."""

    def __init__(self, protocol: _Protocol, task_log: _TaskLog) -> None:
        super().__init__()
        self.protocol = protocol
        self.task_log = task_log
        self.pipeline_status: str | None = None
        self.failed_chain: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._observe(_ANSI.sub("", record.getMessage()).strip())
        except Exception:  # reporting must never break the run it reports
            pass
        return True

    def _observe(self, message: str) -> None:
        if match := _EXECUTING.match(message):
            self.task_log.reset()
            self.protocol.send(event="task", task=match["name"], state="running", detail="")
        elif match := _TASK_DONE.match(message):
            ok = match["status"] == "SUCCESS"
            self.protocol.send(event="task", task=match["name"], state="succeeded" if ok else "failed",
                               detail="" if ok else self.task_log.tail())
        elif match := _PIPELINE_DONE.match(message):
            self.pipeline_status = match["status"]
            self.failed_chain = _QUOTED.findall(match["chain"] or "")
            self.protocol.send(event="pipeline", pipeline=match["name"], status=match["status"],
                               failed=self.failed_chain)


def _jsonable(value: Any) -> Any:
    """Artifacts (and anything else JSON cannot hold) as plain data."""
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"artifact": type(value).__name__, "name": getattr(value, "name", ""),
                "uri": value.uri, "metadata": dict(value.metadata or {})}
    return repr(value)


def _pin_installed_kfp(package: str, workdir: str) -> str:
    """The package with lightweight components' `kfp==X` pin set to the installed kfp.

    Tasks run in this interpreter (SubprocessRunner without a venv), so their bootstrap
    `pip install kfp==X` must be satisfied by what is installed, never change it.
    """
    import kfp
    import yaml

    with open(package, encoding="utf-8") as handle:
        documents = list(yaml.safe_load_all(handle))
    changed = False
    executors = (documents[0] or {}).get("deploymentSpec", {}).get("executors", {}) if documents else {}
    for executor in executors.values():
        command = (executor.get("container") or {}).get("command") or []
        for index, part in enumerate(command):
            if isinstance(part, str) and "pip install" in part and _KFP_PIN.search(part):
                command[index] = _KFP_PIN.sub(f"kfp=={kfp.__version__}", part)
                changed = changed or command[index] != part
    if not changed:
        return package
    fd, path = tempfile.mkstemp(prefix="pipeline-", suffix=".yaml", dir=workdir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=False)
    return path


def _outputs(task: Any) -> dict[str, Any]:
    outputs = getattr(task, "outputs", None)
    if isinstance(outputs, dict):
        return dict(outputs)
    return {}


def _run(request: dict[str, Any], events: _EventFilter) -> tuple[bool, dict[str, Any], str | None]:
    import kfp.components
    from kfp import local

    if request.get("runner") == "docker":
        try:
            runner: Any = local.DockerRunner()
        except ImportError:
            return False, {}, ("a container engine is available but the Python package 'docker', which "
                               "kfp.local needs to drive it, is not installed in the bot's environment")
    else:
        runner = local.SubprocessRunner(use_venv=False)
    local.init(runner=runner, pipeline_root=request["pipeline_root"], raise_on_error=False)
    package = _pin_installed_kfp(request["package"], os.getcwd())
    pipeline = kfp.components.load_component_from_file(package)
    task = pipeline(**request["parameters"])
    if events.pipeline_status == "SUCCESS":
        return True, _outputs(task), None
    if events.pipeline_status is None:
        return False, {}, "kfp.local did not report how the pipeline ended"
    chain = " inside ".join(f"'{name}'" for name in events.failed_chain)
    return False, {}, f"task {chain} failed" if chain else f"pipeline finished with status {events.pipeline_status}"


def main(argv: list[str]) -> int:
    """Run the request in `argv[1]`; the exit status is 0 whenever a result line was written."""
    protocol = _Protocol(os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8"))
    os.dup2(2, 1)  # anything a child process or C code writes to fd 1 goes to stderr
    task_log = _TaskLog(sys.stderr)
    sys.stdout = task_log
    events = _EventFilter(protocol, task_log)
    logging.getLogger().addFilter(events)
    try:
        with open(argv[1], encoding="utf-8") as handle:
            request = json.load(handle)
        succeeded, outputs, error = _run(request, events)
    except Exception as exc:  # reported as the run's error, in words, never as a traceback
        succeeded, outputs, error = False, {}, f"{type(exc).__name__}: {exc}"
        print(f"the local run stopped: {error}", file=sys.stderr)
    protocol.send(event="result", succeeded=succeeded, outputs=outputs, error=error)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
