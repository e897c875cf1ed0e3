"""Running compiled pipelines: one run at a time on a backend (`Runner`, and the results it reads
back when the run ends), and on deploy the uploaded templates (`TemplateStore`) and the
schedules that run them (`Schedules`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.ports.build import CompiledPackage
from handlers.run_models import Run, RunState
from pipeline_registry.repo_config import Target
from pipeline_registry.settings import RunOptions, ScheduleOptions


@dataclass(frozen=True)
class RunRequest:
    """Everything a runner needs to submit one pipeline run."""

    run: Run
    package: CompiledPackage
    parameters: Mapping[str, Any]
    options: RunOptions = RunOptions()
    labels: Mapping[str, str] = field(default_factory=dict)
    target: Target | None = None


@dataclass(frozen=True)
class RunSubmission:
    """What a runner did: a final state (synchronous runners) or RUNNING with a link."""

    state: RunState
    url: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class CollectedResults:
    """What a finished run produced, as its backend reports it: numeric metrics (from artifacts
    of the types `system.Metrics` and `system.ClassificationMetrics`, name → number, in the
    order the tasks reported them) and scalar outputs (name → JSON value). `note` says what
    could not be read (e.g. a task whose outputs were unreadable)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


class Runner(Protocol):
    """Submits and cancels pipeline runs (kfp.local, Vertex AI, KFP endpoint)."""

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Submit a run; synchronous runners return its final state."""

    def cancel_run(self, run: Run) -> None:
        """Cancel a run that is still going; a no-op when it is not."""

    def run_status(self, run: Run) -> RunSubmission | None:
        """Where the run is now on the backend (reconcile); None when the backend does not know it."""

    def run_results(self, run: Run) -> CollectedResults | None:
        """The outputs and metrics of a run that ended; None when this backend does not know the
        run or does not report results. Raises `KfpBotError` when it cannot be asked."""


class TemplateStore(Protocol):
    """Where compiled pipelines are uploaded on deploy (Artifact Registry, GCS, a local folder)."""

    def upload(self, pipeline: str, package: CompiledPackage, *, version: str,
               tags: Sequence[str], metadata: Mapping[str, str]) -> str:
        """Upload a compiled template; returns its reference (URL or path)."""


class Schedules(Protocol):
    """Recurring runs of deployed templates (Vertex AI schedules, KFP recurring runs)."""

    def apply(self, pipeline: str, template: str, schedule: ScheduleOptions, *,
              parameters: Mapping[str, Any]) -> str:
        """Create or update the pipeline's schedule (resumed if it was paused); its id."""

    def remove(self, pipeline: str) -> None:
        """Pause or delete the pipeline's schedule (as the bot is set up to); nothing when it has none."""
