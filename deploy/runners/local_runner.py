"""The `Runner` port on the embedded runner (kfp.local in the sandbox, `deploy.runners.local`).

A run is executed synchronously in the calling worker thread; its end becomes the submission's
state, and its log is kept in `<runs dir>/<run id>.log` (`local_logs`) for the run's page.
Cancelling stops the run's process tree, and a run the store has as `running` that this process
is not running ended with the process that ran it. After each run, the files of runs older than
the retention (`local_retention`) are removed, at most once an hour.
"""

from __future__ import annotations

import threading
from pathlib import Path

from deploy.errors import RunError
from deploy.runners.local import TaskState, run_locally
from deploy.runners.local_logs import log_path
from deploy.runners.local_results import collect, keep_outputs
from deploy.runners.local_retention import RunFilesRetention
from deploy.sandbox import Sandbox, SandboxUnavailable
from handlers.ports.run import CollectedResults, RunRequest, RunSubmission
from handlers.run_models import Run, RunState


class LocalRunner:
    """The `Runner` port on kfp.local: runs synchronously in the calling worker thread.

    `cancel_run` stops the run's process group; its result is then discarded because the run
    is already `cancelled` in the store (states only move forward).
    """

    def __init__(self, runs_dir: Path, *, timeout_seconds: float = 3600.0, sandbox: Sandbox | None = None,
                 retention: RunFilesRetention | None = None) -> None:
        self.runs_dir = runs_dir
        self.retention = retention
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
                                 cancel=cancel, sandbox=self.sandbox, log_file=log_path(self.runs_dir, run_id),
                                 limit_set_by="run.timeout in settings.yaml" if limit != self.timeout_seconds else "")
        except SandboxUnavailable as exc:  # the machine, not the pipeline, is at fault
            return RunSubmission(RunState.ERROR, detail=str(exc))
        except RunError as exc:
            return RunSubmission(RunState.FAILED, detail=str(exc))
        finally:
            with self._guard:
                self._cancels.pop(run_id, None)
                running = set(self._cancels)
            if self.retention is not None:
                self.retention.maybe_prune(running)
        if cancel.is_set():
            return RunSubmission(RunState.CANCELLED, detail="cancelled")
        if result.succeeded:
            keep_outputs(self.runs_dir / run_id, result.outputs)
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

    def run_results(self, run: Run) -> CollectedResults | None:
        """The metrics and outputs the run left in its folder (None: it did not run here)."""
        return collect(self.runs_dir / run.id)

    def cancel_run(self, run: Run) -> None:
        """Stop the run's processes if it is running here."""
        with self._guard:
            cancel = self._cancels.get(run.id)
            if cancel is None and run.state is RunState.RUNNING:
                self._cancelled_early.add(run.id)
        if cancel is not None:
            cancel.set()
