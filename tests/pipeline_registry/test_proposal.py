"""`kfp-bot init`'s proposal on each repository shape: the configuration it writes finds the pipelines."""

from __future__ import annotations

import pytest

from pipeline_registry.proposal import propose
from pipeline_registry.repository import Repository
from pipeline_registry.snapshot import open_snapshot
from tests.pipeline_registry.layouts import Shape
from tests.pipeline_registry.test_layouts import SHAPES
from tests.support.gitrepo import GitRepo


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_the_proposal_finds_the_same_pipeline_functions_as_the_hand_written_configuration(
        git_repo: GitRepo, shape: Shape) -> None:
    for path, text in shape.files.items():
        git_repo.write(path, text)
    git_repo.commit("as written by hand")
    with Repository.open(git_repo.root) as repository:
        expected = sorted((p.pipeline_file, p.function) for p in repository.pipelines().values())
    git_repo.remove(".kfp-bot.yaml")

    with open_snapshot(git_repo.root, None) as snapshot:
        proposal = propose(snapshot)
    git_repo.write(".kfp-bot.yaml", proposal.text)

    assert len(proposal.text.splitlines()) <= 10, proposal.text
    with Repository.open(git_repo.root) as repository:
        found = sorted((p.pipeline_file, p.function) for p in repository.pipelines().values())
        images = {c.image_repository for name in repository.pipelines() for c in repository.components_of(name)
                  if c.inline}
    assert found == expected
    assert any(f.startswith("compile pins: kfp==") for f in proposal.findings) or shape.name == "package"
    if shape.name in ("flat", "components"):
        assert images and all(f"image {i} is built from" in "\n".join(proposal.findings) for i in images)


def test_the_template_layout_needs_no_proposal(example_repo: GitRepo) -> None:
    with open_snapshot(example_repo.root, None) as snapshot:
        proposal = propose(snapshot)
    assert proposal.text == "" and "no configuration is needed" in proposal.findings[0]
