"""Hostile pull requests, end to end: the served bot handles them and shows the attack got nothing.

The bot is `kfp-bot serve`'s wiring on a real socket (tests/handlers/conftest.py) with its data
folder, database and GitHub App key file where the attack looks for them. A PR makes the
example's hello-pipeline steal at compile time or at run time and raise what it found: the check
and the comment GitHub receives, every request the fake GitHub got, /api/runs, the page and the
log show the attack's error, and no secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.sandbox import Isolation
from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import PR, REPO, Bot, _serve
from tests.security.hostile import Victim, attack_statements, leaked
from tests.security.test_hostile_run import pipeline_source
from tests.support.github_clients import APP_ID, INSTALLATION_ID, app_private_key
from tests.support.gitrepo import GitRepo

HELLO = "pipelines/hello-pipeline/hello-pipeline.py"


@pytest.fixture
def key_line() -> str:
    """A line from the middle of the App's private key (a secret the bot holds in a file)."""
    return app_private_key().splitlines()[5]


@pytest.fixture
def served(tmp_path: Path, example_repo: GitRepo, victim: Victim) -> Iterator[Bot]:
    """The embedded bot as a GitHub App whose key is a file in its data folder (the victim's)."""
    key_file = victim.data_dir / "github-app.pem"
    with FakeGitHub() as github:
        key_file.write_text(github.add_app(APP_ID, app_private_key()))
        github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        yield from _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key_file=key_file)


def everything_shown(bot: Bot, head: str, caplog: pytest.LogCaptureFixture) -> str:
    """All text the attack's results could reach: GitHub, the API, the page, the log."""
    sent = [r.body.decode("utf-8", errors="replace") for r in bot.github.requests]
    api = requests.get(f"{bot.url}/api/runs", params={"repo": REPO}, timeout=10).text
    page = requests.get(f"{bot.url}/", timeout=10).text
    return "\n".join([*sent, repr(bot.checks(head)), *bot.replies(), api, page, caplog.text])


def open_hostile_pull(bot: Bot, source: str) -> str:
    head = bot.branch("hostile", {HELLO: source, "pipelines/hello-pipeline/settings.yaml": "arguments: {}\n"})
    assert bot.open_pull(head).status_code == 202
    bot.settle()
    return head


def test_a_pipeline_file_stealing_at_compile_time_shows_its_error_and_no_secret(
        served: Bot, victim: Victim, key_line: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    attack = attack_statements(victim.read_targets + [str(victim.data_dir / "github-app.pem")],
                               [victim.service_port, int(served.url.rsplit(":", 1)[1])], victim.write_targets)
    head = open_hostile_pull(served, attack + "raise RuntimeError('stolen: ' + repr(found))\n")

    [run] = served.runs(pr=PR)
    assert run["state"] == "failed"
    check = served.checks(head)["kfp-bot / hello-pipeline"]
    assert check["conclusion"] == "failure"
    shown = everything_shown(served, head, caplog)
    assert "stolen:" in shown
    assert leaked(shown) == [] and key_line not in shown


def test_a_component_stealing_at_run_time_shows_its_error_and_no_secret(
        served: Bot, victim: Victim, key_line: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    attack = attack_statements(victim.read_targets + [str(victim.data_dir / "github-app.pem")],
                               [victim.service_port, int(served.url.rsplit(":", 1)[1])], victim.write_targets)
    source = pipeline_source(attack, result="return repr(found)").replace('name="evil"', 'name="hello-pipeline"')
    head = open_hostile_pull(served, source)

    [run] = served.runs(pr=PR)
    assert run["state"] == "failed"
    assert "stolen:" in str(run)
    shown = everything_shown(served, head, caplog)
    assert leaked(shown) == [] and key_line not in shown


@pytest.fixture
def no_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where bubblewrap cannot create a sandbox (the probe's answer, not a fake bwrap)."""
    missing = Isolation(False, "bubblewrap (bwrap) is not installed; install the 'bubblewrap' package")
    monkeypatch.setattr("deploy.sandbox.isolation", lambda: missing)
    monkeypatch.setattr("bot.sandboxing.isolation", lambda: missing)


def test_without_isolation_the_service_executes_no_pr_code_and_says_why(
        no_isolation: None, caplog: pytest.LogCaptureFixture, served: Bot, victim: Victim) -> None:
    head = open_hostile_pull(served, "open('/tmp/pwned-by-hostile-suite', 'w').write('x')\n")

    started = "\n".join(r.getMessage() for r in caplog.get_records("setup"))  # logged as the bot started
    assert "pull-request code will not be executed: bubblewrap (bwrap) is not installed" in started
    [run] = served.runs(pr=PR)
    assert run["state"] == "error"
    assert "repository code was not executed: bubblewrap (bwrap) is not installed" in str(run)
    check = served.checks(head)["kfp-bot / hello-pipeline"]
    assert "bubblewrap (bwrap) is not installed" in str(check["output"])
