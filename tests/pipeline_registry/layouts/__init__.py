"""Four repository shapes unlike the template's, each with its history and what each commit must plan.

Written for this project after the layouts real Kubeflow Pipelines repositories have (issue 11):
flat pipeline files with one root image, an installable package of pipelines with component
packages, samples-style folders, flat pipelines with a components folder and inline images. Each
shape is a `Shape`: its `.kfp-bot.yaml` (at most ten lines), its first commit, and `Step`s that
touch a pipeline, a shared module, a component package, a Dockerfile input, the compile pins or
documentation, with the pipelines each step must affect and the images it must rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.gitrepo import GitRepo


@dataclass(frozen=True)
class Step:
    """One commit: files written (None deletes), the pipelines it affects and the images it rebuilds."""

    message: str
    changes: dict[str, str | None]
    affected: frozenset[str]
    # pipeline -> names of its components (images) that must be rebuilt
    rebuilds: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Shape:
    """A repository shape: configuration, first commit, history, and the pipelines it has."""

    name: str
    config: str
    files: dict[str, str]
    history: tuple[Step, ...]
    pipelines: tuple[str, ...]


def step(message: str, changes: dict[str, str | None], affected: set[str] | tuple[str, ...] = (),
         rebuilds: dict[str, set[str]] | None = None) -> Step:
    """A `Step` written briefly: `step("train faster", {...}, {"train"}, {"train": {"trainer"}})`."""
    return Step(message, changes, frozenset(affected), {k: frozenset(v) for k, v in (rebuilds or {}).items()})


def build(shape: Shape, repo: GitRepo) -> list[str]:
    """Commit the shape's first tree and its history; the commit SHAs, oldest first."""
    for path, text in shape.files.items():
        repo.write(path, text)
    return [repo.commit(f"{shape.name}: initial"), *replay(shape, repo)]


def replay(shape: Shape, repo: GitRepo) -> list[str]:
    """Commit the shape's history on top of what `repo` holds; the new SHAs, oldest first."""
    shas = []
    for step in shape.history:
        for path, text in step.changes.items():
            if text is None:
                repo.remove(path)
            else:
                repo.write(path, text)
        shas.append(repo.commit(step.message))
    return shas
