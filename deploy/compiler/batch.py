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

The driver is started before the tree is copied and the images are put in, so kfp is imported
meanwhile; `start_drivers` starts it earlier still, as soon as the compile environments are known
(`kfp-bot check` while it reads the pipelines' settings), and outcomes are read as the driver
announces them, while it compiles the next pipeline (`batch_run.py`).
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from deploy.compiler.batch_run import GRACE_SECONDS, STARTUP_SECONDS, DriverRun, Job
from deploy.compiler.compile import finish_compile
from deploy.compiler.environments import ResolvedEnvironment, resolve_environment
from deploy.compiler.images import substitute_images
from deploy.compiler.package import CompiledPipeline
from deploy.compiler.scratch import ScratchTree, copy_tree
from deploy.compiler.source import pipeline_file, read_repo_file, resolve_mode
from deploy.compiler.warm import Driver, DriverKey, DriverPool, hints_key, remember
from deploy.errors import CompileError
from deploy.sandbox import Sandbox, SandboxResult, SandboxUnavailable
from kfp_bot_errors import KfpBotError
from pipeline_registry.compile_env import CompileEnvironment, pipeline_environment
from pipeline_registry.models import INLINE_PREFIX, Pipeline
from pipeline_registry.repo_config import CompileMode, RepoConfig

# How long a driver started ahead waits for its work beyond what the work may take (then it ends).
AHEAD_SECONDS = 120.0

Outcome = CompiledPipeline | KfpBotError


def compile_pipelines(repo_dir: Path, pipelines: Sequence[Pipeline], *, config: RepoConfig,
                      images: Mapping[str, Mapping[str, str]], out_dir: Path, cache_dir: Path,
                      python: str = sys.executable, on_line: Callable[[str], None] | None = None,
                      scratch: ScratchTree | None = None, sandbox: Sandbox | None = None,
                      drivers: DriverPool | None = None,
                      on_drivers: Callable[[Mapping[DriverKey, int]], None] | None = None) -> dict[str, Outcome]:
    """Compile `pipelines` of the repository at `repo_dir` into `out_dir` (`<name>.yaml` or `.json`),
    each with its `images[name]` substituted; every pipeline gets its package or its error.

    The sandbox (strict by default) is checked first: without isolation nothing runs and
    `SandboxUnavailable` is raised. `scratch` is a copy of the repository to work in (reset after);
    `drivers` may hold drivers started ahead for these compile environments (`warm.py`).
    `on_drivers` is told, after the compile, which drivers it used (and for how many pipelines
    each), so that the next compile of the repository can have them started ahead."""
    sandbox = sandbox or Sandbox()
    isolated = sandbox.check().available
    repo_dir = Path(repo_dir).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    environments: dict[CompileEnvironment, ResolvedEnvironment | KfpBotError] = {}
    jobs: list[Job] = []
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
        jobs.append(Job(index, pipeline, rel_file, mode, env, resolved, dict(images.get(pipeline.name, {}))))
    for group in _groups(jobs):
        outcomes.update(_compile_group(repo_dir, group, config=config, out_dir=out_dir, scratch=scratch,
                                       sandbox=sandbox, isolated=isolated, drivers=drivers))
    if on_drivers is not None and jobs:
        on_drivers(Counter(driver_key(job.resolved, job.env, config) for job in jobs))
    return {p.name: outcomes[p.name] for p in pipelines}


def start_drivers(repo_dir: Path, pipelines: Sequence[Pipeline], *, config: RepoConfig, cache_dir: Path,
                  python: str = sys.executable, sandbox: Sandbox, scratch: ScratchTree | None = None,
                  pool: DriverPool | None = None) -> DriverPool:
    """Start now, for a `compile_pipelines` of `pipelines` to come, one driver per compile environment
    they use (in `pool`, which may hold some already), so that each imports kfp while the caller
    prepares; the caller closes the pool. A pipeline whose environment cannot be resolved gets none
    (its compile names the problem). The drivers are remembered for `warm.start_remembered`."""
    repo_dir = Path(repo_dir).resolve()
    pool = pool or DriverPool(sandbox)
    try:
        sandbox.check()
    except SandboxUnavailable:  # nothing will run; `compile_pipelines` says why
        return pool
    counts: dict[DriverKey, int] = {}
    for pipeline in pipelines:
        try:
            env = pipeline_environment(lambda path: read_repo_file(repo_dir, path), config, pipeline)
            resolved = resolve_environment(env, cache_dir=Path(cache_dir), python=python, sandbox=sandbox,
                                           fallback=config.compile.fallback_to_nearest_patch)
        except KfpBotError:
            continue
        key = driver_key(resolved, env, config)
        counts[key] = counts.get(key, 0) + 1
    starts = {key: AHEAD_SECONDS + batch_seconds(config, count) for key, count in counts.items()}
    for key, seconds in starts.items():
        pool.start(key, seconds=seconds, writable=[scratch.root] if scratch else [])
    remember(cache_dir, hints_key(repo_dir), pool.sandbox, starts)
    return pool


def _groups(jobs: list[Job]) -> list[list[Job]]:
    """One group per interpreter, split where two pipelines want different images in one folder."""
    groups: list[tuple[str, dict[str, str], list[Job]]] = []
    for job in jobs:
        for python, merged, members in groups:
            if python == job.resolved.python and all(merged.get(k, v) == v for k, v in job.images.items()):
                merged.update(job.images)
                members.append(job)
                break
        else:
            groups.append((job.resolved.python, dict(job.images), [job]))
    return [members for _, _, members in groups]


def driver_key(resolved: ResolvedEnvironment, env: CompileEnvironment, config: RepoConfig) -> DriverKey:
    """What a driver for this compile environment and configuration is started with."""
    environment = None if env.is_default else Path(resolved.python).parent.parent
    return DriverKey(python=resolved.python, environment=environment, env=tuple(sorted(config.compile.env.items())),
                     memory_mb=config.compile.memory_mb)


def batch_seconds(config: RepoConfig, count: int) -> float:
    """How long a driver compiling `count` pipelines may live in all (its start-up included)."""
    budget = float(config.compile.timeout_seconds)
    return max(budget, STARTUP_SECONDS) + count * (budget + 1) + GRACE_SECONDS


def _compile_group(repo_dir: Path, jobs: list[Job], *, config: RepoConfig, out_dir: Path,
                   scratch: ScratchTree | None, sandbox: Sandbox, isolated: bool,
                   drivers: DriverPool | None) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    key = driver_key(jobs[0].resolved, jobs[0].env, config)
    shared = scratch.root if scratch is not None else None
    # A driver started ahead (its kfp already imported), else one started now: it imports kfp
    # while the tree is copied and the images are put in.
    driver = drivers.take(key, seconds=batch_seconds(config, len(jobs)), scratch=shared) \
        if drivers is not None and drivers.sandbox == sandbox else None
    driver = driver or Driver(key, sandbox=sandbox, seconds=batch_seconds(config, len(jobs)),
                              writable=[shared] if shared else [])
    used = [driver]
    try:
        with _scratch_copy(repo_dir, scratch, driver.work) as scratch_dir:
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
            attempt = 0
            while pending:
                attempt += 1
                if attempt > 1:  # the last one died: a fresh driver for the pipelines it had not reached
                    driver = Driver(key, sandbox=sandbox, seconds=batch_seconds(config, len(pending)),
                                    writable=[scratch_dir])
                    used.append(driver)
                run = DriverRun(driver, attempt, pending, config=config, scratch_dir=scratch_dir,
                                 isolated=isolated, output_bytes=sandbox.output_kb * 1024)
                for job in run.finished():  # each package is read while the driver compiles the next
                    outcomes[job.pipeline.name] = _finish(job, run.outcome(job) or {}, driver.work, config, out_dir,
                                                          repo_dir)
                proc = driver.wait()
                for job in pending:
                    outcome = run.outcome(job) if job.pipeline.name not in outcomes else None
                    if outcome is not None:
                        outcomes[job.pipeline.name] = _finish(job, outcome, driver.work, config, out_dir, repo_dir)
                current = run.in_progress(pending)
                rest = [job for job in pending if job.pipeline.name not in outcomes]
                if current is None:  # it never reached a pipeline: a fresh driver would fail the same way
                    for job in rest:
                        outcomes[job.pipeline.name] = run.startup_failure(job, proc)
                    break
                if current.pipeline.name not in outcomes:
                    outcomes[current.pipeline.name] = run.driver_failure(current, proc)
                pending = [job for job in rest if job is not current]
    finally:
        for each in used:
            each.close()
    return outcomes


@contextlib.contextmanager
def _scratch_copy(repo_dir: Path, shared: ScratchTree | None, into: Path) -> Iterator[Path]:
    """The shared scratch tree (reset afterwards), or a copy of the repository in the driver's folder."""
    if shared is not None:
        try:
            yield shared.root
        finally:
            shared.reset()
        return
    copy_tree(repo_dir, into / "repo")
    yield into / "repo"


def _finish(job: Job, outcome: dict, work: Path, config: RepoConfig, out_dir: Path, repo_dir: Path) -> Outcome:
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

