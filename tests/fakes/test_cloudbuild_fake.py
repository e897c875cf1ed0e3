"""The fake Cloud Build, driven by the real `CloudBuildClient` over gRPC.

These pin the parts of Cloud Build's behaviour the builder's tests rely on: operations that
carry the build, tag filters and paging, validation with Cloud Build's wording, the
`cloud-builds` message format, and injected faults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries
from google.cloud.devtools import cloudbuild_v1

from deploy.builders.cloudbuild import make_cloudbuild_client
from tests.fakes.cloudbuild import FailureType, FakeCloudBuild
from tests.fakes.cloudbuild_worker import run_steps

Status = cloudbuild_v1.Build.Status
PROJECT = "proj"
NO_RETRY = retries.Retry(predicate=lambda exc: False)


def step(step_id: str = "a", *args: str) -> cloudbuild_v1.BuildStep:
    return cloudbuild_v1.BuildStep(id=step_id, name="gcr.io/cloud-builders/docker", args=list(args) or ["version"])


@pytest.fixture
def fake() -> Iterator[FakeCloudBuild]:
    with FakeCloudBuild(project_number=42) as server:
        yield server


@pytest.fixture
def client(fake: FakeCloudBuild) -> Iterator[cloudbuild_v1.CloudBuildClient]:
    built = make_cloudbuild_client(fake.endpoint)
    yield built
    built.transport.close()


def create(client: cloudbuild_v1.CloudBuildClient, **fields: object) -> cloudbuild_v1.Build:
    fields.setdefault("steps", [step()])
    return client.create_build(project_id=PROJECT, build=cloudbuild_v1.Build(**fields)).metadata.build


def test_create_build_answers_an_operation_carrying_the_queued_build(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    operation = client.create_build(project_id=PROJECT, build=cloudbuild_v1.Build(steps=[step()], tags=["x"]))

    build = operation.metadata.build
    assert operation.operation.name.startswith(f"operations/build/{PROJECT}/") and not operation.operation.done
    assert build.status == Status.QUEUED and build.project_id == PROJECT
    assert build.log_url == f"https://console.cloud.google.com/cloud-build/builds/{build.id}?project=42"
    assert client.get_build(project_id=PROJECT, id=build.id).tags == ["x"]
    assert [c.method for c in fake.calls] == ["CreateBuild", "GetBuild"]
    assert fake.requests("CreateBuild")[0].build.tags == ["x"]


def test_list_builds_filters_by_tags_newest_first_across_pages(client: cloudbuild_v1.CloudBuildClient) -> None:
    first = create(client, tags=["kfp-bot", "run-1"])
    create(client, tags=["kfp-bot", "run-2"])
    third = create(client, tags=["kfp-bot", "run-1"])

    found = client.list_builds(request=cloudbuild_v1.ListBuildsRequest(
        project_id=PROJECT, filter='tags="run-1"', page_size=1))

    assert [b.id for b in found] == [third.id, first.id]
    both = client.list_builds(project_id=PROJECT, filter='tags="kfp-bot" AND tags="run-2"')
    assert len(list(both)) == 1
    assert list(client.list_builds(project_id="other", filter='tags="run-1"')) == []


def test_an_unknown_filter_is_invalid(client: cloudbuild_v1.CloudBuildClient) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match="invalid filter"):
        list(client.list_builds(project_id=PROJECT, filter="tags:run-1"))


def test_regional_builds_are_listed_under_their_location(client: cloudbuild_v1.CloudBuildClient) -> None:
    parent = f"projects/{PROJECT}/locations/europe-west1"
    operation = client.create_build(project_id=PROJECT, parent=parent,
                                    build=cloudbuild_v1.Build(steps=[step()], tags=["t"]))

    assert ";region=europe-west1/" in operation.metadata.build.log_url
    assert list(client.list_builds(project_id=PROJECT, filter='tags="t"')) == []
    regional = client.list_builds(request=cloudbuild_v1.ListBuildsRequest(
        project_id=PROJECT, parent=parent, filter='tags="t"'))
    assert [b.id for b in regional] == [operation.metadata.build.id]


@pytest.mark.parametrize(("build", "message"), [
    (cloudbuild_v1.Build(), "no build steps"),
    (cloudbuild_v1.Build(steps=[step()], tags=["run/1"]), 'invalid build tag "run/1"'),
    (cloudbuild_v1.Build(steps=[step("a"), step("a")]), 'duplicate build step id "a"'),
    (cloudbuild_v1.Build(steps=[cloudbuild_v1.BuildStep(name="x", wait_for=["later"])]), 'depends on "later"'),
    (cloudbuild_v1.Build(steps=[step("a", "-c", 'echo "$content"')]), 'key in the template "content"'),
    (cloudbuild_v1.Build(steps=[step()], substitutions={"_UNUSED": "1"}), 'key "_UNUSED" in the substitution'),
    (cloudbuild_v1.Build(steps=[step()], substitutions={"lower": "1"}), 'key "lower" must begin with "_"'),
    (cloudbuild_v1.Build(steps=[step()], service_account="projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com"),
     "CLOUD_LOGGING_ONLY"),
])
def test_builds_cloud_build_would_refuse_are_invalid(
        client: cloudbuild_v1.CloudBuildClient, build: cloudbuild_v1.Build, message: str) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match=message.replace("(", r"\(")):
        client.create_build(project_id=PROJECT, build=build)


def test_escaped_dollars_and_substitutions_expand_as_a_worker_runs_them(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    build = create(client, steps=[cloudbuild_v1.BuildStep(
        name="bash", args=["-c", 'echo "$$1" $_RUN ${PROJECT_ID}', "x"], env=["RUN=$_RUN"])],
        substitutions={"_RUN": "run-1"})

    (expanded,) = fake.expanded_steps(build.id)

    assert list(expanded.args) == ["-c", 'echo "$1" run-1 proj', "x"] and list(expanded.env) == ["RUN=run-1"]


def test_finish_publishes_the_build_as_cloud_build_does(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    build = create(client, steps=[step("one"), step("two")], images=["r/img:1"], tags=["t"])

    message = fake.finish(build.id, "FAILURE", "two")

    assert message.attributes == {"buildId": build.id, "status": "FAILURE"}
    data = json.loads(message.data)
    assert data["id"] == build.id and data["status"] == "FAILURE" and data["logUrl"] == build.log_url
    assert [(s["id"], s["status"]) for s in data["steps"]] == [("one", "CANCELLED"), ("two", "FAILURE")]
    assert data["failureInfo"]["type"] == "USER_BUILD_STEP"
    assert 'build step 1 "gcr.io/cloud-builders/docker" failed' in data["statusDetail"]
    assert client.get_build(project_id=PROJECT, id=build.id).status == Status.FAILURE


def test_a_successful_build_records_the_pushed_images(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    build = create(client, images=["r/img:1", "r/img:sha"])

    fake.start_working(build.id)
    data = json.loads(fake.finish(build.id, Status.SUCCESS).data)

    assert [i["name"] for i in data["results"]["images"]] == ["r/img:1", "r/img:sha"]
    assert all(i["digest"].startswith("sha256:") for i in data["results"]["images"])
    assert "startTime" in data and "finishTime" in data


def test_a_failure_outside_the_steps_keeps_its_type(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    build = create(client)

    data = json.loads(fake.finish(build.id, "FAILURE", failure_type=FailureType.FETCH_SOURCE_FAILED,
                                  detail="could not fetch").data)

    assert data["failureInfo"] == {"type": "FETCH_SOURCE_FAILED", "detail": "could not fetch"}


def test_cancel_build_cancels_only_unfinished_builds(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    running, done = create(client), create(client)
    fake.finish(done.id, "SUCCESS")

    assert client.cancel_build(project_id=PROJECT, id=running.id).status == Status.CANCELLED
    assert client.cancel_build(project_id=PROJECT, id=done.id).status == Status.SUCCESS
    with pytest.raises(api_exceptions.NotFound):
        client.cancel_build(project_id=PROJECT, id="nope")


@pytest.mark.parametrize(("code", "error"), [
    (grpc.StatusCode.PERMISSION_DENIED, api_exceptions.PermissionDenied),
    (grpc.StatusCode.UNAVAILABLE, api_exceptions.ServiceUnavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, api_exceptions.DeadlineExceeded),
    (grpc.StatusCode.ALREADY_EXISTS, api_exceptions.AlreadyExists),
])
def test_faults_are_answered_then_cleared(fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient,
                                          code: grpc.StatusCode, error: type[Exception]) -> None:
    fake.fail("ListBuilds", code)

    with pytest.raises(error):
        list(client.list_builds(project_id=PROJECT, filter="", retry=NO_RETRY))
    assert list(client.list_builds(project_id=PROJECT, filter="", retry=NO_RETRY)) == []
    assert [c.code for c in fake.calls] == [code, grpc.StatusCode.OK]


def test_the_library_retries_unavailable_reads(fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    build = create(client)
    fake.fail("GetBuild", grpc.StatusCode.UNAVAILABLE, times=2)

    assert client.get_build(project_id=PROJECT, id=build.id, retry=retries.Retry(
        initial=0.01, maximum=0.02, timeout=5)).id == build.id
    assert len(fake.requests("GetBuild")) == 3


def test_a_fault_after_processing_loses_only_the_answer(
        fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    fake.fail("CreateBuild", grpc.StatusCode.DEADLINE_EXCEEDED, after_processing=True)

    with pytest.raises(api_exceptions.DeadlineExceeded):
        client.create_build(project_id=PROJECT, build=cloudbuild_v1.Build(steps=[step()]))
    assert len(fake.builds) == 1


def test_permission_denied_names_the_permission(fake: FakeCloudBuild, client: cloudbuild_v1.CloudBuildClient) -> None:
    fake.fail("CreateBuild", grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(api_exceptions.PermissionDenied, match="cloudbuild.builds.create"):
        client.create_build(project_id=PROJECT, build=cloudbuild_v1.Build(steps=[step()]))
    assert fake.builds == []


def test_steps_run_in_their_dir_on_the_shared_workspace_and_may_be_allowed_to_fail(tmp_path) -> None:
    def step(step_id: str, script: str, **fields) -> cloudbuild_v1.BuildStep:
        return cloudbuild_v1.BuildStep(id=step_id, name="python:3.11-slim", entrypoint="bash",
                                       args=["-c", script], **fields)

    allowed = step("may-fail", "exit 3", allow_failure=True)
    in_dir = step("in-dir", 'pwd > ../seen-from-sub && echo made > ../../made-in-workspace-root', dir_="a/sub")
    assert run_steps([allowed, in_dir], tmp_path) is None
    assert (tmp_path / "a/seen-from-sub").read_text().strip().endswith("/a/sub")
    assert (tmp_path / "made-in-workspace-root").read_text() == "made\n"

    failed = run_steps([step("must-pass", "echo boom; exit 4")], tmp_path)
    assert failed is not None and (failed.step_id, failed.exit_code) == ("must-pass", 4) and "boom" in failed.output
    outside = run_steps([step("escape", "true", dir_="../elsewhere")], tmp_path)
    assert outside is not None and "outside /workspace" in outside.output
