"""Choosing the runner of each run: the pipeline's target, else the bot's default.

The seed runs production pipelines on Vertex AI and experiments on a KFP cluster; a target set
in `settings.yaml` (`run.target`) or `.kfp-bot.yaml` picks the runner per pipeline, through the
same `handlers.targets.ByTarget` that picks template stores and schedulers. A target with no
configured runner ends the run as failed, saying which setting is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from handlers.ports.run import CollectedResults, Runner, RunRequest, RunSubmission
from handlers.run_models import Run, RunState
from handlers.targets import ByTarget
from kfp_bot_errors import KfpBotError
from pipeline_registry.repo_config import Target

T = TypeVar("T")

_SETTING = {Target.LOCAL: "the embedded runner", Target.VERTEX: "KFP_BOT_GCP_PROJECT and KFP_BOT_PIPELINE_ROOT",
            Target.KFP: "KFP_BOT_KFP_HOST"}


class RoutingRunner:
    """The `Runner` port over several runners, one per target."""

    def __init__(self, runners: ByTarget[Runner]) -> None:
        self.runners = runners

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Submit through the runner of the request's target (or the default)."""
        target = request.target or self.runners.default
        runner = self.runners.for_target(target)
        if runner is None:
            return RunSubmission(RunState.FAILED, detail=(
                f"pipeline '{request.run.pipeline}' targets '{target.value}', which this bot is not "
                f"configured for (set {_SETTING[target]})"))
        return runner.submit_run(request)

    def cancel_run(self, run: Run) -> None:
        """Ask every runner: only the one that has the run acts on it; one backend's outage
        does not stop the others from cancelling."""
        failures = []
        runners = self.runners.every()
        for runner in runners:
            try:
                runner.cancel_run(run)
            except KfpBotError as exc:
                failures.append(exc)
        if failures and len(failures) == len(runners):
            raise failures[0]

    def run_status(self, run: Run) -> RunSubmission | None:
        """The first runner that knows the run answers; an unreachable backend is skipped
        (and its error raised only when no other runner knows the run)."""
        return self._first_known(lambda runner: runner.run_status(run))

    def run_results(self, run: Run) -> CollectedResults | None:
        """The results from the first runner that knows the run, as `run_status` asks."""
        return self._first_known(lambda runner: runner.run_results(run))

    def _first_known(self, ask: Callable[[Runner], T | None]) -> T | None:
        failure: KfpBotError | None = None
        for runner in self.runners.every():
            try:
                answer = ask(runner)
            except KfpBotError as exc:
                failure = exc
                continue
            if answer is not None:
                return answer
        if failure is not None:
            raise failure
        return None
