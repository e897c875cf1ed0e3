"""Private repositories on Cloud Build: the bot uploads the build context, Cloud Build never fetches
the repository. Real `CloudBuildClient` and `google-cloud-storage` over sockets to the fakes."""

from __future__ import annotations

import io
import tarfile

import pytest
from google.cloud.devtools import cloudbuild_v1

from deploy.builders.cloudbuild import CloudBuildBuilder
from deploy.builders.cloudbuild_source import StorageUpload
from deploy.google_clients import make_gcs_client
from handlers.models import BuildStatus
from handlers.ports.build import BuildRequest, BuildState
from handlers.run_models import RunState
from pipeline_registry.repository import Repository
from tests.deploy.conftest import BUCKET
from tests.deploy.test_cloudbuild import (
    FAST_RETRY,
    PROJECT,
    REPO,
    change_train_and_evaluate,
    request_for,
    the_build,
    write_monorepo,
)
from tests.fakes.cloudbuild import FailureType, FakeCloudBuild, Status
from tests.fakes.template_stores import FakeGcs
from tests.support.gitrepo import GitRepo


@pytest.fixture
def request_(git_repo: GitRepo) -> BuildRequest:
    """A build of the demo monorepo after train's and evaluate's inputs changed."""
    return request_for(git_repo, write_monorepo(git_repo), change_train_and_evaluate(git_repo))

def uploading(client: cloudbuild_v1.CloudBuildClient, gcs: FakeGcs) -> CloudBuildBuilder:
    return CloudBuildBuilder(client, PROJECT, upload=StorageUpload(make_gcs_client(gcs.url), BUCKET),
                             retry=FAST_RETRY)


def members(gcs: FakeGcs, source: cloudbuild_v1.StorageSource) -> set[str]:
    data = gcs.read(source.bucket, source.object_, source.generation)
    assert data is not None
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return set(archive.getnames())


def test_a_private_repository_fetched_by_git_url_fails_the_run_as_cloud_build_does(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient, request_: BuildRequest) -> None:
    fake.private_repos.add(REPO)
    builder = CloudBuildBuilder(client, PROJECT, retry=FAST_RETRY)
    builder.build(request_)
    build = the_build(fake)

    event = builder.decode_notification(**vars(fake.finish(build.id, "SUCCESS")))

    assert fake.get(build.id).failure_info.type_ == FailureType.FETCH_SOURCE_FAILED
    assert isinstance(event, BuildStatus) and event.state is RunState.FAILED
    assert "could not fetch the repository's code" in event.detail and "terminal prompts disabled" in event.detail


def test_the_build_context_is_uploaded_with_only_the_images_inputs_and_the_build_reads_it(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient, gcs: FakeGcs, request_: BuildRequest) -> None:
    fake.private_repos.add(REPO)  # no matter: Cloud Build never fetches the repository
    builder = uploading(client, gcs)

    assert builder.build(request_).state is BuildState.STARTED

    build = the_build(fake)
    source = build.source.storage_source
    assert build.source._pb.WhichOneof("source") == "storage_source"
    assert source.bucket == BUCKET and source.object_ == f"kfp-bot/sources/{request_.run_id}.tar.gz"
    with Repository.open(request_.repo_dir) as repository:
        expected = set().union(*(repository.image_inputs(p.component) for p in request_.components if p.rebuild))
    assert members(gcs, source) == expected
    assert {"utils/io.py", "pipelines/demo/train/main.py", "pipelines/demo/evaluate/main.py"} <= expected
    assert not expected & {".kfp-bot.yaml", "pipelines/demo/demo.py", "components/notify/Dockerfile"}
    event = builder.decode_notification(**vars(fake.finish(build.id, "SUCCESS")))
    assert isinstance(event, BuildStatus) and event.state is RunState.COMPILING
    assert fake.get(build.id).status == Status.SUCCESS


def test_a_redelivered_build_overwrites_the_same_object(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient, gcs: FakeGcs, request_: BuildRequest) -> None:
    builder = uploading(client, gcs)
    builder.build(request_)
    builder.build(request_)  # finds the run's build: no second build, no second object

    assert len(fake.builds) == 1 and len([k for k in gcs.objects if k[1].startswith("kfp-bot/sources/")]) == 1


def test_a_source_object_that_is_gone_fails_the_build_with_fetch_source_failed(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient, gcs: FakeGcs, request_: BuildRequest) -> None:
    builder = uploading(client, gcs)
    builder.build(request_)
    build = the_build(fake)
    gcs.objects.clear()

    event = builder.decode_notification(**vars(fake.start_working(build.id)))

    assert isinstance(event, BuildStatus) and event.state is RunState.FAILED
    assert "object not found" in event.detail


def test_a_refused_upload_fails_the_run_saying_what_to_grant(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient, gcs: FakeGcs, request_: BuildRequest) -> None:
    gcs.fail_next("POST", r"/upload/.*", 403, times=10)

    outcome = uploading(client, gcs).build(request_)

    assert outcome.state is BuildState.FAILED and fake.builds == []
    assert f"roles/storage.objectAdmin on gs://{BUCKET}" in outcome.detail
