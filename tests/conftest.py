"""Fixtures shared by every test folder: git repositories and the example monorepo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gitrepo import GitRepo

pytest_plugins = ["tests.support.tiers"]  # which tiers ran, and why the others were skipped

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MONOREPO = ROOT / "examples" / "kfp-monorepo"


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty git repository on branch main."""
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """A git repository whose first commit is examples/kfp-monorepo."""
    return GitRepo.from_tree(tmp_path / "monorepo", EXAMPLE_MONOREPO)
