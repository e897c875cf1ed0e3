"""Secrets never reach user-visible text, even when a pipeline prints them or raises with them.

A pull request's pipeline file prints the bot's secrets and raises an exception carrying them
(as a pipeline that read `/proc/<pid>/environ` would). The raw bytes the fake GitHub and the
fake Slack received, the `/api/runs` answer, the page and the bot's log must hold none of them,
while still showing that the compile failed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.config import LogFormat, Settings
from bot.logs import configure_logging
from bot.redaction import MASK, Redactor, redactor_for, secret_values
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import TOKEN, FakeSlack
from tests.handlers.conftest import PR, REPO, SECRET, Bot, _serve
from tests.support.github_clients import APP_ID, INSTALLATION_ID, app_private_key
from tests.support.gitrepo import GitRepo

LEAKY = '''
from kfp import dsl

FOUND = {found!r}
print("environment of the parent:", FOUND)


@dsl.component(base_image="python:3.11-slim")
def hello() -> str:
    return "hi"


@dsl.pipeline(name="leaky-pipeline")
def leaky_pipeline():
    hello()


raise RuntimeError("stolen: " + " ".join(FOUND))
'''


@pytest.fixture
def leaky_bot(tmp_path: Path, example_repo: GitRepo) -> Iterator[tuple[Bot, FakeSlack, io.StringIO, list[str]]]:
    """The bot as a GitHub App with Slack, its log captured through its own formatter."""
    log = io.StringIO()
    with FakeSlack(channels=("#fallback",)) as slack, FakeGitHub() as github:
        key = github.add_app(APP_ID, app_private_key())
        github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        for bot in _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key=key,
                          slack_bot_token=TOKEN, slack_api_url=slack.api_url, slack_channel="#fallback"):
            configure_logging(LogFormat.TEXT, "DEBUG", stream=log, redact=bot.services.redactor)
            key_line = next(line for line in key.splitlines() if len(line) > 40)
            try:
                yield bot, slack, log, [SECRET, TOKEN, key_line]
            finally:
                root = logging.getLogger()
                for handler in [h for h in root.handlers if h.get_name() == "kfp-bot"]:
                    root.removeHandler(handler)


def test_a_pipeline_raising_the_bots_secrets_leaks_none_of_them(leaky_bot) -> None:
    bot, slack, log, secrets = leaky_bot
    head = bot.branch("leak", {"pipelines/leaky-pipeline/leaky-pipeline.py": LEAKY.format(found=secrets)})
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert MASK in run["error"]  # the failure is shown, the secrets are not
    check = bot.checks(head)["kfp-bot / leaky-pipeline"]
    assert check["conclusion"] == "failure"

    api = requests.get(f"{bot.url}/api/runs", params={"repo": REPO}, timeout=10).content
    one = requests.get(f"{bot.url}/api/runs/{run['id']}", timeout=10).content
    page = requests.get(f"{bot.url}/", timeout=10).content
    sent_to_github = [r.body for r in bot.github.requests]
    sent_to_slack = [r.body for r in slack.requests]
    assert sent_to_github and sent_to_slack
    for secret in secrets:
        raw = secret.encode()
        assert raw not in api and raw not in one and raw not in page
        assert not any(raw in body for body in sent_to_github), "a secret reached GitHub"
        assert not any(raw in body for body in sent_to_slack), "a secret reached Slack"
        assert secret not in log.getvalue()
    assert MASK.encode() in b"".join(sent_to_github)


def test_every_secret_setting_is_masked(tmp_path: Path) -> None:
    key = app_private_key()
    settings = Settings(webhook_secret="whsec-0123", github_app_id=1, github_private_key=key,
                        slack_webhook_url="https://hooks.slack.com/services/T0/B0/abcdef",
                        tasks_token="tasks-token-9", database_url="postgresql://kfp:db-pass-77@db/kfp",
                        data_dir=tmp_path)
    redact = redactor_for(settings)
    values = secret_values(settings)
    for secret in ("whsec-0123", "https://hooks.slack.com/services/T0/B0/abcdef", "tasks-token-9", "db-pass-77"):
        assert secret in values
        assert redact(f"x {secret} y") == f"x {MASK} y"
    body_line = key.splitlines()[3]
    assert redact(f"part of the key: {body_line}") == f"part of the key: {MASK}"
    assert redact(key) == MASK


def test_the_private_key_file_is_read_for_masking(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(app_private_key())
    settings = Settings(github_app_id=1, github_private_key_file=key_file, data_dir=tmp_path)
    line = app_private_key().splitlines()[2]
    assert redactor_for(settings)(line) == MASK


def test_short_values_and_no_secrets_leave_text_alone() -> None:
    assert Redactor([])("nothing to hide") == "nothing to hide"
    assert Redactor(["abc"])("abc abc") == "abc abc"  # shorter than the minimum: never a secret
    assert Redactor(["secret-1", "secret-1-long"])("secret-1-long") == MASK  # longest first
    assert Redactor(["secret-1"]).deep({"blocks": [{"text": "a secret-1"}], "n": 3}) == {
        "blocks": [{"text": f"a {MASK}"}], "n": 3}
