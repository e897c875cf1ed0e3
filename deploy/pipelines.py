"""Compiling a repository's pipeline with the images the bot builds for it.

One function shared by the `kfp-bot` command line and the service, so that `kfp-bot compile`
on a laptop produces exactly what the bot submits for a pull request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deploy.compiler import CompiledPipeline, compile_pipeline
from deploy.compiler.ahead import CompiledAhead, ahead_key, compile_ahead
from deploy.compiler.batch import (
    STARTUP_SECONDS,
    Outcome,
    batch_seconds,
    compile_pipelines,
    driver_key,
    start_drivers,
)
from deploy.compiler.environments import ResolvedEnvironment
from deploy.compiler.scratch import ScratchTree
from deploy.compiler.warm import DriverKey, DriverPool, remember, remembered
from deploy.sandbox import Sandbox
from kfp_bot_errors import KfpBotError
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.errors import ComponentLoadError
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.repository import Repository
from pipeline_registry.trusted import capped_compile

# A warmed-up interpreter nobody takes ends after this; it may compile a batch of this many pipelines.
WARM_IDLE_SECONDS = 60.0
WARM_BATCH = 50


def images_with_tag(images: Mapping[str, str], tag: str | None) -> dict[str, str]:
    """Component images retagged with `tag` (e.g. a commit SHA); unchanged when tag is None."""
    if not tag:
        return dict(images)
    return {path: f"{ref.rsplit(':', 1)[0]}:{tag}" for path, ref in images.items()}


class RepositoryCompiler:
    """Compiles pipelines of checked-out repositories (the `Compiler` port), with compile limits
    never above the bot's caps (KFP_BOT_COMPILE_MAX_TIMEOUT_SECONDS / _MAX_MEMORY_MB)."""

    def __init__(self, cache_dir: Path, *, sandbox: Sandbox | None = None, max_timeout_seconds: int = 900,
                 max_memory_mb: int = 8192) -> None:
        self.cache_dir = cache_dir
        self.sandbox = sandbox or Sandbox()
        self.max_timeout_seconds = max_timeout_seconds
        self.max_memory_mb = max_memory_mb
        self.ahead = CompiledAhead()
        self.drivers = DriverPool(self.sandbox)  # started by `warm_up`, each taken by one compile

    def warm_up(self, repo: str) -> None:
        """Start the sandboxed interpreters the last compile of `repo` (a repository's full name) used,
        or one of the default compile environment (the bot's kfp) when none is remembered, so that
        they import kfp now, for a compile likely to come soon (a pull request's new head is being
        checked out and planned): that compile then skips the interpreter's start. A pinned
        environment is warmed only when it is already in the cache (none is built for a guess).
        Each has run no repository code until a compile takes it, compiles that one batch only,
        and ends unused after WARM_IDLE_SECONDS; one waits per interpreter at most. Nothing happens
        where repository code may not run."""
        try:
            self.sandbox.check()
        except KfpBotError:
            return  # the compile itself says why nothing runs
        hints = remembered(self.cache_dir, repo)
        starts = dict(hints.drivers) if hints is not None else {}
        if not starts:
            config = self._capped(RepoConfig())
            starts = {driver_key(ResolvedEnvironment(sys.executable), CompileEnvironment(), config):
                      self._warm_seconds(config)}
        for key, seconds in starts.items():
            self.drivers.start(key, seconds=seconds, idle_seconds=WARM_IDLE_SECONDS)

    def _remember(self, repo: str, config: RepoConfig) -> Callable[[Mapping[DriverKey, int]], None]:
        """What notes the drivers a compile of `repo` used, for the warm-up of its next head."""
        return lambda used: remember(self.cache_dir, repo, self.sandbox,
                                     dict.fromkeys(used, self._warm_seconds(config)))

    @staticmethod
    def _warm_seconds(config: RepoConfig) -> float:
        """How long a warmed-up interpreter may live: its idle time, then a batch of WARM_BATCH."""
        return WARM_IDLE_SECONDS + batch_seconds(config, WARM_BATCH)

    def _capped(self, config: RepoConfig) -> RepoConfig:
        return capped_compile(config, max_timeout_seconds=self.max_timeout_seconds, max_memory_mb=self.max_memory_mb)

    def close(self) -> None:
        """End the warmed-up interpreters no compile took."""
        self.drivers.close()

    def compile(self, repo_dir: Path, pipeline: str, images: Mapping[str, str] | None,
                out_dir: Path, scratch: ScratchTree | None = None, *,
                config: RepoConfig | None = None, along: Sequence[str] = (), repo: str | None = None
                ) -> CompiledPipeline:
        """Compile `pipeline` of the working tree at `repo_dir`; images default to content tags.
        Several compiles of one tree share `scratch` (one copy of it) instead of copying it each.

        `config` replaces the checked-out `.kfp-bot.yaml` (a pull request's, with its trusted keys
        taken from the default branch). `along` names pipelines of the same checkout whose own
        compile comes soon (a pull request's other runs): they are compiled in the same sandboxed
        interpreter now, and their own `compile` takes the package (or the error) from this batch.
        `repo` names the repository (its full name) when the interpreters this compile uses should
        be warmed up for its next head (`warm_up`)."""
        repository = Repository.open(repo_dir)
        repository.require_resolved_loads(pipeline)
        chosen = dict(images) if images else repository.component_images(pipeline)
        limited = self._capped(config or repository.config)
        known = repository.pipelines()
        siblings = [name for name in dict.fromkeys(along)
                    if name in known and name != pipeline and self._resolved(repository, name)]
        images_of = {**{name: repository.component_images(name) for name in siblings}, pipeline: chosen}

        def key(name: str) -> str:
            return ahead_key(repo_dir, name, images_of[name], limited)

        def batch(names: list[str], folder: Path) -> dict[str, Outcome]:
            return compile_pipelines(repo_dir, [repository.pipeline(n) for n in names], config=limited,
                                     images=images_of, out_dir=folder, cache_dir=self.cache_dir,
                                     sandbox=self.sandbox, drivers=self.drivers,
                                     on_drivers=self._remember(repo, limited) if repo else None)

        wait = STARTUP_SECONDS + limited.compile.timeout_seconds * (len(known) + 1)
        outcome = self.ahead.take(key(pipeline), Path(out_dir), wait)
        # One pipeline with no interpreter waiting compiles alone, unless its interpreter is to be
        # remembered: the batch compile knows which one it used.
        if outcome is None and not siblings and not self.drivers.waiting() and not repo:
            return compile_pipeline(repo_dir, repository.pipeline(pipeline), config=limited, images=chosen,
                                    out_dir=out_dir, cache_dir=self.cache_dir, scratch=scratch,
                                    sandbox=self.sandbox)
        if outcome is None:
            outcome = compile_ahead(self.ahead, pipeline, siblings, key=key, out_dir=Path(out_dir), batch=batch)
        if isinstance(outcome, KfpBotError):
            raise outcome
        return outcome

    @staticmethod
    def _resolved(repository: Repository, name: str) -> bool:
        """Whether a pipeline's component loads resolve (one that does not fails its own compile)."""
        try:
            repository.require_resolved_loads(name)
        except ComponentLoadError:
            return False
        return True

    def start_drivers(self, repo_dir: Path, pipelines: Sequence[str], scratch: ScratchTree | None = None,
                      pool: DriverPool | None = None) -> DriverPool:
        """Start the sandboxed drivers a `compile_many` of `pipelines` will use (one per compile
        environment, those `pool` lacks) now, so that they import kfp while the caller does its
        own work; pass the pool to `compile_many` and close it after."""
        repository = Repository.open(repo_dir)
        known = repository.pipelines()
        limited = self._capped(repository.config)
        return start_drivers(repo_dir, [repository.pipeline(name) for name in pipelines if name in known],
                             config=limited, cache_dir=self.cache_dir, sandbox=self.sandbox, scratch=scratch,
                             pool=pool)

    def compile_many(self, repo_dir: Path, pipelines: Sequence[str], out_dir: Path,
                     images: Mapping[str, Mapping[str, str]] | None = None, scratch: ScratchTree | None = None, *,
                     config: RepoConfig | None = None, drivers: DriverPool | None = None) -> dict[str, Outcome]:
        """Compile several pipelines of one working tree with one sandboxed interpreter per compile
        environment (`<out_dir>/<name>.yaml`); each gets its package or its error, in order.
        `images` maps a pipeline to its images (content tags for a pipeline it does not name);
        `drivers` holds drivers `start_drivers` started ahead."""
        repository = Repository.open(repo_dir)
        unresolved: dict[str, Outcome] = {}
        for name in pipelines:  # named here, not as a compile's traceback
            try:
                repository.require_resolved_loads(name)
            except ComponentLoadError as exc:
                unresolved[name] = exc
        rest = [name for name in pipelines if name not in unresolved]
        chosen = {name: dict((images or {}).get(name) or repository.component_images(name)) for name in rest}
        limited = self._capped(config or repository.config)
        compiled = compile_pipelines(repo_dir, [repository.pipeline(name) for name in rest], config=limited,
                                     images=chosen, out_dir=out_dir, cache_dir=self.cache_dir, scratch=scratch,
                                     sandbox=self.sandbox, drivers=drivers) if rest else {}
        return {name: unresolved.get(name) or compiled[name] for name in pipelines}
