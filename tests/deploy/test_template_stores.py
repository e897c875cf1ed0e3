"""Template stores: a local folder, GCS (a fake over HTTP) and Artifact Registry (a fake KFP registry)."""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from kfp import compiler, dsl
from kfp.registry import ApiAuth

from deploy.errors import DeployError
from deploy.template_stores import (
    ArtifactRegistryTemplateStore,
    GcsTemplateStore,
    LocalTemplateStore,
    make_gcs_client,
    make_template_store,
)
from tests.fakes.template_stores import FakeGcs, FakeKfpRegistry

COMMIT = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
METADATA = {"repo": "octo-org/kfp-monorepo", "commit": COMMIT, "images": "gcr.io/p/hello-say:abc"}


@dsl.component(base_image="python:3.11-slim")
def say(text: str) -> str:
    return text


@dsl.pipeline(name="hello-pipeline")
def hello(text: str = "hi"):
    say(text=text)


@dataclass(frozen=True)
class Package:
    package_path: Path


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    path = tmp_path_factory.mktemp("compiled") / "hello-pipeline.yaml"
    compiler.Compiler().compile(hello, str(path))
    return Package(path)


def test_the_local_store_keeps_each_version_its_metadata_and_the_latest(tmp_path: Path, package: Package) -> None:
    store = LocalTemplateStore(tmp_path / "templates")

    ref = store.upload("hello-pipeline", package, version=COMMIT, tags=(COMMIT, "latest"), metadata=METADATA)

    folder = tmp_path / "templates" / "hello-pipeline"
    assert ref == str(folder / f"{COMMIT}.yaml")
    assert Path(ref).read_bytes() == package.package_path.read_bytes()
    assert (folder / "latest.yaml").read_bytes() == package.package_path.read_bytes()
    assert json.loads((folder / f"{COMMIT}.json").read_text()) == {
        "pipeline": "hello-pipeline", "version": COMMIT, "tags": [COMMIT, "latest"], "metadata": METADATA}


def test_the_local_store_refuses_names_that_would_escape_its_folder(tmp_path: Path, package: Package) -> None:
    store = LocalTemplateStore(tmp_path / "templates")

    ref = store.upload("../../etc", package, version="v1", tags=(), metadata={})

    assert Path(ref).resolve().is_relative_to((tmp_path / "templates").resolve())


def test_gcs_uploads_the_version_and_the_latest_copy_with_metadata(package: Package) -> None:
    with FakeGcs() as gcs:
        store = GcsTemplateStore("gs://my-bucket/kfp/templates", make_gcs_client(gcs.url))

        ref = store.upload("hello-pipeline", package, version=COMMIT, tags=(COMMIT, "latest"), metadata=METADATA)

        assert ref == f"gs://my-bucket/kfp/templates/hello-pipeline/{COMMIT}.yaml"
        assert set(gcs.objects) == {("my-bucket", f"kfp/templates/hello-pipeline/{COMMIT}.yaml"),
                                    ("my-bucket", "kfp/templates/hello-pipeline/latest.yaml")}
        stored = gcs.objects[("my-bucket", f"kfp/templates/hello-pipeline/{COMMIT}.yaml")]
        assert stored.data == package.package_path.read_bytes()
        assert stored.metadata["commit"] == COMMIT and stored.metadata["tags"] == f"{COMMIT},latest"


def test_a_refused_gcs_upload_is_a_deploy_error_saying_what_to_grant(package: Package) -> None:
    with FakeGcs() as gcs:
        gcs.fail_next("POST", r"/upload/.*", 403, times=10)
        store = GcsTemplateStore("gs://my-bucket", make_gcs_client(gcs.url))

        with pytest.raises(DeployError, match="roles/storage.objectAdmin"):
            store.upload("hello-pipeline", package, version=COMMIT, tags=(), metadata=METADATA)


def test_artifact_registry_gets_the_template_with_the_commit_and_latest_tags(package: Package) -> None:
    with FakeKfpRegistry() as registry:
        from kfp.registry import RegistryClient

        store = ArtifactRegistryTemplateStore(RegistryClient(host=registry.url, auth=ApiAuth("test-token")))

        ref = store.upload("hello-pipeline", package, version=COMMIT, tags=(COMMIT, "latest"), metadata=METADATA)

        [upload] = registry.uploads
        assert (upload.package, upload.tags) == ("hello-pipeline", [COMMIT, "latest"])
        assert upload.content == package.package_path.read_bytes()
        assert f"commit={COMMIT}" in upload.description and upload.authorization == "Bearer test-token"
        assert ref == f"{registry.url}/hello-pipeline/{upload.version}"


def test_a_refused_registry_upload_is_a_deploy_error(package: Package) -> None:
    with FakeKfpRegistry() as registry:
        from kfp.registry import RegistryClient

        registry.fail_with = 403
        store = ArtifactRegistryTemplateStore(RegistryClient(host=registry.url, auth=ApiAuth("t")))

        with pytest.raises(DeployError, match="artifactregistry.writer"):
            store.upload("hello-pipeline", package, version=COMMIT, tags=("latest",), metadata={})


def test_the_setting_chooses_the_store(tmp_path: Path) -> None:
    assert make_template_store(None, tmp_path).folder == tmp_path / "templates"
    assert make_template_store(str(tmp_path / "t"), tmp_path).folder == tmp_path / "t"
    with pytest.raises(DeployError, match="kfp.pkg.dev"):
        make_template_store("https://example.com/templates", tmp_path)
