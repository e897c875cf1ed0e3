"""Compiling one pipeline of an untrusted repository, safely, with its own kfp SDK.

The steps: find the pipeline file, pick the compile environment (the repository's pinned kfp in
a cached virtual environment, or the bot's own kfp 2), copy the repository to a scratch folder
(the user's working tree and the bot's checkout are never modified), put the freshly built
images into the copied component specs, then run `driver.py` in the sandbox with the
configured time and memory limits. The driver's JSON verdict becomes either a
`CompiledPipeline` or a `CompileError` that names the pipeline file and says what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deploy.compiler.environments import ResolvedEnvironment, resolve_environment
from deploy.compiler.failures import describe_failure, no_result_failure, timeout_failure
from deploy.compiler.images import substitute_images
from deploy.compiler.package import CompiledPipeline
from deploy.compiler.produced import check_images, driver_package, snapshot, store_package, written_package
from deploy.compiler.scratch import ScratchTree, copy_tree
from deploy.compiler.source import driver_options, local_package, pipeline_file, read_repo_file, resolve_mode
from deploy.sandbox import Sandbox, SandboxResult
from pipeline_registry.compile_env import CompileEnvironment, pipeline_environment
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import CompileMode, RepoConfig

DRIVER = Path(__file__).with_name("driver.py")

def compile_pipeline(repo_dir: Path, pipeline: Pipeline, *, config: RepoConfig, images: Mapping[str, str],
                     out_dir: Path, cache_dir: Path, python: str = sys.executable,
                     on_line: Callable[[str], None] | None = None,
                     scratch: ScratchTree | None = None, sandbox: Sandbox | None = None) -> CompiledPipeline:
    """Compile `pipeline` of the repository at `repo_dir` into `out_dir`, with `images`
    (component folder -> image reference) substituted into the component specs first.

    `scratch` is a copy of the repository shared by the compiles of one check (reset after this
    one); without it the repository is copied for this compile alone. The repository's code runs
    in `sandbox` (strict by default): it sees its scratch copy and its work folder (writable) and
    the compile environment (read-only), nothing else of this machine."""
    sandbox = sandbox or Sandbox()
    sandbox.check()  # refuse before building anything when repository code may not run
    repo_dir = Path(repo_dir).resolve()
    rel_file = pipeline_file(repo_dir, pipeline, config)
    source = (repo_dir / rel_file).read_text(encoding="utf-8", errors="replace")
    mode = resolve_mode(config.compile.mode, source, rel_file)
    env = pipeline_environment(lambda path: read_repo_file(repo_dir, path), config, pipeline)
    resolved = resolve_environment(env, cache_dir=Path(cache_dir), python=python, on_line=on_line,
                                   fallback=config.compile.fallback_to_nearest_patch, sandbox=sandbox)
    interpreter = resolved.python
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shared = scratch
    with tempfile.TemporaryDirectory(prefix="kfp-bot-compile-", ignore_cleanup_errors=True) as tmp, \
            _resetting(shared):
        work = Path(tmp)
        scratch_dir = work / "repo" if shared is None else shared.root
        if shared is None:
            copy_tree(repo_dir, scratch_dir)
        substitute_images(scratch_dir, images)
        driver = work / "driver" / "kfp_bot_compile_driver.py"
        driver.parent.mkdir()
        shutil.copyfile(DRIVER, driver)
        before = snapshot(scratch_dir)
        result_file = work / "result.json"
        argv = [interpreter, str(driver), "--mode", mode.value, "--file", rel_file,
                "--result", str(result_file), "--output", str(work / "out"),
                *driver_options(pipeline, config, scratch_dir)]
        limits = sandbox.limits(config.compile.timeout_seconds, config.compile.memory_mb)
        environment = [Path(interpreter).parent.parent] if not env.is_default else []
        writable = [work] if shared is None else [work, scratch_dir]
        proc = sandbox.run(argv, cwd=scratch_dir, limits=limits, writable=writable, read_only=environment,
                           env=dict(config.compile.env), on_line=on_line)
        produced_in = work / "out" if mode is CompileMode.IMPORT else scratch_dir
        return finish_compile(pipeline.name, rel_file, mode, proc, _read_verdict(result_file), produced_in=produced_in,
                              before=before, out_dir=out_dir, env=env, resolved=resolved, config=config,
                              images=images, repo_dir=repo_dir)


def finish_compile(name: str, rel_file: str, mode: CompileMode, proc: SandboxResult, verdict: dict[str, Any] | None,
                   *, produced_in: Path, before: dict[str, tuple[int, int]], out_dir: Path, env: CompileEnvironment,
                   resolved: ResolvedEnvironment, config: RepoConfig, images: Mapping[str, str],
                   repo_dir: Path) -> CompiledPipeline:
    """A sandboxed compile's outcome (its process and the driver's verdict) as the package stored in
    `out_dir`, or the `CompileError` a user can act on. The package is found on disk, never taken
    from the verdict: in `produced_in` (import mode), or among the package files that changed
    there since `before` (script mode). Shared by the single and the batch compile."""
    if proc.timed_out:
        raise timeout_failure(rel_file, config.compile.timeout_seconds, proc.tail())
    if verdict is None:
        raise no_result_failure(rel_file, proc, config.compile.memory_mb)
    if not verdict.get("ok"):
        raise describe_failure(rel_file, verdict, env=env, config=config, output=proc.tail(40),
                               local_package=lambda package: local_package(repo_dir, package))
    if mode is CompileMode.IMPORT:
        produced = driver_package(produced_in, rel_file)
    else:
        produced = written_package(produced_in, before, rel_file, name)
    compiled = store_package(produced, out_dir, name, rel_file)
    if not compiled.sdk_version and verdict.get("sdk_version"):
        compiled = dataclasses.replace(compiled, sdk_version=str(verdict["sdk_version"]))
    if resolved.note:
        compiled = dataclasses.replace(compiled, notes=(*compiled.notes, resolved.note))
    check_images(compiled, images, rel_file)
    return compiled


@contextlib.contextmanager
def _resetting(scratch: ScratchTree | None) -> Iterator[None]:
    try:
        yield
    finally:
        if scratch is not None:
            scratch.reset()


def _read_verdict(result_file: Path) -> dict[str, Any] | None:
    try:
        verdict = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) else None
