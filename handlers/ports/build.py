"""From a checked-out commit to what can run: its changed components' images built (`Builder`),
its pipeline compiled with them (`Compiler`), and the compiled pipeline compared with the
merge base's (`PipelineDiffs`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from handlers.run_models import Run
from pipeline_registry.models import ComponentPlan, PipelineInput
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.spec_diff import PipelineDiff


class BuildState(enum.Enum):
    """Outcome of asking a builder for images."""

    SUCCEEDED = "succeeded"
    STARTED = "started"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BuildRequest:
    """Images to build for one run: the components whose content changed."""

    run_id: str
    repo: str
    sha: str
    pr: int | None
    pipeline: str
    repo_dir: Path
    components: tuple[ComponentPlan, ...]
    # The run's base (a pull request's base branch commit): a builder that compiles may compile
    # the pipeline at the merge base too, for the run's pipeline diff.
    base_sha: str | None = None


@dataclass(frozen=True)
class BuildOutcome:
    """What a builder did; STARTED means a status event will follow on the bus."""

    state: BuildState
    detail: str = ""
    url: str | None = None


class Builder(Protocol):
    """Builds component images (local container engine, Cloud Build)."""

    def build(self, request: BuildRequest) -> BuildOutcome:
        """Build (or start building) the images of `request`."""

    def build_status(self, run: Run) -> BuildOutcome | None:
        """Where the run's build is now (reconcile); None when the builder knows no build for it."""


class CompiledPackage(Protocol):
    """A compiled pipeline as handlers see it (`deploy.compiler.CompiledPipeline` is one)."""

    package_path: Path
    inputs: tuple[PipelineInput, ...]
    images: tuple[str, ...]


class Compiler(Protocol):
    """Compiles a pipeline of a checked-out repository with images substituted."""

    def compile(self, repo_dir: Path, pipeline: str, images: Mapping[str, str],
                out_dir: Path, *, config: RepoConfig | None = None, along: Sequence[str] = (),
                repo: str | None = None) -> CompiledPackage:
        """The compiled package; raises `CompileError` with a clear message. `config` replaces the
        checked-out `.kfp-bot.yaml` (trusted keys from the default branch); limits are capped.
        `along` names pipelines of the same checkout to be compiled soon (a pull request's other
        runs): a compiler may compile them in the same batch, for their own `compile` to take.
        `repo` (the repository's full name) lets a compiler note what this compile used, for the
        `warm_up` of the repository's next head."""

    def warm_up(self, repo: str) -> None:
        """A compile of `repo` (its full name) is likely soon (a pull request's new head is being
        planned): start now what it will need, as far as the repository's last compile tells, so
        that its start-up overlaps the checkout and the plan. Never raises."""

    def close(self) -> None:
        """End whatever `warm_up` started and no compile took (the service is stopping)."""


class PipelineDiffs(Protocol):
    """What a change does to a compiled pipeline: its structural diff against the merge base."""

    def diff_against_base(self, repo_dir: Path, pipeline: str, base_sha: str, *,
                          head_package: Path | None = None) -> PipelineDiff:
        """`pipeline` of the checkout at `repo_dir` against the merge base of `base_sha` and its
        HEAD, the base compiled like the head (same compiler, sandbox and limits; cached by
        content). `head_package` is the head's package when it is compiled already. A diff that
        cannot be made here at all is a diff with a `note` saying why; a side that fails to
        compile raises a `KfpBotError` naming it."""
