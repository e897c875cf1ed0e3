"""`kfp-bot check` and `kfp-bot init` on the four repository shapes of issue 11
(`tests/pipeline_registry/layouts/`), run as a user runs them.

`check` compiles every pipeline with the SDK the repository pins (kfp 2.7.0 in `requirements.txt`,
in a sub-project's `pyproject.toml`, with kfp-kubernetes beside it), not with the bot's own kfp; the
environments are built once for the module (one data folder) and reused by every shape that pins
the same requirements. `init` on a shape without configuration proposes one that finds the same
pipelines, plans its history exactly and compiles every pipeline.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from pipeline_registry.planner import plan_change
from pipeline_registry.repo_config import CONFIG_FILE
from tests.bot.test_cli import kfp_bot
from tests.pipeline_registry.layouts import Shape, replay
from tests.pipeline_registry.layouts.components import SHAPE as COMPONENTS
from tests.pipeline_registry.layouts.flat import SHAPE as FLAT
from tests.pipeline_registry.layouts.package import SHAPE as PACKAGE
from tests.pipeline_registry.layouts.samples import SHAPE as SAMPLES
from tests.support.gitrepo import GitRepo

SHAPES = [FLAT, PACKAGE, SAMPLES, COMPONENTS]
PINNED = "2.7.0"  # what every shape pins at its first commit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder (so one cache of compile environments) for every check of the module."""
    return tmp_path_factory.mktemp("layouts-data")


def assert_every_pipeline_compiled_with_the_pin(shape: Shape, repo: GitRepo, data_dir: Path) -> None:
    result = kfp_bot("check", "--repo", str(repo.root), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    compiled = [line.split(":")[0][len("ok  "):] for line in result.stdout.splitlines() if line.startswith("ok  ")]
    assert tuple(compiled) == shape.pipelines, result.stdout
    assert result.stdout.count(f"compiled with kfp {PINNED}\n") == len(shape.pipelines), result.stdout


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_check_compiles_every_pipeline_with_the_repositorys_own_pins(shape: Shape, git_repo: GitRepo,
                                                                    data_dir: Path) -> None:
    for path, text in shape.files.items():
        git_repo.write(path, text)
    git_repo.commit(f"{shape.name}: initial")
    assert_every_pipeline_compiled_with_the_pin(shape, git_repo, data_dir)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_init_proposes_a_configuration_that_plans_and_compiles_the_shape(shape: Shape, git_repo: GitRepo,
                                                                         data_dir: Path) -> None:
    for path, text in shape.files.items():
        if path != CONFIG_FILE:
            git_repo.write(path, text)
    git_repo.commit(f"{shape.name}: without configuration")

    result = kfp_bot("init", "--repo", str(git_repo.root), data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    assert f"with it kfp-bot finds {len(shape.pipelines)} pipeline(s): {', '.join(shape.pipelines)}" in result.stdout
    assert "compile pins: kfp==2.7.0" in result.stdout
    proposed = (git_repo.root / CONFIG_FILE).read_text()
    assert len(proposed.strip().splitlines()) <= 10, proposed
    shas = [git_repo.commit("the proposed configuration"), *replay(shape, git_repo)]
    for step, (base, head) in zip(shape.history, pairwise(shas), strict=True):
        planned = {p.name for p in plan_change(git_repo.root, base, head).pipelines}
        assert (step.message, planned) == (step.message, set(step.affected)), proposed
    git_repo.git("checkout", "-q", shas[0])  # the first tree: the pins every shape starts with
    assert_every_pipeline_compiled_with_the_pin(shape, git_repo, data_dir)

