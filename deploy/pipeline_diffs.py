"""Compile a pipeline at a base and a head revision and diff the compiled specs.

Used by `kfp-bot diff` and, as the `PipelineDiffs` port, by the service (each run's compile step
and `/plan`). Each side is checked out into its own temporary clone (sharing the
repository's objects, so nothing is copied from the network) and compiled by the same
`RepositoryCompiler` the service uses, with the images its own revision would build (content
tags), so an image change shows as the tag a run would use. A committed revision's compiled
package is kept with its settings by its tree id and the pipeline (a tree decides its images),
so the base side of a pull request is compiled once however often its head moves, and read
back without a checkout.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import CompileError
from deploy.pipelines import RepositoryCompiler
from pipeline_registry.errors import RepositoryError
from pipeline_registry.repository import Repository
from pipeline_registry.snapshot import merge_base, repository_root, resolve_revision
from pipeline_registry.spec_diff import PipelineDiff, diff_settings, diff_specs, flatten_settings

_SPECS_DIR = "compiled-specs"


@dataclass(frozen=True)
class CompiledSide:
    """A pipeline on one side of a diff: its package document and flattened settings (None: absent)."""

    document: dict[str, Any] | None
    settings: dict[str, Any]
    note: str = ""


class PipelineDiffer:
    """Diffs pipelines between revisions of a local git repository."""

    def __init__(self, compiler: RepositoryCompiler, cache_dir: Path) -> None:
        self.compiler = compiler
        self.specs_dir = Path(cache_dir) / _SPECS_DIR

    def diff(self, repo_dir: Path, name: str, base: str, head: str | None) -> PipelineDiff:
        """The diff of pipeline `name` from revision `base` to `head` (None: the working tree).

        `base` is compared as the merge base of the two, as a pull request's changes are."""
        base = merge_base(repo_dir, base, head or "HEAD")
        return compared(name, self._side(repo_dir, name, base), self._side(repo_dir, name, head))

    def diff_against_base(self, repo_dir: Path, pipeline: str, base_sha: str, *,
                          head_package: Path | None = None) -> PipelineDiff:
        """The `PipelineDiffs` port: the checkout at `repo_dir` against the merge base of `base_sha`
        and its HEAD. The head's package is read as compiled (`head_package`) or compiled here
        (`/plan`, cached by tree like the base)."""
        if head_package is None:
            return self.diff(repo_dir, pipeline, base_sha, "HEAD")
        base = merge_base(repo_dir, base_sha, "HEAD")
        settings = settings_side(Repository.open(repo_dir), pipeline)
        after = CompiledSide(yaml.safe_load(Path(head_package).read_text(encoding="utf-8")), settings)
        return compared(pipeline, self._side(repo_dir, pipeline, base), after)

    def _side(self, repo_dir: Path, name: str, revision: str | None) -> CompiledSide:
        if revision is None:
            return self._compiled(Path(repo_dir), name)
        sha = resolve_revision(repo_dir, revision)
        tree = _git(repo_dir, "rev-parse", "--verify", "--quiet", f"{sha}^{{tree}}")
        cached = self._cache_path(tree, name)
        kept = _read_kept(cached)
        if kept is not None:  # no checkout at all: a run's base is read from here after its first run
            return kept
        with revision_checkout(Path(repo_dir), sha) as folder:
            side = self._compiled(folder, name)
        if side.document is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # One partial file per writer: two runs of one base may compile it at the same time.
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cached.parent, suffix=".partial",
                                             delete=False) as partial:
                yaml.safe_dump({"document": side.document, "settings": side.settings}, partial, sort_keys=False)
            Path(partial.name).replace(cached)
        return side

    def _compiled(self, folder: Path, name: str) -> CompiledSide:
        repository = Repository.open(folder)
        if name not in repository.pipelines():
            return CompiledSide(None, {}, note=f"no pipeline `{name}` at {repository.revision or 'the working tree'}")
        with tempfile.TemporaryDirectory(prefix="kfp-bot-diff-") as tmp:
            text = self.compiler.compile(folder, name, repository.component_images(name), Path(tmp)).read_text()
        return CompiledSide(yaml.safe_load(text), settings_side(repository, name))

    def _cache_path(self, tree: str, name: str) -> Path:
        # A tree decides its images (content tags) and settings; the interpreter's version decides
        # the default compile environment.
        key = json.dumps([tree, name, sys.version_info[:2]])
        return self.specs_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.yaml"


def _read_kept(path: Path) -> CompiledSide | None:
    """A side kept by `_side`; None when there is none (or it is unreadable: compiled again)."""
    try:
        kept = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(kept, dict) or not isinstance(kept.get("document"), dict) \
            or not isinstance(kept.get("settings"), dict):
        return None
    return CompiledSide(kept["document"], kept["settings"])


def compared(name: str, before: CompiledSide, after: CompiledSide) -> PipelineDiff:
    """The diff of two compiled sides (a side without a document: the pipeline is not there)."""
    if before.document is None and after.document is None:
        raise CompileError(name, before.note or after.note or "the pipeline exists on neither side",
                           hint="check the name with `kfp-bot plan`")
    if before.document is None:
        return PipelineDiff(name, diff_settings({}, after.settings), added=True)
    if after.document is None:
        return PipelineDiff(name, removed=True, note=after.note)
    return PipelineDiff(name, diff_specs(before.document, after.document)
                        + diff_settings(before.settings, after.settings))


class UnavailableDiffs:
    """The `PipelineDiffs` port where there is no compiled base to compare with (Cloud Build
    building from a repository connection): every diff is a note saying why there is none."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def diff_against_base(self, repo_dir: Path, pipeline: str, base_sha: str, *,
                          head_package: Path | None = None) -> PipelineDiff:
        """No diff, and why."""
        return PipelineDiff(pipeline, note=self.reason)


def settings_side(repository: Repository, name: str) -> dict[str, Any]:
    """A pipeline's `settings.yaml` parameters and run options, flattened for `diff_settings`."""
    return flatten_settings(_settings_document(repository, name))


def _settings_document(repository: Repository, name: str) -> dict[str, Any]:
    settings = repository.settings(name)
    document: dict[str, Any] = {"parameters": dict(settings.parameters)}
    run = settings.run.model_dump(mode="json", exclude_none=True)
    if run:
        document["run"] = run
    return document


@contextmanager
def revision_checkout(repo_dir: Path, sha: str) -> Iterator[Path]:
    """A throwaway clone of `repo_dir` at commit `sha`, sharing its objects (nothing downloaded)."""
    with tempfile.TemporaryDirectory(prefix="kfp-bot-rev-") as tmp:
        folder = Path(tmp) / "repo"
        _git(repo_dir, "clone", "--quiet", "--shared", "--no-checkout", "--",
             str(repository_root(repo_dir)), str(folder))
        _git(folder, "checkout", "--quiet", "--detach", sha, "--")
        yield folder


def _git(repo_dir: Path, *args: str) -> str:
    """git's output; arguments are SHAs and paths the bot resolved itself, never user text."""
    result = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        raise RepositoryError(f"git {args[0]} failed in {repo_dir}: {detail}")
    return result.stdout.strip()
