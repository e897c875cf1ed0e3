"""Hostile deliveries against the whole bot: never a 500, and never a 202 followed by silence.

GitHub's example payloads, adapted to the test repository, are mutated by the corpus generator
(`tests/support/hostile.py`) and sent signed to the bot served on 127.0.0.1 with its real handlers.
Every answer must be a 2xx or 4xx; and every delivery answered 202 whose handling logged an error
must be listed by `/api/deliveries?failed=1`, where an operator finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from bot.logs import current_ids
from tests.handlers.conftest import PR, REPO, SECRET, WRITER, Bot, pull_request_payload
from tests.handlers.test_push import push_payload
from tests.support.github_clients import INSTALLATION_ID
from tests.support.hostile import hostile_corpus
from tests.support.webhooks import delivery_headers, load_payload


class ErrorsByDelivery(logging.Handler):
    """Remembers the delivery ids under which an ERROR was logged (the context of the logging thread)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.deliveries: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        delivery = current_ids()["delivery_id"]
        if delivery:
            self.deliveries.setdefault(delivery, record.getMessage()[:300])


@pytest.fixture
def errors() -> Iterator[ErrorsByDelivery]:
    handler = ErrorsByDelivery()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_no_hostile_delivery_gets_a_500_or_a_silent_202(bot: Bot, errors: ErrorsByDelivery) -> None:
    bot.github.add_pull(REPO, PR, head_sha=bot.base, base_sha=bot.base, author=WRITER)
    bases = {
        "pull_request": pull_request_payload("opened", bot.repo.root, bot.base, bot.base, author=WRITER,
                                             draft=False, fork=None, number=PR, clone_url=None),
        "issue_comment": load_payload("issue_comment.created", {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(bot.repo.root), "issue.number": PR, "comment.body": "/plan",
            "comment.user.login": WRITER, "comment.user.type": "User", "sender.login": WRITER,
            "installation.id": INSTALLATION_ID}),
        "push": push_payload(bot, bot.base, bot.base),
        "check_run": load_payload("check_run.rerequested", {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(bot.repo.root), "check_run.name": "kfp-bot / hello-pipeline",
            "check_run.head_sha": bot.base, "check_run.external_id": "", "sender.login": WRITER,
            "installation.id": INSTALLATION_ID}),
        "check_suite": load_payload("check_suite.rerequested", {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(bot.repo.root), "check_suite.head_sha": bot.base,
            "check_suite.pull_requests.0.number": PR, "sender.login": WRITER, "installation.id": INSTALLATION_ID}),
    }
    answers: dict[str, tuple[int, str, str]] = {}
    for case in hostile_corpus(bases):
        headers = delivery_headers(case.event, case.body, SECRET)
        response = requests.post(f"{bot.url}/github/webhook", data=case.body, headers=headers, timeout=30)
        assert response.headers["Content-Type"] == "application/json", case.name
        answers[case.name] = (response.status_code, headers["X-GitHub-Delivery"], response.json()["status"])
    bot.settle()

    server_errors = {name: status for name, (status, _, _) in answers.items() if status >= 500}
    assert server_errors == {}

    def listed(delivery: str) -> bool:
        answer = requests.get(f"{bot.url}/api/deliveries", params={"failed": "1", "delivery": delivery}, timeout=30)
        return bool(answer.json()["deliveries"])

    silent = {name: errors.deliveries[delivery] for name, (status, delivery, _) in answers.items()
              if status == 202 and delivery in errors.deliveries and not listed(delivery)}
    assert silent == {}, "\n".join(f"{k}: {v}" for k, v in silent.items())
    refused = [delivery for status, delivery, _ in answers.values() if status == 400]
    assert refused and all(listed(delivery) for delivery in refused[::25])  # signed refusals are kept too
    accepted = [name for name, (status, _, _) in answers.items() if status == 202]
    assert len(accepted) > 10, "the corpus must also reach the handlers"
