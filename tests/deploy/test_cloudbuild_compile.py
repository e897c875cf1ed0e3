"""Compiling in Cloud Build: the run's build compiles the pipeline from the uploaded context, the
fake Cloud Build really runs that step, and `CloudBuildCompiler` reads the artifacts back.

The example monorepo is compiled for real (kfp 2 of this machine standing in for the pin the
step installs); the tests assert on the package the bot gets and on what a user would read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1

from deploy.builders.cloudbuild import CloudBuildBuilder, make_cloudbuild_client
from deploy.builders.cloudbuild_compile import COMPILE_STEP_ID, CloudBuildCompiler, CloudCompile
from deploy.builders.cloudbuild_config import ConnectedRepositorySource
from deploy.builders.cloudbuild_source import StorageUpload
from deploy.errors import CompileError
from deploy.google_clients import make_gcs_client
from handlers.models import BuildStatus
from handlers.ports.build import BuildRequest, BuildState
from handlers.run_models import RunState, run_id_for
from pipeline_registry.planner import plan_change
from pipeline_registry.repository import Repository
from tests.deploy.conftest import BUCKET
from tests.deploy.test_cloudbuild import FAST_RETRY, PROJECT, REPO
from tests.fakes.cloudbuild import FakeCloudBuild, Status
from tests.fakes.template_stores import FakeGcs
from tests.support.gitrepo import GitRepo

TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"
HELLO = "pipelines/hello-pipeline/hello-pipeline.py"


@pytest.fixture
def cloud(fake: FakeCloudBuild, gcs: FakeGcs) -> Iterator[tuple[CloudBuildBuilder, CloudBuildCompiler]]:
    client = make_cloudbuild_client(fake.endpoint)
    storage = make_gcs_client(gcs.url)
    settings = CloudCompile(storage, BUCKET)
    yield (CloudBuildBuilder(client, PROJECT, upload=StorageUpload(storage, BUCKET), compile=settings,
                             retry=FAST_RETRY), CloudBuildCompiler(settings))
    client.transport.close()


def request_for(repo: GitRepo, base: str, head: str, pipeline: str) -> BuildRequest:
    plan = plan_change(repo.root, base, head).get(pipeline)
    components = plan.components if plan is not None else ()
    return BuildRequest(run_id=run_id_for(REPO, 7, head, pipeline, "autorun"), repo=REPO, sha=head, pr=7,
                        pipeline=pipeline, repo_dir=repo.root, components=components)


def build_and_finish(fake: FakeCloudBuild, builder: CloudBuildBuilder, request: BuildRequest
                     ) -> tuple[cloudbuild_v1.Build, BuildStatus]:
    assert builder.build(request).state is BuildState.STARTED
    [build] = fake.builds
    event = builder.decode_notification(**vars(fake.finish(build.id, "SUCCESS")))
    assert isinstance(event, BuildStatus)
    return fake.get(build.id), event


def test_the_build_compiles_with_the_images_it_built_and_the_bot_reads_the_spec_back(
        example_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler],
        tmp_path: Path) -> None:
    builder, compiler = cloud
    base = example_repo.head()
    example_repo.append(TRAIN_MAIN, "\n# faster\n")
    request = request_for(example_repo, base, example_repo.commit("train faster"), "training-pipeline")
    images = Repository.open(example_repo.root).component_images("training-pipeline")

    build, event = build_and_finish(fake, builder, request)

    compile_step = build.steps[-1]
    assert compile_step.id == COMPILE_STEP_ID and compile_step.name.startswith("python:")
    assert list(compile_step.wait_for) == [s.id for s in build.steps[:-1]] and len(build.steps) == 2
    assert build.artifacts.objects.location.startswith(f"gs://{BUCKET}/kfp-bot/compiled/")
    assert build.status == Status.SUCCESS and build.results.num_artifacts >= 2
    assert event.state is RunState.COMPILING

    package = compiler.compile(example_repo.root, "training-pipeline", images, tmp_path / "out")

    assert images["pipelines/training-pipeline/train"] in package.images
    assert images["components/notify"] in package.images
    assert {i.name for i in package.inputs} >= {"dataset", "epochs", "learning_rate"}
    # the bot's checkout is untouched: the script wrote its package in the build's workspace only
    assert not (example_repo.root / "pipelines/training-pipeline/training-pipeline.yaml").exists()
    assert (fake.workspaces[build.id] / "pipelines/training-pipeline/training-pipeline.yaml").is_file()


def test_a_pipeline_without_images_to_rebuild_still_gets_a_compile_build(
        example_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler],
        tmp_path: Path) -> None:
    builder, compiler = cloud
    head = example_repo.head()
    request = request_for(example_repo, head, head, "hello-pipeline")

    build, _ = build_and_finish(fake, builder, request)

    assert [s.id for s in build.steps] == [COMPILE_STEP_ID] and list(build.images) == []
    package = compiler.compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")
    assert package.package_path.is_file() and package.sdk_version.startswith("2")


def test_a_pipeline_file_that_raises_fails_the_compile_with_its_error(
        example_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler],
        tmp_path: Path) -> None:
    builder, compiler = cloud
    base = example_repo.head()
    example_repo.write(HELLO, "raise RuntimeError('no such dataset: gs://missing')\n")
    request = request_for(example_repo, base, example_repo.commit("broken"), "hello-pipeline")

    build, event = build_and_finish(fake, builder, request)

    assert event.state is RunState.COMPILING  # the step reports through its verdict, not its status
    with pytest.raises(CompileError, match="no such dataset: gs://missing") as raised:
        compiler.compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")
    assert raised.value.file == HELLO


def test_without_the_builds_artifacts_the_compile_fails_saying_where_it_looked(
        example_repo: GitRepo, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler], tmp_path: Path) -> None:
    _, compiler = cloud

    with pytest.raises(CompileError, match=f"left no verdict at gs://{BUCKET}/kfp-bot/compiled/"):
        compiler.compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")


def test_an_sdk_that_cannot_be_installed_fails_the_build_at_the_compile_step(
        example_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler]) -> None:
    builder, _ = cloud
    base = example_repo.head()
    example_repo.write(".kfp-bot.yaml", "compile:\n  requirements: ['kfp==0.0.1']\n")
    request = request_for(example_repo, base, example_repo.commit("pin an SDK that does not exist"),
                          "hello-pipeline")

    build, event = build_and_finish(fake, builder, request)

    assert build.status == Status.FAILURE and event.state is RunState.FAILED
    assert COMPILE_STEP_ID in event.detail and "compile environment" in event.detail


def test_the_build_compiles_the_chosen_function_with_the_repositorys_import_path(
        git_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler],
        tmp_path: Path) -> None:
    builder, compiler = cloud
    git_repo.write(".kfp-bot.yaml", "pipeline_files: ['flows/*.py']\ncompile:\n  python_path: [src]\n")
    git_repo.write("src/shared/names.py", "SECOND = 'second-from-src'\n")
    git_repo.write("flows/pair.py", "from kfp import dsl\nfrom shared.names import SECOND\n\n\n"
                                    "@dsl.component\ndef say(text: str) -> str:\n    return text\n\n\n"
                                    "@dsl.pipeline(name='first')\ndef first():\n    say(text='1')\n\n\n"
                                    "@dsl.pipeline(name=SECOND)\ndef second(times: int = 2):\n"
                                    "    say(text=str(times))\n")
    head = git_repo.commit("two pipelines in one file")

    build_and_finish(fake, builder, request_for(git_repo, head, head, "pair-second"))

    package = compiler.compile(git_repo.root, "pair-second", {}, tmp_path / "out")
    assert package.name == "second-from-src" and [i.name for i in package.inputs] == ["times"]


def test_with_a_repository_connection_nothing_is_uploaded_and_the_build_still_compiles(
        example_repo: GitRepo, fake: FakeCloudBuild, gcs: FakeGcs, tmp_path: Path) -> None:
    connection = "projects/ml-project/locations/europe-west1/connections/github"
    source = ConnectedRepositorySource(connection)
    fake.linked[source.repository(REPO)] = example_repo.root
    client, storage = make_cloudbuild_client(fake.endpoint), make_gcs_client(gcs.url)
    settings = CloudCompile(storage, BUCKET)
    builder = CloudBuildBuilder(client, PROJECT, source=source, upload=StorageUpload(storage, BUCKET),
                                compile=settings, retry=FAST_RETRY)
    head = example_repo.head()

    build, event = build_and_finish(fake, builder, request_for(example_repo, head, head, "hello-pipeline"))
    client.transport.close()

    assert build.source.connected_repository.repository == f"{connection}/repositories/octo-monorepo"
    assert not [name for _, name in gcs.objects if "/sources/" in name]
    assert event.state is RunState.COMPILING
    package = CloudBuildCompiler(settings).compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")
    assert package.package_path.is_file()


def test_a_kfp_pin_that_does_not_install_in_the_step_falls_back_to_the_nearest_patch_release(
        example_repo: GitRepo, fake: FakeCloudBuild, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler],
        kfp_distribution: Path, tmp_path: Path) -> None:
    import platform
    from importlib import metadata

    builder, compiler = cloud
    installed = metadata.version("kfp")
    minor, patch = installed.rsplit(".", 1)
    if not patch.isdigit() or int(patch) == 0:
        pytest.skip(f"kfp {installed} has no older patch release to pin")
    fake.package_folder = kfp_distribution  # holds kfp {installed} only: the pinned release is not there
    base = example_repo.head()
    example_repo.write("requirements.txt", f"kfp=={minor}.0\n")
    request = request_for(example_repo, base, example_repo.commit("pin an older patch release"), "hello-pipeline")

    build, event = build_and_finish(fake, builder, request)
    assert build.status == Status.SUCCESS and event.state is RunState.COMPILING, fake.step_failures
    package = compiler.compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")

    assert package.sdk_version == installed
    assert package.notes == (f"kfp=={minor}.0 (pinned in requirements.txt) does not install on Python "
                             f"{platform.python_version()} of Cloud Build's compile step: compiled with kfp "
                             f"{installed}, the nearest {minor} release that installs",)

    example_repo.write(".kfp-bot.yaml", "compile:\n  fallback_to_nearest_patch: false\n")
    request = request_for(example_repo, base, example_repo.commit("no fallback"), "hello-pipeline")
    assert builder.build(request).state is BuildState.STARTED
    failed = builder.decode_notification(**vars(fake.finish(fake.builds[-1].id, "SUCCESS")))
    assert failed.state is RunState.FAILED and "compile environment" in failed.detail


def test_a_component_load_that_resolves_nowhere_is_named_instead_of_the_builds_traceback(
        example_repo: GitRepo, cloud: tuple[CloudBuildBuilder, CloudBuildCompiler], tmp_path: Path) -> None:
    from pipeline_registry.errors import ComponentLoadError

    _, compiler = cloud
    dataset = "pipelines/dataset-pipeline/dataset-pipeline.py"
    example_repo.write(dataset, (example_repo.root / dataset).read_text().replace("components/notify", "shared/notify"))
    example_repo.commit("a component path that does not exist")

    with pytest.raises(ComponentLoadError, match=f'{dataset}:7: load_component_from_file\\("shared/notify/'):
        compiler.compile(example_repo.root, "dataset-pipeline", {}, tmp_path / "out")
