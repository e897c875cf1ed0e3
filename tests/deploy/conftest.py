"""Fixtures for the deploy tests: small kfp repositories in git, the kfp 1.8 environment (cached across runs), and
the Cloud Build and GCS fakes reached through their real clients."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1

from deploy.builders.cloudbuild import make_cloudbuild_client
from deploy.compiler.environments import FAILED_SUFFIX, ensure_environment
from deploy.errors import EnvironmentBuildError
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.models import Component, Pipeline
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.template_stores import FakeGcs
from tests.support.envcache import index_unreachable, keyed_folder, locked
from tests.support.gitrepo import GitRepo

OLD_TRAIN_IMAGE = "gcr.io/old-project/demo-train:latest"
OLD_NOTIFY_IMAGE = "gcr.io/old-project/notify:1.0"
NEW_TRAIN_IMAGE = "europe-docker.pkg.dev/proj/repo/demo-train:sha-1234"
NEW_NOTIFY_IMAGE = "europe-docker.pkg.dev/proj/repo/notify:sha-1234"
KFP18 = "kfp==1.8.22"
BUCKET = "ml-project-kfp-bot"

TRAIN_SPEC = f"""\
name: Train
description: Trains the model.
inputs:
- {{name: epochs, type: Integer}}
- {{name: learning_rate, type: Float}}
outputs:
- {{name: model, type: String}}
implementation:
  container:
    image: {OLD_TRAIN_IMAGE}
    command: [python, main.py, --epochs, {{inputValue: epochs}}, --lr, {{inputValue: learning_rate}},
              --model, {{outputPath: model}}]
"""

NOTIFY_SPEC = f"""\
name: Notify
inputs:
- {{name: message, type: String}}
implementation:
  container:
    image: {OLD_NOTIFY_IMAGE}
    command: [sh, -c, 'echo "$0"', {{inputValue: message}}]
"""

KFP2_PIPELINE = """\
\"\"\"Demo pipeline written for kfp 2.\"\"\"
from kfp import dsl
from kfp.components import load_component_from_file

from utils.naming import PREFIX

train_op = load_component_from_file("pipelines/demo/train/component.yaml")
notify_op = load_component_from_file("components/notify/component.yaml")


@dsl.component(base_image="python:3.11-slim")
def summarize(model: str, prefix: str) -> str:
    return prefix + model


@dsl.pipeline(name="demo-pipeline", description="Trains and notifies.")
def demo(run_label: str, epochs: int = 3, learning_rate: float = 0.01, dry_run: bool = False,
         tags: list = ["nightly"], options: dict = {"depth": 2}):
    trained = train_op(epochs=epochs, learning_rate=learning_rate)
    summary = summarize(model=trained.outputs["model"], prefix=PREFIX)
    notify_op(message=summary.output)
"""


def pipeline_model(name: str, pipeline_file: str | None, components: tuple[Component, ...] = ()) -> Pipeline:
    """The discovered pipeline as the planner would hand it to the compiler."""
    return Pipeline(name=name, path=f"pipelines/{name}", pipeline_file=pipeline_file,
                    settings_file=None, components=components)


def write_kfp2_repo(repo: GitRepo, pipeline_source: str = KFP2_PIPELINE) -> GitRepo:
    """A kfp 2 repository in the seed layout: one pipeline, its component, a shared component."""
    repo.write("pipelines/demo/demo.py", pipeline_source)
    repo.write("pipelines/demo/train/component.yaml", TRAIN_SPEC)
    repo.write("pipelines/demo/train/Dockerfile", "FROM python:3.11-slim\nCOPY pipelines/demo/train/* ./\n")
    repo.write("pipelines/demo/train/main.py", "print('training')\n")
    repo.write("pipelines/demo/settings.yaml", "arguments:\n  run_label: test\n")
    repo.write("components/notify/component.yaml", NOTIFY_SPEC)
    repo.write("components/notify/Dockerfile", "FROM alpine:3.20\n")
    repo.write("utils/__init__.py", "")
    repo.write("utils/naming.py", "PREFIX = 'demo-'\n")
    repo.commit("kfp 2 demo repository")
    return repo


@pytest.fixture
def kfp2_repo(git_repo: GitRepo) -> GitRepo:
    """A committed kfp 2 repository (see `write_kfp2_repo`)."""
    return write_kfp2_repo(git_repo)


@pytest.fixture(scope="session")
def compile_cache() -> Path:
    """The compile cache kept across test runs on this machine (see tests/support/envcache.py): the
    kfp 1.8 environment is installed into it once per Python, not on every run."""
    return keyed_folder("compile-cache", "deploy.compiler.environments layout 1")


@pytest.fixture(scope="session")
def kfp18_env(compile_cache: Path) -> CompileEnvironment:
    """The `kfp==1.8.22` compile environment, built in `compile_cache` unless it is there already;
    without a cached one and without the network its tests are skipped with the reason."""
    env = CompileEnvironment((KFP18,), (".kfp-bot.yaml",))
    try:
        ensure_environment(env, cache_dir=compile_cache, python=sys.executable)
    except EnvironmentBuildError:
        offline = index_unreachable()
        if offline is None:
            raise  # a real failure: every test that needs kfp 1.8 errors out with the installer's message
        # Not remembered as a broken pin: the next run with the network builds it.
        (compile_cache / "envs" / f"{env.key}{FAILED_SUFFIX}").unlink(missing_ok=True)
        pytest.skip(f"needs {KFP18} installed once into {compile_cache}: {offline}")
    return env


@pytest.fixture(scope="session")
def kfp18_wheels() -> Path:
    """kfp 1.8.22 and its dependencies as wheels, made once per machine (tests/support/envcache.py),
    so that a fresh build of the environment installs offline and builds no source distribution."""
    folder = keyed_folder("wheels", KFP18)
    done = folder / "complete"
    with locked(folder):
        if not done.is_file():
            made = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                                   "--wheel-dir", str(folder), KFP18], capture_output=True, text=True)
            if made.returncode != 0:
                offline = index_unreachable()
                if offline:
                    pytest.skip(f"needs the wheels of {KFP18} once in {folder}: {offline}")
                raise AssertionError(f"pip wheel {KFP18} failed:\n{made.stderr[-3000:]}")
            done.write_text(KFP18 + "\n")
    return folder


@dataclass(frozen=True)
class EnvironmentBuild:
    """What building the kfp 1.8 environment from two threads at once, in a fresh cache, produced."""

    cache: Path
    env: CompileEnvironment
    paths: tuple[Path, ...]
    installs_seen: tuple[int, ...]
    leftovers_before: tuple[Path, ...]


@pytest.fixture(scope="session")
def concurrent_kfp18_build(tmp_path_factory: pytest.TempPathFactory, kfp18_wheels: Path) -> EnvironmentBuild:
    """The `kfp==1.8.22` environment built into an empty cache by two concurrent compiles, from
    `kfp18_wheels` only (the index is an empty folder: pip installs offline).

    Before the build a crashed build's staging folder and a half-built environment are left in
    the cache; both must be ignored and removed.
    """
    cache = tmp_path_factory.mktemp("compile-cache")
    env = CompileEnvironment((KFP18,), (".kfp-bot.yaml",))
    envs = cache / "envs"
    leftovers = (envs / f".building-{env.key}-crashed", envs / env.key)
    for folder in leftovers:
        (folder / "bin").mkdir(parents=True)
    (envs / env.key / "bin" / "python").write_text("half-built\n")
    empty_index = tmp_path_factory.mktemp("empty-index")
    paths: list[Path] = []
    errors: list[BaseException] = []
    counts = [0, 0]

    def build(slot: int) -> None:
        def seen(line: str) -> None:
            if "Successfully installed" in line:
                counts[slot] += 1
        try:
            paths.append(ensure_environment(env, cache_dir=cache, python=sys.executable, on_line=seen))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    with pytest.MonkeyPatch.context() as patch:  # what the sandbox passes to pip (deploy/sandbox)
        patch.setenv("PIP_INDEX_URL", empty_index.as_uri())
        patch.setenv("PIP_EXTRA_INDEX_URL", "")
        patch.setenv("PIP_FIND_LINKS", str(kfp18_wheels))
        threads = [threading.Thread(target=build, args=(slot,)) for slot in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return EnvironmentBuild(cache, env, tuple(paths), tuple(counts), leftovers)


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    """A GCS fake: where the bot uploads build contexts and Cloud Build leaves its artifacts."""
    with FakeGcs() as server:
        yield server


@pytest.fixture
def fake(gcs: FakeGcs) -> Iterator[FakeCloudBuild]:
    """A Cloud Build fake that fetches uploaded sources from, and writes artifacts to, `gcs`."""
    with FakeCloudBuild(gcs=gcs) as server:
        yield server


@pytest.fixture
def client(fake: FakeCloudBuild) -> Iterator[cloudbuild_v1.CloudBuildClient]:
    """The real Cloud Build client, talking to `fake` over a socket."""
    built = make_cloudbuild_client(fake.endpoint)
    yield built
    built.transport.close()
