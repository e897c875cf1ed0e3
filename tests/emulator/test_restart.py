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

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from bot.config import BuilderKind, BusKind, RunnerKind
from tests.emulator.conftest import new_project, wait_until
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.github import FakeGitHub
from tests.fakes.template_stores import FakeGcs
from tests.fakes.vertex import FakeVertexPipelines
from tests.handlers.conftest import REPO, SECRET, WRITER, Bot
from tests.support.gitrepo import GitRepo
from tests.support.pubsub_emulator import PubSubEmulator, free_port, setup_resources

ROOT = Path(__file__).resolve().parents[2]
TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"


class BotProcess:
    """`python -m bot serve` on a fixed port, its output in a log file; start, kill -9, start again."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path) -> None:
        self.env = env
        self.port = port
        self.log_dir = log_dir
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log = self.log_dir / f"bot-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                                             "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, f"the bot exited:\n{self.log()}"
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(healthy, 60, lambda: f"the bot to serve:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, connections cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    def log(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace") if self.logs else ""


def bot_environment(settings: dict[str, Any]) -> dict[str, str]:
    """The process environment for `settings`, as KFP_BOT_ variables."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    for name, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        env[f"KFP_BOT_{name.upper()}"] = str(getattr(value, "value", value))
    return env


@pytest.fixture
def served(tmp_path: Path, example_repo: GitRepo, pubsub_emulator: PubSubEmulator) -> Iterator[tuple[BotProcess, Bot, FakeCloudBuild, FakeVertexPipelines]]:
    project = new_project()
    with FakeGitHub() as github, FakeGcs() as gcs, FakeCloudBuild(gcs=gcs) as cloudbuild, \
            FakeVertexPipelines() as vertex:
        port = free_port()
        env = bot_environment({
            "webhook_secret": SECRET, "data_dir": tmp_path / "data", "allow_local_repos": True,
            "allowed_users": WRITER, "log_level": "INFO",
            "bus": BusKind.PUBSUB, "gcp_project": project, "pubsub_endpoint": pubsub_emulator.endpoint,
            "pubsub_verify_token": False, "pubsub_step_seconds": 2,  # a dead holder's lease ends within 4 s
            "builder": BuilderKind.CLOUDBUILD, "cloudbuild_endpoint": cloudbuild.endpoint,
            "cloudbuild_bucket": "kfp-bot-builds", "gcs_endpoint": gcs.url,
            "runner": RunnerKind.VERTEX, "vertex_endpoint": vertex.endpoint, "pipeline_root": "gs://pipelines/root"})
        process = BotProcess(env, port, tmp_path)
        setup_resources(pubsub_emulator, project, f"{process.url}/pubsub/push")
        process.start()
        # GitHub itself is not the bot's here: the fake only keeps the test's pull requests.
        github.add_repo(REPO, clone_url=str(example_repo.root))
        bot = Bot(url=process.url, services=None, github=github, repo=example_repo,  # type: ignore[arg-type]
                  base=example_repo.head())
        try:
            yield process, bot, cloudbuild, vertex
        finally:
            process.stop()


@pytest.mark.parametrize("reached", [True, False], ids=["build-created", "build-request-lost"])
def test_a_bot_killed_in_the_middle_of_a_push_gets_the_message_again_after_restart(served, reached: bool) -> None:
    import grpc

    process, bot, cloudbuild, vertex = served
    cloudbuild.hold("CreateBuild")
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# killed\n"})
    assert bot.open_pull(head).status_code == 202

    assert cloudbuild.wait_held("CreateBuild"), f"the bot never asked for the build:\n{process.log()}"
    [started] = re.findall(r"run (run-[0-9a-f]+) \(training-pipeline\) is building", process.log())
    process.kill()
    if reached:  # Cloud Build got the request; its caller is gone
        cloudbuild.release("CreateBuild")
        wait_until(lambda: cloudbuild.builds, what="the held build to be created")
    else:  # the request never made it
        cloudbuild.fail("CreateBuild", grpc.StatusCode.UNAVAILABLE)
        cloudbuild.release("CreateBuild")
        wait_until(lambda: cloudbuild.requests("CreateBuild"), what="the held request to fail")
        assert cloudbuild.builds == []

    process.start()
    processed = wait_until(lambda: re.findall(rf"processed message (\S+) \(run-start:{started}\)", process.log()),
                           what=lambda: f"run.start to be pushed to the new process:\n{process.log()}")
    assert len(processed) == 1
    assert "'resumed': 0" in process.log()  # the start-up reconcile started nothing: it was the redelivery
    assert f"processed message {processed[0]} (run-start:{started})" not in process.log(0)

    [run] = bot.runs()
    assert run["id"] == started and run["state"] == "building"
    [build] = wait_until(lambda: cloudbuild.builds, what="the build")  # found by the run's tag, or made now
    assert len(cloudbuild.builds) == 1
    wait_until(lambda: build.id in (bot.runs()[0]["url"] or ""), what="the run to link its build")
    assert vertex.jobs == []
