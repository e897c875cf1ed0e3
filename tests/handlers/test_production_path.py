"""The Google Cloud path end to end: webhook → Pub/Sub → push → Cloud Build → build notification →
compile → Vertex AI job → pipeline state event → succeeded, against local fakes of every service
reached through the real client libraries, and what every service was asked to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import json_format

from bot.app import create_app
from bot.config import BuilderKind, BusKind, RunnerKind, Settings
from bot.wiring import build_services
from deploy.builders.cloudbuild_diffs import NO_BUILD
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.github import FakeGitHub
from tests.fakes.github_hooks import AppWebhook
from tests.fakes.oidc import OidcSigner
from tests.fakes.pubsub import DEFAULT_PROJECT, DEFAULT_PUSH_ACCOUNT, FakePubSub
from tests.fakes.template_stores import FakeGcs
from tests.fakes.vertex import FakeVertexPipelines
from tests.handlers.conftest import PR, REPO, SECRET, Bot, install_app, seed_repo
from tests.support.github_clients import APP_ID, clients_for
from tests.support.gitrepo import GitRepo
from tests.support.server import ServedApp

AUDIENCE = "https://kfp-bot.example.com"
BUCKET = "ml-project-kfp-bot"
TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"


@dataclass
class Cloud:
    pubsub: FakePubSub
    cloudbuild: FakeCloudBuild
    vertex: FakeVertexPipelines
    signer: OidcSigner


class CloudBot(Bot):
    """The bot on the production path: work travels through the Pub/Sub fake."""

    cloud: Cloud

    def settle(self, timeout: float = 180) -> None:
        assert self.cloud.pubsub.wait_idle(timeout), "Pub/Sub still has messages to push"

    def pull_built(self, head: str, status: str = "SUCCESS") -> None:
        """Open the PR at `head`, let its one build end with `status` (Cloud Build's notification
        through Pub/Sub) and wait for what follows."""
        self.open_pull(head)
        self.settle()
        [build] = self.cloud.cloudbuild.builds
        self.build_ends(build.id, status)

    def build_ends(self, build_id: str, status: str = "SUCCESS") -> None:
        """Let build `build_id` end with `status` (Cloud Build's notification through Pub/Sub) and wait for
        what follows."""
        notification = self.cloud.cloudbuild.finish(build_id, status)
        self.cloud.pubsub.deliver(notification.data, notification.attributes, topic="cloud-builds")
        self.settle()


@pytest.fixture
def cloud_bot(tmp_path: Path, example_repo: GitRepo) -> Iterator[CloudBot]:
    with FakeGitHub() as github, FakePubSub() as pubsub, OidcSigner() as signer, FakeGcs() as gcs, \
            FakeCloudBuild(gcs=gcs) as cloudbuild, FakeVertexPipelines() as vertex:
        key = install_app(github)
        base = seed_repo(github, example_repo)
        settings = Settings(
            webhook_secret=SECRET, github_api_url=github.api_url, github_app_id=APP_ID, github_private_key=key,
            data_dir=tmp_path / "data", allow_local_repos=True,
            bus=BusKind.PUBSUB, gcp_project=DEFAULT_PROJECT, pubsub_endpoint=pubsub.endpoint,
            pubsub_push_audience=AUDIENCE, pubsub_push_service_account=DEFAULT_PUSH_ACCOUNT,
            oidc_certs_url=signer.certs_url,
            builder=BuilderKind.CLOUDBUILD, cloudbuild_endpoint=cloudbuild.endpoint,
            cloudbuild_bucket=BUCKET, gcs_endpoint=gcs.url,
            runner=RunnerKind.VERTEX, vertex_endpoint=vertex.endpoint, pipeline_root="gs://pipelines/root")
        services = build_services(settings, github_clients=clients_for(settings))
        server = ServedApp(create_app(settings, services))
        pubsub.push_to(f"{server.url}/pubsub/push", signer=signer, audience=AUDIENCE)
        AppWebhook(github, APP_ID, url=f"{server.url}/github/webhook", secret=SECRET)
        bot = CloudBot(url=server.url, services=services, github=github, repo=example_repo, base=base)
        bot.cloud = Cloud(pubsub, cloudbuild, vertex, signer)
        try:
            yield bot
        finally:
            server.close()


def test_a_pull_request_travels_the_whole_production_path(cloud_bot: CloudBot) -> None:
    bot, cloud = cloud_bot, cloud_bot.cloud
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# faster\n"})
    assert bot.open_pull(head).status_code == 202
    bot.settle()

    # the webhook went through the events topic
    assert {m.attributes.get("kind") for m in cloud.pubsub.messages} >= {"pull_request", "run.start"}
    [run] = bot.runs(pr=PR)
    assert run["state"] == "building"

    # one build, for the changed component only, with both tags, then the compile; from the
    # context the bot uploaded, not from the repository
    [build] = cloud.cloudbuild.builds
    step, compile_step, base_step = build.steps
    assert "training-pipeline-train" in step.id and compile_step.id == "kfp-bot-compile"
    # ...and the merge base's compile, for the pipeline diff, from its files uploaded beside the head's
    assert (base_step.id, base_step.dir_, base_step.allow_failure) == ("kfp-bot-compile-base", ".kfp-bot/base", True)
    assert build.source.storage_source.bucket == BUCKET
    train_images = [image for image in build.images if "training-pipeline-train" in image]
    content_image = next(image for image in train_images if ":content-" in image)
    assert any(image.endswith(f":{head}") for image in train_images)
    assert f"commit-{head}" in build.tags

    bot.build_ends(build.id)

    # compiled with the built image and submitted to Vertex AI with settings.yaml's parameters
    [job] = cloud.vertex.jobs
    spec = json.dumps(json_format.MessageToDict(job._pb.pipeline_spec))
    assert content_image in spec
    values = {k: v for k, v in job.runtime_config.parameter_values.items()}
    assert values["epochs"] == 2 and values["batch_size"] == 16 and values["learning_rate"] == 0.01
    assert job.labels["kfp-bot-pipeline"] == "training-pipeline"
    assert job.labels["kfp-bot-commit"] == head
    job_id = job.name.rsplit("/", 1)[-1]
    assert job_id.startswith("kfp-bot-training-pipeline-")
    running = bot.runs(pr=PR)[0]
    assert running["state"] == "running" and job_id in running["url"]
    # the pipeline diff, from the base the build compiled: the train image's content tag moved
    summary = bot.checks(head)["kfp-bot / training-pipeline"]["output"]["summary"]
    assert "#### Pipeline diff: `training-pipeline` (1 change)" in summary
    [row] = [line for line in summary.splitlines() if line.startswith("| image | `train` |")]
    assert row.endswith(f"| `{content_image}` |") and "training-pipeline-train:content-" in row.split("|")[3]
    assert "<details><summary>Pipeline diff of <code>training-pipeline</code>: 1 change</summary>" in \
        bot.replies()[0]

    event = cloud.vertex.set_state(job_id, "PIPELINE_STATE_SUCCEEDED")
    cloud.pubsub.deliver(event.data, event.attributes, topic="pipeline-events")
    bot.settle()
    [done] = bot.runs(pr=PR)
    assert done["state"] == "succeeded"
    assert bot.checks(head)["kfp-bot / training-pipeline"]["conclusion"] == "success"
    assert bot.checks(head)["kfp-bot"]["conclusion"] == "success"

    # a second delivery of every message changes nothing
    before = (len(cloud.cloudbuild.requests("CreateBuild")), len(cloud.vertex.requests("CreatePipelineJob")),
              len(bot.github.check_runs(REPO, head)), len(bot.replies()))
    for message in cloud.pubsub.messages:
        cloud.pubsub.redeliver(message.message_id)
    bot.settle()
    after = (len(cloud.cloudbuild.requests("CreateBuild")), len(cloud.vertex.requests("CreatePipelineJob")),
             len(bot.github.check_runs(REPO, head)), len(bot.replies()))
    assert after == before
    assert bot.runs(pr=PR)[0]["transitions"] == done["transitions"]


def test_the_bot_compiles_nothing_itself_it_reads_what_the_build_compiled(cloud_bot: CloudBot) -> None:
    bot, cloud = cloud_bot, cloud_bot.cloud
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# z\n"})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    notification = cloud.cloudbuild.finish(build.id, "SUCCESS")
    gcs = cloud.cloudbuild.gcs
    assert gcs is not None
    compiled = [key for key in gcs.objects if "/compiled/" in key[1]]
    assert compiled  # the build's compile step wrote its artifacts
    for key in compiled:  # ...and they are lost: the bot has no other way to get a spec
        del gcs.objects[key]
    cloud.pubsub.deliver(notification.data, notification.attributes, topic="cloud-builds")
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed" and "Cloud Build's compile step left no verdict" in run["error"]
    assert cloud.vertex.requests("CreatePipelineJob") == []


def test_a_failed_build_fails_the_run_with_the_step_and_the_log(cloud_bot: CloudBot) -> None:
    bot, cloud = cloud_bot, cloud_bot.cloud
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# broken\n"})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    bot.build_ends(build.id, "FAILURE")
    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert "training-pipeline-train" in run["error"] and build.log_url in run["error"]
    assert cloud.vertex.requests("CreatePipelineJob") == []


def test_a_refused_job_and_a_failed_job_are_shown(cloud_bot: CloudBot) -> None:
    import grpc

    bot, cloud = cloud_bot, cloud_bot.cloud
    cloud.vertex.fail("CreatePipelineJob", grpc.StatusCode.PERMISSION_DENIED, message="no aiplatform.user")
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# x\n"})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    bot.build_ends(build.id)
    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed" and "no aiplatform.user" in run["error"]


def test_an_event_that_never_comes_is_found_by_reconcile(cloud_bot: CloudBot) -> None:
    import requests

    bot, cloud = cloud_bot, cloud_bot.cloud
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# y\n"})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    cloud.cloudbuild.finish(build.id, "SUCCESS")  # its notification is lost
    answer = requests.post(f"{bot.url}/tasks/reconcile", timeout=30,
                           headers={"Authorization": "Bearer " + _scheduler_token(bot)})
    assert answer.status_code == 200, answer.text
    bot.settle()
    [job] = cloud.vertex.jobs
    cloud.vertex.set_state(job.name.rsplit("/", 1)[-1], "PIPELINE_STATE_FAILED", error="OOMKilled")  # lost too
    requests.post(f"{bot.url}/tasks/reconcile", timeout=30,
                  headers={"Authorization": "Bearer " + _scheduler_token(bot)})
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed" and "OOMKilled" in run["error"]


def _scheduler_token(bot: CloudBot) -> str:
    """Cloud Scheduler calls with the push identity's OIDC token."""
    return bot.cloud.signer.token(AUDIENCE, DEFAULT_PUSH_ACCOUNT)


def test_a_vertex_job_past_its_run_timeout_is_cancelled_by_reconcile(cloud_bot: CloudBot) -> None:
    """`run.timeout` (trusted: on the default branch) ends a job Vertex AI would let run on."""
    import time

    import requests

    bot, cloud = cloud_bot, cloud_bot.cloud
    settings_file = "pipelines/training-pipeline/settings.yaml"
    bot.repo.write(settings_file, (bot.repo.root / settings_file).read_text() + "run:\n  timeout: 1s\n")
    on_main = bot.repo.commit("training may run 1 s")
    bot.github.add_commit(REPO, on_main, branch="main")
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# z\n"}, start=on_main)
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    bot.build_ends(build.id)
    [job] = cloud.vertex.jobs
    assert bot.runs(pr=PR)[0]["state"] == "running"

    time.sleep(1.5)
    answer = requests.post(f"{bot.url}/tasks/reconcile", timeout=30,
                           headers={"Authorization": "Bearer " + _scheduler_token(bot)})
    assert answer.status_code == 200 and answer.json()["reconcile"]["timed_out"] == 1, answer.text
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed" and "run.timeout in settings.yaml" in run["error"]
    assert cloud.vertex.jobs[0].state.name in ("PIPELINE_STATE_CANCELLING", "PIPELINE_STATE_CANCELLED")


def test_a_kfp_pin_that_does_not_install_in_cloud_build_falls_back_and_the_check_says_so(
        cloud_bot: CloudBot, kfp_distribution: Path) -> None:
    import platform
    from importlib import metadata

    bot, cloud = cloud_bot, cloud_bot.cloud
    installed = metadata.version("kfp")
    minor, patch = installed.rsplit(".", 1)
    if not patch.isdigit() or int(patch) == 0:
        pytest.skip(f"kfp {installed} has no older patch release to pin")
    cloud.cloudbuild.package_folder = kfp_distribution  # kfp {installed} only: the pinned release is not there
    head = bot.branch("pin", {"requirements.txt": f"kfp=={minor}.0\n"})
    bot.open_pull(head)
    bot.settle()
    for build in cloud.cloudbuild.builds:
        bot.build_ends(build.id)

    note = (f"kfp=={minor}.0 (pinned in requirements.txt) does not install on Python {platform.python_version()} "
            f"of Cloud Build's compile step: compiled with kfp {installed}, the nearest {minor} release that installs")
    runs = bot.runs(pr=PR)
    assert runs and all(run["state"] == "running" for run in runs), runs
    for run in runs:
        assert note in run["transitions"][-1]["detail"]
        assert note in bot.checks(head)[f"kfp-bot / {run['pipeline']}"]["output"]["summary"]


def test_a_merge_base_that_does_not_compile_costs_the_diff_not_the_run(cloud_bot: CloudBot) -> None:
    bot, cloud = cloud_bot, cloud_bot.cloud
    pipeline_file = "pipelines/training-pipeline/training-pipeline.py"
    original = (bot.repo.root / pipeline_file).read_text()
    bot.repo.write(pipeline_file, original + "\nraise RuntimeError('broken on main')\n")
    bot.base = bot.repo.commit("break training-pipeline on main")
    bot.github.add_commit(REPO, bot.base, branch="main")
    head = bot.branch("fix", {pipeline_file: original + "\n# fixed\n"})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    bot.build_ends(build.id)  # the base's step failed, allowed to

    [run] = bot.runs(pr=PR)
    assert run["state"] == "running"
    summary = bot.checks(head)["kfp-bot / training-pipeline"]["output"]["summary"]
    section = summary[summary.index("#### Pipeline diff"):].splitlines()
    assert section[0] == "#### Pipeline diff: `training-pipeline` (not compared)"
    assert section[2].startswith("No pipeline diff against the merge base:") and "broken on main" in section[2]


def test_plan_on_the_production_path_says_why_it_has_no_diff(cloud_bot: CloudBot) -> None:
    bot = cloud_bot
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# plan me\n"})
    bot.open_pull(head)
    bot.settle()
    bot.comment("/plan")
    bot.settle()
    reply = bot.replies()[-1]
    assert "<details><summary>Pipeline diff of <code>training-pipeline</code>: not compared</summary>" in reply
    assert NO_BUILD in reply  # nothing of the pull request was compiled in the service for it
