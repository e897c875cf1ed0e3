"""The Cloud Build builder, through the real `CloudBuildClient` over gRPC to the fake Cloud Build.

The plans come from a real git repository in the seed's layout and the real planner; the tests
assert on what Cloud Build received and on what a user would see (run states, failure details,
log links). The step script itself runs in bash as the fake would hand it to a worker.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.devtools import cloudbuild_v1

from bot.pubsub.push import PushHandler
from bot.store import SqlStore
from deploy.builders.cloudbuild import DEFAULT_RETRY, CloudBuildBuilder, make_cloudbuild_client
from deploy.builders.cloudbuild_config import ConnectedRepositorySource, GitUrlSource, build_tags
from deploy.errors import BuildError
from deploy.runners.vertex import VertexRunner, make_pipeline_client
from handlers.models import BuildStatus
from handlers.ports.build import BuildOutcome, BuildRequest, BuildState
from handlers.ports.events import Ignored
from handlers.run_models import Run, RunState, Trigger, run_id_for
from pipeline_registry.planner import plan_change
from tests.fakes.cloudbuild import FailureType, FakeCloudBuild
from tests.fakes.cloudbuild_rules import TAG_RULE
from tests.support.gitrepo import GitRepo

PROJECT = "ml-project"
FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.02).with_timeout(0.5)
REPO = "octo/monorepo"
REGISTRY = "europe-docker.pkg.dev/ml-project/images"
PIPELINE_FILE = '''"""Demo: trains, evaluates, notifies."""
import kfp
from kfp import dsl

store = kfp.components.ComponentStore(local_search_paths=["pipelines/demo", "components"])
train_op = store.load_component("train")
evaluate_op = store.load_component("evaluate")
notify_op = kfp.components.load_component_from_file("components/notify/component.yaml")


@dsl.pipeline(name="demo")
def pipeline(epochs: int = 1):
    model = train_op(epochs=epochs)
    evaluate_op(model=model.output)
    notify_op(message="done")
'''


def write_monorepo(repo: GitRepo, config: str | None = None, **overrides: str) -> str:
    """The base commit: pipeline `demo` with `train` (copies utils/), `evaluate`, shared `notify`.

    `overrides` replace files, keyed by path with `/` spelled `__`.
    """
    files = {
        ".kfp-bot.yaml": config or f"image_registry: {REGISTRY}\n",
        "pipelines/demo/demo.py": PIPELINE_FILE,
        "pipelines/demo/settings.yaml": "arguments:\n  epochs: 2\n",
        "pipelines/demo/train/component.yaml": "name: train\n",
        "pipelines/demo/train/Dockerfile": "FROM python:3.11-slim\nCOPY utils ./utils\nCOPY pipelines/demo/train/* ./\n",
        "pipelines/demo/train/main.py": "print('train')\n",
        "pipelines/demo/evaluate/component.yaml": "name: evaluate\n",
        "pipelines/demo/evaluate/Dockerfile": "FROM python:3.11-slim\nCOPY pipelines/demo/evaluate/* ./\n",
        "pipelines/demo/evaluate/main.py": "print('evaluate')\n",
        "components/notify/component.yaml": "name: notify\n",
        "components/notify/Dockerfile": "FROM alpine:3.20\n",
        "utils/__init__.py": "",
        "utils/io.py": "def read(path):\n    return open(path).read()\n",
    }
    files.update({key.replace("__", "/"): text for key, text in overrides.items()})
    for path, text in files.items():
        repo.write(path, text)
    return repo.commit("base")


def change_train_and_evaluate(repo: GitRepo) -> str:
    """The head commit: utils/ (an input of train's image) and evaluate's code change."""
    repo.append("utils/io.py", "\n\ndef write(path, text):\n    open(path, 'w').write(text)\n")
    repo.append("pipelines/demo/evaluate/main.py", "print('more')\n")
    return repo.commit("change train's and evaluate's inputs")


def request_for(repo: GitRepo, base: str, head: str, *, pr: int | None = 7, run: str = "autorun") -> BuildRequest:
    plan = plan_change(repo.root, base, head).get("demo")
    assert plan is not None
    return BuildRequest(run_id=run_id_for(REPO, pr, head, "demo", run), repo=REPO, sha=head, pr=pr,
                        pipeline="demo", repo_dir=repo.root, components=plan.components)


@pytest.fixture
def fake() -> Iterator[FakeCloudBuild]:
    with FakeCloudBuild() as server:
        yield server


@pytest.fixture
def builder(client: cloudbuild_v1.CloudBuildClient) -> CloudBuildBuilder:
    return CloudBuildBuilder(client, PROJECT, retry=FAST_RETRY)


@pytest.fixture
def request_(git_repo: GitRepo) -> BuildRequest:
    base = write_monorepo(git_repo)
    head = change_train_and_evaluate(git_repo)
    return request_for(git_repo, base, head)


def the_build(fake: FakeCloudBuild) -> cloudbuild_v1.Build:
    builds = fake.builds
    assert len(builds) == 1, [b.tags for b in builds]
    return builds[0]


def run_of(request: BuildRequest) -> Run:
    from datetime import datetime

    now = datetime.now(UTC)
    return Run(id=request.run_id, repo=request.repo, pr=request.pr, sha=request.sha, base_sha=None,
               pipeline=request.pipeline, trigger=Trigger.AUTORUN, state=RunState.BUILDING,
               created_at=now, updated_at=now)


# the build -----------------------------------------------------------------------------------

def test_one_build_per_run_with_a_parallel_step_per_image_to_rebuild(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    outcome = builder.build(request_)

    build = the_build(fake)
    assert outcome.state is BuildState.STARTED
    assert outcome.url == build.log_url and build.id in outcome.url
    assert "train" in outcome.detail and "evaluate" in outcome.detail
    created = fake.requests("CreateBuild")
    assert len(created) == 1 and created[0].project_id == PROJECT
    images = {p.component.name: p.image for p in request_.components}
    assert sorted(s.id for s in build.steps) == ["demo-evaluate", "demo-train"]  # notify is unchanged
    assert all(list(s.wait_for) == ["-"] for s in build.steps)
    sha = request_.sha
    assert sorted(build.images) == sorted([images["train"], f"{REGISTRY}/demo-train:{sha}",
                                           images["evaluate"], f"{REGISTRY}/demo-evaluate:{sha}"])
    assert images["train"].startswith(f"{REGISTRY}/demo-train:content-")
    assert build.source.git_source.url == f"https://github.com/{REPO}.git"
    assert build.source.git_source.revision == sha
    assert set(build.tags) == {"kfp-bot", f"run-{request_.run_id.removeprefix('run-')}", "pipeline-demo",
                               f"commit-{sha}", "pr-7", "repo-octo_monorepo"}
    assert build.substitutions["_KFP_BOT_RUN_ID"] == request_.run_id
    assert build.substitutions["_KFP_BOT_PR"] == "7"
    assert not build.service_account


def test_the_steps_build_both_tags_with_the_repository_root_as_context(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest, tmp_path: Path) -> None:
    builder.build(request_)
    build = the_build(fake)
    train = next(s for s in fake.expanded_steps(build.id) if s.id == "demo-train")
    content = next(p.image for p in request_.components if p.component.name == "train")

    calls = run_step(train, request_.repo_dir, tmp_path, existing=())

    assert calls == [["manifest", "inspect", content],
                     ["build", "--file", "pipelines/demo/train/Dockerfile", "--tag", content,
                      "--tag", f"{REGISTRY}/demo-train:{request_.sha}", "."]]
    assert f"KFP_BOT_RUN_ID={request_.run_id}" in train.env


def test_a_step_reuses_an_image_whose_content_tag_exists_instead_of_building_it(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest, tmp_path: Path) -> None:
    builder.build(request_)
    train = next(s for s in fake.expanded_steps(the_build(fake).id) if s.id == "demo-train")
    content = next(p.image for p in request_.components if p.component.name == "train")

    calls = run_step(train, request_.repo_dir, tmp_path, existing=(content,))

    assert calls == [["manifest", "inspect", content], ["pull", "--quiet", content],
                     ["tag", content, f"{REGISTRY}/demo-train:{request_.sha}"]]


def test_component_build_context_builds_in_the_component_folder(
        git_repo: GitRepo, fake: FakeCloudBuild, builder: CloudBuildBuilder, tmp_path: Path) -> None:
    base = write_monorepo(git_repo, f"image_registry: {REGISTRY}\nbuild_context: component\n",
                          pipelines__demo__evaluate__Dockerfile="FROM python:3.11-slim\nCOPY main.py ./\n")
    git_repo.append("pipelines/demo/evaluate/main.py", "print('more')\n")
    request = request_for(git_repo, base, git_repo.commit("evaluate changes"))

    builder.build(request)

    (step,) = fake.expanded_steps(the_build(fake).id)
    calls = run_step(step, request.repo_dir, tmp_path, existing=())
    assert calls[-1][0] == "build" and calls[-1][-1] == "pipelines/demo/evaluate"
    assert calls[-1][1:3] == ["--file", "pipelines/demo/evaluate/Dockerfile"]


def test_nothing_to_rebuild_succeeds_without_asking_cloud_build(
        git_repo: GitRepo, fake: FakeCloudBuild, builder: CloudBuildBuilder) -> None:
    base = write_monorepo(git_repo)
    git_repo.append("pipelines/demo/settings.yaml", "  extra: 1\n")
    request = request_for(git_repo, base, git_repo.commit("settings only"))

    outcome = builder.build(request)

    assert outcome.state is BuildState.SUCCEEDED
    assert "up to date" in outcome.detail
    assert fake.calls == []


def test_a_second_build_of_the_same_run_reuses_the_first(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    first = builder.build(request_)
    again = builder.build(request_)

    assert len(fake.requests("CreateBuild")) == 1
    assert again.state is BuildState.STARTED and again.url == first.url
    fake.finish(the_build(fake).id, "SUCCESS")
    assert builder.build(request_).state is BuildState.SUCCEEDED
    assert len(fake.requests("CreateBuild")) == 1
    assert [r.filter for r in fake.requests("ListBuilds")] == [
        f'tags="run-{request_.run_id.removeprefix("run-")}"'] * 3


def test_another_run_of_the_same_commit_gets_its_own_build(
        git_repo: GitRepo, fake: FakeCloudBuild, builder: CloudBuildBuilder) -> None:
    base = write_monorepo(git_repo)
    head = change_train_and_evaluate(git_repo)
    builder.build(request_for(git_repo, base, head, run="autorun"))
    builder.build(request_for(git_repo, base, head, run="command:1234"))

    assert len(fake.builds) == 2


def test_a_build_the_bot_started_after_a_lost_response_is_found_not_duplicated(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("CreateBuild", grpc.StatusCode.DEADLINE_EXCEEDED, after_processing=True)

    outcome = builder.build(request_)

    build = the_build(fake)
    assert outcome.state is BuildState.STARTED and outcome.url == build.log_url


def test_service_account_builds_log_to_cloud_logging(
        client: cloudbuild_v1.CloudBuildClient, fake: FakeCloudBuild, request_: BuildRequest) -> None:
    builder = CloudBuildBuilder(client, PROJECT, service_account="builder@ml-project.iam.gserviceaccount.com")

    assert builder.build(request_).state is BuildState.STARTED

    build = the_build(fake)
    assert build.service_account == (f"projects/{PROJECT}/serviceAccounts/"
                                     "builder@ml-project.iam.gserviceaccount.com")
    assert build.options.logging == cloudbuild_v1.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY


def test_private_repositories_build_from_a_cloud_build_connection_in_its_region(
        client: cloudbuild_v1.CloudBuildClient, fake: FakeCloudBuild, request_: BuildRequest) -> None:
    connection = f"projects/{PROJECT}/locations/europe-west1/connections/github"
    builder = CloudBuildBuilder(client, PROJECT, source=ConnectedRepositorySource(connection))
    fake.linked[f"{connection}/repositories/octo-monorepo"] = request_.repo_dir

    outcome = builder.build(request_)
    fake.finish(the_build(fake).id, "SUCCESS")

    build = the_build(fake)
    assert outcome.state is BuildState.STARTED and ";region=europe-west1" in (outcome.url or "")
    assert build.source.connected_repository.repository == f"{connection}/repositories/octo-monorepo"
    assert build.source.connected_repository.revision == request_.sha
    assert fake.requests("CreateBuild")[0].parent == f"projects/{PROJECT}/locations/europe-west1"
    assert builder.build_status(run_of(request_)) == BuildOutcome(
        BuildState.SUCCEEDED, f"images built by Cloud Build {build.id}", build.log_url)


def test_a_localhost_endpoint_gets_an_insecure_anonymous_channel(fake: FakeCloudBuild) -> None:
    client = make_cloudbuild_client(f"localhost:{fake.port}")
    try:
        assert list(client.list_builds(project_id=PROJECT, filter="")) == []
    finally:
        client.transport.close()
    assert [c.method for c in fake.calls] == ["ListBuilds"]


def test_a_git_url_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="must not carry credentials"):
        GitUrlSource("https://x-access-token:ghs_secret@github.com/{repo}.git")


def test_build_tags_follow_cloud_builds_tag_rule(request_: BuildRequest) -> None:
    odd = BuildRequest(run_id="run-0123456789abcdef", repo="Octo Org/mono.repo", sha="a" * 40, pr=12,
                       pipeline="héad pose/pipeline" + "x" * 200, repo_dir=request_.repo_dir, components=())

    tags = build_tags(odd)

    assert all(TAG_RULE.match(tag) for tag in tags), tags
    assert "repo-Octo_Org_mono.repo" in tags and "pr-12" in tags


# notifications -------------------------------------------------------------------------------

def test_a_successful_build_lets_the_run_go_on_to_compiling(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    builder.build(request_)
    build = the_build(fake)
    assert isinstance(builder.decode_notification(**vars(fake.notification(build.id))), Ignored)  # QUEUED
    assert isinstance(builder.decode_notification(**vars(fake.start_working(build.id))), Ignored)

    event = builder.decode_notification(**vars(fake.finish(build.id, "SUCCESS")))

    images = {p.component.path: p.image for p in request_.components if p.rebuild}
    assert event == BuildStatus(run_id=request_.run_id, state=RunState.COMPILING,
                                detail=f"images built by Cloud Build {build.id}", url=build.log_url,
                                images=images)


def test_a_failed_build_fails_the_run_naming_the_failing_step_and_the_log(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    builder.build(request_)
    build = the_build(fake)

    event = builder.decode_notification(**vars(fake.finish(build.id, "FAILURE", "demo-evaluate")))

    assert isinstance(event, BuildStatus)
    assert event.run_id == request_.run_id and event.state is RunState.FAILED
    assert event.url == build.log_url
    assert "failed at step demo-evaluate (pipelines/demo/evaluate)" in event.detail
    assert "step exited with non-zero status: 1" in event.detail
    assert event.detail.endswith(f"Build log: {build.log_url}")
    assert builder.build(request_).state is BuildState.FAILED  # a redelivery changes nothing


@pytest.mark.parametrize(("status", "failure_type", "expected"), [
    ("TIMEOUT", None, "timed out at step demo-train (pipelines/demo/train)"),
    ("CANCELLED", None, "was cancelled on Cloud Build"),
    ("EXPIRED", None, "queue TTL"),
    ("INTERNAL_ERROR", None, "internal error"),
    ("FAILURE", FailureType.FETCH_SOURCE_FAILED, "Cloud Build GitHub connection"),
    ("FAILURE", FailureType.PUSH_NOT_AUTHORIZED, "roles/artifactregistry.writer"),
])
def test_every_unsuccessful_end_fails_the_run_with_a_reason(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest, status: str,
        failure_type: FailureType | None, expected: str) -> None:
    builder.build(request_)
    build = the_build(fake)

    step = "demo-train" if status == "TIMEOUT" else None
    event = builder.decode_notification(**vars(fake.finish(build.id, status, step, failure_type=failure_type,
                                                           detail="reason from Cloud Build")))

    assert isinstance(event, BuildStatus) and event.state is RunState.FAILED
    assert expected in event.detail and build.log_url in event.detail


def test_builds_kfp_bot_did_not_start_are_acknowledged_at_debug_level_not_warned_about(
        client: cloudbuild_v1.CloudBuildClient, fake: FakeCloudBuild, builder: CloudBuildBuilder,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    foreign = client.create_build(project_id=PROJECT, build=cloudbuild_v1.Build(
        steps=[cloudbuild_v1.BuildStep(name="gcr.io/cloud-builders/docker", args=["build", "."])],
        tags=["run-0123456789abcdef", "nightly"])).metadata.build
    vertex = VertexRunner(make_pipeline_client("europe-west4", credentials=AnonymousCredentials()), PROJECT,
                          "europe-west4", pipeline_root="gs://bucket/root")
    dispatched: list[object] = []
    handler = PushHandler(SqlStore(f"sqlite:///{tmp_path / 'bot.db'}"), [builder, vertex], dispatched.append,
                          lambda event, error: None)

    outcomes = []
    with caplog.at_level(logging.DEBUG):
        for status in ("WORKING", "SUCCESS"):
            message = fake.start_working(foreign.id) if status == "WORKING" else fake.finish(foreign.id, status)
            outcomes.append(handler.handle(json.dumps({"subscription": "projects/p/subscriptions/cloud-builds",
                                                       "message": {"messageId": f"m-{status}",
                                                                   "attributes": message.attributes,
                                                                   "data": base64.b64encode(message.data).decode()}
                                                       }).encode()))

    assert [o.status for o, _ in outcomes] == [200, 200] and dispatched == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("not a kfp-bot build" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_unreadable_notifications_are_logged_and_ignored(
        builder: CloudBuildBuilder, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kfp_bot.cloudbuild"):
        assert builder.decode_notification({"buildId": "b-1", "status": "SUCCESS"}, b"{not json") is None
        assert builder.decode_notification({"buildId": "b-2"}, json.dumps([1]).encode()) is None

    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "cloud-builds message for build b-1 ignored", "cloud-builds message for build b-2 ignored"]


# errors --------------------------------------------------------------------------------------

def test_permission_denied_fails_the_run_saying_what_to_grant(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("CreateBuild", grpc.StatusCode.PERMISSION_DENIED)

    outcome = builder.build(request_)

    assert outcome.state is BuildState.FAILED
    assert outcome.detail.startswith(f"Cloud Build refused to start a build in project {PROJECT}: "
                                     "permission denied")
    assert f"roles/cloudbuild.builds.editor on project {PROJECT}" in outcome.detail
    assert "Traceback" not in outcome.detail and fake.builds == []


def test_permission_denied_on_the_look_up_never_creates_a_build(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("ListBuilds", grpc.StatusCode.PERMISSION_DENIED)

    outcome = builder.build(request_)

    assert outcome.state is BuildState.FAILED and "roles/cloudbuild.builds.editor" in outcome.detail
    assert fake.requests("CreateBuild") == []


def test_an_unavailable_service_is_retried_then_reported(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("ListBuilds", grpc.StatusCode.UNAVAILABLE, times=None)

    outcome = builder.build(request_)

    assert outcome.state is BuildState.FAILED
    assert f"Cloud Build did not answer when asked to look up the run's build in project {PROJECT}, " \
           "even after retrying" in outcome.detail
    assert len(fake.requests("ListBuilds")) >= 2
    assert fake.requests("CreateBuild") == []


def test_a_transient_look_up_error_is_retried_and_the_build_starts(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("ListBuilds", grpc.StatusCode.UNAVAILABLE, times=2)

    assert builder.build(request_).state is BuildState.STARTED
    assert len(fake.requests("ListBuilds")) == 3 and len(fake.builds) == 1


def test_already_exists_without_a_build_to_find_fails_clearly(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("CreateBuild", grpc.StatusCode.ALREADY_EXISTS)

    outcome = builder.build(request_)

    assert outcome.state is BuildState.FAILED
    assert outcome.detail == (f"Cloud Build could not start a build in project {PROJECT}: it says the build "
                              "already exists, yet no build of this run can be found (build already exists); "
                              "start the run again")
    assert len(fake.requests("ListBuilds")) == 2


# reconcile -----------------------------------------------------------------------------------

def test_build_status_follows_the_run_s_build(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    run = run_of(request_)
    assert builder.build_status(run) is None

    builder.build(request_)
    build = the_build(fake)
    started = builder.build_status(run)
    assert started is not None and started.state is BuildState.STARTED and started.url == build.log_url

    fake.finish(build.id, "FAILURE", "demo-train")
    failed = builder.build_status(run)
    assert failed is not None and failed.state is BuildState.FAILED
    assert "failed at step demo-train (pipelines/demo/train)" in failed.detail


def test_build_status_raises_a_clear_error_when_cloud_build_cannot_answer(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    fake.fail("ListBuilds", grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(BuildError, match=f"roles/cloudbuild.builds.editor on project {PROJECT}"):
        builder.build_status(run_of(request_))


def test_cancel_stops_a_running_build_only(
        fake: FakeCloudBuild, builder: CloudBuildBuilder, request_: BuildRequest) -> None:
    run = run_of(request_)
    assert builder.cancel(run) is False
    builder.build(request_)

    assert builder.cancel(run) is True
    assert builder.cancel(run) is False
    assert the_build(fake).status == cloudbuild_v1.Build.Status.CANCELLED


# helpers -------------------------------------------------------------------------------------

_DOCKER_STUB = """#!/bin/bash
# Records each call (arguments separated by \\037); `manifest inspect` finds only the images in $EXISTING.
{ for arg in "$@"; do printf '%s\\037' "$arg"; done; printf '\\n'; } >> "$CALLS"
if [ "$1" = manifest ]; then grep -qxF -- "$3" "$EXISTING"; exit $?; fi
exit 0
"""


def run_step(step: cloudbuild_v1.BuildStep, workspace: Path, tmp_path: Path,
             existing: tuple[str, ...]) -> list[list[str]]:
    """Run an expanded step's entrypoint and args in bash with a recording `docker` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(_DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    calls, listed = tmp_path / "calls", tmp_path / "existing"
    calls.write_text("")
    listed.write_text("".join(f"{image}\n" for image in existing))
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", CALLS=str(calls), EXISTING=str(listed),
               **dict(item.split("=", 1) for item in step.env))
    assert step.entrypoint == "bash" and step.name == "gcr.io/cloud-builders/docker"
    subprocess.run(["bash", *step.args], cwd=workspace, env=env, check=True, capture_output=True, text=True)
    return [line.rstrip("\x1f").split("\x1f") for line in calls.read_text().splitlines()]


def test_docker_stub_records_arguments(tmp_path: Path) -> None:
    step = cloudbuild_v1.BuildStep(name="gcr.io/cloud-builders/docker", entrypoint="bash",
                                   args=["-c", 'docker build --tag "a b" .'])
    assert run_step(step, tmp_path, tmp_path, existing=()) == [["build", "--tag", "a b", "."]]
