"""Discovering pipelines and components from a repository's files."""

from __future__ import annotations

import pytest

from pipeline_registry.discovery import discover_pipelines, discover_shared_components
from pipeline_registry.errors import ConfigError
from pipeline_registry.models import Component
from pipeline_registry.repo_config import RepoConfig, load_repo_config
from pipeline_registry.snapshot import open_snapshot
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo


def _discover(repo: GitRepo, config: RepoConfig | None = None):
    repo.commit()
    with open_snapshot(repo.root, "HEAD") as snapshot:
        config = config or RepoConfig()
        return discover_pipelines(snapshot, config), discover_shared_components(snapshot, config)


def test_the_seed_layout_needs_no_configuration(seed: GitRepo) -> None:
    pipelines, shared = _discover(seed)
    assert list(pipelines) == ["alpha", "beta", "gamma"]
    alpha = pipelines["alpha"]
    assert (alpha.path, alpha.pipeline_file, alpha.settings_file) == (
        "pipelines/alpha", "pipelines/alpha/alpha.py", "pipelines/alpha/settings.yaml")
    assert alpha.components == (
        Component("evaluate", "pipelines/alpha/evaluate", False, "pipelines/alpha/evaluate/component.yaml",
                  "pipelines/alpha/evaluate/Dockerfile", "gcr.io/my-project/alpha-evaluate"),
        Component("train", "pipelines/alpha/train", False, "pipelines/alpha/train/component.yaml",
                  "pipelines/alpha/train/Dockerfile", "gcr.io/my-project/alpha-train"),
    )
    assert pipelines["beta"].pipeline_file == "pipelines/beta/beta-pipeline.py"
    assert pipelines["gamma"].pipeline_file == "pipelines/gamma/pipeline.py"
    assert list(shared) == ["notify", "unused", "validate"]
    assert shared["notify"].image_repository == "gcr.io/my-project/notify"
    assert (shared["validate"].dockerfile, shared["validate"].image_repository) == (None, None)
    assert not shared["validate"].builds_image and shared["notify"].builds_image


@pytest.mark.parametrize("files, expected", [
    ({"pipelines/x/x.py": ""}, "pipelines/x/x.py"),
    ({"pipelines/x/x-pipeline.py": ""}, "pipelines/x/x-pipeline.py"),
    ({"pipelines/x/pipeline.py": ""}, "pipelines/x/pipeline.py"),
    ({"pipelines/x/x.py": "", "pipelines/x/pipeline.py": ""}, "pipelines/x/x.py"),
    ({"pipelines/x/settings.yaml": "arguments: {}\n"}, None),
])
def test_pipeline_file_names(git_repo: GitRepo, files: dict[str, str], expected: str | None) -> None:
    write_files(git_repo, files)
    pipelines, _ = _discover(git_repo)
    assert pipelines["x"].pipeline_file == expected


def test_folders_without_pipeline_file_or_settings_are_not_pipelines(git_repo: GitRepo) -> None:
    write_files(git_repo, {"pipelines/common/helpers.py": "", "pipelines/README.md": "",
                           "pipelines/y/sub/y.py": "", "pipelines/z/z.py": ""})
    pipelines, _ = _discover(git_repo)
    assert list(pipelines) == ["z"]


def test_components_need_a_spec_or_a_dockerfile(git_repo: GitRepo) -> None:
    write_files(git_repo, {"pipelines/x/x.py": "", "pipelines/x/spec_only/component.yaml": "",
                           "pipelines/x/image_only/Dockerfile": "FROM x\n", "pipelines/x/data/file.csv": "",
                           "pipelines/x/deep/nested/component.yaml": ""})
    pipelines, _ = _discover(git_repo)
    found = {c.name: c.image_repository for c in pipelines["x"].components}
    assert found == {"image_only": "gcr.io/my-project/x-image_only", "spec_only": None}


def test_configured_folders_registry_and_pipeline_file(git_repo: GitRepo) -> None:
    write_files(git_repo, {"flows/etl/main_flow.py": "", "flows/etl/load/Dockerfile": "FROM x\n",
                           "shared/mail/Dockerfile": "FROM x\n", "pipelines/old/old.py": ""})
    config = load_repo_config("pipelines_dir: flows\ncomponents_dir: shared\n"
                              "image_registry: europe-docker.pkg.dev/proj/repo/\n"
                              "pipelines:\n  etl:\n    pipeline_file: main_flow.py\n")
    pipelines, shared = _discover(git_repo, config)
    assert list(pipelines) == ["etl"]
    assert pipelines["etl"].pipeline_file == "flows/etl/main_flow.py"
    assert pipelines["etl"].components[0].image_repository == "europe-docker.pkg.dev/proj/repo/etl-load"
    assert shared["mail"].image_repository == "europe-docker.pkg.dev/proj/repo/mail"


def test_a_configured_pipeline_file_that_does_not_exist_is_a_config_error(git_repo: GitRepo) -> None:
    write_files(git_repo, {"pipelines/etl/settings.yaml": ""})
    config = load_repo_config("pipelines:\n  etl:\n    pipeline_file: flow.py\n")
    with pytest.raises(ConfigError) as error:
        _discover(git_repo, config)
    assert error.value.file == ".kfp-bot.yaml"
    assert error.value.field == "pipelines.etl.pipeline_file"
    assert "'flow.py' does not exist in pipelines/etl" in str(error.value)
