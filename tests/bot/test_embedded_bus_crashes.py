"""Crashes and several instances: the bot as real processes (`python -m bot serve`) on one database.

Each test opens a pull request that changes hello-pipeline (a real compile, a real kfp.local run)
on a fake GitHub, kills a bot with SIGKILL at a chosen moment, and lets another process go on.
Each must end with the run present, executed at most once (kfp.local makes one folder per
execution under the run's outputs), in a final state, shown on GitHub, and with exactly one
notification queued for each of its state changes (a change and its notification commit together). Leases are short
(LEASE seconds) so that takeovers happen quickly. The variants run on a SQLite file and on
PostgreSQL (skipped with the reason when its server programs are missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.store import SqlStore
from handlers.models import Notification
from tests.fakes.github import FakeGitHub
from tests.support.botprocess import BotProcess, descendants
from tests.support.gitrepo import GitRepo
from tests.support.webhooks import delivery_headers, load_payload

REPO = "octo-org/kfp-monorepo"
PR = 12
SECRET = "crash-tests-secret"
LEASE = "3"
HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"
CHECK = "kfp-bot / hello-pipeline"
FINAL = {"succeeded", "failed", "cancelled", "skipped", "error"}
WAIT = 300.0


@dataclass
class World:
    """A fake GitHub with a pull request, a database, and the bot processes on it."""

    tmp: Path
    github: FakeGitHub
    repo: GitRepo
    base: str
    head: str
    env: dict[str, str]
    store_url: str
    bots: list[BotProcess] = field(default_factory=list)

    def start(self, name: str) -> BotProcess:
        bot = BotProcess(name, self.tmp / name, self.env)
        self.bots.append(bot)
        return bot.wait_ready()

    def open_pull(self, bot: BotProcess, delivery: str = "crash-delivery-1") -> requests.Response:
        url = str(self.repo.root)
        payload = load_payload("pull_request.opened", {
            "number": PR, "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": url, "repository.default_branch": "main", "pull_request.number": PR,
            "pull_request.draft": False, "pull_request.user.login": "alice", "pull_request.head.sha": self.head,
            "pull_request.head.ref": "feature", "pull_request.base.sha": self.base, "pull_request.base.ref": "main",
            "pull_request.head.repo.full_name": REPO, "pull_request.head.repo.clone_url": url,
            "sender.login": "alice"})
        body = json.dumps(payload).encode()
        return requests.post(f"{bot.url}/github/webhook", data=body, timeout=30,
                             headers=delivery_headers("pull_request", body, SECRET, delivery_id=delivery))

    def runs(self, bot: BotProcess) -> list[dict[str, Any]]:
        answer = requests.get(f"{bot.url}/api/runs", params={"repo": REPO}, timeout=30)
        answer.raise_for_status()
        return answer.json()["runs"]

    def wait_for(self, bot: BotProcess, done: Callable[[list[dict[str, Any]]], bool],
                 what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            runs = self.runs(bot)
            if done(runs):
                return runs
            time.sleep(0.2)
        logs = "\n".join(f"--- {b.name}\n{b.tail()}" for b in self.bots)
        raise AssertionError(f"no {what} within {WAIT:g} s; runs: {self.runs(bot)}\n{logs}")

    def final(self, bot: BotProcess) -> dict[str, Any]:
        [run] = self.wait_for(bot, lambda runs: len(runs) == 1 and runs[0]["state"] in FINAL, "final run")
        changes = [t["state"] for t in run["transitions"][1:]]
        assert self.notified(run["id"]) == changes, "each state change has exactly one notification"
        return run

    def notified(self, run_id: str) -> list[str]:
        """The states of the run's notifications in the outbox, in the order they were queued."""
        with SqlStore(self.store_url) as store:
            return [n.state.value for n in store.queued_events(pending=False)
                    if isinstance(n, Notification) and n.run_id == run_id]

    def executions(self) -> int:
        """Executions of the pipeline started by any process: kfp.local's folder per execution."""
        return len(list(self.tmp.glob("*/runs/*/outputs/hello-pipeline-*")))

    def shows(self, *states: str) -> bool:
        """Wait until GitHub shows one of `states` for the pipeline (the report follows the stored state)."""
        deadline = time.monotonic() + WAIT
        while self.shown() not in states and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.shown() in states

    def shown(self) -> str | None:
        """The state GitHub shows for the pipeline on the head (a commit status: the bot uses a token)."""
        found = [s["state"] for s in self.github.statuses(REPO, self.head) if s["context"] == CHECK]
        return found[-1] if found else None


@pytest.fixture
def world(tmp_path: Path, example_repo: GitRepo, store_url: str) -> Iterator[World]:
    with FakeGitHub() as github:
        token = github.add_token(login="kfp-ci")
        github.add_repo(REPO, clone_url=str(example_repo.root))
        base = example_repo.head()
        github.add_commit(REPO, base, branch="main")
        example_repo.branch("feature", base)
        settings = (example_repo.root / HELLO_SETTINGS).read_text()
        example_repo.write(HELLO_SETTINGS, settings.replace("repeat: 3", "repeat: 4"))
        head = example_repo.commit("longer greeting")
        example_repo.checkout("main")
        github.add_pull(REPO, PR, head_sha=head, base_sha=base, author="alice")
        github.set_permission(REPO, "alice", "write")
        env = {"KFP_BOT_WEBHOOK_SECRET": SECRET, "KFP_BOT_DATABASE_URL": store_url,
               "KFP_BOT_GITHUB_API_URL": github.api_url, "KFP_BOT_GITHUB_TOKEN": token,
               "KFP_BOT_BOT_LOGIN": "kfp-ci", "KFP_BOT_ALLOW_LOCAL_REPOS": "1",
               "KFP_BOT_LEASE_SECONDS": LEASE, "KFP_BOT_LOG_LEVEL": "INFO"}
        made = World(tmp_path / "bots", github, example_repo, base, head, env, store_url)
        try:
            yield made
        finally:
            for bot in made.bots:
                bot.kill()


def in_state(state: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda runs: len(runs) == 1 and runs[0]["state"] == state


def test_a_kill_right_after_the_202_loses_nothing(world: World) -> None:
    first = world.start("first")
    assert world.open_pull(first).status_code == 202
    first.kill()

    second = world.start("second")
    run = world.final(second)

    assert run["state"] == "succeeded", run
    assert world.executions() == 1
    assert world.shows("success")
    assert world.open_pull(second).json()["status"] == "duplicate"  # GitHub's redelivery changes nothing


def test_a_kill_during_a_compile_compiles_again_and_runs_once(world: World) -> None:
    first = world.start("first")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, in_state("compiling"), "compile")
    first.kill()

    second = world.start("second")
    run = world.final(second)

    assert run["state"] == "succeeded", run
    assert world.executions() == 1
    assert world.shows("success")


def test_a_kill_during_a_run_ends_it_visibly_and_never_runs_it_twice(world: World) -> None:
    first = world.start("first")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, lambda runs: in_state("running")(runs) and world.executions() == 1, "execution")
    first.kill()

    second = world.start("second")
    run = world.final(second)

    assert run["state"] == "error" and "stopped before it finished" in run["error"], run
    assert world.executions() == 1
    assert world.shows("failure", "error")


def test_a_kill_during_a_status_update_shows_the_state_after_the_restart(world: World) -> None:
    first = world.start("first")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, lambda runs: in_state("running")(runs) and world.executions() == 1, "execution")
    # The next status the bot sets is the run's end: GitHub hangs while the bot shows it.
    hold = world.github.hold("POST", rf"/repos/{REPO}/statuses/[0-9a-f]{{40}}")
    assert hold.arrived.wait(WAIT), first.tail()
    first.kill()
    hold.release()

    second = world.start("second")
    run = world.final(second)
    assert run["state"] == "succeeded", run
    assert world.shows("success")
    assert world.executions() == 1


def test_an_instance_started_mid_run_leaves_the_live_owners_run_alone(world: World) -> None:
    first = world.start("first")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, lambda runs: in_state("running")(runs) and world.executions() == 1, "execution")

    second = world.start("second")
    run = world.final(second)

    assert run["state"] == "succeeded", run  # not "error: the bot restarted", and not run again
    assert world.executions() == 1
    assert not any("taking over" in bot.tail(400) for bot in world.bots)


def test_when_one_of_two_instances_dies_mid_run_the_other_ends_the_run_once(world: World) -> None:
    first, second = world.start("first"), world.start("second")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, lambda runs: in_state("running")(runs) and world.executions() == 1, "execution")
    owner = next(bot for bot in world.bots if list(bot.data_dir.glob("runs/*/outputs/hello-pipeline-*")))
    survivor = second if owner is first else first
    owner.kill()

    run = world.final(survivor)

    assert run["state"] == "error" and "stopped before it finished" in run["error"], run
    assert world.executions() == 1
    assert world.shows("failure", "error")


def signal_if_alive(pid: int, signum: int) -> None:
    """Signal `pid` unless it already ended: a short-lived child (a git call, a warmed-up compile
    interpreter ending unused) may exit between listing the process tree and signalling it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def test_an_instance_paused_past_its_lease_keeps_its_run(world: World) -> None:
    # A loaded machine can stall a process longer than its lease; the other instance on the same
    # machine sees the process is still there and renews its rows instead of taking them over.
    first, second = world.start("first"), world.start("second")
    assert world.open_pull(first).status_code == 202
    world.wait_for(first, lambda runs: in_state("running")(runs) and world.executions() == 1, "execution")
    owner = next(bot for bot in world.bots if list(bot.data_dir.glob("runs/*/outputs/hello-pipeline-*")))
    other = second if owner is first else first
    paused = [owner.process.pid, *descendants(owner.process.pid)]
    for pid in paused:
        signal_if_alive(pid, signal.SIGSTOP)
    try:
        # Wait on the other instance having found the lease expired, not on a length of time.
        deadline = time.monotonic() + WAIT
        while "is still running; its lease is renewed" not in other.tail(400) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for pid in paused:
            signal_if_alive(pid, signal.SIGCONT)
    assert "is still running; its lease is renewed" in other.tail(400), other.tail()

    run = world.final(other)

    assert run["state"] == "succeeded", run
    assert world.executions() == 1
    assert world.shows("success")
    assert not any("taking over" in bot.tail(400) for bot in world.bots)
