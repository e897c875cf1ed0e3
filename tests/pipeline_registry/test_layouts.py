"""The four repository shapes of `tests/pipeline_registry/layouts/`: each commit of their history
plans exactly the pipelines and image rebuilds it must, with a configuration of ten lines at most."""

from __future__ import annotations

from itertools import pairwise

import pytest

from pipeline_registry.planner import plan_change
from pipeline_registry.repository import Repository
from tests.pipeline_registry.layouts import Shape, build
from tests.pipeline_registry.layouts.components import SHAPE as COMPONENTS
from tests.pipeline_registry.layouts.flat import SHAPE as FLAT
from tests.pipeline_registry.layouts.package import SHAPE as PACKAGE
from tests.pipeline_registry.layouts.samples import SHAPE as SAMPLES
from tests.support.gitrepo import GitRepo

SHAPES = [FLAT, PACKAGE, SAMPLES, COMPONENTS]


@pytest.fixture(params=SHAPES, ids=[s.name for s in SHAPES])
def shaped(request: pytest.FixtureRequest, git_repo: GitRepo) -> tuple[Shape, GitRepo, list[str]]:
    shape = request.param
    return shape, git_repo, build(shape, git_repo)


def test_the_configuration_is_short_and_finds_every_pipeline(shaped: tuple[Shape, GitRepo, list[str]]) -> None:
    shape, repo, _ = shaped
    assert len(shape.config.strip().splitlines()) <= 10
    with Repository.open(repo.root, "HEAD") as repository:
        assert tuple(repository.pipelines()) == shape.pipelines


def test_each_commit_plans_exactly_its_pipelines_and_rebuilds(shaped: tuple[Shape, GitRepo, list[str]]) -> None:
    shape, repo, shas = shaped
    for step, (base, head) in zip(shape.history, pairwise(shas), strict=True):
        plan = plan_change(repo.root, base, head)
        affected = {p.name for p in plan.pipelines}
        rebuilt = {p.name: frozenset(c.component.name for c in p.images_to_build) for p in plan.pipelines}
        assert (step.message, affected) == (step.message, set(step.affected))
        assert (step.message, {k: v for k, v in rebuilt.items() if v}) == (step.message, step.rebuilds)


def test_a_copy_source_missing_in_the_assumed_build_context_is_a_warning(git_repo: GitRepo) -> None:
    shaped_files = dict(COMPONENTS.files)
    shaped_files[".kfp-bot.yaml"] = 'pipeline_files: ["pipelines/*.py"]\n'  # build context: the repository root
    for path, text in shaped_files.items():
        git_repo.write(path, text)
    base = git_repo.commit("components copied relative to their folder")
    git_repo.write("pipelines/training.py", COMPONENTS.files["pipelines/training.py"] + "\n# touched\n")
    plan = plan_change(git_repo.root, base, git_repo.commit("touch"))
    assert [p.name for p in plan.pipelines] == ["training"]
    assert "components/misc/container_components/trainer/Dockerfile:2: COPY source 'train.py' does not exist " \
           "in the build context (the repository root): the image of 'trainer' would not be rebuilt when it " \
           "changes; it exists relative to the component folder: set build_context: component in .kfp-bot.yaml " \
           "(or images.europe-docker.pkg.dev/acme/ml/trainer.context: components/misc/container_components/trainer)" \
           in plan.warnings
    assert plan.to_json()["warnings"] == list(plan.warnings) and len(plan.warnings) == 2
