"""Compiling several pipelines of one repository with one sandboxed interpreter per compile environment.

`compile_pipeline` starts a sandbox, an interpreter and kfp for every pipeline: half a second of
start-up for a tenth of a second of compiling. `compile_pipelines` prepares every pipeline the
same way (pipeline file, mode, environment, images in one scratch copy of the repository), then
hands each compile environment's pipelines to one `batch_driver.py` in the sandbox, which imports
kfp once and compiles each pipeline in a forked child of its own, within the pipeline's time
budget and with its own bounded output. Each outcome becomes a `CompiledPipeline` or the same
`CompileError` the single compile would give.

When the driver itself dies or stops answering (a pipeline killed it, or a `.pth` file of the
environment hangs it), the pipeline it was compiling fails with that cause and the ones it had not
reached are compiled again by a fresh driver. Pipelines whose images would put different images
into the same component are compiled in separate drivers, so each sees exactly its own images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from deploy.compiler.compile import (
    DRIVER,
    finish_compile,
    pipeline_file,
    python_path_folders,
    read_repo_file,
    resolve_mode,
)
from deploy.compiler.environments import ResolvedEnvironment, resolve_environment
from deploy.compiler.failures import no_result_failure, timeout_failure
from deploy.compiler.images import substitute_images
from deploy.compiler.package import PACKAGE_SUFFIXES, CompiledPipeline
from deploy.compiler.scratch import ScratchTree, copy_tree
from deploy.errors import CompileError
from deploy.sandbox import Sandbox, SandboxResult
from kfp_bot_errors import KfpBotError
from pipeline_registry.compile_env import CompileEnvironment, pipeline_environment
from pipeline_registry.models import INLINE_PREFIX, Pipeline
from pipeline_registry.repo_config import CompileMode, RepoConfig

BATCH_DRIVER = Path(__file__).with_name("batch_driver.py")
PROTOCOL = "kfp-bot-batch"
GRACE_SECONDS = 5.0  # beyond a pipeline's budget before the bot stops waiting for the driver itself
# Starting the interpreter and importing kfp, on a loaded machine; a pipeline's own budget may be smaller.
STARTUP_SECONDS = 30.0

Outcome = CompiledPipeline | KfpBotError


@dataclasses.dataclass(frozen=True)
class _Job:
    index: int
    pipeline: Pipeline
    rel_file: str
    mode: CompileMode
    env: CompileEnvironment
    resolved: ResolvedEnvironment
    images: Mapping[str, str]


def compile_pipelines(repo_dir: Path, pipelines: Sequence[Pipeline], *, config: RepoConfig,
                      images: Mapping[str, Mapping[str, str]], out_dir: Path, cache_dir: Path,
                      python: str = sys.executable, on_line: Callable[[str], None] | None = None,
                      scratch: ScratchTree | None = None, sandbox: Sandbox | None = None) -> dict[str, Outcome]:
    """Compile `pipelines` of the repository at `repo_dir` into `out_dir` (`<name>.yaml` or `.json`),
    each with its `images[name]` substituted; every pipeline gets its package or its error.

    The sandbox (strict by default) is checked first: without isolation nothing runs and
    `SandboxUnavailable` is raised. `scratch` is a copy of the repository to work in (reset after)."""
    sandbox = sandbox or Sandbox()
    isolated = sandbox.check().available
    repo_dir = Path(repo_dir).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    environments: dict[CompileEnvironment, ResolvedEnvironment | KfpBotError] = {}
    jobs: list[_Job] = []
    for index, pipeline in enumerate(pipelines):
        try:
            rel_file = pipeline_file(repo_dir, pipeline, config)
            source = (repo_dir / rel_file).read_text(encoding="utf-8", errors="replace")
            mode = resolve_mode(config.compile.mode, source, rel_file)
            env = pipeline_environment(lambda path: read_repo_file(repo_dir, path), config, pipeline)
            if env not in environments:
                try:
                    environments[env] = resolve_environment(
                        env, cache_dir=Path(cache_dir), python=python, on_line=on_line,
                        fallback=config.compile.fallback_to_nearest_patch, sandbox=sandbox)
                except KfpBotError as exc:
                    environments[env] = exc
            resolved = environments[env]
            if isinstance(resolved, KfpBotError):
                raise resolved
        except KfpBotError as exc:
            outcomes[pipeline.name] = exc
            continue
        jobs.append(_Job(index, pipeline, rel_file, mode, env, resolved, dict(images.get(pipeline.name, {}))))
    for group in _groups(jobs):
        outcomes.update(_compile_group(repo_dir, group, config=config, out_dir=out_dir, scratch=scratch,
                                       sandbox=sandbox, isolated=isolated))
    return {p.name: outcomes[p.name] for p in pipelines}


def _groups(jobs: list[_Job]) -> list[list[_Job]]:
    """One group per interpreter, split where two pipelines want different images in one folder."""
    groups: list[tuple[str, dict[str, str], list[_Job]]] = []
    for job in jobs:
        for python, merged, members in groups:
            if python == job.resolved.python and all(merged.get(k, v) == v for k, v in job.images.items()):
                merged.update(job.images)
                members.append(job)
                break
        else:
            groups.append((job.resolved.python, dict(job.images), [job]))
    return [members for _, _, members in groups]


def _compile_group(repo_dir: Path, jobs: list[_Job], *, config: RepoConfig, out_dir: Path,
                   scratch: ScratchTree | None, sandbox: Sandbox, isolated: bool) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="kfp-bot-batch-", ignore_cleanup_errors=True) as tmp, \
            _scratch_copy(repo_dir, scratch) as scratch_dir:
        work = Path(tmp)
        # The group's images agree on every folder: each spec is rewritten once (shared components).
        # Images named inline in Python code are replaced in one walk of the tree, all together.
        merged = {k: v for job in jobs for k, v in job.images.items()}
        inline = {k: v for k, v in merged.items() if k.startswith(INLINE_PREFIX)}
        refused: dict[str, CompileError] = {}
        for keys in [[k] for k in sorted(merged) if k not in inline] + ([sorted(inline)] if inline else []):
            try:
                substitute_images(scratch_dir, {k: merged[k] for k in keys})
            except CompileError as exc:
                refused.update(dict.fromkeys(keys, exc))
        pending = []
        for job in jobs:
            failed = next((refused[folder] for folder in sorted(job.images) if folder in refused), None)
            if failed is not None:
                outcomes[job.pipeline.name] = failed
                continue
            pending.append(job)
        driver_dir = work / "driver"
        driver_dir.mkdir()
        shutil.copyfile(DRIVER, driver_dir / "kfp_bot_compile_driver.py")
        shutil.copyfile(BATCH_DRIVER, driver_dir / "kfp_bot_batch_driver.py")
        attempt = 0
        while pending:
            attempt += 1
            run = _DriverRun(work, attempt, pending, config=config, scratch_dir=scratch_dir, sandbox=sandbox,
                             isolated=isolated)
            proc = run.start()
            for job in pending:
                outcome = run.outcome(job)
                if outcome is not None:
                    outcomes[job.pipeline.name] = _finish(job, outcome, work, config, out_dir, repo_dir)
            current = run.in_progress(pending)
            rest = [job for job in pending if job.pipeline.name not in outcomes]
            if current is None:  # it never reached a pipeline: a fresh driver would fail the same way
                for job in rest:
                    outcomes[job.pipeline.name] = run.startup_failure(job, proc)
                break
            if current.pipeline.name not in outcomes:
                outcomes[current.pipeline.name] = run.driver_failure(current, proc)
            pending = [job for job in rest if job is not current]
    return outcomes


@contextlib.contextmanager
def _scratch_copy(repo_dir: Path, shared: ScratchTree | None) -> Iterator[Path]:
    """The shared scratch tree (reset afterwards), or a copy of the repository for this group."""
    if shared is not None:
        try:
            yield shared.root
        finally:
            shared.reset()
        return
    with tempfile.TemporaryDirectory(prefix="kfp-bot-batch-repo-", ignore_cleanup_errors=True) as tmp:
        copy_tree(repo_dir, Path(tmp) / "repo")
        yield Path(tmp) / "repo"


class _DriverRun:
    """One sandboxed batch driver over `jobs`, watched through its protocol lines."""

    def __init__(self, work: Path, attempt: int, jobs: list[_Job], *, config: RepoConfig, scratch_dir: Path,
                 sandbox: Sandbox, isolated: bool) -> None:
        self.work, self.jobs, self.config, self.scratch_dir, self.sandbox = work, jobs, config, scratch_dir, sandbox
        self.budget = float(config.compile.timeout_seconds)
        self.startup = max(self.budget, STARTUP_SECONDS)
        self.jobs_file = work / f"jobs-{attempt}.json"
        self.jobs_file.write_text(json.dumps({
            "jobs": [self._job(job) for job in jobs], "budget_seconds": self.budget,
            "output_bytes": sandbox.output_kb * 1024, "suffixes": list(PACKAGE_SUFFIXES), "kill_strays": isolated}))
        self.ready = False
        self.started: list[int] = []
        self.stalled: str | None = None  # why the bot stopped the driver
        self._cancel, self._done = threading.Event(), threading.Event()
        self._since = time.monotonic()

    def _job(self, job: _Job) -> dict:
        folder = self.work / "jobs" / str(job.index)
        for sub in ("out", "written"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {"function": job.pipeline.function} if job.pipeline.function else {}
        return {"index": job.index, "mode": job.mode.value, "file": job.rel_file, **options,
                "python_path": python_path_folders(self.config, self.scratch_dir),
                "result": str(folder / "verdict.json"), "outcome": str(folder / "outcome.json"),
                "output": str(folder / "out"), "written": str(folder / "written")}

    def start(self) -> SandboxResult:
        """Run the driver to its end; a watchdog stops it when it hangs past a budget."""
        interpreter = self.jobs[0].resolved.python
        environment = [Path(interpreter).parent.parent] if not self.jobs[0].env.is_default else []
        seconds = self.startup + len(self.jobs) * (self.budget + 1) + GRACE_SECONDS
        limits = self.sandbox.limits(seconds, self.config.compile.memory_mb)
        watchdog = threading.Thread(target=self._watch, daemon=True)
        watchdog.start()
        try:
            return self.sandbox.run([interpreter, str(self.work / "driver" / "kfp_bot_batch_driver.py"), "--jobs",
                                     str(self.jobs_file)], cwd=self.scratch_dir, limits=limits,
                                    writable=[self.work, self.scratch_dir], read_only=environment,
                                    env=dict(self.config.compile.env), on_line=self._line, cancel=self._cancel)
        finally:
            self._done.set()
            watchdog.join()

    def _line(self, line: str) -> None:
        words = line.split()
        if len(words) < 2 or words[0] != PROTOCOL:
            return
        if words[1] == "ready":
            self.ready = True
        elif words[1] == "start" and len(words) == 3 and words[2].isdigit():
            self.started.append(int(words[2]))
        self._since = time.monotonic()

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            waited = time.monotonic() - self._since
            if not self.ready and waited > self.startup:
                self.stalled = "start-up"
            elif self.ready and waited > self.budget + GRACE_SECONDS:
                self.stalled = "compile"
            if self.stalled:
                self._cancel.set()
                return

    def outcome(self, job: _Job) -> dict | None:
        """What the driver reported for `job` (None when it did not get to the end of it)."""
        try:
            value = json.loads((self.work / "jobs" / str(job.index) / "outcome.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def in_progress(self, jobs: list[_Job]) -> _Job | None:
        """The job the driver had started last (None when it started none)."""
        return next((job for job in jobs if self.started and job.index == self.started[-1]), None)

    def driver_failure(self, job: _Job, proc: SandboxResult) -> CompileError:
        """The driver ended (or was stopped) while compiling `job`."""
        if self.stalled or proc.timed_out:
            return timeout_failure(job.rel_file, self.budget, proc.tail())
        return no_result_failure(job.rel_file, proc, self.config.compile.memory_mb)

    def startup_failure(self, job: _Job, proc: SandboxResult) -> CompileError:
        """The driver never reached a pipeline: the compile environment's interpreter did not start."""
        if self.stalled or proc.timed_out:
            return CompileError(job.rel_file, f"the compile environment did not start within {self.startup:g} s",
                                hint="see the compile output below", output=proc.tail(40))
        return CompileError(job.rel_file, f"the compile environment's Python did not start (exit status "
                                          f"{proc.returncode})", hint="see the compile output below",
                            output=proc.tail(40))


def _finish(job: _Job, outcome: dict, work: Path, config: RepoConfig, out_dir: Path, repo_dir: Path) -> Outcome:
    folder = work / "jobs" / str(job.index)
    output = str(outcome.get("output") or "")
    proc = SandboxResult(returncode=int(outcome.get("returncode") or 0), stdout="", stderr=output,
                         timed_out=bool(outcome.get("timed_out")))
    verdict = outcome.get("verdict")
    verdict = verdict if isinstance(verdict, dict) else None
    try:
        return finish_compile(job.pipeline.name, job.rel_file, job.mode, proc, verdict,
                              produced_in=folder / "out" if job.mode is CompileMode.IMPORT else folder / "written",
                              before={}, out_dir=out_dir, env=job.env, resolved=job.resolved, config=config,
                              images=job.images, repo_dir=repo_dir)
    except KfpBotError as exc:
        return exc

