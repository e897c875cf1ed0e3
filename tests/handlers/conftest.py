"""The whole bot, as GitHub sees it: served on 127.0.0.1, talking to a fake GitHub.

`bot` is the embedded service (SQLite, in-process bus, git checkouts, kfp.local) wired by
`bot.wiring.build_services` exactly as `kfp-bot serve` wires it, except that its GitHub clients
retry without sleeping. Webhooks are GitHub's own example payloads, adapted to a real git
repository made from examples/kfp-monorepo; assertions read what the fake GitHub was asked to
show, and what the bot's API reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.app import create_app
from bot.config import Settings
from bot.services import Services
from bot.wiring import build_services
from handlers.context import HandlerContext
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import TOKEN, FakeSlack
from tests.support.github_clients import APP_ID, INSTALLATION_ID, app_private_key, clients_for
from tests.support.gitrepo import GitRepo
from tests.support.server import ServedApp
from tests.support.webhooks import delivery_headers, load_payload

REPO = "octo-org/kfp-monorepo"
PR = 12
WRITER = "alice"
READER = "mallory"
MAINTAINER = "maria"
SECRET = "handler-tests-secret"
TERMINAL = {"succeeded", "failed", "cancelled", "skipped", "error"}


@dataclass
class Bot:
    """The running bot, its fake GitHub and the repository its pull requests come from."""

    url: str
    services: Services
    github: FakeGitHub
    repo: GitRepo
    base: str
    deliveries: list[str] = field(default_factory=list)

    def deliver(self, event: str, payload: dict[str, Any], delivery: str | None = None) -> requests.Response:
        """POST a signed webhook like GitHub does."""
        body = json.dumps(payload).encode()
        headers = delivery_headers(event, body, SECRET)
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        self.deliveries.append(headers["X-GitHub-Delivery"])
        return requests.post(f"{self.url}/github/webhook", data=body, headers=headers, timeout=10)

    def settle(self, timeout: float = 180) -> None:
        """Wait until every queued event (and what it caused) has been handled."""
        assert self.services.bus.wait_idle(timeout), "the bot did not finish its work in time"

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Runs as the API reports them, newest first."""
        answer = requests.get(f"{self.url}/api/runs", params={"repo": REPO, **filters}, timeout=10)
        answer.raise_for_status()
        return answer.json()["runs"]

    def branch(self, name: str, changes: dict[str, str], start: str | None = None) -> str:
        """Commit `changes` (path → content) on a new branch from `start`; the new head."""
        self.repo.branch(name, start or self.base)
        for path, content in changes.items():
            self.repo.write(path, content)
        head = self.repo.commit(f"change on {name}")
        self.repo.checkout("main")
        self.github.add_commit(REPO, head, branch=name)
        return head

    def open_pull(self, head: str, *, action: str = "opened", author: str = WRITER, draft: bool = False,
                  fork: str | None = None, number: int = PR, clone_url: str | None = None,
                  labels: tuple[str, ...] | None = None, label: str | None = None) -> requests.Response:
        """A `pull_request` webhook for `head` on main, with GitHub's state updated to match.

        `labels` replaces the example's labels of the pull request; `label` is the one a
        `labeled` action adds."""
        if fork is not None and fork not in self._forks:
            self.github.add_repo(fork, clone_url=str(self.repo.root))
            self._forks.add(fork)
        if number not in self._pulls:
            self.github.add_pull(REPO, number, head_sha=head, base_sha=self.base, author=author, draft=draft,
                                 head_repo=fork)
            self._pulls.add(number)
        else:
            self.github.update_pull(REPO, number, head_sha=head, draft=draft)
        payload = pull_request_payload(action, self.repo.root, head, self.base, author=author, draft=draft,
                                       fork=fork, number=number, clone_url=clone_url)
        if labels is not None:
            payload["pull_request"]["labels"] = [{"name": name} for name in labels]
        if label is not None:
            payload["label"]["name"] = label
        return self.deliver("pull_request", payload)

    def comment(self, body: str, *, author: str = WRITER, number: int = PR) -> tuple[requests.Response, int]:
        """An `issue_comment` `created` webhook on the PR; returns the response and comment id."""
        comment = self.github.add_comment(REPO, number, body, author=author)
        payload = load_payload("issue_comment.created", {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(self.repo.root), "repository.default_branch": "main",
            "issue.number": number,
            "comment.id": comment["id"], "comment.body": body, "comment.user.login": author,
            "comment.user.type": "User", "sender.login": author, "installation.id": INSTALLATION_ID})
        return self.deliver("issue_comment", payload), comment["id"]

    def press(self, check: dict[str, Any], *, by: str, button: str | None = None) -> requests.Response:
        """A `check_run` webhook for `check`: its "Re-run" link, or the action `button` pressed."""
        overrides: dict[str, Any] = {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(self.repo.root), "check_run.id": check["id"],
            "check_run.name": check["name"], "check_run.head_sha": check["head_sha"],
            "check_run.external_id": check["external_id"], "sender.login": by, "installation.id": INSTALLATION_ID}
        if button is None:
            return self.deliver("check_run", load_payload("check_run.rerequested", overrides))
        overrides["requested_action.identifier"] = button
        return self.deliver("check_run", load_payload("check_run.requested_action", overrides))

    def rerun_suite(self, sha: str, *, by: str, number: int = PR) -> requests.Response:
        """A `check_suite` `rerequested` webhook ("Re-run all checks") for head `sha`."""
        return self.deliver("check_suite", load_payload("check_suite.rerequested", {
            "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
            "repository.clone_url": str(self.repo.root), "check_suite.head_sha": sha,
            "check_suite.pull_requests.0.number": number, "sender.login": by,
            "installation.id": INSTALLATION_ID}))

    def checks(self, sha: str) -> dict[str, dict[str, Any]]:
        """The latest check run of each name on commit `sha`."""
        latest: dict[str, dict[str, Any]] = {}
        for check in self.github.check_runs(REPO, sha):
            latest[check["name"]] = check
        return latest

    def replies(self, number: int = PR) -> list[str]:
        """Bodies of comments the bot wrote on the PR, oldest first."""
        return [c["body"] for c in self.github.comments(REPO, number)
                if c["user"]["login"].endswith("[bot]")]

    def __post_init__(self) -> None:
        self._pulls: set[int] = set()
        self._forks: set[str] = set()


def pull_request_payload(action: str, root: Path, head: str, base: str, *, author: str, draft: bool,
                         fork: str | None, number: int, clone_url: str | None) -> dict[str, Any]:
    """GitHub's `pull_request` example adapted to the test repository."""
    url = clone_url or str(root)
    return load_payload(f"pull_request.{action}", {
        "number": number, "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
        "repository.clone_url": url, "repository.default_branch": "main",
        "pull_request.number": number, "pull_request.draft": draft,
        "pull_request.user.login": author, "pull_request.head.sha": head,
        "pull_request.head.ref": "feature", "pull_request.base.sha": base, "pull_request.base.ref": "main",
        "pull_request.head.repo.full_name": fork or REPO, "pull_request.head.repo.clone_url": url,
        "sender.login": author, "installation.id": INSTALLATION_ID})


Ports = Callable[[HandlerContext], HandlerContext]  # the `ports` fixture (tests/conftest.py)


@pytest.fixture
def bot(tmp_path: Path, example_repo: GitRepo, ports: Ports | None) -> Iterator[Bot]:
    """The embedded bot as a GitHub App on REPO, serving on a real socket."""
    with FakeGitHub() as github:
        key = github.add_app(APP_ID, app_private_key())
        github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        yield from _serve(tmp_path, example_repo, github, override=ports, github_app_id=APP_ID,
                          github_private_key=key)


@pytest.fixture
def token_bot(tmp_path: Path, example_repo: GitRepo) -> Iterator[Bot]:
    """The embedded bot with a personal access token instead of an App (commit statuses)."""
    with FakeGitHub() as github:
        token = github.add_token(login="kfp-ci")
        yield from _serve(tmp_path, example_repo, github, github_token=token, bot_login="kfp-ci")


def install_app(github: FakeGitHub) -> str:
    """The test GitHub App, installed on REPO; its private key."""
    key = github.add_app(APP_ID, app_private_key())
    github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
    return key


def seed_repo(github: FakeGitHub, example_repo: GitRepo) -> str:
    """REPO on the fake GitHub, cloned from `example_repo`, with a writer, a maintainer and a
    reader; its main branch at the repository's head, which is returned."""
    github.add_repo(REPO, clone_url=str(example_repo.root))
    github.set_permission(REPO, WRITER, "write")
    github.set_permission(REPO, MAINTAINER, "maintain")
    github.set_permission(REPO, READER, "read")
    base = example_repo.head()
    github.add_commit(REPO, base, branch="main")
    return base


def _serve(tmp_path: Path, example_repo: GitRepo, github: FakeGitHub, *, override: Ports | None = None,
           **credentials: Any) -> Iterator[Bot]:
    base = seed_repo(github, example_repo)
    # `credentials` may also replace these (e.g. more workers, for runs that hold theirs).
    settings = Settings(**{"webhook_secret": SECRET, "github_api_url": github.api_url, "data_dir": tmp_path / "data",
                           "allow_local_repos": True, "workers": 2, "run_timeout_seconds": 300, **credentials})
    services = build_services(settings, github_clients=clients_for(settings), override=override)
    app = create_app(settings, services)
    services.start()
    server = ServedApp(app)
    try:
        yield Bot(url=server.url, services=services, github=github, repo=example_repo, base=base)
    finally:
        server.close()
        services.stop()


@pytest.fixture
def slack_bot(tmp_path: Path, example_repo: GitRepo) -> Iterator[tuple[Bot, FakeSlack]]:
    """The embedded bot with a Slack bot token, posting to a fake Slack; the repository routes
    `dataset-pipeline` to #data and everything else to #ml-ci in its `.kfp-bot.yaml`."""
    example_repo.write(".kfp-bot.yaml", "slack_channel: '#ml-ci'\n"
                                        "pipelines:\n  dataset-pipeline:\n    slack_channel: '#data'\n")
    example_repo.commit("route Slack notifications")
    with FakeSlack(channels=("#ml-ci", "#data", "#fallback")) as slack, FakeGitHub() as github:
        key = github.add_app(APP_ID, app_private_key())
        github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        for bot in _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key=key,
                          slack_bot_token=TOKEN, slack_api_url=slack.api_url, slack_channel="#fallback"):
            yield bot, slack
