"""Repository: one revision's pipelines, settings, components and images, as the CLI uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_registry.errors import ConfigError, RepositoryError, UnknownPipelineError
from pipeline_registry.repository import Repository
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo


def test_pipelines_settings_and_components_at_a_revision(seed: GitRepo) -> None:
    with Repository.open(seed.root, "main") as repo:
        assert repo.revision == seed.head()
        assert list(repo.pipelines()) == ["alpha", "beta", "gamma"]
        assert dict(repo.settings("alpha").parameters) == {"epochs": 1}
        assert [c.path for c in repo.components_of("alpha")] == [
            "pipelines/alpha/evaluate", "pipelines/alpha/train", "components/notify"]
        assert [c.path for c in repo.components_of("beta")] == ["pipelines/beta/prep", "components/validate"]
        assert [c.path for c in repo.components_of("gamma")] == ["components/notify"]


def test_component_images_carry_content_tags(seed: GitRepo) -> None:
    with Repository.open(seed.root, "HEAD") as repo:
        images = repo.component_images("beta")
    assert list(images) == ["pipelines/beta/prep"]  # validate has no Dockerfile
    repository, tag = images["pipelines/beta/prep"].rsplit(":", 1)
    assert repository == "gcr.io/my-project/beta-prep"
    assert tag.startswith("content-") and len(tag) == len("content-") + 16


def test_the_working_tree_sees_uncommitted_settings(seed: GitRepo) -> None:
    seed.write("pipelines/gamma/settings.yaml", "arguments:\n  message: changed\n")
    with Repository.open(seed.root) as repo:
        assert repo.revision is None
        assert dict(repo.settings("gamma").parameters) == {"message": "changed"}


def test_unknown_pipeline_lists_the_known_ones(seed: GitRepo) -> None:
    with Repository.open(seed.root, "HEAD") as repo, pytest.raises(UnknownPipelineError) as error:
        repo.pipeline("delta")
    assert str(error.value) == "unknown pipeline 'delta' (pipelines in this repository: alpha, beta, gamma)"


def test_a_pipeline_without_settings_has_no_parameters(seed: GitRepo) -> None:
    seed.remove("pipelines/alpha/settings.yaml")
    seed.commit("no settings")
    with Repository.open(seed.root, "HEAD") as repo:
        settings = repo.settings("alpha")
    assert (settings.file, dict(settings.parameters)) == ("pipelines/alpha/settings.yaml", {})


def test_a_malformed_settings_file_names_file_and_line(seed: GitRepo) -> None:
    write_files(seed, {"pipelines/beta/settings.yaml": "arguments:\n  rows: 10\nother: [1, 2]\n"})
    seed.commit("bad settings")
    with Repository.open(seed.root, "HEAD") as repo, pytest.raises(ConfigError) as error:
        repo.settings("beta")
    assert (error.value.file, error.value.line) == ("pipelines/beta/settings.yaml", 3)


def test_a_malformed_configuration_fails_to_open(seed: GitRepo) -> None:
    write_files(seed, {".kfp-bot.yaml": "- not\n- a mapping\n"})
    seed.commit("bad config")
    with pytest.raises(ConfigError, match=r"\.kfp-bot\.yaml:1: must be a mapping"):
        Repository.open(seed.root, "HEAD")


def test_opening_something_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="is not a git repository"):
        Repository.open(tmp_path)
