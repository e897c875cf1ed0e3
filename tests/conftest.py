"""Fixtures shared by every test folder: git repositories and the example monorepo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import ContainerEngine
from tests.support.gitrepo import GitRepo

pytest_plugins = ["tests.support.tiers"]  # which tiers ran, and why the others were skipped

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MONOREPO = ROOT / "examples" / "kfp-monorepo"


@pytest.fixture(scope="session", autouse=True)
def no_container_engine() -> Iterator[None]:
    """Every bot the tests start (in this process or a child) builds with no container engine,
    whatever this machine has: builds are reported skipped, the same everywhere. A test that
    wants an engine says so in its settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KFP_BOT_CONTAINER_ENGINE", ContainerEngine.NONE.value)
        yield


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty git repository on branch main."""
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """A git repository whose first commit is examples/kfp-monorepo."""
    return GitRepo.from_tree(tmp_path / "monorepo", EXAMPLE_MONOREPO)


@pytest.fixture(scope="session")
def kfp_distribution(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the real distribution of this machine's kfp: the Cloud Build fake's stand-in
    for PyPI (`FakeCloudBuild.package_folder`)."""
    import subprocess
    import sys
    from importlib import metadata

    folder = tmp_path_factory.mktemp("packages")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
                          f"kfp=={metadata.version('kfp')}"], capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        pytest.skip(f"kfp's distribution is not reachable (no package index or cache): {got.stderr[-300:]}")
    return folder


@pytest.fixture
def ports() -> object:
    """Ports replaced in a served bot's handler context as it is built (`build_services(override=)`,
    tests/handlers/conftest.py); None, unless a test module overrides this fixture or a test
    parametrizes it to record or break one."""
    return None
