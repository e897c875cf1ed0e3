"""The production bus against Google's own Pub/Sub emulator, not the project's fake.

`pubsub_emulator` starts the emulator once per session (see `tests.support.pubsub_emulator`);
where Java, the Cloud SDK or its emulator is missing, every test of this folder is skipped with
that reason. `cloud` is the bot on the Google Cloud path for one test: Pub/Sub is the emulator,
with the topics and push subscriptions of `deploy/gcp/setup.sh` in a project of the test's own,
pushing through a `PushRecorder` to the bot served on 127.0.0.1; GitHub, Cloud Build and Vertex AI
are the local fakes. Push tokens are not verified (KFP_BOT_PUBSUB_VERIFY_TOKEN=0): the emulator
signs none.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.config import BuilderKind, BusKind, RunnerKind, Settings
from bot.wiring import build_services
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.github import FakeGitHub
from tests.fakes.github_hooks import AppWebhook
from tests.fakes.template_stores import FakeGcs
from tests.fakes.vertex import FakeVertexPipelines
from tests.handlers.conftest import SECRET, Bot, install_app, seed_repo
from tests.support.github_clients import APP_ID, clients_for
from tests.support.gitrepo import GitRepo
from tests.support.pubsub_emulator import PubSubEmulator, Resources, find_emulator, setup_resources
from tests.support.push_recorder import PushRecorder
from tests.support.server import ServedApp

_projects = itertools.count(1)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    """Google's Pub/Sub emulator on a free port of 127.0.0.1, for the whole session."""
    command, missing = find_emulator()
    if command is None:
        pytest.skip(f"Pub/Sub emulator tier: {missing}")
    emulator = PubSubEmulator(command, tmp_path_factory.mktemp("pubsub-emulator"))
    try:
        emulator.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield emulator
    finally:
        emulator.stop()


def new_project() -> str:
    """A project of its own for each test: the emulator keeps every project apart."""
    return f"emulated-{os.getpid()}-{next(_projects)}"


def wait_until(condition: Callable[[], Any], timeout: float = 90.0,
               what: str | Callable[[], str] = "the condition") -> Any:
    """Poll until `condition()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


@dataclass
class EmulatedCloud:
    """The bot on the production path with the emulator's Pub/Sub; helpers to act as Google Cloud."""

    bot: Bot
    emulator: PubSubEmulator
    resources: Resources
    recorder: PushRecorder
    cloudbuild: FakeCloudBuild
    vertex: FakeVertexPipelines
    publisher: Any

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Publish as another service would (Cloud Build, the log sink); the message id."""
        return self.publisher.publish(self.resources.topic(topic), data, **(attributes or {})).result(timeout=30)

    def run(self, timeout: float = 90.0, **expected: str) -> dict[str, Any]:
        """The PR's only run, once its fields have the `expected` values."""
        def found() -> dict[str, Any] | None:
            runs = self.bot.runs()
            if len(runs) == 1 and all(runs[0].get(k) == v for k, v in expected.items()):
                return runs[0]
            return None

        return wait_until(found, timeout, lambda: f"a run with {expected} (runs: {self.bot.runs()}; "
                                                  f"pushes: {self.recorder.summary()})")


def cloud_settings(tmp_path: Path, github: FakeGitHub, key: str, project: str, emulator: PubSubEmulator,
                   cloudbuild: FakeCloudBuild, vertex: FakeVertexPipelines, **changes: Any) -> Settings:
    """The bot's settings on the Google Cloud path, with the emulator as Pub/Sub."""
    return Settings(**{
        "webhook_secret": SECRET, "github_api_url": github.api_url, "github_app_id": APP_ID,
        "github_private_key": key, "data_dir": tmp_path / "data", "allow_local_repos": True,
        "bus": BusKind.PUBSUB, "gcp_project": project, "pubsub_endpoint": emulator.endpoint,
        "pubsub_verify_token": False,
        "builder": BuilderKind.CLOUDBUILD, "cloudbuild_endpoint": cloudbuild.endpoint,
        "cloudbuild_bucket": "kfp-bot-builds", "gcs_endpoint": cloudbuild.gcs.url if cloudbuild.gcs else None,
        "runner": RunnerKind.VERTEX, "vertex_endpoint": vertex.endpoint, "pipeline_root": "gs://pipelines/root",
        **changes})


@pytest.fixture
def cloud(tmp_path: Path, example_repo: GitRepo, pubsub_emulator: PubSubEmulator) -> Iterator[EmulatedCloud]:
    """The bot served on 127.0.0.1, Pub/Sub by the emulator, GitHub, Cloud Build and Vertex AI faked."""
    yield from emulated_cloud(tmp_path, example_repo, pubsub_emulator)


def emulated_cloud(tmp_path: Path, example_repo: GitRepo, pubsub_emulator: PubSubEmulator,
                   **changes: Any) -> Iterator[EmulatedCloud]:
    """`cloud` with other settings (`changes`)."""
    project = new_project()
    with FakeGitHub() as github, FakeGcs() as gcs, FakeCloudBuild(gcs=gcs) as cloudbuild, \
            FakeVertexPipelines() as vertex:
        key = install_app(github)
        base = seed_repo(github, example_repo)
        settings = cloud_settings(tmp_path, github, key, project, pubsub_emulator, cloudbuild, vertex, **changes)
        services = build_services(settings, github_clients=clients_for(settings))
        server = ServedApp(create_app(settings, services))
        recorder = PushRecorder(f"{server.url}/pubsub/push")
        resources = setup_resources(pubsub_emulator, project, recorder.url)
        AppWebhook(github, APP_ID, url=f"{server.url}/github/webhook", secret=SECRET)
        publisher = pubsub_emulator.publisher()
        bot = Bot(url=server.url, services=services, github=github, repo=example_repo, base=base)
        try:
            yield EmulatedCloud(bot, pubsub_emulator, resources, recorder, cloudbuild, vertex, publisher)
        finally:
            _delete_subscriptions(pubsub_emulator, resources)
            publisher.transport.close()
            recorder.close()
            server.close()
            services.stop()


def _delete_subscriptions(emulator: PubSubEmulator, resources: Resources) -> None:
    """Stop the emulator pushing this test's messages (to a bot that is gone)."""
    subscriber = emulator.subscriber()
    try:
        for path in resources.subscriptions.values():
            subscriber.delete_subscription(subscription=path)
    finally:
        subscriber.close()

