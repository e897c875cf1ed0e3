"""The bot killed (SIGKILL) in the middle of a push, then started again: Google's Pub/Sub emulator
delivers the message again to the new process, which finishes the step without doing it twice.

The bot runs as `python -m bot serve` in a process of its own, configured by KFP_BOT_ variables
as in production, on the Google Cloud path (no GitHub credentials: reports go to its log and
API). Cloud Build holds the run's CreateBuild unanswered, so the bot is known to be inside the
push of `run.start` when it is killed; the held call is then let through (a request Cloud Build
received from a caller that died: the new process finds that build) or fails (a request that
never arrived: the new process makes the build).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.pubsub_v1.types import PushConfig

from bot.config import BuilderKind, BusKind, RunnerKind
from tests.emulator.conftest import new_project, wait_until
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.github import FakeGitHub
from tests.fakes.template_stores import FakeGcs
from tests.fakes.vertex import FakeVertexPipelines
from tests.handlers.conftest import REPO, SECRET, WRITER, Bot
from tests.support.botprocess import BotProcess
from tests.support.gitrepo import GitRepo
from tests.support.pubsub_emulator import PubSubEmulator, Resources, setup_resources

TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"


def bot_environment(settings: dict[str, Any]) -> dict[str, str]:
    """`settings` as KFP_BOT_ variables."""
    env: dict[str, str] = {}
    for name, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        env[f"KFP_BOT_{name.upper()}"] = str(getattr(value, "value", value))
    return env


@dataclass
class Restartable:
    """The bot as a process, restartable on the same database; Pub/Sub pushes to the live one."""

    data_dir: Path
    env: dict[str, str]
    emulator: PubSubEmulator
    resources: Resources
    processes: list[BotProcess] = field(default_factory=list)

    @property
    def current(self) -> BotProcess:
        return self.processes[-1]

    def start(self) -> BotProcess:
        """A new bot process on the same data folder; the push subscriptions moved to its URL, as
        docs/deployment.md moves them when the bot's URL changes."""
        process = BotProcess(f"bot-{len(self.processes) + 1}", self.data_dir, self.env)
        self.processes.append(process)
        process.wait_ready()
        subscriber = self.emulator.subscriber()
        try:
            for name in self.resources.push_subscriptions:
                subscriber.modify_push_config(subscription=self.resources.subscriptions[name],
                                              push_config=PushConfig(push_endpoint=f"{process.url}/pubsub/push"))
        finally:
            subscriber.close()
        return process

    def log(self, index: int = -1) -> str:
        return self.processes[index].log.read_text(errors="replace")


@pytest.fixture
def served(tmp_path: Path, example_repo: GitRepo,
           pubsub_emulator: PubSubEmulator) -> Iterator[tuple[Restartable, Bot, FakeCloudBuild, FakeVertexPipelines]]:
    project = new_project()
    with FakeGitHub() as github, FakeGcs() as gcs, FakeCloudBuild(gcs=gcs) as cloudbuild, \
            FakeVertexPipelines() as vertex:
        env = bot_environment({
            "webhook_secret": SECRET, "allow_local_repos": True, "allowed_users": WRITER, "log_level": "INFO",
            "bus": BusKind.PUBSUB, "gcp_project": project, "pubsub_endpoint": pubsub_emulator.endpoint,
            "pubsub_verify_token": False, "pubsub_step_seconds": 2,  # a dead holder's lease ends within 4 s
            "builder": BuilderKind.CLOUDBUILD, "cloudbuild_endpoint": cloudbuild.endpoint,
            "cloudbuild_bucket": "kfp-bot-builds", "gcs_endpoint": gcs.url,
            "runner": RunnerKind.VERTEX, "vertex_endpoint": vertex.endpoint, "pipeline_root": "gs://pipelines/root"})
        resources = setup_resources(pubsub_emulator, project, "http://127.0.0.1:9/pubsub/push")  # moved at start
        bots = Restartable(tmp_path / "data", env, pubsub_emulator, resources)
        bots.start()
        # GitHub itself is not the bot's here: the fake only keeps the test's pull requests.
        github.add_repo(REPO, clone_url=str(example_repo.root))
        bot = Bot(url=bots.current.url, services=None, github=github, repo=example_repo,  # type: ignore[arg-type]
                  base=example_repo.head())
        try:
            yield bots, bot, cloudbuild, vertex
        finally:
            for process in bots.processes:
                process.stop()


@pytest.mark.parametrize("reached", [True, False], ids=["build-created", "build-request-lost"])
def test_a_bot_killed_in_the_middle_of_a_push_gets_the_message_again_after_restart(served, reached: bool) -> None:
    bots, bot, cloudbuild, vertex = served
    cloudbuild.hold("CreateBuild")
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# killed\n"})
    assert bot.open_pull(head).status_code == 202

    assert cloudbuild.wait_held("CreateBuild"), f"the bot never asked for the build:\n{bots.log()}"
    [started] = re.findall(r"run (run-[0-9a-f]+) \(training-pipeline\) is building", bots.log())
    bots.current.kill()
    if reached:  # Cloud Build got the request; its caller is gone
        cloudbuild.release("CreateBuild")
        wait_until(lambda: cloudbuild.builds, what="the held build to be created")
    else:  # the request never made it
        cloudbuild.fail("CreateBuild", grpc.StatusCode.UNAVAILABLE)
        cloudbuild.release("CreateBuild")
        wait_until(lambda: cloudbuild.requests("CreateBuild"), what="the held request to fail")
        assert cloudbuild.builds == []

    bot.url = bots.start().url
    processed = wait_until(lambda: re.findall(rf"processed message (\S+) \(run-start:{started}\)", bots.log()),
                           what=lambda: f"run.start to be pushed to the new process:\n{bots.log()}")
    assert len(processed) == 1
    # The push can reach the web process before the processing process has logged its start-up
    # reconcile: wait for that line, then check it started nothing (it was the redelivery).
    [reconciled] = wait_until(lambda: re.findall(r"reconciled unfinished runs on start: (.*)", bots.log()),
                              what=lambda: f"the start-up reconcile:\n{bots.log()}")
    assert "'resumed': 0" in reconciled
    assert f"processed message {processed[0]} (run-start:{started})" not in bots.log(0)

    [run] = bot.runs()
    assert run["id"] == started and run["state"] == "building"
    [build] = wait_until(lambda: cloudbuild.builds, what="the build")  # found by the run's tag, or made now
    assert len(cloudbuild.builds) == 1
    wait_until(lambda: build.id in (bot.runs()[0]["url"] or ""), what="the run to link its build")
    assert vertex.jobs == []
