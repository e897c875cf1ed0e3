"""One batch of compile jobs given to one sandboxed driver, watched through its protocol lines.

`batch.py` decides which pipelines go together and what a failure means; this module writes
the batch's jobs file, hands it to the driver, yields each job as the driver reports its outcome,
and stops the driver when it stalls (past its start-up before `ready`, past a pipeline's budget
and a grace without a protocol line after).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from deploy.compiler.environments import ResolvedEnvironment
from deploy.compiler.failures import no_result_failure, timeout_failure
from deploy.compiler.package import PACKAGE_SUFFIXES
from deploy.compiler.source import python_path_folders
from deploy.compiler.warm import PROTOCOL, Driver
from deploy.errors import CompileError
from deploy.sandbox import SandboxResult
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import CompileMode, RepoConfig

GRACE_SECONDS = 5.0  # beyond a pipeline's budget before the bot stops waiting for the driver itself
# Starting the interpreter and importing kfp, on a loaded machine; a pipeline's own budget may be smaller.
STARTUP_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Job:
    """One pipeline of a batch, prepared: its file, mode, compile environment and images."""

    index: int
    pipeline: Pipeline
    rel_file: str
    mode: CompileMode
    env: CompileEnvironment
    resolved: ResolvedEnvironment
    images: Mapping[str, str]


class DriverRun:
    """One batch given to a sandboxed driver, watched through its protocol lines."""

    def __init__(self, driver: Driver, attempt: int, jobs: list[Job], *, config: RepoConfig, scratch_dir: Path,
                 isolated: bool, output_bytes: int) -> None:
        self.driver, self.work, self.jobs, self.config = driver, driver.work, jobs, config
        self.budget = float(config.compile.timeout_seconds)
        self.startup = max(self.budget, STARTUP_SECONDS)
        self.scratch_dir = scratch_dir
        jobs_file = self.work / f"jobs-{attempt}.json"
        jobs_file.write_text(json.dumps({
            "root": str(scratch_dir), "jobs": [self._job(job) for job in jobs], "budget_seconds": self.budget,
            "output_bytes": output_bytes, "suffixes": list(PACKAGE_SUFFIXES), "kill_strays": isolated}))
        self.started: list[int] = []
        self.stalled: str | None = None  # why the bot stopped the driver
        self._lines: queue.Queue[str | None] = queue.Queue()
        driver.submit(jobs_file, self._lines.put)

    def _job(self, job: Job) -> dict:
        folder = self.work / "jobs" / str(job.index)
        for sub in ("out", "written"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {"function": job.pipeline.function} if job.pipeline.function else {}
        return {"index": job.index, "mode": job.mode.value, "file": job.rel_file, **options,
                "python_path": python_path_folders(self.config, self.scratch_dir),
                "result": str(folder / "verdict.json"), "outcome": str(folder / "outcome.json"),
                "output": str(folder / "out"), "written": str(folder / "written")}

    def finished(self) -> Iterator[Job]:
        """Each job whose outcome the driver wrote, as it announces it; ends when every job is done,
        the driver ended, or it stalled (then it is stopped): past its start-up time before `ready`,
        past a pipeline's budget (and a grace) without a protocol line after."""
        by_index = {job.index: job for job in self.jobs}
        left, ready, since = set(by_index), self.driver.ready.is_set(), time.monotonic()
        while left:
            waited = (self.budget + GRACE_SECONDS) if ready else self.startup
            try:
                line = self._lines.get(timeout=max(since + waited - time.monotonic(), 0.0))
            except queue.Empty:
                self.stalled = "compile" if ready else "start-up"
                self.driver.cancel.set()
                return
            if line is None:  # the driver ended
                return
            words = line.split()
            if len(words) < 2 or words[0] != PROTOCOL:
                continue
            since = time.monotonic()
            if words[1] == "ready":
                ready = True
            elif len(words) == 3 and words[2].isdigit() and words[1] in ("start", "done"):
                index = int(words[2])
                if words[1] == "start":
                    self.started.append(index)
                elif index in left and self.outcome(by_index[index]) is not None:
                    left.discard(index)
                    yield by_index[index]

    def outcome(self, job: Job) -> dict | None:
        """What the driver reported for `job` (None when it did not get to the end of it)."""
        try:
            value = json.loads((self.work / "jobs" / str(job.index) / "outcome.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def in_progress(self, jobs: list[Job]) -> Job | None:
        """The job the driver had started last (None when it started none)."""
        return next((job for job in jobs if self.started and job.index == self.started[-1]), None)

    def driver_failure(self, job: Job, proc: SandboxResult) -> CompileError:
        """The driver ended (or was stopped) while compiling `job`."""
        if self.stalled or proc.timed_out:
            return timeout_failure(job.rel_file, self.budget, proc.tail())
        return no_result_failure(job.rel_file, proc, self.config.compile.memory_mb)

    def startup_failure(self, job: Job, proc: SandboxResult) -> CompileError:
        """The driver never reached a pipeline: the compile environment's interpreter did not start."""
        if self.stalled or proc.timed_out:
            return CompileError(job.rel_file, f"the compile environment did not start within {self.startup:g} s",
                                hint="see the compile output below", output=proc.tail(40))
        return CompileError(job.rel_file, f"the compile environment's Python did not start (exit status "
                                          f"{proc.returncode})", hint="see the compile output below",
                            output=proc.tail(40))
